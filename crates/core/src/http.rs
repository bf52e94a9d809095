//! The HTTP conventions every service shares: `x-openstack-request-id`,
//! `Vary: X-Auth-Token`, an access log, a body-size limit, CORS when asked
//! for, 404/405 faults in the service's style, and panics turned into 500s.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::fault::{ApiError, FaultStyle};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-openstack-request-id");

tokio::task_local! {
    static CURRENT_REQUEST_ID: String;
}

/// The request id of the request this task serves (empty outside a request).
pub fn current_request_id() -> String {
    CURRENT_REQUEST_ID.try_with(|s| s.clone()).unwrap_or_default()
}

/// The id of the request being served: `req-<uuid>`.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Settings shared by every service's HTTP front.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub max_body_bytes: usize,
    pub cors_allowed_origins: Vec<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions { max_body_bytes: 1024 * 1024, cors_allowed_origins: Vec::new() }
    }
}

/// Wrap a service's routes with the shared layers.
pub fn service(name: &'static str, style: FaultStyle, routes: Router, opts: &HttpOptions) -> Router {
    let mut router = routes
        .fallback(move || async move { ApiError::not_found(style, "The resource could not be found.") })
        .method_not_allowed_fallback(move || async move {
            ApiError::new(style, StatusCode::METHOD_NOT_ALLOWED, "The method is not allowed for the requested URL.")
        })
        .layer(CatchPanicLayer::custom(move |_| {
            ApiError::new(
                style,
                StatusCode::INTERNAL_SERVER_ERROR,
                "An unexpected error prevented the server from fulfilling your request.",
            )
            .into_response()
        }))
        .layer(DefaultBodyLimit::max(opts.max_body_bytes));
    if !opts.cors_allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> =
            opts.cors_allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods(tower_http::cors::Any)
                .allow_headers(tower_http::cors::Any)
                .expose_headers([REQUEST_ID, HeaderName::from_static("x-subject-token")]),
        );
    }
    router.layer(middleware::from_fn(move |req: Request, next: Next| access(name, style, req, next)))
}

async fn access(service: &'static str, style: FaultStyle, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = format!("req-{}", uuid::Uuid::new_v4());
    req.extensions_mut().insert(RequestId(id.clone()));
    req.extensions_mut().insert(style);
    // what access rules of application credentials are checked against
    req.extensions_mut().insert(crate::access_rules::ServiceName(service));
    if req.extensions().get::<crate::access_rules::RequestPath>().is_none() {
        let path = crate::access_rules::RequestPath(req.uri().path().to_string());
        req.extensions_mut().insert(path);
    }
    let method = req.method().clone();
    // the path only: query strings may carry secrets in some APIs
    let path = req.uri().path().to_string();
    let mut resp = CURRENT_REQUEST_ID.scope(id.clone(), next.run(req)).await;
    let status = resp.status();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, v);
    }
    headers.append(header::VARY, HeaderValue::from_static("X-Auth-Token"));
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::error!(target: "access", %service, request_id = %id, %method, %path, status = status.as_u16(), ms, "request failed");
    } else {
        tracing::info!(target: "access", %service, request_id = %id, %method, %path, status = status.as_u16(), ms);
    }
    resp
}

/// Report an internal error: logged with its cause and the request id, answered with a 500.
pub fn internal(style: FaultStyle, cause: &dyn std::fmt::Display) -> ApiError {
    let request_id = current_request_id();
    let request_id = request_id.as_str();
    tracing::error!(request_id, error = %cause, "internal error");
    ApiError::new(
        style,
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("An unexpected error prevented the server from fulfilling your request. (request id {request_id})"),
    )
}

/// Bind and serve until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
