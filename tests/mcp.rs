//! `POST /mcp` (SPEC 14) over HTTP: the JSON-RPC layer's answers to good and bad messages per
//! protocol revision, the same security as `/api`, and, with the official Python SDK, a whole
//! session (ignored without it; `.ci/run` runs it).

use serde_json::{Value, json};

use crate::util::{Env, Response, Server, Team};

/// A JSON-RPC message to `/mcp` as `token`, with these extra headers.
fn send(server: &Server, token: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let auth = format!("Bearer {token}");
    let mut all = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    all.extend_from_slice(headers);
    server.raw("POST", "/mcp", &all, body.as_bytes())
}

/// A request (revision 2025-06-18) and its answer's JSON.
fn rpc(server: &Server, token: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let response = send(
        server,
        token,
        &[("MCP-Protocol-Version", "2025-06-18")],
        &body.to_string(),
    );
    assert_eq!(response.status, 200, "{method}: {}", response.body);
    let answer = response.json();
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], 7);
    answer
}

fn tool_names(answer: &Value) -> Vec<String> {
    answer["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_json_rpc_layer_answers_each_kind_of_message_as_the_spec_says() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve();

    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let answer = rpc(
            &server,
            &token,
            "initialize",
            json!({"protocolVersion": version, "capabilities": {},
                   "clientInfo": {"name": "test", "version": "1"}}),
        );
        assert_eq!(answer["result"]["protocolVersion"], version);
        assert_eq!(
            answer["result"]["capabilities"]["tools"]["listChanged"],
            false
        );
    }
    let newer = rpc(
        &server,
        &token,
        "initialize",
        json!({"protocolVersion": "2099-01-01"}),
    );
    assert_eq!(newer["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(
        rpc(&server, &token, "initialize", json!({}))["error"]["code"],
        -32602
    );
    assert_eq!(rpc(&server, &token, "ping", json!({}))["result"], json!({}));
    // The stateless revision's probe: "not found", so SDKs fall back to the handshake.
    assert_eq!(
        rpc(&server, &token, "server/discover", json!({}))["error"]["code"],
        -32601
    );
    assert_eq!(
        rpc(
            &server,
            &token,
            "tools/call",
            json!({"name": "no_such_tool"})
        )["error"]["code"],
        -32602
    );
    assert_eq!(
        rpc(
            &server,
            &token,
            "tools/call",
            json!({"name": "get_task", "arguments": [1]})
        )["error"]["code"],
        -32602
    );

    let notification = send(
        &server,
        &token,
        &[],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(notification.status, 202);
    assert!(notification.body.is_empty());

    /// Extra headers, the body, and the HTTP status and JSON-RPC error code it gets.
    type Refusal<'a> = (&'a [(&'a str, &'a str)], &'a str, u16, i64);
    let nine_pings = format!(
        "[{}]",
        [r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#; 9].join(",")
    );
    let refusals: [Refusal; 9] = [
        (&[], r#"{"jsonrpc":"2.0","id":1}"#, 200, -32600),
        (&[], &nine_pings, 400, -32600),
        (
            &[],
            r#"[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26"}}]"#,
            400,
            -32600,
        ),
        (&[], "{not json", 400, -32700),
        (
            &[],
            r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            200,
            -32600,
        ),
        (
            &[],
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            200,
            -32600,
        ),
        (
            &[],
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#,
            200,
            -32602,
        ),
        (
            &[("MCP-Protocol-Version", "1999-01-01")],
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            400,
            -32600,
        ),
        (
            &[("MCP-Protocol-Version", "2025-06-18")],
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            400,
            -32600,
        ),
    ];
    for (headers, body, status, code) in refusals {
        let response = send(&server, &token, headers, body);
        assert_eq!(response.status, status, "{body}: {}", response.body);
        assert_eq!(response.json()["error"]["code"], code, "{body}");
    }
    // A batch in the revision that had them: each request answered, the notification not.
    let batch = send(
        &server,
        &token,
        &[("MCP-Protocol-Version", "2025-03-26")],
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"b","method":"nope"}]"#,
    );
    assert_eq!(batch.status, 200, "{}", batch.body);
    let answers = batch.json();
    assert_eq!(answers.as_array().unwrap().len(), 2);
    assert_eq!(answers[0]["result"], json!({}));
    assert_eq!(answers[1]["id"], "b");
    assert_eq!(answers[1]["error"]["code"], -32601);

    let get = server.raw(
        "GET",
        "/mcp",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST"));
}

#[test]
fn mcp_has_the_security_of_the_api() {
    let team = Team::new();
    let server = &team.server;
    // No token, a bad one: 401 with the challenge, as on /api.
    let anonymous = server.raw(
        "POST",
        "/mcp",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.header("www-authenticate").is_some());
    // The rate limit counts it and says so.
    let listed = send(
        server,
        &team.owner,
        &[],
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    );
    assert!(listed.header("x-ratelimit-remaining").is_some());
    // DNS rebinding: an Origin that is not ours is refused.
    let foreign = send(
        server,
        &team.owner,
        &[("Origin", "http://evil.example")],
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    );
    assert_eq!(foreign.status, 403);

    // An Idempotency-Key means nothing to JSON-RPC: ignored, so two calls make two tasks.
    let create = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "create_task", "arguments": {"projectId": team.project, "title": "keyed"}}})
    .to_string();
    let ids: Vec<Value> = (0..2)
        .map(|_| {
            let response = send(
                server,
                &team.owner,
                &[
                    ("MCP-Protocol-Version", "2025-06-18"),
                    ("Idempotency-Key", "same"),
                ],
                &create,
            );
            assert_eq!(response.header("idempotent-replayed"), None);
            response.json()["result"]["structuredContent"]["id"].clone()
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    // Arguments a tool does not take are refused, as unknown fields are on /api.
    let extra = crate::bad_input::mcp_call_code(
        server,
        &team.owner,
        "delete_task",
        json!({"id": ids[0], "force": true}),
    );
    assert_eq!(extra.as_deref(), Some("unknown_field"));

    // A read token is offered the read tools; a write tool anyway is a tool error.
    let reader = team.env.token("owner@example.com", &["--read-only"]);
    let all = tool_names(&rpc(server, &team.owner, "tools/list", json!({})));
    let read = tool_names(&rpc(server, &reader, "tools/list", json!({})));
    assert_eq!(all.len(), 14, "{all:?}");
    assert_eq!(
        read,
        [
            "list_spaces",
            "list_members",
            "list_projects",
            "list_labels",
            "search_tasks",
            "get_task"
        ]
    );
    let code = crate::bad_input::mcp_call_code(
        server,
        &reader,
        "create_task",
        json!({"projectId": team.project, "title": "no"}),
    );
    assert_eq!(code.as_deref(), Some("insufficient_scope"));

    // Roles and space restrictions are the API's: 404 outside, 403 for a viewer's change.
    let task = team.task("the team's");
    let id = task["id"].as_str().unwrap();
    let outside =
        crate::bad_input::mcp_call_code(server, &team.outsider, "get_task", json!({"id": id}));
    assert_eq!(outside.as_deref(), Some("not_found"));
    let viewer = crate::bad_input::mcp_call_code(
        server,
        &team.viewer,
        "update_task",
        json!({"id": id, "title": "no"}),
    );
    assert_eq!(viewer.as_deref(), Some("forbidden"));
    assert_eq!(
        crate::bad_input::mcp_call_code(server, &team.owner, "get_task", json!({"id": id})),
        None
    );
    // A token restricted to another space of the owner's reaches nothing of the team's.
    let personal = server.personal_space(&team.owner);
    let slug = server.get_ok(&format!("/api/spaces/{personal}"), &team.owner)["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let restricted = team.env.token("owner@example.com", &["--space", &slug]);
    let code = crate::bad_input::mcp_call_code(server, &restricted, "get_task", json!({"id": id}));
    assert_eq!(code.as_deref(), Some("not_found"));
}

#[test]
fn older_revisions_get_what_they_know_and_results_match_the_api() {
    let team = Team::new();
    let server = &team.server;
    let task = team.task("shared");
    let id = task["id"].as_str().unwrap();

    let old = |method: &str, params: Value| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        send(
            server,
            &team.owner,
            &[("MCP-Protocol-Version", "2024-11-05")],
            &body.to_string(),
        )
        .json()
    };
    let tools = old("tools/list", json!({}));
    let first = &tools["result"]["tools"][0];
    assert!(first["inputSchema"].is_object());
    assert!(first.get("outputSchema").is_none() && first.get("annotations").is_none());
    let called = old(
        "tools/call",
        json!({"name": "get_task", "arguments": {"id": id}}),
    );
    assert!(called["result"].get("structuredContent").is_none());
    let text: Value =
        serde_json::from_str(called["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        text,
        server.get_ok(&format!("/api/tasks/{id}"), &team.owner)
    );

    // From 2025-06-18: the structured content is the API's JSON, and its schema is declared.
    let new = rpc(
        server,
        &team.owner,
        "tools/call",
        json!({"name": "get_task", "arguments": {"id": id}}),
    );
    assert_eq!(new["result"]["isError"], false);
    assert_eq!(
        new["result"]["structuredContent"],
        server.get_ok(&format!("/api/tasks/{id}"), &team.owner)
    );
    let listing = rpc(server, &team.owner, "tools/list", json!({}));
    let delete = listing["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "delete_task")
        .unwrap()
        .clone();
    assert_eq!(delete["annotations"]["destructiveHint"], true);
    assert_eq!(delete["outputSchema"]["type"], "object");
    let search = rpc(
        server,
        &team.owner,
        "tools/call",
        json!({"name": "search_tasks", "arguments": {"projectId": team.project, "limit": 1}}),
    );
    let page = &search["result"]["structuredContent"];
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page.get("nextCursor").is_some());
}

/// The official MCP Python SDK (`mcp` on PyPI) drives a whole session: initialize, list tools,
/// create / search / update / complete / delete a task, typed tool errors, and a read token's
/// narrower list (`tests/clients/mcp_client.py`).
#[test]
#[ignore = "needs the MCP Python SDK (KTASKS_MCP_PYTHON, or target/mcp-venv); `.ci/run` runs it"]
fn the_official_python_sdk_runs_a_whole_session() {
    let python = std::env::var("KTASKS_MCP_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/mcp-venv/bin/python").to_string()
    });
    let has_sdk = std::process::Command::new(&python)
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_sdk,
        "{python} cannot import mcp: pip install mcp (see .ci/run)"
    );
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let writer = env.token("ann@example.com", &[]);
    let reader = env.token("ann@example.com", &["--read-only"]);
    let server = env.serve();
    let project = server.first_project(&writer, &server.personal_space(&writer));
    let output = std::process::Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/mcp_client.py"
        ))
        .arg(format!("http://{}", server.addr))
        .args([&writer, &reader, &project])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("every check passed"), "{stdout}");
    eprintln!("{}", stdout.trim());
}

/// The stateless revision (2026-07-28): `server/discover` instead of `initialize`, and each
/// request's envelope (`params._meta`, and the headers that repeat it) checked in order.
#[test]
fn the_stateless_revision_checks_each_envelope() {
    let team = Team::new();
    let server = &team.server;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let call = |headers: &[(&str, &str)], method: &str, params: Value| {
        let body = json!({"jsonrpc": "2.0", "id": "s", "method": method, "params": params});
        send(server, &team.owner, headers, &body.to_string())
    };
    let stamped = |method: &'static str| {
        vec![
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", method),
        ]
    };

    let discover = call(
        &stamped("server/discover"),
        "server/discover",
        json!({"_meta": meta}),
    );
    assert_eq!(discover.status, 200, "{}", discover.body);
    let result = &discover.json()["result"];
    assert_eq!(result["resultType"], "complete");
    assert!(
        result["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );
    assert!(
        result["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25"))
    );

    let listed = call(&stamped("tools/list"), "tools/list", json!({"_meta": meta}));
    assert_eq!(
        listed.json()["result"]["tools"].as_array().unwrap().len(),
        14
    );

    let task = team.task("stateless");
    let id = task["id"].as_str().unwrap();
    let mut headers = stamped("tools/call");
    headers.push(("Mcp-Name", "get_task"));
    let got = call(
        &headers,
        "tools/call",
        json!({"_meta": meta, "name": "get_task", "arguments": {"id": id}}),
    );
    let result = &got.json()["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["structuredContent"]["id"], id);

    // Refusals, in the ladder's order, each with its status.
    /// Headers, method, params, and the HTTP status and JSON-RPC code they get.
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, Value, u16, i64);
    let cases: [Case; 5] = [
        (stamped("tools/list"), "tools/list", json!({}), 400, -32602),
        (
            vec![
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "tools/call"),
            ],
            "tools/list",
            json!({"_meta": meta}),
            400,
            -32020,
        ),
        (
            stamped("tools/call"),
            "tools/call",
            json!({"_meta": meta, "name": "get_task", "arguments": {"id": id}}),
            400,
            -32020,
        ),
        (
            vec![
                ("MCP-Protocol-Version", "2099-01-01"),
                ("Mcp-Method", "tools/list"),
            ],
            "tools/list",
            json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01",
                             "io.modelcontextprotocol/clientCapabilities": {}}}),
            400,
            -32022,
        ),
        (stamped("ping"), "ping", json!({"_meta": meta}), 404, -32601),
    ];
    for (headers, method, params, status, code) in cases {
        let response = call(&headers, method, params.clone());
        assert_eq!(
            response.status, status,
            "{method} {params}: {}",
            response.body
        );
        let error = &response.json()["error"];
        assert_eq!(error["code"], code, "{method} {params}");
        if code == -32022 {
            assert_eq!(error["data"]["supported"], json!(["2026-07-28"]));
        }
    }
}
