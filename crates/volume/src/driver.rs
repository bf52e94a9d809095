//! The storage backend interface a volume host drives, and the file backend:
//! one file per volume under a directory, raw (sparse: thin provisioned) or
//! qcow2 (through `qemu-img`). A location is the file's path.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const GIB: u64 = 1 << 30;

/// A pool a backend reports: the scheduler places volumes by it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Pool {
    pub name: String,
    pub total_capacity_gb: i64,
    pub free_capacity_gb: i64,
    pub allocated_capacity_gb: i64,
    pub provisioned_capacity_gb: i64,
    pub thin_provisioning_support: bool,
    pub max_over_subscription_ratio: f64,
    pub reserved_percentage: i64,
    pub volume_backend_name: String,
    pub storage_protocol: String,
    pub vendor_name: String,
    pub driver_version: String,
    pub multiattach: bool,
}

/// What a volume host needs of its storage.
#[async_trait::async_trait]
pub trait Driver: Send + Sync + 'static {
    /// `file`, `fake`, ...
    fn name(&self) -> &str;
    /// The backend's name (`volume_backend_name`), the middle of `host@backend#pool`.
    fn backend_name(&self) -> &str;
    /// The pools and their capacity now; `allocated_gb` is what the
    /// host's volumes claim (the driver may not know it).
    async fn pools(&self, allocated_gb: i64) -> anyhow::Result<Vec<Pool>>;
    /// A new empty volume of `size_gb`; gives its location.
    async fn create(&self, volume_id: &str, size_gb: i64) -> anyhow::Result<String>;
    /// A new volume holding a copy of `src` (a disk image file in any format
    /// qemu-img reads), at least `size_gb`.
    async fn create_from_file(
        &self,
        volume_id: &str,
        size_gb: i64,
        src: &Path,
        src_format: &str,
    ) -> anyhow::Result<String>;
    /// A new volume holding a copy of the volume or snapshot at `location`.
    async fn copy_from(&self, volume_id: &str, size_gb: i64, location: &str) -> anyhow::Result<String>;
    /// A point-in-time copy of the volume at `location`; gives its location.
    async fn snapshot(&self, snapshot_id: &str, location: &str) -> anyhow::Result<String>;
    /// Remove what `location` holds (a volume or a snapshot); gone already is fine.
    async fn delete(&self, location: &str) -> anyhow::Result<()>;
    /// Grow the volume to `new_size_gb`.
    async fn extend(&self, location: &str, new_size_gb: i64) -> anyhow::Result<()>;
    /// Cinder's `connection_info` for a host that asks with `connector`.
    async fn connection_info(&self, location: &str, connector: &Value) -> anyhow::Result<Value>;
    /// The volume's contents as a raw file to read (backups, uploads): the
    /// file itself for raw volumes, else a raw copy the caller removes
    /// (second of the pair: true when it is a copy).
    async fn raw_view(&self, location: &str) -> anyhow::Result<(PathBuf, bool)>;
    /// Where to write raw contents into the volume (restores): for a raw
    /// volume the file itself; `finish_raw_write` converts back when needed.
    async fn raw_target(&self, location: &str) -> anyhow::Result<PathBuf>;
    async fn finish_raw_write(&self, location: &str, written: &Path) -> anyhow::Result<()>;
}

/// Volumes as files in a directory.
pub struct FileBackend {
    dir: PathBuf,
    /// `raw` or `qcow2`
    format: String,
    backend: String,
    capacity_gb: i64,
}

impl FileBackend {
    pub fn new(dir: PathBuf, format: &str, backend: &str, capacity_gb: i64) -> anyhow::Result<FileBackend> {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        if format != "raw" && format != "qcow2" {
            bail!("volume.file_format must be raw or qcow2, not {format:?}");
        }
        Ok(FileBackend { dir, format: format.to_string(), backend: backend.to_string(), capacity_gb })
    }

    fn path_for(&self, id: &str) -> PathBuf {
        self.dir.join(format!("volume-{id}.{}", self.format))
    }

    fn snapshot_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("snapshot-{id}.{}", self.format))
    }

    /// A location must be a file in this backend's directory (never a path a
    /// row could point anywhere else).
    fn check(&self, location: &str) -> anyhow::Result<PathBuf> {
        let p = PathBuf::from(location);
        if p.parent() != Some(self.dir.as_path()) {
            bail!("{location} is not a volume of this backend");
        }
        Ok(p)
    }

    async fn make_empty(&self, path: &Path, size_gb: i64) -> anyhow::Result<()> {
        let bytes = size_gb.max(0) as u64 * GIB;
        if self.format == "raw" {
            let f = tokio::fs::File::create(path).await.with_context(|| format!("cannot create {}", path.display()))?;
            f.set_len(bytes).await?;
            f.sync_all().await?;
            Ok(())
        } else {
            qemu_img(&["create", "-q", "-f", "qcow2", &path.to_string_lossy(), &bytes.to_string()]).await
        }
    }

    /// `src` (any format) into a new file at `dst` in this backend's format, then grown to `size_gb`.
    async fn convert_into(&self, src: &Path, src_format: &str, dst: &Path, size_gb: i64) -> anyhow::Result<()> {
        let tmp = dst.with_extension("part");
        let r = async {
            // -U: the source may be a volume a running guest has open (an
            // in-use snapshot or clone is crash-consistent, as in Cinder)
            let mut args = vec!["convert", "-q", "-U"];
            if !src_format.is_empty() {
                args.extend(["-f", src_format]);
            }
            let (s, t) = (src.to_string_lossy().to_string(), tmp.to_string_lossy().to_string());
            args.extend(["-O", self.format.as_str(), s.as_str(), t.as_str()]);
            qemu_img(&args).await?;
            let want = size_gb.max(0) as u64 * GIB;
            if virtual_size(&tmp).await? < want {
                qemu_img(&["resize", "-q", "-f", &self.format, &tmp.to_string_lossy(), &want.to_string()]).await?;
            }
            tokio::fs::rename(&tmp, dst).await?;
            anyhow::Ok(())
        }
        .await;
        if r.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        r
    }
}

#[async_trait::async_trait]
impl Driver for FileBackend {
    fn name(&self) -> &str {
        "file"
    }

    fn backend_name(&self) -> &str {
        &self.backend
    }

    async fn pools(&self, allocated_gb: i64) -> anyhow::Result<Vec<Pool>> {
        Ok(vec![Pool {
            name: self.backend.clone(),
            total_capacity_gb: self.capacity_gb,
            free_capacity_gb: (self.capacity_gb - allocated_gb).max(0),
            allocated_capacity_gb: allocated_gb,
            provisioned_capacity_gb: allocated_gb,
            thin_provisioning_support: true,
            max_over_subscription_ratio: 1.0,
            reserved_percentage: 0,
            volume_backend_name: self.backend.clone(),
            storage_protocol: "file".into(),
            vendor_name: "Open Source".into(),
            driver_version: env!("CARGO_PKG_VERSION").into(),
            // a file can be opened by several guests
            multiattach: true,
        }])
    }

    async fn create(&self, volume_id: &str, size_gb: i64) -> anyhow::Result<String> {
        let p = self.path_for(volume_id);
        self.make_empty(&p, size_gb).await?;
        Ok(p.to_string_lossy().into_owned())
    }

    async fn create_from_file(
        &self,
        volume_id: &str,
        size_gb: i64,
        src: &Path,
        src_format: &str,
    ) -> anyhow::Result<String> {
        let p = self.path_for(volume_id);
        self.convert_into(src, src_format, &p, size_gb).await?;
        Ok(p.to_string_lossy().into_owned())
    }

    async fn copy_from(&self, volume_id: &str, size_gb: i64, location: &str) -> anyhow::Result<String> {
        let src = self.check(location)?;
        let p = self.path_for(volume_id);
        let fmt = self.format.clone();
        self.convert_into(&src, &fmt, &p, size_gb).await?;
        Ok(p.to_string_lossy().into_owned())
    }

    async fn snapshot(&self, snapshot_id: &str, location: &str) -> anyhow::Result<String> {
        let src = self.check(location)?;
        let p = self.snapshot_path(snapshot_id);
        let size = virtual_size(&src).await?;
        let fmt = self.format.clone();
        self.convert_into(&src, &fmt, &p, size.div_ceil(GIB) as i64).await?;
        Ok(p.to_string_lossy().into_owned())
    }

    async fn delete(&self, location: &str) -> anyhow::Result<()> {
        let p = self.check(location)?;
        match tokio::fs::remove_file(&p).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", p.display())),
        }
    }

    async fn extend(&self, location: &str, new_size_gb: i64) -> anyhow::Result<()> {
        let p = self.check(location)?;
        let bytes = new_size_gb.max(0) as u64 * GIB;
        if self.format == "raw" {
            let f = tokio::fs::OpenOptions::new().write(true).open(&p).await?;
            if f.metadata().await?.len() < bytes {
                f.set_len(bytes).await?;
            }
            f.sync_all().await?;
            Ok(())
        } else {
            qemu_img(&["resize", "-q", "-f", "qcow2", &p.to_string_lossy(), &bytes.to_string()]).await
        }
    }

    async fn connection_info(&self, location: &str, _connector: &Value) -> anyhow::Result<Value> {
        let p = self.check(location)?;
        Ok(json!({
            "driver_volume_type": "file",
            "data": {"device_path": p.to_string_lossy(), "format": self.format, "access_mode": "rw"},
        }))
    }

    async fn raw_view(&self, location: &str) -> anyhow::Result<(PathBuf, bool)> {
        let p = self.check(location)?;
        if self.format == "raw" {
            return Ok((p, false));
        }
        let tmp = self.dir.join(format!(".raw-{}", uuid::Uuid::new_v4()));
        qemu_img(&["convert", "-q", "-U", "-f", "qcow2", "-O", "raw", &p.to_string_lossy(), &tmp.to_string_lossy()])
            .await?;
        Ok((tmp, true))
    }

    async fn raw_target(&self, location: &str) -> anyhow::Result<PathBuf> {
        let p = self.check(location)?;
        if self.format == "raw" {
            return Ok(p);
        }
        Ok(self.dir.join(format!(".restore-{}", uuid::Uuid::new_v4())))
    }

    async fn finish_raw_write(&self, location: &str, written: &Path) -> anyhow::Result<()> {
        let p = self.check(location)?;
        if written == p {
            return Ok(());
        }
        let size = virtual_size(&p).await?;
        let r = self.convert_into(written, "raw", &p, size.div_ceil(GIB) as i64).await;
        let _ = tokio::fs::remove_file(written).await;
        r
    }
}

/// Run qemu-img; its stderr becomes the error.
pub async fn qemu_img(args: &[&str]) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("qemu-img")
        .args(args)
        .output()
        .await
        .context("cannot run qemu-img (install qemu-utils)")?;
    if !out.status.success() {
        bail!("qemu-img {} failed: {}", args.first().unwrap_or(&""), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The virtual size of a disk image file, in bytes.
pub async fn virtual_size(path: &Path) -> anyhow::Result<u64> {
    let out = tokio::process::Command::new("qemu-img")
        .args(["info", "-U", "--output=json", &path.to_string_lossy()])
        .output()
        .await
        .context("cannot run qemu-img (install qemu-utils)")?;
    if !out.status.success() {
        bail!("qemu-img info failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    v.get("virtual-size").and_then(Value::as_u64).context("qemu-img info gave no virtual-size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn raw_volume_lifecycle() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let b = FileBackend::new(dir.path().to_path_buf(), "raw", "file", 100)?;
        let loc = b.create("v1", 1).await?;
        assert_eq!(std::fs::metadata(&loc)?.len(), GIB);
        b.extend(&loc, 2).await?;
        assert_eq!(std::fs::metadata(&loc)?.len(), 2 * GIB);
        let snap = b.snapshot("s1", &loc).await?;
        assert_eq!(virtual_size(Path::new(&snap)).await?, 2 * GIB);
        let clone = b.copy_from("v2", 3, &snap).await?;
        assert_eq!(virtual_size(Path::new(&clone)).await?, 3 * GIB);
        // a location outside the backend's directory is refused
        assert!(b.delete("/etc/passwd").await.is_err());
        for l in [&loc, &snap, &clone] {
            b.delete(l).await?;
            assert!(!Path::new(l).exists());
        }
        // deleting twice is fine
        b.delete(&loc).await?;
        Ok(())
    }

    #[tokio::test]
    async fn qcow2_volume_lifecycle() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let b = FileBackend::new(dir.path().to_path_buf(), "qcow2", "file", 100)?;
        let loc = b.create("v1", 1).await?;
        assert_eq!(virtual_size(Path::new(&loc)).await?, GIB);
        b.extend(&loc, 2).await?;
        assert_eq!(virtual_size(Path::new(&loc)).await?, 2 * GIB);
        let (raw, copy) = b.raw_view(&loc).await?;
        assert!(copy);
        assert_eq!(std::fs::metadata(&raw)?.len(), 2 * GIB);
        std::fs::remove_file(raw)?;
        b.delete(&loc).await?;
        Ok(())
    }
}
