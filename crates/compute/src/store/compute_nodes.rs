//! Compute nodes: the hypervisor each compute service drives, with its
//! capacity and what is used of it (what `os-hypervisors` shows). The uuid is
//! also the node's resource provider in placement.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use stratus_db::Db;

use crate::entity::compute_node;
use crate::error::Result;

pub type ComputeNode = compute_node::Model;

/// What a compute host reports about its hypervisor.
#[derive(Clone, Debug)]
pub struct NewComputeNode {
    pub host: String,
    pub hypervisor_hostname: String,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub host_ip: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    /// Used when the node is new; an existing node keeps its uuid.
    pub uuid: String,
    pub service_id: i64,
    /// The hypervisor's CPU description (JSON), shown by os-hypervisors.
    pub cpu_info: String,
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

async fn find(db: &Db, host: &str, node: &str) -> Result<Option<ComputeNode>> {
    Ok(compute_node::Entity::find()
        .filter(compute_node::Column::Host.eq(host))
        .filter(compute_node::Column::HypervisorHostname.eq(node))
        .one(&db.write)
        .await?)
}

/// Record a node (host, hypervisor hostname) or refresh what it reports.
/// The returned row carries the uuid to use (the stored one if it existed).
pub async fn upsert(db: &Db, n: NewComputeNode) -> Result<ComputeNode> {
    for _ in 0..3 {
        if let Some(cur) = find(db, &n.host, &n.hypervisor_hostname).await? {
            compute_node::Entity::update_many()
                .col_expr(compute_node::Column::HypervisorType, Expr::value(n.hypervisor_type.clone()))
                .col_expr(compute_node::Column::HypervisorVersion, Expr::value(n.hypervisor_version))
                .col_expr(compute_node::Column::HostIp, Expr::value(n.host_ip.clone()))
                .col_expr(compute_node::Column::Vcpus, Expr::value(n.vcpus))
                .col_expr(compute_node::Column::MemoryMb, Expr::value(n.memory_mb))
                .col_expr(compute_node::Column::LocalGb, Expr::value(n.local_gb))
                .col_expr(compute_node::Column::ServiceId, Expr::value(n.service_id))
                .col_expr(compute_node::Column::CpuInfo, Expr::value(n.cpu_info.clone()))
                .col_expr(compute_node::Column::UpdatedAt, Expr::value(now_us()))
                .filter(compute_node::Column::Id.eq(cur.id))
                .exec(&db.write)
                .await?;
            return Ok(find(db, &n.host, &n.hypervisor_hostname).await?.unwrap_or(cur));
        }
        let now = now_us();
        let m = compute_node::ActiveModel {
            uuid: Set(n.uuid.clone()),
            service_id: Set(n.service_id),
            host: Set(n.host.clone()),
            hypervisor_hostname: Set(n.hypervisor_hostname.clone()),
            hypervisor_type: Set(n.hypervisor_type.clone()),
            hypervisor_version: Set(n.hypervisor_version),
            host_ip: Set(n.host_ip.clone()),
            vcpus: Set(n.vcpus),
            memory_mb: Set(n.memory_mb),
            local_gb: Set(n.local_gb),
            vcpus_used: Set(0),
            memory_mb_used: Set(0),
            local_gb_used: Set(0),
            running_vms: Set(0),
            cpu_info: Set(n.cpu_info.clone()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        match m.insert(&db.write).await {
            Ok(m) => return Ok(m),
            // registered meanwhile by a second report: update that row
            Err(e) if stratus_db::is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(crate::error::ComputeError::Internal(anyhow::anyhow!(
        "compute node {}/{} could not be recorded",
        n.host,
        n.hypervisor_hostname
    )))
}

/// Record what is in use on a node.
pub async fn update_usage(
    db: &Db,
    id: i64,
    vcpus_used: i64,
    memory_mb_used: i64,
    local_gb_used: i64,
    running_vms: i64,
) -> Result<()> {
    compute_node::Entity::update_many()
        .col_expr(compute_node::Column::VcpusUsed, Expr::value(vcpus_used))
        .col_expr(compute_node::Column::MemoryMbUsed, Expr::value(memory_mb_used))
        .col_expr(compute_node::Column::LocalGbUsed, Expr::value(local_gb_used))
        .col_expr(compute_node::Column::RunningVms, Expr::value(running_vms))
        .col_expr(compute_node::Column::UpdatedAt, Expr::value(now_us()))
        .filter(compute_node::Column::Id.eq(id))
        .exec(&db.write)
        .await?;
    Ok(())
}

/// Every node, by id.
pub async fn list(db: &Db) -> Result<Vec<ComputeNode>> {
    Ok(compute_node::Entity::find().order_by_asc(compute_node::Column::Id).all(&db.read).await?)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<ComputeNode>> {
    Ok(compute_node::Entity::find_by_id(id).one(&db.read).await?)
}

pub async fn get_by_uuid(db: &Db, uuid: &str) -> Result<Option<ComputeNode>> {
    Ok(compute_node::Entity::find().filter(compute_node::Column::Uuid.eq(uuid)).one(&db.read).await?)
}

pub async fn of_host(db: &Db, host: &str) -> Result<Vec<ComputeNode>> {
    Ok(compute_node::Entity::find()
        .filter(compute_node::Column::Host.eq(host))
        .order_by_asc(compute_node::Column::Id)
        .all(&db.read)
        .await?)
}

/// Remove the nodes of a host (its service was deleted).
pub async fn delete_of_host(db: &Db, host: &str) -> Result<()> {
    compute_node::Entity::delete_many().filter(compute_node::Column::Host.eq(host)).exec(&db.write).await?;
    Ok(())
}
