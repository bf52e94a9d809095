//! The interface network agents implement, as versioned bus messages.
//!
//! The network service tells the agents of a host, on topic
//! `network-agent.<host>`, what to wire: a port bound to the host (with its
//! network's segment and the security group rules in effect), a port gone,
//! a router or floating IP changed. Agents tell the service (topic
//! [`PLUGIN`]) that a port is wired, and report themselves alive
//! ([`AgentHeartbeat`]). A receiver refuses versions newer than it knows;
//! fields added later carry `#[serde(default)]` so older senders still parse.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_bus::Message;

/// Where the network service hears agents' reports.
pub const PLUGIN: &str = "network-plugin";

/// The topic of the agents of `host`.
pub fn agent_topic(host: &str) -> String {
    format!("network-agent.{host}")
}

/// A network's segment as the data plane needs it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Segment {
    pub network_id: String,
    /// `vxlan`, `vlan`, `flat`, `local`
    pub network_type: String,
    /// '' when none (VXLAN, local)
    #[serde(default)]
    pub physical_network: String,
    pub segmentation_id: Option<i64>,
    pub mtu: i64,
}

/// One fixed IP of a port.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

/// A security group rule in effect on a port (Neutron's rule attributes;
/// `None` for any).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SecurityGroupRule {
    pub security_group_id: String,
    /// `ingress` or `egress`
    pub direction: String,
    /// `IPv4` or `IPv6`
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    /// The addresses of the remote group's ports, resolved for the agent.
    #[serde(default)]
    pub remote_group_ips: Vec<String>,
}

/// service -> `network-agent.<host>` (call): a port was bound to this host;
/// wire it. The reply is a [`PortWired`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PortBound {
    pub port_id: String,
    pub host: String,
    pub mac_address: String,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    pub segment: Segment,
    pub admin_state_up: bool,
    #[serde(default)]
    pub device_owner: String,
    #[serde(default)]
    pub device_id: String,
    pub port_security_enabled: bool,
    /// Allowed address pairs: `{"ip_address": ..., "mac_address": ...}`.
    #[serde(default)]
    pub allowed_address_pairs: Vec<Value>,
    /// Every rule of every group of the port.
    #[serde(default)]
    pub security_group_rules: Vec<SecurityGroupRule>,
}

impl Message for PortBound {
    const NAME: &'static str = "network_agent.port_bound";
    const VERSION: u32 = 1;
}

/// service -> `network-agent.<host>` (cast): a port left this host (unbound
/// or deleted); unwire it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PortUnbound {
    pub port_id: String,
    pub network_id: String,
}

impl Message for PortUnbound {
    const NAME: &'static str = "network_agent.port_unbound";
    const VERSION: u32 = 1;
}

/// A router's port as the L3 agent wires it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RouterPort {
    pub port_id: String,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    /// The subnets' CIDRs, in the order of `fixed_ips`.
    #[serde(default)]
    pub cidrs: Vec<String>,
    pub segment: Segment,
}

/// service -> `network-agent.<host>` (cast): a router hosted here changed
/// (created, interfaces, gateway, routes, admin state) or went (`deleted`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RouterUpdated {
    pub router_id: String,
    #[serde(default)]
    pub deleted: bool,
    pub admin_state_up: bool,
    pub gateway: Option<RouterPort>,
    #[serde(default)]
    pub enable_snat: bool,
    #[serde(default)]
    pub interfaces: Vec<RouterPort>,
    /// Extra routes: `{"destination": ..., "nexthop": ...}`.
    #[serde(default)]
    pub routes: Vec<Value>,
}

impl Message for RouterUpdated {
    const NAME: &'static str = "network_agent.router_updated";
    const VERSION: u32 = 1;
}

/// service -> `network-agent.<host>` (cast): a floating IP on a router hosted
/// here was associated (`fixed_ip_address` set), disassociated or deleted.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FloatingIpChanged {
    pub floating_ip_id: String,
    pub floating_ip_address: String,
    pub router_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    #[serde(default)]
    pub deleted: bool,
}

impl Message for FloatingIpChanged {
    const NAME: &'static str = "network_agent.floating_ip_changed";
    const VERSION: u32 = 1;
}

/// agent -> service ([`PLUGIN`], cast), and the reply to [`PortBound`]: the
/// port is wired on `host` (its status may go ACTIVE).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PortWired {
    pub port_id: String,
    pub host: String,
}

impl Message for PortWired {
    const NAME: &'static str = "network_plugin.port_wired";
    const VERSION: u32 = 1;
}

/// agent -> service ([`PLUGIN`], cast): an agent is alive (Neutron's
/// `report_state`). `start_flag` on the first report after the agent started.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AgentHeartbeat {
    pub host: String,
    pub binary: String,
    pub agent_type: String,
    pub topic: String,
    #[serde(default)]
    pub configurations: Value,
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub start_flag: bool,
}

impl Message for AgentHeartbeat {
    const NAME: &'static str = "network_plugin.agent_heartbeat";
    const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_tolerate_missing_optional_fields() {
        let m = PortBound { port_id: "p".into(), host: "h".into(), ..Default::default() };
        let env = stratus_bus::Envelope::new(&m, "req-1").unwrap();
        assert_eq!(env.name, "network_agent.port_bound");
        assert_eq!(env.decode::<PortBound>().unwrap(), m);
        let v = serde_json::json!({"port_id": "p", "host": "h", "mac_address": "fa:16:3e:00:00:01",
            "segment": {"network_id": "n", "network_type": "vxlan", "segmentation_id": 5, "mtu": 1450},
            "admin_state_up": true, "port_security_enabled": true});
        let p: PortBound = serde_json::from_value(v).unwrap();
        assert_eq!(p.segment.segmentation_id, Some(5));
        assert!(p.security_group_rules.is_empty());
        assert_eq!(agent_topic("h1"), "network-agent.h1");
    }
}
