//! Glance v2 over HTTP: one module per resource (routes, wire types, handlers).

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;

use crate::error::{Result, image_not_found};
use crate::store::images::{self, Image};
use crate::{ImageService, State};

pub mod cache;
pub mod data;
pub mod images_api;
pub mod info;
pub mod locations;
pub mod members;
pub mod metadefs;
pub mod schemas_api;
pub mod tags;
pub mod tasks;
pub mod versions;

pub fn routes(state: State) -> Router {
    Router::new()
        .merge(versions::routes())
        .merge(images_api::routes())
        .merge(data::routes())
        .merge(members::routes())
        .merge(tags::routes())
        .merge(info::routes())
        .merge(locations::routes())
        .merge(schemas_api::routes())
        .merge(metadefs::routes())
        .merge(tasks::routes())
        .merge(cache::routes())
        .with_state(state)
}

pub fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

pub fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn is_admin(svc: &ImageService, ctx: &AuthContext) -> bool {
    svc.policy.allowed(ctx, "context_is_admin", &json!({}))
}

/// Custom properties of an image.
pub fn props(img: &Image) -> Map<String, Value> {
    serde_json::from_str(&img.properties).unwrap_or_default()
}

/// The locations of an image's data: `[{"url", "metadata", "store"}]`.
pub fn locations(img: &Image) -> Vec<Value> {
    serde_json::from_str(&img.locations).unwrap_or_default()
}

pub fn store_ids(img: &Image) -> Vec<String> {
    locations(img).iter().filter_map(|l| l["metadata"]["store"].as_str().map(str::to_string)).collect()
}

/// A stored time (microseconds) as the API shows it.
pub(crate) fn time(us: i64) -> String {
    stratus_core::time::iso_seconds(chrono::DateTime::from_timestamp_micros(us).unwrap_or_default())
}

impl ImageService {
    /// The image as Glance shows it.
    pub fn view(&self, img: &Image, tags: &[String]) -> Value {
        let mut v = Map::new();
        for (k, val) in props(img) {
            v.insert(k, val);
        }
        let fields = json!({
            "id": img.id,
            "name": img.name,
            "status": img.status,
            "visibility": img.visibility,
            "protected": img.protected,
            "os_hidden": img.os_hidden,
            "owner": img.owner,
            "checksum": img.checksum,
            "os_hash_algo": img.os_hash_algo,
            "os_hash_value": img.os_hash_value,
            "size": img.size,
            "virtual_size": img.virtual_size,
            "disk_format": img.disk_format,
            "container_format": img.container_format,
            "min_disk": img.min_disk,
            "min_ram": img.min_ram,
            "created_at": time(img.created_at),
            "updated_at": time(img.updated_at),
            "tags": tags,
            "self": format!("/v2/images/{}", img.id),
            "file": format!("/v2/images/{}/file", img.id),
            "schema": "/v2/schemas/image",
        });
        if let Value::Object(f) = fields {
            v.extend(f);
        }
        if self.cfg.image.show_multiple_locations {
            v.insert("locations".into(), Value::Array(locations::public_locations(img)));
        }
        if self.cfg.image.show_image_direct_url
            && let Some(first) = self::locations(img).first()
        {
            v.insert("direct_url".into(), first["url"].clone());
        }
        let mut stores = store_ids(img);
        self.stores.by_weight(&mut stores);
        if !stores.is_empty() {
            v.insert("stores".into(), Value::String(stores.join(",")));
        }
        Value::Object(v)
    }

    /// Policy target of an image, as Glance builds it.
    pub fn target(&self, img: &Image, ctx: &AuthContext, is_member: bool) -> Value {
        json!({
            "id": img.id,
            "project_id": img.owner,
            "owner": img.owner,
            "visibility": img.visibility,
            "member_id": if is_member { ctx.project_id.clone() } else { None },
            "protected": img.protected,
        })
    }

    /// 403 unless `rule` allows the caller on `target`.
    pub fn enforce(&self, ctx: &AuthContext, rule: &str, target: &Value) -> Result<()> {
        self.policy.enforce(ctx, rule, target).map_err(Into::into)
    }

    /// Load an image the caller may see, with whether the caller is a member. Unseen = 404.
    pub async fn visible(&self, ctx: &AuthContext, id: &str) -> Result<(Image, bool)> {
        let img = images::get(&self.db, id).await?.ok_or_else(|| image_not_found(id))?;
        let project = ctx.project_id.as_deref();
        let owner = img.owner.is_some() && img.owner.as_deref() == project;
        let mut member = false;
        if img.visibility == "shared"
            && !owner
            && let Some(p) = project
        {
            member = crate::store::members::get(&self.db, &img.id, p).await?.is_some();
        }
        let seen = owner || member || matches!(img.visibility.as_str(), "public" | "community") || is_admin(self, ctx);
        if !seen {
            return Err(image_not_found(id));
        }
        Ok((img, member))
    }

    /// Load a visible image and check `rule` on it.
    pub async fn authorized(&self, ctx: &AuthContext, id: &str, rule: &str) -> Result<(Image, Value)> {
        let (img, member) = self.visible(ctx, id).await?;
        let target = self.target(&img, ctx, member);
        self.enforce(ctx, rule, &target)?;
        Ok((img, target))
    }
}
