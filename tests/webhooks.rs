//! Webhooks (docs/webhooks.md): the resource, the events every change emits, signatures a third
//! party verifies, retries, switching off, the SSRF guard. Every delivery goes to a receiver in
//! this process (`receiver`) and is verified with the `standardwebhooks` crate.

use std::time::Duration;

use serde_json::{Value, json};

use crate::receiver::{Received, Receiver, personal_webhook};
use crate::util::{Env, Team, wait_until};

const WAIT: Duration = Duration::from_secs(10);

/// Creates a webhook in the team's space as the owner; returns `(id, secret)`.
fn subscribe(team: &Team, url: &str, events: Value) -> (String, String) {
    let created = team.server.create(
        "/api/webhooks",
        &team.owner,
        &json!({"spaceId": team.space, "url": url, "events": events, "description": "test"}),
    );
    (
        created["id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

fn types(received: &[Received]) -> Vec<String> {
    received.iter().map(Received::event_type).collect()
}

fn deliveries(team: &Team, webhook: &str) -> Vec<Value> {
    team.server
        .get_ok(&format!("/api/webhooks/{webhook}/deliveries"), &team.owner)
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn every_change_is_delivered_signed_and_exactly_once_per_event() {
    let team = Team::new();
    let receiver = Receiver::start();
    let (webhook, secret) = subscribe(&team, &receiver.url, json!(["*"]));
    assert!(secret.starts_with("whsec_"), "{secret}");
    let shown = team
        .server
        .get_ok(&format!("/api/webhooks/{webhook}"), &team.owner);
    assert!(shown.get("secret").is_none(), "the secret is shown once");
    assert_eq!(shown["events"], json!(["*"]));
    assert_eq!(shown["active"], true);
    let token_id = team.server.get_ok("/api/me", &team.owner)["token"]["id"].clone();

    let task = team.task("first");
    let id = task["id"].as_str().unwrap();
    let path = format!("/api/tasks/{id}");
    team.server
        .patch(&path, &team.owner, &json!({"title": "renamed"}));
    // The same values again: nothing changes, nothing is sent.
    team.server
        .patch(&path, &team.owner, &json!({"title": "renamed"}));
    team.server.post(
        &format!("{path}/assignees"),
        &team.owner,
        &json!({"userId": team.member_id}),
    );
    team.server.post(
        &format!("{path}/assignees"),
        &team.owner,
        &json!({"userId": team.member_id}),
    );
    team.server.post(
        &format!("{path}/labels"),
        &team.owner,
        &json!({"name": "urgent"}),
    );
    let project = team
        .server
        .get_ok(&format!("/api/projects/{}", team.project), &team.owner);
    let done = project["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["category"] == "done")
        .unwrap()["id"]
        .clone();
    team.server
        .patch(&path, &team.owner, &json!({"statusId": done}));
    team.server.patch(
        &format!("/api/projects/{}", team.project),
        &team.owner,
        &json!({"description": "changed"}),
    );
    assert_eq!(team.server.delete(&path, &team.owner).status, 204);

    let expected = [
        "task.created",
        "task.updated",
        "task.updated",
        "task.assignee_added",
        "task.updated",
        "task.label_added",
        "task.updated",
        "task.completed",
        "project.updated",
        "task.deleted",
    ];
    let received = receiver.wait_for(expected.len(), WAIT);
    // Events of one write are sent in parallel; compare as sets of (type, count).
    let mut got = types(&received);
    got.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.received().len(), expected.len(), "no extra events");

    let mut ids = std::collections::HashSet::new();
    for delivery in &received {
        delivery.verify(&secret).unwrap();
        assert_eq!(delivery.header("content-type"), "application/json");
        assert!(delivery.header("user-agent").starts_with("ktasks/"));
        assert!(ids.insert(delivery.id().to_string()), "one id per event");
        let body = delivery.json();
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        let data = &body["data"];
        assert_eq!(data["actor"]["userId"], team.owner_id.as_str());
        assert_eq!(data["actor"]["tokenId"], token_id);
        match body["type"].as_str().unwrap() {
            "task.deleted" => {
                assert_eq!(data["id"], id);
                assert_eq!(data["projectId"], team.project.as_str());
            }
            "project.updated" => assert_eq!(data["description"], "changed"),
            "task.assignee_added" => {
                assert_eq!(data["assigneeId"], team.member_id.as_str());
                assert_eq!(data["assignees"], json!([team.member_id]));
            }
            "task.label_added" => assert_eq!(data["labels"][0]["id"], data["labelId"]),
            "task.completed" => assert!(data["completedAt"].is_string()),
            _ => assert_eq!(data["id"], id),
        }
    }
    let created = received
        .iter()
        .find(|r| r.event_type() == "task.created")
        .unwrap()
        .json();
    let mut data = created["data"].clone();
    data.as_object_mut().unwrap().remove("actor");
    assert_eq!(
        data, task,
        "data is the task exactly as the API returned it"
    );

    // Every attempt is listed, newest first.
    assert!(wait_until(WAIT, || deliveries(&team, &webhook).len() == expected.len()));
    let listed = deliveries(&team, &webhook);
    assert!(listed.iter().all(|d| d["status"] == "delivered"
        && d["responseStatus"] == 200
        && d["attempt"] == 1
        && d["nextAttemptAt"].is_null()));
    let times: Vec<&str> = listed
        .iter()
        .map(|d| d["createdAt"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // Subscriptions filter: a webhook for task.completed alone hears only that.
    let only = Receiver::start();
    subscribe(
        &team,
        &only.url,
        json!(["task.completed", "task.completed"]),
    );
    let second = team.task("second");
    team.server.patch(
        &format!("/api/tasks/{}", second["id"].as_str().unwrap()),
        &team.owner,
        &json!({"statusId": done}),
    );
    let received = only.wait_for(1, WAIT);
    assert_eq!(types(&received), ["task.completed"]);
}

#[test]
fn failures_are_retried_on_schedule_and_an_endpoint_failing_throughout_is_switched_off() {
    let team = Team::with_webhooks("retry_schedule_secs = [1, 1]\ntimeout_secs = 1\n");
    let receiver = Receiver::start();
    let (webhook, secret) = subscribe(&team, &receiver.url, json!(["task.created"]));
    // A large error body: at most 1 KiB of it is kept.
    receiver.answer(500, &vec![b'x'; 200_000]);
    team.task("doomed");
    let received = receiver.wait_for(3, WAIT);
    assert!(received.iter().all(|r| r.id() == received[0].id()));
    for attempt in &received {
        attempt.verify(&secret).unwrap();
    }
    assert!(wait_until(WAIT, || {
        let shown = team
            .server
            .get_ok(&format!("/api/webhooks/{webhook}"), &team.owner);
        shown["active"] == false
    }));
    let shown = team
        .server
        .get_ok(&format!("/api/webhooks/{webhook}"), &team.owner);
    let reason = shown["disabledReason"].as_str().unwrap();
    assert!(reason.contains("3 attempts"), "{reason}");
    let listed = deliveries(&team, &webhook);
    let statuses: Vec<&str> = listed
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "pending", "pending"]);
    assert!(listed[1]["nextAttemptAt"].is_string());
    assert!(listed[0]["nextAttemptAt"].is_null());
    assert_eq!(listed[0]["responseStatus"], 500);
    assert!(listed[0]["error"].as_str().unwrap().len() <= 1024);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.received().len(), 3, "no attempt after the last");

    // Switched off: no new events are recorded, and a test is refused until it is on again.
    team.task("unheard");
    let test = format!("/api/webhooks/{webhook}/test");
    team.server
        .post(&test, &team.owner, &json!({}))
        .assert_error(409, "conflict");
    let on = team.server.patch(
        &format!("/api/webhooks/{webhook}"),
        &team.owner,
        &json!({"active": true}),
    );
    assert_eq!(on.status, 200);
    assert!(on.json()["disabledReason"].is_null());
    assert_eq!(on.json()["active"], true, "{}", on.body);

    // A redirect is a failure, never followed; a slow answer is a timeout.
    receiver.answer(302, b"");
    assert_eq!(team.server.post(&test, &team.owner, &json!({})).status, 202);
    let received = receiver.wait_for(6, WAIT);
    assert!(
        received[3..].iter().all(|r| r.path == "/hook"),
        "not followed"
    );
    // Failing for the whole schedule again switched it off again.
    let path = format!("/api/webhooks/{webhook}");
    assert!(wait_until(WAIT, || team.server.get_ok(&path, &team.owner)
        ["active"]
        == false));
    team.server
        .patch(&path, &team.owner, &json!({"active": true}));
    receiver.answer(200, b"");
    receiver.delay(Duration::from_secs(3));
    assert_eq!(team.server.post(&test, &team.owner, &json!({})).status, 202);
    assert!(wait_until(WAIT, || deliveries(&team, &webhook).iter().any(
        |d| d["error"].as_str().is_some_and(|e| e.contains("no answer"))
    )));
    let listed = deliveries(&team, &webhook);
    assert!(
        listed
            .iter()
            .any(|d| d["responseStatus"] == 302 && d["status"] != "delivered")
    );
}

#[test]
fn after_a_rotation_both_secrets_sign_for_a_day() {
    let team = Team::new();
    let receiver = Receiver::start();
    let (webhook, old) = subscribe(&team, &receiver.url, json!(["webhook.test"]));
    let rotated = team.server.post(
        &format!("/api/webhooks/{webhook}/rotate-secret"),
        &team.owner,
        &json!({}),
    );
    assert_eq!(rotated.status, 200);
    let new = rotated.json()["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let test = team.server.post(
        &format!("/api/webhooks/{webhook}/test"),
        &team.owner,
        &json!({}),
    );
    assert_eq!(test.status, 202);
    let event_id = test.json()["eventId"].as_str().unwrap().to_string();
    let received = receiver.wait_for(1, WAIT);
    let delivery = &received[0];
    assert_eq!(delivery.id(), event_id);
    assert_eq!(delivery.header("webhook-signature").split(' ').count(), 2);
    delivery.verify(&new).unwrap();
    delivery.verify(&old).unwrap();
    assert_eq!(delivery.json()["data"]["webhookId"], webhook.as_str());
}

#[test]
fn internal_targets_are_refused_at_creation_and_at_delivery() {
    const INTERNAL: &[&str] = &[
        "127.0.0.1",
        "localhost",
        "localhost.",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "169.254.169.254",
        "10.0.0.1",
        "100.64.0.1",
        "2130706433",
        "0177.0.0.1",
    ];
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let receiver = Receiver::start();
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches("/hook");
    // The guard off: every one is accepted.
    let open =
        env.serve_with_config("[webhooks]\nallow_http = true\nallow_private_targets = true\n");
    let space = open.personal_space(&token);
    let mut webhooks = Vec::new();
    for host in INTERNAL {
        let url = format!("http://{host}:{port}/hook");
        let created = open.create(
            "/api/webhooks",
            &token,
            &json!({"spaceId": space, "url": url, "events": ["*"]}),
        );
        webhooks.push(created["id"].as_str().unwrap().to_string());
    }
    drop(open);

    // The guard on: refused at creation with field `url`, and at delivery.
    let guarded = env.serve_with_config("[webhooks]\nallow_http = true\n");
    let before = guarded.get_ok(&format!("/api/webhooks?spaceId={space}"), &token);
    for host in INTERNAL {
        let url = format!("http://{host}:{port}/hook");
        let refused = guarded.post(
            "/api/webhooks",
            &token,
            &json!({"spaceId": space, "url": url, "events": ["*"]}),
        );
        let body = refused.assert_error(400, "validation_failed");
        assert_eq!(body["field"], "url", "{host}");
        let patched = guarded.patch(
            &format!("/api/webhooks/{}", webhooks[0]),
            &token,
            &json!({"url": url}),
        );
        assert_eq!(
            patched.assert_error(400, "validation_failed")["field"],
            "url"
        );
    }
    assert_eq!(
        guarded.get_ok(&format!("/api/webhooks?spaceId={space}"), &token),
        before
    );
    for webhook in &webhooks {
        let test = guarded.post(&format!("/api/webhooks/{webhook}/test"), &token, &json!({}));
        assert_eq!(test.status, 202);
    }
    for webhook in &webhooks {
        assert!(
            wait_until(WAIT, || {
                let listed = guarded.get_ok(&format!("/api/webhooks/{webhook}/deliveries"), &token);
                listed[0]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("refused"))
            }),
            "{webhook} was not refused at delivery"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
}

#[test]
fn bad_input_is_refused_with_its_field_and_changes_nothing() {
    let team = Team::new();
    let receiver = Receiver::start();
    let (webhook, _) = subscribe(&team, &receiver.url, json!(["task.created"]));
    let list = format!("/api/webhooks?spaceId={}", team.space);
    let before = team.server.get_ok(&list, &team.owner);
    let long = format!("https://example.com/{}", "a".repeat(2000));
    let cases: Vec<(Value, &str)> = vec![
        (json!({"url": "/relative", "events": ["*"]}), "url"),
        (json!({"url": "example.com/x", "events": ["*"]}), "url"),
        (json!({"url": long, "events": ["*"]}), "url"),
        (json!({"url": "ftp://example.com/", "events": ["*"]}), "url"),
        (
            json!({"url": "https://u:p@example.com/", "events": ["*"]}),
            "url",
        ),
        (json!({"url": 7, "events": ["*"]}), "url"),
        (json!({"events": ["*"]}), "url"),
        (json!({"url": receiver.url, "events": []}), "events"),
        (json!({"url": receiver.url}), "events"),
        (
            json!({"url": receiver.url, "events": ["task.exploded"]}),
            "events",
        ),
        (json!({"url": receiver.url, "events": "*"}), "events"),
        (json!({"url": receiver.url, "events": [1]}), "events"),
        (
            json!({"url": receiver.url, "events": ["*"], "active": "yes"}),
            "active",
        ),
        (
            json!({"url": receiver.url, "events": ["*"], "description": "x".repeat(1001)}),
            "description",
        ),
    ];
    for (mut body, field) in cases {
        body["spaceId"] = json!(team.space);
        let response = team.server.post("/api/webhooks", &team.owner, &body);
        let error = response.assert_error(400, "validation_failed");
        assert_eq!(error["field"], field, "{body}");
    }
    team.server
        .post(
            "/api/webhooks",
            &team.owner,
            &json!({"spaceId": team.space, "url": receiver.url, "events": ["*"], "secret": "x"}),
        )
        .assert_error(400, "unknown_field");
    let path = format!("/api/webhooks/{webhook}");
    let shown = team.server.get_ok(&path, &team.owner);
    for (body, field) in [
        (json!({"url": null}), "url"),
        (json!({"events": null}), "events"),
        (json!({"events": []}), "events"),
        (json!({"active": null}), "active"),
        (json!({"url": "nope"}), "url"),
    ] {
        let error = team
            .server
            .patch(&path, &team.owner, &body)
            .assert_error(400, "validation_failed");
        assert_eq!(error["field"], field, "{body}");
    }
    assert_eq!(team.server.get_ok(&path, &team.owner), shown);
    assert_eq!(team.server.get_ok(&list, &team.owner), before);

    // At most 20 per space: the 21st is a conflict naming `spaceId`.
    for _ in 1..20 {
        subscribe(&team, &receiver.url, json!(["*"]));
    }
    let refused = team.server.post(
        "/api/webhooks",
        &team.owner,
        &json!({"spaceId": team.space, "url": receiver.url, "events": ["*"]}),
    );
    assert_eq!(refused.assert_error(409, "conflict")["field"], "spaceId");
}

#[test]
fn read_tokens_list_and_read_but_change_nothing() {
    let team = Team::new();
    let receiver = Receiver::start();
    let (webhook, _) = subscribe(&team, &receiver.url, json!(["*"]));
    let read = team.env.token("owner@example.com", &["--read-only"]);
    let listed = team
        .server
        .get_ok(&format!("/api/webhooks?spaceId={}", team.space), &read);
    assert_eq!(listed[0]["id"], webhook.as_str());
    team.server
        .get_ok(&format!("/api/webhooks/{webhook}/deliveries"), &read);
    let path = format!("/api/webhooks/{webhook}");
    for response in [
        team.server.patch(&path, &read, &json!({"active": false})),
        team.server.delete(&path, &read),
        team.server.post(&format!("{path}/test"), &read, &json!({})),
        team.server
            .post(&format!("{path}/rotate-secret"), &read, &json!({})),
    ] {
        response.assert_error(403, "insufficient_scope");
    }
}

#[test]
fn a_deleted_webhook_drops_its_pending_events() {
    let team = Team::with_webhooks("retry_schedule_secs = [3600]\n");
    let receiver = Receiver::start();
    receiver.answer(503, b"down");
    let (webhook, _) = subscribe(&team, &receiver.url, json!(["*"]));
    team.task("one");
    receiver.wait_for(1, WAIT);
    assert!(wait_until(WAIT, || deliveries(&team, &webhook).len() == 1));
    assert_eq!(deliveries(&team, &webhook)[0]["status"], "pending");
    assert_eq!(
        team.server
            .delete(&format!("/api/webhooks/{webhook}"), &team.owner)
            .status,
        204
    );
    assert_eq!(outbox_rows(&team.env), (0, 0, 0));
    team.server
        .get(&format!("/api/webhooks/{webhook}"), &team.owner)
        .assert_error(404, "not_found");
}

/// The backlog is many times what the endpoint's slots hold, so its senders go from one queued
/// event to the next: each event still arrives once, signed.
#[test]
fn events_recorded_while_delivery_is_off_are_sent_after_a_restart() {
    const EVENTS: usize = 300;
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let receiver = Receiver::start();
    let config = "[rate_limit]\nrequests_per_minute = 100000\n[webhooks]\nallow_http = true\nallow_private_targets = true\n";
    let server = env.serve_with_config(&format!("{config}deliver = false\n"));
    let (project, secret) =
        personal_webhook(&server, &token, &receiver.url, json!(["task.created"]));
    for n in 0..EVENTS {
        server.create(
            "/api/tasks",
            &token,
            &json!({"projectId": project, "title": format!("t{n}")}),
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(receiver.received().is_empty());
    drop(server);
    // Recorded in the outbox, not yet fanned out to the webhook.
    assert_eq!(outbox_rows(&env), (0, 0, EVENTS as i64));
    let _server = env.serve_with_config(config);
    receiver.wait_for(EVENTS, WAIT);
    // Delivered events leave the outbox, payloads included.
    assert!(wait_until(WAIT, || outbox_rows(&env) == (0, 0, 0)));
    let received = receiver.received();
    assert_eq!(received.len(), EVENTS, "no event is sent twice");
    let mut titles = std::collections::BTreeSet::new();
    for delivery in &received {
        delivery.verify(&secret).unwrap();
        let body: Value = serde_json::from_slice(&delivery.body).unwrap();
        titles.insert(body["data"]["title"].as_str().unwrap().to_string());
    }
    assert_eq!(titles, (0..EVENTS).map(|n| format!("t{n}")).collect());
}

/// `(event rows, payload rows, events not fanned out yet)` in the outbox.
fn outbox_rows(env: &Env) -> (i64, i64, i64) {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get(0)).unwrap();
    (
        count("SELECT count(*) FROM webhook_events"),
        count("SELECT count(*) FROM webhook_payloads"),
        count("SELECT coalesce(sum(count), 0) FROM webhook_outbox"),
    )
}

#[test]
fn an_admin_manages_webhooks_as_the_owner_does() {
    let team = Team::new();
    team.env.cli_ok(&[
        "space",
        "add-member",
        "--space",
        "team",
        "--email",
        "outsider@example.com",
        "--role",
        "admin",
    ]);
    let admin = &team.outsider;
    let created = team.server.create(
        "/api/webhooks",
        admin,
        &json!({"spaceId": team.space, "url": "http://127.0.0.1:9/", "events": ["*"]}),
    );
    let path = format!("/api/webhooks/{}", created["id"].as_str().unwrap());
    assert_eq!(team.server.get(&path, admin).status, 200);
    let listed = team.server.get_ok(
        &format!("/api/webhooks?spaceId={}", team.space),
        &team.owner,
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(team.server.delete(&path, admin).status, 204);
}

#[test]
fn a_graceful_shutdown_leaves_an_unanswered_event_for_the_next_start() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let receiver = Receiver::start();
    receiver.delay(Duration::from_secs(5));
    let config = "[webhooks]\nallow_http = true\nallow_private_targets = true\n";
    let mut server = env.serve_with_config(config);
    let (project, secret) =
        personal_webhook(&server, &token, &receiver.url, json!(["task.created"]));
    server.create(
        "/api/tasks",
        &token,
        &json!({"projectId": project, "title": "in flight at shutdown"}),
    );
    let first = receiver.wait_for(1, WAIT);
    // SIGTERM while the receiver has not answered: the server exits at once, the event stays.
    let started = std::time::Instant::now();
    let log = server.stop();
    assert!(started.elapsed() < Duration::from_secs(4), "{log}");
    assert!(server.child.wait().unwrap().success(), "{log}");
    assert_eq!(outbox_rows(&env), (1, 1, 0));
    receiver.delay(Duration::ZERO);
    let _server = env.serve_with_config(config);
    let received = receiver.wait_for(2, WAIT);
    assert_eq!(
        received[1].id(),
        first[0].id(),
        "the same event, the same id"
    );
    received[1].verify(&secret).unwrap();
    assert!(wait_until(WAIT, || outbox_rows(&env) == (0, 0, 0)));
}
