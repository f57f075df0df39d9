//! A task's JSON, written by hand: the same bytes as `Task`'s `Serialize` (the tests below hold
//! them equal) without serde's per-field calls. It is the body of every task route and 50 times a
//! page of them, and `GET /api/tasks/:id` writes it straight from the SQLite row it borrows.

use crate::json::{push_opt_str, push_str};
use crate::store::labels::LabelRef;
use crate::store::tasks::{Task, TaskColumns, TaskRow};

/// One task from its columns and relations.
pub fn write_columns<'s>(
    columns: &TaskColumns<'_>,
    assignees: impl IntoIterator<Item = &'s str>,
    labels: &[LabelRef],
    out: &mut Vec<u8>,
) {
    let strings = |out: &mut Vec<u8>, fields: &[(&[u8], Option<&str>)]| {
        for &(key, value) in fields {
            out.extend_from_slice(key);
            push_opt_str(out, value);
        }
    };
    strings(
        out,
        &[
            (br#"{"id":"#, Some(columns.id)),
            (br#","projectId":"#, Some(columns.project_id)),
            (br#","statusId":"#, Some(columns.status_id)),
            (br#","title":"#, Some(columns.title)),
            (br#","description":"#, columns.description),
            (br#","priority":"#, Some(columns.priority.as_str())),
            (br#","dueDate":"#, columns.due_date),
            (br#","startDate":"#, columns.start_date),
        ],
    );
    out.extend_from_slice(br#","position":"#);
    serde_json::to_writer(&mut *out, &columns.position).expect("an f64 serializes");
    out.extend_from_slice(br#","parentId":"#);
    push_opt_str(out, columns.parent_id);
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
            (br#"],"completedAt":"#, columns.completed_at),
            (br#","createdBy":"#, Some(columns.created_by)),
            (br#","createdAt":"#, Some(columns.created_at)),
            (br#","updatedAt":"#, Some(columns.updated_at)),
        ],
    );
    out.push(b'}');
}

/// One task, straight from the row it borrows.
pub fn write_row(row: &TaskRow<'_>, out: &mut Vec<u8>) {
    write_columns(&row.columns, row.assignees(), &row.labels, out);
}

/// One task.
pub fn write_task(task: &Task, out: &mut Vec<u8>) {
    write_columns(
        &task.columns(),
        task.assignees.iter().map(String::as_str),
        &task.labels,
        out,
    );
}

/// A JSON array of `tasks`.
pub fn write_tasks(tasks: &[Task], out: &mut Vec<u8>) {
    // A task is about 600 bytes: reserving up front saves copying the body as it grows.
    out.reserve(tasks.len() * 640);
    out.push(b'[');
    for (i, task) in tasks.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_task(task, out);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::spaces::Viewer;
    use crate::store::tasks::{Priority, find_task_for_user, read_task_for_user};

    /// The bytes written from a borrowed row are serde's for the same task read as an owned one,
    /// with text that needs escaping in the description and the labels.
    #[test]
    fn a_row_is_written_as_serde_writes_the_task() {
        let (_dir, store): (_, Store) = crate::store::open_temp();
        let (user_id, task_id) = store
            .write(|tx| {
                use crate::store::users::{Plan, create_user};
                let user = create_user(tx, "ann@example.com", "Ann", Plan::Pro)?;
                let project_id: String =
                    tx.query_row("SELECT id FROM projects", [], |r| r.get(0))?;
                let space_id: String =
                    tx.query_row("SELECT space_id FROM projects", [], |r| r.get(0))?;
                let status_id: String = tx.query_row(
                    "SELECT id FROM statuses WHERE project_id = ?1 ORDER BY position LIMIT 1",
                    [&project_id],
                    |r| r.get(0),
                )?;
                let task = crate::store::tasks::create_task(
                    tx,
                    &crate::store::tasks::NewTask {
                        project_id,
                        status_id,
                        title: "a \"quote\", a \\, a line\nand \u{1}, é".into(),
                        description: Some("\u{7f} and 😀".into()),
                        priority: Priority::High,
                        due_date: None,
                        start_date: None,
                        position: None,
                        parent_id: None,
                        assignees: vec![user.id.clone()],
                        labels: Vec::new(),
                        created_by: user.id.clone(),
                    },
                    crate::store::projects::Category::Todo,
                )?;
                for name in ["b", "A", "\"q\"\t"] {
                    let label = crate::store::labels::find_or_create_label(
                        tx, &space_id, name, None, "labels",
                    )?;
                    crate::store::tasks::add_label(tx, &task.id, &label.id)?;
                }
                Ok((user.id, task.id))
            })
            .unwrap();
        let owned = store
            .read(|conn| find_task_for_user(conn, &task_id, Viewer::user(&user_id)))
            .unwrap()
            .unwrap()
            .task;
        let mut written = Vec::new();
        store
            .read(|conn| {
                read_task_for_user(conn, &task_id, Viewer::user(&user_id), |row| {
                    write_row(row, &mut written)
                })
            })
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            serde_json::to_string(&owned).unwrap()
        );
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
            write_task(&task, &mut written);
            proptest::prop_assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&task).unwrap()
            );
            let mut array = Vec::new();
            write_tasks(&[task.clone(), task.clone()], &mut array);
            proptest::prop_assert_eq!(
                String::from_utf8(array).unwrap(),
                serde_json::to_string(&[&task, &task]).unwrap()
            );
        }
    }
}
