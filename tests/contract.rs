//! The published contract: every response the integration suite sees is checked against the
//! OpenAPI document (`check_response`, called by `util::Server::raw` for every request), and the
//! served document and page are the ones the code builds.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use hyper::Method;
use serde_json::{Value, json};

use crate::util::{Env, Response};

struct Contract {
    document: Value,
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| Contract {
        document: ktasks::openapi::document(),
        validators: Mutex::new(HashMap::new()),
    })
}

impl Contract {
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => self.document.pointer(pointer).expect("references resolve"),
            None => value,
        }
    }

    /// A validator for `schema`, whose `$ref`s point into the document's components.
    fn validator(&self, key: &str, schema: &Value) -> std::sync::Arc<jsonschema::Validator> {
        let mut validators = self.validators.lock().unwrap();
        validators
            .entry(key.to_string())
            .or_insert_with(|| {
                let mut root = json!({ "components": self.document["components"] });
                for (name, value) in schema.as_object().unwrap() {
                    root[name] = value.clone();
                }
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&root)
                    .unwrap_or_else(|e| panic!("schema for {key} does not compile: {e}"));
                std::sync::Arc::new(validator)
            })
            .clone()
    }
}

/// Panics when `response` to `method path` is not what the document says that operation answers.
pub fn check_response(method: &str, path_and_query: &str, response: &Response) {
    let contract = contract();
    let path = path_and_query.split('?').next().unwrap();
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let (key, schema) = match ktasks::router::route(&method, path) {
        // The settings pages are HTML for people, not part of the API document.
        Ok(ktasks::router::Route::Web(_)) => return,
        // MCP is JSON-RPC, described by its tools' own schemas (tests/mcp.rs), not the document.
        Ok(route) if route.pattern() == "/mcp" => return,
        Ok(route) => {
            let documented_path = route.pattern().replace(":id", "{id}");
            let operation =
                &contract.document["paths"][&documented_path][method.as_str().to_lowercase()];
            assert!(
                operation.is_object(),
                "{method} {documented_path} is not documented"
            );
            let documented = &operation["responses"][response.status.to_string()];
            assert!(
                documented.is_object(),
                "{method} {documented_path} answered {}, which the document does not list: {}",
                response.status,
                response.body
            );
            let documented = contract.resolve(documented);
            // Every header the document calls required is there; the others may be missing.
            for (name, header) in documented["headers"].as_object().into_iter().flatten() {
                if contract.resolve(header)["required"] == true {
                    assert!(
                        response.header(name).is_some(),
                        "{method} {documented_path} {} lacks its required header {name}",
                        response.status
                    );
                }
            }
            let content = documented["content"].as_object();
            match content {
                None => {
                    assert!(
                        response.body.is_empty(),
                        "{method} {documented_path} {} has an undocumented body",
                        response.status
                    );
                    return;
                }
                Some(content) => {
                    let content_type = response.header("content-type").unwrap_or("");
                    let media = content_type.split(';').next().unwrap();
                    assert!(
                        content.contains_key(media),
                        "{method} {documented_path}: undocumented Content-Type {content_type}"
                    );
                    if media != "application/json" {
                        return;
                    }
                    (
                        format!("{method} {documented_path} {}", response.status),
                        content[media]["schema"].clone(),
                    )
                }
            }
        }
        Err(_) => {
            // Unknown paths and methods are answered with the Error object (404, 405).
            assert!(
                [404, 405].contains(&response.status),
                "unrouted {method} {path}: {}",
                response.status
            );
            (
                "error".to_string(),
                json!({ "$ref": "#/components/schemas/Error" }),
            )
        }
    };
    let body: Value = serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("{key}: body is not JSON ({e}): {}", response.body));
    let validator = contract.validator(&key, &schema);
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{key}: the body breaks the document:\n{}\n{}",
        errors.join("\n"),
        response.body
    );
}

#[test]
fn the_served_document_is_the_codes_document_and_needs_no_token() {
    let env = Env::new();
    let server = env.serve();
    let response = server.request("GET", "/api/openapi.json", None, None);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let served: Value = response.json();
    assert_eq!(served, ktasks::openapi::document());
    assert_eq!(served["openapi"], "3.1.0");

    let page = server.request("GET", "/developers", None, None);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.starts_with("<!doctype html>"));
    for operation in ["createTask", "listTasks", "addTaskLabel", "getMe"] {
        assert!(
            page.body.contains(&format!("id=\"{operation}\"")),
            "{operation} not on the page"
        );
    }
}

#[test]
fn a_response_that_breaks_the_document_is_caught() {
    // The checker itself must fail on a wrong body, or the suite proves nothing.
    let wrong = Response {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"status": "fine"}).to_string(),
    };
    let caught = std::panic::catch_unwind(|| check_response("GET", "/healthz", &wrong));
    assert!(caught.is_err());
    let without_location = Response {
        status: 201,
        headers: vec![("content-type".into(), "application/json".into())],
        body: String::new(),
    };
    assert!(
        std::panic::catch_unwind(|| check_response("POST", "/api/spaces", &without_location))
            .is_err(),
        "a required header missing is caught"
    );
    let undocumented = Response {
        status: 418,
        headers: vec![],
        body: String::new(),
    };
    assert!(std::panic::catch_unwind(|| check_response("GET", "/healthz", &undocumented)).is_err());
    let right = Response {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"status": "ok"}).to_string(),
    };
    check_response("GET", "/healthz", &right);
}
