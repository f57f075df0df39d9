//! Cursor pagination: every item exactly once, in a stable order, while items are added.

use std::collections::HashSet;

use serde_json::json;

use crate::util::Team;

#[test]
fn paging_250_tasks_with_inserts_between_pages_sees_each_once() {
    let team = Team::new();
    let mut created = Vec::new();
    for i in 0..250 {
        created.push(
            team.server.create(
                "/api/tasks",
                &team.member,
                &json!({"projectId": team.project, "title": format!("t{i}")}),
            )["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut seen = Vec::new();
    let mut path = format!("/api/tasks?projectId={}&limit=100", team.project);
    let mut pages = 0;
    loop {
        let response = team.server.get(&path, &team.viewer);
        assert_eq!(response.status, 200, "{}", response.body);
        let page = response.json();
        let page = page.as_array().unwrap();
        assert!(page.len() <= 100);
        let positions: Vec<f64> = page
            .iter()
            .map(|t| t["position"].as_f64().unwrap())
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] <= w[1]),
            "ordered by position"
        );
        seen.extend(page.iter().map(|t| t["id"].as_str().unwrap().to_string()));
        pages += 1;
        // New tasks arrive while the client pages: at the end, and one squeezed in at the front.
        for i in 0..3 {
            let id = team.server.create(
                "/api/tasks",
                &team.owner,
                &json!({"projectId": team.project, "title": format!("late {pages}.{i}")}),
            )["id"]
                .as_str()
                .unwrap()
                .to_string();
            created.push(id);
        }
        team.server.create(
            "/api/tasks",
            &team.owner,
            &json!({"projectId": team.project, "title": "early", "position": -(pages as f64)}),
        );
        let Some(link) = response.header("link") else {
            break;
        };
        let url = link.trim_start_matches('<').split('>').next().unwrap();
        assert!(
            url.contains("limit=100") && url.contains("projectId="),
            "{url}"
        );
        // `Next-Cursor` is the cursor of the `Link` URL, for clients that do not parse links.
        let cursor = response
            .header("next-cursor")
            .expect("Next-Cursor beside Link");
        assert!(
            url.ends_with(&format!("&cursor={cursor}")),
            "{url} {cursor}"
        );
        path = url
            .split(&team.server.addr.to_string())
            .nth(1)
            .unwrap()
            .to_string();
        assert!(pages < 10, "paging does not end");
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a task was returned twice");
    for id in &created[..250] {
        assert!(
            unique.contains(id),
            "task {id} that existed from the start was never returned"
        );
    }
    assert!(pages >= 3);
    // Appended while paging, after the cursor: these are seen too.
    let appended: Vec<&String> = created[250..]
        .iter()
        .filter(|id| unique.contains(id))
        .collect();
    assert!(!appended.is_empty());
}

#[test]
fn the_last_full_page_has_no_next_link() {
    let team = Team::new();
    for i in 0..4 {
        team.task(&format!("t{i}"));
    }
    let first = team.server.get(
        &format!("/api/tasks?projectId={}&limit=2", team.project),
        &team.owner,
    );
    assert!(first.header("link").is_some());
    assert!(first.header("next-cursor").is_some());
    let all = team.server.get(
        &format!("/api/tasks?projectId={}&limit=4", team.project),
        &team.owner,
    );
    assert_eq!(all.json().as_array().unwrap().len(), 4);
    assert!(
        all.header("link").is_none() && all.header("next-cursor").is_none(),
        "no next page when exactly `limit` items exist"
    );
    let default = team.server.get(
        &format!("/api/tasks?projectId={}", team.project),
        &team.owner,
    );
    assert_eq!(default.json().as_array().unwrap().len(), 4);
}
