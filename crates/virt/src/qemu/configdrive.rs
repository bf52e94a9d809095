//! The OpenStack config drive of a QEMU guest: an ISO9660 image labelled
//! `config-2` holding what Nova's config drive holds (`openstack/<version>/`
//! with `meta_data.json`, `user_data`, `network_data.json`, vendor data), so
//! cloud-init and the tiny guest configure themselves without a metadata
//! service.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Value, json};

use crate::{GuestInterface, GuestSpec};

/// The volume label guests look for (cloud-init, the tiny guest's `findfs`).
pub const VOLUME_LABEL: &str = "config-2";

/// The OpenStack metadata versions Nova writes onto a config drive, oldest
/// first; `latest` is written as well, with the newest version's content.
pub const OPENSTACK_VERSIONS: &[&str] =
    &[FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA, EPOXY];

const FOLSOM: &str = "2012-08-10";
const GRIZZLY: &str = "2013-04-04";
const HAVANA: &str = "2013-10-17";
const LIBERTY: &str = "2015-10-15";
const NEWTON_ONE: &str = "2016-06-30";
const NEWTON_TWO: &str = "2016-10-06";
const OCATA: &str = "2017-02-22";
const ROCKY: &str = "2018-08-27";
const VICTORIA: &str = "2020-10-14";
const EPOXY: &str = "2025-04-04";

/// Nova's limit on device names (`NIC_NAME_LEN`): taps are `tap` + 11
/// characters of the port id.
const NIC_NAME_LEN: usize = 14;

/// The tap device of a port, named as Nova names it (`tap` + the first 11
/// characters of the port id); it is also the link id in `network_data.json`.
pub fn tap_name(port_id: &str) -> String {
    let mut name = String::from("tap");
    name.extend(port_id.chars().take(NIC_NAME_LEN - name.len()));
    name
}

/// Whether `version` (a date or `latest`) has what `since` introduced.
/// Versions are ISO dates, so they order as strings.
fn has(version: &str, since: &str) -> bool {
    version == "latest" || version >= since
}

/// The drive's files, by path relative to its root, for every version Nova
/// writes (`openstack/<version>/...` and `openstack/latest/...`).
pub fn files(spec: &GuestSpec) -> BTreeMap<String, Vec<u8>> {
    let user_data = user_data(spec);
    let network = json_bytes(&network_data(&spec.interfaces));
    let empty = json_bytes(&json!({}));
    let mut out = BTreeMap::new();
    for version in OPENSTACK_VERSIONS.iter().copied().chain(["latest"]) {
        let dir = format!("openstack/{version}");
        out.insert(format!("{dir}/meta_data.json"), json_bytes(&meta_data(spec, version)));
        if let Some(data) = &user_data {
            out.insert(format!("{dir}/user_data"), data.clone());
        }
        if has(version, HAVANA) {
            out.insert(format!("{dir}/vendor_data.json"), empty.clone());
        }
        if has(version, LIBERTY) {
            out.insert(format!("{dir}/network_data.json"), network.clone());
        }
        if has(version, NEWTON_TWO) {
            out.insert(format!("{dir}/vendor_data2.json"), empty.clone());
        }
    }
    out
}

fn json_bytes(v: &Value) -> Vec<u8> {
    // Serializing a Value (string keys only) cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

/// The user data as the guest gets it: the API stores it base64-encoded (as
/// Nova does), the drive holds the decoded bytes. Data that does not decode
/// is written as given, with a warning, rather than failing the boot.
fn user_data(spec: &GuestSpec) -> Option<Vec<u8>> {
    let raw = spec.user_data.as_ref()?;
    let compact: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match base64::engine::general_purpose::STANDARD.decode(compact) {
        Ok(data) => Some(data),
        Err(e) => {
            tracing::warn!(instance = %spec.uuid, error = %e, "user data is not base64; written as is");
            Some(raw.clone().into_bytes())
        }
    }
}

/// `meta_data.json` of one version, with the fields Nova gives it (no
/// `random_seed`: guests seed their RNG from virtio-rng or their own entropy).
/// `uuid` and `name` are top-level strings: the tiny guest reads them with sed.
fn meta_data(spec: &GuestSpec, version: &str) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("uuid".into(), json!(spec.uuid));
    if !spec.metadata.is_empty() {
        m.insert("meta".into(), Value::Object(spec.metadata.clone()));
    }
    if let Some(key) = spec.key_data.as_deref().filter(|k| !k.trim().is_empty()) {
        // A key without its pair's name (a spec built by hand) still reaches
        // the guest; cloud-init only uses the keys, not their names.
        let name = spec.key_name.as_deref().unwrap_or("default");
        m.insert("public_keys".into(), json!({ name: key }));
        m.insert("keys".into(), json!([{ "name": name, "type": "ssh", "data": key }]));
    }
    m.insert("hostname".into(), json!(spec.hostname));
    m.insert("name".into(), json!(spec.name));
    m.insert("launch_index".into(), json!(spec.launch_index));
    m.insert("availability_zone".into(), json!(spec.availability_zone));
    if has(version, LIBERTY) {
        m.insert("project_id".into(), json!(spec.project_id));
    }
    if has(version, NEWTON_ONE) {
        m.insert("devices".into(), Value::Array(devices(&spec.interfaces, version)));
    }
    if has(version, VICTORIA) {
        // No pinned CPUs: guests are not given dedicated host CPUs.
        m.insert("dedicated_cpus".into(), json!([]));
    }
    Value::Object(m)
}

/// Device role tagging: the tagged NICs, as Nova lists them. The PCI address
/// is left empty; the guest matches NICs by MAC address.
fn devices(interfaces: &[GuestInterface], version: &str) -> Vec<Value> {
    interfaces
        .iter()
        .filter_map(|i| {
            let tag = i.tag.as_deref()?;
            let mut d = json!({
                "type": "nic",
                "mac": i.mac_address,
                "bus": "pci",
                "address": "",
                "tags": [tag],
            });
            if has(version, ROCKY)
                && let Some(obj) = d.as_object_mut()
            {
                obj.insert("vf_trusted".into(), json!(false));
            }
            Some(d)
        })
        .collect()
}

/// `network_data.json`: one link per interface (a tap on a bridge), one
/// DHCP network per interface and IP version it has an address of.
fn network_data(interfaces: &[GuestInterface]) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    for i in interfaces {
        let link = tap_name(&i.port_id);
        links.push(json!({
            "id": link,
            "vif_id": i.port_id,
            "type": "bridge",
            "mtu": null,
            "ethernet_mac_address": i.mac_address,
        }));
        let has_v6 = i.ips.iter().any(|ip| ip.contains(':'));
        let has_v4 = i.ips.iter().any(|ip| !ip.contains(':'));
        for (v, present) in [(4, has_v4), (6, has_v6)] {
            if present {
                networks.push(json!({
                    "id": format!("network{}", networks.len()),
                    "type": format!("ipv{v}_dhcp"),
                    "link": link,
                    "network_id": i.network_id,
                }));
            }
        }
    }
    json!({ "links": links, "networks": networks, "services": [] })
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

    use super::*;

    #[test]
    fn tap_names_are_nova_length() {
        assert_eq!(tap_name("0123456789abcdef"), "tap0123456789a");
        assert_eq!(tap_name("0123456789abcdef").len(), NIC_NAME_LEN);
        assert_eq!(tap_name("short"), "tapshort");
    }

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
