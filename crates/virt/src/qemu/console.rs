//! Remote consoles of QEMU guests: a VNC server (no display device) and the first serial port,
//! each on a unix socket beside the guest's QMP socket (no ports to
//! allocate, reachable only by this host's users). The serial port is a
//! socket chardev that still logs everything to `console.log`, so the
//! console output API reads the same file whether or not someone is
//! connected. Guests started before consoles existed keep their old
//! command line (and so a managed save of theirs still loads) and have no
//! remote console.

use std::path::{Path, PathBuf};

use super::QemuDriver;
use crate::{ConsoleEndpoint, ConsoleKind, ConsoleUnavailable, GuestNotRunning};

impl ConsoleKind {
    fn socket_name(self) -> &'static str {
        match self {
            ConsoleKind::Vnc => "vnc.sock",
            ConsoleKind::Serial => "serial.sock",
        }
    }
}

impl QemuDriver {
    /// The unix socket of a guest's console: in its directory, or beside its
    /// QMP socket when that had to move for the unix path limit.
    pub(super) fn console_socket(&self, uuid: &str, kind: ConsoleKind) -> PathBuf {
        let qmp = self.qmp_socket(uuid);
        let dir = self.dir(uuid);
        if qmp.parent() == Some(dir.as_path()) {
            dir.join(kind.socket_name())
        } else {
            qmp.with_file_name(format!("{uuid}.{}", kind.socket_name()))
        }
    }

    /// QEMU's arguments for a guest's display, VNC server and serial port.
    pub(super) fn console_args(&self, uuid: &str, console_log: &Path) -> Vec<String> {
        let vnc = self.console_socket(uuid, ConsoleKind::Vnc);
        let serial = self.console_socket(uuid, ConsoleKind::Serial);
        // No display device: with none, SeaBIOS prints to the serial port
        // (what a guest without an OS shows in its console output), and the
        // PCI slots hot-plugged devices take stay where they were; the VNC
        // server still answers (RFB) and shows the display's absence.
        vec![
            "-vnc".into(),
            format!("unix:{}", vnc.to_string_lossy()),
            "-chardev".into(),
            format!(
                "socket,id=serial0,path={},server=on,wait=off,logfile={},logappend=on",
                serial.to_string_lossy(),
                console_log.to_string_lossy()
            ),
            "-serial".into(),
            "chardev:serial0".into(),
        ]
    }

    /// Remove the console sockets that live outside the guest's directory.
    pub(super) fn remove_console_sockets(&self, uuid: &str) {
        for kind in [ConsoleKind::Vnc, ConsoleKind::Serial] {
            let _ = std::fs::remove_file(self.console_socket(uuid, kind));
        }
    }

    /// Where the console of a running guest is: its socket, when its QEMU was started with it.
    pub(super) fn console_endpoint_of(&self, uuid: &str, kind: ConsoleKind) -> anyhow::Result<ConsoleEndpoint> {
        let st = self.load(uuid)?;
        let Some(pid) = self.pid(uuid) else {
            return Err(GuestNotRunning(uuid.to_string()).into());
        };
        let path = self.console_socket(uuid, kind);
        // a guest adopted from before consoles existed runs without them
        let started_with = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&*path.to_string_lossy()))
            .unwrap_or(false);
        if !st.consoles || !started_with || !path.exists() {
            return Err(ConsoleUnavailable(kind).into());
        }
        Ok(ConsoleEndpoint::Unix { path })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Accel, GuestState, QemuDriver, QemuOptions};
    use crate::{ConsoleKind, GuestSpec};

    fn driver(dir: &std::path::Path) -> QemuDriver {
        QemuDriver::new(QemuOptions {
            binary: "qemu-system-x86_64".into(),
            instances_dir: dir.to_path_buf(),
            accel: Accel::Tcg,
            bridge: "br-test".into(),
            shutdown_timeout: Duration::from_secs(1),
            probe_kernel: None,
            host_ip: "127.0.0.1".into(),
        })
        .unwrap()
    }

    fn state(consoles: bool) -> GuestState {
        let spec = GuestSpec { uuid: "6f1e0c9a-0000-4000-8000-000000000001".into(), ..Default::default() };
        GuestState { spec, interfaces: vec![], volumes: vec![], root_disk: false, consoles }
    }

    #[test]
    fn new_guests_get_consoles_old_ones_keep_their_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = driver(dir.path());
        let st = state(true);
        let args = d.command_line(&st, Accel::Tcg, None).unwrap().join(" ");
        let vnc = d.console_socket(&st.spec.uuid, ConsoleKind::Vnc);
        let serial = d.console_socket(&st.spec.uuid, ConsoleKind::Serial);
        assert!(args.contains(&format!("-vnc unix:{}", vnc.display())), "{args}");
        assert!(!args.contains("-device VGA"), "no display device (SeaBIOS then writes to the serial port): {args}");
        assert!(
            args.contains(&format!("-chardev socket,id=serial0,path={},server=on,wait=off,logfile=", serial.display()))
        );
        assert!(args.contains("console.log,logappend=on -serial chardev:serial0"), "{args}");

        // a guest.json from before consoles: no display, the serial port to the file
        let old: GuestState = serde_json::from_value(serde_json::json!({
            "spec": st.spec, "interfaces": [], "volumes": [], "root_disk": false,
        }))
        .unwrap();
        assert!(!old.consoles);
        let args = d.command_line(&old, Accel::Tcg, None).unwrap().join(" ");
        assert!(!args.contains("-vnc") && !args.contains("VGA"), "{args}");
        assert!(args.contains("-chardev file,id=serial0,path="), "{args}");
        assert!(d.console_endpoint_of(&old.spec.uuid, ConsoleKind::Vnc).is_err());
    }

    #[test]
    fn console_sockets_follow_the_qmp_socket_out_of_long_directories() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("x".repeat(90));
        let d = driver(&long);
        let uuid = "6f1e0c9a-0000-4000-8000-000000000002";
        let vnc = d.console_socket(uuid, ConsoleKind::Vnc);
        assert_eq!(vnc.parent(), d.qmp_socket(uuid).parent());
        assert!(vnc.as_os_str().len() < 108, "{}", vnc.display());
        let short = driver(dir.path());
        assert_eq!(short.console_socket(uuid, ConsoleKind::Serial), dir.path().join(uuid).join("serial.sock"));
    }
}
