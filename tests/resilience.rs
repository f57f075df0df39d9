//! Connection defences and the failed-authentication limit, against the real server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{Env, connect_from};

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
    // From another address than the client below: one address holds at most 64 connections.
    let idle = connect_from("127.0.0.2", server.addr, 300);
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

/// A slow-body attack from one address (issue 16): 200 connections announce a 1 MB body and
/// trickle it. Past 64 they are refused at once with 429; the rest are cut at the body deadline
/// with 408; meanwhile a client from another address is answered at once, writes included.
#[test]
fn slow_bodies_are_cut_at_the_deadline_and_cannot_crowd_out_other_clients() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve_with_config("[server]\nbody_read_timeout_secs = 2\n");
    let started = Instant::now();
    let slow: Vec<std::thread::JoinHandle<(String, Duration)>> = connect_from(
        "127.0.0.2",
        server.addr,
        200,
    )
    .into_iter()
    .map(|mut stream| {
        std::thread::spawn(move || {
            let head = "POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                                Content-Length: 1000000\r\n\r\n{\"ti";
            let _ = stream.write_all(head.as_bytes());
            let received = wait_for_close(&mut stream, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("a slow body was never cut: {e}"));
            let text = String::from_utf8_lossy(&received).to_string();
            (text, started.elapsed())
        })
    })
    .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = Instant::now();
    assert_eq!(server.request("GET", "/healthz", None, None).status, 200);
    let me = server.get_ok("/api/me", &token);
    assert!(me["user"]["id"].is_string());
    let space = server.personal_space(&token);
    let project = server.first_project(&token, &space);
    server.create(
        "/api/tasks",
        &token,
        &serde_json::json!({"projectId": project, "title": "still served"}),
    );
    assert!(
        before.elapsed() < Duration::from_secs(2),
        "a normal client waited {:?}",
        before.elapsed()
    );
    let (mut timed_out, mut refused, mut closed) = (0, 0, 0);
    for handle in slow {
        let (answer, closed_after) = handle.join().unwrap();
        if answer.starts_with("HTTP/1.1 408") {
            assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
            assert!(
                (Duration::from_millis(1500)..Duration::from_secs(8)).contains(&closed_after),
                "cut after {closed_after:?}, the deadline is 2 s"
            );
            timed_out += 1;
        } else if answer.starts_with("HTTP/1.1 429") {
            assert!(answer.contains("\"code\":\"rate_limited\""), "{answer}");
            refused += 1;
        } else {
            // Past 64 refusals being answered at once, an over-limit connection is closed
            // without an answer, so that refusing cannot use up descriptors.
            assert_eq!(answer, "", "a slow body got {answer:?}");
            assert!(
                closed_after < Duration::from_secs(2),
                "closed after {closed_after:?}"
            );
            closed += 1;
        }
    }
    assert_eq!(
        timed_out, 64,
        "every admitted slow body was cut at the deadline"
    );
    assert_eq!(
        refused + closed,
        136,
        "every connection past 64 was refused"
    );
    assert!(refused >= 64, "only {refused} refusals were answered 429");
}

/// A body that keeps coming, but slower than `body_min_bytes_per_sec`, is cut after the grace.
#[test]
fn a_body_slower_than_the_minimum_rate_is_cut_before_the_deadline() {
    let env = Env::new();
    let server = env
        .serve_with_config("[server]\nbody_read_timeout_secs = 60\nbody_min_bytes_per_sec = 100\n");
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .write_all(b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            // 10 bytes a second: a tenth of the minimum.
            while stream.write_all(b"          ").is_ok() {
                std::thread::sleep(Duration::from_secs(1));
                if started.elapsed() > Duration::from_secs(30) {
                    break;
                }
            }
        })
    };
    let received = wait_for_close(&mut stream, Duration::from_secs(30)).unwrap();
    let text = String::from_utf8_lossy(&received).to_string();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let elapsed = started.elapsed();
    assert!(
        (Duration::from_secs(4)..Duration::from_secs(20)).contains(&elapsed),
        "cut after {elapsed:?}; the grace is 5 s"
    );
    drop(stream);
    writer.join().unwrap();
}

#[test]
fn guessing_tokens_is_limited_per_client_address_but_never_refuses_a_valid_token() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let mut server = env.serve_with_config("[rate_limit]\nfailed_auth_per_minute = 20\n");
    // Requests without credentials are not guesses.
    for _ in 0..5 {
        server
            .request("GET", "/api/me", None, None)
            .assert_error(401, "unauthorized");
    }
    // 25 bad tokens from one address (some invented, some mistyped): the first 20 are 401, then
    // the address's failures are refused with 429...
    let mut statuses = Vec::new();
    for i in 0..25 {
        let guess = if i % 2 == 0 {
            ktasks::token::generate().unwrap()
        } else {
            format!("{}0000", &token[..token.len() - 4])
        };
        let response = server.get("/api/me", &guess);
        if response.status == 429 {
            let retry_after: u64 = response.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry_after));
        }
        statuses.push(response.status);
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    // ...but a good token from that same address is served, every time.
    for _ in 0..3 {
        assert_eq!(server.get("/api/me", &token).status, 200);
    }
    // Public routes stay open.
    assert_eq!(server.request("GET", "/healthz", None, None).status, 200);
    // Every refusal is in the log with the address and the reason, never the token.
    let log = server.stop();
    assert!(
        log.contains("authentication refused: reason=unknown client=127.0.0.1"),
        "{log}"
    );
    assert!(
        log.contains("reason=bad_checksum client=127.0.0.1"),
        "{log}"
    );
}

#[test]
fn refused_authentications_are_logged_with_address_and_reason() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    env.user("free@example.com", "pro");
    let revoked = env.token("ann@example.com", &[]);
    let downgraded = env.token("free@example.com", &[]);
    let list = env.cli_ok(&["token", "list", "--json"]);
    let ids: Vec<String> = serde_json::from_str::<serde_json::Value>(&list)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    env.cli_ok(&["token", "revoke", &ids[0]]);
    env.cli_ok(&[
        "user",
        "set-plan",
        "--email",
        "free@example.com",
        "--plan",
        "free",
    ]);
    let mut server = env.serve();
    server
        .get("/api/me", &revoked)
        .assert_error(401, "unauthorized");
    server
        .get("/api/me", &downgraded)
        .assert_error(403, "plan_required");
    server
        .get("/api/me", "kt_not-a-token")
        .assert_error(401, "unauthorized");
    let log = server.stop();
    for expected in [
        format!("reason=revoked client=127.0.0.1 token_id={}", ids[0]),
        format!("reason=plan client=127.0.0.1 token_id={}", ids[1]),
        "reason=malformed client=127.0.0.1 token_id=-".to_string(),
    ] {
        assert!(log.contains(&expected), "{expected} not in {log}");
    }
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_address_counts_and_spoofing_changes_nothing() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let mut server = env.serve_with_config(
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[rate_limit]\nfailed_auth_per_minute = 2\n",
    );
    let guess = format!("Bearer {}", ktasks::token::generate().unwrap());
    let guess_from = |forwarded: &str| {
        let headers = [
            ("Authorization", guess.as_str()),
            ("X-Forwarded-For", forwarded),
        ];
        server.raw("GET", "/api/me", &headers, b"").status
    };
    // The client prepended a lie; the proxy appended the address it saw, 198.51.100.7.
    assert_eq!(guess_from("203.0.113.9, 198.51.100.7"), 401);
    assert_eq!(guess_from("1.1.1.1, 198.51.100.7"), 401);
    assert_eq!(
        guess_from("198.51.100.7"),
        429,
        "the third failure from 198.51.100.7"
    );
    assert_eq!(
        guess_from("198.51.100.8"),
        401,
        "someone else behind the proxy"
    );
    // The guesser's own good token still works.
    let valid = format!("Bearer {token}");
    let headers = [
        ("Authorization", valid.as_str()),
        ("X-Forwarded-For", "198.51.100.7"),
    ];
    assert_eq!(server.raw("GET", "/api/me", &headers, b"").status, 200);
    assert!(server.stop().contains("client=198.51.100.7"));
}

#[test]
fn a_spoofed_forwarded_header_from_an_untrusted_peer_changes_nothing() {
    let env = Env::new();
    let mut server = env.serve_with_config("[rate_limit]\nfailed_auth_per_minute = 2\n");
    let guess = format!("Bearer {}", ktasks::token::generate().unwrap());
    // Each request claims another address; the peer (127.0.0.1) is still the one counted.
    let statuses: Vec<u16> = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .iter()
        .map(|claimed| {
            let headers = [
                ("Authorization", guess.as_str()),
                ("X-Forwarded-For", claimed),
                ("X-Real-IP", claimed),
            ];
            server.raw("GET", "/api/me", &headers, b"").status
        })
        .collect();
    assert_eq!(statuses, [401, 401, 429]);
    let log = server.stop();
    assert!(!log.contains("203.0.113."), "{log}");
}

#[test]
fn the_old_proxy_switch_is_refused_with_its_replacement_named() {
    let env = Env::new();
    std::fs::write(
        env.dir.path().join("old.toml"),
        "[server]\ntrust_proxy_headers = true\n",
    )
    .unwrap();
    let output = env.cli(&["--config", "old.toml", "user", "list"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.trusted_proxies"), "{stderr}");
}

/// Behind a trusted proxy every client shares the proxy's connections, so the per-address cap
/// applies to each forwarded client's requests in flight instead.
#[test]
fn behind_a_trusted_proxy_each_client_has_its_own_cap_on_requests_in_flight() {
    let env = Env::new();
    let server = env.serve_with_config(
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\nmax_connections_per_ip = 2\nbody_read_timeout_secs = 3\n",
    );
    let slow_body = |client: &str| {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        let head = format!(
            "POST /api/tasks HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {client}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream
    };
    let held: Vec<TcpStream> = (0..2).map(|_| slow_body("198.51.100.7")).collect();
    std::thread::sleep(Duration::from_millis(300));
    let headers = [("X-Forwarded-For", "198.51.100.7")];
    let third = server.try_raw("GET", "/healthz", &headers, b"").unwrap();
    assert_eq!(third.status, 429, "{}", third.body);
    assert_eq!(third.header("retry-after"), Some("1"));
    let someone_else = [("X-Forwarded-For", "198.51.100.8")];
    assert_eq!(
        server.raw("GET", "/healthz", &someone_else, b"").status,
        200
    );
    // The proxy itself is not capped: many connections from it are fine.
    let from_proxy: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    assert_eq!(server.request("GET", "/healthz", None, None).status, 200);
    drop(from_proxy);
    // Once the slow ones are cut (408), the client has its places back.
    for mut stream in held {
        let answer = wait_for_close(&mut stream, Duration::from_secs(10)).unwrap();
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"));
    }
    assert_eq!(server.raw("GET", "/healthz", &headers, b"").status, 200);
}
