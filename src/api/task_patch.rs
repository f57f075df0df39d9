//! A task PATCH in three steps: the body parsed into a `TaskPatch` (no database), where the task
//! ends up looked up (`place`, which checks the patch's references), and `merge`, a pure function
//! from the stored task, the patch and the placement to the update, unit-tested below.

use super::tasks::{
    LabelReference, check_date_order, check_parent, dedup, label_references, matching_status,
    not_a_status, patch_date,
};
use crate::auth::Principal;
use crate::error::Error;
use crate::json::{Body, Patch};
use crate::store::Tx;
use crate::store::projects::{self, Category};
use crate::store::tasks::{self, Priority, Task, TaskUpdate};
use crate::validate;

/// A PATCH body, validated field by field: `None` = absent (unchanged); for the nullable fields
/// `Some(None)` clears.
#[derive(Default)]
pub(super) struct TaskPatch {
    project_id: Option<String>,
    title: Option<String>,
    description: Patch<String>,
    status_id: Option<String>,
    priority: Option<Priority>,
    due_date: Patch<String>,
    start_date: Patch<String>,
    position: Option<f64>,
    parent_id: Patch<String>,
    pub(super) assignees: Option<Vec<String>>,
    pub(super) labels: Option<Vec<LabelReference>>,
}

impl TaskPatch {
    pub(super) fn parse(body: &Body) -> Result<TaskPatch, Error> {
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
            description: body.checked_patch_string("description", validate::description)?,
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
pub(super) struct Placement {
    project_id: String,
    pub(super) moved: bool,
    status_id: String,
    category: Category,
    old_category: Category,
    next_position: Option<f64>,
}

/// Looks up what `merge` needs, checking the patch's references on the way: a project of the same
/// space, a status of the target project, a parent in it that is not a descendant.
pub(super) fn place(
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
        let in_space = projects::project_access(tx, &project_id, principal.viewer())?
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
pub(super) fn merge(
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

/// `completedAt` follows the status category: set (to `now`) on entering `done`, cleared on
/// leaving it, kept while staying.
fn completed_at(old: Category, new: Category, current: Option<&str>, now: &str) -> Option<String> {
    match (old == Category::Done, new == Category::Done) {
        (_, false) => None,
        (false, true) => Some(now.to_string()),
        (true, true) => Some(current.unwrap_or(now).to_string()),
    }
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
