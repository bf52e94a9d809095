//! The host's network stack, through netlink (rtnetlink): links, bridges,
//! veth pairs, VXLAN devices, addresses, routes and forwarding entries, in the
//! root namespace or in a named one (`/run/netns/<name>`).
//!
//! A handle for a namespace is a netlink socket opened by a short-lived
//! thread that entered the namespace: the socket stays bound to it, and the
//! runtime drives it like any other. Namespaces themselves are made and
//! removed with `ip netns` (its file conventions are what operators' tools
//! read); nothing here reads `ip`'s output.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use futures::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::packet_route::neighbour::NeighbourFlags;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, LinkVlan, LinkVxlan, RouteMessageBuilder};

/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// A link as listed.
#[derive(Clone, Debug)]
pub struct Link {
    pub name: String,
    pub index: u32,
    /// Index of the bridge it is a port of.
    pub master: Option<u32>,
    pub up: bool,
    /// Its kind (`veth`, `tun`, `bridge`, `vxlan`...; empty for a physical link).
    pub kind: String,
}

/// A netlink session in one namespace.
pub struct Netlink {
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
    /// The namespace (None: the agent's own).
    pub namespace: Option<String>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn exists_err(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc_eexist())
}

fn missing_err(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -19 || m.raw_code() == -2 || m.raw_code() == -3)
}

const fn libc_eexist() -> i32 {
    17
}

impl Netlink {
    /// A session in the agent's own namespace.
    pub fn root() -> anyhow::Result<Netlink> {
        let (conn, handle, _) = rtnetlink::new_connection().context("netlink socket")?;
        Ok(Netlink { handle, task: tokio::spawn(conn), namespace: None })
    }

    /// A session inside the named namespace.
    pub async fn in_namespace(ns: &str) -> anyhow::Result<Netlink> {
        let path = netns_path(ns);
        let rt = tokio::runtime::Handle::current();
        let name = ns.to_string();
        let (conn, handle) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            // a fresh thread: entering the namespace never leaks into the runtime's threads
            std::thread::spawn(move || -> anyhow::Result<_> {
                enter(&path)?;
                let _g = rt.enter();
                let (conn, handle, _) = rtnetlink::new_connection().context("netlink socket")?;
                Ok((conn, handle))
            })
            .join()
            .map_err(|_| anyhow!("namespace {name}: the thread entering it panicked"))?
        })
        .await??;
        Ok(Netlink { handle, task: tokio::spawn(conn), namespace: Some(ns.to_string()) })
    }

    /// A session in `ns` when given, else in the agent's own namespace.
    pub async fn of(ns: Option<&str>) -> anyhow::Result<Netlink> {
        match ns {
            Some(ns) => Self::in_namespace(ns).await,
            None => Self::root(),
        }
    }

    /// The name of the bridge `link` is a port of, if any.
    pub async fn master_of(&self, link: &str) -> anyhow::Result<Option<String>> {
        let Some(l) = self.link(link).await? else { return Ok(None) };
        let Some(m) = l.master else { return Ok(None) };
        Ok(self.links().await?.into_iter().find(|x| x.index == m).map(|x| x.name))
    }

    /// Every link.
    pub async fn links(&self) -> anyhow::Result<Vec<Link>> {
        let mut s = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(m) = s.try_next().await? {
            out.push(link_of(&m));
        }
        Ok(out)
    }

    /// The link named `name`, if any.
    pub async fn link(&self, name: &str) -> anyhow::Result<Option<Link>> {
        let mut s = self.handle.link().get().match_name(name.to_string()).execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(Some(link_of(&m))),
            Ok(None) => Ok(None),
            Err(e) if missing_err(&e) => Ok(None),
            Err(e) => Err(anyhow!("link {name}: {e}")),
        }
    }

    async fn index(&self, name: &str) -> anyhow::Result<u32> {
        self.link(name).await?.map(|l| l.index).ok_or_else(|| anyhow!("no link {name}"))
    }

    async fn add(&self, name: &str, msg: LinkMessage) -> anyhow::Result<()> {
        match self.handle.link().add(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if exists_err(&e) => Ok(()),
            Err(e) => Err(anyhow!("add link {name}: {e}")),
        }
    }

    /// A bridge, up, with `mtu` (made when missing). Returns its index.
    pub async fn ensure_bridge(&self, name: &str, mtu: Option<u32>) -> anyhow::Result<u32> {
        if self.link(name).await?.is_none() {
            self.add(name, LinkBridge::new(name).build()).await?;
        }
        let idx = self.index(name).await?;
        let mut b = LinkUnspec::new_with_index(idx).up();
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.handle.link().set(b.build()).execute().await.map_err(|e| anyhow!("bridge {name} up: {e}"))?;
        Ok(idx)
    }

    /// A veth pair `a` <-> `b` (made when `a` is missing).
    pub async fn ensure_veth(&self, a: &str, b: &str, mtu: Option<u32>) -> anyhow::Result<()> {
        if self.link(a).await?.is_none() {
            let mut m = LinkVeth::new(a, b);
            if let Some(mtu) = mtu {
                m = m.mtu(mtu);
            }
            self.add(a, m.build()).await?;
        }
        Ok(())
    }

    /// A VXLAN device for `vni` from `local`, without learning (forwarding
    /// entries are written for the known ports' hosts), answering ARP and
    /// neighbour solicitations for them itself (`proxy`: from its neighbour
    /// entries, which the agent writes, never over the tunnel).
    pub async fn ensure_vxlan(&self, name: &str, vni: u32, local: Ipv4Addr, mtu: Option<u32>) -> anyhow::Result<u32> {
        if self.link(name).await?.is_none() {
            let mut m = LinkVxlan::new(name, vni).local(local).port(4789).learning(false).proxy(true);
            if let Some(mtu) = mtu {
                m = m.mtu(mtu);
            }
            self.add(name, m.build()).await?;
        }
        self.index(name).await
    }

    /// An 802.1Q device `name` of `parent` for `vid` (made when missing);
    /// `parent` is brought up. Returns its index.
    pub async fn ensure_vlan(&self, name: &str, parent: &str, vid: u16) -> anyhow::Result<u32> {
        let base = self.index(parent).await.with_context(|| format!("the physical interface of VLAN {vid}"))?;
        let up = LinkUnspec::new_with_index(base).up().build();
        self.handle.link().set(up).execute().await.map_err(|e| anyhow!("link {parent} up: {e}"))?;
        if self.link(name).await?.is_none() {
            let m = LinkVlan::new(name, base, vid).build();
            match self.handle.link().add(m).execute().await {
                Ok(()) => {}
                Err(e) if exists_err(&e) => {}
                Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -95 => {
                    bail!("add link {name}: this kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q)")
                }
                Err(e) => bail!("add link {name}: {e}"),
            }
        }
        self.index(name).await
    }

    /// `link` up, as a port of `bridge` (when given), with `mtu`.
    pub async fn set_up(&self, link: &str, bridge: Option<u32>, mtu: Option<u32>) -> anyhow::Result<()> {
        let idx = self.index(link).await?;
        let mut b = LinkUnspec::new_with_index(idx).up();
        if let Some(br) = bridge {
            b = b.controller(br);
        }
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.handle.link().set(b.build()).execute().await.map_err(|e| anyhow!("link {link} up: {e}"))
    }

    /// Set `link`'s MAC address.
    pub async fn set_mac(&self, link: &str, mac: [u8; 6]) -> anyhow::Result<()> {
        let idx = self.index(link).await?;
        let m = LinkUnspec::new_with_index(idx).address(mac.to_vec()).build();
        self.handle.link().set(m).execute().await.map_err(|e| anyhow!("mac of {link}: {e}"))
    }

    /// Move `link` into namespace `ns`.
    pub async fn move_to(&self, link: &str, ns: &str) -> anyhow::Result<()> {
        let idx = self.index(link).await?;
        let f = std::fs::File::open(netns_path(ns)).with_context(|| format!("namespace {ns}"))?;
        use std::os::fd::AsRawFd;
        let m = LinkUnspec::new_with_index(idx).setns_by_fd(f.as_raw_fd()).build();
        self.handle.link().set(m).execute().await.map_err(|e| anyhow!("move {link} to {ns}: {e}"))
    }

    /// Remove `link` (nothing when it is gone).
    pub async fn delete(&self, link: &str) -> anyhow::Result<()> {
        let Some(l) = self.link(link).await? else { return Ok(()) };
        match self.handle.link().del(l.index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if missing_err(&e) => Ok(()),
            Err(e) => Err(anyhow!("delete {link}: {e}")),
        }
    }

    /// The addresses of `link` (address, prefix length).
    pub async fn addresses(&self, link: &str) -> anyhow::Result<Vec<(IpAddr, u8)>> {
        use rtnetlink::packet_route::address::AddressAttribute;
        let idx = self.index(link).await?;
        let mut s = self.handle.address().get().set_link_index_filter(idx).execute();
        let mut out = Vec::new();
        while let Some(m) = s.try_next().await? {
            for a in &m.attributes {
                if let AddressAttribute::Address(ip) = a {
                    out.push((*ip, m.header.prefix_len));
                }
            }
        }
        Ok(out)
    }

    /// Make `link`'s addresses exactly `want` (IPv6 link-local ones are kept).
    pub async fn set_addresses(&self, link: &str, want: &[(IpAddr, u8)]) -> anyhow::Result<()> {
        let have = self.addresses(link).await?;
        let idx = self.index(link).await?;
        for a in want.iter().filter(|a| !have.contains(a)) {
            match self.handle.address().add(idx, a.0, a.1).execute().await {
                Ok(()) => {}
                Err(e) if exists_err(&e) => {}
                Err(e) => bail!("address {}/{} on {link}: {e}", a.0, a.1),
            }
        }
        for a in have.iter().filter(|a| !want.contains(a) && !is_link_local(&a.0)) {
            let mut s = self.handle.address().get().set_link_index_filter(idx).set_address_filter(a.0).execute();
            while let Some(m) = s.try_next().await? {
                let _ = self.handle.address().del(m).execute().await;
            }
        }
        Ok(())
    }

    /// Replace the route to `dest/prefix` via `gateway` (`0.0.0.0/0`: the default route).
    pub async fn replace_route(&self, dest: Ipv4Addr, prefix: u8, gateway: Ipv4Addr) -> anyhow::Result<()> {
        let r = RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(dest, prefix).gateway(gateway).build();
        match self.handle.route().add(r).replace().execute().await {
            Ok(()) => Ok(()),
            Err(e) => Err(anyhow!("route {dest}/{prefix} via {gateway}: {e}")),
        }
    }

    /// Remove the route to `dest/prefix` (nothing when there is none).
    pub async fn delete_route(&self, dest: Ipv4Addr, prefix: u8) -> anyhow::Result<()> {
        let r = RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(dest, prefix).build();
        match self.handle.route().del(r).execute().await {
            Ok(()) => Ok(()),
            Err(e) if missing_err(&e) => Ok(()),
            Err(e) => Err(anyhow!("delete route {dest}/{prefix}: {e}")),
        }
    }

    /// A forwarding entry on a VXLAN device: frames for `mac` (all zeros:
    /// flooded ones) go to the tunnel endpoint `dst`. Appended, so several
    /// all-zero entries make the flood list.
    pub async fn fdb_append(&self, vxlan: &str, mac: [u8; 6], dst: Ipv4Addr) -> anyhow::Result<()> {
        use futures::StreamExt;
        use rtnetlink::packet_core::{
            NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
        };
        use rtnetlink::packet_route::neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
        };
        use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
        let idx = self.index(vxlan).await?;
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Bridge;
        m.header.ifindex = idx;
        m.header.state = NeighbourState::Permanent;
        m.header.flags = NeighbourFlags::Own;
        m.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewNeighbour(m));
        let how = if mac == [0; 6] { NLM_F_APPEND } else { NLM_F_REPLACE };
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | how;
        let mut handle = self.handle.clone();
        let mut resp = handle.request(req).map_err(|e| anyhow!("fdb {vxlan}: {e}"))?;
        while let Some(msg) = resp.next().await {
            if let NetlinkPayload::Error(err) = msg.payload
                && err.raw_code() != 0
                && err.raw_code() != -libc_eexist()
            {
                bail!("fdb {vxlan} -> {dst}: {err}");
            }
        }
        Ok(())
    }
}

impl Netlink {
    /// Remove the forwarding entry `mac` -> `dst` of a VXLAN device (all
    /// zeros: `dst` leaves the flood list); nothing when it is gone.
    pub async fn fdb_delete(&self, vxlan: &str, mac: [u8; 6], dst: Ipv4Addr) -> anyhow::Result<()> {
        use rtnetlink::packet_route::AddressFamily;
        use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
        let Some(l) = self.link(vxlan).await? else { return Ok(()) };
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Bridge;
        m.header.ifindex = l.index;
        m.header.flags = NeighbourFlags::Own;
        m.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
        match self.handle.neighbours().del(m).execute().await {
            Ok(()) => Ok(()),
            Err(e) if missing_err(&e) => Ok(()),
            Err(e) => Err(anyhow!("fdb {vxlan}: delete -> {dst}: {e}")),
        }
    }

    /// A permanent neighbour entry `ip` -> `mac` on `dev` (what a proxying
    /// VXLAN device answers ARP and neighbour solicitations with).
    pub async fn neigh_replace(&self, dev: &str, ip: IpAddr, mac: [u8; 6]) -> anyhow::Result<()> {
        use rtnetlink::packet_route::neighbour::NeighbourState;
        let idx = self.index(dev).await?;
        self.handle
            .neighbours()
            .add(idx, ip)
            .link_layer_address(&mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(|e| anyhow!("neighbour {ip} on {dev}: {e}"))
    }

    /// Remove the neighbour entry of `ip` on `dev` (nothing when it is gone).
    pub async fn neigh_delete(&self, dev: &str, ip: IpAddr) -> anyhow::Result<()> {
        use rtnetlink::packet_route::AddressFamily;
        use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
        let Some(l) = self.link(dev).await? else { return Ok(()) };
        let mut m = NeighbourMessage::default();
        m.header.family = if ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        m.header.ifindex = l.index;
        m.attributes.push(NeighbourAttribute::Destination(match ip {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
        match self.handle.neighbours().del(m).execute().await {
            Ok(()) => Ok(()),
            Err(e) if missing_err(&e) => Ok(()),
            Err(e) => Err(anyhow!("neighbour {ip} on {dev}: delete: {e}")),
        }
    }
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

fn link_of(m: &LinkMessage) -> Link {
    let mut l = Link {
        name: String::new(),
        index: m.header.index,
        master: None,
        up: m.header.flags.contains(LinkFlags::Up),
        kind: String::new(),
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Controller(c) => l.master = Some(*c),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = k.to_string();
                    }
                }
            }
            _ => {}
        }
    }
    l
}

/// `/run/netns/<ns>`.
pub fn netns_path(ns: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(ns)
}

/// Enter a namespace (the calling thread only).
fn enter(path: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    rustix::thread::move_into_link_name_space(f.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
        .with_context(|| format!("setns {}", path.display()))?;
    Ok(())
}

/// Run `f` on a thread of its own inside namespace `ns` (sockets it makes
/// stay in that namespace), and give back its result.
pub fn run_in_namespace<R: Send + 'static>(ns: &str, f: impl FnOnce() -> R + Send + 'static) -> anyhow::Result<R> {
    let path = netns_path(ns);
    std::thread::spawn(move || -> anyhow::Result<R> {
        enter(&path)?;
        Ok(f())
    })
    .join()
    .map_err(|_| anyhow!("the thread in namespace {ns} panicked"))?
}

/// The named namespaces.
pub fn namespaces() -> Vec<String> {
    std::fs::read_dir(NETNS_DIR)
        .map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

/// A named namespace, with its loopback up (made when missing).
pub async fn ensure_namespace(ns: &str) -> anyhow::Result<()> {
    if !netns_path(ns).exists() {
        let out = tokio::process::Command::new("ip").args(["netns", "add", ns]).output().await?;
        if !out.status.success() && !netns_path(ns).exists() {
            bail!("ip netns add {ns}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
    }
    let nl = Netlink::in_namespace(ns).await?;
    nl.set_up("lo", None, None).await
}

/// Remove a named namespace (its links go with it; nothing when it is gone).
pub async fn delete_namespace(ns: &str) -> anyhow::Result<()> {
    if !netns_path(ns).exists() {
        return Ok(());
    }
    let out = tokio::process::Command::new("ip").args(["netns", "delete", ns]).output().await?;
    if !out.status.success() && netns_path(ns).exists() {
        bail!("ip netns delete {ns}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Write a sysctl of a namespace (`net.ipv4.ip_forward` -> `/proc/sys/net/ipv4/ip_forward`):
/// the network sysctls seen are those of the namespace of the thread that opens them.
pub async fn sysctl_in(ns: &str, key: &str, value: &str) -> anyhow::Result<()> {
    let path = netns_path(ns);
    let file = Path::new("/proc/sys").join(key.replace('.', "/"));
    let value = value.to_string();
    tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || -> anyhow::Result<()> {
            enter(&path)?;
            std::fs::write(&file, value).with_context(|| format!("write {}", file.display()))
        })
        .join()
        .map_err(|_| anyhow!("sysctl thread panicked"))?
    })
    .await?
}

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> anyhow::Result<[u8; 6]> {
    let v: Vec<u8> = s.split(':').map(|x| u8::from_str_radix(x, 16)).collect::<Result<_, _>>()?;
    v.try_into().map_err(|_| anyhow!("'{s}' is not a MAC address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse() {
        assert_eq!(parse_mac("fa:16:3e:00:00:0a").ok(), Some([0xfa, 0x16, 0x3e, 0, 0, 0x0a]));
        assert!(parse_mac("fa:16:3e").is_err());
        assert!(parse_mac("zz:16:3e:00:00:0a").is_err());
    }
}
