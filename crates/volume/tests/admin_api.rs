//! Quotas, quota classes, limits, services, availability zones, pools,
//! capabilities and hosts of the block storage API of a whole cloud (`mod
//! cloud`: the API, the scheduler `sched1` and the volume host `volume1`) on
//! a fresh database of every reachable backend, with its fixed tokens:
//! `ADMIN` (admin of project A), `MEMBER` and `READER` of project A,
//! `OTHER` (member of project B). Any answer of 500 or more fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cloud;

use cloud::{ADMIN, MEMBER, OTHER, PROJECT_A, PROJECT_B, READER, RULED, strict_clouds};
use sea_orm::{ActiveModelTrait, EntityTrait, Set, TransactionTrait};
use serde_json::{Value, json};
use stratus_db::Db;
use stratus_volume::driver::Pool;
use stratus_volume::entity::{backup, service, snapshot, volume, volume_type};
use stratus_volume::store::{quotas, services};

fn now() -> String {
    stratus_volume::api::now()
}

fn volume_row(project: &str, size: i64, type_id: Option<&str>) -> volume::ActiveModel {
    volume::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        project_id: Set(project.into()),
        user_id: Set("member-user".into()),
        name: Set(Some("v".into())),
        description: Set(None),
        size: Set(size),
        status: Set("available".into()),
        attach_status: Set("detached".into()),
        availability_zone: Set("nova".into()),
        volume_type_id: Set(type_id.map(str::to_string)),
        bootable: Set(false),
        multiattach: Set(false),
        encrypted: Set(false),
        source_volid: Set(None),
        snapshot_id: Set(None),
        image_id: Set(None),
        backup_id: Set(None),
        host: Set(Some("node1@file#file".into())),
        provider_location: Set(None),
        metadata: Set("{}".into()),
        admin_metadata: Set("{}".into()),
        image_metadata: Set("{}".into()),
        migration_status: Set(None),
        replication_status: Set(None),
        group_id: Set(None),
        previous_status: Set(None),
        created_at: Set(now()),
        updated_at: Set(None),
        launched_at: Set(None),
    }
}

async fn insert_volume(db: &Db, project: &str, size: i64, type_id: Option<&str>) -> String {
    volume_row(project, size, type_id).insert(&db.write).await.unwrap().id
}

async fn insert_snapshot(db: &Db, project: &str, volume_id: &str, size: i64, type_id: Option<&str>) {
    snapshot::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        volume_id: Set(volume_id.into()),
        project_id: Set(project.into()),
        user_id: Set("member-user".into()),
        name: Set(None),
        description: Set(None),
        status: Set("available".into()),
        progress: Set("100%".into()),
        size: Set(size),
        metadata: Set("{}".into()),
        volume_type_id: Set(type_id.map(str::to_string)),
        group_snapshot_id: Set(None),
        provider_location: Set(None),
        created_at: Set(now()),
        updated_at: Set(None),
    }
    .insert(&db.write)
    .await
    .unwrap();
}

async fn insert_backup(db: &Db, project: &str, volume_id: &str, size: i64) {
    backup::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        volume_id: Set(volume_id.into()),
        snapshot_id: Set(None),
        project_id: Set(project.into()),
        user_id: Set("member-user".into()),
        name: Set(None),
        description: Set(None),
        status: Set("available".into()),
        size: Set(size),
        availability_zone: Set(None),
        container: Set(None),
        fail_reason: Set(None),
        is_incremental: Set(false),
        parent_id: Set(None),
        object_count: Set(0),
        data_timestamp: Set(None),
        host: Set(None),
        service_metadata: Set(None),
        metadata: Set("{}".into()),
        restore_volume_id: Set(None),
        created_at: Set(now()),
        updated_at: Set(None),
    }
    .insert(&db.write)
    .await
    .unwrap();
}

async fn insert_type(db: &Db, name: &str, extra_specs: Value) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    volume_type::ActiveModel {
        id: Set(id.clone()),
        name: Set(name.into()),
        description: Set(None),
        is_public: Set(true),
        extra_specs: Set(extra_specs.to_string()),
        qos_specs_id: Set(None),
        created_at: Set(now()),
        updated_at: Set(None),
    }
    .insert(&db.write)
    .await
    .unwrap();
    id
}

fn file_pool(name: &str) -> Pool {
    Pool {
        name: name.into(),
        total_capacity_gb: 100,
        free_capacity_gb: 90,
        allocated_capacity_gb: 10,
        provisioned_capacity_gb: 10,
        thin_provisioning_support: true,
        max_over_subscription_ratio: 1.0,
        reserved_percentage: 0,
        volume_backend_name: "file".into(),
        storage_protocol: "file".into(),
        vendor_name: "Open Source".into(),
        driver_version: "1.0".into(),
        multiattach: false,
    }
}

/// Make a service look silent since `secs` ago.
async fn age_service(db: &Db, host: &str, binary: &str, secs: i64) {
    let old = (chrono::Utc::now() - chrono::Duration::seconds(secs)).format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let s = service::Entity::find_by_id((host.to_string(), binary.to_string())).one(&db.write).await.unwrap().unwrap();
    let mut am: service::ActiveModel = s.into();
    am.updated_at = Set(old);
    am.update(&db.write).await.unwrap();
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

const GLOBAL: &[&str] =
    &["backup_gigabytes", "backups", "gigabytes", "groups", "per_volume_gigabytes", "snapshots", "volumes"];

#[tokio::test]
async fn quota_sets_show_update_delete() {
    for api in strict_clouds().await {
        let b = api.backend;
        let path = format!("/v3/os-quota-sets/{PROJECT_A}");
        let r = api.get(&path, MEMBER).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let q = &r.body["quota_set"];
        let mut want: Vec<String> = GLOBAL.iter().map(|s| s.to_string()).collect();
        want.push("id".into());
        // the default type the cloud made at start brings its per-type quotas
        want.extend(["gigabytes___DEFAULT__", "snapshots___DEFAULT__", "volumes___DEFAULT__"].map(String::from));
        want.sort();
        assert_eq!(keys(q), want, "{b}");
        assert_eq!(q["id"], PROJECT_A);
        assert_eq!((q["volumes"].as_i64(), q["gigabytes"].as_i64()), (Some(10), Some(1000)), "{b}");
        assert_eq!(q["per_volume_gigabytes"], -1);
        // the project-scoped URL reaches the same route
        assert_eq!(api.get(&format!("/v3/{PROJECT_A}/os-quota-sets/{PROJECT_A}"), READER).await.status, 200, "{b}");
        // another project's: admins only
        assert_eq!(api.get(&format!("/v3/os-quota-sets/{PROJECT_B}"), MEMBER).await.status, 403, "{b}");
        assert_eq!(api.get(&path, OTHER).await.status, 403, "{b}");
        assert_eq!(api.get(&format!("/v3/os-quota-sets/{PROJECT_B}"), ADMIN).await.status, 200, "{b}");

        // a volume type brings its per-type quotas, unlimited by default
        let fast = insert_type(&api.db, "fast", json!({})).await;
        let q = api.get(&path, MEMBER).await.body["quota_set"].clone();
        assert_eq!(
            (q["volumes_fast"].as_i64(), q["gigabytes_fast"].as_i64(), q["snapshots_fast"].as_i64()),
            (Some(-1), Some(-1), Some(-1))
        );

        // update: admin only, answer without id, text numbers taken
        let body = json!({"quota_set": {"volumes": 20, "gigabytes": "50", "volumes_fast": 3}});
        assert_eq!(api.put(&path, MEMBER, body.clone()).await.status, 403, "{b}");
        let r = api.put(&path, ADMIN, body).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert!(r.body["quota_set"].get("id").is_none());
        assert_eq!(
            (r.body["quota_set"]["volumes"].as_i64(), r.body["quota_set"]["gigabytes"].as_i64()),
            (Some(20), Some(50))
        );
        assert_eq!(r.body["quota_set"]["volumes_fast"], 3);
        let q = api.get(&path, MEMBER).await.body["quota_set"].clone();
        assert_eq!((q["volumes"].as_i64(), q["snapshots"].as_i64()), (Some(20), Some(10)), "{b}");
        // others keep the defaults
        assert_eq!(api.get(&format!("/v3/os-quota-sets/{PROJECT_B}"), OTHER).await.body["quota_set"]["volumes"], 10);

        // bad bodies
        for bad in [
            json!({"quota_set": {"bogus": 1}}),
            json!({"quota_set": {"volumes": -2}}),
            json!({"quota_set": {"volumes": "many"}}),
            json!({"quota_set": {"volumes": 2147483648i64}}),
            json!({"quota_set": {}}),
            json!({"quota_set": {"volumes": 1}, "extra": 1}),
            json!({"volumes": 1}),
        ] {
            let r = api.put(&path, ADMIN, bad.clone()).await;
            assert_eq!(r.status, 400, "{b}: {bad} -> {}", r.text);
        }
        let r = api.put(&path, ADMIN, json!({"quota_set": {"bogus": 1, "volumes": 1}})).await;
        assert!(r.text.contains("Bad key(s) in quota set: bogus"), "{b}: {}", r.text);

        // usage
        let v1 = insert_volume(&api.db, PROJECT_A, 5, Some(&fast)).await;
        insert_volume(&api.db, PROJECT_A, 2, None).await;
        insert_volume(&api.db, PROJECT_B, 7, None).await;
        insert_snapshot(&api.db, PROJECT_A, &v1, 5, Some(&fast)).await;
        insert_backup(&api.db, PROJECT_A, &v1, 5).await;
        let r = api.get(&format!("{path}?usage=true"), READER).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let q = &r.body["quota_set"];
        assert_eq!(q["id"], PROJECT_A);
        assert_eq!(q["volumes"], json!({"limit": 20, "in_use": 2, "reserved": 0}), "{b}");
        assert_eq!(q["gigabytes"], json!({"limit": 50, "in_use": 12, "reserved": 0}), "{b}");
        assert_eq!(q["snapshots"]["in_use"], 1);
        assert_eq!(q["backups"]["in_use"], 1);
        assert_eq!(q["backup_gigabytes"]["in_use"], 5);
        assert_eq!(q["volumes_fast"], json!({"limit": 3, "in_use": 1, "reserved": 0}), "{b}");
        assert_eq!(q["gigabytes_fast"]["in_use"], 10);
        assert_eq!(q["snapshots_fast"]["in_use"], 1);
        assert_eq!(api.get(&format!("{path}?usage=maybe"), READER).await.status, 400);
        // a limit may not go under the usage (-1 always may)
        let r = api.put(&path, ADMIN, json!({"quota_set": {"volumes": 1}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert!(r.text.contains("Current usage is 2"), "{b}: {}", r.text);
        assert_eq!(api.put(&path, ADMIN, json!({"quota_set": {"volumes": 2, "backups": -1}})).await.status, 200);

        // defaults ignore the overrides; delete returns to them
        let d = api.get(&format!("{path}/defaults"), MEMBER).await;
        assert_eq!(d.status, 200, "{b}: {}", d.text);
        assert_eq!(d.body["quota_set"]["volumes"], 10);
        assert_eq!(d.body["quota_set"]["id"], PROJECT_A);
        assert_eq!(api.delete(&path, MEMBER).await.status, 403);
        let r = api.delete(&path, ADMIN).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let q = api.get(&path, MEMBER).await.body["quota_set"].clone();
        assert_eq!(
            (q["volumes"].as_i64(), q["gigabytes"].as_i64(), q["backups"].as_i64()),
            (Some(10), Some(1000), Some(10))
        );
        assert_eq!(q["volumes_fast"], -1, "{b}");
    }
}

#[tokio::test]
async fn quota_classes_set_the_defaults() {
    for api in strict_clouds().await {
        let b = api.backend;
        let r = api.get("/v3/os-quota-class-sets/default", ADMIN).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["quota_class_set"]["id"], "default");
        assert_eq!(r.body["quota_class_set"]["volumes"], 10);
        assert_eq!(api.get("/v3/os-quota-class-sets/default", MEMBER).await.status, 403);
        assert_eq!(
            api.put("/v3/os-quota-class-sets/default", MEMBER, json!({"quota_class_set": {"volumes": 1}})).await.status,
            403
        );

        insert_type(&api.db, "gold", json!({})).await;
        let r = api
            .put(
                "/v3/os-quota-class-sets/default",
                ADMIN,
                json!({"quota_class_set": {"volumes": 11, "gigabytes": "1001", "volumes_gold": 4}}),
            )
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert!(r.body["quota_class_set"].get("id").is_none());
        assert_eq!(r.body["quota_class_set"]["volumes"], 11);
        assert_eq!(r.body["quota_class_set"]["volumes_gold"], 4);
        // every project's defaults and limits follow the default class
        let d = api.get(&format!("/v3/os-quota-sets/{PROJECT_B}/defaults"), OTHER).await;
        assert_eq!(
            (d.body["quota_set"]["volumes"].as_i64(), d.body["quota_set"]["gigabytes"].as_i64()),
            (Some(11), Some(1001)),
            "{b}"
        );
        assert_eq!(d.body["quota_set"]["volumes_gold"], 4);
        let s = api.get(&format!("/v3/os-quota-sets/{PROJECT_B}"), OTHER).await;
        assert_eq!(s.body["quota_set"]["volumes"], 11);
        assert_eq!(quotas::limit(&api.db.read, &api.cfg.volume, PROJECT_B, "volumes_gold").await.unwrap(), 4);
        // another class falls back to the default class
        let r = api.get("/v3/os-quota-class-sets/gold-class", ADMIN).await;
        assert_eq!(r.body["quota_class_set"]["volumes"], 11, "{b}");
        for bad in [
            json!({"quota_class_set": {"bogus": 1}}),
            json!({"quota_class_set": {"volumes": "-1"}}),
            json!({"quota_class_set": {"volumes": -2}}),
            json!({"quota_class_set": {"volumes": "x"}}),
            json!({"other": {}}),
        ] {
            let r = api.put("/v3/os-quota-class-sets/default", ADMIN, bad.clone()).await;
            assert_eq!(r.status, 400, "{b}: {bad} -> {}", r.text);
        }
        assert_eq!(
            api.put("/v3/os-quota-class-sets/default", ADMIN, json!({"quota_class_set": {"volumes": -1}})).await.status,
            200
        );
        assert_eq!(quotas::limit(&api.db.read, &api.cfg.volume, PROJECT_A, "volumes").await.unwrap(), -1);
    }
}

#[tokio::test]
async fn check_refuses_at_the_limit() {
    for api in strict_clouds().await {
        let b = api.backend;
        let cfg = &api.cfg.volume;
        let db = &api.db;
        assert_eq!(
            api.put(
                &format!("/v3/os-quota-sets/{PROJECT_A}"),
                ADMIN,
                json!({"quota_set": {"volumes": 2, "gigabytes": 10, "per_volume_gigabytes": 6, "backups": 1}})
            )
            .await
            .status,
            200
        );
        quotas::check(&db.write, cfg, PROJECT_A, &[("volumes", 1), ("gigabytes", 5), ("per_volume_gigabytes", 5)])
            .await
            .unwrap();
        insert_volume(db, PROJECT_A, 5, None).await;
        // the size of one volume
        let e =
            quotas::check(&db.write, cfg, PROJECT_A, &[("volumes", 1), ("gigabytes", 7), ("per_volume_gigabytes", 7)])
                .await
                .unwrap_err();
        assert_eq!(e.to_api().status.as_u16(), 413, "{b}");
        assert_eq!(
            e.to_string(),
            "VolumeSizeExceedsLimit: Requested volume size 7G is larger than maximum allowed limit 6G."
        );
        // the gigabytes
        let e = quotas::check(&db.write, cfg, PROJECT_A, &[("volumes", 1), ("gigabytes", 6)]).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 6G, quota is 10G and 5G has been consumed.",
            "{b}"
        );
        quotas::check(&db.write, cfg, PROJECT_A, &[("volumes", 1), ("gigabytes", 5)]).await.unwrap();
        insert_volume(db, PROJECT_A, 1, None).await;
        // the count
        let e = quotas::check(&db.write, cfg, PROJECT_A, &[("volumes", 1), ("gigabytes", 1)]).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "VolumeLimitExceeded: Maximum number of volumes allowed (2) exceeded for quota 'volumes'.",
            "{b}"
        );
        // zero and negative deltas are not checked; other projects are apart
        quotas::check(&db.write, cfg, PROJECT_A, &[("volumes", 0), ("gigabytes", -5)]).await.unwrap();
        quotas::check(&db.write, cfg, PROJECT_B, &[("volumes", 1), ("gigabytes", 5)]).await.unwrap();
        // snapshots count into gigabytes; backups into their own
        let e = quotas::check(&db.write, cfg, PROJECT_A, &[("snapshots", 1), ("gigabytes", 5)]).await.unwrap_err();
        assert!(e.to_string().starts_with("VolumeSizeExceedsAvailableQuota"), "{b}: {e}");
        let v = insert_volume(db, PROJECT_B, 1, None).await;
        insert_backup(db, PROJECT_A, &v, 3).await;
        let e = quotas::check(&db.write, cfg, PROJECT_A, &[("backups", 1), ("backup_gigabytes", 1)]).await.unwrap_err();
        assert_eq!(e.to_string(), "BackupLimitExceeded: Maximum number of backups allowed (1) exceeded", "{b}");
        // per type
        let t = insert_type(db, "slow", json!({})).await;
        assert_eq!(
            api.put(&format!("/v3/os-quota-sets/{PROJECT_B}"), ADMIN, json!({"quota_set": {"volumes_slow": 1}}))
                .await
                .status,
            200
        );
        insert_volume(db, PROJECT_B, 1, Some(&t)).await;
        let txn = db.write.begin().await.unwrap();
        let e = quotas::check(&txn, cfg, PROJECT_B, &[("volumes", 1), ("volumes_slow", 1)]).await.unwrap_err();
        txn.rollback().await.unwrap();
        assert_eq!(
            e.to_string(),
            "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes_slow'.",
            "{b}"
        );
        // unlimited
        assert_eq!(
            api.put(
                &format!("/v3/os-quota-sets/{PROJECT_A}"),
                ADMIN,
                json!({"quota_set": {"volumes": -1, "gigabytes": -1}})
            )
            .await
            .status,
            200
        );
        quotas::check(&db.write, cfg, PROJECT_A, &[("volumes", 100), ("gigabytes", 10000)]).await.unwrap();
    }
}

#[tokio::test]
async fn racing_creates_take_exactly_the_last_units() {
    for api in strict_clouds().await {
        let b = api.backend;
        assert_eq!(
            api.put(&format!("/v3/os-quota-sets/{PROJECT_A}"), ADMIN, json!({"quota_set": {"volumes": 5}}))
                .await
                .status,
            200
        );
        insert_volume(&api.db, PROJECT_A, 1, None).await;
        insert_volume(&api.db, PROJECT_A, 1, None).await;
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let db = api.db.clone();
            let cfg = api.cfg.volume.clone();
            tasks.push(tokio::spawn(async move {
                let txn = db.write.begin().await.unwrap();
                match quotas::check(&txn, &cfg, PROJECT_A, &[("volumes", 1), ("gigabytes", 1)]).await {
                    Ok(()) => {
                        volume_row(PROJECT_A, 1, None).insert(&txn).await.unwrap();
                        txn.commit().await.unwrap();
                        Ok(())
                    }
                    Err(e) => {
                        txn.rollback().await.unwrap();
                        Err(e)
                    }
                }
            }));
        }
        let mut passed = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => passed += 1,
                Err(e) => assert_eq!(e.to_api().status.as_u16(), 413, "{b}: {e}"),
            }
        }
        assert_eq!(passed, 3, "{b}");
        let used = quotas::usage(&api.db.read, PROJECT_A).await.unwrap();
        assert_eq!(used.get("volumes").copied(), Some(5), "{b}");
    }
}

#[tokio::test]
async fn limits_reflect_quotas_and_usage() {
    for api in strict_clouds().await {
        let b = api.backend;
        let r = api.get("/v3/limits", READER).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["limits"]["rate"], json!([]));
        let a = &r.body["limits"]["absolute"];
        assert_eq!(
            keys(a),
            [
                "maxTotalBackupGigabytes",
                "maxTotalBackups",
                "maxTotalSnapshots",
                "maxTotalVolumeGigabytes",
                "maxTotalVolumes",
                "totalBackupGigabytesUsed",
                "totalBackupsUsed",
                "totalGigabytesUsed",
                "totalSnapshotsUsed",
                "totalVolumesUsed"
            ]
        );
        assert_eq!((a["maxTotalVolumes"].as_i64(), a["totalVolumesUsed"].as_i64()), (Some(10), Some(0)));
        let v = insert_volume(&api.db, PROJECT_A, 3, None).await;
        insert_snapshot(&api.db, PROJECT_A, &v, 3, None).await;
        insert_backup(&api.db, PROJECT_A, &v, 3).await;
        api.put(&format!("/v3/os-quota-sets/{PROJECT_A}"), ADMIN, json!({"quota_set": {"volumes": 7}})).await;
        let a = api.get(&format!("/v3/{PROJECT_A}/limits"), MEMBER).await.body["limits"]["absolute"].clone();
        assert_eq!(a["maxTotalVolumes"], 7, "{b}");
        assert_eq!(a["totalVolumesUsed"], 1);
        assert_eq!(a["totalGigabytesUsed"], 6);
        assert_eq!(a["totalSnapshotsUsed"], 1);
        assert_eq!(a["totalBackupsUsed"], 1);
        assert_eq!(a["totalBackupGigabytesUsed"], 3);
        // another project sees its own
        let a = api.get("/v3/limits", OTHER).await.body["limits"]["absolute"].clone();
        assert_eq!((a["maxTotalVolumes"].as_i64(), a["totalVolumesUsed"].as_i64()), (Some(10), Some(0)));
        // from 3.39 an admin may ask about another project; before, and for others, it is ignored
        let p = format!("/v3/limits?project_id={PROJECT_A}");
        let mut admin_b = api.get_at(&p, OTHER, "3.39").await.body["limits"]["absolute"].clone();
        assert_eq!(admin_b["totalVolumesUsed"], 0);
        admin_b =
            api.get_at(&format!("/v3/limits?project_id={PROJECT_B}"), ADMIN, "3.39").await.body["limits"]["absolute"]
                .clone();
        assert_eq!(admin_b["totalVolumesUsed"], 0);
        let a =
            api.get_at(&format!("/v3/limits?project_id={PROJECT_B}"), ADMIN, "3.38").await.body["limits"]["absolute"]
                .clone();
        assert_eq!(a["totalVolumesUsed"], 1, "{b}");
    }
}

#[tokio::test]
async fn services_list_state_and_admin_actions() {
    for api in strict_clouds().await {
        let b = api.backend;
        let db = &api.db;
        // the cloud's own: sched1 (scheduler), volume1@file (volume), volume1 (backup)
        api.services_registered().await;
        services::heartbeat(&db.write, "node1", "cinder-scheduler", "nova", &[]).await.unwrap();
        services::heartbeat(&db.write, "node1@file", "cinder-volume", "nova", &[file_pool("file")]).await.unwrap();
        services::heartbeat(&db.write, "node1", "cinder-backup", "nova", &[]).await.unwrap();
        services::heartbeat(&db.write, "node2@file", "cinder-volume", "zone2", &[file_pool("file")]).await.unwrap();
        age_service(db, "node2@file", "cinder-volume", 3600).await;

        assert_eq!(api.get("/v3/os-services", MEMBER).await.status, 403);
        let r = api.get("/v3/os-services", ADMIN).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let list = r.body["services"].as_array().unwrap().clone();
        assert_eq!(list.len(), 4 + 3, "{b}: {}", r.text);
        let find = |l: &[Value], host: &str, bin: &str| -> Value {
            l.iter().find(|s| s["host"] == host && s["binary"] == bin).cloned().unwrap()
        };
        let v1 = find(&list, "node1@file", "cinder-volume");
        assert_eq!(
            (v1["state"].as_str(), v1["status"].as_str(), v1["zone"].as_str()),
            (Some("up"), Some("enabled"), Some("nova"))
        );
        assert_eq!(v1["disabled_reason"], Value::Null);
        assert_eq!(v1["frozen"], false);
        assert!(v1.get("cluster").is_none() && v1.get("backend_state").is_none());
        assert!(stratus_volume::store::services::parse_time(v1["updated_at"].as_str().unwrap()).is_some());
        let sched = find(&list, "node1", "cinder-scheduler");
        assert_eq!(keys(&sched), ["binary", "disabled_reason", "host", "state", "status", "updated_at", "zone"]);
        assert_eq!(find(&list, "node2@file", "cinder-volume")["state"], "down", "{b}");
        // microversioned fields
        let l = api.get_at("/v3/os-services", ADMIN, "3.49").await.body["services"].as_array().unwrap().clone();
        assert_eq!(find(&l, "node1@file", "cinder-volume")["backend_state"], "up");
        assert_eq!(find(&l, "node2@file", "cinder-volume")["backend_state"], "down");
        assert_eq!(find(&l, "node1", "cinder-scheduler")["cluster"], Value::Null);
        assert!(find(&l, "node1", "cinder-scheduler").get("backend_state").is_none());
        // filters: a bare host matches its backends too
        let l = api.get("/v3/os-services?host=node1", ADMIN).await.body["services"].as_array().unwrap().clone();
        assert_eq!(l.len(), 3, "{b}");
        let l =
            api.get("/v3/os-services?binary=cinder-volume", ADMIN).await.body["services"].as_array().unwrap().clone();
        assert_eq!(l.len(), 2 + 1);
        let l = api.get("/v3/os-services?host=node1&binary=cinder-volume", ADMIN).await.body["services"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0]["host"], "node1@file");

        let alive = |l: Vec<service::Model>| l.into_iter().map(|s| s.host).collect::<Vec<_>>();
        assert_eq!(
            alive(services::alive_volume_hosts(&db.read, 60).await.unwrap()),
            ["node1@file", "volume1@file"],
            "{b}"
        );

        // disable, with a reason, and enable again
        let body = json!({"host": "node1@file", "binary": "cinder-volume"});
        assert_eq!(api.put("/v3/os-services/disable", MEMBER, body.clone()).await.status, 403);
        let r = api.put("/v3/os-services/disable", ADMIN, body.clone()).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(
            r.body,
            json!({"host": "node1@file", "service": "", "binary": "cinder-volume", "status": "disabled", "disabled": true})
        );
        assert_eq!(alive(services::alive_volume_hosts(&db.read, 60).await.unwrap()), ["volume1@file"], "{b}");
        // a heartbeat keeps it disabled
        services::heartbeat(&db.write, "node1@file", "cinder-volume", "nova", &[file_pool("file")]).await.unwrap();
        let l = api.get("/v3/os-services?binary=cinder-volume&host=node1", ADMIN).await.body["services"].clone();
        assert_eq!(l[0]["status"], "disabled", "{b}");
        let r = api
            .put(
                "/v3/os-services/disable-log-reason",
                ADMIN,
                json!({"host": "node1@file", "binary": "cinder-volume", "disabled_reason": "maintenance"}),
            )
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["disabled_reason"], "maintenance");
        let l = api.get("/v3/os-services?binary=cinder-volume&host=node1", ADMIN).await.body["services"].clone();
        assert_eq!(l[0]["disabled_reason"], "maintenance", "{b}");
        let r =
            api.put("/v3/os-services/enable", ADMIN, json!({"host": "node1@file", "service": "cinder-volume"})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["status"], "enabled");
        assert_eq!(r.body["disabled_reason"], Value::Null);
        let l = api.get("/v3/os-services?binary=cinder-volume&host=node1", ADMIN).await.body["services"].clone();
        assert_eq!((l[0]["status"].as_str(), l[0]["disabled_reason"].is_null()), (Some("enabled"), true), "{b}");
        assert_eq!(services::alive_volume_hosts(&db.read, 60).await.unwrap().len(), 2);
        // errors
        assert_eq!(
            api.put("/v3/os-services/disable", ADMIN, json!({"host": "nowhere", "binary": "cinder-volume"}))
                .await
                .status,
            404
        );
        assert_eq!(api.put("/v3/os-services/disable", ADMIN, json!({"binary": "cinder-volume"})).await.status, 400);
        assert_eq!(api.put("/v3/os-services/disable", ADMIN, json!({"host": "node1@file"})).await.status, 400);
        assert_eq!(
            api.put("/v3/os-services/disable", ADMIN, json!({"host": "node1@file", "binary": "cinder-volume", "x": 1}))
                .await
                .status,
            400
        );
        assert_eq!(api.put("/v3/os-services/bogus", ADMIN, json!({})).await.status, 404);

        // freeze and thaw a backend
        let r = api.put("/v3/os-services/freeze", ADMIN, json!({"host": "node1@file"})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let l = api.get("/v3/os-services?binary=cinder-volume&host=node1", ADMIN).await.body["services"].clone();
        assert_eq!(l[0]["frozen"], true, "{b}");
        assert_eq!(alive(services::alive_volume_hosts(&db.read, 60).await.unwrap()), ["volume1@file"], "{b}");
        assert_eq!(api.put("/v3/os-services/thaw", ADMIN, json!({"host": "node1@file"})).await.status, 200);
        let l = api.get("/v3/os-services?binary=cinder-volume&host=node1", ADMIN).await.body["services"].clone();
        assert_eq!(l[0]["frozen"], false);
        assert_eq!(api.put("/v3/os-services/freeze", ADMIN, json!({"host": "nowhere"})).await.status, 400);
        assert_eq!(api.put_at("/v3/os-services/freeze", ADMIN, "3.26", json!({})).await.status, 400);
        assert_eq!(api.put_at("/v3/os-services/freeze", ADMIN, "3.26", json!({"cluster": "c1"})).await.status, 400);

        // is_up by hand
        let s = services::get(&db.read, "node2@file", "cinder-volume").await.unwrap().unwrap();
        assert!(!services::is_up(&s, 60) && services::is_up(&s, 7200));
    }
}

#[tokio::test]
async fn pools_capabilities_zones_and_hosts() {
    for api in strict_clouds().await {
        let b = api.backend;
        let db = &api.db;
        // the cloud's own: sched1, volume1@file (pool `file`, zone nova), volume1 (backup)
        api.services_registered().await;
        services::heartbeat(&db.write, "node1", "cinder-scheduler", "nova", &[]).await.unwrap();
        services::heartbeat(&db.write, "node1@file", "cinder-volume", "nova", &[file_pool("file")]).await.unwrap();
        services::heartbeat(&db.write, "node2@lvm", "cinder-volume", "zone2", &[file_pool("a"), file_pool("b")])
            .await
            .unwrap();
        services::heartbeat(&db.write, "node3@file", "cinder-volume", "zone3", &[file_pool("file")]).await.unwrap();
        age_service(db, "node3@file", "cinder-volume", 3600).await;

        assert_eq!(api.get("/v3/scheduler-stats/get_pools", MEMBER).await.status, 403);
        let r = api.get("/v3/scheduler-stats/get_pools", ADMIN).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let mut names: Vec<String> =
            r.body["pools"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
        names.sort();
        assert_eq!(names, ["node1@file#file", "node2@lvm#a", "node2@lvm#b", "volume1@file#file"], "{b}");
        assert_eq!(keys(&r.body["pools"][0]), ["name"]);
        let r = api.get("/v3/scheduler-stats/get_pools?detail=true", ADMIN).await;
        let p = r.body["pools"].as_array().unwrap().iter().find(|p| p["name"] == "node1@file#file").unwrap().clone();
        let caps = &p["capabilities"];
        assert_eq!(
            (caps["vendor_name"].as_str(), caps["storage_protocol"].as_str()),
            (Some("Open Source"), Some("file"))
        );
        assert_eq!((caps["total_capacity_gb"].as_i64(), caps["free_capacity_gb"].as_i64()), (Some(100), Some(90)));
        assert_eq!(caps["volume_backend_name"], "file");
        assert_eq!(caps["pool_name"], "file");
        assert!(caps["timestamp"].is_string());
        // filters from 3.28
        let r = api.get_at("/v3/scheduler-stats/get_pools?name=node2@lvm%23a", ADMIN, "3.28").await;
        assert_eq!(r.body["pools"].as_array().unwrap().len(), 1, "{b}: {}", r.text);
        assert_eq!(
            api.get("/v3/scheduler-stats/get_pools?name=node2@lvm%23a", ADMIN).await.body["pools"]
                .as_array()
                .unwrap()
                .len(),
            3 + 1
        );
        // a disabled host's pools are gone
        api.put("/v3/os-services/disable", ADMIN, json!({"host": "node2@lvm", "binary": "cinder-volume"})).await;
        let r = api.get("/v3/scheduler-stats/get_pools", ADMIN).await;
        assert_eq!(r.body["pools"].as_array().unwrap().len(), 1 + 1, "{b}");

        // capabilities of a backend (clients cut `#pool` off)
        assert_eq!(api.get("/v3/capabilities/node1@file", MEMBER).await.status, 403);
        let r = api.get("/v3/capabilities/node1@file", ADMIN).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let c = &r.body;
        assert_eq!(c["namespace"], "OS::Storage::Capabilities::node1@file");
        assert_eq!((c["vendor_name"].as_str(), c["volume_backend_name"].as_str()), (Some("Open Source"), Some("file")));
        assert_eq!(c["storage_protocol"], "file");
        assert_eq!(c["pool_name"], Value::Null);
        assert_eq!(c["replication_targets"], json!([]));
        for k in ["display_name", "description", "visibility"] {
            assert!(c[k].is_null());
        }
        assert!(c["properties"]["thin_provisioning"]["title"].is_string());
        assert_eq!(api.get("/v3/capabilities/node1@file%23file", ADMIN).await.body["pool_name"], "file", "{b}");
        assert_eq!(api.get("/v3/capabilities/node1", ADMIN).await.status, 200);
        assert_eq!(api.get("/v3/capabilities/nowhere@x", ADMIN).await.status, 404);

        // zones: of the volume services; available while one is enabled
        let r = api.get("/v3/os-availability-zone", READER).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let zones = r.body["availabilityZoneInfo"].as_array().unwrap().clone();
        let state = |z: &str| zones.iter().find(|x| x["zoneName"] == z).map(|x| x["zoneState"]["available"].clone());
        assert_eq!(zones.len(), 3, "{b}");
        assert_eq!(state("nova"), Some(json!(true)));
        assert_eq!(state("zone2"), Some(json!(false)));

        // os-hosts
        assert_eq!(api.get("/v3/os-hosts", MEMBER).await.status, 403);
        let r = api.get("/v3/os-hosts", ADMIN).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let hosts = r.body["hosts"].as_array().unwrap().clone();
        assert_eq!(hosts.len(), 3 + 3, "{b}: enabled services only");
        let h = hosts.iter().find(|h| h["host_name"] == "node1@file").unwrap();
        assert_eq!(keys(h), ["host_name", "last-update", "service", "service-state", "service-status", "zone"]);
        assert_eq!((h["service"].as_str(), h["service-status"].as_str()), (Some("cinder-volume"), Some("available")));
        assert_eq!(api.get("/v3/os-hosts?zone=zone3", ADMIN).await.body["hosts"].as_array().unwrap().len(), 1);
        let v = insert_volume(db, PROJECT_A, 4, None).await;
        insert_snapshot(db, PROJECT_A, &v, 4, None).await;
        let r = api.get("/v3/os-hosts/node1@file", ADMIN).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["host"][0]["resource"]["project"], "(total)");
        assert_eq!(r.body["host"][0]["resource"]["volume_count"], "1");
        assert_eq!(r.body["host"][1]["resource"]["total_snapshot_gb"], "4");
        assert_eq!(api.get("/v3/os-hosts/node2@lvm", ADMIN).await.status, 404, "{b}: disabled");
    }
}

/// `GET /v3/{project}/resource_filters` (3.33) serves Cinder's default table,
/// all or one resource; the volume list takes its non-admin filters from
/// the same table (400 for another key from 3.31, ignored before; admins
/// may use any).
#[tokio::test]
async fn resource_filters_match_what_lists_accept() {
    for api in strict_clouds().await {
        let b = api.backend;
        let path = format!("/v3/{PROJECT_A}/resource_filters");
        assert_eq!(api.get_at(&path, MEMBER, "3.32").await.status, 404, "{b}");
        let r = api.get_at(&path, MEMBER, "3.33").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let all = r.body["resource_filters"].as_array().unwrap();
        let resources: Vec<&str> = all.iter().map(|f| f["resource"].as_str().unwrap()).collect();
        assert_eq!(
            resources,
            ["volume", "backup", "snapshot", "group", "group_snapshot", "attachment", "message", "pool", "volume_type"],
            "{b}"
        );
        let r = api.get_at(&format!("{path}?resource=volume"), MEMBER, "3.33").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let one = r.body["resource_filters"].as_array().unwrap();
        assert_eq!(one.len(), 1, "{b}");
        assert_eq!(one[0]["resource"], "volume");
        let vol_filters: Vec<String> =
            one[0]["filters"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
        for f in ["name", "status", "metadata", "bootable", "migration_status", "availability_zone", "group_id", "size"]
        {
            assert!(vol_filters.iter().any(|v| v == f), "{b}: {f} in {vol_filters:?}");
        }
        let r = api.get_at(&format!("{path}?resource=nothing"), MEMBER, "3.33").await;
        assert_eq!(r.body["resource_filters"], json!([]), "{b}");

        // every advertised volume filter is accepted by the volume list
        insert_volume(&api.db, PROJECT_A, 1, None).await;
        for f in &vol_filters {
            let r = api.get_at(&format!("/v3/{PROJECT_A}/volumes/detail?{f}=x"), MEMBER, "3.60").await;
            assert_eq!(r.status, 200, "{b}: {f}: {}", r.text);
        }
        // another key: refused from 3.31, ignored before, any for admins
        let r = api.get_at(&format!("/v3/{PROJECT_A}/volumes?host=h"), MEMBER, "3.31").await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert!(r.text.contains("Invalid filters host"), "{b}: {}", r.text);
        let r = api.get_at(&format!("/v3/{PROJECT_A}/volumes?host=h"), MEMBER, "3.30").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["volumes"].as_array().unwrap().len(), 1, "{b}");
        let r = api.get_at(&format!("/v3/{PROJECT_A}/volumes?host=h"), ADMIN, "3.31").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        // all_tenants never counts against a non-admin
        let r = api.get_at(&format!("/v3/{PROJECT_A}/volumes?all_tenants=1"), MEMBER, "3.31").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        // a listed snapshot filter passes, an unlisted one not
        let r = api.get_at(&format!("/v3/{PROJECT_A}/snapshots?volume_id=x"), MEMBER, "3.31").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let r = api.get_at(&format!("/v3/{PROJECT_A}/snapshots?size=1"), MEMBER, "3.31").await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
    }
}

/// A token from an application credential with access rules reaches only
/// the requests they match (the path as sent, project included); anything
/// else is a 401, as keystonemiddleware answers.
#[tokio::test]
async fn access_rules_of_a_token_are_enforced() {
    for api in strict_clouds().await {
        let b = api.backend;
        let r = api.get(&format!("/v3/{PROJECT_A}/volumes/detail"), RULED).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let r = api.get(&format!("/v3/{PROJECT_A}/volumes"), RULED).await;
        assert_eq!(r.status, 401, "{b}: {}", r.text);
        let r = api.get("/v3/volumes/detail", RULED).await;
        assert_eq!(r.status, 401, "{b}: the rule names the project segment: {}", r.text);
        let r = api.post(&format!("/v3/{PROJECT_A}/volumes"), RULED, json!({"volume": {"size": 1}})).await;
        assert_eq!(r.status, 401, "{b}: {}", r.text);
        // the same user's token without rules
        assert_eq!(api.get(&format!("/v3/{PROJECT_A}/volumes"), MEMBER).await.status, 200, "{b}");
    }
}
