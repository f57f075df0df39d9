//! `Idempotency-Key` (SPEC 10; the IETF httpapi draft, as Stripe does it): a client that sends
//! a POST, PATCH or DELETE under `/api` with a key may send it again, after a timeout or a crash
//! on either side, and the change is made at most once.
//!
//! - The request's writes and its answer commit in one transaction (`Writes::hold`): the first
//!   2xx answer is stored with the change, so there is never a committed change without its
//!   stored answer, even when the server is killed between its commit and its answer. The
//!   handler itself (parsing, checks, building the answer) runs outside the writer, as without a
//!   key; the batch it joins is only held open until the answer is written beside the change.
//! - The same key again (same user) finds that answer: same request, it comes back with
//!   `Idempotent-Replayed: true` and nothing runs; another request, 422.
//! - While the first is still running, the same key gets 409 at once (a set of keys in flight in
//!   this process, which is the only writer). A non-2xx answer is not stored: the key is free
//!   again for a corrected retry.
//! - "Same request" is the method, path, query and body. A JSON body is compared as JSON (key
//!   order and spacing do not matter, as a client re-serializing its retry would change them).
//! - Keys live 24 hours; the server prunes older ones every minute (`prune`).

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashSet;
use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue};

use crate::app::ApiRequest;
use crate::auth::Principal;
use crate::error::Error;
use crate::reply::Reply;
use crate::store::idempotency::{self, Stored};
use crate::store::{Store, Writes};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a key's answer is kept (SPEC 10).
pub const KEPT: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_KEY_CHARS: usize = 255;

/// The keys whose first request is running: `(user id, key)`.
#[derive(Default)]
pub struct InFlight(Arc<DashSet<(String, String)>>);

/// A key held in flight until dropped (after the request's commit, with its answer).
pub struct Flight {
    keys: Arc<DashSet<(String, String)>>,
    key: (String, String),
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.keys.remove(&self.key);
    }
}

/// The request's key: `None` without the header, 400 when it is malformed (empty, longer than
/// 255, not visible ASCII, or sent twice). A key in double quotes (the draft's structured-field
/// string) is the same key as without them; `""` alone is a key of two quotes.
pub fn key(request: &ApiRequest) -> Result<Option<String>, Error> {
    let mut values = request.headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::InvalidIdempotencyKey);
    }
    let raw = value.as_bytes();
    if raw.is_empty() || raw.len() > MAX_KEY_CHARS || !raw.iter().all(u8::is_ascii_graphic) {
        return Err(Error::InvalidIdempotencyKey);
    }
    let key = raw
        .strip_prefix(b"\"")
        .and_then(|k| k.strip_suffix(b"\""))
        .filter(|k| !k.is_empty())
        .unwrap_or(raw);
    Ok(Some(
        String::from_utf8(key.to_vec()).expect("visible ASCII"),
    ))
}

/// Runs a write request (`run`, given the `Writes` to write through) under its
/// `Idempotency-Key`, if it has one; `flight` holds the key in flight until the caller drops it,
/// which it must do only after the commit.
pub fn run(
    store: &Store,
    in_flight: &InFlight,
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    flight: &mut Option<Flight>,
    run: impl FnOnce(&Writes<'_>) -> Result<Reply, Error>,
) -> Result<Reply, Error> {
    let Some(key) = key(request)? else {
        return run(writes);
    };
    let held = (principal.user.id.clone(), key);
    if !in_flight.0.insert(held.clone()) {
        return Err(Error::IdempotencyKeyInFlight);
    }
    let (user_id, key) = &held;
    *flight = Some(Flight {
        keys: Arc::clone(&in_flight.0),
        key: held.clone(),
    });
    let fingerprint = fingerprint(request, principal.viewer().spaces);
    let now = crate::time::now_unix_ms();
    let since = now - KEPT.as_millis() as i64;
    // Holding the key in flight, nothing else of this process writes its row: what a read finds
    // now stands. (A first request that ran past its deadline is the exception: it lets go of
    // the key before its commit. The check in the write below catches that.)
    if let Some(stored) = store.read(|conn| idempotency::find(conn, user_id, key, since))? {
        return if stored.request == fingerprint {
            Ok(replay(stored))
        } else {
            Err(Error::IdempotencyKeyReused)
        };
    }
    // The handler's writes, then the answer: one transaction (`Writes::hold`).
    let (owner, held_key) = (user_id.clone(), key.clone());
    writes.hold(
        move |tx| match idempotency::find(tx, &owner, &held_key, since)? {
            Some(_) => Err(Error::IdempotencyKeyInFlight),
            None => Ok(()),
        },
    );
    let reply = match run(writes) {
        Ok(reply) if reply.status.is_success() => reply,
        other => {
            // Its writes, if any, are rolled back: a change without its answer must not commit
            // (the retry would make it again).
            let _ = writes.release(None);
            return other;
        }
    };
    let mut headers = String::new();
    for (name, value) in &reply.headers {
        // Values we build are visible ASCII (`Reply::with_header`).
        if let Ok(value) = value.to_str() {
            headers.push_str(&format!("{name}: {value}\n"));
        }
    }
    let answer = Stored {
        request: fingerprint,
        status: reply.status.as_u16(),
        headers,
        body: reply.body.to_vec(),
    };
    writes.release(Some(&|tx| {
        idempotency::save(tx, user_id, key, now, &answer)
    }))?;
    Ok(reply)
}

/// The stored answer again (its status, headers and body), marked as such.
fn replay(stored: Stored) -> Reply {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut reply = if status == StatusCode::NO_CONTENT {
        Reply::no_content()
    } else {
        Reply::written(status, |out| *out = stored.body)
    };
    for line in stored.headers.lines() {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            reply.headers.push((name, value));
        }
    }
    reply
        .headers
        .push((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
    reply
}

/// What makes two requests with one key the same request: method, path, query and body, a JSON
/// body as its value (objects' keys sorted, no spacing).
/// What makes two requests "the same" for a key: method, path and query, the body as JSON, and the
/// token's space restriction. Keys are per user; with the restriction in, a token limited to some
/// spaces can never be replayed an answer another of its user's tokens got from outside them (it
/// gets 422 instead).
fn fingerprint(request: &ApiRequest, restriction: Option<&str>) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    if let Some(spaces) = restriction {
        hasher.update(b"spaces ");
        hasher.update(spaces.as_bytes());
        hasher.update(b"\n");
    }
    hasher.update(request.method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(
        request
            .uri
            .path_and_query()
            .map_or("", |p| p.as_str())
            .as_bytes(),
    );
    hasher.update(b"\n");
    match serde_json::from_slice::<serde_json::Value>(&request.body) {
        // serde_json's maps are ordered by key: the value's bytes do not depend on the order sent.
        Ok(value) => hasher.update(&serde_json::to_vec(&value).expect("a value serializes")),
        Err(_) => hasher.update(&request.body),
    };
    hasher.finalize().as_bytes().to_vec()
}

/// Deletes the answers older than 24 hours, a thousand per write so that writes in between
/// are not held up; returns how many.
pub fn prune(store: &Store) -> crate::store::Result<usize> {
    let before = crate::time::now_unix_ms() - KEPT.as_millis() as i64;
    let mut total = 0;
    loop {
        let deleted = store.write(|tx| idempotency::prune(tx, before, 1000))?;
        total += deleted;
        if deleted < 1000 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use hyper::Method;

    use super::*;
    use crate::router::Route;

    fn request(method: Method, uri: &str, body: &str, key: &[&str]) -> ApiRequest {
        let mut headers = hyper::HeaderMap::new();
        for key in key {
            headers.append(IDEMPOTENCY_KEY, HeaderValue::from_str(key).unwrap());
        }
        ApiRequest {
            route: Route::Api(crate::router::ApiRoute::Write(
                crate::router::WriteRoute::CreateTask,
            )),
            method,
            uri: uri.parse().unwrap(),
            headers,
            body: hyper::body::Bytes::copy_from_slice(body.as_bytes()),
            client_ip: std::net::Ipv4Addr::LOCALHOST.into(),
        }
    }

    #[test]
    fn keys_are_one_value_of_visible_ascii_quotes_optional() {
        let key_of = |values: &[&str]| key(&request(Method::POST, "/api/tasks", "", values));
        assert_eq!(key_of(&[]).unwrap(), None);
        assert_eq!(key_of(&["abc-123"]).unwrap().as_deref(), Some("abc-123"));
        assert_eq!(
            key_of(&["\"abc-123\""]).unwrap().as_deref(),
            Some("abc-123")
        );
        let long = "k".repeat(255);
        assert_eq!(key_of(&[&long]).unwrap(), Some(long.clone()));
        assert_eq!(key_of(&["\"\""]).unwrap().as_deref(), Some("\"\""));
        for bad in [&["k".repeat(256)][..], &["a b".into()], &["".into()]] {
            let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
            let error = key_of(&bad).unwrap_err();
            assert_eq!(error.code(), "invalid_idempotency_key", "{bad:?}");
            assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        }
        assert!(key_of(&["a", "b"]).is_err(), "two keys are one too many");
    }

    #[test]
    fn the_same_request_is_the_same_json_whatever_its_spacing_and_order() {
        let fp = |method, uri, body| fingerprint(&request(method, uri, body, &[]), None);
        let base = fp(
            Method::POST,
            "/api/tasks",
            r#"{"title":"a","projectId":"p"}"#,
        );
        assert_eq!(
            base,
            fp(
                Method::POST,
                "/api/tasks",
                "{ \"projectId\": \"p\",\n \"title\": \"a\" }"
            )
        );
        assert_ne!(
            base,
            fp(
                Method::POST,
                "/api/tasks",
                r#"{"title":"b","projectId":"p"}"#
            )
        );
        assert_ne!(
            base,
            fp(
                Method::PATCH,
                "/api/tasks",
                r#"{"title":"a","projectId":"p"}"#
            )
        );
        assert_ne!(
            base,
            fp(
                Method::POST,
                "/api/tasks?x=1",
                r#"{"title":"a","projectId":"p"}"#
            )
        );
        assert_ne!(
            base,
            fp(
                Method::POST,
                "/api/projects",
                r#"{"title":"a","projectId":"p"}"#
            )
        );
        assert_ne!(
            fp(Method::DELETE, "/x", "not json"),
            fp(Method::DELETE, "/x", "not json ")
        );
        let restricted = |spaces| {
            fingerprint(
                &request(
                    Method::POST,
                    "/api/tasks",
                    r#"{"title":"a","projectId":"p"}"#,
                    &[],
                ),
                spaces,
            )
        };
        assert_ne!(
            base,
            restricted(Some(r#"["s1"]"#)),
            "a restricted token is another caller"
        );
        assert_ne!(restricted(Some(r#"["s1"]"#)), restricted(Some(r#"["s2"]"#)));
        assert_eq!(restricted(None), base);
    }

    #[test]
    fn a_replay_has_the_first_answer_and_says_so() {
        let reply = replay(Stored {
            request: Vec::new(),
            status: 201,
            headers: "location: http://h/api/tasks/1\netag: \"abc\"\ncache-control: no-store\n"
                .into(),
            body: b"{\"id\":\"1\"}".to_vec(),
        });
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(&reply.body[..], b"{\"id\":\"1\"}");
        let names: Vec<&str> = reply.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["location", "etag", "cache-control", "idempotent-replayed"]
        );
        assert_eq!(reply.headers[1].1, "\"abc\"");
        let deleted = replay(Stored {
            request: Vec::new(),
            status: 204,
            headers: String::new(),
            body: Vec::new(),
        });
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
        assert!(deleted.body.is_empty());
    }
}
