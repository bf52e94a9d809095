//! Volume types, extra specs, type access, encryption, QoS specs and default
//! types through the block storage API of a whole cloud (`mod cloud`) on
//! every reachable database backend; any answer of 500 or more fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cloud;

use cloud::{ADMIN, Cloud, MEMBER, OTHER, PROJECT_A, PROJECT_B, Resp, strict_clouds};
use reqwest::Method;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use stratus_volume::entity::volume_type;

/// A type made by the admin; its id.
async fn make_type(api: &Cloud, body: Value) -> String {
    let r = api.post("/v3/types", ADMIN, json!({"volume_type": body})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["volume_type"]["id"].as_str().unwrap().to_string()
}

/// A volume row of the given type (enough for "in use").
async fn volume_of_type(api: &Cloud, type_id: &str) {
    stratus_volume::entity::volume::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        project_id: Set(PROJECT_A.into()),
        user_id: Set("member-user".into()),
        name: Set(Some("v".into())),
        description: Set(None),
        size: Set(1),
        status: Set("available".into()),
        attach_status: Set("detached".into()),
        availability_zone: Set("nova".into()),
        volume_type_id: Set(Some(type_id.into())),
        bootable: Set(false),
        multiattach: Set(false),
        encrypted: Set(false),
        source_volid: Set(None),
        snapshot_id: Set(None),
        image_id: Set(None),
        backup_id: Set(None),
        host: Set(None),
        provider_location: Set(None),
        metadata: Set("{}".into()),
        admin_metadata: Set("{}".into()),
        image_metadata: Set("{}".into()),
        migration_status: Set(None),
        replication_status: Set(None),
        group_id: Set(None),
        previous_status: Set(None),
        created_at: Set("2026-01-01T00:00:00.000000".into()),
        updated_at: Set(None),
        launched_at: Set(None),
    }
    .insert(&api.db.write)
    .await
    .unwrap();
}

fn fault_message(r: &Resp) -> String {
    r.body
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|f| f["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn type_crud_and_views() {
    for api in strict_clouds().await {
        let r = api
            .post(
                "/v3/types",
                ADMIN,
                json!({"volume_type": {"name": "gold", "description": "fast", "extra_specs": {"vendor_name": "x", "multiattach": "<is> True"}}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let t = &r.body["volume_type"];
        let id = t["id"].as_str().unwrap().to_string();
        assert_eq!(t["name"], "gold");
        assert_eq!(t["description"], "fast");
        assert_eq!(t["is_public"], true);
        assert_eq!(t["os-volume-type-access:is_public"], true);
        assert_eq!(t["extra_specs"]["vendor_name"], "x");
        // the create view has no qos_specs_id (Tempest's schema forbids it)
        assert!(t.get("qos_specs_id").is_none());

        // duplicate name: 409
        let r = api.post("/v3/types", ADMIN, json!({"volume_type": {"name": "gold"}})).await;
        assert_eq!(r.status, 409);
        // empty name, unknown attribute: 400
        assert_eq!(api.post("/v3/types", ADMIN, json!({"volume_type": {"name": ""}})).await.status, 400);
        assert_eq!(api.post("/v3/types", ADMIN, json!({"volume_type": {"name": "a", "x": 1}})).await.status, 400);
        // only admins make types
        assert_eq!(api.post("/v3/types", MEMBER, json!({"volume_type": {"name": "m"}})).await.status, 403);

        // admin show: every extra spec, qos_specs_id
        let r = api.get(&format!("/v3/types/{id}"), ADMIN).await;
        assert_eq!(r.status, 200);
        let t = &r.body["volume_type"];
        assert_eq!(t["extra_specs"], json!({"vendor_name": "x", "multiattach": "<is> True"}));
        assert!(t.as_object().unwrap().contains_key("qos_specs_id"));
        assert_eq!(t["os-volume-type-access:is_public"], true);
        // member show (also through the project-scoped URL): only user-visible specs, no qos_specs_id
        let r = api.get(&format!("/v3/{PROJECT_A}/types/{id}"), MEMBER).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let t = &r.body["volume_type"];
        assert_eq!(t["extra_specs"], json!({"multiattach": "<is> True"}));
        assert!(t.get("qos_specs_id").is_none());

        // list
        let r = api.get("/v3/types", MEMBER).await;
        assert_eq!(r.status, 200);
        let names: Vec<&str> =
            r.body["volume_types"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
        assert!(names.contains(&"gold"));

        // update: name, description, is_public; the update view has no access key
        let r = api
            .put(
                &format!("/v3/types/{id}"),
                ADMIN,
                json!({"volume_type": {"name": "platinum", "description": "d2", "is_public": false}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let t = &r.body["volume_type"];
        assert_eq!(t["name"], "platinum");
        assert_eq!(t["is_public"], false);
        assert!(t.get("os-volume-type-access:is_public").is_none());
        assert_eq!(api.put(&format!("/v3/types/{id}"), ADMIN, json!({"volume_type": {}})).await.status, 400);
        let other = make_type(&api, json!({"name": "silver"})).await;
        assert_eq!(
            api.put(&format!("/v3/types/{other}"), ADMIN, json!({"volume_type": {"name": "platinum"}})).await.status,
            409
        );

        // delete, then 404
        let r = api.delete(&format!("/v3/types/{id}"), ADMIN).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(api.get(&format!("/v3/types/{id}"), ADMIN).await.status, 404);
        assert_eq!(api.delete(&format!("/v3/types/{id}"), ADMIN).await.status, 404);
        let missing = uuid::Uuid::new_v4();
        let r = api.get(&format!("/v3/types/{missing}"), ADMIN).await;
        assert_eq!(r.status, 404);
        assert_eq!(fault_message(&r), format!("Volume type {missing} could not be found."));
        assert!(r.body.get("itemNotFound").is_some(), "{}", r.body);
    }
}

#[tokio::test]
async fn private_types_and_access() {
    for api in strict_clouds().await {
        let id = make_type(&api, json!({"name": "secret", "os-volume-type-access:is_public": false})).await;
        // invisible to projects without access, visible to the admin
        assert_eq!(api.get(&format!("/v3/types/{id}"), MEMBER).await.status, 404);
        assert_eq!(api.get(&format!("/v3/types/{id}"), OTHER).await.status, 404);
        assert_eq!(api.get(&format!("/v3/types/{id}/extra_specs"), OTHER).await.status, 404);
        assert_eq!(api.get(&format!("/v3/types/{id}"), ADMIN).await.status, 200);
        let listed = |r: &Resp| r.body["volume_types"].as_array().unwrap().iter().any(|t| t["id"] == json!(id));
        assert!(!listed(&api.get("/v3/types", OTHER).await));
        // an admin lists public ones by default; all with is_public=None; private ones with false
        assert!(!listed(&api.get("/v3/types", ADMIN).await));
        assert!(listed(&api.get("/v3/types?is_public=None", ADMIN).await));
        assert!(listed(&api.get("/v3/types?is_public=false", ADMIN).await));

        // share with project B
        let add = json!({"addProjectAccess": {"project": PROJECT_B}});
        assert_eq!(api.post(&format!("/v3/types/{id}/action"), MEMBER, add.clone()).await.status, 403);
        assert_eq!(api.post(&format!("/v3/types/{id}/action"), ADMIN, add.clone()).await.status, 202);
        assert_eq!(api.post(&format!("/v3/types/{id}/action"), ADMIN, add).await.status, 409);
        assert_eq!(api.get(&format!("/v3/types/{id}"), OTHER).await.status, 200);
        assert!(listed(&api.get("/v3/types", OTHER).await));
        assert_eq!(api.get(&format!("/v3/types/{id}"), MEMBER).await.status, 404);
        let r = api.get(&format!("/v3/types/{id}/os-volume-type-access"), ADMIN).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["volume_type_access"], json!([{"volume_type_id": id, "project_id": PROJECT_B}]));

        // unshare
        let rm = json!({"removeProjectAccess": {"project": PROJECT_B}});
        assert_eq!(api.post(&format!("/v3/types/{id}/action"), ADMIN, rm.clone()).await.status, 202);
        assert_eq!(api.post(&format!("/v3/types/{id}/action"), ADMIN, rm).await.status, 404);
        assert_eq!(api.get(&format!("/v3/types/{id}"), OTHER).await.status, 404);

        // public types have no access list and take no access changes
        let public = make_type(&api, json!({"name": "open"})).await;
        assert_eq!(api.get(&format!("/v3/types/{public}/os-volume-type-access"), ADMIN).await.status, 404);
        let r = api
            .post(&format!("/v3/types/{public}/action"), ADMIN, json!({"addProjectAccess": {"project": PROJECT_B}}))
            .await;
        assert_eq!(r.status, 400);
        assert_eq!(api.post(&format!("/v3/types/{public}/action"), ADMIN, json!({"bogus": {}})).await.status, 400);
    }
}

#[tokio::test]
async fn extra_specs_crud() {
    for api in strict_clouds().await {
        let id = make_type(&api, json!({"name": "specs", "extra_specs": {"spec1": "val1"}})).await;
        let base = format!("/v3/types/{id}/extra_specs");
        let r = api.post(&base, ADMIN, json!({"extra_specs": {"spec2": "val2", "spec3": "val3"}})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, json!({"extra_specs": {"spec2": "val2", "spec3": "val3"}}));
        let r = api.get(&base, ADMIN).await;
        assert_eq!(r.body["extra_specs"], json!({"spec1": "val1", "spec2": "val2", "spec3": "val3"}));
        // members see no sensitive specs
        assert_eq!(api.get(&base, MEMBER).await.body["extra_specs"], json!({}));
        assert_eq!(api.get(&format!("{base}/spec1"), MEMBER).await.status, 404);

        let r = api.put(&format!("{base}/spec2"), ADMIN, json!({"spec2": "new"})).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, json!({"spec2": "new"}));
        assert_eq!(api.get(&format!("{base}/spec2"), ADMIN).await.body, json!({"spec2": "new"}));
        // URI/body mismatch, two keys, null body: 400
        assert_eq!(api.put(&format!("{base}/spec2"), ADMIN, json!({"spec9": "x"})).await.status, 400);
        assert_eq!(api.put(&format!("{base}/spec2"), ADMIN, json!({"spec2": "x", "spec3": "y"})).await.status, 400);
        assert_eq!(api.put(&format!("{base}/spec2"), ADMIN, Value::Null).await.status, 400);
        assert_eq!(api.post(&base, ADMIN, json!({"extra_specs": ["invalid"]})).await.status, 400);
        assert_eq!(api.post(&base, MEMBER, json!({"extra_specs": {"a": "b"}})).await.status, 403);

        assert_eq!(api.delete(&format!("{base}/spec3"), ADMIN).await.status, 202);
        let r = api.get(&format!("{base}/spec3"), ADMIN).await;
        assert_eq!(r.status, 404);
        assert_eq!(fault_message(&r), format!("Volume Type {id} has no extra specs with key spec3."));
        assert_eq!(api.delete(&format!("{base}/spec3"), ADMIN).await.status, 404);

        let missing = uuid::Uuid::new_v4();
        assert_eq!(
            api.post(&format!("/v3/types/{missing}/extra_specs"), ADMIN, json!({"extra_specs": {"a": "b"}}))
                .await
                .status,
            404
        );
        assert_eq!(api.put(&format!("/v3/types/{missing}/extra_specs/a"), ADMIN, json!({"a": "b"})).await.status, 404);
        assert_eq!(api.get(&format!("/v3/types/{missing}/extra_specs"), ADMIN).await.status, 404);

        // a type in use takes no extra spec changes
        volume_of_type(&api, &id).await;
        let r = api.post(&base, ADMIN, json!({"extra_specs": {"a": "b"}})).await;
        assert_eq!(r.status, 400);
        assert_eq!(fault_message(&r), "Volume Type is currently in use.");
    }
}

#[tokio::test]
async fn type_in_use_and_default_type_cannot_be_deleted() {
    for api in strict_clouds().await {
        let id = make_type(&api, json!({"name": "used"})).await;
        volume_of_type(&api, &id).await;
        let r = api.delete(&format!("/v3/types/{id}"), ADMIN).await;
        assert_eq!(r.status, 400);
        assert_eq!(fault_message(&r), "Target volume type is still in use.");
        assert!(r.body.get("badRequest").is_some(), "{}", r.body);

        // the configured default is made on demand (the cloud made it when it
        // started: take it away first) and cannot go
        volume_type::Entity::delete_many()
            .filter(volume_type::Column::Name.eq("__DEFAULT__"))
            .exec(&api.db.write)
            .await
            .unwrap();
        assert!(stratus_volume::store::types::get(&api.db.read, "__DEFAULT__").await.unwrap().is_none());
        let r = api.get("/v3/types/default", MEMBER).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["volume_type"]["name"], "__DEFAULT__");
        assert_eq!(r.body["volume_type"]["description"], "Default Volume Type");
        let default_id = r.body["volume_type"]["id"].as_str().unwrap().to_string();
        assert_eq!(api.delete(&format!("/v3/types/{default_id}"), ADMIN).await.status, 400);
        assert_eq!(api.delete(&format!("/v3/types/{id}"), MEMBER).await.status, 403);

        // the store helpers others use
        let t = stratus_volume::store::types::get(&api.db.read, "used").await.unwrap().unwrap();
        assert_eq!(t.id, id);
        assert!(stratus_volume::store::types::visible_to(&api.db.read, &t, PROJECT_B, false).await.unwrap());
    }
}

#[tokio::test]
async fn encryption_specs() {
    for api in strict_clouds().await {
        let id = make_type(&api, json!({"name": "luks"})).await;
        let base = format!("/v3/types/{id}/encryption");
        assert_eq!(api.get(&base, ADMIN).await.body, json!({}));
        let spec =
            json!({"provider": "luks", "key_size": 256, "cipher": "aes-xts-plain64", "control_location": "front-end"});
        let r = api.post(&base, ADMIN, json!({"encryption": spec})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let e = &r.body["encryption"];
        assert_eq!(e["volume_type_id"], json!(id));
        assert_eq!(e["key_size"], 256);
        assert_eq!(e["provider"], "luks");
        let encryption_id = e["encryption_id"].as_str().unwrap().to_string();
        // twice: 400; bad control location: 400; not admin: 403
        assert_eq!(api.post(&base, ADMIN, json!({"encryption": spec})).await.status, 400);
        let other = make_type(&api, json!({"name": "luks2"})).await;
        let bad = json!({"encryption": {"provider": "luks", "control_location": "middle"}});
        assert_eq!(api.post(&format!("/v3/types/{other}/encryption"), ADMIN, bad).await.status, 400);
        assert_eq!(
            api.post(&format!("/v3/types/{other}/encryption"), MEMBER, json!({"encryption": spec})).await.status,
            403
        );
        let missing = uuid::Uuid::new_v4();
        assert_eq!(
            api.post(&format!("/v3/types/{missing}/encryption"), ADMIN, json!({"encryption": spec})).await.status,
            404
        );

        let r = api.get(&base, ADMIN).await;
        assert_eq!(r.body["cipher"], "aes-xts-plain64");
        assert_eq!(r.body["encryption_id"], json!(encryption_id));
        assert_eq!(r.body["deleted"], false);

        let r = api
            .put(
                &format!("{base}/{encryption_id}"),
                ADMIN,
                json!({"encryption": {"key_size": 128, "control_location": "back-end"}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, json!({"encryption": {"key_size": 128, "control_location": "back-end"}}));
        assert_eq!(
            api.get(&format!("{base}/control_location"), ADMIN).await.body,
            json!({"control_location": "back-end"})
        );
        assert_eq!(api.get(&format!("{base}/provider"), ADMIN).await.body, json!({"provider": "luks"}));
        assert_eq!(api.get(&format!("{base}/nothing"), ADMIN).await.status, 404);

        assert_eq!(api.delete(&format!("{base}/{encryption_id}"), ADMIN).await.status, 202);
        assert_eq!(api.get(&base, ADMIN).await.body, json!({}));
        assert_eq!(api.delete(&format!("{base}/{encryption_id}"), ADMIN).await.status, 404);

        // a type in use takes no encryption changes
        volume_of_type(&api, &other).await;
        let r = api.post(&format!("/v3/types/{other}/encryption"), ADMIN, json!({"encryption": spec})).await;
        assert_eq!(r.status, 400);
        assert_eq!(fault_message(&r), "Cannot create encryption specs. Volume type in use.");
    }
}

#[tokio::test]
async fn qos_specs_and_associations() {
    for api in strict_clouds().await {
        let r = api
            .post(
                "/v3/qos-specs",
                ADMIN,
                json!({"qos_specs": {"name": "q1", "consumer": "front-end", "read_iops_sec": "2000"}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let created = r.body["qos_specs"].clone();
        assert_eq!(created["consumer"], "front-end");
        assert_eq!(created["specs"], json!({"read_iops_sec": "2000"}));
        assert_eq!(r.body["links"][0]["rel"], "self");
        let qid = created["id"].as_str().unwrap().to_string();
        assert_eq!(api.post("/v3/qos-specs", ADMIN, json!({"qos_specs": {"name": "q1"}})).await.status, 409);
        assert_eq!(
            api.post("/v3/qos-specs", ADMIN, json!({"qos_specs": {"name": "q2", "consumer": "nobody"}})).await.status,
            400
        );
        assert_eq!(api.post("/v3/qos-specs", MEMBER, json!({"qos_specs": {"name": "q3"}})).await.status, 403);
        let r = api.post("/v3/qos-specs", ADMIN, json!({"qos_specs": {"name": "q4"}})).await;
        assert_eq!(r.body["qos_specs"]["consumer"], "back-end");

        // the list holds the created item as created
        let r = api.get("/v3/qos-specs", ADMIN).await;
        assert!(r.body["qos_specs"].as_array().unwrap().contains(&created), "{}", r.body);

        // set and unset keys
        let r = api
            .put(&format!("/v3/qos-specs/{qid}"), ADMIN, json!({"qos_specs": {"iops_bytes": "20", "consumer": "both"}}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, json!({"qos_specs": {"iops_bytes": "20", "consumer": "both"}}));
        let r = api.get(&format!("/v3/qos-specs/{qid}"), ADMIN).await;
        assert_eq!(r.body["qos_specs"]["consumer"], "both");
        assert_eq!(r.body["qos_specs"]["specs"], json!({"read_iops_sec": "2000", "iops_bytes": "20"}));
        let r = api.put(&format!("/v3/qos-specs/{qid}/delete_keys"), ADMIN, json!({"keys": ["iops_bytes"]})).await;
        assert_eq!(r.status, 202);
        assert_eq!(
            api.get(&format!("/v3/qos-specs/{qid}"), ADMIN).await.body["qos_specs"]["specs"],
            json!({"read_iops_sec": "2000"})
        );
        assert_eq!(
            api.put(&format!("/v3/qos-specs/{qid}/delete_keys"), ADMIN, json!({"keys": ["nope"]})).await.status,
            404
        );

        // associate with two types
        let t1 = make_type(&api, json!({"name": "t1"})).await;
        let t2 = make_type(&api, json!({"name": "t2"})).await;
        for t in [&t1, &t2] {
            let r = api.get(&format!("/v3/qos-specs/{qid}/associate?vol_type_id={t}"), ADMIN).await;
            assert_eq!(r.status, 202, "{}", r.body);
        }
        assert_eq!(api.get(&format!("/v3/qos-specs/{qid}/associate"), ADMIN).await.status, 400);
        let missing = uuid::Uuid::new_v4();
        assert_eq!(api.get(&format!("/v3/qos-specs/{qid}/associate?vol_type_id={missing}"), ADMIN).await.status, 404);
        let r = api.get(&format!("/v3/qos-specs/{qid}/associations"), ADMIN).await;
        let mut ids: Vec<String> = r.body["qos_associations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        let mut want = vec![t1.clone(), t2.clone()];
        want.sort();
        assert_eq!(ids, want);
        assert_eq!(r.body["qos_associations"][0]["association_type"], "volume_type");
        assert_eq!(api.get(&format!("/v3/types/{t1}"), ADMIN).await.body["volume_type"]["qos_specs_id"], json!(qid));
        // a type takes one QoS specs
        let other =
            api.post("/v3/qos-specs", ADMIN, json!({"qos_specs": {"name": "q5"}})).await.body["qos_specs"]["id"]
                .as_str()
                .unwrap()
                .to_string();
        assert_eq!(api.get(&format!("/v3/qos-specs/{other}/associate?vol_type_id={t1}"), ADMIN).await.status, 400);

        // in use: no plain delete
        let r = api.delete(&format!("/v3/qos-specs/{qid}"), ADMIN).await;
        assert_eq!(r.status, 400);
        assert_eq!(fault_message(&r), "Qos specs still in use.");

        assert_eq!(api.get(&format!("/v3/qos-specs/{qid}/disassociate?vol_type_id={t1}"), ADMIN).await.status, 202);
        assert_eq!(api.get(&format!("/v3/types/{t1}"), ADMIN).await.body["volume_type"]["qos_specs_id"], Value::Null);
        assert_eq!(api.get(&format!("/v3/qos-specs/{qid}/disassociate_all"), ADMIN).await.status, 202);
        assert_eq!(
            api.get(&format!("/v3/qos-specs/{qid}/associations"), ADMIN).await.body["qos_associations"],
            json!([])
        );

        // forced delete detaches
        api.get(&format!("/v3/qos-specs/{qid}/associate?vol_type_id={t2}"), ADMIN).await;
        assert_eq!(api.delete(&format!("/v3/qos-specs/{qid}?force=True"), ADMIN).await.status, 202);
        assert_eq!(api.get(&format!("/v3/types/{t2}"), ADMIN).await.body["volume_type"]["qos_specs_id"], Value::Null);
        let r = api.get(&format!("/v3/qos-specs/{qid}"), ADMIN).await;
        assert_eq!(r.status, 404);
        assert_eq!(fault_message(&r), format!("No such QoS spec {qid}."));
    }
}

#[tokio::test]
async fn default_types_per_project() {
    for api in strict_clouds().await {
        let id = make_type(&api, json!({"name": "proj-default"})).await;
        let path = format!("/v3/default-types/{PROJECT_B}");
        let body = json!({"default_type": {"volume_type": "proj-default"}});
        // not before 3.62
        assert_eq!(api.call(Method::PUT, &path, ADMIN, Some("3.61"), Some(body.clone())).await.status, 404);
        // only admins
        assert_eq!(api.call(Method::PUT, &path, OTHER, Some("3.62"), Some(body.clone())).await.status, 403);
        let r = api.call(Method::PUT, &path, ADMIN, Some("3.62"), Some(body)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body, json!({"default_type": {"project_id": PROJECT_B, "volume_type_id": id}}));
        let bad = json!({"default_type": {"volume_type": "no-such-type"}});
        assert_eq!(api.call(Method::PUT, &path, ADMIN, Some("3.62"), Some(bad)).await.status, 400);

        let r = api.call(Method::GET, &path, ADMIN, Some("3.62"), None).await;
        assert_eq!(r.body["default_type"]["volume_type_id"], json!(id));
        let r = api.call(Method::GET, "/v3/default-types", ADMIN, Some("3.62"), None).await;
        assert_eq!(r.body["default_types"], json!([{"project_id": PROJECT_B, "volume_type_id": id}]));

        // the project's default is what `types/default` gives it, and it cannot be deleted
        let r = api.get("/v3/types/default", OTHER).await;
        assert_eq!(r.body["volume_type"]["id"], json!(id));
        assert_eq!(api.get("/v3/types/default", MEMBER).await.body["volume_type"]["name"], "__DEFAULT__");
        assert_eq!(api.delete(&format!("/v3/types/{id}"), ADMIN).await.status, 400);
        let t = stratus_volume::store::types::default_for(&api.db.read, PROJECT_B, "__DEFAULT__").await.unwrap();
        assert_eq!(t.id, id);

        assert_eq!(api.call(Method::DELETE, &path, ADMIN, Some("3.62"), None).await.status, 204);
        let r = api.call(Method::GET, &path, ADMIN, Some("3.62"), None).await;
        assert_eq!(r.status, 404);
        assert_eq!(fault_message(&r), format!("Default type for project {PROJECT_B} not found."));
        assert_eq!(api.get("/v3/types/default", OTHER).await.body["volume_type"]["name"], "__DEFAULT__");
        assert_eq!(api.delete(&format!("/v3/types/{id}"), ADMIN).await.status, 202);
    }
}
