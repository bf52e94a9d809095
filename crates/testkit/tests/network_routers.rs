//! Routers and floating IPs end to end on every database: the external
//! gateway and its port, interfaces by subnet and by port, extra routes,
//! delete while in use, floating IP allocation (next free and specific),
//! association (reachability through a router), one floating IP per fixed
//! IP, disassociation (also when the port goes), quotas, and racing
//! allocations of the last address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, Resp, fresh_urls};

async fn cloud(backend: &'static str, url: &str) -> Cloud {
    let mut c = Cloud::start(backend, url).await;
    c.start_network().await;
    c
}

fn kind(r: &Resp) -> &str {
    r.body["NeutronError"]["type"].as_str().unwrap_or_default()
}

fn id(r: &Resp, res: &str) -> String {
    r.body[res]["id"].as_str().unwrap().to_string()
}

async fn post(c: &Cloud, path: &str, tok: &str, body: Value) -> Resp {
    c.neutron(Method::POST, path, tok, Some(body)).await
}

/// An external network (admin's) with one subnet: (network, subnet).
async fn external(c: &Cloud, admin: &str, cidr: &str, pool: Option<(&str, &str)>) -> (String, String) {
    let r = post(c, "/networks", admin, json!({"network": {"name": "ext", "router:external": true}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let net = id(&r, "network");
    let mut s = json!({"network_id": net, "ip_version": 4, "cidr": cidr});
    if let Some((a, b)) = pool {
        s["allocation_pools"] = json!([{"start": a, "end": b}]);
    }
    let r = post(c, "/subnets", admin, json!({ "subnet": s })).await;
    assert_eq!(r.status, 201, "{}", r.text);
    (net, id(&r, "subnet"))
}

/// A project network with one subnet: (network, subnet).
async fn private(c: &Cloud, tok: &str, cidr: &str) -> (String, String) {
    let r = post(c, "/networks", tok, json!({"network": {"name": "priv"}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let net = id(&r, "network");
    let r = post(c, "/subnets", tok, json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": cidr}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    (net, id(&r, "subnet"))
}

async fn put(c: &Cloud, path: &str, tok: &str, body: Value) -> Resp {
    c.neutron(Method::PUT, path, tok, Some(body)).await
}

#[tokio::test]
async fn routers_gateways_interfaces_and_routes_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let (ext, ext_sub) = external(&c, &admin, "172.24.4.0/24", None).await;
        let (net, sub) = private(&c, &tok, "10.0.0.0/24").await;

        // gateway on a network that is not external: 400
        let r = post(&c, "/routers", &tok, json!({"router": {"external_gateway_info": {"network_id": net}}})).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        // enable_snat is the admin's to set
        let r = post(
            &c,
            "/routers",
            &tok,
            json!({"router": {"external_gateway_info": {"network_id": ext, "enable_snat": false}}}),
        )
        .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);

        let r =
            post(&c, "/routers", &tok, json!({"router": {"name": "r1", "external_gateway_info": {"network_id": ext}}}))
                .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let router = r.body["router"].clone();
        let rid = router["id"].as_str().unwrap().to_string();
        assert_eq!(router["status"], "ACTIVE");
        assert_eq!(router["admin_state_up"], true);
        assert_eq!(router["project_id"], project.as_str());
        assert_eq!(router["routes"], json!([]));
        let gw = &router["external_gateway_info"];
        assert_eq!(gw["network_id"], ext.as_str());
        assert_eq!(gw["enable_snat"], true);
        assert_eq!(gw["external_fixed_ips"][0]["subnet_id"], ext_sub.as_str());
        assert_eq!(gw["external_fixed_ips"][0]["ip_address"], "172.24.4.2", "{backend}");
        // the gateway port: the admin sees it, owned by no project
        let r = c.neutron(Method::GET, &format!("/ports?device_id={rid}"), &admin, None).await;
        let ports = r.body["ports"].as_array().unwrap().clone();
        assert_eq!(ports.len(), 1, "{backend}: {}", r.text);
        assert_eq!(ports[0]["device_owner"], "network:router_gateway");
        assert_eq!(ports[0]["project_id"], "");
        assert_eq!(ports[0]["fixed_ips"][0]["ip_address"], "172.24.4.2");
        // and cannot delete it through the port API
        let gwp = ports[0]["id"].as_str().unwrap().to_string();
        let r = c.neutron(Method::DELETE, &format!("/ports/{gwp}"), &admin, None).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "ServicePortInUse");

        // interface by subnet: the subnet's gateway address
        let r = put(&c, &format!("/routers/{rid}/add_router_interface"), &tok, json!({"subnet_id": sub})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["id"], rid.as_str());
        assert_eq!(r.body["subnet_id"], sub.as_str());
        assert_eq!(r.body["subnet_ids"], json!([sub]));
        assert_eq!(r.body["network_id"], net.as_str());
        assert_eq!(r.body["project_id"], project.as_str());
        let if1 = r.body["port_id"].as_str().unwrap().to_string();
        let r = c.neutron(Method::GET, &format!("/ports/{if1}"), &tok, None).await;
        assert_eq!(r.body["port"]["device_owner"], "network:router_interface");
        assert_eq!(r.body["port"]["device_id"], rid.as_str());
        assert_eq!(r.body["port"]["fixed_ips"][0]["ip_address"], "10.0.0.1");
        // twice on one subnet: 400; neither argument: 400
        let r = put(&c, &format!("/routers/{rid}/add_router_interface"), &tok, json!({"subnet_id": sub})).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = put(&c, &format!("/routers/{rid}/add_router_interface"), &tok, json!({})).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        // an overlapping subnet elsewhere: 400
        let (_, sub_ov) = private(&c, &tok, "10.0.0.0/25").await;
        let r = put(&c, &format!("/routers/{rid}/add_router_interface"), &tok, json!({"subnet_id": sub_ov})).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        // a subnet without a gateway: 400
        let r = post(&c, "/networks", &tok, json!({"network": {}})).await;
        let nogw_net = id(&r, "network");
        let r = post(
            &c,
            "/subnets",
            &tok,
            json!({"subnet": {"network_id": nogw_net, "ip_version": 4, "cidr": "10.9.0.0/24", "gateway_ip": null}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let nogw = id(&r, "subnet");
        let r = put(&c, &format!("/routers/{rid}/add_router_interface"), &tok, json!({"subnet_id": nogw})).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);

        // interface by port
        let (net2, sub2) = private(&c, &tok, "10.1.0.0/24").await;
        let r = post(
            &c,
            "/ports",
            &tok,
            json!({"port": {"network_id": net2, "fixed_ips": [{"subnet_id": sub2, "ip_address": "10.1.0.10"}]}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let p2 = id(&r, "port");
        let r = put(&c, &format!("/routers/{rid}/add_router_interface"), &tok, json!({"port_id": p2})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["port_id"], p2.as_str());
        assert_eq!(r.body["subnet_ids"], json!([sub2]));
        let r = c.neutron(Method::GET, &format!("/ports/{p2}"), &tok, None).await;
        assert_eq!(r.body["port"]["device_owner"], "network:router_interface");
        // a port already attached: 409
        let r = put(&c, &format!("/routers/{rid}/add_router_interface"), &tok, json!({"port_id": if1})).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);

        // extra routes: the nexthop must be on an interface's subnet
        let upd = |routes: Value| json!({"router": {"routes": routes}});
        let r = put(
            &c,
            &format!("/routers/{rid}"),
            &tok,
            upd(json!([{"destination": "192.168.0.0/16", "nexthop": "10.99.0.5"}])),
        )
        .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "InvalidRoutes");
        let r = put(
            &c,
            &format!("/routers/{rid}"),
            &tok,
            upd(json!([{"destination": "192.168.0.0/16", "nexthop": "10.0.0.1"}])),
        )
        .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r =
            put(&c, &format!("/routers/{rid}"), &tok, upd(json!([{"destination": "nonsense", "nexthop": "10.0.0.5"}])))
                .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = put(
            &c,
            &format!("/routers/{rid}"),
            &tok,
            upd(json!([{"destination": "192.168.0.0/16", "nexthop": "10.1.0.5"}])),
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["router"]["routes"], json!([{"destination": "192.168.0.0/16", "nexthop": "10.1.0.5"}]));
        // extraroute-atomic
        let r = put(
            &c,
            &format!("/routers/{rid}/add_extraroutes"),
            &tok,
            json!({"router": {"routes": [{"destination": "192.169.0.0/16", "nexthop": "10.0.0.7"}]}}),
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["router"]["routes"].as_array().unwrap().len(), 2);
        // the route's interface cannot go
        let r = put(&c, &format!("/routers/{rid}/remove_router_interface"), &tok, json!({"subnet_id": sub2})).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "RouterInterfaceInUseByRoute");
        let r = put(
            &c,
            &format!("/routers/{rid}/remove_extraroutes"),
            &tok,
            json!({"router": {"routes": [{"destination": "192.168.0.0/16", "nexthop": "10.1.0.5"}]}}),
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["router"]["routes"], json!([{"destination": "192.169.0.0/16", "nexthop": "10.0.0.7"}]));

        // delete while interfaces exist: 409
        let r = c.neutron(Method::DELETE, &format!("/routers/{rid}"), &tok, None).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "RouterInUse");

        // remove: unknown interfaces 404, then by port and by subnet
        let r = put(&c, &format!("/routers/{rid}/remove_router_interface"), &tok, json!({"subnet_id": nogw})).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "RouterInterfaceNotFoundForSubnet");
        let r = put(&c, &format!("/routers/{rid}/remove_router_interface"), &tok, json!({"port_id": gwp})).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "RouterInterfaceNotFound");
        let r = put(&c, &format!("/routers/{rid}/remove_router_interface"), &tok, json!({"port_id": p2})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["subnet_id"], sub2.as_str());
        let r = c.neutron(Method::GET, &format!("/ports/{p2}"), &tok, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        // the other route's nexthop is on the remaining interface: drop it first
        let r = put(&c, &format!("/routers/{rid}"), &tok, upd(json!([]))).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let r = put(&c, &format!("/routers/{rid}/remove_router_interface"), &tok, json!({"subnet_id": sub})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["port_id"], if1.as_str());

        // update: rename, clear the gateway, set it with a chosen address (admin)
        let r =
            put(&c, &format!("/routers/{rid}"), &tok, json!({"router": {"name": "r2", "external_gateway_info": {}}}))
                .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["router"]["name"], "r2");
        assert_eq!(r.body["router"]["external_gateway_info"], Value::Null);
        let r = put(
            &c,
            &format!("/routers/{rid}"),
            &admin,
            json!({"router": {"external_gateway_info": {"network_id": ext, "enable_snat": false,
                "external_fixed_ips": [{"ip_address": "172.24.4.50"}]}}}),
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let gw = &r.body["router"]["external_gateway_info"];
        assert_eq!(gw["enable_snat"], false);
        assert_eq!(gw["external_fixed_ips"], json!([{"subnet_id": ext_sub, "ip_address": "172.24.4.50"}]));
        let r = c.neutron(Method::GET, "/routers", &tok, None).await;
        assert_eq!(r.body["routers"].as_array().unwrap().len(), 1, "{backend}");

        let r = c.neutron(Method::DELETE, &format!("/routers/{rid}"), &tok, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &format!("/ports?network_id={ext}"), &admin, None).await;
        assert_eq!(r.body["ports"], json!([]), "{backend}");
        let r = c.neutron(Method::GET, &format!("/routers/{rid}"), &tok, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
    }
}

#[tokio::test]
async fn floating_ips_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let (ext, ext_sub) = external(&c, &admin, "172.24.4.0/24", None).await;
        let (net, sub) = private(&c, &tok, "10.0.0.0/24").await;
        let r = post(&c, "/ports", &tok, json!({"port": {"network_id": net}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let vm = id(&r, "port");
        let vm_ip = r.body["port"]["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();

        // a floating IP on a private network: 400
        let r = post(&c, "/floatingips", &tok, json!({"floatingip": {"floating_network_id": net}})).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        // allocate
        let r = post(&c, "/floatingips", &tok, json!({"floatingip": {"floating_network_id": ext}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let f = r.body["floatingip"].clone();
        let fid = f["id"].as_str().unwrap().to_string();
        assert_eq!(f["project_id"], project.as_str());
        assert_eq!(f["floating_network_id"], ext.as_str());
        assert_eq!(f["floating_ip_address"], "172.24.4.2", "{backend}");
        assert_eq!(f["port_id"], Value::Null);
        assert_eq!(f["fixed_ip_address"], Value::Null);
        assert_eq!(f["router_id"], Value::Null);
        assert_eq!(f["status"], "DOWN");
        let r = c.neutron(Method::GET, &format!("/ports?device_id={fid}"), &admin, None).await;
        assert_eq!(r.body["ports"][0]["device_owner"], "network:floatingip", "{backend}: {}", r.text);
        // a specific address is the admin's
        let r = post(
            &c,
            "/floatingips",
            &tok,
            json!({"floatingip": {"floating_network_id": ext, "floating_ip_address": "172.24.4.100"}}),
        )
        .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        let r = post(
            &c,
            "/floatingips",
            &admin,
            json!({"floatingip": {"floating_network_id": ext, "floating_ip_address": "172.24.4.100", "project_id": project}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["floatingip"]["floating_ip_address"], "172.24.4.100");
        let f2 = id(&r, "floatingip");
        let r = post(
            &c,
            "/floatingips",
            &admin,
            json!({"floatingip": {"floating_network_id": ext, "floating_ip_address": "172.24.4.100"}}),
        )
        .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        let r =
            post(&c, "/floatingips", &tok, json!({"floatingip": {"floating_network_id": ext, "subnet_id": ext_sub}}))
                .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let f3 = id(&r, "floatingip");

        // associate: unreachable without a router: 404
        let r = put(&c, &format!("/floatingips/{fid}"), &tok, json!({"floatingip": {"port_id": vm}})).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "ExternalGatewayForFloatingIPNotFound");
        // a router with a gateway on ext and an interface on the subnet
        let r = post(&c, "/routers", &tok, json!({"router": {"external_gateway_info": {"network_id": ext}}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let rid = id(&r, "router");
        let r = put(&c, &format!("/routers/{rid}/add_router_interface"), &tok, json!({"subnet_id": sub})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let r = put(&c, &format!("/floatingips/{fid}"), &tok, json!({"floatingip": {"port_id": vm}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let f = &r.body["floatingip"];
        assert_eq!(f["port_id"], vm.as_str());
        assert_eq!(f["fixed_ip_address"], vm_ip.as_str());
        assert_eq!(f["router_id"], rid.as_str());
        assert_eq!(f["status"], "ACTIVE");
        // a second floating IP on the same fixed IP: 409
        let r = put(&c, &format!("/floatingips/{f3}"), &tok, json!({"floatingip": {"port_id": vm}})).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "FloatingIPPortAlreadyAssociated");
        let r =
            post(&c, "/floatingips", &tok, json!({"floatingip": {"floating_network_id": ext, "port_id": vm}})).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        // a fixed IP the port does not have: 400
        let r = put(
            &c,
            &format!("/floatingips/{f3}"),
            &tok,
            json!({"floatingip": {"port_id": vm, "fixed_ip_address": "10.0.0.200"}}),
        )
        .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        // the interface and the gateway are needed now
        let r = put(&c, &format!("/routers/{rid}/remove_router_interface"), &tok, json!({"subnet_id": sub})).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "RouterInterfaceInUseByFloatingIP");
        let r = put(&c, &format!("/routers/{rid}"), &tok, json!({"router": {"external_gateway_info": null}})).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        // filters
        let r = c.neutron(Method::GET, &format!("/floatingips?port_id={vm}"), &tok, None).await;
        assert_eq!(r.body["floatingips"].as_array().unwrap().len(), 1, "{backend}: {}", r.text);
        // disassociate
        let r = put(&c, &format!("/floatingips/{fid}"), &tok, json!({"floatingip": {"port_id": null}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["floatingip"]["port_id"], Value::Null);
        assert_eq!(r.body["floatingip"]["router_id"], Value::Null);
        assert_eq!(r.body["floatingip"]["status"], "DOWN");
        // create associated; deleting the port disassociates
        let r =
            post(&c, "/floatingips", &tok, json!({"floatingip": {"floating_network_id": ext, "port_id": vm}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let f4 = id(&r, "floatingip");
        assert_eq!(r.body["floatingip"]["router_id"], rid.as_str());
        let r = c.neutron(Method::DELETE, &format!("/ports/{vm}"), &tok, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &format!("/floatingips/{f4}"), &tok, None).await;
        assert_eq!(r.body["floatingip"]["port_id"], Value::Null, "{backend}");
        // another project does not see them
        let (_, _, other) = c.user_with_role(&admin, "member").await;
        let r = c.neutron(Method::GET, &format!("/floatingips/{fid}"), &other, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        // delete frees the address
        for f in [&fid, &f2, &f3, &f4] {
            let r = c.neutron(Method::DELETE, &format!("/floatingips/{f}"), &tok, None).await;
            assert_eq!(r.status, 204, "{backend}: {}", r.text);
        }
        let r = c.neutron(Method::GET, "/ports?device_owner=network:floatingip", &admin, None).await;
        assert_eq!(r.body["ports"], json!([]), "{backend}");
        let r = post(&c, "/floatingips", &tok, json!({"floatingip": {"floating_network_id": ext}})).await;
        assert_eq!(r.body["floatingip"]["floating_ip_address"], "172.24.4.2", "{backend}: {}", r.text);
    }
}

#[tokio::test]
async fn router_and_floating_ip_quotas_and_races_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let r = put(&c, &format!("/quotas/{project}"), &admin, json!({"quota": {"router": 1, "floatingip": 1}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let (ext, _) = external(&c, &admin, "172.24.4.0/24", Some(("172.24.4.10", "172.24.4.11"))).await;
        let r = post(&c, "/routers", &tok, json!({"router": {}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let r = post(&c, "/routers", &tok, json!({"router": {}})).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "OverQuota");
        let r = post(&c, "/floatingips", &tok, json!({"floatingip": {"floating_network_id": ext}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let r = post(&c, "/floatingips", &tok, json!({"floatingip": {"floating_network_id": ext}})).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "OverQuota");

        // one address left: of two racing allocations exactly one wins
        let (_, _, t1) = c.user_with_role(&admin, "member").await;
        let (_, _, t2) = c.user_with_role(&admin, "member").await;
        let calls = [t1, t2].into_iter().map(|t| {
            let c = &c;
            let ext = ext.clone();
            async move { post(c, "/floatingips", &t, json!({"floatingip": {"floating_network_id": ext}})).await }
        });
        let results = futures::future::join_all(calls).await;
        let won: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
        let lost: Vec<&Resp> = results.iter().filter(|r| r.status == 409).collect();
        assert_eq!(
            (won.len(), lost.len()),
            (1, 1),
            "{backend}: {:?}",
            results.iter().map(|r| &r.text).collect::<Vec<_>>()
        );
        assert_eq!(won[0].body["floatingip"]["floating_ip_address"], "172.24.4.11");
        assert_eq!(kind(lost[0]), "IpAddressGenerationFailure");
    }
}

#[tokio::test]
async fn l3_extensions_are_listed() {
    let c = cloud("sqlite", "sqlite::memory:").await;
    let admin = c.admin_token().await;
    let r = c.neutron(Method::GET, "/extensions", &admin, None).await;
    let aliases: Vec<&str> =
        r.body["extensions"].as_array().unwrap().iter().map(|e| e["alias"].as_str().unwrap()).collect();
    for a in ["router", "ext-gw-mode", "extraroute", "extraroute-atomic", "floating-ip-port-forwarding"] {
        assert!(aliases.contains(&a), "{a}");
    }
}

#[tokio::test]
async fn port_forwardings_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let (ext, _) = external(&c, &admin, "172.24.4.0/24", None).await;
        let (net, sub) = private(&c, &tok, "10.0.0.0/24").await;
        let r = post(&c, "/ports", &tok, json!({"port": {"network_id": net}})).await;
        let vm = id(&r, "port");
        let vm_ip = r.body["port"]["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();
        let r = post(&c, "/floatingips", &tok, json!({"floatingip": {"floating_network_id": ext}})).await;
        let fid = id(&r, "floatingip");
        let pfs = format!("/floatingips/{fid}/port_forwardings");
        let pf = |body: Value| json!({ "port_forwarding": body });

        // unreachable without a router: 400
        let r = post(
            &c,
            &pfs,
            &tok,
            pf(json!({"protocol": "tcp", "internal_port_id": vm, "internal_port": 22, "external_port": 2222})),
        )
        .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = post(&c, "/routers", &tok, json!({"router": {"external_gateway_info": {"network_id": ext}}})).await;
        let rid = id(&r, "router");
        let r = put(&c, &format!("/routers/{rid}/add_router_interface"), &tok, json!({"subnet_id": sub})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);

        // bad input: 400
        for body in [
            json!({"protocol": "icmp", "internal_port_id": vm, "internal_port": 22, "external_port": 2222}),
            json!({"protocol": "tcp", "internal_port_id": vm, "internal_port": 0, "external_port": 2222}),
            json!({"protocol": "tcp", "internal_port_id": vm, "internal_port": 22, "external_port": 70000}),
            json!({"protocol": "tcp", "internal_port_id": vm, "internal_port": 22}),
            json!({"protocol": "tcp", "internal_port_id": vm, "internal_port_range": "100:110", "external_port_range": "200:205"}),
            json!({"protocol": "tcp", "internal_port_id": vm, "internal_port": 22, "external_port": 22, "external_port_range": "22:23"}),
            json!({"protocol": "tcp", "internal_port_id": vm, "internal_port": 22, "external_port": 22, "internal_ip_address": "10.0.0.250"}),
        ] {
            let r = post(&c, &pfs, &tok, pf(body.clone())).await;
            assert_eq!(r.status, 400, "{backend}: {body}: {}", r.text);
        }

        let r = post(
            &c,
            &pfs,
            &tok,
            pf(json!({"protocol": "tcp", "internal_port_id": vm, "internal_port": 22, "external_port": 2222, "description": "ssh"})),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let p = r.body["port_forwarding"].clone();
        let pid = p["id"].as_str().unwrap().to_string();
        assert_eq!(p["internal_ip_address"], vm_ip.as_str());
        assert_eq!(p["external_port"], 2222);
        assert_eq!(p["internal_port_range"], "22:22");
        assert_eq!(p["description"], "ssh");
        let r = c.neutron(Method::GET, &format!("/floatingips/{fid}"), &tok, None).await;
        assert_eq!(r.body["floatingip"]["router_id"], rid.as_str(), "{backend}");
        assert_eq!(r.body["floatingip"]["port_forwardings"][0]["id"], pid.as_str());
        // a range; then collisions: 400
        let r = post(
            &c,
            &pfs,
            &tok,
            pf(json!({"protocol": "tcp", "internal_port_id": vm, "internal_port_range": "8000:8009", "external_port_range": "9000:9009"})),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["port_forwarding"]["external_port"], Value::Null);
        for body in [
            json!({"protocol": "tcp", "internal_port_id": vm, "internal_port": 23, "external_port": 2222}),
            json!({"protocol": "tcp", "internal_port_id": vm, "internal_port": 8005, "external_port": 3000}),
            json!({"protocol": "tcp", "internal_port_id": vm, "internal_port": 80, "external_port_range": "9009:9010"}),
        ] {
            let r = post(&c, &pfs, &tok, pf(body.clone())).await;
            assert_eq!(r.status, 400, "{backend}: {body}: {}", r.text);
        }
        // the same ports over udp are fine
        let r = post(
            &c,
            &pfs,
            &tok,
            pf(json!({"protocol": "udp", "internal_port_id": vm, "internal_port": 22, "external_port": 2222})),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let udp = id(&r, "port_forwarding");
        let r = c.neutron(Method::GET, &pfs, &tok, None).await;
        assert_eq!(r.body["port_forwardings"].as_array().unwrap().len(), 3, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &format!("{pfs}?protocol=udp"), &tok, None).await;
        assert_eq!(r.body["port_forwardings"].as_array().unwrap().len(), 1, "{backend}: {}", r.text);

        // update
        let r = put(&c, &format!("{pfs}/{pid}"), &tok, pf(json!({"external_port": 2200}))).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["port_forwarding"]["external_port"], 2200);
        let r = put(&c, &format!("{pfs}/{pid}"), &tok, pf(json!({"external_port": 9001}))).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);

        // the floating IP is taken by its forwardings
        let r = put(&c, &format!("/floatingips/{fid}"), &tok, json!({"floatingip": {"port_id": vm}})).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "FipInUseByPortForwarding");
        let r = c.neutron(Method::DELETE, &format!("/floatingips/{fid}"), &tok, None).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        // a port with a floating IP cannot be a forwarding target
        let r = post(&c, "/ports", &tok, json!({"port": {"network_id": net}})).await;
        let vm2 = id(&r, "port");
        let r =
            post(&c, "/floatingips", &tok, json!({"floatingip": {"floating_network_id": ext, "port_id": vm2}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let r = post(
            &c,
            &pfs,
            &tok,
            pf(json!({"protocol": "tcp", "internal_port_id": vm2, "internal_port": 22, "external_port": 2223})),
        )
        .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);

        // delete one; deleting the port takes the rest, and the floating IP's router
        let r = c.neutron(Method::DELETE, &format!("{pfs}/{udp}"), &tok, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &format!("{pfs}/{udp}"), &tok, None).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        let r = c.neutron(Method::DELETE, &format!("/ports/{vm}"), &tok, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &format!("/floatingips/{fid}"), &tok, None).await;
        assert_eq!(r.body["floatingip"]["port_forwardings"], json!([]), "{backend}");
        assert_eq!(r.body["floatingip"]["router_id"], Value::Null, "{backend}");
        let r = c.neutron(Method::DELETE, &format!("/floatingips/{fid}"), &tok, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
    }
}
