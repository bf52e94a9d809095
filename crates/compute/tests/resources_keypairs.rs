//! Key pairs over HTTP on every reachable backend: import and generation
//! per microversion, fingerprints, names, admins acting for users, paging,
//! the `key_pairs` quota and racing creates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

const KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw== Generated-by-Nova";
const KEY_FP: &str = "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c";
// an Ed25519 key (32 zero bytes as the point: well-formed for the wire format)
const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA me@host";

#[tokio::test]
async fn import_list_show_delete_per_microversion() {
    for api in apis().await {
        let b = api.backend;
        // 2.1: 200, no type
        let r =
            api.post("/v2.1/os-keypairs", MEMBER, "2.1", json!({"keypair": {"name": "k1", "public_key": KEY}})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let k = &r.body["keypair"];
        assert_eq!(k["fingerprint"], KEY_FP);
        assert_eq!(k["user_id"], MEMBER_USER);
        assert!(k.get("type").is_none() && k.get("private_key").is_none());
        // type at 2.1 is an unknown property
        let r = api
            .post(
                "/v2.1/os-keypairs",
                MEMBER,
                "2.1",
                json!({"keypair": {"name": "k2", "public_key": KEY, "type": "ssh"}}),
            )
            .await;
        assert_eq!(r.status, 400, "{b}");
        // 2.2: 201 with type
        let r = api
            .post(
                "/v2.1/os-keypairs",
                MEMBER,
                "2.2",
                json!({"keypair": {"name": "k2", "public_key": ED25519, "type": "ssh"}}),
            )
            .await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(r.body["keypair"]["type"], "ssh");

        let r = api.get("/v2.1/os-keypairs", MEMBER, "2.2").await;
        let list = r.body["keypairs"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["keypair"]["name"], "k1");
        assert_eq!(list[0]["keypair"].as_object().unwrap().len(), 4, "name, public_key, fingerprint, type");
        assert!(r.body.get("keypairs_links").is_none());
        let r = api.get("/v2.1/os-keypairs", MEMBER, "2.1").await;
        assert_eq!(r.body["keypairs"][0]["keypair"].as_object().unwrap().len(), 3);

        let r = api.get("/v2.1/os-keypairs/k1", MEMBER, "2.2").await;
        let k = &r.body["keypair"];
        assert_eq!(k["deleted"], false);
        assert_eq!(k["deleted_at"], json!(null));
        assert_eq!(k["updated_at"], json!(null));
        assert!(k["id"].is_i64());
        assert_eq!(k["type"], "ssh");
        assert!(k["created_at"].as_str().unwrap().len() == 26, "{}", k["created_at"]);

        // another user sees none of them
        assert_eq!(api.get("/v2.1/os-keypairs", OTHER, "2.2").await.body["keypairs"], json!([]));
        let r = api.get("/v2.1/os-keypairs/k1", OTHER, "2.2").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["itemNotFound"]["message"], format!("Keypair k1 not found for user {OTHER_USER}"));

        // a duplicate name is a conflict
        let r =
            api.post("/v2.1/os-keypairs", MEMBER, "2.2", json!({"keypair": {"name": "k1", "public_key": KEY}})).await;
        assert_eq!(r.status, 409);
        assert_eq!(r.body["conflictingRequest"]["message"], "Key pair 'k1' already exists.");

        // delete: 202 before 2.2, 204 from it
        assert_eq!(api.delete("/v2.1/os-keypairs/k1", MEMBER, "2.1").await.status, 202);
        assert_eq!(api.delete("/v2.1/os-keypairs/k2", MEMBER, "2.2").await.status, 204);
        assert_eq!(api.delete("/v2.1/os-keypairs/k2", MEMBER, "2.2").await.status, 404);
    }
}

#[tokio::test]
async fn generation_names_and_bad_keys() {
    for api in apis().await {
        let b = api.backend;
        // generated before 2.92: the private key comes back once
        let r = api.post("/v2.1/os-keypairs", MEMBER, "2.91", json!({"keypair": {"name": "gen"}})).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        let k = &r.body["keypair"];
        assert!(k["private_key"].as_str().unwrap().contains("PRIVATE KEY"));
        assert!(k["public_key"].as_str().unwrap().starts_with("ssh-rsa "));
        assert_eq!(k["fingerprint"].as_str().unwrap().len(), 47);
        let r = api.get("/v2.1/os-keypairs/gen", MEMBER, "2.91").await;
        assert!(r.body["keypair"].get("private_key").is_none());
        let r =
            api.post("/v2.1/os-keypairs", MEMBER, "2.2", json!({"keypair": {"name": "cert", "type": "x509"}})).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert!(r.body["keypair"]["public_key"].as_str().unwrap().contains("BEGIN CERTIFICATE"));
        assert_eq!(r.body["keypair"]["fingerprint"].as_str().unwrap().len(), 59);
        // from 2.92 a public key is required
        let r = api.post("/v2.1/os-keypairs", MEMBER, "2.92", json!({"keypair": {"name": "nokey"}})).await;
        assert_eq!(r.status, 400, "{b}");
        assert!(r.text.contains("'public_key' is a required property"), "{}", r.text);

        // names: '@' and '.' from 2.92 only; no surrounding spaces
        let r = api
            .post("/v2.1/os-keypairs", MEMBER, "2.91", json!({"keypair": {"name": "me@host.x", "public_key": KEY}}))
            .await;
        assert_eq!(r.status, 400, "{b}");
        assert!(r.text.contains("does not match"), "{}", r.text);
        let r = api
            .post("/v2.1/os-keypairs", MEMBER, "2.92", json!({"keypair": {"name": "me@host.x", "public_key": KEY}}))
            .await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        for name in [json!(" lead"), json!(""), json!("x".repeat(256)), json!(5)] {
            let r = api
                .post("/v2.1/os-keypairs", MEMBER, "2.92", json!({"keypair": {"name": name, "public_key": KEY}}))
                .await;
            assert_eq!(r.status, 400, "{b}: {name}");
        }
        // keys that are not keys
        for key in ["ssh-rsa AAAA", "not a key", "ssh-rsa !!!!", ""] {
            let r = api
                .post("/v2.1/os-keypairs", MEMBER, "2.2", json!({"keypair": {"name": "bad", "public_key": key}}))
                .await;
            assert_eq!(r.status, 400, "{b}: {key}");
            assert_eq!(r.body["badRequest"]["message"], "Keypair data is invalid: failed to generate fingerprint");
        }
        let r = api
            .post(
                "/v2.1/os-keypairs",
                MEMBER,
                "2.2",
                json!({"keypair": {"name": "bad", "type": "x509", "public_key": KEY}}),
            )
            .await;
        assert_eq!(r.status, 400, "{b}");
        let r = api
            .post(
                "/v2.1/os-keypairs",
                MEMBER,
                "2.2",
                json!({"keypair": {"name": "bad", "type": "pgp", "public_key": KEY}}),
            )
            .await;
        assert_eq!(r.status, 400, "{b}");
    }
}

#[tokio::test]
async fn admins_act_for_users_from_2_10() {
    for api in apis().await {
        let b = api.backend;
        let body = json!({"keypair": {"name": "for-member", "public_key": KEY, "user_id": MEMBER_USER}});
        // user_id is unknown before 2.10
        assert_eq!(api.post("/v2.1/os-keypairs", ADMIN, "2.9", body.clone()).await.status, 400, "{b}");
        let r = api.post("/v2.1/os-keypairs", ADMIN, "2.10", body).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(r.body["keypair"]["user_id"], MEMBER_USER);
        assert_eq!(api.get("/v2.1/os-keypairs/for-member", MEMBER, "2.10").await.status, 200);
        // members act for themselves only
        let r = api
            .post(
                "/v2.1/os-keypairs",
                MEMBER,
                "2.10",
                json!({"keypair": {"name": "x", "public_key": KEY, "user_id": OTHER_USER}}),
            )
            .await;
        assert_eq!(r.status, 403, "{b}");
        assert_eq!(api.get(&format!("/v2.1/os-keypairs?user_id={OTHER_USER}"), MEMBER, "2.10").await.status, 403);
        let r = api.get(&format!("/v2.1/os-keypairs?user_id={MEMBER_USER}"), ADMIN, "2.10").await;
        assert_eq!(r.body["keypairs"].as_array().unwrap().len(), 1);
        // before 2.10 the parameter means nothing: the admin's own (empty) list
        let r = api.get(&format!("/v2.1/os-keypairs?user_id={MEMBER_USER}"), ADMIN, "2.9").await;
        assert_eq!(r.body["keypairs"], json!([]));
        let r = api.get(&format!("/v2.1/os-keypairs/for-member?user_id={MEMBER_USER}"), ADMIN, "2.10").await;
        assert_eq!(r.status, 200);
        let r = api.delete(&format!("/v2.1/os-keypairs/for-member?user_id={MEMBER_USER}"), ADMIN, "2.10").await;
        assert_eq!(r.status, 204);
        // unknown query parameters from 2.75
        assert_eq!(api.get("/v2.1/os-keypairs?x=1", MEMBER, "2.74").await.status, 200);
        assert_eq!(api.get("/v2.1/os-keypairs?x=1", MEMBER, "2.75").await.status, 400);
    }
}

#[tokio::test]
async fn paging_from_2_35() {
    for api in apis().await {
        let b = api.backend;
        for n in ["c", "a", "d", "b"] {
            let r =
                api.post("/v2.1/os-keypairs", MEMBER, "2.35", json!({"keypair": {"name": n, "public_key": KEY}})).await;
            assert_eq!(r.status, 201, "{b}");
        }
        let names = |r: &Resp| -> Vec<String> {
            r.body["keypairs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["keypair"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let r = api.get("/v2.1/os-keypairs?limit=2", MEMBER, "2.35").await;
        assert_eq!(names(&r), ["a", "b"], "{b}");
        assert_eq!(r.body["keypairs_links"][0]["href"], format!("{}/v2.1/os-keypairs?limit=2&marker=b", api.base));
        let r = api.get("/v2.1/os-keypairs?limit=2&marker=b", MEMBER, "2.35").await;
        assert_eq!(names(&r), ["c", "d"]);
        let r = api.get("/v2.1/os-keypairs?marker=zzz", MEMBER, "2.35").await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["badRequest"]["message"], "Marker zzz could not be found.");
        // before 2.35 paging parameters are ignored
        assert_eq!(names(&api.get("/v2.1/os-keypairs?limit=1", MEMBER, "2.34").await).len(), 4);
    }
}

#[tokio::test]
async fn quota_and_racing_creates() {
    for api in apis().await {
        let b = api.backend;
        let r = api
            .put(&format!("/v2.1/os-quota-sets/{PROJECT_A}"), ADMIN, "2.1", json!({"quota_set": {"key_pairs": 3}}))
            .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let api = std::sync::Arc::new(api);
        // eight racing creates of different names: three fit
        let mut tasks = Vec::new();
        for i in 0..8 {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                let r = api
                    .post(
                        "/v2.1/os-keypairs",
                        MEMBER,
                        "2.2",
                        json!({"keypair": {"name": format!("q{i}"), "public_key": KEY}}),
                    )
                    .await;
                (r.status, r.text)
            }));
        }
        let mut codes = Vec::new();
        for t in tasks {
            let (code, text) = t.await.unwrap();
            if code == 403 {
                assert!(text.contains("Quota exceeded, too many key pairs."), "{text}");
            }
            codes.push(code);
        }
        codes.sort();
        assert_eq!(codes, [201, 201, 201, 403, 403, 403, 403, 403], "{b}");
        // the quota is per user: another user still has room
        let r =
            api.post("/v2.1/os-keypairs", OTHER, "2.2", json!({"keypair": {"name": "q0", "public_key": KEY}})).await;
        assert_eq!(r.status, 201, "{b}");

        // racing creates of one name: one wins
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                api.post("/v2.1/os-keypairs", READER, "2.2", json!({"keypair": {"name": "same", "public_key": KEY}}))
                    .await
                    .status
            }));
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        codes.sort();
        assert_eq!(codes, [201, 409, 409, 409, 409], "{b}");
    }
}

#[tokio::test]
async fn nul_characters_and_oversized_ids_are_400s() {
    for api in apis().await {
        let b = api.backend;
        for path in [
            "/v2.1/flavors/a%00b",
            "/v2.1/os-keypairs/k%00",
            "/v2.1/os-server-groups?all_projects=%00",
            "/v2.1/os-aggregates/1%00",
        ] {
            let r = api.get(path, ADMIN, "2.1").await;
            assert_eq!(r.status, 400, "{b}: {path}: {}", r.text);
        }
        let key = format!("{KEY}\u{0}");
        let r =
            api.post("/v2.1/os-keypairs", MEMBER, "2.2", json!({"keypair": {"name": "nul", "public_key": key}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = api
            .post(
                "/v2.1/flavors",
                ADMIN,
                "2.1",
                json!({"flavor": {"name": "nulf", "id": "nulf", "ram": 64, "vcpus": 1, "disk": 1}}),
            )
            .await;
        assert_eq!(r.status, 200, "{b}");
        let mut f = json!({"flavor": {"name": "priv", "id": "priv", "ram": 64, "vcpus": 1, "disk": 1}});
        f["flavor"]["os-flavor-access:is_public"] = json!(false);
        assert_eq!(api.post("/v2.1/flavors", ADMIN, "2.1", f).await.status, 200);
        let r = api
            .post("/v2.1/flavors/priv/action", ADMIN, "2.1", json!({"addTenantAccess": {"tenant": "a\u{0}b"}}))
            .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r =
            api.post("/v2.1/flavors/nulf/os-extra_specs", ADMIN, "2.1", json!({"extra_specs": {"k": "v\u{0}"}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let long = "p".repeat(300);
        let r =
            api.put(&format!("/v2.1/os-quota-sets/{long}"), ADMIN, "2.1", json!({"quota_set": {"instances": 1}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = api
            .put(
                &format!("/v2.1/os-quota-sets/{PROJECT_A}?user_id={long}"),
                ADMIN,
                "2.1",
                json!({"quota_set": {"instances": 1}}),
            )
            .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = api
            .post(
                "/v2.1/os-keypairs",
                ADMIN,
                "2.10",
                json!({"keypair": {"name": "long", "public_key": KEY, "user_id": long}}),
            )
            .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
    }
}
