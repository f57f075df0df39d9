//! `GET /metrics` on `server.metrics_bind` (SPEC 12), read with an outside parser
//! (`prometheus-parse`): the counts match the requests made, and no traffic grows the number of
//! series past the fixed label sets.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use prometheus_parse::{Scrape, Value};
use serde_json::json;

use crate::util::{Env, Server};

/// Where the server said it serves metrics.
fn metrics_address(server: &Server) -> SocketAddr {
    // The log is read on a thread of its own: the line may still be on its way.
    crate::util::wait_until(std::time::Duration::from_secs(10), || {
        server.log().contains("metrics at http://")
    });
    let log = server.log();
    log.split("metrics at http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no metrics line in the log: {log}"))
        .parse()
        .unwrap()
}

/// `request` (`METHOD /path`) to the metrics listener; the whole answer.
fn ask(address: SocketAddr, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{request} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// One scrape: the raw text and the parsed samples, keyed by name and sorted labels.
fn scrape(server: &Server) -> (String, BTreeMap<String, Value>) {
    let response = ask(metrics_address(server), "GET /metrics");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    // hyper sends a fixed-length body here; a chunked one would need decoding.
    assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
    // Every line is a comment or `name{labels} value`: nothing the parser might skip quietly.
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
    }
    let parsed = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let mut samples = BTreeMap::new();
    for sample in parsed.samples {
        let mut labels: Vec<String> = sample
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        labels.sort();
        let key = format!("{}{{{}}}", sample.metric, labels.join(","));
        assert!(
            samples.insert(key.clone(), sample.value).is_none(),
            "{key} twice"
        );
    }
    (body.to_string(), samples)
}

fn counter(samples: &BTreeMap<String, Value>, key: &str) -> f64 {
    match samples.get(key) {
        Some(Value::Counter(n) | Value::Gauge(n) | Value::Untyped(n)) => *n,
        other => panic!(
            "{key}: {other:?} in {:#?}",
            samples.keys().collect::<Vec<_>>()
        ),
    }
}

/// The `+Inf` bucket of a histogram: its count.
fn histogram_count(samples: &BTreeMap<String, Value>, key: &str) -> f64 {
    match samples.get(key) {
        Some(Value::Histogram(buckets)) => {
            let mut last = 0.0;
            for bucket in buckets {
                assert!(bucket.count >= last, "{key}: buckets are cumulative");
                last = bucket.count;
            }
            buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .unwrap()
                .count
        }
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn metrics_count_what_was_asked_and_their_series_stay_bounded() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve_with_config(
        "[server]\nmetrics_bind = \"127.0.0.1:0\"\n[rate_limit]\nrequests_per_minute = 100000\n",
    );
    let space = server.personal_space(&token);
    let project = server.first_project(&token, &space);
    for _ in 0..7 {
        assert_eq!(server.get("/api/me", &token).status, 200);
    }
    for i in 0..3 {
        server.create(
            "/api/tasks",
            &token,
            &json!({"projectId": project, "title": format!("t{i}")}),
        );
    }
    let unknown = ktasks::token::generate().unwrap();
    for _ in 0..2 {
        assert_eq!(server.get("/api/me", &unknown).status, 401);
    }
    let mut forged = token.clone();
    forged.replace_range(
        forged.len() - 1..,
        if token.ends_with('0') { "1" } else { "0" },
    );
    assert_eq!(server.get("/api/me", &forged).status, 401);
    let set_plan = |plan| {
        env.cli_ok(&[
            "user",
            "set-plan",
            "--email",
            "ann@example.com",
            "--plan",
            plan,
        ])
    };
    set_plan("free");
    assert_eq!(server.get("/api/me", &token).status, 403);
    set_plan("pro");

    let (text, samples) = scrape(&server);
    let requests = |method: &str, route: &str, status: u16| {
        counter(
            &samples,
            &format!("ktasks_http_requests_total{{method={method},route={route},status={status}}}"),
        )
    };
    assert_eq!(requests("GET", "/api/me", 200), 7.0, "{text}");
    assert_eq!(requests("POST", "/api/tasks", 201), 3.0);
    assert_eq!(requests("GET", "/api/me", 401), 3.0);
    assert_eq!(requests("GET", "/api/me", 403), 1.0);
    assert_eq!(
        histogram_count(
            &samples,
            "ktasks_http_request_duration_seconds{route=/api/me}"
        ),
        7.0 + 3.0 + 1.0
    );
    for (reason, count) in [
        ("unknown", 2.0),
        ("bad_checksum", 1.0),
        ("plan", 1.0),
        ("revoked", 0.0),
    ] {
        let key = format!("ktasks_auth_failures_total{{reason={reason}}}");
        assert_eq!(counter(&samples, &key), count, "{key}");
    }
    let commits = counter(&samples, "ktasks_db_commits_total{}");
    assert!(commits >= 3.0, "three creates at least: {commits}");
    assert_eq!(
        histogram_count(&samples, "ktasks_db_commit_batch_size{}"),
        commits
    );
    assert_eq!(counter(&samples, "ktasks_rate_limited_total{}"), 0.0);
    assert_eq!(counter(&samples, "ktasks_webhook_queue_depth{}"), 0.0);
    assert_eq!(
        counter(
            &samples,
            "ktasks_webhook_deliveries_total{result=delivered}"
        ),
        0.0
    );
    assert!(counter(&samples, "process_resident_memory_bytes{}") > 1e6);
    let started = counter(&samples, "process_start_time_seconds{}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(started > now - 600.0 && started <= now, "{started}");

    // Distinct paths, ids and methods make no new series: labels are route patterns and fixed
    // sets, never what the client sent. A first round makes the series of each shape of request
    // (a 404 of an unknown path, of an unknown task, a 400, a 405 for an unknown method); a
    // thousand more distinct ones of the same shapes add none.
    let client = server.client();
    let auth = format!("Bearer {token}");
    let send = |i: usize| {
        let path = match i % 4 {
            0 => format!("/no/such/thing/{i}"),
            1 => format!("/api/tasks/{}", ktasks::store::new_id()),
            2 => format!("/api/projects/{i}?x={i}"),
            _ => format!("/%{i:x}"),
        };
        let method = if i % 10 < 2 {
            format!("BREW{i}")
        } else {
            "GET".into()
        };
        client
            .try_raw(&method, &path, &[("Authorization", &auth)], b"")
            .unwrap();
    };
    (0..40).for_each(send);
    let (_, warmed) = scrape(&server);
    (40..1040).for_each(send);
    let (text, after) = scrape(&server);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        warmed.keys().collect::<Vec<_>>(),
        "1,000 distinct requests added series:\n{text}"
    );
    assert_eq!(
        counter(
            &after,
            "ktasks_http_requests_total{method=GET,route=unmatched,status=404}"
        ),
        // The GETs of unknown paths (`/no/such/...` and `/%...`), each counted once.
        (0..1040)
            .filter(|i| i % 10 >= 2 && (i % 4 == 0 || i % 4 == 3))
            .count() as f64,
        "{text}"
    );
    assert!(!text.contains("/no/such"), "no path is a label");
}

#[test]
fn only_metrics_is_served_there_and_without_a_token() {
    let env = Env::new();
    let server = env.serve_with_config("[server]\nmetrics_bind = \"127.0.0.1:0\"\n");
    let address = metrics_address(&server);
    for (request, status) in [
        ("GET /metrics", "200"),
        ("GET /api/me", "404"),
        ("POST /metrics", "405"),
    ] {
        let response = ask(address, request);
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "{request}: {response}"
        );
    }
    // The API's listener does not serve it.
    assert_eq!(server.request("GET", "/metrics", None, None).status, 404);
}
