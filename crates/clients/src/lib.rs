//! Typed REST clients between Stratus services, as OpenStack services talk:
//! over HTTP with a service token found through the catalog.

pub mod identity;

pub use identity::{IdentityClient, ServiceCredentials};
