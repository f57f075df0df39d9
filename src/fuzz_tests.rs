//! Property tests of everything that reads untrusted input before a handler runs: the router,
//! the query-string parser and the JSON body reader. Never a panic; bad input is always one of
//! the documented 4xx errors, rendered as a JSON error body.

use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, StatusCode};
use proptest::prelude::*;

use crate::error::Error;
use crate::json::Body;
use crate::query::Query;
use crate::router;

fn assert_json_error(error: &Error, allowed: &[StatusCode]) {
    assert!(
        allowed.contains(&error.status()),
        "{error:?} -> {}",
        error.status()
    );
    let body = error.to_json();
    assert!(body["error"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(crate::openapi::ERROR_CODES.contains(&body["code"].as_str().unwrap()));
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PATCH),
        Just(Method::DELETE),
        Just(Method::PUT),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
        "[A-Z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

/// Paths built from the API's own words, ids, and noise, so that real routes are hit too.
fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("api".to_string()),
        Just("tasks".to_string()),
        Just("spaces".to_string()),
        Just("projects".to_string()),
        Just("labels".to_string()),
        Just("assignees".to_string()),
        Just("members".to_string()),
        Just("me".to_string()),
        Just(String::new()),
        "[a-z0-9%.-]{1,12}",
        any::<String>(),
    ];
    prop::collection::vec(segment, 0..6).prop_map(|segments| format!("/{}", segments.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_router_never_panics(method in method(), path in path()) {
        match router::route(&method, &path) {
            Ok(route) => prop_assert!(router::ENDPOINTS.iter().any(|(p, _)| *p == route.pattern())),
            Err(error) => {
                assert_json_error(&error, &[StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED]);
                if let Error::MethodNotAllowed { allow } = error {
                    prop_assert!(!allow.split(", ").any(|allowed| allowed == method.as_str()));
                }
            }
        }
    }

    #[test]
    fn the_query_parser_never_panics(query in any::<String>(), limit in "[0-9a-z%-]{0,5}") {
        let known = ["q", "limit", "cursor", "spaceId"];
        for text in [query.clone(), format!("limit={limit}&{query}"), format!("cursor={query}")] {
            match Query::parse(Some(&text), &known) {
                Ok(parsed) => {
                    if let Err(error) = parsed.limit() {
                        assert_json_error(&error, &[StatusCode::BAD_REQUEST]);
                    }
                    if let Some(cursor) = parsed.get("cursor")
                        && let Err(error) = crate::query::decode_cursor(cursor)
                    {
                        assert_json_error(&error, &[StatusCode::BAD_REQUEST]);
                    }
                }
                Err(error) => assert_json_error(&error, &[StatusCode::BAD_REQUEST]),
            }
        }
    }

    #[test]
    fn the_body_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256), json in any::<String>()) {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let known = ["title", "projectId", "position", "labels"];
        for input in [bytes.as_slice(), json.as_bytes(), format!("{{\"title\": {json:?}}}").as_bytes()] {
            match Body::parse(&headers, input, &known) {
                Ok(body) => {
                    for field in known {
                        for error in [
                            body.optional_string(field).err(),
                            body.optional_number(field).err(),
                            body.optional_string_array(field, 50).err(),
                            body.patch_string(field).err(),
                        ]
                        .into_iter()
                        .flatten()
                        {
                            assert_json_error(&error, &[StatusCode::BAD_REQUEST]);
                        }
                    }
                }
                Err(error) => assert_json_error(&error, &[StatusCode::BAD_REQUEST]),
            }
        }
    }

    /// Every date and time a request can carry goes through these two: `updatedSince` through
    /// `parse_timestamp`, `dueDate`, `startDate`, `dueBefore` and `dueAfter` through `validate::date`.
    /// Years at both ends of the calendar with the widest offsets: a value or a 400, never a panic.
    #[test]
    fn dates_and_times_at_the_ends_of_the_calendar_never_panic(
        year in prop_oneof![0i32..=2, 9997i32..=9999, 0i32..=9999],
        month in 1u8..=12,
        day in 1u8..=31,
        hour in 0u8..=23,
        minute in 0u8..=59,
        offset_hours in 0u8..=23,
        offset_minutes in 0u8..=59,
        sign in prop_oneof![Just('+'), Just('-')],
        fraction in prop_oneof![Just(String::new()), "\\.[0-9]{1,9}"],
    ) {
        let date = format!("{year:04}-{month:02}-{day:02}");
        let timestamp = format!("{date}T{hour:02}:{minute:02}:59{fraction}{sign}{offset_hours:02}:{offset_minutes:02}");
        if let Some(canonical) = crate::time::parse_timestamp(&timestamp) {
            prop_assert_eq!(canonical.len(), 24);
            prop_assert!(crate::time::parse_timestamp(&canonical) == Some(canonical.clone()));
        }
        let zulu = format!("{date}T{hour:02}:{minute:02}:59Z");
        let _ = crate::time::parse_timestamp(&zulu);
        match crate::validate::date("dueDate", date.clone()) {
            Ok(kept) => prop_assert_eq!(kept, date),
            Err(error) => assert_json_error(&error, &[StatusCode::BAD_REQUEST]),
        }
    }

    #[test]
    fn arbitrary_json_values_never_panic_the_body_reader(value in arbitrary_json()) {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let text = serde_json::json!({ "title": value.clone(), "labels": value.clone(), "position": value }).to_string();
        let body = Body::parse(&headers, text.as_bytes(), &["title", "labels", "position"]).unwrap();
        let errors = [
            body.required_string("title").err(),
            body.optional_string_array("labels", 50).err(),
            body.optional_number("position").err(),
        ];
        for error in errors.into_iter().flatten() {
            assert_json_error(&error, &[StatusCode::BAD_REQUEST]);
        }
    }
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
