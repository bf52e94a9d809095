//! `/v2/images/{id}/tags/{tag}`.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::put;

use super::no_content;
use crate::State;
use crate::error::{ImageError, Result, bad, not_found};
use crate::store::images;

pub fn routes() -> Router<State> {
    Router::new().route("/v2/images/{id}/tags/{tag}", put(add).delete(remove))
}

async fn add(
    AxState(svc): AxState<State>,
    stratus_core::auth::Auth(ctx): stratus_core::auth::Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "modify_image").await?;
    if tag.is_empty() || tag.chars().count() > 255 {
        return Err(bad("Tags must be 1 to 255 characters long."));
    }
    let tags = images::tags(&svc.db, &img.id).await?;
    if !tags.contains(&tag) && tags.len() >= super::images_api::MAX_TAGS {
        return Err(ImageError::TooLarge(format!("Maximum number of tags exceeded: {}.", super::images_api::MAX_TAGS)));
    }
    images::add_tag(&svc.db, &img.id, &tag).await?;
    images::touch(&svc.db, &img.id).await?;
    Ok(no_content())
}

async fn remove(
    AxState(svc): AxState<State>,
    stratus_core::auth::Auth(ctx): stratus_core::auth::Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "modify_image").await?;
    if !images::remove_tag(&svc.db, &img.id, &tag).await? {
        return Err(not_found(format!("Tag {tag} not found")));
    }
    images::touch(&svc.db, &img.id).await?;
    Ok(no_content())
}
