//! Lists of tasks: the statement for a filter, a page of rows, and the page's relations loaded
//! in two queries whatever its size.

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use super::{Task, TaskFilter, from_row};
use crate::store::Result;
use crate::store::labels::LabelRef;
use crate::store::spaces::Viewer;

/// `(index in ?1, user id)` for an array of task ids (`rarray`, 1-based rowids). A task's rows
/// come in primary-key order, so its assignees are sorted by user id.
pub(super) const ASSIGNEES_OF_TASKS: &str = "SELECT a.rowid - 1, ta.user_id FROM rarray(?1) a \
                                  CROSS JOIN task_assignees ta ON ta.task_id = a.value";
/// `(index in ?1, label id, name, color)` for an array of task ids.
pub(super) const LABELS_OF_TASKS: &str = "SELECT a.rowid - 1, l.id, l.name, l.color FROM rarray(?1) a \
                               CROSS JOIN task_labels tl ON tl.task_id = a.value \
                               JOIN labels l ON l.id = tl.label_id";

/// Fills `assignees` and `labels` of every task in two queries. Each walks the page's ids in
/// order (`rarray`, forced outermost by `CROSS JOIN`) and looks each one up by primary key, so
/// SQLite builds no temporary index or sorter, and the array index says which task a row is for.
/// The ids go in as an array of values (rusqlite's `array` module), not as JSON text that would
/// be written and then parsed twice (`json_each`) for every page.
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
        crate::store::labels::sort_labels(&mut task.labels);
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

/// The SQL and parameters of a page of tasks visible to `viewer`; public for the query-plan test.
pub fn list_tasks_query(
    viewer: Viewer<'_>,
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
        values: vec![viewer.user_id.to_string().into()],
    };
    // Only a restricted token's query has the condition: the common one keeps its plan.
    if let Some(spaces) = viewer.spaces {
        query.bind(
            " AND m.space_id IN (SELECT value FROM json_each(?))",
            spaces.to_string(),
        );
    }
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

/// A page of tasks visible to `viewer`, with assignees and labels: three queries.
pub fn list_tasks(
    conn: &Connection,
    viewer: Viewer<'_>,
    filter: &TaskFilter,
    after: Option<(f64, &str)>,
    limit: usize,
) -> Result<Vec<Task>> {
    let (sql, values) = list_tasks_query(viewer, filter, after, limit);
    let mut tasks: Vec<Task> = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(values), from_row)?
        .collect::<rusqlite::Result<_>>()?;
    load_relations(conn, &mut tasks)?;
    Ok(tasks)
}
