//! Starting the compute roles in a process: the bus, the clients of the
//! other services, the conductor, the scheduler, compute hosts. `stratus up`
//! starts them all in one process; `stratus conductor|scheduler|compute`
//! start one each.

use std::sync::Arc;

use stratus_bus::Bus;
use stratus_core::Config;
use stratus_db::Db;

use crate::placement::{Placement, TokenSource};

/// Join the configured bus: in process, or RabbitMQ by AMQP URL.
pub async fn connect_bus(cfg: &Config) -> anyhow::Result<Bus> {
    let url = cfg.bus.url.trim();
    let transport: Arc<dyn stratus_bus::Transport> = if url.is_empty() || url == "inprocess" {
        Arc::new(stratus_bus::inproc::InProcess::new())
    } else if url.starts_with("amqp://") || url.starts_with("amqps://") {
        Arc::new(stratus_bus::amqp::Amqp::connect(url).await.map_err(|e| anyhow::anyhow!("bus {url}: {e}"))?)
    } else {
        anyhow::bail!("bus.url {url:?}: expected \"inprocess\" or an amqp:// URL");
    };
    Bus::new(transport).await.map_err(|e| anyhow::anyhow!("bus: {e}"))
}

/// The service user's password: from the configuration, else the file bootstrap wrote.
pub fn service_password(cfg: &Config) -> anyhow::Result<String> {
    if !cfg.service_user.password.is_empty() {
        return Ok(cfg.service_user.password.clone());
    }
    let path = cfg.service_password_file();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "no service_user.password configured and {} unreadable ({e}): run `stratus bootstrap`",
            path.display()
        )
    })?;
    Ok(text.trim().to_string())
}

/// A token source for the service user, through identity's REST API.
pub fn service_tokens(cfg: &Config) -> anyhow::Result<TokenSource> {
    let creds = stratus_clients::ServiceCredentials {
        username: cfg.service_user.username.clone(),
        password: service_password(cfg)?,
        user_domain_id: "default".into(),
        project_name: cfg.service_user.project.clone(),
        project_domain_id: "default".into(),
    };
    let client = Arc::new(stratus_clients::IdentityClient::new(&cfg.identity_public_url(), creds, 5)?);
    Ok(Arc::new(move || {
        let c = client.clone();
        Box::pin(async move { c.service_token().await })
    }))
}

/// What every compute role needs.
#[derive(Clone)]
pub struct Shared {
    pub db: Db,
    pub cfg: Config,
    pub bus: Bus,
    pub placement: Arc<Placement>,
    pub images: Arc<stratus_clients::ImageClient>,
    pub tokens: TokenSource,
    pub network: Option<Arc<crate::network::Networking>>,
    pub volumes: Option<Arc<crate::volume::Volumes>>,
}

impl Shared {
    pub async fn new(db: Db, cfg: Config, bus: Bus) -> anyhow::Result<Shared> {
        let tokens = service_tokens(&cfg)?;
        let placement = Arc::new(Placement::new(&cfg.placement_public_url(), tokens.clone())?);
        let images = Arc::new(stratus_clients::ImageClient::new(&cfg.image_public_url())?);
        let network = if cfg.compute.networking {
            Some(crate::network::Networking::new(&cfg.network_public_url(), tokens.clone())?)
        } else {
            None
        };
        let volumes = if cfg.compute.block_storage {
            Some(crate::volume::Volumes::new(&cfg.volume_public_url(), tokens.clone())?)
        } else {
            None
        };
        Ok(Shared { db, cfg, bus, placement, images, tokens, network, volumes })
    }

    /// The API's dependencies.
    pub fn deps(&self) -> crate::Deps {
        crate::Deps {
            bus: self.bus.clone(),
            placement: self.placement.clone(),
            images: self.images.clone(),
            tokens: self.tokens.clone(),
            network: self.network.clone(),
            volumes: self.volumes.clone(),
        }
    }

    pub async fn start_conductor(&self, name: &str) -> anyhow::Result<Arc<crate::conductor::Conductor>> {
        let owner = format!("{name}/{}", uuid::Uuid::new_v4().simple());
        let c = crate::conductor::Conductor::new(
            self.db.clone(),
            self.cfg.clone(),
            self.bus.clone(),
            self.placement.clone(),
            self.network.clone(),
            self.volumes.clone(),
            &owner,
        );
        c.start().await?;
        Ok(c)
    }

    pub async fn start_scheduler(&self, name: &str) -> anyhow::Result<()> {
        let s = Arc::new(crate::scheduler::Scheduler {
            db: self.db.clone(),
            cfg: self.cfg.clone(),
            placement: self.placement.clone(),
        });
        crate::scheduler::serve(s, &self.bus, name).await
    }

    /// Start compute host `host` with the configured driver.
    pub async fn start_compute(
        &self,
        host: &str,
        driver: Arc<dyn stratus_virt::Driver>,
    ) -> anyhow::Result<Arc<crate::manager::ComputeHost>> {
        crate::manager::ComputeHost::start(
            host,
            self.db.clone(),
            self.cfg.clone(),
            driver,
            self.placement.clone(),
            self.images.clone(),
            self.tokens.clone(),
            self.bus.clone(),
            self.network.clone(),
            self.volumes.clone(),
        )
        .await
    }
}

/// The driver a compute host runs, by name (`fake`; `qemu` comes with its issue).
pub fn driver(cfg: &Config, name: &str, host: &str) -> anyhow::Result<Arc<dyn stratus_virt::Driver>> {
    match name {
        "fake" => {
            let c = &cfg.compute;
            let opts = stratus_virt::fake::FakeOptions {
                vcpus: c.fake_vcpus,
                memory_mb: c.fake_memory_mb,
                disk_gb: c.fake_disk_gb,
                boot_delay: std::time::Duration::from_secs_f64(c.fake_boot_seconds.max(0.0)),
                fail_spawn: false,
                fail_spawn_named: None,
                state_file: Some(cfg.data_dir.join("fake-hypervisor").join(format!("{host}.json"))),
                fail_attach_interface: false,
            };
            Ok(Arc::new(stratus_virt::fake::FakeDriver::new(opts)?))
        }
        other => anyhow::bail!("unknown compute driver {other:?} (known: fake)"),
    }
}
