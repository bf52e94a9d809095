//! Port forwardings of floating IPs. Changes of one floating IP's forwardings
//! happen in transactions that also bump the floating IP's revision, so their
//! overlap checks run one after the other.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

use crate::api::list::ListParams;
use crate::entity::port_forwarding::{self, Column as C, Model as PortForwarding};
use crate::error::Result;
use crate::store::query::{self, Kind, Table, field};

pub const TABLE: Table = Table {
    name: "portforwardings",
    tag_type: "",
    fields: &[
        field("id", "id", Kind::Str),
        field("protocol", "protocol", Kind::Str),
        field("external_port", "external_port_start", Kind::Int),
        field("internal_port_id", "internal_port_id", Kind::Str),
        field("description", "description", Kind::Str),
    ],
};

pub async fn list<Cn: ConnectionTrait>(conn: &Cn, fip: &str, p: &ListParams) -> Result<(Vec<PortForwarding>, bool)> {
    query::page(conn, &TABLE, port_forwarding::Entity::find().filter(C::FloatingipId.eq(fip)), p).await
}

pub async fn get<Cn: ConnectionTrait>(conn: &Cn, fip: &str, id: &str) -> Result<Option<PortForwarding>> {
    Ok(port_forwarding::Entity::find_by_id(id.to_string()).filter(C::FloatingipId.eq(fip)).one(conn).await?)
}

/// The forwardings of floating IPs, in a stable order.
pub async fn of_fips<Cn: ConnectionTrait>(conn: &Cn, fips: &[String]) -> Result<Vec<PortForwarding>> {
    if fips.is_empty() {
        return Ok(Vec::new());
    }
    Ok(port_forwarding::Entity::find()
        .filter(C::FloatingipId.is_in(fips.iter().cloned()))
        .order_by_asc(C::Id)
        .all(conn)
        .await?)
}

/// The forwardings to an internal port.
pub async fn of_internal_port<Cn: ConnectionTrait>(conn: &Cn, port: &str) -> Result<Vec<PortForwarding>> {
    Ok(port_forwarding::Entity::find().filter(C::InternalPortId.eq(port)).all(conn).await?)
}

pub async fn count_of_fip<Cn: ConnectionTrait>(conn: &Cn, fip: &str) -> Result<u64> {
    Ok(port_forwarding::Entity::find().filter(C::FloatingipId.eq(fip)).count(conn).await?)
}

pub async fn insert<Cn: ConnectionTrait>(conn: &Cn, p: PortForwarding) -> Result<()> {
    port_forwarding::ActiveModel::from(p).insert(conn).await?;
    Ok(())
}

pub async fn save<Cn: ConnectionTrait>(conn: &Cn, p: &PortForwarding) -> Result<()> {
    let mut am = port_forwarding::ActiveModel::from(p.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(p.id.clone());
    port_forwarding::Entity::update_many().set(am).filter(C::Id.eq(p.id.as_str())).exec(conn).await?;
    Ok(())
}

pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    Ok(port_forwarding::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}
