//! RBAC policies and agents of the network API (Neutron v2.0) on every
//! database: sharing a network with one project or with everyone, external
//! access, duplicates, owners only, update and delete, the `shared` flag as a
//! `*` policy, the quota; agents reporting, listed, going dead after
//! `agent_down_time`, updated and deleted, availability zones; the fake agent
//! heartbeating and answering over the in-process bus.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use stratus_network::agent::{FakeAgent, FakeAgentOptions, PortStatusSink};
use stratus_network::rpc::{self, PortBound, PortWired, RouterUpdated, Segment};
use stratus_testkit::{Cloud, Resp, fresh_urls};

async fn cloud(backend: &'static str, url: &str, down_time: u64) -> Cloud {
    let mut c = Cloud::start_with(backend, url, |cfg| cfg.network.agent_down_time = down_time).await;
    c.start_network().await;
    c
}

fn ids(v: &Value, coll: &str) -> Vec<String> {
    v[coll].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect()
}

async fn sees(c: &Cloud, tok: &str, net: &str) -> bool {
    let r = c.neutron(Method::GET, "/networks", tok, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let listed = ids(&r.body, "networks").contains(&net.to_string());
    let shown = c.neutron(Method::GET, &format!("/networks/{net}"), tok, None).await.status == 200;
    assert_eq!(listed, shown, "list and show disagree on {net}");
    listed
}

async fn policy(c: &Cloud, tok: &str, net: &str, action: &str, target: &str) -> Resp {
    c
        .neutron(
            Method::POST,
            "/rbac-policies",
            tok,
            Some(json!({"rbac_policy": {"object_type": "network", "object_id": net, "action": action, "target_tenant": target}})),
        )
        .await
}

async fn policies_on(c: &Cloud, admin: &str, net: &str) -> Vec<Value> {
    let r = c.neutron(Method::GET, &format!("/rbac-policies?object_id={net}"), admin, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["rbac_policies"].as_array().unwrap().clone()
}

#[tokio::test]
async fn rbac_policies_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url, 75).await;
        let admin = c.admin_token().await;
        let (pa, _, ta) = c.user_with_role(&admin, "member").await;
        let (pb, _, tb) = c.user_with_role(&admin, "member").await;
        let (pc, _, tc) = c.user_with_role(&admin, "member").await;

        let r = c.neutron(Method::GET, "/extensions/rbac-policies", &ta, None).await;
        assert_eq!(r.status, 200);
        let r = c.neutron(Method::POST, "/networks", &ta, Some(json!({"network": {"name": "a-net"}}))).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let net = r.body["network"]["id"].as_str().unwrap().to_string();
        assert!(!sees(&c, &tb, &net).await);

        // share with B only
        let r = policy(&c, &ta, &net, "access_as_shared", &pb).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let p1 = r.body["rbac_policy"].clone();
        assert_eq!(p1["object_type"], "network");
        assert_eq!(p1["object_id"], net.as_str());
        assert_eq!(p1["action"], "access_as_shared");
        assert_eq!(p1["target_tenant"], pb.as_str());
        assert_eq!(p1["project_id"], pa.as_str());
        assert_eq!(p1["tenant_id"], pa.as_str());
        let p1id = p1["id"].as_str().unwrap().to_string();
        assert!(sees(&c, &tb, &net).await, "{backend}");
        assert!(!sees(&c, &tc, &net).await, "{backend}");
        // `shared` as each project sees it
        let r = c.neutron(Method::GET, &format!("/networks/{net}"), &tb, None).await;
        assert_eq!(r.body["network"]["shared"], true);
        let r = c.neutron(Method::GET, &format!("/networks/{net}"), &ta, None).await;
        assert_eq!(r.body["network"]["shared"], false);
        let r = c.neutron(Method::GET, "/networks?shared=true", &tb, None).await;
        assert!(ids(&r.body, "networks").contains(&net), "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, "/networks?shared=true", &ta, None).await;
        assert!(!ids(&r.body, "networks").contains(&net), "{backend}: {}", r.text);

        // duplicates, wildcards by members, non-owners, bad input
        let r = policy(&c, &ta, &net, "access_as_shared", &pb).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(r.body["NeutronError"]["type"], "DuplicateRbacPolicy");
        let r = policy(&c, &ta, &net, "access_as_shared", "*").await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        let r = policy(&c, &tb, &net, "access_as_shared", &pc).await;
        assert_eq!(r.status, 400, "{backend}: a project the network is shared with cannot share it: {}", r.text);
        let r = policy(&c, &tc, &net, "access_as_shared", &pc).await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        let r = policy(&c, &ta, &net, "access_as_nothing", &pc).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = c
            .neutron(
                Method::POST,
                "/rbac-policies",
                &ta,
                Some(json!({"rbac_policy": {"object_type": "thing", "object_id": net, "action": "access_as_shared", "target_tenant": pc}})),
            )
            .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = c
            .neutron(
                Method::POST,
                "/rbac-policies",
                &ta,
                Some(
                    json!({"rbac_policy": {"object_type": "network", "object_id": net, "action": "access_as_shared"}}),
                ),
            )
            .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);

        // owners see their policies; the target does not
        let r = c.neutron(Method::GET, "/rbac-policies", &ta, None).await;
        assert_eq!(ids(&r.body, "rbac_policies"), vec![p1id.clone()], "{backend}");
        let r = c.neutron(Method::GET, "/rbac-policies", &tb, None).await;
        assert!(ids(&r.body, "rbac_policies").is_empty(), "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &format!("/rbac-policies/{p1id}"), &tb, None).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["NeutronError"]["type"], "RbacPolicyNotFound");
        let r = c.neutron(Method::GET, &format!("/rbac-policies/{p1id}?fields=target_tenant"), &ta, None).await;
        assert_eq!(r.body["rbac_policy"], json!({"target_tenant": pb}), "{backend}");
        let r = c.neutron(Method::GET, &format!("/rbac-policies?target_tenant={pb}"), &admin, None).await;
        assert_eq!(ids(&r.body, "rbac_policies"), vec![p1id.clone()], "{backend}");

        // update the target: C gains, B loses; only the target changes
        let r = c
            .neutron(
                Method::PUT,
                &format!("/rbac-policies/{p1id}"),
                &ta,
                Some(json!({"rbac_policy": {"target_tenant": pc}})),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["rbac_policy"]["target_tenant"], pc.as_str());
        assert!(sees(&c, &tc, &net).await);
        assert!(!sees(&c, &tb, &net).await);
        let r = c
            .neutron(Method::PUT, &format!("/rbac-policies/{p1id}"), &ta, Some(json!({"rbac_policy": {"action": "x"}})))
            .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = c
            .neutron(
                Method::PUT,
                &format!("/rbac-policies/{p1id}"),
                &ta,
                Some(json!({"rbac_policy": {"target_tenant": "*"}})),
            )
            .await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);
        let r = c.neutron(Method::DELETE, &format!("/rbac-policies/{p1id}"), &tb, None).await;
        assert_eq!(r.status, 404);
        let r = c.neutron(Method::DELETE, &format!("/rbac-policies/{p1id}"), &ta, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        assert!(!sees(&c, &tc, &net).await);
        let r = c.neutron(Method::GET, &format!("/rbac-policies/{p1id}"), &ta, None).await;
        assert_eq!(r.status, 404);

        // an admin shares with everyone: the network is shared for all
        let r = policy(&c, &admin, &net, "access_as_shared", "*").await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let star = r.body["rbac_policy"]["id"].as_str().unwrap().to_string();
        for t in [&tb, &tc] {
            assert!(sees(&c, t, &net).await);
        }
        let r = c.neutron(Method::GET, &format!("/networks/{net}"), &ta, None).await;
        assert_eq!(r.body["network"]["shared"], true, "{backend}");
        let r = c.neutron(Method::DELETE, &format!("/rbac-policies/{star}"), &admin, None).await;
        assert_eq!(r.status, 204);
        let r = c.neutron(Method::GET, &format!("/networks/{net}"), &ta, None).await;
        assert_eq!(r.body["network"]["shared"], false, "{backend}");
        assert!(!sees(&c, &tb, &net).await);

        // `shared: true` on a network is a `*` access_as_shared policy, and back
        let r =
            c.neutron(Method::POST, "/networks", &admin, Some(json!({"network": {"name": "s", "shared": true}}))).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let s = r.body["network"]["id"].as_str().unwrap().to_string();
        let ps = policies_on(&c, &admin, &s).await;
        assert_eq!(ps.len(), 1, "{backend}: {ps:?}");
        assert_eq!(ps[0]["target_tenant"], "*");
        assert_eq!(ps[0]["action"], "access_as_shared");
        assert!(sees(&c, &tb, &s).await);
        let r = c
            .neutron(Method::PUT, &format!("/networks/{s}"), &admin, Some(json!({"network": {"shared": false}})))
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["network"]["shared"], false);
        assert!(policies_on(&c, &admin, &s).await.is_empty());
        assert!(!sees(&c, &tb, &s).await);
        let r =
            c.neutron(Method::PUT, &format!("/networks/{s}"), &admin, Some(json!({"network": {"shared": true}}))).await;
        assert_eq!(r.body["network"]["shared"], true);
        assert_eq!(policies_on(&c, &admin, &s).await.len(), 1);
        assert!(sees(&c, &tb, &s).await);

        // external: to everyone by `router:external`, or to one project by a policy
        let r = c
            .neutron(
                Method::POST,
                "/networks",
                &admin,
                Some(json!({"network": {"name": "ext", "router:external": true}})),
            )
            .await;
        let ext = r.body["network"]["id"].as_str().unwrap().to_string();
        let ps = policies_on(&c, &admin, &ext).await;
        assert_eq!(ps.len(), 1, "{backend}: {ps:?}");
        assert_eq!(ps[0]["action"], "access_as_external");
        assert!(sees(&c, &tb, &ext).await);
        let r = c.neutron(Method::POST, "/networks", &admin, Some(json!({"network": {"name": "ext-b"}}))).await;
        let ext_b = r.body["network"]["id"].as_str().unwrap().to_string();
        let r = policy(&c, &admin, &ext_b, "access_as_external", &pb).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert!(sees(&c, &tb, &ext_b).await);
        assert!(!sees(&c, &tc, &ext_b).await);
        let r = c.neutron(Method::GET, &format!("/networks/{ext_b}"), &tb, None).await;
        assert_eq!(r.body["network"]["router:external"], true, "{backend}");
        assert_eq!(r.body["network"]["shared"], false, "{backend}");

        // the quota counts policies; deleting the network deletes its policies
        let r =
            c.neutron(Method::PUT, &format!("/quotas/{pa}"), &admin, Some(json!({"quota": {"rbac_policy": 1}}))).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let r = policy(&c, &ta, &net, "access_as_shared", &pb).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let r = policy(&c, &ta, &net, "access_as_shared", &pc).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(r.body["NeutronError"]["type"], "OverQuota");
        let r = c.neutron(Method::DELETE, &format!("/networks/{net}"), &ta, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        assert!(policies_on(&c, &admin, &net).await.is_empty());
    }
}

#[tokio::test]
async fn policies_and_sharing_in_use_by_other_projects_ports_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url, 75).await;
        let admin = c.admin_token().await;
        let (_pa, _, ta) = c.user_with_role(&admin, "member").await;
        let (pb, _, tb) = c.user_with_role(&admin, "member").await;
        let r = c.neutron(Method::POST, "/networks", &ta, Some(json!({"network": {"name": "in-use"}}))).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let net = r.body["network"]["id"].as_str().unwrap().to_string();
        let r = policy(&c, &ta, &net, "access_as_shared", &pb).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let to_b = r.body["rbac_policy"]["id"].as_str().unwrap().to_string();
        // B puts a port on A's network
        let r = c.neutron(Method::POST, "/ports", &tb, Some(json!({"port": {"network_id": net}}))).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let port = r.body["port"]["id"].as_str().unwrap().to_string();
        // B's only grant cannot go while B's port is there
        let r = c.neutron(Method::DELETE, &format!("/rbac-policies/{to_b}"), &ta, None).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(r.body["NeutronError"]["type"], "RbacPolicyInUse", "{backend}: {}", r.text);
        // nor be retargeted away from B
        let r = c
            .neutron(
                Method::PUT,
                &format!("/rbac-policies/{to_b}"),
                &ta,
                Some(json!({"rbac_policy": {"target_tenant": "another-project"}})),
            )
            .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        // shared to everyone as well: B keeps access through it, so B's own policy may go
        let r = c
            .neutron(Method::PUT, &format!("/networks/{net}"), &admin, Some(json!({"network": {"shared": true}})))
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let r = c.neutron(Method::DELETE, &format!("/rbac-policies/{to_b}"), &ta, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        // now sharing is what B's port depends on
        let r = c
            .neutron(Method::PUT, &format!("/networks/{net}"), &admin, Some(json!({"network": {"shared": false}})))
            .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(r.body["NeutronError"]["type"], "InvalidSharedSetting", "{backend}: {}", r.text);
        // once the port is gone, nothing is in use
        let r = c.neutron(Method::DELETE, &format!("/ports/{port}"), &tb, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = c
            .neutron(Method::PUT, &format!("/networks/{net}"), &admin, Some(json!({"network": {"shared": false}})))
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["network"]["shared"], false);
    }
}

#[tokio::test]
async fn agents_report_list_go_dead_and_update_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url, 1).await;
        let db = c.network.as_ref().unwrap().db.clone();
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        use stratus_network::store::agents::report;

        let conf = json!({"networks": 0});
        let a = report(&db, "h1", "neutron-dhcp-agent", "DHCP agent", "dhcp_agent", &conf, Some("nova")).await.unwrap();
        let again =
            report(&db, "h1", "neutron-dhcp-agent", "DHCP agent", "dhcp_agent", &conf, Some("nova")).await.unwrap();
        assert_eq!(a.id, again.id);
        // racing first reports make one agent
        let racers = (0..6).map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                report(&db, "h2", "neutron-l3-agent", "L3 agent", "l3_agent", &json!({}), Some("nova"))
                    .await
                    .unwrap()
                    .id
            })
        });
        let mut l3_ids: Vec<String> = Vec::new();
        for r in racers {
            l3_ids.push(r.await.unwrap());
        }
        l3_ids.dedup();
        assert_eq!(l3_ids.len(), 1, "{backend}: {l3_ids:?}");
        let l3 = l3_ids[0].clone();

        let r = c.neutron(Method::GET, "/agents", &admin, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let agents = r.body["agents"].as_array().unwrap();
        assert_eq!(agents.len(), 2, "{backend}: {}", r.text);
        let dhcp = agents.iter().find(|x| x["id"] == a.id.as_str()).unwrap();
        assert_eq!(dhcp["agent_type"], "DHCP agent");
        assert_eq!(dhcp["binary"], "neutron-dhcp-agent");
        assert_eq!(dhcp["host"], "h1");
        assert_eq!(dhcp["topic"], "dhcp_agent");
        assert_eq!(dhcp["admin_state_up"], true);
        assert_eq!(dhcp["alive"], true, "{backend}: {dhcp}");
        assert_eq!(dhcp["configurations"], conf);
        assert_eq!(dhcp["availability_zone"], "nova");
        assert_eq!(dhcp["resources_synced"], Value::Null);
        assert_eq!(dhcp["description"], Value::Null);
        let hb = dhcp["heartbeat_timestamp"].as_str().unwrap();
        assert_eq!(hb.len(), 19, "{hb}");
        assert_eq!(&hb[10..11], " ", "Neutron's agent time format: {hb}");
        for k in ["created_at", "started_at"] {
            assert!(dhcp[k].is_string(), "{k}");
        }
        let r = c.neutron(Method::GET, "/agents?agent_type=L3%20agent&fields=id&fields=host", &admin, None).await;
        assert_eq!(r.body["agents"], json!([{"id": l3, "host": "h2"}]), "{backend}");
        let r = c.neutron(Method::GET, "/agents?alive=true", &admin, None).await;
        assert_eq!(r.body["agents"].as_array().unwrap().len(), 2, "{backend}: {}", r.text);

        // agents are the admin's
        let r = c.neutron(Method::GET, "/agents", &tok, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["agents"], json!([]));
        for (m, body) in
            [(Method::GET, None), (Method::PUT, Some(json!({"agent": {"description": "x"}}))), (Method::DELETE, None)]
        {
            let r = c.neutron(m, &format!("/agents/{}", a.id), &tok, body).await;
            assert_eq!(r.status, 404, "{backend}: {}", r.text);
        }

        // zones from the agents: DHCP agents serve networks, L3 agents routers
        let r = c.neutron(Method::GET, "/availability_zones", &tok, None).await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        let zones = r.body["availability_zones"].as_array().unwrap();
        assert!(zones.contains(&json!({"name": "nova", "resource": "network", "state": "available"})), "{zones:?}");
        assert!(zones.contains(&json!({"name": "nova", "resource": "router", "state": "available"})), "{zones:?}");

        // update: admin state and description only
        let r = c
            .neutron(
                Method::PUT,
                &format!("/agents/{}", a.id),
                &admin,
                Some(json!({"agent": {"admin_state_up": false, "description": "maintenance"}})),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["agent"]["admin_state_up"], false);
        assert_eq!(r.body["agent"]["description"], "maintenance");
        let r =
            c.neutron(Method::PUT, &format!("/agents/{}", a.id), &admin, Some(json!({"agent": {"host": "x"}}))).await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, "/availability_zones?resource=network", &admin, None).await;
        assert_eq!(
            r.body["availability_zones"],
            json!([{"name": "nova", "resource": "network", "state": "unavailable"}])
        );

        // no heartbeat for longer than agent_down_time: dead; a report revives it
        tokio::time::sleep(Duration::from_millis(2600)).await;
        let r = c.neutron(Method::GET, &format!("/agents/{}", a.id), &admin, None).await;
        assert_eq!(r.body["agent"]["alive"], false, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, "/agents?alive=false", &admin, None).await;
        assert_eq!(r.body["agents"].as_array().unwrap().len(), 2, "{backend}: {}", r.text);
        report(&db, "h1", "neutron-dhcp-agent", "DHCP agent", "dhcp_agent", &conf, Some("nova")).await.unwrap();
        let r = c.neutron(Method::GET, &format!("/agents/{}", a.id), &admin, None).await;
        assert_eq!(r.body["agent"]["alive"], true, "{backend}: {}", r.text);
        assert_eq!(r.body["agent"]["admin_state_up"], false, "a report keeps the operator's settings");

        let r = c.neutron(Method::DELETE, &format!("/agents/{}", a.id), &admin, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &format!("/agents/{}", a.id), &admin, None).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["NeutronError"]["type"], "AgentNotFound");
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl PortStatusSink for Recorder {
    async fn port_wired(&self, port_id: &str, host: &str) -> anyhow::Result<()> {
        self.0.lock().unwrap().push((port_id.to_string(), host.to_string()));
        Ok(())
    }
}

#[tokio::test]
async fn fake_agent_heartbeats_and_wires_ports_over_the_bus() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url, 75).await;
        let db = c.network.as_ref().unwrap().db.clone();
        let admin = c.admin_token().await;
        let bus = stratus_bus::Bus::new(Arc::new(stratus_bus::inproc::InProcess::new())).await.unwrap();
        let sink = Arc::new(Recorder::default());
        let opts =
            FakeAgentOptions { report_interval: Duration::from_millis(200), sink: sink.clone(), ..Default::default() };
        let agent = FakeAgent::start_with(db, bus.clone(), "compute-1", opts).await.unwrap();

        let r = c.neutron(Method::GET, "/agents?host=compute-1", &admin, None).await;
        let agents = r.body["agents"].as_array().unwrap().clone();
        let mut types: Vec<&str> = agents.iter().map(|a| a["agent_type"].as_str().unwrap()).collect();
        types.sort();
        assert_eq!(types, vec!["DHCP agent", "L3 agent", "Linux bridge agent"], "{backend}");
        for a in &agents {
            assert_eq!(a["alive"], true);
            let az = if a["agent_type"] == "Linux bridge agent" { Value::Null } else { json!("nova") };
            assert_eq!(a["availability_zone"], az, "{a}");
        }
        let first = agents[0]["heartbeat_timestamp"].as_str().unwrap().to_string();
        let id = agents[0]["id"].as_str().unwrap().to_string();
        // it keeps heartbeating
        let mut later = first.clone();
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let r = c.neutron(Method::GET, &format!("/agents/{id}"), &admin, None).await;
            later = r.body["agent"]["heartbeat_timestamp"].as_str().unwrap().to_string();
            if later > first {
                break;
            }
        }
        assert!(later > first, "{backend}: {first} -> {later}");

        // a port bound to the host: wired, reported through the sink and in the reply
        let m = PortBound {
            port_id: "port-1".into(),
            host: "compute-1".into(),
            mac_address: "fa:16:3e:00:00:01".into(),
            segment: Segment {
                network_id: "net-1".into(),
                network_type: "vxlan".into(),
                segmentation_id: Some(7),
                mtu: 1450,
                ..Default::default()
            },
            admin_state_up: true,
            port_security_enabled: true,
            ..Default::default()
        };
        let topic = rpc::agent_topic("compute-1");
        let reply: PortWired = bus.call(&topic, &m, "req-test", Duration::from_secs(5)).await.unwrap();
        assert_eq!(reply, PortWired { port_id: "port-1".into(), host: "compute-1".into() });
        assert_eq!(sink.0.lock().unwrap().clone(), vec![("port-1".to_string(), "compute-1".to_string())]);
        assert!(agent.wired().ports.contains("port-1"));
        // a port for another host is refused
        let wrong = PortBound { host: "compute-2".into(), ..m.clone() };
        let r: Result<PortWired, _> = bus.call(&topic, &wrong, "req-test", Duration::from_secs(5)).await;
        assert!(r.is_err());
        // router changes are taken in
        bus.cast(
            &topic,
            &RouterUpdated { router_id: "r1".into(), admin_state_up: true, ..Default::default() },
            "req-t",
        )
        .await
        .unwrap();
        for _ in 0..50 {
            if agent.wired().routers.contains("r1") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(agent.wired().routers.contains("r1"));
    }
}
