//! The document's shared responses and their headers.

use serde_json::{Value, json};

use super::schemas::reference;

/// A response header, inline rather than a `$ref`: generators read `required` only there, and
/// a header that some responses lack (`Link` on the last page) must not be typed as always there.
pub(super) fn header(description: &str, schema: Value, required: bool) -> Value {
    json!({ "description": description, "schema": schema, "required": required })
}

/// The rate-limit headers: on every answer to an authenticated token (`required`), and on an
/// error only when the token got that far.
pub(super) fn rate_limit_headers(required: bool) -> Value {
    let integer = || json!({ "type": "integer" });
    let string = || json!({ "type": "string" });
    json!({
        "X-RateLimit-Limit": header("requests allowed per token in any sliding 60-second window", integer(), required),
        "X-RateLimit-Remaining": header("requests left in the window after this one", integer(), required),
        "X-RateLimit-Reset": header("Unix time (seconds) when the next slot frees", integer(), required),
        "RateLimit-Policy": header("IETF draft: `\"default\";q=<limit>;w=60`", string(), required),
        "RateLimit": header("IETF draft: `\"default\";r=<remaining>;t=<seconds until a slot frees>`", string(), required),
        "Token-Expires-At": token_expires_at(),
    })
}

/// On every answer to a token that stops working at a known time: its expiry, or the end of the
/// grace a rotation gave it, whichever is sooner (SPEC 11). Absent for a token that never does.
fn token_expires_at() -> Value {
    header(
        "when this token stops working (RFC 3339): its expiry, or the end of its rotation's grace; \
         absent for a token that does not expire",
        json!({ "type": "string", "format": "date-time" }),
        false,
    )
}

pub(super) fn error_response(
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

pub(super) fn responses() -> Value {
    json!({
        "BadRequest": error_response(
            "Malformed body (`invalid_json`), a field out of its rules (`validation_failed`, with `field`), \
             an unknown field (`unknown_field`), a bad query parameter (`invalid_query`) or a malformed \
             `Idempotency-Key` (`invalid_idempotency_key`).",
            "validation_failed", "`title` must not be empty", json!({})),
        "Unauthorized": {
            "description": "Missing, malformed, unknown, revoked or expired token.",
            "headers": { "WWW-Authenticate": header("always `Bearer`", json!({ "const": "Bearer" }), true) },
            "content": { "application/json": { "schema": reference("Error"),
                "example": { "error": "this token has been revoked", "code": "unauthorized" } } },
        },
        "BadQuery": error_response(
            "A query parameter that is unknown or out of its rules (`invalid_query`, with `field`), or, on a \
             DELETE, a malformed `Idempotency-Key` (`invalid_idempotency_key`).",
            "invalid_query", "`limit` must be a whole number from 1 to 200", json!({})),
        "PlanRequired": error_response(
            "`plan_required`: the token's user is on the free plan.",
            "plan_required", "API access requires a Pro or Team plan; this account is on the free plan", json!({})),
        "Forbidden": error_response(
            "`plan_required` (the token's user is on the free plan), `insufficient_scope` (a read-only token \
             on a non-GET request, or a token restricted to some spaces creating a space) or `forbidden` (your role in the space does not allow the change: a viewer \
             writing, or a member or viewer managing webhooks).",
            "forbidden", "your role in this space (viewer) only allows reading", json!({})),
        // For the reads that need a role in the space, not only membership (webhooks).
        "ReadForbidden": error_response(
            "`plan_required` (the token's user is on the free plan) or `forbidden` (you are a member of the \
             space, but your role may not read this: webhooks are for the space's owners and admins).",
            "forbidden", "webhooks are managed by the space's owners and admins; your role here is member", json!({})),
        "NotFound": error_response(
            "No such resource, or one in a space you are not a member of: the two are never told apart.",
            "not_found", "not found", json!({})),
        "Conflict": error_response("`conflict`: a uniqueness clash (the slug is taken), or a limit reached (a \
            space already holds 1,000 labels, so a new label name is refused, or 20 webhooks). Or \
            `idempotency_key_in_flight`: a request with this `Idempotency-Key` is still running; retry after \
            `Retry-After` seconds.", "conflict", "the slug \"acme\" is taken", json!({
                "Retry-After": header("with `idempotency_key_in_flight`: seconds to wait before the retry",
                    json!({ "type": "integer", "minimum": 1 }), false),
            })),
        "IdempotencyKeyReused": error_response("`idempotency_key_reused`: this `Idempotency-Key` was used in the \
            last 24 hours for another request (method, path, query or body). Nothing was changed; use a new key.",
            "idempotency_key_reused", "this Idempotency-Key was used for a different request (method, path or body) \
            in the last 24 hours; use a new key for a new request", json!({})),
        "PreconditionFailed": error_response("`precondition_failed`: `If-Match` does not name the object's current \
            `ETag` (it changed since you read it). Nothing was changed.", "precondition_failed",
            "the resource has changed since you read it (If-Match does not name its current ETag); nothing was \
            changed: read it again and retry", json!({})),
        "NotModified": {
            "description": "`If-None-Match` names the current `ETag`: what you hold is current. No body.",
            "headers": {
                "ETag": header("the current `ETag` (the one you sent)", json!({ "type": "string" }), true),
                "X-RateLimit-Limit": rate_limit_headers(true)["X-RateLimit-Limit"],
                "X-RateLimit-Remaining": rate_limit_headers(true)["X-RateLimit-Remaining"],
                "X-RateLimit-Reset": rate_limit_headers(true)["X-RateLimit-Reset"],
                "RateLimit-Policy": rate_limit_headers(true)["RateLimit-Policy"],
                "RateLimit": rate_limit_headers(true)["RateLimit"],
                "Token-Expires-At": token_expires_at(),
            },
        },
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
            "description": "`unavailable`: the request ran past the server's deadline (`server.request_timeout_secs`); \
                try again. `read_only_replica`: a change sent to a read-only replica that has no primary to send \
                it to; send it to the primary.",
            "content": { "application/json": { "schema": reference("Error"),
                "example": { "error": "the request took too long; try again", "code": "unavailable" } } },
        },
        "ToPrimary": {
            "description": "This server is a read-only replica: send the same request (method, body and all) to \
                `Location`, the primary. HTTP clients that follow redirects do so by themselves.",
            "headers": { "Location": header("the same path and query on the primary", json!({ "type": "string", "format": "uri" }), true) },
            "content": { "application/json": { "schema": reference("Error"),
                "example": { "error": "this server is a read-only replica; send writes to https://primary.example.com/api/tasks",
                    "code": "read_only_replica" } } },
        },
        "Internal": {
            "description": "A bug: logged with detail on the server, generic here.",
            "content": { "application/json": { "schema": reference("Error"),
                "example": { "error": "internal error", "code": "internal" } } },
        },
    })
}
