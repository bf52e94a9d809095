//! The image cache API (being written).

use axum::Router;

use crate::State;

pub fn routes() -> Router<State> {
    Router::new()
}
