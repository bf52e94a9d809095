//! Aggregates, availability zones, services, hypervisors, hosts and
//! extensions over HTTP on every reachable backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use stratus_compute::entity::service;
use stratus_compute::store::{aggregates, compute_nodes, services};

async fn make_aggregate(api: &Api, name: &str, zone: Option<&str>) -> i64 {
    let r = api
        .post("/v2.1/os-aggregates", ADMIN, "2.41", json!({"aggregate": {"name": name, "availability_zone": zone}}))
        .await;
    assert_eq!(r.status, 200, "{}: {}", api.backend, r.text);
    r.body["aggregate"]["id"].as_i64().unwrap()
}

async fn agg_action(api: &Api, id: i64, body: Value) -> Resp {
    api.post(&format!("/v2.1/os-aggregates/{id}/action"), ADMIN, "2.41", body).await
}

#[tokio::test]
async fn aggregates_lifecycle_and_zone_rules() {
    for api in apis().await {
        let b = api.backend;
        api.compute_host("cmp1").await;
        api.compute_host("cmp2").await;
        services::upsert(&api.db, "ctl", "nova-conductor", "conductor").await.unwrap();

        // create: no hosts/metadata in the answer, uuid from 2.41
        let r = api
            .post(
                "/v2.1/os-aggregates",
                ADMIN,
                "2.1",
                json!({"aggregate": {"name": "agg1", "availability_zone": "zone-a"}}),
            )
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let a = &r.body["aggregate"];
        assert!(a.get("hosts").is_none() && a.get("metadata").is_none() && a.get("uuid").is_none());
        assert_eq!(a["availability_zone"], "zone-a");
        assert_eq!(a["deleted"], false);
        let id1 = a["id"].as_i64().unwrap();
        let r = api.get(&format!("/v2.1/os-aggregates/{id1}"), ADMIN, "2.41").await;
        assert_eq!(r.body["aggregate"]["metadata"], json!({"availability_zone": "zone-a"}));
        assert_eq!(r.body["aggregate"]["hosts"], json!([]));
        assert_eq!(r.body["aggregate"]["uuid"].as_str().unwrap().len(), 36);
        assert_eq!(r.body["aggregate"]["updated_at"], Value::Null);

        // names are unique; bad input; members are refused
        let r = api.post("/v2.1/os-aggregates", ADMIN, "2.1", json!({"aggregate": {"name": "agg1"}})).await;
        assert_eq!(r.status, 409, "{b}");
        assert_eq!(r.body["conflictingRequest"]["message"], "Aggregate agg1 already exists.");
        assert_eq!(
            api.post(
                "/v2.1/os-aggregates",
                ADMIN,
                "2.1",
                json!({"aggregate": {"name": "z", "availability_zone": "a:b"}})
            )
            .await
            .status,
            400
        );
        assert_eq!(api.post("/v2.1/os-aggregates", ADMIN, "2.1", json!({"aggregate": {}})).await.status, 400);
        assert_eq!(
            api.post("/v2.1/os-aggregates", MEMBER, "2.1", json!({"aggregate": {"name": "m"}})).await.status,
            403
        );
        assert_eq!(api.get("/v2.1/os-aggregates", MEMBER, "2.1").await.status, 403);
        let r = api.get("/v2.1/os-aggregates/abc", ADMIN, "2.1").await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["badRequest"]["message"], "Invalid input received: id must be an integer");
        assert_eq!(api.get("/v2.1/os-aggregates/999", ADMIN, "2.1").await.status, 404);

        // hosts: only compute services, once
        let r = agg_action(&api, id1, json!({"add_host": {"host": "nowhere"}})).await;
        assert_eq!(r.status, 404, "{b}");
        assert_eq!(r.body["itemNotFound"]["message"], "Compute host nowhere could not be found.");
        assert_eq!(agg_action(&api, id1, json!({"add_host": {"host": "ctl"}})).await.status, 404);
        let r = agg_action(&api, id1, json!({"add_host": {"host": "cmp1"}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["aggregate"]["hosts"], json!(["cmp1"]));
        assert_eq!(agg_action(&api, id1, json!({"add_host": {"host": "cmp1"}})).await.status, 409);
        assert_eq!(agg_action(&api, id1, json!({"add_host": {}})).await.status, 400);
        assert_eq!(agg_action(&api, id1, json!({"add_host": {"host": "bad host!"}})).await.status, 400);
        assert_eq!(agg_action(&api, id1, json!({"fly": {}})).await.status, 400);

        // one host, one zone
        let id2 = make_aggregate(&api, "agg2", Some("zone-b")).await;
        let r = agg_action(&api, id2, json!({"add_host": {"host": "cmp1"}})).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);
        assert!(r.text.contains("One or more hosts already in availability zone(s) ['zone-a']"), "{}", r.text);
        // an aggregate without a zone may share the host; one with the same zone too
        let id3 = make_aggregate(&api, "agg3", None).await;
        assert_eq!(agg_action(&api, id3, json!({"add_host": {"host": "cmp1"}})).await.status, 200);
        let id4 = make_aggregate(&api, "agg4", Some("zone-a")).await;
        assert_eq!(agg_action(&api, id4, json!({"add_host": {"host": "cmp1"}})).await.status, 200);
        // ...but giving that one another zone is refused
        let r = agg_action(&api, id3, json!({"set_metadata": {"metadata": {"availability_zone": "zone-c"}}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = api
            .put(
                &format!("/v2.1/os-aggregates/{id4}"),
                ADMIN,
                "2.41",
                json!({"aggregate": {"availability_zone": "zone-b"}}),
            )
            .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        // an empty zone name is refused, set_metadata sets and removes keys
        let r = agg_action(&api, id3, json!({"set_metadata": {"metadata": {"availability_zone": null}}})).await;
        assert_eq!(r.status, 400, "{b}");
        let r = agg_action(&api, id3, json!({"set_metadata": {"metadata": {"ssd": "true", "gpu": "no"}}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["aggregate"]["metadata"], json!({"ssd": "true", "gpu": "no"}));
        assert!(r.body["aggregate"]["updated_at"].is_string());
        let r = agg_action(&api, id3, json!({"set_metadata": {"metadata": {"gpu": null}}})).await;
        assert_eq!(r.body["aggregate"]["metadata"], json!({"ssd": "true"}));
        assert_eq!(agg_action(&api, id3, json!({"set_metadata": {"metadata": {"a/b": "x"}}})).await.status, 400);

        // update: name and zone, at least one of them
        let r = api
            .put(&format!("/v2.1/os-aggregates/{id2}"), ADMIN, "2.41", json!({"aggregate": {"name": "  renamed  "}}))
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["aggregate"]["name"], "renamed");
        assert_eq!(
            api.put(&format!("/v2.1/os-aggregates/{id2}"), ADMIN, "2.41", json!({"aggregate": {}})).await.status,
            400
        );
        assert_eq!(
            api.put(&format!("/v2.1/os-aggregates/{id2}"), ADMIN, "2.41", json!({"aggregate": {"name": "agg1"}}))
                .await
                .status,
            409
        );

        // what the scheduler reads
        let all = aggregates::all(&api.db).await.unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(aggregates::zone_of_host(&api.db, "cmp1", "nova").await.unwrap(), "zone-a");
        assert_eq!(aggregates::zone_of_host(&api.db, "cmp2", "nova").await.unwrap(), "nova");

        // a host with servers may not change zone
        insert_instance(&api.db, NewInstance { host: Some("cmp2"), ..Default::default() }).await;
        let r = agg_action(&api, id2, json!({"add_host": {"host": "cmp2"}})).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);

        // remove_host; delete only when empty
        let r = api.delete(&format!("/v2.1/os-aggregates/{id1}"), ADMIN, "2.41").await;
        assert_eq!(r.status, 400, "{b}");
        let r = agg_action(&api, id1, json!({"remove_host": {"host": "cmp2"}})).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["itemNotFound"]["message"], format!("Cannot remove host cmp2 in aggregate {id1}"));
        let r = agg_action(&api, id1, json!({"remove_host": {"host": "cmp1"}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["aggregate"]["hosts"], json!([]));
        let r = api.delete(&format!("/v2.1/os-aggregates/{id1}"), ADMIN, "2.41").await;
        assert_eq!(r.status, 200, "{b}");
        assert_eq!(api.get(&format!("/v2.1/os-aggregates/{id1}"), ADMIN, "2.41").await.status, 404);

        // the image cache request (2.81)
        let img = "9d2f9c1e-5c3b-4b7a-8a3e-2f6b1c0d9e8f";
        let path = format!("/v2.1/os-aggregates/{id2}/images");
        assert_eq!(api.post(&path, ADMIN, "2.80", json!({"cache": [{"id": img}]})).await.status, 404);
        assert_eq!(api.post(&path, ADMIN, "2.81", json!({"cache": [{"id": img}]})).await.status, 202);
        assert_eq!(api.post(&path, ADMIN, "2.81", json!({"cache": [{"id": img}, {"id": img}]})).await.status, 400);
        assert_eq!(api.post(&path, ADMIN, "2.81", json!({"cache": []})).await.status, 400);
        assert_eq!(api.post(&path, ADMIN, "2.81", json!({"cache": [{"id": "x"}]})).await.status, 400);
        assert_eq!(api.post(&path, MEMBER, "2.81", json!({"cache": [{"id": img}]})).await.status, 403);
        assert_eq!(
            api.post("/v2.1/os-aggregates/999/images", ADMIN, "2.81", json!({"cache": [{"id": img}]})).await.status,
            404
        );

        let r = api.get("/v2.1/os-aggregates", ADMIN, "2.1").await;
        assert_eq!(r.body["aggregates"].as_array().unwrap().len(), 3);
        assert!(r.body["aggregates"][0].get("uuid").is_none());
    }
}

#[tokio::test]
async fn availability_zones() {
    for api in apis().await {
        let b = api.backend;
        api.compute_host("cmp1").await;
        api.compute_host("cmp2").await;
        let (off, _) = api.compute_host("cmp3").await;
        services::update_state(&api.db, off.id, true, Some("maintenance".into()), false).await.unwrap();
        let c = services::upsert(&api.db, "ctl", "nova-conductor", "conductor").await.unwrap();
        services::heartbeat(&api.db, c.id).await.unwrap();
        let id = make_aggregate(&api, "az1", Some("zone-a")).await;
        assert_eq!(agg_action(&api, id, json!({"add_host": {"host": "cmp1"}})).await.status, 200);
        let id = make_aggregate(&api, "az3", Some("zone-off")).await;
        assert_eq!(agg_action(&api, id, json!({"add_host": {"host": "cmp3"}})).await.status, 200);

        // everyone may list zones; the internal one is hidden
        let r = api.get("/v2.1/os-availability-zone", READER, "2.1").await;
        assert_eq!(r.status, 200, "{b}");
        assert_eq!(
            r.body,
            json!({"availabilityZoneInfo": [
                {"zoneName": "nova", "zoneState": {"available": true}, "hosts": null},
                {"zoneName": "zone-a", "zoneState": {"available": true}, "hosts": null},
                {"zoneName": "zone-off", "zoneState": {"available": false}, "hosts": null},
            ]}),
            "{b}"
        );
        // the detail is for admins and shows hosts and services
        assert_eq!(api.get("/v2.1/os-availability-zone/detail", MEMBER, "2.1").await.status, 403);
        let r = api.get("/v2.1/os-availability-zone/detail", ADMIN, "2.1").await;
        assert_eq!(r.status, 200, "{b}");
        let zones = r.body["availabilityZoneInfo"].as_array().unwrap();
        let names: Vec<&str> = zones.iter().map(|z| z["zoneName"].as_str().unwrap()).collect();
        assert_eq!(names, ["internal", "nova", "zone-a", "zone-off"], "{b}");
        let internal = &zones[0]["hosts"]["ctl"]["nova-conductor"];
        assert_eq!(internal["available"], true);
        assert_eq!(internal["active"], true);
        assert!(internal["updated_at"].is_string());
        assert!(zones[2]["hosts"]["cmp1"]["nova-compute"].is_object());
        assert_eq!(zones[3]["hosts"], Value::Null);
    }
    // the default zone comes from the configuration
    for api in apis_with({
        let mut cfg = stratus_core::Config::default();
        cfg.compute.default_availability_zone = "elsewhere".into();
        cfg
    })
    .await
    {
        api.compute_host("cmp1").await;
        let r = api.get("/v2.1/os-availability-zone", MEMBER, "2.1").await;
        assert_eq!(r.body["availabilityZoneInfo"][0]["zoneName"], "elsewhere", "{}", api.backend);
    }
}

#[tokio::test]
async fn services_list_update_delete() {
    for api in apis().await {
        let b = api.backend;
        let (c1, _) = api.compute_host("cmp1").await;
        let (c2, _) = api.compute_host("cmp2").await;
        let sched = services::upsert(&api.db, "ctl", "nova-scheduler", "scheduler").await.unwrap();
        services::heartbeat(&api.db, sched.id).await.unwrap();
        // a compute service not heard from for long is down
        let (stale, _) = api.compute_host("cmp3").await;
        let old = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
        service::Entity::update_many()
            .col_expr(service::Column::LastSeenUp, Expr::value(Some(old)))
            .filter(service::Column::Id.eq(stale.id))
            .exec(&api.db.write)
            .await
            .unwrap();

        assert_eq!(api.get("/v2.1/os-services", MEMBER, "2.1").await.status, 403);
        let r = api.get("/v2.1/os-services", ADMIN, "2.1").await;
        assert_eq!(r.status, 200, "{b}");
        let list = r.body["services"].as_array().unwrap();
        assert_eq!(list.len(), 4);
        let s1 = list.iter().find(|s| s["host"] == "cmp1").unwrap();
        assert_eq!(s1["id"], c1.id);
        assert_eq!(s1["state"], "up");
        assert_eq!(s1["status"], "enabled");
        assert_eq!(s1["zone"], "nova");
        assert!(s1.get("forced_down").is_none());
        assert_eq!(list.iter().find(|s| s["host"] == "cmp3").unwrap()["state"], "down");
        assert_eq!(list.iter().find(|s| s["host"] == "ctl").unwrap()["zone"], "internal");
        let r = api.get("/v2.1/os-services?binary=nova-compute&host=cmp2", ADMIN, "2.11").await;
        assert_eq!(r.body["services"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["services"][0]["forced_down"], false);
        let r = api.get("/v2.1/os-services", ADMIN, "2.53").await;
        assert_eq!(r.body["services"][0]["id"], c1.uuid);
        assert_eq!(api.get("/v2.1/os-services?x=1", ADMIN, "2.75").await.status, 400);

        // the old style (before 2.53)
        let r =
            api.put("/v2.1/os-services/disable", ADMIN, "2.1", json!({"host": "cmp1", "binary": "nova-compute"})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body, json!({"service": {"host": "cmp1", "binary": "nova-compute", "status": "disabled"}}));
        let r = api
            .put(
                "/v2.1/os-services/disable-log-reason",
                ADMIN,
                "2.1",
                json!({"host": "cmp1", "binary": "nova-compute", "disabled_reason": "fan"}),
            )
            .await;
        assert_eq!(r.body["service"]["disabled_reason"], "fan");
        let r = api
            .put(
                "/v2.1/os-services/disable-log-reason",
                ADMIN,
                "2.1",
                json!({"host": "cmp1", "binary": "nova-compute"}),
            )
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["badRequest"]["message"], "Missing disabled reason field");
        let r = api.get("/v2.1/os-services?host=cmp1", ADMIN, "2.1").await;
        assert_eq!(r.body["services"][0]["status"], "disabled");
        assert_eq!(r.body["services"][0]["disabled_reason"], "fan");
        let r =
            api.put("/v2.1/os-services/enable", ADMIN, "2.1", json!({"host": "cmp1", "binary": "nova-compute"})).await;
        assert_eq!(r.body["service"]["status"], "enabled");
        // force-down from 2.11 only
        let body = json!({"host": "cmp2", "binary": "nova-compute", "forced_down": true});
        assert_eq!(api.put("/v2.1/os-services/force-down", ADMIN, "2.10", body.clone()).await.status, 400);
        let r = api.put("/v2.1/os-services/force-down", ADMIN, "2.11", body).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body, json!({"service": {"host": "cmp2", "binary": "nova-compute", "forced_down": true}}));
        let r = api.get("/v2.1/os-services?host=cmp2", ADMIN, "2.11").await;
        assert_eq!(r.body["services"][0]["state"], "down", "forced down counts as down");
        assert_eq!(
            api.put("/v2.1/os-services/dance", ADMIN, "2.1", json!({"host": "cmp1", "binary": "nova-compute"}))
                .await
                .status,
            404
        );
        let r = api
            .put("/v2.1/os-services/disable", ADMIN, "2.1", json!({"host": "ctl", "binary": "nova-scheduler"}))
            .await;
        assert_eq!(r.status, 400);
        assert!(r.text.contains("Updating a nova-scheduler service is not supported"), "{}", r.text);
        assert_eq!(
            api.put("/v2.1/os-services/disable", ADMIN, "2.1", json!({"host": "gone", "binary": "nova-compute"}))
                .await
                .status,
            404
        );
        assert_eq!(api.put("/v2.1/os-services/disable", ADMIN, "2.1", json!({"host": "cmp1"})).await.status, 400);
        assert_eq!(
            api.put("/v2.1/os-services/disable", MEMBER, "2.1", json!({"host": "cmp1", "binary": "nova-compute"}))
                .await
                .status,
            403
        );

        // the 2.53 style: by uuid
        let path = format!("/v2.1/os-services/{}", c2.uuid);
        let r = api
            .put(
                &path,
                ADMIN,
                "2.53",
                json!({"status": "disabled", "disabled_reason": "maintenance", "forced_down": false}),
            )
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let s = &r.body["service"];
        assert_eq!(
            (s["status"].as_str(), s["forced_down"].as_bool(), s["state"].as_str()),
            (Some("disabled"), Some(false), Some("up"))
        );
        assert_eq!(s["id"], c2.uuid);
        assert_eq!(s["disabled_reason"], "maintenance");
        let r = api.put(&path, ADMIN, "2.53", json!({"status": "enabled", "disabled_reason": "x"})).await;
        assert_eq!(r.status, 400);
        let r = api.put(&path, ADMIN, "2.53", json!({})).await;
        assert_eq!(
            r.body["badRequest"]["message"],
            "No updates were requested. Fields 'status' or 'forced_down' should be specified."
        );
        assert_eq!(api.put("/v2.1/os-services/disable", ADMIN, "2.53", json!({"status": "enabled"})).await.status, 400);
        assert_eq!(
            api.put(
                &format!("/v2.1/os-services/{}", uuid::Uuid::new_v4()),
                ADMIN,
                "2.53",
                json!({"status": "enabled"})
            )
            .await
            .status,
            404
        );
        assert_eq!(
            api.put(&format!("/v2.1/os-services/{}", sched.uuid), ADMIN, "2.53", json!({"status": "enabled"}))
                .await
                .status,
            400
        );
        let r = api.put(&path, ADMIN, "2.53", json!({"status": "enabled"})).await;
        assert_eq!(r.body["service"]["disabled_reason"], Value::Null);

        // delete: not while it hosts servers; the host leaves its aggregates and nodes
        insert_instance(&api.db, NewInstance { host: Some("cmp1"), ..Default::default() }).await;
        assert_eq!(api.delete(&format!("/v2.1/os-services/{}", c1.id), ADMIN, "2.1").await.status, 409);
        let agg = make_aggregate(&api, "a", None).await;
        assert_eq!(agg_action(&api, agg, json!({"add_host": {"host": "cmp2"}})).await.status, 200);
        assert_eq!(api.delete(&format!("/v2.1/os-services/{}", c2.id), ADMIN, "2.53").await.status, 400);
        assert_eq!(api.delete("/v2.1/os-services/abc", ADMIN, "2.1").await.status, 400);
        assert_eq!(api.delete(&format!("/v2.1/os-services/{}", c2.uuid), MEMBER, "2.53").await.status, 403);
        assert_eq!(api.delete(&format!("/v2.1/os-services/{}", c2.uuid), ADMIN, "2.53").await.status, 204);
        assert_eq!(api.delete(&format!("/v2.1/os-services/{}", c2.uuid), ADMIN, "2.53").await.status, 404);
        assert!(aggregates::get(&api.db, agg).await.unwrap().unwrap().hosts.is_empty());
        assert!(compute_nodes::of_host(&api.db, "cmp2").await.unwrap().is_empty());
        assert_eq!(api.delete(&format!("/v2.1/os-services/{}", sched.id), ADMIN, "2.1").await.status, 204);
    }
}

#[tokio::test]
async fn service_store_for_the_lead() {
    for api in apis().await {
        let b = api.backend;
        let s = services::upsert(&api.db, "h", "nova-compute", "compute").await.unwrap();
        let again = services::upsert(&api.db, "h", "nova-compute", "compute").await.unwrap();
        assert_eq!(s.id, again.id, "{b}");
        // never heard from: as recent as its creation (Nova counts the creation time)
        assert!(services::is_up(&s, 60));
        services::heartbeat(&api.db, s.id).await.unwrap();
        let s = services::get_by_host_binary(&api.db, "h", "nova-compute").await.unwrap().unwrap();
        assert_eq!(s.report_count, 1);
        assert!(services::is_up(&s, 60));
        assert_eq!(services::list(&api.db).await.unwrap().len(), 1);
        let n = compute_nodes::NewComputeNode {
            host: "h".into(),
            hypervisor_hostname: "h.local".into(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1,
            host_ip: "192.0.2.1".into(),
            vcpus: 4,
            memory_mb: 4096,
            local_gb: 10,
            uuid: uuid::Uuid::new_v4().to_string(),
            service_id: s.id,
            cpu_info: "{}".into(),
        };
        let first = compute_nodes::upsert(&api.db, n.clone()).await.unwrap();
        let mut bigger = n.clone();
        bigger.vcpus = 8;
        bigger.uuid = uuid::Uuid::new_v4().to_string();
        let second = compute_nodes::upsert(&api.db, bigger).await.unwrap();
        assert_eq!(first.id, second.id);
        assert_eq!(first.uuid, second.uuid, "a node keeps its uuid");
        assert_eq!(second.vcpus, 8);
        compute_nodes::update_usage(&api.db, first.id, 2, 1024, 5, 2).await.unwrap();
        let nodes = compute_nodes::list(&api.db).await.unwrap();
        assert_eq!(
            (nodes[0].vcpus_used, nodes[0].memory_mb_used, nodes[0].local_gb_used, nodes[0].running_vms),
            (2, 1024, 5, 2)
        );
    }
}

#[tokio::test]
async fn hypervisors_per_microversion() {
    for api in apis().await {
        let b = api.backend;
        let (s1, n1) = api.compute_host("cmp1").await;
        let (_, n2) = api.compute_host("cmp2").await;
        compute_nodes::update_usage(&api.db, n1.id, 2, 2048, 10, 1).await.unwrap();
        let vm = insert_instance(&api.db, NewInstance { host: Some("cmp1"), ..Default::default() }).await;
        // a node whose service is gone is not shown
        compute_nodes::upsert(
            &api.db,
            compute_nodes::NewComputeNode {
                host: "ghost".into(),
                hypervisor_hostname: "ghost.local".into(),
                hypervisor_type: "fake".into(),
                hypervisor_version: 1,
                host_ip: "192.0.2.9".into(),
                vcpus: 1,
                memory_mb: 1,
                local_gb: 1,
                uuid: uuid::Uuid::new_v4().to_string(),
                service_id: 999,
                cpu_info: "{}".into(),
            },
        )
        .await
        .unwrap();

        assert_eq!(api.get("/v2.1/os-hypervisors", MEMBER, "2.1").await.status, 403);
        let r = api.get("/v2.1/os-hypervisors", ADMIN, "2.1").await;
        assert_eq!(r.status, 200, "{b}");
        assert_eq!(
            r.body["hypervisors"][0],
            json!({"id": n1.id, "hypervisor_hostname": "cmp1.local", "state": "up", "status": "enabled"})
        );
        assert_eq!(r.body["hypervisors"].as_array().unwrap().len(), 2);

        let r = api.get("/v2.1/os-hypervisors/detail", ADMIN, "2.1").await;
        let h = &r.body["hypervisors"][0];
        assert_eq!(h["vcpus_used"], 2);
        assert_eq!(h["free_ram_mb"], 16384 - 2048);
        assert_eq!(h["free_disk_gb"], 90);
        assert_eq!(h["running_vms"], 1);
        assert_eq!(h["cpu_info"], "{}");
        assert_eq!(h["service"], json!({"id": s1.id, "host": "cmp1", "disabled_reason": null}));
        let r = api.get("/v2.1/os-hypervisors/detail", ADMIN, "2.28").await;
        assert_eq!(r.body["hypervisors"][0]["cpu_info"], json!({}));

        // show: integer ids before 2.53 (a non-integer is a 404), uuids after (a non-uuid is a 400)
        assert_eq!(api.get(&format!("/v2.1/os-hypervisors/{}", n1.id), ADMIN, "2.1").await.status, 200);
        assert_eq!(api.get("/v2.1/os-hypervisors/abc", ADMIN, "2.1").await.status, 404);
        assert_eq!(api.get(&format!("/v2.1/os-hypervisors/{}", n1.id), ADMIN, "2.53").await.status, 400);
        let r = api.get(&format!("/v2.1/os-hypervisors/{}?with_servers=true", n1.uuid), ADMIN, "2.53").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["hypervisor"]["id"], n1.uuid);
        assert_eq!(r.body["hypervisor"]["servers"][0]["uuid"], vm);
        assert_eq!(api.get(&format!("/v2.1/os-hypervisors/{}", uuid::Uuid::new_v4()), ADMIN, "2.53").await.status, 404);

        // paging from 2.33
        let r = api.get("/v2.1/os-hypervisors?limit=1", ADMIN, "2.33").await;
        assert_eq!(r.body["hypervisors"].as_array().unwrap().len(), 1);
        assert_eq!(
            r.body["hypervisors_links"][0]["href"],
            format!("{}/v2.1/os-hypervisors?limit=1&marker={}", api.base, n1.id)
        );
        let r = api.get(&format!("/v2.1/os-hypervisors?limit=1&marker={}", n1.uuid), ADMIN, "2.53").await;
        assert_eq!(r.body["hypervisors"][0]["id"], n2.uuid);
        assert_eq!(api.get("/v2.1/os-hypervisors?marker=nope", ADMIN, "2.53").await.status, 400);

        // search and servers: routes before 2.53, parameters from it
        let r = api.get("/v2.1/os-hypervisors/cmp1/search", ADMIN, "2.52").await;
        assert_eq!(r.body["hypervisors"].as_array().unwrap().len(), 1);
        assert_eq!(api.get("/v2.1/os-hypervisors/zzz/search", ADMIN, "2.52").await.status, 404);
        let r = api.get("/v2.1/os-hypervisors/cmp/servers", ADMIN, "2.52").await;
        let hs = r.body["hypervisors"].as_array().unwrap();
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0]["servers"][0]["uuid"], vm);
        assert!(hs[1].get("servers").is_none(), "no servers, no key (before 2.75)");
        assert_eq!(api.get("/v2.1/os-hypervisors/cmp1/search", ADMIN, "2.53").await.status, 404);
        let r = api.get("/v2.1/os-hypervisors?hypervisor_hostname_pattern=cmp2&with_servers=1", ADMIN, "2.75").await;
        assert_eq!(r.body["hypervisors"][0]["servers"], json!([]));
        assert_eq!(
            api.get("/v2.1/os-hypervisors?hypervisor_hostname_pattern=cmp&limit=1", ADMIN, "2.53").await.status,
            400
        );
        assert_eq!(api.get("/v2.1/os-hypervisors?hypervisor_hostname_pattern=zzz", ADMIN, "2.53").await.status, 404);
        assert_eq!(api.get("/v2.1/os-hypervisors?with_servers=maybe", ADMIN, "2.53").await.status, 400);
        assert_eq!(api.get("/v2.1/os-hypervisors?colour=1", ADMIN, "2.53").await.status, 400);

        // statistics and uptime until 2.87; 2.88 trims the detail
        let r = api.get("/v2.1/os-hypervisors/statistics", ADMIN, "2.87").await;
        assert_eq!(r.body["hypervisor_statistics"]["count"], 2, "{b}");
        assert_eq!(r.body["hypervisor_statistics"]["vcpus"], 16);
        assert_eq!(api.get("/v2.1/os-hypervisors/statistics", ADMIN, "2.88").await.status, 404);
        let r = api.get(&format!("/v2.1/os-hypervisors/{}/uptime", n1.uuid), ADMIN, "2.87").await;
        assert!(r.body["hypervisor"]["uptime"].is_string(), "{}", r.text);
        assert_eq!(api.get(&format!("/v2.1/os-hypervisors/{}/uptime", n1.uuid), ADMIN, "2.88").await.status, 404);
        let r = api.get(&format!("/v2.1/os-hypervisors/{}", n1.uuid), ADMIN, "2.88").await;
        let h = r.body["hypervisor"].as_object().unwrap();
        let mut keys: Vec<&str> = h.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "host_ip",
                "hypervisor_hostname",
                "hypervisor_type",
                "hypervisor_version",
                "id",
                "service",
                "state",
                "status",
                "uptime"
            ],
            "{b}"
        );
    }
}

#[tokio::test]
async fn hosts_and_extensions() {
    for api in apis().await {
        let b = api.backend;
        api.compute_host("cmp1").await;
        services::upsert(&api.db, "ctl", "nova-conductor", "conductor").await.unwrap();
        insert_instance(&api.db, NewInstance { host: Some("cmp1"), vcpus: 2, memory_mb: 1024, ..Default::default() })
            .await;
        let r = api.get("/v2.1/os-hosts", ADMIN, "2.42").await;
        assert_eq!(r.status, 200, "{b}");
        assert_eq!(
            r.body["hosts"],
            json!([{"host_name": "cmp1", "service": "compute", "zone": "nova"}, {"host_name": "ctl", "service": "conductor", "zone": "internal"}])
        );
        let r = api.get("/v2.1/os-hosts?zone=nova", ADMIN, "2.42").await;
        assert_eq!(r.body["hosts"].as_array().unwrap().len(), 1);
        let r = api.get("/v2.1/os-hosts/cmp1", ADMIN, "2.42").await;
        let res = r.body["host"].as_array().unwrap();
        assert_eq!(res[0]["resource"]["project"], "(total)");
        assert_eq!(res[2]["resource"]["cpu"], 2);
        assert_eq!(res[3]["resource"]["project"], PROJECT_A);
        assert_eq!(api.get("/v2.1/os-hosts/nope", ADMIN, "2.42").await.status, 404);
        assert_eq!(api.get("/v2.1/os-hosts", ADMIN, "2.43").await.status, 404);
        assert_eq!(api.get("/v2.1/os-hosts", MEMBER, "2.42").await.status, 403);

        let r = api.get("/v2.1/extensions", READER, "2.1").await;
        assert_eq!(r.status, 200);
        assert!(r.body["extensions"].as_array().unwrap().len() > 50);
        let r = api.get("/v2.1/extensions/os-keypairs", READER, "2.1").await;
        assert_eq!(r.body["extension"]["name"], "Keypairs", "{}", r.text);
        assert_eq!(api.get("/v2.1/extensions/nope", READER, "2.1").await.status, 404);
        // no token, no service
        let r = api.call(reqwest::Method::GET, "/v2.1/extensions", "bogus", None, None).await;
        assert_eq!(r.status, 401);
    }
}

#[tokio::test]
async fn odd_input_is_never_a_500() {
    use reqwest::Method;
    for api in apis().await {
        api.compute_host("cmp1").await;
        let agg = make_aggregate(&api, "odd", None).await;
        let writes: Vec<(Method, String)> = vec![
            (Method::POST, "/v2.1/flavors".into()),
            (Method::PUT, "/v2.1/flavors/1".into()),
            (Method::POST, "/v2.1/flavors/1/action".into()),
            (Method::POST, "/v2.1/flavors/1/os-extra_specs".into()),
            (Method::PUT, "/v2.1/flavors/1/os-extra_specs/k".into()),
            (Method::POST, "/v2.1/os-keypairs".into()),
            (Method::POST, "/v2.1/os-aggregates".into()),
            (Method::PUT, format!("/v2.1/os-aggregates/{agg}")),
            (Method::POST, format!("/v2.1/os-aggregates/{agg}/action")),
            (Method::POST, format!("/v2.1/os-aggregates/{agg}/images")),
            (Method::PUT, "/v2.1/os-services/disable".into()),
            (Method::PUT, format!("/v2.1/os-services/{}", uuid::Uuid::new_v4())),
            (Method::PUT, format!("/v2.1/os-quota-sets/{PROJECT_A}")),
            (Method::PUT, "/v2.1/os-quota-class-sets/default".into()),
            (Method::POST, "/v2.1/os-server-groups".into()),
        ];
        let bodies = [
            json!(null),
            json!([]),
            json!("text"),
            json!(12),
            json!({}),
            json!({"flavor": null}),
            json!({"keypair": {"name": {"deep": [1, 2]}}}),
            json!({"aggregate": {"name": "x".repeat(300)}}),
            json!({"add_host": {"host": null}}),
            json!({"set_metadata": {"metadata": {"k": 1}}}),
            json!({"cache": [null]}),
            json!({"quota_set": {"instances": 1e300}}),
            json!({"quota_class_set": {"cores": [1]}}),
            json!({"server_group": {"name": "n", "policy": 5, "rules": "x"}}),
            json!({"server_group": {"name": "n", "policies": "affinity"}}),
            json!({"status": 1, "forced_down": "perhaps"}),
            json!({"host": "h", "binary": "nova-compute", "forced_down": {}}),
            json!({"extra_specs": {"k": 1.5e300}}),
            json!({"addTenantAccess": {"tenant": ""}}),
        ];
        for mv in ["2.1", "2.53", "2.96"] {
            for (m, path) in &writes {
                for body in &bodies {
                    // `call` panics on any 5xx
                    let r = api.call(m.clone(), path, ADMIN, Some(mv), Some(body.clone())).await;
                    assert!(r.status < 500, "{}: {m} {path} {body}: {}", api.backend, r.text);
                }
            }
        }
        for q in [
            "limit=abc",
            "marker=%ff%fe",
            "limit=99999999999999999999999",
            "sort_key=",
            "start=2020-13-45T99:00:00",
            "offset=1e9",
        ] {
            for path in [
                "/v2.1/flavors",
                "/v2.1/os-keypairs",
                "/v2.1/os-hypervisors",
                "/v2.1/os-server-groups",
                "/v2.1/os-simple-tenant-usage",
            ] {
                let r = api.get(&format!("{path}?{q}"), ADMIN, "2.60").await;
                assert!(r.status < 500, "{path}?{q}");
            }
        }
    }
}
