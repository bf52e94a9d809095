//! `/servers/{id}/os-server-password`: the encrypted admin password a guest
//! posts to the metadata service (`openstack/<version>/password`, kept by
//! [`crate::metadata::password`]). Show answers it ('' until the guest
//! posted one); clear forgets it, so the guest may post again.

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
    Ok(ok(json!({"password": crate::metadata::password::of(&inst)})))
}

async fn clear(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-server-password:clear", &project_target(&inst.project_id))?;
    crate::metadata::password::clear(&svc.db, &inst.uuid).await?;
    Ok(no_content())
}
