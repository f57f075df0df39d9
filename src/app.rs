//! `App` holds what every request needs (store, limiter, config); `App::handle` is the pipeline,
//! top to bottom:
//!
//! 1. `router::route` -> 404 / 405 before anything else;
//! 2. the body is read within its limits (`BodyLimits`: 413 past its size, 408 when too slow);
//! 3. on one blocking thread of its lane (`respond`; GETs, sign-ins and writes have separate
//!    lanes, see `Lanes`), by audience: public and web routes to their dispatchers; API routes
//!    `admit` (auth 401, rate limit) then `answer` (429, plan and scope 403, the handler through
//!    `api::dispatch_read` with the request's `Snapshot`, or `api::dispatch_write` with its
//!    `Writes`, whose commit `run_guarded` waits for after the thread is given back);
//! 4. the `Reply` or `Error` becomes the HTTP response here, with the rate-limit headers, and one
//!    log line is written.
//!
//! The service never fails: every error, a panic in a handler included, becomes a JSON response.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri};

use crate::api;
use crate::auth::{self, Principal};
use crate::config::Config;
use crate::error::Error;
use crate::ratelimit::{Decision, RateLimiter};
use crate::reply::Reply;
use crate::router::{self, ApiRoute, Route, WebRoute};
use crate::store::users::Plan;
use crate::store::{Commit, Snapshot, Store, Writes};
use crate::token::TokenHash;

/// Threads for requests that may write. While one commits (an fsync), the others wait for the
/// writer connection, so writes must not share threads with reads. Writes do not hold their thread
/// until the commit (`store::Writes`), so the count hardly matters (docs/performance.md).
pub const WRITE_LANE_THREADS: usize = 8;
pub const MAX_READ_LANE_THREADS: usize = 8;

/// The server's read-only database connections (`Store::open_with_readers`), so that no request
/// waits for one: a read-lane thread keeps one between snapshots and may check out a second (a
/// settings page reads outside any snapshot), and every thread of the other lanes may hold one.
pub const READER_CONNECTIONS: u32 =
    (2 * MAX_READ_LANE_THREADS + WRITE_LANE_THREADS + PASSWORD_LANE_THREADS) as u32;

/// Threads for GET requests: one more than the cores, at most `MAX_READ_LANE_THREADS`. A read
/// never waits for a commit, so more threads than cores only add wake-ups and context switches
/// (docs/performance.md).
pub fn read_lane_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    (cores + 1).min(MAX_READ_LANE_THREADS)
}

/// Threads for sign-ins: Argon2 takes tens of milliseconds of CPU and 19 MiB each, so at most
/// this many run at once, on threads of their own; a flood of sign-ins queues here instead of
/// taking the threads API writes need.
pub const PASSWORD_LANE_THREADS: usize = 2;

/// The pools of blocking threads `respond` runs on: GETs on `reads`, sign-ins on `passwords`,
/// everything else on `writes` (sized for the different ways they wait, above). Handles of
/// runtimes used only for their blocking pools.
pub struct Lanes {
    pub reads: tokio::runtime::Handle,
    pub writes: tokio::runtime::Handle,
    pub passwords: tokio::runtime::Handle,
}

pub struct App {
    pub store: Store,
    /// Token lookups, valid while the database's `auth_epoch` is unchanged (see `auth`).
    pub token_cache: auth::TokenCache,
    pub limiter: RateLimiter<TokenHash>,
    /// Refused tokens per client address key (`net::client_key`; `None` when
    /// `rate_limit.failed_auth_per_minute` is 0).
    pub failed_auth: Option<RateLimiter<IpAddr>>,
    /// Sign-ins on the web pages, per email and per client address.
    pub login_throttle: crate::web::LoginThrottle,
    /// Tokens minted on the settings page, waiting for the page view that shows them once.
    pub new_tokens: crate::web::ShownOnce<String>,
    /// Webhook secrets made on the webhooks page (a new webhook's, a rotated one), the same way.
    pub new_webhook_secrets: crate::web::ShownOnce<crate::web::NewSecret>,
    /// Webhook deliveries by outcome and the queue depth (`webhooks::Dispatcher`).
    pub webhook_stats: crate::webhooks::Stats,
    /// Requests, durations and refusals for `GET /metrics` (`server.metrics_bind`).
    pub metrics: crate::metrics::Metrics,
    /// API write requests so far: the webhook dispatcher paces itself by their rate, so that
    /// writes under load do not pay for deliveries.
    pub api_writes: std::sync::atomic::AtomicU64,
    /// `Idempotency-Key`s whose first request is running.
    pub idempotency: crate::idempotency::InFlight,
    /// Requests in flight per client behind a trusted proxy (`server.max_connections_per_ip`).
    proxied: Arc<crate::net::ClientCounts>,
    pub config: Config,
    /// How the server's URLs begin (for `Location` and `Link`).
    pub site: Site,
    /// `/api/openapi.json` and `/developers`, rendered once.
    pub openapi: Bytes,
    pub developers: Bytes,
    rate_limit_policy: HeaderValue,
    body_limits: crate::body::BodyLimits,
    lanes: Lanes,
}

/// A routed request with its body read: what handlers see. Buildable in tests without a socket.
#[derive(Debug)]
pub struct ApiRequest {
    pub route: Route,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The client's address: the peer, or behind a trusted proxy the address it forwarded (`net`).
    pub client_ip: IpAddr,
}

/// What `respond` produced, plus what the response headers and the log line need.
struct Outcome {
    result: Result<Reply, Error>,
    decision: Option<Decision>,
    token_prefix: Option<String>,
    /// The `Token-Expires-At` header of a token that stops working (SPEC 11).
    token_ends_at: Option<HeaderValue>,
    /// What the request's writes wait for before it is answered (see `store::Writes`).
    commit: Option<Commit>,
    /// The request's `Idempotency-Key`, held in flight until the answer is built (after the
    /// commit).
    flight: Option<crate::idempotency::Flight>,
}

impl Outcome {
    fn reply(reply: Reply) -> Outcome {
        Outcome::reply_or_error(Ok(reply))
    }

    fn reply_or_error(result: Result<Reply, Error>) -> Outcome {
        Outcome {
            result,
            decision: None,
            token_prefix: None,
            token_ends_at: None,
            commit: None,
            flight: None,
        }
    }

    fn error(error: Error) -> Outcome {
        Outcome::reply_or_error(Err(error))
    }
}

pub use crate::error::HttpResponse;

impl App {
    pub fn new(store: Store, config: Config, lanes: Lanes) -> App {
        let limiter = RateLimiter::new(
            config.rate_limit.requests_per_minute,
            Duration::from_secs(60),
        );
        let document = crate::openapi::document();
        let openapi =
            Bytes::from(serde_json::to_vec_pretty(&document).expect("the document serializes"));
        let developers = Bytes::from(crate::developers::render(&document));
        let rate_limit_policy = rate_limit_policy(config.rate_limit.requests_per_minute);
        let failed_auth = (config.rate_limit.failed_auth_per_minute > 0).then(|| {
            RateLimiter::new(
                config.rate_limit.failed_auth_per_minute,
                Duration::from_secs(60),
            )
        });
        let body_limits = crate::body::BodyLimits::from_config(&config);
        let site = Site::new(&config);
        App {
            store,
            token_cache: auth::TokenCache::default(),
            limiter,
            failed_auth,
            login_throttle: crate::web::LoginThrottle::default(),
            new_tokens: crate::web::ShownOnce::default(),
            new_webhook_secrets: crate::web::ShownOnce::default(),
            webhook_stats: crate::webhooks::Stats::default(),
            metrics: crate::metrics::Metrics::new(),
            api_writes: std::sync::atomic::AtomicU64::new(0),
            idempotency: crate::idempotency::InFlight::default(),
            proxied: Arc::default(),
            config,
            openapi,
            developers,
            rate_limit_policy,
            body_limits,
            site,
            lanes,
        }
    }

    pub async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
        peer: IpAddr,
    ) -> HttpResponse {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let method = parts.method.clone();
        let routed = router::route(&method, parts.uri.path());
        let pattern = routed.as_ref().map_or("-", Route::pattern);
        let outcome = match routed {
            Err(error) => Outcome::error(error),
            Ok(route) => self.routed(route, parts, body, peer).await,
        };
        let response = build_response(
            outcome.result.as_ref(),
            outcome.decision,
            outcome.token_ends_at,
            &self.rate_limit_policy,
        );
        if let Err(Error::Internal(detail)) = &outcome.result {
            crate::log_error!("{method} {pattern}: {detail}");
        }
        let took = started.elapsed();
        self.metrics
            .record(&method, pattern, response.status().as_u16(), took);
        // Tenths of a millisecond as integers: cheaper than `{:.1}` of an f64.
        let tenths = (took.as_micros() + 50) / 100;
        crate::log_info!(
            "{method} {pattern} {} {}.{}ms token={}",
            response.status().as_u16(),
            tenths / 10,
            tenths % 10,
            outcome.token_prefix.as_deref().unwrap_or("-"),
        );
        response
    }

    /// A routed request: its client's place (behind a trusted proxy), its body, then its lane.
    async fn routed(
        self: &Arc<Self>,
        route: Route,
        parts: hyper::http::request::Parts,
        body: Incoming,
        peer: IpAddr,
    ) -> Outcome {
        if self.store.is_read_only() && parts.method != Method::GET && parts.method != Method::HEAD
        {
            return Outcome::reply_or_error(self.to_primary(&route, &parts.uri));
        }
        let server = &self.config.server;
        let client_ip = crate::net::client_address(&server.trusted_proxies, peer, &parts.headers);
        // Behind a trusted proxy every client shares the proxy's connections, so the
        // per-address cap of `server` is applied here instead, to requests in flight.
        let _place = if client_ip == peer {
            None
        } else {
            match self.proxied.open(client_ip, server.max_connections_per_ip) {
                Some(place) => Some(place),
                None => {
                    return Outcome::error(Error::RateLimited {
                        retry_after_secs: 1,
                    });
                }
            }
        };
        let body = if route.takes_body() {
            match crate::body::read_body(body, &self.body_limits).await {
                Ok(body) => body,
                Err(error) => return Outcome::error(error),
            }
        } else {
            Bytes::new()
        };
        let request = ApiRequest {
            route,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            client_ip,
        };
        let deadline = self.config.request_timeout();
        let app = Arc::clone(self);
        if request.route == Route::Web(WebRoute::Login) {
            // Refused sign-ins are answered here, without queueing behind password checks, and a
            // sign-in that waited past its deadline is dropped unchecked.
            if let Err(refused) = crate::web::admit_sign_in(self, &request) {
                return Outcome::reply(refused);
            }
            let queued = Instant::now();
            return run_guarded(&self.lanes.passwords, deadline, move || {
                if queued.elapsed() >= deadline {
                    return Outcome::error(Error::Unavailable(
                        "the request took too long; try again",
                    ));
                }
                app.respond(&request)
            })
            .await;
        }
        // An MCP request that can only read runs where GETs do: on a write-lane thread its
        // snapshots would each take a reader connection (and its page cache) of their own.
        let lane = if request.method == Method::GET
            || (request.route.is_mcp() && crate::mcp::reads_only(&request.body))
        {
            &self.lanes.reads
        } else {
            &self.lanes.writes
        };
        run_guarded(lane, deadline, move || app.respond(&request)).await
    }

    /// Everything after routing, on a blocking thread, by audience. An API read runs
    /// authentication and its handler in one `Snapshot`; an API write authenticates in a snapshot
    /// of its own, then writes through `Writes`, which leave their commits for `run_guarded` to
    /// wait for before the answer goes out (the thread is free meanwhile). The settings pages
    /// read and write the store directly: a page shows what it just wrote (a new token in the
    /// list), so its writes are committed before it reads.
    fn respond(&self, request: &ApiRequest) -> Outcome {
        let route = match &request.route {
            Route::Public(route) => {
                return Outcome::reply_or_error(api::dispatch_public(self, route));
            }
            Route::Web(route) => {
                return Outcome::reply_or_error(crate::web::dispatch(self, route, request));
            }
            Route::Api(route) => route,
        };
        // A read's writes are at most a token's `lastUsedAt`.
        let writes = self.store.deferred_writes();
        let mut outcome = match route {
            ApiRoute::Read(route) => self
                .store
                .snapshot(|snapshot| match self.admit(snapshot, request) {
                    Ok((principal, decision)) => {
                        self.answer(request, &writes, &principal, decision, || {
                            api::dispatch_read(&self.site, snapshot, &principal, route, request)
                        })
                    }
                    Err(refused) => Outcome::error(refused),
                })
                .unwrap_or_else(Outcome::error),
            ApiRoute::Write(route) => {
                self.api_writes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // The snapshot is for the token's lookup only: it ends before anything is written.
                let admitted = self
                    .store
                    .snapshot(|snapshot| self.admit(snapshot, request));
                match admitted {
                    Ok(Ok((principal, decision))) => {
                        let mut flight = None;
                        let mut outcome =
                            self.answer(request, &writes, &principal, decision, || {
                                // JSON-RPC has ids, not idempotency keys: a key on /mcp is
                                // ignored (holding the commit open for a whole MCP request, or
                                // replaying one protocol revision's answer to another, would
                                // do harm).
                                if request.route.is_mcp() {
                                    return api::dispatch_write(
                                        &self.site, &writes, &principal, route, request,
                                    );
                                }
                                crate::idempotency::run(
                                    &self.store,
                                    &self.idempotency,
                                    &writes,
                                    &principal,
                                    request,
                                    &mut flight,
                                    |writes| {
                                        api::dispatch_write(
                                            &self.site, writes, &principal, route, request,
                                        )
                                    },
                                )
                            });
                        outcome.flight = flight;
                        outcome
                    }
                    Ok(Err(error)) | Err(error) => Outcome::error(error),
                }
            }
        };
        outcome.commit = Some(writes.into_commit());
        outcome
    }

    /// A write on a read replica (SPEC 13): `307` to the same path and query on
    /// `server.primary_url` (the method and body are kept: the client sends them again there),
    /// or `503 read_only_replica` without one. Nothing of the request is looked at first, not
    /// even its token: the primary decides.
    fn to_primary(&self, route: &Route, uri: &hyper::Uri) -> Result<Reply, Error> {
        // A browser following a cross-origin 307 with a form would send `Origin: null` and no
        // cookie of the primary's: the page points to the primary instead.
        if let Route::Web(_) = route {
            return Ok(crate::web::replica_page(
                self.config.server.primary_url.as_deref(),
            ));
        }
        let Some(primary) = &self.config.server.primary_url else {
            return Err(Error::ReadOnlyReplica);
        };
        let target = format!(
            "{}{}",
            primary.trim_end_matches('/'),
            uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let body = serde_json::json!({
            "error": format!("this server is a read-only replica; send writes to {target}"),
            "code": "read_only_replica",
        });
        Ok(Reply::json(StatusCode::TEMPORARY_REDIRECT, &body)
            .with_header(header::LOCATION, &target))
    }

    /// Authentication (401) and the token's rate limit: who is asking, and the limit's decision.
    fn admit(
        &self,
        snapshot: &Snapshot<'_>,
        request: &ApiRequest,
    ) -> Result<(Principal, Decision), Error> {
        let now = Instant::now();
        let principal = auth::bearer_token(&request.headers)
            .and_then(|token| {
                let at = time::OffsetDateTime::now_utc();
                auth::authenticate(snapshot, &self.token_cache, token, at)
            })
            .map_err(|denied| self.refuse(request, denied, now))?;
        let decision = self.limiter.check(&principal.token_hash, now);
        Ok((principal, decision))
    }

    /// The token's use recorded (a stale `lastUsedAt`, through `writes`), then the limit (429),
    /// plan and scope (403) and `handle`; the answer carries the rate-limit headers whatever it
    /// is.
    fn answer(
        &self,
        request: &ApiRequest,
        writes: &Writes<'_>,
        principal: &Principal,
        decision: Decision,
        handle: impl FnOnce() -> Result<Reply, Error>,
    ) -> Outcome {
        // A replica writes nothing: its tokens' `lastUsedAt` is the primary's, and lags.
        let recorded = if self.store.is_read_only() {
            Ok(())
        } else {
            auth::record_use(writes, &self.token_cache, principal, request.client_ip)
        };
        let result = recorded
            .and_then(|()| self.authorize(principal, request, &decision))
            .and_then(|()| handle());
        if let Err(Error::PlanRequired) = &result {
            self.metrics.auth_failure("plan");
            crate::log_warn!(
                "authentication refused: reason=plan client={} token_id={}",
                request.client_ip,
                principal.token.id
            );
        }
        Outcome {
            result,
            decision: Some(decision),
            token_prefix: Some(principal.token.prefix.clone()),
            token_ends_at: principal.ends_at.clone(),
            commit: None,
            flight: None,
        }
    }

    fn authorize(
        &self,
        principal: &Principal,
        request: &ApiRequest,
        decision: &Decision,
    ) -> Result<(), Error> {
        if !decision.allowed {
            return Err(Error::RateLimited {
                retry_after_secs: decision.reset_after_secs(),
            });
        }
        if principal.user.plan == Plan::Free {
            return Err(Error::PlanRequired);
        }
        // MCP checks the scope per tool: a read token may list and call the read tools.
        if request.method != Method::GET && !principal.can_write() && !request.route.is_mcp() {
            return Err(Error::InsufficientScope(
                "this token is read-only; use a token with write scope",
            ));
        }
        Ok(())
    }

    /// The answer to a refused authentication. A presented credential that failed is logged
    /// (client address and reason, never the token) and counted against the client's address;
    /// past `rate_limit.failed_auth_per_minute` the address's failures get 429 instead of 401.
    /// Only failures are counted and refused: a valid token is authenticated before this limit
    /// is looked at, so no number of someone else's bad guesses from a shared address (a NAT,
    /// an untrusted proxy) can lock its owner out.
    fn refuse(&self, request: &ApiRequest, denied: auth::Denied, now: Instant) -> Error {
        let auth::Denied::Refused {
            refusal, token_id, ..
        } = &denied
        else {
            return denied.into_error();
        };
        if *refusal == auth::Refusal::Missing {
            return denied.into_error();
        }
        self.metrics.auth_failure(refusal.reason());
        crate::log_warn!(
            "authentication refused: reason={} client={} token_id={}",
            refusal.reason(),
            request.client_ip,
            token_id.as_deref().unwrap_or("-")
        );
        if let Some(limiter) = &self.failed_auth {
            let decision = limiter.check(&crate::net::client_key(request.client_ip), now);
            if !decision.allowed {
                return Error::RateLimited {
                    retry_after_secs: decision.reset_after_secs(),
                };
            }
        }
        denied.into_error()
    }

    /// The base for absolute URLs (see `Site::base_url`).
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        self.site.base_url(headers)
    }
}

/// What the API's handlers know of the server besides their request: how its URLs begin. (The
/// store reaches them only as the request's `Snapshot` or `Writes`.)
pub struct Site {
    public_url: Option<String>,
    /// Where webhooks may point (`webhooks.allow_http`, `webhooks.allow_private_targets`).
    pub webhook_targets: crate::webhooks::target::Rules,
}

impl Site {
    pub fn new(config: &Config) -> Site {
        Site {
            public_url: config.server.public_url.clone(),
            webhook_targets: crate::webhooks::target::Rules {
                allow_http: config.webhooks.allow_http,
                allow_private: config.webhooks.allow_private_targets,
            },
        }
    }

    /// Whether a present `Origin` is this server's (the settings pages' forms, and MCP's
    /// DNS-rebinding rule); no `Origin` passes.
    pub fn origin_is_ours(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return true;
        };
        let expected = self.base_url(headers);
        let expected_origin = expected
            .splitn(4, '/')
            .take(3)
            .collect::<Vec<_>>()
            .join("/");
        origin == expected_origin
    }

    /// The base for absolute URLs in `Location` and `Link`: `server.public_url`, else the
    /// request's `Host` (plain http: TLS is terminated by a proxy, which should set `public_url`).
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_string();
        }
        headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .filter(|host| !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic()))
            .map(|host| format!("http://{host}"))
            .unwrap_or_default()
    }
}

/// Runs `work` on a blocking thread of `lane`, then waits for the commit of its writes, all within
/// `deadline`. A panic becomes a 500 (logged with its message), a failed commit a 500 and an
/// overrun a 503; either way the server lives on and the client gets JSON.
async fn run_guarded(
    lane: &tokio::runtime::Handle,
    deadline: Duration,
    work: impl FnOnce() -> Outcome + Send + 'static,
) -> Outcome {
    let run = async {
        let mut outcome = match lane.spawn_blocking(work).await {
            Ok(outcome) => outcome,
            Err(join_error) => {
                return Outcome::error(Error::internal(format!(
                    "handler panicked: {}",
                    panic_message(join_error)
                )));
            }
        };
        if let Some(commit) = outcome.commit.take()
            && let Err(error) = commit.wait().await
        {
            outcome.result = Err(error);
        }
        outcome
    };
    match tokio::time::timeout(deadline, run).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => {
            crate::log_error!(
                "a request ran past its deadline of {} s",
                deadline.as_secs_f64()
            );
            Outcome::error(Error::Unavailable("the request took too long; try again"))
        }
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into()),
        Err(error) => error.to_string(),
    }
}

fn build_response(
    result: Result<&Reply, &Error>,
    decision: Option<Decision>,
    token_ends_at: Option<HeaderValue>,
    rate_limit_policy: &HeaderValue,
) -> HttpResponse {
    let mut response = match result {
        Ok(reply) => {
            let mut response = Response::new(Full::new(reply.body.clone()));
            *response.status_mut() = reply.status;
            let headers = response.headers_mut();
            if reply.status != StatusCode::NO_CONTENT && reply.status != StatusCode::NOT_MODIFIED {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(reply.content_type),
                );
            }
            for (name, value) in &reply.headers {
                headers.append(name.clone(), value.clone());
            }
            response
        }
        Err(error) => error.to_response(),
    };
    if let Some(decision) = decision {
        rate_limit_headers(response.headers_mut(), &decision, rate_limit_policy);
    }
    if let Some(ends_at) = token_ends_at {
        response.headers_mut().insert(TOKEN_EXPIRES_AT, ends_at);
    }
    response
}

// Built at compile time: `from_static` at run time would parse each name on every response.
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const TOKEN_EXPIRES_AT: HeaderName = HeaderName::from_static("token-expires-at");

/// The `RateLimit-Policy` value: the same on every response, so built once (`App::new`).
fn rate_limit_policy(requests_per_minute: u32) -> HeaderValue {
    HeaderValue::try_from(format!("\"default\";q={requests_per_minute};w=60"))
        .expect("a number is a valid header value")
}

fn rate_limit_headers(headers: &mut HeaderMap, decision: &Decision, policy: &HeaderValue) {
    let reset_in = decision.reset_after_secs();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let reset = now + decision.reset_after;
    let reset_at = reset.as_secs() + u64::from(reset.subsec_nanos() > 0);
    headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(decision.limit));
    headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(decision.remaining));
    headers.insert(X_RATELIMIT_RESET, HeaderValue::from(reset_at));
    headers.insert(RATELIMIT_POLICY, policy.clone());
    headers.insert(
        RATELIMIT,
        HeaderValue::try_from(format!("\"default\";r={};t={reset_in}", decision.remaining))
            .expect("numbers are valid header values"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_becomes_a_500_and_the_runtime_lives_on() {
        let lane = tokio::runtime::Handle::current();
        let outcome = run_guarded(&lane, Duration::from_secs(5), || panic!("boom")).await;
        let Err(Error::Internal(detail)) = outcome.result else {
            panic!("expected a 500")
        };
        assert!(detail.contains("boom"), "{detail}");
        let response = Error::internal(detail).to_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let fine = run_guarded(&lane, Duration::from_secs(5), || {
            Outcome::error(Error::NotFound)
        })
        .await;
        assert!(matches!(fine.result, Err(Error::NotFound)));
    }

    #[tokio::test]
    async fn a_handler_past_its_deadline_becomes_a_503() {
        let lane = tokio::runtime::Handle::current();
        let outcome = run_guarded(&lane, Duration::from_millis(20), || {
            std::thread::sleep(Duration::from_millis(200));
            Outcome::error(Error::NotFound)
        })
        .await;
        assert!(matches!(outcome.result, Err(Error::Unavailable(_))));
    }
}
