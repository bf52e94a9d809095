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
    /// The port's revision when this was read: an agent ignores a notice
    /// older than one it applied (notices of one topic may arrive out of order).
    #[serde(default)]
    pub revision_number: i64,
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
    /// The subnets' gateway addresses ('' for none), in the order of `fixed_ips`.
    #[serde(default)]
    pub gateway_ips: Vec<String>,
    /// The subnets' `ipv6_ra_mode` ('' for none: no router advertisements),
    /// in the order of `fixed_ips`.
    #[serde(default)]
    pub ra_modes: Vec<String>,
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
/// here was associated (`fixed_ip_address` set), disassociated, deleted, or
/// its port forwardings changed (each message carries all of them).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FloatingIpChanged {
    pub floating_ip_id: String,
    pub floating_ip_address: String,
    pub router_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_forwardings: Vec<PortForwarding>,
}

/// A port forwarding of a floating IP: DNAT of `external` ports (a range:
/// start = end for one) to the same number of `internal` ports of a fixed IP.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortForwarding {
    /// `tcp`, `udp`, `sctp`
    pub protocol: String,
    pub internal_ip_address: String,
    pub external_port_start: u16,
    pub external_port_end: u16,
    pub internal_port_start: u16,
    pub internal_port_end: u16,
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

/// agent -> service ([`PLUGIN`], call): everything the agent of `host`
/// should have wired (on start and after a reconnect). The reply is a
/// [`HostState`]; the agent converges to it, removing what it holds that is
/// not in it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SyncHost {
    pub host: String,
}

impl Message for SyncHost {
    const NAME: &'static str = "network_plugin.sync_host";
    const VERSION: u32 = 1;
}

/// The reply to [`SyncHost`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct HostState {
    /// Every port bound to the host (guests' ports; not the agent's own
    /// DHCP and router ports, which follow from `networks` and `routers`).
    pub ports: Vec<PortBound>,
    /// Every router hosted there, as [`RouterUpdated`] tells it.
    pub routers: Vec<RouterUpdated>,
    /// Every floating IP of those routers that has a fixed address.
    pub floating_ips: Vec<FloatingIpChanged>,
}

/// A subnet as the DHCP server needs it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SubnetInfo {
    pub id: String,
    pub cidr: String,
    pub ip_version: i64,
    pub gateway_ip: Option<String>,
    pub enable_dhcp: bool,
    #[serde(default)]
    pub dns_nameservers: Vec<String>,
    /// `{"destination": ..., "nexthop": ...}`
    #[serde(default)]
    pub host_routes: Vec<Value>,
    #[serde(default)]
    pub ipv6_address_mode: String,
    #[serde(default)]
    pub ipv6_ra_mode: String,
}

/// A port of a network as the DHCP server and the tunnels need it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NetworkPort {
    pub id: String,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    /// Its binding host ('' when unbound).
    pub host: String,
    pub device_owner: String,
    /// `{"opt_name": ..., "opt_value": ..., "ip_version": ...}`
    #[serde(default)]
    pub extra_dhcp_opts: Vec<Value>,
}

/// agent -> service ([`PLUGIN`], call): the state of a network the agent
/// serves on `host`; with `dhcp`, the service makes (once) the host's DHCP
/// port on it when it has a DHCP-enabled subnet. The reply is a [`NetworkInfo`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GetNetwork {
    pub network_id: String,
    pub host: String,
    #[serde(default)]
    pub dhcp: bool,
}

impl Message for GetNetwork {
    const NAME: &'static str = "network_plugin.get_network";
    const VERSION: u32 = 1;
}

/// The reply to [`GetNetwork`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NetworkInfo {
    /// False when the network is gone.
    pub exists: bool,
    pub segment: Segment,
    pub subnets: Vec<SubnetInfo>,
    pub ports: Vec<NetworkPort>,
    /// The host's DHCP port on it (asked for with `dhcp`).
    pub dhcp_port: Option<NetworkPort>,
    /// The tunnel endpoints of the other hosts with ports on the network.
    #[serde(default)]
    pub tunnel_peers: Vec<String>,
    /// Those hosts' tunnel endpoints by host (where each port's frames go:
    /// the l2population forwarding and ARP entries).
    #[serde(default)]
    pub host_tunnels: std::collections::BTreeMap<String, String>,
}

/// service -> `network-agent.<host>` (cast): the ports of a network with a
/// port on the host changed (created, bound, moved, deleted): the agent asks
/// for the network again ([`GetNetwork`]) for its DHCP hosts and tunnels.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NetworkChanged {
    pub network_id: String,
}

impl Message for NetworkChanged {
    const NAME: &'static str = "network_agent.network_changed";
    const VERSION: u32 = 1;
}

/// agent -> service ([`PLUGIN`], cast): a floating IP is (`ACTIVE`) or is
/// not (`DOWN`) programmed on its router's host.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FloatingIpStatus {
    pub floating_ip_id: String,
    pub status: String,
}

impl Message for FloatingIpStatus {
    const NAME: &'static str = "network_plugin.floating_ip_status";
    const VERSION: u32 = 1;
}

/// agent -> service ([`PLUGIN`], call): whose port has `ip_address` on one
/// of `network_ids`, or on a network `router_id` has an interface on (the
/// metadata proxy of a DHCP namespace names its network, that of a router
/// namespace its router). The reply is an `Option<PortOwner>`: `None` unless
/// exactly one port matches (Neutron's metadata agent asks the same).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PortByAddress {
    #[serde(default)]
    pub network_ids: Vec<String>,
    #[serde(default)]
    pub router_id: Option<String>,
    pub ip_address: String,
}

impl Message for PortByAddress {
    const NAME: &'static str = "network_plugin.port_by_address";
    const VERSION: u32 = 1;
}

/// The reply to [`PortByAddress`]: the port's device (a server's id for a
/// server's port) and project.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PortOwner {
    pub port_id: String,
    pub device_id: String,
    pub device_owner: String,
    pub project_id: String,
}

/// service -> `network-agent.<host>` (cast): the members of a security
/// group changed; the host has ports whose rules admit that group
/// (`remote_group_id`). Sent once per host and group, not as every
/// admitting port again: the agent updates the group's address sets in place.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GroupMembers {
    pub group_id: String,
    pub ipv4: Vec<String>,
    pub ipv6: Vec<String>,
}

impl Message for GroupMembers {
    const NAME: &'static str = "network_agent.group_members";
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
