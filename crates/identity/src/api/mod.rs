//! Keystone v3 over HTTP: one module per resource (routes, wire types, handlers).

use axum::Router;
use axum::http::{StatusCode, header::HeaderName};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stratus_core::AuthContext;

use crate::error::Result;
use crate::{Identity, State};

pub mod appcreds;
pub mod assignments;
pub mod auth;
pub mod catalog;
pub mod credentials;
pub mod domain_config;
pub mod domains;
pub mod endpoint_groups;
pub mod groups;
pub mod limits;
pub mod policies;
pub mod projects;
pub mod roles;
pub mod users;
pub mod versions;

pub fn routes(state: State) -> Router {
    Router::new()
        .merge(versions::routes())
        .merge(auth::routes())
        .merge(domains::routes())
        .merge(projects::routes())
        .merge(users::routes())
        .merge(groups::routes())
        .merge(roles::routes())
        .merge(assignments::routes())
        .merge(catalog::routes())
        .merge(credentials::routes())
        .merge(policies::routes())
        .merge(appcreds::routes())
        .merge(limits::routes())
        .merge(domain_config::routes())
        .merge(endpoint_groups::routes())
        .with_state(state)
}

impl Identity {
    /// 403 unless the rule allows the caller on `target`.
    pub fn enforce(&self, ctx: &AuthContext, rule: &str, target: Value) -> Result<()> {
        self.policy.enforce(ctx, rule, &target).map_err(Into::into)
    }

    pub fn link(&self, path: &str) -> Value {
        json!({ "self": format!("{}/v3/{}", self.base_url, path) })
    }

    /// `{"<key>": [...], "links": {...}}`
    pub fn collection(&self, path: &str, key: &str, items: Vec<Value>) -> Value {
        json!({
            key: items,
            "links": {"self": format!("{}/v3/{}", self.base_url, path), "previous": null, "next": null},
        })
    }
}

pub fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

pub fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub const SUBJECT_TOKEN: HeaderName = HeaderName::from_static("x-subject-token");

/// A query flag's truth as Keystone reads it (`?x`, `?x=1`, `?x=true`).
pub fn flag(q: &stratus_core::extract::RawQuery, key: &str) -> bool {
    q.flag(key).unwrap_or(false)
}

/// Filter a boolean attribute from the query (`enabled=false`).
pub fn bool_filter(q: &stratus_core::extract::RawQuery, key: &str) -> Option<bool> {
    q.get(key).map(crate::util::parse_bool_filter)
}
