//! Read snapshots: every `read` of a read-only request in one read transaction on one pooled
//! connection (see `Store::snapshot`), and the read lane's kept readers.

use std::cell::{Cell, RefCell};

use rusqlite::Connection;

use super::{Reader, Result, Store, tokens};
use crate::error::Error;

/// A read snapshot open on a thread (see `Store::snapshot`).
pub(super) struct Snapshot {
    store: usize,
    conn: Reader,
    /// What the statement that holds the snapshot open read.
    auth_epoch: Cell<i64>,
}

thread_local! {
    /// The read snapshot open on this thread.
    pub(super) static SNAPSHOT: RefCell<Option<Snapshot>> = const { RefCell::new(None) };
    /// Whether this thread keeps its reader between snapshots (`keep_readers_on_this_thread`),
    /// and the one it keeps.
    static KEEP_READER: Cell<bool> = const { Cell::new(false) };
    pub(super) static KEPT: RefCell<Option<(usize, Reader)>> = const { RefCell::new(None) };
}

/// Makes this thread's snapshots reuse one pooled reader instead of checking one out of the pool
/// and back for each (the pool's lock and its clock reads),
/// until the thread ends. For the server's read lane only: its threads are few
/// (the server gives its pool a connection for every thread of both lanes), so the pool keeps enough for
/// everyone else.
pub fn keep_readers_on_this_thread() {
    KEEP_READER.set(true);
}

impl Store {
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
}
