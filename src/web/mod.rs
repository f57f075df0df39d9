//! The settings pages: server-rendered pages where users sign in with a password, create and
//! revoke their own tokens (Settings -> Security -> API Tokens, SPEC section 7) and manage the
//! webhooks of the spaces they own or administer (Settings -> Webhooks, SPEC section 9; the
//! handlers are in `webhooks`).
//!
//! ```text
//! GET  /login                                 -- sign-in form
//! POST /login                                 -- email + password -> session cookie, 303 to the page
//! POST /logout                                -- ends the session
//! GET  /settings/security                     -- the user's tokens and the "New token" form
//! POST /settings/security/tokens              -- mint a token; the answer shows it once
//! POST /settings/security/tokens/:id/revoke   -- revoke one of the user's tokens
//! POST /settings/security/tokens/:id/rotate   -- replace one with a new token, shown once
//! GET  /settings/webhooks                     -- webhooks and deliveries of the spaces the user manages
//! POST /settings/webhooks                     -- add a webhook; the answer shows its secret once
//! POST /settings/webhooks/:id                 -- change its URL, events, description
//! POST /settings/webhooks/:id/toggle          -- switch it off or on (`active`)
//! POST /settings/webhooks/:id/rotate          -- a new secret, shown once
//! POST /settings/webhooks/:id/test            -- send it a `webhook.test` event
//! POST /settings/webhooks/:id/delete          -- delete it
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
//! through `data-` attributes); a new token or webhook secret is shown on the page a redirect
//! lands on (Post/Redirect/Get, `ShownOnce`), so a reload cannot make a second one. A webhook the
//! user may not manage is "not found", whatever it is.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hyper::header::{self, HeaderMap};
use hyper::{Method, StatusCode};

use crate::app::{ApiRequest, App};
use crate::error::Error;
use crate::query::Query;
use crate::ratelimit::RateLimiter;
use crate::reply::Reply;
use crate::router::WebRoute;
use crate::store::sessions::{self, Session};
use crate::store::tokens::{self, Scope};
use crate::store::users::{self, Plan, User};
use crate::{password, validate};

mod pages;
mod shown_once;
mod webhook_page;
mod webhooks;

pub use shown_once::ShownOnce;
pub use webhooks::NewSecret;

use pages::{SCRIPT, STYLE, asset, login_form, message_page, redirect, settings_page};

const SESSION_COOKIE: &str = "ktasks_session";
/// The session cookie's name over https: the `__Host-` prefix makes browsers refuse it unless it
/// is `Secure`, has `Path=/` and no `Domain`, so a sibling subdomain cannot plant one.
const HOST_SESSION_COOKIE: &str = "__Host-ktasks_session";
const LOGIN_CSRF_COOKIE: &str = "ktasks_login_csrf";
const HOST_LOGIN_CSRF_COOKIE: &str = "__Host-ktasks_login_csrf";
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

/// A form posted to a read replica: changes are made on the primary (`server.primary_url`, the
/// page's link when it is set).
pub fn replica_page(primary: Option<&str>) -> Reply {
    let back = primary.map_or("/settings/security".to_string(), |primary| {
        format!("{}/settings/security", primary.trim_end_matches('/'))
    });
    message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Read-only replica",
        "This server is a read-only copy: sign in and make changes on the primary server.",
        &back,
    )
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
        WebRoute::Logout => with_session(app, request, CSRF_ONLY, |_, id_hash, _| {
            app.store
                .write(|tx| sessions::delete_session(tx, &id_hash))?;
            Ok(redirect("/login").with_header(
                header::SET_COOKIE,
                &cookie(app, session_cookie(app), "", "/", 0),
            ))
        }),
        WebRoute::SecurityPage => with_session(app, request, NO_FORM, |session, id_hash, _| {
            settings_page(app, &session, Ok(&app.new_tokens.take(&id_hash)))
        }),
        WebRoute::CreateTokenForm => {
            with_session(app, request, TOKEN_FORM, |session, id_hash, form| {
                create_token(app, &form, &session, id_hash)
            })
        }
        WebRoute::RevokeTokenForm(id) => with_session(app, request, CSRF_ONLY, |session, _, _| {
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
                    "/settings/security",
                ));
            }
            Ok(redirect("/settings/security"))
        }),
        WebRoute::RotateTokenForm(id) => {
            with_session(app, request, ROTATE_FORM, |session, id_hash, form| {
                rotate_token(app, &form, &session, id_hash, id)
            })
        }
        WebRoute::WebhooksPage => with_session(app, request, NO_FORM, |session, id_hash, _| {
            let shown = app.new_webhook_secrets.take(&id_hash);
            webhook_page::render(app, &session, &shown, None)
        }),
        WebRoute::CreateWebhookForm => {
            with_session(app, request, webhooks::FORM, |session, id_hash, form| {
                webhooks::create(app, &session, id_hash, &form)
            })
        }
        WebRoute::UpdateWebhookForm(id) => {
            with_session(app, request, webhooks::FORM, |session, _, form| {
                webhooks::update(app, &session, id, &form)
            })
        }
        WebRoute::ToggleWebhookForm(id) => {
            with_session(app, request, webhooks::TOGGLE_FORM, |session, _, form| {
                webhooks::toggle(app, &session, id, &form)
            })
        }
        WebRoute::RotateWebhookSecretForm(id) => {
            with_session(app, request, CSRF_ONLY, |session, id_hash, _| {
                webhooks::rotate(app, &session, id_hash, id)
            })
        }
        WebRoute::TestWebhookForm(id) => with_session(app, request, CSRF_ONLY, |session, _, _| {
            webhooks::test(app, &session, id)
        }),
        WebRoute::DeleteWebhookForm(id) => {
            with_session(app, request, CSRF_ONLY, |session, _, _| {
                webhooks::delete(app, &session, id)
            })
        }
    }
}

/// The fields a page's form may post (any other is refused) and those of them that a group of
/// checkboxes may repeat.
struct FormFields {
    known: &'static [&'static str],
    lists: &'static [&'static str],
}

/// A GET: no form.
const NO_FORM: &FormFields = &FormFields {
    known: &[],
    lists: &[],
};

/// A button's form: only its CSRF token.
const CSRF_ONLY: &FormFields = &FormFields {
    known: &["csrf"],
    lists: &[],
};

const TOKEN_FORM: &FormFields = &FormFields {
    known: &["csrf", "name", "scope", "expiry", "spaces"],
    lists: &["spaces"],
};

const ROTATE_FORM: &FormFields = &FormFields {
    known: &["csrf", "grace"],
    lists: &[],
};

/// The Rotate button's grace choices: how long the old token keeps working, in seconds.
const GRACE_CHOICES: [(&str, &str, i64); 3] = [
    ("none", "Stop the old one now", 0),
    ("1h", "Keep the old one 1 hour", 3600),
    ("24h", "Keep the old one 24 hours", 86_400),
];

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
            "/login",
        ));
    }
    // A present `Origin` must be this server's (a missing one is allowed: the CSRF token still
    // has to match, and same-site cookies are not sent cross-site).
    if request.method == Method::POST && !app.site.origin_is_ours(&request.headers) {
        return Some(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form was sent from another site.",
            back_link(request),
        ));
    }
    None
}

/// Runs `page` for a signed-in user (303 to `/login` otherwise) with the posted form of `fields`
/// (empty for a GET); POSTs must carry the session's CSRF token.
fn with_session(
    app: &App,
    request: &ApiRequest,
    fields: &FormFields,
    page: impl FnOnce(Session, [u8; 32], Query) -> Result<Reply, Error>,
) -> Result<Reply, Error> {
    let Some(value) = cookie_value(&request.headers, session_cookie(app)) else {
        return Ok(redirect("/login"));
    };
    let id_hash = crate::token::hash(value);
    let now = time::OffsetDateTime::now_utc();
    let Some(session) = app
        .store
        .read(|conn| sessions::find_session(conn, &id_hash, now))?
    else {
        return Ok(redirect("/login"));
    };
    let form = if request.method == Method::POST {
        form(request, fields.known, fields.lists)?
    } else {
        Query::default()
    };
    if request.method == Method::POST && !same_secret(form.get("csrf").unwrap_or(""), &session.csrf)
    {
        return Ok(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form expired. Reload the page and try again.",
            back_link(request),
        ));
    }
    let stale = crate::time::format_timestamp(now - time::Duration::minutes(1));
    // A replica writes nothing; its sessions' last-seen times lag (they are the primary's).
    if session.last_seen_at < stale && !app.store.is_read_only() {
        app.store
            .write(|tx| sessions::touch_session(tx, &id_hash))?;
    }
    page(session, id_hash, form)
}

/// The page a refused form's "Back" link returns to: the one the form was on.
fn back_link(request: &ApiRequest) -> &'static str {
    if request.uri.path().starts_with("/settings/webhooks") {
        "/settings/webhooks"
    } else {
        "/settings/security"
    }
}

fn login_page(app: &App, request: &ApiRequest) -> Result<Reply, Error> {
    if let Some(value) = cookie_value(&request.headers, session_cookie(app)) {
        let id_hash = crate::token::hash(value);
        if app
            .store
            .read(|conn| sessions::find_session(conn, &id_hash, time::OffsetDateTime::now_utc()))?
            .is_some()
        {
            return Ok(redirect("/settings/security"));
        }
    }
    login_form(app, StatusCode::OK, "")
}

/// The posted sign-in form when its CSRF token is right, or the page saying the form expired.
fn sign_in_form(app: &App, request: &ApiRequest) -> Result<Result<Query, Reply>, Error> {
    let form = form(request, &["csrf", "email", "password"], &[])?;
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
    let choices = expiry_choices(app.config.tokens.max_lifetime_days);
    let days = match choices.iter().find(|(value, _)| *value == expiry) {
        Some((_, days)) => *days,
        // "never" (or a longer choice) under `tokens.max_lifetime_days`: `mint_token` says why.
        None if expiry == "never" => None,
        None => {
            return settings_page(app, session, Err("Choose an expiry from the list.".into()));
        }
    };
    // None chosen in the picker: every space, as with the CLI without `--space`.
    let picked: Vec<String> = form.all("spaces").into_iter().map(str::to_string).collect();
    let spaces = (!picked.is_empty()).then_some(picked.as_slice());
    let mint = tokens::Mint {
        user_id: &session.user.id,
        name: &name,
        scope,
        expires_in_days: days,
        spaces,
    };
    let minted = app
        .store
        .write(|tx| tokens::mint_token(tx, &mint, &app.config.tokens));
    shown_or_refused(app, session, id_hash, minted.map(|(secret, _)| secret))
}

/// After a token is made: the redirect to the page that shows it once, or the page with why not.
fn shown_or_refused(
    app: &App,
    session: &Session,
    id_hash: [u8; 32],
    made: Result<String, Error>,
) -> Result<Reply, Error> {
    match made {
        Ok(secret) => {
            app.new_tokens.put(id_hash, secret);
            Ok(redirect("/settings/security"))
        }
        Err(
            refused @ (Error::Conflict { .. } | Error::Forbidden(_) | Error::Validation { .. }),
        ) => settings_page(app, session, Err(refused.to_string())),
        Err(error) => Err(error),
    }
}

/// The expiry choices the page offers: those within `tokens.max_lifetime_days` (and the maximum
/// itself when no standard choice is), "never" only without one.
fn expiry_choices(max_days: Option<u32>) -> Vec<(String, Option<u32>)> {
    let Some(max) = max_days else {
        return EXPIRY_CHOICES
            .iter()
            .map(|(value, days)| (value.to_string(), *days))
            .collect();
    };
    let mut choices: Vec<(String, Option<u32>)> = EXPIRY_CHOICES
        .iter()
        .filter(|(_, days)| days.is_some_and(|d| d <= max))
        .map(|(value, days)| (value.to_string(), *days))
        .collect();
    if !choices.iter().any(|(_, days)| *days == Some(max)) {
        choices.push((max.to_string(), Some(max)));
    }
    choices
}

/// Rotates one of the user's tokens with the grace chosen next to the button; the new token is
/// shown once, as a new one is.
fn rotate_token(
    app: &App,
    form: &Query,
    session: &Session,
    id_hash: [u8; 32],
    id: &str,
) -> Result<Reply, Error> {
    if session.user.plan == Plan::Free {
        return settings_page(app, session, Ok(&[]));
    }
    let grace = form.get("grace").unwrap_or("none");
    let Some((_, _, grace_secs)) = GRACE_CHOICES.iter().find(|(value, ..)| *value == grace) else {
        return settings_page(app, session, Err("Choose a grace from the list.".into()));
    };
    let user_id = &session.user.id;
    let rotated = app.store.write(|tx| match tokens::find_token(tx, id)? {
        Some(token) if token.user_id == *user_id => {
            tokens::rotate_token(tx, id, *grace_secs, &app.config.tokens)
        }
        _ => Ok(None),
    });
    let made = match rotated {
        Ok(None) => {
            return Ok(message_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "No such token.",
                "/settings/security",
            ));
        }
        Ok(Some((secret, _))) => Ok(secret),
        Err(error) => Err(error),
    };
    shown_or_refused(app, session, id_hash, made)
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

fn form(request: &ApiRequest, known: &[&str], lists: &[&str]) -> Result<Query, Error> {
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
    Query::parse_with_lists(Some(text), known, lists)
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
