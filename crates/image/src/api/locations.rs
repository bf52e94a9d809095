//! Image locations: where an image's data lives, managed by clients when the
//! operator turns on `show_multiple_locations` (JSON-patch on `/locations`),
//! and the v2.17 `POST /v2/images/{id}/locations` that adds an HTTP location
//! and verifies its data in the background.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use md5::Md5;
use serde_json::{Map, Value, json};
use sha2::Digest;
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::Json;

use super::ok;
use crate::entity::image;
use crate::error::{ImageError, Result, bad, conflict, forbidden};
use crate::store::images::{self, Image};
use crate::{ImageService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2/images/{id}/locations", post(add_location).get(list_locations))
        .route("/v2/images/{id}/tasks", get(image_tasks))
}

/// Locations as clients see them: `{"url", "metadata"}`.
pub fn public_locations(img: &Image) -> Vec<Value> {
    super::locations(img).into_iter().map(|l| json!({"url": l["url"], "metadata": l["metadata"]})).collect()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Digest sizes (hex characters) of the hash algorithms Stratus can verify.
fn hex_len(algo: &str) -> Option<usize> {
    match algo {
        "sha224" => Some(56),
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    }
}

/// Validation data given with a location: (checksum, os_hash_algo, os_hash_value).
struct Validation {
    checksum: Option<String>,
    algo: Option<String>,
    value: Option<String>,
}

fn parse_validation(v: Option<&Value>, status: StatusCode, any_algo: bool) -> Result<Validation> {
    let err = |m: String| ImageError::Status(status, m);
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Validation { checksum: None, algo: None, value: None });
    };
    let Value::Object(m) = v else {
        return Err(err("validation_data must be an object".into()));
    };
    for k in m.keys() {
        if !["checksum", "os_hash_algo", "os_hash_value"].contains(&k.as_str()) {
            return Err(err(format!("Unknown validation_data key {k}")));
        }
    }
    let get = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    let (checksum, algo, value) = (get("checksum"), get("os_hash_algo"), get("os_hash_value"));
    if let Some(c) = &checksum
        && !is_hex(c, 32)
    {
        return Err(err(format!("checksum ({c}) is not a valid md5 value (32 hexadecimal digits)")));
    }
    if value.is_some() && algo.is_none() {
        return Err(err("os_hash_algo must be given with os_hash_value".into()));
    }
    if let Some(a) = &algo {
        let Some(n) = hex_len(a) else {
            return Err(err(format!("os_hash_algo {a} is not supported")));
        };
        if !any_algo && a != "sha512" {
            return Err(err(format!("os_hash_algo must be sha512, not {a}")));
        }
        match &value {
            Some(v) if is_hex(v, n) => {}
            Some(v) => {
                return Err(err(format!("os_hash_value ({v}) is not the correct size for {a} ({n} hex digits)")));
            }
            None => return Err(err("os_hash_value must be given with os_hash_algo".into())),
        }
    }
    Ok(Validation { checksum, algo, value })
}

impl ImageService {
    /// The HTTP store that would serve `url`, if fetching from it is allowed.
    fn http_store_for(&self, url: &str) -> Result<std::sync::Arc<dyn crate::backend::Store>> {
        let store = self
            .stores
            .for_url(url)
            .cloned()
            .ok_or_else(|| bad(format!("Invalid location: {url}: no store serves this scheme")))?;
        crate::backend::url_allowed(&self.cfg.image.allowed_url_hosts, url).map_err(bad)?;
        Ok(store)
    }

    /// A JSON-patch change on `/locations`. Changes `img` in memory; returns
    /// locations removed (their data goes once the image is saved).
    pub async fn patch_locations(
        &self,
        ctx: &AuthContext,
        target: &Value,
        img: &mut Image,
        op: &str,
        pos: Option<&str>,
        value: Option<Value>,
    ) -> Result<Vec<Value>> {
        let verb = match op {
            "remove" => "remove",
            "add" => "add",
            _ => "update",
        };
        if !self.cfg.image.show_multiple_locations {
            return Err(forbidden(format!("It's not allowed to {verb} locations if locations are invisible.")));
        }
        let mut locs = super::locations(img);
        match op {
            "remove" => {
                self.enforce(ctx, "delete_image_location", target)?;
                if img.status != "active" {
                    return Err(conflict(format!(
                        "It's not allowed to remove locations if image status is {}.",
                        img.status
                    )));
                }
                if locs.len() == 1 {
                    return Err(forbidden("Cannot remove last location in the image."));
                }
                let i = pos
                    .and_then(|p| if p == "-" { Some(locs.len() - 1) } else { p.parse::<usize>().ok() })
                    .filter(|i| *i < locs.len())
                    .ok_or_else(|| bad("Invalid position for removing a location."))?;
                let gone = locs.remove(i);
                img.locations = Value::Array(locs).to_string();
                Ok(vec![gone])
            }
            "add" => {
                self.enforce(ctx, "set_image_location", target)?;
                if !matches!(img.status.as_str(), "active" | "queued") {
                    return Err(conflict(format!(
                        "It's not allowed to add locations if image status is {}.",
                        img.status
                    )));
                }
                let value = value.unwrap_or(Value::Null);
                let new = self.new_location(&value, &locs).await?;
                let i = match pos {
                    Some("-") | None => locs.len(),
                    Some(p) => p
                        .parse::<usize>()
                        .ok()
                        .filter(|i| *i <= locs.len())
                        .ok_or_else(|| bad("Invalid position for adding a location."))?,
                };
                self.apply_validation(img, value.get("validation_data"))?;
                if img.status == "queued" {
                    self.activate_with(img, &new).await?;
                }
                locs.insert(i, new);
                img.locations = Value::Array(locs).to_string();
                Ok(vec![])
            }
            _ => {
                self.enforce(ctx, "set_image_location", target)?;
                if !matches!(img.status.as_str(), "active" | "queued") {
                    return Err(conflict(format!(
                        "It's not allowed to replace locations if image status is {}.",
                        img.status
                    )));
                }
                let Some(Value::Array(wanted)) = value else {
                    return Err(bad("The value of /locations must be a list of locations."));
                };
                let old_urls: Vec<&str> = locs.iter().filter_map(|l| l["url"].as_str()).collect();
                let new_urls: Vec<&str> = wanted.iter().filter_map(|l| l["url"].as_str()).collect();
                if !old_urls.is_empty() && old_urls != new_urls {
                    return Err(bad(
                        "Locations can only be replaced by the same locations (their metadata may change).",
                    ));
                }
                let mut out = Vec::new();
                for w in &wanted {
                    match locs.iter().find(|l| l["url"] == w["url"]) {
                        Some(old) => {
                            let mut l = old.clone();
                            let mut meta = w["metadata"].as_object().cloned().unwrap_or_default();
                            if let Some(st) = old["metadata"]["store"].as_str() {
                                meta.insert("store".into(), json!(st));
                            }
                            l["metadata"] = Value::Object(meta);
                            out.push(l);
                        }
                        None => out.push(self.new_location(w, &out).await?),
                    }
                }
                if img.status == "queued"
                    && let Some(first) = out.first().cloned()
                {
                    self.activate_with(img, &first).await?;
                }
                img.locations = Value::Array(out).to_string();
                Ok(vec![])
            }
        }
    }

    /// A location a client gives: `{"url", "metadata"}` on a store that serves it.
    async fn new_location(&self, value: &Value, existing: &[Value]) -> Result<Value> {
        let url = value["url"].as_str().ok_or_else(|| bad("A location needs a url."))?;
        let meta = match &value["metadata"] {
            Value::Null => Map::new(),
            Value::Object(m) => m.clone(),
            _ => return Err(bad("Location metadata must be an object.")),
        };
        let store = self.http_store_for(url)?;
        if existing.iter().any(|l| l["url"].as_str() == Some(url)) {
            return Err(bad(format!("The location {url} is already present.")));
        }
        let mut meta = meta;
        meta.insert("store".into(), json!(store.id()));
        Ok(json!({"url": url, "metadata": meta, "store": store.id()}))
    }

    /// A queued image gets data: active, with the size the store reports.
    async fn activate_with(&self, img: &mut Image, loc: &Value) -> Result<()> {
        let url = loc["url"].as_str().unwrap_or_default();
        let store = self.http_store_for(url)?;
        let size = store.size_of(url).await.map_err(|e| bad(format!("Cannot read the image at {url}: {e:#}")))?;
        img.size = size.map(|s| s as i64);
        img.status = "active".into();
        Ok(())
    }

    /// Validation data on a PATCH location: sets the image's hashes when it
    /// has none, must match them when it has.
    fn apply_validation(&self, img: &mut Image, v: Option<&Value>) -> Result<()> {
        let val = parse_validation(v, StatusCode::CONFLICT, false)?;
        if val.checksum.is_none() && val.value.is_none() {
            return Ok(());
        }
        if img.status == "queued" {
            img.checksum = val.checksum;
            img.os_hash_algo = val.algo;
            img.os_hash_value = val.value;
            return Ok(());
        }
        let differs = |given: &Option<String>, have: &Option<String>| given.is_some() && given != have;
        if differs(&val.checksum, &img.checksum)
            || differs(&val.algo, &img.os_hash_algo)
            || differs(&val.value, &img.os_hash_value)
        {
            return Err(conflict("The validation data does not match the image's."));
        }
        Ok(())
    }
}

async fn list_locations(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "fetch_image_location").await?;
    Ok(ok(Value::Array(public_locations(&img))))
}

/// `POST /v2/images/{id}/locations` (v2.17): the image goes active on the
/// HTTP location at once; a task then reads the data to compute (or verify)
/// its hashes, and puts the image back to `queued` if they do not match.
async fn add_location(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "add_image_location").await?;
    let url = body["url"].as_str().ok_or_else(|| bad("url is required"))?.to_string();
    let val = parse_validation(body.get("validation_data"), StatusCode::BAD_REQUEST, true)?;
    if img.status != "queued" {
        return Err(conflict(format!("It's not allowed to add locations if image status is {}.", img.status)));
    }
    let store = svc.http_store_for(&url)?;
    let size = store.size_of(&url).await.map_err(|e| bad(format!("Cannot read the image at {url}: {e:#}")))?;
    let loc = json!({"url": url, "metadata": {"store": store.id()}, "store": store.id()});
    let algo = val.algo.clone().unwrap_or_else(|| "sha512".into());
    let sets = vec![
        (image::Column::Locations, Value::Array(vec![loc]).to_string().into()),
        (image::Column::Size, size.map(|s| s as i64).into()),
        (image::Column::OsHashAlgo, Some(algo.clone()).into()),
        (image::Column::OsHashValue, val.value.clone().into()),
    ];
    if !images::transition(&svc.db, &id, &["queued"], "active", sets).await? {
        return Err(conflict(format!("Image {id} is no longer queued.")));
    }
    let task = crate::store::image_tasks::create_image_task(&svc.db, &id, "location_import", &ctx, json!({"url": url}))
        .await?;
    let svc2 = svc.clone();
    tokio::spawn(async move {
        let outcome = verify_location(&svc2, &id, &url, &algo, val.value.as_deref(), val.checksum.as_deref()).await;
        let (status, message) = match &outcome {
            Ok(()) => ("success", String::new()),
            Err(e) => ("failure", e.clone()),
        };
        if let Err(e) = crate::store::image_tasks::finish_image_task(&svc2.db, &task, status, &message).await {
            tracing::warn!(image = %id, error = %e, "could not record the location task");
        }
    });
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Read the data at `url`, hash it, verify or record the hashes.
async fn verify_location(
    svc: &ImageService,
    id: &str,
    url: &str,
    algo: &str,
    want: Option<&str>,
    want_md5: Option<&str>,
) -> std::result::Result<(), String> {
    let store = svc.http_store_for(url).map_err(|e| e.to_string())?;
    let mut stream = store.open(url, None).await.map_err(|e| format!("{e:#}"))?;
    let mut md5 = Md5::new();
    let mut h = Hasher::new(algo).ok_or_else(|| format!("unsupported algorithm {algo}"))?;
    let mut size: u64 = 0;
    let mut checked = std::time::Instant::now();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("reading {url}: {e}"))?;
        size += chunk.len() as u64;
        md5.update(&chunk);
        h.update(&chunk);
        // stop early when the image is deleted meanwhile
        if checked.elapsed() > std::time::Duration::from_secs(1) {
            checked = std::time::Instant::now();
            if images::get_fresh(&svc.db, id).await.ok().flatten().is_none() {
                return Err("the image was deleted: hash calculation cancelled".into());
            }
        }
    }
    let got = h.finish();
    let got_md5 = crate::pipeline::hex(&md5.finalize());
    let bad_hash = want.is_some_and(|w| w != got) || want_md5.is_some_and(|w| w != got_md5);
    if bad_hash {
        let sets = vec![
            (image::Column::Checksum, Option::<String>::None.into()),
            (image::Column::OsHashAlgo, Option::<String>::None.into()),
            (image::Column::OsHashValue, Option::<String>::None.into()),
        ];
        let _ = images::transition(&svc.db, id, &["active"], "queued", sets).await;
        return Err(format!("The data at {url} does not match the validation data."));
    }
    let sets = vec![
        (image::Column::Checksum, Some(got_md5).into()),
        (image::Column::OsHashValue, Some(got).into()),
        (image::Column::Size, Some(size as i64).into()),
    ];
    images::transition(&svc.db, id, &["active"], "active", sets).await.map_err(|e| e.to_string())?;
    Ok(())
}

enum Hasher {
    S224(sha2::Sha224),
    S256(sha2::Sha256),
    S384(sha2::Sha384),
    S512(sha2::Sha512),
}

impl Hasher {
    fn new(algo: &str) -> Option<Hasher> {
        Some(match algo {
            "sha224" => Hasher::S224(sha2::Sha224::new()),
            "sha256" => Hasher::S256(sha2::Sha256::new()),
            "sha384" => Hasher::S384(sha2::Sha384::new()),
            "sha512" => Hasher::S512(sha2::Sha512::new()),
            _ => return None,
        })
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::S224(h) => h.update(b),
            Hasher::S256(h) => h.update(b),
            Hasher::S384(h) => h.update(b),
            Hasher::S512(h) => h.update(b),
        }
    }
    fn finish(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::S224(h) => h.finalize().to_vec(),
            Hasher::S256(h) => h.finalize().to_vec(),
            Hasher::S384(h) => h.finalize().to_vec(),
            Hasher::S512(h) => h.finalize().to_vec(),
        };
        crate::pipeline::hex(&bytes)
    }
}

async fn image_tasks(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "get_image").await?;
    let tasks = crate::store::image_tasks::image_tasks(&svc.db, &img.id).await?;
    Ok(ok(json!({"tasks": tasks})))
}
