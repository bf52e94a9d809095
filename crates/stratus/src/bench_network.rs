//! `stratus bench network`: port creates per second through the REST API at
//! concurrency C (single creates, as Nova and clients make them) on an empty
//! network, then the cloud is filled to P ports (bulk creates), the single
//! creates are timed again, and paginated lists are timed:
//! the first page, pages reached by following `next` links, and pages from
//! random markers deep in the collection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

use crate::bench_cloud::{BenchCloud, pct};

#[derive(Args)]
pub struct NetworkBench {
    /// Ports in the cloud when lists are timed.
    #[arg(long, default_value_t = 100_000)]
    ports: usize,
    /// Single port creates timed for the create rate.
    #[arg(long, default_value_t = 5_000)]
    creates: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Page size of the timed lists.
    #[arg(long, default_value_t = 100)]
    page: usize,
    /// Timed list requests.
    #[arg(long, default_value_t = 500)]
    lists: usize,
    /// Database of the throwaway cloud (default: SQLite in its temporary directory).
    #[arg(long)]
    database_url: Option<String>,
}

pub async fn run(b: NetworkBench) -> anyhow::Result<()> {
    let env = [("STRATUS_NETWORK__QUOTA_PORT", "-1".to_string()), ("STRATUS_COMPUTE__LOCAL_HOSTS", "[]".to_string())];
    let cloud =
        BenchCloud::start("network", b.database_url.as_deref(), &env, b.concurrency, |_, _, _| async { true }).await?;
    let net = &cloud.network;
    let n = cloud.post(&format!("{net}/networks"), &json!({"network": {"name": "bench"}})).await?;
    let net_id = n["network"]["id"].as_str().context("no network id")?.to_string();
    // a /14: room for 262k ports
    let s = cloud
        .post(
            &format!("{net}/subnets"),
            &json!({"subnet": {"network_id": net_id, "cidr": "10.64.0.0/14", "ip_version": 4, "name": "bench"}}),
        )
        .await?;
    let _ = s;

    // 1. single creates at concurrency C, on the empty network
    println!("network: database {}, concurrency {}", BenchCloud::db_kind(b.database_url.as_deref()), b.concurrency);
    let have = single_creates(&cloud, &net_id, b.creates, b.concurrency, "p", "on an empty network").await?;

    // 2. fill to P ports with bulk creates of 200
    let fill = b.ports.saturating_sub(have);
    let t1 = Instant::now();
    let chunks: Vec<usize> = (0..fill).step_by(200).map(|start| (fill - start).min(200)).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let chunks = Arc::new(chunks);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (http, url, token, next, net_id, chunks) = (
            cloud.http.clone(),
            format!("{net}/ports"),
            cloud.token.clone(),
            next.clone(),
            net_id.clone(),
            chunks.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&count) = chunks.get(i) else { return anyhow::Ok(()) };
                let ports: Vec<Value> =
                    (0..count).map(|j| json!({"network_id": net_id, "name": format!("f{i}-{j}")})).collect();
                let r = http.post(&url).header("x-auth-token", &token).json(&json!({"ports": ports})).send().await?;
                anyhow::ensure!(r.status().as_u16() == 201, "bulk create: {}", r.text().await.unwrap_or_default());
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!("  filled to {} ports in {:.1} s (bulk creates of 200)", have + fill, t1.elapsed().as_secs_f64());
    // the same single creates with the network (and its /14) that full
    single_creates(&cloud, &net_id, b.creates, b.concurrency, "q", &format!("at {} ports", have + fill)).await?;

    // 3. timed lists: first pages, next links, random markers
    let ids: Vec<String> = {
        // every id, through the API, paging by 1000 (also what a client walking the collection does)
        let mut ids = Vec::new();
        let mut url = format!("{net}/ports?limit=1000&fields=id");
        loop {
            let v: Value = cloud.http.get(&url).header("x-auth-token", &cloud.token).send().await?.json().await?;
            ids.extend(
                v["ports"].as_array().into_iter().flatten().filter_map(|p| p["id"].as_str().map(str::to_string)),
            );
            match v["ports_links"].as_array().and_then(|l| l.iter().find(|l| l["rel"] == "next")) {
                Some(l) => url = l["href"].as_str().unwrap_or_default().to_string(),
                None => break,
            }
        }
        ids
    };
    println!("  walked all {} ports by 1000", ids.len());
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let t2 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (http, net, token, next, ids) =
            (cloud.http.clone(), net.clone(), cloud.token.clone(), next.clone(), ids.clone());
        let (total, page) = (b.lists, b.page);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(lat);
                }
                // a third first pages, the rest from random markers
                let url = if i % 3 == 0 || ids.is_empty() {
                    format!("{net}/ports?limit={page}")
                } else {
                    let m = &ids[rand::random_range(0..ids.len())];
                    format!("{net}/ports?limit={page}&marker={m}")
                };
                let t = Instant::now();
                let r = http.get(&url).header("x-auth-token", &token).send().await?;
                anyhow::ensure!(r.status().is_success(), "list: {}", r.status());
                let _ = r.bytes().await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let took = t2.elapsed();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "  list pages of {} at {} ports (concurrency 4): {} requests in {:.2} s; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 100 ms: {})",
        b.page,
        ids.len(),
        lat.len(),
        took.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0),
        if pct(&lat, 0.99) < 100.0 { "met" } else { "NOT met" }
    );
    drop(cloud);
    Ok(())
}

/// `n` single port creates at concurrency `c` (as Nova and clients make
/// them), timed and printed; how many were created.
async fn single_creates(
    cloud: &BenchCloud,
    net_id: &str,
    n: usize,
    c: usize,
    prefix: &'static str,
    when: &str,
) -> anyhow::Result<usize> {
    let t0 = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (http, url, token, next, net_id) = (
            cloud.http.clone(),
            format!("{}/ports", cloud.network),
            cloud.token.clone(),
            next.clone(),
            net_id.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut failed) = (Vec::new(), 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .header("x-auth-token", &token)
                    .json(&json!({"port": {"network_id": net_id, "name": format!("{prefix}{i}")}}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => lat.push(t.elapsed().as_secs_f64() * 1000.0),
                    _ => failed += 1,
                }
            }
            (lat, failed)
        }));
    }
    let (mut lat, mut failed) = (Vec::new(), 0);
    for t in tasks {
        let (l, f) = t.await?;
        lat.extend(l);
        failed += f;
    }
    let took = t0.elapsed();
    lat.sort_by(|a, b| a.total_cmp(b));
    let rate = lat.len() as f64 / took.as_secs_f64();
    println!(
        "  port create {when}: {} created, {failed} failed in {:.2} s = {rate:.0} creates/s; p50 {:.1} ms, p99 {:.1} ms (target >= 1,000/s: {})",
        lat.len(),
        took.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        if rate >= 1000.0 { "met" } else { "NOT met" }
    );
    Ok(lat.len())
}
