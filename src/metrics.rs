//! Prometheus metrics (SPEC 12): counters and histograms kept in atomics, rendered in the text
//! exposition format by `GET /metrics` on `server.metrics_bind`.
//!
//! Every label value comes from a fixed set known at start-up: route patterns from the router's
//! tables (an unknown path is `unmatched`), eight method names (anything else is `OTHER`), the
//! status codes the server can answer (anything else `other`; none is expected), the refusal
//! reasons, the delivery results. So however many distinct paths, ids or methods clients send,
//! the number of series stays bounded, and recording a request is a few relaxed atomic adds into
//! preallocated slots: no lock, no allocation.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::Method;

use crate::router::{ENDPOINTS, MCP_ENDPOINTS, WEB_ENDPOINTS};

/// The methods counted by name; any other is `OTHER`.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
];

/// The statuses the server answers with (and hyper for it), then 0: any other code, counted as
/// `status="other"` (none is expected).
const STATUSES: [u16; 29] = [
    200, 201, 202, 204, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 406, 408, 409, 411,
    412, 413, 415, 422, 429, 431, 500, 503, 505, 0,
];

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// Request durations' bucket bounds, in microseconds (rendered in seconds).
const DURATION_BOUNDS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 5_000_000,
];

/// Commit batch sizes' bucket bounds (writes per commit; at most `MAX_BATCH`, 64, but held
/// batches may pass it).
const BATCH_BOUNDS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// A cumulative histogram over integer observations: counts per bucket (not yet cumulative),
/// the sum and the count.
pub struct Histogram {
    bounds: &'static [u64],
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The `_bucket`, `_sum` and `_count` lines, each observation divided by `scale` (1e6 for
    /// microseconds as seconds). `labels` is `key="value",` or empty.
    fn render(&self, out: &mut String, name: &str, labels: &str, scale: f64) {
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(&bound) => format_float(bound as f64 / scale),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
        }
        let labels = labels.trim_end_matches(',');
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum.load(Ordering::Relaxed) as f64 / scale;
        let _ = writeln!(out, "{name}_sum{braces} {}", format_float(sum));
        let _ = writeln!(out, "{name}_count{braces} {}", self.count());
    }
}

/// A float as Prometheus reads it, without a needless exponent for the bucket bounds.
fn format_float(value: f64) -> String {
    let text = format!("{value}");
    if text.contains('.') || text.contains('e') || text.contains("inf") || text.contains("NaN") {
        text
    } else {
        format!("{text}.0")
    }
}

/// Why a presented credential was refused (`auth::Refusal`, plus `plan`).
pub const AUTH_REASONS: [&str; 6] = [
    "malformed",
    "bad_checksum",
    "unknown",
    "revoked",
    "expired",
    "plan",
];

/// The slot of each status code below 600 in `STATUSES` (the last slot for codes not in it): a
/// table, so that counting a request does not search.
const STATUS_SLOTS: [u8; 600] = {
    let mut slots = [(STATUSES.len() - 1) as u8; 600];
    let mut i = 0;
    while i < STATUSES.len() {
        slots[STATUSES[i] as usize] = i as u8;
        i += 1;
    }
    slots
};

/// FNV-1a, for the route table's keys: a handful of short strings known at start-up, looked up
/// once per request, where SipHash cost more than the rest of the counting.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = hash;
    }
}

/// What the server counts. Created once (`App::new`); the store's and the dispatcher's counters
/// live with them and are read at render time.
pub struct Metrics {
    /// Route pattern -> its index in `routes`; `routes[0]` is `unmatched`.
    index: HashMap<&'static str, usize, std::hash::BuildHasherDefault<Fnv>>,
    routes: Vec<&'static str>,
    /// `[route][method][status]`, flattened.
    requests: Box<[AtomicU64]>,
    durations: Box<[Histogram]>,
    rate_limited: AtomicU64,
    auth_failures: [AtomicU64; AUTH_REASONS.len()],
    started: SystemTime,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut routes = vec![UNMATCHED];
        for (pattern, _) in ENDPOINTS.iter().chain(WEB_ENDPOINTS).chain(MCP_ENDPOINTS) {
            if !routes.contains(pattern) {
                routes.push(pattern);
            }
        }
        let index = routes.iter().enumerate().map(|(i, r)| (*r, i)).collect();
        let slots = routes.len() * METHODS.len() * STATUSES.len();
        Metrics {
            index,
            requests: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            durations: routes
                .iter()
                .map(|_| Histogram::new(&DURATION_BOUNDS_US))
                .collect(),
            routes,
            rate_limited: AtomicU64::new(0),
            auth_failures: Default::default(),
            started: SystemTime::now(),
        }
    }

    /// Counts one answered request. `pattern` is the router's (`-` or anything unknown:
    /// `unmatched`).
    pub fn record(&self, method: &Method, pattern: &str, status: u16, took: Duration) {
        let route = self.index.get(pattern).copied().unwrap_or(0);
        let method = match *method {
            Method::GET => 0,
            Method::HEAD => 1,
            Method::POST => 2,
            Method::PUT => 3,
            Method::PATCH => 4,
            Method::DELETE => 5,
            Method::OPTIONS => 6,
            _ => 7,
        };
        let status_slot = STATUS_SLOTS
            .get(usize::from(status))
            .map_or(STATUSES.len() - 1, |slot| usize::from(*slot));
        let slot = (route * METHODS.len() + method) * STATUSES.len() + status_slot;
        self.requests[slot].fetch_add(1, Ordering::Relaxed);
        self.durations[route].observe(took.as_micros().min(u128::from(u64::MAX)) as u64);
        if status == 429 {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a refused credential by its reason (one of `AUTH_REASONS`).
    pub fn auth_failure(&self, reason: &str) {
        if let Some(i) = AUTH_REASONS.iter().position(|r| *r == reason) {
            self.auth_failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self, store: &crate::store::Store, webhooks: &crate::webhooks::Stats) -> String {
        let mut out = String::with_capacity(16 * 1024);
        help(
            &mut out,
            "ktasks_http_requests_total",
            "counter",
            "Answered HTTP requests, by method, route pattern and status.",
        );
        for (route, pattern) in self.routes.iter().enumerate() {
            for (m, method) in METHODS.iter().enumerate() {
                for (s, status) in STATUSES.iter().enumerate() {
                    let slot = (route * METHODS.len() + m) * STATUSES.len() + s;
                    let n = self.requests[slot].load(Ordering::Relaxed);
                    if n > 0 {
                        let status: &dyn std::fmt::Display =
                            if *status == 0 { &"other" } else { status };
                        let _ = writeln!(
                            out,
                            "ktasks_http_requests_total{{method=\"{method}\",route=\"{pattern}\",status=\"{status}\"}} {n}"
                        );
                    }
                }
            }
        }
        help(
            &mut out,
            "ktasks_http_request_duration_seconds",
            "histogram",
            "Time from the request's arrival to its answer, by route pattern.",
        );
        for (route, pattern) in self.routes.iter().enumerate() {
            let histogram = &self.durations[route];
            if histogram.count() > 0 {
                histogram.render(
                    &mut out,
                    "ktasks_http_request_duration_seconds",
                    &format!("route=\"{pattern}\","),
                    1e6,
                );
            }
        }
        help(
            &mut out,
            "ktasks_rate_limited_total",
            "counter",
            "Requests answered 429: a token's limit, refused credentials from one address, or a \
             client behind a proxy over its share (connections refused before a request is read \
             are not counted).",
        );
        let _ = writeln!(
            out,
            "ktasks_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
        help(
            &mut out,
            "ktasks_auth_failures_total",
            "counter",
            "Refused credentials, by reason.",
        );
        for (reason, n) in AUTH_REASONS.iter().zip(&self.auth_failures) {
            let _ = writeln!(
                out,
                "ktasks_auth_failures_total{{reason=\"{reason}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let commits = store.commit_stats();
        help(
            &mut out,
            "ktasks_db_commits_total",
            "counter",
            "Committed write transactions (group commits).",
        );
        let _ = writeln!(out, "ktasks_db_commits_total {}", commits.count());
        help(
            &mut out,
            "ktasks_db_commit_batch_size",
            "histogram",
            "Writes per committed transaction.",
        );
        commits.render(&mut out, "ktasks_db_commit_batch_size", "", 1.0);
        help(
            &mut out,
            "ktasks_webhook_deliveries_total",
            "counter",
            "Webhook delivery attempts, by result: delivered, retried (failed, another attempt scheduled), failed (the last attempt failed).",
        );
        for (result, n) in [
            ("delivered", &webhooks.delivered),
            ("retried", &webhooks.retried),
            ("failed", &webhooks.failed),
        ] {
            let _ = writeln!(
                out,
                "ktasks_webhook_deliveries_total{{result=\"{result}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        help(
            &mut out,
            "ktasks_webhook_queue_depth",
            "gauge",
            "Webhook events waiting for delivery, counted at most once a second.",
        );
        let _ = writeln!(
            out,
            "ktasks_webhook_queue_depth {}",
            webhooks.queue_depth.load(Ordering::Relaxed).max(0)
        );
        help(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let _ = writeln!(out, "process_resident_memory_bytes {}", resident_bytes());
        help(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
        );
        let started = self.started.duration_since(UNIX_EPOCH).unwrap_or_default();
        let _ = writeln!(
            out,
            "process_start_time_seconds {}",
            format_float(started.as_secs_f64())
        );
        out
    }
}

/// Serves `GET /metrics` on its own listener (`server.metrics_bind`) until the runtime ends: no
/// token, no rate limit, nothing else (404). Bind it where only Prometheus reaches.
pub async fn serve(listener: tokio::net::TcpListener, app: std::sync::Arc<crate::app::App>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Method, Response, StatusCode, header};

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    // A scraper needs one connection; a few spare, and no more, whoever else reaches the port.
    let connections = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    loop {
        let Ok(permit) = std::sync::Arc::clone(&connections).acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let app = std::sync::Arc::clone(&app);
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let app = std::sync::Arc::clone(&app);
            async move {
                let found = request.uri().path() == "/metrics";
                let (status, body) = match (found, request.method()) {
                    (true, &Method::GET | &Method::HEAD) => (
                        StatusCode::OK,
                        app.metrics.render(&app.store, &app.webhook_stats),
                    ),
                    (true, _) => (StatusCode::METHOD_NOT_ALLOWED, "use GET\n".to_string()),
                    (false, _) => (StatusCode::NOT_FOUND, "only /metrics is here\n".to_string()),
                };
                let mut response = Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() = status;
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    response
                        .headers_mut()
                        .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
                }
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

/// The process's resident set, from `VmRSS` in `/proc/self/status` (0 where there is none).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// The batch-size histogram the store keeps (`Store::commit_stats`).
pub fn commit_histogram() -> Histogram {
    Histogram::new(&BATCH_BOUNDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_they_do_not_pass() {
        let histogram = Histogram::new(&BATCH_BOUNDS);
        for value in [1, 2, 3, 64, 65, 1000] {
            histogram.observe(value);
        }
        let mut out = String::new();
        histogram.render(&mut out, "h", "", 1.0);
        assert!(out.contains("h_bucket{le=\"1.0\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"2.0\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"4.0\"} 3\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"64.0\"} 4\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"128.0\"} 5\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"+Inf\"} 6\n"), "{out}");
        assert!(out.contains("h_sum 1135.0\nh_count 6\n"), "{out}");
    }

    #[test]
    fn unknown_routes_methods_and_statuses_fold_into_fixed_labels() {
        let metrics = Metrics::new();
        let took = Duration::from_micros(300);
        let brew = Method::from_bytes(b"BREW").unwrap();
        metrics.record(&Method::GET, "/api/tasks/:id", 200, took);
        metrics.record(&brew, "-", 404, took);
        metrics.record(&Method::GET, "/no/such/pattern", 999, took);
        let before = metrics.requests.len();
        let counted: u64 = metrics
            .requests
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum();
        assert_eq!(counted, 3);
        let store = crate::store::open_temp().1;
        let text = metrics.render(&store, &crate::webhooks::Stats::default());
        assert!(text.contains(
            "ktasks_http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"404\"} 1\n"
        ));
        assert!(text.contains(
            "ktasks_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"other\"} 1\n"
        ));
        assert_eq!(metrics.requests.len(), before, "no slot is ever added");
        let route = metrics.index["/api/tasks/:id"];
        assert_eq!(metrics.durations[route].count(), 1);
        assert_eq!(
            metrics.durations[0].count(),
            2,
            "both unknown routes are `unmatched`"
        );
    }
}
