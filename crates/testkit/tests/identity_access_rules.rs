//! Application-credential access rules end to end, on every reachable
//! database backend: rules given at creation (and shown on the credential
//! and in its tokens), the user's rules API, and enforcement by identity
//! itself, by the image and network APIs (in process) and by a service that
//! validates through the identity client (as a separate API process does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{ADMIN_PASSWORD, clouds};

fn app_cred_auth(id: &str, secret: &str) -> Value {
    json!({"identity": {"methods": ["application_credential"], "application_credential": {"id": id, "secret": secret}}})
}

#[tokio::test]
async fn access_rules_are_kept_listed_and_enforced() {
    for mut c in clouds().await {
        let b = c.backend;
        c.start_network().await;
        let admin = c.admin_token().await;
        let (_pid, uid, tok) = c.user_with_role(&admin, "member").await;
        let creds = format!("/v3/users/{uid}/application_credentials");

        // bad rules are 400s naming the field
        for bad in [
            json!([{"service": "image", "path": "/v2/images", "method": "FETCH"}]),
            json!([{"service": "image", "path": "v2/images", "method": "GET"}]),
            json!([{"service": "", "path": "/v2/images", "method": "GET"}]),
            json!([{"service": "image", "method": "GET"}]),
            json!({"service": "image"}),
        ] {
            let r = c.post(&creds, &tok, json!({"application_credential": {"name": "bad", "access_rules": bad}})).await;
            assert_eq!(r.status, 400, "{b}: {bad}: {}", r.text);
            assert!(r.text.contains("access_rules"), "{b}: {}", r.text);
        }

        let rules = json!([
            {"service": "image", "path": "/v2/images", "method": "GET"},
            {"service": "network", "path": "/v2.0/networks/**", "method": "GET"},
            {"service": "identity", "path": "/v3/users/*/access_rules", "method": "GET"},
        ]);
        let r = c.post(&creds, &tok, json!({"application_credential": {"name": "ruled", "access_rules": rules}})).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        let cred = r.body["application_credential"].clone();
        let shown = cred["access_rules"].as_array().unwrap();
        assert_eq!(shown.len(), 3, "{b}");
        for (got, want) in shown.iter().zip(rules.as_array().unwrap()) {
            let mut got = got.clone();
            assert!(got["id"].as_str().is_some_and(|i| !i.is_empty()), "{b}: {got}");
            got.as_object_mut().unwrap().remove("id");
            assert_eq!(&got, want, "{b}");
        }
        let image_rule = shown[0]["id"].as_str().unwrap().to_string();
        let cred_id = cred["id"].as_str().unwrap().to_string();
        let secret = cred["secret"].as_str().unwrap().to_string();
        let r = c.get(&format!("{creds}/{cred_id}"), &tok).await;
        assert_eq!(r.body["application_credential"]["access_rules"], cred["access_rules"], "{b}");
        // a credential without rules shows none
        let r = c.post(&creds, &tok, json!({"application_credential": {"name": "free"}})).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert!(r.body["application_credential"].get("access_rules").is_none(), "{b}: {}", r.text);

        // a second credential reuses an identical rule and a rule by id
        let r = c
            .post(
                &creds,
                &tok,
                json!({"application_credential": {"name": "again", "access_rules": [
                    {"service": "image", "path": "/v2/images", "method": "GET"}, {"id": shown[1]["id"]}]}}),
            )
            .await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        let again = r.body["application_credential"].clone();
        assert_eq!(again["access_rules"][0]["id"], image_rule.as_str(), "{b}");
        assert_eq!(again["access_rules"][1], shown[1], "{b}");

        // the user's rules
        let rules_path = format!("/v3/users/{uid}/access_rules");
        let r = c.get(&rules_path, &tok).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["access_rules"].as_array().unwrap().len(), 3, "{b}: {}", r.text);
        assert!(r.body["links"]["self"].as_str().unwrap().ends_with(&rules_path), "{b}");
        let r = c.get(&format!("{rules_path}?service=image"), &tok).await;
        assert_eq!(r.body["access_rules"].as_array().unwrap().len(), 1, "{b}");
        let r = c.get(&format!("{rules_path}/{image_rule}"), &tok).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["access_rule"]["path"], "/v2/images");
        assert!(r.body["access_rule"]["links"]["self"].as_str().unwrap().ends_with(&image_rule));
        assert_eq!(c.get(&format!("{rules_path}/nope"), &tok).await.status, 404, "{b}");
        // another user may not see them
        let (_, _, other) = c.user_with_role(&admin, "member").await;
        assert_eq!(c.get(&rules_path, &other).await.status, 403, "{b}");
        // in use: 403
        let r = c.delete(&format!("{rules_path}/{image_rule}"), &tok).await;
        assert_eq!(r.status, 403, "{b}: {}", r.text);

        // the token carries the rules
        let (ac_tok, body) = c.token(app_cred_auth(&cred_id, &secret)).await;
        let in_token = body["token"]["application_credential"]["access_rules"].as_array().unwrap();
        assert_eq!(in_token.len(), 3, "{b}: {body}");
        assert_eq!(in_token[0]["id"], image_rule.as_str());

        // identity itself: only the matching request
        let r = c.get(&rules_path, &ac_tok).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let r = c.get(&format!("/v3/users/{uid}"), &ac_tok).await;
        assert_eq!(r.status, 401, "{b}: {}", r.text);
        let r = c.get(&creds, &ac_tok).await;
        assert_eq!(r.status, 401, "{b}: {}", r.text);
        // validating itself is always allowed (by the rules; saying it enforces them)
        let r = c
            .call_h(
                Method::GET,
                "/v3/auth/tokens",
                Some(&ac_tok),
                None,
                &[("x-subject-token", &ac_tok), ("openstack-identity-access-rules", "1.0")],
            )
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);

        // the image API (in process)
        let r = c.image_call(Method::GET, "/v2/images", &ac_tok, None).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let r = c.image_call(Method::GET, "/v2/images/abc", &ac_tok, None).await;
        assert_eq!(r.status, 401, "{b}: {}", r.text);
        let r = c.image_call(Method::POST, "/v2/images", &ac_tok, Some(json!({"name": "x"}))).await;
        assert_eq!(r.status, 401, "{b}: {}", r.text);
        // the network API: `**` covers the collection's members, not the collection
        let net = c.neutron(Method::GET, "/networks/abc", &ac_tok, None).await;
        assert_eq!(net.status, 404, "{b}: {}", net.text);
        let r = c.neutron(Method::GET, "/networks", &ac_tok, None).await;
        assert_eq!(r.status, 401, "{b}: {}", r.text);
        let r = c.neutron(Method::GET, "/ports", &ac_tok, None).await;
        assert_eq!(r.status, 401, "{b}: {}", r.text);
        // with a valid service token the request is part of a chain: allowed
        let r = c
            .http
            .get(format!("{}/v2/images/abc", c.image_url))
            .header("x-auth-token", &ac_tok)
            .header("x-service-token", &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{b}");

        // a validator that does not say it enforces rules gets a 404
        let r = c.call_h(Method::GET, "/v3/auth/tokens", Some(&admin), None, &[("x-subject-token", &ac_tok)]).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        let r = c
            .call_h(
                Method::GET,
                "/v3/auth/tokens",
                Some(&admin),
                None,
                &[("x-subject-token", &ac_tok), ("openstack-identity-access-rules", "1")],
            )
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        // the identity client (what a separate API process uses) says so and gets the rules
        let client = stratus_clients::identity::IdentityClient::new(
            &c.url,
            stratus_clients::identity::ServiceCredentials {
                username: "admin".into(),
                password: ADMIN_PASSWORD.into(),
                user_domain_id: "default".into(),
                project_name: "admin".into(),
                project_domain_id: "default".into(),
            },
            5,
        )
        .unwrap();
        let (_, rules) = client.validate_with_rules(&ac_tok).await.unwrap();
        let rules = rules.expect("the rules");
        assert_eq!(rules.len(), 3, "{b}");
        assert!(stratus_core::access_rules::allows(&rules, "image", "GET", "/v2/images"));
        assert!(!stratus_core::access_rules::allows(&rules, "image", "DELETE", "/v2/images"));
        // a token without rules validates with none
        let (_, none) = client.validate_with_rules(&tok).await.unwrap();
        assert!(none.is_none(), "{b}");

        // the credentials go; their rules stay the user's until deleted
        for id in [&cred_id, again["id"].as_str().unwrap()] {
            assert_eq!(c.delete(&format!("{creds}/{id}"), &tok).await.status, 204, "{b}");
        }
        let r = c.get(&rules_path, &tok).await;
        assert_eq!(r.body["access_rules"].as_array().unwrap().len(), 3, "{b}");
        assert_eq!(c.delete(&format!("{rules_path}/{image_rule}"), &tok).await.status, 204, "{b}");
        assert_eq!(c.get(&format!("{rules_path}/{image_rule}"), &tok).await.status, 404, "{b}");
        let r = c.get(&rules_path, &tok).await;
        assert_eq!(r.body["access_rules"].as_array().unwrap().len(), 2, "{b}");
        // deleting the user deletes its rules
        assert_eq!(c.delete(&format!("/v3/users/{uid}"), &admin).await.status, 204, "{b}");
        let left = stratus_identity::store::appcred::list_access_rules(&c.identity.db, &uid, None, None, None).await;
        assert!(left.unwrap().is_empty(), "{b}");
    }
}
