//! Opening the database: the file's modes, the per-connection set-up shared by the writer and the
//! readers, the embedded schema and its migrations.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};

use super::{DEFAULT_READERS, NEXT_STORE_ID, Result, Store, write::Writer};
use crate::config::{DatabaseConfig, Synchronous};
use crate::error::Error;

pub const SCHEMA: &str = include_str!("../../schema.sql");

/// The version `SCHEMA` is: a database at an older one gets each later `-- Version N:` section.
pub const SCHEMA_VERSION: i64 = 8;

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

        let read_only = config.read_only || !writable(&config.path);
        if read_only && !config.read_only {
            // Not asked for: most likely a file left owned by another user (a restore run as
            // root). Said loudly, since every write will be refused.
            crate::log_warn!(
                "{} cannot be written by this process: serving it as a read-only replica \
                 (every write is refused); fix its owner or permissions if it is the primary",
                config.path.display()
            );
        }
        if read_only && !config.path.exists() {
            return Err(Error::internal(format!(
                "no database at {}: a read replica opens a copy of the primary's",
                config.path.display()
            )));
        }
        // A replica's connections are all opened read-only: SQLite itself then writes nothing
        // (no journal mode change, no migration, no checkpoint when the last one closes).
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            restrict_file_modes(&config.path);
            OpenFlags::default()
        };
        let writer = Connection::open_with_flags(&config.path, flags).map_err(|e| {
            Error::internal(format!(
                "cannot open database {}: {e}",
                config.path.display()
            ))
        })?;
        if !read_only {
            // WAL is persistent in the file; setting it once from the writer is enough.
            writer.pragma_update(None, "journal_mode", "WAL")?;
        }
        configure(&writer, &pragmas)?;
        if read_only {
            check_schema(&writer)?;
        } else {
            migrate(&writer)?;
        }
        let outbox_seq: i64 = writer.query_row(
            "SELECT coalesce(max(seq), 0) FROM webhook_payloads",
            [],
            |row| row.get(0),
        )?;

        // 512 KiB of page cache per reader instead of SQLite's 2 MB: the server may open 26 of
        // them, and in WAL mode a read transaction that begins after any commit begins with its
        // cache emptied, so under writes a large one is memory for nothing. GET, list and PATCH
        // ran at the same rates with 2 MB, 512 KiB and 256 KiB (alternated 4 s runs at 64
        // connections), and the peak RSS of the same load fell by 3-4 MB.
        let reader_pragmas = format!("{pragmas} PRAGMA query_only = ON; PRAGMA cache_size = -512;");
        let reader_flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        let manager = SqliteConnectionManager::file(&config.path)
            .with_flags(reader_flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(move |conn| configure(conn, &reader_pragmas));
        let readers = r2d2::Pool::builder()
            .max_size(readers)
            .min_idle(Some(1))
            // A local file does not go stale; a check on every checkout would cost a statement.
            .test_on_check_out(false)
            .build(manager)
            .map_err(|e| Error::internal(format!("cannot open database pool: {e}")))?;
        Ok(Store {
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            path: config.path.clone(),
            readers,
            writer: Mutex::new(Writer::new(writer)),
            committed: Condvar::new(),
            waiting: AtomicUsize::new(0),
            holds: AtomicUsize::new(0),
            events_committed: tokio::sync::Notify::new(),
            outbox_written: std::sync::atomic::AtomicBool::new(true),
            outbox: super::OutboxState::new(outbox_seq),
            checkpoints: Default::default(),
            commits: crate::metrics::commit_histogram(),
            read_only,
        })
    }
}

/// Whether the file can be written (or made): not when opening it for writing is refused, nor
/// when no one has write permission on it (which root, who may write anyway, is told by too).
fn writable(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else {
        return true;
    };
    !metadata.permissions().readonly() && std::fs::OpenOptions::new().write(true).open(path).is_ok()
}

/// A replica cannot migrate: its schema must be the one this binary writes. (The primary migrates
/// when it starts the new version; replication brings the change.)
fn check_schema(conn: &Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    match version.cmp(&SCHEMA_VERSION) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less => Err(Error::internal(format!(
            "this read replica's database has schema version {version}, older than this binary's \
             {SCHEMA_VERSION}, and a replica does not migrate: upgrade and start the primary \
             first, then the replicas"
        ))),
        std::cmp::Ordering::Greater => Err(Error::internal(format!(
            "the database has schema version {version}, newer than this binary's {SCHEMA_VERSION}; \
             upgrade ktasks"
        ))),
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
