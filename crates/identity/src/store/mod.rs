//! Identity's persistence and the rules that go with it. Handlers call these;
//! nothing outside `store` writes SQL.

pub mod appcred;
pub mod assignment;
pub mod catalog;
pub mod domain_config;
pub mod endpoint_group;
pub mod misc;
pub mod resource;
pub mod revoke;
pub mod user;

/// Domains are projects with `is_domain`; their own `domain_id` is this root marker.
pub const DOMAIN_ROOT: &str = "<<keystone.domain.root>>";
/// Global roles store this as `domain_id` (NULL would defeat the unique index).
pub const NULL_DOMAIN: &str = "<<null>>";
