//! `/v2/images/{id}/members`: sharing an image with other projects.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::Json;

use super::{no_content, ok, time};
use crate::State;
use crate::error::{ImageError, Result, bad, forbidden, not_found};
use crate::store::members::{self, Member};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2/images/{id}/members", get(list).post(add))
        .route("/v2/images/{id}/members/{member}", get(show).put(update).delete(remove))
}

/// Glance's image_member_quota default.
const MAX_MEMBERS: u64 = 128;

fn view(m: &Member) -> Value {
    json!({
        "image_id": m.image_id,
        "member_id": m.member,
        "status": m.status,
        "created_at": time(m.created_at),
        "updated_at": time(m.updated_at),
        "schema": "/v2/schemas/member",
    })
}

fn member_not_found(image: &str, member: &str) -> ImageError {
    not_found(format!("{member} is not a member of image {image}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMember {
    member: String,
}

async fn add(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<AddMember>,
) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "add_member").await?;
    if img.visibility != "shared" {
        return Err(forbidden(format!("Image {id} is not shared: only shared images can have members.")));
    }
    if body.member.is_empty() || body.member.chars().count() > 255 {
        return Err(bad("member must be a project id of 1 to 255 characters"));
    }
    if members::count(&svc.db, &id).await? >= MAX_MEMBERS {
        return Err(ImageError::TooLarge(format!("Maximum number of image members exceeded: {MAX_MEMBERS}.")));
    }
    let m = members::add(&svc.db, &id, &body.member).await?;
    Ok(ok(view(&m)))
}

async fn list(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let (img, target) = svc.authorized(&ctx, &id, "get_members").await?;
    if img.visibility != "shared" {
        return Err(forbidden(format!("Image {id} is not shared: only shared images have members.")));
    }
    let all = members::list(&svc.db, &id).await?;
    let owner = img.owner.is_some() && img.owner == ctx.project_id;
    let admin = super::is_admin(&svc, &ctx);
    // a member sees only its own membership
    let shown: Vec<Value> =
        all.iter().filter(|m| owner || admin || Some(&m.member) == ctx.project_id.as_ref()).map(view).collect();
    let _ = target;
    Ok(ok(json!({"members": shown, "schema": "/v2/schemas/members"})))
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, member)): Path<(String, String)>,
) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "get_member").await?;
    let owner = img.owner.is_some() && img.owner == ctx.project_id;
    if !owner && !super::is_admin(&svc, &ctx) && ctx.project_id.as_deref() != Some(member.as_str()) {
        return Err(member_not_found(&id, &member));
    }
    let m = members::get(&svc.db, &id, &member).await?.ok_or_else(|| member_not_found(&id, &member))?;
    Ok(ok(view(&m)))
}

/// Clients (openstacksdk) send the whole member back; only `status` counts.
#[derive(Deserialize)]
struct UpdateMember {
    status: String,
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, member)): Path<(String, String)>,
    Json(body): Json<UpdateMember>,
) -> Result<Response> {
    let (img, member_of) = svc.visible(&ctx, &id).await?;
    let target = svc.target(&img, &ctx, member_of);
    if members::get(&svc.db, &id, &member).await?.is_none() {
        return Err(member_not_found(&id, &member));
    }
    // only the member itself decides (Glance's modify_member: project_id:%(member_id)s)
    let target = json!({"project_id": target["project_id"], "member_id": member, "visibility": img.visibility});
    svc.enforce(&ctx, "modify_member", &target)?;
    if !["pending", "accepted", "rejected"].contains(&body.status.as_str()) {
        return Err(bad(format!(
            "Provided object does not match schema 'member': '{}' is not one of ['pending', 'accepted', 'rejected']",
            body.status
        )));
    }
    members::set_status(&svc.db, &id, &member, &body.status).await?;
    let m = members::get(&svc.db, &id, &member).await?.ok_or_else(|| member_not_found(&id, &member))?;
    Ok(ok(view(&m)))
}

async fn remove(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, member)): Path<(String, String)>,
) -> Result<Response> {
    let (_img, _) = svc.authorized(&ctx, &id, "delete_member").await?;
    if !members::delete(&svc.db, &id, &member).await? {
        return Err(member_not_found(&id, &member));
    }
    Ok(no_content())
}
