//! Query strings read strictly (every parameter known to the endpoint, none repeated, each value
//! checked as its type says), forms read the same way (a form's checkbox group may repeat its
//! one name), and the opaque cursors of paged lists.

use crate::error::Error;

/// A query string: every parameter known to the endpoint, none repeated.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

impl Query {
    pub fn parse(query: Option<&str>, known: &[&str]) -> Result<Query, Error> {
        Query::parse_with_lists(query, known, &[])
    }

    /// `parse`, except that the names in `lists` (also in `known`) may be given any number of
    /// times: a form's group of checkboxes sharing one name. Read them with `all`.
    pub fn parse_with_lists(
        query: Option<&str>,
        known: &[&str],
        lists: &[&str],
    ) -> Result<Query, Error> {
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
            if !lists.contains(&name.as_str()) && pairs.iter().any(|(n, _)| *n == name) {
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

    /// Every value of a list parameter (`parse_with_lists`), in the order given.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
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

/// Decodes a query component (`+` is a space); `None` when it is not valid percent-encoded UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
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
    fn only_list_parameters_may_repeat() {
        let known = ["csrf", "events"];
        let form =
            Query::parse_with_lists(Some("events=a&csrf=x&events=b"), &known, &["events"]).unwrap();
        assert_eq!(form.all("events"), ["a", "b"]);
        assert_eq!(form.get("csrf"), Some("x"));
        assert!(Query::parse_with_lists(Some("csrf=x&csrf=y"), &known, &["events"]).is_err());
        assert!(Query::parse_with_lists(Some("other=1"), &known, &["events"]).is_err());
        assert!(Query::parse(Some("events=a&events=b"), &known).is_err());
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
