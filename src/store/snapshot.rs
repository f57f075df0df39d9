//! Read snapshots: every read of a read-only request in one read transaction on one pooled
//! connection (see `Store::snapshot`), and the read lane's kept readers.

use std::cell::{Cell, RefCell};

use rusqlite::Connection;

use super::{Reader, Result, Store, tokens};
use crate::error::Error;

/// A read snapshot: one read transaction on one connection, for every read of a request
/// (`Store::snapshot`). A handler that takes one reads and cannot write.
pub struct Snapshot<'s> {
    conn: &'s Connection,
    auth_epoch: i64,
}

impl Snapshot<'_> {
    /// Runs `f` on the snapshot's connection: it sees the state the snapshot began with.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(self.conn)
    }

    /// `tokens::auth_epoch` as the snapshot began (read by the statement that holds it open).
    pub fn auth_epoch(&self) -> i64 {
        self.auth_epoch
    }
}

thread_local! {
    /// Whether this thread keeps its reader between snapshots (`keep_readers_on_this_thread`),
    /// and the one it keeps: a cache of a connection, not a mode. A snapshot reads the same with
    /// or without it (its transaction ends when it does). It is per thread because the read lane
    /// is tokio's blocking pool, whose threads run our closures but not a loop of ours that could
    /// hold the connection as a value.
    static KEEP_READER: Cell<bool> = const { Cell::new(false) };
    pub(super) static KEPT: RefCell<Option<(usize, Reader)>> = const { RefCell::new(None) };
}

/// Makes this thread's snapshots reuse one pooled reader instead of checking one out of the pool
/// and back for each (the pool's lock and its clock reads), until the thread ends. For the
/// server's read lane only: its threads are few (the server gives its pool a connection for every
/// thread of both lanes), so the pool keeps enough for everyone else.
pub fn keep_readers_on_this_thread() {
    KEEP_READER.set(true);
}

impl Store {
    /// Runs `f` on a pooled read-only connection (outside any snapshot).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&*self.readers.get()?)
    }

    /// Runs `f` with a `Snapshot`: one pool checkout and one WAL read lock for the whole of `f`,
    /// and one consistent view.
    pub fn snapshot<T>(&self, f: impl FnOnce(&Snapshot<'_>) -> T) -> Result<T> {
        let conn = match KEPT.take() {
            Some((store, conn)) if store == self.id => conn,
            _ => self.readers.get()?,
        };
        /// Keeps the connection for the thread's next snapshot (or returns it to the pool), after
        /// a panic too. By then the statement holding the transaction open has been reset.
        struct End(usize, Option<Reader>);
        impl Drop for End {
            fn drop(&mut self) {
                if let Some(conn) = self.1.take()
                    && KEEP_READER.get()
                {
                    KEPT.set(Some((self.0, conn)));
                }
            }
        }
        let end = End(self.id, Some(conn));
        let conn: &Connection = end.1.as_ref().expect("set above");
        // SQLite keeps a connection's implicit read transaction open while any statement on it is
        // unfinished, and ends it when the last one is reset. So the epoch's row is read and its
        // statement left unfinished while `f` runs: `f`'s reads join that transaction, and
        // dropping `rows` ends it: no BEGIN and ROLLBACK statements.
        let mut statement = conn.prepare_cached(tokens::AUTH_EPOCH)?;
        let mut rows = statement.query([])?;
        let row = rows
            .next()?
            .ok_or_else(|| Error::internal("the auth_epoch row is missing"))?;
        let snapshot = Snapshot {
            conn,
            auth_epoch: row.get(0)?,
        };
        let result = f(&snapshot);
        drop(rows);
        drop(statement);
        Ok(result)
    }
}
