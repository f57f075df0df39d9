//! Bearer authentication: `Authorization` header -> well-formed token -> hash -> principal.
//!
//! A token that fails the checksum is refused before the database is asked. A known token is
//! looked up on every request, not cached: a revocation by the CLI in another process is seen on
//! the very next request, and a revoked token can never pass again. `lastUsedAt` is written at
//! most once a minute per token.

use hyper::header::{AUTHORIZATION, HeaderMap};

use crate::error::Error;
use crate::store::Store;
use crate::store::tokens::{self, Scope, TokenInfo};
use crate::store::users::User;
use crate::token::{self, TokenHash};

/// Who is calling, with which token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub token: TokenInfo,
    pub token_hash: TokenHash,
}

impl Principal {
    pub fn can_write(&self) -> bool {
        self.token.scope == Scope::Write
    }
}

/// How stale `lastUsedAt` may get before a request refreshes it.
const LAST_USED_GRANULARITY: time::Duration = time::Duration::seconds(60);

/// The well-formed token of a `Bearer` header, or the 401 that explains what is wrong.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Error> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or(Error::Unauthorized(
            "missing Authorization header; send `Authorization: Bearer kt_...`",
        ))?
        .to_str()
        .map_err(|_| Error::Unauthorized("malformed Authorization header"))?;
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::Unauthorized(
            "use the Bearer scheme: `Authorization: Bearer kt_...`",
        ));
    }
    let token = credentials.trim();
    if !token::is_well_formed(token) {
        return Err(Error::Unauthorized(
            "malformed token: expected kt_ followed by 40 hex characters",
        ));
    }
    Ok(token)
}

/// Looks the token up and checks it is live. Runs on a blocking thread (it reads SQLite).
pub fn authenticate(store: &Store, token: &str) -> Result<Principal, Error> {
    let token_hash = token::hash(token);
    let found = store.read(|conn| tokens::find_token_by_hash(conn, &token_hash))?;
    let Some(owner) = found else {
        return Err(Error::Unauthorized("invalid token"));
    };
    if owner.token.revoked_at.is_some() {
        return Err(Error::Unauthorized("this token has been revoked"));
    }
    let now = time::OffsetDateTime::now_utc();
    let now_text = crate::time::format_timestamp(now);
    if owner
        .token
        .expires_at
        .as_deref()
        .is_some_and(|expires| expires <= now_text.as_str())
    {
        return Err(Error::Unauthorized("this token has expired"));
    }
    let stale_before = crate::time::format_timestamp(now - LAST_USED_GRANULARITY);
    if owner
        .token
        .last_used_at
        .as_deref()
        .is_none_or(|used| used < stale_before.as_str())
    {
        store.write(|tx| tokens::touch_last_used(tx, &owner.token.id, &now_text, &stale_before))?;
    }
    Ok(Principal {
        user: owner.user,
        token: owner.token,
        token_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
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
                    Err(Error::Unauthorized(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            bearer_token(&HeaderMap::new()),
            Err(Error::Unauthorized(_))
        ));
    }
}
