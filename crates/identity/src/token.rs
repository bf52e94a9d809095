//! Fernet tokens: what they carry, how they are issued from the auth methods,
//! how they are validated (keys, expiry, revocation, the user and scope still
//! valid) and rendered the way Keystone renders them.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stratus_core::auth::{AuthContext, TokenError, TokenValidator};

use crate::Identity;
use crate::error::{IdentityError, Result};
use crate::store::assignment::{self, Scope};
use crate::store::{appcred, catalog, resource, revoke, user};

pub const METHOD_PASSWORD: u8 = 1;
pub const METHOD_TOKEN: u8 = 2;
pub const METHOD_APP_CRED: u8 = 4;

/// What a Fernet token carries (msgpack inside the Fernet envelope).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Payload {
    /// payload format version
    pub v: u8,
    pub user_id: String,
    pub methods: u8,
    /// 0 unscoped, 1 project, 2 domain, 3 system
    pub scope_kind: u8,
    pub scope_id: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub audit_ids: Vec<String>,
    pub app_cred_id: Option<String>,
}

impl Payload {
    pub fn scope(&self) -> Scope {
        match (self.scope_kind, &self.scope_id) {
            (1, Some(p)) => Scope::Project(p.clone()),
            (2, Some(d)) => Scope::Domain(d.clone()),
            (3, _) => Scope::System,
            _ => Scope::Unscoped,
        }
    }
    pub fn method_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.methods & METHOD_PASSWORD != 0 {
            out.push("password".to_string());
        }
        if self.methods & METHOD_TOKEN != 0 {
            out.push("token".to_string());
        }
        if self.methods & METHOD_APP_CRED != 0 {
            out.push("application_credential".to_string());
        }
        out
    }
}

pub fn new_audit_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn scope_parts(scope: &Scope) -> (u8, Option<String>) {
    match scope {
        Scope::Unscoped => (0, None),
        Scope::Project(p) => (1, Some(p.clone())),
        Scope::Domain(d) => (2, Some(d.clone())),
        Scope::System => (3, None),
    }
}

/// A validated token, with everything needed to render it or authorize with it.
#[derive(Debug, Clone)]
pub struct TokenData {
    pub payload: Payload,
    pub user: user::User,
    pub user_domain: resource::Project,
    pub project: Option<resource::Project>,
    pub project_domain: Option<resource::Project>,
    pub domain: Option<resource::Project>,
    /// (id, name)
    pub roles: Vec<(String, String)>,
    pub app_cred: Option<appcred::AppCred>,
    /// The credential's access rules (`None`: it has none).
    pub access_rules: Option<Vec<appcred::AccessRule>>,
    pub is_admin_project: bool,
}

/// Validated tokens, kept a few seconds; cleared on any change that could affect them.
pub struct TokenCache {
    cache: moka::sync::Cache<String, Arc<TokenData>>,
    /// What a (user, scope, application credential) resolves to: user, project,
    /// domains, roles. Issuing many tokens for one user reuses it.
    resolved: moka::sync::Cache<ResolveKey, Arc<TokenData>>,
    catalog: moka::sync::Cache<(), Arc<Value>>,
    /// The caller's context per token (validated again on every use).
    pub contexts: moka::sync::Cache<String, Arc<AuthContext>>,
    /// Rendered token bodies per (token, with catalog): validation answers these.
    pub bodies: moka::sync::Cache<(String, bool), axum::body::Bytes>,
    /// Application-credential secrets checked recently: (id, sha256 of the secret)
    /// -> the user and credential they authenticated as.
    pub app_cred_checks: moka::sync::Cache<(String, [u8; 32]), Arc<AppCredCheck>>,
}

/// The user and credential an application-credential secret authenticated as.
pub type AppCredCheck = (user::User, appcred::AppCred);

type ResolveKey = (String, u8, Option<String>, Option<String>);

impl TokenCache {
    pub fn new(seconds: u64) -> Self {
        let ttl = Duration::from_secs(seconds.max(1));
        TokenCache {
            cache: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(ttl).build(),
            resolved: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(ttl).build(),
            catalog: moka::sync::Cache::builder().max_capacity(1).time_to_live(ttl).build(),
            contexts: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(ttl).build(),
            bodies: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(ttl).build(),
            app_cred_checks: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(ttl).build(),
        }
    }
    /// Forget everything cached (called after any write that tokens depend on).
    pub fn clear(&self) {
        self.cache.invalidate_all();
        self.resolved.invalidate_all();
        self.catalog.invalidate_all();
        self.contexts.invalidate_all();
        self.bodies.invalidate_all();
        self.app_cred_checks.invalidate_all();
    }
}

fn invalid(msg: &str) -> IdentityError {
    IdentityError::Unauthorized(msg.to_string())
}

impl Identity {
    /// Encrypt a payload into a token string.
    pub fn seal(&self, p: &Payload) -> Result<String> {
        let bytes = rmp_serde::to_vec(p).map_err(|e| IdentityError::Internal(e.into()))?;
        Ok(self.keys.encrypt(&bytes)?)
    }

    pub fn open_token(&self, token: &str) -> Option<Payload> {
        let bytes = self.keys.decrypt(token)?;
        rmp_serde::from_slice(&bytes).ok()
    }

    /// Validate a token string. `allow_expired` accepts tokens expired within the window.
    pub async fn validate_token(&self, token: &str, allow_expired: bool) -> Result<Arc<TokenData>> {
        self.revocations.refresh_if_stale(&self.db).await;
        if let Some(hit) = self.tokens.cache.get(token) {
            let now = Utc::now().timestamp_micros();
            if hit.payload.expires_at > now && !self.is_revoked(&hit) {
                return Ok(hit);
            }
        }
        let p = self.open_token(token).ok_or_else(|| invalid("token does not decrypt"))?;
        let now = Utc::now().timestamp_micros();
        if p.expires_at <= now {
            let window = self.cfg.identity.allow_expired_window * 1_000_000;
            if !allow_expired || p.expires_at + window <= now {
                return Err(invalid("token expired"));
            }
        }
        let data = Arc::new(self.load_token_data(p).await?);
        if self.is_revoked(&data) {
            return Err(invalid("token revoked"));
        }
        if data.payload.expires_at > now {
            self.tokens.cache.insert(token.to_string(), data.clone());
        }
        Ok(data)
    }

    fn is_revoked(&self, d: &TokenData) -> bool {
        let role_ids: Vec<String> = d.roles.iter().map(|(i, _)| i.clone()).collect();
        self.revocations.is_revoked(&revoke::TokenFacts {
            user_id: &d.user.id,
            project_id: d.project.as_ref().map(|p| p.id.as_str()),
            domain_id: d.domain.as_ref().map(|p| p.id.as_str()),
            user_domain_id: &d.user.domain_id,
            project_domain_id: d.project.as_ref().map(|p| p.domain_id.as_str()),
            role_ids: &role_ids,
            audit_ids: &d.payload.audit_ids,
            issued_at: d.payload.issued_at,
        })
    }

    /// Resolve what a payload names (cached for a few seconds), refusing when
    /// any of it is gone or disabled.
    pub async fn load_token_data(&self, p: Payload) -> Result<TokenData> {
        let key: ResolveKey = (p.user_id.clone(), p.scope_kind, p.scope_id.clone(), p.app_cred_id.clone());
        if let Some(hit) = self.tokens.resolved.get(&key) {
            let mut d = (*hit).clone();
            d.payload = p;
            return Ok(d);
        }
        let d = self.resolve(p).await?;
        self.tokens.resolved.insert(key, Arc::new(d.clone()));
        Ok(d)
    }

    async fn resolve(&self, p: Payload) -> Result<TokenData> {
        let db = &self.db;
        let u = user::find(db, &p.user_id).await?.ok_or_else(|| invalid("user gone"))?;
        if !u.enabled {
            return Err(invalid("user disabled"));
        }
        let user_domain = resource::get(db, &u.domain_id).await?.ok_or_else(|| invalid("user domain gone"))?;
        if !user_domain.enabled {
            return Err(invalid("user domain disabled"));
        }
        let scope = p.scope();
        let (mut project, mut project_domain, mut domain) = (None, None, None);
        match &scope {
            Scope::Project(pid) => {
                let pr = resource::get(db, pid).await?.ok_or_else(|| invalid("project gone"))?;
                if !pr.enabled {
                    return Err(invalid("project disabled"));
                }
                let pd = resource::get(db, &pr.domain_id).await?.ok_or_else(|| invalid("project domain gone"))?;
                if !pd.enabled {
                    return Err(invalid("project domain disabled"));
                }
                project = Some(pr);
                project_domain = Some(pd);
            }
            Scope::Domain(did) => {
                let d = resource::get(db, did).await?.filter(|d| d.is_domain).ok_or_else(|| invalid("domain gone"))?;
                if !d.enabled {
                    return Err(invalid("domain disabled"));
                }
                domain = Some(d);
            }
            _ => {}
        }
        let mut role_ids = assignment::effective_role_ids(db, &u.id, &scope).await?;
        let mut app_cred = None;
        let mut access_rules = None;
        if let Some(acid) = &p.app_cred_id {
            let c = appcred::get(db, acid).await.map_err(|_| invalid("application credential gone"))?;
            if c.expires_at.is_some_and(|e| e <= Utc::now().timestamp_micros()) {
                return Err(invalid("application credential expired"));
            }
            let allowed = appcred::role_ids(&c);
            let all = assignment::all_roles(db).await?;
            let edges = assignment::implications(db).await?;
            let allowed: Vec<String> = assignment::expand_implied(&allowed, &edges)
                .into_iter()
                .map(|(r, _)| r)
                .filter(|r| all.get(r).is_some_and(|x| assignment::role_domain(x).is_none()))
                .collect();
            role_ids.retain(|r| allowed.contains(r));
            access_rules = appcred::access_rules_of(db, &c.id).await?;
            app_cred = Some(c);
        }
        if scope != Scope::Unscoped && role_ids.is_empty() {
            return Err(invalid("no role on the scope"));
        }
        let all = assignment::all_roles(db).await?;
        let mut roles: Vec<(String, String)> =
            role_ids.iter().filter_map(|r| all.get(r).map(|x| (x.id.clone(), x.name.clone()))).collect();
        roles.sort_by(|a, b| a.1.cmp(&b.1));
        let is_admin_project = match &project {
            Some(pr) => pr.name == "admin" && pr.domain_id == "default",
            None => false,
        };
        Ok(TokenData {
            payload: p,
            user: u,
            user_domain,
            project,
            project_domain,
            domain,
            roles,
            app_cred,
            access_rules,
            is_admin_project,
        })
    }

    /// Keystone's token body.
    pub async fn render_token(&self, d: &TokenData, with_catalog: bool) -> Result<Value> {
        let p = &d.payload;
        let mut t = json!({
            "methods": p.method_names(),
            "user": {
                "id": d.user.id,
                "name": d.user.name,
                "domain": {"id": d.user_domain.id, "name": d.user_domain.name},
                "password_expires_at": d.user.password_expires_at.map(crate::util::us_to_iso),
            },
            "audit_ids": p.audit_ids,
            "expires_at": crate::util::us_to_iso(p.expires_at),
            "issued_at": crate::util::us_to_iso(p.issued_at),
        });
        let Value::Object(o) = &mut t else {
            return Ok(t);
        };
        if let (Some(pr), Some(pd)) = (&d.project, &d.project_domain) {
            o.insert("project".into(), json!({"id": pr.id, "name": pr.name, "domain": {"id": pd.id, "name": pd.name}}));
            o.insert("is_domain".into(), json!(false));
            o.insert("is_admin_project".into(), json!(d.is_admin_project));
        }
        if let Some(dm) = &d.domain {
            o.insert("domain".into(), json!({"id": dm.id, "name": dm.name}));
        }
        if p.scope_kind == 3 {
            o.insert("system".into(), json!({"all": true}));
        }
        if p.scope_kind != 0 {
            o.insert("roles".into(), d.roles.iter().map(|(id, name)| json!({"id": id, "name": name})).collect());
        }
        if let Some(c) = &d.app_cred {
            let mut ac = json!({"id": c.id, "name": c.name, "restricted": !c.unrestricted});
            if let Some(rules) = &d.access_rules {
                ac["access_rules"] = rules.iter().map(crate::api::appcreds::render_rule).collect();
            }
            o.insert("application_credential".into(), ac);
        }
        if with_catalog && p.scope_kind != 0 {
            o.insert("catalog".into(), (*self.catalog().await?).clone());
        }
        Ok(json!({ "token": t }))
    }

    /// The service catalog (cached a few seconds; cleared on local changes).
    pub async fn catalog(&self) -> Result<Arc<Value>> {
        if let Some(c) = self.tokens.catalog.get(&()) {
            return Ok(c);
        }
        let c = Arc::new(catalog::catalog(&self.db).await?);
        self.tokens.catalog.insert((), c.clone());
        Ok(c)
    }

    /// Issue a token for a user on a scope.
    pub fn issue(
        &self,
        user_id: &str,
        methods: u8,
        scope: &Scope,
        parent: Option<&Payload>,
        app_cred: Option<&appcred::AppCred>,
    ) -> Result<(String, Payload)> {
        let now = Utc::now().timestamp_micros();
        let mut expires = now + self.cfg.identity.token_expiration * 1_000_000;
        let mut audit_ids = vec![new_audit_id()];
        if let Some(par) = parent {
            // a token from a token: same expiry, audit chain kept
            expires = par.expires_at;
            // the chain id: the root token's audit id (the parent's own when it is the root)
            if let Some(root) = par.audit_ids.last() {
                audit_ids.push(root.clone());
            }
        }
        if let Some(c) = app_cred
            && let Some(e) = c.expires_at
        {
            expires = expires.min(e);
        }
        let (scope_kind, scope_id) = scope_parts(scope);
        let p = Payload {
            v: 1,
            user_id: user_id.to_string(),
            methods,
            scope_kind,
            scope_id,
            issued_at: now,
            expires_at: expires,
            audit_ids,
            app_cred_id: app_cred.map(|c| c.id.clone()),
        };
        Ok((self.seal(&p)?, p))
    }

    pub fn to_context(&self, token: &str, d: &TokenData) -> AuthContext {
        let ts = |us: i64| DateTime::from_timestamp_micros(us).unwrap_or_default();
        AuthContext {
            token: token.to_string(),
            user_id: d.user.id.clone(),
            user_name: d.user.name.clone(),
            user_domain_id: d.user_domain.id.clone(),
            user_domain_name: d.user_domain.name.clone(),
            project_id: d.project.as_ref().map(|p| p.id.clone()),
            project_name: d.project.as_ref().map(|p| p.name.clone()),
            project_domain_id: d.project_domain.as_ref().map(|p| p.id.clone()),
            project_domain_name: d.project_domain.as_ref().map(|p| p.name.clone()),
            domain_id: d.domain.as_ref().map(|p| p.id.clone()),
            domain_name: d.domain.as_ref().map(|p| p.name.clone()),
            system_scope: d.payload.scope_kind == 3,
            roles: d.roles.clone(),
            is_admin_project: d.is_admin_project,
            issued_at: ts(d.payload.issued_at),
            expires_at: ts(d.payload.expires_at),
            audit_ids: d.payload.audit_ids.clone(),
            methods: d.payload.method_names(),
            application_credential_id: d.payload.app_cred_id.clone(),
            service_roles: Vec::new(),
            creds_memo: std::sync::OnceLock::new(),
        }
    }
}

/// Identity validates the tokens presented to its own API in process.
pub struct Validator(pub crate::State);

/// The access rules a validated token carries, as the services check them.
pub fn access_rules(d: &TokenData) -> stratus_core::auth::AccessRules {
    d.access_rules.as_ref().map(|rules| {
        Arc::new(
            rules
                .iter()
                .map(|r| stratus_core::access_rules::AccessRule {
                    service: r.service.clone(),
                    path: r.path.clone(),
                    method: r.method.clone(),
                })
                .collect(),
        )
    })
}

impl Validator {
    async fn context(&self, token: &str) -> std::result::Result<(Arc<AuthContext>, Arc<TokenData>), TokenError> {
        match self.0.validate_token(token, false).await {
            Ok(d) => {
                if let Some(c) = self.0.tokens.contexts.get(token) {
                    return Ok((c, d));
                }
                let c = Arc::new(self.0.to_context(token, &d));
                self.0.tokens.contexts.insert(token.to_string(), c.clone());
                Ok((c, d))
            }
            Err(IdentityError::Unauthorized(m)) => Err(TokenError::Invalid(m)),
            Err(e) => Err(TokenError::Unavailable(e.to_string())),
        }
    }
}

impl TokenValidator for Validator {
    fn validate<'a>(
        &'a self,
        token: &'a str,
    ) -> futures::future::BoxFuture<'a, std::result::Result<Arc<AuthContext>, TokenError>> {
        Box::pin(async move { Ok(self.context(token).await?.0) })
    }

    fn validate_with_rules<'a>(
        &'a self,
        token: &'a str,
    ) -> futures::future::BoxFuture<
        'a,
        std::result::Result<(Arc<AuthContext>, stratus_core::auth::AccessRules), TokenError>,
    > {
        Box::pin(async move {
            let (c, d) = self.context(token).await?;
            Ok((c, access_rules(&d)))
        })
    }
}
