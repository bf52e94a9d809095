//! The service's side of the agent interface (Neutron's ML2 plugin RPC):
//! it serves [`rpc::PLUGIN`] (agents report ports wired and themselves
//! alive) and tells the agents of a host what to wire when a port is bound
//! to it, rebound, unbound or deleted, and again when the rules of its
//! groups or the members of their remote groups change. Routers and
//! floating IPs: [`crate::l3`].
//!
//! Notices are casts sent after the change committed, from a spawned task so
//! the API reply does not wait on the bus; a failed cast is logged (the agent
//! resyncs, as Neutron's do). With no bus attached (unit tests, an API
//! process started before its bus) nothing is sent.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::Value;
use stratus_bus::{Envelope, Handler, Message, RemoteError};
use stratus_db::Db;

use crate::entity::port::Model as Port;
use crate::error::Result;
use crate::rpc::{
    self, AgentHeartbeat, FixedIp, FloatingIpChanged, FloatingIpStatus, GetNetwork, HostState, NetworkChanged,
    NetworkInfo, NetworkPort, PortBound, PortByAddress, PortOwner, PortUnbound, PortWired, SecurityGroupRule, Segment,
    SubnetInfo, SyncHost,
};
use crate::store::{agents, floatingips, networks, ports, routers, security_groups, subnets};
use crate::{NetworkService, State};

/// Port status while not wired (and while administratively down).
pub const DOWN: &str = "DOWN";
/// Port status once its host's agent reported it wired.
pub const ACTIVE: &str = "ACTIVE";

/// Update attributes that change what the agent wires: a bound port whose
/// update names one of them is sent to its agent again.
pub const WIRED_ATTRS: &[&str] = &[
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "device_id",
    "device_owner",
    "binding:host_id",
    "binding:vnic_type",
    "binding:profile",
    "allowed_address_pairs",
    "port_security_enabled",
    "security_groups",
];

/// Serves [`rpc::PLUGIN`].
pub struct Plugin {
    pub db: Db,
    /// Base MAC of the DHCP ports it makes.
    pub base_mac: String,
}

#[async_trait::async_trait]
impl Handler for Plugin {
    async fn handle(&self, env: Envelope) -> std::result::Result<Value, RemoteError> {
        let failed = |e: crate::error::NetworkError| RemoteError::new("PluginError", e.to_string());
        match env.name.as_str() {
            PortWired::NAME => {
                let m: PortWired = env.decode()?;
                let changed =
                    ports::set_status_if_bound(&self.db.write, &m.port_id, &m.host, ACTIVE).await.map_err(failed)?;
                tracing::debug!(port_id = %m.port_id, host = %m.host, changed, "port wired");
                Ok(Value::Null)
            }
            AgentHeartbeat::NAME => {
                let m: AgentHeartbeat = env.decode()?;
                let a = agents::report(
                    &self.db,
                    &m.host,
                    &m.binary,
                    &m.agent_type,
                    &m.topic,
                    &m.configurations,
                    m.availability_zone.as_deref(),
                )
                .await
                .map_err(failed)?;
                Ok(serde_json::json!({"id": a.id}))
            }
            PortByAddress::NAME => {
                let m: PortByAddress = env.decode()?;
                let owner = port_by_address(&self.db, &m).await.map_err(failed)?;
                serde_json::to_value(owner).map_err(|e| RemoteError::new("PluginError", e.to_string()))
            }
            SyncHost::NAME => {
                let m: SyncHost = env.decode()?;
                let st = host_state(&self.db, &m.host).await.map_err(failed)?;
                serde_json::to_value(st).map_err(|e| RemoteError::new("BadReply", e.to_string()))
            }
            GetNetwork::NAME => {
                let m: GetNetwork = env.decode()?;
                let info = network_info(&self.db, &self.base_mac, &m).await.map_err(failed)?;
                serde_json::to_value(info).map_err(|e| RemoteError::new("BadReply", e.to_string()))
            }
            FloatingIpStatus::NAME => {
                let m: FloatingIpStatus = env.decode()?;
                floatingips::set_status(&self.db.write, &m.floating_ip_id, &m.status).await.map_err(failed)?;
                Ok(Value::Null)
            }
            other => Err(RemoteError::new("UnexpectedMessage", format!("network plugin: unknown message {other}"))),
        }
    }
}

/// The owner of the one port holding `m.ip_address` on `m.network_ids` or on
/// the networks of `m.router_id`'s interfaces; `None` when no port or more
/// than one does (the address is then no one's to claim, as Neutron's
/// metadata agent judges it).
pub async fn port_by_address(db: &Db, m: &PortByAddress) -> Result<Option<PortOwner>> {
    let conn = &db.read;
    let mut networks = m.network_ids.clone();
    if let Some(router) = &m.router_id {
        networks.extend(routers::interfaces(conn, router).await?.into_iter().map(|p| p.network_id));
    }
    networks.sort();
    networks.dedup();
    let mut found = ports::by_address(conn, &networks, &m.ip_address, 2).await?;
    if found.len() != 1 {
        tracing::debug!(ip = %m.ip_address, ?networks, ports = found.len(), "no single port has the address");
        return Ok(None);
    }
    let p = found.remove(0);
    Ok(Some(PortOwner {
        port_id: p.id,
        device_id: p.device_id,
        device_owner: p.device_owner,
        project_id: p.project_id,
    }))
}

/// What [`PortBound`] tells the agent of `port`'s host: its addresses, its
/// network's segment, and every rule of its groups with remote groups
/// resolved to their ports' addresses (of the rule's ethertype).
pub async fn port_bound<Cn: ConnectionTrait>(conn: &Cn, port: &Port) -> Result<PortBound> {
    let id = std::slice::from_ref(&port.id);
    let segment = segment_of(conn, &port.network_id).await?;
    let fixed_ips = subnets::allocations_of(conn, id)
        .await?
        .remove(&port.id)
        .unwrap_or_default()
        .into_iter()
        .map(|a| FixedIp { subnet_id: a.subnet_id, ip_address: a.ip_address })
        .collect();
    let groups = ports::groups_of(conn, id).await?.remove(&port.id).unwrap_or_default();
    let rules: Vec<_> = security_groups::rules_of(conn, &groups).await?.into_values().flatten().collect();
    let remote: Vec<String> = rules
        .iter()
        .filter(|r| !r.remote_group_id.is_empty())
        .map(|r| r.remote_group_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let members = ports::addresses_in_groups(conn, &remote).await?;
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let security_group_rules = rules
        .into_iter()
        .map(|r| {
            let v6 = r.ethertype == "IPv6";
            let remote_group_ips = members
                .get(&r.remote_group_id)
                .into_iter()
                .flatten()
                .filter(|ip| ip.contains(':') == v6)
                .cloned()
                .collect();
            SecurityGroupRule {
                security_group_id: r.security_group_id.clone(),
                direction: r.direction.clone(),
                ethertype: r.ethertype.clone(),
                protocol: opt(&r.protocol),
                port_range_min: r.port_range_min,
                port_range_max: r.port_range_max,
                remote_ip_prefix: opt(&r.remote_ip_prefix),
                remote_group_id: opt(&r.remote_group_id),
                remote_group_ips,
            }
        })
        .collect();
    Ok(PortBound {
        port_id: port.id.clone(),
        host: port.host_id.clone(),
        mac_address: port.mac_address.clone(),
        fixed_ips,
        segment,
        admin_state_up: port.admin_state_up,
        device_owner: port.device_owner.clone(),
        device_id: port.device_id.clone(),
        port_security_enabled: port.port_security_enabled,
        allowed_address_pairs: serde_json::from_str(&port.allowed_address_pairs).unwrap_or_default(),
        security_group_rules,
        revision_number: port.revision_number,
    })
}

/// What the agent of `host` should hold ([`SyncHost`]).
pub async fn host_state(db: &Db, host: &str) -> Result<HostState> {
    // routers made before any L3 agent was alive are scheduled to the first that syncs
    for r in routers::on_host(&db.read, "").await? {
        if routers::set_host(&db.write, &r.id, "", host).await? {
            tracing::info!(router_id = %r.id, %host, "router scheduled (agent sync)");
        }
    }
    let conn = &db.read;
    let mut st = HostState::default();
    for p in ports::bound_to(conn, host).await? {
        if p.device_owner == ports::DHCP_OWNER || p.device_owner.starts_with("network:router") {
            continue;
        }
        st.ports.push(port_bound(conn, &p).await?);
    }
    for r in routers::on_host(conn, host).await? {
        st.routers.push(crate::l3::router_updated(conn, &r).await?);
        for f in floatingips::via_router(conn, &r.id).await? {
            let port_forwardings = crate::l3::forwardings_of(conn, &f.id).await?;
            if f.fixed_ip_address.is_none() && port_forwardings.is_empty() {
                continue;
            }
            st.floating_ips.push(FloatingIpChanged {
                floating_ip_id: f.id,
                floating_ip_address: f.floating_ip_address,
                router_id: f.router_id,
                port_id: f.fixed_port_id,
                fixed_ip_address: f.fixed_ip_address,
                deleted: false,
                port_forwardings,
            });
        }
    }
    Ok(st)
}

fn network_port(p: &Port, ips: Vec<crate::entity::ipallocation::Model>) -> NetworkPort {
    NetworkPort {
        id: p.id.clone(),
        mac_address: p.mac_address.clone(),
        fixed_ips: ips.into_iter().map(|a| FixedIp { subnet_id: a.subnet_id, ip_address: a.ip_address }).collect(),
        host: p.host_id.clone(),
        device_owner: p.device_owner.clone(),
        extra_dhcp_opts: serde_json::from_str(&p.extra_dhcp_opts).unwrap_or_default(),
    }
}

/// The device id of `host`'s DHCP port on `network` (as Neutron's
/// `dhcp<host id>-<network>`, with the host's name).
fn dhcp_device_id(host: &str, network: &str) -> String {
    format!("dhcp{host}-{network}")
}

/// A network as the agent of `m.host` serves it ([`GetNetwork`]), making
/// that host's DHCP port first when asked and the network has a
/// DHCP-enabled subnet.
pub async fn network_info(db: &Db, base_mac: &str, m: &GetNetwork) -> Result<NetworkInfo> {
    let conn = &db.read;
    let Some(_net) = networks::get(conn, &m.network_id).await? else {
        return Ok(NetworkInfo {
            exists: false,
            segment: segment_of(conn, &m.network_id).await?,
            ..Default::default()
        });
    };
    let subs = subnets::of_network(conn, &m.network_id).await?;
    let dhcp_subnets: Vec<_> = subs.iter().filter(|s| s.enable_dhcp).cloned().collect();
    let device_id = dhcp_device_id(&m.host, &m.network_id);
    let mut all = ports::on_network(conn, &m.network_id).await?;
    let mine = all.iter().find(|p| p.device_owner == ports::DHCP_OWNER && p.device_id == device_id).cloned();
    let dhcp = match mine {
        Some(p) => Some(p),
        None if m.dhcp && !dhcp_subnets.is_empty() => {
            use sea_orm::TransactionTrait;
            let txn = db.write.begin().await?;
            subnets::lock_network(&txn, &m.network_id).await?;
            let again = ports::on_network(&txn, &m.network_id)
                .await?
                .into_iter()
                .find(|p| p.device_owner == ports::DHCP_OWNER && p.device_id == device_id);
            let p = match again {
                Some(p) => p,
                None => {
                    let reqs = vec![routers::IpRequest::Any(dhcp_subnets.clone())];
                    let (mut p, _) = routers::create_service_port(
                        &txn,
                        base_mac,
                        &m.network_id,
                        &_net.project_id,
                        ports::DHCP_OWNER,
                        &device_id,
                        &reqs,
                    )
                    .await?;
                    p.host_id = m.host.clone();
                    p.vif_details = crate::api::ports::vif_details_for(&m.host, &m.network_id);
                    ports::save(&txn, &p).await?;
                    p
                }
            };
            txn.commit().await?;
            all = ports::on_network(conn, &m.network_id).await?;
            Some(p)
        }
        None => None,
    };
    let ids: Vec<String> = all.iter().map(|p| p.id.clone()).collect();
    let mut allocs = subnets::allocations_of(conn, &ids).await?;
    let ports: Vec<NetworkPort> =
        all.iter().map(|p| network_port(p, allocs.remove(&p.id).unwrap_or_default())).collect();
    let dhcp_port = dhcp.and_then(|d| ports.iter().find(|p| p.id == d.id).cloned());
    let peer_hosts: BTreeSet<&str> =
        ports.iter().map(|p| p.host.as_str()).filter(|h| !h.is_empty() && *h != m.host).collect();
    let mut tunnel_peers = Vec::new();
    let mut host_tunnels = std::collections::BTreeMap::new();
    for h in peer_hosts {
        if let Some(ip) = agents::tunneling_ip(conn, h).await? {
            tunnel_peers.push(ip.clone());
            host_tunnels.insert(h.to_string(), ip);
        }
    }
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Ok(NetworkInfo {
        exists: true,
        segment: segment_of(conn, &m.network_id).await?,
        subnets: subs
            .iter()
            .map(|s| SubnetInfo {
                id: s.id.clone(),
                cidr: s.cidr.clone(),
                ip_version: s.ip_version,
                gateway_ip: opt(&s.gateway_ip),
                enable_dhcp: s.enable_dhcp,
                dns_nameservers: serde_json::from_str(&s.dns_nameservers).unwrap_or_default(),
                host_routes: serde_json::from_str(&s.host_routes).unwrap_or_default(),
                ipv6_address_mode: s.ipv6_address_mode.clone(),
                ipv6_ra_mode: s.ipv6_ra_mode.clone(),
            })
            .collect(),
        ports,
        dhcp_port,
        tunnel_peers,
        host_tunnels,
    })
}

/// The ports of `network_id` changed: the agents of the hosts with a port
/// on it ask for it again ([`NetworkChanged`]).
pub fn network_changed(svc: &State, network_id: &str) {
    let Some(bus) = svc.bus().cloned() else { return };
    let (svc, network_id) = (svc.clone(), network_id.to_string());
    tokio::spawn(async move {
        let hosts = match ports::hosts_on(&svc.db.read, std::slice::from_ref(&network_id)).await {
            Ok(h) => h,
            Err(e) => return tracing::warn!(%network_id, error = %e, "could not find the hosts of a network"),
        };
        let m = NetworkChanged { network_id: network_id.clone() };
        for h in hosts {
            if let Err(e) = bus.cast(&rpc::agent_topic(&h), &m, &request_id()).await {
                tracing::warn!(%network_id, host = %h, error = %e, "could not tell an agent a network changed");
            }
        }
    });
}

/// The segment of a network as the data plane needs it (only its id when
/// the network is gone).
pub async fn segment_of<Cn: ConnectionTrait>(conn: &Cn, network_id: &str) -> Result<Segment> {
    Ok(networks::get(conn, network_id)
        .await?
        .map(|n| Segment {
            network_id: n.id,
            network_type: n.network_type,
            physical_network: n.physical_network,
            segmentation_id: n.segmentation_id,
            mtu: n.mtu,
        })
        .unwrap_or_else(|| Segment { network_id: network_id.to_string(), ..Default::default() }))
}

/// The status a port takes in an update from `before` to `after`: DOWN when
/// it leaves its host (unbound or moved) or goes administratively down; as
/// it was otherwise (its new host's agent reports it wired).
pub fn status_after_update(before: &Port, after: &Port) -> String {
    if after.host_id != before.host_id || !after.admin_state_up { DOWN.to_string() } else { before.status.clone() }
}

/// Ports just created: tell the agents of the bound ones' hosts, and those
/// of the ports whose rules admit the new ones' groups (new members).
pub fn ports_created(svc: &State, created: &[Port]) {
    for p in created.iter().filter(|p| !p.host_id.is_empty()) {
        send_bound(svc, &p.id, &p.host_id);
    }
    let nets: BTreeSet<&str> = created.iter().map(|p| p.network_id.as_str()).collect();
    for n in nets {
        network_changed(svc, n);
    }
    note_members(svc, Vec::new(), created.iter().map(|p| p.id.clone()).collect());
}

/// The rules of `groups` changed: the agents of their bound ports are told
/// again ([`PortBound`], with every rule).
pub fn rules_changed(svc: &State, groups: Vec<String>) {
    spawn_resend(svc, Affected::In(groups), BTreeSet::new());
}

/// The members of `groups` changed (port `port_id` joined or left them, or
/// changed addresses): the bound ports whose rules admit those groups are
/// sent again.
pub fn members_changed(svc: &State, groups: Vec<String>, _port_id: &str) {
    note_members(svc, groups, Vec::new());
}

/// Member changes of security groups, gathered for [`GATHER`] and told
/// once: at a thousand port creates a second in one default group, the
/// agents hear of each admitting port a few times a second, not a thousand
/// times, and the lookup runs a few times a second, not once per create.
#[derive(Default)]
pub struct MemberChanges {
    /// Groups whose members changed.
    groups: Mutex<BTreeSet<String>>,
    /// New ports (their groups gained a member).
    ports: Mutex<BTreeSet<String>>,
    armed: AtomicBool,
}

const GATHER: Duration = Duration::from_millis(250);

fn note_members(svc: &State, groups: Vec<String>, new_ports: Vec<String>) {
    let Some(bus) = svc.bus().cloned() else { return };
    let mc = &svc.member_changes;
    if let Ok(mut g) = mc.groups.lock() {
        g.extend(groups);
    }
    if let Ok(mut p) = mc.ports.lock() {
        p.extend(new_ports);
    }
    if mc.armed.swap(true, Ordering::SeqCst) {
        return;
    }
    let svc = svc.clone();
    tokio::spawn(async move {
        tokio::time::sleep(GATHER).await;
        // disarm before taking: a change noted from now on arms the next round
        svc.member_changes.armed.store(false, Ordering::SeqCst);
        let mut groups: BTreeSet<String> =
            svc.member_changes.groups.lock().map(|mut g| std::mem::take(&mut *g)).unwrap_or_default();
        let new_ports: Vec<String> = svc
            .member_changes
            .ports
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
            .into_iter()
            .collect();
        for chunk in new_ports.chunks(500) {
            match ports::groups_of(&svc.db.read, chunk).await {
                Ok(m) => groups.extend(m.into_values().flatten()),
                Err(e) => tracing::warn!(error = %e, "could not read the groups of new ports"),
            }
        }
        if !groups.is_empty() {
            send_members(&svc, &bus, groups.into_iter().collect()).await;
        }
    });
}

/// The members of `groups` as sets ([`GroupMembers`]), once to each host
/// with a bound port whose rules admit one of them.
async fn send_members(svc: &NetworkService, bus: &stratus_bus::Bus, groups: Vec<String>) {
    let conn = &svc.db.read;
    let r: anyhow::Result<()> = async {
        let hosts: BTreeSet<String> = security_groups::bound_ports_admitting(conn, &groups)
            .await?
            .into_iter()
            .map(|p| p.host_id)
            .filter(|h| !h.is_empty())
            .collect();
        if hosts.is_empty() {
            return Ok(());
        }
        let members = ports::addresses_in_groups(conn, &groups).await?;
        for g in &groups {
            let ips = members.get(g).cloned().unwrap_or_default();
            let (ipv6, ipv4): (Vec<String>, Vec<String>) = ips.into_iter().partition(|ip| ip.contains(':'));
            let m = rpc::GroupMembers { group_id: g.clone(), ipv4, ipv6 };
            for h in &hosts {
                if let Err(e) = bus.cast(&rpc::agent_topic(h), &m, &request_id()).await {
                    tracing::warn!(group = %g, host = %h, error = %e, "could not tell an agent a group's members");
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "could not tell the agents of a security group's members");
    }
}

/// Which bound ports a security group change reaches.
enum Affected {
    /// The ports in these groups.
    In(Vec<String>),
}

fn spawn_resend(svc: &State, which: Affected, except: BTreeSet<String>) {
    let Some(bus) = svc.bus().cloned() else { return };
    let svc = svc.clone();
    tokio::spawn(async move { resend(&svc, &bus, which, &except).await });
}

/// Send [`PortBound`] again to the host of every affected bound port (one
/// message per port, whatever the number of groups changed).
async fn resend(svc: &NetworkService, bus: &stratus_bus::Bus, which: Affected, except: &BTreeSet<String>) {
    let conn = &svc.db.read;
    let r: anyhow::Result<()> = async {
        let affected = match which {
            Affected::In(g) => security_groups::bound_ports_in(conn, &g).await?,
        };
        for p in affected {
            if except.contains(&p.id) {
                continue;
            }
            let m = port_bound(conn, &p).await?;
            if let Err(e) = bus.cast(&rpc::agent_topic(&p.host_id), &m, &request_id()).await {
                tracing::warn!(port_id = %p.id, host = %p.host_id, error = %e, "could not resend a port's rules");
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "could not tell the agents of a security group change");
    }
}

/// A port updated from `before` to `after`; `rewire` when the update named an
/// attribute the agent wires ([`WIRED_ATTRS`]).
pub fn port_updated(svc: &State, before: &Port, after: &Port, rewire: bool) {
    if !before.host_id.is_empty() && before.host_id != after.host_id {
        send_unbound(svc, before);
    }
    if !after.host_id.is_empty() && (after.host_id != before.host_id || rewire) {
        send_bound(svc, &after.id, &after.host_id);
    }
    if after.host_id != before.host_id || after.mac_address != before.mac_address || rewire {
        network_changed(svc, &after.network_id);
        if !before.host_id.is_empty() && before.host_id != after.host_id {
            tell_host(svc, &before.host_id, &after.network_id);
        }
    }
}

/// Tell one host's agent that a network changed.
fn tell_host(svc: &State, host: &str, network_id: &str) {
    let Some(bus) = svc.bus().cloned() else { return };
    let (host, m) = (host.to_string(), NetworkChanged { network_id: network_id.to_string() });
    tokio::spawn(async move {
        if let Err(e) = bus.cast(&rpc::agent_topic(&host), &m, &request_id()).await {
            tracing::warn!(network_id = %m.network_id, %host, error = %e, "could not tell an agent a network changed");
        }
    });
}

/// A port deleted (it was in `groups`): its host's agents unwire it, and
/// the ports whose rules admitted it learn it is gone.
pub fn port_deleted(svc: &State, port: &Port, groups: Vec<String>) {
    if !port.host_id.is_empty() {
        send_unbound(svc, port);
        tell_host(svc, &port.host_id, &port.network_id);
    }
    network_changed(svc, &port.network_id);
    members_changed(svc, groups, &port.id);
}

/// Cast [`PortBound`] for the port as it is now, unless it left `host`
/// meanwhile (a later change sent its own notice).
fn send_bound(svc: &State, port_id: &str, host: &str) {
    let Some(bus) = svc.bus().cloned() else { return };
    let (svc, port_id, host) = (svc.clone(), port_id.to_string(), host.to_string());
    tokio::spawn(async move {
        let r: anyhow::Result<()> = async {
            let Some(port) = ports::get(&svc.db.read, &port_id).await? else { return Ok(()) };
            if port.host_id != host {
                return Ok(());
            }
            let m = port_bound(&svc.db.read, &port).await?;
            bus.cast(&rpc::agent_topic(&host), &m, &request_id()).await?;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(%port_id, %host, error = %e, "could not tell the agent a port was bound");
        }
    });
}

fn send_unbound(svc: &NetworkService, port: &Port) {
    let Some(bus) = svc.bus().cloned() else { return };
    let host = port.host_id.clone();
    let m = PortUnbound { port_id: port.id.clone(), network_id: port.network_id.clone() };
    tokio::spawn(async move {
        if let Err(e) = bus.cast(&rpc::agent_topic(&host), &m, &request_id()).await {
            tracing::warn!(port_id = %m.port_id, %host, error = %e, "could not tell the agent a port was unbound");
        }
    });
}

pub(crate) fn request_id() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

/// Keeps the `PLUGIN` consumer running while the service lives.
pub(crate) struct Serving(pub tokio::task::JoinHandle<()>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Start serving [`rpc::PLUGIN`] for `db`.
pub(crate) async fn serve(bus: &stratus_bus::Bus, db: Db, base_mac: &str) -> anyhow::Result<Serving> {
    let task = bus
        .serve(rpc::PLUGIN, Arc::new(Plugin { db, base_mac: base_mac.to_string() }))
        .await
        .map_err(|e| anyhow::anyhow!("bus: {e}"))?;
    Ok(Serving(task))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(host: &str, admin: bool, status: &str) -> Port {
        Port {
            id: "p".into(),
            project_id: String::new(),
            network_id: "n".into(),
            name: String::new(),
            mac_address: String::new(),
            admin_state_up: admin,
            status: status.into(),
            device_id: String::new(),
            device_owner: String::new(),
            host_id: host.into(),
            vnic_type: "normal".into(),
            profile: "{}".into(),
            vif_details: "{}".into(),
            port_security_enabled: true,
            allowed_address_pairs: "[]".into(),
            extra_dhcp_opts: "[]".into(),
            description: String::new(),
            created_at: String::new(),
            updated_at: String::new(),
            revision_number: 0,
        }
    }

    #[test]
    fn a_port_goes_down_when_it_leaves_its_host_or_goes_admin_down() {
        let up = port("h1", true, ACTIVE);
        assert_eq!(status_after_update(&up, &port("h1", true, ACTIVE)), ACTIVE);
        assert_eq!(status_after_update(&up, &port("", true, ACTIVE)), DOWN);
        assert_eq!(status_after_update(&up, &port("h2", true, ACTIVE)), DOWN);
        assert_eq!(status_after_update(&up, &port("h1", false, ACTIVE)), DOWN);
        let down = port("h1", false, DOWN);
        // back up: DOWN until the agent reports it wired again
        assert_eq!(status_after_update(&down, &port("h1", true, DOWN)), DOWN);
    }
}
