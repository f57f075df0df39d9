//! The webhooks page's HTML: for each space the user owns or administers, its webhooks, each
//! with its buttons, its "Edit" form and its last deliveries; the "New webhook" form; secrets made
//! since the last view, shown once; a refused form with its problem and what was typed.

use std::fmt::Write;

use hyper::StatusCode;

use super::pages::{Section, shown_once_card, signed_in_page};
use super::webhooks::{Draft, FormOf, NewSecret, Problem};
use crate::api::webhooks::{MAX_DESCRIPTION_CHARS, require_manage};
use crate::app::App;
use crate::developers::escape;
use crate::error::Error;
use crate::reply::Reply;
use crate::store::sessions::Session;
use crate::store::spaces::{self, Space};
use crate::store::webhooks::{
    self, ALL_EVENTS, Delivery, DeliveryStatus, EventType, MAX_PER_SPACE, Webhook,
};

/// The deliveries shown per webhook (SPEC section 9); the API pages through the rest.
const DELIVERIES_SHOWN: usize = 20;

/// A delivery's error is cut to this many characters on the page (it holds up to 1 KiB of the
/// receiver's answer; the API has all of it).
const ERROR_SHOWN_CHARS: usize = 160;

/// A space the user manages, with its webhooks and each one's last deliveries, newest first.
struct ManagedSpace {
    space: Space,
    webhooks: Vec<(Webhook, Vec<Delivery>)>,
}

/// Reads the user's managed spaces, in one snapshot.
fn managed_spaces(conn: &rusqlite::Connection, user_id: &str) -> Result<Vec<ManagedSpace>, Error> {
    const PAGE: usize = 200;
    let mut managed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = spaces::list_spaces_for_user(
            conn,
            spaces::Viewer::user(user_id),
            after.as_deref(),
            PAGE,
        )?;
        after = page.last().map(|space| space.id.clone());
        let last_page = page.len() < PAGE;
        for space in page {
            if require_manage(space.role).is_err() {
                continue;
            }
            let mut with_deliveries = Vec::new();
            for webhook in webhooks::list_webhooks(conn, &space.id, None, MAX_PER_SPACE as usize)? {
                let deliveries =
                    webhooks::list_deliveries(conn, &webhook.id, None, DELIVERIES_SHOWN)?;
                with_deliveries.push((webhook, deliveries));
            }
            managed.push(ManagedSpace {
                space,
                webhooks: with_deliveries,
            });
        }
        if last_page {
            return Ok(managed);
        }
    }
}

/// The page, with `shown` (secrets made since the last view, shown this once) and the `problem`
/// of a refused form.
pub(super) fn render(
    app: &App,
    session: &Session,
    shown: &[NewSecret],
    problem: Option<&Problem>,
) -> Result<Reply, Error> {
    let spaces = app
        .store
        .snapshot(|snapshot| snapshot.read(|conn| managed_spaces(conn, &session.user.id)))??;
    let csrf = escape(&session.csrf);
    let mut body = String::from(
        "<p>Webhooks tell your integrations (Zapier, n8n, Make, your own scripts) about changes \
         in a space as they happen: a signed <code>POST</code> to your URL for each event, \
         following <a href=\"https://www.standardwebhooks.com/\">Standard Webhooks</a>. \
         The owners and admins of a space manage its webhooks.</p>",
    );
    let found = |id: &str| {
        spaces
            .iter()
            .flat_map(|managed| &managed.webhooks)
            .find(|(webhook, _)| webhook.id == id)
            .map(|(webhook, _)| webhook)
    };
    for (n, new) in shown.iter().enumerate() {
        let Some(webhook) = found(&new.webhook_id) else {
            continue; // deleted meanwhile, in another tab
        };
        let (title, grace) = if new.rotated {
            (
                "The new signing secret",
                " The old secret keeps signing too, for 24 hours: switch your endpoint over \
                 within that time.",
            )
        } else {
            ("The signing secret of the new webhook", "")
        };
        let warning = format!(
            "<strong>Copy it now. It will not be shown again.</strong> It signs every delivery \
             to <code>{}</code>; your endpoint checks the <code>webhook-signature</code> header \
             with it.{grace}",
            escape(&webhook.url)
        );
        body.push_str(&shown_once_card(
            "new-secret",
            n,
            title,
            &warning,
            &new.secret,
        ));
    }
    // A problem whose form is not on the page (its webhook was deleted meanwhile) goes on top.
    if let Some(problem) = problem
        && let FormOf::Webhook(id) = &problem.form
        && found(id).is_none()
    {
        push_problem(&mut body, &problem.message);
    }
    if spaces.is_empty() {
        body.push_str(
            "<p class=\"card\">You are not an owner or admin of any space, so there are no \
             webhooks for you to manage here.</p>",
        );
        return Ok(signed_in_page(
            StatusCode::OK,
            session,
            Section::Webhooks,
            &body,
        ));
    }
    let none_yet = spaces.iter().all(|managed| managed.webhooks.is_empty());
    new_webhook_form(&mut body, &spaces, &csrf, problem, none_yet);
    for managed in &spaces {
        let space = &managed.space;
        let _ = write!(
            body,
            "<section class=\"space\" aria-labelledby=\"space-{id}\"><h2 id=\"space-{id}\">{}</h2>",
            escape(&space.name),
            id = escape(&space.id),
        );
        if managed.webhooks.is_empty() {
            body.push_str("<p class=\"muted\">No webhooks in this space.</p>");
        }
        for (webhook, deliveries) in &managed.webhooks {
            let problem = problem.filter(|p| p.form == FormOf::Webhook(webhook.id.clone()));
            webhook_card(&mut body, webhook, deliveries, &csrf, problem);
        }
        body.push_str("</section>");
    }
    Ok(signed_in_page(
        StatusCode::OK,
        session,
        Section::Webhooks,
        &body,
    ))
}

fn push_problem(body: &mut String, message: &str) {
    let _ = write!(
        body,
        "<p class=\"problem\" role=\"alert\">{}</p>",
        escape(message)
    );
}

/// "New webhook", folded once there are webhooks (unfolded again when it was refused).
fn new_webhook_form(
    body: &mut String,
    spaces: &[ManagedSpace],
    csrf: &str,
    problem: Option<&Problem>,
    none_yet: bool,
) {
    let problem = problem.filter(|p| p.form == FormOf::NewWebhook);
    let draft = problem.and_then(|p| p.draft.as_ref());
    let empty = Draft::default();
    let typed = draft.unwrap_or(&empty);
    let _ = write!(
        body,
        "<details class=\"card\" id=\"new-webhook\"{}><summary>New webhook</summary>\
         <form method=\"post\" action=\"/settings/webhooks\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">",
        if none_yet || problem.is_some() {
            " open"
        } else {
            ""
        }
    );
    if let Some(problem) = problem {
        push_problem(body, &problem.message);
    }
    body.push_str(
        "<label for=\"new-space\">Space</label><select id=\"new-space\" name=\"spaceId\">",
    );
    for managed in spaces {
        let space = &managed.space;
        let _ = write!(
            body,
            "<option value=\"{}\"{}>{}</option>",
            escape(&space.id),
            if typed.space_id == space.id {
                " selected"
            } else {
                ""
            },
            escape(&space.name)
        );
    }
    body.push_str("</select>");
    webhook_fields(body, "new", typed);
    body.push_str("<button type=\"submit\">Add webhook</button></form></details>");
}

/// The URL, events and description inputs of a webhook's form, filled with `typed`; their ids
/// start with `prefix`.
fn webhook_fields(body: &mut String, prefix: &str, typed: &Draft) {
    let _ = write!(
        body,
        "<label for=\"{prefix}-url\">Payload URL</label>\
         <input id=\"{prefix}-url\" name=\"url\" type=\"url\" required maxlength=\"2000\" \
         placeholder=\"https://hooks.example.com/ktasks\" value=\"{}\">\
         <fieldset class=\"events\"><legend>Events</legend>",
        escape(&typed.url)
    );
    let choices = std::iter::once((ALL_EVENTS, "All events (*)".to_string())).chain(
        EventType::ALL
            .iter()
            .map(|event| (*event, event.to_string())),
    );
    for (n, (value, label)) in choices.enumerate() {
        let _ = write!(
            body,
            "<label class=\"check\"><input type=\"checkbox\" id=\"{prefix}-event-{n}\" \
             name=\"events\" value=\"{value}\"{}>{}</label>",
            if typed.events.iter().any(|typed| typed == value) {
                " checked"
            } else {
                ""
            },
            escape(&label)
        );
    }
    let _ = write!(
        body,
        "</fieldset><label for=\"{prefix}-description\">Description <span class=\"muted\">\
         (optional)</span></label>\
         <input id=\"{prefix}-description\" name=\"description\" maxlength=\"{MAX_DESCRIPTION_CHARS}\" \
         placeholder=\"n8n: new tasks to the team chat\" value=\"{}\">",
        escape(&typed.description)
    );
}

fn webhook_card(
    body: &mut String,
    webhook: &Webhook,
    deliveries: &[Delivery],
    csrf: &str,
    problem: Option<&Problem>,
) {
    let id = escape(&webhook.id);
    let url = escape(&webhook.url);
    let events = if webhook.events.iter().any(|event| event == ALL_EVENTS) {
        "all events".to_string()
    } else {
        webhook
            .events
            .iter()
            .map(|event| format!("<code>{}</code>", escape(event)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = write!(
        body,
        "<article class=\"card webhook\" id=\"webhook-{id}\" aria-labelledby=\"webhook-{id}-url\">\
         <h3 id=\"webhook-{id}-url\"><code>{url}</code></h3>"
    );
    if let Some(description) = &webhook.description {
        let _ = write!(body, "<p>{}</p>", escape(description));
    }
    let _ = write!(
        body,
        "<p class=\"muted\">Events: {events} · added {}</p>",
        &webhook.created_at[..10]
    );
    if webhook.active {
        body.push_str("<p><span class=\"status delivered\">active</span></p>");
    } else {
        let _ = write!(
            body,
            "<p class=\"warning\"><strong>Switched off.</strong> {} Events wait until it is \
             switched on again.</p>",
            escape(
                webhook
                    .disabled_reason
                    .as_deref()
                    .unwrap_or("Switched off by hand.")
            )
        );
    }
    let editing = problem.and_then(|p| p.draft.as_ref());
    if let Some(problem) = problem.filter(|_| editing.is_none()) {
        push_problem(body, &problem.message);
    }
    let form = |action: &str, fields: &str, confirm: Option<String>| {
        format!(
            "<form method=\"post\" action=\"/settings/webhooks/{id}/{action}\"{}>\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{fields}",
            confirm.map_or(String::new(), |question| format!(
                " data-confirm=\"{}\"",
                escape(&question)
            ))
        )
    };
    body.push_str("<div class=\"actions\">");
    if webhook.active {
        let _ = write!(
            body,
            "{}<button type=\"submit\" class=\"secondary\" aria-label=\"Send a test event to {url}\">\
             Send test</button></form>",
            form("test", "", None)
        );
    }
    let (wanted, label) = if webhook.active {
        ("false", "Switch off")
    } else {
        ("true", "Switch on")
    };
    let _ = write!(
        body,
        "{}<button type=\"submit\" class=\"secondary\" aria-label=\"{label}: {url}\">{label}</button></form>\
         {}<button type=\"submit\" class=\"secondary\" aria-label=\"Rotate the secret of {url}\">Rotate secret</button></form>\
         {}<button type=\"submit\" class=\"danger\" aria-label=\"Delete {url}\">Delete</button></form></div>",
        form(
            "toggle",
            &format!("<input type=\"hidden\" name=\"active\" value=\"{wanted}\">"),
            None
        ),
        form(
            "rotate",
            "",
            Some(format!(
                "Rotate the signing secret of {}? The new one is shown once; the old one keeps \
                 signing for 24 hours.",
                webhook.url
            ))
        ),
        form(
            "delete",
            "",
            Some(format!(
                "Delete the webhook {}? Its undelivered events are dropped.",
                webhook.url
            ))
        ),
    );
    let saved = Draft {
        space_id: webhook.space_id.clone(),
        url: webhook.url.clone(),
        events: webhook.events.clone(),
        description: webhook.description.clone().unwrap_or_default(),
    };
    let _ = write!(
        body,
        "<details class=\"edit\"{}><summary>Edit</summary>\
         <form method=\"post\" action=\"/settings/webhooks/{id}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">",
        if editing.is_some() { " open" } else { "" }
    );
    if let Some(problem) = problem.filter(|_| editing.is_some()) {
        push_problem(body, &problem.message);
    }
    webhook_fields(body, &format!("edit-{id}"), editing.unwrap_or(&saved));
    body.push_str("<button type=\"submit\">Save</button></form></details>");
    deliveries_table(body, &id, deliveries);
    body.push_str("</article>");
}

fn deliveries_table(body: &mut String, id: &str, deliveries: &[Delivery]) {
    if deliveries.is_empty() {
        body.push_str("<p class=\"muted\">No deliveries yet.</p>");
        return;
    }
    let _ = write!(
        body,
        "<div class=\"table\"><table class=\"deliveries\" id=\"deliveries-{id}\">\
         <caption>Last deliveries</caption><tr><th scope=\"col\">Time (UTC)</th>\
         <th scope=\"col\">Event</th><th scope=\"col\">Attempt</th><th scope=\"col\">Outcome</th>\
         <th scope=\"col\">Response</th><th scope=\"col\">Took</th><th scope=\"col\">Error</th></tr>"
    );
    for delivery in deliveries {
        let outcome = match delivery.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Failed => "failed",
        };
        let next = match (&delivery.next_attempt_at, delivery.status) {
            (Some(next), DeliveryStatus::Pending) => {
                format!(" <span class=\"muted\">retry {}</span>", when(next))
            }
            _ => String::new(),
        };
        let error = delivery.error.as_deref().map_or(String::new(), |error| {
            let mut shown: String = error.chars().take(ERROR_SHOWN_CHARS).collect();
            if shown.len() < error.len() {
                shown.push('…');
            }
            escape(&shown)
        });
        let _ = write!(
            body,
            "<tr class=\"delivery\"><td><time datetime=\"{}\">{}</time></td><td><code>{}</code></td>\
             <td>{}</td><td><span class=\"status {outcome}\">{outcome}</span>{next}</td><td>{}</td>\
             <td>{}</td><td class=\"error\">{error}</td></tr>",
            escape(&delivery.created_at),
            when(&delivery.created_at),
            escape(&delivery.event_type),
            delivery.attempt,
            delivery
                .response_status
                .map_or(String::new(), |status| status.to_string()),
            delivery
                .duration_ms
                .map_or(String::new(), |ms| format!("{ms} ms")),
        );
    }
    body.push_str("</table></div>");
}

/// `2026-11-29T08:00:01.000Z` as `2026-11-29 08:00:01`.
fn when(timestamp: &str) -> String {
    escape(&timestamp.get(..19).unwrap_or(timestamp).replace('T', " "))
}
