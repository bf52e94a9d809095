//! Quotas, quota classes, limits, server groups and tenant usage over HTTP
//! on every reachable backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use stratus_compute::store::{quotas, server_groups};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn quota_sets_per_microversion() {
    for api in apis().await {
        let b = api.backend;
        let path = format!("/v2.1/os-quota-sets/{PROJECT_A}");
        let r = api.get(&path, MEMBER, "2.1").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let q = &r.body["quota_set"];
        assert_eq!(keys(q).len(), 15, "14 resources and the id");
        assert_eq!(q["id"], PROJECT_A);
        assert_eq!(
            (q["instances"].as_i64(), q["cores"].as_i64(), q["ram"].as_i64()),
            (Some(10), Some(20), Some(51200))
        );
        assert_eq!(q["floating_ips"], -1);
        assert_eq!(q["injected_file_path_bytes"], 255);
        let r = api.get(&path, MEMBER, "2.36").await;
        assert_eq!(keys(&r.body["quota_set"]).len(), 11);
        assert!(r.body["quota_set"].get("security_groups").is_none());
        let r = api.get(&path, MEMBER, "2.57").await;
        assert_eq!(
            keys(&r.body["quota_set"]),
            ["cores", "id", "instances", "key_pairs", "metadata_items", "ram", "server_group_members", "server_groups"]
        );
        // readers of the project and admins; not another project
        assert_eq!(api.get(&path, READER, "2.1").await.status, 200);
        assert_eq!(api.get(&path, OTHER, "2.1").await.status, 403);
        assert_eq!(api.get(&format!("/v2.1/os-quota-sets/{PROJECT_B}"), ADMIN, "2.1").await.status, 200);
        // defaults: anyone
        let r = api.get(&format!("{path}/defaults"), OTHER, "2.57").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["quota_set"]["instances"], 10);

        // update: admin only; the answer has no id
        let body = json!({"quota_set": {"instances": 50, "cores": "-1"}});
        assert_eq!(api.put(&path, MEMBER, "2.1", body.clone()).await.status, 403);
        let r = api.put(&path, ADMIN, "2.1", body).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert!(r.body["quota_set"].get("id").is_none());
        assert_eq!(r.body["quota_set"]["instances"], 50);
        assert_eq!(r.body["quota_set"]["cores"], -1);
        // network quotas are gone from 2.36
        assert_eq!(api.put(&path, ADMIN, "2.36", json!({"quota_set": {"floating_ips": 3}})).await.status, 400);
        assert_eq!(api.put(&path, ADMIN, "2.35", json!({"quota_set": {"floating_ips": 3}})).await.status, 200);
        for bad in [
            json!({"quota_set": {"instances": -2}}),
            json!({"quota_set": {"instances": "many"}}),
            json!({"quota_set": {"bogus": 1}}),
        ] {
            assert_eq!(api.put(&path, ADMIN, "2.1", bad.clone()).await.status, 400, "{b}: {bad}");
        }

        // usage bounds the limit unless forced
        for _ in 0..3 {
            insert_instance(&api.db, NewInstance { vcpus: 2, memory_mb: 1024, ..Default::default() }).await;
        }
        insert_instance(&api.db, NewInstance { deleted: true, ..Default::default() }).await;
        let r = api.get(&format!("{path}/detail"), MEMBER, "2.1").await;
        assert_eq!(r.status, 200, "{b}");
        assert_eq!(r.body["quota_set"]["instances"], json!({"limit": 50, "in_use": 3, "reserved": 0}));
        assert_eq!(r.body["quota_set"]["cores"]["in_use"], 6);
        assert_eq!(r.body["quota_set"]["ram"]["in_use"], 3072);
        let r = api.put(&path, ADMIN, "2.1", json!({"quota_set": {"instances": 2}})).await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body["badRequest"]["message"],
            "Quota limit 2 for instances must be greater than or equal to already used and reserved 3."
        );
        let r = api.put(&path, ADMIN, "2.1", json!({"quota_set": {"instances": 2, "force": true}})).await;
        assert_eq!(r.status, 200, "{b}");
        assert_eq!(r.body["quota_set"]["instances"], 2);

        // user quotas: within what the project leaves
        let upath = format!("{path}?user_id={MEMBER_USER}");
        let r = api.put(&upath, ADMIN, "2.1", json!({"quota_set": {"instances": 5}})).await;
        assert_eq!(r.status, 400, "{b}: more than the project's 2");
        let r = api.put(&upath, ADMIN, "2.1", json!({"quota_set": {"key_pairs": 7}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["quota_set"]["key_pairs"], 7);
        assert_eq!(api.get(&upath, MEMBER, "2.1").await.body["quota_set"]["key_pairs"], 7);
        assert_eq!(api.get(&path, MEMBER, "2.1").await.body["quota_set"]["key_pairs"], 100);
        let limits = quotas::limits(&api.db, &api.svc.cfg, PROJECT_A, Some(MEMBER_USER)).await.unwrap();
        assert_eq!((limits["key_pairs"], limits["instances"], limits["cores"]), (7, 2, -1));

        // delete: back to the defaults (users too)
        assert_eq!(api.delete(&path, MEMBER, "2.1").await.status, 403);
        let r = api.delete(&path, ADMIN, "2.1").await;
        assert_eq!(r.status, 202);
        assert_eq!(r.text, "");
        assert_eq!(api.get(&path, MEMBER, "2.1").await.body["quota_set"]["instances"], 10);
        assert_eq!(api.get(&upath, MEMBER, "2.1").await.body["quota_set"]["key_pairs"], 100);
        // unknown query parameters from 2.75
        assert_eq!(api.get(&format!("{path}?x=1"), MEMBER, "2.74").await.status, 200);
        assert_eq!(api.get(&format!("{path}?x=1"), MEMBER, "2.75").await.status, 400);
    }
}

#[tokio::test]
async fn quota_classes_and_defaults() {
    for api in apis().await {
        let b = api.backend;
        let path = "/v2.1/os-quota-class-sets/default";
        assert_eq!(api.get(path, MEMBER, "2.1").await.status, 403);
        let r = api.get(path, ADMIN, "2.1").await;
        assert_eq!(r.status, 200, "{b}");
        assert_eq!(r.body["quota_class_set"]["id"], "default");
        assert!(r.body["quota_class_set"].get("server_groups").is_none(), "not before 2.50");
        assert!(r.body["quota_class_set"].get("floating_ips").is_some());
        let r = api.get(path, ADMIN, "2.50").await;
        assert!(r.body["quota_class_set"].get("server_groups").is_some());
        assert!(r.body["quota_class_set"].get("floating_ips").is_none());
        assert!(r.body["quota_class_set"].get("injected_files").is_some());
        assert!(api.get(path, ADMIN, "2.57").await.body["quota_class_set"].get("injected_files").is_none());

        let r = api.put(path, ADMIN, "2.57", json!({"quota_class_set": {"instances": 30, "server_groups": 4}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert!(r.body["quota_class_set"].get("id").is_none());
        assert_eq!(r.body["quota_class_set"]["instances"], 30);
        assert_eq!(api.put(path, ADMIN, "2.57", json!({"quota_class_set": {"injected_files": 1}})).await.status, 400);
        assert_eq!(api.put(path, MEMBER, "2.57", json!({"quota_class_set": {"instances": 1}})).await.status, 403);
        // the default class is every project's default
        let r = api.get(&format!("/v2.1/os-quota-sets/{PROJECT_B}"), OTHER, "2.57").await;
        assert_eq!(r.body["quota_set"]["instances"], 30);
        assert_eq!(r.body["quota_set"]["server_groups"], 4);
        let r = api.get(&format!("/v2.1/os-quota-sets/{PROJECT_B}/defaults"), OTHER, "2.57").await;
        assert_eq!(r.body["quota_set"]["instances"], 30);
        // another class starts from the configuration
        let r = api.get("/v2.1/os-quota-class-sets/gold", ADMIN, "2.57").await;
        assert_eq!(r.body["quota_class_set"]["instances"], 10);
    }
}

#[tokio::test]
async fn limits_per_microversion() {
    for api in apis().await {
        let b = api.backend;
        insert_instance(&api.db, NewInstance { vcpus: 4, memory_mb: 2048, ..Default::default() }).await;
        let r = api.get("/v2.1/limits", READER, "2.1").await;
        assert_eq!(r.status, 200, "{b}");
        assert_eq!(r.body["limits"]["rate"], json!([]));
        let a = &r.body["limits"]["absolute"];
        assert_eq!(keys(a).len(), 19);
        assert_eq!(
            (a["totalInstancesUsed"].as_i64(), a["totalCoresUsed"].as_i64(), a["totalRAMUsed"].as_i64()),
            (Some(1), Some(4), Some(2048))
        );
        assert_eq!(a["maxTotalKeypairs"], 100);
        assert_eq!(a["maxImageMeta"], 128);
        let r = api.get("/v2.1/limits", READER, "2.36").await;
        assert_eq!(keys(&r.body["limits"]["absolute"]).len(), 14);
        let r = api.get("/v2.1/limits", READER, "2.39").await;
        assert!(r.body["limits"]["absolute"].get("maxImageMeta").is_none());
        let r = api.get("/v2.1/limits", READER, "2.57").await;
        assert_eq!(
            keys(&r.body["limits"]["absolute"]),
            [
                "maxServerGroupMembers",
                "maxServerGroups",
                "maxServerMeta",
                "maxTotalCores",
                "maxTotalInstances",
                "maxTotalKeypairs",
                "maxTotalRAMSize",
                "totalCoresUsed",
                "totalInstancesUsed",
                "totalRAMUsed",
                "totalServerGroupsUsed"
            ]
        );
        // another project's limits: admins only
        assert_eq!(api.get(&format!("/v2.1/limits?tenant_id={PROJECT_B}"), MEMBER, "2.1").await.status, 403);
        let r = api.get(&format!("/v2.1/limits?tenant_id={PROJECT_B}"), ADMIN, "2.1").await;
        assert_eq!(r.body["limits"]["absolute"]["totalInstancesUsed"], 0);
        let r = api.get("/v2.1/limits", OTHER, "2.1").await;
        assert_eq!(r.body["limits"]["absolute"]["totalInstancesUsed"], 0);
        assert_eq!(api.get("/v2.1/limits?x=1", OTHER, "2.75").await.status, 400);
    }
}

#[tokio::test]
async fn server_groups_per_microversion() {
    for api in apis().await {
        let b = api.backend;
        // before 2.64: policies; soft ones from 2.15
        let r = api
            .post(
                "/v2.1/os-server-groups",
                MEMBER,
                "2.1",
                json!({"server_group": {"name": "g1", "policies": ["anti-affinity"]}}),
            )
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let g = &r.body["server_group"];
        assert_eq!(keys(g), ["id", "members", "metadata", "name", "policies"]);
        assert_eq!(g["policies"], json!(["anti-affinity"]));
        let g1 = g["id"].as_str().unwrap().to_string();
        let soft = json!({"server_group": {"name": "g2", "policies": ["soft-affinity"]}});
        assert_eq!(api.post("/v2.1/os-server-groups", MEMBER, "2.14", soft.clone()).await.status, 400);
        let r = api.post("/v2.1/os-server-groups", MEMBER, "2.15", soft).await;
        assert_eq!(r.status, 200, "{b}");
        assert_eq!(r.body["server_group"]["project_id"], PROJECT_A);
        assert_eq!(r.body["server_group"]["user_id"], MEMBER_USER);
        for bad in [
            json!({"server_group": {"name": "x", "policies": []}}),
            json!({"server_group": {"name": "x", "policies": ["affinity", "anti-affinity"]}}),
            json!({"server_group": {"name": "x", "policies": ["friends"]}}),
            json!({"server_group": {"name": "x", "policy": "affinity"}}),
            json!({"server_group": {"policies": ["affinity"]}}),
        ] {
            assert_eq!(api.post("/v2.1/os-server-groups", MEMBER, "2.15", bad.clone()).await.status, 400, "{b}: {bad}");
        }
        // 2.64: policy and rules
        let r = api
            .post("/v2.1/os-server-groups", MEMBER, "2.64", json!({"server_group": {"name": "g3", "policy": "anti-affinity", "rules": {"max_server_per_host": "2"}}}))
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let g = &r.body["server_group"];
        assert_eq!(keys(g), ["id", "members", "name", "policy", "project_id", "rules", "user_id"]);
        assert_eq!(g["rules"], json!({"max_server_per_host": 2}));
        let g3 = g["id"].as_str().unwrap().to_string();
        let r = api
            .post(
                "/v2.1/os-server-groups",
                MEMBER,
                "2.64",
                json!({"server_group": {"name": "g4", "policy": "affinity", "rules": {"max_server_per_host": 2}}}),
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["badRequest"]["message"], "Only anti-affinity policy supports rules.");
        for bad in [
            json!({"server_group": {"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}}),
            json!({"server_group": {"name": "x", "policy": "anti-affinity", "rules": {"other": 1}}}),
            json!({"server_group": {"name": "x", "policies": ["affinity"]}}),
        ] {
            assert_eq!(api.post("/v2.1/os-server-groups", MEMBER, "2.64", bad.clone()).await.status, 400, "{b}: {bad}");
        }
        assert_eq!(
            api.post(
                "/v2.1/os-server-groups",
                READER,
                "2.64",
                json!({"server_group": {"name": "r", "policy": "affinity"}})
            )
            .await
            .status,
            403
        );
        let r = api
            .post(
                "/v2.1/os-server-groups",
                OTHER,
                "2.64",
                json!({"server_group": {"name": "b1", "policy": "affinity"}}),
            )
            .await;
        assert_eq!(r.status, 200);
        let b1 = r.body["server_group"]["id"].as_str().unwrap().to_string();

        // members: what the conductor records, minus deleted servers
        let alive = insert_instance(&api.db, NewInstance::default()).await;
        let gone = insert_instance(&api.db, NewInstance { deleted: true, ..Default::default() }).await;
        server_groups::add_member(&api.db.write, &g3, &alive).await.unwrap();
        server_groups::add_member(&api.db.write, &g3, &gone).await.unwrap();
        server_groups::add_member(&api.db.write, &g3, &alive).await.unwrap();
        let sg = server_groups::get(&api.db, &g3).await.unwrap().unwrap();
        assert_eq!(sg.members.len(), 2);
        assert_eq!(sg.max_server_per_host(), 2);
        assert_eq!(sg.policy, "anti-affinity");
        let r = api.get(&format!("/v2.1/os-server-groups/{g3}"), READER, "2.64").await;
        assert_eq!(r.body["server_group"]["members"], json!([alive]));
        server_groups::remove_member(&api.db, &alive).await.unwrap();
        let r = api.get(&format!("/v2.1/os-server-groups/{g3}"), READER, "2.64").await;
        assert_eq!(r.body["server_group"]["members"], json!([]));
        assert!(server_groups::add_member(&api.db.write, "no-such-group", &alive).await.is_err());

        // list: own project; admins with all_projects; limit and offset
        let r = api.get("/v2.1/os-server-groups", READER, "2.64").await;
        assert_eq!(r.body["server_groups"].as_array().unwrap().len(), 3, "{b}");
        let r = api.get("/v2.1/os-server-groups?all_projects=true", MEMBER, "2.64").await;
        assert_eq!(r.body["server_groups"].as_array().unwrap().len(), 3, "members get their own");
        let r = api.get("/v2.1/os-server-groups?all_projects=true", ADMIN, "2.64").await;
        assert_eq!(r.body["server_groups"].as_array().unwrap().len(), 4);
        let r = api.get("/v2.1/os-server-groups?all_projects=1&limit=2&offset=1", ADMIN, "2.64").await;
        let names: Vec<&str> =
            r.body["server_groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["g2", "g3"], "{b}");
        assert_eq!(api.get("/v2.1/os-server-groups?offset=-1", ADMIN, "2.64").await.status, 400);
        assert_eq!(api.get("/v2.1/os-server-groups?bogus=1", ADMIN, "2.75").await.status, 400);

        // another project's group: 403 as Nova answers; unknown: 404
        assert_eq!(api.get(&format!("/v2.1/os-server-groups/{b1}"), MEMBER, "2.64").await.status, 403);
        assert_eq!(api.get(&format!("/v2.1/os-server-groups/{b1}"), ADMIN, "2.64").await.status, 200);
        let r = api.get("/v2.1/os-server-groups/nope", MEMBER, "2.64").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["itemNotFound"]["message"], "Instance group nope could not be found.");
        assert_eq!(api.delete(&format!("/v2.1/os-server-groups/{g1}"), READER, "2.64").await.status, 403);
        assert_eq!(api.delete(&format!("/v2.1/os-server-groups/{g1}"), OTHER, "2.64").await.status, 403);
        assert_eq!(api.delete(&format!("/v2.1/os-server-groups/{g1}"), MEMBER, "2.64").await.status, 204);
        assert_eq!(api.delete(&format!("/v2.1/os-server-groups/{g1}"), MEMBER, "2.64").await.status, 404);
    }
}

#[tokio::test]
async fn server_group_quota_under_racing_creates() {
    for api in apis().await {
        let b = api.backend;
        let r = api
            .put(&format!("/v2.1/os-quota-sets/{PROJECT_A}"), ADMIN, "2.64", json!({"quota_set": {"server_groups": 3}}))
            .await;
        assert_eq!(r.status, 200, "{b}");
        let api = std::sync::Arc::new(api);
        let mut tasks = Vec::new();
        for i in 0..10 {
            let api = api.clone();
            let who = if i % 2 == 0 { MEMBER } else { ADMIN };
            tasks.push(tokio::spawn(async move {
                let r = api
                    .post(
                        "/v2.1/os-server-groups",
                        who,
                        "2.64",
                        json!({"server_group": {"name": format!("g{i}"), "policy": "affinity"}}),
                    )
                    .await;
                (r.status, r.text)
            }));
        }
        let mut codes = Vec::new();
        for t in tasks {
            let (code, text) = t.await.unwrap();
            if code == 403 {
                assert!(text.contains("Quota exceeded, too many server groups."), "{text}");
            }
            codes.push(code);
        }
        codes.sort();
        assert_eq!(codes.iter().filter(|c| **c == 200).count(), 3, "{b}: {codes:?}");
        assert_eq!(codes.iter().filter(|c| **c == 403).count(), 7, "{b}: {codes:?}");
        let r = api.get("/v2.1/limits", MEMBER, "2.64").await;
        assert_eq!(r.body["limits"]["absolute"]["totalServerGroupsUsed"], 3);
        assert_eq!(r.body["limits"]["absolute"]["maxServerGroups"], 3);
    }
}

#[tokio::test]
async fn simple_tenant_usage() {
    for api in apis().await {
        let b = api.backend;
        let hour = 3_600_000_000i64;
        let now = chrono::Utc::now().timestamp_micros();
        // ran 2 hours and stopped; still running for 1 hour; never launched; other project
        let done = insert_instance(
            &api.db,
            NewInstance {
                vcpus: 2,
                memory_mb: 1024,
                root_gb: 10,
                launched_at: Some(now - 5 * hour),
                terminated_at: Some(now - 3 * hour),
                deleted: true,
                ..Default::default()
            },
        )
        .await;
        let running = insert_instance(
            &api.db,
            NewInstance { vcpus: 1, memory_mb: 512, root_gb: 1, launched_at: Some(now - hour), ..Default::default() },
        )
        .await;
        insert_instance(&api.db, NewInstance::default()).await;
        insert_instance(
            &api.db,
            NewInstance { project: PROJECT_B, user: OTHER_USER, launched_at: Some(now - hour), ..Default::default() },
        )
        .await;

        let start = (chrono::Utc::now() - chrono::Duration::hours(6)).format("%Y-%m-%dT%H:%M:%S").to_string();
        let end = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
        let q = format!("start={start}&end={end}");

        assert_eq!(api.get(&format!("/v2.1/os-simple-tenant-usage?{q}"), MEMBER, "2.1").await.status, 403);
        let r = api.get(&format!("/v2.1/os-simple-tenant-usage?{q}&detailed=1"), ADMIN, "2.1").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let usages = r.body["tenant_usages"].as_array().unwrap();
        assert_eq!(usages.len(), 2, "{b}");
        let a = usages.iter().find(|u| u["tenant_id"] == PROJECT_A).unwrap();
        let hours = a["total_hours"].as_f64().unwrap();
        assert!((hours - 3.0).abs() < 0.05, "{b}: {hours}");
        let vcpu_hours = a["total_vcpus_usage"].as_f64().unwrap();
        assert!((vcpu_hours - 5.0).abs() < 0.05, "{b}: {vcpu_hours}");
        let servers = a["server_usages"].as_array().unwrap();
        assert_eq!(servers.len(), 2);
        let d = servers.iter().find(|s| s["instance_id"] == done.as_str()).unwrap();
        assert_eq!(d["state"], "terminated");
        assert_eq!(d["uptime"], 7200);
        assert_eq!(d["local_gb"], 10);
        assert_eq!(d["flavor"], "m1.test");
        assert!(d["ended_at"].is_string());
        let run = servers.iter().find(|s| s["instance_id"] == running.as_str()).unwrap();
        assert_eq!(run["state"], "active");
        assert_eq!(run["ended_at"], Value::Null);
        // without detailed, no server usages
        let r = api.get(&format!("/v2.1/os-simple-tenant-usage?{q}"), ADMIN, "2.1").await;
        assert!(r.body["tenant_usages"][0].get("server_usages").is_none());

        // one project: its readers
        let path = format!("/v2.1/os-simple-tenant-usage/{PROJECT_A}?{q}");
        let r = api.get(&path, READER, "2.1").await;
        assert_eq!(r.status, 200, "{b}");
        assert_eq!(r.body["tenant_usage"]["server_usages"].as_array().unwrap().len(), 2);
        assert_eq!(api.get(&path, OTHER, "2.1").await.status, 403);
        let r = api.get(&format!("/v2.1/os-simple-tenant-usage/nobody?{q}"), ADMIN, "2.1").await;
        assert_eq!(r.body, json!({"tenant_usage": {}}));

        // paging from 2.40: by server
        let r = api.get(&format!("{path}&limit=1"), READER, "2.40").await;
        assert_eq!(r.body["tenant_usage"]["server_usages"].as_array().unwrap().len(), 1, "{b}");
        let next = r.body["tenant_usage_links"][0]["href"].as_str().unwrap();
        assert!(next.contains(&format!("marker={done}")), "{next}");
        let r = api.get(&format!("{path}&limit=1&marker={done}"), READER, "2.40").await;
        assert_eq!(r.body["tenant_usage"]["server_usages"][0]["instance_id"], running.as_str());
        assert_eq!(api.get(&format!("{path}&marker=nope"), READER, "2.40").await.status, 400);

        // bad periods
        let r = api.get("/v2.1/os-simple-tenant-usage?start=yesterday", ADMIN, "2.1").await;
        assert_eq!(r.status, 400);
        let r = api.get(&format!("/v2.1/os-simple-tenant-usage?start={end}&end={start}"), ADMIN, "2.1").await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.body["badRequest"]["message"],
            "Invalid start time. The start time cannot occur after the end time."
        );
        assert_eq!(api.get("/v2.1/os-simple-tenant-usage?x=1", ADMIN, "2.75").await.status, 400);
    }
}
