//! `stratus bench placement`: `GET /allocation_candidates` over HTTP against
//! many providers.
//!
//! [`run`] builds `providers` compute nodes on a fresh SQLite database in a
//! temporary directory (each with VCPU, MEMORY_MB and DISK_GB inventory, a
//! few standard traits, one of 20 aggregates, and a quarter of them partly
//! used), serves placement on an ephemeral port and asks for allocation
//! candidates the way a scheduler does (`limit=1000`, some with required or
//! forbidden traits or `member_of`), `concurrency` at a time, `requests` in
//! all. A second phase mixes in claims (one `PUT /allocations` per ten
//! requests), so that every search first catches up with the writes. The
//! report gives p50/p90/p99/max latency and requests/s for each phase.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use futures::future::BoxFuture;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use stratus_core::auth::{AuthContext, TokenError, TokenValidator};

use crate::entity::{allocation, consumer, inventory, provider, provider_aggregate, provider_trait};
use crate::store::Tx;

const TOKEN: &str = "bench-admin-token";

/// Accepts the bench's own token, as an admin.
struct BenchTokens;

impl TokenValidator for BenchTokens {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Arc<AuthContext>, TokenError>> {
        Box::pin(async move {
            if token != TOKEN {
                return Err(TokenError::Invalid("not the bench token".into()));
            }
            Ok(Arc::new(AuthContext {
                token: token.to_string(),
                user_id: "bench".into(),
                user_name: "bench".into(),
                user_domain_id: "default".into(),
                user_domain_name: "Default".into(),
                project_id: Some("bench".into()),
                project_name: Some("bench".into()),
                project_domain_id: Some("default".into()),
                project_domain_name: Some("Default".into()),
                domain_id: None,
                domain_name: None,
                system_scope: false,
                roles: vec![("admin".into(), "admin".into())],
                is_admin_project: true,
                issued_at: Utc::now(),
                expires_at: Utc::now() + chrono::Duration::hours(24),
                audit_ids: Vec::new(),
                methods: vec!["password".into()],
                application_credential_id: None,
                service_roles: Vec::new(),
                creds_memo: std::sync::OnceLock::new(),
            }))
        })
    }
}

const TRAITS: &[&str] = &[
    "HW_CPU_X86_AVX2",
    "HW_CPU_X86_SSE42",
    "HW_CPU_X86_AVX512F",
    "COMPUTE_VOLUME_MULTI_ATTACH",
    "COMPUTE_NET_ATTACH_INTERFACE",
    "STORAGE_DISK_SSD",
    "HW_NIC_SRIOV",
    "COMPUTE_TRUSTED_CERTS",
];

fn aggregate(i: usize) -> String {
    format!("aaaaaaaa-0000-4000-8000-{:012}", i % 20)
}

/// Fill the database: `n` compute nodes.
async fn populate(db: &stratus_db::Db, n: usize) -> anyhow::Result<()> {
    let now = crate::store::now_us();
    let tx = Tx::begin(db).await?;
    let chunk = 500;
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let rows = (start..end).map(|i| provider::ActiveModel {
            uuid: Set(uuid::Uuid::new_v4().to_string()),
            name: Set(format!("compute-{i:05}")),
            generation: Set(1),
            parent_provider_id: Set(None),
            root_provider_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
        provider::Entity::insert_many(rows).exec_without_returning(tx.conn()).await?;
    }
    provider::Entity::update_many()
        .col_expr(provider::Column::RootProviderId, Expr::col(provider::Column::Id).into())
        .filter(provider::Column::RootProviderId.is_null())
        .exec(tx.conn())
        .await?;
    let all = provider::Entity::find().all(tx.conn()).await?;
    let ids: Vec<(usize, i64)> = all.iter().enumerate().map(|(i, p)| (i, p.id)).collect();
    for part in ids.chunks(chunk) {
        let mut invs = Vec::new();
        let mut traits = Vec::new();
        let mut aggs = Vec::new();
        let mut allocs = Vec::new();
        let mut consumers = Vec::new();
        for (i, id) in part {
            let (i, id) = (*i, *id);
            for (rc, total, ratio) in
                [("VCPU", 32 + (i % 4) as i64 * 16, 16.0), ("MEMORY_MB", 131072, 1.5), ("DISK_GB", 2000, 1.0)]
            {
                invs.push(inventory::ActiveModel {
                    resource_provider_id: Set(id),
                    resource_class: Set(rc.to_string()),
                    total: Set(total),
                    reserved: Set(if rc == "MEMORY_MB" { 512 } else { 0 }),
                    min_unit: Set(1),
                    max_unit: Set(total),
                    step_size: Set(1),
                    allocation_ratio: Set(ratio),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                });
            }
            for (k, t) in TRAITS.iter().enumerate() {
                if (i + k) % 3 == 0 {
                    traits.push(provider_trait::ActiveModel {
                        resource_provider_id: Set(id),
                        trait_: Set(t.to_string()),
                    });
                }
            }
            aggs.push(provider_aggregate::ActiveModel { resource_provider_id: Set(id), aggregate: Set(aggregate(i)) });
            if i % 4 == 0 {
                let c = uuid::Uuid::new_v4().to_string();
                consumers.push(consumer::ActiveModel {
                    uuid: Set(c.clone()),
                    project_id: Set("bench".into()),
                    user_id: Set("bench".into()),
                    consumer_type: Set(Some("INSTANCE".into())),
                    generation: Set(1),
                    created_at: Set(now),
                    updated_at: Set(now),
                });
                for (rc, used) in [("VCPU", 8), ("MEMORY_MB", 16384), ("DISK_GB", 200)] {
                    allocs.push(allocation::ActiveModel {
                        resource_provider_id: Set(id),
                        consumer_id: Set(c.clone()),
                        resource_class: Set(rc.to_string()),
                        used: Set(used),
                        created_at: Set(now),
                        updated_at: Set(now),
                        ..Default::default()
                    });
                }
            }
        }
        inventory::Entity::insert_many(invs).exec_without_returning(tx.conn()).await?;
        if !traits.is_empty() {
            provider_trait::Entity::insert_many(traits).exec_without_returning(tx.conn()).await?;
        }
        provider_aggregate::Entity::insert_many(aggs).exec_without_returning(tx.conn()).await?;
        if !consumers.is_empty() {
            consumer::Entity::insert_many(consumers).exec_without_returning(tx.conn()).await?;
            allocation::Entity::insert_many(allocs).exec_without_returning(tx.conn()).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The scheduler-like queries the bench cycles through.
fn queries() -> Vec<String> {
    let base = "resources=VCPU:2,MEMORY_MB:4096,DISK_GB:40&limit=1000";
    vec![
        base.to_string(),
        format!("{base}&required=HW_CPU_X86_AVX2"),
        format!("{base}&required=!STORAGE_DISK_SSD"),
        format!("{base}&member_of={}", aggregate(7)),
        format!("{base}&required=in:HW_CPU_X86_AVX512F,HW_NIC_SRIOV&required=COMPUTE_VOLUME_MULTI_ATTACH"),
        "resources=VCPU:4,MEMORY_MB:8192&limit=50".to_string(),
    ]
}

#[derive(serde::Deserialize)]
struct Claimable {
    allocation_requests: Vec<Candidate>,
}

#[derive(serde::Deserialize)]
struct Candidate {
    allocations: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct Counted {
    allocation_requests: Vec<serde::de::IgnoredAny>,
}

struct Phase {
    latencies: Vec<Duration>,
    claim_latencies: Vec<Duration>,
    elapsed: Duration,
    candidates: usize,
    bytes: usize,
    claims: usize,
    conflicts: usize,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

impl Phase {
    fn line(&mut self, name: &str) -> String {
        self.latencies.sort();
        let n = self.latencies.len();
        let rps = n as f64 / self.elapsed.as_secs_f64().max(1e-9);
        let mut s = format!(
            "{name}: {n} requests in {:.2} s = {rps:.0} req/s; latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.0} candidates and {:.0} KiB per response",
            self.elapsed.as_secs_f64(),
            pct(&self.latencies, 0.50),
            pct(&self.latencies, 0.90),
            pct(&self.latencies, 0.99),
            pct(&self.latencies, 1.0),
            self.candidates as f64 / n.max(1) as f64,
            self.bytes as f64 / n.max(1) as f64 / 1024.0,
        );
        if self.claims > 0 {
            self.claim_latencies.sort();
            s.push_str(&format!(
                "; {} claims ({} conflicts), claim latency p50 {:.1} ms, p99 {:.1} ms",
                self.claims,
                self.conflicts,
                pct(&self.claim_latencies, 0.50),
                pct(&self.claim_latencies, 0.99)
            ));
        }
        s
    }
}

async fn phase(url: &str, requests: usize, concurrency: usize, claim_every: usize) -> anyhow::Result<Phase> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let qs = Arc::new(queries());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (http, qs, next, url) = (http.clone(), qs.clone(), next.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut p = Phase {
                latencies: Vec::new(),
                claim_latencies: Vec::new(),
                elapsed: Duration::ZERO,
                candidates: 0,
                bytes: 0,
                claims: 0,
                conflicts: 0,
            };
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let q = &qs[i % qs.len()];
                let t = Instant::now();
                let r = http
                    .get(format!("{url}/allocation_candidates?{q}"))
                    .header("x-auth-token", TOKEN)
                    .header("openstack-api-version", "placement 1.39")
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("GET /allocation_candidates?{q}: {}", r.status());
                }
                let body = r.bytes().await?;
                p.latencies.push(t.elapsed());
                p.bytes += body.len();
                let claiming = claim_every > 0 && i % claim_every == 0;
                if !claiming {
                    // count without building the document: the client's cost is not placement's
                    let v: Counted = serde_json::from_slice(&body)?;
                    p.candidates += v.allocation_requests.len();
                    continue;
                }
                let v: Claimable = serde_json::from_slice(&body)?;
                let reqs = v.allocation_requests;
                p.candidates += reqs.len();
                if !reqs.is_empty() {
                    // claim one of the candidates, as a scheduler would
                    let pick = &reqs[(i / claim_every) % reqs.len()];
                    let claim = serde_json::json!({
                        "allocations": pick.allocations,
                        "project_id": "bench",
                        "user_id": "bench",
                        "consumer_generation": null,
                        "consumer_type": "INSTANCE",
                    });
                    let t = Instant::now();
                    let r = http
                        .put(format!("{url}/allocations/{}", uuid::Uuid::new_v4()))
                        .header("x-auth-token", TOKEN)
                        .header("openstack-api-version", "placement 1.39")
                        .json(&claim)
                        .send()
                        .await?;
                    p.claims += 1;
                    p.claim_latencies.push(t.elapsed());
                    match r.status().as_u16() {
                        204 => {}
                        409 => p.conflicts += 1,
                        s => bail!("claim: {s} {}", r.text().await.unwrap_or_default()),
                    }
                }
            }
            Ok::<Phase, anyhow::Error>(p)
        }));
    }
    let mut all = Phase {
        latencies: Vec::new(),
        claim_latencies: Vec::new(),
        elapsed: Duration::ZERO,
        candidates: 0,
        bytes: 0,
        claims: 0,
        conflicts: 0,
    };
    for t in tasks {
        let p = t.await.context("bench worker")??;
        all.latencies.extend(p.latencies);
        all.claim_latencies.extend(p.claim_latencies);
        all.candidates += p.candidates;
        all.bytes += p.bytes;
        all.claims += p.claims;
        all.conflicts += p.conflicts;
    }
    all.elapsed = started.elapsed();
    Ok(all)
}

/// Run the bench; the report, one line per finding.
pub async fn run(providers: usize, requests: usize, concurrency: usize) -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("stratus-placement-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&dir, providers, requests, concurrency).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(
    dir: &std::path::Path,
    providers: usize,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<String> {
    let mut report = Vec::new();
    let db = stratus_db::Db::connect(&format!("sqlite://{}/placement.db", dir.display())).await?;
    db.migrate::<crate::Migrator>().await?;
    let t = Instant::now();
    populate(&db, providers).await?;
    report.push(format!(
        "placement bench: {providers} providers (VCPU, MEMORY_MB, DISK_GB; traits; 20 aggregates; 1 in 4 partly used) on SQLite, built in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let cfg = stratus_core::Config { data_dir: dir.to_path_buf(), ..Default::default() };
    let state = crate::PlacementService::open(cfg, db)?;
    let router = crate::router(state, Arc::new(BenchTokens));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let t = Instant::now();
    let first = phase(&url, 1, 1, 0).await?;
    report.push(format!(
        "first request (loads the index): {:.0} ms",
        first
            .latencies
            .first()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
            .max(t.elapsed().as_secs_f64() * 1000.0 - 1.0)
    ));
    let mut reads = phase(&url, requests, concurrency, 0).await?;
    report.push(reads.line(&format!("GET /allocation_candidates, concurrency {concurrency}")));
    let mut mixed = phase(&url, requests, concurrency, 10).await?;
    report.push(mixed.line("the same with a claim every 10 requests"));
    server.abort();
    Ok(report.join("\n"))
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_runs() {
        let report = super::run(50, 30, 4).await.unwrap();
        assert!(report.contains("req/s"), "{report}");
        assert!(report.contains("claims"), "{report}");
    }
}
