//! Writes and group commit: writes that queue up behind each other share one `BEGIN IMMEDIATE`
//! transaction and one fsync, each in its own savepoint (see `Store::write`); and `Writes`, the
//! value through which a server request's writes leave their commits for the answer to wait for.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, OnceLock};

use rusqlite::Connection;

use super::webhooks::PendingEvents;
use super::{Result, Store, Tx};
use crate::error::Error;

/// At most this many writes share one commit, so that a long queue still commits regularly.
const MAX_BATCH: usize = 64;

/// A request's writes that do not wait for their commits (`Store::deferred_writes`): each returns
/// once its savepoint is released, and the `Commit` they leave (`into_commit`) must be waited for
/// before anything is answered. The blocking thread is free for the next request meanwhile, so a
/// commit's batch can grow past the number of threads. A `read` after a `write` might not see it
/// yet: what a handler answers with, it reads back inside its `write`.
pub struct Writes<'s> {
    target: Target<'s>,
}

enum Target<'s> {
    /// Each write is a job of the group commit (its own savepoint in a shared transaction).
    Store {
        store: &'s Store,
        batches: RefCell<Vec<Arc<Batch>>>,
    },
    /// Each write is a savepoint inside one job already running (`Writes::as_one`).
    Inside(&'s Tx<'s>),
}

impl<'s> Writes<'s> {
    pub(super) fn new(store: &'s Store) -> Writes<'s> {
        Writes {
            target: Target::Store {
                store,
                batches: RefCell::new(Vec::new()),
            },
        }
    }

    /// `Store::write`, leaving the commit to `into_commit`.
    pub fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        match &self.target {
            Target::Store { store, batches } => store.write_into(f, Some(batches)),
            Target::Inside(tx) => tx.nested(f),
        }
    }

    /// Runs `f` as one write: everything it writes through the `Writes` it is given, and what
    /// it writes through the `Tx`, commits together or not at all. For a request whose answer
    /// is stored with its change (`Idempotency-Key`).
    pub fn as_one<T>(&self, f: impl FnOnce(&Tx<'_>, &Writes<'_>) -> Result<T>) -> Result<T> {
        self.write(|tx| {
            f(
                tx,
                &Writes {
                    target: Target::Inside(tx),
                },
            )
        })
    }

    /// What the answer must wait for.
    pub fn into_commit(self) -> Commit {
        let batches = match self.target {
            Target::Store { batches, .. } => batches.into_inner(),
            // The job it runs in belongs to the `Writes` that started it.
            Target::Inside(_) => Vec::new(),
        };
        Commit { batches }
    }
}

impl Tx<'_> {
    /// `f` in a savepoint of its own inside this write: an `Err` undoes what it did (its
    /// webhook events included) and leaves the rest of the write alone, as a job's would. A
    /// panic unwinds to the job, which undoes everything.
    fn nested<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        run(self.conn, "SAVEPOINT step")?;
        let events_before = self.events().mark();
        let result = f(self);
        if result.is_err() {
            self.events().truncate(events_before);
            run(self.conn, "ROLLBACK TO step")?;
        }
        run(self.conn, "RELEASE step")?;
        result
    }
}

/// The commits that deferred writes wait for (`Writes::into_commit`).
#[must_use = "a deferred write is durable only once its commit is waited for"]
pub struct Commit {
    pub(super) batches: Vec<Arc<Batch>>,
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

pub(super) struct Writer {
    conn: Connection,
    /// The open transaction's batch, if one is open.
    batch: Option<Arc<Batch>>,
    /// The webhook events its writes recorded, written to the outbox as it commits.
    events: RefCell<PendingEvents>,
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Writer {
        Writer {
            conn,
            batch: None,
            events: RefCell::default(),
        }
    }

    /// The writer connection itself, for work outside the group commit (a checkpoint).
    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }
}

#[derive(Default)]
pub(super) struct Batch {
    jobs: AtomicUsize,
    /// Set once, by whoever commits (or rolls back) the batch: `Err` holds the reason.
    outcome: OnceLock<std::result::Result<(), String>>,
    /// Wakes the `Commit::wait`s of deferred jobs once `outcome` is set.
    done: tokio::sync::Notify,
    /// A savepoint statement failed: the transaction's state is unknown, so roll it all back.
    broken: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Runs `f` as one write: its changes are committed when it returns `Ok` (and this returns
    /// only after the commit), and rolled back when it returns `Err` or panics, so a failed request
    /// leaves the database as it was.
    ///
    /// Writes that arrive while another runs join its transaction, each in a savepoint; the last
    /// one in (when nobody else is waiting, or after `MAX_BATCH`) commits for all of them.
    pub fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.write_into(f, None)
    }

    /// Writes that leave their commits to be waited for later (see `Writes`).
    pub fn deferred_writes(&self) -> Writes<'_> {
        Writes::new(self)
    }

    /// `write`; with `deferred`, a successful write that does not commit the batch itself
    /// records the batch there instead of waiting for its commit.
    fn write_into<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<T>,
        deferred: Option<&RefCell<Vec<Arc<Batch>>>>,
    ) -> Result<T> {
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
                let events_before = writer.events.borrow().mark();
                let ran = catch_unwind(AssertUnwindSafe(|| {
                    f(&Tx {
                        conn: &writer.conn,
                        events: &writer.events,
                        outbox: &self.outbox,
                    })
                }));
                let end = if matches!(ran, Ok(Ok(_))) {
                    run(&writer.conn, "RELEASE job").and_then(|()| {
                        // Outside the savepoint now: a full buffer goes out as a row of its own,
                        // which no later write can roll back.
                        let mut events = writer.events.borrow_mut();
                        if events.is_full() {
                            events.flush(&writer.conn)?;
                        }
                        Ok(())
                    })
                } else {
                    writer.events.borrow_mut().truncate(events_before);
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
            // or, when its caller defers (`Writes`), before its request is answered.
            if let (Ok(Ok(_)), Some(deferred)) = (&ran, deferred) {
                deferred.borrow_mut().push(Arc::clone(&batch));
            } else if matches!(ran, Ok(Ok(_))) {
                while batch.outcome.get().is_none() {
                    writer = self
                        .committed
                        .wait(writer)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            }
        } else {
            let mut events = writer.events.borrow_mut();
            let had_events = events.any();
            let outcome = if batch.broken.load(Ordering::SeqCst) {
                Err("a savepoint failed; the batch was rolled back".to_string())
            } else {
                // The outbox row goes in outside every savepoint: no job can roll it back.
                events
                    .flush(&writer.conn)
                    .and_then(|()| run(&writer.conn, "COMMIT"))
                    .map_err(|e| e.to_string())
            };
            events.end_batch(&self.outbox);
            drop(events);
            if outcome.is_err() {
                let _ = run(&writer.conn, "ROLLBACK");
            } else {
                self.after_commit(&writer.conn);
            }
            writer.batch = None;
            if outcome.is_ok() && had_events {
                self.outbox_written.store(true, Ordering::SeqCst);
                self.events_committed.notify_one();
            }
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

    pub(super) fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        // A panic in a write is caught inside `write`; a poisoned lock still guards a sound state.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs a transaction-control statement from the statement cache: these run several times per
/// write, and `execute_batch` would parse them every time.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}
