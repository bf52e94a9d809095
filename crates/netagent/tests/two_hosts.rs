//! Two compute hosts on one machine: each host is a network namespace
//! (`h1-<pid>`, `h2-<pid>`) on an underlay (a veth pair, 198.18.100.1 and
//! .2), each with its own real network agent (`host_namespace` set, its
//! tunnel endpoint on the underlay, its own tables and state) against one
//! in-process network service. Guests are namespaces standing in for QEMU:
//! a veth whose host end `tap<port>` joins `brq<network>` in the host's
//! namespace, as the QEMU driver plugs its taps, the guest end with the
//! port's MAC and address.
//!
//! - Two guests of one network on different hosts ping each other over
//!   VXLAN; a guest of another tenant's network (same addresses) reaches
//!   neither. Each host serves the network's DHCP from its own namespace.
//!   Deleting ports and networks leaves nothing in either host.
//! - Provider networks on mapped interfaces: a flat one puts a second wire
//!   (`ph0`) into its bridge, a VLAN network tags on the underlay's wire
//!   (`ul0.<vid>` in its bridge; only where the kernel has 802.1Q, else
//!   that half says loudly it skipped); guests on both hosts ping each
//!   other, no tunnel is made, and deleting them removes the VLAN device and
//!   releases the wire.
//! - A router advertises its interfaces' IPv6 prefixes (radvd in its
//!   namespace, for a subnet in `slaac` mode): a guest on its network
//!   configures exactly the port's address by SLAAC and reaches the router;
//!   the router's removal stops radvd.
//! - dnsmasq keeps serving (the same process) while its hosts file is
//!   reloaded again and again under a stream of DHCP requests; a deleted
//!   port's address goes to the next port that gets it, with its MAC.
//! - A router's new address is announced by gratuitous ARP: a neighbour
//!   that accepts them learns it unasked.
//! - An agent restarted keeps the guests connected, and removes what was
//!   deleted while it was down (security group chains, a network's bridge).
//!
//! Needs root, `ip`, `nft`, `conntrack`, `dnsmasq`, `ping`, `arping`, `radvd`: without them it
//! fails, unless STRATUS_SKIP_KERNEL_TESTS=1 (then it says loudly that it
//! skipped). Every name carries the process id; a guard removes the
//! namespaces (and with them every link and table made in them) and the
//! dnsmasq processes, however the test ends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use stratus_netagent::agent::{Agent, AgentOptions, bridge_name, tap_name};
use stratus_netagent::sg::Firewall;
use stratus_testkit::Cloud;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn must(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(program: &str) -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].iter().any(|d| Path::new(d).join(program).is_file())
}

/// False (after a loud message) when the test may skip; panics when it may not.
fn kernel_tests_possible() -> bool {
    let root = rustix::process::geteuid().is_root();
    let missing: Vec<&str> =
        ["ip", "nft", "conntrack", "dnsmasq", "ping", "arping", "radvd"].into_iter().filter(|p| !have(p)).collect();
    if root && missing.is_empty() {
        return true;
    }
    let why = format!("root: {root}, missing programs: {missing:?}");
    if std::env::var("STRATUS_SKIP_KERNEL_TESTS").as_deref() == Ok("1") {
        eprintln!("!!!!!!!! SKIPPED two-host network kernel test ({why}); STRATUS_SKIP_KERNEL_TESTS=1 !!!!!!!!");
        return false;
    }
    panic!(
        "the two-host network test needs root, ip, nft, conntrack, dnsmasq, ping, arping and radvd ({why}); STRATUS_SKIP_KERNEL_TESTS=1 skips it"
    );
}

/// Removes what the test made, pass or fail: dnsmasq processes of the
/// agents' state directories, then every namespace named after this run.
struct Guard {
    tag: String,
    state_dirs: Vec<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for d in &self.state_dirs {
            let Ok(entries) = std::fs::read_dir(d.join("dhcp")) else { continue };
            for e in entries.flatten() {
                if let Some(pid) =
                    std::fs::read_to_string(e.path().join("pid")).ok().and_then(|s| s.trim().parse::<i32>().ok())
                    && let Some(p) = rustix::process::Pid::from_raw(pid)
                {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
        }
        // guests and the agents' DHCP namespaces first, the hosts (with their
        // bridges, tunnels, underlay and tables) last
        let mut names = stratus_netagent::kernel::namespaces();
        names.retain(|n| n.ends_with(&self.tag));
        names.sort_by_key(|n| n.starts_with('h'));
        for n in names {
            let _ = Command::new("ip").args(["netns", "delete", &n]).output();
        }
    }
}

struct Host {
    ns: String,
    ip: String,
    opts: AgentOptions,
    agent: Option<Agent>,
}

/// Dropped in this order: the agents, then the guard, then the state.
struct Lab {
    hosts: Vec<Host>,
    cloud: Cloud,
    admin: String,
    tag: String,
    _guard: Guard,
    _state: tempfile::TempDir,
}

/// A stand-in guest of `port` on `host`.
struct Guest {
    ns: String,
    ip: String,
    mac: String,
    port: String,
    /// Its host's namespace and its tap there.
    host: String,
    tap: String,
}

impl Lab {
    async fn new() -> Lab {
        let pid = std::process::id();
        let tag = format!("-{pid}");
        let state = tempfile::tempdir().unwrap();
        let guard = Guard { tag: tag.clone(), state_dirs: vec![state.path().join("h1"), state.path().join("h2")] };
        // the hosts and their underlay
        let (h1, h2) = (format!("h1{tag}"), format!("h2{tag}"));
        for h in [&h1, &h2] {
            must(&["ip", "netns", "add", h]);
            must(&["ip", "-n", h, "link", "set", "lo", "up"]);
        }
        must(&["ip", "link", "add", "ul0", "netns", &h1, "type", "veth", "peer", "name", "ul0", "netns", &h2]);
        for (h, ip) in [(&h1, "198.18.100.1/24"), (&h2, "198.18.100.2/24")] {
            must(&["ip", "-n", h, "addr", "add", ip, "dev", "ul0"]);
            must(&["ip", "-n", h, "link", "set", "ul0", "up"]);
        }
        // a second wire, with no address, for a flat provider network (VLAN
        // networks tag on the underlay's wire)
        must(&["ip", "link", "add", "ph0", "netns", &h1, "type", "veth", "peer", "name", "ph0", "netns", &h2]);

        let mut cloud = Cloud::start("sqlite", "sqlite::memory:").await;
        cloud.start_network().await;
        let svc = cloud.network.clone().unwrap();
        let bus = stratus_bus::Bus::new(std::sync::Arc::new(stratus_bus::inproc::InProcess::new())).await.unwrap();
        svc.attach_bus(bus).await.unwrap();
        let admin = cloud.admin_token().await;

        let mut hosts = Vec::new();
        for (i, (ns, ip)) in [(h1, "198.18.100.1"), (h2, "198.18.100.2")].into_iter().enumerate() {
            let opts = AgentOptions {
                host: format!("compute-{}{tag}", i + 1),
                // the heartbeat also removes bridges left idle late
                report_interval: Duration::from_secs(1),
                local_ip: Some(ip.parse().unwrap()),
                bridge_mappings: BTreeMap::new(),
                interface_mappings: BTreeMap::from([
                    ("vlan1".to_string(), "ul0".to_string()),
                    ("flat1".to_string(), "ph0".to_string()),
                ]),
                state_dir: state.path().join(format!("h{}", i + 1)),
                firewall_table: Some(format!("sg2h-{pid}-{}", i + 1)),
                host_namespace: Some(ns.clone()),
                ..Default::default()
            };
            hosts.push(Host { ns, ip: ip.to_string(), opts, agent: None });
        }
        let mut lab = Lab { hosts, cloud, admin, tag, _guard: guard, _state: state };
        for i in 0..2 {
            lab.start_agent(i).await;
        }
        lab
    }

    async fn start_agent(&mut self, i: usize) {
        let bus = self.cloud.network.as_ref().unwrap().bus().cloned().unwrap();
        let t = Instant::now();
        let a = Agent::start(bus, self.hosts[i].opts.clone()).await.unwrap();
        eprintln!("agent of {} started (and in sync) in {:?}", self.hosts[i].ns, t.elapsed());
        self.hosts[i].agent = Some(a);
    }

    async fn neutron(&self, method: Method, path: &str, tok: &str, body: Option<Value>) -> Value {
        let r = self.cloud.neutron(method.clone(), path, tok, body).await;
        assert!(r.status.is_success(), "{method} {path}: {} {}", r.status, r.text);
        r.body
    }

    /// A network (VXLAN, the default) of the tenant of `tok` with a subnet.
    async fn network(&self, tok: &str, cidr: &str) -> String {
        let n = self.neutron(Method::POST, "/networks", tok, Some(json!({"network": {"name": "n"}}))).await;
        let net = n["network"]["id"].as_str().unwrap().to_string();
        let body = json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}});
        self.neutron(Method::POST, "/subnets", tok, Some(body)).await;
        net
    }

    /// The tenant's default security group admits ICMP from anywhere (so
    /// only the data plane's isolation can keep another tenant out).
    async fn allow_icmp(&self, tok: &str) {
        let g = self.neutron(Method::GET, "/security-groups?name=default", tok, None).await;
        let gid = g["security_groups"][0]["id"].as_str().unwrap().to_string();
        let rule = json!({"security_group_rule": {"security_group_id": gid, "direction": "ingress",
            "ethertype": "IPv4", "protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"}});
        self.neutron(Method::POST, "/security-group-rules", tok, Some(rule)).await;
    }

    /// A port with `ip` bound to host `h`, and its stand-in guest plugged
    /// once the agent made the bridge.
    async fn guest(&self, tok: &str, net: &str, ip: &str, h: usize, name: &str) -> Guest {
        let body = json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": ip}],
            "device_owner": "compute:nova", "device_id": uuid::Uuid::new_v4().to_string()}});
        let p = self.neutron(Method::POST, "/ports", tok, Some(body)).await;
        let port = p["port"]["id"].as_str().unwrap().to_string();
        let mac = p["port"]["mac_address"].as_str().unwrap().to_string();
        let host = self.hosts[h].opts.host.clone();
        self.neutron(
            Method::PUT,
            &format!("/ports/{port}"),
            &self.admin,
            Some(json!({"port": {"binding:host_id": host}})),
        )
        .await;
        let (hns, br, tap) = (&self.hosts[h].ns, bridge_name(net), tap_name(&port));
        eventually(&format!("bridge {br} in {hns}"), 20, || link_in(hns, &br)).await;
        let g = format!("{name}{}", self.tag);
        must(&["ip", "netns", "add", &g]);
        must(&["ip", "link", "add", &tap, "netns", hns, "type", "veth", "peer", "name", "eth0", "netns", &g]);
        must(&["ip", "-n", hns, "link", "set", &tap, "master", &br, "up"]);
        must(&["ip", "-n", &g, "link", "set", "eth0", "address", &mac, "mtu", "1450"]);
        must(&["ip", "-n", &g, "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        must(&["ip", "-n", &g, "link", "set", "eth0", "up"]);
        must(&["ip", "-n", &g, "link", "set", "lo", "up"]);
        let active = |p: &Value| p["port"]["status"] == "ACTIVE";
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let p = self.neutron(Method::GET, &format!("/ports/{port}"), &self.admin, None).await;
            if active(&p) {
                break;
            }
            assert!(Instant::now() < deadline, "port {port} never went ACTIVE: {p}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Guest { ns: g, ip: ip.to_string(), mac, port, host: hns.clone(), tap }
    }

    /// The hypervisor unplugs the guest (its tap goes), then the port goes.
    async fn delete_guest(&self, tok: &str, g: &Guest) {
        unplug(g);
        self.delete_port(tok, g).await;
    }

    async fn delete_port(&self, tok: &str, g: &Guest) {
        self.neutron(Method::DELETE, &format!("/ports/{}", g.port), tok, None).await;
    }

    fn host(&self, i: usize) -> &str {
        &self.hosts[i].ns
    }
}

/// The guest's tap goes (at once, as the QEMU driver deletes it), then the guest.
fn unplug(g: &Guest) {
    must(&["ip", "-n", &g.host, "link", "delete", &g.tap]);
    must(&["ip", "netns", "delete", &g.ns]);
}

async fn eventually(what: &str, secs: u64, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn link_in(ns: &str, link: &str) -> bool {
    run(&["ip", "-n", ns, "link", "show", "dev", link]).status.success()
}

/// The names of the links of namespace `ns`.
fn links(ns: &str) -> Vec<String> {
    let out: Value = serde_json::from_str(&must(&["ip", "-j", "-n", ns, "link", "show"])).unwrap();
    out.as_array().unwrap().iter().filter_map(|l| l["ifname"].as_str().map(str::to_string)).collect()
}

/// One ping from guest `from` to `to` answered (the route checked first:
/// a guest has nothing but its own interface).
fn ping(from: &Guest, to: &str) -> bool {
    let route = must(&["ip", "-n", &from.ns, "route", "get", to]);
    assert!(route.contains("dev eth0"), "{} would send {to} elsewhere: {route}", from.ns);
    run(&["ip", "netns", "exec", &from.ns, "ping", "-c", "1", "-W", "1", to]).status.success()
}

/// Pings answered within `secs` (ARP and the flood entries may take a moment).
async fn reaches(from: &Guest, to: &str, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if ping(from, to) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The VXLAN device of `net` in host `ns` floods to `peer`.
fn floods_to(ns: &str, vni: i64, peer: &str) -> bool {
    let dev = format!("vxlan-{vni}");
    let out = run(&["ip", "-j", "-n", ns, "link", "show", "dev", &dev]);
    if !out.status.success() {
        return false;
    }
    let fdb: Value = serde_json::from_str(&must(&["bridge", "-j", "-n", ns, "fdb", "show", "dev", &dev])).unwrap();
    fdb.as_array().unwrap().iter().any(|e| e["mac"] == "00:00:00:00:00:00" && e["dst"].as_str() == Some(peer))
}

/// The VXLAN device of `vni` in host `ns` sends `mac` to `peer` (a
/// forwarding entry of its own, not the flood list).
fn forwards_to(ns: &str, vni: i64, mac: &str, peer: &str) -> bool {
    let dev = format!("vxlan-{vni}");
    let fdb: Value = serde_json::from_str(&must(&["bridge", "-j", "-n", ns, "fdb", "show", "dev", &dev])).unwrap();
    fdb.as_array().unwrap().iter().any(|e| e["mac"] == mac && e["dst"].as_str() == Some(peer))
}

/// The VXLAN device of `vni` in host `ns` answers ARP for `ip` with `mac`.
fn answers_arp(ns: &str, vni: i64, ip: &str, mac: &str) -> bool {
    let dev = format!("vxlan-{vni}");
    let n: Value = serde_json::from_str(&must(&["ip", "-j", "-n", ns, "neigh", "show", "dev", &dev])).unwrap();
    n.as_array().unwrap().iter().any(|e| e["dst"] == ip && e["lladdr"].as_str() == Some(mac))
}

/// The running dnsmasq of a DHCP directory, if it runs in namespace `ns`.
fn dnsmasq_in(dir: &Path, ns: &str) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    let pid: i32 = std::fs::read_to_string(dir.join("pid")).ok()?.trim().parse().ok()?;
    let proc_ns = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?;
    let want = std::fs::metadata(stratus_netagent::kernel::netns_path(ns)).ok()?;
    (proc_ns.ino() == want.ino() && proc_ns.dev() == want.dev()).then_some(pid)
}

/// The conntrack zone of each bridge of host `ns` (the security groups' map).
fn zones(ns: &str, table: &str) -> BTreeMap<String, i64> {
    let out = must(&["ip", "netns", "exec", ns, "nft", "-j", "list", "map", "inet", table, "zones"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut z = BTreeMap::new();
    for o in v["nftables"].as_array().unwrap() {
        for e in o["map"]["elem"].as_array().into_iter().flatten() {
            let (Some(b), Some(chain)) =
                (e[0].as_str(), e[1]["jump"]["target"].as_str().or(e[1]["goto"]["target"].as_str()))
            else {
                continue;
            };
            let n = chain.rsplit('-').next().and_then(|x| x.parse().ok()).unwrap_or(-1);
            z.insert(b.to_string(), n);
        }
    }
    z
}

async fn vni(lab: &Lab, net: &str) -> i64 {
    let n = lab.neutron(Method::GET, &format!("/networks/{net}"), &lab.admin, None).await;
    assert_eq!(n["network"]["provider:network_type"], "vxlan", "{n}");
    n["network"]["provider:segmentation_id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_of_a_network_on_two_hosts_talk_over_vxlan_and_other_tenants_do_not() {
    if !kernel_tests_possible() {
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::new().await;
    eprintln!("two hosts and their agents up in {:?}", t0.elapsed());
    let (_, _, tok_a) = lab.cloud.user_with_role(&lab.admin, "member").await;
    let (_, _, tok_b) = lab.cloud.user_with_role(&lab.admin, "member").await;
    lab.allow_icmp(&tok_a).await;
    lab.allow_icmp(&tok_b).await;
    // the same addresses in both tenants: only the data plane keeps them apart
    let net_a = lab.network(&tok_a, "198.18.110.0/24").await;
    let net_b = lab.network(&tok_b, "198.18.110.0/24").await;
    let t = Instant::now();
    let a1 = lab.guest(&tok_a, &net_a, "198.18.110.11", 0, "ga1").await;
    let a2 = lab.guest(&tok_a, &net_a, "198.18.110.12", 1, "ga2").await;
    let b1 = lab.guest(&tok_b, &net_b, "198.18.110.13", 0, "gb1").await;
    eprintln!("three ports bound and plugged in {:?}", t.elapsed());

    // each network's flows have a conntrack zone of their own on h1, though
    // the guests' taps came after the agent wired their ports
    let z = zones(lab.host(0), lab.hosts[0].opts.firewall_table.as_deref().unwrap());
    let (za, zb) = (z.get(&bridge_name(&net_a)), z.get(&bridge_name(&net_b)));
    assert!(za.is_some() && zb.is_some() && za != zb, "zones of h1: {z:?}");

    // the tunnel: a device per host, each flooding to the other
    let vni_a = vni(&lab, &net_a).await;
    eventually("h1 floods network A to h2", 20, || floods_to(lab.host(0), vni_a, &lab.hosts[1].ip)).await;
    eventually("h2 floods network A to h1", 20, || floods_to(lab.host(1), vni_a, &lab.hosts[0].ip)).await;
    // B has no port on h2: no tunnel of B there, and h1 floods B nowhere
    let vni_b = vni(&lab, &net_b).await;
    assert!(!link_in(lab.host(1), &format!("vxlan-{vni_b}")));
    assert!(!floods_to(lab.host(0), vni_b, &lab.hosts[1].ip));

    let t = Instant::now();
    assert!(reaches(&a1, &a2.ip, 15).await, "A on h1 cannot ping A on h2 over VXLAN");
    eprintln!("first ping across the tunnel after {:?}", t.elapsed());
    assert!(reaches(&a2, &a1.ip, 5).await, "A on h2 cannot ping A on h1");
    // the other tenant, same subnet, same host as a1: nothing
    assert!(!reaches(&b1, &a1.ip, 2).await, "B reaches A on its own host");
    assert!(!reaches(&b1, &a2.ip, 2).await, "B reaches A on the other host");
    assert!(!ping(&a1, &b1.ip), "A reaches B");
    // l2population: each host sends the other's guest straight to its host,
    // and answers ARP for it without asking over the tunnel
    let (h1_ip, h2_ip) = (lab.hosts[0].ip.clone(), lab.hosts[1].ip.clone());
    assert!(forwards_to(lab.host(0), vni_a, &a2.mac, &h2_ip), "h1 has no forwarding entry for a2");
    assert!(forwards_to(lab.host(1), vni_a, &a1.mac, &h1_ip), "h2 has no forwarding entry for a1");
    assert!(answers_arp(lab.host(0), vni_a, &a2.ip, &a2.mac), "h1 does not answer ARP for a2");
    assert!(answers_arp(lab.host(1), vni_a, &a1.ip, &a1.mac), "h2 does not answer ARP for a1");
    assert!(!answers_arp(lab.host(0), vni_a, &a1.ip, &a1.mac), "h1 answers for its own guest over the tunnel");

    // DHCP: each host serves A from its own namespace, with both guests' leases
    for (i, h) in lab.hosts.iter().enumerate() {
        let agent = h.agent.as_ref().unwrap();
        let ns = agent.dhcp_namespace(&net_a);
        assert!(ns.starts_with(&format!("qdhcp-{net_a}")) && ns.ends_with(&h.ns), "{ns}");
        let dir = h.opts.state_dir.join("dhcp").join(&net_a);
        eventually(&format!("dnsmasq of A in {ns}"), 10, || dnsmasq_in(&dir, &ns).is_some()).await;
        let hosts = std::fs::read_to_string(dir.join("host")).unwrap();
        for g in [&a1, &a2] {
            assert!(hosts.contains(&format!(",{}\n", g.ip)), "host {i}: {hosts}");
        }
        assert!(!hosts.contains(&b1.port), "{hosts}");
    }
    let b_dhcp = lab.hosts[0].agent.as_ref().unwrap().dhcp_namespace(&net_b);
    assert!(stratus_netagent::kernel::netns_path(&b_dhcp).exists());
    let b_dhcp_h2 = lab.hosts[1].agent.as_ref().unwrap().dhcp_namespace(&net_b);
    assert!(!stratus_netagent::kernel::netns_path(&b_dhcp_h2).exists(), "h2 has no port of B");

    // everything goes
    let t = Instant::now();
    let pids: Vec<i32> = lab
        .hosts
        .iter()
        .filter_map(|h| {
            let agent = h.agent.as_ref()?;
            dnsmasq_in(&h.opts.state_dir.join("dhcp").join(&net_a), &agent.dhcp_namespace(&net_a))
        })
        .collect();
    assert_eq!(pids.len(), 2);
    // a2 goes first: h1, which keeps a1, forgets a2's entries
    lab.delete_guest(&tok_a, &a2).await;
    eventually("h1 forgets a2", 10, || {
        !forwards_to(lab.host(0), vni_a, &a2.mac, &h2_ip) && !answers_arp(lab.host(0), vni_a, &a2.ip, &a2.mac)
    })
    .await;
    lab.delete_guest(&tok_a, &a1).await;
    // B's guest is unplugged only after its port went: its bridge is not idle
    // when the agent drops the network, and goes with a later heartbeat
    lab.delete_port(&tok_b, &b1).await;
    let b_gone = b_dhcp.clone();
    eventually("B's DHCP namespace goes", 10, || !stratus_netagent::kernel::netns_path(&b_gone).exists()).await;
    assert!(link_in(lab.host(0), &bridge_name(&net_b)), "B's bridge went with a guest tap on it");
    unplug(&b1);
    lab.neutron(Method::DELETE, &format!("/networks/{net_a}"), &tok_a, None).await;
    lab.neutron(Method::DELETE, &format!("/networks/{net_b}"), &tok_b, None).await;
    for i in 0..2 {
        let h = lab.host(i).to_string();
        let left = || -> Vec<String> {
            links(&h)
                .into_iter()
                .filter(|l| l.starts_with("brq") || l.starts_with("vxlan-") || l.starts_with("tap"))
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !left().is_empty() {
            assert!(Instant::now() < deadline, "{h} still holds {:?}", left());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let gone_ns = |n: &String| n.starts_with("q") && n.ends_with(&h);
        eventually(&format!("{h} has no DHCP namespace"), 10, || {
            !stratus_netagent::kernel::namespaces().iter().any(gone_ns)
        })
        .await;
    }
    eventually("no dnsmasq", 10, || pids.iter().all(|p| !Path::new(&format!("/proc/{p}")).exists())).await;
    eprintln!("ports and networks deleted, both hosts clean, in {:?}", t.elapsed());
    eprintln!("whole test: {:?}", t0.elapsed());
    drop(lab);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_keeps_guests_connected_and_removes_what_went_while_it_was_down() {
    if !kernel_tests_possible() {
        return;
    }
    let t0 = Instant::now();
    let mut lab = Lab::new().await;
    let (_, _, tok) = lab.cloud.user_with_role(&lab.admin, "member").await;
    lab.allow_icmp(&tok).await;
    let net_a = lab.network(&tok, "198.18.120.0/24").await;
    let net_c = lab.network(&tok, "198.18.121.0/24").await;
    let a1 = lab.guest(&tok, &net_a, "198.18.120.11", 0, "ra1").await;
    let a2 = lab.guest(&tok, &net_a, "198.18.120.12", 1, "ra2").await;
    let a3 = lab.guest(&tok, &net_a, "198.18.120.13", 0, "ra3").await;
    let c1 = lab.guest(&tok, &net_c, "198.18.121.11", 0, "rc1").await;
    assert!(reaches(&a1, &a2.ip, 15).await, "A on h1 cannot ping A on h2");
    let table = lab.hosts[0].opts.firewall_table.clone().unwrap();
    let fw = Firewall::in_namespace(table, lab.host(0));
    let chains = fw.ports().await.unwrap();
    for g in [&a1, &a3, &c1] {
        assert!(chains.contains(&g.port), "{chains:?}");
    }
    let vni_c = vni(&lab, &net_c).await;
    let (br_a, br_c) = (bridge_name(&net_a), bridge_name(&net_c));
    let dhcp_c = lab.hosts[0].agent.as_ref().unwrap().dhcp_namespace(&net_c);
    assert!(link_in(lab.host(0), &format!("vxlan-{vni_c}")));

    // h1's agent stops; meanwhile a port of A and C's only port on h1 go
    lab.hosts[0].agent = None;
    lab.delete_guest(&tok, &a3).await;
    lab.delete_guest(&tok, &c1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(ping(&a1, &a2.ip), "the data plane stays while the agent is down");
    assert!(link_in(lab.host(0), &br_c), "nobody removed C's bridge yet");

    let t = Instant::now();
    lab.start_agent(0).await;
    let down = Instant::now();
    assert!(ping(&a1, &a2.ip) || reaches(&a1, &a2.ip, 5).await, "no ping after the restart");
    eprintln!("ping after the restart within {:?}", down.elapsed());
    assert!(reaches(&a2, &a1.ip, 5).await);
    let chains = fw.ports().await.unwrap();
    assert!(chains.contains(&a1.port), "{chains:?}");
    assert!(!chains.contains(&a3.port) && !chains.contains(&c1.port), "stale chains stay: {chains:?}");
    assert!(!link_in(lab.host(0), &br_c), "C's bridge stays on h1 without a port there");
    assert!(!link_in(lab.host(0), &format!("vxlan-{vni_c}")));
    assert!(!stratus_netagent::kernel::netns_path(&dhcp_c).exists(), "C's DHCP namespace stays");
    assert!(link_in(lab.host(0), &br_a));
    let dir = lab.hosts[0].opts.state_dir.join("dhcp").join(&net_a);
    let ns_a = lab.hosts[0].agent.as_ref().unwrap().dhcp_namespace(&net_a);
    eventually("A's dnsmasq runs again on h1", 10, || dnsmasq_in(&dir, &ns_a).is_some()).await;
    eprintln!("restart converged in {:?}; whole test {:?}", t.elapsed(), t0.elapsed());

    // teardown removes the agents' namespaces (the guests' bridges stay: their taps are the hypervisor's)
    for a in lab.hosts.iter().filter_map(|h| h.agent.as_ref()) {
        a.teardown().await.unwrap();
    }
    let tag = lab.tag.clone();
    assert!(!stratus_netagent::kernel::namespaces().iter().any(|n| n.starts_with('q') && n.ends_with(&tag)));
}

/// The bridge `link` of host `ns` is a port of, if any.
fn master_of(ns: &str, link: &str) -> Option<String> {
    let out: Value = serde_json::from_str(&must(&["ip", "-j", "-d", "-n", ns, "link", "show", "dev", link])).unwrap();
    out[0]["master"].as_str().map(str::to_string)
}

/// Whether this kernel makes 802.1Q devices (some are built without
/// CONFIG_VLAN_8021Q; this project's CI machine is one).
fn kernel_has_vlan(ns: &str) -> bool {
    let ok = run(&["ip", "-n", ns, "link", "add", "link", "ul0", "name", "ul0.4094", "type", "vlan", "id", "4094"])
        .status
        .success();
    if ok {
        must(&["ip", "-n", ns, "link", "delete", "ul0.4094"]);
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_networks_join_hosts_over_their_mapped_interfaces() {
    if !kernel_tests_possible() {
        return;
    }
    let lab = Lab::new().await;
    let admin = lab.admin.clone();
    lab.allow_icmp(&admin).await;
    let vlan = kernel_has_vlan(lab.host(0));
    if !vlan {
        eprintln!(
            "!!!!!!!! this kernel has no 802.1Q support (CONFIG_VLAN_8021Q): the VLAN half of this test is \
             SKIPPED, only the flat network is tested !!!!!!!!"
        );
    }
    let provider = |name: &str, kind: &str, physnet: &str, vid: Option<i64>| {
        let mut n =
            json!({"network": {"name": name, "provider:network_type": kind, "provider:physical_network": physnet}});
        if let Some(v) = vid {
            n["network"]["provider:segmentation_id"] = json!(v);
        }
        n
    };
    let mut nets = Vec::new();
    let n = lab.neutron(Method::POST, "/networks", &admin, Some(provider("f", "flat", "flat1", None))).await;
    let net_f = n["network"]["id"].as_str().unwrap().to_string();
    nets.push((net_f.clone(), "198.18.131"));
    let mut net_v = None;
    if vlan {
        let n = lab.neutron(Method::POST, "/networks", &admin, Some(provider("v", "vlan", "vlan1", Some(212)))).await;
        assert_eq!(n["network"]["provider:segmentation_id"], 212, "{n}");
        let id = n["network"]["id"].as_str().unwrap().to_string();
        nets.push((id.clone(), "198.18.130"));
        net_v = Some(id);
    }
    let mut guests = Vec::new();
    for (net, prefix) in &nets {
        let body = json!({"subnet": {"network_id": net, "cidr": format!("{prefix}.0/24"), "ip_version": 4}});
        lab.neutron(Method::POST, "/subnets", &admin, Some(body)).await;
        let g1 = lab.guest(&admin, net, &format!("{prefix}.11"), 0, &format!("p{}1", &prefix[8..])).await;
        let g2 = lab.guest(&admin, net, &format!("{prefix}.12"), 1, &format!("p{}2", &prefix[8..])).await;
        guests.push((g1, g2));
    }

    let br_f = bridge_name(&net_f);
    for i in 0..2 {
        let h = lab.host(i);
        assert_eq!(master_of(h, "ph0").as_deref(), Some(br_f.as_str()), "{h}: the flat wire");
        if let Some(v) = &net_v {
            assert_eq!(master_of(h, "ul0.212").as_deref(), Some(bridge_name(v).as_str()), "{h}: the VLAN device");
        }
        assert_eq!(master_of(h, "ul0"), None, "{h}: the underlay stays out of any bridge");
        let tunnels: Vec<String> = links(h).into_iter().filter(|l| l.starts_with("vxlan-")).collect();
        assert!(tunnels.is_empty(), "{h}: provider networks need no tunnel: {tunnels:?}");
    }
    for (g1, g2) in &guests {
        assert!(reaches(g1, &g2.ip, 15).await, "{} on h1 cannot ping {} on h2", g1.ns, g2.ns);
        assert!(reaches(g2, &g1.ip, 5).await, "{} on h2 cannot ping {} on h1", g2.ns, g1.ns);
    }

    for (g1, g2) in &guests {
        lab.delete_guest(&admin, g1).await;
        lab.delete_guest(&admin, g2).await;
    }
    for (net, _) in &nets {
        lab.neutron(Method::DELETE, &format!("/networks/{net}"), &admin, None).await;
    }
    for i in 0..2 {
        let h = lab.host(i).to_string();
        let left = || -> Vec<String> {
            links(&h).into_iter().filter(|l| l.starts_with("brq") || l.starts_with("ul0.")).collect()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !left().is_empty() {
            assert!(Instant::now() < deadline, "{h} still holds {:?}", left());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(link_in(&h, "ph0") && link_in(&h, "ul0"), "{h}: a mapped interface was removed");
        assert_eq!(master_of(&h, "ph0"), None, "{h}: the flat wire is still in a bridge");
    }
    drop(lab);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_floating_address_is_announced_by_gratuitous_arp() {
    if !kernel_tests_possible() {
        return;
    }
    let tag = format!("-{}", std::process::id());
    let _guard = Guard { tag: tag.clone(), state_dirs: Vec::new() };
    let (a, b) = (format!("garpa{tag}"), format!("garpb{tag}"));
    for n in [&a, &b] {
        must(&["ip", "netns", "add", n]);
    }
    must(&["ip", "link", "add", "qg-garp", "netns", &a, "type", "veth", "peer", "name", "nb0", "netns", &b]);
    // the neighbour learns from unsolicited ARP (as a host's bridge does
    // for addresses it already caches)
    must(&["ip", "netns", "exec", &b, "sysctl", "-qw", "net.ipv4.conf.nb0.arp_accept=1"]);
    must(&["ip", "-n", &a, "addr", "add", "198.18.140.1/24", "dev", "qg-garp"]);
    must(&["ip", "-n", &a, "addr", "add", "198.18.140.77/32", "dev", "qg-garp"]);
    must(&["ip", "-n", &b, "addr", "add", "198.18.140.2/24", "dev", "nb0"]);
    must(&["ip", "-n", &a, "link", "set", "qg-garp", "up"]);
    must(&["ip", "-n", &b, "link", "set", "nb0", "up"]);
    let mac: Value = serde_json::from_str(&must(&["ip", "-j", "-n", &a, "link", "show", "dev", "qg-garp"])).unwrap();
    let mac = mac[0]["address"].as_str().unwrap().to_string();
    let learned = || {
        let n: Value = serde_json::from_str(&must(&["ip", "-j", "-n", &b, "neigh", "show", "dev", "nb0"])).unwrap();
        n.as_array().unwrap().iter().any(|e| e["dst"] == "198.18.140.77" && e["lladdr"].as_str() == Some(mac.as_str()))
    };
    // wait for the link to carry frames (IPv6 DAD and the like)
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!learned(), "the neighbour knew the address before it was announced");
    stratus_netagent::nat::announce(&a, "qg-garp", "198.18.140.77".parse().unwrap());
    eventually("the neighbour learns the announced address", 10, learned).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_advertises_its_ipv6_prefix_and_a_guest_takes_its_port_address_by_slaac() {
    if !kernel_tests_possible() {
        return;
    }
    let lab = Lab::new().await;
    let (_, _, tok) = lab.cloud.user_with_role(&lab.admin, "member").await;
    let n = lab.neutron(Method::POST, "/networks", &tok, Some(json!({"network": {"name": "v6"}}))).await;
    let net = n["network"]["id"].as_str().unwrap().to_string();
    let body = json!({"subnet": {"network_id": net, "cidr": "2001:db8:77::/64", "ip_version": 6,
        "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}});
    let sub =
        lab.neutron(Method::POST, "/subnets", &tok, Some(body)).await["subnet"]["id"].as_str().unwrap().to_string();
    let r = lab.neutron(Method::POST, "/routers", &tok, Some(json!({"router": {"name": "r6"}}))).await;
    let router = r["router"]["id"].as_str().unwrap().to_string();
    lab.neutron(Method::PUT, &format!("/routers/{router}/add_router_interface"), &tok, Some(json!({"subnet_id": sub})))
        .await;
    let agents = lab.neutron(Method::GET, &format!("/routers/{router}/l3-agents"), &lab.admin, None).await;
    let host = agents["agents"][0]["host"].as_str().unwrap().to_string();
    let h = lab.hosts.iter().position(|x| x.opts.host == host).unwrap();
    let ns = lab.hosts[h].agent.as_ref().unwrap().router_namespace(&router);
    let pidfile = lab.hosts[h].opts.state_dir.join("ra").join(&router).join("pid");
    eventually("radvd runs for the router", 10, || {
        std::fs::read_to_string(&pidfile).is_ok_and(|p| Path::new(&format!("/proc/{}", p.trim())).exists())
    })
    .await;
    let radvd = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();

    // a guest of the network on the router's host, its address left to SLAAC
    let body = json!({"port": {"network_id": net, "device_owner": "compute:nova",
        "device_id": uuid::Uuid::new_v4().to_string(), "binding:host_id": host}});
    let p = lab.neutron(Method::POST, "/ports", &lab.admin, Some(body)).await;
    let port = p["port"]["id"].as_str().unwrap().to_string();
    let mac = p["port"]["mac_address"].as_str().unwrap().to_string();
    let want = p["port"]["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();
    let (hns, br, tap) = (lab.host(h).to_string(), bridge_name(&net), tap_name(&port));
    eventually(&format!("bridge {br} in {hns}"), 20, || link_in(&hns, &br)).await;
    let g = format!("g6{}", lab.tag);
    must(&["ip", "netns", "add", &g]);
    must(&["ip", "link", "add", &tap, "netns", &hns, "type", "veth", "peer", "name", "eth0", "netns", &g]);
    must(&["ip", "-n", &hns, "link", "set", &tap, "master", &br, "up"]);
    must(&["ip", "netns", "exec", &g, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=2"]);
    must(&["ip", "-n", &g, "link", "set", "eth0", "address", &mac, "mtu", "1450"]);
    must(&["ip", "-n", &g, "link", "set", "eth0", "up"]);
    let global = || -> Vec<String> {
        let a: Value = serde_json::from_str(&must(&[
            "ip", "-j", "-6", "-n", &g, "addr", "show", "dev", "eth0", "scope", "global",
        ]))
        .unwrap();
        a[0]["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["local"].as_str().map(str::to_string))
            .collect()
    };
    eventually("the guest's SLAAC address", 20, || !global().is_empty()).await;
    let want: std::net::Ipv6Addr = want.parse().unwrap();
    assert_eq!(global(), vec![want.to_string()], "SLAAC from the advertised prefix gives the port's address");
    // the router's address on the subnet answers (its advertisement is the route)
    let route = must(&["ip", "-6", "-n", &g, "route", "get", "2001:db8:77::1"]);
    assert!(route.contains("dev eth0"), "{route}");
    let ok =
        || run(&["ip", "netns", "exec", &g, "ping", "-6", "-c", "1", "-W", "1", "2001:db8:77::1"]).status.success();
    eventually("the guest pings the router over IPv6", 15, ok).await;
    assert!(Path::new(&format!("/run/netns/{ns}")).exists());

    // the interface goes: no prefix left, radvd stops
    lab.neutron(
        Method::PUT,
        &format!("/routers/{router}/remove_router_interface"),
        &tok,
        Some(json!({"subnet_id": sub})),
    )
    .await;
    eventually("radvd stops", 10, || !Path::new(&format!("/proc/{radvd}")).exists()).await;
    must(&["ip", "-n", &hns, "link", "delete", &tap]);
    must(&["ip", "netns", "delete", &g]);
}

/// A DHCP exchange (DISCOVER, then REQUEST of what was offered) from `mac`
/// on the socket's interface: the address acknowledged, if any.
fn dhcp_lease(sock: &std::net::UdpSocket, mac: [u8; 6]) -> Option<std::net::Ipv4Addr> {
    let xid: u32 = rand_xid();
    let packet = |kind: u8, want: Option<std::net::Ipv4Addr>| {
        let mut p = vec![0u8; 236];
        p[0] = 1; // BOOTREQUEST
        p[1] = 1; // Ethernet
        p[2] = 6;
        p[4..8].copy_from_slice(&xid.to_be_bytes());
        p[10] = 0x80; // broadcast replies
        p[28..34].copy_from_slice(&mac);
        p.extend_from_slice(&[0x63, 0x82, 0x53, 0x63, 53, 1, kind]);
        if let Some(ip) = want {
            p.extend_from_slice(&[50, 4]);
            p.extend_from_slice(&ip.octets());
        }
        p.extend_from_slice(&[55, 3, 1, 3, 26, 255]);
        p
    };
    let to = "255.255.255.255:67";
    let mut buf = [0u8; 1500];
    sock.send_to(&packet(1, None), to).ok()?;
    let n = sock.recv(&mut buf).ok()?;
    let offered = std::net::Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
    if n < 240 || buf[4..8] != xid.to_be_bytes() {
        return None;
    }
    sock.send_to(&packet(3, Some(offered)), to).ok()?;
    let n = sock.recv(&mut buf).ok()?;
    // option 53 = 5: ACK
    (n > 242 && buf[4..8] == xid.to_be_bytes() && buf[240..243] == [53, 1, 5]).then_some(offered)
}

fn rand_xid() -> u32 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnsmasq_keeps_serving_while_its_hosts_are_reloaded_under_load() {
    use stratus_network::rpc::{FixedIp, NetworkInfo, NetworkPort, Segment, SubnetInfo};
    if !kernel_tests_possible() {
        return;
    }
    let tag = format!("-{}", std::process::id());
    let state = tempfile::tempdir().unwrap();
    let _guard = Guard { tag: tag.clone(), state_dirs: vec![state.path().to_path_buf()] };
    let (srv, cli) = (format!("dhs{tag}"), format!("dhc{tag}"));
    for n in [&srv, &cli] {
        must(&["ip", "netns", "add", n]);
    }
    must(&["ip", "link", "add", "ns-dhcp", "netns", &srv, "type", "veth", "peer", "name", "eth0", "netns", &cli]);
    must(&["ip", "-n", &cli, "link", "set", "eth0", "address", "fa:16:3e:00:00:01"]);
    must(&["ip", "-n", &srv, "addr", "add", "198.18.142.2/24", "dev", "ns-dhcp"]);
    for (n, dev) in [(&srv, "ns-dhcp"), (&cli, "eth0")] {
        must(&["ip", "-n", n, "link", "set", dev, "up"]);
    }
    let port = |i: u8| NetworkPort {
        id: format!("p{i}"),
        mac_address: format!("fa:16:3e:00:00:{i:02x}"),
        fixed_ips: vec![FixedIp { subnet_id: "s".into(), ip_address: format!("198.18.142.{}", 10 + i) }],
        device_owner: "compute:nova".into(),
        ..Default::default()
    };
    let dhcp = NetworkPort {
        id: "d".into(),
        mac_address: "fa:16:3e:00:00:fe".into(),
        fixed_ips: vec![FixedIp { subnet_id: "s".into(), ip_address: "198.18.142.2".into() }],
        device_owner: "network:dhcp".into(),
        ..Default::default()
    };
    let mut info = NetworkInfo {
        exists: true,
        segment: Segment { network_id: "n".into(), network_type: "vxlan".into(), mtu: 1450, ..Default::default() },
        subnets: vec![SubnetInfo {
            id: "s".into(),
            cidr: "198.18.142.0/24".into(),
            ip_version: 4,
            gateway_ip: Some("198.18.142.1".into()),
            enable_dhcp: true,
            ..Default::default()
        }],
        ports: vec![port(1), dhcp.clone()],
        dhcp_port: Some(dhcp.clone()),
        ..Default::default()
    };
    let dir = state.path().join("dhcp").join("n");
    let d = stratus_netagent::dhcp::Dnsmasq::start("dnsmasq", &srv, "ns-dhcp", dir.clone(), &info, Some(&dhcp))
        .await
        .unwrap();
    eventually("dnsmasq up", 10, || dnsmasq_in(&dir, &srv).is_some()).await;
    let pid = dnsmasq_in(&dir, &srv).unwrap();

    // a client asking for leases as fast as it gets them, for 6 s
    let client = stratus_netagent::kernel::run_in_namespace(&cli, || -> std::io::Result<std::net::UdpSocket> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
        s.set_broadcast(true)?;
        s.set_reuse_address(true)?;
        s.bind_device(Some(b"eth0"))?;
        s.bind(&std::net::SocketAddr::from(([0, 0, 0, 0], 68)).into())?;
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
        Ok(s.into())
    })
    .unwrap()
    .unwrap();
    let asking = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(6);
        let mut leases = 0;
        while Instant::now() < until {
            if dhcp_lease(&client, [0xfa, 0x16, 0x3e, 0, 0, 1]) == Some("198.18.142.11".parse().unwrap()) {
                leases += 1;
            }
        }
        leases
    });
    // meanwhile ports come (the hosts file rewritten, dnsmasq told by SIGHUP)
    for k in 0..80u8 {
        info.ports = (1..=2 + k).map(port).chain(std::iter::once(dhcp.clone())).collect();
        d.reload(&info, Some(&dhcp)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leases = tokio::task::spawn_blocking(move || asking.join().unwrap()).await.unwrap();
    assert!(leases > 10, "only {leases} leases while reloading");
    assert_eq!(dnsmasq_in(&dir, &srv), Some(pid), "dnsmasq died (and was restarted) while reloading under load");

    // a port goes and its address comes back with another MAC: dnsmasq is
    // restarted (a SIGHUP would keep the old lease), and the new port's
    // guest gets the address
    let mut moved = port(1);
    moved.id = "p1b".into();
    moved.mac_address = "fa:16:3e:00:01:01".into();
    info.ports = vec![moved, dhcp.clone()];
    d.reload(&info, Some(&dhcp)).await.unwrap();
    eventually("a new dnsmasq", 10, || dnsmasq_in(&dir, &srv).is_some_and(|p| p != pid)).await;
    must(&["ip", "-n", &cli, "link", "set", "eth0", "address", "fa:16:3e:00:01:01"]);
    let client = stratus_netagent::kernel::run_in_namespace(&cli, || -> std::io::Result<std::net::UdpSocket> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
        s.set_broadcast(true)?;
        s.set_reuse_address(true)?;
        s.bind_device(Some(b"eth0"))?;
        s.bind(&std::net::SocketAddr::from(([0, 0, 0, 0], 68)).into())?;
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
        Ok(s.into())
    })
    .unwrap()
    .unwrap();
    let got =
        tokio::task::spawn_blocking(move || (0..20).find_map(|_| dhcp_lease(&client, [0xfa, 0x16, 0x3e, 0, 1, 1])))
            .await
            .unwrap();
    assert_eq!(got, Some("198.18.142.11".parse().unwrap()), "the address of a deleted port, to its new owner");
    d.stop().await;
}
