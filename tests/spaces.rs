//! `/api/spaces`, `/api/spaces/:id`, `/api/spaces/:id/members`.

use serde_json::json;

use crate::util::{Env, Team};

#[test]
fn creating_a_team_space_makes_the_caller_owner_with_a_general_project() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve();
    let response = server.post(
        "/api/spaces",
        &token,
        &json!({"name": "  Acme  ", "slug": "acme", "description": "Our team", "color": "#3B82F6"}),
    );
    assert_eq!(response.status, 201, "{}", response.body);
    let space = response.json();
    assert_eq!(space["name"], "Acme", "trimmed");
    assert_eq!(space["slug"], "acme");
    assert_eq!(space["color"], "#3b82f6");
    assert_eq!(space["description"], "Our team");
    assert_eq!(space["personal"], false);
    assert_eq!(space["role"], "owner");
    let id = space["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    let location = response.header("location").unwrap();
    assert!(
        location.ends_with(&format!("/api/spaces/{id}")),
        "{location}"
    );
    assert_eq!(server.get_ok(&format!("/api/spaces/{id}"), &token), space);

    let projects = server.get_ok(&format!("/api/projects?spaceId={id}"), &token);
    let general = &projects[0];
    assert_eq!(projects.as_array().unwrap().len(), 1);
    assert_eq!(general["name"], "General");
    assert_eq!(general["slug"], "general");
    let categories: Vec<&str> = general["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["category"].as_str().unwrap())
        .collect();
    assert_eq!(categories, ["todo", "in_progress", "done"]);

    let spaces = server.get_ok("/api/spaces", &token);
    assert_eq!(spaces.as_array().unwrap().len(), 2, "personal + team");
}

#[test]
fn slugs_are_unique_across_the_server() {
    let team = Team::new();
    let response = team.server.post(
        "/api/spaces",
        &team.member,
        &json!({"name": "Again", "slug": "team"}),
    );
    let body = response.assert_error(409, "conflict");
    assert_eq!(body["field"], "slug");
    // A user's personal space slug is taken as well.
    team.server
        .post(
            "/api/spaces",
            &team.member,
            &json!({"name": "X", "slug": "owner"}),
        )
        .assert_error(409, "conflict");
}

#[test]
fn members_see_the_space_with_their_role_and_outsiders_do_not() {
    let team = Team::new();
    let spaces = team.server.get_ok("/api/spaces", &team.viewer);
    let shared = spaces
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == team.space.as_str())
        .unwrap();
    assert_eq!(shared["role"], "viewer");
    let outsider_spaces = team.server.get_ok("/api/spaces", &team.outsider);
    assert!(
        outsider_spaces
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["id"] != team.space.as_str())
    );
    team.server
        .get(&format!("/api/spaces/{}", team.space), &team.outsider)
        .assert_error(404, "not_found");
    team.server
        .get(
            &format!("/api/spaces/{}/members", team.space),
            &team.outsider,
        )
        .assert_error(404, "not_found");
    team.server
        .get("/api/spaces/no-such-space/members", &team.owner)
        .assert_error(404, "not_found");

    let members = team
        .server
        .get_ok(&format!("/api/spaces/{}/members", team.space), &team.member);
    let roles: Vec<(String, String)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(roles.len(), 3);
    for (email, role) in [
        ("owner@example.com", "owner"),
        ("member@example.com", "member"),
        ("viewer@example.com", "viewer"),
    ] {
        assert!(
            roles.contains(&(email.to_string(), role.to_string())),
            "{roles:?}"
        );
    }
    let ids: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&team.member_id.as_str()));
}

#[test]
fn a_personal_space_is_its_owners_alone() {
    let team = Team::new();
    let personal = team.server.get_ok("/api/spaces", &team.member);
    let personal = personal
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["personal"] == true)
        .unwrap()
        .clone();
    let id = personal["id"].as_str().unwrap();
    team.server
        .get(&format!("/api/spaces/{id}"), &team.owner)
        .assert_error(404, "not_found");
    team.server
        .get(&format!("/api/projects?spaceId={id}"), &team.owner)
        .assert_error(404, "not_found");
    let members = team
        .server
        .get_ok(&format!("/api/spaces/{id}/members"), &team.member);
    assert_eq!(members.as_array().unwrap().len(), 1);
}

#[test]
fn spaces_are_paged_with_a_link_header() {
    let env = Env::new();
    env.user("ann@example.com", "pro");
    let token = env.token("ann@example.com", &[]);
    let server = env.serve();
    for i in 0..4 {
        server.create(
            "/api/spaces",
            &token,
            &json!({"name": format!("S{i}"), "slug": format!("space-{i}")}),
        );
    }
    let mut seen = Vec::new();
    let mut path = "/api/spaces?limit=2".to_string();
    loop {
        let response = server.get(&path, &token);
        assert_eq!(response.status, 200, "{}", response.body);
        for space in response.json().as_array().unwrap() {
            seen.push(space["id"].as_str().unwrap().to_string());
        }
        let Some(link) = response.header("link") else {
            break;
        };
        assert!(link.ends_with("; rel=\"next\""), "{link}");
        let url = link.trim_start_matches('<').split('>').next().unwrap();
        assert!(
            url.starts_with(&format!("http://{}/api/spaces?", server.addr)),
            "{url}"
        );
        assert!(url.contains("limit=2"), "{url}");
        path = url
            .split(&server.addr.to_string())
            .nth(1)
            .unwrap()
            .to_string();
    }
    assert_eq!(seen.len(), 5);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5);
}
