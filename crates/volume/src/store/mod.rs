//! Persistence of the block storage service, one module per resource.

pub mod groups;
pub mod messages;
pub mod qos;
pub mod quotas;
pub mod services;
pub mod types;
pub mod volumes;
