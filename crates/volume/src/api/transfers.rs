//! Volume transfers: `/v3/os-volume-transfer` and, from 3.55,
//! `/v3/volume-transfers`: create (the volume goes `awaiting-transfer`;
//! the answer holds the auth key, once), list, detail, show, delete (the
//! volume back to `available`), and accept with the auth key (the volume and
//! its snapshots change project, within the receiver's quotas).
//!
//! Only a random salt and the SHA-256 of salt and key are kept.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::{get, post};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::api::list::{self, ListQuery};
use crate::api::{Body, accepted, accepted_empty, authorize, body_object, is_admin, now, ok, project_of};
use crate::api::{check_id, check_len, opt_bool, opt_str};
use crate::entity::transfer::{self, Model as Transfer};
use crate::entity::{snapshot, volume};
use crate::error::{Result, bad, invalid_volume, missing, not_found};
use crate::model::{snapshot_status as ss, volume_status as vs};
use crate::store::volumes as store_v;
use crate::{State, VolumeService};

pub fn routes() -> Router<State> {
    let mut r = Router::new();
    for base in ["/v3/os-volume-transfer", "/v3/volume-transfers"] {
        r = r
            .route(base, get(list_summary).post(create))
            .route(&format!("{base}/detail"), get(list_detail))
            .route(&format!("{base}/{{id}}"), get(show).delete(delete))
            .route(&format!("{base}/{{id}}/accept"), post(accept));
    }
    r
}

/// The collection a request named (`os-volume-transfer` or
/// `volume-transfers`); the second needs 3.55.
fn collection(uri: &Uri, mv: Microversion) -> Result<&'static str> {
    if uri.path().starts_with("/v3/volume-transfers") {
        if !mv.at_least(3, 55) {
            return Err(not_found("The resource could not be found."));
        }
        Ok("volume-transfers")
    } else {
        Ok("os-volume-transfer")
    }
}

fn links(svc: &VolumeService, coll: &str, id: &str) -> Value {
    json!([
        {"href": format!("{}/v3/{coll}/{id}", svc.base_url), "rel": "self"},
        {"href": format!("{}/{coll}/{id}", svc.base_url), "rel": "bookmark"},
    ])
}

fn summary(svc: &VolumeService, coll: &str, t: &Transfer) -> Value {
    json!({"id": t.id, "name": t.name, "volume_id": t.volume_id, "links": links(svc, coll, &t.id)})
}

fn detail(svc: &VolumeService, coll: &str, mv: Microversion, t: &Transfer) -> Value {
    let mut o = summary(svc, coll, t);
    o["created_at"] = json!(t.created_at);
    if mv.at_least(3, 55) {
        o["no_snapshots"] = json!(t.no_snapshots);
    }
    if mv.at_least(3, 57) {
        o["destination_project_id"] = json!(t.destination_project_id);
        o["source_project_id"] = json!(t.source_project_id);
        o["accepted"] = json!(t.accepted);
    }
    o
}

fn random_string(n: usize) -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(n).map(char::from).collect()
}

fn crypt(salt: &str, key: &str) -> String {
    let d = Sha256::digest(format!("{salt}{key}").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal, in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The transfer `id` if the caller's project gave it (or they are an admin).
async fn load(svc: &VolumeService, ctx: &AuthContext, id: &str, rule: &str) -> Result<Transfer> {
    check_id("Transfer", id)?;
    let t = transfer::Entity::find_by_id(id.to_string())
        .one(&svc.db.read)
        .await?
        .filter(|t| is_admin(svc, ctx) || t.source_project_id == project_of(ctx))
        .ok_or_else(|| missing("Transfer", id))?;
    authorize(svc, ctx, rule, &t.source_project_id)?;
    Ok(t)
}

// --- list -----------------------------------------------------------------

const SORTABLE: &[&str] = &["id", "name", "created_at", "volume_id"];

async fn do_list(
    svc: &State,
    ctx: &AuthContext,
    mv: Microversion,
    uri: &Uri,
    pairs: &[(String, String)],
    detailed: bool,
) -> Result<Value> {
    let coll = collection(uri, mv)?;
    let mut q = ListQuery::parse(pairs)?;
    let admin = is_admin(svc, ctx);
    let project = project_of(ctx);
    authorize(svc, ctx, "volume:get_all_transfers", &project)?;
    if !admin {
        q.filters.retain(|(k, _)| ["name", "volume_id", "name~"].contains(&k.as_str()));
    }
    let asked_project = q.take("project_id").or(q.take("source_project_id"));
    let mut find = transfer::Entity::find();
    if !(admin && q.all_tenants) {
        let scope = if admin { asked_project.unwrap_or(project) } else { project };
        find = find.filter(transfer::Column::SourceProjectId.eq(scope));
    }
    let rows = find.all(&svc.db.read).await?;
    let items: Vec<Value> = rows.iter().map(|t| detail(svc, coll, Microversion(3, 57).max(mv), t)).collect();
    let base = format!("{}/v3/{coll}{}", svc.base_url, if detailed { "/detail" } else { "" });
    let (page, links, _) = list::page(items, &q, SORTABLE, &base)?;
    let page: Vec<Value> = page
        .iter()
        .filter_map(|v| v.get("id").and_then(Value::as_str))
        .filter_map(|id| rows.iter().find(|t| t.id == id))
        .map(|t| if detailed { detail(svc, coll, mv, t) } else { summary(svc, coll, t) })
        .collect();
    let mut out = json!({"transfers": page});
    if let Some(l) = links {
        out["transfers_links"] = l;
    }
    Ok(out)
}

async fn list_summary(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    Ok(ok(do_list(&svc, &ctx, mv, &uri, &q, false).await?))
}

async fn list_detail(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    Ok(ok(do_list(&svc, &ctx, mv, &uri, &q, true).await?))
}

// --- create, show, delete -------------------------------------------------------

async fn create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    uri: Uri,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let coll = collection(&uri, mv)?;
    let obj = body_object(&body, "transfer")?;
    let project = project_of(&ctx);
    authorize(&svc, &ctx, "volume:create_transfer", &project)?;
    let volume_id =
        opt_str(obj, "volume_id")?.ok_or_else(|| bad("Invalid input received: 'volume_id' must be specified"))?;
    let name = opt_str(obj, "name")?.map(|n| n.trim().to_string());
    check_len("name", &name)?;
    let no_snapshots = if mv.at_least(3, 55) { opt_bool(obj, "no_snapshots")? } else { false };
    check_id("Volume", &volume_id)?;
    let v = store_v::visible(&svc.db.read, &volume_id, &project, is_admin(&svc, &ctx)).await?;
    if v.status != vs::AVAILABLE {
        return Err(invalid_volume("status must be available"));
    }
    if !no_snapshots {
        let snaps =
            snapshot::Entity::find().filter(snapshot::Column::VolumeId.eq(v.id.as_str())).all(&svc.db.read).await?;
        if let Some(s) = snaps.iter().find(|s| s.status != ss::AVAILABLE) {
            return Err(bad(format!("Invalid snapshot: snapshot {} status must be available", s.id)));
        }
    }
    let auth_key = random_string(16);
    let salt = random_string(16);
    let t = Transfer {
        id: uuid::Uuid::new_v4().to_string(),
        volume_id: v.id.clone(),
        name,
        crypt_hash: crypt(&salt, &auth_key),
        salt,
        source_project_id: v.project_id.clone(),
        destination_project_id: None,
        accepted: false,
        no_snapshots,
        created_at: now(),
    };
    let txn = svc.db.write.begin().await?;
    if !store_v::transition(&txn, &v.id, &[vs::AVAILABLE], vs::AWAITING_TRANSFER).await? {
        txn.rollback().await?;
        return Err(invalid_volume("status must be available"));
    }
    transfer::ActiveModel::from(t.clone()).insert(&txn).await?;
    txn.commit().await?;
    let mut view = detail(&svc, coll, mv, &t);
    view["auth_key"] = json!(auth_key);
    Ok(accepted(json!({"transfer": view})))
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response> {
    let coll = collection(&uri, mv)?;
    let t = load(&svc, &ctx, &id, "volume:get_transfer").await?;
    Ok(ok(json!({"transfer": detail(&svc, coll, mv, &t)})))
}

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response> {
    collection(&uri, mv)?;
    let t = load(&svc, &ctx, &id, "volume:delete_transfer").await?;
    let txn = svc.db.write.begin().await?;
    transfer::Entity::delete_by_id(t.id.clone()).exec(&txn).await?;
    store_v::transition(&txn, &t.volume_id, &[vs::AWAITING_TRANSFER], vs::AVAILABLE).await?;
    txn.commit().await?;
    Ok(accepted_empty())
}

// --- accept ---------------------------------------------------------------

async fn accept(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    uri: Uri,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let coll = collection(&uri, mv)?;
    let obj = body_object(&body, "accept")?;
    let auth_key =
        opt_str(obj, "auth_key")?.ok_or_else(|| bad("Invalid input received: 'auth_key' must be specified"))?;
    let project = project_of(&ctx);
    authorize(&svc, &ctx, "volume:accept_transfer", &project)?;
    if project.is_empty() {
        return Err(bad("A project-scoped token is required to accept a transfer."));
    }
    check_id("Transfer", &id)?;
    // any project may accept a transfer it knows the id and key of
    let t =
        transfer::Entity::find_by_id(id.clone()).one(&svc.db.read).await?.ok_or_else(|| missing("Transfer", &id))?;
    if !same(&crypt(&t.salt, &auth_key), &t.crypt_hash) {
        return Err(bad(format!("Invalid auth key: Attempt to transfer {id} with invalid auth key.")));
    }
    let v = store_v::get(&svc.db.read, &t.volume_id).await?.ok_or_else(|| missing("Volume", &t.volume_id))?;
    if v.status != vs::AWAITING_TRANSFER {
        return Err(invalid_volume("status must be awaiting-transfer"));
    }
    let snaps = if t.no_snapshots {
        Vec::new()
    } else {
        snapshot::Entity::find().filter(snapshot::Column::VolumeId.eq(v.id.as_str())).all(&svc.db.read).await?
    };
    let type_name = match &v.volume_type_id {
        Some(tid) => crate::store::types::get_by_id(&svc.db.read, tid).await?.map(|t| t.name),
        None => None,
    };
    let snap_gb: i64 = snaps.iter().map(|s| s.size).sum();
    let mut deltas: Vec<(String, i64)> = vec![
        ("volumes".into(), 1),
        ("gigabytes".into(), v.size + snap_gb),
        ("per_volume_gigabytes".into(), v.size),
        ("snapshots".into(), snaps.len() as i64),
    ];
    if let Some(n) = &type_name {
        deltas.push((format!("volumes_{n}"), 1));
        deltas.push((format!("gigabytes_{n}"), v.size + snap_gb));
        deltas.push((format!("snapshots_{n}"), snaps.len() as i64));
    }
    let refs: Vec<(&str, i64)> = deltas.iter().map(|(k, d)| (k.as_str(), *d)).collect();

    let txn = svc.db.write.begin().await?;
    crate::store::quotas::check(&txn, &svc.cfg.volume, &project, &refs).await?;
    let gone = transfer::Entity::delete_by_id(t.id.clone()).exec(&txn).await?.rows_affected;
    let moved = volume::Entity::update_many()
        .col_expr(volume::Column::ProjectId, Expr::value(project.clone()))
        .col_expr(volume::Column::UserId, Expr::value(ctx.user_id.clone()))
        .col_expr(volume::Column::Status, Expr::value(vs::AVAILABLE))
        .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
        .filter(volume::Column::Id.eq(v.id.as_str()))
        .filter(volume::Column::Status.eq(vs::AWAITING_TRANSFER))
        .exec(&txn)
        .await?
        .rows_affected;
    if gone != 1 || moved != 1 {
        txn.rollback().await?;
        return Err(bad("Invalid transfer: it was accepted or deleted meanwhile."));
    }
    if !t.no_snapshots {
        snapshot::Entity::update_many()
            .col_expr(snapshot::Column::ProjectId, Expr::value(project.clone()))
            .col_expr(snapshot::Column::UserId, Expr::value(ctx.user_id.clone()))
            .col_expr(snapshot::Column::UpdatedAt, Expr::value(now()))
            .filter(snapshot::Column::VolumeId.eq(v.id.as_str()))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(accepted(json!({"transfer": summary(&svc, coll, &t)})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_and_compare() {
        let key = random_string(16);
        assert_eq!(key.len(), 16);
        let salt = random_string(16);
        let h = crypt(&salt, &key);
        assert_eq!(h.len(), 64);
        assert!(same(&h, &crypt(&salt, &key)));
        assert!(!same(&h, &crypt(&salt, "wrong")));
        assert!(!same("ab", "abc"));
    }
}
