//! Routers and their L3 agents (Neutron's L3 agent scheduler and L3 RPC):
//! a router is hosted by one L3 agent, chosen when it is created (the alive
//! agent hosting the fewest routers) or, when it has no live host, the next
//! time it changes; the agent of its host is told of every committed change
//! of the router ([`RouterUpdated`], its full state) and of its floating IPs
//! ([`FloatingIpChanged`]).
//!
//! As in [`crate::plugin`], notices are casts from a spawned task after the
//! change committed (a failed one is logged; the agent resyncs), and nothing
//! is sent without a bus. With no alive L3 agent a router stays unscheduled,
//! as Neutron leaves it.

use std::collections::BTreeSet;

use sea_orm::ConnectionTrait;

use crate::entity::floatingip::Model as FloatingIp;
use crate::entity::port::Model as Port;
use crate::entity::router::Model as Router;
use crate::error::Result;
use crate::plugin::{request_id, segment_of};
use crate::rpc::{self, FixedIp, FloatingIpChanged, RouterPort, RouterUpdated};
use crate::store::{agents, routers, subnets};
use crate::{NetworkService, State};

/// The host of the alive L3 agent hosting the fewest routers (by name on a
/// tie); None when no L3 agent is alive.
pub async fn choose_host<Cn: ConnectionTrait>(conn: &Cn, down_time: u64) -> Result<Option<String>> {
    let hosts = agents::l3_hosts(conn, down_time).await?;
    let load = routers::count_by_host(conn, &hosts).await?;
    Ok(hosts.into_iter().min_by_key(|h| (load.get(h).copied().unwrap_or(0), h.clone())))
}

/// The host of `r`'s L3 agent: its own while that agent is alive, else one
/// chosen now and stored (None: no L3 agent alive). `moved` when it changed.
async fn ensure_host(svc: &NetworkService, r: &Router) -> Result<Option<(String, bool)>> {
    let conn = &svc.db.write;
    let down = svc.cfg.network.agent_down_time;
    if !r.l3_agent_host.is_empty()
        && agents::l3_agent_on(conn, &r.l3_agent_host).await?.is_some_and(|a| agents::is_alive(&a, down))
    {
        return Ok(Some((r.l3_agent_host.clone(), false)));
    }
    let Some(host) = choose_host(conn, down).await? else { return Ok(None) };
    if host == r.l3_agent_host {
        return Ok(Some((host, false)));
    }
    if routers::set_host(conn, &r.id, &r.l3_agent_host, &host).await? {
        tracing::info!(router_id = %r.id, from = %r.l3_agent_host, to = %host, "router scheduled");
        return Ok(Some((host, true)));
    }
    // scheduled meanwhile by another change: its choice stands
    Ok(routers::get(conn, &r.id).await?.filter(|r| !r.l3_agent_host.is_empty()).map(|r| (r.l3_agent_host, true)))
}

/// Router ports as the agent wires them: addresses, their subnets' CIDRs, segment.
async fn router_ports<Cn: ConnectionTrait>(conn: &Cn, ports: &[Port]) -> Result<Vec<RouterPort>> {
    let ids: Vec<String> = ports.iter().map(|p| p.id.clone()).collect();
    let mut allocs = subnets::allocations_of(conn, &ids).await?;
    let sids: Vec<String> =
        allocs.values().flatten().map(|a| a.subnet_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let subs = subnets::by_ids(conn, &sids).await?;
    let mut out = Vec::new();
    for p in ports {
        let ips = allocs.remove(&p.id).unwrap_or_default();
        let sub = |a: &crate::entity::ipallocation::Model| subs.iter().find(|s| s.id == a.subnet_id);
        let cidrs = ips.iter().map(|a| sub(a).map(|s| s.cidr.clone()).unwrap_or_default()).collect();
        let gateway_ips = ips.iter().map(|a| sub(a).map(|s| s.gateway_ip.clone()).unwrap_or_default()).collect();
        let ra_modes = ips.iter().map(|a| sub(a).map(|s| s.ipv6_ra_mode.clone()).unwrap_or_default()).collect();
        out.push(RouterPort {
            port_id: p.id.clone(),
            mac_address: p.mac_address.clone(),
            cidrs,
            gateway_ips,
            ra_modes,
            fixed_ips: ips.into_iter().map(|a| FixedIp { subnet_id: a.subnet_id, ip_address: a.ip_address }).collect(),
            segment: segment_of(conn, &p.network_id).await?,
        });
    }
    Ok(out)
}

/// What [`RouterUpdated`] tells the agent of `r`'s host: admin state, the
/// gateway with its addresses and SNAT mode, the interfaces, the extra routes.
pub async fn router_updated<Cn: ConnectionTrait>(conn: &Cn, r: &Router) -> Result<RouterUpdated> {
    let gateway = match routers::port(conn, &r.gw_port_id).await? {
        Some(p) if !r.gw_port_id.is_empty() => router_ports(conn, std::slice::from_ref(&p)).await?.pop(),
        _ => None,
    };
    let interfaces = router_ports(conn, &routers::interfaces(conn, &r.id).await?).await?;
    let routes = routers::routes_of(conn, std::slice::from_ref(&r.id))
        .await?
        .remove(&r.id)
        .unwrap_or_default()
        .into_iter()
        .map(|x| serde_json::json!({"destination": x.destination, "nexthop": x.nexthop}))
        .collect();
    Ok(RouterUpdated {
        router_id: r.id.clone(),
        deleted: false,
        admin_state_up: r.admin_state_up,
        gateway,
        enable_snat: r.enable_snat,
        interfaces,
        routes,
    })
}

/// Send the router as it is now to its host's agent (scheduling it first
/// when it has no live host). Without a bus, nothing.
pub fn router_changed(svc: &State, router_id: &str) {
    let Some(bus) = svc.bus().cloned() else { return };
    let (svc, router_id) = (svc.clone(), router_id.to_string());
    tokio::spawn(async move {
        let _order = svc.l3_order.lock().await;
        let r: anyhow::Result<()> = async {
            let Some(r) = routers::get(&svc.db.read, &router_id).await? else { return Ok(()) };
            let Some((host, _)) = ensure_host(&svc, &r).await? else { return Ok(()) };
            let m = router_updated(&svc.db.read, &r).await?;
            bus.cast(&rpc::agent_topic(&host), &m, &request_id()).await?;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(%router_id, error = %e, "could not tell the L3 agent a router changed");
        }
    });
}

/// A router deleted: its host's agent removes it.
pub fn router_deleted(svc: &State, r: &Router) {
    let Some(bus) = svc.bus().cloned() else { return };
    if r.l3_agent_host.is_empty() {
        return;
    }
    let host = r.l3_agent_host.clone();
    let m = RouterUpdated {
        router_id: r.id.clone(),
        deleted: true,
        admin_state_up: r.admin_state_up,
        ..Default::default()
    };
    let svc = svc.clone();
    tokio::spawn(async move {
        let _order = svc.l3_order.lock().await;
        if let Err(e) = bus.cast(&rpc::agent_topic(&host), &m, &request_id()).await {
            tracing::warn!(router_id = %m.router_id, %host, error = %e, "could not tell the L3 agent a router went");
        }
    });
}

/// A floating IP changed from `before` (None: created) to `after`, or was
/// deleted (`deleted`, `after` as it was): the agent hosting its router is
/// told; when it moved to another router, the old router's agent is told it
/// left.
pub fn floating_ip_changed(svc: &State, before: Option<&FloatingIp>, after: &FloatingIp, deleted: bool) {
    notify_floating_ip(svc, before, after, deleted, false)
}

/// The port forwardings of a floating IP changed (and with them, maybe, its
/// router): its router's agent is told all of them.
pub fn forwardings_changed(svc: &State, before: &FloatingIp, after: &FloatingIp) {
    notify_floating_ip(svc, Some(before), after, false, true)
}

/// The forwardings of a floating IP as its agent programs them.
pub async fn forwardings_of<C: ConnectionTrait>(conn: &C, fip: &str) -> Result<Vec<rpc::PortForwarding>> {
    let port = |p: i64| u16::try_from(p).unwrap_or_default();
    Ok(crate::store::port_forwardings::of_fips(conn, &[fip.to_string()])
        .await?
        .into_iter()
        .map(|p| rpc::PortForwarding {
            protocol: p.protocol,
            internal_ip_address: p.internal_ip_address,
            external_port_start: port(p.external_port_start),
            external_port_end: port(p.external_port_end),
            internal_port_start: port(p.internal_port_start),
            internal_port_end: port(p.internal_port_end),
        })
        .collect())
}

fn notify_floating_ip(svc: &State, before: Option<&FloatingIp>, after: &FloatingIp, deleted: bool, force: bool) {
    let Some(bus) = svc.bus().cloned() else { return };
    let old_router = before.and_then(|b| b.router_id.clone()).filter(|r| Some(r) != after.router_id.as_ref());
    let same = before.is_some_and(|b| {
        b.router_id == after.router_id
            && b.fixed_port_id == after.fixed_port_id
            && b.fixed_ip_address == after.fixed_ip_address
    });
    if (same && !deleted && !force) || (after.router_id.is_none() && old_router.is_none()) {
        return;
    }
    let (svc, after) = (svc.clone(), after.clone());
    tokio::spawn(async move {
        let _order = svc.l3_order.lock().await;
        let r: anyhow::Result<()> = async {
            if let Some(old) = old_router {
                let left = FloatingIpChanged {
                    floating_ip_id: after.id.clone(),
                    floating_ip_address: after.floating_ip_address.clone(),
                    router_id: Some(old.clone()),
                    port_id: None,
                    fixed_ip_address: None,
                    deleted,
                    port_forwardings: Vec::new(),
                };
                if let Some(r) = routers::get(&svc.db.read, &old).await?
                    && !r.l3_agent_host.is_empty()
                {
                    bus.cast(&rpc::agent_topic(&r.l3_agent_host), &left, &request_id()).await?;
                }
            }
            let Some(rid) = &after.router_id else { return Ok(()) };
            let Some(r) = routers::get(&svc.db.read, rid).await? else { return Ok(()) };
            let Some((host, moved)) = ensure_host(&svc, &r).await? else { return Ok(()) };
            if moved {
                bus.cast(&rpc::agent_topic(&host), &router_updated(&svc.db.read, &r).await?, &request_id()).await?;
            }
            let m = FloatingIpChanged {
                floating_ip_id: after.id.clone(),
                floating_ip_address: after.floating_ip_address.clone(),
                router_id: after.router_id.clone(),
                port_id: after.fixed_port_id.clone(),
                fixed_ip_address: after.fixed_ip_address.clone(),
                deleted,
                port_forwardings: if deleted { Vec::new() } else { forwardings_of(&svc.db.read, &after.id).await? },
            };
            bus.cast(&rpc::agent_topic(&host), &m, &request_id()).await?;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(floating_ip_id = %after.id, error = %e, "could not tell the L3 agent a floating IP changed");
        }
    });
}

/// A port went: the floating IPs that were on it (as they were) lost their association.
pub fn port_gone(svc: &State, fips: &[FloatingIp]) {
    for f in fips {
        let mut after = f.clone();
        after.fixed_port_id = None;
        after.fixed_ip_address = None;
        after.router_id = None;
        floating_ip_changed(svc, Some(f), &after, false);
    }
}

/// Host `r` on `host` (an operator's choice: `POST /agents/{id}/l3-routers`):
/// false when it is hosted by another live L3 agent (Neutron's
/// `RouterHostedByL3Agent`). Its new host's agent is told of it.
pub async fn add_to_host(svc: &State, r: &Router, host: &str) -> Result<bool> {
    if r.l3_agent_host == host {
        return Ok(true);
    }
    let down = svc.cfg.network.agent_down_time;
    if !r.l3_agent_host.is_empty()
        && agents::l3_agent_on(&svc.db.write, &r.l3_agent_host).await?.is_some_and(|a| agents::is_alive(&a, down))
    {
        return Ok(false);
    }
    if !routers::set_host(&svc.db.write, &r.id, &r.l3_agent_host, host).await? {
        return Ok(false);
    }
    router_changed(svc, &r.id);
    Ok(true)
}

/// Take `r` off `host` (`DELETE /agents/{id}/l3-routers/{router}`): false
/// when it is not hosted there. The agent removes it; the router is
/// scheduled again at its next change.
pub async fn remove_from_host(svc: &State, r: &Router, host: &str) -> Result<bool> {
    if r.l3_agent_host != host || !routers::set_host(&svc.db.write, &r.id, host, "").await? {
        return Ok(false);
    }
    router_deleted(svc, r);
    Ok(true)
}
