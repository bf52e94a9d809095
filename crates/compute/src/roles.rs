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

/// The hypervisor drivers a compute host can run.
pub const DRIVERS: &[&str] = &["auto", "fake", "qemu"];

/// Which driver a configured name means, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverChoice {
    /// `fake` or `qemu`.
    pub name: &'static str,
    /// Why, in a few words: "qemu-system-x86_64 found at /usr/bin/qemu-system-x86_64".
    pub why: String,
}

impl std::fmt::Display for DriverChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.why)
    }
}

/// Resolve a driver name: `auto` is `qemu` when `compute.qemu_binary` is
/// found, else `fake`; `qemu` needs the binary; unknown names are refused.
pub fn choose_driver(cfg: &Config, name: &str) -> anyhow::Result<DriverChoice> {
    let bin = cfg.compute.qemu_binary.as_str();
    match name {
        "fake" => Ok(DriverChoice { name: "fake", why: "configured".into() }),
        "qemu" => match find_program(bin) {
            Some(p) => Ok(DriverChoice { name: "qemu", why: format!("configured, {bin} at {}", p.display()) }),
            None => anyhow::bail!("compute driver qemu: {bin} is not installed (not found on PATH)"),
        },
        "auto" => Ok(match find_program(bin) {
            Some(p) => DriverChoice { name: "qemu", why: format!("{bin} found at {}", p.display()) },
            None => DriverChoice { name: "fake", why: format!("{bin} not installed") },
        }),
        other => anyhow::bail!("unknown compute driver {other:?} (known: {})", DRIVERS.join(", ")),
    }
}

/// An executable file: `name` itself when it has a slash, else the first
/// match on `PATH`.
pub fn find_program(name: &str) -> Option<std::path::PathBuf> {
    fn executable(p: &std::path::Path) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        }
        #[cfg(not(unix))]
        {
            p.is_file()
        }
    }
    if name.is_empty() {
        return None;
    }
    if name.contains(std::path::MAIN_SEPARATOR) || name.contains('/') {
        let p = std::path::PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| executable(p))
}

/// The driver compute host `host` runs, by name (`auto`, `fake`, `qemu`).
pub fn driver(cfg: &Config, name: &str, host: &str) -> anyhow::Result<Arc<dyn stratus_virt::Driver>> {
    let choice = choose_driver(cfg, name)?;
    tracing::info!(host, driver = choice.name, why = %choice.why, configured = name, "compute driver chosen");
    let c = &cfg.compute;
    match choice.name {
        "qemu" => {
            let accel = match c.qemu_accel.as_str() {
                "auto" => stratus_virt::qemu::Accel::Auto,
                "kvm" => stratus_virt::qemu::Accel::Kvm,
                "tcg" => stratus_virt::qemu::Accel::Tcg,
                other => anyhow::bail!("compute.qemu_accel {other:?}: expected \"auto\", \"kvm\" or \"tcg\""),
            };
            let probe_kernel = cfg.tiny_guest_dir().map(|d| (d.join("vmlinuz"), d.join("initrd.gz")));
            let opts = stratus_virt::qemu::QemuOptions {
                binary: c.qemu_binary.clone(),
                // hosts of one process each get their own directory
                instances_dir: cfg.instances_dir().join(host),
                accel,
                bridge: c.qemu_bridge.clone(),
                shutdown_timeout: std::time::Duration::from_secs(c.shutdown_timeout),
                probe_kernel,
                host_ip: "127.0.0.1".into(),
            };
            Ok(Arc::new(stratus_virt::qemu::QemuDriver::new(opts)?))
        }
        _ => {
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
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn cfg_with(binary: &str, driver: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
        cfg.compute.qemu_binary = binary.into();
        cfg.compute.driver = driver.into();
        (dir, cfg)
    }

    #[test]
    fn auto_is_fake_without_the_qemu_binary() {
        let (_d, cfg) = cfg_with("stratus-no-such-qemu-binary", "auto");
        assert_eq!(cfg.compute.driver, "auto");
        let choice = choose_driver(&cfg, "auto").unwrap();
        assert_eq!(choice.name, "fake");
        assert_eq!(choice.why, "stratus-no-such-qemu-binary not installed");
        let d = driver(&cfg, "auto", "compute1").unwrap();
        assert_eq!(d.name(), "fake");
        assert!(!d.needs_images());
        // asking for qemu by name without it is an error, not a silent fake
        let e = choose_driver(&cfg, "qemu").unwrap_err().to_string();
        assert!(e.contains("stratus-no-such-qemu-binary is not installed"), "{e}");
    }

    #[test]
    fn auto_is_qemu_when_the_binary_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("qemu-system-test");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let (_d, cfg) = cfg_with(&bin.display().to_string(), "auto");
        let choice = choose_driver(&cfg, "auto").unwrap();
        assert_eq!(choice.name, "qemu");
        assert_eq!(choice.why, format!("{} found at {}", bin.display(), bin.display()));
        assert_eq!(choose_driver(&cfg, "qemu").unwrap().name, "qemu");
        assert_eq!(choose_driver(&cfg, "fake").unwrap(), DriverChoice { name: "fake", why: "configured".into() });
        // a file that cannot run is not a binary
        std::fs::write(dir.path().join("plain"), "").unwrap();
        let (_d, cfg) = cfg_with(&dir.path().join("plain").display().to_string(), "auto");
        assert_eq!(choose_driver(&cfg, "auto").unwrap().name, "fake");
    }

    #[test]
    fn unknown_drivers_are_refused_with_the_known_ones() {
        let (_d, cfg) = cfg_with("qemu-system-x86_64", "libvirt");
        let e = driver(&cfg, "libvirt", "compute1").err().unwrap().to_string();
        assert_eq!(e, "unknown compute driver \"libvirt\" (known: auto, fake, qemu)");
    }
}
