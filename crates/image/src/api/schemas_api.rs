//! `/v2/schemas/...`: the JSON schemas clients validate against.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use stratus_core::auth::Auth;

use super::ok;
use crate::error::{Result, not_found};
use crate::{State, schemas};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2/schemas/image", get(|_: Auth| async { ok(schemas::image()) }))
        .route("/v2/schemas/images", get(|_: Auth| async { ok(schemas::images()) }))
        .route("/v2/schemas/member", get(|_: Auth| async { ok(schemas::member()) }))
        .route("/v2/schemas/members", get(|_: Auth| async { ok(schemas::members()) }))
        .route("/v2/schemas/metadefs/{kind}", get(metadef))
}

async fn metadef(AxState(_svc): AxState<State>, _: Auth, Path(kind): Path<String>) -> Result<Response> {
    schemas::metadef(&kind).map(ok).ok_or_else(|| not_found(format!("No schema {kind}")))
}
