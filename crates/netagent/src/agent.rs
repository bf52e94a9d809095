//! The real network agent of one host: it serves `network-agent.<host>`
//! ([`PortBound`], [`PortUnbound`], [`NetworkChanged`], [`RouterUpdated`],
//! [`FloatingIpChanged`]), reports itself alive as Neutron's Linux bridge,
//! DHCP and L3 agents, and on start converges the host to what the service
//! says it should hold ([`SyncHost`]), removing what it no longer knows.
//!
//! On the host:
//! - one bridge per network (`brq` + 11 characters of its id, the name the
//!   port's `binding:vif_details` gives the hypervisor), with a VXLAN device
//!   (`vxlan-<vni>`, flood entries to the other hosts' tunnel endpoints) when
//!   the host has a tunnel address; a flat network on a mapped physical
//!   network uses the mapped bridge (bootstrap: `public` -> `br-ex`, which
//!   holds the external subnet's gateway address, as devstack's host does);
//! - per network with a DHCP-enabled subnet, namespace `qdhcp-<network>` with
//!   the host's DHCP port (`ns-<port>`, its peer `tap<port>` on the bridge)
//!   and a supervised dnsmasq;
//! - per router, namespace `qrouter-<router>` with its interfaces (`qr-`)
//!   and gateway (`qg-`), forwarding on, SNAT and floating IPs in nftables;
//! - the containment table: nothing forwarded between a mapped external
//!   bridge and the host's other interfaces.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use stratus_bus::{Bus, Envelope, Handler, Message, RemoteError};
use stratus_network::rpc::{
    self, AgentHeartbeat, FloatingIpChanged, FloatingIpStatus, GetNetwork, HostState, NetworkChanged, NetworkInfo,
    PortBound, PortUnbound, PortWired, RouterPort, RouterUpdated, Segment, SyncHost,
};
use tokio::sync::Mutex;

use crate::dhcp::Dnsmasq;
use crate::kernel::{self, Netlink};
use crate::nat::{self, FloatingNat};

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    pub host: String,
    pub report_interval: Duration,
    pub availability_zone: String,
    /// This host's tunnel endpoint (VXLAN); None: no tunnels (one host).
    pub local_ip: Option<Ipv4Addr>,
    /// Physical network -> bridge (`public` -> `br-ex`).
    pub bridge_mappings: BTreeMap<String, String>,
    /// Physical network -> interface (Neutron's
    /// `physical_interface_mappings`): a flat network on it puts the
    /// interface itself into the network's bridge, a VLAN network its
    /// 802.1Q device `<interface>.<vid>`.
    pub interface_mappings: BTreeMap<String, String>,
    /// dnsmasq's files, per network.
    pub state_dir: PathBuf,
    pub dnsmasq: String,
    /// The radvd binary (routers' IPv6 advertisements).
    pub radvd: String,
    /// The nftables tables of the security groups (None: no filtering).
    pub firewall_table: Option<String>,
    /// The compute metadata API and the proxies' shared secret (None: no
    /// metadata proxies).
    pub metadata: Option<(String, String)>,
    /// The network namespace that is this host (None: the agent's own), for
    /// several hosts simulated on one machine: its bridges, tunnels and
    /// tables go there; the DHCP and router namespaces it makes are named
    /// `<name>@<host namespace>`, since named namespaces are machine-wide.
    pub host_namespace: Option<String>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            host: "localhost".into(),
            report_interval: Duration::from_secs(30),
            availability_zone: "nova".into(),
            local_ip: None,
            bridge_mappings: BTreeMap::from([("public".to_string(), "br-ex".to_string())]),
            interface_mappings: BTreeMap::new(),
            state_dir: std::env::temp_dir().join("stratus-netagent"),
            dnsmasq: "dnsmasq".into(),
            radvd: "radvd".into(),
            firewall_table: Some(crate::sg::DEFAULT_TABLE.into()),
            metadata: None,
            host_namespace: None,
        }
    }
}

/// Remove what the agent whose state directory is `state_dir` made, without
/// a running agent or a service (`stratus down`): its dnsmasq processes,
/// namespaces, veths, bridges and tunnels (guests' taps are the
/// hypervisor's, stopped first), then the mapped bridges once idle, with
/// the containment rule. Returns how many namespaces and links went.
pub async fn teardown_host(
    state_dir: &std::path::Path,
    mapped: &[String],
    firewall_table: Option<&str>,
) -> anyhow::Result<usize> {
    // dnsmasq (per network) and radvd (per router) left running
    for e in ["dhcp", "ra"].iter().filter_map(|d| std::fs::read_dir(state_dir.join(d)).ok()).flatten().flatten() {
        if let Some(pid) = std::fs::read_to_string(e.path().join("pid")).ok().and_then(|s| s.trim().parse::<i32>().ok())
            && let Some(p) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        }
    }
    let owned: BTreeSet<String> =
        std::fs::read(state_dir.join(OWNED)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let root = Netlink::root()?;
    let mut n = 0;
    for name in &owned {
        if name.starts_with("qdhcp-") || name.starts_with("qrouter-") {
            kernel::delete_namespace(name).await?;
            n += 1;
        } else if root.link(name).await?.is_some() {
            root.delete(name).await?;
            n += 1;
        }
    }
    let _ = std::fs::remove_dir_all(state_dir);
    let links = root.links().await?;
    for b in mapped {
        let Some(l) = links.iter().find(|l| &l.name == b) else { continue };
        if links.iter().any(|x| x.master == Some(l.index)) {
            continue;
        }
        root.delete(b).await?;
        nat::delete_table(None, "inet", &nat::contain_table(b)).await?;
        n += 1;
    }
    if let Some(t) = firewall_table {
        crate::sg::Firewall::new(t).clear().await?;
    }
    Ok(n)
}

/// Names (Neutron's Linux bridge conventions, 15 characters at most).
pub fn bridge_name(network: &str) -> String {
    stratus_network::api::ports::bridge_name(network)
}
fn short(id: &str) -> String {
    id.chars().take(11).collect()
}
pub fn tap_name(port: &str) -> String {
    format!("tap{}", short(port))
}
pub fn dhcp_namespace(network: &str) -> String {
    format!("qdhcp-{network}")
}
pub fn router_namespace(router: &str) -> String {
    format!("qrouter-{router}")
}
fn vxlan_name(vni: i64) -> String {
    format!("vxlan-{vni}")
}
/// The 802.1Q device of VLAN `vid` on `parent` (Neutron's naming; a parent
/// of at most 10 characters keeps it within 15).
pub fn vlan_name(parent: &str, vid: i64) -> String {
    format!("{parent}.{vid}")
}

#[derive(Default)]
struct Net {
    info: Option<NetworkInfo>,
    dnsmasq: Option<Dnsmasq>,
    /// Peers whose flood entries are written.
    peers: BTreeSet<String>,
    /// Forwarding entries of the other hosts' ports (MAC, tunnel endpoint).
    fdb: BTreeSet<(String, String)>,
    /// Neighbour entries the VXLAN device answers with (address, MAC).
    arp: BTreeSet<(String, String)>,
}

#[derive(Default)]
struct Plane {
    ports: BTreeMap<String, PortBound>,
    nets: BTreeMap<String, Net>,
    routers: BTreeMap<String, RouterUpdated>,
    fips: BTreeMap<String, FloatingIpChanged>,
    /// Floating IPs told deleted (ids are never reused: a late notice is ignored).
    gone: BTreeSet<String>,
    /// Routers told deleted, likewise: notices are handled side by side, so the
    /// update of a router's last change can come after its deletion, and must
    /// not make its namespace again (its gateway address, handed out anew as a
    /// floating IP, would answer there).
    routers_gone: BTreeSet<String>,
    /// The radvd of each router advertising IPv6 prefixes.
    radvd: BTreeMap<String, crate::ra::Radvd>,
}

impl Plane {
    /// Whether to apply a router notice: not an update of a router told
    /// deleted before (a late one); a deletion is remembered.
    fn admit_router(&mut self, m: &RouterUpdated) -> bool {
        if m.deleted {
            self.routers_gone.insert(m.router_id.clone());
            return true;
        }
        !self.routers_gone.contains(&m.router_id)
    }
}

struct Inner {
    opts: AgentOptions,
    bus: Bus,
    root: Netlink,
    plane: Mutex<Plane>,
    /// The namespaces and links this agent made (kept in its state
    /// directory): a resync removes only those, never another cloud's on
    /// the same machine.
    owned: std::sync::Mutex<BTreeSet<String>>,
    firewall: Option<crate::sg::Firewall>,
    /// The metadata proxy of each namespace.
    proxies: std::sync::Mutex<BTreeMap<String, tokio::task::JoinHandle<()>>>,
}

/// A running agent (its tasks stop when it is dropped; what it programmed stays).
pub struct Agent {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    inner: Arc<Inner>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// Can this process program the kernel (root, netlink, `ip`, `nft`, dnsmasq)?
pub fn usable(dnsmasq: &str) -> Result<(), String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not root".into());
    }
    for b in ["ip", "nft", dnsmasq] {
        if which(b).is_none() {
            return Err(format!("{b} is not installed"));
        }
    }
    Ok(())
}

fn which(b: &str) -> Option<PathBuf> {
    if b.contains('/') {
        return Some(PathBuf::from(b)).filter(|p| p.exists());
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(b)).find(|p| p.exists()))
        .unwrap_or(None)
        .or_else(|| ["/usr/sbin", "/sbin"].iter().map(|d| PathBuf::from(d).join(b)).find(|p| p.exists()))
}

/// The file (in the state directory) of what the agent made.
const OWNED: &str = "owned.json";

const AGENTS: &[(&str, &str, &str, bool)] = &[
    ("Linux bridge agent", "neutron-linuxbridge-agent", "N/A", false),
    ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent", true),
    ("L3 agent", "neutron-l3-agent", "l3_agent", true),
];

impl Agent {
    /// Report alive, converge the host to the service's state, then serve.
    pub async fn start(bus: Bus, opts: AgentOptions) -> anyhow::Result<Agent> {
        let root = Netlink::of(opts.host_namespace.as_deref()).await?;
        let opts_firewall = opts.firewall_table.as_deref().map(|t| match &opts.host_namespace {
            Some(ns) => crate::sg::Firewall::in_namespace(t, ns),
            None => crate::sg::Firewall::new(t),
        });
        let owned = std::fs::read(opts.state_dir.join(OWNED))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let inner = Arc::new(Inner {
            opts,
            bus: bus.clone(),
            root,
            plane: Mutex::new(Plane::default()),
            owned: std::sync::Mutex::new(owned),
            firewall: opts_firewall,
            proxies: std::sync::Mutex::new(BTreeMap::new()),
        });
        if let Some(fw) = &inner.firewall {
            let t = Instant::now();
            fw.ensure().await.context("security groups")?;
            tracing::info!(took = ?t.elapsed(), "security group tables read back");
        }
        inner.report(true).await?;
        inner.ensure_external().await?;
        let mut tasks = Vec::new();
        tasks.push(bus.serve(&rpc::agent_topic(&inner.opts.host), Arc::new(Serve(inner.clone()))).await?);
        if let Err(e) = inner.sync().await {
            tracing::warn!(error = %format!("{e:#}"), "network agent: first sync failed (retried with the heartbeats)");
        }
        let i = inner.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(i.opts.report_interval.max(Duration::from_millis(100)));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = i.report(false).await {
                    tracing::warn!(error = %e, "network agent heartbeat failed");
                }
                if let Err(e) = i.tidy().await {
                    tracing::warn!(error = %format!("{e:#}"), "network agent: removing what is unused failed");
                }
            }
        }));
        tracing::info!(host = %inner.opts.host, "network agent up (Linux bridge, dnsmasq, nftables)");
        Ok(Agent { tasks, inner })
    }

    /// The name of `network`'s DHCP namespace on this host.
    pub fn dhcp_namespace(&self, network: &str) -> String {
        self.inner.dhcp_ns(network)
    }

    /// The name of `router`'s namespace on this host.
    pub fn router_namespace(&self, router: &str) -> String {
        self.inner.router_ns(router)
    }

    /// Converge again (what a reconnect does).
    pub async fn sync(&self) -> anyhow::Result<()> {
        self.inner.sync().await
    }

    /// Remove everything this agent programs on the host (for tests and
    /// `stratus down`): namespaces, bridges, VXLAN devices, dnsmasq, tables.
    pub async fn teardown(&self) -> anyhow::Result<()> {
        let mut p = self.inner.plane.lock().await;
        for (_, n) in std::mem::take(&mut p.nets) {
            if let Some(d) = n.dnsmasq {
                d.stop().await;
            }
        }
        for (_, r) in std::mem::take(&mut p.radvd) {
            r.stop().await;
        }
        p.ports.clear();
        p.routers.clear();
        p.fips.clear();
        drop(p);
        self.inner.remove_unknown(&BTreeSet::new(), &BTreeSet::new(), &BTreeSet::new()).await?;
        for b in self.inner.opts.bridge_mappings.values() {
            nat::delete_table(self.inner.host_ns(), "inet", &nat::contain_table(b)).await?;
        }
        if let Some(fw) = &self.inner.firewall {
            fw.clear().await?;
        }
        Ok(())
    }
}

/// The metadata proxies are the agent's tasks: they stop with it.
impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut p) = self.proxies.lock() {
            for (_, h) in std::mem::take(&mut *p) {
                h.abort();
            }
        }
    }
}

impl Inner {
    /// The host's namespace when it is not the agent's own.
    fn host_ns(&self) -> Option<&str> {
        self.opts.host_namespace.as_deref()
    }

    /// A DHCP or router namespace's name: Neutron's, scoped to the host
    /// when the host is a namespace.
    fn scoped(&self, name: String) -> String {
        match self.host_ns() {
            Some(h) => format!("{name}@{h}"),
            None => name,
        }
    }
    fn dhcp_ns(&self, network: &str) -> String {
        self.scoped(dhcp_namespace(network))
    }
    fn router_ns(&self, router: &str) -> String {
        self.scoped(router_namespace(router))
    }

    /// Note (`true`) or forget a namespace or link this agent made.
    fn own(&self, name: &str, made: bool) {
        let Ok(mut o) = self.owned.lock() else { return };
        let changed = if made { o.insert(name.to_string()) } else { o.remove(name) };
        if changed {
            let _ = std::fs::create_dir_all(&self.opts.state_dir);
            let tmp = self.opts.state_dir.join("owned.tmp");
            if let Ok(b) = serde_json::to_vec(&*o)
                && std::fs::write(&tmp, b).is_ok()
            {
                let _ = std::fs::rename(&tmp, self.opts.state_dir.join(OWNED));
            }
        }
    }

    fn owns(&self, name: &str) -> bool {
        self.owned.lock().map(|o| o.contains(name)).unwrap_or(false)
    }

    async fn make_namespace(&self, ns: &str) -> anyhow::Result<()> {
        self.own(ns, true);
        kernel::ensure_namespace(ns).await
    }

    async fn remove_namespace(&self, ns: &str) -> anyhow::Result<()> {
        kernel::delete_namespace(ns).await?;
        self.own(ns, false);
        Ok(())
    }

    async fn remove_link(&self, name: &str) -> anyhow::Result<()> {
        self.root.delete(name).await?;
        self.own(name, false);
        Ok(())
    }

    async fn report(&self, start: bool) -> anyhow::Result<()> {
        let p = self.plane.lock().await;
        let (ports, routers, fips, nets) = (p.ports.len(), p.routers.len(), p.fips.len(), p.nets.len());
        drop(p);
        for (agent_type, binary, topic, zoned) in AGENTS {
            let configurations = match *agent_type {
                "Linux bridge agent" => json!({
                    "bridge_mappings": self.opts.bridge_mappings,
                    "interface_mappings": {},
                    "tunnel_types": if self.opts.local_ip.is_some() { json!(["vxlan"]) } else { json!([]) },
                    "tunneling_ip": self.opts.local_ip.map(|i| i.to_string()).unwrap_or_default(),
                    "l2_population": true,
                    "devices": ports,
                }),
                "DHCP agent" => json!({
                    "dhcp_driver": "dnsmasq", "dhcp_lease_duration": 86400, "networks": nets,
                    "notifies_port_ready": true,
                }),
                _ => json!({
                    "agent_mode": "legacy", "routers": routers, "floating_ips": fips,
                    "handle_internal_only_routers": true, "interface_driver": "linuxbridge",
                }),
            };
            let m = AgentHeartbeat {
                host: self.opts.host.clone(),
                binary: binary.to_string(),
                agent_type: agent_type.to_string(),
                topic: topic.to_string(),
                configurations,
                availability_zone: zoned.then(|| self.opts.availability_zone.clone()),
                start_flag: start,
            };
            // a call: the first report is listed when start returns
            self.bus.call::<_, Value>(rpc::PLUGIN, &m, &req(), Duration::from_secs(10)).await?;
        }
        Ok(())
    }

    /// The mapped bridges exist, and the containment rule holds for them.
    async fn ensure_external(&self) -> anyhow::Result<()> {
        let bridges: Vec<String> = self.opts.bridge_mappings.values().cloned().collect();
        for b in &bridges {
            self.root.ensure_bridge(b, None).await?;
            nat::apply(self.host_ns(), &nat::containment(b)).await.context("containment rule")?;
        }
        Ok(())
    }

    async fn get_network(&self, network_id: &str, dhcp: bool) -> anyhow::Result<NetworkInfo> {
        let m = GetNetwork { network_id: network_id.to_string(), host: self.opts.host.clone(), dhcp };
        Ok(self.bus.call(rpc::PLUGIN, &m, &req(), Duration::from_secs(30)).await?)
    }

    /// The bridge of a segment on this host (made, with its tunnel or its
    /// physical interface, when missing).
    async fn ensure_segment(&self, seg: &Segment) -> anyhow::Result<(String, u32)> {
        let physnet = &seg.physical_network;
        if seg.network_type == "flat"
            && let Some(b) = self.opts.bridge_mappings.get(physnet)
        {
            let idx = self.root.ensure_bridge(b, None).await?;
            return Ok((b.clone(), idx));
        }
        let br = bridge_name(&seg.network_id);
        let mtu = u32::try_from(seg.mtu).ok().filter(|m| *m >= 68);
        self.own(&br, true);
        let idx = self.root.ensure_bridge(&br, mtu).await?;
        match seg.network_type.as_str() {
            "vxlan" => {
                if let (Some(local), Some(vni)) = (self.opts.local_ip, seg.segmentation_id) {
                    let vx = vxlan_name(vni);
                    self.own(&vx, true);
                    self.root.ensure_vxlan(&vx, vni as u32, local, mtu).await?;
                    self.root.set_up(&vx, Some(idx), None).await?;
                }
            }
            "vlan" => {
                // on a mapped interface, or on a mapped bridge (as Neutron's
                // Linux bridge agent does both)
                let parent = self.opts.interface_mappings.get(physnet).or(self.opts.bridge_mappings.get(physnet));
                let vid = seg.segmentation_id.and_then(|v| u16::try_from(v).ok()).filter(|v| (1..4095).contains(v));
                match (parent, vid) {
                    (Some(parent), Some(vid)) => {
                        if self.opts.bridge_mappings.get(physnet) == Some(parent) {
                            self.root.ensure_bridge(parent, None).await?;
                        }
                        let dev = vlan_name(parent, i64::from(vid));
                        self.own(&dev, true);
                        self.root.ensure_vlan(&dev, parent, vid).await?;
                        self.root.set_up(&dev, Some(idx), mtu).await?;
                    }
                    _ => tracing::warn!(
                        network_id = %seg.network_id, %physnet, vid = ?seg.segmentation_id,
                        "VLAN network on a physical network this host does not map: its ports reach only this host"
                    ),
                }
            }
            "flat" => match self.opts.interface_mappings.get(physnet) {
                Some(iface) => self.root.set_up(iface, Some(idx), None).await?,
                None => tracing::warn!(
                    network_id = %seg.network_id, %physnet,
                    "flat network on a physical network this host does not map: its ports reach only this host"
                ),
            },
            _ => {}
        }
        Ok((br, idx))
    }

    /// The network's tunnel in step with `info` (the l2population idea):
    /// flood entries to the other hosts with ports on it, a forwarding entry
    /// per port of another host to that host, and a neighbour entry per
    /// address of those ports, which the device answers ARP with; entries of
    /// ports and hosts that left go.
    async fn set_tunnel(&self, net: &mut Net, info: &NetworkInfo) -> anyhow::Result<()> {
        let seg = &info.segment;
        let (Some(_), Some(vni)) = (self.opts.local_ip, seg.segmentation_id) else { return Ok(()) };
        if seg.network_type != "vxlan" {
            return Ok(());
        }
        let vx = vxlan_name(vni);
        let peers: BTreeSet<String> =
            info.tunnel_peers.iter().filter(|p| p.parse::<Ipv4Addr>().is_ok()).cloned().collect();
        let mut fdb = BTreeSet::new();
        let mut arp = BTreeSet::new();
        for port in info.ports.iter().filter(|x| x.host != self.opts.host) {
            let Some(dst) = info.host_tunnels.get(&port.host) else { continue };
            if kernel::parse_mac(&port.mac_address).is_err() {
                continue;
            }
            fdb.insert((port.mac_address.clone(), dst.clone()));
            for ip in &port.fixed_ips {
                arp.insert((ip.ip_address.clone(), port.mac_address.clone()));
            }
        }
        for p in peers.difference(&net.peers.clone()) {
            self.root.fdb_append(&vx, [0; 6], p.parse()?).await?;
            net.peers.insert(p.clone());
        }
        for p in net.peers.difference(&peers).cloned().collect::<Vec<_>>() {
            self.root.fdb_delete(&vx, [0; 6], p.parse()?).await?;
            net.peers.remove(&p);
        }
        for (mac, dst) in net.fdb.difference(&fdb).cloned().collect::<Vec<_>>() {
            self.root.fdb_delete(&vx, kernel::parse_mac(&mac)?, dst.parse()?).await?;
            net.fdb.remove(&(mac, dst));
        }
        for (mac, dst) in fdb.difference(&net.fdb.clone()) {
            self.root.fdb_append(&vx, kernel::parse_mac(mac)?, dst.parse()?).await?;
            net.fdb.insert((mac.clone(), dst.clone()));
        }
        for (ip, mac) in net.arp.difference(&arp).cloned().collect::<Vec<_>>() {
            // an address that only changed its MAC is replaced below
            if !arp.iter().any(|(i, _)| *i == ip) {
                self.root.neigh_delete(&vx, ip.parse()?).await?;
            }
            net.arp.remove(&(ip, mac));
        }
        for (ip, mac) in arp.difference(&net.arp.clone()) {
            self.root.neigh_replace(&vx, ip.parse()?, kernel::parse_mac(mac)?).await?;
            net.arp.insert((ip.clone(), mac.clone()));
        }
        Ok(())
    }

    /// The network's DHCP server on this host, in step with `info`.
    async fn ensure_dhcp(&self, net: &mut Net, info: &NetworkInfo) -> anyhow::Result<()> {
        let Some(port) = &info.dhcp_port else { return Ok(()) };
        let nid = &info.segment.network_id;
        if let Some(d) = &net.dnsmasq {
            return d.reload(info, Some(port)).await;
        }
        let ns = self.dhcp_ns(nid);
        self.make_namespace(&ns).await?;
        let (_, br) = self.ensure_segment(&info.segment).await?;
        let (tap, inner) = (tap_name(&port.id), format!("ns-{}", short(&port.id)));
        self.own(&tap, true);
        let mtu = u32::try_from(info.segment.mtu).ok().filter(|m| *m >= 68);
        let nsl = Netlink::in_namespace(&ns).await?;
        if nsl.link(&inner).await?.is_none() {
            self.root.delete(&tap).await?;
            self.root.ensure_veth(&tap, &inner, mtu).await?;
            self.root.move_to(&inner, &ns).await?;
        }
        self.root.set_up(&tap, Some(br), mtu).await?;
        let mut addrs = Vec::new();
        for f in &port.fixed_ips {
            let Some(s) = info.subnets.iter().find(|s| s.id == f.subnet_id) else { continue };
            let (Ok(ip), Ok(net)) = (f.ip_address.parse::<IpAddr>(), s.cidr.parse::<ipnet::IpNet>()) else { continue };
            addrs.push((ip, net.prefix_len()));
        }
        addrs.push((IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), 32));
        nsl.set_up(&inner, None, mtu).await?;
        nsl.set_addresses(&inner, &addrs).await?;
        let dir = self.opts.state_dir.join("dhcp").join(nid);
        net.dnsmasq = Some(Dnsmasq::start(&self.opts.dnsmasq, &ns, &inner, dir, info, Some(port)).await?);
        let listen = std::net::SocketAddr::from((Ipv4Addr::new(169, 254, 169, 254), 80));
        self.start_proxy(&ns, listen, crate::metadata::Scope::Network(nid.clone())).await;
        self.wired(&port.id).await;
        Ok(())
    }

    /// A metadata proxy in `ns` (once; a failure is logged: guests then
    /// read their config drive).
    async fn start_proxy(&self, ns: &str, listen: std::net::SocketAddr, scope: crate::metadata::Scope) {
        let Some((url, secret)) = &self.opts.metadata else { return };
        if self.proxies.lock().map(|p| p.contains_key(ns)).unwrap_or(true) {
            return;
        }
        let upstream = crate::metadata::Upstream {
            url: url.clone(),
            shared_secret: secret.clone(),
            scope,
            lookup: Arc::new(crate::metadata::BusLookup { bus: self.bus.clone(), timeout: Duration::from_secs(10) }),
        };
        match crate::metadata::serve_in_namespace(ns, listen, upstream).await {
            Ok(h) => {
                if let Ok(mut p) = self.proxies.lock() {
                    p.insert(ns.to_string(), h);
                }
            }
            Err(e) => tracing::warn!(namespace = %ns, error = %format!("{e:#}"), "no metadata proxy"),
        }
    }

    fn stop_proxy(&self, ns: &str) {
        if let Some(h) = self.proxies.lock().ok().and_then(|mut p| p.remove(ns)) {
            h.abort();
        }
    }

    /// Fetch a network again and bring its DHCP and tunnels in step.
    async fn refresh_network(&self, p: &mut Plane, network_id: &str) -> anyhow::Result<()> {
        let used = p.ports.values().any(|x| x.segment.network_id == network_id)
            || p.routers.values().any(|r| router_networks(r).contains(network_id));
        if !used {
            return self.drop_network(p, network_id).await;
        }
        let serves_dhcp = p.ports.values().any(|x| x.segment.network_id == network_id);
        let info = self.get_network(network_id, serves_dhcp).await?;
        if !info.exists {
            return self.drop_network(p, network_id).await;
        }
        let net = p.nets.entry(network_id.to_string()).or_default();
        self.ensure_segment(&info.segment).await?;
        self.set_tunnel(net, &info).await?;
        if serves_dhcp {
            self.ensure_dhcp(net, &info).await?;
        }
        net.info = Some(info);
        Ok(())
    }

    /// Nothing of this host uses the network any more: its DHCP server,
    /// namespace, tunnel and bridge go.
    async fn drop_network(&self, p: &mut Plane, network_id: &str) -> anyhow::Result<()> {
        let Some(n) = p.nets.remove(network_id) else { return Ok(()) };
        if let Some(d) = n.dnsmasq {
            d.stop().await;
        }
        self.stop_proxy(&self.dhcp_ns(network_id));
        self.remove_namespace(&self.dhcp_ns(network_id)).await?;
        if let Some(info) = &n.info {
            if let Some(port) = &info.dhcp_port {
                self.remove_link(&tap_name(&port.id)).await?;
            }
            if let Some(vni) = info.segment.segmentation_id
                && info.segment.network_type == "vxlan"
            {
                self.remove_link(&vxlan_name(vni)).await?;
            }
        }
        self.remove_bridge_if_idle(&bridge_name(network_id)).await
    }

    async fn remove_bridge_if_idle(&self, br: &str) -> anyhow::Result<()> {
        let Some(b) = self.root.link(br).await? else { return Ok(()) };
        let links = self.root.links().await?;
        let ports: Vec<&kernel::Link> = links.iter().filter(|l| l.master == Some(b.index)).collect();
        // the network's own uplinks: its tunnel, its VLAN device, a mapped
        // physical interface (released, not removed, with the bridge)
        let physical = |l: &kernel::Link| self.opts.interface_mappings.values().any(|i| i == &l.name);
        let made = |l: &kernel::Link| l.name.starts_with("vxlan-") || (l.kind == "vlan" && self.owns(&l.name));
        if ports.iter().all(|l| made(l) || physical(l)) {
            for l in ports.into_iter().filter(|l| made(l)) {
                self.remove_link(&l.name).await?;
            }
            self.remove_link(br).await?;
        }
        Ok(())
    }

    async fn wired(&self, port_id: &str) {
        let m = PortWired { port_id: port_id.to_string(), host: self.opts.host.clone() };
        if let Err(e) = self.bus.cast(rpc::PLUGIN, &m, &req()).await {
            tracing::warn!(%port_id, error = %e, "could not report a port wired");
        }
    }

    async fn port_bound(&self, p: &mut Plane, m: PortBound) -> anyhow::Result<()> {
        let nid = m.segment.network_id.clone();
        let (br, _) = self.ensure_segment(&m.segment).await?;
        if let Some(fw) = &self.firewall {
            // the tap may come later: its bridge is known now
            fw.set_port_on(&m, &tap_name(&m.port_id), Some(&br)).await?;
        }
        let first = !p.nets.contains_key(&nid) || p.nets.get(&nid).and_then(|n| n.dnsmasq.as_ref()).is_none();
        p.ports.insert(m.port_id.clone(), m.clone());
        // the lease must be there before the guest asks: with a running
        // dnsmasq the port is added to its hosts at once
        if !first
            && let Some(n) = p.nets.get_mut(&nid)
            && let Some(info) = &mut n.info
        {
            if !info.ports.iter().any(|x| x.id == m.port_id) {
                info.ports.push(rpc::NetworkPort {
                    id: m.port_id.clone(),
                    mac_address: m.mac_address.clone(),
                    fixed_ips: m.fixed_ips.clone(),
                    host: m.host.clone(),
                    device_owner: m.device_owner.clone(),
                    extra_dhcp_opts: Vec::new(),
                });
            }
            let info = info.clone();
            if let Some(d) = &n.dnsmasq {
                d.reload(&info, info.dhcp_port.as_ref()).await?;
            }
        } else {
            self.refresh_network(p, &nid).await?;
        }
        Ok(())
    }

    /// A remote group's members, as sets in place (only for groups this
    /// host's ports' rules admit); the ports' notices are kept in step.
    async fn group_members(&self, p: &mut Plane, m: &rpc::GroupMembers) -> anyhow::Result<()> {
        let mut used = false;
        for port in p.ports.values_mut() {
            for r in port.security_group_rules.iter_mut().filter(|r| r.remote_group_id.as_deref() == Some(&m.group_id))
            {
                r.remote_group_ips = if r.ethertype == "IPv6" { m.ipv6.clone() } else { m.ipv4.clone() };
                used = true;
            }
        }
        if let (true, Some(fw)) = (used, &self.firewall) {
            fw.set_group_members(&m.group_id, "IPv4", &m.ipv4).await?;
            fw.set_group_members(&m.group_id, "IPv6", &m.ipv6).await?;
        }
        Ok(())
    }

    async fn port_unbound(&self, p: &mut Plane, m: &PortUnbound) -> anyhow::Result<()> {
        if let Some(fw) = &self.firewall {
            fw.remove_port(&m.port_id).await?;
        }
        let Some(old) = p.ports.remove(&m.port_id) else { return Ok(()) };
        self.refresh_network(p, &old.segment.network_id).await
    }

    /// A router as the service says it is now.
    async fn router_updated(&self, p: &mut Plane, m: RouterUpdated) -> anyhow::Result<()> {
        let ns = self.router_ns(&m.router_id);
        if !p.admit_router(&m) {
            tracing::debug!(router_id = %m.router_id, "update of a deleted router ignored");
            return Ok(());
        }
        // deleted, or administratively down (Neutron's L3 agent removes it
        // from the host: no forwarding, no NAT; up again, it is rebuilt)
        if m.deleted || !m.admin_state_up {
            let old = p.routers.remove(&m.router_id);
            if let Some(r) = p.radvd.remove(&m.router_id) {
                r.stop().await;
            }
            self.stop_proxy(&ns);
            self.remove_namespace(&ns).await?;
            if let Some(old) = old {
                for rp in old.interfaces.iter().chain(old.gateway.iter()) {
                    self.remove_link(&tap_name(&rp.port_id)).await?;
                }
                for n in router_networks(&old) {
                    self.refresh_network(p, &n).await?;
                }
            }
            return Ok(());
        }
        self.make_namespace(&ns).await?;
        kernel::sysctl_in(&ns, "net.ipv4.ip_forward", "1").await?;
        let nsl = Netlink::in_namespace(&ns).await?;
        let old = p.routers.insert(m.router_id.clone(), m.clone());
        let mut keep = BTreeSet::new();
        let mut adverts = Vec::new();
        for rp in &m.interfaces {
            let dev = format!("qr-{}", short(&rp.port_id));
            self.plug_router_port(&nsl, &ns, rp, &dev).await?;
            adverts.extend(crate::ra::adverts(&dev, rp));
            keep.insert(dev);
        }
        self.advertise(p, &m.router_id, &ns, adverts).await?;
        if let Some(gw) = &m.gateway {
            let dev = format!("qg-{}", short(&gw.port_id));
            self.plug_router_port(&nsl, &ns, gw, &dev).await?;
            keep.insert(dev);
            if let Some(next) = gw.gateway_ips.iter().find(|g| !g.is_empty() && !g.contains(':'))
                && let Ok(ip) = next.parse::<Ipv4Addr>()
            {
                self.ensure_external_address(gw).await?;
                nsl.replace_route(Ipv4Addr::UNSPECIFIED, 0, ip).await?;
            }
        }
        for r in &m.routes {
            let (Some(d), Some(n)) = (r["destination"].as_str(), r["nexthop"].as_str()) else { continue };
            if let (Ok(net), Ok(hop)) = (d.parse::<ipnet::Ipv4Net>(), n.parse::<Ipv4Addr>()) {
                nsl.replace_route(net.network(), net.prefix_len(), hop).await?;
            }
        }
        if let Some(old) = &old {
            for r in &old.routes {
                if m.routes.contains(r) {
                    continue;
                }
                if let Some(net) = r["destination"].as_str().and_then(|d| d.parse::<ipnet::Ipv4Net>().ok()) {
                    nsl.delete_route(net.network(), net.prefix_len()).await?;
                }
            }
            // interfaces gone: their veths go (the namespace end with its peer)
            for rp in old.interfaces.iter().chain(old.gateway.iter()) {
                let still = m.interfaces.iter().chain(m.gateway.iter()).any(|x| x.port_id == rp.port_id);
                if !still {
                    self.remove_link(&tap_name(&rp.port_id)).await?;
                }
            }
        }
        self.program_nat(p, &m.router_id).await?;
        let listen = std::net::SocketAddr::from((Ipv4Addr::UNSPECIFIED, nat::METADATA_PORT));
        self.start_proxy(&ns, listen, crate::metadata::Scope::Router(m.router_id.clone())).await;
        for rp in m.interfaces.iter().chain(m.gateway.iter()) {
            self.wired(&rp.port_id).await;
        }
        let nets: BTreeSet<String> =
            router_networks(&m).into_iter().chain(old.as_ref().map(router_networks).unwrap_or_default()).collect();
        for n in nets {
            if let Err(e) = self.refresh_network(p, &n).await {
                tracing::warn!(network = %n, error = %format!("{e:#}"), "could not refresh a router's network");
            }
        }
        Ok(())
    }

    /// A router's IPv6 advertisements in step with `adverts` (its radvd
    /// started, told, or stopped when there are none).
    async fn advertise(
        &self,
        p: &mut Plane,
        router_id: &str,
        ns: &str,
        adverts: Vec<crate::ra::Advert>,
    ) -> anyhow::Result<()> {
        if adverts.is_empty() {
            if let Some(r) = p.radvd.remove(router_id) {
                r.stop().await;
            }
            return Ok(());
        }
        kernel::sysctl_in(ns, "net.ipv6.conf.all.forwarding", "1").await?;
        match p.radvd.get_mut(router_id) {
            Some(r) => r.reload(adverts).await,
            None => {
                let dir = self.opts.state_dir.join("ra").join(router_id);
                let r = crate::ra::Radvd::start(&self.opts.radvd, ns, dir, adverts).await?;
                p.radvd.insert(router_id.to_string(), r);
                Ok(())
            }
        }
    }

    /// A router port: a veth, the namespace end `dev` with the port's
    /// addresses, the host end `tap<port>` on the network's bridge.
    async fn plug_router_port(&self, nsl: &Netlink, ns: &str, rp: &RouterPort, dev: &str) -> anyhow::Result<()> {
        let (_, br) = self.ensure_segment(&rp.segment).await?;
        let tap = tap_name(&rp.port_id);
        self.own(&tap, true);
        let mtu = u32::try_from(rp.segment.mtu).ok().filter(|m| *m >= 68);
        if nsl.link(dev).await?.is_none() {
            self.root.delete(&tap).await?;
            self.root.ensure_veth(&tap, dev, mtu).await?;
            self.root.move_to(dev, ns).await?;
        }
        self.root.set_up(&tap, Some(br), mtu).await?;
        if let Ok(mac) = kernel::parse_mac(&rp.mac_address) {
            nsl.set_mac(dev, mac).await?;
        }
        nsl.set_up(dev, None, mtu).await?;
        let mut want = Vec::new();
        for (i, f) in rp.fixed_ips.iter().enumerate() {
            let prefix = rp.cidrs.get(i).and_then(|c| c.parse::<ipnet::IpNet>().ok()).map(|n| n.prefix_len());
            if let (Ok(ip), Some(len)) = (f.ip_address.parse::<IpAddr>(), prefix) {
                want.push((ip, len));
            }
        }
        if dev.starts_with("qg-") {
            // the floating addresses live on the gateway too: keep them
            let have = nsl.addresses(dev).await?;
            let extra: Vec<(IpAddr, u8)> = have
                .into_iter()
                .filter(|(ip, len)| *len == 32 && ip.is_ipv4() && !want.iter().any(|w| w.0 == *ip))
                .collect();
            want.extend(extra);
        }
        nsl.set_addresses(dev, &want).await
    }

    /// A mapped external bridge holds its subnet's gateway address, so the
    /// host reaches the floating IPs behind it.
    async fn ensure_external_address(&self, gw: &RouterPort) -> anyhow::Result<()> {
        let Some(b) = (gw.segment.network_type == "flat")
            .then(|| self.opts.bridge_mappings.get(&gw.segment.physical_network))
            .flatten()
        else {
            return Ok(());
        };
        for (i, g) in gw.gateway_ips.iter().enumerate() {
            let (Ok(ip), Some(net)) =
                (g.parse::<IpAddr>(), gw.cidrs.get(i).and_then(|c| c.parse::<ipnet::IpNet>().ok()))
            else {
                continue;
            };
            if let Some(why) = host_needs(&net, &self.opts.bridge_mappings.values().cloned().collect::<Vec<_>>()) {
                anyhow::bail!(
                    "the external subnet {net} covers {why}: its gateway address is not put on {b} (the host would \
                     route that address into the cloud); give the external network another range"
                );
            }
            let have = self.root.addresses(b).await?;
            if !have.contains(&(ip, net.prefix_len())) {
                let mut all = have;
                all.push((ip, net.prefix_len()));
                self.root.set_addresses(b, &all).await?;
            }
        }
        Ok(())
    }

    /// A router's NAT and floating addresses, from its gateway and floating IPs.
    async fn program_nat(&self, p: &Plane, router_id: &str) -> anyhow::Result<()> {
        let Some(r) = p.routers.get(router_id) else { return Ok(()) };
        let ns = self.router_ns(router_id);
        let mine = || p.fips.values().filter(|f| f.router_id.as_deref() == Some(router_id));
        let list: Vec<FloatingNat> = mine()
            .filter_map(|f| {
                Some(FloatingNat { floating: f.floating_ip_address.clone(), fixed: f.fixed_ip_address.clone()? })
            })
            .collect();
        let forwards: Vec<nat::Forward> = mine()
            .flat_map(|f| {
                f.port_forwardings
                    .iter()
                    .map(|fwd| nat::Forward { floating: f.floating_ip_address.clone(), fwd: fwd.clone() })
            })
            .collect();
        let gw_dev = r.gateway.as_ref().map(|g| format!("qg-{}", short(&g.port_id)));
        let gw_ip = r
            .gateway
            .as_ref()
            .and_then(|g| g.fixed_ips.iter().find(|f| !f.ip_address.contains(':')))
            .map(|f| f.ip_address.clone());
        let doc = nat::router_nat(gw_dev.as_deref(), gw_ip.as_deref(), r.enable_snat, &list, &forwards);
        nat::apply(Some(&ns), &doc).await?;
        if let (Some(dev), Some(g)) = (&gw_dev, &r.gateway) {
            let nsl = Netlink::in_namespace(&ns).await?;
            let mut want = Vec::new();
            for (i, f) in g.fixed_ips.iter().enumerate() {
                let prefix = g.cidrs.get(i).and_then(|c| c.parse::<ipnet::IpNet>().ok()).map(|n| n.prefix_len());
                if let (Ok(ip), Some(len)) = (f.ip_address.parse::<IpAddr>(), prefix) {
                    want.push((ip, len));
                }
            }
            let floating: BTreeSet<&str> =
                list.iter().map(|f| f.floating.as_str()).chain(forwards.iter().map(|f| f.floating.as_str())).collect();
            for f in floating {
                if let Ok(ip) = f.parse::<IpAddr>() {
                    want.push((ip, 32));
                }
            }
            let had = nsl.addresses(dev).await?;
            nsl.set_addresses(dev, &want).await?;
            for (ip, _) in want.iter().filter(|a| !had.contains(a)) {
                if let IpAddr::V4(v4) = ip {
                    nat::announce(&ns, dev, *v4);
                }
            }
        }
        Ok(())
    }

    async fn floating_ip_changed(&self, p: &mut Plane, m: FloatingIpChanged) -> anyhow::Result<()> {
        if m.deleted {
            p.gone.insert(m.floating_ip_id.clone());
        }
        let old = p.fips.remove(&m.floating_ip_id);
        let active = !m.deleted
            && (m.fixed_ip_address.is_some() || !m.port_forwardings.is_empty())
            && !p.gone.contains(&m.floating_ip_id);
        if active {
            p.fips.insert(m.floating_ip_id.clone(), m.clone());
        }
        let routers: BTreeSet<String> =
            old.iter().chain(std::iter::once(&m)).filter_map(|f| f.router_id.clone()).collect();
        for r in routers {
            self.program_nat(p, &r).await?;
        }
        if !m.deleted {
            let programmed = active && m.router_id.as_ref().is_some_and(|r| p.routers.contains_key(r));
            let status = if programmed { "ACTIVE" } else { "DOWN" };
            let s = FloatingIpStatus { floating_ip_id: m.floating_ip_id.clone(), status: status.into() };
            if let Err(e) = self.bus.cast(rpc::PLUGIN, &s, &req()).await {
                tracing::warn!(floating_ip = %m.floating_ip_id, error = %e, "could not report a floating IP's status");
            }
        }
        Ok(())
    }

    /// Converge to the service's state for this host.
    async fn sync(&self) -> anyhow::Result<()> {
        let t = Instant::now();
        let st: HostState = self
            .bus
            .call(rpc::PLUGIN, &SyncHost { host: self.opts.host.clone() }, &req(), Duration::from_secs(60))
            .await?;
        let mut p = self.plane.lock().await;
        let known_ports: BTreeSet<String> = st.ports.iter().map(|x| x.port_id.clone()).collect();
        let stale: Vec<String> = p.ports.keys().filter(|k| !known_ports.contains(*k)).cloned().collect();
        for id in stale {
            let old = p.ports.remove(&id);
            if let Some(old) = old {
                self.refresh_network(&mut p, &old.segment.network_id).await?;
            }
        }
        for m in st.ports.clone() {
            p.ports.insert(m.port_id.clone(), m.clone());
            self.ensure_segment(&m.segment).await?;
            if let Some(fw) = &self.firewall {
                fw.ensure_port(&m, &tap_name(&m.port_id)).await?;
            }
        }
        if let Some(fw) = &self.firewall {
            for id in fw.ports().await? {
                if !known_ports.contains(&id) {
                    fw.remove_port(&id).await?;
                }
            }
        }
        let known_routers: BTreeSet<String> = st.routers.iter().map(|r| r.router_id.clone()).collect();
        let stale: Vec<String> = p.routers.keys().filter(|k| !known_routers.contains(*k)).cloned().collect();
        for id in stale {
            self.router_updated(&mut p, RouterUpdated { router_id: id, deleted: true, ..Default::default() }).await?;
        }
        p.fips = st.floating_ips.iter().map(|f| (f.floating_ip_id.clone(), f.clone())).collect();
        for r in st.routers.clone() {
            self.router_updated(&mut p, r).await?;
        }
        let nets: BTreeSet<String> = st.ports.iter().map(|x| x.segment.network_id.clone()).collect();
        for n in &nets {
            self.refresh_network(&mut p, n).await?;
        }
        for f in st.floating_ips.clone() {
            self.floating_ip_changed(&mut p, f).await?;
        }
        for m in st.ports.iter().filter(|m| m.admin_state_up) {
            self.wired(&m.port_id).await;
        }
        let (used_nets, routers, dhcp_ports) = in_use(&p);
        drop(p);
        self.remove_unknown(&used_nets, &routers, &dhcp_ports).await?;
        tracing::info!(ports = known_ports.len(), routers = known_routers.len(), took = ?t.elapsed(), "network agent in sync");
        Ok(())
    }

    /// What a resync's last step does, with every heartbeat: a bridge whose
    /// last guest tap went after its network left the host (the hypervisor
    /// unplugs when it likes, a veth in a dying namespace goes later still)
    /// was not idle when the network went, and is now.
    async fn tidy(&self) -> anyhow::Result<()> {
        let p = self.plane.lock().await;
        let (nets, routers, agent_ports) = in_use(&p);
        self.remove_unknown(&nets, &routers, &agent_ports).await
    }

    /// Remove what this agent makes and no longer knows: namespaces of other
    /// networks and routers, veth ends of their ports, bridges of networks
    /// without a port here (guests' taps are the hypervisor's: a bridge with
    /// one stays), their tunnels.
    async fn remove_unknown(
        &self,
        nets: &BTreeSet<String>,
        routers: &BTreeSet<String>,
        agent_ports: &BTreeSet<String>,
    ) -> anyhow::Result<()> {
        let wanted: BTreeSet<String> =
            nets.iter().map(|n| self.dhcp_ns(n)).chain(routers.iter().map(|r| self.router_ns(r))).collect();
        for ns in kernel::namespaces() {
            let ours = ns.starts_with("qdhcp-") || ns.starts_with("qrouter-");
            if ours && !wanted.contains(&ns) && self.owns(&ns) {
                self.remove_namespace(&ns).await?;
            }
        }
        let links = self.root.links().await?;
        let known_taps: BTreeSet<String> = agent_ports.iter().map(|p| tap_name(p)).collect();
        let bridges: BTreeSet<String> = nets.iter().map(|n| bridge_name(n)).collect();
        for l in &links {
            // veth ends of agent ports (their peers are in namespaces) that no longer exist
            if l.name.starts_with("tap")
                && !known_taps.contains(&l.name)
                && self.owns(&l.name)
                && l.kind == "veth"
                && l.master.is_some()
            {
                self.remove_link(&l.name).await?;
            }
        }
        for l in &links {
            if l.name.starts_with("brq") && !bridges.contains(&l.name) && self.owns(&l.name) {
                self.remove_bridge_if_idle(&l.name).await?;
            }
        }
        Ok(())
    }
}

/// What of the host's own addressing a subnet covers, if anything: a name
/// server, an `/etc/hosts` address, an address of a route of the host's own
/// interfaces (its default route's gateway, its links' networks; the
/// agent's own external bridges are not the host's).
pub fn host_needs(net: &ipnet::IpNet, own_bridges: &[String]) -> Option<String> {
    let mut addrs: Vec<(IpAddr, String)> = Vec::new();
    if let Ok(r) = std::fs::read_to_string("/etc/resolv.conf") {
        for l in r.lines() {
            if let Some(ip) = l.strip_prefix("nameserver").and_then(|x| x.trim().parse().ok()) {
                addrs.push((ip, "the name server".into()));
            }
        }
    }
    if let Ok(h) = std::fs::read_to_string("/etc/hosts") {
        for l in h.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let mut it = l.split_whitespace();
            if let (Some(ip), Some(name)) = (it.next().and_then(|x| x.parse::<IpAddr>().ok()), it.next()) {
                addrs.push((ip, format!("{name} ({ip}, /etc/hosts)")));
            }
        }
    }
    if let Ok(routes) = std::fs::read_to_string("/proc/net/route") {
        for l in routes.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 3 || own_bridges.iter().any(|b| b == f[0]) || f[0].starts_with("brq") {
                continue;
            }
            for hex in [f[1], f[2]] {
                if let Ok(v) = u32::from_str_radix(hex, 16)
                    && v != 0
                {
                    let ip = IpAddr::V4(Ipv4Addr::from(v.to_le_bytes()));
                    addrs.push((ip, format!("{ip}, a route of {}", f[0])));
                }
            }
        }
    }
    addrs.into_iter().find(|(ip, _)| net.contains(ip)).map(|(_, why)| why)
}

/// What the agent's state uses: networks (with a port, a router port or a
/// DHCP server here), routers, and the agent's own ports (DHCP, routers').
fn in_use(p: &Plane) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let nets = p.nets.keys().cloned().chain(p.ports.values().map(|x| x.segment.network_id.clone())).collect();
    let routers = p.routers.keys().cloned().collect();
    let agent_ports = p
        .nets
        .values()
        .filter_map(|n| n.info.as_ref()?.dhcp_port.as_ref().map(|d| d.id.clone()))
        .chain(p.routers.values().flat_map(|r| r.interfaces.iter().chain(r.gateway.iter()).map(|x| x.port_id.clone())))
        .collect();
    (nets, routers, agent_ports)
}

/// The networks a router has ports on.
fn router_networks(r: &RouterUpdated) -> BTreeSet<String> {
    r.interfaces.iter().chain(r.gateway.iter()).map(|p| p.segment.network_id.clone()).collect()
}

fn req() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

struct Serve(Arc<Inner>);

fn failed(e: anyhow::Error) -> RemoteError {
    RemoteError::new("DataPlaneError", format!("{e:#}"))
}

#[async_trait::async_trait]
impl Handler for Serve {
    async fn handle(&self, env: Envelope) -> Result<Value, RemoteError> {
        let i = &self.0;
        match env.name.as_str() {
            PortBound::NAME => {
                let m: PortBound = env.decode()?;
                if m.host != i.opts.host {
                    return Err(RemoteError::new("WrongHost", format!("port {} is bound to {}", m.port_id, m.host)));
                }
                let (id, up) = (m.port_id.clone(), m.admin_state_up);
                let mut p = i.plane.lock().await;
                i.port_bound(&mut p, m).await.map_err(failed)?;
                drop(p);
                // an administratively down port stays DOWN (its traffic is dropped)
                if up {
                    i.wired(&id).await;
                }
                serde_json::to_value(PortWired { port_id: id, host: i.opts.host.clone() })
                    .map_err(|e| RemoteError::new("BadReply", e.to_string()))
            }
            PortUnbound::NAME => {
                let m: PortUnbound = env.decode()?;
                let mut p = i.plane.lock().await;
                i.port_unbound(&mut p, &m).await.map_err(failed)?;
                Ok(Value::Null)
            }
            rpc::GroupMembers::NAME => {
                let m: rpc::GroupMembers = env.decode()?;
                let mut p = i.plane.lock().await;
                i.group_members(&mut p, &m).await.map_err(failed)?;
                Ok(Value::Null)
            }
            NetworkChanged::NAME => {
                let m: NetworkChanged = env.decode()?;
                let mut p = i.plane.lock().await;
                i.refresh_network(&mut p, &m.network_id).await.map_err(failed)?;
                Ok(Value::Null)
            }
            RouterUpdated::NAME => {
                let m: RouterUpdated = env.decode()?;
                let mut p = i.plane.lock().await;
                i.router_updated(&mut p, m).await.map_err(failed)?;
                Ok(Value::Null)
            }
            FloatingIpChanged::NAME => {
                let m: FloatingIpChanged = env.decode()?;
                let mut p = i.plane.lock().await;
                i.floating_ip_changed(&mut p, m).await.map_err(failed)?;
                Ok(Value::Null)
            }
            other => Err(RemoteError::new("UnexpectedMessage", format!("network agent: unknown message {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_update_of_a_deleted_router_is_ignored() {
        let mut p = Plane::default();
        let update = RouterUpdated { router_id: "r1".into(), ..Default::default() };
        let deleted = RouterUpdated { router_id: "r1".into(), deleted: true, ..Default::default() };
        assert!(p.admit_router(&update));
        assert!(p.admit_router(&deleted));
        assert!(!p.admit_router(&update), "the router's last change, handled after its deletion");
        assert!(p.admit_router(&deleted), "deleting again is harmless");
        assert!(p.admit_router(&RouterUpdated { router_id: "r2".into(), ..Default::default() }));
    }

    #[test]
    fn the_external_range_must_not_cover_what_the_host_needs() {
        // this machine's name server, whatever it is, is covered by 0.0.0.0/0 and by its own /32
        let Some(ns) = std::fs::read_to_string("/etc/resolv.conf").ok().and_then(|r| {
            r.lines().find_map(|l| l.strip_prefix("nameserver").and_then(|x| x.trim().parse::<IpAddr>().ok()))
        }) else {
            return;
        };
        let own: ipnet::IpNet = format!("{ns}/32").parse().unwrap_or_else(|_| "0.0.0.0/0".parse().expect("a net"));
        assert!(host_needs(&own, &[]).is_some_and(|w| w.contains("name server") || w.contains("route")));
        // the benchmark range a test would use is the host's by no means
        let free: ipnet::IpNet = "198.18.251.0/24".parse().expect("a net");
        assert_eq!(host_needs(&free, &[]), None);
    }

    #[test]
    fn names_fit_linux_interface_names() {
        let id = "0123456789abcdef-0000";
        assert_eq!(bridge_name(id), "brq0123456789a");
        assert_eq!(tap_name(id), "tap0123456789a");
        assert!(bridge_name(id).len() <= 15 && tap_name(id).len() <= 15);
        assert_eq!(dhcp_namespace("n"), "qdhcp-n");
        assert_eq!(router_namespace("r"), "qrouter-r");
    }
}
