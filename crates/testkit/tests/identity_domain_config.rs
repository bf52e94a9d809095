//! Domain-specific configuration and OS-EP-FILTER endpoint groups, on every
//! reachable database backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, clouds};

async fn new_domain(c: &Cloud, admin: &str) -> String {
    let n = uuid::Uuid::new_v4().simple().to_string();
    let r = c.post("/v3/domains", admin, json!({"domain": {"name": format!("d-{n}")}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["domain"]["id"].as_str().unwrap().to_string()
}

async fn put_config(c: &Cloud, admin: &str, domain: &str, config: Value) -> (u16, Value) {
    let r = c
        .call(Method::PUT, &format!("/v3/domains/{domain}/config"), Some(admin), Some(json!({ "config": config })))
        .await;
    (r.status.as_u16(), r.body)
}

#[tokio::test]
async fn domain_config_defaults() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let r = c.get("/v3/domains/config/default", &admin).await;
        assert_eq!(r.status, 200, "{} {}", c.backend, r.text);
        let cfg = &r.body["config"];
        assert_eq!(cfg["identity"]["driver"], "sql");
        assert!(cfg["identity"]["list_limit"].is_null());
        assert!(cfg["identity"].as_object().unwrap().contains_key("list_limit"));
        assert_eq!(cfg["ldap"]["url"], "ldap://localhost");
        assert_eq!(cfg["ldap"]["pool_size"], 10);
        assert!(
            !cfg["ldap"].as_object().unwrap().contains_key("password"),
            "sensitive options have no visible default"
        );

        let r = c.get("/v3/domains/config/ldap/default", &admin).await;
        assert_eq!(r.status, 200);
        let ldap = r.body["config"]["ldap"].as_object().unwrap().clone();
        assert!(ldap.len() > 40);
        for (opt, v) in &ldap {
            let r = c.get(&format!("/v3/domains/config/ldap/{opt}/default"), &admin).await;
            assert_eq!(r.status, 200, "{opt}: {}", r.text);
            assert_eq!(&r.body["config"][opt], v);
        }
        let r = c.get("/v3/domains/config/identity/driver/default", &admin).await;
        assert_eq!(r.body, json!({"config": {"driver": "sql"}}));

        // unsupported groups and options, and the sensitive password: 403 as in Keystone
        for path in [
            "/v3/domains/config/nope/default",
            "/v3/domains/config/identity/nope/default",
            "/v3/domains/config/ldap/password/default",
        ] {
            let r = c.get(path, &admin).await;
            assert_eq!(r.status, 403, "{path}: {}", r.text);
        }

        // a member may not read them
        let (_, _, member) = c.user_with_role(&admin, "member").await;
        let r = c.get("/v3/domains/config/default", &member).await;
        assert_eq!(r.status, 403);
    }
}

#[tokio::test]
async fn domain_config_lifecycle() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let d = new_domain(&c, &admin).await;
        let base = format!("/v3/domains/{d}/config");

        // nothing configured yet
        let r = c.get(&base, &admin).await;
        assert_eq!(r.status, 404, "{}", r.text);

        let custom = json!({
            "identity": {"driver": "ldap"},
            "ldap": {"url": "ldap://myldap.com:389/", "user_tree_dn": "ou=Users,dc=my_new_root,dc=org", "password": "s3cret"},
        });
        let visible = json!({
            "identity": {"driver": "ldap"},
            "ldap": {"url": "ldap://myldap.com:389/", "user_tree_dn": "ou=Users,dc=my_new_root,dc=org"},
        });
        let (status, body) = put_config(&c, &admin, &d, custom.clone()).await;
        assert_eq!(status, 201, "{} {body}", c.backend);
        assert_eq!(body["config"], visible, "the password is never shown");
        // replacing an existing configuration answers 200
        let (status, body) = put_config(&c, &admin, &d, custom.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(body["config"], visible);

        let r = c.get(&base, &admin).await;
        assert_eq!(r.body["config"], visible);
        let r = c.get(&format!("{base}/ldap"), &admin).await;
        assert_eq!(r.body["config"], json!({"ldap": visible["ldap"]}));
        let r = c.get(&format!("{base}/ldap/url"), &admin).await;
        assert_eq!(r.body["config"], json!({"url": "ldap://myldap.com:389/"}));
        let r = c.get(&format!("{base}/ldap/password"), &admin).await;
        assert_eq!(r.status, 404, "sensitive options are not readable");
        let r = c.get(&format!("{base}/ldap/suffix"), &admin).await;
        assert_eq!(r.status, 404);
        let r = c.get(&format!("{base}/bogus"), &admin).await;
        assert_eq!(r.status, 403);

        // PATCH the whole config: merge
        let r = c
            .patch(
                &base,
                &admin,
                json!({"config": {"ldap": {"url": "ldap://other:389/"}, "identity": {"list_limit": 7}}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["config"]["ldap"]["url"], "ldap://other:389/");
        assert_eq!(r.body["config"]["ldap"]["user_tree_dn"], "ou=Users,dc=my_new_root,dc=org");
        assert_eq!(r.body["config"]["identity"]["list_limit"], 7);

        // PATCH a group: only that group, and it must exist
        let r = c
            .patch(
                &format!("{base}/identity"),
                &admin,
                json!({"config": {"identity": {"driver": "sql", "list_limit": 42}}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["config"]["identity"]["driver"], "sql");
        assert_eq!(r.body["config"]["identity"]["list_limit"], 42);
        let r = c.patch(&format!("{base}/identity"), &admin, json!({"config": {"ldap": {"url": "ldap://x/"}}})).await;
        assert_eq!(r.status, 403);

        // PATCH one option
        let r = c.patch(&format!("{base}/identity/driver"), &admin, json!({"config": {"driver": "ldap"}})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["config"]["identity"]["driver"], "ldap");
        let r = c.patch(&format!("{base}/identity/driver"), &admin, json!({"config": {"list_limit": 3}})).await;
        assert_eq!(r.status, 403);
        let r = c.patch(&format!("{base}/ldap/user_filter"), &admin, json!({"config": {"user_filter": "(x=y)"}})).await;
        assert_eq!(r.status, 404, "an option not configured cannot be updated");

        // bad requests
        let (status, _) = put_config(&c, &admin, &d, json!({})).await;
        assert_eq!(status, 403, "no options");
        let (status, _) = put_config(&c, &admin, &d, json!({"ldap": {"bogus": 1}})).await;
        assert_eq!(status, 403);
        let (status, _) = put_config(&c, &admin, &d, json!({"ldap": "x"})).await;
        assert_eq!(status, 403);
        let r = c.call(Method::PUT, &base, Some(&admin), Some(json!({"conf": {}}))).await;
        assert_eq!(r.status, 400);
        assert!(r.text.contains("config"), "{}", r.text);
        let r = c.call(Method::PUT, "/v3/domains/nope/config", Some(&admin), Some(json!({"config": custom}))).await;
        assert_eq!(r.status, 404);

        // a member may not write
        let (_, _, member) = c.user_with_role(&admin, "member").await;
        let (status, _) = put_config(&c, &member, &d, custom.clone()).await;
        assert_eq!(status, 403);

        // DELETE an option, a group, everything
        let r = c.delete(&format!("{base}/identity/driver"), &admin).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let r = c.get(&format!("{base}/identity/driver"), &admin).await;
        assert_eq!(r.status, 404);
        let r = c.delete(&format!("{base}/identity/driver"), &admin).await;
        assert_eq!(r.status, 404);
        let r = c.delete(&format!("{base}/identity"), &admin).await;
        assert_eq!(r.status, 204);
        let r = c.get(&format!("{base}/identity"), &admin).await;
        assert_eq!(r.status, 404);
        let r = c.delete(&base, &admin).await;
        assert_eq!(r.status, 204);
        let r = c.get(&base, &admin).await;
        assert_eq!(r.status, 404);
        // recreating after a delete is a create again
        let (status, _) = put_config(&c, &admin, &d, json!({"identity": {"driver": "sql"}})).await;
        assert_eq!(status, 201);
    }
}

#[tokio::test]
async fn security_compliance_of_the_default_domain() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (_, _, member) = c.user_with_role(&admin, "member").await;
        let r = c.get("/v3/domains/default/config/security_compliance", &member).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let sc = r.body["config"]["security_compliance"].as_object().unwrap();
        assert!(sc.contains_key("password_regex"));
        assert!(sc.contains_key("password_regex_description"));
        let r = c.get("/v3/domains/default/config/security_compliance/password_regex", &member).await;
        assert_eq!(r.status, 200);
        assert!(r.body["config"].as_object().unwrap().contains_key("password_regex"));
        let d = new_domain(&c, &admin).await;
        let r = c.get(&format!("/v3/domains/{d}/config/security_compliance"), &admin).await;
        assert_eq!(r.status, 403);
    }
}

async fn new_service(c: &Cloud, admin: &str) -> String {
    let r = c
        .post(
            "/v3/services",
            admin,
            json!({"service": {"name": "svc", "type": format!("t-{}", uuid::Uuid::new_v4().simple())}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["service"]["id"].as_str().unwrap().to_string()
}

const GROUPS: &str = "/v3/OS-EP-FILTER/endpoint_groups";

#[tokio::test]
async fn endpoint_groups_crud() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let s1 = new_service(&c, &admin).await;
        let s2 = new_service(&c, &admin).await;

        let r = c
            .post(
                GROUPS,
                &admin,
                json!({"endpoint_group": {"name": "g1", "description": "first", "filters": {"service_id": s1}}}),
            )
            .await;
        assert_eq!(r.status, 201, "{} {}", c.backend, r.text);
        let g = r.body["endpoint_group"].clone();
        let id = g["id"].as_str().unwrap().to_string();
        assert_eq!(g["name"], "g1");
        assert_eq!(g["description"], "first");
        assert_eq!(g["filters"], json!({"service_id": s1}));
        assert!(g["links"]["self"].as_str().unwrap().ends_with(&format!("/v3/OS-EP-FILTER/endpoint_groups/{id}")));

        let r =
            c.post(GROUPS, &admin, json!({"endpoint_group": {"name": "g2", "filters": {"interface": "public"}}})).await;
        assert_eq!(r.status, 201);
        let g2 = r.body["endpoint_group"].clone();
        assert!(g2["description"].is_null());

        let r = c.get(GROUPS, &admin).await;
        assert_eq!(r.status, 200);
        let list = r.body["endpoint_groups"].as_array().unwrap();
        assert!(list.contains(&g) && list.contains(&g2), "{}", r.text);
        let r = c.get(&format!("{GROUPS}?name=g2"), &admin).await;
        assert_eq!(r.body["endpoint_groups"], json!([g2]));

        let r = c.get(&format!("{GROUPS}/{id}"), &admin).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["endpoint_group"], g);
        let r = c.call(Method::HEAD, &format!("{GROUPS}/{id}"), Some(&admin), None).await;
        assert_eq!(r.status, 200);
        assert!(r.text.is_empty());

        let r = c
            .patch(
                &format!("{GROUPS}/{id}"),
                &admin,
                json!({"endpoint_group": {"name": "g1b", "description": "second", "filters": {"service_id": s2}}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["endpoint_group"]["name"], "g1b");
        assert_eq!(r.body["endpoint_group"]["description"], "second");
        assert_eq!(r.body["endpoint_group"]["filters"]["service_id"], s2);
        let r = c.patch(&format!("{GROUPS}/{id}"), &admin, json!({"endpoint_group": {"description": null}})).await;
        assert_eq!(r.status, 200);
        assert!(r.body["endpoint_group"]["description"].is_null());
        assert_eq!(r.body["endpoint_group"]["name"], "g1b");

        // bad input names the field
        let cases = [
            (json!({"endpoint_group": {"filters": {"service_id": s1}}}), "name"),
            (json!({"endpoint_group": {"name": "x"}}), "filters"),
            (json!({"endpoint_group": {"name": "x", "filters": {}}}), "filters"),
            (json!({"endpoint_group": {"name": "x", "filters": {"enabled": true}}}), "filters"),
            (json!({"endpoint_group": {"name": "x", "filters": {"interface": "nope"}}}), "filters.interface"),
            (json!({"endpoint_group": {"name": "x", "filters": {"service_id": s1}, "id": "y"}}), "id"),
            (json!({"endpoint_group": "x"}), "endpoint_group"),
        ];
        for (body, field) in cases {
            let r = c.post(GROUPS, &admin, body.clone()).await;
            assert_eq!(r.status, 400, "{body}: {}", r.text);
            let msg = r.body["error"]["message"].as_str().unwrap_or_default();
            assert!(msg.contains(field), "{msg:?} should name {field:?}");
        }
        let r = c.patch(&format!("{GROUPS}/{id}"), &admin, json!({"endpoint_group": {}})).await;
        assert_eq!(r.status, 400);

        // unknown ids
        let r = c.get(&format!("{GROUPS}/nope"), &admin).await;
        assert_eq!(r.status, 404);
        let r = c.patch(&format!("{GROUPS}/nope"), &admin, json!({"endpoint_group": {"name": "z"}})).await;
        assert_eq!(r.status, 404);
        let r = c.delete(&format!("{GROUPS}/nope"), &admin).await;
        assert_eq!(r.status, 404);

        // members may not manage them
        let (_, _, member) = c.user_with_role(&admin, "member").await;
        let r = c.get(GROUPS, &member).await;
        assert_eq!(r.status, 403);

        let r = c.delete(&format!("{GROUPS}/{id}"), &admin).await;
        assert_eq!(r.status, 204);
        let r = c.get(&format!("{GROUPS}/{id}"), &admin).await;
        assert_eq!(r.status, 404);
        let r = c.get(GROUPS, &admin).await;
        assert!(!r.body["endpoint_groups"].as_array().unwrap().iter().any(|g| g["id"] == id.as_str()));
    }
}

#[tokio::test]
async fn endpoint_group_and_endpoint_project_associations() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let svc = new_service(&c, &admin).await;
        let r = c
            .post(
                "/v3/endpoints",
                &admin,
                json!({"endpoint": {"service_id": svc, "interface": "public", "url": "http://a.example/", "region_id": "RegionOne"}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let ep = r.body["endpoint"]["id"].as_str().unwrap().to_string();
        let r = c
            .post(
                "/v3/endpoints",
                &admin,
                json!({"endpoint": {"service_id": svc, "interface": "admin", "url": "http://b.example/"}}),
            )
            .await;
        let ep_admin = r.body["endpoint"]["id"].as_str().unwrap().to_string();

        let r = c
            .post(
                GROUPS,
                &admin,
                json!({"endpoint_group": {"name": "pub", "filters": {"service_id": svc, "interface": "public"}}}),
            )
            .await;
        let g = r.body["endpoint_group"]["id"].as_str().unwrap().to_string();

        // the group's endpoints
        let r = c.get(&format!("{GROUPS}/{g}/endpoints"), &admin).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let ids: Vec<&str> =
            r.body["endpoints"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec![ep.as_str()]);

        let (pid, _, _) = c.user_with_role(&admin, "member").await;
        let assoc = format!("{GROUPS}/{g}/projects/{pid}");
        let r = c.get(&assoc, &admin).await;
        assert_eq!(r.status, 404);
        let r = c.put(&assoc, &admin).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let r = c.put(&assoc, &admin).await;
        assert_eq!(r.status, 409);
        let r = c.get(&assoc, &admin).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["project_endpoint_group"]["project_id"], pid.as_str());
        assert_eq!(r.body["project_endpoint_group"]["endpoint_group_id"], g.as_str());
        let r = c.put(&format!("{GROUPS}/{g}/projects/nope"), &admin).await;
        assert_eq!(r.status, 404);
        let r = c.put(&format!("{GROUPS}/nope/projects/{pid}"), &admin).await;
        assert_eq!(r.status, 404);

        let r = c.get(&format!("{GROUPS}/{g}/projects"), &admin).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["projects"][0]["id"], pid.as_str());
        let r = c.get(&format!("/v3/OS-EP-FILTER/projects/{pid}/endpoint_groups"), &admin).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["endpoint_groups"][0]["id"], g.as_str());
        let r = c.get("/v3/OS-EP-FILTER/projects/nope/endpoint_groups", &admin).await;
        assert_eq!(r.status, 404);

        // a single endpoint associated directly
        let pe = format!("/v3/OS-EP-FILTER/projects/{pid}/endpoints/{ep_admin}");
        let r = c.get(&pe, &admin).await;
        assert_eq!(r.status, 404);
        let r = c.put(&pe, &admin).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let r = c.get(&pe, &admin).await;
        assert_eq!(r.status, 204);
        let r = c.get(&format!("/v3/OS-EP-FILTER/endpoints/{ep_admin}/projects"), &admin).await;
        assert_eq!(r.body["projects"][0]["id"], pid.as_str());
        let r = c.get(&format!("/v3/OS-EP-FILTER/projects/{pid}/endpoints"), &admin).await;
        assert_eq!(r.status, 200);
        let mut ids: Vec<String> =
            r.body["endpoints"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        let mut want = vec![ep.clone(), ep_admin.clone()];
        want.sort();
        assert_eq!(ids, want, "direct and through the group");
        let r = c.delete(&pe, &admin).await;
        assert_eq!(r.status, 204);
        let r = c.delete(&pe, &admin).await;
        assert_eq!(r.status, 404);

        // removing the association, then deleting the group, forgets it
        let r = c.delete(&assoc, &admin).await;
        assert_eq!(r.status, 204);
        let r = c.delete(&assoc, &admin).await;
        assert_eq!(r.status, 404);
        let r = c.put(&assoc, &admin).await;
        assert_eq!(r.status, 204);
        let r = c.delete(&format!("{GROUPS}/{g}"), &admin).await;
        assert_eq!(r.status, 204);
        let r = c.get(&format!("/v3/OS-EP-FILTER/projects/{pid}/endpoint_groups"), &admin).await;
        assert_eq!(r.body["endpoint_groups"], json!([]));
    }
}
