//! Snapshots and backups through the whole path (API -> volume host -> file
//! backend and backup store), on every reachable database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cloud;

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use cloud::{ADMIN, Cloud, MEMBER, OTHER, READER, clouds, clouds_with};
use reqwest::Method;
use serde_json::{Value, json};

const MIB: u64 = 1 << 20;

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(k: &[&str]) -> BTreeSet<String> {
    k.iter().map(|s| s.to_string()).collect()
}

fn volume_file(c: &Cloud, id: &str) -> PathBuf {
    c.cfg.volumes_dir().join(format!("volume-{id}.raw"))
}

/// Write `len` bytes of a pattern seeded by `seed` at `off`.
fn scribble(path: &Path, off: u64, len: usize, seed: u8) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let buf: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1).collect();
    f.write_all_at(&buf, off).unwrap();
    f.sync_all().unwrap();
}

/// Are two files byte for byte the same (read in large blocks)?
fn same_contents(a: &Path, b: &Path) -> bool {
    let (fa, fb) = (std::fs::File::open(a).unwrap(), std::fs::File::open(b).unwrap());
    let len = fa.metadata().unwrap().len();
    if len != fb.metadata().unwrap().len() {
        return false;
    }
    let block = 16 * MIB;
    let (mut ba, mut bb) = (vec![0u8; block as usize], vec![0u8; block as usize]);
    let mut off = 0;
    while off < len {
        let n = block.min(len - off) as usize;
        fa.read_exact_at(&mut ba[..n], off).unwrap();
        fb.read_exact_at(&mut bb[..n], off).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
        off += n as u64;
    }
    true
}

async fn at(c: &Cloud, method: Method, path: &str, token: &str, mv: &str, body: Option<Value>) -> cloud::Resp {
    c.call(method, path, token, Some(mv), body).await
}

async fn snapshot(c: &Cloud, token: &str, volume_id: &str) -> String {
    let r = c.post("/v3/snapshots", token, json!({"snapshot": {"volume_id": volume_id}})).await;
    assert_eq!(r.status, 202, "{}: {}", c.backend, r.text);
    let id = r.body["snapshot"]["id"].as_str().unwrap().to_string();
    c.wait_status(&format!("/v3/snapshots/{id}"), "snapshot", "available").await;
    id
}

async fn backup(c: &Cloud, token: &str, body: Value) -> String {
    let r = c.post("/v3/backups", token, json!({ "backup": body })).await;
    assert_eq!(r.status, 202, "{}: {}", c.backend, r.text);
    let id = r.body["backup"]["id"].as_str().unwrap().to_string();
    c.wait_status(&format!("/v3/backups/{id}"), "backup", "available").await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_lifecycle() {
    for c in clouds().await {
        let b = c.backend;
        let vol = c.volume(MEMBER, 1).await;
        let r = c
            .post(
                "/v3/snapshots",
                MEMBER,
                json!({"snapshot": {"volume_id": vol, "name": "s1", "description": "d", "metadata": {"a": "1"}}}),
            )
            .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let s = &r.body["snapshot"];
        assert_eq!(
            keys(s),
            set(&["id", "created_at", "updated_at", "name", "description", "volume_id", "status", "size", "metadata"]),
            "{b}"
        );
        assert_eq!(s["status"], "creating", "{b}");
        let id = s["id"].as_str().unwrap().to_string();
        let snap = c.wait_status(&format!("/v3/snapshots/{id}"), "snapshot", "available").await;
        assert_eq!(snap["os-extended-snapshot-attributes:progress"], "100%", "{b}");
        assert_eq!(snap["os-extended-snapshot-attributes:project_id"], cloud::PROJECT_A, "{b}");
        assert_eq!(snap["size"], 1, "{b}");
        let file = c.cfg.volumes_dir().join(format!("snapshot-{id}.raw"));
        assert!(file.exists(), "{b}: no snapshot file");

        // views by microversion; others never see it; readers read but do not write
        let r = at(&c, Method::GET, &format!("/v3/snapshots/{id}"), MEMBER, "3.65", None).await;
        for k in ["group_snapshot_id", "user_id", "consumes_quota"] {
            assert!(r.body["snapshot"].get(k).is_some(), "{b}: no {k} at 3.65");
        }
        assert_eq!(c.get(&format!("/v3/snapshots/{id}"), OTHER).await.status, 404, "{b}");
        assert_eq!(c.get(&format!("/v3/snapshots/{id}"), READER).await.status, 200, "{b}");
        assert_eq!(c.delete(&format!("/v3/snapshots/{id}"), READER).await.status, 403, "{b}");
        assert_eq!(c.get("/v3/snapshots/not-a-uuid", MEMBER).await.status, 404, "{b}");

        // lists
        let r = c.get("/v3/snapshots", MEMBER).await;
        assert_eq!(r.body["snapshots"].as_array().unwrap().len(), 1, "{b}: {}", r.text);
        assert!(r.body["snapshots"][0].get("os-extended-snapshot-attributes:progress").is_none(), "{b}");
        let r = c.get("/v3/snapshots/detail?name=s1", MEMBER).await;
        assert_eq!(r.body["snapshots"][0]["os-extended-snapshot-attributes:progress"], "100%", "{b}: {}", r.text);
        assert!(c.get("/v3/snapshots/detail?name=nope", MEMBER).await.body["snapshots"].as_array().unwrap().is_empty());
        assert!(c.get("/v3/snapshots", OTHER).await.body["snapshots"].as_array().unwrap().is_empty(), "{b}");

        // update and metadata
        let r = c.put(&format!("/v3/snapshots/{id}"), MEMBER, json!({"snapshot": {"name": "s2"}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["snapshot"]["name"], "s2", "{b}");
        assert_eq!(c.put(&format!("/v3/snapshots/{id}"), MEMBER, json!({"snapshot": {}})).await.status, 400, "{b}");
        let r = c.post(&format!("/v3/snapshots/{id}/metadata"), MEMBER, json!({"metadata": {"b": "2"}})).await;
        assert_eq!(r.body["metadata"], json!({"a": "1", "b": "2"}), "{b}: {}", r.text);
        let r = c.put(&format!("/v3/snapshots/{id}/metadata/c"), MEMBER, json!({"meta": {"c": "3"}})).await;
        assert_eq!(r.body, json!({"meta": {"c": "3"}}), "{b}: {}", r.text);
        let r = c.get(&format!("/v3/snapshots/{id}/metadata/c"), MEMBER).await;
        assert_eq!(r.body, json!({"meta": {"c": "3"}}), "{b}");
        assert_eq!(c.delete(&format!("/v3/snapshots/{id}/metadata/a"), MEMBER).await.status, 200, "{b}");
        assert_eq!(c.get(&format!("/v3/snapshots/{id}/metadata/a"), MEMBER).await.status, 404, "{b}");
        let r = c.put(&format!("/v3/snapshots/{id}/metadata"), MEMBER, json!({"metadata": {"z": "9"}})).await;
        assert_eq!(r.body["metadata"], json!({"z": "9"}), "{b}");

        // a volume from the snapshot
        let r = c.post("/v3/volumes", MEMBER, json!({"volume": {"snapshot_id": id}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let from = r.body["volume"]["id"].as_str().unwrap().to_string();
        let v = c.wait_status(&format!("/v3/volumes/{from}"), "volume", "available").await;
        assert_eq!(v["snapshot_id"], id.as_str(), "{b}");

        // bad creates
        let r = c.post("/v3/snapshots", MEMBER, json!({"snapshot": {"volume_id": vol, "force": "maybe"}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = c.post("/v3/snapshots", MEMBER, json!({"snapshot": {"volume_id": null}})).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        let r = c.post("/v3/snapshots", MEMBER, json!({"nothing": {}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = c.get("/v3/snapshots?sort_key=invalid", MEMBER).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = c.get("/v3/snapshots?sort_key=display_name&sort_dir=asc", MEMBER).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let r = c.post("/v3/snapshots", OTHER, json!({"snapshot": {"volume_id": vol}})).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);

        // the volume cannot go while it has the snapshot
        assert_eq!(c.delete(&format!("/v3/volumes/{vol}"), MEMBER).await.status, 400, "{b}");
        let r = c.delete(&format!("/v3/snapshots/{id}"), MEMBER).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        c.wait_gone(&format!("/v3/snapshots/{id}")).await;
        assert!(!file.exists(), "{b}: snapshot file left behind");
        assert_eq!(c.delete(&format!("/v3/volumes/{vol}"), MEMBER).await.status, 202, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_actions_and_quota() {
    let mut cfg = stratus_core::Config::default();
    cfg.volume.quota_snapshots = 2;
    for c in clouds_with(cfg.clone()).await {
        let b = c.backend;
        let vol = c.volume(MEMBER, 1).await;
        let id = snapshot(&c, MEMBER, &vol).await;
        let act = format!("/v3/snapshots/{id}/action");
        // reset status: admins only, known statuses only
        assert_eq!(c.post(&act, MEMBER, json!({"os-reset_status": {"status": "creating"}})).await.status, 403, "{b}");
        assert_eq!(c.post(&act, ADMIN, json!({"os-reset_status": {"status": "bogus"}})).await.status, 400, "{b}");
        let r = c.post(&act, ADMIN, json!({"os-reset_status": {"status": "creating"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        // update_snapshot_status: creating -> error with progress
        let r =
            c.post(&act, MEMBER, json!({"os-update_snapshot_status": {"status": "error", "progress": "80%"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let s = c.get(&format!("/v3/snapshots/{id}"), MEMBER).await.body["snapshot"].clone();
        assert_eq!(s["status"], "error", "{b}");
        assert_eq!(s["os-extended-snapshot-attributes:progress"], "80%", "{b}");
        // from error it is not allowed
        let r = c.post(&act, MEMBER, json!({"os-update_snapshot_status": {"status": "available"}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);

        // quota: 2 snapshots
        let id2 = snapshot(&c, MEMBER, &vol).await;
        let r = c.post("/v3/snapshots", MEMBER, json!({"snapshot": {"volume_id": vol}})).await;
        assert_eq!(r.status, 413, "{b}: {}", r.text);

        // force delete from deleting and error_deleting
        for (sid, status) in [(&id, "deleting"), (&id2, "error_deleting")] {
            let act = format!("/v3/snapshots/{sid}/action");
            assert_eq!(c.post(&act, ADMIN, json!({"os-reset_status": {"status": status}})).await.status, 202, "{b}");
            assert_eq!(c.delete(&format!("/v3/snapshots/{sid}"), MEMBER).await.status, 400, "{b}");
            assert_eq!(c.post(&act, MEMBER, json!({"os-force_delete": {}})).await.status, 403, "{b}");
            let r = c.post(&act, ADMIN, json!({"os-force_delete": {}})).await;
            assert_eq!(r.status, 202, "{b}: {}", r.text);
            c.wait_gone(&format!("/v3/snapshots/{sid}")).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_full_incremental_restore() {
    for c in clouds().await {
        let b = c.backend;
        let vol = c.volume(MEMBER, 1).await;
        let r = c.put(&format!("/v3/volumes/{vol}"), MEMBER, json!({"volume": {"metadata": {"m": "v"}}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let src = volume_file(&c, &vol);
        // data in three chunks of 32 MiB: 0, 3 and 31 (the last)
        scribble(&src, 0, MIB as usize, 1);
        scribble(&src, 100 * MIB, 3 * MIB as usize, 2);
        scribble(&src, (1 << 30) - 4096, 4096, 3);
        // what the volume held at the full backup
        let full_copy = c.dir.path().join("full-copy.raw");
        std::fs::copy(&src, &full_copy).unwrap();

        // incremental needs a full one first
        let r = c.post("/v3/backups", MEMBER, json!({"backup": {"volume_id": vol, "incremental": true}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);

        let started = std::time::Instant::now();
        let r = c.post("/v3/backups", MEMBER, json!({"backup": {"volume_id": vol, "name": "full"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(keys(&r.body["backup"]), set(&["id", "links", "name"]), "{b}");
        let full = r.body["backup"]["id"].as_str().unwrap().to_string();
        let v = c.get(&format!("/v3/volumes/{vol}"), MEMBER).await.body["volume"].clone();
        assert!(v["status"] == "backing-up" || v["status"] == "available", "{b}: {v}");
        let fb = c.wait_status(&format!("/v3/backups/{full}"), "backup", "available").await;
        eprintln!("{b}: full backup of 1 GiB took {:?}", started.elapsed());
        c.wait_status(&format!("/v3/volumes/{vol}"), "volume", "available").await;
        assert_eq!(fb["object_count"], 3, "{b}: {fb}");
        assert_eq!(fb["is_incremental"], false, "{b}");
        assert_eq!(fb["size"], 1, "{b}");
        assert_eq!(fb["volume_id"], vol.as_str(), "{b}");
        assert_eq!(
            keys(&fb),
            set(&[
                "id",
                "status",
                "size",
                "object_count",
                "availability_zone",
                "container",
                "created_at",
                "updated_at",
                "name",
                "description",
                "fail_reason",
                "volume_id",
                "links",
                "is_incremental",
                "has_dependent_backups",
                "snapshot_id",
                "data_timestamp",
            ]),
            "{b}"
        );
        let dir = c.cfg.backups_dir().join(&full);
        assert!(dir.join("manifest.json").exists(), "{b}: no manifest");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4, "{b}: manifest and 3 chunks");

        // change one chunk: the incremental backup stores only it
        scribble(&src, 100 * MIB, MIB as usize, 9);
        let inc = backup(&c, MEMBER, json!({"volume_id": vol, "incremental": true})).await;
        let ib = c.get(&format!("/v3/backups/{inc}"), MEMBER).await.body["backup"].clone();
        assert_eq!(ib["is_incremental"], true, "{b}");
        assert_eq!(ib["object_count"], 1, "{b}: {ib}");
        assert_eq!(ib["has_dependent_backups"], false, "{b}");
        let fb = c.get(&format!("/v3/backups/{full}"), MEMBER).await.body["backup"].clone();
        assert_eq!(fb["has_dependent_backups"], true, "{b}");
        // the full one cannot go while the incremental needs it
        let r = c.delete(&format!("/v3/backups/{full}"), MEMBER).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);

        // restore the incremental into a new volume: the volume as it is now
        let r = c.post(&format!("/v3/backups/{inc}/restore"), MEMBER, json!({"restore": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(keys(&r.body["restore"]), set(&["backup_id", "volume_id", "volume_name"]), "{b}");
        assert_eq!(r.body["restore"]["volume_name"], format!("restore_backup_{inc}"), "{b}");
        let new_vol = r.body["restore"]["volume_id"].as_str().unwrap().to_string();
        c.wait_status(&format!("/v3/backups/{inc}"), "backup", "available").await;
        let nv = c.wait_status(&format!("/v3/volumes/{new_vol}"), "volume", "available").await;
        assert_eq!(nv["metadata"], json!({"m": "v"}), "{b}: metadata not restored");
        assert!(same_contents(&src, &volume_file(&c, &new_vol)), "{b}: incremental restore differs");

        // restore the full one into an existing volume holding other data
        let target = c.volume(MEMBER, 1).await;
        scribble(&volume_file(&c, &target), 500 * MIB, MIB as usize, 7);
        let r = c.post(&format!("/v3/backups/{full}/restore"), MEMBER, json!({"restore": {"volume_id": target}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(r.body["restore"]["volume_id"], target.as_str(), "{b}");
        c.wait_status(&format!("/v3/backups/{full}"), "backup", "available").await;
        c.wait_status(&format!("/v3/volumes/{target}"), "volume", "available").await;
        assert!(same_contents(&full_copy, &volume_file(&c, &target)), "{b}: full restore differs");

        // restore refusals: a volume not available, another project's volume
        let r = c.post(&format!("/v3/backups/{full}/restore"), OTHER, json!({"restore": {}})).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        let other_vol = c.volume(OTHER, 1).await;
        let r =
            c.post(&format!("/v3/backups/{full}/restore"), MEMBER, json!({"restore": {"volume_id": other_vol}})).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);

        // delete order: the incremental first, then the full one
        assert_eq!(c.delete(&format!("/v3/backups/{inc}"), MEMBER).await.status, 202, "{b}");
        c.wait_gone(&format!("/v3/backups/{inc}")).await;
        assert_eq!(c.delete(&format!("/v3/backups/{full}"), MEMBER).await.status, 202, "{b}");
        c.wait_gone(&format!("/v3/backups/{full}")).await;
        assert!(!dir.exists(), "{b}: backup directory left behind");
        assert!(!c.cfg.backups_dir().join(&inc).exists(), "{b}");
        // a volume with backups gone or not can be deleted
        assert_eq!(c.delete(&format!("/v3/volumes/{vol}"), MEMBER).await.status, 202, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_views_actions_quota_and_failure() {
    let mut cfg = stratus_core::Config::default();
    cfg.volume.quota_backups = 2;
    for c in clouds_with(cfg.clone()).await {
        let b = c.backend;
        let vol = c.volume(MEMBER, 1).await;
        let id = backup(&c, MEMBER, json!({"volume_id": vol, "name": "b1", "description": "d"})).await;

        // views by microversion
        let r = at(&c, Method::GET, &format!("/v3/backups/{id}"), ADMIN, "3.56", None).await;
        let v = &r.body["backup"];
        assert_eq!(v["os-backup-project-attr:project_id"], cloud::PROJECT_A, "{b}: {}", r.text);
        assert_eq!(v["metadata"], json!({}), "{b}");
        assert_eq!(v["user_id"], cloud::MEMBER_USER, "{b}");
        let r = at(&c, Method::GET, &format!("/v3/backups/{id}"), MEMBER, "3.56", None).await;
        assert!(r.body["backup"].get("os-backup-project-attr:project_id").is_none(), "{b}");
        let r = c.get("/v3/backups", MEMBER).await;
        assert_eq!(keys(&r.body["backups"][0]), set(&["id", "links", "name"]), "{b}");
        let r = c.get("/v3/backups/detail?name=b1", READER).await;
        assert_eq!(r.body["backups"].as_array().unwrap().len(), 1, "{b}: {}", r.text);
        assert!(c.get("/v3/backups", OTHER).await.body["backups"].as_array().unwrap().is_empty(), "{b}");
        assert_eq!(c.get(&format!("/v3/backups/{id}"), OTHER).await.status, 404, "{b}");

        // update: 3.9 on, metadata from 3.43
        let path = format!("/v3/backups/{id}");
        let r = at(&c, Method::PUT, &path, MEMBER, "3.0", Some(json!({"backup": {"name": "x"}}))).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        let r =
            at(&c, Method::PUT, &path, MEMBER, "3.43", Some(json!({"backup": {"name": "b2", "metadata": {"k": "v"}}})))
                .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["backup"]["name"], "b2", "{b}");
        let r = at(&c, Method::GET, &path, MEMBER, "3.43", None).await;
        assert_eq!(r.body["backup"]["metadata"], json!({"k": "v"}), "{b}");

        // a backup of a snapshot
        let snap = snapshot(&c, MEMBER, &vol).await;
        let sb = backup(&c, MEMBER, json!({"volume_id": vol, "snapshot_id": snap})).await;
        let r = c.get(&format!("/v3/backups/{sb}"), MEMBER).await;
        assert_eq!(r.body["backup"]["snapshot_id"], snap.as_str(), "{b}");
        c.wait_status(&format!("/v3/snapshots/{snap}"), "snapshot", "available").await;

        // quota: 2 backups
        let r = c.post("/v3/backups", MEMBER, json!({"backup": {"volume_id": vol}})).await;
        assert_eq!(r.status, 413, "{b}: {}", r.text);

        // reset status and force delete: admins only
        let act = format!("/v3/backups/{sb}/action");
        assert_eq!(c.post(&act, MEMBER, json!({"os-reset_status": {"status": "error"}})).await.status, 403, "{b}");
        assert_eq!(c.post(&act, ADMIN, json!({"os-reset_status": {"status": "creating"}})).await.status, 400, "{b}");
        assert_eq!(c.post(&act, ADMIN, json!({"os-reset_status": {"status": "error"}})).await.status, 202, "{b}");
        c.wait_status(&format!("/v3/backups/{sb}"), "backup", "error").await;
        assert_eq!(c.post(&act, ADMIN, json!({"os-force_delete": {}})).await.status, 202, "{b}");
        c.wait_gone(&format!("/v3/backups/{sb}")).await;

        // a backup that fails leaves no directory and frees the volume
        std::fs::remove_file(volume_file(&c, &vol)).unwrap();
        let r = c.post("/v3/backups", MEMBER, json!({"backup": {"volume_id": vol}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let bad = r.body["backup"]["id"].as_str().unwrap().to_string();
        let e = c.wait_status(&format!("/v3/backups/{bad}"), "backup", "error").await;
        assert!(e["fail_reason"].as_str().is_some_and(|s| !s.is_empty()), "{b}: {e}");
        c.wait_status(&format!("/v3/volumes/{vol}"), "volume", "available").await;
        assert!(!c.cfg.backups_dir().join(&bad).exists(), "{b}: failed backup left a directory");
        let leftovers: Vec<_> = std::fs::read_dir(c.cfg.backups_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .collect();
        assert!(leftovers.is_empty(), "{b}: partial directories left");
        assert_eq!(c.delete(&format!("/v3/backups/{bad}"), MEMBER).await.status, 202, "{b}");
        c.wait_gone(&format!("/v3/backups/{bad}")).await;
    }
}
