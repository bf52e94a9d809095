//! Security groups on the data plane: nftables rules, per port, stateful,
//! with Neutron's iptables-firewall semantics.
//!
//! # Why two tables
//!
//! Guest ports are taps enslaved to a Linux bridge per network, so the
//! filtering happens on bridged frames. Only the `bridge` family sees which
//! bridge port (tap) a frame came from or goes to; but bridge-family conntrack
//! needs `nf_conntrack_bridge`, which this kernel does not have (a `ct`
//! expression in a bridge table fails with EPROTO). Conntrack still runs on
//! bridged IPv4/IPv6 through br_netfilter (`net.bridge.bridge-nf-call-ip*tables
//! = 1`): the bridge's PREROUTING hook runs the `inet` PREROUTING hooks, with the
//! bridge as input device. So the work is split:
//!
//! - `inet <table>` (via br_netfilter), for frames whose input (or, locally
//!   sent, output) device is a bridge:
//!   - `raw-prerouting` / `raw-output` (priority -300, before conntrack): put
//!     the flow in its network's conntrack zone, `iifname vmap @zones` to a
//!     chain `zone-<n>` doing `ct zone set <n>`. One zone per bridge, so
//!     tenants' overlapping addresses never share conntrack entries.
//!   - `ct-prerouting` / `ct-output` (priority -150, after conntrack): export
//!     the conntrack state into two packet-mark bits, [`MARK_ESTABLISHED`]
//!     (established or related) and [`MARK_INVALID`].
//! - `bridge <table>`: everything per port, keyed by the tap's name through
//!   verdict maps (one lookup per hook, whatever the number of ports):
//!   - `prerouting` (priority -300, before br_netfilter and before the bridge
//!     learns the source MAC): `iifname vmap @spoof-ports` to `spoof-<port>`,
//!     the stateless anti-spoofing of what the guest sends.
//!   - `forward` and `input` (priority 100, after br_netfilter ran the inet
//!     hooks): `iifname vmap @egress-ports` to `egress-<port>`, the guest's
//!     egress rules; `forward` and `output`: `oifname vmap @ingress-ports` to
//!     `ingress-<port>`, its ingress rules. Both read the mark bits for
//!     "established" and "invalid".
//!   - sets `sg-<group id>-v4` / `-v6`: the addresses of a remote group's
//!     ports. Rules reference the set, so a membership change is one set
//!     update. (nft allows 256-byte names, so ids are used whole: a prefix
//!     could merge two groups.)
//!
//! A port's chains are replaced in one nft transaction (flush and refill), so
//! no packet ever sees half a rule set.
//!
//! # Semantics (Neutron's iptables firewall)
//!
//! "Ingress" is traffic to the guest (leaving the bridge through its tap),
//! "egress" traffic from it. Both directions deny by default and accept what
//! a rule allows; established and related flows pass both ways, invalid ones
//! are dropped. Always allowed: DHCP (client out, replies in), ARP, IPv6
//! neighbour discovery and MLD, router advertisements in. Always dropped: a
//! guest's frames from a MAC that is not its own (or an allowed pair's),
//! IPv4/IPv6/ARP from an address that is not its own (or an allowed pair's,
//! which may be a CIDR; the IPv6 link-local address of each MAC counts as
//! its own), DHCP server replies and router advertisements from a guest, and
//! ethertypes other than IPv4, IPv6 and ARP. With `port_security_enabled =
//! false` a port's frames are not looked at.
//!
//! Removing a rule cuts the flows it allowed: after a port's rule set shrinks
//! (a rule gone, an address gone, port security turned on), the conntrack
//! entries of the port's addresses in its zone are deleted (with the
//! `conntrack` tool), so the next packet of an established flow is a new one
//! and meets the new rules. A remote group losing a member loses that
//! member's entries the same way.
//!
//! Nothing here parses nft's text output: commands go to `nft -j -f -` as one
//! JSON document, state is read with `nft -j list table`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, anyhow, bail};
use ipnet::IpNet;
use serde_json::{Value, json};
// IP protocol names Neutron accepts, with their numbers: the API's own table
use stratus_network::model::security_group_rules::PROTOCOLS;
use stratus_network::rpc::{PortBound, SecurityGroupRule};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Mutex;

/// The default name of the tables (one `bridge`, one `inet`).
pub const DEFAULT_TABLE: &str = "stratus-sg";
/// Packet-mark bit: conntrack says established or related.
pub const MARK_ESTABLISHED: u32 = 0x4000_0000;
/// Packet-mark bit: conntrack says invalid.
pub const MARK_INVALID: u32 = 0x2000_0000;

const BRIDGE: &str = "bridge";
const INET: &str = "inet";
const SPOOF_MAP: &str = "spoof-ports";
const EGRESS_MAP: &str = "egress-ports";
const INGRESS_MAP: &str = "ingress-ports";
const ZONE_MAP: &str = "zones";
/// Before br_netfilter (0) and before the bridge learns source MACs.
const PRIO_SPOOF: i32 = -300;
/// After br_netfilter ran the inet hooks (it re-enters above 0).
const PRIO_FILTER: i32 = 100;
/// Before conntrack (-200).
const PRIO_ZONE: i32 = -300;
/// After conntrack (-200).
const PRIO_CT_EXPORT: i32 = -150;

const COMMENT_DISABLED: &str = "port security disabled";
const COMMENT_ADMIN_DOWN: &str = "port administratively down";
const COMMENT_SPOOF_MAC: &str = "anti-spoofing: source MAC";
const COMMENT_SPOOF_V4: &str = "anti-spoofing: IPv4 source";
const COMMENT_SPOOF_V6: &str = "anti-spoofing: IPv6 source";
/// Comments of the rules translated from security group rules start so.
const RULE_PREFIX: &str = "sg ";

/// ICMPv6 a guest may always send: MLD query/report/done, router
/// solicitation, neighbour solicitation/advertisement, MLDv2 report.
const ICMPV6_EGRESS: [u8; 7] = [130, 131, 132, 133, 135, 136, 143];
/// ICMPv6 a guest may always receive: MLD query, router advertisement,
/// neighbour solicitation/advertisement.
const ICMPV6_INGRESS: [u8; 4] = [130, 134, 135, 136];
/// ICMPv6 a guest may send from `::` (duplicate address detection, MLD).
const ICMPV6_UNSPECIFIED: [u8; 3] = [131, 135, 143];
const ICMPV6_ROUTER_ADVERTISEMENT: u8 = 134;

/// Protocols with ports at the usual place (port ranges apply to them).
const PORT_PROTOCOLS: [u8; 5] = [6, 17, 33, 132, 136];

// ---------------------------------------------------------------------------
// Names

/// The anti-spoofing chain of a port (bridge table, prerouting).
pub fn spoof_chain(port_id: &str) -> String {
    format!("spoof-{port_id}")
}

/// The egress chain of a port (bridge table, forward and input).
pub fn egress_chain(port_id: &str) -> String {
    format!("egress-{port_id}")
}

/// The ingress chain of a port (bridge table, forward and output).
pub fn ingress_chain(port_id: &str) -> String {
    format!("ingress-{port_id}")
}

/// The set of a remote group's addresses of one IP version.
pub fn group_set(group_id: &str, v6: bool) -> String {
    format!("sg-{group_id}-{}", if v6 { "v6" } else { "v4" })
}

fn zone_chain(zone: u16) -> String {
    format!("zone-{zone}")
}

/// Ids become parts of chain and set names: keep them short and plain (nft
/// names may be 256 bytes; ids are UUIDs).
fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 64
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        bail!("{what} {id:?} is not usable in nftables names (1-64 of [A-Za-z0-9._-])");
    }
    Ok(())
}

fn check_ifname(what: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || name.bytes().any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
    {
        bail!("{what} {name:?} is not an interface name");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// JSON building blocks

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn eq(left: Value, right: impl Into<Value>) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right.into()}})
}

fn ne(left: Value, right: impl Into<Value>) -> Value {
    json!({"match": {"op": "!=", "left": left, "right": right.into()}})
}

fn anon_set(items: Vec<Value>) -> Value {
    json!({"set": items})
}

fn concat(a: Value, b: Value) -> Value {
    json!({"concat": [a, b]})
}

fn mark_has(bit: u32) -> Value {
    ne(json!({"&": [meta("mark"), bit]}), 0)
}

fn net_value(net: &IpNet) -> Value {
    if net.prefix_len() == net.max_prefix_len() {
        json!(net.addr().to_string())
    } else {
        json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix_len()}})
    }
}

fn ret() -> Value {
    json!({"return": null})
}

fn drop_() -> Value {
    json!({"drop": null})
}

fn add_rule(family: &str, table: &str, chain: &str, comment: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": family, "table": table, "chain": chain,
        "comment": comment, "expr": expr}}})
}

fn chain_obj(family: &str, table: &str, name: &str) -> Value {
    json!({"family": family, "table": table, "name": name})
}

fn base_chain(family: &str, table: &str, name: &str, hook: &str, prio: i32) -> Value {
    json!({"add": {"chain": {"family": family, "table": table, "name": name, "type": "filter",
        "hook": hook, "prio": prio, "policy": "accept"}}})
}

fn element(verb: &str, family: &str, table: &str, map: &str, elem: Value) -> Value {
    json!({verb: {"element": {"family": family, "table": table, "name": map, "elem": [elem]}}})
}

/// Point `key` of a verdict map at `jump chain`, whatever it held before:
/// "add" alone fails when the key exists with another verdict, "delete"
/// alone fails when it does not exist.
fn set_vmap(family: &str, table: &str, map: &str, key: &str, chain: &str) -> Vec<Value> {
    let entry = json!([key, {"jump": {"target": chain}}]);
    vec![
        element("add", family, table, map, entry.clone()),
        element("delete", family, table, map, json!(key)),
        element("add", family, table, map, entry),
    ]
}

/// Remove `key` from a verdict map, whether or not it is there (`chain`
/// must be the verdict it has when it is).
fn unset_vmap(family: &str, table: &str, map: &str, key: &str, chain: &str) -> Vec<Value> {
    vec![
        element("add", family, table, map, json!([key, {"jump": {"target": chain}}])),
        element("delete", family, table, map, json!(key)),
    ]
}

// ---------------------------------------------------------------------------
// Translation: a port's message -> nft commands (pure)

/// What [`port_plan`] makes of a port: the commands that replace its chains
/// (and fill the remote groups' sets its rules use), and what the agent
/// needs to know to cut flows later.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortPlan {
    /// nft JSON commands (the body of a `{"nftables": [...]}` document).
    pub commands: Vec<Value>,
    pub secured: bool,
    /// One per distinct translated rule: its comment in the ruleset.
    pub rule_keys: BTreeSet<String>,
    /// The port's single addresses (fixed IPs, single-address pairs): whose
    /// conntrack entries go when the rules shrink.
    pub addresses: BTreeSet<IpAddr>,
    /// Remote groups' sets the rules use, with the members the message gave.
    pub sets: BTreeMap<String, BTreeSet<IpNet>>,
    /// Rules left out, with why (logged by the caller).
    pub skipped: Vec<String>,
}

/// A security group rule, normalised and ready to write.
#[derive(Clone, Debug, PartialEq)]
struct Translated {
    ingress: bool,
    /// The rule's comment, also its identity (equal keys, equal rules).
    key: String,
    expr: Vec<Value>,
    /// The remote group's set, and whether it is the IPv6 one.
    set: Option<(String, bool)>,
}

fn protocol_number(protocol: Option<&str>, v6: bool) -> std::result::Result<Option<u8>, String> {
    let Some(p) = protocol.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let p = p.to_ascii_lowercase();
    if p == "any" {
        return Ok(None);
    }
    let n = match p.parse::<u8>() {
        Ok(n) => n,
        Err(_) => PROTOCOLS
            .iter()
            .find(|(name, _)| *name == p)
            .map(|(_, n)| *n)
            .ok_or_else(|| format!("unknown protocol {p:?}"))?,
    };
    // Neutron: "icmp" on an IPv6 rule means ICMPv6.
    match (n, v6) {
        (1, true) => Ok(Some(58)),
        (58, false) => Err("ICMPv6 on an IPv4 rule".to_string()),
        _ => Ok(Some(n)),
    }
}

fn range_value(min: u16, max: u16) -> Value {
    if min == max { json!(min) } else { json!({"range": [min, max]}) }
}

fn bounded(v: Option<i64>, max: i64, what: &str) -> std::result::Result<Option<i64>, String> {
    match v {
        Some(x) if !(0..=max).contains(&x) => Err(format!("{what} {x} out of range")),
        other => Ok(other),
    }
}

fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>().map(|n| n.trunc()).ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

fn translate_rule(rule: &SecurityGroupRule) -> std::result::Result<Translated, String> {
    let ingress = match rule.direction.to_ascii_lowercase().as_str() {
        "ingress" => true,
        "egress" => false,
        other => return Err(format!("direction {other:?}")),
    };
    let v6 = match rule.ethertype.to_ascii_lowercase().as_str() {
        "ipv4" => false,
        "ipv6" => true,
        other => return Err(format!("ethertype {other:?}")),
    };
    let (l3, l3_proto) = if v6 { ("ip6", "ip6") } else { ("ip", "ip") };
    let mut expr = vec![eq(meta("protocol"), l3_proto)];
    let proto = protocol_number(rule.protocol.as_deref(), v6)?;
    let mut key =
        format!("{RULE_PREFIX}{} {}", if ingress { "ingress" } else { "egress" }, if v6 { "IPv6" } else { "IPv4" });
    match proto {
        None => key.push_str(" any"),
        Some(p) => {
            key.push_str(&format!(" proto {p}"));
            expr.push(eq(meta("l4proto"), p));
        }
    }
    if let Some(p) = proto {
        if PORT_PROTOCOLS.contains(&p) {
            let min = bounded(rule.port_range_min, 65535, "port")?;
            let max = bounded(rule.port_range_max, 65535, "port")?;
            let range = match (min, max) {
                (None, None) => None,
                (Some(a), None) | (None, Some(a)) => Some((a, a)),
                (Some(a), Some(b)) if a > b => return Err(format!("port range {a}-{b}")),
                (Some(a), Some(b)) => Some((a, b)),
            };
            // The whole range is no restriction (Neutron writes no match).
            if let Some((a, b)) = range.filter(|&(a, b)| !(a <= 1 && b == 65535)) {
                let (a, b) = (u16::try_from(a).unwrap_or(0), u16::try_from(b).unwrap_or(u16::MAX));
                key.push_str(&format!(" dport {a}-{b}"));
                expr.push(eq(payload("th", "dport"), range_value(a, b)));
            }
        } else if p == 1 || p == 58 {
            // Neutron: port_range_min is the ICMP type, port_range_max the code.
            let icmp = if p == 58 { "icmpv6" } else { "icmp" };
            let ty = bounded(rule.port_range_min, 255, "ICMP type")?;
            let code = bounded(rule.port_range_max, 255, "ICMP code")?;
            match (ty, code) {
                (Some(t), code) => {
                    key.push_str(&format!(" type {t}"));
                    expr.push(eq(payload(icmp, "type"), t));
                    if let Some(c) = code {
                        key.push_str(&format!(" code {c}"));
                        expr.push(eq(payload(icmp, "code"), c));
                    }
                }
                (None, Some(_)) => return Err("ICMP code without a type".to_string()),
                (None, None) => {}
            }
        }
    }
    let field = if ingress { "saddr" } else { "daddr" };
    if let Some(prefix) = rule.remote_ip_prefix.as_deref().filter(|p| !p.trim().is_empty()) {
        let net = parse_net(prefix).ok_or_else(|| format!("remote_ip_prefix {prefix:?}"))?;
        if matches!(net, IpNet::V6(_)) != v6 {
            return Err(format!("remote_ip_prefix {prefix} is not {}", rule.ethertype));
        }
        if net.prefix_len() > 0 {
            key.push_str(&format!(" remote {net}"));
            expr.push(eq(payload(l3, field), net_value(&net)));
        }
    }
    let mut set = None;
    if let Some(group) = rule.remote_group_id.as_deref().filter(|g| !g.is_empty()) {
        check_id("remote_group_id", group).map_err(|e| e.to_string())?;
        let name = group_set(group, v6);
        key.push_str(&format!(" remote-group {group}"));
        expr.push(eq(payload(l3, field), format!("@{name}")));
        set = Some((name, v6));
    }
    expr.push(ret());
    Ok(Translated { ingress, key, expr, set })
}

/// Lowercase colon form of a MAC address.
fn parse_mac(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2 || u8::from_str_radix(p, 16).is_err()) {
        return None;
    }
    Some(parts.join(":").to_ascii_lowercase())
}

/// The IPv6 link-local address (EUI-64) a MAC gives an interface.
fn link_local(mac: &str) -> Option<Ipv6Addr> {
    let b: Vec<u8> = mac.split(':').filter_map(|p| u8::from_str_radix(p, 16).ok()).collect();
    let [m0, m1, m2, m3, m4, m5] = b[..] else { return None };
    Some(Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m0 ^ 0x02, m1]),
        u16::from_be_bytes([m2, 0xff]),
        u16::from_be_bytes([0xfe, m3]),
        u16::from_be_bytes([m4, m5]),
    ))
}

fn is_link_local(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// The (MAC, address) pairs a port may send from, per MAC, aggregated so
/// that no two intervals of one MAC overlap (nft refuses overlaps).
fn source_elements(pairs: &BTreeMap<String, Vec<IpNet>>, v6: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for (mac, nets) in pairs {
        let nets: Vec<IpNet> = nets.iter().copied().filter(|n| matches!(n, IpNet::V6(_)) == v6).collect();
        for net in IpNet::aggregate(&nets) {
            out.push(concat(json!(mac), net_value(&net)));
        }
    }
    out
}

/// The nft commands that make `port`'s chains what its message says, in
/// table `table` (bridge family), the port being the interface `tap`. The
/// chains are flushed and refilled in the same transaction; the verdict
/// maps point `tap` at them (or, without port security, no longer do).
pub fn port_plan(table: &str, port: &PortBound, tap: &str) -> Result<PortPlan> {
    check_id("port_id", &port.port_id)?;
    check_ifname("tap", tap)?;
    let id = &port.port_id;
    let (spoof, egress, ingress) = (spoof_chain(id), egress_chain(id), ingress_chain(id));
    let mut plan = PortPlan { secured: port.port_security_enabled, ..Default::default() };
    let cmds = &mut plan.commands;
    for chain in [&spoof, &egress, &ingress] {
        cmds.push(json!({"add": {"chain": chain_obj(BRIDGE, table, chain)}}));
        cmds.push(json!({"flush": {"chain": chain_obj(BRIDGE, table, chain)}}));
    }

    // Addresses, secured or not: they are what conntrack cleanup needs.
    let mac = parse_mac(&port.mac_address)
        .ok_or_else(|| anyhow!("port {id}: mac_address {:?} is not a MAC", port.mac_address))?;
    let mut pairs: BTreeMap<String, Vec<IpNet>> = BTreeMap::new();
    pairs.entry(mac.clone()).or_default();
    for ip in &port.fixed_ips {
        let a: IpAddr =
            ip.ip_address.trim().parse().with_context(|| format!("port {id}: fixed IP {:?}", ip.ip_address))?;
        pairs.entry(mac.clone()).or_default().push(IpNet::from(a));
        if !is_link_local(&a) {
            plan.addresses.insert(a);
        }
    }
    for pair in &port.allowed_address_pairs {
        let ip = pair.get("ip_address").and_then(Value::as_str).unwrap_or_default();
        let net = parse_net(ip).ok_or_else(|| anyhow!("port {id}: allowed address pair ip_address {ip:?}"))?;
        let pair_mac = match pair.get("mac_address").and_then(Value::as_str).filter(|m| !m.is_empty()) {
            Some(m) => parse_mac(m).ok_or_else(|| anyhow!("port {id}: allowed address pair mac_address {m:?}"))?,
            None => mac.clone(),
        };
        pairs.entry(pair_mac).or_default().push(net);
        if net.prefix_len() == net.max_prefix_len() && !is_link_local(&net.addr()) {
            plan.addresses.insert(net.addr());
        }
    }

    if !port.admin_state_up {
        // administratively down: nothing in or out, whatever its security
        // (Neutron's agent takes the tap down); its flows are cut
        for chain in [&spoof, &egress, &ingress] {
            cmds.push(add_rule(BRIDGE, table, chain, COMMENT_ADMIN_DOWN, vec![drop_()]));
        }
        for (map, chain) in [(SPOOF_MAP, &spoof), (EGRESS_MAP, &egress), (INGRESS_MAP, &ingress)] {
            cmds.extend(set_vmap(BRIDGE, table, map, tap, chain));
        }
        plan.secured = true;
        return Ok(plan);
    }
    if !port.port_security_enabled {
        for chain in [&spoof, &egress, &ingress] {
            cmds.push(add_rule(BRIDGE, table, chain, COMMENT_DISABLED, vec![ret()]));
        }
        for (map, chain) in [(SPOOF_MAP, &spoof), (EGRESS_MAP, &egress), (INGRESS_MAP, &ingress)] {
            cmds.extend(unset_vmap(BRIDGE, table, map, tap, chain));
        }
        return Ok(plan);
    }

    // The set of an IPv6 source: every MAC's link-local address too.
    let mut pairs6 = pairs.clone();
    for (m, nets) in pairs6.iter_mut() {
        if let Some(lla) = link_local(m) {
            nets.push(IpNet::from(IpAddr::V6(lla)));
        }
    }
    // ARP probes (RFC 5227) come from 0.0.0.0.
    let mut pairs_arp = pairs.clone();
    for nets in pairs_arp.values_mut() {
        nets.push(IpNet::from(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    }
    let macs: Vec<Value> = pairs.keys().map(|m| json!(m)).collect();
    let v4 = source_elements(&pairs, false);
    let v6 = source_elements(&pairs6, true);
    let arp = source_elements(&pairs_arp, false);

    let udp_ports = |sport: u16, dport: u16| {
        vec![eq(meta("l4proto"), 17), eq(payload("udp", "sport"), sport), eq(payload("udp", "dport"), dport)]
    };
    let icmpv6_types = |types: &[u8]| {
        vec![eq(meta("l4proto"), 58), eq(payload("icmpv6", "type"), anon_set(types.iter().map(|t| json!(t)).collect()))]
    };
    let is_ip = || eq(meta("protocol"), "ip");
    let is_ip6 = || eq(meta("protocol"), "ip6");
    let with = |head: Vec<Value>, tail: Vec<Value>, end: Value| {
        let mut v = head;
        v.extend(tail);
        v.push(end);
        v
    };

    // spoof-<port>: stateless, before the bridge learns the source MAC.
    let mut spoof_rules = vec![
        (COMMENT_SPOOF_MAC, vec![ne(payload("ether", "saddr"), anon_set(macs)), drop_()]),
        (
            "only ARP, IPv4, IPv6",
            vec![ne(meta("protocol"), anon_set(vec![json!("arp"), json!("ip"), json!("ip6")])), drop_()],
        ),
    ];
    spoof_rules.push((
        "ARP from own addresses",
        vec![
            eq(meta("protocol"), "arp"),
            eq(payload("arp", "htype"), 1),
            eq(payload("arp", "ptype"), "ip"),
            eq(payload("arp", "hlen"), 6),
            eq(payload("arp", "plen"), 4),
            eq(json!({"concat": [payload("arp", "saddr ether"), payload("arp", "saddr ip")]}), anon_set(arp)),
            ret(),
        ],
    ));
    spoof_rules.push(("anti-spoofing: ARP", vec![eq(meta("protocol"), "arp"), drop_()]));
    spoof_rules.push((
        "DHCP discover",
        with(
            vec![is_ip(), eq(payload("ip", "saddr"), "0.0.0.0"), eq(payload("ip", "daddr"), "255.255.255.255")],
            udp_ports(68, 67),
            ret(),
        ),
    ));
    let v4_check = if v4.is_empty() {
        vec![is_ip(), drop_()]
    } else {
        vec![is_ip(), ne(json!({"concat": [payload("ether", "saddr"), payload("ip", "saddr")]}), anon_set(v4)), drop_()]
    };
    spoof_rules.push((COMMENT_SPOOF_V4, v4_check));
    spoof_rules.push((
        "DAD and MLD from ::",
        with(vec![is_ip6(), eq(payload("ip6", "saddr"), "::")], icmpv6_types(&ICMPV6_UNSPECIFIED), ret()),
    ));
    spoof_rules.push((
        COMMENT_SPOOF_V6,
        vec![
            is_ip6(),
            ne(json!({"concat": [payload("ether", "saddr"), payload("ip6", "saddr")]}), anon_set(v6)),
            drop_(),
        ],
    ));
    spoof_rules.push(("no DHCP server", with(vec![is_ip()], udp_ports(67, 68), drop_())));
    spoof_rules.push(("no DHCPv6 server", with(vec![is_ip6()], udp_ports(547, 546), drop_())));
    spoof_rules.push((
        "no router advertisements",
        with(vec![is_ip6()], icmpv6_types(&[ICMPV6_ROUTER_ADVERTISEMENT]), drop_()),
    ));
    for (comment, expr) in spoof_rules {
        cmds.push(add_rule(BRIDGE, table, &spoof, comment, expr));
    }

    // The security group rules, deduplicated (two groups may say the same).
    let mut translated: BTreeMap<String, Translated> = BTreeMap::new();
    for rule in &port.security_group_rules {
        match translate_rule(rule) {
            Ok(t) => {
                if let Some((name, v6)) = &t.set {
                    let members = plan.sets.entry(name.clone()).or_default();
                    members.extend(
                        rule.remote_group_ips
                            .iter()
                            .filter_map(|ip| parse_net(ip))
                            .filter(|n| matches!(n, IpNet::V6(_)) == *v6),
                    );
                }
                translated.insert(t.key.clone(), t);
            }
            Err(why) => plan.skipped.push(format!("rule {rule:?}: {why}")),
        }
    }
    for (name, members) in &plan.sets {
        let v6 = name.ends_with("-v6");
        cmds.extend(set_members_commands(table, name, v6, members));
    }

    // egress-<port>: what the guest sends, statefully.
    let mut egress_rules = vec![
        ("ARP (checked in spoof chain)", vec![ne(meta("protocol"), anon_set(vec![json!("ip"), json!("ip6")])), ret()]),
        ("DHCP client", with(vec![is_ip()], udp_ports(68, 67), ret())),
        ("DHCPv6 client", with(vec![is_ip6()], udp_ports(546, 547), ret())),
        ("neighbour discovery, MLD, router solicitation", with(vec![is_ip6()], icmpv6_types(&ICMPV6_EGRESS), ret())),
        ("conntrack invalid", vec![mark_has(MARK_INVALID), drop_()]),
        ("conntrack established, related", vec![mark_has(MARK_ESTABLISHED), ret()]),
    ];
    // ingress-<port>: what the guest receives, statefully.
    let mut ingress_rules = vec![
        ("ARP", vec![ne(meta("protocol"), anon_set(vec![json!("ip"), json!("ip6")])), ret()]),
        ("DHCP replies", with(vec![is_ip()], udp_ports(67, 68), ret())),
        ("DHCPv6 replies", with(vec![is_ip6()], udp_ports(547, 546), ret())),
        (
            "neighbour discovery, MLD query, router advertisements",
            with(vec![is_ip6()], icmpv6_types(&ICMPV6_INGRESS), ret()),
        ),
        ("conntrack invalid", vec![mark_has(MARK_INVALID), drop_()]),
        ("conntrack established, related", vec![mark_has(MARK_ESTABLISHED), ret()]),
    ];
    for (comment, expr) in egress_rules.drain(..) {
        cmds.push(add_rule(BRIDGE, table, &egress, comment, expr));
    }
    for (comment, expr) in ingress_rules.drain(..) {
        cmds.push(add_rule(BRIDGE, table, &ingress, comment, expr));
    }
    for t in translated.into_values() {
        let chain = if t.ingress { &ingress } else { &egress };
        cmds.push(add_rule(BRIDGE, table, chain, &t.key, t.expr));
        plan.rule_keys.insert(t.key);
    }
    cmds.push(add_rule(BRIDGE, table, &egress, "default deny egress", vec![drop_()]));
    cmds.push(add_rule(BRIDGE, table, &ingress, "default deny ingress", vec![drop_()]));

    for (map, chain) in [(SPOOF_MAP, &spoof), (EGRESS_MAP, &egress), (INGRESS_MAP, &ingress)] {
        cmds.extend(set_vmap(BRIDGE, table, map, tap, chain));
    }
    Ok(plan)
}

/// Make the set `name` hold exactly `members` (created when missing).
fn set_members_commands(table: &str, name: &str, v6: bool, members: &BTreeSet<IpNet>) -> Vec<Value> {
    let set = json!({"family": BRIDGE, "table": table, "name": name,
        "type": if v6 { "ipv6_addr" } else { "ipv4_addr" }, "flags": ["interval"]});
    let mut cmds =
        vec![json!({"add": {"set": set}}), json!({"flush": {"set": {"family": BRIDGE, "table": table, "name": name}}})];
    let nets: Vec<IpNet> = members.iter().copied().collect();
    let elems: Vec<Value> = IpNet::aggregate(&nets).iter().map(net_value).collect();
    if !elems.is_empty() {
        cmds.push(json!({"add": {"element": {"family": BRIDGE, "table": table, "name": name, "elem": elems}}}));
    }
    cmds
}

/// The tables and base chains (flushed and rewritten: idempotent, and it
/// repairs drift). Verdict maps, port chains, sets and zones are kept.
pub fn base_commands(table: &str) -> Vec<Value> {
    let mut c = vec![
        json!({"add": {"table": {"family": BRIDGE, "name": table}}}),
        json!({"add": {"table": {"family": INET, "name": table}}}),
    ];
    for map in [SPOOF_MAP, EGRESS_MAP, INGRESS_MAP] {
        c.push(json!({"add": {"map": {"family": BRIDGE, "table": table, "name": map,
            "type": "ifname", "map": "verdict"}}}));
    }
    c.push(json!({"add": {"map": {"family": INET, "table": table, "name": ZONE_MAP,
        "type": "ifname", "map": "verdict"}}}));
    let vmap = |key: &str, map: &str| json!({"vmap": {"key": meta(key), "data": format!("@{map}")}});
    let bridge_chains: [(&str, &str, i32, Vec<Vec<Value>>); 4] = [
        ("prerouting", "prerouting", PRIO_SPOOF, vec![vec![vmap("iifname", SPOOF_MAP)]]),
        (
            "forward",
            "forward",
            PRIO_FILTER,
            vec![vec![vmap("iifname", EGRESS_MAP)], vec![vmap("oifname", INGRESS_MAP)]],
        ),
        ("input", "input", PRIO_FILTER, vec![vec![vmap("iifname", EGRESS_MAP)]]),
        ("output", "output", PRIO_FILTER, vec![vec![vmap("oifname", INGRESS_MAP)]]),
    ];
    for (name, hook, prio, rules) in bridge_chains {
        c.push(base_chain(BRIDGE, table, name, hook, prio));
        c.push(json!({"flush": {"chain": chain_obj(BRIDGE, table, name)}}));
        for expr in rules {
            c.push(json!({"add": {"rule": {"family": BRIDGE, "table": table, "chain": name, "expr": expr}}}));
        }
    }
    let set_mark = |value: Value| json!({"mangle": {"key": meta("mark"), "value": value}});
    let ct_state = |states: &[&str]| json!({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": states}});
    for (kind, dev, raw, export, hook) in [
        ("iifkind", "iifname", "raw-prerouting", "ct-prerouting", "prerouting"),
        ("oifkind", "oifname", "raw-output", "ct-output", "output"),
    ] {
        c.push(base_chain(INET, table, raw, hook, PRIO_ZONE));
        c.push(json!({"flush": {"chain": chain_obj(INET, table, raw)}}));
        c.push(add_rule(
            INET,
            table,
            raw,
            "conntrack zone of the bridge",
            vec![eq(meta(kind), "bridge"), vmap(dev, ZONE_MAP)],
        ));
        c.push(base_chain(INET, table, export, hook, PRIO_CT_EXPORT));
        c.push(json!({"flush": {"chain": chain_obj(INET, table, export)}}));
        let rules = [
            ("only bridged traffic", vec![ne(meta(kind), "bridge"), ret()]),
            ("clear the state bits", vec![set_mark(json!({"&": [meta("mark"), !(MARK_ESTABLISHED | MARK_INVALID)]}))]),
            (
                "established, related",
                vec![ct_state(&["established", "related"]), set_mark(json!({"|": [meta("mark"), MARK_ESTABLISHED]}))],
            ),
            ("invalid", vec![ct_state(&["invalid"]), set_mark(json!({"|": [meta("mark"), MARK_INVALID]}))]),
        ];
        for (comment, expr) in rules {
            c.push(add_rule(INET, table, export, comment, expr));
        }
    }
    c
}

/// Put bridge `bridge`'s flows in conntrack zone `zone`.
fn zone_commands(table: &str, bridge: &str, zone: u16) -> Vec<Value> {
    let chain = zone_chain(zone);
    let mut c = vec![
        json!({"add": {"chain": chain_obj(INET, table, &chain)}}),
        json!({"flush": {"chain": chain_obj(INET, table, &chain)}}),
        add_rule(
            INET,
            table,
            &chain,
            &format!("bridge {bridge}"),
            vec![json!({"mangle": {"key": {"ct": {"key": "zone"}}, "value": zone}})],
        ),
    ];
    c.extend(set_vmap(INET, table, ZONE_MAP, bridge, &chain));
    c
}

// ---------------------------------------------------------------------------
// Reading back what the tables hold

/// What the agent knows of a port it has chains for.
#[derive(Clone, Debug, Default, PartialEq)]
struct PortMemo {
    tap: Option<String>,
    secured: bool,
    rule_keys: BTreeSet<String>,
    addresses: BTreeSet<IpAddr>,
    sets: BTreeSet<String>,
    zone: Option<u16>,
}

/// The tables' state as far as the agent needs it.
#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    ports: BTreeMap<String, PortMemo>,
    /// Remote groups' sets and their members.
    sets: BTreeMap<String, BTreeSet<IpNet>>,
    /// Bridge -> conntrack zone.
    zones: BTreeMap<String, u16>,
}

fn collect_set_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("@sg-") {
                out.insert(format!("sg-{name}"));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_set_refs(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_set_refs(x, out)),
        _ => {}
    }
}

fn net_of(v: &Value) -> Option<IpNet> {
    match v {
        Value::String(s) => parse_net(s),
        Value::Object(o) => {
            let p = o.get("prefix")?;
            let addr: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
            IpNet::new(addr, u8::try_from(p.get("len")?.as_u64()?).ok()?).ok()
        }
        _ => None,
    }
}

fn objects<'a>(listing: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    listing.get("nftables").and_then(Value::as_array).into_iter().flatten().filter_map(move |o| o.get(kind))
}

/// The state from `nft -j list table bridge T` and `nft -j list table inet T`.
fn parse_state(bridge: &Value, inet: &Value) -> State {
    let mut st = State::default();
    for chain in objects(bridge, "chain") {
        let name = chain.get("name").and_then(Value::as_str).unwrap_or_default();
        if let Some(port) = name.strip_prefix("egress-") {
            st.ports.insert(port.to_string(), PortMemo { secured: true, ..Default::default() });
        }
    }
    for rule in objects(bridge, "rule") {
        let chain = rule.get("chain").and_then(Value::as_str).unwrap_or_default();
        let comment = rule.get("comment").and_then(Value::as_str).unwrap_or_default();
        let port = ["spoof-", "egress-", "ingress-"].iter().find_map(|p| chain.strip_prefix(p));
        let Some(memo) = port.and_then(|p| st.ports.get_mut(p)) else { continue };
        if comment == COMMENT_DISABLED {
            memo.secured = false;
        }
        if comment.starts_with(RULE_PREFIX) {
            memo.rule_keys.insert(comment.to_string());
        }
        if let Some(expr) = rule.get("expr") {
            collect_set_refs(expr, &mut memo.sets);
        }
        if comment == COMMENT_SPOOF_V4 || comment == COMMENT_SPOOF_V6 {
            // The source check's set: {"concat": [mac, address or prefix]}.
            let elems = rule
                .get("expr")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.pointer("/match/right/set").and_then(Value::as_array))
                .flatten();
            for e in elems {
                let addr = e.pointer("/concat/1").and_then(Value::as_str).and_then(|s| s.parse::<IpAddr>().ok());
                if let Some(a) = addr.filter(|a| !is_link_local(a)) {
                    memo.addresses.insert(a);
                }
            }
        }
    }
    for map in objects(bridge, "map") {
        if map.get("name").and_then(Value::as_str) != Some(EGRESS_MAP) {
            continue;
        }
        for e in map.get("elem").and_then(Value::as_array).into_iter().flatten() {
            let tap = e.pointer("/0").and_then(Value::as_str);
            let target = e.pointer("/1/jump/target").and_then(Value::as_str);
            if let (Some(tap), Some(port)) = (tap, target.and_then(|t| t.strip_prefix("egress-")))
                && let Some(memo) = st.ports.get_mut(port)
            {
                memo.tap = Some(tap.to_string());
            }
        }
    }
    for set in objects(bridge, "set") {
        let name = set.get("name").and_then(Value::as_str).unwrap_or_default();
        if !name.starts_with("sg-") {
            continue;
        }
        let members = set.get("elem").and_then(Value::as_array).into_iter().flatten().filter_map(net_of).collect();
        st.sets.insert(name.to_string(), members);
    }
    for map in objects(inet, "map") {
        if map.get("name").and_then(Value::as_str) != Some(ZONE_MAP) {
            continue;
        }
        for e in map.get("elem").and_then(Value::as_array).into_iter().flatten() {
            let bridge = e.pointer("/0").and_then(Value::as_str);
            let zone = e
                .pointer("/1/jump/target")
                .and_then(Value::as_str)
                .and_then(|t| t.strip_prefix("zone-"))
                .and_then(|z| z.parse::<u16>().ok());
            if let (Some(b), Some(z)) = (bridge, zone) {
                st.zones.insert(b.to_string(), z);
            }
        }
    }
    st
}

/// The lowest zone no bridge has (zone 0 is everyone else's).
fn free_zone(zones: &BTreeMap<String, u16>) -> Option<u16> {
    let used: BTreeSet<u16> = zones.values().copied().collect();
    (1..=u16::MAX).find(|z| !used.contains(z))
}

// ---------------------------------------------------------------------------
// The firewall

/// Security groups of the ports of this host, in the tables `bridge <name>`
/// and `inet <name>`. One per agent; its methods serialise (nft
/// transactions are serialised by the kernel anyway).
pub struct Firewall {
    table: String,
    nft: PathBuf,
    conntrack: PathBuf,
    /// The host's network namespace when it is not the agent's own (a host
    /// simulated as a namespace): `nft` and `conntrack` run in it.
    namespace: Option<String>,
    /// What the tables hold, read once from the kernel then kept current.
    state: Mutex<Option<State>>,
}

impl Default for Firewall {
    fn default() -> Self {
        Self::new(DEFAULT_TABLE)
    }
}

fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].into_iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The bridge an interface is a port of (`/sys/class/net/<if>/master`).
async fn bridge_of(ifname: &str) -> Option<String> {
    let link = tokio::fs::read_link(Path::new("/sys/class/net").join(ifname).join("master")).await.ok()?;
    link.file_name().map(|n| n.to_string_lossy().into_owned())
}

async fn link_exists(ifname: &str) -> bool {
    tokio::fs::metadata(Path::new("/sys/class/net").join(ifname)).await.is_ok()
}

impl Firewall {
    /// A firewall writing the tables named `table` (both families).
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            nft: find_program("nft"),
            conntrack: find_program("conntrack"),
            namespace: None,
            state: Mutex::new(None),
        }
    }

    /// A firewall of the host that is network namespace `ns`.
    pub fn in_namespace(table: impl Into<String>, ns: impl Into<String>) -> Self {
        Self { namespace: Some(ns.into()), ..Self::new(table) }
    }

    /// `program`, run in the host's namespace.
    fn command(&self, program: &Path) -> Command {
        match &self.namespace {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    /// The bridge an interface of the host is a port of.
    async fn bridge_of(&self, ifname: &str) -> Option<String> {
        match &self.namespace {
            None => bridge_of(ifname).await,
            Some(ns) => crate::kernel::Netlink::in_namespace(ns).await.ok()?.master_of(ifname).await.ok()?,
        }
    }

    async fn link_exists(&self, ifname: &str) -> bool {
        match &self.namespace {
            None => link_exists(ifname).await,
            Some(ns) => match crate::kernel::Netlink::in_namespace(ns).await {
                Ok(nl) => !matches!(nl.link(ifname).await, Ok(None)),
                Err(_) => true,
            },
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Create the tables and base chains (idempotent; rewrites the base
    /// chains), make bridges hand IPv4/IPv6 to the inet hooks, and forget
    /// conntrack zones of bridges that are gone.
    pub async fn ensure(&self) -> Result<()> {
        check_id("table", &self.table)?;
        for v in ["iptables", "ip6tables"] {
            if let Some(ns) = &self.namespace {
                // per namespace since Linux 5.3
                crate::kernel::sysctl_in(ns, &format!("net.bridge.bridge-nf-call-{v}"), "1")
                    .await
                    .with_context(|| format!("bridge-nf-call-{v} in {ns}: br_netfilter is needed"))?;
                continue;
            }
            let path = format!("/proc/sys/net/bridge/bridge-nf-call-{v}");
            let cur = tokio::fs::read_to_string(&path)
                .await
                .with_context(|| format!("{path}: br_netfilter is needed for stateful security groups"))?;
            if cur.trim() != "1" {
                tokio::fs::write(&path, "1").await.with_context(|| format!("writing {path}"))?;
            }
        }
        let mut guard = self.state.lock().await;
        self.apply(base_commands(&self.table)).await?;
        let mut st = self.load().await?;
        let mut prune = Vec::new();
        for (bridge, zone) in st.zones.clone() {
            if !self.link_exists(&bridge).await {
                prune.extend(unset_vmap(INET, &self.table, ZONE_MAP, &bridge, &zone_chain(zone)));
                let chain = chain_obj(INET, &self.table, &zone_chain(zone));
                prune.push(json!({"flush": {"chain": chain.clone()}}));
                prune.push(json!({"delete": {"chain": chain}}));
                st.zones.remove(&bridge);
            }
        }
        if !prune.is_empty() {
            self.apply(prune).await?;
        }
        *guard = Some(st);
        Ok(())
    }

    /// Make the port's chains what `port` says, in one transaction; `tap` is
    /// its interface on the bridge. When its rules shrank, its flows'
    /// conntrack entries are deleted afterwards (so established flows meet
    /// the new rules).
    pub async fn set_port(&self, port: &PortBound, tap: &str) -> Result<()> {
        self.set_port_on(port, tap, None).await
    }

    /// [`Firewall::set_port`], `bridge` being the bridge the tap is to join
    /// when it is on none yet (the hypervisor plugs it after the port is
    /// bound): the bridge's conntrack zone is set up at once.
    pub async fn set_port_on(&self, port: &PortBound, tap: &str, bridge: Option<&str>) -> Result<()> {
        let plan = port_plan(&self.table, port, tap)?;
        for why in &plan.skipped {
            tracing::warn!(port_id = %port.port_id, "security group rule left out: {why}");
        }
        let mut guard = self.state.lock().await;
        let st = self.loaded(&mut guard).await?;
        let old = st.ports.get(&port.port_id).cloned();

        let mut cmds = Vec::new();
        // The tap served another port, or the port had another tap.
        for (other, memo) in &st.ports {
            if let Some(t) = memo.tap.as_deref().filter(|t| *t == tap && other != &port.port_id) {
                cmds.extend(unset_maps(&self.table, t, other));
            }
        }
        if let Some(old_tap) = old.as_ref().and_then(|m| m.tap.as_deref()).filter(|t| *t != tap) {
            cmds.extend(unset_maps(&self.table, old_tap, &port.port_id));
        }
        let bridge = match self.bridge_of(tap).await {
            Some(b) => Some(b),
            None => bridge.map(str::to_string),
        };
        let mut new_zone = None;
        let zone = match &bridge {
            Some(b) => match st.zones.get(b) {
                Some(z) => Some(*z),
                None => {
                    let z = free_zone(&st.zones).ok_or_else(|| anyhow!("no conntrack zone left"))?;
                    cmds.extend(zone_commands(&self.table, b, z));
                    new_zone = Some((b.clone(), z));
                    Some(z)
                }
            },
            None => {
                tracing::warn!(port_id = %port.port_id, tap, "tap is on no bridge: its flows stay in conntrack zone 0");
                None
            }
        };
        cmds.extend(plan.commands.iter().cloned());
        self.apply(cmds).await.with_context(|| format!("security groups of port {}", port.port_id))?;

        // Flows to cut: the port's, when it lost a rule, an address, or its
        // freedom; a remote group's lost members.
        let mut cut: BTreeSet<IpAddr> = BTreeSet::new();
        if plan.secured
            && let Some(old) = &old
        {
            let shrank =
                !old.secured || !old.rule_keys.is_subset(&plan.rule_keys) || !old.addresses.is_subset(&plan.addresses);
            if shrank {
                cut.extend(old.addresses.iter().chain(plan.addresses.iter()));
            }
        }
        let mut lost_members = BTreeSet::new();
        for (name, members) in &plan.sets {
            if let Some(before) = st.sets.get(name) {
                lost_members.extend(
                    before.difference(members).filter(|n| n.prefix_len() == n.max_prefix_len()).map(|n| n.addr()),
                );
            }
        }
        let zone_of_old = old.as_ref().and_then(|m| m.zone);
        self.forget_flows(&cut, zone.or(zone_of_old)).await?;
        self.forget_flows(&lost_members, None).await?;

        if let Some((b, z)) = new_zone {
            st.zones.insert(b, z);
        }
        for (name, members) in &plan.sets {
            st.sets.insert(name.clone(), members.clone());
        }
        st.ports.insert(
            port.port_id.clone(),
            PortMemo {
                tap: plan.secured.then(|| tap.to_string()),
                secured: plan.secured,
                rule_keys: plan.rule_keys,
                addresses: plan.addresses,
                sets: plan.sets.keys().cloned().collect(),
                zone,
            },
        );
        Ok(())
    }

    /// [`Firewall::set_port`] unless the tables already hold this port's
    /// rules as `port` gives them (same tap, rules, addresses, remote group
    /// members): what an agent's resync after a restart does, where nearly
    /// every port is unchanged. (The port's MAC is not in what the tables are
    /// read back as: a MAC change comes as a [`PortBound`] of its own, which
    /// goes through `set_port`.) True when it wrote.
    pub async fn ensure_port(&self, port: &PortBound, tap: &str) -> Result<bool> {
        let plan = port_plan(&self.table, port, tap)?;
        let bridge = self.bridge_of(tap).await;
        {
            let mut guard = self.state.lock().await;
            let st = self.loaded(&mut guard).await?;
            let zone = bridge.as_ref().and_then(|b| st.zones.get(b).copied());
            if let Some(old) = st.ports.get(&port.port_id)
                && old.secured == plan.secured
                && old.tap.as_deref() == plan.secured.then_some(tap)
                && old.rule_keys == plan.rule_keys
                && old.addresses == plan.addresses
                && old.zone == zone
                && (zone.is_some() || bridge.is_none())
                && plan.sets.iter().all(|(n, m)| st.sets.get(n) == Some(m))
            {
                return Ok(false);
            }
        }
        self.set_port(port, tap).await?;
        Ok(true)
    }

    /// Remove the port's chains (and the remote groups' sets no other port
    /// uses), and delete its flows' conntrack entries.
    pub async fn remove_port(&self, port_id: &str) -> Result<()> {
        check_id("port_id", port_id)?;
        let mut guard = self.state.lock().await;
        let st = self.loaded(&mut guard).await?;
        let Some(memo) = st.ports.get(port_id).cloned() else {
            return Ok(());
        };
        let mut cmds = Vec::new();
        if let Some(tap) = &memo.tap {
            cmds.extend(unset_maps(&self.table, tap, port_id));
        }
        for chain in [spoof_chain(port_id), egress_chain(port_id), ingress_chain(port_id)] {
            let c = chain_obj(BRIDGE, &self.table, &chain);
            cmds.push(json!({"add": {"chain": c.clone()}}));
            cmds.push(json!({"flush": {"chain": c.clone()}}));
            cmds.push(json!({"delete": {"chain": c}}));
        }
        self.apply(cmds).await.with_context(|| format!("removing security groups of port {port_id}"))?;
        st.ports.remove(port_id);

        // Sets nobody uses any more.
        let used: BTreeSet<&String> = st.ports.values().flat_map(|m| m.sets.iter()).collect();
        let unused: Vec<String> = st.sets.keys().filter(|s| !used.contains(s)).cloned().collect();
        if !unused.is_empty() {
            let mut gc = Vec::new();
            for name in &unused {
                gc.push(json!({"add": {"set": {"family": BRIDGE, "table": &self.table, "name": name,
                    "type": if name.ends_with("-v6") { "ipv6_addr" } else { "ipv4_addr" }, "flags": ["interval"]}}}));
                gc.push(json!({"delete": {"set": {"family": BRIDGE, "table": &self.table, "name": name}}}));
            }
            match self.apply(gc).await {
                Ok(()) => unused.iter().for_each(|n| {
                    st.sets.remove(n);
                }),
                Err(e) => tracing::warn!("keeping remote group sets {unused:?}: {e:#}"),
            }
        }

        let zone = match (&memo.zone, &memo.tap) {
            (Some(z), _) => Some(*z),
            (None, Some(tap)) => match self.bridge_of(tap).await {
                Some(b) => st.zones.get(&b).copied(),
                None => None,
            },
            (None, None) => None,
        };
        self.forget_flows(&memo.addresses, zone).await
    }

    /// Make remote group `group_id`'s set of `ethertype` (`IPv4`/`IPv6`) hold
    /// `ips` (addresses or CIDRs; those of the other version are ignored).
    /// Rules using the group follow at once; flows of members that left are
    /// cut.
    pub async fn set_group_members(&self, group_id: &str, ethertype: &str, ips: &[String]) -> Result<()> {
        check_id("group_id", group_id)?;
        let v6 = match ethertype.to_ascii_lowercase().as_str() {
            "ipv4" => false,
            "ipv6" => true,
            other => bail!("ethertype {other:?} is neither IPv4 nor IPv6"),
        };
        let mut members = BTreeSet::new();
        for ip in ips {
            let net = parse_net(ip).ok_or_else(|| anyhow!("group {group_id}: {ip:?} is not an address"))?;
            if matches!(net, IpNet::V6(_)) == v6 {
                members.insert(net);
            }
        }
        let name = group_set(group_id, v6);
        let mut guard = self.state.lock().await;
        let st = self.loaded(&mut guard).await?;
        self.apply(set_members_commands(&self.table, &name, v6, &members))
            .await
            .with_context(|| format!("members of remote group {group_id}"))?;
        let lost: BTreeSet<IpAddr> = st
            .sets
            .get(&name)
            .map(|before| {
                before.difference(&members).filter(|n| n.prefix_len() == n.max_prefix_len()).map(|n| n.addr()).collect()
            })
            .unwrap_or_default();
        self.forget_flows(&lost, None).await?;
        st.sets.insert(name, members);
        Ok(())
    }

    /// The ports this firewall has chains for, read from the kernel (for a
    /// resync: remove those the service no longer knows).
    ///
    /// Reads the chains only: listing a table makes nft fetch every rule and
    /// anonymous set (about a second at 400 ports), listing chains does not.
    pub async fn ports(&self) -> Result<Vec<String>> {
        let chains = self.nft_json(&["list", "chains", BRIDGE]).await?.unwrap_or(Value::Null);
        let mut ports: Vec<String> = objects(&chains, "chain")
            .filter(|c| c.get("table").and_then(Value::as_str) == Some(self.table.as_str()))
            .filter_map(|c| c.get("name").and_then(Value::as_str)?.strip_prefix("egress-").map(str::to_string))
            .collect();
        ports.sort();
        Ok(ports)
    }

    /// Delete both tables (and with them every rule, set and zone).
    pub async fn clear(&self) -> Result<()> {
        check_id("table", &self.table)?;
        let mut guard = self.state.lock().await;
        let mut cmds = Vec::new();
        for family in [BRIDGE, INET] {
            cmds.push(json!({"add": {"table": {"family": family, "name": &self.table}}}));
            cmds.push(json!({"delete": {"table": {"family": family, "name": &self.table}}}));
        }
        self.apply(cmds).await?;
        *guard = Some(State::default());
        Ok(())
    }

    async fn loaded<'a>(&self, guard: &'a mut Option<State>) -> Result<&'a mut State> {
        if guard.is_none() {
            *guard = Some(self.load().await?);
        }
        guard.as_mut().ok_or_else(|| anyhow!("firewall state"))
    }

    async fn load(&self) -> Result<State> {
        let bridge = self.list(BRIDGE).await?;
        let inet = self.list(INET).await?;
        if bridge.is_none() || inet.is_none() {
            bail!("the nftables tables {} are missing (Firewall::ensure makes them)", self.table);
        }
        let mut st = parse_state(&bridge.unwrap_or_default(), &inet.unwrap_or_default());
        for memo in st.ports.values_mut() {
            if let Some(tap) = &memo.tap
                && let Some(b) = self.bridge_of(tap).await
            {
                memo.zone = st.zones.get(&b).copied();
            }
        }
        Ok(st)
    }

    /// `nft -j list table <family> <table>`; None when there is no such table.
    async fn list(&self, family: &str) -> Result<Option<Value>> {
        self.nft_json(&["list", "table", family, &self.table]).await
    }

    /// `nft -j <args>`; None when nft says there is no such object.
    async fn nft_json(&self, args: &[&str]) -> Result<Option<Value>> {
        let out = self
            .command(&self.nft)
            .arg("-j")
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("running {}", self.nft.display()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("No such file or directory") {
                return Ok(None);
            }
            bail!("nft {}: {}", args.join(" "), err.trim());
        }
        serde_json::from_slice(&out.stdout).map(Some).context("nft -j list: not JSON")
    }

    /// Run `commands` as one transaction (`nft -j -f -`).
    async fn apply(&self, commands: Vec<Value>) -> Result<()> {
        let doc = serde_json::to_vec(&json!({"nftables": commands}))?;
        let mut child = self
            .command(&self.nft)
            .args(["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("running {} (Debian package nftables)", self.nft.display()))?;
        let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("nft stdin"))?;
        stdin.write_all(&doc).await.context("writing to nft")?;
        drop(stdin);
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!("nft: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Delete the conntrack entries from or to `addresses` (in `zone`, or in
    /// every zone).
    async fn forget_flows(&self, addresses: &BTreeSet<IpAddr>, zone: Option<u16>) -> Result<()> {
        let runs = addresses.iter().flat_map(|a| ["-s", "-d"].map(|dir| (a, dir))).map(|(a, dir)| {
            let mut cmd = self.command(&self.conntrack);
            cmd.arg("-D");
            if let Some(z) = zone {
                cmd.args(["-w", &z.to_string()]);
            }
            if a.is_ipv6() {
                cmd.args(["-f", "ipv6"]);
            }
            cmd.args([dir, &a.to_string()]).stdin(Stdio::null()).kill_on_drop(true);
            async move {
                let out = cmd
                    .output()
                    .await
                    .with_context(|| format!("running {} (Debian package conntrack)", self.conntrack.display()))?;
                let err = String::from_utf8_lossy(&out.stderr);
                // It exits 1 when nothing matched.
                if out.status.success() || err.contains("flow entries have been deleted") {
                    Ok(())
                } else {
                    Err(anyhow!("conntrack -D {dir} {a}: {}", err.trim()))
                }
            }
        });
        let results = futures::future::join_all(runs).await;
        results.into_iter().collect::<Result<Vec<()>>>().map(|_| ())
    }
}

/// Take `tap` out of the three verdict maps (it pointed at `port_id`'s chains).
fn unset_maps(table: &str, tap: &str, port_id: &str) -> Vec<Value> {
    let mut c = Vec::new();
    c.extend(unset_vmap(BRIDGE, table, SPOOF_MAP, tap, &spoof_chain(port_id)));
    c.extend(unset_vmap(BRIDGE, table, EGRESS_MAP, tap, &egress_chain(port_id)));
    c.extend(unset_vmap(BRIDGE, table, INGRESS_MAP, tap, &ingress_chain(port_id)));
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_network::rpc::FixedIp;

    const PORT: &str = "11111111-2222-4333-8444-555555555555";
    const MAC: &str = "FA:16:3E:00:00:01";

    fn rule(
        direction: &str,
        ethertype: &str,
        protocol: Option<&str>,
        min: Option<i64>,
        max: Option<i64>,
    ) -> SecurityGroupRule {
        SecurityGroupRule {
            security_group_id: "g".into(),
            direction: direction.into(),
            ethertype: ethertype.into(),
            protocol: protocol.map(str::to_string),
            port_range_min: min,
            port_range_max: max,
            ..Default::default()
        }
    }

    fn port(rules: Vec<SecurityGroupRule>) -> PortBound {
        PortBound {
            port_id: PORT.into(),
            mac_address: MAC.into(),
            fixed_ips: vec![
                FixedIp { subnet_id: "s4".into(), ip_address: "198.18.0.5".into() },
                FixedIp { subnet_id: "s6".into(), ip_address: "2001:db8::5".into() },
            ],
            admin_state_up: true,
            port_security_enabled: true,
            security_group_rules: rules,
            ..Default::default()
        }
    }

    fn plan(p: &PortBound) -> PortPlan {
        port_plan("t", p, "tap11111111-22").unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The rules added to `chain`, as (comment, expr).
    fn rules_in(plan: &PortPlan, chain: &str) -> Vec<(String, Value)> {
        plan.commands
            .iter()
            .filter_map(|c| c.pointer("/add/rule"))
            .filter(|r| r["chain"] == chain)
            .map(|r| (r["comment"].as_str().unwrap_or_default().to_string(), r["expr"].clone()))
            .collect()
    }

    /// The one security group rule of `chain` (comment starting "sg ").
    fn only_sg_rule(plan: &PortPlan, chain: &str) -> (String, Value) {
        let rules: Vec<_> = rules_in(plan, chain).into_iter().filter(|(c, _)| c.starts_with(RULE_PREFIX)).collect();
        assert_eq!(rules.len(), 1, "{rules:?}");
        rules.into_iter().next().unwrap_or_default()
    }

    fn has(expr: &Value, want: Value) -> bool {
        expr.as_array().into_iter().flatten().any(|e| *e == want)
    }

    fn translated(r: SecurityGroupRule) -> Translated {
        translate_rule(&r).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn names_fit_nft_and_refuse_odd_ids() {
        assert_eq!(spoof_chain(PORT), format!("spoof-{PORT}"));
        assert_eq!(group_set("g1", false), "sg-g1-v4");
        assert_eq!(group_set("g1", true), "sg-g1-v6");
        assert!(ingress_chain(&"x".repeat(64)).len() <= 256);
        let mut p = port(vec![]);
        p.port_id = "a b".into();
        assert!(port_plan("t", &p, "tap1").is_err());
        p.port_id = "x".repeat(65);
        assert!(port_plan("t", &p, "tap1").is_err());
        let p = port(vec![]);
        assert!(port_plan("t", &p, "tap-with-a-long-name").is_err(), "IFNAMSIZ");
        assert!(port_plan("t", &p, "").is_err());
        let mut p = port(vec![]);
        p.mac_address = "not a mac".into();
        assert!(port_plan("t", &p, "tap1").is_err());
        let mut p = port(vec![]);
        p.fixed_ips[0].ip_address = "198.18.0.300".into();
        assert!(port_plan("t", &p, "tap1").is_err());
    }

    #[test]
    fn tcp_and_udp_rules_match_destination_ports() {
        let t = translated(rule("ingress", "IPv4", Some("tcp"), Some(22), Some(22)));
        assert!(t.ingress);
        assert_eq!(t.key, "sg ingress IPv4 proto 6 dport 22-22");
        assert_eq!(t.expr[0], eq(meta("protocol"), "ip"));
        assert!(has(&json!(t.expr), eq(meta("l4proto"), 6)));
        assert!(has(&json!(t.expr), eq(payload("th", "dport"), 22)));
        assert_eq!(t.expr.last(), Some(&ret()));

        let t = translated(rule("egress", "IPv6", Some("udp"), Some(1000), Some(2000)));
        assert!(!t.ingress);
        assert_eq!(t.expr[0], eq(meta("protocol"), "ip6"));
        assert!(has(&json!(t.expr), eq(meta("l4proto"), 17)));
        assert!(has(&json!(t.expr), eq(payload("th", "dport"), json!({"range": [1000, 2000]}))));

        // Numbers work like names; sctp, dccp, udplite have ports too.
        assert_eq!(
            translated(rule("ingress", "IPv4", Some("6"), Some(80), Some(80))).expr,
            translated(rule("ingress", "IPv4", Some("TCP"), Some(80), Some(80))).expr
        );
        for p in ["sctp", "dccp", "udplite"] {
            let t = translated(rule("ingress", "IPv4", Some(p), Some(9), Some(9)));
            assert!(has(&json!(t.expr), eq(payload("th", "dport"), 9)), "{p}");
        }
        // Only a minimum: that port.
        let t = translated(rule("ingress", "IPv4", Some("tcp"), Some(443), None));
        assert!(has(&json!(t.expr), eq(payload("th", "dport"), 443)));
        // The whole range, or none: no port match.
        for (min, max) in [(Some(1), Some(65535)), (Some(0), Some(65535)), (None, None)] {
            let t = translated(rule("ingress", "IPv4", Some("tcp"), min, max));
            assert_eq!(t.expr.len(), 3, "{min:?}-{max:?}: {:?}", t.expr);
        }
        // Nonsense ranges are left out, not widened.
        assert!(translate_rule(&rule("ingress", "IPv4", Some("tcp"), Some(30), Some(20))).is_err());
        assert!(translate_rule(&rule("ingress", "IPv4", Some("tcp"), Some(70000), Some(70000))).is_err());
        assert!(translate_rule(&rule("ingress", "IPv4", Some("tcp"), Some(-1), Some(5))).is_err());
    }

    #[test]
    fn icmp_uses_the_port_range_as_type_and_code() {
        let t = translated(rule("ingress", "IPv4", Some("icmp"), Some(8), Some(0)));
        assert!(has(&json!(t.expr), eq(meta("l4proto"), 1)));
        assert!(has(&json!(t.expr), eq(payload("icmp", "type"), 8)));
        assert!(has(&json!(t.expr), eq(payload("icmp", "code"), 0)));
        assert_eq!(t.key, "sg ingress IPv4 proto 1 type 8 code 0");

        // A type alone: any code.
        let t = translated(rule("ingress", "IPv4", Some("icmp"), Some(3), None));
        assert!(has(&json!(t.expr), eq(payload("icmp", "type"), 3)));
        assert!(!json!(t.expr).to_string().contains("\"code\""));

        // Neither: all of ICMP.
        let t = translated(rule("ingress", "IPv4", Some("icmp"), None, None));
        assert_eq!(t.expr, vec![eq(meta("protocol"), "ip"), eq(meta("l4proto"), 1), ret()]);

        // "icmp" on an IPv6 rule is ICMPv6 (Neutron); so are its aliases.
        for name in ["icmp", "icmpv6", "ipv6-icmp", "58"] {
            let t = translated(rule("egress", "IPv6", Some(name), Some(128), None));
            assert!(has(&json!(t.expr), eq(meta("l4proto"), 58)), "{name}");
            assert!(has(&json!(t.expr), eq(payload("icmpv6", "type"), 128)), "{name}");
        }
        // ICMPv6 on IPv4 is nonsense; a code without a type too.
        assert!(translate_rule(&rule("ingress", "IPv4", Some("ipv6-icmp"), None, None)).is_err());
        assert!(translate_rule(&rule("ingress", "IPv4", Some("icmp"), None, Some(0))).is_err());
        assert!(translate_rule(&rule("ingress", "IPv4", Some("icmp"), Some(256), None)).is_err());
    }

    #[test]
    fn other_protocols_any_and_unknown() {
        let t = translated(rule("ingress", "IPv4", Some("gre"), Some(5), Some(6)));
        assert_eq!(t.expr, vec![eq(meta("protocol"), "ip"), eq(meta("l4proto"), 47), ret()], "no ports for GRE");
        let t = translated(rule("ingress", "IPv4", Some("112"), None, None));
        assert!(has(&json!(t.expr), eq(meta("l4proto"), 112)));
        for any in [None, Some("any"), Some("")] {
            let t = translated(rule("egress", "IPv4", any, None, None));
            assert_eq!(t.expr, vec![eq(meta("protocol"), "ip"), ret()], "{any:?}");
            assert_eq!(t.key, "sg egress IPv4 any");
        }
        assert!(translate_rule(&rule("ingress", "IPv4", Some("bogus"), None, None)).is_err());
        assert!(translate_rule(&rule("ingress", "IPv4", Some("300"), None, None)).is_err());
        assert!(translate_rule(&rule("sideways", "IPv4", None, None, None)).is_err());
        assert!(translate_rule(&rule("ingress", "IPX", None, None, None)).is_err());
    }

    #[test]
    fn remote_prefixes_are_the_source_in_and_the_destination_out() {
        let mut r = rule("ingress", "IPv4", Some("tcp"), Some(22), Some(22));
        r.remote_ip_prefix = Some("198.18.4.7/24".into());
        let t = translated(r.clone());
        assert!(has(&json!(t.expr), eq(payload("ip", "saddr"), json!({"prefix": {"addr": "198.18.4.0", "len": 24}}))));
        assert!(t.key.ends_with("remote 198.18.4.0/24"));

        r.direction = "egress".into();
        r.remote_ip_prefix = Some("198.18.4.7".into());
        let t = translated(r.clone());
        assert!(has(&json!(t.expr), eq(payload("ip", "daddr"), "198.18.4.7")));

        let mut r6 = rule("ingress", "IPv6", None, None, None);
        r6.remote_ip_prefix = Some("2001:db8::/32".into());
        let t = translated(r6.clone());
        assert!(has(&json!(t.expr), eq(payload("ip6", "saddr"), json!({"prefix": {"addr": "2001:db8::", "len": 32}}))));

        // Anywhere is no match at all.
        r6.remote_ip_prefix = Some("::/0".into());
        assert_eq!(translated(r6.clone()).expr, vec![eq(meta("protocol"), "ip6"), ret()]);

        // The wrong version, or garbage: left out (deny), never widened.
        r6.remote_ip_prefix = Some("198.18.0.0/16".into());
        assert!(translate_rule(&r6).is_err());
        r6.remote_ip_prefix = Some("nope".into());
        assert!(translate_rule(&r6).is_err());
    }

    #[test]
    fn remote_groups_reference_a_set_the_plan_fills() {
        let mut r4 = rule("ingress", "IPv4", Some("tcp"), Some(22), Some(22));
        r4.remote_group_id = Some("grp-1".into());
        r4.remote_group_ips =
            vec!["198.18.0.7".into(), "2001:db8::7".into(), "198.18.1.0/24".into(), "198.18.1.9".into()];
        let mut r6 = rule("egress", "IPv6", None, None, None);
        r6.remote_group_id = Some("grp-1".into());
        r6.remote_group_ips = r4.remote_group_ips.clone();
        let p = plan(&port(vec![r4, r6]));

        let (key, expr) = only_sg_rule(&p, &ingress_chain(PORT));
        assert!(key.ends_with("remote-group grp-1"));
        assert!(has(&expr, eq(payload("ip", "saddr"), "@sg-grp-1-v4")));
        let (_, expr) = only_sg_rule(&p, &egress_chain(PORT));
        assert!(has(&expr, eq(payload("ip6", "daddr"), "@sg-grp-1-v6")));

        // Each set holds its version's members only.
        let v4: Vec<String> = p.sets["sg-grp-1-v4"].iter().map(|n| n.to_string()).collect();
        assert_eq!(v4, ["198.18.0.7/32", "198.18.1.0/24", "198.18.1.9/32"]);
        assert_eq!(p.sets["sg-grp-1-v6"].len(), 1);
        // Written aggregated (nft refuses overlapping intervals), after a
        // flush, and before the rules that use it.
        let pos = |pred: &dyn Fn(&Value) -> bool| p.commands.iter().position(pred).unwrap_or(usize::MAX);
        let add_set = pos(&|c| c.pointer("/add/set/name") == Some(&json!("sg-grp-1-v4")));
        let flush = pos(&|c| c.pointer("/flush/set/name") == Some(&json!("sg-grp-1-v4")));
        let elems = pos(&|c| c.pointer("/add/element/name") == Some(&json!("sg-grp-1-v4")));
        let user = pos(&|c| c.to_string().contains("\"@sg-grp-1-v4\""));
        assert!(add_set < flush && flush < elems && elems < user, "{add_set} {flush} {elems} {user}");
        assert_eq!(
            p.commands[elems].pointer("/add/element/elem"),
            Some(&json!(["198.18.0.7", {"prefix": {"addr": "198.18.1.0", "len": 24}}]))
        );
        assert_eq!(p.commands[add_set].pointer("/add/set/flags"), Some(&json!(["interval"])));

        // An empty group: the set exists, empty, and matches nothing.
        let mut r = rule("ingress", "IPv4", None, None, None);
        r.remote_group_id = Some("lonely".into());
        let p = plan(&port(vec![r]));
        assert!(p.sets["sg-lonely-v4"].is_empty());
        assert!(!p.commands.iter().any(|c| c.pointer("/add/element/name") == Some(&json!("sg-lonely-v4"))));
        // Group ids become names: odd ones are refused.
        let mut r = rule("ingress", "IPv4", None, None, None);
        r.remote_group_id = Some("a/b".into());
        assert!(translate_rule(&r).is_err());
    }

    #[test]
    fn rules_are_deduplicated_and_bad_ones_skipped() {
        let mut dup = rule("ingress", "IPv4", Some("tcp"), Some(22), Some(22));
        dup.security_group_id = "other".into();
        let p = plan(&port(vec![
            rule("ingress", "IPv4", Some("tcp"), Some(22), Some(22)),
            dup,
            rule("ingress", "IPv4", Some("tcp"), Some(9), Some(1)),
        ]));
        assert_eq!(p.rule_keys.len(), 1);
        assert_eq!(p.skipped.len(), 1, "{:?}", p.skipped);
        only_sg_rule(&p, &ingress_chain(PORT));
    }

    #[test]
    fn chains_default_deny_and_accept_established_traffic() {
        let p = plan(&port(vec![rule("egress", "IPv4", None, None, None)]));
        for (chain, deny) in
            [(egress_chain(PORT), "default deny egress"), (ingress_chain(PORT), "default deny ingress")]
        {
            let rules = rules_in(&p, &chain);
            let last = rules.last().cloned().unwrap_or_default();
            assert_eq!(last, (deny.to_string(), json!([drop_()])));
            let invalid = rules.iter().position(|(c, _)| c == "conntrack invalid").unwrap_or(usize::MAX);
            let est = rules.iter().position(|(c, _)| c == "conntrack established, related").unwrap_or(usize::MAX);
            let first_sg = rules.iter().position(|(c, _)| c.starts_with(RULE_PREFIX)).unwrap_or(rules.len() - 1);
            assert!(invalid < est && est < first_sg, "{chain}: {rules:?}");
            assert_eq!(rules[invalid].1, json!([mark_has(MARK_INVALID), drop_()]));
            assert_eq!(rules[est].1, json!([mark_has(MARK_ESTABLISHED), ret()]));
        }
        // No ingress rule: nothing but the always-allowed, then deny.
        let ingress: Vec<String> = rules_in(&p, &ingress_chain(PORT)).into_iter().map(|(c, _)| c).collect();
        assert!(!ingress.iter().any(|c| c.starts_with(RULE_PREFIX)));
        assert!(ingress.contains(&"DHCP replies".to_string()));
        // Chains are flushed before refilled, and the maps point the tap at them.
        let flushed = p.commands.iter().filter(|c| c.pointer("/flush/chain").is_some()).count();
        assert_eq!(flushed, 3);
        for (map, chain) in
            [(SPOOF_MAP, spoof_chain(PORT)), (EGRESS_MAP, egress_chain(PORT)), (INGRESS_MAP, ingress_chain(PORT))]
        {
            let last =
                p.commands.iter().rev().find(|c| c.to_string().contains(&format!("\"name\":\"{map}\""))).cloned();
            assert_eq!(
                last.and_then(|c| c.get("add").cloned()).and_then(|a| a.pointer("/element/elem/0").cloned()),
                Some(json!(["tap11111111-22", {"jump": {"target": chain}}])),
                "{map}"
            );
        }
    }

    #[test]
    fn always_allowed_traffic() {
        let p = plan(&port(vec![]));
        let egress = rules_in(&p, &egress_chain(PORT));
        let find = |rules: &[(String, Value)], c: &str| {
            rules.iter().find(|(x, _)| x == c).map(|(_, e)| e.clone()).unwrap_or_default()
        };
        let dhcp = find(&egress, "DHCP client");
        assert!(has(&dhcp, eq(payload("udp", "sport"), 68)) && has(&dhcp, eq(payload("udp", "dport"), 67)));
        assert_eq!(dhcp.as_array().and_then(|a| a.last()), Some(&ret()));
        let nd = find(&egress, "neighbour discovery, MLD, router solicitation");
        assert!(has(&nd, eq(payload("icmpv6", "type"), json!({"set": [130, 131, 132, 133, 135, 136, 143]}))));
        let ingress = rules_in(&p, &ingress_chain(PORT));
        let dhcp = find(&ingress, "DHCP replies");
        assert!(has(&dhcp, eq(payload("udp", "sport"), 67)) && has(&dhcp, eq(payload("udp", "dport"), 68)));
        let nd = find(&ingress, "neighbour discovery, MLD query, router advertisements");
        assert!(has(&nd, eq(payload("icmpv6", "type"), json!({"set": [130, 134, 135, 136]}))));
        // ARP passes both stateful chains (it is checked in the spoof chain).
        assert_eq!(egress[0].1, json!([ne(meta("protocol"), json!({"set": ["ip", "ip6"]})), ret()]));
        assert_eq!(ingress[0].1, json!([ne(meta("protocol"), json!({"set": ["ip", "ip6"]})), ret()]));
    }

    #[test]
    fn anti_spoofing_binds_macs_to_addresses() {
        let mut p = port(vec![]);
        p.allowed_address_pairs = vec![
            json!({"ip_address": "198.18.9.0/24", "mac_address": "fa:16:3e:00:00:02"}),
            json!({"ip_address": "198.18.0.0/16"}),
            json!({"ip_address": "198.18.0.77"}),
        ];
        let plan = plan(&p);
        let spoof = rules_in(&plan, &spoof_chain(PORT));
        let get = |c: &str| spoof.iter().find(|(x, _)| x == c).map(|(_, e)| e.clone()).unwrap_or_default();

        assert_eq!(
            get(COMMENT_SPOOF_MAC),
            json!([ne(payload("ether", "saddr"), json!({"set": ["fa:16:3e:00:00:01", "fa:16:3e:00:00:02"]})), drop_()])
        );
        // The port's own MAC: its fixed IP and .77 fall inside the /16 pair.
        let v4 = get(COMMENT_SPOOF_V4);
        assert_eq!(
            v4[1],
            ne(
                json!({"concat": [payload("ether", "saddr"), payload("ip", "saddr")]}),
                json!({"set": [
                    {"concat": ["fa:16:3e:00:00:01", {"prefix": {"addr": "198.18.0.0", "len": 16}}]},
                    {"concat": ["fa:16:3e:00:00:02", {"prefix": {"addr": "198.18.9.0", "len": 24}}]},
                ]})
            )
        );
        // IPv6: the fixed address, and each MAC's EUI-64 link-local address.
        let v6 = get(COMMENT_SPOOF_V6).to_string();
        for a in ["2001:db8::5", "fe80::f816:3eff:fe00:1", "fe80::f816:3eff:fe00:2"] {
            assert!(v6.contains(&format!("\"{a}\"")), "{a} in {v6}");
        }
        // ARP: sender MAC and IP bound the same way, plus probes from 0.0.0.0.
        let arp = get("ARP from own addresses").to_string();
        assert!(arp.contains("\"saddr ether\"") && arp.contains("\"saddr ip\""));
        assert!(arp.contains(r#"{"concat":["fa:16:3e:00:00:02","0.0.0.0"]}"#), "{arp}");
        assert_eq!(get("anti-spoofing: ARP"), json!([eq(meta("protocol"), "arp"), drop_()]));
        // Order: MAC check, ethertypes, ARP, the DHCP discover (from 0.0.0.0)
        // before the IPv4 source check, DAD before the IPv6 one, then the
        // things a guest never sends.
        let order: Vec<&str> = spoof.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            order,
            [
                COMMENT_SPOOF_MAC,
                "only ARP, IPv4, IPv6",
                "ARP from own addresses",
                "anti-spoofing: ARP",
                "DHCP discover",
                COMMENT_SPOOF_V4,
                "DAD and MLD from ::",
                COMMENT_SPOOF_V6,
                "no DHCP server",
                "no DHCPv6 server",
                "no router advertisements",
            ]
        );
        let ra = get("no router advertisements");
        assert!(has(&ra, eq(payload("icmpv6", "type"), json!({"set": [134]}))));
        assert_eq!(ra.as_array().and_then(|a| a.last()), Some(&drop_()));
        // Conntrack cleanup covers single addresses, not the CIDRs.
        let addrs: Vec<String> = plan.addresses.iter().map(|a| a.to_string()).collect();
        assert_eq!(addrs, ["198.18.0.5", "198.18.0.77", "2001:db8::5"]);

        // Without IPv4 addresses, no IPv4 at all (but DHCP discover).
        let mut p6 = port(vec![]);
        p6.fixed_ips.remove(0);
        let spoof = rules_in(&plan_of(&p6), &spoof_chain(PORT));
        let v4 = spoof.iter().find(|(c, _)| c == COMMENT_SPOOF_V4).map(|(_, e)| e.clone());
        assert_eq!(v4, Some(json!([eq(meta("protocol"), "ip"), drop_()])));

        let mut bad = port(vec![]);
        bad.allowed_address_pairs = vec![json!({"ip_address": "x"})];
        assert!(port_plan("t", &bad, "tap1").is_err());
        bad.allowed_address_pairs = vec![json!({"ip_address": "198.18.0.1", "mac_address": "zz"})];
        assert!(port_plan("t", &bad, "tap1").is_err());
    }

    fn plan_of(p: &PortBound) -> PortPlan {
        plan(p)
    }

    #[test]
    fn an_administratively_down_port_passes_nothing() {
        let mut p = port(vec![rule("ingress", "IPv4", Some("tcp"), Some(22), Some(22))]);
        p.admin_state_up = false;
        p.port_security_enabled = false;
        let plan = port_plan("t", &p, "tapx").unwrap();
        let drops = plan.commands.iter().filter(|c| c.to_string().contains(COMMENT_ADMIN_DOWN)).count();
        assert_eq!(drops, 3, "{:?}", plan.commands);
        assert!(plan.commands.iter().all(|c| !c.to_string().contains("\"accept\"")));
        assert!(plan.secured, "the verdict maps point at the dropping chains");
        assert!(plan.rule_keys.is_empty(), "no rule admits anything: established flows are cut");
    }

    #[test]
    fn port_security_off_filters_nothing() {
        let mut p = port(vec![rule("ingress", "IPv4", Some("tcp"), Some(22), Some(22))]);
        p.port_security_enabled = false;
        let plan = plan(&p);
        assert!(!plan.secured);
        assert!(plan.rule_keys.is_empty());
        for chain in [spoof_chain(PORT), egress_chain(PORT), ingress_chain(PORT)] {
            assert_eq!(rules_in(&plan, &chain), vec![(COMMENT_DISABLED.to_string(), json!([ret()]))]);
        }
        // The tap leaves the maps (add then delete: whether or not it was there).
        for map in [SPOOF_MAP, EGRESS_MAP, INGRESS_MAP] {
            let last =
                plan.commands.iter().rev().find(|c| c.to_string().contains(&format!("\"name\":\"{map}\""))).cloned();
            assert_eq!(
                last.and_then(|c| c.pointer("/delete/element/elem").cloned()),
                Some(json!(["tap11111111-22"])),
                "{map}"
            );
        }
        // Its addresses are still known (turning security on cuts flows).
        assert_eq!(plan.addresses.len(), 2);
    }

    #[test]
    fn link_local_is_eui64() {
        assert_eq!(link_local("fa:16:3e:12:34:56"), "fe80::f816:3eff:fe12:3456".parse().ok());
        assert_eq!(link_local("02:00:00:00:00:01"), "fe80::ff:fe00:1".parse().ok());
        assert_eq!(parse_mac("FA-16-3E-12-34-56").as_deref(), Some("fa:16:3e:12:34:56"));
        assert_eq!(parse_mac("fa:16:3e:12:34"), None);
        assert!(is_link_local(&"fe80::1".parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))));
        assert!(!is_link_local(&"2001:db8::1".parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))));
    }

    #[test]
    fn base_chains_hook_where_the_design_says() {
        let cmds = base_commands("t");
        let chain = |family: &str, name: &str| {
            cmds.iter()
                .filter_map(|c| c.pointer("/add/chain"))
                .find(|c| c["family"] == family && c["name"] == name)
                .map(|c| (c["hook"].as_str().unwrap_or_default().to_string(), c["prio"].as_i64().unwrap_or_default()))
        };
        assert_eq!(chain("bridge", "prerouting"), Some(("prerouting".into(), -300)));
        assert_eq!(chain("bridge", "forward"), Some(("forward".into(), 100)));
        assert_eq!(chain("bridge", "input"), Some(("input".into(), 100)));
        assert_eq!(chain("bridge", "output"), Some(("output".into(), 100)));
        assert_eq!(chain("inet", "raw-prerouting"), Some(("prerouting".into(), -300)));
        assert_eq!(chain("inet", "raw-output"), Some(("output".into(), -300)));
        assert_eq!(chain("inet", "ct-prerouting"), Some(("prerouting".into(), -150)));
        assert_eq!(chain("inet", "ct-output"), Some(("output".into(), -150)));
        // Every base chain is flushed before its rules are written (idempotent).
        for name in ["prerouting", "forward", "input", "output", "raw-prerouting", "ct-prerouting"] {
            let flush = cmds.iter().position(|c| c.pointer("/flush/chain/name") == Some(&json!(name)));
            let rule = cmds.iter().position(|c| c.pointer("/add/rule/chain") == Some(&json!(name)));
            assert!(flush.is_some() && flush < rule, "{name}");
        }
        let s = serde_json::to_string(&cmds).unwrap_or_default();
        assert!(s.contains(
            r#"{"mangle":{"key":{"meta":{"key":"mark"}},"value":{"|":[{"meta":{"key":"mark"}},1073741824]}}}"#
        ));
        assert!(s.contains(r#""data":"@zones""#));
        let z = serde_json::to_string(&zone_commands("t", "brq1", 7)).unwrap_or_default();
        assert!(z.contains(r#"{"mangle":{"key":{"ct":{"key":"zone"}},"value":7}}"#), "{z}");
        assert!(z.contains(r#"["brq1",{"jump":{"target":"zone-7"}}]"#), "{z}");
    }

    /// What `nft -j list table` would show after `cmds` (enough of it).
    fn listing(cmds: &[Value]) -> (Value, Value) {
        let mut out: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut elems: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        for c in cmds {
            if let Some(ch) = c.pointer("/add/chain") {
                out.entry(if ch["family"] == "inet" { "inet" } else { "bridge" })
                    .or_default()
                    .push(json!({"chain": ch}));
            } else if let Some(r) = c.pointer("/add/rule") {
                out.entry(if r["family"] == "inet" { "inet" } else { "bridge" }).or_default().push(json!({"rule": r}));
            } else if let Some(e) = c.pointer("/add/element") {
                let k = (
                    e["family"].as_str().unwrap_or_default().to_string(),
                    e["name"].as_str().unwrap_or_default().to_string(),
                );
                let list = elems.entry(k).or_default();
                for x in e["elem"].as_array().into_iter().flatten() {
                    let key = x.get(0).unwrap_or(x).clone();
                    list.retain(|y| y.get(0).unwrap_or(y) != &key);
                    list.push(x.clone());
                }
            } else if let Some(e) = c.pointer("/delete/element") {
                let k = (
                    e["family"].as_str().unwrap_or_default().to_string(),
                    e["name"].as_str().unwrap_or_default().to_string(),
                );
                for x in e["elem"].as_array().into_iter().flatten() {
                    elems.entry(k.clone()).or_default().retain(|y| y.get(0).unwrap_or(y) != x);
                }
            } else if let Some(s) = c.pointer("/flush/set") {
                elems.remove(&("bridge".to_string(), s["name"].as_str().unwrap_or_default().to_string()));
            }
        }
        for ((family, name), list) in elems {
            let kind = if name.starts_with("sg-") { "set" } else { "map" };
            out.entry(if family == "inet" { "inet" } else { "bridge" })
                .or_default()
                .push(json!({kind: {"name": name, "elem": list}}));
        }
        let doc = |k: &str| json!({"nftables": out.get(k).cloned().unwrap_or_default()});
        (doc("bridge"), doc("inet"))
    }

    #[test]
    fn the_state_reads_back_what_the_plan_wrote() {
        let mut r = rule("ingress", "IPv4", Some("tcp"), Some(22), Some(22));
        r.remote_group_id = Some("grp".into());
        r.remote_group_ips = vec!["198.18.0.9".into(), "198.18.2.0/24".into()];
        let mut p = port(vec![r, rule("egress", "IPv4", None, None, None)]);
        p.allowed_address_pairs = vec![json!({"ip_address": "198.18.0.66"})];
        let plan = plan(&p);
        let mut cmds = base_commands("t");
        cmds.extend(zone_commands("t", "brq1", 3));
        cmds.extend(plan.commands.clone());
        let mut off = port(vec![]);
        off.port_id = "other".into();
        off.port_security_enabled = false;
        cmds.extend(port_plan("t", &off, "tapother").unwrap_or_else(|e| panic!("{e:#}")).commands);

        let (bridge, inet) = listing(&cmds);
        let st = parse_state(&bridge, &inet);
        let memo = &st.ports[PORT];
        assert_eq!(memo.tap.as_deref(), Some("tap11111111-22"));
        assert!(memo.secured);
        assert_eq!(memo.rule_keys, plan.rule_keys);
        assert_eq!(memo.addresses, plan.addresses);
        assert_eq!(memo.sets, BTreeSet::from(["sg-grp-v4".to_string()]));
        assert_eq!(st.sets["sg-grp-v4"], plan.sets["sg-grp-v4"]);
        assert_eq!(st.zones, BTreeMap::from([("brq1".to_string(), 3)]));
        let other = &st.ports["other"];
        assert!(!other.secured);
        assert_eq!(other.tap, None);
        assert_eq!(st.ports.len(), 2);

        // Removing the rule is a shrink: the keys say so.
        let smaller = port_plan("t", &port(vec![rule("egress", "IPv4", None, None, None)]), "tap11111111-22")
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(!memo.rule_keys.is_subset(&smaller.rule_keys));
        assert!(smaller.rule_keys.is_subset(&memo.rule_keys));
    }

    #[test]
    fn zones_are_allocated_lowest_first() {
        let mut z = BTreeMap::new();
        assert_eq!(free_zone(&z), Some(1));
        z.insert("a".to_string(), 1);
        z.insert("b".to_string(), 3);
        assert_eq!(free_zone(&z), Some(2));
    }
}
