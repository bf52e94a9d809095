//! `stratus bench volume`: empty volumes of S GiB through the REST API at
//! concurrency C, each timed from its create request to the first `GET`
//! that shows it `available` (API -> scheduler -> volume host -> file
//! backend); then a volume of `--backup-gib` GiB filled with random data is
//! backed up and restored into a new volume, each timed to `available`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::bench_cloud::{BenchCloud, pct};

#[derive(Args)]
pub struct VolumeBench {
    /// Volumes created and timed.
    #[arg(long, default_value_t = 400)]
    volumes: usize,
    /// Size of each, GiB.
    #[arg(long, default_value_t = 1)]
    size: i64,
    /// Creates in flight.
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// Size of the volume backed up and restored, GiB (0: skip).
    #[arg(long, default_value_t = 1)]
    backup_gib: i64,
    /// Database of the throwaway cloud (default: SQLite in its temporary directory).
    #[arg(long)]
    database_url: Option<String>,
}

async fn get(cloud: &BenchCloud, url: &str) -> anyhow::Result<Value> {
    let r = cloud.http.get(url).header("x-auth-token", &cloud.token).send().await?;
    Ok(r.json().await?)
}

/// Poll `url` until `.{key}.status` is `available`; the time it took from `t0`.
async fn until_available(cloud: &BenchCloud, url: &str, key: &str, t0: Instant) -> anyhow::Result<Duration> {
    loop {
        let v = get(cloud, url).await?;
        match v[key]["status"].as_str() {
            Some("available") => return Ok(t0.elapsed()),
            Some(s) if s.starts_with("error") => bail!("{url} went to {s}"),
            _ => {}
        }
        if t0.elapsed() > Duration::from_secs(600) {
            bail!("{url} not available after 600 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn run(b: VolumeBench) -> anyhow::Result<()> {
    let env = [
        ("STRATUS_VOLUME__QUOTA_VOLUMES", "-1".to_string()),
        ("STRATUS_VOLUME__QUOTA_GIGABYTES", "-1".to_string()),
        ("STRATUS_VOLUME__QUOTA_BACKUPS", "-1".to_string()),
        ("STRATUS_VOLUME__QUOTA_BACKUP_GIGABYTES", "-1".to_string()),
        ("STRATUS_VOLUME__CAPACITY_GB", "10000000".to_string()),
        ("STRATUS_COMPUTE__LOCAL_HOSTS", "[]".to_string()),
    ];
    let cloud = Arc::new(
        BenchCloud::start("volume", b.database_url.as_deref(), &env, b.concurrency, |_, _, _| async { true }).await?,
    );
    let vol = cloud.volume.clone();
    // the volume host starts just after the APIs answer: wait until it reports its pool
    let t = Instant::now();
    loop {
        let v = get(&cloud, &format!("{vol}/os-services?binary=cinder-volume")).await?;
        if v["services"].as_array().is_some_and(|s| s.iter().any(|x| x["state"] == "up")) {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("no volume host came up");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let probe = cloud.post(&format!("{vol}/volumes"), &json!({"volume": {"size": 1, "name": "probe"}})).await?;
    let probe_id = probe["volume"]["id"].as_str().context("no volume id")?.to_string();
    until_available(&cloud, &format!("{vol}/volumes/{probe_id}"), "volume", Instant::now()).await?;

    println!(
        "volume: database {}, {} volumes of {} GiB, concurrency {}",
        BenchCloud::db_kind(b.database_url.as_deref()),
        b.volumes,
        b.size,
        b.concurrency
    );
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..b.concurrency {
        let (cloud, next, vol) = (cloud.clone(), next.clone(), vol.clone());
        let (total, size) = (b.volumes, b.size);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(lat);
                }
                let t = Instant::now();
                let v = cloud
                    .post(&format!("{vol}/volumes"), &json!({"volume": {"size": size, "name": format!("b{i}")}}))
                    .await?;
                let id = v["volume"]["id"].as_str().context("no volume id")?.to_string();
                lat.push(
                    until_available(&cloud, &format!("{vol}/volumes/{id}"), "volume", t).await?.as_secs_f64() * 1000.0,
                );
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let wall = t0.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    let p99 = pct(&lat, 0.99);
    println!(
        "  create -> available: {} volumes in {wall:.1} s ({:.0}/s); p50 {:.1} ms, p90 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms  (target p99 < 200 ms: {})",
        lat.len(),
        lat.len() as f64 / wall,
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        lat.last().copied().unwrap_or(0.0),
        if p99 < 200.0 { "met" } else { "NOT met" }
    );

    if b.backup_gib > 0 {
        backup_restore(&cloud, b.backup_gib).await?;
    }
    Ok(())
}

async fn backup_restore(cloud: &BenchCloud, gib: i64) -> anyhow::Result<()> {
    let vol = &cloud.volume;
    let v = cloud.post(&format!("{vol}/volumes"), &json!({"volume": {"size": gib, "name": "bk"}})).await?;
    let id = v["volume"]["id"].as_str().context("no volume id")?.to_string();
    until_available(cloud, &format!("{vol}/volumes/{id}"), "volume", Instant::now()).await?;
    // a guest's writes, simulated: random data over the whole volume
    let file = cloud.data_dir.join("volumes").join("volume1").join(format!("volume-{id}.raw"));
    let bytes = (gib as u64) << 30;
    {
        use std::io::Write;
        let mut f =
            std::fs::OpenOptions::new().write(true).open(&file).with_context(|| format!("{}", file.display()))?;
        let mut buf = vec![0u8; 8 << 20];
        let mut written = 0u64;
        while written < bytes {
            rand::fill(&mut buf[..]);
            f.write_all(&buf)?;
            written += buf.len() as u64;
        }
        f.sync_all()?;
    }
    let mb = bytes as f64 / 1e6;
    let t = Instant::now();
    let bk = cloud.post(&format!("{vol}/backups"), &json!({"backup": {"volume_id": id, "name": "bench"}})).await?;
    let bk_id = bk["backup"]["id"].as_str().context("no backup id")?.to_string();
    let took = until_available(cloud, &format!("{vol}/backups/{bk_id}"), "backup", t).await?.as_secs_f64();
    println!(
        "  backup of {gib} GiB of data: {took:.2} s, {:.0} MB/s  (target >= 300 MB/s: {})",
        mb / took,
        if mb / took >= 300.0 { "met" } else { "NOT met" }
    );
    let t = Instant::now();
    let r = cloud.post(&format!("{vol}/backups/{bk_id}/restore"), &json!({"restore": {"name": "restored"}})).await?;
    let new_id = r["restore"]["volume_id"].as_str().context("no restored volume id")?.to_string();
    let took = until_available(cloud, &format!("{vol}/volumes/{new_id}"), "volume", t).await?.as_secs_f64();
    println!(
        "  restore of {gib} GiB into a new volume: {took:.2} s, {:.0} MB/s  (target >= 300 MB/s: {})",
        mb / took,
        if mb / took >= 300.0 { "met" } else { "NOT met" }
    );
    // the restored volume holds the same bytes
    let restored = cloud.data_dir.join("volumes").join("volume1").join(format!("volume-{new_id}.raw"));
    let same = files_equal(&file, &restored)?;
    println!("  restored volume identical to the original: {same}");
    if !same {
        bail!("the restored volume differs from the original");
    }
    Ok(())
}

fn files_equal(a: &std::path::Path, b: &std::path::Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 8 << 20], vec![0u8; 8 << 20]);
    loop {
        let na = fa.read(&mut ba)?;
        let mut nb = 0;
        while nb < na {
            let k = fb.read(&mut bb[nb..na])?;
            if k == 0 {
                break;
            }
            nb += k;
        }
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(fb.read(&mut bb)? == 0);
        }
    }
}
