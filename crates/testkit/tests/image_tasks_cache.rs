//! The image service's tasks API (`/v2/tasks`) and image cache API
//! (`/v2/cache`) end to end over HTTP, on every reachable database backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, Resp, clouds};

fn random(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D ^ n as u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An active raw image with `data`; returns its id.
async fn active_image(c: &Cloud, tok: &str, data: &[u8]) -> String {
    let img = c
        .create_image(
            tok,
            json!({"name": "cached", "disk_format": "raw", "container_format": "bare", "visibility": "private"}),
        )
        .await;
    let id = img["id"].as_str().unwrap().to_string();
    let r = c.upload(tok, &id, data.to_vec()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    id
}

async fn download(c: &Cloud, tok: &str, id: &str, range: Option<&str>) -> (u16, Vec<u8>) {
    let mut rb = c.http.get(format!("{}/v2/images/{id}/file", c.image_url)).header("x-auth-token", tok);
    if let Some(r) = range {
        rb = rb.header("range", r);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

async fn call(c: &Cloud, method: Method, path: &str, tok: &str, body: Option<Value>) -> Resp {
    c.image_call(method, path, tok, body).await
}

async fn clear(c: &Cloud, tok: &str, target: Option<&str>) -> u16 {
    let mut rb = c.http.delete(format!("{}/v2/cache", c.image_url)).header("x-auth-token", tok);
    if let Some(t) = target {
        rb = rb.header("x-image-cache-clear-target", t);
    }
    rb.send().await.unwrap().status().as_u16()
}

/// Poll `GET /v2/cache` until `id` is cached; returns its entry.
async fn wait_cached(c: &Cloud, admin: &str, id: &str) -> Value {
    for _ in 0..200 {
        let r = call(c, Method::GET, "/v2/cache", admin, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if let Some(e) = r.body["cached_images"].as_array().unwrap().iter().find(|e| e["image_id"] == id) {
            assert!(!r.body["queued_images"].as_array().unwrap().iter().any(|q| q == id), "cached and queued");
            return e.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("image {id} was not cached in time ({})", c.backend);
}

async fn cache_state(c: &Cloud, admin: &str) -> Value {
    let r = call(c, Method::GET, "/v2/cache", admin, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Poll a task until it leaves pending/processing.
async fn wait_task(c: &Cloud, admin: &str, id: &str) -> Value {
    for _ in 0..200 {
        let r = call(c, Method::GET, &format!("/v2/tasks/{id}"), admin, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if !["pending", "processing"].contains(&r.body["status"].as_str().unwrap()) {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id} did not finish in time ({})", c.backend);
}

fn import_task(from: &str, disk_format: &str) -> Value {
    json!({"type": "import", "input": {
        "import_from": from,
        "import_from_format": "raw",
        "image_properties": {"name": "task_image", "disk_format": disk_format, "container_format": "bare",
                             "visibility": "private", "os_distro": "cirros", "tags": ["imported"]},
    }})
}

#[tokio::test]
async fn tasks_api() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let member = c.user_with_role(&admin, "member").await.2;

        // Tempest's test_task_create_fake_image_location: no outbound fetches, refused at create
        let fake = "http://tempest-dummy-img-file-1234.qcow2";
        let r = call(&c, Method::POST, "/v2/tasks", &admin, Some(import_task(fake, "qcow2"))).await;
        assert_eq!(r.status, 400, "{}: {}", c.backend, r.text);
        assert!(r.text.contains("does not pass filtering"), "{}", r.text);
        for bad in [
            json!({"type": "export", "input": {}}),
            json!({"type": "api_image_import", "input": {}}),
            json!({"type": 5, "input": {}}),
            json!({"input": {}}),
            json!({"type": "import"}),
            json!({"type": "import", "input": "x"}),
            json!({"type": "import", "input": {}, "bogus": 1}),
            json!({"type": "import", "input": {"import_from": "file:///etc/passwd", "import_from_format": "raw",
                   "image_properties": {}}}),
            json!([1]),
        ] {
            let r = call(&c, Method::POST, "/v2/tasks", &admin, Some(bad.clone())).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.text);
        }

        let r = call(&c, Method::GET, "/v2/tasks", &admin, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["tasks"], json!([]));
        assert_eq!(r.body["first"], "/v2/tasks");
        assert_eq!(r.body["schema"], "/v2/schemas/tasks");
        let missing = uuid::Uuid::new_v4();
        assert_eq!(call(&c, Method::GET, &format!("/v2/tasks/{missing}"), &admin, None).await.status, 404);
        assert_eq!(call(&c, Method::GET, "/v2/tasks/not-a-uuid", &admin, None).await.status, 404);
        for q in ["status=bogus", "type=export", "sort_dir=up", "sort_key=bogus", "limit=-1", "limit=x", "marker=x"] {
            let r = call(&c, Method::GET, &format!("/v2/tasks?{q}"), &admin, None).await;
            assert_eq!(r.status, 400, "{q}: {}", r.text);
        }
        let r = call(&c, Method::GET, &format!("/v2/tasks?marker={missing}"), &admin, None).await;
        assert_eq!(r.status, 400, "{}", r.text);

        // admin only by default (tasks_api_access)
        assert_eq!(call(&c, Method::GET, "/v2/tasks", &member, None).await.status, 403);
        assert_eq!(call(&c, Method::GET, &format!("/v2/tasks/{missing}"), &member, None).await.status, 403);
        let r = call(&c, Method::POST, "/v2/tasks", &member, Some(import_task(fake, "qcow2"))).await;
        assert_eq!(r.status, 403, "{}", r.text);

        let r = call(&c, Method::GET, "/v2/schemas/task", &admin, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["name"], "task");
        let r = call(&c, Method::GET, "/v2/schemas/tasks", &admin, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["name"], "tasks");

        // an import from this cloud's own image data runs to success
        let data = random(256 * 1024 + 3);
        let src = active_image(&c, &admin, &data).await;
        let from = format!("{}/v2/images/{src}/file", c.image_url);
        let r = call(&c, Method::POST, "/v2/tasks", &admin, Some(import_task(&from, "raw"))).await;
        assert_eq!(r.status, 201, "{}: {}", c.backend, r.text);
        let task = r.body.clone();
        let tid = task["id"].as_str().unwrap().to_string();
        assert_eq!(r.header("location"), Some(format!("/v2/tasks/{tid}").as_str()));
        assert_eq!(task["type"], "import");
        assert_eq!(task["status"], "pending");
        assert_eq!(task["result"], Value::Null);
        assert_eq!(task["message"], "");
        assert_eq!(task["input"]["import_from"], from.as_str());
        assert_eq!(task["self"], format!("/v2/tasks/{tid}"));
        assert_eq!(task["schema"], "/v2/schemas/task");
        assert!(task["owner"].is_string() && task["created_at"].is_string() && task["updated_at"].is_string());
        let done = wait_task(&c, &admin, &tid).await;
        assert_eq!(done["status"], "success", "{done}");
        assert!(done["expires_at"].is_string(), "{done}");
        let new_id = done["result"]["image_id"].as_str().unwrap().to_string();
        let img = call(&c, Method::GET, &format!("/v2/images/{new_id}"), &admin, None).await.body;
        assert_eq!(img["status"], "active");
        assert_eq!(img["name"], "task_image");
        assert_eq!(img["disk_format"], "raw");
        assert_eq!(img["os_distro"], "cirros");
        assert_eq!(img["tags"], json!(["imported"]));
        assert_eq!(img["size"], data.len());
        assert_eq!(download(&c, &admin, &new_id, None).await, (200, data.clone()));

        // data that is not what image_properties claim: the task fails and leaves no image
        let r = call(&c, Method::POST, "/v2/tasks", &admin, Some(import_task(&from, "qcow2"))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let failed = wait_task(&c, &admin, r.body["id"].as_str().unwrap()).await;
        assert_eq!(failed["status"], "failure", "{failed}");
        assert!(!failed["message"].as_str().unwrap().is_empty());
        assert_eq!(failed["result"], Value::Null);

        // list: summaries, filters, sorting, paging
        let r = call(&c, Method::GET, "/v2/tasks", &admin, None).await;
        let listed = r.body["tasks"].as_array().unwrap();
        assert_eq!(listed.len(), 2, "{}", r.text);
        assert!(listed[0].get("input").is_none(), "lists carry no details");
        let r = call(&c, Method::GET, "/v2/tasks?status=success&type=import", &admin, None).await;
        assert_eq!(r.body["tasks"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["tasks"][0]["id"], tid.as_str());
        assert_eq!(r.body["first"], "/v2/tasks?status=success&type=import");
        let r = call(&c, Method::GET, "/v2/tasks?sort_key=created_at&sort_dir=asc&limit=1", &admin, None).await;
        assert_eq!(r.body["tasks"][0]["id"], tid.as_str(), "{}", r.text);
        let next = r.body["next"].as_str().unwrap().to_string();
        assert!(next.contains(&format!("marker={tid}")), "{next}");
        let r = call(&c, Method::GET, &next, &admin, None).await;
        assert_eq!(r.body["tasks"].as_array().unwrap().len(), 1);
        assert_ne!(r.body["tasks"][0]["id"], tid.as_str());

        // tasks are not deleted by hand
        assert_eq!(call(&c, Method::DELETE, &format!("/v2/tasks/{tid}"), &admin, None).await.status, 405);
    }
}

#[tokio::test]
async fn cache_cycle() {
    for c in clouds().await {
        let admin = c.admin_token().await;
        let member = c.user_with_role(&admin, "member").await.2;

        // non-admins may not touch the cache
        assert_eq!(call(&c, Method::GET, "/v2/cache", &member, None).await.status, 403);
        assert_eq!(clear(&c, &member, None).await, 403);
        let state = cache_state(&c, &admin).await;
        assert_eq!(state, json!({"cached_images": [], "queued_images": []}));

        // unknown images: 404; images without data: 400
        let r = call(&c, Method::PUT, "/v2/cache/non-existing-image-id", &admin, None).await;
        assert_eq!(r.status, 404, "{}", r.text);
        let queued = c.create_image(&admin, json!({"name": "queued"})).await;
        let r = call(&c, Method::PUT, &format!("/v2/cache/{}", queued["id"].as_str().unwrap()), &admin, None).await;
        assert_eq!(r.status, 400, "{}", r.text);

        let data = random(2 * 1024 * 1024 + 5);
        let id = active_image(&c, &admin, &data).await;
        let r = call(&c, Method::PUT, &format!("/v2/cache/{id}"), &member, None).await;
        assert_eq!(r.status, 404, "a private image of another project is not seen");
        let r = call(&c, Method::PUT, &format!("/v2/cache/{id}"), &admin, None).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let entry = wait_cached(&c, &admin, &id).await;
        assert_eq!(entry["size"], data.len());
        assert_eq!(entry["hits"], 0);
        assert!(entry["last_modified"].as_f64().unwrap() > 1.0e9, "{entry}");
        assert!(entry["last_accessed"].is_number());
        let file = c.data_dir.path().join("image-cache").join(&id);
        assert_eq!(std::fs::read(&file).unwrap(), data, "a full copy on disk");

        // downloads now come from the cache and count hits
        assert_eq!(download(&c, &admin, &id, None).await, (200, data.clone()));
        let (status, part) = download(&c, &admin, &id, Some("bytes=100-199")).await;
        assert_eq!(status, 206);
        assert_eq!(part, data[100..200].to_vec());
        let state = cache_state(&c, &admin).await;
        assert_eq!(state["cached_images"][0]["hits"], 2, "{state}");

        // queueing a cached image again changes nothing
        let r = call(&c, Method::PUT, &format!("/v2/cache/{id}"), &admin, None).await;
        assert_eq!(r.status, 202);
        let state = cache_state(&c, &admin).await;
        assert_eq!(state["queued_images"], json!([]));
        assert_eq!(state["cached_images"].as_array().unwrap().len(), 1);

        // the cache survives a restart: its directory is scanned
        let reopened = stratus_image::cache::ImageCache::load(c.data_dir.path()).unwrap();
        let (cached, queue) = reopened.state();
        assert_eq!(cached.len(), 1);
        assert_eq!(cached[0].0, id);
        assert_eq!(cached[0].1.size, data.len() as u64);
        assert!(queue.is_empty());

        // delete one entry; unknown ids are 404
        let r = call(&c, Method::DELETE, &format!("/v2/cache/{id}"), &admin, None).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert!(!file.exists());
        assert_eq!(cache_state(&c, &admin).await["cached_images"], json!([]));
        let r = call(&c, Method::DELETE, &format!("/v2/cache/{}", uuid::Uuid::new_v4()), &admin, None).await;
        assert_eq!(r.status, 404);

        // cached again, then the store loses the data: the cached copy still serves
        assert_eq!(call(&c, Method::PUT, &format!("/v2/cache/{id}"), &admin, None).await.status, 202);
        wait_cached(&c, &admin, &id).await;
        let img = call(&c, Method::GET, &format!("/v2/images/{id}"), &admin, None).await.body;
        assert_eq!(img["stores"], "local");
        std::fs::remove_file(c.data_dir.path().join("images").join("local").join(&id)).unwrap();
        assert_eq!(download(&c, &admin, &id, None).await, (200, data.clone()));

        // clearing: a bad target is 400; the queue alone keeps the cache; all empties it
        assert_eq!(clear(&c, &admin, Some("invalid")).await, 400);
        assert_eq!(clear(&c, &admin, Some("queue")).await, 204);
        assert_eq!(cache_state(&c, &admin).await["cached_images"].as_array().unwrap().len(), 1);
        assert_eq!(clear(&c, &admin, None).await, 204);
        assert_eq!(cache_state(&c, &admin).await, json!({"cached_images": [], "queued_images": []}));
        assert!(!file.exists());

        // deleting an image drops it from the cache
        let other = active_image(&c, &admin, &data[..1000]).await;
        assert_eq!(call(&c, Method::PUT, &format!("/v2/cache/{other}"), &admin, None).await.status, 202);
        wait_cached(&c, &admin, &other).await;
        assert_eq!(call(&c, Method::DELETE, &format!("/v2/images/{other}"), &admin, None).await.status, 204);
        assert_eq!(cache_state(&c, &admin).await["cached_images"], json!([]));
        assert!(!c.data_dir.path().join("image-cache").join(&other).exists());

        // maintenance calls
        let r = call(&c, Method::POST, "/v2/cache/clean", &admin, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = call(&c, Method::POST, "/v2/cache/prune", &admin, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body, json!({"total_files_pruned": 0, "total_bytes_pruned": 0}));
        assert_eq!(call(&c, Method::POST, "/v2/cache/prune", &member, None).await.status, 403);
    }
}
