//! The compute service's error type, mapped once to Nova's fault body
//! (`{"itemNotFound": {"code": 404, "message": "..."}}`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stratus_core::{ApiError, FaultStyle};

pub const STYLE: FaultStyle = FaultStyle::Compute;

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Quota exceeded: 403 as Nova answers it.
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

pub type Result<T> = std::result::Result<T, ComputeError>;

impl From<sea_orm::DbErr> for ComputeError {
    fn from(e: sea_orm::DbErr) -> Self {
        ComputeError::Internal(anyhow::Error::new(e))
    }
}

impl From<ApiError> for ComputeError {
    fn from(e: ApiError) -> Self {
        ComputeError::Api(e)
    }
}

pub fn bad(msg: impl Into<String>) -> ComputeError {
    ComputeError::BadRequest(msg.into())
}

pub fn forbidden(msg: impl Into<String>) -> ComputeError {
    ComputeError::Forbidden(msg.into())
}

pub fn not_found(msg: impl Into<String>) -> ComputeError {
    ComputeError::NotFound(msg.into())
}

pub fn conflict(msg: impl Into<String>) -> ComputeError {
    ComputeError::Conflict(msg.into())
}

pub fn server_not_found(id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Instance {id} could not be found."))
}

/// Nova's 409 for an action the server's state does not allow.
pub fn invalid_state(action: &str, server_id: &str, attr: &str, state: &str) -> ComputeError {
    ComputeError::Conflict(format!("Cannot '{action}' instance {server_id} while it is in {attr} {state}"))
}

impl ComputeError {
    pub fn to_api(&self) -> ApiError {
        let status = match self {
            ComputeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ComputeError::Forbidden(_) | ComputeError::OverQuota(_) => StatusCode::FORBIDDEN,
            ComputeError::NotFound(_) => StatusCode::NOT_FOUND,
            ComputeError::Conflict(_) => StatusCode::CONFLICT,
            ComputeError::Status(s, _) => *s,
            ComputeError::Api(e) => return e.clone(),
            ComputeError::Internal(e) => return stratus_core::http::internal(STYLE, &format!("{e:#}")),
        };
        ApiError::new(STYLE, status, self.to_string())
    }
}

impl IntoResponse for ComputeError {
    fn into_response(self) -> Response {
        self.to_api().into_response()
    }
}
