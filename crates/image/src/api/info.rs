//! `/v2/info/import`, `/v2/info/stores`, `/v2/info/usage`, and the
//! interoperable import: `POST /v2/images/{id}/import`.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::Json;

use futures::StreamExt;

use super::ok;
use crate::entity::image;
use crate::error::{ImageError, Result, bad, conflict};
use crate::store::images::{self, Image};
use crate::{ImageService, State};

impl ImageService {
    /// The import methods offered: web-download only when some host may be fetched from.
    pub fn import_methods(&self) -> Vec<&'static str> {
        let mut m = vec!["glance-direct", "copy-image"];
        if !self.cfg.image.allowed_url_hosts.is_empty() {
            m.push("web-download");
            m.push("glance-download");
        }
        m
    }
}

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2/info/import", get(import_info))
        .route("/v2/info/stores", get(stores))
        .route("/v2/info/stores/detail", get(stores_detail))
        .route("/v2/info/usage", get(usage))
        .route("/v2/images/{id}/import", post(import))
        .route("/v2/stores/{store}/{id}", axum::routing::delete(delete_from_store))
}

async fn import_info(AxState(svc): AxState<State>, _: Auth) -> Response {
    ok(json!({"import-methods": {
        "description": "Import methods available.",
        "type": "array",
        "value": svc.import_methods(),
    }}))
}

async fn stores(AxState(svc): AxState<State>, _: Auth) -> Response {
    let list: Vec<Value> = svc
        .stores
        .list
        .iter()
        .map(|s| {
            let mut v = json!({"id": s.id(), "description": s.description()});
            if s.id() == svc.stores.default {
                v["default"] = Value::Bool(true);
            }
            if !svc.stores.weights.is_empty() {
                v["weight"] = json!(svc.stores.weight(s.id()));
            }
            if s.read_only() {
                v["read-only"] = json!("true");
            }
            v
        })
        .collect();
    ok(json!({"stores": list}))
}

async fn stores_detail(AxState(svc): AxState<State>, Auth(ctx): Auth) -> Result<Response> {
    svc.enforce(&ctx, "stores_info_detail", &json!({"project_id": ctx.project_id}))?;
    let list: Vec<Value> = svc
        .stores
        .list
        .iter()
        .map(|s| {
            let mut v = json!({"id": s.id(), "description": s.description(), "type": s.kind(), "properties": {},
                "weight": svc.stores.weight(s.id())});
            if s.id() == svc.stores.default {
                v["default"] = Value::Bool(true);
            }
            if s.read_only() {
                v["read-only"] = json!("true");
            }
            v
        })
        .collect();
    Ok(ok(json!({"stores": list})))
}

async fn usage(AxState(svc): AxState<State>, Auth(ctx): Auth) -> Result<Response> {
    let project = ctx.project_id.clone().unwrap_or_default();
    let (count, bytes) = images::usage(&svc.db, &project).await?;
    let limit = |r: &'static str| {
        let svc = svc.clone();
        let project = project.clone();
        async move { super::data::effective_limit(&svc, &project, r).await.map(|l| l.unwrap_or(-1)) }
    };
    Ok(ok(json!({"usage": {
        "image_size_total": {"limit": limit("image_size_total").await?, "usage": bytes / (1024 * 1024)},
        "image_stage_total": {"limit": limit("image_stage_total").await?, "usage": 0},
        "image_count_total": {"limit": limit("image_count_total").await?, "usage": count},
        "image_count_uploading": {"limit": limit("image_count_uploading").await?, "usage": 0},
    }})))
}

fn set_prop(props: &mut Map<String, Value>, key: &str, list: &[String]) {
    if list.is_empty() {
        props.insert(key.into(), Value::String(String::new()));
    } else {
        props.insert(key.into(), Value::String(list.join(",")));
    }
}

async fn import(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let method =
        body["method"]["name"].as_str().ok_or_else(|| bad("Import request requires a 'method' with a 'name'."))?;
    if !svc.import_methods().contains(&method) {
        return Err(bad(format!("Import method {method} is not offered by this cloud.")));
    }
    let uri = if method == "web-download" {
        let uri = body["method"]["uri"].as_str().ok_or_else(|| bad("web-download needs a 'uri'."))?;
        crate::backend::url_allowed(&svc.cfg.image.allowed_url_hosts, uri).map_err(bad)?;
        Some(uri.to_string())
    } else {
        None
    };
    let all_stores = body["all_stores"].as_bool().unwrap_or(false);
    let must_all = body["all_stores_must_succeed"].as_bool().unwrap_or(true);
    let mut targets: Vec<String> = match body.get("stores") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
        Some(_) => return Err(bad("stores must be a list of store ids")),
    };
    if all_stores && !targets.is_empty() {
        return Err(bad("Either all_stores or stores may be given, not both."));
    }
    if all_stores {
        targets = svc.stores.list.iter().filter(|s| !s.read_only()).map(|s| s.id().to_string()).collect();
    }
    for t in &targets {
        match svc.stores.get(t) {
            None => return Err(bad(format!("Unknown store {t}."))),
            Some(s) if s.read_only() => return Err(bad(format!("Store {t} is read-only."))),
            Some(_) => {}
        }
    }
    let rule = if method == "copy-image" { "copy_image" } else { "modify_image" };
    let (img, _) = svc.authorized(&ctx, &id, rule).await?;
    let mut props = super::props(&img);
    match method {
        "glance-download" => {
            let remote = body["method"]["glance_image_id"].as_str().unwrap_or_default().to_string();
            if uuid::Uuid::parse_str(&remote).is_err() {
                return Err(bad(format!("Remote image id does not look like a UUID: {remote}")));
            }
            let region = body["method"]["glance_region"].as_str().unwrap_or_default().to_string();
            let interface = body["method"]["glance_service_interface"].as_str().unwrap_or("public").to_string();
            if img.status != "queued" {
                return Err(conflict(format!(
                    "Image {id} must be queued for glance-download (status {}).",
                    img.status
                )));
            }
            if targets.is_empty() {
                targets.push(svc.stores.default.clone());
            }
            set_prop(&mut props, "os_glance_importing_to_stores", &targets);
            set_prop(&mut props, "os_glance_failed_import", &[]);
            let sets = vec![(image::Column::Properties, Value::Object(props).to_string().into())];
            if !images::transition(&svc.db, &id, &["queued"], "importing", sets).await? {
                return Err(conflict(format!("Image {id} is already being imported.")));
            }
            let input =
                json!({"glance_image_id": remote, "glance_region": region, "glance_service_interface": interface});
            let task =
                crate::store::image_tasks::create_image_task(&svc.db, &id, "api_image_import", &ctx, input).await?;
            let svc2 = svc.clone();
            let token = ctx.token.clone();
            let beat = crate::reaper::heartbeat(&svc, &id);
            tokio::spawn(async move {
                let _beat = beat;
                let r = glance_download(&svc2, &id, &token, &remote, &region, &interface, &targets).await;
                let (status, message) = match &r {
                    Ok(()) => ("success", String::new()),
                    Err(m) => ("failure", m.clone()),
                };
                if let Err(m) = &r {
                    tracing::info!(image = %id, reason = %m, "glance-download failed");
                    let mut props = match images::get_fresh(&svc2.db, &id).await {
                        Ok(Some(img)) => super::props(&img),
                        _ => Map::new(),
                    };
                    set_prop(&mut props, "os_glance_importing_to_stores", &[]);
                    set_prop(&mut props, "os_glance_failed_import", &targets);
                    let sets = vec![(image::Column::Properties, Value::Object(props).to_string().into())];
                    let _ = images::transition(&svc2.db, &id, &["importing"], "queued", sets).await;
                }
                let _ = crate::store::image_tasks::finish_image_task(&svc2.db, &task, status, &message).await;
            });
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        "web-download" => {
            if img.status != "queued" {
                return Err(conflict(format!("Image {id} must be queued for web-download (status {}).", img.status)));
            }
            if targets.is_empty() {
                targets.push(svc.stores.default.clone());
            }
            set_prop(&mut props, "os_glance_importing_to_stores", &targets);
            set_prop(&mut props, "os_glance_failed_import", &[]);
            let sets = vec![
                (image::Column::Properties, Value::Object(props).to_string().into()),
                (image::Column::Staging, uri.clone().into()),
            ];
            if !images::transition(&svc.db, &id, &["queued"], "importing", sets).await? {
                return Err(conflict(format!("Image {id} is already being imported.")));
            }
        }
        "glance-direct" => {
            if img.status != "uploading" || img.staging.is_none() {
                return Err(conflict(format!(
                    "Image needs to be staged before 'glance-direct' method can be used (status {}).",
                    img.status
                )));
            }
            if targets.is_empty() {
                targets.push(svc.stores.default.clone());
            }
            set_prop(&mut props, "os_glance_importing_to_stores", &targets);
            set_prop(&mut props, "os_glance_failed_import", &[]);
            let sets = vec![(image::Column::Properties, Value::Object(props).to_string().into())];
            if !images::transition(&svc.db, &id, &["uploading"], "importing", sets).await? {
                return Err(conflict(format!("Image {id} is already being imported.")));
            }
        }
        _ => {
            if img.status != "active" {
                return Err(conflict(format!("Image {id} must be active to be copied (status {}).", img.status)));
            }
            let have = super::store_ids(&img);
            targets.retain(|t| !have.contains(t));
            if targets.is_empty() {
                return Err(conflict(format!("Image {id} is already in every requested store.")));
            }
            set_prop(&mut props, "os_glance_importing_to_stores", &targets);
            set_prop(&mut props, "os_glance_failed_import", &[]);
            let sets = vec![(image::Column::Properties, Value::Object(props).to_string().into())];
            if !images::transition(&svc.db, &id, &["active"], "active", sets).await? {
                return Err(conflict(format!("Image {id} changed while the copy was requested.")));
            }
        }
    }
    let svc2 = svc.clone();
    let method = method.to_string();
    let beat = crate::reaper::heartbeat(&svc, &id);
    tokio::spawn(async move {
        let _beat = beat;
        if let Err(e) = run_import(&svc2, &id, &method, targets, must_all).await {
            tracing::error!(image = %id, error = %e, "import failed");
        }
    });
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Copy data into each target store, one after the other, recording progress
/// in `os_glance_importing_to_stores` / `os_glance_failed_import` as Glance does.
async fn run_import(svc: &ImageService, id: &str, method: &str, targets: Vec<String>, must_all: bool) -> Result<()> {
    let mut done: Vec<Value> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let Some(img) = images::get_fresh(&svc.db, id).await? else {
            // deleted meanwhile: undo what was copied
            remove_locations(svc, &done).await;
            return Ok(());
        };
        let Some(store) = svc.stores.get(target).cloned() else { continue };
        let source = source_of(svc, &img, method);
        let copied = match source {
            Some((src_store, url)) => match src_store.open(&url, None).await {
                Ok(stream) => {
                    let limit = svc.cfg.image.image_size_cap;
                    let fmt = if method == "copy-image" { None } else { img.disk_format.clone() };
                    super::data::store_stream(store.as_ref(), id, fmt.as_deref(), stream, limit).await.map_err(|e| {
                        match e {
                            super::data::StoreFailure::Broken(m) => m,
                            super::data::StoreFailure::Refused(e) => e.to_string(),
                        }
                    })
                }
                Err(e) => Err(e.to_string()),
            },
            None => Err("no source data".to_string()),
        };
        let remaining: Vec<String> = targets[i + 1..].to_vec();
        let mut props = super::props(&img);
        set_prop(&mut props, "os_glance_importing_to_stores", &remaining);
        match copied {
            Ok(s) => {
                let mut locs = super::locations(&img);
                let loc = super::data::location(&s.url, store.id());
                locs.push(loc.clone());
                done.push(loc);
                let mut sets = vec![
                    (image::Column::Locations, Value::Array(locs).to_string().into()),
                    (image::Column::Properties, Value::Object(props.clone()).to_string().into()),
                ];
                if img.status == "importing" {
                    sets.extend([
                        (image::Column::Checksum, s.digests.md5.clone().into()),
                        (image::Column::OsHashAlgo, "sha512".into()),
                        (image::Column::OsHashValue, s.digests.sha512.clone().into()),
                        (image::Column::Size, (s.digests.size as i64).into()),
                        (image::Column::VirtualSize, s.virtual_size.map(|v| v as i64).into()),
                    ]);
                }
                let to = if img.status == "importing" { "active" } else { img.status.as_str() };
                if !images::transition(&svc.db, id, &[img.status.as_str()], to, sets).await? {
                    let _ = store.delete(&s.url).await;
                    done.pop();
                }
            }
            Err(why) => {
                tracing::warn!(image = %id, store = %target, reason = %why, "import into store failed");
                failed.push(target.clone());
                set_prop(&mut props, "os_glance_failed_import", &failed);
                let sets = vec![(image::Column::Properties, Value::Object(props).to_string().into())];
                let back = img.status == "importing" && (must_all || (remaining.is_empty() && done.is_empty()));
                if back {
                    // the import failed: undo, back to queued, staged data dropped
                    remove_locations(svc, &done).await;
                    let mut sets = sets;
                    sets.push((image::Column::Locations, "[]".into()));
                    sets.push((image::Column::Staging, Option::<String>::None.into()));
                    images::transition(&svc.db, id, &["importing"], "queued", sets).await?;
                    if let Some(staged) = &img.staging {
                        let _ = svc.stores.staging.delete(staged).await;
                    }
                    return Err(ImageError::BadRequest(why));
                }
                images::transition(&svc.db, id, &[img.status.as_str()], img.status.as_str(), sets).await?;
            }
        }
    }
    // staged data is no longer needed once the image is active
    if let Some(img) = images::get_fresh(&svc.db, id).await?
        && let Some(staged) = img.staging.clone()
        && img.status == "active"
    {
        let _ = svc.stores.staging.delete(&staged).await;
        images::transition(
            &svc.db,
            id,
            &["active"],
            "active",
            vec![(image::Column::Staging, Option::<String>::None.into())],
        )
        .await?;
    }
    Ok(())
}

type Source = (std::sync::Arc<dyn crate::backend::Store>, String);

fn source_of(svc: &ImageService, img: &Image, method: &str) -> Option<Source> {
    if method == "web-download" && img.status == "importing" {
        let store: std::sync::Arc<dyn crate::backend::Store> = std::sync::Arc::new(
            crate::backend::HttpStore::new("web-download", svc.cfg.image.allowed_url_hosts.clone()).ok()?,
        );
        return img.staging.clone().map(|u| (store, u));
    }
    if method == "glance-direct" && img.status == "importing" {
        return img.staging.clone().map(|u| (svc.stores.staging.clone(), u));
    }
    let locs = super::locations(img);
    let loc = locs.first()?;
    let store = svc.stores.for_location(loc["metadata"]["store"].as_str()?)?.clone();
    Some((store, loc["url"].as_str()?.to_string()))
}

async fn remove_locations(svc: &ImageService, locs: &[Value]) {
    for l in locs {
        if let (Some(url), Some(store)) = (l["url"].as_str(), l["metadata"]["store"].as_str())
            && let Some(s) = svc.stores.get(store)
        {
            let _ = s.delete(url).await;
        }
    }
}

/// `DELETE /v2/stores/{store}/{image}`: drop one store's copy (never the last one).
async fn delete_from_store(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((store_id, id)): Path<(String, String)>,
) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "delete_image_location").await?;
    let Some(store) = svc.stores.get(&store_id).cloned() else {
        return Err(crate::error::not_found(format!("Unknown store {store_id}.")));
    };
    if store.read_only() {
        return Err(crate::error::forbidden(format!("Store {store_id} is read-only.")));
    }
    if img.status != "active" {
        return Err(conflict(format!(
            "It's not allowed to remove image data from store if image status is {}.",
            img.status
        )));
    }
    let mut locs = super::locations(&img);
    let Some(pos) = locs.iter().position(|l| l["metadata"]["store"].as_str() == Some(store_id.as_str())) else {
        return Err(crate::error::not_found(format!("Image {id} is not in store {store_id}.")));
    };
    if locs.len() == 1 {
        return Err(crate::error::forbidden("Cannot delete the last location of an image."));
    }
    let loc = locs.remove(pos);
    let sets = vec![(image::Column::Locations, Value::Array(locs).to_string().into())];
    if !images::transition(&svc.db, &id, &["active"], "active", sets).await? {
        return Err(conflict(format!("Image {id} changed while its data was being removed.")));
    }
    if let Some(url) = loc["url"].as_str()
        && let Err(e) = store.delete(url).await
    {
        tracing::warn!(image = %id, store = %store_id, error = %e, "could not remove image data");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Properties glance-download copies from the source image (Glance's
/// `glance_download_properties.extra_properties` defaults).
const DOWNLOAD_PROPERTIES: &[&str] = &["hw_", "trait:", "os_distro", "os_secure_boot", "os_type"];

/// glance-download: find the image service of `region` in the caller's
/// catalog, read the source image there with the caller's token, and store
/// its data and chosen properties here.
async fn glance_download(
    svc: &ImageService,
    id: &str,
    token: &str,
    remote: &str,
    region: &str,
    interface: &str,
    targets: &[String],
) -> std::result::Result<(), String> {
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let cat_url = format!("{}/v3/auth/catalog", svc.cfg.identity_public_url());
    let r = http.get(&cat_url).header("x-auth-token", token).send().await.map_err(|e| e.to_string())?;
    let catalog: Value = r.json().await.map_err(|e| format!("reading the catalog: {e}"))?;
    let base = catalog["catalog"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["type"] == "image")
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .find(|e| (e["region_id"] == region || e["region"] == region) && e["interface"] == interface)
        .and_then(|e| e["url"].as_str().map(|u| u.trim_end_matches('/').to_string()))
        .ok_or_else(|| format!("No image service in region {region:?} with interface {interface:?}"))?;
    let meta_url = format!("{base}/v2/images/{remote}");
    crate::backend::url_allowed(&svc.cfg.image.allowed_url_hosts, &meta_url)?;
    let r = http.get(&meta_url).header("x-auth-token", token).send().await.map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("The remote image {remote} could not be read: {}", r.status()));
    }
    let src: Value = r.json().await.map_err(|e| e.to_string())?;
    if src["status"] != "active" {
        return Err(format!("The remote image {remote} is not active"));
    }
    let r =
        http.get(format!("{meta_url}/file")).header("x-auth-token", token).send().await.map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("The remote image data could not be read: {}", r.status()));
    }
    let disk_format = src["disk_format"].as_str().map(str::to_string);
    let target = targets.first().and_then(|t| svc.stores.get(t)).cloned().ok_or("no target store")?;
    let stream = r.bytes_stream().map(|c| c.map_err(std::io::Error::other));
    let stored = super::data::store_stream(
        target.as_ref(),
        id,
        disk_format.as_deref(),
        Box::pin(stream),
        svc.cfg.image.image_size_cap,
    )
    .await
    .map_err(|e| match e {
        super::data::StoreFailure::Broken(m) => m,
        super::data::StoreFailure::Refused(e) => e.to_string(),
    })?;
    let Some(img) = images::get_fresh(&svc.db, id).await.map_err(|e| e.to_string())? else {
        let _ = target.delete(&stored.url).await;
        return Err("the image was deleted during the download".into());
    };
    let mut props = super::props(&img);
    if let Value::Object(src_props) = &src {
        for (k, v) in src_props {
            if DOWNLOAD_PROPERTIES.iter().any(|p| k.starts_with(p)) && v.is_string() {
                props.insert(k.clone(), v.clone());
            }
        }
    }
    set_prop(&mut props, "os_glance_importing_to_stores", &[]);
    let loc = super::data::location(&stored.url, target.id());
    let sets = vec![
        (image::Column::Locations, Value::Array(vec![loc]).to_string().into()),
        (image::Column::Properties, Value::Object(props).to_string().into()),
        (image::Column::Checksum, Some(stored.digests.md5.clone()).into()),
        (image::Column::OsHashAlgo, Some("sha512".to_string()).into()),
        (image::Column::OsHashValue, Some(stored.digests.sha512.clone()).into()),
        (image::Column::Size, Some(stored.digests.size as i64).into()),
        (image::Column::VirtualSize, stored.virtual_size.map(|v| v as i64).into()),
        (image::Column::DiskFormat, disk_format.into()),
        (image::Column::ContainerFormat, src["container_format"].as_str().map(str::to_string).into()),
    ];
    if !images::transition(&svc.db, id, &["importing"], "active", sets).await.map_err(|e| e.to_string())? {
        let _ = target.delete(&stored.url).await;
        return Err("the image changed during the download".into());
    }
    Ok(())
}
