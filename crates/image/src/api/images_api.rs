//! `/v2/images`: create, list, show, update by JSON patch, delete,
//! deactivate / reactivate.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::{created, is_admin, no_content, ok, props};
use crate::error::{ImageError, Result, bad, conflict, forbidden};
use crate::store::images::{self, Image, ListFilter, Op};
use crate::{ImageService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2/images", get(list).post(create))
        .route("/v2/images/{id}", get(show).patch(update).delete(delete))
        .route("/v2/images/{id}/actions/deactivate", post(deactivate))
        .route("/v2/images/{id}/actions/reactivate", post(reactivate))
}

/// Core attributes: they live in columns, not in the custom properties.
const BASE: &[&str] = &[
    "checksum",
    "created_at",
    "container_format",
    "disk_format",
    "id",
    "min_disk",
    "min_ram",
    "name",
    "size",
    "virtual_size",
    "status",
    "tags",
    "owner",
    "updated_at",
    "visibility",
    "protected",
    "os_hidden",
];
const SORT_KEYS: &[&str] =
    &["name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"];
/// Glance's defaults: image_property_quota, image_tag_quota.
pub const MAX_PROPERTIES: usize = 128;
pub const MAX_TAGS: usize = 128;
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 1000;

fn check_reserved(key: &str) -> Result<()> {
    if crate::schemas::is_reserved(key) {
        return Err(forbidden(format!("Attribute '{key}' is reserved.")));
    }
    Ok(())
}

fn schema_error(key: &str, why: &str) -> ImageError {
    bad(format!("Provided object does not match schema 'image': {why} Failed validating '{key}'."))
}

/// Validate one core attribute's value against the image schema.
fn check_core(key: &str, v: &Value) -> Result<()> {
    let ok = match key {
        "name" => v.is_null() || v.as_str().is_some_and(|s| s.chars().count() <= 255),
        "owner" => v.is_null() || v.as_str().is_some_and(|s| s.chars().count() <= 255),
        "visibility" => v.as_str().is_some_and(|s| ["public", "private", "shared", "community"].contains(&s)),
        "protected" | "os_hidden" => v.is_boolean(),
        "min_disk" | "min_ram" => v.as_i64().is_some_and(|n| (0..=i32::MAX as i64).contains(&n)),
        "container_format" => {
            v.is_null() || v.as_str().is_some_and(|s| crate::schemas::container_formats().contains(&s))
        }
        "disk_format" => v.is_null() || v.as_str().is_some_and(|s| crate::schemas::disk_formats().contains(&s)),
        "tags" => v.as_array().is_some_and(|a| a.iter().all(|t| t.as_str().is_some_and(|s| s.chars().count() <= 255))),
        _ => true,
    };
    if ok { Ok(()) } else { Err(schema_error(key, &format!("{v} is not valid for '{key}'."))) }
}

/// Validate a custom property.
fn check_custom(key: &str, v: &Value) -> Result<()> {
    if key.chars().count() > 255 {
        return Err(bad("Custom property should not be greater than 255 characters."));
    }
    check_reserved(key)?;
    match v {
        Value::String(s) if s.chars().count() <= 65535 => Ok(()),
        _ => Err(schema_error(key, &format!("{v} is not of type 'string'."))),
    }
}

fn visibility_rule(v: &str) -> Option<&'static str> {
    match v {
        "public" => Some("publicize_image"),
        "community" => Some("communitize_image"),
        _ => None,
    }
}

fn dedup_tags(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !out.iter().any(|x| x == t) {
            out.push(t.to_string());
        }
    }
    out
}

impl ImageService {
    /// Refuse when the project has as many images as its `image_count_total` allows.
    pub async fn check_count_quota(&self, owner: &str) -> Result<()> {
        if let Some(limit) = crate::api::data::effective_limit(self, owner, "image_count_total").await? {
            let (count, _) = images::usage(&self.db, owner).await?;
            if count + 1 > limit {
                return Err(ImageError::TooLarge(format!(
                    "Quota exceeded for image_count_total: {count} of {limit} images in use."
                )));
            }
        }
        Ok(())
    }
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Bytes) -> Result<Response> {
    let body: Value = stratus_core::extract::parse_json(crate::error::STYLE, &body)?;
    let Value::Object(mut body) = body else {
        return Err(bad("Body expected in request."));
    };
    for k in crate::schemas::create_disallowed_properties() {
        if body.contains_key(*k) {
            return Err(forbidden(format!("Attribute '{k}' is read-only.")));
        }
    }
    for k in crate::schemas::read_only_properties().iter().filter(|k| **k != "id") {
        if body.contains_key(*k) {
            return Err(forbidden(format!("Attribute '{k}' is read-only.")));
        }
    }
    if body.contains_key("locations") && !svc.cfg.image.show_multiple_locations {
        return Err(forbidden("It's not allowed to add locations if locations are invisible."));
    }
    if body.contains_key("locations") {
        return Err(bad("Locations are added with PATCH or POST /v2/images/{id}/locations, not at create."));
    }
    for (k, v) in &body {
        if BASE.contains(&k.as_str()) {
            check_core(k, v)?;
        } else if k != "id" {
            check_custom(k, v)?;
        }
    }
    let id = match body.remove("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s)) => match uuid::Uuid::parse_str(&s) {
            Ok(u) => u.hyphenated().to_string(),
            Err(_) => return Err(schema_error("id", &format!("'{s}' does not match the uuid pattern."))),
        },
        Some(v) => return Err(schema_error("id", &format!("{v} is not of type 'string'."))),
    };
    let caller_project = ctx.project_id.clone();
    let owner = match body.remove("owner") {
        None => caller_project.clone(),
        Some(Value::Null) => None,
        Some(Value::String(o)) => Some(o),
        Some(_) => None,
    };
    let admin = is_admin(&svc, &ctx);
    if !admin && owner != caller_project {
        return Err(forbidden(format!(
            "You are not permitted to create images owned by '{}'.",
            owner.clone().unwrap_or_default()
        )));
    }
    let visibility = body.remove("visibility").and_then(|v| v.as_str().map(str::to_string)).unwrap_or("shared".into());
    let target = json!({"project_id": owner, "owner": owner, "visibility": visibility});
    svc.enforce(&ctx, "add_image", &target)?;
    if let Some(rule) = visibility_rule(&visibility) {
        svc.enforce(&ctx, rule, &target)?;
    }
    let tags = body.remove("tags").map(|t| dedup_tags(&t)).unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(ImageError::TooLarge(format!("Maximum number of tags exceeded: {MAX_TAGS}.")));
    }
    if images::get_any(&svc.db, &id).await?.is_some() {
        return Err(conflict(format!("Image with identifier {id} already exists!")));
    }
    if let Some(o) = &owner {
        svc.check_count_quota(o).await?;
    }
    let s = |k: &str, body: &mut Map<String, Value>| body.remove(k).and_then(|v| v.as_str().map(str::to_string));
    let now = crate::store::now_us();
    let img = Image {
        id: id.clone(),
        name: s("name", &mut body),
        status: "queued".into(),
        visibility,
        protected: body.remove("protected").and_then(|v| v.as_bool()).unwrap_or(false),
        os_hidden: body.remove("os_hidden").and_then(|v| v.as_bool()).unwrap_or(false),
        owner,
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        size: None,
        virtual_size: None,
        disk_format: s("disk_format", &mut body),
        container_format: s("container_format", &mut body),
        min_disk: body.remove("min_disk").and_then(|v| v.as_i64()).unwrap_or(0),
        min_ram: body.remove("min_ram").and_then(|v| v.as_i64()).unwrap_or(0),
        properties: String::new(),
        locations: "[]".into(),
        staging: None,
        deleted: false,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    if body.len() > MAX_PROPERTIES {
        return Err(ImageError::TooLarge(format!("Maximum number of image properties exceeded: {MAX_PROPERTIES}.")));
    }
    let img = Image { properties: Value::Object(body).to_string(), ..img };
    let img = match images::insert(&svc.db, img, &tags).await {
        Ok(i) => i,
        Err(ImageError::Internal(e))
            if e.downcast_ref::<sea_orm::DbErr>().is_some_and(stratus_db::is_unique_violation) =>
        {
            return Err(conflict(format!("Image with identifier {id} already exists!")));
        }
        Err(e) => return Err(e),
    };
    // the check above raced with other creates: count again now that the row
    // is committed, and withdraw it if the project is over its limit. Of the
    // images kept, the one counted last saw all the others, so the limit holds
    // (a close race may refuse more than needed, never fewer).
    if let Some(o) = &img.owner
        && let Some(limit) = crate::api::data::effective_limit(&svc, o, "image_count_total").await?
        && images::count_fresh(&svc.db, o).await? > limit
    {
        images::purge(&svc.db, &img.id).await?;
        return Err(ImageError::TooLarge(format!("Quota exceeded for image_count_total: {limit} images allowed.")));
    }
    let mut resp = created(svc.view(&img, &tags));
    let h = resp.headers_mut();
    if let Ok(v) = format!("/v2/images/{id}").parse() {
        h.insert("location", v);
    }
    if let Ok(v) = svc.import_methods().join(",").parse() {
        h.insert("openstack-image-import-methods", v);
    }
    if let Ok(v) = svc.stores.list.iter().map(|s| s.id().to_string()).collect::<Vec<_>>().join(",").parse() {
        h.insert("openstack-image-store-ids", v);
    }
    Ok(resp)
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "get_image").await?;
    let tags = images::tags(&svc.db, &img.id).await?;
    Ok(ok(svc.view(&img, &tags)))
}

fn parse_time_filter(key: &str, raw: &str) -> Result<(Op, i64)> {
    let (op, value) = match raw.split_once(':') {
        Some((op @ ("eq" | "neq" | "gt" | "gte" | "lt" | "lte"), rest)) => (op, rest),
        _ => ("eq", raw),
    };
    let op = match op {
        "neq" => Op::Neq,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        _ => Op::Eq,
    };
    let t = stratus_core::time::parse(value).ok_or_else(|| bad(format!("Invalid value for {key}: {raw}.")))?;
    Ok((op, t.timestamp_micros()))
}

/// `in:a,b` or a plain value, as a list.
fn multi(raw: &str) -> Vec<String> {
    match raw.strip_prefix("in:") {
        Some(list) => list.split(',').map(|s| s.trim().trim_matches('"').to_string()).collect(),
        None => vec![raw.to_string()],
    }
}

fn parse_bool(key: &str, raw: &str) -> Result<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(bad(format!("Invalid value '{raw}' for {key}: a boolean is expected."))),
    }
}

fn parse_size(key: &str, raw: &str) -> Result<i64> {
    raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| bad(format!("{key} must be a non-negative integer")))
}

/// Sort keys and directions from `sort=` or `sort_key`/`sort_dir`.
fn parse_sort(q: &RawQuery) -> Result<Vec<(String, bool)>> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let sort: Vec<&str> = q.0.iter().filter(|(k, _)| k == "sort").map(|(_, v)| v.as_str()).collect();
    let keys: Vec<&str> = q.0.iter().filter(|(k, _)| k == "sort_key").map(|(_, v)| v.as_str()).collect();
    let dirs: Vec<&str> = q.0.iter().filter(|(k, _)| k == "sort_dir").map(|(_, v)| v.as_str()).collect();
    if !sort.is_empty() && (!keys.is_empty() || !dirs.is_empty()) {
        return Err(bad("The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir'."));
    }
    let dir_of = |d: &str| -> Result<bool> {
        match d {
            "asc" => Ok(true),
            "desc" => Ok(false),
            _ => Err(bad(format!("Invalid sort direction: {d}"))),
        }
    };
    for s in sort {
        for part in s.split(',') {
            let (k, d) = match part.split_once(':') {
                Some((k, d)) => (k.trim(), dir_of(d.trim())?),
                None => (part.trim(), false),
            };
            out.push((k.to_string(), d));
        }
    }
    if !keys.is_empty() {
        let expanded: Vec<&str> = keys.iter().flat_map(|k| k.split(',')).map(str::trim).collect();
        let dirs: Vec<&str> = dirs.iter().flat_map(|d| d.split(',')).map(str::trim).collect();
        if dirs.len() > 1 && dirs.len() != expanded.len() {
            return Err(bad("Number of sort dirs does not match the number of sort keys"));
        }
        for (i, k) in expanded.iter().enumerate() {
            let d = match dirs.len() {
                0 => false,
                1 => dir_of(dirs[0])?,
                _ => dir_of(dirs[i])?,
            };
            out.push((k.to_string(), d));
        }
    } else if let Some(d) = dirs.first() {
        out.push(("created_at".into(), dir_of(d)?));
    }
    for (k, _) in &out {
        if !SORT_KEYS.contains(&k.as_str()) {
            return Err(bad(format!(
                "Invalid sort key: {k}. It should be one of the following: {}.",
                SORT_KEYS.join(", ")
            )));
        }
    }
    if out.is_empty() {
        out.push(("created_at".into(), false));
    }
    if !out.iter().any(|(k, _)| k == "id") {
        let last = out.last().map(|(_, d)| *d).unwrap_or(false);
        out.push(("id".into(), last));
    }
    Ok(out)
}

/// Query parameters that are not property filters.
const NON_FILTERS: &[&str] = &[
    "limit",
    "marker",
    "sort",
    "sort_key",
    "sort_dir",
    "visibility",
    "member_status",
    "name",
    "status",
    "owner",
    "id",
    "disk_format",
    "container_format",
    "size_min",
    "size_max",
    "created_at",
    "updated_at",
    "os_hidden",
    "protected",
    "tag",
    "size",
    "checksum",
    "os_hash_value",
    "min_ram",
    "min_disk",
];

async fn list(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    svc.enforce(&ctx, "get_images", &json!({"project_id": ctx.project_id, "owner": ctx.project_id}))?;
    let mut f = ListFilter {
        project: ctx.project_id.clone(),
        is_admin: is_admin(&svc, &ctx),
        member_status: "accepted".into(),
        ..Default::default()
    };
    if let Some(v) = q.get("visibility") {
        if !["public", "private", "shared", "community", "all"].contains(&v) {
            return Err(bad(format!("Invalid visibility value: {v}")));
        }
        f.visibility = Some(v.to_string());
    }
    if let Some(v) = q.get("member_status") {
        if !["accepted", "pending", "rejected", "all"].contains(&v) {
            return Err(bad(format!("Invalid status value: {v}")));
        }
        f.member_status = v.to_string();
    }
    for (k, v) in &q.0 {
        match k.as_str() {
            "name" => f.names.extend(multi(v)),
            "status" => f.statuses.extend(multi(v)),
            "owner" => f.owners.extend(multi(v)),
            "id" => f.ids.extend(multi(v)),
            "disk_format" => f.disk_formats.extend(multi(v)),
            "container_format" => f.container_formats.extend(multi(v)),
            "size_min" => f.size_min = Some(parse_size(k, v)?),
            "size_max" => f.size_max = Some(parse_size(k, v)?),
            "created_at" => f.created_at.push(parse_time_filter(k, v)?),
            "updated_at" => f.updated_at.push(parse_time_filter(k, v)?),
            "os_hidden" => f.os_hidden = Some(parse_bool(k, v)?),
            "protected" => f.protected = Some(parse_bool(k, v)?),
            "tag" => f.tags.push(v.clone()),
            "size" => {
                for x in multi(v) {
                    f.sizes.push(parse_size(k, &x)?);
                }
            }
            "checksum" => f.checksums.extend(multi(v)),
            "os_hash_value" => f.hash_values.extend(multi(v)),
            "min_ram" => f.min_ram = Some(parse_size(k, v)?),
            "min_disk" => f.min_disk = Some(parse_size(k, v)?),
            _ if NON_FILTERS.contains(&k.as_str()) => {}
            _ => f.properties.push((k.clone(), v.clone())),
        }
    }
    if let (Some(a), Some(b)) = (f.size_min, f.size_max)
        && a > b
    {
        return Err(bad("size_min must be less than or equal to size_max"));
    }
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => {
            l.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| bad("limit param must be positive"))? as usize
        }
    }
    .min(MAX_LIMIT);
    let sort = parse_sort(&q)?;
    let marker = match q.get("marker") {
        None => None,
        Some(m) => {
            // the marker must be an image this listing shows
            let mf = ListFilter { ids: vec![m.to_string()], ..f.clone() };
            let found = images::list(&svc.db, &mf).await?.into_iter().next();
            Some(found.ok_or_else(|| bad(format!("No image found with ID {m}")))?)
        }
    };
    let (page, more) = images::list_page(&svc.db, &f, &sort, marker.as_ref(), limit as u64).await?;
    let ids: Vec<String> = page.iter().map(|i| i.id.clone()).collect();
    let tags = images::tags_of(&svc.db, &ids).await?;
    let items: Vec<Value> =
        page.iter().map(|i| svc.view(i, tags.get(&i.id).map(Vec::as_slice).unwrap_or(&[]))).collect();
    let mut body = json!({"images": items, "first": first_link(&q), "schema": "/v2/schemas/images"});
    if more && let Some(last) = page.last() {
        body["next"] = Value::String(next_link(&q, &last.id, limit));
    }
    Ok(ok(body))
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b',' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn first_link(q: &RawQuery) -> String {
    let params: Vec<String> =
        q.0.iter().filter(|(k, _)| k != "marker").map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    if params.is_empty() { "/v2/images".into() } else { format!("/v2/images?{}", params.join("&")) }
}

fn next_link(q: &RawQuery, marker: &str, limit: usize) -> String {
    let mut params: Vec<String> =
        q.0.iter()
            .filter(|(k, _)| k != "marker" && k != "limit")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
    params.push(format!("marker={}", encode(marker)));
    if q.get("limit").is_some() {
        params.push(format!("limit={limit}"));
    }
    format!("/v2/images?{}", params.join("&"))
}

/// One parsed JSON-patch operation.
struct Change {
    op: String,
    path: Vec<String>,
    value: Option<Value>,
}

fn decode_pointer(p: &str) -> Result<Vec<String>> {
    if !p.starts_with('/') {
        return Err(bad(format!("Pointer `{p}` does not start with \"/\".")));
    }
    if p.len() > 1 && p.ends_with('/') {
        return Err(bad(format!("Pointer `{p}` end with \"/\".")));
    }
    if p[1..].contains("//") {
        return Err(bad(format!("Pointer `{p}` contains adjacent \"/\".")));
    }
    let bad_escape =
        p.ends_with('~') || p.match_indices('~').any(|(i, _)| !matches!(p.as_bytes().get(i + 1), Some(b'0' | b'1')));
    if bad_escape {
        return Err(bad(format!("Pointer `{p}` contains \"~\" not part of a recognized escape sequence.")));
    }
    Ok(p.trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~").trim().to_string())
        .collect())
}

fn parse_changes(content_type: &str, body: &[u8]) -> Result<Vec<Change>> {
    let v21 = content_type.starts_with("application/openstack-images-v2.1-json-patch");
    let v20 = content_type.starts_with("application/openstack-images-v2.0-json-patch");
    if !v21 && !v20 {
        return Err(ImageError::Status(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Unsupported Content-Type {content_type}: use application/openstack-images-v2.1-json-patch"),
        ));
    }
    let v: Value = stratus_core::extract::parse_json(crate::error::STYLE, body)?;
    let Value::Array(raw) = v else {
        return Err(bad("Request body must be a JSON array of operation objects."));
    };
    let mut out = Vec::new();
    for r in raw {
        let Value::Object(r) = r else {
            return Err(bad("Operations must be JSON objects."));
        };
        let (op, path) = if v21 {
            let op = r.get("op").and_then(Value::as_str).ok_or_else(|| {
                bad("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.")
            })?;
            if !["add", "remove", "replace"].contains(&op) {
                return Err(bad(format!(
                    "Invalid operation: `{op}`. It must be one of the following: add, remove, replace."
                )));
            }
            let path = r
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("Unable to find 'path' in JSON Schema change"))?;
            (op.to_string(), path.to_string())
        } else {
            let found: Vec<&str> = ["add", "remove", "replace"].into_iter().filter(|k| r.contains_key(*k)).collect();
            if found.len() != 1 {
                return Err(bad(
                    "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".",
                ));
            }
            let op = found[0];
            let path = r.get(op).and_then(Value::as_str).ok_or_else(|| bad("Invalid path"))?;
            (op.to_string(), path.to_string())
        };
        let path = decode_pointer(&path)?;
        let value = if op == "remove" {
            None
        } else {
            Some(
                r.get("value")
                    .cloned()
                    .ok_or_else(|| bad(format!("Operation \"{op}\" requires a member named \"value\".")))?,
            )
        };
        let root = path.first().cloned().unwrap_or_default();
        let depth_ok = if root == "locations" { path.len() <= 2 } else { path.len() == 1 };
        if !depth_ok {
            return Err(bad(format!("Invalid JSON pointer for this resource: '/{}'", path.join("/"))));
        }
        if crate::schemas::read_only_properties().contains(&root.as_str()) {
            return Err(forbidden(format!("Attribute '{root}' is read-only.")));
        }
        check_reserved(&root)?;
        if let Some(v) = &value
            && root != "locations"
        {
            if BASE.contains(&root.as_str()) {
                check_core(&root, v)?;
            } else {
                check_custom(&root, v)?;
            }
        }
        out.push(Change { op, path, value });
    }
    Ok(out)
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let (mut img, target) = svc.authorized(&ctx, &id, "modify_image").await?;
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let changes = parse_changes(ct, &body)?;
    let admin = is_admin(&svc, &ctx);
    let mut custom = props(&img);
    let mut tags = images::tags(&svc.db, &img.id).await?;
    let mut tags_changed = false;
    let mut removed = Vec::new();
    for c in changes {
        let root = c.path[0].as_str();
        if root == "locations" {
            let pos = c.path.get(1).map(String::as_str);
            removed.extend(svc.patch_locations(&ctx, &target, &mut img, &c.op, pos, c.value).await?);
            continue;
        }
        if c.op == "remove" {
            if BASE.contains(&root) {
                return Err(forbidden(format!("Property {root} may not be removed.")));
            }
            if custom.remove(root).is_none() {
                return Err(conflict(format!("Property {root} does not exist.")));
            }
            continue;
        }
        let v = c.value.unwrap_or(Value::Null);
        if !BASE.contains(&root) {
            if c.op == "replace" && !custom.contains_key(root) {
                return Err(conflict(format!("Property {root} does not exist.")));
            }
            custom.insert(root.to_string(), v);
            continue;
        }
        match root {
            "name" => img.name = v.as_str().map(str::to_string),
            "visibility" => {
                let vis = v.as_str().unwrap_or_default().to_string();
                if let Some(rule) = visibility_rule(&vis)
                    && vis != img.visibility
                {
                    svc.enforce(&ctx, rule, &target)?;
                }
                if vis != "shared" && img.visibility == "shared" {
                    // members stay recorded but stop mattering, as in Glance
                }
                img.visibility = vis;
            }
            "protected" => img.protected = v.as_bool().unwrap_or(false),
            "os_hidden" => img.os_hidden = v.as_bool().unwrap_or(false),
            "min_disk" => img.min_disk = v.as_i64().unwrap_or(0),
            "min_ram" => img.min_ram = v.as_i64().unwrap_or(0),
            "owner" => {
                let o = v.as_str().map(str::to_string);
                if !admin && o != ctx.project_id {
                    return Err(forbidden("You are not permitted to modify 'owner' on this image."));
                }
                img.owner = o;
            }
            "disk_format" | "container_format" => {
                if img.status != "queued" {
                    return Err(forbidden(format!("Attribute {root} can be only replaced for a queued image.")));
                }
                if root == "disk_format" {
                    img.disk_format = v.as_str().map(str::to_string);
                } else {
                    img.container_format = v.as_str().map(str::to_string);
                }
            }
            "tags" => {
                tags = dedup_tags(&v);
                tags_changed = true;
            }
            _ => return Err(forbidden(format!("Attribute '{root}' is read-only."))),
        }
    }
    if custom.len() > MAX_PROPERTIES {
        return Err(ImageError::TooLarge(format!("Maximum number of image properties exceeded: {MAX_PROPERTIES}.")));
    }
    if tags.len() > MAX_TAGS {
        return Err(ImageError::TooLarge(format!("Maximum number of tags exceeded: {MAX_TAGS}.")));
    }
    img.properties = Value::Object(custom).to_string();
    img.updated_at = crate::store::now_us();
    images::save(&svc.db, &img).await?;
    if tags_changed {
        images::set_tags(&svc.db, &img.id, &tags).await?;
    }
    for loc in removed {
        if let (Some(url), Some(store)) = (loc["url"].as_str(), loc["metadata"]["store"].as_str())
            && let Some(s) = svc.stores.get(store)
            && let Err(e) = s.delete(url).await
        {
            tracing::warn!(image = %img.id, error = %e, "could not remove image data");
        }
    }
    let img = images::get_fresh(&svc.db, &img.id).await?.ok_or_else(|| crate::error::image_not_found(&id))?;
    let tags = images::tags(&svc.db, &img.id).await?;
    Ok(ok(svc.view(&img, &tags)))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "delete_image").await?;
    if img.protected {
        return Err(forbidden(format!("Image {id} is protected and cannot be deleted.")));
    }
    if !images::mark_deleted(&svc.db, &id).await? {
        return Err(crate::error::image_not_found(&id));
    }
    svc.remove_data(&img).await;
    Ok(no_content())
}

impl ImageService {
    /// Remove an image's data from every store and its staged data (best effort, logged).
    pub async fn remove_data(&self, img: &Image) {
        self.cache.remove(&img.id).await;
        for loc in super::locations(img) {
            let (Some(url), Some(store)) = (loc["url"].as_str(), loc["metadata"]["store"].as_str()) else {
                continue;
            };
            if let Some(s) = self.stores.for_location(store)
                && let Err(e) = s.delete(url).await
            {
                tracing::warn!(image = %img.id, error = %e, "could not remove image data");
            }
        }
        if let Some(staged) = &img.staging {
            let _ = self.stores.staging.delete(staged).await;
        }
    }
}

async fn deactivate(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "deactivate").await?;
    match img.status.as_str() {
        "deactivated" => Ok(no_content()),
        "active" => {
            if !images::transition(&svc.db, &id, &["active"], "deactivated", vec![]).await? {
                return Err(conflict(format!("Image {id} changed status while it was deactivated.")));
            }
            Ok(no_content())
        }
        s => Err(forbidden(format!("Not allowed to deactivate image in status '{s}'"))),
    }
}

async fn reactivate(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let (img, _) = svc.authorized(&ctx, &id, "reactivate").await?;
    match img.status.as_str() {
        "active" => Ok(no_content()),
        "deactivated" => {
            if !images::transition(&svc.db, &id, &["deactivated"], "active", vec![]).await? {
                return Err(conflict(format!("Image {id} changed status while it was reactivated.")));
            }
            Ok(no_content())
        }
        s => Err(forbidden(format!("Not allowed to reactivate image in status '{s}'"))),
    }
}
