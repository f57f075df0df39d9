//! `/api/projects` and `/api/projects/:id`.

use crate::app::{ApiRequest, Site};
use crate::auth::Principal;
use crate::conditional;
use crate::error::Error;
use crate::json::Body;
use crate::reply::Reply;
use crate::store::projects::{self, NewProject, ProjectChanges, View};
use crate::store::webhooks::EventType;
use crate::store::{Snapshot, Writes};
use crate::validate;

const FIELDS: &[&str] = &[
    "spaceId",
    "name",
    "slug",
    "description",
    "defaultView",
    "color",
];

/// GET ?spaceId=: the projects of a space the caller belongs to.
pub fn list(
    site: &Site,
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    request: &ApiRequest,
) -> Result<Reply, Error> {
    super::list_in_space(
        site,
        snapshot,
        principal,
        request,
        super::any_role,
        projects::list_projects,
    )
}

/// POST: needs role owner, admin or member in the space.
pub fn create(
    site: &Site,
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let body = Body::parse(&request.headers, &request.body, FIELDS)?;
    let space_id = body.required_string("spaceId")?;
    let named = super::named_fields(&body)?;
    let new = NewProject {
        space_id,
        name: named.name,
        slug: named.slug,
        description: named.description,
        default_view: match body.optional_string("defaultView")? {
            Some(view) => validate::one_of("defaultView", &view, View::parse, View::ALL)?,
            None => View::Kanban,
        },
        color: named.color,
    };
    let project = writes.write(|tx| {
        let space = super::visible_space(tx, principal, &new.space_id)?;
        super::require_write(space.role)?;
        let project = projects::create_project(tx, &new)?;
        super::outbox(tx, &new.space_id, principal)?.emit_value(
            tx,
            EventType::ProjectCreated,
            &project,
        )?;
        Ok(project)
    })?;
    let location = format!(
        "{}/api/projects/{}",
        site.base_url(&request.headers),
        project.id
    );
    Ok(conditional::tagged(Reply::created(&project, &location)))
}

pub fn get(
    snapshot: &Snapshot<'_>,
    principal: &Principal,
    request: &ApiRequest,
    project_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let (project, _role) = snapshot
        .read(|conn| projects::find_project_for_user(conn, project_id, principal.viewer()))?
        .ok_or(Error::NotFound)?;
    Ok(conditional::tagged_get(
        Reply::ok(&project),
        &request.headers,
    ))
}

/// PATCH: `name`, `slug`, `description`, `defaultView`, `color`; absent = unchanged, `null`
/// clears `description` and `color`.
pub fn update(
    writes: &Writes<'_>,
    principal: &Principal,
    request: &ApiRequest,
    project_id: &str,
) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let body = Body::parse(&request.headers, &request.body, &FIELDS[1..])?;
    let changes = ProjectChanges {
        name: body
            .patch_required_string("name")?
            .map(|n| validate::name("name", n, validate::MAX_NAME_CHARS))
            .transpose()?,
        slug: body
            .patch_required_string("slug")?
            .map(|s| validate::slug("slug", s))
            .transpose()?,
        description: body.checked_patch_string("description", validate::description)?,
        default_view: body
            .patch_required_string("defaultView")?
            .map(|v| validate::one_of("defaultView", &v, View::parse, View::ALL))
            .transpose()?,
        color: body.checked_patch_string("color", validate::color)?,
    };
    let project = writes.write(|tx| {
        let (before, role) = projects::find_project_for_user(tx, project_id, principal.viewer())?
            .ok_or(Error::NotFound)?;
        super::require_write(role)?;
        conditional::check_if_match(&request.headers, |out| {
            serde_json::to_writer(out, &before).expect("a project serializes");
        })?;
        let after = projects::update_project(tx, project_id, &changes)?;
        let outbox = super::outbox(tx, &after.space_id, principal)?;
        let unchanged = || {
            let mut before = before.clone();
            before.updated_at.clone_from(&after.updated_at);
            serde_json::to_value(&before).ok() == serde_json::to_value(&after).ok()
        };
        if outbox.wants(EventType::ProjectUpdated) && !unchanged() {
            outbox.emit_value(tx, EventType::ProjectUpdated, &after)?;
        }
        Ok(after)
    })?;
    Ok(conditional::tagged(Reply::ok(&project)))
}
