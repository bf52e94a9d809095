//! A placement on an ephemeral port per database backend, with a token
//! validator that knows three fixed tokens (admin, service, reader).

#![allow(dead_code)]

use std::sync::Arc;

use chrono::Utc;
use futures::future::BoxFuture;
use serde_json::Value;
use stratus_core::auth::{AuthContext, TokenError, TokenValidator};

pub const ADMIN: &str = "admin-token";
pub const SERVICE: &str = "service-token";
pub const READER: &str = "reader-token";

pub struct Stub;

fn ctx(token: &str, role: &str, project: &str) -> AuthContext {
    AuthContext {
        token: token.to_string(),
        user_id: format!("{role}-user"),
        user_name: role.to_string(),
        user_domain_id: "default".into(),
        user_domain_name: "Default".into(),
        project_id: Some(project.to_string()),
        project_name: Some(project.to_string()),
        project_domain_id: Some("default".into()),
        project_domain_name: Some("Default".into()),
        domain_id: None,
        domain_name: None,
        system_scope: false,
        roles: vec![(role.to_string(), role.to_string())],
        is_admin_project: role == "admin",
        issued_at: Utc::now(),
        expires_at: Utc::now() + chrono::Duration::hours(1),
        audit_ids: Vec::new(),
        methods: vec!["password".into()],
        application_credential_id: None,
        service_roles: Vec::new(),
        creds_memo: std::sync::OnceLock::new(),
    }
}

impl TokenValidator for Stub {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Arc<AuthContext>, TokenError>> {
        Box::pin(async move {
            match token {
                ADMIN => Ok(Arc::new(ctx(token, "admin", "admin-project"))),
                SERVICE => Ok(Arc::new(ctx(token, "service", "service-project"))),
                READER => Ok(Arc::new(ctx(token, "reader", "reader-project"))),
                _ => Err(TokenError::Invalid("unknown token".into())),
            }
        })
    }
}

pub struct Server {
    pub backend: &'static str,
    pub url: String,
    pub http: reqwest::Client,
    pub state: stratus_placement::State,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serve placement over a fresh database at `url`.
pub async fn start(backend: &'static str, url: &str) -> Server {
    let db = stratus_db::Db::connect(url).await.unwrap();
    db.migrate::<stratus_placement::Migrator>().await.unwrap();
    // migrations are idempotent
    db.migrate::<stratus_placement::Migrator>().await.unwrap();
    let state = stratus_placement::PlacementService::open(stratus_core::Config::default(), db).unwrap();
    let router = stratus_placement::router(state.clone(), Arc::new(Stub));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Server { backend, url: format!("http://{addr}"), http: reqwest::Client::new(), state, task }
}

/// One server per reachable backend.
pub async fn servers() -> Vec<Server> {
    let mut out = Vec::new();
    for (backend, url) in stratus_db::testing::fresh_urls().await {
        out.push(start(backend, &url).await);
    }
    out
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of a placement fault body.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["code"].as_str().unwrap_or("")
    }
    pub fn detail(&self) -> &str {
        self.body["errors"][0]["detail"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Server {
    pub async fn call(&self, method: &str, path: &str, mv: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if !mv.is_empty() {
            req = req.header("openstack-api-version", format!("placement {mv}"));
        }
        if let Some(t) = token {
            req = req.header("x-auth-token", t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(serde_json::to_vec(b).unwrap());
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        assert!(status != 500, "{} {path}: 500 {body}", self.backend);
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, mv: &str) -> Reply {
        self.call("GET", path, mv, Some(ADMIN), None).await
    }
    pub async fn put(&self, path: &str, mv: &str, body: &Value) -> Reply {
        self.call("PUT", path, mv, Some(ADMIN), Some(body)).await
    }
    pub async fn post(&self, path: &str, mv: &str, body: &Value) -> Reply {
        self.call("POST", path, mv, Some(ADMIN), Some(body)).await
    }
    pub async fn delete(&self, path: &str, mv: &str) -> Reply {
        self.call("DELETE", path, mv, Some(ADMIN), None).await
    }

    /// Create a provider (1.20 answers with it) and return its uuid.
    pub async fn provider(&self, name: &str, parent: Option<&str>) -> String {
        let mut body = serde_json::json!({"name": name});
        if let Some(p) = parent {
            body["parent_provider_uuid"] = Value::String(p.to_string());
        }
        let r = self.post("/resource_providers", "1.20", &body).await;
        assert_eq!(r.status, 200, "{} {}", self.backend, r.body);
        r.body["uuid"].as_str().unwrap().to_string()
    }

    /// Set the whole inventory of a provider: [(class, total)].
    pub async fn inventory(&self, rp: &str, invs: &[(&str, i64)]) {
        let cur = self.get(&format!("/resource_providers/{rp}"), "1.20").await;
        let generation = cur.body["generation"].as_i64().unwrap();
        let mut m = serde_json::Map::new();
        for (rc, total) in invs {
            m.insert(rc.to_string(), serde_json::json!({"total": total}));
        }
        let r = self
            .put(
                &format!("/resource_providers/{rp}/inventories"),
                "1.20",
                &serde_json::json!({"resource_provider_generation": generation, "inventories": m}),
            )
            .await;
        assert_eq!(r.status, 200, "{} {}", self.backend, r.body);
    }

    pub async fn traits(&self, rp: &str, traits: &[&str]) {
        for t in traits.iter().filter(|t| t.starts_with("CUSTOM_")) {
            let r = self.call("PUT", &format!("/traits/{t}"), "1.6", Some(ADMIN), None).await;
            assert!(r.status == 201 || r.status == 204, "{}", r.status);
        }
        let cur = self.get(&format!("/resource_providers/{rp}"), "1.20").await;
        let generation = cur.body["generation"].as_i64().unwrap();
        let r = self
            .put(
                &format!("/resource_providers/{rp}/traits"),
                "1.6",
                &serde_json::json!({"resource_provider_generation": generation, "traits": traits}),
            )
            .await;
        assert_eq!(r.status, 200, "{} {}", self.backend, r.body);
    }

    pub async fn aggregates(&self, rp: &str, aggs: &[&str]) {
        let cur = self.get(&format!("/resource_providers/{rp}"), "1.20").await;
        let generation = cur.body["generation"].as_i64().unwrap();
        let r = self
            .put(
                &format!("/resource_providers/{rp}/aggregates"),
                "1.19",
                &serde_json::json!({"resource_provider_generation": generation, "aggregates": aggs}),
            )
            .await;
        assert_eq!(r.status, 200, "{} {}", self.backend, r.body);
    }
}
