//! Subnets and their IP allocations (`ipallocations`).

use std::collections::BTreeMap;

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use crate::api::list::ListParams;
use crate::entity::ipallocation::{self, Column as A, Model as Allocation};
use crate::entity::subnet::{self, Column as C, Model as Subnet};
use crate::entity::{network, port};
use crate::error::Result;
use crate::store::networks::Viewer;
use crate::store::query::{self, Kind, Table, field};

pub const TAG_TYPE: &str = "subnet";

pub const TABLE: Table = Table {
    name: "subnets",
    tag_type: TAG_TYPE,
    fields: &[
        field("id", "id", Kind::Str),
        field("name", "name", Kind::Str),
        field("project_id", "project_id", Kind::Str),
        field("tenant_id", "project_id", Kind::Str),
        field("network_id", "network_id", Kind::Str),
        field("ip_version", "ip_version", Kind::Int),
        field("cidr", "cidr", Kind::Str),
        field("gateway_ip", "gateway_ip", Kind::Str),
        field("enable_dhcp", "enable_dhcp", Kind::Bool),
        field("ipv6_ra_mode", "ipv6_ra_mode", Kind::Str),
        field("ipv6_address_mode", "ipv6_address_mode", Kind::Str),
        field("subnetpool_id", "subnetpool_id", Kind::Str),
        field("description", "description", Kind::Str),
        field("created_at", "created_at", Kind::Str),
        field("updated_at", "updated_at", Kind::Str),
        field("revision_number", "revision_number", Kind::Int),
    ],
};

/// A project sees its own subnets and those of shared and external networks.
fn visible(v: &Viewer) -> Condition {
    match v {
        Viewer::Admin => Condition::all(),
        Viewer::Project(p) => {
            let open = Query::select()
                .column(network::Column::Id)
                .from(network::Entity)
                .cond_where(
                    Condition::any().add(network::Column::Shared.eq(true)).add(network::Column::External.eq(true)),
                )
                .to_owned();
            Condition::any().add(C::ProjectId.eq(p.as_str())).add(C::NetworkId.in_subquery(open))
        }
    }
}

/// `external`: only subnets of external (`Some(true)`) or internal networks
/// (the `router:external` filter of subnet-external-network).
pub async fn list<Cn: ConnectionTrait>(
    conn: &Cn,
    viewer: &Viewer,
    p: &ListParams,
    external: Option<bool>,
) -> Result<(Vec<Subnet>, bool)> {
    let mut select = subnet::Entity::find().filter(visible(viewer));
    if let Some(e) = external {
        let nets = Query::select()
            .column(network::Column::Id)
            .from(network::Entity)
            .and_where(network::Column::External.eq(e))
            .to_owned();
        select = select.filter(C::NetworkId.in_subquery(nets));
    }
    query::page(conn, &TABLE, select, p).await
}

/// Whether each given network is external (`router:external` of its subnets).
pub async fn external_networks<Cn: ConnectionTrait>(conn: &Cn, networks: &[String]) -> Result<Vec<String>> {
    if networks.is_empty() {
        return Ok(Vec::new());
    }
    Ok(network::Entity::find()
        .select_only()
        .column(network::Column::Id)
        .filter(network::Column::Id.is_in(networks.iter().cloned()))
        .filter(network::Column::External.eq(true))
        .into_tuple()
        .all(conn)
        .await?)
}

pub async fn get<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<Option<Subnet>> {
    Ok(subnet::Entity::find_by_id(id.to_string()).one(conn).await?)
}

pub async fn get_visible<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, id: &str) -> Result<Option<Subnet>> {
    Ok(subnet::Entity::find_by_id(id.to_string()).filter(visible(viewer)).one(conn).await?)
}

/// The subnets of a network, oldest first.
pub async fn of_network<Cn: ConnectionTrait>(conn: &Cn, network: &str) -> Result<Vec<Subnet>> {
    Ok(subnet::Entity::find()
        .filter(C::NetworkId.eq(network))
        .order_by_asc(C::CreatedAt)
        .order_by_asc(C::Id)
        .all(conn)
        .await?)
}

/// The subnets carved from a subnet pool.
pub async fn of_pool<Cn: ConnectionTrait>(conn: &Cn, pool: &str) -> Result<Vec<Subnet>> {
    Ok(subnet::Entity::find().filter(C::SubnetpoolId.eq(pool)).all(conn).await?)
}

pub async fn by_ids<Cn: ConnectionTrait>(conn: &Cn, ids: &[String]) -> Result<Vec<Subnet>> {
    Ok(subnet::Entity::find().filter(C::Id.is_in(ids.iter().cloned())).all(conn).await?)
}

pub async fn insert<Cn: ConnectionTrait>(conn: &Cn, s: Subnet) -> Result<()> {
    subnet::ActiveModel::from(s).insert(conn).await?;
    Ok(())
}

/// Write every attribute of `s` and bump its revision: false when the row
/// changed meanwhile.
pub async fn save<Cn: ConnectionTrait>(conn: &Cn, s: &Subnet) -> Result<bool> {
    let mut am = subnet::ActiveModel::from(s.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(s.id.clone());
    am.revision_number = Set(s.revision_number + 1);
    let r = subnet::Entity::update_many()
        .set(am)
        .filter(C::Id.eq(s.id.as_str()))
        .filter(C::RevisionNumber.eq(s.revision_number))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Remove a subnet with its allocations and tags.
pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    ipallocation::Entity::delete_many().filter(A::SubnetId.eq(id)).exec(conn).await?;
    crate::store::tags::remove_all(conn, TAG_TYPE, id).await?;
    Ok(subnet::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

/// The subnet ids of each network (for the network's `subnets` attribute).
pub async fn ids_by_network<C2: ConnectionTrait>(
    conn: &C2,
    networks: &[String],
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if networks.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(String, String)> = subnet::Entity::find()
        .select_only()
        .column(C::NetworkId)
        .column(C::Id)
        .filter(C::NetworkId.is_in(networks.iter().cloned()))
        .order_by_asc(C::CreatedAt)
        .order_by_asc(C::Id)
        .into_tuple()
        .all(conn)
        .await?;
    for (n, s) in rows {
        out.entry(n).or_default().push(s);
    }
    Ok(out)
}

/// Remove every subnet of a network that is being deleted (its ports are gone).
pub async fn delete_for_network<C2: ConnectionTrait>(conn: &C2, network: &str) -> Result<()> {
    for s in of_network(conn, network).await? {
        delete(conn, &s.id).await?;
    }
    ipallocation::Entity::delete_many().filter(A::NetworkId.eq(network)).exec(conn).await?;
    Ok(())
}

/// The addresses of a subnet that ports hold.
pub async fn taken<Cn: ConnectionTrait>(conn: &Cn, subnet: &str) -> Result<Vec<String>> {
    Ok(ipallocation::Entity::find()
        .select_only()
        .column(A::IpAddress)
        .filter(A::SubnetId.eq(subnet))
        .into_tuple()
        .all(conn)
        .await?)
}

/// Which of `addresses` are held in the subnet (one indexed query).
pub async fn taken_among<Cn: ConnectionTrait>(
    conn: &Cn,
    subnet: &str,
    addresses: &[String],
) -> Result<std::collections::BTreeSet<String>> {
    if addresses.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<String> = ipallocation::Entity::find()
        .select_only()
        .column(A::IpAddress)
        .filter(A::SubnetId.eq(subnet))
        .filter(A::IpAddress.is_in(addresses.iter().cloned()))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// How many addresses of each subnet are held.
pub async fn used_counts<Cn: ConnectionTrait>(conn: &Cn, subnets: &[String]) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for s in subnets {
        let n = ipallocation::Entity::find().filter(A::SubnetId.eq(s.as_str())).count(conn).await?;
        out.insert(s.clone(), n as i64);
    }
    Ok(out)
}

pub async fn allocate<Cn: ConnectionTrait>(conn: &Cn, a: Allocation) -> Result<()> {
    ipallocation::Entity::insert(ipallocation::ActiveModel::from(a)).exec_without_returning(conn).await?;
    Ok(())
}

/// Store allocations, a few hundred rows per statement.
pub async fn allocate_many<Cn: ConnectionTrait>(conn: &Cn, all: Vec<Allocation>) -> Result<()> {
    let mut rows: Vec<ipallocation::ActiveModel> = all.into_iter().map(ipallocation::ActiveModel::from).collect();
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(200));
        ipallocation::Entity::insert_many(std::mem::replace(&mut rows, rest)).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// The allocations of ports, in a stable order per port.
pub async fn allocations_of<Cn: ConnectionTrait>(
    conn: &Cn,
    ports: &[String],
) -> Result<BTreeMap<String, Vec<Allocation>>> {
    let mut out: BTreeMap<String, Vec<Allocation>> = BTreeMap::new();
    if ports.is_empty() {
        return Ok(out);
    }
    for a in ipallocation::Entity::find()
        .filter(A::PortId.is_in(ports.iter().cloned()))
        .order_by_asc(A::SubnetId)
        .order_by_asc(A::IpAddress)
        .all(conn)
        .await?
    {
        out.entry(a.port_id.clone()).or_default().push(a);
    }
    Ok(out)
}

pub async fn release_port<Cn: ConnectionTrait>(conn: &Cn, port: &str) -> Result<()> {
    ipallocation::Entity::delete_many().filter(A::PortId.eq(port)).exec(conn).await?;
    Ok(())
}

/// Port ids holding addresses of the subnet, other than the network's own
/// (DHCP) ports, which go with the subnet.
///
/// On an auto-address (SLAAC, DHCPv6-stateless) subnet only router
/// interfaces count, as in Neutron: every other port's address is derived
/// from the prefix and is simply dropped with the subnet.
pub async fn ports_in_use<Cn: ConnectionTrait>(conn: &Cn, subnet: &str, auto_address: bool) -> Result<Vec<String>> {
    let holders =
        Query::select().column(A::PortId).from(ipallocation::Entity).and_where(A::SubnetId.eq(subnet)).to_owned();
    let mut q = port::Entity::find()
        .select_only()
        .column(port::Column::Id)
        .filter(port::Column::Id.in_subquery(holders))
        .filter(port::Column::DeviceOwner.ne("network:dhcp"));
    if auto_address {
        q = q.filter(port::Column::DeviceOwner.is_in(ROUTER_INTERFACE_OWNERS.iter().copied()));
    }
    Ok(q.into_tuple().all(conn).await?)
}

/// The device owners of router interface ports.
const ROUTER_INTERFACE_OWNERS: &[&str] =
    &["network:router_interface", "network:router_interface_distributed", "network:ha_router_replicated_interface"];

/// Remove a subnet's allocations held by the network's own ports.
pub async fn release_subnet<Cn: ConnectionTrait>(conn: &Cn, subnet: &str) -> Result<()> {
    ipallocation::Entity::delete_many().filter(A::SubnetId.eq(subnet)).exec(conn).await?;
    Ok(())
}

/// Hold the network's row for the rest of the transaction, so that racing
/// subnet creates on one network check overlaps one after the other.
pub async fn lock_network<Cn: ConnectionTrait>(conn: &Cn, network_id: &str) -> Result<()> {
    network::Entity::update_many()
        .col_expr(network::Column::Id, Expr::col(network::Column::Id).into())
        .filter(network::Column::Id.eq(network_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The subnet of `network_id` named `name` (the first, names are not unique).
pub async fn named<C: ConnectionTrait>(conn: &C, network_id: &str, name: &str) -> Result<Option<Subnet>> {
    Ok(subnet::Entity::find()
        .filter(subnet::Column::NetworkId.eq(network_id))
        .filter(subnet::Column::Name.eq(name))
        .one(conn)
        .await?)
}
