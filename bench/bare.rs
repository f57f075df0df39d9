//! The ceiling for `bench/run.sh`: a bare hyper server answering every request with a fixed JSON
//! body, on the same runtime, connection settings and response type as ktasks.
//! Usage: bare ADDR (prints `listening on http://ADDR` when ready).

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, header};
use hyper_util::rt::{TokioIo, TokioTimer};

const BODY: &[u8] =
    br#"{"id":"01a21edd-ad00-7b1c-8e2f-0a1b2c3d4e5f","title":"Launch the site","priority":"high"}"#;

#[tokio::main]
async fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&address).await.expect("bind");
    eprintln!(
        "listening on http://{}",
        listener.local_addr().expect("address")
    );
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_request| async {
                let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                Ok::<_, Infallible>(response)
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
