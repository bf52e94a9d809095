//! Stopping every guest of a host at once (`stratus down`): guests outlive
//! their compute host by design, so something must end them when the whole
//! cloud goes away.

use super::{QemuDriver, STATE, tap_name};

/// A guest found in a host's instances directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundGuest {
    pub uuid: String,
    /// Its QEMU process runs.
    pub running: bool,
}

impl QemuDriver {
    /// Every guest this host keeps a directory for, and whether its QEMU runs.
    pub fn guests(&self) -> Vec<FoundGuest> {
        let Ok(entries) = std::fs::read_dir(&self.opts.instances_dir) else { return Vec::new() };
        let mut found: Vec<FoundGuest> = entries
            .flatten()
            .filter(|e| e.path().join(STATE).is_file())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .map(|uuid| FoundGuest { running: self.pid(&uuid).is_some(), uuid })
            .collect();
        found.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        found
    }

    /// Stop every running guest of this host at once and remove their taps;
    /// their disks and state stay, so a later compute host sees them shut
    /// off and can start them again. Returns how many were stopped.
    pub async fn stop_all(&self) -> anyhow::Result<usize> {
        let mut stopped = 0;
        let mut errors = Vec::new();
        for g in self.guests() {
            let lock = self.lock(&g.uuid);
            let _held = lock.lock().await;
            if g.running {
                match self.kill(&g.uuid).await {
                    Ok(()) => stopped += 1,
                    Err(e) => {
                        errors.push(format!("{e:#}"));
                        continue;
                    }
                }
            }
            let _ = std::fs::remove_file(self.qmp_socket(&g.uuid));
            if let Ok(st) = self.load(&g.uuid) {
                for i in &st.interfaces {
                    if let Err(e) = self.unplug_tap(&i.port_id).await {
                        errors.push(format!("tap {}: {e:#}", tap_name(&i.port_id)));
                    }
                }
            }
        }
        if !errors.is_empty() {
            anyhow::bail!("{}", errors.join("; "));
        }
        Ok(stopped)
    }

    /// The bridge guests' taps join, removed when no device is left on it.
    pub async fn remove_idle_bridge(&self) -> anyhow::Result<bool> {
        let brif = std::path::Path::new("/sys/class/net").join(&self.opts.bridge).join("brif");
        let Ok(mut ports) = std::fs::read_dir(&brif) else { return Ok(false) };
        if ports.next().is_some() {
            return Ok(false);
        }
        super::run("ip", &["link", "del", "dev", &self.opts.bridge]).await?;
        Ok(true)
    }
}
