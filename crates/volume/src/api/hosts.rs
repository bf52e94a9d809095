//! `/v3/os-hosts` (deprecated in Cinder, still served): the enabled
//! services' hosts (`?zone=`), and a volume host's usage per project.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect};
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::State;
use crate::api::{authorize, ok, project_of};
use crate::entity::{snapshot, volume};
use crate::error::{Result, not_found};
use crate::store::services::{self as store, VOLUME_BINARY};

pub fn routes() -> Router<State> {
    Router::new().route("/v3/os-hosts", get(index)).route("/v3/os-hosts/{host}", get(show))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    authorize(&svc, &ctx, "volume_extension:hosts", &project_of(&ctx))?;
    let zone = q.0.iter().rev().find(|(k, _)| k == "zone").map(|(_, v)| v.clone()).filter(|z| !z.is_empty());
    let down = svc.cfg.volume.service_down_time;
    let items: Vec<Value> = store::all(&svc.db.read)
        .await?
        .iter()
        .filter(|s| !s.disabled)
        .filter(|s| zone.as_deref().is_none_or(|z| s.availability_zone == z))
        .map(|s| {
            json!({
                "host_name": s.host,
                "service": s.binary,
                "zone": s.availability_zone,
                "service-status": if store::is_up(s, down) { "available" } else { "unavailable" },
                "service-state": if s.disabled { "disabled" } else { "enabled" },
                "last-update": s.updated_at,
            })
        })
        .collect();
    Ok(ok(json!({"hosts": items})))
}

fn on_host(col: impl ColumnTrait, host: &str) -> Condition {
    Condition::any().add(col.eq(host)).add(col.like(format!("{host}#%")))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(host): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "volume_extension:hosts", &project_of(&ctx))?;
    let conn = &svc.db.read;
    match store::get(conn, &host, VOLUME_BINARY).await? {
        Some(s) if !s.disabled => {}
        _ => return Err(not_found(format!("Host {host} could not be found."))),
    }
    // (volume count, volume GiB, snapshot count, snapshot GiB) per project
    let mut per: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    let vols: Vec<(String, String, i64)> = volume::Entity::find()
        .select_only()
        .column(volume::Column::Id)
        .column(volume::Column::ProjectId)
        .column(volume::Column::Size)
        .filter(on_host(volume::Column::Host, &host))
        .into_tuple()
        .all(conn)
        .await?;
    let mut ids = Vec::new();
    for (id, project, size) in vols {
        let e = per.entry(project).or_default();
        e[0] += 1;
        e[1] += size;
        ids.push(id);
    }
    for chunk in ids.chunks(500) {
        let snaps: Vec<(String, i64)> = snapshot::Entity::find()
            .select_only()
            .column(snapshot::Column::ProjectId)
            .column(snapshot::Column::Size)
            .filter(snapshot::Column::VolumeId.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await?;
        for (project, size) in snaps {
            let e = per.entry(project).or_default();
            e[2] += 1;
            e[3] += size;
        }
    }
    let entry = |project: &str, n: &[i64; 4]| {
        json!({"resource": {
            "host": host,
            "project": project,
            "volume_count": n[0].to_string(),
            "total_volume_gb": n[1].to_string(),
            "snapshot_count": n[2].to_string(),
            "total_snapshot_gb": n[3].to_string(),
        }})
    };
    let mut total = [0i64; 4];
    for n in per.values() {
        for i in 0..4 {
            total[i] += n[i];
        }
    }
    let mut items = vec![entry("(total)", &total)];
    items.extend(per.iter().map(|(p, n)| entry(p, n)));
    Ok(ok(json!({"host": items})))
}
