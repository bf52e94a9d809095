//! Volume actions through the whole path (API -> volume host -> file
//! backend), on every reachable database: extend, bootable, readonly,
//! reset status, force delete, retype, image metadata, upload refusals,
//! and Nova's legacy attach cycle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cloud;

use cloud::{ADMIN, Cloud, MEMBER, OTHER, READER, Resp, clouds};
use reqwest::Method;
use serde_json::{Value, json};

const SERVER: &str = "11111111-2222-3333-4444-555555555555";
const SERVER2: &str = "11111111-2222-3333-4444-666666666666";

async fn act(c: &Cloud, id: &str, token: &str, mv: &str, body: Value) -> Resp {
    c.call(Method::POST, &format!("/v3/volumes/{id}/action"), token, Some(mv), Some(body)).await
}

async fn show(c: &Cloud, id: &str) -> Value {
    c.get(&format!("/v3/volumes/{id}"), ADMIN).await.body["volume"].clone()
}

async fn admin_metadata(c: &Cloud, id: &str) -> Value {
    let v = stratus_volume::store::volumes::get(&c.db.read, id).await.unwrap().unwrap();
    serde_json::from_str(&v.admin_metadata).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_grows_the_file() {
    for c in clouds().await {
        let b = c.backend;
        let id = c.volume(MEMBER, 1).await;
        for bad in [json!(0), json!("abc"), json!(null), json!(1), json!(-3), json!(1.5)] {
            let r = act(&c, &id, MEMBER, "3.0", json!({"os-extend": {"new_size": bad}})).await;
            assert_eq!(r.status, 400, "{b}: new_size {bad}: {}", r.text);
        }
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-extend": {}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r =
            act(&c, "00000000-0000-0000-0000-000000000000", MEMBER, "3.0", json!({"os-extend": {"new_size": 2}})).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        assert_eq!(act(&c, &id, OTHER, "3.0", json!({"os-extend": {"new_size": 2}})).await.status, 404, "{b}");
        assert_eq!(act(&c, &id, READER, "3.0", json!({"os-extend": {"new_size": 2}})).await.status, 403, "{b}");

        let r = act(&c, &id, MEMBER, "3.0", json!({"os-extend": {"new_size": "2"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert!(r.text.is_empty(), "{b}: extend answered a body: {}", r.text);
        let v = c.wait_status(&format!("/v3/volumes/{id}"), "volume", "available").await;
        assert_eq!(v["size"], 2, "{b}");
        let file = c.cfg.volumes_dir().join(format!("volume-{id}.raw"));
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 2 << 30, "{b}");

        // in-use: refused before 3.42, extended (and in-use again) from 3.42
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-attach": {"instance_uuid": SERVER, "mountpoint": "/dev/vdb"}}))
            .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-extend": {"new_size": 3}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert!(r.text.contains("Invalid volume"), "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.42", json!({"os-extend": {"new_size": 3}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let v = c.wait_status(&format!("/v3/volumes/{id}"), "volume", "in-use").await;
        assert_eq!(v["size"], 3, "{b}");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 3 << 30, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_over_quota_is_413() {
    let mut cfg = stratus_core::Config::default();
    cfg.volume.quota_gigabytes = 3;
    cfg.volume.quota_per_volume_gigabytes = 5;
    for c in cloud::clouds_with(cfg.clone()).await {
        let b = c.backend;
        let id = c.volume(MEMBER, 2).await;
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-extend": {"new_size": 6}})).await;
        assert_eq!(r.status, 413, "{b}: {}", r.text);
        assert!(r.text.contains("VolumeSizeExceedsLimit"), "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-extend": {"new_size": 4}})).await;
        assert_eq!(r.status, 413, "{b}: {}", r.text);
        assert!(r.text.contains("gigabytes"), "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["status"], "available", "{b}: a refused extend changed the status");
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-extend": {"new_size": 3}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let v = c.wait_status(&format!("/v3/volumes/{id}"), "volume", "available").await;
        assert_eq!(v["size"], 3, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootable_and_readonly() {
    for c in clouds().await {
        let b = c.backend;
        let id = c.volume(MEMBER, 1).await;
        for (flag, want) in [(json!(true), "true"), (json!("False"), "false"), (json!("yes"), "true")] {
            let r = act(&c, &id, MEMBER, "3.0", json!({"os-set_bootable": {"bootable": flag}})).await;
            assert_eq!(r.status, 200, "{b}: {}", r.text);
            assert_eq!(show(&c, &id).await["bootable"], want, "{b}");
        }
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-set_bootable": {"bootable": "maybe"}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-set_bootable": {}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert_eq!(
            act(&c, &id, READER, "3.0", json!({"os-set_bootable": {"bootable": true}})).await.status,
            403,
            "{b}"
        );

        let r = act(&c, &id, MEMBER, "3.0", json!({"os-update_readonly_flag": {"readonly": true}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(admin_metadata(&c, &id).await["readonly"], "True", "{b}");
        // a read-only volume is connected read-only, and refuses a read-write attach
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-initialize_connection": {"connector": {"host": "h1"}}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["connection_info"]["data"]["access_mode"], "ro", "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-attach": {"instance_uuid": SERVER, "mountpoint": "/dev/vdb"}}))
            .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-update_readonly_flag": {"readonly": "false"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(admin_metadata(&c, &id).await["readonly"], "False", "{b}");
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-update_readonly_flag": {"readonly": "x"}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        // only an available volume changes its flag
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-reserve": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-update_readonly_flag": {"readonly": true}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_status_and_force_delete_are_admin_only() {
    for c in clouds().await {
        let b = c.backend;
        let id = c.volume(MEMBER, 1).await;
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-reset_status": {"status": "error"}})).await;
        assert_eq!(r.status, 403, "{b}: {}", r.text);
        assert_eq!(
            act(&c, &id, OTHER, "3.0", json!({"os-reset_status": {"status": "error"}})).await.status,
            404,
            "{b}"
        );
        for body in [
            json!({"os-reset_status": {}}),
            json!({"os-reset_status": {"status": "bogus"}}),
            json!({"os-reset_status": {"attach_status": "half"}}),
            json!({"os-reset_status": {"migration_status": "flying"}}),
            json!({"os-reset_status": {"status": "in-use"}}),
            json!({"os-reset_status": {"status": "deleting"}}),
            json!({"os-reset_status": {"colour": "red"}}),
        ] {
            let r = act(&c, &id, ADMIN, "3.0", body.clone()).await;
            assert_eq!(r.status, 400, "{b}: {body}: {}", r.text);
        }
        for status in ["error", "available", "maintenance", "attaching"] {
            let r = act(&c, &id, ADMIN, "3.0", json!({"os-reset_status": {"status": status}})).await;
            assert_eq!(r.status, 202, "{b}: {}", r.text);
            assert_eq!(show(&c, &id).await["status"], status, "{b}");
        }
        let r = act(&c, &id, ADMIN, "3.0", json!({"os-reset_status": {"migration_status": "error"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["migration_status"], "error", "{b}");
        let r = act(&c, &id, ADMIN, "3.0", json!({"os-reset_status": {"migration_status": "none"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["migration_status"], Value::Null, "{b}");

        // force delete: admins only, from any status
        assert_eq!(act(&c, &id, MEMBER, "3.0", json!({"os-force_delete": {}})).await.status, 403, "{b}");
        let r = act(&c, &id, ADMIN, "3.0", json!({"os-force_delete": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        c.wait_gone(&format!("/v3/volumes/{id}")).await;
        assert!(!c.cfg.volumes_dir().join(format!("volume-{id}.raw")).exists(), "{b}: file left behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_status_and_bad_actions_are_400() {
    for c in clouds().await {
        let b = c.backend;
        let id = c.volume(MEMBER, 1).await;
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-frobnicate": {}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert_eq!(act(&c, "xxx", MEMBER, "3.0", json!({"os-detach": {}})).await.status, 404, "{b}");
        assert_eq!(
            act(&c, "00000000-0000-0000-0000-000000000000", MEMBER, "3.0", json!({"os-reserve": {}})).await.status,
            404,
            "{b}"
        );

        let r = act(&c, &id, MEMBER, "3.0", json!({"os-reserve": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["status"], "attaching", "{b}");
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-reserve": {}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert!(r.body["badRequest"]["message"].as_str().unwrap().starts_with("Invalid volume: "), "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-extend": {"new_size": 2}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.1", json!({"os-volume_upload_image": {"image_name": "img"}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-begin_detaching": {}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-unreserve": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["status"], "available", "{b}");
        // unreserving what is not reserved does nothing
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-unreserve": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["status"], "available", "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_attach_cycle() {
    for c in clouds().await {
        let b = c.backend;
        let id = c.volume(MEMBER, 1).await;
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-reserve": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let connector = json!({"host": "compute1", "initiator": "iqn.x", "enforce_multipath": false});
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-initialize_connection": {"connector": connector}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let info = &r.body["connection_info"];
        assert_eq!(info["driver_volume_type"], "file", "{b}: {}", r.text);
        assert!(
            info["data"]["device_path"].as_str().unwrap().ends_with(&format!("volume-{id}.raw")),
            "{b}: {}",
            r.text
        );
        assert_eq!(info["data"]["access_mode"], "rw", "{b}");
        assert_eq!(info["enforce_multipath"], false, "{b}");
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-initialize_connection": {}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);

        let r = act(&c, &id, MEMBER, "3.0", json!({"os-attach": {"mountpoint": "/dev/vdb"}})).await;
        assert_eq!(r.status, 400, "{b}: attach without server or host: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-attach": {"instance_uuid": "nope", "mountpoint": "/dev/vdb"}}))
            .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = act(
            &c,
            &id,
            MEMBER,
            "3.0",
            json!({"os-attach": {"instance_uuid": SERVER, "mountpoint": "/dev/vdb", "mode": "rw"}}),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let v = show(&c, &id).await;
        assert_eq!(v["status"], "in-use", "{b}");
        let a = &v["attachments"][0];
        assert_eq!(a["server_id"], SERVER, "{b}: {v}");
        assert_eq!(a["device"], "/dev/vdb", "{b}");
        assert_eq!(a["id"], id.as_str(), "{b}");
        assert_eq!(a["volume_id"], id.as_str(), "{b}");
        let attachment_id = a["attachment_id"].as_str().unwrap().to_string();
        assert_eq!(admin_metadata(&c, &id).await["attached_mode"], "rw", "{b}");
        // the same server again is no new attachment; another server is refused (not multiattach)
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-attach": {"instance_uuid": SERVER, "mountpoint": "/dev/vdb"}}))
            .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["attachments"].as_array().unwrap().len(), 1, "{b}");
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-attach": {"instance_uuid": SERVER2, "mountpoint": "/dev/vdc"}}))
            .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        // an attached volume is not deleted
        assert_eq!(c.delete(&format!("/v3/volumes/{id}"), MEMBER).await.status, 400, "{b}");

        let r = act(&c, &id, MEMBER, "3.0", json!({"os-begin_detaching": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["status"], "detaching", "{b}");
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-roll_detaching": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["status"], "in-use", "{b}");
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-begin_detaching": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-terminate_connection": {"connector": connector}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let r = act(
            &c,
            &id,
            MEMBER,
            "3.0",
            json!({"os-detach": {"attachment_id": "00000000-0000-0000-0000-00000000000x"}}),
        )
        .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-detach": {"attachment_id": attachment_id}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let v = show(&c, &id).await;
        assert_eq!(v["status"], "available", "{b}");
        assert!(v["attachments"].as_array().unwrap().is_empty(), "{b}: {v}");
        assert!(admin_metadata(&c, &id).await.get("attached_mode").is_none(), "{b}");

        // Tempest's force-detach: attached, reset to error, force-detached -> available
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-attach": {"instance_uuid": SERVER2, "mountpoint": "/dev/vdc"}}))
            .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let attachment_id = show(&c, &id).await["attachments"][0]["attachment_id"].as_str().unwrap().to_string();
        let r = act(&c, &id, ADMIN, "3.0", json!({"os-reset_status": {"status": "error"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let body = json!({"os-force_detach": {"connector": null, "attachment_id": attachment_id}});
        assert_eq!(act(&c, &id, MEMBER, "3.0", body.clone()).await.status, 403, "{b}");
        let r = act(&c, &id, ADMIN, "3.0", body).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let v = show(&c, &id).await;
        assert_eq!(v["status"], "available", "{b}");
        assert!(v["attachments"].as_array().unwrap().is_empty(), "{b}: {v}");

        // detach without an attachment id when there is one; plain detach of nothing
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-attach": {"host_name": "Bare Metal_1", "mountpoint": "/mnt"}}))
            .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["attachments"][0]["host_name"], "bare-metal-1", "{b}");
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-detach": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["status"], "available", "{b}");
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-detach": null})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retype_within_the_backend() {
    for c in clouds().await {
        let b = c.backend;
        let mk = |name: &str, specs: Value| json!({"volume_type": {"name": name, "extra_specs": specs}});
        let r = c.post("/v3/types", ADMIN, mk("gold", json!({}))).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let r = c.post("/v3/types", ADMIN, mk("elsewhere", json!({"volume_backend_name": "other"}))).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let r = c.post("/v3/types", ADMIN, mk("here", json!({"volume_backend_name": "file"}))).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let r = c.post("/v3/types", ADMIN, mk("shared", json!({"multiattach": "<is> True"}))).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let r = c
            .post(
                "/v3/types",
                ADMIN,
                json!({"volume_type": {"name": "secret", "os-volume-type-access:is_public": false}}),
            )
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);

        let id = c.volume(MEMBER, 1).await;
        let before = show(&c, &id).await;
        let r =
            act(&c, &id, MEMBER, "3.0", json!({"os-retype": {"new_type": "gold", "migration_policy": "never"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let after = show(&c, &id).await;
        assert_eq!(after["volume_type"], "gold", "{b}");
        assert_eq!(after["status"], "available", "{b}");
        assert_eq!(after["os-vol-host-attr:host"], before["os-vol-host-attr:host"], "{b}");
        assert_eq!(after["migration_status"], Value::Null, "{b}");
        // same type again, unknown type, a private type, another backend, a bad policy
        for (body, want) in [
            (json!({"os-retype": {"new_type": "gold"}}), 400),
            (json!({"os-retype": {"new_type": "nope"}}), 404),
            (json!({"os-retype": {"new_type": "secret"}}), 404),
            (json!({"os-retype": {"new_type": "elsewhere", "migration_policy": "never"}}), 400),
            (json!({"os-retype": {"new_type": "elsewhere", "migration_policy": "on-demand"}}), 400),
            (json!({"os-retype": {"new_type": "here", "migration_policy": "sometimes"}}), 400),
            (json!({"os-retype": {}}), 400),
        ] {
            let r = act(&c, &id, MEMBER, "3.0", body.clone()).await;
            assert_eq!(r.status, want, "{b}: {body}: {}", r.text);
        }
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-retype": {"new_type": "here"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["volume_type"], "here", "{b}");
        // to a multiattach type and back (available only)
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-retype": {"new_type": "shared", "migration_policy": "never"}}))
            .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["multiattach"], true, "{b}");
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-attach": {"instance_uuid": SERVER, "mountpoint": "/dev/vdb"}}))
            .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-retype": {"new_type": "gold"}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-detach": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-retype": {"new_type": "gold"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let v = show(&c, &id).await;
        assert_eq!(v["multiattach"], false, "{b}");
        assert_eq!(v["volume_type"], "gold", "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_metadata_set_show_unset() {
    for c in clouds().await {
        let b = c.backend;
        let id = c.volume(MEMBER, 1).await;
        let meta = json!({"image_id": "5137a025-3c5f-43c1-bc64-5f41270040a5", "image_name": "image", "kernel_id": "k", "ramdisk_id": "somedisk"});
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-set_image_metadata": {"metadata": meta}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body, json!({"metadata": meta}), "{b}");
        assert_eq!(
            c.get(&format!("/v3/volumes/{id}"), READER).await.body["volume"]["volume_image_metadata"],
            meta,
            "{b}"
        );
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-set_image_metadata": {"metadata": {"k": 1}}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert_eq!(
            act(&c, &id, READER, "3.0", json!({"os-set_image_metadata": {"metadata": {"a": "b"}}})).await.status,
            403,
            "{b}"
        );

        let r = act(&c, &id, MEMBER, "3.0", json!({"os-unset_image_metadata": {"key": "ramdisk_id"}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let r = act(&c, &id, MEMBER, "3.0", json!({"os-unset_image_metadata": {"key": "ramdisk_id"}})).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        let r = act(&c, &id, READER, "3.0", json!({"os-show_image_metadata": {}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let m = r.body["metadata"].as_object().unwrap();
        assert!(!m.contains_key("ramdisk_id"), "{b}: {}", r.text);
        assert_eq!(m["kernel_id"], "k", "{b}");
    }
}

/// Upload to an image needs an image service, which this harness does not
/// run: only the refusals are tested here (Tempest's test_volume_upload
/// covers the upload itself against a whole cloud).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_to_image_refuses_bad_input() {
    eprintln!("!!! upload_to_image: no image service in this harness; testing refusals only");
    for c in clouds().await {
        let b = c.backend;
        let id = c.volume(MEMBER, 1).await;
        for body in [
            json!({"os-volume_upload_image": {}}),
            json!({"os-volume_upload_image": {"image_name": ""}}),
            json!({"os-volume_upload_image": {"image_name": "i", "disk_format": "iso9660"}}),
            json!({"os-volume_upload_image": {"image_name": "i", "force": "perhaps"}}),
            json!({"os-volume_upload_image": {"image_name": "i", "visibility": "everyone"}}),
            json!({"os-volume_upload_image": {"image_name": "i", "colour": "red"}}),
        ] {
            let r = act(&c, &id, MEMBER, "3.1", body.clone()).await;
            assert_eq!(r.status, 400, "{b}: {body}: {}", r.text);
        }
        // visibility is a 3.1 parameter
        let r = act(
            &c,
            &id,
            MEMBER,
            "3.0",
            json!({"os-volume_upload_image": {"image_name": "i", "visibility": "private"}}),
        )
        .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        // public images are an admin's
        let r =
            act(&c, &id, MEMBER, "3.1", json!({"os-volume_upload_image": {"image_name": "i", "visibility": "public"}}))
                .await;
        assert_eq!(r.status, 403, "{b}: {}", r.text);
        assert_eq!(
            act(&c, &id, READER, "3.1", json!({"os-volume_upload_image": {"image_name": "i"}})).await.status,
            403,
            "{b}"
        );
        // the image service cannot be reached: 400, and the volume is available again
        let r =
            act(&c, &id, MEMBER, "3.1", json!({"os-volume_upload_image": {"image_name": "i", "disk_format": "qcow2"}}))
                .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert_eq!(show(&c, &id).await["status"], "available", "{b}");
    }
}
