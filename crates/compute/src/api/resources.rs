//! The resources beside servers: flavors, keypairs, aggregates, availability
//! zones, hypervisors, services, quotas, limits, server groups, usage.

use axum::Router;

use crate::State;

pub fn routes() -> Router<State> {
    Router::new()
}
