//! The Placement API over HTTP, on every database backend that is up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN, READER, SERVICE, Server};
use serde_json::{Value, json};

const AGG1: &str = "11111111-1111-4111-8111-111111111111";
const AGG2: &str = "22222222-2222-4222-8222-222222222222";

async fn each<F, Fut>(f: F)
where
    F: Fn(Server) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for s in common::servers().await {
        eprintln!("--- {}", s.backend);
        f(s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_and_auth() {
    each(|s| async move {
        let r = s.call("GET", "/", "", None, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["versions"][0]["id"], "v1.0");
        assert_eq!(r.body["versions"][0]["max_version"], "1.39");
        assert_eq!(r.body["versions"][0]["min_version"], "1.0");
        assert_eq!(r.header("openstack-api-version"), Some("placement 1.0"));
        let r = s.call("GET", "/", "latest", None, None).await;
        assert_eq!(r.header("openstack-api-version"), Some("placement 1.39"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert!(r.header("last-modified").is_some());
        let r = s.call("GET", "/", "1.40", None, None).await;
        assert_eq!(r.status, 406);
        let r = s.call("GET", "/", "pony.horse", None, None).await;
        assert_eq!(r.status, 400);
        let r = s.call("GET", "/resource_providers", "", None, None).await;
        assert_eq!(r.status, 401);
        let r = s.call("GET", "/resource_providers", "", Some("bogus"), None).await;
        assert_eq!(r.status, 401);
        let r = s.call("GET", "/resource_providers", "", Some(READER), None).await;
        assert_eq!(r.status, 403);
        assert_eq!(r.body["errors"][0]["status"], 403);
        let r = s.call("GET", "/resource_providers", "", Some(SERVICE), None).await;
        assert_eq!(r.status, 200);
        // a reader may see the usages of its own project only
        let r = s.call("GET", "/usages?project_id=reader-project", "1.9", Some(READER), None).await;
        assert_eq!(r.status, 200);
        let r = s.call("GET", "/usages?project_id=other", "1.9", Some(READER), None).await;
        assert_eq!(r.status, 403);
        // the reshaper is the service's
        let r = s.call("POST", "/reshaper", "1.30", Some(ADMIN), Some(&json!({}))).await;
        assert_eq!(r.status, 403);
        let r = s.get("/nowhere", "").await;
        assert_eq!(r.status, 404);
        assert!(r.body["errors"][0]["request_id"].as_str().unwrap().starts_with("req-"));
        let r = s.call("PATCH", "/resource_providers", "", Some(ADMIN), None).await;
        assert_eq!(r.status, 405);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers() {
    each(|s| async move {
        // before 1.20: 201 without a body
        let r = s
            .post("/resource_providers", "1.0", &json!({"name": "old", "uuid": "8D8D4F2D6AB7466B8D4F2D6AB7466B8D"}))
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.header("location"), Some("/resource_providers/8d8d4f2d-6ab7-466b-8d4f-2d6ab7466b8d"));
        let r = s.post("/resource_providers", "1.20", &json!({"name": "cn1"})).await;
        assert_eq!(r.status, 200);
        let cn1 = r.body["uuid"].as_str().unwrap().to_string();
        assert_eq!(r.body["generation"], 0);
        assert_eq!(r.body["root_provider_uuid"], cn1.as_str());
        assert_eq!(r.body["parent_provider_uuid"], Value::Null);
        let rels: Vec<&str> = r.body["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
        assert_eq!(rels, ["self", "inventories", "usages", "aggregates", "traits", "allocations"]);
        // duplicates
        let r = s.post("/resource_providers", "1.20", &json!({"name": "cn1"})).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.code(), "placement.duplicate_name");
        assert!(r.detail().contains("Conflicting resource provider name: cn1 already exists"), "{}", r.detail());
        let r = s.post("/resource_providers", "1.20", &json!({"name": "x", "uuid": cn1})).await;
        assert_eq!(r.status, 409);
        // bad input
        for body in
            [json!({}), json!({"name": 3}), json!({"name": "a", "bogus": 1}), json!({"name": "a", "uuid": "nope"})]
        {
            let r = s.post("/resource_providers", "1.20", &body).await;
            assert_eq!(r.status, 400, "{body}");
            assert!(r.detail().starts_with("JSON does not validate"), "{}", r.detail());
        }
        let r = s.post("/resource_providers", "1.20", &json!({"name": "a".repeat(201)})).await;
        assert_eq!(r.status, 400);
        let r = s.call("POST", "/resource_providers", "1.20", Some(ADMIN), None).await;
        assert_eq!(r.status, 415);
        let r = s
            .http
            .post(format!("{}/resource_providers", s.url))
            .header("x-auth-token", ADMIN)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert!(body["errors"][0]["detail"].as_str().unwrap().starts_with("Malformed JSON"));

        // nested
        let r = s.post("/resource_providers", "1.13", &json!({"name": "child", "parent_provider_uuid": cn1})).await;
        assert_eq!(r.status, 400, "parent only from 1.14");
        let child = s.provider("numa0", Some(&cn1)).await;
        let grandchild = s.provider("pf0", Some(&child)).await;
        let r = s.get(&format!("/resource_providers/{grandchild}"), "1.14").await;
        assert_eq!(r.body["parent_provider_uuid"], child.as_str());
        assert_eq!(r.body["root_provider_uuid"], cn1.as_str());
        let r = s
            .post(
                "/resource_providers",
                "1.20",
                &json!({"name": "orphan", "parent_provider_uuid": "00000000-0000-4000-8000-000000000001"}),
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("parent provider UUID does not exist"), "{}", r.detail());
        let r = s.get(&format!("/resource_providers?in_tree={child}"), "1.14").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 3);
        let r = s.get("/resource_providers?in_tree=00000000-0000-4000-8000-000000000001", "1.14").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 0);
        let r = s.get("/resource_providers?in_tree=nope", "1.14").await;
        assert_eq!(r.status, 400);
        let r = s.get("/resource_providers?in_tree=nope", "1.13").await;
        assert_eq!(r.status, 400);
        // re-parenting needs 1.37; loops never
        let other = s.provider("cn2", None).await;
        let r = s
            .put(
                &format!("/resource_providers/{child}"),
                "1.36",
                &json!({"name": "numa0", "parent_provider_uuid": other}),
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("re-parenting a provider is not currently allowed"), "{}", r.detail());
        let r = s
            .put(
                &format!("/resource_providers/{cn1}"),
                "1.37",
                &json!({"name": "cn1", "parent_provider_uuid": grandchild}),
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("creating loop"), "{}", r.detail());
        let r = s
            .put(
                &format!("/resource_providers/{child}"),
                "1.37",
                &json!({"name": "numa0", "parent_provider_uuid": other}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["root_provider_uuid"], other.as_str());
        let r = s.get(&format!("/resource_providers/{grandchild}"), "1.14").await;
        assert_eq!(r.body["root_provider_uuid"], other.as_str(), "the subtree follows");
        let r = s.get(&format!("/resource_providers?in_tree={other}"), "1.14").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 3);
        let r = s
            .put(
                &format!("/resource_providers/{child}"),
                "1.37",
                &json!({"name": "numa0", "parent_provider_uuid": null}),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["root_provider_uuid"], child.as_str());
        // rename; a taken name
        let r = s.put(&format!("/resource_providers/{cn1}"), "1.20", &json!({"name": "compute-1"})).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["name"], "compute-1");
        let r = s.put(&format!("/resource_providers/{cn1}"), "1.20", &json!({"name": "cn2"})).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.code(), "placement.duplicate_name");
        // filters
        let r = s.get("/resource_providers?name=compute-1", "1.20").await;
        assert_eq!(r.body["resource_providers"][0]["uuid"], cn1.as_str());
        let r = s.get(&format!("/resource_providers?uuid={cn1}"), "1.20").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
        let r = s.get("/resource_providers?bogus=1", "1.20").await;
        assert_eq!(r.status, 400);
        assert!(r.detail().starts_with("Invalid query string parameters"), "{}", r.detail());
        let r = s.get("/resource_providers?uuid=nope", "1.20").await;
        assert_eq!(r.status, 400);
        // delete: not a parent, then gone
        let r = s.delete(&format!("/resource_providers/{child}"), "").await;
        assert_eq!(r.status, 409);
        assert_eq!(r.code(), "placement.resource_provider.cannot_delete_parent");
        assert_eq!(s.delete(&format!("/resource_providers/{grandchild}"), "").await.status, 204);
        assert_eq!(s.delete(&format!("/resource_providers/{child}"), "").await.status, 204);
        let r = s.delete(&format!("/resource_providers/{child}"), "").await;
        assert_eq!(r.status, 404);
        let r = s.get(&format!("/resource_providers/{child}"), "").await;
        assert_eq!(r.status, 404);
        let r = s.get("/resource_providers", "1.20").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventories() {
    each(|s| async move {
        let rp = s.provider("cn", None).await;
        let inv = format!("/resource_providers/{rp}/inventories");
        let r = s.get(&inv, "").await;
        assert_eq!(r.body, json!({"resource_provider_generation": 0, "inventories": {}}));
        let body = json!({"resource_provider_generation": 0, "inventories": {
            "VCPU": {"total": 8, "allocation_ratio": 16.0, "reserved": 1},
            "MEMORY_MB": {"total": 4096},
        }});
        let r = s.put(&inv, "1.20", &body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["resource_provider_generation"], 1);
        assert_eq!(r.body["inventories"]["VCPU"]["allocation_ratio"], 16.0);
        assert_eq!(r.body["inventories"]["MEMORY_MB"]["max_unit"], 2147483647);
        // a stale generation
        let r = s.put(&inv, "1.20", &body).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.code(), "placement.concurrent_update");
        // bad values
        for (body, why) in [
            (json!({"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 0}}}), "minimum"),
            (
                json!({"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 1, "step_size": 0}}}),
                "minimum",
            ),
            (
                json!({"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 1, "bogus": 0}}}),
                "Additional properties",
            ),
            (
                json!({"resource_provider_generation": 1, "inventories": {"vcpu": {"total": 1}}}),
                "Unknown resource class",
            ),
            (json!({"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 2147483648i64}}}), "maximum"),
            (json!({"resource_provider_generation": 1, "inventories": {"VCPU": {"total": "8"}}}), "not of type"),
            (json!({"inventories": {}}), "required property"),
        ] {
            let r = s.put(&inv, "1.20", &body).await;
            assert_eq!(r.status, 400, "{body}");
            assert!(r.detail().contains(why), "{why}: {}", r.detail());
        }
        let r = s
            .put(
                &inv,
                "1.25",
                &json!({"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 4, "reserved": 4}}}),
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("greater than or equal to total"), "{}", r.detail());
        let r = s
            .put(
                &inv,
                "1.26",
                &json!({"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 4, "reserved": 5}}}),
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("The reserved value is greater than total"), "{}", r.detail());
        let r = s
            .put(
                &inv,
                "1.20",
                &json!({"resource_provider_generation": 1, "inventories": {"CUSTOM_NOPE": {"total": 4}}}),
            )
            .await;
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("Unknown resource class in inventory"), "{}", r.detail());
        // one class
        let r = s.get(&format!("{inv}/VCPU"), "").await;
        assert_eq!(r.body["total"], 8);
        assert_eq!(r.body["resource_provider_generation"], 1);
        let r = s.get(&format!("{inv}/DISK_GB"), "").await;
        assert_eq!(r.status, 404);
        let r = s.put(&format!("{inv}/VCPU"), "", &json!({"resource_provider_generation": 1, "total": 16})).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["resource_provider_generation"], 2);
        assert_eq!(r.body["total"], 16);
        let r = s.put(&format!("{inv}/DISK_GB"), "", &json!({"resource_provider_generation": 2, "total": 16})).await;
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("No inventory record with resource class"), "{}", r.detail());
        let r = s.post(&inv, "", &json!({"resource_class": "DISK_GB", "total": 100})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["resource_provider_generation"], 3);
        let r = s.post(&inv, "", &json!({"resource_class": "DISK_GB", "total": 100})).await;
        assert_eq!(r.status, 409);
        let r = s.delete(&format!("{inv}/DISK_GB"), "").await;
        assert_eq!(r.status, 204);
        let r = s.delete(&format!("{inv}/DISK_GB"), "").await;
        assert_eq!(r.status, 404);
        // in use
        let consumer = "aaaaaaaa-0000-4000-8000-000000000001";
        let r = s
            .put(
                &format!("/allocations/{consumer}"),
                "1.28",
                &json!({
                "allocations": {rp.as_str(): {"resources": {"VCPU": 2}}},
                "project_id": "p", "user_id": "u", "consumer_generation": null}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = s.delete(&format!("{inv}/VCPU"), "").await;
        assert_eq!(r.status, 409);
        let r = s.delete(&inv, "1.5").await;
        assert_eq!(r.status, 409);
        assert_eq!(r.code(), "placement.inventory.inuse");
        let g = s.get(&inv, "").await.body["resource_provider_generation"].as_i64().unwrap();
        let r = s
            .put(&inv, "1.20", &json!({"resource_provider_generation": g, "inventories": {"MEMORY_MB": {"total": 1}}}))
            .await;
        assert_eq!(r.status, 409);
        assert_eq!(r.code(), "placement.inventory.inuse");
        let r = s.delete(&inv, "1.4").await;
        assert_eq!(r.status, 405);
        assert_eq!(s.delete(&format!("/allocations/{consumer}"), "").await.status, 204);
        assert_eq!(s.delete(&inv, "1.5").await.status, 204);
        assert_eq!(s.get(&inv, "").await.body["inventories"], json!({}));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classes_traits_aggregates() {
    each(|s| async move {
        let r = s.get("/resource_classes", "1.2").await;
        let names: Vec<&str> =
            r.body["resource_classes"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(&names[..3], ["VCPU", "MEMORY_MB", "DISK_GB"]);
        assert_eq!(s.get("/resource_classes", "1.1").await.status, 404);
        let r = s.post("/resource_classes", "1.2", &json!({"name": "CUSTOM_GPU"})).await;
        assert_eq!(r.status, 201);
        assert_eq!(s.post("/resource_classes", "1.2", &json!({"name": "CUSTOM_GPU"})).await.status, 409);
        assert_eq!(s.post("/resource_classes", "1.2", &json!({"name": "GPU"})).await.status, 400);
        assert_eq!(s.call("PUT", "/resource_classes/CUSTOM_FPGA2", "1.7", Some(ADMIN), None).await.status, 201);
        assert_eq!(s.call("PUT", "/resource_classes/CUSTOM_FPGA2", "1.7", Some(ADMIN), None).await.status, 204);
        assert_eq!(s.call("PUT", "/resource_classes/VCPU", "1.7", Some(ADMIN), None).await.status, 400);
        let r = s.put("/resource_classes/CUSTOM_GPU", "1.2", &json!({"name": "CUSTOM_GPU2"})).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["name"], "CUSTOM_GPU2");
        assert_eq!(s.put("/resource_classes/VCPU", "1.2", &json!({"name": "CUSTOM_X"})).await.status, 400);
        let r = s.get("/resource_classes/CUSTOM_GPU2", "1.2").await;
        assert_eq!(r.body["links"][0]["href"], "/resource_classes/CUSTOM_GPU2");
        assert_eq!(s.delete("/resource_classes/VCPU", "1.2").await.status, 400);
        assert_eq!(s.delete("/resource_classes/CUSTOM_GPU2", "1.2").await.status, 204);
        assert_eq!(s.get("/resource_classes/CUSTOM_GPU2", "1.2").await.status, 404);

        let r = s.get("/traits", "1.6").await;
        let all = r.body["traits"].as_array().unwrap();
        assert!(all.len() > 300);
        assert!(all.contains(&json!("HW_CPU_X86_AVX2")));
        assert_eq!(s.get("/traits", "1.5").await.status, 404);
        assert_eq!(s.call("PUT", "/traits/CUSTOM_GOLD", "1.6", Some(ADMIN), None).await.status, 201);
        assert_eq!(s.call("PUT", "/traits/CUSTOM_GOLD", "1.6", Some(ADMIN), None).await.status, 204);
        assert_eq!(s.call("PUT", "/traits/GOLD", "1.6", Some(ADMIN), None).await.status, 400);
        assert_eq!(s.get("/traits/CUSTOM_GOLD", "1.6").await.status, 204);
        assert_eq!(s.get("/traits/CUSTOM_NOPE", "1.6").await.status, 404);
        let r = s.get("/traits?name=startswith:CUSTOM_", "1.6").await;
        assert_eq!(r.body["traits"], json!(["CUSTOM_GOLD"]));
        let r = s.get("/traits?name=in:CUSTOM_GOLD,HW_CPU_X86_AVX2", "1.6").await;
        assert_eq!(r.body["traits"].as_array().unwrap().len(), 2);
        assert_eq!(s.get("/traits?name=bogus", "1.6").await.status, 400);
        assert_eq!(s.get("/traits?associated=maybe", "1.6").await.status, 400);
        assert_eq!(s.delete("/traits/HW_CPU_X86_AVX2", "1.6").await.status, 400);

        let rp = s.provider("cn", None).await;
        let t = format!("/resource_providers/{rp}/traits");
        let r = s
            .put(&t, "1.6", &json!({"resource_provider_generation": 0, "traits": ["CUSTOM_GOLD", "HW_CPU_X86_AVX2"]}))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["resource_provider_generation"], 1);
        let r = s.put(&t, "1.6", &json!({"resource_provider_generation": 0, "traits": []})).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.code(), "placement.concurrent_update");
        let r = s.put(&t, "1.6", &json!({"resource_provider_generation": 1, "traits": ["CUSTOM_NOPE"]})).await;
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("No such trait"), "{}", r.detail());
        let r = s.get(&t, "1.6").await;
        assert_eq!(r.body["traits"], json!(["CUSTOM_GOLD", "HW_CPU_X86_AVX2"]));
        assert_eq!(s.delete("/traits/CUSTOM_GOLD", "1.6").await.status, 409);
        let r = s.get("/traits?associated=true", "1.6").await;
        assert_eq!(r.body["traits"], json!(["CUSTOM_GOLD", "HW_CPU_X86_AVX2"]));
        let r = s.get("/resource_providers?required=CUSTOM_GOLD", "1.18").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
        let r = s.get("/resource_providers?required=!CUSTOM_GOLD", "1.22").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 0);
        let r = s.get("/resource_providers?required=!CUSTOM_GOLD", "1.21").await;
        assert_eq!(r.status, 400);
        let r = s.get("/resource_providers?required=in:CUSTOM_GOLD,CUSTOM_X", "1.39").await;
        assert_eq!(r.status, 400, "unknown trait");
        let r = s.get("/resource_providers?required=in:CUSTOM_GOLD,HW_CPU_X86_SSE", "1.39").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
        assert_eq!(s.delete(&t, "1.6").await.status, 204);
        assert_eq!(s.get(&t, "1.6").await.body["traits"], json!([]));
        assert_eq!(s.delete("/traits/CUSTOM_GOLD", "1.6").await.status, 204);

        let a = format!("/resource_providers/{rp}/aggregates");
        let r = s.get(&a, "1.1").await;
        assert_eq!(r.body, json!({"aggregates": []}));
        let r = s.put(&a, "1.1", &json!([AGG1])).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, json!({"aggregates": [AGG1]}));
        let g = s.get(&a, "1.19").await.body["resource_provider_generation"].as_i64().unwrap();
        let r = s.put(&a, "1.19", &json!({"aggregates": [AGG1, AGG2], "resource_provider_generation": g + 1})).await;
        assert_eq!(r.status, 409);
        let r = s.put(&a, "1.19", &json!({"aggregates": [AGG1, AGG2], "resource_provider_generation": g})).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["resource_provider_generation"], g + 1);
        let r = s.put(&a, "1.19", &json!({"aggregates": [AGG1, AGG1], "resource_provider_generation": g + 1})).await;
        assert_eq!(r.status, 400);
        let r = s.get(&format!("/resource_providers?member_of={AGG2}"), "1.3").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
        let r = s.get(&format!("/resource_providers?member_of=!{AGG2}"), "1.32").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 0);
        let r = s.get(&format!("/resource_providers?member_of=in:{AGG1},{AGG2}&member_of={AGG1}"), "1.24").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
        let r = s.get(&format!("/resource_providers?member_of={AGG1}&member_of={AGG2}"), "1.23").await;
        assert_eq!(r.status, 400);
        assert_eq!(s.get(&a, "1.0").await.status, 404);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_and_usages() {
    each(|s| async move {
        let cn1 = s.provider("cn1", None).await;
        let cn2 = s.provider("cn2", None).await;
        for rp in [&cn1, &cn2] {
            s.inventory(rp, &[("VCPU", 4), ("MEMORY_MB", 1024)]).await;
        }
        let c1 = "c0000000-0000-4000-8000-000000000001";
        let c2 = "c0000000-0000-4000-8000-000000000002";
        let claim = |rp: &str, vcpu: i64, gen_: Value| {
            json!({"allocations": {rp: {"resources": {"VCPU": vcpu, "MEMORY_MB": 256}}},
                   "project_id": "p1", "user_id": "u1", "consumer_generation": gen_})
        };
        // consumer generations from 1.28
        let r = s.put(&format!("/allocations/{c1}"), "1.28", &claim(&cn1, 2, json!(1))).await;
        assert_eq!(r.status, 409);
        assert!(r.detail().contains("expected null but got 1"), "{}", r.detail());
        let r = s.put(&format!("/allocations/{c1}"), "1.28", &claim(&cn1, 2, Value::Null)).await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = s.get(&format!("/allocations/{c1}"), "1.28").await;
        assert_eq!(r.body["consumer_generation"], 1);
        assert_eq!(r.body["project_id"], "p1");
        assert_eq!(r.body["allocations"][&cn1]["resources"]["VCPU"], 2);
        assert_eq!(r.body["allocations"][&cn1]["generation"], 2);
        let r = s.put(&format!("/allocations/{c1}"), "1.28", &claim(&cn1, 3, Value::Null)).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.code(), "placement.concurrent_update");
        let r = s.put(&format!("/allocations/{c1}"), "1.28", &claim(&cn1, 3, json!(1))).await;
        assert_eq!(r.status, 204);
        // over capacity, bad class, missing provider, constraints
        let r = s.put(&format!("/allocations/{c2}"), "1.28", &claim(&cn1, 2, Value::Null)).await;
        assert_eq!(r.status, 409);
        assert!(r.detail().contains("would exceed the capacity"), "{}", r.detail());
        let mut bad = claim(&cn1, 1, Value::Null);
        bad["allocations"][&cn1]["resources"] = json!({"CUSTOM_NOPE": 1});
        let r = s.put(&format!("/allocations/{c2}"), "1.28", &bad).await;
        assert_eq!(r.status, 400);
        let r = s
            .put(&format!("/allocations/{c2}"), "1.28", &claim("c0000000-0000-4000-8000-0000000000ff", 1, Value::Null))
            .await;
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("that does not exist"), "{}", r.detail());
        let mut bad = claim(&cn1, 1, Value::Null);
        bad["allocations"][&cn1]["resources"] = json!({"DISK_GB": 1});
        let r = s.put(&format!("/allocations/{c2}"), "1.28", &bad).await;
        assert_eq!(r.status, 409);
        let r = s.put("/allocations/not-a-uuid", "1.28", &claim(&cn1, 1, Value::Null)).await;
        assert_eq!(r.status, 400);
        assert!(r.detail().contains("Malformed consumer_uuid"));
        let r = s
            .put(
                &format!("/allocations/{c2}"),
                "1.28",
                &json!({"allocations": {}, "project_id": "p1", "user_id": "u1"}),
            )
            .await;
        assert_eq!(r.status, 400, "consumer_generation is required");
        // list form before 1.12
        let r = s
            .put(
                &format!("/allocations/{c2}"),
                "1.8",
                &json!({
            "allocations": [{"resource_provider": {"uuid": cn2}, "resources": {"VCPU": 1}}],
            "project_id": "p1", "user_id": "u2"}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = s.get(&format!("/allocations/{c2}"), "1.11").await;
        assert!(r.body.get("project_id").is_none());
        // usages
        let r = s.get(&format!("/resource_providers/{cn1}/usages"), "").await;
        assert_eq!(r.body["usages"], json!({"VCPU": 3, "MEMORY_MB": 256}));
        let r = s.get("/usages?project_id=p1", "1.9").await;
        assert_eq!(r.body["usages"], json!({"VCPU": 4, "MEMORY_MB": 256}));
        let r = s.get("/usages?project_id=p1&user_id=u2", "1.9").await;
        assert_eq!(r.body["usages"], json!({"VCPU": 1}));
        assert_eq!(s.get("/usages", "1.9").await.status, 400);
        assert_eq!(s.get("/usages?project_id=p1", "1.8").await.status, 404);
        let r = s.get(&format!("/resource_providers/{cn1}/allocations"), "1.28").await;
        assert_eq!(r.body["allocations"][c1]["resources"]["VCPU"], 3);
        assert_eq!(r.body["allocations"][c1]["consumer_generation"], 2);
        // move c1 from cn1 to cn2 through a migration consumer (as Nova does)
        let migration = "c0000000-0000-4000-8000-0000000000aa";
        let body = json!({
            migration: {"allocations": {cn1.as_str(): {"resources": {"VCPU": 3, "MEMORY_MB": 256}}},
                        "project_id": "p1", "user_id": "u1", "consumer_generation": null},
            c1: {"allocations": {cn2.as_str(): {"resources": {"VCPU": 2, "MEMORY_MB": 256}}},
                 "project_id": "p1", "user_id": "u1", "consumer_generation": 2},
        });
        assert_eq!(s.post("/allocations", "1.12", &body).await.status, 404, "POST from 1.13");
        let r = s.post("/allocations", "1.28", &body).await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = s.get(&format!("/allocations/{migration}"), "1.28").await;
        assert_eq!(r.body["allocations"][&cn1]["resources"]["VCPU"], 3);
        let r = s.get(&format!("/allocations/{c1}"), "1.28").await;
        assert_eq!(r.body["allocations"][&cn2]["resources"]["VCPU"], 2);
        assert!(r.body["allocations"].get(&cn1).is_none());
        // the migration consumer is emptied
        let r = s
            .post(
                "/allocations",
                "1.28",
                &json!({migration: {"allocations": {}, "project_id": "p1", "user_id": "u1", "consumer_generation": 1}}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = s.get(&format!("/allocations/{migration}"), "1.28").await;
        assert_eq!(r.body, json!({"allocations": {}}));
        // consumer types
        let r = s
            .put(
                &format!("/allocations/{c2}"),
                "1.38",
                &json!({
            "allocations": {cn2.as_str(): {"resources": {"VCPU": 1}}},
            "project_id": "p1", "user_id": "u2", "consumer_generation": 1}),
            )
            .await;
        assert_eq!(r.status, 400, "consumer_type is required at 1.38");
        let r = s
            .put(
                &format!("/allocations/{c2}"),
                "1.38",
                &json!({
            "allocations": {cn2.as_str(): {"resources": {"VCPU": 1}}},
            "project_id": "p1", "user_id": "u2", "consumer_generation": 1, "consumer_type": "INSTANCE"}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = s.get(&format!("/allocations/{c2}"), "1.38").await;
        assert_eq!(r.body["consumer_type"], "INSTANCE");
        let r = s.get(&format!("/allocations/{c1}"), "1.38").await;
        assert_eq!(r.body["consumer_type"], "unknown");
        let r = s.get("/usages?project_id=p1", "1.38").await;
        assert_eq!(
            r.body["usages"],
            json!({
            "INSTANCE": {"VCPU": 1, "consumer_count": 1},
            "unknown": {"VCPU": 2, "MEMORY_MB": 256, "consumer_count": 1}})
        );
        let r = s.get("/usages?project_id=p1&consumer_type=all", "1.38").await;
        assert_eq!(r.body["usages"], json!({"all": {"VCPU": 3, "MEMORY_MB": 256, "consumer_count": 2}}));
        let r = s.get("/usages?project_id=p1&consumer_type=INSTANCE", "1.38").await;
        assert_eq!(r.body["usages"], json!({"INSTANCE": {"VCPU": 1, "consumer_count": 1}}));
        let r = s.get("/usages?project_id=p1&consumer_type=instance", "1.38").await;
        assert_eq!(r.status, 400);
        // delete
        assert_eq!(s.delete(&format!("/allocations/{c1}"), "").await.status, 204);
        let r = s.delete(&format!("/allocations/{c1}"), "").await;
        assert_eq!(r.status, 404);
        assert!(r.detail().contains("No allocations for consumer"));
        let r = s.delete(&format!("/resource_providers/{cn2}"), "").await;
        assert_eq!(r.status, 409);
        assert_eq!(r.code(), "placement.resource_provider.inuse");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_candidates_over_http() {
    each(|s| async move {
        let cn1 = s.provider("cn1", None).await;
        let cn2 = s.provider("cn2", None).await;
        s.inventory(&cn1, &[("VCPU", 8), ("MEMORY_MB", 2048), ("DISK_GB", 100)]).await;
        s.inventory(&cn2, &[("VCPU", 2), ("MEMORY_MB", 2048)]).await;
        s.traits(&cn1, &["HW_CPU_X86_AVX2", "CUSTOM_FAST"]).await;
        s.aggregates(&cn2, &[AGG1]).await;
        let r = s.get("/allocation_candidates?resources=VCPU:1", "1.9").await;
        assert_eq!(r.status, 404);
        let r = s.get("/allocation_candidates?resources=VCPU:1,MEMORY_MB:512", "1.10").await;
        assert_eq!(r.status, 200);
        let reqs = r.body["allocation_requests"].as_array().unwrap();
        assert_eq!(reqs.len(), 2);
        assert!(reqs[0]["allocations"].is_array(), "list form before 1.12");
        let r = s.get("/allocation_candidates?resources=VCPU:4", "1.39").await;
        assert_eq!(r.body["allocation_requests"], json!([{"allocations": {cn1.as_str(): {"resources": {"VCPU": 4}}}, "mappings": {"": [cn1]}}]));
        let sum = &r.body["provider_summaries"][&cn1];
        assert_eq!(sum["resources"]["VCPU"], json!({"capacity": 8, "used": 0}));
        assert_eq!(sum["resources"]["DISK_GB"], json!({"capacity": 100, "used": 0}));
        assert_eq!(sum["traits"], json!(["CUSTOM_FAST", "HW_CPU_X86_AVX2"]));
        assert_eq!(sum["root_provider_uuid"], cn1.as_str());
        assert_eq!(sum["parent_provider_uuid"], Value::Null);
        let r = s.get("/allocation_candidates?resources=VCPU:4", "1.26").await;
        assert!(r.body["provider_summaries"][&cn1]["resources"].get("DISK_GB").is_none(), "only requested classes before 1.27");
        assert!(r.body["allocation_requests"][0].get("mappings").is_none());
        let r = s.get("/allocation_candidates?resources=VCPU:1&required=!CUSTOM_FAST", "1.22").await;
        assert_eq!(r.body["allocation_requests"].as_array().unwrap().len(), 1);
        assert!(r.body["provider_summaries"].get(&cn2).is_some());
        let r = s.get(&format!("/allocation_candidates?resources=VCPU:1&member_of={AGG1}"), "1.21").await;
        assert_eq!(r.body["provider_summaries"].as_object().unwrap().len(), 1);
        let r = s.get("/allocation_candidates?resources=VCPU:1&limit=1", "1.16").await;
        assert_eq!(r.body["allocation_requests"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["provider_summaries"].as_object().unwrap().len(), 1);
        // a claim is seen at once
        let c = "c0000000-0000-4000-8000-000000000003";
        let r = s.put(&format!("/allocations/{c}"), "1.28", &json!({"allocations": {cn1.as_str(): {"resources": {"VCPU": 7}}}, "project_id": "p", "user_id": "u", "consumer_generation": null})).await;
        assert_eq!(r.status, 204);
        let r = s.get("/allocation_candidates?resources=VCPU:2", "1.39").await;
        assert_eq!(r.body["allocation_requests"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["provider_summaries"][&cn2]["resources"]["VCPU"]["used"], 0);
        // bad input: 400, never 500
        for (q, mv) in [
            ("resources=", "1.39"),
            ("resources=VCPU", "1.39"),
            ("resources=VCPU:-1", "1.39"),
            ("resources=CUSTOM_NOPE:1", "1.39"),
            ("resources=VCPU:1&required=CUSTOM_NOPE", "1.39"),
            ("resources=VCPU:1&required=", "1.39"),
            ("resources=VCPU:1&member_of=nope", "1.39"),
            ("resources=VCPU:1&in_tree=nope", "1.39"),
            ("resources=VCPU:1&limit=-1", "1.39"),
            ("resources=VCPU:1&group_policy=bogus", "1.39"),
            ("resources1=VCPU:1&resources2=VCPU:1", "1.39"),
            ("required=HW_CPU_X86_AVX2", "1.39"),
            ("", "1.39"),
            ("resources=VCPU:1&limit=1", "1.15"),
            ("resources=VCPU:1&bogus=x", "1.39"),
        ] {
            let r = s.get(&format!("/allocation_candidates?{q}"), mv).await;
            assert_eq!(r.status, 400, "{q}: {}", r.body);
            assert_eq!(r.body["errors"][0]["status"], 400);
        }
        let r = s.get("/allocation_candidates?resources=VCPU:1&member_of=00000000-0000-4000-8000-000000000009", "1.39").await;
        assert_eq!(r.body, json!({"allocation_requests": [], "provider_summaries": {}}));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reshaper() {
    each(|s| async move {
        let cn = s.provider("cn", None).await;
        s.inventory(&cn, &[("VCPU", 8)]).await;
        let numa = s.provider("numa0", Some(&cn)).await;
        let c = "c0000000-0000-4000-8000-000000000004";
        let r = s.put(&format!("/allocations/{c}"), "1.28", &json!({"allocations": {cn.as_str(): {"resources": {"VCPU": 2}}}, "project_id": "p", "user_id": "u", "consumer_generation": null})).await;
        assert_eq!(r.status, 204);
        let gcn = s.get(&format!("/resource_providers/{cn}"), "1.30").await.body["generation"].as_i64().unwrap();
        let body = json!({
            "inventories": {
                cn.as_str(): {"resource_provider_generation": gcn, "inventories": {}},
                numa.as_str(): {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}},
            },
            "allocations": {c: {"allocations": {numa.as_str(): {"resources": {"VCPU": 2}}}, "project_id": "p", "user_id": "u", "consumer_generation": 1}},
        });
        let r = s.call("POST", "/reshaper", "1.30", Some(SERVICE), Some(&body)).await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = s.get(&format!("/allocations/{c}"), "1.28").await;
        assert_eq!(r.body["allocations"][&numa]["resources"]["VCPU"], 2);
        let r = s.get(&format!("/resource_providers/{cn}/inventories"), "").await;
        assert_eq!(r.body["inventories"], json!({}));
        let r = s.call("POST", "/reshaper", "1.30", Some(SERVICE), Some(&body)).await;
        assert_eq!(r.status, 409, "stale generations");
        let r = s.call("POST", "/reshaper", "1.29", Some(SERVICE), Some(&body)).await;
        assert_eq!(r.status, 404);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_never_a_500() {
    each(|s| async move {
        let rp = s.provider("cn", None).await;
        s.inventory(&rp, &[("VCPU", 4)]).await;
        let consumer = "c0000000-0000-4000-8000-0000000000bb";
        let bodies = [
            json!(null),
            json!([]),
            json!("text"),
            json!(7),
            json!({"allocations": null}),
            json!({"allocations": {rp.as_str(): {"resources": {"VCPU": 9223372036854775807i64}}}, "project_id": "p", "user_id": "u", "consumer_generation": null}),
            json!({"allocations": {rp.as_str(): {"resources": {"VCPU": 1.5}}}, "project_id": "p", "user_id": "u", "consumer_generation": null}),
            json!({"allocations": {"nope": {"resources": {"VCPU": 1}}}, "project_id": "p", "user_id": "u", "consumer_generation": null}),
            json!({"allocations": {rp.as_str(): {"resources": {}}}, "project_id": "p", "user_id": "u", "consumer_generation": null}),
            json!({"allocations": {rp.as_str(): {"resources": {"VCPU": 1}}}, "project_id": "", "user_id": "u", "consumer_generation": null}),
            json!({"allocations": {rp.as_str(): {"resources": {"VCPU": 1}}}, "project_id": "p", "user_id": "u", "consumer_generation": "1"}),
            json!({"resource_provider_generation": "x", "inventories": {}}),
            json!({"resource_provider_generation": 1, "inventories": []}),
            json!({"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 1, "allocation_ratio": "2"}}}),
            json!({"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 1, "allocation_ratio": 1e39}}}),
            json!({"name": "\u{1F600}"}),
            json!({"name": "a\u{0}b"}),
            json!({"allocations": {}, "project_id": "p\u{0}", "user_id": "u", "consumer_generation": null}),
            json!({"traits": [""], "resource_provider_generation": 0}),
            json!({"aggregates": ["x"], "resource_provider_generation": 0}),
        ];
        let targets = [
            ("PUT", format!("/allocations/{consumer}"), "1.39"),
            ("POST", "/allocations".to_string(), "1.39"),
            ("PUT", format!("/resource_providers/{rp}/inventories"), "1.39"),
            ("POST", format!("/resource_providers/{rp}/inventories"), "1.39"),
            ("PUT", format!("/resource_providers/{rp}/inventories/VCPU"), "1.39"),
            ("PUT", format!("/resource_providers/{rp}"), "1.39"),
            ("POST", "/resource_providers".to_string(), "1.39"),
            ("PUT", format!("/resource_providers/{rp}/traits"), "1.39"),
            ("PUT", format!("/resource_providers/{rp}/aggregates"), "1.39"),
            ("PUT", format!("/resource_providers/{rp}/aggregates"), "1.1"),
            ("POST", "/resource_classes".to_string(), "1.39"),
            ("PUT", "/resource_classes/CUSTOM_A".to_string(), "1.6"),
            ("POST", "/reshaper".to_string(), "1.39"),
        ];
        for (method, path, mv) in &targets {
            for b in &bodies {
                let token = if path == "/reshaper" { SERVICE } else { ADMIN };
                let r = s.call(method, path, mv, Some(token), Some(b)).await;
                assert!(matches!(r.status, 200..=299 | 400 | 404 | 409), "{method} {path} {b}: {} {}", r.status, r.body);
            }
        }
        for path in [
            "/resource_providers/%00",
            "/resource_providers/nope/inventories/VCPU",
            "/resource_providers?resources=VCPU:99999999999999999999",
            "/resource_providers?resources=VCPU:9223372036854775807",
            "/resource_providers?member_of=in:",
            "/resource_providers?required=!",
            "/allocation_candidates?resources=VCPU:9223372036854775807",
            "/allocation_candidates?resources=VCPU:1&limit=99999999999999999999999",
            "/allocation_candidates?resources=VCPU:1&same_subtree=,",
            "/allocation_candidates?resources=VCPU:1&root_required=!",
            "/allocations/%E2%98%83",
            "/usages?project_id=",
            "/traits?name=in:",
            "/traits/CUSTOM_%00",
            "/usages?project_id=a%00",
            "/allocations/a%00b",
        ] {
            let r = s.get(path, "1.39").await;
            assert!(matches!(r.status, 200 | 400 | 404), "{path}: {} {}", r.status, r.body);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overage_may_shrink_not_grow() {
    each(|s| async move {
        let rp = s.provider("cn", None).await;
        s.inventory(&rp, &[("VCPU", 4)]).await;
        let c = "c0000000-0000-4000-8000-0000000000cc";
        let put = |n: i64, g: Value| json!({"allocations": {rp.as_str(): {"resources": {"VCPU": n}}}, "project_id": "p", "user_id": "u", "consumer_generation": g});
        assert_eq!(s.put(&format!("/allocations/{c}"), "1.28", &put(4, Value::Null)).await.status, 204);
        // the inventory shrinks under the allocation: allowed, now over capacity
        s.inventory(&rp, &[("VCPU", 2)]).await;
        let r = s.put(&format!("/allocations/{c}"), "1.28", &put(5, json!(1))).await;
        assert_eq!(r.status, 409, "worse: {}", r.body);
        let r = s.put(&format!("/allocations/{c}"), "1.28", &put(3, json!(1))).await;
        assert_eq!(r.status, 204, "better: {}", r.body);
        let r = s.get(&format!("/resource_providers/{rp}/usages"), "").await;
        assert_eq!(r.body["usages"]["VCPU"], 3);
        let r = s.get("/allocation_candidates?resources=VCPU:1", "1.39").await;
        assert_eq!(r.body["allocation_requests"], json!([]));
    })
    .await;
}

/// Aggregate uuids are kept as they were written, as Placement stores and
/// returns them verbatim: 32 hex digits without dashes come back so (from
/// the PUT and from a later GET), and `member_of` finds them written so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_come_back_as_they_were_set() {
    each(|s| async move {
        let rp = s.provider("cn-hex", None).await;
        let a = format!("/resource_providers/{rp}/aggregates");
        let hex = "3333333333334333833333333333aaaa";
        let upper = "44444444-4444-4444-8444-44444444BBBB";
        let r = s.put(&a, "1.1", &json!([hex])).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, json!({"aggregates": [hex]}));
        assert_eq!(s.get(&a, "1.1").await.body, json!({"aggregates": [hex]}));
        let g = s.get(&a, "1.19").await.body["resource_provider_generation"].as_i64().unwrap();
        let r = s.put(&a, "1.19", &json!({"aggregates": [hex, upper], "resource_provider_generation": g})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["aggregates"], json!([hex, upper]));
        let mut got: Vec<String> = s.get(&a, "1.19").await.body["aggregates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        got.sort();
        let mut want = vec![hex.to_string(), upper.to_string()];
        want.sort();
        assert_eq!(got, want);
        // the same set again changes nothing (no duplicate rows)
        let r = s.put(&a, "1.19", &json!({"aggregates": [upper, hex], "resource_provider_generation": g + 1})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = s.get(&format!("/resource_providers?member_of={hex}"), "1.3").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1, "{}", r.body);
        assert_eq!(r.body["resource_providers"][0]["uuid"], rp.as_str());
    })
    .await;
}

/// Consumer types (1.38) through `POST /allocations` as well as `PUT`: the
/// type is required, shown by `GET /allocations/{c}` from 1.38 only, changed
/// by a later write at 1.38 and kept by a write before 1.38; usages count
/// each consumer once whatever its classes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_types_on_post_and_later_writes() {
    each(|s| async move {
        let cn = s.provider("cn-ct", None).await;
        s.inventory(&cn, &[("VCPU", 8), ("MEMORY_MB", 4096)]).await;
        let vm = "d0000000-0000-4000-8000-000000000001";
        let mig = "d0000000-0000-4000-8000-000000000002";
        let one = |vcpu: i64, ctype: Option<&str>, generation: Value| {
            let mut v = json!({"allocations": {cn.as_str(): {"resources": {"VCPU": vcpu, "MEMORY_MB": 512}}},
                "project_id": "pct", "user_id": "u1", "consumer_generation": generation});
            if let Some(t) = ctype {
                v["consumer_type"] = json!(t);
            }
            v
        };
        // required in each consumer of a POST at 1.38
        let r = s
            .post(
                "/allocations",
                "1.38",
                &json!({vm: one(1, Some("INSTANCE"), Value::Null),
            mig: one(1, None, Value::Null)}),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        let r = s
            .post(
                "/allocations",
                "1.38",
                &json!({vm: one(1, Some("INSTANCE"), Value::Null),
            mig: one(2, Some("lower"), Value::Null)}),
            )
            .await;
        assert_eq!(r.status, 400, "a consumer type is upper case: {}", r.body);
        let r = s
            .post(
                "/allocations",
                "1.38",
                &json!({vm: one(1, Some("INSTANCE"), Value::Null),
            mig: one(2, Some("MIGRATION"), Value::Null)}),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = s.get(&format!("/allocations/{mig}"), "1.38").await;
        assert_eq!(r.body["consumer_type"], "MIGRATION");
        assert_eq!(r.body["consumer_generation"], 1);
        assert!(s.get(&format!("/allocations/{mig}"), "1.37").await.body.get("consumer_type").is_none());
        let r = s.get("/usages?project_id=pct", "1.38").await;
        assert_eq!(
            r.body["usages"],
            json!({"INSTANCE": {"VCPU": 1, "MEMORY_MB": 512, "consumer_count": 1},
                   "MIGRATION": {"VCPU": 2, "MEMORY_MB": 512, "consumer_count": 1}})
        );
        assert_eq!(s.get("/usages?project_id=pct", "1.37").await.body["usages"], json!({"VCPU": 3, "MEMORY_MB": 1024}));
        // a write at 1.38 changes the type; one before 1.38 keeps it
        let r = s.put(&format!("/allocations/{mig}"), "1.38", &one(2, Some("INSTANCE"), json!(1))).await;
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(s.get(&format!("/allocations/{mig}"), "1.38").await.body["consumer_type"], "INSTANCE");
        let r = s.put(&format!("/allocations/{mig}"), "1.37", &one(3, None, json!(2))).await;
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(s.get(&format!("/allocations/{mig}"), "1.38").await.body["consumer_type"], "INSTANCE");
        let r = s.get("/usages?project_id=pct&user_id=u1", "1.38").await;
        assert_eq!(r.body["usages"], json!({"INSTANCE": {"VCPU": 4, "MEMORY_MB": 1024, "consumer_count": 2}}));
        let r = s.get("/usages?project_id=pct&consumer_type=unknown", "1.38").await;
        assert_eq!(r.body["usages"], json!({}));
        // a consumer made before 1.38 is `unknown`
        let old = "d0000000-0000-4000-8000-000000000003";
        let r = s.put(&format!("/allocations/{old}"), "1.37", &one(1, None, Value::Null)).await;
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(s.get(&format!("/allocations/{old}"), "1.38").await.body["consumer_type"], "unknown");
        let r = s.get("/usages?project_id=pct&consumer_type=unknown", "1.38").await;
        assert_eq!(r.body["usages"], json!({"unknown": {"VCPU": 1, "MEMORY_MB": 512, "consumer_count": 1}}));
    })
    .await;
}
