//! The networks `stratus up` bootstraps, on every database: `public`
//! (external, DHCP off), `private`, `router1` joining them; a second run
//! makes nothing, a deleted piece comes back alone, `enable = false` makes
//! nothing at all; `public` is the default external network and a shared
//! default IPv4 subnet pool is made (for auto-allocated topologies).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_network::bootstrap;
use stratus_testkit::{Cloud, fresh_urls};

async fn get(c: &Cloud, path: &str, tok: &str) -> Value {
    let r = c.neutron(Method::GET, path, tok, None).await;
    assert_eq!(r.status, 200, "{}: {}", c.backend, r.text);
    r.body
}

/// The one resource of `kind` named `name` (`kind` singular, e.g. `network`).
async fn one(c: &Cloud, kind: &str, name: &str, tok: &str) -> Value {
    let b = get(c, &format!("/{kind}s?name={name}"), tok).await;
    let all = b[format!("{kind}s")].as_array().unwrap().clone();
    assert_eq!(all.len(), 1, "{}: {kind} {name}: {b}", c.backend);
    all[0].clone()
}

async fn counts(c: &Cloud, tok: &str) -> [usize; 4] {
    let mut out = [0; 4];
    for (i, kind) in ["networks", "subnets", "routers", "ports"].iter().enumerate() {
        out[i] = get(c, &format!("/{kind}"), tok).await[*kind].as_array().unwrap().len();
    }
    out
}

#[tokio::test]
async fn bootstrap_makes_public_private_and_router1_once_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let mut c = Cloud::start(backend, &url).await;
        c.start_network().await;
        let admin = c.admin_token().await;
        let r = c.get("/v3/projects?name=admin", &admin).await;
        let project = r.body["projects"][0]["id"].as_str().unwrap().to_string();
        let db = c.identity.db.clone();
        let mut cfg = c.identity.cfg.clone();

        // switched off: nothing
        cfg.network.bootstrap.enable = false;
        let out = bootstrap::run(&db, &cfg, &project).await.unwrap();
        assert!(out.created.is_empty(), "{backend}: {out:?}");
        assert_eq!(counts(&c, &admin).await, [0, 0, 0, 0], "{backend}");

        cfg.network.bootstrap.enable = true;
        let out = bootstrap::run(&db, &cfg, &project).await.unwrap();
        assert_eq!(
            out.created,
            [
                "public",
                "public-subnet",
                "public as the default external network",
                "shared-default-subnetpool-v4",
                "private",
                "private-subnet",
                "router1",
                "router1 gateway on public",
                "router1 interface on private-subnet"
            ],
            "{backend}"
        );

        let public = one(&c, "network", "public", &admin).await;
        assert_eq!(public["router:external"], true, "{backend}: {public}");
        assert_eq!(public["shared"], false, "{backend}: {public}");
        assert_eq!(public["project_id"], project.as_str(), "{backend}: {public}");
        // flat on the physical network the agents map to their external bridge (br-ex)
        assert_eq!(public["provider:network_type"], "flat", "{backend}: {public}");
        assert_eq!(public["provider:physical_network"], "public", "{backend}: {public}");
        assert_eq!(public["subnets"].as_array().unwrap().len(), 1, "{backend}: {public}");
        assert_eq!(public["is_default"], true, "{backend}: {public}");
        let pool = one(&c, "subnetpool", "shared-default-subnetpool-v4", &admin).await;
        assert_eq!(pool["is_default"], true, "{backend}: {pool}");
        assert_eq!(pool["shared"], true, "{backend}: {pool}");
        assert_eq!(pool["prefixes"], json!(["10.128.0.0/9"]), "{backend}: {pool}");
        assert_eq!(pool["default_prefixlen"], 26, "{backend}: {pool}");
        let ps = one(&c, "subnet", "public-subnet", &admin).await;
        assert_eq!(ps["network_id"], public["id"], "{backend}: {ps}");
        assert_eq!(ps["cidr"], "198.51.100.0/24", "{backend}: {ps}");
        assert_eq!(ps["gateway_ip"], "198.51.100.1", "{backend}: {ps}");
        assert_eq!(ps["enable_dhcp"], false, "{backend}: {ps}");
        assert_eq!(ps["ip_version"], 4, "{backend}: {ps}");
        assert_eq!(ps["allocation_pools"], json!([{"start": "198.51.100.2", "end": "198.51.100.254"}]), "{backend}");

        let private = one(&c, "network", "private", &admin).await;
        assert_eq!(private["router:external"], false, "{backend}: {private}");
        assert_eq!(private["shared"], false, "{backend}: {private}");
        assert_eq!(private["project_id"], project.as_str(), "{backend}: {private}");
        assert_ne!(
            private["provider:segmentation_id"], public["provider:segmentation_id"],
            "{backend}: segments of private and public"
        );
        let vs = one(&c, "subnet", "private-subnet", &admin).await;
        assert_eq!(vs["network_id"], private["id"], "{backend}: {vs}");
        assert_eq!(vs["cidr"], "10.0.0.0/24", "{backend}: {vs}");
        assert_eq!(vs["gateway_ip"], "10.0.0.1", "{backend}: {vs}");
        assert_eq!(vs["enable_dhcp"], true, "{backend}: {vs}");
        assert_eq!(vs["dns_nameservers"], json!([]), "{backend}: {vs}");
        assert_eq!(vs["allocation_pools"], json!([{"start": "10.0.0.2", "end": "10.0.0.254"}]), "{backend}");

        let router = one(&c, "router", "router1", &admin).await;
        let gw = &router["external_gateway_info"];
        assert_eq!(gw["network_id"], public["id"], "{backend}: {router}");
        assert_eq!(gw["enable_snat"], true, "{backend}: {router}");
        assert_eq!(gw["external_fixed_ips"][0]["subnet_id"], ps["id"], "{backend}: {router}");
        assert_eq!(gw["external_fixed_ips"][0]["ip_address"], "198.51.100.2", "{backend}: {router}");
        let rid = router["id"].as_str().unwrap().to_string();
        let ports = get(&c, &format!("/ports?device_id={rid}&device_owner=network:router_interface"), &admin).await;
        let ports = ports["ports"].as_array().unwrap().clone();
        assert_eq!(ports.len(), 1, "{backend}: {ports:?}");
        assert_eq!(ports[0]["network_id"], private["id"], "{backend}");
        assert_eq!(ports[0]["fixed_ips"], json!([{"subnet_id": vs["id"], "ip_address": "10.0.0.1"}]), "{backend}");

        // another project sees the external network (not the private one) and may use it
        let (_, _, member) = c.user_with_role(&admin, "member").await;
        let seen = get(&c, "/networks", &member).await;
        let names: Vec<&str> = seen["networks"].as_array().unwrap().iter().filter_map(|n| n["name"].as_str()).collect();
        assert_eq!(names, ["public"], "{backend}");
        let r = c
            .neutron(
                Method::POST,
                "/floatingips",
                &member,
                Some(json!({"floatingip": {"floating_network_id": public["id"]}})),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let fip = r.body["floatingip"]["id"].as_str().unwrap().to_string();
        let r = c.neutron(Method::DELETE, &format!("/floatingips/{fip}"), &member, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);

        // the second run: nothing new, nothing changed
        let before = counts(&c, &admin).await;
        assert_eq!(before, [2, 2, 1, 2], "{backend}");
        let out = bootstrap::run(&db, &cfg, &project).await.unwrap();
        assert!(out.created.is_empty(), "{backend}: {out:?}");
        assert_eq!(counts(&c, &admin).await, before, "{backend}");
        assert_eq!(one(&c, "router", "router1", &admin).await, router, "{backend}");

        // a piece removed comes back alone
        let r = c
            .neutron(
                Method::PUT,
                &format!("/routers/{rid}/remove_router_interface"),
                &admin,
                Some(json!({"subnet_id": vs["id"]})),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let out = bootstrap::run(&db, &cfg, &project).await.unwrap();
        assert_eq!(out.created, ["router1 interface on private-subnet"], "{backend}");
        assert_eq!(counts(&c, &admin).await, before, "{backend}");
    }
}
