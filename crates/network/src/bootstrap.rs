//! The networks a fresh cloud starts with, as devstack makes them: an external
//! network `public` (subnet `public-subnet`, DHCP off), a project network
//! `private` (subnet `private-subnet`) and a router `router1` with its gateway
//! on `public` and an interface on `private-subnet`, all in the admin project.
//!
//! `public` is also the default external network (`is_default`) and a
//! shared default IPv4 subnet pool (`shared-default-subnetpool-v4`,
//! 10.128.0.0/9, /26 subnets) is made, so that a project without networks
//! gets one from the auto-allocated topology (Nova's `networks: auto`).
//!
//! Each piece is looked up by name in the admin project first, so running it
//! again (every `stratus up`) creates nothing new, and a piece an operator
//! deleted comes back alone. Everything is written in one transaction.

use std::net::IpAddr;

use ipnet::IpNet;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};
use stratus_core::Config;
use stratus_core::config::NetworkBootstrapConfig;
use stratus_db::Db;

use crate::entity::network::Model as Network;
use crate::entity::router::Model as Router;
use crate::entity::subnet::Model as Subnet;
use crate::error::{Result, bad};
use crate::store::routers::{GATEWAY_OWNER, INTERFACE_OWNER, IpRequest, create_service_port};
use crate::store::{self as st, networks, rbac, subnets};
use crate::{ipam, model};

pub const PUBLIC_NETWORK: &str = "public";
pub const PUBLIC_SUBNET: &str = "public-subnet";
pub const PRIVATE_NETWORK: &str = "private";
pub const PRIVATE_SUBNET: &str = "private-subnet";
pub const ROUTER: &str = "router1";
/// The default IPv4 subnet pool (shared, `is_default`) auto-allocated
/// topologies carve their subnets from, as devstack names it.
pub const DEFAULT_POOL: &str = "shared-default-subnetpool-v4";
pub const DEFAULT_POOL_PREFIX: &str = "10.128.0.0/9";
pub const DEFAULT_POOL_PREFIXLEN: i64 = 26;

/// What one run made (names of the new resources, in order of creation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub created: Vec<String>,
}

/// Make whatever of the bootstrap networks the admin project lacks (nothing
/// when `[network.bootstrap] enable` is off). The database must be migrated.
pub async fn run(db: &Db, cfg: &Config, admin_project: &str) -> Result<Outcome> {
    let b = &cfg.network.bootstrap;
    let mut out = Outcome::default();
    if !b.enable {
        return Ok(out);
    }
    let public_cidr = ipam::parse_cidr("network.bootstrap.public_cidr", &b.public_cidr, 4)?;
    let private_cidr = ipam::parse_cidr("network.bootstrap.private_cidr", &b.private_cidr, 4)?;
    if ipam::overlaps(&public_cidr, &private_cidr) {
        return Err(bad(format!("network.bootstrap: {public_cidr} and {private_cidr} overlap")));
    }
    let txn = db.write.begin().await?;
    let public = match networks::named(&txn, admin_project, PUBLIC_NETWORK).await? {
        Some(n) => n,
        None => {
            out.created.push(PUBLIC_NETWORK.into());
            create_network(&txn, cfg, b, admin_project, PUBLIC_NETWORK, true).await?
        }
    };
    let public_subnet = match subnets::named(&txn, &public.id, PUBLIC_SUBNET).await? {
        Some(s) => s,
        None => {
            out.created.push(PUBLIC_SUBNET.into());
            create_subnet(&txn, &public, PUBLIC_SUBNET, &public_cidr, false).await?
        }
    };
    // `public` is the default external network (auto-allocated topologies
    // get their gateway there) unless another one is
    if public.external && networks::default_external(&txn).await?.is_none() {
        out.created.push(format!("{PUBLIC_NETWORK} as the default external network"));
        let mut n = public.clone();
        n.is_default = true;
        n.updated_at = st::now();
        if !networks::save(&txn, &n).await? {
            return Err(anyhow::anyhow!("network {} changed during the bootstrap", n.id).into());
        }
    }
    let pool_prefix = ipam::parse_cidr("default subnet pool", DEFAULT_POOL_PREFIX, 4)?;
    if st::subnetpools::default_for(&txn, 4).await?.is_none()
        && st::subnetpools::named(&txn, admin_project, DEFAULT_POOL).await?.is_none()
    {
        if ipam::overlaps(&pool_prefix, &public_cidr) || ipam::overlaps(&pool_prefix, &private_cidr) {
            tracing::warn!(
                "network.bootstrap: no default subnet pool: {pool_prefix} overlaps {public_cidr} or {private_cidr}"
            );
        } else {
            out.created.push(DEFAULT_POOL.into());
            st::subnetpools::insert(&txn, default_pool(admin_project, &pool_prefix)).await?;
        }
    }
    let private = match networks::named(&txn, admin_project, PRIVATE_NETWORK).await? {
        Some(n) => n,
        None => {
            out.created.push(PRIVATE_NETWORK.into());
            create_network(&txn, cfg, b, admin_project, PRIVATE_NETWORK, false).await?
        }
    };
    let private_subnet = match subnets::named(&txn, &private.id, PRIVATE_SUBNET).await? {
        Some(s) => s,
        None => {
            out.created.push(PRIVATE_SUBNET.into());
            create_subnet(&txn, &private, PRIVATE_SUBNET, &private_cidr, true).await?
        }
    };
    let mut r = match st::routers::named(&txn, admin_project, ROUTER).await? {
        Some(r) => r,
        None => {
            out.created.push(ROUTER.into());
            let r = new_router(admin_project);
            st::routers::insert(&txn, r.clone()).await?;
            r
        }
    };
    if r.gw_port_id.is_empty() {
        out.created.push(format!("{ROUTER} gateway on {PUBLIC_NETWORK}"));
        let reqs = [IpRequest::Any(vec![public_subnet])];
        let (p, _) =
            create_service_port(&txn, &cfg.network.base_mac, &public.id, "", GATEWAY_OWNER, &r.id, &reqs).await?;
        r.gw_port_id = p.id;
        r.enable_snat = true;
        r.updated_at = st::now();
        if !st::routers::save(&txn, &r).await? {
            return Err(anyhow::anyhow!("router {} changed during the bootstrap", r.id).into());
        }
    }
    if !has_interface_on(&txn, &r.id, &private_subnet).await? {
        out.created.push(format!("{ROUTER} interface on {PRIVATE_SUBNET}"));
        let gw: IpAddr = private_subnet
            .gateway_ip
            .parse()
            .map_err(|_| anyhow::anyhow!("gateway {:?} of {PRIVATE_SUBNET}", private_subnet.gateway_ip))?;
        let reqs = [IpRequest::Specific(Box::new(private_subnet.clone()), gw)];
        create_service_port(&txn, &cfg.network.base_mac, &private.id, admin_project, INTERFACE_OWNER, &r.id, &reqs)
            .await?;
    }
    txn.commit().await?;
    Ok(out)
}

/// Does the router have an interface port with an address on `s`?
async fn has_interface_on<C: ConnectionTrait>(conn: &C, router_id: &str, s: &Subnet) -> Result<bool> {
    let ports: Vec<String> = st::routers::interfaces(conn, router_id).await?.into_iter().map(|p| p.id).collect();
    let ips = subnets::allocations_of(conn, &ports).await?;
    Ok(ips.values().flatten().any(|a| a.subnet_id == s.id))
}

/// A network of the admin project; `external`: `router:external` (not shared),
/// flat on the configured physical network if there is one.
async fn create_network<C: ConnectionTrait>(
    conn: &C,
    cfg: &Config,
    b: &NetworkBootstrapConfig,
    project: &str,
    name: &str,
    external: bool,
) -> Result<Network> {
    let (network_type, physical_network, segmentation_id) = if external && !b.public_physical_network.is_empty() {
        ("flat".to_string(), b.public_physical_network.clone(), None)
    } else {
        let used = networks::used_segments(conn, "vxlan", "").await?;
        let s = model::lowest_free(model::VNI_RANGE, &used)
            .ok_or_else(|| bad("network.bootstrap: no VXLAN segment is free"))?;
        ("vxlan".to_string(), String::new(), Some(s))
    };
    let now = st::now();
    let n = Network {
        id: st::new_id(),
        project_id: project.to_string(),
        name: name.to_string(),
        admin_state_up: true,
        status: "ACTIVE".into(),
        shared: false,
        external,
        mtu: cfg.network.default_mtu,
        port_security_enabled: true,
        network_type,
        physical_network,
        segmentation_id,
        availability_zone_hints: "[]".into(),
        dns_domain: String::new(),
        is_default: false,
        description: String::new(),
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    };
    networks::insert(conn, n.clone()).await?;
    if external {
        rbac::set_wildcard(conn, &n.id, project, rbac::ACCESS_AS_EXTERNAL, true).await?;
    }
    Ok(n)
}

/// An IPv4 subnet over the whole CIDR: gateway the first address, the rest
/// the allocation pool, no DNS servers.
async fn create_subnet<C: ConnectionTrait>(
    conn: &C,
    net: &Network,
    name: &str,
    cidr: &IpNet,
    enable_dhcp: bool,
) -> Result<Subnet> {
    let gateway = ipam::default_gateway(cidr);
    let pools: Vec<Value> = ipam::default_pools(cidr, gateway)
        .iter()
        .map(
            |r| json!({"start": ipam::from_u128(r.start, 4).to_string(), "end": ipam::from_u128(r.end, 4).to_string()}),
        )
        .collect();
    let now = st::now();
    let s = Subnet {
        id: st::new_id(),
        project_id: net.project_id.clone(),
        network_id: net.id.clone(),
        name: name.to_string(),
        ip_version: 4,
        cidr: cidr.trunc().to_string(),
        gateway_ip: gateway.map(|g| g.to_string()).unwrap_or_default(),
        allocation_pools: Value::Array(pools).to_string(),
        dns_nameservers: "[]".into(),
        host_routes: "[]".into(),
        enable_dhcp,
        ipv6_ra_mode: String::new(),
        ipv6_address_mode: String::new(),
        subnetpool_id: String::new(),
        description: String::new(),
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    };
    subnets::insert(conn, s.clone()).await?;
    Ok(s)
}

/// The shared default IPv4 pool: /26 subnets out of a /9.
fn default_pool(project: &str, prefix: &IpNet) -> crate::entity::subnetpool::Model {
    let now = st::now();
    crate::entity::subnetpool::Model {
        id: st::new_id(),
        project_id: project.to_string(),
        name: DEFAULT_POOL.into(),
        ip_version: 4,
        prefixes: json!([prefix.to_string()]).to_string(),
        default_prefixlen: DEFAULT_POOL_PREFIXLEN,
        min_prefixlen: 8,
        max_prefixlen: 32,
        shared: true,
        is_default: true,
        default_quota: None,
        address_scope_id: String::new(),
        description: String::new(),
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    }
}

fn new_router(project: &str) -> Router {
    let now = st::now();
    Router {
        id: st::new_id(),
        project_id: project.to_string(),
        name: ROUTER.into(),
        admin_state_up: true,
        status: "ACTIVE".into(),
        gw_port_id: String::new(),
        enable_snat: true,
        availability_zone_hints: "[]".into(),
        l3_agent_host: String::new(),
        description: String::new(),
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    }
}
