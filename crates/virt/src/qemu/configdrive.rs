//! The OpenStack config drive of a QEMU guest: an ISO9660 image labelled
//! `config-2` holding what Nova's config drive holds (`openstack/<version>/`
//! with `meta_data.json`, `user_data`, `network_data.json`, vendor data), so
//! cloud-init and the tiny guest configure themselves without a metadata
//! service.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::GuestSpec;
use crate::metadata;

pub use crate::metadata::{OPENSTACK_VERSIONS, tap_name};

/// The volume label guests look for (cloud-init, the tiny guest's `findfs`).
pub const VOLUME_LABEL: &str = "config-2";

/// The drive's files, by path relative to its root, for every version Nova
/// writes (`openstack/<version>/...` and `openstack/latest/...`); their
/// content is the metadata API's ([`crate::metadata`]).
pub fn files(spec: &GuestSpec) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for version in OPENSTACK_VERSIONS.iter().copied().chain(["latest"]) {
        for (name, data) in metadata::openstack_files(spec, version) {
            out.insert(format!("openstack/{version}/{name}"), data);
        }
    }
    out
}

/// Builds the config drive of `spec` at `dest`: the files go into a
/// temporary directory next to `dest`, xorriso makes `<dest>.tmp` of them,
/// which is renamed to `dest`, so `dest` is either complete or absent. The
/// temporary directory is removed whatever happens.
pub async fn build(spec: &GuestSpec, dest: &Path) -> anyhow::Result<()> {
    build_with(OsStr::new("xorriso"), spec, dest).await
}

async fn build_with(xorriso: &OsStr, spec: &GuestSpec, dest: &Path) -> anyhow::Result<()> {
    let dir = sibling(dest, ".d.tmp");
    let iso = sibling(dest, ".tmp");
    // Leftovers of a build that was interrupted.
    remove_dir(&dir).await?;
    remove_file(&iso).await?;
    let built = build_in(xorriso, spec, dest, &dir, &iso).await;
    let cleaned = remove_dir(&dir).await;
    if built.is_err() {
        let _ = remove_file(&iso).await;
    }
    built.and(cleaned)
}

async fn build_in(xorriso: &OsStr, spec: &GuestSpec, dest: &Path, dir: &Path, iso: &Path) -> anyhow::Result<()> {
    tokio::fs::create_dir(dir).await.with_context(|| format!("creating {}", dir.display()))?;
    for (rel, data) in files(spec) {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.with_context(|| format!("creating {}", parent.display()))?;
        }
        tokio::fs::write(&path, data).await.with_context(|| format!("writing {}", path.display()))?;
    }
    let out = tokio::process::Command::new(xorriso)
        .args(["-as", "mkisofs", "-quiet", "-V", VOLUME_LABEL, "-J", "-R", "-o"])
        .arg(iso)
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("xorriso not found: install the Debian package xorriso")
        }
        Err(e) => return Err(e).with_context(|| format!("running {}", xorriso.to_string_lossy())),
    };
    if !out.status.success() {
        bail!(
            "xorriso failed building the config drive {} ({}): {}",
            dest.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    tokio::fs::rename(iso, dest).await.with_context(|| format!("renaming {} to {}", iso.display(), dest.display()))?;
    Ok(())
}

/// `dest` with `suffix` appended to its file name (same directory, so the
/// final rename stays on one file system).
fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(dest.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

async fn remove_dir(path: &Path) -> anyhow::Result<()> {
    match tokio::fs::remove_dir_all(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

async fn remove_file(path: &Path) -> anyhow::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn versions_gate_files_and_fields() {
        let spec = GuestSpec { uuid: "u".into(), ..Default::default() };
        let f = files(&spec);
        assert!(f.contains_key("openstack/2012-08-10/meta_data.json"));
        assert!(!f.contains_key("openstack/2012-08-10/network_data.json"));
        assert!(!f.contains_key("openstack/2013-04-04/vendor_data.json"));
        assert!(f.contains_key("openstack/2013-10-17/vendor_data.json"));
        assert!(f.contains_key("openstack/2015-10-15/network_data.json"));
        assert!(!f.contains_key("openstack/2016-06-30/vendor_data2.json"));
        assert!(f.contains_key("openstack/2016-10-06/vendor_data2.json"));
        assert!(!f.keys().any(|k| k.ends_with("user_data")));
        let old: Value = serde_json::from_slice(&f["openstack/2012-08-10/meta_data.json"]).unwrap();
        assert!(old.get("project_id").is_none() && old.get("devices").is_none());
        let latest: Value = serde_json::from_slice(&f["openstack/latest/meta_data.json"]).unwrap();
        assert_eq!(latest["dedicated_cpus"], json!([]));
        assert!(latest.get("keys").is_none() && latest.get("meta").is_none());
    }

    #[test]
    fn undecodable_user_data_is_kept() {
        let spec = GuestSpec { user_data: Some("not base64!".into()), ..Default::default() };
        assert_eq!(files(&spec)["openstack/latest/user_data"], b"not base64!");
    }

    #[tokio::test]
    async fn missing_xorriso_is_explained_and_cleaned_up() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("disk.config");
        let spec = GuestSpec { uuid: "u".into(), ..Default::default() };
        let err = build_with(OsStr::new("stratus-no-such-xorriso"), &spec, &dest).await.unwrap_err();
        assert_eq!(err.to_string(), "xorriso not found: install the Debian package xorriso");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
