//! `stratus bench dataplane`: the real network agent of one host, driven
//! through its bus interface by a stand-in network service in this process
//! (so what is timed is the agent and the kernel, not the API):
//!
//! 1. `PortBound` -> `PortWired` (the network's bridge, the port's security
//!    groups in nftables, its static lease in dnsmasq's hosts, dnsmasq told)
//!    for --ports ports one after another: p50/p99 (target p99 < 200 ms); the
//!    leases are checked in dnsmasq's host file.
//! 2. The host filled to --resync-ports ports, then the agent restarted: the
//!    time its start-up resync takes (target < 10 s), while two stand-in
//!    guests (namespaces on the network's bridge, behind their security
//!    groups) ping each other every 20 ms: packets lost across the restart.
//! 3. TCP from one stand-in guest to the other through the bridge and both
//!    ports' security groups for --seconds: MB/s, and the host's CPU meanwhile.
//! 4. The same across VXLAN: two hosts simulated as namespaces on a veth
//!    underlay, each with its own real agent (tunnel endpoint, l2population
//!    entries), a stand-in guest on each.
//!
//! Needs root, nft and dnsmasq. Uses its own names (bench<pid>) and the
//! ranges 198.18.252.0/22 (guests) and 198.18.248.0/24 (the underlay and the
//! two-host guests); removes all it made.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use stratus_bus::{Bus, Envelope, Handler, Message, RemoteError};
use stratus_netagent::agent::{Agent, AgentOptions, bridge_name, tap_name};
use stratus_netagent::kernel;
use stratus_network::rpc::{
    self, AgentHeartbeat, FixedIp, FloatingIpStatus, GetNetwork, HostState, NetworkInfo, NetworkPort, PortBound,
    PortWired, SecurityGroupRule, Segment, SubnetInfo, SyncHost,
};

use crate::bench_cloud::pct;

#[derive(Args)]
pub struct DataplaneBench {
    /// Ports wired one after another for the latency figures.
    #[arg(long, default_value_t = 200)]
    ports: usize,
    /// Ports on the host when the agent is restarted.
    #[arg(long, default_value_t = 1000)]
    resync_ports: usize,
    /// Seconds of TCP between the stand-in guests.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

/// The stand-in network service: one network, its ports, the wired reports.
struct Stub {
    segment: Segment,
    subnet: SubnetInfo,
    /// The network's DHCP port (None: no DHCP).
    dhcp: Option<NetworkPort>,
    ports: Mutex<Vec<PortBound>>,
    /// The hosts' tunnel endpoints.
    tunnels: BTreeMap<String, String>,
    wired: tokio::sync::mpsc::UnboundedSender<(String, Instant)>,
}

impl Stub {
    /// The network as `host` sees it (the other hosts with ports are its peers).
    fn info(&self, host: &str) -> NetworkInfo {
        let ports = self.ports.lock().map(|p| p.clone()).unwrap_or_default();
        let mut list: Vec<NetworkPort> = ports
            .iter()
            .map(|p| NetworkPort {
                id: p.port_id.clone(),
                mac_address: p.mac_address.clone(),
                fixed_ips: p.fixed_ips.clone(),
                host: p.host.clone(),
                device_owner: "compute:nova".into(),
                extra_dhcp_opts: Vec::new(),
            })
            .collect();
        list.extend(self.dhcp.clone());
        let host_tunnels: BTreeMap<String, String> = self
            .tunnels
            .iter()
            .filter(|(h, _)| h.as_str() != host && ports.iter().any(|p| &p.host == *h))
            .map(|(h, ip)| (h.clone(), ip.clone()))
            .collect();
        NetworkInfo {
            exists: true,
            segment: self.segment.clone(),
            subnets: vec![self.subnet.clone()],
            ports: list,
            dhcp_port: self.dhcp.clone(),
            tunnel_peers: host_tunnels.values().cloned().collect(),
            host_tunnels,
        }
    }
}

#[async_trait::async_trait]
impl Handler for Stub {
    async fn handle(&self, env: Envelope) -> Result<Value, RemoteError> {
        let bad = |e: serde_json::Error| RemoteError::new("BadReply", e.to_string());
        match env.name.as_str() {
            AgentHeartbeat::NAME => Ok(serde_json::json!({"id": "bench"})),
            PortWired::NAME => {
                let m: PortWired = env.decode()?;
                let _ = self.wired.send((m.port_id, Instant::now()));
                Ok(Value::Null)
            }
            GetNetwork::NAME => {
                let m: GetNetwork = env.decode()?;
                serde_json::to_value(self.info(&m.host)).map_err(bad)
            }
            SyncHost::NAME => {
                let m: SyncHost = env.decode()?;
                let mut ports = self.ports.lock().map(|p| p.clone()).unwrap_or_default();
                ports.retain(|p| p.host == m.host);
                serde_json::to_value(HostState { ports, ..Default::default() }).map_err(bad)
            }
            FloatingIpStatus::NAME => Ok(Value::Null),
            other => Err(RemoteError::new("UnexpectedMessage", other.to_string())),
        }
    }
}

fn rules() -> Vec<SecurityGroupRule> {
    let r = |direction: &str, protocol: Option<&str>, min: Option<i64>| SecurityGroupRule {
        security_group_id: "bench".into(),
        direction: direction.into(),
        ethertype: "IPv4".into(),
        protocol: protocol.map(str::to_string),
        port_range_min: min,
        port_range_max: min,
        ..Default::default()
    };
    vec![
        r("egress", None, None),
        r("ingress", Some("icmp"), None),
        r("ingress", Some("tcp"), Some(22)),
        r("ingress", Some("tcp"), Some(5001)),
        r("ingress", Some("udp"), Some(53)),
    ]
}

fn address(i: usize) -> String {
    if i >= 1 << 16 {
        // the two-host guests
        return format!("198.18.248.{}", 10 + (i & 0xff));
    }
    // 198.18.252.10 upward, in the /22
    let n = 10 + i as u32;
    format!("198.18.{}.{}", 252 + n / 256, n % 256)
}

fn port(i: usize, host: &str, segment: &Segment) -> PortBound {
    PortBound {
        port_id: uuid::Uuid::new_v4().to_string(),
        host: host.to_string(),
        mac_address: format!("fa:16:3e:be:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff),
        fixed_ips: vec![FixedIp { subnet_id: "bench-subnet".into(), ip_address: address(i) }],
        segment: segment.clone(),
        admin_state_up: true,
        device_owner: "compute:nova".into(),
        device_id: format!("server-{i}"),
        port_security_enabled: true,
        allowed_address_pairs: Vec::new(),
        security_group_rules: rules(),
        revision_number: 0,
    }
}

fn req() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

/// A stand-in guest: namespace `ns`, its veth's host end the port's tap on
/// `bridge` in host namespace `host` (None: this one).
async fn guest(host: Option<&str>, ns: &str, p: &PortBound, bridge: &str) -> anyhow::Result<()> {
    kernel::ensure_namespace(ns).await?;
    let root = kernel::Netlink::of(host).await?;
    let tap = tap_name(&p.port_id);
    let inner = format!("g{}", &tap[3..]);
    root.ensure_veth(&tap, &inner, Some(1450)).await?;
    root.move_to(&inner, ns).await?;
    let br = root.link(bridge).await?.context("no bridge")?.index;
    root.set_up(&tap, Some(br), Some(1450)).await?;
    let nl = kernel::Netlink::in_namespace(ns).await?;
    nl.set_mac(&inner, kernel::parse_mac(&p.mac_address)?).await?;
    nl.set_up(&inner, None, Some(1450)).await?;
    let prefix = if p.fixed_ips[0].ip_address.starts_with("198.18.248.") { 24 } else { 22 };
    nl.set_addresses(&inner, &[(p.fixed_ips[0].ip_address.parse()?, prefix)]).await?;
    Ok(())
}

/// TCP from the guest in `from` to `to_ip`:5001 in `to` for `secs`: MB/s and
/// the host's CPU busy meanwhile (percent of all cores).
fn tcp(from: &str, to: &str, to_ip: &str, secs: u64) -> anyhow::Result<(f64, f64, f64)> {
    let listen: std::net::SocketAddr = format!("{to_ip}:5001").parse()?;
    let listener = kernel::run_in_namespace(to, move || std::net::TcpListener::bind(listen))??;
    let server = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(n),
                k => n += k as u64,
            }
        }
    });
    let (busy0, all0) = cpu_busy();
    let t = Instant::now();
    let sent = kernel::run_in_namespace(from, move || -> std::io::Result<u64> {
        let mut s = std::net::TcpStream::connect_timeout(&listen, Duration::from_secs(5))?;
        let buf = vec![0x5au8; 1 << 16];
        let mut n = 0u64;
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            s.write_all(&buf)?;
            n += buf.len() as u64;
        }
        Ok(n)
    })??;
    let got = server.join().map_err(|_| anyhow::anyhow!("server thread"))??;
    let el = t.elapsed().as_secs_f64();
    let (busy1, all1) = cpu_busy();
    let cpu = (busy1 - busy0) as f64 / (all1 - all0).max(1) as f64 * 100.0;
    if got != sent {
        bail!("sent {sent} bytes, received {got}");
    }
    Ok((got as f64 / el / 1e6, el, cpu))
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn cpu_busy() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> =
        s.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (v.iter().sum::<u64>().saturating_sub(idle), v.iter().sum())
}

pub async fn run(b: DataplaneBench) -> anyhow::Result<()> {
    stratus_netagent::agent::usable("dnsmasq").map_err(|e| anyhow::anyhow!("the data plane bench needs {e}"))?;
    let pid = std::process::id();
    let host = format!("bench{pid}");
    let network = uuid::Uuid::new_v4().to_string();
    let segment = Segment {
        network_id: network.clone(),
        network_type: "vxlan".into(),
        physical_network: String::new(),
        segmentation_id: Some(4000),
        mtu: 1450,
    };
    let subnet = SubnetInfo {
        id: "bench-subnet".into(),
        cidr: "198.18.252.0/22".into(),
        ip_version: 4,
        gateway_ip: Some("198.18.252.1".into()),
        enable_dhcp: true,
        ..Default::default()
    };
    let dhcp = NetworkPort {
        id: uuid::Uuid::new_v4().to_string(),
        mac_address: "fa:16:3e:be:ff:ff".into(),
        fixed_ips: vec![FixedIp { subnet_id: "bench-subnet".into(), ip_address: "198.18.252.2".into() }],
        host: host.clone(),
        device_owner: "network:dhcp".into(),
        extra_dhcp_opts: Vec::new(),
    };
    let state_dir = std::env::temp_dir().join(format!("stratus-bench-dataplane-{pid}"));
    let opts = AgentOptions {
        host: host.clone(),
        report_interval: Duration::from_secs(30),
        availability_zone: "nova".into(),
        local_ip: None,
        bridge_mappings: BTreeMap::new(),
        interface_mappings: BTreeMap::new(),
        state_dir: state_dir.clone(),
        dnsmasq: "dnsmasq".into(),
        radvd: "radvd".into(),
        firewall_table: Some(format!("sgbench{pid}")),
        metadata: None,
        host_namespace: None,
    };
    let bus = Bus::new(Arc::new(stratus_bus::inproc::InProcess::new())).await?;
    let (tx, mut wired) = tokio::sync::mpsc::unbounded_channel();
    let stub = Arc::new(Stub {
        segment: segment.clone(),
        subnet,
        dhcp: Some(dhcp),
        ports: Mutex::new(Vec::new()),
        tunnels: BTreeMap::new(),
        wired: tx,
    });
    let _plugin = bus.serve(rpc::PLUGIN, stub.clone()).await?;
    let agent = Agent::start(bus.clone(), opts.clone()).await?;
    let (ns_a, ns_b) = (format!("bencha{pid}"), format!("benchb{pid}"));

    let result: anyhow::Result<()> = async {
        // 1. PortBound -> PortWired, one port at a time
        let mut lat = Vec::new();
        let topic = rpc::agent_topic(&host);
        for i in 0..b.ports {
            let p = port(i, &host, &segment);
            stub.ports.lock().map_err(|_| anyhow::anyhow!("lock"))?.push(p.clone());
            let t0 = Instant::now();
            bus.cast(&topic, &p, &req()).await?;
            loop {
                let (id, at) = tokio::time::timeout(Duration::from_secs(30), wired.recv())
                    .await
                    .context("no PortWired within 30 s")?
                    .context("bus closed")?;
                if id == p.port_id {
                    lat.push(at.duration_since(t0).as_secs_f64() * 1000.0);
                    break;
                }
            }
        }
        let first = lat.first().copied().unwrap_or(0.0);
        lat.sort_by(|a, b| a.total_cmp(b));
        let hosts = std::fs::read_to_string(state_dir.join("dhcp").join(&network).join("host")).unwrap_or_default();
        let leased = stub.ports.lock().map(|p| p.iter().filter(|x| hosts.contains(&x.mac_address)).count()).unwrap_or(0);
        println!(
            "dataplane: PortBound -> wired (bridge, security groups, DHCP lease): {} ports one after another: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (the first, which starts the network's DHCP: {first:.1} ms); {leased}/{} leases in dnsmasq's hosts (target p99 < 200 ms: {})",
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat.last().copied().unwrap_or(0.0),
            b.ports,
            if pct(&lat, 0.99) < 200.0 && leased == b.ports { "met" } else { "NOT met" }
        );

        // 2. fill to --resync-ports, then restart the agent while two guests ping
        let t = Instant::now();
        let mut waiting = std::collections::BTreeSet::new();
        for i in b.ports..b.resync_ports.max(b.ports) {
            let p = port(i, &host, &segment);
            stub.ports.lock().map_err(|_| anyhow::anyhow!("lock"))?.push(p.clone());
            waiting.insert(p.port_id.clone());
            bus.cast(&topic, &p, &req()).await?;
        }
        while !waiting.is_empty() {
            let (id, _) = tokio::time::timeout(Duration::from_secs(120), wired.recv()).await.context("filling")?.context("bus")?;
            waiting.remove(&id);
        }
        let total = stub.ports.lock().map(|p| p.len()).unwrap_or(0);
        println!("dataplane: filled to {total} ports in {:.1} s", t.elapsed().as_secs_f64());
        let (pa, pb) = {
            let p = stub.ports.lock().map_err(|_| anyhow::anyhow!("lock"))?;
            (p[0].clone(), p[1].clone())
        };
        let bridge = bridge_name(&network);
        guest(None, &ns_a, &pa, &bridge).await?;
        guest(None, &ns_b, &pb, &bridge).await?;
        let ip_b = pb.fixed_ips[0].ip_address.clone();
        let pinger = tokio::process::Command::new("ip")
            .args(["netns", "exec", &ns_a, "ping", "-i", "0.02", "-W", "1", "-w", "600", &ip_b])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("ping (iputils-ping) in the stand-in guest")?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(agent);
        let t = Instant::now();
        let agent2 = Agent::start(bus.clone(), opts.clone()).await?;
        let resync = t.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(pid) = pinger.id().and_then(|p| rustix_pid(p as i32)) {
            signal_int(pid);
        }
        let out = pinger.wait_with_output().await?;
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        let summary = said.lines().find(|l| l.contains("packets transmitted")).unwrap_or("no ping summary").to_string();
        println!(
            "dataplane: agent restarted with {total} ports on the host: resync {resync:.2} s (target < 10 s: {}); a guest pinging another every 20 ms across it: {summary}",
            if resync < 10.0 { "met" } else { "NOT met" }
        );

        // 3. TCP between the stand-in guests, through the bridge and both ports' security groups
        let (mbs, el, cpu) = tcp(&ns_a, &ns_b, &ip_b, b.seconds)?;
        println!(
            "dataplane: TCP guest to guest on one host (veth, bridge, both ports' security groups, conntrack): {mbs:.0} MB/s over {el:.1} s; the host's CPU meanwhile {cpu:.0}% of {} cores (sender and receiver included)",
            cores()
        );
        agent2.teardown().await?;
        Ok(())
    }
    .await;
    for ns in [&ns_a, &ns_b] {
        let _ = kernel::delete_namespace(ns).await;
    }
    let _ = std::fs::remove_dir_all(&state_dir);
    let fw = stratus_netagent::sg::Firewall::new(format!("sgbench{pid}"));
    let _ = fw.clear().await;
    let root = kernel::Netlink::root()?;
    let _ = root.delete(&bridge_name(&network)).await;
    result?;
    across_vxlan(b.seconds, pid).await
}

/// Step 4: TCP between stand-in guests on two hosts (namespaces on a veth
/// underlay, each with its own agent) across the agents' VXLAN tunnel.
async fn across_vxlan(secs: u64, pid: u32) -> anyhow::Result<()> {
    let (h1, h2) = (format!("benchh1{pid}"), format!("benchh2{pid}"));
    let (g1, g2) = (format!("benchg1{pid}"), format!("benchg2{pid}"));
    let state = std::env::temp_dir().join(format!("stratus-bench-vxlan-{pid}"));
    let mut agents = Vec::new();
    let result: anyhow::Result<()> = async {
        let ips = ["198.18.248.1", "198.18.248.2"];
        for h in [&h1, &h2] {
            kernel::ensure_namespace(h).await?;
        }
        let n1 = kernel::Netlink::in_namespace(&h1).await?;
        n1.ensure_veth("ul0", "ul1", None).await?;
        n1.move_to("ul1", &h2).await?;
        let n2 = kernel::Netlink::in_namespace(&h2).await?;
        for (nl, dev, ip) in [(&n1, "ul0", ips[0]), (&n2, "ul1", ips[1])] {
            nl.set_up("lo", None, None).await?;
            nl.set_up(dev, None, None).await?;
            nl.set_addresses(dev, &[(ip.parse()?, 30)]).await?;
        }
        let hosts = [format!("benchvx1-{pid}"), format!("benchvx2-{pid}")];
        let network = uuid::Uuid::new_v4().to_string();
        let segment = Segment {
            network_id: network.clone(),
            network_type: "vxlan".into(),
            physical_network: String::new(),
            segmentation_id: Some(4001),
            mtu: 1450,
        };
        let subnet = SubnetInfo {
            id: "bench-subnet".into(),
            cidr: "198.18.248.0/24".into(),
            ip_version: 4,
            enable_dhcp: false,
            ..Default::default()
        };
        let (tx, mut wired) = tokio::sync::mpsc::unbounded_channel();
        let stub = Arc::new(Stub {
            segment: segment.clone(),
            subnet,
            dhcp: None,
            ports: Mutex::new(Vec::new()),
            tunnels: hosts.iter().cloned().zip(ips.iter().map(|s| s.to_string())).collect(),
            wired: tx,
        });
        let bus = Bus::new(Arc::new(stratus_bus::inproc::InProcess::new())).await?;
        let _plugin = bus.serve(rpc::PLUGIN, stub.clone()).await?;
        for (i, h) in hosts.iter().enumerate() {
            let opts = AgentOptions {
                host: h.clone(),
                local_ip: Some(ips[i].parse()?),
                bridge_mappings: BTreeMap::new(),
                state_dir: state.join(h),
                firewall_table: Some(format!("sgbenchvx{pid}")),
                host_namespace: Some(if i == 0 { h1.clone() } else { h2.clone() }),
                ..Default::default()
            };
            agents.push(Agent::start(bus.clone(), opts).await?);
        }
        let mut ports = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            let p = port((1 << 16) + i, h, &segment);
            stub.ports.lock().map_err(|_| anyhow::anyhow!("lock"))?.push(p.clone());
            bus.cast(&rpc::agent_topic(h), &p, &req()).await?;
            loop {
                let (id, _) = tokio::time::timeout(Duration::from_secs(30), wired.recv()).await.context("wiring")?.context("bus")?;
                if id == p.port_id {
                    break;
                }
            }
            ports.push(p);
        }
        // both ports exist: each host learns the other (as the service tells them)
        for h in &hosts {
            bus.cast(&rpc::agent_topic(h), &rpc::NetworkChanged { network_id: network.clone() }, &req()).await?;
        }
        let bridge = bridge_name(&network);
        guest(Some(&h1), &g1, &ports[0], &bridge).await?;
        guest(Some(&h2), &g2, &ports[1], &bridge).await?;
        let to = ports[1].fixed_ips[0].ip_address.clone();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ok = tokio::process::Command::new("ip")
                .args(["netns", "exec", &g1, "ping", "-c", "1", "-W", "1", &to])
                .output()
                .await?
                .status
                .success();
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!("the guests on two hosts never reached each other over VXLAN");
            }
        }
        let (mbs, el, cpu) = tcp(&g1, &g2, &to, secs)?;
        println!(
            "dataplane: TCP guest to guest across VXLAN between two hosts (namespaces on a veth underlay; both ports' security groups, encapsulation both ways, on this one machine): {mbs:.0} MB/s over {el:.1} s; the machine's CPU meanwhile {cpu:.0}% of {} cores (both hosts, sender and receiver included)",
            cores()
        );
        for a in &agents {
            a.teardown().await?;
        }
        Ok(())
    }
    .await;
    drop(agents);
    for ns in [&g1, &g2, &h1, &h2] {
        let _ = kernel::delete_namespace(ns).await;
    }
    let _ = std::fs::remove_dir_all(&state);
    result
}

fn rustix_pid(p: i32) -> Option<i32> {
    (p > 0).then_some(p)
}

fn signal_int(pid: i32) {
    let _ = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
}
