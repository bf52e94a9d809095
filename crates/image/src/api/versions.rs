//! Version discovery: `GET /` and `GET /versions` answer 300 with the list.

use axum::Router;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::State;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/", get(multiple))
        .route("/versions", get(plain))
        .route("/v2", get(multiple))
        .route("/v2/", get(multiple))
}

/// The newest version first, as Glance lists them.
const VERSIONS: &[(&str, &str)] = &[
    ("v2.17", "CURRENT"),
    ("v2.16", "SUPPORTED"),
    ("v2.15", "SUPPORTED"),
    ("v2.9", "SUPPORTED"),
    ("v2.7", "SUPPORTED"),
    ("v2.6", "SUPPORTED"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
];

fn document(base: &str) -> Value {
    let versions: Vec<Value> = VERSIONS
        .iter()
        .map(|(id, status)| json!({"id": id, "status": status, "links": [{"rel": "self", "href": format!("{base}/v2/")}]}))
        .collect();
    json!({"versions": versions})
}

async fn multiple(AxState(svc): AxState<State>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, axum::Json(document(&svc.base_url))).into_response()
}

async fn plain(AxState(svc): AxState<State>) -> Response {
    (StatusCode::OK, axum::Json(document(&svc.base_url))).into_response()
}
