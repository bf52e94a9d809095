//! The compute metadata API as a metadata proxy reaches it, on every
//! database: a booted server's OpenStack metadata (meta_data.json with its
//! uuid, name, hostname and keys; user data; network data; vendor data;
//! the password set once), its EC2 tree (instance-id, addresses with the
//! floating IP, keys, user data), and the requester check (a forged
//! signature, another instance's id under this one's signature, missing
//! headers, the wrong project, an unknown or deleted instance). Then the
//! network service's side of the proxy: the port that has a guest's
//! address on a network, or on a router's networks (`PortByAddress`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use stratus_compute::metadata::{MetadataService, router};
use stratus_core::metadata_proxy::sign;
use stratus_network::rpc::{PLUGIN, PortByAddress, PortOwner};
use stratus_testkit::{Cloud, fresh_urls};

const MV: &str = "2.96";
const SECRET: &str = "metadata-test-secret";
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA me@host";
const USER_DATA: &str = "#cloud-config\nhostname: web\n";
/// `USER_DATA` in base64, as the API takes it.
const USER_DATA_B64: &str = "I2Nsb3VkLWNvbmZpZwpob3N0bmFtZTogd2ViCg==";

async fn neutron_ok(c: &Cloud, method: Method, path: &str, tok: &str, body: Option<Value>) -> Value {
    let r = c.neutron(method, path, tok, body).await;
    assert!(r.status.is_success(), "{path}: {} {}", r.status, r.text);
    r.body
}

fn id_of(v: &Value, kind: &str) -> String {
    v[kind]["id"].as_str().unwrap().to_string()
}

/// A metadata API in front of the cloud's compute API, on an ephemeral port.
async fn metadata_api(c: &Cloud) -> String {
    let api = c.compute.as_ref().unwrap().api.clone();
    let app = router(Arc::new(MetadataService { api, shared_secret: SECRET.into() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

struct Answer {
    status: u16,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

/// A request as the proxy sends it: the headers given (name, value).
async fn ask(url: &str, method: Method, path: &str, headers: &[(&str, String)], body: Option<&str>) -> Answer {
    let mut rb = reqwest::Client::new().request(method, format!("{url}{path}"));
    for (k, v) in headers {
        rb = rb.header(*k, v);
    }
    if let Some(b) = body {
        rb = rb.body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    Answer { status, content_type, text: r.text().await.unwrap() }
}

/// The headers of a proxy that signs `signed_id` and names `id` of `project`.
fn proxy_headers(id: &str, project: &str, signed_id: &str, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Instance-ID", id.to_string()),
        ("X-Tenant-ID", project.to_string()),
        ("X-Instance-ID-Signature", sign(secret, signed_id)),
        ("X-Forwarded-For", "10.0.0.99".to_string()),
    ]
}

#[tokio::test]
async fn a_server_reads_its_metadata_through_a_signed_proxy() {
    for (backend, url) in fresh_urls().await {
        let c = Cloud::start_compute(backend, &url, &["host-a"], |cfg| {
            cfg.compute.networking = true;
            cfg.compute.metadata_proxy_shared_secret = SECRET.into();
        })
        .await;
        let admin = c.admin_token().await;
        let image = c.boot_image(&admin).await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;

        // a private network behind a router to an external network
        let ext = id_of(
            &neutron_ok(
                &c,
                Method::POST,
                "/networks",
                &admin,
                Some(json!({"network": {"name": "public", "router:external": true}})),
            )
            .await,
            "network",
        );
        let body =
            json!({"subnet": {"network_id": ext, "cidr": "203.0.113.0/24", "ip_version": 4, "enable_dhcp": false}});
        neutron_ok(&c, Method::POST, "/subnets", &admin, Some(body)).await;
        let net = id_of(
            &neutron_ok(&c, Method::POST, "/networks", &tok, Some(json!({"network": {"name": "private"}}))).await,
            "network",
        );
        let body = json!({"subnet": {"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4}});
        let subnet = id_of(&neutron_ok(&c, Method::POST, "/subnets", &tok, Some(body)).await, "subnet");
        let body = json!({"router": {"name": "r", "external_gateway_info": {"network_id": ext}}});
        let router_id = id_of(&neutron_ok(&c, Method::POST, "/routers", &tok, Some(body)).await, "router");
        let path = format!("/routers/{router_id}/add_router_interface");
        neutron_ok(&c, Method::PUT, &path, &tok, Some(json!({"subnet_id": subnet}))).await;
        let r = c
            .nova(
                Method::POST,
                "/os-keypairs",
                &tok,
                "2.10",
                Some(json!({"keypair": {"name": "k", "public_key": KEY}})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);

        // server a: a key, user data and metadata; server b: none of them
        let body = json!({"server": {"name": "web-a", "imageRef": image, "flavorRef": "1", "key_name": "k",
            "user_data": USER_DATA_B64, "metadata": {"role": "web"}, "networks": [{"uuid": net}]}});
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let a = r.body["server"]["id"].as_str().unwrap().to_string();
        let body =
            json!({"server": {"name": "web-b", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}]}});
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
        let b = r.body["server"]["id"].as_str().unwrap().to_string();
        for id in [&a, &b] {
            let s = c.wait_server(&tok, id, 30, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await;
            assert_eq!(s["status"], "ACTIVE", "{backend}: {s}");
        }
        let ports = neutron_ok(&c, Method::GET, &format!("/ports?device_id={a}"), &admin, None).await;
        let port_a = ports["ports"][0]["id"].as_str().unwrap().to_string();
        let fixed_a = ports["ports"][0]["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();
        let body = json!({"floatingip": {"floating_network_id": ext, "port_id": port_a}});
        let fip =
            neutron_ok(&c, Method::POST, "/floatingips", &tok, Some(body)).await["floatingip"]["floating_ip_address"]
                .as_str()
                .unwrap()
                .to_string();

        let md = metadata_api(&c).await;
        let as_a = proxy_headers(&a, &project, &a, SECRET);
        let get = |path: &'static str, h: Vec<(&'static str, String)>| {
            let md = md.clone();
            async move { ask(&md, Method::GET, path, &h, None).await }
        };

        // `/` needs no one; the rest does
        let r = get("/", vec![]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.text.starts_with("1.0\n2007-01-19\n") && r.text.ends_with("2009-04-04\nlatest"), "{}", r.text);
        let r = get("/openstack", as_a.clone()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.text.starts_with("2012-08-10\n") && r.text.ends_with("\nlatest"), "{}", r.text);
        let r = get("/openstack/latest/", as_a.clone()).await;
        assert_eq!(
            r.text, "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json",
            "{backend}"
        );

        // meta_data.json: the server's uuid, name, hostname and key
        let r = get("/openstack/latest/meta_data.json", as_a.clone()).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert!(r.content_type.starts_with("application/json"), "{}", r.content_type);
        let m = r.json();
        assert_eq!(m["uuid"], a.as_str());
        assert_eq!(m["name"], "web-a");
        assert_eq!(m["hostname"], "web-a");
        assert_eq!(m["project_id"], project.as_str());
        assert_eq!(m["availability_zone"], "nova");
        assert_eq!(m["meta"], json!({"role": "web"}));
        assert_eq!(m["public_keys"], json!({"k": KEY}));
        assert_eq!(m["keys"], json!([{"name": "k", "type": "ssh", "data": KEY}]));
        let old = get("/openstack/2012-08-10/meta_data.json", as_a.clone()).await.json();
        assert_eq!(old["uuid"], a.as_str());
        assert!(old.get("project_id").is_none(), "{old}");

        let r = get("/openstack/latest/user_data", as_a.clone()).await;
        assert_eq!((r.status, r.text.as_str()), (200, USER_DATA));
        let nd = get("/openstack/latest/network_data.json", as_a.clone()).await.json();
        assert_eq!(nd["links"][0]["vif_id"], port_a.as_str(), "{nd}");
        assert_eq!(nd["networks"][0]["network_id"], net.as_str(), "{nd}");
        assert_eq!(nd["networks"][0]["type"], "ipv4_dhcp");
        assert_eq!(get("/openstack/latest/vendor_data.json", as_a.clone()).await.json(), json!({}));
        assert_eq!(get("/openstack/2016-10-06/vendor_data2.json", as_a.clone()).await.json(), json!({}));
        assert_eq!(get("/openstack/2013-04-04/vendor_data.json", as_a.clone()).await.status, 404);
        assert_eq!(get("/openstack/2000-01-01/meta_data.json", as_a.clone()).await.status, 404);

        // b has no user data and no keys
        let as_b = proxy_headers(&b, &project, &b, SECRET);
        assert_eq!(get("/openstack/latest/user_data", as_b.clone()).await.status, 404);
        let mb = get("/openstack/latest/meta_data.json", as_b.clone()).await.json();
        assert_eq!(mb["uuid"], b.as_str());
        assert!(mb.get("public_keys").is_none(), "{mb}");
        assert_eq!(get("/latest/user-data", as_b.clone()).await.status, 404);

        // the EC2 tree
        let ec2 = |path: &'static str| get(path, as_a.clone());
        assert_eq!(ec2("/latest/meta-data/instance-id").await.text, format!("i-{}", &a[..8]));
        assert_eq!(ec2("/latest/meta-data/ami-id").await.text, format!("ami-{}", &image[..8]));
        assert_eq!(ec2("/latest/meta-data/hostname").await.text, "web-a");
        assert_eq!(ec2("/latest/meta-data/local-hostname").await.text, "web-a");
        assert_eq!(ec2("/latest/meta-data/local-ipv4").await.text, fixed_a);
        assert_eq!(ec2("/latest/meta-data/public-ipv4").await.text, fip, "{backend}");
        assert_eq!(ec2("/latest/meta-data/instance-type").await.text, "m1.tiny");
        assert_eq!(ec2("/latest/meta-data/placement/availability-zone").await.text, "nova");
        assert_eq!(ec2("/latest/meta-data/public-keys/").await.text, "0=k");
        assert_eq!(ec2("/latest/meta-data/public-keys/0/openssh-key").await.text, KEY);
        assert_eq!(ec2("/latest/meta-data/security-groups").await.text, "default", "{backend}");
        assert_eq!(ec2("/latest/meta-data/block-device-mapping/root").await.text, "/dev/vda");
        assert_eq!(ec2("/2009-04-04/meta-data/instance-id").await.text, format!("i-{}", &a[..8]));
        let listing = ec2("/latest/meta-data/").await.text;
        for want in ["ami-id", "hostname", "instance-id", "local-ipv4", "public-ipv4", "public-keys/", "placement/"] {
            assert!(listing.lines().any(|l| l == want), "{want} not in {listing}");
        }
        assert_eq!(ec2("/latest").await.text, "meta-data/\nuser-data");
        let r = ec2("/latest/user-data").await;
        assert_eq!((r.status, r.text.as_str()), (200, USER_DATA));
        assert_eq!(ec2("/latest/meta-data/no-such").await.status, 404);
        // b has no floating IP
        assert_eq!(get("/2009-04-04/meta-data/public-ipv4", as_b.clone()).await.text, "");

        // the password: empty, set once by the guest, shown by the API, cleared by it
        let pw = |method: Method, body: Option<&'static str>| {
            let (md, h) = (md.clone(), as_a.clone());
            async move { ask(&md, method, "/openstack/latest/password", &h, body).await }
        };
        let r = pw(Method::GET, None).await;
        assert_eq!((r.status, r.text.as_str()), (200, ""));
        assert_eq!(pw(Method::POST, Some("encrypted-pw")).await.status, 200);
        assert_eq!(pw(Method::GET, None).await.text, "encrypted-pw");
        assert_eq!(pw(Method::POST, Some("another")).await.status, 409);
        let big = "x".repeat(1021);
        let as_b_pw = ask(&md, Method::POST, "/openstack/latest/password", &as_b, Some(&big)).await;
        assert_eq!(as_b_pw.status, 400, "{}", as_b_pw.text);
        let r = c.nova(Method::GET, &format!("/servers/{a}/os-server-password"), &tok, MV, None).await;
        assert_eq!(r.body, json!({"password": "encrypted-pw"}), "{}", r.text);
        let r = c.nova(Method::DELETE, &format!("/servers/{a}/os-server-password"), &tok, MV, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_eq!(pw(Method::GET, None).await.text, "");
        assert_eq!(pw(Method::POST, Some("again")).await.status, 200);
        assert_eq!(get("/openstack/2012-08-10/password", as_a.clone()).await.status, 404);

        // who may ask: a forged signature, b under a's signature, missing headers, wrong project
        let forged = proxy_headers(&a, &project, &a, "not-the-secret");
        let r = get("/openstack/latest/meta_data.json", forged).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(r.text.contains("Invalid proxy request signature."), "{}", r.text);
        let r = get("/openstack/latest/meta_data.json", proxy_headers(&b, &project, &a, SECRET)).await;
        assert_eq!(r.status, 403, "{}", r.text);
        let r = get("/latest/meta-data/instance-id", proxy_headers(&b, &project, &a, SECRET)).await;
        assert_eq!(r.status, 403, "{}", r.text);
        let mut empty = as_a.clone();
        empty[2].1 = String::new();
        assert_eq!(get("/openstack", empty).await.status, 403);
        for (drop, msg) in [
            (0, "X-Instance-ID header is missing from request."),
            (1, "X-Tenant-ID header is missing from request."),
            (2, "X-Instance-ID-Signature header is missing from request."),
        ] {
            let mut h = as_a.clone();
            h.remove(drop);
            let r = get("/openstack", h).await;
            assert_eq!(r.status, 400, "{}", r.text);
            assert!(r.text.contains(msg), "{}", r.text);
        }
        let r = get("/openstack", proxy_headers(&a, "someone-else", &a, SECRET)).await;
        assert_eq!(r.status, 404, "{}", r.text);
        let nobody = "6a0b1b84-8b3c-4f4e-9d0a-000000000000";
        assert_eq!(get("/openstack", proxy_headers(nobody, &project, nobody, SECRET)).await.status, 404);

        // the network service names a guest's port by its address on a network or a router's networks
        let bus = c.compute.as_ref().unwrap().shared.bus.clone();
        let owner = |network_ids: Vec<String>, router_id: Option<String>, ip: &str| {
            let bus = bus.clone();
            let m = PortByAddress { network_ids, router_id, ip_address: ip.to_string() };
            async move {
                bus.call::<_, Option<PortOwner>>(PLUGIN, &m, "req-metadata-test", Duration::from_secs(10))
                    .await
                    .unwrap()
            }
        };
        let found = owner(vec![net.clone()], None, &fixed_a).await.unwrap();
        assert_eq!((found.device_id.as_str(), found.project_id.as_str()), (a.as_str(), project.as_str()));
        assert_eq!(found.port_id, port_a);
        assert_eq!(owner(vec![], Some(router_id.clone()), &fixed_a).await.unwrap().device_id, a);
        assert_eq!(owner(vec![ext.clone()], None, &fixed_a).await, None);
        assert_eq!(owner(vec![net.clone()], None, "10.0.0.250").await, None);
        assert_eq!(owner(vec![], None, &fixed_a).await, None);

        // a deleted server is no one
        let r = c.nova(Method::DELETE, &format!("/servers/{b}"), &tok, MV, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        c.wait_server(&tok, &b, 30, |s| s.is_null()).await;
        assert_eq!(get("/openstack/latest/meta_data.json", as_b.clone()).await.status, 404);
    }
}
