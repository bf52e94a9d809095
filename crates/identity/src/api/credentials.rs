//! `/v3/credentials`: opaque secrets a user stores (EC2 keys, TOTP seeds, ...).

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::{created, no_content, ok};
use crate::error::{IdentityError, Result, bad};
use crate::store::misc::{self, Credential};
use crate::util::{Obj, member, with_extra};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/credentials", get(list).post(create))
        .route("/v3/credentials/{credential_id}", get(show).patch(update).delete(remove))
}

const KNOWN: &[&str] = &["id", "user_id", "project_id", "type", "blob", "links"];

/// Blob keys that tie an EC2 credential to a delegation; an update may not change them.
const SCOPE_KEYS: &[&str] = &["trust_id", "app_cred_id", "access_token_id", "access_id"];

pub fn render(s: &Identity, c: &Credential) -> Value {
    with_extra(
        json!({
            "id": c.id,
            "user_id": c.user_id,
            "project_id": c.project_id,
            "type": c.r#type,
            "blob": c.blob,
            "links": s.link(&format!("credentials/{}", c.id)),
        }),
        &c.extra,
    )
}

fn target(c: &Credential) -> Value {
    let mut t = json!({
        "target.credential.id": c.id,
        "target.credential.user_id": c.user_id,
        "target.credential.type": c.r#type,
    });
    if let Some(p) = &c.project_id {
        t["target.credential.project_id"] = json!(p);
    }
    t
}

/// A required string attribute (empty allowed, as Keystone's schema allows it).
fn required(o: &Obj, k: &str) -> Result<String> {
    match o.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        None => Err(bad(format!("Invalid input for field '{}.{k}': '{k}' is a required property.", o.name))),
        Some(_) => Err(bad(format!("Invalid input for field '{}.{k}': expected a string.", o.name))),
    }
}

/// An optional string attribute that may not be null.
fn string(o: &Obj, k: &str) -> Result<Option<String>> {
    match o.get(k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("Invalid input for field '{}.{k}': expected a string.", o.name))),
    }
}

/// `project_id`: absent None, null Some(None).
fn project_of(o: &Obj) -> Result<Option<Option<String>>> {
    match o.get("project_id") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(bad("Invalid input for field 'credential.project_id': expected a string or null.")),
    }
}

fn is_ec2(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("ec2")
}

/// An EC2 blob: a JSON object with an `access` key.
fn ec2_blob(blob: &str) -> Result<Map<String, Value>> {
    let v: Value = serde_json::from_str(blob).map_err(|_| bad("Invalid blob in credential"))?;
    let Value::Object(m) = v else {
        return Err(bad("Invalid input for field 'credential.blob': expected a JSON object."));
    };
    match m.get("access") {
        Some(Value::String(_)) => Ok(m),
        None | Some(Value::Null) => {
            Err(bad("Invalid input for field 'credential.blob': Expecting to find access in credential."))
        }
        Some(_) => Err(bad("Invalid input for field 'credential.blob': 'access' must be a string.")),
    }
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Tokens made from an application credential only reach credentials of their
/// own project (credentials without a project are out of bounds).
fn check_project_scope(ctx: &AuthContext, project_id: Option<&str>) -> Result<()> {
    if ctx.application_credential_id.is_some() && project_id != ctx.project_id.as_deref() {
        return Err(IdentityError::Forbidden(
            "You are not authorized to perform the requested action: Credential project does not match the \
             project scope of the delegated token."
                .into(),
        ));
    }
    Ok(())
}

async fn list(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let t = if ctx.system_scope { json!({}) } else { json!({"target.credential.user_id": ctx.user_id}) };
    s.enforce(&ctx, "identity:list_credentials", t)?;
    let creds = misc::list_credentials(&s.db, q.get("user_id"), q.get("type")).await?;
    // only what the caller may see one by one
    let items = creds
        .iter()
        .filter(|c| {
            s.policy.allowed(&ctx, "identity:get_credential", &target(c))
                && check_project_scope(&ctx, c.project_id.as_deref()).is_ok()
        })
        .map(|c| render(&s, c))
        .collect();
    Ok(ok(s.collection("credentials", "credentials", items)))
}

async fn create(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    let c = member(&body, "credential")?;
    let user_id = required(&c, "user_id")?;
    let kind = required(&c, "type")?;
    let mut blob = required(&c, "blob")?;
    let project_id = project_of(&c)?.flatten();
    if kind == "ec2" && project_id.is_none() {
        return Err(bad("Invalid input for field 'credential.project_id': it is required for an ec2 credential."));
    }
    let mut t = json!({"target.credential.user_id": user_id, "target.credential.type": kind});
    if let Some(p) = &project_id {
        t["target.credential.project_id"] = json!(p);
    }
    s.enforce(&ctx, "identity:create_credential", t)?;
    if is_ec2(&kind) && super::appcreds::restricted_app_cred(&s, &ctx).await? {
        return Err(IdentityError::Forbidden(
            "You are not authorized to perform the requested action: Using method 'application_credential' is \
             not allowed for managing additional credentials."
                .into(),
        ));
    }
    check_project_scope(&ctx, project_id.as_deref())?;
    let id = if is_ec2(&kind) {
        let mut b = ec2_blob(&blob)?;
        let id = sha256_hex(b.get("access").and_then(Value::as_str).unwrap_or_default());
        // an EC2 credential made with an application credential's token keeps
        // that delegation when it is used to authenticate
        if let Some(ac) = &ctx.application_credential_id {
            b.insert("app_cred_id".into(), json!(ac));
            blob = Value::Object(b).to_string();
        }
        Some(id)
    } else {
        None
    };
    let cred = misc::create_credential(&s.db, id, &user_id, project_id, &kind, &blob, &c.extra(KNOWN)).await?;
    Ok(created(json!({"credential": render(&s, &cred)})))
}

async fn show(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let c = misc::get_credential(&s.db, &id).await?;
    s.enforce(&ctx, "identity:get_credential", target(&c))?;
    check_project_scope(&ctx, c.project_id.as_deref())?;
    Ok(ok(json!({"credential": render(&s, &c)})))
}

async fn update(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>, Json(body): Json<Value>) -> Result<Response> {
    let cur = misc::get_credential(&s.db, &id).await?;
    s.enforce(&ctx, "identity:update_credential", target(&cur))?;
    check_project_scope(&ctx, cur.project_id.as_deref())?;
    let c = member(&body, "credential")?;
    if c.map.is_empty() {
        return Err(bad("Invalid input for field 'credential': it must have at least one property."));
    }
    if let Some(v) = c.get("id")
        && v.as_str() != Some(id.as_str())
    {
        return Err(bad("Invalid input for field 'credential.id': it cannot be changed."));
    }
    let user_id = string(&c, "user_id")?;
    let kind = string(&c, "type")?;
    let blob = string(&c, "blob")?;
    let project_id = project_of(&c)?;
    if is_ec2(&cur.r#type)
        && let Some(b) = &blob
    {
        let new = ec2_blob(b)?;
        let old = serde_json::from_str::<Map<String, Value>>(&cur.blob).unwrap_or_default();
        for k in SCOPE_KEYS {
            if old.get(*k) != new.get(*k) {
                return Err(bad(format!(
                    "Invalid input for field 'credential.blob': {k} can not be updated for credential."
                )));
            }
        }
    }
    let new_project = match &project_id {
        Some(p) => p.clone(),
        None => cur.project_id.clone(),
    };
    if kind.as_deref().is_some_and(is_ec2) && new_project.is_none() {
        return Err(bad("Invalid input for field 'credential.project_id': it is required for an ec2 credential."));
    }
    // the caller must also be allowed on the credential as it will be
    let mut merged = cur.clone();
    if let Some(u) = &user_id {
        merged.user_id = u.clone();
    }
    if let Some(k) = &kind {
        merged.r#type = k.clone();
    }
    merged.project_id = new_project;
    s.enforce(&ctx, "identity:update_credential", target(&merged))?;
    check_project_scope(&ctx, merged.project_id.as_deref())?;
    let fields: Map<String, Value> = c
        .map
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "id" | "links"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let updated = misc::update_credential(&s.db, &id, &fields).await?;
    Ok(ok(json!({"credential": render(&s, &updated)})))
}

async fn remove(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let c = misc::get_credential(&s.db, &id).await?;
    s.enforce(&ctx, "identity:delete_credential", target(&c))?;
    check_project_scope(&ctx, c.project_id.as_deref())?;
    misc::delete_credential(&s.db, &id).await?;
    Ok(no_content())
}
