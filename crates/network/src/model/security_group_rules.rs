//! Security group rules as Neutron validates them (`securitygroups_db.py`):
//! direction and ethertype, protocol names and numbers (IPv6 ICMP spelled
//! `ipv6-icmp`), port ranges (ports for TCP/UDP/UDPLite/SCTP/DCCP, type and
//! code for ICMP), remote prefixes (as CIDRs, with their normalized network)
//! and the duplicate check.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::error::{NetworkError, Result, bad_kind, invalid};
use crate::model;

/// Neutron's protocol names and their IP protocol numbers.
pub const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// Protocols whose rules take a port range.
const PORT_PROTOCOLS: &[u8] = &[6, 17, 33, 132, 136];
/// Protocols that exist only over IPv6.
const IPV6_ONLY: &[u8] = &[41, 43, 44, 58, 59, 60];

/// A rule as the caller described it, validated and normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub security_group_id: String,
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub normalized_cidr: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: String,
}

/// Attributes a rule create may carry.
pub const CREATE_ATTRS: &[&str] = &[
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "description",
    "project_id",
    "tenant_id",
];

/// The protocol number of a stored or given protocol (a name or a number).
pub fn protocol_number(p: &str) -> Option<u8> {
    PROTOCOLS.iter().find(|(n, _)| *n == p).map(|(_, n)| *n).or_else(|| p.parse().ok())
}

fn protocol_error(p: &str) -> NetworkError {
    let names: Vec<&str> = PROTOCOLS.iter().map(|(n, _)| *n).collect();
    bad_kind(
        "SecurityGroupRuleInvalidProtocol",
        format!(
            "Security group rule protocol {p} not supported. Only protocol values [None, {}] and integer representations [0 to 255] are supported.",
            names.join(", ")
        ),
    )
}

/// Neutron's protocol conversion: a known name (any case), a number 0-255
/// (kept as its decimal string), or null / `any` for every protocol.
pub fn convert_protocol(v: &Value) -> Result<Option<String>> {
    let s = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        other => return Err(protocol_error(&other.to_string())),
    };
    if s.eq_ignore_ascii_case("any") {
        return Ok(None);
    }
    if let Ok(n) = s.parse::<i64>() {
        return if (0..=255).contains(&n) { Ok(Some(n.to_string())) } else { Err(protocol_error(&s)) };
    }
    let l = s.to_ascii_lowercase();
    if PROTOCOLS.iter().any(|(n, _)| *n == l) { Ok(Some(l)) } else { Err(protocol_error(&s)) }
}

fn port_value(attr: &str, v: &Value) -> Result<Option<i64>> {
    if v.is_null() {
        return Ok(None);
    }
    let n = model::integer(attr, v)?;
    if !(0..=65535).contains(&n) {
        return Err(bad_kind("SecurityGroupInvalidPortValue", format!("Invalid value for port {n}")));
    }
    Ok(Some(n))
}

/// A remote prefix as a CIDR (`10.0.0.1` -> `10.0.0.1/32`) and its network.
pub fn convert_prefix(v: &str) -> Result<IpNet> {
    let v = v.trim();
    if let Ok(n) = v.parse::<IpNet>() {
        return Ok(n);
    }
    match v.parse::<IpAddr>() {
        Ok(a) => Ok(IpNet::from(a)),
        Err(_) => Err(invalid("remote_ip_prefix", format!("'{v}' is not a valid IP subnet"))),
    }
}

/// Validate and normalise a create body (`security_group_rule`).
pub fn from_body(obj: &Map<String, Value>) -> Result<RuleSpec> {
    model::only(obj, CREATE_ATTRS)?;
    let sg = obj
        .get("security_group_id")
        .ok_or_else(|| invalid("security_group_id", "'security_group_id' is a required attribute"))?;
    let security_group_id = model::uuid("security_group_id", sg)?;
    let direction = match obj.get("direction") {
        Some(Value::String(d)) if d == "ingress" || d == "egress" => d.clone(),
        Some(other) => {
            let shown = other.as_str().map(str::to_string).unwrap_or_else(|| other.to_string());
            return Err(invalid("direction", format!("{shown} is not in ['ingress', 'egress']")));
        }
        None => return Err(invalid("direction", "'direction' is a required attribute")),
    };
    let ethertype = match obj.get("ethertype") {
        None | Some(Value::Null) => "IPv4".to_string(),
        Some(Value::String(e)) if e.eq_ignore_ascii_case("ipv4") => "IPv4".to_string(),
        Some(Value::String(e)) if e.eq_ignore_ascii_case("ipv6") => "IPv6".to_string(),
        Some(other) => {
            let shown = other.as_str().map(str::to_string).unwrap_or_else(|| other.to_string());
            return Err(bad_kind(
                "SecurityGroupRuleInvalidEtherType",
                format!(
                    "Security group rule for ethertype '{shown}' not supported. Allowed values are ['IPv4', 'IPv6']."
                ),
            ));
        }
    };
    let mut protocol = match obj.get("protocol") {
        Some(v) => convert_protocol(v)?,
        None => None,
    };
    // Neutron's canonical IPv6 ICMP name
    if ethertype == "IPv6" && matches!(protocol.as_deref(), Some("icmp") | Some("icmpv6")) {
        protocol = Some("ipv6-icmp".into());
    }
    let port_range_min = match obj.get("port_range_min") {
        Some(v) => port_value("port_range_min", v)?,
        None => None,
    };
    let port_range_max = match obj.get("port_range_max") {
        Some(v) => port_value("port_range_max", v)?,
        None => None,
    };
    check_ports(protocol.as_deref(), port_range_min, port_range_max)?;
    let (remote_ip_prefix, normalized_cidr) = match obj.get("remote_ip_prefix") {
        None | Some(Value::Null) => (None, None),
        Some(Value::String(s)) => {
            let net = convert_prefix(s)?;
            let family_ok = matches!((&net, ethertype.as_str()), (IpNet::V4(_), "IPv4") | (IpNet::V6(_), "IPv6"));
            if !family_ok {
                return Err(bad_kind(
                    "SecurityGroupRuleParameterConflict",
                    format!("Conflicting value ethertype {ethertype} for CIDR {net}"),
                ));
            }
            (Some(net.to_string()), Some(net.trunc().to_string()))
        }
        Some(other) => return Err(invalid("remote_ip_prefix", format!("'{other}' is not a valid IP subnet"))),
    };
    if let Some(p) = protocol.as_deref()
        && ethertype == "IPv4"
        && protocol_number(p).is_some_and(|n| IPV6_ONLY.contains(&n))
    {
        return Err(bad_kind(
            "SecurityGroupEthertypeConflictWithProtocol",
            format!("Invalid ethertype {ethertype} for protocol {p}."),
        ));
    }
    let remote_group_id = match obj.get("remote_group_id") {
        None | Some(Value::Null) => None,
        // Neutron does not validate it as a UUID: an unknown id (of any
        // form) is a SecurityGroupNotFound (404) at the lookup.
        Some(v) => Some(model::string("remote_group_id", v, 255)?),
    };
    if remote_group_id.is_some() && remote_ip_prefix.is_some() {
        return Err(bad_kind(
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            "Only remote_ip_prefix or remote_group_id may be provided.",
        ));
    }
    match obj.get("remote_address_group_id") {
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(invalid("remote_address_group_id", "remote address groups are not supported"));
        }
    }
    let description = match obj.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(v) => model::string("description", v, 255)?,
    };
    Ok(RuleSpec {
        security_group_id,
        direction,
        ethertype,
        protocol,
        port_range_min,
        port_range_max,
        remote_ip_prefix,
        normalized_cidr,
        remote_group_id,
        description,
    })
}

/// Neutron's `_validate_port_range`.
pub fn check_ports(protocol: Option<&str>, min: Option<i64>, max: Option<i64>) -> Result<()> {
    if min.is_none() && max.is_none() {
        return Ok(());
    }
    let Some(p) = protocol else {
        return Err(bad_kind(
            "SecurityGroupProtocolRequiredWithPorts",
            "Must also specify protocol if port range is given.",
        ));
    };
    let num = protocol_number(p);
    if num.is_some_and(|n| PORT_PROTOCOLS.contains(&n)) {
        if min == Some(0) || max == Some(0) {
            return Err(bad_kind("SecurityGroupInvalidPortValue", "Invalid value for port 0"));
        }
        return match (min, max) {
            (Some(a), Some(b)) if a <= b => Ok(()),
            _ => Err(bad_kind(
                "SecurityGroupInvalidPortRange",
                "For TCP/UDP protocols, port_range_min must be <= port_range_max",
            )),
        };
    }
    if matches!(num, Some(1) | Some(58)) {
        for (attr, field, v) in [("port_range_min", "type", min), ("port_range_max", "code", max)] {
            if let Some(v) = v
                && !(0..=255).contains(&v)
            {
                return Err(bad_kind(
                    "SecurityGroupInvalidIcmpValue",
                    format!("Invalid value for ICMP {field} ({attr}) {v}. It must be 0 to 255."),
                ));
            }
        }
        if min.is_none()
            && let Some(v) = max
        {
            return Err(bad_kind(
                "SecurityGroupMissingIcmpType",
                format!("ICMP code (port-range-max) {v} is provided but ICMP type (port-range-min) is missing."),
            ));
        }
        return Ok(());
    }
    Err(bad_kind(
        "SecurityGroupInvalidProtocolForPortRange",
        format!("Invalid protocol {p} for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP."),
    ))
}

/// What makes two rules of a group the same: direction, ethertype, protocol
/// number, port range, remote prefix, remote group.
pub type RuleKey = (String, String, Option<u8>, Option<i64>, Option<i64>, Option<String>, Option<String>);

/// The identity of a rule for the duplicate check: names and numbers of a
/// protocol are the same, and "anywhere" is the same as no prefix.
#[allow(clippy::too_many_arguments)]
pub fn rule_key(
    direction: &str,
    ethertype: &str,
    protocol: Option<&str>,
    min: Option<i64>,
    max: Option<i64>,
    normalized_cidr: Option<&str>,
    remote_group_id: Option<&str>,
) -> RuleKey {
    let cidr = normalized_cidr.filter(|c| *c != "0.0.0.0/0" && *c != "::/0").map(str::to_string);
    (
        direction.to_string(),
        ethertype.to_string(),
        protocol.and_then(protocol_number),
        min,
        max,
        cidr,
        remote_group_id.map(str::to_string),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SG: &str = "8b1f3a5e-0000-4000-8000-000000000001";

    fn spec(extra: Value) -> Result<RuleSpec> {
        let mut o = json!({"security_group_id": SG, "direction": "ingress"});
        for (k, v) in extra.as_object().unwrap() {
            o[k] = v.clone();
        }
        from_body(o.as_object().unwrap())
    }

    #[test]
    fn normalises() {
        let r = spec(
            json!({"protocol": "TCP", "port_range_min": 22, "port_range_max": "22", "remote_ip_prefix": "10.0.0.5/24"}),
        )
        .unwrap();
        assert_eq!(r.protocol.as_deref(), Some("tcp"));
        assert_eq!(r.ethertype, "IPv4");
        assert_eq!(r.remote_ip_prefix.as_deref(), Some("10.0.0.5/24"));
        assert_eq!(r.normalized_cidr.as_deref(), Some("10.0.0.0/24"));
        let r = spec(json!({"ethertype": "ipv6", "protocol": "icmp", "remote_ip_prefix": "2001:db8::1"})).unwrap();
        assert_eq!(r.protocol.as_deref(), Some("ipv6-icmp"));
        assert_eq!(r.ethertype, "IPv6");
        assert_eq!(r.remote_ip_prefix.as_deref(), Some("2001:db8::1/128"));
        assert_eq!(spec(json!({"protocol": 47})).unwrap().protocol.as_deref(), Some("47"));
        assert_eq!(spec(json!({"protocol": "any"})).unwrap().protocol, None);
        assert!(spec(json!({"protocol": "icmp", "port_range_min": 8, "port_range_max": 0})).is_ok());
    }

    #[test]
    fn rejects() {
        for (extra, kind) in [
            (json!({"direction": "sideways"}), "HTTPBadRequest"),
            (json!({"ethertype": "IPv5"}), "SecurityGroupRuleInvalidEtherType"),
            (json!({"protocol": "nope"}), "SecurityGroupRuleInvalidProtocol"),
            (json!({"protocol": 256}), "SecurityGroupRuleInvalidProtocol"),
            (json!({"port_range_min": 1, "port_range_max": 2}), "SecurityGroupProtocolRequiredWithPorts"),
            (json!({"protocol": "tcp", "port_range_min": 20, "port_range_max": 10}), "SecurityGroupInvalidPortRange"),
            (json!({"protocol": "tcp", "port_range_min": 0, "port_range_max": 10}), "SecurityGroupInvalidPortValue"),
            (json!({"protocol": "tcp", "port_range_min": 70000}), "SecurityGroupInvalidPortValue"),
            (json!({"protocol": "icmp", "port_range_min": 256}), "SecurityGroupInvalidIcmpValue"),
            (json!({"protocol": "icmp", "port_range_max": 1}), "SecurityGroupMissingIcmpType"),
            (
                json!({"protocol": "gre", "port_range_min": 1, "port_range_max": 1}),
                "SecurityGroupInvalidProtocolForPortRange",
            ),
            (json!({"remote_ip_prefix": "::/0"}), "SecurityGroupRuleParameterConflict"),
            (json!({"remote_ip_prefix": "10.0.0.0/33"}), "HTTPBadRequest"),
            (json!({"protocol": "ipv6-icmp"}), "SecurityGroupEthertypeConflictWithProtocol"),
            (
                json!({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": SG}),
                "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            ),
            (json!({"remote_group_id": 7}), "HTTPBadRequest"),
            (json!({"bogus": 1}), "HTTPBadRequest"),
        ] {
            match spec(extra.clone()) {
                Err(NetworkError::Client(s, k, _)) => {
                    assert_eq!(s.as_u16(), 400, "{extra}");
                    assert_eq!(k, kind, "{extra}");
                }
                other => panic!("{extra}: {other:?}"),
            }
        }
    }

    #[test]
    fn duplicate_keys() {
        assert_eq!(
            rule_key("ingress", "IPv4", Some("tcp"), Some(1), Some(2), Some("0.0.0.0/0"), None),
            rule_key("ingress", "IPv4", Some("6"), Some(1), Some(2), None, None)
        );
    }
}
