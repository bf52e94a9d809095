//! Hypervisor drivers behind one trait. A compute host drives exactly one.
//!
//! - [`fake::FakeDriver`]: no guests, but a full participant: configurable
//!   capacity, boot delay and failure injection, power states, console
//!   output, snapshots, and its guests survive a restart of the compute host
//!   (kept in a state file) so re-adoption can be exercised.
//! - [`qemu::QemuDriver`]: real guests, one QEMU process each, driven over QMP.
//!
//! Every operation is idempotent by instance uuid: spawning a guest that
//! already runs, or destroying one that is gone, succeeds.

pub mod fake;
pub mod metadata;
pub mod qemu;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Nova's power states (the integers the API shows as `OS-EXT-STS:power_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerState {
    NoState = 0,
    Running = 1,
    Paused = 3,
    Shutdown = 4,
    Crashed = 6,
    Suspended = 7,
}

impl PowerState {
    pub fn code(self) -> i64 {
        self as i64
    }
}

/// What a host offers, as it reports it to placement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostCapacity {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub cpu_info: serde_json::Value,
    /// Placement traits the host has (`COMPUTE_*`, `HW_CPU_*`).
    pub traits: Vec<String>,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub host_ip: String,
}

/// What a guest should be.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GuestSpec {
    pub uuid: String,
    pub name: String,
    pub hostname: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap_mb: i64,
    pub image_id: String,
    /// The image's data on this host, when the driver needs it (not the fake).
    pub image_path: Option<PathBuf>,
    pub image_properties: serde_json::Map<String, serde_json::Value>,
    pub user_data: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub key_data: Option<String>,
    /// The key pair's name (the config drive's `public_keys` key).
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub availability_zone: String,
    #[serde(default)]
    pub launch_index: i64,
    /// Disk format of `image_path` (`raw`, `qcow2`).
    #[serde(default)]
    pub image_format: Option<String>,
    /// A kernel and ramdisk to boot directly (the image's `kernel_id` and
    /// `ramdisk_id`), on this host; the image's `os_command_line` is in
    /// `image_properties`.
    #[serde(default)]
    pub kernel_path: Option<PathBuf>,
    #[serde(default)]
    pub ramdisk_path: Option<PathBuf>,
    /// The network interfaces the guest boots with, in order.
    #[serde(default)]
    pub interfaces: Vec<GuestInterface>,
}

/// A guest as the hypervisor sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestInfo {
    pub uuid: String,
    pub power_state: PowerState,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
}

/// A network interface of a guest (a port of the network service, plugged in).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuestInterface {
    pub port_id: String,
    pub network_id: String,
    pub mac_address: String,
    /// The device tag the user gave (Nova's device role tagging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The port's fixed addresses (the config drive's network data).
    #[serde(default)]
    pub ips: Vec<String>,
    /// The network's MTU: the tap's (None: the kernel's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// A volume connected to a guest (a block storage attachment).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuestVolume {
    pub volume_id: String,
    pub attachment_id: String,
    /// `/dev/vdb`, ...
    pub device_name: String,
    /// What the volume service answered the host's connector with.
    #[serde(default)]
    pub connection_info: serde_json::Value,
}

/// A guest's interactive console, as the console proxies reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleKind {
    /// The graphical console (an RFB server).
    Vnc,
    /// The first serial port, as a byte stream.
    Serial,
}

impl ConsoleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleKind::Vnc => "vnc",
            ConsoleKind::Serial => "serial",
        }
    }
}

/// Where a guest's console is reached on its host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleEndpoint {
    Tcp {
        host: String,
        port: u16,
    },
    /// A unix socket on the host (the proxy runs on the same machine).
    Unix {
        path: PathBuf,
    },
}

/// The guest has no such console (Nova's `ConsoleTypeUnavailable`): the
/// driver does not offer it, or the guest was started without it.
#[derive(Debug)]
pub struct ConsoleUnavailable(pub ConsoleKind);

impl std::fmt::Display for ConsoleUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unavailable console type {}.", self.0.as_str())
    }
}

impl std::error::Error for ConsoleUnavailable {}

/// The guest exists but does not run, so its console is not there.
#[derive(Debug)]
pub struct GuestNotRunning(pub String);

impl std::fmt::Display for GuestNotRunning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "guest {} is not running", self.0)
    }
}

impl std::error::Error for GuestNotRunning {}

/// A hypervisor driver.
#[async_trait::async_trait]
pub trait Driver: Send + Sync + 'static {
    /// `fake`, `QEMU`, ...
    fn name(&self) -> &'static str;
    /// The driver itself, for tests that reach a fake's controls.
    fn as_any(&self) -> &dyn std::any::Any;
    /// The driver boots image data: the compute host must fetch the image
    /// (and its kernel and ramdisk) and give their local paths in the spec.
    fn needs_images(&self) -> bool {
        false
    }
    async fn capacity(&self) -> anyhow::Result<HostCapacity>;
    /// Every guest this hypervisor has (running or not).
    async fn list(&self) -> anyhow::Result<Vec<GuestInfo>>;
    /// Create and start a guest; a guest that exists already is left as it is.
    async fn spawn(&self, spec: &GuestSpec) -> anyhow::Result<()>;
    /// Stop and remove a guest and its disks; gone already is fine.
    async fn destroy(&self, uuid: &str) -> anyhow::Result<()>;
    async fn power_off(&self, uuid: &str) -> anyhow::Result<()>;
    async fn power_on(&self, uuid: &str) -> anyhow::Result<()>;
    async fn reboot(&self, uuid: &str, hard: bool) -> anyhow::Result<()>;
    async fn pause(&self, uuid: &str) -> anyhow::Result<()>;
    async fn unpause(&self, uuid: &str) -> anyhow::Result<()>;
    async fn suspend(&self, uuid: &str) -> anyhow::Result<()>;
    async fn resume(&self, uuid: &str) -> anyhow::Result<()>;
    /// Give a guest new sizes (resize); it is left powered off.
    async fn resize(&self, uuid: &str, spec: &GuestSpec) -> anyhow::Result<()>;
    /// The guest's serial console, the last `lines` lines when given.
    async fn console_output(&self, uuid: &str, lines: Option<usize>) -> anyhow::Result<String>;
    /// Where the guest's console of `kind` is reached (the console proxy
    /// connects there). Errors: [`NoSuchGuest`], [`GuestNotRunning`],
    /// [`ConsoleUnavailable`] (the default: no remote consoles).
    async fn console_endpoint(&self, uuid: &str, kind: ConsoleKind) -> anyhow::Result<ConsoleEndpoint> {
        let _ = uuid;
        Err(ConsoleUnavailable(kind).into())
    }
    /// Write the guest's root disk to `dest`; returns its disk format (`raw`, `qcow2`).
    async fn snapshot(&self, uuid: &str, dest: &std::path::Path) -> anyhow::Result<String>;
    /// Hot-plug a network interface; plugging one the guest has already is fine.
    /// Drivers that cannot say so (Nova's `supports_attach_interface`).
    async fn attach_interface(&self, uuid: &str, iface: &GuestInterface) -> anyhow::Result<()> {
        let _ = iface;
        anyhow::bail!("{} driver: attaching interfaces to guest {uuid} is not supported yet", self.name())
    }
    /// Unplug a network interface; one the guest does not have is fine.
    async fn detach_interface(&self, uuid: &str, port_id: &str) -> anyhow::Result<()> {
        let _ = port_id;
        anyhow::bail!("{} driver: detaching interfaces from guest {uuid} is not supported yet", self.name())
    }
    /// Connect a volume to a guest; one it has already is fine (drivers
    /// that do not know volumes accept and ignore them).
    async fn attach_volume(&self, uuid: &str, volume: &GuestVolume) -> anyhow::Result<()> {
        let _ = (uuid, volume);
        Ok(())
    }
    /// Disconnect a volume; one the guest does not have is fine.
    async fn detach_volume(&self, uuid: &str, volume_id: &str) -> anyhow::Result<()> {
        let _ = (uuid, volume_id);
        Ok(())
    }
}

/// A guest that is not on this hypervisor.
#[derive(Debug)]
pub struct NoSuchGuest(pub String);

impl std::fmt::Display for NoSuchGuest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no guest {} on this host", self.0)
    }
}

impl std::error::Error for NoSuchGuest {}
