//! Ports and their hosts' network agents, on every database (Neutron's port
//! status): a port bound to a host is sent to the host's agent, which wires
//! it and reports back over the bus, and the port goes ACTIVE; with no agent
//! it stays DOWN; unbound, moved or administratively down it goes DOWN and
//! the agent unwires it. What the agent is told (addresses, segment, every
//! rule with remote groups resolved), agents reporting over the bus, and a
//! server booted through compute with its port ACTIVE.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use stratus_bus::{Envelope, Handler, Message, RemoteError};
use stratus_network::rpc::{self, AgentHeartbeat, PortBound, PortUnbound, PortWired};
use stratus_testkit::{Cloud, fresh_urls};

const MV: &str = "2.96";

async fn cloud(backend: &'static str, url: &str) -> Cloud {
    let mut c = Cloud::start(backend, url).await;
    c.start_network().await;
    c.start_network_agents(&["compute-1"]).await;
    c
}

async fn network_with_subnet(c: &Cloud, tok: &str, cidr: &str) -> (String, String) {
    let r = c.neutron(Method::POST, "/networks", tok, Some(json!({"network": {"name": "n"}}))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let net = r.body["network"]["id"].as_str().unwrap().to_string();
    let body = json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}});
    let r = c.neutron(Method::POST, "/subnets", tok, Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    (net, r.body["subnet"]["id"].as_str().unwrap().to_string())
}

async fn port(c: &Cloud, tok: &str, id: &str) -> Value {
    let r = c.neutron(Method::GET, &format!("/ports/{id}"), tok, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["port"].clone()
}

/// The port once `done` holds (polled for up to `secs`), else as it is then.
async fn wait_port(c: &Cloud, tok: &str, id: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let mut p = port(c, tok, id).await;
    for _ in 0..secs * 20 {
        if done(&p) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        p = port(c, tok, id).await;
    }
    p
}

async fn put_port(c: &Cloud, tok: &str, id: &str, body: Value) -> Value {
    let r = c.neutron(Method::PUT, &format!("/ports/{id}"), tok, Some(json!({ "port": body }))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["port"].clone()
}

async fn until(secs: u64, f: impl Fn() -> bool) -> bool {
    for _ in 0..secs * 20 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

#[tokio::test]
async fn ports_go_active_when_their_hosts_agent_wires_them() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (net, _) = network_with_subnet(&c, &admin, "10.0.0.0/24").await;
        let active = |p: &Value| p["status"] == "ACTIVE";

        // bound at create: DOWN in the reply, ACTIVE once the agent reported it wired
        let body = json!({"port": {"network_id": net, "binding:host_id": "compute-1"}});
        let r = c.neutron(Method::POST, "/ports", &admin, Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["port"]["status"], "DOWN");
        let p1 = r.body["port"]["id"].as_str().unwrap().to_string();
        let rev = r.body["port"]["revision_number"].as_i64().unwrap();
        let p = wait_port(&c, &admin, &p1, 5, active).await;
        assert_eq!(p["status"], "ACTIVE", "{backend}: {p}");
        assert!(p["revision_number"].as_i64().unwrap() > rev, "a status change is a change: {p}");
        assert!(c.agent("compute-1").wired().ports.contains(&p1));

        // bound to a host with no agent: stays DOWN
        let body = json!({"port": {"network_id": net, "binding:host_id": "no-agent-here"}});
        let r = c.neutron(Method::POST, "/ports", &admin, Some(body)).await;
        let p2 = r.body["port"]["id"].as_str().unwrap().to_string();
        // bound by update (as compute does): ACTIVE
        let r = c.neutron(Method::POST, "/ports", &admin, Some(json!({"port": {"network_id": net}}))).await;
        let p3 = r.body["port"]["id"].as_str().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(port(&c, &admin, &p3).await["status"], "DOWN", "unbound");
        let p = put_port(&c, &admin, &p3, json!({"binding:host_id": "compute-1"})).await;
        assert_eq!(p["binding:host_id"], "compute-1");
        assert_eq!(wait_port(&c, &admin, &p3, 5, active).await["status"], "ACTIVE", "{backend}");
        assert_eq!(port(&c, &admin, &p2).await["status"], "DOWN", "{backend}: no agent, no ACTIVE");

        // an update that does not touch the wiring keeps it ACTIVE
        let p = put_port(&c, &admin, &p3, json!({"name": "renamed"})).await;
        assert_eq!(p["status"], "ACTIVE");

        // administratively down: DOWN, and it stays so; back up: ACTIVE again
        let p = put_port(&c, &admin, &p3, json!({"admin_state_up": false})).await;
        assert_eq!(p["status"], "DOWN", "{p}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(port(&c, &admin, &p3).await["status"], "DOWN", "{backend}: admin down stays DOWN");
        put_port(&c, &admin, &p3, json!({"admin_state_up": true})).await;
        assert_eq!(wait_port(&c, &admin, &p3, 5, active).await["status"], "ACTIVE", "{backend}");

        // unbound (as compute does on delete): DOWN, and the agent unwires it
        let p = put_port(&c, &admin, &p1, json!({"device_id": "", "device_owner": "", "binding:host_id": ""})).await;
        assert_eq!(p["status"], "DOWN", "{p}");
        let agent = c.agent("compute-1");
        assert!(until(5, || !agent.wired().ports.contains(&p1)).await, "{backend}: still wired");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(port(&c, &admin, &p1).await["status"], "DOWN");

        // moved to a host without an agent: DOWN, unwired from the old host
        let p = put_port(&c, &admin, &p3, json!({"binding:host_id": "no-agent-here"})).await;
        assert_eq!(p["status"], "DOWN", "{p}");
        assert!(until(5, || !agent.wired().ports.contains(&p3)).await, "{backend}: still wired");
        // and back: ACTIVE
        put_port(&c, &admin, &p3, json!({"binding:host_id": "compute-1"})).await;
        assert_eq!(wait_port(&c, &admin, &p3, 5, active).await["status"], "ACTIVE", "{backend}");

        // deleted: unwired
        assert!(agent.wired().ports.contains(&p3));
        let r = c.neutron(Method::DELETE, &format!("/ports/{p3}"), &admin, None).await;
        assert_eq!(r.status, 204);
        assert!(until(5, || !agent.wired().ports.contains(&p3)).await, "{backend}: deleted port still wired");
    }
}

/// An agent that records what it is told.
#[derive(Default)]
struct Recorder {
    bound: Mutex<Vec<PortBound>>,
    unbound: Mutex<Vec<PortUnbound>>,
    members: Mutex<Vec<rpc::GroupMembers>>,
}

#[async_trait::async_trait]
impl Handler for Recorder {
    async fn handle(&self, env: Envelope) -> Result<Value, RemoteError> {
        match env.name.as_str() {
            PortBound::NAME => self.bound.lock().unwrap().push(env.decode()?),
            PortUnbound::NAME => self.unbound.lock().unwrap().push(env.decode()?),
            rpc::GroupMembers::NAME => self.members.lock().unwrap().push(env.decode()?),
            _ => {}
        }
        Ok(Value::Null)
    }
}

#[tokio::test]
async fn the_agent_is_told_what_to_wire_and_reports_over_the_bus() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (net, subnet) = network_with_subnet(&c, &admin, "10.1.0.0/24").await;
        let network = c.neutron(Method::GET, &format!("/networks/{net}"), &admin, None).await.body["network"].clone();
        let svc = c.network.clone().unwrap();
        let bus = svc.bus().unwrap().clone();
        let rec = Arc::new(Recorder::default());
        let _serving = bus.serve(&rpc::agent_topic("rec-host"), rec.clone()).await.unwrap();

        // a group admitting its own members on 22, and another port in it
        let r =
            c.neutron(Method::POST, "/security-groups", &admin, Some(json!({"security_group": {"name": "g"}}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let sg = r.body["security_group"]["id"].as_str().unwrap().to_string();
        let rule = json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "ethertype": "IPv4",
            "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_group_id": sg}});
        let r = c.neutron(Method::POST, "/security-group-rules", &admin, Some(rule)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let rule_id = r.body["security_group_rule"]["id"].as_str().unwrap().to_string();
        let body =
            json!({"port": {"network_id": net, "security_groups": [sg], "fixed_ips": [{"ip_address": "10.1.0.50"}]}});
        let r = c.neutron(Method::POST, "/ports", &admin, Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);

        let body = json!({"port": {"network_id": net, "security_groups": [sg], "binding:host_id": "rec-host",
            "fixed_ips": [{"ip_address": "10.1.0.60"}], "device_owner": "compute:nova", "device_id": "vm-1",
            "allowed_address_pairs": [{"ip_address": "10.1.0.200"}]}});
        let r = c.neutron(Method::POST, "/ports", &admin, Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let p = r.body["port"].clone();
        let id = p["id"].as_str().unwrap().to_string();
        assert!(until(5, || !rec.bound.lock().unwrap().is_empty()).await, "{backend}: nothing sent");
        let m = rec.bound.lock().unwrap()[0].clone();
        assert_eq!(m.port_id, id);
        assert_eq!(m.host, "rec-host");
        assert_eq!(m.mac_address, p["mac_address"].as_str().unwrap());
        assert_eq!(m.fixed_ips, vec![rpc::FixedIp { subnet_id: subnet.clone(), ip_address: "10.1.0.60".into() }]);
        assert_eq!(m.segment.network_id, net);
        assert_eq!(m.segment.network_type, network["provider:network_type"].as_str().unwrap(), "{network}");
        assert_eq!(m.segment.segmentation_id, network["provider:segmentation_id"].as_i64());
        assert_eq!(m.segment.physical_network, network["provider:physical_network"].as_str().unwrap_or(""));
        assert_eq!(m.segment.mtu, network["mtu"].as_i64().unwrap());
        assert!(m.admin_state_up && m.port_security_enabled);
        assert_eq!((m.device_owner.as_str(), m.device_id.as_str()), ("compute:nova", "vm-1"));
        assert_eq!(m.allowed_address_pairs[0]["ip_address"], "10.1.0.200");
        assert_eq!(m.allowed_address_pairs[0]["mac_address"], p["mac_address"]);
        let remote = m.security_group_rules.iter().find(|r| r.remote_group_id.as_deref() == Some(&sg)).unwrap();
        assert_eq!(remote.protocol.as_deref(), Some("tcp"));
        assert_eq!((remote.port_range_min, remote.port_range_max), (Some(22), Some(22)));
        assert_eq!(remote.remote_group_ips, vec!["10.1.0.50".to_string(), "10.1.0.60".to_string()]);
        // every rule of the group: the default egress ones too
        let r = c.neutron(Method::GET, &format!("/security-group-rules?security_group_id={sg}"), &admin, None).await;
        assert_eq!(m.security_group_rules.len(), r.body["security_group_rules"].as_array().unwrap().len());
        assert!(r.body["security_group_rules"].as_array().unwrap().iter().any(|r| r["id"] == rule_id.as_str()));

        // the recorder did not report: still DOWN; a report for another host changes nothing
        let wired = |host: &str| PortWired { port_id: id.clone(), host: host.into() };
        bus.cast(rpc::PLUGIN, &wired("compute-1"), "req-t").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(port(&c, &admin, &id).await["status"], "DOWN", "{backend}");
        bus.cast(rpc::PLUGIN, &wired("rec-host"), "req-t").await.unwrap();
        let got = wait_port(&c, &admin, &id, 5, |p| p["status"] == "ACTIVE").await;
        assert_eq!(got["status"], "ACTIVE", "{backend}");
        // a repeated report is no change
        let rev = got["revision_number"].as_i64().unwrap();
        bus.cast(rpc::PLUGIN, &wired("rec-host"), "req-t").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(port(&c, &admin, &id).await["revision_number"].as_i64().unwrap(), rev);

        // deleted: the host is told
        let r = c.neutron(Method::DELETE, &format!("/ports/{id}"), &admin, None).await;
        assert_eq!(r.status, 204);
        assert!(until(5, || !rec.unbound.lock().unwrap().is_empty()).await, "{backend}: no unbind sent");
        assert_eq!(rec.unbound.lock().unwrap()[0], PortUnbound { port_id: id.clone(), network_id: net.clone() });
        // a report for a port gone is ignored
        bus.cast(rpc::PLUGIN, &wired("rec-host"), "req-t").await.unwrap();

        // an agent in another process reports over the bus
        let hb = AgentHeartbeat {
            host: "remote-1".into(),
            binary: "neutron-linuxbridge-agent".into(),
            agent_type: "Linux bridge agent".into(),
            topic: "N/A".into(),
            configurations: json!({"devices": 0}),
            availability_zone: None,
            start_flag: true,
        };
        let reply: Value = bus.call(rpc::PLUGIN, &hb, "req-t", Duration::from_secs(5)).await.unwrap();
        assert!(reply["id"].is_string(), "{reply}");
        let r = c.neutron(Method::GET, "/agents?host=remote-1", &admin, None).await;
        let agents = r.body["agents"].as_array().unwrap();
        assert_eq!(agents.len(), 1, "{backend}: {}", r.text);
        assert_eq!(agents[0]["agent_type"], "Linux bridge agent");
        assert_eq!(agents[0]["alive"], true);
    }
}

#[tokio::test]
async fn a_server_booted_with_networking_has_its_port_active() {
    for (backend, url) in fresh_urls().await {
        let c = Cloud::start_compute(backend, &url, &["compute-1"], |cfg| cfg.compute.networking = true).await;
        let admin = c.admin_token().await;
        let image = c.boot_image(&admin).await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let (net, _) = network_with_subnet(&c, &tok, "10.2.0.0/24").await;
        let body = json!({"server": {"name": "a", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}]}});
        let r = c.nova(Method::POST, "/servers", &tok, MV, Some(body)).await;
        assert_eq!(r.status, 202, "{backend}: {}", r.text);
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        let s = c.wait_server(&tok, &id, 30, |s| s["status"] == "ACTIVE" || s["status"] == "ERROR").await;
        assert_eq!(s["status"], "ACTIVE", "{backend}: {s}");
        let r = c.neutron(Method::GET, &format!("/ports?device_id={id}"), &admin, None).await;
        let port_id = r.body["ports"][0]["id"].as_str().unwrap().to_string();
        let p = wait_port(&c, &admin, &port_id, 5, |p| p["status"] == "ACTIVE").await;
        assert_eq!(p["status"], "ACTIVE", "{backend}: {p}");
        assert_eq!(p["binding:host_id"], "compute-1");
        assert!(c.agent("compute-1").wired().ports.contains(&port_id));

        // deleted: the port goes (compute deletes the ports it made) and is unwired
        let r = c.nova(Method::DELETE, &format!("/servers/{id}"), &tok, MV, None).await;
        assert_eq!(r.status, 204);
        c.wait_server(&tok, &id, 20, |s| s.is_null()).await;
        let agent = c.agent("compute-1");
        assert!(until(5, || !agent.wired().ports.contains(&port_id)).await, "{backend}: still wired");
    }
}

/// An L3 agent that records what it is told.
#[derive(Default)]
struct L3Recorder {
    routers: Mutex<Vec<rpc::RouterUpdated>>,
    fips: Mutex<Vec<rpc::FloatingIpChanged>>,
}

#[async_trait::async_trait]
impl Handler for L3Recorder {
    async fn handle(&self, env: Envelope) -> Result<Value, RemoteError> {
        match env.name.as_str() {
            rpc::RouterUpdated::NAME => self.routers.lock().unwrap().push(env.decode()?),
            rpc::FloatingIpChanged::NAME => self.fips.lock().unwrap().push(env.decode()?),
            _ => {}
        }
        Ok(Value::Null)
    }
}

async fn post(c: &Cloud, tok: &str, path: &str, body: Value) -> Value {
    let r = c.neutron(Method::POST, path, tok, Some(body)).await;
    assert_eq!(r.status, 201, "{path}: {}", r.text);
    r.body
}

async fn put(c: &Cloud, tok: &str, path: &str, body: Value) -> Value {
    let r = c.neutron(Method::PUT, path, tok, Some(body)).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.body
}

async fn l3_agent_id(c: &Cloud, tok: &str, host: &str) -> String {
    let r = c.neutron(Method::GET, &format!("/agents?host={host}&agent_type=L3%20agent"), tok, None).await;
    r.body["agents"][0]["id"].as_str().unwrap().to_string()
}

/// `GET /routers/{id}/l3-agents`
async fn hosting(c: &Cloud, tok: &str, router: &str) -> Vec<Value> {
    let r = c.neutron(Method::GET, &format!("/routers/{router}/l3-agents"), tok, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["agents"].as_array().unwrap().clone()
}

#[tokio::test]
async fn routers_are_hosted_by_l3_agents_which_are_told_of_their_changes() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let svc = c.network.clone().unwrap();
        let agent = c.agent("compute-1");
        let ext = post(&c, &admin, "/networks", json!({"network": {"name": "ext", "router:external": true}})).await;
        let ext = ext["network"]["id"].as_str().unwrap().to_string();
        let body = json!({"subnet": {"network_id": ext, "cidr": "172.24.4.0/24", "ip_version": 4}});
        let ext_subnet = post(&c, &admin, "/subnets", body).await["subnet"]["id"].as_str().unwrap().to_string();
        let (net_a, sub_a) = network_with_subnet(&c, &admin, "10.3.0.0/24").await;
        let (_, sub_b) = network_with_subnet(&c, &admin, "10.4.0.0/24").await;
        let gw = json!({"network_id": ext});

        // the only L3 agent hosts the first router, and is told of it
        let r1 = post(&c, &admin, "/routers", json!({"router": {"name": "r1", "external_gateway_info": gw}})).await;
        let r1 = r1["router"]["id"].as_str().unwrap().to_string();
        assert!(until(5, || agent.wired().routers.contains(&r1)).await, "{backend}: r1 not on compute-1");

        // a second L3 agent, with no router: it gets the next one (the fewest routers)
        let bus = svc.bus().unwrap().clone();
        let rec = Arc::new(L3Recorder::default());
        let _serving = bus.serve(&rpc::agent_topic("rec-l3"), rec.clone()).await.unwrap();
        stratus_network::store::agents::report(
            &svc.db,
            "rec-l3",
            "neutron-l3-agent",
            "L3 agent",
            "l3_agent",
            &json!({}),
            Some("nova"),
        )
        .await
        .unwrap();
        let r2 = post(&c, &admin, "/routers", json!({"router": {"name": "r2", "external_gateway_info": gw}})).await;
        let r2 = r2["router"]["id"].as_str().unwrap().to_string();
        let last = |rec: &L3Recorder| rec.routers.lock().unwrap().last().cloned();
        assert!(until(5, || last(&rec).is_some()).await, "{backend}: r2 not sent to rec-l3");
        let m = last(&rec).unwrap();
        assert_eq!(m.router_id, r2);
        assert!(!m.deleted && m.admin_state_up && m.enable_snat && m.interfaces.is_empty());
        let gwp = m.gateway.expect("gateway");
        assert_eq!(gwp.fixed_ips[0].subnet_id, ext_subnet);
        assert_eq!(gwp.cidrs, vec!["172.24.4.0/24".to_string()]);
        assert_eq!(gwp.segment.network_id, ext);
        assert!(!agent.wired().routers.contains(&r2), "{backend}: r2 on compute-1 too");

        // an interface: the full state again, with it
        let path = format!("/routers/{r2}/add_router_interface");
        let added = put(&c, &admin, &path, json!({"subnet_id": sub_b})).await;
        let has_if = |rec: &L3Recorder| last(rec).is_some_and(|m| m.interfaces.len() == 1);
        assert!(until(5, || has_if(&rec)).await, "{backend}: interface not sent");
        let m = last(&rec).unwrap();
        assert!(m.gateway.is_some(), "the gateway is still there");
        assert_eq!(m.interfaces[0].port_id, added["port_id"].as_str().unwrap());
        assert_eq!(m.interfaces[0].fixed_ips[0].ip_address, "10.4.0.1");
        assert_eq!(m.interfaces[0].cidrs, vec!["10.4.0.0/24".to_string()]);
        // an update: admin state and extra routes
        let body = json!({"router": {"admin_state_up": false, "routes": [{"destination": "10.9.0.0/16", "nexthop": "10.4.0.5"}]}});
        put(&c, &admin, &format!("/routers/{r2}"), body).await;
        assert!(until(5, || last(&rec).is_some_and(|m| !m.admin_state_up && m.routes.len() == 1)).await, "{backend}");
        assert_eq!(last(&rec).unwrap().routes[0]["nexthop"], "10.4.0.5");
        put(&c, &admin, &format!("/routers/{r2}"), json!({"router": {"routes": []}})).await;
        assert!(until(5, || last(&rec).is_some_and(|m| m.routes.is_empty())).await, "{backend}");
        // removed: the state without it
        put(&c, &admin, &format!("/routers/{r2}/remove_router_interface"), json!({"subnet_id": sub_b})).await;
        assert!(until(5, || last(&rec).is_some_and(|m| m.interfaces.is_empty())).await, "{backend}");
        // deleted
        let r = c.neutron(Method::DELETE, &format!("/routers/{r2}"), &admin, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert!(until(5, || last(&rec).is_some_and(|m| m.deleted && m.router_id == r2)).await, "{backend}");

        // the l3_agent_scheduler API: who hosts r1, what compute-1 hosts, an operator's moves
        let (l3, other_l3) = (l3_agent_id(&c, &admin, "compute-1").await, l3_agent_id(&c, &admin, "rec-l3").await);
        let a = hosting(&c, &admin, &r1).await;
        assert_eq!(a.len(), 1, "{backend}: {a:?}");
        assert_eq!((a[0]["host"].as_str(), a[0]["agent_type"].as_str()), (Some("compute-1"), Some("L3 agent")));
        let r = c.neutron(Method::GET, &format!("/agents/{l3}/l3-routers"), &admin, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let ids: Vec<&str> = r.body["routers"].as_array().unwrap().iter().filter_map(|r| r["id"].as_str()).collect();
        assert_eq!(ids, vec![r1.as_str()], "{backend}");
        let (_, _, member) = c.user_with_role(&admin, "member").await;
        let r = c.neutron(Method::GET, &format!("/routers/{r1}/l3-agents"), &member, None).await;
        assert_eq!(r.status, 403, "{}", r.text);
        // hosted by a live agent: not by another one too
        let body = json!({"router_id": r1});
        let r = c.neutron(Method::POST, &format!("/agents/{other_l3}/l3-routers"), &admin, Some(body.clone())).await;
        assert_eq!(r.status, 409, "{}", r.text);
        let r = c.neutron(Method::DELETE, &format!("/agents/{other_l3}/l3-routers/{r1}"), &admin, None).await;
        assert_eq!(r.status, 409, "{}", r.text);
        // taken off its agent: unwired, hosted by none; put back: wired again
        let r = c.neutron(Method::DELETE, &format!("/agents/{l3}/l3-routers/{r1}"), &admin, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert!(until(5, || !agent.wired().routers.contains(&r1)).await, "{backend}: r1 still wired");
        assert!(hosting(&c, &admin, &r1).await.is_empty());
        let r = c.neutron(Method::POST, &format!("/agents/{l3}/l3-routers"), &admin, Some(body.clone())).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert!(until(5, || agent.wired().routers.contains(&r1)).await, "{backend}: r1 not rewired");
        let r = c.neutron(Method::POST, &format!("/agents/{l3}/l3-routers"), &admin, Some(body)).await;
        assert_eq!(r.status, 201, "{backend}: again, no change: {}", r.text);

        // floating IPs through r1 reach compute-1's agent
        put(&c, &admin, &format!("/routers/{r1}/add_router_interface"), json!({"subnet_id": sub_a})).await;
        let body = json!({"port": {"network_id": net_a, "fixed_ips": [{"ip_address": "10.3.0.20"}]}});
        let vm = post(&c, &admin, "/ports", body).await["port"]["id"].as_str().unwrap().to_string();
        let body = json!({"floatingip": {"floating_network_id": ext, "port_id": vm}});
        let fip = post(&c, &admin, "/floatingips", body).await["floatingip"]["id"].as_str().unwrap().to_string();
        assert!(until(5, || agent.wired().floating_ips.contains(&fip)).await, "{backend}: fip not wired");
        put(&c, &admin, &format!("/floatingips/{fip}"), json!({"floatingip": {"port_id": null}})).await;
        assert!(until(5, || !agent.wired().floating_ips.contains(&fip)).await, "{backend}: fip still wired");
        put(&c, &admin, &format!("/floatingips/{fip}"), json!({"floatingip": {"port_id": vm}})).await;
        assert!(until(5, || agent.wired().floating_ips.contains(&fip)).await, "{backend}: fip not rewired");
        // its port deleted: disassociated
        let r = c.neutron(Method::DELETE, &format!("/ports/{vm}"), &admin, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert!(until(5, || !agent.wired().floating_ips.contains(&fip)).await, "{backend}: fip of a gone port");
        let r = c.neutron(Method::DELETE, &format!("/floatingips/{fip}"), &admin, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        put(&c, &admin, &format!("/routers/{r1}/remove_router_interface"), json!({"subnet_id": sub_a})).await;
        let r = c.neutron(Method::DELETE, &format!("/routers/{r1}"), &admin, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert!(until(5, || !agent.wired().routers.contains(&r1)).await, "{backend}: r1 still wired");
        assert!(rec.fips.lock().unwrap().is_empty(), "{backend}: r1's floating IP went to rec-l3");
    }
}

#[tokio::test]
async fn security_group_changes_reach_the_agents_of_bound_ports() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (net, _) = network_with_subnet(&c, &admin, "10.5.0.0/24").await;
        let svc = c.network.clone().unwrap();
        let bus = svc.bus().unwrap().clone();
        let rec = Arc::new(Recorder::default());
        let _serving = bus.serve(&rpc::agent_topic("rec-host"), rec.clone()).await.unwrap();
        let sg = post(&c, &admin, "/security-groups", json!({"security_group": {"name": "web"}})).await;
        let sg = sg["security_group"]["id"].as_str().unwrap().to_string();
        let body = json!({"port": {"network_id": net, "security_groups": [sg], "binding:host_id": "rec-host",
            "fixed_ips": [{"ip_address": "10.5.0.10"}]}});
        let port_id = post(&c, &admin, "/ports", body).await["port"]["id"].as_str().unwrap().to_string();
        let last = |rec: &Recorder| rec.bound.lock().unwrap().last().cloned();
        assert!(until(5, || last(&rec).is_some()).await, "{backend}: not bound");
        let http = |m: &PortBound| m.security_group_rules.iter().any(|r| r.port_range_min == Some(80));

        // a rule added to its group: sent again, with the rule
        let rule = json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress",
            "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80}});
        let rule = post(&c, &admin, "/security-group-rules", rule).await;
        let rule_id = rule["security_group_rule"]["id"].as_str().unwrap().to_string();
        assert!(until(5, || last(&rec).is_some_and(|m| http(&m))).await, "{backend}: rule not sent");
        assert_eq!(last(&rec).unwrap().port_id, port_id);

        // a rule admitting the group's members; then a new member: its address reaches the port
        let rule = json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress",
            "ethertype": "IPv4", "remote_group_id": sg}});
        post(&c, &admin, "/security-group-rules", rule).await;
        let members = |m: &PortBound| {
            m.security_group_rules.iter().find(|r| r.remote_group_id.is_some()).map(|r| r.remote_group_ips.clone())
        };
        assert!(
            until(5, || last(&rec).is_some_and(|m| members(&m) == Some(vec!["10.5.0.10".into()]))).await,
            "{backend}"
        );
        let body =
            json!({"port": {"network_id": net, "security_groups": [sg], "fixed_ips": [{"ip_address": "10.5.0.11"}]}});
        let other = post(&c, &admin, "/ports", body).await["port"]["id"].as_str().unwrap().to_string();
        // a new member: the group's members, once to the host (not the admitting port again)
        let sent_bound = rec.bound.lock().unwrap().len();
        let set = |rec: &Recorder| {
            rec.members.lock().unwrap().iter().rev().find(|m| m.group_id == sg).map(|m| m.ipv4.clone())
        };
        let both = Some(vec!["10.5.0.10".to_string(), "10.5.0.11".to_string()]);
        assert!(until(5, || set(&rec) == both).await, "{backend}: new member not sent");
        // it leaves the group: the set without it
        put(&c, &admin, &format!("/ports/{other}"), json!({"port": {"security_groups": []}})).await;
        let alone = Some(vec!["10.5.0.10".to_string()]);
        assert!(until(5, || set(&rec) == alone).await, "{backend}: member left");
        assert_eq!(rec.bound.lock().unwrap().len(), sent_bound, "{backend}: member changes re-sent the port");

        // the rule deleted: sent again without it
        let r = c.neutron(Method::DELETE, &format!("/security-group-rules/{rule_id}"), &admin, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert!(until(5, || last(&rec).is_some_and(|m| !http(&m))).await, "{backend}: rule removal not sent");
    }
}
