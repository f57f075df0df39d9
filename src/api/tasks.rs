//! `/api/tasks` and `/api/tasks/:id`, and the rules about a task's references (statuses,
//! parents, members, labels) that the PATCH (`task_patch`) and the assignee and label routes
//! (`task_relations`) share.
//!
//! Bodies are parsed and their values validated before the store is touched; checks that need the
//! database (visibility, role, statuses, parents, members, labels) run inside the same
//! `BEGIN IMMEDIATE` transaction as the write, so they cannot go stale before it commits.

use hyper::StatusCode;

use super::task_patch::{TaskPatch, merge, place};
use super::{task_events, task_json};
use crate::app::{ApiRequest, Site};
use crate::auth::Principal;
use crate::conditional;
use crate::error::Error;
use crate::json::{Body, Patch};
use crate::query::decode_cursor;
use crate::reply::Reply;
use crate::store::Tx;
use crate::store::labels::{self, LabelRef};
use crate::store::projects::{self, Category};
use crate::store::spaces;
use crate::store::tasks::{self, NewTask, Priority, Task, TaskFilter, VisibleTask};
use crate::store::webhooks::EventType;
use crate::store::{Snapshot, Writes};
use crate::validate;

const FIELDS: &[&str] = &[
    "projectId",
    "title",
    "description",
    "statusId",
    "priority",
    "dueDate",
    "startDate",
    "position",
    "parentId",
    "assignees",
    "labels",
];

const LIST_PARAMETERS: &[&str] = &[
    "projectId",
    "statusId",
    "assigneeId",
    "labelId",
    "priority",
    "completed",
    "dueBefore",
    "dueAfter",
    "parentId",
    "updatedSince",
    "q",
    "limit",
    "cursor",
];

pub(super) const MAX_LABEL_NAME_CHARS: usize = 100;

/// GET: filtered, paged by `(position, id)`.
pub fn list(
    site: &Site,
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    request: &ApiRequest,
) -> Result<Reply, Error> {
    let query = super::query(request, LIST_PARAMETERS)?;
    // Every parameter but the free-text `q` is checked as given: `?completed=` is not "absent".
    let id = |name: &str| query.id(name);
    // In a query string a bad date is `invalid_query`, not `validation_failed`.
    let date = |name: &str| {
        query
            .value(name)
            .map(|d| {
                validate::date(name, d.to_string())
                    .map_err(|e| Error::invalid_query(name, e.to_string()))
            })
            .transpose()
    };
    let filter = TaskFilter {
        project_id: id("projectId")?,
        status_id: id("statusId")?,
        assignee_id: match query.value("assigneeId") {
            Some("me") => Some(principal.user.id.clone()),
            Some(_) => query.id("assigneeId").map_err(|_| {
                Error::invalid_query("assigneeId", "`assigneeId` must be a user id or `me`")
            })?,
            None => None,
        },
        label_id: id("labelId")?,
        priority: query
            .value("priority")
            .map(|p| {
                Priority::parse(p).ok_or_else(|| {
                    Error::invalid_query(
                        "priority",
                        format!("`priority` must be one of: {}", Priority::ALL.join(", ")),
                    )
                })
            })
            .transpose()?,
        completed: query.boolean("completed")?,
        due_before: date("dueBefore")?,
        due_after: date("dueAfter")?,
        parent_id: id("parentId")?,
        updated_since: query
            .value("updatedSince")
            .map(|since| {
                crate::time::parse_timestamp(since).ok_or_else(|| {
                    Error::invalid_query(
                        "updatedSince",
                        "`updatedSince` must be an RFC 3339 timestamp",
                    )
                })
            })
            .transpose()?,
        q: query.get("q").map(str::to_string),
    };
    if filter.project_id.is_none() && filter.assignee_id.is_none() {
        return Err(Error::invalid_query(
            "projectId",
            "`projectId` is required unless `assigneeId` is given",
        ));
    }
    let limit = query.limit()?;
    let cursor = query.get("cursor").map(decode_cursor).transpose()?;
    let after = match &cursor {
        None => None,
        Some(key) => Some(parse_task_cursor(key)?),
    };
    let rows = snapshot.read(|conn| {
        if let Some(project_id) = &filter.project_id {
            projects::project_access(conn, project_id, principal.viewer())?
                .ok_or(Error::NotFound)?;
        }
        tasks::list_tasks(conn, principal.viewer(), &filter, after, limit + 1)
    })?;
    Ok(super::page(
        site,
        request,
        &query,
        rows,
        limit,
        |task: &Task| format!("{}|{}", task.position, task.id),
        |tasks| Reply::written(StatusCode::OK, |out| task_json::write_tasks(tasks, out)),
    ))
}

/// One task as the body (`task_json`, not serde: it is every task route's reply), with its ETag.
pub(super) fn task_reply(status: StatusCode, task: &Task) -> Reply {
    conditional::tagged(Reply::written(status, |out| {
        task_json::write_task(task, out)
    }))
}

/// 412 when the request's `If-Match` does not name `task`'s current ETag (the one a GET gives).
pub(super) fn if_match(request: &ApiRequest, task: &Task) -> Result<(), Error> {
    conditional::check_if_match(&request.headers, |out| task_json::write_task(task, out))
}

fn parse_task_cursor(key: &str) -> Result<(f64, &str), Error> {
    key.split_once('|')
        .and_then(|(position, id)| {
            Some((position.parse::<f64>().ok().filter(|p| p.is_finite())?, id))
        })
        .ok_or_else(|| {
            Error::invalid_query("cursor", "`cursor` is not a cursor this server issued")
        })
}

/// POST: `projectId` and `title` required.
pub fn create(
    site: &Site,
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let body = Body::parse(&request.headers, &request.body, FIELDS)?;
    let project_id = body.required_string("projectId")?;
    let title = validate::text(
        "title",
        body.required_string("title")?,
        validate::MAX_TITLE_CHARS,
    )?;
    let description = body
        .optional_string("description")?
        .map(|d| validate::description("description", d))
        .transpose()?;
    let status_id = body.optional_string("statusId")?;
    let priority = match body.optional_string("priority")? {
        Some(p) => validate::one_of("priority", &p, Priority::parse, Priority::ALL)?,
        None => Priority::None,
    };
    let due_date = body
        .optional_string("dueDate")?
        .map(|d| validate::date("dueDate", d))
        .transpose()?;
    let start_date = body
        .optional_string("startDate")?
        .map(|d| validate::date("startDate", d))
        .transpose()?;
    let position = body.optional_number("position")?;
    let parent_id = body.optional_string("parentId")?;
    let assignees = dedup(
        body.optional_string_array("assignees", validate::MAX_ASSIGNEES)?
            .unwrap_or_default(),
    );
    let labels = label_references(
        body.optional_string_array("labels", validate::MAX_LABELS)?
            .unwrap_or_default(),
    )?;

    let (task, json) = writes.write(|tx| {
        let (space_id, role) = projects::project_access(tx, &project_id, principal.viewer())?
            .ok_or(Error::NotFound)?;
        super::require_write(role)?;
        // Rules across fields and rows, which the document cannot state, come after the
        // project is found: a request the document allows, about nothing the caller can see,
        // is a 404 like any other.
        check_date_order(start_date.as_deref(), due_date.as_deref())?;
        let (status_id, category) = match status_id {
            Some(id) => {
                let category =
                    tasks::status_category(tx, &project_id, &id)?.ok_or_else(not_a_status)?;
                (id, category)
            }
            None => initial_status(tx, &project_id)?,
        };
        if let Some(parent) = &parent_id {
            check_parent(tx, &project_id, parent)?;
        }
        check_members(tx, &space_id, "assignees", &assignees)?;
        let labels = resolve_labels(tx, &space_id, &labels)?;
        let new = NewTask {
            project_id: project_id.clone(),
            status_id,
            title,
            description,
            priority,
            due_date,
            start_date,
            position,
            parent_id,
            assignees,
            labels,
            created_by: principal.user.id.clone(),
        };
        let task = tasks::create_task(tx, &new, category)?;
        let outbox = super::outbox(tx, &space_id, principal)?;
        // With a webhook to tell, the event's data is the answer's body: written once.
        let json = outbox.wants(EventType::TaskCreated).then(|| {
            let mut json = Vec::with_capacity(1024);
            task_json::write_task(&task, &mut json);
            json
        });
        if let Some(json) = &json {
            outbox.emit(tx, EventType::TaskCreated, json)?;
        }
        Ok((task, json))
    })?;
    let location = format!("{}/api/tasks/{}", site.base_url(&request.headers), task.id);
    let reply = match json {
        Some(json) => conditional::tagged(Reply::written(StatusCode::CREATED, |out| *out = json)),
        None => task_reply(StatusCode::CREATED, &task),
    };
    Ok(reply.with_header(hyper::header::LOCATION, &location))
}

pub fn get(
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let reply = Reply::try_written(StatusCode::OK, |out| {
        let viewer = principal.viewer();
        let found = snapshot.read(|conn| {
            tasks::read_task_for_user(conn, task_id, viewer, |row| task_json::write_row(row, out))
        })?;
        found.ok_or(Error::NotFound)
    })?;
    Ok(conditional::tagged_get(reply, &request.headers))
}

/// PATCH: absent = unchanged, `null` clears `description`, `dueDate`, `startDate`, `parentId`.
/// `assignees` and `labels` replace the sets. `projectId` moves the task (and its subtasks) to
/// another project of the same space. In three steps: the body is parsed into a `TaskPatch`
/// (no database), where the task ends up is looked up (`Placement`), and `merge` turns the two
/// into the update (no database again).
pub fn update(
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let body = Body::parse(&request.headers, &request.body, FIELDS)?;
    let patch = TaskPatch::parse(&body)?;
    let task = writes.write(|tx| {
        let VisibleTask {
            task,
            role,
            space_id,
        } = visible_task(tx, principal, task_id)?;
        super::require_write(role)?;
        if_match(request, &task)?;
        if body.is_empty() {
            return Ok(task);
        }
        let placement = place(tx, principal, &task, &space_id, &patch)?;
        let update = merge(&task, &patch, &placement, &crate::time::now())?;
        tasks::update_task(tx, &task.id, &update)?;
        if placement.moved {
            move_subtasks(tx, &task.id, &task.project_id, &update.project_id)?;
        }
        if let Some(assignees) = &patch.assignees {
            check_members(tx, &space_id, "assignees", assignees)?;
            tasks::set_assignees(tx, &task.id, assignees)?;
        }
        if let Some(labels) = &patch.labels {
            let label_ids: Vec<String> = resolve_labels(tx, &space_id, labels)?
                .into_iter()
                .map(|label| label.id)
                .collect();
            tasks::set_labels(tx, &task.id, &label_ids)?;
        }
        let after = reload(tx, principal, &task.id)?;
        let outbox = super::outbox(tx, &space_id, principal)?;
        task_events::changed(tx, &outbox, &task, &after)?;
        if placement.moved && outbox.wants(EventType::TaskUpdated) {
            for subtask in tasks::descendants(tx, &task.id)? {
                let subtask = reload(tx, principal, &subtask)?;
                task_events::emit(tx, &outbox, EventType::TaskUpdated, &subtask, None)?;
            }
        }
        Ok(after)
    })?;
    Ok(task_reply(StatusCode::OK, &task))
}

/// DELETE: the task and all its subtasks.
pub fn delete(
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    writes.write(|tx| {
        let visible = visible_task(tx, principal, task_id)?;
        super::require_write(visible.role)?;
        if_match(request, &visible.task)?;
        let outbox = super::outbox(tx, &visible.space_id, principal)?;
        let mut gone = Vec::new();
        if outbox.wants(EventType::TaskDeleted) {
            let project_id = &visible.task.project_id;
            gone.push((visible.task.id.clone(), project_id.clone()));
            for subtask in tasks::descendants(tx, task_id)? {
                gone.push((subtask, project_id.clone()));
            }
        }
        tasks::delete_task(tx, task_id)?;
        task_events::deleted(tx, &outbox, &gone)
    })?;
    Ok(Reply::no_content())
}

pub(super) fn visible_task(
    tx: &Tx<'_>,
    principal: &Principal,
    task_id: &str,
) -> Result<VisibleTask, Error> {
    tasks::find_task_for_user(tx, task_id, principal.viewer())?.ok_or(Error::NotFound)
}

pub(super) fn reload(tx: &Tx<'_>, principal: &Principal, task_id: &str) -> Result<Task, Error> {
    Ok(visible_task(tx, principal, task_id)?.task)
}

pub(super) fn not_a_status() -> Error {
    Error::validation(
        "statusId",
        "`statusId` must be a status of the task's project",
    )
}

/// New tasks start in the project's first `todo` status.
fn initial_status(tx: &Tx<'_>, project_id: &str) -> Result<(String, Category), Error> {
    let id = tasks::first_status_of(tx, project_id, Category::Todo)?
        .ok_or_else(|| Error::internal(format!("project {project_id} has no todo status")))?;
    Ok((id, Category::Todo))
}

/// A moved task keeps its kind of status: the target's first status of the same category.
pub(super) fn matching_status(
    tx: &Tx<'_>,
    project_id: &str,
    category: Category,
) -> Result<(String, Category), Error> {
    match tasks::first_status_of(tx, project_id, category)? {
        Some(id) => Ok((id, category)),
        None => initial_status(tx, project_id),
    }
}

pub(super) fn move_subtasks(tx: &Tx<'_>, task_id: &str, from: &str, to: &str) -> Result<(), Error> {
    for subtask in tasks::descendants(tx, task_id)? {
        let (status_id, completed) = tasks::status_and_completion(tx, &subtask)?;
        let category = tasks::status_category(tx, from, &status_id)?.unwrap_or(Category::Todo);
        let (new_status, _) = matching_status(tx, to, category)?;
        tasks::move_subtask(tx, &subtask, to, &new_status, completed.as_deref())?;
    }
    Ok(())
}

pub(super) fn check_parent(tx: &Tx<'_>, project_id: &str, parent_id: &str) -> Result<(), Error> {
    if tasks::project_of_task(tx, parent_id)?.as_deref() == Some(project_id) {
        Ok(())
    } else {
        Err(Error::validation(
            "parentId",
            "`parentId` must be a task in the same project",
        ))
    }
}

pub(super) fn check_members(
    tx: &Tx<'_>,
    space_id: &str,
    field: &str,
    user_ids: &[String],
) -> Result<(), Error> {
    for user_id in user_ids {
        if spaces::role_in_space(tx, space_id, spaces::Viewer::user(user_id))?.is_none() {
            return Err(Error::validation(
                field,
                format!("user {user_id} is not a member of the task's space"),
            ));
        }
    }
    Ok(())
}

/// A `labels` entry: an existing label's id, or a name to find or create.
pub(super) enum LabelReference {
    Id(String),
    Name(String),
}

/// The entries of `labels`, validated, each named once: ids compared exactly, names as the
/// database compares them (ASCII case folded), so the transaction resolves each label once.
pub(super) fn label_references(entries: Vec<String>) -> Result<Vec<LabelReference>, Error> {
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    let mut references = Vec::with_capacity(entries.len());
    for entry in entries {
        let reference = if uuid::Uuid::try_parse(&entry).is_ok() {
            LabelReference::Id(entry)
        } else {
            LabelReference::Name(label_name(entry)?)
        };
        let key = match &reference {
            LabelReference::Id(id) => (true, id.clone()),
            LabelReference::Name(name) => (false, name.to_ascii_lowercase()),
        };
        if seen.insert(key) {
            references.push(reference);
        }
    }
    Ok(references)
}

fn label_name(name: String) -> Result<String, Error> {
    validate::name("name", name, MAX_LABEL_NAME_CHARS).map_err(|_| {
        Error::validation(
            "labels",
            format!(
                "label names are 1-{MAX_LABEL_NAME_CHARS} characters, without control characters"
            ),
        )
    })
}

pub(super) fn resolve_labels(
    tx: &Tx<'_>,
    space_id: &str,
    references: &[LabelReference],
) -> Result<Vec<LabelRef>, Error> {
    let mut resolved: Vec<LabelRef> = Vec::with_capacity(references.len());
    let mut seen = std::collections::HashSet::with_capacity(references.len());
    for reference in references {
        let label = match reference {
            LabelReference::Id(id) => {
                labels::find_label_in_space(tx, space_id, id)?.ok_or_else(|| {
                    Error::validation("labels", format!("no label {id} in the task's space"))
                })?
            }
            LabelReference::Name(name) => {
                labels::find_or_create_label(tx, space_id, name, None, "labels")?
            }
        };
        // An id and a name can still name one label.
        if seen.insert(label.id.clone()) {
            resolved.push(LabelRef {
                id: label.id,
                name: label.name,
                color: label.color,
            });
        }
    }
    Ok(resolved)
}

pub(super) fn patch_date(body: &Body, field: &str) -> Result<Patch<String>, Error> {
    body.patch_string(field)?
        .map(|d| d.map(|d| validate::date(field, d)).transpose())
        .transpose()
}

pub(super) fn check_date_order(start: Option<&str>, due: Option<&str>) -> Result<(), Error> {
    match (start, due) {
        (Some(start), Some(due)) if start > due => Err(Error::validation(
            "startDate",
            "`startDate` must not be after `dueDate`",
        )),
        _ => Ok(()),
    }
}

pub(super) fn dedup(mut ids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    ids
}
