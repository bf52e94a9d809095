//! `/v3/auth/*`: issuing tokens (password, token, application credential),
//! validating, checking and revoking them, and what a token may reach.

use axum::extract::State as S;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json as AxJson, Router};
use serde_json::{Value, json};
use sha2::Digest;
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::{SUBJECT_TOKEN, flag, no_content};
use crate::error::{IdentityError, Result, bad};
use crate::store::assignment::{self, Scope};
use crate::store::{appcred, catalog, resource, revoke, user};
use crate::token::{METHOD_APP_CRED, METHOD_PASSWORD, METHOD_TOKEN, Payload};
use crate::util::now_us;
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/auth/tokens", get(validate).post(issue).head(check).delete(revoke_token))
        .route("/v3/auth/catalog", get(auth_catalog))
        .route("/v3/auth/projects", get(auth_projects))
        .route("/v3/auth/domains", get(auth_domains))
        .route("/v3/auth/system", get(auth_system))
}

fn unauthorized(why: &str) -> IdentityError {
    IdentityError::Unauthorized(why.to_string())
}

fn obj<'a>(v: &'a Value, path: &str) -> Result<&'a serde_json::Map<String, Value>> {
    v.as_object().ok_or_else(|| bad(format!("Invalid input for field '{path}': expected an object.")))
}

fn s<'a>(v: &'a serde_json::Map<String, Value>, k: &str, path: &str) -> Result<Option<&'a str>> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(x)) => Ok(Some(x.as_str())),
        Some(_) => Err(bad(format!("Invalid input for field '{path}.{k}': expected a string."))),
    }
}

/// A domain named by id or name.
async fn domain_ref(st: &Identity, v: &Value, path: &str) -> Result<resource::Project> {
    let o = obj(v, path)?;
    if let Some(id) = s(o, "id", path)? {
        return resource::get_domain(&st.db, id).await.map_err(|_| unauthorized("domain not found"));
    }
    if let Some(name) = s(o, "name", path)? {
        return resource::domain_by_name(&st.db, name).await.map_err(|_| unauthorized("domain not found"));
    }
    Err(bad(format!("Invalid input for field '{path}': expecting id or name.")))
}

/// The user named in a password or application-credential method.
async fn user_ref(st: &Identity, v: &Value, path: &str) -> Result<user::User> {
    let o = obj(v, path)?;
    if let Some(id) = s(o, "id", path)? {
        return user::find(&st.db, id).await?.ok_or_else(|| unauthorized("user not found"));
    }
    let name =
        s(o, "name", path)?.ok_or_else(|| bad(format!("Invalid input for field '{path}': expecting id or name.")))?;
    let dom = o.get("domain").ok_or_else(|| bad(format!("Expecting to find domain in {path}.")))?;
    let d = domain_ref(st, dom, &format!("{path}.domain")).await?;
    user::by_name(&st.db, &d.id, name).await?.ok_or_else(|| unauthorized("user not found"))
}

async fn check_user_usable(st: &Identity, u: &user::User) -> Result<()> {
    if !u.enabled {
        return Err(unauthorized("user disabled"));
    }
    let d = resource::get(&st.db, &u.domain_id).await?;
    if !d.is_some_and(|d| d.enabled) {
        return Err(unauthorized("user's domain disabled"));
    }
    Ok(())
}

async fn password_method(st: &Identity, v: &Value) -> Result<user::User> {
    let o = obj(v, "auth.identity.password")?;
    let uref = o.get("user").ok_or_else(|| bad("Expecting to find user in auth.identity.password."))?;
    let u = user_ref(st, uref, "auth.identity.password.user").await?;
    let password = s(obj(uref, "auth.identity.password.user")?, "password", "auth.identity.password.user")?
        .ok_or_else(|| bad("Expecting to find password in auth.identity.password.user."))?;
    let idc = &st.cfg.identity;
    let now = now_us();
    if idc.lockout_failure_attempts > 0
        && u.failed_auth_count >= idc.lockout_failure_attempts as i32
        && u.failed_auth_at.is_some_and(|t| t + idc.lockout_duration * 1_000_000 > now)
    {
        return Err(unauthorized("user locked out"));
    }
    let good = match &u.password_hash {
        Some(h) => user::verify_password(password, h).await,
        None => false,
    };
    if !good {
        if idc.lockout_failure_attempts > 0 {
            user::record_auth_result(&st.db, &u, false).await?;
        }
        return Err(unauthorized("wrong password"));
    }
    check_user_usable(st, &u).await?;
    if u.password_expires_at.is_some_and(|e| e <= now) {
        return Err(unauthorized("password expired"));
    }
    if idc.lockout_failure_attempts > 0 && u.failed_auth_count > 0 {
        user::record_auth_result(&st.db, &u, true).await?;
    }
    Ok(u)
}

async fn app_cred_method(st: &Identity, v: &Value) -> Result<(user::User, appcred::AppCred)> {
    let path = "auth.identity.application_credential";
    let o = obj(v, path)?;
    let secret = s(o, "secret", path)?.ok_or_else(|| bad(format!("Expecting to find secret in {path}.")))?;
    // a secret checked moments ago needs no second check (cleared on any local change)
    let memo_key = s(o, "id", path)?.map(|id| {
        let digest: [u8; 32] = sha2::Sha256::digest(secret.as_bytes()).into();
        (id.to_string(), digest)
    });
    if let Some(k) = &memo_key
        && let Some(hit) = st.tokens.app_cred_checks.get(k)
        && hit.1.expires_at.is_none_or(|e| e > now_us())
    {
        return Ok((hit.0.clone(), hit.1.clone()));
    }
    let cred = if let Some(id) = s(o, "id", path)? {
        appcred::get(&st.db, id).await.map_err(|_| unauthorized("application credential not found"))?
    } else {
        let name = s(o, "name", path)?
            .ok_or_else(|| bad(format!("Invalid input for field '{path}': expecting id or name.")))?;
        let uref = o.get("user").ok_or_else(|| bad(format!("Expecting to find user in {path}.")))?;
        let u = user_ref(st, uref, &format!("{path}.user")).await?;
        appcred::by_name(&st.db, &u.id, name).await?.ok_or_else(|| unauthorized("application credential not found"))?
    };
    if !appcred::verify_secret(secret, &cred.secret_hash).await {
        return Err(unauthorized("wrong application credential secret"));
    }
    if cred.expires_at.is_some_and(|e| e <= now_us()) {
        return Err(unauthorized("application credential expired"));
    }
    let u = user::find(&st.db, &cred.user_id).await?.ok_or_else(|| unauthorized("user not found"))?;
    check_user_usable(st, &u).await?;
    if let Some(k) = memo_key {
        st.tokens.app_cred_checks.insert(k, std::sync::Arc::new((u.clone(), cred.clone())));
    }
    Ok((u, cred))
}

async fn requested_scope(st: &Identity, scope: Option<&Value>) -> Result<Option<Scope>> {
    let Some(scope) = scope else { return Ok(None) };
    if scope.is_null() {
        return Ok(None);
    }
    let o = obj(scope, "auth.scope")?;
    let n = ["project", "domain", "system", "OS-TRUST:trust"].iter().filter(|k| o.contains_key(**k)).count();
    if n > 1 {
        return Err(bad("Invalid input for field 'auth.scope': specify one of project, domain or system."));
    }
    if o.contains_key("OS-TRUST:trust") {
        return Err(IdentityError::Forbidden("Trusts are not supported.".into()));
    }
    if let Some(p) = o.get("project") {
        let po = obj(p, "auth.scope.project")?;
        let proj = if let Some(id) = s(po, "id", "auth.scope.project")? {
            resource::get(&st.db, id)
                .await?
                .filter(|p| !p.is_domain)
                .ok_or_else(|| unauthorized("project not found"))?
        } else {
            let name = s(po, "name", "auth.scope.project")?
                .ok_or_else(|| bad("Invalid input for field 'auth.scope.project': expecting id or name."))?;
            let d = po.get("domain").ok_or_else(|| bad("Expecting to find domain in auth.scope.project."))?;
            let d = domain_ref(st, d, "auth.scope.project.domain").await?;
            resource::project_by_name(&st.db, &d.id, name).await.map_err(|_| unauthorized("project not found"))?
        };
        return Ok(Some(Scope::Project(proj.id)));
    }
    if let Some(d) = o.get("domain") {
        return Ok(Some(Scope::Domain(domain_ref(st, d, "auth.scope.domain").await?.id)));
    }
    if let Some(sys) = o.get("system") {
        if sys.get("all").and_then(Value::as_bool) == Some(true) {
            return Ok(Some(Scope::System));
        }
        return Err(bad("Invalid input for field 'auth.scope.system': expecting {\"all\": true}."));
    }
    Ok(None)
}

/// POST /v3/auth/tokens
async fn issue(S(st): S<State>, q: RawQuery, Json(body): Json<Value>) -> Result<Response> {
    let auth = body.get("auth").ok_or_else(|| bad("Expecting to find auth in request body."))?;
    let identity = auth.get("identity").ok_or_else(|| bad("Expecting to find identity in auth."))?;
    let methods: Vec<String> = match identity.get("methods") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|m| {
                m.as_str().map(str::to_string).ok_or_else(|| bad("Invalid input for field 'auth.identity.methods'."))
            })
            .collect::<Result<_>>()?,
        _ => {
            return Err(bad("Invalid input for field 'auth.identity.methods': a non-empty list is required."));
        }
    };
    let mut user_id: Option<String> = None;
    let mut mask = 0u8;
    let mut parent: Option<Payload> = None;
    let mut cred: Option<appcred::AppCred> = None;
    for m in &methods {
        let section =
            identity.get(m.as_str()).ok_or_else(|| bad(format!("Expecting to find {m} in auth.identity.")))?;
        let uid = match m.as_str() {
            "password" => {
                mask |= METHOD_PASSWORD;
                password_method(&st, section).await?.id
            }
            "token" => {
                mask |= METHOD_TOKEN;
                let id = section
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("Expecting to find id in auth.identity.token."))?;
                let d = st.validate_token(id, false).await.map_err(|_| unauthorized("token invalid"))?;
                if d.payload.app_cred_id.is_some() {
                    return Err(IdentityError::Forbidden(
                        "Rescoping a token made from an application credential is not allowed.".into(),
                    ));
                }
                mask |= d.payload.methods;
                parent = Some(d.payload.clone());
                d.user.id.clone()
            }
            "application_credential" => {
                mask |= METHOD_APP_CRED;
                let (u, c) = app_cred_method(&st, section).await?;
                cred = Some(c);
                u.id
            }
            other => return Err(unauthorized(&format!("unsupported method {other}"))),
        };
        if user_id.as_ref().is_some_and(|x| *x != uid) {
            return Err(unauthorized("methods name different users"));
        }
        user_id = Some(uid);
    }
    let user_id = user_id.ok_or_else(|| unauthorized("no method"))?;
    let mut scope = requested_scope(&st, auth.get("scope")).await?;
    if let Some(c) = &cred {
        if scope.is_some() {
            return Err(unauthorized("an application credential token cannot be scoped otherwise"));
        }
        scope = Some(match (&c.project_id, &c.system) {
            (Some(p), _) => Scope::Project(p.clone()),
            (None, Some(_)) => Scope::System,
            _ => Scope::Unscoped,
        });
    }
    let scope = match scope {
        Some(s) => s,
        None => match &parent {
            // a token for a token keeps its scope unless a new one is asked for
            Some(p) => p.scope(),
            None => {
                // unscoped unless the user's default project works
                let u = user::get(&st.db, &user_id).await?;
                match &u.default_project_id {
                    Some(p)
                        if resource::get(&st.db, p).await?.is_some_and(|x| x.enabled)
                            && !assignment::effective_role_ids(&st.db, &user_id, &Scope::Project(p.clone()))
                                .await?
                                .is_empty() =>
                    {
                        Scope::Project(p.clone())
                    }
                    _ => Scope::Unscoped,
                }
            }
        },
    };
    if let (Some(par), Scope::Unscoped) = (&parent, &scope)
        && par.scope_kind != 0
    {
        // rescoping a scoped token to nothing is not allowed
        return Err(IdentityError::Forbidden("A scoped token cannot be made unscoped.".into()));
    }
    let (token, payload) = st.issue(&user_id, mask, &scope, parent.as_ref(), cred.as_ref())?;
    let data = st.load_token_data(payload).await.map_err(|e| match e {
        IdentityError::Unauthorized(m) => unauthorized(&m),
        other => other,
    })?;
    let body = st.render_token(&data, !flag(&q, "nocatalog")).await?;
    let mut resp = super::created(body);
    if let Ok(v) = HeaderValue::from_str(&token) {
        resp.headers_mut().insert(SUBJECT_TOKEN, v);
    }
    Ok(resp)
}

fn subject(headers: &HeaderMap) -> Result<String> {
    headers
        .get(SUBJECT_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| bad("Expecting to find X-Subject-Token in the request headers."))
}

async fn subject_data(
    st: &Identity,
    token: &str,
    allow_expired: bool,
) -> Result<std::sync::Arc<crate::token::TokenData>> {
    st.validate_token(token, allow_expired).await.map_err(|e| match e {
        IdentityError::Unauthorized(_) => IdentityError::NotFound { kind: "token", id: "the subject token".into() },
        other => other,
    })
}

/// The header a validating service sends to say it enforces access rules
/// (keystonemiddleware sends `1`).
const ACCESS_RULES_HEADER: &str = "openstack-identity-access-rules";

/// As Keystone: a token from a credential with access rules is "not found"
/// for a validator that does not say it enforces them (version 1.0 or later).
fn refuse_rules_unsupported(d: &crate::token::TokenData, headers: &HeaderMap) -> Result<()> {
    if d.access_rules.is_none() {
        return Ok(());
    }
    let supported = headers
        .get(ACCESS_RULES_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .is_some_and(|v| v >= 1.0);
    if supported { Ok(()) } else { Err(IdentityError::NotFoundMsg("Failed to validate token".into())) }
}

/// GET /v3/auth/tokens
async fn validate(S(st): S<State>, Auth(ctx): Auth, q: RawQuery, headers: HeaderMap) -> Result<Response> {
    let token = subject(&headers)?;
    let d = subject_data(&st, &token, flag(&q, "allow_expired")).await?;
    st.enforce(&ctx, "identity:validate_token", json!({"target.token.user_id": d.user.id}))?;
    refuse_rules_unsupported(&d, &headers)?;
    let with_catalog = !flag(&q, "nocatalog");
    // a token's body does not change while it is cached: render it once
    let key = (token.clone(), with_catalog);
    let bytes = match st.tokens.bodies.get(&key) {
        Some(b) => b,
        None => {
            let body = st.render_token(&d, with_catalog).await?;
            let b = axum::body::Bytes::from(serde_json::to_vec(&body).map_err(|e| IdentityError::Internal(e.into()))?);
            if d.payload.expires_at > now_us() {
                st.tokens.bodies.insert(key, b.clone());
            }
            b
        }
    };
    let mut resp = (
        axum::http::StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        bytes,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&token) {
        resp.headers_mut().insert(SUBJECT_TOKEN, v);
    }
    Ok(resp)
}

/// HEAD /v3/auth/tokens
async fn check(S(st): S<State>, Auth(ctx): Auth, q: RawQuery, headers: HeaderMap) -> Result<Response> {
    let token = subject(&headers)?;
    let d = subject_data(&st, &token, flag(&q, "allow_expired")).await?;
    st.enforce(&ctx, "identity:check_token", json!({"target.token.user_id": d.user.id}))?;
    refuse_rules_unsupported(&d, &headers)?;
    let mut resp = axum::http::StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&token) {
        resp.headers_mut().insert(SUBJECT_TOKEN, v);
    }
    Ok(resp)
}

/// DELETE /v3/auth/tokens
async fn revoke_token(S(st): S<State>, Auth(ctx): Auth, headers: HeaderMap) -> Result<Response> {
    let token = subject(&headers)?;
    let d = subject_data(&st, &token, false).await?;
    st.enforce(&ctx, "identity:revoke_token", json!({"target.token.user_id": d.user.id}))?;
    if let Some(audit) = d.payload.audit_ids.first() {
        st.revocations.record(&st.db, revoke::Event { audit_id: Some(audit.clone()), ..Default::default() }).await?;
    }
    st.invalidate_tokens();
    Ok(no_content())
}

async fn auth_catalog(S(st): S<State>, Auth(ctx): Auth) -> Result<AxJson<Value>> {
    st.enforce(&ctx, "identity:get_auth_catalog", json!({}))?;
    if ctx.project_id.is_none() && ctx.domain_id.is_none() && !ctx.system_scope {
        return Err(IdentityError::Forbidden("A scoped token is required to get the catalog.".into()));
    }
    let cat = catalog::catalog(&st.db).await?;
    Ok(AxJson(
        json!({"catalog": cat, "links": {"self": format!("{}/v3/auth/catalog", st.base_url), "previous": null, "next": null}}),
    ))
}

async fn auth_projects(S(st): S<State>, Auth(ctx): Auth) -> Result<AxJson<Value>> {
    st.enforce(&ctx, "identity:get_auth_projects", json!({}))?;
    let ids = assignment::projects_for_user(&st.db, &ctx.user_id).await?;
    let projects = resource::list_projects(
        &st.db,
        &resource::ProjectFilter { ids: Some(ids), enabled: Some(true), ..Default::default() },
    )
    .await?;
    let mut out = Vec::new();
    for p in &projects {
        out.push(super::projects::render(&st, p, Vec::new()));
    }
    Ok(AxJson(st.collection("auth/projects", "projects", out)))
}

async fn auth_domains(S(st): S<State>, Auth(ctx): Auth) -> Result<AxJson<Value>> {
    st.enforce(&ctx, "identity:get_auth_domains", json!({}))?;
    let ids = assignment::domains_for_user(&st.db, &ctx.user_id).await?;
    let mut out = Vec::new();
    for d in resource::list_domains(&st.db, None, Some(true)).await? {
        if ids.contains(&d.id) {
            out.push(super::domains::render(&st, &d));
        }
    }
    Ok(AxJson(st.collection("auth/domains", "domains", out)))
}

async fn auth_system(S(st): S<State>, Auth(ctx): Auth) -> Result<AxJson<Value>> {
    st.enforce(&ctx, "identity:get_auth_system", json!({}))?;
    let roles = assignment::effective_role_ids(&st.db, &ctx.user_id, &Scope::System).await?;
    let system: Vec<Value> = if roles.is_empty() { vec![] } else { vec![json!({"all": true})] };
    Ok(AxJson(
        json!({"system": system, "links": {"self": format!("{}/v3/auth/system", st.base_url), "previous": null, "next": null}}),
    ))
}
