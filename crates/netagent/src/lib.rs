//! The network data plane: what `stratus network-agent --host H` programs on
//! its host for the messages of [`stratus_network::rpc`].
//!
//! - [`sg`]: security groups as nftables rules (bridge family, stateful).
pub mod agent;
pub mod dhcp;
pub mod kernel;
pub mod metadata;
pub mod nat;
pub mod ra;
pub mod sg;
pub mod supervise;
