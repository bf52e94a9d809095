//! `stratus bench compute`: N servers on M fake hosts through the REST API at
//! concurrency C, in a throwaway `stratus up` (this same program) on SQLite or
//! a given database: servers/s to ACTIVE and the create call's p50/p99.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

#[derive(Args)]
pub struct ComputeBench {
    /// Servers to create.
    #[arg(long, default_value_t = 1000)]
    servers: usize,
    /// Fake compute hosts.
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Create requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Database of the throwaway cloud (default: SQLite in its temporary directory),
    /// e.g. postgres://root@127.0.0.1:5432/bench (the database must exist and be empty).
    #[arg(long)]
    database_url: Option<String>,
}

struct Child(std::process::Child, std::path::PathBuf);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0").context("no free port")?.local_addr()?.port())
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v[(((v.len() - 1) as f64) * p).round() as usize]
}

pub async fn run(b: ComputeBench) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!(
        "stratus-bench-compute-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir)?;
    let (idp, imp, plp, cop) = (port()?, port()?, port()?, port()?);
    let hosts: Vec<String> = (1..=b.hosts).map(|i| format!("\"bench-{i:03}\"")).collect();
    let log = std::fs::File::create(dir.join("server.log"))?;
    let mut cmd = std::process::Command::new(&exe);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STRATUS_") {
            cmd.env_remove(name);
        }
    }
    cmd.arg("up")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--admin-password=bench-admin")
        .env("STRATUS_IDENTITY__LISTEN", format!("127.0.0.1:{idp}"))
        .env("STRATUS_IMAGE__LISTEN", format!("127.0.0.1:{imp}"))
        .env("STRATUS_PLACEMENT__LISTEN", format!("127.0.0.1:{plp}"))
        .env("STRATUS_COMPUTE__LISTEN", format!("127.0.0.1:{cop}"))
        .env("STRATUS_NETWORK__LISTEN", format!("127.0.0.1:{}", port()?))
        .env("STRATUS_COMPUTE__LOCAL_HOSTS", format!("[{}]", hosts.join(",")))
        .env("STRATUS_COMPUTE__QUOTA_INSTANCES", "-1")
        .env("STRATUS_COMPUTE__QUOTA_CORES", "-1")
        .env("STRATUS_COMPUTE__QUOTA_RAM", "-1")
        .env("STRATUS_COMPUTE__REPORT_INTERVAL", "30")
        .env("STRATUS_IDENTITY__PASSWORD_HASH_ROUNDS", "4")
        .env("STRATUS_LOG", "warn")
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(u) = &b.database_url {
        cmd.env("STRATUS_DATABASE__URL", u);
    }
    let child = Child(cmd.spawn().context("cannot start stratus up")?, dir.clone());
    let http = reqwest::Client::builder().pool_max_idle_per_host(b.concurrency * 2).build()?;
    let identity = format!("http://127.0.0.1:{idp}");
    let compute = format!("http://127.0.0.1:{cop}/v2.1");
    let started = Instant::now();
    // ready when every host has registered
    let token = loop {
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the cloud did not come up; see {}", dir.join("server.log").display());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Ok(r) = http
            .post(format!("{identity}/v3/auth/tokens"))
            .json(&json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "bench-admin"}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}))
            .send()
            .await
        else {
            continue;
        };
        let Some(t) = r.headers().get("x-subject-token").and_then(|v| v.to_str().ok()).map(str::to_string) else {
            continue;
        };
        let Ok(s) = http.get(format!("{compute}/os-hypervisors")).header("x-auth-token", &t).send().await else {
            continue;
        };
        let v: Value = s.json().await.unwrap_or(Value::Null);
        if v["hypervisors"].as_array().is_some_and(|a| a.len() >= b.hosts) {
            break t;
        }
    };
    println!("cloud up with {} fake hosts in {:.1} s (pid {})", b.hosts, started.elapsed().as_secs_f64(), child.0.id());
    let img: Value = http
        .post(format!("http://127.0.0.1:{imp}/v2/images"))
        .header("x-auth-token", &token)
        .json(&json!({"name": "bench", "disk_format": "raw", "container_format": "bare", "visibility": "public"}))
        .send()
        .await?
        .json()
        .await?;
    let image = img["id"].as_str().context("no image id")?.to_string();
    http.put(format!("http://127.0.0.1:{imp}/v2/images/{image}/file"))
        .header("x-auth-token", &token)
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 4096])
        .send()
        .await?;

    let t0 = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..b.concurrency {
        let (http, compute, token, image, next) =
            (http.clone(), compute.clone(), token.clone(), image.clone(), next.clone());
        let n = b.servers;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                let r = http
                    .post(format!("{compute}/servers"))
                    .header("x-auth-token", &token)
                    .header("openstack-api-version", "compute 2.96")
                    .json(&json!({"server": {"name": format!("bench-{i}"), "imageRef": image, "flavorRef": "42", "networks": "none"}}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 202 => lat.push(t.elapsed().as_secs_f64() * 1000.0),
                    _ => failed += 1,
                }
            }
            (lat, failed)
        }));
    }
    let mut lat = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await?;
        lat.extend(l);
        failed += f;
    }
    let api_done = t0.elapsed();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    // until every server is ACTIVE (or ERROR)
    let (mut active, mut error, mut last);
    loop {
        let v: Value = http
            .get(format!("{compute}/servers/detail?limit=1000000"))
            .header("x-auth-token", &token)
            .header("openstack-api-version", "compute 2.96")
            .send()
            .await?
            .json()
            .await?;
        let all = v["servers"].as_array().cloned().unwrap_or_default();
        active = all.iter().filter(|s| s["status"] == "ACTIVE").count();
        error = all.iter().filter(|s| s["status"] == "ERROR").count();
        last = all;
        if active + error >= lat.len() || t0.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let total = t0.elapsed();
    // the hosts the servers landed on (admin view of the last listing)
    let hosts_used =
        last.iter().filter_map(|s| s["OS-EXT-SRV-ATTR:host"].as_str()).collect::<std::collections::BTreeSet<_>>().len();
    println!(
        "compute: {} servers on {} fake hosts, concurrency {}, database {}",
        b.servers,
        b.hosts,
        b.concurrency,
        b.database_url.as_deref().map(|u| u.split("://").next().unwrap_or("?")).unwrap_or("sqlite")
    );
    println!(
        "  create calls: {} accepted, {failed} failed in {:.2} s; p50 {:.1} ms, p99 {:.1} ms",
        lat.len(),
        api_done.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    println!(
        "  ACTIVE: {active}, ERROR: {error} after {:.2} s = {:.1} servers/s to ACTIVE (on {hosts_used} hosts)",
        total.as_secs_f64(),
        active as f64 / total.as_secs_f64()
    );
    let target = b.servers == 1000 && b.hosts == 100;
    if target {
        println!(
            "  target (1000 servers on 100 hosts ACTIVE in < 20 s): {}",
            if active == 1000 && total < Duration::from_secs(20) { "met" } else { "NOT met" }
        );
    }
    drop(child);
    Ok(())
}
