//! A compute API on an ephemeral port over a fresh database of every
//! reachable backend, with fixed tokens instead of identity:
//! `ADMIN` (admin of project A), `MEMBER` and `READER` of project A,
//! `OTHER` (member of project B).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use futures::future::BoxFuture;
use reqwest::Method;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::Value;
use stratus_compute::entity::instance;
use stratus_compute::store::{compute_nodes, services};
use stratus_compute::{ComputeService, State};
use stratus_core::auth::TokenError;
use stratus_core::{AuthContext, Config, TokenValidator};
use stratus_db::Db;

pub const ADMIN: &str = "tok-admin";
pub const MEMBER: &str = "tok-member";
pub const READER: &str = "tok-reader";
pub const OTHER: &str = "tok-other";

pub const PROJECT_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const PROJECT_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const ADMIN_USER: &str = "a0000000000000000000000000000000";
pub const MEMBER_USER: &str = "a1111111111111111111111111111111";
pub const READER_USER: &str = "a2222222222222222222222222222222";
pub const OTHER_USER: &str = "b1111111111111111111111111111111";

fn context(token: &str) -> Option<AuthContext> {
    let (user, project, roles): (&str, &str, &[&str]) = match token {
        ADMIN => (ADMIN_USER, PROJECT_A, &["admin", "member", "reader"]),
        MEMBER => (MEMBER_USER, PROJECT_A, &["member", "reader"]),
        READER => (READER_USER, PROJECT_A, &["reader"]),
        OTHER => (OTHER_USER, PROJECT_B, &["member", "reader"]),
        _ => return None,
    };
    let now = chrono::Utc::now();
    Some(AuthContext {
        token: token.to_string(),
        user_id: user.to_string(),
        user_name: user.to_string(),
        user_domain_id: "default".into(),
        user_domain_name: "Default".into(),
        project_id: Some(project.to_string()),
        project_name: Some(project.to_string()),
        project_domain_id: Some("default".into()),
        project_domain_name: Some("Default".into()),
        domain_id: None,
        domain_name: None,
        system_scope: false,
        roles: roles.iter().map(|r| (format!("{r}-id"), r.to_string())).collect(),
        is_admin_project: false,
        issued_at: now,
        expires_at: now + chrono::Duration::hours(1),
        audit_ids: vec!["audit".into()],
        methods: vec!["password".into()],
        application_credential_id: None,
        service_roles: Vec::new(),
        creds_memo: std::sync::OnceLock::new(),
    })
}

struct Tokens;

impl TokenValidator for Tokens {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Arc<AuthContext>, TokenError>> {
        Box::pin(async move { context(token).map(Arc::new).ok_or_else(|| TokenError::Invalid("unknown token".into())) })
    }
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

pub struct Api {
    pub backend: &'static str,
    pub base: String,
    pub http: reqwest::Client,
    pub svc: State,
    pub db: Db,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Api {
    pub async fn start(backend: &'static str, url: &str, cfg: Config) -> Api {
        let db = Db::connect(url).await.unwrap_or_else(|e| panic!("{backend}: {e}"));
        db.migrate::<stratus_compute::Migrator>().await.unwrap_or_else(|e| panic!("{backend}: {e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut cfg = cfg;
        cfg.compute.public_url = format!("http://{addr}");
        let svc = ComputeService::open(cfg, db.clone()).unwrap();
        let router = stratus_compute::router(svc.clone(), Arc::new(Tokens));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Api { backend, base: format!("http://{addr}"), http: reqwest::Client::new(), svc, db, task }
    }

    /// Send a request at a microversion (`None`: no version header).
    pub async fn call(&self, method: Method, path: &str, token: &str, mv: Option<&str>, body: Option<Value>) -> Resp {
        let mut r = self.http.request(method, format!("{}{path}", self.base)).header("x-auth-token", token);
        if let Some(v) = mv {
            r = r.header("openstack-api-version", format!("compute {v}"));
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 500 {
            panic!("{}: {status} on {path}: {text}", self.backend);
        }
        Resp { status, body, text }
    }

    pub async fn get(&self, path: &str, token: &str, mv: &str) -> Resp {
        self.call(Method::GET, path, token, Some(mv), None).await
    }
    pub async fn post(&self, path: &str, token: &str, mv: &str, body: Value) -> Resp {
        self.call(Method::POST, path, token, Some(mv), Some(body)).await
    }
    pub async fn put(&self, path: &str, token: &str, mv: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, token, Some(mv), Some(body)).await
    }
    pub async fn delete(&self, path: &str, token: &str, mv: &str) -> Resp {
        self.call(Method::DELETE, path, token, Some(mv), None).await
    }

    /// A compute service with a heartbeat now, and its hypervisor.
    pub async fn compute_host(&self, host: &str) -> (services::Service, compute_nodes::ComputeNode) {
        let s = services::upsert(&self.db, host, "nova-compute", "compute").await.unwrap();
        services::heartbeat(&self.db, s.id).await.unwrap();
        let n = compute_nodes::upsert(
            &self.db,
            compute_nodes::NewComputeNode {
                host: host.into(),
                hypervisor_hostname: format!("{host}.local"),
                hypervisor_type: "fake".into(),
                hypervisor_version: 1000,
                host_ip: "192.0.2.10".into(),
                vcpus: 8,
                memory_mb: 16384,
                local_gb: 100,
                uuid: uuid::Uuid::new_v4().to_string(),
                service_id: s.id,
                cpu_info: "{}".into(),
            },
        )
        .await
        .unwrap();
        (services::get(&self.db, s.id).await.unwrap().unwrap(), n)
    }
}

/// A fresh API on every reachable backend.
pub async fn apis() -> Vec<Api> {
    apis_with(Config::default()).await
}

pub async fn apis_with(cfg: Config) -> Vec<Api> {
    let mut out = Vec::new();
    for (backend, url) in stratus_db::testing::fresh_urls().await {
        out.push(Api::start(backend, &url, cfg.clone()).await);
    }
    out
}

/// An instance row as the lead's code will write them (enough for quotas, usage and hosts).
pub struct NewInstance<'a> {
    pub project: &'a str,
    pub user: &'a str,
    pub host: Option<&'a str>,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub launched_at: Option<i64>,
    pub terminated_at: Option<i64>,
    pub deleted: bool,
    pub task_state: Option<&'a str>,
}

impl Default for NewInstance<'_> {
    fn default() -> Self {
        NewInstance {
            project: PROJECT_A,
            user: MEMBER_USER,
            host: None,
            vcpus: 1,
            memory_mb: 512,
            root_gb: 1,
            launched_at: None,
            terminated_at: None,
            deleted: false,
            task_state: None,
        }
    }
}

pub async fn insert_instance(db: &Db, n: NewInstance<'_>) -> String {
    let uuid = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now().timestamp_micros();
    let flavor =
        serde_json::json!({"name": "m1.test", "memory_mb": n.memory_mb, "vcpus": n.vcpus, "root_gb": n.root_gb});
    instance::ActiveModel {
        uuid: Set(uuid.clone()),
        display_name: Set(format!("vm-{}", &uuid[..8])),
        display_description: Set(None),
        project_id: Set(n.project.into()),
        user_id: Set(n.user.into()),
        host: Set(n.host.map(str::to_string)),
        node: Set(n.host.map(|h| format!("{h}.local"))),
        image_ref: Set("image".into()),
        flavor_id: Set("1".into()),
        vcpus: Set(n.vcpus),
        memory_mb: Set(n.memory_mb),
        root_gb: Set(n.root_gb),
        ephemeral_gb: Set(0),
        flavor: Set(flavor.to_string()),
        old_flavor: Set(None),
        new_flavor: Set(None),
        vm_state: Set(if n.deleted { "deleted".into() } else { "active".into() }),
        task_state: Set(n.task_state.map(str::to_string)),
        power_state: Set(1),
        availability_zone: Set(None),
        key_name: Set(None),
        key_data: Set(None),
        user_data: Set(None),
        metadata: Set("{}".into()),
        system_metadata: Set("{}".into()),
        config_drive: Set(false),
        access_ip_v4: Set(None),
        access_ip_v6: Set(None),
        locked: Set(false),
        locked_by: Set(None),
        locked_reason: Set(None),
        hostname: Set("vm".into()),
        launch_index: Set(0),
        reservation_id: Set("r-1".into()),
        progress: Set(0),
        request_spec: Set("{}".into()),
        block_devices: Set("[]".into()),
        launched_at: Set(n.launched_at),
        terminated_at: Set(n.terminated_at),
        deleted: Set(n.deleted),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
    }
    .insert(&db.write)
    .await
    .unwrap();
    uuid
}
