//! IPv6 router advertisements of a router (Neutron's L3 agent runs radvd in
//! the router's namespace): for each interface with an IPv6 subnet whose
//! `ipv6_ra_mode` is set, its prefix advertised as the mode says — `slaac`
//! (addresses by SLAAC), `dhcpv6-stateless` (SLAAC, other options by
//! DHCPv6), `dhcpv6-stateful` (addresses by DHCPv6) — with the network's
//! MTU. radvd is supervised and rereads its configuration on SIGHUP.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use stratus_network::rpc::RouterPort;

use crate::supervise::Supervised;

/// One advertised prefix of an interface.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Advert {
    pub dev: String,
    pub prefix: String,
    pub mode: String,
    pub mtu: Option<u32>,
}

/// The prefixes a router port advertises on `dev`.
pub fn adverts(dev: &str, rp: &RouterPort) -> Vec<Advert> {
    let mtu = u32::try_from(rp.segment.mtu).ok().filter(|m| *m >= 1280);
    rp.cidrs
        .iter()
        .zip(&rp.ra_modes)
        .filter(|(c, m)| c.contains(':') && !m.is_empty())
        .filter(|(c, _)| c.parse::<ipnet::Ipv6Net>().is_ok())
        .map(|(c, m)| Advert { dev: dev.to_string(), prefix: c.clone(), mode: m.clone(), mtu })
        .collect()
}

/// radvd's configuration for `adverts` (grouped by interface).
pub fn config(adverts: &[Advert]) -> String {
    let mut out = String::new();
    let mut devs: Vec<&str> = adverts.iter().map(|a| a.dev.as_str()).collect();
    devs.dedup();
    for dev in devs {
        let mine: Vec<&Advert> = adverts.iter().filter(|a| a.dev == dev).collect();
        let stateful = mine.iter().any(|a| a.mode == "dhcpv6-stateful");
        let other = mine.iter().any(|a| a.mode != "slaac");
        let _ = writeln!(out, "interface {dev}\n{{");
        let _ = writeln!(out, "    AdvSendAdvert on;\n    MinRtrAdvInterval 30;\n    MaxRtrAdvInterval 100;");
        if let Some(m) = mine.iter().find_map(|a| a.mtu) {
            let _ = writeln!(out, "    AdvLinkMTU {m};");
        }
        if stateful {
            let _ = writeln!(out, "    AdvManagedFlag on;");
        }
        if other {
            let _ = writeln!(out, "    AdvOtherConfigFlag on;");
        }
        for a in mine {
            let auto = if a.mode == "dhcpv6-stateful" { "off" } else { "on" };
            let _ = writeln!(
                out,
                "    prefix {}\n    {{\n        AdvOnLink on;\n        AdvAutonomous {auto};\n    }};",
                a.prefix
            );
        }
        let _ = writeln!(out, "}};");
    }
    out
}

/// A router's supervised radvd (dropped, it stops).
pub struct Radvd {
    dir: PathBuf,
    process: Supervised,
    adverts: Vec<Advert>,
}

impl Radvd {
    /// Write the configuration and start radvd in namespace `ns`.
    pub async fn start(binary: &str, ns: &str, dir: PathBuf, adverts: Vec<Advert>) -> anyhow::Result<Radvd> {
        tokio::fs::create_dir_all(&dir).await.with_context(|| format!("create {}", dir.display()))?;
        let conf = dir.join("radvd.conf");
        tokio::fs::write(&conf, config(&adverts)).await.with_context(|| format!("write {}", conf.display()))?;
        let d = |p: PathBuf| p.to_string_lossy().into_owned();
        let argv = vec![
            binary.to_string(),
            "--nodaemon".into(),
            format!("--config={}", d(conf)),
            format!("--pidfile={}", d(dir.join("pid"))),
            "--logmethod=stderr".into(),
        ];
        let process = Supervised::start("radvd", ns, argv, dir.join("log"), dir.join("pid"));
        Ok(Radvd { dir, process, adverts })
    }

    /// The advertisements changed: rewrite, SIGHUP (no restart).
    pub async fn reload(&mut self, adverts: Vec<Advert>) -> anyhow::Result<()> {
        if adverts == self.adverts {
            return Ok(());
        }
        let conf = self.dir.join("radvd.conf");
        let tmp = conf.with_extension("tmp");
        tokio::fs::write(&tmp, config(&adverts)).await.with_context(|| format!("write {}", tmp.display()))?;
        tokio::fs::rename(&tmp, &conf).await?;
        self.process.signal(rustix::process::Signal::HUP);
        self.adverts = adverts;
        Ok(())
    }

    pub fn pid(&self) -> Option<i32> {
        self.process.pid()
    }

    /// Stop it for good.
    pub async fn stop(self) {
        self.process.stop().await;
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_set_the_flags_and_only_v6_subnets_with_a_mode_are_advertised() {
        let rp = RouterPort {
            port_id: "p".into(),
            cidrs: vec!["10.0.0.0/24".into(), "2001:db8:1::/64".into(), "2001:db8:2::/64".into()],
            ra_modes: vec!["".into(), "slaac".into(), "".into()],
            segment: stratus_network::rpc::Segment { mtu: 1450, ..Default::default() },
            ..Default::default()
        };
        let a = adverts("qr-a", &rp);
        assert_eq!(a.len(), 1, "{a:?}");
        let c = config(&a);
        assert!(c.contains("interface qr-a\n{") && c.contains("prefix 2001:db8:1::/64"), "{c}");
        assert!(c.contains("AdvAutonomous on;") && c.contains("AdvLinkMTU 1450;"), "{c}");
        assert!(!c.contains("AdvManagedFlag") && !c.contains("AdvOtherConfigFlag"), "{c}");
        let mut stateful = a[0].clone();
        stateful.mode = "dhcpv6-stateful".into();
        let c = config(&[stateful]);
        assert!(c.contains("AdvManagedFlag on;") && c.contains("AdvAutonomous off;"), "{c}");
        let mut stateless = a[0].clone();
        stateless.mode = "dhcpv6-stateless".into();
        let c = config(&[stateless]);
        assert!(
            c.contains("AdvOtherConfigFlag on;") && c.contains("AdvAutonomous on;") && !c.contains("Managed"),
            "{c}"
        );
    }
}
