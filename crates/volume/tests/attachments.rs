//! The attachments API (3.27+) through the whole path, on every reachable
//! database: create (reserve, or with a connector), update, complete,
//! delete, lists, multiattach, and racing creates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cloud;

use cloud::{ADMIN, Cloud, MEMBER, OTHER, READER, Resp, clouds};
use reqwest::Method;
use serde_json::{Value, json};

const SERVER: &str = "11111111-2222-3333-4444-555555555555";
const SERVER2: &str = "11111111-2222-3333-4444-666666666666";

async fn call(c: &Cloud, m: Method, path: &str, token: &str, mv: &str, body: Option<Value>) -> Resp {
    c.call(m, path, token, Some(mv), body).await
}

async fn status_of(c: &Cloud, id: &str) -> String {
    c.get(&format!("/v3/volumes/{id}"), ADMIN).await.body["volume"]["status"].as_str().unwrap().to_string()
}

fn connector(host: &str) -> Value {
    json!({"host": host, "initiator": "iqn.1993-08.org.debian:01:cad181614cec", "ip": "192.168.1.20", "platform": "x86_64", "os_type": "linux2", "multipath": false, "mountpoint": "/dev/vdb"})
}

async fn create(c: &Cloud, token: &str, volume: &str, server: &str, extra: Value) -> Resp {
    let mut a = json!({"volume_uuid": volume, "instance_uuid": server});
    if let Some(o) = extra.as_object() {
        for (k, v) in o {
            a[k] = v.clone();
        }
    }
    call(c, Method::POST, "/v3/attachments", token, "3.54", Some(json!({"attachment": a}))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_update_complete_delete() {
    for c in clouds().await {
        let b = c.backend;
        let vol = c.volume(MEMBER, 1).await;
        // not before 3.27
        let r = call(
            &c,
            Method::POST,
            "/v3/attachments",
            MEMBER,
            "3.26",
            Some(json!({"attachment": {"volume_uuid": vol}})),
        )
        .await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        assert_eq!(call(&c, Method::GET, "/v3/attachments", MEMBER, "3.0", None).await.status, 404, "{b}");
        // bad input
        for a in [
            json!({}),
            json!({"volume_uuid": vol, "instance_uuid": "x"}),
            json!({"volume_uuid": vol, "mode": "rx"}),
            json!({"volume_uuid": vol, "colour": 1}),
        ] {
            let r = call(&c, Method::POST, "/v3/attachments", MEMBER, "3.54", Some(json!({"attachment": a}))).await;
            assert_eq!(r.status, 400, "{b}: {a}: {}", r.text);
        }
        let r = create(&c, MEMBER, "00000000-0000-0000-0000-000000000000", SERVER, json!({})).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        assert_eq!(create(&c, OTHER, &vol, SERVER, json!({})).await.status, 404, "{b}");
        assert_eq!(create(&c, READER, &vol, SERVER, json!({})).await.status, 403, "{b}");

        // reserve
        let r = create(&c, MEMBER, &vol, SERVER, json!({})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let a = &r.body["attachment"];
        assert_eq!(a["status"], "reserved", "{b}: {}", r.text);
        assert_eq!(a["instance"], SERVER, "{b}");
        assert_eq!(a["volume_id"], vol.as_str(), "{b}");
        assert_eq!(a["attach_mode"], "null", "{b}");
        assert_eq!(a["attached_at"], "", "{b}");
        assert_eq!(a["detached_at"], "", "{b}");
        assert_eq!(a["connection_info"], json!({}), "{b}");
        let aid = a["id"].as_str().unwrap().to_string();
        assert_eq!(status_of(&c, &vol).await, "reserved", "{b}");
        // a reserved volume is not extended, nor attached to another server
        let r = c.post(&format!("/v3/volumes/{vol}/action"), MEMBER, json!({"os-extend": {"new_size": 2}})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert_eq!(create(&c, MEMBER, &vol, SERVER2, json!({})).await.status, 400, "{b}");

        // show and lists
        let path = format!("/v3/attachments/{aid}");
        let r = call(&c, Method::GET, &path, READER, "3.27", None).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["attachment"]["id"], aid.as_str(), "{b}");
        assert_eq!(call(&c, Method::GET, &path, OTHER, "3.27", None).await.status, 404, "{b}");
        let r = call(&c, Method::GET, "/v3/attachments", READER, "3.27", None).await;
        assert_eq!(
            r.body,
            json!({"attachments": [{"id": aid, "status": "reserved", "instance": SERVER, "volume_id": vol}]}),
            "{b}"
        );
        let r = call(&c, Method::GET, "/v3/attachments/detail?status=reserved", MEMBER, "3.27", None).await;
        assert_eq!(r.body["attachments"][0]["attach_mode"], "null", "{b}: {}", r.text);
        let r = call(&c, Method::GET, &format!("/v3/attachments?instance_id={SERVER2}"), MEMBER, "3.27", None).await;
        assert!(r.body["attachments"].as_array().unwrap().is_empty(), "{b}: {}", r.text);
        assert!(
            call(&c, Method::GET, "/v3/attachments", OTHER, "3.27", None).await.body["attachments"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{b}"
        );

        // update with a connector: the connection, attaching
        let r = call(&c, Method::PUT, &path, MEMBER, "3.27", Some(json!({"attachment": {}}))).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = call(&c, Method::PUT, &path, MEMBER, "3.27", Some(json!({"attachment": {"connector": {}}}))).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = call(
            &c,
            Method::PUT,
            &path,
            MEMBER,
            "3.27",
            Some(json!({"attachment": {"connector": connector("compute1")}})),
        )
        .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let a = &r.body["attachment"];
        assert_eq!(a["status"], "attaching", "{b}: {}", r.text);
        let info = &a["connection_info"];
        assert_eq!(info["driver_volume_type"], "file", "{b}: {}", r.text);
        assert_eq!(info["attachment_id"], aid.as_str(), "{b}");
        assert_eq!(info["access_mode"], "rw", "{b}");
        assert!(info["device_path"].as_str().unwrap().ends_with(&format!("volume-{vol}.raw")), "{b}: {}", r.text);
        assert_ne!(a["attached_at"], "", "{b}");
        assert_eq!(status_of(&c, &vol).await, "attaching", "{b}");

        // complete (3.44): attached, in-use, and the volume shows it
        let done = json!({"os-complete": {}});
        let r = call(&c, Method::POST, &format!("{path}/action"), MEMBER, "3.43", Some(done.clone())).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        let r = call(&c, Method::POST, &format!("{path}/action"), MEMBER, "3.44", Some(done.clone())).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        assert_eq!(status_of(&c, &vol).await, "in-use", "{b}");
        let v = c.get(&format!("/v3/volumes/{vol}"), MEMBER).await.body["volume"].clone();
        assert_eq!(v["attachments"][0]["attachment_id"], aid.as_str(), "{b}: {v}");
        assert_eq!(v["attachments"][0]["server_id"], SERVER, "{b}");
        assert_eq!(v["attachments"][0]["host_name"], "compute1", "{b}");
        let r = call(&c, Method::GET, &path, MEMBER, "3.27", None).await;
        assert_eq!(r.body["attachment"]["status"], "attached", "{b}: {}", r.text);

        // delete: gone, the volume available again
        assert_eq!(call(&c, Method::DELETE, &path, READER, "3.27", None).await.status, 403, "{b}");
        assert_eq!(call(&c, Method::DELETE, &path, OTHER, "3.27", None).await.status, 404, "{b}");
        let r = call(&c, Method::DELETE, &path, MEMBER, "3.27", None).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body, json!({"attachments": []}), "{b}");
        assert_eq!(status_of(&c, &vol).await, "available", "{b}");
        assert_eq!(call(&c, Method::GET, &path, MEMBER, "3.27", None).await.status, 404, "{b}");
        assert_eq!(call(&c, Method::DELETE, &path, MEMBER, "3.27", None).await.status, 404, "{b}");
        let v = c.get(&format!("/v3/volumes/{vol}"), MEMBER).await.body["volume"].clone();
        assert!(v["attachments"].as_array().unwrap().is_empty(), "{b}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_connector_and_mode() {
    for c in clouds().await {
        let b = c.backend;
        let vol = c.volume(MEMBER, 1).await;
        let r = create(&c, MEMBER, &vol, SERVER, json!({"connector": connector("compute2"), "mode": "ro"})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let a = &r.body["attachment"];
        assert_eq!(a["status"], "attaching", "{b}: {}", r.text);
        assert_eq!(a["attach_mode"], "ro", "{b}");
        assert_eq!(a["connection_info"]["access_mode"], "ro", "{b}: {}", r.text);
        assert_eq!(status_of(&c, &vol).await, "attaching", "{b}");
        let aid = a["id"].as_str().unwrap().to_string();
        // mode is a 3.54 parameter
        let r = call(
            &c,
            Method::POST,
            "/v3/attachments",
            MEMBER,
            "3.53",
            Some(json!({"attachment": {"volume_uuid": vol, "mode": "ro"}})),
        )
        .await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        // deleting an attachment not completed returns the volume to available
        let r = call(&c, Method::DELETE, &format!("/v3/attachments/{aid}"), MEMBER, "3.44", None).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(status_of(&c, &vol).await, "available", "{b}");
        // an error volume takes no attachment
        let r =
            c.post(&format!("/v3/volumes/{vol}/action"), ADMIN, json!({"os-reset_status": {"status": "error"}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let r = create(&c, MEMBER, &vol, SERVER, json!({})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiattach_and_single_attach() {
    for c in clouds().await {
        let b = c.backend;
        // (a multiattach volume type would not be scheduled: the file backend reports multiattach false)
        let r = c.post("/v3/volumes", MEMBER, json!({"volume": {"size": 1, "multiattach": true}})).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let multi = r.body["volume"]["id"].as_str().unwrap().to_string();
        c.wait_status(&format!("/v3/volumes/{multi}"), "volume", "available").await;
        let single = c.volume(MEMBER, 1).await;

        let mut ids = Vec::new();
        for (server, host) in [(SERVER, "c1"), (SERVER2, "c2")] {
            let r = create(&c, MEMBER, &multi, server, json!({"connector": connector(host)})).await;
            assert_eq!(r.status, 200, "{b}: {}", r.text);
            let aid = r.body["attachment"]["id"].as_str().unwrap().to_string();
            let r = call(
                &c,
                Method::POST,
                &format!("/v3/attachments/{aid}/action"),
                MEMBER,
                "3.44",
                Some(json!({"os-complete": {}})),
            )
            .await;
            assert_eq!(r.status, 204, "{b}: {}", r.text);
            ids.push(aid);
        }
        let v = c.get(&format!("/v3/volumes/{multi}"), MEMBER).await.body["volume"].clone();
        assert_eq!(v["status"], "in-use", "{b}");
        assert_eq!(v["attachments"].as_array().unwrap().len(), 2, "{b}: {v}");
        let r = call(&c, Method::DELETE, &format!("/v3/attachments/{}", ids[0]), MEMBER, "3.44", None).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["attachments"][0]["id"], ids[1].as_str(), "{b}: {}", r.text);
        assert_eq!(status_of(&c, &multi).await, "in-use", "{b}");
        let r = call(&c, Method::DELETE, &format!("/v3/attachments/{}", ids[1]), MEMBER, "3.44", None).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(status_of(&c, &multi).await, "available", "{b}");

        // a volume not multiattach: a second attachment (another server) is 400
        let r = create(&c, MEMBER, &single, SERVER, json!({"connector": connector("c1")})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let aid = r.body["attachment"]["id"].as_str().unwrap().to_string();
        let r = call(
            &c,
            Method::POST,
            &format!("/v3/attachments/{aid}/action"),
            MEMBER,
            "3.44",
            Some(json!({"os-complete": {}})),
        )
        .await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        let r = create(&c, MEMBER, &single, SERVER2, json!({})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        assert!(r.text.contains("Invalid volume"), "{b}: {}", r.text);
        // the same server again (a move to another host) may reserve a second one
        let r = create(&c, MEMBER, &single, SERVER, json!({})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let moved = r.body["attachment"]["id"].as_str().unwrap().to_string();
        // ...but cannot connect while the first is connected
        let r = call(
            &c,
            Method::PUT,
            &format!("/v3/attachments/{moved}"),
            MEMBER,
            "3.44",
            Some(json!({"attachment": {"connector": connector("c2")}})),
        )
        .await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);
        let r = call(&c, Method::DELETE, &format!("/v3/attachments/{aid}"), MEMBER, "3.44", None).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(status_of(&c, &single).await, "reserved", "{b}: the reserved attachment left decides");
        let r = call(&c, Method::DELETE, &format!("/v3/attachments/{moved}"), MEMBER, "3.44", None).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(status_of(&c, &single).await, "available", "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_let_one_through() {
    for c in clouds().await {
        let b = c.backend;
        let vol = c.volume(MEMBER, 1).await;
        let c = std::sync::Arc::new(c);
        let mut tasks = Vec::new();
        for i in 0..10 {
            let c = c.clone();
            let vol = vol.clone();
            tasks.push(tokio::spawn(async move {
                let server = format!("11111111-2222-3333-4444-{i:012}");
                create(&c, MEMBER, &vol, &server, json!({})).await.status
            }));
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        assert_eq!(codes.iter().filter(|s| **s == 200).count(), 1, "{b}: {codes:?}");
        assert_eq!(codes.iter().filter(|s| **s == 400).count(), 9, "{b}: {codes:?}");
        let r = call(&c, Method::GET, "/v3/attachments", MEMBER, "3.27", None).await;
        assert_eq!(r.body["attachments"].as_array().unwrap().len(), 1, "{b}: {}", r.text);
        assert_eq!(status_of(&c, &vol).await, "reserved", "{b}");
    }
}
