//! `/os-migrations` on every database: a resize leaves a record whose status
//! follows it (finished, confirmed, reverted); the fields and paging of each
//! microversion; admins only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, fresh_urls};

async fn settled(cloud: &Cloud, tok: &str, id: &str, status: &str) -> Value {
    cloud.wait_server(tok, id, 30, |s| s["status"] == status && s["OS-EXT-STS:task_state"].is_null()).await
}

async fn resize(cloud: &Cloud, tok: &str, id: &str, flavor: &str) {
    let r = cloud
        .nova(
            Method::POST,
            &format!("/servers/{id}/action"),
            tok,
            "2.1",
            Some(json!({"resize": {"flavorRef": flavor}})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    settled(cloud, tok, id, "VERIFY_RESIZE").await;
}

#[tokio::test]
async fn resizes_leave_migration_records() {
    for (backend, url) in fresh_urls().await {
        let cloud = Cloud::start_compute(backend, &url, &["host-a"], |_| {}).await;
        let admin = cloud.admin_token().await;
        let image = cloud.boot_image(&admin).await;
        let (pid, uid, tok) = cloud.user_with_role(&admin, "member").await;
        let mut servers = Vec::new();
        for n in 0..2 {
            let body =
                json!({"server": {"name": format!("s{n}"), "imageRef": image, "flavorRef": "1", "networks": "none"}});
            let r = cloud.nova(Method::POST, "/servers", &tok, "2.96", Some(body)).await;
            assert_eq!(r.status, 202, "{backend}: {}", r.text);
            let id = r.body["server"]["id"].as_str().unwrap().to_string();
            settled(&cloud, &tok, &id, "ACTIVE").await;
            servers.push(id);
        }
        let r = cloud.nova(Method::GET, "/os-migrations", &admin, "2.1", None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body, json!({"migrations": []}));

        // resize and confirm the first, resize and revert the second
        resize(&cloud, &tok, &servers[0], "2").await;
        let r = cloud.nova(Method::GET, "/os-migrations", &admin, "2.1", None).await;
        let m = &r.body["migrations"][0];
        assert_eq!(m["status"], "finished", "{backend}: {m}");
        assert_eq!(m["instance_uuid"], servers[0].as_str());
        assert_eq!(m["source_compute"], "host-a");
        assert_eq!(m["dest_compute"], "host-a");
        assert_eq!(m["old_instance_type_id"], 1);
        assert_eq!(m["new_instance_type_id"], 2);
        let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 12, "{backend}: 2.1 fields: {keys:?}");
        let act = |id: &str| format!("/servers/{id}/action");
        let r = cloud.nova(Method::POST, &act(&servers[0]), &tok, "2.1", Some(json!({"confirmResize": null}))).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        settled(&cloud, &tok, &servers[0], "ACTIVE").await;
        resize(&cloud, &tok, &servers[1], "2").await;
        let r = cloud.nova(Method::POST, &act(&servers[1]), &tok, "2.1", Some(json!({"revertResize": null}))).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        settled(&cloud, &tok, &servers[1], "ACTIVE").await;

        let r = cloud.nova(Method::GET, "/os-migrations", &admin, "2.1", None).await;
        let got: Vec<(String, String)> = r.body["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["instance_uuid"].as_str().unwrap().to_string(), m["status"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            got,
            vec![(servers[0].clone(), "confirmed".to_string()), (servers[1].clone(), "reverted".to_string())],
            "{backend}"
        );
        assert!(r.body["migrations"][0]["updated_at"].is_string());

        // filters
        let r =
            cloud.nova(Method::GET, &format!("/os-migrations?instance_uuid={}", servers[1]), &admin, "2.1", None).await;
        assert_eq!(r.body["migrations"].as_array().unwrap().len(), 1, "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, "/os-migrations?status=reverted&host=host-a", &admin, "2.1", None).await;
        assert_eq!(r.body["migrations"][0]["instance_uuid"], servers[1].as_str(), "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, "/os-migrations?host=elsewhere", &admin, "2.1", None).await;
        assert_eq!(r.body["migrations"], json!([]), "{backend}");

        // 2.23: migration_type; 2.59: uuid, newest first, paging
        let r = cloud.nova(Method::GET, "/os-migrations", &admin, "2.23", None).await;
        assert_eq!(r.body["migrations"][0]["migration_type"], "resize", "{backend}: {}", r.text);
        assert!(r.body["migrations"][0].get("uuid").is_none());
        let r = cloud.nova(Method::GET, "/os-migrations?limit=1", &admin, "2.59", None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let first = &r.body["migrations"][0];
        assert_eq!(first["instance_uuid"], servers[1].as_str(), "{backend}: newest first");
        let marker = first["uuid"].as_str().unwrap();
        let next = r.body["migrations_links"][0]["href"].as_str().unwrap();
        assert!(next.contains(&format!("marker={marker}")), "{next}");
        let r = cloud.nova(Method::GET, &format!("/os-migrations?marker={marker}"), &admin, "2.59", None).await;
        assert_eq!(r.body["migrations"].as_array().unwrap().len(), 1, "{backend}: {}", r.text);
        assert_eq!(r.body["migrations"][0]["instance_uuid"], servers[0].as_str());
        let r = cloud.nova(Method::GET, "/os-migrations?marker=nope", &admin, "2.59", None).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, "/os-migrations?bogus=1", &admin, "2.59", None).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = cloud.nova(Method::GET, "/os-migrations?bogus=1", &admin, "2.58", None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let r =
            cloud.nova(Method::GET, "/os-migrations?changes-since=2999-01-01T00:00:00Z", &admin, "2.59", None).await;
        assert_eq!(r.body["migrations"], json!([]), "{backend}: {}", r.text);
        let r = cloud
            .nova(
                Method::GET,
                "/os-migrations?changes-since=2999-01-01T00:00:00Z&changes-before=2000-01-01T00:00:00Z",
                &admin,
                "2.66",
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);

        // 2.80: who asked for it
        let r = cloud.nova(Method::GET, &format!("/os-migrations?project_id={pid}"), &admin, "2.80", None).await;
        assert_eq!(r.body["migrations"].as_array().unwrap().len(), 2, "{backend}: {}", r.text);
        assert_eq!(r.body["migrations"][0]["user_id"], uid.as_str());
        assert_eq!(r.body["migrations"][0]["project_id"], pid.as_str());
        let r = cloud.nova(Method::GET, "/os-migrations?user_id=someone-else", &admin, "2.80", None).await;
        assert_eq!(r.body["migrations"], json!([]), "{backend}");

        // members may not list them
        let r = cloud.nova(Method::GET, "/os-migrations", &tok, "2.1", None).await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
    }
}
