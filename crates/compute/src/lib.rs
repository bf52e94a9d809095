//! Compute service: the Nova v2.1 API, the conductor that runs build sagas,
//! the scheduler that picks hosts through placement, and the compute host
//! manager that drives a hypervisor driver.
//!
//! `api/` holds one module per resource (routes, wire types, handlers);
//! `store/` the persistence; `model` the states and rules of servers.

pub mod api;
pub mod backups;
pub mod conductor;
pub mod console;
pub mod entity;
pub mod error;
pub mod image_cache;
pub mod manager;
pub mod metadata;
pub mod migration;
pub mod migration_block_devices;
pub mod migration_resources;
pub mod migration_server_migrations;
pub mod model;
pub mod network;
pub mod placement;
pub mod policies;
pub mod policies_network;
pub mod policies_resources;
pub mod roles;
pub mod rpc;
pub mod scheduler;
pub mod store;
pub mod volume;

use std::sync::Arc;

use stratus_core::auth::Policy;
use stratus_core::microversion::{Microversion, VersionRange};
use stratus_core::{Config, FaultStyle, TokenValidator};
use stratus_db::Db;

pub use migration::Migrator;

/// The microversions this compute API speaks.
pub const VERSIONS: VersionRange = VersionRange {
    service: "compute",
    min: Microversion(2, 1),
    max: Microversion(2, 96),
    legacy_header: Some("x-openstack-nova-api-version"),
};

/// Everything a request handler of the compute API needs.
pub struct ComputeService {
    pub cfg: Config,
    pub db: Db,
    pub policy: Policy,
    /// Base URL for links: `http://host:8774`.
    pub base_url: String,
    /// The bus and the other services' clients, attached once the process has them.
    pub deps: std::sync::OnceLock<Deps>,
}

/// What the API needs beyond its database: the bus to the conductor and the
/// hosts, placement, the image service, and the service token.
pub struct Deps {
    pub bus: stratus_bus::Bus,
    pub placement: Arc<placement::Placement>,
    pub images: Arc<stratus_clients::ImageClient>,
    pub tokens: placement::TokenSource,
    /// The network service, when servers get ports (`compute.networking`).
    pub network: Option<Arc<network::Networking>>,
    /// The block storage service, when servers get volumes (`compute.block_storage`).
    pub volumes: Option<Arc<volume::Volumes>>,
}

pub type State = Arc<ComputeService>;

impl ComputeService {
    /// Open the compute API over an already migrated database.
    pub fn open(cfg: Config, db: Db) -> anyhow::Result<State> {
        let mut enforcer = stratus_policy::Enforcer::new();
        enforcer.register_defaults(&policies::all_rules())?;
        if !cfg.policy.file.is_empty() {
            enforcer.load_overrides_file(std::path::Path::new(&cfg.policy.file))?;
        }
        let policy = Policy::new(enforcer, FaultStyle::Compute);
        let base_url = cfg.compute_public_url();
        Ok(Arc::new(ComputeService { cfg, db, policy, base_url, deps: std::sync::OnceLock::new() }))
    }

    /// Attach the bus and clients (once).
    pub fn attach(&self, deps: Deps) {
        let _ = self.deps.set(deps);
    }

    /// The bus and clients, or a 503 when this process runs the API without them.
    pub fn deps(&self) -> error::Result<&Deps> {
        self.deps.get().ok_or_else(|| {
            error::ComputeError::Status(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "The compute service is not connected to its bus yet.".into(),
            )
        })
    }
}

/// The compute API with the shared HTTP layers, ready to serve.
pub fn router(state: State, validator: Arc<dyn TokenValidator>) -> axum::Router {
    let routes = api::routes(state.clone(), validator);
    stratus_core::http::service("compute", FaultStyle::Compute, routes, &state.cfg.http_options())
}
