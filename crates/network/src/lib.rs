//! Network service: the Neutron v2.0 API (networks, subnets and IPAM, ports,
//! security groups, routers, floating IPs, quotas, agents) and the interface
//! network agents implement (`network-agent.<host>` over the bus).
//!
//! `api/` holds one module per resource (routes, wire types, handlers);
//! `store/` the persistence (and [`store::query`], Neutron's list language as
//! SQL); `model` the rules that need no HTTP (IPAM, validation).

pub mod agent;
pub mod api;
pub mod bootstrap;
pub mod entity;
pub mod error;
pub mod ipam;
pub mod l3;
pub mod migration;
pub mod migration_address_scopes;
pub mod migration_agents;
pub mod migration_l3_agents;
pub mod migration_ports;
pub mod migration_routers;
pub mod migration_security_groups;
pub mod migration_subnets;
pub mod model;
pub mod plugin;
pub mod policies;
pub mod rpc;
pub mod store;

use std::sync::{Arc, Mutex, OnceLock};

use stratus_bus::Bus;
use stratus_core::auth::Policy;
use stratus_core::{Config, FaultStyle, TokenValidator};
use stratus_db::Db;

pub use migration::Migrator;

/// Everything a request handler of the network API needs.
pub struct NetworkService {
    pub cfg: Config,
    pub db: Db,
    pub policy: Policy,
    /// Base URL for links: `http://host:9696`.
    pub base_url: String,
    /// The bus to the network agents, attached once connected (an API
    /// process serves before its bus is up; unit tests run without one).
    bus: OnceLock<Bus>,
    serving: Mutex<Option<plugin::Serving>>,
    /// Port creates written together (group commit).
    pub port_writes: api::port_writes::Combiner,
    /// Security group member changes, told to agents in rounds.
    pub member_changes: plugin::MemberChanges,
    /// Router and floating IP notices are built and sent one at a time, in
    /// the order they were made (a router's update is not overtaken by its
    /// deletion).
    pub l3_order: tokio::sync::Mutex<()>,
}

pub type State = Arc<NetworkService>;

impl NetworkService {
    /// Open the network API over an already migrated database.
    pub fn open(cfg: Config, db: Db) -> anyhow::Result<State> {
        let mut enforcer = stratus_policy::Enforcer::new();
        enforcer.register_defaults(&policies::all_rules())?;
        if !cfg.policy.file.is_empty() {
            enforcer.load_overrides_file(std::path::Path::new(&cfg.policy.file))?;
        }
        let policy = Policy::new(enforcer, FaultStyle::Network);
        let base_url = cfg.network_public_url();
        Ok(Arc::new(NetworkService {
            cfg,
            db,
            policy,
            base_url,
            bus: OnceLock::new(),
            serving: Mutex::new(None),
            port_writes: Default::default(),
            member_changes: Default::default(),
            l3_order: Default::default(),
        }))
    }

    /// Attach the bus (once; later calls do nothing): from now on ports bound
    /// to a host are sent to its agents, and the agents' reports on
    /// [`rpc::PLUGIN`] are served (port wired -> ACTIVE, heartbeats).
    pub async fn attach_bus(&self, bus: Bus) -> anyhow::Result<()> {
        if self.bus.get().is_some() {
            return Ok(());
        }
        let serving = plugin::serve(&bus, self.db.clone(), &self.cfg.network.base_mac).await?;
        if self.bus.set(bus).is_err() {
            // a racing attach won: keep its consumer only
            return Ok(());
        }
        if let Ok(mut s) = self.serving.lock() {
            *s = Some(serving);
        }
        Ok(())
    }

    /// The bus to the agents, once attached.
    pub fn bus(&self) -> Option<&Bus> {
        self.bus.get()
    }
}

/// The network API with the shared HTTP layers, ready to serve.
pub fn router(state: State, validator: Arc<dyn TokenValidator>) -> axum::Router {
    let routes = api::routes(state.clone(), validator);
    stratus_core::http::service("network", FaultStyle::Network, routes, &state.cfg.http_options())
}
