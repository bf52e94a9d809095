//! A server booted from an image with an empty volume at `boot_index` 0:
//! Nova checks a volume's bootability only when no image is given (then the
//! volume is the root); with an image, the image is the root and the empty
//! volume is simply attached. Without an image the same volume is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, fresh_urls};

const MV: &str = "2.96";
const VMV: &str = "3.44";

async fn volume_of(c: &Cloud, tok: &str, id: &str) -> Value {
    let r = c.cinder(Method::GET, &format!("/volumes/{id}"), tok, VMV, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["volume"].clone()
}

async fn wait_volume_status(c: &Cloud, tok: &str, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = volume_of(c, tok, id).await;
        if v["status"] == status {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "volume {id} never {status}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_image_boot_takes_an_empty_volume_at_boot_index_zero() {
    let (backend, url) = fresh_urls().await.remove(0);
    let c = Cloud::start_compute(backend, &url, &["host-a"], |cfg| {
        cfg.compute.block_storage = true;
    })
    .await;
    let admin = c.admin_token().await;
    let (_, _, tok) = c.user_with_role(&admin, "member").await;
    let image = c.boot_image(&admin).await;

    let r = c.cinder(Method::POST, "/volumes", &tok, VMV, Some(json!({"volume": {"size": 1, "name": "empty"}}))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let vol = r.body["volume"]["id"].as_str().unwrap().to_string();
    let v = wait_volume_status(&c, &tok, &vol, "available").await;
    assert_eq!(v["bootable"], "false", "an empty volume is not bootable: {v}");
    let bdm = json!({"boot_index": 0, "uuid": vol, "source_type": "volume", "destination_type": "volume"});

    // no image: the volume would be the root, and it is not bootable
    let body = json!({"server": {"name": "no-image", "imageRef": "", "flavorRef": "1", "networks": "none",
        "block_device_mapping_v2": [bdm.clone()]}});
    let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["badRequest"]["message"], format!("Block Device {vol} is not bootable."), "{}", r.text);

    // with an image: accepted, built from the image, the volume attached
    let body = json!({"server": {"name": "image-and-volume", "imageRef": image, "flavorRef": "1",
        "networks": "none", "block_device_mapping_v2": [bdm]}});
    let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let server = r.body["server"]["id"].as_str().unwrap().to_string();
    let s = c.wait_server(&tok, &server, 60, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(s["image"]["id"], image.as_str(), "the image is the root: {s}");
    assert_eq!(s["os-extended-volumes:volumes_attached"][0]["id"], vol.as_str(), "{s}");
    let v = wait_volume_status(&c, &tok, &vol, "in-use").await;
    assert_eq!(v["attachments"][0]["server_id"], server.as_str(), "{v}");

    let r = c.nova(Method::DELETE, &format!("/servers/{server}"), &tok, MV, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    c.wait_server(&tok, &server, 30, |s| s.is_null()).await;
    wait_volume_status(&c, &tok, &vol, "available").await;
}

/// A volume made from an image keeps how the image boots (Cinder copies the image's
/// properties into the volume's image metadata): `kernel_id`, `ramdisk_id` and
/// `os_command_line`, so a server booted from the volume boots the same kernel.
#[tokio::test]
async fn a_volume_from_an_image_keeps_its_kernel_and_ramdisk() {
    let (backend, url) = fresh_urls().await.remove(0);
    let c = Cloud::start_compute(backend, &url, &["host-a"], |cfg| {
        cfg.compute.block_storage = true;
    })
    .await;
    let admin = c.admin_token().await;
    let (_, _, tok) = c.user_with_role(&admin, "member").await;
    let img = c
        .create_image(
            &admin,
            json!({"name": "split", "disk_format": "raw", "container_format": "bare", "visibility": "public",
                "kernel_id": "k-1", "ramdisk_id": "r-1", "os_command_line": "console=ttyS0", "other": "x"}),
        )
        .await;
    let id = img["id"].as_str().unwrap().to_string();
    let r = c.upload(&admin, &id, vec![7u8; 4096]).await;
    assert_eq!(r.status, 204, "{}", r.text);

    let r = c.cinder(Method::POST, "/volumes", &tok, VMV, Some(json!({"volume": {"size": 1, "imageRef": id}}))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let vol = r.body["volume"]["id"].as_str().unwrap().to_string();
    let v = wait_volume_status(&c, &tok, &vol, "available").await;
    let meta = &v["volume_image_metadata"];
    assert_eq!(meta["image_id"], id.as_str(), "{v}");
    assert_eq!(meta["kernel_id"], "k-1", "{v}");
    assert_eq!(meta["ramdisk_id"], "r-1", "{v}");
    assert_eq!(meta["os_command_line"], "console=ttyS0", "{v}");
}
