//! The only place that speaks SQL. Synchronous on purpose: the server calls it through one
//! `spawn_blocking` helper (`app::run_guarded`), the CLI calls it directly, without a runtime.
//!
//! One `open` sets up every connection the same way for the server and the CLI: WAL, the configured
//! `synchronous`, `foreign_keys=ON`, a busy timeout, the embedded schema and its migrations.
//! Writes go through one writer connection behind a mutex, so writers inside this process queue
//! instead of meeting as `SQLITE_BUSY`; a writer in another process (the CLI while the server
//! runs) is waited for by the busy timeout. Reads use a pool of `query_only` connections and never
//! block on the writer (WAL).
//!
//! Group commit: writes that queue up behind each other share one `BEGIN IMMEDIATE` transaction
//! and so one fsync. Each runs in its own savepoint (a failed request rolls back only its own
//! changes), and each caller returns only after the shared `COMMIT` succeeded, so a `2xx` still
//! means durable. See `Store::write`. The server's requests write through a `Writes` value
//! instead (`Store::deferred_writes`), which leaves the commits for the answer to wait for.
//!
//! Snapshots: `Store::snapshot` hands its closure a `Snapshot` value, one read transaction on one
//! pooled connection, so that a read-only request (authentication, then the handler) takes one
//! WAL read lock instead of one per statement and sees one consistent state. The transaction is
//! the implicit one of the statement that reads `auth_epoch`, held open until the closure is done:
//! no BEGIN and ROLLBACK statements. Which a function does shows in what it takes: a `&Snapshot`
//! reads, a `&Tx` (inside `write`) or a `&Writes` writes. `Store::read` reads outside any
//! snapshot, from the pool.
//!
//! Files: `open` (file modes, connection set-up, schema and migrations), `snapshot` (read
//! snapshots), `write` (writes and group commit); and one per table group, each owning its row
//! structs and queries: `users`, `spaces` (with members), `projects` (with statuses), `tasks`
//! (with assignees and task labels), `labels`, `tokens`, `sessions`.

mod checkpoint;
pub mod idempotency;
pub mod labels;
mod open;
pub mod projects;
pub mod sessions;
mod snapshot;
pub mod spaces;
pub mod tasks;
pub mod tokens;
pub mod users;
pub mod webhooks;
mod write;

use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Condvar, Mutex};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::error::Error;

pub use checkpoint::Checkpointer;
pub use open::{SCHEMA, SCHEMA_VERSION};
pub use snapshot::{Snapshot, keep_readers_on_this_thread};
pub use write::{Commit, Writes};

pub type Result<T> = std::result::Result<T, Error>;

type Reader = r2d2::PooledConnection<SqliteConnectionManager>;

/// Read-only connections in the pool of `Store::open` (the CLI's, the tests'); the server sizes
/// its own (`Store::open_with_readers`). They are opened when first needed, and the pool hands
/// out the most recently used.
pub const DEFAULT_READERS: u32 = 16;

/// Tells stores apart for a thread's kept reader (tests open several in one process).
static NEXT_STORE_ID: AtomicUsize = AtomicUsize::new(0);

pub struct Store {
    id: usize,
    path: std::path::PathBuf,
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: Mutex<write::Writer>,
    /// Signalled when a batch's outcome is known.
    committed: Condvar,
    /// Writers between "I want the writer" and "I have it": while there are any, the holder leaves
    /// the transaction open for them instead of committing.
    waiting: AtomicUsize,
    /// Requests whose writes must commit together with a write they have yet to make (see
    /// `Writes::hold`): while there are any, no batch commits.
    holds: AtomicUsize,
    /// Woken after a commit that recorded webhook events (`Tx::events`): the dispatcher waits
    /// on it, so an event is sent as soon as it is durable and never before.
    events_committed: tokio::sync::Notify,
    /// Set by a commit that wrote an outbox row, taken by the dispatcher as it starts fanning out.
    outbox_written: std::sync::atomic::AtomicBool,
    /// What writes need to record webhook events cheaply (`webhooks::Outbox`).
    outbox: OutboxState,
    /// Whether and where WAL checkpoints run (`Store::start_checkpointer`).
    checkpoints: checkpoint::Checkpoints,
    /// Writes per committed batch, for `ktasks_db_commit_batch_size` (its count is the commits).
    commits: crate::metrics::Histogram,
    /// A read replica's store: opened without writing, and every write is refused
    /// (`Error::ReadOnlyReplica`) before it reaches SQLite.
    read_only: bool,
}

/// The outbox's in-memory state, shared by the writes of this process. Only the server's
/// process writes webhooks and events (the CLI has no command that does), so neither needs a
/// cross-process check like the tokens' `auth_epoch`.
pub(crate) struct OutboxState {
    /// The last `webhook_payloads.seq` handed out. Assigned here rather than by AUTOINCREMENT
    /// (which writes `sqlite_sequence` on every insert), and never reused while the server runs,
    /// so that an event's row key (`webhook_events`) always names the payload it was made for.
    seq: std::sync::atomic::AtomicI64,
    /// The active webhooks of each space, as `webhooks::Outbox::open` reads them, loaded at the
    /// first write that needs them; dropped by every change to the webhooks table.
    pub(crate) subscribers: Mutex<Option<webhooks::Subscribers>>,
    /// Counts the changes to the webhooks table: the dispatcher drops what it read before one.
    pub(crate) generation: std::sync::atomic::AtomicU64,
}

impl OutboxState {
    fn new(seq: i64) -> OutboxState {
        OutboxState {
            seq: std::sync::atomic::AtomicI64::new(seq),
            subscribers: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// The writer connection inside a write transaction: what store functions that change data take.
pub struct Tx<'c> {
    conn: &'c Connection,
    /// The webhook events recorded by the open batch's writes so far, written to the outbox as
    /// one row when the batch commits (`webhooks::Outbox`).
    events: &'c std::cell::RefCell<webhooks::PendingEvents>,
    outbox: &'c OutboxState,
}

impl Tx<'_> {
    pub(crate) fn events(&self) -> std::cell::RefMut<'_, webhooks::PendingEvents> {
        self.events.borrow_mut()
    }

    /// The next `webhook_payloads.seq` (the writer lock is held, so these come in order).
    pub(crate) fn next_payload_seq(&self) -> i64 {
        self.outbox
            .seq
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }

    pub(crate) fn outbox(&self) -> &OutboxState {
        self.outbox
    }
}

impl Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Store {
    /// True when the database answers a query (for `/healthz`).
    pub fn is_healthy(&self) -> bool {
        self.read(|conn| {
            let one: i64 = conn
                .prepare_cached("SELECT 1")?
                .query_row([], |row| row.get(0))?;
            Ok(one == 1)
        })
        .is_ok_and(|ok| ok)
    }

    /// A consistent copy of the database at `destination`, safe while the server writes.
    pub fn backup(&self, destination: &Path) -> Result<()> {
        // Its own connection: the pooled readers are query_only, which VACUUM INTO refuses.
        let flags = if self.read_only {
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            rusqlite::OpenFlags::default()
        };
        let conn = Connection::open_with_flags(&self.path, flags)?;
        let destination = destination
            .to_str()
            .ok_or_else(|| Error::validation("FILE", "the backup path must be valid UTF-8"))?;
        // VACUUM INTO reads inside one transaction, so the copy is one consistent snapshot.
        conn.execute("VACUUM INTO ?1", [destination])?;
        Ok(())
    }

    /// Resolves after a commit that recorded webhook events (one permit is kept if nobody waits).
    pub async fn events_committed(&self) {
        self.events_committed.notified().await;
    }

    /// Changes with every change to a webhook (its URL, secret, switch, existence).
    pub fn webhooks_generation(&self) -> u64 {
        self.outbox
            .generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// True once after each commit that wrote an outbox row (true at start: rows may be left).
    pub fn take_outbox_written(&self) -> bool {
        self.outbox_written
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    }

    /// Wakes `events_committed` (a delivery finished: a slot for the next event is free).
    pub fn wake_dispatcher(&self) {
        self.events_committed.notify_one();
    }

    /// Folds the WAL back into the main file; called on graceful shutdown.
    pub fn checkpoint(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnlyReplica);
        }
        let writer = self.lock_writer();
        writer
            .conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
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
    let config = crate::config::DatabaseConfig {
        path: dir.path().join("test.db"),
        ..crate::config::DatabaseConfig::default()
    };
    let store = Store::open(&config).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests;
