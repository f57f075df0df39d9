//! The one error type of ktasks and its single mapping to HTTP (SPEC section 2).
//!
//! Handlers, auth and the store return `Result<_, Error>`; an `Error` becomes the whole HTTP
//! response, status, JSON body and headers, in exactly one place (`Error::to_response`). What a client reads (`message`) is kept
//! apart from what the operator needs (`Internal`'s detail, logged once, never sent).

use std::fmt;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// The one response type of the server.
pub type HttpResponse = Response<Full<Bytes>>;

#[derive(Debug)]
pub enum Error {
    /// The body is not JSON, or not a JSON object.
    InvalidJson(String),
    /// One input field breaks its rules.
    Validation {
        field: String,
        message: String,
    },
    /// A body field we do not know (typos like `titel` must not pass silently).
    UnknownField(String),
    /// A query parameter is unknown or malformed.
    InvalidQuery {
        field: String,
        message: String,
    },
    /// Missing, malformed, unknown, revoked or expired token.
    Unauthorized(&'static str),
    PlanRequired,
    /// The token may not do this: a read-only token writing, a space-restricted one creating a
    /// space. The message says which.
    InsufficientScope(&'static str),
    /// Visible to the caller, but the role does not allow the change.
    Forbidden(String),
    /// Unknown route, or a resource that does not exist or that the caller cannot see.
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    Conflict {
        field: Option<String>,
        message: String,
    },
    PayloadTooLarge {
        limit: usize,
    },
    /// The body did not arrive within `server.body_read_timeout_secs`, or too slowly.
    RequestTimeout,
    UnsupportedMediaType,
    RateLimited {
        retry_after_secs: u64,
    },
    /// One client address holds `server.max_connections_per_ip` connections already.
    TooManyConnections {
        max: usize,
    },
    /// The server cannot answer now: the database does not answer (health check), or a request
    /// ran past its deadline.
    Unavailable(&'static str),
    /// A write reached a read replica (`database.read_only`, SPEC 13) with no `server.primary_url`
    /// to send it to; or the replica's store refused one.
    ReadOnlyReplica,
    /// `If-Match` names none of the resource's current ETags: nothing was changed.
    PreconditionFailed,
    /// An `Idempotency-Key` header that is not 1-255 visible ASCII characters.
    InvalidIdempotencyKey,
    /// The key was used for another request (method, path or body) within 24 hours.
    IdempotencyKeyReused,
    /// The first request with the key is still running.
    IdempotencyKeyInFlight,
    /// A bug or an environment failure: the detail is logged, the client reads "internal error".
    Internal(String),
}

impl Error {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn invalid_query(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidQuery {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(detail: impl fmt::Display) -> Error {
        Error::Internal(detail.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::InvalidJson(_)
            | Error::Validation { .. }
            | Error::UnknownField(_)
            | Error::InvalidQuery { .. }
            | Error::InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::PlanRequired | Error::InsufficientScope(_) | Error::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict { .. } | Error::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            Error::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Error::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::RateLimited { .. } | Error::TooManyConnections { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Error::Unavailable(_) | Error::ReadOnlyReplica => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, snake_case `code` clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidJson(_) => "invalid_json",
            Error::Validation { .. } => "validation_failed",
            Error::UnknownField(_) => "unknown_field",
            Error::InvalidQuery { .. } => "invalid_query",
            Error::Unauthorized(_) => "unauthorized",
            Error::PlanRequired => "plan_required",
            Error::InsufficientScope(_) => "insufficient_scope",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound => "not_found",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::Conflict { .. } => "conflict",
            Error::PreconditionFailed => "precondition_failed",
            Error::InvalidIdempotencyKey => "invalid_idempotency_key",
            Error::IdempotencyKeyReused => "idempotency_key_reused",
            Error::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::RequestTimeout => "request_timeout",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::RateLimited { .. } | Error::TooManyConnections { .. } => "rate_limited",
            Error::Unavailable(_) => "unavailable",
            Error::ReadOnlyReplica => "read_only_replica",
            Error::Internal(_) => "internal",
        }
    }

    /// The input field at fault, when there is exactly one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Validation { field, .. } | Error::InvalidQuery { field, .. } => Some(field),
            Error::UnknownField(field) => Some(field),
            Error::Conflict { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// The whole response: status, JSON body and the headers some errors carry.
    pub fn to_response(&self) -> HttpResponse {
        let body = serde_json::to_vec(&self.to_json()).expect("error bodies serialize");
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers() {
            headers.insert(name, value);
        }
        response
    }

    /// The response as HTTP/1.1 bytes, for an answer written to a socket outside hyper (a
    /// connection refused before it is served), then closed.
    pub fn to_http1(&self) -> Vec<u8> {
        let body = serde_json::to_vec(&self.to_json()).expect("error bodies serialize");
        let status = self.status();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        );
        for (name, value) in self.headers() {
            if name != header::CONNECTION {
                head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
            }
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&body);
        bytes
    }

    /// The headers some errors carry besides their body.
    fn headers(&self) -> Vec<(header::HeaderName, HeaderValue)> {
        match self {
            Error::Unauthorized(_) => {
                vec![(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))]
            }
            Error::MethodNotAllowed { allow } => {
                vec![(header::ALLOW, HeaderValue::from_static(allow))]
            }
            Error::RateLimited { retry_after_secs } => {
                vec![(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs))]
            }
            Error::TooManyConnections { .. } | Error::IdempotencyKeyInFlight => {
                vec![(header::RETRY_AFTER, HeaderValue::from_static("1"))]
            }
            // The rest of the body may still be on its way: this connection cannot carry another
            // request, and hyper closes it after this answer.
            Error::RequestTimeout => vec![(header::CONNECTION, HeaderValue::from_static("close"))],
            _ => Vec::new(),
        }
    }

    /// The JSON error body: `{"error", "code", "field"?}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "error": self.to_string(), "code": self.code() });
        if let Some(field) = self.field() {
            body["field"] = field.into();
        }
        body
    }
}

/// The message a person can act on. Never SQL text, never internal detail.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidJson(detail) => write!(f, "request body is not valid JSON: {detail}"),
            Error::Validation { message, .. } => f.write_str(message),
            Error::UnknownField(field) => write!(f, "unknown field `{field}`"),
            Error::InvalidQuery { message, .. } => f.write_str(message),
            Error::Unauthorized(why) => f.write_str(why),
            Error::PlanRequired => f.write_str(
                "API access requires a Pro or Team plan; this account is on the free plan",
            ),
            Error::InsufficientScope(why) => f.write_str(why),
            Error::Forbidden(message) => f.write_str(message),
            Error::NotFound => f.write_str("not found"),
            Error::MethodNotAllowed { allow } => {
                write!(f, "method not allowed here; allowed: {allow}")
            }
            Error::Conflict { message, .. } => f.write_str(message),
            Error::PreconditionFailed => f.write_str(
                "the resource has changed since you read it (If-Match does not name its current \
                 ETag); nothing was changed: read it again and retry",
            ),
            Error::InvalidIdempotencyKey => f.write_str(
                "Idempotency-Key must be one value of 1 to 255 visible ASCII characters",
            ),
            Error::IdempotencyKeyReused => f.write_str(
                "this Idempotency-Key was used for a different request (method, path or body) \
                 in the last 24 hours; use a new key for a new request",
            ),
            Error::IdempotencyKeyInFlight => f.write_str(
                "a request with this Idempotency-Key is still being processed; retry after it \
                 finishes",
            ),
            Error::PayloadTooLarge { limit } => {
                write!(f, "request body is larger than the limit of {limit} bytes")
            }
            Error::RequestTimeout => f.write_str(
                "the request body did not arrive in time (too slow, or shorter than announced)",
            ),
            Error::UnsupportedMediaType => {
                f.write_str("request body must be JSON, sent with Content-Type: application/json")
            }
            Error::RateLimited { retry_after_secs } => {
                write!(f, "rate limit exceeded; retry in {retry_after_secs} s")
            }
            Error::TooManyConnections { max } => write!(
                f,
                "too many open connections from your address (at most {max}); close some and retry"
            ),
            Error::Unavailable(why) => f.write_str(why),
            Error::ReadOnlyReplica => f.write_str(
                "this database is a read-only replica (database.read_only): send writes to the \
                 primary",
            ),
            Error::Internal(_) => f.write_str("internal error"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Error {
        Error::Internal(format!("sqlite: {error}"))
    }
}

impl From<r2d2::Error> for Error {
    fn from(error: r2d2::Error) -> Error {
        Error::Internal(format!("connection pool: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_becomes_the_whole_response_headers_included() {
        let header = |error: Error, name: header::HeaderName| {
            let response = error.to_response();
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/json",
                "{error:?}"
            );
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let unauthorized = Error::Unauthorized("invalid token");
        assert_eq!(
            header(unauthorized, header::WWW_AUTHENTICATE).as_deref(),
            Some("Bearer")
        );
        let not_allowed = Error::MethodNotAllowed { allow: "GET, POST" };
        assert_eq!(
            header(not_allowed, header::ALLOW).as_deref(),
            Some("GET, POST")
        );
        let limited = Error::RateLimited {
            retry_after_secs: 7,
        };
        assert_eq!(header(limited, header::RETRY_AFTER).as_deref(), Some("7"));
        assert_eq!(
            header(Error::RequestTimeout, header::CONNECTION).as_deref(),
            Some("close")
        );
        assert_eq!(header(Error::NotFound, header::RETRY_AFTER), None);
        // A connection refused outside hyper gets the same status, body and headers as bytes.
        let refused = String::from_utf8(Error::TooManyConnections { max: 64 }.to_http1()).unwrap();
        assert!(
            refused.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{refused}"
        );
        assert!(refused.contains("\r\nretry-after: 1\r\n"), "{refused}");
        assert!(
            refused.contains("\r\nConnection: close\r\n\r\n{"),
            "{refused}"
        );
        assert!(refused.contains(r#""code":"rate_limited""#), "{refused}");
        assert_eq!(
            Error::NotFound.to_response().status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn internal_detail_never_reaches_the_client() {
        let error = Error::internal("sqlite: no such table: tasks (SELECT * FROM tasks)");
        let body = error.to_json();
        assert_eq!(body["error"], "internal error");
        assert_eq!(body["code"], "internal");
        assert!(!body.to_string().contains("SELECT"));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn field_is_present_only_when_one_field_is_at_fault() {
        let body = Error::validation("title", "title must not be empty").to_json();
        assert_eq!(body["field"], "title");
        assert_eq!(body["code"], "validation_failed");
        assert!(Error::NotFound.to_json().get("field").is_none());
        assert_eq!(
            Error::UnknownField("titel".into()).to_json()["field"],
            "titel"
        );
    }
}
