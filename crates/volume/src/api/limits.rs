//! `/v3/limits`: the project's absolute limits and what it uses of them (no
//! rate limits). From 3.39 an admin may ask about another project with
//! `?project_id=`.

use axum::Router;
use axum::extract::State as AxState;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::State;
use crate::api::{allowed, is_admin, ok, project_of};
use crate::error::Result;
use crate::store::quotas as store;

pub fn routes() -> Router<State> {
    Router::new().route("/v3/limits", get(index))
}

/// (quota resource, its limit's name, its usage's name)
const ABSOLUTE: &[(&str, &str, &str)] = &[
    ("volumes", "maxTotalVolumes", "totalVolumesUsed"),
    ("gigabytes", "maxTotalVolumeGigabytes", "totalGigabytesUsed"),
    ("snapshots", "maxTotalSnapshots", "totalSnapshotsUsed"),
    ("backups", "maxTotalBackups", "totalBackupsUsed"),
    ("backup_gigabytes", "maxTotalBackupGigabytes", "totalBackupGigabytesUsed"),
];

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    let mut project_id = project_of(&ctx);
    if mv.at_least(3, 39) && is_admin(&svc, &ctx) {
        let asked =
            q.0.iter()
                .rev()
                .find(|(k, _)| k == "project_id")
                .or_else(|| q.0.iter().rev().find(|(k, _)| k == "tenant_id"));
        if let Some((_, p)) = asked
            && !p.is_empty()
        {
            project_id = p.clone();
        }
    }
    let conn = &svc.db.read;
    let limits = store::project_limits(conn, &svc.cfg.volume, &project_id).await?;
    let mut absolute = Map::new();
    for (resource, max_name, _) in ABSOLUTE {
        if let Some(v) = limits.get(*resource) {
            absolute.insert(max_name.to_string(), json!(v));
        }
    }
    // usage, as Cinder's used-limits extension adds it (for those its policy allows)
    if allowed(&svc, &ctx, "limits_extension:used_limits", &project_of(&ctx)) {
        let used = store::usage(conn, &project_id).await?;
        for (resource, _, used_name) in ABSOLUTE {
            absolute.insert(used_name.to_string(), json!(used.get(*resource).copied().unwrap_or(0)));
        }
    }
    Ok(ok(json!({"limits": {"rate": Vec::<Value>::new(), "absolute": absolute}})))
}
