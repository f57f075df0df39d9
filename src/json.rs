//! Reading a request body strictly, and writing JSON strings by hand.
//!
//! Bodies are read into a JSON object whose keys are checked against the fields the endpoint
//! knows (an unknown key is `unknown_field`, so a typo like `titel` never passes silently), then
//! taken field by field, so every error names its field. PATCH's "absent = unchanged, null =
//! cleared" falls out of `Body::patch_*`.

use hyper::header::{CONTENT_TYPE, HeaderMap};
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

    /// `patch_string` with a value, when there is one, checked by `check` (`validate::*`).
    pub fn checked_patch_string(
        &self,
        name: &str,
        check: impl FnOnce(&str, String) -> Result<String, Error>,
    ) -> Result<Patch<String>, Error> {
        self.patch_string(name)?
            .map(|value| value.map(|value| check(name, value)).transpose())
            .transpose()
    }

    /// A boolean; absent is `None`, `null` is refused (nothing to clear).
    pub fn optional_bool(&self, name: &str) -> Result<Option<bool>, Error> {
        match self.fields.get(name) {
            None => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(*value)),
            Some(_) => Err(Error::validation(
                name,
                format!("`{name}` must be true or false"),
            )),
        }
    }

    pub fn optional_number(&self, name: &str) -> Result<Option<f64>, Error> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    // -0 is 0: SQLite stores it so, and an answer saying -0.0 that a read then
                    // says 0.0 would change the object's ETag without a change.
                    .map(|f| Some(f + 0.0))
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

    /// For a non-nullable array in a PATCH: absent = unchanged, `null` is refused.
    pub fn patch_required_array(
        &self,
        name: &str,
        max: usize,
    ) -> Result<Option<Vec<String>>, Error> {
        if let Some(Value::Null) = self.fields.get(name) {
            return Err(Error::validation(name, format!("`{name}` cannot be null")));
        }
        self.optional_string_array(name, max)
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

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

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
}
