//! `GET /api/tasks`: every filter, `assigneeId=me` across spaces, and the query parameters checked
//! as the document types them (dates and times at the ends of the calendar included).

use serde_json::{Value, json};

use crate::tasks::{ids, statuses};
use crate::util::Team;

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
