//! `stratus bench boot --driver qemu`: real guests (the tiny guest) through
//! the REST API in a throwaway `stratus up`: for each, the time from
//! `POST /servers` to the guest's marker line on its console (read through
//! `os-getConsoleOutput`, as a user would), p50/p90; then the host-side
//! memory of each guest's QEMU process.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::bench_cloud::{BenchCloud, pct};

#[derive(Args)]
pub struct BootBench {
    /// Hypervisor driver (only `qemu` boots real guests).
    #[arg(long, default_value = "qemu")]
    driver: String,
    /// Guests to boot.
    #[arg(long, default_value_t = 10)]
    guests: usize,
    /// Guests booting at once (1: each boot is timed alone).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Accelerator: auto (KVM when a probe guest runs under it), kvm or tcg.
    #[arg(long, default_value = "auto")]
    accel: String,
    /// Flavor of the guests.
    #[arg(long, default_value = "1")]
    flavor: String,
}

/// Resident memory of the QEMU process of a guest, in KiB.
fn qemu_rss_kib(uuid: &str) -> Option<u64> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        if !String::from_utf8_lossy(&cmd).contains(&format!("guest={uuid}")) {
            continue;
        }
        let status = std::fs::read_to_string(e.path().join("status")).ok()?;
        return status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok());
    }
    None
}

async fn boot_one(cloud: &BenchCloud, image: &str, flavor: &str, i: usize) -> anyhow::Result<(String, f64)> {
    let t0 = Instant::now();
    let r = cloud
        .http
        .post(format!("{}/servers", cloud.compute))
        .header("x-auth-token", &cloud.token)
        .header("openstack-api-version", "compute 2.37")
        .json(&json!({"server": {"name": format!("boot-{i}"), "imageRef": image, "flavorRef": flavor, "networks": "none"}}))
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("create refused: {status}: {v}");
    }
    let id = v["server"]["id"].as_str().context("no server id")?.to_string();
    let marker = format!("STRATUS-GUEST-READY uuid={id}");
    loop {
        if t0.elapsed() > Duration::from_secs(120) {
            bail!("guest {id} printed no marker within 120 s");
        }
        let r = cloud
            .http
            .post(format!("{}/servers/{id}/action", cloud.compute))
            .header("x-auth-token", &cloud.token)
            .json(&json!({"os-getConsoleOutput": {"length": 50}}))
            .send()
            .await?;
        if r.status().is_success() {
            let v: Value = r.json().await.unwrap_or(Value::Null);
            if v["output"].as_str().is_some_and(|o| o.contains(&marker)) {
                return Ok((id, t0.elapsed().as_secs_f64()));
            }
        } else {
            // not ACTIVE yet (409) is expected; an ERROR server is not
            let s: Value = cloud
                .http
                .get(format!("{}/servers/{id}", cloud.compute))
                .header("x-auth-token", &cloud.token)
                .send()
                .await?
                .json()
                .await
                .unwrap_or(Value::Null);
            if s["server"]["status"] == "ERROR" {
                bail!("guest {id} went to ERROR: {}", s["server"]["fault"]);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run(b: BootBench) -> anyhow::Result<()> {
    if b.driver != "qemu" {
        bail!("only the qemu driver boots guests (the fake one has no console to time)");
    }
    let env = [
        ("STRATUS_COMPUTE__DRIVER", "qemu".to_string()),
        ("STRATUS_COMPUTE__QEMU_ACCEL", b.accel.clone()),
        ("STRATUS_COMPUTE__LOCAL_HOSTS", "[\"bench-qemu\"]".to_string()),
        ("STRATUS_COMPUTE__QEMU_BRIDGE", format!("brb{:05}", std::process::id() % 100_000)),
        ("STRATUS_COMPUTE__SHUTDOWN_TIMEOUT", "10".to_string()),
        // every guest stays up until the end (for the memory figure): room for more than 4 per core
        ("STRATUS_COMPUTE__CPU_ALLOCATION_RATIO", "16".to_string()),
    ];
    // ready when the host has registered and the tiny guest is in the image service
    let cloud = BenchCloud::start("boot", None, &env, 8, |http, compute, t| async move {
        let Ok(s) = http.get(format!("{compute}/os-hypervisors")).header("x-auth-token", &t).send().await else {
            return false;
        };
        let v: Value = s.json().await.unwrap_or(Value::Null);
        v["hypervisors"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await?;
    let guard = Guests { cloud: &cloud, ids: std::sync::Mutex::new(Vec::new()) };
    let image = {
        let started = Instant::now();
        loop {
            let v: Value = cloud
                .http
                .get(format!("{}/v2/images?name=tiny", cloud.image))
                .header("x-auth-token", &cloud.token)
                .send()
                .await?
                .json()
                .await?;
            if let Some(id) = v["images"][0]["id"].as_str()
                && v["images"][0]["status"] == "active"
            {
                break id.to_string();
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("no active image \"tiny\": build the tiny guest first (scripts/tiny-guest/build)");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let hv: Value = cloud
        .http
        .get(format!("{}/os-hypervisors/detail", cloud.compute))
        .header("x-auth-token", &cloud.token)
        .send()
        .await?
        .json()
        .await?;
    let cpu_info = &hv["hypervisors"][0]["cpu_info"];
    let cpu_info: Value = cpu_info.as_str().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(cpu_info.clone());
    println!(
        "driver qemu, accelerator {} ({}); {} guests of flavor {}, {} at a time",
        cpu_info["accel"].as_str().unwrap_or("?"),
        cpu_info["accel_reason"].as_str().unwrap_or(""),
        b.guests,
        b.flavor,
        b.concurrency
    );

    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut times = Vec::new();
    let worker = || async {
        let mut mine = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= b.guests {
                return anyhow::Ok(mine);
            }
            let (id, secs) = boot_one(&cloud, &image, &b.flavor, i).await?;
            guard.ids.lock().unwrap_or_else(|e| e.into_inner()).push(id.clone());
            println!("  guest {i:>3}: marker after {secs:.2} s");
            mine.push((id, secs));
        }
    };
    let all = futures::future::join_all((0..b.concurrency.max(1)).map(|_| worker())).await;
    let mut booted = Vec::new();
    for r in all {
        booted.extend(r?);
    }
    times.extend(booted.iter().map(|(_, s)| *s));
    times.sort_by(f64::total_cmp);
    let mut rss: Vec<u64> = booted.iter().filter_map(|(id, _)| qemu_rss_kib(id)).collect();
    rss.sort_unstable();
    let flavor: Value = cloud
        .http
        .get(format!("{}/flavors/{}", cloud.compute, b.flavor))
        .header("x-auth-token", &cloud.token)
        .send()
        .await?
        .json()
        .await?;
    let ram = flavor["flavor"]["ram"].as_i64().unwrap_or(0);
    let (p50, p90) = (pct(&times, 0.5), pct(&times, 0.9));
    let kvm = cpu_info["accel"] == "kvm";
    let target = if kvm { 1.0 } else { 5.0 };
    println!(
        "POST /servers -> marker on the console: p50 {p50:.2} s, p90 {p90:.2} s, min {:.2} s, max {:.2} s (target p50 < {target} s under {}: {})",
        times.first().copied().unwrap_or(0.0),
        times.last().copied().unwrap_or(0.0),
        if kvm { "KVM" } else { "TCG" },
        if p50 < target { "met" } else { "NOT met" }
    );
    if !rss.is_empty() {
        let med = rss[rss.len() / 2] as f64 / 1024.0;
        println!(
            "host-side memory per guest (QEMU RSS with {} guests up, flavor RAM {ram} MiB): median {med:.0} MiB, max {:.0} MiB",
            rss.len(),
            *rss.last().unwrap_or(&0) as f64 / 1024.0
        );
    }
    guard.delete_all().await;
    Ok(())
}

/// The guests booted, deleted at the end (also when the bench fails): their
/// QEMU processes outlive a killed `stratus up` by design.
struct Guests<'a> {
    cloud: &'a BenchCloud,
    ids: std::sync::Mutex<Vec<String>>,
}

impl Guests<'_> {
    async fn delete_all(&self) {
        let ids: Vec<String> = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        for id in &ids {
            let _ = self
                .cloud
                .http
                .delete(format!("{}/servers/{id}", self.cloud.compute))
                .header("x-auth-token", &self.cloud.token)
                .send()
                .await;
        }
        let started = Instant::now();
        while ids.iter().any(|id| qemu_rss_kib(id).is_some()) && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
