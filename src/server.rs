//! The accept loop: connection limits, HTTP/1.1 timeouts, graceful shutdown.
//!
//! `run` takes a bound listener and a shutdown future, so tests can bind port 0 and the binary can
//! pass a signal. Each connection holds a semaphore permit: at `server.max_connections` the loop
//! stops accepting and new clients wait in the kernel's backlog instead of exhausting file
//! descriptors. One client address (an IPv6 /64) may hold at most `server.max_connections_per_ip`
//! of them (trusted proxies excepted): past it, a new connection is answered 429 and closed, so
//! one client cannot take every permit. On shutdown the loop stops accepting, in-flight requests get
//! `server.shutdown_grace_secs` to finish, then the WAL is checkpointed.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::app::App;
use crate::error::Error;
use crate::net::ClientCounts;

/// Over-limit connections being answered 429 at once (each for at most a second).
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

pub async fn run(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let config = app.config.server.clone();
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.header_read_timeout_secs))
        .max_header_size(config.max_header_bytes)
        .max_headers(config.max_headers)
        .keep_alive(true);

    let per_client = Arc::new(ClientCounts::default());
    // Refusals answered gracefully at once; past this many, an over-limit connection is just
    // closed, so refusing cannot itself use up file descriptors.
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let sweeper = tokio::spawn(sweep_rate_limits(Arc::clone(&app)));
    let dispatcher = crate::webhooks::Dispatcher::start(Arc::clone(&app));
    let read_only = app.store.is_read_only();
    if read_only {
        crate::log_info!(
            "read-only replica: answering reads; writes go to {}",
            app.config
                .server
                .primary_url
                .as_deref()
                .unwrap_or("no primary (503 read_only_replica)")
        );
    }
    // A replica's checkpoints are the primary's (or LiteFS's) business.
    let checkpointer = match read_only {
        true => None,
        false => match app
            .store
            .start_checkpointer(app.config.database.autocheckpoint)
        {
            Ok(checkpointer) => checkpointer,
            Err(error) => {
                crate::log_warn!("checkpoints stay on the writer: {error:?}");
                None
            }
        },
    };
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: wait a moment instead of spinning or dying.
                    crate::log_warn!("accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = if crate::net::is_trusted(&config.trusted_proxies, peer.ip()) {
            None
        } else {
            match per_client.open(peer.ip(), config.max_connections_per_ip) {
                Some(slot) => Some(slot),
                None => {
                    if let Ok(refusal) = Arc::clone(&refusals).try_acquire_owned() {
                        refuse_connection(stream, config.max_connections_per_ip, refusal);
                    }
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let service = service_fn(move |request| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.handle(request, peer.ip()).await) }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Errors here are clients going away or breaking HTTP: nothing to answer.
            let _ = connection.await;
            drop(slot);
            drop(permit);
        });
    }
    sweeper.abort();
    drop(listener);

    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let started = Instant::now();
    crate::log_info!(
        "shutting down: finishing in-flight requests (up to {} s)",
        grace.as_secs()
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        crate::log_warn!("grace period over; closing the remaining connections");
    }
    // Undelivered events stay pending for the next start.
    let _ = tokio::task::spawn_blocking(move || dispatcher.stop()).await;
    if let Some(checkpointer) = checkpointer {
        let _ = tokio::task::spawn_blocking(move || checkpointer.stop()).await;
    }
    // With checkpoints left to Litestream, the WAL is its to fold back; a replica writes nothing.
    if app.config.database.autocheckpoint && !read_only {
        let store_app = Arc::clone(&app);
        match tokio::task::spawn_blocking(move || store_app.store.checkpoint()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => crate::log_warn!("WAL checkpoint on shutdown failed: {error:?}"),
            Err(error) => crate::log_warn!("WAL checkpoint on shutdown failed: {error}"),
        }
    }
    crate::log_info!(
        "stopped after {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    crate::log::flush();
}

/// Answers a connection over its client's limit with a 429 and closes it: the answer, then our
/// end shut, then whatever the client still sends read and dropped until it closes too (closing
/// with its request unread would reset the connection and lose the answer). At most a second:
/// such a connection holds no permit, only its descriptor, that long.
fn refuse_connection(
    mut stream: tokio::net::TcpStream,
    max: usize,
    refusal: tokio::sync::OwnedSemaphorePermit,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let response = Error::TooManyConnections { max }.to_http1();
    tokio::spawn(async move {
        let answer = async {
            stream.write_all(&response).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, std::io::Error>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
        drop(refusal);
    });
}

/// Once per rate-limit window: reclaims the windows of idle tokens (and the other in-memory
/// throttles) and prunes `Idempotency-Key` answers older than 24 hours.
async fn sweep_rate_limits(app: Arc<App>) {
    let mut interval = tokio::time::interval(app.limiter.window());
    loop {
        interval.tick().await;
        let now = Instant::now();
        app.limiter.sweep(now);
        if let Some(failed_auth) = &app.failed_auth {
            failed_auth.sweep(now);
        }
        app.login_throttle.sweep(now);
        app.new_tokens.sweep();
        app.new_webhook_secrets.sweep();
        if app.store.is_read_only() {
            continue;
        }
        let pruning = Arc::clone(&app);
        match tokio::task::spawn_blocking(move || crate::idempotency::prune(&pruning.store)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => crate::log_warn!("pruning idempotency keys failed: {error:?}"),
            Err(error) => crate::log_warn!("pruning idempotency keys failed: {error}"),
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers now, and returns a future that resolves on either.
/// Installing before the server announces itself means a signal sent right after start-up is
/// never lost to the default action (which would kill the process with no clean shutdown).
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
