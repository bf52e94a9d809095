//! The QEMU driver against real QEMU (TCG) and the tiny guest
//! (scripts/tiny-guest/build): every driver operation changes the real
//! guest, and destroy leaves no process, tap or file behind.
//!
//! Without qemu-system-x86_64 or a built tiny guest these tests say SKIPPING
//! loudly; with STRATUS_REQUIRE_QEMU=1 (scripts/test sets it after installing
//! both) they fail instead.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use stratus_virt::qemu::{Accel, QemuDriver, QemuOptions, tap_name};
use stratus_virt::{ConsoleEndpoint, ConsoleKind, Driver, GuestInterface, GuestSpec, GuestVolume, PowerState};

const CMDLINE: &str = "console=ttyS0 quiet mitigations=off cryptomgr.notests";

fn tiny_guest() -> Option<(PathBuf, PathBuf)> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/tiny-guest/out");
    let (k, i) = (out.join("vmlinuz"), out.join("initrd.gz"));
    let qemu = std::process::Command::new("qemu-system-x86_64").arg("--version").output().is_ok();
    if qemu && k.exists() && i.exists() {
        return Some((k, i));
    }
    let why = if qemu {
        "the tiny guest is not built (scripts/tiny-guest/build)"
    } else {
        "qemu-system-x86_64 is not installed"
    };
    if std::env::var("STRATUS_REQUIRE_QEMU").as_deref() == Ok("1") {
        panic!("STRATUS_REQUIRE_QEMU=1 but {why}");
    }
    eprintln!("!!! SKIPPING the QEMU driver test: {why}");
    None
}

struct Host {
    driver: QemuDriver,
    dir: tempfile::TempDir,
    kernel: PathBuf,
    initrd: PathBuf,
    image: PathBuf,
    bridge: String,
}

/// A failed test leaves neither guests nor its bridge behind.
impl Drop for Host {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill").arg("-9").arg("-f").arg(self.dir.path()).status();
        let _ = std::process::Command::new("ip").args(["link", "del", "dev", &self.bridge]).status();
    }
}

async fn host(bridge: &str) -> Option<Host> {
    let (kernel, initrd) = tiny_guest()?;
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("tiny.raw");
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    let driver = QemuDriver::new(QemuOptions {
        binary: "qemu-system-x86_64".into(),
        instances_dir: dir.path().join("instances"),
        accel: Accel::Tcg,
        bridge: bridge.into(),
        shutdown_timeout: Duration::from_secs(20),
        probe_kernel: None,
        host_ip: "127.0.0.1".into(),
    })
    .unwrap();
    Some(Host { driver, dir, kernel, initrd, image, bridge: bridge.to_string() })
}

fn spec(h: &Host, name: &str) -> GuestSpec {
    let mut props = serde_json::Map::new();
    props.insert("os_command_line".into(), json!(CMDLINE));
    GuestSpec {
        uuid: uuid_v4(),
        name: name.into(),
        hostname: name.into(),
        vcpus: 1,
        memory_mb: 128,
        root_gb: 1,
        image_path: Some(h.image.clone()),
        image_format: Some("raw".into()),
        kernel_path: Some(h.kernel.clone()),
        ramdisk_path: Some(h.initrd.clone()),
        image_properties: props,
        // as the compute API keeps it: base64
        user_data: Some("aGVsbG8gZnJvbSB1c2VyIGRhdGE=".into()),
        ..Default::default()
    }
}

fn uuid_v4() -> String {
    let b: Vec<u8> = std::fs::read("/proc/sys/kernel/random/uuid").unwrap();
    String::from_utf8(b).unwrap().trim().to_string()
}

/// Wait until the console has `n` lines containing `needle`.
async fn wait_console(d: &QemuDriver, uuid: &str, needle: &str, n: usize, secs: u64) -> String {
    let start = Instant::now();
    loop {
        let out = d.console_output(uuid, None).await.unwrap();
        if out.lines().filter(|l| l.contains(needle)).count() >= n {
            return out;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "no {n}x {needle:?} on the console within {secs}s:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn power(d: &QemuDriver, uuid: &str) -> PowerState {
    d.list().await.unwrap().into_iter().find(|g| g.uuid == uuid).map(|g| g.power_state).unwrap()
}

fn qemu_processes(uuid: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&format!("guest={uuid}")))
                .unwrap_or(false)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_of_a_real_guest() {
    let Some(h) = host("br-stratus-t1").await else { return };
    let d = &h.driver;
    let s = spec(&h, "tiny-life");
    let id = s.uuid.clone();
    d.spawn(&s).await.unwrap();
    // spawning again is a no-op
    d.spawn(&s).await.unwrap();
    wait_console(d, &id, &format!("STRATUS-GUEST-READY uuid={id} name=tiny-life"), 1, 60).await;
    let out = wait_console(d, &id, "STRATUS-USER-DATA-END", 1, 10).await;
    assert!(
        out.contains("STRATUS-USER-DATA-BEGIN\nhello from user data\nSTRATUS-USER-DATA-END"),
        "user data echoed:\n{out}"
    );
    assert_eq!(qemu_processes(&id), 1);
    assert_eq!(power(d, &id).await, PowerState::Running);
    assert_eq!(d.console_output(&id, Some(1)).await.unwrap().lines().count(), 1);

    d.pause(&id).await.unwrap();
    assert_eq!(power(d, &id).await, PowerState::Paused);
    d.unpause(&id).await.unwrap();
    assert_eq!(power(d, &id).await, PowerState::Running);

    // suspend: state saved to disk, no process; resume: the same boot goes on
    d.suspend(&id).await.unwrap();
    assert_eq!(power(d, &id).await, PowerState::Suspended);
    assert_eq!(qemu_processes(&id), 0);
    d.resume(&id).await.unwrap();
    assert_eq!(power(d, &id).await, PowerState::Running);
    assert_eq!(qemu_processes(&id), 1);

    // ACPI power off: the guest says so and its QEMU ends
    d.power_off(&id).await.unwrap();
    wait_console(d, &id, "STRATUS-GUEST-POWEROFF", 1, 5).await;
    assert_eq!(power(d, &id).await, PowerState::Shutdown);
    assert_eq!(qemu_processes(&id), 0);
    d.power_on(&id).await.unwrap();
    wait_console(d, &id, "STRATUS-GUEST-READY", 2, 60).await;

    // a soft reboot goes through ACPI; a hard one does not
    d.reboot(&id, false).await.unwrap();
    wait_console(d, &id, "STRATUS-GUEST-POWEROFF", 2, 5).await;
    wait_console(d, &id, "STRATUS-GUEST-READY", 3, 60).await;
    d.reboot(&id, true).await.unwrap();
    wait_console(d, &id, "STRATUS-GUEST-READY", 4, 60).await;
    assert_eq!(
        d.console_output(&id, None).await.unwrap().lines().filter(|l| l.contains("STRATUS-GUEST-POWEROFF")).count(),
        2
    );

    // a snapshot of the root disk, while it runs
    let snap = h.dir.path().join("snap.qcow2");
    assert_eq!(d.snapshot(&id, &snap).await.unwrap(), "qcow2");
    assert!(std::fs::metadata(&snap).unwrap().len() > 0);
    assert_eq!(power(d, &id).await, PowerState::Running);

    d.destroy(&id).await.unwrap();
    d.destroy(&id).await.unwrap();
    assert_eq!(qemu_processes(&id), 0);
    assert!(!h.dir.path().join("instances").join(&id).exists());
    assert!(d.list().await.unwrap().is_empty());
}

/// A guest's VNC server greets over its console socket; its serial port is a
/// socket too, and what the guest writes there still reaches `console.log`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_consoles_of_a_real_guest() {
    use tokio::io::AsyncReadExt;
    let Some(h) = host("br-stratus-t6").await else { return };
    let d = &h.driver;
    let s = spec(&h, "tiny-console");
    let id = s.uuid.clone();
    d.spawn(&s).await.unwrap();
    let ConsoleEndpoint::Unix { path: serial } = d.console_endpoint(&id, ConsoleKind::Serial).await.unwrap() else {
        panic!("the serial console is a unix socket")
    };
    let mut sock = tokio::net::UnixStream::connect(&serial).await.unwrap();
    let marker = format!("STRATUS-GUEST-READY uuid={id}");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&seen).contains(&marker) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(deadline - Instant::now(), sock.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "the serial socket closed:\n{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    wait_console(d, &id, &marker, 1, 5).await;
    drop(sock);

    let ConsoleEndpoint::Unix { path: vnc } = d.console_endpoint(&id, ConsoleKind::Vnc).await.unwrap() else {
        panic!("the VNC console is a unix socket")
    };
    let mut sock = tokio::net::UnixStream::connect(&vnc).await.unwrap();
    let mut greeting = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), sock.read_exact(&mut greeting)).await.unwrap().unwrap();
    assert_eq!(&greeting, b"RFB 003.008\n");
    drop(sock);

    // a guest that does not run has no console
    d.power_off(&id).await.unwrap();
    let e = d.console_endpoint(&id, ConsoleKind::Vnc).await.unwrap_err();
    assert!(e.downcast_ref::<stratus_virt::GuestNotRunning>().is_some(), "{e:#}");
    d.destroy(&id).await.unwrap();
    assert!(
        d.console_endpoint(&id, ConsoleKind::Vnc)
            .await
            .unwrap_err()
            .downcast_ref::<stratus_virt::NoSuchGuest>()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_and_interfaces_hot_plug() {
    let Some(h) = host("br-stratus-t2").await else { return };
    let d = &h.driver;
    let port = uuid_v4();
    let mut s = spec(&h, "tiny-plug");
    s.interfaces = vec![GuestInterface {
        port_id: port.clone(),
        network_id: "net".into(),
        mac_address: "fa:16:3e:00:00:01".into(),
        mtu: Some(1450),
        ..Default::default()
    }];
    let id = s.uuid.clone();
    d.spawn(&s).await.unwrap();
    let tap = tap_name(&port);
    let master = std::fs::read_link(format!("/sys/class/net/{tap}/master")).unwrap();
    assert!(master.ends_with("br-stratus-t2"), "{tap} is on {master:?}");
    // the network's MTU (a VXLAN network's 1450), as the guest's DHCP says
    let mtu = std::fs::read_to_string(format!("/sys/class/net/{tap}/mtu")).unwrap();
    assert_eq!(mtu.trim(), "1450", "{tap}'s MTU");

    // plugged and unplugged while the guest still boots (as Tempest does
    // right after ACTIVE): the unplug request is repeated until it is heard
    let early_path = h.dir.path().join("early.raw");
    std::fs::write(&early_path, vec![0u8; 1 << 20]).unwrap();
    let early = GuestVolume {
        volume_id: uuid_v4(),
        attachment_id: uuid_v4(),
        device_name: "/dev/vdb".into(),
        connection_info: json!({"driver_volume_type": "file", "device_path": early_path, "format": "raw"}),
    };
    d.attach_volume(&id, &early).await.unwrap();
    d.detach_volume(&id, &early.volume_id).await.unwrap();
    wait_console(d, &id, "STRATUS-GUEST-READY", 1, 60).await;

    let vol_path = h.dir.path().join("vol.raw");
    std::fs::write(&vol_path, vec![0u8; 16 << 20]).unwrap();
    let vol = GuestVolume {
        volume_id: uuid_v4(),
        attachment_id: uuid_v4(),
        device_name: "/dev/vdb".into(),
        // as Cinder's attachments API gives it: flat
        connection_info: json!({"driver_volume_type": "file",
            "device_path": vol_path, "format": "raw", "access_mode": "rw", "attachment_id": "a"}),
    };
    d.attach_volume(&id, &vol).await.unwrap();
    d.attach_volume(&id, &vol).await.unwrap();
    // the guest sees a second virtio disk
    let start = Instant::now();
    loop {
        let out = d.console_output(&id, None).await.unwrap();
        let last = out.lines().rfind(|l| l.starts_with("STRATUS-BLOCK")).unwrap_or("").to_string();
        if last.contains("vdb") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the guest never saw vdb:\n{out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.detach_volume(&id, &vol.volume_id).await.unwrap();
    let start = Instant::now();
    loop {
        let out = d.console_output(&id, None).await.unwrap();
        let last = out.lines().rfind(|l| l.starts_with("STRATUS-BLOCK")).unwrap_or("").to_string();
        if !last.contains("vdb") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "vdb never went:\n{out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // a second interface, plugged and unplugged
    let port2 = uuid_v4();
    let iface2 = GuestInterface {
        port_id: port2.clone(),
        network_id: "net".into(),
        mac_address: "fa:16:3e:00:00:02".into(),
        ..Default::default()
    };
    d.attach_interface(&id, &iface2).await.unwrap();
    assert!(Path::new(&format!("/sys/class/net/{}", tap_name(&port2))).exists());
    d.detach_interface(&id, &port2).await.unwrap();
    assert!(!Path::new(&format!("/sys/class/net/{}", tap_name(&port2))).exists());

    d.destroy(&id).await.unwrap();
    assert_eq!(qemu_processes(&id), 0);
    assert!(!Path::new(&format!("/sys/class/net/{tap}")).exists(), "tap {tap} left behind");
    assert!(!h.dir.path().join("instances").join(&id).exists());
}

/// A guest whose QEMU dies is seen as shut off; a new driver on the same
/// directory (a restarted compute host) finds running guests again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readopts_and_sees_deaths() {
    let Some(h) = host("br-stratus-t3").await else { return };
    let s = spec(&h, "tiny-adopt");
    let id = s.uuid.clone();
    h.driver.spawn(&s).await.unwrap();
    let again = QemuDriver::new(QemuOptions {
        binary: "qemu-system-x86_64".into(),
        instances_dir: h.dir.path().join("instances"),
        accel: Accel::Tcg,
        bridge: "br-stratus-t3".into(),
        shutdown_timeout: Duration::from_secs(20),
        probe_kernel: None,
        host_ip: "127.0.0.1".into(),
    })
    .unwrap();
    assert_eq!(power(&again, &id).await, PowerState::Running);
    let pid: i32 = std::fs::read_to_string(h.dir.path().join("instances").join(&id).join("qemu.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_console(&again, &id, "STRATUS-GUEST-READY", 1, 60).await;
    let killed = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(killed.success());
    let start = Instant::now();
    while power(&again, &id).await != PowerState::Shutdown {
        assert!(start.elapsed() < Duration::from_secs(10), "a killed guest still counts as running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    again.power_on(&id).await.unwrap();
    wait_console(&again, &id, "STRATUS-GUEST-READY", 2, 60).await;
    again.destroy(&id).await.unwrap();
    assert_eq!(qemu_processes(&id), 0);
}

/// `auto` takes KVM only when a probe guest boots under it (here /dev/kvm
/// exists but ordinary guests fail under it), and a guest boots under
/// whatever it chose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_accel_is_probed_by_booting() {
    let Some(h) = host("br-stratus-t4").await else { return };
    let d = QemuDriver::new(QemuOptions {
        binary: "qemu-system-x86_64".into(),
        // deep enough that a socket in a guest's directory would pass the 108-byte limit
        instances_dir: h
            .dir
            .path()
            .join("auto")
            .join("a-directory-name-long-enough-to-push-unix-socket-paths-over-their-limit"),
        accel: Accel::Auto,
        bridge: "br-stratus-t4".into(),
        shutdown_timeout: Duration::from_secs(20),
        probe_kernel: Some((h.kernel.clone(), h.initrd.clone())),
        host_ip: "127.0.0.1".into(),
    })
    .unwrap();
    let choice = d.accel().await;
    eprintln!("accel {:?}: {}", choice.accel, choice.reason);
    if !Path::new("/dev/kvm").exists() {
        assert_eq!(choice.accel, Accel::Tcg);
        assert!(choice.reason.contains("no /dev/kvm"));
    } else {
        assert!(choice.reason.contains("probe guest"), "{}", choice.reason);
    }
    let cap = d.capacity().await.unwrap();
    assert_eq!(cap.hypervisor_type, "QEMU");
    assert!(cap.hypervisor_version > 1_000_000);
    let shown = if choice.accel == Accel::Kvm { "kvm" } else { "tcg" };
    assert_eq!(cap.cpu_info["accel"], shown);
    let s = spec(&h, "tiny-auto");
    d.spawn(&s).await.unwrap();
    wait_console(&d, &s.uuid, &format!("STRATUS-GUEST-READY uuid={}", s.uuid), 1, 60).await;
    d.pause(&s.uuid).await.unwrap();
    assert_eq!(power(&d, &s.uuid).await, PowerState::Paused);
    d.destroy(&s.uuid).await.unwrap();
    assert_eq!(qemu_processes(&s.uuid), 0);
}

/// A guest without an OS (firmware only, nothing to boot) ignores the ACPI
/// power button: power off stops it hard once the timeout has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_ignoring_acpi_is_stopped_hard() {
    let Some(h) = host("br-stratus-t5").await else { return };
    let d = QemuDriver::new(QemuOptions {
        binary: "qemu-system-x86_64".into(),
        instances_dir: h.dir.path().join("hard"),
        accel: Accel::Tcg,
        bridge: "br-stratus-t5".into(),
        shutdown_timeout: Duration::from_secs(3),
        probe_kernel: None,
        host_ip: "127.0.0.1".into(),
    })
    .unwrap();
    let mut s = spec(&h, "no-os");
    s.kernel_path = None;
    s.ramdisk_path = None;
    d.spawn(&s).await.unwrap();
    assert_eq!(power(&d, &s.uuid).await, PowerState::Running);
    let t = Instant::now();
    d.power_off(&s.uuid).await.unwrap();
    assert!(t.elapsed() >= Duration::from_secs(3), "stopped after {:?}, before the timeout", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(15), "took {:?}", t.elapsed());
    assert_eq!(power(&d, &s.uuid).await, PowerState::Shutdown);
    assert_eq!(qemu_processes(&s.uuid), 0);
    d.destroy(&s.uuid).await.unwrap();
}
