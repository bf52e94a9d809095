//! Servers end to end on every database: API -> conductor (build saga) ->
//! scheduler (placement) -> fake compute host, and back: lifecycle and
//! actions, deletes that release every claim, quotas under racing creates,
//! no valid host, rescheduling to an alternate, and a failure injected at
//! every step of the build saga unwinding everything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, fresh_urls};

const MV: &str = "2.96";

fn server(name: &str, image: &str, flavor: &str) -> Value {
    json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}})
}

async fn errored(cloud: &Cloud, tok: &str, id: &str) -> Value {
    cloud.wait_server(tok, id, 30, |s| s["status"] == "ERROR").await
}

async fn active(cloud: &Cloud, tok: &str, id: &str) -> Value {
    cloud.wait_server(tok, id, 30, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await
}

async fn allocations(cloud: &Cloud, admin: &str, consumer: &str) -> Value {
    let r = cloud.placement(Method::GET, &format!("/allocations/{consumer}"), admin, "1.39", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["allocations"].clone()
}

async fn guests(cloud: &Cloud) -> usize {
    let mut n = 0;
    for h in &cloud.compute.as_ref().unwrap().hosts {
        n += h.driver.list().await.unwrap().len();
    }
    n
}

#[tokio::test]
async fn lifecycle_actions_and_delete_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let cloud = Cloud::start_compute(backend, &url, &["host-a", "host-b"], |_| {}).await;
        let admin = cloud.admin_token().await;
        let image = cloud.boot_image(&admin).await;
        let (_, _, tok) = cloud.user_with_role(&admin, "member").await;

        let r = cloud.nova(Method::POST, "/servers", &tok, MV, Some(server("web 1", &image, "1"))).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        assert!(r.body["server"]["adminPass"].is_string());
        let s = active(&cloud, &tok, &id).await;
        assert_eq!(s["status"], "ACTIVE", "{backend}: {s}");
        assert_eq!(s["OS-EXT-STS:power_state"], 1);
        assert_eq!(s["OS-EXT-AZ:availability_zone"], "nova");
        assert_eq!(s["flavor"]["original_name"], "m1.tiny");
        assert!(s["hostId"].as_str().unwrap().len() == 56, "{s}");
        assert!(s.get("OS-EXT-SRV-ATTR:host").is_none(), "members do not see hosts");
        let allocs = allocations(&cloud, &admin, &id).await;
        let rp = allocs.as_object().unwrap().values().next().unwrap().clone();
        assert_eq!(rp["resources"], json!({"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}), "{backend}");

        // admins see the host; lists show it
        let a = cloud.nova(Method::GET, &format!("/servers/{id}"), &admin, MV, None).await;
        assert!(["host-a", "host-b"].contains(&a.body["server"]["OS-EXT-SRV-ATTR:host"].as_str().unwrap()));
        let l = cloud.nova(Method::GET, "/servers", &tok, MV, None).await;
        assert_eq!(l.body["servers"][0]["id"], id);
        let d = cloud.nova(Method::GET, "/servers/detail?status=ACTIVE", &tok, MV, None).await;
        assert_eq!(d.body["servers"].as_array().unwrap().len(), 1);

        let act = |body: Value| {
            let (cloud, tok, id) = (&cloud, &tok, &id);
            async move { cloud.nova(Method::POST, &format!("/servers/{id}/action"), tok, MV, Some(body)).await }
        };
        for (body, status) in [
            (json!({"os-stop": null}), "SHUTOFF"),
            (json!({"os-start": null}), "ACTIVE"),
            (json!({"reboot": {"type": "HARD"}}), "ACTIVE"),
            (json!({"pause": null}), "PAUSED"),
            (json!({"unpause": null}), "ACTIVE"),
            (json!({"suspend": null}), "SUSPENDED"),
            (json!({"resume": null}), "ACTIVE"),
        ] {
            let r = act(body.clone()).await;
            assert_eq!(r.status, 202, "{backend} {body}: {}", r.text);
            let s = cloud
                .wait_server(&tok, &id, 20, |s| s["status"] == status && s["OS-EXT-STS:task_state"].is_null())
                .await;
            assert_eq!(s["status"], status);
        }
        // a state that does not allow the action: 409
        let r = act(json!({"os-start": null})).await;
        assert_eq!(r.status, 409, "{}", r.text);
        assert!(r.body["conflictingRequest"]["message"].as_str().unwrap().contains("vm_state active"), "{}", r.text);
        let r = act(json!({"os-getConsoleOutput": {"length": 2}})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // Nova's tail: the last 2 pieces of split('\n'), so a log ending in a
        // newline gives one line and the final newline (Tempest checks this)
        let out = r.body["output"].as_str().unwrap();
        assert_eq!(out.split('\n').count(), 2, "{out:?}");
        assert!(out.ends_with('\n'), "{out:?}");

        // lock: the owner's delete is refused, unlock lets it through
        assert_eq!(act(json!({"lock": {"locked_reason": "maint"}})).await.status, 202);
        let s = cloud.nova(Method::GET, &format!("/servers/{id}"), &tok, MV, None).await.body["server"].clone();
        assert_eq!((s["locked"].clone(), s["locked_reason"].clone()), (json!(true), json!("maint")));
        assert_eq!(cloud.nova(Method::DELETE, &format!("/servers/{id}"), &tok, MV, None).await.status, 409);
        assert_eq!(act(json!({"unlock": null})).await.status, 202);

        // metadata and tags
        let r = cloud
            .nova(Method::PUT, &format!("/servers/{id}/metadata/k1"), &tok, MV, Some(json!({"meta": {"k1": "v1"}})))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = cloud.nova(Method::PUT, &format!("/servers/{id}/tags/blue"), &tok, MV, None).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = cloud.nova(Method::GET, "/servers?tags=blue", &tok, MV, None).await;
        assert_eq!(r.body["servers"].as_array().unwrap().len(), 1);

        // the history: create and the actions, with events
        let r = cloud.nova(Method::GET, &format!("/servers/{id}/os-instance-actions"), &tok, MV, None).await;
        let actions: Vec<&str> =
            r.body["instanceActions"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
        assert!(actions.contains(&"create") && actions.contains(&"stop") && actions.contains(&"lock"), "{actions:?}");

        // delete: the guest, the claim and the record go
        let r = cloud.nova(Method::DELETE, &format!("/servers/{id}"), &tok, MV, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        cloud.wait_server(&tok, &id, 20, |s| s.is_null()).await;
        assert_eq!(allocations(&cloud, &admin, &id).await, json!({}), "{backend}");
        assert_eq!(guests(&cloud).await, 0, "{backend}");
    }
}

#[tokio::test]
async fn quota_holds_under_fifty_racing_creates() {
    for (backend, url) in fresh_urls().await {
        let cloud = Cloud::start_compute(backend, &url, &["host-a"], |c| c.compute.quota_instances = 10).await;
        let admin = cloud.admin_token().await;
        let image = cloud.boot_image(&admin).await;
        let (_, _, tok) = cloud.user_with_role(&admin, "member").await;
        let tasks = (0..50).map(|i| {
            let body = server(&format!("race-{i}"), &image, "42");
            let (cloud, tok) = (&cloud, &tok);
            async move { cloud.nova(Method::POST, "/servers", tok, MV, Some(body)).await }
        });
        let results = futures::future::join_all(tasks).await;
        let accepted = results.iter().filter(|r| r.status == 202).count();
        let refused = results.iter().filter(|r| r.status == 403).count();
        assert_eq!(
            (accepted, refused),
            (10, 40),
            "{backend}: {:?}",
            results.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        assert!(results.iter().find(|r| r.status == 403).unwrap().text.contains("Quota exceeded for instances"));
        let l = cloud.nova(Method::GET, "/servers", &tok, MV, None).await;
        assert_eq!(l.body["servers"].as_array().unwrap().len(), 10);
    }
}

#[tokio::test]
async fn no_valid_host_rescheduling_and_multi_create() {
    let (backend, url) = fresh_urls().await.remove(0);
    let cloud = Cloud::start_compute(backend, &url, &["host-a", "host-b"], |c| {
        c.compute.fake_memory_mb = 4096;
        c.compute.quota_ram = -1;
        c.compute.quota_cores = -1;
        c.compute.quota_instances = -1;
    })
    .await;
    let admin = cloud.admin_token().await;
    let image = cloud.boot_image(&admin).await;

    // too big for any host: ERROR with a fault, no claim left
    let r = cloud.nova(Method::POST, "/servers", &admin, MV, Some(server("huge", &image, "5"))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    let s = active(&cloud, &admin, &id).await;
    assert_eq!(s["status"], "ERROR", "{s}");
    assert!(s["fault"]["message"].as_str().unwrap().contains("No valid host"), "{s}");
    assert_eq!(allocations(&cloud, &admin, &id).await, json!({}));

    // a host that fails every build: the server lands on the other one
    let hosts = &cloud.compute.as_ref().unwrap().hosts;
    let bad = hosts[0].host.clone();
    set_fail(&cloud, 0, true);
    for n in 0..3 {
        let r =
            cloud.nova(Method::POST, "/servers", &admin, MV, Some(server(&format!("resched-{n}"), &image, "1"))).await;
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        let s = active(&cloud, &admin, &id).await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
        assert_ne!(s["OS-EXT-SRV-ATTR:host"], json!(bad));
    }
    set_fail(&cloud, 0, false);

    // multi-create: all or none
    let mut body = server("many", &image, "1");
    body["server"]["min_count"] = json!(3);
    body["server"]["max_count"] = json!(3);
    let r = cloud.nova(Method::POST, "/servers", &admin, MV, Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let l = cloud.nova(Method::GET, "/servers/detail?name=^many-", &admin, MV, None).await;
    let ids: Vec<String> =
        l.body["servers"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 3);
    for id in &ids {
        assert_eq!(active(&cloud, &admin, id).await["status"], "ACTIVE");
    }
    let mut body = server("toomany", &image, "4");
    body["server"]["min_count"] = json!(2);
    let r = cloud.nova(Method::POST, "/servers", &admin, MV, Some(body)).await;
    let l = cloud.nova(Method::GET, "/servers/detail?name=^toomany-", &admin, MV, None).await;
    assert_eq!(r.status, 202);
    for s in l.body["servers"].as_array().unwrap() {
        let s = active(&cloud, &admin, s["id"].as_str().unwrap()).await;
        assert_eq!(s["status"], "ERROR", "two 8 GB servers do not fit two 4 GB hosts... {s}");
        assert_eq!(allocations(&cloud, &admin, s["id"].as_str().unwrap()).await, json!({}));
    }
}

fn set_fail(cloud: &Cloud, host: usize, fail: bool) {
    let parts = cloud.compute.as_ref().unwrap();
    let drv = parts.hosts[host].driver.clone();
    // the fake driver behind the trait object
    let any: &dyn std::any::Any = drv.as_any();
    any.downcast_ref::<stratus_virt::fake::FakeDriver>().unwrap().set_fail_spawn(fail);
}

#[tokio::test]
async fn a_failure_at_every_build_step_unwinds_everything() {
    let (backend, url) = fresh_urls().await.remove(0);
    let cloud = Cloud::start_compute(backend, &url, &["host-a"], |c| c.compute.quota_instances = -1).await;
    let admin = cloud.admin_token().await;
    let image = cloud.boot_image(&admin).await;
    let conductor = cloud.compute.as_ref().unwrap().conductor.clone();
    for step in ["begin", "select_destinations", "assign_hosts", "allocate_networks", "build_on_hosts", "finish"] {
        *conductor.faults.lock().unwrap() =
            stratus_saga::Faults { fail_action: Some(step), repeat_actions: true, repeat_undos: true };
        let r =
            cloud.nova(Method::POST, "/servers", &admin, MV, Some(server(&format!("fail-{step}"), &image, "1"))).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        // a failure at `finish` comes after the host made the server ACTIVE: wait for the unwind
        let s = errored(&cloud, &admin, &id).await;
        assert_eq!(s["status"], "ERROR", "{step}: {s}");
        assert!(s["fault"]["message"].is_string(), "{step}: {s}");
        assert_eq!(allocations(&cloud, &admin, &id).await, json!({}), "{step}: a claim was left");
        assert_eq!(guests(&cloud).await, 0, "{step}: a guest was left");
        // the saga is recorded as unwound
        let l = cloud.nova(Method::DELETE, &format!("/servers/{id}"), &admin, MV, None).await;
        assert_eq!(l.status, 204);
        cloud.wait_server(&admin, &id, 20, |s| s.is_null()).await;
    }
    *conductor.faults.lock().unwrap() =
        stratus_saga::Faults { fail_action: None, repeat_actions: true, repeat_undos: false };
    let r = cloud.nova(Method::POST, "/servers", &admin, MV, Some(server("twice", &image, "1"))).await;
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    assert_eq!(active(&cloud, &admin, &id).await["status"], "ACTIVE", "every action run twice still builds one server");
    assert_eq!(guests(&cloud).await, 1);
}
