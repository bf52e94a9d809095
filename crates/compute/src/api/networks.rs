//! Nova's network proxies `/os-networks` and `/os-tenant-networks`: list
//! and show (to 2.35) forward to the network service with the caller's
//! token, in the shapes Nova kept once nova-network was gone (an id and a
//! label, everything else null; `cidr` the string "None" for tenant
//! networks). The calls that only nova-network could serve (create, delete,
//! add, associate; fixed IPs, floating IP DNS, bulk floating IPs, fping,
//! default security group rules, a server's virtual interfaces) answer 410
//! at every microversion, as Nova does.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::{get, post, put};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::Microversion;
use stratus_core::auth::Auth;

use super::network_proxy::{gone, neutron, show as show_one, up_to_2_35};
use super::{authorize, is_admin, ok, project_of, project_target};
use crate::error::{Result, not_found};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-networks", get(index).post(removed))
        .route("/v2.1/os-networks/add", post(removed))
        .route("/v2.1/os-networks/{id}", get(show).delete(removed))
        .route("/v2.1/os-networks/{id}/action", post(removed))
        .route("/v2.1/os-tenant-networks", get(tenant_index).post(removed))
        .route("/v2.1/os-tenant-networks/{id}", get(tenant_show).delete(removed))
        .route("/v2.1/os-fixed-ips/{id}", get(removed))
        .route("/v2.1/os-fixed-ips/{id}/action", post(removed))
        .route("/v2.1/os-floating-ip-dns", get(removed))
        .route("/v2.1/os-floating-ip-dns/{id}", put(removed).delete(removed))
        .route("/v2.1/os-floating-ip-dns/{domain}/entries/{id}", get(removed).put(removed).delete(removed))
        .route("/v2.1/os-floating-ips-bulk", get(removed).post(removed))
        .route("/v2.1/os-floating-ips-bulk/{id}", get(removed).put(removed))
        .route("/v2.1/os-fping", get(removed))
        .route("/v2.1/os-fping/{id}", get(removed))
        .route("/v2.1/os-security-group-default-rules", get(removed).post(removed))
        .route("/v2.1/os-security-group-default-rules/{id}", get(removed).delete(removed))
        .route("/v2.1/servers/{id}/os-virtual-interfaces", get(removed))
}

const FIELDS: &[&str] =
    &["id", "cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "cidr_v6", "gateway_v6", "label", "netmask_v6"];

const ADMIN_FIELDS: &[&str] = &[
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
    "injected",
    "bridge",
    "vlan",
    "vpn_public_address",
    "vpn_public_port",
    "vpn_private_address",
    "dhcp_start",
    "project_id",
    "host",
    "bridge_interface",
    "multi_host",
    "priority",
    "rxtx_base",
    "mtu",
    "dhcp_server",
    "enable_dhcp",
    "share_address",
];

/// Nova's `network_dict` of `/os-networks`: the id and the label (the
/// network's name); the other nova-network fields null (more for an admin).
fn network_view(n: &Value, admin: bool) -> Value {
    let mut m = Map::new();
    let extra: &[&str] = if admin { ADMIN_FIELDS } else { &[] };
    for f in FIELDS.iter().chain(extra) {
        let v = match *f {
            "id" => n["id"].clone(),
            "label" => n["name"].clone(),
            _ => Value::Null,
        };
        m.insert((*f).to_string(), v);
    }
    Value::Object(m)
}

/// `/os-tenant-networks`' view: what Nova answered with Neutron behind it.
fn tenant_view(n: &Value) -> Value {
    json!({"id": n["id"], "cidr": "None", "label": n["name"]})
}

fn check(svc: &ComputeService, ctx: &AuthContext, mv: Microversion, rule: &str) -> Result<()> {
    up_to_2_35(mv)?;
    let project = project_of(ctx)?;
    authorize(svc, ctx, rule, &project_target(project))
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion) -> Result<Response> {
    check(&svc, &ctx, mv, "os_compute_api:os-networks:list")?;
    let nets = neutron(&svc)?.networks(&ctx.token, &[]).await.map_err(super::network_proxy::failed)?;
    let admin = is_admin(&svc, &ctx);
    Ok(ok(json!({"networks": nets.iter().map(|n| network_view(n, admin)).collect::<Vec<_>>()})))
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    check(&svc, &ctx, mv, "os_compute_api:os-networks:show")?;
    let n = show_one(neutron(&svc)?, &ctx.token, &format!("/networks/{id}"), "network")
        .await?
        .ok_or_else(|| not_found("Network not found"))?;
    Ok(ok(json!({"network": network_view(&n, is_admin(&svc, &ctx))})))
}

async fn tenant_index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion) -> Result<Response> {
    check(&svc, &ctx, mv, "os_compute_api:os-tenant-networks:list")?;
    let nets = neutron(&svc)?.networks(&ctx.token, &[]).await.map_err(super::network_proxy::failed)?;
    Ok(ok(json!({"networks": nets.iter().map(tenant_view).collect::<Vec<_>>()})))
}

async fn tenant_show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    check(&svc, &ctx, mv, "os_compute_api:os-tenant-networks:show")?;
    let n = show_one(neutron(&svc)?, &ctx.token, &format!("/networks/{id}"), "network")
        .await?
        .ok_or_else(|| not_found("Network not found"))?;
    Ok(ok(json!({"network": tenant_view(&n)})))
}

/// What only nova-network did: 410 Gone.
async fn removed(Auth(_ctx): Auth) -> Result<Response> {
    Err(gone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_keep_novas_fields() {
        let n = json!({"id": "n1", "name": "private"});
        let v = network_view(&n, false);
        assert_eq!(v["id"], "n1");
        assert_eq!(v["label"], "private");
        assert!(v["cidr"].is_null());
        assert_eq!(v.as_object().map(Map::len), Some(FIELDS.len()));
        assert!(network_view(&n, true).get("mtu").is_some());
        assert_eq!(tenant_view(&n), json!({"id": "n1", "cidr": "None", "label": "private"}));
    }
}
