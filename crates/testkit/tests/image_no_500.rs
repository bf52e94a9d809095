//! No input produces a 500 from the image API: every create, update and
//! action endpoint gets malformed bodies, headers and query strings of many
//! shapes and must answer 4xx (or a success) in Glance's fault style.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::Cloud;

fn values() -> Vec<Value> {
    vec![
        json!(null),
        json!([]),
        json!({}),
        json!(12),
        json!(-1),
        json!(1.5),
        json!(true),
        json!(""),
        json!("x".repeat(70000)),
        json!([1, "a", null]),
        json!({"a": {"b": []}}),
    ]
}

#[tokio::test]
async fn malformed_input_never_gives_a_500() {
    let c = Cloud::start("sqlite", "sqlite::memory:").await;
    let admin = c.admin_token().await;
    let img = c
        .create_image(
            &admin,
            json!({"name": "target", "disk_format": "raw", "container_format": "bare", "visibility": "shared"}),
        )
        .await;
    let id = img["id"].as_str().unwrap().to_string();
    let mut checked = 0;
    let check = |r: &stratus_testkit::Resp, what: &str| {
        assert!(r.status.as_u16() < 500, "{what}: {} {}", r.status, r.text);
        if r.status.as_u16() >= 400 {
            assert!(r.body["message"].is_string() || r.text.is_empty(), "{what}: Glance fault body: {}", r.text);
        }
    };
    // raw bodies that are not JSON, or JSON of the wrong shape
    let raws: Vec<Vec<u8>> =
        vec![b"".to_vec(), b"{".to_vec(), b"[]".to_vec(), b"null".to_vec(), b"\"x\"".to_vec(), vec![0xff, 0xfe, 0x00]];
    let posts = [
        "/v2/images".to_string(),
        format!("/v2/images/{id}/members"),
        format!("/v2/images/{id}/import"),
        format!("/v2/images/{id}/locations"),
        "/v2/tasks".to_string(),
        "/v2/metadefs/namespaces".to_string(),
    ];
    for p in &posts {
        for raw in &raws {
            let r = c.image_bytes(Method::POST, p, &admin, "application/json", raw.clone()).await;
            check(&r, &format!("POST {p} {raw:?}"));
            checked += 1;
        }
    }
    // every field of every body with values of every type
    let fields = [
        "id",
        "name",
        "visibility",
        "protected",
        "os_hidden",
        "owner",
        "min_disk",
        "min_ram",
        "disk_format",
        "container_format",
        "tags",
        "status",
        "size",
        "locations",
        "custom",
        "os_glance_x",
        "member",
        "method",
        "stores",
        "all_stores",
        "all_stores_must_succeed",
        "url",
        "validation_data",
        "type",
        "input",
        "namespace",
    ];
    for f in fields {
        for v in values() {
            let body = json!({ f: v });
            let r = c.image_call(Method::POST, "/v2/images", &admin, Some(body.clone())).await;
            check(&r, &format!("create {body}"));
            if r.status == 201 {
                let nid = r.body["id"].as_str().unwrap().to_string();
                c.image_call(Method::DELETE, &format!("/v2/images/{nid}"), &admin, None).await;
            }
            for p in &posts[1..] {
                let r = c.image_call(Method::POST, p, &admin, Some(body.clone())).await;
                check(&r, &format!("POST {p} {body}"));
            }
            let r = c
                .image_call(
                    Method::POST,
                    &format!("/v2/images/{id}/import"),
                    &admin,
                    Some(json!({"method": {"name": "glance-direct", f: v}})),
                )
                .await;
            check(&r, "import");
            for op in ["add", "replace", "remove"] {
                let ops = json!([{"op": op, "path": format!("/{f}"), "value": v}]);
                let r = c
                    .image_bytes(
                        Method::PATCH,
                        &format!("/v2/images/{id}"),
                        &admin,
                        "application/openstack-images-v2.1-json-patch",
                        ops.to_string().into_bytes(),
                    )
                    .await;
                check(&r, &format!("patch {ops}"));
                let loc = json!([{"op": op, "path": "/locations/0", "value": {"url": v, "metadata": v}}]);
                let r = c
                    .image_bytes(
                        Method::PATCH,
                        &format!("/v2/images/{id}"),
                        &admin,
                        "application/openstack-images-v2.1-json-patch",
                        loc.to_string().into_bytes(),
                    )
                    .await;
                check(&r, &format!("patch {loc}"));
            }
            checked += 6;
        }
    }
    // query strings
    for q in [
        "limit=abc",
        "limit=99999999999999999999",
        "marker=%00",
        "sort=name:up",
        "sort_key=",
        "created_at=lt:",
        "size_min=-5",
        "member_status=x",
        "visibility=",
        "tag=",
        "id=in:",
        "name=in:a,,b",
        "os_hidden=2",
        "protected=maybe",
    ] {
        let r = c.image_call(Method::GET, &format!("/v2/images?{q}"), &admin, None).await;
        check(&r, q);
        let r = c.image_call(Method::GET, &format!("/v2/tasks?{q}"), &admin, None).await;
        check(&r, q);
        let r = c.image_call(Method::GET, &format!("/v2/metadefs/namespaces?{q}"), &admin, None).await;
        check(&r, q);
        checked += 3;
    }
    // headers on the data path
    for (h, v) in
        [("range", "bytes=abc"), ("range", "bytes=5-1"), ("range", "bytes=-0"), ("x-image-meta-store", "nowhere")]
    {
        let r = c
            .http
            .put(format!("{}/v2/images/{id}/file", c.image_url))
            .header("x-auth-token", &admin)
            .header("content-type", "application/octet-stream")
            .header(h, v)
            .body(vec![1u8; 10])
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "{h}: {v}: {}", r.status());
        let r = c
            .http
            .get(format!("{}/v2/images/{id}/file", c.image_url))
            .header("x-auth-token", &admin)
            .header(h, v)
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "{h}: {v}: {}", r.status());
        checked += 2;
    }
    // ids that are not ids
    for bad in ["x", "%20", "..", "00000000-0000-0000-0000-000000000000", &"a".repeat(300)] {
        for (m, p) in [
            (Method::GET, format!("/v2/images/{bad}")),
            (Method::DELETE, format!("/v2/images/{bad}")),
            (Method::GET, format!("/v2/images/{bad}/file")),
            (Method::PUT, format!("/v2/images/{id}/tags/{bad}")),
            (Method::GET, format!("/v2/images/{id}/members/{bad}")),
            (Method::GET, format!("/v2/tasks/{bad}")),
            (Method::PUT, format!("/v2/cache/{bad}")),
            (Method::GET, format!("/v2/metadefs/namespaces/{bad}")),
        ] {
            let r = c.image_call(m.clone(), &p, &admin, None).await;
            check(&r, &format!("{m} {p}"));
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} requests checked");
}
