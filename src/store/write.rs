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
pub(super) const MAX_BATCH: usize = 64;

/// A request's writes that do not wait for their commits (`Store::deferred_writes`): each returns
/// once its savepoint is released, and the `Commit` they leave (`into_commit`) must be waited for
/// before anything is answered. The blocking thread is free for the next request meanwhile, so a
/// commit's batch can grow past the number of threads. A `read` after a `write` might not see it
/// yet: what a handler answers with, it reads back inside its `write`.
pub struct Writes<'s> {
    store: &'s Store,
    batches: RefCell<Vec<Arc<Batch>>>,
    /// Set by `hold`.
    held: RefCell<Option<Held<'s>>>,
}

/// A write step of its own: a check, or the last write of a held request (`Writes::hold`).
pub type Step<'a> = dyn Fn(&Tx<'_>) -> Result<()> + 'a;

/// A request's writes that must commit together with one more it makes after them (`hold`).
struct Held<'s> {
    /// Runs at the start of each of them, in their transaction.
    check: Box<Step<'s>>,
    /// One of them succeeded, so the batch is held open (`Store::holds`).
    holding: bool,
}

/// What a write does to `Store::holds` before its batch's commit is decided.
#[derive(Clone, Copy, PartialEq)]
enum Hold {
    None,
    /// Takes a hold when the write succeeds.
    Take,
    /// Gives one back; when the write fails, the whole batch is rolled back (as `Abort`).
    Release,
    /// Gives one back and rolls the whole batch back: the held writes must not commit without
    /// the write that was to end them (a request that failed or panicked after them). The
    /// other requests of the batch are not answered yet; they get a 500 and can retry.
    Abort,
}

impl<'s> Writes<'s> {
    pub(super) fn new(store: &'s Store) -> Writes<'s> {
        Writes {
            store,
            batches: RefCell::new(Vec::new()),
            held: RefCell::new(None),
        }
    }

    /// A read in a snapshot of its own, for a request that also writes (an MCP tool call that
    /// reads). It does not see this request's writes that are not committed yet.
    pub fn snapshot<T>(&self, f: impl FnOnce(&super::Snapshot<'_>) -> T) -> Result<T> {
        self.store.snapshot(f)
    }

    /// `Store::write`, leaving the commit to `into_commit`. After `hold`, the write runs the
    /// check first, and the first one that succeeds holds its batch open.
    pub fn write<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let mut held = self.held.borrow_mut();
        let Some(held) = held.as_mut() else {
            return self.store.write_into(f, Some(&self.batches), Hold::None);
        };
        let hold = if held.holding { Hold::None } else { Hold::Take };
        let check = &held.check;
        let value = self.store.write_into(
            |tx| {
                check(tx)?;
                f(tx)
            },
            Some(&self.batches),
            hold,
        )?;
        held.holding = true;
        Ok(value)
    }

    /// From now on the writes through this value commit in one transaction with the one that
    /// `release` makes after them: their batch is held open in between (no batch commits then,
    /// so the writes between should be quick: a request's handler, not a network call). Each
    /// runs `check` first. For a request whose answer is stored with its change
    /// (`Idempotency-Key`): its handler writes, then `release` stores the answer.
    pub fn hold(&self, check: impl Fn(&Tx<'_>) -> Result<()> + 's) {
        let mut held = self.held.borrow_mut();
        assert!(held.is_none(), "one hold at a time");
        *held = Some(Held {
            check: Box::new(check),
            holding: false,
        });
    }

    /// Ends `hold` with the write `f`, in the same transaction as the held writes (when there
    /// were none, in a transaction of its own, after the check). With `f` `None` (the request
    /// failed), the held writes are rolled back, with the rest of their batch (`Hold::Abort`).
    pub fn release(&self, f: Option<&Step<'_>>) -> Result<()> {
        let Some(held) = self.held.borrow_mut().take() else {
            return Ok(());
        };
        let hold = match (held.holding, f.is_some()) {
            (true, true) => Hold::Release,
            (true, false) => Hold::Abort,
            (false, true) => Hold::None,
            (false, false) => return Ok(()),
        };
        self.store.write_into(
            |tx| match f {
                Some(f) if !held.holding => {
                    (held.check)(tx)?;
                    f(tx)
                }
                Some(f) => f(tx),
                None => Ok(()),
            },
            Some(&self.batches),
            hold,
        )
    }

    /// What the answer must wait for.
    pub fn into_commit(self) -> Commit {
        // A request that held its batch and then failed gives the hold back here (its held
        // writes are rolled back).
        let _ = self.release(None);
        Commit {
            batches: std::mem::take(&mut *self.batches.borrow_mut()),
        }
    }
}

impl Drop for Writes<'_> {
    /// A panic between `hold` and `release` must not leave every later batch uncommitted.
    fn drop(&mut self) {
        let _ = self.release(None);
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
        self.write_into(f, None, Hold::None)
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
        hold: Hold,
    ) -> Result<T> {
        // A replica writes nothing, whatever asks; on LiteFS a write would fail as a disk I/O
        // error, which must not be a 500.
        if self.read_only {
            return Err(Error::ReadOnlyReplica);
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut writer = self.lock_writer();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        // A held batch commits once its holders are done. Past `MAX_BATCH` jobs no new holder
        // joins it (it waits for the next batch), so that a stream of held writes, each
        // overlapping the last, cannot keep one batch open for ever.
        while hold == Hold::Take
            && let Some(batch) = writer
                .batch
                .as_ref()
                .filter(|b| b.jobs.load(Ordering::SeqCst) >= MAX_BATCH)
                .map(Arc::clone)
        {
            while batch.outcome.get().is_none() {
                writer = self
                    .committed
                    .wait(writer)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }
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
        match hold {
            Hold::Take if matches!(ran, Ok(Ok(_))) => {
                self.holds.fetch_add(1, Ordering::SeqCst);
            }
            Hold::Release | Hold::Abort => {
                if hold == Hold::Abort || !matches!(ran, Ok(Ok(_))) {
                    batch.broken.store(true, Ordering::SeqCst);
                }
                self.holds.fetch_sub(1, Ordering::SeqCst);
            }
            _ => {}
        }
        let held = self.holds.load(Ordering::SeqCst) > 0;
        if held || (self.waiting.load(Ordering::SeqCst) > 0 && jobs < MAX_BATCH) {
            // Someone is queued behind us and will continue the batch, or a request holds it
            // open for a write it has yet to make; the last one commits. A failed job has
            // nothing left to commit. A successful one waits for the commit here,
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
                self.commits.observe(jobs as u64);
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

    /// Whether this is a read replica's store (`database.read_only`, or a file it cannot write).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Writes per committed batch (and so the number of commits), for the metrics.
    pub fn commit_stats(&self) -> &crate::metrics::Histogram {
        &self.commits
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
