//! API tokens: only the BLAKE3 hash of a token is stored; the plaintext never reaches this module.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Tx;
use super::users::{USER_COLUMNS, User, user_at};
use super::{Result, new_id};
use crate::config::TokensConfig;
use crate::error::Error;
use crate::token::TokenHash;

crate::text_enum!(Scope { Write = "write", Read = "read" });

/// A token as listed: what `token list --json` prints and the settings page shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub prefix: String,
    pub scope: Scope,
    /// The ids of the spaces it may reach; `None` for every space of its user.
    pub spaces: Option<Vec<String>>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    pub expires_at: Option<String>,
    /// When it stopped working, or, during a rotation's grace, when it will.
    pub revoked_at: Option<String>,
    pub rotated_from: Option<String>,
    pub replaced_by: Option<String>,
}

impl TokenInfo {
    /// Neither revoked (its grace over) nor expired at `now` (a timestamp).
    pub fn is_live(&self, now: &str) -> bool {
        self.revoked_at.as_deref().is_none_or(|at| at > now)
            && self.expires_at.as_deref().is_none_or(|at| at > now)
    }

    /// When it stops working, if it does: the sooner of its expiry and a rotation's grace end.
    pub fn ends_at(&self) -> Option<&str> {
        match (self.expires_at.as_deref(), self.revoked_at.as_deref()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What authentication needs to know about a presented token, in one query.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub token: TokenInfo,
    pub user: User,
}

pub struct NewToken<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub prefix: &'a str,
    pub hash: &'a TokenHash,
    pub scope: Scope,
    pub expires_at: Option<String>,
    /// Space ids, checked by the caller (`mint_token` checks them).
    pub spaces: Option<&'a [String]>,
    pub rotated_from: Option<&'a str>,
}

/// A token to mint, as the CLI and the settings page ask for it.
pub struct Mint<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub scope: Scope,
    pub expires_in_days: Option<u32>,
    /// Restrict it to these space ids (each one the user's); `None` for all of them.
    pub spaces: Option<&'a [String]>,
}

/// At most this many spaces in one token's restriction.
pub const MAX_SPACES: usize = 100;

const COLUMNS: &str = "t.id, t.user_id, u.email, t.name, t.prefix, t.scope, t.spaces, \
                       t.created_at, t.last_used_at, t.last_used_ip, t.expires_at, t.revoked_at, \
                       t.rotated_from, t.replaced_by";
/// How many columns `COLUMNS` has (the user's follow them in `find_token_by_hash`).
const COLUMN_COUNT: usize = 14;

fn from_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    let spaces: Option<String> = row.get(6)?;
    Ok(TokenInfo {
        id: row.get(0)?,
        user_id: row.get(1)?,
        email: row.get(2)?,
        name: row.get(3)?,
        prefix: row.get(4)?,
        scope: row.get(5)?,
        // Written only by `create_token` as a JSON array of strings. Anything else (a hand edit)
        // fails closed: a restriction to no space at all.
        spaces: spaces.map(|text| serde_json::from_str(&text).unwrap_or_default()),
        created_at: row.get(7)?,
        last_used_at: row.get(8)?,
        last_used_ip: row.get(9)?,
        expires_at: row.get(10)?,
        revoked_at: row.get(11)?,
        rotated_from: row.get(12)?,
        replaced_by: row.get(13)?,
    })
}

pub fn create_token(tx: &Tx<'_>, new: &NewToken<'_>) -> Result<TokenInfo> {
    let id = new_id();
    let spaces = new
        .spaces
        .map(|ids| serde_json::to_string(ids).expect("strings serialize"));
    tx.prepare_cached(
        "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, scope, created_at, \
         expires_at, spaces, rotated_from) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        id,
        new.user_id,
        new.name,
        new.prefix,
        &new.hash[..],
        new.scope,
        crate::time::now(),
        new.expires_at,
        spaces,
        new.rotated_from,
    ])?;
    Ok(find_token(tx, &id)?.expect("the token was just inserted"))
}

/// Mints a token for the user: the plaintext (to show once) and the stored record. The one way
/// tokens are made, for the CLI and the settings page alike, so the limits of `tokens.*` hold for
/// both: at most `max_active_per_user` live tokens (each has its own rate-limit window, so
/// unlimited tokens would mean an unlimited rate; a conflict), no lifetime past
/// `max_lifetime_days` (forbidden), and a space restriction only to the user's own spaces
/// (a validation error naming the space).
pub fn mint_token(
    tx: &Tx<'_>,
    mint: &Mint<'_>,
    limits: &TokensConfig,
) -> Result<(String, TokenInfo)> {
    check_active(tx, mint.user_id, None, limits)?;
    check_lifetime(
        mint.expires_in_days.map(|days| i64::from(days) * 86_400),
        limits,
    )?;
    let spaces = match mint.spaces {
        Some(ids) => Some(checked_spaces(tx, mint.user_id, ids)?),
        None => None,
    };
    let expires_at = mint.expires_in_days.map(crate::time::days_from_now);
    insert_minted(
        tx,
        mint.user_id,
        mint.name,
        mint.scope,
        expires_at,
        spaces.as_deref(),
        None,
    )
}

fn insert_minted(
    tx: &Tx<'_>,
    user_id: &str,
    name: &str,
    scope: Scope,
    expires_at: Option<String>,
    spaces: Option<&[String]>,
    rotated_from: Option<&str>,
) -> Result<(String, TokenInfo)> {
    let secret = crate::token::generate().map_err(|e| {
        Error::internal(format!("the operating system's random source failed: {e}"))
    })?;
    let info = create_token(
        tx,
        &NewToken {
            user_id,
            name,
            prefix: crate::token::display_prefix(&secret),
            hash: &crate::token::hash(&secret),
            scope,
            expires_at,
            spaces,
            rotated_from,
        },
    )?;
    Ok((secret, info))
}

/// Refuses one more live token past `max_active_per_user`. A token replaced by a rotation (in its
/// grace) does not count, its replacement does; nor does `replacing`, the one being rotated now.
/// So a user at the limit can rotate every token at once in an incident.
fn check_active(
    tx: &Tx<'_>,
    user_id: &str,
    replacing: Option<&str>,
    limits: &TokensConfig,
) -> Result<()> {
    let max_active = limits.max_active_per_user;
    let active: i64 = tx
        .prepare_cached(
            "SELECT count(*) FROM api_tokens WHERE user_id = ?1 \
             AND (revoked_at IS NULL OR revoked_at > ?2) \
             AND (expires_at IS NULL OR expires_at > ?2) AND replaced_by IS NULL AND id IS NOT ?3",
        )?
        .query_row(params![user_id, crate::time::now(), replacing], |row| {
            row.get(0)
        })?;
    if active >= i64::from(max_active) {
        return Err(Error::Conflict {
            field: None,
            message: format!(
                "this user already has {active} active tokens, the most allowed \
                 (tokens.max_active_per_user = {max_active}); revoke one it no longer needs first"
            ),
        });
    }
    Ok(())
}

/// Refuses a lifetime (seconds; `None`: never expires) past `tokens.max_lifetime_days`.
fn check_lifetime(lifetime_secs: Option<i64>, limits: &TokensConfig) -> Result<()> {
    let Some(max_days) = limits.max_lifetime_days else {
        return Ok(());
    };
    if lifetime_secs.is_some_and(|secs| secs <= i64::from(max_days) * 86_400) {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "tokens must expire within {max_days} days on this server (tokens.max_lifetime_days); \
         choose an expiry of at most {max_days} days"
    )))
}

/// The restriction's space ids, each once, in the order given: all of them spaces `user_id` is a
/// member of, one at least.
fn checked_spaces(tx: &Tx<'_>, user_id: &str, ids: &[String]) -> Result<Vec<String>> {
    // Before anything else: a form can carry a hundred thousand of them, and this runs in the
    // writer.
    if ids.len() > MAX_SPACES {
        return Err(Error::validation(
            "spaces",
            format!("a token may be restricted to at most {MAX_SPACES} spaces"),
        ));
    }
    let mut spaces: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !spaces.contains(id) {
            spaces.push(id.clone());
        }
    }
    if spaces.is_empty() {
        return Err(Error::validation("spaces", "name one space at least"));
    }
    for id in &spaces {
        if super::spaces::role_in_space(tx, id, super::spaces::Viewer::user(user_id))?.is_none() {
            return Err(Error::validation(
                "spaces",
                format!("{id} is not a space of this user"),
            ));
        }
    }
    Ok(spaces)
}

/// Why a token cannot be rotated.
fn not_rotatable(message: String) -> Error {
    Error::Conflict {
        field: None,
        message,
    }
}

/// Rotates the token: mints its replacement (same user, name, scope and space restriction; if the
/// old one expires, the same lifetime counted from now) and ends the old one `grace_secs` from now
/// (0: at once). `Ok(None)` when no token has the id. A revoked, already rotated or expired token
/// is refused, and so is a lifetime `tokens.max_lifetime_days` does not allow. The replacement
/// does not count against `max_active_per_user`: it takes the old one's place.
pub fn rotate_token(
    tx: &Tx<'_>,
    id: &str,
    grace_secs: i64,
    limits: &TokensConfig,
) -> Result<Option<(String, TokenInfo)>> {
    let Some(old) = find_token(tx, id)? else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc();
    let now_text = crate::time::format_timestamp(now);
    if let Some(new_id) = &old.replaced_by {
        return Err(not_rotatable(format!(
            "token {id} was rotated already; rotate its replacement, {new_id}"
        )));
    }
    if old.revoked_at.is_some() {
        return Err(not_rotatable(format!(
            "token {id} is revoked; a revoked token cannot be rotated"
        )));
    }
    if !old.is_live(&now_text) {
        return Err(not_rotatable(format!(
            "token {id} has expired; create a new token instead"
        )));
    }
    let parse = |text: &str| {
        OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| Error::internal(format!("token {id} has an unreadable timestamp")))
    };
    let lifetime = match &old.expires_at {
        Some(expires) => Some(
            // Rounded, not truncated: `expires_at` is computed a few milliseconds before
            // `created_at` is stamped, and truncating would lose a second at every rotation.
            ((parse(expires)? - parse(&old.created_at)?)
                .as_seconds_f64()
                .round() as i64)
                .max(1),
        ),
        None => None,
    };
    check_lifetime(lifetime, limits)?;
    check_active(tx, &old.user_id, Some(id), limits)?;
    let expires_at =
        lifetime.map(|secs| crate::time::format_timestamp(now + time::Duration::seconds(secs)));
    let (secret, new) = insert_minted(
        tx,
        &old.user_id,
        &old.name,
        old.scope,
        expires_at,
        old.spaces.as_deref(),
        Some(id),
    )?;
    let grace_ends =
        crate::time::format_timestamp(now + time::Duration::seconds(grace_secs.max(0)));
    tx.prepare_cached("UPDATE api_tokens SET revoked_at = ?2, replaced_by = ?3 WHERE id = ?1")?
        .execute(params![id, grace_ends, new.id])?;
    Ok(Some((secret, new)))
}

pub fn find_token(conn: &Connection, id: &str) -> Result<Option<TokenInfo>> {
    let token = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?1"
        ))?
        .query_row([id], from_row)
        .optional()?;
    Ok(token)
}

/// The token with this hash and its user, revoked or not (the caller decides).
pub fn find_token_by_hash(conn: &Connection, hash: &TokenHash) -> Result<Option<TokenOwner>> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, {USER_COLUMNS} FROM api_tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1"
        ))?
        .query_row([&hash[..]], |row| {
            Ok(TokenOwner {
                token: from_row(row)?,
                user: user_at(row, COLUMN_COUNT)?,
            })
        })
        .optional()?;
    Ok(found)
}

/// The number bumped by every change authentication depends on (schema.sql, version 3). Inside a
/// snapshot, `store::Snapshot::auth_epoch` has it without a statement.
pub fn auth_epoch(conn: &Connection) -> Result<i64> {
    let epoch = conn
        .prepare_cached(AUTH_EPOCH)?
        .query_row([], |row| row.get(0))?;
    Ok(epoch)
}

pub(super) const AUTH_EPOCH: &str = "SELECT value FROM auth_epoch WHERE id = 0";

/// Tokens in creation order, of one user or of everyone.
pub fn list_tokens(conn: &Connection, user_id: Option<&str>) -> Result<Vec<TokenInfo>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE ?1 IS NULL OR t.user_id = ?1 ORDER BY t.id"
    ))?;
    let tokens = statement
        .query_map([user_id], from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(tokens)
}

/// Revokes for good. `Ok(None)` when no token has this id; revoking twice keeps the first time,
/// and revoking a token in its rotation grace ends the grace now.
pub fn revoke_token(tx: &Tx<'_>, id: &str) -> Result<Option<TokenInfo>> {
    tx.prepare_cached(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 \
         AND (revoked_at IS NULL OR revoked_at > ?2)",
    )?
    .execute(params![id, crate::time::now()])?;
    find_token(tx, id)
}

/// Records use and the client's address, at most once per `stale_before` interval: the `WHERE`
/// makes a racing second update a no-op, so concurrent requests on one token cost one write a
/// minute, not one each.
pub fn touch_last_used(
    tx: &Tx<'_>,
    id: &str,
    now: &str,
    stale_before: &str,
    ip: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(
        "UPDATE api_tokens SET last_used_at = ?2, last_used_ip = ?4 \
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
    )?
    .execute(params![id, now, stale_before, ip])?;
    Ok(())
}
