//! A webhook receiver for the tests: a small hyper server on 127.0.0.1 that records every request
//! and answers as told (a status, a body, a delay, a `Location`).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn id(&self) -> &str {
        self.header("webhook-id")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap().to_string()
    }

    /// Checks the signature with the Standard Webhooks reference library.
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        let webhook = standardwebhooks::Webhook::new(secret).map_err(|e| e.to_string())?;
        webhook
            .verify(&self.body, &self.headers)
            .map_err(|e| e.to_string())
    }
}

/// A webhook of the token's personal space sending `events` to `url`: returns the space's first
/// project and the webhook's secret.
pub fn personal_webhook(
    server: &crate::util::Server,
    token: &str,
    url: &str,
    events: Value,
) -> (String, String) {
    let space = server.personal_space(token);
    let project = server.first_project(token, &space);
    let created = server.create(
        "/api/webhooks",
        token,
        &serde_json::json!({"spaceId": space, "url": url, "events": events}),
    );
    let secret = created["secret"].as_str().unwrap().to_string();
    (project, secret)
}

struct State {
    received: Mutex<Vec<Received>>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    body: Mutex<Bytes>,
}

pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`
    pub url: String,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let state = Arc::new(State {
            received: Mutex::new(Vec::new()),
            status: AtomicU16::new(200),
            delay_ms: AtomicU64::new(0),
            body: Mutex::new(Bytes::from_static(b"ok")),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(listener, serving, stopped));
        });
        Receiver {
            url,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// What every later request is answered with.
    pub fn answer(&self, status: u16, body: &[u8]) {
        self.state.status.store(status, Ordering::SeqCst);
        *self.state.body.lock().unwrap() = Bytes::copy_from_slice(body);
    }

    pub fn delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests arrived (panics after `timeout`).
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let ok = crate::util::wait_until(timeout, || self.received().len() >= count);
        let received = self.received();
        assert!(
            ok,
            "wanted {count} deliveries within {timeout:?}, got {}: {:?}",
            received.len(),
            received.iter().map(|r| r.event_type()).collect::<Vec<_>>()
        );
        received
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = &mut stopped => return,
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let state = Arc::clone(&state);
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    state.received.lock().unwrap().push(Received {
                        path: parts.uri.path().to_string(),
                        headers: parts.headers,
                        body,
                    });
                    let delay = state.delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    let status = state.status.load(Ordering::SeqCst);
                    let mut response = Response::new(Full::new(state.body.lock().unwrap().clone()));
                    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                    if (300..400).contains(&status) {
                        response
                            .headers_mut()
                            .insert("location", "/elsewhere".parse().unwrap());
                    }
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
