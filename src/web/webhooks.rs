//! Settings -> Webhooks (SPEC section 9, docs/webhooks.md): the forms that add, change, switch off
//! and on, rotate, test and delete the webhooks of the spaces the user owns or administers.
//!
//! Every change is the API's own (`api::webhooks`): the same checks of the URL (the SSRF guard
//! included), the events and the description, the same role check inside the change's
//! transaction, the same limit per space, the test event made by the user with no token. A form
//! the rules refuse comes back with its problem and what was typed; a webhook or space the user
//! does not manage (one of another space, or one where the user is a member or viewer) is "not
//! found", as another user's token is on the security page. A change that worked redirects to
//! the page (Post/Redirect/Get), which shows a new secret once.

use hyper::StatusCode;

use super::FormFields;
use super::pages::{message_page, redirect};
use super::webhook_page;
use crate::api::webhooks::{
    MAX_DESCRIPTION_CHARS, check_url, create_managed, delete_managed, events, managed_webhook,
    rotate_managed, test_managed, update_managed,
};
use crate::app::App;
use crate::error::Error;
use crate::query::Query;
use crate::reply::Reply;
use crate::store::sessions::Session;
use crate::store::spaces::Viewer;
use crate::store::webhooks::{ALL_EVENTS, Actor, NewWebhook, WebhookChanges};
use crate::validate;
use crate::webhooks::send;

const PAGE: &str = "/settings/webhooks";

/// The "New webhook" and "Edit" forms: the event checkboxes all post `events`.
pub(super) const FORM: &FormFields = &FormFields {
    known: &["csrf", "spaceId", "url", "events", "description"],
    lists: &["events"],
};

/// "Switch off" and "Switch on" post the state they want, so a second click (or a second tab)
/// cannot undo the first.
pub(super) const TOGGLE_FORM: &FormFields = &FormFields {
    known: &["csrf", "active"],
    lists: &[],
};

/// A secret made on the page, waiting to be shown once (`ShownOnce`).
pub struct NewSecret {
    pub webhook_id: String,
    pub secret: String,
    /// Rotated (the old secret signs too for 24 hours), rather than the secret of a new webhook.
    pub rotated: bool,
}

/// The form a problem belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FormOf {
    NewWebhook,
    /// An existing webhook: its "Edit" form when the problem has a draft, its buttons otherwise.
    Webhook(String),
}

/// A form the rules refused: which, why (the API's message), and what was typed into it.
pub(super) struct Problem {
    pub form: FormOf,
    pub message: String,
    pub draft: Option<Draft>,
}

/// The fields of a posted "New webhook" or "Edit" form, as typed.
#[derive(Debug, Default)]
pub(super) struct Draft {
    pub space_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
}

impl Draft {
    fn of(form: &Query) -> Draft {
        let text = |name| form.value(name).unwrap_or("").to_string();
        Draft {
            space_id: text("spaceId"),
            url: text("url"),
            events: form.all("events").into_iter().map(String::from).collect(),
            description: text("description"),
        }
    }

    /// The API's checks, in its order: the URL (with the SSRF guard), the events, the
    /// description (an empty one is none). Checked "all events" stands for every event, whatever
    /// else is checked beside it.
    fn checked(&self, app: &App) -> Result<(String, Vec<String>, Option<String>), Error> {
        let url = check_url(&app.site, self.url.trim().to_string())?;
        let mut events = events(Some(self.events.clone()))?;
        if events.iter().any(|event| event == ALL_EVENTS) {
            events = vec![ALL_EVENTS.to_string()];
        }
        let description = match self.description.trim() {
            "" => None,
            text => Some(validate::text(
                "description",
                text.to_string(),
                MAX_DESCRIPTION_CHARS,
            )?),
        };
        Ok((url, events, description))
    }
}

pub(super) fn create(
    app: &App,
    session: &Session,
    id_hash: [u8; 32],
    form: &Query,
) -> Result<Reply, Error> {
    let draft = Draft::of(form);
    let (url, events, description) = match draft.checked(app) {
        Ok(checked) => checked,
        Err(error) => return refused(app, session, FormOf::NewWebhook, error, Some(draft)),
    };
    let new = NewWebhook {
        space_id: draft.space_id.clone(),
        url,
        events,
        description,
        active: true,
    };
    let secret = send::new_secret();
    let user_id = &session.user.id;
    match app
        .store
        .write(|tx| create_managed(tx, Viewer::user(user_id), &new, &secret))
    {
        Ok(webhook) => {
            app.new_webhook_secrets.put(
                id_hash,
                NewSecret {
                    webhook_id: webhook.id,
                    secret,
                    rotated: false,
                },
            );
            Ok(redirect(PAGE))
        }
        Err(error) => refused(app, session, FormOf::NewWebhook, error, Some(draft)),
    }
}

/// "Edit": the URL, the events and the description.
pub(super) fn update(app: &App, session: &Session, id: &str, form: &Query) -> Result<Reply, Error> {
    let user_id = &session.user.id;
    let form_of = FormOf::Webhook(id.to_string());
    // "Not found" before any word on the URL: a webhook the user does not manage is not there.
    if let Err(error) = app
        .store
        .read(|conn| managed_webhook(conn, Viewer::user(user_id), id))
    {
        return refused(app, session, form_of, error, None);
    }
    let draft = Draft::of(form);
    let (url, events, description) = match draft.checked(app) {
        Ok(checked) => checked,
        Err(error) => return refused(app, session, form_of, error, Some(draft)),
    };
    let changes = WebhookChanges {
        url: Some(url),
        events: Some(events),
        description: Some(description),
        active: None,
    };
    match app
        .store
        .write(|tx| update_managed(tx, Viewer::user(user_id), id, &changes))
    {
        Ok(_) => Ok(redirect(&at(id))),
        Err(error) => refused(app, session, form_of, error, Some(draft)),
    }
}

/// "Switch off" / "Switch on": `active` is the state wanted; on clears `disabledReason`.
pub(super) fn toggle(app: &App, session: &Session, id: &str, form: &Query) -> Result<Reply, Error> {
    let form_of = FormOf::Webhook(id.to_string());
    let active = match form.boolean("active") {
        Ok(Some(active)) => active,
        Ok(None) | Err(_) => {
            let error = Error::validation("active", "`active` must be true or false");
            return refused(app, session, form_of, error, None);
        }
    };
    let changes = WebhookChanges {
        active: Some(active),
        ..WebhookChanges::default()
    };
    let user_id = &session.user.id;
    let changed = app
        .store
        .write(|tx| update_managed(tx, Viewer::user(user_id), id, &changes));
    after(app, session, form_of, changed.map(drop), &at(id))
}

/// "Rotate secret": the new one is shown once, at the top of the page.
pub(super) fn rotate(
    app: &App,
    session: &Session,
    id_hash: [u8; 32],
    id: &str,
) -> Result<Reply, Error> {
    let user_id = &session.user.id;
    let rotated = app
        .store
        .write(|tx| rotate_managed(tx, Viewer::user(user_id), id));
    let rotated = rotated.map(|secret| {
        app.new_webhook_secrets.put(
            id_hash,
            NewSecret {
                webhook_id: id.to_string(),
                secret,
                rotated: true,
            },
        );
    });
    after(app, session, FormOf::Webhook(id.to_string()), rotated, PAGE)
}

/// "Send test": a `webhook.test` event made by the user, with no token.
pub(super) fn test(app: &App, session: &Session, id: &str) -> Result<Reply, Error> {
    let actor = Actor {
        user_id: &session.user.id,
        token_id: None,
    };
    let sent = app
        .store
        .write(|tx| test_managed(tx, Viewer::user(&session.user.id), &actor, id));
    after(
        app,
        session,
        FormOf::Webhook(id.to_string()),
        sent.map(drop),
        &at(id),
    )
}

pub(super) fn delete(app: &App, session: &Session, id: &str) -> Result<Reply, Error> {
    let user_id = &session.user.id;
    let deleted = app
        .store
        .write(|tx| delete_managed(tx, Viewer::user(user_id), id));
    after(app, session, FormOf::Webhook(id.to_string()), deleted, PAGE)
}

/// The page at one webhook's card.
fn at(id: &str) -> String {
    format!("{PAGE}#webhook-{id}")
}

/// The answer to a change: the page (at `location`) when it was made, `refused` otherwise.
fn after(
    app: &App,
    session: &Session,
    form: FormOf,
    done: Result<(), Error>,
    location: &str,
) -> Result<Reply, Error> {
    match done {
        Ok(()) => Ok(redirect(location)),
        Err(error) => refused(app, session, form, error, None),
    }
}

/// A change the API's rules refused: "not found" for a webhook or space the user does not
/// manage; the page with the problem at its form for a broken rule (a bad URL, an unknown event,
/// the limit per space, a test to a webhook switched off). Anything else is the server's fault.
fn refused(
    app: &App,
    session: &Session,
    form: FormOf,
    error: Error,
    draft: Option<Draft>,
) -> Result<Reply, Error> {
    match error {
        Error::NotFound | Error::Forbidden(_) => Ok(message_page(
            StatusCode::NOT_FOUND,
            "Not found",
            match form {
                FormOf::NewWebhook => "No such space among those whose webhooks you manage.",
                FormOf::Webhook(_) => "No such webhook among those you manage.",
            },
            PAGE,
        )),
        Error::Validation { .. } | Error::Conflict { .. } => {
            let problem = Problem {
                form,
                message: error.to_string(),
                draft,
            };
            webhook_page::render(app, session, &[], Some(&problem))
        }
        other => Err(other),
    }
}
