//! The REST identity client other services use: service token, validation
//! through identity, the same caller context as in process.

use serde_json::json;
use stratus_clients::{IdentityClient, ServiceCredentials};
use stratus_core::auth::TokenError;
use stratus_testkit::Cloud;

#[tokio::test]
async fn a_service_validates_tokens_through_identity() {
    let c = Cloud::start("sqlite", "sqlite::memory:").await;
    let admin = c.admin_token().await;
    // a service user with the service role on the service project, as deployments make them
    let u = c.post("/v3/users", &admin, json!({"user": {"name": "nova", "password": "svc-secret"}})).await;
    let svc_uid = u.body["user"]["id"].as_str().unwrap().to_string();
    let svc_project =
        c.get("/v3/projects?name=service", &admin).await.body["projects"][0]["id"].as_str().unwrap().to_string();
    let service_role = c.role_id(&admin, "service").await;
    assert_eq!(
        c.put(&format!("/v3/projects/{svc_project}/users/{svc_uid}/roles/{service_role}"), &admin).await.status,
        204
    );

    let client = IdentityClient::new(
        &format!("{}/v3", c.url),
        ServiceCredentials {
            username: "nova".into(),
            password: "svc-secret".into(),
            user_domain_id: "default".into(),
            project_name: "service".into(),
            project_domain_id: "default".into(),
        },
        5,
    )
    .unwrap();
    let (pid, uid, member) = c.user_with_role(&admin, "member").await;
    let ctx = client.validate(&member).await.unwrap();
    assert_eq!(ctx.user_id, uid);
    assert_eq!(ctx.project_id.as_deref(), Some(pid.as_str()));
    let mut roles: Vec<&str> = ctx.roles.iter().map(|(_, n)| n.as_str()).collect();
    roles.sort();
    assert_eq!(roles, vec!["member", "reader"]);
    // the service token is reused, not reissued, for the next call
    let t1 = client.service_token().await.unwrap();
    let t2 = client.service_token().await.unwrap();
    assert_eq!(t1, t2);
    assert!(matches!(client.validate("not-a-token").await, Err(TokenError::Invalid(_))));
    // a revoked token is refused once the short cache lapses
    let (fresh, _) = c.token(json!({"identity": {"methods": ["token"], "token": {"id": member}}})).await;
    let r =
        c.call_h(reqwest::Method::DELETE, "/v3/auth/tokens", Some(&admin), None, &[("x-subject-token", &fresh)]).await;
    assert_eq!(r.status, 204);
    assert!(matches!(client.validate(&fresh).await, Err(TokenError::Invalid(_))));
}
