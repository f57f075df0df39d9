//! Conditional requests (SPEC 10; RFC 9110 section 13): an `ETag` on every response that carries
//! one task, project or space, `If-None-Match` on their GETs (`304`), `If-Match` on their changes
//! (`412`).
//!
//! The ETag is a hash of the JSON body itself (its 128-bit XXH3, in hex). So it changes exactly
//! when the bytes the caller reads do: a task's assignees and labels, a label's new colour, a
//! space's `role` for this caller. No version column has to be bumped by every path that can
//! change what a task looks like (cascades included), and it costs no query. XXH3 rather than
//! the BLAKE3 the tokens use: a validator only has to tell versions of one object apart, and
//! BLAKE3 of a 700-byte task cost ~7,000 instructions, a tenth of a whole `GET /api/tasks/:id`
//! (`bench/instructions.sh`). A replayed idempotent response carries the ETag it was sent with.

use hyper::StatusCode;
use hyper::body::Bytes;
use hyper::header::{ETAG, HeaderMap, HeaderName, HeaderValue, IF_MATCH, IF_NONE_MATCH};

use crate::error::Error;
use crate::reply::Reply;

/// The strong validator of `body`: `"` + 32 hex digits + `"`.
pub fn etag_of(body: &[u8]) -> HeaderValue {
    let hash = xxhash_rust::xxh3::xxh3_128(body).to_be_bytes();
    let mut tag = [b'"'; 34];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in hash.iter().enumerate() {
        tag[1 + 2 * i] = HEX[usize::from(byte >> 4)];
        tag[2 + 2 * i] = HEX[usize::from(byte & 15)];
    }
    HeaderValue::from_bytes(&tag).expect("quoted hex is a valid header value")
}

/// `reply` with the ETag of its body.
pub fn tagged(mut reply: Reply) -> Reply {
    let tag = etag_of(&reply.body);
    reply.headers.push((ETAG, tag));
    reply
}

/// A GET's `reply`, tagged; `304 Not Modified` with the tag and no body when `If-None-Match`
/// names it (weak comparison, as RFC 9110 asks for `If-None-Match`) or is `*`.
pub fn tagged_get(reply: Reply, headers: &HeaderMap) -> Reply {
    let mut reply = tagged(reply);
    let (_, tag) = reply.headers.last().expect("tagged adds the ETag");
    if matches(headers, &IF_NONE_MATCH, tag, Comparison::Weak) == Some(true) {
        reply.status = StatusCode::NOT_MODIFIED;
        reply.body = Bytes::new();
    }
    reply
}

/// `Ok` unless the request has `If-Match` and it names no current ETag of the resource, whose
/// body as a GET would answer it `current` writes (called only when the header is there).
/// Strong comparison: a weak tag never matches. `*` matches any resource that exists.
pub fn check_if_match(
    headers: &HeaderMap,
    current: impl FnOnce(&mut Vec<u8>),
) -> Result<(), Error> {
    if !headers.contains_key(IF_MATCH) {
        return Ok(());
    }
    let mut body = Vec::with_capacity(1024);
    current(&mut body);
    match matches(headers, &IF_MATCH, &etag_of(&body), Comparison::Strong) {
        Some(false) => Err(Error::PreconditionFailed),
        _ => Ok(()),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Comparison {
    Strong,
    Weak,
}

/// Whether the `name` headers (a comma-separated list of entity tags, or `*`) name `tag`; `None`
/// when there are none. A tag sent without its quotes (a common client slip) counts as quoted.
fn matches(
    headers: &HeaderMap,
    name: &HeaderName,
    tag: &HeaderValue,
    comparison: Comparison,
) -> Option<bool> {
    let ours = tag.as_bytes();
    let ours = &ours[1..ours.len() - 1];
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let found = values
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|member| {
            if member == b"*" {
                return true;
            }
            let (weak, opaque) = match member.strip_prefix(b"W/") {
                Some(rest) => (true, rest),
                None => (false, member),
            };
            let opaque = opaque
                .strip_prefix(b"\"")
                .and_then(|o| o.strip_suffix(b"\""))
                .unwrap_or(opaque);
            opaque == ours && !(weak && comparison == Comparison::Strong)
        });
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: HeaderName, values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_tag_is_quoted_hex_and_follows_the_bytes() {
        let tag = etag_of(b"{\"a\":1}");
        let text = tag.to_str().unwrap();
        assert_eq!(text.len(), 34);
        assert!(text.starts_with('"') && text.ends_with('"'));
        assert!(text[1..33].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(etag_of(b"{\"a\":1}"), tag);
        assert_ne!(etag_of(b"{\"a\":2}"), tag);
    }

    #[test]
    fn if_none_match_compares_weakly_and_lists_and_star_match() {
        let body = b"{\"id\":\"x\"}";
        let tag = etag_of(body).to_str().unwrap().to_string();
        let reply = |headers: &HeaderMap| {
            tagged_get(
                Reply::bytes("application/json", Bytes::from_static(body)),
                headers,
            )
        };
        for sent in [
            vec![tag.clone()],
            vec![format!("W/{tag}")],
            vec![format!("\"other\", {tag}")],
            vec!["\"other\"".into(), tag.clone()],
            vec!["*".into()],
            vec![tag.trim_matches('"').to_string()],
        ] {
            let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
            let reply = reply(&with(IF_NONE_MATCH, &sent));
            assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{sent:?}");
            assert!(reply.body.is_empty());
            assert_eq!(reply.headers, vec![(ETAG, etag_of(body))]);
        }
        for sent in [&["\"other\""][..], &["W/\"other\", \"x\""][..]] {
            assert_eq!(reply(&with(IF_NONE_MATCH, sent)).status, StatusCode::OK);
        }
        let plain = reply(&HeaderMap::new());
        assert_eq!(plain.status, StatusCode::OK);
        assert_eq!(&plain.body[..], body);
    }

    #[test]
    fn if_match_compares_strongly() {
        let body = b"{\"id\":\"x\"}";
        let tag = etag_of(body).to_str().unwrap().to_string();
        let check = |values: &[&str]| {
            check_if_match(&with(IF_MATCH, values), |out| out.extend_from_slice(body))
        };
        assert!(check(&[&tag]).is_ok());
        assert!(check(&["*"]).is_ok());
        assert!(check(&[&format!("\"a\", {tag}")]).is_ok());
        for refused in [format!("W/{tag}"), "\"a\"".into(), String::new()] {
            let error = check(&[&refused]).unwrap_err();
            assert_eq!(error.status(), StatusCode::PRECONDITION_FAILED, "{refused}");
            assert_eq!(error.code(), "precondition_failed");
        }
        assert!(check_if_match(&HeaderMap::new(), |_| panic!("not read without If-Match")).is_ok());
    }
}
