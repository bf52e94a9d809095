//! Image service: Glance v2.
//!
//! `api/` holds one module per resource (routes, wire types, handlers);
//! `store/` the persistence; `backend` where image data lives; `pipeline`
//! the streaming upload with hashing; `format` the disk-format inspector that
//! refuses dangerous images.

pub mod api;
pub mod backend;
pub mod cache;
pub mod entity;
pub mod error;
pub mod format;
pub mod migration;
pub mod migration_metadefs;
pub mod migration_tasks;
pub mod pipeline;
pub mod policies;
pub mod preload;
pub mod quota;
pub mod reaper;
pub mod schemas;
pub mod store;

use std::sync::Arc;

use stratus_core::auth::Policy;
use stratus_core::{Config, FaultStyle, TokenValidator};
use stratus_db::Db;

pub use migration::Migrator;

/// Everything a request handler of the image service needs.
pub struct ImageService {
    pub cfg: Config,
    pub db: Db,
    pub policy: Policy,
    pub stores: backend::Stores,
    pub limits: Arc<dyn quota::LimitSource>,
    /// Local copies of image data, served before the stores.
    pub cache: cache::ImageCache,
    /// Base URL for links: `http://host:9292`.
    pub base_url: String,
}

pub type State = Arc<ImageService>;

impl ImageService {
    /// Open the image service over an already migrated database.
    pub fn open(cfg: Config, db: Db, limits: Arc<dyn quota::LimitSource>) -> anyhow::Result<State> {
        let mut enforcer = stratus_policy::Enforcer::new();
        enforcer.register_defaults(policies::DEFAULT_RULES)?;
        if !cfg.policy.file.is_empty() {
            enforcer.load_overrides_file(std::path::Path::new(&cfg.policy.file))?;
        }
        let policy = Policy::new(enforcer, FaultStyle::Image);
        let stores = backend::Stores::from_config(&cfg)?;
        let base_url = cfg.image_public_url();
        let cache = cache::ImageCache::load(&cfg.data_dir)?;
        Ok(Arc::new(ImageService { cfg, db, policy, stores, limits, cache, base_url }))
    }
}

/// The image API with the shared HTTP layers, ready to serve.
pub fn router(state: State, validator: Arc<dyn TokenValidator>) -> axum::Router {
    let routes = api::routes(state.clone()).layer(stratus_core::auth::layer(validator));
    // image data is streamed, never buffered: the body limit applies to the
    // extractors that buffer (JSON); the data routes enforce image_size_cap themselves
    stratus_core::http::service("image", FaultStyle::Image, routes, &state.cfg.http_options())
}
