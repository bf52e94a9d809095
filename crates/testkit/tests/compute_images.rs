//! Nova's image proxy on every database: `/images` (list, detail, Nova's
//! filters, limit/marker paging, show, delete, gone from 2.36) and
//! `/images/{id}/metadata` (merge, replace, one key, quota, gone from 2.39),
//! each answered from the image service; and createBackup with its rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, fresh_urls};

const OLD: &str = "2.35";

fn ids(v: &Value) -> Vec<String> {
    v["images"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

async fn private_image(cloud: &Cloud, tok: &str, name: &str, data: bool, props: Value) -> String {
    let mut fields = json!({"name": name, "disk_format": "raw", "container_format": "bare", "visibility": "private"});
    for (k, v) in props.as_object().unwrap() {
        fields[k] = v.clone();
    }
    let id = cloud.create_image(tok, fields).await["id"].as_str().unwrap().to_string();
    if data {
        let r = cloud.upload(tok, &id, vec![b'*'; 1024]).await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    id
}

#[tokio::test]
async fn the_image_proxy_lists_filters_pages_shows_and_deletes() {
    for (backend, url) in fresh_urls().await {
        let cloud = Cloud::start_compute(backend, &url, &["host-a"], |_| {}).await;
        let admin = cloud.admin_token().await;
        let public = cloud.boot_image(&admin).await;
        let (_, _, tok) = cloud.user_with_role(&admin, "member").await;
        let a = private_image(&cloud, &tok, "img-a", true, json!({"os_distro": "cirros", "min_ram": 64})).await;
        let b = private_image(&cloud, &tok, "img-b", true, json!({"auto_disk_config": "true"})).await;
        let q = private_image(&cloud, &tok, "img-queued", false, json!({})).await;

        // brief list: id, name, three links
        let r = cloud.nova(Method::GET, "/images", &tok, OLD, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let all = ids(&r.body);
        for id in [&public, &a, &b, &q] {
            assert!(all.contains(id), "{backend}: {id} missing from {}", r.text);
        }
        let one = r.body["images"].as_array().unwrap().iter().find(|i| i["id"] == a.as_str()).unwrap();
        assert_eq!(one.as_object().unwrap().len(), 3, "{one}");
        assert_eq!(one["name"], "img-a");
        let links = one["links"].as_array().unwrap();
        assert_eq!(links.len(), 3);
        assert_eq!(links[2]["rel"], "alternate");
        assert_eq!(links[2]["type"], "application/vnd.openstack.image");
        assert!(r.body.get("images_links").is_none());

        // details in Nova's words
        let r = cloud.nova(Method::GET, "/images/detail", &tok, OLD, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let find = |id: &str| r.body["images"].as_array().unwrap().iter().find(|i| i["id"] == id).cloned().unwrap();
        let da = find(&a);
        assert_eq!(da["status"], "ACTIVE");
        assert_eq!(da["progress"], 100);
        assert_eq!(da["minRam"], 64);
        assert_eq!(da["minDisk"], 0);
        assert_eq!(da["OS-EXT-IMG-SIZE:size"], 1024);
        assert_eq!(da["metadata"], json!({"os_distro": "cirros"}), "{backend}: only custom properties");
        assert!(da["created"].as_str().unwrap().ends_with('Z'));
        assert!(da.get("server").is_none());
        assert_eq!(find(&b)["OS-DCF:diskConfig"], "AUTO");
        let dq = find(&q);
        assert_eq!(dq["status"], "SAVING");
        assert_eq!(dq["progress"], 25);

        // filters
        let r = cloud.nova(Method::GET, "/images?name=img-a", &tok, OLD, None).await;
        assert_eq!(ids(&r.body), vec![a.clone()], "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, "/images/detail?status=ACTIVE", &tok, OLD, None).await;
        let active = ids(&r.body);
        assert!(active.contains(&a) && active.contains(&b) && !active.contains(&q), "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, "/images?property-os_distro=cirros", &tok, OLD, None).await;
        assert_eq!(ids(&r.body), vec![a.clone()], "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, "/images?changes-since=2000-01-01T00:00:00Z", &tok, OLD, None).await;
        assert_eq!(ids(&r.body).len(), 4, "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, "/images?changes-since=2999-01-01T00:00:00Z", &tok, OLD, None).await;
        assert!(ids(&r.body).is_empty(), "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, "/images?type=snapshot", &tok, OLD, None).await;
        assert!(ids(&r.body).is_empty(), "{backend}: {}", r.text);

        // paging: limit, a next link, the marker it names
        let r = cloud.nova(Method::GET, "/images?limit=1", &tok, OLD, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let first = ids(&r.body);
        assert_eq!(first.len(), 1);
        let next = r.body["images_links"][0]["href"].as_str().unwrap().to_string();
        assert!(next.contains(&format!("marker={}", first[0])) && next.contains("limit=1"), "{next}");
        let r = cloud.nova(Method::GET, &format!("/images?limit=2&marker={}", first[0]), &tok, OLD, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let second = ids(&r.body);
        assert_eq!(second.len(), 2);
        assert!(!second.contains(&first[0]));
        let r = cloud.nova(Method::GET, "/images/detail?limit=x", &tok, OLD, None).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, "/images?marker=00000000-0000-0000-0000-000000000000", &tok, OLD, None).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);

        // show; not found; gone from 2.36
        let r = cloud.nova(Method::GET, &format!("/images/{a}"), &tok, OLD, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["image"]["id"], a.as_str());
        assert_eq!(r.body["image"]["links"][0]["href"].as_str().unwrap().rsplit('/').next().unwrap(), a);
        let r = cloud.nova(Method::GET, "/images/00000000-0000-0000-0000-000000000000", &tok, OLD, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        assert_eq!(r.body["itemNotFound"]["message"], "Image not found.");
        for path in [format!("/images/{a}"), "/images".into(), "/images/detail".into()] {
            let r = cloud.nova(Method::GET, &path, &tok, "2.36", None).await;
            assert_eq!(r.status, 404, "{backend}: {path} at 2.36: {}", r.text);
        }
        let r = cloud.nova(Method::DELETE, &format!("/images/{a}"), &tok, "2.36", None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);

        // another project neither sees nor deletes a private image
        let (_, _, other) = cloud.user_with_role(&admin, "member").await;
        let r = cloud.nova(Method::GET, &format!("/images/{a}"), &other, OLD, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        let r = cloud.nova(Method::DELETE, &format!("/images/{a}"), &other, OLD, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        let r = cloud.nova(Method::DELETE, &format!("/images/{public}"), &other, OLD, None).await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);

        // delete
        let r = cloud.nova(Method::DELETE, &format!("/images/{q}"), &tok, OLD, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, &format!("/images/{q}"), &tok, OLD, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        let r = cloud.nova(Method::DELETE, &format!("/images/{q}"), &tok, OLD, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        let r = cloud.image_call(Method::GET, &format!("/v2/images/{q}"), &tok, None).await;
        assert_eq!(r.status, 404, "{backend}: deleted in the image service too");
    }
}

#[tokio::test]
async fn image_metadata_merges_replaces_and_counts_against_the_quota() {
    for (backend, url) in fresh_urls().await {
        let cloud = Cloud::start_compute(backend, &url, &["host-a"], |_| {}).await;
        let admin = cloud.admin_token().await;
        let (pid, _, tok) = cloud.user_with_role(&admin, "member").await;
        let id = private_image(&cloud, &tok, "meta", true, json!({})).await;
        let m = |p: &str| format!("/images/{id}/metadata{p}");
        let mv = "2.38";

        let r = cloud.nova(Method::GET, &m(""), &tok, mv, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body, json!({"metadata": {}}));

        // PUT replaces
        let body = json!({"metadata": {"os_version": "value1", "os_distro": "value2"}});
        let r = cloud.nova(Method::PUT, &m(""), &tok, mv, Some(body.clone())).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body, body);
        let r = cloud
            .nova(Method::PUT, &m(""), &tok, mv, Some(json!({"metadata": {"os_version": "v2", "arch": "x"}})))
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, &m(""), &tok, mv, None).await;
        assert_eq!(r.body, json!({"metadata": {"os_version": "v2", "arch": "x"}}), "{backend}");

        // POST merges and answers the whole set
        let r = cloud.nova(Method::POST, &m(""), &tok, mv, Some(json!({"metadata": {"arch": "y", "k": "v"}}))).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body, json!({"metadata": {"os_version": "v2", "arch": "y", "k": "v"}}), "{backend}");

        // one key
        let r = cloud.nova(Method::GET, &m("/arch"), &tok, mv, None).await;
        assert_eq!(r.body, json!({"meta": {"arch": "y"}}), "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, &m("/nope"), &tok, mv, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        let r = cloud.nova(Method::PUT, &m("/arch"), &tok, mv, Some(json!({"meta": {"arch": "z"}}))).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body, json!({"meta": {"arch": "z"}}));
        let r = cloud.nova(Method::PUT, &m("/arch"), &tok, mv, Some(json!({"meta": {"other": "z"}}))).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = cloud.nova(Method::PUT, &m("/arch"), &tok, mv, Some(json!({"meta": {"arch": "z", "b": "c"}}))).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = cloud.nova(Method::PUT, &m("/arch"), &tok, mv, Some(json!({"meta": {"arch": 1}}))).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = cloud.nova(Method::DELETE, &m("/k"), &tok, mv, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = cloud.nova(Method::DELETE, &m("/k"), &tok, mv, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, &m(""), &tok, mv, None).await;
        assert_eq!(r.body, json!({"metadata": {"os_version": "v2", "arch": "z"}}), "{backend}");
        // the image service holds the same
        let g = cloud.image_call(Method::GET, &format!("/v2/images/{id}"), &tok, None).await;
        assert_eq!(g.body["arch"], "z");
        assert!(g.body.get("k").is_none());

        // malformed bodies
        let r = cloud.nova(Method::POST, &m(""), &tok, mv, Some(json!({"meta": {}}))).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = cloud.nova(Method::PUT, &m(""), &tok, mv, Some(json!({"metadata": {"": "x"}}))).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);

        // not found, and gone from 2.39
        let none = "/images/00000000-0000-0000-0000-000000000000/metadata";
        let r = cloud.nova(Method::GET, none, &tok, mv, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        let r = cloud.nova(Method::POST, none, &tok, mv, Some(json!({"metadata": {"a": "b"}}))).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, &m(""), &tok, "2.39", None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);

        // metadata_items: the whole set counts
        let r = cloud
            .nova(
                Method::PUT,
                &format!("/os-quota-sets/{pid}"),
                &admin,
                "2.1",
                Some(json!({"quota_set": {"metadata_items": 3}})),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let r = cloud.nova(Method::POST, &m(""), &tok, mv, Some(json!({"metadata": {"a": "1", "b": "2"}}))).await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        assert_eq!(r.body["forbidden"]["message"], "Image metadata limit exceeded");
        let r = cloud.nova(Method::PUT, &m("/c"), &tok, mv, Some(json!({"meta": {"c": "3"}}))).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let r = cloud.nova(Method::PUT, &m("/d"), &tok, mv, Some(json!({"meta": {"d": "4"}}))).await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        let r = cloud
            .nova(Method::PUT, &m(""), &tok, mv, Some(json!({"metadata": {"a": "1", "b": "2", "c": "3", "d": "4"}})))
            .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
    }
}

async fn wait_image(cloud: &Cloud, tok: &str, id: &str, status: &str) -> Value {
    for _ in 0..200 {
        let r = cloud.nova(Method::GET, &format!("/images/{id}"), tok, OLD, None).await;
        if r.status == 200 && r.body["image"]["status"] == status {
            return r.body["image"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("image {id} never became {status}");
}

async fn backups(cloud: &Cloud, tok: &str, server: &str) -> Vec<String> {
    let path = format!(
        "/v2/images?image_type=backup&backup_type=daily&instance_uuid={server}&sort_key=created_at&sort_dir=asc"
    );
    let r = cloud.image_call(Method::GET, &path, tok, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn snapshots_show_their_server_and_backups_rotate() {
    for (backend, url) in fresh_urls().await {
        let cloud = Cloud::start_compute(backend, &url, &["host-a"], |_| {}).await;
        let admin = cloud.admin_token().await;
        let image = cloud.boot_image(&admin).await;
        let (_, _, tok) = cloud.user_with_role(&admin, "member").await;
        let body = json!({"server": {"name": "s", "imageRef": image, "flavorRef": "1", "networks": "none"}});
        let r = cloud.nova(Method::POST, "/servers", &tok, "2.96", Some(body)).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let sid = r.body["server"]["id"].as_str().unwrap().to_string();
        let active = |s: &Value| s["status"] == "ACTIVE" && s["OS-EXT-STS:task_state"].is_null();
        cloud.wait_server(&tok, &sid, 30, active).await;

        // a snapshot names its server; the server and type filters find it
        let r = cloud
            .nova(
                Method::POST,
                &format!("/servers/{sid}/action"),
                &tok,
                "2.1",
                Some(json!({"createImage": {"name": "snap"}})),
            )
            .await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let snap = r.headers["location"].to_str().unwrap().rsplit('/').next().unwrap().to_string();
        let img = wait_image(&cloud, &tok, &snap, "ACTIVE").await;
        assert_eq!(img["server"]["id"], sid.as_str(), "{backend}: {img}");
        assert_eq!(img["metadata"]["image_type"], "snapshot");
        cloud.wait_server(&tok, &sid, 30, active).await;
        let link = format!("http://somewhere/v2.1/servers/{sid}");
        for q in [format!("server={sid}"), format!("server={link}"), "type=snapshot".into()] {
            let r = cloud.nova(Method::GET, &format!("/images/detail?{q}"), &tok, OLD, None).await;
            assert_eq!(ids(&r.body), vec![snap.clone()], "{backend}: {q}: {}", r.text);
        }

        // bad backups
        let act = format!("/servers/{sid}/action");
        for bad in [
            json!({"createBackup": {"name": "b", "backup_type": "daily"}}),
            json!({"createBackup": {"name": "b", "backup_type": "daily", "rotation": -1}}),
            json!({"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1, "extra": 1}}),
            json!({"createBackup": {"backup_type": "daily", "rotation": 1}}),
        ] {
            let r = cloud.nova(Method::POST, &act, &tok, "2.1", Some(bad.clone())).await;
            assert_eq!(r.status, 400, "{backend}: {bad}: {}", r.text);
        }

        // three backups with rotation 2: the first goes
        let mut made = Vec::new();
        for n in 1..=3 {
            let body = json!({"createBackup": {"name": format!("backup-{n}"), "backup_type": "daily", "rotation": 2}});
            let r = cloud.nova(Method::POST, &act, &tok, "2.45", Some(body)).await;
            assert_eq!(r.status, 202, "{backend}: {}", r.text);
            let id = r.body["image_id"].as_str().unwrap().to_string();
            wait_image(&cloud, &tok, &id, "ACTIVE").await;
            cloud.wait_server(&tok, &sid, 30, active).await;
            made.push(id);
        }
        let r = cloud.image_call(Method::GET, &format!("/v2/images/{}", made[1]), &tok, None).await;
        assert_eq!(r.body["image_type"], "backup", "{backend}: {}", r.text);
        assert_eq!(r.body["backup_type"], "daily");
        assert_eq!(r.body["instance_uuid"], sid.as_str());
        // the rotation follows the upload: wait for the oldest to go
        let mut gone = false;
        for _ in 0..200 {
            let r = cloud.image_call(Method::GET, &format!("/v2/images/{}", made[0]), &tok, None).await;
            if r.status == 404 {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(gone, "{backend}: the oldest backup is rotated out");
        assert_eq!(backups(&cloud, &tok, &sid).await, vec!["backup-2", "backup-3"], "{backend}");
        // the snapshot is no backup: it stays
        let r = cloud.image_call(Method::GET, &format!("/v2/images/{snap}"), &tok, None).await;
        assert_eq!(r.status, 200, "{backend}");

        // before 2.45 the image is in the Location header, unless no backup is kept
        let body = json!({"createBackup": {"name": "weekly-1", "backup_type": "weekly", "rotation": 1}});
        let r = cloud.nova(Method::POST, &act, &tok, "2.1", Some(body)).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        assert!(r.headers.get("location").is_some());
        cloud.wait_server(&tok, &sid, 30, active).await;
        let body = json!({"createBackup": {"name": "weekly-2", "backup_type": "weekly", "rotation": 0}});
        let r = cloud.nova(Method::POST, &act, &tok, "2.1", Some(body)).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        assert!(r.headers.get("location").is_none());
        cloud.wait_server(&tok, &sid, 30, active).await;
        // the daily ones are untouched by weekly rotations
        assert_eq!(backups(&cloud, &tok, &sid).await, vec!["backup-2", "backup-3"], "{backend}");
        let r = cloud.nova(Method::GET, &format!("/servers/{sid}/os-instance-actions"), &tok, "2.1", None).await;
        let actions: Vec<&str> =
            r.body["instanceActions"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
        assert!(actions.contains(&"createBackup"), "{backend}: {actions:?}");
    }
}
