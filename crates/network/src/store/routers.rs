//! Routers: rows, extra routes, and the ports that make their interfaces and
//! gateway (`device_id` = the router). Service ports (router interfaces and
//! gateways, floating IP ports) are created here with their addresses inside
//! the caller's transaction; the unique keys of `ipallocations` and of
//! (network, MAC) make a racing create that chose the same address or MAC
//! fail, and the caller retries ([`retryable`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::api::list::ListParams;
use crate::api::subnets::{cidr_of, pools_of};
use crate::entity::ipallocation::Model as Allocation;
use crate::entity::port::{self, Model as Port};
use crate::entity::router::{self, Column as C, Model as Router};
use crate::entity::router_route::{self, Model as Route};
use crate::entity::subnet::Model as Subnet;
use crate::error::{NetworkError, Result, conflict};
use crate::ipam;
use crate::store::networks::Viewer;
use crate::store::query::{self, Kind, Table, field};
use crate::store::{ports, subnets};

pub const TAG_TYPE: &str = "router";

/// Device owners of the ports a router owns.
pub const INTERFACE_OWNER: &str = "network:router_interface";
pub const GATEWAY_OWNER: &str = "network:router_gateway";
pub const FLOATINGIP_OWNER: &str = "network:floatingip";

pub const TABLE: Table = Table {
    name: "routers",
    tag_type: TAG_TYPE,
    fields: &[
        field("id", "id", Kind::Str),
        field("name", "name", Kind::Str),
        field("project_id", "project_id", Kind::Str),
        field("tenant_id", "project_id", Kind::Str),
        field("admin_state_up", "admin_state_up", Kind::Bool),
        field("status", "status", Kind::Str),
        field("description", "description", Kind::Str),
        field("created_at", "created_at", Kind::Str),
        field("updated_at", "updated_at", Kind::Str),
        field("revision_number", "revision_number", Kind::Int),
    ],
};

fn visible(v: &Viewer) -> Condition {
    match v {
        Viewer::Admin => Condition::all(),
        Viewer::Project(p) => Condition::all().add(C::ProjectId.eq(p.as_str())),
    }
}

pub async fn list<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, p: &ListParams) -> Result<(Vec<Router>, bool)> {
    query::page(conn, &TABLE, router::Entity::find().filter(visible(viewer)), p).await
}

pub async fn get<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<Option<Router>> {
    Ok(router::Entity::find_by_id(id.to_string()).one(conn).await?)
}

pub async fn get_visible<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, id: &str) -> Result<Option<Router>> {
    Ok(router::Entity::find_by_id(id.to_string()).filter(visible(viewer)).one(conn).await?)
}

pub async fn insert<Cn: ConnectionTrait>(conn: &Cn, r: Router) -> Result<()> {
    router::ActiveModel::from(r).insert(conn).await?;
    Ok(())
}

/// Write every attribute of `r` and bump its revision: false when the row
/// changed meanwhile (so two updates of one router never both win).
pub async fn save<Cn: ConnectionTrait>(conn: &Cn, r: &Router) -> Result<bool> {
    let mut am = router::ActiveModel::from(r.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(r.id.clone());
    am.revision_number = Set(r.revision_number + 1);
    let res = router::Entity::update_many()
        .set(am)
        .filter(C::Id.eq(r.id.as_str()))
        .filter(C::RevisionNumber.eq(r.revision_number))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Remove a router with its routes and tags (its ports are gone already).
pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    router_route::Entity::delete_many().filter(router_route::Column::RouterId.eq(id)).exec(conn).await?;
    crate::store::tags::remove_all(conn, TAG_TYPE, id).await?;
    Ok(router::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

/// The extra routes of each router, ordered.
pub async fn routes_of<Cn: ConnectionTrait>(conn: &Cn, ids: &[String]) -> Result<BTreeMap<String, Vec<Route>>> {
    let mut out: BTreeMap<String, Vec<Route>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for r in router_route::Entity::find()
        .filter(router_route::Column::RouterId.is_in(ids.iter().cloned()))
        .order_by_asc(router_route::Column::Destination)
        .order_by_asc(router_route::Column::Nexthop)
        .all(conn)
        .await?
    {
        out.entry(r.router_id.clone()).or_default().push(r);
    }
    Ok(out)
}

/// Replace a router's extra routes.
pub async fn set_routes<Cn: ConnectionTrait>(conn: &Cn, router: &str, routes: &[(String, String)]) -> Result<()> {
    router_route::Entity::delete_many().filter(router_route::Column::RouterId.eq(router)).exec(conn).await?;
    let uniq: BTreeSet<&(String, String)> = routes.iter().collect();
    for (d, n) in uniq {
        router_route::ActiveModel {
            router_id: Set(router.to_string()),
            destination: Set(d.clone()),
            nexthop: Set(n.clone()),
        }
        .insert(conn)
        .await?;
    }
    Ok(())
}

/// The interface ports of a router, oldest first.
pub async fn interfaces<Cn: ConnectionTrait>(conn: &Cn, router: &str) -> Result<Vec<Port>> {
    Ok(port::Entity::find()
        .filter(port::Column::DeviceId.eq(router))
        .filter(port::Column::DeviceOwner.eq(INTERFACE_OWNER))
        .order_by_asc(port::Column::CreatedAt)
        .order_by_asc(port::Column::Id)
        .all(conn)
        .await?)
}

pub async fn port<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<Option<Port>> {
    Ok(port::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// The routers (of `project`, unless None) whose gateway is on `network`.
pub async fn with_gateway_on<Cn: ConnectionTrait>(conn: &Cn, network: &str) -> Result<Vec<String>> {
    Ok(port::Entity::find()
        .filter(port::Column::NetworkId.eq(network))
        .filter(port::Column::DeviceOwner.eq(GATEWAY_OWNER))
        .all(conn)
        .await?
        .into_iter()
        .map(|p| p.device_id)
        .collect())
}

/// How many routers each of `hosts` hosts (hosts with none are absent).
pub async fn count_by_host<Cn: ConnectionTrait>(conn: &Cn, hosts: &[String]) -> Result<BTreeMap<String, i64>> {
    if hosts.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(String, i64)> = router::Entity::find()
        .select_only()
        .column(C::L3AgentHost)
        .column_as(C::Id.count(), "n")
        .filter(C::L3AgentHost.is_in(hosts.iter().cloned()))
        .group_by(C::L3AgentHost)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Move a router from host `from` to `to` (scheduling is no change of the
/// router's: no revision): false when its host changed meanwhile.
pub async fn set_host<Cn: ConnectionTrait>(conn: &Cn, id: &str, from: &str, to: &str) -> Result<bool> {
    let r = router::Entity::update_many()
        .col_expr(C::L3AgentHost, Expr::value(to.to_string()))
        .filter(C::Id.eq(id))
        .filter(C::L3AgentHost.eq(from))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// The routers hosted on `host`, by id.
pub async fn on_host<Cn: ConnectionTrait>(conn: &Cn, host: &str) -> Result<Vec<Router>> {
    Ok(router::Entity::find().filter(C::L3AgentHost.eq(host)).order_by_asc(C::Id).all(conn).await?)
}

/// One address a service port asks for.
#[derive(Clone, Debug)]
pub enum IpRequest {
    /// This address of this subnet.
    Specific(Box<Subnet>, IpAddr),
    /// The next free address of the first of these subnets that has one.
    Any(Vec<Subnet>),
}

/// Create a port owned by a service (`network:router_interface`,
/// `network:router_gateway`, `network:floatingip`) with its addresses, inside
/// the caller's transaction. 409 `IpAddressAlreadyAllocated` for a requested
/// address in use, `IpAddressGenerationFailure` when no address is left.
#[allow(clippy::too_many_arguments)]
pub async fn create_service_port<Cn: ConnectionTrait>(
    conn: &Cn,
    base_mac: &str,
    network: &str,
    project: &str,
    owner: &str,
    device_id: &str,
    reqs: &[IpRequest],
) -> Result<(Port, Vec<Allocation>)> {
    let mac = ipam::mac_from_base(base_mac, rand::random());
    let now = crate::store::now();
    let p = Port {
        id: crate::store::new_id(),
        project_id: project.to_string(),
        network_id: network.to_string(),
        name: String::new(),
        mac_address: ipam::show_mac(&mac),
        admin_state_up: true,
        status: "ACTIVE".into(),
        device_id: device_id.to_string(),
        device_owner: owner.to_string(),
        host_id: String::new(),
        vnic_type: "normal".into(),
        profile: "{}".into(),
        vif_details: "{}".into(),
        port_security_enabled: false,
        allowed_address_pairs: "[]".into(),
        extra_dhcp_opts: "[]".into(),
        description: String::new(),
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    };
    let mut out: Vec<Allocation> = Vec::new();
    let alloc = |s: &Subnet, ip: IpAddr| Allocation {
        subnet_id: s.id.clone(),
        ip_address: ip.to_string(),
        network_id: network.to_string(),
        port_id: p.id.clone(),
    };
    for r in reqs {
        match r {
            IpRequest::Specific(s, ip) => {
                let taken: BTreeSet<String> = subnets::taken(conn, &s.id).await?.into_iter().collect();
                if taken.contains(&ip.to_string()) || out.iter().any(|a| a.ip_address == ip.to_string()) {
                    return Err(conflict(
                        "IpAddressAlreadyAllocated",
                        format!("IP address {ip} already allocated in subnet {}", s.id),
                    ));
                }
                out.push(alloc(s, *ip));
            }
            IpRequest::Any(group) => {
                let mut got = None;
                for s in group {
                    let taken: BTreeSet<u128> = subnets::taken(conn, &s.id)
                        .await?
                        .iter()
                        .map(String::as_str)
                        .chain(out.iter().filter(|a| a.subnet_id == s.id).map(|a| a.ip_address.as_str()))
                        .filter_map(|a| a.parse::<IpAddr>().ok())
                        .map(ipam::to_u128)
                        .collect();
                    if let Some(v) = ipam::next_free(&pools_of(s), &taken) {
                        got = Some((s, ipam::from_u128(v, s.ip_version as u8)));
                        break;
                    }
                }
                let (s, ip) = got.ok_or_else(|| {
                    conflict(
                        "IpAddressGenerationFailure",
                        format!("No more IP addresses available on network {network}."),
                    )
                })?;
                out.push(alloc(s, ip));
            }
        }
    }
    ports::insert(conn, p.clone()).await?;
    for a in &out {
        subnets::allocate(conn, a.clone()).await?;
    }
    Ok((p, out))
}

/// Is `ip` a valid host address of `s` (inside, not the network or broadcast address)?
pub fn valid_host(s: &Subnet, ip: IpAddr) -> bool {
    let Ok(cidr) = cidr_of(s) else { return false };
    let (first, last) = ipam::bounds(&cidr);
    let v = ipam::to_u128(ip);
    cidr.contains(&ip) && !(v == first && last > first) && !(s.ip_version == 4 && v == last && last > first + 1)
}

/// A unique-key collision or a deadlock with a racing transaction: worth another try.
pub fn retryable(e: &NetworkError) -> bool {
    match e {
        NetworkError::Internal(e) => e.downcast_ref::<sea_orm::DbErr>().is_some_and(|d| {
            stratus_db::is_unique_violation(d) || {
                let m = d.to_string().to_ascii_lowercase();
                m.contains("deadlock") || m.contains("could not serialize") || m.contains("database is locked")
            }
        }),
        _ => false,
    }
}

/// The router of `project` named `name` (the first, names are not unique).
pub async fn named<C: ConnectionTrait>(conn: &C, project: &str, name: &str) -> Result<Option<Router>> {
    Ok(router::Entity::find()
        .filter(router::Column::ProjectId.eq(project))
        .filter(router::Column::Name.eq(name))
        .one(conn)
        .await?)
}
