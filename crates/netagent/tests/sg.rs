//! Security groups with real traffic: a bridge, network namespaces standing
//! in for guests (each on the bridge through a veth whose host end is named
//! like a tap), addresses in 198.18.0.0/15 only.
//!
//! Needs root, `nft`, `conntrack`, `ping` and `ip`. Without them these tests
//! fail, unless STRATUS_SKIP_KERNEL_TESTS=1 (then they say loudly that they
//! skipped). Every name carries the process id and a per-test number, and a
//! guard removes namespaces, links and tables however the test ends.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use stratus_netagent::sg::{Firewall, egress_chain, ingress_chain, spoof_chain};
use stratus_network::rpc::{FixedIp, PortBound, SecurityGroupRule};

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn must(args: &[&str]) {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn have(program: &str) -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].iter().any(|d| std::path::Path::new(d).join(program).is_file())
}

/// False (after a loud message) when the test may skip; panics when it may not.
fn kernel_tests_possible() -> bool {
    let root = rustix::process::geteuid().is_root();
    let missing: Vec<&str> = ["nft", "conntrack", "ping", "ip"].into_iter().filter(|p| !have(p)).collect();
    if root && missing.is_empty() {
        return true;
    }
    let why = format!("root: {root}, missing programs: {missing:?}");
    if std::env::var("STRATUS_SKIP_KERNEL_TESTS").as_deref() == Ok("1") {
        eprintln!("!!!!!!!! SKIPPED security group kernel test ({why}); STRATUS_SKIP_KERNEL_TESTS=1 !!!!!!!!");
        return false;
    }
    panic!(
        "security group kernel tests need root, nft, conntrack, ping and ip ({why}); set STRATUS_SKIP_KERNEL_TESTS=1 to skip"
    );
}

/// A bridge with guests; removes everything it made when dropped.
struct Lab {
    bridge: String,
    table: String,
    guests: Vec<Guest>,
    /// 198.18.<a>.<b>: the /24 of this lab.
    net: String,
}

#[derive(Clone)]
struct Guest {
    ns: String,
    tap: String,
    ip: String,
    mac: String,
    port_id: String,
}

impl Lab {
    fn new(test: u32, guests: usize) -> Lab {
        let pid = std::process::id();
        // A /24 of 198.18.0.0/15 per process and test.
        let idx = (pid.wrapping_mul(8).wrapping_add(test)) % 512;
        let net = format!("198.{}.{}", 18 + idx / 256, idx % 256);
        let mut lab =
            Lab { bridge: format!("sgb{pid}x{test}"), table: format!("sgt-{pid}-{test}"), guests: Vec::new(), net };
        must(&["ip", "link", "add", &lab.bridge, "type", "bridge"]);
        must(&["ip", "link", "set", &lab.bridge, "up"]);
        for i in 0..guests {
            let letter = (b'a' + i as u8) as char;
            let g = Guest {
                ns: format!("sg-{pid}-{test}-{letter}"),
                tap: format!("tap{pid}x{test}{letter}"),
                ip: format!("{}.{}", lab.net, i + 1),
                mac: format!("02:5a:{:02x}:{:02x}:{:02x}:{:02x}", (pid >> 8) & 0xff, pid & 0xff, test, i + 1),
                port_id: format!("{pid:08x}-{test:04x}-4000-8000-{:012x}", i + 1),
            };
            lab.guests.push(g.clone());
            must(&["ip", "netns", "add", &g.ns]);
            must(&["ip", "link", "add", &g.tap, "type", "veth", "peer", "name", "eth0", "netns", &g.ns]);
            must(&["ip", "link", "set", &g.tap, "master", &lab.bridge, "up"]);
            must(&["ip", "-n", &g.ns, "link", "set", "lo", "up"]);
            must(&["ip", "-n", &g.ns, "link", "set", "eth0", "address", &g.mac, "up"]);
            must(&["ip", "-n", &g.ns, "addr", "add", &format!("{}/24", g.ip), "dev", "eth0"]);
        }
        lab
    }

    fn firewall(&self) -> Firewall {
        Firewall::new(self.table.clone())
    }

    fn g(&self, i: usize) -> &Guest {
        &self.guests[i]
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for g in &self.guests {
            let _ = run(&["ip", "netns", "del", &g.ns]);
            let _ = run(&["ip", "link", "del", &g.tap]);
        }
        let _ = run(&["ip", "link", "del", &self.bridge]);
        let _ = run(&["nft", "delete", "table", "bridge", &self.table]);
        let _ = run(&["nft", "delete", "table", "inet", &self.table]);
    }
}

fn rule(direction: &str, protocol: Option<&str>, ports: Option<(i64, i64)>) -> SecurityGroupRule {
    SecurityGroupRule {
        security_group_id: "sg-test".into(),
        direction: direction.into(),
        ethertype: "IPv4".into(),
        protocol: protocol.map(str::to_string),
        port_range_min: ports.map(|p| p.0),
        port_range_max: ports.map(|p| p.1),
        ..Default::default()
    }
}

/// Neutron's default group, less its ingress-from-itself rule: egress to anywhere.
fn egress_all() -> Vec<SecurityGroupRule> {
    vec![rule("egress", None, None)]
}

fn port(g: &Guest, rules: Vec<SecurityGroupRule>) -> PortBound {
    PortBound {
        port_id: g.port_id.clone(),
        host: "test".into(),
        mac_address: g.mac.clone(),
        fixed_ips: vec![FixedIp { subnet_id: "s".into(), ip_address: g.ip.clone() }],
        admin_state_up: true,
        port_security_enabled: true,
        security_group_rules: rules,
        ..Default::default()
    }
}

/// Run `f` in a thread inside network namespace `ns` (sockets made there
/// stay there).
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        rustix::thread::move_into_link_name_space(fd.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
        f()
    })
    .join()
    .unwrap_or_else(|_| panic!("thread in {ns} panicked"))
}

fn ping(ns: &str, to: &str, from: Option<&str>) -> bool {
    let mut args = vec!["ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-W", "1"];
    if let Some(f) = from {
        args.extend(["-I", f]);
    }
    args.push(to);
    run(&args).status.success()
}

/// An echo server on `ip:port` inside `ns`, for the life of the process.
fn echo_server(ns: &str, ip: &str, port: u16) {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap_or_else(|e| panic!("{e}"));
    let listener = in_ns(ns, move || TcpListener::bind(addr)).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn connect(ns: &str, ip: &str, port: u16) -> Option<TcpStream> {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap_or_else(|e| panic!("{e}"));
    let s = in_ns(ns, move || TcpStream::connect_timeout(&addr, Duration::from_millis(1500))).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(1500))).ok()?;
    Some(s)
}

/// Whether a line sent on `s` comes back.
fn echoes(s: &mut TcpStream, msg: &str) -> bool {
    if s.write_all(msg.as_bytes()).is_err() {
        return false;
    }
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf).is_ok() && buf == msg.as_bytes()
}

fn table_json(family: &str, table: &str) -> Option<serde_json::Value> {
    let out = run(&["nft", "-j", "list", "table", family, table]);
    out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}")))
}

fn chain_names(table: &str) -> Vec<String> {
    let Some(v) = table_json("bridge", table) else { return vec![] };
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["chain"]["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn default_deny_a_tcp_rule_lets_in_and_its_removal_cuts_the_connection() {
    if !kernel_tests_possible() {
        return;
    }
    let lab = Lab::new(1, 2);
    let (a, b) = (lab.g(0).clone(), lab.g(1).clone());
    let fw = lab.firewall();
    fw.ensure().await.unwrap_or_else(|e| panic!("ensure: {e:#}"));
    fw.ensure().await.unwrap_or_else(|e| panic!("ensure twice: {e:#}"));
    echo_server(&b.ns, &b.ip, 22);

    fw.set_port(&port(&a, egress_all()), &a.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    fw.set_port(&port(&b, egress_all()), &b.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    let mut ports = fw.ports().await.unwrap_or_else(|e| panic!("{e:#}"));
    ports.sort();
    assert_eq!(ports, vec![a.port_id.clone(), b.port_id.clone()]);

    // Default deny ingress: nothing reaches b.
    assert!(!ping(&a.ns, &b.ip, None), "ping got through without an ingress rule");
    assert!(connect(&a.ns, &b.ip, 22).is_none(), "TCP got through without an ingress rule");

    // Ten rules, the ssh one among them; timed for the port-wiring budget.
    let mut rules = egress_all();
    rules.push(rule("ingress", Some("tcp"), Some((22, 22))));
    for p in 0..8 {
        rules.push(rule("ingress", Some("udp"), Some((5000 + p, 5000 + p))));
    }
    let with_ssh = port(&b, rules.clone());
    let started = Instant::now();
    fw.set_port(&with_ssh, &b.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    let first = started.elapsed();
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        fw.set_port(&with_ssh, &b.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
        times.push(t.elapsed());
    }
    times.sort();
    eprintln!(
        "set_port with {} rules: first {:?}, again: median {:?}, max {:?}",
        rules.len(),
        first,
        times[times.len() / 2],
        times[times.len() - 1]
    );

    let mut conn = connect(&a.ns, &b.ip, 22).expect("a TCP 22 rule lets a connection in");
    assert!(echoes(&mut conn, "hello\n"), "the connection carries data");
    // The flow sits in the bridge's conntrack zone, not in zone 0.
    let ct = run(&["conntrack", "-L", "-p", "tcp", "-d", &b.ip]);
    let ct = String::from_utf8_lossy(&ct.stdout);
    assert!(ct.contains("dport=22") && ct.contains("zone="), "no zoned conntrack entry: {ct}");
    assert!(!ping(&a.ns, &b.ip, None), "a TCP rule lets no ICMP in");

    // Without the rule, the established connection is cut, and no new one
    // comes. Done by a fresh firewall (an agent restart): what was there
    // (rules, addresses, zone) is read back from the kernel.
    let restarted = lab.firewall();
    let t = Instant::now();
    restarted.set_port(&port(&b, egress_all()), &b.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("set_port removing rules (conntrack cleanup included): {:?}", t.elapsed());
    assert!(!echoes(&mut conn, "again\n"), "the established connection survived the rule's removal");
    assert!(connect(&a.ns, &b.ip, 22).is_none(), "a new connection got in without the rule");

    // The rule back: connections again.
    restarted.set_port(&with_ssh, &b.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    let mut conn = connect(&a.ns, &b.ip, 22).expect("the rule is back");
    assert!(echoes(&mut conn, "back\n"));
}

#[tokio::test]
async fn remote_group_membership_is_a_set_update() {
    if !kernel_tests_possible() {
        return;
    }
    let lab = Lab::new(2, 3);
    let (a, b, c) = (lab.g(0).clone(), lab.g(1).clone(), lab.g(2).clone());
    let fw = lab.firewall();
    fw.ensure().await.unwrap_or_else(|e| panic!("{e:#}"));
    echo_server(&b.ns, &b.ip, 22);
    let group = "6f1c1a52-0000-4000-8000-000000000001".to_string();

    fw.set_port(&port(&a, egress_all()), &a.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    fw.set_port(&port(&c, egress_all()), &c.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    let mut from_group = rule("ingress", Some("tcp"), Some((22, 22)));
    from_group.remote_group_id = Some(group.clone());
    from_group.remote_group_ips = vec![a.ip.clone()];
    let mut rules = egress_all();
    rules.push(from_group);
    fw.set_port(&port(&b, rules), &b.tap).await.unwrap_or_else(|e| panic!("{e:#}"));

    let mut from_a = connect(&a.ns, &b.ip, 22).expect("a member gets in");
    assert!(echoes(&mut from_a, "a\n"));
    assert!(connect(&c.ns, &b.ip, 22).is_none(), "a non-member got in");

    // c joins: one set update, no port rewritten.
    let chains_before = table_json("bridge", &lab.table);
    fw.set_group_members(&group, "IPv4", &[a.ip.clone(), c.ip.clone()]).await.unwrap_or_else(|e| panic!("{e:#}"));
    let mut from_c = connect(&c.ns, &b.ip, 22).expect("the new member gets in");
    assert!(echoes(&mut from_c, "c\n"));
    let rules_of = |v: &Option<serde_json::Value>| {
        v.as_ref().map(|v| {
            v["nftables"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|o| o.get("rule").is_some())
                .map(|o| o["rule"]["handle"].clone())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(
        rules_of(&chains_before),
        rules_of(&table_json("bridge", &lab.table)),
        "a membership change rewrote rules"
    );

    // a leaves: its established connection is cut, c's is not.
    fw.set_group_members(&group, "IPv4", std::slice::from_ref(&c.ip)).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!echoes(&mut from_a, "a again\n"), "a former member's connection survived");
    assert!(echoes(&mut from_c, "c again\n"), "a member's connection was cut");
    assert!(connect(&a.ns, &b.ip, 22).is_none(), "a former member got in");
}

#[tokio::test]
async fn spoofed_sources_are_dropped_and_allowed_pairs_are_not() {
    if !kernel_tests_possible() {
        return;
    }
    let lab = Lab::new(3, 2);
    let (a, b) = (lab.g(0).clone(), lab.g(1).clone());
    let fw = lab.firewall();
    fw.ensure().await.unwrap_or_else(|e| panic!("{e:#}"));
    fw.set_port(&port(&a, egress_all()), &a.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    let mut icmp_in = egress_all();
    icmp_in.push(rule("ingress", Some("icmp"), None));
    fw.set_port(&port(&b, icmp_in), &b.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(ping(&a.ns, &b.ip, None), "ICMP from a's own address");

    // A second address inside a: not a's, so dropped.
    let other = format!("{}.99", lab.net);
    must(&["ip", "-n", &a.ns, "addr", "add", &format!("{other}/24"), "dev", "eth0"]);
    assert!(!ping(&a.ns, &b.ip, Some(&other)), "a spoofed IPv4 source got through");

    // As an allowed address pair, it is a's.
    let mut a_port = port(&a, egress_all());
    a_port.allowed_address_pairs = vec![json!({"ip_address": format!("{}.96/29", lab.net)})];
    fw.set_port(&a_port, &a.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(ping(&a.ns, &b.ip, Some(&other)), "an allowed address pair (CIDR) was dropped");

    // Another MAC: dropped (before the bridge learns it).
    must(&["ip", "-n", &a.ns, "link", "set", "eth0", "address", "02:5a:ee:ee:ee:ee"]);
    must(&["ip", "-n", &b.ns, "neigh", "flush", "all"]);
    assert!(!ping(&a.ns, &b.ip, None), "a spoofed MAC got through");
}

#[tokio::test]
async fn port_security_off_removal_and_clear() {
    if !kernel_tests_possible() {
        return;
    }
    let lab = Lab::new(4, 2);
    let (a, b) = (lab.g(0).clone(), lab.g(1).clone());
    let fw = lab.firewall();
    fw.ensure().await.unwrap_or_else(|e| panic!("{e:#}"));
    fw.set_port(&port(&a, egress_all()), &a.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    fw.set_port(&port(&b, vec![]), &b.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!ping(&a.ns, &b.ip, None), "default deny");

    // Port security off: everything passes, even from a spoofed address.
    let mut open = port(&b, vec![]);
    open.port_security_enabled = false;
    fw.set_port(&open, &b.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(ping(&a.ns, &b.ip, None), "port security off still filtered ingress");
    let other = format!("{}.77", lab.net);
    must(&["ip", "-n", &b.ns, "addr", "add", &format!("{other}/24"), "dev", "eth0"]);
    // a has no ingress rules: test b's unfiltered egress against a third
    // party that accepts everything, the bridge itself.
    must(&["ip", "addr", "add", &format!("{}.254/24", lab.net), "dev", &lab.bridge]);
    assert!(ping(&b.ns, &format!("{}.254", lab.net), Some(&other)), "port security off still filtered egress");

    // And on again: filtered again.
    fw.set_port(&port(&b, vec![]), &b.tap).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!ping(&a.ns, &b.ip, None), "port security back on, still open");

    // Removing the port removes its chains (and its filtering).
    fw.remove_port(&b.port_id).await.unwrap_or_else(|e| panic!("{e:#}"));
    fw.remove_port(&b.port_id).await.unwrap_or_else(|e| panic!("removing twice: {e:#}"));
    assert_eq!(fw.ports().await.unwrap_or_else(|e| panic!("{e:#}")), vec![a.port_id.clone()]);
    let chains = chain_names(&lab.table);
    for c in [spoof_chain(&b.port_id), egress_chain(&b.port_id), ingress_chain(&b.port_id)] {
        assert!(!chains.contains(&c), "{c} is still there: {chains:?}");
    }
    assert!(chains.contains(&egress_chain(&a.port_id)));
    assert!(ping(&a.ns, &b.ip, None), "a removed port is still filtered");

    // A fresh firewall (an agent restart) reads the same state.
    let again = lab.firewall();
    assert_eq!(again.ports().await.unwrap_or_else(|e| panic!("{e:#}")), vec![a.port_id.clone()]);
    again.remove_port(&a.port_id).await.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(again.ports().await.unwrap_or_else(|e| panic!("{e:#}")), Vec::<String>::new());

    fw.clear().await.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(table_json("bridge", &lab.table).is_none(), "the bridge table survived clear()");
    assert!(table_json("inet", &lab.table).is_none(), "the inet table survived clear()");
    fw.clear().await.unwrap_or_else(|e| panic!("clear twice: {e:#}"));
}
