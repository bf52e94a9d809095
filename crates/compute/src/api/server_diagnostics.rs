//! `GET /servers/{id}/diagnostics` (admin): the guest's vital signs. The
//! numbers are those of the server record (the fake hypervisor keeps no
//! counters), in the shape of Nova's fake driver: a driver-specific dict
//! before 2.48, the standard diagnostics model (driver `libvirt`) since.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use stratus_core::Microversion;
use stratus_core::auth::Auth;

use super::servers::visible;
use super::{authorize, ok, project_target};
use crate::State;
use crate::error::{Result, conflict};
use crate::model::vm;

pub fn routes() -> Router<State> {
    Router::new().route("/v2.1/servers/{id}/diagnostics", get(show))
}

/// The diagnostics `state` of a power state (Nova's `power_state.STATE_MAP`).
fn state(power_state: i64) -> &'static str {
    match power_state {
        1 => "running",
        3 => "paused",
        4 => "shutdown",
        6 => "crashed",
        7 => "suspended",
        _ => "pending",
    }
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-server-diagnostics", &project_target(&inst.project_id))?;
    if inst.vm_state == vm::BUILDING || inst.host.is_none() {
        return Err(conflict(format!(
            "Cannot 'get_diagnostics' instance {} while it is in vm_state {}",
            inst.uuid, inst.vm_state
        )));
    }
    let memory_kib = inst.memory_mb * 1024;
    let uptime = inst.launched_at.map(|t| ((chrono::Utc::now().timestamp_micros() - t) / 1_000_000).max(0));
    if !mv.at_least(2, 48) {
        return Ok(ok(json!({
            "cpu0_time": 0,
            "memory": memory_kib,
            "memory-actual": memory_kib,
            "vda_read": 0,
            "vda_read_req": 0,
            "vda_write": 0,
            "vda_write_req": 0,
            "vda_errors": -1,
        })));
    }
    let cpus: Vec<_> = (0..inst.vcpus).map(|i| json!({"id": i, "time": 0, "utilisation": null})).collect();
    Ok(ok(json!({
        "state": state(inst.power_state),
        "driver": "libvirt",
        "hypervisor": "fake",
        "hypervisor_os": "linux",
        "uptime": uptime,
        "config_drive": inst.config_drive,
        "num_cpus": inst.vcpus,
        "num_nics": 0,
        "num_disks": 1,
        "memory_details": {"maximum": inst.memory_mb, "used": 0},
        "cpu_details": cpus,
        "nic_details": [],
        "disk_details": [{"read_bytes": 0, "read_requests": 0, "write_bytes": 0, "write_requests": 0, "errors_count": 0}],
    })))
}
