//! Volume transfers between projects, on every reachable database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cloud;

use std::collections::BTreeSet;

use cloud::{ADMIN, Cloud, MEMBER, OTHER, PROJECT_A, PROJECT_B, READER, clouds};
use reqwest::Method;
use serde_json::{Value, json};

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(k: &[&str]) -> BTreeSet<String> {
    k.iter().map(|s| s.to_string()).collect()
}

async fn at(c: &Cloud, method: Method, path: &str, token: &str, mv: &str, body: Option<Value>) -> cloud::Resp {
    c.call(method, path, token, Some(mv), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_accept_delete() {
    for c in clouds().await {
        let b = c.backend;
        let vol = c.volume(MEMBER, 1).await;
        let r = c.post("/v3/snapshots", MEMBER, json!({"snapshot": {"volume_id": vol}})).await;
        let snap = r.body["snapshot"]["id"].as_str().unwrap().to_string();
        c.wait_status(&format!("/v3/snapshots/{snap}"), "snapshot", "available").await;

        let r = c.post("/v3/os-volume-transfer", MEMBER, json!({"transfer": {"volume_id": vol, "name": "t1"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let t = r.body["transfer"].clone();
        assert_eq!(keys(&t), set(&["id", "name", "volume_id", "links", "created_at", "auth_key"]), "{b}");
        let id = t["id"].as_str().unwrap().to_string();
        let key = t["auth_key"].as_str().unwrap().to_string();
        let v = c.get(&format!("/v3/volumes/{vol}"), MEMBER).await.body["volume"].clone();
        assert_eq!(v["status"], "awaiting-transfer", "{b}");
        // only the hash is kept
        let row = <stratus_volume::entity::transfer::Entity as sea_orm::EntityTrait>::find_by_id(id.clone())
            .one(&c.db.read)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(row.crypt_hash, key, "{b}");
        assert!(!row.crypt_hash.contains(&key), "{b}");

        // a second transfer of the same volume is refused
        let r = c.post("/v3/os-volume-transfer", MEMBER, json!({"transfer": {"volume_id": vol}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);

        // show and lists: the giving project only
        let r = c.get(&format!("/v3/os-volume-transfer/{id}"), READER).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(keys(&r.body["transfer"]), set(&["id", "name", "volume_id", "links", "created_at"]), "{b}");
        assert_eq!(c.get(&format!("/v3/os-volume-transfer/{id}"), OTHER).await.status, 404, "{b}");
        let r = c.get("/v3/os-volume-transfer", MEMBER).await;
        assert_eq!(keys(&r.body["transfers"][0]), set(&["id", "name", "volume_id", "links"]), "{b}: {}", r.text);
        let r = c.get("/v3/os-volume-transfer/detail", MEMBER).await;
        assert_eq!(r.body["transfers"][0]["volume_id"], vol.as_str(), "{b}");
        assert!(c.get("/v3/os-volume-transfer", OTHER).await.body["transfers"].as_array().unwrap().is_empty(), "{b}");
        assert_eq!(c.delete(&format!("/v3/os-volume-transfer/{id}"), OTHER).await.status, 404, "{b}");

        // the wrong key is refused; the right one moves volume and snapshot
        let accept = format!("/v3/os-volume-transfer/{id}/accept");
        let r = c.post(&accept, OTHER, json!({"accept": {"auth_key": "wrong"}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert_eq!(c.get(&format!("/v3/volumes/{vol}"), OTHER).await.status, 404, "{b}");
        let r = c.post(&accept, OTHER, json!({"accept": {"auth_key": key}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(keys(&r.body["transfer"]), set(&["id", "name", "volume_id", "links"]), "{b}");
        let r = c.get(&format!("/v3/volumes/{vol}"), ADMIN).await;
        assert_eq!(r.body["volume"]["status"], "available", "{b}");
        assert_eq!(r.body["volume"]["os-vol-tenant-attr:tenant_id"], PROJECT_B, "{b}");
        assert_eq!(r.body["volume"]["user_id"], cloud::OTHER_USER, "{b}");
        assert_eq!(c.get(&format!("/v3/volumes/{vol}"), OTHER).await.status, 200, "{b}");
        assert_eq!(c.get(&format!("/v3/volumes/{vol}"), MEMBER).await.status, 404, "{b}");
        assert_eq!(c.get(&format!("/v3/snapshots/{snap}"), OTHER).await.status, 200, "{b}");
        assert_eq!(c.get(&format!("/v3/snapshots/{snap}"), MEMBER).await.status, 404, "{b}");
        // the transfer is spent
        assert_eq!(c.get(&format!("/v3/os-volume-transfer/{id}"), MEMBER).await.status, 404, "{b}");
        assert_eq!(c.post(&accept, OTHER, json!({"accept": {"auth_key": key}})).await.status, 404, "{b}");

        // create then delete: the volume is available again
        let vol2 = c.volume(MEMBER, 1).await;
        let r = c.post("/v3/os-volume-transfer", MEMBER, json!({"transfer": {"volume_id": vol2}})).await;
        let id2 = r.body["transfer"]["id"].as_str().unwrap().to_string();
        assert_eq!(c.delete(&format!("/v3/os-volume-transfer/{id2}"), MEMBER).await.status, 202, "{b}");
        let r = c.get(&format!("/v3/volumes/{vol2}"), MEMBER).await;
        assert_eq!(r.body["volume"]["status"], "available", "{b}");
        assert_eq!(c.get(&format!("/v3/os-volume-transfer/{id2}"), MEMBER).await.status, 404, "{b}");
        // a volume not available cannot be given; nor can another project's
        let r = c.post("/v3/os-volume-transfer", OTHER, json!({"transfer": {"volume_id": vol2}})).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_api_and_receiver_quota() {
    for c in clouds().await {
        let b = c.backend;
        let vol = c.volume(MEMBER, 1).await;
        // volume-transfers needs 3.55
        let body = json!({"transfer": {"volume_id": vol, "no_snapshots": true}});
        let r = at(&c, Method::POST, "/v3/volume-transfers", MEMBER, "3.54", Some(body.clone())).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        let r = at(&c, Method::POST, "/v3/volume-transfers", MEMBER, "3.57", Some(body)).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let t = r.body["transfer"].clone();
        assert_eq!(t["no_snapshots"], true, "{b}");
        assert_eq!(t["source_project_id"], PROJECT_A, "{b}");
        assert_eq!(t["destination_project_id"], Value::Null, "{b}");
        assert_eq!(t["accepted"], false, "{b}");
        let id = t["id"].as_str().unwrap().to_string();
        let key = t["auth_key"].as_str().unwrap().to_string();
        let r = at(&c, Method::GET, &format!("/v3/volume-transfers/{id}"), MEMBER, "3.55", None).await;
        assert_eq!(
            keys(&r.body["transfer"]),
            set(&["id", "name", "volume_id", "links", "created_at", "no_snapshots"]),
            "{b}: {}",
            r.text
        );
        assert!(r.body["transfer"]["links"][0]["href"].as_str().unwrap().contains("/volume-transfers/"), "{b}");
        let r = at(&c, Method::GET, &format!("/v3/{PROJECT_A}/volume-transfers/detail"), MEMBER, "3.57", None).await;
        assert_eq!(r.body["transfers"][0]["accepted"], false, "{b}: {}", r.text);

        // the receiver's quota is checked
        stratus_volume::store::quotas::set_project(&c.db.write, PROJECT_B, "volumes", 0).await.unwrap();
        let accept = format!("/v3/volume-transfers/{id}/accept");
        let r = at(&c, Method::POST, &accept, OTHER, "3.55", Some(json!({"accept": {"auth_key": key}}))).await;
        assert_eq!(r.status, 413, "{b}: {}", r.text);
        let r = c.get(&format!("/v3/volumes/{vol}"), MEMBER).await;
        assert_eq!(r.body["volume"]["status"], "awaiting-transfer", "{b}");
        stratus_volume::store::quotas::set_project(&c.db.write, PROJECT_B, "volumes", -1).await.unwrap();
        let r = at(&c, Method::POST, &accept, OTHER, "3.55", Some(json!({"accept": {"auth_key": key}}))).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(c.get(&format!("/v3/volumes/{vol}"), OTHER).await.status, 200, "{b}");
    }
}
