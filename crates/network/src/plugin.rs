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
use crate::rpc::{self, AgentHeartbeat, FixedIp, PortBound, PortUnbound, PortWired, SecurityGroupRule, Segment};
use crate::store::{agents, networks, ports, security_groups, subnets};
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
            other => Err(RemoteError::new("UnexpectedMessage", format!("network plugin: unknown message {other}"))),
        }
    }
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
    })
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
            resend(&svc, &bus, Affected::Admitting(groups.into_iter().collect()), &BTreeSet::new()).await;
        }
    });
}

/// Which bound ports a security group change reaches.
enum Affected {
    /// The ports in these groups.
    In(Vec<String>),
    /// The ports in groups with a rule whose remote group is one of these.
    Admitting(Vec<String>),
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
            Affected::Admitting(g) => security_groups::bound_ports_admitting(conn, &g).await?,
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
}

/// A port deleted (it was in `groups`): its host's agents unwire it, and
/// the ports whose rules admitted it learn it is gone.
pub fn port_deleted(svc: &State, port: &Port, groups: Vec<String>) {
    if !port.host_id.is_empty() {
        send_unbound(svc, port);
    }
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
pub(crate) async fn serve(bus: &stratus_bus::Bus, db: Db) -> anyhow::Result<Serving> {
    let task = bus.serve(rpc::PLUGIN, Arc::new(Plugin { db })).await.map_err(|e| anyhow::anyhow!("bus: {e}"))?;
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
