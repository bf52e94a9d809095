//! `/images` (microversions 2.1–2.35): Nova's proxy to the image service.
//! List (brief or detailed, with Nova's filters and `limit`/`marker`
//! paging), show and delete, each a call to Glance v2 with the caller's
//! token, the image rendered in Nova's words (`minRam`, `SAVING`, the
//! snapshot's `server`, `OS-EXT-IMG-SIZE:size`). From 2.36 on the routes
//! are gone (404), as in Nova.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_clients::image::ImageError;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::{AuthContext, Microversion};

use super::resources::common::{self as c};
use super::servers::image_properties;
use super::{no_content, ok};
use crate::error::{ComputeError, Result, bad, forbidden, not_found};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/images", get(index))
        .route("/v2.1/images/detail", get(detail))
        .route("/v2.1/images/{id}", get(show).delete(delete))
}

/// The proxy APIs end at 2.35 (`/images`) and 2.38 (`/images/{id}/metadata`).
pub fn check_version(mv: Microversion, last_minor: u16) -> Result<()> {
    if mv.at_least(2, last_minor + 1) { Err(c::version_not_found()) } else { Ok(()) }
}

pub fn image_not_found() -> ComputeError {
    not_found("Image not found.")
}

/// Nova's reading of the image service's refusals.
pub fn image_error(e: ImageError) -> ComputeError {
    match e {
        ImageError::Refused { status: 404, .. } => image_not_found(),
        ImageError::Refused { status: 401 | 403, message } => forbidden(message),
        ImageError::Refused { status: 400, message } => bad(message),
        ImageError::Refused { status: 409, message } => crate::error::conflict(message),
        ImageError::Refused { status: 413, message } => ComputeError::OverQuota(message),
        other => ComputeError::Internal(anyhow::anyhow!("{other}")),
    }
}

/// The caller's token and the service token, as Nova talks to Glance.
pub async fn tokens(svc: &ComputeService) -> Result<Option<String>> {
    Ok((svc.deps()?.tokens)().await.ok())
}

/// `GET /v2/images/{id}` as the caller; 404 when it is not there or not visible.
pub async fn fetch(svc: &ComputeService, ctx: &AuthContext, id: &str) -> Result<Value> {
    let service = tokens(svc).await?;
    svc.deps()?.images.show(id, &ctx.token, service.as_deref()).await.map_err(image_error)
}

/// Glance's status in Nova's words.
fn status(glance: &str) -> &'static str {
    match glance {
        "active" => "ACTIVE",
        "queued" | "saving" => "SAVING",
        "deleted" | "pending_delete" => "DELETED",
        "killed" => "ERROR",
        _ => "UNKNOWN",
    }
}

fn progress(glance: &str) -> i64 {
    match glance {
        "queued" => 25,
        "saving" => 50,
        "active" => 100,
        _ => 0,
    }
}

/// A Glance timestamp as Nova's `isotime` writes it (`2024-05-01T10:00:00Z`).
fn nova_time(v: &Value) -> Value {
    match v.as_str() {
        Some(s) => match stratus_core::time::parse(s) {
            Some(t) => json!(stratus_core::time::iso_seconds(t)),
            None => json!(s),
        },
        None => Value::Null,
    }
}

fn image_links(svc: &ComputeService, id: &str) -> Value {
    let glance = svc.cfg.image_public_url();
    json!([
        {"rel": "self", "href": format!("{}/v2.1/images/{id}", svc.base_url)},
        {"rel": "bookmark", "href": format!("{}/images/{id}", svc.base_url)},
        {"rel": "alternate", "type": "application/vnd.openstack.image", "href": format!("{glance}/images/{id}")},
    ])
}

fn brief(svc: &ComputeService, img: &Value) -> Value {
    let id = img["id"].as_str().unwrap_or_default();
    json!({"id": id, "name": img["name"], "links": image_links(svc, id)})
}

/// One image as Nova's image view shows it.
pub fn view(svc: &ComputeService, img: &Value) -> Value {
    let id = img["id"].as_str().unwrap_or_default();
    let glance_status = img["status"].as_str().unwrap_or_default();
    let metadata: Map<String, Value> = image_properties(img);
    let mut v = json!({
        "id": id,
        "name": img["name"],
        "minRam": img["min_ram"].as_i64().unwrap_or(0),
        "minDisk": img["min_disk"].as_i64().unwrap_or(0),
        "created": nova_time(&img["created_at"]),
        "updated": nova_time(&img["updated_at"]),
        "status": status(glance_status),
        "progress": progress(glance_status),
        "OS-EXT-IMG-SIZE:size": img["size"].as_i64().unwrap_or(0),
        "links": image_links(svc, id),
    });
    if let Some(server) = metadata.get("instance_uuid").and_then(Value::as_str) {
        v["server"] = json!({"id": server, "links": c::links(svc, "servers", server)});
    }
    if let Some(auto) = metadata.get("auto_disk_config") {
        let on = match auto {
            Value::Bool(b) => *b,
            Value::String(s) => c::bool_word(s).unwrap_or(false),
            _ => false,
        };
        v["OS-DCF:diskConfig"] = json!(if on { "AUTO" } else { "MANUAL" });
    }
    v["metadata"] = Value::Object(metadata);
    v
}

/// Nova's filters as Glance v2 query parameters: `server` becomes the
/// `instance_uuid` property (the last segment of a link), `type` the
/// `image_type` property, `changes-since` an `updated_at` lower bound,
/// `property-X` the property X; `status` goes lower case.
fn glance_query(q: &RawQuery) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| {
        out.retain(|(ok, _)| ok != k);
        out.push((k.to_string(), v));
    };
    for (k, v) in &q.0 {
        match k.as_str() {
            "name" => put("name", v.clone()),
            "status" => put("status", v.to_lowercase()),
            "changes-since" => put("updated_at", format!("gte:{v}")),
            "server" => put("instance_uuid", v.rsplit('/').next().unwrap_or(v).to_string()),
            "type" => put("image_type", v.clone()),
            "minRam" => put("min_ram", v.clone()),
            "minDisk" => put("min_disk", v.clone()),
            "marker" => put("marker", v.clone()),
            _ => {
                if let Some(prop) = k.strip_prefix("property-")
                    && !prop.is_empty()
                {
                    put(prop, v.clone());
                }
            }
        }
    }
    out
}

async fn list(svc: &ComputeService, ctx: &AuthContext, q: &RawQuery, detailed: bool) -> Result<Response> {
    let (limit, _) = c::limit_marker(q)?;
    // limit=0 is no limit (Nova hands Glance no limit then)
    let fetch_limit = if limit == 0 { c::MAX_LIMIT } else { limit };
    let service = tokens(svc).await?;
    let images = svc
        .deps()?
        .images
        .list(&glance_query(q), fetch_limit, &ctx.token, service.as_deref())
        .await
        .map_err(image_error)?;
    let items: Vec<Value> = images.iter().map(|i| if detailed { view(svc, i) } else { brief(svc, i) }).collect();
    let mut body = json!({"images": items});
    let collection = if detailed { "images/detail" } else { "images" };
    let last = images.last().and_then(|i| i["id"].as_str());
    let next = c::next_links(svc, collection, q, images.len(), limit, last);
    if !next.is_empty() {
        body["images_links"] = Value::Array(next);
    }
    Ok(ok(body))
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    check_version(mv, 35)?;
    list(&svc, &ctx, &q, false).await
}

async fn detail(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    check_version(mv, 35)?;
    list(&svc, &ctx, &q, true).await
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    check_version(mv, 35)?;
    let img = fetch(&svc, &ctx, &id).await?;
    Ok(ok(json!({"image": view(&svc, &img)})))
}

async fn delete(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    check_version(mv, 35)?;
    let service = tokens(&svc).await?;
    match svc.deps()?.images.remove(&id, &ctx.token, service.as_deref()).await {
        Ok(()) => Ok(no_content()),
        Err(ImageError::Refused { status: 403 | 401, .. }) => {
            Err(forbidden("You are not allowed to delete the image."))
        }
        Err(e) => Err(image_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glance_states_read_as_novas() {
        assert_eq!(status("active"), "ACTIVE");
        assert_eq!(status("queued"), "SAVING");
        assert_eq!(status("saving"), "SAVING");
        assert_eq!(status("pending_delete"), "DELETED");
        assert_eq!(status("killed"), "ERROR");
        assert_eq!(status("importing"), "UNKNOWN");
        assert_eq!(progress("saving"), 50);
        assert_eq!(progress("deactivated"), 0);
    }

    #[test]
    fn nova_filters_become_glance_parameters() {
        let q = RawQuery(vec![
            ("status".into(), "ACTIVE".into()),
            ("server".into(), "http://h/v2.1/servers/abc".into()),
            ("type".into(), "snapshot".into()),
            ("changes-since".into(), "2024-01-01T00:00:00Z".into()),
            ("property-os_distro".into(), "cirros".into()),
            ("minRam".into(), "64".into()),
            ("limit".into(), "3".into()),
            ("other".into(), "x".into()),
        ]);
        let g = glance_query(&q);
        let get = |k: &str| g.iter().find(|(gk, _)| gk == k).map(|(_, v)| v.as_str());
        assert_eq!(get("status"), Some("active"));
        assert_eq!(get("instance_uuid"), Some("abc"));
        assert_eq!(get("image_type"), Some("snapshot"));
        assert_eq!(get("updated_at"), Some("gte:2024-01-01T00:00:00Z"));
        assert_eq!(get("os_distro"), Some("cirros"));
        assert_eq!(get("min_ram"), Some("64"));
        assert_eq!(get("limit"), None);
        assert_eq!(get("other"), None);
    }

    #[test]
    fn times_are_written_as_nova_writes_them() {
        assert_eq!(nova_time(&json!("2024-05-01T10:00:00.123456+00:00")), json!("2024-05-01T10:00:00Z"));
        assert_eq!(nova_time(&Value::Null), Value::Null);
    }
}
