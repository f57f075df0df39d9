//! Tokens, bearer authentication, plans, scopes and the rate limit, over HTTP.

use serde_json::json;

use crate::util::{Env, database_bytes};

#[test]
fn minted_tokens_have_the_documented_format_and_work() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let output = env.cli(&[
        "token",
        "create",
        "--user",
        "ann@example.com",
        "--name",
        "Zapier",
    ]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.lines().next().unwrap();
    assert_eq!(stdout, format!("{token}\n"), "the token is alone on stdout");
    assert_eq!(token.len(), 43);
    assert!(token.starts_with("kt_"));
    assert!(
        token[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert!(ktasks::token::is_well_formed(token), "checksum matches");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("will not be shown again"), "{stderr}");

    let server = env.serve();
    let me = server.get("/api/me", token);
    assert_eq!(me.status, 200, "{}", me.body);
    let me = me.json();
    assert_eq!(me["user"]["email"], "ann@example.com");
    assert_eq!(me["user"]["plan"], "pro");
    assert_eq!(me["token"]["name"], "Zapier");
    assert_eq!(me["token"]["prefix"], &token[..8]);
    assert_eq!(me["token"]["scope"], "write");
    assert_eq!(me["token"]["expiresAt"], serde_json::Value::Null);
}

#[test]
fn the_plaintext_token_is_never_stored_or_logged() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let mut server = env.serve();
    assert_eq!(server.get("/api/me", &token).status, 200);
    assert_eq!(server.get("/api/spaces", &token).status, 200);
    let bytes = database_bytes(&env.db());
    assert!(!bytes.is_empty());
    let secret_part = &token[3..35];
    assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    assert!(
        !bytes
            .windows(secret_part.len())
            .any(|w| w == secret_part.as_bytes())
    );
    // And the hash is what is stored.
    let hash = ktasks::token::hash(&token);
    assert!(bytes.windows(32).any(|w| w == hash));
    // Request lines are written in batches; stopping the server flushes them.
    let log = server.stop();
    assert!(
        log.contains(&token[..8]),
        "the log names the token by prefix"
    );
    assert!(!log.contains(secret_part), "the log mentions the token");
}

#[test]
fn free_plan_cannot_mint_and_is_refused_after_a_downgrade() {
    let env = Env::new();
    env.user("free@example.com", "free");
    let output = env.cli(&[
        "token",
        "create",
        "--user",
        "free@example.com",
        "--name",
        "x",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("free plan"), "{stderr}");

    env.user("pro@example.com", "pro");
    let token = env.token("pro@example.com", &[]);
    let server = env.serve();
    assert_eq!(server.get("/api/me", &token).status, 200);
    env.cli_ok(&[
        "user",
        "set-plan",
        "--email",
        "pro@example.com",
        "--plan",
        "free",
    ]);
    let refused = server.get("/api/me", &token);
    refused.assert_error(403, "plan_required");
    assert!(refused.header("x-ratelimit-limit").is_some());
    env.cli_ok(&[
        "user",
        "set-plan",
        "--email",
        "pro@example.com",
        "--plan",
        "team",
    ]);
    assert_eq!(server.get("/api/me", &token).status, 200);
}

#[test]
fn every_unauthorized_case_is_401_with_www_authenticate() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let revoked = env.token("ann@example.com", &[]);
    let expired = env.token("ann@example.com", &["--expires-in-days", "1"]);
    let list = env.cli_ok(&["token", "list", "--json"]);
    let tokens: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id_of = |secret: &str| {
        tokens
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["prefix"] == secret[..8])
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    env.cli_ok(&["token", "revoke", &id_of(&revoked)]);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute(
        "UPDATE api_tokens SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = ?1",
        [id_of(&expired)],
    )
    .unwrap();
    drop(conn);

    let mut bad_checksum = token.clone().into_bytes();
    bad_checksum[42] = if bad_checksum[42] == b'0' { b'1' } else { b'0' };
    let bad_checksum = String::from_utf8(bad_checksum).unwrap();
    // Well-formed (checksum right) but never minted.
    let unknown = ktasks::token::generate().unwrap();

    let server = env.serve();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing header", None),
        ("other scheme", Some(format!("Basic {token}"))),
        ("malformed", Some("Bearer kt_not-a-token".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("bad checksum", Some(format!("Bearer {bad_checksum}"))),
        ("unknown", Some(format!("Bearer {unknown}"))),
        ("revoked", Some(format!("Bearer {revoked}"))),
        ("expired", Some(format!("Bearer {expired}"))),
    ];
    for (case, authorization) in cases {
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|a| ("Authorization", a.as_str()))
            .collect();
        let response = server.raw("GET", "/api/me", &headers, b"");
        response.assert_error(401, "unauthorized");
        assert_eq!(
            response.header("www-authenticate"),
            Some("Bearer"),
            "{case}"
        );
    }
    assert_eq!(server.get("/api/me", &token).status, 200);
}

#[test]
fn read_only_tokens_cannot_write() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &["--read-only"]);
    let server = env.serve();
    let me = server.get("/api/me", &token);
    assert_eq!(me.json()["token"]["scope"], "read");
    assert_eq!(server.get("/api/spaces", &token).status, 200);
    let refused = server.post(
        "/api/spaces",
        &token,
        &json!({"name": "Team", "slug": "team"}),
    );
    refused.assert_error(403, "insufficient_scope");
    assert_eq!(
        server
            .get("/api/spaces", &token)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing created"
    );
}

#[test]
fn a_token_revoked_by_the_cli_is_refused_on_the_next_request() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let other = env.token("ann@example.com", &[]);
    let server = env.serve();
    let me = server.get("/api/me", &token).json();
    assert_eq!(server.get("/api/me", &token).status, 200);
    let id = me["token"]["id"].as_str().unwrap();
    env.cli_ok(&["token", "revoke", id]);
    server
        .get("/api/me", &token)
        .assert_error(401, "unauthorized");
    server
        .get("/api/spaces", &token)
        .assert_error(401, "unauthorized");
    assert_eq!(
        server.get("/api/me", &other).status,
        200,
        "other tokens unaffected"
    );
    // Revoking twice is harmless and the token stays dead.
    env.cli_ok(&["token", "revoke", id]);
    server
        .get("/api/me", &token)
        .assert_error(401, "unauthorized");
}

#[test]
fn last_used_at_is_recorded() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let list = || -> serde_json::Value {
        serde_json::from_str(&env.cli_ok(&["token", "list", "--json"])).unwrap()
    };
    assert_eq!(list()[0]["lastUsedAt"], serde_json::Value::Null);
    let server = env.serve();
    assert_eq!(server.get("/api/me", &token).status, 200);
    let first = list()[0]["lastUsedAt"].as_str().unwrap().to_string();
    assert!(first.ends_with('Z') && first.len() == 24, "{first}");
    // Within the minute, further requests do not rewrite it.
    assert_eq!(server.get("/api/me", &token).status, 200);
    assert_eq!(list()[0]["lastUsedAt"].as_str().unwrap(), first);
}

#[test]
fn the_101st_request_in_a_minute_is_rate_limited() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let second = env.token("ann@example.com", &[]);
    let server = env.serve();
    for i in 0..100 {
        let response = server.get("/api/me", &token);
        assert_eq!(response.status, 200, "request {i}: {}", response.body);
        assert_eq!(response.header("x-ratelimit-limit"), Some("100"));
        assert_eq!(
            response.header("x-ratelimit-remaining"),
            Some((99 - i).to_string().as_str())
        );
        assert_eq!(
            response.header("ratelimit-policy"),
            Some("\"default\";q=100;w=60")
        );
    }
    let limited = server.get("/api/me", &token);
    limited.assert_error(429, "rate_limited");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    let reset: u64 = limited
        .header("x-ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(reset >= now && reset <= now + 61, "reset {reset} now {now}");
    let ratelimit = limited.header("ratelimit").unwrap();
    assert!(ratelimit.starts_with("\"default\";r=0;t="), "{ratelimit}");
    let t: u64 = ratelimit.rsplit("t=").next().unwrap().parse().unwrap();
    assert_eq!(t, retry_after);
    // A second token has its own window.
    let other = server.get("/api/me", &second);
    assert_eq!(other.status, 200);
    assert_eq!(other.header("x-ratelimit-remaining"), Some("99"));
}

#[test]
fn the_rate_limit_is_configurable() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve_with_config("[rate_limit]\nrequests_per_minute = 3\n");
    for _ in 0..3 {
        assert_eq!(server.get("/api/me", &token).status, 200);
    }
    let limited = server.get("/api/me", &token);
    limited.assert_error(429, "rate_limited");
    assert_eq!(
        limited.header("ratelimit-policy"),
        Some("\"default\";q=3;w=60")
    );
}
