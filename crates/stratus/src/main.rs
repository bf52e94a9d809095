//! `stratus`: an OpenStack-compatible cloud in one binary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use stratus_core::Config;
use stratus_db::Db;
use stratus_identity::{Identity, Migrator};

mod bench;
mod bench_boot;
mod bench_cloud;
mod bench_compute;
mod bench_dataplane;
mod bench_network;
mod bench_volume;
mod files;
mod netagent;
mod tiny_guest;

#[derive(Parser)]
#[command(
    name = "stratus",
    version,
    about = "An OpenStack-compatible cloud in one binary",
    long_about = "Stratus serves the OpenStack APIs (identity, image, compute, placement, network, \
block storage) so the `openstack` CLI and every OpenStack client work unmodified.\n\n\
Start a whole cloud on this machine:   stratus up\n\
Then:   export OS_CLIENT_CONFIG_FILE=./stratus-data/clouds.yaml; openstack --os-cloud stratus token issue\n\n\
Configuration: a TOML file (--config, see etc/stratus.toml); every option can also be set by an \
environment variable STRATUS_<SECTION>__<KEY>, e.g. STRATUS_IDENTITY__LISTEN=127.0.0.1:5000."
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, short, global = true, env = "STRATUS_CONFIG")]
    config: Option<PathBuf>,
    /// Where a local cloud keeps its database, keys and clouds.yaml (default ./stratus-data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole cloud in one process: migrate, bootstrap, serve every API.
    Up {
        /// The admin's password (default: generated on first start and printed once).
        #[arg(long, env = "STRATUS_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
    },
    /// Stop every guest of this data dir's compute hosts and remove their taps
    /// (guests outlive `stratus up` by design; their disks stay, shut off).
    Down,
    /// Serve the REST APIs only (stateless; scale out behind a load balancer).
    Api,
    /// Run a conductor: build sagas and resizes (scale out: sagas are taken over when one dies).
    Conductor {
        /// The name its service record carries (default: this machine's host name).
        #[arg(long)]
        host: Option<String>,
    },
    /// Run a scheduler: picks hosts through placement.
    Scheduler {
        #[arg(long)]
        host: Option<String>,
    },
    /// Run a compute host driving a hypervisor.
    Compute {
        /// The compute host's name.
        #[arg(long)]
        host: String,
        /// Hypervisor driver: auto, fake or qemu (default: compute.driver).
        #[arg(long)]
        driver: Option<String>,
    },
    /// Run the network agent of a host: its bridges, tunnels, DHCP, routers and
    /// security groups (network.agent.driver; `real` needs root).
    NetworkAgent {
        /// The host's name (the compute host's, whose ports it wires).
        #[arg(long)]
        host: String,
    },
    /// Run a volume host driving a storage backend (and the volume scheduler with --scheduler).
    Volume {
        /// The volume host's name.
        #[arg(long)]
        host: String,
        /// Storage backend: `file` (raw or qcow2 files under volume.volumes_dir).
        #[arg(long, default_value = "file")]
        backend: String,
        /// Also run a volume scheduler in this process.
        #[arg(long)]
        scheduler: bool,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Create the default domain, admin project/user, roles, region and catalog (idempotent).
    Bootstrap {
        #[arg(long, env = "STRATUS_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
    },
    /// Manage the Fernet key repository that signs tokens.
    Fernet {
        #[command(subcommand)]
        command: FernetCommand,
    },
    /// Measure a running cloud (see `stratus bench identity --help`).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply every pending migration.
    Sync,
}

#[derive(Subcommand)]
enum FernetCommand {
    /// Create the key repository (a staged and a primary key) unless it exists.
    Setup,
    /// Promote the staged key to primary, stage a new one, drop the oldest.
    Rotate,
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(d) = &cli.data_dir {
        cfg.data_dir = d.clone();
    }
    // every path absolute from here on (relative ones are from the working directory)
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    cfg.make_paths_absolute(&cwd);
    Ok(cfg)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    use std::io::IsTerminal;
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).init();
}

async fn open_db(cfg: &Config) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    let db = Db::connect(&cfg.database_url()).await.context("cannot open the database")?;
    db.migrate::<Migrator>().await.context("identity migrations failed")?;
    db.migrate::<stratus_image::Migrator>().await.context("image migrations failed")?;
    db.migrate::<stratus_placement::Migrator>().await.context("placement migrations failed")?;
    db.migrate::<stratus_compute::Migrator>().await.context("compute migrations failed")?;
    db.migrate::<stratus_saga::Migrator>().await.context("saga migrations failed")?;
    db.migrate::<stratus_network::Migrator>().await.context("network migrations failed")?;
    db.migrate::<stratus_volume::Migrator>().await.context("volume migrations failed")?;
    Ok(db)
}

fn service_entries(cfg: &Config) -> Vec<stratus_identity::bootstrap::ServiceEntry> {
    vec![
        stratus_identity::bootstrap::ServiceEntry {
            kind: "identity".into(),
            name: "keystone".into(),
            url: format!("{}/v3", cfg.identity_public_url()),
        },
        stratus_identity::bootstrap::ServiceEntry {
            kind: "image".into(),
            name: "glance".into(),
            url: cfg.image_public_url(),
        },
        stratus_identity::bootstrap::ServiceEntry {
            kind: "placement".into(),
            name: "placement".into(),
            url: cfg.placement_public_url(),
        },
        stratus_identity::bootstrap::ServiceEntry {
            kind: "compute".into(),
            name: "nova".into(),
            url: format!("{}/v2.1", cfg.compute_public_url()),
        },
        stratus_identity::bootstrap::ServiceEntry {
            kind: "network".into(),
            name: "neutron".into(),
            url: cfg.network_public_url(),
        },
        stratus_identity::bootstrap::ServiceEntry {
            kind: "block-storage".into(),
            name: "cinder".into(),
            url: format!("{}/v3", cfg.volume_public_url()),
        },
        stratus_identity::bootstrap::ServiceEntry {
            kind: "volumev3".into(),
            name: "cinderv3".into(),
            url: format!("{}/v3", cfg.volume_public_url()),
        },
    ]
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The service user's password: configured, else kept in the data dir (made once, 0600).
fn ensure_service_password(cfg: &Config) -> anyhow::Result<String> {
    if !cfg.service_user.password.is_empty() {
        return Ok(cfg.service_user.password.clone());
    }
    let path = cfg.service_password_file();
    if let Ok(p) = std::fs::read_to_string(&path)
        && !p.trim().is_empty()
    {
        return Ok(p.trim().to_string());
    }
    let pw = generate_password();
    std::fs::write(&path, &pw).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(pw)
}

fn generate_password() -> String {
    use base64::Engine;
    let bytes: [u8; 18] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// Unified limits read straight from identity's tables (the services share this process).
struct InProcessLimits(stratus_identity::State, &'static str);

impl stratus_image::quota::LimitSource for InProcessLimits {
    fn limit<'a>(
        &'a self,
        project_id: &'a str,
        resource: &'a str,
    ) -> futures::future::BoxFuture<'a, anyhow::Result<Option<i64>>> {
        Box::pin(async move {
            stratus_identity::store::misc::effective_limit(&self.0.db, self.1, project_id, resource)
                .await
                .map_err(|e| anyhow::anyhow!("reading limits: {e}"))
        })
    }
}

/// Every API of the cloud, served from this process until a shutdown signal.
/// Every API and (with `admin_project`, as `stratus up`) the local roles;
/// `ready` is printed once all of them answer and the tiny guest is registered.
async fn serve_all(
    identity: stratus_identity::State,
    cfg: &Config,
    admin_project: Option<&str>,
    ready: Option<String>,
) -> anyhow::Result<()> {
    let limits = std::sync::Arc::new(InProcessLimits(identity.clone(), "image"));
    let image = stratus_image::ImageService::open(cfg.clone(), identity.db.clone(), limits)?;
    if let Some(owner) = admin_project {
        for p in &cfg.image.preload {
            let path = Path::new(p);
            if !path.is_file() {
                tracing::warn!(path = %p, "image.preload: no such file, skipped");
                continue;
            }
            match stratus_image::preload::preload(&image, owner, path).await {
                Ok(Some(id)) => println!("  registered image {} ({id})", path.display()),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "image.preload failed"),
            }
        }
    }
    stratus_image::reaper::spawn(image.clone());
    let validator: std::sync::Arc<dyn stratus_core::TokenValidator> =
        std::sync::Arc::new(stratus_identity::token::Validator(identity.clone()));
    let addr: SocketAddr = cfg.image.listen.parse().with_context(|| format!("image.listen {:?}", cfg.image.listen))?;
    tracing::info!(%addr, "image (glance v2) listening");
    let image_srv = stratus_core::http::serve(addr, stratus_image::router(image, validator.clone()), shutdown_signal());

    let db = identity.db.clone();
    let placement = stratus_placement::PlacementService::open(cfg.clone(), db.clone())?;
    let addr: SocketAddr =
        cfg.placement.listen.parse().with_context(|| format!("placement.listen {:?}", cfg.placement.listen))?;
    tracing::info!(%addr, "placement listening");
    let placement_srv =
        stratus_core::http::serve(addr, stratus_placement::router(placement, validator.clone()), shutdown_signal());

    let compute = stratus_compute::ComputeService::open(cfg.clone(), db.clone())?;
    let addr: SocketAddr =
        cfg.compute.listen.parse().with_context(|| format!("compute.listen {:?}", cfg.compute.listen))?;
    tracing::info!(%addr, "compute (nova v2.1) listening");
    let compute_srv =
        stratus_core::http::serve(addr, stratus_compute::router(compute.clone(), validator.clone()), shutdown_signal());
    // the noVNC and serial console proxies beside the compute API
    let console_srv = stratus_compute::console::proxy::serve_all(db.clone(), cfg, shutdown_signal);
    // the metadata API the network agents' metadata proxies forward guests to
    let metadata_srv = stratus_compute::metadata::serve(compute.clone(), shutdown_signal());
    let network = stratus_network::NetworkService::open(cfg.clone(), db.clone())?;
    let addr: SocketAddr =
        cfg.network.listen.parse().with_context(|| format!("network.listen {:?}", cfg.network.listen))?;
    tracing::info!(%addr, "network (neutron v2.0) listening");
    let network_srv =
        stratus_core::http::serve(addr, stratus_network::router(network.clone(), validator.clone()), shutdown_signal());
    let volume = stratus_volume::VolumeService::open(cfg.clone(), db.clone())?;
    let addr: SocketAddr =
        cfg.volume.listen.parse().with_context(|| format!("volume.listen {:?}", cfg.volume.listen))?;
    tracing::info!(%addr, "block storage (cinder v3) listening");
    let volume_srv =
        stratus_core::http::serve(addr, stratus_volume::router(volume.clone(), validator.clone()), shutdown_signal());
    let identity_srv = serve_identity(identity, cfg);
    let roles = async {
        // the other services' APIs must answer before the roles register with them
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let bus = stratus_compute::roles::connect_bus(cfg).await?;
        let shared = stratus_compute::roles::Shared::new(db.clone(), cfg.clone(), bus).await?;
        compute.attach(shared.deps());
        // ports bound to a host go to its agents; agents report back on the same bus
        network.attach_bus(shared.bus.clone()).await?;
        volume.attach(stratus_volume::Deps {
            bus: shared.bus.clone(),
            images: shared.images.clone(),
            tokens: shared.tokens.clone(),
        });
        let mut volume_roles: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
        if admin_project.is_some() {
            volume_roles.push(Box::new(
                stratus_volume::scheduler::serve(db.clone(), cfg.clone(), &shared.bus, &hostname()).await?,
            ));
            for host in &cfg.volume.local_hosts {
                volume_roles.push(Box::new(start_volume_host(&db, cfg, &shared, host, "file").await?));
            }
        }
        let mut choice = None;
        if admin_project.is_some() {
            shared.start_conductor(&hostname()).await?;
            shared.start_scheduler(&hostname()).await?;
            if !cfg.compute.local_hosts.is_empty() {
                let c = stratus_compute::roles::choose_driver(cfg, &cfg.compute.driver)?;
                println!("  compute driver: {c}");
                choice = Some(c);
            }
            for host in &cfg.compute.local_hosts {
                let driver = stratus_compute::roles::driver(cfg, &cfg.compute.driver, host)?;
                start_compute_retrying(&shared, host, driver).await?;
            }
        }
        if choice.as_ref().is_some_and(|c| c.name == "qemu") {
            match cfg.tiny_guest_dir() {
                Some(dir) => match tiny_guest::register(&shared, &dir, &cfg.data_dir).await {
                    Ok(Some(id)) => println!("  registered image tiny ({id}) from {}", dir.display()),
                    Ok(None) => tracing::info!("the tiny guest is registered already (image tiny)"),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), dir = %dir.display(), "registering the tiny guest failed")
                    }
                },
                None => tracing::info!("no tiny guest image: scripts/tiny-guest/build makes it"),
            }
        }
        // compute hosts get network agents on the same bus: the real one (bridges, DHCP,
        // routers, security groups) when this process can program the kernel, else fake ones
        // (heartbeats, ports reported wired, no data plane)
        let mut agents = Vec::new();
        let mut real_agents = Vec::new();
        if admin_project.is_some() && cfg.network.agent.driver == "real" {
            for host in &cfg.compute.local_hosts {
                real_agents.push(netagent::start(cfg, shared.bus.clone(), host).await?);
            }
        } else if admin_project.is_some() {
            for host in &cfg.compute.local_hosts {
                let opts = stratus_network::agent::FakeAgentOptions {
                    report_interval: std::time::Duration::from_secs(cfg.network.agent_report_interval.max(1)),
                    availability_zone: cfg.network.agent_availability_zone.clone(),
                    ..Default::default()
                };
                agents.push(
                    stratus_network::agent::FakeAgent::start_with(db.clone(), shared.bus.clone(), host, opts).await?,
                );
            }
        }
        if let Some(msg) = &ready {
            println!("{msg}");
        }
        anyhow::Ok((agents, real_agents, volume_roles))
    };
    let roles = async {
        // the agents run as long as they are held
        let _agents = roles.await?;
        std::future::pending::<anyhow::Result<()>>().await
    };
    tokio::select! {
        r = async { tokio::try_join!(identity_srv, image_srv, placement_srv, compute_srv, network_srv, volume_srv, console_srv, metadata_srv) } => { r?; }
        r = roles => { r?; }
    }
    Ok(())
}

/// A volume host with its backend (`file`: a directory of raw or qcow2 files).
async fn start_volume_host(
    db: &Db,
    cfg: &Config,
    shared: &stratus_compute::roles::Shared,
    host: &str,
    backend: &str,
) -> anyhow::Result<std::sync::Arc<stratus_volume::manager::VolumeHost>> {
    if backend != "file" {
        anyhow::bail!("unknown volume backend {backend:?} (known: file)");
    }
    let driver = std::sync::Arc::new(stratus_volume::driver::FileBackend::new(
        cfg.volumes_dir().join(host),
        &cfg.volume.file_format,
        backend,
        cfg.volume.capacity_gb,
    )?);
    stratus_volume::manager::VolumeHost::start(
        db.clone(),
        cfg.clone(),
        shared.bus.clone(),
        host,
        driver,
        Some((shared.images.clone(), shared.tokens.clone())),
    )
    .await
}

/// A compute host registers with placement over REST: retry while the APIs come up.
async fn start_compute_retrying(
    shared: &stratus_compute::roles::Shared,
    host: &str,
    driver: std::sync::Arc<dyn stratus_virt::Driver>,
) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..50 {
        match shared.start_compute(host, driver.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("compute host {host} did not start")))
}

async fn serve_identity(identity: stratus_identity::State, cfg: &Config) -> anyhow::Result<()> {
    let addr: SocketAddr =
        cfg.identity.listen.parse().with_context(|| format!("identity.listen {:?}", cfg.identity.listen))?;
    // prune revocation events no token can outlive
    let pruner = identity.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            let horizon = (pruner.cfg.identity.token_expiration + pruner.cfg.identity.allow_expired_window) * 1_000_000;
            let cutoff = chrono::Utc::now().timestamp_micros() - horizon;
            if let Err(e) = pruner.revocations.prune(&pruner.db, cutoff).await {
                tracing::warn!(error = %e, "pruning revocation events failed");
            }
        }
    });
    tracing::info!(%addr, "identity (keystone v3) listening");
    stratus_core::http::serve(addr, stratus_identity::router(identity), shutdown_signal()).await
}

/// What bootstrapping gave: identity opened, the admin's password and whether
/// the caller chose it.
struct Booted {
    identity: stratus_identity::State,
    outcome: stratus_identity::bootstrap::Outcome,
    password: String,
    given: bool,
}

/// Migrate, make the key repository if missing, open identity and run the idempotent bootstrap.
async fn boot(cfg: &Config, admin_password: Option<String>) -> anyhow::Result<Booted> {
    let db = open_db(cfg).await?;
    stratus_identity::fernet::setup(&cfg.fernet_key_repository(), cfg.identity.fernet_max_active_keys)?;
    let identity = Identity::open(cfg.clone(), db).await?;
    let given = admin_password
        .or_else(|| (!cfg.bootstrap.admin_password.is_empty()).then(|| cfg.bootstrap.admin_password.clone()));
    let password = given.clone().unwrap_or_else(generate_password);
    let outcome = stratus_identity::bootstrap::run(&identity, &password, &cfg.bootstrap.region, &service_entries(cfg))
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap failed: {e}"))?;
    let service_password = ensure_service_password(cfg)?;
    stratus_identity::bootstrap::ensure_service_user(
        &identity,
        &cfg.service_user.username,
        &service_password,
        &cfg.service_user.project,
    )
    .await
    .map_err(|e| anyhow::anyhow!("bootstrap of the service user failed: {e}"))?;
    stratus_compute::store::flavors::ensure_default_flavors(&identity.db)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap of the default flavors failed: {e}"))?;
    // `public`, `private` and `router1`, as devstack makes them ([network.bootstrap])
    let networks = stratus_network::bootstrap::run(&identity.db, cfg, &outcome.admin_project_id)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap of the networks failed: {e}"))?;
    if !networks.created.is_empty() {
        println!("  created {}", networks.created.join(", "));
    }
    stratus_volume::store::types::ensure_default(&identity.db.write, &cfg.volume.default_volume_type)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap of the default volume type failed: {e}"))?;
    Ok(Booted { identity, outcome, password, given: given.is_some() })
}

async fn up(cfg: Config, admin_password: Option<String>) -> anyhow::Result<()> {
    let Booted { identity, outcome, password, given } = boot(&cfg, admin_password).await?;
    let known_password = if outcome.created_admin || given { Some(password.as_str()) } else { None };
    let written = files::write_client_files(&cfg, known_password)?;
    if outcome.created_admin && !given {
        println!("Generated admin password (shown once): {password}");
    }
    // said once every service answers and the compute host runs (the tiny guest registered)
    let mut ready = format!(
        "Stratus is up. Identity: {}/v3  Image: {}  Compute: {}/v2.1  Placement: {}  Network: {}  Block storage: {}/v3",
        cfg.identity_public_url(),
        cfg.image_public_url(),
        cfg.compute_public_url(),
        cfg.placement_public_url(),
        cfg.network_public_url(),
        cfg.volume_public_url()
    );
    if let Some(path) = written {
        ready.push_str(&format!("\n  export OS_CLIENT_CONFIG_FILE={}", path.display()));
        ready.push_str("\n  openstack --os-cloud stratus token issue");
    }
    let served = serve_all(identity, &cfg, Some(&outcome.admin_project_id), Some(ready)).await;
    let running: usize = qemu_hosts(&cfg).iter().map(|(_, d)| d.guests().iter().filter(|g| g.running).count()).sum();
    if running > 0 {
        println!(
            "Stratus stopped; {running} guest{} still running{} (a later `stratus up` on {} takes {} over again).\n\
             To stop {}: stratus --data-dir {} down",
            if running == 1 { "" } else { "s" },
            if running == 1 { " its QEMU" } else { " their QEMUs" },
            cfg.data_dir.display(),
            if running == 1 { "it" } else { "them" },
            if running == 1 { "it" } else { "them" },
            cfg.data_dir.display()
        );
    }
    served
}

/// The QEMU driver of every compute host that keeps guests under this data dir
/// (`<instances_dir>/<host>/<uuid>/`).
fn qemu_hosts(cfg: &Config) -> Vec<(String, stratus_virt::qemu::QemuDriver)> {
    let Ok(entries) = std::fs::read_dir(cfg.instances_dir()) else { return Vec::new() };
    let mut hosts: Vec<_> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let host = e.file_name().to_str()?.to_string();
            let opts = stratus_virt::qemu::QemuOptions {
                binary: cfg.compute.qemu_binary.clone(),
                instances_dir: e.path(),
                accel: stratus_virt::qemu::Accel::Tcg,
                bridge: cfg.compute.qemu_bridge.clone(),
                shutdown_timeout: std::time::Duration::from_secs(cfg.compute.shutdown_timeout),
                probe_kernel: None,
                host_ip: "127.0.0.1".into(),
            };
            Some((host, stratus_virt::qemu::QemuDriver::new(opts).ok()?))
        })
        .collect();
    hosts.sort_by(|a, b| a.0.cmp(&b.0));
    hosts
}

/// `stratus down`: every guest of the data dir stopped, taps and the idle bridge removed.
async fn down(cfg: &Config) -> anyhow::Result<()> {
    let mut stopped = 0;
    let mut failed = Vec::new();
    let hosts = qemu_hosts(cfg);
    for (host, driver) in &hosts {
        match driver.stop_all().await {
            Ok(n) => stopped += n,
            Err(e) => failed.push(format!("{host}: {e:#}")),
        }
    }
    if let Some((_, driver)) = hosts.first()
        && let Err(e) = driver.remove_idle_bridge().await
    {
        failed.push(format!("bridge {}: {e:#}", cfg.compute.qemu_bridge));
    }
    // the network agents' data plane (their namespaces, bridges, dnsmasq), when they made one
    for host in &cfg.compute.local_hosts {
        let opts = netagent::options(cfg, host)?;
        if !opts.state_dir.exists() {
            continue;
        }
        let mapped: Vec<String> = opts.bridge_mappings.values().cloned().collect();
        match stratus_netagent::agent::teardown_host(&opts.state_dir, &mapped, opts.firewall_table.as_deref()).await {
            Ok(n) => println!("removed the network data plane of {host} ({n} namespaces and links)"),
            Err(e) => failed.push(format!("network data plane of {host}: {e:#}")),
        }
    }
    println!(
        "stopped {stopped} guest{} of {} (disks kept; a later `stratus up` shows them SHUTOFF)",
        if stopped == 1 { "" } else { "s" },
        cfg.data_dir.display()
    );
    if !failed.is_empty() {
        anyhow::bail!("some guests could not be stopped: {}", failed.join("; "));
    }
    Ok(())
}

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut cfg = load_config(&cli)?;
    if matches!(cli.command, Command::Up { .. } | Command::Compute { .. } | Command::NetworkAgent { .. }) {
        // resolved once: the hypervisor plugs taps into the bridges the agent makes
        let (real, why) = netagent::mode(&cfg)?;
        cfg.network.agent.driver = if real { "real" } else { "fake" }.into();
        if real {
            cfg.compute.qemu_bridge.clear();
        }
        tracing::info!("network agent: {why}");
        if matches!(cli.command, Command::Up { .. }) {
            println!("network agent: {why}");
        }
    }
    match cli.command {
        Command::Up { admin_password } => up(cfg, admin_password).await,
        Command::Down => down(&cfg).await,
        Command::Api => {
            let db = open_db(&cfg).await?;
            let identity = Identity::open(cfg.clone(), db).await?;
            serve_all(identity, &cfg, None, None).await
        }
        Command::Conductor { host } => {
            let db = open_db(&cfg).await?;
            let bus = stratus_compute::roles::connect_bus(&cfg).await?;
            let shared = stratus_compute::roles::Shared::new(db, cfg.clone(), bus).await?;
            shared.start_conductor(&host.unwrap_or_else(hostname)).await?;
            shutdown_signal().await;
            Ok(())
        }
        Command::Scheduler { host } => {
            let db = open_db(&cfg).await?;
            let bus = stratus_compute::roles::connect_bus(&cfg).await?;
            let shared = stratus_compute::roles::Shared::new(db, cfg.clone(), bus).await?;
            shared.start_scheduler(&host.unwrap_or_else(hostname)).await?;
            shutdown_signal().await;
            Ok(())
        }
        Command::Compute { host, driver } => {
            let db = open_db(&cfg).await?;
            let bus = stratus_compute::roles::connect_bus(&cfg).await?;
            let shared = stratus_compute::roles::Shared::new(db, cfg.clone(), bus).await?;
            let d = stratus_compute::roles::driver(&cfg, driver.as_deref().unwrap_or(&cfg.compute.driver), &host)?;
            start_compute_retrying(&shared, &host, d).await?;
            shutdown_signal().await;
            Ok(())
        }
        Command::NetworkAgent { host } => {
            let bus = stratus_compute::roles::connect_bus(&cfg).await?;
            if cfg.network.agent.driver == "real" {
                let _agent = netagent::start(&cfg, bus, &host).await?;
                shutdown_signal().await;
            } else {
                let db = open_db(&cfg).await?;
                let opts = stratus_network::agent::FakeAgentOptions {
                    report_interval: std::time::Duration::from_secs(cfg.network.agent_report_interval.max(1)),
                    availability_zone: cfg.network.agent_availability_zone.clone(),
                    ..Default::default()
                };
                let _agent = stratus_network::agent::FakeAgent::start_with(db, bus, &host, opts).await?;
                shutdown_signal().await;
            }
            Ok(())
        }
        Command::Volume { host, backend, scheduler } => {
            let db = open_db(&cfg).await?;
            let bus = stratus_compute::roles::connect_bus(&cfg).await?;
            let shared = stratus_compute::roles::Shared::new(db.clone(), cfg.clone(), bus).await?;
            let _sched = if scheduler {
                Some(stratus_volume::scheduler::serve(db.clone(), cfg.clone(), &shared.bus, &host).await?)
            } else {
                None
            };
            let _host = start_volume_host(&db, &cfg, &shared, &host, &backend).await?;
            shutdown_signal().await;
            Ok(())
        }
        Command::Db { command: DbCommand::Sync } => {
            open_db(&cfg).await?;
            println!("database is up to date ({})", redact(&cfg.database_url()));
            Ok(())
        }
        Command::Bootstrap { admin_password } => {
            let b = boot(&cfg, admin_password).await?;
            if b.outcome.created_admin && !b.given {
                println!("Generated admin password (shown once): {}", b.password);
            }
            println!(
                "bootstrap done: admin user {} on project {}",
                b.outcome.admin_user_id, b.outcome.admin_project_id
            );
            Ok(())
        }
        Command::Fernet { command } => {
            let dir = abs(&cfg.fernet_key_repository());
            match command {
                FernetCommand::Setup => {
                    if stratus_identity::fernet::setup(&dir, cfg.identity.fernet_max_active_keys)? {
                        println!("created key repository {}", dir.display());
                    } else {
                        println!("key repository {} already has keys", dir.display());
                    }
                }
                FernetCommand::Rotate => {
                    let primary = stratus_identity::fernet::rotate(&dir, cfg.identity.fernet_max_active_keys)?;
                    println!("rotated: key {primary} is now primary in {}", dir.display());
                }
            }
            Ok(())
        }
        Command::Bench { command } => bench::run(command, &cfg).await,
    }
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stratus: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stratus: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
