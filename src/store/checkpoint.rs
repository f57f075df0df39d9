//! WAL checkpoints off the write path.
//!
//! SQLite's own autocheckpoint runs on the connection that committed, inside its COMMIT: every
//! ~1,000 WAL frames one write (and the whole group-commit batch behind it) also copies those
//! pages into the database file and fsyncs it. The server moves that work to a thread with a
//! connection of its own (`Store::start_checkpointer`): the writer's WAL hook notes how long
//! the WAL is after each commit, and once 1,000 frames are not yet copied it wakes the thread,
//! which runs a PASSIVE checkpoint (it never blocks the writer or readers).
//!
//! A passive checkpoint cannot restart the WAL from its beginning: only a write that starts
//! when every frame is copied does. Under a steady stream of writes the thread always lags a
//! little, so the writer checkpoints itself once the WAL reaches `WRITER_FRAMES` (by then the
//! thread has copied all but the last frames, so it is short) and the WAL restarts.
//!
//! The CLI keeps SQLite's autocheckpoint: its writes are few. With `database.autocheckpoint =
//! false` nobody checkpoints (Litestream does, from outside), and the server warns when the WAL
//! passes `WARN_FRAMES`, which means the outside checkpointer is not keeping up.

use std::cell::Cell;
use std::ffi::c_int;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

use super::{Result, Store};

/// Frames not yet copied that wake the checkpoint thread: SQLite's default autocheckpoint.
const THREAD_FRAMES: i32 = 1_000;
/// The WAL length (about 40 MB of 4 KiB pages) at which the writer checkpoints itself.
const WRITER_FRAMES: i32 = 10_000;
/// With checkpoints left to others, the WAL length (about 1 GB) that is worth a warning.
const WARN_FRAMES: i32 = 250_000;

thread_local! {
    /// The WAL's length in frames after the last commit on this thread (set by `note_frames`,
    /// the writer's WAL hook, which SQLite calls inside COMMIT on the committing thread).
    static WAL_FRAMES: Cell<i32> = const { Cell::new(0) };
}

fn note_frames(_: &Wal, frames: c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(frames);
    Ok(())
}

/// What the writer and the checkpoint thread share.
#[derive(Default)]
pub(super) struct Checkpoints {
    /// Whether the writer's WAL hook is `note_frames` (the server's), instead of SQLite's.
    hooked: AtomicBool,
    /// Whether checkpoints are left to another program (`database.autocheckpoint = false`).
    external: AtomicBool,
    /// The checkpoint thread, to wake.
    thread: std::sync::OnceLock<std::thread::Thread>,
    /// How far into the WAL the thread's last checkpoint copied.
    copied: Arc<AtomicI32>,
    /// Checkpoints the thread ran.
    runs: Arc<std::sync::atomic::AtomicUsize>,
    /// A warning about the WAL's length was logged and the WAL did not shrink since.
    warned: AtomicBool,
}

/// The running checkpoint thread; `stop` ends it.
pub struct Checkpointer {
    handle: JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.thread().unpark();
        let _ = self.handle.join();
    }
}

impl Store {
    /// Takes WAL checkpoints off the writer (see the module's text): from now on a thread of its
    /// own copies the WAL into the database file, or, with `autocheckpoint` false, nobody here
    /// does. `None` in the second case.
    pub fn start_checkpointer(&self, autocheckpoint: bool) -> Result<Option<Checkpointer>> {
        let checkpoints = &self.checkpoints;
        let checkpointer = if autocheckpoint {
            let conn = Connection::open(&self.path)?;
            let stop = Arc::new(AtomicBool::new(false));
            let copied = Arc::clone(&checkpoints.copied);
            let runs = Arc::clone(&checkpoints.runs);
            let stopping = Arc::clone(&stop);
            let handle = std::thread::Builder::new()
                .name("ktasks-checkpoint".into())
                .spawn(move || {
                    while !stopping.load(Ordering::SeqCst) {
                        std::thread::park();
                        if stopping.load(Ordering::SeqCst) {
                            break;
                        }
                        // Busy (another checkpoint runs: the writer's, or the CLI's) is fine.
                        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                            row.get::<_, i32>(2)
                        }) {
                            Ok(frames) if frames >= 0 => copied.store(frames, Ordering::SeqCst),
                            Ok(_) => {}
                            Err(error) => crate::log_warn!("WAL checkpoint failed: {error}"),
                        }
                        runs.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .map_err(|e| {
                    crate::error::Error::internal(format!("cannot start a thread: {e}"))
                })?;
            let _ = checkpoints.thread.set(handle.thread().clone());
            Some(Checkpointer { handle, stop })
        } else {
            checkpoints.external.store(true, Ordering::SeqCst);
            None
        };
        let writer = self.lock_writer();
        // Replaces SQLite's autocheckpoint, which is a WAL hook too.
        writer.conn().wal_hook(Some(note_frames));
        checkpoints.hooked.store(true, Ordering::SeqCst);
        Ok(checkpointer)
    }

    /// Called by the writer right after a COMMIT, on its thread: wakes the checkpoint thread or
    /// checkpoints here, as the WAL's length asks.
    pub(super) fn after_commit(&self, conn: &Connection) {
        let checkpoints = &self.checkpoints;
        if !checkpoints.hooked.load(Ordering::Relaxed) {
            return;
        }
        let frames = WAL_FRAMES.replace(0);
        if checkpoints.external.load(Ordering::Relaxed) {
            if frames >= WARN_FRAMES && !checkpoints.warned.swap(true, Ordering::Relaxed) {
                crate::log_warn!(
                    "the WAL is {frames} pages long: is the program that checkpoints it \
                     (database.autocheckpoint = false) running?"
                );
            } else if frames < WARN_FRAMES / 2 {
                checkpoints.warned.store(false, Ordering::Relaxed);
            }
            return;
        }
        // After a restart the WAL is shorter than what was copied of the previous one.
        let copied = checkpoints.copied.load(Ordering::Relaxed);
        let pending = if frames < copied {
            frames
        } else {
            frames - copied
        };
        if frames >= WRITER_FRAMES {
            // Busy when the thread is checkpointing: then the next commit tries again.
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        } else if pending >= THREAD_FRAMES
            && let Some(thread) = checkpoints.thread.get()
        {
            thread.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;

    fn len(path: &std::path::Path, suffix: &str) -> u64 {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::fs::metadata(name).map_or(0, |m| m.len())
    }

    /// Writes `pages` pages of fresh rows, `per_write` at a time, each write its own commit.
    fn write_pages(store: &Store, pages: usize, per_write: usize) {
        store
            .write(|tx| Ok(tx.execute_batch("CREATE TABLE IF NOT EXISTS filler (b BLOB)")?))
            .unwrap();
        for _ in 0..pages / per_write {
            store
                .write(|tx| {
                    for _ in 0..per_write {
                        tx.execute("INSERT INTO filler VALUES (zeroblob(4000))", [])?;
                    }
                    Ok(())
                })
                .unwrap();
        }
    }

    fn open(autocheckpoint: bool) -> (tempfile::TempDir, Store, Option<Checkpointer>) {
        let dir = tempfile::tempdir().unwrap();
        let config = DatabaseConfig {
            path: dir.path().join("t.db"),
            autocheckpoint,
            ..DatabaseConfig::default()
        };
        let store = Store::open(&config).unwrap();
        let checkpointer = store.start_checkpointer(autocheckpoint).unwrap();
        (dir, store, checkpointer)
    }

    #[test]
    fn the_thread_copies_the_wal_and_the_writer_keeps_it_bounded() {
        let (dir, store, checkpointer) = open(true);
        let path = dir.path().join("t.db");
        // Three times the writer's limit: without restarts the WAL would be ~120 MB.
        write_pages(&store, 3 * WRITER_FRAMES as usize, 50);
        // Woken once 1,000 frames were uncopied; on a loaded machine it may run only now.
        let ran = || store.checkpoints.runs.load(Ordering::Relaxed) > 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !ran() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(ran(), "the thread checkpointed");
        // The writer's checkpoint at the limit gives way while the thread's runs (both are
        // PASSIVE), so on a loaded machine the WAL passes the limit by what is written
        // meanwhile; without restarts it would hold all 30,000 frames (over 120 MB).
        let wal = len(&path, "-wal");
        assert!(
            wal <= 5 * WRITER_FRAMES as u64 / 2 * 4_096,
            "the WAL restarted instead of growing: {wal} bytes"
        );
        assert!(
            len(&path, "") > 50_000_000,
            "the pages reached the database file"
        );
        checkpointer.unwrap().stop();
    }

    #[test]
    fn with_autocheckpoint_off_nothing_here_checkpoints() {
        let (dir, store, checkpointer) = open(false);
        assert!(checkpointer.is_none());
        let path = dir.path().join("t.db");
        let before = len(&path, "");
        write_pages(&store, 3_000, 50);
        assert_eq!(len(&path, ""), before, "the database file is untouched");
        assert!(
            len(&path, "-wal") > 3_000 * 4_096,
            "everything is in the WAL"
        );
    }
}
