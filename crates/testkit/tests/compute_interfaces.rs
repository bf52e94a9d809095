//! Nova's os-interface API over a cloud with compute networking: attach by
//! network (and fixed IP, and tag), by the user's port, or by nothing (the
//! project's one network); list and show in Nova's view; addresses follow;
//! detach deletes the ports compute made and unbinds the user's; refusals
//! as Nova words them; a failed attach on the host gives its port back; two
//! attaches at once both end recorded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, Resp, fresh_urls};
use stratus_virt::fake::FakeDriver;

const MV: &str = "2.96";

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

async fn port(c: &Cloud, admin: &str, id: &str) -> Option<Value> {
    let r = c.neutron(Method::GET, &format!("/ports/{id}"), admin, None).await;
    if r.status == 404 {
        return None;
    }
    assert_eq!(r.status, 200, "{}", r.text);
    Some(r.body["port"].clone())
}

async fn ports_of(c: &Cloud, admin: &str, server: &str) -> Vec<Value> {
    let r = c.neutron(Method::GET, &format!("/ports?device_id={server}"), admin, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["ports"].as_array().unwrap().clone()
}

async fn boot(c: &Cloud, tok: &str, image: &str, name: &str, net: &str) -> String {
    let body = json!({"server": {"name": name, "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}]}});
    let r = c.nova(Method::POST, "/servers", tok, MV, Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    assert_eq!(active(c, tok, &id).await["status"], "ACTIVE");
    id
}

async fn attach(c: &Cloud, tok: &str, mv: &str, server: &str, body: Value) -> Resp {
    c.nova(Method::POST, &format!("/servers/{server}/os-interface"), tok, mv, Some(body)).await
}

async fn list(c: &Cloud, tok: &str, mv: &str, server: &str) -> Vec<Value> {
    let r = c.nova(Method::GET, &format!("/servers/{server}/os-interface"), tok, mv, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body.as_object().unwrap().len(), 1, "{}", r.text);
    r.body["interfaceAttachments"].as_array().unwrap().clone()
}

/// Tempest's schema of an attachment: exactly these keys, of these types.
fn check_schema(a: &Value, with_tag: bool) {
    let o = a.as_object().unwrap();
    let mut keys: BTreeSet<&str> = ["port_state", "fixed_ips", "port_id", "net_id", "mac_addr"].into();
    if with_tag {
        keys.insert("tag");
        assert!(a["tag"].is_null() || a["tag"].is_string(), "{a}");
    }
    assert_eq!(o.keys().map(String::as_str).collect::<BTreeSet<_>>(), keys, "{a}");
    assert!(a["port_state"].is_string(), "{a}");
    for k in ["port_id", "net_id"] {
        assert!(uuid::Uuid::parse_str(a[k].as_str().unwrap()).is_ok(), "{a}");
    }
    assert_eq!(a["mac_addr"].as_str().unwrap().len(), 17, "{a}");
    for f in a["fixed_ips"].as_array().unwrap() {
        let keys: BTreeSet<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["ip_address", "subnet_id"].into(), "{a}");
        assert!(f["ip_address"].as_str().unwrap().parse::<std::net::IpAddr>().is_ok());
    }
}

/// Wait until the server's interfaces are `n`.
async fn wait_count(c: &Cloud, tok: &str, server: &str, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let l = list(c, tok, MV, server).await;
        if l.len() == n {
            return l;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("server {server} never had {n} interfaces: {:?}", list(c, tok, MV, server).await);
}

/// Wait until the server shows `n` addresses on `net` (a detach records its end last).
async fn wait_addresses(c: &Cloud, tok: &str, server: &str, net: &str, n: usize) -> Value {
    for _ in 0..200 {
        let s = active(c, tok, server).await;
        if addresses_of(&s, net).len() == n {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("server {server} never had {n} addresses on {net}: {}", active(c, tok, server).await);
}

fn fake(c: &Cloud) -> &FakeDriver {
    c.compute.as_ref().unwrap().hosts[0].driver.as_any().downcast_ref::<FakeDriver>().unwrap()
}

fn addresses_of(s: &Value, net: &str) -> Vec<String> {
    s["addresses"][net]
        .as_array()
        .map(|a| a.iter().map(|x| x["addr"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn interfaces_attach_list_show_and_detach() {
    for (backend, url) in fresh_urls().await {
        let c = Cloud::start_compute(backend, &url, &["host-a"], |cfg| cfg.compute.networking = true).await;
        let admin = c.admin_token().await;
        let image = c.boot_image(&admin).await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let net = network_with_subnet(&c, &tok, "private", "10.0.0.0/24").await;
        let server = boot(&c, &tok, &image, "a", &net).await;

        // the boot port, in Nova's view (the tag from 2.70)
        let l = list(&c, &tok, "2.69", &server).await;
        assert_eq!(l.len(), 1, "{backend}");
        check_schema(&l[0], false);
        let boot_port = l[0]["port_id"].as_str().unwrap().to_string();
        assert_eq!(l[0]["net_id"], net.as_str());
        let l = list(&c, &tok, MV, &server).await;
        check_schema(&l[0], true);
        assert!(l[0]["tag"].is_null());

        // no network named: the project's one network
        let r = attach(&c, &tok, MV, &server, json!({"interfaceAttachment": {}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body.as_object().unwrap().len(), 1);
        let a = &r.body["interfaceAttachment"];
        check_schema(a, true);
        assert_eq!(a["net_id"], net.as_str());
        let auto_port = a["port_id"].as_str().unwrap().to_string();

        // by network, with a fixed IP and a tag
        let body =
            json!({"interfaceAttachment": {"net_id": net, "fixed_ips": [{"ip_address": "10.0.0.50"}], "tag": "data"}});
        let r = attach(&c, &tok, MV, &server, body).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let a = r.body["interfaceAttachment"].clone();
        check_schema(&a, true);
        assert_eq!(a["fixed_ips"][0]["ip_address"], "10.0.0.50");
        assert_eq!(a["tag"], "data");
        let by_net = a["port_id"].as_str().unwrap().to_string();
        let p = port(&c, &admin, &by_net).await.unwrap();
        assert_eq!(p["device_id"], server.as_str());
        assert_eq!(p["device_owner"], "compute:nova");
        assert_eq!(p["binding:host_id"], "host-a", "{p}");
        assert_eq!(p["mac_address"], a["mac_addr"]);
        let r = c.nova(Method::GET, &format!("/servers/{server}/os-interface/{by_net}"), &tok, "2.69", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        check_schema(&r.body["interfaceAttachment"], false);
        assert_eq!(r.body["interfaceAttachment"]["port_id"], by_net.as_str());
        let r = c.nova(Method::GET, &format!("/servers/{server}/os-interface/{by_net}"), &tok, MV, None).await;
        assert_eq!(r.body["interfaceAttachment"]["tag"], "data");

        // by the user's own port
        let r =
            c.neutron(Method::POST, "/ports", &tok, Some(json!({"port": {"network_id": net, "name": "mine"}}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let mine = r.body["port"]["id"].as_str().unwrap().to_string();
        let r = attach(&c, &tok, MV, &server, json!({"interfaceAttachment": {"port_id": mine}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["interfaceAttachment"]["port_id"], mine.as_str());
        let p = port(&c, &admin, &mine).await.unwrap();
        assert_eq!((p["device_id"].as_str(), p["binding:host_id"].as_str()), (Some(server.as_str()), Some("host-a")));

        // a second network shows as its own addresses
        let other = network_with_subnet(&c, &tok, "other", "10.1.0.0/24").await;
        let r = attach(&c, &tok, MV, &server, json!({"interfaceAttachment": {"net_id": other}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let on_other = r.body["interfaceAttachment"]["port_id"].as_str().unwrap().to_string();

        let l = list(&c, &tok, MV, &server).await;
        let ids: BTreeSet<&str> = l.iter().map(|a| a["port_id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [boot_port.as_str(), auto_port.as_str(), by_net.as_str(), mine.as_str(), on_other.as_str()].into(),
            "{backend}"
        );
        let s = active(&c, &tok, &server).await;
        assert_eq!(addresses_of(&s, "private").len(), 4, "{backend}: {s}");
        assert!(addresses_of(&s, "private").contains(&"10.0.0.50".to_string()));
        assert_eq!(addresses_of(&s, "other").len(), 1, "{s}");
        let plugged: BTreeSet<String> = fake(&c).interfaces(&server).into_iter().map(|i| i.port_id).collect();
        assert_eq!(plugged, [auto_port.clone(), by_net.clone(), mine.clone(), on_other.clone()].into());

        // refusals, as Nova words them
        let unknown = "6a0b1b84-8b3c-4f4e-9d0a-000000000000";
        for (body, status) in [
            (json!({"interfaceAttachment": {"port_id": unknown}}), 404),
            (json!({"interfaceAttachment": {"net_id": unknown}}), 404),
            (json!({"interfaceAttachment": {"port_id": mine}}), 409),
            (json!({"interfaceAttachment": {"port_id": mine, "net_id": net}}), 400),
            (json!({"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.0.0.51"}]}}), 400),
            (json!({"interfaceAttachment": {"net_id": net, "fixed_ips": [{"ip_address": "10.0.0.50"}]}}), 409),
            (json!({"interfaceAttachment": {"net_id": "not-a-uuid"}}), 400),
            // two networks now: which one is ambiguous
            (json!({"interfaceAttachment": {}}), 400),
        ] {
            let r = attach(&c, &tok, MV, &server, body.clone()).await;
            assert_eq!(r.status, status, "{backend}: {body} -> {}", r.text);
        }
        let r = attach(&c, &tok, MV, &server, json!({"interfaceAttachment": {}})).await;
        assert_eq!(
            r.body["badRequest"]["message"], "Multiple possible networks found, use a Network ID to be more specific.",
            "{}",
            r.text
        );
        let r = attach(&c, &tok, MV, unknown, json!({"interfaceAttachment": {"net_id": net}})).await;
        assert_eq!(r.status, 404);
        let r = c.nova(Method::GET, &format!("/servers/{server}/os-interface/{unknown}"), &tok, MV, None).await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = c.nova(Method::DELETE, &format!("/servers/{server}/os-interface/{unknown}"), &tok, MV, None).await;
        assert_eq!(r.status, 404, "{}", r.text);
        // a port of another server is not this server's
        let second = boot(&c, &tok, &image, "b", &net).await;
        let theirs = list(&c, &tok, MV, &second).await[0]["port_id"].as_str().unwrap().to_string();
        let r = c.nova(Method::GET, &format!("/servers/{server}/os-interface/{theirs}"), &tok, MV, None).await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = c.nova(Method::DELETE, &format!("/servers/{server}/os-interface/{theirs}"), &tok, MV, None).await;
        assert_eq!(r.status, 404, "{}", r.text);
        // locked by an admin: the member may not; suspended: nobody may
        let r =
            c.nova(Method::POST, &format!("/servers/{second}/action"), &admin, MV, Some(json!({"lock": null}))).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let r = attach(&c, &tok, MV, &second, json!({"interfaceAttachment": {"net_id": net}})).await;
        assert_eq!(r.status, 409, "{}", r.text);
        let r =
            c.nova(Method::POST, &format!("/servers/{second}/action"), &admin, MV, Some(json!({"unlock": null}))).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let r =
            c.nova(Method::POST, &format!("/servers/{second}/action"), &tok, MV, Some(json!({"suspend": null}))).await;
        assert_eq!(r.status, 202, "{}", r.text);
        c.wait_server(&tok, &second, 20, |s| s["status"] == "SUSPENDED").await;
        let r = attach(&c, &tok, MV, &second, json!({"interfaceAttachment": {"net_id": net}})).await;
        assert_eq!(r.status, 409, "{}", r.text);
        assert!(r.text.contains("attach_interface"), "{}", r.text);
        // stopped is fine
        let r =
            c.nova(Method::POST, &format!("/servers/{second}/action"), &tok, MV, Some(json!({"resume": null}))).await;
        assert_eq!(r.status, 202);
        c.wait_server(&tok, &second, 20, |s| s["status"] == "ACTIVE").await;
        let r =
            c.nova(Method::POST, &format!("/servers/{second}/action"), &tok, MV, Some(json!({"os-stop": null}))).await;
        assert_eq!(r.status, 202);
        c.wait_server(&tok, &second, 20, |s| s["status"] == "SHUTOFF").await;
        let r = attach(&c, &tok, MV, &second, json!({"interfaceAttachment": {"net_id": other}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);

        // detach: the port compute made goes, the user's stays unbound
        let r = c.nova(Method::DELETE, &format!("/servers/{server}/os-interface/{by_net}"), &tok, MV, None).await;
        assert_eq!(r.status, 202, "{}", r.text);
        assert!(r.text.is_empty());
        wait_count(&c, &tok, &server, 4).await;
        assert!(port(&c, &admin, &by_net).await.is_none(), "{backend}: the port compute made is deleted");
        let r = c.nova(Method::DELETE, &format!("/servers/{server}/os-interface/{mine}"), &tok, MV, None).await;
        assert_eq!(r.status, 202, "{}", r.text);
        wait_count(&c, &tok, &server, 3).await;
        let p = port(&c, &admin, &mine).await.expect("the user's port is kept");
        assert_eq!((p["device_id"].as_str(), p["device_owner"].as_str()), (Some(""), Some("")), "{p}");
        assert_eq!(p["binding:host_id"], "");
        let s = wait_addresses(&c, &tok, &server, "private", 2).await;
        assert!(!addresses_of(&s, "private").contains(&"10.0.0.50".to_string()));
        let plugged: BTreeSet<String> = fake(&c).interfaces(&server).into_iter().map(|i| i.port_id).collect();
        assert_eq!(plugged, [auto_port.clone(), on_other.clone()].into());
        // the port is free again: a server can take it
        let r = attach(&c, &tok, MV, &second, json!({"interfaceAttachment": {"port_id": mine}})).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);

        // the instance actions, with their events
        let r = c.nova(Method::GET, &format!("/servers/{server}/os-instance-actions"), &tok, MV, None).await;
        let actions: Vec<&str> =
            r.body["instanceActions"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
        // four attaches done, one refused by the network service (the fixed IP in use)
        assert_eq!(actions.iter().filter(|a| **a == "attach_interface").count(), 5, "{actions:?}");
        assert_eq!(actions.iter().filter(|a| **a == "detach_interface").count(), 2, "{actions:?}");
        let mut done = 0;
        for a in r.body["instanceActions"].as_array().unwrap() {
            if !a["action"].as_str().unwrap().ends_with("_interface") {
                continue;
            }
            if a["message"] == "Error" {
                continue;
            }
            done += 1;
            let rid = a["request_id"].as_str().unwrap();
            let r =
                c.nova(Method::GET, &format!("/servers/{server}/os-instance-actions/{rid}"), &admin, MV, None).await;
            let events = r.body["instanceAction"]["events"].as_array().unwrap();
            let want = format!("compute_{}", a["action"].as_str().unwrap());
            let e = events.iter().find(|e| e["event"] == want.as_str()).unwrap_or_else(|| panic!("{}", r.text));
            assert_eq!(e["result"], "Success", "{}", r.text);
        }
        assert_eq!(done, 6, "{backend}");

        // deleting the servers: ports compute made go, the user's port stays
        for id in [&server, &second] {
            let r = c.nova(Method::DELETE, &format!("/servers/{id}"), &tok, MV, None).await;
            assert_eq!(r.status, 204);
            c.wait_server(&tok, id, 20, |s| s.is_null()).await;
            assert_eq!(ports_of(&c, &admin, id).await, Vec::<Value>::new(), "{backend}: ports of {id} left");
        }
        let p = port(&c, &admin, &mine).await.expect("the user's port outlives the server");
        assert_eq!(p["device_id"], "");
    }
}

#[tokio::test]
async fn a_failed_attach_gives_its_port_back() {
    let (backend, url) = fresh_urls().await.remove(0);
    let c = Cloud::start_compute(backend, &url, &["host-a"], |cfg| cfg.compute.networking = true).await;
    let admin = c.admin_token().await;
    let image = c.boot_image(&admin).await;
    let (_, _, tok) = c.user_with_role(&admin, "member").await;
    let net = network_with_subnet(&c, &tok, "private", "10.0.0.0/24").await;
    let server = boot(&c, &tok, &image, "a", &net).await;
    let r = c.neutron(Method::POST, "/ports", &tok, Some(json!({"port": {"network_id": net}}))).await;
    let mine = r.body["port"]["id"].as_str().unwrap().to_string();

    fake(&c).set_fail_attach_interface(true);
    for body in [json!({"interfaceAttachment": {"net_id": net}}), json!({"interfaceAttachment": {"port_id": mine}})] {
        let r = attach(&c, &tok, MV, &server, body.clone()).await;
        assert_eq!(r.status, 500, "{body}: {}", r.text);
        assert!(r.text.contains("Failed to attach network adapter device"), "{}", r.text);
        assert_eq!(ports_of(&c, &admin, &server).await.len(), 1, "{body}: a port was left");
        assert_eq!(list(&c, &tok, MV, &server).await.len(), 1);
    }
    let p = port(&c, &admin, &mine).await.expect("the user's port is kept");
    assert_eq!((p["device_id"].as_str(), p["binding:host_id"].as_str()), (Some(""), Some("")), "{p}");
    let s = active(&c, &tok, &server).await;
    assert_eq!(addresses_of(&s, "private").len(), 1, "{s}");
    assert!(fake(&c).interfaces(&server).is_empty());
    // the action ends in error
    let r = c.nova(Method::GET, &format!("/servers/{server}/os-instance-actions"), &tok, MV, None).await;
    let a = r.body["instanceActions"].as_array().unwrap().iter().find(|a| a["action"] == "attach_interface").unwrap();
    let rid = a["request_id"].as_str().unwrap();
    let r = c.nova(Method::GET, &format!("/servers/{server}/os-instance-actions/{rid}"), &admin, MV, None).await;
    assert_eq!(r.body["instanceAction"]["events"][0]["result"], "Error", "{}", r.text);

    // and it works again once the host does
    fake(&c).set_fail_attach_interface(false);
    let r = attach(&c, &tok, MV, &server, json!({"interfaceAttachment": {"port_id": mine}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn attaches_at_once_all_end_recorded() {
    let (backend, url) = fresh_urls().await.remove(0);
    let c = Cloud::start_compute(backend, &url, &["host-a"], |cfg| cfg.compute.networking = true).await;
    let admin = c.admin_token().await;
    let image = c.boot_image(&admin).await;
    let (_, _, tok) = c.user_with_role(&admin, "member").await;
    let net = network_with_subnet(&c, &tok, "private", "10.0.0.0/24").await;
    let server = boot(&c, &tok, &image, "a", &net).await;
    let body = json!({"interfaceAttachment": {"net_id": net}});
    let rs = futures::future::join_all((0..6).map(|_| attach(&c, &tok, MV, &server, body.clone()))).await;
    let mut made = BTreeSet::new();
    for r in rs {
        assert_eq!(r.status, 200, "{}", r.text);
        made.insert(r.body["interfaceAttachment"]["port_id"].as_str().unwrap().to_string());
    }
    assert_eq!(made.len(), 6);
    let s = active(&c, &tok, &server).await;
    assert_eq!(addresses_of(&s, "private").len(), 7, "{s}");
    assert_eq!(fake(&c).interfaces(&server).len(), 6);
    // and detaches at once too
    let paths: Vec<String> = made.iter().map(|p| format!("/servers/{server}/os-interface/{p}")).collect();
    let rs = futures::future::join_all(paths.iter().map(|p| c.nova(Method::DELETE, p, &tok, MV, None))).await;
    assert!(rs.iter().all(|r| r.status == 202));
    wait_count(&c, &tok, &server, 1).await;
    wait_addresses(&c, &tok, &server, "private", 1).await;
    assert!(fake(&c).interfaces(&server).is_empty());

    // one free port, two servers at once: one gets it, the other hears it is in use
    let other = boot(&c, &tok, &image, "b", &net).await;
    let r = c.neutron(Method::POST, "/ports", &tok, Some(json!({"port": {"network_id": net}}))).await;
    let mine = r.body["port"]["id"].as_str().unwrap().to_string();
    let body = json!({"interfaceAttachment": {"port_id": mine}});
    let (a, b) = tokio::join!(attach(&c, &tok, MV, &server, body.clone()), attach(&c, &tok, MV, &other, body.clone()));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", a.text, b.text);
    let winner = if a.status == 200 { &server } else { &other };
    let loser = if a.status == 200 { &other } else { &server };
    let p = port(&c, &admin, &mine).await.unwrap();
    assert_eq!(p["device_id"], winner.as_str());
    assert!(list(&c, &tok, MV, winner).await.iter().any(|i| i["port_id"] == mine.as_str()));
    assert_eq!(list(&c, &tok, MV, loser).await.len(), 1);
}
