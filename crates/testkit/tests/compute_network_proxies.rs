//! Nova's network proxies over a cloud with compute networking: floating IP
//! pools and floating IPs (allocate, list, show, release; addFloatingIp and
//! removeFloatingIp move the network service's association), security
//! groups and rules (Nova's shapes and refusals, the network service's
//! groups changed), a server's security groups (the actions move its ports'
//! groups; show and detail list them), os-networks and os-tenant-networks,
//! and the 2.36 / 2.44 ends of the proxies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, Resp, fresh_urls};

const OLD: &str = "2.35";
const MV: &str = "2.96";

struct World {
    c: Cloud,
    admin: String,
    tok: String,
    project: String,
    image: String,
    ext: String,
    net: String,
}

async fn neutron_ok(c: &Cloud, method: Method, path: &str, tok: &str, body: Option<Value>) -> Value {
    let r = c.neutron(method, path, tok, body).await;
    assert!(r.status.is_success(), "{path}: {} {}", r.status, r.text);
    r.body
}

/// A member's project with a network, a subnet and a router to `public` (an
/// external network with floating IPs), as Tempest's isolated networks have it.
async fn world() -> World {
    let (backend, url) = fresh_urls().await.remove(0);
    let c = Cloud::start_compute(backend, &url, &["host-a"], |cfg| {
        cfg.compute.networking = true;
        cfg.compute.quota_instances = -1;
    })
    .await;
    let admin = c.admin_token().await;
    let image = c.boot_image(&admin).await;
    let (project, _, tok) = c.user_with_role(&admin, "member").await;
    let ext = neutron_ok(
        &c,
        Method::POST,
        "/networks",
        &admin,
        Some(json!({"network": {"name": "public", "router:external": true}})),
    )
    .await["network"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"subnet": {"network_id": ext, "cidr": "203.0.113.0/24", "ip_version": 4, "enable_dhcp": false}});
    neutron_ok(&c, Method::POST, "/subnets", &admin, Some(body)).await;
    let net =
        neutron_ok(&c, Method::POST, "/networks", &tok, Some(json!({"network": {"name": "private"}}))).await["network"]
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
    let body = json!({"subnet": {"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4}});
    let subnet =
        neutron_ok(&c, Method::POST, "/subnets", &tok, Some(body)).await["subnet"]["id"].as_str().unwrap().to_string();
    let body = json!({"router": {"name": "r", "external_gateway_info": {"network_id": ext}}});
    let router =
        neutron_ok(&c, Method::POST, "/routers", &tok, Some(body)).await["router"]["id"].as_str().unwrap().to_string();
    let path = format!("/routers/{router}/add_router_interface");
    neutron_ok(&c, Method::PUT, &path, &tok, Some(json!({"subnet_id": subnet}))).await;
    World { c, admin, tok, project, image, ext, net }
}

impl World {
    async fn nova(&self, method: Method, path: &str, mv: &str, body: Option<Value>) -> Resp {
        self.c.nova(method, path, &self.tok, mv, body).await
    }

    async fn boot(&self, name: &str) -> String {
        let body = json!({"server": {"name": name, "imageRef": self.image, "flavorRef": "1",
            "networks": [{"uuid": self.net}]}});
        let r = self.nova(Method::POST, "/servers", MV, Some(body)).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        let s = self.c.wait_server(&self.tok, &id, 30, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
        id
    }

    async fn action(&self, server: &str, mv: &str, body: Value) -> Resp {
        self.nova(Method::POST, &format!("/servers/{server}/action"), mv, Some(body)).await
    }

    async fn port_of(&self, server: &str) -> Value {
        let ports = neutron_ok(&self.c, Method::GET, &format!("/ports?device_id={server}"), &self.admin, None).await;
        assert_eq!(ports["ports"].as_array().unwrap().len(), 1, "{ports}");
        ports["ports"][0].clone()
    }

    async fn fip_in_neutron(&self, id: &str) -> Option<Value> {
        let r = self.c.neutron(Method::GET, &format!("/floatingips/{id}"), &self.admin, None).await;
        if r.status == 404 {
            return None;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        Some(r.body["floatingip"].clone())
    }
}

fn message(r: &Resp) -> String {
    let fault = r.body.as_object().and_then(|o| o.values().next()).cloned().unwrap_or(Value::Null);
    fault["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn floating_ips_through_the_compute_api() {
    let w = world().await;

    // the pools are the external networks
    let r = w.nova(Method::GET, "/os-floating-ip-pools", OLD, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"floating_ip_pools": [{"name": "public"}]}));

    // allocate from the pool by name, and by id
    let r = w.nova(Method::POST, "/os-floating-ips", OLD, Some(json!({"pool": "public"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let a = r.body["floating_ip"].clone();
    let keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["fixed_ip", "id", "instance_id", "ip", "pool"], "{a}");
    assert_eq!(a["pool"], "public");
    assert!(a["fixed_ip"].is_null() && a["instance_id"].is_null(), "{a}");
    assert!(a["ip"].as_str().unwrap().starts_with("203.0.113."), "{a}");
    let a_id = a["id"].as_str().unwrap().to_string();
    let in_neutron = w.fip_in_neutron(&a_id).await.expect("made in the network service");
    assert_eq!(in_neutron["floating_ip_address"], a["ip"]);
    assert_eq!(in_neutron["project_id"], w.project.as_str());
    let r = w.nova(Method::POST, "/os-floating-ips", OLD, Some(json!({"pool": w.ext}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = r.body["floating_ip"].clone();
    let b_id = b["id"].as_str().unwrap().to_string();

    // list and show agree
    let r = w.nova(Method::GET, "/os-floating-ips", OLD, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let list = r.body["floating_ips"].as_array().unwrap().clone();
    assert!(list.contains(&a) && list.contains(&b), "{list:?}");
    let r = w.nova(Method::GET, &format!("/os-floating-ips/{a_id}"), OLD, None).await;
    assert_eq!(r.body["floating_ip"], a, "{}", r.text);

    // refusals
    let r = w.nova(Method::POST, "/os-floating-ips", OLD, Some(json!({"pool": "non_exist_pool"}))).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(message(&r), "Floating IP pool not found.");
    let r = w.nova(Method::POST, "/os-floating-ips", OLD, Some(json!({}))).await;
    assert_eq!(r.status, 404, "no pool named: Nova's default pool 'nova': {}", r.text);
    let missing = uuid::Uuid::new_v4().to_string();
    let r = w.nova(Method::GET, &format!("/os-floating-ips/{missing}"), OLD, None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(message(&r), format!("Floating IP not found for ID {missing}"));
    let r = w.nova(Method::DELETE, &format!("/os-floating-ips/{missing}"), OLD, None).await;
    assert_eq!(r.status, 404, "{}", r.text);

    // associate with a server: the network service's floating IP gets its port
    let s1 = w.boot("s1").await;
    let port1 = w.port_of(&s1).await;
    let fixed1 = port1["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();
    let r = w.action(&s1, OLD, json!({"addFloatingIp": {"address": a["ip"]}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let n = w.fip_in_neutron(&a_id).await.unwrap();
    assert_eq!(n["port_id"], port1["id"], "{n}");
    assert_eq!(n["fixed_ip_address"], fixed1.as_str());
    let r = w.nova(Method::GET, &format!("/os-floating-ips/{a_id}"), OLD, None).await;
    assert_eq!(r.body["floating_ip"]["instance_id"], s1.as_str(), "{}", r.text);
    assert_eq!(r.body["floating_ip"]["fixed_ip"], fixed1.as_str(), "{}", r.text);
    // the server shows it after its fixed IP, in show, detail and /ips
    let fip = a["ip"].as_str().unwrap();
    let r = w.nova(Method::GET, &format!("/servers/{s1}"), MV, None).await;
    let private = r.body["server"]["addresses"]["private"].clone();
    assert_eq!(
        private,
        json!([
            {"version": 4, "addr": fixed1, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": port1["mac_address"]},
            {"version": 4, "addr": fip, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": port1["mac_address"]},
        ]),
        "{}",
        r.text
    );
    let r = w.nova(Method::GET, "/servers/detail", MV, None).await;
    let listed = r.body["servers"].as_array().unwrap().iter().find(|s| s["id"] == s1.as_str()).unwrap().clone();
    assert_eq!(listed["addresses"]["private"], private);
    let r = w.nova(Method::GET, &format!("/servers/{s1}/ips"), MV, None).await;
    assert_eq!(
        r.body,
        json!({"addresses": {"private": [{"version": 4, "addr": fixed1}, {"version": 4, "addr": fip}]}})
    );
    let r = w.nova(Method::GET, &format!("/servers/{s1}/ips/private"), MV, None).await;
    assert_eq!(r.body["private"][1], json!({"version": 4, "addr": fip}), "{}", r.text);

    // a second floating IP on the same fixed IP: 400
    let r = w.action(&s1, OLD, json!({"addFloatingIp": {"address": b["ip"]}})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    // bad or unknown addresses
    let r = w.action(&s1, OLD, json!({"addFloatingIp": {"address": ""}})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = w.action(&s1, OLD, json!({"addFloatingIp": {"address": "0.0.0.0"}})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = w.action(&s1, OLD, json!({"removeFloatingIp": {"address": "0.0.0.0"}})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = w.action(&s1, OLD, json!({"addFloatingIp": {"address": b["ip"], "fixed_address": "10.9.9.9"}})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(message(&r), "Specified fixed address not assigned to instance");

    // associating it elsewhere moves it; the first server no longer has it
    let s2 = w.boot("s2").await;
    let port2 = w.port_of(&s2).await;
    let r = w.action(&s2, OLD, json!({"addFloatingIp": {"address": a["ip"]}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(w.fip_in_neutron(&a_id).await.unwrap()["port_id"], port2["id"]);
    let r = w.nova(Method::GET, &format!("/servers/{s1}"), MV, None).await;
    assert_eq!(r.body["server"]["addresses"]["private"].as_array().unwrap().len(), 1, "moved away: {}", r.text);
    let r = w.nova(Method::GET, &format!("/servers/{s2}"), MV, None).await;
    assert_eq!(r.body["server"]["addresses"]["private"][1]["addr"], fip, "{}", r.text);
    let r = w.action(&s1, OLD, json!({"removeFloatingIp": {"address": a["ip"]}})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(message(&r), format!("Floating IP {} is not associated with instance {s1}.", a["ip"].as_str().unwrap()));
    let r = w.action(&s2, OLD, json!({"removeFloatingIp": {"address": a["ip"]}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(w.fip_in_neutron(&a_id).await.unwrap()["port_id"].is_null());

    // the actions end at 2.44, the API at 2.36
    let r = w.action(&s1, "2.44", json!({"addFloatingIp": {"address": a["ip"]}})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    for (method, path) in
        [(Method::GET, "/os-floating-ips".to_string()), (Method::GET, "/os-floating-ip-pools".to_string())]
    {
        let r = w.nova(method, &path, "2.36", None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
    let r = w.nova(Method::GET, &format!("/os-floating-ips/{a_id}"), "2.36", None).await;
    assert_eq!(r.status, 404, "{}", r.text);

    // another project can neither see nor release them
    let (_, _, other) = w.c.user_with_role(&w.admin, "member").await;
    let r = w.c.nova(Method::GET, &format!("/os-floating-ips/{a_id}"), &other, OLD, None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = w.c.nova(Method::DELETE, &format!("/os-floating-ips/{b_id}"), &other, OLD, None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = w.c.nova(Method::GET, "/os-floating-ips", &other, OLD, None).await;
    assert_eq!(r.body, json!({"floating_ips": []}), "{}", r.text);

    // release, even while associated
    let r = w.action(&s1, OLD, json!({"addFloatingIp": {"address": b["ip"]}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    for id in [&a_id, &b_id] {
        let r = w.nova(Method::DELETE, &format!("/os-floating-ips/{id}"), OLD, None).await;
        assert_eq!(r.status, 202, "{}", r.text);
        assert!(w.fip_in_neutron(id).await.is_none(), "released in the network service");
    }
    let r = w.nova(Method::GET, "/os-floating-ips", OLD, None).await;
    assert_eq!(r.body, json!({"floating_ips": []}));
}

async fn create_group(w: &World, name: &str) -> Value {
    let r = w
        .nova(
            Method::POST,
            "/os-security-groups",
            OLD,
            Some(json!({"security_group": {"name": name, "description": format!("{name} desc")}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["security_group"].clone()
}

async fn add_rule(w: &World, body: Value) -> Resp {
    w.nova(Method::POST, "/os-security-group-rules", OLD, Some(json!({"security_group_rule": body}))).await
}

#[tokio::test]
async fn security_groups_and_rules_through_the_compute_api() {
    let w = world().await;

    let g = create_group(&w, " web group ").await;
    assert_eq!(g["name"], " web group ");
    assert_eq!(g["description"], " web group  desc");
    assert_eq!(g["tenant_id"], w.project.as_str());
    assert_eq!(g["rules"], json!([]), "the network service's egress rules are not Nova's: {g}");
    let id = g["id"].as_str().unwrap().to_string();
    let n = neutron_ok(&w.c, Method::GET, &format!("/security-groups/{id}"), &w.tok, None).await;
    assert_eq!(n["security_group"]["name"], " web group ");

    // list (the default group too) and show agree
    let r = w.nova(Method::GET, "/os-security-groups", OLD, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let list = r.body["security_groups"].as_array().unwrap().clone();
    assert!(list.contains(&g), "{list:?}");
    assert!(list.iter().any(|x| x["name"] == "default"), "{list:?}");
    let r = w.nova(Method::GET, &format!("/os-security-groups/{id}"), OLD, None).await;
    assert_eq!(r.body["security_group"], g, "{}", r.text);

    // update
    let body = json!({"security_group": {"name": "web", "description": "new"}});
    let r = w.nova(Method::PUT, &format!("/os-security-groups/{id}"), OLD, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["security_group"]["name"].clone(), r.body["security_group"]["description"].clone()),
        (json!("web"), json!("new"))
    );
    let r = w
        .nova(Method::PUT, &format!("/os-security-groups/{id}"), OLD, Some(json!({"security_group": {"name": "x"}})))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // rules: a CIDR rule, shown with the group; its duplicate refused
    let r = add_rule(&w, json!({"parent_group_id": id, "ip_protocol": "tcp", "from_port": 22, "to_port": 22})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rule = r.body["security_group_rule"].clone();
    assert_eq!(
        rule,
        json!({"id": rule["id"], "parent_group_id": id, "ip_protocol": "tcp", "from_port": 22, "to_port": 22,
            "group": {}, "ip_range": {"cidr": "0.0.0.0/0"}})
    );
    let rule_id = rule["id"].as_str().unwrap().to_string();
    let n = neutron_ok(&w.c, Method::GET, &format!("/security-group-rules/{rule_id}"), &w.tok, None).await;
    let n = &n["security_group_rule"];
    assert_eq!(
        (n["direction"].as_str(), n["port_range_min"].as_i64(), n["ethertype"].as_str()),
        (Some("ingress"), Some(22), Some("IPv4"))
    );
    let r = add_rule(&w, json!({"parent_group_id": id, "ip_protocol": "tcp", "from_port": 22, "to_port": 22})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(message(&r), format!("This rule already exists in group {id}"));
    let r = add_rule(
        &w,
        json!({"parent_group_id": id, "ip_protocol": "icmp", "from_port": -1, "to_port": -1, "cidr": "10.2.3.124/24"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["security_group_rule"]["ip_range"], json!({"cidr": "10.2.3.124/24"}));
    let icmp = r.body["security_group_rule"]["id"].as_str().unwrap().to_string();
    let r = w.nova(Method::GET, &format!("/os-security-groups/{id}"), OLD, None).await;
    let ids: Vec<&str> =
        r.body["security_group"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&rule_id.as_str()) && ids.contains(&icmp.as_str()), "{}", r.text);

    // a rule from another group names it; it goes when that group goes
    let peer = create_group(&w, "peer").await;
    let peer_id = peer["id"].as_str().unwrap().to_string();
    let r = add_rule(
        &w,
        json!({"parent_group_id": id, "ip_protocol": "tcp", "from_port": 80, "to_port": 80, "group_id": peer_id}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["security_group_rule"]["group"], json!({"name": "peer", "tenant_id": w.project}));
    assert_eq!(r.body["security_group_rule"]["ip_range"], json!({}));
    let r = w.nova(Method::DELETE, &format!("/os-security-groups/{peer_id}"), OLD, None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = w.nova(Method::GET, &format!("/os-security-groups/{id}"), OLD, None).await;
    assert_eq!(r.body["security_group"]["rules"].as_array().unwrap().len(), 2, "{}", r.text);

    // Nova's rule refusals
    for (body, status, msg) in [
        (
            json!({"parent_group_id": id, "ip_protocol": "999", "from_port": 22, "to_port": 22}),
            400,
            "Invalid IP protocol 999.",
        ),
        (
            json!({"parent_group_id": id, "ip_protocol": "tcp", "from_port": 65536, "to_port": 22}),
            400,
            "Invalid port range 65536:22. Former value cannot be greater than the later",
        ),
        (
            json!({"parent_group_id": id, "ip_protocol": "tcp", "from_port": 22, "to_port": 65536}),
            400,
            "Invalid port range 22:65536. Valid TCP ports should be between 1-65535",
        ),
        (
            json!({"parent_group_id": id, "ip_protocol": "tcp", "from_port": 22, "to_port": 21}),
            400,
            "Invalid port range 22:21. Former value cannot be greater than the later",
        ),
        (json!({"parent_group_id": id, "ip_protocol": "tcp"}), 400, "Not enough parameters to build a valid rule."),
        (
            json!({"parent_group_id": "non_int_id", "ip_protocol": "tcp", "from_port": 22, "to_port": 22}),
            400,
            "Invalid input for field/attribute parent_group_id. Value: non_int_id. 'non_int_id' is not a 'uuid'",
        ),
    ] {
        let r = add_rule(&w, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(message(&r), msg, "{body}");
    }
    let missing = uuid::Uuid::new_v4().to_string();
    let r =
        add_rule(&w, json!({"parent_group_id": missing, "ip_protocol": "tcp", "from_port": 22, "to_port": 22})).await;
    assert_eq!(r.status, 404, "{}", r.text);

    // rule delete
    let r = w.nova(Method::DELETE, &format!("/os-security-group-rules/{rule_id}"), OLD, None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let gone = w.c.neutron(Method::GET, &format!("/security-group-rules/{rule_id}"), &w.tok, None).await;
    assert_eq!(gone.status, 404);
    let r = w.nova(Method::DELETE, &format!("/os-security-group-rules/{rule_id}"), OLD, None).await;
    assert_eq!(r.status, 404, "{}", r.text);

    // group refusals: the default group, unknown and bad ids, no id at all
    let default = list.iter().find(|x| x["name"] == "default").unwrap()["id"].as_str().unwrap().to_string();
    let r = w.nova(Method::DELETE, &format!("/os-security-groups/{default}"), OLD, None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = w.nova(Method::DELETE, &format!("/os-security-groups/{missing}"), OLD, None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = w.nova(Method::GET, &format!("/os-security-groups/{missing}"), OLD, None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = w.nova(Method::GET, "/os-security-groups/not-a-uuid", OLD, None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(message(&r), "Security group id should be uuid");
    let r = w.nova(Method::DELETE, "/os-security-groups/", OLD, None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let body = json!({"security_group": {"name": "n", "description": "d"}});
    let r = w.nova(Method::PUT, &format!("/os-security-groups/{missing}"), OLD, Some(body)).await;
    assert_eq!(r.status, 404, "{}", r.text);

    // an admin lists every project's groups with all_tenants; a member only its own
    let r =
        w.c.nova(
            Method::POST,
            "/os-security-groups",
            &w.admin,
            OLD,
            Some(json!({"security_group": {"name": "adm", "description": ""}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let adm = r.body["security_group"]["id"].clone();
    let r = w.c.nova(Method::GET, "/os-security-groups?all_tenants=true", &w.admin, OLD, None).await;
    let all: Vec<Value> = r.body["security_groups"].as_array().unwrap().iter().map(|g| g["id"].clone()).collect();
    assert!(all.contains(&adm) && all.contains(&json!(id)), "{}", r.text);
    let r = w.nova(Method::GET, "/os-security-groups?all_tenants=true", OLD, None).await;
    let mine: Vec<Value> = r.body["security_groups"].as_array().unwrap().iter().map(|g| g["id"].clone()).collect();
    assert!(!mine.contains(&adm) && mine.contains(&json!(id)), "{}", r.text);

    // a reader reads and changes nothing; another project sees none of it
    let (_, _, reader) = w.c.user_with_role(&w.admin, "reader").await;
    let r = w.c.nova(Method::GET, "/os-security-groups", &reader, OLD, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = json!({"security_group": {"name": "r", "description": ""}});
    let r = w.c.nova(Method::POST, "/os-security-groups", &reader, OLD, Some(body)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = w.c.nova(Method::GET, &format!("/os-security-groups/{id}"), &reader, OLD, None).await;
    assert_eq!(r.status, 404, "another project's group: {}", r.text);

    // gone from 2.36
    let r = w.nova(Method::GET, "/os-security-groups", "2.36", None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = add_rule(&w, json!({"parent_group_id": id})).await;
    assert_eq!(r.status, 400);
    let r = w
        .nova(
            Method::POST,
            "/os-security-group-rules",
            "2.36",
            Some(json!({"security_group_rule": {"parent_group_id": id}})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);

    let r = w.nova(Method::DELETE, &format!("/os-security-groups/{id}"), OLD, None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = w.c.neutron(Method::GET, &format!("/security-groups/{id}"), &w.tok, None).await;
    assert_eq!(r.status, 404, "deleted in the network service");
}

#[tokio::test]
async fn a_servers_security_groups() {
    let w = world().await;
    let sg = create_group(&w, "sg1").await;
    let sg2 = create_group(&w, "sg2").await;
    let server = w.boot("s").await;

    // booted in the default group: show and detail say so, at every microversion
    for mv in [OLD, MV] {
        let r = w.nova(Method::GET, &format!("/servers/{server}"), mv, None).await;
        assert_eq!(r.body["server"]["security_groups"], json!([{"name": "default"}]), "{mv}: {}", r.text);
    }
    let r = w.nova(Method::GET, "/servers/detail", MV, None).await;
    assert_eq!(r.body["servers"][0]["security_groups"], json!([{"name": "default"}]), "{}", r.text);

    // add two groups (by name and by id): the port has them
    let r = w.action(&server, MV, json!({"addSecurityGroup": {"name": "sg1"}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let r = w.action(&server, MV, json!({"addSecurityGroup": {"name": sg2["id"]}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let port = w.port_of(&server).await;
    let on_port: Vec<&str> = port["security_groups"].as_array().unwrap().iter().map(|g| g.as_str().unwrap()).collect();
    assert_eq!(on_port.len(), 3, "{port}");
    assert!(on_port.contains(&sg["id"].as_str().unwrap()) && on_port.contains(&sg2["id"].as_str().unwrap()));
    // in use: the group cannot be deleted
    let r = w.nova(Method::DELETE, &format!("/os-security-groups/{}", sg["id"].as_str().unwrap()), OLD, None).await;
    assert_eq!(r.status, 400, "{}", r.text);

    // the server's groups, in Nova's full shape, sorted by name
    let r = w.nova(Method::GET, &format!("/servers/{server}/os-security-groups"), MV, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> =
        r.body["security_groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "sg1", "sg2"], "{}", r.text);
    assert!(r.body["security_groups"][1]["rules"].is_array());
    let r = w.nova(Method::GET, &format!("/servers/{server}"), MV, None).await;
    let mut shown: Vec<String> = r.body["server"]["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    shown.sort();
    assert_eq!(shown, ["default", "sg1", "sg2"]);

    // refusals
    let r = w.action(&server, MV, json!({"addSecurityGroup": {"name": "nope"}})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(message(&r), format!("Security group nope is not found for project {}", w.project));
    let r = w.action(&server, MV, json!({"addSecurityGroup": {"name": " "}})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(message(&r), "Security group name cannot be empty");
    let r = w.action(&server, MV, json!({"addSecurityGroup": {}})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = w.nova(Method::GET, &format!("/servers/{}/os-security-groups", uuid::Uuid::new_v4()), MV, None).await;
    assert_eq!(r.status, 404, "{}", r.text);

    // remove them all: the port has none and the view shows no key
    for name in ["default", "sg1", "sg2"] {
        let r = w.action(&server, MV, json!({"removeSecurityGroup": {"name": name}})).await;
        assert_eq!(r.status, 202, "{name}: {}", r.text);
    }
    assert_eq!(w.port_of(&server).await["security_groups"], json!([]));
    let r = w.nova(Method::GET, &format!("/servers/{server}"), MV, None).await;
    assert!(r.body["server"].get("security_groups").is_none(), "{}", r.text);
    let r = w.action(&server, MV, json!({"removeSecurityGroup": {"name": "sg1"}})).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(message(&r), format!("Security group sg1 not associated with the instance {server}"));

    // once the server is gone its groups can go
    let r = w.nova(Method::DELETE, &format!("/servers/{server}"), MV, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    w.c.wait_server(&w.tok, &server, 30, |s| s.is_null()).await;
    let r = w.nova(Method::DELETE, &format!("/os-security-groups/{}", sg["id"].as_str().unwrap()), OLD, None).await;
    assert_eq!(r.status, 202, "{}", r.text);
}

#[tokio::test]
async fn networks_through_the_compute_api() {
    let w = world().await;
    let r = w.nova(Method::GET, "/os-networks", OLD, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mine = r.body["networks"].as_array().unwrap().iter().find(|n| n["id"] == w.net.as_str()).cloned().unwrap();
    assert_eq!(mine["label"], "private");
    assert!(mine["cidr"].is_null() && mine.get("mtu").is_none(), "{mine}");
    let r = w.c.nova(Method::GET, &format!("/os-networks/{}", w.ext), &w.admin, OLD, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["network"]["label"], "public");
    assert!(r.body["network"].get("mtu").is_some(), "an admin sees the admin fields: {}", r.text);
    let missing = uuid::Uuid::new_v4();
    let r = w.nova(Method::GET, &format!("/os-networks/{missing}"), OLD, None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(message(&r), "Network not found");

    let r = w.nova(Method::GET, "/os-tenant-networks", OLD, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["networks"].as_array().unwrap().contains(&json!({"id": w.net, "cidr": "None", "label": "private"})));
    let r = w.nova(Method::GET, &format!("/os-tenant-networks/{}", w.net), OLD, None).await;
    assert_eq!(r.body, json!({"network": {"id": w.net, "cidr": "None", "label": "private"}}), "{}", r.text);

    // what only nova-network did: 410 at every microversion; the rest ends at 2.36
    for (method, path) in [
        (Method::POST, "/os-networks".to_string()),
        (Method::POST, "/os-networks/add".to_string()),
        (Method::DELETE, format!("/os-networks/{}", w.net)),
        (Method::POST, format!("/os-networks/{}/action", w.net)),
        (Method::POST, "/os-tenant-networks".to_string()),
        (Method::DELETE, format!("/os-tenant-networks/{}", w.net)),
        (Method::GET, "/os-fixed-ips/10.0.0.3".to_string()),
        (Method::GET, "/os-floating-ip-dns".to_string()),
        (Method::GET, "/os-floating-ips-bulk".to_string()),
        (Method::GET, "/os-fping".to_string()),
        (Method::GET, "/os-security-group-default-rules".to_string()),
        (Method::GET, format!("/servers/{}/os-virtual-interfaces", uuid::Uuid::new_v4())),
    ] {
        for mv in [OLD, MV] {
            let r = w.c.nova(method.clone(), &path, &w.admin, mv, Some(json!({}))).await;
            assert_eq!(r.status, 410, "{method} {path} at {mv}: {}", r.text);
        }
    }
    for path in ["/os-networks", "/os-tenant-networks"] {
        let r = w.nova(Method::GET, path, "2.36", None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
}
