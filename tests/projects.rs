//! `/api/projects` and `/api/projects/:id`.

use serde_json::json;

use crate::util::Team;

#[test]
fn create_get_and_list_projects() {
    let team = Team::new();
    let response = team.server.post(
        "/api/projects",
        &team.member,
        &json!({"spaceId": team.space, "name": "Website", "slug": "website", "color": "#ABC"}),
    );
    assert_eq!(response.status, 201, "{}", response.body);
    let project = response.json();
    assert_eq!(project["spaceId"], team.space.as_str());
    assert_eq!(project["defaultView"], "kanban");
    assert_eq!(project["color"], "#abc");
    assert_eq!(project["description"], serde_json::Value::Null);
    let statuses = project["statuses"].as_array().unwrap();
    let names: Vec<&str> = statuses
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["To Do", "In Progress", "Done"]);
    for status in statuses {
        for field in ["id", "name", "category", "position", "color"] {
            assert!(status.get(field).is_some(), "status lacks {field}");
        }
    }
    let id = project["id"].as_str().unwrap();
    assert!(
        response
            .header("location")
            .unwrap()
            .ends_with(&format!("/api/projects/{id}"))
    );
    assert_eq!(
        team.server
            .get_ok(&format!("/api/projects/{id}"), &team.viewer),
        project
    );

    let listed = team.server.get_ok(
        &format!("/api/projects?spaceId={}", team.space),
        &team.viewer,
    );
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1], project);

    let view = team.server.create(
        "/api/projects",
        &team.owner,
        &json!({"spaceId": team.space, "name": "Plan", "slug": "plan", "defaultView": "gantt"}),
    );
    assert_eq!(view["defaultView"], "gantt");
}

#[test]
fn project_slugs_are_unique_within_a_space_only() {
    let team = Team::new();
    let body = json!({"spaceId": team.space, "name": "General again", "slug": "general"});
    let conflict = team
        .server
        .post("/api/projects", &team.owner, &body)
        .assert_error(409, "conflict");
    assert_eq!(conflict["field"], "slug");
    let elsewhere = json!({"spaceId": team.other_space, "name": "Web", "slug": "website"});
    team.server
        .create("/api/projects", &team.outsider, &elsewhere);
    let here = json!({"spaceId": team.space, "name": "Web", "slug": "website"});
    team.server.create("/api/projects", &team.owner, &here);
}

#[test]
fn patch_changes_only_what_is_given_and_null_clears() {
    let team = Team::new();
    let project = team.server.create(
        "/api/projects",
        &team.owner,
        &json!({"spaceId": team.space, "name": "Web", "slug": "web", "description": "site", "color": "#111111"}),
    );
    let path = format!("/api/projects/{}", project["id"].as_str().unwrap());
    let renamed = team.server.patch(
        &path,
        &team.member,
        &json!({"name": "Website", "defaultView": "list"}),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let renamed = renamed.json();
    assert_eq!(renamed["name"], "Website");
    assert_eq!(renamed["defaultView"], "list");
    assert_eq!(renamed["slug"], "web");
    assert_eq!(renamed["description"], "site");
    assert_eq!(renamed["color"], "#111111");
    assert_eq!(renamed["createdAt"], project["createdAt"]);
    assert!(renamed["updatedAt"].as_str().unwrap() >= project["updatedAt"].as_str().unwrap());

    let cleared = team
        .server
        .patch(
            &path,
            &team.owner,
            &json!({"description": null, "color": null}),
        )
        .json();
    assert_eq!(cleared["description"], serde_json::Value::Null);
    assert_eq!(cleared["color"], serde_json::Value::Null);
    assert_eq!(cleared["name"], "Website");

    team.server
        .patch(&path, &team.owner, &json!({"slug": "general"}))
        .assert_error(409, "conflict");
    team.server
        .patch(&path, &team.owner, &json!({"name": null}))
        .assert_error(400, "validation_failed");
    team.server
        .patch(&path, &team.owner, &json!({"defaultView": "table"}))
        .assert_error(400, "validation_failed");
    team.server
        .patch(&path, &team.owner, &json!({"spaceId": team.other_space}))
        .assert_error(400, "unknown_field");
    team.server
        .patch(&path, &team.viewer, &json!({"name": "x"}))
        .assert_error(403, "forbidden");
    team.server
        .patch(&path, &team.outsider, &json!({"name": "x"}))
        .assert_error(404, "not_found");
    assert_eq!(team.server.get_ok(&path, &team.owner)["slug"], "web");
}

#[test]
fn listing_needs_a_visible_space() {
    let team = Team::new();
    team.server
        .get("/api/projects", &team.owner)
        .assert_error(400, "invalid_query");
    team.server
        .get(
            &format!("/api/projects?spaceId={}", team.space),
            &team.outsider,
        )
        .assert_error(404, "not_found");
    // Not an id at all: a bad query parameter. An id of nothing: not found.
    let error = team
        .server
        .get("/api/projects?spaceId=nope", &team.owner)
        .assert_error(400, "invalid_query");
    assert_eq!(error["field"], "spaceId");
    team.server
        .get(
            "/api/projects?spaceId=01a21edd-ac5f-72f8-b787-000000000000",
            &team.owner,
        )
        .assert_error(404, "not_found");
    team.server
        .get(&format!("/api/projects/{}", team.project), &team.outsider)
        .assert_error(404, "not_found");
    team.server
        .get("/api/projects/nope", &team.owner)
        .assert_error(404, "not_found");
    let create = json!({"spaceId": team.space, "name": "X", "slug": "xyz"});
    team.server
        .post("/api/projects", &team.viewer, &create)
        .assert_error(403, "forbidden");
    team.server
        .post("/api/projects", &team.outsider, &create)
        .assert_error(404, "not_found");
}
