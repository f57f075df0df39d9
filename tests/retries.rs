//! Safe retries and concurrent edits (SPEC 10): `Idempotency-Key` under retry storms and
//! `kill -9`, `ETag` with `If-None-Match` and `If-Match`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::receiver::{Receiver, personal_webhook};
use crate::util::{Client, Env, Response, Server, Team, wait_until};

const NO_RATE_LIMIT: &str = "[rate_limit]\nrequests_per_minute = 100000000\n";

/// `Authorization`, `Content-Type` when there is a body, then `extra`.
fn headers<'a>(auth: &'a str, extra: &[(&'a str, &'a str)], body: &str) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![("Authorization", auth)];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    headers.extend_from_slice(extra);
    headers
}

fn with_headers(
    client: &Client,
    method: &str,
    path: &str,
    token: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Response> {
    let auth = format!("Bearer {token}");
    client.try_raw(method, path, &headers(&auth, extra, body), body.as_bytes())
}

/// `with_headers`, its answer checked against the OpenAPI document (as `Server::raw` does).
fn checked(
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Response {
    let response = with_headers(&server.client(), method, path, token, extra, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    crate::contract::check_response(method, path, &response);
    response
}

/// Sends a create with `key` until it is answered with something other than 409 in flight;
/// `Err` when the server is gone.
fn create_with_key(
    client: &Client,
    token: &str,
    body: &str,
    key: &str,
) -> std::io::Result<Response> {
    loop {
        let response = with_headers(
            client,
            "POST",
            "/api/tasks",
            token,
            &[("Idempotency-Key", key)],
            body,
        )?;
        if response.status != 409 {
            return Ok(response);
        }
        assert_eq!(response.json()["code"], "idempotency_key_in_flight");
        assert_eq!(response.header("retry-after"), Some("1"));
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn task_count(db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_retry_storm_makes_exactly_one_task_per_key() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve_with_config(NO_RATE_LIMIT);
    let project = server.first_project(&token, &server.personal_space(&token));
    let before = task_count(&env.db());
    // key -> the task id of every 2xx answer to it, and how many were replays.
    let answers: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let replays = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|client_no| {
            let (client, token, project) = (server.client(), token.clone(), project.clone());
            let (answers, replays) = (Arc::clone(&answers), Arc::clone(&replays));
            std::thread::spawn(move || {
                for n in 0..50 {
                    let key = format!("storm-{client_no}-{n}");
                    let body =
                        json!({"projectId": project, "title": format!("storm {client_no}/{n}")})
                            .to_string();
                    let send = || {
                        let response = create_with_key(&client, &token, &body, &key).unwrap();
                        assert_eq!(response.status, 201, "{}", response.body);
                        if response.header("idempotent-replayed") == Some("true") {
                            replays.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        response.json()["id"].as_str().unwrap().to_string()
                    };
                    // Every other key: its first two sends at the same moment, then a third.
                    let mut ids = if n % 2 == 0 {
                        std::thread::scope(|s| {
                            let first = s.spawn(send);
                            let second = s.spawn(send);
                            vec![first.join().unwrap(), second.join().unwrap()]
                        })
                    } else {
                        vec![send(), send()]
                    };
                    ids.push(send());
                    answers.lock().unwrap().insert(key, ids);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let answers = answers.lock().unwrap();
    assert_eq!(answers.len(), 400);
    let mut distinct = HashSet::new();
    for (key, ids) in answers.iter() {
        assert!(ids.iter().all(|id| id == &ids[0]), "{key}: {ids:?}");
        distinct.insert(ids[0].clone());
    }
    assert_eq!(distinct.len(), 400, "every key made its own task");
    assert_eq!(
        task_count(&env.db()) - before,
        400,
        "exactly 400 tasks exist"
    );
    let replays = replays.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(replays, 800, "every answer after the first was a replay");
}

#[test]
fn kill_9_while_clients_retry_with_keys_leaves_one_task_per_key() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let mut unanswered_total = 0;
    let mut keys_total = 0;
    for round in 0..3 {
        let server = env.serve_with_config(NO_RATE_LIMIT);
        let project = server.first_project(&token, &server.personal_space(&token));
        // Each client sends keys one after another until the server is gone; the key it was
        // sending then never got an answer.
        let sent: Arc<Mutex<Vec<(String, String, bool)>>> = Arc::default();
        let threads: Vec<_> = (0..8)
            .map(|client_no| {
                let (client, token, project) = (server.client(), token.clone(), project.clone());
                let sent = Arc::clone(&sent);
                std::thread::spawn(move || {
                    for n in 0.. {
                        let key = format!("crash-{round}-{client_no}-{n}");
                        let body = json!({"projectId": project, "title": key}).to_string();
                        let answered = match create_with_key(&client, &token, &body, &key) {
                            Ok(response) => {
                                assert_eq!(response.status, 201, "{}", response.body);
                                true
                            }
                            Err(_) => false,
                        };
                        sent.lock().unwrap().push((key, body, answered));
                        if !answered {
                            break;
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + 200 * round));
        let status = std::process::Command::new("kill")
            .args(["-KILL", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for thread in threads {
            thread.join().unwrap();
        }
        drop(server);

        // After the restart every key is retried: the unanswered ones either ran before the kill
        // (and are replayed) or run now; the answered ones are replayed.
        let server = env.serve_with_config(NO_RATE_LIMIT);
        let client = server.client();
        let sent = sent.lock().unwrap();
        for (key, body, answered) in sent.iter() {
            let response = create_with_key(&client, &token, body, key).unwrap();
            assert_eq!(response.status, 201, "{key}: {}", response.body);
            if *answered {
                assert_eq!(
                    response.header("idempotent-replayed"),
                    Some("true"),
                    "{key}"
                );
            }
        }
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        for (key, _, _) in sent.iter() {
            let copies: i64 = conn
                .query_row("SELECT count(*) FROM tasks WHERE title = ?1", [key], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(copies, 1, "{key} made {copies} tasks");
        }
        unanswered_total += sent.iter().filter(|(_, _, answered)| !answered).count();
        keys_total += sent.len();
    }
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!(
            "idempotency crash test: 3 rounds, {keys_total} keys, {unanswered_total} unanswered at \
             the kill, each retried after restart: 1 task per key\n"
        ),
    );
    assert!(unanswered_total > 0);
}

#[test]
fn a_key_replays_only_its_own_request_and_only_for_its_user() {
    let team = Team::new();
    let server = &team.server;
    let body = json!({"projectId": team.project, "title": "once"}).to_string();
    let key = [("Idempotency-Key", "same-key-1")];
    let first = checked(server, "POST", "/api/tasks", &team.owner, &key, &body);
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = checked(server, "POST", "/api/tasks", &team.owner, &key, &body);
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("etag"), first.header("etag"));
    assert!(again.header("x-ratelimit-remaining").is_some());

    // The same JSON spaced and ordered differently is the same request.
    let respaced = format!(
        "{{ \"title\": \"once\",\n  \"projectId\": \"{}\" }}",
        team.project
    );
    let same = checked(server, "POST", "/api/tasks", &team.owner, &key, &respaced);
    assert_eq!(same.header("idempotent-replayed"), Some("true"));

    // Another body, path or method with the key: 422, nothing made.
    let other = json!({"projectId": team.project, "title": "twice"}).to_string();
    checked(server, "POST", "/api/tasks", &team.owner, &key, &other)
        .assert_error(422, "idempotency_key_reused");
    let task_id = first.json()["id"].as_str().unwrap().to_string();
    checked(
        server,
        "PATCH",
        &format!("/api/tasks/{task_id}"),
        &team.owner,
        &key,
        &json!({"title": "x"}).to_string(),
    )
    .assert_error(422, "idempotency_key_reused");
    let titles: Vec<Value> = server
        .get_ok(
            &format!("/api/tasks?projectId={}", team.project),
            &team.owner,
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].clone())
        .collect();
    assert_eq!(titles, [json!("once")]);

    // Keys are per user: the member's same key is a request of its own.
    let theirs = checked(server, "POST", "/api/tasks", &team.member, &key, &body);
    assert_eq!(theirs.status, 201);
    assert_eq!(theirs.header("idempotent-replayed"), None);
    assert_ne!(theirs.json()["id"], first.json()["id"]);

    // A failed request stores nothing: the corrected retry with the key runs.
    let bad = json!({"projectId": team.project, "title": ""}).to_string();
    let fix_key = [("Idempotency-Key", "\"fix-me\"")];
    checked(server, "POST", "/api/tasks", &team.owner, &fix_key, &bad)
        .assert_error(400, "validation_failed");
    let fixed = json!({"projectId": team.project, "title": "fixed"}).to_string();
    let created = checked(server, "POST", "/api/tasks", &team.owner, &fix_key, &fixed);
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("idempotent-replayed"), None);

    // A DELETE is replayed as its 204, and the task is not looked for again.
    let delete_key = [("Idempotency-Key", "delete-1")];
    let path = format!("/api/tasks/{task_id}");
    let deleted = checked(server, "DELETE", &path, &team.owner, &delete_key, "");
    assert_eq!(deleted.status, 204);
    let replayed = checked(server, "DELETE", &path, &team.owner, &delete_key, "");
    assert_eq!(replayed.status, 204);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    checked(server, "DELETE", &path, &team.owner, &[], "").assert_error(404, "not_found");

    // Malformed keys.
    let long = "k".repeat(256);
    for bad_key in ["", "with space", long.as_str(), "caf\u{e9}"] {
        let response = server
            .client()
            .try_raw(
                "POST",
                "/api/tasks",
                &[
                    ("Authorization", &format!("Bearer {}", team.owner)),
                    ("Content-Type", "application/json"),
                    ("Idempotency-Key", bad_key),
                ],
                body.as_bytes(),
            )
            .unwrap();
        response.assert_error(400, "invalid_idempotency_key");
    }
    // A webhook (its URL checked before the write takes the writer) is made once; the replay
    // keeps every header of the first answer, `Cache-Control: no-store` of its secret included.
    let hook = json!({"spaceId": team.space, "url": "http://127.0.0.1:9/hook", "events": ["*"]})
        .to_string();
    let hook_key = [("Idempotency-Key", "hook-1")];
    let made = checked(
        server,
        "POST",
        "/api/webhooks",
        &team.owner,
        &hook_key,
        &hook,
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let again = checked(
        server,
        "POST",
        "/api/webhooks",
        &team.owner,
        &hook_key,
        &hook,
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.header("cache-control"), Some("no-store"));
    assert_eq!(again.body, made.body);
    let hooks = server.get_ok(
        &format!("/api/webhooks?spaceId={}", team.space),
        &team.owner,
    );
    assert_eq!(hooks.as_array().unwrap().len(), 1);
    let refused =
        json!({"spaceId": team.space, "url": "ftp://example.com/", "events": ["*"]}).to_string();
    checked(
        server,
        "POST",
        "/api/webhooks",
        &team.owner,
        &[("Idempotency-Key", "hook-2")],
        &refused,
    )
    .assert_error(400, "validation_failed");

    // Not on reads: a GET with a key is a GET.
    let read = checked(server, "GET", "/api/me", &team.owner, &key, "");
    assert_eq!(read.status, 200);
}

#[test]
fn an_expired_key_is_a_new_key_and_replays_count_against_the_rate_limit() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve_with_config("[rate_limit]\nrequests_per_minute = 6\n");
    let project = server.first_project(&token, &server.personal_space(&token));
    let key = [("Idempotency-Key", "day-old")];
    let body = json!({"projectId": project, "title": "first"}).to_string();
    assert_eq!(
        checked(&server, "POST", "/api/tasks", &token, &key, &body).status,
        201
    );
    // A day and a bit later (the row aged in place): the key may be used for something else.
    rusqlite::Connection::open(env.db())
        .unwrap()
        .execute(
            "UPDATE idempotency_keys SET created_at = created_at - 25 * 3600 * 1000",
            [],
        )
        .unwrap();
    let other = json!({"projectId": project, "title": "second"}).to_string();
    let reused = checked(&server, "POST", "/api/tasks", &token, &key, &other);
    assert_eq!(reused.status, 201, "{}", reused.body);
    assert_eq!(reused.header("idempotent-replayed"), None);
    // Replays use up the window like any request: 4 of the 6 are used (two GETs, two POSTs).
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(checked(&server, "POST", "/api/tasks", &token, &key, &other).status);
    }
    assert_eq!(statuses, [201, 201, 429]);
}

/// `(status, ETag)` of a GET with `If-None-Match: tag` (or none).
fn conditional_get(server: &Server, path: &str, token: &str, tag: Option<&str>) -> (u16, String) {
    let extra: Vec<(&str, &str)> = tag.map(|t| ("If-None-Match", t)).into_iter().collect();
    let response = checked(server, "GET", path, token, &extra, "");
    if response.status == 304 {
        assert!(response.body.is_empty(), "a 304 has no body");
        assert!(response.header("x-ratelimit-remaining").is_some());
        assert!(response.header("ratelimit").is_some());
    }
    let etag = response.header("etag").expect("an ETag").to_string();
    (response.status, etag)
}

#[test]
fn if_none_match_is_304_until_the_task_changes_in_any_way() {
    let team = Team::new();
    let server = &team.server;
    let task = team.task("watched");
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    let (status, mut tag) = conditional_get(server, &path, &team.owner, None);
    assert_eq!(status, 200);
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    assert_eq!(
        conditional_get(server, &path, &team.owner, Some(&tag)).0,
        304
    );
    assert_eq!(
        conditional_get(server, &path, &team.owner, Some("*")).0,
        304
    );
    assert_eq!(
        conditional_get(server, &path, &team.owner, Some(&format!("W/{tag}"))).0,
        304,
        "If-None-Match compares weakly"
    );
    let changes: Vec<(&str, String, Value)> = vec![
        ("PATCH", path.clone(), json!({"title": "renamed"})),
        (
            "POST",
            format!("{path}/assignees"),
            json!({"userId": team.member_id}),
        ),
        ("POST", format!("{path}/labels"), json!({"name": "urgent"})),
        (
            "DELETE",
            format!("{path}/labels"),
            json!({"name": "urgent"}),
        ),
        (
            "DELETE",
            format!("{path}/assignees"),
            json!({"userId": team.member_id}),
        ),
    ];
    for (method, change_path, body) in changes {
        let changed = checked(
            server,
            method,
            &change_path,
            &team.owner,
            &[],
            &body.to_string(),
        );
        assert_eq!(
            changed.status, 200,
            "{method} {change_path}: {}",
            changed.body
        );
        let (status, new_tag) = conditional_get(server, &path, &team.owner, Some(&tag));
        assert_eq!(status, 200, "{method} {change_path} changed the task");
        assert_ne!(new_tag, tag);
        assert_eq!(
            changed.header("etag"),
            Some(new_tag.as_str()),
            "the change's answer carries the task's new ETag"
        );
        assert_eq!(
            conditional_get(server, &path, &team.owner, Some(&new_tag)).0,
            304
        );
        tag = new_tag;
    }
    // A change that changes nothing keeps the ETag.
    let same = checked(server, "PATCH", &path, &team.owner, &[], "{}");
    assert_eq!(same.header("etag"), Some(tag.as_str()));

    // Projects and spaces too.
    for path in [
        format!("/api/projects/{}", team.project),
        format!("/api/spaces/{}", team.space),
    ] {
        let (status, tag) = conditional_get(server, &path, &team.owner, None);
        assert_eq!(status, 200);
        assert_eq!(
            conditional_get(server, &path, &team.owner, Some(&tag)).0,
            304
        );
        assert_eq!(
            conditional_get(server, &path, &team.owner, Some("\"stale\"")).0,
            200
        );
    }
    let project_path = format!("/api/projects/{}", team.project);
    let (_, before) = conditional_get(server, &project_path, &team.owner, None);
    let renamed = checked(
        server,
        "PATCH",
        &project_path,
        &team.owner,
        &[],
        &json!({"name": "Renamed"}).to_string(),
    );
    let (status, after) = conditional_get(server, &project_path, &team.owner, Some(&before));
    assert_eq!(status, 200);
    assert_eq!(renamed.header("etag"), Some(after.as_str()));
}

#[test]
fn if_match_lets_one_of_two_concurrent_edits_win_and_the_loser_changes_nothing() {
    let receiver = Receiver::start();
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let ann = env.token("ann@example.com", &[]);
    let ann_too = env.token("ann@example.com", &[]);
    let server = env.serve_with_config(
        "[rate_limit]\nrequests_per_minute = 100000\n\
         [webhooks]\nallow_http = true\nallow_private_targets = true\n",
    );
    let (project, _) = personal_webhook(&server, &ann, &receiver.url, json!(["task.updated"]));
    let task = server.create(
        "/api/tasks",
        &ann,
        &json!({"projectId": project, "title": "shared"}),
    );
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    let (_, tag) = conditional_get(&server, &path, &ann, None);
    let (_, tag_too) = conditional_get(&server, &path, &ann_too, None);
    assert_eq!(tag, tag_too, "both clients read the same task");

    let start = Barrier::new(2);
    let results: Vec<(String, Response)> = std::thread::scope(|s| {
        let edits: Vec<_> = [("mine", &ann), ("theirs", &ann_too)]
            .into_iter()
            .map(|(title, token)| {
                let (client, path, tag, start) = (server.client(), &path, &tag, &start);
                s.spawn(move || {
                    let body = json!({ "title": title }).to_string();
                    start.wait();
                    let response =
                        with_headers(&client, "PATCH", path, token, &[("If-Match", tag)], &body)
                            .unwrap();
                    (title.to_string(), response)
                })
            })
            .collect();
        edits.into_iter().map(|e| e.join().unwrap()).collect()
    });
    let statuses: HashSet<u16> = results.iter().map(|(_, r)| r.status).collect();
    assert_eq!(statuses, HashSet::from([200, 412]), "{results:?}");
    let (winner, won) = results.iter().find(|(_, r)| r.status == 200).unwrap();
    let (_, lost) = results.iter().find(|(_, r)| r.status == 412).unwrap();
    lost.assert_error(412, "precondition_failed");
    let reread = server.get(&path, &ann_too);
    assert_eq!(
        reread.json()["title"],
        winner.as_str(),
        "the loser sees the winner's change"
    );
    assert_eq!(reread.header("etag"), won.header("etag"));

    // One event: the winner's. The refused change made none.
    let received = receiver.wait_for(1, Duration::from_secs(10));
    assert!(!wait_until(Duration::from_millis(500), || receiver
        .received()
        .len()
        > 1));
    assert_eq!(received[0].json()["data"]["title"], winner.as_str());

    // Stale tags refuse every kind of change, and change nothing; the current one or `*` pass.
    let stale = [("If-Match", tag.as_str())];
    let member = json!({"userId": env_user_id(&server, &ann)}).to_string();
    for (method, change_path, body) in [
        ("PATCH", path.clone(), json!({"title": "late"}).to_string()),
        ("DELETE", path.clone(), String::new()),
        ("POST", format!("{path}/assignees"), member.clone()),
        (
            "POST",
            format!("{path}/labels"),
            json!({"name": "late"}).to_string(),
        ),
    ] {
        checked(&server, method, &change_path, &ann, &stale, &body)
            .assert_error(412, "precondition_failed");
    }
    let now = server.get(&path, &ann);
    assert_eq!(now.body, reread.body, "nothing changed");
    let current = now.header("etag").unwrap().to_string();
    let assigned = checked(
        &server,
        "POST",
        &format!("{path}/assignees"),
        &ann,
        &[("If-Match", &current)],
        &member,
    );
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    let star = checked(&server, "DELETE", &path, &ann, &[("If-Match", "*")], "");
    assert_eq!(star.status, 204);
    // Gone: 404 comes before any precondition.
    checked(&server, "PATCH", &path, &ann, &stale, "{}").assert_error(404, "not_found");

    // A project's PATCH too.
    let project_path = format!("/api/projects/{project}");
    checked(
        &server,
        "PATCH",
        &project_path,
        &ann,
        &[("If-Match", "\"not-it\"")],
        &json!({"name": "Late"}).to_string(),
    )
    .assert_error(412, "precondition_failed");
    assert_eq!(server.get_ok(&project_path, &ann)["name"], "General");
}

fn env_user_id(server: &Server, token: &str) -> String {
    server.get_ok("/api/me", token)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}
