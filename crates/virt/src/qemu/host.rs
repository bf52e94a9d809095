//! What this machine offers guests: CPUs, memory, disk, and QEMU's version.

use std::path::Path;

use anyhow::{Context, anyhow};

pub struct Resources {
    pub cpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub cpu_model: String,
    pub cpu_vendor: String,
}

/// CPUs online, memory (`/proc/meminfo`), and the size of the file system holding `dir`.
pub fn resources(dir: &Path) -> anyhow::Result<Resources> {
    let cpus = std::thread::available_parallelism().map(|n| n.get() as i64).unwrap_or(1);
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let memory_kb: i64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no MemTotal in /proc/meminfo"))?;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    Ok(Resources {
        cpus,
        memory_mb: memory_kb / 1024,
        disk_gb: disk_bytes(dir)? as i64 >> 30,
        cpu_model: field("model name"),
        cpu_vendor: field("vendor_id"),
    })
}

fn disk_bytes(dir: &Path) -> anyhow::Result<u64> {
    let st = rustix::fs::statvfs(dir).with_context(|| format!("statvfs {}", dir.display()))?;
    Ok(st.f_blocks * st.f_frsize)
}

/// QEMU's version as Nova shows it (major * 1,000,000 + minor * 1,000 + micro).
pub async fn qemu_version(binary: &str) -> anyhow::Result<i64> {
    let out = tokio::process::Command::new(binary).arg("--version").output().await?;
    parse_version(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| anyhow!("no version in {binary} --version"))
}

fn parse_version(text: &str) -> Option<i64> {
    let v = text.split("version ").nth(1)?.split_whitespace().next()?;
    let mut parts = v.split('.').map(|p| p.trim_end_matches(|c: char| !c.is_ascii_digit()).parse::<i64>().ok());
    let (a, b, c) = (parts.next()??, parts.next().flatten().unwrap_or(0), parts.next().flatten().unwrap_or(0));
    Some(a * 1_000_000 + b * 1_000 + c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions() {
        assert_eq!(
            super::parse_version("QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)\n"),
            Some(7_002_019)
        );
        assert_eq!(super::parse_version("QEMU emulator version 10.0.2\n"), Some(10_000_002));
        assert_eq!(super::parse_version("nothing here"), None);
    }

    #[test]
    fn this_machine() {
        let r = super::resources(std::path::Path::new("/")).unwrap();
        assert!(r.cpus >= 1 && r.memory_mb > 100 && r.disk_gb >= 1);
    }
}
