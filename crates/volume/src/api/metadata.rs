//! The metadata API of a resource (volumes, snapshots), over its metadata
//! as a map: each function checks the request body as Cinder does and
//! gives the map to store (for writes) and the answer to give once stored.
//! The handlers load the resource (with their own policy), store the map
//! and answer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::api::{metadata_from, ok};
use crate::error::{Result, bad, not_found};

/// `GET .../metadata`: the whole map.
pub fn show(m: Map<String, Value>) -> Response {
    ok(json!({"metadata": Value::Object(m)}))
}

/// `POST .../metadata`: the body's `metadata` merged over `m`.
pub fn merge(mut m: Map<String, Value>, body: &Value) -> Result<(Map<String, Value>, Response)> {
    m.extend(metadata_from(body.get("metadata").unwrap_or(&Value::Null))?);
    let answer = show(m.clone());
    Ok((m, answer))
}

/// `PUT .../metadata`: the body's `metadata` in place of the old.
pub fn replace(body: &Value) -> Result<(Map<String, Value>, Response)> {
    let m = metadata_from(body.get("metadata").unwrap_or(&Value::Null))?;
    let answer = show(m.clone());
    Ok((m, answer))
}

/// `GET .../metadata/{key}`: one item (404 when absent).
pub fn item(m: &Map<String, Value>, key: &str) -> Result<Response> {
    let val = m.get(key).ok_or_else(|| not_found("Metadata item was not found"))?;
    Ok(ok(json!({"meta": {key: val}})))
}

/// `PUT .../metadata/{key}`: the body's `meta`, exactly the one item `key`,
/// set in `m`.
pub fn item_set(mut m: Map<String, Value>, key: &str, body: &Value) -> Result<(Map<String, Value>, Response)> {
    let item = metadata_from(body.get("meta").unwrap_or(&Value::Null))?;
    if item.len() != 1 {
        return Err(bad("Request body contains too many items."));
    }
    if !item.contains_key(key) {
        return Err(bad("Request body and URI mismatch"));
    }
    m.extend(item.clone());
    Ok((m, ok(json!({"meta": Value::Object(item)}))))
}

/// `DELETE .../metadata/{key}`: `m` without `key` (404 when absent); the
/// answer is 200 with an empty body, as Cinder's.
pub fn item_delete(mut m: Map<String, Value>, key: &str) -> Result<(Map<String, Value>, Response)> {
    if m.remove(key).is_none() {
        return Err(not_found("Metadata item was not found"));
    }
    Ok((m, StatusCode::OK.into_response()))
}
