//! The QEMU driver's config drive: its files in Nova's layout and content,
//! and the ISO built of them (label, content, no leftovers).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{Value, json};
use stratus_virt::qemu::configdrive;
use stratus_virt::{GuestInterface, GuestSpec};

const UUID: &str = "3f0c6b1e-8d2a-4c55-9a7e-2b4f1d6e9c01";
const PORT_A: &str = "a1b2c3d4e5f6a7b8-0000-0000-000000000001";
const PORT_B: &str = "b1b2c3d4e5f6a7b8-0000-0000-000000000002";

fn spec() -> GuestSpec {
    let mut metadata = serde_json::Map::new();
    metadata.insert("role".into(), json!("web"));
    GuestSpec {
        uuid: UUID.into(),
        name: "web-1".into(),
        hostname: "web-1".into(),
        // base64 of "#!/bin/sh\necho hi\n", as the API stores it
        user_data: Some("IyEvYmluL3NoCmVjaG8gaGkK".into()),
        metadata,
        key_data: Some("ssh-ed25519 AAAAC3Nza me@host".into()),
        key_name: Some("mykey".into()),
        project_id: "proj-1".into(),
        availability_zone: "nova".into(),
        launch_index: 2,
        interfaces: vec![
            GuestInterface {
                port_id: PORT_A.into(),
                network_id: "net-a".into(),
                mac_address: "fa:16:3e:00:00:01".into(),
                tag: Some("frontend".into()),
                ips: vec!["10.0.0.5".into(), "fd00::5".into()],
                mtu: Some(1450),
            },
            GuestInterface {
                port_id: PORT_B.into(),
                network_id: "net-b".into(),
                mac_address: "fa:16:3e:00:00:02".into(),
                tag: None,
                ips: vec!["192.168.1.7".into()],
                mtu: None,
            },
        ],
        ..Default::default()
    }
}

fn json_of(files: &std::collections::BTreeMap<String, Vec<u8>>, path: &str) -> Value {
    let data = files.get(path).unwrap_or_else(|| panic!("no {path}"));
    serde_json::from_slice(data).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn files_hold_nova_metadata() {
    let f = configdrive::files(&spec());
    for dir in ["openstack/latest", "openstack/2018-08-27"] {
        for name in ["meta_data.json", "user_data", "network_data.json", "vendor_data.json", "vendor_data2.json"] {
            assert!(f.contains_key(&format!("{dir}/{name}")), "missing {dir}/{name}");
        }
    }
    assert!(f.keys().all(|k| k.starts_with("openstack/")), "{:?}", f.keys());

    let md = json_of(&f, "openstack/latest/meta_data.json");
    assert_eq!(md["uuid"], UUID);
    assert_eq!(md["name"], "web-1");
    assert_eq!(md["hostname"], "web-1");
    assert_eq!(md["launch_index"], 2);
    assert_eq!(md["availability_zone"], "nova");
    assert_eq!(md["project_id"], "proj-1");
    assert_eq!(md["meta"], json!({"role": "web"}));
    assert_eq!(md["public_keys"], json!({"mykey": "ssh-ed25519 AAAAC3Nza me@host"}));
    assert_eq!(md["keys"], json!([{"name": "mykey", "type": "ssh", "data": "ssh-ed25519 AAAAC3Nza me@host"}]));
    let devices = md["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "only the tagged NIC: {devices:?}");
    assert_eq!(devices[0]["type"], "nic");
    assert_eq!(devices[0]["bus"], "pci");
    assert_eq!(devices[0]["mac"], "fa:16:3e:00:00:01");
    assert_eq!(devices[0]["tags"], json!(["frontend"]));
    // The dated version has the same content as latest for these fields.
    let dated = json_of(&f, "openstack/2018-08-27/meta_data.json");
    assert_eq!(dated["uuid"], UUID);
    assert_eq!(dated["devices"], md["devices"]);

    assert_eq!(f["openstack/latest/user_data"], b"#!/bin/sh\necho hi\n");
    assert_eq!(json_of(&f, "openstack/latest/vendor_data.json"), json!({}));
    assert_eq!(json_of(&f, "openstack/latest/vendor_data2.json"), json!({}));

    let nd = json_of(&f, "openstack/latest/network_data.json");
    assert_eq!(
        nd["links"],
        json!([
            {"id": "tapa1b2c3d4e5f", "vif_id": PORT_A, "type": "bridge", "mtu": 1450,
             "ethernet_mac_address": "fa:16:3e:00:00:01"},
            {"id": "tapb1b2c3d4e5f", "vif_id": PORT_B, "type": "bridge", "mtu": null,
             "ethernet_mac_address": "fa:16:3e:00:00:02"},
        ])
    );
    assert_eq!(
        nd["networks"],
        json!([
            {"id": "network0", "type": "ipv4_dhcp", "link": "tapa1b2c3d4e5f", "network_id": "net-a"},
            {"id": "network1", "type": "ipv6_dhcp", "link": "tapa1b2c3d4e5f", "network_id": "net-a"},
            {"id": "network2", "type": "ipv4_dhcp", "link": "tapb1b2c3d4e5f", "network_id": "net-b"},
        ])
    );
    assert_eq!(nd["services"], json!([]));
}

#[test]
fn no_user_data_no_file_and_no_key_no_keys() {
    let s = GuestSpec { user_data: None, key_data: None, key_name: None, ..spec() };
    let f = configdrive::files(&s);
    assert!(!f.keys().any(|k| k.ends_with("/user_data")));
    let md = json_of(&f, "openstack/latest/meta_data.json");
    assert!(md.get("public_keys").is_none() && md.get("keys").is_none(), "{md}");
}

/// The tiny guest's parser (scripts/tiny-guest/build, `json_field`): nested
/// objects and arrays cut away, then the top-level string field.
#[test]
fn tiny_guest_parser_finds_uuid_and_name() {
    let f = configdrive::files(&spec());
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("meta_data.json");
    std::fs::write(&path, &f["openstack/latest/meta_data.json"]).unwrap();
    for (field, want) in [("uuid", UUID), ("name", "web-1")] {
        let script = format!(
            r#"tr '\n\r\t' '   ' < "$1" |
               sed -e 's/^[^{{]*{{//' -e 's/}}[^}}]*$//' \
                   -e ':a' -e 's/{{[^{{}}]*}}//g' -e 's/\[[^][]*\]//g' -e 'ta' |
               sed -n "s/.*\"{field}\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p""#
        );
        let out = std::process::Command::new("sh").arg("-c").arg(&script).arg("sh").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want, "field {field}");
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn build_makes_a_config_2_iso() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("disk.config");
    configdrive::build(&spec(), &dest).await.unwrap();
    assert_eq!(entries(tmp.path()), ["disk.config"], "temporary files left next to dest");

    // The primary volume descriptor (sector 16): "CD001", volume id at 40..72.
    let iso = std::fs::read(&dest).unwrap();
    let pvd = &iso[16 * 2048..17 * 2048];
    assert_eq!(&pvd[1..6], b"CD001");
    assert_eq!(String::from_utf8_lossy(&pvd[40..72]).trim_end(), "config-2");

    let out = tmp.path().join("out");
    let x = std::process::Command::new("xorriso")
        .arg("-indev")
        .arg(&dest)
        .args(["-osirrox", "on", "-extract", "/"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
    let md: Value =
        serde_json::from_slice(&std::fs::read(out.join("openstack/latest/meta_data.json")).unwrap()).unwrap();
    assert_eq!(md["uuid"], UUID);
    assert_eq!(std::fs::read(out.join("openstack/2018-08-27/user_data")).unwrap(), b"#!/bin/sh\necho hi\n");

    // Building again replaces the drive (a rebuild), still without leftovers.
    let renamed = GuestSpec { name: "web-2".into(), ..spec() };
    configdrive::build(&renamed, &dest).await.unwrap();
    assert_eq!(entries(tmp.path()), ["disk.config", "out"]);
    let out2 = tmp.path().join("out2");
    let x = std::process::Command::new("xorriso")
        .arg("-indev")
        .arg(&dest)
        .args(["-osirrox", "on", "-extract", "/openstack/latest/meta_data.json"])
        .arg(&out2)
        .output()
        .unwrap();
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
    let md: Value = serde_json::from_slice(&std::fs::read(&out2).unwrap()).unwrap();
    assert_eq!(md["name"], "web-2");
}

#[tokio::test]
async fn build_into_a_missing_directory_fails_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("nope").join("disk.config");
    let err = configdrive::build(&spec(), &dest).await.unwrap_err();
    assert!(format!("{err:#}").contains("nope"), "{err:#}");
    assert!(!dest.exists());
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
}
