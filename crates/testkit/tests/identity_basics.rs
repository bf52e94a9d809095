//! Identity end to end over HTTP, on every reachable database backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::json;
use stratus_testkit::{ADMIN_PASSWORD, clouds};

#[tokio::test]
async fn version_documents_and_http_conventions() {
    for c in clouds().await {
        let r = c.call(Method::GET, "/", None, None).await;
        assert_eq!(r.status, 300, "{}", c.backend);
        assert_eq!(r.body["versions"]["values"][0]["id"], "v3.14");
        assert!(r.header("x-openstack-request-id").unwrap().starts_with("req-"));
        assert_eq!(r.header("vary"), Some("X-Auth-Token"));
        let r = c.call(Method::GET, "/v3", None, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["version"]["status"], "stable");
        let r = c.call(Method::HEAD, "/v3", None, None).await;
        assert_eq!(r.status, 200);
        assert!(r.text.is_empty(), "HEAD has no body");
        let r = c.call(Method::GET, "/v3/nonsense", None, None).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["error"]["code"], 404);
    }
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_never_422_or_500() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let cases: Vec<(&str, &str, &str)> = vec![
            ("/v3/projects", "{not json", ""),
            ("/v3/projects", "", ""),
            ("/v3/projects", r#"{"project": {"name": 5}}"#, "project.name"),
            ("/v3/projects", r#"{"project": {"name": "x", "enabled": "yes"}}"#, "project.enabled"),
            ("/v3/projects", r#"{"project": {}}"#, "name"),
            ("/v3/projects", r#"{"project": "x"}"#, "project"),
            ("/v3/users", r#"{"user": {"name": ""}}"#, "user.name"),
            ("/v3/users", r#"{"user": {"name": "a", "options": {"bogus": true}}}"#, "user.options"),
            ("/v3/roles", r#"[]"#, "role"),
            ("/v3/auth/tokens", r#"{"auth": {"identity": {"methods": "password"}}}"#, "auth.identity.methods"),
            (
                "/v3/auth/tokens",
                r#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": 7, "domain": {"id": "default"}}}}}}"#,
                "password",
            ),
        ];
        for (path, body, field) in cases {
            let r = c.raw(Method::POST, path, Some(&admin), body).await;
            assert_eq!(r.status, 400, "{} {path} {body}: {}", c.backend, r.text);
            let msg = r.body["error"]["message"].as_str().unwrap_or_default();
            assert!(msg.contains(field), "message {msg:?} should name {field:?}");
        }
        // unknown ids are 404, not 500
        for path in [
            "/v3/projects/nope",
            "/v3/users/nope",
            "/v3/groups/nope",
            "/v3/roles/nope",
            "/v3/domains/nope",
            "/v3/regions/nope",
        ] {
            let r = c.get(path, &admin).await;
            assert_eq!(r.status, 404, "{path}: {}", r.text);
        }
        // a body over the limit is refused, not read
        let big = format!(r#"{{"project": {{"name": "x", "description": "{}"}}}}"#, "a".repeat(2 * 1024 * 1024));
        let r = c.raw(Method::POST, "/v3/projects", Some(&admin), &big).await;
        assert_eq!(r.status, 413, "{}", r.text);
    }
}

#[tokio::test]
async fn project_user_group_role_lifecycle() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let p = c
            .post(
                "/v3/projects",
                &admin,
                json!({"project": {"name": "alpha", "description": "d", "tags": ["t1", "t2"]}}),
            )
            .await;
        assert_eq!(p.status, 201, "{}", p.text);
        let pid = p.body["project"]["id"].as_str().unwrap().to_string();
        assert_eq!(p.body["project"]["domain_id"], "default");
        assert_eq!(p.body["project"]["parent_id"], "default");
        assert_eq!(p.body["project"]["tags"], json!(["t1", "t2"]));
        let dup = c.post("/v3/projects", &admin, json!({"project": {"name": "alpha"}})).await;
        assert_eq!(dup.status, 409);
        let r = c.get("/v3/projects?name=alpha", &admin).await;
        assert_eq!(r.body["projects"].as_array().unwrap().len(), 1);
        let r = c.get("/v3/projects?tags=t1,t2", &admin).await;
        assert_eq!(r.body["projects"].as_array().unwrap().len(), 1);
        let r = c.get("/v3/projects?not-tags-any=t1", &admin).await;
        assert!(r.body["projects"].as_array().unwrap().iter().all(|p| p["name"] != "alpha"));
        let child = c.post("/v3/projects", &admin, json!({"project": {"name": "alpha-child", "parent_id": pid}})).await;
        assert_eq!(child.status, 201, "{}", child.text);
        let cid = child.body["project"]["id"].as_str().unwrap().to_string();
        let r = c.get(&format!("/v3/projects/{pid}?subtree_as_ids"), &admin).await;
        assert!(r.body["project"]["subtree"].get(&cid).is_some(), "{}", r.text);
        let r = c.delete(&format!("/v3/projects/{pid}"), &admin).await;
        assert_eq!(r.status, 403, "not a leaf");

        let u = c
            .post("/v3/users", &admin, json!({"user": {"name": "bob", "password": "pw", "email": "b@example.org"}}))
            .await;
        assert_eq!(u.status, 201, "{}", u.text);
        let uid = u.body["user"]["id"].as_str().unwrap().to_string();
        assert_eq!(u.body["user"]["email"], "b@example.org");
        assert!(u.body["user"].get("password").is_none());
        let g = c.post("/v3/groups", &admin, json!({"group": {"name": "devs"}})).await;
        assert_eq!(g.status, 201);
        let gid = g.body["group"]["id"].as_str().unwrap().to_string();
        assert_eq!(c.put(&format!("/v3/groups/{gid}/users/{uid}"), &admin).await.status, 204);
        assert_eq!(
            c.call(Method::HEAD, &format!("/v3/groups/{gid}/users/{uid}"), Some(&admin), None).await.status,
            204
        );
        let r = c.get(&format!("/v3/users/{uid}/groups"), &admin).await;
        assert_eq!(r.body["groups"][0]["id"], gid.as_str());
        // a role through the group, inherited from the parent project to the child
        let role = c.post("/v3/roles", &admin, json!({"role": {"name": "observer"}})).await;
        assert_eq!(role.status, 201);
        let rid = role.body["role"]["id"].as_str().unwrap().to_string();
        let r = c
            .put(&format!("/v3/OS-INHERIT/projects/{pid}/groups/{gid}/roles/{rid}/inherited_to_projects"), &admin)
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        let (tok, body) = c
            .token(json!({"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": "pw"}}},
                "scope": {"project": {"id": cid}}}))
            .await;
        assert_eq!(body["token"]["roles"][0]["name"], "observer");
        let r = c.get(&format!("/v3/role_assignments?effective&user.id={uid}&include_names"), &admin).await;
        assert_eq!(r.status, 200);
        let rows = r.body["role_assignments"].as_array().unwrap();
        assert!(
            rows.iter().any(|a| a["scope"]["project"]["id"] == cid.as_str() && a["links"]["membership"].is_string()),
            "{}",
            r.text
        );
        // removing the member revokes its tokens
        assert_eq!(c.delete(&format!("/v3/groups/{gid}/users/{uid}"), &admin).await.status, 204);
        let r = c.call_h(Method::GET, "/v3/auth/tokens", Some(&admin), None, &[("x-subject-token", &tok)]).await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert_eq!(c.delete(&format!("/v3/projects/{cid}"), &admin).await.status, 204);
        assert_eq!(c.delete(&format!("/v3/projects/{pid}"), &admin).await.status, 204);
        assert_eq!(c.delete(&format!("/v3/users/{uid}"), &admin).await.status, 204);
        assert_eq!(c.get(&format!("/v3/users/{uid}"), &admin).await.status, 404);
    }
}

#[tokio::test]
async fn tokens_issue_validate_rescope_revoke() {
    for c in clouds().await {
        let (unscoped, body) = c
            .token(json!({"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}}}))
            .await;
        assert!(body["token"].get("project").is_none());
        assert!(body["token"].get("catalog").is_none());
        // token -> project-scoped token keeps the audit chain
        let (scoped, body) = c
            .token(json!({"identity": {"methods": ["token"], "token": {"id": unscoped}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}))
            .await;
        assert_eq!(body["token"]["methods"], json!(["password", "token"]));
        assert_eq!(body["token"]["audit_ids"].as_array().unwrap().len(), 2);
        assert!(body["token"]["catalog"].as_array().unwrap().iter().any(|s| s["type"] == "identity"));
        let (_, sys) = c.token(json!({"identity": {"methods": ["token"], "token": {"id": unscoped}}, "scope": {"system": {"all": true}}})).await;
        assert_eq!(sys["token"]["system"]["all"], true);
        // no role on the domain: no domain-scoped token
        let r = c.try_token(json!({"identity": {"methods": ["token"], "token": {"id": unscoped}}, "scope": {"domain": {"id": "default"}}})).await;
        assert_eq!(r.status, 401, "{}", r.text);
        // validate, HEAD, nocatalog
        let r = c
            .call_h(Method::GET, "/v3/auth/tokens?nocatalog", Some(&scoped), None, &[("x-subject-token", &scoped)])
            .await;
        assert_eq!(r.status, 200);
        assert!(r.body["token"].get("catalog").is_none());
        let r = c.call_h(Method::HEAD, "/v3/auth/tokens", Some(&scoped), None, &[("x-subject-token", &scoped)]).await;
        assert_eq!(r.status, 200);
        // wrong password, unknown user: 401 with the same message
        let r = c.try_token(json!({"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "wrong"}}}})).await;
        assert_eq!(r.status, 401);
        let r2 = c.try_token(json!({"identity": {"methods": ["password"], "password": {"user": {"name": "nobody", "domain": {"id": "default"}, "password": "wrong"}}}})).await;
        assert_eq!(r2.status, 401);
        assert_eq!(r.body["error"]["message"], r2.body["error"]["message"]);
        // revoke: the token and the tokens made from it stop validating
        let (victim, _) = c.token(json!({"identity": {"methods": ["token"], "token": {"id": scoped}}})).await;
        let admin = c.admin_token().await;
        let r =
            c.call_h(Method::DELETE, "/v3/auth/tokens", Some(&admin), None, &[("x-subject-token", &unscoped)]).await;
        assert_eq!(r.status, 204);
        let r = c.call_h(Method::GET, "/v3/auth/tokens", Some(&admin), None, &[("x-subject-token", &unscoped)]).await;
        assert_eq!(r.status, 404);
        let r = c.call_h(Method::GET, "/v3/auth/tokens", Some(&admin), None, &[("x-subject-token", &victim)]).await;
        assert_eq!(r.status, 404, "a token in the revoked chain is revoked too");
        let r = c.get("/v3/projects", &unscoped).await;
        assert_eq!(r.status, 401);
    }
}

#[tokio::test]
async fn disabling_or_changing_things_revokes_tokens() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (pid, uid, tok) = c.user_with_role(&admin, "member").await;
        let valid = |t: String| {
            let c = &c;
            let admin = admin.clone();
            async move {
                c.call_h(Method::GET, "/v3/auth/tokens", Some(&admin), None, &[("x-subject-token", &t)]).await.status
            }
        };
        assert_eq!(valid(tok.clone()).await, 200);
        // disable the project
        assert_eq!(
            c.patch(&format!("/v3/projects/{pid}"), &admin, json!({"project": {"enabled": false}})).await.status,
            200
        );
        assert_eq!(valid(tok.clone()).await, 404);
        assert_eq!(
            c.patch(&format!("/v3/projects/{pid}"), &admin, json!({"project": {"enabled": true}})).await.status,
            200
        );
        assert_eq!(valid(tok.clone()).await, 404, "a re-enabled project does not revive old tokens");
        // a new token; then change the password
        let t2 = c.token(json!({"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": "pw-secret"}}}, "scope": {"project": {"id": pid}}})).await.0;
        assert_eq!(valid(t2.clone()).await, 200);
        let r = c
            .call(
                Method::POST,
                &format!("/v3/users/{uid}/password"),
                Some(&t2),
                Some(json!({"user": {"original_password": "pw-secret", "password": "new-secret"}})),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_eq!(valid(t2).await, 404);
        // remove the role assignment
        let t3 = c.token(json!({"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": "new-secret"}}}, "scope": {"project": {"id": pid}}})).await.0;
        let rid = c.role_id(&admin, "member").await;
        assert_eq!(c.delete(&format!("/v3/projects/{pid}/users/{uid}/roles/{rid}"), &admin).await.status, 204);
        assert_eq!(valid(t3).await, 404);
        let r = c.try_token(json!({"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": "new-secret"}}}, "scope": {"project": {"id": pid}}})).await;
        assert_eq!(r.status, 401, "no role on the project: no token for it");
        // disable the user
        let unscoped = c.token(json!({"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": "new-secret"}}}})).await.0;
        assert_eq!(c.patch(&format!("/v3/users/{uid}"), &admin, json!({"user": {"enabled": false}})).await.status, 200);
        assert_eq!(valid(unscoped).await, 404);
    }
}

#[tokio::test]
async fn application_credentials_authenticate_with_a_subset_of_roles() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (pid, uid, tok) = c.user_with_role(&admin, "member").await;
        let r = c
            .post(
                &format!("/v3/users/{uid}/application_credentials"),
                &tok,
                json!({"application_credential": {"name": "ci", "roles": [{"name": "reader"}]}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.body["application_credential"]["id"].as_str().unwrap().to_string();
        let secret = r.body["application_credential"]["secret"].as_str().unwrap().to_string();
        let (_, body) = c.token(json!({"identity": {"methods": ["application_credential"], "application_credential": {"id": id, "secret": secret}}})).await;
        assert_eq!(body["token"]["project"]["id"], pid.as_str());
        let roles: Vec<&str> =
            body["token"]["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(roles, vec!["reader"]);
        assert_eq!(body["token"]["application_credential"]["restricted"], true);
        // by name + user
        let (_, _) = c.token(json!({"identity": {"methods": ["application_credential"], "application_credential": {"name": "ci", "user": {"id": uid}, "secret": secret}}})).await;
        let r = c.try_token(json!({"identity": {"methods": ["application_credential"], "application_credential": {"id": id, "secret": "wrong"}}})).await;
        assert_eq!(r.status, 401);
        // a role the user does not have cannot be delegated
        let r = c
            .post(
                &format!("/v3/users/{uid}/application_credentials"),
                &tok,
                json!({"application_credential": {"name": "greedy", "roles": [{"name": "admin"}]}}),
            )
            .await;
        assert!(r.status == 403 || r.status == 400 || r.status == 404, "{}", r.text);
        assert_eq!(c.delete(&format!("/v3/users/{uid}/application_credentials/{id}"), &tok).await.status, 204);
        let r = c.try_token(json!({"identity": {"methods": ["application_credential"], "application_credential": {"id": id, "secret": secret}}})).await;
        assert_eq!(r.status, 401);
    }
}

#[tokio::test]
async fn racing_creates_of_one_name_give_one_201_and_409s() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let futs = (0..8).map(|_| c.post("/v3/projects", &admin, json!({"project": {"name": "contested"}})));
        let results = futures::future::join_all(futs).await;
        let created = results.iter().filter(|r| r.status == 201).count();
        let conflicts = results.iter().filter(|r| r.status == 409).count();
        assert_eq!(
            (created, conflicts),
            (1, 7),
            "{}: {:?}",
            c.backend,
            results.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        let futs =
            (0..8).map(|_| c.post("/v3/users", &admin, json!({"user": {"name": "contested-user", "password": "x"}})));
        let results = futures::future::join_all(futs).await;
        assert_eq!(results.iter().filter(|r| r.status == 201).count(), 1, "{}", c.backend);
        assert!(results.iter().all(|r| r.status == 201 || r.status == 409));
    }
}

#[tokio::test]
async fn expired_tokens_validate_only_with_allow_expired() {
    let c =
        stratus_testkit::Cloud::start_with("sqlite", "sqlite::memory:", |cfg| cfg.identity.token_expiration = 3).await;
    let admin_short = c.admin_token().await;
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    let admin = c.admin_token().await;
    let r = c.call_h(Method::GET, "/v3/auth/tokens", Some(&admin), None, &[("x-subject-token", &admin_short)]).await;
    assert!(r.status == 404 || r.status == 401, "expired token validated: {}", r.text);
    let r = c
        .call_h(
            Method::GET,
            "/v3/auth/tokens?allow_expired=1",
            Some(&admin),
            None,
            &[("x-subject-token", &admin_short)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-subject-token"), Some(admin_short.as_str()));
    // an expired token authenticates nothing
    let r = c.get("/v3/projects", &admin_short).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn lockout_after_failed_attempts_when_configured() {
    let c = stratus_testkit::Cloud::start_with("sqlite", "sqlite::memory:", |cfg| {
        cfg.identity.lockout_failure_attempts = 2;
        cfg.identity.lockout_duration = 600;
    })
    .await;
    let admin = c.admin_token().await;
    let u = c.post("/v3/users", &admin, json!({"user": {"name": "locky", "password": "right"}})).await;
    assert_eq!(u.status, 201);
    let uid = u.body["user"]["id"].as_str().unwrap().to_string();
    let auth =
        |pw: &str| json!({"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": pw}}}});
    assert_eq!(c.try_token(auth("right")).await.status, 201);
    assert_eq!(c.try_token(auth("wrong")).await.status, 401);
    assert_eq!(c.try_token(auth("wrong")).await.status, 401);
    assert_eq!(c.try_token(auth("right")).await.status, 401, "locked out after 2 failures");
    // an admin re-enabling the user lifts the lock
    assert_eq!(c.patch(&format!("/v3/users/{uid}"), &admin, json!({"user": {"enabled": true}})).await.status, 200);
    assert_eq!(c.try_token(auth("right")).await.status, 201);
}

#[tokio::test]
async fn cors_only_when_configured() {
    let c = stratus_testkit::Cloud::start_with("sqlite", "sqlite::memory:", |cfg| {
        cfg.api.cors_allowed_origins = vec!["http://dashboard.example".into()];
    })
    .await;
    let r = c
        .call_h(
            Method::OPTIONS,
            "/v3/auth/tokens",
            None,
            None,
            &[("origin", "http://dashboard.example"), ("access-control-request-method", "POST")],
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), Some("http://dashboard.example"), "{:?}", r.headers);
    let r = c.call_h(Method::GET, "/v3", None, None, &[("origin", "http://evil.example")]).await;
    assert!(r.header("access-control-allow-origin").is_none());
    let plain = stratus_testkit::Cloud::start("sqlite", "sqlite::memory:").await;
    let r = plain.call_h(Method::GET, "/v3", None, None, &[("origin", "http://dashboard.example")]).await;
    assert!(r.header("access-control-allow-origin").is_none(), "no CORS unless configured");
}

#[tokio::test]
async fn a_service_token_must_be_valid_when_presented() {
    let c = stratus_testkit::Cloud::start("sqlite", "sqlite::memory:").await;
    let admin = c.admin_token().await;
    let (pid, _, member) = c.user_with_role(&admin, "member").await;
    let path = format!("/v3/projects/{pid}");
    let r = c.call_h(Method::GET, &path, Some(&member), None, &[("x-service-token", &admin)]).await;
    assert_eq!(r.status, 200, "a valid service token rides along: {}", r.text);
    let r = c.call_h(Method::GET, &path, Some(&member), None, &[("x-service-token", "forged")]).await;
    assert_eq!(r.status, 401, "an invalid service token refuses the request: {}", r.text);
}
