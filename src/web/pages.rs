//! The settings pages' HTML: the page frame and its headers (with the pages' navigation once
//! signed in), the sign-in form, the security page with its token table, the card that shows a
//! new secret once, and the two files the pages load (`settings.css`, `settings.js`, served from
//! the binary so that the policy can forbid inline script and style). The webhooks page is in
//! `webhook_page`.

use std::fmt::Write;

use hyper::StatusCode;
use hyper::header::{self, HeaderName};

use super::{
    GRACE_CHOICES, cookie, expiry_choices, login_csrf_cookie, login_csrf_path, random_hex,
};
use crate::app::App;
use crate::developers::escape;
use crate::error::Error;
use crate::reply::Reply;
use crate::store::sessions::Session;
use crate::store::spaces::{self, Space, Viewer};
use crate::store::tokens::{self, Scope, TokenInfo};
use crate::store::users::Plan;

/// The pages' only script: a form with `data-confirm` asks first (the text is an attribute, so
/// the browser never runs it), and a button with `data-copy` copies the named field.
pub(super) const SCRIPT: &str = include_str!("settings.js");
pub(super) const STYLE: &str = include_str!("settings.css");

pub(super) fn login_form(app: &App, status: StatusCode, problem: &str) -> Result<Reply, Error> {
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

/// The settings page, with the tokens just minted (shown this once) or a form's problem.
pub(super) fn settings_page(
    app: &App,
    session: &Session,
    shown: Result<&[String], String>,
) -> Result<Reply, Error> {
    let user = &session.user;
    let (mut tokens, spaces) = app.store.read(|conn| {
        Ok((
            tokens::list_tokens(conn, Some(&user.id))?,
            all_spaces(conn, &user.id)?,
        ))
    })?;
    let now = crate::time::now();
    // Revoked ones go; one in its rotation grace stays (it still works) until the grace ends.
    tokens.retain(|t| t.revoked_at.as_deref().is_none_or(|at| at > now.as_str()));
    tokens.reverse();
    let csrf = escape(&session.csrf);
    let mut body = String::from(
        "<h2>API Tokens</h2><p>Personal tokens let scripts and integrations use the API as you. \
         Use one token per integration, so you can revoke one without breaking the others.</p>",
    );
    match shown {
        Ok(new_tokens) => {
            for (i, secret) in new_tokens.iter().enumerate() {
                body.push_str(&shown_once_card(
                    "new-token",
                    i,
                    "Your new token",
                    "<strong>Copy it now. It will not be shown again:</strong> only a hash is kept.",
                    secret,
                ));
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
        let max_days = app.config.tokens.max_lifetime_days;
        let mut expiry_options = String::new();
        for (value, days) in expiry_choices(max_days) {
            let label = days.map_or("Never".to_string(), |d| format!("{d} days"));
            let _ = write!(expiry_options, "<option value=\"{value}\">{label}</option>");
        }
        let expiry_rule = max_days.map_or(String::new(), |max| {
            format!("<p class=\"muted\">Tokens on this server expire within {max} days.</p>")
        });
        let mut space_options = String::new();
        for space in &spaces {
            let _ = write!(
                space_options,
                "<option value=\"{}\">{}</option>",
                escape(&space.id),
                escape(&space.name)
            );
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
             {expiry_rule}\
             <label for=\"spaces\">Spaces</label>\
             <select id=\"spaces\" name=\"spaces\" multiple size=\"{}\" aria-describedby=\"spaces-hint\">{space_options}</select>\
             <p id=\"spaces-hint\" class=\"muted\">Select none for all your spaces, or the only ones \
             the token may reach (Ctrl or ⌘ to select several).</p>\
             <button type=\"submit\">Create token</button></form>",
            spaces.len().clamp(2, 6)
        );
    }
    body.push_str(&token_table(&tokens, &spaces, &csrf, &now));
    Ok(signed_in_page(
        StatusCode::OK,
        session,
        Section::Security,
        &body,
    ))
}

/// A secret shown this once, with a copy button: the `n`th of its kind on the page (the first
/// keeps the plain ids `{id}` and `copy`; those made in other tabs get numbered ones). `title` is
/// text, `warning` HTML.
pub(super) fn shown_once_card(
    id: &str,
    n: usize,
    title: &str,
    warning: &str,
    secret: &str,
) -> String {
    let suffix = if n == 0 {
        String::new()
    } else {
        format!("-{}", n + 1)
    };
    format!(
        "<section class=\"card new-token\" aria-labelledby=\"{id}-title{suffix}\">\
         <h3 id=\"{id}-title{suffix}\">{}</h3><p class=\"warning\">{warning}</p>\
         <div class=\"copy\"><input id=\"{id}{suffix}\" readonly value=\"{}\" aria-label=\"{}\">\
         <button type=\"button\" id=\"copy{suffix}\" data-copy=\"{id}{suffix}\">Copy</button></div></section>",
        escape(title),
        escape(secret),
        escape(title),
    )
}

/// The settings pages a signed-in user moves between.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Security,
    Webhooks,
}

impl Section {
    const ALL: [Section; 2] = [Section::Security, Section::Webhooks];

    fn title(self) -> &'static str {
        match self {
            Section::Security => "Security",
            Section::Webhooks => "Webhooks",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Section::Security => "/settings/security",
            Section::Webhooks => "/settings/webhooks",
        }
    }
}

/// A settings page for a signed-in user: the pages' navigation, who is signed in (with "Sign
/// out"), then `body`.
pub(super) fn signed_in_page(
    status: StatusCode,
    session: &Session,
    current: Section,
    body: &str,
) -> Reply {
    let mut nav = String::from("<nav class=\"tabs\" aria-label=\"Settings\">");
    for section in Section::ALL {
        let here = if section == current {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            nav,
            "<a href=\"{}\"{here}>{}</a>",
            section.path(),
            section.title()
        );
    }
    nav.push_str("</nav>");
    let signed_in = format!(
        "<div class=\"who\"><p class=\"muted\">Signed in as {} · plan {}</p>\
         <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" class=\"secondary\">Sign out</button></form></div>{body}",
        escape(&session.user.email),
        session.user.plan,
        escape(&session.csrf),
    );
    frame(status, current.title(), &nav, &signed_in)
}

/// Every space the user is a member of, in creation order (the picker, and names for the table).
fn all_spaces(conn: &rusqlite::Connection, user_id: &str) -> Result<Vec<Space>, Error> {
    const PAGE: usize = 200;
    let mut all: Vec<Space> = Vec::new();
    loop {
        let after = all.last().map(|space| space.id.clone());
        let page =
            spaces::list_spaces_for_user(conn, Viewer::user(user_id), after.as_deref(), PAGE)?;
        let done = page.len() < PAGE;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

/// A timestamp's date, for the table (escaped: a hand-edited row may hold anything).
fn day(at: &str) -> String {
    escape(at.get(..10).unwrap_or(at))
}

/// Tokens that expire within this many days are marked.
const EXPIRES_SOON_DAYS: i64 = 7;

/// The live tokens, newest first, each with its Rotate and Revoke buttons. `now` is a timestamp.
pub(super) fn token_table(tokens: &[TokenInfo], spaces: &[Space], csrf: &str, now: &str) -> String {
    if tokens.is_empty() {
        return "<p class=\"muted\">No active tokens.</p>".into();
    }
    let mut html = String::from(
        "<div class=\"table\"><table><caption>Active tokens</caption><tr><th scope=\"col\">Name</th>\
         <th scope=\"col\">Token</th><th scope=\"col\">Access</th><th scope=\"col\">Spaces</th>\
         <th scope=\"col\">Created</th><th scope=\"col\">Last used</th><th scope=\"col\">Expires</th>\
         <th scope=\"col\"><span class=\"sr\">Actions</span></th></tr>",
    );
    let soon = crate::time::secs_from_now(EXPIRES_SOON_DAYS * 86_400);
    let prefix_of = |id: &str| {
        tokens
            .iter()
            .find(|t| t.id == id)
            .map_or("an older token".to_string(), |t| {
                format!("<code>{}…</code>", escape(&t.prefix))
            })
    };
    for token in tokens {
        let name = escape(&token.name);
        let mut about = String::new();
        if let Some(from) = &token.rotated_from {
            let _ = write!(
                about,
                "<br><small class=\"muted\">replaces {}</small>",
                prefix_of(from)
            );
        }
        let reach = match &token.spaces {
            None => "All".to_string(),
            Some(ids) => ids
                .iter()
                .map(|id| {
                    spaces
                        .iter()
                        .find(|space| space.id == *id)
                        .map_or("(a space you left)".to_string(), |space| {
                            escape(&space.name)
                        })
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
        let last_used = match (&token.last_used_at, &token.last_used_ip) {
            (None, _) => "Never".to_string(),
            (Some(at), Some(ip)) => format!(
                "{} <small class=\"muted\">from {}</small>",
                day(at),
                escape(ip)
            ),
            (Some(at), None) => day(at),
        };
        let ends = match (&token.replaced_by, token.ends_at()) {
            (Some(by), Some(at)) => format!(
                "<strong class=\"soon\">Replaced by {}; works until {} UTC</strong>",
                prefix_of(by),
                escape(&at.get(..16).unwrap_or(at).replace('T', " "))
            ),
            (_, None) => "Never".to_string(),
            (_, Some(at)) if at <= now => {
                format!("<strong class=\"soon\">Expired {}</strong>", day(at))
            }
            (_, Some(at)) if at <= soon.as_str() => {
                format!("<strong class=\"soon\">{} (soon)</strong>", day(at))
            }
            (_, Some(at)) => day(at),
        };
        let id = escape(&token.id);
        let rotate = if token.replaced_by.is_some() || token.ends_at().is_some_and(|at| at <= now) {
            String::new()
        } else {
            let mut options = String::new();
            for (value, label, _) in GRACE_CHOICES {
                let _ = write!(options, "<option value=\"{value}\">{label}</option>");
            }
            format!(
                "<form method=\"post\" action=\"/settings/security/tokens/{id}/rotate\" class=\"rotate\" \
                 data-confirm=\"Rotate the token {name}? A new token replaces it, shown once.\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <select name=\"grace\" aria-label=\"When the old {name} stops working\">{options}</select>\
                 <button type=\"submit\" class=\"secondary\" aria-label=\"Rotate {name}\">Rotate</button></form>"
            )
        };
        let _ = write!(
            html,
            "<tr><td>{name}{about}</td><td><code>{}…</code></td><td>{}</td><td>{reach}</td><td>{}</td>\
             <td>{last_used}</td><td>{ends}</td><td>{rotate}\
             <form method=\"post\" action=\"/settings/security/tokens/{id}/revoke\" \
             data-confirm=\"Revoke the token {name}? Anything using it stops working at once.\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" class=\"danger\" aria-label=\"Revoke {name}\">Revoke</button></form></td></tr>",
            escape(&token.prefix),
            if token.scope == Scope::Read {
                "Read only"
            } else {
                "Read and write"
            },
            day(&token.created_at),
        );
    }
    html.push_str("</table></div>");
    html
}

/// A page for anyone (the sign-in form, a refusal).
pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Reply {
    frame(status, title, "<p class=\"muted\">Settings</p>", body)
}

/// The HTML document: `above` (HTML) goes over the `<h1>`.
fn frame(status: StatusCode, title: &str, above: &str, body: &str) -> Reply {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · ktasks</title>\
         <link rel=\"stylesheet\" href=\"/assets/settings.css\"><script src=\"/assets/settings.js\" defer></script>\
         </head><body><main>{above}<h1>{}</h1>{body}</main></body></html>",
        escape(title),
        escape(title)
    );
    let mut reply = Reply::bytes("text/html; charset=utf-8", html.into());
    reply.status = status;
    with_page_headers(reply)
}

/// The script or the stylesheet. Cached for an hour: they change only with the binary.
pub(super) fn asset(content_type: &'static str, text: &'static str) -> Reply {
    Reply::bytes(
        content_type,
        hyper::body::Bytes::from_static(text.as_bytes()),
    )
    .with_header(header::CACHE_CONTROL, "public, max-age=3600")
    .with_header(HeaderName::from_static("x-content-type-options"), "nosniff")
}

/// A page that says one thing, with a link `back`.
pub(super) fn message_page(status: StatusCode, title: &str, message: &str, back: &str) -> Reply {
    page(
        status,
        title,
        &format!(
            "<p class=\"card\">{}</p><p><a href=\"{}\">Back</a></p>",
            escape(message),
            escape(back)
        ),
    )
}

pub(super) fn redirect(location: &str) -> Reply {
    let mut reply = Reply::no_content().with_header(header::LOCATION, location);
    reply.status = StatusCode::SEE_OTHER;
    with_page_headers(reply)
}

pub(super) fn with_page_headers(reply: Reply) -> Reply {
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
