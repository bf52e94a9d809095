//! Typed REST clients between Stratus services, as OpenStack services talk:
//! over HTTP with a service token found through the catalog.

pub mod identity;
pub mod image;
pub mod network;
pub mod placement;

pub use identity::{IdentityClient, ServiceCredentials};
pub use image::ImageClient;
pub use network::NetworkClient;
pub use placement::PlacementClient;
