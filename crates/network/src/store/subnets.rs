//! Subnets and IPAM (filled in by the subnets work; the network code calls these).

use std::collections::BTreeMap;

use sea_orm::ConnectionTrait;

use crate::error::Result;

/// The subnet ids of each network (for the network's `subnets` attribute).
pub async fn ids_by_network<C: ConnectionTrait>(
    _conn: &C,
    _networks: &[String],
) -> Result<BTreeMap<String, Vec<String>>> {
    Ok(BTreeMap::new())
}

/// Remove every subnet of a network that is being deleted (its ports are gone).
pub async fn delete_for_network<C: ConnectionTrait>(_conn: &C, _network: &str) -> Result<()> {
    Ok(())
}
