//! DHCP for one network: dnsmasq in the network's `qdhcp-<network>`
//! namespace, on the host's DHCP port, with static leases from the ports
//! (MAC, address, host name) and per-subnet options (gateway, DNS servers,
//! host routes, MTU, the metadata route); supervised (restarted when it
//! dies) and told of port changes by SIGHUP (it rereads its host and option
//! files without restarting).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use stratus_network::rpc::{NetworkInfo, NetworkPort, SubnetInfo};

use crate::supervise::{Supervised, signal};

/// The metadata service's address, answered in DHCP and router namespaces.
pub const METADATA_IP: &str = "169.254.169.254";

/// A supervised dnsmasq (dropped, it stops).
pub struct Dnsmasq {
    pub dir: PathBuf,
    process: Supervised,
    /// The host file's lines as last written.
    hosts: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// The files of a network's dnsmasq under `dir`.
fn hosts_file(dir: &Path) -> PathBuf {
    dir.join("host")
}
fn opts_file(dir: &Path) -> PathBuf {
    dir.join("opts")
}

fn tag(s: &SubnetInfo) -> String {
    format!("subnet-{}", s.id)
}

/// Lease seconds.
const LEASE: u32 = 86400;

/// The host file: one static lease per port with an address on a
/// DHCP-enabled subnet (the DHCP ports themselves excluded).
pub fn hosts(info: &NetworkInfo) -> String {
    let mut out = String::new();
    for p in &info.ports {
        if p.device_owner == "network:dhcp" {
            continue;
        }
        for ip in &p.fixed_ips {
            let Some(s) = info.subnets.iter().find(|s| s.id == ip.subnet_id && s.enable_dhcp) else { continue };
            // as Neutron: dnsmasq hands out IPv6 addresses only in stateful
            // mode (SLAAC and stateless addresses come from the prefix)
            if s.ip_version == 6 && s.ipv6_address_mode != "dhcpv6-stateful" {
                continue;
            }
            let name = format!("host-{}", ip.ip_address.replace(['.', ':'], "-"));
            let addr = if s.ip_version == 6 { format!("[{}]", ip.ip_address) } else { ip.ip_address.clone() };
            // the port's tag only where its extra options need it: dnsmasq
            // 2.90 aborts or crashes (in libc) re-reading a hosts file with
            // `set:` tags on SIGHUP while guests ask for leases
            let tag = if p.extra_dhcp_opts.is_empty() { String::new() } else { format!("set:port-{},", p.id) };
            let _ = writeln!(out, "{},{tag}{name},{addr}", p.mac_address);
        }
    }
    out
}

/// The option file: per subnet its gateway (none when the subnet has none),
/// DNS servers, MTU and classless routes (host routes, the metadata route via
/// the DHCP port, and the default route, which RFC 3442 clients take from
/// here only); per port its extra DHCP options.
pub fn options(info: &NetworkInfo, dhcp: Option<&NetworkPort>) -> String {
    let mut out = String::new();
    for s in info.subnets.iter().filter(|s| s.enable_dhcp && s.ip_version == 4) {
        let t = tag(s);
        let _ = writeln!(out, "tag:{t},option:mtu,{}", info.segment.mtu.max(68));
        if !s.dns_nameservers.is_empty() {
            let _ = writeln!(out, "tag:{t},option:dns-server,{}", s.dns_nameservers.join(","));
        }
        let mut routes: Vec<(String, String)> = s
            .host_routes
            .iter()
            .filter_map(|r| Some((r["destination"].as_str()?.to_string(), r["nexthop"].as_str()?.to_string())))
            .filter(|(d, _)| !d.contains(':'))
            .collect();
        let dhcp_ip = dhcp.and_then(|d| d.fixed_ips.iter().find(|f| f.subnet_id == s.id)).map(|f| f.ip_address.clone());
        if let Some(ip) = &dhcp_ip
            && !routes.iter().any(|(d, _)| d == "169.254.169.254/32")
            && s.gateway_ip.is_none()
        {
            // with a router, metadata is answered there too; without one, here
            routes.push((format!("{METADATA_IP}/32"), ip.clone()));
        }
        match &s.gateway_ip {
            Some(gw) => {
                let _ = writeln!(out, "tag:{t},option:router,{gw}");
                if !routes.is_empty() {
                    routes.push(("0.0.0.0/0".into(), gw.clone()));
                }
            }
            None => {
                let _ = writeln!(out, "tag:{t},option:router");
            }
        }
        if !routes.is_empty() {
            let list: Vec<String> = routes.iter().map(|(d, n)| format!("{d},{n}")).collect();
            let _ = writeln!(out, "tag:{t},option:classless-static-route,{}", list.join(","));
        }
    }
    for p in &info.ports {
        for o in &p.extra_dhcp_opts {
            let (Some(name), Some(value)) = (o["opt_name"].as_str(), o["opt_value"].as_str()) else { continue };
            let v6 = o["ip_version"].as_i64() == Some(6);
            let name = if name.chars().all(|c| c.is_ascii_digit()) || name.starts_with("option") {
                name.to_string()
            } else {
                format!("option{}:{name}", if v6 { "6" } else { "" })
            };
            let _ = writeln!(out, "tag:port-{},{name},{value}", p.id);
        }
    }
    out
}

/// dnsmasq's arguments for a network served on interface `iface`.
pub fn arguments(info: &NetworkInfo, dir: &Path, iface: &str) -> Vec<String> {
    let d = |p: PathBuf| p.to_string_lossy().into_owned();
    let mut a = vec![
        "--no-hosts".to_string(),
        "--no-resolv".into(),
        "--keep-in-foreground".into(),
        "--port=0".into(),
        format!("--pid-file={}", d(dir.join("pid"))),
        format!("--dhcp-hostsfile={}", d(hosts_file(dir))),
        format!("--dhcp-optsfile={}", d(opts_file(dir))),
        "--leasefile-ro".into(),
        format!("--interface={iface}"),
        "--bind-interfaces".into(),
        "--dhcp-authoritative".into(),
        "--dhcp-broadcast".into(),
        // dnsmasq re-reads its hosts and options files on SIGHUP after it has
        // dropped to user nobody, and they live in the agent's state dir under
        // the cloud's data dir, which may sit under a private directory (a
        // 0700 work dir, /root); as nobody it could not read them and answered
        // every guest added after its start "no address available". It stays
        // root, confined to its namespace.
        "--user=root".into(),
        format!("--log-facility={}", d(dir.join("log"))),
    ];
    for s in info.subnets.iter().filter(|s| s.enable_dhcp) {
        let Ok(net) = s.cidr.parse::<ipnet::IpNet>() else { continue };
        if s.ip_version == 4 {
            a.push(format!("--dhcp-range=set:{},{},static,{},{LEASE}s", tag(s), net.network(), net.netmask()));
        } else {
            // as Neutron's DHCP agent: SLAAC needs no DHCPv6; stateless and
            // stateful DHCPv6 are served `static` (options, and the ports'
            // addresses). Router advertisements are the router's (radvd):
            // dnsmasq's `ra-*` modes would advertise this namespace as a
            // router, and dnsmasq 2.90 crashed (SIGSEGV in libc) on networks
            // with them.
            if s.ipv6_address_mode == "slaac" {
                continue;
            }
            a.push(format!("--dhcp-range=set:{},{},static,{},{LEASE}s", tag(s), net.network(), net.prefix_len()));
        }
    }
    a
}

impl Dnsmasq {
    /// Write the files and start dnsmasq in namespace `ns` on `iface`.
    pub async fn start(
        binary: &str,
        ns: &str,
        iface: &str,
        dir: PathBuf,
        info: &NetworkInfo,
        dhcp: Option<&NetworkPort>,
    ) -> anyhow::Result<Dnsmasq> {
        tokio::fs::create_dir_all(&dir).await.with_context(|| format!("create {}", dir.display()))?;
        write_files(&dir, info, dhcp).await?;
        // one left by an agent that died: ours replaces it
        if let Ok(s) = tokio::fs::read_to_string(dir.join("pid")).await
            && let Ok(pid) = s.trim().parse::<i32>()
        {
            signal(pid, rustix::process::Signal::TERM);
        }
        let mut argv = vec![binary.to_string()];
        argv.extend(arguments(info, &dir, iface));
        let process = Supervised::start("dnsmasq", ns, argv, dir.join("log"), dir.join("pid"));
        let hosts = std::sync::Mutex::new(hosts(info).lines().map(str::to_string).collect());
        Ok(Dnsmasq { dir, process, hosts })
    }

    /// New ports or options: rewrite the files, then SIGHUP (dnsmasq
    /// rereads them). A lease that went (a port deleted or changed) or a
    /// port's tag restarts dnsmasq instead:
    /// - its leases live in memory (`--leasefile-ro`) and a SIGHUP keeps
    ///   them: a deleted port's address, handed to a new port, would stay
    ///   leased to the old MAC for a day ("not using configured address");
    ///   Neutron runs `dhcp_release` for it, a fresh process forgets it;
    /// - dnsmasq 2.90 aborts (or crashes in libc) re-reading a hosts file
    ///   with `set:` tags while it serves leases (reproduced in a test).
    pub async fn reload(&self, info: &NetworkInfo, dhcp: Option<&NetworkPort>) -> anyhow::Result<()> {
        write_files(&self.dir, info, dhcp).await?;
        let now: std::collections::BTreeSet<String> = hosts(info).lines().map(str::to_string).collect();
        let gone = match self.hosts.lock() {
            Ok(mut h) => {
                let gone = !h.is_subset(&now);
                *h = now;
                gone
            }
            Err(_) => true,
        };
        if gone || info.ports.iter().any(|p| !p.extra_dhcp_opts.is_empty()) {
            self.process.restart();
        } else {
            self.process.signal(rustix::process::Signal::HUP);
        }
        Ok(())
    }

    /// The running process, if any.
    pub fn pid(&self) -> Option<i32> {
        self.process.pid()
    }

    /// Stop it for good.
    pub async fn stop(self) {
        self.process.stop().await;
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
    }
}

async fn write_files(dir: &Path, info: &NetworkInfo, dhcp: Option<&NetworkPort>) -> anyhow::Result<()> {
    // written whole then renamed: dnsmasq never reads half a file
    for (path, body) in [(hosts_file(dir), hosts(info)), (opts_file(dir), options(info, dhcp))] {
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, body).await.with_context(|| format!("write {}", tmp.display()))?;
        tokio::fs::rename(&tmp, &path).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_network::rpc::{FixedIp, Segment};

    fn info() -> NetworkInfo {
        NetworkInfo {
            exists: true,
            segment: Segment { network_id: "n".into(), network_type: "vxlan".into(), mtu: 1450, ..Default::default() },
            subnets: vec![SubnetInfo {
                id: "s1".into(),
                cidr: "198.18.1.0/24".into(),
                ip_version: 4,
                gateway_ip: Some("198.18.1.1".into()),
                enable_dhcp: true,
                dns_nameservers: vec!["198.18.0.53".into()],
                ..Default::default()
            }],
            ports: vec![
                NetworkPort {
                    id: "p1".into(),
                    mac_address: "fa:16:3e:00:00:01".into(),
                    fixed_ips: vec![FixedIp { subnet_id: "s1".into(), ip_address: "198.18.1.5".into() }],
                    device_owner: "compute:nova".into(),
                    extra_dhcp_opts: vec![serde_json::json!({"opt_name": "tftp-server", "opt_value": "198.18.1.9"})],
                    ..Default::default()
                },
                NetworkPort {
                    id: "d".into(),
                    mac_address: "fa:16:3e:00:00:02".into(),
                    fixed_ips: vec![FixedIp { subnet_id: "s1".into(), ip_address: "198.18.1.2".into() }],
                    device_owner: "network:dhcp".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn hosts_have_a_static_lease_per_port_but_not_the_dhcp_port() {
        let h = hosts(&info());
        assert_eq!(h, "fa:16:3e:00:00:01,set:port-p1,host-198-18-1-5,198.18.1.5\n");
        // a port without extra options has no tag
        let mut i = info();
        i.ports.push(NetworkPort {
            id: "p3".into(),
            mac_address: "fa:16:3e:00:00:03".into(),
            fixed_ips: vec![FixedIp { subnet_id: "s1".into(), ip_address: "198.18.1.7".into() }],
            device_owner: "compute:nova".into(),
            ..Default::default()
        });
        assert!(hosts(&i).ends_with("\nfa:16:3e:00:00:03,host-198-18-1-7,198.18.1.7\n"), "{}", hosts(&i));
    }

    #[test]
    fn options_give_gateway_dns_mtu_and_extra_options() {
        let i = info();
        let o = options(&i, i.ports.get(1));
        assert!(o.contains("tag:subnet-s1,option:router,198.18.1.1\n"), "{o}");
        assert!(o.contains("tag:subnet-s1,option:dns-server,198.18.0.53\n"), "{o}");
        assert!(o.contains("tag:subnet-s1,option:mtu,1450\n"), "{o}");
        assert!(o.contains("tag:port-p1,option:tftp-server,198.18.1.9\n"), "{o}");
        // a subnet with a gateway: the metadata route goes through the router
        assert!(!o.contains("classless"), "{o}");
    }

    #[test]
    fn an_isolated_subnet_gets_the_metadata_route_via_the_dhcp_port() {
        let mut i = info();
        i.subnets[0].gateway_ip = None;
        let o = options(&i, i.ports.get(1));
        assert!(o.contains("option:classless-static-route,169.254.169.254/32,198.18.1.2"), "{o}");
        assert!(o.contains("tag:subnet-s1,option:router\n"), "{o}");
    }

    #[test]
    fn arguments_serve_static_ranges_only_on_the_port() {
        let a = arguments(&info(), Path::new("/d"), "ns-x");
        assert!(a.contains(&"--dhcp-range=set:subnet-s1,198.18.1.0,static,255.255.255.0,86400s".to_string()));
        assert!(a.contains(&"--interface=ns-x".to_string()));
        assert!(a.contains(&"--dhcp-hostsfile=/d/host".to_string()));
        // the files are in a private dir: dnsmasq must not drop to nobody
        assert!(a.contains(&"--user=root".to_string()));
    }

    #[test]
    fn ipv6_subnets_get_dhcpv6_but_never_router_advertisements() {
        let mut i = info();
        for (id, cidr, mode) in [("s6a", "2001:db8:a::/64", "slaac"), ("s6b", "2001:db8:b::/64", "dhcpv6-stateless")] {
            i.subnets.push(SubnetInfo {
                id: id.into(),
                cidr: cidr.into(),
                ip_version: 6,
                enable_dhcp: true,
                ipv6_address_mode: mode.into(),
                ipv6_ra_mode: mode.into(),
                ..Default::default()
            });
        }
        let a = arguments(&i, Path::new("/d"), "ns-x");
        let ranges: Vec<&String> = a.iter().filter(|x| x.starts_with("--dhcp-range=")).collect();
        assert_eq!(
            ranges,
            [
                "--dhcp-range=set:subnet-s1,198.18.1.0,static,255.255.255.0,86400s",
                "--dhcp-range=set:subnet-s6b,2001:db8:b::,static,64,86400s"
            ],
            "SLAAC needs no DHCPv6; the router (radvd) advertises"
        );
        assert!(!a.iter().any(|x| x.contains("ra-") || x.contains("enable-ra")), "{a:?}");
        // the port's SLAAC or stateless address is not dnsmasq's to give
        i.ports[0].fixed_ips.push(FixedIp { subnet_id: "s6a".into(), ip_address: "2001:db8:a::5".into() });
        i.ports[0].fixed_ips.push(FixedIp { subnet_id: "s6b".into(), ip_address: "2001:db8:b::5".into() });
        assert!(!hosts(&i).contains("2001:"), "{}", hosts(&i));
        i.subnets[2].ipv6_address_mode = "dhcpv6-stateful".into();
        assert!(hosts(&i).contains("[2001:db8:b::5]"), "{}", hosts(&i));
    }
}
