//! Generic volume groups, group types, group snapshots and user messages,
//! on every reachable database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cloud;

use cloud::{ADMIN, MEMBER, OTHER, READER, clouds};
use reqwest::Method;
use serde_json::{Value, json};

async fn call(c: &cloud::Cloud, m: Method, path: &str, tok: &str, mv: &str, body: Option<Value>) -> cloud::Resp {
    c.call(m, path, tok, Some(mv), body).await
}

/// Poll a group (or group snapshot) until it reaches `want`.
async fn wait(c: &cloud::Cloud, path: &str, key: &str, want: &str) -> Value {
    for _ in 0..400 {
        let r = call(c, Method::GET, path, ADMIN, "3.20", None).await;
        if r.body[key]["status"] == want {
            return r.body[key].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{}: {path} never reached {want}", c.backend);
}

async fn wait_gone(c: &cloud::Cloud, path: &str) {
    for _ in 0..400 {
        if call(c, Method::GET, path, ADMIN, "3.20", None).await.status == 404 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{}: {path} never went away", c.backend);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_types_and_specs() {
    for c in clouds().await {
        let b = c.backend;
        // below 3.11 there are no group types
        assert_eq!(call(&c, Method::GET, "/v3/group_types", ADMIN, "3.10", None).await.status, 404, "{b}");
        let body = json!({"group_type": {"name": "gt1", "description": "d", "is_public": true,
            "group_specs": {"consistent_group_snapshot_enabled": "<is> False"}}});
        let r = call(&c, Method::POST, "/v3/group_types", ADMIN, "3.11", Some(body.clone())).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let gt = r.body["group_type"].clone();
        assert_eq!(gt["name"], "gt1", "{b}");
        assert_eq!(gt["group_specs"]["consistent_group_snapshot_enabled"], "<is> False", "{b}");
        let id = gt["id"].as_str().unwrap().to_string();
        // same name: 409; members may not create
        assert_eq!(call(&c, Method::POST, "/v3/group_types", ADMIN, "3.11", Some(body)).await.status, 409, "{b}");
        let r =
            call(&c, Method::POST, "/v3/group_types", MEMBER, "3.11", Some(json!({"group_type": {"name": "x"}}))).await;
        assert_eq!(r.status, 403, "{b}: {}", r.text);
        let r = call(
            &c,
            Method::POST,
            "/v3/group_types",
            ADMIN,
            "3.11",
            Some(json!({"group_type": {"name": "x", "bogus": 1}})),
        )
        .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);

        // a private one; lists by is_public and sort
        let r = call(
            &c,
            Method::POST,
            "/v3/group_types",
            ADMIN,
            "3.11",
            Some(json!({"group_type": {"name": "a_priv", "is_public": false}})),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let priv_id = r.body["group_type"]["id"].as_str().unwrap().to_string();
        let names = |r: &cloud::Resp| -> Vec<String> {
            r.body["group_types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
        };
        let r = call(&c, Method::GET, "/v3/group_types?is_public=None&sort=name:asc", ADMIN, "3.11", None).await;
        assert_eq!(names(&r), vec!["a_priv", "gt1"], "{b}: {}", r.text);
        let r = call(&c, Method::GET, "/v3/group_types?is_public=None&sort=name:desc", ADMIN, "3.11", None).await;
        assert_eq!(names(&r), vec!["gt1", "a_priv"], "{b}");
        let r = call(&c, Method::GET, "/v3/group_types?is_public=False", ADMIN, "3.11", None).await;
        assert_eq!(names(&r), vec!["a_priv"], "{b}");
        let r = call(&c, Method::GET, "/v3/group_types", ADMIN, "3.11", None).await;
        assert_eq!(names(&r), vec!["gt1"], "{b}");
        // members see public ones, without specs; a private one is 404 to them
        let r = call(&c, Method::GET, "/v3/group_types?is_public=None", MEMBER, "3.11", None).await;
        assert_eq!(names(&r), vec!["gt1"], "{b}");
        assert!(r.body["group_types"][0].get("group_specs").is_none(), "{b}: specs shown to a member");
        assert_eq!(
            call(&c, Method::GET, &format!("/v3/group_types/{priv_id}"), MEMBER, "3.11", None).await.status,
            404,
            "{b}"
        );
        assert_eq!(call(&c, Method::GET, "/v3/group_types/default", MEMBER, "3.11", None).await.status, 404, "{b}");

        // update
        let r = call(
            &c,
            Method::PUT,
            &format!("/v3/group_types/{id}"),
            ADMIN,
            "3.11",
            Some(json!({"group_type": {"name": "gt1-new", "description": "nd"}})),
        )
        .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["group_type"]["name"], "gt1-new", "{b}");
        let r = call(&c, Method::PUT, &format!("/v3/group_types/{id}"), ADMIN, "3.11", Some(json!({"group_type": {}})))
            .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = call(&c, Method::GET, &format!("/v3/group_types/{id}"), ADMIN, "3.11", None).await;
        assert_eq!(r.body["group_type"]["description"], "nd", "{b}");
        assert_eq!(r.body["group_type"]["is_public"], true, "{b}");

        // specs
        let specs = format!("/v3/group_types/{id}/group_specs");
        let r = call(
            &c,
            Method::POST,
            &specs,
            ADMIN,
            "3.11",
            Some(json!({"group_specs": {"key1": "value1", "key2": "value2"}})),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(r.body, json!({"group_specs": {"key1": "value1", "key2": "value2"}}), "{b}");
        let r = call(
            &c,
            Method::POST,
            &specs,
            ADMIN,
            "3.11",
            Some(json!({"group_specs": {"key2": "v2u", "key3": "value3"}})),
        )
        .await;
        assert_eq!(r.body, json!({"group_specs": {"key2": "v2u", "key3": "value3"}}), "{b}");
        let r = call(&c, Method::GET, &format!("{specs}/key2"), ADMIN, "3.11", None).await;
        assert_eq!(r.body, json!({"key2": "v2u"}), "{b}: {}", r.text);
        let r = call(&c, Method::PUT, &format!("{specs}/key3"), ADMIN, "3.11", Some(json!({"key3": "v3u"}))).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body, json!({"key3": "v3u"}), "{b}");
        let r = call(&c, Method::PUT, &format!("{specs}/key3"), ADMIN, "3.11", Some(json!({"key4": "x"}))).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = call(&c, Method::GET, &specs, ADMIN, "3.11", None).await;
        assert_eq!(
            r.body["group_specs"],
            json!({"consistent_group_snapshot_enabled": "<is> False", "key1": "value1", "key2": "v2u", "key3": "v3u"}),
            "{b}"
        );
        for k in ["key1", "key2", "key3"] {
            assert_eq!(call(&c, Method::DELETE, &format!("{specs}/{k}"), ADMIN, "3.11", None).await.status, 202, "{b}");
            assert_eq!(call(&c, Method::GET, &format!("{specs}/{k}"), ADMIN, "3.11", None).await.status, 404, "{b}");
        }
        assert_eq!(call(&c, Method::GET, &specs, MEMBER, "3.11", None).await.status, 403, "{b}");

        // delete
        assert_eq!(
            call(&c, Method::DELETE, &format!("/v3/group_types/{id}"), ADMIN, "3.11", None).await.status,
            202,
            "{b}"
        );
        assert_eq!(
            call(&c, Method::GET, &format!("/v3/group_types/{id}"), ADMIN, "3.11", None).await.status,
            404,
            "{b}"
        );
        assert_eq!(
            call(&c, Method::DELETE, &format!("/v3/group_types/{id}"), ADMIN, "3.11", None).await.status,
            404,
            "{b}"
        );
    }
}

/// A volume type and a group type (admin-made); their ids.
async fn types(c: &cloud::Cloud, tag: &str) -> (String, String) {
    let r = c.post("/v3/types", ADMIN, json!({"volume_type": {"name": format!("vt-{tag}")}})).await;
    assert_eq!(r.status, 200, "{}: {}", c.backend, r.text);
    let vt = r.body["volume_type"]["id"].as_str().unwrap().to_string();
    let r = call(
        c,
        Method::POST,
        "/v3/group_types",
        ADMIN,
        "3.11",
        Some(json!({"group_type": {"name": format!("gt-{tag}")}})),
    )
    .await;
    assert_eq!(r.status, 202, "{}: {}", c.backend, r.text);
    (vt, r.body["group_type"]["id"].as_str().unwrap().to_string())
}

/// A volume of type `vt` made by `token`, available; its id.
async fn typed_volume(c: &cloud::Cloud, token: &str, vt: &str) -> String {
    let r = c.post("/v3/volumes", token, json!({"volume": {"size": 1, "volume_type": vt}})).await;
    assert_eq!(r.status, 202, "{}: {}", c.backend, r.text);
    let id = r.body["volume"]["id"].as_str().unwrap().to_string();
    c.wait_status(&format!("/v3/volumes/{id}"), "volume", "available").await;
    id
}

async fn group_volumes(c: &cloud::Cloud, gid: &str) -> Vec<String> {
    let r = call(c, Method::GET, "/v3/volumes/detail", MEMBER, "3.13", None).await;
    r.body["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["group_id"] == gid)
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_create_update_delete() {
    for c in clouds().await {
        let b = c.backend;
        let (vt, gt) = types(&c, "g").await;
        let r = call(
            &c,
            Method::POST,
            "/v3/groups",
            MEMBER,
            "3.12",
            Some(json!({"group": {"group_type": gt, "volume_types": [vt]}})),
        )
        .await;
        assert_eq!(r.status, 404, "{b}: groups below 3.13");
        for bad in [
            json!({"group": {"volume_types": [vt]}}),
            json!({"group": {"group_type": gt}}),
            json!({"group": {"group_type": gt, "volume_types": []}}),
            json!({"group": {"group_type": gt, "volume_types": [vt], "x": 1}}),
            json!({"group": {"group_type": gt, "volume_types": [vt], "availability_zone": "mars"}}),
        ] {
            let r = call(&c, Method::POST, "/v3/groups", MEMBER, "3.13", Some(bad.clone())).await;
            assert_eq!(r.status, 400, "{b}: {bad}: {}", r.text);
        }
        let r = call(
            &c,
            Method::POST,
            "/v3/groups",
            MEMBER,
            "3.13",
            Some(json!({"group": {"group_type": "nope", "volume_types": [vt]}})),
        )
        .await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        let r = call(
            &c,
            Method::POST,
            "/v3/groups",
            MEMBER,
            "3.13",
            Some(json!({"group": {"group_type": gt, "volume_types": ["nope"]}})),
        )
        .await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        assert_eq!(
            call(
                &c,
                Method::POST,
                "/v3/groups",
                READER,
                "3.13",
                Some(json!({"group": {"group_type": gt, "volume_types": [vt]}}))
            )
            .await
            .status,
            403,
            "{b}"
        );

        let r = call(
            &c,
            Method::POST,
            "/v3/groups",
            MEMBER,
            "3.13",
            Some(json!({"group": {"group_type": gt, "volume_types": [vt], "name": " g1 ", "description": "d"}})),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(r.body["group"].as_object().unwrap().len(), 2, "{b}: {}", r.text);
        assert_eq!(r.body["group"]["name"], "g1", "{b}");
        let gid = r.body["group"]["id"].as_str().unwrap().to_string();
        let g = wait(&c, &format!("/v3/groups/{gid}"), "group", "available").await;
        assert_eq!(g["group_type"], gt.as_str(), "{b}");
        assert_eq!(g["volume_types"], json!([vt]), "{b}");

        // views by microversion
        let r = call(&c, Method::GET, &format!("/v3/groups/{gid}"), MEMBER, "3.13", None).await;
        assert!(r.body["group"].get("group_snapshot_id").is_none(), "{b}: {}", r.text);
        let r = call(&c, Method::GET, &format!("/v3/groups/{gid}"), MEMBER, "3.14", None).await;
        assert!(r.body["group"]["group_snapshot_id"].is_null() && r.body["group"]["source_group_id"].is_null(), "{b}");
        assert!(r.body["group"].get("replication_status").is_none(), "{b}");
        let r = call(&c, Method::GET, &format!("/v3/groups/{gid}"), MEMBER, "3.38", None).await;
        assert_eq!(r.body["group"]["replication_status"], "disabled", "{b}");
        assert_eq!(call(&c, Method::GET, &format!("/v3/groups/{gid}"), OTHER, "3.13", None).await.status, 404, "{b}");

        // lists
        let r = call(&c, Method::GET, "/v3/groups", MEMBER, "3.13", None).await;
        assert_eq!(r.body["groups"], json!([{"id": gid, "name": "g1"}]), "{b}: {}", r.text);
        let r = call(&c, Method::GET, "/v3/groups/detail", MEMBER, "3.13", None).await;
        assert_eq!(r.body["groups"][0]["volume_types"], json!([vt]), "{b}");
        assert!(
            call(&c, Method::GET, "/v3/groups", OTHER, "3.13", None).await.body["groups"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{b}"
        );

        // volumes join through update: only available ones of an allowed type
        let v1 = typed_volume(&c, MEMBER, &vt).await;
        let v2 = typed_volume(&c, MEMBER, &vt).await;
        let plain = c.volume(MEMBER, 1).await;
        let gpath = format!("/v3/groups/{gid}");
        let put = |body: Value| call(&c, Method::PUT, &gpath, MEMBER, "3.13", Some(body));
        let r = put(json!({"group": {"add_volumes": plain}})).await;
        assert_eq!(r.status, 400, "{b}: other type added: {}", r.text);
        let r = put(json!({"group": {"add_volumes": "00000000-0000-0000-0000-000000000000"}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = put(json!({"group": {"add_volumes": format!("{v1},{v2}")}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let mut have = group_volumes(&c, &gid).await;
        have.sort();
        let mut want = vec![v1.clone(), v2.clone()];
        want.sort();
        assert_eq!(have, want, "{b}");
        let r = call(&c, Method::GET, &format!("/v3/groups/{gid}?list_volume=true"), MEMBER, "3.25", None).await;
        assert_eq!(r.body["group"]["volumes"].as_array().unwrap().len(), 2, "{b}: {}", r.text);
        let r = put(json!({"group": {"name": "new_group", "description": "new desc", "remove_volumes": v2}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let g = wait(&c, &format!("/v3/groups/{gid}"), "group", "available").await;
        assert_eq!((g["name"].as_str(), g["description"].as_str()), (Some("new_group"), Some("new desc")), "{b}");
        assert_eq!(group_volumes(&c, &gid).await, vec![v1.clone()], "{b}");
        let r = put(json!({"group": {"remove_volumes": v2}})).await;
        assert_eq!(r.status, 400, "{b}: not a member: {}", r.text);
        let r = put(json!({"group": {"add_volumes": v1.clone(), "remove_volumes": v1.clone()}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = put(json!({"group": {"name": "new_group"}})).await;
        assert_eq!(r.status, 400, "{b}: nothing changes: {}", r.text);
        // another group cannot take a member
        let r = call(
            &c,
            Method::POST,
            "/v3/groups",
            MEMBER,
            "3.13",
            Some(json!({"group": {"group_type": gt, "volume_types": [vt], "name": "g2"}})),
        )
        .await;
        let g2 = r.body["group"]["id"].as_str().unwrap().to_string();
        let r = call(
            &c,
            Method::PUT,
            &format!("/v3/groups/{g2}"),
            MEMBER,
            "3.13",
            Some(json!({"group": {"add_volumes": v1}})),
        )
        .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);

        // the group type is in use
        let r = call(&c, Method::DELETE, &format!("/v3/group_types/{gt}"), ADMIN, "3.11", None).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);

        // reset status (3.20, admins)
        let act = |id: String, tok: &'static str, mv: &'static str, body: Value| {
            let c = &c;
            async move { call(c, Method::POST, &format!("/v3/groups/{id}/action"), tok, mv, Some(body)).await }
        };
        assert_eq!(
            act(g2.clone(), ADMIN, "3.19", json!({"reset_status": {"status": "error"}})).await.status,
            400,
            "{b}"
        );
        assert_eq!(
            act(g2.clone(), MEMBER, "3.20", json!({"reset_status": {"status": "error"}})).await.status,
            403,
            "{b}"
        );
        assert_eq!(
            act(g2.clone(), ADMIN, "3.20", json!({"reset_status": {"status": "bogus"}})).await.status,
            400,
            "{b}"
        );
        for s in ["creating", "available", "error"] {
            let r = act(g2.clone(), ADMIN, "3.20", json!({"reset_status": {"status": s}})).await;
            assert_eq!(r.status, 202, "{b}: {}", r.text);
            wait(&c, &format!("/v3/groups/{g2}"), "group", s).await;
        }

        // delete: with volumes only with the flag; the volumes go through the normal path
        let r = act(gid.clone(), MEMBER, "3.13", json!({"delete": {"delete-volumes": false}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = act(gid.clone(), MEMBER, "3.13", json!({"delete": {"delete-volumes": true}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        c.wait_gone(&format!("/v3/volumes/{v1}")).await;
        wait_gone(&c, &format!("/v3/groups/{gid}")).await;
        let r = act(g2.clone(), MEMBER, "3.13", json!({"delete": {}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        wait_gone(&c, &format!("/v3/groups/{g2}")).await;
        assert!(
            call(&c, Method::GET, "/v3/groups/detail", MEMBER, "3.13", None).await.body["groups"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{b}"
        );
        // a volume taken out of the group stays
        assert_eq!(c.get(&format!("/v3/volumes/{v2}"), MEMBER).await.status, 200, "{b}");
        assert_eq!(
            call(&c, Method::DELETE, &format!("/v3/group_types/{gt}"), ADMIN, "3.11", None).await.status,
            202,
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_quota() {
    let mut cfg = stratus_core::Config::default();
    cfg.volume.quota_groups = 1;
    for c in cloud::clouds_with(cfg.clone()).await {
        let b = c.backend;
        let (vt, gt) = types(&c, "q").await;
        let body = json!({"group": {"group_type": gt, "volume_types": [vt]}});
        assert_eq!(call(&c, Method::POST, "/v3/groups", MEMBER, "3.13", Some(body.clone())).await.status, 202, "{b}");
        let r = call(&c, Method::POST, "/v3/groups", MEMBER, "3.13", Some(body)).await;
        assert_eq!(r.status, 413, "{b}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_snapshots_and_groups_from_source() {
    for c in clouds().await {
        let b = c.backend;
        let (vt, gt) = types(&c, "s").await;
        let r = call(
            &c,
            Method::POST,
            "/v3/groups",
            MEMBER,
            "3.14",
            Some(json!({"group": {"group_type": gt, "volume_types": [vt], "name": "src"}})),
        )
        .await;
        let gid = r.body["group"]["id"].as_str().unwrap().to_string();
        wait(&c, &format!("/v3/groups/{gid}"), "group", "available").await;
        let v1 = typed_volume(&c, MEMBER, &vt).await;
        let v2 = typed_volume(&c, MEMBER, &vt).await;
        let r = call(
            &c,
            Method::PUT,
            &format!("/v3/groups/{gid}"),
            MEMBER,
            "3.14",
            Some(json!({"group": {"add_volumes": format!("{v1},{v2}")}})),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);

        // group snapshot: one snapshot per volume
        let r = call(
            &c,
            Method::POST,
            "/v3/group_snapshots",
            MEMBER,
            "3.13",
            Some(json!({"group_snapshot": {"group_id": gid}})),
        )
        .await;
        assert_eq!(r.status, 404, "{b}: below 3.14");
        let r = call(
            &c,
            Method::POST,
            "/v3/group_snapshots",
            MEMBER,
            "3.14",
            Some(json!({"group_snapshot": {"group_id": gid, "name": "gs1"}})),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        assert_eq!(r.body["group_snapshot"]["group_type_id"], gt.as_str(), "{b}");
        let gsid = r.body["group_snapshot"]["id"].as_str().unwrap().to_string();
        let gs = wait(&c, &format!("/v3/group_snapshots/{gsid}"), "group_snapshot", "available").await;
        assert_eq!(gs["group_id"], gid.as_str(), "{b}");
        assert_eq!(gs["name"], "gs1", "{b}");
        let r = call(&c, Method::GET, "/v3/snapshots/detail", MEMBER, "3.14", None).await;
        let snaps: Vec<&Value> = r.body["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["group_snapshot_id"] == gsid.as_str())
            .collect();
        assert_eq!(snaps.len(), 2, "{b}: {}", r.text);
        assert!(snaps.iter().all(|s| s["status"] == "available"), "{b}: {}", r.text);
        let r = call(&c, Method::GET, "/v3/group_snapshots", MEMBER, "3.14", None).await;
        assert_eq!(r.body["group_snapshots"], json!([{"id": gsid, "name": "gs1"}]), "{b}: {}", r.text);
        let r = call(&c, Method::GET, "/v3/group_snapshots/detail", MEMBER, "3.14", None).await;
        assert_eq!(r.body["group_snapshots"][0]["group_id"], gid.as_str(), "{b}");
        assert_eq!(
            call(&c, Method::GET, &format!("/v3/group_snapshots/{gsid}"), OTHER, "3.14", None).await.status,
            404,
            "{b}"
        );

        // the group cannot go while it has a group snapshot
        let r = call(
            &c,
            Method::POST,
            &format!("/v3/groups/{gid}/action"),
            MEMBER,
            "3.14",
            Some(json!({"delete": {"delete-volumes": true}})),
        )
        .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);

        // a group from the group snapshot, and one from the group
        let r = call(
            &c,
            Method::POST,
            "/v3/groups/action",
            MEMBER,
            "3.14",
            Some(json!({"create-from-src": {"group_snapshot_id": gsid, "name": "from-snap"}})),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let g_snap = r.body["group"]["id"].as_str().unwrap().to_string();
        let r = call(
            &c,
            Method::POST,
            "/v3/groups/action",
            MEMBER,
            "3.14",
            Some(json!({"create-from-src": {"source_group_id": gid, "name": "from-grp"}})),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let g_grp = r.body["group"]["id"].as_str().unwrap().to_string();
        let r = call(
            &c,
            Method::POST,
            "/v3/groups/action",
            MEMBER,
            "3.14",
            Some(json!({"create-from-src": {"source_group_id": gid, "group_snapshot_id": gsid}})),
        )
        .await;
        assert_eq!(r.status, 400, "{b}: both sources: {}", r.text);
        for (g, src_key, src) in [(&g_snap, "group_snapshot_id", &gsid), (&g_grp, "source_group_id", &gid)] {
            let got = wait(&c, &format!("/v3/groups/{g}"), "group", "available").await;
            assert_eq!(got[src_key], src.as_str(), "{b}");
            assert_eq!(got["volume_types"], json!([vt]), "{b}");
            let vols = group_volumes(&c, g).await;
            assert_eq!(vols.len(), 2, "{b}");
            for v in vols {
                c.wait_status(&format!("/v3/volumes/{v}"), "volume", "available").await;
            }
        }

        // reset status (3.19, admins)
        let act = |body: Value, tok: &'static str, mv: &'static str| {
            let c = &c;
            let path = format!("/v3/group_snapshots/{gsid}/action");
            async move { call(c, Method::POST, &path, tok, mv, Some(body)).await }
        };
        assert_eq!(act(json!({"reset_status": {"status": "error"}}), ADMIN, "3.18").await.status, 400, "{b}");
        assert_eq!(act(json!({"reset_status": {"status": "error"}}), MEMBER, "3.19").await.status, 403, "{b}");
        for s in ["creating", "available", "error", "available"] {
            let r = act(json!({"reset_status": {"status": s}}), ADMIN, "3.19").await;
            assert_eq!(r.status, 202, "{b}: {}", r.text);
            wait(&c, &format!("/v3/group_snapshots/{gsid}"), "group_snapshot", s).await;
        }

        // delete the group snapshot: its snapshots go, then it does
        let r = call(&c, Method::DELETE, &format!("/v3/group_snapshots/{gsid}"), MEMBER, "3.14", None).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        wait_gone(&c, &format!("/v3/group_snapshots/{gsid}")).await;
        for s in snaps {
            c.wait_gone(&format!("/v3/snapshots/{}", s["id"].as_str().unwrap())).await;
        }

        // now every group goes, with its volumes
        for g in [&g_snap, &g_grp, &gid] {
            let r = call(
                &c,
                Method::POST,
                &format!("/v3/groups/{g}/action"),
                MEMBER,
                "3.14",
                Some(json!({"delete": {"delete-volumes": true}})),
            )
            .await;
            assert_eq!(r.status, 202, "{b}: {}", r.text);
        }
        for g in [&g_snap, &g_grp, &gid] {
            wait_gone(&c, &format!("/v3/groups/{g}")).await;
        }
        let r = call(&c, Method::GET, "/v3/volumes", MEMBER, "3.14", None).await;
        assert!(r.body["volumes"].as_array().unwrap().is_empty(), "{b}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_messages() {
    for c in clouds().await {
        let b = c.backend;
        let vid = c.volume(MEMBER, 1).await;
        stratus_volume::store::messages::no_valid_backend(&c.db.write, &vid).await;
        assert_eq!(call(&c, Method::GET, "/v3/messages", MEMBER, "3.2", None).await.status, 404, "{b}");
        let r = call(&c, Method::GET, "/v3/messages", MEMBER, "3.3", None).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let msgs = r.body["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 1, "{b}: {}", r.text);
        let m = &msgs[0];
        assert_eq!(m["resource_uuid"], vid.as_str(), "{b}");
        assert_eq!(m["resource_type"], "VOLUME", "{b}");
        assert_eq!(m["event_id"], "VOLUME_VOLUME_001_003", "{b}");
        assert_eq!(m["user_message"], "schedule allocate volume:Could not find any available weighted backend.", "{b}");
        assert_eq!(m["message_level"], "ERROR", "{b}");
        for k in ["request_id", "created_at", "guaranteed_until", "links", "id"] {
            assert!(m.get(k).is_some(), "{b}: no {k}: {m}");
        }
        let id = m["id"].as_str().unwrap().to_string();
        let r = call(&c, Method::GET, &format!("/v3/messages/{id}"), READER, "3.3", None).await;
        assert_eq!(r.body["message"]["id"], id.as_str(), "{b}: {}", r.text);
        assert_eq!(call(&c, Method::GET, &format!("/v3/messages/{id}"), OTHER, "3.3", None).await.status, 404, "{b}");
        assert!(
            call(&c, Method::GET, "/v3/messages", OTHER, "3.3", None).await.body["messages"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{b}"
        );
        assert_eq!(
            call(&c, Method::DELETE, &format!("/v3/messages/{id}"), READER, "3.3", None).await.status,
            403,
            "{b}"
        );
        let r = call(&c, Method::DELETE, &format!("/v3/messages/{id}"), MEMBER, "3.3", None).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        assert_eq!(call(&c, Method::GET, &format!("/v3/messages/{id}"), MEMBER, "3.3", None).await.status, 404, "{b}");
    }
}
