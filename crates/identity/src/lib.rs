//! Identity service: Keystone v3.
//!
//! `api/` holds one module per resource (routes, wire types, handlers);
//! `store/` the persistence and the rules; `token` the Fernet token provider.

pub mod api;
pub mod bootstrap;
pub mod entity;
pub mod error;
pub mod fernet;
pub mod migration;
pub mod policies;
pub mod store;
pub mod token;
pub mod util;

use std::sync::Arc;

use stratus_core::auth::Policy;
use stratus_core::{Config, FaultStyle};
use stratus_db::Db;

pub use migration::Migrator;

/// Everything a request handler of identity needs.
pub struct Identity {
    pub cfg: Config,
    pub db: Db,
    pub keys: fernet::KeyRing,
    pub policy: Policy,
    pub tokens: token::TokenCache,
    pub revocations: store::revoke::RevocationList,
    /// Base URL for links: `http://host:5000`.
    pub base_url: String,
}

pub type State = Arc<Identity>;

impl Identity {
    /// Open identity over an already migrated database and an existing key repository.
    pub async fn open(cfg: Config, db: Db) -> anyhow::Result<State> {
        let keys = fernet::KeyRing::open(&cfg.fernet_key_repository())?;
        let mut enforcer = stratus_policy::Enforcer::new();
        enforcer.register_defaults(policies::DEFAULT_RULES)?;
        if !cfg.policy.file.is_empty() {
            enforcer.load_overrides_file(std::path::Path::new(&cfg.policy.file))?;
        }
        let policy = Policy::new(enforcer, FaultStyle::Identity);
        let base_url = cfg.identity_public_url();
        let tokens = token::TokenCache::new(cfg.identity.token_cache_seconds);
        let revocations = store::revoke::RevocationList::default();
        let id = Arc::new(Identity { cfg, db, keys, policy, tokens, revocations, base_url });
        id.revocations.reload(&id.db).await?;
        Ok(id)
    }

    /// Something changed that tokens depend on: forget validated tokens.
    pub fn invalidate_tokens(&self) {
        self.tokens.clear();
    }
}

/// The identity API with the shared HTTP layers, ready to serve.
pub fn router(state: State) -> axum::Router {
    let validator: Arc<dyn stratus_core::TokenValidator> = Arc::new(token::Validator(state.clone()));
    let routes = api::routes(state.clone()).layer(stratus_core::auth::layer(validator));
    stratus_core::http::service("identity", FaultStyle::Identity, routes, &state.cfg.http_options())
}
