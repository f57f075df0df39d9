//! A table of malformed requests: each gets the right 4xx and code, and afterwards the data is
//! exactly as before (a full listing compared before and after).

use serde_json::{Value, json};

use crate::util::{Server, Team};

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

struct Case {
    method: &'static str,
    path: String,
    token: String,
    content_type: &'static str,
    body: String,
    status: u16,
    code: &'static str,
}

#[test]
fn malformed_requests_are_refused_and_change_nothing() {
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
    let tokens = [team.owner.as_str(), team.outsider.as_str()];
    let before = full_listing(server, &tokens);

    let json_case = |method: &'static str,
                     path: &str,
                     token: &str,
                     body: Value,
                     status: u16,
                     code: &'static str| Case {
        method,
        path: path.to_string(),
        token: token.to_string(),
        content_type: "application/json",
        body: body.to_string(),
        status,
        code,
    };
    let raw_case = |method: &'static str,
                    path: &str,
                    content_type: &'static str,
                    body: &str,
                    status: u16,
                    code: &'static str| Case {
        method,
        path: path.to_string(),
        token: team.owner.clone(),
        content_type,
        body: body.to_string(),
        status,
        code,
    };
    let owner = team.owner.as_str();
    let task_path = format!("/api/tasks/{task_id}");
    let new_task = |extra: Value| {
        let mut body = json!({"projectId": team.project, "title": "t"});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let list = |query: &str| format!("/api/tasks?projectId={}&{query}", team.project);
    let cases = vec![
        // Spaces
        raw_case(
            "POST",
            "/api/spaces",
            "application/json",
            "{",
            400,
            "invalid_json",
        ),
        raw_case(
            "POST",
            "/api/spaces",
            "application/json",
            "[]",
            400,
            "invalid_json",
        ),
        raw_case(
            "POST",
            "/api/spaces",
            "application/json",
            "",
            400,
            "invalid_json",
        ),
        raw_case(
            "POST",
            "/api/spaces",
            "text/plain",
            r#"{"name":"x","slug":"xyz"}"#,
            415,
            "unsupported_media_type",
        ),
        json_case(
            "POST",
            "/api/spaces",
            owner,
            json!({"name": "x", "slug": "xyz", "nmae": 1}),
            400,
            "unknown_field",
        ),
        json_case(
            "POST",
            "/api/spaces",
            owner,
            json!({"slug": "xyz"}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/spaces",
            owner,
            json!({"name": "x", "slug": "ab"}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/spaces",
            owner,
            json!({"name": "x", "slug": "ABC"}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/spaces",
            owner,
            json!({"name": "x", "slug": "a".repeat(51)}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/spaces",
            owner,
            json!({"name": "x", "slug": "xyz", "color": "blue"}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/spaces",
            owner,
            json!({"name": 5, "slug": "xyz"}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/spaces",
            owner,
            json!({"name": "   ", "slug": "xyz"}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/spaces",
            owner,
            json!({"name": "x", "slug": "team"}),
            409,
            "conflict",
        ),
        // Projects
        json_case(
            "POST",
            "/api/projects",
            owner,
            json!({"name": "x", "slug": "xyz"}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/projects",
            owner,
            json!({"spaceId": team.space, "name": "x", "slug": "xyz", "defaultView": "board"}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/projects",
            owner,
            json!({"spaceId": team.other_space, "name": "x", "slug": "xyz"}),
            404,
            "not_found",
        ),
        json_case(
            "POST",
            "/api/projects",
            owner,
            json!({"spaceId": team.space, "name": "x", "slug": "general"}),
            409,
            "conflict",
        ),
        json_case(
            "POST",
            "/api/projects",
            &team.viewer,
            json!({"spaceId": team.space, "name": "x", "slug": "xyz"}),
            403,
            "forbidden",
        ),
        json_case(
            "PATCH",
            &format!("/api/projects/{}", team.project),
            owner,
            json!({"slug": "x"}),
            400,
            "validation_failed",
        ),
        // Tasks: create
        json_case(
            "POST",
            "/api/tasks",
            owner,
            json!({"projectId": team.project}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            json!({"title": "t"}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"title": "x".repeat(501)})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"title": ""})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            json!({"projectId": team.project, "titel": "t"}),
            400,
            "unknown_field",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"priority": "critical"})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"dueDate": "2026-02-30"})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"dueDate": "2026-2-3"})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"startDate": "2027-01-02", "dueDate": "2027-01-01"})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"statusId": other_status})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"parentId": other_task["id"]})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"assignees": team.member_id})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"assignees": [team.outsider_id]})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"labels": [1]})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"labels": ["new-label", ""]})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"position": "first"})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"description": "x".repeat(100_001)})),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            "/api/tasks",
            owner,
            json!({"projectId": team.other_project, "title": "t"}),
            404,
            "not_found",
        ),
        json_case(
            "POST",
            "/api/tasks",
            &team.viewer,
            new_task(json!({})),
            403,
            "forbidden",
        ),
        // A label created by name must not survive a request that fails later.
        json_case(
            "POST",
            "/api/tasks",
            owner,
            new_task(json!({"labels": ["ghost"], "assignees": [team.outsider_id]})),
            400,
            "validation_failed",
        ),
        // Tasks: change
        json_case(
            "PATCH",
            &task_path,
            owner,
            json!({"title": null}),
            400,
            "validation_failed",
        ),
        json_case(
            "PATCH",
            &task_path,
            owner,
            json!({"parentId": task_id}),
            400,
            "validation_failed",
        ),
        json_case(
            "PATCH",
            &task_path,
            owner,
            json!({"projectId": team.other_project}),
            400,
            "validation_failed",
        ),
        json_case(
            "PATCH",
            &task_path,
            owner,
            json!({"dueDate": "tomorrow"}),
            400,
            "validation_failed",
        ),
        json_case(
            "PATCH",
            &task_path,
            owner,
            json!({"state": "done"}),
            400,
            "unknown_field",
        ),
        json_case(
            "PATCH",
            &task_path,
            owner,
            json!({"labels": ["fine"], "statusId": other_status}),
            400,
            "validation_failed",
        ),
        json_case(
            "PATCH",
            &task_path,
            &team.viewer,
            json!({"title": "x"}),
            403,
            "forbidden",
        ),
        json_case(
            "PATCH",
            &task_path,
            &team.outsider,
            json!({"title": "x"}),
            404,
            "not_found",
        ),
        json_case(
            "DELETE",
            &task_path,
            &team.viewer,
            Value::Null,
            403,
            "forbidden",
        ),
        json_case(
            "POST",
            &format!("{task_path}/assignees"),
            owner,
            json!({}),
            400,
            "validation_failed",
        ),
        json_case(
            "POST",
            &format!("{task_path}/labels"),
            owner,
            json!({"labelId": "x", "name": "y"}),
            400,
            "validation_failed",
        ),
        // Queries
        json_case(
            "GET",
            "/api/tasks",
            owner,
            Value::Null,
            400,
            "invalid_query",
        ),
        json_case(
            "GET",
            &list("limit=0"),
            owner,
            Value::Null,
            400,
            "invalid_query",
        ),
        json_case(
            "GET",
            &list("limit=201"),
            owner,
            Value::Null,
            400,
            "invalid_query",
        ),
        json_case(
            "GET",
            &list("cursor=zz"),
            owner,
            Value::Null,
            400,
            "invalid_query",
        ),
        json_case(
            "GET",
            &list("completed=yes"),
            owner,
            Value::Null,
            400,
            "invalid_query",
        ),
        json_case(
            "GET",
            &list("dueBefore=2026-13-01"),
            owner,
            Value::Null,
            400,
            "invalid_query",
        ),
        json_case(
            "GET",
            &list("updatedSince=yesterday"),
            owner,
            Value::Null,
            400,
            "invalid_query",
        ),
        json_case(
            "GET",
            &list("sort=title"),
            owner,
            Value::Null,
            400,
            "invalid_query",
        ),
        json_case(
            "GET",
            &list("priority=critical"),
            owner,
            Value::Null,
            400,
            "invalid_query",
        ),
        // Size
        raw_case(
            "POST",
            "/api/tasks",
            "application/json",
            &format!("{{\"title\": \"{}\"}}", "x".repeat(1_100_000)),
            413,
            "payload_too_large",
        ),
    ];
    assert!(cases.len() >= 40);
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
