//! The only place that speaks SQL. Synchronous on purpose: the server calls it through one
//! `spawn_blocking` helper (`App::store`), the CLI calls it directly, without a runtime.
//!
//! One `open` sets up every connection the same way for the server and the CLI: WAL, the configured
//! `synchronous`, `foreign_keys=ON`, a busy timeout, the embedded schema and its migrations.
//! Writes go through one writer connection behind a mutex, each in a `BEGIN IMMEDIATE`
//! transaction, so writers inside this process queue instead of meeting as `SQLITE_BUSY`; a writer
//! in another process (the CLI while the server runs) is waited for by the busy timeout. Reads use
//! a pool of `query_only` connections and never block on the writer (WAL).
//!
//! Each table group's file owns its row structs and queries: `users`, `spaces` (with members),
//! `projects` (with statuses), `tasks` (with assignees and task labels), `labels`, `tokens`.

pub mod labels;
pub mod projects;
pub mod spaces;
pub mod tasks;
pub mod tokens;
pub mod users;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::config::{DatabaseConfig, Synchronous};
use crate::error::Error;

pub const SCHEMA: &str = include_str!("../../schema.sql");

/// Migrations after the initial schema: entry `i` takes `user_version` from `i + 1` to `i + 2`.
const MIGRATIONS: &[&str] = &[];
pub const SCHEMA_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

pub type Result<T> = std::result::Result<T, Error>;

pub struct Store {
    path: std::path::PathBuf,
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database file, applies the schema and migrations.
    pub fn open(config: &DatabaseConfig) -> Result<Store> {
        let busy_timeout = Duration::from_millis(config.busy_timeout_ms);
        let synchronous = match config.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        let pragmas = format!(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = {};",
            busy_timeout.as_millis()
        );

        let writer = Connection::open(&config.path).map_err(|e| {
            Error::internal(format!(
                "cannot open database {}: {e}",
                config.path.display()
            ))
        })?;
        // WAL is persistent in the file; setting it once from the writer is enough.
        writer.pragma_update(None, "journal_mode", "WAL")?;
        configure(&writer, &pragmas)?;
        migrate(&writer)?;

        let reader_pragmas = format!("{pragmas} PRAGMA query_only = ON;");
        let manager = SqliteConnectionManager::file(&config.path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(move |conn| configure(conn, &reader_pragmas));
        let readers = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .build(manager)
            .map_err(|e| Error::internal(format!("cannot open database pool: {e}")))?;
        Ok(Store {
            path: config.path.clone(),
            readers,
            writer: Mutex::new(writer),
        })
    }

    /// Runs `f` on a read-only connection.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.readers.get()?;
        f(&conn)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer: committed when `f` returns
    /// `Ok`, rolled back otherwise, so a failed request leaves the database as it was.
    pub fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        // A panic inside `f` drops the transaction (rollback) before poisoning; the connection is fine.
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// True when the database answers a query (for `/healthz`).
    pub fn is_healthy(&self) -> bool {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
            .is_ok()
    }

    /// A consistent copy of the database at `destination`, safe while the server writes.
    pub fn backup(&self, destination: &Path) -> Result<()> {
        // Its own connection: the pooled readers are query_only, which VACUUM INTO refuses.
        let conn = Connection::open(&self.path)?;
        let destination = destination
            .to_str()
            .ok_or_else(|| Error::validation("FILE", "the backup path must be valid UTF-8"))?;
        // VACUUM INTO reads inside one transaction, so the copy is one consistent snapshot.
        conn.execute("VACUUM INTO ?1", [destination])?;
        Ok(())
    }

    /// Folds the WAL back into the main file; called on graceful shutdown.
    pub fn checkpoint(&self) -> Result<()> {
        let conn = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// Per-connection set-up shared by the writer and the readers.
fn configure(conn: &Connection, pragmas: &str) -> rusqlite::Result<()> {
    conn.execute_batch(pragmas)?;
    // Every distinct filter combination of GET /api/tasks is its own statement.
    conn.set_prepared_statement_cache_capacity(128);
    // `q` matches titles case-insensitively for all of Unicode; SQLite's LIKE folds ASCII only.
    conn.create_scalar_function(
        "contains_ci",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let haystack = ctx.get_raw(0).as_str().unwrap_or_default().to_lowercase();
            let needle = ctx.get_raw(1).as_str().unwrap_or_default().to_lowercase();
            Ok(haystack.contains(&needle))
        },
    )
}

fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(Error::internal(format!(
                "the database has schema version {version}, newer than this binary's {SCHEMA_VERSION}; \
                 upgrade ktasks"
            )));
        }
        if version == 0 {
            conn.execute_batch(SCHEMA)?;
        }
        for migration in MIGRATIONS.iter().skip((version.max(1) - 1) as usize) {
            conn.execute_batch(migration)?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(_) => conn.execute_batch("ROLLBACK")?,
    }
    result
}

/// A new UUIDv7 id as text.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// True when `error` is a UNIQUE constraint failure (a slug or email taken).
pub fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// A closed set of lower-case words stored as TEXT and sent as JSON strings (plans, roles, ...).
/// `parse` is the one validator for the set; SQL and JSON conversions come with it.
#[macro_export]
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<$name> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| rusqlite::types::FromSqlError::Other(
                    format!("unexpected {} {text:?}", stringify!($name)).into(),
                ))
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> std::result::Result<$name, String> {
                $name::parse(text).ok_or_else(|| format!("expected one of: {}", $name::ALL.join(", ")))
            }
        }
    };
}

#[cfg(test)]
pub(crate) fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let config = DatabaseConfig {
        path: dir.path().join("test.db"),
        ..DatabaseConfig::default()
    };
    let store = Store::open(&config).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_applies_schema_once_and_sets_pragmas() {
        let (dir, store) = open_temp();
        store
            .read(|conn| {
                let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                assert_eq!(version, SCHEMA_VERSION);
                let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                assert_eq!(mode, "wal");
                let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
                assert_eq!(fk, 1);
                let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                assert_eq!(sync, 2, "FULL");
                Ok(())
            })
            .unwrap();
        drop(store);
        // A second open of the same file must not re-run the schema (it would fail on CREATE TABLE).
        let config = DatabaseConfig {
            path: dir.path().join("test.db"),
            ..DatabaseConfig::default()
        };
        Store::open(&config).unwrap();
    }

    #[test]
    fn readers_cannot_write() {
        let (_dir, store) = open_temp();
        let result = store.read(|conn| Ok(conn.execute("DELETE FROM users", [])?));
        assert!(result.is_err());
    }

    #[test]
    fn failed_write_rolls_back() {
        let (_dir, store) = open_temp();
        let result: Result<()> = store.write(|tx| {
            users::create_user(tx, "a@example.com", "A", users::Plan::Pro)?;
            Err(Error::NotFound)
        });
        assert!(result.is_err());
        let count = store
            .read(|conn| Ok(users::list_users(conn)?.len()))
            .unwrap();
        assert_eq!(count, 0);
    }
}
