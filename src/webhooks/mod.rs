//! Webhook delivery (docs/webhooks.md): the dispatcher that reads the outbox and sends events.
//!
//! Events are written by the writes that cause them, one outbox row per commit
//! (`store::webhooks::Outbox`); here they are fanned out to their webhooks and sent. The
//! dispatcher runs on a thread of its own with its own single-threaded runtime. It waits for a
//! commit that recorded events (`Store::events_committed`), for the next retry to fall due, or for
//! a second to pass. Each pass fans out new outbox rows (`fan_out`, one write for many), then sends
//! each due event as a task within the concurrency limits; attempts are recorded by a recorder
//! thread in batches, one write for many, and an event counts as in flight until its attempt is
//! committed, so it is never sent twice by one process. After a crash an event whose attempt was
//! not recorded is sent again with the same `webhook-id`: delivery is at least once.
//!
//! A write never pays for delivery: while the API is busy with writes, fanning out and sending
//! take a bounded share (`Pacer`), and the queue drains when the load ends.

pub mod send;
pub mod target;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::app::App;
use crate::config::WebhooksConfig;
use crate::store::Store;
use crate::store::webhooks::{self, Attempt, DeliveryStatus, DueEvent};

/// Delivery records older than this are pruned.
const RETENTION_DAYS: i64 = 30;
/// The outbox is polled at least this often, for events another process wrote.
const POLL: Duration = Duration::from_secs(1);
/// API writes per second above which the server counts as busy: deliveries then give way.
const BUSY_WRITES_PER_SEC: f64 = 200.0;
/// Events fanned out and deliveries started per second while the server is busy. A delivery
/// costs about what a write costs (the request, its receiver, recording the attempt), so under a
/// write load that saturates the machine they take a small share and the queue drains when the
/// load ends; an event rate below half of this is delivered as it comes, load or not.
const BUSY_DELIVERIES_PER_SEC: f64 = 500.0;
/// How many events beyond its free slots a webhook's queue holds while the server is not busy:
/// its senders take them one after another without waiting for a pass of the dispatcher. Draining
/// 300,000 events to one local receiver: 16 ran at 31-34k a second, 64 at 36-37k (each pass
/// rereads the keys in flight, so fewer passes of more events each do better). A pass's read
/// stays on the dispatcher's thread: on a blocking thread it drained a few percent faster, but
/// the extra threads and readers raised the peak RSS by 5-9 MB.
const READY_AHEAD: usize = 64;
/// How many events all the queues hold at most together (their bodies are in memory): a backlog
/// on many webhooks does not multiply `READY_AHEAD`.
const QUEUED_AT_MOST: usize = 256;
/// Events fanned out per write, about (whole outbox rows). Each makes a payload row of up to a
/// few KiB: a thousand at once left megabytes of dirty pages for the process to keep (the bench's
/// RSS peak rose by 3-4 MB), while a hundred drain as fast, since fanning out runs beside sending.
const FAN_OUT_BATCH: usize = 100;
/// How often the dispatcher looks at the outbox while the server is busy.
const BUSY_PASS_EVERY: Duration = Duration::from_millis(20);
/// How often the write rate is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How often the queue depth is counted (it counts rows).
const QUEUE_DEPTH_EVERY: Duration = Duration::from_secs(1);
/// How often old delivery records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Counters for the metrics endpoint: attempts by outcome, and the queue depth as last seen.
#[derive(Debug, Default)]
pub struct Stats {
    pub delivered: AtomicU64,
    /// Failed attempts with another one scheduled.
    pub retried: AtomicU64,
    /// Failed attempts that were the event's last.
    pub failed: AtomicU64,
    /// Pending events of active webhooks, counted at most once a second.
    pub queue_depth: AtomicI64,
}

impl Stats {
    fn count(&self, status: DeliveryStatus) {
        let counter = match status {
            DeliveryStatus::Delivered => &self.delivered,
            DeliveryStatus::Pending => &self.retried,
            DeliveryStatus::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The running dispatcher; `stop` ends it, leaving undelivered events pending.
pub struct Dispatcher {
    stopping: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What the dispatcher's tasks share.
struct Shared {
    app: Arc<App>,
    sender: send::Sender,
    /// `(webhook id, payload seq)` of events sent or being sent whose attempt is not committed
    /// yet. (A payload's seq is never reused while the server runs.)
    in_flight: Mutex<HashSet<(String, i64)>>,
    /// Per webhook, its senders (at most `max_concurrent_per_endpoint`) and the events queued for
    /// them. A sender takes the next queued event as soon as its answer is in (recording it is the
    /// recorder's business, batched), so a busy endpoint's slots do not wait for a pass.
    per_webhook: Mutex<HashMap<String, Endpoint>>,
    /// Events whose attempts were committed since the dispatcher last looked, or that were let go
    /// unsent (a panic, a webhook change). They leave `in_flight` only when the dispatcher takes
    /// them, before its next read of the outbox: a read begun before the commit would still find
    /// the event pending and send it again.
    recorded: Mutex<Vec<(String, i64)>>,
}

/// A webhook's share of the dispatcher.
#[derive(Default)]
struct Endpoint {
    sending: usize,
    /// Claimed (in flight) events waiting for a sender.
    queued: std::collections::VecDeque<DueEvent>,
    /// `Store::webhooks_generation` taken before they were read: after any change to a webhook
    /// (switched off, deleted, its URL or secret changed) commits, they are let go, to be read
    /// again as they now are.
    generation: u64,
}

impl Endpoint {
    /// Lets the queued events go if a webhook changed since they were read.
    fn drop_stale(&mut self, generation: u64, released: &Mutex<Vec<(String, i64)>>) {
        if self.generation != generation {
            released.lock().unwrap_or_else(|p| p.into_inner()).extend(
                self.queued
                    .drain(..)
                    .map(|event| (event.webhook_id, event.payload_seq)),
            );
            self.generation = generation;
        }
    }
}

impl Shared {
    /// Queues `event` (marked in flight), read at `generation`, for its webhook's next free
    /// sender.
    fn queue(&self, event: DueEvent, generation: u64) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        in_flight.insert((event.webhook_id.clone(), event.payload_seq));
        let mut per_webhook = self.per_webhook.lock().unwrap_or_else(|p| p.into_inner());
        let webhook = per_webhook.entry(event.webhook_id.clone()).or_default();
        webhook.drop_stale(generation, &self.recorded);
        webhook.queued.push_back(event);
    }

    /// The next event queued for `webhook_id`, and whether its queue is running low (time for the
    /// dispatcher to fill it).
    fn next_queued(&self, webhook_id: &str) -> (Option<DueEvent>, bool) {
        let mut per_webhook = self.per_webhook.lock().unwrap_or_else(|p| p.into_inner());
        let Some(webhook) = per_webhook.get_mut(webhook_id) else {
            return (None, true);
        };
        webhook.drop_stale(self.store().webhooks_generation(), &self.recorded);
        let next = webhook.queued.pop_front();
        (next, webhook.queued.len() < READY_AHEAD / 2)
    }

    /// Queued events of webhooks with a free slot and no sender to take them (a sender
    /// panicked), each with a slot and a permit taken for it.
    fn unattended(
        &self,
        global: &Arc<tokio::sync::Semaphore>,
    ) -> Vec<(DueEvent, tokio::sync::OwnedSemaphorePermit)> {
        let generation = self.store().webhooks_generation();
        let mut per_webhook = self.per_webhook.lock().unwrap_or_else(|p| p.into_inner());
        let mut started = Vec::new();
        for webhook in per_webhook.values_mut() {
            webhook.drop_stale(generation, &self.recorded);
            while webhook.sending == 0 && !webhook.queued.is_empty() {
                let Ok(permit) = Arc::clone(global).try_acquire_owned() else {
                    return started;
                };
                let event = webhook.queued.pop_front().expect("not empty");
                webhook.sending += 1;
                started.push((event, permit));
            }
        }
        started
    }

    fn store(&self) -> &Store {
        &self.app.store
    }

    fn config(&self) -> &WebhooksConfig {
        &self.app.config.webhooks
    }
}

impl Dispatcher {
    /// Starts delivering (unless `webhooks.deliver` is false: then this does nothing until
    /// `stop`).
    pub fn start(app: Arc<App>) -> Dispatcher {
        let stopping = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(tokio::sync::Notify::new());
        let config = &app.config.webhooks;
        // A replica's events are the primary's to send (sending records attempts: writes).
        if !config.deliver || app.store.is_read_only() {
            if !app.store.is_read_only() {
                crate::log_info!("webhooks.deliver is false: events are recorded, not sent");
            }
            return Dispatcher {
                stopping,
                wake,
                threads: Vec::new(),
            };
        }
        let rules = target::Rules {
            allow_http: config.allow_http,
            allow_private: config.allow_private_targets,
        };
        let shared = Arc::new(Shared {
            sender: send::Sender::new(rules, Duration::from_secs(config.timeout_secs)),
            app,
            in_flight: Mutex::default(),
            per_webhook: Mutex::default(),
            recorded: Mutex::default(),
        });
        // The channel closes when the dispatcher's runtime is gone (every delivery task holds a
        // sender), and the recorder then ends after recording what it was given.
        let (recorder, attempts) = std::sync::mpsc::channel();
        let recording = Arc::clone(&shared);
        let record = std::thread::Builder::new()
            .name("ktasks-webhook-record".into())
            .spawn(move || record_attempts(&recording, &attempts))
            .expect("a thread starts");
        let (thread_stopping, thread_wake) = (Arc::clone(&stopping), Arc::clone(&wake));
        let send = std::thread::Builder::new()
            .name("ktasks-webhooks".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the webhook runtime starts");
                runtime.block_on(dispatch(shared, recorder, thread_stopping, thread_wake));
                // Dropping the runtime cancels deliveries still in flight: their events stay
                // pending for the next start.
            })
            .expect("a thread starts");
        Dispatcher {
            stopping,
            wake,
            threads: vec![send, record],
        }
    }

    /// Stops sending and waits until the attempts already made are recorded; events not yet
    /// answered stay pending.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

async fn dispatch(
    shared: Arc<Shared>,
    recorder: std::sync::mpsc::Sender<Attempt>,
    stopping: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
) {
    let config = shared.config();
    let global = Arc::new(tokio::sync::Semaphore::new(
        config.max_concurrent_deliveries,
    ));
    let stats = &shared.app.webhook_stats;
    let mut pruned_at: Option<std::time::Instant> = None;
    let mut counted_at: Option<std::time::Instant> = None;
    let api_writes = || shared.app.api_writes.load(Ordering::Relaxed);
    let mut pacer = Pacer::new(api_writes());
    // The fan-out write under way, if one is, and how many events it was allowed.
    let mut fanning: Option<(usize, tokio::task::JoinHandle<crate::store::Result<usize>>)> = None;
    let mut more_to_fan = false;
    let mut fanned_at = std::time::Instant::now();
    while !stopping.load(Ordering::SeqCst) {
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            let pruning = Arc::clone(&shared);
            let _ = tokio::task::spawn_blocking(move || prune(pruning.store())).await;
            pruned_at = Some(std::time::Instant::now());
        }
        let mut allowed = pacer.allowance(api_writes(), std::time::Instant::now());
        if let Some((limit, handle)) = fanning.take_if(|(_, handle)| handle.is_finished()) {
            more_to_fan = fanned_out(handle.await, limit, &mut pacer);
        }
        // Fanning out is a write, with its fsync: it runs beside the sending, never before it, so
        // that the endpoints' slots do not sit idle meanwhile. It is due when a commit wrote the
        // outbox since the last one began, when the last one stopped at its limit, and once per
        // `POLL` in case one failed.
        // Under a write load it gets half of what may start now; it is charged what it did.
        let limit = if pacer.busy {
            allowed / 2
        } else {
            FAN_OUT_BATCH
        };
        if fanning.is_none()
            && limit > 0
            && (more_to_fan || shared.store().take_outbox_written() || fanned_at.elapsed() >= POLL)
        {
            let fanning_shared = Arc::clone(&shared);
            let now_ms = crate::time::now_unix_ms();
            fanning = Some((
                limit,
                tokio::task::spawn_blocking(move || {
                    fanning_shared
                        .store()
                        .write(|tx| webhooks::fan_out(tx, limit, now_ms))
                }),
            ));
            fanned_at = std::time::Instant::now();
            allowed -= limit.min(allowed);
        }
        let in_flight = release_recorded(&shared);
        let now_ms = crate::time::now_unix_ms();
        let count_queue = counted_at.is_none_or(|at| at.elapsed() >= QUEUE_DEPTH_EVERY);
        // Taken before the read: events queued ahead are let go once a webhook changes after it.
        let generation = shared.store().webhooks_generation();
        let due = shared
            .store()
            .snapshot(|snapshot| {
                snapshot.read(|conn| {
                    if count_queue {
                        stats
                            .queue_depth
                            .store(webhooks::queue_depth(conn)?, Ordering::Relaxed);
                    }
                    // Events in flight are still pending in the database until recorded: read
                    // past them.
                    let keys = webhooks::due_keys(
                        conn,
                        now_ms,
                        config.max_concurrent_per_endpoint + in_flight,
                        4 * config.max_concurrent_deliveries + in_flight,
                    )?;
                    let ahead = if pacer.busy { 0 } else { READY_AHEAD };
                    let chosen = choose(
                        &shared.in_flight.lock().unwrap_or_else(|p| p.into_inner()),
                        &shared.per_webhook.lock().unwrap_or_else(|p| p.into_inner()),
                        config.max_concurrent_per_endpoint,
                        keys,
                        allowed,
                        ahead,
                    );
                    let due = webhooks::load_events(conn, chosen, &crate::time::now())?;
                    Ok((due, webhooks::next_due(conn, now_ms)?))
                })
            })
            .and_then(|read| read);
        if count_queue {
            counted_at = Some(std::time::Instant::now());
        }
        let (due, next_due) = match due {
            Ok(found) => found,
            Err(error) => {
                crate::log_error!("webhooks: reading the outbox failed: {error:?}");
                (Vec::new(), None)
            }
        };
        let mut started = 0;
        for event in due {
            if started == allowed {
                break;
            }
            match claim(&shared, &event, &global) {
                Claim::Send(permit) => {
                    started += 1;
                    tokio::spawn(deliver(
                        Arc::clone(&shared),
                        event,
                        permit,
                        recorder.clone(),
                    ));
                }
                Claim::Queue if !pacer.busy => {
                    started += 1;
                    shared.queue(event, generation);
                }
                Claim::Queue | Claim::No => {}
            }
        }
        // A queue whose senders all ended (one panicked) gets new ones.
        for event in shared.unattended(&global) {
            tokio::spawn(deliver(
                Arc::clone(&shared),
                event.0,
                event.1,
                recorder.clone(),
            ));
        }
        pacer.spend(started);
        // Events due already but not sent (in flight, or no free slot) are looked at again when a
        // request is answered or an attempt recorded, which wakes this loop; those held back by
        // the pacer, when it allows the next one.
        let mut wait = next_due
            .map(|at| Duration::from_millis((at - crate::time::now_unix_ms()).max(1) as u64))
            .map_or(POLL, |until| until.min(POLL));
        if started == allowed || (more_to_fan && fanning.is_none()) {
            wait = wait.min(pacer.next_token());
        }
        // Under a write load every commit would wake this loop for a pass that may start nothing:
        // passes then come at the pacer's pace instead, each starting a batch.
        let busy_wait = tokio::time::sleep(wait.max(BUSY_PASS_EVERY));
        let fanned = async {
            match &mut fanning {
                Some((_, handle)) => handle.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = fanned, if !pacer.busy => {
                let (limit, _) = fanning.take().expect("a fan-out was under way");
                more_to_fan = fanned_out(done, limit, &mut pacer);
            }
            () = shared.store().events_committed(), if !pacer.busy => {}
            () = wake.notified() => {}
            () = busy_wait, if pacer.busy => {}
            () = tokio::time::sleep(wait), if !pacer.busy => {}
        }
    }
    // A fan-out under way finishes on its blocking thread: it is one write like any other.
    drop(fanning);
}

/// What a finished fan-out of at most `limit` events (give or take a row) means: true when it
/// stopped at its limit (there is more). The pacer is charged what it did.
fn fanned_out(
    done: std::result::Result<crate::store::Result<usize>, tokio::task::JoinError>,
    limit: usize,
    pacer: &mut Pacer,
) -> bool {
    match done {
        Ok(Ok(events)) => {
            pacer.spend(events);
            events >= limit
        }
        Ok(Err(error)) => {
            crate::log_error!("webhooks: fanning out the outbox failed: {error:?}");
            false
        }
        Err(error) => {
            crate::log_error!("webhooks: fanning out the outbox failed: {error}");
            false
        }
    }
}

/// Up to `take` of `keys`, in order, that are not in flight and fit in their webhooks' free slots
/// (`slots` each) or, `ahead` deep, in their queues, with at most `QUEUED_AT_MOST` queued in all:
/// what this pass sends.
fn choose(
    in_flight: &HashSet<(String, i64)>,
    per_webhook: &HashMap<String, Endpoint>,
    slots: usize,
    keys: Vec<webhooks::DueKey>,
    take: usize,
    ahead: usize,
) -> Vec<webhooks::DueKey> {
    let queued: usize = per_webhook
        .values()
        .map(|webhook| webhook.queued.len())
        .sum();
    let mut queue_room = QUEUED_AT_MOST.saturating_sub(queued);
    let mut chosen: Vec<webhooks::DueKey> = Vec::new();
    let mut taken: HashMap<String, usize> = HashMap::new();
    for key in keys {
        if chosen.len() == take {
            break;
        }
        let taken = taken.entry(key.webhook_id.clone()).or_insert_with(|| {
            per_webhook
                .get(&key.webhook_id)
                .map_or(0, |webhook| webhook.sending + webhook.queued.len())
        });
        // Past the webhook's free slots, the event waits in its queue.
        let fits = *taken < slots || (*taken < slots + ahead && queue_room > 0);
        if fits && !in_flight.contains(&(key.webhook_id.clone(), key.payload_seq)) {
            if *taken >= slots {
                queue_room -= 1;
            }
            *taken += 1;
            chosen.push(key);
        }
    }
    chosen
}

/// What `claim` made of an event.
enum Claim {
    /// Send it now, under this permit of the global limit.
    Send(tokio::sync::OwnedSemaphorePermit),
    /// Its webhook has no free slot: queue it for the webhook's next free sender.
    Queue,
    /// In flight already, or no room at all: the next pass looks again.
    No,
}

/// Marks `event` in flight and takes a slot of its webhook and one of the global limit
/// (`Send`); or, when the webhook's slots are all taken, says it may wait in the webhook's queue.
fn claim(shared: &Shared, event: &DueEvent, global: &Arc<tokio::sync::Semaphore>) -> Claim {
    let mut in_flight = shared.in_flight.lock().unwrap_or_else(|p| p.into_inner());
    let key = (event.webhook_id.clone(), event.payload_seq);
    if in_flight.contains(&key) {
        return Claim::No;
    }
    let mut per_webhook = shared.per_webhook.lock().unwrap_or_else(|p| p.into_inner());
    let webhook = per_webhook.entry(event.webhook_id.clone()).or_default();
    if webhook.sending >= shared.config().max_concurrent_per_endpoint {
        return Claim::Queue;
    }
    let Ok(permit) = Arc::clone(global).try_acquire_owned() else {
        return Claim::No;
    };
    webhook.sending += 1;
    in_flight.insert(key);
    Claim::Send(permit)
}

/// Sends `event`, then the events queued for its webhook, one after another, in one of the
/// webhook's slots (`permit` is its share of the global limit); each attempt goes to the recorder.
async fn deliver(
    shared: Arc<Shared>,
    mut event: DueEvent,
    permit: tokio::sync::OwnedSemaphorePermit,
    recorder: std::sync::mpsc::Sender<Attempt>,
) {
    let slot = Slot {
        shared: &shared,
        webhook_id: event.webhook_id.clone(),
    };
    loop {
        let unrecorded = Unrecorded {
            shared: &shared,
            event: &event,
        };
        let sent = shared.sender.send(&event).await;
        std::mem::forget(unrecorded);
        let webhook_id = event.webhook_id.clone();
        // Recording needs the event's key and identity, not its body, URL or secrets: attempts
        // may wait for the recorder by the thousand.
        event.payload = String::new();
        event.url = String::new();
        event.secrets = Vec::new();
        let attempt = Attempt {
            response_status: sent.status.map(|s| s.as_u16()),
            delivered: sent.delivered(),
            error: sent.error,
            duration_ms: sent.duration.as_millis() as u64,
            at: crate::time::now(),
            event,
        };
        // The event stays in flight until the recorder has committed its attempt.
        let _ = recorder.send(attempt);
        let (next, low) = shared.next_queued(&webhook_id);
        if low {
            shared.store().wake_dispatcher();
        }
        match next {
            Some(queued) => event = queued,
            None => break,
        }
    }
    drop(slot);
    drop(permit);
    shared.store().wake_dispatcher();
}

/// Deliveries' share while the server is busy with writes: a token bucket that is bottomless
/// while the server is not busy.
struct Pacer {
    sampled_at: std::time::Instant,
    writes_then: u64,
    busy: bool,
    tokens: f64,
    refilled_at: std::time::Instant,
}

impl Pacer {
    fn new(writes: u64) -> Pacer {
        let now = std::time::Instant::now();
        Pacer {
            sampled_at: now,
            writes_then: writes,
            busy: false,
            tokens: 0.0,
            refilled_at: now,
        }
    }

    /// Takes the count of API writes so far; returns how many deliveries may start now.
    fn allowance(&mut self, writes: u64, now: std::time::Instant) -> usize {
        let sampled = now.duration_since(self.sampled_at);
        if sampled >= SAMPLE_EVERY {
            let rate = writes.saturating_sub(self.writes_then) as f64 / sampled.as_secs_f64();
            self.busy = rate > BUSY_WRITES_PER_SEC;
            self.sampled_at = now;
            self.writes_then = writes;
        }
        if !self.busy {
            self.tokens = BUSY_DELIVERIES_PER_SEC / 10.0;
            self.refilled_at = now;
            return usize::MAX;
        }
        let refill = now.duration_since(self.refilled_at).as_secs_f64() * BUSY_DELIVERIES_PER_SEC;
        self.tokens = (self.tokens + refill).min(BUSY_DELIVERIES_PER_SEC / 10.0);
        self.refilled_at = now;
        self.tokens.max(0.0) as usize
    }

    /// Charges what started; past the tokens left it is a debt the refill pays first (a fan-out
    /// finishes its last outbox row).
    fn spend(&mut self, deliveries: usize) {
        self.tokens -= deliveries as f64;
    }

    /// How long until the next delivery may start, when none may now.
    fn next_token(&self) -> Duration {
        Duration::from_secs_f64((1.0 - self.tokens).max(0.0) / BUSY_DELIVERIES_PER_SEC)
            .max(Duration::from_millis(1))
    }
}

/// A sender's slot of its webhook, freed when the sender ends, panic or not.
struct Slot<'a> {
    shared: &'a Shared,
    webhook_id: String,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut per_webhook = self
            .shared
            .per_webhook
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(webhook) = per_webhook.get_mut(&self.webhook_id) {
            webhook.sending = webhook.sending.saturating_sub(1);
            if webhook.sending == 0 && webhook.queued.is_empty() {
                per_webhook.remove(&self.webhook_id);
            }
        }
    }
}

/// An event being sent; dropped only when the sending task panics (it is forgotten once the
/// request is done): the event then leaves `in_flight`, to be sent again, since no attempt will
/// be recorded for it.
struct Unrecorded<'a> {
    shared: &'a Shared,
    event: &'a DueEvent,
}

impl Drop for Unrecorded<'_> {
    fn drop(&mut self) {
        self.shared
            .recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((self.event.webhook_id.clone(), self.event.payload_seq));
    }
}

/// Takes the events whose attempts are committed out of `in_flight`; returns how many are left
/// in flight.
fn release_recorded(shared: &Shared) -> usize {
    let recorded = std::mem::take(&mut *shared.recorded.lock().unwrap_or_else(|p| p.into_inner()));
    let mut in_flight = shared.in_flight.lock().unwrap_or_else(|p| p.into_inner());
    for key in recorded {
        in_flight.remove(&key);
    }
    in_flight.len()
}

/// The recorder thread: commits attempts in batches (one write for all that are waiting), then
/// hands their events to `release_recorded` and wakes the dispatcher.
fn record_attempts(shared: &Shared, attempts: &std::sync::mpsc::Receiver<Attempt>) {
    while let Ok(first) = attempts.recv() {
        let mut batch = vec![first];
        batch.extend(attempts.try_iter().take(1023));
        let now_ms = crate::time::now_unix_ms();
        let schedule = &shared.config().retry_schedule_secs;
        let record = || {
            shared.store().write(|tx| {
                batch
                    .iter()
                    .map(|attempt| {
                        let retry = schedule.get(attempt.event.attempts as usize).copied();
                        webhooks::record_attempt(tx, attempt, retry, now_ms)
                    })
                    .collect::<crate::store::Result<Vec<_>>>()
            })
        };
        // A write that fails (a full disk) is tried again, with the events kept in flight, rather
        // than letting them be sent again at once; after a minute they are let go, and sent again
        // when the database takes writes: at least once.
        let mut recorded = record();
        for backoff in [1, 2, 4, 8, 15, 30] {
            let Err(error) = &recorded else { break };
            crate::log_error!(
                "webhooks: recording attempts failed, again in {backoff} s: {error:?}"
            );
            std::thread::sleep(Duration::from_secs(backoff));
            recorded = record();
        }
        match recorded {
            Ok(statuses) => {
                for status in statuses {
                    shared.app.webhook_stats.count(status);
                }
            }
            Err(error) => crate::log_error!("webhooks: recording attempts failed: {error:?}"),
        }
        shared
            .recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(
                batch
                    .into_iter()
                    .map(|attempt| (attempt.event.webhook_id, attempt.event.payload_seq)),
            );
        shared.store().wake_dispatcher();
    }
}

/// Deletes attempts older than `RETENTION_DAYS`, a thousand rows per write, so that requests'
/// writes are never held up for long.
fn prune(store: &Store) {
    const CHUNK: usize = 1000;
    let before = crate::time::now_unix_ms() - RETENTION_DAYS * 86_400_000;
    let mut pruned = 0;
    loop {
        match store.write(|tx| webhooks::prune(tx, before, CHUNK)) {
            Ok(rows) => {
                pruned += rows;
                if rows < CHUNK {
                    break;
                }
            }
            Err(error) => {
                crate::log_warn!("webhooks: pruning old delivery records failed: {error:?}");
                break;
            }
        }
    }
    if pruned > 0 {
        crate::log_info!(
            "webhooks: pruned {pruned} delivery attempts older than {RETENTION_DAYS} days"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each webhook gets its free slots, then up to `ahead` queued, until the queues together
    /// hold `QUEUED_AT_MOST` (counting what they held already); events in flight are passed over.
    #[test]
    fn a_pass_fills_free_slots_then_queues_within_the_overall_bound() {
        let key = |webhook: usize, seq: i64| webhooks::DueKey {
            webhook_id: format!("w{webhook}"),
            due_at: 0,
            payload_seq: seq,
            attempts: 0,
        };
        let keys: Vec<_> = (0..7)
            .flat_map(|webhook| (0..200).map(move |seq| key(webhook, seq)))
            .collect();
        let in_flight: HashSet<(String, i64)> =
            [("w1".to_string(), 0), ("w1".to_string(), 7)].into();
        let mut per_webhook: HashMap<String, Endpoint> = HashMap::new();
        let full = per_webhook.entry("w0".into()).or_default();
        full.sending = 32;
        full.queued = (1000..1010)
            .map(|seq| DueEvent {
                id: String::new(),
                webhook_id: "w0".into(),
                event_type: String::new(),
                payload: String::new(),
                created_at: String::new(),
                attempts: 0,
                due_at: 0,
                payload_seq: seq,
                url: String::new(),
                secrets: Vec::new(),
            })
            .collect();
        per_webhook.entry("w2".into()).or_default().sending = 10;
        let chosen = choose(&in_flight, &per_webhook, 32, keys.clone(), usize::MAX, 100);
        let of = |webhook: &str| chosen.iter().filter(|k| k.webhook_id == webhook).count();
        // 246 of the 256 are left. w0: 90 more queued (its slots are taken, 10 queued); w1:
        // 32 + 100, its in-flight 0 and 7 passed over; w2: 22 free slots (10 sending) + the 56
        // left; w3 to w6: their slots only.
        assert_eq!(
            (0..7).map(|w| of(&format!("w{w}"))).collect::<Vec<_>>(),
            [90, 132, 78, 32, 32, 32, 32]
        );
        assert!(
            !chosen
                .iter()
                .any(|k| k.webhook_id == "w1" && [0, 7].contains(&k.payload_seq))
        );
        // Busy: no queue; and `take` stops the pass.
        let chosen = choose(&in_flight, &per_webhook, 32, keys.clone(), usize::MAX, 0);
        assert_eq!(chosen.len(), 32 + 22 + 4 * 32);
        assert_eq!(choose(&in_flight, &per_webhook, 32, keys, 5, 64).len(), 5);
    }

    #[test]
    fn deliveries_give_way_to_a_write_load_and_take_their_share_of_it() {
        let mut pacer = Pacer::new(0);
        let start = pacer.sampled_at;
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(pacer.allowance(0, at(0)), usize::MAX, "idle: no limit");
        assert_eq!(
            pacer.allowance(10, at(100)),
            usize::MAX,
            "100 writes/s: not busy"
        );
        // 5,000 writes/s: busy, and a burst of a tenth of a second's share.
        let burst = (BUSY_DELIVERIES_PER_SEC / 10.0) as usize;
        assert_eq!(pacer.allowance(510, at(200)), burst);
        pacer.spend(burst);
        assert_eq!(pacer.allowance(560, at(200)), 0);
        let one_token = Duration::from_secs_f64(1.0 / BUSY_DELIVERIES_PER_SEC);
        assert!(pacer.next_token() <= one_token && pacer.next_token() > one_token / 2);
        let tenth = (BUSY_DELIVERIES_PER_SEC * 0.01) as usize;
        assert_eq!(pacer.allowance(600, at(210)), tenth, "the share refills");
        // Spending past the tokens left is a debt the refill pays first.
        pacer.spend(3 * tenth);
        assert_eq!(pacer.allowance(600, at(220)), 0);
        assert_eq!(pacer.allowance(600, at(240)), tenth);
        // The load ends: no limit again at the next sample.
        assert_eq!(pacer.allowance(600, at(1200)), usize::MAX);
    }
}
