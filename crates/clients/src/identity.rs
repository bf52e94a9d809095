//! The identity client a service uses when it does not run beside identity:
//! it keeps a service token (renewed before it expires) and validates the
//! tokens presented to the service, caching each answer for a few seconds
//! (the same trade-off identity makes in process).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use stratus_core::access_rules::AccessRule;
use stratus_core::auth::{AccessRules, AuthContext, TokenError, TokenValidator};
use tokio::sync::Mutex;

/// A service user's password credentials, scoped to its project.
#[derive(Clone)]
pub struct ServiceCredentials {
    pub username: String,
    pub password: String,
    pub user_domain_id: String,
    pub project_name: String,
    pub project_domain_id: String,
}

impl std::fmt::Debug for ServiceCredentials {
    // never print the password
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCredentials").field("username", &self.username).finish_non_exhaustive()
    }
}

pub struct IdentityClient {
    /// `http://host:5000` (without `/v3`)
    base: String,
    http: reqwest::Client,
    creds: ServiceCredentials,
    service_token: Mutex<Option<(String, DateTime<Utc>)>>,
    validated: moka::future::Cache<String, (Arc<AuthContext>, AccessRules)>,
}

impl IdentityClient {
    pub fn new(auth_url: &str, creds: ServiceCredentials, cache_seconds: u64) -> anyhow::Result<IdentityClient> {
        let base = auth_url.trim_end_matches('/').trim_end_matches("/v3").to_string();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(IdentityClient {
            base,
            http,
            creds,
            service_token: Mutex::new(None),
            validated: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(cache_seconds.max(1)))
                .build(),
        })
    }

    /// A valid service token, issued anew when none is held or it expires within a minute.
    pub async fn service_token(&self) -> anyhow::Result<String> {
        let mut held = self.service_token.lock().await;
        if let Some((t, exp)) = held.as_ref()
            && *exp - chrono::Duration::seconds(60) > Utc::now()
        {
            return Ok(t.clone());
        }
        let c = &self.creds;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.username, "domain": {"id": c.user_domain_id}, "password": c.password}}},
            "scope": {"project": {"name": c.project_name, "domain": {"id": c.project_domain_id}}}}});
        let r = self.http.post(format!("{}/v3/auth/tokens?nocatalog", self.base)).json(&body).send().await?;
        let status = r.status();
        let token = r.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).map(str::to_string);
        let v: Value = r.json().await.unwrap_or(Value::Null);
        let Some(token) = token.filter(|_| status.as_u16() == 201) else {
            bail!("the service user could not authenticate: {status}");
        };
        let exp = v["token"]["expires_at"]
            .as_str()
            .and_then(stratus_core::time::parse)
            .context("token without expires_at")?;
        *held = Some((token.clone(), exp));
        Ok(token)
    }

    /// Validate a token through identity (`GET /v3/auth/tokens`).
    pub async fn validate(&self, token: &str) -> Result<Arc<AuthContext>, TokenError> {
        Ok(self.validate_with_rules(token).await?.0)
    }

    /// Validate a token through identity, saying (as keystonemiddleware
    /// does) that this service enforces application-credential access
    /// rules; identity refuses tokens with rules to validators that do not.
    pub async fn validate_with_rules(&self, token: &str) -> Result<(Arc<AuthContext>, AccessRules), TokenError> {
        if let Some(hit) = self.validated.get(token).await
            && hit.0.expires_at > Utc::now()
        {
            return Ok(hit);
        }
        let service = self.service_token().await.map_err(|e| TokenError::Unavailable(e.to_string()))?;
        let r = self
            .http
            .get(format!("{}/v3/auth/tokens?nocatalog", self.base))
            .header("x-auth-token", &service)
            .header("x-subject-token", token)
            .header("openstack-identity-access-rules", "1")
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(e.to_string()))?;
        match r.status().as_u16() {
            200 => {}
            404 | 401 => return Err(TokenError::Invalid("identity refused the token".into())),
            s => return Err(TokenError::Unavailable(format!("identity answered {s}"))),
        }
        let v: Value = r.json().await.map_err(|e| TokenError::Unavailable(e.to_string()))?;
        let ctx = Arc::new(context_from_body(token, &v).map_err(|e| TokenError::Unavailable(e.to_string()))?);
        let found = (ctx, access_rules_from_body(&v));
        self.validated.insert(token.to_string(), found.clone()).await;
        Ok(found)
    }
}

impl TokenValidator for IdentityClient {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Arc<AuthContext>, TokenError>> {
        Box::pin(IdentityClient::validate(self, token))
    }

    fn validate_with_rules<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(Arc<AuthContext>, AccessRules), TokenError>> {
        Box::pin(IdentityClient::validate_with_rules(self, token))
    }
}

/// The access rules of the application credential a token body names.
pub fn access_rules_from_body(v: &Value) -> AccessRules {
    let rules = v["token"]["application_credential"]["access_rules"].as_array()?;
    Some(Arc::new(
        rules
            .iter()
            .map(|r| AccessRule {
                service: s(&r["service"]).unwrap_or_default(),
                path: s(&r["path"]).unwrap_or_default(),
                method: s(&r["method"]).unwrap_or_default(),
            })
            .collect(),
    ))
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// Read Keystone's token body into the context every service authorizes with.
pub fn context_from_body(token: &str, v: &Value) -> anyhow::Result<AuthContext> {
    let t = &v["token"];
    let when = |k: &str| t[k].as_str().and_then(stratus_core::time::parse).ok_or_else(|| anyhow!("token without {k}"));
    let roles = t["roles"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| Some((s(&r["id"])?, s(&r["name"])?))).collect())
        .unwrap_or_default();
    Ok(AuthContext {
        token: token.to_string(),
        user_id: s(&t["user"]["id"]).context("token without user")?,
        user_name: s(&t["user"]["name"]).unwrap_or_default(),
        user_domain_id: s(&t["user"]["domain"]["id"]).unwrap_or_default(),
        user_domain_name: s(&t["user"]["domain"]["name"]).unwrap_or_default(),
        project_id: s(&t["project"]["id"]),
        project_name: s(&t["project"]["name"]),
        project_domain_id: s(&t["project"]["domain"]["id"]),
        project_domain_name: s(&t["project"]["domain"]["name"]),
        domain_id: s(&t["domain"]["id"]),
        domain_name: s(&t["domain"]["name"]),
        system_scope: t["system"]["all"].as_bool().unwrap_or(false),
        roles,
        is_admin_project: t["is_admin_project"].as_bool().unwrap_or(false),
        issued_at: when("issued_at")?,
        expires_at: when("expires_at")?,
        audit_ids: t["audit_ids"].as_array().map(|a| a.iter().filter_map(s).collect()).unwrap_or_default(),
        methods: t["methods"].as_array().map(|a| a.iter().filter_map(s).collect()).unwrap_or_default(),
        application_credential_id: s(&t["application_credential"]["id"]),
        service_roles: Vec::new(),
        creds_memo: std::sync::OnceLock::new(),
    })
}
