//! Placement service: the OpenStack Placement API, microversions 1.0 to 1.39.
//!
//! `api/` holds one module per resource (routes, wire types, handlers);
//! `store/` the persistence, where every write is one serialized transaction
//! that also records which providers changed; `index` an in-memory copy of
//! the providers that reloads what changed, which `candidates` searches for
//! `GET /allocation_candidates` (the scheduler's hot path) and which
//! `GET /resource_providers` filters; `query` and `schema` read requests the
//! way placement reads them.

pub mod api;
pub mod bench;
pub mod candidates;
pub mod entity;
pub mod error;
pub mod index;
pub mod migration;
pub mod model;
pub mod policies;
pub mod query;
pub mod schema;
pub mod standard;
pub mod store;

use std::sync::Arc;

use stratus_core::auth::Policy;
use stratus_core::microversion::VersionRange;
use stratus_core::{Config, FaultStyle, Microversion, TokenValidator};
use stratus_db::Db;

pub use migration::Migrator;

/// The microversions this placement speaks.
pub const VERSIONS: VersionRange =
    VersionRange { service: "placement", min: Microversion(1, 0), max: Microversion(1, 39), legacy_header: None };

/// Everything a request handler of the placement service needs.
pub struct PlacementService {
    pub cfg: Config,
    pub db: Db,
    pub policy: Policy,
    /// The providers, in memory, for searches.
    pub index: index::Cache,
}

pub type State = Arc<PlacementService>;

impl PlacementService {
    /// Open the placement service over an already migrated database.
    pub fn open(cfg: Config, db: Db) -> anyhow::Result<State> {
        let mut enforcer = stratus_policy::Enforcer::new();
        enforcer.register_defaults(policies::DEFAULT_RULES)?;
        if !cfg.policy.file.is_empty() {
            enforcer.load_overrides_file(std::path::Path::new(&cfg.policy.file))?;
        }
        let policy = Policy::new(enforcer, FaultStyle::Placement);
        Ok(Arc::new(PlacementService { cfg, db, policy, index: index::Cache::new() }))
    }

    /// Allocation candidates for a parsed request, from the index (for
    /// benchmarks and in-process callers; the API goes through here too).
    pub async fn allocation_candidates(
        &self,
        req: &model::CandidateRequest,
    ) -> error::Result<(candidates::Candidates, Arc<index::Index>)> {
        let idx = self.index.read(&self.db).await?;
        let found = candidates::search(&idx, req).map_err(query::search_error)?;
        Ok((found, idx))
    }
}

/// The placement API with the shared HTTP layers, ready to serve.
pub fn router(state: State, validator: Arc<dyn TokenValidator>) -> axum::Router {
    let routes = api::routes(state.clone())
        .layer(stratus_core::microversion::layer(VERSIONS))
        .layer(stratus_core::auth::layer(validator));
    stratus_core::http::service("placement", FaultStyle::Placement, routes, &state.cfg.http_options())
}
