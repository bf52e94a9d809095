//! `GET /limits`: the caller's project's absolute limits and usage, `rate`
//! always empty; `tenant_id` (admin) asks about another project.
//!
//! Per microversion: the nova-network limits go at 2.36, `maxImageMeta` at
//! 2.39, the personality limits at 2.57; unknown query parameters are
//! refused from 2.75.

use axum::Router;
use axum::extract::State as S;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::common;
use crate::State;
use crate::api::{authorize, ok, project_of};
use crate::error::Result;
use crate::store::quotas;

pub fn routes() -> Router<State> {
    Router::new().route("/v2.1/limits", get(index))
}

/// Quota resource -> the absolute limit names that show it.
const LIMIT_NAMES: &[(&str, &[&str])] = &[
    ("ram", &["maxTotalRAMSize"]),
    ("instances", &["maxTotalInstances"]),
    ("cores", &["maxTotalCores"]),
    ("key_pairs", &["maxTotalKeypairs"]),
    ("floating_ips", &["maxTotalFloatingIps"]),
    ("metadata_items", &["maxServerMeta", "maxImageMeta"]),
    ("injected_files", &["maxPersonality"]),
    ("injected_file_content_bytes", &["maxPersonalitySize"]),
    ("security_groups", &["maxSecurityGroups"]),
    ("security_group_rules", &["maxSecurityGroupRules"]),
    ("server_groups", &["maxServerGroups"]),
    ("server_group_members", &["maxServerGroupMembers"]),
];

/// Usage names -> the quota resource they count.
const USED_NAMES: &[(&str, &str)] = &[
    ("totalRAMUsed", "ram"),
    ("totalCoresUsed", "cores"),
    ("totalInstancesUsed", "instances"),
    ("totalFloatingIpsUsed", "floating_ips"),
    ("totalSecurityGroupsUsed", "security_groups"),
    ("totalServerGroupsUsed", "server_groups"),
];

fn filtered(mv: Microversion) -> Vec<&'static str> {
    let mut f = Vec::new();
    if mv.at_least(2, 36) {
        f.extend(["floating_ips", "security_groups", "security_group_rules"]);
    }
    if mv.at_least(2, 57) {
        f.extend(["injected_files", "injected_file_content_bytes"]);
    }
    f
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    common::check_query(&q, &["tenant_id"], mv.at_least(2, 75))?;
    authorize(&svc, &ctx, "os_compute_api:limits", &json!({}))?;
    let project = match q.get("tenant_id") {
        Some(t) => {
            authorize(&svc, &ctx, "os_compute_api:limits:other_project", &json!({"project_id": t}))?;
            t.to_string()
        }
        None => project_of(&ctx)?.to_string(),
    };
    let limits = quotas::limits(&svc.db, &svc.cfg, &project, None).await?;
    let used = quotas::usages(&svc.db.read, &project, None).await?;
    let skip = filtered(mv);
    let mut absolute = Map::new();
    for (resource, names) in LIMIT_NAMES {
        if skip.contains(resource) {
            continue;
        }
        let Some(v) = limits.get(*resource) else { continue };
        for n in *names {
            if *n == "maxImageMeta" && mv.at_least(2, 39) {
                continue;
            }
            absolute.insert((*n).to_string(), json!(v));
        }
    }
    for (name, resource) in USED_NAMES {
        if skip.contains(resource) {
            continue;
        }
        absolute.insert((*name).to_string(), json!(used.get(*resource).copied().unwrap_or(0)));
    }
    Ok(ok(json!({"limits": {"rate": [], "absolute": Value::Object(absolute)}})))
}
