//! `/v2/cache`: the image cache API (Image API v2.14). Admin only by default
//! (`cache_image`, `cache_list`, `cache_delete`, `cache_clean`, `cache_prune`).

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use serde_json::json;
use stratus_core::auth::Auth;

use super::{no_content, ok};
use crate::State;
use crate::error::{ImageError, Result, bad, not_found};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2/cache", axum::routing::get(list).delete(clear))
        .route("/v2/cache/{id}", put(queue).delete(remove))
        .route("/v2/cache/clean", post(clean))
        .route("/v2/cache/prune", post(prune))
}

async fn list(AxState(svc): AxState<State>, Auth(ctx): Auth) -> Result<Response> {
    svc.enforce(&ctx, "cache_list", &json!({}))?;
    svc.cache.start(&svc);
    Ok(ok(svc.cache.view()))
}

/// `PUT /v2/cache/{id}`: queue an active image; a background copy caches it.
async fn queue(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let (img, member) = svc.visible(&ctx, &id).await.map_err(|_| not_found(format!("Image {id} not found.")))?;
    svc.enforce(&ctx, "cache_image", &svc.target(&img, &ctx, member))?;
    if img.status != "active" {
        return Err(bad("Only images with status active can be targeted for queueing"));
    }
    svc.cache.start(&svc);
    svc.cache.queue(&img.id)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `DELETE /v2/cache/{id}`: drop an image from the cache and the queue.
async fn remove(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let target = match svc.visible(&ctx, &id).await {
        Ok((img, member)) => svc.target(&img, &ctx, member),
        // an image that is gone (or unseen) can still be dropped from the cache
        Err(ImageError::NotFound(_)) if svc.cache.is_cached(&id) || svc.cache.is_queued(&id) => json!({}),
        Err(ImageError::NotFound(_)) => return Err(not_found(format!("Image {id} not found."))),
        Err(e) => return Err(e),
    };
    svc.enforce(&ctx, "cache_delete", &target)?;
    svc.cache.start(&svc);
    svc.cache.remove(&id).await;
    Ok(no_content())
}

/// `DELETE /v2/cache`: clear the cache and the queue, or the one named by
/// `x-image-cache-clear-target` (`cache` or `queue`).
async fn clear(AxState(svc): AxState<State>, Auth(ctx): Auth, headers: HeaderMap) -> Result<Response> {
    svc.enforce(&ctx, "cache_delete", &json!({}))?;
    let target = match headers.get("x-image-cache-clear-target") {
        None => String::new(),
        Some(v) => v.to_str().map(|s| s.trim().to_ascii_lowercase()).unwrap_or_else(|_| "?".into()),
    };
    let (cache, queue) = match target.as_str() {
        "" => (true, true),
        "cache" => (true, false),
        "queue" => (false, true),
        _ => return Err(bad("If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.")),
    };
    svc.cache.start(&svc);
    if queue {
        svc.cache.clear_queued().await;
    }
    if cache {
        svc.cache.clear_cached().await;
    }
    Ok(no_content())
}

/// `POST /v2/cache/clean`: drop broken entries and stalled partial copies.
async fn clean(AxState(svc): AxState<State>, Auth(ctx): Auth) -> Result<Response> {
    svc.enforce(&ctx, "cache_clean", &json!({}))?;
    svc.cache.start(&svc);
    svc.cache.clean().await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /v2/cache/prune`: trim the cache to its maximum size, least recently used first.
async fn prune(AxState(svc): AxState<State>, Auth(ctx): Auth) -> Result<Response> {
    svc.enforce(&ctx, "cache_prune", &json!({}))?;
    svc.cache.start(&svc);
    let (files, bytes) = svc.cache.prune(crate::cache::MAX_SIZE).await;
    Ok(ok(json!({"total_files_pruned": files, "total_bytes_pruned": bytes})))
}
