//! API tokens: only the BLAKE3 hash of a token is stored; the plaintext never reaches this module.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::Tx;
use super::users::{USER_COLUMNS, User, user_at};
use super::{Result, new_id};
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
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
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
}

const COLUMNS: &str = "t.id, t.user_id, u.email, t.name, t.prefix, t.scope, t.created_at, \
                       t.last_used_at, t.expires_at, t.revoked_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: row.get(0)?,
        user_id: row.get(1)?,
        email: row.get(2)?,
        name: row.get(3)?,
        prefix: row.get(4)?,
        scope: row.get(5)?,
        created_at: row.get(6)?,
        last_used_at: row.get(7)?,
        expires_at: row.get(8)?,
        revoked_at: row.get(9)?,
    })
}

pub fn create_token(tx: &Tx<'_>, new: &NewToken<'_>) -> Result<TokenInfo> {
    let id = new_id();
    tx.prepare_cached(
        "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, scope, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id,
        new.user_id,
        new.name,
        new.prefix,
        &new.hash[..],
        new.scope,
        crate::time::now(),
        new.expires_at
    ])?;
    Ok(find_token(tx, &id)?.expect("the token was just inserted"))
}

/// Mints a token for the user: the plaintext (to show once) and the stored record. The one way
/// tokens are made, for the CLI and the settings page alike. A user already holding
/// `max_active` live tokens (neither revoked nor expired) gets a conflict instead: each token has
/// its own rate-limit window, so unlimited tokens would mean an unlimited rate.
pub fn mint_token(
    tx: &Tx<'_>,
    user_id: &str,
    name: &str,
    scope: Scope,
    expires_in_days: Option<u32>,
    max_active: u32,
) -> Result<(String, TokenInfo)> {
    let active: i64 = tx
        .prepare_cached(
            "SELECT count(*) FROM api_tokens WHERE user_id = ?1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > ?2)",
        )?
        .query_row(params![user_id, crate::time::now()], |row| row.get(0))?;
    if active >= i64::from(max_active) {
        return Err(crate::error::Error::Conflict {
            field: None,
            message: format!(
                "this user already has {active} active tokens, the most allowed \
                 (tokens.max_active_per_user = {max_active}); revoke one it no longer needs first"
            ),
        });
    }
    let secret = crate::token::generate().map_err(|e| {
        crate::error::Error::internal(format!("the operating system's random source failed: {e}"))
    })?;
    let info = create_token(
        tx,
        &NewToken {
            user_id,
            name,
            prefix: crate::token::display_prefix(&secret),
            hash: &crate::token::hash(&secret),
            scope,
            expires_at: expires_in_days.map(crate::time::days_from_now),
        },
    )?;
    Ok((secret, info))
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
                user: user_at(row, 10)?,
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

/// Revokes for good. `Ok(None)` when no token has this id; revoking twice keeps the first time.
pub fn revoke_token(tx: &Tx<'_>, id: &str) -> Result<Option<TokenInfo>> {
    tx.prepare_cached(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![id, crate::time::now()])?;
    find_token(tx, id)
}

/// Records use, at most once per `stale_before` interval: the `WHERE` makes a racing second
/// update a no-op, so concurrent requests on one token cost one write a minute, not one each.
pub fn touch_last_used(tx: &Tx<'_>, id: &str, now: &str, stale_before: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE api_tokens SET last_used_at = ?2 \
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
    )?
    .execute(params![id, now, stale_before])?;
    Ok(())
}
