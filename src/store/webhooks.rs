//! Webhooks, their outbox of events and the record of delivery attempts (docs/webhooks.md).
//!
//! The outbox is what makes delivery exactly-what-committed: `Outbox::emit` records each event,
//! naming its subscribers, in the transaction of the change (`PendingEvents`, written as one
//! outbox row when the change's batch commits), so the event exists if and only if the change
//! committed, and the change pays no more than formatting it. The dispatcher (`crate::webhooks`)
//! fans the outbox out to the webhooks (`fan_out`), reads due rows, sends them, and records each
//! attempt here; a row is deleted once its event is delivered or has failed for good
//! (schema.sql), so the outbox holds only what is still to send.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::{Result, Tx, new_id};
use crate::json::{Patch, push_opt_str, push_str};
use crate::text_enum;

text_enum!(
    /// What happened; `webhooks.events` subscribes to these or to `*`.
    EventType {
        TaskCreated = "task.created",
        TaskUpdated = "task.updated",
        TaskDeleted = "task.deleted",
        TaskCompleted = "task.completed",
        TaskAssigneeAdded = "task.assignee_added",
        TaskAssigneeRemoved = "task.assignee_removed",
        TaskLabelAdded = "task.label_added",
        TaskLabelRemoved = "task.label_removed",
        ProjectCreated = "project.created",
        ProjectUpdated = "project.updated",
        WebhookTest = "webhook.test",
    }
);

text_enum!(
    /// An event's state, and an attempt's outcome: `pending` means another attempt is due.
    DeliveryStatus {
        Pending = "pending",
        Delivered = "delivered",
        Failed = "failed",
    }
);

/// Subscribes to every event type.
pub const ALL_EVENTS: &str = "*";

/// A space holds at most this many webhooks: each one multiplies every write's outbox rows.
pub const MAX_PER_SPACE: i64 = 20;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub space_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub struct NewWebhook {
    pub space_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub active: bool,
}

#[derive(Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Patch<String>,
    pub active: Option<bool>,
}

const COLUMNS: &str =
    "id, space_id, url, events, description, active, disabled_reason, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    let events: String = row.get(3)?;
    Ok(Webhook {
        id: row.get(0)?,
        space_id: row.get(1)?,
        url: row.get(2)?,
        events: events.split(',').map(str::to_string).collect(),
        description: row.get(4)?,
        active: row.get(5)?,
        disabled_reason: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

/// A page of the space's webhooks in id (creation) order.
pub fn list_webhooks(
    conn: &Connection,
    space_id: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Webhook>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE space_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
    ))?;
    let rows = statement.query_map(
        params![space_id, after.unwrap_or(""), limit as i64],
        from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn find_webhook(conn: &Connection, id: &str) -> Result<Option<Webhook>> {
    let webhook = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM webhooks WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?;
    Ok(webhook)
}

pub fn count_in_space(conn: &Connection, space_id: &str) -> Result<i64> {
    let count = conn
        .prepare_cached("SELECT count(*) FROM webhooks WHERE space_id = ?1")?
        .query_row([space_id], |row| row.get(0))?;
    Ok(count)
}

pub fn create_webhook(tx: &Tx<'_>, new: &NewWebhook, secret: &str) -> Result<Webhook> {
    webhooks_changed(tx);
    let id = new_id();
    let now = crate::time::now();
    tx.prepare_cached(
        "INSERT INTO webhooks (id, space_id, url, events, description, active, secret, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        id,
        new.space_id,
        new.url,
        new.events.join(","),
        new.description,
        new.active,
        secret,
        now
    ])?;
    Ok(find_webhook(tx, &id)?.expect("the webhook was just inserted"))
}

/// Applies `changes`; `active: true` clears `disabled_reason`. `updated_at` moves only when
/// something changed.
pub fn update_webhook(tx: &Tx<'_>, id: &str, changes: &WebhookChanges) -> Result<Webhook> {
    webhooks_changed(tx);
    let events = changes.events.as_ref().map(|events| events.join(","));
    let (set_description, description) = match &changes.description {
        None => (false, None),
        Some(value) => (true, value.as_deref()),
    };
    tx.prepare_cached(
        "UPDATE webhooks SET url = coalesce(?2, url), events = coalesce(?3, events), \
         description = CASE WHEN ?4 THEN ?5 ELSE description END, \
         active = coalesce(?6, active), \
         disabled_reason = CASE WHEN ?6 = 1 THEN NULL ELSE disabled_reason END, \
         updated_at = ?7 WHERE id = ?1 AND (url IS NOT coalesce(?2, url) \
           OR events IS NOT coalesce(?3, events) \
           OR description IS NOT CASE WHEN ?4 THEN ?5 ELSE description END \
           OR active IS NOT coalesce(?6, active) \
           OR (?6 = 1 AND disabled_reason IS NOT NULL))",
    )?
    .execute(params![
        id,
        changes.url,
        events,
        set_description,
        description,
        changes.active,
        crate::time::now()
    ])?;
    Ok(find_webhook(tx, id)?.expect("the caller found the webhook"))
}

/// Deletes the webhook; its events and attempts go with it (foreign keys), so nothing more is
/// sent for it.
pub fn delete_webhook(tx: &Tx<'_>, id: &str) -> Result<()> {
    webhooks_changed(tx);
    tx.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Replaces the secret; the old one keeps signing until `old_until`.
pub fn rotate_secret(tx: &Tx<'_>, id: &str, secret: &str, old_until: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE webhooks SET old_secret = secret, old_secret_until = ?3, secret = ?2, \
         updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, secret, old_until, crate::time::now()])?;
    Ok(())
}

/// Who made a change: `data.actor` of its events.
pub struct Actor<'a> {
    pub user_id: &'a str,
    /// `None` for the web page and the CLI.
    pub token_id: Option<&'a str>,
}

/// Every space's active webhooks: `(webhook id, its events joined by commas)` by space id (a
/// B-tree: a lookup compares a few ids, where a hash map would hash one with SipHash).
pub type Subscribers = std::sync::Arc<BTreeMap<String, Vec<(String, String)>>>;

/// The active webhooks of every space, from the store's cache, read from the table when a change
/// to it dropped the cache. Writes are serialized, so a write after a change to the webhooks
/// always sees it; a batch that had a change ends by dropping the cache again (`PendingEvents`),
/// committed or rolled back, so no write reads a cache of a change that did not happen.
fn subscribers(tx: &Tx<'_>) -> Result<Subscribers> {
    let mut cached = tx
        .outbox()
        .subscribers
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(subscribers) = &*cached {
        return Ok(std::sync::Arc::clone(subscribers));
    }
    let mut by_space: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut statement =
        tx.prepare_cached("SELECT space_id, id, events FROM webhooks WHERE active")?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    for row in rows {
        let (space, id, events): (String, String, String) = row?;
        by_space.entry(space).or_default().push((id, events));
    }
    let subscribers = std::sync::Arc::new(by_space);
    *cached = Some(std::sync::Arc::clone(&subscribers));
    Ok(subscribers)
}

/// Drops the cached subscribers: every change to the webhooks table calls this. The dispatcher
/// hears of it when the batch ends (`PendingEvents::end_batch`), not before: until the commit it
/// still reads the webhooks as they were.
fn webhooks_changed(tx: &Tx<'_>) {
    *tx.outbox()
        .subscribers
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = None;
    tx.events().webhooks_changed = true;
}

/// The webhooks of one space that hear about a write, found once per write. With none (the
/// common case) `wants` is false and the handler builds no payload.
pub struct Outbox<'a> {
    subscribers: Subscribers,
    space_id: &'a str,
    actor: Actor<'a>,
}

impl<'a> Outbox<'a> {
    /// Nothing is formatted here: a write with no webhook to tell pays a cache lookup.
    pub fn open(tx: &Tx<'_>, space_id: &'a str, actor: Actor<'a>) -> Result<Outbox<'a>> {
        Ok(Outbox {
            subscribers: subscribers(tx)?,
            space_id,
            actor,
        })
    }

    /// `(webhook id, its events)` of the space's active webhooks.
    fn of_space(&self) -> &[(String, String)] {
        self.subscribers
            .get(self.space_id)
            .map_or(&[], Vec::as_slice)
    }

    /// True when some webhook subscribes to `event`.
    pub fn wants(&self, event: EventType) -> bool {
        self.of_space()
            .iter()
            .any(|(_, events)| subscribes(events, event))
    }

    /// Records `event` for every webhook that subscribes to it. `data` is the JSON object the API
    /// returns for the resource; `actor` is added to it.
    pub fn emit(&self, tx: &Tx<'_>, event: EventType, data: &[u8]) -> Result<()> {
        self.emit_with(tx, event, |out| out.extend_from_slice(data))
    }

    /// `emit` with the data object written by `write` straight into the request body.
    pub fn emit_with(
        &self,
        tx: &Tx<'_>,
        event: EventType,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        if !self.wants(event) {
            return Ok(());
        }
        let subscribers: Vec<&str> = self
            .of_space()
            .iter()
            .filter(|(_, events)| subscribes(events, event))
            .map(|(webhook_id, _)| webhook_id.as_str())
            .collect();
        let timestamp = crate::time::now();
        let body = envelope(event, &timestamp, &self.actor, write);
        record_event(tx, event, &timestamp, &subscribers, &body);
        Ok(())
    }

    /// `emit` for a value serde writes (a project).
    pub fn emit_value<T: Serialize>(&self, tx: &Tx<'_>, event: EventType, data: &T) -> Result<()> {
        if !self.wants(event) {
            return Ok(());
        }
        let data = serde_json::to_vec(data).expect("API values serialize");
        self.emit(tx, event, &data)
    }
}

/// Records a `webhook.test` event for one webhook, whatever it subscribes to; returns its id.
pub fn emit_test(tx: &Tx<'_>, webhook_id: &str, actor: &Actor<'_>) -> String {
    let timestamp = crate::time::now();
    let event = EventType::WebhookTest;
    let body = envelope(event, &timestamp, actor, |data| {
        data.extend_from_slice(b"{\"webhookId\":");
        push_str(data, webhook_id);
        data.extend_from_slice(
            b",\"message\":\"A test event from ktasks: your endpoint receives and can verify \
              events.\"}",
        );
    });
    record_event(tx, event, &timestamp, &[webhook_id], &body)
}

fn subscribes(events: &str, event: EventType) -> bool {
    events
        .split(',')
        .any(|subscribed| subscribed == ALL_EVENTS || subscribed == event.as_str())
}

/// `{"type", "timestamp", "data"}`, `data` being the JSON object `write` writes, with `actor`
/// added to it: one buffer, no copy.
fn envelope(
    event: EventType,
    timestamp: &str,
    actor: &Actor<'_>,
    write: impl FnOnce(&mut Vec<u8>),
) -> String {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(event.as_str().as_bytes());
    out.extend_from_slice(b"\",\"timestamp\":\"");
    out.extend_from_slice(timestamp.as_bytes());
    out.extend_from_slice(b"\",\"data\":");
    let start = out.len();
    write(&mut out);
    while out.last().is_some_and(u8::is_ascii_whitespace) {
        out.pop();
    }
    assert!(
        out.get(start) == Some(&b'{') && out.last() == Some(&b'}') && out.len() > start + 1,
        "event data must be a JSON object"
    );
    out.pop();
    if !out[start + 1..].trim_ascii().is_empty() {
        out.push(b',');
    }
    out.extend_from_slice(b"\"actor\":{\"userId\":");
    push_str(&mut out, actor.user_id);
    out.extend_from_slice(b",\"tokenId\":");
    push_opt_str(&mut out, actor.token_id);
    out.extend_from_slice(b"}}}");
    String::from_utf8(out).expect("JSON pieces are UTF-8")
}

/// The events recorded by the writes of the open batch, encoded back to back: for each, its id,
/// type, creation time, subscribed webhooks (comma-joined) and body, each a little-endian `u32`
/// length and its bytes. A write that rolls back cuts them to where it began (`len`, `truncate`);
/// the batch's commit writes them as one `webhook_outbox` row (`flush`), so a write pays a
/// `Vec` append per event instead of an insert, and the commit one insert for all of them.
///
/// A row of a page or more is LZ4-compressed. What a webhook cost a write was the bytes its commit
/// wrote (WAL frames, their fsync, the checkpoint's copy): with a 64-byte stand-in for the row,
/// POST with a webhook on `*` ran at 99% of the rate without, against 88% with the row as it was.
/// The events of a batch repeat their keys, ids and timestamps: the bench's shrink from 751 bytes
/// to 70.
#[derive(Default)]
pub struct PendingEvents {
    bytes: Vec<u8>,
    count: usize,
    /// The compressor's hash table and output, kept from one flush to the next.
    table: lz4_flex::block::CompressTable,
    compressed: Vec<u8>,
    /// A row was written for the batch already (the buffer was full).
    flushed: bool,
    /// A write of the batch changed the webhooks table (rolled back or not): when the batch ends,
    /// the subscriber cache is dropped again and the dispatcher told (`OutboxState::generation`).
    pub(crate) webhooks_changed: bool,
}

impl PendingEvents {
    /// An outbox row holds about this much at most (uncompressed): past it, the events of the
    /// writes so far are written at once (a write's own events always go in one row).
    const ROW_BYTES: usize = 1 << 20;
    /// Rows shorter than a page are written as they are: the WAL writes whole pages, so
    /// compressing them would save little, and it costs the writer some 5 instructions a byte
    /// (`bench/instructions.sh` at 4 connections, where commits hold an event or two: 196k per
    /// POST with a webhook, 207k with every row compressed).
    const COMPRESS_FROM: usize = 4096;

    /// Where the events of the next write begin (for `truncate`).
    pub(crate) fn mark(&self) -> (usize, usize) {
        (self.bytes.len(), self.count)
    }

    pub(crate) fn truncate(&mut self, (bytes, count): (usize, usize)) {
        self.bytes.truncate(bytes);
        self.count = count;
    }

    /// Whether the batch recorded events, written already or not.
    pub(crate) fn any(&self) -> bool {
        self.count > 0 || self.flushed
    }

    pub(crate) fn is_full(&self) -> bool {
        self.bytes.len() >= Self::ROW_BYTES
    }

    fn push(&mut self, fields: [&[u8]; 5]) {
        for field in fields {
            let len = u32::try_from(field.len()).expect("an event field fits in 4 GiB");
            self.bytes.extend_from_slice(&len.to_le_bytes());
            self.bytes.extend_from_slice(field);
        }
        self.count += 1;
    }

    /// Writes the events recorded so far as one outbox row and empties the buffer. Called inside
    /// the batch's transaction outside every savepoint (no write can roll it back): just before
    /// the batch commits, or after a write once the buffer is full.
    pub(crate) fn flush(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let count = self.count as i64;
        let (size, events) = if self.bytes.len() < Self::COMPRESS_FROM {
            (None, &self.bytes[..])
        } else {
            let size = self.bytes.len() as i64;
            (Some(size), self.compress()?)
        };
        let result = conn
            .prepare_cached("INSERT INTO webhook_outbox (count, size, events) VALUES (?1, ?2, ?3)")?
            .execute(params![count, size, events])
            .map(drop);
        self.bytes.clear();
        self.compressed.clear();
        self.count = 0;
        self.flushed = true;
        result
    }

    /// The events so far, LZ4-compressed (a block).
    fn compress(&mut self) -> rusqlite::Result<&[u8]> {
        self.compressed.resize(
            lz4_flex::block::get_maximum_output_size(self.bytes.len()),
            0,
        );
        // Cannot fail (the output has the maximum size), but an error rolls the batch back
        // instead of unwinding out of the writer.
        let len = lz4_flex::block::compress_into_with_table(
            &self.bytes,
            &mut self.compressed,
            &mut self.table,
        )
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
        Ok(&self.compressed[..len])
    }

    /// Ends the batch's record, committed or rolled back: forgets its events and, when it
    /// changed the webhooks table, drops the subscriber cache (a rolled-back change must not stay
    /// in it) and moves the generation on, which lets the dispatcher's read-ahead go.
    pub(crate) fn end_batch(&mut self, outbox: &crate::store::OutboxState) {
        self.bytes.clear();
        self.count = 0;
        self.flushed = false;
        // A delete of a task with thousands of subtasks must not keep megabytes for good.
        self.bytes.shrink_to(64 * 1024);
        self.compressed.shrink_to(64 * 1024);
        if std::mem::take(&mut self.webhooks_changed) {
            *outbox.subscribers.lock().unwrap_or_else(|p| p.into_inner()) = None;
            outbox
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// The events of one outbox row, as `PendingEvents::push` wrote them: `[id, type, created_at,
/// webhooks, body]`. `None` for a row that is not such a list.
fn decode_events(mut bytes: &[u8]) -> Option<Vec<[&str; 5]>> {
    let mut events = Vec::new();
    while !bytes.is_empty() {
        let mut fields = [""; 5];
        for field in &mut fields {
            let (len, rest) = bytes.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            if rest.len() < len {
                return None;
            }
            *field = std::str::from_utf8(&rest[..len]).ok()?;
            bytes = &rest[len..];
        }
        events.push(fields);
    }
    Some(events)
}

/// An outbox row's events, from their compressed form and length; `None` if they do not
/// decompress to exactly that length.
fn decompress(compressed: &[u8], size: i64) -> Option<Vec<u8>> {
    // A damaged row must not ask for gigabytes: LZ4 expands at most 255 times.
    let most = compressed.len().saturating_mul(255);
    let size = usize::try_from(size).ok().filter(|&size| size <= most)?;
    let mut bytes = vec![0; size];
    let len = lz4_flex::block::decompress_into(compressed, &mut bytes).ok()?;
    (len == size).then_some(bytes)
}

/// Records one event for `webhooks` in the batch's pending events; returns the event's id.
fn record_event(
    tx: &Tx<'_>,
    event: EventType,
    created_at: &str,
    webhooks: &[&str],
    body: &str,
) -> String {
    let id = new_id();
    tx.events().push([
        id.as_bytes(),
        event.as_str().as_bytes(),
        created_at.as_bytes(),
        webhooks.join(",").as_bytes(),
        body.as_bytes(),
    ]);
    id
}

/// Fans out outbox rows in commit order until at least `limit` events (or all) are done: for each
/// event, its payload row and an event row, due now, for each of its webhooks that still exists;
/// an event none of them is left for is dropped. Returns how many events.
pub fn fan_out(tx: &Tx<'_>, limit: usize, now_ms: i64) -> Result<usize> {
    let mut done = 0;
    while done < limit {
        let row: Option<(i64, Option<i64>, Vec<u8>)> = tx
            .prepare_cached("SELECT seq, size, events FROM webhook_outbox ORDER BY seq LIMIT 1")?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        let Some((seq, size, bytes)) = row else { break };
        let bytes = match size {
            Some(size) => decompress(&bytes, size),
            None => Some(bytes), // short, or written before schema version 8
        };
        let events = bytes.as_deref().and_then(decode_events).unwrap_or_else(|| {
            // Only a damaged file makes one; keeping it would stop every later event.
            crate::log_error!("webhooks: outbox row {seq} cannot be read as events; dropped");
            Vec::new()
        });
        for [id, event_type, created_at, webhooks, body] in &events {
            let payload = tx.next_payload_seq();
            let mut made = 0;
            for webhook_id in webhooks.split(',').filter(|w| !w.is_empty()) {
                made += tx
                    .prepare_cached(
                        "INSERT INTO webhook_events (webhook_id, next_attempt_at, payload) \
                         SELECT id, ?2, ?3 FROM webhooks WHERE id = ?1",
                    )?
                    .execute(params![webhook_id, now_ms, payload])?;
            }
            // A webhook deleted since the change gets nothing; with none left, nor does the event.
            if made > 0 {
                tx.prepare_cached(
                    "INSERT INTO webhook_payloads (seq, id, type, created_at, remaining, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    payload,
                    id,
                    event_type,
                    created_at,
                    made as i64,
                    body
                ])?;
            }
        }
        tx.prepare_cached("DELETE FROM webhook_outbox WHERE seq = ?1")?
            .execute([seq])?;
        done += events.len();
    }
    Ok(done)
}

/// An event due for an attempt, with what sending it needs. No `Debug`: it holds the secrets.
#[derive(Clone)]
pub struct DueEvent {
    pub id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When this attempt fell due (Unix ms): with `webhook_id` and `payload`, the row's key.
    pub due_at: i64,
    /// The outbox row (`webhook_payloads.seq`).
    pub payload_seq: i64,
    pub url: String,
    /// The secrets to sign with: the current one, then the old one during a rotation's grace.
    pub secrets: Vec<String>,
}

/// The key of a pending event's row, and its attempts so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueKey {
    pub webhook_id: String,
    pub due_at: i64,
    pub payload_seq: i64,
    pub attempts: u32,
}

/// The keys of pending events of active webhooks due at `now_ms`, oldest due first, at most
/// `per_webhook` of any one webhook (so one endpoint's backlog cannot fill the batch), `limit` in
/// all. Each webhook's share is a range of the table's key, so a backlog of any size costs a pass
/// no more than the rows it returns; and only keys are read, so skipping the events in flight
/// costs little. `load_events` then reads what sending the chosen ones needs.
pub fn due_keys(
    conn: &Connection,
    now_ms: i64,
    per_webhook: usize,
    limit: usize,
) -> Result<Vec<DueKey>> {
    let mut statement = conn.prepare_cached(
        "SELECT e.webhook_id, e.next_attempt_at, e.payload, e.attempts \
         FROM webhooks AS w JOIN webhook_events AS e \
           ON (e.webhook_id, e.next_attempt_at, e.payload) IN ( \
             SELECT webhook_id, next_attempt_at, payload FROM webhook_events \
             WHERE webhook_id = w.id AND next_attempt_at <= ?1 \
             ORDER BY next_attempt_at, payload LIMIT ?2) \
         WHERE w.active ORDER BY e.next_attempt_at, e.payload LIMIT ?3",
    )?;
    let rows = statement.query_map(params![now_ms, per_webhook as i64, limit as i64], |row| {
        Ok(DueKey {
            webhook_id: row.get(0)?,
            due_at: row.get(1)?,
            payload_seq: row.get(2)?,
            attempts: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The events of `keys` with what sending them needs; `now` decides whether a rotated-out secret
/// still signs. Read in the snapshot `due_keys` read in; a key whose webhook is gone or switched
/// off meanwhile (another read) is left out.
pub fn load_events(conn: &Connection, keys: Vec<DueKey>, now: &str) -> Result<Vec<DueEvent>> {
    let mut payload = conn
        .prepare_cached("SELECT id, type, body, created_at FROM webhook_payloads WHERE seq = ?1")?;
    let mut webhook = conn.prepare_cached(
        "SELECT url, secret, CASE WHEN old_secret_until > ?2 THEN old_secret END \
         FROM webhooks WHERE id = ?1 AND active",
    )?;
    // Most passes send to one webhook or a few: each is read once.
    let mut webhooks: HashMap<String, Option<(String, Vec<String>)>> = HashMap::new();
    let mut events = Vec::with_capacity(keys.len());
    for key in keys {
        if !webhooks.contains_key(&key.webhook_id) {
            let found = webhook
                .query_row(params![key.webhook_id, now], |row| {
                    let secrets: Vec<String> = std::iter::once(row.get(1)?)
                        .chain(row.get::<_, Option<String>>(2)?)
                        .collect();
                    Ok((row.get(0)?, secrets))
                })
                .optional()?;
            webhooks.insert(key.webhook_id.clone(), found);
        }
        let Some(Some((url, secrets))) = webhooks.get(&key.webhook_id) else {
            continue;
        };
        let Some((id, event_type, body, created_at)) = payload
            .query_row([key.payload_seq], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()?
        else {
            continue;
        };
        events.push(DueEvent {
            id,
            webhook_id: key.webhook_id,
            event_type,
            payload: body,
            created_at,
            attempts: key.attempts,
            due_at: key.due_at,
            payload_seq: key.payload_seq,
            url: url.clone(),
            secrets: secrets.clone(),
        });
    }
    Ok(events)
}

/// When the next event of an active webhook falls due after `now_ms` (Unix ms), if one does: one
/// index seek per webhook. Events due already (in flight, or waiting for a free slot) are not
/// counted: a finished request wakes the dispatcher for those.
pub fn next_due(conn: &Connection, now_ms: i64) -> Result<Option<i64>> {
    let next = conn
        .prepare_cached(
            "SELECT min((SELECT next_attempt_at FROM webhook_events \
                         WHERE webhook_id = w.id AND next_attempt_at > ?1 \
                         ORDER BY next_attempt_at LIMIT 1)) \
             FROM webhooks AS w WHERE w.active",
        )?
        .query_row([now_ms], |row| row.get(0))?;
    Ok(next)
}

/// Events waiting to be delivered to active webhooks, and events not fanned out yet: the queue
/// depth. It counts the small event rows and the outbox rows' counts, never the payloads, and the
/// dispatcher reads it at most once a second.
pub fn queue_depth(conn: &Connection) -> Result<i64> {
    let depth = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM webhooks AS w JOIN webhook_events AS e \
                     ON e.webhook_id = w.id WHERE w.active) \
                  + (SELECT coalesce(sum(count), 0) FROM webhook_outbox)",
        )?
        .query_row([], |row| row.get(0))?;
    Ok(depth)
}

/// The outcome of one attempt, as the dispatcher saw it.
#[derive(Clone)]
pub struct Attempt {
    pub event: DueEvent,
    pub response_status: Option<u16>,
    /// Why it failed when it did: the error, or the start of a non-2xx answer's body.
    pub error: Option<String>,
    pub duration_ms: u64,
    pub delivered: bool,
    pub at: String,
}

/// Records `attempt` and moves its event on: due again after `retry_after_secs`, or, delivered or
/// failed for good (`retry_after_secs` is `None`), out of the outbox. An event that failed for
/// good, with no successful delivery to its webhook since the event was made, switches the
/// webhook off (docs/webhooks.md). Returns the attempt's status. An event whose webhook was
/// deleted meanwhile is ignored.
pub fn record_attempt(
    tx: &Tx<'_>,
    attempt: &Attempt,
    retry_after_secs: Option<u64>,
    now_ms: i64,
) -> Result<DeliveryStatus> {
    let event = &attempt.event;
    let number = event.attempts + 1;
    let (status, next_ms) = match (attempt.delivered, retry_after_secs) {
        (true, _) => (DeliveryStatus::Delivered, None),
        (false, Some(secs)) => (
            DeliveryStatus::Pending,
            Some(now_ms + (secs as i64).saturating_mul(1000)),
        ),
        (false, None) => (DeliveryStatus::Failed, None),
    };
    let changed = match next_ms {
        Some(next_ms) => tx
            .prepare_cached(
                "UPDATE webhook_events SET attempts = ?4, next_attempt_at = ?5 \
                 WHERE webhook_id = ?1 AND next_attempt_at = ?2 AND payload = ?3 \
                 AND attempts = ?4 - 1",
            )?
            .execute(params![
                event.webhook_id,
                event.due_at,
                event.payload_seq,
                number,
                next_ms
            ])?,
        None => tx
            .prepare_cached(
                "DELETE FROM webhook_events WHERE webhook_id = ?1 AND next_attempt_at = ?2 \
                 AND payload = ?3 AND attempts = ?4 - 1",
            )?
            .execute(params![
                event.webhook_id,
                event.due_at,
                event.payload_seq,
                number
            ])?,
    };
    if changed == 0 {
        return Ok(status);
    }
    let next_at = next_ms.map(crate::time::from_unix_ms);
    tx.prepare_cached(
        "INSERT INTO webhook_attempts (id, webhook_id, event_id, event_type, attempt, status, \
         response_status, error, duration_ms, created_at, next_attempt_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        new_id(),
        event.webhook_id,
        event.id,
        event.event_type,
        number,
        status,
        attempt.response_status,
        attempt.error,
        attempt.duration_ms as i64,
        attempt.at,
        next_at
    ])?;
    if status == DeliveryStatus::Failed {
        let succeeded_since: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM webhook_attempts WHERE webhook_id = ?1 \
                 AND status = 'delivered' AND created_at >= ?2)",
            )?
            .query_row(params![event.webhook_id, event.created_at], |row| {
                row.get(0)
            })?;
        if !succeeded_since {
            let reason = format!(
                "switched off at {}: every delivery since {} failed, and event {} used all its \
                 {number} attempts (last: {})",
                attempt.at,
                event.created_at,
                event.id,
                attempt.error.as_deref().unwrap_or("no answer"),
            );
            let switched_off = tx
                .prepare_cached(
                    "UPDATE webhooks SET active = 0, disabled_reason = ?2, updated_at = ?3 \
                     WHERE id = ?1 AND active",
                )?
                .execute(params![event.webhook_id, reason, attempt.at])?;
            if switched_off > 0 {
                webhooks_changed(tx);
            }
        }
    }
    Ok(status)
}

/// An attempt as `GET /api/webhooks/:id/deliveries` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub attempt: u32,
    pub status: DeliveryStatus,
    pub response_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
}

/// A page of a webhook's attempts, newest first, before the attempt id `before`.
pub fn list_deliveries(
    conn: &Connection,
    webhook_id: &str,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<Delivery>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, event_id, event_type, attempt, status, response_status, error, duration_ms, \
         created_at, next_attempt_at FROM webhook_attempts \
         WHERE webhook_id = ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = statement.query_map(params![webhook_id, before, limit as i64], |row| {
        Ok(Delivery {
            id: row.get(0)?,
            event_id: row.get(1)?,
            event_type: row.get(2)?,
            attempt: row.get(3)?,
            status: row.get(4)?,
            response_status: row.get(5)?,
            error: row.get(6)?,
            duration_ms: row.get::<_, Option<i64>>(7)?.map(|ms| ms.max(0) as u64),
            created_at: row.get(8)?,
            next_attempt_at: row.get(9)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Deletes at most `limit` attempts made before `before_ms` (Unix ms); returns how many. Ids are
/// UUIDv7, whose first 48 bits are their creation time, so each webhook's old rows are a range of
/// the key: no index on the time, and no scan. The caller repeats it, one short write at a time.
pub fn prune(tx: &Tx<'_>, before_ms: i64, limit: usize) -> Result<usize> {
    let deleted = tx
        .prepare_cached(
            "DELETE FROM webhook_attempts WHERE (webhook_id, id) IN \
             (SELECT webhook_id, id FROM webhook_attempts \
              WHERE webhook_id IN (SELECT id FROM webhooks) AND id < ?1 LIMIT ?2)",
        )?
        .execute(params![v7_floor(before_ms), limit as i64])?;
    Ok(deleted)
}

/// The smallest UUIDv7 of the millisecond `ms`, as text: every id made at or after `ms` sorts
/// after it.
fn v7_floor(ms: i64) -> String {
    let ms = ms.clamp(0, (1 << 48) - 1) as u64;
    format!(
        "{:08x}-{:04x}-7000-8000-000000000000",
        ms >> 16,
        ms & 0xffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new user's personal space.
    fn personal_space(store: &crate::store::Store) -> String {
        store
            .write(|tx| {
                let user = crate::store::users::create_user(
                    tx,
                    "a@example.com",
                    "A",
                    crate::store::users::Plan::Pro,
                )?;
                Ok(tx.query_row(
                    "SELECT space_id FROM space_members WHERE user_id = ?1",
                    [&user.id],
                    |row| row.get::<_, String>(0),
                )?)
            })
            .unwrap()
    }

    /// An active webhook of `space` on every event.
    fn on_everything(space: &str) -> NewWebhook {
        NewWebhook {
            space_id: space.to_string(),
            url: "https://example.com/".into(),
            events: vec!["*".into()],
            description: None,
            active: true,
        }
    }

    /// The outbox's whole life in the store: an event written with a change, fanned out, one
    /// failed attempt (due again), one delivered (gone, payload and all).
    #[test]
    fn an_event_goes_from_the_outbox_to_delivered_and_leaves_nothing_behind() {
        let (_dir, store) = crate::store::open_temp();
        let space = personal_space(&store);
        let webhook = store
            .write(|tx| Ok(create_webhook(tx, &on_everything(&space), "whsec_AAAA")?.id))
            .unwrap();
        let actor = || Actor {
            user_id: "u",
            token_id: None,
        };
        store
            .write(|tx| {
                Outbox::open(tx, &space, actor())?.emit(
                    tx,
                    EventType::TaskCreated,
                    b"{\"id\":\"t\"}",
                )
            })
            .unwrap();
        let count = |sql: &str| -> i64 {
            store
                .read(|c| Ok(c.query_row(sql, [], |r| r.get(0))?))
                .unwrap()
        };
        // A write that fails leaves no event behind, whatever it recorded before failing.
        let failed = store.write(|tx| {
            Outbox::open(tx, &space, actor())?.emit(tx, EventType::TaskDeleted, b"{}")?;
            Err::<(), _>(crate::error::Error::validation("x", "refused"))
        });
        assert!(failed.is_err());
        assert_eq!(count("SELECT sum(count) FROM webhook_outbox"), 1);
        assert_eq!(count("SELECT count(*) FROM webhook_payloads"), 0);
        assert_eq!(store.read(queue_depth).unwrap(), 1);
        assert_eq!(store.write(|tx| fan_out(tx, 10, 1000)).unwrap(), 1);
        assert_eq!(store.write(|tx| fan_out(tx, 10, 1000)).unwrap(), 0);
        assert_eq!(count("SELECT count(*) FROM webhook_outbox"), 0);
        assert_eq!(store.read(queue_depth).unwrap(), 1);
        let due = store.read(|c| due_events(c, 1000, "now", 4, 10)).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].webhook_id, webhook);
        let attempt = |event: &DueEvent, delivered: bool| Attempt {
            event: event.clone(),
            response_status: Some(if delivered { 200 } else { 500 }),
            error: None,
            duration_ms: 1,
            delivered,
            at: crate::time::now(),
        };
        let status = store
            .write(|tx| record_attempt(tx, &attempt(&due[0], false), Some(5), 1000))
            .unwrap();
        assert_eq!(status, DeliveryStatus::Pending);
        assert!(
            store
                .read(|c| due_events(c, 1000, "now", 4, 10))
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.read(|c| next_due(c, 1000)).unwrap(), Some(6000));
        let due = store.read(|c| due_events(c, 6000, "now", 4, 10)).unwrap();
        assert_eq!(due[0].attempts, 1);
        let status = store
            .write(|tx| record_attempt(tx, &attempt(&due[0], true), Some(5), 6000))
            .unwrap();
        assert_eq!(status, DeliveryStatus::Delivered);
        assert_eq!(count("SELECT count(*) FROM webhook_events"), 0);
        assert_eq!(count("SELECT count(*) FROM webhook_payloads"), 0);
        let listed = store
            .read(|c| list_deliveries(c, &webhook, None, 10))
            .unwrap();
        let statuses: Vec<_> = listed.iter().map(|d| d.status).collect();
        assert_eq!(
            statuses,
            [DeliveryStatus::Delivered, DeliveryStatus::Pending]
        );
    }

    /// A commit's outbox row of a page or more is stored compressed with its length, a shorter
    /// one as it is, and a row that does not
    /// decompress to its length (or claims more than LZ4 can expand to) is dropped without
    /// stopping the ones after it. (Rows from before version 8: src/store/tests.rs.)
    #[test]
    fn outbox_rows_are_compressed_and_damaged_rows_do_not_stop_the_rest() {
        let (_dir, store) = crate::store::open_temp();
        let space = personal_space(&store);
        store
            .write(|tx| Ok(create_webhook(tx, &on_everything(&space), "whsec_AAAA")?.id))
            .unwrap();
        let data = |n: usize| format!("{{\"id\":\"task-{n}\",\"title\":\"alike, all of them\"}}");
        store
            .write(|tx| {
                let actor = Actor {
                    user_id: "u",
                    token_id: None,
                };
                let outbox = Outbox::open(tx, &space, actor)?;
                (0..40)
                    .try_for_each(|n| outbox.emit(tx, EventType::TaskCreated, data(n).as_bytes()))
            })
            .unwrap();
        let (size, stored): (i64, i64) = store
            .read(|c| {
                Ok(
                    c.query_row("SELECT size, length(events) FROM webhook_outbox", [], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?,
                )
            })
            .unwrap();
        assert!(stored * 3 < size, "{stored} bytes stored for {size}");

        // Before it in `seq` order: one that is not LZ4, one that claims 4 GiB.
        store
            .write(|tx| {
                tx.execute_batch(
                    "INSERT INTO webhook_outbox (seq, count, size, events) VALUES \
                     (-2, 1, 100, x'00ff00ff'), (-1, 1, 4294967296, x'1f00010000')",
                )?;
                Ok(())
            })
            .unwrap();
        // And after it, one short row.
        store
            .write(|tx| {
                let actor = Actor {
                    user_id: "u",
                    token_id: None,
                };
                Outbox::open(tx, &space, actor)?.emit(
                    tx,
                    EventType::TaskCreated,
                    data(40).as_bytes(),
                )
            })
            .unwrap();
        let short: Option<i64> = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT size FROM webhook_outbox ORDER BY seq DESC",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(short, None);
        assert_eq!(store.write(|tx| fan_out(tx, 100, 1000)).unwrap(), 41);
        let bodies: Vec<String> = store
            .read(|c| {
                let mut statement = c.prepare("SELECT body FROM webhook_payloads ORDER BY seq")?;
                let rows = statement.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert_eq!(bodies.len(), 41);
        for (n, body) in bodies.iter().enumerate() {
            assert!(body.contains(&format!("\"id\":\"task-{n}\"")), "{body}");
        }
        let left: i64 = store
            .read(|c| Ok(c.query_row("SELECT count(*) FROM webhook_outbox", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn the_actor_is_spliced_into_the_data_object() {
        let actor = Actor {
            user_id: "u",
            token_id: None,
        };
        let body = envelope(
            EventType::TaskCreated,
            "2026-11-29T08:00:00.000Z",
            &actor,
            |out| out.extend_from_slice(b"{\"id\":\"t\",\"title\":\"a } b\"} "),
        );
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["type"], "task.created");
        assert_eq!(value["timestamp"], "2026-11-29T08:00:00.000Z");
        assert_eq!(value["data"]["title"], "a } b");
        assert_eq!(value["data"]["actor"]["userId"], "u");
        assert!(value["data"]["actor"]["tokenId"].is_null());
        let empty = envelope(EventType::WebhookTest, "t", &actor, |out| {
            out.extend_from_slice(b"{ }")
        });
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&empty).unwrap()["data"],
            serde_json::json!({"actor": {"userId": "u", "tokenId": null}})
        );
    }

    #[test]
    fn the_prune_floor_sorts_between_ids_of_neighbouring_milliseconds() {
        let id = uuid::Uuid::now_v7().to_string();
        let ms = crate::time::now_unix_ms();
        assert!(v7_floor(ms - 5_000) < id, "{id}");
        assert!(v7_floor(ms + 5_000) > id, "{id}");
        let (seconds, nanos) = uuid::Uuid::parse_str(&id)
            .unwrap()
            .get_timestamp()
            .unwrap()
            .to_unix();
        let made = seconds as i64 * 1000 + i64::from(nanos / 1_000_000);
        assert!(v7_floor(made) <= id && v7_floor(made + 1) > id);
    }

    fn due_events(
        conn: &Connection,
        now_ms: i64,
        now: &str,
        per_webhook: usize,
        limit: usize,
    ) -> Result<Vec<DueEvent>> {
        load_events(conn, due_keys(conn, now_ms, per_webhook, limit)?, now)
    }

    /// A webhook made by a write that then failed must not stay in the subscriber cache that
    /// write loaded, and the dispatcher hears of the change only once the batch has ended.
    #[test]
    fn a_rolled_back_webhook_change_leaves_no_subscriber_behind() {
        let (_dir, store) = crate::store::open_temp();
        let space = personal_space(&store);
        let actor = || Actor {
            user_id: "u",
            token_id: None,
        };
        let generation = store.webhooks_generation();
        let failed = store.write(|tx| {
            create_webhook(tx, &on_everything(&space), "whsec_AAAA")?;
            assert!(Outbox::open(tx, &space, actor())?.wants(EventType::TaskCreated));
            assert_eq!(
                store.webhooks_generation(),
                generation,
                "not before the batch ends"
            );
            Err::<(), _>(crate::error::Error::validation("x", "refused"))
        });
        assert!(failed.is_err());
        assert!(store.webhooks_generation() > generation);
        let wants = store
            .write(|tx| Ok(Outbox::open(tx, &space, actor())?.wants(EventType::TaskCreated)))
            .unwrap();
        assert!(!wants, "the rolled-back webhook hears nothing");
    }

    #[test]
    fn pending_events_decode_as_they_were_pushed_and_a_rollback_cuts_them() {
        let mut pending = PendingEvents::default();
        pending.push([
            b"id-1",
            b"task.created",
            b"2026-01-01T00:00:00Z",
            b"w1,w2",
            b"{}",
        ]);
        let mark = pending.mark();
        pending.push([
            b"id-2",
            b"task.deleted",
            b"t",
            b"w1",
            "{\"title\":\"\u{e9}\"}".as_bytes(),
        ]);
        let events = decode_events(&pending.bytes).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1],
            ["id-2", "task.deleted", "t", "w1", "{\"title\":\"\u{e9}\"}"]
        );
        pending.truncate(mark);
        assert_eq!(
            decode_events(&pending.bytes).unwrap(),
            [[
                "id-1",
                "task.created",
                "2026-01-01T00:00:00Z",
                "w1,w2",
                "{}"
            ]]
        );
        assert_eq!(pending.count, 1);
        // A cut-off row is refused, not misread.
        assert!(decode_events(&pending.bytes[..pending.bytes.len() - 1]).is_none());
        assert!(decode_events(&[1, 0]).is_none());
    }

    #[test]
    fn a_star_subscribes_to_everything_and_names_match_whole() {
        assert!(subscribes("*", EventType::ProjectUpdated));
        assert!(subscribes(
            "task.created,task.updated",
            EventType::TaskUpdated
        ));
        assert!(!subscribes("task.created", EventType::TaskCompleted));
        assert!(!subscribes("task.created_x", EventType::TaskCreated));
    }
}
