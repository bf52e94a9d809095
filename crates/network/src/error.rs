//! The network service's error type, mapped once to Neutron's fault body:
//! `{"NeutronError": {"type": "NetworkNotFound", "message": "...", "detail": ""}}`.
//!
//! Every error carries Neutron's exception name as its `type` (clients such as
//! openstacksdk and Tempest read it).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stratus_core::{ApiError, FaultStyle};

pub const STYLE: FaultStyle = FaultStyle::Network;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A client error: status, Neutron's exception name, message.
    #[error("{2}")]
    Client(StatusCode, &'static str, String),
    #[error("{}", .0.message)]
    Api(ApiError),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, NetworkError>;

impl From<sea_orm::DbErr> for NetworkError {
    fn from(e: sea_orm::DbErr) -> Self {
        NetworkError::Internal(anyhow::Error::new(e))
    }
}

impl From<ApiError> for NetworkError {
    fn from(e: ApiError) -> Self {
        NetworkError::Api(e)
    }
}

/// 400 `HTTPBadRequest`: invalid input.
pub fn bad(msg: impl Into<String>) -> NetworkError {
    NetworkError::Client(StatusCode::BAD_REQUEST, "HTTPBadRequest", msg.into())
}

/// 400 as Neutron words an invalid attribute value.
pub fn invalid(attr: &str, why: impl std::fmt::Display) -> NetworkError {
    bad(format!("Invalid input for {attr}. Reason: {why}."))
}

/// 400 with a specific Neutron exception name (`InvalidAllocationPool`, ...).
pub fn bad_kind(kind: &'static str, msg: impl Into<String>) -> NetworkError {
    NetworkError::Client(StatusCode::BAD_REQUEST, kind, msg.into())
}

/// 404 with Neutron's exception name (`NetworkNotFound`, `PortNotFound`, ...).
pub fn not_found(kind: &'static str, msg: impl Into<String>) -> NetworkError {
    NetworkError::Client(StatusCode::NOT_FOUND, kind, msg.into())
}

/// 409 with Neutron's exception name (`NetworkInUse`, `IpAddressAlreadyAllocated`, ...).
pub fn conflict(kind: &'static str, msg: impl Into<String>) -> NetworkError {
    NetworkError::Client(StatusCode::CONFLICT, kind, msg.into())
}

/// 403: the policy forbids it.
pub fn forbidden(msg: impl Into<String>) -> NetworkError {
    NetworkError::Client(StatusCode::FORBIDDEN, "HTTPForbidden", msg.into())
}

/// 409 `OverQuota`, in Neutron's words.
pub fn over_quota(resource: &str) -> NetworkError {
    conflict("OverQuota", format!("Quota exceeded for resources: ['{resource}']."))
}

/// 412 on an `If-Match` revision mismatch.
pub fn precondition_failed(msg: impl Into<String>) -> NetworkError {
    NetworkError::Client(StatusCode::PRECONDITION_FAILED, "RevisionNumberConstraintFailed", msg.into())
}

impl NetworkError {
    pub fn to_api(&self) -> ApiError {
        match self {
            NetworkError::Client(status, kind, msg) => ApiError::new(STYLE, *status, msg.clone()).with_kind(*kind),
            NetworkError::Api(e) => e.clone(),
            NetworkError::Internal(e) => stratus_core::http::internal(STYLE, &format!("{e:#}")),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            NetworkError::Client(s, _, _) => *s,
            NetworkError::Api(e) => e.status,
            NetworkError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for NetworkError {
    fn into_response(self) -> Response {
        self.to_api().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutron_fault_body() {
        let e = not_found("NetworkNotFound", "Network 1 could not be found.").to_api();
        let body = stratus_core::fault::fault_body(&e);
        assert_eq!(body["NeutronError"]["type"], "NetworkNotFound");
        assert_eq!(body["NeutronError"]["message"], "Network 1 could not be found.");
        assert_eq!(body["NeutronError"]["detail"], "");
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }
}
