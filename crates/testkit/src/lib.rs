//! A whole Stratus cloud in process on an ephemeral port, on the database
//! URL a test asks for, with a small HTTP client that speaks its APIs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed setup should stop the test

use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub use stratus_db::testing::fresh_urls;

pub const ADMIN_PASSWORD: &str = "testkit-admin-secret";

/// Unified limits for the image service, read from identity's tables.
struct IdentityLimits(stratus_identity::State);

impl stratus_image::quota::LimitSource for IdentityLimits {
    fn limit<'a>(
        &'a self,
        project_id: &'a str,
        resource: &'a str,
    ) -> futures::future::BoxFuture<'a, anyhow::Result<Option<i64>>> {
        Box::pin(async move {
            stratus_identity::store::misc::effective_limit(&self.0.db, "image", project_id, resource)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
    }
}

/// A running cloud.
pub struct Cloud {
    pub url: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub identity: stratus_identity::State,
    /// The image API's base URL (`http://127.0.0.1:port`).
    pub image_url: String,
    pub image: stratus_image::State,
    pub backend: &'static str,
    pub data_dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
    image_task: tokio::task::JoinHandle<()>,
    /// Placement and compute, when started with [`Cloud::start_compute`].
    pub compute: Option<ComputeParts>,
    /// The network API's base URL, when started with [`Cloud::start_network`].
    pub network_url: Option<String>,
    pub network: Option<stratus_network::State>,
    /// Fake network agents (see [`Cloud::start_network_agents`]; with
    /// compute and networking, one per compute host).
    pub agents: Vec<stratus_network::agent::FakeAgent>,
    /// The block storage API's base URL, with compute and `compute.block_storage`.
    pub volume_url: Option<String>,
    pub volume: Option<stratus_volume::State>,
    /// The volume host (`volume1`, file backend in the data dir).
    pub volume_host: Option<std::sync::Arc<stratus_volume::manager::VolumeHost>>,
    extra_tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The compute side of a test cloud: placement and compute APIs, the
/// conductor, the scheduler and fake compute hosts, on the in-process bus.
pub struct ComputeParts {
    pub placement_url: String,
    pub compute_url: String,
    pub api: stratus_compute::State,
    pub shared: stratus_compute::roles::Shared,
    pub conductor: std::sync::Arc<stratus_compute::conductor::Conductor>,
    pub hosts: Vec<std::sync::Arc<stratus_compute::manager::ComputeHost>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        self.task.abort();
        self.image_task.abort();
        for t in &self.extra_tasks {
            t.abort();
        }
        if let Some(c) = &self.compute {
            for t in &c.tasks {
                t.abort();
            }
        }
    }
}

/// A response: status, headers and the JSON body (Null when empty or not JSON).
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Cloud {
    /// Start identity on `db_url` with a fresh data dir.
    pub async fn start(backend: &'static str, db_url: &str) -> Cloud {
        Self::start_with(backend, db_url, |_| {}).await
    }

    pub async fn start_with(
        backend: &'static str,
        db_url: &str,
        tweak: impl FnOnce(&mut stratus_core::Config),
    ) -> Cloud {
        let data_dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let image_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut cfg = stratus_core::Config { data_dir: data_dir.path().to_path_buf(), ..Default::default() };
        cfg.database.url = db_url.to_string();
        cfg.identity.listen = addr.to_string();
        cfg.image.listen = image_listener.local_addr().unwrap().to_string();
        cfg.identity.password_hash_rounds = 4;
        tweak(&mut cfg);
        Self::serve(backend, cfg, listener, image_listener, data_dir).await
    }

    async fn serve(
        backend: &'static str,
        cfg: stratus_core::Config,
        listener: tokio::net::TcpListener,
        image_listener: tokio::net::TcpListener,
        data_dir: tempfile::TempDir,
    ) -> Cloud {
        let addr = listener.local_addr().unwrap();
        let db = stratus_db::Db::connect(&cfg.database_url()).await.unwrap();
        db.migrate::<stratus_identity::Migrator>().await.unwrap();
        db.migrate::<stratus_image::Migrator>().await.unwrap();
        stratus_identity::fernet::setup(&cfg.fernet_key_repository(), 3).unwrap();
        let identity = stratus_identity::Identity::open(cfg.clone(), db).await.unwrap();
        let image_addr = image_listener.local_addr().unwrap();
        let entries = vec![
            stratus_identity::bootstrap::ServiceEntry {
                kind: "identity".into(),
                name: "keystone".into(),
                url: format!("http://{addr}/v3"),
            },
            stratus_identity::bootstrap::ServiceEntry {
                kind: "image".into(),
                name: "glance".into(),
                url: format!("http://{image_addr}"),
            },
        ];
        stratus_identity::bootstrap::run(&identity, ADMIN_PASSWORD, "RegionOne", &entries).await.unwrap();
        let router = stratus_identity::router(identity.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let limits = std::sync::Arc::new(IdentityLimits(identity.clone()));
        let image = stratus_image::ImageService::open(cfg.clone(), identity.db.clone(), limits).unwrap();
        let validator: std::sync::Arc<dyn stratus_core::TokenValidator> =
            std::sync::Arc::new(stratus_identity::token::Validator(identity.clone()));
        let image_router = stratus_image::router(image.clone(), validator);
        let image_task = tokio::spawn(async move {
            let _ = axum::serve(image_listener, image_router).await;
        });
        Cloud {
            url: format!("http://{addr}"),
            addr,
            http: reqwest::Client::new(),
            identity,
            image_url: format!("http://{image_addr}"),
            image,
            backend,
            data_dir,
            task,
            image_task,
            compute: None,
            network_url: None,
            network: None,
            agents: Vec::new(),
            volume_url: None,
            volume: None,
            volume_host: None,
            extra_tasks: Vec::new(),
        }
    }

    /// Serve the block storage API (Cinder) over this cloud's database,
    /// with a scheduler and one volume host (`volume1`, the file backend in
    /// the data dir) on a bus of their own.
    async fn serve_volume(&mut self, listener: tokio::net::TcpListener) {
        let db = self.identity.db.clone();
        db.migrate::<stratus_volume::Migrator>().await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut cfg = self.identity.cfg.clone();
        cfg.volume.listen = addr.to_string();
        cfg.volume.public_url = format!("http://{addr}");
        cfg.volume.volumes_dir = self.data_dir.path().join("volumes").to_string_lossy().into_owned();
        cfg.volume.backups_dir = self.data_dir.path().join("backups").to_string_lossy().into_owned();
        cfg.volume.report_interval = 1;
        stratus_volume::store::types::ensure_default(&db.write, &cfg.volume.default_volume_type).await.unwrap();
        let svc = stratus_volume::VolumeService::open(cfg.clone(), db.clone()).unwrap();
        let bus = stratus_compute::roles::connect_bus(&cfg).await.unwrap();
        let images = std::sync::Arc::new(stratus_clients::ImageClient::new(&cfg.image_public_url()).unwrap());
        let tokens: stratus_volume::TokenSource = stratus_compute::roles::service_tokens(&cfg).unwrap();
        svc.attach(stratus_volume::Deps { bus: bus.clone(), images: images.clone(), tokens: tokens.clone() });
        let tasks =
            stratus_volume::scheduler::serve(db.clone(), cfg.clone(), &bus, "volume-scheduler-test").await.unwrap();
        self.extra_tasks.extend(tasks);
        let driver = std::sync::Arc::new(
            stratus_volume::driver::FileBackend::new(
                cfg.volumes_dir(),
                &cfg.volume.file_format,
                "file",
                cfg.volume.capacity_gb,
            )
            .unwrap(),
        );
        let host = stratus_volume::manager::VolumeHost::start(
            db.clone(),
            cfg.clone(),
            bus,
            "volume1",
            driver,
            Some((images, tokens)),
        )
        .await
        .unwrap();
        let validator: std::sync::Arc<dyn stratus_core::TokenValidator> =
            std::sync::Arc::new(stratus_identity::token::Validator(self.identity.clone()));
        let router = stratus_volume::router(svc.clone(), validator);
        self.extra_tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }));
        self.volume_url = Some(format!("http://{addr}"));
        self.volume = Some(svc);
        self.volume_host = Some(host);
    }

    /// A request to the block storage API (`path` under `/v3`) at microversion `mv`.
    pub async fn cinder(&self, method: Method, path: &str, token: &str, mv: &str, body: Option<Value>) -> Resp {
        let base = self.volume_url.as_deref().expect("start compute with compute.block_storage");
        let mut rb = self
            .http
            .request(method, format!("{base}/v3{path}"))
            .header("x-auth-token", token)
            .header("openstack-api-version", format!("volume {mv}"));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        Self::resp(rb.send().await.unwrap()).await
    }

    /// Serve the network API (Neutron) on an ephemeral port over this cloud's
    /// database, registered in the catalog as `network`.
    pub async fn start_network(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.serve_network(listener).await;
    }

    async fn serve_network(&mut self, listener: tokio::net::TcpListener) {
        let db = self.identity.db.clone();
        db.migrate::<stratus_network::Migrator>().await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut cfg = self.identity.cfg.clone();
        cfg.network.listen = addr.to_string();
        let svc = stratus_network::NetworkService::open(cfg, db).unwrap();
        let validator: std::sync::Arc<dyn stratus_core::TokenValidator> =
            std::sync::Arc::new(stratus_identity::token::Validator(self.identity.clone()));
        let router = stratus_network::router(svc.clone(), validator);
        self.extra_tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        }));
        self.network_url = Some(format!("http://{addr}"));
        self.network = Some(svc);
    }

    /// Attach the network API to a bus (the compute roles' when compute
    /// runs, else a new in-process one) and start a fake network agent per
    /// host on it: ports bound to those hosts are wired and go ACTIVE.
    pub async fn start_network_agents(&mut self, hosts: &[&str]) {
        let svc = self.network.clone().expect("start_network first");
        let bus = match (svc.bus(), &self.compute) {
            (Some(b), _) => b.clone(),
            (None, Some(c)) => c.shared.bus.clone(),
            (None, None) => stratus_compute::roles::connect_bus(&svc.cfg).await.unwrap(),
        };
        svc.attach_bus(bus.clone()).await.unwrap();
        for h in hosts {
            let opts = stratus_network::agent::FakeAgentOptions {
                report_interval: std::time::Duration::from_secs(svc.cfg.network.agent_report_interval.max(1)),
                availability_zone: svc.cfg.network.agent_availability_zone.clone(),
                ..Default::default()
            };
            let agent =
                stratus_network::agent::FakeAgent::start_with(svc.db.clone(), bus.clone(), h, opts).await.unwrap();
            self.agents.push(agent);
        }
    }

    /// The fake network agent of `host`.
    pub fn agent(&self, host: &str) -> &stratus_network::agent::FakeAgent {
        self.agents.iter().find(|a| a.host == host).expect("no fake network agent on that host")
    }

    /// A request to the network API (`path` under `/v2.0`, or `/` itself).
    pub async fn neutron(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
        self.neutron_h(method, path, token, body, &[]).await
    }

    pub async fn neutron_h(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let base = self.network_url.as_deref().expect("start_network first");
        let url = if path == "/" { format!("{base}/") } else { format!("{base}/v2.0{path}") };
        let mut rb = self.http.request(method, url).header("x-auth-token", token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        Self::resp(rb.send().await.unwrap()).await
    }

    /// A cloud with compute: identity, image, placement and compute APIs, a
    /// conductor, a scheduler and one fake compute host per name in `hosts`.
    pub async fn start_compute(
        backend: &'static str,
        db_url: &str,
        hosts: &[&str],
        tweak: impl FnOnce(&mut stratus_core::Config),
    ) -> Cloud {
        let placement_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let compute_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let network_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let volume_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (p_addr, c_addr) = (placement_listener.local_addr().unwrap(), compute_listener.local_addr().unwrap());
        let n_addr = network_listener.local_addr().unwrap();
        let v_addr = volume_listener.local_addr().unwrap();
        let mut cloud = Self::start_with(backend, db_url, |cfg| {
            cfg.placement.listen = p_addr.to_string();
            cfg.compute.listen = c_addr.to_string();
            cfg.network.listen = n_addr.to_string();
            // servers without networking unless the test turns it on (then the network API runs too)
            cfg.compute.networking = false;
            // servers without volumes unless the test turns them on (then the volume API runs too)
            cfg.compute.block_storage = false;
            cfg.volume.listen = v_addr.to_string();
            cfg.volume.public_url = format!("http://{v_addr}");
            cfg.service_user.password = "testkit-service-secret".into();
            cfg.compute.report_interval = 1;
            cfg.compute.service_down_time = 5;
            tweak(cfg);
        })
        .await;
        let cfg = cloud.identity.cfg.clone();
        let db = cloud.identity.db.clone();
        db.migrate::<stratus_placement::Migrator>().await.unwrap();
        db.migrate::<stratus_compute::Migrator>().await.unwrap();
        db.migrate::<stratus_saga::Migrator>().await.unwrap();
        stratus_identity::bootstrap::ensure_service_user(
            &cloud.identity,
            "stratus",
            "testkit-service-secret",
            "service",
        )
        .await
        .unwrap();
        stratus_compute::store::flavors::ensure_default_flavors(&db).await.unwrap();
        let validator: std::sync::Arc<dyn stratus_core::TokenValidator> =
            std::sync::Arc::new(stratus_identity::token::Validator(cloud.identity.clone()));
        if cfg.compute.networking {
            cloud.serve_network(network_listener).await;
        }
        if cfg.compute.block_storage {
            cloud.serve_volume(volume_listener).await;
        }
        let placement = stratus_placement::PlacementService::open(cfg.clone(), db.clone()).unwrap();
        let placement_router = stratus_placement::router(placement, validator.clone());
        let mut tasks = vec![tokio::spawn(async move {
            let _ = axum::serve(placement_listener, placement_router).await;
        })];
        let api = stratus_compute::ComputeService::open(cfg.clone(), db.clone()).unwrap();
        let compute_router = stratus_compute::router(api.clone(), validator);
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(compute_listener, compute_router).await;
        }));
        let bus = stratus_compute::roles::connect_bus(&cfg).await.unwrap();
        let shared = stratus_compute::roles::Shared::new(db.clone(), cfg.clone(), bus).await.unwrap();
        api.attach(shared.deps());
        let conductor = shared.start_conductor("conductor-test").await.unwrap();
        shared.start_scheduler("scheduler-test").await.unwrap();
        let mut started = Vec::new();
        for h in hosts {
            let driver = stratus_compute::roles::driver(&cfg, "fake", h).unwrap();
            started.push(shared.start_compute(h, driver).await.unwrap());
        }
        cloud.compute = Some(ComputeParts {
            placement_url: format!("http://{p_addr}"),
            compute_url: format!("http://{c_addr}"),
            api,
            shared,
            conductor,
            hosts: started,
            tasks,
        });
        if cfg.compute.networking {
            // as `stratus up` does for fake compute hosts
            cloud.start_network_agents(hosts).await;
        }
        cloud
    }

    fn parts(&self) -> &ComputeParts {
        self.compute.as_ref().expect("started without compute: use Cloud::start_compute")
    }

    /// A request to the compute API at microversion `mv` (e.g. "2.96").
    pub async fn nova(&self, method: Method, path: &str, token: &str, mv: &str, body: Option<Value>) -> Resp {
        let mut rb = self
            .http
            .request(method, format!("{}/v2.1{}", self.parts().compute_url, path))
            .header("x-auth-token", token)
            .header("openstack-api-version", format!("compute {mv}"));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        Self::resp(rb.send().await.unwrap()).await
    }

    /// A request to placement at microversion `mv` (e.g. "1.39").
    pub async fn placement(&self, method: Method, path: &str, token: &str, mv: &str, body: Option<Value>) -> Resp {
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.parts().placement_url, path))
            .header("x-auth-token", token)
            .header("openstack-api-version", format!("placement {mv}"));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        Self::resp(rb.send().await.unwrap()).await
    }

    /// An active public image (a few bytes of raw data) to boot servers from.
    pub async fn boot_image(&self, admin: &str) -> String {
        let img = self
            .create_image(
                admin,
                json!({"name": "boot", "disk_format": "raw", "container_format": "bare", "visibility": "public"}),
            )
            .await;
        let id = img["id"].as_str().unwrap().to_string();
        let r = self.upload(admin, &id, vec![7u8; 4096]).await;
        assert_eq!(r.status, 204, "{}", r.text);
        id
    }

    /// Poll a server until `done(server)` holds; panics after `secs`.
    pub async fn wait_server(&self, token: &str, id: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let r = self.nova(Method::GET, &format!("/servers/{id}"), token, "2.96", None).await;
            if r.status == 404 && done(&Value::Null) {
                return Value::Null;
            }
            if r.status == 200 && done(&r.body["server"]) {
                return r.body["server"].clone();
            }
            if std::time::Instant::now() > deadline {
                panic!("server {id} did not reach the state in {secs}s: {} {}", r.status, r.text);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        self.call_h(method, path, token, body, &[]).await
    }

    pub async fn call_h(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut rb = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(t) = token {
            rb = rb.header("x-auth-token", t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    pub async fn raw(&self, method: Method, path: &str, token: Option<&str>, body: &str) -> Resp {
        let mut rb =
            self.http.request(method, format!("{}{}", self.url, path)).header("content-type", "application/json");
        if let Some(t) = token {
            rb = rb.header("x-auth-token", t);
        }
        let r = rb.body(body.to_string()).send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    /// A JSON request to the image API.
    pub async fn image_call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
        let mut rb = self.http.request(method, format!("{}{}", self.image_url, path)).header("x-auth-token", token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        Self::resp(rb.send().await.unwrap()).await
    }

    /// A request to the image API with a raw body of the given content type.
    pub async fn image_bytes(
        &self,
        method: Method,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        let rb = self
            .http
            .request(method, format!("{}{}", self.image_url, path))
            .header("x-auth-token", token)
            .header("content-type", content_type)
            .body(body);
        Self::resp(rb.send().await.unwrap()).await
    }

    /// Create an image from JSON fields; panics unless 201.
    pub async fn create_image(&self, token: &str, fields: Value) -> Value {
        let r = self.image_call(Method::POST, "/v2/images", token, Some(fields)).await;
        assert_eq!(r.status, 201, "image create: {}", r.text);
        r.body
    }

    /// Upload data to an image; returns the response.
    pub async fn upload(&self, token: &str, id: &str, data: Vec<u8>) -> Resp {
        self.image_bytes(Method::PUT, &format!("/v2/images/{id}/file"), token, "application/octet-stream", data).await
    }

    async fn resp(r: reqwest::Response) -> Resp {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body)).await
    }
    pub async fn put(&self, path: &str, token: &str) -> Resp {
        self.call(Method::PUT, path, Some(token), None).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Issue a token; returns (token, body) or panics with the response.
    pub async fn token(&self, auth: Value) -> (String, Value) {
        let r = self.call(Method::POST, "/v3/auth/tokens", None, Some(json!({ "auth": auth }))).await;
        assert_eq!(r.status, 201, "token request failed: {}", r.text);
        (r.header("x-subject-token").unwrap().to_string(), r.body)
    }

    pub async fn try_token(&self, auth: Value) -> Resp {
        self.call(Method::POST, "/v3/auth/tokens", None, Some(json!({ "auth": auth }))).await
    }

    pub async fn admin_token(&self) -> String {
        self.password_token("admin", ADMIN_PASSWORD, Some("admin")).await
    }

    pub async fn password_token(&self, user: &str, password: &str, project: Option<&str>) -> String {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}}});
        if let Some(p) = project {
            auth["scope"] = json!({"project": {"name": p, "domain": {"id": "default"}}});
        }
        self.token(auth).await.0
    }

    /// Create a project and a user with `role` on it; returns (project_id, user_id, token).
    pub async fn user_with_role(&self, admin: &str, role: &str) -> (String, String, String) {
        let n = uuid::Uuid::new_v4().simple().to_string();
        let p = self
            .post("/v3/projects", admin, json!({"project": {"name": format!("p-{n}"), "domain_id": "default"}}))
            .await;
        assert_eq!(p.status, 201, "{}", p.text);
        let pid = p.body["project"]["id"].as_str().unwrap().to_string();
        let u = self
            .post(
                "/v3/users",
                admin,
                json!({"user": {"name": format!("u-{n}"), "domain_id": "default", "password": "pw-secret"}}),
            )
            .await;
        assert_eq!(u.status, 201, "{}", u.text);
        let uid = u.body["user"]["id"].as_str().unwrap().to_string();
        let rid = self.role_id(admin, role).await;
        let g = self.put(&format!("/v3/projects/{pid}/users/{uid}/roles/{rid}"), admin).await;
        assert_eq!(g.status, 204, "{}", g.text);
        let tok = self
            .token(json!({"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": "pw-secret"}}},
                "scope": {"project": {"id": pid}}}))
            .await
            .0;
        (pid, uid, tok)
    }

    pub async fn role_id(&self, admin: &str, name: &str) -> String {
        let r = self.get(&format!("/v3/roles?name={name}"), admin).await;
        r.body["roles"][0]["id"].as_str().unwrap().to_string()
    }
}

/// Start one cloud per reachable backend (SQLite always; PostgreSQL and MariaDB when up).
pub async fn clouds() -> Vec<Cloud> {
    let mut out = Vec::new();
    for (backend, url) in fresh_urls().await {
        out.push(Cloud::start(backend, &url).await);
    }
    out
}
