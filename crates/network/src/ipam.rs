//! IP address management as pure arithmetic (no HTTP, no SQL), following
//! Neutron's `neutron/ipam/utils.py` and `db_base_plugin_v2.py`: CIDR
//! validation, the default gateway and allocation pools of a subnet, pool
//! validation, the next free address of a pool, EUI-64 addresses of SLAAC
//! subnets, prefixes carved out of subnet pools, and port MAC addresses.
//!
//! Addresses are handled as `u128` (IPv4 in the low 32 bits) so that one code
//! path serves both versions.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::error::{NetworkError, Result, bad_kind, invalid};

/// IPv6 address modes (`ipv6_ra_mode`, `ipv6_address_mode`).
pub const IPV6_MODES: &[&str] = &["slaac", "dhcpv6-stateful", "dhcpv6-stateless"];

pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

pub fn from_u128(v: u128, version: u8) -> IpAddr {
    if version == 4 { IpAddr::V4(Ipv4Addr::from(v as u32)) } else { IpAddr::V6(Ipv6Addr::from(v)) }
}

pub fn version(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() { 4 } else { 6 }
}

pub fn net_version(n: &IpNet) -> u8 {
    if matches!(n, IpNet::V4(_)) { 4 } else { 6 }
}

/// First and last address of a network as integers.
pub fn bounds(n: &IpNet) -> (u128, u128) {
    (to_u128(n.network()), to_u128(n.broadcast()))
}

/// A `cidr` attribute of `ip_version`, as Neutron's `validate_subnet` reads
/// it: a prefix length is required and an IPv4 CIDR must be written in its
/// canonical form (`10.0.0.0/8`, not `10/8` or `10.0.0.0/08`); host bits may
/// be set (`10.99.99.0/16`). Returns the network (`10.99.0.0/16`), as
/// Neutron stores it.
pub fn parse_cidr(attr: &str, s: &str, ip_version: u8) -> Result<IpNet> {
    let invalid_subnet = || invalid(attr, format!("'{s}' is not a valid IP subnet"));
    let n: IpNet = s.parse().map_err(|_| invalid_subnet())?;
    if let IpNet::V4(v4) = &n
        && format!("{}/{}", v4.addr(), v4.prefix_len()) != s
    {
        return Err(invalid_subnet());
    }
    if net_version(&n) != ip_version {
        return Err(NetworkError::Client(
            axum::http::StatusCode::BAD_REQUEST,
            "InvalidInput",
            format!("Invalid input for operation: Cidr {s} does not match the IP version {ip_version}."),
        ));
    }
    Ok(n.trunc())
}

/// An IP address attribute of the given version (any version when `None`).
pub fn parse_ip(attr: &str, s: &str, ip_version: Option<u8>) -> Result<IpAddr> {
    let ip: IpAddr = s.trim().parse().map_err(|_| invalid(attr, format!("'{s}' is not a valid IP address")))?;
    if let Some(v) = ip_version
        && version(&ip) != v
    {
        return Err(invalid(attr, format!("'{s}' is not a valid IPv{v} address")));
    }
    Ok(ip)
}

/// Neutron's default gateway: the first address after the network address.
pub fn default_gateway(n: &IpNet) -> Option<IpAddr> {
    let (first, last) = bounds(n);
    (last > first).then(|| from_u128(first + 1, net_version(n)))
}

/// An inclusive range of addresses (an allocation pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub start: u128,
    pub end: u128,
}

impl Range {
    pub fn len(&self) -> u128 {
        self.end - self.start + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn contains(&self, v: u128) -> bool {
        self.start <= v && v <= self.end
    }
}

/// Neutron's default pools: the CIDR without the network address, the IPv4
/// broadcast address and the gateway.
pub fn default_pools(n: &IpNet, gateway: Option<IpAddr>) -> Vec<Range> {
    let (first, last) = bounds(n);
    if first == last {
        return vec![Range { start: first, end: last }];
    }
    let start = first + 1;
    let end = if net_version(n) == 4 { last - 1 } else { last };
    if start >= end {
        return Vec::new();
    }
    match gateway.map(to_u128) {
        Some(g) if g >= start && g <= end => {
            let mut out = Vec::new();
            if g > start {
                out.push(Range { start, end: g - 1 });
            }
            if g < end {
                out.push(Range { start: g + 1, end });
            }
            out
        }
        _ => vec![Range { start, end }],
    }
}

/// Validate requested pools against the subnet: well formed, inside the CIDR
/// (IPv4: not the network or broadcast address), not overlapping each other,
/// and not holding the gateway.
pub fn validate_pools(n: &IpNet, pools: &[Range], gateway: Option<IpAddr>) -> Result<()> {
    let (first, last) = bounds(n);
    let v4 = net_version(n) == 4;
    for p in pools {
        if p.start > p.end {
            return Err(bad_kind(
                "InvalidAllocationPool",
                format!("The allocation pool {} is not valid.", show_range(p, net_version(n))),
            ));
        }
        if p.start < first || p.end > last || (v4 && last > first + 1 && (p.start == first || p.end == last)) {
            return Err(bad_kind(
                "OutOfBoundsAllocationPool",
                format!("The allocation pool {} spans beyond the subnet cidr {n}.", show_range(p, net_version(n))),
            ));
        }
    }
    let mut sorted = pools.to_vec();
    sorted.sort();
    for w in sorted.windows(2) {
        if w[1].start <= w[0].end {
            return Err(bad_kind(
                "OverlappingAllocationPools",
                format!(
                    "Found overlapping allocation pools: {} and {} for subnet {n}.",
                    show_range(&w[0], net_version(n)),
                    show_range(&w[1], net_version(n))
                ),
            ));
        }
    }
    if let Some(g) = gateway
        && let Some(p) = pools.iter().find(|p| p.contains(to_u128(g)))
    {
        return Err(bad_kind(
            "GatewayConflictWithAllocationPools",
            format!("Gateway ip {g} conflicts with allocation pool {}", show_range(p, net_version(n))),
        ));
    }
    Ok(())
}

pub fn show_range(r: &Range, version: u8) -> String {
    format!("{}-{}", from_u128(r.start, version), from_u128(r.end, version))
}

/// The lowest address of the pools (in pool order) not in `taken`.
pub fn next_free(pools: &[Range], taken: &BTreeSet<u128>) -> Option<u128> {
    for p in pools {
        let mut v = p.start;
        for t in taken.range(p.start..=p.end) {
            if *t > v {
                break;
            }
            v = t + 1;
        }
        if v <= p.end {
            return Some(v);
        }
    }
    None
}

/// `n` addresses drawn at random from the pools (each address equally
/// likely), for allocation by probing: on a big subnet a random address is
/// almost always free, found with one indexed lookup instead of reading every
/// allocation, and racing creates rarely pick the same one (Neutron's IPAM
/// also picks at random among free addresses).
pub fn random_candidates(pools: &[Range], n: usize, mut rand_below: impl FnMut(u128) -> u128) -> Vec<u128> {
    let total = pool_size(pools);
    if total == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut k = rand_below(total);
        for p in pools {
            if k < p.len() {
                out.push(p.start + k);
                break;
            }
            k -= p.len();
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// How many addresses the pools hold.
pub fn pool_size(pools: &[Range]) -> u128 {
    pools.iter().map(Range::len).sum()
}

/// Do two networks share any address?
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// A MAC address `aa:bb:cc:dd:ee:ff` (lowercase), 400 otherwise.
pub fn parse_mac(attr: &str, s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let mut out = [0u8; 6];
    if parts.len() != 6 {
        return Err(invalid(attr, format!("'{s}' is not a valid MAC address")));
    }
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(invalid(attr, format!("'{s}' is not a valid MAC address")));
        }
        out[i] = u8::from_str_radix(p, 16).map_err(|_| invalid(attr, format!("'{s}' is not a valid MAC address")))?;
    }
    // Neutron refuses multicast and all-zero addresses for ports
    if out[0] & 1 == 1 || out == [0; 6] {
        return Err(invalid(attr, format!("'{s}' is not a valid MAC address")));
    }
    Ok(out)
}

pub fn show_mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A port MAC: the first three bytes of `base` (`fa:16:3e:00:00:00`), the rest from `random`.
pub fn mac_from_base(base: &str, random: [u8; 3]) -> [u8; 6] {
    let b = parse_mac("base_mac", base).unwrap_or([0xfa, 0x16, 0x3e, 0, 0, 0]);
    [b[0], b[1], b[2], random[0], random[1], random[2]]
}

/// The SLAAC address of a MAC in a /64: the prefix and the modified EUI-64
/// interface identifier (`ff:fe` in the middle, universal/local bit flipped).
pub fn eui64(prefix: &IpNet, mac: &[u8; 6]) -> Option<IpAddr> {
    let IpNet::V6(p) = prefix else { return None };
    let iid: u64 = u64::from_be_bytes([mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]]);
    let net = u128::from(p.network()) & !u128::from(u64::MAX);
    Some(IpAddr::V6(Ipv6Addr::from(net | u128::from(iid))))
}

/// Is this an IPv6 subnet whose addresses hosts make themselves (SLAAC or
/// DHCPv6-stateless)? Such subnets get EUI-64 addresses, never pool addresses.
pub fn is_auto_address(ip_version: u8, address_mode: &str) -> bool {
    ip_version == 6 && (address_mode == "slaac" || address_mode == "dhcpv6-stateless")
}

/// Neutron's rules for `ipv6_ra_mode`/`ipv6_address_mode` (empty: unset).
pub fn validate_ipv6_modes(ip_version: u8, cidr: &IpNet, ra: &str, addr: &str) -> Result<()> {
    for (attr, m) in [("ipv6_ra_mode", ra), ("ipv6_address_mode", addr)] {
        if !m.is_empty() && !IPV6_MODES.contains(&m) {
            return Err(invalid(attr, format!("'{m}' is not in {IPV6_MODES:?}")));
        }
    }
    if ip_version == 4 {
        if !ra.is_empty() || !addr.is_empty() {
            return Err(bad_kind(
                "InvalidInput",
                "Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False or ip_version is 4.",
            ));
        }
        return Ok(());
    }
    if !ra.is_empty() && !addr.is_empty() && ra != addr {
        return Err(bad_kind(
            "InvalidInput",
            format!(
                "Invalid input for operation: ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{addr}' is not valid. If both attributes are set, they must be the same value."
            ),
        ));
    }
    let auto = is_auto_address(6, addr) || (addr.is_empty() && is_auto_address(6, ra));
    if auto && cidr.prefix_len() != 64 {
        return Err(bad_kind(
            "InvalidInput",
            format!(
                "Invalid input for operation: Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64."
            ),
        ));
    }
    Ok(())
}

/// The first free prefix of `prefixlen` inside `prefixes` that overlaps none
/// of `used` (a subnet pool's allocation).
pub fn carve(prefixes: &[IpNet], used: &[IpNet], prefixlen: u8) -> Option<IpNet> {
    for p in prefixes {
        if prefixlen < p.prefix_len() || prefixlen > p.max_prefix_len() {
            continue;
        }
        let version = net_version(p);
        let bits = u32::from(p.max_prefix_len());
        let size: u128 = 1u128.checked_shl(bits - u32::from(prefixlen)).unwrap_or(0);
        let (first, last) = bounds(p);
        let mut cand = first;
        'search: loop {
            if size != 0 && cand.checked_add(size - 1).is_none_or(|e| e > last) {
                break;
            }
            let cand_end = if size == 0 { u128::MAX } else { cand + size - 1 };
            for u in used.iter().filter(|u| net_version(u) == version) {
                let (uf, ul) = bounds(u);
                if uf <= cand_end && cand <= ul {
                    // jump past the used block, aligned to the prefix size
                    let next = ul.checked_add(1);
                    match next {
                        Some(n) if size != 0 => {
                            cand = n.div_ceil(size) * size;
                            continue 'search;
                        }
                        _ => break 'search,
                    }
                }
            }
            return IpNet::new(from_u128(cand, version), prefixlen).ok();
        }
    }
    None
}

#[cfg(test)]
mod random_tests {
    use super::*;

    #[test]
    fn random_candidates_stay_in_the_pools() {
        let pools = vec![Range { start: 10, end: 12 }, Range { start: 100, end: 101 }];
        let mut next = 0u128;
        let c = random_candidates(&pools, 5, |total| {
            next += 1;
            (next - 1) % total
        });
        assert_eq!(c, vec![10, 11, 12, 100, 101]);
        let mut r = 7u128;
        for v in random_candidates(&pools, 50, |total| {
            r = (r * 31 + 11) % 1000;
            r % total
        }) {
            assert!(pools.iter().any(|p| p.contains(v)), "{v}");
        }
        assert!(random_candidates(&[], 3, |_| 0).is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> u128 {
        to_u128(s.parse().unwrap())
    }

    #[test]
    fn cidrs_are_validated() {
        assert_eq!(parse_cidr("cidr", "10.0.0.0/24", 4).unwrap(), net("10.0.0.0/24"));
        // host bits set: the network address, as Neutron stores it
        assert_eq!(parse_cidr("cidr", "10.99.99.0/16", 4).unwrap(), net("10.99.0.0/16"));
        assert_eq!(parse_cidr("cidr", "10.0.0.1/24", 4).unwrap(), net("10.0.0.0/24"));
        // not in canonical form, or no prefix length: refused
        assert!(parse_cidr("cidr", "10.0.0.0/024", 4).is_err());
        assert!(parse_cidr("cidr", "10.0.0.0", 4).is_err());
        assert!(parse_cidr("cidr", " 10.0.0.0/24", 4).is_err());
        assert_eq!(parse_cidr("cidr", "2001:db8::1/64", 6).unwrap().to_string(), "2001:db8::/64");
        assert!(parse_cidr("cidr", "10.0.0.0/33", 4).is_err());
        assert!(parse_cidr("cidr", "2001:db8::/64", 4).is_err());
        assert_eq!(parse_cidr("cidr", "2001:DB8::/64", 6).unwrap().to_string(), "2001:db8::/64");
    }

    #[test]
    fn default_gateway_and_pools() {
        let n = net("10.0.0.0/24");
        let g = default_gateway(&n);
        assert_eq!(g, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(default_pools(&n, g), vec![Range { start: ip("10.0.0.2"), end: ip("10.0.0.254") }]);
        assert_eq!(
            default_pools(&n, Some("10.0.0.100".parse().unwrap())),
            vec![
                Range { start: ip("10.0.0.1"), end: ip("10.0.0.99") },
                Range { start: ip("10.0.0.101"), end: ip("10.0.0.254") }
            ]
        );
        assert_eq!(default_pools(&n, None), vec![Range { start: ip("10.0.0.1"), end: ip("10.0.0.254") }]);
        assert!(default_pools(&net("10.0.0.0/31"), None).is_empty());
        let v6 = net("2001:db8::/64");
        let p = default_pools(&v6, default_gateway(&v6));
        assert_eq!(p[0].start, ip("2001:db8::2"));
        assert_eq!(p[0].end, ip("2001:db8::ffff:ffff:ffff:ffff"));
    }

    #[test]
    fn pools_are_validated() {
        let n = net("10.0.0.0/24");
        let r = |a: &str, b: &str| Range { start: ip(a), end: ip(b) };
        let g = Some("10.0.0.1".parse().unwrap());
        assert!(validate_pools(&n, &[r("10.0.0.10", "10.0.0.20")], g).is_ok());
        let kind = |e: NetworkError| match e {
            NetworkError::Client(_, k, _) => k,
            _ => "",
        };
        assert_eq!(kind(validate_pools(&n, &[r("10.0.0.20", "10.0.0.10")], g).unwrap_err()), "InvalidAllocationPool");
        assert_eq!(
            kind(validate_pools(&n, &[r("10.0.0.10", "10.0.1.20")], g).unwrap_err()),
            "OutOfBoundsAllocationPool"
        );
        assert_eq!(
            kind(validate_pools(&n, &[r("10.0.0.10", "10.0.0.255")], g).unwrap_err()),
            "OutOfBoundsAllocationPool"
        );
        assert_eq!(
            kind(validate_pools(&n, &[r("10.0.0.10", "10.0.0.20"), r("10.0.0.20", "10.0.0.30")], g).unwrap_err()),
            "OverlappingAllocationPools"
        );
        assert_eq!(
            kind(validate_pools(&n, &[r("10.0.0.1", "10.0.0.20")], g).unwrap_err()),
            "GatewayConflictWithAllocationPools"
        );
    }

    #[test]
    fn next_free_skips_taken() {
        let pools = [Range { start: 10, end: 12 }, Range { start: 20, end: 21 }];
        let mut taken = BTreeSet::new();
        assert_eq!(next_free(&pools, &taken), Some(10));
        taken.extend([10, 11, 5]);
        assert_eq!(next_free(&pools, &taken), Some(12));
        taken.extend([12, 20]);
        assert_eq!(next_free(&pools, &taken), Some(21));
        taken.insert(21);
        assert_eq!(next_free(&pools, &taken), None);
        assert_eq!(pool_size(&pools), 5);
    }

    #[test]
    fn eui64_from_mac() {
        let mac = parse_mac("mac", "fa:16:3e:12:34:56").unwrap();
        assert_eq!(eui64(&net("2001:db8::/64"), &mac), Some("2001:db8::f816:3eff:fe12:3456".parse().unwrap()));
        assert!(parse_mac("mac", "01:00:00:00:00:00").is_err());
        assert!(parse_mac("mac", "zz:00:00:00:00:00").is_err());
        assert_eq!(show_mac(&mac_from_base("fa:16:3e:00:00:00", [1, 2, 3])), "fa:16:3e:01:02:03");
    }

    #[test]
    fn ipv6_modes() {
        let n64 = net("2001:db8::/64");
        let n48 = net("2001:db8::/48");
        assert!(validate_ipv6_modes(6, &n64, "slaac", "slaac").is_ok());
        assert!(validate_ipv6_modes(6, &n64, "slaac", "dhcpv6-stateful").is_err());
        assert!(validate_ipv6_modes(6, &n48, "", "slaac").is_err());
        assert!(validate_ipv6_modes(6, &n48, "", "dhcpv6-stateful").is_ok());
        assert!(validate_ipv6_modes(6, &n64, "", "bogus").is_err());
        assert!(validate_ipv6_modes(4, &net("10.0.0.0/24"), "slaac", "").is_err());
    }

    #[test]
    fn carve_finds_free_prefixes() {
        let prefixes = [net("10.10.0.0/16")];
        assert_eq!(carve(&prefixes, &[], 24), Some(net("10.10.0.0/24")));
        assert_eq!(carve(&prefixes, &[net("10.10.0.0/24")], 24), Some(net("10.10.1.0/24")));
        assert_eq!(carve(&prefixes, &[net("10.10.0.0/25")], 24), Some(net("10.10.1.0/24")));
        assert_eq!(carve(&prefixes, &[net("10.10.0.0/16")], 24), None);
        assert_eq!(carve(&prefixes, &[], 8), None);
        assert_eq!(carve(&[net("2001:db8::/32")], &[net("2001:db8::/64")], 64), Some(net("2001:db8:0:1::/64")));
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.1.0.0/16")));
        assert!(!overlaps(&net("10.0.0.0/16"), &net("10.1.0.0/16")));
    }
}
