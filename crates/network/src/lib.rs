//! Network service: the Neutron v2.0 API (networks, subnets and IPAM, ports,
//! security groups, routers, floating IPs, quotas, agents) and the interface
//! network agents implement (`network-agent.<host>` over the bus).
//!
//! `api/` holds one module per resource (routes, wire types, handlers);
//! `store/` the persistence (and [`store::query`], Neutron's list language as
//! SQL); `model` the rules that need no HTTP (IPAM, validation).

pub mod agent;
pub mod api;
pub mod entity;
pub mod error;
pub mod ipam;
pub mod migration;
pub mod migration_agents;
pub mod migration_ports;
pub mod migration_routers;
pub mod migration_security_groups;
pub mod migration_subnets;
pub mod model;
pub mod policies;
pub mod rpc;
pub mod store;

use std::sync::Arc;

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
        Ok(Arc::new(NetworkService { cfg, db, policy, base_url }))
    }
}

/// The network API with the shared HTTP layers, ready to serve.
pub fn router(state: State, validator: Arc<dyn TokenValidator>) -> axum::Router {
    let routes = api::routes(state.clone(), validator);
    stratus_core::http::service("network", FaultStyle::Network, routes, &state.cfg.http_options())
}
