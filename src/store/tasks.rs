//! Tasks with their assignees and labels.
//!
//! A page of tasks costs three queries whatever its size: the tasks, then the assignees and the
//! labels of all of them at once (`load_relations`). Lists are ordered by `(position, id)` and
//! paged by keyset on that pair, which the `tasks_by_project` index serves directly.

use rusqlite::types::{Type, Value};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::Serialize;

use super::Tx;
use super::labels::LabelRef;
use super::projects::Category;
use super::spaces::Role;
use super::{Result, new_id};

crate::text_enum!(Priority { None = "none", Low = "low", Medium = "medium", High = "high", Urgent = "urgent" });

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub project_id: String,
    pub status_id: String,
    pub title: String,
    pub description: Option<String>,
    pub priority: Priority,
    pub due_date: Option<String>,
    pub start_date: Option<String>,
    pub position: f64,
    pub parent_id: Option<String>,
    pub assignees: Vec<String>,
    pub labels: Vec<LabelRef>,
    pub completed_at: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A task's own columns, borrowed from its SQLite row or from a `Task`: what its JSON is written
/// from. A single task is written straight from its row (`write_task_for_user`): an owned `Task`
/// first cost 14 string allocations and their frees on every `GET /api/tasks/:id`.
struct TaskColumns<'a> {
    id: &'a str,
    project_id: &'a str,
    status_id: &'a str,
    title: &'a str,
    description: Option<&'a str>,
    priority: Priority,
    due_date: Option<&'a str>,
    start_date: Option<&'a str>,
    position: f64,
    parent_id: Option<&'a str>,
    completed_at: Option<&'a str>,
    created_by: &'a str,
    created_at: &'a str,
    updated_at: &'a str,
}

impl<'a> TaskColumns<'a> {
    /// The columns of `columns!()`, in its order, from the start of `row`.
    fn from_row(row: &'a Row<'_>) -> rusqlite::Result<TaskColumns<'a>> {
        let text = |i| -> rusqlite::Result<&'a str> {
            let value = row.get_ref(i)?;
            value.as_str().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(i, value.data_type(), Box::new(e))
            })
        };
        let opt_text = |i| -> rusqlite::Result<Option<&'a str>> {
            let value = row.get_ref(i)?;
            value.as_str_or_null().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(i, value.data_type(), Box::new(e))
            })
        };
        Ok(TaskColumns {
            id: text(0)?,
            project_id: text(1)?,
            status_id: text(2)?,
            title: text(3)?,
            description: opt_text(4)?,
            priority: row.get(5)?,
            due_date: opt_text(6)?,
            start_date: opt_text(7)?,
            position: row.get(8)?,
            parent_id: opt_text(9)?,
            completed_at: opt_text(10)?,
            created_by: text(11)?,
            created_at: text(12)?,
            updated_at: text(13)?,
        })
    }

    fn to_task(&self) -> Task {
        let owned = |value: Option<&str>| value.map(str::to_string);
        Task {
            id: self.id.to_string(),
            project_id: self.project_id.to_string(),
            status_id: self.status_id.to_string(),
            title: self.title.to_string(),
            description: owned(self.description),
            priority: self.priority,
            due_date: owned(self.due_date),
            start_date: owned(self.start_date),
            position: self.position,
            parent_id: owned(self.parent_id),
            assignees: Vec::new(),
            labels: Vec::new(),
            completed_at: owned(self.completed_at),
            created_by: self.created_by.to_string(),
            created_at: self.created_at.to_string(),
            updated_at: self.updated_at.to_string(),
        }
    }

    /// The task as JSON, the same bytes as `Task`'s `Serialize` (a test holds them equal), about
    /// four times faster: it is the body of every task route and 50 times a page of them.
    fn write_json<'s>(
        &self,
        assignees: impl IntoIterator<Item = &'s str>,
        labels: &[LabelRef],
        out: &mut Vec<u8>,
    ) {
        use crate::json::{push_opt_str, push_str};
        let strings = |out: &mut Vec<u8>, fields: &[(&[u8], Option<&str>)]| {
            for &(key, value) in fields {
                out.extend_from_slice(key);
                push_opt_str(out, value);
            }
        };
        strings(
            out,
            &[
                (br#"{"id":"#, Some(self.id)),
                (br#","projectId":"#, Some(self.project_id)),
                (br#","statusId":"#, Some(self.status_id)),
                (br#","title":"#, Some(self.title)),
                (br#","description":"#, self.description),
                (br#","priority":"#, Some(self.priority.as_str())),
                (br#","dueDate":"#, self.due_date),
                (br#","startDate":"#, self.start_date),
            ],
        );
        out.extend_from_slice(br#","position":"#);
        serde_json::to_writer(&mut *out, &self.position).expect("an f64 serializes");
        out.extend_from_slice(br#","parentId":"#);
        push_opt_str(out, self.parent_id);
        out.extend_from_slice(br#","assignees":["#);
        for (i, user_id) in assignees.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, user_id);
        }
        out.extend_from_slice(b"],\"labels\":[");
        for (i, label) in labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"id":"#);
            push_str(out, &label.id);
            out.extend_from_slice(br#","name":"#);
            push_str(out, &label.name);
            out.extend_from_slice(br#","color":"#);
            push_opt_str(out, label.color.as_deref());
            out.push(b'}');
        }
        strings(
            out,
            &[
                (br#"],"completedAt":"#, self.completed_at),
                (br#","createdBy":"#, Some(self.created_by)),
                (br#","createdAt":"#, Some(self.created_at)),
                (br#","updatedAt":"#, Some(self.updated_at)),
            ],
        );
        out.push(b'}');
    }
}

impl Task {
    fn columns(&self) -> TaskColumns<'_> {
        TaskColumns {
            id: &self.id,
            project_id: &self.project_id,
            status_id: &self.status_id,
            title: &self.title,
            description: self.description.as_deref(),
            priority: self.priority,
            due_date: self.due_date.as_deref(),
            start_date: self.start_date.as_deref(),
            position: self.position,
            parent_id: self.parent_id.as_deref(),
            completed_at: self.completed_at.as_deref(),
            created_by: &self.created_by,
            created_at: &self.created_at,
            updated_at: &self.updated_at,
        }
    }

    /// The task as JSON (see `TaskColumns::write_json`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.columns()
            .write_json(self.assignees.iter().map(String::as_str), &self.labels, out);
    }

    /// A JSON array of `tasks`.
    pub fn write_json_array(tasks: &[Task], out: &mut Vec<u8>) {
        // A task is about 600 bytes: growing from 1 KiB to a page of 50 copied the body six times.
        out.reserve(tasks.len() * 640);
        out.push(b'[');
        for (i, task) in tasks.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            task.write_json(out);
        }
        out.push(b']');
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

/// A macro, not a `const`, so that `concat!` can build the hot statements at compile time: a
/// `format!` of the whole statement on every request cost as much as looking the result up.
macro_rules! columns {
    () => {
        "t.id, t.project_id, t.status_id, t.title, t.description, t.priority, t.due_date, \
         t.start_date, t.position, t.parent_id, t.completed_at, t.created_by, t.created_at, \
         t.updated_at"
    };
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(TaskColumns::from_row(row)?.to_task())
}

/// The task `task_id` if `user_id` is a member of its space: `read` gets its row (`columns!()`,
/// then the user's role, the space, the assignees as one space-separated string and the labels as
/// a JSON array). One statement: a single task's assignees and labels come along as subqueries
/// (for a page, `load_relations` is faster).
fn find_visible_task<T>(
    conn: &Connection,
    task_id: &str,
    user_id: &str,
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
             JOIN space_members m ON m.space_id = p.space_id AND m.user_id = ?2 \
             WHERE t.id = ?1"
        ))?
        .query_row(params![task_id, user_id], read)
        .optional()?;
    Ok(found)
}

/// The assignees of a `find_visible_task` row. User ids are UUIDs: no spaces. Rows come in
/// primary-key order: sorted.
fn assignees_of<'r>(row: &'r Row<'_>) -> rusqlite::Result<impl Iterator<Item = &'r str>> {
    let ids = row.get_ref(16)?.as_str_or_null()?;
    Ok(ids.into_iter().flat_map(|ids| ids.split(' ')))
}

/// The labels of a `find_visible_task` row, in display order.
fn labels_of(row: &Row<'_>) -> rusqlite::Result<Vec<LabelRef>> {
    let labels: Vec<(String, String, Option<String>)> =
        serde_json::from_str(row.get_ref(17)?.as_str()?)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(17, Type::Text, Box::new(e)))?;
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
    user_id: &str,
) -> Result<Option<VisibleTask>> {
    find_visible_task(conn, task_id, user_id, |row| {
        let mut task = from_row(row)?;
        task.assignees = assignees_of(row)?.map(str::to_string).collect();
        task.labels = labels_of(row)?;
        Ok(VisibleTask {
            task,
            role: row.get(14)?,
            space_id: row.get(15)?,
        })
    })
}

/// Writes the task's JSON to `out` if the user is a member of its space; false otherwise. The
/// read-only twin of `find_task_for_user`, straight from the row.
pub fn write_task_for_user(
    conn: &Connection,
    task_id: &str,
    user_id: &str,
    out: &mut Vec<u8>,
) -> Result<bool> {
    let found = find_visible_task(conn, task_id, user_id, |row| {
        let labels = labels_of(row)?;
        TaskColumns::from_row(row)?.write_json(assignees_of(row)?, &labels, out);
        Ok(())
    })?;
    Ok(found.is_some())
}

/// `(index in ?1, user id)` for an array of task ids (`rarray`, 1-based rowids). A task's rows
/// come in primary-key order, so its assignees are sorted by user id.
const ASSIGNEES_OF_TASKS: &str = "SELECT a.rowid - 1, ta.user_id FROM rarray(?1) a \
                                  CROSS JOIN task_assignees ta ON ta.task_id = a.value";
/// `(index in ?1, label id, name, color)` for an array of task ids.
const LABELS_OF_TASKS: &str = "SELECT a.rowid - 1, l.id, l.name, l.color FROM rarray(?1) a \
                               CROSS JOIN task_labels tl ON tl.task_id = a.value \
                               JOIN labels l ON l.id = tl.label_id";

/// Fills `assignees` and `labels` of every task in two queries. Each walks the page's ids in
/// order (`rarray`, forced outermost by `CROSS JOIN`) and looks each one up by primary key, so
/// SQLite builds no temporary index or sorter, and the array index says which task a row is for.
/// The ids go in as an array of values (rusqlite's `array` module), not as JSON text: writing and
/// then parsing a JSON array twice (`json_each`) was a tenth of a page of 50.
pub fn load_relations(conn: &Connection, tasks: &mut [Task]) -> Result<()> {
    if tasks.is_empty() {
        return Ok(());
    }
    let ids: rusqlite::vtab::array::Array =
        std::rc::Rc::new(tasks.iter().map(|t| Value::from(t.id.clone())).collect());
    let mut assignees = conn.prepare_cached(ASSIGNEES_OF_TASKS)?;
    let mut rows = assignees.query([&ids])?;
    while let Some(row) = rows.next()? {
        tasks[row.get::<_, i64>(0)? as usize]
            .assignees
            .push(row.get(1)?);
    }
    let mut labels = conn.prepare_cached(LABELS_OF_TASKS)?;
    let mut rows = labels.query([&ids])?;
    while let Some(row) = rows.next()? {
        tasks[row.get::<_, i64>(0)? as usize].labels.push(LabelRef {
            id: row.get(1)?,
            name: row.get(2)?,
            color: row.get(3)?,
        });
    }
    for task in tasks {
        super::labels::sort_labels(&mut task.labels);
    }
    Ok(())
}

/// Builds a statement clause by clause, numbering each bound value.
struct QueryBuilder {
    sql: String,
    values: Vec<Value>,
}

impl QueryBuilder {
    /// Appends `part`, whose one `?` is bound to `value`.
    fn bind(&mut self, part: &str, value: impl Into<Value>) {
        self.values.push(value.into());
        self.sql
            .push_str(&part.replace('?', &format!("?{}", self.values.len())));
    }
}

/// The SQL and parameters of a page of tasks visible to `viewer_id`; public for the query-plan test.
pub fn list_tasks_query(
    viewer_id: &str,
    filter: &TaskFilter,
    after: Option<(f64, &str)>,
    limit: usize,
) -> (String, Vec<Value>) {
    let mut query = QueryBuilder {
        sql: concat!(
            "SELECT ",
            columns!(),
            " FROM tasks t \
             JOIN projects p ON p.id = t.project_id \
             JOIN space_members m ON m.space_id = p.space_id AND m.user_id = ?1 WHERE 1"
        )
        .to_string(),
        values: vec![viewer_id.to_string().into()],
    };
    let text_filters = [
        (&filter.project_id, " AND t.project_id = ?"),
        (&filter.status_id, " AND t.status_id = ?"),
        (
            &filter.assignee_id,
            " AND t.id IN (SELECT task_id FROM task_assignees WHERE user_id = ?)",
        ),
        (
            &filter.label_id,
            " AND t.id IN (SELECT task_id FROM task_labels WHERE label_id = ?)",
        ),
        (&filter.due_before, " AND t.due_date <= ?"),
        (&filter.due_after, " AND t.due_date >= ?"),
        (&filter.parent_id, " AND t.parent_id = ?"),
        (&filter.updated_since, " AND t.updated_at >= ?"),
        (&filter.q, " AND contains_ci(t.title, ?)"),
    ];
    for (value, part) in text_filters {
        if let Some(value) = value {
            query.bind(part, value.clone());
        }
    }
    if let Some(priority) = filter.priority {
        query.bind(" AND t.priority = ?", priority.as_str().to_string());
    }
    match filter.completed {
        Some(true) => query.sql.push_str(" AND t.completed_at IS NOT NULL"),
        Some(false) => query.sql.push_str(" AND t.completed_at IS NULL"),
        None => {}
    }
    if let Some((position, id)) = after {
        query.bind(" AND (t.position > ?", position);
        query.bind(" OR (t.position = ?", position);
        query.bind(" AND t.id > ?))", id.to_string());
    }
    query.bind(" ORDER BY t.position, t.id LIMIT ?", limit as i64);
    (query.sql, query.values)
}

/// A page of tasks visible to `viewer_id`, with assignees and labels: three queries.
pub fn list_tasks(
    conn: &Connection,
    viewer_id: &str,
    filter: &TaskFilter,
    after: Option<(f64, &str)>,
    limit: usize,
) -> Result<Vec<Task>> {
    let (sql, values) = list_tasks_query(viewer_id, filter, after, limit);
    let mut tasks: Vec<Task> = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(values), from_row)?
        .collect::<rusqlite::Result<_>>()?;
    load_relations(conn, &mut tasks)?;
    Ok(tasks)
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

/// Replaces the task's assignees with `user_ids`.
pub fn set_assignees(tx: &Tx<'_>, task_id: &str, user_ids: &[String]) -> Result<()> {
    tx.prepare_cached("DELETE FROM task_assignees WHERE task_id = ?1")?
        .execute([task_id])?;
    for user_id in user_ids {
        add_assignee(tx, task_id, user_id)?;
    }
    Ok(())
}

/// Replaces the task's labels with `label_ids`.
pub fn set_labels(tx: &Tx<'_>, task_id: &str, label_ids: &[String]) -> Result<()> {
    tx.prepare_cached("DELETE FROM task_labels WHERE task_id = ?1")?
        .execute([task_id])?;
    for label_id in label_ids {
        add_label(tx, task_id, label_id)?;
    }
    Ok(())
}

/// Returns whether anything changed.
pub fn add_assignee(tx: &Tx<'_>, task_id: &str, user_id: &str) -> Result<bool> {
    let added = tx
        .prepare_cached("INSERT OR IGNORE INTO task_assignees (task_id, user_id) VALUES (?1, ?2)")?
        .execute(params![task_id, user_id])?;
    Ok(added > 0)
}

pub fn remove_assignee(tx: &Tx<'_>, task_id: &str, user_id: &str) -> Result<bool> {
    let removed = tx
        .prepare_cached("DELETE FROM task_assignees WHERE task_id = ?1 AND user_id = ?2")?
        .execute(params![task_id, user_id])?;
    Ok(removed > 0)
}

pub fn add_label(tx: &Tx<'_>, task_id: &str, label_id: &str) -> Result<bool> {
    let added = tx
        .prepare_cached("INSERT OR IGNORE INTO task_labels (task_id, label_id) VALUES (?1, ?2)")?
        .execute(params![task_id, label_id])?;
    Ok(added > 0)
}

pub fn remove_label(tx: &Tx<'_>, task_id: &str, label_id: &str) -> Result<bool> {
    let removed = tx
        .prepare_cached("DELETE FROM task_labels WHERE task_id = ?1 AND label_id = ?2")?
        .execute(params![task_id, label_id])?;
    Ok(removed > 0)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::store::projects::find_project;
    use crate::store::users::{Plan, create_user};
    use crate::store::{Store, open_temp, spaces};

    /// A user with `count` tasks in their General project, each with an assignee and a label.
    fn seeded(count: usize) -> (tempfile::TempDir, Store, String, String) {
        let (dir, store) = open_temp();
        let (user_id, project_id) = store
            .write(|tx| {
                let user = create_user(tx, "ann@example.com", "Ann", Plan::Pro)?;
                let space = spaces::list_spaces_for_user(tx, &user.id, None, 1)?.remove(0);
                let project_id: String = tx.query_row(
                    "SELECT id FROM projects WHERE space_id = ?1",
                    [&space.id],
                    |r| r.get(0),
                )?;
                let project = find_project(tx, &project_id)?.unwrap();
                let label = crate::store::labels::find_or_create_label(
                    tx, &space.id, "bug", None, "labels",
                )?;
                for i in 0..count {
                    create_task(
                        tx,
                        &NewTask {
                            project_id: project.id.clone(),
                            status_id: project.statuses[0].id.clone(),
                            title: format!("task {i}"),
                            description: None,
                            priority: Priority::None,
                            due_date: None,
                            start_date: None,
                            position: None,
                            parent_id: None,
                            assignees: vec![user.id.clone()],
                            labels: vec![LabelRef {
                                id: label.id.clone(),
                                name: label.name.clone(),
                                color: None,
                            }],
                            created_by: user.id.clone(),
                        },
                        Category::Todo,
                    )?;
                }
                Ok((user.id, project.id))
            })
            .unwrap();
        (dir, store, user_id, project_id)
    }

    fn plan(conn: &Connection, sql: &str, values: Vec<Value>) -> String {
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = statement
            .query_map(params_from_iter(values), |row| row.get::<_, String>(3))
            .unwrap();
        rows.map(|row| row.unwrap()).collect::<Vec<_>>().join("\n")
    }

    /// A single task (one statement with subqueries) and a page (`load_relations`) must show the
    /// same assignees and labels in the same order.
    #[test]
    fn one_task_and_a_page_agree_on_relations() {
        let (_dir, store, user_id, project_id) = seeded(1);
        let (task_id, others) = store
            .write(|tx| {
                let task_id: String = tx.query_row("SELECT id FROM tasks", [], |r| r.get(0))?;
                let space_id: String =
                    tx.query_row("SELECT space_id FROM projects", [], |r| r.get(0))?;
                tx.execute(
                    "UPDATE tasks SET description = ?1",
                    ["a \"quote\", a \\, a line\nand \u{1}, é"],
                )?;
                for name in ["b", "A", "aa", "Zed", "_x", "é", "\"q\"\t"] {
                    let label = crate::store::labels::find_or_create_label(
                        tx, &space_id, name, None, "labels",
                    )?;
                    add_label(tx, &task_id, &label.id)?;
                }
                let mut others = Vec::new();
                for email in ["zed@example.com", "bob@example.com"] {
                    let other = create_user(tx, email, "O", Plan::Pro)?;
                    add_assignee(tx, &task_id, &other.id)?;
                    others.push(other.id);
                }
                Ok((task_id, others))
            })
            .unwrap();
        let one = store
            .read(|conn| find_task_for_user(conn, &task_id, &user_id))
            .unwrap()
            .unwrap()
            .task;
        let filter = TaskFilter {
            project_id: Some(project_id),
            ..TaskFilter::default()
        };
        let page = store
            .read(|conn| list_tasks(conn, &user_id, &filter, None, 10))
            .unwrap();
        let listed = page.into_iter().find(|t| t.id == task_id).unwrap();
        let names = |task: &Task| {
            task.labels
                .iter()
                .map(|l| l.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&one).len(), 8);
        // The single-task read writes its JSON straight from the row: the same bytes.
        let mut written = Vec::new();
        let found = store
            .read(|conn| write_task_for_user(conn, &task_id, &user_id, &mut written))
            .unwrap();
        assert!(found);
        assert_eq!(
            String::from_utf8(written).unwrap(),
            serde_json::to_string(&one).unwrap()
        );
        let mut unseen = Vec::new();
        let stranger_sees = store
            .read(|conn| write_task_for_user(conn, &task_id, &others[0], &mut unseen))
            .unwrap();
        assert!(!stranger_sees && unseen.is_empty());
        assert_eq!(names(&one), names(&listed));
        assert_eq!(one.assignees, listed.assignees);
        assert_eq!(one.assignees.len(), 3);
        assert!(one.assignees.is_sorted(), "{:?}", one.assignees);
        assert!(others.iter().all(|id| one.assignees.contains(id)));
    }

    /// A cached page statement runs again with new bindings without being recompiled (SQLite
    /// would, for `LIMIT ?`, without the query planner stability guarantee).
    #[test]
    fn page_statements_are_not_recompiled_when_bound_again() {
        let (_dir, store, user_id, project_id) = seeded(60);
        let filter = TaskFilter {
            project_id: Some(project_id),
            ..TaskFilter::default()
        };
        store
            .read(|conn| {
                for (after, limit) in [
                    (Some((1.0, "a")), 51),
                    (Some((2.0, "b")), 21),
                    (Some((3.0, "c")), 51),
                ] {
                    let (sql, values) = list_tasks_query(&user_id, &filter, after, limit);
                    let mut statement = conn.prepare_cached(&sql)?;
                    let rows = statement
                        .query_map(params_from_iter(values), |_| Ok(()))?
                        .count();
                    assert_eq!(rows, limit);
                    let recompiled = statement.get_status(rusqlite::StatementStatus::RePrepare);
                    assert_eq!(recompiled, 0, "recompiled on a new binding");
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn listing_a_projects_tasks_uses_the_project_index_and_no_sort() {
        let (_dir, store, user_id, project_id) = seeded(3);
        let filter = TaskFilter {
            project_id: Some(project_id),
            ..TaskFilter::default()
        };
        for after in [None, Some((1.0, "x"))] {
            let (sql, values) = list_tasks_query(&user_id, &filter, after, 51);
            let plan = store.read(|conn| Ok(plan(conn, &sql, values))).unwrap();
            assert!(plan.contains("tasks_by_project"), "{plan}");
            assert!(
                !plan.contains("TEMP B-TREE"),
                "pages come in index order: {plan}"
            );
            assert!(
                !plan.contains("SCAN t\n") && !plan.ends_with("SCAN t"),
                "{plan}"
            );
        }
    }

    #[test]
    fn listing_by_assignee_starts_from_the_assignee_index() {
        let (_dir, store, user_id, _) = seeded(3);
        let filter = TaskFilter {
            assignee_id: Some(user_id.clone()),
            ..TaskFilter::default()
        };
        let (sql, values) = list_tasks_query(&user_id, &filter, None, 51);
        let plan = store.read(|conn| Ok(plan(conn, &sql, values))).unwrap();
        assert!(plan.contains("task_assignees_by_user"), "{plan}");
    }

    #[test]
    fn relations_and_spaces_use_indexes() {
        let (_dir, store, user_id, _) = seeded(1);
        store
            .read(|conn| {
                for sql in [ASSIGNEES_OF_TASKS, LABELS_OF_TASKS] {
                    let plan = plan(conn, sql, vec![Value::Null]);
                    assert!(
                        plan.starts_with("SCAN a VIRTUAL TABLE"),
                        "the ids drive the lookups: {plan}"
                    );
                    assert!(plan.contains("USING PRIMARY KEY"), "{plan}");
                    assert!(!plan.contains("SCAN tl") && !plan.contains("SCAN ta"), "{plan}");
                    assert!(!plan.contains("TEMP B-TREE") && !plan.contains("AUTOMATIC"), "{plan}");
                }
                let spaces = "SELECT s.id FROM space_members m JOIN spaces s ON s.id = m.space_id \
                              WHERE m.user_id = ?1 AND m.space_id > ?2 ORDER BY m.space_id LIMIT 10";
                let plan = plan(conn, spaces, vec![Value::Text(user_id.clone()), Value::Text(String::new())]);
                assert!(plan.contains("space_members_by_user"), "{plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{plan}");
                Ok(())
            })
            .unwrap();
    }

    static STATEMENTS: AtomicUsize = AtomicUsize::new(0);

    fn count_statement(event: rusqlite::trace::TraceEvent<'_>) {
        if matches!(event, rusqlite::trace::TraceEvent::Stmt(..)) {
            STATEMENTS.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_page_of_tasks_costs_a_fixed_number_of_queries() {
        let mut counts = Vec::new();
        for tasks in [2, 50] {
            let (dir, _store, user_id, project_id) = seeded(tasks);
            let conn = Connection::open(dir.path().join("test.db")).unwrap();
            rusqlite::vtab::array::load_module(&conn).unwrap();
            conn.trace_v2(
                rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT,
                Some(count_statement),
            );
            let filter = TaskFilter {
                project_id: Some(project_id),
                ..TaskFilter::default()
            };
            STATEMENTS.store(0, Ordering::SeqCst);
            let page = list_tasks(&conn, &user_id, &filter, None, 50).unwrap();
            counts.push(STATEMENTS.load(Ordering::SeqCst));
            assert_eq!(page.len(), tasks);
            assert!(
                page.iter()
                    .all(|t| t.assignees.len() == 1 && t.labels.len() == 1)
            );
        }
        assert_eq!(
            counts[0], counts[1],
            "statements for 2 vs 50 tasks: {counts:?}"
        );
        assert_eq!(counts[0], 3);
    }

    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        // Plain ids and names, and anything at all: quotes, backslashes, control characters,
        // DEL, non-ASCII (serde_json escapes only the first three).
        proptest::prop_oneof![
            "[a-z0-9-]{0,36}",
            proptest::prelude::any::<String>(),
            "[\"\\\\\u{0}-\u{1f}\u{7f}é😀 a]{0,12}",
        ]
    }

    proptest::proptest! {
        /// The hand-written JSON is byte for byte what serde derives for the same task.
        #[test]
        fn write_json_is_exactly_the_serde_json(
            strings in proptest::collection::vec(text(), 9),
            optional in proptest::collection::vec(proptest::option::of(text()), 6),
            position in proptest::prop_oneof![
                proptest::num::f64::ANY,
                proptest::prelude::Just(1.0),
                proptest::prelude::Just(1e300),
                proptest::prelude::Just(-0.0),
            ],
            priority in 0usize..5,
            assignees in proptest::collection::vec(text(), 0..3),
            labels in proptest::collection::vec(
                (text(), text(), proptest::option::of(text())), 0..3),
        ) {
            let task = Task {
                id: strings[0].clone(),
                project_id: strings[1].clone(),
                status_id: strings[2].clone(),
                title: strings[3].clone(),
                description: optional[0].clone(),
                priority: [Priority::None, Priority::Low, Priority::Medium, Priority::High,
                    Priority::Urgent][priority],
                due_date: optional[1].clone(),
                start_date: optional[2].clone(),
                position,
                parent_id: optional[3].clone(),
                assignees,
                labels: labels
                    .into_iter()
                    .map(|(id, name, color)| LabelRef { id, name, color })
                    .collect(),
                completed_at: optional[4].clone(),
                created_by: strings[4].clone(),
                created_at: strings[5].clone(),
                updated_at: strings[6].clone(),
            };
            let mut written = Vec::new();
            task.write_json(&mut written);
            proptest::prop_assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&task).unwrap()
            );
            let mut array = Vec::new();
            Task::write_json_array(&[task.clone(), task.clone()], &mut array);
            proptest::prop_assert_eq!(
                String::from_utf8(array).unwrap(),
                serde_json::to_string(&[&task, &task]).unwrap()
            );
        }
    }
}
