//! `GET /api/me`: who the token belongs to, and the token itself.

use serde_json::json;

use crate::app::ApiRequest;
use crate::auth::Principal;
use crate::error::Error;
use crate::reply::Reply;

pub fn get(principal: &Principal, request: &ApiRequest) -> Result<Reply, Error> {
    super::query(request, &[])?;
    let (user, token) = (&principal.user, &principal.token);
    Ok(Reply::ok(&json!({
        "user": { "id": user.id, "email": user.email, "name": user.name, "plan": user.plan },
        "token": {
            "id": token.id,
            "name": token.name,
            "prefix": token.prefix,
            "scope": token.scope,
            // When it stops working: its expiry, or the end of a rotation's grace if sooner (the
            // `Token-Expires-At` header's value).
            "expiresAt": token.ends_at(),
            "spaces": token.spaces,
        },
    })))
}
