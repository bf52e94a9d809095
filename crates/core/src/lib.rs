//! Shared plumbing for every Stratus service: configuration, fault bodies,
//! request ids and access logs, body-size limits, JSON/query extractors that
//! answer 400 (never 422), and the authentication context that policy checks use.

pub mod access_rules;
pub mod auth;
pub mod config;
pub mod extract;
pub mod fault;
pub mod http;
pub mod metadata_proxy;
pub mod microversion;
pub mod time;

pub use auth::{AuthContext, AuthState, TokenValidator};
pub use config::Config;
pub use fault::{ApiError, FaultStyle};
pub use microversion::{Microversion, VersionRange};
