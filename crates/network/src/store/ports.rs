//! Ports (filled in by the ports work; the network code calls these).

use sea_orm::ConnectionTrait;

use crate::error::Result;

/// How many ports on the network keep it in use: all but the network's own
/// (`network:dhcp`), which go with it.
pub async fn blocking_network_delete<C: ConnectionTrait>(_conn: &C, _network: &str) -> Result<i64> {
    Ok(0)
}

/// Remove the network's own ports (DHCP) when the network goes.
pub async fn delete_network_owned<C: ConnectionTrait>(_conn: &C, _network: &str) -> Result<()> {
    Ok(())
}
