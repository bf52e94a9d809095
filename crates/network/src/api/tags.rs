//! `/v2.0/{resources}/{id}/tags[/{tag}]` for every resource with standard
//! attributes: list, replace all, remove all, check, add, remove one.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sea_orm::TransactionTrait;
use serde_json::{Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;

use crate::api::{Body, is_admin, no_content, ok, project_of};
use crate::error::{Result, bad, invalid, not_found};
use crate::store::tags;
use crate::{NetworkService, State};

/// Collections with tags: (URL collection, tag type, table).
pub const TAGGED: &[(&str, &str, &str)] = &[
    ("networks", "network", "networks"),
    ("subnets", "subnet", "subnets"),
    ("ports", "port", "ports"),
    ("routers", "router", "routers"),
    ("security-groups", "security_group", "securitygroups"),
    ("floatingips", "floatingip", "floatingips"),
    ("subnetpools", "subnetpool", "subnetpools"),
];

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/{collection}/{id}/tags", get(list).put(replace).delete(remove_all))
        .route("/v2.0/{collection}/{id}/tags/{tag}", get(check).put(add).delete(remove))
}

/// The tag type and table of a collection, and the resource's owner (404 when
/// the caller may not see it); `write`: the caller must own it or be admin.
async fn resolve(
    svc: &NetworkService,
    ctx: &AuthContext,
    collection: &str,
    id: &str,
    write: bool,
) -> Result<(&'static str, &'static str)> {
    let Some((_, kind, table)) = TAGGED.iter().find(|(c, _, _)| *c == collection) else {
        return Err(not_found("HTTPNotFound", format!("The resource could not be found: {collection}")));
    };
    let missing = || not_found("NotFound", format!("{kind} {id} could not be found."));
    let (owner, public) = tags::owner_of(&svc.db.read, table, id).await.map_err(|_| missing())?.ok_or_else(missing)?;
    let mine = owner == project_of(ctx);
    if is_admin(svc, ctx) || mine || (public && !write) {
        Ok((kind, table))
    } else if public {
        Err(crate::error::forbidden(format!("(rule:update_{kind}) is disallowed by policy")))
    } else {
        Err(missing())
    }
}

fn check_tag(t: &str) -> Result<()> {
    if t.is_empty() || t.chars().count() > 255 {
        return Err(invalid("tags", format!("'{t}' is not a valid tag (1 to 255 characters)")));
    }
    Ok(())
}

async fn list(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((c, id)): Path<(String, String)>,
) -> Result<Response> {
    let (kind, _) = resolve(&svc, &ctx, &c, &id, false).await?;
    let t = tags::of(&svc.db.read, kind, std::slice::from_ref(&id)).await?.remove(&id).unwrap_or_default();
    Ok(ok(json!({"tags": t})))
}

async fn replace(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((c, id)): Path<(String, String)>,
    body: Body,
) -> Result<Response> {
    let (kind, table) = resolve(&svc, &ctx, &c, &id, true).await?;
    let list =
        body.0.get("tags").and_then(Value::as_array).ok_or_else(|| bad("Invalid tags body: 'tags' must be a list"))?;
    let mut want = Vec::new();
    for t in list {
        let s = t.as_str().ok_or_else(|| invalid("tags", format!("'{t}' is not a valid string")))?;
        check_tag(s)?;
        want.push(s.to_string());
    }
    let txn = svc.db.write.begin().await?;
    tags::replace(&txn, kind, &id, &want).await?;
    tags::bump(&txn, table, &id).await?;
    txn.commit().await?;
    want.sort();
    want.dedup();
    Ok(ok(json!({"tags": want})))
}

async fn remove_all(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((c, id)): Path<(String, String)>,
) -> Result<Response> {
    let (kind, table) = resolve(&svc, &ctx, &c, &id, true).await?;
    let txn = svc.db.write.begin().await?;
    tags::remove_all(&txn, kind, &id).await?;
    tags::bump(&txn, table, &id).await?;
    txn.commit().await?;
    Ok(no_content())
}

async fn check(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((c, id, tag)): Path<(String, String, String)>,
) -> Result<Response> {
    let (kind, _) = resolve(&svc, &ctx, &c, &id, false).await?;
    if tags::has(&svc.db.read, kind, &id, &tag).await? {
        Ok(no_content())
    } else {
        Err(not_found("TagNotFound", format!("Tag {tag} could not be found for {kind} {id}.")))
    }
}

async fn add(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((c, id, tag)): Path<(String, String, String)>,
) -> Result<Response> {
    let (kind, table) = resolve(&svc, &ctx, &c, &id, true).await?;
    check_tag(&tag)?;
    let txn = svc.db.write.begin().await?;
    tags::add(&txn, kind, &id, &tag).await?;
    tags::bump(&txn, table, &id).await?;
    txn.commit().await?;
    Ok(StatusCode::CREATED.into_response())
}

async fn remove(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((c, id, tag)): Path<(String, String, String)>,
) -> Result<Response> {
    let (kind, table) = resolve(&svc, &ctx, &c, &id, true).await?;
    let txn = svc.db.write.begin().await?;
    if !tags::remove(&txn, kind, &id, &tag).await? {
        return Err(not_found("TagNotFound", format!("Tag {tag} could not be found for {kind} {id}.")));
    }
    tags::bump(&txn, table, &id).await?;
    txn.commit().await?;
    Ok(no_content())
}
