//! `/openstack/...`: the OpenStack metadata format, the files of the config
//! drive ([`stratus_virt::metadata::openstack_files`], so both say the same)
//! plus `password`.

use stratus_core::Config;
use stratus_virt::metadata::{
    self as md, GRIZZLY, META_DATA, OPENSTACK_VERSIONS, USER_DATA, VENDOR_DATA, VENDOR_DATA2,
};

use super::{Answer, MetadataError};
use crate::store::instances::Instance;

pub const PASSWORD: &str = "password";

/// `/openstack`: the versions up to today (Nova hides future ones), then `latest`.
pub fn versions_listing(today: &str) -> String {
    let mut v: Vec<&str> = OPENSTACK_VERSIONS.iter().copied().filter(|v| *v <= today).collect();
    v.push("latest");
    v.join("\n")
}

/// What `tokens` (the path after `/openstack`) lead to for `inst`.
pub fn lookup(inst: &Instance, cfg: &Config, tokens: &[String]) -> Result<Answer, MetadataError> {
    let Some((version, rest)) = tokens.split_first() else {
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        return Ok(Answer::Text(versions_listing(&today)));
    };
    let version = md::openstack_version(version).ok_or_else(MetadataError::not_found)?;
    let spec = crate::manager::guest_spec(inst, &cfg.compute.default_availability_zone);
    let files = md::openstack_files(&spec, version);
    if rest.is_empty() {
        let mut names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        if md::has(version, GRIZZLY) {
            // Nova lists it after the meta data and the user data
            let at = names.iter().position(|n| *n == USER_DATA).unwrap_or(0) + 1;
            names.insert(at, PASSWORD);
        }
        return Ok(Answer::Text(names.join("\n")));
    }
    let name = rest.join("/");
    if name == PASSWORD {
        return if md::has(version, GRIZZLY) { Ok(Answer::Password) } else { Err(MetadataError::not_found()) };
    }
    let (name, data) = files.into_iter().find(|(n, _)| *n == name).ok_or_else(MetadataError::not_found)?;
    // Nova answers JSON as such only for these; network data and user data go as text
    Ok(match name {
        META_DATA | VENDOR_DATA | VENDOR_DATA2 => Answer::Json(data),
        _ => Answer::Data(data),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    pub fn instance() -> Instance {
        Instance {
            uuid: "3f0c6b1e-8d2a-4c55-9a7e-2b4f1d6e9c01".into(),
            display_name: "web-1".into(),
            display_description: None,
            project_id: "p1".into(),
            user_id: "u1".into(),
            host: None,
            node: None,
            image_ref: "a1b2c3d4-0000-0000-0000-000000000000".into(),
            flavor_id: "1".into(),
            vcpus: 1,
            memory_mb: 512,
            root_gb: 1,
            ephemeral_gb: 0,
            flavor: r#"{"name": "m1.tiny", "swap": 0}"#.into(),
            old_flavor: None,
            new_flavor: None,
            vm_state: "active".into(),
            task_state: None,
            power_state: 1,
            availability_zone: None,
            key_name: Some("k".into()),
            key_data: Some("ssh-ed25519 AAAA me".into()),
            user_data: None,
            metadata: "{}".into(),
            system_metadata: "{}".into(),
            config_drive: false,
            access_ip_v4: None,
            access_ip_v6: None,
            locked: false,
            locked_by: None,
            locked_reason: None,
            hostname: "web-1".into(),
            launch_index: 0,
            reservation_id: "r-abcdefgh".into(),
            progress: 0,
            request_spec: "{}".into(),
            block_devices: "[]".into(),
            launched_at: None,
            terminated_at: None,
            deleted: false,
            created_at: 0,
            updated_at: 0,
            deleted_at: None,
        }
    }

    fn at(inst: &Instance, path: &[&str]) -> Result<Answer, MetadataError> {
        let tokens: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        lookup(inst, &Config::default(), &tokens)
    }

    #[test]
    fn future_versions_are_hidden() {
        assert_eq!(versions_listing("2016-01-01"), "2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\nlatest");
    }

    #[test]
    fn version_directories_list_what_the_version_has() {
        let mut inst = instance();
        let Answer::Text(t) = at(&inst, &["2012-08-10"]).unwrap() else { panic!() };
        assert_eq!(t, "meta_data.json");
        let Answer::Text(t) = at(&inst, &["latest"]).unwrap() else { panic!() };
        assert_eq!(t, "meta_data.json\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json");
        inst.user_data = Some("aGk=".into());
        let Answer::Text(t) = at(&inst, &["2013-04-04"]).unwrap() else { panic!() };
        assert_eq!(t, "meta_data.json\nuser_data\npassword");
        assert_eq!(at(&inst, &["latest", "user_data"]).unwrap(), Answer::Data(b"hi".to_vec()));
        assert_eq!(at(&inst, &["2013-04-04", "password"]).unwrap(), Answer::Password);
    }

    #[test]
    fn unknown_versions_and_files_are_404() {
        let inst = instance();
        for path in [
            &["2009-04-04"][..],
            &["latest", "user_data"],
            &["2012-08-10", "password"],
            &["2013-04-04", "vendor_data.json"],
            &["latest", "nope"],
            &["latest", "content", "0000"],
        ] {
            assert_eq!(at(&inst, path).unwrap_err().status, 404, "{path:?}");
        }
    }

    #[test]
    fn meta_data_is_json() {
        let Answer::Json(b) = at(&instance(), &["latest", "meta_data.json"]).unwrap() else { panic!() };
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["uuid"], "3f0c6b1e-8d2a-4c55-9a7e-2b4f1d6e9c01");
        assert_eq!(v["public_keys"]["k"], "ssh-ed25519 AAAA me");
        assert_eq!(v["availability_zone"], "nova");
    }
}
