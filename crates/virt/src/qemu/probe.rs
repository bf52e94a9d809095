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
    // a probe that fails can take PROBE_TIMEOUT: its answer holds until the
    // machine reboots or QEMU or the probe guest change, so a restarted host
    // starts in seconds
    let cache = opts.instances_dir.join(PROBE_CACHE);
    let key = probe_key(&opts.binary, kernel, initrd);
    if let Some(key) = &key
        && let Ok(bytes) = std::fs::read(&cache)
        && let Ok(c) = serde_json::from_slice::<CachedProbe>(&bytes)
        && &c.key == key
    {
        return AccelChoice { accel: c.accel, reason: format!("{} (probed earlier since this boot)", c.reason) };
    }
    let choice = match boot(&opts.binary, kernel, initrd).await {
        Ok(ms) => AccelChoice { accel: Accel::Kvm, reason: format!("a probe guest booted under KVM in {ms} ms") },
        Err(e) => tcg(format!("/dev/kvm exists but a probe guest fails under it: {e}")),
    };
    if let Some(key) = key {
        let c = CachedProbe { key, accel: choice.accel, reason: choice.reason.clone() };
        if let Ok(bytes) = serde_json::to_vec(&c) {
            let _ = std::fs::write(&cache, bytes);
        }
    }
    choice
}

/// Where a host keeps its probe's answer (in its instances directory).
const PROBE_CACHE: &str = "accel-probe.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct CachedProbe {
    key: String,
    accel: Accel,
    reason: String,
}

/// What the probe's answer depends on: this boot of the machine, the QEMU
/// binary and the probe guest (path, size and modification time of each).
fn probe_key(binary: &str, kernel: &std::path::Path, initrd: &std::path::Path) -> Option<String> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let bin = if binary.contains('/') {
        std::path::PathBuf::from(binary)
    } else {
        std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(binary)).find(|p| p.is_file())?
    };
    let stamp = |p: &std::path::Path| -> Option<String> {
        let m = std::fs::metadata(p).ok()?;
        let mtime = m.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
        Some(format!("{}:{}:{mtime}", p.display(), m.len()))
    };
    Some(format!("{}|{}|{}|{}", boot_id.trim(), stamp(&bin)?, stamp(kernel)?, stamp(initrd)?))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The cached answer holds only for the same QEMU and probe guest.
    #[test]
    fn the_probe_key_follows_qemu_and_the_probe_guest() {
        let dir = std::env::temp_dir().join(format!("stratus-probe-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (bin, kernel, initrd) = (dir.join("qemu"), dir.join("vmlinuz"), dir.join("initrd.gz"));
        for p in [&bin, &kernel, &initrd] {
            std::fs::write(p, b"x").unwrap();
        }
        let bin_s = bin.display().to_string();
        let a = probe_key(&bin_s, &kernel, &initrd).unwrap();
        assert_eq!(probe_key(&bin_s, &kernel, &initrd).unwrap(), a);
        std::fs::write(&kernel, b"a newer kernel").unwrap();
        let b = probe_key(&bin_s, &kernel, &initrd).unwrap();
        assert_ne!(a, b);
        std::fs::write(&bin, b"another qemu").unwrap();
        assert_ne!(probe_key(&bin_s, &kernel, &initrd).unwrap(), b);
        assert!(probe_key("stratus-no-such-qemu", &kernel, &initrd).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
