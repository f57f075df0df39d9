//! The MCP tools (SPEC 14): each is one `/api` operation (`complete_task` two reads and one), its
//! `inputSchema` made from that operation's parameters and body in the OpenAPI document, and
//! its call a request built from the arguments and run through the same router and handler as
//! the API's: the same validation, roles, limits, transactions and webhook events.

use std::sync::OnceLock;

use hyper::Method;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

use crate::app::{ApiRequest, Site};
use crate::auth::Principal;
use crate::error::Error;
use crate::reply::Reply;
use crate::router::{self, ApiRoute, Route};
use crate::store::Writes;

/// What a tool's answer is, for its `outputSchema` and `structuredContent`.
#[derive(Clone, Copy)]
enum Output {
    /// The API's object, as it is (a `components/schemas` name).
    Object(&'static str),
    /// A page of the API's list: `{items, nextCursor}` (the items' schema name).
    Page(&'static str),
    /// Nothing to return: `{id, deleted: true}`.
    Deleted,
}

/// One tool: its name and the words a model chooses it by, the operation it runs, and whether it
/// only reads, deletes, or may be repeated safely.
struct Spec {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    /// The OpenAPI `operationId` whose parameters and body make the input schema.
    operation: &'static str,
    /// The argument the operation's `{id}` path parameter is called, if it has one.
    id_argument: Option<&'static str>,
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    output: Output,
}

const SPECS: &[Spec] = &[
    Spec {
        name: "list_spaces",
        title: "List spaces",
        description: "Lists the spaces (workspaces) you can reach, with your role in each. Start \
            here to find a `spaceId` for the other tools. Returns `items` and, when there are more, \
            a `nextCursor` to pass back as `cursor`.",
        operation: "listSpaces",
        id_argument: None,
        read_only: true,
        destructive: false,
        idempotent: true,
        output: Output::Page("Space"),
    },
    Spec {
        name: "list_members",
        title: "List a space's members",
        description: "Lists the members of a space with their user ids, names, emails and roles. Use \
            it to find the `userId` to assign a task to.",
        operation: "listSpaceMembers",
        id_argument: Some("spaceId"),
        read_only: true,
        destructive: false,
        idempotent: true,
        output: Output::Page("Member"),
    },
    Spec {
        name: "list_projects",
        title: "List a space's projects",
        description: "Lists the projects of a space, each with its statuses (`todo`, `in_progress`, \
            `done` categories). Use it to find a `projectId` and the `statusId`s of a project.",
        operation: "listProjects",
        id_argument: None,
        read_only: true,
        destructive: false,
        idempotent: true,
        output: Output::Page("Project"),
    },
    Spec {
        name: "list_labels",
        title: "List a space's labels",
        description: "Lists the labels of a space (id, name, colour). Labels can also be given by name \
            when creating or labelling a task.",
        operation: "listLabels",
        id_argument: None,
        read_only: true,
        destructive: false,
        idempotent: true,
        output: Output::Page("Label"),
    },
    Spec {
        name: "search_tasks",
        title: "Search tasks",
        description: "Finds tasks by project, status, assignee (`me` for yourself, across all your \
            spaces), label, priority, completion, due dates, parent, change time or a piece of the \
            title (`q`). Give `projectId` or `assigneeId`. Returns tasks in board order as `items`, \
            and a `nextCursor` to pass back as `cursor` for the next page.",
        operation: "listTasks",
        id_argument: None,
        read_only: true,
        destructive: false,
        idempotent: true,
        output: Output::Page("Task"),
    },
    Spec {
        name: "get_task",
        title: "Get a task",
        description: "Reads one task by its id, with its status, assignees, labels, dates and \
            description.",
        operation: "getTask",
        id_argument: Some("id"),
        read_only: true,
        destructive: false,
        idempotent: true,
        output: Output::Object("Task"),
    },
    Spec {
        name: "create_task",
        title: "Create a task",
        description: "Creates a task in a project (`projectId` and `title` are needed). It goes to the \
            project's first `todo` status unless `statusId` says otherwise; labels may be given by \
            name (created when new). Returns the new task with its id.",
        operation: "createTask",
        id_argument: None,
        read_only: false,
        destructive: false,
        idempotent: false,
        output: Output::Object("Task"),
    },
    Spec {
        name: "update_task",
        title: "Update a task",
        description: "Changes the fields you give of the task `id` (title, description, status, \
            priority, dates, parent, position, project, assignees, labels); the others stay. `null` \
            clears a date, the description or the parent; `assignees` and `labels` replace the \
            sets. Returns the task as it is now.",
        operation: "updateTask",
        id_argument: Some("id"),
        read_only: false,
        destructive: false,
        idempotent: true,
        output: Output::Object("Task"),
    },
    Spec {
        name: "complete_task",
        title: "Complete a task",
        description: "Marks the task `id` done: moves it to the first `done` status of its project, \
            which sets `completedAt`. Returns the task.",
        operation: "getTask",
        id_argument: Some("id"),
        read_only: false,
        destructive: false,
        idempotent: true,
        output: Output::Object("Task"),
    },
    Spec {
        name: "delete_task",
        title: "Delete a task",
        description: "Deletes the task `id` and all its subtasks, for good. Ask before using it.",
        operation: "deleteTask",
        id_argument: Some("id"),
        read_only: false,
        destructive: true,
        idempotent: true,
        output: Output::Deleted,
    },
    Spec {
        name: "add_assignee",
        title: "Assign a user to a task",
        description: "Assigns the user `userId` (a member of the task's space: see `list_members`) to \
            the task `id`. Returns the task.",
        operation: "addTaskAssignee",
        id_argument: Some("id"),
        read_only: false,
        destructive: false,
        idempotent: true,
        output: Output::Object("Task"),
    },
    Spec {
        name: "remove_assignee",
        title: "Unassign a user from a task",
        description: "Removes the user `userId` from the assignees of the task `id`. Returns the task.",
        operation: "removeTaskAssignee",
        id_argument: Some("id"),
        read_only: false,
        destructive: false,
        idempotent: true,
        output: Output::Object("Task"),
    },
    Spec {
        name: "add_label",
        title: "Label a task",
        description: "Adds a label to the task `id`, by `labelId` or by `name` (found \
            case-insensitively in the task's space, or created with `color`). Returns the task.",
        operation: "addTaskLabel",
        id_argument: Some("id"),
        read_only: false,
        destructive: false,
        idempotent: true,
        output: Output::Object("Task"),
    },
    Spec {
        name: "remove_label",
        title: "Remove a label from a task",
        description: "Removes a label from the task `id`, by `labelId` or by `name`. Returns the task.",
        operation: "removeTaskLabel",
        id_argument: Some("id"),
        read_only: false,
        destructive: false,
        idempotent: true,
        output: Output::Object("Task"),
    },
];

/// A tool with its schemas made from the OpenAPI document.
pub struct Tool {
    spec: &'static Spec,
    /// The schemas as JSON text: as `Value` trees, the inlined schemas of 14 tools held about
    /// 1.7 MB for good; `tools/list` parses them for the moment it answers.
    input: Box<str>,
    output: Box<str>,
    /// The operation's method and path (`/api/tasks/{id}`).
    method: Method,
    path: String,
    /// Whether the operation takes a JSON body (the arguments left after the path's).
    has_body: bool,
}

impl Tool {
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    pub fn reads_only(&self) -> bool {
        self.spec.read_only
    }

    pub fn description(&self) -> &'static str {
        self.spec.description
    }

    fn input(&self) -> Value {
        serde_json::from_str(&self.input).expect("written by build")
    }

    fn output(&self) -> Value {
        serde_json::from_str(&self.output).expect("written by build")
    }

    /// Its `tools/list` entry for protocol revision `version`: annotations from 2025-03-26,
    /// `title` and `outputSchema` from 2025-06-18.
    pub fn listing(&self, version: &str) -> Value {
        let spec = self.spec;
        let mut entry = json!({
            "name": spec.name,
            "description": spec.description,
            "inputSchema": self.input(),
        });
        if version >= "2025-03-26" {
            entry["annotations"] = json!({
                "title": spec.title,
                "readOnlyHint": spec.read_only,
                "destructiveHint": spec.destructive,
                "idempotentHint": spec.idempotent,
                "openWorldHint": false,
            });
        }
        if version >= "2025-06-18" {
            entry["title"] = json!(spec.title);
            entry["outputSchema"] = self.output();
        }
        entry
    }
}

/// The tools, built once from the OpenAPI document (a field added to the API appears in them).
pub fn all() -> &'static [Tool] {
    TOOLS.get_or_init(|| build(&crate::openapi::document()))
}

/// The tools, built from `document` when they are not yet (the server passes the document it
/// renders anyway: one build of it at start-up, not two).
pub fn all_from(document: &Value) -> &'static [Tool] {
    TOOLS.get_or_init(|| build(document))
}

static TOOLS: OnceLock<Vec<Tool>> = OnceLock::new();

fn build(document: &Value) -> Vec<Tool> {
    let components = &document["components"]["schemas"];
    SPECS
        .iter()
        .map(|spec| {
            let (method, path, operation) = find_operation(document, spec.operation);
            let mut properties = Map::new();
            let mut required: Vec<Value> = Vec::new();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap_or_default();
                let mut schema = inline(&parameter["schema"], components);
                if let Some(description) = parameter["description"].as_str() {
                    schema["description"] = json!(description);
                }
                match parameter["in"].as_str() {
                    Some("path") => {
                        let argument = spec.id_argument.expect("a path parameter has its argument");
                        properties.insert(argument.into(), schema);
                        required.push(json!(argument));
                    }
                    // A body field of the same name says it better (`userId`, `labelId`).
                    Some("query") if method == Method::GET => {
                        if parameter["required"] == json!(true) {
                            required.push(json!(name));
                        }
                        properties.insert(name.into(), schema);
                    }
                    _ => {}
                }
            }
            let body = &operation["requestBody"]["content"]["application/json"]["schema"];
            let has_body = !body.is_null();
            if !body.is_null() && spec.name != "complete_task" {
                let body = inline(body, components);
                for (name, schema) in body["properties"].as_object().into_iter().flatten() {
                    properties.insert(name.clone(), schema.clone());
                }
                for name in body["required"].as_array().into_iter().flatten() {
                    required.push(name.clone());
                }
            }
            let mut input = json!({
                "type": "object",
                "properties": properties,
                "additionalProperties": false,
            });
            if !required.is_empty() {
                input["required"] = Value::Array(required);
            }
            let output = match spec.output {
                Output::Object(name) => inline(&json!({ "$ref": schema_ref(name) }), components),
                Output::Page(name) => json!({
                    "type": "object",
                    "properties": {
                        "items": { "type": "array", "items": inline(&json!({ "$ref": schema_ref(name) }), components) },
                        "nextCursor": { "type": ["string", "null"], "description": "pass it back as `cursor` for the next page; null on the last" },
                    },
                    "required": ["items", "nextCursor"],
                }),
                Output::Deleted => json!({
                    "type": "object",
                    "properties": {
                        "id": { "type": "string", "format": "uuid" },
                        "deleted": { "const": true },
                    },
                    "required": ["id", "deleted"],
                }),
            };
            Tool {
                spec,
                input: input.to_string().into(),
                output: output.to_string().into(),
                method,
                path,
                has_body,
            }
        })
        .collect()
}

fn schema_ref(name: &str) -> String {
    format!("#/components/schemas/{name}")
}

/// The method, path and body of the operation with this id.
fn find_operation<'d>(document: &'d Value, id: &str) -> (Method, String, &'d Value) {
    for (path, operations) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in operations.as_object().into_iter().flatten() {
            if operation["operationId"] == id {
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .expect("the document's methods are HTTP methods");
                return (method, path.clone(), operation);
            }
        }
    }
    panic!("the OpenAPI document has no operation {id}")
}

/// `schema` with every `$ref` to the document's components replaced by the component itself, so
/// that a tool's schema stands alone (the components have no cycles).
fn inline(schema: &Value, components: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            if let Some(target) = map.get("$ref").and_then(Value::as_str) {
                let name = target.rsplit('/').next().unwrap_or_default();
                let mut resolved = inline(&components[name], components);
                for (key, value) in map {
                    if key != "$ref" {
                        resolved[key] = inline(value, components);
                    }
                }
                return resolved;
            }
            Value::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), inline(value, components)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(v, components)).collect()),
        other => other.clone(),
    }
}

/// What a tool call answered: its result (the structured content as JSON bytes: the API's own
/// answer, not parsed and written again), or the API's error (a tool error).
pub enum Called {
    Done(Vec<u8>),
    Failed(Error),
}

/// What a call needs of the MCP request it came in.
pub struct Context<'a, 'w> {
    pub site: &'a Site,
    pub writes: &'a Writes<'w>,
    pub principal: &'a Principal,
    pub request: &'a ApiRequest,
}

/// Runs `tool` with `arguments` (an object, or absent) as the API request it stands for.
pub fn call(context: &Context<'_, '_>, tool: &Tool, arguments: Map<String, Value>) -> Called {
    if !tool.spec.read_only && !context.principal.can_write() {
        return Called::Failed(Error::InsufficientScope(
            "this token is read-only: it may use the read tools only",
        ));
    }
    let result = if tool.spec.name == "complete_task" {
        complete(context, tool, arguments)
    } else {
        run(context, tool, &tool.method, arguments)
    };
    match result {
        Ok(value) => Called::Done(value),
        Err(error) => {
            // The tool's answer says only `internal`, as /api's would; the detail goes to the log.
            if let Error::Internal(detail) = &error {
                crate::log_error!("POST /mcp {}: {detail}", tool.spec.name);
            }
            Called::Failed(error)
        }
    }
}

/// Moves the task to its project's first `done` status: its project's statuses read, then an
/// `update_task`, each as the API runs it.
fn complete(
    context: &Context<'_, '_>,
    tool: &Tool,
    arguments: Map<String, Value>,
) -> Result<Vec<u8>, Error> {
    let task = parse(&run(context, tool, &Method::GET, arguments)?)?;
    let project_id = task["projectId"].as_str().unwrap_or_default();
    let project = parse(
        &api_reply(
            context,
            &Method::GET,
            &format!("/api/projects/{}", crate::query::percent_encode(project_id)),
            None,
        )?
        .0
        .body,
    )?;
    let done = project["statuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|status| status["category"] == "done")
        .and_then(|status| status["id"].as_str())
        .ok_or_else(|| Error::validation("id", "the task's project has no `done` status"))?
        .to_string();
    let path = tool.path.replace(
        "{id}",
        &crate::query::percent_encode(task["id"].as_str().unwrap_or_default()),
    );
    let answer = api_reply(
        context,
        &Method::PATCH,
        &path,
        Some(&json!({ "statusId": done })),
    )?;
    Ok(answer.0.body.to_vec())
}

fn parse(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::internal(format!("an API answer is not JSON: {e}")))
}

/// The arguments as the operation's request: the `{id}` argument into the path, the query
/// parameters (GETs) into the query string, the rest into the JSON body (changes). Returns the
/// structured content's JSON.
fn run(
    context: &Context<'_, '_>,
    tool: &Tool,
    method: &Method,
    mut rest: Map<String, Value>,
) -> Result<Vec<u8>, Error> {
    let mut path = tool.path.clone();
    if let Some(argument) = tool.spec.id_argument {
        let id = match rest.remove(argument) {
            Some(Value::String(id)) if !id.is_empty() => id,
            Some(_) => {
                return Err(Error::validation(
                    argument,
                    format!("`{argument}` must be an id"),
                ));
            }
            None => {
                return Err(Error::validation(
                    argument,
                    format!("`{argument}` is required"),
                ));
            }
        };
        path = path.replace("{id}", &crate::query::percent_encode(&id));
    }
    let answer = if *method == Method::GET {
        let mut pairs = Vec::new();
        // Every argument goes into the query: the API's handler refuses what it does not know,
        // with the code it always gives.
        for (name, value) in &rest {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            pairs.push(format!(
                "{}={}",
                crate::query::percent_encode(name),
                crate::query::percent_encode(&text)
            ));
        }
        if !pairs.is_empty() {
            path = format!("{path}?{}", pairs.join("&"));
        }
        api_reply(context, method, &path, None)?
    } else if tool.has_body {
        api_reply(context, method, &path, Some(&Value::Object(rest)))?
    } else {
        // No body to refuse what is left (`delete_task`): refused here, as /api refuses unknown
        // fields.
        if let Some(name) = rest.keys().next() {
            return Err(Error::UnknownField(name.clone()));
        }
        api_reply(context, method, &path, None)?
    };
    Ok(match tool.spec.output {
        Output::Object(_) => answer.0.body.to_vec(),
        Output::Page(_) => {
            let mut out = Vec::with_capacity(answer.0.body.len() + 64);
            out.extend_from_slice(b"{\"items\":");
            out.extend_from_slice(&answer.0.body);
            out.extend_from_slice(b",\"nextCursor\":");
            crate::json::push_opt_str(&mut out, answer.next_cursor().as_deref());
            out.push(b'}');
            out
        }
        Output::Deleted => serde_json::to_vec(&json!({
            "id": path.rsplit('/').next().unwrap_or_default(),
            "deleted": true,
        }))
        .expect("a JSON value serializes"),
    })
}

/// An API answer: its body and the cursor of the next page.
struct Answer(Reply);

impl Answer {
    fn next_cursor(&self) -> Option<String> {
        self.0
            .headers
            .iter()
            .find(|(name, _)| name.as_str() == "next-cursor")
            .and_then(|(_, value)| value.to_str().ok())
            .map(str::to_string)
    }
}

/// `method path` with `body`, through the router and the API's handler, as the token that called
/// the tool: a read in a snapshot of its own, a change through the MCP request's writes.
fn api_reply(
    context: &Context<'_, '_>,
    method: &Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Answer, Error> {
    let uri: hyper::Uri = path
        .parse()
        .map_err(|_| Error::validation("id", "not a valid id"))?;
    let route = router::route(method, uri.path())?;
    // No `Host`: it only makes `Location` and `Link` absolute, and a tool's answer uses neither
    // (pages go by `Next-Cursor`).
    let mut headers = HeaderMap::new();
    let body = match body {
        Some(body) => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            serde_json::to_vec(body)
                .expect("a JSON value serializes")
                .into()
        }
        None => Default::default(),
    };
    let request = ApiRequest {
        route: route.clone(),
        method: method.clone(),
        uri,
        headers,
        body,
        client_ip: context.request.client_ip,
    };
    let reply = match &route {
        Route::Api(ApiRoute::Read(read)) => context.writes.snapshot(|snapshot| {
            crate::api::dispatch_read(context.site, snapshot, context.principal, read, &request)
        })??,
        Route::Api(ApiRoute::Write(write)) => crate::api::dispatch_write(
            context.site,
            context.writes,
            context.principal,
            write,
            &request,
        )?,
        _ => return Err(Error::NotFound),
    };
    if reply.status.is_success() {
        Ok(Answer(reply))
    } else {
        Err(Error::internal(format!(
            "an API handler answered {}",
            reply.status
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_a_standalone_object_schema_from_its_operation() {
        for tool in all() {
            let (input, output) = (&tool.input, &tool.output);
            assert!(
                !input.contains("$ref") && !output.contains("$ref"),
                "{}",
                tool.name()
            );
            assert_eq!(tool.input()["type"], "object");
            assert_eq!(tool.output()["type"], "object", "{}", tool.name());
        }
        let by_name = |name: &str| all().iter().find(|t| t.name() == name).unwrap();
        let create = by_name("create_task").input();
        assert!(create["properties"]["title"].is_object());
        assert!(
            create["required"]
                .as_array()
                .unwrap()
                .contains(&json!("title"))
        );
        let search = by_name("search_tasks").input();
        for filter in ["projectId", "assigneeId", "q", "limit", "cursor"] {
            assert!(search["properties"][filter].is_object(), "{filter}");
        }
        assert_eq!(
            by_name("list_members").input()["required"],
            json!(["spaceId"])
        );
        assert_eq!(by_name("get_task").input()["required"], json!(["id"]));
        let remove = by_name("remove_label").input();
        assert!(
            remove["properties"]["name"].is_object() && remove["properties"]["labelId"].is_object()
        );
        assert_eq!(all().iter().filter(|t| t.reads_only()).count(), 6);
    }
}
