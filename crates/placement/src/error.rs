//! The placement service's error type, mapped once to Placement's fault body
//! (`{"errors": [{"status", "title", "detail", "code", "request_id"}]}`).
//!
//! The store raises domain errors (`ConcurrentUpdate`, `InventoryInUse`,
//! `CapacityExceeded`, ...) with placement's own messages; handlers phrase
//! them for their operation (`Unable to allocate inventory: ...`) the way
//! placement's handlers do, or let the default mapping apply.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stratus_core::{ApiError, FaultStyle};

pub const STYLE: FaultStyle = FaultStyle::Placement;

/// Placement's error codes (`placement/errors.py`).
pub mod codes {
    pub const DEFAULT: &str = "placement.undefined_code";
    pub const INVENTORY_INUSE: &str = "placement.inventory.inuse";
    pub const CONCURRENT_UPDATE: &str = "placement.concurrent_update";
    pub const DUPLICATE_NAME: &str = "placement.duplicate_name";
    pub const PROVIDER_IN_USE: &str = "placement.resource_provider.inuse";
    pub const PROVIDER_CANNOT_DELETE_PARENT: &str = "placement.resource_provider.cannot_delete_parent";
    pub const RESOURCE_PROVIDER_NOT_FOUND: &str = "placement.resource_provider.not_found";
    pub const ILLEGAL_DUPLICATE_QUERYPARAM: &str = "placement.query.duplicate_key";
    pub const QUERYPARAM_BAD_VALUE: &str = "placement.query.bad_value";
    pub const QUERYPARAM_MISSING_VALUE: &str = "placement.query.missing_value";
}

#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("{message}")]
    Http { status: StatusCode, message: String, code: Option<&'static str> },
    #[error("{}", .0.message)]
    Api(ApiError),
    #[error("Another thread concurrently updated the data. Please retry your update")]
    ConcurrentUpdate,
    #[error("Inventory for '{classes}' on resource provider '{provider}' in use.")]
    InventoryInUse { classes: String, provider: String },
    #[error("Inventory for '{classes}' on resource provider '{provider}' invalid.")]
    InvalidInventory { classes: String, provider: String },
    #[error(
        "Unable to create allocation for '{rc}' on resource provider '{provider}'. The requested amount would exceed the capacity."
    )]
    CapacityExceeded { rc: String, provider: String },
    #[error(
        "Unable to create allocation for '{rc}' on resource provider '{provider}'. The requested amount would violate inventory constraints."
    )]
    ConstraintsViolated { rc: String, provider: String },
    #[error("No such resource class {0}.")]
    ResourceClassNotFound(String),
    #[error("No such trait(s): {0}.")]
    TraitNotFound(String),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, PlacementError>;

impl From<sea_orm::DbErr> for PlacementError {
    fn from(e: sea_orm::DbErr) -> Self {
        PlacementError::Internal(anyhow::Error::new(e))
    }
}

impl From<ApiError> for PlacementError {
    fn from(e: ApiError) -> Self {
        PlacementError::Api(e)
    }
}

pub fn status(status: StatusCode, message: impl Into<String>) -> PlacementError {
    PlacementError::Http { status, message: message.into(), code: None }
}

pub fn bad(message: impl Into<String>) -> PlacementError {
    status(StatusCode::BAD_REQUEST, message)
}

pub fn bad_code(message: impl Into<String>, code: &'static str) -> PlacementError {
    PlacementError::Http { status: StatusCode::BAD_REQUEST, message: message.into(), code: Some(code) }
}

pub fn not_found(message: impl Into<String>) -> PlacementError {
    status(StatusCode::NOT_FOUND, message)
}

pub fn conflict(message: impl Into<String>) -> PlacementError {
    status(StatusCode::CONFLICT, message)
}

pub fn conflict_code(message: impl Into<String>, code: &'static str) -> PlacementError {
    PlacementError::Http { status: StatusCode::CONFLICT, message: message.into(), code: Some(code) }
}

/// 404 for a provider that is not there, worded as placement words it.
pub fn provider_not_found(uuid: &str) -> PlacementError {
    not_found(format!("No resource provider with uuid {uuid} found"))
}

impl PlacementError {
    pub fn to_api(&self) -> ApiError {
        let (status, code) = match self {
            PlacementError::Http { status, code, .. } => (*status, *code),
            PlacementError::Api(e) => return e.clone(),
            PlacementError::ConcurrentUpdate => (StatusCode::CONFLICT, Some(codes::CONCURRENT_UPDATE)),
            PlacementError::InventoryInUse { .. } => (StatusCode::CONFLICT, Some(codes::INVENTORY_INUSE)),
            PlacementError::InvalidInventory { .. }
            | PlacementError::CapacityExceeded { .. }
            | PlacementError::ConstraintsViolated { .. } => (StatusCode::CONFLICT, None),
            PlacementError::ResourceClassNotFound(_) | PlacementError::TraitNotFound(_) => {
                (StatusCode::BAD_REQUEST, None)
            }
            PlacementError::Internal(e) => return stratus_core::http::internal(STYLE, &format!("{e:#}")),
        };
        ApiError::new(STYLE, status, self.to_string()).with_kind(code.unwrap_or(codes::DEFAULT))
    }
}

impl IntoResponse for PlacementError {
    fn into_response(self) -> Response {
        self.to_api().into_response()
    }
}
