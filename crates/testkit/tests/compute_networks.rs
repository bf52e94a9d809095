//! Servers with networks: compute makes and binds ports in the network
//! service over REST (service token), shows their addresses, releases them
//! on delete (keeping the ports the user brought), refuses bad requests at
//! the API, and unwinds the ports of a build that fails at any saga step.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, fresh_urls};

const MV: &str = "2.96";

async fn errored(cloud: &Cloud, tok: &str, id: &str) -> Value {
    cloud.wait_server(tok, id, 30, |s| s["status"] == "ERROR").await
}

async fn active(cloud: &Cloud, tok: &str, id: &str) -> Value {
    cloud.wait_server(tok, id, 30, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await
}

async fn network_with_subnet(c: &Cloud, tok: &str, name: &str, cidr: &str) -> String {
    let r = c.neutron(Method::POST, "/networks", tok, Some(json!({"network": {"name": name}}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let net = r.body["network"]["id"].as_str().unwrap().to_string();
    let r = c
        .neutron(
            Method::POST,
            "/subnets",
            tok,
            Some(json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    net
}

async fn ports_of(c: &Cloud, admin: &str, server: &str) -> Vec<Value> {
    let r = c.neutron(Method::GET, &format!("/ports?device_id={server}"), admin, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["ports"].as_array().unwrap().clone()
}

#[tokio::test]
async fn servers_get_ports_addresses_and_give_them_back() {
    for (backend, url) in fresh_urls().await {
        let c = Cloud::start_compute(backend, &url, &["host-a"], |cfg| cfg.compute.networking = true).await;
        let admin = c.admin_token().await;
        let image = c.boot_image(&admin).await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let net = network_with_subnet(&c, &tok, "private", "10.0.0.0/24").await;

        // a network by uuid: one port, bound to the host, shown as an address
        let body = json!({"server": {"name": "a", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}]}});
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let a = r.body["server"]["id"].as_str().unwrap().to_string();
        let s = active(&c, &tok, &a).await;
        assert_eq!(s["status"], "ACTIVE", "{backend}: {s}");
        let addrs = s["addresses"]["private"].as_array().unwrap();
        assert_eq!(addrs.len(), 1, "{s}");
        assert!(addrs[0]["addr"].as_str().unwrap().starts_with("10.0.0."), "{s}");
        assert_eq!(addrs[0]["version"], 4);
        assert_eq!(addrs[0]["OS-EXT-IPS:type"], "fixed");
        let ports = ports_of(&c, &admin, &a).await;
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0]["binding:host_id"], "host-a", "{}", ports[0]);
        assert_eq!(ports[0]["device_owner"], "compute:nova");
        assert_eq!(ports[0]["mac_address"], addrs[0]["OS-EXT-IPS-MAC:mac_addr"]);
        let ip = addrs[0]["addr"].as_str().unwrap().to_string();
        let r = c.nova(Method::GET, &format!("/servers/detail?ip={}", ip.replace('.', "\\.")), &tok, MV, None).await;
        assert_eq!(r.body["servers"].as_array().unwrap().len(), 1, "{}", r.text);
        // `/ips` shows the same addresses, plain (version and addr only), by network
        let r = c.nova(Method::GET, &format!("/servers/{a}/ips"), &tok, MV, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body, json!({"addresses": {"private": [{"version": 4, "addr": ip}]}}));
        let r = c.nova(Method::GET, &format!("/servers/{a}/ips/private"), &tok, MV, None).await;
        assert_eq!(r.body, json!({"private": [{"version": 4, "addr": ip}]}), "{}", r.text);
        let r = c.nova(Method::GET, &format!("/servers/{a}/ips/elsewhere"), &tok, MV, None).await;
        assert_eq!(r.status, 404, "{}", r.text);

        // a fixed IP; the user's own port (kept, unbound, after the delete)
        let body = json!({"server": {"name": "b", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net, "fixed_ip": "10.0.0.77"}]}});
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
        let b = r.body["server"]["id"].as_str().unwrap().to_string();
        let s = active(&c, &tok, &b).await;
        assert_eq!(s["addresses"]["private"][0]["addr"], "10.0.0.77", "{backend}: {s}");
        let r =
            c.neutron(Method::POST, "/ports", &tok, Some(json!({"port": {"network_id": net, "name": "mine"}}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let mine = r.body["port"]["id"].as_str().unwrap().to_string();
        let body = json!({"server": {"name": "p", "imageRef": image, "flavorRef": "1", "networks": [{"port": mine}]}});
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body.clone())).await;
        let p = r.body["server"]["id"].as_str().unwrap().to_string();
        assert_eq!(active(&c, &tok, &p).await["status"], "ACTIVE");
        // the port is in use now: a second server cannot take it
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);

        // refusals at the API
        for (networks, status) in [
            (json!([{"uuid": "6a0b1b84-8b3c-4f4e-9d0a-000000000000"}]), 400),
            (json!([{"port": "6a0b1b84-8b3c-4f4e-9d0a-000000000000"}]), 400),
            (json!([{"uuid": net, "fixed_ip": "10.0.0.999"}]), 400),
        ] {
            let body = json!({"server": {"name": "x", "imageRef": image, "flavorRef": "1", "networks": networks}});
            let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
            assert_eq!(r.status, status, "{backend}: {networks} -> {}", r.text);
        }
        // auto: the project's one network; two networks make it ambiguous
        let body = json!({"server": {"name": "auto", "imageRef": image, "flavorRef": "1", "networks": "auto"}});
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body.clone())).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let auto = r.body["server"]["id"].as_str().unwrap().to_string();
        assert!(active(&c, &tok, &auto).await["addresses"]["private"].is_array());
        network_with_subnet(&c, &tok, "second", "10.1.0.0/24").await;
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);

        // deletes give the ports back (the user's port stays, unbound)
        for id in [&a, &b, &p, &auto] {
            let r = c.nova(Method::DELETE, &format!("/servers/{id}"), &tok, MV, None).await;
            assert_eq!(r.status, 204);
            c.wait_server(&tok, id, 20, |s| s.is_null()).await;
            assert_eq!(ports_of(&c, &admin, id).await, Vec::<Value>::new(), "{backend}: ports of {id} left");
        }
        let r = c.neutron(Method::GET, &format!("/ports/{mine}"), &admin, None).await;
        assert_eq!(r.status, 200, "the user's port is kept");
        assert_eq!(r.body["port"]["device_id"], "");
        assert_eq!(r.body["port"]["binding:host_id"], "");
    }
}

#[tokio::test]
async fn a_failed_build_unwinds_its_ports_at_every_step() {
    let (backend, url) = fresh_urls().await.remove(0);
    let c = Cloud::start_compute(backend, &url, &["host-a"], |cfg| cfg.compute.networking = true).await;
    let admin = c.admin_token().await;
    let image = c.boot_image(&admin).await;
    let net = network_with_subnet(&c, &admin, "private", "10.0.0.0/24").await;
    let conductor = c.compute.as_ref().unwrap().conductor.clone();
    for step in ["begin", "select_destinations", "assign_hosts", "allocate_networks", "build_on_hosts", "finish"] {
        *conductor.faults.lock().unwrap() =
            stratus_saga::Faults { fail_action: Some(step), repeat_actions: true, repeat_undos: true };
        let body = json!({"server": {"name": format!("f-{step}"), "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}]}});
        let r = c.nova(Method::POST, "/servers", &admin, MV, Some(body)).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        // a failure at `finish` comes after the host made the server ACTIVE: wait for the unwind
        let s = errored(&c, &admin, &id).await;
        assert_eq!(s["status"], "ERROR", "{step}: {s}");
        assert_eq!(ports_of(&c, &admin, &id).await, Vec::<Value>::new(), "{step}: a port was left");
        let r = c.nova(Method::DELETE, &format!("/servers/{id}"), &admin, MV, None).await;
        assert_eq!(r.status, 204);
        c.wait_server(&admin, &id, 20, |s| s.is_null()).await;
    }
    // actions run twice still make one port per server
    *conductor.faults.lock().unwrap() =
        stratus_saga::Faults { fail_action: None, repeat_actions: true, repeat_undos: false };
    let body = json!({"server": {"name": "twice", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}]}});
    let r = c.nova(Method::POST, "/servers", &admin, MV, Some(body)).await;
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    assert_eq!(active(&c, &admin, &id).await["status"], "ACTIVE");
    assert_eq!(ports_of(&c, &admin, &id).await.len(), 1);
}
