//! The network API (Neutron v2.0) end to end on every database: versions and
//! extensions, networks (create one or bulk, show, update with revisions and
//! If-Match, delete), provider attributes and segment allocation, visibility
//! of shared and external networks, list filters / fields / sorting / keyset
//! paging, tags, quotas (racing creates never pass the limit), bad input.

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

#[tokio::test]
async fn networks_lifecycle_on_every_database() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;

        let r = c.neutron(Method::GET, "/", &tok, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["versions"][0]["id"], "v2.0");
        let r = c.neutron(Method::GET, "/extensions", &tok, None).await;
        assert!(r.body["extensions"].as_array().unwrap().iter().any(|e| e["alias"] == "external-net"));
        let r = c.neutron(Method::GET, "/extensions/nope", &tok, None).await;
        assert_eq!(r.status, 404);

        // create as a member: defaults, a VXLAN segment, no provider attributes shown
        let r = c.neutron(Method::POST, "/networks", &tok, Some(json!({"network": {"name": "n1"}}))).await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let n1 = r.body["network"].clone();
        assert_eq!(n1["project_id"], project.as_str());
        assert_eq!(n1["tenant_id"], project.as_str());
        assert_eq!(n1["status"], "ACTIVE");
        assert_eq!(n1["admin_state_up"], true);
        assert_eq!(n1["shared"], false);
        assert_eq!(n1["router:external"], false);
        assert_eq!(n1["mtu"], 1450);
        assert_eq!(n1["revision_number"], 0);
        assert_eq!(n1["subnets"], json!([]));
        assert!(n1["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(n1.get("provider:network_type").is_none(), "members do not see provider attributes");
        let id1 = n1["id"].as_str().unwrap().to_string();
        let r = c.neutron(Method::GET, &format!("/networks/{id1}"), &admin, None).await;
        assert_eq!(r.body["network"]["provider:network_type"], "vxlan");
        let vni1 = r.body["network"]["provider:segmentation_id"].as_i64().unwrap();

        // members may not share or make provider networks
        for body in [
            json!({"network": {"shared": true}}),
            json!({"network": {"router:external": true}}),
            json!({"network": {"provider:network_type": "vlan", "provider:physical_network": "physnet1"}}),
        ] {
            let r = c.neutron(Method::POST, "/networks", &tok, Some(body)).await;
            assert_eq!(r.status, 403, "{backend}: {}", r.text);
        }
        // admins may; explicit segments collide with 409
        let r = c
            .neutron(
                Method::POST,
                "/networks",
                &admin,
                Some(json!({"network": {"name": "ext", "router:external": true, "provider:network_type": "flat", "provider:physical_network": "public"}})),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        let ext = r.body["network"]["id"].as_str().unwrap().to_string();
        assert_eq!(r.body["network"]["provider:segmentation_id"], Value::Null);
        let r = c
            .neutron(
                Method::POST,
                "/networks",
                &admin,
                Some(json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": vni1}})),
            )
            .await;
        assert_eq!(r.status, 409, "{backend}: {}", r.text);
        assert_eq!(r.body["NeutronError"]["type"], "SegmentationIdInUse");
        let r = c
            .neutron(Method::POST, "/networks", &admin, Some(json!({"network": {"name": "shared", "shared": true}})))
            .await;
        let shared = r.body["network"]["id"].as_str().unwrap().to_string();
        let r = c.neutron(Method::POST, "/networks", &admin, Some(json!({"network": {"name": "private-admin"}}))).await;
        let private_admin = r.body["network"]["id"].as_str().unwrap().to_string();

        // the member sees its own, the shared and the external network, not the admin's private one
        let r = c.neutron(Method::GET, "/networks", &tok, None).await;
        let seen = ids(&r.body, "networks");
        for id in [&id1, &ext, &shared] {
            assert!(seen.contains(id), "{backend}: {seen:?}");
        }
        assert!(!seen.contains(&private_admin));
        let r = c.neutron(Method::GET, &format!("/networks/{private_admin}"), &tok, None).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["NeutronError"]["type"], "NetworkNotFound");

        // update: revision bumps; If-Match checks it
        let r = c
            .neutron(
                Method::PUT,
                &format!("/networks/{id1}"),
                &tok,
                Some(json!({"network": {"name": "n1b", "description": "d"}})),
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        assert_eq!(r.body["network"]["name"], "n1b");
        assert_eq!(r.body["network"]["revision_number"], 1);
        let r = c
            .neutron_h(
                Method::PUT,
                &format!("/networks/{id1}"),
                &tok,
                Some(json!({"network": {"name": "x"}})),
                &[("If-Match", "revision_number=0")],
            )
            .await;
        assert_eq!(r.status, 412, "{backend}: {}", r.text);
        let r = c
            .neutron_h(
                Method::PUT,
                &format!("/networks/{id1}"),
                &tok,
                Some(json!({"network": {"name": "n1c"}})),
                &[("If-Match", "revision_number=1")],
            )
            .await;
        assert_eq!(r.status, 200, "{backend}: {}", r.text);
        // members may not update what they do not own
        let r =
            c.neutron(Method::PUT, &format!("/networks/{shared}"), &tok, Some(json!({"network": {"name": "x"}}))).await;
        assert_eq!(r.status, 403, "{backend}: {}", r.text);

        // bulk create is all or nothing
        let r = c
            .neutron(Method::POST, "/networks", &tok, Some(json!({"networks": [{"name": "b1"}, {"name": "b2"}]})))
            .await;
        assert_eq!(r.status, 201, "{backend}: {}", r.text);
        assert_eq!(r.body["networks"].as_array().unwrap().len(), 2);
        let r = c
            .neutron(Method::POST, "/networks", &tok, Some(json!({"networks": [{"name": "ok"}, {"mtu": "big"}]})))
            .await;
        assert_eq!(r.status, 400, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, "/networks?name=ok", &tok, None).await;
        assert_eq!(r.body["networks"], json!([]));

        // bad input: 400s in Neutron's shape, never 500
        for body in [
            json!({"network": {"name": 5}}),
            json!({"network": {"admin_state_up": "perhaps"}}),
            json!({"network": {"mtu": 9000}}),
            json!({"network": {"bogus": 1}}),
            json!({"network": "x"}),
            json!({}),
            json!({"networks": []}),
        ] {
            let r = c.neutron(Method::POST, "/networks", &tok, Some(body.clone())).await;
            assert_eq!(r.status, 400, "{backend}: {body} -> {}", r.text);
            assert_eq!(r.body["NeutronError"]["type"], "HTTPBadRequest", "{body}");
        }
        let r = c.neutron(Method::GET, "/networks?bogus=1", &tok, None).await;
        assert_eq!(r.status, 400);
        let r = c.neutron(Method::GET, "/networks?sort_key=bogus", &tok, None).await;
        assert_eq!(r.status, 400);
        let r = c.neutron(Method::GET, "/networks?shared=maybe", &tok, None).await;
        assert_eq!(r.status, 400);

        // delete
        let r = c.neutron(Method::DELETE, &format!("/networks/{id1}"), &tok, None).await;
        assert_eq!(r.status, 204);
        let r = c.neutron(Method::DELETE, &format!("/networks/{id1}"), &tok, None).await;
        assert_eq!(r.status, 404);
    }
}

#[tokio::test]
async fn lists_filter_sort_and_page() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (_, _, tok) = c.user_with_role(&admin, "member").await;
        // 7 networks, names in a shuffled order, two admin_state_up=false
        let names = ["e", "b", "g", "a", "f", "c", "d"];
        for (i, n) in names.iter().enumerate() {
            let r = c
                .neutron(
                    Method::POST,
                    "/networks",
                    &tok,
                    Some(json!({"network": {"name": n, "admin_state_up": i % 3 != 0, "description": if i < 3 {"x"} else {"y"}}})),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
        let all = c.neutron(Method::GET, "/networks?sort_key=name&sort_dir=asc", &tok, None).await;
        let sorted: Vec<&str> =
            all.body["networks"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
        assert_eq!(sorted, vec!["a", "b", "c", "d", "e", "f", "g"], "{backend}");
        // filters: any of several values; booleans; fields
        let r = c.neutron(Method::GET, "/networks?name=a&name=c&fields=id&fields=name", &tok, None).await;
        let got = r.body["networks"].as_array().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_object().unwrap().len(), 2, "{}", r.text);
        let r = c.neutron(Method::GET, "/networks?admin_state_up=false", &tok, None).await;
        assert_eq!(r.body["networks"].as_array().unwrap().len(), 3, "{backend}: {}", r.text);
        let r = c.neutron(Method::GET, "/networks?description=x&admin_state_up=True", &tok, None).await;
        assert_eq!(r.body["networks"].as_array().unwrap().len(), 2, "{backend}: {}", r.text);

        // pages of 3 by name desc, following next links, then back with previous
        for (key, dir) in [("name", "desc"), ("name", "asc"), ("admin_state_up", "asc"), ("created_at", "desc")] {
            let one = c.neutron(Method::GET, &format!("/networks?sort_key={key}&sort_dir={dir}"), &tok, None).await;
            let want = ids(&one.body, "networks");
            let mut got = Vec::new();
            let mut next = format!("/networks?sort_key={key}&sort_dir={dir}&limit=3");
            let mut pages = 0;
            let mut last_page;
            loop {
                let r = c.neutron(Method::GET, &next, &tok, None).await;
                assert_eq!(r.status, 200, "{}", r.text);
                got.extend(ids(&r.body, "networks"));
                pages += 1;
                last_page = r.body.clone();
                match r.body["networks_links"].as_array().and_then(|l| l.iter().find(|l| l["rel"] == "next")) {
                    Some(l) => {
                        let href = l["href"].as_str().unwrap();
                        next = href[href.find("/networks").unwrap()..].to_string();
                    }
                    None => break,
                }
                assert!(pages < 10);
            }
            assert_eq!(got, want, "{backend}: paging by {key} {dir}");
            assert_eq!(pages, 3);
            // previous from the last page gives the page before it
            let prev = last_page["networks_links"].as_array().unwrap().iter().find(|l| l["rel"] == "previous").unwrap();
            let href = prev["href"].as_str().unwrap();
            let r = c.neutron(Method::GET, &href[href.find("/networks").unwrap()..], &tok, None).await;
            assert_eq!(ids(&r.body, "networks"), want[3..6].to_vec(), "{backend}: previous page by {key} {dir}");
        }

        // tags: set, filter by all / any / not, add and remove one
        let a = all.body["networks"][0]["id"].as_str().unwrap().to_string();
        let b = all.body["networks"][1]["id"].as_str().unwrap().to_string();
        let r =
            c.neutron(Method::PUT, &format!("/networks/{a}/tags"), &tok, Some(json!({"tags": ["red", "blue"]}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["tags"], json!(["blue", "red"]));
        let r = c.neutron(Method::PUT, &format!("/networks/{b}/tags/red"), &tok, None).await;
        assert_eq!(r.status, 201);
        let r = c.neutron(Method::GET, "/networks?tags=red,blue", &tok, None).await;
        assert_eq!(ids(&r.body, "networks"), vec![a.clone()], "{backend}");
        let r = c.neutron(Method::GET, "/networks?tags-any=red,blue&sort_key=name", &tok, None).await;
        assert_eq!(ids(&r.body, "networks"), vec![a.clone(), b.clone()]);
        let r = c.neutron(Method::GET, "/networks?not-tags=red", &tok, None).await;
        assert_eq!(r.body["networks"].as_array().unwrap().len(), 5);
        let r = c.neutron(Method::GET, &format!("/networks/{b}/tags/red"), &tok, None).await;
        assert_eq!(r.status, 204);
        let r = c.neutron(Method::DELETE, &format!("/networks/{b}/tags/red"), &tok, None).await;
        assert_eq!(r.status, 204);
        let r = c.neutron(Method::GET, &format!("/networks/{b}/tags/red"), &tok, None).await;
        assert_eq!(r.status, 404);
        let r = c.neutron(Method::GET, &format!("/networks/{a}"), &tok, None).await;
        assert_eq!(r.body["network"]["tags"], json!(["blue", "red"]));
        assert_eq!(r.body["network"]["revision_number"], 1, "tags bump the revision");
    }
}

#[tokio::test]
async fn racing_creates_never_pass_the_quota() {
    for (backend, url) in fresh_urls().await {
        let c = cloud(backend, &url).await;
        let admin = c.admin_token().await;
        let (project, _, tok) = c.user_with_role(&admin, "member").await;
        let r =
            c.neutron(Method::PUT, &format!("/quotas/{project}"), &admin, Some(json!({"quota": {"network": 5}}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["quota"]["network"], 5);
        let r =
            c.neutron(Method::PUT, &format!("/quotas/{project}"), &tok, Some(json!({"quota": {"network": 50}}))).await;
        assert_eq!(r.status, 403);
        let calls = (0..20).map(|i| {
            let c = &c;
            let tok = tok.clone();
            async move {
                c.neutron(Method::POST, "/networks", &tok, Some(json!({"network": {"name": format!("r{i}")}}))).await
            }
        });
        let results = futures::future::join_all(calls).await;
        let ok = results.iter().filter(|r| r.status == 201).count();
        let over = results.iter().filter(|r| r.status == 409 && r.body["NeutronError"]["type"] == "OverQuota").count();
        assert_eq!((ok, over), (5, 15), "{backend}: {:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
        // every segment distinct
        let r = c.neutron(Method::GET, "/networks", &admin, None).await;
        let mut segs: Vec<i64> = r.body["networks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["provider:segmentation_id"].as_i64())
            .collect();
        let n = segs.len();
        segs.sort();
        segs.dedup();
        assert_eq!(segs.len(), n);
        let r = c.neutron(Method::GET, &format!("/quotas/{project}/details"), &tok, None).await;
        assert_eq!(r.body["quota"]["network"], json!({"limit": 5, "used": 5, "reserved": 0}), "{}", r.text);
        let r = c.neutron(Method::DELETE, &format!("/quotas/{project}"), &admin, None).await;
        assert_eq!(r.status, 204);
        let r = c.neutron(Method::GET, &format!("/quotas/{project}"), &tok, None).await;
        assert_eq!(r.body["quota"]["network"], 100);
    }
}
