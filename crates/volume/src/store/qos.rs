//! QoS specs: a name, a consumer and a JSON object of specs; a volume type
//! points at the one it uses (`volume_types.qos_specs_id`).

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::{Map, Value};

use crate::entity::{qos_spec, volume_type};
use crate::error::{Result, conflict};

fn exists(name: &str) -> crate::error::VolumeError {
    conflict(format!("QoS Specs {name} already exists."))
}

pub async fn get<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<qos_spec::Model>> {
    Ok(qos_spec::Entity::find_by_id(id.to_string()).one(conn).await?)
}

pub async fn list<C: ConnectionTrait>(conn: &C) -> Result<Vec<qos_spec::Model>> {
    Ok(qos_spec::Entity::find().order_by_asc(qos_spec::Column::CreatedAt).all(conn).await?)
}

/// The specs of a QoS specs row.
pub fn specs(q: &qos_spec::Model) -> Map<String, Value> {
    crate::api::json_object(&q.specs)
}

/// Make QoS specs (409 when the name is taken).
pub async fn create<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    consumer: &str,
    specs: Map<String, Value>,
) -> Result<qos_spec::Model> {
    if qos_spec::Entity::find().filter(qos_spec::Column::Name.eq(name)).one(conn).await?.is_some() {
        return Err(exists(name));
    }
    let row = qos_spec::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        name: Set(name.to_string()),
        consumer: Set(consumer.to_string()),
        specs: Set(Value::Object(specs).to_string()),
        created_at: Set(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
    };
    match row.insert(conn).await {
        Ok(m) => Ok(m),
        Err(e) if stratus_db::is_unique_violation(&e) => Err(exists(name)),
        Err(e) => Err(e.into()),
    }
}

/// Write consumer and specs back.
pub async fn save<C: ConnectionTrait>(
    conn: &C,
    q: &qos_spec::Model,
    consumer: &str,
    specs: Map<String, Value>,
) -> Result<qos_spec::Model> {
    let mut row: qos_spec::ActiveModel = q.clone().into();
    row.consumer = Set(consumer.to_string());
    row.specs = Set(Value::Object(specs).to_string());
    Ok(row.update(conn).await?)
}

/// Detach the QoS specs from every type.
pub async fn disassociate_all<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    volume_type::Entity::update_many()
        .col_expr(volume_type::Column::QosSpecsId, Expr::value(Option::<String>::None))
        .filter(volume_type::Column::QosSpecsId.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn delete<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    disassociate_all(conn, id).await?;
    qos_spec::Entity::delete_by_id(id.to_string()).exec(conn).await?;
    Ok(())
}
