//! Volumes through the whole path: API -> scheduler -> volume host -> file
//! backend, on every reachable database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cloud;

use cloud::{ADMIN, MEMBER, OTHER, READER, clouds};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_schedule_make_delete() {
    for c in clouds().await {
        let b = c.backend;
        // empty volume: creating -> available, a 1 GiB sparse file on volume1
        let r =
            c.post("/v3/volumes", MEMBER, json!({"volume": {"size": 1, "name": "v1", "metadata": {"a": "b"}}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(r.body["volume"]["status"], "creating", "{b}");
        assert_eq!(r.body["volume"]["volume_type"], "__DEFAULT__", "{b}");
        let id = r.body["volume"]["id"].as_str().unwrap().to_string();
        let v = c.wait_status(&format!("/v3/volumes/{id}"), "volume", "available").await;
        assert_eq!(v["size"], 1, "{b}");
        assert_eq!(v["metadata"], json!({"a": "b"}), "{b}");
        assert_eq!(v["bootable"], "false", "{b}");
        let host = v["os-vol-host-attr:host"].as_str().unwrap();
        assert_eq!(host, "volume1@file#file", "{b}");
        let file = c.cfg.volumes_dir().join(format!("volume-{id}.raw"));
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 1 << 30, "{b}");

        // project-scoped URLs reach the same routes; others' volumes are 404
        let r = c.get(&format!("/v3/{}/volumes/{id}", cloud::PROJECT_A), READER).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert!(r.body["volume"].get("os-vol-host-attr:host").is_none(), "{b}: host shown to a reader");
        assert_eq!(c.get(&format!("/v3/volumes/{id}"), OTHER).await.status, 404, "{b}");
        // a reader cannot delete
        assert_eq!(c.delete(&format!("/v3/volumes/{id}"), READER).await.status, 403, "{b}");

        // list, detail, filters, paging
        let id2 = c.volume(MEMBER, 2).await;
        let r = c.get("/v3/volumes", MEMBER).await;
        assert_eq!(r.body["volumes"].as_array().unwrap().len(), 2, "{b}: {}", r.text);
        assert!(r.body["volumes"][0].get("status").is_none(), "{b}: summary shows details");
        let r = c.get("/v3/volumes/detail?name=v1", MEMBER).await;
        assert_eq!(r.body["volumes"].as_array().unwrap().len(), 1, "{b}: {}", r.text);
        let r = c.get("/v3/volumes/detail?metadata={'a':'b'}", MEMBER).await;
        assert_eq!(r.body["volumes"][0]["id"], id.as_str(), "{b}: {}", r.text);
        let r = c.get("/v3/volumes/detail?limit=1&sort=size:asc", MEMBER).await;
        assert_eq!(r.body["volumes"][0]["id"], id.as_str(), "{b}: {}", r.text);
        assert!(r.body["volumes_links"][0]["href"].as_str().unwrap().contains(&format!("marker={id}")), "{b}");
        let r = c.get(&format!("/v3/volumes/detail?limit=1&sort=size:asc&marker={id}"), MEMBER).await;
        assert_eq!(r.body["volumes"][0]["id"], id2.as_str(), "{b}: {}", r.text);
        assert!(c.get("/v3/volumes", OTHER).await.body["volumes"].as_array().unwrap().is_empty(), "{b}");
        let r = c.get("/v3/volumes/detail?all_tenants=1", ADMIN).await;
        assert_eq!(r.body["volumes"].as_array().unwrap().len(), 2, "{b}");

        // update and metadata
        let r = c.put(&format!("/v3/volumes/{id}"), MEMBER, json!({"volume": {"name": "renamed"}})).await;
        assert_eq!(r.body["volume"]["name"], "renamed", "{b}: {}", r.text);
        let r = c.put(&format!("/v3/volumes/{id}/metadata/k"), MEMBER, json!({"meta": {"k": "v"}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let r = c.get(&format!("/v3/volumes/{id}/metadata"), MEMBER).await;
        assert_eq!(r.body["metadata"], json!({"a": "b", "k": "v"}), "{b}");

        // delete: the row and the file go
        let r = c.delete(&format!("/v3/volumes/{id}"), MEMBER).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        c.wait_gone(&format!("/v3/volumes/{id}")).await;
        assert!(!file.exists(), "{b}: file left behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused() {
    for c in clouds().await {
        let b = c.backend;
        for body in [
            json!({"volume": {"size": 0}}),
            json!({"volume": {"size": "x"}}),
            json!({"volume": {}}),
            json!({"nothing": {}}),
            json!({"volume": {"size": 1, "volume_type": "nope"}}),
            json!({"volume": {"size": 1, "availability_zone": "mars"}}),
            json!({"volume": {"size": 1, "snapshot_id": "00000000-0000-0000-0000-000000000000"}}),
            json!({"volume": {"size": 1, "metadata": {"k": 1}}}),
        ] {
            let r = c.post("/v3/volumes", MEMBER, body.clone()).await;
            assert!(r.status == 400 || r.status == 404, "{b}: {body} gave {}: {}", r.status, r.text);
            assert!(r.body.as_object().is_some_and(|o| o.len() == 1), "{b}: not a Cinder fault: {}", r.text);
        }
        // no volume was written by any of them
        assert!(c.get("/v3/volumes", MEMBER).await.body["volumes"].as_array().unwrap().is_empty(), "{b}");
        assert_eq!(c.get("/v3/volumes/nope", MEMBER).await.status, 404, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_never_pass_the_quota() {
    let mut cfg = stratus_core::Config::default();
    cfg.volume.quota_volumes = 3;
    for c in cloud::clouds_with(cfg.clone()).await {
        let b = c.backend;
        let c = std::sync::Arc::new(c);
        let mut tasks = Vec::new();
        for i in 0..10 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.post("/v3/volumes", MEMBER, json!({"volume": {"size": 1, "name": format!("r{i}")}})).await.status
            }));
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        assert_eq!(codes.iter().filter(|s| **s == 202).count(), 3, "{b}: {codes:?}");
        assert_eq!(codes.iter().filter(|s| **s == 413).count(), 7, "{b}: {codes:?}");
        let r = c.get("/v3/volumes", MEMBER).await;
        assert_eq!(r.body["volumes"].as_array().unwrap().len(), 3, "{b}");
    }
}
