//! Security groups and rules (Neutron v2.0) end to end on every database:
//! each project's `default` group (created once however many first uses
//! race, with Neutron's default rules), create / update / delete, rule
//! validation, duplicates, quotas, list filters and paging, visibility.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, fresh_urls};

async fn cloud(backend: &'static str, url: &str) -> Cloud {
    let mut c = Cloud::start(backend, url).await;
    c.start_network().await;
    c
}

fn ids(v: &Value, coll: &str) -> Vec<String> {
    v[coll].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect()
}

/// (direction, ethertype, remote_group_id is the group) of a group's rules, sorted.
fn shape(sg: &Value) -> Vec<(String, String, bool)> {
    let id = sg["id"].as_str().unwrap();
    let mut v: Vec<_> = sg["security_group_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["protocol"], Value::Null);
            assert_eq!(r["remote_ip_prefix"], Value::Null);
            assert_eq!(r["port_range_min"], Value::Null);
            assert_eq!(r["security_group_id"], id);
            (
                r["direction"].as_str().unwrap().to_string(),
                r["ethertype"].as_str().unwrap().to_string(),
                r["remote_group_id"] == id,
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn default_group_is_created_once_with_neutrons_rules() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let calls = (0..20).map(|_| {
            let c = &c;
            let tok = tok.clone();
            async move { c.neutron(Method::GET, "/security-groups", &tok, None).await }
        });
        let results = futures::future::join_all(calls).await;
        for r in &results {
            assert_eq!(r.status, 200, "{backend}: {}", r.text);
        }
        let r = c.neutron(Method::GET, "/security-groups", &tok, None).await;
        let groups = r.body["security_groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{backend}: {}", r.text);
        let d = &groups[0];
        assert_eq!(d["name"], "default");
        assert_eq!(d["description"], "Default security group");
        assert_eq!(d["project_id"], project.as_str());
        assert_eq!(d["tenant_id"], project.as_str());
        assert_eq!(d["stateful"], true);
        assert_eq!(
            shape(d),
            vec![
                ("egress".into(), "IPv4".into(), false),
                ("egress".into(), "IPv6".into(), false),
                ("ingress".into(), "IPv4".into(), true),
                ("ingress".into(), "IPv6".into(), true),
            ]
        );
        assert!(d["security_group_rules"].as_array().unwrap().iter().all(|r| r["belongs_to_default_sg"] == true));
        // exactly one across every racer's answer
        for r in &results {
            assert_eq!(ids(&r.body, "security_groups"), vec![d["id"].as_str().unwrap().to_string()]);
        }
        let r = c.neutron(Method::GET, "/security-group-rules", &tok, None).await;
        assert_eq!(r.body["security_group_rules"].as_array().unwrap().len(), 4);
        // the admin sees it too, and gets a default of its own
        let r = c.neutron(Method::GET, &format!("/security-groups?project_id={project}"), &admin, None).await;
        assert_eq!(r.body["security_groups"].as_array().unwrap().len(), 1);
        let r = c.neutron(Method::GET, "/security-groups?name=default", &admin, None).await;
        assert_eq!(r.body["security_groups"].as_array().unwrap().len(), 2, "{backend}: {}", r.text);

        // the default group: not renamed, not deleted by its project
        let did = d["id"].as_str().unwrap();
        let r = c
            .neutron(
                Method::PUT,
                &format!("/security-groups/{did}"),
                &tok,
                Some(json!({"security_group": {"name": "x"}})),
            )
            .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(r.body["NeutronError"]["type"], "SecurityGroupCannotUpdateDefault");
        let r = c
            .neutron(
                Method::PUT,
                &format!("/security-groups/{did}"),
                &tok,
                Some(json!({"security_group": {"description": "mine"}})),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["security_group"]["revision_number"], 1);
        let r = c.neutron(Method::DELETE, &format!("/security-groups/{did}"), &tok, None).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.body["NeutronError"]["type"], "SecurityGroupCannotRemoveDefault");
        let r = c
            .neutron(Method::POST, "/security-groups", &tok, Some(json!({"security_group": {"name": "default"}})))
            .await;
        assert_eq!(r.status, 409);
        // an admin may delete it; the next use makes a new one
        let r = c.neutron(Method::DELETE, &format!("/security-groups/{did}"), &admin, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, "/security-groups", &tok, None).await;
        let again = ids(&r.body, "security_groups");
        assert_eq!(again.len(), 1);
        assert_ne!(again[0], did);
    }
}

#[tokio::test]
async fn groups_lifecycle_and_visibility() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let (_, _, other) = c.user_with_role(&admin, "member").await;

        let r = c
            .neutron(
                Method::POST,
                "/security-groups",
                &tok,
                Some(json!({"security_group": {"name": "web", "description": "d"}})),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let sg = r.body["security_group"].clone();
        let id = sg["id"].as_str().unwrap().to_string();
        assert_eq!(sg["name"], "web");
        assert_eq!(sg["stateful"], true);
        assert_eq!(sg["project_id"], project.as_str());
        assert_eq!(sg["revision_number"], 0);
        assert_eq!(sg["tags"], json!([]));
        let rules = sg["security_group_rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert!(rules.iter().all(|r| r["direction"] == "egress" && r["belongs_to_default_sg"] == false));
        // creating a group made the project's default one too
        let r = c.neutron(Method::GET, "/security-groups?fields=name&sort_key=name", &tok, None).await;
        assert_eq!(r.body["security_groups"], json!([{"name": "default"}, {"name": "web"}]));

        let r = c
            .neutron(
                Method::POST,
                "/security-groups",
                &tok,
                Some(json!({"security_group": {"name": "stateless", "stateful": false}})),
            )
            .await;
        assert_eq!(r.body["security_group"]["stateful"], false);
        let r = c.neutron(Method::GET, "/security-groups?stateful=false", &tok, None).await;
        assert_eq!(r.body["security_groups"].as_array().unwrap().len(), 1);

        // update with revisions
        let r = c
            .neutron(
                Method::PUT,
                &format!("/security-groups/{id}"),
                &tok,
                Some(json!({"security_group": {"name": "web2", "stateful": false}})),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["security_group"]["name"], "web2");
        assert_eq!(r.body["security_group"]["stateful"], false);
        assert_eq!(r.body["security_group"]["revision_number"], 1);
        let r = c
            .neutron_h(
                Method::PUT,
                &format!("/security-groups/{id}"),
                &tok,
                Some(json!({"security_group": {"name": "web3"}})),
                &[("If-Match", "revision_number=0")],
            )
            .await;
        assert_eq!(r.status, 412);
        let r = c
            .neutron(Method::PUT, &format!("/security-groups/{id}"), &tok, Some(json!({"security_group": {"bad": 1}})))
            .await;
        assert_eq!(r.status, 400);
        // only the project's own default group is named `default`
        let r = c
            .neutron(
                Method::PUT,
                &format!("/security-groups/{id}"),
                &tok,
                Some(json!({"security_group": {"name": "default"}})),
            )
            .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(r.body["NeutronError"]["type"], "SecurityGroupDefaultAlreadyExists");
        let r = c
            .neutron(Method::POST, "/security-groups", &tok, Some(json!({"security_group": {"stateful": "maybe"}})))
            .await;
        assert_eq!(r.status, 400);

        // tags work on groups
        let r = c.neutron(Method::PUT, &format!("/security-groups/{id}/tags/blue"), &tok, None).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, "/security-groups?tags=blue", &tok, None).await;
        assert_eq!(ids(&r.body, "security_groups"), vec![id.clone()]);

        // another project sees none of it
        let r = c.neutron(Method::GET, &format!("/security-groups/{id}"), &other, None).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["NeutronError"]["type"], "SecurityGroupNotFound");
        let r = c.neutron(Method::GET, "/security-groups", &other, None).await;
        assert!(!ids(&r.body, "security_groups").contains(&id));
        let rule_id = rules[0]["id"].as_str().unwrap();
        let r = c.neutron(Method::GET, &format!("/security-group-rules/{rule_id}"), &other, None).await;
        assert_eq!(r.status, 404);
        let r = c.neutron(Method::DELETE, &format!("/security-groups/{id}"), &other, None).await;
        assert_eq!(r.status, 404);
        let r = c
            .neutron(
                Method::POST,
                "/security-group-rules",
                &other,
                Some(json!({"security_group_rule": {"security_group_id": id, "direction": "ingress"}})),
            )
            .await;
        assert_eq!(r.status, 404);
        // the admin sees it
        let r = c.neutron(Method::GET, &format!("/security-groups/{id}"), &admin, None).await;
        assert_eq!(r.status, 200);
        let r = c.neutron(Method::GET, "/", &tok, None).await;
        assert_eq!(r.status, 200);
        let r = c.neutron(Method::GET, "/extensions/security-group", &tok, None).await;
        assert_eq!(r.status, 200);

        // delete: its rules go with it
        let r = c.neutron(Method::DELETE, &format!("/security-groups/{id}"), &tok, None).await;
        assert_eq!(r.status, 204, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, &format!("/security-group-rules/{rule_id}"), &tok, None).await;
        assert_eq!(r.status, 404);
        let r = c.neutron(Method::GET, &format!("/security-groups/{id}"), &tok, None).await;
        assert_eq!(r.status, 404);
    }
}

#[tokio::test]
async fn rules_validate_and_refuse_duplicates() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let r = c.neutron(Method::POST, "/security-groups", &tok, Some(json!({"security_group": {"name": "g"}}))).await;
        let sg = r.body["security_group"]["id"].as_str().unwrap().to_string();
        let r = c.neutron(Method::GET, "/security-groups?name=default", &tok, None).await;
        let def = ids(&r.body, "security_groups")[0].clone();
        let rule = |extra: Value| {
            let mut o = json!({"security_group_id": sg, "direction": "ingress"});
            for (k, v) in extra.as_object().unwrap() {
                o[k] = v.clone();
            }
            json!({"security_group_rule": o})
        };
        let bad = [
            (json!({"direction": "sideways"}), "HTTPBadRequest"),
            (json!({"ethertype": "IPv5"}), "SecurityGroupRuleInvalidEtherType"),
            (json!({"protocol": "nope"}), "SecurityGroupRuleInvalidProtocol"),
            (json!({"protocol": 256}), "SecurityGroupRuleInvalidProtocol"),
            (json!({"port_range_min": 80, "port_range_max": 80}), "SecurityGroupProtocolRequiredWithPorts"),
            (json!({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}), "SecurityGroupInvalidPortRange"),
            (json!({"protocol": "udp", "port_range_min": 0, "port_range_max": 80}), "SecurityGroupInvalidPortValue"),
            (json!({"protocol": "tcp", "port_range_min": 1, "port_range_max": 65536}), "SecurityGroupInvalidPortValue"),
            (json!({"protocol": "icmp", "port_range_min": 300}), "SecurityGroupInvalidIcmpValue"),
            (json!({"protocol": "icmp", "port_range_max": 0}), "SecurityGroupMissingIcmpType"),
            (
                json!({"protocol": "gre", "port_range_min": 1, "port_range_max": 2}),
                "SecurityGroupInvalidProtocolForPortRange",
            ),
            (json!({"ethertype": "IPv4", "remote_ip_prefix": "2001:db8::/64"}), "SecurityGroupRuleParameterConflict"),
            (json!({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}), "SecurityGroupRuleParameterConflict"),
            (json!({"remote_ip_prefix": "10.0.0.300/8"}), "HTTPBadRequest"),
            (json!({"protocol": "ipv6-icmp"}), "SecurityGroupEthertypeConflictWithProtocol"),
            (
                json!({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": def}),
                "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            ),
            (json!({"security_group_id": "not-a-uuid"}), "HTTPBadRequest"),
            (json!({"unknown": 1}), "HTTPBadRequest"),
        ];
        for (extra, kind) in bad {
            let r = c.neutron(Method::POST, "/security-group-rules", &tok, Some(rule(extra.clone()))).await;
            assert_eq!(r.status, 400, "{backend} {extra}: {}", r.text);
            assert_eq!(r.body["NeutronError"]["type"], kind, "{backend} {extra}: {}", r.text);
        }
        let r = c
            .neutron(
                Method::POST,
                "/security-group-rules",
                &tok,
                Some(rule(json!({"remote_group_id": uuid::Uuid::new_v4().to_string()}))),
            )
            .await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        assert_eq!(r.body["NeutronError"]["type"], "SecurityGroupNotFound");
        // Neutron does not check the form of remote_group_id: an id that is
        // not a UUID is just not found
        let r = c
            .neutron(
                Method::POST,
                "/security-group-rules",
                &tok,
                Some(rule(json!({"remote_group_id": "bad_group_id"}))),
            )
            .await;
        assert_eq!(r.status, 404, "{backend}: {}", r.text);
        assert_eq!(r.body["NeutronError"]["type"], "SecurityGroupNotFound");

        // good rules, normalised
        let r = c
            .neutron(
                Method::POST,
                "/security-group-rules",
                &tok,
                Some(rule(json!({"protocol": "TCP", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.1.2.3/16", "description": "ssh"}))),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let ssh = r.body["security_group_rule"].clone();
        assert_eq!(ssh["protocol"], "tcp");
        assert_eq!(ssh["ethertype"], "IPv4");
        assert_eq!(ssh["remote_ip_prefix"], "10.1.2.3/16");
        assert_eq!(ssh["normalized_cidr"], "10.1.0.0/16");
        assert_eq!(ssh["remote_group_id"], Value::Null);
        assert_eq!(ssh["remote_address_group_id"], Value::Null);
        assert_eq!(ssh["description"], "ssh");
        assert_eq!(ssh["revision_number"], 0);
        let ssh_id = ssh["id"].as_str().unwrap().to_string();
        let r = c
            .neutron(
                Method::POST,
                "/security-group-rules",
                &tok,
                Some(rule(
                    json!({"ethertype": "IPv6", "protocol": "icmp", "port_range_min": 128, "port_range_max": 0}),
                )),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["security_group_rule"]["protocol"], "ipv6-icmp");
        let r =
            c.neutron(Method::POST, "/security-group-rules", &tok, Some(rule(json!({"remote_group_id": def})))).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["security_group_rule"]["remote_group_id"], def.as_str());
        let r = c.neutron(Method::POST, "/security-group-rules", &tok, Some(rule(json!({"protocol": 47})))).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["security_group_rule"]["protocol"], "47");

        // duplicates: the same rule, or the protocol by number
        for dup in [
            json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.1.0.0/16"}),
            json!({"protocol": "6", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.1.9.9/16"}),
        ] {
            let r = c.neutron(Method::POST, "/security-group-rules", &tok, Some(rule(dup))).await;
            assert_eq!(r.status, 409, "{backend}: {}", r.text);
            assert_eq!(r.body["NeutronError"]["type"], "SecurityGroupRuleExists");
            assert!(r.body["NeutronError"]["message"].as_str().unwrap().contains(&ssh_id));
        }
        let r = c
            .neutron(
                Method::POST,
                "/security-group-rules",
                &tok,
                Some(json!({"security_group_rule": {"security_group_id": sg, "direction": "egress"}})),
            )
            .await;
        assert_eq!(r.status, 409, "the egress rule every group starts with: {}", r.text);

        // rules bump the group's revision; rules cannot be updated
        let r = c.neutron(Method::GET, &format!("/security-groups/{sg}"), &tok, None).await;
        assert_eq!(r.body["security_group"]["revision_number"], 4, "{backend}: {}", r.text);
        assert_eq!(r.body["security_group"]["security_group_rules"].as_array().unwrap().len(), 6);
        let r = c
            .neutron(
                Method::PUT,
                &format!("/security-group-rules/{ssh_id}"),
                &tok,
                Some(json!({"security_group_rule": {"description": "x"}})),
            )
            .await;
        assert_eq!(r.status, 405, "{backend}: {}", r.text);
        let r = c.neutron(Method::DELETE, &format!("/security-group-rules/{ssh_id}"), &tok, None).await;
        assert_eq!(r.status, 204);
        let r = c.neutron(Method::DELETE, &format!("/security-group-rules/{ssh_id}"), &tok, None).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["NeutronError"]["type"], "SecurityGroupRuleNotFound");
        let r = c.neutron(Method::GET, &format!("/security-groups/{sg}"), &tok, None).await;
        assert_eq!(r.body["security_group"]["revision_number"], 5);

        // deleting the default group (as admin) removes the rules naming it as remote group
        let r = c.neutron(Method::DELETE, &format!("/security-groups/{def}"), &admin, None).await;
        assert_eq!(r.status, 204);
        let r = c.neutron(Method::GET, &format!("/security-group-rules?security_group_id={sg}"), &tok, None).await;
        assert_eq!(r.body["security_group_rules"].as_array().unwrap().len(), 4, "{backend}: {}", r.text);
    }
}

#[tokio::test]
async fn rules_filter_and_page() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        let r = c.neutron(Method::POST, "/security-groups", &tok, Some(json!({"security_group": {"name": "g"}}))).await;
        let sg = r.body["security_group"]["id"].as_str().unwrap().to_string();
        for port in 1..=5 {
            let r = c
                .neutron(
                    Method::POST,
                    "/security-group-rules",
                    &tok,
                    Some(json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": port, "port_range_max": port}})),
                )
                .await;
            assert_eq!(r.status, 201, "{backend}: {}", r.text);
        }
        let r = c
            .neutron(Method::GET, &format!("/security-group-rules?security_group_id={sg}&protocol=tcp"), &tok, None)
            .await;
        assert_eq!(r.body["security_group_rules"].as_array().unwrap().len(), 5);
        let r = c.neutron(Method::GET, "/security-group-rules?port_range_min=3", &tok, None).await;
        assert_eq!(r.body["security_group_rules"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["security_group_rules"][0]["port_range_max"], 3);
        let r = c.neutron(Method::GET, "/security-group-rules?direction=egress&ethertype=IPv6", &tok, None).await;
        assert_eq!(r.body["security_group_rules"].as_array().unwrap().len(), 2, "default's and g's");
        let r = c.neutron(Method::GET, "/security-group-rules?bogus=1", &tok, None).await;
        assert_eq!(r.status, 400);

        // keyset paging over the 11 rules (4 default + 2 egress + 5), by id
        let mut seen = Vec::new();
        let mut next = "/security-group-rules?limit=4&sort_key=id&sort_dir=asc".to_string();
        loop {
            let r = c.neutron(Method::GET, &next, &tok, None).await;
            assert_eq!(r.status, 200, "{backend}: {}", r.text);
            seen.extend(ids(&r.body, "security_group_rules"));
            let link = r.body["security_group_rules_links"]
                .as_array()
                .and_then(|l| l.iter().find(|l| l["rel"] == "next"))
                .map(|l| l["href"].as_str().unwrap().to_string());
            match link {
                Some(h) => next = h.split("/v2.0").nth(1).unwrap().to_string(),
                None => break,
            }
        }
        assert_eq!(seen.len(), 11, "{backend}: {seen:?}");
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(seen, sorted);
    }
}

#[tokio::test]
async fn quotas_count_groups_and_rules() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let r = c
            .neutron(
                Method::PUT,
                &format!("/quotas/{project}"),
                &admin,
                Some(json!({"quota": {"security_group": 3, "security_group_rule": 9}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        // default (1 group, 4 rules) + 2 groups (2 rules each) = 3 groups, 8 rules
        let calls = (0..6).map(|i| {
            let c = &c;
            let tok = tok.clone();
            async move {
                c.neutron(
                    Method::POST,
                    "/security-groups",
                    &tok,
                    Some(json!({"security_group": {"name": format!("g{i}")}})),
                )
                .await
            }
        });
        let results = futures::future::join_all(calls).await;
        let ok: Vec<_> = results.iter().filter(|r| r.status == 201).collect();
        let over = results.iter().filter(|r| r.status == 409 && r.body["NeutronError"]["type"] == "OverQuota").count();
        assert_eq!((ok.len(), over), (2, 4), "{backend}: {:?}", results.iter().map(|r| &r.text).collect::<Vec<_>>());
        let sg = ok[0].body["security_group"]["id"].as_str().unwrap().to_string();
        let rule = |port: i64| json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress", "protocol": "udp", "port_range_min": port, "port_range_max": port}});
        let r = c.neutron(Method::POST, "/security-group-rules", &tok, Some(rule(53))).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let r = c.neutron(Method::POST, "/security-group-rules", &tok, Some(rule(54))).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(r.body["NeutronError"]["type"], "OverQuota");
        let r = c.neutron(Method::GET, &format!("/quotas/{project}/details"), &tok, None).await;
        assert_eq!(r.body["quota"]["security_group"]["used"], 3, "{}", r.text);
        assert_eq!(r.body["quota"]["security_group_rule"]["used"], 9, "{}", r.text);
    }
}

#[tokio::test]
async fn a_group_in_use_by_a_port_is_not_deleted() {
    use sea_orm::{ActiveModelTrait, Set};
    use stratus_network::entity::security_group_port_binding as binding;
    use stratus_network::store::security_groups as sgs;

    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let db = &c.network.as_ref().unwrap().db;
        // what the ports code does for a port without security groups
        let def = sgs::default_for_project(db, &project).await.unwrap();
        assert_eq!(sgs::default_for_project(db, &project).await.unwrap(), def);
        let r = c.neutron(Method::POST, "/security-groups", &tok, Some(json!({"security_group": {"name": "g"}}))).await;
        let sg = r.body["security_group"]["id"].as_str().unwrap().to_string();
        let port = uuid::Uuid::new_v4().to_string();
        binding::ActiveModel { port_id: Set(port.clone()), security_group_id: Set(sg.clone()) }
            .insert(&db.write)
            .await
            .unwrap();
        assert_eq!(sgs::ports_using(&db.read, &sg).await.unwrap(), 1);
        let r = c.neutron(Method::DELETE, &format!("/security-groups/{sg}"), &tok, None).await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(r.body["NeutronError"]["type"], "SecurityGroupInUse");
        let r = c
            .neutron(
                Method::PUT,
                &format!("/security-groups/{sg}"),
                &tok,
                Some(json!({"security_group": {"stateful": false}})),
            )
            .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        let r = c
            .neutron(
                Method::PUT,
                &format!("/security-groups/{sg}"),
                &tok,
                Some(json!({"security_group": {"name": "h"}})),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        // the only group listed for the project besides g is the one the ports code got
        let r = c.neutron(Method::GET, "/security-groups?name=default", &tok, None).await;
        assert_eq!(ids(&r.body, "security_groups"), vec![def]);
    }
}
