//! Neutron v2.0 over HTTP: one module per resource (routes, wire types, handlers).
//!
//! `GET /` (versions) needs no token; everything under `/v2.0` does.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stratus_core::{AuthContext, TokenValidator};

use crate::error::{NetworkError, Result, forbidden};
use crate::{NetworkService, State};

pub mod address_scopes;
pub mod agents;
pub mod auto_allocated_topology;
pub mod availability_zones;
pub mod extensions;
pub mod floatingips;
pub mod ip_availability;
pub mod l3_agent_scheduler;
pub mod list;
pub mod networks;
pub mod port_forwardings;
pub mod port_writes;
pub mod ports;
pub mod quotas;
pub mod rbac_policies;
pub mod root;
pub mod routers;
pub mod security_group_rules;
pub mod security_groups;
pub mod subnetpools;
pub mod subnets;
pub mod tags;

/// Every route of the network API, with authentication.
pub fn routes(state: State, validator: Arc<dyn TokenValidator>) -> Router {
    let authed: Router<State> = Router::new()
        .merge(root::authed_routes())
        .merge(extensions::routes())
        .merge(networks::routes())
        .merge(subnets::routes())
        .merge(ports::routes())
        .merge(subnetpools::routes())
        .merge(ip_availability::routes())
        .merge(tags::routes())
        .merge(quotas::routes())
        .merge(address_scopes::routes())
        .merge(auto_allocated_topology::routes());
    let authed = authed.merge(security_groups::routes()).merge(security_group_rules::routes());
    let authed = authed.merge(rbac_policies::routes()).merge(agents::routes()).merge(availability_zones::routes());
    let authed = authed.merge(routers::routes()).merge(floatingips::routes());
    let authed = authed.merge(port_forwardings::routes()).merge(l3_agent_scheduler::routes());
    let authed = authed.layer(stratus_core::auth::layer(validator));
    Router::new().merge(root::routes()).merge(authed).with_state(state)
}

pub fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

pub fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Is the caller an admin?
pub fn is_admin(svc: &NetworkService, ctx: &AuthContext) -> bool {
    svc.policy.allowed(ctx, "context_is_admin", &json!({}))
}

/// The caller's project ('' for a system- or domain-scoped admin).
pub fn project_of(ctx: &AuthContext) -> String {
    ctx.project_id.clone().unwrap_or_default()
}

/// Does `rule` allow the caller on a resource of `project_id`?
pub fn allowed(svc: &NetworkService, ctx: &AuthContext, rule: &str, project_id: &str) -> bool {
    svc.policy.allowed(ctx, rule, &json!({"project_id": project_id, "tenant_id": project_id}))
}

/// 403 in Neutron's words unless `rule` allows the caller.
pub fn authorize(svc: &NetworkService, ctx: &AuthContext, rule: &str, project_id: &str) -> Result<()> {
    if allowed(svc, ctx, rule, project_id) {
        Ok(())
    } else {
        Err(forbidden(format!("(rule:{rule}) is disallowed by policy")))
    }
}

/// The default of an attribute with a policy rule of its own (Neutron's
/// attribute map `default`): on a create, the rule is checked only when the
/// value given differs from it.
#[derive(Clone, Copy, Debug)]
pub enum AttrDefault {
    /// No default (`ATTR_NOT_SPECIFIED`): any value given is checked.
    Unset,
    Bool(bool),
    Str(&'static str),
}

/// Is `attr` set in a create body to something other than its default
/// (Neutron's `_is_attribute_explicitly_set`: values are compared after
/// conversion, so `"false"` is the default `false`)?
pub fn explicitly_set(obj: &serde_json::Map<String, Value>, attr: &str, default: AttrDefault) -> bool {
    let Some(v) = obj.get(attr) else { return false };
    match default {
        AttrDefault::Unset => true,
        AttrDefault::Bool(d) => crate::model::boolean(attr, v).map_or(true, |b| b != d),
        AttrDefault::Str(d) => v.as_str() != Some(d),
    }
}

/// Attribute rules (`<action>_<resource>:<attr>`) that must allow the
/// caller: on a create (`creating`), for each attribute given with a value
/// other than its default; on an update, for each attribute in the body
/// (as Neutron does: an update names what it changes).
pub fn authorize_attributes(
    svc: &NetworkService,
    ctx: &AuthContext,
    rule_prefix: &str,
    obj: &serde_json::Map<String, Value>,
    attrs: &[(&str, AttrDefault)],
    project_id: &str,
    creating: bool,
) -> Result<()> {
    for (a, d) in attrs {
        let set = if creating { explicitly_set(obj, a, *d) } else { obj.contains_key(*a) };
        if set {
            authorize(svc, ctx, &format!("{rule_prefix}:{a}"), project_id)?;
        }
    }
    Ok(())
}

/// The project a create is for: the body's `project_id`/`tenant_id` (admins
/// may name another project), else the caller's.
pub fn owner_for_create(
    svc: &NetworkService,
    ctx: &AuthContext,
    obj: &serde_json::Map<String, Value>,
) -> Result<String> {
    let mine = project_of(ctx);
    let named = match (obj.get("project_id"), obj.get("tenant_id")) {
        (Some(p), Some(t)) if p != t => {
            return Err(crate::error::bad("'project_id' and 'tenant_id' do not match"));
        }
        (Some(v), _) | (None, Some(v)) => Some(
            v.as_str().ok_or_else(|| crate::error::invalid("project_id", format!("'{v}' is not a valid string")))?,
        ),
        (None, None) => None,
    };
    match named {
        Some(p) if p != mine && !is_admin(svc, ctx) => Err(forbidden(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
        )),
        Some(p) => Ok(p.to_string()),
        None if mine.is_empty() => {
            Err(crate::error::bad("A project is required: use a project-scoped token or name one"))
        }
        None => Ok(mine),
    }
}

/// `If-Match: revision_number=N`: 412 unless the resource is at revision N.
pub fn check_revision(headers: &HeaderMap, current: i64) -> Result<()> {
    for v in headers.get_all("if-match") {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(',') {
            let part = part.trim();
            if let Some(n) = part.strip_prefix("revision_number=") {
                let want: i64 =
                    n.trim().parse().map_err(|_| crate::error::bad(format!("Invalid If-Match header {part}")))?;
                if want != current {
                    return Err(crate::error::precondition_failed(format!(
                        "Constrained to revision number {want}, but the resource is at revision {current}."
                    )));
                }
            }
        }
    }
    Ok(())
}

/// A request body as a JSON value (400 in Neutron's style otherwise).
pub type Body = stratus_core::extract::Json<Value>;

impl From<NetworkError> for Response {
    fn from(e: NetworkError) -> Response {
        e.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn attributes_given_with_their_default_are_not_explicitly_set() {
        let b = body(json!({"shared": false, "is_default": "false", "port_security_enabled": true, "vnic": "normal"}));
        assert!(!explicitly_set(&b, "shared", AttrDefault::Bool(false)));
        assert!(!explicitly_set(&b, "is_default", AttrDefault::Bool(false)), "converted before comparing");
        assert!(!explicitly_set(&b, "port_security_enabled", AttrDefault::Bool(true)));
        assert!(!explicitly_set(&b, "vnic", AttrDefault::Str("normal")));
        assert!(!explicitly_set(&b, "absent", AttrDefault::Unset));
        let b = body(json!({"shared": "yes", "vnic": "direct", "provider:network_type": "vxlan", "x": "junk"}));
        assert!(explicitly_set(&b, "shared", AttrDefault::Bool(false)));
        assert!(explicitly_set(&b, "vnic", AttrDefault::Str("normal")));
        assert!(explicitly_set(&b, "provider:network_type", AttrDefault::Unset), "no default: any value");
        assert!(explicitly_set(&b, "x", AttrDefault::Bool(false)), "not a boolean: checked (and refused later)");
    }
}
