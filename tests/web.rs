//! Settings -> Security over HTTP: sign-in, sessions, CSRF and Origin checks, throttling, and
//! tokens created and revoked on the page, seen by the CLI and the API.

use serde_json::Value;

use crate::util::{Env, Response, Server};

pub(crate) const PASSWORD: &str = "correct horse battery";

/// A cookie jar and form poster over the test client.
pub(crate) struct Browser<'a> {
    server: &'a Server,
    pub(crate) cookies: Vec<(String, String)>,
    pub(crate) origin: Option<String>,
}

impl<'a> Browser<'a> {
    pub(crate) fn new(server: &'a Server) -> Browser<'a> {
        Browser {
            server,
            cookies: Vec::new(),
            origin: Some(format!("http://{}", server.addr)),
        }
    }

    pub(crate) fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Response {
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
                            ktasks::query::percent_encode(n),
                            ktasks::query::percent_encode(v)
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

    pub(crate) fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, None)
    }

    pub(crate) fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        self.send("POST", path, Some(form))
    }

    pub(crate) fn sign_in(&mut self, email: &str, password: &str) -> Response {
        let page = self.get("/login");
        let csrf = hidden_csrf(&page.body);
        self.post(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
    }

    /// The settings page and its CSRF token.
    pub(crate) fn settings(&mut self) -> (Response, String) {
        let page = self.get("/settings/security");
        let csrf = hidden_csrf(&page.body);
        (page, csrf)
    }
}

pub(crate) fn hidden_csrf(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
        .to_string()
}

pub(crate) fn new_token_on(html: &str) -> Option<String> {
    html.split("id=\"new-token\" readonly value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_string)
}

/// A server whose one user, ann@example.com (pro), has the password `PASSWORD`.
pub(crate) fn ann_with_a_password() -> (Env, Server) {
    let env = Env::new();
    with_password(&env, "ann@example.com", "pro");
    let server = env.serve();
    (env, server)
}

pub(crate) fn with_password(env: &Env, email: &str, plan: &str) {
    env.user(email, plan);
    set_password(env, email);
}

/// Gives an existing user the password `PASSWORD`.
pub(crate) fn set_password(env: &Env, email: &str) {
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
