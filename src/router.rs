//! The hand-rolled router: `(method, path)` -> `Route`, or 404, or 405 with `Allow`.
//!
//! Every endpoint:
//!
//! ```text
//! GET    /healthz                     -- {"status":"ok"} when the database answers (no auth)
//! GET    /api/openapi.json            -- the OpenAPI 3.1 document (no auth)
//! GET    /developers                  -- the human-readable API reference (no auth)
//! GET    /api/me                      -- the token's user and the token itself
//! GET    /api/spaces                  -- the caller's spaces, personal space included
//! POST   /api/spaces                  -- create a team space (caller becomes owner)
//! GET    /api/spaces/:id              -- one space with the caller's role (the `Location` of a new space)
//! GET    /api/spaces/:id/members      -- the members of a space
//! GET    /api/projects?spaceId=       -- the projects of a space
//! POST   /api/projects                -- create a project
//! GET    /api/projects/:id            -- one project with its statuses
//! PATCH  /api/projects/:id            -- change a project
//! GET    /api/tasks                   -- list tasks, filtered
//! POST   /api/tasks                   -- create a task
//! GET    /api/tasks/:id               -- one task
//! PATCH  /api/tasks/:id               -- change a task
//! DELETE /api/tasks/:id               -- delete a task and its subtasks
//! POST   /api/tasks/:id/assignees     -- assign a user (idempotent)
//! DELETE /api/tasks/:id/assignees     -- unassign a user (idempotent)
//! POST   /api/tasks/:id/labels        -- add a label by id or name (idempotent)
//! DELETE /api/tasks/:id/labels        -- remove a label (idempotent)
//! GET    /api/labels?spaceId=         -- the labels of a space
//! GET    /api/webhooks?spaceId=       -- the webhooks of a space (owner and admin only)
//! POST   /api/webhooks                -- create a webhook (its secret is in this answer only)
//! GET    /api/webhooks/:id            -- one webhook
//! PATCH  /api/webhooks/:id            -- change a webhook
//! DELETE /api/webhooks/:id            -- delete a webhook and its undelivered events
//! POST   /api/webhooks/:id/rotate-secret -- a new secret; the old one signs too for 24 hours
//! POST   /api/webhooks/:id/test       -- send a `webhook.test` event (202)
//! GET    /api/webhooks/:id/deliveries -- delivery attempts, newest first
//! ```
//!
//! The web settings pages (`web/`) are routed here too, listed in `WEB_ENDPOINTS`:
//!
//! ```text
//! GET, POST /login                               -- sign in
//! POST      /logout                              -- sign out
//! GET       /settings/security                   -- the user's tokens
//! POST      /settings/security/tokens            -- create a token
//! POST      /settings/security/tokens/:id/revoke -- revoke a token
//! POST      /settings/security/tokens/:id/rotate -- replace a token with a new one
//! GET       /settings/webhooks                   -- the webhooks of the spaces the user manages
//! POST      /settings/webhooks                   -- add a webhook
//! POST      /settings/webhooks/:id               -- change a webhook
//! POST      /settings/webhooks/:id/toggle        -- switch a webhook off or on
//! POST      /settings/webhooks/:id/rotate        -- rotate a webhook's secret
//! POST      /settings/webhooks/:id/test          -- send a webhook a test event
//! POST      /settings/webhooks/:id/delete        -- delete a webhook
//! GET       /assets/settings.js                  -- the pages' script (no inline script anywhere)
//! GET       /assets/settings.css                 -- the pages' stylesheet
//! ```
//!
//! Routing happens before authentication: an unknown path is 404 and a known path with the wrong
//! method is 405 for everyone, since the route table is public (it is the OpenAPI document).

use hyper::Method;

use crate::error::Error;

/// A routed request, by audience. Each audience has its own dispatcher, which matches its enum
/// exhaustively: `api::dispatch_public`, `api::dispatch_read` and `api::dispatch_write` (after
/// authentication), `web::dispatch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Public(PublicRoute),
    Api(ApiRoute),
    Web(WebRoute),
}

/// Anyone may call these, without a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicRoute {
    Health,
    OpenApi,
    Developers,
}

/// The Bearer-token API, by what it does to the database: a read runs in one snapshot, a write
/// leaves its commit for the answer to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRoute {
    Read(ReadRoute),
    Write(WriteRoute),
}

/// The API's GETs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadRoute {
    Me,
    ListSpaces,
    GetSpace(String),
    ListSpaceMembers(String),
    ListProjects,
    GetProject(String),
    ListTasks,
    GetTask(String),
    ListLabels,
    ListWebhooks,
    GetWebhook(String),
    ListWebhookDeliveries(String),
}

/// The API's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRoute {
    CreateSpace,
    CreateProject,
    UpdateProject(String),
    CreateTask,
    UpdateTask(String),
    DeleteTask(String),
    AddAssignee(String),
    RemoveAssignee(String),
    AddLabel(String),
    RemoveLabel(String),
    CreateWebhook,
    UpdateWebhook(String),
    DeleteWebhook(String),
    RotateWebhookSecret(String),
    TestWebhook(String),
    /// `POST /mcp`: JSON-RPC, whose tool calls run the routes above and the reads.
    Mcp,
}

/// The settings pages: session cookies and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebRoute {
    LoginPage,
    Login,
    Logout,
    SecurityPage,
    CreateTokenForm,
    RevokeTokenForm(String),
    RotateTokenForm(String),
    WebhooksPage,
    CreateWebhookForm,
    UpdateWebhookForm(String),
    ToggleWebhookForm(String),
    RotateWebhookSecretForm(String),
    TestWebhookForm(String),
    DeleteWebhookForm(String),
    SettingsScript,
    SettingsStyle,
}

/// Every path pattern with the methods it allows: the source of `Allow` headers, and the list
/// the OpenAPI tests compare the document against.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("/healthz", "GET"),
    ("/api/openapi.json", "GET"),
    ("/developers", "GET"),
    ("/api/me", "GET"),
    ("/api/spaces", "GET, POST"),
    ("/api/spaces/:id", "GET"),
    ("/api/spaces/:id/members", "GET"),
    ("/api/projects", "GET, POST"),
    ("/api/projects/:id", "GET, PATCH"),
    ("/api/tasks", "GET, POST"),
    ("/api/tasks/:id", "GET, PATCH, DELETE"),
    ("/api/tasks/:id/assignees", "POST, DELETE"),
    ("/api/tasks/:id/labels", "POST, DELETE"),
    ("/api/labels", "GET"),
    ("/api/webhooks", "GET, POST"),
    ("/api/webhooks/:id", "GET, PATCH, DELETE"),
    ("/api/webhooks/:id/rotate-secret", "POST"),
    ("/api/webhooks/:id/test", "POST"),
    ("/api/webhooks/:id/deliveries", "GET"),
];

/// The MCP endpoint (SPEC 14): JSON-RPC, not in the OpenAPI document.
pub const MCP_ENDPOINTS: &[(&str, &str)] = &[("/mcp", "POST")];

/// The web pages' patterns, apart from the API's: they are HTML, not in the OpenAPI document.
pub const WEB_ENDPOINTS: &[(&str, &str)] = &[
    ("/login", "GET, POST"),
    ("/logout", "POST"),
    ("/settings/security", "GET"),
    ("/settings/security/tokens", "POST"),
    ("/settings/security/tokens/:id/revoke", "POST"),
    ("/settings/security/tokens/:id/rotate", "POST"),
    ("/settings/webhooks", "GET, POST"),
    ("/settings/webhooks/:id", "POST"),
    ("/settings/webhooks/:id/toggle", "POST"),
    ("/settings/webhooks/:id/rotate", "POST"),
    ("/settings/webhooks/:id/test", "POST"),
    ("/settings/webhooks/:id/delete", "POST"),
    ("/assets/settings.js", "GET"),
    ("/assets/settings.css", "GET"),
];

impl Route {
    /// The path pattern, for logs and documentation (never the concrete path with its ids).
    pub fn pattern(&self) -> &'static str {
        use PublicRoute::*;
        use ReadRoute::*;
        use WebRoute::*;
        use WriteRoute::*;
        match self {
            Route::Public(route) => match route {
                Health => "/healthz",
                OpenApi => "/api/openapi.json",
                Developers => "/developers",
            },
            Route::Api(ApiRoute::Read(route)) => match route {
                Me => "/api/me",
                ListSpaces => "/api/spaces",
                GetSpace(_) => "/api/spaces/:id",
                ListSpaceMembers(_) => "/api/spaces/:id/members",
                ListProjects => "/api/projects",
                GetProject(_) => "/api/projects/:id",
                ListTasks => "/api/tasks",
                GetTask(_) => "/api/tasks/:id",
                ListLabels => "/api/labels",
                ListWebhooks => "/api/webhooks",
                GetWebhook(_) => "/api/webhooks/:id",
                ListWebhookDeliveries(_) => "/api/webhooks/:id/deliveries",
            },
            Route::Api(ApiRoute::Write(route)) => match route {
                CreateSpace => "/api/spaces",
                CreateProject => "/api/projects",
                UpdateProject(_) => "/api/projects/:id",
                CreateTask => "/api/tasks",
                UpdateTask(_) | DeleteTask(_) => "/api/tasks/:id",
                AddAssignee(_) | RemoveAssignee(_) => "/api/tasks/:id/assignees",
                AddLabel(_) | RemoveLabel(_) => "/api/tasks/:id/labels",
                CreateWebhook => "/api/webhooks",
                UpdateWebhook(_) | DeleteWebhook(_) => "/api/webhooks/:id",
                RotateWebhookSecret(_) => "/api/webhooks/:id/rotate-secret",
                TestWebhook(_) => "/api/webhooks/:id/test",
                Mcp => "/mcp",
            },
            Route::Web(route) => match route {
                LoginPage | Login => "/login",
                Logout => "/logout",
                SecurityPage => "/settings/security",
                CreateTokenForm => "/settings/security/tokens",
                RevokeTokenForm(_) => "/settings/security/tokens/:id/revoke",
                RotateTokenForm(_) => "/settings/security/tokens/:id/rotate",
                WebhooksPage | CreateWebhookForm => "/settings/webhooks",
                UpdateWebhookForm(_) => "/settings/webhooks/:id",
                ToggleWebhookForm(_) => "/settings/webhooks/:id/toggle",
                RotateWebhookSecretForm(_) => "/settings/webhooks/:id/rotate",
                TestWebhookForm(_) => "/settings/webhooks/:id/test",
                DeleteWebhookForm(_) => "/settings/webhooks/:id/delete",
                SettingsScript => "/assets/settings.js",
                SettingsStyle => "/assets/settings.css",
            },
        }
    }

    /// `POST /mcp`: JSON-RPC whose tool calls are the API's own routes; it checks the token's
    /// scope per tool, and runs on the read lane when it can only read.
    pub fn is_mcp(&self) -> bool {
        *self == Route::Api(ApiRoute::Write(WriteRoute::Mcp))
    }

    /// Whether the route reads a request body. Any other ignores one it is sent (it is never
    /// read, so it can neither be too large nor too slow).
    pub fn takes_body(&self) -> bool {
        use WebRoute::*;
        use WriteRoute::*;
        match self {
            Route::Public(_) | Route::Api(ApiRoute::Read(_)) => false,
            Route::Api(ApiRoute::Write(route)) => !matches!(
                route,
                DeleteTask(_) | DeleteWebhook(_) | RotateWebhookSecret(_) | TestWebhook(_)
            ),
            // Exhaustive, so that a new page has to say.
            Route::Web(route) => match route {
                LoginPage | SecurityPage | WebhooksPage | SettingsScript | SettingsStyle => false,
                Login
                | Logout
                | CreateTokenForm
                | RevokeTokenForm(_)
                | RotateTokenForm(_)
                | CreateWebhookForm
                | UpdateWebhookForm(_)
                | ToggleWebhookForm(_)
                | RotateWebhookSecretForm(_)
                | TestWebhookForm(_)
                | DeleteWebhookForm(_) => true,
            },
        }
    }
}

pub fn route(method: &Method, path: &str) -> Result<Route, Error> {
    use PublicRoute::*;
    use ReadRoute::*;
    use WebRoute::*;
    use WriteRoute::*;
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    // An empty segment (`//`, a trailing `/`, an empty id) never names a resource.
    if !path.starts_with('/') || segments.iter().any(|s| s.is_empty()) {
        return Err(Error::NotFound);
    }
    // Ids are stored in lower case; a client may write a UUID in either.
    let id = |s: &str| s.to_ascii_lowercase();
    let (pattern, route) = match (segments.as_slice(), method) {
        (["healthz"], m) => (
            "/healthz",
            (m == Method::GET).then_some(Route::Public(Health)),
        ),
        (["api", "openapi.json"], m) => (
            "/api/openapi.json",
            (m == Method::GET).then_some(Route::Public(OpenApi)),
        ),
        (["developers"], m) => (
            "/developers",
            (m == Method::GET).then_some(Route::Public(Developers)),
        ),
        (["api", "me"], m) => (
            "/api/me",
            (m == Method::GET).then_some(Route::Api(ApiRoute::Read(Me))),
        ),
        (["api", "spaces"], m) => (
            "/api/spaces",
            match *m {
                Method::GET => Some(Route::Api(ApiRoute::Read(ListSpaces))),
                Method::POST => Some(Route::Api(ApiRoute::Write(CreateSpace))),
                _ => None,
            },
        ),
        (["api", "spaces", space], m) => (
            "/api/spaces/:id",
            (m == Method::GET).then(|| Route::Api(ApiRoute::Read(GetSpace(id(space))))),
        ),
        (["api", "spaces", space, "members"], m) => (
            "/api/spaces/:id/members",
            (m == Method::GET).then(|| Route::Api(ApiRoute::Read(ListSpaceMembers(id(space))))),
        ),
        (["api", "projects"], m) => (
            "/api/projects",
            match *m {
                Method::GET => Some(Route::Api(ApiRoute::Read(ListProjects))),
                Method::POST => Some(Route::Api(ApiRoute::Write(CreateProject))),
                _ => None,
            },
        ),
        (["api", "projects", project], m) => (
            "/api/projects/:id",
            match *m {
                Method::GET => Some(Route::Api(ApiRoute::Read(GetProject(id(project))))),
                Method::PATCH => Some(Route::Api(ApiRoute::Write(UpdateProject(id(project))))),
                _ => None,
            },
        ),
        (["api", "tasks"], m) => (
            "/api/tasks",
            match *m {
                Method::GET => Some(Route::Api(ApiRoute::Read(ListTasks))),
                Method::POST => Some(Route::Api(ApiRoute::Write(CreateTask))),
                _ => None,
            },
        ),
        (["api", "tasks", task], m) => (
            "/api/tasks/:id",
            match *m {
                Method::GET => Some(Route::Api(ApiRoute::Read(GetTask(id(task))))),
                Method::PATCH => Some(Route::Api(ApiRoute::Write(UpdateTask(id(task))))),
                Method::DELETE => Some(Route::Api(ApiRoute::Write(DeleteTask(id(task))))),
                _ => None,
            },
        ),
        (["api", "tasks", task, "assignees"], m) => (
            "/api/tasks/:id/assignees",
            match *m {
                Method::POST => Some(Route::Api(ApiRoute::Write(AddAssignee(id(task))))),
                Method::DELETE => Some(Route::Api(ApiRoute::Write(RemoveAssignee(id(task))))),
                _ => None,
            },
        ),
        (["api", "tasks", task, "labels"], m) => (
            "/api/tasks/:id/labels",
            match *m {
                Method::POST => Some(Route::Api(ApiRoute::Write(AddLabel(id(task))))),
                Method::DELETE => Some(Route::Api(ApiRoute::Write(RemoveLabel(id(task))))),
                _ => None,
            },
        ),
        (["api", "labels"], m) => (
            "/api/labels",
            (m == Method::GET).then_some(Route::Api(ApiRoute::Read(ListLabels))),
        ),
        (["api", "webhooks"], m) => (
            "/api/webhooks",
            match *m {
                Method::GET => Some(Route::Api(ApiRoute::Read(ListWebhooks))),
                Method::POST => Some(Route::Api(ApiRoute::Write(CreateWebhook))),
                _ => None,
            },
        ),
        (["api", "webhooks", webhook], m) => (
            "/api/webhooks/:id",
            match *m {
                Method::GET => Some(Route::Api(ApiRoute::Read(GetWebhook(id(webhook))))),
                Method::PATCH => Some(Route::Api(ApiRoute::Write(UpdateWebhook(id(webhook))))),
                Method::DELETE => Some(Route::Api(ApiRoute::Write(DeleteWebhook(id(webhook))))),
                _ => None,
            },
        ),
        (["api", "webhooks", webhook, "rotate-secret"], m) => (
            "/api/webhooks/:id/rotate-secret",
            (m == Method::POST)
                .then(|| Route::Api(ApiRoute::Write(RotateWebhookSecret(id(webhook))))),
        ),
        (["api", "webhooks", webhook, "test"], m) => (
            "/api/webhooks/:id/test",
            (m == Method::POST).then(|| Route::Api(ApiRoute::Write(TestWebhook(id(webhook))))),
        ),
        (["api", "webhooks", webhook, "deliveries"], m) => (
            "/api/webhooks/:id/deliveries",
            (m == Method::GET)
                .then(|| Route::Api(ApiRoute::Read(ListWebhookDeliveries(id(webhook))))),
        ),
        (["login"], m) => (
            "/login",
            match *m {
                Method::GET => Some(Route::Web(LoginPage)),
                Method::POST => Some(Route::Web(Login)),
                _ => None,
            },
        ),
        (["logout"], m) => ("/logout", (m == Method::POST).then_some(Route::Web(Logout))),
        (["settings", "security"], m) => (
            "/settings/security",
            (m == Method::GET).then_some(Route::Web(SecurityPage)),
        ),
        (["settings", "security", "tokens"], m) => (
            "/settings/security/tokens",
            (m == Method::POST).then_some(Route::Web(CreateTokenForm)),
        ),
        (["settings", "security", "tokens", token, "revoke"], m) => (
            "/settings/security/tokens/:id/revoke",
            (m == Method::POST).then(|| Route::Web(RevokeTokenForm(id(token)))),
        ),
        (["settings", "security", "tokens", token, "rotate"], m) => (
            "/settings/security/tokens/:id/rotate",
            (m == Method::POST).then(|| Route::Web(RotateTokenForm(id(token)))),
        ),
        (["settings", "webhooks"], m) => (
            "/settings/webhooks",
            match *m {
                Method::GET => Some(Route::Web(WebhooksPage)),
                Method::POST => Some(Route::Web(CreateWebhookForm)),
                _ => None,
            },
        ),
        (["settings", "webhooks", webhook], m) => (
            "/settings/webhooks/:id",
            (m == Method::POST).then(|| Route::Web(UpdateWebhookForm(id(webhook)))),
        ),
        (["settings", "webhooks", webhook, action], m) => {
            let (pattern, form): (_, fn(String) -> WebRoute) = match *action {
                "toggle" => ("/settings/webhooks/:id/toggle", ToggleWebhookForm),
                "rotate" => ("/settings/webhooks/:id/rotate", RotateWebhookSecretForm),
                "test" => ("/settings/webhooks/:id/test", TestWebhookForm),
                "delete" => ("/settings/webhooks/:id/delete", DeleteWebhookForm),
                _ => return Err(Error::NotFound),
            };
            (
                pattern,
                (m == Method::POST).then(|| Route::Web(form(id(webhook)))),
            )
        }
        (["mcp"], m) => (
            "/mcp",
            (m == Method::POST).then_some(Route::Api(ApiRoute::Write(Mcp))),
        ),
        (["assets", "settings.js"], m) => (
            "/assets/settings.js",
            (m == Method::GET).then_some(Route::Web(SettingsScript)),
        ),
        (["assets", "settings.css"], m) => (
            "/assets/settings.css",
            (m == Method::GET).then_some(Route::Web(SettingsStyle)),
        ),
        _ => return Err(Error::NotFound),
    };
    route.ok_or_else(|| Error::MethodNotAllowed {
        allow: allowed_methods(pattern),
    })
}

/// The `Allow` value of a pattern from `ENDPOINTS`.
fn allowed_methods(pattern: &str) -> &'static str {
    ENDPOINTS
        .iter()
        .chain(WEB_ENDPOINTS)
        .chain(MCP_ENDPOINTS)
        .find(|(p, _)| *p == pattern)
        .map(|(_, allow)| *allow)
        .expect("every routed pattern is listed in ENDPOINTS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_with_parameters() {
        assert_eq!(
            route(&Method::GET, "/api/tasks/abc").unwrap(),
            Route::Api(ApiRoute::Read(ReadRoute::GetTask("abc".into())))
        );
        assert_eq!(
            route(&Method::DELETE, "/api/tasks/t1/labels").unwrap(),
            Route::Api(ApiRoute::Write(WriteRoute::RemoveLabel("t1".into())))
        );
        assert_eq!(
            route(&Method::GET, "/api/spaces/s1/members").unwrap(),
            Route::Api(ApiRoute::Read(ReadRoute::ListSpaceMembers("s1".into())))
        );
        assert_eq!(
            route(&Method::GET, "/healthz").unwrap(),
            Route::Public(PublicRoute::Health)
        );
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "/",
            "",
            "/api",
            "/api/",
            "/api/tasks/",
            "/api//tasks",
            "/api/tasks//labels",
            "/api/taskss",
            "/api/tasks/a/b/c",
            "api/me",
        ] {
            assert!(
                matches!(route(&Method::GET, path), Err(Error::NotFound)),
                "{path}"
            );
        }
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let Err(Error::MethodNotAllowed { allow }) = route(&Method::PUT, "/api/tasks/x") else {
            panic!("expected 405");
        };
        assert_eq!(allow, "GET, PATCH, DELETE");
        let Err(Error::MethodNotAllowed { allow }) = route(&Method::GET, "/api/tasks/x/labels")
        else {
            panic!("expected 405");
        };
        assert_eq!(allow, "POST, DELETE");
    }

    /// An API GET reads (one snapshot) and every other API method writes: the route says which
    /// database context its handler gets.
    #[test]
    fn api_gets_are_reads_and_every_other_method_a_write() {
        for (pattern, allow) in ENDPOINTS {
            let path = pattern.replace(":id", "some-id");
            for method in allow.split(", ") {
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                match (route(&method, &path).unwrap(), method == Method::GET) {
                    (Route::Api(ApiRoute::Read(_)), true)
                    | (Route::Api(ApiRoute::Write(_)), false) => {}
                    (Route::Public(_), true) => {}
                    (other, _) => panic!("{method} {path} routed to {other:?}"),
                }
            }
        }
    }

    #[test]
    fn every_allowed_method_of_every_endpoint_routes_to_its_pattern() {
        for (pattern, allow) in ENDPOINTS.iter().chain(WEB_ENDPOINTS).chain(MCP_ENDPOINTS) {
            let path = pattern.replace(":id", "some-id");
            for method in allow.split(", ") {
                let method = Method::from_bytes(method.as_bytes()).unwrap();
                let routed = route(&method, &path).unwrap();
                assert_eq!(routed.pattern(), *pattern, "{method} {path}");
            }
        }
    }
}
