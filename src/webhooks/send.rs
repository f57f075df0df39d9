//! One delivery attempt: sign, resolve and check the target, connect to the checked address
//! (TLS with the original name), `POST`, read at most 64 KiB of the answer. Connections are kept
//! per webhook URL for the next attempt; redirects are never followed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use url::{Host, Url};

use super::target::{self, Rules};
use crate::store::webhooks::DueEvent;

/// Most of a response body read; the rest is not waited for.
pub const MAX_RESPONSE_READ: usize = 64 * 1024;
/// Most of a response body kept in the attempt's `error`.
pub const MAX_RESPONSE_KEPT: usize = 1024;
/// A kept connection unused this long is closed rather than reused.
const IDLE: Duration = Duration::from_secs(30);

/// A client connection to a checked address: sends one request at a time.
type Connection = SendRequest<Full<Bytes>>;

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// What one attempt came to.
#[derive(Debug)]
pub struct Sent {
    pub status: Option<StatusCode>,
    pub error: Option<String>,
    pub duration: Duration,
}

impl Sent {
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|status| status.is_success())
    }
}

pub struct Sender {
    rules: Rules,
    timeout: Duration,
    tls: tokio_rustls::TlsConnector,
    /// Idle connections by webhook URL, each made to an address that was checked.
    idle: Mutex<HashMap<String, Vec<(Connection, Instant)>>>,
    user_agent: HeaderValue,
}

impl Sender {
    pub fn new(rules: Rules, timeout: Duration) -> Sender {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Sender {
            rules,
            timeout,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            idle: Mutex::new(HashMap::new()),
            user_agent: HeaderValue::from_static(concat!("ktasks/", env!("CARGO_PKG_VERSION"))),
        }
    }

    /// One attempt at `event`, within the timeout.
    pub async fn send(&self, event: &DueEvent) -> Sent {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, self.attempt(event)).await;
        let (status, error) = match outcome {
            Ok(Ok((status, _))) if status.is_success() => (Some(status), None),
            Ok(Ok((status, body_start))) => {
                (Some(status), Some(body_start).filter(|b| !b.is_empty()))
            }
            Ok(Err(error)) => (None, Some(error)),
            Err(_) => (
                None,
                Some(format!("no answer within {} s", self.timeout.as_secs())),
            ),
        };
        Sent {
            status,
            error,
            duration: started.elapsed(),
        }
    }

    async fn attempt(&self, event: &DueEvent) -> Result<(StatusCode, String), String> {
        let url = Url::parse(&event.url).map_err(|e| format!("bad URL: {e}"))?;
        let (sender, response) = match self.take_idle(&event.url) {
            Some(mut kept) => match kept.send_request(self.request(&url, event)?).await {
                Ok(response) => (kept, response),
                // The receiver closed the kept connection as it was reused: once more on a new
                // one, which is no retry of a request the receiver saw.
                Err(error) if error.is_closed() || error.is_incomplete_message() => {
                    self.send_on_new_connection(&url, event).await?
                }
                Err(error) => return Err(format!("request failed: {error}")),
            },
            None => self.send_on_new_connection(&url, event).await?,
        };
        let status = response.status();
        let mut body = response.into_body();
        let mut kept = Vec::new();
        let mut read = 0;
        let mut whole = true;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("reading the answer failed: {e}"))?;
            if let Ok(data) = frame.into_data() {
                read += data.len();
                let room = MAX_RESPONSE_KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&data[..data.len().min(room)]);
                if read > MAX_RESPONSE_READ {
                    whole = false;
                    break;
                }
            }
        }
        // Only a connection whose answer was read to its end can carry the next request.
        if whole {
            self.keep_idle(&event.url, sender);
        }
        Ok((status, kept_text(&kept)))
    }

    async fn send_on_new_connection(
        &self,
        url: &Url,
        event: &DueEvent,
    ) -> Result<(Connection, hyper::Response<hyper::body::Incoming>), String> {
        let mut sender = self.connect(url).await?;
        let response = sender
            .send_request(self.request(url, event)?)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        Ok((sender, response))
    }

    fn request(&self, url: &Url, event: &DueEvent) -> Result<Request<Full<Bytes>>, String> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let signature = sign_all(&event.secrets, &event.id, timestamp, &event.payload)?;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => return Err("the URL has no host".into()),
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let header = |value: String| {
            HeaderValue::try_from(value).map_err(|_| "a header value is not valid".to_string())
        };
        Request::post(path)
            .header(HOST, header(host)?)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, self.user_agent.clone())
            .header(WEBHOOK_ID, header(event.id.clone())?)
            .header(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp))
            .header(WEBHOOK_SIGNATURE, header(signature)?)
            .body(Full::new(Bytes::from(event.payload.clone())))
            .map_err(|e| format!("cannot build the request: {e}"))
    }

    /// A new connection to a checked address of `url`'s host (the first that answers).
    async fn connect(&self, url: &Url) -> Result<Connection, String> {
        let addresses = target::resolve(url, self.rules).await?;
        let stream = connect_any(&addresses).await?;
        if url.scheme() == "https" {
            let name = match url.host() {
                Some(Host::Domain(name)) => {
                    rustls::pki_types::ServerName::try_from(name.trim_end_matches('.').to_string())
                        .map_err(|e| format!("not a TLS server name: {e}"))?
                }
                Some(Host::Ipv4(ip)) => {
                    rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from(ip).into())
                }
                Some(Host::Ipv6(ip)) => {
                    rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from(ip).into())
                }
                None => return Err("the URL has no host".into()),
            };
            let stream = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            handshake(TokioIo::new(stream)).await
        } else {
            handshake(TokioIo::new(stream)).await
        }
    }

    fn take_idle(&self, url: &str) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let kept = idle.get_mut(url)?;
        while let Some((sender, since)) = kept.pop() {
            if since.elapsed() < IDLE && sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    fn keep_idle(&self, url: &str, sender: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Stale entries of URLs no longer used are dropped as the map is touched.
        idle.retain(|_, kept| {
            kept.retain(|(sender, since)| since.elapsed() < IDLE && !sender.is_closed());
            !kept.is_empty()
        });
        idle.entry(url.to_string())
            .or_default()
            .push((sender, Instant::now()));
    }
}

async fn connect_any(addresses: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(error) => last = format!("cannot connect to {address}: {error}"),
        }
    }
    Err(last)
}

async fn handshake<T>(io: TokioIo<T>) -> Result<Connection, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the peer closes; nothing to report.
        let _ = connection.await;
    });
    Ok(sender)
}

/// The first `MAX_RESPONSE_KEPT` bytes as text, cut at a character boundary.
fn kept_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.trim_end_matches('\u{FFFD}').to_string()
}

/// A new secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the OS random source works");
    format!("whsec_{}", BASE64.encode(key))
}

/// `webhook-signature`: `v1,<base64 HMAC-SHA256>` per secret, space-separated. `Err` for a secret
/// that is not base64 (only a hand-edited database holds one).
pub fn sign_all(
    secrets: &[String],
    id: &str,
    timestamp: u64,
    body: &str,
) -> Result<String, String> {
    let signatures = secrets
        .iter()
        .map(|secret| Ok(format!("v1,{}", sign(secret, id, timestamp, body)?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(signatures.join(" "))
}

fn sign(secret: &str, id: &str, timestamp: u64, body: &str) -> Result<String, String> {
    let key = BASE64
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(|_| "the webhook's secret is not valid base64; rotate it".to_string())?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body.as_bytes());
    Ok(BASE64.encode(context.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_reference() {
        let secret = new_secret();
        assert!(
            secret.starts_with("whsec_") && secret.len() == 6 + 44,
            "{secret}"
        );
        let body = r#"{"type":"webhook.test","data":{}}"#;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let old = new_secret();
        let header = sign_all(&[secret.clone(), old.clone()], "msg_1", timestamp, body).unwrap();
        assert_eq!(header.split(' ').count(), 2);
        for key in [&secret, &old] {
            let webhook = standardwebhooks::Webhook::new(key).unwrap();
            let mut headers = hyper::HeaderMap::new();
            headers.insert("webhook-id", "msg_1".parse().unwrap());
            headers.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
            headers.insert("webhook-signature", header.parse().unwrap());
            webhook.verify(body.as_bytes(), &headers).unwrap();
        }
        let stranger = standardwebhooks::Webhook::new(&new_secret()).unwrap();
        let mut headers = hyper::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
        headers.insert("webhook-signature", header.parse().unwrap());
        assert!(stranger.verify(body.as_bytes(), &headers).is_err());
    }

    #[test]
    fn a_kept_body_is_cut_at_a_character() {
        let text = "é".repeat(MAX_RESPONSE_KEPT);
        let bytes = &text.as_bytes()[..MAX_RESPONSE_KEPT - 1];
        let kept = kept_text(bytes);
        assert!(kept.chars().all(|c| c == 'é'));
        assert!(kept.len() <= MAX_RESPONSE_KEPT);
    }
}
