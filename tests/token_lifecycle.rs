//! SPEC 11 against the real binary: rotation with a grace (by the CLI while the server runs, and
//! on the settings page), tokens restricted to spaces, `Token-Expires-At`,
//! `tokens.max_lifetime_days`, and `lastUsedIp`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{Env, Team, wait_until};
use crate::web::{Browser, PASSWORD, hidden_csrf, new_token_on, set_password};

/// `token list --json`, the one with this id.
fn listed(env: &Env, id: &str) -> Value {
    let all: Value = serde_json::from_str(&env.cli_ok(&["token", "list", "--json"])).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("token {id} is not listed: {all}"))
        .clone()
}

/// The id of the token `/api/me` answers for.
fn id_of(server: &crate::util::Server, token: &str) -> String {
    server.get_ok("/api/me", token)["token"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The CLI with this TOML as its config file.
fn cli_with(env: &Env, config: &str, args: &[&str]) -> std::process::Output {
    let path = env.dir.path().join("cli.toml");
    std::fs::write(&path, config).unwrap();
    let mut all = vec!["--config", path.to_str().unwrap()];
    all.extend_from_slice(args);
    env.cli(&all)
}

/// `token create` for ann@example.com, with a config file and more arguments.
fn create_with(env: &Env, config: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "token",
        "create",
        "--user",
        "ann@example.com",
        "--name",
        "n",
    ];
    args.extend_from_slice(extra);
    cli_with(env, config, &args)
}

fn failed_with(output: &std::process::Output, words: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "no token is printed");
    assert!(stderr.contains(words), "{stderr}");
}

#[test]
fn a_token_rotated_by_the_cli_keeps_working_through_its_grace_and_then_is_revoked() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let old = env.token(
        "ann@example.com",
        &["--read-only", "--expires-in-days", "30"],
    );
    let server = env.serve();
    let old_id = id_of(&server, &old);
    let before = server.get("/api/me", &old);
    let expires = listed(&env, &old_id)["expiresAt"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(before.header("token-expires-at"), Some(expires.as_str()));

    // The server is running and has the old token cached: the rotation comes from another
    // process, as an operator's would.
    let started = Instant::now();
    let out = env.cli_ok(&["token", "rotate", &old_id, "--grace-seconds", "5"]);
    let new = out.lines().next().unwrap().to_string();
    assert!(ktasks::token::is_well_formed(&new), "{out}");
    assert_eq!(out.lines().count(), 1, "the token alone on stdout");

    let old_row = listed(&env, &old_id);
    let new_id = id_of(&server, &new);
    let new_row = listed(&env, &new_id);
    assert_eq!(old_row["replacedBy"], new_id.as_str());
    assert_eq!(new_row["rotatedFrom"], old_id.as_str());
    assert!(new_row["replacedBy"].is_null() && new_row["revokedAt"].is_null());
    assert_eq!(new_row["name"], old_row["name"]);
    assert_eq!(new_row["scope"], "read", "the scope is inherited");
    assert_eq!(new_row["spaces"], Value::Null);
    // The same lifetime, counted from now: 30 days ahead, not the old token's date.
    let new_expires = new_row["expiresAt"].as_str().unwrap();
    assert!(
        new_expires >= expires.as_str(),
        "{new_expires} vs {expires}"
    );
    assert_eq!(&new_expires[..10], &ktasks::time::days_from_now(30)[..10]);

    // During the grace both work; the old one says when it stops.
    let during = server.get("/api/me", &old);
    assert_eq!(during.status, 200, "{}", during.body);
    let grace_end = old_row["revokedAt"].as_str().unwrap();
    assert_eq!(during.header("token-expires-at"), Some(grace_end));
    assert_eq!(during.json()["token"]["expiresAt"], grace_end);
    assert_eq!(
        server.get("/api/me", &new).header("token-expires-at"),
        Some(new_expires)
    );
    if started.elapsed() < Duration::from_secs(4) {
        assert_eq!(server.get("/api/spaces?limit=1", &old).status, 200);
    }
    assert!(
        wait_until(Duration::from_secs(10), || server
            .get("/api/me", &old)
            .status
            == 401),
        "the old token stops when its grace ends"
    );
    assert!(started.elapsed() >= Duration::from_secs(5));
    let after = server
        .get("/api/me", &old)
        .assert_error(401, "unauthorized");
    assert!(
        after["error"].as_str().unwrap().contains("revoked"),
        "{after}"
    );
    assert_eq!(server.get("/api/me", &new).status, 200);

    // Neither a rotated nor a revoked token rotates again; nor does an unknown id.
    failed_with(&env.cli(&["token", "rotate", &old_id]), "rotated already");
    env.cli_ok(&["token", "revoke", &new_id]);
    failed_with(&env.cli(&["token", "rotate", &new_id]), "revoked");
    failed_with(
        &env.cli(&["token", "rotate", "00000000-0000-0000-0000-000000000000"]),
        "no token",
    );
}

#[test]
fn rotation_without_a_grace_ends_the_old_token_at_once_and_revoke_ends_a_grace() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let first = env.token("ann@example.com", &[]);
    let server = env.serve();
    let first_id = id_of(&server, &first);
    assert_eq!(
        server.get("/api/me", &first).header("token-expires-at"),
        None,
        "a token that never expires has no header"
    );
    let second = env.cli_ok(&["token", "rotate", &first_id]);
    let second = second.lines().next().unwrap();
    server
        .get("/api/me", &first)
        .assert_error(401, "unauthorized");
    let second_me = server.get("/api/me", second);
    assert_eq!(second_me.status, 200);
    assert_eq!(second_me.header("token-expires-at"), None);

    // A long grace, cut short by `token revoke`.
    let second_id = id_of(&server, second);
    let third = env.cli_ok(&["token", "rotate", &second_id, "--grace-minutes", "60"]);
    let third = third.lines().next().unwrap();
    assert_eq!(server.get("/api/me", second).status, 200);
    env.cli_ok(&["token", "revoke", &second_id]);
    server
        .get("/api/me", second)
        .assert_error(401, "unauthorized");
    assert_eq!(server.get("/api/me", third).status, 200);
}

#[test]
fn a_maximum_lifetime_is_enforced_at_creation_and_rotation() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let forever = env.token("ann@example.com", &[]);
    let strict = "[tokens]\nmax_lifetime_days = 30\n";
    let create = |extra: &[&str]| create_with(&env, strict, extra);
    failed_with(&create(&[]), "expire within 30 days");
    failed_with(&create(&["--expires-in-days", "31"]), "max_lifetime_days");
    let ok = create(&["--expires-in-days", "30"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let server = env.serve_with_config("[tokens]\nmax_lifetime_days = 30\n");
    let forever_id = id_of(&server, &forever);
    failed_with(
        &cli_with(&env, strict, &["token", "rotate", &forever_id]),
        "expire within 30 days",
    );
    assert_eq!(
        server.get("/api/me", &forever).status,
        200,
        "a refused rotation changes nothing"
    );
    assert!(listed(&env, &forever_id)["replacedBy"].is_null());
}

#[test]
fn the_last_use_records_the_client_address() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve();
    let id = id_of(&server, &token);
    let row = listed(&env, &id);
    assert!(row["lastUsedAt"].is_string());
    assert_eq!(row["lastUsedIp"], "127.0.0.1");
    let table = env.cli_ok(&["token", "list"]);
    assert!(
        table.contains("LAST IP") && table.contains("127.0.0.1"),
        "{table}"
    );
}

/// The team's owner, with a token restricted to the team space, and tasks assigned to them both
/// there and in their personal space.
#[test]
fn a_space_restricted_token_reaches_only_its_spaces_and_never_more_than_membership() {
    let team = Team::new();
    let (server, env) = (&team.server, &team.env);
    let restricted = env.token("owner@example.com", &["--space", "team"]);
    let me = server.get_ok("/api/me", &restricted);
    assert_eq!(me["token"]["spaces"], json!([team.space]));
    assert_eq!(
        server.get_ok("/api/me", &team.owner)["token"]["spaces"],
        Value::Null
    );

    let personal = server.personal_space(&team.owner);
    let personal_project = server.first_project(&team.owner, &personal);
    let assigned = |project: &str, title: &str| {
        server.create(
            "/api/tasks",
            &team.owner,
            &json!({"projectId": project, "title": title, "assignees": [team.owner_id]}),
        )["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let in_team = assigned(&team.project, "team work");
    let in_personal = assigned(&personal_project, "private");

    let spaces = server.get_ok("/api/spaces", &restricted);
    let ids: Vec<&str> = spaces
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [team.space.as_str()]);
    let mine = server.get_ok("/api/tasks?assigneeId=me", &restricted);
    let titles: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["team work"], "assigneeId=me spans only its spaces");
    assert_eq!(
        server
            .get_ok("/api/tasks?assigneeId=me", &team.owner)
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Outside: 404, exactly as for a space one is not a member of.
    for path in [
        format!("/api/spaces/{personal}"),
        format!("/api/spaces/{personal}/members"),
        format!("/api/projects/{personal_project}"),
        format!("/api/projects?spaceId={personal}"),
        format!("/api/tasks/{in_personal}"),
        format!("/api/tasks?projectId={personal_project}"),
        format!("/api/labels?spaceId={personal}"),
        format!("/api/webhooks?spaceId={personal}"),
    ] {
        server
            .get(&path, &restricted)
            .assert_error(404, "not_found");
        assert_eq!(server.get(&path, &team.owner).status, 200, "{path}");
    }
    server
        .patch(
            &format!("/api/tasks/{in_personal}"),
            &restricted,
            &json!({"title": "no"}),
        )
        .assert_error(404, "not_found");
    server
        .post(
            "/api/tasks",
            &restricted,
            &json!({"projectId": personal_project, "title": "no"}),
        )
        .assert_error(404, "not_found");
    let refused = server
        .post(
            "/api/spaces",
            &restricted,
            &json!({"name": "New", "slug": "brand-new"}),
        )
        .assert_error(403, "insufficient_scope");
    assert!(refused["error"].as_str().unwrap().contains("restricted"));
    assert_eq!(
        server.get_ok(&format!("/api/tasks/{in_personal}"), &team.owner)["title"],
        "private",
        "nothing changed"
    );
    assert_eq!(
        server
            .get(&format!("/api/tasks/{in_team}"), &restricted)
            .status,
        200
    );

    // The owner leaves nothing, but a member does: the member's restricted token then reaches
    // nothing at all, not its other spaces.
    let member_only_team = env.token("member@example.com", &["--space", "team"]);
    assert_eq!(
        server
            .get(&format!("/api/tasks/{in_team}"), &member_only_team)
            .status,
        200
    );
    let db = rusqlite::Connection::open(env.db()).unwrap();
    db.execute(
        "DELETE FROM space_members WHERE user_id = ?1 AND space_id = ?2",
        [&team.member_id, &team.space],
    )
    .unwrap();
    server
        .get(&format!("/api/tasks/{in_team}"), &member_only_team)
        .assert_error(404, "not_found");
    assert_eq!(
        server.get_ok("/api/spaces", &member_only_team),
        json!([]),
        "no space is within reach any more"
    );
    assert!(
        !server
            .get_ok("/api/spaces", &team.member)
            .as_array()
            .unwrap()
            .is_empty(),
        "the member's unrestricted token still has their personal space"
    );
}

#[test]
fn restricting_to_a_space_one_is_not_in_or_that_does_not_exist_is_refused() {
    let team = Team::new();
    let make = |space: &str| {
        team.env.cli(&[
            "token",
            "create",
            "--user",
            "member@example.com",
            "--name",
            "n",
            "--space",
            space,
        ])
    };
    failed_with(&make("other"), "not a member");
    failed_with(&make("no-such-space"), "no space has the slug");
    // A rotation keeps the restriction.
    let token = team.env.token(
        "member@example.com",
        &["--space", "team", "--space", "team"],
    );
    let id = id_of(&team.server, &token);
    assert_eq!(listed(&team.env, &id)["spaces"], json!([team.space]));
    let rotated = team.env.cli_ok(&["token", "rotate", &id]);
    let rotated = rotated.lines().next().unwrap();
    assert_eq!(
        team.server.get_ok("/api/me", rotated)["token"]["spaces"],
        json!([team.space])
    );
}

#[test]
fn the_page_rotates_restricts_and_marks_tokens_expiring_soon() {
    let env = Env::new();
    env.user("ann@example.com", "team");
    set_password(&env, "ann@example.com");
    let server = env.serve_with_config("[tokens]\nmax_lifetime_days = 5\n");
    let mut browser = Browser::new(&server);
    browser.sign_in("ann@example.com", PASSWORD);
    let (page, csrf) = browser.settings();
    assert!(
        page.body.contains("expire within 5 days"),
        "the rule is shown"
    );
    assert!(
        !page.body.contains("value=\"never\""),
        "never is not offered"
    );

    // "Never" posted anyway is refused with the reason, and nothing is made.
    let refused = browser.post(
        "/settings/security/tokens",
        &[("csrf", &csrf), ("name", "n"), ("expiry", "never")],
    );
    assert_eq!(refused.status, 200);
    assert!(
        refused.body.contains("expire within 5 days"),
        "{}",
        refused.body
    );
    assert_eq!(env.cli_ok(&["token", "list", "--json"]).trim(), "[]");

    let personal = {
        let token = env.token("ann@example.com", &["--expires-in-days", "5"]);
        server.personal_space(&token)
    };
    let created = browser.post(
        "/settings/security/tokens",
        &[
            ("csrf", &csrf),
            ("name", "Scoped"),
            ("expiry", "5"),
            ("spaces", &personal),
        ],
    );
    assert_eq!(created.status, 303, "{}", created.body);
    let (shown, csrf) = browser.settings();
    let scoped = new_token_on(&shown.body).expect("shown once");
    assert_eq!(
        server.get_ok("/api/me", &scoped)["token"]["spaces"],
        json!([personal])
    );
    assert!(
        shown.body.contains("(soon)"),
        "expiring within 7 days is marked"
    );

    let id = id_of(&server, &scoped);
    let rotated = browser.post(
        &format!("/settings/security/tokens/{id}/rotate"),
        &[("csrf", &csrf), ("grace", "1h")],
    );
    assert_eq!(rotated.status, 303, "{}", rotated.body);
    let (shown, csrf) = browser.settings();
    let replacement = new_token_on(&shown.body).expect("the new token is shown once");
    assert_ne!(replacement, scoped);
    assert!(shown.body.contains("Replaced by"), "the old one says so");
    assert!(shown.body.contains("replaces"), "the new one says so");
    assert_eq!(
        server.get("/api/me", &scoped).status,
        200,
        "1 hour of grace"
    );
    assert_eq!(
        server.get_ok("/api/me", &replacement)["token"]["spaces"],
        json!([personal])
    );
    // An unknown grace is refused; a token rotated already has no Rotate button and is refused.
    let bad = browser.post(
        &format!("/settings/security/tokens/{id}/rotate"),
        &[("csrf", &csrf), ("grace", "forever")],
    );
    assert!(bad.body.contains("Choose a grace"), "{}", bad.body);
    let again = browser.post(
        &format!("/settings/security/tokens/{id}/rotate"),
        &[("csrf", &hidden_csrf(&bad.body)), ("grace", "none")],
    );
    assert!(again.body.contains("rotated already"), "{}", again.body);
    assert_eq!(server.get("/api/me", &scoped).status, 200);
}

/// An idempotency key is per user, but a token restricted to some spaces is never replayed what
/// another of its user's tokens got from outside them.
#[test]
fn a_restricted_token_is_not_replayed_an_answer_from_outside_its_spaces() {
    let team = Team::new();
    let (server, env) = (&team.server, &team.env);
    let personal = server.personal_space(&team.owner);
    let personal_project = server.first_project(&team.owner, &personal);
    let restricted = env.token("owner@example.com", &["--space", "team"]);
    let body = json!({"projectId": personal_project, "title": "private"}).to_string();
    let send = |token: &str| {
        server.raw(
            "POST",
            "/api/tasks",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", "shared-key"),
            ],
            body.as_bytes(),
        )
    };
    let first = send(&team.owner);
    assert_eq!(first.status, 201, "{}", first.body);
    let replay = send(&restricted);
    replay.assert_error(422, "idempotency_key_reused");
    assert!(!replay.body.contains("private"), "{}", replay.body);
    assert_eq!(
        send(&team.owner).header("idempotent-replayed"),
        Some("true")
    );
}

/// A rotation's replacement takes its predecessor's place in `tokens.max_active_per_user`: a user
/// at the limit can rotate every token, graces and all, but not mint one more.
#[test]
fn rotations_at_the_active_token_limit_are_allowed_and_new_tokens_are_not() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let two = "[tokens]\nmax_active_per_user = 2\n";
    let server = env.serve();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let made = create_with(&env, two, &[]);
        assert!(made.status.success());
        let token = String::from_utf8(made.stdout).unwrap();
        ids.push(id_of(&server, token.trim()));
    }
    for id in &ids {
        let rotated = cli_with(&env, two, &["token", "rotate", id, "--grace-minutes", "60"]);
        assert!(
            rotated.status.success(),
            "{}",
            String::from_utf8_lossy(&rotated.stderr)
        );
    }
    failed_with(&create_with(&env, two, &[]), "max_active_per_user");
}
