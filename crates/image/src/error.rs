//! The image service's error type, mapped once to Glance's fault body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stratus_core::{ApiError, FaultStyle};

pub const STYLE: FaultStyle = FaultStyle::Image;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Status(StatusCode, String),
    #[error("{}", .0.message)]
    Api(ApiError),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, ImageError>;

impl From<sea_orm::DbErr> for ImageError {
    fn from(e: sea_orm::DbErr) -> Self {
        ImageError::Internal(anyhow::Error::new(e))
    }
}

impl From<ApiError> for ImageError {
    fn from(e: ApiError) -> Self {
        ImageError::Api(e)
    }
}

impl From<std::io::Error> for ImageError {
    fn from(e: std::io::Error) -> Self {
        ImageError::Internal(anyhow::Error::new(e))
    }
}

pub fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::BadRequest(msg.into())
}

pub fn forbidden(msg: impl Into<String>) -> ImageError {
    ImageError::Forbidden(msg.into())
}

pub fn conflict(msg: impl Into<String>) -> ImageError {
    ImageError::Conflict(msg.into())
}

pub fn image_not_found(id: &str) -> ImageError {
    ImageError::NotFound(format!("No image found with ID {id}"))
}

pub fn not_found(msg: impl Into<String>) -> ImageError {
    ImageError::NotFound(msg.into())
}

impl ImageError {
    pub fn to_api(&self) -> ApiError {
        let status = match self {
            ImageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ImageError::Forbidden(_) => StatusCode::FORBIDDEN,
            ImageError::NotFound(_) => StatusCode::NOT_FOUND,
            ImageError::Conflict(_) => StatusCode::CONFLICT,
            ImageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ImageError::Status(s, _) => *s,
            ImageError::Api(e) => return e.clone(),
            ImageError::Internal(e) => return stratus_core::http::internal(STYLE, &format!("{e:#}")),
        };
        ApiError::new(STYLE, status, self.to_string())
    }
}

impl IntoResponse for ImageError {
    fn into_response(self) -> Response {
        self.to_api().into_response()
    }
}
