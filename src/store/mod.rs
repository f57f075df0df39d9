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
//! means durable. See `Store::write`.
//!
//! Snapshots: `Store::snapshot` puts every `read` of a read-only request (authentication, then the
//! handler) inside one read transaction on one pooled connection, so the request takes one WAL
//! read lock instead of one per statement and sees one consistent state. The transaction is the
//! implicit one of the statement that reads `auth_epoch`, held open until the request's reads are
//! done: no BEGIN and ROLLBACK statements.
//!
//! Each table group's file owns its row structs and queries: `users`, `spaces` (with members),
//! `projects` (with statuses), `tasks` (with assignees and task labels), `labels`, `tokens`.

pub mod labels;
pub mod projects;
pub mod sessions;
pub mod spaces;
pub mod tasks;
pub mod tokens;
pub mod users;

use std::cell::{Cell, RefCell};
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};

use crate::config::{DatabaseConfig, Synchronous};
use crate::error::Error;

pub const SCHEMA: &str = include_str!("../../schema.sql");

/// The version `SCHEMA` is: a database at an older one gets each later `-- Version N:` section.
pub const SCHEMA_VERSION: i64 = 3;

/// The part of `SCHEMA` that `version` added: from its `-- Version N:` line to the next one.
/// Migrations are these sections, so an upgraded database and a new one cannot drift apart.
fn added_in(version: i64) -> &'static str {
    let start = SCHEMA
        .find(&format!("-- Version {version}:"))
        .expect("schema.sql has a section for every version after 1");
    let rest = &SCHEMA[start..];
    let end = rest[1..]
        .find("-- Version ")
        .map_or(rest.len(), |next| next + 1);
    &rest[..end]
}

pub type Result<T> = std::result::Result<T, Error>;

/// Read-only connections in the pool of `Store::open` (the CLI's, the tests'); the server sizes
/// its own (`Store::open_with_readers`). They are opened when first needed, and the pool hands
/// out the most recently used.
pub const DEFAULT_READERS: u32 = 16;

/// At most this many writes share one commit, so that a long queue still commits regularly.
const MAX_BATCH: usize = 64;

type Reader = r2d2::PooledConnection<SqliteConnectionManager>;

/// A read snapshot open on a thread (see `Store::snapshot`).
struct Snapshot {
    store: usize,
    conn: Reader,
    /// What the statement that holds the snapshot open read.
    auth_epoch: Cell<i64>,
}

thread_local! {
    /// The read snapshot open on this thread.
    static SNAPSHOT: RefCell<Option<Snapshot>> = const { RefCell::new(None) };
    /// Whether this thread keeps its reader between snapshots (`keep_readers_on_this_thread`),
    /// and the one it keeps.
    static KEEP_READER: Cell<bool> = const { Cell::new(false) };
    static KEPT: RefCell<Option<(usize, Reader)>> = const { RefCell::new(None) };
}

/// Makes this thread's snapshots reuse one pooled reader instead of checking one out of the pool
/// and back for each (the pool's lock and its clock reads),
/// until the thread ends. For the server's read lane only: its threads are few
/// (the server gives its pool a connection for every thread of both lanes), so the pool keeps enough for
/// everyone else.
pub fn keep_readers_on_this_thread() {
    KEEP_READER.set(true);
}

thread_local! {
    /// The batches this thread's writes joined without waiting (see `Store::defer_commits`).
    static DEFERRED: RefCell<Option<Vec<Arc<Batch>>>> = const { RefCell::new(None) };
}

/// Registers `batch` with the caller's `defer_commits`, if it is deferring.
fn defer(batch: &Arc<Batch>) -> bool {
    DEFERRED.with_borrow_mut(|deferred| {
        deferred
            .as_mut()
            .map(|batches| batches.push(Arc::clone(batch)))
            .is_some()
    })
}

/// The commits that deferred writes wait for (see `Store::defer_commits`).
#[must_use = "a deferred write is durable only once its commit is waited for"]
pub struct Commit {
    batches: Vec<Arc<Batch>>,
}

impl Commit {
    /// Waits until every batch the writes joined is committed; `Err` if one was rolled back.
    pub async fn wait(self) -> Result<()> {
        for batch in self.batches {
            // Registered before the check, so a commit in between still wakes it.
            let done = batch.done.notified();
            if batch.outcome.get().is_none() {
                done.await;
            }
            if let Some(Err(reason)) = batch.outcome.get() {
                return Err(Error::internal(format!("commit failed: {reason}")));
            }
        }
        Ok(())
    }
}

/// Tells stores apart for `SNAPSHOT` (tests open several in one process).
static NEXT_STORE_ID: AtomicUsize = AtomicUsize::new(0);

pub struct Store {
    id: usize,
    path: std::path::PathBuf,
    readers: r2d2::Pool<SqliteConnectionManager>,
    writer: Mutex<Writer>,
    /// Signalled when a batch's outcome is known.
    committed: Condvar,
    /// Writers between "I want the writer" and "I have it": while there are any, the holder leaves
    /// the transaction open for them instead of committing.
    waiting: AtomicUsize,
}

struct Writer {
    conn: Connection,
    /// The open transaction's batch, if one is open.
    batch: Option<Arc<Batch>>,
}

#[derive(Default)]
struct Batch {
    jobs: AtomicUsize,
    /// Set once, by whoever commits (or rolls back) the batch: `Err` holds the reason.
    outcome: OnceLock<std::result::Result<(), String>>,
    /// Wakes the `Commit::wait`s of deferred jobs once `outcome` is set.
    done: tokio::sync::Notify,
    /// A savepoint statement failed: the transaction's state is unknown, so roll it all back.
    broken: std::sync::atomic::AtomicBool,
}

/// The writer connection inside a write transaction: what store functions that change data take.
pub struct Tx<'c> {
    conn: &'c Connection,
}

impl Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Store {
    /// Opens (creating if needed) the database file, applies the schema and migrations.
    pub fn open(config: &DatabaseConfig) -> Result<Store> {
        Store::open_with_readers(config, DEFAULT_READERS)
    }

    /// `open`, with at most `readers` read-only connections in the pool.
    pub fn open_with_readers(config: &DatabaseConfig, readers: u32) -> Result<Store> {
        let busy_timeout = Duration::from_millis(config.busy_timeout_ms);
        let synchronous = match config.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        // temp_store: each write runs in a savepoint, whose sub-journal (the pages it changed,
        // kept for a rollback) would otherwise be a temporary file.
        let pragmas = format!(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = {}; \
             PRAGMA temp_store = MEMORY;",
            busy_timeout.as_millis()
        );

        restrict_file_modes(&config.path);
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
            .max_size(readers)
            .min_idle(Some(1))
            // A local file does not go stale; checking on every checkout cost a statement per read.
            .test_on_check_out(false)
            .build(manager)
            .map_err(|e| Error::internal(format!("cannot open database pool: {e}")))?;
        Ok(Store {
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            path: config.path.clone(),
            readers,
            writer: Mutex::new(Writer {
                conn: writer,
                batch: None,
            }),
            committed: Condvar::new(),
            waiting: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a read-only connection: the snapshot's, inside `snapshot`, else a pooled one.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        SNAPSHOT.with_borrow(|snapshot| match snapshot {
            Some(snapshot) if snapshot.store == self.id => f(&snapshot.conn),
            _ => f(&*self.readers.get()?),
        })
    }

    /// `tokens::auth_epoch`: inside a snapshot of this store, the value it began with, without a
    /// statement.
    pub fn auth_epoch(&self) -> Result<i64> {
        let in_snapshot = SNAPSHOT.with_borrow(|snapshot| match snapshot {
            Some(snapshot) if snapshot.store == self.id => Some(snapshot.auth_epoch.get()),
            _ => None,
        });
        in_snapshot.map_or_else(|| self.read(tokens::auth_epoch), Ok)
    }

    /// Runs `f` with every `read` of this store on this thread in one read transaction: one pool
    /// checkout and one WAL read lock for the whole of `f`, and one consistent view. Only for work
    /// that does not write: a `write` inside `f` commits, but later reads in `f` would not see it.
    pub fn snapshot<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        if SNAPSHOT.with_borrow(Option::is_some) {
            return Ok(f());
        }
        let conn = match KEPT.take() {
            Some((store, conn)) if store == self.id => conn,
            _ => self.readers.get()?,
        };
        SNAPSHOT.set(Some(Snapshot {
            store: self.id,
            conn,
            auth_epoch: Cell::new(0),
        }));
        /// Returns the connection to the pool (or keeps it for the thread's next snapshot), after
        /// a panic too. By then the statement holding the transaction open has been reset.
        struct End;
        impl Drop for End {
            fn drop(&mut self) {
                if let Some(snapshot) = SNAPSHOT.take()
                    && KEEP_READER.get()
                {
                    KEPT.set(Some((snapshot.store, snapshot.conn)));
                }
            }
        }
        let _end = End;
        SNAPSHOT.with_borrow(|snapshot| {
            let snapshot = snapshot.as_ref().expect("set above");
            // SQLite keeps a connection's implicit read transaction open while any statement on
            // it is unfinished, and ends it when the last one is reset. So the epoch's row is
            // read and its statement left unfinished while `f` runs: `f`'s reads join that
            // transaction, and dropping `rows` ends it: no BEGIN and ROLLBACK statements.
            let mut statement = snapshot.conn.prepare_cached(tokens::AUTH_EPOCH)?;
            let mut rows = statement.query([])?;
            let row = rows
                .next()?
                .ok_or_else(|| Error::internal("the auth_epoch row is missing"))?;
            snapshot.auth_epoch.set(row.get(0)?);
            let result = f();
            drop(rows);
            Ok(result)
        })
    }

    /// Runs `f` as one write: its changes are committed when it returns `Ok` (and this returns
    /// only after the commit), and rolled back when it returns `Err` or panics, so a failed request
    /// leaves the database as it was.
    ///
    /// Writes that arrive while another runs join its transaction, each in a savepoint; the last
    /// one in (when nobody else is waiting, or after `MAX_BATCH`) commits for all of them.
    pub fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut writer = self.lock_writer();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        if writer.batch.is_none() {
            run(&writer.conn, "BEGIN IMMEDIATE")?;
            writer.batch = Some(Arc::new(Batch::default()));
        }
        let batch = Arc::clone(writer.batch.as_ref().expect("a batch is open"));

        let ran = match run(&writer.conn, "SAVEPOINT job") {
            Ok(()) => {
                let ran = catch_unwind(AssertUnwindSafe(|| f(&Tx { conn: &writer.conn })));
                let end = if matches!(ran, Ok(Ok(_))) {
                    run(&writer.conn, "RELEASE job")
                } else {
                    run(&writer.conn, "ROLLBACK TO job")
                        .and_then(|()| run(&writer.conn, "RELEASE job"))
                };
                if end.is_err() {
                    batch.broken.store(true, Ordering::SeqCst);
                }
                ran
            }
            Err(error) => {
                batch.broken.store(true, Ordering::SeqCst);
                Ok(Err(error.into()))
            }
        };

        let jobs = batch.jobs.fetch_add(1, Ordering::SeqCst) + 1;
        if self.waiting.load(Ordering::SeqCst) > 0 && jobs < MAX_BATCH {
            // Someone is queued behind us and will continue the batch; the last one commits. A
            // failed job has nothing left to commit. A successful one waits for the commit here,
            // or, when its caller defers (`defer_commits`), before its request is answered.
            if matches!(ran, Ok(Ok(_))) && !defer(&batch) {
                while batch.outcome.get().is_none() {
                    writer = self
                        .committed
                        .wait(writer)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            }
        } else {
            let outcome = if batch.broken.load(Ordering::SeqCst) {
                Err("a savepoint failed; the batch was rolled back".to_string())
            } else {
                run(&writer.conn, "COMMIT").map_err(|e| e.to_string())
            };
            if outcome.is_err() {
                let _ = run(&writer.conn, "ROLLBACK");
            }
            writer.batch = None;
            let _ = batch.outcome.set(outcome);
            self.committed.notify_all();
            batch.done.notify_waiters();
        }
        drop(writer);

        let value = match ran {
            Ok(value) => value?,
            Err(panic) => resume_unwind(panic),
        };
        match batch.outcome.get() {
            Some(Err(reason)) => Err(Error::internal(format!("commit failed: {reason}"))),
            // Committed, or deferred: `Commit::wait` reports the outcome.
            _ => Ok(value),
        }
    }

    /// Runs `f` with this thread's writes not waiting for their commits: each returns once its
    /// savepoint is released, and the `Commit` returned here must be waited for before anything
    /// is answered. The blocking thread is free for the next request meanwhile, so a commit's
    /// batch can grow past the number of threads. Only for work that reads back what it wrote
    /// inside its `write` (the API handlers do): a `read` after a `write` might not see it yet.
    pub fn defer_commits<T>(&self, f: impl FnOnce() -> T) -> (T, Commit) {
        /// Stops deferring on the way out, after a panic too.
        struct Stop;
        impl Drop for Stop {
            fn drop(&mut self) {
                DEFERRED.take();
            }
        }
        DEFERRED.set(Some(Vec::new()));
        let stop = Stop;
        let value = f();
        let batches = DEFERRED.take().unwrap_or_default();
        drop(stop);
        (value, Commit { batches })
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        // A panic in a write is caught inside `write`; a poisoned lock still guards a sound state.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

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
        let writer = self.lock_writer();
        writer
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// Makes the database and its `-wal` and `-shm` files, where they exist, readable by their owner
/// only, saying so when they were not. (New ones are made so by the process's umask, set in
/// `main`; SQLite gives `-wal` and `-shm` the main file's mode.)
fn restrict_file_modes(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        let Ok(metadata) = std::fs::metadata(file) else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 == 0 || !metadata.is_file() {
            continue;
        }
        match std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode & 0o700)) {
            Ok(()) => crate::log_warn!(
                "{} was readable by others (mode {mode:o}); it is now {:o}",
                file.display(),
                mode & 0o700
            ),
            Err(error) => crate::log_warn!(
                "{} is readable by others (mode {mode:o}) and could not be changed: {error}",
                file.display()
            ),
        }
    }
}

/// Runs a transaction-control statement from the statement cache: these run several times per
/// write, and `execute_batch` would parse them every time.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Per-connection set-up shared by the writer and the readers.
fn configure(conn: &Connection, pragmas: &str) -> rusqlite::Result<()> {
    conn.execute_batch(pragmas)?;
    // Every distinct filter combination of GET /api/tasks is its own statement.
    conn.set_prepared_statement_cache_capacity(128);
    // Without the query planner stability guarantee, SQLite plans `LIMIT ?` (and some other
    // parameters) by their bound value and so recompiles a cached statement every time one is
    // bound again. Our plans come from indexes, not from values.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // `rarray(?)`: a page's task ids as one bound array (`tasks::load_relations`).
    rusqlite::vtab::array::load_module(conn)?;
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
        } else {
            for added in version + 1..=SCHEMA_VERSION {
                conn.execute_batch(added_in(added))?;
            }
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

    fn add_user(store: &Store, email: &str) {
        store
            .write(|tx| users::create_user(tx, email, "U", users::Plan::Pro))
            .unwrap();
    }

    fn users_seen(store: &Store) -> i64 {
        store.read(users::count_users).unwrap()
    }

    #[test]
    fn reads_in_a_snapshot_see_one_state_and_later_reads_see_new_writes() {
        let (_dir, store) = open_temp();
        let (_other_dir, other) = open_temp();
        add_user(&store, "a@example.com");
        store
            .snapshot(|| {
                assert_eq!(users_seen(&store), 1);
                add_user(&store, "b@example.com");
                assert_eq!(users_seen(&store), 1, "the snapshot keeps its state");
                assert_eq!(users_seen(&other), 0, "another store reads its own file");
                // The snapshot's connection is out of the pool: reads on other threads get others.
                let elsewhere = std::thread::scope(|s| s.spawn(|| users_seen(&store)).join());
                assert_eq!(elsewhere.unwrap(), 2);
            })
            .unwrap();
        assert_eq!(users_seen(&store), 2);
    }

    #[test]
    fn a_snapshot_has_the_auth_epoch_of_its_state() {
        let (_dir, store) = open_temp();
        let bump = || {
            store
                .write(|tx| Ok(tx.execute("UPDATE auth_epoch SET value = value + 1", [])?))
                .unwrap()
        };
        bump();
        store
            .snapshot(|| {
                assert_eq!(store.auth_epoch().unwrap(), 1);
                bump();
                assert_eq!(
                    store.auth_epoch().unwrap(),
                    1,
                    "the epoch the snapshot began with"
                );
                assert_eq!(
                    store.read(tokens::auth_epoch).unwrap(),
                    1,
                    "and its state's"
                );
            })
            .unwrap();
        assert_eq!(store.auth_epoch().unwrap(), 2);
    }

    #[test]
    fn a_thread_that_keeps_its_reader_reuses_it_and_still_sees_new_writes() {
        let (_dir, store) = open_temp();
        let (_other_dir, other) = open_temp();
        std::thread::scope(|s| {
            s.spawn(|| {
                keep_readers_on_this_thread();
                // A mark only this connection carries, to recognise it in the next snapshot.
                let cache_size = |conn: &Connection| {
                    Ok(conn.query_row("PRAGMA cache_size", [], |row| row.get::<_, i64>(0))?)
                };
                store
                    .snapshot(|| {
                        assert_eq!(users_seen(&store), 0);
                        store.read(|conn| Ok(conn.execute_batch("PRAGMA cache_size = -4321")?))
                    })
                    .unwrap()
                    .unwrap();
                let kept = KEPT.with_borrow(|kept| kept.as_ref().map(|(id, _)| *id));
                assert_eq!(kept, Some(store.id), "kept after the snapshot");
                let idle = |conn: &Reader| conn.is_autocommit() && !conn.is_busy();
                assert!(KEPT.with_borrow(|kept| idle(&kept.as_ref().unwrap().1)));
                add_user(&store, "a@example.com");
                store
                    .snapshot(|| {
                        assert_eq!(users_seen(&store), 1, "a kept reader sees new writes");
                        assert_eq!(store.read(cache_size).unwrap(), -4321, "the same reader");
                    })
                    .unwrap();
                // A snapshot of another store swaps the kept reader for one of its own.
                other.snapshot(|| users_seen(&other)).unwrap();
                let kept = KEPT.with_borrow(|kept| kept.as_ref().map(|(id, _)| *id));
                assert_eq!(kept, Some(other.id));
            })
            .join()
            .unwrap();
        });
        // Threads that did not ask keep nothing.
        store.snapshot(|| users_seen(&store)).unwrap();
        assert!(KEPT.with_borrow(Option::is_none));
    }

    #[test]
    fn a_panic_in_a_snapshot_ends_it() {
        let (_dir, store) = open_temp();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            store.snapshot(|| {
                users_seen(&store);
                panic!("handler bug")
            })
        }));
        assert!(caught.is_err());
        assert!(SNAPSHOT.with_borrow(Option::is_none));
        add_user(&store, "a@example.com");
        assert_eq!(users_seen(&store), 1, "no read is left in the old snapshot");
        // No pooled connection was left inside a transaction, or with an unfinished statement
        // (which would hold its implicit read transaction open).
        let all: Vec<Reader> = (0..DEFAULT_READERS)
            .map(|_| store.readers.get().unwrap())
            .collect();
        assert!(
            all.iter()
                .all(|conn| conn.is_autocommit() && !conn.is_busy())
        );
    }

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
                let temp: i64 = conn.query_row("PRAGMA temp_store", [], |r| r.get(0))?;
                assert_eq!(temp, 2, "MEMORY: savepoint sub-journals stay off the disk");
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

    /// A version-1 database (before sessions) is migrated to the same schema a new one gets.
    #[test]
    fn old_databases_are_migrated_to_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            let v1 = SCHEMA.split("-- Version 2:").next().unwrap();
            conn.execute_batch(v1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let config = DatabaseConfig {
            path,
            ..DatabaseConfig::default()
        };
        let migrated = Store::open(&config).unwrap();
        let (_fresh_dir, fresh) = open_temp();
        let tables = |store: &Store| {
            store
                .read(|conn| {
                    let mut s = conn.prepare("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")?;
                    let rows: Vec<(String, String)> = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
                    Ok(rows.into_iter().map(|(name, sql)| (name, sql.split_whitespace().collect::<Vec<_>>().join(" "))).collect::<Vec<_>>())
                })
                .unwrap()
        };
        assert_eq!(tables(&migrated), tables(&fresh));
        assert_eq!(migrated.read(tokens::auth_epoch).unwrap(), 0);
        let version: i64 = migrated
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn readers_cannot_write() {
        let (_dir, store) = open_temp();
        let result = store.read(|conn| Ok(conn.execute("DELETE FROM users", [])?));
        assert!(result.is_err());
    }

    /// A store with a table `t (n INTEGER PRIMARY KEY)`, shareable between threads.
    fn store_with_numbers() -> (tempfile::TempDir, Arc<Store>) {
        let (dir, store) = open_temp();
        store
            .write(|tx| Ok(tx.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")?))
            .unwrap();
        (dir, Arc::new(store))
    }

    /// Concurrent writes, some failing, some panicking: exactly the successful ones are stored,
    /// and every caller hears the truth about its own write.
    #[test]
    fn batched_writes_keep_each_write_atomic() {
        let (_dir, store) = store_with_numbers();
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let mut stored = Vec::new();
                    for i in 0..200 {
                        let n = thread * 1000 + i;
                        let result = catch_unwind(AssertUnwindSafe(|| {
                            store.write(|tx| {
                                tx.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                                match n % 7 {
                                    0 => Err(Error::NotFound),
                                    1 => panic!("a bug in write {n}"),
                                    _ => Ok(()),
                                }
                            })
                        }));
                        match result {
                            Ok(Ok(())) => stored.push(n),
                            Ok(Err(Error::NotFound)) => assert_eq!(n % 7, 0),
                            Ok(Err(other)) => panic!("unexpected {other:?}"),
                            Err(_) => assert_eq!(n % 7, 1),
                        }
                    }
                    stored
                })
            })
            .collect();
        let mut expected: Vec<i64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        expected.sort();
        let stored: Vec<i64> = store
            .read(|conn| {
                let mut statement = conn.prepare("SELECT n FROM t ORDER BY n")?;
                Ok(statement
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert_eq!(stored, expected);
        let succeeding = (0..8i64)
            .flat_map(|t| (0..200).map(move |i| t * 1000 + i))
            .filter(|n| n % 7 > 1)
            .count();
        assert_eq!(stored.len(), succeeding);
    }

    /// Deferred writes (the server's): once `Commit::wait` returns, the write is committed, which a
    /// reader connection (it sees only committed data) confirms.
    #[test]
    fn a_deferred_write_is_committed_when_its_wait_returns() {
        let (_dir, store) = store_with_numbers();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let runtime = Arc::new(runtime);
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let (store, runtime) = (Arc::clone(&store), Arc::clone(&runtime));
                std::thread::spawn(move || {
                    let mut deferred = 0;
                    for i in 0..100 {
                        let n = thread * 1000 + i;
                        let (written, commit) = store.defer_commits(|| {
                            store.write(|tx| Ok(tx.execute("INSERT INTO t VALUES (?1)", [n])?))
                        });
                        written.unwrap();
                        deferred += commit.batches.len();
                        runtime.block_on(commit.wait()).unwrap();
                        let seen: i64 = store
                            .read(|conn| {
                                let sql = "SELECT count(*) FROM t WHERE n = ?1";
                                Ok(conn.query_row(sql, [n], |row| row.get(0))?)
                            })
                            .unwrap();
                        assert_eq!(seen, 1, "write {n} was answered before its commit");
                    }
                    deferred
                })
            })
            .collect();
        let deferred: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        // Not a guarantee on every machine, but with 8 writers some always find company.
        assert!(deferred > 0, "no write was ever deferred");
        let rows: i64 = store
            .read(|conn| Ok(conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0))?))
            .unwrap();
        assert_eq!(rows, 800);
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
