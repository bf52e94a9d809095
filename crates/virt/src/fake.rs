//! The fake hypervisor: guests are records, not machines, but they hold
//! resources, power states and console logs like real ones, and persist in
//! a state file so a restarted compute host finds them again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    ConsoleEndpoint, ConsoleKind, Driver, GuestInfo, GuestInterface, GuestNotRunning, GuestSpec, GuestVolume,
    HostCapacity, NoSuchGuest, PowerState,
};

/// Failure injection and timing of a fake host.
#[derive(Clone, Debug, Default)]
pub struct FakeOptions {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    /// How long a spawn takes.
    pub boot_delay: Duration,
    /// Every spawn fails (a broken host, for rescheduling).
    pub fail_spawn: bool,
    /// Spawns of guests whose name contains this fail.
    pub fail_spawn_named: Option<String>,
    /// Where guests are kept across restarts (`None`: memory only).
    pub state_file: Option<PathBuf>,
    /// Every interface hot-plug fails (to exercise the unwind of an attach).
    pub fail_attach_interface: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct FakeGuest {
    spec: GuestSpec,
    power: PowerState,
    console: Vec<String>,
    /// The network interfaces plugged in, in order.
    #[serde(default)]
    interfaces: Vec<GuestInterface>,
    /// The volumes connected, in order.
    #[serde(default)]
    volumes: Vec<GuestVolume>,
}

pub struct FakeDriver {
    opts: Mutex<FakeOptions>,
    guests: Mutex<BTreeMap<String, FakeGuest>>,
    /// Consoles opened so far: a loopback listener per guest and kind.
    consoles: Mutex<BTreeMap<(String, ConsoleKind), (ConsoleEndpoint, tokio::task::AbortHandle)>>,
}

/// The greeting of the fake guest's VNC server (an RFB 3.8 server's first words).
pub const FAKE_RFB_GREETING: &[u8] = b"RFB 003.008\n";

/// A fake guest's console: a loopback listener whose connections get the
/// RFB greeting (VNC) and then an echo of whatever they send, so a client
/// going through the console proxy sees bytes both ways.
async fn fake_console(kind: ConsoleKind) -> anyhow::Result<(ConsoleEndpoint, tokio::task::AbortHandle)> {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut rd, mut wr) = conn.into_split();
                if kind == ConsoleKind::Vnc && wr.write_all(FAKE_RFB_GREETING).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
            });
        }
    });
    Ok((ConsoleEndpoint::Tcp { host: "127.0.0.1".into(), port }, task.abort_handle()))
}

impl FakeDriver {
    /// A fake host; with a state file, the guests recorded there are back.
    pub fn new(opts: FakeOptions) -> anyhow::Result<FakeDriver> {
        let guests = match &opts.state_file {
            Some(p) if p.exists() => serde_json::from_slice(&std::fs::read(p)?)?,
            _ => BTreeMap::new(),
        };
        Ok(FakeDriver { opts: Mutex::new(opts), guests: Mutex::new(guests), consoles: Mutex::new(BTreeMap::new()) })
    }

    /// Change failure injection at run time (tests).
    pub fn set_fail_spawn(&self, fail: bool) {
        if let Ok(mut o) = self.opts.lock() {
            o.fail_spawn = fail;
        }
    }

    /// Make every interface hot-plug fail, or succeed again (tests).
    pub fn set_fail_attach_interface(&self, fail: bool) {
        if let Ok(mut o) = self.opts.lock() {
            o.fail_attach_interface = fail;
        }
    }

    /// The interfaces a guest has plugged in (empty when there is no such guest).
    pub fn interfaces(&self, uuid: &str) -> Vec<GuestInterface> {
        self.guests.lock().ok().and_then(|g| g.get(uuid).map(|g| g.interfaces.clone())).unwrap_or_default()
    }

    /// The volumes a guest has connected (empty when there is no such guest).
    pub fn volumes(&self, uuid: &str) -> Vec<GuestVolume> {
        self.guests.lock().ok().and_then(|g| g.get(uuid).map(|g| g.volumes.clone())).unwrap_or_default()
    }

    fn opts(&self) -> FakeOptions {
        self.opts.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn save(&self, guests: &BTreeMap<String, FakeGuest>) -> anyhow::Result<()> {
        if let Some(path) = self.opts().state_file {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(guests)?)?;
            std::fs::rename(tmp, path)?;
        }
        Ok(())
    }

    /// Change one guest and record the change.
    fn with_guest<T>(&self, uuid: &str, f: impl FnOnce(&mut FakeGuest) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut guests = self.guests.lock().map_err(|_| anyhow::anyhow!("fake driver poisoned"))?;
        let g = guests.get_mut(uuid).ok_or_else(|| NoSuchGuest(uuid.to_string()))?;
        let out = f(g)?;
        self.save(&guests)?;
        Ok(out)
    }

    fn set_power(&self, uuid: &str, from: &[PowerState], to: PowerState, line: &str) -> anyhow::Result<()> {
        self.with_guest(uuid, |g| {
            if g.power == to {
                return Ok(());
            }
            if !from.is_empty() && !from.contains(&g.power) {
                anyhow::bail!("guest {uuid} is {:?}, cannot become {to:?}", g.power);
            }
            g.power = to;
            g.console.push(format!("[{}] {line}", chrono::Utc::now().format("%H:%M:%S")));
            Ok(())
        })
    }
}

fn stamp() -> String {
    chrono::Utc::now().format("%H:%M:%S").to_string()
}

#[async_trait::async_trait]
impl Driver for FakeDriver {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn capacity(&self) -> anyhow::Result<HostCapacity> {
        let o = self.opts();
        Ok(HostCapacity {
            vcpus: o.vcpus,
            memory_mb: o.memory_mb,
            disk_gb: o.disk_gb,
            cpu_info: serde_json::json!({"arch": "x86_64", "model": "fake", "vendor": "stratus",
                "topology": {"cores": o.vcpus, "threads": 1, "sockets": 1}, "features": []}),
            traits: vec![
                "COMPUTE_NET_ATTACH_INTERFACE".into(),
                "COMPUTE_VOLUME_ATTACH_WITH_TAG".into(),
                "COMPUTE_IMAGE_TYPE_RAW".into(),
                "COMPUTE_IMAGE_TYPE_QCOW2".into(),
                "HW_CPU_X86_SSE2".into(),
            ],
            hypervisor_type: "fake".into(),
            hypervisor_version: 1000,
            host_ip: "127.0.0.1".into(),
        })
    }

    async fn list(&self) -> anyhow::Result<Vec<GuestInfo>> {
        let guests = self.guests.lock().map_err(|_| anyhow::anyhow!("fake driver poisoned"))?;
        Ok(guests
            .values()
            .map(|g| GuestInfo {
                uuid: g.spec.uuid.clone(),
                power_state: g.power,
                vcpus: g.spec.vcpus,
                memory_mb: g.spec.memory_mb,
                root_gb: g.spec.root_gb,
            })
            .collect())
    }

    async fn spawn(&self, spec: &GuestSpec) -> anyhow::Result<()> {
        let o = self.opts();
        if self.guests.lock().map_err(|_| anyhow::anyhow!("fake driver poisoned"))?.contains_key(&spec.uuid) {
            return Ok(());
        }
        if !o.boot_delay.is_zero() {
            tokio::time::sleep(o.boot_delay).await;
        }
        if o.fail_spawn || o.fail_spawn_named.as_deref().is_some_and(|n| spec.name.contains(n)) {
            anyhow::bail!("fake hypervisor: injected spawn failure for {}", spec.uuid);
        }
        let t = stamp();
        let console = vec![
            format!("[{t}] fake BIOS: booting {}", spec.name),
            format!("[{t}] Linux version 6.1.0-fake"),
            format!("[{t}] {} login:", spec.hostname),
        ];
        let mut guests = self.guests.lock().map_err(|_| anyhow::anyhow!("fake driver poisoned"))?;
        guests.entry(spec.uuid.clone()).or_insert(FakeGuest {
            spec: spec.clone(),
            power: PowerState::Running,
            console,
            interfaces: Vec::new(),
            volumes: Vec::new(),
        });
        self.save(&guests)
    }

    async fn destroy(&self, uuid: &str) -> anyhow::Result<()> {
        let mut guests = self.guests.lock().map_err(|_| anyhow::anyhow!("fake driver poisoned"))?;
        if guests.remove(uuid).is_some() {
            self.save(&guests)?;
        }
        if let Ok(mut c) = self.consoles.lock() {
            c.retain(|(u, _), (_, task)| {
                if u == uuid {
                    task.abort();
                }
                u != uuid
            });
        }
        Ok(())
    }

    async fn power_off(&self, uuid: &str) -> anyhow::Result<()> {
        self.set_power(uuid, &[], PowerState::Shutdown, "reboot: Power down")
    }

    async fn power_on(&self, uuid: &str) -> anyhow::Result<()> {
        self.set_power(uuid, &[PowerState::Shutdown, PowerState::Crashed], PowerState::Running, "fake BIOS: power on")
    }

    async fn reboot(&self, uuid: &str, hard: bool) -> anyhow::Result<()> {
        self.with_guest(uuid, |g| {
            if !hard && g.power != PowerState::Running {
                anyhow::bail!("guest {uuid} is not running: a soft reboot needs a running guest");
            }
            g.power = PowerState::Running;
            g.console.push(format!("[{}] reboot: Restarting system ({})", stamp(), if hard { "hard" } else { "soft" }));
            Ok(())
        })
    }

    async fn pause(&self, uuid: &str) -> anyhow::Result<()> {
        self.set_power(uuid, &[PowerState::Running], PowerState::Paused, "paused")
    }

    async fn unpause(&self, uuid: &str) -> anyhow::Result<()> {
        self.set_power(uuid, &[PowerState::Paused], PowerState::Running, "unpaused")
    }

    async fn suspend(&self, uuid: &str) -> anyhow::Result<()> {
        self.set_power(uuid, &[PowerState::Running, PowerState::Paused], PowerState::Suspended, "PM: suspend entry")
    }

    async fn resume(&self, uuid: &str) -> anyhow::Result<()> {
        self.set_power(uuid, &[PowerState::Suspended], PowerState::Running, "PM: resume")
    }

    async fn resize(&self, uuid: &str, spec: &GuestSpec) -> anyhow::Result<()> {
        self.with_guest(uuid, |g| {
            g.spec.vcpus = spec.vcpus;
            g.spec.memory_mb = spec.memory_mb;
            g.spec.root_gb = spec.root_gb;
            g.spec.ephemeral_gb = spec.ephemeral_gb;
            g.power = PowerState::Shutdown;
            g.console.push(format!("[{}] resized to {} vCPU / {} MB", stamp(), spec.vcpus, spec.memory_mb));
            Ok(())
        })
    }

    async fn console_output(&self, uuid: &str, lines: Option<usize>) -> anyhow::Result<String> {
        self.with_guest(uuid, |g| {
            let skip = lines.map(|n| g.console.len().saturating_sub(n)).unwrap_or(0);
            let mut out = g.console[skip..].join("\n");
            out.push('\n');
            Ok(out)
        })
    }

    async fn console_endpoint(&self, uuid: &str, kind: ConsoleKind) -> anyhow::Result<ConsoleEndpoint> {
        let power = self.with_guest(uuid, |g| Ok(g.power))?;
        if !matches!(power, PowerState::Running | PowerState::Paused) {
            return Err(GuestNotRunning(uuid.to_string()).into());
        }
        let key = (uuid.to_string(), kind);
        if let Some((ep, _)) = self.consoles.lock().map_err(|_| anyhow::anyhow!("fake driver poisoned"))?.get(&key) {
            return Ok(ep.clone());
        }
        let (ep, task) = fake_console(kind).await?;
        let mut consoles = self.consoles.lock().map_err(|_| anyhow::anyhow!("fake driver poisoned"))?;
        // another request may have opened it meanwhile: keep the first
        if let Some((first, _)) = consoles.get(&key) {
            task.abort();
            return Ok(first.clone());
        }
        consoles.insert(key, (ep.clone(), task));
        Ok(ep)
    }

    async fn snapshot(&self, uuid: &str, dest: &Path) -> anyhow::Result<String> {
        let size = self.with_guest(uuid, |g| Ok(g.spec.root_gb))?;
        // a small raw disk stands for the guest's root disk
        let mut data = format!("stratus fake disk of {uuid} ({size} GB)\n").into_bytes();
        data.resize(64 * 1024, 0);
        tokio::fs::write(dest, data).await?;
        Ok("raw".into())
    }

    async fn attach_interface(&self, uuid: &str, iface: &GuestInterface) -> anyhow::Result<()> {
        if self.opts().fail_attach_interface {
            anyhow::bail!("fake hypervisor: injected failure plugging port {} into {uuid}", iface.port_id);
        }
        self.with_guest(uuid, |g| {
            if !g.interfaces.iter().any(|i| i.port_id == iface.port_id) {
                g.interfaces.push(iface.clone());
                g.console.push(format!("[{}] virtio_net: new device {}", stamp(), iface.mac_address));
            }
            Ok(())
        })
    }

    async fn detach_interface(&self, uuid: &str, port_id: &str) -> anyhow::Result<()> {
        self.with_guest(uuid, |g| {
            if let Some(pos) = g.interfaces.iter().position(|i| i.port_id == port_id) {
                let gone = g.interfaces.remove(pos);
                g.console.push(format!("[{}] virtio_net: device {} removed", stamp(), gone.mac_address));
            }
            Ok(())
        })
    }

    async fn attach_volume(&self, uuid: &str, volume: &GuestVolume) -> anyhow::Result<()> {
        self.with_guest(uuid, |g| {
            if !g.volumes.iter().any(|v| v.volume_id == volume.volume_id) {
                g.volumes.push(volume.clone());
                g.console.push(format!("[{}] virtio_blk: new disk {}", stamp(), volume.device_name));
            }
            Ok(())
        })
    }

    async fn detach_volume(&self, uuid: &str, volume_id: &str) -> anyhow::Result<()> {
        let r = self.with_guest(uuid, |g| {
            if let Some(pos) = g.volumes.iter().position(|v| v.volume_id == volume_id) {
                let gone = g.volumes.remove(pos);
                g.console.push(format!("[{}] virtio_blk: disk {} removed", stamp(), gone.device_name));
            }
            Ok(())
        });
        // a guest that is gone has no volume any more
        match r {
            Err(e) if e.downcast_ref::<NoSuchGuest>().is_some() => Ok(()),
            other => other,
        }
    }
}
