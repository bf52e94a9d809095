//! Image data: `PUT/GET /v2/images/{id}/file` and `PUT /v2/images/{id}/stage`,
//! streamed both ways.
//!
//! An upload runs in a task of its own, so a client that disconnects cannot
//! cancel it half-way: the broken stream is seen, the partial data removed and
//! the image marked `killed`, never left `saving`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};
use stratus_core::auth::Auth;

use super::{is_admin, no_content};
use crate::entity::image;
use crate::error::{ImageError, Result, bad, conflict, forbidden};
use crate::pipeline::{self, PipeError};
use crate::store::images::{self, Image};
use crate::{ImageService, State};

pub fn routes() -> Router<State> {
    Router::new().route("/v2/images/{id}/file", get(download).put(upload)).route("/v2/images/{id}/stage", put(stage))
}

/// A project's limit for a resource: unified limits first, then the configured default.
pub async fn effective_limit(svc: &ImageService, project: &str, resource: &str) -> Result<Option<i64>> {
    if let Some(l) = svc.limits.limit(project, resource).await? {
        return Ok(Some(l));
    }
    let d = match resource {
        "image_count_total" => svc.cfg.image.default_image_count_total,
        "image_size_total" => svc.cfg.image.default_image_size_total,
        _ => -1,
    };
    Ok((d >= 0).then_some(d))
}

/// How many more bytes the owner may store (image_size_total is in MiB), capped by image_size_cap.
async fn byte_budget(svc: &ImageService, img: &Image) -> Result<u64> {
    let cap = svc.cfg.image.image_size_cap;
    let Some(owner) = &img.owner else { return Ok(cap) };
    let Some(limit_mib) = effective_limit(svc, owner, "image_size_total").await? else { return Ok(cap) };
    let (_, used) = images::usage(&svc.db, owner).await?;
    let left = (limit_mib.max(0) as u64 * 1024 * 1024).saturating_sub(used.max(0) as u64);
    if left == 0 {
        return Err(ImageError::TooLarge(format!(
            "Quota exceeded for image_size_total: {used} bytes of {limit_mib} MiB in use."
        )));
    }
    Ok(left.min(cap))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

fn check_octet_stream(headers: &HeaderMap) -> Result<()> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/octet-stream");
    if !ct.starts_with("application/octet-stream") {
        return Err(ImageError::Status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {ct} is not supported for image data: use application/octet-stream"),
        ));
    }
    Ok(())
}

/// Where new data goes: the store named in `X-Image-Meta-Store`, else the default.
fn target_store(svc: &ImageService, headers: &HeaderMap) -> Result<std::sync::Arc<dyn crate::backend::Store>> {
    match headers.get("x-image-meta-store").and_then(|v| v.to_str().ok()) {
        Some(id) => svc.stores.get(id).cloned().ok_or_else(|| bad(format!("Store for identifier {id} not found"))),
        None => Ok(svc.stores.default_store().clone()),
    }
}

/// The result of streaming data into a store.
pub struct Stored {
    pub url: String,
    pub digests: pipeline::Digests,
    pub virtual_size: Option<u64>,
}

/// Why storing failed, and what that means for the image.
pub enum StoreFailure {
    /// The client's stream broke: the image is killed.
    Broken(String),
    /// Refused with this error: the image goes back to where it was.
    Refused(ImageError),
}

/// Stream `body` into `store`, check the format, commit. Partial data never stays.
pub async fn store_stream<S, E>(
    store: &dyn crate::backend::Store,
    image_id: &str,
    disk_format: Option<&str>,
    body: S,
    limit: u64,
) -> std::result::Result<Stored, StoreFailure>
where
    S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut up = store.begin(image_id).await.map_err(|e| StoreFailure::Refused(ImageError::Internal(e)))?;
    let digests = match pipeline::pump(body, up.as_mut(), limit).await {
        Ok(d) => d,
        Err(e) => {
            up.abort().await;
            return Err(match e {
                PipeError::Client(m) => StoreFailure::Broken(m),
                PipeError::TooLarge(l) => StoreFailure::Refused(ImageError::TooLarge(format!(
                    "Image exceeds the storage quota or the size limit: at most {l} bytes are allowed."
                ))),
                PipeError::Store(e) => StoreFailure::Refused(ImageError::Internal(e)),
            });
        }
    };
    let virtual_size = match disk_format {
        Some(fmt) => match crate::format::check(fmt, &digests.head, &digests.tail, digests.size) {
            Ok(v) => v,
            Err(reason) => {
                up.abort().await;
                return Err(StoreFailure::Refused(bad(reason)));
            }
        },
        None => None,
    };
    let url = up.commit().await.map_err(|e| StoreFailure::Refused(ImageError::Internal(e)))?;
    Ok(Stored { url, digests, virtual_size })
}

pub fn location(url: &str, store: &str) -> Value {
    json!({"url": url, "metadata": {"store": store}, "store": store})
}

async fn upload(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "upload_image").await?;
    check_octet_stream(&headers)?;
    if img.status != "queued" {
        return Err(conflict(format!("Image status transition from {} to saving is not allowed", img.status)));
    }
    if img.disk_format.is_none() || img.container_format.is_none() {
        return Err(bad("Properties disk_format, container_format must be set prior to saving data."));
    }
    let budget = byte_budget(&svc, &img).await?;
    if let Some(len) = content_length(&headers)
        && len > budget
    {
        return Err(ImageError::TooLarge(format!(
            "Image exceeds the storage quota or the size limit: at most {budget} bytes are allowed."
        )));
    }
    let store = target_store(&svc, &headers)?;
    if !images::transition(&svc.db, &id, &["queued"], "saving", vec![]).await? {
        return Err(conflict(format!("Image {id} is already being uploaded or has data.")));
    }
    // the work runs detached from the request: a dropped connection cannot leave it half done
    let beat = crate::reaper::heartbeat(&svc, &id);
    let task = tokio::spawn(async move {
        let _beat = beat;
        let stream = body.into_data_stream();
        match store_stream(store.as_ref(), &id, img.disk_format.as_deref(), stream, budget).await {
            Ok(s) => {
                let loc = Value::Array(vec![location(&s.url, store.id())]).to_string();
                let sets = vec![
                    (image::Column::Checksum, s.digests.md5.into()),
                    (image::Column::OsHashAlgo, "sha512".into()),
                    (image::Column::OsHashValue, s.digests.sha512.into()),
                    (image::Column::Size, (s.digests.size as i64).into()),
                    (image::Column::VirtualSize, s.virtual_size.map(|v| v as i64).into()),
                    (image::Column::Locations, loc.into()),
                ];
                if !images::transition(&svc.db, &id, &["saving"], "active", sets).await? {
                    // deleted (or killed) while the data arrived
                    let _ = store.delete(&s.url).await;
                    return Err(ImageError::Status(StatusCode::GONE, "Image deleted during upload.".into()));
                }
                // uploads that finished together may have passed the size quota between
                // them: recount now that this one is committed, and withdraw it if so
                // (of the uploads kept, the last to count saw all the others)
                if let Some(owner) = &img.owner
                    && let Some(limit_mib) = effective_limit(&svc, owner, "image_size_total").await?
                {
                    let used = images::bytes_fresh(&svc.db, owner).await?;
                    if used > limit_mib.max(0).saturating_mul(1024 * 1024) {
                        let undo = vec![
                            (image::Column::Checksum, Option::<String>::None.into()),
                            (image::Column::OsHashAlgo, Option::<String>::None.into()),
                            (image::Column::OsHashValue, Option::<String>::None.into()),
                            (image::Column::Size, Option::<i64>::None.into()),
                            (image::Column::VirtualSize, Option::<i64>::None.into()),
                            (image::Column::Locations, "[]".into()),
                        ];
                        if images::transition(&svc.db, &id, &["active"], "queued", undo).await? {
                            let _ = store.delete(&s.url).await;
                        }
                        return Err(ImageError::TooLarge(format!(
                            "Quota exceeded for image_size_total: {used} bytes would be in use, {limit_mib} MiB allowed."
                        )));
                    }
                }
                Ok(())
            }
            Err(StoreFailure::Broken(why)) => {
                tracing::info!(image = %id, reason = %why, "upload broken: image killed");
                images::transition(&svc.db, &id, &["saving"], "killed", vec![]).await?;
                Err(bad(format!("Error in the image data stream: {why}")))
            }
            Err(StoreFailure::Refused(e)) => {
                images::transition(&svc.db, &id, &["saving"], "queued", vec![]).await?;
                Err(e)
            }
        }
    });
    match task.await {
        Ok(r) => r.map(|_| no_content()),
        Err(e) => Err(ImageError::Internal(anyhow::anyhow!("upload task failed: {e}"))),
    }
}

async fn stage(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "modify_image").await?;
    check_octet_stream(&headers)?;
    if img.status != "queued" {
        return Err(conflict(format!("Image status transition from {} to uploading is not allowed", img.status)));
    }
    let budget = byte_budget(&svc, &img).await?;
    if !images::transition(&svc.db, &id, &["queued"], "uploading", vec![]).await? {
        return Err(conflict(format!("Image {id} is already being staged or has data.")));
    }
    let beat = crate::reaper::heartbeat(&svc, &id);
    let task = tokio::spawn(async move {
        let _beat = beat;
        let staging = svc.stores.staging.clone();
        // the format is checked at import, when the data goes to its stores
        match store_stream(staging.as_ref(), &id, None, body.into_data_stream(), budget).await {
            Ok(s) => {
                let sets = vec![
                    (image::Column::Staging, Some(s.url.clone()).into()),
                    (image::Column::Size, (s.digests.size as i64).into()),
                ];
                if !images::transition(&svc.db, &id, &["uploading"], "uploading", sets).await? {
                    let _ = staging.delete(&s.url).await;
                    return Err(ImageError::Status(StatusCode::GONE, "Image deleted during staging.".into()));
                }
                Ok(())
            }
            Err(StoreFailure::Broken(why)) => {
                images::transition(&svc.db, &id, &["uploading"], "queued", vec![]).await?;
                Err(bad(format!("Error in the image data stream: {why}")))
            }
            Err(StoreFailure::Refused(e)) => {
                images::transition(&svc.db, &id, &["uploading"], "queued", vec![]).await?;
                Err(e)
            }
        }
    });
    match task.await {
        Ok(r) => r.map(|_| no_content()),
        Err(e) => Err(ImageError::Internal(anyhow::anyhow!("staging task failed: {e}"))),
    }
}

/// A parsed `Range: bytes=...` header against a size: inclusive (start, end).
fn parse_range(raw: &str, size: u64) -> Option<(u64, u64)> {
    let spec = raw.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        return Some((size.saturating_sub(n), size - 1));
    }
    let start: u64 = a.parse().ok()?;
    let end: u64 = if b.is_empty() { size - 1 } else { b.parse::<u64>().ok()?.min(size - 1) };
    (start <= end && start < size).then_some((start, end))
}

async fn download(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "download_image").await?;
    if img.status == "deactivated" && !is_admin(&svc, &ctx) {
        return Err(forbidden("The requested image has been deactivated. Image data download is prohibited."));
    }
    let locs = super::locations(&img);
    let Some(loc) = locs.first() else {
        return Ok(no_content());
    };
    let (Some(url), Some(store_id)) = (loc["url"].as_str(), loc["metadata"]["store"].as_str()) else {
        return Ok(no_content());
    };
    let store = svc
        .stores
        .for_location(store_id)
        .ok_or_else(|| ImageError::Internal(anyhow::anyhow!("image {id} is in unknown store {store_id}")))?;
    let size = img.size.unwrap_or(0).max(0) as u64;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(raw) => match parse_range(raw, size) {
            Some(r) => Some(r),
            None => {
                let mut resp = ImageError::Status(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    format!("Requested range {raw} not satisfiable for an image of {size} bytes."),
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(resp);
            }
        },
    };
    // a cached copy on this node first (it counts a hit), else the store
    let stream = match svc.cache.open(&img.id, size, range).await {
        Some(s) => s,
        None => store.open(url, range).await.map_err(ImageError::Internal)?,
    };
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    match range {
        Some((a, b)) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(b - a + 1));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        None => {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            if let Some(c) = img.checksum.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
                h.insert("content-md5", c);
            }
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=9-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=0-0", 0), None);
    }
}
