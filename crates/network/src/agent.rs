//! A fake network agent: a full participant of the agent interface with no
//! data plane. It reports a host's Linux bridge, DHCP and L3 agents alive
//! every `report_interval` seconds, serves `network-agent.<host>`, and
//! answers a [`PortBound`] by reporting the port wired, through a
//! [`PortStatusSink`] (by default [`BusSink`]: a [`PortWired`] cast to the
//! network service on [`rpc::PLUGIN`], which sets the port ACTIVE; tests may
//! supply their own) and in its reply.
//!
//! The real agent (`stratus network-agent`, bridges + VXLAN + dnsmasq +
//! nftables) implements the same messages.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use stratus_bus::{Bus, Envelope, Handler, Message, RemoteError};
use stratus_db::Db;

use crate::rpc::{self, FloatingIpChanged, PortBound, PortUnbound, PortWired, RouterUpdated};
use crate::store::agents::{self, DHCP_AGENT, L3_AGENT, LINUX_BRIDGE_AGENT};

/// Where an agent reports that a port is wired on its host.
#[async_trait::async_trait]
pub trait PortStatusSink: Send + Sync + 'static {
    async fn port_wired(&self, port_id: &str, host: &str) -> anyhow::Result<()>;

    /// The agent hands its bus to the sink when it starts (a sink that
    /// reports over the bus needs it; others ignore it).
    fn attach(&self, _bus: &Bus) {}
}

/// Reports to the network service: a [`PortWired`] cast on [`rpc::PLUGIN`]
/// (the default: it takes the agent's bus when the agent starts).
#[derive(Default)]
pub struct BusSink {
    bus: OnceLock<Bus>,
}

impl BusSink {
    /// A sink on `bus` (else the bus of the agent it is given to).
    pub fn new(bus: Bus) -> BusSink {
        BusSink { bus: OnceLock::from(bus) }
    }
}

#[async_trait::async_trait]
impl PortStatusSink for BusSink {
    async fn port_wired(&self, port_id: &str, host: &str) -> anyhow::Result<()> {
        let bus = self.bus.get().ok_or_else(|| anyhow::anyhow!("port {port_id} wired: no bus to report it on"))?;
        let m = PortWired { port_id: port_id.to_string(), host: host.to_string() };
        bus.cast(rpc::PLUGIN, &m, &format!("req-{}", uuid::Uuid::new_v4())).await?;
        Ok(())
    }

    fn attach(&self, bus: &Bus) {
        let _ = self.bus.set(bus.clone());
    }
}

/// A sink that only logs.
pub struct LogSink;

#[async_trait::async_trait]
impl PortStatusSink for LogSink {
    async fn port_wired(&self, port_id: &str, host: &str) -> anyhow::Result<()> {
        tracing::debug!(%port_id, %host, "port wired");
        Ok(())
    }
}

/// How a fake agent runs.
#[derive(Clone)]
pub struct FakeAgentOptions {
    /// Seconds between heartbeats.
    pub report_interval: Duration,
    /// The zone its DHCP and L3 agents report.
    pub availability_zone: String,
    pub sink: Arc<dyn PortStatusSink>,
}

impl Default for FakeAgentOptions {
    fn default() -> Self {
        FakeAgentOptions {
            report_interval: Duration::from_secs(30),
            availability_zone: "nova".into(),
            sink: Arc::new(BusSink::default()),
        }
    }
}

/// What the fake data plane holds: the ports, routers and floating IPs it was told of.
#[derive(Default, Debug, Clone)]
pub struct Wired {
    pub ports: BTreeSet<String>,
    pub routers: BTreeSet<String>,
    pub floating_ips: BTreeSet<String>,
    /// Floating IPs told deleted: ids are never reused, so a notice of one
    /// that arrives late (messages of one topic may be handled out of order)
    /// is ignored, as a real agent must.
    pub gone: BTreeSet<String>,
}

/// A running fake agent (its tasks stop when it is dropped).
pub struct FakeAgent {
    pub host: String,
    state: Arc<Mutex<Wired>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The agents one host runs: (type, binary, topic, reports a zone).
const AGENTS: &[(&str, &str, &str, bool)] = &[
    (LINUX_BRIDGE_AGENT, "neutron-linuxbridge-agent", "N/A", false),
    (DHCP_AGENT, "neutron-dhcp-agent", "dhcp_agent", true),
    (L3_AGENT, "neutron-l3-agent", "l3_agent", true),
];

impl FakeAgent {
    /// Start with the default options (heartbeats every 30 s, zone `nova`,
    /// ports reported wired to the network service over `bus`).
    pub async fn start(db: Db, bus: Bus, host: &str) -> anyhow::Result<FakeAgent> {
        Self::start_with(db, bus, host, FakeAgentOptions::default()).await
    }

    /// Report once (so the agents are listed when this returns), then keep
    /// heartbeating and serve the host's topic.
    pub async fn start_with(db: Db, bus: Bus, host: &str, opts: FakeAgentOptions) -> anyhow::Result<FakeAgent> {
        let state = Arc::new(Mutex::new(Wired::default()));
        report_all(&db, host, &opts.availability_zone, &state).await?;
        let mut tasks = Vec::new();
        opts.sink.attach(&bus);
        let serving = Arc::new(Serve { host: host.to_string(), sink: opts.sink.clone(), state: state.clone() });
        tasks.push(bus.serve(&rpc::agent_topic(host), serving).await?);
        let (h, st, zone, every) =
            (host.to_string(), state.clone(), opts.availability_zone.clone(), opts.report_interval);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = report_all(&db, &h, &zone, &st).await {
                    tracing::warn!(host = %h, error = %e, "agent heartbeat failed");
                }
            }
        }));
        tracing::info!(%host, "fake network agents up");
        Ok(FakeAgent { host: host.to_string(), state, tasks })
    }

    /// What it has wired so far.
    pub fn wired(&self) -> Wired {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stop heartbeating and serving.
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The configurations each agent reports, as Neutron's agents do.
fn configurations(agent_type: &str, w: &Wired) -> Value {
    match agent_type {
        LINUX_BRIDGE_AGENT => json!({
            "bridge_mappings": {},
            "interface_mappings": {},
            "tunnel_types": ["vxlan"],
            "l2_population": false,
            "devices": w.ports.len(),
        }),
        DHCP_AGENT => json!({
            "dhcp_driver": "fake",
            "dhcp_lease_duration": 86400,
            "networks": 0,
            "subnets": 0,
            "ports": 0,
            "notifies_port_ready": true,
        }),
        _ => json!({
            "agent_mode": "legacy",
            "routers": w.routers.len(),
            "floating_ips": w.floating_ips.len(),
            "interfaces": 0,
            "ex_gw_ports": 0,
            "handle_internal_only_routers": true,
            "interface_driver": "fake",
        }),
    }
}

async fn report_all(db: &Db, host: &str, zone: &str, state: &Mutex<Wired>) -> anyhow::Result<()> {
    let w = state.lock().map(|s| s.clone()).unwrap_or_default();
    for (agent_type, binary, topic, zoned) in AGENTS {
        let az = zoned.then_some(zone);
        agents::report(db, host, binary, agent_type, topic, &configurations(agent_type, &w), az)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

struct Serve {
    host: String,
    sink: Arc<dyn PortStatusSink>,
    state: Arc<Mutex<Wired>>,
}

impl Serve {
    fn note(&self, f: impl FnOnce(&mut Wired)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }
}

#[async_trait::async_trait]
impl Handler for Serve {
    async fn handle(&self, env: Envelope) -> Result<Value, RemoteError> {
        match env.name.as_str() {
            PortBound::NAME => {
                let m: PortBound = env.decode()?;
                if m.host != self.host {
                    return Err(RemoteError::new(
                        "WrongHost",
                        format!("port {} is bound to {}, not {}", m.port_id, m.host, self.host),
                    ));
                }
                self.note(|s| {
                    s.ports.insert(m.port_id.clone());
                });
                self.sink
                    .port_wired(&m.port_id, &self.host)
                    .await
                    .map_err(|e| RemoteError::new("PortStatusFailed", e.to_string()))?;
                serde_json::to_value(PortWired { port_id: m.port_id, host: self.host.clone() })
                    .map_err(|e| RemoteError::new("BadReply", e.to_string()))
            }
            PortUnbound::NAME => {
                let m: PortUnbound = env.decode()?;
                self.note(|s| {
                    s.ports.remove(&m.port_id);
                });
                Ok(Value::Null)
            }
            RouterUpdated::NAME => {
                let m: RouterUpdated = env.decode()?;
                self.note(|s| {
                    if m.deleted {
                        s.routers.remove(&m.router_id);
                    } else {
                        s.routers.insert(m.router_id.clone());
                    }
                });
                Ok(Value::Null)
            }
            FloatingIpChanged::NAME => {
                let m: FloatingIpChanged = env.decode()?;
                self.note(|s| {
                    if m.deleted {
                        s.gone.insert(m.floating_ip_id.clone());
                    }
                    if m.deleted || m.fixed_ip_address.is_none() {
                        s.floating_ips.remove(&m.floating_ip_id);
                    } else if !s.gone.contains(&m.floating_ip_id) {
                        s.floating_ips.insert(m.floating_ip_id.clone());
                    }
                });
                Ok(Value::Null)
            }
            // the fake serves no DHCP and has no tunnels: nothing to refresh
            rpc::NetworkChanged::NAME | rpc::GroupMembers::NAME => Ok(Value::Null),
            other => Err(RemoteError::new("UnexpectedMessage", format!("network agent: unknown message {other}"))),
        }
    }
}
