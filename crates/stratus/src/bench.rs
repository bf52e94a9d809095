//! `stratus bench identity`: requests/s and latency per identity operation,
//! over loopback, against a running cloud or one started in process.
//!
//! `stratus bench image`: upload and download throughput of one large image
//! through the image API, and how much the server's memory grows meanwhile,
//! against a running cloud or one started as a separate process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use axum::body::Bytes;
use clap::{Args, Subcommand};
use futures::StreamExt;
use serde_json::{Value, json};
use stratus_core::Config;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Password, token and application-credential auth, and token validation.
    Identity(IdentityBench),
    /// Upload and download of one large image: MB/s each way and the server's memory growth.
    ///
    /// Creates an image, uploads --size-mib MiB of random data to it (PUT /v2/images/{id}/file,
    /// streamed) and downloads it back (GET), --runs times each way, over loopback. For each
    /// transfer it prints the time, the throughput and how much the server's resident memory
    /// (RSS) grew meanwhile, then the best and median and whether the targets are met: at least
    /// 500 MB/s each way, and less than 64 MB of RSS growth (the server must stream image data,
    /// never hold it whole). The images it made are deleted at the end.
    Image(ImageBench),
    /// N servers on M fake compute hosts through the REST API: servers/s to ACTIVE, create p50/p99.
    Compute(crate::bench_compute::ComputeBench),
    /// Allocation candidates with P resource providers: p50/p99 and req/s of GET /allocation_candidates.
    Placement(PlacementBench),
    /// Port creates per second, then paginated port lists with P ports in the cloud: page p50/p99.
    Network(crate::bench_network::NetworkBench),
    /// Empty volumes through the REST API at concurrency C: create -> available p50/p99;
    /// then a backup and a restore of a 1 GiB volume full of data: MB/s each way.
    Volume(crate::bench_volume::VolumeBench),
    /// Real guests (the tiny guest) on the QEMU driver: time from POST /servers to the guest's
    /// marker on its console, p50/p90, and the host-side memory of each guest's QEMU.
    Boot(crate::bench_boot::BootBench),
    /// The real network agent of one host (needs root): PortBound -> wired p50/p99 over
    /// --ports ports, the resync time after a restart with --resync-ports ports (and pings lost
    /// meanwhile), TCP between two stand-in guests through the bridge and security groups.
    Dataplane(crate::bench_dataplane::DataplaneBench),
}

#[derive(Args)]
pub struct PlacementBench {
    /// Resource providers.
    #[arg(long, default_value_t = 10_000)]
    providers: usize,
    /// Requests to measure.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
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
        BenchCommand::Image(b) => image(b).await,
        BenchCommand::Compute(b) => crate::bench_compute::run(b).await,
        BenchCommand::Network(b) => crate::bench_network::run(b).await,
        BenchCommand::Volume(b) => crate::bench_volume::run(b).await,
        BenchCommand::Boot(b) => crate::bench_boot::run(b).await,
        BenchCommand::Dataplane(b) => crate::bench_dataplane::run(b).await,
        BenchCommand::Placement(b) => {
            println!("{}", stratus_placement::bench::run(b.providers, b.requests, b.concurrency).await?);
            Ok(())
        }
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

// ---------------------------------------------------------------------------------------------------------
// stratus bench image

const MIB: u64 = 1 << 20;
/// The issue's targets: at least this many MB/s (10^6 bytes) each way...
const TARGET_MB_S: f64 = 500.0;
/// ...and less than this much growth of the server's resident memory during a transfer, in MB.
const TARGET_RSS_MB: f64 = 64.0;
/// How often the server's RSS is read during a transfer.
const RSS_PERIOD: Duration = Duration::from_millis(20);
/// How long a freshly started server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Args)]
#[command(after_help = "Examples:
  stratus bench image                              (1 GiB, 3 runs each way, on a throwaway cloud)
  stratus bench image --size-mib 256 --runs 1      (a quick check)
  stratus bench image --url http://127.0.0.1:5000 --image-url http://127.0.0.1:9292 \\
      --password \"$ADMIN_PASSWORD\" --pid <pid of its stratus process>

Measure a release build (cargo build --release): a debug build is many times slower.")]
pub struct ImageBench {
    /// Identity URL of a running cloud to measure (e.g. http://127.0.0.1:5000); needs --image-url
    /// and --password too. Default: a throwaway cloud.
    ///
    /// Without --url, a throwaway cloud is started as a separate process (this program, `stratus
    /// up`, so that its memory is measured apart from the client's) on free loopback ports with
    /// its data in a temporary directory; it is stopped and the directory removed at the end.
    #[arg(long, requires = "image_url")]
    url: Option<String>,
    /// Image API URL of the running cloud given by --url (e.g. http://127.0.0.1:9292).
    #[arg(long, requires = "url")]
    image_url: Option<String>,
    /// Admin password of the running cloud given by --url.
    #[arg(long, env = "STRATUS_ADMIN_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Process id of the running cloud's server, to measure its memory; with --url only.
    ///
    /// Its VmRSS (in /proc/<pid>/status) is read every 20 ms during each transfer. Without
    /// --pid, against a running cloud, memory is not measured.
    #[arg(long, requires = "url")]
    pid: Option<u32>,
    /// Size of the image, in MiB (2^20 bytes).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    size_mib: u64,
    /// How many times each direction is measured (a new image per upload); the best and the
    /// median are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Size of the pieces the client hands its connection during an upload, in KiB.
    ///
    /// Every piece is the same pre-made random buffer of this size, so making the data costs
    /// the client nothing.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    chunk_kib: u32,
}

/// The endpoints and credentials a bench talks to.
struct Cloud {
    identity: String,
    image: String,
    password: String,
    /// The server process, for memory sampling.
    pid: Option<u32>,
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A throwaway cloud in a child process: killed, and its directory removed, when dropped
/// (also when the bench fails half-way).
struct LocalCloud {
    child: std::process::Child,
    log: PathBuf,
    cloud: Cloud,
    // removed once `drop` below has stopped the server (a struct's `drop` runs before its fields')
    _dir: TempDir,
}

impl Drop for LocalCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Loopback ports nobody listens on right now (the server binds them a moment later).
fn free_ports() -> anyhow::Result<(u16, u16)> {
    let a = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    let b = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

/// The last `lines` lines of a file, for error messages.
fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

impl LocalCloud {
    /// Start `stratus up` (this same program) in a fresh temporary directory and wait until
    /// both identity and image answer.
    async fn start() -> anyhow::Result<LocalCloud> {
        use base64::Engine;
        let exe = std::env::current_exe().context("cannot find this program's path to start a server")?;
        let nonce: u32 = rand::random();
        let dir = TempDir(std::env::temp_dir().join(format!("stratus-bench-image-{}-{nonce:08x}", std::process::id())));
        std::fs::create_dir_all(&dir.0).with_context(|| format!("cannot create {}", dir.0.display()))?;
        let log = dir.0.join("server.log");
        let out = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>());
        let (identity_port, image_port) = free_ports()?;
        let mut cmd = std::process::Command::new(&exe);
        // a clean default cloud: no configuration file, database or password of the caller's
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("STRATUS_") {
                cmd.env_remove(name);
            }
        }
        cmd.arg("up")
            .arg("--data-dir")
            .arg(dir.0.join("data"))
            .arg(format!("--admin-password={password}"))
            .env("STRATUS_IDENTITY__LISTEN", format!("127.0.0.1:{identity_port}"))
            .env("STRATUS_IMAGE__LISTEN", format!("127.0.0.1:{image_port}"))
            .env("STRATUS_PLACEMENT__LISTEN", format!("127.0.0.1:{}", free_ports()?.0))
            .env("STRATUS_COMPUTE__LISTEN", format!("127.0.0.1:{}", free_ports()?.1))
            .env("STRATUS_NETWORK__LISTEN", format!("127.0.0.1:{}", free_ports()?.0))
            .env("STRATUS_VOLUME__LISTEN", format!("127.0.0.1:{}", free_ports()?.1))
            .env("STRATUS_COMPUTE__LOCAL_HOSTS", "[]")
            // bootstrap hashes the admin password: keep it fast, nothing here is worth protecting
            .env("STRATUS_IDENTITY__PASSWORD_HASH_ROUNDS", "4")
            .env("STRATUS_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().with_context(|| format!("cannot start {} up", exe.display()))?;
        let pid = child.id();
        let mut local = LocalCloud {
            child,
            log,
            cloud: Cloud {
                identity: format!("http://127.0.0.1:{identity_port}"),
                image: format!("http://127.0.0.1:{image_port}"),
                password,
                pid: Some(pid),
            },
            _dir: dir,
        };
        if let Err(why) = local.wait_ready().await {
            bail!("the server did not start: {why:#}; the end of its log:\n{}", tail(&local.log, 30));
        }
        println!(
            "started a throwaway cloud: {} up (pid {pid}), identity {}, image {}",
            exe.display(),
            local.cloud.identity,
            local.cloud.image
        );
        Ok(local)
    }

    /// Until `GET <identity>/v3` answers 200 and `GET <image>/` answers 300 (the version list).
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + START_TIMEOUT;
        let answers = |url: String, want: u16| {
            let http = http.clone();
            async move { http.get(url).send().await.is_ok_and(|r| r.status().as_u16() == want) }
        };
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("it exited ({status})");
            }
            if answers(format!("{}/v3", self.cloud.identity), 200).await
                && answers(format!("{}/", self.cloud.image), 300).await
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("no answer within {} s", START_TIMEOUT.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The resident memory of a process, in bytes (VmRSS in /proc/<pid>/status).
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?.trim();
    kib.parse::<u64>().ok().map(|k| k * 1024)
}

/// Samples a process's RSS every [`RSS_PERIOD`] on a thread of its own (so a busy runtime
/// cannot delay it) until finished or dropped.
struct RssSampler {
    before: u64,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl RssSampler {
    /// Read the RSS now (the baseline) and start sampling; `None` when there is no process to watch.
    fn start(pid: Option<u32>) -> anyhow::Result<Option<RssSampler>> {
        let Some(pid) = pid else { return Ok(None) };
        let before = rss_bytes(pid).with_context(|| format!("cannot read VmRSS from /proc/{pid}/status"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new().name("rss-sampler".into()).spawn(move || {
            let mut peak = before;
            loop {
                let done = stopped.load(Ordering::Relaxed);
                peak = peak.max(rss_bytes(pid).unwrap_or(0));
                if done {
                    return peak;
                }
                std::thread::sleep(RSS_PERIOD);
            }
        })?;
        Ok(Some(RssSampler { before, stop, thread: Some(thread) }))
    }

    /// Stop sampling: the peak RSS minus the baseline, in bytes.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let peak = self.thread.take().and_then(|t| t.join().ok()).unwrap_or(self.before);
        peak.saturating_sub(self.before)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Fail with the response's body unless it has the expected status.
async fn expect(r: reqwest::Response, want: u16, what: &str) -> anyhow::Result<reqwest::Response> {
    if r.status().as_u16() == want {
        return Ok(r);
    }
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    bail!("{what}: expected {want}, got {status}: {}", body.chars().take(500).collect::<String>())
}

/// The image API, authenticated.
struct ImageApi {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl ImageApi {
    async fn create(&self) -> anyhow::Result<String> {
        let r = self
            .http
            .post(format!("{}/v2/images", self.url))
            .header("x-auth-token", &self.token)
            .json(&json!({"name": "bench", "disk_format": "raw", "container_format": "bare"}))
            .send()
            .await
            .context("creating an image")?;
        let body: Value = expect(r, 201, "creating an image").await?.json().await.context("creating an image")?;
        body["id"].as_str().map(str::to_string).ok_or_else(|| anyhow!("the new image has no id: {body}"))
    }

    async fn show(&self, id: &str) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(format!("{}/v2/images/{id}", self.url))
            .header("x-auth-token", &self.token)
            .send()
            .await
            .with_context(|| format!("reading image {id}"))?;
        expect(r, 200, "reading the image").await?.json().await.with_context(|| format!("reading image {id}"))
    }

    async fn delete(&self, id: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .delete(format!("{}/v2/images/{id}", self.url))
            .header("x-auth-token", &self.token)
            .send()
            .await
            .with_context(|| format!("deleting image {id}"))?;
        expect(r, 204, "deleting the image").await?;
        Ok(())
    }

    /// Upload `size` bytes made of `chunk` repeated. Returns the time from the request's start
    /// to the server's answer (the data is on disk by then), and the part of it after the last
    /// chunk was handed to the connection (the server finishing its hashes and flushing the file).
    async fn upload(&self, id: &str, size: u64, chunk: &Bytes) -> anyhow::Result<(Duration, Duration)> {
        let (chunk, step) = (chunk.clone(), chunk.len() as u64);
        let count = size.div_ceil(step);
        let last_sent = Arc::new(std::sync::OnceLock::new());
        let mark = last_sent.clone();
        let chunks = futures::stream::iter((0..count).map(move |i| {
            if i + 1 == count {
                let _ = mark.set(Instant::now());
            }
            let len = (size - i * step).min(step) as usize;
            Ok::<_, std::io::Error>(chunk.slice(..len))
        }));
        let started = Instant::now();
        let r = self
            .http
            .put(format!("{}/v2/images/{id}/file", self.url))
            .header("x-auth-token", &self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .context("uploading the image data")?;
        expect(r, 204, "uploading the image data").await?;
        let answered = Instant::now();
        let after_last = last_sent.get().map(|t| answered.duration_since(*t)).unwrap_or_default();
        Ok((answered.duration_since(started), after_last))
    }

    /// After an upload, the image must be `active`, of the size sent.
    async fn check_active(&self, id: &str, size: u64) -> anyhow::Result<()> {
        let img = self.show(id).await?;
        if img["status"] != "active" || img["size"].as_u64() != Some(size) {
            bail!(
                "after the upload, image {id} is {} of size {} (expected active, {size})",
                img["status"],
                img["size"]
            );
        }
        Ok(())
    }

    /// Download the image, counting the bytes; the time from the request's start to the last byte.
    async fn download(&self, id: &str, size: u64) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let r = self
            .http
            .get(format!("{}/v2/images/{id}/file", self.url))
            .header("x-auth-token", &self.token)
            .send()
            .await
            .context("downloading the image data")?;
        let mut data = expect(r, 200, "downloading the image data").await?.bytes_stream();
        let mut got: u64 = 0;
        while let Some(chunk) = data.next().await {
            got += chunk.context("downloading the image data")?.len() as u64;
        }
        let took = started.elapsed();
        if got != size {
            bail!("downloaded {got} bytes, expected {size}");
        }
        Ok(took)
    }
}

/// `len` bytes of xorshift noise: incompressible, cheap to make, and never taken for a disk format.
fn noise(len: usize) -> Bytes {
    let mut x: u64 = rand::random::<u64>() | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

/// One transfer.
struct Run {
    secs: f64,
    /// Uploads: seconds from handing over the last chunk to the server's answer.
    after_last: Option<f64>,
    /// Peak RSS growth of the server during the transfer, in bytes (`None`: not measured).
    rss_growth: Option<u64>,
}

/// Megabytes (10^6 bytes) per second.
fn mb_s(size: u64, secs: f64) -> f64 {
    size as f64 / secs / 1e6
}

fn mib_s(size: u64, secs: f64) -> f64 {
    size as f64 / secs / MIB as f64
}

fn rss_text(growth: Option<u64>) -> String {
    match growth {
        Some(g) => format!("RSS +{:.1} MB", g as f64 / 1e6),
        None => "RSS not measured".into(),
    }
}

fn report_run(dir: &str, n: u32, size: u64, r: &Run) {
    let after_last = match r.after_last {
        Some(s) => format!("  (answer {s:.2} s after the last chunk)"),
        None => String::new(),
    };
    println!(
        "{dir:<8} run {n}: {:>7.2} s  {:>8.1} MB/s  {:>8.1} MiB/s  {}{after_last}",
        r.secs,
        mb_s(size, r.secs),
        mib_s(size, r.secs),
        rss_text(r.rss_growth)
    );
}

/// Sum up one direction and judge it against the targets: whether the throughput target is
/// met, and the memory target (`None`: not measured).
fn summarize(dir: &str, size: u64, runs: &[Run]) -> (bool, Option<bool>) {
    let mut secs: Vec<f64> = runs.iter().map(|r| r.secs).collect();
    secs.sort_by(f64::total_cmp);
    let best = secs.first().copied().unwrap_or(f64::INFINITY);
    let median = match secs.len() {
        0 => f64::INFINITY,
        n if n % 2 == 1 => secs[n / 2],
        n => (secs[n / 2 - 1] + secs[n / 2]) / 2.0,
    };
    let growth = runs.iter().filter_map(|r| r.rss_growth).max();
    let speed_ok = mb_s(size, median) >= TARGET_MB_S;
    println!(
        "{dir:<8} best {:>7.1} MB/s ({:.1} MiB/s, {:.2} s)   median {:>7.1} MB/s ({:.1} MiB/s, {:.2} s)   \
         peak {}",
        mb_s(size, best),
        mib_s(size, best),
        best,
        mb_s(size, median),
        mib_s(size, median),
        median,
        rss_text(growth)
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("{:<8} target >= {TARGET_MB_S:.0} MB/s (median): {}", "", verdict(speed_ok));
    let rss_ok = growth.map(|g| (g as f64 / 1e6) < TARGET_RSS_MB);
    match rss_ok {
        Some(ok) => println!("{:<8} target RSS growth < {TARGET_RSS_MB:.0} MB (worst run): {}", "", verdict(ok)),
        None => println!("{:<8} target RSS growth < {TARGET_RSS_MB:.0} MB: not measured (give --pid)", ""),
    }
    (speed_ok, rss_ok)
}

async fn image(b: ImageBench) -> anyhow::Result<()> {
    let size = b.size_mib * MIB;
    let local;
    let cloud = match (&b.url, &b.image_url) {
        (Some(identity), Some(image)) => &Cloud {
            identity: identity.trim_end_matches('/').trim_end_matches("/v3").to_string(),
            image: image.trim_end_matches('/').trim_end_matches("/v2").to_string(),
            password: b.password.clone().context("--password (or STRATUS_ADMIN_PASSWORD) is needed with --url")?,
            pid: b.pid,
        },
        _ => {
            local = tokio::select! {
                r = LocalCloud::start() => r?,
                _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            };
            &local.cloud
        }
    };
    let pid = match cloud.pid {
        Some(p) if rss_bytes(p).is_none() => {
            eprintln!("warning: cannot read VmRSS from /proc/{p}/status: the server's memory is not measured");
            None
        }
        p => p,
    };
    let http = reqwest::Client::builder().build()?;
    let (token, _) = issue(&http, &cloud.identity, &password_body(&cloud.password)).await.context("getting a token")?;
    let api = ImageApi { http, url: cloud.image.clone(), token };
    let chunk = noise(b.chunk_kib as usize * 1024);
    println!(
        "image bench against {}: {} MiB ({size} bytes) of random data in {} KiB chunks, {} run(s) each way",
        api.url, b.size_mib, b.chunk_kib, b.runs
    );
    println!(
        "MB = 10^6 bytes, MiB = 2^20 bytes; RSS growth = the server's peak VmRSS during a transfer minus just before"
    );
    let mut created = Vec::new();
    let outcome = tokio::select! {
        r = transfers(&b, &api, pid, size, &chunk, &mut created) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    for id in &created {
        if let Err(e) = api.delete(id).await
            && b.url.is_some()
        {
            eprintln!("warning: image {id} is left behind: {e:#}");
        }
    }
    let (up, down) = outcome?;
    println!();
    let (up_speed, up_rss) = summarize("upload", size, &up);
    let (down_speed, down_rss) = summarize("download", size, &down);
    let verdict = match (up_speed && down_speed, up_rss.zip(down_rss).map(|(u, d)| u && d)) {
        (true, Some(true)) => "all targets met",
        (true, None) => "throughput targets met; memory not measured",
        (false, None) => "throughput targets NOT met (see above); memory not measured",
        _ => "some targets NOT met (see above)",
    };
    println!("{verdict}");
    Ok(())
}

/// The uploads (a new image each), then the downloads (of the last one). `created` collects the
/// images made, for the caller to delete whatever happens.
async fn transfers(
    b: &ImageBench,
    api: &ImageApi,
    pid: Option<u32>,
    size: u64,
    chunk: &Bytes,
    created: &mut Vec<String>,
) -> anyhow::Result<(Vec<Run>, Vec<Run>)> {
    let mut up = Vec::new();
    for n in 1..=b.runs {
        // one image at a time on disk: the previous run's goes first
        if let Some(old) = created.last() {
            api.delete(old).await?;
            created.pop();
        }
        let id = api.create().await?;
        created.push(id.clone());
        let sampler = RssSampler::start(pid)?;
        let (took, after_last) = api.upload(&id, size, chunk).await.with_context(|| format!("upload run {n}"))?;
        let rss_growth = sampler.map(RssSampler::finish);
        let run = Run { secs: took.as_secs_f64(), after_last: Some(after_last.as_secs_f64()), rss_growth };
        api.check_active(&id, size).await?;
        report_run("upload", n, size, &run);
        up.push(run);
    }
    let id = created.last().context("no image was uploaded")?.clone();
    let mut down = Vec::new();
    for n in 1..=b.runs {
        let sampler = RssSampler::start(pid)?;
        let took = api.download(&id, size).await.with_context(|| format!("download run {n}"))?;
        let run = Run { secs: took.as_secs_f64(), after_last: None, rss_growth: sampler.map(RssSampler::finish) };
        report_run("download", n, size, &run);
        down.push(run);
    }
    Ok((up, down))
}
