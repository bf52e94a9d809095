//! Which network agent a host runs (`[network.agent] driver`), and the real
//! one's options from the configuration.

use std::time::Duration;

use stratus_core::Config;
use stratus_netagent::agent::{Agent, AgentOptions};

/// `real` or `fake`, with why (`auto` resolved: real when this process can
/// program the kernel).
pub fn mode(cfg: &Config) -> anyhow::Result<(bool, String)> {
    let a = &cfg.network.agent;
    match a.driver.as_str() {
        "fake" => Ok((false, "fake (network.agent.driver = \"fake\": no data plane)".into())),
        "real" => {
            stratus_netagent::agent::usable(&a.dnsmasq)
                .map_err(|e| anyhow::anyhow!("network.agent.driver = \"real\" cannot run here: {e}"))?;
            Ok((true, "real (Linux bridges, VXLAN, dnsmasq, nftables)".into()))
        }
        "auto" => match stratus_netagent::agent::usable(&a.dnsmasq) {
            Ok(()) => Ok((true, "real (Linux bridges, VXLAN, dnsmasq, nftables)".into())),
            Err(e) => Ok((false, format!("fake ({e}: no data plane; scripts/install installs dnsmasq and nftables)"))),
        },
        other => anyhow::bail!("network.agent.driver: '{other}' is not one of auto, real, fake"),
    }
}

/// The real agent's options for `host`.
pub fn options(cfg: &Config, host: &str) -> anyhow::Result<AgentOptions> {
    let a = &cfg.network.agent;
    let local_ip = if a.local_ip.is_empty() {
        None
    } else {
        Some(
            a.local_ip
                .parse()
                .map_err(|_| anyhow::anyhow!("network.agent.local_ip: '{}' is not an IPv4 address", a.local_ip))?,
        )
    };
    let mut bridge_mappings = std::collections::BTreeMap::new();
    for m in &a.bridge_mappings {
        let (net, br) = m
            .split_once(':')
            .filter(|(n, b)| !n.is_empty() && !b.is_empty() && b.len() <= 15)
            .ok_or_else(|| anyhow::anyhow!("network.agent.bridge_mappings: '{m}' is not physnet:bridge"))?;
        bridge_mappings.insert(net.to_string(), br.to_string());
    }
    let mut interface_mappings = std::collections::BTreeMap::new();
    for m in &a.physical_interface_mappings {
        // 10 characters leave room for a VLAN device's `.<vid>`
        let (net, iface) = m.split_once(':').filter(|(n, i)| !n.is_empty() && !i.is_empty()).ok_or_else(|| {
            anyhow::anyhow!("network.agent.physical_interface_mappings: '{m}' is not physnet:interface")
        })?;
        if iface.len() > 10 {
            anyhow::bail!(
                "network.agent.physical_interface_mappings: interface '{iface}' is longer than 10 characters \
                 (its VLAN devices are named <interface>.<vid>, 15 characters at most)"
            );
        }
        if bridge_mappings.contains_key(net) {
            anyhow::bail!(
                "network.agent: physical network '{net}' is in both bridge_mappings and physical_interface_mappings"
            );
        }
        interface_mappings.insert(net.to_string(), iface.to_string());
    }
    Ok(AgentOptions {
        host: host.to_string(),
        report_interval: Duration::from_secs(cfg.network.agent_report_interval.max(1)),
        availability_zone: cfg.network.agent_availability_zone.clone(),
        local_ip,
        bridge_mappings,
        interface_mappings,
        state_dir: cfg.data_dir.join("netagent").join(host),
        dnsmasq: a.dnsmasq.clone(),
        radvd: a.radvd.clone(),
        firewall_table: Some(a.firewall_table.clone()).filter(|t| !t.is_empty()),
        metadata: Some((cfg.metadata_url(), stratus_core::metadata_proxy::shared_secret(cfg)?)),
        host_namespace: None,
    })
}

/// Start the real agent of `host` on `bus`.
pub async fn start(cfg: &Config, bus: stratus_bus::Bus, host: &str) -> anyhow::Result<Agent> {
    Agent::start(bus, options(cfg, host)?).await
}
