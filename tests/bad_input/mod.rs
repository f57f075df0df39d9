//! A table of malformed requests: each gets the right 4xx and code, and afterwards the data is
//! exactly as before (a full listing compared before and after).

use serde_json::{Value, json};

use crate::util::{Server, Team};

mod cases;

use cases::{new_task_cases, query_and_size_cases, space_and_project_cases, task_change_cases};

/// Everything every user can see: spaces, their projects and labels, every project's tasks.
fn full_listing(server: &Server, tokens: &[&str]) -> Value {
    let mut listing = Vec::new();
    for token in tokens {
        let spaces = server.get_ok("/api/spaces?limit=200", token);
        for space in spaces.as_array().unwrap() {
            let id = space["id"].as_str().unwrap();
            let projects = server.get_ok(&format!("/api/projects?spaceId={id}&limit=200"), token);
            let labels = server.get_ok(&format!("/api/labels?spaceId={id}&limit=200"), token);
            let mut tasks = Vec::new();
            for project in projects.as_array().unwrap() {
                let project_id = project["id"].as_str().unwrap();
                tasks.push(server.get_ok(
                    &format!("/api/tasks?projectId={project_id}&limit=200"),
                    token,
                ));
            }
            listing.push(
                json!({"space": space, "projects": projects, "labels": labels, "tasks": tasks}),
            );
        }
    }
    Value::Array(listing)
}

pub(super) struct Case {
    method: &'static str,
    path: String,
    token: String,
    content_type: &'static str,
    body: String,
    status: u16,
    code: &'static str,
}

/// A team, a task of the owner's and one of an outsider's, and the outsider's first status.
pub(super) struct Fixture {
    pub(super) team: Team,
    pub(super) task_id: String,
    pub(super) task_path: String,
    pub(super) other_task: Value,
    pub(super) other_status: String,
}

impl Fixture {
    fn new() -> Fixture {
        let team = Team::new();
        let server = &team.server;
        let task = server.create(
            "/api/tasks",
            &team.owner,
            &json!({"projectId": team.project, "title": "existing", "labels": ["keep"], "assignees": [team.member_id]}),
        );
        let task_id = task["id"].as_str().unwrap().to_string();
        let other_task = server.create(
            "/api/tasks",
            &team.outsider,
            &json!({"projectId": team.other_project, "title": "theirs"}),
        );
        let other_status = server.get_ok(
            &format!("/api/projects/{}", team.other_project),
            &team.outsider,
        )["statuses"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        Fixture {
            task_path: format!("/api/tasks/{task_id}"),
            team,
            task_id,
            other_task,
            other_status,
        }
    }

    pub(super) fn json(
        &self,
        method: &'static str,
        path: &str,
        token: &str,
        body: Value,
        status: u16,
        code: &'static str,
    ) -> Case {
        Case {
            method,
            path: path.to_string(),
            token: token.to_string(),
            content_type: "application/json",
            body: body.to_string(),
            status,
            code,
        }
    }

    /// A request of the owner's with a body as given, sent with `content_type`.
    pub(super) fn raw(
        &self,
        method: &'static str,
        path: &str,
        content_type: &'static str,
        body: &str,
        status: u16,
        code: &'static str,
    ) -> Case {
        Case {
            method,
            path: path.to_string(),
            token: self.team.owner.clone(),
            content_type,
            body: body.to_string(),
            status,
            code,
        }
    }

    /// A valid new task in the owner's project, with `extra`'s fields added or replaced.
    pub(super) fn new_task(&self, extra: Value) -> Value {
        let mut body = json!({"projectId": self.team.project, "title": "t"});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    }

    /// The owner's project's task list with `query` added.
    pub(super) fn list(&self, query: &str) -> String {
        format!("/api/tasks?projectId={}&{query}", self.team.project)
    }
}

/// Sends every case of `cases`: each must get its status and code, and afterwards every user's
/// data must be exactly as before.
fn refused_and_unchanged(cases: fn(&Fixture) -> Vec<Case>) {
    let f = Fixture::new();
    let server = &f.team.server;
    let tokens = [f.team.owner.as_str(), f.team.outsider.as_str()];
    let before = full_listing(server, &tokens);
    let cases = cases(&f);
    let mut failures = Vec::new();
    for case in &cases {
        let auth = format!("Bearer {}", case.token);
        let mut headers = vec![("Authorization", auth.as_str())];
        let body = if case.body == "null" {
            ""
        } else {
            case.body.as_str()
        };
        if !body.is_empty() || case.method == "POST" {
            headers.push(("Content-Type", case.content_type));
        }
        let response = server.raw(case.method, &case.path, &headers, body.as_bytes());
        let code = serde_json::from_str::<Value>(&response.body)
            .ok()
            .map(|b| b["code"].clone());
        if response.status != case.status || code != Some(json!(case.code)) {
            let shown: String = case.body.chars().take(80).collect();
            failures.push(format!(
                "{} {} {shown}: want {} {}, got {} {}",
                case.method, case.path, case.status, case.code, response.status, response.body
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        full_listing(server, &tokens),
        before,
        "a refused request changed the data"
    );
}

#[test]
fn malformed_spaces_and_projects() {
    refused_and_unchanged(space_and_project_cases);
}

#[test]
fn malformed_new_tasks() {
    refused_and_unchanged(new_task_cases);
}

#[test]
fn malformed_task_changes() {
    refused_and_unchanged(task_change_cases);
}

#[test]
fn malformed_queries_and_oversized_bodies() {
    refused_and_unchanged(query_and_size_cases);
}

/// The table stays broad: a case removed by mistake shows here.
#[test]
fn the_table_covers_at_least_forty_requests() {
    let f = Fixture::new();
    let groups: [fn(&Fixture) -> Vec<Case>; 4] = [
        space_and_project_cases,
        new_task_cases,
        task_change_cases,
        query_and_size_cases,
    ];
    let total: usize = groups.iter().map(|cases| cases(&f).len()).sum();
    assert!(total >= 40, "{total} cases");
}

/// A tool call through `POST /mcp` (protocol 2025-06-18) as `token`: the `code` of its tool
/// error, or `None` when it succeeded.
pub(crate) fn mcp_call_code(
    server: &Server,
    token: &str,
    tool: &str,
    arguments: Value,
) -> Option<String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": arguments}});
    let auth = format!("Bearer {token}");
    let response = server.raw(
        "POST",
        "/mcp",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("MCP-Protocol-Version", "2025-06-18"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(response.status, 200, "{tool}: {}", response.body);
    let result = &response.json()["result"];
    assert!(
        result.is_object(),
        "{tool}: not a tool result: {}",
        response.body
    );
    if result["isError"] != json!(true) {
        return None;
    }
    let error: Value =
        serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    Some(error["code"].as_str().unwrap().to_string())
}

/// The same bad input through MCP's tools gets the same error code as through `/api` (SPEC 14:
/// one code path), and changes nothing either. Every JSON-object case of the task tables maps
/// to a tool: a new task to `create_task`, a change to `update_task`, a task list to
/// `search_tasks`.
#[test]
fn the_same_bad_input_through_mcp_gets_the_same_codes() {
    let f = Fixture::new();
    let server = &f.team.server;
    let tokens = [f.team.owner.as_str(), f.team.outsider.as_str()];
    let before = full_listing(server, &tokens);
    let mut compared = 0;
    let mut failures = Vec::new();
    let cases: Vec<Case> = [
        new_task_cases(&f),
        task_change_cases(&f),
        query_and_size_cases(&f),
    ]
    .into_iter()
    .flatten()
    .collect();
    for case in &cases {
        // Too large for `/api` is too large for `/mcp` too: refused before JSON-RPC (413).
        if case.code == "payload_too_large" {
            continue;
        }
        let body = serde_json::from_str::<Value>(&case.body).ok();
        let (tool, arguments) = match (case.method, body) {
            ("POST", Some(Value::Object(body)))
                if case.path == "/api/tasks" && case.content_type == "application/json" =>
            {
                ("create_task", Value::Object(body))
            }
            ("PATCH", Some(Value::Object(mut body)))
                if case.path.starts_with("/api/tasks/")
                    && case.content_type == "application/json" =>
            {
                let id = case.path.trim_start_matches("/api/tasks/");
                body.insert("id".into(), json!(id));
                ("update_task", Value::Object(body))
            }
            ("GET", _) if case.path.starts_with("/api/tasks?") => {
                let query = case.path.split_once('?').unwrap().1;
                let mut arguments = serde_json::Map::new();
                let mut expressible = true;
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    // A repeated or undecodable parameter has no JSON-object twin.
                    match ktasks::query::percent_decode(value) {
                        Some(value) if !arguments.contains_key(name) => {
                            arguments.insert(name.to_string(), json!(value));
                        }
                        _ => expressible = false,
                    }
                }
                if !expressible {
                    continue;
                }
                ("search_tasks", Value::Object(arguments))
            }
            _ => continue,
        };
        compared += 1;
        let code = mcp_call_code(server, &case.token, tool, arguments.clone());
        if code.as_deref() != Some(case.code) {
            failures.push(format!(
                "{tool} {arguments}: /api says {}, MCP says {code:?}",
                case.code
            ));
        }
    }
    assert!(compared >= 20, "only {compared} cases map to a tool");
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        full_listing(server, &tokens),
        before,
        "a refused tool call changed the data"
    );
}
