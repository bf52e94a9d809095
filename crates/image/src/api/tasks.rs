//! `/v2/tasks`: Glance's (deprecated) tasks API, and the task schemas.
//!
//! The one task type is `import`: make a new image from the data at
//! `input.import_from`. Stratus never fetches from the network, so the only
//! URLs it imports from are its own image data URLs
//! (`<image API>/v2/images/<id>/file` of an active image the caller may
//! download); any other `import_from` is refused at create with 400, as newer
//! Glance refuses URIs that do not pass its import filters. The task then runs
//! in the background: `pending`, `processing`, then `success` with
//! `result.image_id`, or `failure` with a `message`. Finished tasks expire
//! after `TASK_TIME_TO_LIVE` (Glance's `task_time_to_live`, 48 hours).
//!
//! Access is `tasks_api_access` (admin by default), then the per-call rule.
//! Admins see every project's tasks, others their project's.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::http::RequestId;

use super::{created, is_admin, ok, time};
use crate::entity::image;
use crate::error::{ImageError, Result, bad, forbidden, not_found};
use crate::store::images::{self, Image};
use crate::store::tasks::{self, ListFilter, Task, task};
use crate::{ImageService, State, schemas};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2/tasks", get(list).post(create))
        .route("/v2/tasks/{id}", get(show).delete(delete))
        .route("/v2/schemas/task", get(|_: Auth| async { ok(schemas::task()) }))
        .route("/v2/schemas/tasks", get(|_: Auth| async { ok(schemas::tasks()) }))
}

/// How long a finished task is kept, in microseconds (Glance: 48 hours).
pub const TASK_TIME_TO_LIVE: i64 = 48 * 3600 * 1_000_000;
const TYPES: &[&str] = &["import"];
const STATUSES: &[&str] = &["pending", "processing", "success", "failure"];
/// The properties of the task schema: what a create body may carry.
const SCHEMA_KEYS: &[&str] = &[
    "id",
    "type",
    "status",
    "input",
    "result",
    "owner",
    "message",
    "image_id",
    "request_id",
    "user_id",
    "expires_at",
    "created_at",
    "updated_at",
    "self",
    "schema",
];
const SORT_KEYS: &[&str] =
    &["id", "type", "status", "owner", "expires_at", "created_at", "updated_at", "image_id", "request_id", "user_id"];
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 1000;
/// Image attributes an import may not set: the service sets them.
const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "owner",
    "checksum",
    "size",
    "virtual_size",
    "os_hash_algo",
    "os_hash_value",
    "created_at",
    "updated_at",
    "direct_url",
    "self",
    "file",
    "schema",
    "locations",
    "stores",
    "location",
    "deleted",
    "deleted_at",
];
const MAX_PROPERTIES: usize = 128;
const MAX_TAGS: usize = 128;

fn json_of(text: &Option<String>) -> Value {
    text.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null)
}

/// A task as Glance shows it: in full, or (in lists) without its details.
pub fn view(t: &Task, full: bool) -> Value {
    let mut v = json!({
        "id": t.id,
        "type": t.task_type,
        "status": t.status,
        "owner": t.owner,
        "expires_at": t.expires_at.map(time),
        "created_at": time(t.created_at),
        "updated_at": time(t.updated_at),
        "self": format!("/v2/tasks/{}", t.id),
        "schema": "/v2/schemas/task",
    });
    if full {
        v["input"] = json_of(&t.input);
        v["result"] = json_of(&t.result);
        v["message"] = Value::String(t.message.clone());
        for (k, val) in [("image_id", &t.image_id), ("request_id", &t.request_id), ("user_id", &t.user_id)] {
            if let Some(val) = val {
                v[k] = Value::String(val.clone());
            }
        }
    }
    v
}

fn access(svc: &ImageService, ctx: &AuthContext, rule: &str) -> Result<()> {
    svc.enforce(ctx, "tasks_api_access", &json!({}))?;
    svc.enforce(ctx, rule, &json!({}))
}

fn task_not_found(id: &str) -> ImageError {
    not_found(format!("Task with the given id {id} was not found"))
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    access(&svc, &ctx, "get_task")?;
    let t = tasks::get(&svc.db, &id).await?.ok_or_else(|| task_not_found(&id))?;
    if !is_admin(&svc, &ctx) && ctx.project_id.as_deref() != Some(t.owner.as_str()) {
        return Err(task_not_found(&id));
    }
    Ok(ok(view(&t, true)))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(_id): Path<String>) -> Result<Response> {
    access(&svc, &ctx, "get_task")?;
    let mut resp = ImageError::Status(
        StatusCode::METHOD_NOT_ALLOWED,
        "This operation is currently not permitted on Glance Tasks. They are auto deleted after reaching the time \
         based on their expires_at property."
            .into(),
    )
    .into_response();
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET"));
    Ok(resp)
}

fn sort_value(t: &Task, key: &str) -> (Option<i64>, Option<String>) {
    let s = |v: &str| (None, Some(v.to_string()));
    match key {
        "type" => s(&t.task_type),
        "status" => s(&t.status),
        "owner" => s(&t.owner),
        "expires_at" => (t.expires_at, None),
        "created_at" => (Some(t.created_at), None),
        "updated_at" => (Some(t.updated_at), None),
        "image_id" => (None, t.image_id.clone()),
        "request_id" => (None, t.request_id.clone()),
        "user_id" => (None, t.user_id.clone()),
        _ => s(&t.id),
    }
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn link(q: &RawQuery, marker: Option<&str>) -> String {
    let mut params: Vec<String> =
        q.0.iter().filter(|(k, _)| k != "marker").map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    if let Some(m) = marker {
        params.push(format!("marker={}", encode(m)));
    }
    if params.is_empty() { "/v2/tasks".into() } else { format!("/v2/tasks?{}", params.join("&")) }
}

async fn list(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    access(&svc, &ctx, "get_tasks")?;
    let sort_dir = q.get("sort_dir").unwrap_or("desc");
    if !["asc", "desc"].contains(&sort_dir) {
        return Err(bad(format!("Invalid sort direction: {sort_dir}")));
    }
    let sort_key = q.get("sort_key").unwrap_or("created_at");
    if !SORT_KEYS.contains(&sort_key) {
        return Err(bad(format!("Invalid sort key: {sort_key}")));
    }
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<i64>() {
            Err(_) => return Err(bad("limit param must be an integer")),
            Ok(n) if n < 0 => return Err(bad("limit param must be positive")),
            Ok(n) => n as usize,
        },
    }
    .min(MAX_LIMIT);
    let marker = q.get("marker");
    if let Some(m) = marker
        && !is_uuid(m)
    {
        return Err(bad("Invalid marker format"));
    }
    let mut f = ListFilter {
        owner: if is_admin(&svc, &ctx) { None } else { Some(ctx.project_id.clone().unwrap_or_default()) },
        ..Default::default()
    };
    for (k, v) in &q.0 {
        let col = match k.as_str() {
            "status" => {
                if !v.is_empty() && !STATUSES.contains(&v.as_str()) {
                    return Err(bad(format!("Invalid status value: {v}")));
                }
                task::Column::Status
            }
            "type" => {
                if !v.is_empty() && !TYPES.contains(&v.as_str()) {
                    return Err(bad(format!("Invalid type value: {v}")));
                }
                task::Column::TaskType
            }
            "owner" => task::Column::Owner,
            "image_id" => task::Column::ImageId,
            "request_id" => task::Column::RequestId,
            "user_id" => task::Column::UserId,
            "id" => task::Column::Id,
            // other parameters are no task attribute: ignored, as Glance does
            _ => continue,
        };
        if !v.is_empty() {
            f.filters.push((col, v.clone()));
        }
    }
    let mut rows = tasks::list(&svc.db, &f).await?;
    let asc = sort_dir == "asc";
    rows.sort_by(|a, b| {
        let o = sort_value(a, sort_key)
            .cmp(&sort_value(b, sort_key))
            .then_with(|| a.created_at.cmp(&b.created_at))
            .then_with(|| a.id.cmp(&b.id));
        if asc { o } else { o.reverse() }
    });
    let start = match marker {
        None => 0,
        Some(m) => match rows.iter().position(|t| t.id == m) {
            Some(i) => i + 1,
            None => return Err(bad(format!("Task with the given marker {m} was not found"))),
        },
    };
    let page: Vec<&Task> = rows.iter().skip(start).take(limit).collect();
    let mut body = json!({
        "tasks": page.iter().map(|t| view(t, false)).collect::<Vec<_>>(),
        "first": link(&q, None),
        "schema": "/v2/schemas/tasks",
    });
    if limit > 0
        && page.len() == limit
        && let Some(last) = page.last()
    {
        body["next"] = Value::String(link(&q, Some(&last.id)));
    }
    Ok(ok(body))
}

/// What an import task will do, checked at create.
#[derive(Clone, Debug)]
struct ImportPlan {
    source: String,
    name: Option<String>,
    visibility: String,
    protected: bool,
    os_hidden: bool,
    disk_format: String,
    container_format: String,
    min_disk: i64,
    min_ram: i64,
    tags: Vec<String>,
    properties: Map<String, Value>,
}

fn schema_error(why: &str) -> ImageError {
    bad(format!("Provided object does not match schema 'task': {why}"))
}

fn not_filtered(uri: &str) -> ImageError {
    bad(format!(
        "URI for legacy import task does not pass filtering: {uri}. This cloud does not fetch from the network: it \
         imports only from its own image data URLs, <image API>/v2/images/<id>/file."
    ))
}

/// The image an `import_from` URL names, if it is one of this cloud's image data URLs.
fn own_image(svc: &ImageService, uri: &str) -> Option<String> {
    let rest = uri.strip_prefix(svc.base_url.trim_end_matches('/'))?;
    let id = rest.strip_prefix("/v2/images/")?.strip_suffix("/file")?;
    is_uuid(id).then(|| id.to_string())
}

/// Check the image properties of an import: what the new image will be.
fn plan_properties(input: &Map<String, Value>, source: String) -> Result<ImportPlan> {
    let format = input.get("import_from_format");
    let Some(format) = format.and_then(Value::as_str) else {
        return Err(bad("Input does not contain a string 'import_from_format' field"));
    };
    if !schemas::disk_formats().contains(&format) {
        return Err(bad(format!("Invalid import_from_format '{format}': it should be one of the disk formats")));
    }
    let Some(props) = input.get("image_properties") else {
        return Err(bad("Input does not contain 'image_properties' field"));
    };
    let Value::Object(props) = props else {
        return Err(bad("'image_properties' must be an object"));
    };
    let invalid = |k: &str, v: &Value| bad(format!("Invalid value {v} for image property '{k}'"));
    let mut plan = ImportPlan {
        source,
        name: None,
        visibility: "shared".into(),
        protected: false,
        os_hidden: false,
        disk_format: format.to_string(),
        container_format: "bare".into(),
        min_disk: 0,
        min_ram: 0,
        tags: Vec::new(),
        properties: Map::new(),
    };
    for (k, v) in props {
        match k.as_str() {
            k if READ_ONLY.contains(&k) => return Err(forbidden(format!("Attribute '{k}' is read-only."))),
            k if k.starts_with("os_glance") => return Err(forbidden(format!("Attribute '{k}' is reserved."))),
            "name" => match v {
                Value::Null => plan.name = None,
                Value::String(s) if s.chars().count() <= 255 => plan.name = Some(s.clone()),
                _ => return Err(invalid(k, v)),
            },
            "visibility" => match v.as_str() {
                Some(s @ ("public" | "private" | "shared" | "community")) => plan.visibility = s.into(),
                _ => return Err(invalid(k, v)),
            },
            "protected" => plan.protected = v.as_bool().ok_or_else(|| invalid(k, v))?,
            "os_hidden" => plan.os_hidden = v.as_bool().ok_or_else(|| invalid(k, v))?,
            "min_disk" | "min_ram" => {
                let n = v.as_i64().filter(|n| (0..=i32::MAX as i64).contains(n)).ok_or_else(|| invalid(k, v))?;
                if k == "min_disk" {
                    plan.min_disk = n;
                } else {
                    plan.min_ram = n;
                }
            }
            "disk_format" => match v.as_str() {
                Some(s) if schemas::disk_formats().contains(&s) => plan.disk_format = s.into(),
                _ => return Err(invalid(k, v)),
            },
            "container_format" => match v.as_str() {
                Some(s) if schemas::container_formats().contains(&s) => plan.container_format = s.into(),
                _ => return Err(invalid(k, v)),
            },
            "tags" => {
                let Some(list) = v.as_array() else { return Err(invalid(k, v)) };
                for t in list {
                    match t.as_str() {
                        Some(s) if !s.is_empty() && s.chars().count() <= 255 => {
                            if !plan.tags.iter().any(|x| x == s) {
                                plan.tags.push(s.to_string());
                            }
                        }
                        _ => return Err(invalid(k, v)),
                    }
                }
            }
            _ => match v {
                Value::String(s) if k.chars().count() <= 255 && s.chars().count() <= 65535 => {
                    plan.properties.insert(k.clone(), v.clone());
                }
                _ => return Err(invalid(k, v)),
            },
        }
    }
    if plan.properties.len() > MAX_PROPERTIES {
        return Err(ImageError::TooLarge(format!("Maximum number of image properties exceeded: {MAX_PROPERTIES}.")));
    }
    if plan.tags.len() > MAX_TAGS {
        return Err(ImageError::TooLarge(format!("Maximum number of tags exceeded: {MAX_TAGS}.")));
    }
    Ok(plan)
}

async fn create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    request_id: Option<axum::Extension<RequestId>>,
    body: Bytes,
) -> Result<Response> {
    access(&svc, &ctx, "add_task")?;
    let body: Value = stratus_core::extract::parse_json(crate::error::STYLE, &body)?;
    let Value::Object(body) = body else {
        return Err(bad("Body expected in request."));
    };
    for k in ["type", "input"] {
        if !body.contains_key(k) {
            return Err(bad(format!("Task '{k}' is required")));
        }
    }
    if let Some(k) = body.keys().find(|k| !SCHEMA_KEYS.contains(&k.as_str())) {
        return Err(schema_error(&format!("Additional properties are not allowed ('{k}' was unexpected)")));
    }
    let kind = match &body["type"] {
        Value::String(s) if TYPES.contains(&s.as_str()) => s.clone(),
        Value::String(s) => return Err(bad(format!("Invalid type value: {s}. The only task type is 'import'."))),
        v => return Err(schema_error(&format!("{v} is not of type 'string'"))),
    };
    let input = match &body["input"] {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        v => return Err(schema_error(&format!("{v} is not of type 'null', 'object'"))),
    };
    let Some(owner) = ctx.project_id.clone() else {
        return Err(forbidden("Tasks belong to a project: a project-scoped token is required."));
    };
    // an import: from this cloud's own image data only, checked now rather than failing later
    let uri = match input.get("import_from") {
        Some(Value::String(u)) => u.clone(),
        _ => return Err(bad("Input does not contain a string 'import_from' field")),
    };
    let source = own_image(&svc, &uri).ok_or_else(|| not_filtered(&uri))?;
    let src = match svc.authorized(&ctx, &source, "download_image").await {
        Ok((img, _)) => img,
        Err(ImageError::NotFound(_)) => return Err(not_filtered(&uri)),
        Err(e) => return Err(e),
    };
    if src.status != "active" || super::locations(&src).is_empty() {
        return Err(bad(format!("Image {source} has no data to import from (status {}).", src.status)));
    }
    let plan = plan_properties(&input, source)?;
    let target = json!({"project_id": owner, "owner": owner, "visibility": plan.visibility});
    svc.enforce(&ctx, "add_image", &target)?;
    match plan.visibility.as_str() {
        "public" => svc.enforce(&ctx, "publicize_image", &target)?,
        "community" => svc.enforce(&ctx, "communitize_image", &target)?,
        _ => {}
    }
    let now = crate::store::now_us();
    let t = Task {
        id: uuid::Uuid::new_v4().to_string(),
        task_type: kind,
        status: "pending".into(),
        owner,
        expires_at: None,
        image_id: None,
        request_id: request_id.map(|r| r.0.0).filter(|r| !r.is_empty()),
        user_id: Some(ctx.user_id.clone()).filter(|u| !u.is_empty()),
        input: Some(Value::Object(input).to_string()),
        result: None,
        message: String::new(),
        created_at: now,
        updated_at: now,
    };
    tasks::insert(&svc.db, &t).await?;
    let mut resp = created(view(&t, true));
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/tasks/{}", t.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    let id = t.id.clone();
    let owner = t.owner.clone();
    tokio::spawn(async move {
        if let Err(e) = run(&svc, &id, &owner, plan).await {
            tracing::warn!(task = %id, error = %e, "import task could not record its outcome");
        }
    });
    Ok(resp)
}

/// Run an import task to its end, recording the outcome.
async fn run(svc: &ImageService, id: &str, owner: &str, plan: ImportPlan) -> Result<()> {
    if !tasks::transition(&svc.db, id, &["pending"], "processing", vec![]).await? {
        return Ok(());
    }
    let outcome = import(svc, owner, &plan).await;
    let expires = crate::store::now_us() + TASK_TIME_TO_LIVE;
    match outcome {
        Ok(image_id) => {
            let result = json!({"image_id": image_id}).to_string();
            let sets = vec![
                (task::Column::Result, Some(result).into()),
                (task::Column::ImageId, Some(image_id).into()),
                (task::Column::ExpiresAt, Some(expires).into()),
            ];
            tasks::transition(&svc.db, id, &["processing"], "success", sets).await?;
        }
        Err(message) => {
            tracing::info!(task = %id, reason = %message, "import task failed");
            let sets = vec![(task::Column::Message, message.into()), (task::Column::ExpiresAt, Some(expires).into())];
            tasks::transition(&svc.db, id, &["processing"], "failure", sets).await?;
        }
    }
    Ok(())
}

/// How many more bytes `owner` may store, capped by image_size_cap.
async fn byte_budget(svc: &ImageService, owner: &str) -> Result<u64> {
    let cap = svc.cfg.image.image_size_cap;
    let Some(limit_mib) = super::data::effective_limit(svc, owner, "image_size_total").await? else {
        return Ok(cap);
    };
    let (_, used) = images::usage(&svc.db, owner).await?;
    let left = (limit_mib.max(0) as u64 * 1024 * 1024).saturating_sub(used.max(0) as u64);
    if left == 0 {
        return Err(ImageError::TooLarge(format!(
            "Quota exceeded for image_size_total: {used} bytes of {limit_mib} MiB in use."
        )));
    }
    Ok(left.min(cap))
}

/// Make the new image and copy the source's data into it: the new image's id, or why not.
async fn import(svc: &ImageService, owner: &str, plan: &ImportPlan) -> std::result::Result<String, String> {
    let src = images::get(&svc.db, &plan.source)
        .await
        .map_err(|e| e.to_string())?
        .filter(|i| i.status == "active")
        .ok_or_else(|| format!("Image {} is no longer active: nothing to import.", plan.source))?;
    let loc = super::locations(&src).into_iter().next().ok_or("The source image has no data.")?;
    let (Some(url), Some(store_id)) = (loc["url"].as_str(), loc["metadata"]["store"].as_str()) else {
        return Err("The source image's location is malformed.".into());
    };
    let from = svc.stores.for_location(store_id).ok_or_else(|| format!("Unknown store {store_id}."))?.clone();
    svc.check_count_quota(owner).await.map_err(|e| e.to_string())?;
    let budget = byte_budget(svc, owner).await.map_err(|e| e.to_string())?;
    let now = crate::store::now_us();
    let img = Image {
        id: uuid::Uuid::new_v4().to_string(),
        name: plan.name.clone(),
        status: "queued".into(),
        visibility: plan.visibility.clone(),
        protected: plan.protected,
        os_hidden: plan.os_hidden,
        owner: Some(owner.to_string()),
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        size: None,
        virtual_size: None,
        disk_format: Some(plan.disk_format.clone()),
        container_format: Some(plan.container_format.clone()),
        min_disk: plan.min_disk,
        min_ram: plan.min_ram,
        properties: Value::Object(plan.properties.clone()).to_string(),
        locations: "[]".into(),
        staging: None,
        deleted: false,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let img = images::insert(&svc.db, img, &plan.tags).await.map_err(|e| e.to_string())?;
    let id = img.id.clone();
    let copied = copy_data(svc, &img, from.as_ref(), url, budget).await;
    if copied.is_err() {
        // a failed import leaves no image behind
        let _ = images::mark_deleted(&svc.db, &id).await;
    }
    copied.map(|_| id)
}

async fn copy_data(
    svc: &ImageService,
    img: &Image,
    from: &dyn crate::backend::Store,
    url: &str,
    budget: u64,
) -> std::result::Result<(), String> {
    let id = &img.id;
    if !images::transition(&svc.db, id, &["queued"], "saving", vec![]).await.map_err(|e| e.to_string())? {
        return Err(format!("Image {id} changed while it was imported."));
    }
    let source = from.open(url, None).await.map_err(|e| format!("Cannot read the source image: {e:#}"))?;
    let store = svc.stores.default_store().clone();
    let stored = match super::data::store_stream(store.as_ref(), id, img.disk_format.as_deref(), source, budget).await {
        Ok(s) => s,
        Err(super::data::StoreFailure::Broken(why)) => return Err(format!("Reading the source image failed: {why}")),
        Err(super::data::StoreFailure::Refused(e)) => return Err(e.to_string()),
    };
    let loc = Value::Array(vec![super::data::location(&stored.url, store.id())]).to_string();
    let sets = vec![
        (image::Column::Checksum, stored.digests.md5.into()),
        (image::Column::OsHashAlgo, "sha512".into()),
        (image::Column::OsHashValue, stored.digests.sha512.into()),
        (image::Column::Size, (stored.digests.size as i64).into()),
        (image::Column::VirtualSize, stored.virtual_size.map(|v| v as i64).into()),
        (image::Column::Locations, loc.into()),
    ];
    match images::transition(&svc.db, id, &["saving"], "active", sets).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            let _ = store.delete(&stored.url).await;
            Err(format!("Image {id} was deleted while it was imported."))
        }
        Err(e) => {
            let _ = store.delete(&stored.url).await;
            Err(e.to_string())
        }
    }
}
