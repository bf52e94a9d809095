//! The image service (Glance v2) end to end over HTTP, on every reachable
//! database backend: lifecycle, data streaming, JSON patch rules, filters,
//! sharing, quotas, format safety, broken and concurrent uploads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use md5::Digest as _;
use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, clouds};

const PATCH: &str = "application/openstack-images-v2.1-json-patch";

fn md5_hex(data: &[u8]) -> String {
    md5::Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn sha512_hex(data: &[u8]) -> String {
    sha2::Sha512::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn random(n: usize) -> Vec<u8> {
    // a cheap deterministic generator: data that is no known disk format
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ n as u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A real qcow2 made by qemu-img (optionally with a backing file).
fn qcow2(backing: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.qcow2");
    let img = dir.path().join("img.qcow2");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("qemu-img")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("qemu-img is needed for these tests (install qemu-utils): {e}"));
        assert!(out.status.success(), "qemu-img {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["create", "-q", "-f", "qcow2", base.to_str().unwrap(), "16M"]);
    if backing {
        run(&["create", "-q", "-f", "qcow2", "-b", base.to_str().unwrap(), "-F", "qcow2", img.to_str().unwrap()]);
        std::fs::read(&img).unwrap()
    } else {
        std::fs::read(&base).unwrap()
    }
}

async fn patch(c: &Cloud, tok: &str, id: &str, ops: Value) -> stratus_testkit::Resp {
    c.image_bytes(Method::PATCH, &format!("/v2/images/{id}"), tok, PATCH, ops.to_string().into_bytes()).await
}

async fn show(c: &Cloud, tok: &str, id: &str) -> stratus_testkit::Resp {
    c.image_call(Method::GET, &format!("/v2/images/{id}"), tok, None).await
}

/// Files in the cloud's image stores (partial ones included).
fn store_files(c: &Cloud) -> Vec<String> {
    let mut out = Vec::new();
    let root = c.data_dir.path().join("images");
    for store in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(store.path()).into_iter().flatten().flatten() {
            out.push(f.path().display().to_string());
        }
    }
    out
}

#[tokio::test]
async fn lifecycle_upload_download_range_and_delete() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let r = c.image_call(Method::GET, "/", &admin, None).await;
        assert_eq!(r.status, 300);
        assert_eq!(r.body["versions"][0]["status"], "CURRENT");

        let img = c
            .create_image(
                &admin,
                json!({"name": "cirros", "disk_format": "raw", "container_format": "bare", "visibility": "private",
                       "tags": ["a", "b", "a"], "os_distro": "cirros", "min_ram": 64}),
            )
            .await;
        let id = img["id"].as_str().unwrap().to_string();
        assert_eq!(img["status"], "queued", "{}", c.backend);
        assert_eq!(img["tags"], json!(["a", "b"]));
        assert_eq!(img["os_distro"], "cirros");
        assert_eq!(img["size"], Value::Null);
        assert_eq!(img["self"], format!("/v2/images/{id}"));
        // no data yet: 204
        let r = c.image_call(Method::GET, &format!("/v2/images/{id}/file"), &admin, None).await;
        assert_eq!(r.status, 204);

        let data = random(3 * 1024 * 1024 + 17);
        let r = c.upload(&admin, &id, data.clone()).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let img = show(&c, &admin, &id).await.body;
        assert_eq!(img["status"], "active");
        assert_eq!(img["size"], data.len());
        assert_eq!(img["virtual_size"], data.len());
        assert_eq!(img["checksum"], md5_hex(&data));
        assert_eq!(img["os_hash_algo"], "sha512");
        assert_eq!(img["os_hash_value"], sha512_hex(&data));
        assert_eq!(img["stores"], "local");

        // a second upload to an active image is a conflict
        let r = c.upload(&admin, &id, b"again".to_vec()).await;
        assert_eq!(r.status, 409);

        let r = c
            .http
            .get(format!("{}/v2/images/{id}/file", c.image_url))
            .header("x-auth-token", &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-md5"], md5_hex(&data).as_str());
        assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());

        let r = c
            .http
            .get(format!("{}/v2/images/{id}/file", c.image_url))
            .header("x-auth-token", &admin)
            .header("range", "bytes=10-19")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.headers()["content-range"], format!("bytes 10-19/{}", data.len()).as_str());
        assert_eq!(r.bytes().await.unwrap().as_ref(), &data[10..20]);
        let r = c
            .http
            .get(format!("{}/v2/images/{id}/file", c.image_url))
            .header("x-auth-token", &admin)
            .header("range", format!("bytes={}-", data.len() + 5))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 416);

        // deactivate: no download for non-admins; reactivate
        let member = c.user_with_role(&admin, "member").await.2;
        let r = c.image_call(Method::POST, &format!("/v2/images/{id}/actions/deactivate"), &admin, None).await;
        assert_eq!(r.status, 204);
        assert_eq!(show(&c, &admin, &id).await.body["status"], "deactivated");
        let r = c.image_call(Method::POST, &format!("/v2/images/{id}/actions/reactivate"), &admin, None).await;
        assert_eq!(r.status, 204);
        // another project's member does not see a private image
        assert_eq!(show(&c, &member, &id).await.status, 404);

        // protected images cannot be deleted
        assert_eq!(
            patch(&c, &admin, &id, json!([{"op": "replace", "path": "/protected", "value": true}])).await.status,
            200
        );
        let r = c.image_call(Method::DELETE, &format!("/v2/images/{id}"), &admin, None).await;
        assert_eq!(r.status, 403);
        assert_eq!(
            patch(&c, &admin, &id, json!([{"op": "replace", "path": "/protected", "value": false}])).await.status,
            200
        );
        assert_eq!(store_files(&c).len(), 1);
        let r = c.image_call(Method::DELETE, &format!("/v2/images/{id}"), &admin, None).await;
        assert_eq!(r.status, 204);
        assert_eq!(show(&c, &admin, &id).await.status, 404);
        assert!(store_files(&c).is_empty(), "data removed with the image: {:?}", store_files(&c));
        // ids are never reused
        let r = c.image_call(Method::POST, "/v2/images", &admin, Some(json!({"id": id}))).await;
        assert_eq!(r.status, 409);
    }
}

#[tokio::test]
async fn json_patch_rules() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let img = c.create_image(&admin, json!({"name": "p", "foo": "bar"})).await;
        let id = img["id"].as_str().unwrap();
        let cases: Vec<(Value, u16)> = vec![
            (json!([{"op": "replace", "path": "/name", "value": "renamed"}]), 200),
            (json!([{"op": "add", "path": "/new_prop", "value": "x"}]), 200),
            (json!([{"op": "add", "path": "/foo", "value": "replaced-by-add"}]), 200),
            (json!([{"op": "replace", "path": "/missing", "value": "x"}]), 409),
            (json!([{"op": "remove", "path": "/missing"}]), 409),
            (json!([{"op": "remove", "path": "/name"}]), 403),
            (json!([{"op": "replace", "path": "/status", "value": "active"}]), 403),
            (json!([{"op": "replace", "path": "/size", "value": 5}]), 403),
            (json!([{"op": "add", "path": "/os_glance_foo", "value": "x"}]), 403),
            (json!([{"op": "add", "path": "/deleted", "value": "x"}]), 403),
            (json!([{"op": "add", "path": "/locations/-", "value": {"url": "http://x", "metadata": {}}}]), 403),
            (json!([{"op": "replace", "path": "/min_ram", "value": "lots"}]), 400),
            (json!([{"op": "replace", "path": "/visibility", "value": "everyone"}]), 400),
            (json!([{"op": "add", "path": "/num", "value": 5}]), 400),
            (json!([{"op": "move", "path": "/name"}]), 400),
            (json!([{"op": "replace", "path": "name", "value": "x"}]), 400),
            (json!([{"op": "replace", "path": "/name"}]), 400),
            (json!({"op": "replace"}), 400),
            (json!([{"op": "replace", "path": "/tags", "value": ["t1", "t2"]}]), 200),
            (json!([{"op": "remove", "path": "/new_prop"}]), 200),
            (json!([{"op": "add", "path": "/a~1b", "value": "slash"}]), 200),
        ];
        for (ops, want) in cases {
            let r = patch(&c, &admin, id, ops.clone()).await;
            assert_eq!(r.status.as_u16(), want, "{} {ops}: {}", c.backend, r.text);
            if want >= 400 {
                assert!(r.body["message"].is_string(), "Glance-style fault: {}", r.text);
            }
        }
        let img = show(&c, &admin, id).await.body;
        assert_eq!(img["name"], "renamed");
        assert_eq!(img["foo"], "replaced-by-add");
        assert_eq!(img["a/b"], "slash");
        assert!(img.get("new_prop").is_none());
        assert_eq!(img["tags"], json!(["t1", "t2"]));
        // a failed patch changes nothing
        let r = patch(
            &c,
            &admin,
            id,
            json!([{"op": "replace", "path": "/name", "value": "no"}, {"op": "remove", "path": "/gone"}]),
        )
        .await;
        assert_eq!(r.status, 409);
        assert_eq!(show(&c, &admin, id).await.body["name"], "renamed");
        // the wrong content type
        let r =
            c.image_bytes(Method::PATCH, &format!("/v2/images/{id}"), &admin, "application/json", b"[]".to_vec()).await;
        assert_eq!(r.status, 415);
        // tags API
        let r = c.image_call(Method::PUT, &format!("/v2/images/{id}/tags/t3"), &admin, None).await;
        assert_eq!(r.status, 204);
        let r = c.image_call(Method::DELETE, &format!("/v2/images/{id}/tags/nope"), &admin, None).await;
        assert_eq!(r.status, 404);
        assert_eq!(show(&c, &admin, id).await.body["tags"], json!(["t1", "t2", "t3"]));
        // create-time rules
        for (body, want) in [
            (json!({"status": "active"}), 403),
            (json!({"os_glance_x": "1"}), 403),
            (json!({"disk_format": "floppy"}), 400),
            (json!({"name": "x".repeat(256)}), 400),
            (json!({"id": "not-a-uuid"}), 400),
            (json!({"custom": 1}), 400),
        ] {
            let r = c.image_call(Method::POST, "/v2/images", &admin, Some(body.clone())).await;
            assert_eq!(r.status.as_u16(), want, "{body}: {}", r.text);
        }
    }
}

#[tokio::test]
async fn list_filters_sorting_and_paging() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (pid, _, member) = c.user_with_role(&admin, "member").await;
        let mut ids = Vec::new();
        for (i, (disk, size)) in [("raw", 100usize), ("raw", 2000), ("qcow2", 0), ("iso", 0)].iter().enumerate() {
            let img = c
                .create_image(
                    &member,
                    json!({"name": format!("img-{i}"), "disk_format": disk, "container_format": "bare",
                           "visibility": "private", "tags": [format!("t{}", i % 2)], "flavor": format!("f{i}")}),
                )
                .await;
            let id = img["id"].as_str().unwrap().to_string();
            if *size > 0 {
                assert_eq!(c.upload(&member, &id, random(*size)).await.status, 204);
            }
            ids.push(id);
        }
        let list = |q: &str| {
            let q = q.to_string();
            let c = &c;
            let member = member.clone();
            async move {
                let r = c.image_call(Method::GET, &format!("/v2/images{q}"), &member, None).await;
                assert_eq!(r.status, 200, "{q}: {}", r.text);
                r.body
            }
        };
        let names = |b: &Value| -> Vec<String> {
            b["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
        };
        assert_eq!(names(&list("").await).len(), 4, "{}", c.backend);
        assert_eq!(names(&list("?name=img-1").await), vec!["img-1"]);
        assert_eq!(names(&list("?status=active&sort=name:asc").await), vec!["img-0", "img-1"]);
        assert_eq!(names(&list("?disk_format=qcow2").await), vec!["img-2"]);
        assert_eq!(names(&list("?disk_format=in:qcow2,iso&sort_key=name&sort_dir=asc").await), vec!["img-2", "img-3"]);
        assert_eq!(names(&list("?container_format=bare").await).len(), 4);
        assert_eq!(names(&list("?size_min=1000").await), vec!["img-1"]);
        assert_eq!(names(&list("?size_max=1000").await), vec!["img-0"]);
        assert_eq!(names(&list("?tag=t1&sort=name:asc").await), vec!["img-1", "img-3"]);
        assert_eq!(names(&list("?flavor=f2").await), vec!["img-2"]);
        assert_eq!(names(&list(&format!("?owner={pid}")).await).len(), 4);
        assert_eq!(names(&list("?owner=someone-else").await).len(), 0);
        assert_eq!(names(&list("?visibility=private").await).len(), 4);
        assert_eq!(names(&list("?visibility=public").await).len(), 0);
        assert_eq!(names(&list("?created_at=gte:2000-01-01T00:00:00Z").await).len(), 4);
        assert_eq!(names(&list("?created_at=lt:2000-01-01T00:00:00Z").await).len(), 0);
        assert_eq!(names(&list("?updated_at=gt:2999-01-01T00:00:00Z").await).len(), 0);
        assert_eq!(names(&list("?sort=name:desc").await), vec!["img-3", "img-2", "img-1", "img-0"]);
        assert_eq!(names(&list("?sort_key=size&sort_dir=asc&status=active").await), vec!["img-0", "img-1"]);
        // paging: limit 3, then the next link gives the rest
        let page = list("?limit=3&sort=name:asc").await;
        assert_eq!(names(&page), vec!["img-0", "img-1", "img-2"]);
        let next = page["next"].as_str().unwrap().to_string();
        let page2 = list(next.trim_start_matches("/v2/images")).await;
        assert_eq!(names(&page2), vec!["img-3"]);
        assert!(page2.get("next").is_none());
        // paging one by one gives the same order as one page, for every sort (NULL sizes included)
        for sort in ["size:asc,name:desc", "size:desc", "name:asc", "disk_format:desc,created_at:asc", "status:asc"] {
            let all = names(&list(&format!("?sort={sort}")).await);
            let mut walked = Vec::new();
            let mut q = format!("?sort={sort}&limit=1");
            for _ in 0..10 {
                let page = list(&q).await;
                walked.extend(names(&page));
                match page["next"].as_str() {
                    Some(n) => q = n.trim_start_matches("/v2/images").to_string(),
                    None => break,
                }
            }
            assert_eq!(walked, all, "{} sort {sort}", c.backend);
            assert_eq!(all.len(), 4);
        }
        // hidden images are left out unless asked for
        assert_eq!(
            patch(&c, &member, &ids[0], json!([{"op": "replace", "path": "/os_hidden", "value": true}])).await.status,
            200
        );
        assert_eq!(names(&list("").await).len(), 3);
        assert_eq!(names(&list("?os_hidden=true").await), vec!["img-0"]);
        for bad in [
            "?limit=-1",
            "?sort_key=owner",
            "?sort_dir=sideways",
            "?size_min=x",
            "?created_at=gt:yesterday",
            "?visibility=everyone",
            "?marker=00000000-0000-0000-0000-000000000000",
            "?os_hidden=maybe",
        ] {
            let r = c.image_call(Method::GET, &format!("/v2/images{bad}"), &member, None).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.text);
        }
    }
}

#[tokio::test]
async fn sharing_members_and_visibility() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (_, _, owner) = c.user_with_role(&admin, "member").await;
        let (other_pid, _, other) = c.user_with_role(&admin, "member").await;
        let (_, _, third) = c.user_with_role(&admin, "member").await;
        let img = c.create_image(&owner, json!({"name": "shared-one", "visibility": "private"})).await;
        let id = img["id"].as_str().unwrap();
        let path = format!("/v2/images/{id}/members");
        // private images have no members
        let r = c.image_call(Method::POST, &path, &owner, Some(json!({"member": other_pid}))).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(
            patch(&c, &owner, id, json!([{"op": "replace", "path": "/visibility", "value": "shared"}])).await.status,
            200
        );
        let r = c.image_call(Method::POST, &path, &owner, Some(json!({"member": other_pid}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["status"], "pending");
        assert_eq!(r.body["schema"], "/v2/schemas/member");
        let r = c.image_call(Method::POST, &path, &owner, Some(json!({"member": other_pid}))).await;
        assert_eq!(r.status, 409);
        // the member sees it by id, but lists it only once accepted
        assert_eq!(show(&c, &other, id).await.status, 200);
        assert_eq!(show(&c, &third, id).await.status, 404);
        let listed = |tok: String, q: &'static str| {
            let c = &c;
            async move {
                let r = c.image_call(Method::GET, &format!("/v2/images{q}"), &tok, None).await;
                r.body["images"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            }
        };
        assert!(!listed(other.clone(), "").await.contains(&id.to_string()));
        assert!(listed(other.clone(), "?member_status=pending").await.contains(&id.to_string()));
        // only the member decides its status; the owner cannot
        let mpath = format!("{path}/{other_pid}");
        let r = c.image_call(Method::PUT, &mpath, &owner, Some(json!({"status": "accepted"}))).await;
        assert_eq!(r.status, 403, "{}", r.text);
        let r = c.image_call(Method::PUT, &mpath, &other, Some(json!({"status": "bogus"}))).await;
        assert_eq!(r.status, 400);
        let r = c.image_call(Method::PUT, &mpath, &other, Some(json!({"status": "accepted"}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(listed(other.clone(), "").await.contains(&id.to_string()));
        // the member may not change the image or add members
        assert_eq!(
            patch(&c, &other, id, json!([{"op": "replace", "path": "/name", "value": "mine"}])).await.status,
            403
        );
        let r = c.image_call(Method::DELETE, &format!("/v2/images/{id}"), &other, None).await;
        assert_eq!(r.status, 403);
        let r = c.image_call(Method::GET, &path, &owner, None).await;
        assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
        // members cannot publicize: only admin can
        assert_eq!(
            patch(&c, &owner, id, json!([{"op": "replace", "path": "/visibility", "value": "public"}])).await.status,
            403
        );
        assert_eq!(
            patch(&c, &owner, id, json!([{"op": "replace", "path": "/visibility", "value": "community"}])).await.status,
            200
        );
        assert_eq!(show(&c, &third, id).await.status, 200, "community images are visible to all");
        assert!(!listed(third.clone(), "").await.contains(&id.to_string()), "but not listed by default");
        assert!(listed(third.clone(), "?visibility=community").await.contains(&id.to_string()));
        let r = c.image_call(Method::DELETE, &mpath, &owner, None).await;
        assert_eq!(r.status, 204);
        let r = c.image_call(Method::DELETE, &mpath, &owner, None).await;
        assert_eq!(r.status, 404);
    }
}

#[tokio::test]
async fn format_safety_refuses_dangerous_and_mislabelled_data() {
    let good = qcow2(false);
    let backed = qcow2(true);
    for c in clouds().await {
        let admin = c.admin_token().await;
        for (disk, data, want) in [
            ("qcow2", backed.clone(), 400),
            ("raw", good.clone(), 400),
            ("qcow2", random(4096), 400),
            ("qcow2", good.clone(), 204),
        ] {
            let img = c.create_image(&admin, json!({"disk_format": disk, "container_format": "bare"})).await;
            let id = img["id"].as_str().unwrap();
            let r = c.upload(&admin, id, data).await;
            assert_eq!(r.status.as_u16(), want, "{} {disk}: {}", c.backend, r.text);
            let img = show(&c, &admin, id).await.body;
            if want == 400 {
                assert!(r.body["message"].as_str().unwrap().len() > 10, "a reason: {}", r.text);
                assert_eq!(img["status"], "queued", "refused data leaves the image queued");
            } else {
                assert_eq!(img["virtual_size"], 16 * 1024 * 1024);
            }
        }
        assert_eq!(store_files(&c).len(), 1, "refused data is not kept: {:?}", store_files(&c));
    }
}

#[tokio::test]
async fn broken_upload_kills_the_image_and_leaves_no_data() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let img = c.create_image(&admin, json!({"disk_format": "raw", "container_format": "bare"})).await;
        let id = img["id"].as_str().unwrap().to_string();
        // promise 10 MB, send 1 MB, hang up
        let mut s = std::net::TcpStream::connect(c.image_url.trim_start_matches("http://")).unwrap();
        write!(
            s,
            "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {admin}\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n"
        )
        .unwrap();
        s.write_all(&random(1_000_000)).unwrap();
        s.flush().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drop(s);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let st = show(&c, &admin, &id).await.body["status"].as_str().unwrap().to_string();
            if st == "killed" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "image stuck in {st}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(store_files(&c).is_empty(), "no partial data: {:?}", store_files(&c));
    }
}

#[tokio::test]
async fn concurrent_uploads_to_one_image_one_wins() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let img = c.create_image(&admin, json!({"disk_format": "raw", "container_format": "bare"})).await;
        let id = img["id"].as_str().unwrap().to_string();
        let (a, b) = tokio::join!(c.upload(&admin, &id, random(2_000_000)), c.upload(&admin, &id, random(2_000_001)));
        let mut codes = [a.status.as_u16(), b.status.as_u16()];
        codes.sort();
        assert_eq!(codes, [204, 409], "{} {} / {}", c.backend, a.text, b.text);
        let img = show(&c, &admin, &id).await.body;
        assert_eq!(img["status"], "active");
        assert_eq!(store_files(&c).len(), 1);
    }
}

#[tokio::test]
async fn quotas_from_unified_limits() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (pid, _, member) = c.user_with_role(&admin, "member").await;
        let svc =
            c.get("/v3/services?type=image", &admin).await.body["services"][0]["id"].as_str().unwrap().to_string();
        let r = c
            .post(
                "/v3/registered_limits",
                &admin,
                json!({"registered_limits": [
                    {"service_id": svc, "resource_name": "image_count_total", "default_limit": 100},
                    {"service_id": svc, "resource_name": "image_size_total", "default_limit": 1000}
                ]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = c
            .post(
                "/v3/limits",
                &admin,
                json!({"limits": [
                    {"service_id": svc, "project_id": pid, "resource_name": "image_count_total", "resource_limit": 2},
                    {"service_id": svc, "project_id": pid, "resource_name": "image_size_total", "resource_limit": 1}
                ]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let a = c.create_image(&member, json!({"disk_format": "raw", "container_format": "bare"})).await;
        let b = c.create_image(&member, json!({"disk_format": "raw", "container_format": "bare"})).await;
        let r = c.image_call(Method::POST, "/v2/images", &member, Some(json!({}))).await;
        assert_eq!(r.status, 413, "image_count_total: {}", r.text);
        // 1 MiB in all: 700 KB fit, 700 KB more do not
        assert_eq!(c.upload(&member, a["id"].as_str().unwrap(), random(700_000)).await.status, 204);
        let r = c.upload(&member, b["id"].as_str().unwrap(), random(700_000)).await;
        assert_eq!(r.status, 413, "image_size_total: {}", r.text);
        assert_eq!(show(&c, &member, b["id"].as_str().unwrap()).await.body["status"], "queued");
        let r = c.image_call(Method::GET, "/v2/info/usage", &member, None).await;
        assert_eq!(r.body["usage"]["image_count_total"]["limit"], 2);
        assert_eq!(r.body["usage"]["image_count_total"]["usage"], 2);
    }
}

#[tokio::test]
async fn racing_creates_never_exceed_the_image_count_quota() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (pid, _, member) = c.user_with_role(&admin, "member").await;
        let svc =
            c.get("/v3/services?type=image", &admin).await.body["services"][0]["id"].as_str().unwrap().to_string();
        let r = c
            .post(
                "/v3/registered_limits",
                &admin,
                json!({"registered_limits": [
                {"service_id": svc, "resource_name": "image_count_total", "default_limit": 100}]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = c
            .post(
                "/v3/limits",
                &admin,
                json!({"limits": [
                {"service_id": svc, "project_id": pid, "resource_name": "image_count_total", "resource_limit": 3}]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let creates = (0..8)
            .map(|i| c.image_call(Method::POST, "/v2/images", &member, Some(json!({"name": format!("race-{i}")}))));
        let results = futures::future::join_all(creates).await;
        let ok = results.iter().filter(|r| r.status == 201).count();
        assert!(results.iter().all(|r| r.status == 201 || r.status == 413), "only 201 or 413");
        let listed =
            c.image_call(Method::GET, "/v2/images", &member, None).await.body["images"].as_array().unwrap().len();
        assert!(ok <= 3, "{} created {ok}", c.backend);
        assert_eq!(listed, ok, "{}: every 201 is an image, no 413 left one behind", c.backend);
        // a close race may refuse more than needed; one by one, the rest fills to exactly the limit
        for i in ok..3 {
            let r =
                c.image_call(Method::POST, "/v2/images", &member, Some(json!({"name": format!("after-{i}")}))).await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
        let r = c.image_call(Method::POST, "/v2/images", &member, Some(json!({}))).await;
        assert_eq!(r.status, 413);
    }
}

#[tokio::test]
async fn racing_uploads_never_exceed_the_size_quota() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let (pid, _, member) = c.user_with_role(&admin, "member").await;
        let svc =
            c.get("/v3/services?type=image", &admin).await.body["services"][0]["id"].as_str().unwrap().to_string();
        let r = c
            .post(
                "/v3/registered_limits",
                &admin,
                json!({"registered_limits": [
                {"service_id": svc, "resource_name": "image_size_total", "default_limit": 100}]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = c
            .post(
                "/v3/limits",
                &admin,
                json!({"limits": [
                {"service_id": svc, "project_id": pid, "resource_name": "image_size_total", "resource_limit": 2}]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        // four uploads of 800 KB each, all checked against an empty quota of 2 MiB at once
        let mut ids = Vec::new();
        for _ in 0..4 {
            let img = c.create_image(&member, json!({"disk_format": "raw", "container_format": "bare"})).await;
            ids.push(img["id"].as_str().unwrap().to_string());
        }
        let uploads = ids.iter().map(|id| c.upload(&member, id, random(800_000)));
        let results = futures::future::join_all(uploads).await;
        assert!(results.iter().all(|r| r.status == 204 || r.status == 413), "only 204 or 413");
        let ok = results.iter().filter(|r| r.status == 204).count();
        assert!(ok <= 2, "{}: {ok} uploads of 800 KB fit in 2 MiB", c.backend);
        let mut active = 0;
        for id in &ids {
            match show(&c, &member, id).await.body["status"].as_str().unwrap() {
                "active" => active += 1,
                "queued" => {}
                s => panic!("{}: image left {s}", c.backend),
            }
        }
        assert_eq!(active, ok, "{}: every 204 is an active image, every 413 a queued one", c.backend);
        assert_eq!(store_files(&c).len(), ok, "refused data is not kept");
    }
}

#[tokio::test]
async fn interoperable_import_and_copy_between_stores() {
    let (backend, url) = stratus_testkit::fresh_urls().await.into_iter().next().unwrap();
    let c = Cloud::start_with(backend, &url, |cfg| {
        cfg.image.stores = vec!["fast".into(), "cheap".into()];
        cfg.image.default_store = "fast".into();
    })
    .await;
    let admin = c.admin_token().await;
    let r = c.image_call(Method::GET, "/v2/info/import", &admin, None).await;
    assert_eq!(r.body["import-methods"]["value"], json!(["glance-direct", "copy-image"]));
    let r = c.image_call(Method::GET, "/v2/info/stores", &admin, None).await;
    assert_eq!(r.body["stores"].as_array().unwrap().len(), 2);
    let img = c.create_image(&admin, json!({"disk_format": "qcow2", "container_format": "bare"})).await;
    let id = img["id"].as_str().unwrap();
    // import before staging: 409
    let imp = json!({"method": {"name": "glance-direct"}});
    let r = c.image_call(Method::POST, &format!("/v2/images/{id}/import"), &admin, Some(imp.clone())).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let data = qcow2(false);
    let r = c
        .image_bytes(Method::PUT, &format!("/v2/images/{id}/stage"), &admin, "application/octet-stream", data.clone())
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(show(&c, &admin, id).await.body["status"], "uploading");
    let r = c.image_call(Method::POST, &format!("/v2/images/{id}/import"), &admin, Some(imp)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let wait = |want: &'static str| {
        let c = &c;
        let admin = admin.clone();
        async move {
            for _ in 0..200 {
                let b = show(c, &admin, id).await.body;
                if b["stores"].as_str().unwrap_or("").contains(want) && b["status"] == "active" {
                    return b;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("image never reached store {want}");
        }
    };
    let b = wait("fast").await;
    assert_eq!(b["checksum"], md5_hex(&data));
    assert_eq!(b["virtual_size"], 16 * 1024 * 1024);
    let r = c
        .image_call(
            Method::POST,
            &format!("/v2/images/{id}/import"),
            &admin,
            Some(json!({"method": {"name": "copy-image"}, "stores": ["cheap"]})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let b = wait("cheap").await;
    assert_eq!(b["stores"], "fast,cheap");
    assert_eq!(b["os_glance_importing_to_stores"], "");
    let r = c
        .image_call(
            Method::POST,
            &format!("/v2/images/{id}/import"),
            &admin,
            Some(json!({"method": {"name": "web-download", "uri": "http://example.com/x"}})),
        )
        .await;
    assert_eq!(r.status, 400);
}

/// A loopback web server with one file, for HTTP locations and web-download.
async fn web_server(data: Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data = bytes::Bytes::from(data);
    let app = axum::Router::new().route("/img", axum::routing::get(move || std::future::ready(data.clone())));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/img"), task)
}

async fn wait_tasks(c: &Cloud, tok: &str, id: &str) -> Vec<Value> {
    for _ in 0..200 {
        let r = c.image_call(Method::GET, &format!("/v2/images/{id}/tasks"), tok, None).await;
        let tasks = r.body["tasks"].as_array().cloned().unwrap_or_default();
        if !tasks.is_empty() && tasks.iter().all(|t| t["status"] != "processing") {
            return tasks;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("image tasks never finished");
}

#[tokio::test]
async fn http_locations_and_web_download() {
    let data = random(200_000);
    let (url, _web) = web_server(data.clone()).await;
    let (backend, db) = stratus_testkit::fresh_urls().await.into_iter().next().unwrap();
    let c = Cloud::start_with(backend, &db, |cfg| {
        cfg.image.http_store = "web".into();
        cfg.image.show_multiple_locations = true;
        cfg.image.allowed_url_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    let admin = c.admin_token().await;
    let r = c.image_call(Method::GET, "/v2/info/stores", &admin, None).await;
    assert!(r.body["stores"].as_array().unwrap().iter().any(|s| s["id"] == "web" && s["read-only"] == "true"));
    // PATCH add: straight to active, size from the server, no hashes
    let img = c.create_image(&admin, json!({"disk_format": "raw", "container_format": "bare"})).await;
    let id = img["id"].as_str().unwrap();
    assert_eq!(img["locations"], json!([]));
    let add =
        |u: String, meta: Value| json!([{"op": "add", "path": "/locations/-", "value": {"url": u, "metadata": meta}}]);
    let r = patch(&c, &admin, id, add("gopher://info.cern.ch".into(), json!({}))).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = patch(&c, &admin, id, add("http://10.0.0.1/x".into(), json!({}))).await;
    assert_eq!(r.status, 400, "hosts outside the allow-list are refused: {}", r.text);
    let r = patch(&c, &admin, id, add(url.clone(), json!({"foo": "bar"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["size"], data.len());
    assert_eq!(r.body["locations"][0]["metadata"]["foo"], "bar");
    assert_eq!(r.body["os_hash_value"], Value::Null);
    let r = patch(&c, &admin, id, add(format!("{url}#two"), json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["locations"].as_array().unwrap().len(), 2);
    // replacing with other URLs is refused; removing one of two works, the last one not
    let r = patch(
        &c,
        &admin,
        id,
        json!([{"op": "replace", "path": "/locations", "value": [{"url": "http://127.0.0.1/other", "metadata": {}}]}]),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = patch(&c, &admin, id, json!([{"op": "remove", "path": "/locations/1"}])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = patch(&c, &admin, id, json!([{"op": "remove", "path": "/locations/0"}])).await;
    assert_eq!(r.status, 403, "{}", r.text);
    // data comes through the HTTP store
    let r =
        c.http.get(format!("{}/v2/images/{id}/file", c.image_url)).header("x-auth-token", &admin).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), data.as_slice());

    // v2.17 add-location: hashes verified in a task
    let sha256: String = sha2::Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
    let img = c.create_image(&admin, json!({"disk_format": "raw", "container_format": "bare"})).await;
    let id2 = img["id"].as_str().unwrap();
    let path = format!("/v2/images/{id2}/locations");
    for bad in [
        json!({"os_hash_algo": "sha512", "os_hash_value": "abc"}),
        json!({"os_hash_value": sha256}),
        json!({"os_hash_algo": "sha123", "os_hash_value": sha256}),
    ] {
        let r = c.image_call(Method::POST, &path, &admin, Some(json!({"url": url, "validation_data": bad}))).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    let r = c
        .image_call(
            Method::POST,
            &path,
            &admin,
            Some(json!({"url": url, "validation_data": {"os_hash_algo": "sha256", "os_hash_value": sha256}})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let tasks = wait_tasks(&c, &admin, id2).await;
    assert_eq!(tasks[0]["status"], "success", "{tasks:?}");
    let b = show(&c, &admin, id2).await.body;
    assert_eq!((b["status"].as_str(), b["os_hash_algo"].as_str()), (Some("active"), Some("sha256")));
    assert_eq!(b["checksum"], md5_hex(&data));
    // a wrong hash: the task fails and the image goes back to queued
    let img = c.create_image(&admin, json!({"disk_format": "raw", "container_format": "bare"})).await;
    let id3 = img["id"].as_str().unwrap();
    let r = c.image_call(Method::POST, &format!("/v2/images/{id3}/locations"), &admin, Some(json!({"url": url, "validation_data": {"os_hash_algo": "sha512", "os_hash_value": "beefdead".repeat(16)}}))).await;
    assert_eq!(r.status, 202);
    assert_eq!(wait_tasks(&c, &admin, id3).await[0]["status"], "failure");
    let b = show(&c, &admin, id3).await.body;
    assert_eq!((b["status"].as_str(), b["checksum"].as_str()), (Some("queued"), None));

    // web-download: fetched from the allowed host into the default store
    let img = c.create_image(&admin, json!({"disk_format": "raw", "container_format": "bare"})).await;
    let id4 = img["id"].as_str().unwrap();
    let imp = |u: &str| json!({"method": {"name": "web-download", "uri": u}});
    let r = c
        .image_call(Method::POST, &format!("/v2/images/{id4}/import"), &admin, Some(imp("http://does-not.exist/x")))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("does not pass filtering"), "{}", r.text);
    let r = c.image_call(Method::POST, &format!("/v2/images/{id4}/import"), &admin, Some(imp(&url))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    for _ in 0..200 {
        let b = show(&c, &admin, id4).await.body;
        if b["status"] == "active" {
            assert_eq!(b["checksum"], md5_hex(&data));
            assert_eq!(b["stores"], "local");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("web-download never finished");
}

#[tokio::test]
async fn glance_download_from_the_catalog() {
    let (backend, db) = stratus_testkit::fresh_urls().await.into_iter().next().unwrap();
    let c = Cloud::start_with(backend, &db, |cfg| cfg.image.allowed_url_hosts = vec!["127.0.0.1".into()]).await;
    let admin = c.admin_token().await;
    let src = c.create_image(&admin, json!({"disk_format": "raw", "container_format": "bare", "os_distro": "rhel", "hw_cpu_cores": "5", "speed": "fast"})).await;
    let src = src["id"].as_str().unwrap();
    let data = random(300_000);
    assert_eq!(c.upload(&admin, src, data.clone()).await.status, 204);
    let imp = |remote: &str, region: &str| json!({"method": {"name": "glance-download", "glance_image_id": remote, "glance_region": region, "glance_service_interface": "public"}});
    let dst =
        c.create_image(&admin, json!({"disk_format": "iso", "container_format": "ovf", "os_distro": "windows"})).await;
    let dst = dst["id"].as_str().unwrap();
    let r =
        c.image_call(Method::POST, &format!("/v2/images/{dst}/import"), &admin, Some(imp("foo", "RegionOne"))).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("does not look like a UUID"), "{}", r.text);
    let r = c.image_call(Method::POST, &format!("/v2/images/{dst}/import"), &admin, Some(imp(src, "RegionOne"))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(wait_tasks(&c, &admin, dst).await[0]["status"], "success");
    let b = show(&c, &admin, dst).await.body;
    assert_eq!(b["status"], "active");
    assert_eq!((b["disk_format"].as_str(), b["container_format"].as_str()), (Some("raw"), Some("bare")));
    assert_eq!((b["os_distro"].as_str(), b["hw_cpu_cores"].as_str()), (Some("rhel"), Some("5")));
    assert!(b.get("speed").is_none(), "only the chosen properties are copied");
    assert_eq!(b["checksum"], md5_hex(&data));
    // a missing source or region: the task fails and the image is queued again
    for (remote, region) in [("36d4b546-64a2-4bb9-bdd0-ba676aa48f2c", "RegionOne"), (src, "nowhere")] {
        let img = c.create_image(&admin, json!({"disk_format": "raw", "container_format": "bare"})).await;
        let id = img["id"].as_str().unwrap();
        let r = c.image_call(Method::POST, &format!("/v2/images/{id}/import"), &admin, Some(imp(remote, region))).await;
        assert_eq!(r.status, 202);
        assert_eq!(wait_tasks(&c, &admin, id).await[0]["status"], "failure");
        assert_eq!(show(&c, &admin, id).await.body["status"], "queued");
    }
}

#[tokio::test]
async fn images_whose_work_died_are_moved_on() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    use stratus_image::entity::image;
    for c in clouds().await {
        let admin = c.admin_token().await;
        let mut ids = Vec::new();
        for (status, staging) in [
            ("saving", None),
            ("uploading", None),
            ("uploading", Some("file:///x")),
            ("importing", None),
            ("saving", None),
        ] {
            let img = c.create_image(&admin, json!({"disk_format": "raw", "container_format": "bare"})).await;
            let id = img["id"].as_str().unwrap().to_string();
            image::Entity::update_many()
                .col_expr(image::Column::Status, Expr::value(status))
                .col_expr(image::Column::Staging, Expr::value(staging.map(str::to_string)))
                .filter(image::Column::Id.eq(id.clone()))
                .exec(&c.image.db.write)
                .await
                .unwrap();
            ids.push(id);
        }
        // the last one is still alive: its heartbeat is recent
        let old = stratus_image::store::now_us() - 600_000_000;
        image::Entity::update_many()
            .col_expr(image::Column::UpdatedAt, Expr::value(old))
            .filter(image::Column::Id.is_in(ids[..4].to_vec()))
            .exec(&c.image.db.write)
            .await
            .unwrap();
        let n = stratus_image::reaper::reap_once(&c.image, stratus_image::reaper::DEAD_AFTER).await.unwrap();
        assert_eq!(n, 3, "{}", c.backend);
        let st = |i: usize| {
            let c = &c;
            let admin = admin.clone();
            let id = ids[i].clone();
            async move { show(c, &admin, &id).await.body["status"].as_str().unwrap().to_string() }
        };
        assert_eq!(st(0).await, "killed");
        assert_eq!(st(1).await, "queued", "an unfinished staging");
        assert_eq!(st(2).await, "uploading", "staged data waiting for import stays");
        assert_eq!(st(3).await, "queued");
        assert_eq!(st(4).await, "saving", "live work is left alone");
    }
}
