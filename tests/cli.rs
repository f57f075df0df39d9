//! The command line: words, exit codes, `--json`, configuration precedence, backup.

use std::process::Command;

use serde_json::Value;

use crate::util::{BIN, Env};

#[test]
fn usage_errors_exit_2_and_failures_exit_1() {
    let env = Env::new();
    assert_eq!(env.cli(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        env.cli(&["user", "create"]).status.code(),
        Some(2),
        "missing --email"
    );
    assert_eq!(
        env.cli(&["user", "create", "--email", "a@b", "--plan", "gold"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        env.cli(&["user", "create", "--email", "not-an-email"])
            .status
            .code(),
        Some(2)
    );
    env.user("ann@example.com", "pro");
    let duplicate = env.cli(&["user", "create", "--email", "ANN@example.com"]);
    assert_eq!(duplicate.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
    assert_eq!(
        env.cli(&[
            "token",
            "create",
            "--user",
            "nobody@example.com",
            "--name",
            "x"
        ])
        .status
        .code(),
        Some(1)
    );
    assert_eq!(
        env.cli(&["token", "revoke", "no-such-id"]).status.code(),
        Some(1)
    );
    let bad_days = env.cli(&[
        "token",
        "create",
        "--user",
        "ann@example.com",
        "--name",
        "x",
        "--expires-in-days",
        "0",
    ]);
    assert_eq!(bad_days.status.code(), Some(2));
    assert_eq!(env.cli(&["--help"]).status.code(), Some(0));
}

#[test]
fn list_commands_print_json_with_api_field_names() {
    let env = Env::new();
    env.user("ann@example.com", "team");
    env.cli_ok(&[
        "user",
        "create",
        "--email",
        "bob@example.com",
        "--name",
        "Bob B",
        "--plan",
        "free",
    ]);
    let users: Value = serde_json::from_str(&env.cli_ok(&["user", "list", "--json"])).unwrap();
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["email"], "ann@example.com");
    assert_eq!(users[0]["name"], "ann");
    assert_eq!(users[0]["plan"], "team");
    assert_eq!(users[1]["name"], "Bob B");
    assert!(users[1]["createdAt"].is_string());

    let token = env.token(
        "ann@example.com",
        &["--read-only", "--expires-in-days", "30"],
    );
    let tokens: Value = serde_json::from_str(&env.cli_ok(&[
        "token",
        "list",
        "--json",
        "--user",
        "ann@example.com",
    ]))
    .unwrap();
    let listed = &tokens[0];
    assert_eq!(listed["prefix"], &token[..8]);
    assert_eq!(listed["scope"], "read");
    assert_eq!(listed["name"], "test");
    assert!(listed["expiresAt"].is_string());
    assert!(listed["revokedAt"].is_null());
    assert!(
        !tokens.to_string().contains(&token[8..]),
        "only the prefix is listed"
    );

    let table = env.cli_ok(&["token", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&token[..8]));
    assert!(!table.contains(&token[8..]));
    let none: Value = serde_json::from_str(&env.cli_ok(&[
        "token",
        "list",
        "--json",
        "--user",
        "bob@example.com",
    ]))
    .unwrap();
    assert_eq!(none, Value::Array(vec![]));
}

#[test]
fn space_add_member_needs_a_team_space() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    env.user("bob@example.com", "pro");
    let output = env.cli(&[
        "space",
        "add-member",
        "--space",
        "ann",
        "--email",
        "bob@example.com",
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "personal spaces take no members"
    );
    let output = env.cli(&[
        "space",
        "add-member",
        "--space",
        "nope",
        "--email",
        "bob@example.com",
    ]);
    assert_ne!(output.status.code(), Some(0));
    let token = env.token("ann@example.com", &[]);
    let server = env.serve();
    let created = server.post(
        "/api/spaces",
        &token,
        &serde_json::json!({"name": "Team", "slug": "team"}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    env.cli_ok(&[
        "space",
        "add-member",
        "--space",
        "team",
        "--email",
        "bob@example.com",
        "--role",
        "viewer",
    ]);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let members = server
        .get(&format!("/api/spaces/{id}/members"), &token)
        .json();
    let bob = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "bob@example.com")
        .unwrap()
        .clone();
    assert_eq!(bob["role"], "viewer");
    assert!(bob["userId"].is_string() && bob["name"].is_string());
}

#[test]
fn config_file_env_and_flags_in_that_order() {
    let env = Env::new();
    let config = env.dir.path().join("k.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\npath = \"{}\"\n",
            env.dir.path().join("from-file.db").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str], db_env: Option<&str>| {
        let mut command = Command::new(BIN);
        command
            .current_dir(env.dir.path())
            .env("KTASKS_CONFIG", &config)
            .env_remove("KTASKS_DB");
        if let Some(db) = db_env {
            command.env("KTASKS_DB", db);
        }
        command.args(args).output().unwrap()
    };
    assert!(
        run(&["user", "create", "--email", "a@example.com"], None)
            .status
            .success()
    );
    assert!(
        env.dir.path().join("from-file.db").exists(),
        "config file names the database"
    );
    let env_db = env.dir.path().join("from-env.db");
    assert!(
        run(
            &["user", "create", "--email", "a@example.com"],
            Some(env_db.to_str().unwrap())
        )
        .status
        .success()
    );
    assert!(env_db.exists(), "environment beats the file");
    let flag_db = env.dir.path().join("from-flag.db");
    let output = run(
        &[
            "--db",
            flag_db.to_str().unwrap(),
            "user",
            "create",
            "--email",
            "a@example.com",
        ],
        Some(env_db.to_str().unwrap()),
    );
    assert!(output.status.success());
    assert!(flag_db.exists(), "the flag beats the environment");

    std::fs::write(&config, "[server]\nbnd = \"0.0.0.0:1\"\n").unwrap();
    let output = run(&["user", "list"], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("bnd"), "the unknown key is named: {stderr}");
}

#[test]
fn backup_writes_a_consistent_copy_and_refuses_to_overwrite() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    env.token("ann@example.com", &[]);
    let _server = env.serve();
    let copy = env.dir.path().join("copy.db");
    env.cli_ok(&["backup", copy.to_str().unwrap()]);
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let users: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 1);
    assert_eq!(
        env.cli(&["backup", copy.to_str().unwrap()]).status.code(),
        Some(1)
    );
}

/// The hint `serve` prints on an empty database works as printed: pasted into a shell in the
/// same directory, its two commands make a user and a token.
#[test]
fn the_first_run_hint_works_as_printed() {
    let env = Env::new();
    let server = env.serve();
    let log = server.log();
    let commands: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|line| line.contains(" user create ") || line.contains(" token create "))
        .collect();
    assert_eq!(commands.len(), 2, "{log}");
    for command in &commands {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(env.dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let token = env.cli_ok(&["token", "list", "--json"]);
    assert!(token.contains("my script"), "{token}");
}
