//! Settings -> Security -> API Tokens (SPEC section 7): server-rendered pages where users sign in
//! with a password and create and revoke their own tokens.
//!
//! ```text
//! GET  /login                                 -- sign-in form
//! POST /login                                 -- email + password -> session cookie, 303 to the page
//! POST /logout                                -- ends the session
//! GET  /settings/security                     -- the user's tokens and the "New token" form
//! POST /settings/security/tokens              -- mint a token; the answer shows it once
//! POST /settings/security/tokens/:id/revoke   -- revoke one of the user's tokens
//! GET  /assets/settings.js, /assets/settings.css -- the pages' script and stylesheet
//! ```
//!
//! Defences: sessions are random 32-byte cookies (`HttpOnly`, `SameSite=Strict`; with an https
//! `server.public_url`, `Secure` and the `__Host-` prefix) stored hashed, and a request carrying
//! the session cookie twice is signed out; every form carries a CSRF token (the session's, or for
//! the login form a cookie-bound one) and a present `Origin` must be ours; sign-ins are throttled
//! per email and per client address, a slot taken before the password is checked; a Bearer token
//! is refused everywhere here (tokens cannot manage tokens); pages are `Cache-Control: no-store`,
//! may not be framed, and run no inline script (`script-src 'self'`: data reaches the script only
//! through `data-` attributes); a new token is shown on the page a redirect lands on
//! (Post/Redirect/Get), so a reload cannot mint a second one.

use std::fmt::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use hyper::header::{self, HeaderMap, HeaderName};
use hyper::{Method, StatusCode};

use crate::app::{ApiRequest, App};
use crate::developers::escape;
use crate::error::Error;
use crate::json::{Query, Reply};
use crate::ratelimit::RateLimiter;
use crate::router::WebRoute;
use crate::store::sessions::{self, Session};
use crate::store::tokens::{self, Scope, TokenInfo};
use crate::store::users::{self, Plan, User};
use crate::{password, validate};

const SESSION_COOKIE: &str = "ktasks_session";
/// The session cookie's name over https: the `__Host-` prefix makes browsers refuse it unless it
/// is `Secure`, has `Path=/` and no `Domain`, so a sibling subdomain cannot plant one.
const HOST_SESSION_COOKIE: &str = "__Host-ktasks_session";
const LOGIN_CSRF_COOKIE: &str = "ktasks_login_csrf";
const HOST_LOGIN_CSRF_COOKIE: &str = "__Host-ktasks_login_csrf";
/// How long a token made on the page waits for the page that shows it.
const SHOW_NEW_TOKEN_FOR: Duration = Duration::from_secs(5 * 60);
const EXPIRY_CHOICES: [(&str, Option<u32>); 4] = [
    ("never", None),
    ("30", Some(30)),
    ("90", Some(90)),
    ("365", Some(365)),
];

/// Sign-in attempts, counted per email (by its hash: the key is not the attacker's text) and per
/// client address (`net::client_key`). A slot is taken before the password is checked, so
/// concurrent guesses cannot all slip past a count that only failures would raise; a successful
/// sign-in gives the email's slots back.
pub struct LoginThrottle {
    by_email: RateLimiter<[u8; 32]>,
    by_address: RateLimiter<IpAddr>,
}

impl Default for LoginThrottle {
    fn default() -> LoginThrottle {
        let window = Duration::from_secs(5 * 60);
        LoginThrottle {
            by_email: RateLimiter::new(5, window),
            by_address: RateLimiter::new(20, window),
        }
    }
}

impl LoginThrottle {
    pub fn sweep(&self, now: Instant) {
        self.by_email.sweep(now);
        self.by_address.sweep(now);
    }
}

/// Tokens just minted on the page, held in memory (never on disk) for the one page view that
/// shows them, by the session's hash: every token minted since that session's last view (two
/// tabs may each make one).
#[derive(Default)]
pub struct NewTokens {
    waiting: DashMap<[u8; 32], Vec<(String, Instant)>>,
}

impl NewTokens {
    fn put(&self, session: [u8; 32], secret: String) {
        self.waiting
            .entry(session)
            .or_default()
            .push((secret, Instant::now()));
    }

    fn take(&self, session: &[u8; 32]) -> Vec<String> {
        let Some((_, waiting)) = self.waiting.remove(session) else {
            return Vec::new();
        };
        waiting
            .into_iter()
            .filter(|(_, made)| made.elapsed() < SHOW_NEW_TOKEN_FOR)
            .map(|(secret, _)| secret)
            .collect()
    }

    /// Forgets tokens nobody came to see.
    pub fn sweep(&self) {
        self.waiting.retain(|_, waiting| {
            waiting.retain(|(_, made)| made.elapsed() < SHOW_NEW_TOKEN_FOR);
            !waiting.is_empty()
        });
    }
}

pub fn dispatch(app: &App, route: &WebRoute, request: &ApiRequest) -> Result<Reply, Error> {
    if let Some(refused) = refused_outright(app, request) {
        return Ok(refused);
    }
    match route {
        WebRoute::SettingsScript => Ok(asset("text/javascript; charset=utf-8", SCRIPT)),
        WebRoute::SettingsStyle => Ok(asset("text/css; charset=utf-8", STYLE)),
        WebRoute::LoginPage => login_page(app, request),
        WebRoute::Login => login(app, request),
        WebRoute::Logout => with_session(app, request, |_, id_hash, _| {
            app.store
                .write(|tx| sessions::delete_session(tx, &id_hash))?;
            Ok(redirect("/login").with_header(
                header::SET_COOKIE,
                &cookie(app, session_cookie(app), "", "/", 0),
            ))
        }),
        WebRoute::SecurityPage => with_session(app, request, |session, id_hash, _| {
            settings_page(app, &session, Ok(&app.new_tokens.take(&id_hash)))
        }),
        WebRoute::CreateTokenForm => with_session(app, request, |session, id_hash, form| {
            create_token(app, &form, &session, id_hash)
        }),
        WebRoute::RevokeTokenForm(id) => with_session(app, request, |session, _, _| {
            let user_id = session.user.id.clone();
            let revoked = app.store.write(|tx| match tokens::find_token(tx, id)? {
                Some(token) if token.user_id == user_id => {
                    Ok(tokens::revoke_token(tx, id)?.is_some())
                }
                _ => Ok(false),
            })?;
            if !revoked {
                return Ok(message_page(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "No such token.",
                ));
            }
            Ok(redirect("/settings/security"))
        }),
    }
}

/// The answer to a request no page may serve: one with a Bearer token (tokens cannot manage
/// tokens), or a form posted from another site.
fn refused_outright(app: &App, request: &ApiRequest) -> Option<Reply> {
    if request
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() >= 6 && v[..6].eq_ignore_ascii_case("bearer"))
    {
        return Some(message_page(
            StatusCode::FORBIDDEN,
            "Tokens cannot manage tokens",
            "API tokens are not accepted on these pages. Sign in with your password instead.",
        ));
    }
    if request.method == Method::POST && !origin_is_ours(app, &request.headers) {
        return Some(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form was sent from another site.",
        ));
    }
    None
}

/// Runs `page` for a signed-in user (303 to `/login` otherwise) with the posted form (empty for
/// a GET); POSTs must carry the session's CSRF token.
fn with_session(
    app: &App,
    request: &ApiRequest,
    page: impl FnOnce(Session, [u8; 32], Query) -> Result<Reply, Error>,
) -> Result<Reply, Error> {
    let Some(value) = cookie_value(&request.headers, session_cookie(app)) else {
        return Ok(redirect("/login"));
    };
    let id_hash = crate::token::hash(value);
    let Some(session) = app
        .store
        .read(|conn| sessions::find_session(conn, &id_hash))?
    else {
        return Ok(redirect("/login"));
    };
    let form = if request.method == Method::POST {
        form(request, &["csrf", "name", "scope", "expiry"])?
    } else {
        Query::default()
    };
    if request.method == Method::POST && !same_secret(form.get("csrf").unwrap_or(""), &session.csrf)
    {
        return Ok(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form expired. Reload the page and try again.",
        ));
    }
    let stale =
        crate::time::format_timestamp(time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
    if session.last_seen_at < stale {
        app.store
            .write(|tx| sessions::touch_session(tx, &id_hash))?;
    }
    page(session, id_hash, form)
}

fn login_page(app: &App, request: &ApiRequest) -> Result<Reply, Error> {
    if let Some(value) = cookie_value(&request.headers, session_cookie(app)) {
        let id_hash = crate::token::hash(value);
        if app
            .store
            .read(|conn| sessions::find_session(conn, &id_hash))?
            .is_some()
        {
            return Ok(redirect("/settings/security"));
        }
    }
    login_form(app, StatusCode::OK, "")
}

fn login_form(app: &App, status: StatusCode, problem: &str) -> Result<Reply, Error> {
    let csrf = random_hex()?;
    let mut body = String::new();
    if !problem.is_empty() {
        let _ = write!(
            body,
            "<p class=\"problem\" role=\"alert\">{}</p>",
            escape(problem)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/login\" class=\"card\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>\
         <p class=\"muted\">No password yet? Your administrator sets one with \
         <code>ktasks user set-password --email you@example.com</code>.</p>"
    );
    Ok(page(status, "Sign in", &body).with_header(
        header::SET_COOKIE,
        &cookie(
            app,
            login_csrf_cookie(app),
            &csrf,
            login_csrf_path(app),
            3600,
        ),
    ))
}

/// The posted sign-in form when its CSRF token is right, or the page saying the form expired.
fn sign_in_form(app: &App, request: &ApiRequest) -> Result<Result<Query, Reply>, Error> {
    let form = form(request, &["csrf", "email", "password"])?;
    let expected = cookie_value(&request.headers, login_csrf_cookie(app)).unwrap_or("");
    if expected.is_empty() || !same_secret(form.get("csrf").unwrap_or(""), expected) {
        let expired = login_form(
            app,
            StatusCode::FORBIDDEN,
            "The form expired. Please try again.",
        )?;
        return Ok(Err(expired));
    }
    Ok(Ok(form))
}

/// The form's email, normalised, and its throttle key: its hash, and only for something that can
/// be an email (anything else cannot have an account, so only the address pays for it).
fn sign_in_email(form: &Query) -> (String, Option<[u8; 32]>) {
    let email = form.get("email").unwrap_or("").trim().to_lowercase();
    let key = users::is_valid_email(&email).then(|| *blake3::hash(email.as_bytes()).as_bytes());
    (email, key)
}

/// The cheap half of a sign-in, run by `App` before the request queues for a password thread:
/// the outright refusals, the CSRF token, and a throttle slot per address and per email, taken
/// before any password is checked so that parallel guesses cannot all pass. `Err` is the answer
/// (refused sign-ins never wait behind Argon2); anything `dispatch` would refuse on its own
/// (a malformed form) is left to it.
pub fn admit_sign_in(app: &App, request: &ApiRequest) -> Result<(), Reply> {
    if let Some(refused) = refused_outright(app, request) {
        return Err(refused);
    }
    let form = match sign_in_form(app, request) {
        Ok(Ok(form)) => form,
        Ok(Err(expired)) => return Err(expired),
        Err(_) => return Ok(()),
    };
    let (_, email_key) = sign_in_email(&form);
    let now = Instant::now();
    let throttle = &app.login_throttle;
    let admitted = throttle
        .by_address
        .check(&crate::net::client_key(request.client_ip), now);
    let admitted = match (&email_key, admitted.allowed) {
        (Some(key), true) => throttle.by_email.check(key, now),
        _ => admitted,
    };
    if admitted.allowed {
        return Ok(());
    }
    crate::log_warn!(
        "web sign-in refused: reason=throttled client={}",
        request.client_ip
    );
    // The same answer whether or not the account exists.
    let wait = admitted.reset_after_secs();
    let message = format!("Too many sign-in attempts. Try again in {wait} seconds.");
    match login_form(app, StatusCode::TOO_MANY_REQUESTS, &message) {
        Ok(page) => Err(page.with_header(header::RETRY_AFTER, &wait.to_string())),
        Err(_) => Ok(()),
    }
}

/// The expensive half, on a password thread, after `admit_sign_in`: the password check and the
/// session.
fn login(app: &App, request: &ApiRequest) -> Result<Reply, Error> {
    let form = match sign_in_form(app, request)? {
        Ok(form) => form,
        Err(expired) => return Ok(expired),
    };
    let (email, email_key) = sign_in_email(&form);
    let password = form.get("password").unwrap_or("");
    let login = match email_key {
        Some(_) => app.store.read(|conn| users::find_login(conn, &email))?,
        None => None,
    };
    let signed_in: Result<User, &str> = match login {
        Some((user, Some(hash))) if password::verify(password, &hash) => Ok(user),
        Some((_, Some(_))) => Err("wrong_password"),
        _ if email_key.is_none() => Err("not_an_email"),
        found => {
            password::verify_nothing(password);
            Err(if found.is_some() {
                "no_password_set"
            } else {
                "no_such_user"
            })
        }
    };
    let user = match signed_in {
        Ok(user) => user,
        Err(reason) => {
            // For the operator's log only; the page says the same in every case.
            crate::log_warn!(
                "web sign-in refused: reason={reason} client={}",
                request.client_ip
            );
            return login_form(app, StatusCode::UNAUTHORIZED, "Wrong email or password.");
        }
    };
    if let Some(key) = &email_key {
        app.login_throttle.by_email.forget(key);
    }
    let session = random_hex()?;
    let csrf = random_hex()?;
    app.store
        .write(|tx| sessions::create_session(tx, &crate::token::hash(&session), &user.id, &csrf))?;
    crate::log_info!("web sign-in for user {}", user.id);
    let max_age = sessions::ABSOLUTE.whole_seconds().max(0) as u64;
    Ok(redirect("/settings/security")
        .with_header(
            header::SET_COOKIE,
            &cookie(app, session_cookie(app), &session, "/", max_age),
        )
        .with_header(
            header::SET_COOKIE,
            &cookie(app, login_csrf_cookie(app), "", login_csrf_path(app), 0),
        ))
}

/// Mints a token and redirects to the page, which shows it once (Post/Redirect/Get: reloading
/// that page cannot post the form again). A refusal is shown on the page instead.
fn create_token(
    app: &App,
    form: &Query,
    session: &Session,
    id_hash: [u8; 32],
) -> Result<Reply, Error> {
    if session.user.plan == Plan::Free {
        return settings_page(app, session, Ok(&[]));
    }
    let name = match validate::name(
        "name",
        form.get("name").unwrap_or("").to_string(),
        validate::MAX_NAME_CHARS,
    ) {
        Ok(name) => name,
        Err(error) => return settings_page(app, session, Err(error.to_string())),
    };
    let scope = match form.get("scope") {
        Some("read") => Scope::Read,
        _ => Scope::Write,
    };
    let expiry = form.get("expiry").unwrap_or("never");
    let Some((_, days)) = EXPIRY_CHOICES.iter().find(|(value, _)| *value == expiry) else {
        return settings_page(app, session, Err("Choose an expiry from the list.".into()));
    };
    let user_id = session.user.id.clone();
    let max_active = app.config.tokens.max_active_per_user;
    let minted = app
        .store
        .write(|tx| tokens::mint_token(tx, &user_id, &name, scope, *days, max_active));
    match minted {
        Ok((secret, _)) => {
            app.new_tokens.put(id_hash, secret);
            Ok(redirect("/settings/security"))
        }
        Err(refused @ Error::Conflict { .. }) => {
            settings_page(app, session, Err(refused.to_string()))
        }
        Err(error) => Err(error),
    }
}

/// The settings page, with the tokens just minted (shown this once) or a form's problem.
fn settings_page(
    app: &App,
    session: &Session,
    shown: Result<&[String], String>,
) -> Result<Reply, Error> {
    let user = &session.user;
    let mut tokens = app
        .store
        .read(|conn| tokens::list_tokens(conn, Some(&user.id)))?;
    tokens.retain(|t| t.revoked_at.is_none());
    tokens.reverse();
    let csrf = escape(&session.csrf);
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"muted\">Signed in as {} · plan {}</p>\
         <form method=\"post\" action=\"/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" class=\"secondary\">Sign out</button></form>\
         <h2>API Tokens</h2><p>Personal tokens let scripts and integrations use the API as you. \
         Use one token per integration, so you can revoke one without breaking the others.</p>",
        escape(&user.email),
        user.plan
    );
    match shown {
        Ok(new_tokens) => {
            for (i, secret) in new_tokens.iter().enumerate() {
                // The first keeps the plain ids; tokens made in two tabs get numbered ones.
                let suffix = if i == 0 {
                    String::new()
                } else {
                    format!("-{}", i + 1)
                };
                let _ = write!(
                    body,
                    "<section class=\"card new-token\" aria-labelledby=\"new-token-title{suffix}\">\
                     <h3 id=\"new-token-title{suffix}\">Your new token</h3>\
                     <p class=\"warning\"><strong>Copy it now. It will not be shown again:</strong> only a hash is kept.</p>\
                     <div class=\"copy\"><input id=\"new-token{suffix}\" readonly value=\"{}\" aria-label=\"New token\">\
                     <button type=\"button\" id=\"copy{suffix}\" data-copy=\"new-token{suffix}\">Copy</button></div></section>",
                    escape(secret)
                );
            }
        }
        Err(problem) => {
            let _ = write!(
                body,
                "<p class=\"problem\" role=\"alert\">{}</p>",
                escape(&problem)
            );
        }
    }
    if user.plan == Plan::Free {
        body.push_str(
            "<p class=\"card\">API access needs a Pro or Team plan; this account is on the free plan, so it \
             cannot create tokens. Ask your administrator to change the plan.</p>",
        );
    } else {
        let mut expiry_options = String::new();
        for (value, days) in EXPIRY_CHOICES {
            let label = days.map_or("Never".to_string(), |d| format!("{d} days"));
            let _ = write!(expiry_options, "<option value=\"{value}\">{label}</option>");
        }
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/settings/security/tokens\" class=\"card\">\
             <h3>New token</h3><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"name\">Name</label>\
             <input id=\"name\" name=\"name\" required maxlength=\"200\" placeholder=\"Zapier, VS Code plugin, …\">\
             <label for=\"scope\">Access</label>\
             <select id=\"scope\" name=\"scope\"><option value=\"write\">Read and write</option>\
             <option value=\"read\">Read only</option></select>\
             <label for=\"expiry\">Expires</label><select id=\"expiry\" name=\"expiry\">{expiry_options}</select>\
             <button type=\"submit\">Create token</button></form>"
        );
    }
    body.push_str(&token_table(&tokens, &csrf));
    Ok(page(StatusCode::OK, "Security", &body))
}

fn token_table(tokens: &[TokenInfo], csrf: &str) -> String {
    if tokens.is_empty() {
        return "<p class=\"muted\">No active tokens.</p>".into();
    }
    let mut html = String::from(
        "<div class=\"table\"><table><caption>Active tokens</caption><tr><th scope=\"col\">Name</th>\
         <th scope=\"col\">Token</th><th scope=\"col\">Access</th><th scope=\"col\">Created</th>\
         <th scope=\"col\">Last used</th><th scope=\"col\">Expires</th><th scope=\"col\"><span class=\"sr\">Actions</span></th></tr>",
    );
    let day = |t: &Option<String>, none: &str| {
        t.as_deref()
            .map_or(none.to_string(), |t| t[..10].to_string())
    };
    for token in tokens {
        let name = escape(&token.name);
        let _ = write!(
            html,
            "<tr><td>{name}</td><td><code>{}…</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>\
             <form method=\"post\" action=\"/settings/security/tokens/{}/revoke\" \
             data-confirm=\"Revoke the token {name}? Anything using it stops working at once.\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" class=\"danger\" aria-label=\"Revoke {name}\">Revoke</button></form></td></tr>",
            escape(&token.prefix),
            if token.scope == Scope::Read {
                "Read only"
            } else {
                "Read and write"
            },
            &token.created_at[..10],
            day(&token.last_used_at, "Never"),
            day(&token.expires_at, "Never"),
            escape(&token.id),
        );
    }
    html.push_str("</table></div>");
    html
}

/// The pages' only script, served as a file so that the policy can forbid inline script: a form
/// with `data-confirm` asks first (the text is an attribute, so the browser never runs it), and a
/// button with `data-copy` copies the named field.
const SCRIPT: &str = "'use strict';
document.addEventListener('submit', function (event) {
  var question = event.target.getAttribute('data-confirm');
  if (question !== null && !window.confirm(question)) { event.preventDefault(); }
});
document.addEventListener('click', function (event) {
  var button = event.target.closest('[data-copy]');
  if (button === null) { return; }
  var field = document.getElementById(button.getAttribute('data-copy'));
  navigator.clipboard.writeText(field.value).then(function () { button.textContent = 'Copied'; });
});
";

const STYLE: &str = "
:root { color-scheme: light dark; --fg: #1f2328; --muted: #57606a; --bg: #fff; --card: #f6f8fa; --line: #d0d7de;
        --accent: #0969da; --danger: #cf222e; --warn-bg: #fff8c5; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1; --bg: #0d1117; --card: #161b22;
        --line: #30363d; --accent: #4493f8; --danger: #f85149; --warn-bg: #3b2e00; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 56rem; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; margin: 1rem 0 .25rem; } h2 { font-size: 1.3rem; margin-top: 2rem; } h3 { margin: 0 0 .5rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin: 1rem 0; }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
input, select { width: 100%; max-width: 28rem; font: inherit; padding: .5rem; border: 1px solid var(--line); border-radius: 6px;
        background: var(--bg); color: var(--fg); }
button { font: inherit; font-weight: 600; margin-top: 1rem; padding: .5rem 1rem; border: 0; border-radius: 6px;
        background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: transparent; color: var(--accent); border: 1px solid var(--line); margin: 0; }
button.danger { background: transparent; color: var(--danger); border: 1px solid var(--danger); margin: 0; padding: .25rem .75rem; }
button:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.card > button { display: block; } .inline { display: inline; } .muted { color: var(--muted); } .problem { color: var(--danger); font-weight: 600; }
.warning { background: var(--warn-bg); padding: .5rem; border-radius: 6px; }
.copy { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; } .copy input { font-family: ui-monospace, monospace; }
.copy button { margin: 0; }
.table { overflow-x: auto; } table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: .5rem 0; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
code { font-family: ui-monospace, monospace; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
";

fn page(status: StatusCode, title: &str, body: &str) -> Reply {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · ktasks</title>\
         <link rel=\"stylesheet\" href=\"/assets/settings.css\"><script src=\"/assets/settings.js\" defer></script>\
         </head><body><main><p class=\"muted\">Settings</p><h1>{}</h1>{body}</main></body></html>",
        escape(title),
        escape(title)
    );
    let mut reply = Reply::bytes("text/html; charset=utf-8", html.into());
    reply.status = status;
    with_page_headers(reply)
}

/// The script or the stylesheet. Cached for an hour: they change only with the binary.
fn asset(content_type: &'static str, text: &'static str) -> Reply {
    Reply::bytes(
        content_type,
        hyper::body::Bytes::from_static(text.as_bytes()),
    )
    .with_header(header::CACHE_CONTROL, "public, max-age=3600")
    .with_header(HeaderName::from_static("x-content-type-options"), "nosniff")
}

fn message_page(status: StatusCode, title: &str, message: &str) -> Reply {
    page(
        status,
        title,
        &format!(
            "<p class=\"card\">{}</p><p><a href=\"/settings/security\">Back</a></p>",
            escape(message)
        ),
    )
}

fn redirect(location: &str) -> Reply {
    let mut reply = Reply::no_content().with_header(header::LOCATION, location);
    reply.status = StatusCode::SEE_OTHER;
    with_page_headers(reply)
}

fn with_page_headers(reply: Reply) -> Reply {
    reply
        .with_header(header::CACHE_CONTROL, "no-store")
        .with_header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        )
        .with_header(header::X_FRAME_OPTIONS, "DENY")
        // Not `no-referrer`: with it, browsers send `Origin: null` on our own form posts.
        .with_header(header::REFERRER_POLICY, "same-origin")
        .with_header(HeaderName::from_static("x-content-type-options"), "nosniff")
}

fn is_https(app: &App) -> bool {
    app.config
        .server
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"))
}

fn session_cookie(app: &App) -> &'static str {
    if is_https(app) {
        HOST_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// The sign-in form's CSRF cookie: `__Host-` prefixed over https too (which needs `Path=/`), so
/// that a sibling subdomain cannot plant a second one and make every sign-in "expire".
fn login_csrf_cookie(app: &App) -> &'static str {
    if is_https(app) {
        HOST_LOGIN_CSRF_COOKIE
    } else {
        LOGIN_CSRF_COOKIE
    }
}

fn login_csrf_path(app: &App) -> &'static str {
    if is_https(app) { "/" } else { "/login" }
}

fn cookie(app: &App, name: &str, value: &str, path: &str, max_age: u64) -> String {
    let secure = is_https(app);
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The cookie's value, if the request carries it exactly once: a second cookie of the same name
/// (one planted by a sibling subdomain, "cookie tossing") makes it count as absent.
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, _)| *key == name)
        .map(|(_, value)| value);
    let value = found.next()?;
    (found.next().is_none() && !value.is_empty()).then_some(value)
}

/// A present `Origin` must be this server's (a missing one is allowed: the CSRF token still
/// has to match, and same-site cookies are not sent cross-site).
fn origin_is_ours(app: &App, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let expected = app.base_url(headers);
    let expected_origin = expected
        .splitn(4, '/')
        .take(3)
        .collect::<Vec<_>>()
        .join("/");
    origin == expected_origin
}

fn form(request: &ApiRequest, known: &[&str]) -> Result<Query, Error> {
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(Error::UnsupportedMediaType);
    }
    let text = std::str::from_utf8(&request.body)
        .map_err(|_| Error::InvalidJson("the form is not UTF-8".into()))?;
    Query::parse(Some(text), known)
}

/// Compares two secrets in constant time (by their BLAKE3 hashes, whose equality is constant-time).
fn same_secret(given: &str, expected: &str) -> bool {
    blake3::hash(given.as_bytes()) == blake3::hash(expected.as_bytes())
}

fn random_hex() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("random: {e}")))?;
    Ok(crate::token::hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ktasks_session=abc; b=2"),
        );
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie_value(&headers, "missing"), None);
        headers.insert(header::COOKIE, HeaderValue::from_static("ktasks_session="));
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), None);
    }

    #[test]
    fn a_cookie_sent_twice_counts_as_absent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("ktasks_session=abc; ktasks_session=planted"),
        );
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("ktasks_session=abc"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("ktasks_session=abc"),
        );
        assert_eq!(
            cookie_value(&headers, SESSION_COOKIE),
            None,
            "across headers too"
        );
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("", "abc"));
    }
}
