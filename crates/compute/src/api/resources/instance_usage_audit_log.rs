//! `/os-instance_usage_audit_log` (admin): the state of the periodic
//! instance usage audit for the last completed month before a time. Stratus
//! runs no such audit task (Nova's `instance_usage_audit` is off by default
//! too), so every compute host is reported as not run.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde_json::{Value, json};
use stratus_core::auth::Auth;

use crate::State;
use crate::api::{authorize, ok};
use crate::error::{Result, bad};
use crate::store::services;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-instance_usage_audit_log", get(index))
        .route("/v2.1/os-instance_usage_audit_log/{before}", get(show))
}

/// Nova's `last_completed_audit_period` for the default `month` unit: the
/// month before the one holding `before`.
fn month_period(before: NaiveDateTime) -> (NaiveDateTime, NaiveDateTime) {
    let first =
        |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1).unwrap_or_default().and_hms_opt(0, 0, 0).unwrap_or_default();
    let end = first(before.year(), before.month());
    let begin =
        if before.month() == 1 { first(before.year() - 1, 12) } else { first(before.year(), before.month() - 1) };
    (begin, end)
}

/// Nova's `_get_audit_task_logs` with no task logs recorded.
async fn audit(svc: &crate::ComputeService, before: NaiveDateTime) -> Result<Value> {
    let (begin, end) = month_period(before);
    let mut hosts: Vec<String> = services::list(&svc.db)
        .await?
        .into_iter()
        .filter(|s| s.binary == crate::manager::BINARY)
        .map(|s| s.host)
        .collect();
    hosts.sort();
    hosts.dedup();
    let n = hosts.len();
    Ok(json!({
        "hosts_not_run": hosts,
        "log": {},
        "num_hosts": n,
        "num_hosts_done": 0,
        "num_hosts_not_run": n,
        "num_hosts_running": 0,
        "overall_status": format!("0 of {n} hosts done. 0 errors."),
        "period_beginning": begin.format("%Y-%m-%d %H:%M:%S").to_string(),
        "period_ending": end.format("%Y-%m-%d %H:%M:%S").to_string(),
        "total_errors": 0,
        "total_instances": 0,
    }))
}

async fn index(S(svc): S<State>, Auth(ctx): Auth) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-instance-usage-audit-log:list", &json!({}))?;
    let log = audit(&svc, chrono::Utc::now().naive_utc()).await?;
    Ok(ok(json!({ "instance_usage_audit_logs": log })))
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, Path(before): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-instance-usage-audit-log:show", &json!({}))?;
    let format = if before.contains('.') { "%Y-%m-%d %H:%M:%S%.f" } else { "%Y-%m-%d %H:%M:%S" };
    let at = NaiveDateTime::parse_from_str(&before, format)
        .map_err(|_| bad(format!("Invalid timestamp for date {before}")))?;
    let log = audit(&svc, at).await?;
    Ok(ok(json!({ "instance_usage_audit_log": log })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_the_month_before() {
        let at = NaiveDateTime::parse_from_str("2024-01-15 10:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let (b, e) = month_period(at);
        assert_eq!(b.to_string(), "2023-12-01 00:00:00");
        assert_eq!(e.to_string(), "2024-01-01 00:00:00");
    }
}
