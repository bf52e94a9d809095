use std::time::Instant;
use stratus_core::Microversion;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join("zzprof");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = stratus_db::Db::connect(&format!("sqlite://{}/p.db", dir.display())).await?;
    db.migrate::<stratus_placement::Migrator>().await?;
    stratus_placement::bench::populate_for_profile(&db, 10000).await?;
    let svc = stratus_placement::PlacementService::open(stratus_core::Config::default(), db)?;
    let _ = svc.index.read(&svc.db).await?;
    for q in [
        "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&limit=1000",
        "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&limit=1000&member_of=aaaaaaaa-0000-4000-8000-000000000007",
        "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&limit=1000&required=!STORAGE_DISK_SSD",
    ] {
        let pairs: Vec<(String, String)> = q
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        let mv = Microversion(1, 39);
        let req = stratus_placement::query::candidate_request(&pairs, mv).unwrap();
        let n = 50;
        let (mut ts, mut tr, mut tj, mut tq) = (0.0, 0.0, 0.0, 0.0);
        let mut size = 0;
        for _ in 0..n {
            let t = Instant::now();
            let idx = svc.index.read(&svc.db).await?;
            tq += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let found = stratus_placement::candidates::search(&idx, &req).unwrap();
            ts += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let body = stratus_placement::api::allocation_candidates::render(&idx, &req, &found, mv);
            tr += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let bytes = body;
            tj += t.elapsed().as_secs_f64();
            size = bytes.len();
        }
        println!(
            "{q}: state {:.2} ms search {:.2} ms render {:.2} ms json {:.2} ms ({} KiB)",
            tq * 1000.0 / n as f64,
            ts * 1000.0 / n as f64,
            tr * 1000.0 / n as f64,
            tj * 1000.0 / n as f64,
            size / 1024
        );
    }
    Ok(())
}
