//! Settings -> Webhooks over HTTP (SPEC section 9): webhooks added, changed, switched off and on,
//! rotated, tested and deleted on the page, seen by the API and by a receiver; the secret shown
//! once; the page's defences (CSRF, Origin, Bearer tokens, other people's webhooks); refused
//! forms shown as form errors.

use std::time::Duration;

use serde_json::{Value, json};

use crate::receiver::Receiver;
use crate::util::{Env, Response, Server, Team, wait_until};
use crate::web::{Browser, PASSWORD, hidden_csrf, set_password, with_password};

const PAGE: &str = "/settings/webhooks";
const WAIT: Duration = Duration::from_secs(10);

/// `email` (an existing user) signed in on `server`.
fn signed_in<'a>(env: &Env, server: &'a Server, email: &str) -> Browser<'a> {
    set_password(env, email);
    let mut browser = Browser::new(server);
    assert_eq!(browser.sign_in(email, PASSWORD).status, 303);
    browser
}

/// The webhooks page and its CSRF token.
fn webhooks_page(browser: &mut Browser) -> (Response, String) {
    let page = browser.get(PAGE);
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = hidden_csrf(&page.body);
    (page, csrf)
}

/// The signing secrets shown on the page.
fn secrets_on(html: &str) -> Vec<String> {
    html.split("readonly value=\"whsec_")
        .skip(1)
        .map(|rest| format!("whsec_{}", rest.split('"').next().unwrap()))
        .collect()
}

/// The team space's webhooks, as the API lists them to the owner.
fn listed(team: &Team) -> Vec<Value> {
    team.server
        .get_ok(
            &format!("/api/webhooks?spaceId={}", team.space),
            &team.owner,
        )
        .as_array()
        .unwrap()
        .clone()
}

/// Adds a webhook on the page; returns its id and the secret the page showed.
fn add_on_the_page(team: &Team, browser: &mut Browser, url: &str) -> (String, String) {
    let (_, csrf) = webhooks_page(browser);
    let before = listed(team).len();
    let added = browser.post(
        PAGE,
        &[
            ("csrf", &csrf),
            ("spaceId", &team.space),
            ("url", url),
            ("events", "task.created"),
            ("events", "task.completed"),
            ("description", "n8n: new tasks to the team chat"),
        ],
    );
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(added.header("location"), Some(PAGE));
    let (page, _) = webhooks_page(browser);
    let secrets = secrets_on(&page.body);
    assert_eq!(secrets.len(), 1, "{}", page.body);
    let webhooks = listed(team);
    assert_eq!(webhooks.len(), before + 1);
    let id = webhooks.last().unwrap()["id"].as_str().unwrap().to_string();
    (id, secrets[0].clone())
}

#[test]
fn a_webhook_added_on_the_page_shows_its_secret_once_and_is_signed_with_it() {
    let team = Team::new();
    let receiver = Receiver::start();
    let mut browser = signed_in(&team.env, &team.server, "owner@example.com");

    let (page, _) = webhooks_page(&mut browser);
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!page.body.contains("<script>"), "no inline script");
    assert!(page.body.contains("href=\"/settings/security\""));
    assert!(page.body.contains(&format!("value=\"{}\"", team.space)));
    assert!(page.body.contains("No webhooks in this space."));
    let (security, _) = browser.settings();
    assert!(security.body.contains("href=\"/settings/webhooks\""));

    let (_, csrf) = webhooks_page(&mut browser);
    let added = browser.post(
        PAGE,
        &[
            ("csrf", &csrf),
            ("spaceId", &team.space),
            ("url", &receiver.url),
            ("events", "task.created"),
            ("events", "task.completed"),
            ("description", "n8n: new tasks to the team chat"),
        ],
    );
    // Post/Redirect/Get: the secret is on the page the redirect lands on, once.
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(added.header("location"), Some(PAGE));
    assert!(!added.body.contains("whsec_"));
    let (shown, _) = webhooks_page(&mut browser);
    assert!(shown.body.contains("will not be shown again"));
    let secrets = secrets_on(&shown.body);
    assert_eq!(secrets.len(), 1);
    let secret = &secrets[0];
    let (reloaded, _) = webhooks_page(&mut browser);
    assert!(!reloaded.body.contains("whsec_"), "shown once");
    assert!(reloaded.body.contains(&receiver.url));
    assert!(reloaded.body.contains("n8n: new tasks to the team chat"));

    let webhooks = listed(&team);
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0]["url"], receiver.url.as_str());
    assert_eq!(
        webhooks[0]["events"],
        json!(["task.created", "task.completed"])
    );
    assert_eq!(webhooks[0]["active"], true);
    assert!(webhooks[0].get("secret").is_none());

    team.task("from the API");
    let received = receiver.wait_for(1, WAIT);
    assert_eq!(received[0].event_type(), "task.created");
    received[0].verify(secret).unwrap();
    assert!(
        !team.server.log().contains(&secret[6..]),
        "a secret is never logged"
    );
}

#[test]
fn send_test_switch_off_and_on_edit_rotate_and_delete_on_the_page() {
    let team = Team::new();
    let receiver = Receiver::start();
    let mut browser = signed_in(&team.env, &team.server, "owner@example.com");
    let (id, secret) = add_on_the_page(&team, &mut browser, &receiver.url);
    let card = format!("{PAGE}#webhook-{id}");

    // "Send test": a webhook.test made by the user on the page, with no token.
    let (_, csrf) = webhooks_page(&mut browser);
    let sent = browser.post(&format!("{PAGE}/{id}/test"), &[("csrf", &csrf)]);
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(sent.header("location"), Some(card.as_str()));
    let test = receiver.wait_for(1, WAIT)[0].clone();
    assert_eq!(test.event_type(), "webhook.test");
    test.verify(&secret).unwrap();
    let data = &test.json()["data"];
    assert_eq!(data["webhookId"], id.as_str());
    assert_eq!(data["actor"]["userId"], team.owner_id.as_str());
    assert!(data["actor"]["tokenId"].is_null());
    // The delivery and its outcome show on the page.
    assert!(wait_until(WAIT, || {
        let (page, _) = webhooks_page(&mut browser);
        page.body.contains("<code>webhook.test</code>")
            && page
                .body
                .contains("class=\"status delivered\">delivered</span>")
            && page.body.contains("<td>200</td>")
    }));

    // Switch off: no more test button, and a test posted anyway is a form error.
    let off = browser.post(
        &format!("{PAGE}/{id}/toggle"),
        &[("csrf", &csrf), ("active", "false")],
    );
    assert_eq!(off.status, 303);
    assert_eq!(listed(&team)[0]["active"], false);
    let (page, _) = webhooks_page(&mut browser);
    assert!(page.body.contains("Switch on"));
    assert!(page.body.contains("Switched off by hand."));
    assert!(!page.body.contains(&format!("{PAGE}/{id}/test")));
    let refused = browser.post(&format!("{PAGE}/{id}/test"), &[("csrf", &csrf)]);
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("role=\"alert\""), "{}", refused.body);
    assert!(refused.body.contains("switched off"), "{}", refused.body);
    // Posting the state it already has changes nothing.
    let again = browser.post(
        &format!("{PAGE}/{id}/toggle"),
        &[("csrf", &csrf), ("active", "false")],
    );
    assert_eq!(again.status, 303);
    assert_eq!(listed(&team)[0]["active"], false);
    let on = browser.post(
        &format!("{PAGE}/{id}/toggle"),
        &[("csrf", &csrf), ("active", "true")],
    );
    assert_eq!(on.status, 303);
    assert_eq!(listed(&team)[0]["active"], true);

    // Edit: all events, and an empty description clears it.
    let edited = browser.post(
        &format!("{PAGE}/{id}"),
        &[
            ("csrf", &csrf),
            ("url", &receiver.url),
            ("events", "*"),
            ("events", "task.updated"),
            ("description", ""),
        ],
    );
    assert_eq!(edited.status, 303, "{}", edited.body);
    let webhook = &listed(&team)[0];
    assert_eq!(webhook["events"], json!(["*"]));
    assert!(webhook["description"].is_null());

    // Rotate: the new secret is shown once and signs from now on.
    let rotated = browser.post(&format!("{PAGE}/{id}/rotate"), &[("csrf", &csrf)]);
    assert_eq!(rotated.status, 303);
    let (page, _) = webhooks_page(&mut browser);
    let secrets = secrets_on(&page.body);
    assert_eq!(secrets.len(), 1);
    let new_secret = &secrets[0];
    assert_ne!(new_secret, &secret);
    assert!(page.body.contains("24 hours"));
    let (page, _) = webhooks_page(&mut browser);
    assert!(secrets_on(&page.body).is_empty(), "shown once");
    browser.post(&format!("{PAGE}/{id}/test"), &[("csrf", &csrf)]);
    let received = receiver.wait_for(2, WAIT);
    received[1].verify(new_secret).unwrap();

    // Delete.
    let deleted = browser.post(&format!("{PAGE}/{id}/delete"), &[("csrf", &csrf)]);
    assert_eq!(deleted.status, 303);
    assert_eq!(deleted.header("location"), Some(PAGE));
    assert!(listed(&team).is_empty());
    let (page, _) = webhooks_page(&mut browser);
    assert!(!page.body.contains(&receiver.url));
    let gone = browser.post(&format!("{PAGE}/{id}/delete"), &[("csrf", &csrf)]);
    assert_eq!(gone.status, 404);
}

#[test]
fn forms_need_the_csrf_token_a_matching_origin_and_no_bearer_token() {
    let team = Team::new();
    let mut browser = signed_in(&team.env, &team.server, "owner@example.com");
    let (_, csrf) = webhooks_page(&mut browser);
    let add = |browser: &mut Browser, csrf: Option<&str>| {
        let mut form = vec![
            ("spaceId", team.space.as_str()),
            ("url", "https://hooks.example.com/ktasks"),
            ("events", "*"),
        ];
        form.extend(csrf.map(|csrf| ("csrf", csrf)));
        browser.post(PAGE, &form).status
    };
    assert_eq!(add(&mut browser, None), 403, "no CSRF token");
    assert_eq!(add(&mut browser, Some("0000")), 403, "a wrong one");
    browser.origin = Some("https://evil.example".into());
    assert_eq!(add(&mut browser, Some(&csrf)), 403, "another Origin");
    browser.origin = Some(format!("http://{}", team.server.addr));
    let owner = team.server.create(
        "/api/webhooks",
        &team.owner,
        &json!({"spaceId": team.space, "url": "https://hooks.example.com/a", "events": ["*"]}),
    );
    let id = owner["id"].as_str().unwrap();
    assert_eq!(
        browser
            .post(&format!("{PAGE}/{id}/toggle"), &[("active", "false")])
            .status,
        403
    );
    // A Bearer token is refused on every page and form, whatever else the request carries.
    let auth = format!("Bearer {}", team.owner);
    for (method, path) in [
        ("GET", PAGE.to_string()),
        ("POST", PAGE.to_string()),
        ("POST", format!("{PAGE}/{id}")),
        ("POST", format!("{PAGE}/{id}/toggle")),
        ("POST", format!("{PAGE}/{id}/rotate")),
        ("POST", format!("{PAGE}/{id}/test")),
        ("POST", format!("{PAGE}/{id}/delete")),
    ] {
        let response = team
            .server
            .raw(method, &path, &[("Authorization", &auth)], b"");
        assert_eq!(response.status, 403, "{method} {path}");
        assert!(response.body.contains("Tokens cannot manage tokens"));
    }
    let webhooks = listed(&team);
    assert_eq!(webhooks.len(), 1, "only the API's webhook");
    assert_eq!(webhooks[0]["active"], true);
    // With the right token and Origin, the same form works.
    assert_eq!(add(&mut browser, Some(&csrf)), 303);
}

#[test]
fn members_and_outsiders_cannot_see_or_manage_a_spaces_webhooks() {
    let team = Team::new();
    let receiver = Receiver::start();
    let created = team.server.create(
        "/api/webhooks",
        &team.owner,
        &json!({"spaceId": team.space, "url": receiver.url, "events": ["*"], "description": "owner's"}),
    );
    let id = created["id"].as_str().unwrap().to_string();
    let before = listed(&team);

    for email in [
        "member@example.com",
        "viewer@example.com",
        "outsider@example.com",
    ] {
        let mut browser = signed_in(&team.env, &team.server, email);
        let (page, csrf) = webhooks_page(&mut browser);
        assert!(!page.body.contains(&receiver.url), "{email} sees it");
        assert!(!page.body.contains(&team.space), "{email} may add to it");
        let edit = [
            ("csrf", csrf.as_str()),
            ("url", "https://hooks.example.com/mine"),
            ("events", "*"),
            ("description", ""),
        ];
        let csrf_only = [("csrf", csrf.as_str())];
        let toggle = [("csrf", csrf.as_str()), ("active", "false")];
        let attempts: [(String, &[(&str, &str)]); 5] = [
            (format!("{PAGE}/{id}"), &edit),
            (format!("{PAGE}/{id}/toggle"), &toggle),
            (format!("{PAGE}/{id}/rotate"), &csrf_only),
            (format!("{PAGE}/{id}/test"), &csrf_only),
            (format!("{PAGE}/{id}/delete"), &csrf_only),
        ];
        for (path, form) in attempts {
            let response = browser.post(&path, form);
            assert_eq!(response.status, 404, "{email} {path}: {}", response.body);
            assert!(response.body.contains("No such webhook"));
        }
        let add = browser.post(
            PAGE,
            &[
                ("csrf", &csrf),
                ("spaceId", &team.space),
                ("url", "https://hooks.example.com/mine"),
                ("events", "*"),
            ],
        );
        assert_eq!(add.status, 404, "{email} adds to the team space");
    }
    // Nothing changed: the same webhook, `updatedAt` included (any change, a rotation too,
    // moves it), and no test was sent.
    assert_eq!(listed(&team), before);
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.received().is_empty(), "no test was sent");
}

#[test]
fn refused_forms_show_the_apis_reason_on_the_page_and_change_nothing() {
    let team = Team::new();
    let mut browser = signed_in(&team.env, &team.server, "owner@example.com");
    let (_, csrf) = webhooks_page(&mut browser);
    let long = "x".repeat(1001);
    for (url, events, description, reason) in [
        ("not a url", vec!["*"], "", "url"),
        ("ftp://hooks.example.com/x", vec!["*"], "", "https"),
        (
            "https://hooks.example.com/x",
            vec!["task.exploded"],
            "",
            "unknown event type",
        ),
        ("https://hooks.example.com/x", vec![], "", "at least one"),
        (
            "https://hooks.example.com/x",
            vec!["*"],
            long.as_str(),
            "1000 characters",
        ),
    ] {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("spaceId", team.space.as_str()),
            ("url", url),
            ("description", description),
        ];
        form.extend(events.iter().map(|event| ("events", *event)));
        let page = browser.post(PAGE, &form);
        assert_eq!(page.status, 200, "{url} {events:?}");
        assert!(page.body.contains("role=\"alert\""), "{}", page.body);
        assert!(
            page.body.contains(reason),
            "{url} {events:?}: {reason} not in {}",
            page.body
        );
        // What was typed is kept.
        assert!(page.body.contains(&format!("value=\"{url}\"")));
    }
    assert!(listed(&team).is_empty(), "nothing was created");

    // An edit with a bad URL changes nothing.
    let created = team.server.create(
        "/api/webhooks",
        &team.owner,
        &json!({"spaceId": team.space, "url": "https://hooks.example.com/a", "events": ["*"]}),
    );
    let id = created["id"].as_str().unwrap();
    let page = browser.post(
        &format!("{PAGE}/{id}"),
        &[
            ("csrf", &csrf),
            ("url", "https://user:pw@hooks.example.com/"),
            ("events", "*"),
        ],
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("role=\"alert\""));
    assert!(page.body.contains("<details class=\"edit\" open>"));
    assert_eq!(listed(&team)[0]["url"], "https://hooks.example.com/a");

    // A space holds at most 20.
    for n in 1..20 {
        team.server.create(
            "/api/webhooks",
            &team.owner,
            &json!({"spaceId": team.space, "url": format!("https://hooks.example.com/{n}"), "events": ["*"]}),
        );
    }
    let page = browser.post(
        PAGE,
        &[
            ("csrf", &csrf),
            ("spaceId", &team.space),
            ("url", "https://hooks.example.com/21"),
            ("events", "*"),
        ],
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("20 webhooks"), "{}", page.body);
    assert_eq!(listed(&team).len(), 20);
}

#[test]
fn the_ssrf_guard_refuses_internal_targets_on_the_page() {
    let env = Env::new();
    with_password(&env, "ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve();
    let space = server.personal_space(&token);
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("ann@example.com", PASSWORD).status, 303);
    let (_, csrf) = webhooks_page(&mut browser);
    for url in [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.8/hook",
        "https://localhost/hook",
        "http://hooks.example.com/plain-http",
    ] {
        let page = browser.post(
            PAGE,
            &[
                ("csrf", &csrf),
                ("spaceId", &space),
                ("url", url),
                ("events", "*"),
            ],
        );
        assert_eq!(page.status, 200, "{url}");
        assert!(page.body.contains("role=\"alert\""), "{url}: {}", page.body);
    }
    let listed = server.get_ok(&format!("/api/webhooks?spaceId={space}"), &token);
    assert_eq!(listed, json!([]));
}
