//! Compute with block storage: Nova's os-volume_attachments API over a
//! real volume service (attach: the volume in-use, attached to the server,
//! connected in the guest; list and show in Nova's view; detach: available
//! again), volumes in the server view, delete_on_termination on server
//! delete, boot from volume (from an image, or the user's volume) and a
//! failed volume-backed build leaving no volume behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, fresh_urls};
use stratus_virt::fake::FakeDriver;

const MV: &str = "2.96";
const VMV: &str = "3.44";

async fn cloud() -> Cloud {
    let (backend, url) = fresh_urls().await.remove(0);
    Cloud::start_compute(backend, &url, &["host-a"], |c| {
        c.compute.block_storage = true;
        c.compute.quota_instances = -1;
    })
    .await
}

fn driver(c: &Cloud) -> &FakeDriver {
    let parts = c.compute.as_ref().unwrap();
    parts.hosts[0].driver.as_any().downcast_ref::<FakeDriver>().unwrap()
}

async fn volume_of(c: &Cloud, tok: &str, id: &str) -> Option<Value> {
    let r = c.cinder(Method::GET, &format!("/volumes/{id}"), tok, VMV, None).await;
    if r.status == 404 {
        return None;
    }
    assert_eq!(r.status, 200, "{}", r.text);
    Some(r.body["volume"].clone())
}

/// Poll a volume until `done(volume or None)`; panics after 30 s.
async fn wait_volume(c: &Cloud, tok: &str, id: &str, done: impl Fn(Option<&Value>) -> bool) -> Option<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = volume_of(c, tok, id).await;
        if done(v.as_ref()) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "volume {id} did not get there: {v:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn new_volume(c: &Cloud, tok: &str, name: &str) -> String {
    let r = c.cinder(Method::POST, "/volumes", tok, VMV, Some(json!({"volume": {"size": 1, "name": name}}))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["volume"]["id"].as_str().unwrap().to_string();
    wait_volume(c, tok, &id, |v| v.is_some_and(|v| v["status"] == "available")).await;
    id
}

async fn settled(c: &Cloud, tok: &str, id: &str) -> Value {
    c.wait_server(tok, id, 60, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await
}

async fn boot(c: &Cloud, tok: &str, image: &str, name: &str) -> String {
    let body = json!({"server": {"name": name, "imageRef": image, "flavorRef": "1", "networks": "none"}});
    let r = c.nova(Method::POST, "/servers", tok, MV, Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    assert_eq!(settled(c, tok, &id).await["status"], "ACTIVE");
    id
}

async fn attachments(c: &Cloud, tok: &str, mv: &str, server: &str) -> Vec<Value> {
    let r = c.nova(Method::GET, &format!("/servers/{server}/os-volume_attachments"), tok, mv, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["volumeAttachments"].as_array().unwrap().clone()
}

async fn delete_server(c: &Cloud, tok: &str, id: &str) {
    let r = c.nova(Method::DELETE, &format!("/servers/{id}"), tok, MV, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    c.wait_server(tok, id, 30, |s| s.is_null()).await;
}

#[tokio::test]
async fn attach_list_show_detach_and_delete_on_termination() {
    let c = cloud().await;
    let admin = c.admin_token().await;
    let (_, _, tok) = c.user_with_role(&admin, "member").await;
    let image = c.boot_image(&admin).await;
    let server = boot(&c, &tok, &image, "vm").await;
    let vol = new_volume(&c, &tok, "data").await;

    // attach: the device is the next free one, the volume in-use and attached to the server
    let r = c
        .nova(
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            &tok,
            "2.1",
            Some(json!({"volumeAttachment": {"volumeId": vol}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let a = &r.body["volumeAttachment"];
    assert_eq!(a["device"], "/dev/vdb", "{a}");
    assert_eq!(
        (a["id"].as_str(), a["volumeId"].as_str(), a["serverId"].as_str()),
        (Some(vol.as_str()), Some(vol.as_str()), Some(server.as_str()))
    );
    assert_eq!(a.as_object().unwrap().len(), 4, "Nova's 2.1 view: {a}");
    let v = volume_of(&c, &tok, &vol).await.unwrap();
    assert_eq!(v["status"], "in-use", "{v}");
    assert_eq!(v["attachments"][0]["server_id"], server.as_str(), "{v}");
    assert_eq!(driver(&c).volumes(&server).iter().map(|g| g.volume_id.clone()).collect::<Vec<_>>(), vec![vol.clone()]);

    // list and show, by microversion
    let l = attachments(&c, &tok, "2.89", &server).await;
    assert_eq!(l.len(), 1);
    assert!(l[0].get("id").is_none() && l[0]["attachment_id"].is_string() && l[0]["bdm_uuid"].is_string(), "{}", l[0]);
    assert_eq!(l[0]["delete_on_termination"], false);
    assert!(l[0]["tag"].is_null());
    let s = c.nova(Method::GET, &format!("/servers/{server}/os-volume_attachments/{vol}"), &tok, MV, None).await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert_eq!(s.body["volumeAttachment"]["device"], "/dev/vdb");
    let missing = c
        .nova(Method::GET, &format!("/servers/{server}/os-volume_attachments/{}", uuid::Uuid::new_v4()), &tok, MV, None)
        .await;
    assert_eq!(missing.status, 404);
    let shown = c.nova(Method::GET, &format!("/servers/{server}"), &tok, MV, None).await;
    assert_eq!(
        shown.body["server"]["os-extended-volumes:volumes_attached"],
        json!([{"id": vol, "delete_on_termination": false}])
    );
    let shown = c.nova(Method::GET, &format!("/servers/{server}"), &tok, "2.1", None).await;
    assert_eq!(shown.body["server"]["os-extended-volumes:volumes_attached"], json!([{"id": vol}]));

    // attaching it again, or a volume that does not exist, is refused as Nova does
    let again = c
        .nova(
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            &tok,
            MV,
            Some(json!({"volumeAttachment": {"volumeId": vol}})),
        )
        .await;
    assert_eq!(again.status, 400, "{}", again.text);
    let nope = c
        .nova(
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            &tok,
            MV,
            Some(json!({"volumeAttachment": {"volumeId": uuid::Uuid::new_v4().to_string()}})),
        )
        .await;
    assert_eq!(nope.status, 404, "{}", nope.text);

    // detach: 202, then the volume is available and the server has none
    let d = c.nova(Method::DELETE, &format!("/servers/{server}/os-volume_attachments/{vol}"), &tok, MV, None).await;
    assert_eq!(d.status, 202, "{}", d.text);
    wait_volume(&c, &tok, &vol, |v| v.is_some_and(|v| v["status"] == "available")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !attachments(&c, &tok, MV, &server).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the mapping stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(driver(&c).volumes(&server).is_empty());
    let d = c.nova(Method::DELETE, &format!("/servers/{server}/os-volume_attachments/{vol}"), &tok, MV, None).await;
    assert_eq!(d.status, 404, "{}", d.text);

    // attached with delete_on_termination (2.79): the server's delete takes the volume with it
    let r = c
        .nova(
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            &tok,
            MV,
            Some(json!({"volumeAttachment": {"volumeId": vol, "delete_on_termination": true, "tag": "db"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["volumeAttachment"]["tag"], "db");
    assert_eq!(r.body["volumeAttachment"]["device"], "/dev/vdb", "the freed device is reused: {}", r.text);
    assert_eq!(r.body["volumeAttachment"]["delete_on_termination"], true);
    let keep = new_volume(&c, &tok, "keep").await;
    let r = c
        .nova(
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            &tok,
            MV,
            Some(json!({"volumeAttachment": {"volumeId": keep}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["volumeAttachment"]["device"], "/dev/vdc", "{}", r.text);
    assert_eq!(volume_of(&c, &tok, &keep).await.unwrap()["status"], "in-use");
    delete_server(&c, &tok, &server).await;
    wait_volume(&c, &tok, &vol, |v| v.is_none()).await;
    wait_volume(&c, &tok, &keep, |v| v.is_some_and(|v| v["status"] == "available")).await;
}

fn bfv(name: &str, bdm: Value) -> Value {
    json!({"server": {"name": name, "imageRef": "", "flavorRef": "1", "networks": "none",
        "block_device_mapping_v2": [bdm]}})
}

#[tokio::test]
async fn boot_from_volume_from_an_image_and_from_a_volume() {
    let c = cloud().await;
    let admin = c.admin_token().await;
    let (_, _, tok) = c.user_with_role(&admin, "member").await;
    let image = c.boot_image(&admin).await;

    // from the image: compute makes the volume (the user's), attached at boot index 0
    let body = bfv(
        "bfv-image",
        json!({"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume",
            "volume_size": 1, "delete_on_termination": true}),
    );
    let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let server = r.body["server"]["id"].as_str().unwrap().to_string();
    let s = settled(&c, &tok, &server).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(s["image"], "", "a volume-backed server shows no image: {s}");
    let attached = s["os-extended-volumes:volumes_attached"].as_array().unwrap().clone();
    assert_eq!(attached.len(), 1, "{s}");
    assert_eq!(attached[0]["delete_on_termination"], true);
    let vol = attached[0]["id"].as_str().unwrap().to_string();
    let v = volume_of(&c, &tok, &vol).await.expect("the boot volume is the user's");
    assert_eq!(v["status"], "in-use", "{v}");
    assert_eq!(v["attachments"][0]["server_id"], server.as_str());
    let l = attachments(&c, &tok, MV, &server).await;
    assert_eq!(l[0]["device"], "/dev/vda", "{l:?}");
    assert_eq!(driver(&c).volumes(&server).len(), 1);
    // the boot volume cannot be detached
    let d = c.nova(Method::DELETE, &format!("/servers/{server}/os-volume_attachments/{vol}"), &tok, MV, None).await;
    assert_eq!(d.status, 400, "{}", d.text);
    delete_server(&c, &tok, &server).await;
    wait_volume(&c, &tok, &vol, |v| v.is_none()).await;

    // from the user's volume, kept when the server goes; a blank volume is
    // not bootable until it is marked so (Nova's InvalidBDMVolumeNotBootable)
    let mine = new_volume(&c, &tok, "root").await;
    let body = bfv(
        "bfv-volume",
        json!({"boot_index": 0, "uuid": mine, "source_type": "volume", "destination_type": "volume"}),
    );
    let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body.clone())).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("is not bootable"), "{}", r.text);
    let b = c
        .cinder(
            Method::POST,
            &format!("/volumes/{mine}/action"),
            &tok,
            VMV,
            Some(json!({"os-set_bootable": {"bootable": true}})),
        )
        .await;
    assert_eq!(b.status, 200, "{}", b.text);
    let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let server = r.body["server"]["id"].as_str().unwrap().to_string();
    let s = settled(&c, &tok, &server).await;
    assert_eq!(s["status"], "ACTIVE", "{s}");
    assert_eq!(s["os-extended-volumes:volumes_attached"], json!([{"id": mine, "delete_on_termination": false}]));
    assert_eq!(volume_of(&c, &tok, &mine).await.unwrap()["status"], "in-use");
    // a volume in use cannot boot another server
    let body =
        bfv("bfv-busy", json!({"boot_index": 0, "uuid": mine, "source_type": "volume", "destination_type": "volume"}));
    let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    delete_server(&c, &tok, &server).await;
    wait_volume(&c, &tok, &mine, |v| v.is_some_and(|v| v["status"] == "available")).await;

    // a destination that is neither local nor a volume is refused, in any entry
    let mut body = bfv(
        "bfv-bad-destination",
        json!({"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "local"}),
    );
    body["server"]["imageRef"] = json!(image);
    body["server"]["block_device_mapping_v2"]
        .as_array_mut()
        .unwrap()
        .push(json!({"source_type": "volume", "uuid": mine, "destination_type": "invalid"}));
    let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("destination_type"), "{}", r.text);

    // an image volume without a size is refused
    let body = bfv(
        "bfv-nosize",
        json!({"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume"}),
    );
    let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn a_failed_volume_backed_build_leaves_no_volume() {
    let c = cloud().await;
    let admin = c.admin_token().await;
    let (_, _, tok) = c.user_with_role(&admin, "member").await;
    let image = c.boot_image(&admin).await;
    let conductor = c.compute.as_ref().unwrap().conductor.clone();
    // failing at `build_on_hosts` unwinds a made volume; at `finish`, one the host had connected
    for step in ["build_on_hosts", "finish"] {
        *conductor.faults.lock().unwrap() =
            stratus_saga::Faults { fail_action: Some(step), repeat_actions: true, repeat_undos: true };
        let body = bfv(
            &format!("bfv-fail-{step}"),
            json!({"boot_index": 0, "uuid": image, "source_type": "image", "destination_type": "volume",
                "volume_size": 1}),
        );
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let server = r.body["server"]["id"].as_str().unwrap().to_string();
        // at `finish` the server is ACTIVE before the unwind makes it ERROR
        c.wait_server(&tok, &server, 60, |s| s["status"] == "ERROR").await;
        // the volume made for it is gone (the project has none left)
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let l = c.cinder(Method::GET, "/volumes/detail", &tok, VMV, None).await;
            assert_eq!(l.status, 200, "{}", l.text);
            let left: Vec<&Value> = l.body["volumes"].as_array().unwrap().iter().collect();
            if left.is_empty() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{step}: volumes left: {left:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let s = c.nova(Method::GET, &format!("/servers/{server}"), &tok, MV, None).await;
        assert_eq!(s.body["server"]["os-extended-volumes:volumes_attached"], json!([]), "{step}: {}", s.text);
        assert!(driver(&c).volumes(&server).is_empty());
        *conductor.faults.lock().unwrap() = Default::default();
        delete_server(&c, &tok, &server).await;
    }
}

#[tokio::test]
async fn the_os_volumes_and_os_snapshots_proxies() {
    let c = cloud().await;
    let admin = c.admin_token().await;
    let (_, _, tok) = c.user_with_role(&admin, "member").await;
    const PMV: &str = "2.35";

    // create in Nova's words: 200, the old view, a Location
    let body = json!({"volume": {"size": "1", "display_name": "old", "display_description": "d",
        "metadata": {"Type": "work"}}});
    let r = c.nova(Method::POST, "/os-volumes", &tok, PMV, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.body["volume"].clone();
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!((v["displayName"].as_str(), v["size"].as_i64()), (Some("old"), Some(1)), "{v}");
    assert_eq!(v["attachments"], json!([{}]), "{v}");
    assert_eq!(v["metadata"], json!({"Type": "work"}));
    for k in ["availabilityZone", "createdAt", "displayDescription", "volumeType", "snapshotId", "status"] {
        assert!(v.get(k).is_some(), "{k} missing: {v}");
    }
    wait_volume(&c, &tok, &id, |v| v.is_some_and(|v| v["status"] == "available")).await;
    let s = c.nova(Method::GET, &format!("/os-volumes/{id}"), &tok, PMV, None).await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert_eq!(s.body["volume"]["status"], "available");
    for path in ["/os-volumes", "/os-volumes/detail"] {
        let l = c.nova(Method::GET, path, &tok, PMV, None).await;
        assert_eq!(l.status, 200, "{}", l.text);
        assert!(l.body["volumes"].as_array().unwrap().iter().any(|x| x["id"] == id.as_str()), "{}", l.text);
    }
    let l = c.nova(Method::GET, "/os-volumes/detail?limit=0", &tok, PMV, None).await;
    assert_eq!(l.body["volumes"], json!([]));

    // refusals: a bad or missing size, an unknown volume, past 2.35
    for bad in [json!({"volume": {}}), json!({"volume": {"size": 0}}), json!({"volume": {"size": "#$%"}})] {
        let r = c.nova(Method::POST, "/os-volumes", &tok, PMV, Some(bad)).await;
        assert_eq!(r.status, 400, "{}", r.text);
    }
    let missing = uuid::Uuid::new_v4();
    assert_eq!(c.nova(Method::GET, &format!("/os-volumes/{missing}"), &tok, PMV, None).await.status, 404);
    assert_eq!(c.nova(Method::DELETE, &format!("/os-volumes/{missing}"), &tok, PMV, None).await.status, 404);
    assert_eq!(c.nova(Method::GET, &format!("/os-volumes/{id}"), &tok, "2.36", None).await.status, 404);

    // snapshots
    let r = c
        .nova(
            Method::POST,
            "/os-snapshots",
            &tok,
            PMV,
            Some(json!({"snapshot": {"volume_id": id, "display_name": "snap"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let snap = r.body["snapshot"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["snapshot"]["volumeId"], id.as_str());
    assert_eq!(r.body["snapshot"].as_object().unwrap().len(), 7, "{}", r.text);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.nova(Method::GET, &format!("/os-snapshots/{snap}"), &tok, PMV, None).await;
        assert_eq!(s.status, 200, "{}", s.text);
        assert_eq!(s.body["snapshot"]["displayName"], "snap");
        if s.body["snapshot"]["status"] == "available" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", s.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let l = c.nova(Method::GET, "/os-snapshots/detail", &tok, PMV, None).await;
    assert!(l.body["snapshots"].as_array().unwrap().iter().any(|x| x["id"] == snap.as_str()), "{}", l.text);
    let d = c.nova(Method::DELETE, &format!("/os-snapshots/{snap}"), &tok, PMV, None).await;
    assert_eq!(d.status, 202, "{}", d.text);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while c.nova(Method::GET, &format!("/os-snapshots/{snap}"), &tok, PMV, None).await.status != 404 {
        assert!(std::time::Instant::now() < deadline, "the snapshot stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // delete: 202, then gone
    let d = c.nova(Method::DELETE, &format!("/os-volumes/{id}"), &tok, PMV, None).await;
    assert_eq!(d.status, 202, "{}", d.text);
    wait_volume(&c, &tok, &id, |v| v.is_none()).await;
}

#[tokio::test]
async fn assisted_volume_snapshots_need_an_attached_volume_and_the_service_role() {
    let c = cloud().await;
    let admin = c.admin_token().await;
    let (_, _, tok) = c.user_with_role(&admin, "member").await;
    let (_, _, service) = c.user_with_role(&admin, "service").await;
    let image = c.boot_image(&admin).await;
    let server = boot(&c, &tok, &image, "vm").await;
    let vol = new_volume(&c, &tok, "data").await;
    let create = |volume: &str| {
        json!({"snapshot": {"volume_id": volume, "create_info": {"snapshot_id": uuid::Uuid::new_v4().to_string(),
            "type": "qcow2", "new_file": "new_file"}}})
    };
    let path = "/os-assisted-volume-snapshots";
    // not attached anywhere: 400; a member may not ask
    let r = c.nova(Method::POST, path, &service, MV, Some(create(&vol))).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = c.nova(Method::POST, path, &tok, MV, Some(create(&vol))).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let mut bad = create(&vol);
    bad["snapshot"]["create_info"]["type"] = json!("raw");
    assert_eq!(c.nova(Method::POST, path, &service, MV, Some(bad)).await.status, 400);

    let r = c
        .nova(
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            &tok,
            MV,
            Some(json!({"volumeAttachment": {"volumeId": vol}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c.nova(Method::POST, path, &service, MV, Some(create(&vol))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"snapshot": {"id": null, "volumeId": vol}}));
    let info = format!("{{\"volume_id\": \"{vol}\", \"type\": \"qcow2\"}}");
    let q: String = info.bytes().map(|b| format!("%{b:02X}")).collect();
    let d = c.nova(Method::DELETE, &format!("{path}/None?delete_info={q}"), &service, MV, None).await;
    assert_eq!(d.status, 204, "{}", d.text);
    let d = c.nova(Method::DELETE, &format!("{path}/None"), &service, MV, None).await;
    assert_eq!(d.status, 400, "{}", d.text);
}
