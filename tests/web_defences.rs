//! The settings pages' defences added by the security review (issue 16): the sign-in throttle
//! under concurrent guesses, https cookies and tossed ones, ended sessions, control characters in
//! names, the per-user token cap, and tokens made in two tabs.

use serde_json::Value;

use crate::util::Env;
use crate::web::{
    Browser, PASSWORD, ann_with_a_password, hidden_csrf, new_token_on, with_password,
};

/// Issue 16: concurrent guesses all passed the "is this email blocked?" check before any of their
/// failures was counted (about 12 got through where 5 should). The slot is now taken first.
#[test]
fn concurrent_guesses_cannot_slip_past_the_email_throttle() {
    let (_env, server) = ann_with_a_password();
    let mut browser = Browser::new(&server);
    let page = browser.get("/login");
    let csrf = hidden_csrf(&page.body);
    let cookie = browser
        .cookies
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let client = server.client();
    let guesses: Vec<_> = (0..12)
        .map(|i| {
            let (csrf, cookie) = (csrf.clone(), cookie.clone());
            std::thread::spawn(move || {
                let body = format!("csrf={csrf}&email=ann%40example.com&password=guess-number-{i}");
                let headers = [
                    ("Cookie", cookie.as_str()),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ];
                client
                    .try_raw("POST", "/login", &headers, body.as_bytes())
                    .unwrap()
                    .status
            })
        })
        .collect();
    let mut statuses: Vec<u16> = guesses.into_iter().map(|g| g.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [[401; 5].as_slice(), &[429; 7]].concat());
    // The right password is refused too while the email is throttled...
    assert_eq!(browser.sign_in("ann@example.com", PASSWORD).status, 429);
}

/// A throttled email gets the same answer whether or not its account exists.
#[test]
fn a_throttled_email_does_not_say_whether_the_account_exists() {
    let (_env, server) = ann_with_a_password();
    let mut answers = Vec::new();
    for email in ["ann@example.com", "nobody@example.com"] {
        let mut browser = Browser::new(&server);
        for _ in 0..5 {
            assert_eq!(browser.sign_in(email, "wrong password!").status, 401);
        }
        let throttled = browser.sign_in(email, "wrong password!");
        assert_eq!(throttled.status, 429);
        let body = throttled
            .body
            .replace(&hidden_csrf(&throttled.body), "CSRF");
        answers.push((throttled.header("retry-after").is_some(), body));
    }
    assert_eq!(answers[0].0, answers[1].0);
    // The seconds to wait may differ by one between the two.
    let digits = |text: &str| {
        text.chars()
            .filter(|c| !c.is_ascii_digit())
            .collect::<String>()
    };
    assert_eq!(digits(&answers[0].1), digits(&answers[1].1));
}

/// A successful sign-in gives the email's slots back: a user who signs in and out several times
/// is not throttled for it.
#[test]
fn signing_in_and_out_repeatedly_is_not_throttled() {
    let (_env, server) = ann_with_a_password();
    let mut browser = Browser::new(&server);
    for _ in 0..8 {
        assert_eq!(browser.sign_in("ann@example.com", PASSWORD).status, 303);
        let (_, csrf) = browser.settings();
        assert_eq!(browser.post("/logout", &[("csrf", &csrf)]).status, 303);
    }
}

/// Over https the session cookie is `__Host-` prefixed (Secure, Path=/, no Domain); a request
/// carrying the session cookie twice is signed out; ended sessions are deleted.
#[test]
fn https_session_cookies_are_host_prefixed_and_a_tossed_cookie_signs_out() {
    let env = Env::new();
    with_password(&env, "ann@example.com", "pro");
    let server = env.serve_with_config("[server]\npublic_url = \"https://tasks.example.com\"\n");
    let mut browser = Browser::new(&server);
    browser.origin = Some("https://tasks.example.com".into());
    let signed_in = browser.sign_in("ann@example.com", PASSWORD);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let set_cookie = signed_in
        .headers
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case("set-cookie") && v.contains("ktasks_session="))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        set_cookie.starts_with("__Host-ktasks_session="),
        "{set_cookie}"
    );
    for part in ["Secure", "Path=/;", "HttpOnly", "SameSite=Strict"] {
        assert!(set_cookie.contains(part), "{part} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Domain"), "{set_cookie}");
    assert_eq!(browser.get("/settings/security").status, 200);
    // A second cookie of the same name, as a sibling subdomain could plant one.
    browser
        .cookies
        .push(("__Host-ktasks_session".into(), "planted".into()));
    let tossed = browser.get("/settings/security");
    assert_eq!(tossed.status, 303);
    assert_eq!(tossed.header("location"), Some("/login"));
}

#[test]
fn ended_sessions_are_deleted() {
    let (env, server) = ann_with_a_password();
    let mut first = Browser::new(&server);
    first.sign_in("ann@example.com", PASSWORD);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute(
        "UPDATE sessions SET created_at = '2020-01-01T00:00:00.000Z'",
        [],
    )
    .unwrap();
    let count = || -> i64 {
        conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(), 1);
    let mut second = Browser::new(&server);
    assert_eq!(second.sign_in("ann@example.com", PASSWORD).status, 303);
    assert_eq!(
        count(),
        1,
        "the ended session is gone; only the new one is left"
    );
}

/// Issue 16: names with control characters would reach the operator's terminal through
/// `ktasks token list`. Refused on the page, in the API and in the CLI (exit 2).
#[test]
fn names_with_control_characters_are_refused_everywhere() {
    let (env, server) = ann_with_a_password();
    let mut browser = Browser::new(&server);
    browser.sign_in("ann@example.com", PASSWORD);
    let (_, csrf) = browser.settings();
    let page = browser.post(
        "/settings/security/tokens",
        &[
            ("csrf", &csrf),
            ("name", "evil\u{1b}[2J"),
            ("expiry", "never"),
        ],
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("control characters"), "{}", page.body);
    let output = env.cli(&[
        "token",
        "create",
        "--user",
        "ann@example.com",
        "--name",
        "bad\u{1b}]0;pwned\u{7}",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("control characters"));
    let listed: Value = serde_json::from_str(&env.cli_ok(&["token", "list", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 0, "nothing was made");
    let token = env.token("ann@example.com", &[]);
    for (path, body, field) in [
        (
            "/api/spaces",
            serde_json::json!({"name": "a\tb", "slug": "tabbed"}),
            "name",
        ),
        (
            "/api/spaces",
            serde_json::json!({"name": "x\u{202e}cod.exe", "slug": "bidi"}),
            "name",
        ),
    ] {
        let error = server
            .post(path, &token, &body)
            .assert_error(400, "validation_failed");
        assert_eq!(error["field"], field);
    }
    let space = server.personal_space(&token);
    let error = server
        .post(
            "/api/projects",
            &token,
            &serde_json::json!({"spaceId": space, "name": "line\nbreak", "slug": "lines"}),
        )
        .assert_error(400, "validation_failed");
    assert_eq!(error["field"], "name");
    let project = server.first_project(&token, &space);
    let error = server
        .patch(
            &format!("/api/projects/{project}"),
            &token,
            &serde_json::json!({"name": "bell\u{7}"}),
        )
        .assert_error(400, "validation_failed");
    assert_eq!(error["field"], "name");
    let error = server
        .post(
            "/api/tasks",
            &token,
            &serde_json::json!({"projectId": project, "title": "t", "labels": ["esc\u{1b}[0m"]}),
        )
        .assert_error(400, "validation_failed");
    assert_eq!(error["field"], "labels");
    let task = server.create(
        "/api/tasks",
        &token,
        &serde_json::json!({"projectId": project, "title": "t"}),
    );
    let error = server
        .post(
            &format!("/api/tasks/{}/labels", task["id"].as_str().unwrap()),
            &token,
            &serde_json::json!({"name": "c1\u{9b}"}),
        )
        .assert_error(400, "validation_failed");
    assert_eq!(error["field"], "name");
}

/// Issue 16: the per-user token cap, in the CLI (exit 1) and on the page (a form error).
#[test]
fn a_user_cannot_hold_more_than_the_active_token_cap() {
    let env = Env::new();
    with_password(&env, "ann@example.com", "pro");
    std::fs::write(
        env.dir.path().join("cap.toml"),
        "[tokens]\nmax_active_per_user = 3\n",
    )
    .unwrap();
    let create = |name: &str| {
        env.cli(&[
            "--config",
            "cap.toml",
            "token",
            "create",
            "--user",
            "ann@example.com",
            "--name",
            name,
        ])
    };
    for name in ["one", "two", "three"] {
        assert!(create(name).status.success());
    }
    let refused = create("four");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("max_active_per_user"), "{stderr}");
    assert!(refused.stdout.is_empty(), "no token printed");
    // A revoked token does not count.
    let listed: Value = serde_json::from_str(&env.cli_ok(&["token", "list", "--json"])).unwrap();
    env.cli_ok(&["token", "revoke", listed[0]["id"].as_str().unwrap()]);
    assert!(create("four").status.success());

    let server = env.serve_with_config("[tokens]\nmax_active_per_user = 3\n");
    let mut browser = Browser::new(&server);
    browser.sign_in("ann@example.com", PASSWORD);
    let (_, csrf) = browser.settings();
    let page = browser.post(
        "/settings/security/tokens",
        &[("csrf", &csrf), ("name", "five"), ("expiry", "never")],
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("max_active_per_user"), "{}", page.body);
    let listed: Value = serde_json::from_str(&env.cli_ok(&["token", "list", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 4);
}

/// Two tokens made before the page is viewed (two tabs) are both shown, once.
#[test]
fn tokens_made_in_two_tabs_are_both_shown_once() {
    let (_env, server) = ann_with_a_password();
    let mut browser = Browser::new(&server);
    browser.sign_in("ann@example.com", PASSWORD);
    let (_, csrf) = browser.settings();
    for name in ["first tab", "second tab"] {
        let created = browser.post(
            "/settings/security/tokens",
            &[("csrf", &csrf), ("name", name), ("expiry", "never")],
        );
        assert_eq!(created.status, 303);
    }
    let (page, _) = browser.settings();
    let first = new_token_on(&page.body).unwrap();
    let second = page
        .body
        .split("id=\"new-token-2\" readonly value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    for token in [&first, &second] {
        assert_eq!(server.get("/api/me", token).status, 200);
    }
    let (again, _) = browser.settings();
    assert!(!again.body.contains(&first[8..]) && !again.body.contains(&second[8..]));
}
