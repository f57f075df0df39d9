//! Web sessions: only the BLAKE3 hash of the cookie value is stored. A session ends after
//! `IDLE` without use or `ABSOLUTE` after login, whichever comes first.

use rusqlite::{Connection, OptionalExtension, params};

use super::Result;
use super::Tx;
use super::users::{USER_COLUMNS, User, user_at};

pub const IDLE: time::Duration = time::Duration::hours(12);
pub const ABSOLUTE: time::Duration = time::Duration::days(7);

pub struct Session {
    pub user: User,
    pub csrf: String,
    pub last_seen_at: String,
}

/// Starts a session, and deletes every session past its expiry (signing in is when sessions are
/// made, so the table stays as small as the last week's sign-ins).
pub fn create_session(tx: &Tx<'_>, id_hash: &[u8; 32], user_id: &str, csrf: &str) -> Result<()> {
    let at = time::OffsetDateTime::now_utc();
    purge_expired(tx, at)?;
    let now = crate::time::format_timestamp(at);
    tx.prepare_cached(
        "INSERT INTO sessions (id_hash, user_id, csrf, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute(params![&id_hash[..], user_id, csrf, now])?;
    Ok(())
}

/// The live session with this hash at `now`, or `None` (unknown, idle too long, or too old).
pub fn find_session(
    conn: &Connection,
    id_hash: &[u8; 32],
    now: time::OffsetDateTime,
) -> Result<Option<Session>> {
    let idle_since = crate::time::format_timestamp(now - IDLE);
    let created_since = crate::time::format_timestamp(now - ABSOLUTE);
    let session = conn
        .prepare_cached(&format!(
            "SELECT s.csrf, s.last_seen_at, {USER_COLUMNS} \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = ?1 AND s.last_seen_at >= ?2 AND s.created_at >= ?3"
        ))?
        .query_row(params![&id_hash[..], idle_since, created_since], |row| {
            Ok(Session {
                csrf: row.get(0)?,
                last_seen_at: row.get(1)?,
                user: user_at(row, 2)?,
            })
        })
        .optional()?;
    Ok(session)
}

/// Marks the session used (at most once a minute, like `lastUsedAt` of tokens).
pub fn touch_session(tx: &Tx<'_>, id_hash: &[u8; 32]) -> Result<()> {
    tx.prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE id_hash = ?1")?
        .execute(params![&id_hash[..], crate::time::now()])?;
    Ok(())
}

pub fn delete_session(tx: &Tx<'_>, id_hash: &[u8; 32]) -> Result<()> {
    tx.prepare_cached("DELETE FROM sessions WHERE id_hash = ?1")?
        .execute([&id_hash[..]])?;
    Ok(())
}

/// Deletes the sessions that have ended by `now` (idle too long, or too old).
pub fn purge_expired(tx: &Tx<'_>, now: time::OffsetDateTime) -> Result<usize> {
    Ok(tx
        .prepare_cached("DELETE FROM sessions WHERE last_seen_at < ?1 OR created_at < ?2")?
        .execute(params![
            crate::time::format_timestamp(now - IDLE),
            crate::time::format_timestamp(now - ABSOLUTE)
        ])?)
}

/// Ends every session of the user (a password change).
pub fn delete_sessions_of_user(tx: &Tx<'_>, user_id: &str) -> Result<usize> {
    Ok(tx
        .prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
        .execute([user_id])?)
}
