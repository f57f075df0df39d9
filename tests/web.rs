//! Settings -> Security over HTTP: sign-in, sessions, CSRF and Origin checks, throttling, and
//! tokens created and revoked on the page, seen by the CLI and the API.

use serde_json::Value;

use crate::util::{Env, Response, Server};

const PASSWORD: &str = "correct horse battery";

/// A cookie jar and form poster over the test client.
struct Browser<'a> {
    server: &'a Server,
    cookies: Vec<(String, String)>,
    origin: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(server: &'a Server) -> Browser<'a> {
        Browser {
            server,
            cookies: Vec::new(),
            origin: Some(format!("http://{}", server.addr)),
        }
    }

    fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Response {
        let cookie = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let body = form
            .map(|fields| {
                fields
                    .iter()
                    .map(|(n, v)| {
                        format!(
                            "{}={}",
                            ktasks::json::percent_encode(n),
                            ktasks::json::percent_encode(v)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .unwrap_or_default();
        let mut headers = vec![("Cookie", cookie.as_str())];
        if form.is_some() {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        if let (Some(origin), true) = (&self.origin, method == "POST") {
            headers.push(("Origin", origin.as_str()));
        }
        let headers: Vec<(&str, &str)> =
            headers.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let response = self.server.raw(method, path, &headers, body.as_bytes());
        for (name, value) in &response.headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                let (pair, _) = value.split_once(';').unwrap_or((value, ""));
                let (cookie_name, cookie_value) = pair.split_once('=').unwrap();
                self.cookies.retain(|(n, _)| n != cookie_name);
                if !value.contains("Max-Age=0") {
                    self.cookies
                        .push((cookie_name.to_string(), cookie_value.to_string()));
                }
            }
        }
        response
    }

    fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, None)
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        self.send("POST", path, Some(form))
    }

    fn sign_in(&mut self, email: &str, password: &str) -> Response {
        let page = self.get("/login");
        let csrf = hidden_csrf(&page.body);
        self.post(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
    }

    /// The settings page and its CSRF token.
    fn settings(&mut self) -> (Response, String) {
        let page = self.get("/settings/security");
        let csrf = hidden_csrf(&page.body);
        (page, csrf)
    }
}

fn hidden_csrf(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
        .to_string()
}

fn new_token_on(html: &str) -> Option<String> {
    html.split("id=\"new-token\" readonly value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_string)
}

/// A server whose one user, ann@example.com (pro), has the password `PASSWORD`.
fn ann_with_a_password() -> (Env, Server) {
    let env = Env::new();
    with_password(&env, "ann@example.com", "pro");
    let server = env.serve();
    (env, server)
}

fn with_password(env: &Env, email: &str, plan: &str) {
    env.user(email, plan);
    let output = env.cli_with_stdin(
        &["user", "set-password", "--email", email],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn sign_in_sets_a_strict_http_only_session_and_lands_on_the_page() {
    let env = Env::new();
    with_password(&env, "ann@example.com", "pro");
    let server = env.serve();
    let mut browser = Browser::new(&server);
    let login = browser.get("/login");
    assert_eq!(login.status, 200);
    assert_eq!(login.header("cache-control"), Some("no-store"));
    assert!(
        login
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(login.body.contains("<label for=\"password\">"));
    let wrong = browser.sign_in("ann@example.com", "not the password");
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong email or password"));
    assert!(!browser.cookies.iter().any(|(n, _)| n == "ktasks_session"));
    let signed_in = browser.sign_in("ANN@example.com", PASSWORD);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.header("location"), Some("/settings/security"));
    let cookie = signed_in
        .headers
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case("set-cookie") && v.starts_with("ktasks_session="))
        .unwrap()
        .1
        .clone();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http without public_url: {cookie}"
    );
    let (page, _) = browser.settings();
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page.body.contains("ann@example.com"));
    assert!(page.body.contains("New token"));
    // The cookie value is stored only as a hash.
    let session = browser
        .cookies
        .iter()
        .find(|(n, _)| n == "ktasks_session")
        .unwrap()
        .1
        .clone();
    assert!(
        !crate::util::database_bytes(&env.db())
            .windows(session.len())
            .any(|w| w == session.as_bytes())
    );
}

#[test]
fn a_token_made_on_the_page_is_shown_once_works_and_dies_when_revoked_there() {
    let (env, server) = ann_with_a_password();
    let mut browser = Browser::new(&server);
    browser.sign_in("ann@example.com", PASSWORD);
    let (_, csrf) = browser.settings();
    let created = browser.post(
        "/settings/security/tokens",
        &[
            ("csrf", &csrf),
            ("name", "Zapier"),
            ("scope", "read"),
            ("expiry", "30"),
        ],
    );
    // Post/Redirect/Get: the token is shown on the page the redirect lands on, once.
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.header("location"), Some("/settings/security"));
    assert!(new_token_on(&created.body).is_none());
    let (shown, _) = browser.settings();
    assert_eq!(shown.header("cache-control"), Some("no-store"));
    assert!(shown.body.contains("will not be shown again"));
    let token = new_token_on(&shown.body).expect("the new token is on the page");
    assert!(ktasks::token::is_well_formed(&token));
    // Reloading that page shows it no more, and mints nothing.
    let (reloaded, _) = browser.settings();
    assert!(new_token_on(&reloaded.body).is_none());
    assert!(!reloaded.body.contains(&token[8..]));

    let listed: Value = serde_json::from_str(&env.cli_ok(&["token", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["name"], "Zapier");
    assert_eq!(listed[0]["scope"], "read");
    assert!(listed[0]["expiresAt"].is_string());
    let me = server.get("/api/me", &token);
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["token"]["name"], "Zapier");

    let (page, csrf) = browser.settings();
    assert!(
        !page.body.contains(&token[8..]),
        "the token is never shown again"
    );
    assert!(page.body.contains(&token[..8]), "the prefix identifies it");
    let id = listed[0]["id"].as_str().unwrap();
    let revoked = browser.post(
        &format!("/settings/security/tokens/{id}/revoke"),
        &[("csrf", &csrf)],
    );
    assert_eq!(revoked.status, 303);
    server
        .get("/api/me", &token)
        .assert_error(401, "unauthorized");
    let (page, _) = browser.settings();
    assert!(
        !page.body.contains(&token[..8]),
        "revoked tokens leave the table"
    );
}

#[test]
fn forms_without_the_csrf_token_or_from_another_origin_are_refused() {
    let (env, server) = ann_with_a_password();
    let mut browser = Browser::new(&server);
    browser.sign_in("ann@example.com", PASSWORD);
    let (_, csrf) = browser.settings();
    let form = |csrf: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("name", "x".to_string()),
            ("expiry", "never".to_string()),
        ]
    };
    let refused = browser.post(
        "/settings/security/tokens",
        &[("name", "x"), ("expiry", "never")],
    );
    assert_eq!(refused.status, 403);
    let wrong: Vec<(&str, String)> = form("0000");
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(
        browser.post("/settings/security/tokens", &wrong).status,
        403
    );
    browser.origin = Some("https://evil.example".into());
    let right: Vec<(&str, String)> = form(&csrf);
    let right: Vec<(&str, &str)> = right.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(
        browser.post("/settings/security/tokens", &right).status,
        403,
        "foreign Origin"
    );
    browser.origin = None;
    assert_eq!(
        browser.post("/settings/security/tokens", &right).status,
        303,
        "no Origin, right CSRF"
    );
    // The login form has its own CSRF token, bound to a cookie.
    let mut stranger = Browser::new(&server);
    let page = stranger.get("/login");
    let csrf = hidden_csrf(&page.body);
    stranger.cookies.clear();
    let refused = stranger.post(
        "/login",
        &[
            ("csrf", &csrf),
            ("email", "ann@example.com"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(refused.status, 403);
    let listed: Value = serde_json::from_str(&env.cli_ok(&["token", "list", "--json"])).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "only the accepted form made a token"
    );
}

#[test]
fn bearer_tokens_are_refused_on_every_page() {
    let env = Env::new();
    with_password(&env, "ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve();
    let auth = format!("Bearer {token}");
    for (method, path) in [
        ("GET", "/login"),
        ("GET", "/settings/security"),
        ("POST", "/settings/security/tokens"),
    ] {
        let response = server.raw(method, path, &[("Authorization", &auth)], b"");
        assert_eq!(response.status, 403, "{method} {path}");
        assert!(response.body.contains("Tokens cannot manage tokens"));
    }
}

#[test]
fn failed_sign_ins_are_throttled_per_email() {
    let env = Env::new();
    with_password(&env, "ann@example.com", "pro");
    let server = env.serve();
    let mut browser = Browser::new(&server);
    for _ in 0..5 {
        assert_eq!(browser.sign_in("ann@example.com", "guess").status, 401);
    }
    let throttled = browser.sign_in("ann@example.com", PASSWORD);
    assert_eq!(throttled.status, 429, "even the right password waits");
    let retry_after: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry_after));
    with_password(&env, "bob@example.com", "pro");
    assert_eq!(
        browser.sign_in("bob@example.com", PASSWORD).status,
        303,
        "other emails are not blocked"
    );
}

#[test]
fn sessions_expire_and_a_new_password_signs_out_everywhere() {
    let (env, server) = ann_with_a_password();
    let mut browser = Browser::new(&server);
    browser.sign_in("ann@example.com", PASSWORD);
    assert_eq!(browser.get("/settings/security").status, 200);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute(
        "UPDATE sessions SET last_seen_at = '2020-01-01T00:00:00.000Z'",
        [],
    )
    .unwrap();
    let expired = browser.get("/settings/security");
    assert_eq!(expired.status, 303);
    assert_eq!(expired.header("location"), Some("/login"));

    browser.sign_in("ann@example.com", PASSWORD);
    assert_eq!(browser.get("/settings/security").status, 200);
    let output = env.cli_with_stdin(
        &["user", "set-password", "--email", "ann@example.com"],
        "another long password\n",
    );
    assert!(output.status.success());
    assert_eq!(
        browser.get("/settings/security").status,
        303,
        "signed out by the password change"
    );
    assert_eq!(browser.sign_in("ann@example.com", PASSWORD).status, 401);
    assert_eq!(
        browser
            .sign_in("ann@example.com", "another long password")
            .status,
        303
    );
    let (_, csrf) = browser.settings();
    assert_eq!(browser.post("/logout", &[("csrf", &csrf)]).status, 303);
    assert_eq!(browser.get("/settings/security").status, 303, "signed out");
}

#[test]
fn the_free_plan_sees_why_instead_of_the_form() {
    let env = Env::new();
    with_password(&env, "free@example.com", "free");
    let server = env.serve();
    let mut browser = Browser::new(&server);
    browser.sign_in("free@example.com", PASSWORD);
    let (page, csrf) = browser.settings();
    assert!(page.body.contains("free plan"));
    assert!(!page.body.contains("action=\"/settings/security/tokens\""));
    let refused = browser.post(
        "/settings/security/tokens",
        &[("csrf", &csrf), ("name", "x"), ("expiry", "never")],
    );
    assert!(new_token_on(&refused.body).is_none());
    let listed: Value = serde_json::from_str(&env.cli_ok(&["token", "list", "--json"])).unwrap();
    assert_eq!(listed, Value::Array(vec![]));
}

#[test]
fn set_password_refuses_short_passwords_and_unknown_users() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let short = env.cli_with_stdin(
        &["user", "set-password", "--email", "ann@example.com"],
        "short\n",
    );
    assert_eq!(short.status.code(), Some(2));
    let unknown = env.cli_with_stdin(
        &["user", "set-password", "--email", "nobody@example.com"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(unknown.status.code(), Some(1));
}

#[test]
fn failed_sign_ins_are_throttled_per_address_too() {
    let env = Env::new();
    with_password(&env, "ann@example.com", "pro");
    let server = env.serve();
    let mut browser = Browser::new(&server);
    // Twenty guesses spread over many emails (so no single email is throttled) from one address.
    for n in 0..20 {
        let response = browser.sign_in(&format!("guess{n}@example.com"), "guess");
        assert_eq!(response.status, 401, "guess {n}");
    }
    let throttled = browser.sign_in("ann@example.com", PASSWORD);
    assert_eq!(throttled.status, 429);
    assert!(throttled.header("retry-after").is_some());
}

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
    let space = server.get_ok("/api/spaces", &token)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let error = server
        .post(
            "/api/projects",
            &token,
            &serde_json::json!({"spaceId": space, "name": "line\nbreak", "slug": "lines"}),
        )
        .assert_error(400, "validation_failed");
    assert_eq!(error["field"], "name");
    let project = server.get_ok(&format!("/api/projects?spaceId={space}"), &token)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
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
