//! The service's side of the agent interface (Neutron's ML2 plugin RPC):
//! it serves [`rpc::PLUGIN`] (agents report ports wired and themselves
//! alive) and tells the agents of a host what to wire when a port is bound
//! to it, rebound, unbound or deleted.
//!
//! Notices are casts sent after the change committed, from a spawned task so
//! the API reply does not wait on the bus; a failed cast is logged (the agent
//! resyncs, as Neutron's do). With no bus attached (unit tests, an API
//! process started before its bus) nothing is sent.

use std::collections::BTreeSet;
use std::sync::Arc;

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
    let net = networks::get(conn, &port.network_id).await?;
    let segment = net
        .map(|n| Segment {
            network_id: n.id,
            network_type: n.network_type,
            physical_network: n.physical_network,
            segmentation_id: n.segmentation_id,
            mtu: n.mtu,
        })
        .unwrap_or_else(|| Segment { network_id: port.network_id.clone(), ..Default::default() });
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

/// The status a port takes in an update from `before` to `after`: DOWN when
/// it leaves its host (unbound or moved) or goes administratively down; as
/// it was otherwise (its new host's agent reports it wired).
pub fn status_after_update(before: &Port, after: &Port) -> String {
    if after.host_id != before.host_id || !after.admin_state_up { DOWN.to_string() } else { before.status.clone() }
}

/// Ports just created: tell the agents of the bound ones' hosts.
pub fn ports_created(svc: &State, created: &[Port]) {
    for p in created.iter().filter(|p| !p.host_id.is_empty()) {
        send_bound(svc, &p.id, &p.host_id);
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

/// A port deleted: its host's agents unwire it.
pub fn port_deleted(svc: &State, port: &Port) {
    if !port.host_id.is_empty() {
        send_unbound(svc, port);
    }
}

/// Cast [`PortBound`] for the port as it is now, unless it left `host`
/// meanwhile (a later change sent its own notice).
fn send_bound(svc: &State, port_id: &str, host: &str) {
    let Some(bus) = svc.bus().cloned() else { return };
    let (svc, port_id, host) = (svc.clone(), port_id.to_string(), host.to_string());
    tokio::spawn(async move {
        let r: anyhow::Result<()> = async {
            let Some(port) = ports::get(&svc.db.write, &port_id).await? else { return Ok(()) };
            if port.host_id != host {
                return Ok(());
            }
            let m = port_bound(&svc.db.write, &port).await?;
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

fn request_id() -> String {
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
