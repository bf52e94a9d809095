//! What the openstack CLI of a new user met, end to end on every database:
//! `quota set` with `check_limit`/`force`, subnets from a CIDR with host
//! bits set, attribute policies checked only for values other than the
//! default, floating IPs' `port_details`, routers' `ha`, address scopes,
//! and router gateways on an external network without subnets.

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

async fn put(c: &Cloud, path: &str, tok: &str, body: Value) -> Resp {
    c.neutron(Method::PUT, path, tok, Some(body)).await
}

async fn has_extension(c: &Cloud, tok: &str, alias: &str) -> bool {
    let r = c.neutron(Method::GET, "/extensions", tok, None).await;
    r.body["extensions"].as_array().unwrap().iter().any(|e| e["alias"] == alias)
}

#[tokio::test]
async fn quota_set_with_check_limit_refuses_a_limit_below_usage() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        assert!(has_extension(&c, &tok, "quota-check-limit").await);
        for n in ["a", "b"] {
            let r = post(&c, "/networks", &tok, json!({"network": {"name": n}})).await;
            assert_eq!(r.status, 201, "{backend}: {}", r.text);
        }
        let path = format!("/quotas/{project}");
        // what `openstack quota set --networks 1 P` sends: check_limit, refused below usage
        let r = put(&c, &path, &admin, json!({"quota": {"network": 1, "check_limit": true}})).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        assert!(r.text.contains("already used 2"), "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &path, &admin, None).await;
        assert_eq!(r.body["quota"]["network"], 100, "{backend}: the refused limit was not stored");
        // at or above usage: accepted, and check_limit is not a quota
        let r = put(&c, &path, &admin, json!({"quota": {"network": 2, "port": 7, "check_limit": true}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["quota"]["network"], 2);
        assert_eq!(r.body["quota"]["port"], 7);
        assert!(r.body["quota"].get("check_limit").is_none());
        // `--force` and a plain body: no check
        let r = put(&c, &path, &admin, json!({"quota": {"network": 1, "force": true}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["quota"]["network"], 1);
        let r = put(&c, &path, &admin, json!({"quota": {"network": 0, "check_limit": false}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let r = put(&c, &path, &admin, json!({"quota": {"network": -1, "check_limit": true}})).await;
        assert_eq!(r.status, 200, "{backend}: unlimited is never below usage: {}", r.text);
        let r = put(&c, &path, &admin, json!({"quota": {"network": 5, "check_limit": "maybe"}})).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
    }
}

#[tokio::test]
async fn subnet_cidr_with_host_bits_is_stored_as_its_network() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let r = post(&c, "/networks", &tok, json!({"network": {"name": "n"}})).await;
        let net = id(&r, "network");
        let r = post(
            &c,
            "/subnets",
            &tok,
            json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.99.99.0/16"}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["subnet"]["cidr"], "10.99.0.0/16");
        assert_eq!(r.body["subnet"]["gateway_ip"], "10.99.0.1");
        assert_eq!(r.body["subnet"]["allocation_pools"], json!([{"start": "10.99.0.2", "end": "10.99.255.254"}]));
        // what Neutron's validator refuses: no prefix length, a non-canonical form
        for bad in ["10.98.0.0", "10.98.0.0/016", "10.98/16", "10.98.0.0/33"] {
            let r =
                post(&c, "/subnets", &tok, json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": bad}})).await;
            assert_eq!(r.status, 400, "{backend}: {bad}: {}", r.text);
        }
        let r = post(
            &c,
            "/subnets",
            &tok,
            json!({"subnet": {"network_id": net, "ip_version": 6, "cidr": "2001:db8::1/64"}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["subnet"]["cidr"], "2001:db8::/64");
    }
}

#[tokio::test]
async fn attribute_policies_apply_only_to_values_other_than_the_default() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        // a member may say what the defaults are
        let r = post(
            &c,
            "/subnetpools",
            &tok,
            json!({"subnetpool": {"name": "p", "prefixes": ["10.50.0.0/16"], "shared": false, "is_default": false}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let pool = id(&r, "subnetpool");
        let r = post(
            &c,
            "/networks",
            &tok,
            json!({"network": {"name": "n", "shared": "false", "router:external": false, "is_default": false, "port_security_enabled": true}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let net = id(&r, "network");
        let r = post(&c, "/ports", &tok, json!({"port": {"network_id": net, "binding:vnic_type": "normal"}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        // but not other values
        for (path, body) in [
            ("/subnetpools", json!({"subnetpool": {"name": "q", "prefixes": ["10.51.0.0/16"], "shared": true}})),
            ("/subnetpools", json!({"subnetpool": {"name": "q", "prefixes": ["10.51.0.0/16"], "is_default": true}})),
            ("/networks", json!({"network": {"shared": true}})),
            ("/networks", json!({"network": {"router:external": "true"}})),
            ("/networks", json!({"network": {"provider:network_type": "vxlan"}})),
        ] {
            let r = post(&c, path, &tok, body.clone()).await;
            assert_eq!(r.status, 403, "{backend}: {body}: {}", r.text);
        }
        // an update names what it changes: its attribute rules always apply (as Neutron)
        let r = put(&c, &format!("/networks/{net}"), &tok, json!({"network": {"shared": false}})).await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        let r = put(&c, &format!("/subnetpools/{pool}"), &tok, json!({"subnetpool": {"name": "p2"}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
    }
}

/// An external network with a subnet, a member's network with a subnet, and
/// a router of the member joining them: (external network, private network).
async fn topology(c: &Cloud, admin: &str, tok: &str) -> (String, String) {
    let r = post(c, "/networks", admin, json!({"network": {"name": "ext", "router:external": true}})).await;
    let ext = id(&r, "network");
    let r =
        post(c, "/subnets", admin, json!({"subnet": {"network_id": ext, "ip_version": 4, "cidr": "172.24.4.0/24"}}))
            .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = post(c, "/networks", tok, json!({"network": {"name": "priv"}})).await;
    let net = id(&r, "network");
    let r =
        post(c, "/subnets", tok, json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/24"}})).await;
    let sub = id(&r, "subnet");
    let r =
        post(c, "/routers", tok, json!({"router": {"name": "r", "external_gateway_info": {"network_id": ext}}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let router = id(&r, "router");
    let r = put(c, &format!("/routers/{router}/add_router_interface"), tok, json!({"subnet_id": sub})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    (ext, net)
}

#[tokio::test]
async fn floating_ips_show_their_ports_details() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        assert!(has_extension(&c, &tok, "fip-port-details").await);
        let (ext, net) = topology(&c, &admin, &tok).await;
        let r = post(
            &c,
            "/ports",
            &tok,
            json!({"port": {"network_id": net, "name": "vm-port", "device_id": "dev-1", "device_owner": "compute:nova"}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let port = r.body["port"].clone();
        let r = post(&c, "/floatingips", &tok, json!({"floatingip": {"floating_network_id": ext}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["floatingip"]["port_details"], Value::Null);
        let fip = id(&r, "floatingip");
        let r = put(&c, &format!("/floatingips/{fip}"), &tok, json!({"floatingip": {"port_id": port["id"]}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let want = json!({
            "name": "vm-port",
            "network_id": net,
            "mac_address": port["mac_address"],
            "admin_state_up": true,
            "status": port["status"],
            "device_id": "dev-1",
            "device_owner": "compute:nova",
        });
        assert_eq!(r.body["floatingip"]["port_details"], want, "{backend}");
        let r = c.neutron(Method::GET, &format!("/floatingips/{fip}"), &tok, None).await;
        assert_eq!(r.body["floatingip"]["port_details"], want, "{backend}");
        let r = c.neutron(Method::GET, "/floatingips?fields=id&fields=port_details", &tok, None).await;
        assert_eq!(r.body["floatingips"][0]["port_details"]["device_id"], "dev-1", "{backend}: {}", r.text);
        let r = put(&c, &format!("/floatingips/{fip}"), &tok, json!({"floatingip": {"port_id": null}})).await;
        assert_eq!(r.body["floatingip"]["port_details"], Value::Null, "{backend}: {}", r.text);
    }
}

#[tokio::test]
async fn routers_show_ha_to_admins_and_gateways_need_no_subnet() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        assert!(has_extension(&c, &tok, "l3-ha").await);
        // an external network with no subnet yet: the gateway port has no address
        let r = post(&c, "/networks", &admin, json!({"network": {"name": "bare", "router:external": true}})).await;
        let bare = id(&r, "network");
        let r =
            post(&c, "/routers", &tok, json!({"router": {"name": "r", "external_gateway_info": {"network_id": bare}}}))
                .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let router = id(&r, "router");
        assert_eq!(r.body["router"]["external_gateway_info"]["network_id"], bare.as_str());
        assert_eq!(r.body["router"]["external_gateway_info"]["external_fixed_ips"], json!([]));
        assert!(r.body["router"].get("ha").is_none(), "{backend}: members do not see ha");
        let r = c.neutron(Method::GET, &format!("/ports?device_id={router}"), &admin, None).await;
        assert_eq!(r.body["ports"][0]["device_owner"], "network:router_gateway");
        assert_eq!(r.body["ports"][0]["fixed_ips"], json!([]));
        // admins see ha: false
        let r = c.neutron(Method::GET, &format!("/routers/{router}"), &admin, None).await;
        assert_eq!(r.body["router"]["ha"], false, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, "/routers", &admin, None).await;
        assert!(r.body["routers"].as_array().unwrap().iter().all(|r| r["ha"] == false));
        let r = c.neutron(Method::GET, &format!("/routers/{router}"), &tok, None).await;
        assert!(r.body["router"].get("ha").is_none());
        // ha is for admins (any value), and HA routers are not made here
        let r = post(&c, "/routers", &tok, json!({"router": {"name": "h", "ha": false}})).await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        let r = post(&c, "/routers", &admin, json!({"router": {"name": "h", "ha": true}})).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = post(&c, "/routers", &admin, json!({"router": {"name": "h", "ha": false}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["router"]["ha"], false);
        // the network gets a subnet later: a new gateway gets an address from it
        let r = post(
            &c,
            "/subnets",
            &admin,
            json!({"subnet": {"network_id": bare, "ip_version": 4, "cidr": "198.51.100.0/24"}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let r = put(
            &c,
            &format!("/routers/{router}"),
            &tok,
            json!({"router": {"external_gateway_info": {"network_id": bare}}}),
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let r = put(&c, &format!("/routers/{router}"), &tok, json!({"router": {"external_gateway_info": null}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let r = put(
            &c,
            &format!("/routers/{router}"),
            &tok,
            json!({"router": {"external_gateway_info": {"network_id": bare}}}),
        )
        .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let ips = r.body["router"]["external_gateway_info"]["external_fixed_ips"].as_array().unwrap().clone();
        assert_eq!(ips.len(), 1, "{backend}: {}", r.text);
        assert!(ips[0]["ip_address"].as_str().unwrap().starts_with("198.51.100."));
    }
}

#[tokio::test]
async fn address_scopes_hold_subnet_pools_of_their_version_without_overlaps() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let (_, _, other) = c.user_with_role(&admin, "member").await;
        assert!(has_extension(&c, &tok, "address-scope").await);

        let r = post(&c, "/address-scopes", &tok, json!({"address_scope": {"name": "s4", "ip_version": 4}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let s4 = r.body["address_scope"].clone();
        assert_eq!(s4["shared"], false);
        assert_eq!(s4["ip_version"], 4);
        assert_eq!(s4["project_id"], project.as_str());
        let scope = s4["id"].as_str().unwrap().to_string();
        // required ip_version, known values, members may not share
        for body in [json!({"name": "x"}), json!({"ip_version": 5}), json!({"ip_version": 4, "bogus": 1})] {
            let r = post(&c, "/address-scopes", &tok, json!({ "address_scope": body })).await;
            assert_eq!(r.status, 400, "{backend}: {}", r.text);
        }
        let r = post(&c, "/address-scopes", &tok, json!({"address_scope": {"ip_version": 4, "shared": true}})).await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        let r = post(&c, "/address-scopes", &tok, json!({"address_scope": {"ip_version": 6, "shared": false}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);

        // show, list with filters, update; others do not see it
        let r = c.neutron(Method::GET, &format!("/address-scopes/{scope}"), &tok, None).await;
        assert_eq!(r.body["address_scope"], s4);
        let r = c.neutron(Method::GET, "/address-scopes?ip_version=4", &tok, None).await;
        assert_eq!(r.body["address_scopes"].as_array().unwrap().len(), 1, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &format!("/address-scopes/{scope}"), &other, None).await;
        assert_eq!(r.status, 404);
        assert_eq!(kind(&r), "AddressScopeNotFound");
        let r = put(&c, &format!("/address-scopes/{scope}"), &tok, json!({"address_scope": {"name": "renamed"}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["address_scope"]["name"], "renamed");
        let r = put(&c, &format!("/address-scopes/{scope}"), &tok, json!({"address_scope": {"ip_version": 6}})).await;
        assert_eq!(r.status, 400);

        // subnet pools join it: same version, no overlaps
        let r = post(
            &c,
            "/subnetpools",
            &tok,
            json!({"subnetpool": {"name": "p1", "prefixes": ["10.60.0.0/16"], "address_scope_id": scope, "default_prefixlen": 24}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["subnetpool"]["address_scope_id"], scope.as_str());
        let p1 = id(&r, "subnetpool");
        let r = post(
            &c,
            "/subnetpools",
            &tok,
            json!({"subnetpool": {"name": "p6", "prefixes": ["2001:db8::/48"], "address_scope_id": scope}}),
        )
        .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "IllegalSubnetPoolIpVersionAssociationToAddressScope");
        let r = post(
            &c,
            "/subnetpools",
            &tok,
            json!({"subnetpool": {"name": "p2", "prefixes": ["10.60.128.0/17"], "address_scope_id": scope}}),
        )
        .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "AddressScopePrefixConflict");
        let r =
            post(&c, "/subnetpools", &tok, json!({"subnetpool": {"name": "p2", "prefixes": ["10.60.128.0/17"]}})).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let p2 = id(&r, "subnetpool");
        let r = put(&c, &format!("/subnetpools/{p2}"), &tok, json!({"subnetpool": {"address_scope_id": scope}})).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        let missing = "0b9a1c8e-7d6f-4e5a-9b8c-1d2e3f4a5b6c";
        let r =
            put(&c, &format!("/subnetpools/{p2}"), &tok, json!({"subnetpool": {"address_scope_id": missing}})).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);

        // a network with a subnet of the pool is in the scope
        let r = post(&c, "/networks", &tok, json!({"network": {"name": "scoped"}})).await;
        let net = id(&r, "network");
        let r =
            post(&c, "/subnets", &tok, json!({"subnet": {"network_id": net, "ip_version": 4, "subnetpool_id": p1}}))
                .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let sub = id(&r, "subnet");
        let r = c.neutron(Method::GET, &format!("/networks/{net}"), &tok, None).await;
        assert_eq!(r.body["network"]["ipv4_address_scope"], scope.as_str(), "{backend}: {}", r.text);
        assert_eq!(r.body["network"]["ipv6_address_scope"], Value::Null);

        // in use: 409 until its pools go
        let r = c.neutron(Method::DELETE, &format!("/address-scopes/{scope}"), &tok, None).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "AddressScopeInUse");
        assert_eq!(c.neutron(Method::DELETE, &format!("/subnets/{sub}"), &tok, None).await.status, 204);
        assert_eq!(c.neutron(Method::DELETE, &format!("/subnetpools/{p1}"), &tok, None).await.status, 204);
        let r = c.neutron(Method::DELETE, &format!("/address-scopes/{scope}"), &tok, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);

        // a shared scope (admin's): everyone sees it, it cannot be unshared
        let r = post(
            &c,
            "/address-scopes",
            &admin,
            json!({"address_scope": {"name": "pub", "ip_version": 4, "shared": true}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let shared = id(&r, "address_scope");
        let r = c.neutron(Method::GET, &format!("/address-scopes/{shared}"), &other, None).await;
        assert_eq!(r.status, 200);
        let r = put(&c, &format!("/address-scopes/{shared}"), &other, json!({"address_scope": {"name": "mine"}})).await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        let r =
            put(&c, &format!("/address-scopes/{shared}"), &admin, json!({"address_scope": {"shared": false}})).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        assert_eq!(kind(&r), "AddressScopeUpdateError");
        let r = post(
            &c,
            "/subnetpools",
            &other,
            json!({"subnetpool": {"name": "o", "prefixes": ["10.70.0.0/16"], "address_scope_id": shared}}),
        )
        .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);

        // overlapping pools racing into one scope: one gets in
        let calls = (0..4).map(|i| {
            let body = json!({"subnetpool": {"name": format!("race{i}"), "prefixes": ["10.80.0.0/16"], "address_scope_id": shared}});
            let tok = if i % 2 == 0 { tok.clone() } else { other.clone() };
            let c = &c;
            async move { post(c, "/subnetpools", &tok, body).await }
        });
        let results = futures::future::join_all(calls).await;
        let statuses: Vec<u16> = results.iter().map(|r| r.status.as_u16()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{backend}: {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 3, "{backend}: {statuses:?}");
    }
}
