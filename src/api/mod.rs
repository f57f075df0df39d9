//! The API handlers, one file per resource. Each handler is synchronous (it runs on the blocking
//! thread `App::respond` is on), validates everything before it writes, and does each multi-row
//! change in one `Store::write` transaction.
//!
//! Visibility rule for every handler: a resource in a space the caller is not a member of is
//! `404 not_found`, exactly like one that does not exist; a member whose role does not allow the
//! change gets `403 forbidden`.

mod me;
mod spaces;

use hyper::header::LINK;
use rusqlite::Connection;

use crate::app::{ApiRequest, App};
use crate::auth::Principal;
use crate::error::Error;
use crate::json::{Query, Reply, encode_cursor, percent_encode};
use crate::router::Route;
use crate::store::spaces::{Space, find_space_for_user};

pub fn dispatch(app: &App, principal: &Principal, request: &ApiRequest) -> Result<Reply, Error> {
    match &request.route {
        Route::Me => me::get(principal, request),
        Route::ListSpaces => spaces::list(app, principal, request),
        Route::CreateSpace => spaces::create(app, principal, request),
        Route::GetSpace(id) => spaces::get(app, principal, request, id),
        Route::ListSpaceMembers(id) => spaces::members(app, principal, request, id),
        // The task-management routes slot in here (issue 3).
        _ => Err(Error::NotFound),
    }
}

/// Routes that need no token.
pub fn dispatch_public(app: &App, request: &ApiRequest) -> Result<Reply, Error> {
    match request.route {
        Route::Health => {
            if app.store.is_healthy() {
                Ok(Reply::ok(&serde_json::json!({ "status": "ok" })))
            } else {
                Err(Error::Unavailable)
            }
        }
        _ => Err(Error::NotFound),
    }
}

/// Checks a request that takes no body has none, and parses its query.
fn query(request: &ApiRequest, known: &[&str]) -> Result<Query, Error> {
    Query::parse(request.uri.query(), known)
}

/// The space if the caller is a member; 404 otherwise (never reveal that it exists).
fn visible_space(conn: &Connection, principal: &Principal, space_id: &str) -> Result<Space, Error> {
    find_space_for_user(conn, space_id, &principal.user.id)?.ok_or(Error::NotFound)
}

/// A list response: the JSON array, and when more items exist a `Link: <next>; rel="next"` whose
/// URL repeats the request's query with `cursor` set to `next_key`.
fn page<T: serde::Serialize>(
    app: &App,
    request: &ApiRequest,
    query: &Query,
    items: &[T],
    next_key: Option<String>,
) -> Reply {
    let reply = Reply::ok(&items);
    let Some(next_key) = next_key else {
        return reply;
    };
    let mut url = format!("{}{}?", app.base_url(&request.headers), request.uri.path());
    for (name, value) in query.pairs().iter().filter(|(name, _)| name != "cursor") {
        url.push_str(&format!(
            "{}={}&",
            percent_encode(name),
            percent_encode(value)
        ));
    }
    url.push_str(&format!("cursor={}", encode_cursor(&next_key)));
    reply.with_header(LINK, &format!("<{url}>; rel=\"next\""))
}
