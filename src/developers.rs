//! `/developers`: one self-contained HTML page (no external scripts, styles or fonts) rendered
//! from the OpenAPI document, so the reference a person reads and the document a tool reads
//! cannot disagree. Rendered once at start-up.

use std::fmt::Write;

use serde_json::Value;

/// The page's stylesheet, inlined into the page (it loads nothing).
const STYLE: &str = include_str!("developers.css");

/// Renders the page from the OpenAPI document.
pub fn render(document: &Value) -> String {
    let mut html = String::with_capacity(64 * 1024);
    let title = document["info"]["title"].as_str().unwrap_or("API");
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} reference</title><style>{STYLE}</style></head><body><main>\
         <h1>{} reference</h1><p class=\"muted\">Version {} · machine-readable: \
         <a href=\"/api/openapi.json\">/api/openapi.json</a> (OpenAPI 3.1)</p>",
        escape(title),
        escape(title),
        escape(document["info"]["version"].as_str().unwrap_or(""))
    );
    // Contents under the title: every section and, within Endpoints, every tag.
    let tags: Vec<&str> = document["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tag| tag["name"].as_str())
        .collect();
    html.push_str(
        "<nav class=\"contents\"><a href=\"#start\">Getting started</a> · \
         <a href=\"#rate-limits\">Rate-limit headers</a> · <a href=\"#errors\">Error codes</a> · \
         <a href=\"#endpoints\">Endpoints</a>: ",
    );
    let tag_links: Vec<String> = tags
        .iter()
        .map(|tag| format!("<a href=\"#tag-{}\">{}</a>", slug(tag), escape(tag)))
        .collect();
    html.push_str(&tag_links.join(", "));
    if document["webhooks"].is_object() {
        html.push_str(" · <a href=\"#webhook-events\">Webhook events</a>");
    }
    html.push_str(" · <a href=\"#objects\">Objects</a></nav>");
    for paragraph in document["info"]["description"]
        .as_str()
        .unwrap_or("")
        .split("\n\n")
    {
        let _ = write!(html, "<p>{}</p>", inline_markdown(paragraph));
    }
    html.push_str(GETTING_STARTED);
    html.push_str(RATE_LIMITS_AND_ERRORS);
    render_mcp(&mut html, document);

    // One group per tag, in the document's order of tags: each resource once, each endpoint one
    // line (its title, which is also the index entry) until it is opened or linked to.
    let operations = operations(document);
    html.push_str(
        "<h2 id=\"endpoints\">Endpoints</h2><p class=\"muted\">Each endpoint, webhook event and object \
         is folded to its title: follow it to unfold it, or <a id=\"all\" href=\"#all\">unfold them all</a>.</p>",
    );
    for tag in &tags {
        let _ = write!(html, "<h2 id=\"tag-{}\">{}</h2>", slug(tag), escape(tag));
        for (path, method, operation) in &operations {
            if operation["tags"][0] == *tag {
                render_operation(&mut html, document, path, method, operation);
            }
        }
    }

    render_webhook_events(&mut html, document);

    // The objects as a row of names; the one linked to takes the whole width with its fields.
    html.push_str("<h2 id=\"objects\">Objects</h2><div class=\"objects\">");
    for name in [
        "Space",
        "Member",
        "Project",
        "Status",
        "Task",
        "LabelRef",
        "Label",
        "Priority",
        "View",
        "Webhook",
        "WebhookWithSecret",
        "WebhookSecret",
        "WebhookTestEvent",
        "WebhookDelivery",
        "WebhookEventType",
        "WebhookEvent",
        "Actor",
        "Error",
    ] {
        let _ = write!(
            html,
            "<section class=\"fold object\" id=\"object-{name}\"><h3><a href=\"#object-{name}\">{name}</a></h3>\
             <div class=\"more\">"
        );
        fields_table(
            &mut html,
            document,
            &document["components"]["schemas"][name],
        );
        html.push_str("</div></section>");
    }
    html.push_str("</div></main></body></html>");
    html
}

const GETTING_STARTED: &str = "<h2 id=\"start\">Getting started</h2>\
<p>Create a token at <a href=\"/settings/security\">Settings → Security</a> (sign in with the password your \
operator set for you), or have the operator mint one with the <code>ktasks</code> command:</p>\
<pre><code>ktasks user create --email you@example.com --name \"You\"\n\
ktasks token create --user you@example.com --name \"my script\"        # add --read-only for GET only</code></pre>\
<p>The token is printed once. Keep it in an environment variable, never in version control:</p>\
<pre><code>export KTASKS_URL=https://tasks.example.com KTASKS_TOKEN=kt_…\n\
curl -H \"Authorization: Bearer $KTASKS_TOKEN\" \"$KTASKS_URL/api/me\"</code></pre>\
<p>Revoke a token on the same page, or with <code>ktasks token revoke ID</code>; it is refused from the next \
request on.</p>\
<p>Use one token per integration, and give it only what it needs: <code>--read-only</code>, \
<code>--expires-in-days N</code>, and <code>--space SLUG</code> (repeatable; a picker on the page) to limit it to \
some spaces. Rotate it without downtime with the page's Rotate button or \
<code>ktasks token rotate ID --grace-minutes 60</code>: the new token is shown once and the old one keeps working \
until the grace ends. A token that stops working at a known time says when on every answer, in \
<code>Token-Expires-At</code>; <code>GET /api/me</code> shows it as <code>expiresAt</code>, with the token's \
<code>spaces</code>.</p>";

/// How to connect an assistant or editor to `POST /mcp`, and its tools (from the tool table
/// itself, so the page cannot drift from what `tools/list` answers).
fn render_mcp(html: &mut String, document: &Value) {
    html.push_str(
        "<section class=\"fold\" id=\"mcp\"><h2><a href=\"#mcp\">MCP for assistants and editors</a></h2>\
         <div class=\"more\"><p><code>POST /mcp</code> speaks the Model Context Protocol (Streamable HTTP, \
         stateless; revisions 2024-11-05 to 2026-07-28) with the same token, limits and rules as the API. \
         Point your editor's <code>mcp.json</code> at it:</p>\
         <pre><code>{\n  \"servers\": {\n    \"ktasks\": {\n      \"type\": \"http\",\n      \
         \"url\": \"https://tasks.example.com/mcp\",\n      \
         \"headers\": { \"Authorization\": \"Bearer ${input:ktasks-token}\" }\n    }\n  },\n  \
         \"inputs\": [{ \"type\": \"promptString\", \"id\": \"ktasks-token\", \
         \"description\": \"ktasks API token\", \"password\": true }]\n}</code></pre>\
         <p>A read-only token is offered the read tools only; a token limited to some spaces reaches only \
         those. Tool errors carry the API's error object.</p><div class=\"table\"><table>\
         <tr><th>Tool</th><th>Reads only</th><th>What it does</th></tr>",
    );
    for tool in crate::mcp::tools::all_from(document) {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            tool.name(),
            if tool.reads_only() { "yes" } else { "no" },
            inline_markdown(tool.description())
        );
    }
    html.push_str("</table></div></div></section>");
}

/// The reference tables the description summarises, each folded to its heading until followed.
const RATE_LIMITS_AND_ERRORS: &str = "<section class=\"fold\" id=\"rate-limits\">\
<h2><a href=\"#rate-limits\">Rate-limit headers</a></h2><div class=\"more table\"><table>\
<tr><th>Header</th><th>Meaning</th></tr>\
<tr><td><code>X-RateLimit-Limit</code></td><td>requests per token in any sliding 60-second window</td></tr>\
<tr><td><code>X-RateLimit-Remaining</code></td><td>requests left after this one</td></tr>\
<tr><td><code>X-RateLimit-Reset</code></td><td>Unix time (seconds) when the next slot frees</td></tr>\
<tr><td><code>RateLimit-Policy</code></td><td><code>\"default\";q=100;w=60</code></td></tr>\
<tr><td><code>RateLimit</code></td><td><code>\"default\";r=&lt;remaining&gt;;t=&lt;seconds until a slot frees&gt;</code></td></tr>\
<tr><td><code>Retry-After</code></td><td>on 429: whole seconds to wait</td></tr>\
<tr><td><code>Token-Expires-At</code></td><td>when this token stops working (its expiry, or the end of a rotation's \
grace); absent for a token that does not expire</td></tr></table></div></section>\
<section class=\"fold\" id=\"errors\"><h2><a href=\"#errors\">Error codes</a></h2><div class=\"more table\">\
<table><tr><th>Status</th><th>Code</th><th>When</th></tr>\
<tr><td>400</td><td><code>invalid_json</code>, <code>validation_failed</code>, <code>unknown_field</code>, <code>invalid_query</code></td><td>malformed body, a field out of its rules, an unknown field, a bad query parameter</td></tr>\
<tr><td>401</td><td><code>unauthorized</code></td><td>missing, malformed, unknown, revoked or expired token</td></tr>\
<tr><td>403</td><td><code>plan_required</code>, <code>insufficient_scope</code>, <code>forbidden</code></td><td>free plan; read-only token writing, or a space-restricted token creating a space; your role only reads, or is not owner or admin for webhooks</td></tr>\
<tr><td>404</td><td><code>not_found</code></td><td>no such route or resource, or one you cannot see</td></tr>\
<tr><td>405</td><td><code>method_not_allowed</code></td><td>with an <code>Allow</code> header</td></tr>\
<tr><td>408</td><td><code>request_timeout</code></td><td>the body arrived too slowly (the connection is closed)</td></tr>\
<tr><td>409</td><td><code>conflict</code></td><td>slug taken; a space full of labels or webhooks; a task full of labels or assignees</td></tr>\
<tr><td>413</td><td><code>payload_too_large</code></td><td>body over the limit (1 MiB by default)</td></tr>\
<tr><td>415</td><td><code>unsupported_media_type</code></td><td>a body without <code>Content-Type: application/json</code></td></tr>\
<tr><td>429</td><td><code>rate_limited</code></td><td>over the rate limit, too many refused tokens, or too many open connections from your address</td></tr>\
<tr><td>500</td><td><code>internal</code></td><td>a bug, logged on the server</td></tr>\
<tr><td>503</td><td><code>unavailable</code></td><td>the request ran past the server's time limit, or the database is not answering; try again</td></tr></table></div></section>";

const WEBHOOKS_INTRO: &str = "<p>A <a href=\"#tag-webhooks\">webhook</a> makes ktasks send its space's \
changes, of the types in its <code>events</code>, as they happen: an HTTP <code>POST</code> to its URL with a JSON \
body <code>{\"type\", \"timestamp\", \"data\"}</code> and the headers of \
<a href=\"https://www.standardwebhooks.com/\">Standard Webhooks 1.0</a>. <code>data</code> is the task or project \
as the API returns it, plus the <code>actor</code> who made the change. A change emits <code>task.updated</code> and \
then its specific events; a request that changes nothing emits nothing.</p>\
<p>Answer <code>2xx</code> within 10 seconds (the server's <code>webhooks.timeout_secs</code>). Anything else (a redirect too) is retried 5 s, 5 min, 30 min, 2 h, \
5 h, 10 h and 10 h after the attempt before, and a webhook whose endpoint fails for that whole schedule is switched \
off. Delivery is at least once: drop a <code>webhook-id</code> you have already handled.</p>";

const VERIFYING: &str = "<p>A Standard Webhooks library \
(<code>standardwebhooks</code> for Python, JavaScript, Rust, Go, …) does it with the webhook's secret. By hand: \
HMAC-SHA256 over <code>webhook-id.webhook-timestamp.body</code> (the raw body, before any JSON parsing), keyed with \
the base64-decoded part of the secret after <code>whsec_</code>, in base64, must equal one of the space-separated \
<code>v1,</code> signatures of <code>webhook-signature</code> (compare in constant time), and \
<code>webhook-timestamp</code> must be close to your clock. For 24 hours after the secret is rotated there is a \
signature with each secret, so both old and new keep working.</p>";

/// The check by hand, in Python's standard library.
const VERIFY_EXAMPLE: &str = r#"import base64, hashlib, hmac, time

def verify(secret, headers, body):  # body: the raw bytes, before any JSON parsing
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    if abs(time.time() - int(headers["webhook-timestamp"])) > 300:
        return False  # too old or too new: a replay?
    return any(version == "v1" and hmac.compare_digest(signature, expected)
               for version, _, signature in (s.partition(",") for s in headers["webhook-signature"].split()))"#;

/// The document's top-level `webhooks`: what ktasks sends, one folded line per event type in the
/// order of `WebhookEventType`, after the headers every delivery carries and how to check them
/// (each in a `<details>`, as they are long and read once).
fn render_webhook_events(html: &mut String, document: &Value) {
    let Some(webhooks) = document["webhooks"].as_object() else {
        return;
    };
    let kinds: Vec<&str> = document["components"]["schemas"]["WebhookEventType"]["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|kind| webhooks.contains_key(*kind))
        .collect();
    html.push_str("<h2 id=\"webhook-events\">Webhook events</h2>");
    html.push_str(WEBHOOKS_INTRO);
    if let Some(first) = kinds.first() {
        html.push_str("<details><summary>Headers of every delivery</summary>");
        parameters_table(html, &webhooks[*first]["post"]["parameters"]);
        html.push_str("</details>");
    }
    let _ = write!(
        html,
        "<details><summary>Verifying a delivery</summary>{VERIFYING}<pre><code>{}</code></pre></details>",
        escape(VERIFY_EXAMPLE)
    );
    for kind in kinds {
        let event = &webhooks[kind]["post"];
        let _ = write!(
            html,
            "<section class=\"fold op\" id=\"event-{0}\"><h3><a href=\"#event-{0}\"><code>{1}</code> \
             <span>{2}</span></a></h3><div class=\"more\"><p>{3}</p>",
            slug(kind),
            escape(kind),
            escape(event["summary"].as_str().unwrap_or("")),
            inline_markdown(event["description"].as_str().unwrap_or(""))
        );
        let body = &event["requestBody"]["content"]["application/json"];
        // The envelope narrowed to this event: the last part of its `allOf` that names `data`.
        let data = body["schema"]["allOf"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
            .map(|part| &part["properties"]["data"])
            .find(|data| !data.is_null());
        if let Some(data) = data {
            html.push_str("<p><strong><code>data</code></strong></p>");
            fields_table(html, document, data);
        }
        html.push_str("<p><strong>Your answer</strong></p>");
        responses_table(html, document, &event["responses"]);
        let example = serde_json::to_string_pretty(&body["example"]).unwrap_or_default();
        let _ = write!(
            html,
            "<pre><code>{}</code></pre></div></section>",
            escape(&example)
        );
    }
}

/// A tag as an anchor: lower-case words joined by `-`.
fn slug(tag: &str) -> String {
    tag.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            operations.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    operations
}

fn render_operation(
    html: &mut String,
    document: &Value,
    path: &str,
    method: &str,
    operation: &Value,
) {
    let id = operation["operationId"].as_str().unwrap_or("");
    let _ = write!(
        html,
        "<section class=\"fold op\" id=\"{0}\"><h3><a href=\"#{0}\"><span class=\"method {method}\">{method}</span>\
         <code>{1}</code> <span>{2}</span></a></h3><div class=\"more\"><p>{3}</p>",
        escape(id),
        escape(path),
        escape(operation["summary"].as_str().unwrap_or("")),
        inline_markdown(operation["description"].as_str().unwrap_or(""))
    );
    if operation["security"].as_array().is_some_and(Vec::is_empty) {
        html.push_str("<p class=\"muted\">No token needed.</p>");
    }
    parameters_table(html, &operation["parameters"]);
    let body = &operation["requestBody"]["content"]["application/json"];
    if !body.is_null() {
        html.push_str("<p><strong>Body</strong> (JSON; unknown fields are refused)</p>");
        fields_table(html, document, &body["schema"]);
    }
    html.push_str("<p><strong>Responses</strong></p>");
    responses_table(html, document, &operation["responses"]);
    let _ = write!(
        html,
        "<pre><code>{}</code></pre></div></section>",
        escape(&curl_example(path, method, operation))
    );
}

/// An operation's parameters (or a delivery's headers), when it has any.
fn parameters_table(html: &mut String, parameters: &Value) {
    let Some(parameters) = parameters.as_array() else {
        return;
    };
    html.push_str("<div class=\"table\"><table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Description</th></tr>");
    for parameter in parameters {
        let required = if parameter["required"] == true {
            " <em>(required)</em>"
        } else {
            ""
        };
        let _ = write!(
            html,
            "<tr><td><code>{}</code>{required}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(parameter["name"].as_str().unwrap_or("")),
            escape(parameter["in"].as_str().unwrap_or("")),
            type_of(&parameter["schema"]),
            inline_markdown(parameter["description"].as_str().unwrap_or(""))
        );
    }
    html.push_str("</table></div>");
}

fn responses_table(html: &mut String, document: &Value, responses: &Value) {
    html.push_str("<div class=\"table\"><table>");
    for (status, response) in responses.as_object().into_iter().flatten() {
        let response = resolve(document, response);
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            escape(status),
            inline_markdown(response["description"].as_str().unwrap_or(""))
        );
    }
    html.push_str("</table></div>");
}

/// A runnable `curl` for the operation, from its examples.
fn curl_example(path: &str, method: &str, operation: &Value) -> String {
    let mut url_path = path.to_string();
    let mut query = Vec::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let (Some(name), Some(example)) =
            (parameter["name"].as_str(), parameter["example"].as_str())
        else {
            continue;
        };
        match parameter["in"].as_str() {
            Some("path") => url_path = url_path.replace(&format!("{{{name}}}"), example),
            Some("query") => query.push(format!("{name}={example}")),
            _ => {}
        }
    }
    if !query.is_empty() {
        url_path = format!("{url_path}?{}", query.join("&"));
    }
    let mut command = String::from("curl");
    if method != "get" {
        let _ = write!(command, " -X {}", method.to_uppercase());
    }
    let _ = write!(command, " \"$KTASKS_URL{url_path}\"");
    if operation["security"]
        .as_array()
        .is_none_or(|s| !s.is_empty())
    {
        command.push_str(" \\\n  -H \"Authorization: Bearer $KTASKS_TOKEN\"");
    }
    let example = &operation["requestBody"]["content"]["application/json"]["example"];
    if !example.is_null() {
        let _ = write!(
            command,
            " \\\n  -H \"Content-Type: application/json\" \\\n  -d '{example}'"
        );
    }
    command
}

/// Follows a local `$ref`.
fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => document.pointer(pointer).unwrap_or(value),
        None => value,
    }
}

fn fields_table(html: &mut String, document: &Value, schema: &Value) {
    let schema = resolve(document, schema);
    if let Some(description) = schema["description"].as_str() {
        let _ = write!(html, "<p>{}</p>", inline_markdown(description));
    }
    // A named enum (`Priority`, `WebhookEventType`) is its values, not fields.
    if schema["properties"].is_null() {
        let _ = write!(html, "<p>{}</p>", type_of(schema));
        return;
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    html.push_str(
        "<div class=\"table\"><table><tr><th>Field</th><th>Type</th><th>Description</th></tr>",
    );
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let mark = if required.contains(&name.as_str()) {
            " <em>(required)</em>"
        } else {
            ""
        };
        let property = resolve(document, property);
        let _ = write!(
            html,
            "<tr><td><code>{}</code>{mark}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            type_of(property),
            inline_markdown(property["description"].as_str().unwrap_or(""))
        );
    }
    html.push_str("</table></div>");
}

/// A short human form of a schema's type: `string (date) or null`, `one of: a, b`, `array of Task`.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or("");
        return format!("<a href=\"#object-{0}\">{0}</a>", escape(name));
    }
    if let Some(any) = schema["anyOf"].as_array() {
        let kinds: Vec<String> = any.iter().map(type_of).collect();
        return kinds.join(" or ");
    }
    if let Some(value) = schema.get("const") {
        return format!("<code>{}</code>", escape(&value.to_string()));
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", escape(&v.to_string())))
            .collect();
        return format!("one of {}", values.join(", "));
    }
    let kinds: Vec<String> = match &schema["type"] {
        Value::String(kind) => vec![kind.clone()],
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        _ => vec!["any".into()],
    };
    let mut parts = Vec::new();
    for kind in kinds {
        let part = match kind.as_str() {
            "array" => format!("array of {}", type_of(&schema["items"])),
            "string" => match (
                schema["format"].as_str(),
                schema["pattern"].as_str(),
                schema["maxLength"].as_u64(),
            ) {
                (Some(format), _, _) => format!("string ({})", escape(format)),
                (None, Some(pattern), _) if pattern != "\\S" => {
                    format!("string <code>{}</code>", escape(pattern))
                }
                (None, _, Some(max)) => format!("string (≤ {max})"),
                _ => "string".into(),
            },
            other => escape(other),
        };
        parts.push(part);
    }
    parts.join(" or ")
}

/// `code` spans and **bold**, everything else escaped.
fn inline_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, chunk) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", escape(chunk));
        } else {
            for (j, piece) in chunk.split("**").enumerate() {
                if j % 2 == 1 {
                    let _ = write!(out, "<strong>{}</strong>", escape(piece));
                } else {
                    out.push_str(&escape(piece));
                }
            }
        }
    }
    out
}

/// HTML-escapes text for element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_lists_every_operation_with_a_curl_and_loads_nothing_external() {
        let document = crate::openapi::document();
        let html = render(&document);
        for (path, method, operation) in operations(&document) {
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                html.contains(&format!("id=\"{id}\"")),
                "{method} {path} missing"
            );
            assert!(
                html.contains(&escape(&curl_example(&path, &method, &operation))),
                "{id} has no curl"
            );
        }
        assert!(!html.contains("<script"), "no scripts");
        assert!(!html.contains("src=\""), "no external assets");
        assert!(
            !html.contains("<link") && !html.contains("url(") && !html.contains("@import"),
            "no external styles"
        );
        assert!(html.contains("name=\"viewport\""), "readable on a phone");
    }

    #[test]
    fn each_tag_is_one_section_in_the_documents_order_and_gets_list_only_their_responses() {
        let document = crate::openapi::document();
        let html = render(&document);
        let mut at = 0;
        for tag in document["tags"].as_array().unwrap() {
            let heading = format!(">{}</h2>", escape(tag["name"].as_str().unwrap()));
            assert_eq!(html.matches(&heading).count(), 1, "{heading} once");
            let found = html.find(&heading).unwrap();
            assert!(found > at, "{heading} in the document's order");
            at = found;
        }
        let get_task = &html[html.find("id=\"getTask\"").unwrap()..];
        let get_task = &get_task[..get_task.find("</section>").unwrap()];
        assert!(
            !get_task.contains("Malformed body"),
            "a GET has no body to be malformed"
        );
        assert!(
            !get_task.contains("insufficient_scope"),
            "a GET needs no write scope"
        );
        assert!(get_task.contains("invalid_query"));
        let create_task = &html[html.find("id=\"createTask\"").unwrap()..];
        assert!(create_task[..create_task.find("</section>").unwrap()].contains("Malformed body"));
    }

    #[test]
    fn the_mcp_section_shows_how_to_connect_and_every_tool() {
        let html = render(&crate::openapi::document());
        let mcp = &html[html.find("id=\"mcp\"").expect("the section")..];
        assert!(mcp.contains("mcp.json") && mcp.contains("Authorization"));
        for tool in crate::mcp::tools::all() {
            assert!(
                mcp.contains(&format!("<code>{}</code>", tool.name())),
                "{}",
                tool.name()
            );
        }
    }

    #[test]
    fn the_webhook_events_are_shown_with_their_headers_and_how_to_verify_them() {
        let document = crate::openapi::document();
        let html = render(&document);
        let events = &html[html.find("id=\"webhook-events\"").expect("the section")..];
        let events = &events[..events.find("id=\"objects\"").unwrap()];
        for kind in crate::openapi::WEBHOOK_EVENT_TYPES {
            assert!(
                events.contains(&format!("id=\"event-{}\"", slug(kind))),
                "{kind} missing"
            );
        }
        for header in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            assert!(
                events.contains(&format!("<code>{header}</code>")),
                "{header}"
            );
        }
        assert!(events.contains("Verifying a delivery"));
        assert!(
            events.contains("assigneeId"),
            "an event's own `data` fields"
        );
        let get_webhook = &html[html.find("id=\"getWebhook\"").unwrap()..];
        let get_webhook = &get_webhook[..get_webhook.find("</section>").unwrap()];
        let refused = &get_webhook[get_webhook.find("<td><code>403</code></td>").unwrap()..];
        assert!(
            refused[..refused.find("</tr>").unwrap()].contains("<code>forbidden</code>"),
            "a webhook's GET answers a member or viewer 403 forbidden"
        );
    }

    #[test]
    fn every_link_within_the_page_has_its_target() {
        let html = render(&crate::openapi::document());
        for link in html.split("href=\"#").skip(1) {
            let target = link.split('"').next().unwrap();
            assert!(
                html.contains(&format!("id=\"{target}\"")),
                "#{target} leads nowhere"
            );
        }
    }

    /// With no separate index lists, a folded section's title is its only entry on the page: it
    /// must link to the section itself, and hold what unfolds in one `more`.
    #[test]
    fn every_folded_section_is_opened_by_its_own_title() {
        let html = render(&crate::openapi::document());
        let sections: Vec<&str> = html.split("<section class=\"fold").skip(1).collect();
        assert!(sections.len() > 40, "endpoints, events and objects fold");
        for section in sections {
            let id = section
                .split("id=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let title = &section[section.find("<h").unwrap()..section.find("</h").unwrap()];
            assert!(
                title.contains(&format!("<a href=\"#{id}\">")),
                "{id}: {title}"
            );
            let section = &section[..section.find("</section>").unwrap()];
            assert_eq!(section.matches("class=\"more").count(), 1, "{id}");
        }
    }

    #[test]
    fn markdown_and_escaping() {
        assert_eq!(
            inline_markdown("a `<b>` **c**"),
            "a <code>&lt;b&gt;</code> <strong>c</strong>"
        );
    }

    #[test]
    fn curl_examples_fill_in_ids_and_bodies() {
        let document = crate::openapi::document();
        let create = &document["paths"]["/api/tasks"]["post"];
        let curl = curl_example("/api/tasks", "post", create);
        assert!(
            curl.starts_with("curl -X POST \"$KTASKS_URL/api/tasks\""),
            "{curl}"
        );
        assert!(curl.contains("-d '{"), "{curl}");
        let get = &document["paths"]["/api/tasks/{id}"]["get"];
        assert!(!curl_example("/api/tasks/{id}", "get", get).contains('{'));
        let health = &document["paths"]["/healthz"]["get"];
        assert!(!curl_example("/healthz", "get", health).contains("Authorization"));
    }
}
