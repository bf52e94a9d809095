//! The block storage tables (see [`crate::migration`]).

pub mod attachment;
pub mod backup;
pub mod default_type;
pub mod encryption;
pub mod group;
pub mod group_snapshot;
pub mod group_type;
pub mod group_volume_type;
pub mod message;
pub mod qos_spec;
pub mod quota;
pub mod quota_class;
pub mod quota_lock;
pub mod service;
pub mod snapshot;
pub mod transfer;
pub mod volume;
pub mod volume_type;
pub mod volume_type_project;
