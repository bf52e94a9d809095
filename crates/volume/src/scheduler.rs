//! The volume scheduler: picks a host and pool for each new volume, as
//! Cinder's filter scheduler does with its default filters and weigher:
//! the host is up and enabled, in the volume's availability zone, its pool
//! has room (capacity less what its volumes claim), and the type's
//! `volume_backend_name` matches; the pool with the most free room wins.
//! A clone or a volume from a snapshot stays on its source's host.

use std::sync::Arc;

use serde_json::Value;
use stratus_bus::{Bus, RemoteError, handler};
use stratus_core::Config;
use stratus_db::Db;

use crate::driver::Pool;
use crate::entity::volume;
use crate::model::volume_status as vs;
use crate::rpc::{self, CreateVolume, ScheduleVolume};
use crate::store;

/// A pool a volume could go to, with the room left in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// `host@backend#pool`
    pub full: String,
    pub free_gb: i64,
}

/// Does the pool satisfy the type's extra specs? Scoped keys
/// (`capabilities:x`, `qos:...`, `volume_backend_name`) compare with the
/// pool's capability of that name; `<is> True` means a true capability.
pub fn specs_match(pool: &Pool, specs: &serde_json::Map<String, Value>) -> bool {
    let caps = serde_json::to_value(pool).unwrap_or(Value::Null);
    for (k, want) in specs {
        let key = k.strip_prefix("capabilities:").unwrap_or(k);
        if key.contains(':') || key == "multiattach" && want.as_str() == Some("<is> True") && pool.multiattach {
            continue;
        }
        let Some(have) = caps.get(key) else {
            // a spec no pool reports (e.g. RESKEY:...) does not filter
            continue;
        };
        let want = want.as_str().unwrap_or_default();
        let ok = if let Some(b) = want.strip_prefix("<is>") {
            have.as_bool() == Some(b.trim().eq_ignore_ascii_case("true"))
        } else {
            match have {
                Value::String(s) => s == want,
                Value::Bool(b) => b.to_string().eq_ignore_ascii_case(want),
                other => other.to_string().as_str() == want,
            }
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The pools of alive volume hosts that can take `m`, best first.
pub async fn candidates(db: &Db, cfg: &Config, m: &ScheduleVolume) -> anyhow::Result<Vec<Candidate>> {
    let hosts = store::services::alive_volume_hosts(&db.read, cfg.volume.service_down_time)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::new();
    for h in hosts {
        if h.availability_zone != m.availability_zone {
            continue;
        }
        let pools: Vec<Pool> = serde_json::from_str(&h.pools).unwrap_or_default();
        let host = rpc::host_of(&h.host).to_string();
        let claimed = store::volumes::allocated_gb(&db.read, &host).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        for p in pools {
            let free = p.total_capacity_gb - claimed;
            if free < m.size || !specs_match(&p, &m.extra_specs) {
                continue;
            }
            out.push(Candidate { full: format!("{host}@{}#{}", p.volume_backend_name, p.name), free_gb: free });
        }
    }
    out.sort_by(|a, b| b.free_gb.cmp(&a.free_gb).then(a.full.cmp(&b.full)));
    Ok(out)
}

/// Place one volume: write its host, cast it to that host; `error` when no
/// pool fits.
pub async fn schedule(db: &Db, cfg: &Config, bus: &Bus, m: &ScheduleVolume, request_id: &str) -> anyhow::Result<()> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let target = match &m.must_host {
        Some(h) => Some(h.clone()),
        None => candidates(db, cfg, m).await?.into_iter().next().map(|c| c.full),
    };
    let Some(target) = target else {
        tracing::warn!(volume = %m.volume_id, size = m.size, zone = %m.availability_zone, "no valid backend was found");
        crate::store::messages::no_valid_backend(&db.write, &m.volume_id).await;
        store::volumes::transition(&db.write, &m.volume_id, &[vs::CREATING], vs::ERROR)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(());
    };
    // claim the volume for the host only while it is still being created
    let r = volume::Entity::update_many()
        .col_expr(volume::Column::Host, Expr::value(target.clone()))
        .filter(volume::Column::Id.eq(m.volume_id.as_str()))
        .filter(volume::Column::Status.eq(vs::CREATING))
        .exec(&db.write)
        .await?;
    if r.rows_affected != 1 {
        // deleted while waiting for the scheduler
        return Ok(());
    }
    let msg =
        CreateVolume { volume_id: m.volume_id.clone(), host: target.clone(), size: m.size, source: m.source.clone() };
    if let Err(e) = bus.cast(&rpc::host_topic(&target, "create"), &msg, request_id).await {
        tracing::warn!(volume = %m.volume_id, error = %e, "could not reach the volume host");
        store::volumes::set_status(&db.write, &m.volume_id, vs::ERROR).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// Serve [`rpc::SCHEDULER`] and report this scheduler alive until dropped.
pub async fn serve(db: Db, cfg: Config, bus: &Bus, host: &str) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let shared = Arc::new((db.clone(), cfg.clone(), bus.clone()));
    let s = shared.clone();
    let h = bus
        .serve(
            rpc::SCHEDULER,
            handler(move |m: ScheduleVolume, env| {
                let s = s.clone();
                async move {
                    let (db, cfg, bus) = (&s.0, &s.1, &s.2);
                    schedule(db, cfg, bus, &m, &env.request_id)
                        .await
                        .map_err(|e| RemoteError::new("ScheduleFailed", e.to_string()))
                }
            }),
        )
        .await?;
    let (host, zone, every) =
        (host.to_string(), cfg.volume.availability_zone.clone(), cfg.volume.report_interval.max(1));
    let beat = tokio::spawn(async move {
        loop {
            if let Err(e) = store::services::heartbeat(&db.write, &host, "cinder-scheduler", &zone, &[]).await {
                tracing::warn!(error = %e, "volume scheduler heartbeat failed");
            }
            tokio::time::sleep(std::time::Duration::from_secs(every)).await;
        }
    });
    Ok(vec![h, beat])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool() -> Pool {
        Pool {
            name: "file".into(),
            volume_backend_name: "file".into(),
            thin_provisioning_support: true,
            ..Default::default()
        }
    }

    #[test]
    fn specs_filter_pools() {
        let specs = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(specs_match(&pool(), &specs(json!({}))));
        assert!(specs_match(&pool(), &specs(json!({"volume_backend_name": "file"}))));
        assert!(!specs_match(&pool(), &specs(json!({"volume_backend_name": "lvm"}))));
        assert!(specs_match(&pool(), &specs(json!({"thin_provisioning_support": "<is> True"}))));
        assert!(!specs_match(&pool(), &specs(json!({"capabilities:thin_provisioning_support": "<is> False"}))));
        // scoped keys another component reads do not filter
        assert!(specs_match(&pool(), &specs(json!({"qos:read_iops_sec": "100"}))));
    }
}
