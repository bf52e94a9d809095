//! The metadata definitions API (Glance v2 metadefs) end to end over HTTP, on
//! every reachable database backend: namespaces with embedded content,
//! protection, visibility and policy, objects, properties, tags (bulk, with
//! and without `X-Openstack-Append`), resource types and their associations.
//! The flows of Tempest's `test_images_metadefs_*` are among them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use stratus_testkit::{Cloud, Resp, clouds};

const NS: &str = "/v2/metadefs/namespaces";

async fn get(c: &Cloud, tok: &str, path: &str) -> Resp {
    c.image_call(Method::GET, path, tok, None).await
}

async fn post(c: &Cloud, tok: &str, path: &str, body: Value) -> Resp {
    c.image_call(Method::POST, path, tok, Some(body)).await
}

async fn put(c: &Cloud, tok: &str, path: &str, body: Value) -> Resp {
    c.image_call(Method::PUT, path, tok, Some(body)).await
}

async fn delete(c: &Cloud, tok: &str, path: &str) -> Resp {
    c.image_call(Method::DELETE, path, tok, None).await
}

/// A raw body (possibly not JSON) to the image API.
async fn raw(c: &Cloud, method: Method, tok: &str, path: &str, body: &str) -> Resp {
    c.image_bytes(method, path, tok, "application/json", body.as_bytes().to_vec()).await
}

/// `POST .../tags` with or without `X-Openstack-Append`.
async fn post_tags(c: &Cloud, tok: &str, ns: &str, names: &[&str], append: Option<&str>) -> Resp {
    let tags: Vec<Value> = names.iter().map(|n| json!({"name": n})).collect();
    let mut rb =
        c.http.post(format!("{}{NS}/{ns}/tags", c.image_url)).header("x-auth-token", tok).json(&json!({"tags": tags}));
    if let Some(a) = append {
        rb = rb.header("x-openstack-append", a);
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, headers, body, text }
}

/// Create a namespace; panics unless 201.
async fn create_ns(c: &Cloud, tok: &str, body: Value) -> Value {
    let r = post(c, tok, NS, body).await;
    assert_eq!(r.status, 201, "{}: namespace create: {}", c.backend, r.text);
    r.body
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v[key].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap().to_string()).collect()
}

fn namespace_names(v: &Value) -> Vec<String> {
    v["namespaces"].as_array().unwrap().iter().map(|x| x["namespace"].as_str().unwrap().to_string()).collect()
}

/// The request of Glance's api-ref "create namespace" sample, with an object and tags.
fn full_namespace(name: &str) -> Value {
    json!({
        "namespace": name,
        "display_name": "Hypervisor Selection",
        "description": "Choose capabilities that should be provided by the Compute Host.",
        "visibility": "public",
        "protected": true,
        "properties": {
            "hypervisor_type": {
                "title": "Hypervisor Type",
                "type": "string",
                "description": "The hypervisor type.",
                "enum": ["xen", "qemu", "kvm", "lxc", "uml", "vmware", "hyperv"],
            },
            "vm_mode": {"title": "VM Mode", "type": "string", "enum": ["hvm", "xen", "uml", "exe"]},
        },
        "objects": [{
            "name": "CPU Limits",
            "description": "You can configure the CPU limits with control parameters.",
            "required": ["cpu_period"],
            "properties": {
                "cpu_period": {"title": "Quota: CPU Period", "type": "integer", "minimum": 1000, "maximum": 1000000},
            },
        }],
        "resource_type_associations": [
            {"name": "OS::Glance::Image", "prefix": "hw_"},
            {"name": "OS::Cinder::Volume", "prefix": "hw_", "properties_target": "image"},
        ],
        "tags": [{"name": "tag-a"}, {"name": "tag-b"}],
    })
}

#[tokio::test]
async fn namespace_lifecycle_with_embedded_content() {
    for c in clouds().await {
        let b = c.backend;
        let admin = c.admin_token().await;
        let name = "OS::Compute::Hypervisor";
        let r = post(&c, &admin, NS, full_namespace(name)).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        let loc = r.header("location").unwrap();
        assert!(loc.ends_with("/v2/metadefs/namespaces/OS::Compute::Hypervisor"), "{b}: {loc}");
        let ns = r.body;
        assert_eq!(ns["namespace"], name);
        assert_eq!(ns["display_name"], "Hypervisor Selection");
        assert_eq!(ns["visibility"], "public");
        assert_eq!(ns["protected"], true);
        assert!(ns["owner"].as_str().is_some_and(|o| !o.is_empty()), "{b}: {ns}");
        assert_eq!(ns["self"], format!("{NS}/{name}"));
        assert_eq!(ns["schema"], "/v2/schemas/metadefs/namespace");
        assert!(ns["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(ns["properties"]["vm_mode"]["title"], "VM Mode");
        assert_eq!(names(&ns, "objects"), ["CPU Limits"]);

        // shown with all it holds
        let r = get(&c, &admin, &format!("{NS}/{name}")).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let shown = r.body;
        assert_eq!(shown["description"], "Choose capabilities that should be provided by the Compute Host.");
        assert_eq!(shown["properties"]["hypervisor_type"]["enum"][2], "kvm");
        assert_eq!(shown["properties"]["hypervisor_type"]["type"], "string");
        let obj = &shown["objects"][0];
        assert_eq!(obj["name"], "CPU Limits");
        assert_eq!(obj["required"], json!(["cpu_period"]));
        assert_eq!(obj["properties"]["cpu_period"]["minimum"], 1000);
        assert_eq!(obj["self"], format!("{NS}/{name}/objects/CPU Limits"));
        assert_eq!(obj["schema"], "/v2/schemas/metadefs/object");
        let mut tags = names(&shown, "tags");
        tags.sort();
        assert_eq!(tags, ["tag-a", "tag-b"]);
        let rts = shown["resource_type_associations"].as_array().unwrap();
        assert_eq!(rts.len(), 2);
        let cinder = rts.iter().find(|a| a["name"] == "OS::Cinder::Volume").unwrap();
        assert_eq!(cinder["prefix"], "hw_");
        assert_eq!(cinder["properties_target"], "image");

        // with a resource type: its prefix on every property name
        let r = get(&c, &admin, &format!("{NS}/{name}?resource_type=OS::Glance::Image")).await;
        assert_eq!(r.status, 200);
        assert!(r.body["properties"]["hw_vm_mode"].is_object(), "{b}: {}", r.text);
        assert!(r.body["properties"].get("vm_mode").is_none());
        assert!(r.body["objects"][0]["properties"]["hw_cpu_period"].is_object());
        assert_eq!(r.body["objects"][0]["required"], json!(["hw_cpu_period"]));

        // listed, with its resource type associations
        let r = get(&c, &admin, NS).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["first"], NS);
        assert_eq!(r.body["schema"], "/v2/schemas/metadefs/namespaces");
        assert_eq!(namespace_names(&r.body), [name]);
        assert_eq!(r.body["namespaces"][0]["resource_type_associations"].as_array().unwrap().len(), 2);
        assert!(r.body["namespaces"][0].get("objects").is_none());

        // the name is unique
        let r = post(&c, &admin, NS, json!({"namespace": name})).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);
        // protected: neither the namespace nor its content can be deleted
        assert_eq!(delete(&c, &admin, &format!("{NS}/{name}")).await.status, 403);
        assert_eq!(delete(&c, &admin, &format!("{NS}/{name}/objects/CPU Limits")).await.status, 403);
        assert_eq!(delete(&c, &admin, &format!("{NS}/{name}/properties/vm_mode")).await.status, 403);
        assert_eq!(delete(&c, &admin, &format!("{NS}/{name}/tags/tag-a")).await.status, 403);
        assert_eq!(delete(&c, &admin, &format!("{NS}/{name}/resource_types/OS::Glance::Image")).await.status, 403);
        for kind in ["objects", "properties", "tags"] {
            assert_eq!(delete(&c, &admin, &format!("{NS}/{name}/{kind}")).await.status, 403, "{b}: {kind}");
        }

        // update (Tempest's flow): what the body leaves out goes back to its default
        let r = put(
            &c,
            &admin,
            &format!("{NS}/{name}"),
            json!({"namespace": name, "description": "Tempest", "visibility": "private", "protected": false}),
        )
        .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["visibility"], "private");
        assert_eq!(r.body["protected"], false);
        assert_eq!(r.body["description"], "Tempest");
        assert!(r.body.get("display_name").is_none(), "{b}: {}", r.text);
        assert!(r.body.get("objects").is_none());

        // renamed: the content moves with it
        let renamed = "OS::Compute::Renamed";
        let r = put(&c, &admin, &format!("{NS}/{name}"), json!({"namespace": renamed})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["self"], format!("{NS}/{renamed}"));
        assert_eq!(get(&c, &admin, &format!("{NS}/{name}")).await.status, 404);
        let r = get(&c, &admin, &format!("{NS}/{renamed}")).await;
        assert_eq!(names(&r.body, "objects"), ["CPU Limits"]);
        assert_eq!(r.body["properties"].as_object().unwrap().len(), 2);

        // renaming onto another namespace is a conflict
        create_ns(&c, &admin, json!({"namespace": "other"})).await;
        let r = put(&c, &admin, &format!("{NS}/{renamed}"), json!({"namespace": "other"})).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);

        // deleted with everything in it
        assert_eq!(delete(&c, &admin, &format!("{NS}/{renamed}")).await.status, 204);
        assert_eq!(get(&c, &admin, &format!("{NS}/{renamed}")).await.status, 404);
        assert_eq!(delete(&c, &admin, &format!("{NS}/{renamed}")).await.status, 404);
        assert_eq!(get(&c, &admin, &format!("{NS}/{renamed}/objects")).await.status, 404);
        // the name is free again, and empty
        let r = post(&c, &admin, NS, json!({"namespace": renamed})).await;
        assert_eq!(r.status, 201);
        let r = get(&c, &admin, &format!("{NS}/{renamed}")).await;
        assert!(r.body.get("objects").is_none() && r.body.get("properties").is_none(), "{b}: {}", r.text);
        assert_eq!(r.body["visibility"], "private");
        assert_eq!(r.body["protected"], false);
    }
}

#[tokio::test]
async fn namespace_input_is_checked() {
    for c in clouds().await {
        let b = c.backend;
        let admin = c.admin_token().await;
        for body in [
            json!({}),
            json!({"namespace": 5}),
            json!({"namespace": ""}),
            json!({"namespace": "x".repeat(81)}),
            json!({"namespace": "a", "visibility": "shared"}),
            json!({"namespace": "a", "protected": "yes"}),
            json!({"namespace": "a", "bogus": 1}),
            json!({"namespace": "a", "description": "d".repeat(501)}),
            json!({"namespace": "a", "properties": {"p": {"type": "string"}}}),
            json!({"namespace": "a", "properties": {"p": {"title": "P", "type": "text"}}}),
            json!({"namespace": "a", "objects": [{"description": "no name"}]}),
            json!({"namespace": "a", "objects": [{"name": "o".repeat(81)}]}),
            json!({"namespace": "a", "tags": [{"name": ""}]}),
            json!({"namespace": "a", "resource_type_associations": [{"prefix": "hw_"}]}),
            json!([1, 2]),
        ] {
            let r = post(&c, &admin, NS, body.clone()).await;
            assert_eq!(r.status, 400, "{b}: {body}: {}", r.text);
        }
        let r = raw(&c, Method::POST, &admin, NS, "{not json").await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        for ro in ["self", "schema", "created_at", "updated_at"] {
            let r = post(&c, &admin, NS, json!({"namespace": "a", ro: "x"})).await;
            assert_eq!(r.status, 403, "{b}: {ro}: {}", r.text);
            assert!(r.text.contains("read-only"), "{b}: {}", r.text);
        }
        // duplicates inside one request: nothing is created
        let r = post(&c, &admin, NS, json!({"namespace": "dup", "tags": [{"name": "t"}, {"name": "t"}]})).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);
        assert_eq!(get(&c, &admin, &format!("{NS}/dup")).await.status, 404);
        let r = post(&c, &admin, NS, json!({"namespace": "dup", "objects": [{"name": "o"}, {"name": "o"}]})).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);
        assert_eq!(get(&c, &admin, &format!("{NS}/dup")).await.status, 404);

        create_ns(&c, &admin, json!({"namespace": "ok"})).await;
        let r = put(&c, &admin, &format!("{NS}/ok"), json!({"display_name": "no namespace"})).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = put(&c, &admin, &format!("{NS}/missing"), json!({"namespace": "missing"})).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        let r = put(&c, &admin, &format!("{NS}/ok"), json!({"namespace": "ok", "updated_at": "x"})).await;
        assert_eq!(r.status, 403, "{b}: {}", r.text);

        for q in ["limit=abc", "limit=-1", "sort_dir=up", "visibility=shared", "sort_key=bogus"] {
            let r = get(&c, &admin, &format!("{NS}?{q}")).await;
            assert_eq!(r.status, 400, "{b}: {q}: {}", r.text);
        }
        let r = get(&c, &admin, &format!("{NS}?marker=missing")).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
    }
}

#[tokio::test]
async fn namespace_visibility_and_policy() {
    for c in clouds().await {
        let b = c.backend;
        let admin = c.admin_token().await;
        let (pa, _, alice) = c.user_with_role(&admin, "member").await;
        let (_, _, carol) = c.user_with_role(&admin, "member").await;
        let (pr, _, reader) = c.user_with_role(&admin, "reader").await;
        create_ns(&c, &admin, json!({"namespace": "a-private", "owner": pa})).await;
        create_ns(&c, &admin, json!({"namespace": "r-private", "owner": pr, "tags": [{"name": "t"}]})).await;
        create_ns(&c, &admin, json!({"namespace": "admin-private"})).await;
        create_ns(
            &c,
            &admin,
            json!({"namespace": "public", "visibility": "public", "objects": [{"name": "o"}],
                   "properties": {"p": {"title": "P", "type": "string"}}, "tags": [{"name": "t"}]}),
        )
        .await;

        // admins see everything
        let mut all = namespace_names(&get(&c, &admin, NS).await.body);
        all.sort();
        assert_eq!(all, ["a-private", "admin-private", "public", "r-private"], "{b}");

        // a project sees its own and the public ones
        let mut seen = namespace_names(&get(&c, &alice, NS).await.body);
        seen.sort();
        assert_eq!(seen, ["a-private", "public"], "{b}");
        assert_eq!(namespace_names(&get(&c, &carol, NS).await.body), ["public"], "{b}");
        let mut seen = namespace_names(&get(&c, &reader, NS).await.body);
        seen.sort();
        assert_eq!(seen, ["public", "r-private"], "{b}");
        let r = get(&c, &alice, &format!("{NS}?visibility=public")).await;
        assert_eq!(namespace_names(&r.body), ["public"]);
        let r = get(&c, &admin, &format!("{NS}?visibility=private&sort_key=namespace&sort_dir=asc")).await;
        assert_eq!(namespace_names(&r.body), ["a-private", "admin-private", "r-private"], "{b}");

        // another project's private namespace, and all in it, is not there for it
        for path in ["", "/objects", "/properties", "/tags", "/resource_types", "/tags/t"] {
            let r = get(&c, &carol, &format!("{NS}/a-private{path}")).await;
            assert_eq!(r.status, 404, "{b}: {path}: {}", r.text);
            let r = get(&c, &alice, &format!("{NS}/r-private{path}")).await;
            assert_eq!(r.status, 404, "{b}: {path}: {}", r.text);
        }
        let r = post(&c, &carol, &format!("{NS}/a-private/objects"), json!({"name": "x"})).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        assert_eq!(delete(&c, &carol, &format!("{NS}/a-private")).await.status, 404);
        // ... but its own and public ones are, read-only
        assert_eq!(get(&c, &alice, &format!("{NS}/a-private")).await.status, 200);
        assert_eq!(get(&c, &reader, &format!("{NS}/r-private/tags/t")).await.status, 200);
        let r = get(&c, &carol, &format!("{NS}/public")).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(names(&r.body, "objects"), ["o"]);
        assert_eq!(get(&c, &carol, &format!("{NS}/public/objects/o")).await.status, 200);
        assert_eq!(get(&c, &carol, &format!("{NS}/public/properties/p")).await.status, 200);
        assert_eq!(names(&get(&c, &carol, &format!("{NS}/public/tags")).await.body, "tags"), ["t"]);
        assert_eq!(get(&c, &carol, "/v2/metadefs/resource_types").await.status, 200);

        // only admins write
        let r = post(&c, &alice, NS, json!({"namespace": "mine"})).await;
        assert_eq!(r.status, 403, "{b}: {}", r.text);
        let writes: Vec<(Method, String, Option<Value>)> = vec![
            (Method::PUT, format!("{NS}/public"), Some(json!({"namespace": "public", "visibility": "public"}))),
            (Method::PUT, format!("{NS}/a-private"), Some(json!({"namespace": "a-private"}))),
            (Method::DELETE, format!("{NS}/public"), None),
            (Method::DELETE, format!("{NS}/a-private"), None),
            (Method::POST, format!("{NS}/public/objects"), Some(json!({"name": "x"}))),
            (Method::PUT, format!("{NS}/public/objects/o"), Some(json!({"name": "x"}))),
            (Method::DELETE, format!("{NS}/public/objects/o"), None),
            (Method::DELETE, format!("{NS}/public/objects"), None),
            (
                Method::POST,
                format!("{NS}/public/properties"),
                Some(json!({"name": "q", "title": "Q", "type": "string"})),
            ),
            (Method::DELETE, format!("{NS}/public/properties/p"), None),
            (Method::POST, format!("{NS}/public/tags/new"), None),
            (Method::POST, format!("{NS}/public/tags"), Some(json!({"tags": [{"name": "x"}]}))),
            (Method::PUT, format!("{NS}/public/tags/t"), Some(json!({"name": "u"}))),
            (Method::DELETE, format!("{NS}/public/tags/t"), None),
            (Method::DELETE, format!("{NS}/public/tags"), None),
            (Method::POST, format!("{NS}/public/resource_types"), Some(json!({"name": "OS::Nova::Flavor"}))),
        ];
        for (m, path, body) in writes {
            let r = c.image_call(m.clone(), &path, &alice, body).await;
            assert_eq!(r.status, 403, "{b}: {m} {path}: {}", r.text);
        }
        // nothing changed
        let r = get(&c, &admin, &format!("{NS}/public")).await;
        assert_eq!(names(&r.body, "objects"), ["o"]);
        assert_eq!(names(&r.body, "tags"), ["t"]);
        assert!(r.body.get("resource_type_associations").is_none());
    }
}

#[tokio::test]
async fn namespace_paging_and_resource_type_filter() {
    for c in clouds().await {
        let b = c.backend;
        let admin = c.admin_token().await;
        for (n, rt) in [("ns-b", "OS::Nova::Flavor"), ("ns-a", "OS::Glance::Image"), ("ns-c", "OS::Nova::Flavor")] {
            create_ns(&c, &admin, json!({"namespace": n, "resource_type_associations": [{"name": rt}]})).await;
        }
        // default order: newest first
        assert_eq!(namespace_names(&get(&c, &admin, NS).await.body), ["ns-c", "ns-a", "ns-b"], "{b}");

        let r = get(&c, &admin, &format!("{NS}?limit=2&sort_key=namespace&sort_dir=asc")).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(namespace_names(&r.body), ["ns-a", "ns-b"]);
        assert_eq!(r.body["first"], format!("{NS}?limit=2&sort_key=namespace&sort_dir=asc"));
        let next = r.body["next"].as_str().unwrap().to_string();
        assert_eq!(next, format!("{NS}?limit=2&sort_key=namespace&sort_dir=asc&marker=ns-b"));
        let r = get(&c, &admin, &next).await;
        assert_eq!(namespace_names(&r.body), ["ns-c"], "{b}: {}", r.text);
        assert!(r.body.get("next").is_none());

        let r = get(&c, &admin, &format!("{NS}?limit=1&sort_key=namespace&sort_dir=desc&marker=ns-c")).await;
        assert_eq!(namespace_names(&r.body), ["ns-b"], "{b}");

        let r = get(&c, &admin, &format!("{NS}?resource_types=OS::Nova::Flavor&sort_key=namespace&sort_dir=asc")).await;
        assert_eq!(namespace_names(&r.body), ["ns-b", "ns-c"], "{b}: {}", r.text);
        let r = get(&c, &admin, &format!("{NS}?resource_types=OS::Glance::Image,OS::Nova::Flavor")).await;
        assert_eq!(namespace_names(&r.body).len(), 3);
        let r = get(&c, &admin, &format!("{NS}?resource_types=OS::Nova::Server")).await;
        assert!(namespace_names(&r.body).is_empty());
    }
}

#[tokio::test]
async fn objects_crud() {
    for c in clouds().await {
        let b = c.backend;
        let admin = c.admin_token().await;
        create_ns(&c, &admin, json!({"namespace": "objs", "visibility": "public"})).await;
        let base = format!("{NS}/objs/objects");

        let r = post(
            &c,
            &admin,
            &base,
            json!({"name": "Disk QoS", "description": "disk limits", "required": ["quota:read"],
                   "properties": {"quota:read": {"title": "Read", "type": "integer", "minimum": 0},
                                  "quota:mode": {"title": "Mode", "type": "string", "enum": ["a", "b"]}}}),
        )
        .await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(r.body["name"], "Disk QoS");
        assert_eq!(r.body["description"], "disk limits");
        assert_eq!(r.body["required"], json!(["quota:read"]));
        assert_eq!(r.body["properties"]["quota:mode"]["enum"], json!(["a", "b"]));
        assert_eq!(r.body["self"], format!("{base}/Disk QoS"));
        assert_eq!(r.body["schema"], "/v2/schemas/metadefs/object");
        assert!(r.body["created_at"].is_string() && r.body["updated_at"].is_string());

        // the Tempest flow: create, list, show, update the name, delete
        let r = post(&c, &admin, &base, json!({"name": "plain"})).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(r.body["required"], json!([]));
        assert_eq!(r.body["properties"], json!({}));
        assert!(r.body.get("description").is_none());
        let r = get(&c, &admin, &base).await;
        assert_eq!(r.status, 200);
        assert_eq!(names(&r.body, "objects"), ["Disk QoS", "plain"]);
        assert_eq!(r.body["schema"], "v2/schemas/metadefs/objects");
        let r = get(&c, &admin, &format!("{base}/plain")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["name"], "plain");
        let r = put(&c, &admin, &format!("{base}/plain"), json!({"name": "renamed", "description": "now"})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["name"], "renamed");
        assert_eq!(r.body["description"], "now");
        assert_eq!(get(&c, &admin, &format!("{base}/plain")).await.status, 404);
        assert_eq!(get(&c, &admin, &format!("{base}/renamed")).await.body["description"], "now");
        // an update replaces the whole object
        let r = put(&c, &admin, &format!("{base}/Disk QoS"), json!({"name": "Disk QoS"})).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["properties"], json!({}));
        assert_eq!(r.body["required"], json!([]));

        // names are unique within the namespace
        assert_eq!(post(&c, &admin, &base, json!({"name": "renamed"})).await.status, 409);
        let r = put(&c, &admin, &format!("{base}/renamed"), json!({"name": "Disk QoS"})).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);
        // ... but not across namespaces
        create_ns(&c, &admin, json!({"namespace": "objs2"})).await;
        assert_eq!(post(&c, &admin, &format!("{NS}/objs2/objects"), json!({"name": "renamed"})).await.status, 201);

        // bad input
        for body in [
            json!({}),
            json!({"name": ""}),
            json!({"name": "x".repeat(81)}),
            json!({"name": "x", "required": "a"}),
            json!({"name": "x", "bogus": true}),
            json!({"name": "x", "properties": {"p": {"title": "P"}}}),
            json!({"name": "x", "properties": {"p": {"title": "P", "type": "string", "unknown": 1}}}),
        ] {
            let r = post(&c, &admin, &base, body.clone()).await;
            assert_eq!(r.status, 400, "{b}: {body}: {}", r.text);
        }
        for ro in ["self", "schema", "created_at", "updated_at"] {
            assert_eq!(post(&c, &admin, &base, json!({"name": "x", ro: "y"})).await.status, 403, "{b}: {ro}");
        }
        assert_eq!(post(&c, &admin, &format!("{NS}/nope/objects"), json!({"name": "x"})).await.status, 404);
        assert_eq!(put(&c, &admin, &format!("{base}/nope"), json!({"name": "x"})).await.status, 404);
        assert_eq!(get(&c, &admin, &format!("{base}?limit=0")).await.status, 400);
        assert_eq!(get(&c, &admin, &format!("{base}?sort_dir=sideways")).await.status, 400);

        assert_eq!(delete(&c, &admin, &format!("{base}/renamed")).await.status, 204);
        assert_eq!(delete(&c, &admin, &format!("{base}/renamed")).await.status, 404);
        assert_eq!(names(&get(&c, &admin, &base).await.body, "objects"), ["Disk QoS"]);
        // delete all of them
        post(&c, &admin, &base, json!({"name": "third"})).await;
        assert_eq!(delete(&c, &admin, &base).await.status, 204);
        assert!(names(&get(&c, &admin, &base).await.body, "objects").is_empty());
        assert_eq!(names(&get(&c, &admin, &format!("{NS}/objs2/objects")).await.body, "objects"), ["renamed"]);
    }
}

#[tokio::test]
async fn properties_crud() {
    for c in clouds().await {
        let b = c.backend;
        let admin = c.admin_token().await;
        create_ns(
            &c,
            &admin,
            json!({"namespace": "props", "resource_type_associations": [{"name": "OS::Nova::Flavor", "prefix": "hw:"}]}),
        )
        .await;
        let base = format!("{NS}/props/properties");
        // the Tempest flow: a property named like a resource type
        let rt = "OS::Glance::Image";
        let enumv = json!(["xen", "qemu", "kvm", "lxc", "uml", "vmware", "hyperv"]);
        let r =
            post(&c, &admin, &base, json!({"name": rt, "title": "Hypervisor", "type": "string", "enum": enumv})).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(r.body["title"], "Hypervisor");
        assert_eq!(r.body["name"], rt);
        assert_eq!(r.body["enum"], enumv);
        let r = get(&c, &admin, &format!("{base}/{rt}")).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["name"], rt);
        assert_eq!(r.body["type"], "string");
        let r = put(
            &c,
            &admin,
            &format!("{base}/{rt}"),
            json!({"name": rt, "title": "Updated", "type": "string", "enum": enumv}),
        )
        .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["title"], "Updated");

        let r = post(
            &c,
            &admin,
            &base,
            json!({"name": "cpu_cores", "title": "Cores", "type": "integer", "minimum": 1, "maximum": 64,
                   "default": 2, "readonly": false, "description": "how many"}),
        )
        .await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        let r = post(
            &c,
            &admin,
            &base,
            json!({"name": "features", "title": "Features", "type": "array",
                   "items": {"type": "string", "enum": ["a", "b"]}, "uniqueItems": true, "minItems": 1}),
        )
        .await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(r.body["items"], json!({"type": "string", "enum": ["a", "b"]}));

        // the collection is keyed by name
        let r = get(&c, &admin, &base).await;
        assert_eq!(r.status, 200);
        let props = r.body["properties"].as_object().unwrap();
        let mut keys: Vec<&String> = props.keys().collect();
        keys.sort();
        assert_eq!(keys, ["OS::Glance::Image", "cpu_cores", "features"]);
        assert_eq!(props["cpu_cores"]["maximum"], 64);
        assert_eq!(props["cpu_cores"]["default"], 2);

        // shown through a resource type: the prefixed name
        let r = get(&c, &admin, &format!("{base}/hw:cpu_cores?resource_type=OS::Nova::Flavor")).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["name"], "cpu_cores");
        let r = get(&c, &admin, &format!("{base}/cpu_cores?resource_type=OS::Nova::Flavor")).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);
        let r = get(&c, &admin, &format!("{base}/hw:cpu_cores?resource_type=OS::Cinder::Volume")).await;
        assert_eq!(r.status, 404, "{b}: {}", r.text);

        // renamed; names are unique
        let r =
            put(&c, &admin, &format!("{base}/cpu_cores"), json!({"name": "cores", "title": "C", "type": "integer"}))
                .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["name"], "cores");
        assert!(r.body.get("maximum").is_none(), "{b}: an update replaces the definition: {}", r.text);
        assert_eq!(get(&c, &admin, &format!("{base}/cpu_cores")).await.status, 404);
        let r = post(&c, &admin, &base, json!({"name": "cores", "title": "C", "type": "integer"})).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);
        let r = put(&c, &admin, &format!("{base}/cores"), json!({"name": "features", "title": "C", "type": "integer"}))
            .await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);

        // bad input
        for body in [
            json!({"title": "T", "type": "string"}),
            json!({"name": "p", "type": "string"}),
            json!({"name": "p", "title": "T"}),
            json!({"name": "p", "title": "T", "type": "text"}),
            json!({"name": "p", "title": "T", "type": "string", "bogus": 1}),
            json!({"name": "p", "title": "T", "type": "string", "minLength": -1}),
            json!({"name": "p".repeat(81), "title": "T", "type": "string"}),
            json!({"name": "p", "title": "T", "type": "string", "enum": "a"}),
        ] {
            let r = post(&c, &admin, &base, body.clone()).await;
            assert_eq!(r.status, 400, "{b}: {body}: {}", r.text);
        }
        let r = post(&c, &admin, &base, json!({"name": "p", "title": "T", "type": "string", "created_at": "x"})).await;
        assert_eq!(r.status, 403, "{b}: {}", r.text);

        // delete one, then all
        assert_eq!(delete(&c, &admin, &format!("{base}/{rt}")).await.status, 204);
        assert_eq!(delete(&c, &admin, &format!("{base}/{rt}")).await.status, 404);
        let r = get(&c, &admin, &base).await;
        assert!(r.body["properties"].get(rt).is_none());
        assert_eq!(delete(&c, &admin, &base).await.status, 204);
        assert_eq!(get(&c, &admin, &base).await.body, json!({"properties": {}}));
    }
}

#[tokio::test]
async fn tags_crud_and_bulk() {
    for c in clouds().await {
        let b = c.backend;
        let admin = c.admin_token().await;
        create_ns(&c, &admin, json!({"namespace": "tagged"})).await;
        let base = format!("{NS}/tagged/tags");
        let sorted = |v: &Value| {
            let mut n = names(v, "tags");
            n.sort();
            n
        };

        // the Tempest flow: three at once, listed, all deleted
        let r = post_tags(&c, &admin, "tagged", &["sample-tag1", "sample-tag2", "sample-tag3"], None).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(names(&r.body, "tags"), ["sample-tag1", "sample-tag2", "sample-tag3"]);
        let r = get(&c, &admin, &base).await;
        assert_eq!(r.status, 200);
        assert_eq!(sorted(&r.body), ["sample-tag1", "sample-tag2", "sample-tag3"]);
        assert!(r.body["tags"][0].get("created_at").is_none(), "{b}: the list shows names only");

        // one tag by name, no body
        let r = c.image_call(Method::POST, &format!("{base}/single"), &admin, None).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(r.body["name"], "single");
        assert!(r.body["created_at"].is_string() && r.body["updated_at"].is_string());
        let r = c.image_call(Method::POST, &format!("{base}/single"), &admin, None).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);
        let r = c.image_call(Method::POST, &format!("{base}/{}", "t".repeat(81)), &admin, None).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = get(&c, &admin, &format!("{base}/single")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["name"], "single");

        // appended
        let r = post_tags(&c, &admin, "tagged", &["extra"], Some("true")).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(names(&r.body, "tags"), ["extra"]);
        assert_eq!(
            sorted(&get(&c, &admin, &base).await.body),
            ["extra", "sample-tag1", "sample-tag2", "sample-tag3", "single"]
        );
        // appending one that exists: a conflict, and nothing changes
        let r = post_tags(&c, &admin, "tagged", &["new1", "extra"], Some("True")).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);
        assert_eq!(sorted(&get(&c, &admin, &base).await.body).len(), 5);
        // duplicates within a replacement: a conflict, and nothing changes
        let r = post_tags(&c, &admin, "tagged", &["x", "x"], None).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);
        assert_eq!(sorted(&get(&c, &admin, &base).await.body).len(), 5);
        // without the header (or with a false one) the request's tags replace the others
        let r = post_tags(&c, &admin, "tagged", &["r1", "r2"], Some("false")).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(sorted(&get(&c, &admin, &base).await.body), ["r1", "r2"]);
        let r = post_tags(&c, &admin, "tagged", &["r2", "r3"], None).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(sorted(&get(&c, &admin, &base).await.body), ["r2", "r3"]);

        // bad bodies
        for body in [
            json!({"tags": [{"title": "x"}]}),
            json!({"tags": [{"name": "x", "other": 1}]}),
            json!({"tags": "x"}),
            json!({"tags": [], "extra": 1}),
            json!({"tags": [{"name": ""}]}),
        ] {
            let r = post(&c, &admin, &base, body.clone()).await;
            assert_eq!(r.status, 400, "{b}: {body}: {}", r.text);
        }
        let r = post(&c, &admin, &base, json!({"tags": [], "created_at": "x"})).await;
        assert_eq!(r.status, 403, "{b}: {}", r.text);

        // the Tempest flow: create, show, rename, delete
        assert_eq!(c.image_call(Method::POST, &format!("{base}/tag_name"), &admin, None).await.status, 201);
        let r = put(&c, &admin, &format!("{base}/tag_name"), json!({"name": "update-tag"})).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.body["name"], "update-tag");
        assert_eq!(get(&c, &admin, &format!("{base}/tag_name")).await.status, 404);
        let r = put(&c, &admin, &format!("{base}/update-tag"), json!({"name": "r2"})).await;
        assert_eq!(r.status, 409, "{b}: {}", r.text);
        assert_eq!(put(&c, &admin, &format!("{base}/update-tag"), json!({})).await.status, 400);
        assert_eq!(put(&c, &admin, &format!("{base}/nope"), json!({"name": "z"})).await.status, 404);
        assert_eq!(delete(&c, &admin, &format!("{base}/update-tag")).await.status, 204);
        assert_eq!(delete(&c, &admin, &format!("{base}/update-tag")).await.status, 404);
        assert_eq!(sorted(&get(&c, &admin, &base).await.body), ["r2", "r3"]);

        // paging
        let r = post_tags(&c, &admin, "tagged", &["p1", "p2", "p3", "p4"], None).await;
        assert_eq!(r.status, 201);
        let r = get(&c, &admin, &format!("{base}?sort_key=name&sort_dir=asc&limit=2")).await;
        assert_eq!(names(&r.body, "tags"), ["p1", "p2"], "{b}: {}", r.text);
        let r = get(&c, &admin, &format!("{base}?sort_key=name&sort_dir=asc&limit=2&marker=p2")).await;
        assert_eq!(names(&r.body, "tags"), ["p3", "p4"], "{b}: {}", r.text);
        let r = get(&c, &admin, &format!("{base}?sort_key=name&sort_dir=desc")).await;
        assert_eq!(names(&r.body, "tags"), ["p4", "p3", "p2", "p1"]);
        assert_eq!(get(&c, &admin, &format!("{base}?marker=nope")).await.status, 404);
        assert_eq!(get(&c, &admin, &format!("{base}?limit=-1")).await.status, 400);

        // the namespace shows its tags; delete them all
        assert_eq!(get(&c, &admin, &format!("{NS}/tagged")).await.body["tags"].as_array().unwrap().len(), 4);
        assert_eq!(delete(&c, &admin, &base).await.status, 204);
        assert_eq!(get(&c, &admin, &base).await.body, json!({"tags": []}));
        assert!(get(&c, &admin, &format!("{NS}/tagged")).await.body.get("tags").is_none());
        assert_eq!(delete(&c, &admin, &format!("{NS}/nope/tags")).await.status, 404);
    }
}

#[tokio::test]
async fn resource_types_and_associations() {
    for c in clouds().await {
        let b = c.backend;
        let admin = c.admin_token().await;
        let r = get(&c, &admin, "/v2/metadefs/resource_types").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let known = names(&r.body, "resource_types");
        assert_eq!(known[0], "OS::Glance::Image", "{b}: {known:?}");
        for rt in ["OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Aggregate", "OS::Nova::Server"] {
            assert!(known.iter().any(|k| k == rt), "{b}: {rt} in {known:?}");
        }
        assert!(r.body["resource_types"][0]["created_at"].is_string());

        // the Tempest flow: associate the first one, list, dissociate
        create_ns(&c, &admin, json!({"namespace": "assoc", "visibility": "public"})).await;
        let base = format!("{NS}/assoc/resource_types");
        let r = post(&c, &admin, &base, json!({"name": known[0]})).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(r.body["name"], known[0]);
        assert!(r.body.get("prefix").is_none());
        let r = post(
            &c,
            &admin,
            &base,
            json!({"name": "OS::Cinder::Volume", "prefix": "hw_", "properties_target": "image"}),
        )
        .await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(r.body["prefix"], "hw_");
        assert_eq!(r.body["properties_target"], "image");
        assert!(r.body["created_at"].is_string() && r.body["updated_at"].is_string());
        let r = get(&c, &admin, &base).await;
        assert_eq!(r.status, 200);
        assert_eq!(names(&r.body, "resource_type_associations"), [known[0].as_str(), "OS::Cinder::Volume"]);

        // associated twice: a conflict
        assert_eq!(post(&c, &admin, &base, json!({"name": "OS::Cinder::Volume"})).await.status, 409);
        // a new resource type comes into being when first associated
        let r = post(&c, &admin, &base, json!({"name": "OS::Heat::Stack"})).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        let listed = names(&get(&c, &admin, "/v2/metadefs/resource_types").await.body, "resource_types");
        assert_eq!(listed.len(), known.len() + 1);
        assert_eq!(listed.last().unwrap(), "OS::Heat::Stack");
        let r = get(&c, &admin, &format!("{NS}?resource_types=OS::Heat::Stack")).await;
        assert_eq!(namespace_names(&r.body), ["assoc"]);

        // bad input
        for body in [json!({}), json!({"name": ""}), json!({"name": "x", "bogus": 1}), json!({"name": "x".repeat(81)})]
        {
            let r = post(&c, &admin, &base, body.clone()).await;
            assert_eq!(r.status, 400, "{b}: {body}: {}", r.text);
        }
        assert_eq!(post(&c, &admin, &base, json!({"name": "x", "updated_at": "y"})).await.status, 403);
        assert_eq!(post(&c, &admin, &format!("{NS}/nope/resource_types"), json!({"name": "x"})).await.status, 404);

        // readers of another project see the associations of a public namespace
        let (_, _, member) = c.user_with_role(&admin, "member").await;
        let r = get(&c, &member, &base).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(names(&r.body, "resource_type_associations").len(), 3);
        assert_eq!(delete(&c, &member, &format!("{base}/OS::Heat::Stack")).await.status, 403);

        // dissociate
        assert_eq!(delete(&c, &admin, &format!("{base}/{}", known[0])).await.status, 204);
        assert_eq!(delete(&c, &admin, &format!("{base}/{}", known[0])).await.status, 404);
        assert_eq!(delete(&c, &admin, &format!("{base}/OS::Never::Seen")).await.status, 404);
        let r = get(&c, &admin, &base).await;
        assert_eq!(names(&r.body, "resource_type_associations"), ["OS::Cinder::Volume", "OS::Heat::Stack"]);
        // the resource type itself stays
        let listed = names(&get(&c, &admin, "/v2/metadefs/resource_types").await.body, "resource_types");
        assert!(listed.contains(&known[0]));

        // deleting the namespace removes its associations, not the types
        assert_eq!(delete(&c, &admin, &format!("{NS}/assoc")).await.status, 204);
        let r = get(&c, &admin, &format!("{NS}?resource_types=OS::Heat::Stack")).await;
        assert!(namespace_names(&r.body).is_empty());
        assert_eq!(
            names(&get(&c, &admin, "/v2/metadefs/resource_types").await.body, "resource_types").len(),
            known.len() + 1
        );
    }
}

#[tokio::test]
async fn names_are_case_sensitive_everywhere() {
    for c in clouds().await {
        let b = c.backend;
        let admin = c.admin_token().await;
        create_ns(&c, &admin, json!({"namespace": "Case"})).await;
        let r = post(&c, &admin, NS, json!({"namespace": "case"})).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(get(&c, &admin, &format!("{NS}/CASE")).await.status, 404, "{b}");
        let r = post_tags(&c, &admin, "Case", &["Tag", "tag"], None).await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        assert_eq!(get(&c, &admin, &format!("{NS}/Case/tags/TAG")).await.status, 404, "{b}");
        assert_eq!(post(&c, &admin, &format!("{NS}/Case/objects"), json!({"name": "O"})).await.status, 201);
        assert_eq!(post(&c, &admin, &format!("{NS}/Case/objects"), json!({"name": "o"})).await.status, 201, "{b}");
    }
}
