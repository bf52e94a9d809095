//! Identity's error type, mapped once to Keystone's fault body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stratus_core::{ApiError, FaultStyle};

pub const STYLE: FaultStyle = FaultStyle::Identity;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    Validation(String),
    #[error("The request you have made requires authentication.")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("Could not find {kind}: {id}.")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    NotFoundMsg(String),
    #[error("Conflict occurred attempting to store {kind} - {detail}.")]
    Conflict { kind: &'static str, detail: String },
    #[error("{0}")]
    ConflictMsg(String),
    #[error("{}", .0.message)]
    Api(ApiError),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, IdentityError>;

impl From<sea_orm::DbErr> for IdentityError {
    fn from(e: sea_orm::DbErr) -> Self {
        IdentityError::Internal(anyhow::Error::new(e))
    }
}

impl From<ApiError> for IdentityError {
    fn from(e: ApiError) -> Self {
        IdentityError::Api(e)
    }
}

pub fn not_found(kind: &'static str, id: impl Into<String>) -> IdentityError {
    IdentityError::NotFound { kind, id: id.into() }
}

pub fn bad(msg: impl Into<String>) -> IdentityError {
    IdentityError::Validation(msg.into())
}

pub fn conflict(kind: &'static str, detail: impl Into<String>) -> IdentityError {
    IdentityError::Conflict { kind, detail: detail.into() }
}

impl IdentityError {
    pub fn to_api(&self) -> ApiError {
        match self {
            IdentityError::Validation(m) => ApiError::new(STYLE, StatusCode::BAD_REQUEST, m.clone()),
            IdentityError::Unauthorized(_) => ApiError::new(STYLE, StatusCode::UNAUTHORIZED, self.to_string())
                .with_header("www-authenticate", "Keystone uri=\"/v3\""),
            IdentityError::Forbidden(m) => ApiError::new(STYLE, StatusCode::FORBIDDEN, m.clone()),
            IdentityError::NotFound { .. } | IdentityError::NotFoundMsg(_) => {
                ApiError::new(STYLE, StatusCode::NOT_FOUND, self.to_string())
            }
            IdentityError::Conflict { .. } | IdentityError::ConflictMsg(_) => {
                ApiError::new(STYLE, StatusCode::CONFLICT, self.to_string())
            }
            IdentityError::Api(e) => e.clone(),
            IdentityError::Internal(e) => stratus_core::http::internal(STYLE, &format!("{e:#}")),
        }
    }
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        // Unauthorized detail is logged, never sent: it could help an attacker.
        if let IdentityError::Unauthorized(detail) = &self {
            tracing::info!(reason = %detail, "authentication refused");
        }
        self.to_api().into_response()
    }
}

/// A write whose uniqueness violation is a 409 made by `on_conflict`; other errors pass through.
pub fn or_conflict<T>(
    r: std::result::Result<T, sea_orm::DbErr>,
    on_conflict: impl FnOnce() -> IdentityError,
) -> Result<T> {
    match r {
        Ok(v) => Ok(v),
        Err(e) if stratus_db::is_unique_violation(&e) => Err(on_conflict()),
        Err(e) => Err(e.into()),
    }
}

/// An idempotent insert: a row that already exists is success.
pub fn ignore_duplicate<T>(r: std::result::Result<T, sea_orm::DbErr>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if stratus_db::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
