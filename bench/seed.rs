//! Seeds a benchmark database through the store (the same code the server runs), fast: one
//! transaction per project. Usage: seed DB_FILE OUT_FILE TASKS[,TASKS...]
//! Creates a team user, 100 tokens, and one project per TASKS count, each task with an assignee
//! and a label. OUT_FILE gets `token T`, `project ID COUNT` and `task ID` lines for wrk.

use std::fmt::Write as _;

use ktasks::config::{DatabaseConfig, Synchronous};
use ktasks::store::labels::{LabelRef, find_or_create_label};
use ktasks::store::projects::{Category, NewProject, View, create_project};
use ktasks::store::spaces::{NewSpace, create_space};
use ktasks::store::tasks::{NewTask, Priority, create_task};
use ktasks::store::tokens::{NewToken, Scope, create_token};
use ktasks::store::users::{Plan, create_user};
use ktasks::store::{Store, new_id};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, out, counts] = args.as_slice() else {
        eprintln!("usage: seed DB_FILE OUT_FILE TASKS[,TASKS...]");
        std::process::exit(2);
    };
    let config = DatabaseConfig {
        path: db.into(),
        synchronous: Synchronous::Normal,
        ..DatabaseConfig::default()
    };
    let store = Store::open(&config).expect("open the database");
    let mut lines = String::new();
    let (user_id, space_id) = store
        .write(|tx| {
            let user = create_user(tx, "bench@example.com", "Bench", Plan::Team)?;
            let space = NewSpace {
                name: "Bench".into(),
                slug: format!("bench-{}", &new_id()[..8]),
                description: None,
                color: None,
                personal: false,
            };
            let space = create_space(tx, &space, &user.id)?;
            for _ in 0..100 {
                let token = ktasks::token::generate().expect("random");
                let hash = ktasks::token::hash(&token);
                let new = NewToken {
                    user_id: &user.id,
                    name: "bench",
                    prefix: ktasks::token::display_prefix(&token),
                    hash: &hash,
                    scope: Scope::Write,
                    expires_at: None,
                    spaces: None,
                    rotated_from: None,
                };
                create_token(tx, &new)?;
                let _ = writeln!(lines, "token {token}");
            }
            Ok((user.id, space.id))
        })
        .expect("seed the user");
    for (n, count) in counts.split(',').enumerate() {
        let count: usize = count.parse().expect("a task count");
        store
            .write(|tx| {
                let project = create_project(
                    tx,
                    &NewProject {
                        space_id: space_id.clone(),
                        name: format!("Project {n}"),
                        slug: format!("project-{n}"),
                        description: None,
                        default_view: View::Kanban,
                        color: None,
                    },
                )?;
                let _ = writeln!(lines, "project {} {count}", project.id);
                let labels: Vec<LabelRef> = (0..5)
                    .map(|i| {
                        find_or_create_label(tx, &space_id, &format!("label-{i}"), None, "labels")
                            .map(|l| LabelRef {
                                id: l.id,
                                name: l.name,
                                color: l.color,
                            })
                    })
                    .collect::<Result<_, _>>()?;
                for i in 0..count {
                    let task = NewTask {
                        project_id: project.id.clone(),
                        status_id: project.statuses[0].id.clone(),
                        title: format!("Task {i} of a benchmark project"),
                        description: Some("Seeded for bench/run.sh".into()),
                        priority: Priority::Medium,
                        due_date: Some("2027-01-15".into()),
                        start_date: None,
                        position: None,
                        parent_id: None,
                        assignees: vec![user_id.clone()],
                        labels: vec![labels[i % labels.len()].clone()],
                        created_by: user_id.clone(),
                    };
                    let id = create_task(tx, &task, Category::Todo)?.id;
                    if n == 0 && i < 2000 {
                        let _ = writeln!(lines, "task {id}");
                    }
                }
                Ok(())
            })
            .expect("seed a project");
    }
    std::fs::write(out, lines).expect("write the data file");
}
