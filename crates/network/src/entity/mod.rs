//! sea-orm entities of the network tables (one module per table).

pub mod network;
pub mod quota;
pub mod quota_lock;
pub mod tag;
