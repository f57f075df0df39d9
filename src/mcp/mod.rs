//! `POST /mcp`: the Model Context Protocol over the Streamable HTTP transport (SPEC 14), for AI
//! assistants and editors, behind the same tokens as `/api`.
//!
//! The request has been through everything an `/api` write goes through (token, plan, rate
//! limit and its headers, the failed-authentication rules) except the read-only scope check:
//! a read token may list and call the read tools. Here: the `Origin` check (DNS rebinding), the
//! `MCP-Protocol-Version` header, JSON-RPC 2.0 (a batch only in the revisions that had them),
//! and the methods: `initialize`, `ping`, `tools/list`, `tools/call`; notifications are taken
//! and answered `202`. The server is stateless: no session id, no server-to-client stream
//! (`GET /mcp` is 405), each POST stands alone, which is what lets it run on the ordinary
//! request path.
//!
//! Revisions: the handshake ones, 2024-11-05 to 2025-11-25 (`initialize`), and the stateless
//! 2026-07-28 (`server/discover`; each request carries its revision and the client's
//! capabilities in `params._meta`, and its method and tool name in headers; `stateless`). We
//! write the small JSON-RPC layer ourselves on our router
//! rather than take the official Rust SDK (`rmcp`): its Streamable HTTP server is built on a
//! web framework (axum/tower) and session state, which this binary has neither of; the
//! protocol's few message shapes are plain `serde_json` values here.

pub mod tools;

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use crate::app::{ApiRequest, Site};
use crate::auth::Principal;
use crate::error::Error;
use crate::reply::Reply;
use crate::store::Writes;

/// The revisions spoken, oldest first; the last is offered to a client that asks for another.
pub const PROTOCOL_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const LATEST: &str = "2025-11-25";
const INSTRUCTIONS: &str = "Tasks of the Krokanti Tasks server, as the user whose token this is. \
    Spaces hold projects, projects hold tasks. Find ids with list_spaces, list_projects, \
    list_members and search_tasks before changing anything.";
/// Assumed without an `MCP-Protocol-Version` header, as the 2025-06-18 transport says.
const WITHOUT_HEADER: &str = "2025-03-26";

// JSON-RPC 2.0's error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
// The stateless revision's own codes.
const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// The most messages in a batch (revisions 2024-11-05 and 2025-03-26; SDKs do not send them):
/// the rate limit counts the HTTP request, so a batch may not multiply it by much.
const MAX_BATCH: usize = 8;

/// The stateless revision: no handshake; each request names its revision and the client's
/// capabilities in `params._meta`, and repeats its method (and tool name) in headers.
const STATELESS: &str = "2026-07-28";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// Whether a `POST /mcp` body can only read: no write tool's name appears in it (as a JSON
/// string). It decides the request's lane, not what it may do: a write tool named in some
/// other spelling (`\u` escapes) still writes, through the same checks, only on a read thread.
pub fn reads_only(body: &[u8]) -> bool {
    static NEEDLES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let needles = NEEDLES.get_or_init(|| {
        tools::all()
            .iter()
            .filter(|tool| !tool.reads_only())
            .map(|tool| format!("\"{}\"", tool.name()))
            .collect()
    });
    std::str::from_utf8(body).is_ok_and(|text| !needles.iter().any(|n| text.contains(n.as_str())))
}

/// Answers one `POST /mcp`.
pub fn handle(
    site: &Site,
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
) -> Result<Reply, Error> {
    if !site.origin_is_ours(&request.headers) {
        return Ok(rpc_failure(
            StatusCode::FORBIDDEN,
            INVALID_REQUEST,
            "the Origin header names another site".into(),
        ));
    }
    let message: Value = match serde_json::from_slice(&request.body) {
        Ok(message) => message,
        Err(error) => {
            return Ok(rpc_failure(
                StatusCode::BAD_REQUEST,
                PARSE_ERROR,
                format!("the body is not JSON: {error}"),
            ));
        }
    };
    let version = match request.headers.get("mcp-protocol-version") {
        None => WITHOUT_HEADER,
        Some(value) if value == STATELESS => STATELESS,
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|v| PROTOCOL_VERSIONS.iter().find(|known| **known == v))
        {
            Some(version) => version,
            // A revision we do not know, in a stateless envelope: that path names ours (-32022).
            None if is_stateless(&message) => STATELESS,
            None => {
                return Ok(rpc_failure(
                    StatusCode::BAD_REQUEST,
                    INVALID_REQUEST,
                    format!(
                        "unsupported MCP-Protocol-Version; this server speaks {} and {STATELESS}",
                        PROTOCOL_VERSIONS.join(", ")
                    ),
                ));
            }
        },
    };
    let context = tools::Context {
        site,
        writes,
        principal,
        request,
    };
    if version == STATELESS || is_stateless(&message) {
        return Ok(stateless(&context, message));
    }
    let answer: Option<Vec<u8>> = match message {
        Value::Array(batch) => {
            // Batches came with 2025-03-26 and went with 2025-06-18. A batch is one request to
            // the rate limit, so it is kept short; and `initialize` may not be in one.
            if version >= "2025-06-18" || batch.is_empty() {
                return Ok(rpc_failure(
                    StatusCode::BAD_REQUEST,
                    INVALID_REQUEST,
                    format!("a JSON-RPC batch is not accepted (protocol revision {version})"),
                ));
            }
            if batch.len() > MAX_BATCH {
                return Ok(rpc_failure(
                    StatusCode::BAD_REQUEST,
                    INVALID_REQUEST,
                    format!("a batch holds at most {MAX_BATCH} messages"),
                ));
            }
            if batch
                .iter()
                .any(|m| m.get("method") == Some(&json!("initialize")))
            {
                return Ok(rpc_failure(
                    StatusCode::BAD_REQUEST,
                    INVALID_REQUEST,
                    "`initialize` cannot be part of a batch".into(),
                ));
            }
            let answers: Vec<Vec<u8>> = batch
                .into_iter()
                .filter_map(|message| answer(&context, version, message))
                .collect();
            (!answers.is_empty()).then(|| {
                let mut out = b"[".to_vec();
                out.extend_from_slice(&answers.join(&b',')[..]);
                out.push(b']');
                out
            })
        }
        message => answer(&context, version, message),
    };
    Ok(match answer {
        Some(answer) => Reply::bytes("application/json", answer.into()),
        // Only notifications or responses: accepted, nothing to say.
        None => accepted(),
    })
}

/// The answer to one JSON-RPC message, written: `None` for a notification or a response. A
/// result is written around JSON that is written already (a tool's is the API's own answer).
fn answer(context: &tools::Context<'_, '_>, version: &str, message: Value) -> Option<Vec<u8>> {
    Some(match respond(context, version, message)? {
        Ok((id, result)) => success(&id, &result),
        Err((id, code, message)) => written(&error(id, code, &message)),
    })
}

/// `{"jsonrpc":"2.0","id":...,"result":...}` around a result written already.
fn success(id: &Value, result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(result.len() + 48);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    serde_json::to_writer(&mut out, id).expect("an id serializes");
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result);
    out.push(b'}');
    out
}

/// A request's id and its result's JSON, or its id (null when it has none that is valid) and
/// the JSON-RPC error.
type Responded = Result<(Value, Vec<u8>), (Value, i64, String)>;

fn respond(context: &tools::Context<'_, '_>, version: &str, message: Value) -> Option<Responded> {
    let refuse = |id: Value, code, message: &str| Some(Err((id, code, message.to_string())));
    let Value::Object(mut object) = message else {
        return refuse(Value::Null, INVALID_REQUEST, "a message is a JSON object");
    };
    let id = object.remove("id");
    let valid_id = matches!(&id, Some(Value::String(_)) | Some(Value::Number(_)));
    let id_or_null = || id.clone().filter(|_| valid_id).unwrap_or(Value::Null);
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return refuse(id_or_null(), INVALID_REQUEST, "`jsonrpc` must be \"2.0\"");
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => return refuse(id_or_null(), INVALID_REQUEST, "`method` must be a string"),
        // A response to a request of ours: we send none, so there is nothing to match it to.
        None if object.contains_key("result") || object.contains_key("error") => return None,
        None => return refuse(id_or_null(), INVALID_REQUEST, "a request needs a `method`"),
    };
    // A notification (`notifications/initialized`, `notifications/cancelled`, ...): taken.
    id.as_ref()?;
    if !valid_id {
        return refuse(
            Value::Null,
            INVALID_REQUEST,
            "`id` must be a string or a number",
        );
    }
    let id = id_or_null();
    let params = match object.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => return refuse(id, INVALID_PARAMS, "`params` must be an object"),
    };
    let result = match method.as_str() {
        "initialize" => initialize(&params).map(|value| written(&value)),
        "ping" => Ok(b"{}".to_vec()),
        "tools/list" => Ok(written(&list(context.principal, version))),
        "tools/call" => call(context, version, params),
        _ => Err((METHOD_NOT_FOUND, format!("method not found: {method}"))),
    };
    Some(match result {
        Ok(result) => Ok((id, result)),
        Err((code, message)) => Err((id, code, message)),
    })
}

fn written(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serializes")
}

type RpcResult<T> = Result<T, (i64, String)>;

fn initialize(params: &Map<String, Value>) -> RpcResult<Value> {
    let Some(asked) = params.get("protocolVersion").and_then(Value::as_str) else {
        return Err((INVALID_PARAMS, "`protocolVersion` is required".into()));
    };
    Ok(json!({
        "protocolVersion": negotiate(asked),
        "capabilities": { "tools": { "listChanged": false } },
        "serverInfo": { "name": "ktasks", "version": env!("CARGO_PKG_VERSION") },
        "instructions": INSTRUCTIONS,
    }))
}

/// The client's revision when we speak it; else our newest, and the client decides.
fn negotiate(asked: &str) -> &'static str {
    PROTOCOL_VERSIONS
        .iter()
        .find(|known| **known == asked)
        .copied()
        .unwrap_or(LATEST)
}

/// The tools this token may use: a read token is offered the read tools only.
fn list(principal: &Principal, version: &str) -> Value {
    let tools: Vec<Value> = tools::all()
        .iter()
        .filter(|tool| tool.reads_only() || principal.can_write())
        .map(|tool| tool.listing(version))
        .collect();
    json!({ "tools": tools })
}

/// A tool's result, written around the API's answer: its JSON as the text content and, from
/// 2025-06-18, as the structured content too.
fn call(
    context: &tools::Context<'_, '_>,
    version: &str,
    mut params: Map<String, Value>,
) -> RpcResult<Vec<u8>> {
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Err((INVALID_PARAMS, "`name` is required".into()));
    };
    let Some(tool) = tools::all().iter().find(|tool| tool.name() == name) else {
        return Err((INVALID_PARAMS, format!("unknown tool: {name}")));
    };
    let arguments = match params.remove("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments,
        Some(_) => return Err((INVALID_PARAMS, "`arguments` must be an object".into())),
    };
    Ok(match tools::call(context, tool, arguments) {
        tools::Called::Done(structured) => {
            let mut out = Vec::with_capacity(structured.len() * 2 + 96);
            out.extend_from_slice(b"{\"content\":[{\"type\":\"text\",\"text\":");
            push_json_text(&mut out, &structured);
            out.extend_from_slice(b"}],\"isError\":false");
            if version >= "2025-06-18" {
                out.extend_from_slice(b",\"structuredContent\":");
                out.extend_from_slice(&structured);
            }
            out.push(b'}');
            out
        }
        // A failed call is the tool's answer, so the model can read it and correct itself: the
        // API's error object, as `/api` would have answered.
        tools::Called::Failed(error) => {
            let text = written(&error.to_json());
            let text = String::from_utf8(text).expect("serde_json writes UTF-8");
            written(&json!({ "content": [{ "type": "text", "text": text }], "isError": true }))
        }
    })
}

/// `json` (JSON text: UTF-8, and no raw control characters) as a JSON string: quotes and
/// backslashes escaped, the runs between them copied whole.
fn push_json_text(out: &mut Vec<u8>, json: &[u8]) {
    out.push(b'"');
    // One table lookup per byte: this runs over every tool answer.
    const ESCAPE: [bool; 256] = {
        let mut table = [false; 256];
        let mut byte = 0;
        while byte < 0x20 {
            table[byte] = true;
            byte += 1;
        }
        table[b'"' as usize] = true;
        table[b'\\' as usize] = true;
        table
    };
    let mut start = 0;
    for (i, &byte) in json.iter().enumerate() {
        if !ESCAPE[byte as usize] {
            continue;
        }
        out.extend_from_slice(&json[start..i]);
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            control => out.extend_from_slice(format!("\\u{control:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&json[start..]);
    out.push(b'"');
}

/// Whether a message says it is of the stateless revision (its `_meta` names a revision).
fn is_stateless(message: &Value) -> bool {
    // Not `Value::pointer`: it parses its path on every call, on every request here.
    message
        .get("params")
        .and_then(|params| params.get("_meta"))
        .and_then(|meta| meta.get(META_VERSION))
        .is_some()
}

/// A request of the stateless revision (2026-07-28): the envelope checked in the order the
/// revision gives (the `_meta` pair, the headers, the revision), then `server/discover`,
/// `tools/list` or `tools/call`. Each error has its own HTTP status; no batches.
fn stateless(context: &tools::Context<'_, '_>, message: Value) -> Reply {
    let headers = &context.request.headers;
    let failure = |id: Value, code: i64, message: String, data: Option<Value>| {
        let status = match code {
            METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
            PARSE_ERROR
            | INVALID_REQUEST
            | INVALID_PARAMS
            | HEADER_MISMATCH
            | UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        };
        let mut body = error(id, code, &message);
        if let Some(data) = data {
            body["error"]["data"] = data;
        }
        Reply::json(status, &body)
    };
    let Value::Object(mut object) = message else {
        return failure(
            Value::Null,
            INVALID_REQUEST,
            "one JSON-RPC object per request".into(),
            None,
        );
    };
    let id = match object.remove("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id),
        None => None,
        Some(_) => {
            return failure(
                Value::Null,
                INVALID_REQUEST,
                "`id` must be a string or a number".into(),
                None,
            );
        }
    };
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return failure(
            id.unwrap_or(Value::Null),
            INVALID_REQUEST,
            "`jsonrpc` must be \"2.0\"".into(),
            None,
        );
    }
    let Some(Value::String(method)) = object.remove("method") else {
        // A response to a request of ours (we send none), or no method: nothing to answer.
        return match id {
            Some(id) => failure(
                id,
                INVALID_REQUEST,
                "`method` must be a string".into(),
                None,
            ),
            None => accepted(),
        };
    };
    let Some(id) = id else {
        return accepted();
    };
    let mut params = match object.remove("params") {
        Some(Value::Object(params)) => params,
        _ => Map::new(),
    };
    let meta = params.remove("_meta");
    let envelope = meta
        .as_ref()
        .and_then(|meta| Some((meta.get(META_VERSION)?, meta.get(META_CAPABILITIES)?)));
    let Some((asked, _capabilities)) = envelope else {
        return failure(
            id,
            INVALID_PARAMS,
            format!("params._meta must carry {META_VERSION:?} and {META_CAPABILITIES:?}"),
            None,
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("mcp-protocol-version").is_none_or(|v| Some(v) != asked.as_str()) {
        return failure(
            id,
            HEADER_MISMATCH,
            "MCP-Protocol-Version does not match params._meta".into(),
            None,
        );
    }
    if header("mcp-method") != Some(method.as_str()) {
        return failure(
            id,
            HEADER_MISMATCH,
            "Mcp-Method does not match the method".into(),
            None,
        );
    }
    if method == "tools/call"
        && let Some(name) = params.get("name").and_then(Value::as_str)
        && header("mcp-name") != Some(name)
    {
        return failure(
            id,
            HEADER_MISMATCH,
            "Mcp-Name does not match the tool's name".into(),
            None,
        );
    }
    if asked != STATELESS {
        return failure(
            id,
            UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version".into(),
            Some(json!({ "supported": [STATELESS], "requested": asked })),
        );
    }
    let complete = |mut result: Value| {
        result["resultType"] = json!("complete");
        written(&result)
    };
    let supported = [PROTOCOL_VERSIONS.as_slice(), &[STATELESS]].concat();
    let result = match method.as_str() {
        "server/discover" => Ok(complete(json!({
            "supportedVersions": supported,
            "capabilities": { "tools": { "listChanged": false } },
            "serverInfo": { "name": "ktasks", "version": env!("CARGO_PKG_VERSION") },
            "instructions": INSTRUCTIONS,
            "ttlMs": 0,
            "cacheScope": "private",
        }))),
        "tools/list" => {
            let mut listed = list(context.principal, STATELESS);
            listed["ttlMs"] = json!(0);
            listed["cacheScope"] = json!("private");
            Ok(complete(listed))
        }
        "tools/call" => call(context, STATELESS, params).map(|mut result| {
            // `{...}` -> `{..., "resultType": "complete"}`
            result.pop();
            result.extend_from_slice(b",\"resultType\":\"complete\"}");
            result
        }),
        _ => Err((METHOD_NOT_FOUND, format!("method not found: {method}"))),
    };
    match result {
        Ok(result) => Reply::bytes("application/json", success(&id, &result).into()),
        Err((code, message)) => failure(id, code, message, None),
    }
}

fn accepted() -> Reply {
    Reply {
        status: StatusCode::ACCEPTED,
        ..Reply::no_content()
    }
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// A transport-level refusal: an HTTP error status with a JSON-RPC error that names no request.
fn rpc_failure(status: StatusCode, code: i64, message: String) -> Reply {
    Reply::json(status, &error(Value::Null, code, &message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_answer_is_escaped_into_a_json_string_that_reads_back_as_itself() {
        let json = br#"{"title":"say \"hi\"\n","path":"C:\\x","emoji":"\u00e9t\u00e9 \u2014 \ud83d\ude00"}"#;
        let mut out = Vec::new();
        push_json_text(&mut out, json);
        let text: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(text.as_bytes(), json);
        let mut control = Vec::new();
        push_json_text(&mut control, b"a\x01b");
        assert_eq!(control, br#""a\u0001b""#);
    }

    #[test]
    fn a_body_naming_no_write_tool_runs_on_the_read_lane() {
        let call = |name: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#
            )
        };
        assert!(reads_only(call("get_task").as_bytes()));
        assert!(reads_only(call("search_tasks").as_bytes()));
        assert!(reads_only(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#
        ));
        for write in ["create_task", "complete_task", "delete_task", "add_label"] {
            assert!(!reads_only(call(write).as_bytes()), "{write}");
        }
        assert!(
            !reads_only(b"\xff"),
            "not UTF-8: the write lane, to be safe"
        );
    }

    #[test]
    fn the_client_gets_its_revision_when_spoken_and_our_newest_otherwise() {
        for version in PROTOCOL_VERSIONS {
            assert_eq!(negotiate(version), version);
        }
        assert_eq!(negotiate("2026-07-28"), LATEST);
        assert_eq!(negotiate("1999-01-01"), LATEST);
        assert!(
            initialize(&Map::new()).is_err(),
            "protocolVersion is required"
        );
    }
}
