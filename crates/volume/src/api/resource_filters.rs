//! `GET /v3/resource_filters` (3.33): the filter keys a non-admin may use on
//! each resource's list, and the one place list handlers take them from.
//!
//! The table is Cinder's default `resource_filters.json`. Admins may filter
//! by anything (except pools, which only admins list anyway). For others,
//! from 3.31 (RESOURCE_FILTER) a key outside the table is refused with 400,
//! as Cinder's `reject_invalid_filters`; before 3.31 it is dropped silently,
//! as Cinder's `remove_invalid_filter_options`. `all_tenants` is always
//! dropped silently (cinderclient sends it).

use axum::Router;
use axum::extract::State as AxState;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::State;
use crate::api::list::ListQuery;
use crate::api::ok;
use crate::error::{Result, bad, not_found};

/// Cinder's default `etc/cinder/resource_filters.json`, in its order.
pub const RESOURCE_FILTERS: &[(&str, &[&str])] = &[
    (
        "volume",
        &[
            "name",
            "status",
            "metadata",
            "bootable",
            "migration_status",
            "availability_zone",
            "group_id",
            "size",
            "created_at",
            "updated_at",
            "consumes_quota",
        ],
    ),
    ("backup", &["name", "status", "volume_id"]),
    ("snapshot", &["name", "status", "volume_id", "metadata", "availability_zone", "consumes_quota"]),
    ("group", &["name"]),
    ("group_snapshot", &["name", "status", "group_id"]),
    ("attachment", &["volume_id", "status", "instance_id", "attach_status"]),
    ("message", &["resource_uuid", "resource_type", "event_id", "request_id", "message_level"]),
    ("pool", &["name", "volume_type"]),
    ("volume_type", &["is_public", "extra_specs"]),
];

/// The keys a non-admin may filter `resource` by (none for an unknown one).
pub fn filters_of(resource: &str) -> &'static [&'static str] {
    RESOURCE_FILTERS.iter().find(|(r, _)| *r == resource).map(|(_, f)| *f).unwrap_or(&[])
}

/// Is `key` a filter a non-admin may use on `resource`? From 3.34 (like
/// filters) `key` is also valid when `key~` is configured, as Cinder.
/// `display_name` is the old spelling of `name`.
pub fn accepts(resource: &str, key: &str, like: bool) -> bool {
    let configured = filters_of(resource);
    let key = if key == "display_name" { "name" } else { key };
    configured.contains(&key) || (like && configured.iter().any(|c| c.strip_suffix('~') == Some(key)))
}

/// Apply the table to a non-admin's list query of `resource`: 400 for an
/// unknown key from 3.31, dropped before. Admins keep every filter.
pub fn restrict(q: &mut ListQuery, resource: &str, admin: bool, mv: Microversion) -> Result<()> {
    if admin && resource != "pool" {
        return Ok(());
    }
    let like = mv.at_least(3, 34);
    if !mv.at_least(3, 31) {
        q.filters.retain(|(k, _)| accepts(resource, k, like));
        return Ok(());
    }
    let invalid: Vec<&str> =
        q.filters.iter().map(|(k, _)| k.as_str()).filter(|k| !accepts(resource, k, like)).collect();
    if !invalid.is_empty() {
        return Err(bad(format!("Invalid filters {} are found in query options.", invalid.join(","))));
    }
    Ok(())
}

pub fn routes() -> Router<State> {
    Router::new().route("/v3/resource_filters", get(index))
}

/// `{"resource_filters": [{"resource": ..., "filters": [...]}]}`: every
/// resource, or only `?resource=` (none when unknown).
pub fn view(resource: Option<&str>) -> Value {
    let list: Vec<Value> = RESOURCE_FILTERS
        .iter()
        .filter(|(r, _)| resource.is_none_or(|want| want == *r))
        .map(|(r, f)| json!({"resource": r, "filters": f}))
        .collect();
    json!({ "resource_filters": list })
}

async fn index(AxState(_svc): AxState<State>, Auth(_ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    if !mv.at_least(3, 33) {
        return Err(not_found("The resource could not be found."));
    }
    Ok(ok(view(q.get("resource").filter(|r| !r.is_empty()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_resource_or_all() {
        let all = view(None);
        assert_eq!(all["resource_filters"].as_array().map(Vec::len), Some(RESOURCE_FILTERS.len()));
        let vol = view(Some("volume"));
        assert_eq!(vol["resource_filters"][0]["resource"], "volume");
        assert!(vol["resource_filters"][0]["filters"].as_array().is_some_and(|f| f.contains(&json!("bootable"))));
        assert_eq!(view(Some("nothing"))["resource_filters"], json!([]));
    }

    #[test]
    fn restrict_rejects_from_3_31_and_drops_before() {
        let pairs = vec![("name".to_string(), "a".to_string()), ("host".to_string(), "h".to_string())];
        let mut q = ListQuery::parse(&pairs).unwrap();
        let err = restrict(&mut q, "volume", false, Microversion(3, 31)).unwrap_err();
        assert!(format!("{err}").contains("Invalid filters host"), "{err}");
        let mut q = ListQuery::parse(&pairs).unwrap();
        restrict(&mut q, "volume", false, Microversion(3, 0)).unwrap();
        assert_eq!(q.filters, vec![("name".to_string(), "a".to_string())]);
        let mut q = ListQuery::parse(&pairs).unwrap();
        restrict(&mut q, "volume", true, Microversion(3, 60)).unwrap();
        assert_eq!(q.filters.len(), 2);
        // all_tenants never counts against a non-admin
        let mut q = ListQuery::parse(&[("all_tenants".to_string(), "1".to_string())]).unwrap();
        restrict(&mut q, "volume", false, Microversion(3, 60)).unwrap();
    }
}
