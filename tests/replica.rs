//! Read replicas (SPEC 13): a second server on a copy of the primary's database, kept current by
//! the SQLite backup API writing the copy in place (as LiteFS or a restore loop would), answers
//! every GET route and sends every write to the primary (307) or refuses it (503); it writes
//! nothing, and the CLI refuses writes on it.

use std::path::Path;

use serde_json::json;

use crate::util::{Env, Server, Team};

/// Copies the primary's database over `replica`, in place: the replica's open connections see
/// the new pages, as they would on LiteFS.
fn refresh(primary: &Path, replica: &Path) {
    let source = rusqlite::Connection::open(primary).unwrap();
    let mut destination = rusqlite::Connection::open(replica).unwrap();
    let backup = rusqlite::backup::Backup::new(&source, &mut destination).unwrap();
    backup
        .run_to_completion(1000, std::time::Duration::ZERO, None)
        .unwrap();
}

/// Every route of the router's table with the team's ids in place of `:id`, and the queries the
/// lists need, as `(method, path)`.
fn every_route(team: &Team, task: &str, webhook: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (pattern, methods) in ktasks::router::ENDPOINTS {
        let id = if pattern.starts_with("/api/spaces") {
            &team.space
        } else if pattern.starts_with("/api/projects") {
            &team.project
        } else if pattern.starts_with("/api/tasks") {
            task
        } else {
            webhook
        };
        let mut path = pattern.replace(":id", id);
        match *pattern {
            "/api/projects" | "/api/labels" | "/api/webhooks" => {
                path.push_str(&format!("?spaceId={}", team.space));
            }
            "/api/tasks" => path.push_str(&format!("?projectId={}", team.project)),
            "/api/tasks/:id/assignees" => path.push_str(&format!("?userId={}", team.member_id)),
            "/api/tasks/:id/labels" => path.push_str("?name=l"),
            _ => {}
        }
        for method in methods.split(", ") {
            routes.push((method.to_string(), path.clone()));
        }
    }
    routes
}

/// A replica of the team's database, and the bytes of its file as copied (before the replica
/// opened it).
fn replica_of(team: &Team, config: &str) -> (Env, Server, Vec<u8>) {
    let env = Env::new();
    refresh(&team.env.db(), &env.db());
    let copied = std::fs::read(env.db()).unwrap();
    let server = env.serve_with_config(&format!("[database]\nread_only = true\n{config}"));
    (env, server, copied)
}

#[test]
fn a_replica_answers_reads_sends_writes_to_the_primary_and_writes_nothing() {
    let team = Team::new();
    let task = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "seen on the replica", "labels": ["l"],
                "assignees": [team.member_id]}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let webhook = team.server.create(
        "/api/webhooks",
        &team.owner,
        &json!({"spaceId": team.space, "url": "http://127.0.0.1:9/hook", "events": ["*"]}),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let primary = format!("http://{}", team.server.addr);
    let (replica_env, replica, before) =
        replica_of(&team, &format!("[server]\nprimary_url = \"{primary}/\"\n"));

    let mut writes = 0;
    for (method, path) in every_route(&team, &task, &webhook) {
        let body = (method != "GET").then_some("{}");
        let response = replica.request(&method, &path, Some(&team.owner), body);
        if method == "GET" {
            assert_eq!(response.status, 200, "{method} {path}: {}", response.body);
            continue;
        }
        writes += 1;
        assert_eq!(response.status, 307, "{method} {path}: {}", response.body);
        assert_eq!(
            response.header("location"),
            Some(format!("{primary}{path}").as_str()),
            "{method} {path}"
        );
        assert_eq!(response.json()["code"], "read_only_replica");
    }
    assert!(writes >= 15, "{writes} write routes");
    // The pages' forms go the same way; their GETs are answered.
    let login = replica.raw(
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"email=a",
    );
    // A browser would follow a 307 to another origin without the primary's cookies: a page
    // that links to the primary instead.
    assert_eq!(login.status, 503);
    assert!(
        login.body.contains(&format!("{primary}/settings/security")),
        "{}",
        login.body
    );
    assert_eq!(replica.raw("GET", "/login", &[], b"").status, 200);

    // The database file was never written (no lastUsedAt, no migration, no checkpoint): it is
    // byte for byte as copied, before the replica opened it;
    // and no WAL was made.
    assert_eq!(std::fs::read(replica_env.db()).unwrap(), before);
    let wal = replica_env.dir.path().join("ktasks.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the replica wrote a WAL"
    );

    // Kept current in place, it answers with what the primary committed since.
    let later = team.task("committed after the copy")["id"]
        .as_str()
        .unwrap()
        .to_string();
    replica
        .get(&format!("/api/tasks/{later}"), &team.owner)
        .assert_error(404, "not_found");
    refresh(&team.env.db(), &replica_env.db());
    let seen = replica.get_ok(&format!("/api/tasks/{later}"), &team.owner);
    assert_eq!(seen["title"], "committed after the copy");
    // A token revoked on the primary is refused on the replica once the change arrives.
    let revoked_id = replica.get_ok("/api/me", &team.viewer)["token"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    team.env.cli_ok(&["token", "revoke", &revoked_id]);
    refresh(&team.env.db(), &replica_env.db());
    replica
        .get("/api/me", &team.viewer)
        .assert_error(401, "unauthorized");
}

#[test]
fn without_a_primary_writes_are_503_and_the_cli_refuses_them() {
    let team = Team::new();
    let (replica_env, replica, _) = replica_of(&team, "");
    let response = replica.post(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "no"}),
    );
    let body = response.assert_error(503, "read_only_replica");
    assert!(body["error"].as_str().unwrap().contains("primary"));
    assert_eq!(replica.get("/api/me", &team.owner).status, 200);
    let page = replica.raw(
        "POST",
        "/settings/security/tokens",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"name=x",
    );
    assert_eq!(page.status, 503);
    assert!(page.body.contains("read-only copy"), "{}", page.body);

    // The CLI on the replica's file (with its config) reads, and refuses to write.
    let config = replica_env.dir.path().join("config.toml");
    let config = config.to_str().unwrap();
    let listed = replica_env.cli(&["--config", config, "token", "list", "--json"]);
    assert!(listed.status.success());
    let refused = replica_env.cli(&[
        "--config",
        config,
        "user",
        "create",
        "--email",
        "new@example.com",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("read-only replica"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn a_database_file_that_cannot_be_written_makes_a_replica() {
    use std::os::unix::fs::PermissionsExt;
    let team = Team::new();
    let env = Env::new();
    refresh(&team.env.db(), &env.db());
    std::fs::set_permissions(env.db(), std::fs::Permissions::from_mode(0o400)).unwrap();
    let replica = env.serve();
    assert_eq!(replica.get("/api/me", &team.owner).status, 200);
    replica
        .post(
            "/api/spaces",
            &team.owner,
            &json!({"name": "N", "slug": "nnn"}),
        )
        .assert_error(503, "read_only_replica");
    assert!(crate::util::wait_until(
        std::time::Duration::from_secs(10),
        || replica.log().contains("read-only replica")
    ));
}
