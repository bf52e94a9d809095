//! Auto-allocated topologies ("get me a network") on every database: the
//! default external network and subnet pool they need (dry-run), one
//! topology per project however many first requests race, its network,
//! subnet, router, gateway and interface, deletion; and Nova's
//! `networks: auto` booting a fresh project's first server on it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, Resp, fresh_urls};

fn kind(r: &Resp) -> &str {
    r.body["NeutronError"]["type"].as_str().unwrap_or_default()
}

fn id(r: &Resp, res: &str) -> String {
    r.body[res]["id"].as_str().unwrap_or_else(|| panic!("{}", r.text)).to_string()
}

async fn post(c: &Cloud, path: &str, tok: &str, body: Value) -> Resp {
    c.neutron(Method::POST, path, tok, Some(body)).await
}

/// What an operator (or `stratus up`) provides: a default external network
/// with a subnet and a shared default IPv4 subnet pool. Returns the network.
async fn defaults(c: &Cloud, admin: &str) -> String {
    let r = post(
        c,
        "/networks",
        admin,
        json!({"network": {"name": "public", "router:external": true, "is_default": true}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["network"]["is_default"], true);
    let ext = id(&r, "network");
    let r =
        post(c, "/subnets", admin, json!({"subnet": {"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"}}))
            .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = post(
        c,
        "/subnetpools",
        admin,
        json!({"subnetpool": {"name": "shared-default-subnetpool-v4", "prefixes": ["10.128.0.0/9"], "default_prefixlen": 26, "shared": true, "is_default": true}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    ext
}

#[tokio::test]
async fn auto_allocated_topology_is_made_once_per_project() {
    for (backend, url) in fresh_urls().await {
        let mut c = Cloud::start(backend, &url).await;
        c.start_network().await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let (other_project, _, _) = c.user_with_role(&admin, "member").await;
        let r = c.neutron(Method::GET, "/extensions/auto-allocated-topology", &tok, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let path = format!("/auto-allocated-topology/{project}");

        // nothing to make it from yet
        let r = c.neutron(Method::GET, &format!("{path}?fields=dry-run"), &tok, None).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "AutoAllocationFailure");
        let r = c.neutron(Method::GET, &path, &tok, None).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);

        let ext = defaults(&c, &admin).await;
        // one default external network at a time; is_default is for admins and external networks
        let r = post(&c, "/networks", &admin, json!({"network": {"router:external": true, "is_default": true}})).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "DefaultExternalNetworkExists");
        let r = c.neutron(Method::GET, "/networks?is_default=true", &admin, None).await;
        assert_eq!(r.body["networks"].as_array().unwrap().len(), 1, "{backend}: {}", r.text);
        let r = post(&c, "/networks", &tok, json!({"network": {"name": "mine"}})).await;
        assert!(r.body["network"].get("is_default").is_none(), "{backend}: only external networks have is_default");
        let mine = id(&r, "network");
        assert_eq!(c.neutron(Method::DELETE, &format!("/networks/{mine}"), &tok, None).await.status, 204);

        let r = c.neutron(Method::GET, &format!("{path}?fields=dry-run"), &tok, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["auto_allocated_topology"]["id"], "dry-run=pass");
        // another project's topology is for admins
        let r = c.neutron(Method::GET, &format!("/auto-allocated-topology/{other_project}"), &tok, None).await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);

        // racing first requests: one topology
        let answers = futures::future::join_all((0..4).map(|_| c.neutron(Method::GET, &path, &tok, None))).await;
        let mut nets = BTreeSet::new();
        for r in &answers {
            assert_eq!(r.status, 200, "{backend}: {}", r.text);
            assert_eq!(r.body["auto_allocated_topology"]["project_id"], project.as_str());
            assert_eq!(r.body["auto_allocated_topology"]["tenant_id"], project.as_str());
            nets.insert(r.body["auto_allocated_topology"]["id"].as_str().unwrap().to_string());
        }
        assert_eq!(nets.len(), 1, "{backend}: {nets:?}");
        let net = nets.into_iter().next().unwrap();
        // `None` is the caller's project, as clients without one send it
        let r = c.neutron(Method::GET, "/auto-allocated-topology/None", &tok, None).await;
        assert_eq!(r.body["auto_allocated_topology"]["id"], net.as_str(), "{backend}: {}", r.text);

        // what it is: the project's network, a /26 of the pool, a router to the default external network
        let r = c.neutron(Method::GET, "/networks?name=auto_allocated_network", &tok, None).await;
        let all = r.body["networks"].as_array().unwrap();
        assert_eq!(all.len(), 1, "{backend}: {}", r.text);
        assert_eq!(all[0]["id"], net.as_str());
        assert_eq!(all[0]["project_id"], project.as_str());
        let r = c.neutron(Method::GET, &format!("/subnets?network_id={net}"), &tok, None).await;
        let subs = r.body["subnets"].as_array().unwrap().clone();
        assert_eq!(subs.len(), 1, "{backend}: {}", r.text);
        assert_eq!(subs[0]["name"], "auto_allocated_subnet_v4");
        let cidr = subs[0]["cidr"].as_str().unwrap();
        assert!(cidr.starts_with("10.") && cidr.ends_with("/26"), "{backend}: {cidr}");
        let r = c.neutron(Method::GET, "/routers", &tok, None).await;
        let routers = r.body["routers"].as_array().unwrap().clone();
        assert_eq!(routers.len(), 1, "{backend}: {}", r.text);
        assert_eq!(routers[0]["name"], "auto_allocated_router");
        assert_eq!(routers[0]["external_gateway_info"]["network_id"], ext.as_str());
        assert_eq!(routers[0]["external_gateway_info"]["external_fixed_ips"].as_array().unwrap().len(), 1);
        let rid = routers[0]["id"].as_str().unwrap().to_string();
        let r = c.neutron(Method::GET, &format!("/ports?device_id={rid}&network_id={net}"), &tok, None).await;
        let ports = r.body["ports"].as_array().unwrap().clone();
        assert_eq!(ports.len(), 1, "{backend}: {}", r.text);
        assert_eq!(ports[0]["fixed_ips"][0]["ip_address"], subs[0]["gateway_ip"]);

        // a port on it (a server's) keeps it; then DELETE removes it all, and the next GET makes a new one
        let r = post(&c, "/ports", &tok, json!({"port": {"network_id": net}})).await;
        let port = id(&r, "port");
        let r = c.neutron(Method::DELETE, &path, &tok, None).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(c.neutron(Method::DELETE, &format!("/ports/{port}"), &tok, None).await.status, 204);
        let r = c.neutron(Method::DELETE, &path, &tok, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &format!("/networks/{net}"), &tok, None).await;
        assert_eq!(r.status, 404);
        let r = c.neutron(Method::GET, &format!("/routers/{rid}"), &tok, None).await;
        assert_eq!(r.status, 404);
        let r = c.neutron(Method::GET, &path, &tok, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let net2 = r.body["auto_allocated_topology"]["id"].as_str().unwrap().to_string();
        assert_ne!(net2, net);

        // taken apart by hand (as Tempest's cleanup does): the next GET makes a new one
        let r = c.neutron(Method::GET, "/routers?name=auto_allocated_router", &tok, None).await;
        let rid = r.body["routers"][0]["id"].as_str().unwrap().to_string();
        let r = c.neutron(Method::GET, &format!("/subnets?network_id={net2}"), &tok, None).await;
        let sub = r.body["subnets"][0]["id"].as_str().unwrap().to_string();
        let r = c
            .neutron(
                Method::PUT,
                &format!("/routers/{rid}/remove_router_interface"),
                &tok,
                Some(json!({"subnet_id": sub})),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(c.neutron(Method::DELETE, &format!("/routers/{rid}"), &tok, None).await.status, 204);
        assert_eq!(c.neutron(Method::DELETE, &format!("/networks/{net2}"), &tok, None).await.status, 204);
        let r = c.neutron(Method::GET, &path, &tok, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let net3 = r.body["auto_allocated_topology"]["id"].as_str().unwrap().to_string();
        assert_ne!(net3, net2);
        let r = c.neutron(Method::GET, &format!("/networks/{net3}"), &tok, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
    }
}

const MV: &str = "2.96";

#[tokio::test]
async fn a_fresh_projects_first_servers_boot_on_its_auto_allocated_network() {
    for (backend, url) in fresh_urls().await {
        let c = Cloud::start_compute(backend, &url, &["host-a"], |cfg| cfg.compute.networking = true).await;
        let admin = c.admin_token().await;
        let image = c.boot_image(&admin).await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        // no defaults to allocate from: Nova's 400
        let body = json!({"server": {"name": "x", "imageRef": image, "flavorRef": "1", "networks": "auto"}});
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        assert!(r.text.contains("Unable to automatically allocate a network"), "{backend}: {}", r.text);

        defaults(&c, &admin).await;
        // two first boots at once (networks auto is the default from 2.37): one topology
        let boot = |name: &str| {
            let body = json!({"server": {"name": name, "imageRef": image, "flavorRef": "1", "networks": "auto"}});
            c.nova(Method::POST, "/servers", &tok, MV, Some(body))
        };
        let (a, b) = tokio::join!(boot("a"), boot("b"));
        assert_eq!(a.status, 202, "{backend}: {}", a.text);
        assert_eq!(b.status, 202, "{backend}: {}", b.text);
        let r = c.neutron(Method::GET, &format!("/auto-allocated-topology/{project}"), &tok, None).await;
        let net = r.body["auto_allocated_topology"]["id"].as_str().unwrap().to_string();
        let r = c.neutron(Method::GET, "/networks", &tok, None).await;
        let mine: Vec<&Value> =
            r.body["networks"].as_array().unwrap().iter().filter(|n| n["project_id"] == project.as_str()).collect();
        assert_eq!(mine.len(), 1, "{backend}: {}", r.text);
        assert_eq!(mine[0]["id"], net.as_str());
        for s in [&a, &b] {
            let sid = s.body["server"]["id"].as_str().unwrap().to_string();
            let s = c.wait_server(&tok, &sid, 30, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await;
            assert_eq!(s["status"], "ACTIVE", "{backend}: {s}");
            let addrs = s["addresses"]["auto_allocated_network"].as_array().unwrap_or_else(|| panic!("{backend}: {s}"));
            assert_eq!(addrs.len(), 1, "{backend}: {s}");
            assert!(addrs[0]["addr"].as_str().unwrap().starts_with("10."), "{backend}: {s}");
            let r = c.neutron(Method::GET, &format!("/ports?device_id={sid}"), &admin, None).await;
            assert_eq!(r.body["ports"][0]["network_id"], net.as_str(), "{backend}: {}", r.text);
        }
        // the next boot finds the network as the project's own
        let body = json!({"server": {"name": "c", "imageRef": image, "flavorRef": "1", "networks": "auto"}});
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let sid = r.body["server"]["id"].as_str().unwrap().to_string();
        let s = c.wait_server(&tok, &sid, 30, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await;
        assert!(s["addresses"]["auto_allocated_network"].is_array(), "{backend}: {s}");
    }
}
