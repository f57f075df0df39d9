//! Connection defences and the failed-authentication limit, against the real server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::Env;

/// Reads until the server closes the connection; `Err` if it stays open past `limit`.
fn wait_for_close(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(received),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(received),
            Err(e) => return Err(format!("still open after {limit:?}: {e}")),
        }
    }
}

#[test]
fn a_slow_header_client_is_cut_off() {
    let env = Env::new();
    let server = env.serve_with_config("[server]\nheader_read_timeout_secs = 1\n");
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    wait_for_close(&mut stream, Duration::from_secs(10)).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "closed before the timeout"
    );
    // Meanwhile the server serves others.
    assert_eq!(server.request("GET", "/healthz", None, None).status, 200);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let env = Env::new();
    let server = env.serve_with_config("[server]\nheader_read_timeout_secs = 1\n");
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let received = wait_for_close(&mut stream, Duration::from_secs(10)).unwrap();
    let text = String::from_utf8(received).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[test]
fn oversized_or_too_many_headers_get_431() {
    let env = Env::new();
    let server = env.serve();
    let big = "a".repeat(20_000);
    let response = server
        .try_raw("GET", "/healthz", &[("X-Big", &big)], b"")
        .unwrap();
    assert_eq!(response.status, 431);
    let names: Vec<String> = (0..150).map(|i| format!("X-Header-{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let response = server.try_raw("GET", "/healthz", &many, b"").unwrap();
    assert_eq!(response.status, 431);
    assert_eq!(server.request("GET", "/healthz", None, None).status, 200);
}

#[test]
fn three_hundred_idle_connections_do_not_block_a_new_client() {
    let env = Env::new();
    let server = env.serve();
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    let started = Instant::now();
    let response = server.request("GET", "/healthz", None, None);
    assert_eq!(response.status, 200);
    // Generous: this guards against being queued behind the idle ones (10 s header timeout).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    drop(idle);
}

#[test]
fn guessing_tokens_is_limited_per_client_address() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve_with_config("[rate_limit]\nfailed_auth_per_minute = 3\n");
    // Requests without credentials are not guesses.
    for _ in 0..5 {
        server
            .request("GET", "/api/me", None, None)
            .assert_error(401, "unauthorized");
    }
    assert_eq!(server.get("/api/me", &token).status, 200);
    for _ in 0..3 {
        let guess = ktasks::token::generate().unwrap();
        server
            .get("/api/me", &guess)
            .assert_error(401, "unauthorized");
    }
    let blocked = server.get("/api/me", &token);
    blocked.assert_error(429, "rate_limited");
    let retry_after: u64 = blocked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    // Public routes stay open.
    assert_eq!(server.request("GET", "/healthz", None, None).status, 200);
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_address_counts() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve_with_config(
        "[server]\ntrust_proxy_headers = true\n[rate_limit]\nfailed_auth_per_minute = 2\n",
    );
    let guess = format!("Bearer {}", ktasks::token::generate().unwrap());
    for _ in 0..2 {
        let headers = [
            ("Authorization", guess.as_str()),
            ("X-Forwarded-For", "203.0.113.9, 198.51.100.7"),
        ];
        server
            .raw("GET", "/api/me", &headers, b"")
            .assert_error(401, "unauthorized");
    }
    let valid = format!("Bearer {token}");
    let from_guesser = [
        ("Authorization", valid.as_str()),
        ("X-Real-IP", "198.51.100.7"),
    ];
    server
        .raw("GET", "/api/me", &from_guesser, b"")
        .assert_error(429, "rate_limited");
    let from_someone_else = [
        ("Authorization", valid.as_str()),
        ("X-Real-IP", "198.51.100.8"),
    ];
    assert_eq!(
        server.raw("GET", "/api/me", &from_someone_else, b"").status,
        200
    );
}
