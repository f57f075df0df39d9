//! `/api/webhooks` (docs/webhooks.md). Managing a space's webhooks, reads included, needs the
//! owner or admin role: a webhook's URL and deliveries say where the space's data goes. Members
//! and viewers get 403, people outside the space 404. The checks and changes below the handlers
//! (`check_url`, `events`, `managed_webhook`, `create_managed`, ...) are the settings page's too
//! (`web::webhooks`).

use hyper::StatusCode;

use crate::app::{ApiRequest, Site};
use crate::auth::Principal;
use crate::error::Error;
use crate::json::Body;
use crate::query::decode_cursor;
use crate::reply::Reply;
use crate::store::spaces::{self, Role, Viewer};
use crate::store::webhooks::{
    self, ALL_EVENTS, Actor, EventType, MAX_PER_SPACE, NewWebhook, Webhook, WebhookChanges,
};
use crate::store::{Snapshot, Tx, Writes};
use crate::webhooks::{send, target};

const FIELDS: &[&str] = &["spaceId", "url", "events", "description", "active"];

/// The longest `description`.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// How long the old secret keeps signing after a rotation.
const ROTATION_GRACE_SECS: i64 = 24 * 3600;

pub fn list(
    site: &Site,
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    request: &ApiRequest,
) -> Result<Reply, Error> {
    super::list_in_space(
        site,
        snapshot,
        principal,
        request,
        require_manage,
        webhooks::list_webhooks,
    )
}

pub fn get(
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    request: &ApiRequest,
    id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let webhook = snapshot.read(|conn| managed_webhook(conn, principal.viewer(), id))?;
    Ok(Reply::ok(&webhook))
}

/// POST: `spaceId`, `url`, `events`; `description`, `active`. The answer holds the secret, the
/// only time it is shown.
pub fn create(
    site: &Site,
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let body = Body::parse(&request.headers, &request.body, FIELDS)?;
    let space_id = body.required_string("spaceId")?;
    let url = check_url(site, body.required_string("url")?)?;
    let events = events(body.optional_string_array("events", MAX_EVENT_ENTRIES)?)?;
    let description = description(&body)?.flatten();
    let active = body.optional_bool("active")?.unwrap_or(true);
    let secret = send::new_secret();
    let new = NewWebhook {
        space_id,
        url,
        events,
        description,
        active,
    };
    let webhook = writes.write(|tx| create_managed(tx, principal.viewer(), &new, &secret))?;
    let mut value = serde_json::to_value(&webhook).expect("a webhook serializes");
    value["secret"] = secret.into();
    let location = format!(
        "{}/api/webhooks/{}",
        site.base_url(&request.headers),
        webhook.id
    );
    // A secret must not be kept by a cache between here and the client.
    Ok(Reply::created(&value, &location).with_header(hyper::header::CACHE_CONTROL, "no-store"))
}

/// PATCH: `url`, `events`, `description` (`null` clears), `active` (`true` clears
/// `disabledReason`).
pub fn update(
    site: &Site,
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let body = Body::parse(&request.headers, &request.body, &FIELDS[1..])?;
    let changes = WebhookChanges {
        url: body
            .patch_required_string("url")?
            .map(|url| check_url(site, url))
            .transpose()?,
        events: match body.patch_required_array("events", MAX_EVENT_ENTRIES)? {
            Some(entries) => Some(events(Some(entries))?),
            None => None,
        },
        description: description(&body)?,
        active: body.optional_bool("active")?,
    };
    let webhook = writes.write(|tx| update_managed(tx, principal.viewer(), id, &changes))?;
    Ok(Reply::ok(&webhook))
}

/// DELETE: the webhook and its undelivered events.
pub fn delete(
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    writes.write(|tx| delete_managed(tx, principal.viewer(), id))?;
    Ok(Reply::no_content())
}

/// POST rotate-secret: a new secret; the old one signs alongside it for 24 hours.
pub fn rotate_secret(
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let secret = writes.write(|tx| rotate_managed(tx, principal.viewer(), id))?;
    Ok(Reply::ok(&serde_json::json!({ "secret": secret }))
        .with_header(hyper::header::CACHE_CONTROL, "no-store"))
}

/// POST test: a `webhook.test` event for this webhook, whatever it subscribes to (202).
pub fn test(
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let actor = Actor {
        user_id: &principal.user.id,
        token_id: Some(&principal.token.id),
    };
    let event_id = writes.write(|tx| test_managed(tx, principal.viewer(), &actor, id))?;
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "eventId": event_id }),
    ))
}

/// GET deliveries: the webhook's attempts, newest first.
pub fn deliveries(
    site: &Site,
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    request: &ApiRequest,
    id: &str,
) -> Result<Reply, Error> {
    let query = super::query(request, &["limit", "cursor"])?;
    let limit = query.limit()?;
    let before = query.get("cursor").map(decode_cursor).transpose()?;
    let rows = snapshot.read(|conn| {
        managed_webhook(conn, principal.viewer(), id)?;
        webhooks::list_deliveries(conn, id, before.as_deref(), limit + 1)
    })?;
    Ok(super::page(
        site,
        request,
        &query,
        rows,
        limit,
        |delivery| delivery.id.clone(),
        |items| Reply::ok(&items),
    ))
}

/// The webhook if the user manages its space: 404 outside it, 403 below admin.
pub fn managed_webhook(
    conn: &rusqlite::Connection,
    viewer: Viewer<'_>,
    id: &str,
) -> Result<Webhook, Error> {
    let webhook = webhooks::find_webhook(conn, id)?.ok_or(Error::NotFound)?;
    let role = spaces::role_in_space(conn, &webhook.space_id, viewer)?.ok_or(Error::NotFound)?;
    require_manage(role)?;
    Ok(webhook)
}

// The changes themselves, each checking that `viewer` manages the webhook's space in the
// change's own transaction. The API's handlers and the settings page (`web::webhooks`) both call
// these, so a change obeys the same rules whichever way it comes.

/// Creates a webhook in a space the user manages (404 outside it, 403 below admin), unless the
/// space holds `MAX_PER_SPACE` already (409, field `spaceId`).
pub fn create_managed(
    tx: &Tx<'_>,
    viewer: Viewer<'_>,
    new: &NewWebhook,
    secret: &str,
) -> Result<Webhook, Error> {
    let space = spaces::find_space_for_user(tx, &new.space_id, viewer)?.ok_or(Error::NotFound)?;
    require_manage(space.role)?;
    if webhooks::count_in_space(tx, &new.space_id)? >= MAX_PER_SPACE {
        return Err(Error::Conflict {
            field: Some("spaceId".into()),
            message: format!(
                "this space already has {MAX_PER_SPACE} webhooks, the most it can hold; \
                 delete one, or subscribe one to more events"
            ),
        });
    }
    webhooks::create_webhook(tx, new, secret)
}

pub fn update_managed(
    tx: &Tx<'_>,
    viewer: Viewer<'_>,
    id: &str,
    changes: &WebhookChanges,
) -> Result<Webhook, Error> {
    managed_webhook(tx, viewer, id)?;
    webhooks::update_webhook(tx, id, changes)
}

pub fn delete_managed(tx: &Tx<'_>, viewer: Viewer<'_>, id: &str) -> Result<(), Error> {
    managed_webhook(tx, viewer, id)?;
    webhooks::delete_webhook(tx, id)
}

/// A new secret, returned; the old one signs alongside it for 24 hours.
pub fn rotate_managed(tx: &Tx<'_>, viewer: Viewer<'_>, id: &str) -> Result<String, Error> {
    managed_webhook(tx, viewer, id)?;
    let secret = send::new_secret();
    webhooks::rotate_secret(
        tx,
        id,
        &secret,
        &crate::time::secs_from_now(ROTATION_GRACE_SECS),
    )?;
    Ok(secret)
}

/// A `webhook.test` event for an active webhook (409 when it is switched off); its id.
pub fn test_managed(
    tx: &Tx<'_>,
    viewer: Viewer<'_>,
    actor: &Actor<'_>,
    id: &str,
) -> Result<String, Error> {
    let webhook = managed_webhook(tx, viewer, id)?;
    if !webhook.active {
        return Err(Error::Conflict {
            field: None,
            message: "this webhook is switched off; switch it on (`active: true`) to send to it \
                      again"
                .into(),
        });
    }
    Ok(webhooks::emit_test(tx, id, actor))
}

/// 403 unless owner or admin.
pub fn require_manage(role: Role) -> Result<(), Error> {
    match role {
        Role::Owner | Role::Admin => Ok(()),
        _ => Err(Error::Forbidden(format!(
            "managing webhooks needs the owner or admin role in the space; yours is {role}"
        ))),
    }
}

/// `events` has at most this many entries (there are fewer distinct ones).
const MAX_EVENT_ENTRIES: usize = 50;

/// A non-empty list of event types or `*`, each kept once, in the order given.
pub fn events(entries: Option<Vec<String>>) -> Result<Vec<String>, Error> {
    let entries = entries.ok_or_else(|| {
        Error::validation(
            "events",
            "`events` is required: an array of event types, or [\"*\"] for all",
        )
    })?;
    if entries.is_empty() {
        return Err(Error::validation(
            "events",
            "`events` must name at least one event type, or \"*\" for all",
        ));
    }
    let mut kept: Vec<String> = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry != ALL_EVENTS && EventType::parse(&entry).is_none() {
            return Err(Error::validation(
                "events",
                format!(
                    "unknown event type {entry:?}; the types are \"*\", {}",
                    EventType::ALL.join(", ")
                ),
            ));
        }
        if !kept.contains(&entry) {
            kept.push(entry);
        }
    }
    Ok(kept)
}

/// At most `MAX_DESCRIPTION_CHARS`, kept as given (like a task's description, it is free text).
fn description(body: &Body) -> Result<Option<Option<String>>, Error> {
    body.checked_patch_string("description", |field, text| {
        if text.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(Error::validation(
                field,
                format!("`{field}` must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        Ok(text)
    })
}

/// The URL rules and the SSRF guard (`webhooks::target`), names resolved: 400 with field `url`.
pub fn check_url(site: &Site, url: String) -> Result<String, Error> {
    target::check_url(&url, site.webhook_targets, true)
        .map(String::from)
        .map_err(|reason| Error::validation("url", reason))
}
