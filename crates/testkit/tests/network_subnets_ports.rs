//! Subnets, subnet pools, ports and IPAM end to end on every database:
//! subnet validation, default gateway and pools, IPv6 SLAAC, subnet pools,
//! port fixed IPs (next free, requested, taken, exhausted), MACs, the
//! `fixed_ips` filter, delete while in use, IP availability, and racing port
//! creates that never hand out an address twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, fresh_urls};

async fn cloud(backend: &'static str, url: &str) -> Cloud {
    let mut c = Cloud::start(backend, url).await;
    c.start_network().await;
    c
}

async fn network(c: &Cloud, tok: &str) -> String {
    let r = c.neutron(Method::POST, "/networks", tok, Some(json!({"network": {"name": "n"}}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["network"]["id"].as_str().unwrap().to_string()
}

fn kind(r: &stratus_testkit::Resp) -> &str {
    r.body["NeutronError"]["type"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn subnets_validate_and_default_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let net = network(&c, &tok).await;

        let r = c
            .neutron(
                Method::POST,
                "/subnets",
                &tok,
                Some(json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24", "name": "s1",
                    "dns_nameservers": ["8.8.8.8", "1.1.1.1"], "host_routes": [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.5"}]}})),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let s = r.body["subnet"].clone();
        assert_eq!(s["project_id"], project.as_str());
        assert_eq!(s["gateway_ip"], "10.0.0.1");
        assert_eq!(s["allocation_pools"], json!([{"start": "10.0.0.2", "end": "10.0.0.254"}]));
        assert_eq!(s["dns_nameservers"], json!(["8.8.8.8", "1.1.1.1"]));
        assert_eq!(s["host_routes"], json!([{"destination": "192.168.0.0/16", "nexthop": "10.0.0.5"}]));
        assert_eq!(s["enable_dhcp"], true);
        assert_eq!(s["ipv6_ra_mode"], Value::Null);
        assert_eq!(s["subnetpool_id"], Value::Null);
        assert_eq!(s["revision_number"], 0);
        let sid = s["id"].as_str().unwrap().to_string();
        let r = c.neutron(Method::GET, &format!("/networks/{net}"), &tok, None).await;
        assert_eq!(r.body["network"]["subnets"], json!([sid]));

        // bad input: 400s
        for (body, k) in [
            (json!({"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/024"}), "HTTPBadRequest"),
            (json!({"network_id": net, "ip_version": 4, "cidr": "nonsense"}), "HTTPBadRequest"),
            (json!({"network_id": net, "ip_version": 6, "cidr": "10.1.0.0/24"}), "InvalidInput"),
            (json!({"network_id": net, "ip_version": 4, "cidr": "10.0.0.128/25"}), "InvalidInput"),
            (
                json!({"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/24", "gateway_ip": "10.2.0.1"}),
                "InvalidInput",
            ),
            (
                json!({"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.20", "end": "10.1.0.10"}]}),
                "InvalidAllocationPool",
            ),
            (
                json!({"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.10", "end": "10.1.1.10"}]}),
                "OutOfBoundsAllocationPool",
            ),
            (
                json!({"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.10", "end": "10.1.0.20"}, {"start": "10.1.0.15", "end": "10.1.0.30"}]}),
                "OverlappingAllocationPools",
            ),
            (
                json!({"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/24", "gateway_ip": "10.1.0.15", "allocation_pools": [{"start": "10.1.0.10", "end": "10.1.0.20"}]}),
                "GatewayConflictWithAllocationPools",
            ),
            (
                json!({"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/24", "ipv6_address_mode": "slaac"}),
                "InvalidInput",
            ),
            (json!({"network_id": net, "ip_version": 5, "cidr": "10.1.0.0/24"}), "HTTPBadRequest"),
            (json!({"network_id": net, "ip_version": 4}), "HTTPBadRequest"),
            (json!({"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/24", "bogus": 1}), "HTTPBadRequest"),
        ] {
            let r = c.neutron(Method::POST, "/subnets", &tok, Some(json!({"subnet": body.clone()}))).await;
            assert_eq!((r.status.as_u16(), kind(&r)), (400, k), "{backend}: {body} -> {}", r.text);
        }
        let r = c
            .neutron(
                Method::POST,
                "/subnets",
                &tok,
                Some(json!({"subnet": {"network_id": uuid::Uuid::new_v4().to_string(), "ip_version": 4, "cidr": "10.9.0.0/24"}})),
            )
            .await;
        assert_eq!(r.status, 404);

        // no gateway, explicit pools, and a gateway in the middle
        let r = c
            .neutron(
                Method::POST,
                "/subnets",
                &tok,
                Some(
                    json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.2.0.0/24", "gateway_ip": null}}),
                ),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["subnet"]["gateway_ip"], Value::Null);
        assert_eq!(r.body["subnet"]["allocation_pools"], json!([{"start": "10.2.0.1", "end": "10.2.0.254"}]));
        let r = c
            .neutron(
                Method::POST,
                "/subnets",
                &tok,
                Some(json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.3.0.0/24", "gateway_ip": "10.3.0.100"}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            r.body["subnet"]["allocation_pools"],
            json!([{"start": "10.3.0.1", "end": "10.3.0.99"}, {"start": "10.3.0.101", "end": "10.3.0.254"}])
        );
        let s3 = r.body["subnet"]["id"].as_str().unwrap().to_string();

        // update: pools, gateway, dns; immutable cidr; revision
        let r = c
            .neutron(
                Method::PUT,
                &format!("/subnets/{s3}"),
                &tok,
                Some(json!({"subnet": {"name": "x", "gateway_ip": "10.3.0.1", "allocation_pools": [{"start": "10.3.0.10", "end": "10.3.0.20"}], "dns_nameservers": ["9.9.9.9"]}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["subnet"]["gateway_ip"], "10.3.0.1");
        assert_eq!(r.body["subnet"]["allocation_pools"], json!([{"start": "10.3.0.10", "end": "10.3.0.20"}]));
        assert_eq!(r.body["subnet"]["dns_nameservers"], json!(["9.9.9.9"]));
        assert_eq!(r.body["subnet"]["revision_number"], 1);
        let r = c
            .neutron(Method::PUT, &format!("/subnets/{s3}"), &tok, Some(json!({"subnet": {"gateway_ip": "10.3.0.15"}})))
            .await;
        assert_eq!((r.status.as_u16(), kind(&r)), (400, "GatewayConflictWithAllocationPools"), "{}", r.text);
        let r = c
            .neutron(Method::PUT, &format!("/subnets/{s3}"), &tok, Some(json!({"subnet": {"cidr": "10.4.0.0/24"}})))
            .await;
        assert_eq!(r.status, 400);

        // list filters and sorting
        let r =
            c.neutron(Method::GET, &format!("/subnets?network_id={net}&sort_key=cidr&sort_dir=desc"), &tok, None).await;
        let cidrs: Vec<&str> =
            r.body["subnets"].as_array().unwrap().iter().map(|s| s["cidr"].as_str().unwrap()).collect();
        assert_eq!(cidrs, vec!["10.3.0.0/24", "10.2.0.0/24", "10.0.0.0/24"], "{backend}");
        let r = c.neutron(Method::GET, "/subnets?cidr=10.2.0.0/24&fields=cidr", &tok, None).await;
        assert_eq!(r.body["subnets"], json!([{"cidr": "10.2.0.0/24"}]));
        let r = c.neutron(Method::GET, "/subnets?bogus=1", &tok, None).await;
        assert_eq!(r.status, 400);

        // another project sees none of them and may not add subnets to the network
        let (_, _, other) = c.user_with_role(&admin, "member").await;
        let r = c.neutron(Method::GET, &format!("/subnets/{sid}"), &other, None).await;
        assert_eq!(r.status, 404);
        let r = c
            .neutron(
                Method::POST,
                "/subnets",
                &other,
                Some(json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.7.0.0/24"}})),
            )
            .await;
        assert_eq!(r.status, 404);

        // bulk, then delete; the network delete takes the rest
        let r = c
            .neutron(
                Method::POST,
                "/subnets",
                &tok,
                Some(json!({"subnets": [
                    {"network_id": net, "ip_version": 4, "cidr": "10.5.0.0/24"},
                    {"network_id": net, "ip_version": 4, "cidr": "10.6.0.0/24"}]})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["subnets"].as_array().unwrap().len(), 2);
        let r = c
            .neutron(
                Method::POST,
                "/subnets",
                &tok,
                Some(json!({"subnets": [
                    {"network_id": net, "ip_version": 4, "cidr": "10.8.0.0/24"},
                    {"network_id": net, "ip_version": 4, "cidr": "10.8.0.0/25"}]})),
            )
            .await;
        assert_eq!(r.status, 400, "overlap inside one bulk request");
        let r = c.neutron(Method::GET, "/subnets?cidr=10.8.0.0/24", &tok, None).await;
        assert_eq!(r.body["subnets"], json!([]), "bulk is all or nothing");
        let r = c.neutron(Method::DELETE, &format!("/subnets/{sid}"), &tok, None).await;
        assert_eq!(r.status, 204);
        let r = c.neutron(Method::GET, &format!("/subnets/{sid}"), &tok, None).await;
        assert_eq!(r.status, 404);
        let r = c.neutron(Method::DELETE, &format!("/networks/{net}"), &tok, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let r = c.neutron(Method::GET, "/subnets", &tok, None).await;
        assert_eq!(r.body["subnets"], json!([]));
    }
}

#[tokio::test]
async fn ipv6_subnets_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let net = network(&c, &tok).await;
        let r = c
            .neutron(
                Method::POST,
                "/subnets",
                &tok,
                Some(json!({"subnet": {"network_id": net, "ip_version": 6, "cidr": "2001:DB8:1::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}})),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let s = r.body["subnet"].clone();
        assert_eq!(s["cidr"], "2001:db8:1::/64");
        assert_eq!(s["gateway_ip"], "2001:db8:1::1");
        assert_eq!(
            s["allocation_pools"],
            json!([{"start": "2001:db8:1::2", "end": "2001:db8:1:0:ffff:ffff:ffff:ffff"}])
        );
        assert_eq!(s["ipv6_address_mode"], "slaac");
        for body in [
            json!({"network_id": net, "ip_version": 6, "cidr": "2001:db8:2::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}),
            json!({"network_id": net, "ip_version": 6, "cidr": "2001:db8:3::/56", "ipv6_address_mode": "slaac"}),
            json!({"network_id": net, "ip_version": 6, "cidr": "2001:db8:4::/64", "ipv6_address_mode": "dhcpv6-bogus"}),
        ] {
            let r = c.neutron(Method::POST, "/subnets", &tok, Some(json!({"subnet": body.clone()}))).await;
            assert_eq!(r.status, 400, "{backend}: {body} -> {}", r.text);
        }
        let r = c
            .neutron(
                Method::POST,
                "/subnets",
                &tok,
                Some(json!({"subnet": {"network_id": net, "ip_version": 6, "cidr": "2001:db8:5::/56", "ipv6_address_mode": "dhcpv6-stateful"}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
}

async fn subnet(c: &Cloud, tok: &str, body: Value) -> Value {
    let r = c.neutron(Method::POST, "/subnets", tok, Some(json!({"subnet": body}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["subnet"].clone()
}

fn ips(port: &Value) -> Vec<String> {
    port["fixed_ips"].as_array().unwrap().iter().map(|f| f["ip_address"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn ports_get_addresses_and_macs_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let net = network(&c, &tok).await;
        let s4 = subnet(
            &c,
            &tok,
            json!({"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.12"}]}),
        )
        .await;
        let s4id = s4["id"].as_str().unwrap().to_string();
        assert_eq!(s4["router:external"], false, "subnet-external-network");
        let r = c.neutron(Method::GET, "/subnets?router:external=true", &tok, None).await;
        assert_eq!(r.body["subnets"], json!([]), "{}", r.text);
        let s6 = subnet(
            &c,
            &tok,
            json!({"network_id": net, "ip_version": 6, "cidr": "2001:db8::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
        )
        .await;
        let s6id = s6["id"].as_str().unwrap().to_string();

        // defaults: next free v4 address, a SLAAC address from the MAC
        let r = c.neutron(Method::POST, "/ports", &tok, Some(json!({"port": {"network_id": net, "name": "p1"}}))).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let p1 = r.body["port"].clone();
        assert_eq!(p1["project_id"], project.as_str());
        assert_eq!(p1["status"], "DOWN");
        assert_eq!(p1["admin_state_up"], true);
        assert_eq!(p1["port_security_enabled"], true);
        assert_eq!(p1["binding:vnic_type"], "normal");
        assert!(p1.get("binding:host_id").is_none(), "members do not see binding details");
        let mac = p1["mac_address"].as_str().unwrap().to_string();
        assert!(mac.starts_with("fa:16:3e:"), "{mac}");
        let m: Vec<u8> = mac.split(':').map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
        let eui = format!(
            "2001:db8::{:x}:{:x}:{:x}:{:x}",
            u16::from_be_bytes([m[0] ^ 2, m[1]]),
            u16::from_be_bytes([m[2], 0xff]),
            u16::from_be_bytes([0xfe, m[3]]),
            u16::from_be_bytes([m[4], m[5]])
        );
        let mut got = ips(&p1);
        got.sort();
        assert_eq!(got, vec!["10.0.0.10".to_string(), eui], "{backend}");
        let p1id = p1["id"].as_str().unwrap().to_string();
        let r = c.neutron(Method::GET, &format!("/ports/{p1id}"), &admin, None).await;
        assert_eq!(r.body["port"]["binding:vif_type"], "unbound");
        assert_eq!(r.body["port"]["binding:host_id"], "");
        assert_eq!(r.body["port"]["binding:profile"], json!({}));

        // a requested address, then the same one again: 409
        let r = c
            .neutron(
                Method::POST,
                "/ports",
                &tok,
                Some(json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.200"}]}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["port"]["fixed_ips"], json!([{"subnet_id": s4id, "ip_address": "10.0.0.200"}]));
        let p2id = r.body["port"]["id"].as_str().unwrap().to_string();
        let r = c
            .neutron(
                Method::POST,
                "/ports",
                &tok,
                Some(json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": s4id, "ip_address": "10.0.0.200"}]}})),
            )
            .await;
        assert_eq!((r.status.as_u16(), kind(&r)), (409, "IpAddressAlreadyAllocated"), "{}", r.text);
        for (fixed, k) in [
            (json!([{"ip_address": "10.9.9.9"}]), "InvalidIpForNetwork"),
            (json!([{"subnet_id": s4id, "ip_address": "10.0.0.255"}]), "InvalidIpForSubnet"),
            (json!([{"subnet_id": uuid::Uuid::new_v4().to_string()}]), "InvalidInput"),
            (json!([{"subnet_id": s6id, "ip_address": "2001:db8::5"}]), "InvalidInput"),
        ] {
            let r = c
                .neutron(
                    Method::POST,
                    "/ports",
                    &tok,
                    Some(json!({"port": {"network_id": net, "fixed_ips": fixed.clone()}})),
                )
                .await;
            assert_eq!((r.status.as_u16(), kind(&r)), (400, k), "{backend}: {fixed} -> {}", r.text);
        }

        // a requested MAC (the network owner may), then again: 409
        let r = c
            .neutron(
                Method::POST,
                "/ports",
                &tok,
                Some(json!({"port": {"network_id": net, "mac_address": "FA:16:3E:AA:BB:CC", "fixed_ips": [{"subnet_id": s4id}]}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["port"]["mac_address"], "fa:16:3e:aa:bb:cc");
        assert_eq!(ips(&r.body["port"]), vec!["10.0.0.11"]);
        let r = c
            .neutron(
                Method::POST,
                "/ports",
                &tok,
                Some(json!({"port": {"network_id": net, "mac_address": "fa:16:3e:aa:bb:cc"}})),
            )
            .await;
        assert_eq!((r.status.as_u16(), kind(&r)), (409, "MacAddressInUse"), "{}", r.text);

        // last pool address, then exhaustion
        let r = c
            .neutron(
                Method::POST,
                "/ports",
                &tok,
                Some(json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": s4id}]}})),
            )
            .await;
        assert_eq!(ips(&r.body["port"]), vec!["10.0.0.12"]);
        let p4id = r.body["port"]["id"].as_str().unwrap().to_string();
        let r = c
            .neutron(
                Method::POST,
                "/ports",
                &tok,
                Some(json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": s4id}]}})),
            )
            .await;
        assert_eq!((r.status.as_u16(), kind(&r)), (409, "IpAddressGenerationFailure"), "{}", r.text);

        // the fixed_ips filter and friends
        let r = c.neutron(Method::GET, "/ports?fixed_ips=ip_address%3D10.0.0.200", &tok, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.body["ports"].as_array().unwrap().iter().map(|p| p["id"].clone()).collect::<Vec<_>>(),
            vec![json!(p2id)]
        );
        let r = c.neutron(Method::GET, &format!("/ports?fixed_ips=subnet_id%3D{s6id}&fields=id"), &tok, None).await;
        assert_eq!(r.body["ports"], json!([{"id": p1id}]), "only p1 has a SLAAC address");
        let r = c.neutron(Method::GET, &format!("/ports?mac_address={mac}"), &tok, None).await;
        assert_eq!(r.body["ports"].as_array().unwrap().len(), 1);
        let r = c.neutron(Method::GET, &format!("/ports?network_id={net}&sort_key=name&limit=2"), &tok, None).await;
        assert_eq!(r.body["ports"].as_array().unwrap().len(), 2);
        assert!(r.body["ports_links"].is_array());
        let r = c.neutron(Method::GET, "/ports?fixed_ips=ip_address_substr%3D0.0.20&fields=id", &tok, None).await;
        assert_eq!(r.body["ports"], json!([{"id": p2id}]), "{}", r.text);
        let r = c.neutron(Method::GET, "/ports?fixed_ips=ip_address_substr%3D%25", &tok, None).await;
        assert_eq!(r.body["ports"], json!([]), "a LIKE wildcard matches nothing: {}", r.text);
        let r = c.neutron(Method::GET, "/ports?fixed_ips=bogus", &tok, None).await;
        assert_eq!(r.status, 400);

        // update fixed_ips: move p4 to a chosen address, freeing .12
        let r = c
            .neutron(
                Method::PUT,
                &format!("/ports/{p4id}"),
                &tok,
                Some(
                    json!({"port": {"name": "moved", "fixed_ips": [{"subnet_id": s4id, "ip_address": "10.0.0.100"}]}}),
                ),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(ips(&r.body["port"]), vec!["10.0.0.100"]);
        assert_eq!(r.body["port"]["revision_number"], 1);
        let r = c
            .neutron(
                Method::POST,
                "/ports",
                &tok,
                Some(json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": s4id}]}})),
            )
            .await;
        assert_eq!(ips(&r.body["port"]), vec!["10.0.0.12"], "{}", r.text);
        // a subnet-only entry keeps the port's address on that subnet
        let r = c
            .neutron(
                Method::PUT,
                &format!("/ports/{p4id}"),
                &tok,
                Some(json!({"port": {"fixed_ips": [{"subnet_id": s4id}]}})),
            )
            .await;
        assert_eq!(ips(&r.body["port"]), vec!["10.0.0.100"]);

        // binding by an admin; members may not bind
        let r = c
            .neutron(Method::PUT, &format!("/ports/{p1id}"), &tok, Some(json!({"port": {"binding:host_id": "h1"}})))
            .await;
        assert_eq!(r.status, 403);
        let r = c
            .neutron(
                Method::PUT,
                &format!("/ports/{p1id}"),
                &admin,
                Some(json!({"port": {"binding:host_id": "h1", "device_id": "vm1", "device_owner": "compute:nova"}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["port"]["binding:vif_type"], "bridge");
        assert_eq!(r.body["port"]["binding:host_id"], "h1");
        let r = c.neutron(Method::GET, "/ports?device_id=vm1&device_owner=compute:nova", &tok, None).await;
        assert_eq!(r.body["ports"].as_array().unwrap().len(), 1);

        // extensions: address pairs, DHCP options, port security off
        let r = c
            .neutron(
                Method::POST,
                "/ports",
                &tok,
                Some(json!({"port": {"network_id": net, "fixed_ips": [], "allowed_address_pairs": [{"ip_address": "10.0.0.50"}],
                    "extra_dhcp_opts": [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}]}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let pm = r.body["port"]["mac_address"].clone();
        assert_eq!(r.body["port"]["allowed_address_pairs"], json!([{"ip_address": "10.0.0.50", "mac_address": pm}]));
        assert_eq!(
            r.body["port"]["extra_dhcp_opts"],
            json!([{"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4}])
        );
        assert_eq!(r.body["port"]["fixed_ips"], json!([]));
        assert_eq!(r.body["port"]["security_groups"].as_array().unwrap().len(), 1, "the project's default group");
        let r = c
            .neutron(
                Method::POST,
                "/ports",
                &tok,
                Some(json!({"port": {"network_id": net, "fixed_ips": [], "port_security_enabled": false}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["port"]["security_groups"], json!([]));

        // subnets and networks in use
        let r = c.neutron(Method::DELETE, &format!("/subnets/{s4id}"), &tok, None).await;
        assert_eq!((r.status.as_u16(), kind(&r)), (409, "SubnetInUse"), "{}", r.text);
        // a SLAAC subnet goes with ports on it (as in Neutron); they lose its addresses
        let r = c.neutron(Method::DELETE, &format!("/subnets/{s6id}"), &tok, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &format!("/ports/{p1id}"), &tok, None).await;
        assert_eq!(ips(&r.body["port"]), vec!["10.0.0.10"], "{backend}");
        let r = c.neutron(Method::DELETE, &format!("/networks/{net}"), &tok, None).await;
        assert_eq!((r.status.as_u16(), kind(&r)), (409, "NetworkInUse"), "{}", r.text);
        // DHCP ports do not keep a subnet in use
        let r = c.neutron(Method::GET, &format!("/ports?network_id={net}&fields=id"), &tok, None).await;
        for p in r.body["ports"].as_array().unwrap() {
            let r = c.neutron(Method::DELETE, &format!("/ports/{}", p["id"].as_str().unwrap()), &tok, None).await;
            assert_eq!(r.status, 204);
        }
        let r = c
            .neutron(
                Method::POST,
                "/ports",
                &admin,
                Some(json!({"port": {"network_id": net, "device_owner": "network:dhcp", "project_id": project}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["port"]["security_groups"], json!([]));
        let r = c.neutron(Method::DELETE, &format!("/subnets/{s4id}"), &tok, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let r = c.neutron(Method::DELETE, &format!("/networks/{net}"), &tok, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let r = c.neutron(Method::GET, "/ports", &admin, None).await;
        assert_eq!(r.body["ports"], json!([]));
    }
}

#[tokio::test]
async fn racing_port_creates_never_share_an_address() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let net = network(&c, &tok).await;
        subnet(
            &c,
            &tok,
            json!({"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.59"}]}),
        )
        .await;
        let calls = (0..200).map(|i| {
            let c = &c;
            let tok = tok.clone();
            let net = net.clone();
            async move {
                c.neutron(
                    Method::POST,
                    "/ports",
                    &tok,
                    Some(json!({"port": {"network_id": net, "name": format!("p{i}")}})),
                )
                .await
            }
        });
        let results = futures::future::join_all(calls).await;
        let created: Vec<&Value> = results.iter().filter(|r| r.status == 201).map(|r| &r.body["port"]).collect();
        let failed = results
            .iter()
            .filter(|r| r.status == 409 && r.body["NeutronError"]["type"] == "IpAddressGenerationFailure")
            .count();
        assert_eq!(
            (created.len(), failed),
            (50, 150),
            "{backend}: {:?}",
            results.iter().filter(|r| r.status != 201).map(|r| r.text.clone()).take(3).collect::<Vec<_>>()
        );
        let mut addrs: Vec<String> = created.iter().flat_map(|p| ips(p)).collect();
        let mut macs: Vec<String> = created.iter().map(|p| p["mac_address"].as_str().unwrap().to_string()).collect();
        addrs.sort();
        addrs.dedup();
        macs.sort();
        macs.dedup();
        assert_eq!((addrs.len(), macs.len()), (50, 50), "{backend}");
        let r = c.neutron(Method::GET, &format!("/ports?network_id={net}"), &tok, None).await;
        assert_eq!(r.body["ports"].as_array().unwrap().len(), 50);
    }
}

/// Concurrent creates are written together (group commit); whatever fails in
/// a combined batch is answered as if each request had been alone.
#[tokio::test]
async fn racing_port_creates_get_their_own_answers_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let net = network(&c, &tok).await;
        let sub = subnet(&c, &tok, json!({"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/16"})).await;
        let sub = sub["id"].as_str().unwrap().to_string();
        let r =
            c.neutron(Method::PUT, &format!("/quotas/{project}"), &admin, Some(json!({"quota": {"port": 30}}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // 8 want the same address, 8 the same MAC, 4 bulks of 3, and 20 plain ones
        // (a quota of 30 for 40 requests asking 48 ports)
        let bodies: Vec<Value> = (0..40)
            .map(|i| match i % 5 {
                0 if i < 40 && i / 5 < 8 => {
                    json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": sub, "ip_address": "10.1.7.7"}]}})
                }
                1 => json!({"port": {"network_id": net, "mac_address": "fa:16:3e:aa:bb:cc"}}),
                2 if i < 20 => json!({"ports": [{"network_id": net}, {"network_id": net}, {"network_id": net}]}),
                _ => json!({"port": {"network_id": net, "name": format!("p{i}")}}),
            })
            .collect();
        let calls = bodies.iter().map(|b| {
            let (c, tok, b) = (&c, tok.clone(), b.clone());
            async move { c.neutron(Method::POST, "/ports", &tok, Some(b)).await }
        });
        let results = futures::future::join_all(calls).await;
        let mut made: Vec<Value> = Vec::new();
        for (b, r) in bodies.iter().zip(&results) {
            match r.status.as_u16() {
                201 if b.get("ports").is_some() => made.extend(r.body["ports"].as_array().unwrap().iter().cloned()),
                201 => made.push(r.body["port"].clone()),
                409 => {
                    let kind = r.body["NeutronError"]["type"].as_str().unwrap_or_default().to_string();
                    let expected: &[&str] = if b.to_string().contains("10.1.7.7") {
                        &["IpAddressAlreadyAllocated", "OverQuota"]
                    } else if b.to_string().contains("fa:16:3e:aa:bb:cc") {
                        &["MacAddressInUse", "OverQuota"]
                    } else {
                        &["OverQuota"]
                    };
                    assert!(expected.contains(&kind.as_str()), "{backend}: {b} -> {}", r.text);
                }
                s => panic!("{backend}: {b} -> {s} {}", r.text),
            }
        }
        let with_ip = made.iter().filter(|p| ips(p) == ["10.1.7.7"]).count();
        let with_mac = made.iter().filter(|p| p["mac_address"] == "fa:16:3e:aa:bb:cc").count();
        assert!(with_ip <= 1 && with_mac <= 1, "{backend}: {with_ip} {with_mac}");
        // the quota is never passed, and met but for less than one bulk of 3
        // (more than 30 ports were asked for)
        let n = made.len();
        assert!((28..=30).contains(&n), "{backend}: {n}: {:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
        let mut addrs: Vec<String> = made.iter().flat_map(ips).collect();
        let mut macs: Vec<String> = made.iter().map(|p| p["mac_address"].as_str().unwrap().to_string()).collect();
        addrs.sort();
        addrs.dedup();
        macs.sort();
        macs.dedup();
        assert_eq!((addrs.len(), macs.len()), (n, n), "{backend}");
        // what was answered is what is stored
        let r = c.neutron(Method::GET, &format!("/ports?network_id={net}"), &tok, None).await;
        let stored = r.body["ports"].as_array().unwrap();
        assert_eq!(stored.len(), n, "{backend}");
        for p in &made {
            let s = stored.iter().find(|s| s["id"] == p["id"]).expect("an answered port is stored");
            assert_eq!(s["fixed_ips"], p["fixed_ips"], "{backend}");
            assert_eq!(s["mac_address"], p["mac_address"], "{backend}");
            assert_eq!(s["security_groups"], p["security_groups"], "{backend}");
        }
    }
}

#[tokio::test]
async fn subnet_pools_carve_subnets_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let net = network(&c, &tok).await;
        let r = c
            .neutron(
                Method::POST,
                "/subnetpools",
                &tok,
                Some(json!({"subnetpool": {"name": "sp", "prefixes": ["10.10.0.0/16"], "default_prefixlen": 24, "min_prefixlen": 20, "max_prefixlen": 28}})),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let sp = r.body["subnetpool"].clone();
        assert_eq!(sp["ip_version"], 4);
        assert_eq!(sp["prefixes"], json!(["10.10.0.0/16"]));
        assert_eq!(sp["shared"], false);
        assert_eq!(sp["is_default"], false);
        assert_eq!(sp["address_scope_id"], Value::Null);
        let spid = sp["id"].as_str().unwrap().to_string();
        for body in [
            json!({"prefixes": ["10.0.0.0/8", "2001:db8::/32"]}),
            json!({"prefixes": ["10.0.0.0/8"], "min_prefixlen": 24, "default_prefixlen": 16}),
            json!({"prefixes": "nope"}),
            json!({"name": "no prefixes"}),
        ] {
            let r = c.neutron(Method::POST, "/subnetpools", &tok, Some(json!({"subnetpool": body.clone()}))).await;
            assert_eq!(r.status, 400, "{backend}: {body} -> {}", r.text);
        }
        let r = c
            .neutron(
                Method::POST,
                "/subnetpools",
                &tok,
                Some(json!({"subnetpool": {"prefixes": ["10.0.0.0/8"], "shared": true}})),
            )
            .await;
        assert_eq!(r.status, 403);

        // the default length, a requested length, a requested CIDR
        let s1 = subnet(&c, &tok, json!({"network_id": net, "ip_version": 4, "subnetpool_id": spid})).await;
        assert_eq!(s1["cidr"], "10.10.0.0/24");
        assert_eq!(s1["subnetpool_id"], spid.as_str());
        assert_eq!(s1["gateway_ip"], "10.10.0.1");
        let s2 = subnet(&c, &tok, json!({"network_id": net, "subnetpool_id": spid, "prefixlen": 26})).await;
        assert_eq!(s2["cidr"], "10.10.1.0/26");
        let s3 = subnet(
            &c,
            &tok,
            json!({"network_id": net, "ip_version": 4, "subnetpool_id": spid, "cidr": "10.10.8.0/24"}),
        )
        .await;
        assert_eq!(s3["cidr"], "10.10.8.0/24");
        for body in [
            json!({"network_id": net, "ip_version": 4, "subnetpool_id": spid, "prefixlen": 30}),
            json!({"network_id": net, "ip_version": 4, "subnetpool_id": spid, "cidr": "10.20.0.0/24"}),
            json!({"network_id": net, "ip_version": 6, "subnetpool_id": spid}),
        ] {
            let r = c.neutron(Method::POST, "/subnets", &tok, Some(json!({"subnet": body.clone()}))).await;
            assert_eq!(r.status, 400, "{backend}: {body} -> {}", r.text);
        }
        let r = c.neutron(Method::DELETE, &format!("/subnetpools/{spid}"), &tok, None).await;
        assert_eq!((r.status.as_u16(), kind(&r)), (409, "SubnetPoolInUse"));

        // prefixes may grow, not shrink
        let r = c
            .neutron(
                Method::PUT,
                &format!("/subnetpools/{spid}"),
                &tok,
                Some(json!({"subnetpool": {"prefixes": ["10.10.0.0/16", "10.30.0.0/16"], "name": "sp2"}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["subnetpool"]["prefixes"], json!(["10.10.0.0/16", "10.30.0.0/16"]));
        assert_eq!(r.body["subnetpool"]["revision_number"], 1);
        let r = c
            .neutron(
                Method::PUT,
                &format!("/subnetpools/{spid}"),
                &tok,
                Some(json!({"subnetpool": {"prefixes": ["10.30.0.0/16"]}})),
            )
            .await;
        assert_eq!(r.status, 400);

        // a default pool for IPv6 (admin), used by use_default_subnetpool
        let r = c
            .neutron(
                Method::POST,
                "/subnetpools",
                &admin,
                Some(json!({"subnetpool": {"prefixes": ["2001:db8::/48"], "is_default": true, "shared": true}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["subnetpool"]["default_prefixlen"], 64);
        let s6 = subnet(&c, &tok, json!({"network_id": net, "ip_version": 6, "use_default_subnetpool": true})).await;
        assert_eq!(s6["cidr"], "2001:db8::/64");
        let r = c.neutron(Method::GET, "/subnetpools?ip_version=6", &tok, None).await;
        assert_eq!(r.body["subnetpools"].as_array().unwrap().len(), 1, "shared pools are visible");

        // deleting the subnets frees the pool
        for s in [&s1, &s2, &s3] {
            let r = c.neutron(Method::DELETE, &format!("/subnets/{}", s["id"].as_str().unwrap()), &tok, None).await;
            assert_eq!(r.status, 204);
        }
        let r = c.neutron(Method::DELETE, &format!("/subnetpools/{spid}"), &tok, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
}

#[tokio::test]
async fn ip_availability_counts_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let net = network(&c, &tok).await;
        let s =
            subnet(&c, &tok, json!({"network_id": net, "ip_version": 4, "cidr": "192.168.1.0/28", "name": "small"}))
                .await;
        for _ in 0..3 {
            let r = c.neutron(Method::POST, "/ports", &tok, Some(json!({"port": {"network_id": net}}))).await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
        let r = c.neutron(Method::GET, &format!("/network-ip-availabilities/{net}"), &admin, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let a = &r.body["network_ip_availability"];
        assert_eq!(a["network_id"], net.as_str());
        assert_eq!(a["total_ips"], 13, "a /28 without network, broadcast and gateway");
        assert_eq!(a["used_ips"], 3);
        assert_eq!(
            a["subnet_ip_availability"],
            json!([{"subnet_id": s["id"], "subnet_name": "small", "cidr": "192.168.1.0/28", "ip_version": 4, "total_ips": 13, "used_ips": 3}])
        );
        let r = c.neutron(Method::GET, &format!("/network-ip-availabilities?network_id={net}"), &admin, None).await;
        assert_eq!(r.body["network_ip_availabilities"].as_array().unwrap().len(), 1, "{}", r.text);
        let r = c.neutron(Method::GET, "/network-ip-availabilities", &tok, None).await;
        assert_eq!(r.status, 403);
    }
}

#[tokio::test]
async fn racing_subnet_creates_carve_distinct_prefixes() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let (_, _, tok2) = c.user_with_role(&admin, "member").await;
        let r = c
            .neutron(
                Method::POST,
                "/subnetpools",
                &admin,
                Some(json!({"subnetpool": {"prefixes": ["10.50.0.0/16"], "default_prefixlen": 24, "shared": true}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let spid = r.body["subnetpool"]["id"].as_str().unwrap().to_string();
        let (n1, n2) = (network(&c, &tok).await, network(&c, &tok2).await);
        let calls = (0..20).map(|i| {
            let c = &c;
            let (t, n) = if i % 2 == 0 { (tok.clone(), n1.clone()) } else { (tok2.clone(), n2.clone()) };
            let spid = spid.clone();
            async move {
                c.neutron(
                    Method::POST,
                    "/subnets",
                    &t,
                    Some(json!({"subnet": {"network_id": n, "subnetpool_id": spid}})),
                )
                .await
            }
        });
        let results = futures::future::join_all(calls).await;
        let mut cidrs: Vec<String> = results
            .iter()
            .map(|r| {
                assert_eq!(r.status, 201, "{backend}: {}", r.text);
                r.body["subnet"]["cidr"].as_str().unwrap().to_string()
            })
            .collect();
        cidrs.sort();
        cidrs.dedup();
        assert_eq!(cidrs.len(), 20, "{backend}");
    }
}
