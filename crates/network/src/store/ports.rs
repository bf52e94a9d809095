//! Ports: rows, visibility, security group bindings, and the network's view
//! of them (what keeps a network in use). Fixed IPs are rows of
//! `ipallocations` (see [`crate::store::subnets`]).

use std::collections::BTreeMap;

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, Set,
};

use crate::api::list::ListParams;
use crate::entity::ipallocation::{self, Column as A};
use crate::entity::network;
use crate::entity::port::{self, Column as C, Model as Port};
use crate::entity::security_group_port_binding as binding;
use crate::error::Result;
use crate::store::networks::Viewer;
use crate::store::query::{self, Kind, Table, field};

pub const TAG_TYPE: &str = "port";

/// The device owner of the network's own (DHCP) ports.
pub const DHCP_OWNER: &str = "network:dhcp";

pub const TABLE: Table = Table {
    name: "ports",
    tag_type: TAG_TYPE,
    fields: &[
        field("id", "id", Kind::Str),
        field("name", "name", Kind::Str),
        field("project_id", "project_id", Kind::Str),
        field("tenant_id", "project_id", Kind::Str),
        field("network_id", "network_id", Kind::Str),
        field("mac_address", "mac_address", Kind::Str),
        field("admin_state_up", "admin_state_up", Kind::Bool),
        field("status", "status", Kind::Str),
        field("device_id", "device_id", Kind::Str),
        field("device_owner", "device_owner", Kind::Str),
        field("binding:host_id", "host_id", Kind::Str),
        field("binding:vnic_type", "vnic_type", Kind::Str),
        field("port_security_enabled", "port_security_enabled", Kind::Bool),
        field("description", "description", Kind::Str),
        field("created_at", "created_at", Kind::Str),
        field("updated_at", "updated_at", Kind::Str),
        field("revision_number", "revision_number", Kind::Int),
    ],
};

/// A project sees its own ports and the ports on its networks.
fn visible(v: &Viewer) -> Condition {
    match v {
        Viewer::Admin => Condition::all(),
        Viewer::Project(p) => {
            let mine = Query::select()
                .column(network::Column::Id)
                .from(network::Entity)
                .and_where(network::Column::ProjectId.eq(p.as_str()))
                .to_owned();
            Condition::any().add(C::ProjectId.eq(p.as_str())).add(C::NetworkId.in_subquery(mine))
        }
    }
}

/// Ports with an allocation matching every given list (`fixed_ips=ip_address=..`,
/// `fixed_ips=subnet_id=..`, `fixed_ips=ip_address_substr=..`, the last one
/// a part of the address); empty lists match anything.
pub fn with_fixed_ips(
    select: Select<port::Entity>,
    ips: &[String],
    subnets: &[String],
    substrs: &[String],
) -> Select<port::Entity> {
    if ips.is_empty() && subnets.is_empty() && substrs.is_empty() {
        return select;
    }
    let mut q = Query::select();
    q.column(A::PortId).from(ipallocation::Entity);
    if !ips.is_empty() {
        q.and_where(A::IpAddress.is_in(ips.iter().cloned()));
    }
    if !subnets.is_empty() {
        q.and_where(A::SubnetId.is_in(subnets.iter().cloned()));
    }
    if !substrs.is_empty() {
        let mut any = Condition::any();
        for s in substrs {
            // An address has only hex digits, '.' and ':': anything else
            // (LIKE wildcards included) matches nothing.
            if s.chars().all(|c| c.is_ascii_hexdigit() || c == '.' || c == ':') {
                any = any.add(A::IpAddress.like(format!("%{}%", s.to_ascii_lowercase())));
            }
        }
        if any.is_empty() {
            any = any.add(Expr::val(1).eq(0));
        }
        q.cond_where(any);
    }
    select.filter(C::Id.in_subquery(q.to_owned()))
}

pub async fn list<Cn: ConnectionTrait>(
    conn: &Cn,
    viewer: &Viewer,
    p: &ListParams,
    ips: &[String],
    subnets: &[String],
    substrs: &[String],
) -> Result<(Vec<Port>, bool)> {
    let select = with_fixed_ips(port::Entity::find().filter(visible(viewer)), ips, subnets, substrs);
    query::page(conn, &TABLE, select, p).await
}

pub async fn get_visible<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, id: &str) -> Result<Option<Port>> {
    Ok(port::Entity::find_by_id(id.to_string()).filter(visible(viewer)).one(conn).await?)
}

/// Which of `macs` ports of `network` already have (one indexed query).
pub async fn macs_in_use<Cn: ConnectionTrait>(conn: &Cn, network: &str, macs: &[String]) -> Result<Vec<String>> {
    if macs.is_empty() {
        return Ok(Vec::new());
    }
    Ok(port::Entity::find()
        .select_only()
        .column(C::MacAddress)
        .filter(C::NetworkId.eq(network))
        .filter(C::MacAddress.is_in(macs.iter().cloned()))
        .into_tuple()
        .all(conn)
        .await?)
}

pub async fn mac_in_use<Cn: ConnectionTrait>(conn: &Cn, network: &str, mac: &str) -> Result<bool> {
    Ok(port::Entity::find().filter(C::NetworkId.eq(network)).filter(C::MacAddress.eq(mac)).count(conn).await? > 0)
}

/// Insert a port (one statement on every database: nothing is read back).
pub async fn insert<Cn: ConnectionTrait>(conn: &Cn, p: Port) -> Result<()> {
    port::Entity::insert(port::ActiveModel::from(p)).exec_without_returning(conn).await?;
    Ok(())
}

/// Insert ports, a few hundred rows per statement.
pub async fn insert_many<Cn: ConnectionTrait>(conn: &Cn, ports: Vec<Port>) -> Result<()> {
    let mut rows: Vec<port::ActiveModel> = ports.into_iter().map(port::ActiveModel::from).collect();
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(CHUNK));
        port::Entity::insert_many(std::mem::replace(&mut rows, rest)).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// Rows per multi-row insert: well under every backend's limit of bound values.
const CHUNK: usize = 200;

/// Write every attribute of `p` and bump its revision: false when the row
/// changed meanwhile.
pub async fn save<Cn: ConnectionTrait>(conn: &Cn, p: &Port) -> Result<bool> {
    let mut am = port::ActiveModel::from(p.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(p.id.clone());
    am.revision_number = Set(p.revision_number + 1);
    let r = port::Entity::update_many()
        .set(am)
        .filter(C::Id.eq(p.id.as_str()))
        .filter(C::RevisionNumber.eq(p.revision_number))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Remove a port with its addresses, group bindings and tags.
pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    ipallocation::Entity::delete_many().filter(A::PortId.eq(id)).exec(conn).await?;
    binding::Entity::delete_many().filter(binding::Column::PortId.eq(id)).exec(conn).await?;
    crate::store::tags::remove_all(conn, TAG_TYPE, id).await?;
    Ok(port::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

/// The security groups of each port (ordered by group id).
pub async fn groups_of<Cn: ConnectionTrait>(conn: &Cn, ports: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if ports.is_empty() {
        return Ok(out);
    }
    for b in binding::Entity::find()
        .filter(binding::Column::PortId.is_in(ports.iter().cloned()))
        .order_by_asc(binding::Column::SecurityGroupId)
        .all(conn)
        .await?
    {
        out.entry(b.port_id).or_default().push(b.security_group_id);
    }
    Ok(out)
}

/// Replace a port's security groups.
pub async fn set_groups<Cn: ConnectionTrait>(conn: &Cn, port: &str, groups: &[String]) -> Result<()> {
    binding::Entity::delete_many().filter(binding::Column::PortId.eq(port)).exec(conn).await?;
    add_groups(conn, port, groups).await
}

/// The groups of a new port (one statement).
pub async fn add_groups<Cn: ConnectionTrait>(conn: &Cn, port: &str, groups: &[String]) -> Result<()> {
    let mut g: Vec<&String> = groups.iter().collect();
    g.sort();
    g.dedup();
    if g.is_empty() {
        return Ok(());
    }
    let rows = g
        .into_iter()
        .map(|id| binding::ActiveModel { port_id: Set(port.to_string()), security_group_id: Set(id.clone()) });
    binding::Entity::insert_many(rows).exec_without_returning(conn).await?;
    Ok(())
}

/// The groups of new ports, (port, groups) each (one statement per few hundred rows).
pub async fn add_groups_many<Cn: ConnectionTrait>(conn: &Cn, ports: &[(String, Vec<String>)]) -> Result<()> {
    let mut rows: Vec<binding::ActiveModel> = Vec::new();
    for (port, groups) in ports {
        let mut g: Vec<&String> = groups.iter().collect();
        g.sort();
        g.dedup();
        for id in g {
            rows.push(binding::ActiveModel { port_id: Set(port.clone()), security_group_id: Set(id.clone()) });
        }
    }
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(CHUNK));
        binding::Entity::insert_many(std::mem::replace(&mut rows, rest)).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// How many ports on the network keep it in use: all but the network's own
/// (`network:dhcp`), which go with it.
pub async fn blocking_network_delete<Cn: ConnectionTrait>(conn: &Cn, network: &str) -> Result<i64> {
    Ok(port::Entity::find().filter(C::NetworkId.eq(network)).filter(C::DeviceOwner.ne(DHCP_OWNER)).count(conn).await?
        as i64)
}

/// Remove the network's own ports (DHCP) when the network goes.
pub async fn delete_network_owned<Cn: ConnectionTrait>(conn: &Cn, network: &str) -> Result<()> {
    let ids: Vec<String> = port::Entity::find()
        .filter(C::NetworkId.eq(network))
        .filter(C::DeviceOwner.eq(DHCP_OWNER))
        .all(conn)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    for id in ids {
        delete(conn, &id).await?;
    }
    Ok(())
}

/// The status an agent reports for a port (`ACTIVE` once wired), as a normal
/// change (revision and `updated_at` bumped) — only while the port is still
/// bound to `host` and administratively up (Neutron keeps an admin-down port
/// DOWN), and only when it differs. False when nothing changed (port gone,
/// moved, admin down, or already so).
pub async fn set_status_if_bound<Cn: ConnectionTrait>(conn: &Cn, id: &str, host: &str, status: &str) -> Result<bool> {
    if host.is_empty() {
        return Ok(false);
    }
    let r = port::Entity::update_many()
        .col_expr(C::Status, Expr::value(status.to_string()))
        .col_expr(C::RevisionNumber, Expr::col(C::RevisionNumber).add(1))
        .col_expr(C::UpdatedAt, Expr::value(crate::store::now()))
        .filter(C::Id.eq(id))
        .filter(C::HostId.eq(host))
        .filter(C::AdminStateUp.eq(true))
        .filter(C::Status.ne(status))
        .exec(conn)
        .await?;
    Ok(r.rows_affected > 0)
}

pub async fn get<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<Option<Port>> {
    Ok(port::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// The ports holding `ip_address` on any of `networks` (what the metadata
/// proxy asks of a guest's source address), at most `limit`.
pub async fn by_address<Cn: ConnectionTrait>(
    conn: &Cn,
    networks: &[String],
    ip_address: &str,
    limit: u64,
) -> Result<Vec<Port>> {
    if networks.is_empty() {
        return Ok(Vec::new());
    }
    let holders = Query::select()
        .column(A::PortId)
        .from(ipallocation::Entity)
        .and_where(A::IpAddress.eq(ip_address))
        .and_where(A::NetworkId.is_in(networks.iter().cloned()))
        .to_owned();
    Ok(port::Entity::find().filter(C::Id.in_subquery(holders)).order_by_asc(C::Id).limit(limit).all(conn).await?)
}

/// The addresses of the ports of each group (what a rule with that
/// `remote_group_id` admits), ordered.
pub async fn addresses_in_groups<Cn: ConnectionTrait>(
    conn: &Cn,
    groups: &[String],
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if groups.is_empty() {
        return Ok(out);
    }
    let members = binding::Entity::find()
        .filter(binding::Column::SecurityGroupId.is_in(groups.iter().cloned()))
        .all(conn)
        .await?;
    let ports: Vec<String> = members.iter().map(|b| b.port_id.clone()).collect();
    let mut ips = BTreeMap::new();
    for chunk in ports.chunks(500) {
        ips.append(&mut crate::store::subnets::allocations_of(conn, chunk).await?);
    }
    for b in members {
        let e = out.entry(b.security_group_id).or_default();
        e.extend(ips.get(&b.port_id).into_iter().flatten().map(|a| a.ip_address.clone()));
    }
    for v in out.values_mut() {
        v.sort();
        v.dedup();
    }
    Ok(out)
}

/// The ports of a network, with their bindings.
pub async fn on_network<Cn: ConnectionTrait>(conn: &Cn, network: &str) -> Result<Vec<Port>> {
    Ok(port::Entity::find().filter(C::NetworkId.eq(network)).order_by_asc(C::Id).all(conn).await?)
}

/// The ports bound to `host` (any owner).
pub async fn bound_to<Cn: ConnectionTrait>(conn: &Cn, host: &str) -> Result<Vec<Port>> {
    Ok(port::Entity::find().filter(C::HostId.eq(host)).order_by_asc(C::Id).all(conn).await?)
}

/// The hosts with a port bound on any of `networks`.
pub async fn hosts_on<Cn: ConnectionTrait>(conn: &Cn, networks: &[String]) -> Result<Vec<String>> {
    if networks.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<String> = port::Entity::find()
        .select_only()
        .column(C::HostId)
        .distinct()
        .filter(C::NetworkId.is_in(networks.iter().cloned()))
        .filter(C::HostId.ne(""))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows)
}
