//! `/api/tasks` and `/api/tasks/:id`: defaults, changes, completion, subtasks, moves, filters.

use serde_json::{Value, json};

use crate::util::Team;

pub(crate) fn statuses(team: &Team, project: &str) -> Vec<Value> {
    team.server
        .get_ok(&format!("/api/projects/{project}"), &team.owner)["statuses"]
        .as_array()
        .unwrap()
        .clone()
}

pub(crate) fn ids(tasks: &Value) -> Vec<String> {
    tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_new_task_gets_the_documented_defaults() {
    let team = Team::new();
    let response = team.server.post(
        "/api/tasks",
        &team.member,
        &json!({"projectId": team.project, "title": "  Ship it "}),
    );
    assert_eq!(response.status, 201, "{}", response.body);
    let task = response.json();
    let todo = &statuses(&team, &team.project)[0];
    assert_eq!(task["title"], "Ship it");
    assert_eq!(task["projectId"], team.project.as_str());
    assert_eq!(task["statusId"], todo["id"]);
    assert_eq!(task["priority"], "none");
    assert_eq!(task["position"], 1.0);
    assert_eq!(task["assignees"], json!([]));
    assert_eq!(task["labels"], json!([]));
    assert_eq!(task["createdBy"], team.member_id.as_str());
    for field in [
        "description",
        "dueDate",
        "startDate",
        "parentId",
        "completedAt",
    ] {
        assert_eq!(task[field], Value::Null, "{field}");
    }
    assert_eq!(task["createdAt"], task["updatedAt"]);
    let id = task["id"].as_str().unwrap();
    assert!(
        response
            .header("location")
            .unwrap()
            .ends_with(&format!("/api/tasks/{id}"))
    );
    assert_eq!(
        team.server
            .get_ok(&format!("/api/tasks/{id}"), &team.viewer),
        task
    );
    let second = team.task("second");
    assert_eq!(second["position"], 2.0, "new tasks go to the end");
}

#[test]
fn a_task_created_with_everything() {
    let team = Team::new();
    let doing = statuses(&team, &team.project)[1]["id"].clone();
    let parent = team.task("parent");
    let task = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({
            "projectId": team.project,
            "title": "Child",
            "description": "  keep my spaces  ",
            "statusId": doing,
            "priority": "urgent",
            "dueDate": "2028-02-29",
            "startDate": "2028-02-01",
            "position": 0.5,
            "parentId": parent["id"],
            "assignees": [team.member_id, team.viewer_id, team.member_id],
            "labels": ["Bug", "bug", "frontend"],
        }),
    );
    assert_eq!(task["description"], "  keep my spaces  ");
    assert_eq!(task["statusId"], doing);
    assert_eq!(task["priority"], "urgent");
    assert_eq!(task["dueDate"], "2028-02-29");
    assert_eq!(task["startDate"], "2028-02-01");
    assert_eq!(task["position"], 0.5);
    assert_eq!(task["parentId"], parent["id"]);
    let mut assignees: Vec<&str> = task["assignees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assignees.sort();
    let mut expected = vec![team.member_id.as_str(), team.viewer_id.as_str()];
    expected.sort();
    assert_eq!(assignees, expected, "deduplicated");
    let labels = crate::util::label_names(&task);
    assert_eq!(
        labels,
        ["Bug", "frontend"],
        "names found case-insensitively or created"
    );
    let space_labels = team
        .server
        .get_ok(&format!("/api/labels?spaceId={}", team.space), &team.viewer);
    assert_eq!(space_labels.as_array().unwrap().len(), 2);
    // Labels by id work too.
    let bug_id = task["labels"][0]["id"].clone();
    let other = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "x", "labels": [bug_id]}),
    );
    assert_eq!(other["labels"][0]["name"], "Bug");
}

#[test]
fn completed_at_follows_the_status_category() {
    let team = Team::new();
    let statuses = statuses(&team, &team.project);
    let (todo, doing, done) = (&statuses[0]["id"], &statuses[1]["id"], &statuses[2]["id"]);
    let task = team.task("work");
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    let moved = team
        .server
        .patch(&path, &team.member, &json!({"statusId": doing}))
        .json();
    assert_eq!(moved["completedAt"], Value::Null);
    let finished = team
        .server
        .patch(&path, &team.member, &json!({"statusId": done}))
        .json();
    let completed_at = finished["completedAt"]
        .as_str()
        .expect("set on entering done")
        .to_string();
    assert_eq!(completed_at.len(), 24);
    let renamed = team
        .server
        .patch(&path, &team.member, &json!({"title": "work!"}))
        .json();
    assert_eq!(
        renamed["completedAt"],
        completed_at.as_str(),
        "unchanged while done"
    );
    let reopened = team
        .server
        .patch(&path, &team.member, &json!({"statusId": todo}))
        .json();
    assert_eq!(
        reopened["completedAt"],
        Value::Null,
        "cleared on leaving done"
    );
    let created_done = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "d", "statusId": done}),
    );
    assert!(created_done["completedAt"].is_string());
}

#[test]
fn patch_absent_is_unchanged_null_clears_and_updated_at_moves() {
    let team = Team::new();
    let task = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "t", "description": "d", "dueDate": "2027-01-02", "priority": "low"}),
    );
    let path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(5));
    let changed = team
        .server
        .patch(
            &path,
            &team.owner,
            &json!({"dueDate": null, "priority": "high"}),
        )
        .json();
    assert_eq!(changed["dueDate"], Value::Null);
    assert_eq!(changed["priority"], "high");
    assert_eq!(changed["description"], "d");
    assert_eq!(changed["title"], "t");
    assert!(changed["updatedAt"].as_str().unwrap() > task["updatedAt"].as_str().unwrap());
    let same = team.server.patch(&path, &team.owner, &json!({})).json();
    assert_eq!(same, changed, "an empty PATCH changes nothing");
    let cleared = team
        .server
        .patch(&path, &team.owner, &json!({"description": null}))
        .json();
    assert_eq!(cleared["description"], Value::Null);
    for field in [
        "title",
        "statusId",
        "priority",
        "position",
        "projectId",
        "assignees",
        "labels",
    ] {
        let body = team
            .server
            .patch(&path, &team.owner, &json!({field: null}))
            .assert_error(400, "validation_failed");
        assert_eq!(body["field"], field);
    }
    let replaced = team
        .server
        .patch(
            &path,
            &team.owner,
            &json!({"assignees": [team.viewer_id], "labels": ["a", "b"]}),
        )
        .json();
    assert_eq!(replaced["assignees"], json!([team.viewer_id]));
    assert_eq!(replaced["labels"].as_array().unwrap().len(), 2);
    let emptied = team
        .server
        .patch(&path, &team.owner, &json!({"assignees": [], "labels": []}))
        .json();
    assert_eq!(emptied["assignees"], json!([]));
    assert_eq!(emptied["labels"], json!([]));
}

#[test]
fn deleting_a_task_deletes_its_subtasks() {
    let team = Team::new();
    let parent = team.task("parent");
    let child = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "child", "parentId": parent["id"], "labels": ["x"], "assignees": [team.member_id]}),
    );
    let grandchild = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "gc", "parentId": child["id"]}),
    );
    let bystander = team.task("bystander");
    let response = team.server.delete(
        &format!("/api/tasks/{}", parent["id"].as_str().unwrap()),
        &team.member,
    );
    assert_eq!(response.status, 204, "{}", response.body);
    assert!(response.body.is_empty());
    for gone in [&parent, &child, &grandchild] {
        team.server
            .get(
                &format!("/api/tasks/{}", gone["id"].as_str().unwrap()),
                &team.owner,
            )
            .assert_error(404, "not_found");
    }
    let left = team.server.get_ok(
        &format!("/api/tasks?projectId={}", team.project),
        &team.owner,
    );
    assert_eq!(ids(&left), [bystander["id"].as_str().unwrap()]);
    team.server
        .delete(
            &format!("/api/tasks/{}", parent["id"].as_str().unwrap()),
            &team.owner,
        )
        .assert_error(404, "not_found");
    // Nothing of the deleted tree is left behind in the database, links included.
    let conn = rusqlite::Connection::open(team.env.db()).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM tasks"), 1);
    assert_eq!(count("SELECT count(*) FROM task_assignees"), 0);
    assert_eq!(count("SELECT count(*) FROM task_labels"), 0);
}

#[test]
fn parents_stay_in_the_project_and_never_form_a_cycle() {
    let team = Team::new();
    let a = team.task("a");
    let b = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "b", "parentId": a["id"]}),
    );
    let c = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "c", "parentId": b["id"]}),
    );
    let path_a = format!("/api/tasks/{}", a["id"].as_str().unwrap());
    for parent in [&a["id"], &b["id"], &c["id"]] {
        let body = team
            .server
            .patch(&path_a, &team.owner, &json!({"parentId": parent}))
            .assert_error(400, "validation_failed");
        assert_eq!(body["field"], "parentId");
    }
    let other = team.server.create(
        "/api/projects",
        &team.owner,
        &json!({"spaceId": team.space, "name": "Other", "slug": "other-project"}),
    );
    let foreign = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": other["id"], "title": "f"}),
    );
    team.server
        .post(
            "/api/tasks",
            &team.owner,
            &json!({"projectId": team.project, "title": "x", "parentId": foreign["id"]}),
        )
        .assert_error(400, "validation_failed");
    // Re-parenting within the tree the right way round is fine.
    let path_c = format!("/api/tasks/{}", c["id"].as_str().unwrap());
    assert_eq!(
        team.server
            .patch(&path_c, &team.owner, &json!({"parentId": a["id"]}))
            .json()["parentId"],
        a["id"]
    );
    assert_eq!(
        team.server
            .patch(&path_c, &team.owner, &json!({"parentId": null}))
            .json()["parentId"],
        Value::Null
    );
}

#[test]
fn moving_a_task_to_another_project_of_the_space_takes_its_subtasks() {
    let team = Team::new();
    let done = statuses(&team, &team.project)[2]["id"].clone();
    let target = team.server.create(
        "/api/projects",
        &team.owner,
        &json!({"spaceId": team.space, "name": "Next", "slug": "next"}),
    );
    let target_id = target["id"].as_str().unwrap();
    let target_statuses = statuses(&team, target_id);
    let parent = team.task("parent");
    let task = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "mover", "parentId": parent["id"], "statusId": done}),
    );
    let sub = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "sub", "parentId": task["id"]}),
    );
    let moved = team.server.patch(
        &format!("/api/tasks/{}", task["id"].as_str().unwrap()),
        &team.member,
        &json!({"projectId": target_id}),
    );
    assert_eq!(moved.status, 200, "{}", moved.body);
    let moved = moved.json();
    assert_eq!(moved["projectId"], target_id);
    assert_eq!(
        moved["statusId"], target_statuses[2]["id"],
        "same category in the new project"
    );
    assert_eq!(moved["completedAt"], task["completedAt"], "still done");
    assert_eq!(
        moved["parentId"],
        Value::Null,
        "the old parent stays behind"
    );
    let sub = team.server.get_ok(
        &format!("/api/tasks/{}", sub["id"].as_str().unwrap()),
        &team.owner,
    );
    assert_eq!(sub["projectId"], target_id);
    assert_eq!(sub["statusId"], target_statuses[0]["id"]);
    assert_eq!(sub["parentId"], task["id"]);

    let body = team
        .server
        .patch(
            &format!("/api/tasks/{}", task["id"].as_str().unwrap()),
            &team.owner,
            &json!({"projectId": team.other_project}),
        )
        .assert_error(400, "validation_failed");
    assert_eq!(body["field"], "projectId");
}
