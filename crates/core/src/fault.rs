//! OpenStack fault bodies. Each service renders its errors in its own style;
//! this is the one place that knows those styles.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// How a service shapes its error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStyle {
    /// Keystone: `{"error": {"code": 404, "message": "...", "title": "Not Found"}}`
    Identity,
    /// Nova, Cinder, Placement-like: `{"itemNotFound": {"code": 404, "message": "..."}}`
    Compute,
    /// Neutron: `{"NeutronError": {"type": "...", "message": "...", "detail": ""}}`
    Network,
    /// Glance: `{"message": "...", "code": "404 Not Found", "title": "Not Found"}`
    Image,
    /// Placement: `{"errors": [{"status": 404, "title": "Not Found", "detail": "...",
    /// "code": "placement.undefined_code", "request_id": "req-..."}]}`
    Placement,
}

/// An error on its way to the client: status, message, the service's style.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub style: FaultStyle,
    /// Neutron's `type` (e.g. `NetworkNotFound`) or Placement's error `code`
    /// (e.g. `placement.concurrent_update`); other styles ignore it.
    pub kind: Option<String>,
    /// Extra response headers (e.g. `WWW-Authenticate` on 401).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(style: FaultStyle, status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), style, kind: None, headers: Vec::new() }
    }
    pub fn bad_request(style: FaultStyle, message: impl Into<String>) -> Self {
        Self::new(style, StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(style: FaultStyle, message: impl Into<String>) -> Self {
        Self::new(style, StatusCode::NOT_FOUND, message)
    }
    /// Set Neutron's error type or Placement's error code.
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Nova's fault names by status.
fn compute_fault_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 => "overLimit",
        415 => "badMediaType",
        429 => "overLimit",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

pub fn fault_body(err: &ApiError) -> serde_json::Value {
    let code = err.status.as_u16();
    let title = err.status.canonical_reason().unwrap_or("Error");
    match err.style {
        FaultStyle::Identity => {
            json!({"error": {"code": code, "message": err.message, "title": title}})
        }
        FaultStyle::Compute => {
            json!({compute_fault_name(err.status): {"code": code, "message": err.message}})
        }
        FaultStyle::Network => json!({"NeutronError": {
            "type": err.kind.clone().unwrap_or_else(|| title.replace(' ', "")),
            "message": err.message,
            "detail": ""
        }}),
        FaultStyle::Image => {
            json!({"message": err.message, "code": format!("{code} {title}"), "title": title})
        }
        FaultStyle::Placement => json!({"errors": [{
            "status": code,
            "title": title,
            "detail": err.message,
            "code": err.kind.clone().unwrap_or_else(|| "placement.undefined_code".into()),
            "request_id": crate::http::current_request_id(),
        }]}),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(fault_body(&self))).into_response();
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                resp.headers_mut().insert(*name, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles() {
        let e = ApiError::not_found(FaultStyle::Identity, "Could not find user: x.");
        assert_eq!(fault_body(&e)["error"]["title"], "Not Found");
        assert_eq!(fault_body(&e)["error"]["code"], 404);
        let e = ApiError::not_found(FaultStyle::Compute, "Flavor 9 could not be found.");
        assert_eq!(fault_body(&e)["itemNotFound"]["code"], 404);
        let mut e = ApiError::new(FaultStyle::Network, StatusCode::CONFLICT, "in use");
        e.kind = Some("NetworkInUse".into());
        assert_eq!(fault_body(&e)["NeutronError"]["type"], "NetworkInUse");
    }
}
