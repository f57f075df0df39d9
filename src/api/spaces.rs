//! `/api/spaces` and `/api/spaces/:id/members`.

use crate::app::{ApiRequest, Site};
use crate::auth::Principal;
use crate::conditional;
use crate::error::Error;
use crate::json::Body;
use crate::query::decode_cursor;
use crate::reply::Reply;
use crate::store::spaces::{self, NewSpace};
use crate::store::{Snapshot, Writes};

/// GET: every space the caller belongs to, personal space included, in creation order.
pub fn list(
    site: &Site,
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    request: &ApiRequest,
) -> Result<Reply, Error> {
    let query = super::query(request, &["limit", "cursor"])?;
    let limit = query.limit()?;
    let after = query.get("cursor").map(decode_cursor).transpose()?;
    let rows = snapshot.read(|conn| {
        spaces::list_spaces_for_user(conn, principal.viewer(), after.as_deref(), limit + 1)
    })?;
    Ok(super::page(
        site,
        request,
        &query,
        rows,
        limit,
        |item| item.id.clone(),
        |items| Reply::ok(&items),
    ))
}

/// POST: a team space; the caller becomes its owner; "General" is created with it.
pub fn create(
    site: &Site,
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
) -> Result<Reply, Error> {
    // The new space would be outside the token's reach from its first moment (SPEC 11).
    if principal.is_restricted() {
        return Err(Error::InsufficientScope(
            "this token is restricted to some spaces and cannot create one; use an unrestricted \
             token",
        ));
    }
    super::query(request, &[])?;
    let body = Body::parse(
        &request.headers,
        &request.body,
        &["name", "slug", "description", "color"],
    )?;
    let named = super::named_fields(&body)?;
    let new = NewSpace {
        name: named.name,
        slug: named.slug,
        description: named.description,
        color: named.color,
        personal: false,
    };
    let space = writes.write(|tx| spaces::create_space(tx, &new, &principal.user.id))?;
    let location = format!(
        "{}/api/spaces/{}",
        site.base_url(&request.headers),
        space.id
    );
    Ok(conditional::tagged(Reply::created(&space, &location)))
}

/// GET one space, with the caller's role.
pub fn get(
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    request: &ApiRequest,
    space_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let space = snapshot.read(|conn| super::visible_space(conn, principal, space_id))?;
    Ok(conditional::tagged_get(Reply::ok(&space), &request.headers))
}

/// GET members: so clients can find user ids to assign.
pub fn members(
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    request: &ApiRequest,
    space_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let members = snapshot.read(|conn| {
        super::visible_space(conn, principal, space_id)?;
        spaces::list_members(conn, space_id)
    })?;
    Ok(Reply::ok(&members))
}
