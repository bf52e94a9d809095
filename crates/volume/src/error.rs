//! The block storage error type, mapped once to Cinder's fault body
//! (`{"itemNotFound": {"code": 404, "message": "..."}}`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stratus_core::{ApiError, FaultStyle};

pub const STYLE: FaultStyle = FaultStyle::Compute;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Quota exceeded: 413 as Cinder answers it.
    #[error("{0}")]
    OverQuota(String),
    /// Any other status, with its message.
    #[error("{1}")]
    Status(StatusCode, String),
    #[error("{}", .0.message)]
    Api(ApiError),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, VolumeError>;

impl From<sea_orm::DbErr> for VolumeError {
    fn from(e: sea_orm::DbErr) -> Self {
        VolumeError::Internal(anyhow::Error::new(e))
    }
}

impl From<ApiError> for VolumeError {
    fn from(e: ApiError) -> Self {
        VolumeError::Api(e)
    }
}

pub fn bad(msg: impl Into<String>) -> VolumeError {
    VolumeError::BadRequest(msg.into())
}

pub fn forbidden(msg: impl Into<String>) -> VolumeError {
    VolumeError::Forbidden(msg.into())
}

pub fn not_found(msg: impl Into<String>) -> VolumeError {
    VolumeError::NotFound(msg.into())
}

pub fn conflict(msg: impl Into<String>) -> VolumeError {
    VolumeError::Conflict(msg.into())
}

/// Cinder's 404 for a missing resource: `Volume {id} could not be found.`
pub fn missing(kind: &str, id: &str) -> VolumeError {
    VolumeError::NotFound(format!("{kind} {id} could not be found."))
}

/// Cinder's 400 for an action the volume's state does not allow.
pub fn invalid_volume(msg: impl Into<String>) -> VolumeError {
    VolumeError::BadRequest(format!("Invalid volume: {}", msg.into()))
}

pub fn over_quota(msg: impl Into<String>) -> VolumeError {
    VolumeError::OverQuota(msg.into())
}

impl VolumeError {
    pub fn to_api(&self) -> ApiError {
        let status = match self {
            VolumeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            VolumeError::Forbidden(_) => StatusCode::FORBIDDEN,
            VolumeError::OverQuota(_) => StatusCode::PAYLOAD_TOO_LARGE,
            VolumeError::NotFound(_) => StatusCode::NOT_FOUND,
            VolumeError::Conflict(_) => StatusCode::CONFLICT,
            VolumeError::Status(s, _) => *s,
            VolumeError::Api(e) => return e.clone(),
            VolumeError::Internal(e) => return stratus_core::http::internal(STYLE, &format!("{e:#}")),
        };
        ApiError::new(STYLE, status, self.to_string())
    }
}

impl IntoResponse for VolumeError {
    fn into_response(self) -> Response {
        self.to_api().into_response()
    }
}
