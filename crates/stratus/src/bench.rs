//! `stratus bench identity`: requests/s and latency per identity operation,
//! over loopback, against a running cloud or one started in process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use stratus_core::Config;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Password, token and application-credential auth, and token validation.
    Identity(IdentityBench),
}

#[derive(Args)]
pub struct IdentityBench {
    /// Identity URL of a running cloud (e.g. http://127.0.0.1:5000). Without it,
    /// a fresh cloud is started in this process on a free port in a temporary data dir.
    #[arg(long)]
    url: Option<String>,
    /// Admin password of the running cloud.
    #[arg(long, env = "STRATUS_ADMIN_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Concurrent requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds per operation.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Operations to run (comma separated): validate, token, appcred, password.
    #[arg(long, default_value = "validate,token,appcred,password")]
    ops: String,
}

pub async fn run(cmd: BenchCommand, cfg: &Config) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Identity(b) => identity(b, cfg).await,
    }
}

struct Target {
    url: String,
    password: String,
    _guard: Option<tokio::task::JoinHandle<()>>,
}

async fn start_local(cfg: &Config) -> anyhow::Result<Target> {
    let dir = std::env::temp_dir().join(format!("stratus-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = cfg.clone();
    cfg.data_dir = dir.clone();
    cfg.database.url = String::new();
    cfg.identity.fernet_key_repository = String::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    cfg.identity.listen = addr.to_string();
    cfg.identity.public_url = String::new();
    let db = stratus_db::Db::connect(&cfg.database_url()).await?;
    db.migrate::<stratus_identity::Migrator>().await?;
    stratus_identity::fernet::setup(&cfg.fernet_key_repository(), 3)?;
    let id = stratus_identity::Identity::open(cfg.clone(), db).await?;
    let password = "bench-admin-password".to_string();
    let entries = vec![stratus_identity::bootstrap::ServiceEntry {
        kind: "identity".into(),
        name: "keystone".into(),
        url: format!("http://{addr}/v3"),
    }];
    stratus_identity::bootstrap::run(&id, &password, "RegionOne", &entries).await.map_err(|e| anyhow!("{e}"))?;
    let router = stratus_identity::router(id);
    let guard = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    println!("started a fresh cloud in process at http://{addr} (data in {})", dir.display());
    Ok(Target { url: format!("http://{addr}"), password, _guard: Some(guard) })
}

fn password_body(password: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
}

async fn issue(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<(String, Value)> {
    let r = client.post(format!("{url}/v3/auth/tokens?nocatalog")).json(body).send().await?;
    let status = r.status();
    let token = r.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body: Value = r.json().await.unwrap_or(Value::Null);
    match token {
        Some(t) if status.as_u16() == 201 => Ok((t, body)),
        _ => bail!("token request failed: {status} {body}"),
    }
}

struct Stats {
    ok: usize,
    failed: usize,
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

async fn drive<F, Fut>(concurrency: usize, seconds: u64, make: F) -> Stats
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                let ok = make().await;
                if ok {
                    lat.push(t.elapsed().as_micros() as u64);
                } else {
                    failed += 1;
                }
            }
            (lat, failed)
        }));
    }
    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        if let Ok((l, f)) = t.await {
            all.extend(l);
            failed += f;
        }
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    Stats { ok: all.len(), failed, latencies_us: all, elapsed }
}

fn pct(v: &[u64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)] as f64 / 1000.0
}

fn report(name: &str, s: &Stats) {
    println!(
        "{name:<24} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} ok, {} failed, {:.1} s)",
        s.ok as f64 / s.elapsed.as_secs_f64(),
        pct(&s.latencies_us, 0.50),
        pct(&s.latencies_us, 0.99),
        s.ok,
        s.failed,
        s.elapsed.as_secs_f64()
    );
}

async fn identity(b: IdentityBench, cfg: &Config) -> anyhow::Result<()> {
    let target = match &b.url {
        Some(u) => Target {
            url: u.trim_end_matches('/').trim_end_matches("/v3").to_string(),
            password: b.password.clone().context("--password (or STRATUS_ADMIN_PASSWORD) is needed with --url")?,
            _guard: None,
        },
        None => start_local(cfg).await?,
    };
    let client = reqwest::Client::builder().pool_max_idle_per_host(b.concurrency * 2).build()?;
    let url = target.url.clone();
    let (admin_token, body) = issue(&client, &url, &password_body(&target.password)).await?;
    let user_id = body["token"]["user"]["id"].as_str().unwrap_or_default().to_string();
    // an application credential to authenticate with
    let r = client
        .post(format!("{url}/v3/users/{user_id}/application_credentials"))
        .header("x-auth-token", &admin_token)
        .json(&json!({"application_credential": {"name": format!("bench-{}", std::process::id())}}))
        .send()
        .await?;
    let ac: Value = r.json().await?;
    let ac_id = ac["application_credential"]["id"].as_str().unwrap_or_default().to_string();
    let ac_secret = ac["application_credential"]["secret"].as_str().unwrap_or_default().to_string();
    if ac_id.is_empty() {
        bail!("could not create an application credential: {ac}");
    }
    let (subject, _) = issue(&client, &url, &password_body(&target.password)).await?;
    println!("identity bench against {url}: concurrency {}, {} s per operation", b.concurrency, b.seconds);
    for op in b.ops.split(',').map(str::trim) {
        let client = client.clone();
        let url = url.clone();
        let stats = match op {
            "validate" => {
                let (admin, subject) = (admin_token.clone(), subject.clone());
                drive(b.concurrency, b.seconds, move || {
                    let (c, u, a, s) = (client.clone(), url.clone(), admin.clone(), subject.clone());
                    async move {
                        match c
                            .get(format!("{u}/v3/auth/tokens"))
                            .header("x-auth-token", a)
                            .header("x-subject-token", s)
                            .send()
                            .await
                        {
                            Ok(r) => r.status().as_u16() == 200 && r.bytes().await.is_ok(),
                            Err(_) => false,
                        }
                    }
                })
                .await
            }
            "token" => {
                let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": subject.clone()}}}});
                drive(b.concurrency, b.seconds, move || post(client.clone(), url.clone(), body.clone())).await
            }
            "appcred" => {
                let body = json!({"auth": {"identity": {"methods": ["application_credential"],
                    "application_credential": {"id": ac_id.clone(), "secret": ac_secret.clone()}}}});
                drive(b.concurrency, b.seconds, move || post(client.clone(), url.clone(), body.clone())).await
            }
            "password" => {
                let body = password_body(&target.password);
                drive(b.concurrency, b.seconds, move || post(client.clone(), url.clone(), body.clone())).await
            }
            other => bail!("unknown operation {other:?}"),
        };
        report(op, &stats);
    }
    Ok(())
}

async fn post(c: reqwest::Client, url: String, body: Value) -> bool {
    match c.post(format!("{url}/v3/auth/tokens?nocatalog")).json(&body).send().await {
        Ok(r) => r.status().as_u16() == 201 && r.bytes().await.is_ok(),
        Err(_) => false,
    }
}
