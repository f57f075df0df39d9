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
