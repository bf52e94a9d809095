//! Version discovery: `GET /` (all versions) and `GET /v2.1` (this one).

use axum::Router;
use axum::extract::State as S;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::ok;
use crate::{State, VERSIONS};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/", get(all))
        .route("/v2.1", get(one))
        .route("/v2.1/", get(one))
        .route("/v2", get(legacy))
        .route("/v2/", get(legacy))
}

fn v21(base: &str) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": VERSIONS.max.to_string(),
        "min_version": VERSIONS.min.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}/v2.1/")}],
    })
}

fn v20(base: &str) -> Value {
    json!({
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}/v2/")}],
    })
}

async fn all(S(svc): S<State>) -> Response {
    ok(json!({"versions": [v20(&svc.base_url), v21(&svc.base_url)]}))
}

async fn one(S(svc): S<State>) -> Response {
    let mut v = v21(&svc.base_url);
    v["links"] = json!([
        {"rel": "self", "href": format!("{}/v2.1/", svc.base_url)},
        {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
    ]);
    v["media-types"] =
        json!([{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]);
    ok(json!({"version": v}))
}

/// `GET /v2/`: the legacy v2.0 endpoint's document (Nova serves v2.0 as 2.1
/// without microversions; only its version document is offered here).
async fn legacy(S(svc): S<State>) -> Response {
    let mut v = v20(&svc.base_url);
    v["links"] = json!([
        {"rel": "self", "href": format!("{}/v2/", svc.base_url)},
        {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
    ]);
    v["media-types"] =
        json!([{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}]);
    ok(json!({ "version": v }))
}
