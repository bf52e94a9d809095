//! `/v2.0/auto-allocated-topology/{project_id}` (auto-allocated-topology):
//! "get me a network". The first `GET` of a project makes its topology — a
//! network `auto_allocated_network`, a subnet of it from the default subnet
//! pool of each IP version (`is_default`), and a router
//! `auto_allocated_router` with its gateway on the default external network
//! (`is_default`) and an interface on each subnet — and every later one
//! returns it. `?fields=dry-run` only checks that it could be made (409
//! otherwise); `DELETE` removes it.
//!
//! The whole topology is written in one transaction that first inserts the
//! project's row in `auto_allocated_topologies` (keyed by project): a racing
//! first request waits on that row, fails on its key once the winner
//! commits, and returns the winner's network — two concurrent `GET`s make
//! one topology.

use std::net::IpAddr;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, TransactionTrait};
use serde_json::{Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::ListParams;
use crate::api::subnets::pool_prefixes;
use crate::api::{authorize, is_admin, no_content, ok, project_of};
use crate::entity::auto_allocated_topology::{self as topology, Model as Topology};
use crate::entity::network::Model as Network;
use crate::entity::router::Model as Router_;
use crate::entity::subnet::Model as Subnet;
use crate::entity::subnetpool::Model as SubnetPool;
use crate::error::{NetworkError, Result, bad, conflict, forbidden};
use crate::store::routers::{GATEWAY_OWNER, INTERFACE_OWNER, IpRequest, create_service_port, retryable};
use crate::store::{self as st, floatingips, networks, quotas, rbac, subnetpools, subnets, tags};
use crate::{NetworkService, State, ipam, l3, model};

pub const NETWORK_NAME: &str = "auto_allocated_network";
pub const ROUTER_NAME: &str = "auto_allocated_router";

pub fn routes() -> Router<State> {
    Router::new().route("/v2.0/auto-allocated-topology/{project_id}", get(show).delete(delete))
}

fn render(network_id: &str, project: &str) -> Value {
    json!({"auto_allocated_topology": {"id": network_id, "tenant_id": project, "project_id": project}})
}

fn failure(reason: &str) -> NetworkError {
    conflict("AutoAllocationFailure", format!("Deployment error: {reason}."))
}

/// The project the topology is for: the path's (`None`: the caller's, as
/// clients that know no project send); another project's only for admins.
fn project_for(svc: &NetworkService, ctx: &AuthContext, path: &str, rule: &str) -> Result<String> {
    let project = if path == "None" || path.is_empty() { project_of(ctx) } else { path.to_string() };
    if project.is_empty() {
        return Err(bad("A project is required: use a project-scoped token or name one"));
    }
    if project != project_of(ctx) && !is_admin(svc, ctx) {
        return Err(forbidden("not authorized"));
    }
    authorize(svc, ctx, rule, &project)?;
    Ok(project)
}

/// What the topology is made from: the default external network and the
/// default subnet pools (409 `AutoAllocationFailure` without them).
async fn requirements<C: ConnectionTrait>(conn: &C) -> Result<(Network, Vec<SubnetPool>)> {
    let external =
        networks::default_external(conn).await?.ok_or_else(|| failure("No default router:external network"))?;
    let mut pools = Vec::new();
    for v in [4, 6] {
        if let Some(p) = subnetpools::default_for(conn, v).await? {
            pools.push(p);
        }
    }
    if pools.is_empty() {
        return Err(failure("No default subnetpools defined"));
    }
    Ok((external, pools))
}

pub async fn existing<C: ConnectionTrait>(conn: &C, project: &str) -> Result<Option<Topology>> {
    Ok(topology::Entity::find_by_id(project.to_string()).one(conn).await?)
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(path): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let project = project_for(&svc, &ctx, &path, "get_auto_allocated_topology")?;
    if p.fields.iter().any(|f| f == "dry-run") {
        requirements(&svc.db.read).await?;
        return Ok(ok(render("dry-run=pass", &project)));
    }
    if !p.fields.is_empty() {
        return Err(bad("Unrecognized field"));
    }
    let network_id = ensure(&svc, &project).await?;
    Ok(ok(render(&network_id, &project)))
}

/// The network of the project's topology, made first if it has none.
pub async fn ensure(svc: &State, project: &str) -> Result<String> {
    if let Some(t) = existing(&svc.db.read, project).await? {
        return Ok(t.network_id);
    }
    let (external, pools) = requirements(&svc.db.read).await?;
    let host = l3::choose_host(&svc.db.read, svc.cfg.network.agent_down_time).await?.unwrap_or_default();
    quotas::ensure_lock_row(&svc.db, project).await?;
    let retries = svc.cfg.network.allocation_retries.max(1);
    let mut last = None;
    for _ in 0..=retries {
        match build(svc, project, &external, &pools, &host).await {
            Ok(Built::Made(t)) => {
                l3::router_changed(svc, &t.router_id);
                return Ok(t.network_id);
            }
            Ok(Built::Raced) => {
                if let Some(t) = existing(&svc.db.write, project).await? {
                    return Ok(t.network_id);
                }
                // the winner rolled back: try again
            }
            Err(e) if retryable(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    tracing::warn!(%project, "auto-allocated topology gave up after {retries} retries: {last:?}");
    Err(conflict("AutoAllocationFailure", "Deployment error: the topology kept conflicting; try again."))
}

enum Built {
    Made(Topology),
    /// Another request made the project's topology first.
    Raced,
}

async fn build(
    svc: &NetworkService,
    project: &str,
    external: &Network,
    pools: &[SubnetPool],
    host: &str,
) -> Result<Built> {
    let txn = svc.db.write.begin().await?;
    let t = Topology { project_id: project.to_string(), network_id: st::new_id(), router_id: st::new_id() };
    // the project's row first: a racing build waits here, then fails on the key
    if let Err(e) = topology::ActiveModel::from(t.clone()).insert(&txn).await {
        if stratus_db::is_unique_violation(&e) {
            return Ok(Built::Raced);
        }
        return Err(e.into());
    }
    // every lock before the first plain read (MySQL's snapshot starts there)
    for p in pools {
        subnetpools::lock(&txn, &p.id).await?;
    }
    quotas::check(&txn, &svc.cfg, project, "network", 1).await?;
    quotas::check(&txn, &svc.cfg, project, "subnet", pools.len() as i64).await?;
    quotas::check(&txn, &svc.cfg, project, "router", 1).await?;

    let now = st::now();
    let used = networks::used_segments(&txn, "vxlan", "").await?;
    let segment = model::lowest_free(model::VNI_RANGE, &used)
        .ok_or_else(|| failure("Unable to provide project private network"))?;
    let net = Network {
        id: t.network_id.clone(),
        project_id: project.to_string(),
        name: NETWORK_NAME.into(),
        admin_state_up: true,
        status: "ACTIVE".into(),
        shared: false,
        external: false,
        mtu: svc.cfg.network.default_mtu,
        port_security_enabled: true,
        network_type: "vxlan".into(),
        physical_network: String::new(),
        segmentation_id: Some(segment),
        availability_zone_hints: "[]".into(),
        dns_domain: String::new(),
        is_default: false,
        description: String::new(),
        created_at: now.clone(),
        updated_at: now.clone(),
        revision_number: 0,
    };
    networks::insert(&txn, net.clone()).await?;

    let mut made = Vec::new();
    for pool in pools {
        made.push(carve_subnet(&txn, &net, pool).await?);
    }

    let base_mac = &svc.cfg.network.base_mac;
    let ext_subnets = subnets::of_network(&txn, &external.id).await?;
    let gw_reqs: Vec<IpRequest> = [4, 6]
        .into_iter()
        .map(|v| ext_subnets.iter().filter(|s| s.ip_version == v).cloned().collect::<Vec<_>>())
        .filter(|g| !g.is_empty())
        .map(IpRequest::Any)
        .collect();
    let (gw, _) = create_service_port(&txn, base_mac, &external.id, "", GATEWAY_OWNER, &t.router_id, &gw_reqs).await?;
    for s in &made {
        let Some(g) = s.gateway_ip.parse::<IpAddr>().ok() else { continue };
        let reqs = [IpRequest::Specific(Box::new(s.clone()), g)];
        create_service_port(&txn, base_mac, &net.id, project, INTERFACE_OWNER, &t.router_id, &reqs).await?;
    }
    let router = Router_ {
        id: t.router_id.clone(),
        project_id: project.to_string(),
        name: ROUTER_NAME.into(),
        admin_state_up: true,
        status: "ACTIVE".into(),
        gw_port_id: gw.id,
        enable_snat: true,
        availability_zone_hints: "[]".into(),
        l3_agent_host: host.to_string(),
        description: String::new(),
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    };
    st::routers::insert(&txn, router).await?;
    txn.commit().await?;
    Ok(Built::Made(t))
}

/// `auto_allocated_subnet_v<N>`: the pool's default prefix length, carved
/// from what the pool's other subnets leave.
async fn carve_subnet<C: ConnectionTrait>(conn: &C, net: &Network, pool: &SubnetPool) -> Result<Subnet> {
    let used: Vec<ipnet::IpNet> =
        subnets::of_pool(conn, &pool.id).await?.iter().filter_map(|s| s.cidr.parse().ok()).collect();
    let cidr = ipam::carve(&pool_prefixes(pool), &used, pool.default_prefixlen as u8)
        .ok_or_else(|| failure("Unable to provide project private network"))?;
    let version = ipam::net_version(&cidr);
    let gateway = ipam::default_gateway(&cidr);
    let pools: Vec<Value> = ipam::default_pools(&cidr, gateway)
        .iter()
        .map(|r| {
            json!({"start": ipam::from_u128(r.start, version).to_string(), "end": ipam::from_u128(r.end, version).to_string()})
        })
        .collect();
    let now = st::now();
    let s = Subnet {
        id: st::new_id(),
        project_id: net.project_id.clone(),
        network_id: net.id.clone(),
        name: format!("auto_allocated_subnet_v{version}"),
        ip_version: i64::from(version),
        cidr: cidr.to_string(),
        gateway_ip: gateway.map(|g| g.to_string()).unwrap_or_default(),
        allocation_pools: Value::Array(pools).to_string(),
        dns_nameservers: "[]".into(),
        host_routes: "[]".into(),
        enable_dhcp: true,
        ipv6_ra_mode: String::new(),
        ipv6_address_mode: String::new(),
        subnetpool_id: pool.id.clone(),
        description: String::new(),
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    };
    subnets::insert(conn, s.clone()).await?;
    Ok(s)
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(path): Path<String>) -> Result<Response> {
    let project = project_for(&svc, &ctx, &path, "delete_auto_allocated_topology")?;
    let Some(t) = existing(&svc.db.read, &project).await? else {
        return Ok(no_content());
    };
    let txn = svc.db.write.begin().await?;
    let router = st::routers::get(&txn, &t.router_id).await?;
    if let Some(r) = &router {
        if floatingips::count_via_router(&txn, &r.id).await? > 0 {
            return Err(conflict(
                "RouterInterfaceInUseByFloatingIP",
                format!(
                    "Router interface on router {} cannot be deleted, as it is required by one or more floating IPs.",
                    r.id
                ),
            ));
        }
        for p in st::routers::interfaces(&txn, &r.id).await? {
            if p.network_id == t.network_id {
                st::ports::delete(&txn, &p.id).await?;
            }
        }
    }
    if st::ports::blocking_network_delete(&txn, &t.network_id).await? > 0 {
        return Err(conflict(
            "NetworkInUse",
            format!(
                "Unable to complete operation on network {}. There are one or more ports still in use on the network.",
                t.network_id
            ),
        ));
    }
    // the router goes unless the project gave it other interfaces meanwhile
    let mut router_gone = false;
    if let Some(r) = &router
        && st::routers::interfaces(&txn, &r.id).await?.is_empty()
    {
        if !r.gw_port_id.is_empty() {
            st::ports::delete(&txn, &r.gw_port_id).await?;
        }
        router_gone = st::routers::delete(&txn, &r.id).await?;
    }
    st::ports::delete_network_owned(&txn, &t.network_id).await?;
    subnets::delete_for_network(&txn, &t.network_id).await?;
    tags::remove_all(&txn, networks::TAG_TYPE, &t.network_id).await?;
    rbac::delete_for_object(&txn, "network", &t.network_id).await?;
    networks::delete(&txn, &t.network_id).await?;
    topology::Entity::delete_by_id(project.clone()).exec(&txn).await?;
    txn.commit().await?;
    match &router {
        Some(r) if router_gone => l3::router_deleted(&svc, r),
        Some(r) => l3::router_changed(&svc, &r.id),
        None => {}
    }
    Ok(no_content())
}
