//! `/api/tasks/:id/assignees`: idempotent add and remove, members only.

use serde_json::json;

use crate::util::Team;

#[test]
fn assign_and_unassign_idempotently() {
    let team = Team::new();
    let task = team.task("t");
    let path = format!("/api/tasks/{}/assignees", task["id"].as_str().unwrap());
    let added = team
        .server
        .post(&path, &team.member, &json!({"userId": team.viewer_id}));
    assert_eq!(added.status, 200, "{}", added.body);
    let added = added.json();
    assert_eq!(added["assignees"], json!([team.viewer_id]));
    assert!(added["updatedAt"].as_str().unwrap() >= task["updatedAt"].as_str().unwrap());
    let again = team
        .server
        .post(&path, &team.member, &json!({"userId": team.viewer_id}))
        .json();
    assert_eq!(
        again, added,
        "assigning twice changes nothing, updatedAt included"
    );

    let removed = team.server.request(
        "DELETE",
        &path,
        Some(&team.member),
        Some(&json!({"userId": team.viewer_id}).to_string()),
    );
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.json()["assignees"], json!([]));
    team.server
        .post(&path, &team.member, &json!({"userId": team.owner_id}));
    let by_query = team
        .server
        .delete(&format!("{path}?userId={}", team.owner_id), &team.member);
    assert_eq!(by_query.status, 200, "{}", by_query.body);
    assert_eq!(by_query.json()["assignees"], json!([]));
    let twice = team
        .server
        .delete(&format!("{path}?userId={}", team.owner_id), &team.member);
    assert_eq!(twice.status, 200);
}

#[test]
fn only_members_of_the_space_can_be_assigned() {
    let team = Team::new();
    let task = team.task("t");
    let path = format!("/api/tasks/{}/assignees", task["id"].as_str().unwrap());
    let body = team
        .server
        .post(&path, &team.owner, &json!({"userId": team.outsider_id}))
        .assert_error(400, "validation_failed");
    assert_eq!(body["field"], "userId");
    team.server
        .post(&path, &team.owner, &json!({"userId": "nobody"}))
        .assert_error(400, "validation_failed");
    team.server
        .post(&path, &team.owner, &json!({}))
        .assert_error(400, "validation_failed");
    team.server
        .post(&path, &team.owner, &json!({"user": team.member_id}))
        .assert_error(400, "unknown_field");
    team.server
        .delete(&path, &team.owner)
        .assert_error(400, "validation_failed");
    let both = format!("{path}?userId={}", team.owner_id);
    let body = json!({"userId": team.member_id}).to_string();
    // The query and a body together: each names a user to unassign.
    for user in [&team.owner_id, &team.member_id] {
        let added = team
            .server
            .post(&path, &team.owner, &json!({ "userId": user }));
        assert_eq!(added.status, 200, "{}", added.body);
    }
    let unassigned = team
        .server
        .request("DELETE", &both, Some(&team.owner), Some(&body));
    assert_eq!(unassigned.status, 200, "{}", unassigned.body);
    assert_eq!(unassigned.json()["assignees"], json!([]));
    for bad in [
        json!({"userId": null}),
        json!({"userId": 7}),
        json!({"userId": "nobody"}),
    ] {
        let error = team
            .server
            .request("DELETE", &path, Some(&team.owner), Some(&bad.to_string()))
            .assert_error(400, "validation_failed");
        assert_eq!(error["field"], "userId", "{bad}");
    }
    team.server
        .delete(&format!("{path}?userId=nobody"), &team.owner)
        .assert_error(400, "invalid_query");
    let create = json!({"projectId": team.project, "title": "x", "assignees": [team.outsider_id]});
    let body = team
        .server
        .post("/api/tasks", &team.owner, &create)
        .assert_error(400, "validation_failed");
    assert_eq!(body["field"], "assignees");
    assert_eq!(
        team.server.get_ok(
            &format!("/api/tasks/{}", task["id"].as_str().unwrap()),
            &team.owner
        )["assignees"],
        json!([])
    );
}
