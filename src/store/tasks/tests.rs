//! Query plans, statement counts and relations of task reads.

use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::list::{ASSIGNEES_OF_TASKS, LABELS_OF_TASKS};
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
            let space =
                spaces::list_spaces_for_user(tx, Viewer::user(&user.id), None, 1)?.remove(0);
            let project_id: String = tx.query_row(
                "SELECT id FROM projects WHERE space_id = ?1",
                [&space.id],
                |r| r.get(0),
            )?;
            let project = find_project(tx, &project_id)?.unwrap();
            let label =
                crate::store::labels::find_or_create_label(tx, &space.id, "bug", None, "labels")?;
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
        .read(|conn| find_task_for_user(conn, &task_id, Viewer::user(&user_id)))
        .unwrap()
        .unwrap()
        .task;
    let filter = TaskFilter {
        project_id: Some(project_id),
        ..TaskFilter::default()
    };
    let page = store
        .read(|conn| list_tasks(conn, Viewer::user(&user_id), &filter, None, 10))
        .unwrap();
    let listed = page.into_iter().find(|t| t.id == task_id).unwrap();
    let names = |task: &Task| {
        task.labels
            .iter()
            .map(|l| l.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&one).len(), 8);
    // The borrowed row holds what the owned task holds; a non-member reads nothing.
    let row_sees = store
        .read(|conn| {
            read_task_for_user(conn, &task_id, Viewer::user(&user_id), |row| {
                let assignees: Vec<String> = row.assignees().map(str::to_string).collect();
                let labels: Vec<String> = row.labels.iter().map(|l| l.name.clone()).collect();
                (
                    row.columns.description.map(str::to_string),
                    assignees,
                    labels,
                )
            })
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        row_sees,
        (one.description.clone(), one.assignees.clone(), names(&one))
    );
    let stranger_sees = store
        .read(|conn| read_task_for_user(conn, &task_id, Viewer::user(&others[0]), |_| ()))
        .unwrap();
    assert!(stranger_sees.is_none());
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
                let (sql, values) = list_tasks_query(Viewer::user(&user_id), &filter, after, limit);
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
        let (sql, values) = list_tasks_query(Viewer::user(&user_id), &filter, after, 51);
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
    let (sql, values) = list_tasks_query(Viewer::user(&user_id), &filter, None, 51);
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
                assert!(
                    !plan.contains("SCAN tl") && !plan.contains("SCAN ta"),
                    "{plan}"
                );
                assert!(
                    !plan.contains("TEMP B-TREE") && !plan.contains("AUTOMATIC"),
                    "{plan}"
                );
            }
            let spaces = "SELECT s.id FROM space_members m JOIN spaces s ON s.id = m.space_id \
                          WHERE m.user_id = ?1 AND m.space_id > ?2 ORDER BY m.space_id LIMIT 10";
            let plan = plan(
                conn,
                spaces,
                vec![Value::Text(user_id.clone()), Value::Text(String::new())],
            );
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
        let page = list_tasks(&conn, Viewer::user(&user_id), &filter, None, 50).unwrap();
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
