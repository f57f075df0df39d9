//! `/api/tasks/:id/assignees` and `/api/tasks/:id/labels`: adding and removing one at a time.
//! Each answers with the task; each is idempotent (a change that changes nothing leaves
//! `updatedAt` alone).

use hyper::StatusCode;

use super::tasks::{
    MAX_LABEL_NAME_CHARS, check_members, if_match, reload, task_reply, visible_task,
};
use crate::app::ApiRequest;
use crate::auth::Principal;
use crate::error::Error;
use crate::json::Body;
use crate::reply::Reply;
use crate::store::Tx;
use crate::store::Writes;
use crate::store::labels;
use crate::store::tasks::{self, VisibleTask};
use crate::validate;

/// POST assignees `{"userId"}`: the user must be a member of the task's space. Idempotent.
pub fn add_assignee(
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let user_id =
        Body::parse(&request.headers, &request.body, &["userId"])?.required_string("userId")?;
    change_task(writes, principal, request, task_id, |tx, visible| {
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
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    let named = delete_parameters(request, &["userId"])?;
    change_task(writes, principal, request, task_id, |tx, _| {
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
    writes: &Writes<'_>,
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
    change_task(writes, principal, request, task_id, |tx, visible| {
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
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
) -> Result<Reply, Error> {
    let named = delete_parameters(request, &["labelId", "name"])?;
    change_task(writes, principal, request, task_id, |tx, visible| {
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
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    task_id: &str,
    change: impl FnOnce(&Tx<'_>, &VisibleTask) -> Result<bool, Error>,
) -> Result<Reply, Error> {
    let task = writes.write(|tx| {
        let visible = visible_task(tx, principal, task_id)?;
        super::require_write(visible.role)?;
        if_match(request, &visible.task)?;
        if change(tx, &visible)? {
            tasks::touch_task(tx, task_id)?;
            let after = reload(tx, principal, task_id)?;
            let outbox = super::outbox(tx, &visible.space_id, principal)?;
            super::task_events::changed(tx, &outbox, &visible.task, &after)?;
            return Ok(after);
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

/// A task already holding the most it may of `what` (the same cap as the arrays of its body, so
/// that a task read back can always be written back).
fn full(field: &str, what: &str, max: usize) -> Error {
    Error::Conflict {
        field: Some(field.to_string()),
        message: format!("this task already has {max} {what}, the most it can hold"),
    }
}
