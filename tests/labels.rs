//! `/api/labels` and `/api/tasks/:id/labels`.

use serde_json::json;

use crate::util::Team;

#[test]
fn labels_by_name_are_found_case_insensitively_or_created() {
    let team = Team::new();
    let task = team.task("t");
    let path = format!("/api/tasks/{}/labels", task["id"].as_str().unwrap());
    let added = team.server.post(
        &path,
        &team.member,
        &json!({"name": "Urgent", "color": "#F00"}),
    );
    assert_eq!(added.status, 200, "{}", added.body);
    let label = added.json()["labels"][0].clone();
    assert_eq!(label["name"], "Urgent");
    assert_eq!(label["color"], "#f00");
    let again = team
        .server
        .post(&path, &team.member, &json!({"name": "urgent"}))
        .json();
    assert_eq!(again["labels"], json!([label]), "found, not duplicated");
    let labels = team
        .server
        .get_ok(&format!("/api/labels?spaceId={}", team.space), &team.viewer);
    assert_eq!(
        labels,
        json!([{"id": label["id"], "spaceId": team.space, "name": "Urgent", "color": "#f00"}])
    );

    let other = team.task("other");
    let other_path = format!("/api/tasks/{}/labels", other["id"].as_str().unwrap());
    let by_id = team
        .server
        .post(&other_path, &team.owner, &json!({"labelId": label["id"]}))
        .json();
    assert_eq!(by_id["labels"], json!([label]));

    let removed = team
        .server
        .delete(&format!("{path}?name=URGENT"), &team.member);
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.json()["labels"], json!([]));
    let removed = team.server.request(
        "DELETE",
        &other_path,
        Some(&team.member),
        Some(&json!({"labelId": label["id"]}).to_string()),
    );
    assert_eq!(removed.json()["labels"], json!([]));
    let idempotent = team.server.delete(
        &format!("{other_path}?labelId={}", label["id"].as_str().unwrap()),
        &team.member,
    );
    assert_eq!(idempotent.status, 200);
    assert_eq!(
        team.server
            .get_ok(&format!("/api/labels?spaceId={}", team.space), &team.owner)
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn label_input_is_checked() {
    let team = Team::new();
    let task = team.task("t");
    let path = format!("/api/tasks/{}/labels", task["id"].as_str().unwrap());
    team.server
        .post(&path, &team.owner, &json!({}))
        .assert_error(400, "validation_failed");
    team.server
        .post(&path, &team.owner, &json!({"name": "a", "labelId": "b"}))
        .assert_error(400, "validation_failed");
    team.server
        .post(&path, &team.owner, &json!({"name": "   "}))
        .assert_error(400, "validation_failed");
    team.server
        .post(&path, &team.owner, &json!({"name": "a", "color": "red"}))
        .assert_error(400, "validation_failed");
    team.server
        .post(
            &path,
            &team.owner,
            &json!({"labelId": "0190a0b0-0000-7000-8000-000000000000"}),
        )
        .assert_error(400, "validation_failed");
    // A label of another space is not this space's label.
    let foreign_task = team.server.create(
        "/api/tasks",
        &team.outsider,
        &json!({"projectId": team.other_project, "title": "f", "labels": ["theirs"]}),
    );
    let foreign_label = foreign_task["labels"][0]["id"].clone();
    let body = team
        .server
        .post(&path, &team.owner, &json!({"labelId": foreign_label}))
        .assert_error(400, "validation_failed");
    assert_eq!(body["field"], "labelId");
    team.server
        .delete(&path, &team.owner)
        .assert_error(400, "validation_failed");
    team.server
        .get("/api/labels", &team.owner)
        .assert_error(400, "invalid_query");
    team.server
        .get(
            &format!("/api/labels?spaceId={}", team.space),
            &team.outsider,
        )
        .assert_error(404, "not_found");
}

/// Issue 16: 150,000 label names once held the writer for tens of seconds (checked one by one,
/// de-duplicated quadratically, inside the write transaction). Now the array's length is refused
/// before any of that, and another client's write is not kept waiting.
#[test]
fn a_huge_label_array_is_refused_at_once_while_other_writes_go_on() {
    let env = crate::util::Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve_with_config("[limits]\nmax_body_bytes = 4194304\n");
    let space = server.personal_space(&token);
    let project = server.first_project(&token, &space);
    let names: Vec<String> = (0..150_000).map(|i| format!("l{i}")).collect();
    let body = json!({"projectId": project, "title": "flood", "labels": names}).to_string();
    assert!(body.len() > 1 << 20, "a body of over 1 MiB");
    let client = server.client();
    let auth = format!("Bearer {token}");
    let flood = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        let response = client
            .try_raw("POST", "/api/tasks", &headers, body.as_bytes())
            .unwrap();
        (response, started.elapsed())
    });
    let started = std::time::Instant::now();
    let task = server.create(
        "/api/tasks",
        &token,
        &json!({"projectId": project, "title": "meanwhile", "labels": ["a", "A", "b"]}),
    );
    let meanwhile = started.elapsed();
    let labels = crate::util::label_names(&task);
    assert_eq!(
        labels,
        ["a", "b"],
        "names de-duplicated as the database compares them"
    );
    let (response, took) = flood.join().unwrap();
    let error = response.assert_error(400, "validation_failed");
    assert_eq!(error["field"], "labels");
    assert!(
        took < std::time::Duration::from_secs(1),
        "refused after {took:?}"
    );
    assert!(
        meanwhile < std::time::Duration::from_secs(1),
        "the other write waited {meanwhile:?}"
    );
    let listed = server.get_ok(&format!("/api/labels?spaceId={space}&limit=200"), &token);
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "the flood created nothing"
    );
}

#[test]
fn arrays_and_the_labels_of_a_space_are_capped() {
    let team = Team::new();
    let too_many: Vec<String> = (0..51).map(|i| format!("n{i}")).collect();
    for field in ["labels", "assignees"] {
        let body = json!({"projectId": team.project, "title": "t", field: too_many});
        let error = team
            .server
            .post("/api/tasks", &team.owner, &body)
            .assert_error(400, "validation_failed");
        assert_eq!(error["field"], field);
        let task = team.task("patched");
        let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
        let error = team
            .server
            .patch(&path, &team.owner, &json!({ field: too_many }))
            .assert_error(400, "validation_failed");
        assert_eq!(error["field"], field);
    }
    // 1,000 labels fill the space: 20 tasks of 50 new names each.
    for batch in 0..20 {
        let names: Vec<String> = (0..50).map(|i| format!("label {batch}-{i}")).collect();
        team.server.create(
            "/api/tasks",
            &team.owner,
            &json!({"projectId": team.project, "title": "t", "labels": names}),
        );
    }
    let one_more = json!({"projectId": team.project, "title": "t", "labels": ["one more"]});
    let error = team
        .server
        .post("/api/tasks", &team.owner, &one_more)
        .assert_error(409, "conflict");
    assert_eq!(error["field"], "labels");
    assert!(error["error"].as_str().unwrap().contains("1000 labels"));
    let task = team.task("t");
    let path = format!("/api/tasks/{}/labels", task["id"].as_str().unwrap());
    let error = team
        .server
        .post(&path, &team.owner, &json!({"name": "one more"}))
        .assert_error(409, "conflict");
    assert_eq!(error["field"], "name");
    // A task holds at most 50 labels, however they are added.
    let full: Vec<String> = (0..50).map(|i| format!("label 0-{i}")).collect();
    let crowded = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "crowded", "labels": full}),
    );
    let crowded_path = format!("/api/tasks/{}/labels", crowded["id"].as_str().unwrap());
    let error = team
        .server
        .post(&crowded_path, &team.owner, &json!({"name": "label 1-0"}))
        .assert_error(409, "conflict");
    assert_eq!(error["field"], "name");
    let again = team
        .server
        .post(&crowded_path, &team.owner, &json!({"name": "label 0-7"}));
    assert_eq!(again.status, 200, "one it already has is still fine");
    // An existing label, by name in any case, is still found.
    let found = team
        .server
        .post(&path, &team.owner, &json!({"name": "LABEL 3-7"}));
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.json()["labels"][0]["name"], "label 3-7");
}

/// Issue 17: each `labelId` and `name` given, in the query or a JSON body, names a label to
/// remove; a body field of the wrong type is 400 whatever else is given (Schemathesis found
/// `{"name": null}` with `?labelId=` accepted); naming none is 400.
#[test]
fn removing_labels_takes_the_query_and_a_body_and_refuses_bad_types_either_way() {
    let team = Team::new();
    let task = team.task("t");
    let task_path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    let path = format!("{task_path}/labels");
    let add = |name: &str| {
        let added = team
            .server
            .post(&path, &team.owner, &json!({ "name": name }));
        assert_eq!(added.status, 200, "{}", added.body);
        added.json()["labels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let bug = add("bug");
    let delete = |query: &str, body: Option<&str>| {
        team.server
            .request("DELETE", &format!("{path}{query}"), Some(&team.owner), body)
    };
    let with_id = format!("?labelId={bug}");
    for (query, body, code, field) in [
        (
            with_id.as_str(),
            Some(r#"{"name": null}"#),
            "validation_failed",
            "name",
        ),
        (
            with_id.as_str(),
            Some(r#"{"labelId": "x"}"#),
            "validation_failed",
            "labelId",
        ),
        (with_id.as_str(), Some("[]"), "invalid_json", ""),
        ("", Some("{}"), "validation_failed", "labelId"),
        ("", Some(r#"{"name": 3}"#), "validation_failed", "name"),
        (
            "",
            Some(r#"{"labelId": "not-an-id"}"#),
            "validation_failed",
            "labelId",
        ),
        ("", Some(r#"{"name": "  "}"#), "validation_failed", "name"),
        ("?name=", None, "invalid_query", "name"),
        ("?labelId=nope", None, "invalid_query", "labelId"),
        ("", None, "validation_failed", "labelId"),
    ] {
        let error = delete(query, body).assert_error(400, code);
        if !field.is_empty() {
            assert_eq!(error["field"], field, "{query} {body:?}");
        }
    }
    // A body that names nothing is refused even beside a query that does (the document says a
    // body names at least one).
    delete(&with_id, Some("{}")).assert_error(400, "validation_failed");
    // A request the document allows about a task that does not exist is a 404, even one that
    // names no label at all (a rule the document cannot state, checked once the task is found).
    let missing = "/api/tasks/01a21edd-ac5f-72f8-b787-000000000000/labels";
    team.server
        .request("DELETE", missing, Some(&team.owner), None)
        .assert_error(404, "not_found");
    let labels = |task: &serde_json::Value| {
        let mut names: Vec<String> = task["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        labels(&team.server.get_ok(&task_path, &team.owner)),
        ["bug"],
        "nothing was removed"
    );
    // Each label named goes: by query and body together, by id and name together.
    add("docs");
    add("ux");
    // Ids in upper case are the same ids.
    let removed = delete(
        &format!("?labelId={}&name=DOCS", bug.to_uppercase()),
        Some(r#"{"name": "ux"}"#),
    );
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(labels(&removed.json()), Vec::<String>::new());
    // Adding takes an id and a name at once too.
    let both = team.server.post(
        &path,
        &team.owner,
        &json!({"labelId": bug, "name": "new", "color": "#123"}),
    );
    assert_eq!(both.status, 200, "{}", both.body);
    assert_eq!(labels(&both.json()), ["bug", "new"]);
    team.server
        .post(
            &path,
            &team.owner,
            &json!({"labelId": bug, "color": "#123"}),
        )
        .assert_error(400, "validation_failed");
}
