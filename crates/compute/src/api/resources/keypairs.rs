//! `/os-keypairs`: a user's key pairs (import, or generation before 2.92),
//! list, show, delete.
//!
//! Per microversion: `type` (ssh/x509) from 2.2 with 201/204 instead of
//! 200/202; `user_id` (admins acting for another user) from 2.10; paging
//! from 2.35; unknown query parameters refused from 2.75; from 2.92 a public
//! key is required and names may also hold `@` and `.`.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::common::{self, invalid, naive_time, py_repr};
use crate::api::{authorize, ok, project_of};
use crate::error::{ComputeError, Result, bad, not_found};
use crate::store::keypairs::{self, Keypair, NewKeypair, TYPE_SSH, TYPE_X509};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-keypairs", get(index).post(create))
        .route("/v2.1/os-keypairs/{name}", get(show).delete(delete))
}

fn keypair_not_found(name: &str, user_id: &str) -> ComputeError {
    not_found(format!("Keypair {name} not found for user {user_id}"))
}

/// A key pair name as the microversion allows it.
fn keypair_name(v: &Value, mv: Microversion) -> Result<String> {
    let s = common::name("name", v)?;
    let (extra, pattern): (&[u8], &str) =
        if mv.at_least(2, 92) { (b"_- @.", r"^[_\-\@\. a-zA-Z0-9]+$") } else { (b"_- ", r"^[_\- a-zA-Z0-9]+$") };
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b)) {
        return Err(invalid("name", v, &format!("{} does not match '{pattern}'", py_repr(v))));
    }
    Ok(s.trim().to_string())
}

/// The user a request acts for: `user_id` (2.10+) or the caller.
fn target_user(ctx: &AuthContext, mv: Microversion, asked: Option<&str>) -> String {
    match asked {
        Some(u) if mv.at_least(2, 10) => u.to_string(),
        _ => ctx.user_id.clone(),
    }
}

fn check(svc: &ComputeService, ctx: &AuthContext, rule: &str, user_id: &str) -> Result<()> {
    authorize(svc, ctx, &format!("os_compute_api:os-keypairs:{rule}"), &json!({"user_id": user_id}))
}

fn brief(k: &Keypair, mv: Microversion) -> Value {
    let mut v = json!({"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint});
    if mv.at_least(2, 2) {
        v["type"] = json!(k.key_type);
    }
    v
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    let mut allowed = vec!["user_id"];
    if mv.at_least(2, 35) {
        allowed.extend(["limit", "marker"]);
    }
    common::check_query(&q, &allowed, mv.at_least(2, 75))?;
    let user_id = target_user(&ctx, mv, q.get("user_id"));
    check(&svc, &ctx, "index", &user_id)?;
    let mut list = keypairs::list(&svc.db, &user_id).await?;
    let mut body = Map::new();
    if mv.at_least(2, 35) {
        let (limit, marker) = common::limit_marker(&q)?;
        if let Some(m) = &marker {
            let pos =
                list.iter().position(|k| &k.name == m).ok_or_else(|| bad(format!("Marker {m} could not be found.")))?;
            list.drain(..=pos);
        }
        list.truncate(limit);
        let links =
            common::next_links(&svc, "os-keypairs", &q, list.len(), limit, list.last().map(|k| k.name.as_str()));
        if !links.is_empty() {
            body.insert("keypairs_links".into(), json!(links));
        }
    }
    body.insert("keypairs".into(), json!(list.iter().map(|k| json!({"keypair": brief(k, mv)})).collect::<Vec<_>>()));
    Ok(ok(Value::Object(body)))
}

async fn show(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(name): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    common::check_query(&q, &["user_id"], mv.at_least(2, 75))?;
    let user_id = target_user(&ctx, mv, q.get("user_id"));
    check(&svc, &ctx, "show", &user_id)?;
    let k = keypairs::get(&svc.db, &user_id, &name).await?.ok_or_else(|| keypair_not_found(&name, &user_id))?;
    let mut v = brief(&k, mv);
    v["user_id"] = json!(k.user_id);
    v["created_at"] = json!(naive_time(k.created_at));
    v["deleted"] = json!(false);
    v["deleted_at"] = Value::Null;
    v["updated_at"] = Value::Null;
    v["id"] = json!(k.id);
    Ok(ok(json!({"keypair": v})))
}

async fn delete(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(name): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    common::check_query(&q, &["user_id"], mv.at_least(2, 75))?;
    let user_id = target_user(&ctx, mv, q.get("user_id"));
    check(&svc, &ctx, "delete", &user_id)?;
    if !keypairs::delete(&svc.db, &user_id, &name).await? {
        return Err(keypair_not_found(&name, &user_id));
    }
    Ok(if mv.at_least(2, 2) { StatusCode::NO_CONTENT } else { StatusCode::ACCEPTED }.into_response())
}

async fn create(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Json(body): Json<Value>) -> Result<Response> {
    let kp = common::the_object(&body, "keypair")?;
    let name = kp.get("name").map(|v| keypair_name(v, mv)).transpose()?;
    let key_type = match kp.get("type") {
        Some(v) if mv.at_least(2, 2) => common::one_of("type", v, &[TYPE_SSH, TYPE_X509])?.to_string(),
        _ => TYPE_SSH.to_string(),
    };
    let public_key = kp.get("public_key").map(|v| common::string("public_key", v, 0, usize::MAX)).transpose()?;
    let asked_user = match kp.get("user_id") {
        // Nova bounds it by its column only; so does this
        Some(v) if mv.at_least(2, 10) => Some(common::string("user_id", v, 0, 255)?.to_string()),
        _ => None,
    };
    common::required(kp, Some("keypair"), "name")?;
    if mv.at_least(2, 92) {
        common::required(kp, Some("keypair"), "public_key")?;
    }
    let mut allowed = vec!["name", "public_key"];
    if mv.at_least(2, 2) {
        allowed.push("type");
    }
    if mv.at_least(2, 10) {
        allowed.push("user_id");
    }
    common::no_extra(kp, Some("keypair"), &allowed)?;
    let name = name.unwrap_or_default();
    let user_id = asked_user.filter(|u| !u.is_empty()).unwrap_or_else(|| ctx.user_id.clone());
    check(&svc, &ctx, "create", &user_id)?;
    let project = project_of(&ctx)?.to_string();

    let (public_key, fingerprint, private_key) = match public_key {
        Some(pk) => {
            let fp =
                if key_type == TYPE_X509 { keypairs::x509_fingerprint(pk)? } else { keypairs::ssh_fingerprint(pk)? };
            (pk.to_string(), fp, None)
        }
        None => {
            let kt = key_type.clone();
            let uid = user_id.clone();
            let (private, public, fp) = tokio::task::spawn_blocking(move || {
                if kt == TYPE_X509 { keypairs::generate_x509(&uid) } else { keypairs::generate_ssh() }
            })
            .await
            .map_err(|e| ComputeError::Internal(anyhow::anyhow!("key generation task: {e}")))??;
            (public, fp, Some(private))
        }
    };
    let new = NewKeypair { user_id: user_id.clone(), name, key_type, public_key, fingerprint };
    let k = keypairs::create(&svc.db, &svc.cfg, &project, new).await?;
    let mut v = brief(&k, mv);
    v["user_id"] = json!(k.user_id);
    if let Some(p) = private_key {
        v["private_key"] = json!(p);
    }
    let status = if mv.at_least(2, 2) { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(json!({"keypair": v}))).into_response())
}
