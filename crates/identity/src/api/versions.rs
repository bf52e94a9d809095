//! Version discovery: `GET /` (300, the versions list) and `GET /v3` (200).

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::State;

fn v3(base: &str) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

async fn root(S(s): S<State>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, Json(json!({"versions": {"values": [v3(&s.base_url)]}}))).into_response()
}

async fn version(S(s): S<State>) -> Json<Value> {
    Json(json!({"version": v3(&s.base_url)}))
}

pub fn routes() -> Router<State> {
    Router::new().route("/", get(root)).route("/v3", get(version)).route("/v3/", get(version))
}
