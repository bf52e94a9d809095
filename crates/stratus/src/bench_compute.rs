//! `stratus bench compute`: N servers on M fake hosts through the REST API at
//! concurrency C, in a throwaway `stratus up` (this same program) on SQLite or
//! a given database: servers/s to ACTIVE and the create call's p50/p99.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

use crate::bench_cloud::{BenchCloud, pct};

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

pub async fn run(b: ComputeBench) -> anyhow::Result<()> {
    let hosts: Vec<String> = (1..=b.hosts).map(|i| format!("\"bench-{i:03}\"")).collect();
    let env = [
        ("STRATUS_COMPUTE__LOCAL_HOSTS", format!("[{}]", hosts.join(","))),
        ("STRATUS_COMPUTE__QUOTA_INSTANCES", "-1".into()),
        ("STRATUS_COMPUTE__QUOTA_CORES", "-1".into()),
        ("STRATUS_COMPUTE__QUOTA_RAM", "-1".into()),
        ("STRATUS_COMPUTE__REPORT_INTERVAL", "30".into()),
    ];
    let want = b.hosts;
    // ready when every host has registered
    let cloud =
        BenchCloud::start("compute", b.database_url.as_deref(), &env, b.concurrency, |http, compute, t| async move {
            let Ok(s) = http.get(format!("{compute}/os-hypervisors")).header("x-auth-token", &t).send().await else {
                return false;
            };
            let v: Value = s.json().await.unwrap_or(Value::Null);
            v["hypervisors"].as_array().is_some_and(|a| a.len() >= want)
        })
        .await?;
    let (http, token, compute, imp) = (&cloud.http, &cloud.token, cloud.compute.clone(), cloud.image.clone());
    println!("{} fake hosts registered", b.hosts);
    let img: Value = http
        .post(format!("{imp}/v2/images"))
        .header("x-auth-token", token)
        .json(&json!({"name": "bench", "disk_format": "raw", "container_format": "bare", "visibility": "public"}))
        .send()
        .await?
        .json()
        .await?;
    let image = img["id"].as_str().context("no image id")?.to_string();
    http.put(format!("{imp}/v2/images/{image}/file"))
        .header("x-auth-token", token)
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
                    .header("x-auth-token", token.as_str())
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
            .header("x-auth-token", token)
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
        BenchCloud::db_kind(b.database_url.as_deref())
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
    drop(cloud);
    Ok(())
}
