//! What a guest learns about itself, in Nova's OpenStack metadata format
//! (`openstack/<version>/meta_data.json`, `network_data.json`, vendor data,
//! `user_data`). One source for both ways guests read it: the QEMU driver's
//! config drive ([`crate::qemu::configdrive`]) and the compute metadata API
//! (`169.254.169.254`), so a guest sees the same content either way.

use serde_json::{Value, json};

use crate::{GuestInterface, GuestSpec};

/// The OpenStack metadata versions, oldest first (Nova's
/// `OPENSTACK_VERSIONS`); `latest` means the newest.
pub const OPENSTACK_VERSIONS: &[&str] =
    &[FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA, EPOXY];

pub const FOLSOM: &str = "2012-08-10";
/// `password` appears.
pub const GRIZZLY: &str = "2013-04-04";
/// `vendor_data.json` appears.
pub const HAVANA: &str = "2013-10-17";
/// `network_data.json` and `project_id` appear.
pub const LIBERTY: &str = "2015-10-15";
/// `devices` (device role tagging) appears.
pub const NEWTON_ONE: &str = "2016-06-30";
/// `vendor_data2.json` appears.
pub const NEWTON_TWO: &str = "2016-10-06";
pub const OCATA: &str = "2017-02-22";
/// `vf_trusted` of NICs appears.
pub const ROCKY: &str = "2018-08-27";
/// `dedicated_cpus` appears.
pub const VICTORIA: &str = "2020-10-14";
pub const EPOXY: &str = "2025-04-04";

pub const META_DATA: &str = "meta_data.json";
pub const USER_DATA: &str = "user_data";
pub const VENDOR_DATA: &str = "vendor_data.json";
pub const VENDOR_DATA2: &str = "vendor_data2.json";
pub const NETWORK_DATA: &str = "network_data.json";

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

/// The version a request names, `latest` resolved to the newest; `None`
/// for a version Nova does not know.
pub fn openstack_version(requested: &str) -> Option<&'static str> {
    if requested == "latest" {
        return OPENSTACK_VERSIONS.last().copied();
    }
    OPENSTACK_VERSIONS.iter().copied().find(|v| *v == requested)
}

/// Whether `version` (a date or `latest`) has what `since` introduced.
/// Versions are ISO dates, so they order as strings.
pub fn has(version: &str, since: &str) -> bool {
    version == "latest" || version >= since
}

/// The files of one version's directory (`openstack/<version>/`), by name,
/// in Nova's order; `version` is a known date or `latest`. `user_data` only
/// when the server has some. (The metadata API adds `password`, which is not
/// on a config drive.)
pub fn openstack_files(spec: &GuestSpec, version: &str) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![(META_DATA, json_bytes(&meta_data(spec, version)))];
    if let Some(data) = user_data(spec) {
        out.push((USER_DATA, data));
    }
    if has(version, HAVANA) {
        out.push((VENDOR_DATA, json_bytes(&vendor_data())));
    }
    if has(version, LIBERTY) {
        out.push((NETWORK_DATA, json_bytes(&network_data(&spec.interfaces))));
    }
    if has(version, NEWTON_TWO) {
        out.push((VENDOR_DATA2, json_bytes(&vendor_data2())));
    }
    out
}

pub fn json_bytes(v: &Value) -> Vec<u8> {
    // Serializing a Value (string keys only) cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

/// The user data as the guest gets it: the API stores it base64-encoded (as
/// Nova does), the guest gets the decoded bytes. Data that does not decode
/// is given as stored, with a warning, rather than failing the boot.
pub fn user_data(spec: &GuestSpec) -> Option<Vec<u8>> {
    use base64::Engine;
    let raw = spec.user_data.as_ref()?;
    let compact: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match base64::engine::general_purpose::STANDARD.decode(compact) {
        Ok(data) => Some(data),
        Err(e) => {
            tracing::warn!(instance = %spec.uuid, error = %e, "user data is not base64; given as is");
            Some(raw.clone().into_bytes())
        }
    }
}

/// Static vendor data: none is configured, so `{}` (Nova's `StaticJSON`
/// provider without a file).
pub fn vendor_data() -> Value {
    json!({})
}

/// Dynamic vendor data: no providers, so `{}`.
pub fn vendor_data2() -> Value {
    json!({})
}

/// `meta_data.json` of one version, with the fields Nova gives it (no
/// `random_seed`: guests seed their RNG from virtio-rng or their own entropy).
/// `uuid` and `name` are top-level strings: the tiny guest reads them with sed.
pub fn meta_data(spec: &GuestSpec, version: &str) -> Value {
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
pub fn network_data(interfaces: &[GuestInterface]) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    for i in interfaces {
        let link = tap_name(&i.port_id);
        links.push(json!({
            "id": link,
            "vif_id": i.port_id,
            "type": "bridge",
            "mtu": i.mtu,
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
    fn versions_resolve_and_gate_files() {
        assert_eq!(openstack_version("latest"), Some(EPOXY));
        assert_eq!(openstack_version("2013-04-04"), Some(GRIZZLY));
        assert_eq!(openstack_version("2009-04-04"), None);
        let spec = GuestSpec { uuid: "u".into(), user_data: Some("aGk=".into()), ..Default::default() };
        let names = |v| openstack_files(&spec, v).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(names(FOLSOM), [META_DATA, USER_DATA]);
        assert_eq!(names(HAVANA), [META_DATA, USER_DATA, VENDOR_DATA]);
        assert_eq!(names("latest"), [META_DATA, USER_DATA, VENDOR_DATA, NETWORK_DATA, VENDOR_DATA2]);
        assert_eq!(user_data(&spec).unwrap(), b"hi");
    }
}
