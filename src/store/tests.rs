//! The store's own tests: snapshots, kept readers, group commit, schema and migrations.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use rusqlite::Connection;

use super::snapshot::KEPT;
use super::write::MAX_BATCH;
use super::*;
use crate::config::DatabaseConfig;

fn add_user(store: &Store, email: &str) {
    store
        .write(|tx| users::create_user(tx, email, "U", users::Plan::Pro))
        .unwrap();
}

fn users_seen(store: &Store) -> i64 {
    store.read(users::count_users).unwrap()
}

fn users_in(snapshot: &Snapshot<'_>) -> i64 {
    snapshot.read(users::count_users).unwrap()
}

#[test]
fn reads_in_a_snapshot_see_one_state_and_later_reads_see_new_writes() {
    let (_dir, store) = open_temp();
    let (_other_dir, other) = open_temp();
    add_user(&store, "a@example.com");
    store
        .snapshot(|snapshot| {
            assert_eq!(users_in(snapshot), 1);
            add_user(&store, "b@example.com");
            assert_eq!(users_in(snapshot), 1, "the snapshot keeps its state");
            assert_eq!(users_seen(&store), 2, "a read outside it sees the write");
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
        .snapshot(|snapshot| {
            assert_eq!(snapshot.auth_epoch(), 1);
            bump();
            assert_eq!(
                snapshot.auth_epoch(),
                1,
                "the epoch the snapshot began with"
            );
            assert_eq!(
                snapshot.read(tokens::auth_epoch).unwrap(),
                1,
                "and its state's"
            );
        })
        .unwrap();
    assert_eq!(store.snapshot(|s| s.auth_epoch()).unwrap(), 2);
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
                .snapshot(|snapshot| {
                    assert_eq!(users_in(snapshot), 0);
                    snapshot.read(|conn| Ok(conn.execute_batch("PRAGMA cache_size = -4321")?))
                })
                .unwrap()
                .unwrap();
            let kept = KEPT.with_borrow(|kept| kept.as_ref().map(|(id, _)| *id));
            assert_eq!(kept, Some(store.id), "kept after the snapshot");
            let idle = |conn: &Reader| conn.is_autocommit() && !conn.is_busy();
            assert!(KEPT.with_borrow(|kept| idle(&kept.as_ref().unwrap().1)));
            add_user(&store, "a@example.com");
            store
                .snapshot(|snapshot| {
                    assert_eq!(users_in(snapshot), 1, "a kept reader sees new writes");
                    assert_eq!(snapshot.read(cache_size).unwrap(), -4321, "the same reader");
                })
                .unwrap();
            // A snapshot of another store swaps the kept reader for one of its own.
            other.snapshot(users_in).unwrap();
            let kept = KEPT.with_borrow(|kept| kept.as_ref().map(|(id, _)| *id));
            assert_eq!(kept, Some(other.id));
        })
        .join()
        .unwrap();
    });
    // Threads that did not ask keep nothing.
    store.snapshot(users_in).unwrap();
    assert!(KEPT.with_borrow(Option::is_none));
}

#[test]
fn a_panic_in_a_snapshot_ends_it() {
    let (_dir, store) = open_temp();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        store.snapshot(|snapshot| {
            users_in(snapshot);
            panic!("handler bug")
        })
    }));
    assert!(caught.is_err());
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

/// A database made at schema `version` (the schema up to its next section), with `rows` run on
/// it, then opened by this binary: migrated.
fn opened_at_version(version: i64, rows: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("v{version}.db"));
    {
        let conn = Connection::open(&path).unwrap();
        let old = SCHEMA
            .split(&format!("-- Version {}:", version + 1))
            .next()
            .unwrap();
        conn.execute_batch(old).unwrap();
        conn.execute_batch(rows).unwrap();
        conn.pragma_update(None, "user_version", version).unwrap();
    }
    let config = DatabaseConfig {
        path,
        ..DatabaseConfig::default()
    };
    let store = Store::open(&config).unwrap();
    (dir, store)
}

/// Events a version-4 server recorded but had not fanned out are fanned out by the upgrade: each
/// to the webhooks it named that still exist, and one no webhook is left for is dropped.
#[test]
fn events_a_version_4_outbox_held_are_kept_by_the_upgrade() {
    let (_dir, store) = opened_at_version(
        4,
        "INSERT INTO spaces (id, name, slug, created_at, updated_at) VALUES ('s', 'S', 's', 't', 't'); \
         INSERT INTO webhooks (id, space_id, url, events, active, secret, created_at, updated_at) \
         VALUES ('w1', 's', 'https://a.example/', '*', 1, 'whsec_x', 't', 't'), \
                ('w2', 's', 'https://b.example/', '*', 1, 'whsec_x', 't', 't'); \
         INSERT INTO webhook_payloads (seq, id, type, created_at, webhooks, remaining, body) \
         VALUES (1, 'e1', 'task.created', 't', 'w1,w2', 2, '{}'), \
                (2, 'e2', 'task.created', 't', 'gone', 1, '{}'), \
                (3, 'e3', 'task.created', 't', NULL, 1, '{}'); \
         INSERT INTO webhook_events (webhook_id, next_attempt_at, payload) VALUES ('w1', 5, 3);",
    );
    let rows = |sql: &str| -> Vec<(String, i64)> {
        store
            .read(|conn| {
                let mut statement = conn.prepare(sql)?;
                let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap()
    };
    assert_eq!(
        rows("SELECT id, remaining FROM webhook_payloads ORDER BY seq"),
        [("e1".to_string(), 2), ("e3".to_string(), 1)]
    );
    assert_eq!(
        rows("SELECT webhook_id, payload FROM webhook_events ORDER BY payload, webhook_id"),
        [
            ("w1".to_string(), 1),
            ("w2".to_string(), 1),
            ("w1".to_string(), 3)
        ]
    );
    // Delivering the last of an event's rows still takes its payload with it.
    store
        .write(|tx| Ok(tx.execute("DELETE FROM webhook_events WHERE payload = 1", [])?))
        .unwrap();
    assert_eq!(
        rows("SELECT id, remaining FROM webhook_payloads ORDER BY seq"),
        [("e3".to_string(), 1)]
    );
}

/// An outbox row a version-7 server wrote (plain, before rows were compressed) is fanned out
/// after the upgrade like any other.
#[test]
fn events_a_version_7_outbox_held_are_fanned_out_after_the_upgrade() {
    // The events' encoding (store::webhooks::PendingEvents): each field a u32 length and its bytes.
    let fields: [&str; 5] = [
        "e1",
        "task.deleted",
        "t",
        "w1",
        r#"{"type":"task.deleted"}"#,
    ];
    let mut events = String::new();
    for field in fields {
        for byte in (field.len() as u32)
            .to_le_bytes()
            .iter()
            .chain(field.as_bytes())
        {
            events.push_str(&format!("{byte:02x}"));
        }
    }
    let (_dir, store) = opened_at_version(
        7,
        &format!(
            "INSERT INTO spaces (id, name, slug, created_at, updated_at) VALUES ('s', 'S', 's', 't', 't'); \
             INSERT INTO webhooks (id, space_id, url, events, active, secret, created_at, updated_at) \
             VALUES ('w1', 's', 'https://a.example/', '*', 1, 'whsec_x', 't', 't'); \
             INSERT INTO webhook_outbox (count, events) VALUES (1, x'{events}');"
        ),
    );
    assert_eq!(
        store.write(|tx| webhooks::fan_out(tx, 10, 1000)).unwrap(),
        1
    );
    let payload: (String, String) = store
        .read(|conn| {
            Ok(conn.query_row(
                "SELECT p.id, p.body FROM webhook_payloads AS p \
                 JOIN webhook_events AS e ON e.payload = p.seq WHERE e.webhook_id = 'w1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    assert_eq!(payload, ("e1".into(), r#"{"type":"task.deleted"}"#.into()));
}

/// A version-1 database (before sessions) is migrated to the same schema a new one gets.
#[test]
fn old_databases_are_migrated_to_the_current_schema() {
    let (_dir, migrated) = opened_at_version(1, "");
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

/// Deferred writes (the server's `Writes`): once `Commit::wait` returns, the write is committed, which a
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
                    let writes = store.deferred_writes();
                    writes
                        .write(|tx| Ok(tx.execute("INSERT INTO t VALUES (?1)", [n])?))
                        .unwrap();
                    let commit = writes.into_commit();
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

#[test]
fn held_writes_commit_only_with_the_write_that_releases_them() {
    let (_dir, store) = open_temp();
    let create = |writes: &Writes<'_>, email: &str| {
        writes
            .write(|tx| users::create_user(tx, email, "U", users::Plan::Pro).map(drop))
            .unwrap()
    };
    let held = store.deferred_writes();
    held.hold(|_| Ok(()));
    create(&held, "a@example.com");
    // A write meanwhile joins the held batch and does not commit it.
    let other = store.deferred_writes();
    create(&other, "b@example.com");
    assert_eq!(
        users_seen(&store),
        0,
        "nothing is committed while a request holds its batch"
    );
    held.release(Some(&|tx| {
        users::create_user(tx, "c@example.com", "U", users::Plan::Pro).map(drop)
    }))
    .unwrap();
    assert_eq!(
        users_seen(&store),
        3,
        "the releasing write commits them all"
    );
    drop((held.into_commit(), other.into_commit()));

    // A check that fails stops the write and holds nothing.
    let refused = store.deferred_writes();
    refused.hold(|_| Err(Error::IdempotencyKeyInFlight));
    let result = refused.write(|tx| users::create_user(tx, "d@example.com", "U", users::Plan::Pro));
    assert!(matches!(result, Err(Error::IdempotencyKeyInFlight)));
    drop(refused.into_commit());
    add_user(&store, "e@example.com");
    assert_eq!(users_seen(&store), 4);

    // A request that fails after its held write (or panics) gives the hold back when its
    // writes end, and its change is rolled back with its batch: it must not commit without
    // the write that was to end it. Later writes commit again.
    let failed = store.deferred_writes();
    failed.hold(|_| Ok(()));
    create(&failed, "f@example.com");
    let bystander = store.deferred_writes();
    create(&bystander, "g@example.com");
    drop(failed);
    let commit = bystander.into_commit();
    let rolled_back = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(commit.wait());
    assert!(
        rolled_back.is_err(),
        "the batch's other request learns it failed"
    );
    add_user(&store, "h@example.com");
    assert_eq!(users_seen(&store), 5);
    let emails: Vec<String> = store
        .read(|c| {
            let mut statement = c.prepare("SELECT email FROM users ORDER BY email")?;
            let rows = statement.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .unwrap();
    assert!(
        !emails
            .iter()
            .any(|e| e == "f@example.com" || e == "g@example.com"),
        "{emails:?}"
    );

    // A failed release (the answer could not be written) rolls the change back too.
    let unsaved = store.deferred_writes();
    unsaved.hold(|_| Ok(()));
    create(&unsaved, "i@example.com");
    assert!(
        unsaved
            .release(Some(&|_| Err(Error::internal("disk full"))))
            .is_err()
    );
    drop(unsaved.into_commit());
    add_user(&store, "j@example.com");
    assert_eq!(users_seen(&store), 6, "i@ is not there, j@ is");
}

#[test]
fn a_full_held_batch_takes_no_new_holder_until_it_commits() {
    let (_dir, store) = open_temp();
    let first = store.deferred_writes();
    first.hold(|_| Ok(()));
    first
        .write(|tx| users::create_user(tx, "a@example.com", "U", users::Plan::Pro).map(drop))
        .unwrap();
    let joined: Vec<_> = (0..MAX_BATCH)
        .map(|n| {
            let writes = store.deferred_writes();
            writes
                .write(|tx| {
                    users::create_user(tx, &format!("{n}@example.com"), "U", users::Plan::Pro)
                        .map(drop)
                })
                .unwrap();
            writes.into_commit()
        })
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let second = store.deferred_writes();
            second.hold(|_| Ok(()));
            second
                .write(|tx| {
                    users::create_user(tx, "b@example.com", "U", users::Plan::Pro).map(drop)
                })
                .unwrap();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            second.release(Some(&|_| Ok(()))).unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            !done.load(std::sync::atomic::Ordering::SeqCst),
            "a new holder waits while the full batch is held"
        );
        first.release(Some(&|_| Ok(()))).unwrap();
    });
    assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(users_seen(&store), MAX_BATCH as i64 + 2);
    drop(joined);
}
