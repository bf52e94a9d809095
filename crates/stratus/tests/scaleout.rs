//! The seed's deployment picture, as separate processes on PostgreSQL and
//! RabbitMQ: `stratus api`, `stratus conductor`, `stratus scheduler` and two
//! `stratus compute --host ...`. Servers boot across both hosts; a conductor
//! killed during a build has its saga finished by a second conductor; a
//! stopped compute host is reported down and new servers go to the other.
//!
//! Needs PostgreSQL and RabbitMQ on this machine; skips loudly without them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_stratus");
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Deployment {
    env: Vec<(String, String)>,
    data: tempfile::TempDir,
}

impl Deployment {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).arg("--data-dir").arg(self.data.path());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let log = self.data.path().join(format!("{}.log", args.join("-")));
        let f = std::fs::File::create(log).unwrap();
        c.stdout(Stdio::null()).stderr(f);
        c
    }
    fn start(&self, args: &[&str]) -> Proc {
        Proc(self.cmd(args).spawn().unwrap())
    }
    fn url(&self, port: u16) -> String {
        format!("http://127.0.0.1:{port}")
    }
}

fn rabbit_up() -> bool {
    std::net::TcpStream::connect_timeout(&"127.0.0.1:5672".parse().unwrap(), Duration::from_secs(1)).is_ok()
}

async fn wait_http(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client.get(url).send().await.is_ok_and(|r| r.status().as_u16() < 500) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not answer");
}

struct Api {
    client: reqwest::Client,
    compute: String,
    token: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .client
            .request(method, format!("{}/v2.1{path}", self.compute))
            .header("x-auth-token", &self.token)
            .header("openstack-api-version", "compute 2.96");
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn server(&self, id: &str) -> Value {
        self.call(reqwest::Method::GET, &format!("/servers/{id}"), None).await.1["server"].clone()
    }

    async fn wait(&self, id: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.server(id).await;
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "server {id} stuck: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn boot(&self, name: &str, image: &str) -> String {
        // the API answers 503 until its process has connected to the bus: wait that out
        let deadline = Instant::now() + Duration::from_secs(30);
        let (s, b) = loop {
            let (s, b) = self
                .call(
                    reqwest::Method::POST,
                    "/servers",
                    Some(json!({"server": {"name": name, "imageRef": image, "flavorRef": "42", "networks": "none"}})),
                )
                .await;
            if s != 503 || Instant::now() > deadline {
                break (s, b);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(s, 202, "{b}");
        b["server"]["id"].as_str().unwrap().to_string()
    }

    async fn compute_states(&self) -> Vec<(String, String)> {
        let (_, b) = self.call(reqwest::Method::GET, "/os-services?binary=nova-compute", None).await;
        b["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["host"].as_str().unwrap().to_string(), s["state"].as_str().unwrap().to_string()))
            .collect()
    }
}

#[tokio::test]
async fn separate_processes_on_postgres_and_rabbitmq() {
    let Some((_, pg)) = stratus_db::testing::fresh_urls().await.into_iter().find(|(b, _)| *b == "postgres") else {
        eprintln!("SKIPPED separate_processes_on_postgres_and_rabbitmq: PostgreSQL is not running on 127.0.0.1:5432");
        return;
    };
    if !rabbit_up() {
        eprintln!("SKIPPED separate_processes_on_postgres_and_rabbitmq: RabbitMQ is not running on 127.0.0.1:5672");
        return;
    }
    let ports = (free_port(), free_port(), free_port(), free_port());
    let suffix = uuid_suffix();
    let env: Vec<(String, String)> = [
        ("STRATUS_DATABASE__URL", pg.clone()),
        ("STRATUS_BUS__URL", AMQP.to_string()),
        ("STRATUS_IDENTITY__LISTEN", format!("127.0.0.1:{}", ports.0)),
        ("STRATUS_IMAGE__LISTEN", format!("127.0.0.1:{}", ports.1)),
        ("STRATUS_PLACEMENT__LISTEN", format!("127.0.0.1:{}", ports.2)),
        ("STRATUS_COMPUTE__LISTEN", format!("127.0.0.1:{}", ports.3)),
        ("STRATUS_NETWORK__LISTEN", format!("127.0.0.1:{}", free_port())),
        ("STRATUS_VOLUME__LISTEN", format!("127.0.0.1:{}", free_port())),
        ("STRATUS_IDENTITY__PASSWORD_HASH_ROUNDS", "4".into()),
        ("STRATUS_COMPUTE__DRIVER", "fake".into()),
        ("STRATUS_NETWORK__AGENT__DRIVER", "fake".into()),
        ("STRATUS_COMPUTE__REPORT_INTERVAL", "1".into()),
        ("STRATUS_COMPUTE__SERVICE_DOWN_TIME", "4".into()),
        ("STRATUS_COMPUTE__SAGA_TAKEOVER_SECONDS", "3".into()),
        ("STRATUS_COMPUTE__FAKE_BOOT_SECONDS", "1.5".into()),
        ("STRATUS_COMPUTE__FAKE_MEMORY_MB", "8192".into()),
        ("STRATUS_COMPUTE__QUOTA_INSTANCES", "-1".into()),
        ("STRATUS_COMPUTE__QUOTA_CORES", "-1".into()),
        ("STRATUS_COMPUTE__QUOTA_RAM", "-1".into()),
        ("STRATUS_LOG", "info,sqlx=warn,sea_orm=warn,access=warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let d = Deployment { env, data: tempfile::tempdir().unwrap() };
    let out = d.cmd(&["bootstrap", "--admin-password", "scale-secret"]).output().unwrap();
    assert!(out.status.success(), "bootstrap: {}", String::from_utf8_lossy(&out.stderr));
    let client = reqwest::Client::new();
    let _api = d.start(&["api"]);
    wait_http(&client, &format!("{}/v3", d.url(ports.0))).await;
    wait_http(&client, &d.url(ports.2)).await;
    wait_http(&client, &d.url(ports.3)).await;
    let conductor1 = d.start(&["conductor", "--host", &format!("cond1-{suffix}")]);
    let _scheduler = d.start(&["scheduler", "--host", &format!("sched-{suffix}")]);
    let (h1, h2) = (format!("h1-{suffix}"), format!("h2-{suffix}"));
    let mut compute1 = Some(d.start(&["compute", "--host", &h1, "--driver", "fake"]));
    let _compute2 = d.start(&["compute", "--host", &h2, "--driver", "fake"]);

    let r = client
        .post(format!("{}/v3/auth/tokens", d.url(ports.0)))
        .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "scale-secret"}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}))
        .send()
        .await
        .unwrap();
    let token = r.headers()["x-subject-token"].to_str().unwrap().to_string();
    let api = Api { client: client.clone(), compute: d.url(ports.3), token: token.clone() };
    // an image to boot from
    let img: Value = client
        .post(format!("{}/v2/images", d.url(ports.1)))
        .header("x-auth-token", &token)
        .json(&json!({"name": "boot", "disk_format": "raw", "container_format": "bare", "visibility": "public"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let image = img["id"].as_str().unwrap().to_string();
    let up = client
        .put(format!("{}/v2/images/{image}/file", d.url(ports.1)))
        .header("x-auth-token", &token)
        .header("content-type", "application/octet-stream")
        .body(vec![1u8; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(up.status().as_u16(), 204);
    // both hosts register and report up
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states = api.compute_states().await;
        // up, and with inventory in placement (a service is up a moment before
        // its first inventory report: the scheduler would see one host only)
        let rps: Value = client
            .get(format!("{}/resource_providers?resources=VCPU:1,MEMORY_MB:64", d.url(ports.2)))
            .header("x-auth-token", &token)
            .header("openstack-api-version", "placement 1.4")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        let with_room: Vec<&str> =
            rps["resource_providers"].as_array().into_iter().flatten().filter_map(|r| r["name"].as_str()).collect();
        if [&h1, &h2]
            .iter()
            .all(|h| states.iter().any(|(host, st)| &host == h && st == "up") && with_room.contains(&h.as_str()))
        {
            break;
        }
        assert!(Instant::now() < deadline, "compute hosts did not come up: {states:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // servers boot across both hosts
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(api.boot(&format!("spread-{n}"), &image).await);
    }
    let mut hosts = BTreeSet::new();
    for id in &ids {
        let s = api.wait(id, 60, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
        hosts.insert(s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string());
    }
    assert_eq!(hosts, BTreeSet::from([h1.clone(), h2.clone()]), "servers should spread over both hosts");

    // kill the conductor while a build waits on its host; a second conductor finishes it
    let id = api.boot("orphaned", &image).await;
    api.wait(&id, 30, |s| s["OS-EXT-STS:task_state"] == "spawning" || s["status"] == "ACTIVE").await;
    drop(conductor1);
    let _conductor2 = d.start(&["conductor", "--host", &format!("cond2-{suffix}")]);
    let s = api.wait(&id, 60, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await;
    assert_eq!(s["status"], "ACTIVE", "the second conductor should finish the orphaned build: {s}");
    // and a build that starts with no conductor at all is adopted too
    ids.push(id);

    // stop a compute host: it is reported down, new servers go to the other
    drop(compute1.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states = api.compute_states().await;
        if states.iter().any(|(h, st)| h == &h1 && st == "down") {
            break;
        }
        assert!(Instant::now() < deadline, "{h1} not reported down: {states:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in 0..3 {
        let id = api.boot(&format!("after-{n}"), &image).await;
        let s = api.wait(&id, 60, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
        assert_eq!(s["OS-EXT-SRV-ATTR:host"], json!(h2), "new servers go to the host that is up");
        ids.push(id);
    }

    // servers on the live host delete through it; those on the dead host are deleted locally
    for id in &ids {
        let (s, _) = api.call(reqwest::Method::DELETE, &format!("/servers/{id}"), None).await;
        assert_eq!(s, 204);
    }
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, _) = api.call(reqwest::Method::GET, &format!("/servers/{id}"), None).await;
            if s == 404 {
                break;
            }
            assert!(Instant::now() < deadline, "server {id} not deleted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let usages: Value = client
        .get(format!("{}/usages?project_id={}", d.url(ports.2), img["owner"].as_str().unwrap()))
        .header("x-auth-token", &token)
        .header("openstack-api-version", "placement 1.9")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        usages["usages"].as_object().unwrap().values().all(|v| v.as_i64() == Some(0)),
        "every claim released: {usages}"
    );
}

fn uuid_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() & 0xffff_ffff
    )
}
