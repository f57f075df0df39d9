//! The document's schemas: the objects, the request bodies, and the small schemas they are built
//! from (ids, names, slugs, colours, dates).

use serde_json::{Value, json};

use super::{ERROR_CODES, TIME, WEBHOOK_EVENT_TYPES};
use crate::store::projects::{Category, View};
use crate::store::spaces::Role;
use crate::store::tasks::Priority;
use crate::store::tokens::Scope;
use crate::store::users::Plan;
use crate::validate::{
    MAX_ASSIGNEES, MAX_DESCRIPTION_CHARS, MAX_LABELS, MAX_NAME_CHARS, MAX_TITLE_CHARS,
};

pub(super) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `schema`, or `null`. A reference becomes `anyOf` the two (its target's type cannot be widened
/// in place), keeping the description beside it.
pub(super) fn nullable(schema: Value) -> Value {
    let mut schema = schema;
    if let Some(target) = schema.get("$ref").cloned() {
        let mut either = json!({ "anyOf": [{ "$ref": target }, { "type": "null" }] });
        if let Some(description) = schema.get("description") {
            either["description"] = description.clone();
        }
        return either;
    }
    let kind = schema["type"].take();
    schema["type"] = json!([kind, "null"]);
    schema
}

/// `schema` with a description (replacing its own).
fn with_description(mut schema: Value, description: &str) -> Value {
    schema["description"] = json!(description);
    schema
}

pub(super) fn text(max: usize) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": max, "pattern": "\\S",
            "description": format!("1-{max} characters after trimming surrounding whitespace") })
}

/// A name: `text` without the characters `validate::is_unprintable` refuses.
pub(super) fn name(max: usize) -> Value {
    const ALLOWED: &str = r"[^\x00-\x1F\x7F-\x9F\u061C\u200E\u200F\u2028-\u202E\u2066-\u2069]";
    const VISIBLE: &str = r"[^\s\x00-\x1F\x7F-\x9F\u061C\u200E\u200F\u2028-\u202E\u2066-\u2069]";
    json!({ "type": "string", "minLength": 1, "maxLength": max,
            "pattern": format!("^{ALLOWED}*{VISIBLE}{ALLOWED}*$"),
            "description": format!("1-{max} characters after trimming surrounding whitespace; no control characters") })
}

pub(super) fn id(description: &str) -> Value {
    json!({ "type": "string", "format": "uuid", "description": description })
}

pub(super) fn slug() -> Value {
    json!({ "type": "string", "pattern": "^[a-z0-9-]{3,50}$", "description": "3-50 characters of a-z, 0-9 and -" })
}

pub(super) fn color() -> Value {
    json!({ "type": "string", "pattern": "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$",
            "description": "hex colour, #rgb or #rrggbb (stored lower-case)", "example": "#3b82f6" })
}

pub(super) fn timestamp() -> Value {
    json!({ "type": "string", "format": "date-time", "description": "RFC 3339, UTC, milliseconds", "example": TIME })
}

pub(super) fn date() -> Value {
    json!({ "type": "string", "format": "date", "description": "YYYY-MM-DD, a real calendar day", "example": "2027-01-15" })
}

pub(super) fn one_of(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

/// An object schema: every property listed, `required` as given, nothing else allowed.
pub(super) fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties, "additionalProperties": false })
}

pub(super) fn schemas() -> Value {
    let description = || json!({ "type": "string", "maxLength": MAX_DESCRIPTION_CHARS });
    let mut schemas = json!({
        "Error": object(&["error", "code"], json!({
            "error": { "type": "string", "description": "what went wrong, for a person" },
            "code": one_of(ERROR_CODES),
            "field": { "type": "string", "description": "the input field at fault, when there is exactly one" },
        })),
        "Health": object(&["status"], json!({ "status": { "const": "ok" } })),
        // Named enums, so that a generated client has one `Priority` and one `View` type for
        // requests and responses alike.
        "Priority": one_of(Priority::ALL),
        "View": one_of(View::ALL),
        "Me": object(&["user", "token"], json!({
            "user": object(&["id", "email", "name", "plan"], json!({
                "id": id("user id"), "email": { "type": "string" }, "name": { "type": "string" },
                "plan": one_of(Plan::ALL),
            })),
            "token": object(&["id", "name", "prefix", "scope", "expiresAt", "spaces"], json!({
                "id": id("token id"), "name": { "type": "string" },
                "prefix": { "type": "string", "pattern": "^kt_[0-9a-f]{5}$", "description": "first 8 characters of the token" },
                "scope": one_of(Scope::ALL),
                "expiresAt": with_description(nullable(timestamp()), "when the token stops working: its expiry, \
                    or the end of the grace a rotation gave it if that is sooner (as `Token-Expires-At`); null \
                    for a token that does not expire"),
                "spaces": with_description(nullable(json!({ "type": "array", "items": id("space id") })),
                    "the spaces this token is restricted to (it reaches only those of them you are still a \
                    member of), or null for all of your spaces"),
            })),
        })),
        "Space": object(
            &["id", "name", "slug", "description", "color", "personal", "role", "createdAt", "updatedAt"],
            json!({
                "id": id("space id"), "name": { "type": "string" }, "slug": slug(),
                "description": nullable(json!({ "type": "string" })), "color": nullable(color()),
                "personal": { "type": "boolean", "description": "the user's personal space (only its owner is a member)" },
                "role": { "type": "string", "enum": Role::ALL, "description": "the caller's role in the space" },
                "createdAt": timestamp(), "updatedAt": timestamp(),
            }),
        ),
        "NewSpace": object(&["name", "slug"], json!({
            "name": name(MAX_NAME_CHARS), "slug": slug(),
            "description": nullable(description()), "color": nullable(color()),
        })),
        "Member": object(&["userId", "name", "email", "role"], json!({
            "userId": id("user id"), "name": { "type": "string" }, "email": { "type": "string" },
            "role": one_of(Role::ALL),
        })),
        "Status": object(&["id", "name", "category", "position", "color"], json!({
            "id": id("status id"), "name": { "type": "string" }, "category": one_of(Category::ALL),
            "position": { "type": "integer" }, "color": nullable(color()),
        })),
        "Project": project(),
        "NewProject": object(&["spaceId", "name", "slug"], json!({
            "spaceId": id("the space to create the project in"), "name": name(MAX_NAME_CHARS),
            "slug": { "type": "string", "pattern": "^[a-z0-9-]{3,50}$",
                      "description": "3-50 characters of a-z, 0-9 and -; unique within the space" },
            "description": nullable(description()),
            "defaultView": { "$ref": "#/components/schemas/View", "description": "`kanban` when not given" },
            "color": nullable(color()),
        })),
        "ProjectPatch": object(&[], json!({
            "name": name(MAX_NAME_CHARS), "slug": slug(), "description": nullable(description()),
            "defaultView": reference("View"), "color": nullable(color()),
        })),
        "LabelRef": object(&["id", "name", "color"], json!({
            "id": id("label id"), "name": { "type": "string" }, "color": nullable(color()),
        })),
        "Label": object(&["id", "spaceId", "name", "color"], json!({
            "id": id("label id"), "spaceId": id("space id"), "name": { "type": "string" }, "color": nullable(color()),
        })),
        "Task": task(),
        "NewTask": object(&["projectId", "title"], task_fields(true)),
        "TaskPatch": object(&[], task_fields(false)),
        "AssigneeBody": object(&["userId"], json!({ "userId": id("a member of the task's space") })),
        // Plain objects, not `oneOf` unions: generators turn those into unions of empty-looking
        // models. Each field given names a label; at least one must be.
        "LabelBody": {
            "type": "object", "additionalProperties": false, "minProperties": 1,
            "dependentRequired": { "color": ["name"] },
            "properties": {
                "labelId": id("a label of the task's space"),
                "name": name(100),
                "color": color(),
            },
            "description": "a label by `labelId` and/or by `name` (found case-insensitively in the space, or \
                            created with `color`); each names a label to add, and `color` goes only with `name`",
        },
        "LabelDeleteBody": {
            "type": "object", "additionalProperties": false, "minProperties": 1,
            "properties": {
                "labelId": id("a label of the task's space"),
                "name": name(100),
            },
            "description": "`labelId` and/or `name`: each names a label to remove",
        },
    });
    for (name, schema) in webhook_schemas().as_object().into_iter().flatten() {
        schemas[name] = schema.clone();
    }
    schemas
}

/// Webhooks (docs/webhooks.md). A webhook's secret is only in the answers of the two operations
/// that make one, so it has schemas of its own rather than an optional field.
fn webhook_schemas() -> Value {
    json!({
        "WebhookEventType": one_of(WEBHOOK_EVENT_TYPES),
        "Webhook": object(&WEBHOOK_FIELDS, webhook_fields()),
        "WebhookWithSecret": webhook_with_secret(),
        "NewWebhook": object(&["spaceId", "url", "events"], json!({
            "spaceId": id("the space whose changes the webhook hears of"),
            "url": webhook_url(),
            "events": webhook_events(),
            "description": nullable(webhook_description()),
            "active": { "type": "boolean", "description": "`true` when not given; an inactive webhook records no events" },
        })),
        "WebhookPatch": object(&[], json!({
            "url": webhook_url(),
            "events": webhook_events(),
            "description": nullable(webhook_description()),
            "active": { "type": "boolean",
                        "description": "`false` switches the webhook off; `true` switches it on, clears `disabledReason` \
                                        and resumes its queued events" },
        })),
        "WebhookSecret": object(&["secret"], json!({ "secret": webhook_secret() })),
        "WebhookTestEvent": object(&["eventId"], json!({
            "eventId": id("the `webhook.test` event; its deliveries carry it as `webhook-id`"),
        })),
        "WebhookDelivery": object(
            &["id", "eventId", "eventType", "attempt", "status", "responseStatus", "error", "durationMs", "createdAt",
              "nextAttemptAt"],
            json!({
                "id": id("delivery attempt id"),
                "eventId": id("the event, the `webhook-id` of its every attempt"),
                "eventType": reference("WebhookEventType"),
                "attempt": { "type": "integer", "minimum": 1, "description": "1 for the first attempt at this event" },
                "status": { "type": "string", "enum": ["pending", "delivered", "failed"],
                            "description": "`delivered`: the receiver answered 2xx; `pending`: this attempt failed and \
                                            the next is due at `nextAttemptAt`; `failed`: this attempt failed and was \
                                            the last" },
                "responseStatus": nullable(json!({ "type": "integer",
                    "description": "the receiver's HTTP status; `null` when there was no HTTP answer" })),
                "error": nullable(json!({ "type": "string",
                    "description": "why the attempt failed without an HTTP answer (timeout, refused connection, refused \
                                    address), or the first 1 KiB of the body of a non-2xx answer" })),
                "durationMs": nullable(json!({ "type": "integer", "minimum": 0,
                    "description": "how long the attempt took, in milliseconds" })),
                "createdAt": { "type": "string", "format": "date-time", "description": "when the attempt was made" },
                "nextAttemptAt": nullable(json!({ "type": "string", "format": "date-time",
                    "description": "when the next attempt is due (only while `pending`)" })),
            }),
        ),
        "Actor": actor(),
        // What a webhook receives: `WebhookEvent` is the envelope; each entry of the document's
        // `webhooks` narrows its `type` and `data` to one of the `*EventData` below.
        "WebhookEvent": object(&["type", "timestamp", "data"], json!({
            "type": reference("WebhookEventType"),
            "timestamp": { "type": "string", "format": "date-time",
                           "description": "when the change was committed; the same on every retry" },
            "data": { "type": "object", "required": ["actor"], "properties": { "actor": reference("Actor") },
                      "description": "depends on `type`; always with the `actor` who made the change" },
        })),
        "TaskEventData": with_actor(task(), json!({})),
        "TaskAssigneeEventData": with_actor(task(), json!({
            "assigneeId": id("the user assigned or unassigned"),
        })),
        "TaskLabelEventData": with_actor(task(), json!({
            "labelId": id("the label added or removed"),
        })),
        "TaskDeletedEventData": with_actor(object(&["id", "projectId"], json!({
            "id": id("the deleted task"), "projectId": id("the project it was in"),
        })), json!({})),
        "ProjectEventData": with_actor(project(), json!({})),
        "WebhookTestEventData": with_actor(object(&["webhookId", "message"], json!({
            "webhookId": id("the webhook tested"), "message": { "type": "string", "description": "for a person" },
        })), json!({})),
    })
}

fn project() -> Value {
    object(
        &[
            "id",
            "spaceId",
            "name",
            "slug",
            "description",
            "defaultView",
            "color",
            "statuses",
            "createdAt",
            "updatedAt",
        ],
        json!({
            "id": id("project id"), "spaceId": id("space id"), "name": { "type": "string" }, "slug": slug(),
            "description": nullable(json!({ "type": "string" })), "defaultView": reference("View"),
            "color": nullable(color()),
            "statuses": { "type": "array", "items": reference("Status"), "description": "in board order" },
            "createdAt": timestamp(), "updatedAt": timestamp(),
        }),
    )
}

fn task() -> Value {
    object(
        &[
            "id",
            "projectId",
            "statusId",
            "title",
            "description",
            "priority",
            "dueDate",
            "startDate",
            "position",
            "parentId",
            "assignees",
            "labels",
            "completedAt",
            "createdBy",
            "createdAt",
            "updatedAt",
        ],
        json!({
            "id": id("task id"), "projectId": id("project id"), "statusId": id("status id"),
            "title": { "type": "string" }, "description": nullable(json!({ "type": "string" })),
            "priority": reference("Priority"), "dueDate": nullable(date()), "startDate": nullable(date()),
            "position": { "type": "number", "description": "order within the project; lists sort by position, then id" },
            "parentId": nullable(id("parent task id")),
            "assignees": { "type": "array", "items": id("user id") },
            "labels": { "type": "array", "items": reference("LabelRef") },
            "completedAt": nullable(json!({ "type": "string", "format": "date-time",
                "description": "set when the task enters a done status, cleared when it leaves" })),
            "createdBy": id("user id"), "createdAt": timestamp(), "updatedAt": timestamp(),
        }),
    )
}

/// The limits of a webhook's fields (docs/webhooks.md).
const MAX_WEBHOOK_URL_CHARS: usize = crate::webhooks::target::MAX_URL_CHARS;
const MAX_WEBHOOK_DESCRIPTION_CHARS: usize = crate::api::webhooks::MAX_DESCRIPTION_CHARS;

const WEBHOOK_FIELDS: [&str; 9] = [
    "id",
    "spaceId",
    "url",
    "events",
    "description",
    "active",
    "disabledReason",
    "createdAt",
    "updatedAt",
];

/// The webhook as created: `Webhook` and its `secret`.
fn webhook_with_secret() -> Value {
    let mut required = WEBHOOK_FIELDS.to_vec();
    required.push("secret");
    let mut fields = webhook_fields();
    fields["secret"] = webhook_secret();
    object(&required, fields)
}

fn webhook_fields() -> Value {
    json!({
        "id": id("webhook id"), "spaceId": id("space id"),
        "url": { "type": "string", "format": "uri", "maxLength": MAX_WEBHOOK_URL_CHARS,
                 "description": "where events are sent" },
        "events": webhook_events(),
        "description": nullable(webhook_description()),
        "active": { "type": "boolean", "description": "only an active webhook records and sends events" },
        "disabledReason": nullable(json!({ "type": "string",
            "description": "why ktasks switched the webhook off (its endpoint failed for a whole retry schedule); \
                            cleared by setting `active: true`" })),
        "createdAt": timestamp(), "updatedAt": timestamp(),
    })
}

/// A webhook's `url` as written: the rules it is checked by.
/// The shape of a webhook URL the server checks before its parser and SSRF rules.
const WEBHOOK_URL_PATTERN: &str = crate::webhooks::target::URL_PATTERN;

fn webhook_url() -> Value {
    json!({ "type": "string", "format": "uri", "pattern": WEBHOOK_URL_PATTERN, "maxLength": MAX_WEBHOOK_URL_CHARS,
            "description": "an absolute `https://` URL (`http://` only when the server sets `webhooks.allow_http`), \
                            without user name, password or fragment. Refused (400, field `url`) when its host is or \
                            resolves to a loopback, private, link-local, CGNAT, multicast, broadcast, documentation or \
                            unspecified address, unless the server sets `webhooks.allow_private_targets`" })
}

fn webhook_events() -> Value {
    json!({ "type": "array", "minItems": 1,
            "items": { "anyOf": [reference("WebhookEventType"), { "const": "*", "description": "every event type" }] },
            "description": "the event types to send, or `[\"*\"]` for all of them; a repeated entry is kept once" })
}

fn webhook_description() -> Value {
    json!({ "type": "string", "maxLength": MAX_WEBHOOK_DESCRIPTION_CHARS })
}

fn webhook_secret() -> Value {
    json!({ "type": "string", "pattern": "^whsec_[A-Za-z0-9+/]{43}=$",
            "description": "`whsec_` and the base64 of 32 random bytes, the key of the deliveries' signatures. \
                            Shown only here: ktasks never returns or logs it again" })
}

fn actor() -> Value {
    let mut actor = object(
        &["userId", "tokenId"],
        json!({
            "userId": id("the user who made the change"),
            "tokenId": nullable(id("the API token it was made with; `null` for the web page and the command line")),
        }),
    );
    actor["description"] = json!("who made the change");
    actor
}

/// An event's `data`: `schema` (an object) with `extra` properties and the `actor`, all required.
fn with_actor(schema: Value, extra: Value) -> Value {
    let mut schema = schema;
    let mut extra = extra;
    extra["actor"] = reference("Actor");
    for (name, property) in extra.as_object().into_iter().flatten() {
        schema["properties"][name] = property.clone();
        schema["required"].as_array_mut().unwrap().push(json!(name));
    }
    schema
}

/// The writable fields of a task; `for_create` drops `null` from the non-nullable ones' types.
pub(super) fn task_fields(for_create: bool) -> Value {
    let description = json!({ "type": "string", "maxLength": MAX_DESCRIPTION_CHARS });
    let mut fields = json!({
        "projectId": id(if for_create { "the project to create the task in" } else {
            "move the task (and its subtasks) to another project of the same space" }),
        "title": text(MAX_TITLE_CHARS),
        "description": nullable(description),
        "statusId": id("a status of the task's project (default on create: its first todo status)"),
        "priority": { "$ref": "#/components/schemas/Priority",
                      "description": if for_create { "`none` when not given" } else { "absent: unchanged" } },
        "dueDate": nullable(date()),
        "startDate": nullable(json!({ "type": "string", "format": "date", "description": "not after dueDate" })),
        "position": { "type": "number", "description": "default on create: the end of the project's order" },
        "parentId": nullable(id("a task of the same project; never a cycle")),
        "assignees": { "type": "array", "items": id("a member of the task's space"), "maxItems": MAX_ASSIGNEES,
                       "description": "on PATCH, replaces the whole set" },
        "labels": { "type": "array", "items": name(100), "maxItems": MAX_LABELS,
                    "description": "label ids, or names (found case-insensitively or created; a space holds at most \
                                    1,000 labels); on PATCH, replaces the set" },
    });
    if for_create {
        // On create, `null` means "not given" for the optional fields, so every type allows it.
        for name in ["statusId", "priority", "position", "assignees", "labels"] {
            let schema = fields[name].clone();
            fields[name] = nullable(schema);
        }
    }
    fields
}
