//! Bearer authentication: `Authorization` header -> token of the right shape -> hash -> principal.
//!
//! A token that fails the checksum is refused before the database is asked (it is checked on a
//! cache miss: a cached token was found in the database, so it passed). What a lookup found is
//! cached (`TokenCache`) and trusted only while the database's `auth_epoch` is the number it was
//! looked up under; triggers bump it on any change to a token or a user, from any process. So
//! each request still asks SQLite one question (one integer, in the request's snapshot), and a
//! revocation by the CLI in another process is seen on the very next request, as before the cache.
//! `lastUsedAt` is written at most once a minute per token.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use dashmap::DashMap;
use hyper::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::Error;
use crate::store::spaces::Viewer;
use crate::store::tokens::{self, Scope, TokenInfo};
use crate::store::users::User;
use crate::store::{Snapshot, Writes};
use crate::token::{self, TokenHash};

/// Who is calling, with which token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Arc<User>,
    pub token: Arc<TokenInfo>,
    pub token_hash: TokenHash,
    /// The token's space restriction as the JSON array the store binds (`Viewer::spaces`).
    spaces: Option<Arc<str>>,
    /// When the token stops working (expiry or the end of a rotation's grace): the value of the
    /// `Token-Expires-At` header; `None` for a token that does not.
    pub ends_at: Option<HeaderValue>,
    /// The `auth_epoch` the token was looked up under.
    epoch: i64,
    /// The request's time, when the token's `lastUsedAt` is older than `LAST_USED_GRANULARITY`
    /// (`record_use` refreshes it).
    last_use_due: Option<OffsetDateTime>,
}

/// Token lookups by hash, each with the `auth_epoch` it was made under. Revoked and expired
/// tokens are cached too (the checks run on every use); unknown hashes are not, so invented
/// tokens cannot grow it. It holds at most one entry per token in the database, and is emptied
/// whenever the epoch moves.
#[derive(Default)]
pub struct TokenCache {
    entries: DashMap<TokenHash, Cached>,
    /// The newest epoch anything was cached under.
    epoch: AtomicI64,
}

#[derive(Clone)]
struct Cached {
    epoch: i64,
    user: Arc<User>,
    token: Arc<TokenInfo>,
    /// `token.expires_at`, `token.revoked_at` and `token.last_used_at`, parsed once here:
    /// comparing them as text meant formatting the clock twice on every request. One that does
    /// not parse (a hand-edited row) counts as past, so it fails closed.
    expires: Option<OffsetDateTime>,
    revoked: Option<OffsetDateTime>,
    last_used: Option<OffsetDateTime>,
    /// Made once per lookup, not per request: see `Principal`.
    spaces: Option<Arc<str>>,
    ends_at: Option<HeaderValue>,
}

impl Cached {
    fn new(epoch: i64, user: Arc<User>, token: Arc<TokenInfo>) -> Cached {
        let parse = |text: &str| {
            OffsetDateTime::parse(text, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
        };
        Cached {
            epoch,
            expires: token.expires_at.as_deref().map(parse),
            revoked: token.revoked_at.as_deref().map(parse),
            last_used: token.last_used_at.as_deref().map(parse),
            spaces: token
                .spaces
                .as_ref()
                .map(|ids| Arc::from(serde_json::to_string(ids).expect("strings serialize"))),
            // Timestamps are ASCII; a hand-edited one that is not a header value is left out.
            ends_at: token
                .ends_at()
                .and_then(|at| HeaderValue::from_str(at).ok()),
            user,
            token,
        }
    }
}

impl TokenCache {
    fn get(&self, hash: &TokenHash, epoch: i64) -> Option<Cached> {
        let cached = self.entries.get(hash)?;
        (cached.epoch == epoch).then(|| cached.clone())
    }

    fn insert(&self, hash: TokenHash, cached: Cached) {
        if self.epoch.fetch_max(cached.epoch, Ordering::SeqCst) < cached.epoch {
            // Everything cached so far is stale: drop it rather than keep it until its next use.
            self.entries.clear();
        }
        self.entries.insert(hash, cached);
    }
}

impl Principal {
    pub fn can_write(&self) -> bool {
        self.token.scope == Scope::Write
    }

    /// The caller for membership checks: the user, within the token's space restriction.
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            user_id: &self.user.id,
            spaces: self.spaces.as_deref(),
        }
    }

    /// Whether the token is restricted to some spaces.
    pub fn is_restricted(&self) -> bool {
        self.spaces.is_some()
    }
}

/// How stale `lastUsedAt` may get before a request refreshes it.
const LAST_USED_GRANULARITY: time::Duration = time::Duration::seconds(60);

/// Why a presented credential was refused: the 401's message, and the reason the audit log line
/// and the failed-authentication limit record (never the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header: not an attempt, so neither logged nor counted.
    Missing,
    /// Not `Bearer`, or not `kt_` and 40 hex characters.
    Malformed,
    /// The right shape with a wrong checksum: mistyped or invented.
    BadChecksum,
    /// A well-formed token no one minted (or whose user was deleted).
    Unknown,
    Revoked,
    Expired,
}

impl Refusal {
    /// The word the audit log line uses.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::BadChecksum => "bad_checksum",
            Refusal::Unknown => "unknown",
            Refusal::Revoked => "revoked",
            Refusal::Expired => "expired",
        }
    }
}

/// An authentication that did not produce a principal: refused (401), or the store failed.
#[derive(Debug)]
pub enum Denied {
    Refused {
        refusal: Refusal,
        /// What the 401 tells the client.
        message: &'static str,
        /// The token's id when it is one we know (revoked, expired), for the audit line.
        token_id: Option<String>,
    },
    Failed(Error),
}

impl Denied {
    fn refused(refusal: Refusal, message: &'static str) -> Denied {
        Denied::Refused {
            refusal,
            message,
            token_id: None,
        }
    }

    pub fn into_error(self) -> Error {
        match self {
            Denied::Refused { message, .. } => Error::Unauthorized(message),
            Denied::Failed(error) => error,
        }
    }
}

impl From<Error> for Denied {
    fn from(error: Error) -> Denied {
        Denied::Failed(error)
    }
}

/// The well-formed token of a `Bearer` header, or the refusal that explains what is wrong.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Denied> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or(Denied::refused(
            Refusal::Missing,
            "missing Authorization header; send `Authorization: Bearer kt_...`",
        ))?
        .to_str()
        .map_err(|_| Denied::refused(Refusal::Malformed, "malformed Authorization header"))?;
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Denied::refused(
            Refusal::Malformed,
            "use the Bearer scheme: `Authorization: Bearer kt_...`",
        ));
    }
    let token = credentials.trim();
    if !token::has_shape(token) {
        return Err(Denied::refused(Refusal::Malformed, MALFORMED));
    }
    Ok(token)
}

const MALFORMED: &str = "malformed token: expected kt_ followed by 40 hex characters";

/// Looks the token (one that `bearer_token` passed) up, in `cache` or in the request's
/// `snapshot`, and checks it is live. It only reads: a stale `lastUsedAt` is for `record_use`.
/// Runs on a blocking thread (it reads SQLite). `now` is the request's time, passed in (like the
/// rate limiter's) so that tests control it.
pub fn authenticate(
    snapshot: &Snapshot<'_>,
    cache: &TokenCache,
    token: &str,
    now: OffsetDateTime,
) -> Result<Principal, Denied> {
    let token_hash = token::hash(token);
    // The snapshot's epoch was read as it began, and the lookup is cached under it: a change
    // committed since moves the epoch past it, so the entry can only be trusted too little, never
    // too long.
    let found = (|| {
        let epoch = snapshot.auth_epoch();
        if let Some(hit) = cache.get(&token_hash, epoch) {
            return Ok(Some(hit));
        }
        // Checked only here: a cached token was minted, so its checksum matched, and a second
        // BLAKE3 on every request would buy nothing. An invented token still never reaches the
        // database.
        if !token::checksum_matches(token) {
            return Err(Denied::refused(Refusal::BadChecksum, MALFORMED));
        }
        let found = snapshot.read(|conn| tokens::find_token_by_hash(conn, &token_hash))?;
        Ok::<_, Denied>(found.map(|owner| {
            let cached = Cached::new(epoch, Arc::new(owner.user), Arc::new(owner.token));
            cache.insert(token_hash, cached.clone());
            cached
        }))
    })()?;
    let Some(owner) = found else {
        return Err(Denied::refused(Refusal::Unknown, "invalid token"));
    };
    let known = |refusal, message| Denied::Refused {
        refusal,
        message,
        token_id: Some(owner.token.id.clone()),
    };
    // A `revoked_at` still to come is the end of a rotation's grace: the token works until then.
    if owner.revoked.is_some_and(|revoked| revoked <= now) {
        return Err(known(Refusal::Revoked, "this token has been revoked"));
    }
    if owner.expires.is_some_and(|expires| expires <= now) {
        return Err(known(Refusal::Expired, "this token has expired"));
    }
    let last_use_due = owner
        .last_used
        .is_none_or(|used| used < now - LAST_USED_GRANULARITY)
        .then_some(now);
    Ok(Principal {
        user: owner.user,
        token: owner.token,
        token_hash,
        spaces: owner.spaces,
        ends_at: owner.ends_at,
        epoch: owner.epoch,
        last_use_due,
    })
}

/// Refreshes the token's `lastUsedAt` through the request's `writes` when `authenticate` found it
/// stale (at most once a minute per token, not a write per request).
pub fn record_use(
    writes: &Writes<'_>,
    cache: &TokenCache,
    principal: &Principal,
    client_ip: std::net::IpAddr,
) -> Result<(), Error> {
    let Some(now) = principal.last_use_due else {
        return Ok(());
    };
    let now_text = crate::time::format_timestamp(now);
    let stale_before = crate::time::format_timestamp(now - LAST_USED_GRANULARITY);
    let id = &principal.token.id;
    let ip = client_ip.to_canonical().to_string();
    writes.write(|tx| tokens::touch_last_used(tx, id, &now_text, &stale_before, Some(&ip)))?;
    // The touch does not move the epoch; the cached copy learns of it here instead.
    let token = TokenInfo {
        last_used_at: Some(now_text),
        last_used_ip: Some(ip),
        ..TokenInfo::clone(&principal.token)
    };
    cache.insert(
        principal.token_hash,
        Cached::new(
            principal.epoch,
            Arc::clone(&principal.user),
            Arc::new(token),
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// `authenticate` in a snapshot of its own, as the server runs it for a request.
    fn authenticate_in(
        store: &Store,
        cache: &TokenCache,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Principal, Denied> {
        let principal = store.snapshot(|snapshot| authenticate(snapshot, cache, token, now))??;
        record_use(
            &store.deferred_writes(),
            cache,
            &principal,
            std::net::Ipv4Addr::LOCALHOST.into(),
        )?;
        Ok(principal)
    }
    use crate::config::DatabaseConfig;
    use crate::store::users::{self, Plan};
    use hyper::header::HeaderValue;

    /// A store with one Pro user and one token, and a second `Store` on the same file: the CLI in
    /// another process, as far as the server's connections can tell.
    fn two_processes() -> (tempfile::TempDir, Store, Store, String, String) {
        let (dir, server) = crate::store::open_temp();
        let cli = Store::open(&DatabaseConfig {
            path: dir.path().join("test.db"),
            ..DatabaseConfig::default()
        })
        .unwrap();
        let (secret, info) = cli
            .write(|tx| {
                let user = users::create_user(tx, "a@example.com", "A", Plan::Pro)?;
                let mint = tokens::Mint {
                    user_id: &user.id,
                    name: "t",
                    scope: tokens::Scope::Write,
                    expires_in_days: None,
                    spaces: None,
                };
                tokens::mint_token(tx, &mint, &crate::config::TokensConfig::default())
            })
            .unwrap();
        (dir, server, cli, secret, info.id)
    }

    #[test]
    fn a_cached_token_is_refused_right_after_another_process_revokes_it() {
        let (_dir, server, cli, secret, id) = two_processes();
        let cache = TokenCache::default();
        for _ in 0..3 {
            authenticate_in(&server, &cache, &secret, OffsetDateTime::now_utc()).unwrap();
        }
        assert_eq!(cache.entries.len(), 1, "the lookup is cached");
        cli.write(|tx| tokens::revoke_token(tx, &id)).unwrap();
        assert!(matches!(
            authenticate_in(&server, &cache, &secret, OffsetDateTime::now_utc()),
            Err(Denied::Refused {
                refusal: Refusal::Revoked,
                token_id: Some(_),
                ..
            })
        ));
    }

    #[test]
    fn a_plan_change_elsewhere_reaches_the_cached_principal() {
        let (_dir, server, cli, secret, _) = two_processes();
        let cache = TokenCache::default();
        assert_eq!(
            authenticate_in(&server, &cache, &secret, OffsetDateTime::now_utc())
                .unwrap()
                .user
                .plan,
            Plan::Pro
        );
        cli.write(|tx| users::set_plan(tx, "a@example.com", Plan::Free))
            .unwrap();
        assert_eq!(
            authenticate_in(&server, &cache, &secret, OffsetDateTime::now_utc())
                .unwrap()
                .user
                .plan,
            Plan::Free
        );
    }

    #[test]
    fn last_use_does_not_move_the_epoch_but_every_other_change_does() {
        let (_dir, server, cli, secret, id) = two_processes();
        let epoch = || server.read(tokens::auth_epoch).unwrap();
        let before = epoch();
        let cache = TokenCache::default();
        authenticate_in(&server, &cache, &secret, OffsetDateTime::now_utc()).unwrap();
        let used = server
            .read(|conn| tokens::find_token(conn, &id))
            .unwrap()
            .unwrap();
        assert!(used.last_used_at.is_some(), "the first use is recorded");
        assert_eq!(epoch(), before, "recording it leaves the cache valid");
        assert!(cache.get(&token::hash(&secret), before).is_some());
        assert!(
            cache
                .get(&token::hash(&secret), before)
                .unwrap()
                .token
                .last_used_at
                .is_some()
        );
        cli.write(|tx| Ok(tx.execute("UPDATE api_tokens SET name = 'renamed'", [])?))
            .unwrap();
        assert_eq!(epoch(), before + 1);
        cli.write(|tx| Ok(tx.execute("UPDATE users SET name = 'B'", [])?))
            .unwrap();
        assert_eq!(epoch(), before + 2);
        cli.write(|tx| Ok(tx.execute("DELETE FROM users", [])?))
            .unwrap();
        assert!(
            epoch() > before + 2,
            "deleting the user (and its tokens) moves it"
        );
        assert!(matches!(
            authenticate_in(&server, &cache, &secret, OffsetDateTime::now_utc()),
            Err(Denied::Refused {
                refusal: Refusal::Unknown,
                token_id: None,
                ..
            })
        ));
    }

    #[test]
    fn expiry_is_checked_on_every_use_and_an_unreadable_one_fails_closed() {
        let (_dir, server, cli, secret, id) = two_processes();
        let cache = TokenCache::default();
        let set_expiry = |expires: &str| {
            cli.write(|tx| {
                Ok(tx.execute(
                    "UPDATE api_tokens SET expires_at = ?2 WHERE id = ?1",
                    [id.as_str(), expires],
                )?)
            })
            .unwrap()
        };
        let now = OffsetDateTime::now_utc();
        set_expiry(&crate::time::format_timestamp(
            now + time::Duration::minutes(5),
        ));
        authenticate_in(&server, &cache, &secret, now).unwrap();
        let later = now + time::Duration::minutes(5);
        assert!(
            matches!(
                authenticate_in(&server, &cache, &secret, later),
                Err(Denied::Refused {
                    refusal: Refusal::Expired,
                    ..
                })
            ),
            "the cached entry's expiry passed while it was cached"
        );
        set_expiry("next tuesday");
        assert!(matches!(
            authenticate_in(&server, &cache, &secret, OffsetDateTime::now_utc()),
            Err(Denied::Refused {
                refusal: Refusal::Expired,
                ..
            })
        ));
    }

    #[test]
    fn a_revocation_still_to_come_is_a_grace_that_ends_while_cached() {
        let (_dir, server, cli, secret, id) = two_processes();
        let cache = TokenCache::default();
        let now = OffsetDateTime::now_utc();
        let principal = authenticate_in(&server, &cache, &secret, now).unwrap();
        assert!(principal.ends_at.is_none(), "no expiry, no header");
        let grace_end = crate::time::format_timestamp(now + time::Duration::minutes(10));
        cli.write(|tx| {
            Ok(tx.execute(
                "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1",
                [id.as_str(), grace_end.as_str()],
            )?)
        })
        .unwrap();
        let during = authenticate_in(&server, &cache, &secret, now).unwrap();
        assert_eq!(
            during.ends_at.as_ref().map(|v| v.to_str().unwrap()),
            Some(grace_end.as_str())
        );
        assert!(matches!(
            authenticate_in(&server, &cache, &secret, now + time::Duration::minutes(10)),
            Err(Denied::Refused {
                refusal: Refusal::Revoked,
                ..
            })
        ));
    }

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_token_with_a_wrong_checksum_is_refused_as_malformed() {
        let (_dir, server, _cli, secret, _id) = two_processes();
        let cache = TokenCache::default();
        let mut forged = secret.clone();
        let last = if forged.ends_with('0') { "1" } else { "0" };
        forged.replace_range(forged.len() - 1.., last);
        assert!(bearer_token(&with_authorization(&format!("Bearer {forged}"))).is_ok());
        for _ in 0..2 {
            let error = authenticate_in(&server, &cache, &forged, OffsetDateTime::now_utc()).err();
            assert!(
                matches!(error, Some(Denied::Refused { refusal: Refusal::BadChecksum, message, .. }) if message.starts_with("malformed token")),
                "{error:?}"
            );
            // The real token, cached in between, does not make its forgery pass.
            authenticate_in(&server, &cache, &secret, OffsetDateTime::now_utc()).unwrap();
        }
    }

    #[test]
    fn bearer_header_shapes() {
        let token = token::generate().unwrap();
        assert_eq!(
            bearer_token(&with_authorization(&format!("Bearer {token}"))).unwrap(),
            token
        );
        assert_eq!(
            bearer_token(&with_authorization(&format!("bearer {token}"))).unwrap(),
            token
        );
        for bad in [
            format!("Basic {token}"),
            format!("Bearer{token}"),
            "Bearer".to_string(),
            "Bearer kt_123".to_string(),
            format!("Token {token}"),
        ] {
            assert!(
                matches!(
                    bearer_token(&with_authorization(&bad)),
                    Err(Denied::Refused {
                        refusal: Refusal::Malformed,
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            bearer_token(&HeaderMap::new()),
            Err(Denied::Refused {
                refusal: Refusal::Missing,
                ..
            })
        ));
    }
}
