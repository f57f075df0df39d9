//! The API handlers, one file per resource. Each handler is synchronous (it runs on the blocking
//! thread `App::respond` is on), validates everything before it writes, and does each multi-row
//! change in one transaction (`Writes::write`).
//!
//! Visibility rule for every handler: a resource in a space the caller is not a member of is
//! `404 not_found`, exactly like one that does not exist; a member whose role does not allow the
//! change gets `403 forbidden`.

mod labels;
mod me;
mod projects;
mod spaces;
mod task_events;
mod task_json;
mod task_patch;
mod task_relations;
mod tasks;
pub mod webhooks;

use hyper::header::LINK;
use rusqlite::Connection;

use crate::app::{ApiRequest, App, Site};
use crate::auth::Principal;
use crate::error::Error;
use crate::json::Body;
use crate::query::{Query, decode_cursor, encode_cursor, percent_encode, split_page};
use crate::reply::Reply;
use crate::router::{PublicRoute, ReadRoute, WriteRoute};
use crate::store::spaces::{Role, Space, find_space_for_user};
use crate::store::{Snapshot, Writes};
use crate::validate;

/// The API's reads, after authentication: each reads from the request's one `snapshot`.
pub fn dispatch_read(
    site: &Site,
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    route: &ReadRoute,
    request: &ApiRequest,
) -> Result<Reply, Error> {
    match route {
        ReadRoute::Me => me::get(principal, request),
        ReadRoute::ListSpaces => spaces::list(site, snapshot, principal, request),
        ReadRoute::GetSpace(id) => spaces::get(snapshot, principal, request, id),
        ReadRoute::ListSpaceMembers(id) => spaces::members(snapshot, principal, request, id),
        ReadRoute::ListProjects => projects::list(site, snapshot, principal, request),
        ReadRoute::GetProject(id) => projects::get(snapshot, principal, request, id),
        ReadRoute::ListTasks => tasks::list(site, snapshot, principal, request),
        ReadRoute::GetTask(id) => tasks::get(snapshot, principal, request, id),
        ReadRoute::ListLabels => labels::list(site, snapshot, principal, request),
        ReadRoute::ListWebhooks => webhooks::list(site, snapshot, principal, request),
        ReadRoute::GetWebhook(id) => webhooks::get(snapshot, principal, request, id),
        ReadRoute::ListWebhookDeliveries(id) => {
            webhooks::deliveries(site, snapshot, principal, request, id)
        }
    }
}

/// The API's changes, after authentication: each writes through the request's `writes`, whose
/// commits the answer waits for.
pub fn dispatch_write(
    site: &Site,
    writes: &Writes<'_>,
    principal: &Principal,
    route: &WriteRoute,
    request: &ApiRequest,
) -> Result<Reply, Error> {
    match route {
        WriteRoute::CreateSpace => spaces::create(site, writes, principal, request),
        WriteRoute::CreateProject => projects::create(site, writes, principal, request),
        WriteRoute::UpdateProject(id) => projects::update(writes, principal, request, id),
        WriteRoute::CreateTask => tasks::create(site, writes, principal, request),
        WriteRoute::UpdateTask(id) => tasks::update(writes, principal, request, id),
        WriteRoute::DeleteTask(id) => tasks::delete(writes, principal, request, id),
        WriteRoute::AddAssignee(id) => task_relations::add_assignee(writes, principal, request, id),
        WriteRoute::RemoveAssignee(id) => {
            task_relations::remove_assignee(writes, principal, request, id)
        }
        WriteRoute::AddLabel(id) => task_relations::add_label(writes, principal, request, id),
        WriteRoute::RemoveLabel(id) => task_relations::remove_label(writes, principal, request, id),
        WriteRoute::CreateWebhook => webhooks::create(site, writes, principal, request),
        WriteRoute::UpdateWebhook(id) => webhooks::update(site, writes, principal, request, id),
        WriteRoute::DeleteWebhook(id) => webhooks::delete(writes, principal, request, id),
        WriteRoute::RotateWebhookSecret(id) => {
            webhooks::rotate_secret(writes, principal, request, id)
        }
        WriteRoute::TestWebhook(id) => webhooks::test(writes, principal, request, id),
        WriteRoute::Mcp => crate::mcp::handle(site, writes, principal, request),
    }
}

/// Routes that need no token.
pub fn dispatch_public(app: &App, route: &PublicRoute) -> Result<Reply, Error> {
    match route {
        PublicRoute::Health => {
            if app.store.is_healthy() {
                Ok(Reply::ok(&serde_json::json!({ "status": "ok" })))
            } else {
                Err(Error::Unavailable("the database is not answering"))
            }
        }
        PublicRoute::OpenApi => Ok(Reply::bytes("application/json", app.openapi.clone())),
        PublicRoute::Developers => Ok(Reply::bytes(
            "text/html; charset=utf-8",
            app.developers.clone(),
        )),
    }
}

/// Parses the request's query string, refusing parameters not in `known`.
fn query(request: &ApiRequest, known: &[&str]) -> Result<Query, Error> {
    Query::parse(request.uri.query(), known)
}

/// The space if the caller is a member; 404 otherwise (never reveal that it exists).
fn visible_space(conn: &Connection, principal: &Principal, space_id: &str) -> Result<Space, Error> {
    find_space_for_user(conn, space_id, principal.viewer())?.ok_or(Error::NotFound)
}

/// The webhooks of `space_id` that hear about this write, with the caller as the events' actor.
fn outbox<'a>(
    tx: &crate::store::Tx<'_>,
    space_id: &'a str,
    principal: &'a Principal,
) -> Result<crate::store::webhooks::Outbox<'a>, Error> {
    let actor = crate::store::webhooks::Actor {
        user_id: &principal.user.id,
        token_id: Some(&principal.token.id),
    };
    crate::store::webhooks::Outbox::open(tx, space_id, actor)
}

/// The fields spaces and projects share on creation, validated.
struct Named {
    name: String,
    slug: String,
    description: Option<String>,
    color: Option<String>,
}

fn named_fields(body: &Body) -> Result<Named, Error> {
    Ok(Named {
        name: validate::name(
            "name",
            body.required_string("name")?,
            validate::MAX_NAME_CHARS,
        )?,
        slug: validate::slug("slug", body.required_string("slug")?)?,
        description: body
            .optional_string("description")?
            .map(|d| validate::description("description", d))
            .transpose()?,
        color: body
            .optional_string("color")?
            .map(|c| validate::color("color", c))
            .transpose()?,
    })
}

/// `GET ?spaceId=` lists of a space's rows in id order (projects, labels, webhooks): 404 unless
/// the caller is a member, `allowed`'s error unless its role may see them, then one page from
/// `fetch(conn, space_id, after, limit)`.
fn list_in_space<T: serde::Serialize + HasId>(
    site: &Site,
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    request: &ApiRequest,
    allowed: fn(Role) -> Result<(), Error>,
    fetch: impl FnOnce(&Connection, &str, Option<&str>, usize) -> crate::store::Result<Vec<T>>,
) -> Result<Reply, Error> {
    let query = query(request, &["spaceId", "limit", "cursor"])?;
    let space_id = &query.required_id("spaceId")?;
    let limit = query.limit()?;
    let after = query.get("cursor").map(decode_cursor).transpose()?;
    let rows = snapshot.read(|conn| {
        allowed(visible_space(conn, principal, space_id)?.role)?;
        fetch(conn, space_id, after.as_deref(), limit + 1)
    })?;
    Ok(page(
        site,
        request,
        &query,
        rows,
        limit,
        |item| item.id().to_string(),
        |items| Reply::ok(&items),
    ))
}

/// Rows paged by their id.
trait HasId {
    fn id(&self) -> &str;
}

impl HasId for crate::store::projects::Project {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for crate::store::webhooks::Webhook {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Every member may see it (`list_in_space`).
fn any_role(_: Role) -> Result<(), Error> {
    Ok(())
}

impl HasId for crate::store::labels::Label {
    fn id(&self) -> &str {
        &self.id
    }
}

/// 403 for a role that cannot write (a viewer) trying to change something.
fn require_write(role: Role) -> Result<(), Error> {
    if role.can_write() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "your role in this space ({role}) only allows reading"
        )))
    }
}

/// The next page's `cursor` alone, beside `Link`: a generated client reads a declared header more
/// easily than it parses a `Link` URL.
const NEXT_CURSOR: hyper::header::HeaderName =
    hyper::header::HeaderName::from_static("next-cursor");

/// A list response from `rows` fetched with `limit + 1`: the JSON array of at most `limit` items
/// and, when more exist, `Link: <next>; rel="next"`, whose URL repeats the request's query with
/// `cursor` set to the key of the last item, and `Next-Cursor: <that cursor>`. `body` makes the reply of the items.
fn page<T>(
    site: &Site,
    request: &ApiRequest,
    query: &Query,
    rows: Vec<T>,
    limit: usize,
    cursor_key: impl Fn(&T) -> String,
    body: impl FnOnce(&[T]) -> Reply,
) -> Reply {
    let (items, more) = split_page(rows, limit);
    let reply = body(&items);
    let Some(last) = items.last().filter(|_| more) else {
        return reply;
    };
    let mut url = format!("{}{}?", site.base_url(&request.headers), request.uri.path());
    for (name, value) in query.pairs().iter().filter(|(name, _)| name != "cursor") {
        url.push_str(&format!(
            "{}={}&",
            percent_encode(name),
            percent_encode(value)
        ));
    }
    let cursor = encode_cursor(&cursor_key(last));
    url.push_str(&format!("cursor={cursor}"));
    reply
        .with_header(LINK, &format!("<{url}>; rel=\"next\""))
        .with_header(NEXT_CURSOR, &cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_viewers_are_refused_a_change() {
        for role in [Role::Owner, Role::Admin, Role::Member] {
            assert!(require_write(role).is_ok(), "{role}");
        }
        let refused = require_write(Role::Viewer).unwrap_err();
        assert_eq!(refused.code(), "forbidden");
        assert!(refused.to_string().contains("viewer"), "{refused}");
    }
}
