//! The webhook events of task changes (docs/webhooks.md, "Events"), recorded in the write's own
//! transaction through the space's `Outbox`. Nothing is serialized unless a webhook of the space
//! subscribes to the event, so a space without webhooks pays one indexed lookup per write.

use super::task_json;
use crate::error::Error;
use crate::store::Tx;
use crate::store::tasks::Task;
use crate::store::webhooks::{EventType, Outbox};

/// `event` with the task as its data, plus `extra` (`"assigneeId"` or `"labelId"` and its value).
pub(super) fn emit(
    tx: &Tx<'_>,
    outbox: &Outbox,
    event: EventType,
    task: &Task,
    extra: Option<(&str, &str)>,
) -> Result<(), Error> {
    outbox.emit_with(tx, event, |data| {
        task_json::write_task(task, data);
        if let Some((name, value)) = extra {
            data.pop(); // the object's closing brace
            data.push(b',');
            crate::json::push_str(data, name);
            data.push(b':');
            crate::json::push_str(data, value);
            data.push(b'}');
        }
    })
}

/// The events of `before` becoming `after`: none when nothing but `updatedAt` differs; else
/// `task.updated`, then `task.completed` when it became completed, then one event per assignee
/// and label added or removed.
pub(super) fn changed(
    tx: &Tx<'_>,
    outbox: &Outbox,
    before: &Task,
    after: &Task,
) -> Result<(), Error> {
    const CHANGE_EVENTS: [EventType; 6] = [
        EventType::TaskUpdated,
        EventType::TaskCompleted,
        EventType::TaskAssigneeAdded,
        EventType::TaskAssigneeRemoved,
        EventType::TaskLabelAdded,
        EventType::TaskLabelRemoved,
    ];
    if !CHANGE_EVENTS.iter().any(|&event| outbox.wants(event)) {
        return Ok(());
    }
    if !differs(before, after) {
        return Ok(());
    }
    emit(tx, outbox, EventType::TaskUpdated, after, None)?;
    if before.completed_at.is_none() && after.completed_at.is_some() {
        emit(tx, outbox, EventType::TaskCompleted, after, None)?;
    }
    let (assignees_before, assignees_after) = (assignees(before), assignees(after));
    let (labels_before, labels_after) = (labels(before), labels(after));
    // (event, its extra field, the ids it had, the ids it has): an event per id gained.
    for (event, field, from, to) in [
        (
            EventType::TaskAssigneeAdded,
            "assigneeId",
            &assignees_before,
            &assignees_after,
        ),
        (
            EventType::TaskAssigneeRemoved,
            "assigneeId",
            &assignees_after,
            &assignees_before,
        ),
        (
            EventType::TaskLabelAdded,
            "labelId",
            &labels_before,
            &labels_after,
        ),
        (
            EventType::TaskLabelRemoved,
            "labelId",
            &labels_after,
            &labels_before,
        ),
    ] {
        for id in to.iter().filter(|id| !from.contains(id)) {
            emit(tx, outbox, event, after, Some((field, id)))?;
        }
    }
    Ok(())
}

/// `task.deleted` with `{id, projectId}`, for each of `tasks` (a task and its subtasks).
pub(super) fn deleted(
    tx: &Tx<'_>,
    outbox: &Outbox,
    tasks: &[(String, String)],
) -> Result<(), Error> {
    for (id, project_id) in tasks {
        let mut data = Vec::with_capacity(96);
        data.extend_from_slice(b"{\"id\":");
        crate::json::push_str(&mut data, id);
        data.extend_from_slice(b",\"projectId\":");
        crate::json::push_str(&mut data, project_id);
        data.push(b'}');
        outbox.emit(tx, EventType::TaskDeleted, &data)?;
    }
    Ok(())
}

fn assignees(task: &Task) -> Vec<&str> {
    task.assignees.iter().map(String::as_str).collect()
}

fn labels(task: &Task) -> Vec<&str> {
    task.labels.iter().map(|label| label.id.as_str()).collect()
}

/// True when the two would be written differently, `updatedAt` aside.
fn differs(before: &Task, after: &Task) -> bool {
    let mut a = Vec::with_capacity(1024);
    let mut b = Vec::with_capacity(1024);
    let mut before = before.clone();
    before.updated_at.clone_from(&after.updated_at);
    task_json::write_task(&before, &mut a);
    task_json::write_task(after, &mut b);
    a != b
}
