//! The OpenAPI 3.1 document of the API, served at `/api/openapi.json` and rendered into the
//! `/developers` page (`developers.rs`), so the two can never disagree.
//!
//! Built from the code's own rules where they live in code: enum values come from the
//! `text_enum!` types, lengths from `validate`, limits from `json`. The tests keep the rest true:
//! every routed endpoint is documented and vice versa (`tests` below), and every response the
//! integration suite sees is validated against this document (`tests/util.rs`).

use serde_json::{Map, Value, json};

use crate::json::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::store::projects::{Category, View};
use crate::store::spaces::Role;
use crate::store::tasks::Priority;
use crate::store::tokens::Scope;
use crate::store::users::Plan;
use crate::validate::{
    MAX_ASSIGNEES, MAX_DESCRIPTION_CHARS, MAX_LABELS, MAX_NAME_CHARS, MAX_TITLE_CHARS,
};

/// Every `code` an error response can carry.
pub const ERROR_CODES: &[&str] = &[
    "invalid_json",
    "validation_failed",
    "unknown_field",
    "invalid_query",
    "unauthorized",
    "plan_required",
    "insufficient_scope",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "payload_too_large",
    "request_timeout",
    "unsupported_media_type",
    "rate_limited",
    "unavailable",
    "internal",
];

const UUID: &str = "01a21edd-ac5f-72f8-b787-6977a0249d57";
const SPACE_ID: &str = "01a21edd-ac5f-72f8-b787-6978fc0828c8";
const PROJECT_ID: &str = "01a21edd-ac60-7a5d-9a8c-1f2a3b4c5d6e";
const TASK_ID: &str = "01a21edd-ad00-7b1c-8e2f-0a1b2c3d4e5f";
const STATUS_ID: &str = "01a21edd-ac60-7a5d-9a8c-2a3b4c5d6e7f";
const LABEL_ID: &str = "01a21edd-ad10-7c2d-9f30-1b2c3d4e5f60";
const TIME: &str = "2026-11-27T20:00:00.000Z";

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `schema`, or `null`. A reference becomes `anyOf` the two (its target's type cannot be widened
/// in place), keeping the description beside it.
fn nullable(schema: Value) -> Value {
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

fn text(max: usize) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": max, "pattern": "\\S",
            "description": format!("1-{max} characters after trimming surrounding whitespace") })
}

/// A name: `text` without the characters `validate::is_unprintable` refuses.
fn name(max: usize) -> Value {
    const ALLOWED: &str = r"[^\x00-\x1F\x7F-\x9F\u061C\u200E\u200F\u2028-\u202E\u2066-\u2069]";
    const VISIBLE: &str = r"[^\s\x00-\x1F\x7F-\x9F\u061C\u200E\u200F\u2028-\u202E\u2066-\u2069]";
    json!({ "type": "string", "minLength": 1, "maxLength": max,
            "pattern": format!("^{ALLOWED}*{VISIBLE}{ALLOWED}*$"),
            "description": format!("1-{max} characters after trimming surrounding whitespace; no control characters") })
}

fn id(description: &str) -> Value {
    json!({ "type": "string", "format": "uuid", "description": description })
}

fn slug() -> Value {
    json!({ "type": "string", "pattern": "^[a-z0-9-]{3,50}$", "description": "3-50 characters of a-z, 0-9 and -" })
}

fn color() -> Value {
    json!({ "type": "string", "pattern": "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$",
            "description": "hex colour, #rgb or #rrggbb (stored lower-case)", "example": "#3b82f6" })
}

fn timestamp() -> Value {
    json!({ "type": "string", "format": "date-time", "description": "RFC 3339, UTC, milliseconds", "example": TIME })
}

fn date() -> Value {
    json!({ "type": "string", "format": "date", "description": "YYYY-MM-DD, a real calendar day", "example": "2027-01-15" })
}

fn one_of(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

/// An object schema: every property listed, `required` as given, nothing else allowed.
fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties, "additionalProperties": false })
}

fn schemas() -> Value {
    let description = || json!({ "type": "string", "maxLength": MAX_DESCRIPTION_CHARS });
    json!({
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
            "token": object(&["id", "name", "prefix", "scope", "expiresAt"], json!({
                "id": id("token id"), "name": { "type": "string" },
                "prefix": { "type": "string", "pattern": "^kt_[0-9a-f]{5}$", "description": "first 8 characters of the token" },
                "scope": one_of(Scope::ALL), "expiresAt": nullable(timestamp()),
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
        "Project": object(
            &["id", "spaceId", "name", "slug", "description", "defaultView", "color", "statuses", "createdAt", "updatedAt"],
            json!({
                "id": id("project id"), "spaceId": id("space id"), "name": { "type": "string" }, "slug": slug(),
                "description": nullable(json!({ "type": "string" })), "defaultView": reference("View"),
                "color": nullable(color()),
                "statuses": { "type": "array", "items": reference("Status"), "description": "in board order" },
                "createdAt": timestamp(), "updatedAt": timestamp(),
            }),
        ),
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
        "Task": object(
            &["id", "projectId", "statusId", "title", "description", "priority", "dueDate", "startDate", "position",
              "parentId", "assignees", "labels", "completedAt", "createdBy", "createdAt", "updatedAt"],
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
        ),
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
    })
}

/// The writable fields of a task; `for_create` drops `null` from the non-nullable ones' types.
fn task_fields(for_create: bool) -> Value {
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

/// A response header, inline rather than a `$ref`: generators read `required` only there, and
/// a header that some responses lack (`Link` on the last page) must not be typed as always there.
fn header(description: &str, schema: Value, required: bool) -> Value {
    json!({ "description": description, "schema": schema, "required": required })
}

/// The rate-limit headers: on every answer to an authenticated token (`required`), and on an
/// error only when the token got that far.
fn rate_limit_headers(required: bool) -> Value {
    let integer = || json!({ "type": "integer" });
    let string = || json!({ "type": "string" });
    json!({
        "X-RateLimit-Limit": header("requests allowed per token in any sliding 60-second window", integer(), required),
        "X-RateLimit-Remaining": header("requests left in the window after this one", integer(), required),
        "X-RateLimit-Reset": header("Unix time (seconds) when the next slot frees", integer(), required),
        "RateLimit-Policy": header("IETF draft: `\"default\";q=<limit>;w=60`", string(), required),
        "RateLimit": header("IETF draft: `\"default\";r=<remaining>;t=<seconds until a slot frees>`", string(), required),
    })
}

fn error_response(
    description: &str,
    example_code: &str,
    example_message: &str,
    extra_headers: Value,
) -> Value {
    let mut headers = rate_limit_headers(false);
    for (name, header) in extra_headers.as_object().into_iter().flatten() {
        headers[name] = header.clone();
    }
    json!({
        "description": description,
        "headers": headers,
        "content": { "application/json": {
            "schema": reference("Error"),
            "example": { "error": example_message, "code": example_code },
        } },
    })
}

fn responses() -> Value {
    json!({
        "BadRequest": error_response(
            "Malformed body (`invalid_json`), a field out of its rules (`validation_failed`, with `field`), \
             an unknown field (`unknown_field`) or a bad query parameter (`invalid_query`).",
            "validation_failed", "`title` must not be empty", json!({})),
        "Unauthorized": {
            "description": "Missing, malformed, unknown, revoked or expired token.",
            "headers": { "WWW-Authenticate": header("always `Bearer`", json!({ "const": "Bearer" }), true) },
            "content": { "application/json": { "schema": reference("Error"),
                "example": { "error": "this token has been revoked", "code": "unauthorized" } } },
        },
        "BadQuery": error_response(
            "A query parameter that is unknown or out of its rules (`invalid_query`, with `field`).",
            "invalid_query", "`limit` must be a whole number from 1 to 200", json!({})),
        "PlanRequired": error_response(
            "`plan_required`: the token's user is on the free plan.",
            "plan_required", "API access requires a Pro or Team plan; this account is on the free plan", json!({})),
        "Forbidden": error_response(
            "`plan_required` (the token's user is on the free plan), `insufficient_scope` (a read-only token \
             on a non-GET request) or `forbidden` (your role in the space only allows reading).",
            "forbidden", "your role in this space (viewer) only allows reading", json!({})),
        "NotFound": error_response(
            "No such resource, or one in a space you are not a member of: the two are never told apart.",
            "not_found", "not found", json!({})),
        "Conflict": error_response("A uniqueness clash (the slug is taken), or a limit reached (a space already \
            holds 1,000 labels, so a new label name is refused).", "conflict", "the slug \"acme\" is taken", json!({})),
        "PayloadTooLarge": error_response("The body is larger than `limits.max_body_bytes` (1 MiB by default).",
            "payload_too_large", "request body is larger than the limit of 1048576 bytes", json!({})),
        "RequestTimeout": {
            "description": "The body did not all arrive within `server.body_read_timeout_secs` (30 s by default), or \
                            arrived slower than `server.body_min_bytes_per_sec` on average after its first 5 s. \
                            The connection is closed.",
            "headers": { "Connection": header("`close`", json!({ "const": "close" }), true) },
            "content": { "application/json": { "schema": reference("Error"),
                "example": { "error": "the request body did not arrive in time (too slow, or shorter than announced)",
                             "code": "request_timeout" } } },
        },
        "UnsupportedMediaType": error_response("A body sent without `Content-Type: application/json`.",
            "unsupported_media_type", "request body must be JSON, sent with Content-Type: application/json", json!({})),
        "RateLimited": error_response("Over the token's rate limit, or too many refused tokens from your address; retry after `Retry-After` seconds.",
            "rate_limited", "rate limit exceeded; retry in 12 s", json!({
                "Retry-After": header("whole seconds (at least 1) after which a request will be accepted",
                    json!({ "type": "integer", "minimum": 1 }), true),
            })),
        "Unavailable": {
            "description": "The request ran past the server's deadline (`server.request_timeout_secs`); try again.",
            "content": { "application/json": { "schema": reference("Error"),
                "example": { "error": "the request took too long; try again", "code": "unavailable" } } },
        },
        "Internal": {
            "description": "A bug: logged with detail on the server, generic here.",
            "content": { "application/json": { "schema": reference("Error"),
                "example": { "error": "internal error", "code": "internal" } } },
        },
    })
}

struct Operation {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
    parameters: Vec<Value>,
    body: Option<(Value, Value)>,
    success: (&'static str, Value),
    errors: &'static [&'static str],
    auth: bool,
}

fn query_parameter(name: &str, required: bool, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": required, "schema": schema, "description": description })
}

fn paging() -> Vec<Value> {
    vec![
        query_parameter(
            "limit",
            false,
            json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIMIT }),
            &format!("items per page ({DEFAULT_LIMIT} when not given)"),
        ),
        query_parameter(
            "cursor",
            false,
            json!({ "type": "string" }),
            "opaque; take it from the `Next-Cursor` header of the previous page (or the URL in its \
             `Link: <…>; rel=\"next\"`; a cursor the server did not issue is `400 invalid_query`)",
        ),
    ]
}

fn space_id_parameter() -> Value {
    let mut parameter = query_parameter(
        "spaceId",
        true,
        json!({ "type": "string", "format": "uuid" }),
        "the space",
    );
    parameter["example"] = json!(SPACE_ID);
    parameter
}

fn path_id(example: &str) -> Value {
    json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" }, "description": "the id",
            "example": example })
}

fn ok(description: &str, schema: Value, example: Value) -> Value {
    json!({ "description": description, "headers": rate_limit_headers(true),
            "content": { "application/json": { "schema": schema, "example": example } } })
}

fn list(description: &str, item: &str, example: Value) -> Value {
    let mut response = ok(
        description,
        json!({ "type": "array", "items": reference(item) }),
        json!([example]),
    );
    response["headers"]["Link"] = header(
        "`<URL of the next page>; rel=\"next\"`, only when more items exist",
        json!({ "type": "string" }),
        false,
    );
    response["headers"]["Next-Cursor"] = header(
        "the next page's `cursor`, only when more items exist (the same as in `Link`)",
        json!({ "type": "string" }),
        false,
    );
    response
}

fn created(description: &str, item: &str, example: Value, links: Value) -> Value {
    let mut response = ok(description, reference(item), example);
    response["headers"]["Location"] = header(
        "URL of the created resource",
        json!({ "type": "string", "format": "uri-reference" }),
        true,
    );
    response["links"] = links;
    response
}

/// `response` with OpenAPI links (what to call next with what it returned: tools such as
/// Schemathesis follow them).
fn with_links(mut response: Value, links: Value) -> Value {
    response["links"] = links;
    response
}

fn link(operation: &str, description: &str) -> Value {
    json!({ "operationId": operation, "parameters": { "id": "$response.body#/id" }, "description": description })
}

fn example_space() -> Value {
    json!({ "id": SPACE_ID, "name": "Acme", "slug": "acme", "description": null, "color": "#3b82f6",
            "personal": false, "role": "owner", "createdAt": TIME, "updatedAt": TIME })
}

fn example_project() -> Value {
    json!({ "id": PROJECT_ID, "spaceId": SPACE_ID, "name": "Website", "slug": "website", "description": null,
            "defaultView": "kanban", "color": null,
            "statuses": [
                { "id": STATUS_ID, "name": "To Do", "category": "todo", "position": 0, "color": "#94a3b8" },
                { "id": "01a21edd-ac60-7a5d-9a8c-3b4c5d6e7f80", "name": "In Progress", "category": "in_progress", "position": 1, "color": "#3b82f6" },
                { "id": "01a21edd-ac60-7a5d-9a8c-4c5d6e7f8091", "name": "Done", "category": "done", "position": 2, "color": "#22c55e" },
            ],
            "createdAt": TIME, "updatedAt": TIME })
}

fn example_task() -> Value {
    json!({ "id": TASK_ID, "projectId": PROJECT_ID, "statusId": STATUS_ID, "title": "Launch the site",
            "description": null, "priority": "high", "dueDate": "2027-01-15", "startDate": null, "position": 1.0,
            "parentId": null, "assignees": [UUID], "labels": [{ "id": LABEL_ID, "name": "release", "color": null }],
            "completedAt": null, "createdBy": UUID, "createdAt": TIME, "updatedAt": TIME })
}

fn operations() -> Vec<Operation> {
    let task_ok = |description: &str| ok(description, reference("Task"), example_task());
    vec![
        Operation {
            method: "get", path: "/healthz", id: "getHealth", tag: "Service", auth: false,
            summary: "Health check",
            description: "`{\"status\":\"ok\"}` when the database answers, 503 otherwise. No token needed.",
            parameters: vec![], body: None,
            success: ("200", json!({ "description": "The database answers.",
                "content": { "application/json": { "schema": reference("Health"), "example": { "status": "ok" } } } })),
            errors: &[],
        },
        Operation {
            method: "get", path: "/api/openapi.json", id: "getOpenApi", tag: "Service", auth: false,
            summary: "This OpenAPI document",
            description: "The OpenAPI 3.1 document of this API. No token needed.",
            parameters: vec![], body: None,
            success: ("200", json!({ "description": "The document.",
                "content": { "application/json": { "schema": { "type": "object" } } } })),
            errors: &[],
        },
        Operation {
            method: "get", path: "/developers", id: "getDevelopers", tag: "Service", auth: false,
            summary: "API reference page",
            description: "A human-readable reference built from this document. No token needed.",
            parameters: vec![], body: None,
            success: ("200", json!({ "description": "An HTML page.",
                "content": { "text/html": { "schema": { "type": "string" } } } })),
            errors: &[],
        },
        Operation {
            method: "get", path: "/api/me", id: "getMe", tag: "Account", auth: true,
            summary: "The token's user and the token",
            description: "Who the token belongs to, and the token itself (never its secret).",
            parameters: vec![], body: None,
            success: ("200", ok("The user and the token.", reference("Me"), json!({
                "user": { "id": UUID, "email": "you@example.com", "name": "You", "plan": "pro" },
                "token": { "id": "01a21edd-ac64-763d-9dc7-e3c59c70bd5b", "name": "Zapier", "prefix": "kt_1a2b3",
                           "scope": "write", "expiresAt": null } }))),
            errors: &["400"],
        },
        Operation {
            method: "get", path: "/api/spaces", id: "listSpaces", tag: "Spaces", auth: true,
            summary: "List your spaces",
            description: "Every space you belong to, your personal space included, with your role, in creation order.",
            parameters: paging(), body: None,
            success: ("200", list("Your spaces.", "Space", example_space())),
            errors: &["400"],
        },
        Operation {
            method: "post", path: "/api/spaces", id: "createSpace", tag: "Spaces", auth: true,
            summary: "Create a team space",
            description: "You become its owner. A \"General\" project (slug `general`) with the default statuses is created with it.",
            parameters: vec![],
            body: Some((reference("NewSpace"), json!({ "name": "Acme", "slug": "acme", "color": "#3b82f6" }))),
            success: ("201", created("The space.", "Space", example_space(), json!({
                "GetSpace": link("getSpace", "the new space"),
                "ListSpaceMembers": link("listSpaceMembers", "its members"),
            }))),
            errors: &["400", "409", "413", "415"],
        },
        Operation {
            method: "get", path: "/api/spaces/{id}", id: "getSpace", tag: "Spaces", auth: true,
            summary: "Get a space",
            description: "One space with your role in it.",
            parameters: vec![path_id(SPACE_ID)], body: None,
            success: ("200", ok("The space.", reference("Space"), example_space())),
            errors: &["400", "404"],
        },
        Operation {
            method: "get", path: "/api/spaces/{id}/members", id: "listSpaceMembers", tag: "Spaces", auth: true,
            summary: "List a space's members",
            description: "So clients can find user ids to assign. Ordered by name.",
            parameters: vec![path_id(SPACE_ID)], body: None,
            success: ("200", ok("The members.", json!({ "type": "array", "items": reference("Member") }),
                json!([{ "userId": UUID, "name": "You", "email": "you@example.com", "role": "owner" }]))),
            errors: &["400", "404"],
        },
        Operation {
            method: "get", path: "/api/projects", id: "listProjects", tag: "Projects", auth: true,
            summary: "List a space's projects",
            description: "The projects of one space, with their statuses, in creation order.",
            parameters: [vec![space_id_parameter()], paging()].concat(), body: None,
            success: ("200", list("The projects.", "Project", example_project())),
            errors: &["400", "404"],
        },
        Operation {
            method: "post", path: "/api/projects", id: "createProject", tag: "Projects", auth: true,
            summary: "Create a project",
            description: "Needs role owner, admin or member in the space. The default statuses \"To Do\", \"In Progress\" and \"Done\" are created with it.",
            parameters: vec![],
            body: Some((reference("NewProject"), json!({ "spaceId": SPACE_ID, "name": "Website", "slug": "website" }))),
            success: ("201", created("The project.", "Project", example_project(), json!({
                "GetProject": link("getProject", "the new project"),
                "UpdateProject": link("updateProject", "change it"),
            }))),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "get", path: "/api/projects/{id}", id: "getProject", tag: "Projects", auth: true,
            summary: "Get a project",
            description: "One project with its statuses.",
            parameters: vec![path_id(PROJECT_ID)], body: None,
            success: ("200", ok("The project.", reference("Project"), example_project())),
            errors: &["400", "404"],
        },
        Operation {
            method: "patch", path: "/api/projects/{id}", id: "updateProject", tag: "Projects", auth: true,
            summary: "Change a project",
            description: "Absent fields stay as they are; `null` clears `description` and `color`. The slug stays unique within the space.",
            parameters: vec![path_id(PROJECT_ID)],
            body: Some((reference("ProjectPatch"), json!({ "name": "Marketing site", "defaultView": "list" }))),
            success: ("200", ok("The project.", reference("Project"), example_project())),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "get", path: "/api/tasks", id: "listTasks", tag: "Tasks", auth: true,
            summary: "List tasks",
            description: "Ordered by `position`, then `id`. `projectId` is required unless `assigneeId` is given; \
                          then the list spans every space you belong to. Filters combine with AND.",
            parameters: [
                vec![
                    {
                        let mut parameter = query_parameter("projectId", false, json!({ "type": "string", "format": "uuid" }),
                            "tasks of this project (required unless `assigneeId` is given)");
                        parameter["example"] = json!(PROJECT_ID);
                        parameter
                    },
                    query_parameter("statusId", false, json!({ "type": "string", "format": "uuid" }), "tasks in this status"),
                    query_parameter("assigneeId", false,
                        json!({ "anyOf": [{ "type": "string", "format": "uuid" }, { "type": "string", "enum": ["me"] }] }),
                        "tasks assigned to this user id, or `me`"),
                    query_parameter("labelId", false, json!({ "type": "string", "format": "uuid" }), "tasks with this label"),
                    query_parameter("priority", false, reference("Priority"), "tasks of this priority"),
                    query_parameter("completed", false, json!({ "type": "boolean" }), "done (`completedAt` set) or not"),
                    query_parameter("dueBefore", false, date(), "due on or before this date"),
                    query_parameter("dueAfter", false, date(), "due on or after this date"),
                    query_parameter("parentId", false, json!({ "type": "string", "format": "uuid" }), "subtasks of this task"),
                    query_parameter("updatedSince", false, json!({ "type": "string", "format": "date-time" }),
                        "changed at or after this RFC 3339 time (for incremental sync; deleted tasks are not reported)"),
                    query_parameter("q", false, json!({ "type": "string" }), "case-insensitive substring of the title"),
                ],
                paging(),
            ].concat(),
            body: None,
            success: ("200", list("The tasks.", "Task", example_task())),
            errors: &["400", "404"],
        },
        Operation {
            method: "post", path: "/api/tasks", id: "createTask", tag: "Tasks", auth: true,
            summary: "Create a task",
            description: "New tasks go to the project's first `todo` status and the end of its order unless given. \
                          A task created in a `done` status gets `completedAt`.",
            parameters: vec![],
            body: Some((reference("NewTask"), json!({ "projectId": PROJECT_ID, "title": "Launch the site",
                "priority": "high", "dueDate": "2027-01-15", "labels": ["release"] }))),
            success: ("201", created("The task.", "Task", example_task(), json!({
                "GetTask": link("getTask", "the new task"),
                "UpdateTask": link("updateTask", "change it"),
                "DeleteTask": link("deleteTask", "delete it"),
                "AddTaskAssignee": {
                    "operationId": "addTaskAssignee", "parameters": { "id": "$response.body#/id" },
                    "requestBody": { "userId": "$response.body#/createdBy" },
                    "description": "assign its creator (a member of its space)",
                },
                "AddTaskLabel": link("addTaskLabel", "label it"),
            }))),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "get", path: "/api/tasks/{id}", id: "getTask", tag: "Tasks", auth: true,
            summary: "Get a task",
            description: "One task with its assignees and labels.",
            parameters: vec![path_id(TASK_ID)], body: None,
            success: ("200", task_ok("The task.")),
            errors: &["400", "404"],
        },
        Operation {
            method: "patch", path: "/api/tasks/{id}", id: "updateTask", tag: "Tasks", auth: true,
            summary: "Change a task",
            description: "Absent fields stay as they are; `null` clears `description`, `dueDate`, `startDate` and `parentId`. \
                          `assignees` and `labels` replace the sets. `projectId` moves the task, with its subtasks, to another \
                          project of the same space; each keeps its kind of status, and the moved task leaves its old parent \
                          unless `parentId` is given. Entering a `done` status sets `completedAt`; leaving it clears it. \
                          An empty body changes nothing.",
            parameters: vec![path_id(TASK_ID)],
            body: Some((reference("TaskPatch"), json!({ "statusId": STATUS_ID, "dueDate": null }))),
            success: ("200", task_ok("The task.")),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "delete", path: "/api/tasks/{id}", id: "deleteTask", tag: "Tasks", auth: true,
            summary: "Delete a task",
            description: "Deletes the task and all its subtasks.",
            parameters: vec![path_id(TASK_ID)], body: None,
            success: ("204", json!({ "description": "Deleted.", "headers": rate_limit_headers(true) })),
            errors: &["400", "404"],
        },
        Operation {
            method: "post", path: "/api/tasks/{id}/assignees", id: "addTaskAssignee", tag: "Assignees and labels", auth: true,
            summary: "Assign a user",
            description: "The user must be a member of the task's space. Idempotent. Returns the task.",
            parameters: vec![path_id(TASK_ID)],
            body: Some((reference("AssigneeBody"), json!({ "userId": UUID }))),
            success: ("200", with_links(task_ok("The task."), json!({
                "RemoveTaskAssignee": {
                    "operationId": "removeTaskAssignee",
                    "parameters": { "id": "$response.body#/id" },
                    "requestBody": { "userId": "$response.body#/assignees/0" },
                    "description": "unassign the first assignee again",
                },
            }))),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "delete", path: "/api/tasks/{id}/assignees", id: "removeTaskAssignee", tag: "Assignees and labels", auth: true,
            summary: "Unassign a user",
            description: "`userId` in the query, in a JSON body, or both: each names a user to unassign, and at least \
                          one must be given. Idempotent. Returns the task.",
            parameters: vec![path_id(TASK_ID), query_parameter("userId", false, json!({ "type": "string", "format": "uuid" }), "a user to unassign (besides any in the body)")],
            body: Some((reference("AssigneeBody"), json!({ "userId": UUID }))),
            success: ("200", task_ok("The task.")),
            errors: &["400", "404", "413", "415"],
        },
        Operation {
            method: "post", path: "/api/tasks/{id}/labels", id: "addTaskLabel", tag: "Assignees and labels", auth: true,
            summary: "Add a label",
            description: "By `labelId` and/or by `name`: the space's label is found case-insensitively, or created \
                          with `color`. Idempotent. Returns the task.",
            parameters: vec![path_id(TASK_ID)],
            body: Some((reference("LabelBody"), json!({ "name": "Urgent", "color": "#ef4444" }))),
            success: ("200", with_links(task_ok("The task."), json!({
                "RemoveTaskLabel": {
                    "operationId": "removeTaskLabel",
                    "parameters": { "id": "$response.body#/id" },
                    "requestBody": { "labelId": "$response.body#/labels/0/id" },
                    "description": "remove the first label again",
                },
            }))),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "delete", path: "/api/tasks/{id}/labels", id: "removeTaskLabel", tag: "Assignees and labels", auth: true,
            summary: "Remove a label",
            description: "`labelId` and `name` (case-insensitive), in the query, in a JSON body, or both: each \
                          names a label to remove, and at least one must be given. Idempotent. Returns the task.",
            parameters: vec![
                path_id(TASK_ID),
                query_parameter("labelId", false, json!({ "type": "string", "format": "uuid" }), "a label to remove (besides any in the body)"),
                query_parameter("name", false, name(100),
                    "a label to remove by name, case-insensitively (besides any in the body)"),
            ],
            body: Some((reference("LabelDeleteBody"), json!({ "name": "urgent" }))),
            success: ("200", task_ok("The task.")),
            errors: &["400", "404", "413", "415"],
        },
        Operation {
            method: "get", path: "/api/labels", id: "listLabels", tag: "Assignees and labels", auth: true,
            summary: "List a space's labels",
            description: "In creation order. Labels are created through tasks.",
            parameters: [vec![space_id_parameter()], paging()].concat(), body: None,
            success: ("200", list("The labels.", "Label",
                json!({ "id": LABEL_ID, "spaceId": SPACE_ID, "name": "release", "color": null }))),
            errors: &["400", "404"],
        },
    ]
}

const INTRO: &str = "\
The REST API of ktasks, a self-hosted Krokanti Tasks server: spaces, projects, tasks, assignees and labels.

**Authentication.** Every `/api` route except this document takes `Authorization: Bearer kt_…`. Tokens are \
created on the Settings -> Security page (`/settings/security`, signed in with your password) or by the \
server's operator (`ktasks token create --user EMAIL --name NAME [--read-only] [--expires-in-days N]`), and shown once. A token is `kt_` followed by 40 hex characters, the last 8 a checksum. API access needs a \
`pro` or `team` plan. Read-only tokens may only GET.

**Rate limit.** 100 requests per token in any sliding 60-second window (configurable). Every authenticated \
response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`, `RateLimit-Policy` and \
`RateLimit`. Over the limit: 429 with `Retry-After`.

**Errors.** `{\"error\": \"…\", \"code\": \"…\", \"field\": \"…\"}`; `field` only when one input field is at \
fault. Unknown body fields and query parameters are refused. A resource in a space you are not a member of is \
404, exactly like one that does not exist. A method a path does not support is 405 with `Allow`.

**Pagination.** Lists take `limit` (1-200, default 50) and `cursor`. When more items exist, the response has \
`Link: <URL of the next page>; rel=\"next\"` and `Next-Cursor: <cursor>` (the same cursor, for clients that do not \
parse links); the last page has neither. Order is stable and every item is returned exactly once.

**Query parameters** are checked as typed: ids are UUIDs, booleans are `true` or `false`, and an empty value is a \
value (`?completed=` is 400); only the free-text `q` and `cursor` treat empty as not given.";

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut tags: Vec<&str> = Vec::new();
    for operation in operations() {
        if !tags.contains(&operation.tag) {
            tags.push(operation.tag);
        }
        let mut responses = Map::new();
        responses.insert(operation.success.0.to_string(), operation.success.1);
        let named = |status: &str| match status {
            // A GET has no body to be malformed, and a read needs no scope or writing role.
            "400" if operation.method == "get" => "BadQuery",
            "400" => "BadRequest",
            "404" => "NotFound",
            "409" => "Conflict",
            "413" => "PayloadTooLarge",
            "415" => "UnsupportedMediaType",
            other => panic!("no shared response for {other}"),
        };
        for status in operation.errors {
            responses.insert(
                status.to_string(),
                json!({ "$ref": format!("#/components/responses/{}", named(status)) }),
            );
        }
        // Whatever takes a body can have it cut off for arriving too slowly.
        if operation.errors.contains(&"413") {
            responses.insert(
                "408".into(),
                json!({ "$ref": "#/components/responses/RequestTimeout" }),
            );
        }
        if operation.auth {
            for (status, name) in [
                ("401", "Unauthorized"),
                (
                    "403",
                    if operation.method == "get" {
                        "PlanRequired"
                    } else {
                        "Forbidden"
                    },
                ),
                ("429", "RateLimited"),
            ] {
                responses.insert(
                    status.to_string(),
                    json!({ "$ref": format!("#/components/responses/{name}") }),
                );
            }
        }
        if operation.path == "/healthz" {
            responses.insert("503".into(), json!({ "description": "The database does not answer.",
                "content": { "application/json": { "schema": reference("Error"),
                    "example": { "error": "the database is not answering", "code": "unavailable" } } } }));
        }
        responses.insert(
            "500".into(),
            json!({ "$ref": "#/components/responses/Internal" }),
        );
        if operation.auth {
            responses.insert(
                "503".into(),
                json!({ "$ref": "#/components/responses/Unavailable" }),
            );
        }
        let mut entry = json!({
            "operationId": operation.id,
            "tags": [operation.tag],
            "summary": operation.summary,
            "description": operation.description,
            "responses": responses,
        });
        if !operation.parameters.is_empty() {
            entry["parameters"] = Value::Array(operation.parameters);
        }
        if let Some((schema, example)) = operation.body {
            entry["requestBody"] = json!({
                "required": operation.method != "delete",
                "content": { "application/json": { "schema": schema, "example": example } },
            });
        }
        if !operation.auth {
            entry["security"] = json!([]);
        }
        let path = paths.entry(operation.path).or_insert_with(|| json!({}));
        path[operation.method] = entry;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ktasks API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": INTRO,
            "license": { "name": "MIT", "identifier": "MIT" },
        },
        "servers": [{ "url": "/", "description": "this server" }],
        "security": [{ "bearer": [] }],
        "tags": tags.iter().map(|t| json!({ "name": t })).collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer",
                "description": "A personal API token: `kt_` + 40 hex characters." } },
            "schemas": schemas(),
            "responses": responses(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::router::ENDPOINTS;

    /// `/api/tasks/{id}` -> `/api/tasks/:id`.
    fn router_pattern(path: &str) -> String {
        path.replace("{id}", ":id")
    }

    #[test]
    fn every_routed_endpoint_is_documented_and_every_documented_one_is_routed() {
        let document = document();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.push((router_pattern(path), method.to_uppercase()));
            }
        }
        let mut routed: Vec<(String, String)> = Vec::new();
        for (pattern, allow) in ENDPOINTS {
            for method in allow.split(", ") {
                routed.push((pattern.to_string(), method.to_string()));
            }
        }
        documented.sort();
        routed.sort();
        assert_eq!(documented, routed);
    }

    /// A route reads a body exactly when its operation documents one, so an operation without
    /// one can never answer 408 or 413 for a body it was sent.
    #[test]
    fn routes_read_a_body_exactly_when_the_document_says_they_take_one() {
        let document = document();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let concrete = path.replace("{id}", "01a21edd-ac5f-72f8-b787-6977a0249d57");
                let method = hyper::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let route = crate::router::route(&method, &concrete).unwrap();
                let documented = operation.get("requestBody").is_some();
                assert_eq!(route.takes_body(), documented, "{method} {path}");
                let limits = operation["responses"].get("413").is_some();
                assert_eq!(limits, documented, "{method} {path}: 413 with a body only");
            }
        }
    }

    #[test]
    fn every_error_code_is_in_the_documented_enum() {
        let errors = [
            Error::InvalidJson(String::new()),
            Error::validation("f", "m"),
            Error::UnknownField(String::new()),
            Error::invalid_query("f", "m"),
            Error::Unauthorized(""),
            Error::PlanRequired,
            Error::InsufficientScope,
            Error::Forbidden(String::new()),
            Error::NotFound,
            Error::MethodNotAllowed { allow: "GET" },
            Error::Conflict {
                field: None,
                message: String::new(),
            },
            Error::PayloadTooLarge { limit: 1 },
            Error::RequestTimeout,
            Error::UnsupportedMediaType,
            Error::RateLimited {
                retry_after_secs: 1,
            },
            Error::Unavailable(""),
            Error::internal(""),
        ];
        assert_eq!(errors.len(), ERROR_CODES.len());
        for error in errors {
            assert!(ERROR_CODES.contains(&error.code()), "{}", error.code());
        }
    }

    #[test]
    fn every_operation_has_an_id_a_summary_and_an_example() {
        let document = document();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(operation["operationId"].is_string(), "{method} {path}");
                assert!(operation["summary"].is_string(), "{method} {path}");
                let has_example = operation["responses"]
                    .as_object()
                    .unwrap()
                    .values()
                    .any(|r| {
                        r["content"]["application/json"]["example"].is_object()
                            || r["content"]["application/json"]["example"].is_array()
                    })
                    || operation["requestBody"]["content"]["application/json"]["example"]
                        .is_object()
                    || ["getOpenApi", "getDevelopers", "deleteTask"]
                        .contains(&operation["operationId"].as_str().unwrap());
                assert!(has_example, "{method} {path} has no example");
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let text = document.to_string();
        for part in text.split("\"$ref\":\"#/").skip(1) {
            let pointer = format!("/{}", part.split('"').next().unwrap());
            assert!(document.pointer(&pointer).is_some(), "dangling {pointer}");
        }
    }
}
