//! The stored answers of `Idempotency-Key` requests (`crate::idempotency` has the rules).

use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, Tx};

/// A first answer, as it is replayed.
pub struct Stored {
    /// The hash of the request it answered (method, path, query, body).
    pub request: Vec<u8>,
    pub status: u16,
    /// The answer's own headers (`Location`, `ETag`, `Cache-Control`...), a `name: value` line each.
    pub headers: String,
    pub body: Vec<u8>,
}

/// The answer stored for `user_id`'s `key` since `since_ms`, if any.
pub fn find(conn: &Connection, user_id: &str, key: &str, since_ms: i64) -> Result<Option<Stored>> {
    let stored = conn
        .prepare_cached(
            "SELECT request, status, headers, body FROM idempotency_keys \
             WHERE user_id = ?1 AND key = ?2 AND created_at >= ?3",
        )?
        .query_row(params![user_id, key, since_ms], |row| {
            Ok(Stored {
                request: row.get(0)?,
                status: row.get(1)?,
                headers: row.get(2)?,
                body: row.get(3)?,
            })
        })
        .optional()?;
    Ok(stored)
}

/// Stores the first answer to `user_id`'s `key` (replacing an expired one).
pub fn save(tx: &Tx<'_>, user_id: &str, key: &str, now_ms: i64, answer: &Stored) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO idempotency_keys \
         (user_id, key, created_at, request, status, headers, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        user_id,
        key,
        now_ms,
        answer.request,
        answer.status,
        answer.headers,
        answer.body
    ])?;
    Ok(())
}

/// Deletes up to `limit` answers stored before `before_ms`, oldest first; returns how many.
pub fn prune(tx: &Tx<'_>, before_ms: i64, limit: usize) -> Result<usize> {
    // The oldest `limit` rows by id (ids follow time), of which the expired ones: walking the
    // rowid never scans the rows that are still kept.
    let deleted = tx
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE id IN (SELECT id FROM \
             (SELECT id, created_at FROM idempotency_keys ORDER BY id LIMIT ?2) \
             WHERE created_at < ?1)",
        )?
        .execute(params![before_ms, limit as i64])?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn answer(body: &str) -> Stored {
        Stored {
            request: b"hash".to_vec(),
            status: 201,
            headers: "location: /api/tasks/1\n".into(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn stored(store: &Store) -> i64 {
        store
            .read(|c| Ok(c.query_row("SELECT count(*) FROM idempotency_keys", [], |r| r.get(0))?))
            .unwrap()
    }

    #[test]
    fn answers_are_found_until_they_expire_and_pruning_takes_the_old_ones_only() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::DatabaseConfig {
            path: dir.path().join("t.db"),
            ..Default::default()
        };
        let store = Store::open(&config).unwrap();
        store
            .write(|tx| {
                save(tx, "u1", "old-1", 1_000, &answer("a"))?;
                save(tx, "u1", "old-2", 2_000, &answer("b"))?;
                save(tx, "u1", "new", 9_000, &answer("c"))?;
                save(tx, "u2", "new", 9_500, &answer("d"))
            })
            .unwrap();
        let find = |user: &str, key: &str, since: i64| {
            store
                .read(|c| find(c, user, key, since))
                .unwrap()
                .map(|s| String::from_utf8(s.body).unwrap())
        };
        assert_eq!(find("u1", "new", 5_000).as_deref(), Some("c"));
        assert_eq!(
            find("u2", "new", 5_000).as_deref(),
            Some("d"),
            "keys are per user"
        );
        assert_eq!(find("u1", "old-1", 5_000), None, "expired");
        assert_eq!(find("u1", "old-1", 500).as_deref(), Some("a"));
        // An expired key used again replaces its row.
        store
            .write(|tx| save(tx, "u1", "old-1", 9_900, &answer("e")))
            .unwrap();
        assert_eq!(find("u1", "old-1", 5_000).as_deref(), Some("e"));

        assert_eq!(store.write(|tx| prune(tx, 5_000, 1)).unwrap(), 1);
        assert_eq!(store.write(|tx| prune(tx, 5_000, 100)).unwrap(), 0);
        assert_eq!(stored(&store), 3, "old-2 went; the new ones stay");
        assert_eq!(find("u1", "old-2", 0), None);
    }
}
