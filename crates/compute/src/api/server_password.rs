//! `/servers/{id}/os-server-password`: the encrypted admin password a guest
//! posts to the metadata service. Stratus has no metadata service, so no
//! guest ever posts one: show answers the empty password Nova shows until
//! then, and clear (which only ever empties it) has nothing to remove.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use stratus_core::auth::Auth;

use super::servers::visible;
use super::{authorize, no_content, ok, project_target};
use crate::State;
use crate::error::Result;

pub fn routes() -> Router<State> {
    Router::new().route("/v2.1/servers/{id}/os-server-password", get(show).delete(clear))
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-server-password:show", &project_target(&inst.project_id))?;
    Ok(ok(json!({"password": ""})))
}

async fn clear(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-server-password:clear", &project_target(&inst.project_id))?;
    Ok(no_content())
}
