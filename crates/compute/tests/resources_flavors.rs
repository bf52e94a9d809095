//! Flavors, flavor access and extra specs over HTTP on every reachable
//! backend: views per microversion, filters, sorting and paging, private
//! flavors, validation in Nova's words, policy, racing creates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use stratus_compute::store::flavors;

fn flavor(name: &str, id: Option<&str>, ram: i64) -> Value {
    let mut f = json!({"name": name, "ram": ram, "vcpus": 1, "disk": 1});
    if let Some(id) = id {
        f["id"] = json!(id);
    }
    json!({ "flavor": f })
}

#[tokio::test]
async fn create_show_update_delete_per_microversion() {
    for api in apis().await {
        let b = api.backend;
        // 2.1: swap "" when 0, no description, 200 on create
        let r = api.post("/v2.1/flavors", ADMIN, "2.1", flavor("small", Some("s1"), 256)).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let f = &r.body["flavor"];
        assert_eq!(f["id"], "s1");
        assert_eq!(f["swap"], "");
        assert_eq!(f["rxtx_factor"], 1.0);
        assert_eq!(f["OS-FLV-DISABLED:disabled"], false);
        assert_eq!(f["os-flavor-access:is_public"], true);
        assert_eq!(f["OS-FLV-EXT-DATA:ephemeral"], 0);
        assert!(f.get("description").is_none());
        assert!(f.get("extra_specs").is_none());
        assert_eq!(f["links"][0]["href"], format!("{}/v2.1/flavors/s1", api.base));
        assert_eq!(f["links"][1]["href"], format!("{}/flavors/s1", api.base));

        // a description before 2.55 is an unknown property
        let mut with_desc = flavor("d", None, 64);
        with_desc["flavor"]["description"] = json!("hello");
        let r = api.post("/v2.1/flavors", ADMIN, "2.54", with_desc.clone()).await;
        assert_eq!(r.status, 400, "{b}");
        assert!(
            r.body["badRequest"]["message"].as_str().unwrap().contains("'description' was unexpected"),
            "{}",
            r.text
        );
        let r = api.post("/v2.1/flavors", ADMIN, "2.55", with_desc).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let generated = r.body["flavor"]["id"].as_str().unwrap().to_string();
        assert_eq!(generated.len(), 36, "a uuid is generated");
        assert_eq!(r.body["flavor"]["description"], "hello");

        // 2.61 shows extra specs, 2.75 swap as 0
        let r = api.get("/v2.1/flavors/s1", MEMBER, "2.61").await;
        assert_eq!(r.body["flavor"]["extra_specs"], json!({}));
        assert_eq!(r.body["flavor"]["swap"], "");
        let r = api.get("/v2.1/flavors/s1", MEMBER, "2.75").await;
        assert_eq!(r.body["flavor"]["swap"], 0);
        assert_eq!(r.body["flavor"]["description"], Value::Null);

        // update: only from 2.55, only the description, admin only
        let r = api.put("/v2.1/flavors/s1", ADMIN, "2.54", json!({"flavor": {"description": "x"}})).await;
        assert_eq!(r.status, 404, "{b}");
        let r = api.put("/v2.1/flavors/s1", MEMBER, "2.55", json!({"flavor": {"description": "x"}})).await;
        assert_eq!(r.status, 403, "{b}");
        let r = api.put("/v2.1/flavors/s1", ADMIN, "2.55", json!({"flavor": {"description": "new words"}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["flavor"]["description"], "new words");
        let r = api.put("/v2.1/flavors/s1", ADMIN, "2.55", json!({"flavor": {"ram": 5}})).await;
        assert_eq!(r.status, 400, "{b}");
        let r = api.put("/v2.1/flavors/nope", ADMIN, "2.55", json!({"flavor": {"description": null}})).await;
        assert_eq!(r.status, 404, "{b}");

        // delete: admin, 202, then 404
        assert_eq!(api.delete("/v2.1/flavors/s1", MEMBER, "2.1").await.status, 403);
        let r = api.delete("/v2.1/flavors/s1", ADMIN, "2.1").await;
        assert_eq!(r.status, 202, "{b}");
        assert_eq!(r.text, "");
        let r = api.get("/v2.1/flavors/s1", ADMIN, "2.1").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["itemNotFound"]["message"], "Flavor s1 could not be found.");
        assert_eq!(api.delete("/v2.1/flavors/s1", ADMIN, "2.1").await.status, 404);
    }
}

#[tokio::test]
async fn create_validation_and_conflicts() {
    for api in apis().await {
        let b = api.backend;
        let cases = [
            (json!({"flavor": {"ram": 1, "vcpus": 1, "disk": 1}}), "'name' is a required property"),
            (json!({"flavor": {"name": "x", "ram": 0, "vcpus": 1, "disk": 1}}), "0 is less than the minimum of 1"),
            (json!({"flavor": {"name": "x", "ram": "abc", "vcpus": 1, "disk": 1}}), "does not match"),
            (json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": -1}}), "less than the minimum of 0"),
            (json!({"flavor": {"name": " x", "ram": 1, "vcpus": 1, "disk": 1}}), "An invalid 'name' value"),
            (json!({"flavor": {"name": "x", "id": "a/b", "ram": 1, "vcpus": 1, "disk": 1}}), "does not match"),
            (json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "rxtx_factor": 0}}), "minimum of 0"),
            (
                json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": "maybe"}}),
                "is not one of",
            ),
            (
                json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "color": "red"}}),
                "'color' was unexpected",
            ),
            (json!({"flavour": {}}), "'flavor' is a required property"),
            (json!([1]), "is not of type 'object'"),
        ];
        for (body, words) in cases {
            let r = api.post("/v2.1/flavors", ADMIN, "2.1", body.clone()).await;
            assert_eq!(r.status, 400, "{b}: {body} -> {}", r.text);
            let msg = r.body["badRequest"]["message"].as_str().unwrap_or_default();
            assert!(msg.contains(words), "{b}: {body}: {msg}");
        }
        // strings of digits are integers; a numeric id becomes a string
        let r = api
            .post("/v2.1/flavors", ADMIN, "2.1", json!({"flavor": {"name": "n1", "id": 7, "ram": "64", "vcpus": "2", "disk": "0", "swap": 16, "rxtx_factor": "2.5"}}))
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["flavor"]["id"], "7");
        assert_eq!(r.body["flavor"]["ram"], 64);
        assert_eq!(r.body["flavor"]["swap"], 16);
        assert_eq!(r.body["flavor"]["rxtx_factor"], 2.5);
        // taken name, taken id
        let r = api.post("/v2.1/flavors", ADMIN, "2.1", flavor("n1", Some("8"), 64)).await;
        assert_eq!(r.status, 409, "{b}");
        assert_eq!(r.body["conflictingRequest"]["message"], "Flavor with name n1 already exists.");
        let r = api.post("/v2.1/flavors", ADMIN, "2.1", flavor("n2", Some("7"), 64)).await;
        assert_eq!(r.status, 409, "{b}");
        assert_eq!(r.body["conflictingRequest"]["message"], "Flavor with ID 7 already exists.");
        // members may not create
        assert_eq!(api.post("/v2.1/flavors", MEMBER, "2.1", flavor("n3", None, 64)).await.status, 403);
        // malformed JSON is a 400, never a 422
        let r = api.call(reqwest::Method::POST, "/v2.1/flavors", ADMIN, None, None).await;
        assert_eq!(r.status, 400, "{b}");
    }
}

#[tokio::test]
async fn list_filters_sorting_paging() {
    for api in apis().await {
        let b = api.backend;
        for (i, ram) in [(1, 512), (2, 2048), (3, 4096), (4, 8192)] {
            let mut f = flavor(&format!("f{i}"), Some(&i.to_string()), ram);
            f["flavor"]["disk"] = json!(i * 10);
            assert_eq!(api.post("/v2.1/flavors", ADMIN, "2.1", f).await.status, 200);
        }
        let r = api.get("/v2.1/flavors", MEMBER, "2.1").await;
        assert_eq!(r.status, 200);
        let ids: Vec<&str> = r.body["flavors"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["1", "2", "3", "4"], "{b}");
        assert_eq!(r.body["flavors"][0].as_object().unwrap().len(), 3, "brief view: id, name, links");
        assert!(r.body.get("flavors_links").is_none());
        let r = api.get("/v2.1/flavors", MEMBER, "2.55").await;
        assert!(r.body["flavors"][0].as_object().unwrap().contains_key("description"));

        let r = api.get("/v2.1/flavors/detail?minRam=2048&minDisk=30", MEMBER, "2.1").await;
        let ids: Vec<&str> = r.body["flavors"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["3", "4"], "{b}");
        let r = api.get("/v2.1/flavors?sort_key=memory_mb&sort_dir=desc", MEMBER, "2.1").await;
        let ids: Vec<&str> = r.body["flavors"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["4", "3", "2", "1"], "{b}");

        // paging: a full page carries the next link
        let r = api.get("/v2.1/flavors/detail?limit=2", MEMBER, "2.1").await;
        assert_eq!(r.body["flavors"].as_array().unwrap().len(), 2);
        let next = r.body["flavors_links"][0]["href"].as_str().unwrap();
        assert_eq!(next, format!("{}/v2.1/flavors/detail?limit=2&marker=2", api.base));
        let r = api.get("/v2.1/flavors/detail?limit=2&marker=2", MEMBER, "2.1").await;
        let ids: Vec<&str> = r.body["flavors"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["3", "4"], "{b}");
        let r = api.get("/v2.1/flavors?marker=4", MEMBER, "2.1").await;
        assert_eq!(r.body["flavors"], json!([]));

        for bad in ["marker=nope", "sort_key=colour", "sort_dir=up", "minRam=lots", "limit=-1"] {
            let r = api.get(&format!("/v2.1/flavors?{bad}"), MEMBER, "2.1").await;
            assert_eq!(r.status, 400, "{b}: {bad}: {}", r.text);
        }
        // unknown parameters: ignored before 2.75, refused from it
        assert_eq!(api.get("/v2.1/flavors?colour=red", MEMBER, "2.74").await.status, 200);
        let r = api.get("/v2.1/flavors?colour=red", MEMBER, "2.75").await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["badRequest"]["message"], "Additional properties are not allowed ('colour' was unexpected)");
    }
}

#[tokio::test]
async fn private_flavors_and_access() {
    for api in apis().await {
        let b = api.backend;
        let mut f = flavor("private", Some("p1"), 128);
        f["flavor"]["os-flavor-access:is_public"] = json!(false);
        assert_eq!(api.post("/v2.1/flavors", ADMIN, "2.1", f).await.status, 200);
        assert_eq!(api.post("/v2.1/flavors", ADMIN, "2.1", flavor("public", Some("pub"), 128)).await.status, 200);

        // invisible to projects without access
        assert_eq!(api.get("/v2.1/flavors/p1", MEMBER, "2.1").await.status, 404, "{b}");
        let ids = |r: &Resp| -> Vec<String> {
            r.body["flavors"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect()
        };
        assert_eq!(ids(&api.get("/v2.1/flavors", MEMBER, "2.1").await), ["pub"]);
        // admins: public by default, private with is_public=false, all with none
        assert_eq!(ids(&api.get("/v2.1/flavors", ADMIN, "2.1").await), ["pub"]);
        assert_eq!(ids(&api.get("/v2.1/flavors?is_public=false", ADMIN, "2.1").await), ["p1"]);
        assert_eq!(ids(&api.get("/v2.1/flavors?is_public=None", ADMIN, "2.1").await), ["p1", "pub"]);
        assert_eq!(api.get("/v2.1/flavors?is_public=perhaps", ADMIN, "2.1").await.status, 400);

        // the access list: admin only, private flavors only
        assert_eq!(api.get("/v2.1/flavors/p1/os-flavor-access", MEMBER, "2.1").await.status, 403);
        let r = api.get("/v2.1/flavors/pub/os-flavor-access", ADMIN, "2.1").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["itemNotFound"]["message"], "Access list not available for public flavors.");
        let r = api.get("/v2.1/flavors/p1/os-flavor-access", ADMIN, "2.1").await;
        assert_eq!(r.body, json!({"flavor_access": []}));

        let add = |t: &str| json!({"addTenantAccess": {"tenant": t}});
        assert_eq!(api.post("/v2.1/flavors/p1/action", MEMBER, "2.1", add(PROJECT_A)).await.status, 403);
        let r = api.post("/v2.1/flavors/p1/action", ADMIN, "2.1", add(PROJECT_A)).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body, json!({"flavor_access": [{"flavor_id": "p1", "tenant_id": PROJECT_A}]}));
        let r = api.post("/v2.1/flavors/p1/action", ADMIN, "2.1", add(PROJECT_A)).await;
        assert_eq!(r.status, 409, "{b}");
        assert_eq!(api.post("/v2.1/flavors/p1/action", ADMIN, "2.1", json!({"addTenantAccess": {}})).await.status, 400);
        assert_eq!(api.post("/v2.1/flavors/nope/action", ADMIN, "2.1", add(PROJECT_A)).await.status, 404);
        // a public flavor: allowed before 2.7, a conflict from it
        assert_eq!(api.post("/v2.1/flavors/pub/action", ADMIN, "2.7", add(PROJECT_B)).await.status, 409);
        assert_eq!(api.post("/v2.1/flavors/pub/action", ADMIN, "2.6", add(PROJECT_B)).await.status, 200);

        // project A now sees it, project B does not
        assert_eq!(api.get("/v2.1/flavors/p1", MEMBER, "2.1").await.status, 200);
        assert!(ids(&api.get("/v2.1/flavors", READER, "2.1").await).contains(&"p1".to_string()));
        assert_eq!(api.get("/v2.1/flavors/p1", OTHER, "2.1").await.status, 404);
        assert!(!ids(&api.get("/v2.1/flavors", OTHER, "2.1").await).contains(&"p1".to_string()));

        // what the conductor asks
        let pf = flavors::get_by_flavorid(&api.db, "p1").await.unwrap().unwrap();
        assert!(flavors::project_can_use(&api.db, &pf, PROJECT_A).await.unwrap());
        assert!(!flavors::project_can_use(&api.db, &pf, PROJECT_B).await.unwrap());
        let snap = pf.to_json();
        assert_eq!(snap["flavorid"], "p1");
        assert_eq!(snap["memory_mb"], 128);
        assert_eq!(flavors::Flavor::from_json(&snap).unwrap().name, "private");

        let remove = |t: &str| json!({"removeTenantAccess": {"tenant": t}});
        let r = api.post("/v2.1/flavors/p1/action", ADMIN, "2.1", remove(PROJECT_A)).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body, json!({"flavor_access": []}));
        let r = api.post("/v2.1/flavors/p1/action", ADMIN, "2.1", remove(PROJECT_A)).await;
        assert_eq!(r.status, 404);
        assert_eq!(api.get("/v2.1/flavors/p1", MEMBER, "2.1").await.status, 404);
        assert_eq!(api.post("/v2.1/flavors/p1/action", ADMIN, "2.1", json!({"dance": {}})).await.status, 400);
    }
}

#[tokio::test]
async fn extra_specs() {
    for api in apis().await {
        let b = api.backend;
        assert_eq!(api.post("/v2.1/flavors", ADMIN, "2.1", flavor("es", Some("es"), 64)).await.status, 200);
        let path = "/v2.1/flavors/es/os-extra_specs";
        let body = json!({"extra_specs": {"hw:cpu_policy": "dedicated", "count": 2, "free text": "anything"}});
        assert_eq!(api.post(path, MEMBER, "2.1", body.clone()).await.status, 403);
        let r = api.post(path, ADMIN, "2.1", body.clone()).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body, body, "the request comes back as given");
        let r = api.get(path, READER, "2.1").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            json!({"extra_specs": {"hw:cpu_policy": "dedicated", "count": "2", "free text": "anything"}})
        );
        let r = api.get(&format!("{path}/count"), MEMBER, "2.1").await;
        assert_eq!(r.body, json!({"count": "2"}));
        let r = api.get(&format!("{path}/nope"), MEMBER, "2.1").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["itemNotFound"]["message"], "Flavor es has no extra specs with key nope.");

        // merge, and the flavor shows them from 2.61
        let r = api.post(path, ADMIN, "2.1", json!({"extra_specs": {"count": "3", "more": "yes"}})).await;
        assert_eq!(r.status, 200);
        let r = api.get("/v2.1/flavors/es", MEMBER, "2.61").await;
        assert_eq!(r.body["flavor"]["extra_specs"]["count"], "3");
        assert_eq!(r.body["flavor"]["extra_specs"]["hw:cpu_policy"], "dedicated");
        let r = api.get("/v2.1/flavors/detail", MEMBER, "2.61").await;
        let es = r.body["flavors"].as_array().unwrap().iter().find(|f| f["id"] == "es").unwrap();
        assert_eq!(es["extra_specs"]["more"], "yes");

        // update one key: body and URI must agree, exactly one key
        let r = api.put(&format!("{path}/more"), ADMIN, "2.1", json!({"more": "no"})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body, json!({"more": "no"}));
        assert_eq!(api.put(&format!("{path}/more"), ADMIN, "2.1", json!({"other": "no"})).await.status, 400);
        assert_eq!(api.put(&format!("{path}/more"), ADMIN, "2.1", json!({"more": "a", "b": "c"})).await.status, 400);
        assert_eq!(api.put(&format!("{path}/more"), MEMBER, "2.1", json!({"more": "no"})).await.status, 403);

        // bad keys and values
        for bad in
            [json!({"extra_specs": {"a/b": "x"}}), json!({"extra_specs": {"k": true}}), json!({"extra_specs": "x"})]
        {
            assert_eq!(api.post(path, ADMIN, "2.1", bad.clone()).await.status, 400, "{b}: {bad}");
        }
        // Nova's validators from 2.86
        let unknown = json!({"extra_specs": {"hw:cpu_policy": "fastest"}});
        assert_eq!(api.post(path, ADMIN, "2.85", unknown.clone()).await.status, 200);
        let r = api.post(path, ADMIN, "2.86", unknown).await;
        assert_eq!(r.status, 400, "{b}");
        assert!(r.text.contains("Validation failed"), "{}", r.text);
        let r = api.post(path, ADMIN, "2.86", json!({"extra_specs": {"hw:bogus": "1"}})).await;
        assert_eq!(r.status, 400);
        assert_eq!(api.post(path, ADMIN, "2.86", json!({"extra_specs": {"custom:thing": "1"}})).await.status, 200);

        // delete one key: 200 with no body
        let r = api.delete(&format!("{path}/more"), ADMIN, "2.1").await;
        assert_eq!(r.status, 200, "{b}");
        assert_eq!(r.text, "");
        assert_eq!(api.delete(&format!("{path}/more"), ADMIN, "2.1").await.status, 404);
        assert_eq!(api.delete(&format!("{path}/count"), MEMBER, "2.1").await.status, 403);
        assert_eq!(api.get("/v2.1/flavors/nope/os-extra_specs", ADMIN, "2.1").await.status, 404);
        // deleting the flavor takes its specs along
        assert_eq!(api.delete("/v2.1/flavors/es", ADMIN, "2.1").await.status, 202);
        assert_eq!(api.post("/v2.1/flavors", ADMIN, "2.1", flavor("es", Some("es"), 64)).await.status, 200);
        assert_eq!(api.get(path, ADMIN, "2.1").await.body, json!({"extra_specs": {}}));
    }
}

#[tokio::test]
async fn default_flavors_once() {
    for api in apis().await {
        flavors::ensure_default_flavors(&api.db).await.unwrap();
        flavors::ensure_default_flavors(&api.db).await.unwrap();
        let r = api.get("/v2.1/flavors/detail", MEMBER, "2.75").await;
        let got: Vec<(String, String, i64, i64, i64)> = r.body["flavors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap().to_string(),
                    f["name"].as_str().unwrap().to_string(),
                    f["ram"].as_i64().unwrap(),
                    f["vcpus"].as_i64().unwrap(),
                    f["disk"].as_i64().unwrap(),
                )
            })
            .collect();
        let want: Vec<(String, String, i64, i64, i64)> = [
            ("1", "m1.tiny", 512, 1, 1),
            ("2", "m1.small", 2048, 1, 20),
            ("3", "m1.medium", 4096, 2, 40),
            ("4", "m1.large", 8192, 4, 80),
            ("42", "m1.nano", 128, 1, 1),
            ("5", "m1.xlarge", 16384, 8, 160),
            ("84", "m1.micro", 192, 1, 1),
        ]
        .iter()
        .map(|(a, b, c, d, e)| (a.to_string(), b.to_string(), *c, *d, *e))
        .collect();
        assert_eq!(got, want, "{}", api.backend);
    }
}

#[tokio::test]
async fn racing_creates_of_one_name() {
    for api in apis().await {
        let api = std::sync::Arc::new(api);
        let mut tasks = Vec::new();
        for i in 0..6 {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                api.post("/v2.1/flavors", ADMIN, "2.1", flavor("contested", Some(&format!("c{i}")), 64)).await.status
            }));
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        codes.sort();
        assert_eq!(codes, [200, 409, 409, 409, 409, 409], "{}", api.backend);
    }
}
