//! `GET /`: the version document, served without a token as placement does.

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use stratus_core::Microversion;

use crate::{State, VERSIONS};

pub fn routes() -> Router<State> {
    Router::new().route("/", get(home))
}

async fn home(mv: Microversion) -> Response {
    let doc = json!({"versions": [{
        "id": format!("v{}", VERSIONS.min),
        "max_version": VERSIONS.max.to_string(),
        "min_version": VERSIONS.min.to_string(),
        "status": "CURRENT",
        "links": [{"rel": "self", "href": ""}],
    }]});
    super::json_response(StatusCode::OK, &doc, mv, None)
}
