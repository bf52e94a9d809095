//! Nova's multinic actions (to 2.43): `addFixedIp` gives the server's port on
//! a network a second address, `removeFixedIp` takes it off again; the port
//! in the network service and the server's addresses both change. From 2.44
//! the actions are gone (404).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, fresh_urls};

fn ips(server: &Value) -> Vec<String> {
    let mut out: Vec<String> = server["addresses"]
        .as_object()
        .into_iter()
        .flat_map(|o| o.values())
        .flat_map(|a| a.as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["addr"].as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn add_and_remove_a_fixed_ip() {
    let (backend, url) = fresh_urls().await.remove(0);
    let c = Cloud::start_compute(backend, &url, &["host-a"], |cfg| {
        cfg.compute.networking = true;
    })
    .await;
    let admin = c.admin_token().await;
    let image = c.boot_image(&admin).await;
    let (_, _, tok) = c.user_with_role(&admin, "member").await;
    let r = c.neutron(Method::POST, "/networks", &tok, Some(json!({"network": {"name": "private"}}))).await;
    let net = r.body["network"]["id"].as_str().unwrap().to_string();
    let body = json!({"subnet": {"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4}});
    let r = c.neutron(Method::POST, "/subnets", &tok, Some(body)).await;
    assert!(r.status.is_success(), "{}", r.text);

    let body = json!({"server": {"name": "s", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}]}});
    let r = c.nova(Method::POST, "/servers", &tok, "2.43", Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    let s = c.wait_server(&tok, &id, 30, |s| s["status"] == "ACTIVE").await;
    let before = ips(&s);
    assert_eq!(before.len(), 1, "{s}");
    let action = format!("/servers/{id}/action");

    let r = c.nova(Method::POST, &action, &tok, "2.44", Some(json!({"addFixedIp": {"networkId": net}}))).await;
    assert_eq!(r.status, 404, "gone from 2.44: {}", r.text);
    let r = c.nova(Method::POST, &action, &tok, "2.43", Some(json!({"addFixedIp": {}}))).await;
    assert_eq!(r.status, 400, "{}", r.text);

    let r = c.nova(Method::POST, &action, &tok, "2.43", Some(json!({"addFixedIp": {"networkId": net}}))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let s = c.wait_server(&tok, &id, 5, |_| true).await;
    let after = ips(&s);
    assert_eq!(after.len(), 2, "{s}");
    let added = after.iter().find(|ip| !before.contains(ip)).unwrap().clone();
    let r = c.neutron(Method::GET, &format!("/ports?device_id={id}"), &tok, None).await;
    assert_eq!(r.body["ports"][0]["fixed_ips"].as_array().unwrap().len(), 2, "{}", r.text);

    let r = c.nova(Method::POST, &action, &tok, "2.43", Some(json!({"removeFixedIp": {"address": "10.9.9.9"}}))).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = c.nova(Method::POST, &action, &tok, "2.43", Some(json!({"removeFixedIp": {"address": added}}))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let s = c.wait_server(&tok, &id, 5, |_| true).await;
    assert_eq!(ips(&s), before, "{s}");
    let r = c.neutron(Method::GET, &format!("/ports?device_id={id}"), &tok, None).await;
    assert_eq!(r.body["ports"][0]["fixed_ips"].as_array().unwrap().len(), 1, "{}", r.text);
}
