//! Which accelerator: KVM only when `/dev/kvm` exists AND a probe guest
//! boots under it to its marker line. On nested hosts `/dev/kvm` may answer
//! its ioctls while ordinary guests die with "KVM internal error": the
//! device's presence proves nothing.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{Accel, AccelChoice, QemuOptions};

/// How long the probe guest may take to print its marker under KVM (it
/// takes about 3 s under TCG; under working KVM well under 1 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
const MARKER: &str = "STRATUS-GUEST-READY";

pub async fn choose(opts: &QemuOptions) -> AccelChoice {
    let choice = match opts.accel {
        Accel::Tcg => AccelChoice { accel: Accel::Tcg, reason: "configured".into() },
        Accel::Kvm => AccelChoice { accel: Accel::Kvm, reason: "configured".into() },
        Accel::Auto => auto(opts).await,
    };
    tracing::info!(accel = ?choice.accel, reason = %choice.reason, "QEMU accelerator chosen");
    choice
}

async fn auto(opts: &QemuOptions) -> AccelChoice {
    let tcg = |reason: String| AccelChoice { accel: Accel::Tcg, reason };
    if !std::path::Path::new("/dev/kvm").exists() {
        return tcg("no /dev/kvm".into());
    }
    let Some((kernel, initrd)) = &opts.probe_kernel else {
        return tcg("/dev/kvm exists but there is no probe guest to try it (scripts/tiny-guest/build makes one)".into());
    };
    match boot(&opts.binary, kernel, initrd).await {
        Ok(ms) => AccelChoice { accel: Accel::Kvm, reason: format!("a probe guest booted under KVM in {ms} ms") },
        Err(e) => tcg(format!("/dev/kvm exists but a probe guest fails under it: {e}")),
    }
}

/// Boot the probe guest under KVM; the time to its marker.
async fn boot(binary: &str, kernel: &std::path::Path, initrd: &std::path::Path) -> anyhow::Result<u128> {
    let dir = tempfile_dir()?;
    let serial = dir.join("serial.log");
    let started = std::time::Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .args(["-machine", "pc,accel=kvm", "-cpu", "host", "-m", "128", "-nodefaults", "-no-user-config"])
        .args(["-display", "none", "-no-reboot", "-kernel"])
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 quiet mitigations=off cryptomgr.notests panic=-1"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stderr = child.stderr.take();
    let mut err_text = String::new();
    let result = loop {
        if std::fs::read_to_string(&serial).is_ok_and(|s| s.contains(MARKER)) {
            break Ok(started.elapsed().as_millis());
        }
        if let Ok(Some(status)) = child.try_wait() {
            if let Some(e) = stderr.as_mut() {
                let _ = e.read_to_string(&mut err_text).await;
            }
            break Err(anyhow::anyhow!("QEMU exited ({status}): {}", err_text.lines().next().unwrap_or("").trim()));
        }
        if started.elapsed() > PROBE_TIMEOUT {
            break Err(anyhow::anyhow!("no marker within {PROBE_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill().await;
    if result.is_err()
        && err_text.is_empty()
        && let Some(mut e) = stderr
    {
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), e.read(&mut buf)).await {
            err_text = String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Err(e) if err_text.contains("KVM internal error") => {
            Err(anyhow::anyhow!("{e}; QEMU said: {}", err_text.lines().next().unwrap_or("")))
        }
        r => r,
    }
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("stratus-kvm-probe-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
