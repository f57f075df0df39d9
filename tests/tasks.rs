//! `/api/tasks` and `/api/tasks/:id`: defaults, changes, completion, subtasks, moves, filters.

use serde_json::{Value, json};

use crate::util::Team;

fn statuses(team: &Team, project: &str) -> Vec<Value> {
    team.server
        .get_ok(&format!("/api/projects/{project}"), &team.owner)["statuses"]
        .as_array()
        .unwrap()
        .clone()
}

fn ids(tasks: &Value) -> Vec<String> {
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
    let labels: Vec<&str> = task["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
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

#[test]
fn every_list_filter() {
    let team = Team::new();
    let statuses = statuses(&team, &team.project);
    let post = |body: Value| {
        let mut body = body;
        body["projectId"] = json!(team.project);
        team.server.create("/api/tasks", &team.owner, &body)
    };
    let a = post(
        json!({"title": "Écrire le README", "priority": "high", "dueDate": "2027-03-01", "assignees": [team.member_id], "labels": ["docs"]}),
    );
    let b = post(
        json!({"title": "Fix login", "priority": "low", "dueDate": "2027-03-10", "statusId": statuses[2]["id"]}),
    );
    // Timestamps have milliseconds: c must not share b's, or `updatedSince` of c's would
    // include b (the suite running in parallel made that happen now and then).
    std::thread::sleep(std::time::Duration::from_millis(5));
    let c = post(json!({"title": "Sub of a", "parentId": a["id"], "assignees": [team.owner_id]}));
    let list = |query: &str| -> Vec<String> {
        let tasks = team.server.get_ok(
            &format!("/api/tasks?projectId={}&{query}", team.project),
            &team.member,
        );
        ids(&tasks)
    };
    let id = |t: &Value| t["id"].as_str().unwrap().to_string();
    assert_eq!(list(""), [id(&a), id(&b), id(&c)]);
    assert_eq!(
        list(&format!("statusId={}", statuses[2]["id"].as_str().unwrap())),
        [id(&b)]
    );
    assert_eq!(list(&format!("assigneeId={}", team.member_id)), [id(&a)]);
    let docs = a["labels"][0]["id"].as_str().unwrap();
    assert_eq!(list(&format!("labelId={docs}")), [id(&a)]);
    assert_eq!(list("priority=low"), [id(&b)]);
    assert_eq!(list("completed=true"), [id(&b)]);
    assert_eq!(list("completed=false"), [id(&a), id(&c)]);
    assert_eq!(list("dueBefore=2027-03-01"), [id(&a)], "inclusive");
    assert_eq!(list("dueAfter=2027-03-01"), [id(&a), id(&b)], "inclusive");
    assert_eq!(list("dueAfter=2027-03-02&dueBefore=2027-03-10"), [id(&b)]);
    assert_eq!(list(&format!("parentId={}", id(&a))), [id(&c)]);
    assert_eq!(
        list("q=%C3%A9CRIRE"),
        [id(&a)],
        "case-insensitive beyond ASCII"
    );
    assert_eq!(list("q=LOGIN"), [id(&b)]);
    assert_eq!(list("q=nothing"), Vec::<String>::new());

    let since = c["createdAt"].as_str().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    team.server.patch(
        &format!("/api/tasks/{}", id(&a)),
        &team.owner,
        &json!({"title": "Écrire le README!"}),
    );
    let encoded = since.replace(':', "%3A");
    assert_eq!(
        list(&format!("updatedSince={encoded}")),
        [id(&a), id(&c)],
        "updated at or after"
    );
    let later = "2099-01-01T00:00:00%2B01:00";
    assert_eq!(list(&format!("updatedSince={later}")), Vec::<String>::new());
}

#[test]
fn assignee_me_lists_across_every_visible_space() {
    let team = Team::new();
    let in_team = team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "team", "assignees": [team.member_id]}),
    );
    let member_spaces = team.server.get_ok("/api/spaces", &team.member);
    let personal = member_spaces
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["personal"] == true)
        .unwrap()["id"]
        .clone();
    let personal_project = team.server.get_ok(
        &format!("/api/projects?spaceId={}", personal.as_str().unwrap()),
        &team.member,
    )[0]["id"]
        .clone();
    let mine = team.server.create(
        "/api/tasks",
        &team.member,
        &json!({"projectId": personal_project, "title": "mine", "assignees": [team.member_id]}),
    );
    team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "not mine"}),
    );
    let listed = team.server.get_ok("/api/tasks?assigneeId=me", &team.member);
    let mut got = ids(&listed);
    got.sort();
    let mut expected = vec![
        in_team["id"].as_str().unwrap().to_string(),
        mine["id"].as_str().unwrap().to_string(),
    ];
    expected.sort();
    assert_eq!(got, expected);
    // The owner cannot see the member's personal task even when asking for the member's tasks.
    let owner_view = team.server.get_ok(
        &format!("/api/tasks?assigneeId={}", team.member_id),
        &team.owner,
    );
    assert_eq!(ids(&owner_view), [in_team["id"].as_str().unwrap()]);
}

/// Issue 16: a time whose UTC form leaves the calendar (the year 10000) panicked the handler (a
/// 500 and a stack trace in the log). Every date and time input is now checked: a 400.
#[test]
fn dates_and_times_past_the_ends_of_the_calendar_are_400_not_a_panic() {
    let team = Team::new();
    for since in [
        "9999-12-31T23:00:00-05:00",
        "0000-01-01T00:00:00%2B01:00",
        "9999-12-31T23:59:59.999999999-23:59",
    ] {
        let path = format!("/api/tasks?projectId={}&updatedSince={since}", team.project);
        let error = team
            .server
            .get(&path, &team.owner)
            .assert_error(400, "invalid_query");
        assert_eq!(error["field"], "updatedSince");
    }
    let edge = format!(
        "/api/tasks?projectId={}&updatedSince=9999-12-31T18:59:59-05:00&dueBefore=9999-12-31&dueAfter=0000-01-01",
        team.project
    );
    assert_eq!(team.server.get_ok(&edge, &team.owner), json!([]));
    for (field, value) in [("dueDate", "10000-01-01"), ("startDate", "-0001-12-31")] {
        let body = json!({"projectId": team.project, "title": "t", field: value});
        let error = team
            .server
            .post("/api/tasks", &team.owner, &body)
            .assert_error(400, "validation_failed");
        assert_eq!(error["field"], field);
    }
    team.server.create(
        "/api/tasks",
        &team.owner,
        &json!({"projectId": team.project, "title": "t", "startDate": "0000-01-01", "dueDate": "9999-12-31"}),
    );
    let mut team = team;
    let log = team.server.stop();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains(" 500 "), "{log}");
}

/// Issue 17: query parameters are checked as the document types them: ids are UUIDs, `completed`
/// is a boolean (`?completed=` is not "absent"), `assigneeId` is an id or `me`.
#[test]
fn list_filters_are_checked_as_the_document_types_them() {
    let team = Team::new();
    let base = format!("/api/tasks?projectId={}", team.project);
    for (query, field) in [
        ("&completed=", "completed"),
        ("&completed=yes", "completed"),
        ("&statusId=abc", "statusId"),
        ("&labelId=", "labelId"),
        ("&parentId=42", "parentId"),
        ("&assigneeId=bob", "assigneeId"),
        ("&priority=", "priority"),
        ("&dueBefore=", "dueBefore"),
        ("&updatedSince=", "updatedSince"),
    ] {
        let error = team
            .server
            .get(&format!("{base}{query}"), &team.owner)
            .assert_error(400, "invalid_query");
        assert_eq!(error["field"], field, "{query}");
    }
    let error = team
        .server
        .get("/api/tasks?projectId=nope", &team.owner)
        .assert_error(400, "invalid_query");
    assert_eq!(error["field"], "projectId");
    team.task("t");
    for query in ["&completed=false", "&q=", "&assigneeId=me"] {
        assert_eq!(
            team.server
                .get(&format!("{base}{query}"), &team.owner)
                .status,
            200,
            "{query}"
        );
    }
    assert_eq!(
        team.server
            .get_ok(&format!("{base}&completed=false"), &team.owner)
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
