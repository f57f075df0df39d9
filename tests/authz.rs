//! The role x route authorization matrix: two spaces, an owner, a member, a viewer and an
//! outsider; every cell asserted. Owner, admin and member write; a viewer reads (403 on writes);
//! anyone outside the space gets 404, as if nothing existed. Webhooks are the space managers'
//! alone: member and viewer get 403 on every webhook route, reads included.

use serde_json::{Value, json};

use crate::util::{Response, Server, Team};

/// One space as seen by four callers, and a way to make fresh tasks in it.
struct Side<'a> {
    server: &'a Server,
    space: &'a str,
    project: &'a str,
    owner: &'a str,
    member_id: &'a str,
    /// A webhook of the space for the routes that leave it in place, made once (a space holds
    /// at most 20).
    webhook: std::cell::OnceCell<String>,
}

impl<'a> Side<'a> {
    /// The team's space, owned by the team's owner.
    fn team(team: &'a Team) -> Side<'a> {
        Side {
            server: &team.server,
            space: &team.space,
            project: &team.project,
            owner: &team.owner,
            member_id: &team.member_id,
            webhook: std::cell::OnceCell::new(),
        }
    }

    /// The second space: the outsider owns it; for the team it is the outside.
    fn other(team: &'a Team) -> Side<'a> {
        Side {
            server: &team.server,
            space: &team.other_space,
            project: &team.other_project,
            owner: &team.outsider,
            member_id: &team.outsider_id,
            webhook: std::cell::OnceCell::new(),
        }
    }

    fn webhook(&self) -> &str {
        self.webhook.get_or_init(|| self.new_webhook())
    }

    fn new_webhook(&self) -> String {
        // Port 9 (discard): test events are refused there, which is all they need to be.
        let body =
            json!({"spaceId": self.space, "url": "http://127.0.0.1:9/hook", "events": ["*"]});
        self.server.create("/api/webhooks", self.owner, &body)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn task(&self) -> String {
        let body = json!({"projectId": self.project, "title": "cell", "labels": ["l"], "assignees": [self.member_id]});
        self.server.create("/api/tasks", self.owner, &body)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

type Call = fn(&Side<'_>, &str) -> Response;

const ROUTES: &[(&str, Call)] = &[
    ("GET /api/spaces/:id", |s, t| {
        s.server.get(&format!("/api/spaces/{}", s.space), t)
    }),
    ("GET /api/spaces/:id/members", |s, t| {
        s.server.get(&format!("/api/spaces/{}/members", s.space), t)
    }),
    ("GET /api/projects", |s, t| {
        s.server
            .get(&format!("/api/projects?spaceId={}", s.space), t)
    }),
    ("POST /api/projects", |s, t| {
        let slug = format!("p-{}", &ktasks::token::generate().unwrap()[3..15]);
        s.server.post(
            "/api/projects",
            t,
            &json!({"spaceId": s.space, "name": "P", "slug": slug}),
        )
    }),
    ("GET /api/projects/:id", |s, t| {
        s.server.get(&format!("/api/projects/{}", s.project), t)
    }),
    ("PATCH /api/projects/:id", |s, t| {
        s.server.patch(
            &format!("/api/projects/{}", s.project),
            t,
            &json!({"description": "x"}),
        )
    }),
    ("GET /api/tasks", |s, t| {
        s.server
            .get(&format!("/api/tasks?projectId={}", s.project), t)
    }),
    ("POST /api/tasks", |s, t| {
        s.server.post(
            "/api/tasks",
            t,
            &json!({"projectId": s.project, "title": "new"}),
        )
    }),
    ("GET /api/tasks/:id", |s, t| {
        s.server.get(&format!("/api/tasks/{}", s.task()), t)
    }),
    ("PATCH /api/tasks/:id", |s, t| {
        s.server.patch(
            &format!("/api/tasks/{}", s.task()),
            t,
            &json!({"title": "changed"}),
        )
    }),
    ("DELETE /api/tasks/:id", |s, t| {
        s.server.delete(&format!("/api/tasks/{}", s.task()), t)
    }),
    ("POST /api/tasks/:id/assignees", |s, t| {
        s.server.post(
            &format!("/api/tasks/{}/assignees", s.task()),
            t,
            &json!({"userId": s.member_id}),
        )
    }),
    ("DELETE /api/tasks/:id/assignees", |s, t| {
        s.server.delete(
            &format!("/api/tasks/{}/assignees?userId={}", s.task(), s.member_id),
            t,
        )
    }),
    ("POST /api/tasks/:id/labels", |s, t| {
        s.server.post(
            &format!("/api/tasks/{}/labels", s.task()),
            t,
            &json!({"name": "m"}),
        )
    }),
    ("DELETE /api/tasks/:id/labels", |s, t| {
        s.server
            .delete(&format!("/api/tasks/{}/labels?name=l", s.task()), t)
    }),
    ("GET /api/labels", |s, t| {
        s.server.get(&format!("/api/labels?spaceId={}", s.space), t)
    }),
    ("GET /api/webhooks", |s, t| {
        s.server
            .get(&format!("/api/webhooks?spaceId={}", s.space), t)
    }),
    ("POST /api/webhooks", |s, t| {
        let body = json!({"spaceId": s.space, "url": "http://127.0.0.1:9/new", "events": ["*"]});
        let response = s.server.post("/api/webhooks", t, &body);
        if response.status == 201 {
            // Keeps the space under its cap of 20.
            let id = response.json()["id"].as_str().unwrap().to_string();
            s.server.delete(&format!("/api/webhooks/{id}"), s.owner);
        }
        response
    }),
    ("GET /api/webhooks/:id", |s, t| {
        s.server.get(&format!("/api/webhooks/{}", s.webhook()), t)
    }),
    ("PATCH /api/webhooks/:id", |s, t| {
        s.server.patch(
            &format!("/api/webhooks/{}", s.webhook()),
            t,
            &json!({"description": "x"}),
        )
    }),
    ("DELETE /api/webhooks/:id", |s, t| {
        s.server
            .delete(&format!("/api/webhooks/{}", s.new_webhook()), t)
    }),
    ("POST /api/webhooks/:id/rotate-secret", |s, t| {
        s.server.post(
            &format!("/api/webhooks/{}/rotate-secret", s.webhook()),
            t,
            &json!({}),
        )
    }),
    ("POST /api/webhooks/:id/test", |s, t| {
        s.server.post(
            &format!("/api/webhooks/{}/test", s.webhook()),
            t,
            &json!({}),
        )
    }),
    ("GET /api/webhooks/:id/deliveries", |s, t| {
        s.server
            .get(&format!("/api/webhooks/{}/deliveries", s.webhook()), t)
    }),
];

/// Expected status per route for [owner, member, viewer, outsider].
fn expected(route: &str) -> [u16; 4] {
    let (method, _) = route.split_once(' ').unwrap();
    if route.contains("/api/webhooks") {
        let owner = match route {
            "POST /api/webhooks" => 201,
            "DELETE /api/webhooks/:id" => 204,
            "POST /api/webhooks/:id/test" => 202,
            _ => 200,
        };
        return [owner, 403, 403, 404];
    }
    match method {
        "GET" => [200, 200, 200, 404],
        "POST" if route.ends_with("/api/projects") || route.ends_with("/api/tasks") => {
            [201, 201, 403, 404]
        }
        "DELETE" if route == "DELETE /api/tasks/:id" => [204, 204, 403, 404],
        _ => [200, 200, 403, 404],
    }
}

fn run_matrix(
    side: &Side<'_>,
    callers: [(&str, &str); 4],
    expect: impl Fn(&str) -> [u16; 4],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (route, call) in ROUTES {
        for ((who, token), want) in callers.iter().zip(expect(route)) {
            let response = call(side, token);
            if response.status != want {
                failures.push(format!(
                    "{route} as {who}: want {want}, got {} {}",
                    response.status, response.body
                ));
                continue;
            }
            let code = match want {
                403 => Some("forbidden"),
                404 => Some("not_found"),
                _ => None,
            };
            if let Some(code) = code {
                let body: Value = response.json();
                if body["code"] != code {
                    failures.push(format!("{route} as {who}: want code {code}, got {body}"));
                }
            }
        }
    }
    failures
}

#[test]
fn role_by_route_matrix_in_two_spaces() {
    let team = Team::new();
    let team_side = Side::team(&team);
    let mut failures = run_matrix(
        &team_side,
        [
            ("owner", &team.owner),
            ("member", &team.member),
            ("viewer", &team.viewer),
            ("outsider", &team.outsider),
        ],
        expected,
    );
    // The second space: the outsider owns it; for the team's three it is the outside.
    let other_side = Side::other(&team);
    failures.extend(run_matrix(
        &other_side,
        [
            ("its owner", &team.outsider),
            ("team owner", &team.owner),
            ("team member", &team.member),
            ("team viewer", &team.viewer),
        ],
        |route| [expected(route)[0], 404, 404, 404],
    ));
    assert_all_right(&failures);
}

/// The matrix again with tokens restricted to spaces (SPEC 11): within its spaces a restricted
/// token is its user, role for role; outside them, even in a space its user owns, everything is
/// 404.
#[test]
fn space_restricted_tokens_by_route() {
    let team = Team::new();
    let env = &team.env;
    let in_team = |email: &str| env.token(email, &["--space", "team"]);
    let outsider_personal = team.server.personal_space(&team.outsider);
    let personal_slug = team
        .server
        .get_ok(&format!("/api/spaces/{outsider_personal}"), &team.outsider)["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let outsider_elsewhere = env.token("outsider@example.com", &["--space", &personal_slug]);
    let team_side = Side::team(&team);
    let (owner, member, viewer) = (
        in_team("owner@example.com"),
        in_team("member@example.com"),
        in_team("viewer@example.com"),
    );
    let mut failures = run_matrix(
        &team_side,
        [
            ("owner, team only", &owner),
            ("member, team only", &member),
            ("viewer, team only", &viewer),
            ("outsider, own space only", &outsider_elsewhere),
        ],
        expected,
    );
    let other_side = Side::other(&team);
    failures.extend(run_matrix(
        &other_side,
        [
            ("its owner, unrestricted", &team.outsider),
            (
                "its owner, restricted to another of its spaces",
                &outsider_elsewhere,
            ),
            ("team owner, team only", &owner),
            ("team member, team only", &member),
        ],
        |route| [expected(route)[0], 404, 404, 404],
    ));
    assert_all_right(&failures);
}

/// Fails with every wrong cell of the matrices listed, not just the first.
fn assert_all_right(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
