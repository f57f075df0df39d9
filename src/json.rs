//! Reading request input strictly, and the response type handlers return.
//!
//! Bodies are read into a JSON object whose keys are checked against the fields the endpoint
//! knows (an unknown key is `unknown_field`, so a typo like `titel` never passes silently), then
//! taken field by field, so every error names its field. PATCH's "absent = unchanged, null =
//! cleared" falls out of `Body::patch_*`. Query strings are parsed the same strict way.

use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{StatusCode, body::Bytes};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Error;

/// `value` as a JSON string, for hand-written bodies (`api::task_json`). serde_json sends every
/// key and string through a byte-at-a-time escape loop and three writes; most of ours (ids,
/// timestamps, names) need no escape, which one branch-free pass finds, then one copy. Anything
/// else goes to serde_json, so the escapes are exactly serde_json's.
pub fn push_str(out: &mut Vec<u8>, value: &str) {
    let plain = value.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
    });
    if plain {
        out.reserve(value.len() + 2);
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, value).expect("a str serializes");
    }
}

/// `push_str`, or `null`.
pub fn push_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => push_str(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

/// A handler's answer before it becomes a hyper response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Reply {
    pub fn json(status: StatusCode, value: &impl Serialize) -> Reply {
        Reply::written(status, |body| {
            serde_json::to_writer(body, value).expect("API types always serialize");
        })
    }

    /// A body built elsewhere (the OpenAPI document, the reference page).
    pub fn bytes(content_type: &'static str, body: Bytes) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    pub fn ok(value: &impl Serialize) -> Reply {
        Reply::json(StatusCode::OK, value)
    }

    /// A JSON body written by `write`: serde_json (`json`), or by hand (see `push_str`) for the
    /// shapes serde_json is slow on.
    pub fn written(status: StatusCode, write: impl FnOnce(&mut Vec<u8>)) -> Reply {
        let Ok(reply) = Reply::try_written(status, |body| {
            write(body);
            Ok::<_, std::convert::Infallible>(())
        });
        reply
    }

    /// `written`, for a body that is read as it is written and may not be there.
    pub fn try_written<E>(
        status: StatusCode,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Reply, E> {
        // One task is about 600 bytes: starting at serde_json's 128 cost three reallocations.
        let mut body = Vec::with_capacity(1024);
        write(&mut body)?;
        Ok(Reply {
            status,
            content_type: "application/json",
            body: body.into(),
            headers: Vec::new(),
        })
    }

    /// 201 with the object and its `Location`.
    pub fn created(value: &impl Serialize, location: &str) -> Reply {
        Reply::json(StatusCode::CREATED, value).with_header(hyper::header::LOCATION, location)
    }

    pub fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            content_type: "application/json",
            body: Bytes::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> Reply {
        // Values we build are ASCII (URLs we percent-encode, numbers); a bad one is a bug.
        let value = HeaderValue::from_str(value).expect("header values we build are valid");
        self.headers.push((name, value));
        self
    }
}

/// A request body: a JSON object whose keys are all known to the endpoint.
pub struct Body {
    fields: Map<String, Value>,
}

/// A PATCH value: `None` = absent (unchanged), `Some(None)` = null (cleared), `Some(Some(v))` = set.
pub type Patch<T> = Option<Option<T>>;

impl Body {
    /// Checks the media type, parses, and refuses keys outside `known`.
    pub fn parse(headers: &HeaderMap, bytes: &[u8], known: &[&str]) -> Result<Body, Error> {
        if !is_json_media_type(headers) {
            return Err(Error::UnsupportedMediaType);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::InvalidJson(
                "the body is empty; send a JSON object".into(),
            ));
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| Error::InvalidJson(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(Error::InvalidJson("expected a JSON object".into()));
        };
        if let Some(unknown) = fields.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(Error::UnknownField(unknown.clone()));
        }
        Ok(Body { fields })
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Refuses `null` for fields that cannot be cleared.
    pub fn reject_nulls(&self, names: &[&str]) -> Result<(), Error> {
        match names
            .iter()
            .find(|name| self.fields.get(**name).is_some_and(Value::is_null))
        {
            Some(name) => Err(Error::validation(*name, format!("`{name}` cannot be null"))),
            None => Ok(()),
        }
    }

    pub fn required_string(&self, name: &str) -> Result<String, Error> {
        match self.fields.get(name) {
            None | Some(Value::Null) => {
                Err(Error::validation(name, format!("`{name}` is required")))
            }
            Some(value) => as_string(name, value),
        }
    }

    /// Absent and `null` both mean "not given".
    pub fn optional_string(&self, name: &str) -> Result<Option<String>, Error> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => as_string(name, value).map(Some),
        }
    }

    /// For non-nullable PATCH fields: absent = unchanged, `null` is refused.
    pub fn patch_required_string(&self, name: &str) -> Result<Option<String>, Error> {
        match self.fields.get(name) {
            None => Ok(None),
            Some(Value::Null) => Err(Error::validation(name, format!("`{name}` cannot be null"))),
            Some(value) => as_string(name, value).map(Some),
        }
    }

    pub fn patch_string(&self, name: &str) -> Result<Patch<String>, Error> {
        match self.fields.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(value) => as_string(name, value).map(|s| Some(Some(s))),
        }
    }

    pub fn optional_number(&self, name: &str) -> Result<Option<f64>, Error> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(Some)
                    .ok_or_else(|| {
                        Error::validation(name, format!("`{name}` must be a finite number"))
                    })
            }
            Some(_) => Err(Error::validation(
                name,
                format!("`{name}` must be a number"),
            )),
        }
    }

    /// An array of at most `max` strings; absent and `null` are `None`. The length is checked
    /// before anything is copied, so an oversized array costs nothing past parsing.
    pub fn optional_string_array(
        &self,
        name: &str,
        max: usize,
    ) -> Result<Option<Vec<String>>, Error> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) if items.len() > max => Err(Error::validation(
                name,
                format!(
                    "`{name}` has {} entries; at most {max} are allowed",
                    items.len()
                ),
            )),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(Error::validation(
                        name,
                        format!("`{name}` must be an array of strings"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(Error::validation(
                name,
                format!("`{name}` must be an array of strings"),
            )),
        }
    }
}

fn as_string(name: &str, value: &Value) -> Result<String, Error> {
    match value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(Error::validation(
            name,
            format!("`{name}` must be a string"),
        )),
    }
}

/// `application/json`, optionally with parameters (`; charset=utf-8`), or a `+json` type.
fn is_json_media_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let media_type = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

/// A query string: every parameter known to the endpoint, none repeated.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

impl Query {
    pub fn parse(query: Option<&str>, known: &[&str]) -> Result<Query, Error> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = part.split_once('=').unwrap_or((part, ""));
            let name = percent_decode(raw_name).ok_or_else(|| {
                Error::invalid_query(
                    raw_name,
                    "the query string is not valid percent-encoded UTF-8",
                )
            })?;
            let value = percent_decode(raw_value).ok_or_else(|| {
                Error::invalid_query(
                    &name,
                    format!("`{name}` is not valid percent-encoded UTF-8"),
                )
            })?;
            if !known.contains(&name.as_str()) {
                return Err(Error::invalid_query(
                    &name,
                    format!(
                        "unknown query parameter `{name}`; known: {}",
                        known.join(", ")
                    ),
                ));
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(Error::invalid_query(
                    &name,
                    format!("`{name}` is given more than once"),
                ));
            }
            pairs.push((name, value));
        }
        Ok(Query { pairs })
    }

    /// The value of a text parameter. `?q=` counts as not given: clients that build URLs from
    /// empty form fields should not trip on it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).filter(|v| !v.is_empty())
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// An id parameter: absent, or a UUID (an empty or malformed one is `invalid_query`, as the
    /// document's `format: uuid` says; an id that names nothing the caller can see is a 404 later).
    pub fn id(&self, name: &str) -> Result<Option<String>, Error> {
        self.raw(name)
            .map(|value| {
                crate::validate::uuid(value).ok_or_else(|| {
                    Error::invalid_query(name, format!("`{name}` must be an id (a UUID)"))
                })
            })
            .transpose()
    }

    /// A required id parameter.
    pub fn required_id(&self, name: &str) -> Result<String, Error> {
        self.id(name)?.ok_or_else(|| {
            Error::invalid_query(name, format!("the query parameter `{name}` is required"))
        })
    }

    /// A boolean parameter: absent, `true` or `false` (anything else, an empty value included,
    /// is `invalid_query`).
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, Error> {
        match self.raw(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(Error::invalid_query(
                name,
                format!("`{name}` must be true or false"),
            )),
        }
    }

    /// A parameter that is not free text: an empty value is given, not absent (and so it is
    /// refused by whatever checks the value). Only `q` and `cursor` read theirs with `get`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.raw(name)
    }

    /// `limit`: default 50, 1 to 200.
    pub fn limit(&self) -> Result<usize, Error> {
        // Unlike text, an empty `limit=` is not a number, as the document says.
        match self.raw("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    Error::invalid_query(
                        "limit",
                        format!("`limit` must be a whole number from 1 to {MAX_LIMIT}"),
                    )
                }),
        }
    }

    /// The pairs, for building the next page's URL.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are).
pub fn percent_encode(text: &str) -> String {
    use std::fmt::Write;
    text.bytes()
        .fold(String::with_capacity(text.len()), |mut out, b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
            out
        })
}

/// Every item of a page fits `limit`; one more fetched row tells whether a next page exists.
pub fn split_page<T>(mut rows: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let more = rows.len() > limit;
    rows.truncate(limit);
    (rows, more)
}

/// Encodes a cursor: opaque to clients (hex of our keyset text), so its form may change freely.
pub fn encode_cursor(key: &str) -> String {
    // Not `format!("{b:02x}")` per byte: every page writes one, and the table is far cheaper.
    crate::token::hex(key.as_bytes())
}

pub fn decode_cursor(cursor: &str) -> Result<String, Error> {
    let invalid = || Error::invalid_query("cursor", "`cursor` is not a cursor this server issued");
    if !cursor.len().is_multiple_of(2) || cursor.len() > 512 {
        return Err(invalid());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers
    }

    #[test]
    fn body_refuses_unknown_fields_by_name() {
        let error = Body::parse(&json_headers(), br#"{"titel": "x"}"#, &["title"])
            .err()
            .unwrap();
        assert!(matches!(&error, Error::UnknownField(f) if f == "titel"));
    }

    #[test]
    fn body_requires_json_media_type_and_an_object() {
        assert!(matches!(
            Body::parse(&HeaderMap::new(), b"{}", &[]).err().unwrap(),
            Error::UnsupportedMediaType
        ));
        let mut text = HeaderMap::new();
        text.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(matches!(
            Body::parse(&text, b"{}", &[]).err().unwrap(),
            Error::UnsupportedMediaType
        ));
        for bad in [
            &b""[..],
            b"  ",
            b"[1]",
            b"\"s\"",
            b"{",
            b"{\"a\":}",
            b"null",
        ] {
            assert!(matches!(
                Body::parse(&json_headers(), bad, &["a"]).err().unwrap(),
                Error::InvalidJson(_)
            ));
        }
    }

    #[test]
    fn patch_distinguishes_absent_null_and_value() {
        let body = Body::parse(
            &json_headers(),
            br#"{"a": null, "b": "x"}"#,
            &["a", "b", "c"],
        )
        .unwrap();
        assert_eq!(body.patch_string("a").unwrap(), Some(None));
        assert_eq!(body.patch_string("b").unwrap(), Some(Some("x".into())));
        assert_eq!(body.patch_string("c").unwrap(), None);
        assert!(body.patch_required_string("a").is_err());
        let error = body.required_string("c").err().unwrap();
        assert_eq!(error.field(), Some("c"));
    }

    #[test]
    fn typed_fields_name_the_field_at_fault() {
        let body = Body::parse(
            &json_headers(),
            br#"{"n": "1", "s": 1, "l": [1]}"#,
            &["n", "s", "l"],
        )
        .unwrap();
        assert_eq!(body.optional_number("n").err().unwrap().field(), Some("n"));
        assert_eq!(body.optional_string("s").err().unwrap().field(), Some("s"));
        assert_eq!(
            body.optional_string_array("l", 10).err().unwrap().field(),
            Some("l")
        );
    }

    #[test]
    fn query_is_strict() {
        let query = Query::parse(Some("q=a+b%21&limit=5"), &["q", "limit"]).unwrap();
        assert_eq!(query.get("q"), Some("a b!"));
        assert_eq!(query.limit().unwrap(), 5);
        assert!(Query::parse(Some("lmit=5"), &["limit"]).is_err());
        assert!(Query::parse(Some("q=1&q=2"), &["q"]).is_err());
        assert!(Query::parse(Some("q=%zz"), &["q"]).is_err());
        assert!(Query::parse(Some("q=%ff"), &["q"]).is_err());
        let empty = Query::parse(Some("q=&cursor="), &["q", "cursor"]).unwrap();
        assert_eq!(
            (empty.get("q"), empty.get("cursor")),
            (None, None),
            "empty text = absent"
        );

        for bad in ["0", "201", "-1", "x", ""] {
            let query = Query::parse(Some(&format!("limit={bad}")), &["limit"]).unwrap();
            assert!(query.limit().is_err(), "{bad}");
        }
        assert_eq!(Query::parse(None, &[]).unwrap().limit().unwrap(), 50);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = "1.5|0190a0b0-0000-7000-8000-000000000000";
        assert_eq!(decode_cursor(&encode_cursor(key)).unwrap(), key);
        for bad in ["z", "zz", "abc", "ff"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percent_encoding_round_trips() {
        let text = "a b&c=d/é";
        assert_eq!(percent_decode(&percent_encode(text)).unwrap(), text);
    }
}
