//! The OpenAPI 3.1 document of the API, served at `/api/openapi.json` and rendered into the
//! `/developers` page (`developers.rs`), so the two can never disagree.
//!
//! Built from the code's own rules where they live in code: enum values come from the
//! `text_enum!` types, lengths from `validate`, limits from `json`. The tests keep the rest true:
//! every routed endpoint is documented and vice versa (`tests` below), and every response the
//! integration suite sees is validated against this document (`tests/util.rs`).
//!
//! Files: `schemas` (objects and request bodies), `responses` (shared answers and headers),
//! `operations` (every operation with its examples, and every event a webhook receives); this one
//! puts the document together.

use serde_json::{Map, Value, json};

mod operations;
mod responses;
mod schemas;

use operations::{delivery_headers, events, operations};
use responses::responses;
use schemas::{reference, schemas};

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
    "precondition_failed",
    "invalid_idempotency_key",
    "idempotency_key_reused",
    "idempotency_key_in_flight",
    "payload_too_large",
    "request_timeout",
    "unsupported_media_type",
    "rate_limited",
    "unavailable",
    "read_only_replica",
    "internal",
];

/// Every event type a webhook can be sent (docs/webhooks.md), from the store's enum.
pub const WEBHOOK_EVENT_TYPES: &[&str] = crate::store::webhooks::EventType::ALL;

const UUID: &str = "01a21edd-ac5f-72f8-b787-6977a0249d57";
const SPACE_ID: &str = "01a21edd-ac5f-72f8-b787-6978fc0828c8";
const PROJECT_ID: &str = "01a21edd-ac60-7a5d-9a8c-1f2a3b4c5d6e";
const TASK_ID: &str = "01a21edd-ad00-7b1c-8e2f-0a1b2c3d4e5f";
const STATUS_ID: &str = "01a21edd-ac60-7a5d-9a8c-2a3b4c5d6e7f";
const LABEL_ID: &str = "01a21edd-ad10-7c2d-9f30-1b2c3d4e5f60";
const TOKEN_ID: &str = "01a21edd-ac64-763d-9dc7-e3c59c70bd5b";
const WEBHOOK_ID: &str = "01a21edd-ae00-7d3e-8f40-1a2b3c4d5e6f";
const EVENT_ID: &str = "01a21edd-ae10-7e4f-9a51-2b3c4d5e6f70";
const TIME: &str = "2026-11-27T20:00:00.000Z";

const INTRO: &str = "\
The REST API of ktasks, a self-hosted Krokanti Tasks server: spaces, projects, tasks, assignees and labels.

**Authentication.** Every `/api` route except this document takes `Authorization: Bearer kt_…`. Tokens are \
created on the Settings -> Security page (`/settings/security`, signed in with your password) or by the \
server's operator (`ktasks token create --user EMAIL --name NAME [--read-only] [--expires-in-days N]`), and shown once. A token is `kt_` followed by 40 hex characters, the last 8 a checksum. API access needs a \
`pro` or `team` plan. Read-only tokens may only GET. A token may be restricted to some spaces \
(`ktasks token create --space SLUG`): outside them everything is 404 as for a space you are not in, lists span \
only them, and `POST /api/spaces` is 403 `insufficient_scope`; `GET /api/me` shows `spaces`. A token that stops \
working at a known time (an expiry, or the grace a rotation gave it) says when on every answer: \
`Token-Expires-At: <RFC 3339>`.

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
value (`?completed=` is 400); only the free-text `q` and `cursor` treat empty as not given.

**Webhooks.** A space's owners and admins can have ktasks `POST` its changes to a URL as they happen, signed as \
Standard Webhooks 1.0 says (the Webhooks operations). Each event's body and the headers to verify it by are in this \
document's top-level `webhooks` section (on `/developers`: Webhook events). Delivery is at least once, and retried \
for about 27 hours until the receiver answers 2xx.";

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
            // An operation without a body has none to be malformed.
            "400" if operation.body.is_none() => "BadQuery",
            "400" => "BadRequest",
            // Listed by an operation that a role in the space refuses to some of its members
            // (webhooks). A write's `Forbidden` says so already; a read's must add it.
            "403" if operation.method == "get" => "ReadForbidden",
            "403" => "Forbidden",
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
        // Any token can be refused. A read needs no scope or writing role, so its 403 is only the
        // free plan's, unless the operation listed a 403 of its own above.
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
                responses
                    .entry(status)
                    .or_insert_with(|| json!({ "$ref": format!("#/components/responses/{name}") }));
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
        });
        let mut parameters = operation.parameters;
        if operation.auth {
            conditional_and_idempotent(
                operation.id,
                operation.method,
                &mut parameters,
                &mut responses,
            );
        }
        if !parameters.is_empty() {
            entry["parameters"] = Value::Array(parameters);
        }
        entry["responses"] = Value::Object(responses);
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
        "webhooks": webhooks(),
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer",
                "description": "A personal API token: `kt_` + 40 hex characters." } },
            "schemas": schemas(),
            "responses": responses(),
        },
    })
}

/// The operations whose change `If-Match` can make conditional (SPEC 10).
const IF_MATCH_OPERATIONS: &[&str] = &[
    "updateTask",
    "deleteTask",
    "updateProject",
    "addTaskAssignee",
    "removeTaskAssignee",
    "addTaskLabel",
    "removeTaskLabel",
];

/// SPEC 10 on one operation: `Idempotency-Key` on every write (its 409, 422, and the
/// `Idempotent-Replayed` of a replay); `ETag` on every answer that is one task, project or space,
/// `If-None-Match` and 304 on their GETs, `If-Match` and 412 on the changes that take it.
fn conditional_and_idempotent(
    id: &str,
    method: &str,
    parameters: &mut Vec<Value>,
    responses: &mut Map<String, Value>,
) {
    let header_parameter = |name: &str, description: &str, example: &str| {
        json!({ "name": name, "in": "header", "required": false, "schema": { "type": "string" },
                "description": description, "example": example })
    };
    let key_schema =
        json!({ "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" });
    let success = responses
        .keys()
        .find(|status| status.starts_with('2'))
        .expect("every operation has a success")
        .clone();
    let schema = responses[&success]
        .pointer("/content/application~1json/schema/$ref")
        .and_then(Value::as_str)
        .unwrap_or("");
    let one_object = [
        "#/components/schemas/Task",
        "#/components/schemas/Project",
        "#/components/schemas/Space",
    ]
    .contains(&schema);
    if one_object {
        responses[&success]["headers"]["ETag"] = responses::header(
            "a strong validator of this body: send it back in `If-None-Match` (a GET) or `If-Match` (a change)",
            json!({ "type": "string" }),
            true,
        );
    }
    if method == "get" {
        if one_object {
            parameters.push(header_parameter(
                "If-None-Match",
                "the `ETag` you hold: when it is still current, the answer is `304` with no body",
                "\"3f9c1a7e0b2d4c6e8f0a1b2c3d4e5f60\"",
            ));
            responses.insert(
                "304".into(),
                json!({ "$ref": "#/components/responses/NotModified" }),
            );
        }
        return;
    }
    if IF_MATCH_OPERATIONS.contains(&id) {
        parameters.push(header_parameter(
            "If-Match",
            "the `ETag` you read: when the object has changed since, nothing is changed and the \
             answer is `412 precondition_failed` (re-read it and decide again). `*` matches any.",
            "\"3f9c1a7e0b2d4c6e8f0a1b2c3d4e5f60\"",
        ));
        responses.insert(
            "412".into(),
            json!({ "$ref": "#/components/responses/PreconditionFailed" }),
        );
    }
    parameters.push(header_parameter(
        "Idempotency-Key",
        "1-255 visible ASCII characters (in double quotes or not: `\"k1\"` is `k1`), e.g. a UUID you make per change: send the request again \
         with the same key after a timeout, and the change is made at most once. The first 2xx \
         answer is kept 24 hours per user and replayed, with `Idempotent-Replayed: true`, to the \
         same request (method, path, query and JSON body); the key with another request is `422`, \
         while the first is still running `409`.",
        "5f0e0a4c-3c1d-4a55-9d8e-6b3c2a1f0e9d",
    ));
    parameters.last_mut().expect("just pushed")["schema"] = key_schema;
    responses[&success]["headers"]["Idempotent-Replayed"] = responses::header(
        "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`",
        json!({ "const": "true" }),
        false,
    );
    responses.insert(
        "409".into(),
        json!({ "$ref": "#/components/responses/Conflict" }),
    );
    responses.insert(
        "422".into(),
        json!({ "$ref": "#/components/responses/IdempotencyKeyReused" }),
    );
    responses.insert(
        "307".into(),
        json!({ "$ref": "#/components/responses/ToPrimary" }),
    );
}

/// The document's `webhooks`: what ktasks sends to a webhook, one entry per event type, each
/// with the `WebhookEvent` envelope narrowed to its `type` and `data`.
fn webhooks() -> Value {
    let mut webhooks = Map::new();
    for event in events() {
        let body = json!({ "allOf": [reference("WebhookEvent"), { "properties": {
            "type": { "const": event.kind }, "data": reference(event.data) } }] });
        let example = json!({ "type": event.kind, "timestamp": TIME, "data": event.example });
        let entry = json!({ "post": {
            "operationId": event.id,
            "tags": ["Webhooks"],
            "summary": event.summary,
            "description": event.description,
            "parameters": delivery_headers(),
            "requestBody": {
                "required": true,
                "description": "The event, sent as `application/json`.",
                "content": { "application/json": { "schema": body, "example": example } },
            },
            "responses": {
                "2XX": { "description": "Delivered. The body of the answer is ignored." },
                "default": { "description": "Not delivered, and retried: any other status (a `3xx` too: redirects \
                    are not followed), or no answer within `webhooks.timeout_secs` (10 s by default). Attempts \
                    follow `webhooks.retry_schedule_secs` (by default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h \
                    after the one before: eight over about 27.6 hours), and then the event is `failed`. When an \
                    event fails and nothing reached the webhook since it was created, the webhook is switched off \
                    (`active: false`, with a `disabledReason`)." },
            },
            // Not the API's token: the receiver checks `webhook-signature`.
            "security": [],
        } });
        webhooks.insert(event.kind.to_string(), entry);
    }
    Value::Object(webhooks)
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
            Error::InsufficientScope(""),
            Error::ReadOnlyReplica,
            Error::Forbidden(String::new()),
            Error::NotFound,
            Error::MethodNotAllowed { allow: "GET" },
            Error::Conflict {
                field: None,
                message: String::new(),
            },
            Error::PreconditionFailed,
            Error::InvalidIdempotencyKey,
            Error::IdempotencyKeyReused,
            Error::IdempotencyKeyInFlight,
            Error::PayloadTooLarge { limit: 1 },
            Error::RequestTimeout,
            Error::UnsupportedMediaType,
            Error::RateLimited {
                retry_after_secs: 1,
            },
            Error::TooManyConnections { max: 64 },
            Error::Unavailable(""),
            Error::internal(""),
        ];
        let codes: std::collections::BTreeSet<&str> = errors.iter().map(Error::code).collect();
        for code in &codes {
            assert!(ERROR_CODES.contains(code), "{code}");
        }
        assert_eq!(
            codes.len(),
            ERROR_CODES.len(),
            "every documented code is used"
        );
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
                    || ["getOpenApi", "getDevelopers", "deleteTask", "deleteWebhook"]
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

    #[test]
    fn every_webhook_event_type_has_an_entry_in_webhooks_and_nothing_else_does() {
        let document = document();
        let enumerated: Vec<&str> = document["components"]["schemas"]["WebhookEventType"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kind| kind.as_str().unwrap())
            .collect();
        assert_eq!(enumerated, WEBHOOK_EVENT_TYPES);
        let webhooks = document["webhooks"].as_object().unwrap();
        for kind in &enumerated {
            let body = &webhooks[*kind]["post"]["requestBody"]["content"]["application/json"];
            assert_eq!(
                body["schema"]["allOf"][1]["properties"]["type"]["const"],
                *kind
            );
            assert_eq!(body["example"]["type"], *kind);
        }
        assert_eq!(
            webhooks.len(),
            enumerated.len(),
            "no entry without its type"
        );
    }

    /// The examples are what a client copies: each must be valid by its own schema.
    #[test]
    fn every_example_of_a_body_is_valid() {
        let document = document();
        let mut checked = 0;
        for section in ["paths", "webhooks"] {
            for (path, item) in document[section].as_object().unwrap() {
                for (method, operation) in item.as_object().unwrap() {
                    let mut media = vec![&operation["requestBody"]["content"]["application/json"]];
                    for response in operation["responses"].as_object().unwrap().values() {
                        media.push(&response["content"]["application/json"]);
                    }
                    for media in media {
                        if media["example"].is_null() || media["schema"].is_null() {
                            continue;
                        }
                        let mut root = json!({ "components": document["components"] });
                        for (name, value) in media["schema"].as_object().unwrap() {
                            root[name] = value.clone();
                        }
                        let validator = jsonschema::options()
                            .should_validate_formats(true)
                            .build(&root)
                            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
                        let errors: Vec<String> = validator
                            .iter_errors(&media["example"])
                            .map(|e| format!("{e} at {}", e.instance_path()))
                            .collect();
                        assert!(errors.is_empty(), "{method} {path}: {errors:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 40, "only {checked} examples checked");
    }
}
