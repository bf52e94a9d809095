//! Block storage: the Cinder v3 API, the volume scheduler that picks a pool,
//! the volume hosts (`volume.<host>` on the bus) that drive a storage
//! backend, and the file backend (raw sparse files, or qcow2 through
//! qemu-img).
//!
//! The flow, as Cinder's: the API writes the volume (`creating`) and casts to
//! the scheduler; the scheduler picks a host and pool by capacity, volume
//! type and availability zone, and casts to that host; the host's driver
//! makes the file and the host writes the outcome (`available` or `error`).
//!
//! `api/` holds one module per resource (routes, wire types, handlers);
//! `store/` the persistence; `driver` the backend interface and the file
//! backend; `manager` the volume host; `scheduler` the pool choice.

pub mod api;
pub mod backup;
pub mod driver;
pub mod entity;
pub mod error;
pub mod manager;
pub mod migration;
pub mod migration_groups;
pub mod model;
pub mod policies;
pub mod rpc;
pub mod scheduler;
pub mod store;

use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use stratus_bus::Bus;
use stratus_core::auth::Policy;
use stratus_core::microversion::{Microversion, VersionRange};
use stratus_core::{Config, FaultStyle, TokenValidator};
use stratus_db::Db;

pub use migration::Migrator;

/// The microversions this block storage API speaks.
pub const VERSIONS: VersionRange =
    VersionRange { service: "volume", min: Microversion(3, 0), max: Microversion(3, 70), legacy_header: None };

/// Gives a valid service token (for calls to the image service).
pub type TokenSource = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<String>> + Send + Sync>;

/// Everything a request handler of the block storage API needs.
pub struct VolumeService {
    pub cfg: Config,
    pub db: Db,
    pub policy: Policy,
    /// Base URL for links: `http://host:8776`.
    pub base_url: String,
    /// The bus and clients, attached once the process has them.
    deps: OnceLock<Deps>,
}

/// What the API needs beyond its database.
pub struct Deps {
    pub bus: Bus,
    pub images: Arc<stratus_clients::ImageClient>,
    pub tokens: TokenSource,
}

pub type State = Arc<VolumeService>;

impl VolumeService {
    /// Open the block storage API over an already migrated database.
    pub fn open(cfg: Config, db: Db) -> anyhow::Result<State> {
        let mut enforcer = stratus_policy::Enforcer::new();
        enforcer.register_defaults(&policies::all_rules())?;
        if !cfg.policy.file.is_empty() {
            enforcer.load_overrides_file(std::path::Path::new(&cfg.policy.file))?;
        }
        let policy = Policy::new(enforcer, FaultStyle::Compute);
        let base_url = cfg.volume_public_url();
        Ok(Arc::new(VolumeService { cfg, db, policy, base_url, deps: OnceLock::new() }))
    }

    /// Attach the bus and clients (once; later calls do nothing).
    pub fn attach(&self, deps: Deps) {
        let _ = self.deps.set(deps);
    }

    /// The bus and clients, or a 503 when this process runs the API without them.
    pub fn deps(&self) -> error::Result<&Deps> {
        self.deps.get().ok_or_else(|| {
            error::VolumeError::Status(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "The volume service is not connected to its bus yet.".into(),
            )
        })
    }
}

/// The block storage API with the shared HTTP layers, ready to serve.
/// Project-scoped URLs (`/v3/{project_id}/volumes`) and project-less ones
/// (`/v3/volumes`) both reach the same routes.
pub fn router(state: State, validator: Arc<dyn TokenValidator>) -> axum::Router {
    let routes = api::routes(state.clone(), validator);
    let inner = stratus_core::http::service("volume", FaultStyle::Compute, routes, &state.cfg.http_options());
    axum::Router::new().fallback_service(tower::ServiceExt::map_request(inner, api::strip_project))
}
