//! The authorization matrix: for identity endpoints, who may call them under
//! Keystone's default policy (admin, member, reader of a project, a user of
//! another project, and no token at all).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::Cloud;

/// Expected status per persona: admin, member, reader, other-project user, no token.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    expect: [u16; 5],
}

fn case(method: Method, path: impl Into<String>, body: Option<Value>, expect: [u16; 5]) -> Case {
    Case { method, path: path.into(), body, expect }
}

#[tokio::test]
async fn identity_authorization_matrix() {
    let c = Cloud::start("sqlite", "sqlite::memory:").await;
    let admin = c.admin_token().await;
    let (pid, member_id, member) = c.user_with_role(&admin, "member").await;
    // a reader of the same project
    let u = c.post("/v3/users", &admin, json!({"user": {"name": "reader-user", "password": "pw-secret"}})).await;
    let reader_id = u.body["user"]["id"].as_str().unwrap().to_string();
    let rid = c.role_id(&admin, "reader").await;
    assert_eq!(c.put(&format!("/v3/projects/{pid}/users/{reader_id}/roles/{rid}"), &admin).await.status, 204);
    let reader = c
        .token(json!({"identity": {"methods": ["password"], "password": {"user": {"id": reader_id, "password": "pw-secret"}}},
            "scope": {"project": {"id": pid}}}))
        .await
        .0;
    let (other_pid, _other_id, other) = c.user_with_role(&admin, "member").await;
    let g = c.post("/v3/groups", &admin, json!({"group": {"name": "matrix-group"}})).await;
    let gid = g.body["group"]["id"].as_str().unwrap().to_string();
    let member_role = c.role_id(&admin, "member").await;

    // statuses: 2xx where allowed; 403 refused; 401 without a token
    let cases = vec![
        case(Method::GET, "/v3/users", None, [200, 403, 403, 403, 401]),
        case(Method::GET, format!("/v3/users/{member_id}"), None, [200, 200, 403, 403, 401]),
        case(Method::POST, "/v3/users", Some(json!({"user": {"name": "mx"}})), [201, 403, 403, 403, 401]),
        case(
            Method::PATCH,
            format!("/v3/users/{reader_id}"),
            Some(json!({"user": {"description": "x"}})),
            [200, 403, 403, 403, 401],
        ),
        case(Method::GET, "/v3/projects", None, [200, 403, 403, 403, 401]),
        case(Method::GET, format!("/v3/projects/{pid}"), None, [200, 200, 200, 403, 401]),
        case(Method::GET, format!("/v3/projects/{other_pid}"), None, [200, 403, 403, 200, 401]),
        case(Method::POST, "/v3/projects", Some(json!({"project": {"name": "mx-p"}})), [201, 403, 403, 403, 401]),
        case(Method::GET, format!("/v3/users/{member_id}/projects"), None, [200, 200, 403, 403, 401]),
        case(Method::GET, "/v3/domains", None, [200, 403, 403, 403, 401]),
        case(Method::GET, "/v3/domains/default", None, [200, 200, 200, 200, 401]),
        case(Method::POST, "/v3/domains", Some(json!({"domain": {"name": "mx-d"}})), [201, 403, 403, 403, 401]),
        case(Method::GET, "/v3/groups", None, [200, 403, 403, 403, 401]),
        case(Method::GET, format!("/v3/groups/{gid}"), None, [200, 403, 403, 403, 401]),
        case(Method::GET, "/v3/roles", None, [200, 403, 403, 403, 401]),
        case(Method::POST, "/v3/roles", Some(json!({"role": {"name": "mx-r"}})), [201, 403, 403, 403, 401]),
        case(Method::GET, "/v3/role_assignments", None, [200, 403, 403, 403, 401]),
        case(
            Method::PUT,
            format!("/v3/projects/{pid}/groups/{gid}/roles/{member_role}"),
            None,
            [204, 403, 403, 403, 401],
        ),
        case(Method::GET, "/v3/regions", None, [200, 200, 200, 200, 401]),
        case(Method::POST, "/v3/regions", Some(json!({"region": {"description": "x"}})), [201, 403, 403, 403, 401]),
        case(Method::GET, "/v3/services", None, [200, 403, 403, 403, 401]),
        case(Method::GET, "/v3/endpoints", None, [200, 403, 403, 403, 401]),
        case(Method::GET, "/v3/auth/catalog", None, [200, 200, 200, 200, 401]),
        case(Method::GET, "/v3/auth/projects", None, [200, 200, 200, 200, 401]),
        case(Method::GET, "/v3/credentials", None, [200, 200, 200, 200, 401]),
        case(Method::GET, "/v3/policies", None, [200, 403, 403, 403, 401]),
        case(Method::GET, "/v3/registered_limits", None, [200, 200, 200, 200, 401]),
        case(Method::GET, "/v3/limits", None, [200, 200, 200, 200, 401]),
        case(Method::GET, format!("/v3/users/{member_id}/application_credentials"), None, [200, 200, 403, 403, 401]),
    ];
    let personas: [Option<&str>; 5] = [Some(&admin), Some(&member), Some(&reader), Some(&other), None];
    let names = ["admin", "member", "reader", "other-project", "no-token"];
    let mut wrong = Vec::new();
    for cs in &cases {
        for (i, tok) in personas.iter().enumerate() {
            let r = c.call(cs.method.clone(), &cs.path, *tok, cs.body.clone()).await;
            let got = r.status.as_u16();
            let want = cs.expect[i];
            if got != want {
                wrong.push(format!("{} {} as {}: got {got}, want {want} ({})", cs.method, cs.path, names[i], r.text));
            }
        }
    }
    assert!(wrong.is_empty(), "authorization matrix mismatches:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn operator_policy_file_overrides_a_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, "# only admins may list regions here\n\"identity:list_regions\": \"role:admin\"\n").unwrap();
    let path = file.to_string_lossy().to_string();
    let c = Cloud::start_with("sqlite", "sqlite::memory:", |cfg| cfg.policy.file = path).await;
    let admin = c.admin_token().await;
    let (_, _, member) = c.user_with_role(&admin, "member").await;
    assert_eq!(c.get("/v3/regions", &admin).await.status, 200);
    assert_eq!(c.get("/v3/regions", &member).await.status, 403, "the override applies");
    assert_eq!(c.get("/v3/regions/RegionOne", &member).await.status, 200, "other defaults stay");
}
