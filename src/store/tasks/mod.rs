//! Tasks with their assignees and labels.
//!
//! A page of tasks costs three queries whatever its size: the tasks, then the assignees and the
//! labels of all of them at once (`load_relations`). Lists are ordered by `(position, id)` and
//! paged by keyset on that pair, which the `tasks_by_project` index serves directly.
//!
//! Files: this one has the task's types, one task read (owned, or borrowed from its row) and
//! its changes; `list` the filtered, paged lists and their relations; `relations` the assignee
//! and label rows.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::Tx;
use super::labels::LabelRef;
use super::projects::Category;
use super::spaces::{Role, Viewer};
use super::{Result, new_id};

crate::text_enum!(Priority { None = "none", Low = "low", Medium = "medium", High = "high", Urgent = "urgent" });

/// Declares a task's own columns once, in their SELECT and JSON order, each as `name: kind` where
/// the kind is `text` (`&str` borrowed, `String` owned), `opt_text` (`Option` of those) or a
/// `Copy` type. From the table come `Task` (the owned task, with its assignees and labels between
/// `before` and `after`, where its JSON has them), `TaskColumns` (the same columns borrowed from a
/// row or a `Task`), reading them from a row, converting between the two, the `columns!()`
/// SELECT list and `COLUMNS`, the number of them.
macro_rules! task_columns {
    (
        before { $first:ident : $first_kind:tt $(, $before:ident : $before_kind:tt)* $(,)? }
        after { $($after:ident : $after_kind:tt),* $(,)? }
    ) => {
        #[derive(Debug, Clone, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct Task {
            pub $first: column!(owned $first_kind),
            $(pub $before: column!(owned $before_kind),)*
            pub assignees: Vec<String>,
            pub labels: Vec<LabelRef>,
            $(pub $after: column!(owned $after_kind),)*
        }

        /// A task's own columns, borrowed from its SQLite row or from a `Task`: what its JSON is
        /// written from (`api::task_json`). A single task is written straight from its row
        /// (`read_task_for_user`), with no owned copy of its strings in between.
        pub struct TaskColumns<'a> {
            pub $first: column!(borrowed 'a $first_kind),
            $(pub $before: column!(borrowed 'a $before_kind),)*
            $(pub $after: column!(borrowed 'a $after_kind),)*
        }

        /// How many columns `columns!()` selects: a row's further values start at this index.
        const COLUMNS: usize =
            [stringify!($first) $(, stringify!($before))* $(, stringify!($after))*].len();

        /// A macro, not a `const`, so that `concat!` builds the hot statements at compile time
        /// instead of a `format!` of the whole statement on every request.
        macro_rules! columns {
            () => {
                concat!(
                    "t.", stringify!($first)
                    $(, ", t.", stringify!($before))*
                    $(, ", t.", stringify!($after))*
                )
            };
        }

        impl<'a> TaskColumns<'a> {
            /// The columns of `columns!()`, in its order, from the start of `row`.
            fn from_row(row: &'a Row<'_>) -> rusqlite::Result<TaskColumns<'a>> {
                // A struct expression evaluates its fields in the order written, so `next()`
                // numbers the columns in the order `columns!()` selects them.
                let mut i = 0;
                let mut next = || {
                    i += 1;
                    i - 1
                };
                Ok(TaskColumns {
                    $first: column!(read $first_kind, row, next()),
                    $($before: column!(read $before_kind, row, next()),)*
                    $($after: column!(read $after_kind, row, next()),)*
                })
            }

            fn to_task(&self) -> Task {
                Task {
                    $first: column!(to_owned $first_kind, self.$first),
                    $($before: column!(to_owned $before_kind, self.$before),)*
                    assignees: Vec::new(),
                    labels: Vec::new(),
                    $($after: column!(to_owned $after_kind, self.$after),)*
                }
            }
        }

        impl Task {
            /// The task's own columns, borrowed.
            pub fn columns(&self) -> TaskColumns<'_> {
                TaskColumns {
                    $first: column!(borrow $first_kind, self.$first),
                    $($before: column!(borrow $before_kind, self.$before),)*
                    $($after: column!(borrow $after_kind, self.$after),)*
                }
            }
        }
    };
}

/// One column of `task_columns!` by its kind: its types, and how it is read and converted.
macro_rules! column {
    (owned text) => { String };
    (owned opt_text) => { Option<String> };
    (owned $copy:ty) => { $copy };
    (borrowed $a:lifetime text) => { &$a str };
    (borrowed $a:lifetime opt_text) => { Option<&$a str> };
    (borrowed $a:lifetime $copy:ty) => { $copy };
    (read text, $row:expr, $i:expr) => { text($row, $i)? };
    (read opt_text, $row:expr, $i:expr) => { opt_text($row, $i)? };
    (read $copy:ty, $row:expr, $i:expr) => { $row.get($i)? };
    (to_owned text, $value:expr) => { $value.to_string() };
    (to_owned opt_text, $value:expr) => { $value.map(str::to_string) };
    (to_owned $copy:ty, $value:expr) => { $value };
    (borrow text, $value:expr) => { &$value };
    (borrow opt_text, $value:expr) => { $value.as_deref() };
    (borrow $copy:ty, $value:expr) => { $value };
}

task_columns! {
    before {
        id: text,
        project_id: text,
        status_id: text,
        title: text,
        description: opt_text,
        priority: Priority,
        due_date: opt_text,
        start_date: opt_text,
        position: f64,
        parent_id: opt_text,
    }
    after {
        completed_at: opt_text,
        created_by: text,
        created_at: text,
        updated_at: text,
    }
}

/// Column `i` of `row` as text borrowed from it.
fn text<'a>(row: &'a Row<'_>, i: usize) -> rusqlite::Result<&'a str> {
    let value = row.get_ref(i)?;
    value
        .as_str()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, value.data_type(), Box::new(e)))
}

/// Column `i` of `row` as text borrowed from it, or `None` for NULL.
fn opt_text<'a>(row: &'a Row<'_>, i: usize) -> rusqlite::Result<Option<&'a str>> {
    let value = row.get_ref(i)?;
    value
        .as_str_or_null()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, value.data_type(), Box::new(e)))
}

/// One task as its row holds it: its columns and labels, and its assignees as the row has them.
pub struct TaskRow<'a> {
    pub columns: TaskColumns<'a>,
    assignees: Option<&'a str>,
    pub labels: Vec<LabelRef>,
}

impl<'a> TaskRow<'a> {
    /// The assignees' user ids, sorted.
    pub fn assignees(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        // User ids are UUIDs: no spaces.
        self.assignees.into_iter().flat_map(|ids| ids.split(' '))
    }
}

/// A task with what authorization needs: the caller's role and the task's space.
pub struct VisibleTask {
    pub task: Task,
    pub role: Role,
    pub space_id: String,
}

pub struct NewTask {
    pub project_id: String,
    pub status_id: String,
    pub title: String,
    pub description: Option<String>,
    pub priority: Priority,
    pub due_date: Option<String>,
    pub start_date: Option<String>,
    pub position: Option<f64>,
    pub parent_id: Option<String>,
    pub assignees: Vec<String>,
    pub labels: Vec<LabelRef>,
    pub created_by: String,
}

/// The whole new state of a changed task's columns (the handler merges the PATCH into it).
#[derive(Debug)]
pub struct TaskUpdate {
    pub project_id: String,
    pub status_id: String,
    pub title: String,
    pub description: Option<String>,
    pub priority: Priority,
    pub due_date: Option<String>,
    pub start_date: Option<String>,
    pub position: f64,
    pub parent_id: Option<String>,
    pub completed_at: Option<String>,
}

/// `GET /api/tasks` filters, already validated and resolved (`me` -> the caller's id).
#[derive(Debug, Default)]
pub struct TaskFilter {
    pub project_id: Option<String>,
    pub status_id: Option<String>,
    pub assignee_id: Option<String>,
    pub label_id: Option<String>,
    pub priority: Option<Priority>,
    pub completed: Option<bool>,
    pub due_before: Option<String>,
    pub due_after: Option<String>,
    pub parent_id: Option<String>,
    pub updated_since: Option<String>,
    pub q: Option<String>,
}

mod list;
mod relations;
#[cfg(test)]
mod tests;

pub use list::{list_tasks, list_tasks_query, load_relations};
pub use relations::{
    add_assignee, add_label, remove_assignee, remove_label, set_assignees, set_labels,
};

fn from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(TaskColumns::from_row(row)?.to_task())
}

/// Where `find_visible_task`'s values after the task's columns are in its row.
const ROLE: usize = COLUMNS;
const SPACE: usize = COLUMNS + 1;
const ASSIGNEES: usize = COLUMNS + 2;
const LABELS: usize = COLUMNS + 3;

/// The task `task_id` if `user_id` is a member of its space: `read` gets its row (`columns!()`,
/// then the user's role, the space, the assignees as one space-separated string and the labels as
/// a JSON array). One statement: a single task's assignees and labels come along as subqueries
/// (for a page, `load_relations` is faster).
fn find_visible_task<T>(
    conn: &Connection,
    task_id: &str,
    viewer: Viewer<'_>,
    read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    let found = conn
        .prepare_cached(concat!(
            "SELECT ",
            columns!(),
            ", m.role, p.space_id, \
             (SELECT group_concat(ta.user_id, ' ') FROM task_assignees ta WHERE ta.task_id = t.id), \
             (SELECT json_group_array(json_array(l.id, l.name, l.color)) \
              FROM task_labels tl JOIN labels l ON l.id = tl.label_id WHERE tl.task_id = t.id) \
             FROM tasks t \
             JOIN projects p ON p.id = t.project_id \
             JOIN space_members m ON m.space_id = p.space_id AND m.user_id = ?2 AND ",
            crate::within_reach!(3),
            " WHERE t.id = ?1"
        ))?
        .query_row(params![task_id, viewer.user_id, viewer.spaces], read)
        .optional()?;
    Ok(found)
}

/// The assignees of a `find_visible_task` row. User ids are UUIDs: no spaces. Rows come in
/// primary-key order: sorted.
fn assignees_of<'r>(row: &'r Row<'_>) -> rusqlite::Result<impl Iterator<Item = &'r str>> {
    let ids = row.get_ref(ASSIGNEES)?.as_str_or_null()?;
    Ok(ids.into_iter().flat_map(|ids| ids.split(' ')))
}

/// The labels of a `find_visible_task` row, in display order.
fn labels_of(row: &Row<'_>) -> rusqlite::Result<Vec<LabelRef>> {
    let labels: Vec<(String, String, Option<String>)> =
        serde_json::from_str(row.get_ref(LABELS)?.as_str()?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(LABELS, Type::Text, Box::new(e))
        })?;
    let mut labels: Vec<LabelRef> = labels
        .into_iter()
        .map(|(id, name, color)| LabelRef { id, name, color })
        .collect();
    super::labels::sort_labels(&mut labels);
    Ok(labels)
}

/// The task if the user is a member of its space, with their role; `None` otherwise.
pub fn find_task_for_user(
    conn: &Connection,
    task_id: &str,
    viewer: Viewer<'_>,
) -> Result<Option<VisibleTask>> {
    find_visible_task(conn, task_id, viewer, |row| {
        let mut task = from_row(row)?;
        task.assignees = assignees_of(row)?.map(str::to_string).collect();
        task.labels = labels_of(row)?;
        Ok(VisibleTask {
            task,
            role: row.get(ROLE)?,
            space_id: row.get(SPACE)?,
        })
    })
}

/// `read` of the task's row if the user is a member of its space; `None` otherwise. The
/// read-only twin of `find_task_for_user`, borrowing the row instead of copying it out.
pub fn read_task_for_user<T>(
    conn: &Connection,
    task_id: &str,
    viewer: Viewer<'_>,
    read: impl FnOnce(&TaskRow<'_>) -> T,
) -> Result<Option<T>> {
    find_visible_task(conn, task_id, viewer, |row| {
        let task = TaskRow {
            columns: TaskColumns::from_row(row)?,
            assignees: row.get_ref(ASSIGNEES)?.as_str_or_null()?,
            labels: labels_of(row)?,
        };
        Ok(read(&task))
    })
}

/// The category of a status, if the status belongs to the project.
pub fn status_category(
    conn: &Connection,
    project_id: &str,
    status_id: &str,
) -> Result<Option<Category>> {
    let category = conn
        .prepare_cached("SELECT category FROM statuses WHERE id = ?1 AND project_id = ?2")?
        .query_row(params![status_id, project_id], |row| row.get(0))
        .optional()?;
    Ok(category)
}

/// The project's first status of `category` by position (new tasks start in the first `todo`).
pub fn first_status_of(
    conn: &Connection,
    project_id: &str,
    category: Category,
) -> Result<Option<String>> {
    let status = conn
        .prepare_cached(
            "SELECT id FROM statuses WHERE project_id = ?1 AND category = ?2 ORDER BY position, id LIMIT 1",
        )?
        .query_row(params![project_id, category], |row| row.get(0))
        .optional()?;
    Ok(status)
}

/// The project of a task, if the task exists (for parent checks).
pub fn project_of_task(conn: &Connection, task_id: &str) -> Result<Option<String>> {
    let project = conn
        .prepare_cached("SELECT project_id FROM tasks WHERE id = ?1")?
        .query_row([task_id], |row| row.get(0))
        .optional()?;
    Ok(project)
}

/// True when making `new_parent` the parent of `task` would close a cycle: `task` is `new_parent`
/// itself or one of its ancestors.
pub fn would_create_cycle(conn: &Connection, task: &str, new_parent: &str) -> Result<bool> {
    let found = conn
        .prepare_cached(
            "WITH RECURSIVE chain(id) AS ( \
               SELECT ?1 UNION SELECT t.parent_id FROM tasks t JOIN chain c ON t.id = c.id \
               WHERE t.parent_id IS NOT NULL) \
             SELECT 1 FROM chain WHERE id = ?2",
        )?
        .query_row(params![new_parent, task], |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

/// A task's status and `completedAt` (for moving subtasks).
pub fn status_and_completion(conn: &Connection, task_id: &str) -> Result<(String, Option<String>)> {
    Ok(conn
        .prepare_cached("SELECT status_id, completed_at FROM tasks WHERE id = ?1")?
        .query_row([task_id], |row| Ok((row.get(0)?, row.get(1)?)))?)
}

/// The ids of a task's subtasks at any depth.
pub fn descendants(conn: &Connection, task_id: &str) -> Result<Vec<String>> {
    let mut statement = conn.prepare_cached(
        "WITH RECURSIVE tree(id) AS ( \
           SELECT id FROM tasks WHERE parent_id = ?1 \
           UNION SELECT t.id FROM tasks t JOIN tree ON t.parent_id = tree.id) \
         SELECT id FROM tree",
    )?;
    let ids = statement
        .query_map([task_id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

/// One past the highest position in the project: the end of its order.
pub fn next_position(conn: &Connection, project_id: &str) -> Result<f64> {
    let max: Option<f64> = conn
        .prepare_cached("SELECT max(position) FROM tasks WHERE project_id = ?1")?
        .query_row([project_id], |row| row.get(0))?;
    Ok(max.map_or(1.0, |m| m.floor() + 1.0))
}

/// Inserts the task with its assignees and labels, and returns it as a read would (the hot path
/// of `POST /api/tasks`: built from what was written instead of read back).
pub fn create_task(tx: &Tx<'_>, new: &NewTask, category: Category) -> Result<Task> {
    let id = new_id();
    let now = crate::time::now();
    let position = match new.position {
        Some(position) => position,
        None => next_position(tx, &new.project_id)?,
    };
    let completed_at = (category == Category::Done).then(|| now.clone());
    tx.prepare_cached(
        "INSERT INTO tasks (id, project_id, status_id, title, description, priority, due_date, start_date, \
         position, parent_id, completed_at, created_by, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
    )?
    .execute(params![
        id,
        new.project_id,
        new.status_id,
        new.title,
        new.description,
        new.priority,
        new.due_date,
        new.start_date,
        position,
        new.parent_id,
        completed_at,
        new.created_by,
        now
    ])?;
    for user_id in &new.assignees {
        add_assignee(tx, &id, user_id)?;
    }
    for label in &new.labels {
        add_label(tx, &id, &label.id)?;
    }
    // The order `load_relations` reads them in.
    let mut assignees = new.assignees.clone();
    assignees.sort();
    assignees.dedup();
    let mut labels = new.labels.clone();
    super::labels::sort_labels(&mut labels);
    labels.dedup_by(|a, b| a.id == b.id);
    Ok(Task {
        id,
        project_id: new.project_id.clone(),
        status_id: new.status_id.clone(),
        title: new.title.clone(),
        description: new.description.clone(),
        priority: new.priority,
        due_date: new.due_date.clone(),
        start_date: new.start_date.clone(),
        position,
        parent_id: new.parent_id.clone(),
        assignees,
        labels,
        completed_at,
        created_by: new.created_by.clone(),
        created_at: now.clone(),
        updated_at: now,
    })
}

pub fn update_task(tx: &Tx<'_>, task_id: &str, update: &TaskUpdate) -> Result<()> {
    tx.prepare_cached(
        "UPDATE tasks SET project_id = ?2, status_id = ?3, title = ?4, description = ?5, priority = ?6, \
         due_date = ?7, start_date = ?8, position = ?9, parent_id = ?10, completed_at = ?11, updated_at = ?12 \
         WHERE id = ?1",
    )?
    .execute(params![
        task_id,
        update.project_id,
        update.status_id,
        update.title,
        update.description,
        update.priority,
        update.due_date,
        update.start_date,
        update.position,
        update.parent_id,
        update.completed_at,
        crate::time::now()
    ])?;
    Ok(())
}

/// Moves a subtask along with its moved ancestor, into `status_id` of the new project.
pub fn move_subtask(
    tx: &Tx<'_>,
    task_id: &str,
    project_id: &str,
    status_id: &str,
    completed_at: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE tasks SET project_id = ?2, status_id = ?3, completed_at = ?4, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![task_id, project_id, status_id, completed_at, crate::time::now()])?;
    Ok(())
}

/// Marks a task changed (assignee and label changes count as changes).
pub fn touch_task(tx: &Tx<'_>, task_id: &str) -> Result<()> {
    tx.prepare_cached("UPDATE tasks SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![task_id, crate::time::now()])?;
    Ok(())
}

/// Deletes the task; its subtasks go with it (ON DELETE CASCADE on `parent_id`).
pub fn delete_task(tx: &Tx<'_>, task_id: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM tasks WHERE id = ?1")?
        .execute([task_id])?;
    Ok(())
}
