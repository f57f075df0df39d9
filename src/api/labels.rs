//! `GET /api/labels?spaceId=`: a space's labels. Labels are created through a task
//! (`POST /api/tasks/:id/labels` by name, or `labels` names on a task).

use crate::app::{ApiRequest, Site};
use crate::auth::Principal;
use crate::error::Error;
use crate::reply::Reply;
use crate::store::Snapshot;
use crate::store::labels;

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
        labels::list_labels,
    )
}
