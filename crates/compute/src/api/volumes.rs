//! `/os-volumes` and `/os-snapshots` (microversions 2.1–2.35): Nova's
//! deprecated proxies to the block storage service. Each call goes to
//! Cinder's v3 API with the caller's token and answers in Nova's old view
//! (`displayName`, `availabilityZone`, `createdAt`, one attachment per
//! server, `[{}]` when there is none).

use axum::Router;
use axum::extract::{Path, State as S};
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::Method;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};
use stratus_core::{AuthContext, Microversion};

use super::images::check_version;
use super::resources::common::{self as c, invalid, py_repr};
use super::{accepted_empty, authorize, ok, project_of, project_target};
use crate::error::{ComputeError, Result, bad, not_found};
use crate::volume::{VolumeError, Volumes};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-volumes", get(volume_index).post(volume_create))
        .route("/v2.1/os-volumes/detail", get(volume_detail))
        .route("/v2.1/os-volumes/{id}", get(volume_show).delete(volume_delete))
        .route("/v2.1/os-snapshots", get(snapshot_index).post(snapshot_create))
        .route("/v2.1/os-snapshots/detail", get(snapshot_detail))
        .route("/v2.1/os-snapshots/{id}", get(snapshot_show).delete(snapshot_delete))
}

/// The last microversion of the proxies.
const LAST_MINOR: u16 = 35;

/// The block storage service, checked as Nova's policy and version gate do.
fn service<'a>(svc: &'a ComputeService, ctx: &AuthContext, mv: Microversion, rule: &str) -> Result<&'a Volumes> {
    check_version(mv, LAST_MINOR)?;
    authorize(svc, ctx, &format!("os_compute_api:os-volumes:{rule}"), &project_target(project_of(ctx)?))?;
    svc.deps()?
        .volumes
        .as_deref()
        .ok_or_else(|| bad("Block storage is not available: this cloud's compute service has no volume service."))
}

/// Cinder's refusals in Nova's words (`what`: "Volume" or "Snapshot").
fn refused(e: VolumeError, what: &str, id: &str) -> ComputeError {
    match e.status() {
        Some(404) => not_found(format!("{what} {id} could not be found.")),
        Some(400) => bad(e.message()),
        Some(403 | 413) => ComputeError::OverQuota(e.message()),
        Some(409) => bad(e.message()),
        _ => ComputeError::Internal(anyhow::anyhow!("{e}")),
    }
}

/// Nova's `_translate_volume_summary_view` of a Cinder v3 volume.
pub fn volume_view(v: &Value) -> Value {
    let id = v["id"].clone();
    let attachments = match v["attachments"].as_array().and_then(|a| a.first()) {
        Some(a) => {
            let mut one = json!({"id": id, "volumeId": id, "serverId": a["server_id"]});
            if let Some(d) = a["device"].as_str().filter(|d| !d.is_empty()) {
                one["device"] = json!(d);
            }
            json!([one])
        }
        None => json!([{}]),
    };
    let metadata = match &v["metadata"] {
        Value::Object(m) => Value::Object(m.clone()),
        _ => json!({}),
    };
    json!({
        "id": id,
        "status": v["status"],
        "size": v["size"],
        "availabilityZone": v["availability_zone"],
        "createdAt": v["created_at"],
        "attachments": attachments,
        "displayName": v["name"],
        "displayDescription": v["description"],
        "volumeType": v["volume_type"],
        "snapshotId": v["snapshot_id"],
        "metadata": metadata,
    })
}

/// Nova's `_translate_snapshot_summary_view` of a Cinder v3 snapshot.
pub fn snapshot_view(s: &Value) -> Value {
    json!({
        "id": s["id"],
        "volumeId": s["volume_id"],
        "status": s["status"],
        "size": s["size"],
        "createdAt": s["created_at"],
        "displayName": s["name"],
        "displayDescription": s["description"],
    })
}

/// Nova's `common.limited`: `offset` and `limit` (non-negative integers)
/// over the whole list.
fn limited(q: &RawQuery, items: Vec<Value>) -> Result<Vec<Value>> {
    let num = |key: &str| -> Result<Option<usize>> {
        match q.get(key) {
            None => Ok(None),
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(v.parse().unwrap_or(usize::MAX)))
            }
            Some(v) => Err(c::invalid_query(key, v, &format!("'{v}' does not match '^[0-9]*$'"))),
        }
    };
    let offset = num("offset")?.unwrap_or(0);
    let limit = num("limit")?.unwrap_or(c::MAX_LIMIT).min(c::MAX_LIMIT);
    Ok(items.into_iter().skip(offset).take(limit).collect())
}

fn items(r: &Value, key: &str) -> Vec<Value> {
    r[key].as_array().cloned().unwrap_or_default()
}

/// An optional string field of a create body.
fn opt_str(o: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(key, other, &format!("{} is not of type 'string'", py_repr(other)))),
    }
}

/// Nova's `volumes.create` schema; the Cinder v3 create body.
fn volume_request(body: &Value) -> Result<Value> {
    let top = c::object(body, None)?;
    let vol = c::required(top, None, "volume")?;
    c::no_extra(top, None, &["volume"])?;
    let vol = c::object(vol, Some("volume"))?;
    c::no_extra(
        vol,
        Some("volume"),
        &["volume_type", "metadata", "snapshot_id", "size", "availability_zone", "display_name", "display_description"],
    )?;
    let size = c::integer("size", c::required(vol, Some("volume"), "size")?, 1, i64::from(i32::MAX), false)?;
    let mut out = json!({"size": size});
    for (from, to) in [
        ("display_name", "name"),
        ("display_description", "description"),
        ("volume_type", "volume_type"),
        ("snapshot_id", "snapshot_id"),
        ("availability_zone", "availability_zone"),
    ] {
        if let Some(s) = opt_str(vol, from)? {
            out[to] = json!(s);
        }
    }
    match vol.get("metadata") {
        None => {}
        Some(m @ Value::Object(_)) => out["metadata"] = m.clone(),
        Some(other) => return Err(invalid("metadata", other, &format!("{} is not of type 'object'", py_repr(other)))),
    }
    Ok(json!({"volume": out}))
}

/// Nova's `snapshots.create` schema; the Cinder v3 create body.
fn snapshot_request(body: &Value) -> Result<(String, Value)> {
    let top = c::object(body, None)?;
    let snap = c::required(top, None, "snapshot")?;
    c::no_extra(top, None, &["snapshot"])?;
    let snap = c::object(snap, Some("snapshot"))?;
    c::no_extra(snap, Some("snapshot"), &["volume_id", "force", "display_name", "display_description"])?;
    let volume_id = c::string("volume_id", c::required(snap, Some("snapshot"), "volume_id")?, 0, usize::MAX)?;
    let mut out = json!({"volume_id": volume_id});
    if let Some(f) = snap.get("force") {
        out["force"] = json!(c::boolean("force", f)?);
    }
    for (from, to) in [("display_name", "name"), ("display_description", "description")] {
        if let Some(s) = opt_str(snap, from)? {
            out[to] = json!(s);
        }
    }
    Ok((volume_id.to_string(), json!({"snapshot": out})))
}

async fn volume_list(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    q: &RawQuery,
    rule: &str,
) -> Result<Response> {
    let vols = service(svc, ctx, mv, rule)?;
    let r = vols.call(Method::GET, "/volumes/detail", &ctx.token, None).await.map_err(|e| refused(e, "Volume", ""))?;
    let list = limited(q, items(&r, "volumes"))?;
    Ok(ok(json!({"volumes": list.iter().map(volume_view).collect::<Vec<_>>()})))
}

async fn volume_index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    volume_list(&svc, &ctx, mv, &q, "list").await
}

async fn volume_detail(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    volume_list(&svc, &ctx, mv, &q, "detail").await
}

async fn volume_show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    let vols = service(&svc, &ctx, mv, "show")?;
    let r = vols
        .call(Method::GET, &format!("/volumes/{id}"), &ctx.token, None)
        .await
        .map_err(|e| refused(e, "Volume", &id))?;
    Ok(ok(json!({"volume": volume_view(&r["volume"])})))
}

async fn volume_create(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Json(body): Json<Value>,
) -> Result<Response> {
    let req = volume_request(&body)?;
    let vols = service(&svc, &ctx, mv, "create")?;
    let r = vols.call(Method::POST, "/volumes", &ctx.token, Some(req)).await.map_err(|e| match e.status() {
        // a snapshot to make it from that is not there
        Some(404) => not_found(e.message()),
        _ => refused(e, "Volume", ""),
    })?;
    let view = volume_view(&r["volume"]);
    let location = format!("{}/v2.1/os-volumes/{}", svc.base_url, view["id"].as_str().unwrap_or_default());
    let mut resp = ok(json!({"volume": view}));
    if let Ok(h) = axum::http::HeaderValue::from_str(&location) {
        resp.headers_mut().insert(LOCATION, h);
    }
    Ok(resp.into_response())
}

async fn volume_delete(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    let vols = service(&svc, &ctx, mv, "delete")?;
    vols.call(Method::DELETE, &format!("/volumes/{id}"), &ctx.token, None)
        .await
        .map_err(|e| refused(e, "Volume", &id))?;
    Ok(accepted_empty())
}

async fn snapshot_list(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    q: &RawQuery,
    rule: &str,
) -> Result<Response> {
    let vols = service(svc, ctx, mv, rule)?;
    let r =
        vols.call(Method::GET, "/snapshots/detail", &ctx.token, None).await.map_err(|e| refused(e, "Snapshot", ""))?;
    let list = limited(q, items(&r, "snapshots"))?;
    Ok(ok(json!({"snapshots": list.iter().map(snapshot_view).collect::<Vec<_>>()})))
}

async fn snapshot_index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    snapshot_list(&svc, &ctx, mv, &q, "snapshots:list").await
}

async fn snapshot_detail(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    snapshot_list(&svc, &ctx, mv, &q, "snapshots:detail").await
}

async fn snapshot_show(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    let vols = service(&svc, &ctx, mv, "snapshots:show")?;
    let r = vols
        .call(Method::GET, &format!("/snapshots/{id}"), &ctx.token, None)
        .await
        .map_err(|e| refused(e, "Snapshot", &id))?;
    Ok(ok(json!({"snapshot": snapshot_view(&r["snapshot"])})))
}

async fn snapshot_create(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Json(body): Json<Value>,
) -> Result<Response> {
    let (volume_id, req) = snapshot_request(&body)?;
    let vols = service(&svc, &ctx, mv, "snapshots:create")?;
    let r = vols
        .call(Method::POST, "/snapshots", &ctx.token, Some(req))
        .await
        .map_err(|e| refused(e, "Volume", &volume_id))?;
    Ok(ok(json!({"snapshot": snapshot_view(&r["snapshot"])})))
}

async fn snapshot_delete(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    let vols = service(&svc, &ctx, mv, "snapshots:delete")?;
    vols.call(Method::DELETE, &format!("/snapshots/{id}"), &ctx.token, None)
        .await
        .map_err(|e| refused(e, "Snapshot", &id))?;
    Ok(accepted_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(r: Result<Value>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(e) => e.to_api().status.as_u16(),
        }
    }

    #[test]
    fn volumes_are_shown_in_novas_old_view() {
        let cinder = json!({"id": "v", "status": "in-use", "size": 1, "availability_zone": "nova",
            "created_at": "2026-01-01T00:00:00.000000", "name": "n", "description": null,
            "volume_type": "__DEFAULT__", "snapshot_id": null, "metadata": {"a": "b"},
            "attachments": [{"server_id": "s", "attachment_id": "a", "device": "/dev/vdb", "volume_id": "v"}]});
        let v = volume_view(&cinder);
        assert_eq!(v["attachments"], json!([{"id": "v", "volumeId": "v", "serverId": "s", "device": "/dev/vdb"}]));
        assert_eq!((v["displayName"].as_str(), v["volumeType"].as_str()), (Some("n"), Some("__DEFAULT__")));
        assert_eq!(v["metadata"], json!({"a": "b"}));
        assert_eq!(v.as_object().unwrap().len(), 11);
        let free = volume_view(&json!({"id": "v", "attachments": [], "metadata": null}));
        assert_eq!(free["attachments"], json!([{}]));
        assert_eq!(free["metadata"], json!({}));
        let s = snapshot_view(&json!({"id": "s", "volume_id": "v", "size": 1, "name": "n", "status": "creating"}));
        assert_eq!(s["volumeId"], "v");
        assert_eq!(s["displayName"], "n");
    }

    #[test]
    fn creates_are_checked_as_novas_schema() {
        let ok =
            volume_request(&json!({"volume": {"size": "2", "display_name": "n", "metadata": {"k": "v"}}})).unwrap();
        assert_eq!(ok, json!({"volume": {"size": 2, "name": "n", "metadata": {"k": "v"}}}));
        for b in [
            json!({"volume": {}}),
            json!({"volume": {"size": 0}}),
            json!({"volume": {"size": "#$%"}}),
            json!({"volume": {"size": 1, "other": 1}}),
            json!({"volume": {"size": 1, "metadata": "x"}}),
            json!({}),
        ] {
            assert_eq!(status(volume_request(&b)), 400, "{b}");
        }
        let (v, s) =
            snapshot_request(&json!({"snapshot": {"volume_id": "v", "display_name": "n", "force": "true"}})).unwrap();
        assert_eq!(v, "v");
        assert_eq!(s, json!({"snapshot": {"volume_id": "v", "name": "n", "force": true}}));
        assert_eq!(status(snapshot_request(&json!({"snapshot": {}})).map(|_| Value::Null)), 400);
    }
}
