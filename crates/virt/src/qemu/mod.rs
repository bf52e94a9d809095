//! The QEMU driver: one QEMU process per guest, started daemonized with a
//! pidfile and a QMP socket in the guest's directory, so a restarted compute
//! host finds its guests again; controlled over QMP.

pub mod configdrive;
mod console;
mod down;
mod host;
mod probe;
pub mod qmp;

pub use configdrive::tap_name;
pub use down::FoundGuest;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::{
    ConsoleEndpoint, ConsoleKind, Driver, GuestInfo, GuestInterface, GuestSpec, GuestVolume, HostCapacity, NoSuchGuest,
    PowerState,
};
use qmp::{Qmp, QmpError};

/// Which accelerator guests run under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM when `/dev/kvm` exists and a probe guest runs under it; TCG otherwise.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// How a QEMU host runs its guests.
#[derive(Clone, Debug)]
pub struct QemuOptions {
    /// `qemu-system-x86_64`, or a path.
    pub binary: String,
    /// One directory per guest lives here.
    pub instances_dir: PathBuf,
    pub accel: Accel,
    /// The bridge guests' tap devices join (created when missing).
    pub bridge: String,
    /// How long an ACPI shutdown may take before the guest is stopped hard.
    pub shutdown_timeout: Duration,
    /// A kernel and initramfs the KVM probe boots (the tiny guest); without
    /// one, `Auto` means TCG.
    pub probe_kernel: Option<(PathBuf, PathBuf)>,
    /// The address this host is reached at.
    pub host_ip: String,
}

/// What the driver keeps of a guest in its directory (`guest.json`): enough
/// to start its QEMU again with the same devices.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct GuestState {
    spec: GuestSpec,
    /// Interfaces plugged in (boot ones and hot-plugged), in order.
    interfaces: Vec<GuestInterface>,
    /// Volumes connected, in order.
    volumes: Vec<GuestVolume>,
    /// The guest has a root disk (`disk.qcow2`); boot-from-volume guests do not.
    root_disk: bool,
    /// The guest has a display, a VNC server and its serial port on a
    /// socket (`console.rs`); guests made before consoles existed do not.
    #[serde(default)]
    consoles: bool,
}

/// The accelerator in use and why it was chosen.
#[derive(Clone, Debug)]
pub struct AccelChoice {
    pub accel: Accel,
    pub reason: String,
}

/// The QEMU hypervisor driver.
pub struct QemuDriver {
    opts: QemuOptions,
    accel: tokio::sync::OnceCell<AccelChoice>,
    /// One lock per guest: QMP serves one client, and operations on one guest do not interleave.
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

const STATE: &str = "guest.json";
const PIDFILE: &str = "qemu.pid";
const QMP_SOCKET: &str = "qmp.sock";
const CONSOLE: &str = "console.log";
const ROOT_DISK: &str = "disk.qcow2";
const CONFIG_DRIVE: &str = "config.iso";
const SAVED: &str = "saved.state";
const QEMU_LOG: &str = "qemu.log";
/// The command line of the kernel when the image gives none.
const DEFAULT_CMDLINE: &str = "console=ttyS0";
/// How often the ACPI power button is pressed while a guest shuts down.
const ACPI_RETRY: Duration = Duration::from_secs(2);
/// How long a guest may take to release a hot-unplugged device, and how
/// often it is asked again meanwhile. A guest still booting under TCG on a
/// busy host (two Tempest workers) can take over a minute to reach ACPI;
/// Tempest waits 120 s for a detach, Nova's libvirt driver up to 160 s.
const UNPLUG_TIMEOUT: Duration = Duration::from_secs(110);
const UNPLUG_RETRY: Duration = Duration::from_secs(3);
/// TCG's translation cache per guest in MiB (QEMU's default is 1 GiB).
const TCG_TB_SIZE_MB: u32 = 64;
/// The console output answered at most (its tail).
const CONSOLE_MAX_BYTES: u64 = 1 << 20;

/// A QEMU id for a device or block node of a volume (letters first, at most 31 characters).
fn volume_node(volume_id: &str) -> String {
    format!("vol{}", volume_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(24).collect::<String>())
}

fn nic_id(port_id: &str) -> String {
    format!("nic{}", port_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(24).collect::<String>())
}

fn netdev_id(port_id: &str) -> String {
    format!("net{}", port_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(24).collect::<String>())
}

/// Run a command; its stdout, or an error with its stderr.
async fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The process is there and not a zombie, and is the QEMU of `uuid` (not a reused pid).
fn qemu_alive(pid: i32, uuid: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // the state follows the command name in parentheses
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).unwrap_or("Z");
    if state == "Z" || state == "X" {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(&format!("guest={uuid}")))
        .unwrap_or(false)
}

/// The disk's virtual size in bytes.
async fn virtual_size(path: &Path) -> anyhow::Result<u64> {
    let out = run("qemu-img", &["info", "-U", "--output=json", &path.to_string_lossy()]).await?;
    let v: Value = serde_json::from_str(&out)?;
    v["virtual-size"].as_u64().ok_or_else(|| anyhow!("qemu-img info gave no virtual-size for {}", path.display()))
}

impl QemuDriver {
    /// A QEMU host; the accelerator is probed at first use.
    pub fn new(opts: QemuOptions) -> anyhow::Result<QemuDriver> {
        std::fs::create_dir_all(&opts.instances_dir)
            .with_context(|| format!("instances directory {}", opts.instances_dir.display()))?;
        Ok(QemuDriver { opts, accel: tokio::sync::OnceCell::new(), locks: Default::default() })
    }

    fn dir(&self, uuid: &str) -> PathBuf {
        self.opts.instances_dir.join(uuid)
    }

    fn lock(&self, uuid: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(uuid.to_string()).or_default().clone()
    }

    /// The accelerator guests run under (probed once).
    pub async fn accel(&self) -> AccelChoice {
        self.accel.get_or_init(|| probe::choose(&self.opts)).await.clone()
    }

    fn load(&self, uuid: &str) -> anyhow::Result<GuestState> {
        let p = self.dir(uuid).join(STATE);
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(NoSuchGuest(uuid.to_string()).into()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        };
        serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", p.display()))
    }

    fn save(&self, st: &GuestState) -> anyhow::Result<()> {
        let dir = self.dir(&st.spec.uuid);
        let tmp = dir.join(format!("{STATE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(st)?)?;
        std::fs::rename(&tmp, dir.join(STATE))?;
        Ok(())
    }

    /// The QEMU process of a guest, when it runs.
    fn pid(&self, uuid: &str) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir(uuid).join(PIDFILE)).ok()?.trim().parse().ok()?;
        qemu_alive(pid, uuid).then_some(pid)
    }

    /// The guest's QMP socket: in its directory, unless that path is too
    /// long for a unix socket (108 bytes); then in a directory under the
    /// system's temporary directory named by a hash of the instances
    /// directory, so a restarted host finds it again.
    fn qmp_socket(&self, uuid: &str) -> PathBuf {
        let natural = self.dir(uuid).join(QMP_SOCKET);
        if natural.as_os_str().len() < 100 {
            return natural;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
        for b in self.opts.instances_dir.as_os_str().as_encoded_bytes() {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        std::env::temp_dir().join(format!("stratus-qmp-{h:016x}")).join(format!("{uuid}.sock"))
    }

    async fn qmp(&self, uuid: &str) -> anyhow::Result<Qmp> {
        Qmp::connect(&self.qmp_socket(uuid)).await
    }

    /// The guest exists and its QEMU runs (what pause, unpause and suspend need).
    fn running(&self, uuid: &str) -> anyhow::Result<()> {
        self.load(uuid)?;
        if self.pid(uuid).is_none() {
            bail!("guest {uuid} is not running");
        }
        Ok(())
    }

    /// Wait until the guest's QEMU (process `pid`) is gone; false when it
    /// still runs after `timeout`. The process, not the pidfile: QEMU removes
    /// its pidfile early on its way out, and tears down its devices after.
    async fn wait_gone(&self, uuid: &str, pid: i32, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if !qemu_alive(pid, uuid) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop the guest's QEMU at once (QMP `quit`, then SIGKILL).
    async fn kill(&self, uuid: &str) -> anyhow::Result<()> {
        let Some(pid) = self.pid(uuid) else { return Ok(()) };
        self.kill_pid(uuid, pid).await
    }

    async fn kill_pid(&self, uuid: &str, pid: i32) -> anyhow::Result<()> {
        if !qemu_alive(pid, uuid) {
            return Ok(());
        }
        if let Ok(mut q) = self.qmp(uuid).await {
            let _ = q.execute("quit", None).await;
        }
        if self.wait_gone(uuid, pid, Duration::from_secs(5)).await {
            return Ok(());
        }
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        if !self.wait_gone(uuid, pid, Duration::from_secs(5)).await {
            bail!("the QEMU of guest {uuid} (pid {pid}) does not go away");
        }
        Ok(())
    }

    /// ACPI power button, then a hard stop when the guest has not powered
    /// off within the timeout. The button is pressed again every
    /// [`ACPI_RETRY`] (as Nova does): a guest still booting misses a press.
    async fn shutdown(&self, uuid: &str) -> anyhow::Result<()> {
        let Some(pid) = self.pid(uuid) else { return Ok(()) };
        let deadline = tokio::time::Instant::now() + self.opts.shutdown_timeout;
        let mut pressed = false;
        loop {
            let running = match self.qmp(uuid).await {
                Ok(mut q) => match q.status().await {
                    Ok(s) if s == "running" => q.execute("system_powerdown", None).await.is_ok(),
                    _ => false,
                },
                Err(_) => false,
            };
            pressed |= running;
            if !running {
                break;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.wait_gone(uuid, pid, left.min(ACPI_RETRY)).await {
                tracing::info!(instance = %uuid, "guest powered off (ACPI)");
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        if !qemu_alive(pid, uuid) {
            return Ok(());
        }
        if pressed {
            tracing::warn!(instance = %uuid, timeout = ?self.opts.shutdown_timeout, "guest ignored the ACPI power button: stopping it hard");
        }
        self.kill_pid(uuid, pid).await
    }

    /// The bridge a port's tap joins: the configured one, or (empty) its
    /// network's, as the network agent names it (`brq` + the network id's
    /// first 11 characters: the port's `binding:vif_details.bridge_name`).
    fn bridge_of(&self, iface: &GuestInterface) -> String {
        if self.opts.bridge.is_empty() {
            format!("brq{}", iface.network_id.chars().take(11).collect::<String>())
        } else {
            self.opts.bridge.clone()
        }
    }

    async fn ensure_bridge(&self, br: &str) -> anyhow::Result<()> {
        // another host process may make it at the same moment: that is fine
        if !Path::new("/sys/class/net").join(br).exists()
            && let Err(e) = run("ip", &["link", "add", "name", br, "type", "bridge"]).await
            && !Path::new("/sys/class/net").join(br).exists()
        {
            return Err(e);
        }
        run("ip", &["link", "set", br, "up"]).await?;
        Ok(())
    }

    /// The tap of a port, on the bridge, up (made when missing).
    async fn plug_tap(&self, iface: &GuestInterface) -> anyhow::Result<String> {
        let tap = tap_name(&iface.port_id);
        let br = self.bridge_of(iface);
        self.ensure_bridge(&br).await?;
        if !Path::new("/sys/class/net").join(&tap).exists() {
            run("ip", &["tuntap", "add", "dev", &tap, "mode", "tap"]).await?;
        }
        let mtu = iface.mtu.map(|m| m.to_string());
        let mut args = vec!["link", "set", &tap, "master", &br];
        if let Some(m) = &mtu {
            args.extend(["mtu", m.as_str()]);
        }
        args.push("up");
        run("ip", &args).await?;
        Ok(tap)
    }

    async fn unplug_tap(&self, port_id: &str) -> anyhow::Result<()> {
        let tap = tap_name(port_id);
        if Path::new("/sys/class/net").join(&tap).exists() {
            run("ip", &["link", "del", "dev", &tap]).await?;
        }
        Ok(())
    }

    fn volume_args(v: &GuestVolume) -> anyhow::Result<(Value, Value)> {
        // Cinder's attachments API gives the fields flat; the legacy
        // initialize_connection nests them under `data`
        let data = v.connection_info.get("data").filter(|d| d.is_object()).unwrap_or(&v.connection_info);
        let path = data["device_path"]
            .as_str()
            .ok_or_else(|| anyhow!("volume {}: connection info has no device_path", v.volume_id))?;
        let format = data["format"].as_str().unwrap_or("raw");
        if !matches!(format, "raw" | "qcow2") {
            bail!("volume {}: format {format} is not supported", v.volume_id);
        }
        let node = volume_node(&v.volume_id);
        let read_only = data["access_mode"].as_str() == Some("ro");
        let blockdev = json!({
            "driver": format, "node-name": node, "read-only": read_only,
            "file": {"driver": "file", "filename": path, "read-only": read_only},
        });
        let serial: String = v.volume_id.chars().take(20).collect();
        let device = json!({"driver": "virtio-blk-pci", "drive": node, "id": node, "serial": serial});
        Ok((blockdev, device))
    }

    /// QEMU's command line for a guest.
    fn command_line(&self, st: &GuestState, accel: Accel, incoming: Option<&Path>) -> anyhow::Result<Vec<String>> {
        let s = &st.spec;
        let dir = self.dir(&s.uuid);
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|x| x.to_string()));
        push(&["-name", &format!("guest={},debug-threads=off", s.uuid)]);
        push(&["-uuid", &s.uuid]);
        push(&["-machine", "pc"]);
        if accel == Accel::Kvm {
            push(&["-accel", "kvm"]);
        } else {
            push(&["-accel", &format!("tcg,tb-size={TCG_TB_SIZE_MB}")]);
        }
        push(&["-cpu", if accel == Accel::Kvm { "host" } else { "max" }]);
        push(&["-m", &s.memory_mb.max(64).to_string(), "-smp", &s.vcpus.max(1).to_string()]);
        push(&["-nodefaults", "-no-user-config", "-display", "none"]);
        if let Some(k) = &s.kernel_path {
            push(&["-kernel", &k.to_string_lossy()]);
            if let Some(r) = &s.ramdisk_path {
                push(&["-initrd", &r.to_string_lossy()]);
            }
            let cmdline = s.image_properties.get("os_command_line").and_then(Value::as_str).unwrap_or(DEFAULT_CMDLINE);
            push(&["-append", cmdline]);
        }
        if st.root_disk {
            push(&["-drive", &format!("file={},format=qcow2,if=none,id=root,cache=writeback", p(ROOT_DISK))]);
            push(&["-device", "virtio-blk-pci,drive=root,id=rootdisk,bootindex=1"]);
        }
        push(&["-drive", &format!("file={},format=raw,if=none,id=config,media=cdrom,readonly=on", p(CONFIG_DRIVE))]);
        push(&["-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-cd,bus=scsi0.0,drive=config"]);
        for i in &st.interfaces {
            let tap = tap_name(&i.port_id);
            push(&["-netdev", &format!("tap,id={},ifname={tap},script=no,downscript=no", netdev_id(&i.port_id))]);
            push(&[
                "-device",
                &format!(
                    "virtio-net-pci,netdev={},mac={},id={}",
                    netdev_id(&i.port_id),
                    i.mac_address,
                    nic_id(&i.port_id)
                ),
            ]);
        }
        for v in &st.volumes {
            let (blockdev, device) = Self::volume_args(v)?;
            push(&["-blockdev", &blockdev.to_string()]);
            push(&["-device", &device.to_string()]);
        }
        if st.consoles {
            a.extend(self.console_args(&s.uuid, &dir.join(CONSOLE)));
        } else {
            a.extend(["-chardev".into(), format!("file,id=serial0,path={},append=on", p(CONSOLE))]);
            a.extend(["-serial".into(), "chardev:serial0".into()]);
        }
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|x| x.to_string()));
        push(&["-qmp", &format!("unix:{},server=on,wait=off", self.qmp_socket(&s.uuid).to_string_lossy())]);
        push(&["-pidfile", &p(PIDFILE), "-daemonize"]);
        if let Some(state) = incoming {
            push(&["-incoming", &format!("exec:cat '{}'", state.to_string_lossy().replace('\'', ""))]);
        }
        Ok(a)
    }

    /// Start the guest's QEMU (with its saved state when there is one).
    async fn launch(&self, st: &GuestState) -> anyhow::Result<()> {
        let uuid = &st.spec.uuid;
        if self.pid(uuid).is_some() {
            return Ok(());
        }
        let dir = self.dir(uuid);
        for i in &st.interfaces {
            self.plug_tap(i).await?;
        }
        let socket = self.qmp_socket(uuid);
        if let Some(parent) = socket.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(dir.join(PIDFILE));
        let saved = dir.join(SAVED);
        let incoming = saved.exists().then_some(saved.as_path());
        let accel = self.accel().await.accel;
        let args = self.command_line(st, accel, incoming)?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(QEMU_LOG))?;
        // -daemonize: the first process exits once the guest is set up (its
        // status tells whether that worked); the guest's QEMU lives on, so a
        // restarted compute host finds it by its pidfile
        let status = Command::new(&self.opts.binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .status()
            .await
            .with_context(|| format!("cannot run {}", self.opts.binary))?;
        if !status.success() {
            let log = std::fs::read_to_string(dir.join(QEMU_LOG)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
            bail!("QEMU for guest {uuid} failed to start ({status}): {}", tail.join(" / "));
        }
        if incoming.is_some() {
            // the saved state loads, then the guest runs on by itself
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let status = self.qmp(uuid).await?.status().await?;
                if status == "running" {
                    break;
                }
                if !matches!(status.as_str(), "inmigrate" | "prelaunch" | "paused" | "restore-vm" | "postmigrate") {
                    bail!("guest {uuid} did not resume from its saved state (status {status})");
                }
                if status == "paused" || status == "postmigrate" {
                    self.qmp(uuid).await?.execute("cont", None).await?;
                }
                if tokio::time::Instant::now() >= deadline {
                    bail!("guest {uuid} still loading its saved state after 60 s");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = std::fs::remove_file(&saved);
        }
        tracing::info!(instance = %uuid, accel = ?accel, "guest started");
        Ok(())
    }

    async fn power_state(&self, uuid: &str) -> PowerState {
        if self.pid(uuid).is_none() {
            return if self.dir(uuid).join(SAVED).exists() { PowerState::Suspended } else { PowerState::Shutdown };
        }
        let status = match self.qmp(uuid).await {
            Ok(mut q) => q.status().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        match status.as_str() {
            "running" | "inmigrate" | "prelaunch" | "restore-vm" | "finish-migrate" | "postmigrate" | "save-vm" => {
                PowerState::Running
            }
            "paused" | "suspended" => PowerState::Paused,
            "shutdown" => PowerState::Shutdown,
            "guest-panicked" | "internal-error" | "io-error" => PowerState::Crashed,
            // QMP busy with another client (one at a time): it runs
            _ => PowerState::Running,
        }
    }

    /// Make the guest's root disk: a qcow2 overlay on the cached image, at least `root_gb` big.
    async fn make_root_disk(&self, spec: &GuestSpec, dest: &Path) -> anyhow::Result<bool> {
        let Some(image) = &spec.image_path else { return Ok(false) };
        let format = spec.image_format.as_deref().unwrap_or("raw");
        let backing_format = match format {
            "raw" | "qcow2" | "vmdk" | "vdi" | "vhd" | "vhdx" => format,
            "ami" | "iso" => "raw",
            other => bail!("image format {other} cannot back a guest's disk"),
        };
        let want = (spec.root_gb.max(0) as u64) << 30;
        let size = virtual_size(image).await?.max(want);
        let image = image.to_string_lossy();
        let dest_s = dest.to_string_lossy();
        run(
            "qemu-img",
            &["create", "-q", "-f", "qcow2", "-b", &image, "-F", backing_format, &dest_s, &size.to_string()],
        )
        .await?;
        Ok(true)
    }

    async fn spawn_locked(&self, spec: &GuestSpec) -> anyhow::Result<()> {
        let dir = self.dir(&spec.uuid);
        if dir.join(STATE).exists() {
            let st = self.load(&spec.uuid)?;
            return self.launch(&st).await;
        }
        std::fs::create_dir_all(&dir)?;
        let made: anyhow::Result<GuestState> = async {
            let root_disk = self.make_root_disk(spec, &dir.join(ROOT_DISK)).await?;
            configdrive::build(spec, &dir.join(CONFIG_DRIVE)).await?;
            std::fs::write(dir.join(CONSOLE), b"")?;
            Ok(GuestState {
                spec: spec.clone(),
                interfaces: spec.interfaces.clone(),
                volumes: vec![],
                root_disk,
                consoles: true,
            })
        }
        .await;
        let st = match made {
            Ok(st) => st,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        self.save(&st)?;
        if let Err(e) = self.launch(&st).await {
            self.destroy_locked(&spec.uuid).await.ok();
            return Err(e);
        }
        Ok(())
    }

    async fn destroy_locked(&self, uuid: &str) -> anyhow::Result<()> {
        let dir = self.dir(uuid);
        if !dir.exists() {
            return Ok(());
        }
        self.kill(uuid).await?;
        let interfaces = self.load(uuid).map(|s| s.interfaces).unwrap_or_default();
        for i in &interfaces {
            self.unplug_tap(&i.port_id).await?;
        }
        let _ = std::fs::remove_file(self.qmp_socket(uuid));
        self.remove_console_sockets(uuid);
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        tracing::info!(instance = %uuid, "guest destroyed");
        Ok(())
    }

    /// Unplug a device from a running guest: `device_del`, then wait until
    /// the guest let it go (ACPI hot-unplug needs the guest's consent). The
    /// request is repeated every [`UNPLUG_RETRY`]: a guest still booting
    /// misses it, as it misses the power button.
    async fn unplug_device(&self, uuid: &str, id: &str) -> anyhow::Result<Qmp> {
        let mut q = self.qmp(uuid).await?;
        let deadline = tokio::time::Instant::now() + UNPLUG_TIMEOUT;
        loop {
            match q.execute("device_del", Some(json!({"id": id}))).await {
                Ok(_) => {}
                Err(e) if e.downcast_ref::<QmpError>().is_some_and(|q| q.class == "DeviceNotFound") => return Ok(q),
                // "already in progress" and the like: keep waiting
                Err(e) if e.downcast_ref::<QmpError>().is_some() => {
                    tracing::debug!(instance = %uuid, device = %id, error = %e, "device_del repeated");
                }
                Err(e) => return Err(e),
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match q.wait_event("DEVICE_DELETED", |d| d["device"] == id, left.min(UNPLUG_RETRY)).await {
                Ok(_) => return Ok(q),
                Err(_) if !left.is_zero() && left > UNPLUG_RETRY => continue,
                Err(e) => return Err(e).with_context(|| format!("guest {uuid} did not release device {id}")),
            }
        }
    }
}

#[async_trait::async_trait]
impl Driver for QemuDriver {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn needs_images(&self) -> bool {
        true
    }

    async fn capacity(&self) -> anyhow::Result<HostCapacity> {
        let choice = self.accel().await;
        let host = host::resources(&self.opts.instances_dir)?;
        let version = host::qemu_version(&self.opts.binary).await.unwrap_or(0);
        let accel = if choice.accel == Accel::Kvm { "kvm" } else { "tcg" };
        Ok(HostCapacity {
            vcpus: host.cpus,
            memory_mb: host.memory_mb,
            disk_gb: host.disk_gb,
            cpu_info: json!({
                "arch": "x86_64", "model": host.cpu_model, "vendor": host.cpu_vendor,
                "topology": {"cores": host.cpus, "threads": 1, "sockets": 1},
                "features": [], "accel": accel, "accel_reason": choice.reason,
            }),
            traits: vec![
                "COMPUTE_NET_ATTACH_INTERFACE".into(),
                "COMPUTE_VOLUME_ATTACH_WITH_TAG".into(),
                "COMPUTE_IMAGE_TYPE_RAW".into(),
                "COMPUTE_IMAGE_TYPE_QCOW2".into(),
                "COMPUTE_IMAGE_TYPE_AKI".into(),
                "COMPUTE_IMAGE_TYPE_ARI".into(),
                "COMPUTE_IMAGE_TYPE_AMI".into(),
                "COMPUTE_DEVICE_TAGGING".into(),
                "COMPUTE_NET_VIF_MODEL_VIRTIO".into(),
                "COMPUTE_STORAGE_BUS_VIRTIO".into(),
                "HW_CPU_X86_SSE2".into(),
            ],
            hypervisor_type: "QEMU".into(),
            hypervisor_version: version,
            host_ip: self.opts.host_ip.clone(),
        })
    }

    async fn list(&self) -> anyhow::Result<Vec<GuestInfo>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.opts.instances_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        for e in entries.flatten() {
            let uuid = e.file_name().to_string_lossy().into_owned();
            let Ok(st) = self.load(&uuid) else { continue };
            out.push(GuestInfo {
                uuid: uuid.clone(),
                power_state: self.power_state(&uuid).await,
                vcpus: st.spec.vcpus,
                memory_mb: st.spec.memory_mb,
                root_gb: st.spec.root_gb,
            });
        }
        out.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        Ok(out)
    }

    async fn spawn(&self, spec: &GuestSpec) -> anyhow::Result<()> {
        let l = self.lock(&spec.uuid);
        let _g = l.lock().await;
        self.spawn_locked(spec).await
    }

    async fn destroy(&self, uuid: &str) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        self.destroy_locked(uuid).await
    }

    async fn power_off(&self, uuid: &str) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        self.load(uuid)?;
        self.shutdown(uuid).await
    }

    async fn power_on(&self, uuid: &str) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        let st = self.load(uuid)?;
        if self.pid(uuid).is_some() {
            // paused: it runs again
            if self.qmp(uuid).await?.status().await? == "paused" {
                self.qmp(uuid).await?.execute("cont", None).await?;
            }
            return Ok(());
        }
        self.launch(&st).await
    }

    async fn reboot(&self, uuid: &str, hard: bool) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        let st = self.load(uuid)?;
        // soft: the guest shuts down (ACPI, hard after the timeout), then boots again;
        // hard: its QEMU goes at once. Either way a fresh QEMU boots it.
        if hard {
            self.kill(uuid).await?
        } else {
            self.shutdown(uuid).await?
        }
        let _ = std::fs::remove_file(self.dir(uuid).join(SAVED));
        self.launch(&st).await
    }

    async fn pause(&self, uuid: &str) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        self.running(uuid)?;
        self.qmp(uuid).await?.execute("stop", None).await?;
        Ok(())
    }

    async fn unpause(&self, uuid: &str) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        self.running(uuid)?;
        self.qmp(uuid).await?.execute("cont", None).await?;
        Ok(())
    }

    /// Nova's managed save: the guest's memory and devices go to a file and its QEMU ends.
    async fn suspend(&self, uuid: &str) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        self.running(uuid)?;
        let dir = self.dir(uuid);
        let tmp = dir.join(format!("{SAVED}.tmp"));
        let mut q = self.qmp(uuid).await?;
        q.execute("stop", None).await?;
        let uri = format!("exec:cat > '{}'", tmp.to_string_lossy().replace('\'', ""));
        let saved: anyhow::Result<()> = async {
            q.execute("migrate", Some(json!({"uri": uri}))).await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
            loop {
                let m = q.execute("query-migrate", None).await?;
                match m["status"].as_str().unwrap_or("") {
                    "completed" => break,
                    "failed" | "cancelled" => bail!("saving guest {uuid} failed: {}", m["error-desc"]),
                    _ => {}
                }
                if tokio::time::Instant::now() >= deadline {
                    bail!("saving guest {uuid} takes longer than 300 s");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let f = std::fs::File::open(&tmp)?;
            f.sync_all()?;
            std::fs::rename(&tmp, dir.join(SAVED))?;
            Ok(())
        }
        .await;
        if let Err(e) = saved {
            let _ = std::fs::remove_file(&tmp);
            let _ = q.execute("cont", None).await;
            return Err(e);
        }
        drop(q);
        self.kill(uuid).await
    }

    async fn resume(&self, uuid: &str) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        let st = self.load(uuid)?;
        if self.pid(uuid).is_some() {
            return Ok(());
        }
        if !self.dir(uuid).join(SAVED).exists() {
            bail!("guest {uuid} has no saved state to resume from");
        }
        self.launch(&st).await
    }

    async fn resize(&self, uuid: &str, spec: &GuestSpec) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        let mut st = self.load(uuid)?;
        self.shutdown(uuid).await?;
        let _ = std::fs::remove_file(self.dir(uuid).join(SAVED));
        let disk = self.dir(uuid).join(ROOT_DISK);
        if st.root_disk {
            let want = (spec.root_gb.max(0) as u64) << 30;
            if want > virtual_size(&disk).await? {
                run("qemu-img", &["resize", "-q", "-f", "qcow2", &disk.to_string_lossy(), &want.to_string()]).await?;
            }
        }
        st.spec.vcpus = spec.vcpus;
        st.spec.memory_mb = spec.memory_mb;
        st.spec.root_gb = spec.root_gb;
        st.spec.ephemeral_gb = spec.ephemeral_gb;
        st.spec.swap_mb = spec.swap_mb;
        self.save(&st)
    }

    async fn console_output(&self, uuid: &str, lines: Option<usize>) -> anyhow::Result<String> {
        self.load(uuid)?;
        let path = self.dir(uuid).join(CONSOLE);
        let mut f = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
            Err(e) => return Err(e.into()),
        };
        let len = f.metadata().await?.len();
        if len > CONSOLE_MAX_BYTES {
            use tokio::io::AsyncSeekExt;
            f.seek(std::io::SeekFrom::Start(len - CONSOLE_MAX_BYTES)).await?;
        }
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf).replace("\r\n", "\n").replace('\r', "");
        Ok(match lines {
            Some(n) => {
                let all: Vec<&str> = text.lines().collect();
                let mut out = all[all.len().saturating_sub(n)..].join("\n");
                if !out.is_empty() {
                    out.push('\n');
                }
                out
            }
            None => text,
        })
    }

    async fn console_endpoint(&self, uuid: &str, kind: ConsoleKind) -> anyhow::Result<ConsoleEndpoint> {
        self.console_endpoint_of(uuid, kind)
    }

    async fn snapshot(&self, uuid: &str, dest: &Path) -> anyhow::Result<String> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        let st = self.load(uuid)?;
        if !st.root_disk {
            bail!("guest {uuid} boots from a volume: it has no root disk to snapshot");
        }
        // a paused guest has flushed its disk: the copy is consistent
        let mut resume = false;
        if self.pid(uuid).is_some() {
            let mut q = self.qmp(uuid).await?;
            if q.status().await? == "running" {
                q.execute("stop", None).await?;
                resume = true;
            }
        }
        let disk = self.dir(uuid).join(ROOT_DISK);
        let copied =
            run("qemu-img", &["convert", "-U", "-q", "-O", "qcow2", &disk.to_string_lossy(), &dest.to_string_lossy()])
                .await;
        if resume {
            self.qmp(uuid).await?.execute("cont", None).await?;
        }
        copied?;
        Ok("qcow2".into())
    }

    async fn attach_interface(&self, uuid: &str, iface: &GuestInterface) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        let mut st = self.load(uuid)?;
        if st.interfaces.iter().any(|i| i.port_id == iface.port_id) {
            return Ok(());
        }
        let tap = self.plug_tap(iface).await?;
        if self.pid(uuid).is_some() {
            let plugged: anyhow::Result<()> = async {
                let mut q = self.qmp(uuid).await?;
                let netdev = netdev_id(&iface.port_id);
                q.execute(
                    "netdev_add",
                    Some(json!({"type": "tap", "id": netdev, "ifname": tap, "script": "no", "downscript": "no"})),
                )
                .await?;
                let dev = json!({"driver": "virtio-net-pci", "netdev": netdev, "mac": iface.mac_address, "id": nic_id(&iface.port_id)});
                if let Err(e) = q.execute("device_add", Some(dev)).await {
                    let _ = q.execute("netdev_del", Some(json!({"id": netdev}))).await;
                    return Err(e);
                }
                Ok(())
            }
            .await;
            if let Err(e) = plugged {
                let _ = self.unplug_tap(&iface.port_id).await;
                return Err(e);
            }
        }
        st.interfaces.push(iface.clone());
        self.save(&st)
    }

    async fn detach_interface(&self, uuid: &str, port_id: &str) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        let mut st = self.load(uuid)?;
        if !st.interfaces.iter().any(|i| i.port_id == port_id) {
            return Ok(());
        }
        if self.pid(uuid).is_some() {
            let mut q = self.unplug_device(uuid, &nic_id(port_id)).await?;
            let _ = q.execute("netdev_del", Some(json!({"id": netdev_id(port_id)}))).await;
        }
        self.unplug_tap(port_id).await?;
        st.interfaces.retain(|i| i.port_id != port_id);
        self.save(&st)
    }

    async fn attach_volume(&self, uuid: &str, volume: &GuestVolume) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        let mut st = self.load(uuid)?;
        if st.volumes.iter().any(|v| v.volume_id == volume.volume_id) {
            return Ok(());
        }
        let (blockdev, device) = Self::volume_args(volume)?;
        if self.pid(uuid).is_some() {
            let mut q = self.qmp(uuid).await?;
            q.execute("blockdev-add", Some(blockdev)).await?;
            if let Err(e) = q.execute("device_add", Some(device)).await {
                let _ = q.execute("blockdev-del", Some(json!({"node-name": volume_node(&volume.volume_id)}))).await;
                return Err(e);
            }
        }
        st.volumes.push(volume.clone());
        self.save(&st)
    }

    async fn detach_volume(&self, uuid: &str, volume_id: &str) -> anyhow::Result<()> {
        let l = self.lock(uuid);
        let _g = l.lock().await;
        let mut st = self.load(uuid)?;
        if !st.volumes.iter().any(|v| v.volume_id == volume_id) {
            return Ok(());
        }
        if self.pid(uuid).is_some() {
            let node = volume_node(volume_id);
            let mut q = self.unplug_device(uuid, &node).await?;
            match q.execute("blockdev-del", Some(json!({"node-name": node}))).await {
                Ok(_) => {}
                Err(e) if e.downcast_ref::<QmpError>().is_some() => {
                    tracing::debug!(instance = %uuid, volume = %volume_id, error = %e, "block node already gone");
                }
                Err(e) => return Err(e),
            }
        }
        st.volumes.retain(|v| v.volume_id != volume_id);
        self.save(&st)
    }
}
