//! Every operation of the API: its path, parameters, body, answers and examples.

use serde_json::{Value, json};

use super::responses::{header, rate_limit_headers};
use super::schemas::{date, name, reference};
use super::{
    EVENT_ID, LABEL_ID, PROJECT_ID, SPACE_ID, STATUS_ID, TASK_ID, TIME, TOKEN_ID, UUID, WEBHOOK_ID,
};
use crate::query::{DEFAULT_LIMIT, MAX_LIMIT};

pub(super) struct Operation {
    pub(super) method: &'static str,
    pub(super) path: &'static str,
    pub(super) id: &'static str,
    pub(super) tag: &'static str,
    pub(super) summary: &'static str,
    pub(super) description: &'static str,
    pub(super) parameters: Vec<Value>,
    pub(super) body: Option<(Value, Value)>,
    pub(super) success: (&'static str, Value),
    pub(super) errors: &'static [&'static str],
    pub(super) auth: bool,
}

pub(super) fn query_parameter(
    name: &str,
    required: bool,
    schema: Value,
    description: &str,
) -> Value {
    json!({ "name": name, "in": "query", "required": required, "schema": schema, "description": description })
}

pub(super) fn paging() -> Vec<Value> {
    vec![
        query_parameter(
            "limit",
            false,
            json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIMIT }),
            &format!("items per page ({DEFAULT_LIMIT} when not given)"),
        ),
        query_parameter(
            "cursor",
            false,
            json!({ "type": "string" }),
            "opaque; take it from the `Next-Cursor` header of the previous page (or the URL in its \
             `Link: <…>; rel=\"next\"`; a cursor the server did not issue is `400 invalid_query`)",
        ),
    ]
}

pub(super) fn space_id_parameter() -> Value {
    let mut parameter = query_parameter(
        "spaceId",
        true,
        json!({ "type": "string", "format": "uuid" }),
        "the space",
    );
    parameter["example"] = json!(SPACE_ID);
    parameter
}

pub(super) fn path_id(example: &str) -> Value {
    json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" }, "description": "the id",
            "example": example })
}

pub(super) fn ok(description: &str, schema: Value, example: Value) -> Value {
    json!({ "description": description, "headers": rate_limit_headers(true),
            "content": { "application/json": { "schema": schema, "example": example } } })
}

pub(super) fn list(description: &str, item: &str, example: Value) -> Value {
    let mut response = ok(
        description,
        json!({ "type": "array", "items": reference(item) }),
        json!([example]),
    );
    response["headers"]["Link"] = header(
        "`<URL of the next page>; rel=\"next\"`, only when more items exist",
        json!({ "type": "string" }),
        false,
    );
    response["headers"]["Next-Cursor"] = header(
        "the next page's `cursor`, only when more items exist (the same as in `Link`)",
        json!({ "type": "string" }),
        false,
    );
    response
}

pub(super) fn created(description: &str, item: &str, example: Value, links: Value) -> Value {
    let mut response = ok(description, reference(item), example);
    response["headers"]["Location"] = header(
        "URL of the created resource",
        json!({ "type": "string", "format": "uri-reference" }),
        true,
    );
    response["links"] = links;
    response
}

/// `response` with OpenAPI links (what to call next with what it returned: tools such as
/// Schemathesis follow them).
pub(super) fn with_links(mut response: Value, links: Value) -> Value {
    response["links"] = links;
    response
}

pub(super) fn link(operation: &str, description: &str) -> Value {
    json!({ "operationId": operation, "parameters": { "id": "$response.body#/id" }, "description": description })
}

pub(super) fn example_space() -> Value {
    json!({ "id": SPACE_ID, "name": "Acme", "slug": "acme", "description": null, "color": "#3b82f6",
            "personal": false, "role": "owner", "createdAt": TIME, "updatedAt": TIME })
}

pub(super) fn example_project() -> Value {
    json!({ "id": PROJECT_ID, "spaceId": SPACE_ID, "name": "Website", "slug": "website", "description": null,
            "defaultView": "kanban", "color": null,
            "statuses": [
                { "id": STATUS_ID, "name": "To Do", "category": "todo", "position": 0, "color": "#94a3b8" },
                { "id": "01a21edd-ac60-7a5d-9a8c-3b4c5d6e7f80", "name": "In Progress", "category": "in_progress", "position": 1, "color": "#3b82f6" },
                { "id": "01a21edd-ac60-7a5d-9a8c-4c5d6e7f8091", "name": "Done", "category": "done", "position": 2, "color": "#22c55e" },
            ],
            "createdAt": TIME, "updatedAt": TIME })
}

pub(super) fn example_task() -> Value {
    json!({ "id": TASK_ID, "projectId": PROJECT_ID, "statusId": STATUS_ID, "title": "Launch the site",
            "description": null, "priority": "high", "dueDate": "2027-01-15", "startDate": null, "position": 1.0,
            "parentId": null, "assignees": [UUID], "labels": [{ "id": LABEL_ID, "name": "release", "color": null }],
            "completedAt": null, "createdBy": UUID, "createdAt": TIME, "updatedAt": TIME })
}

pub(super) fn example_webhook() -> Value {
    json!({ "id": WEBHOOK_ID, "spaceId": SPACE_ID, "url": "https://hooks.example.com/ktasks",
            "events": ["task.created", "task.completed"], "description": "n8n: new tasks to the team chat",
            "active": true, "disabledReason": null, "createdAt": TIME, "updatedAt": TIME })
}

const EXAMPLE_SECRET: &str = "whsec_BVGDWek52Lbx3RlOGS+eYqqDIbm6EG4YNO7M4ZQjAU4=";

pub(super) fn example_webhook_with_secret() -> Value {
    let mut webhook = example_webhook();
    webhook["secret"] = json!(EXAMPLE_SECRET);
    webhook
}

pub(super) fn operations() -> Vec<Operation> {
    let task_ok = |description: &str| ok(description, reference("Task"), example_task());
    vec![
        Operation {
            method: "get", path: "/healthz", id: "getHealth", tag: "Service", auth: false,
            summary: "Health check",
            description: "`{\"status\":\"ok\"}` when the database answers, 503 otherwise. No token needed.",
            parameters: vec![], body: None,
            success: ("200", json!({ "description": "The database answers.",
                "content": { "application/json": { "schema": reference("Health"), "example": { "status": "ok" } } } })),
            errors: &[],
        },
        Operation {
            method: "get", path: "/api/openapi.json", id: "getOpenApi", tag: "Service", auth: false,
            summary: "This OpenAPI document",
            description: "The OpenAPI 3.1 document of this API. No token needed.",
            parameters: vec![], body: None,
            success: ("200", json!({ "description": "The document.",
                "content": { "application/json": { "schema": { "type": "object" } } } })),
            errors: &[],
        },
        Operation {
            method: "get", path: "/developers", id: "getDevelopers", tag: "Service", auth: false,
            summary: "API reference page",
            description: "A human-readable reference built from this document. No token needed.",
            parameters: vec![], body: None,
            success: ("200", json!({ "description": "An HTML page.",
                "content": { "text/html": { "schema": { "type": "string" } } } })),
            errors: &[],
        },
        Operation {
            method: "get", path: "/api/me", id: "getMe", tag: "Account", auth: true,
            summary: "The token's user and the token",
            description: "Who the token belongs to, and the token itself (never its secret): its scope, \
                when it stops working (`expiresAt`) and the spaces it is restricted to (`spaces`, null for all).",
            parameters: vec![], body: None,
            success: ("200", ok("The user and the token.", reference("Me"), json!({
                "user": { "id": UUID, "email": "you@example.com", "name": "You", "plan": "pro" },
                "token": { "id": TOKEN_ID, "name": "Zapier", "prefix": "kt_1a2b3",
                           "scope": "write", "expiresAt": null, "spaces": null } }))),
            errors: &["400"],
        },
        Operation {
            method: "get", path: "/api/spaces", id: "listSpaces", tag: "Spaces", auth: true,
            summary: "List your spaces",
            description: "Every space you belong to, your personal space included, with your role, in creation order.",
            parameters: paging(), body: None,
            success: ("200", list("Your spaces.", "Space", example_space())),
            errors: &["400"],
        },
        Operation {
            method: "post", path: "/api/spaces", id: "createSpace", tag: "Spaces", auth: true,
            summary: "Create a team space",
            description: "You become its owner. A \"General\" project (slug `general`) with the default statuses is created with it.",
            parameters: vec![],
            body: Some((reference("NewSpace"), json!({ "name": "Acme", "slug": "acme", "color": "#3b82f6" }))),
            success: ("201", created("The space.", "Space", example_space(), json!({
                "GetSpace": link("getSpace", "the new space"),
                "ListSpaceMembers": link("listSpaceMembers", "its members"),
            }))),
            errors: &["400", "409", "413", "415"],
        },
        Operation {
            method: "get", path: "/api/spaces/{id}", id: "getSpace", tag: "Spaces", auth: true,
            summary: "Get a space",
            description: "One space with your role in it.",
            parameters: vec![path_id(SPACE_ID)], body: None,
            success: ("200", ok("The space.", reference("Space"), example_space())),
            errors: &["400", "404"],
        },
        Operation {
            method: "get", path: "/api/spaces/{id}/members", id: "listSpaceMembers", tag: "Spaces", auth: true,
            summary: "List a space's members",
            description: "So clients can find user ids to assign. Ordered by name.",
            parameters: vec![path_id(SPACE_ID)], body: None,
            success: ("200", ok("The members.", json!({ "type": "array", "items": reference("Member") }),
                json!([{ "userId": UUID, "name": "You", "email": "you@example.com", "role": "owner" }]))),
            errors: &["400", "404"],
        },
        Operation {
            method: "get", path: "/api/projects", id: "listProjects", tag: "Projects", auth: true,
            summary: "List a space's projects",
            description: "The projects of one space, with their statuses, in creation order.",
            parameters: [vec![space_id_parameter()], paging()].concat(), body: None,
            success: ("200", list("The projects.", "Project", example_project())),
            errors: &["400", "404"],
        },
        Operation {
            method: "post", path: "/api/projects", id: "createProject", tag: "Projects", auth: true,
            summary: "Create a project",
            description: "Needs role owner, admin or member in the space. The default statuses \"To Do\", \"In Progress\" and \"Done\" are created with it.",
            parameters: vec![],
            body: Some((reference("NewProject"), json!({ "spaceId": SPACE_ID, "name": "Website", "slug": "website" }))),
            success: ("201", created("The project.", "Project", example_project(), json!({
                "GetProject": link("getProject", "the new project"),
                "UpdateProject": link("updateProject", "change it"),
            }))),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "get", path: "/api/projects/{id}", id: "getProject", tag: "Projects", auth: true,
            summary: "Get a project",
            description: "One project with its statuses.",
            parameters: vec![path_id(PROJECT_ID)], body: None,
            success: ("200", ok("The project.", reference("Project"), example_project())),
            errors: &["400", "404"],
        },
        Operation {
            method: "patch", path: "/api/projects/{id}", id: "updateProject", tag: "Projects", auth: true,
            summary: "Change a project",
            description: "Absent fields stay as they are; `null` clears `description` and `color`. The slug stays unique within the space.",
            parameters: vec![path_id(PROJECT_ID)],
            body: Some((reference("ProjectPatch"), json!({ "name": "Marketing site", "defaultView": "list" }))),
            success: ("200", ok("The project.", reference("Project"), example_project())),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "get", path: "/api/tasks", id: "listTasks", tag: "Tasks", auth: true,
            summary: "List tasks",
            description: "Ordered by `position`, then `id`. `projectId` is required unless `assigneeId` is given; \
                          then the list spans every space you belong to. Filters combine with AND.",
            parameters: [
                vec![
                    {
                        let mut parameter = query_parameter("projectId", false, json!({ "type": "string", "format": "uuid" }),
                            "tasks of this project (required unless `assigneeId` is given)");
                        parameter["example"] = json!(PROJECT_ID);
                        parameter
                    },
                    query_parameter("statusId", false, json!({ "type": "string", "format": "uuid" }), "tasks in this status"),
                    query_parameter("assigneeId", false,
                        json!({ "anyOf": [{ "type": "string", "format": "uuid" }, { "type": "string", "enum": ["me"] }] }),
                        "tasks assigned to this user id, or `me`"),
                    query_parameter("labelId", false, json!({ "type": "string", "format": "uuid" }), "tasks with this label"),
                    query_parameter("priority", false, reference("Priority"), "tasks of this priority"),
                    query_parameter("completed", false, json!({ "type": "boolean" }), "done (`completedAt` set) or not"),
                    query_parameter("dueBefore", false, date(), "due on or before this date"),
                    query_parameter("dueAfter", false, date(), "due on or after this date"),
                    query_parameter("parentId", false, json!({ "type": "string", "format": "uuid" }), "subtasks of this task"),
                    query_parameter("updatedSince", false, json!({ "type": "string", "format": "date-time" }),
                        "changed at or after this RFC 3339 time (for incremental sync; deleted tasks are not reported)"),
                    query_parameter("q", false, json!({ "type": "string" }), "case-insensitive substring of the title"),
                ],
                paging(),
            ].concat(),
            body: None,
            success: ("200", list("The tasks.", "Task", example_task())),
            errors: &["400", "404"],
        },
        Operation {
            method: "post", path: "/api/tasks", id: "createTask", tag: "Tasks", auth: true,
            summary: "Create a task",
            description: "New tasks go to the project's first `todo` status and the end of its order unless given. \
                          A task created in a `done` status gets `completedAt`.",
            parameters: vec![],
            body: Some((reference("NewTask"), json!({ "projectId": PROJECT_ID, "title": "Launch the site",
                "priority": "high", "dueDate": "2027-01-15", "labels": ["release"] }))),
            success: ("201", created("The task.", "Task", example_task(), json!({
                "GetTask": link("getTask", "the new task"),
                "UpdateTask": link("updateTask", "change it"),
                "DeleteTask": link("deleteTask", "delete it"),
                "AddTaskAssignee": {
                    "operationId": "addTaskAssignee", "parameters": { "id": "$response.body#/id" },
                    "requestBody": { "userId": "$response.body#/createdBy" },
                    "description": "assign its creator (a member of its space)",
                },
                "AddTaskLabel": link("addTaskLabel", "label it"),
            }))),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "get", path: "/api/tasks/{id}", id: "getTask", tag: "Tasks", auth: true,
            summary: "Get a task",
            description: "One task with its assignees and labels.",
            parameters: vec![path_id(TASK_ID)], body: None,
            success: ("200", task_ok("The task.")),
            errors: &["400", "404"],
        },
        Operation {
            method: "patch", path: "/api/tasks/{id}", id: "updateTask", tag: "Tasks", auth: true,
            summary: "Change a task",
            description: "Absent fields stay as they are; `null` clears `description`, `dueDate`, `startDate` and `parentId`. \
                          `assignees` and `labels` replace the sets. `projectId` moves the task, with its subtasks, to another \
                          project of the same space; each keeps its kind of status, and the moved task leaves its old parent \
                          unless `parentId` is given. Entering a `done` status sets `completedAt`; leaving it clears it. \
                          An empty body changes nothing.",
            parameters: vec![path_id(TASK_ID)],
            body: Some((reference("TaskPatch"), json!({ "statusId": STATUS_ID, "dueDate": null }))),
            success: ("200", task_ok("The task.")),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "delete", path: "/api/tasks/{id}", id: "deleteTask", tag: "Tasks", auth: true,
            summary: "Delete a task",
            description: "Deletes the task and all its subtasks.",
            parameters: vec![path_id(TASK_ID)], body: None,
            success: ("204", json!({ "description": "Deleted.", "headers": rate_limit_headers(true) })),
            errors: &["400", "404"],
        },
        Operation {
            method: "post", path: "/api/tasks/{id}/assignees", id: "addTaskAssignee", tag: "Assignees and labels", auth: true,
            summary: "Assign a user",
            description: "The user must be a member of the task's space. Idempotent. Returns the task.",
            parameters: vec![path_id(TASK_ID)],
            body: Some((reference("AssigneeBody"), json!({ "userId": UUID }))),
            success: ("200", with_links(task_ok("The task."), json!({
                "RemoveTaskAssignee": {
                    "operationId": "removeTaskAssignee",
                    "parameters": { "id": "$response.body#/id" },
                    "requestBody": { "userId": "$response.body#/assignees/0" },
                    "description": "unassign the first assignee again",
                },
            }))),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "delete", path: "/api/tasks/{id}/assignees", id: "removeTaskAssignee", tag: "Assignees and labels", auth: true,
            summary: "Unassign a user",
            description: "`userId` in the query, in a JSON body, or both: each names a user to unassign, and at least \
                          one must be given. Idempotent. Returns the task.",
            parameters: vec![path_id(TASK_ID), query_parameter("userId", false, json!({ "type": "string", "format": "uuid" }), "a user to unassign (besides any in the body)")],
            body: Some((reference("AssigneeBody"), json!({ "userId": UUID }))),
            success: ("200", task_ok("The task.")),
            errors: &["400", "404", "413", "415"],
        },
        Operation {
            method: "post", path: "/api/tasks/{id}/labels", id: "addTaskLabel", tag: "Assignees and labels", auth: true,
            summary: "Add a label",
            description: "By `labelId` and/or by `name`: the space's label is found case-insensitively, or created \
                          with `color`. Idempotent. Returns the task.",
            parameters: vec![path_id(TASK_ID)],
            body: Some((reference("LabelBody"), json!({ "name": "Urgent", "color": "#ef4444" }))),
            success: ("200", with_links(task_ok("The task."), json!({
                "RemoveTaskLabel": {
                    "operationId": "removeTaskLabel",
                    "parameters": { "id": "$response.body#/id" },
                    "requestBody": { "labelId": "$response.body#/labels/0/id" },
                    "description": "remove the first label again",
                },
            }))),
            errors: &["400", "404", "409", "413", "415"],
        },
        Operation {
            method: "delete", path: "/api/tasks/{id}/labels", id: "removeTaskLabel", tag: "Assignees and labels", auth: true,
            summary: "Remove a label",
            description: "`labelId` and `name` (case-insensitive), in the query, in a JSON body, or both: each \
                          names a label to remove, and at least one must be given. Idempotent. Returns the task.",
            parameters: vec![
                path_id(TASK_ID),
                query_parameter("labelId", false, json!({ "type": "string", "format": "uuid" }), "a label to remove (besides any in the body)"),
                query_parameter("name", false, name(100),
                    "a label to remove by name, case-insensitively (besides any in the body)"),
            ],
            body: Some((reference("LabelDeleteBody"), json!({ "name": "urgent" }))),
            success: ("200", task_ok("The task.")),
            errors: &["400", "404", "413", "415"],
        },
        Operation {
            method: "get", path: "/api/labels", id: "listLabels", tag: "Assignees and labels", auth: true,
            summary: "List a space's labels",
            description: "In creation order. Labels are created through tasks.",
            parameters: [vec![space_id_parameter()], paging()].concat(), body: None,
            success: ("200", list("The labels.", "Label",
                json!({ "id": LABEL_ID, "spaceId": SPACE_ID, "name": "release", "color": null }))),
            errors: &["400", "404"],
        },
        // Webhooks: only the space's owners and admins manage them or see them, so every
        // operation lists 403 (for a GET too, unlike the rest of the API).
        Operation {
            method: "get", path: "/api/webhooks", id: "listWebhooks", tag: "Webhooks", auth: true,
            summary: "List a space's webhooks",
            description: "The space's webhooks, oldest first, without their secrets. Webhooks are managed by the space's \
                          owners and admins: a member or viewer gets 403 `forbidden`, anyone outside the space 404. \
                          A `read` token may list them.",
            parameters: [vec![space_id_parameter()], paging()].concat(), body: None,
            success: ("200", list("The webhooks.", "Webhook", example_webhook())),
            errors: &["400", "403", "404"],
        },
        Operation {
            method: "post", path: "/api/webhooks", id: "createWebhook", tag: "Webhooks", auth: true,
            summary: "Create a webhook",
            description: "From now on ktasks `POST`s the space's changes of the chosen `events` to `url`, signed with \
                          the `secret` of this answer (Standard Webhooks 1.0; the bodies and headers are in the \
                          document's `webhooks` section). **The secret is shown only here and by \
                          `rotateWebhookSecret`.** `url` must be `https://` (`http://` only when the server sets \
                          `webhooks.allow_http`); a URL whose host is or resolves to a loopback, private, link-local, \
                          CGNAT, multicast or unspecified address is refused (400, field `url`) unless the server sets \
                          `webhooks.allow_private_targets`, and checked again at every delivery. A space holds at most \
                          20 webhooks (409, field `spaceId`). Owners and admins of the space only: members and viewers \
                          get 403 `forbidden`, anyone else 404.",
            parameters: vec![],
            body: Some((reference("NewWebhook"), json!({ "spaceId": SPACE_ID, "url": "https://hooks.example.com/ktasks",
                "events": ["task.created", "task.completed"], "description": "n8n: new tasks to the team chat" }))),
            success: ("201", created("The webhook and its secret, shown this once.", "WebhookWithSecret",
                example_webhook_with_secret(), json!({
                    "GetWebhook": link("getWebhook", "the new webhook"),
                    "TestWebhook": link("testWebhook", "send it a test event"),
                    "ListWebhookDeliveries": link("listWebhookDeliveries", "its delivery attempts"),
                }))),
            errors: &["400", "403", "404", "409", "413", "415"],
        },
        Operation {
            method: "get", path: "/api/webhooks/{id}", id: "getWebhook", tag: "Webhooks", auth: true,
            summary: "Get a webhook",
            description: "One webhook, without its secret. Owners and admins of its space only: unlike the space's \
                          other resources, a webhook is 403 `forbidden` to members and viewers (404 to anyone \
                          else). A `read` token may read it.",
            parameters: vec![path_id(WEBHOOK_ID)], body: None,
            success: ("200", ok("The webhook.", reference("Webhook"), example_webhook())),
            errors: &["400", "403", "404"],
        },
        Operation {
            method: "patch", path: "/api/webhooks/{id}", id: "updateWebhook", tag: "Webhooks", auth: true,
            summary: "Change a webhook",
            description: "Absent fields stay as they are; `null` clears `description`; `events` replaces the set. \
                          `active: false` switches the webhook off (it records no new events); `active: true` \
                          switches it back on, clears `disabledReason` and resumes its queued events. A new `url` is \
                          checked as on create (400, field `url`). Owners and admins of the space only: members and \
                          viewers get 403 `forbidden`, anyone else 404.",
            parameters: vec![path_id(WEBHOOK_ID)],
            body: Some((reference("WebhookPatch"), json!({ "events": ["*"], "active": true }))),
            success: ("200", ok("The webhook.", reference("Webhook"), example_webhook())),
            errors: &["400", "403", "404", "413", "415"],
        },
        Operation {
            method: "delete", path: "/api/webhooks/{id}", id: "deleteWebhook", tag: "Webhooks", auth: true,
            summary: "Delete a webhook",
            description: "Deletes the webhook; its undelivered events are dropped with it. Owners and admins of the \
                          space only: members and viewers get 403 `forbidden`, anyone else 404.",
            parameters: vec![path_id(WEBHOOK_ID)], body: None,
            success: ("204", json!({ "description": "Deleted.", "headers": rate_limit_headers(true) })),
            errors: &["400", "403", "404"],
        },
        Operation {
            method: "post", path: "/api/webhooks/{id}/rotate-secret", id: "rotateWebhookSecret", tag: "Webhooks", auth: true,
            summary: "Rotate a webhook's secret",
            description: "Replaces the secret and returns the new one, the only time it is shown. For the next 24 \
                          hours every delivery carries two signatures in `webhook-signature`, the new secret's first \
                          and the old one's, so a receiver can switch secrets without refusing an event; then only \
                          the new. No body. Owners and admins of the space only: members and viewers get 403 \
                          `forbidden`, anyone else 404.",
            parameters: vec![path_id(WEBHOOK_ID)], body: None,
            success: ("200", ok("The new secret, shown this once.", reference("WebhookSecret"),
                json!({ "secret": "whsec_e5peoqa2fr9SzM5ujTdc/mUKooEiuMgBNpGhG+YnbYU=" }))),
            errors: &["400", "403", "404"],
        },
        Operation {
            method: "post", path: "/api/webhooks/{id}/test", id: "testWebhook", tag: "Webhooks", auth: true,
            summary: "Send a test event",
            description: "Queues a `webhook.test` event for this webhook alone, whatever its `events`, and answers \
                          with the event's id: its attempts show in `listWebhookDeliveries`. No body. A webhook \
                          that is switched off (`active: false`) is 409 `conflict`. Owners and admins of the space \
                          only: members and viewers get 403 `forbidden`, anyone else 404.",
            parameters: vec![path_id(WEBHOOK_ID)], body: None,
            success: ("202", ok("The event is queued.", reference("WebhookTestEvent"), json!({ "eventId": EVENT_ID }))),
            errors: &["400", "403", "404", "409"],
        },
        Operation {
            method: "get", path: "/api/webhooks/{id}/deliveries", id: "listWebhookDeliveries", tag: "Webhooks", auth: true,
            summary: "List a webhook's delivery attempts",
            description: "One item per attempt, newest first; the attempts at one event share its `eventId`. Kept \
                          for 30 days. Owners and admins of the space only: members and viewers get 403 \
                          `forbidden`, anyone else 404. A `read` token may list them.",
            parameters: [vec![path_id(WEBHOOK_ID)], paging()].concat(), body: None,
            success: ("200", list("The attempts.", "WebhookDelivery", json!({
                "id": "01a21edd-ae20-7e4f-8a51-2c3d4e5f6071", "eventId": EVENT_ID, "eventType": "task.created",
                "attempt": 1, "status": "delivered", "responseStatus": 200, "error": null, "durationMs": 12,
                "createdAt": TIME, "nextAttemptAt": null }))),
            errors: &["400", "403", "404"],
        },
    ]
}

/// An event a webhook receives: an entry of the document's `webhooks`.
pub(super) struct Event {
    pub(super) kind: &'static str,
    pub(super) id: &'static str,
    pub(super) summary: &'static str,
    pub(super) description: &'static str,
    /// The schema of its `data`.
    pub(super) data: &'static str,
    pub(super) example: Value,
}

/// The request headers of every delivery, as the receiver's parameters.
pub(super) fn delivery_headers() -> Vec<Value> {
    let header = |name: &str, schema: Value, description: &str, example: Value| {
        json!({ "name": name, "in": "header", "required": true, "schema": schema, "description": description,
                "example": example })
    };
    vec![
        header(
            "webhook-id",
            json!({ "type": "string" }),
            "the event's id, the same on every retry of this event to this webhook: delivery is at least once, so \
             drop an id you have already handled",
            json!(EVENT_ID),
        ),
        header(
            "webhook-timestamp",
            json!({ "type": "integer" }),
            "Unix time (seconds) when this attempt was sent; refuse one far from your clock (Standard Webhooks \
             libraries allow 5 minutes either way), against replays",
            json!(1795809600),
        ),
        header(
            "webhook-signature",
            json!({ "type": "string", "pattern": "^v1,[A-Za-z0-9+/]{43}=( v1,[A-Za-z0-9+/]{43}=)*$" }),
            "`v1,` and the base64 of HMAC-SHA256(key, `<webhook-id>.<webhook-timestamp>.<body>`), where key is the \
             base64-decoded part of the webhook's secret after `whsec_` and body is the raw request body. In the 24 \
             hours after the secret is rotated there are two, space-separated, the new secret's first: accept the \
             request when any one matches",
            json!("v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
        ),
        header(
            "user-agent",
            json!({ "type": "string" }),
            "`ktasks/<version>`",
            json!(concat!("ktasks/", env!("CARGO_PKG_VERSION"))),
        ),
    ]
}

pub(super) fn events() -> Vec<Event> {
    let actor = json!({ "userId": UUID, "tokenId": TOKEN_ID });
    let with = |mut data: Value, extra: Value| {
        for (name, value) in extra.as_object().into_iter().flatten() {
            data[name] = value.clone();
        }
        data["actor"] = actor.clone();
        data
    };
    let task = || with(example_task(), json!({}));
    let completed_task = {
        let mut task = example_task();
        task["statusId"] = json!("01a21edd-ac60-7a5d-9a8c-4c5d6e7f8091");
        task["completedAt"] = json!(TIME);
        with(task, json!({}))
    };
    vec![
        Event {
            kind: "task.created",
            id: "taskCreatedEvent",
            data: "TaskEventData",
            example: task(),
            summary: "A task was created",
            description: "`data` is the task as the API returns it, and the `actor`.",
        },
        Event {
            kind: "task.updated",
            id: "taskUpdatedEvent",
            data: "TaskEventData",
            example: task(),
            summary: "A task was changed",
            description: "Any change to a task: a `PATCH` that changes something, an assignee or label added or \
                          removed, a move of its parent to another project. Emitted before the change's specific \
                          events (`task.completed`, `task.assignee_added`, ...), so a webhook subscribed to \
                          `task.updated` alone hears of every change. `data` is the task after the change.",
        },
        Event {
            kind: "task.deleted",
            id: "taskDeletedEvent",
            data: "TaskDeletedEventData",
            example: with(json!({ "id": TASK_ID, "projectId": PROJECT_ID }), json!({})),
            summary: "A task was deleted",
            description: "Once for the task and once for each of its subtasks, deleted with it. `data` is only \
                          the task's `id` and `projectId`.",
        },
        Event {
            kind: "task.completed",
            id: "taskCompletedEvent",
            data: "TaskEventData",
            example: completed_task,
            summary: "A task was completed",
            description: "The task's `completedAt` went from `null` to a time (it entered a `done` status). \
                          `data` is the task.",
        },
        Event {
            kind: "task.assignee_added",
            id: "taskAssigneeAddedEvent",
            data: "TaskAssigneeEventData",
            example: with(example_task(), json!({ "assigneeId": UUID })),
            summary: "A user was assigned to a task",
            description: "By `PATCH` or `addTaskAssignee`. `data` is the task, with `assigneeId`.",
        },
        Event {
            kind: "task.assignee_removed",
            id: "taskAssigneeRemovedEvent",
            data: "TaskAssigneeEventData",
            example: with(
                example_task(),
                json!({ "assigneeId": "01a21edd-ae30-7f50-9b62-3d4e5f607182" }),
            ),
            summary: "A user was unassigned from a task",
            description: "By `PATCH` or `removeTaskAssignee`. `data` is the task, with `assigneeId`.",
        },
        Event {
            kind: "task.label_added",
            id: "taskLabelAddedEvent",
            data: "TaskLabelEventData",
            example: with(example_task(), json!({ "labelId": LABEL_ID })),
            summary: "A label was added to a task",
            description: "By `PATCH` or `addTaskLabel`. `data` is the task, with `labelId`.",
        },
        Event {
            kind: "task.label_removed",
            id: "taskLabelRemovedEvent",
            data: "TaskLabelEventData",
            example: with(
                example_task(),
                json!({ "labelId": "01a21edd-ad10-7c2d-9f30-2c3d4e5f6071" }),
            ),
            summary: "A label was removed from a task",
            description: "By `PATCH` or `removeTaskLabel`. `data` is the task, with `labelId`.",
        },
        Event {
            kind: "project.created",
            id: "projectCreatedEvent",
            data: "ProjectEventData",
            example: with(example_project(), json!({})),
            summary: "A project was created",
            description: "`data` is the project as the API returns it, and the `actor`.",
        },
        Event {
            kind: "project.updated",
            id: "projectUpdatedEvent",
            data: "ProjectEventData",
            example: with(example_project(), json!({})),
            summary: "A project was changed",
            description: "`data` is the project after the change.",
        },
        Event {
            kind: "webhook.test",
            id: "webhookTestEvent",
            data: "WebhookTestEventData",
            example: with(
                json!({ "webhookId": WEBHOOK_ID, "message": "a test event from ktasks" }),
                json!({}),
            ),
            summary: "A test",
            description: "Sent by `testWebhook` (or the settings page's \"Send test\") to that webhook alone, \
                          whatever its `events`.",
        },
    ]
}
