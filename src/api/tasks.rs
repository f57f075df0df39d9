//! `/api/tasks`, `/api/tasks/:id`, and a task's assignees and labels.
//!
//! Bodies are parsed and their values validated before the store is touched; checks that need the
//! database (visibility, role, statuses, parents, members, labels) run inside the same
//! `BEGIN IMMEDIATE` transaction as the write, so they cannot go stale before it commits.

use hyper::StatusCode;

use crate::store::Tx;

use crate::app::{ApiRequest, App};
use crate::auth::Principal;
use crate::error::Error;
use crate::json::{Body, Patch, Reply, decode_cursor};
use crate::store::labels::{self, LabelRef};
use crate::store::projects::{self, Category};
use crate::store::spaces;
use crate::store::tasks::{self, NewTask, Priority, Task, TaskFilter, TaskUpdate, VisibleTask};
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

const MAX_LABEL_NAME_CHARS: usize = 100;

/// GET: filtered, paged by `(position, id)`.
pub fn list(app: &App, principal: &Principal, request: &ApiRequest) -> Result<Reply, Error> {
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
    let rows = app.store.read(|conn| {
        if let Some(project_id) = &filter.project_id {
            projects::project_access(conn, project_id, &principal.user.id)?
                .ok_or(Error::NotFound)?;
        }
        tasks::list_tasks(conn, &principal.user.id, &filter, after, limit + 1)
    })?;
    Ok(super::page(
        app,
        request,
        &query,
        rows,
        limit,
        |task: &Task| format!("{}|{}", task.position, task.id),
        |tasks| Reply::written(StatusCode::OK, |out| Task::write_json_array(tasks, out)),
    ))
}

/// One task as the body (`Task::write_json`, not serde: it is every task route's reply).
fn task_reply(status: StatusCode, task: &Task) -> Reply {
    Reply::written(status, |out| task.write_json(out))
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
pub fn create(app: &App, principal: &Principal, request: &ApiRequest) -> Result<Reply, Error> {
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

    let task = app.store.write(|tx| {
        let (space_id, role) = projects::project_access(tx, &project_id, &principal.user.id)?
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
        tasks::create_task(tx, &new, category)
    })?;
    let location = format!("{}/api/tasks/{}", app.base_url(&request.headers), task.id);
    Ok(task_reply(StatusCode::CREATED, &task).with_header(hyper::header::LOCATION, &location))
}

pub fn get(
    app: &App,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    Reply::try_written(StatusCode::OK, |out| {
        let user_id = &principal.user.id;
        let found = app
            .store
            .read(|conn| tasks::write_task_for_user(conn, task_id, user_id, out))?;
        if found { Ok(()) } else { Err(Error::NotFound) }
    })
}

/// PATCH: absent = unchanged, `null` clears `description`, `dueDate`, `startDate`, `parentId`.
/// `assignees` and `labels` replace the sets. `projectId` moves the task (and its subtasks) to
/// another project of the same space. In three steps: the body is parsed into a `TaskPatch`
/// (no database), where the task ends up is looked up (`Placement`), and `merge` turns the two
/// into the update (no database again).
pub fn update(
    app: &App,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let body = Body::parse(&request.headers, &request.body, FIELDS)?;
    let patch = TaskPatch::parse(&body)?;
    let task = app.store.write(|tx| {
        let VisibleTask {
            task,
            role,
            space_id,
        } = visible_task(tx, principal, task_id)?;
        super::require_write(role)?;
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
        reload(tx, principal, &task.id)
    })?;
    Ok(task_reply(StatusCode::OK, &task))
}

/// A PATCH body, validated field by field: `None` = absent (unchanged); for the nullable fields
/// `Some(None)` clears.
#[derive(Default)]
struct TaskPatch {
    project_id: Option<String>,
    title: Option<String>,
    description: Patch<String>,
    status_id: Option<String>,
    priority: Option<Priority>,
    due_date: Patch<String>,
    start_date: Patch<String>,
    position: Option<f64>,
    parent_id: Patch<String>,
    assignees: Option<Vec<String>>,
    labels: Option<Vec<LabelReference>>,
}

impl TaskPatch {
    fn parse(body: &Body) -> Result<TaskPatch, Error> {
        body.reject_nulls(&[
            "projectId",
            "title",
            "statusId",
            "priority",
            "position",
            "assignees",
            "labels",
        ])?;
        Ok(TaskPatch {
            project_id: body.patch_required_string("projectId")?,
            title: body
                .patch_required_string("title")?
                .map(|t| validate::text("title", t, validate::MAX_TITLE_CHARS))
                .transpose()?,
            description: body
                .patch_string("description")?
                .map(|d| {
                    d.map(|d| validate::description("description", d))
                        .transpose()
                })
                .transpose()?,
            status_id: body.patch_required_string("statusId")?,
            priority: body
                .patch_required_string("priority")?
                .map(|p| validate::one_of("priority", &p, Priority::parse, Priority::ALL))
                .transpose()?,
            due_date: patch_date(body, "dueDate")?,
            start_date: patch_date(body, "startDate")?,
            position: body.optional_number("position")?,
            parent_id: body.patch_string("parentId")?,
            assignees: body
                .optional_string_array("assignees", validate::MAX_ASSIGNEES)?
                .map(dedup),
            labels: body
                .optional_string_array("labels", validate::MAX_LABELS)?
                .map(label_references)
                .transpose()?,
        })
    }
}

/// Where a patched task ends up, as the database says: its project, its status and that status's
/// category (and the old one's), and, when it moves, the end of the new project's order.
struct Placement {
    project_id: String,
    moved: bool,
    status_id: String,
    category: Category,
    old_category: Category,
    next_position: Option<f64>,
}

/// Looks up what `merge` needs, checking the patch's references on the way: a project of the same
/// space, a status of the target project, a parent in it that is not a descendant.
fn place(
    tx: &Tx<'_>,
    principal: &Principal,
    task: &Task,
    space_id: &str,
    patch: &TaskPatch,
) -> Result<Placement, Error> {
    let project_id = patch
        .project_id
        .clone()
        .unwrap_or_else(|| task.project_id.clone());
    let moved = project_id != task.project_id;
    if moved {
        let in_space = projects::project_access(tx, &project_id, &principal.user.id)?
            .is_some_and(|(target_space, _)| target_space == space_id);
        if !in_space {
            return Err(Error::validation(
                "projectId",
                "`projectId` must be a project in this task's space",
            ));
        }
    }
    let old_category =
        tasks::status_category(tx, &task.project_id, &task.status_id)?.unwrap_or(Category::Todo);
    let (status_id, category) = match &patch.status_id {
        Some(id) => {
            let category = tasks::status_category(tx, &project_id, id)?.ok_or_else(not_a_status)?;
            (id.clone(), category)
        }
        None if moved => matching_status(tx, &project_id, old_category)?,
        None => (task.status_id.clone(), old_category),
    };
    if let Some(Some(parent)) = &patch.parent_id {
        check_parent(tx, &project_id, parent)?;
        if tasks::would_create_cycle(tx, &task.id, parent)? {
            return Err(Error::validation(
                "parentId",
                "a task cannot be its own ancestor",
            ));
        }
    }
    let next_position = if moved && patch.position.is_none() {
        Some(tasks::next_position(tx, &project_id)?)
    } else {
        None
    };
    Ok(Placement {
        project_id,
        moved,
        status_id,
        category,
        old_category,
        next_position,
    })
}

/// The update `patch` makes of `task`, placed by `placement`, at `now`: absent fields keep their
/// values and `null` clears; a moved task leaves its parent behind (unless the patch names one)
/// and goes to the end of its new project; `completedAt` follows the status's category; the start
/// date may not come after the due date. No database: the rules are unit-tested below.
fn merge(
    task: &Task,
    patch: &TaskPatch,
    placement: &Placement,
    now: &str,
) -> Result<TaskUpdate, Error> {
    let due_date = patch.due_date.clone().unwrap_or(task.due_date.clone());
    let start_date = patch.start_date.clone().unwrap_or(task.start_date.clone());
    check_date_order(start_date.as_deref(), due_date.as_deref())?;
    let parent_id = match &patch.parent_id {
        Some(parent) => parent.clone(),
        // The old parent stays behind in the old project.
        None if placement.moved => None,
        None => task.parent_id.clone(),
    };
    Ok(TaskUpdate {
        project_id: placement.project_id.clone(),
        status_id: placement.status_id.clone(),
        title: patch.title.clone().unwrap_or(task.title.clone()),
        description: patch
            .description
            .clone()
            .unwrap_or(task.description.clone()),
        priority: patch.priority.unwrap_or(task.priority),
        due_date,
        start_date,
        position: patch
            .position
            .or(placement.next_position)
            .unwrap_or(task.position),
        parent_id,
        completed_at: completed_at(
            placement.old_category,
            placement.category,
            task.completed_at.as_deref(),
            now,
        ),
    })
}

/// DELETE: the task and all its subtasks.
pub fn delete(
    app: &App,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    app.store.write(|tx| {
        let visible = visible_task(tx, principal, task_id)?;
        super::require_write(visible.role)?;
        tasks::delete_task(tx, task_id)
    })?;
    Ok(Reply::no_content())
}

/// POST assignees `{"userId"}`: the user must be a member of the task's space. Idempotent.
pub fn add_assignee(
    app: &App,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let user_id =
        Body::parse(&request.headers, &request.body, &["userId"])?.required_string("userId")?;
    change_task(app, principal, task_id, |tx, visible| {
        check_members(
            tx,
            &visible.space_id,
            "userId",
            std::slice::from_ref(&user_id),
        )?;
        let assignees = &visible.task.assignees;
        if assignees.len() >= validate::MAX_ASSIGNEES && !assignees.contains(&user_id) {
            return Err(full("userId", "assignees", validate::MAX_ASSIGNEES));
        }
        tasks::add_assignee(tx, task_id, &user_id)
    })
}

/// DELETE assignees: `?userId=`, `{"userId"}`, or both (each names a user to unassign).
/// Idempotent.
pub fn remove_assignee(
    app: &App,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    let named = delete_parameters(request, &["userId"])?;
    change_task(app, principal, task_id, |tx, _| {
        let user_ids = named_at_least_once(&named, "userId")?;
        let mut changed = false;
        for user_id in user_ids {
            changed |= tasks::remove_assignee(tx, task_id, user_id)?;
        }
        Ok(changed)
    })
}

/// POST labels: `{"labelId"}` and/or `{"name", "color"?}` (found case-insensitively or created):
/// each names a label to add.
pub fn add_label(
    app: &App,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let body = Body::parse(
        &request.headers,
        &request.body,
        &["labelId", "name", "color"],
    )?;
    let label_id = body.optional_string("labelId")?;
    let name = body
        .optional_string("name")?
        .map(|n| validate::name("name", n, MAX_LABEL_NAME_CHARS))
        .transpose()?;
    let color = body
        .optional_string("color")?
        .map(|c| validate::color("color", c))
        .transpose()?;
    if label_id.is_none() && name.is_none() {
        return Err(Error::validation(
            "labelId",
            "`labelId` or `name` is required",
        ));
    }
    if color.is_some() && name.is_none() {
        return Err(Error::validation(
            "color",
            "`color` goes with `name`, for a label created by name",
        ));
    }
    change_task(app, principal, task_id, |tx, visible| {
        let mut wanted = Vec::with_capacity(2);
        if let Some(id) = &label_id {
            let label = labels::find_label_in_space(tx, &visible.space_id, id)?;
            wanted.push((
                "labelId",
                label.ok_or_else(|| {
                    Error::validation("labelId", "no label with this id in the task's space")
                })?,
            ));
        }
        if let Some(name) = &name {
            let label = labels::find_or_create_label(
                tx,
                &visible.space_id,
                name,
                color.as_deref(),
                "name",
            )?;
            wanted.push(("name", label));
        }
        let mut labels: Vec<&str> = visible.task.labels.iter().map(|l| l.id.as_str()).collect();
        let mut changed = false;
        for (field, label) in &wanted {
            if labels.contains(&label.id.as_str()) {
                continue;
            }
            if labels.len() >= validate::MAX_LABELS {
                return Err(full(field, "labels", validate::MAX_LABELS));
            }
            labels.push(&label.id);
            changed |= tasks::add_label(tx, task_id, &label.id)?;
        }
        Ok(changed)
    })
}

/// DELETE labels: `labelId` and `name`, in the query, in the body, or both: each names a label
/// (by id, or by name case-insensitively) to remove. Idempotent.
pub fn remove_label(
    app: &App,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    let named = delete_parameters(request, &["labelId", "name"])?;
    change_task(app, principal, task_id, |tx, visible| {
        named_at_least_once(&named, "labelId")?;
        let mut changed = false;
        for (field, value) in &named {
            let label = if *field == "labelId" {
                labels::find_label_in_space(tx, &visible.space_id, value)?
            } else {
                labels::find_label_by_name(tx, &visible.space_id, value.trim())?
            };
            if let Some(label) = label {
                changed |= tasks::remove_label(tx, task_id, &label.id)?;
            }
        }
        Ok(changed)
    })
}

/// Runs an assignee or label change on a task the caller may write; touches `updatedAt` when the
/// change did something, and answers with the task.
fn change_task(
    app: &App,
    principal: &Principal,
    task_id: &str,
    change: impl FnOnce(&Tx<'_>, &VisibleTask) -> Result<bool, Error>,
) -> Result<Reply, Error> {
    let task = app.store.write(|tx| {
        let visible = visible_task(tx, principal, task_id)?;
        super::require_write(visible.role)?;
        if change(tx, &visible)? {
            tasks::touch_task(tx, task_id)?;
            return reload(tx, principal, task_id);
        }
        Ok(visible.task)
    })?;
    Ok(task_reply(StatusCode::OK, &task))
}

/// A DELETE's parameters, `(name, value)` for every one given in the query string and in the
/// JSON body (the body is optional, and when there is one it names at least one; the two add up).
/// Ids must be UUIDs (kept in lower case), names must not be blank or hold control characters; a
/// value of the wrong type, `null` included, is refused wherever it is.
fn delete_parameters<'n>(
    request: &ApiRequest,
    names: &[&'n str],
) -> Result<Vec<(&'n str, String)>, Error> {
    let query = super::query(request, names)?;
    let mut named = Vec::new();
    for name in names {
        if let Some(value) = query.value(name) {
            named.push((*name, checked_parameter(name, value, Error::invalid_query)?));
        }
    }
    if request.body.is_empty() {
        return Ok(named);
    }
    let body = Body::parse(&request.headers, &request.body, names)?;
    let from_body = named.len();
    for name in names {
        if let Some(value) = body.patch_required_string(name)? {
            named.push((*name, checked_parameter(name, &value, Error::validation)?));
        }
    }
    if named.len() == from_body {
        return Err(Error::validation(
            names[0],
            format!("a body must name at least one of: {}", names.join(", ")),
        ));
    }
    Ok(named)
}

/// An id as a lower-case UUID, or a name that is not blank and holds no control characters;
/// `refuse` makes the error of where the value came from.
fn checked_parameter(
    name: &str,
    value: &str,
    refuse: fn(String, String) -> Error,
) -> Result<String, Error> {
    if name.ends_with("Id") {
        return validate::uuid(value)
            .ok_or_else(|| refuse(name.to_string(), format!("`{name}` must be an id (a UUID)")));
    }
    if value.trim().is_empty()
        || value.chars().any(validate::is_unprintable)
        || value.chars().count() > MAX_LABEL_NAME_CHARS
    {
        return Err(refuse(
            name.to_string(),
            format!(
                "`{name}` must be 1-{MAX_LABEL_NAME_CHARS} characters, not blank, without control characters"
            ),
        ));
    }
    Ok(value.to_string())
}

/// The values of a DELETE's parameters, of which there must be at least one. Checked once the
/// task is known to exist (the document cannot state a rule across the query and the body, so a
/// request it allows about a task that does not exist is a 404, as any other).
fn named_at_least_once<'a>(
    named: &'a [(&str, String)],
    field: &str,
) -> Result<Vec<&'a str>, Error> {
    if named.is_empty() {
        return Err(Error::validation(
            field,
            format!("name at least one, in the query (`?{field}=`) or in a JSON body"),
        ));
    }
    Ok(named.iter().map(|(_, value)| value.as_str()).collect())
}

fn visible_task(tx: &Tx<'_>, principal: &Principal, task_id: &str) -> Result<VisibleTask, Error> {
    tasks::find_task_for_user(tx, task_id, &principal.user.id)?.ok_or(Error::NotFound)
}

fn reload(tx: &Tx<'_>, principal: &Principal, task_id: &str) -> Result<Task, Error> {
    Ok(visible_task(tx, principal, task_id)?.task)
}

/// A task already holding the most it may of `what` (the same cap as the arrays of its body, so
/// that a task read back can always be written back).
fn full(field: &str, what: &str, max: usize) -> Error {
    Error::Conflict {
        field: Some(field.to_string()),
        message: format!("this task already has {max} {what}, the most it can hold"),
    }
}

fn not_a_status() -> Error {
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
fn matching_status(
    tx: &Tx<'_>,
    project_id: &str,
    category: Category,
) -> Result<(String, Category), Error> {
    match tasks::first_status_of(tx, project_id, category)? {
        Some(id) => Ok((id, category)),
        None => initial_status(tx, project_id),
    }
}

/// `completedAt` follows the status category: set (to `now`) on entering `done`, cleared on
/// leaving it, kept while staying.
fn completed_at(old: Category, new: Category, current: Option<&str>, now: &str) -> Option<String> {
    match (old == Category::Done, new == Category::Done) {
        (_, false) => None,
        (false, true) => Some(now.to_string()),
        (true, true) => Some(current.unwrap_or(now).to_string()),
    }
}

fn move_subtasks(tx: &Tx<'_>, task_id: &str, from: &str, to: &str) -> Result<(), Error> {
    for subtask in tasks::descendants(tx, task_id)? {
        let (status_id, completed) = tasks::status_and_completion(tx, &subtask)?;
        let category = tasks::status_category(tx, from, &status_id)?.unwrap_or(Category::Todo);
        let (new_status, _) = matching_status(tx, to, category)?;
        tasks::move_subtask(tx, &subtask, to, &new_status, completed.as_deref())?;
    }
    Ok(())
}

fn check_parent(tx: &Tx<'_>, project_id: &str, parent_id: &str) -> Result<(), Error> {
    if tasks::project_of_task(tx, parent_id)?.as_deref() == Some(project_id) {
        Ok(())
    } else {
        Err(Error::validation(
            "parentId",
            "`parentId` must be a task in the same project",
        ))
    }
}

fn check_members(
    tx: &Tx<'_>,
    space_id: &str,
    field: &str,
    user_ids: &[String],
) -> Result<(), Error> {
    for user_id in user_ids {
        if spaces::role_in_space(tx, space_id, user_id)?.is_none() {
            return Err(Error::validation(
                field,
                format!("user {user_id} is not a member of the task's space"),
            ));
        }
    }
    Ok(())
}

/// A `labels` entry: an existing label's id, or a name to find or create.
enum LabelReference {
    Id(String),
    Name(String),
}

/// The entries of `labels`, validated, each named once: ids compared exactly, names as the
/// database compares them (ASCII case folded), so the transaction resolves each label once.
fn label_references(entries: Vec<String>) -> Result<Vec<LabelReference>, Error> {
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

fn resolve_labels(
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

fn patch_date(body: &Body, field: &str) -> Result<Patch<String>, Error> {
    body.patch_string(field)?
        .map(|d| d.map(|d| validate::date(field, d)).transpose())
        .transpose()
}

fn check_date_order(start: Option<&str>, due: Option<&str>) -> Result<(), Error> {
    match (start, due) {
        (Some(start), Some(due)) if start > due => Err(Error::validation(
            "startDate",
            "`startDate` must not be after `dueDate`",
        )),
        _ => Ok(()),
    }
}

fn dedup(mut ids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-29T12:00:00.000Z";

    fn task() -> Task {
        Task {
            id: "t".into(),
            project_id: "p".into(),
            status_id: "todo".into(),
            title: "Launch".into(),
            description: Some("Ship it".into()),
            priority: Priority::High,
            due_date: Some("2027-01-15".into()),
            start_date: Some("2027-01-10".into()),
            position: 3.0,
            parent_id: Some("epic".into()),
            assignees: Vec::new(),
            labels: Vec::new(),
            completed_at: None,
            created_by: "u".into(),
            created_at: NOW.into(),
            updated_at: NOW.into(),
        }
    }

    /// Where the task stays: its project, its status, nothing moved.
    fn staying() -> Placement {
        Placement {
            project_id: "p".into(),
            moved: false,
            status_id: "todo".into(),
            category: Category::Todo,
            old_category: Category::Todo,
            next_position: None,
        }
    }

    #[test]
    fn absent_fields_keep_their_values() {
        let patch = TaskPatch {
            title: Some("Launch v2".into()),
            ..TaskPatch::default()
        };
        let update = merge(&task(), &patch, &staying(), NOW).unwrap();
        assert_eq!(update.title, "Launch v2");
        assert_eq!(update.priority, Priority::High);
        assert_eq!(update.description.as_deref(), Some("Ship it"));
        assert_eq!(update.due_date.as_deref(), Some("2027-01-15"));
        assert_eq!(update.start_date.as_deref(), Some("2027-01-10"));
        assert_eq!(update.parent_id.as_deref(), Some("epic"));
        assert_eq!(update.position, 3.0);
        assert_eq!(update.completed_at, None);
    }

    #[test]
    fn null_clears_only_what_it_names() {
        let patch = TaskPatch {
            due_date: Some(None),
            parent_id: Some(None),
            ..TaskPatch::default()
        };
        let update = merge(&task(), &patch, &staying(), NOW).unwrap();
        assert_eq!(update.due_date, None);
        assert_eq!(update.parent_id, None);
        assert_eq!(update.start_date.as_deref(), Some("2027-01-10"));
        assert_eq!(update.description.as_deref(), Some("Ship it"));
    }

    #[test]
    fn a_start_after_the_due_date_is_refused_whichever_side_changes() {
        for patch in [
            TaskPatch {
                start_date: Some(Some("2027-02-01".into())),
                ..TaskPatch::default()
            },
            TaskPatch {
                due_date: Some(Some("2027-01-01".into())),
                ..TaskPatch::default()
            },
        ] {
            let error = merge(&task(), &patch, &staying(), NOW).unwrap_err();
            assert_eq!(error.field(), Some("startDate"));
        }
    }

    #[test]
    fn a_moved_task_leaves_its_parent_and_goes_to_the_end_unless_told_otherwise() {
        let moved = Placement {
            project_id: "q".into(),
            moved: true,
            next_position: Some(10.0),
            ..staying()
        };
        let update = merge(&task(), &TaskPatch::default(), &moved, NOW).unwrap();
        assert_eq!(update.project_id, "q");
        assert_eq!(update.parent_id, None);
        assert_eq!(update.position, 10.0);
        let told = TaskPatch {
            parent_id: Some(Some("other-epic".into())),
            position: Some(1.5),
            ..TaskPatch::default()
        };
        let update = merge(&task(), &told, &moved, NOW).unwrap();
        assert_eq!(update.parent_id.as_deref(), Some("other-epic"));
        assert_eq!(update.position, 1.5);
    }

    #[test]
    fn completed_at_follows_the_status_category() {
        let done = Placement {
            status_id: "done".into(),
            category: Category::Done,
            ..staying()
        };
        let update = merge(&task(), &TaskPatch::default(), &done, NOW).unwrap();
        assert_eq!(update.completed_at.as_deref(), Some(NOW), "entering done");
        let finished = Task {
            completed_at: Some("2026-01-01T00:00:00.000Z".into()),
            ..task()
        };
        let staying_done = Placement {
            old_category: Category::Done,
            ..done
        };
        let update = merge(&finished, &TaskPatch::default(), &staying_done, NOW).unwrap();
        assert_eq!(
            update.completed_at.as_deref(),
            Some("2026-01-01T00:00:00.000Z"),
            "staying in done keeps the time"
        );
        let reopened = Placement {
            old_category: Category::Done,
            ..staying()
        };
        let update = merge(&finished, &TaskPatch::default(), &reopened, NOW).unwrap();
        assert_eq!(update.completed_at, None, "leaving done clears it");
    }
}
