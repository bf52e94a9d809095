//! Racing claims for the last resources, and two placement processes sharing
//! one database, on every backend that is up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Server;
use serde_json::{Value, json};

fn claim(rp: &str) -> Value {
    json!({"allocations": {rp: {"resources": {"VCPU": 1}}}, "project_id": "p", "user_id": "u", "consumer_generation": null})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_for_the_last_vcpu() {
    for s in common::servers().await {
        let s = std::sync::Arc::new(s);
        let rp = s.provider("cn", None).await;
        s.inventory(&rp, &[("VCPU", 3)]).await;
        for round in 0..3 {
            // one VCPU taken each round: 3 - round left, 8 claims race for them
            let left = 3 - round;
            let mut tasks = Vec::new();
            for i in 0..8 {
                let s = s.clone();
                let rp = rp.clone();
                tasks.push(tokio::spawn(async move {
                    let consumer = format!("d0000000-0000-4000-8000-{round:04}{i:08}");
                    let r = s.put(&format!("/allocations/{consumer}"), "1.28", &claim(&rp)).await;
                    (consumer, r.status, r.body)
                }));
            }
            let mut won = Vec::new();
            for t in tasks {
                let (consumer, status, body) = t.await.unwrap();
                match status {
                    204 => won.push(consumer),
                    409 => {}
                    other => panic!("{}: unexpected {other}: {body}", s.backend),
                }
            }
            assert_eq!(won.len(), left, "{} round {round}", s.backend);
            let usage = s.get(&format!("/resource_providers/{rp}/usages"), "").await;
            assert_eq!(usage.body["usages"]["VCPU"], 3, "{}", s.backend);
            // free all but one of this round's winners
            for c in won.iter().skip(1) {
                assert_eq!(s.delete(&format!("/allocations/{c}"), "").await.status, 204);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_moves_and_claims() {
    for s in common::servers().await {
        let s = std::sync::Arc::new(s);
        let a = s.provider("a", None).await;
        let b = s.provider("b", None).await;
        s.inventory(&a, &[("VCPU", 1)]).await;
        s.inventory(&b, &[("VCPU", 1)]).await;
        let owner = "e0000000-0000-4000-8000-000000000001";
        assert_eq!(s.put(&format!("/allocations/{owner}"), "1.28", &claim(&a)).await.status, 204);
        // a move of `owner` to b races a fresh claim of b
        let mover = {
            let (s, b) = (s.clone(), b.clone());
            tokio::spawn(async move {
                let body = json!({owner: {"allocations": {b.as_str(): {"resources": {"VCPU": 1}}},
                    "project_id": "p", "user_id": "u", "consumer_generation": 1}});
                s.post("/allocations", "1.28", &body).await.status
            })
        };
        let claimer = {
            let (s, b) = (s.clone(), b.clone());
            tokio::spawn(async move {
                s.put("/allocations/e0000000-0000-4000-8000-000000000002", "1.28", &claim(&b)).await.status
            })
        };
        let (m, c) = (mover.await.unwrap(), claimer.await.unwrap());
        let mut outcome = [m, c];
        outcome.sort();
        assert_eq!(outcome, [204, 409], "{}", s.backend);
        let ub = s.get(&format!("/resource_providers/{b}/usages"), "").await;
        assert_eq!(ub.body["usages"]["VCPU"], 1);
        let ua = s.get(&format!("/resource_providers/{a}/usages"), "").await;
        assert_eq!(ua.body["usages"]["VCPU"], if m == 204 { 0 } else { 1 }, "{}", s.backend);
    }
}

/// Two placement processes (two services, two indexes) over one database:
/// what one writes, the other's candidates show at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_one_database() {
    let dir = std::env::temp_dir().join(format!("placement-test-{}", uuid::Uuid::new_v4().simple()));
    let mut urls: Vec<(&'static str, String)> =
        stratus_db::testing::fresh_urls().await.into_iter().filter(|(b, _)| *b != "sqlite").collect();
    urls.push(("sqlite-file", format!("sqlite://{}/placement.db", dir.display())));
    for (backend, url) in urls {
        let a: Server = common::start(backend, &url).await;
        let b: Server = common::start(backend, &url).await;
        let cands = |s: &Server| {
            let s = s.url.clone();
            let http = s.clone();
            async move {
                let r = reqwest::Client::new()
                    .get(format!("{http}/allocation_candidates?resources=VCPU:2"))
                    .header("x-auth-token", common::ADMIN)
                    .header("openstack-api-version", "placement 1.39")
                    .send()
                    .await
                    .unwrap();
                let v: Value = r.json().await.unwrap();
                v["allocation_requests"].as_array().unwrap().len()
            }
        };
        assert_eq!(cands(&b).await, 0);
        let rp = a.provider("cn", None).await;
        a.inventory(&rp, &[("VCPU", 4)]).await;
        assert_eq!(cands(&b).await, 1, "{backend}: b sees a's provider");
        let c = "f0000000-0000-4000-8000-000000000001";
        let r = a.put(&format!("/allocations/{c}"), "1.28", &json!({"allocations": {rp.as_str(): {"resources": {"VCPU": 3}}}, "project_id": "p", "user_id": "u", "consumer_generation": null})).await;
        assert_eq!(r.status, 204);
        assert_eq!(cands(&b).await, 0, "{backend}: b sees a's claim");
        assert_eq!(cands(&a).await, 0);
        assert_eq!(b.delete(&format!("/allocations/{c}"), "").await.status, 204);
        assert_eq!(cands(&a).await, 1, "{backend}: a sees b's delete");
        let r = b.get("/resource_providers?resources=VCPU:4", "1.4").await;
        assert_eq!(r.body["resource_providers"].as_array().unwrap().len(), 1);
        // a new custom class made by one is usable through the other
        assert_eq!(a.call("PUT", "/resource_classes/CUSTOM_X", "1.7", Some(common::ADMIN), None).await.status, 201);
        let r = b.get("/allocation_candidates?resources=CUSTOM_X:1", "1.39").await;
        assert_eq!(r.status, 200, "{backend}: {}", r.body);
        assert_eq!(a.delete(&format!("/resource_providers/{rp}"), "").await.status, 204);
        assert_eq!(cands(&b).await, 0, "{backend}: b sees a's delete");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
