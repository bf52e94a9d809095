//! No input produces a 500: every create and update endpoint gets malformed
//! bodies of many shapes and must answer 4xx.

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::Cloud;

fn shapes(key: &str) -> Vec<Value> {
    let mut v = vec![json!(null), json!([]), json!("x"), json!(7), json!({}), json!({"other": {}})];
    for inner in [json!(null), json!([]), json!("x"), json!(1.5), json!(true)] {
        v.push(json!({ key: inner }));
    }
    let weird =
        [json!(null), json!([]), json!({}), json!(12), json!(true), json!("x".repeat(300)), json!(""), json!(-1)];
    for field in [
        "name",
        "id",
        "domain_id",
        "parent_id",
        "enabled",
        "description",
        "tags",
        "options",
        "password",
        "type",
        "blob",
        "user_id",
        "project_id",
        "service_id",
        "interface",
        "url",
        "region_id",
        "parent_region_id",
        "default_limit",
        "resource_limit",
        "resource_name",
        "expires_at",
        "roles",
        "secret",
        "unrestricted",
        "filters",
        "is_domain",
        "default_project_id",
        "access_rules",
    ] {
        for w in &weird {
            v.push(json!({ key: { field: w } }));
        }
    }
    v
}

#[tokio::test]
async fn malformed_bodies_never_give_a_500() {
    let c = Cloud::start("sqlite", "sqlite::memory:").await;
    let admin = c.admin_token().await;
    // a user to mutate (patching the admin's password would end the admin's token)
    let u = c.post("/v3/users", &admin, json!({"user": {"name": "fuzz-user", "password": "pw"}})).await;
    let uid = u.body["user"]["id"].as_str().unwrap_or_default().to_string();
    let p = c.post("/v3/projects", &admin, json!({"project": {"name": "fuzz"}})).await;
    let pid = p.body["project"]["id"].as_str().unwrap_or_default().to_string();
    let r = c.post("/v3/regions", &admin, json!({"region": {"id": "fuzz-region"}})).await;
    assert_eq!(r.status, 201);
    let targets: Vec<(Method, String, &str)> = vec![
        (Method::POST, "/v3/projects".into(), "project"),
        (Method::PATCH, format!("/v3/projects/{pid}"), "project"),
        (Method::POST, "/v3/domains".into(), "domain"),
        (Method::PATCH, "/v3/domains/default".into(), "domain"),
        (Method::POST, "/v3/users".into(), "user"),
        (Method::PATCH, format!("/v3/users/{uid}"), "user"),
        (Method::POST, format!("/v3/users/{uid}/password"), "user"),
        (Method::POST, "/v3/groups".into(), "group"),
        (Method::POST, "/v3/roles".into(), "role"),
        (Method::POST, "/v3/regions".into(), "region"),
        (Method::PATCH, "/v3/regions/fuzz-region".into(), "region"),
        (Method::POST, "/v3/services".into(), "service"),
        (Method::POST, "/v3/endpoints".into(), "endpoint"),
        (Method::POST, "/v3/credentials".into(), "credential"),
        (Method::POST, "/v3/policies".into(), "policy"),
        (Method::POST, format!("/v3/users/{uid}/application_credentials"), "application_credential"),
        (Method::POST, "/v3/registered_limits".into(), "registered_limits"),
        (Method::POST, "/v3/limits".into(), "limits"),
        (Method::PUT, "/v3/domains/default/config".into(), "config"),
        (Method::POST, "/v3/OS-EP-FILTER/endpoint_groups".into(), "endpoint_group"),
        (Method::PUT, format!("/v3/projects/{pid}/tags"), "tags"),
        (Method::POST, "/v3/auth/tokens".into(), "auth"),
    ];
    let mut bad = Vec::new();
    for (m, path, key) in &targets {
        for body in shapes(key) {
            let r = c.call(m.clone(), path, Some(&admin), Some(body.clone())).await;
            if r.status.is_server_error() {
                bad.push(format!("{m} {path} {body} -> {} {}", r.status, r.text));
            }
        }
        // and bytes that are not JSON at all
        let r = c.raw(m.clone(), path, Some(&admin), "\u{0}\u{1}{{{").await;
        if r.status != 400 {
            bad.push(format!("{m} {path} <garbage> -> {} {}", r.status, r.text));
        }
    }
    assert!(bad.is_empty(), "{} requests answered 5xx:\n{}", bad.len(), bad.join("\n"));
}
