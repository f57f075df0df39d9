//! The server's own behaviour: health, routing errors, body limits, start-up and shutdown.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::util::{Env, wait_until};

#[test]
fn healthz_answers_without_a_token() {
    let env = Env::new();
    let server = env.serve();
    let response = server.request("GET", "/healthz", None, None);
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), json!({"status": "ok"}));
    assert_eq!(response.header("content-type"), Some("application/json"));
}

#[test]
fn unknown_routes_are_json_404_and_wrong_methods_405_with_allow() {
    let env = Env::new();
    let server = env.serve();
    for path in ["/", "/api", "/api/nope", "/api/tasks/x/y/z", "/api/spaces/"] {
        server
            .request("GET", path, None, None)
            .assert_error(404, "not_found");
    }
    let response = server.request("PUT", "/api/spaces", None, None);
    response.assert_error(405, "method_not_allowed");
    assert_eq!(response.header("allow"), Some("GET, POST"));
    let response = server.request("POST", "/healthz", None, None);
    assert_eq!(response.header("allow"), Some("GET"));
}

#[test]
fn spaces_lists_the_personal_space_with_its_general_project() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve();
    let spaces = server.get("/api/spaces", &token);
    assert_eq!(spaces.status, 200, "{}", spaces.body);
    let spaces = spaces.json();
    let spaces = spaces.as_array().unwrap();
    assert_eq!(spaces.len(), 1);
    let personal = &spaces[0];
    assert_eq!(personal["personal"], true);
    assert_eq!(personal["role"], "owner");
    assert_eq!(personal["slug"], "ann");
    for field in [
        "id",
        "name",
        "slug",
        "description",
        "color",
        "personal",
        "role",
        "createdAt",
        "updatedAt",
    ] {
        assert!(personal.get(field).is_some(), "missing {field}");
    }
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let statuses: Vec<(String, String)> = conn
        .prepare(
            "SELECT st.name, st.category FROM statuses st JOIN projects p ON p.id = st.project_id \
             WHERE p.space_id = ?1 AND p.slug = 'general' ORDER BY st.position",
        )
        .unwrap()
        .query_map([personal["id"].as_str().unwrap()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        ("To Do", "todo"),
        ("In Progress", "in_progress"),
        ("Done", "done"),
    ];
    assert_eq!(
        statuses,
        expected
            .map(|(n, c)| (n.to_string(), c.to_string()))
            .to_vec(),
        "General with the default statuses"
    );
}

#[test]
fn oversized_bodies_are_413_and_non_json_bodies_415() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve_with_config("[limits]\nmax_body_bytes = 1024\n");
    let auth = format!("Bearer {token}");
    let big = vec![b' '; 4096];
    server
        .raw(
            "POST",
            "/api/spaces",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &big,
        )
        .assert_error(413, "payload_too_large");
    let body = br#"{"name": "Team", "slug": "team"}"#;
    server
        .raw(
            "POST",
            "/api/spaces",
            &[("Authorization", &auth), ("Content-Type", "text/plain")],
            body,
        )
        .assert_error(415, "unsupported_media_type");
    server
        .raw("POST", "/api/spaces", &[("Authorization", &auth)], body)
        .assert_error(415, "unsupported_media_type");
    let created = server.raw(
        "POST",
        "/api/spaces",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert_eq!(created.status, 201, "{}", created.body);
}

#[test]
fn serve_on_an_empty_database_prints_how_to_start() {
    let env = Env::new();
    let mut server = env.serve();
    let log = server.stop();
    assert!(log.contains("user create --email"), "{log}");
    assert!(log.contains(&env.db().display().to_string()), "{log}");
}

#[test]
fn sigterm_shuts_down_cleanly_with_exit_code_0() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let mut server = env.serve();
    assert_eq!(server.get("/api/me", &token).status, 200);
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut status = None;
    assert!(wait_until(Duration::from_secs(15), || {
        status = server.child.try_wait().unwrap();
        status.is_some()
    }));
    assert_eq!(status.unwrap().code(), Some(0), "{}", server.log());
    // The WAL was folded back on the way out.
    let wal = std::fs::metadata(format!("{}-wal", env.db().display()))
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(wal, 0);
}

#[test]
fn sigint_also_exits_0() {
    let env = Env::new();
    let mut server = env.serve();
    Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    let mut status = None;
    assert!(wait_until(Duration::from_secs(15), || {
        status = server.child.try_wait().unwrap();
        status.is_some()
    }));
    assert_eq!(status.unwrap().code(), Some(0));
}
