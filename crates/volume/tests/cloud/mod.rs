//! A whole block storage service on an ephemeral port, over a fresh database
//! of every reachable backend: the API, a scheduler and one volume host
//! (`volume1`, file backend, raw, in a temporary directory) on an
//! in-process bus, with fixed tokens instead of identity: `ADMIN` (admin of
//! project A), `MEMBER` and `READER` of project A, `OTHER` (member of
//! project B). Shared by the flow tests (volumes, snapshots, backups,
//! attachments); each test file includes it with `mod cloud;`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::Value;
use stratus_core::auth::TokenError;
use stratus_core::{AuthContext, Config, TokenValidator};
use stratus_db::Db;
use stratus_volume::manager::VolumeHost;
use stratus_volume::{State, VolumeService};

pub const ADMIN: &str = "tok-admin";
pub const MEMBER: &str = "tok-member";
pub const READER: &str = "tok-reader";
pub const OTHER: &str = "tok-other";
/// MEMBER's token from an application credential whose only access rule is
/// `GET /v3/*/volumes/detail` on block-storage.
pub const RULED: &str = "tok-ruled";

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
        RULED => (MEMBER_USER, PROJECT_A, &["member", "reader"]),
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

    fn validate_with_rules<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(Arc<AuthContext>, stratus_core::auth::AccessRules), TokenError>> {
        Box::pin(async move {
            let ctx = self.validate(token).await?;
            let rules = (token == RULED).then(|| {
                Arc::new(vec![stratus_core::access_rules::AccessRule {
                    service: "block-storage".into(),
                    path: "/v3/*/volumes/detail".into(),
                    method: "GET".into(),
                }])
            });
            Ok((ctx, rules))
        })
    }
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

pub struct Cloud {
    pub backend: &'static str,
    pub base: String,
    pub http: reqwest::Client,
    pub svc: State,
    pub db: Db,
    pub cfg: Config,
    pub host: Arc<VolumeHost>,
    pub dir: tempfile::TempDir,
    /// Fail the test on any answer of 500 or more (see [`strict_clouds`]).
    pub strict: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Cloud {
    pub async fn start(backend: &'static str, url: &str, cfg: Config) -> Cloud {
        let db = Db::connect(url).await.unwrap_or_else(|e| panic!("{backend}: {e}"));
        db.migrate::<stratus_volume::Migrator>().await.unwrap_or_else(|e| panic!("{backend}: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut cfg = cfg;
        cfg.volume.public_url = format!("http://{addr}");
        cfg.volume.volumes_dir = dir.path().join("volumes").to_string_lossy().into_owned();
        cfg.volume.backups_dir = dir.path().join("backups").to_string_lossy().into_owned();
        cfg.volume.report_interval = 1;
        stratus_volume::store::types::ensure_default(&db.write, &cfg.volume.default_volume_type).await.unwrap();
        let svc = VolumeService::open(cfg.clone(), db.clone()).unwrap();
        let bus = stratus_bus::Bus::new(Arc::new(stratus_bus::inproc::InProcess::new())).await.unwrap();
        // no image service in these tests: an address nothing listens on
        let images = Arc::new(stratus_clients::ImageClient::new("http://127.0.0.1:9").unwrap());
        let tokens: stratus_volume::TokenSource =
            Arc::new(|| Box::pin(async { anyhow::Ok("service-token".to_string()) }));
        svc.attach(stratus_volume::Deps { bus: bus.clone(), images: images.clone(), tokens: tokens.clone() });
        let mut tasks = stratus_volume::scheduler::serve(db.clone(), cfg.clone(), &bus, "sched1").await.unwrap();
        let driver = Arc::new(
            stratus_volume::driver::FileBackend::new(
                cfg.volumes_dir(),
                &cfg.volume.file_format,
                "file",
                cfg.volume.capacity_gb,
            )
            .unwrap(),
        );
        let host = VolumeHost::start(db.clone(), cfg.clone(), bus.clone(), "volume1", driver, Some((images, tokens)))
            .await
            .unwrap();
        let router = stratus_volume::router(svc.clone(), Arc::new(Tokens));
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }));
        let http = reqwest::Client::new();
        Cloud { backend, base: format!("http://{addr}"), http, svc, db, cfg, host, dir, strict: false, tasks }
    }

    /// Send a request at a microversion (`None`: no version header).
    pub async fn call(&self, method: Method, path: &str, token: &str, mv: Option<&str>, body: Option<Value>) -> Resp {
        let mut r = self.http.request(method, format!("{}{path}", self.base)).header("x-auth-token", token);
        if let Some(v) = mv {
            r = r.header("openstack-api-version", format!("volume {v}"));
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        if self.strict {
            assert!(status < 500, "{}: {status} on {path}: {text}", self.backend);
        }
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, body, text }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, token, Some("3.0"), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, token, Some("3.0"), Some(body)).await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, token, Some("3.0"), Some(body)).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, token, Some("3.0"), None).await
    }
    pub async fn get_at(&self, path: &str, token: &str, mv: &str) -> Resp {
        self.call(Method::GET, path, token, Some(mv), None).await
    }
    pub async fn put_at(&self, path: &str, token: &str, mv: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, token, Some(mv), Some(body)).await
    }

    /// Wait until the cloud's own services are in the services table: the
    /// scheduler `sched1` (its first heartbeat is in a task of its own),
    /// `volume1@file` (cinder-volume) and `volume1` (cinder-backup).
    pub async fn services_registered(&self) {
        for _ in 0..400 {
            let all = stratus_volume::store::services::all(&self.db.read).await.unwrap();
            let has = |host: &str, binary: &str| all.iter().any(|s| s.host == host && s.binary == binary);
            if has("sched1", "cinder-scheduler")
                && has("volume1@file", "cinder-volume")
                && has("volume1", "cinder-backup")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{}: the cloud's services never registered", self.backend);
    }

    /// Poll `GET path` until `.{key}.status` is `want` (panics after 20 s
    /// or on an error status not asked for); the last body.
    pub async fn wait_status(&self, path: &str, key: &str, want: &str) -> Value {
        for _ in 0..400 {
            let r = self.get(path, ADMIN).await;
            let status = r.body[key]["status"].as_str().unwrap_or_default().to_string();
            if status == want {
                return r.body[key].clone();
            }
            if status.starts_with("error") && !want.starts_with("error") {
                panic!("{}: {path} went to {status}: {}", self.backend, r.text);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{}: {path} never reached {want}", self.backend);
    }

    /// Poll until `GET path` answers 404.
    pub async fn wait_gone(&self, path: &str) {
        for _ in 0..400 {
            if self.get(path, ADMIN).await.status == 404 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{}: {path} never went away", self.backend);
    }

    /// A volume of `size` GiB made by `token`, waited for until available; its id.
    pub async fn volume(&self, token: &str, size: i64) -> String {
        let r = self.post("/v3/volumes", token, serde_json::json!({"volume": {"size": size}})).await;
        assert_eq!(r.status, 202, "{}: {}", self.backend, r.text);
        let id = r.body["volume"]["id"].as_str().unwrap().to_string();
        self.wait_status(&format!("/v3/volumes/{id}"), "volume", "available").await;
        id
    }
}

/// A fresh cloud on every reachable database backend.
pub async fn clouds() -> Vec<Cloud> {
    clouds_with(Config::default()).await
}

/// As [`clouds`], but every answer of 500 or more fails the test at once.
pub async fn strict_clouds() -> Vec<Cloud> {
    let mut out = clouds().await;
    for c in &mut out {
        c.strict = true;
    }
    out
}

pub async fn clouds_with(cfg: Config) -> Vec<Cloud> {
    let mut out = Vec::new();
    for (backend, url) in stratus_db::testing::fresh_urls().await {
        out.push(Cloud::start(backend, &url, cfg.clone()).await);
    }
    out
}
