//! API microversions (`OpenStack-API-Version: compute 2.79`, Nova's legacy
//! `X-OpenStack-Nova-API-Version: 2.79`): parsed once by a layer, checked
//! against the service's range (400 when malformed, 406 when out of range),
//! handed to handlers as the [`Microversion`] extractor, and echoed on every
//! response with `Vary`.

use std::fmt;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;

use crate::extract::style_of;
use crate::fault::ApiError;

/// A microversion `major.minor`; ordered, so `mv >= Microversion(2, 47)` reads as it should.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion(pub u16, pub u16);

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl Microversion {
    /// Parse `X.Y` (no leading zeros beyond `0`, no sign, no spaces inside).
    pub fn parse(s: &str) -> Option<Microversion> {
        let (a, b) = s.trim().split_once('.')?;
        let num = |p: &str| -> Option<u16> {
            if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) || (p.len() > 1 && p.starts_with('0')) {
                return None;
            }
            p.parse().ok()
        };
        Some(Microversion(num(a)?, num(b)?))
    }

    /// `self >= X.Y`.
    pub fn at_least(&self, major: u16, minor: u16) -> bool {
        *self >= Microversion(major, minor)
    }
}

/// The versions a service speaks and how it names them in headers.
#[derive(Clone, Copy, Debug)]
pub struct VersionRange {
    /// The service type in `OpenStack-API-Version: <service> X.Y`.
    pub service: &'static str,
    pub min: Microversion,
    pub max: Microversion,
    /// A legacy header also read and echoed (Nova's `X-OpenStack-Nova-API-Version`).
    pub legacy_header: Option<&'static str>,
}

const STANDARD: &str = "openstack-api-version";

/// What the client asked for: `None` when it named no version.
fn requested(range: &VersionRange, headers: &HeaderMap) -> Result<Option<String>, String> {
    for value in headers.get_all(STANDARD) {
        let Ok(text) = value.to_str() else {
            return Err("Invalid OpenStack-API-Version header".into());
        };
        // a header may list several services: "compute 2.1, placement 1.4"
        for item in text.split(',') {
            let mut parts = item.split_whitespace();
            let (Some(svc), ver) = (parts.next(), parts.next()) else {
                continue;
            };
            if svc.eq_ignore_ascii_case(range.service) {
                return match ver {
                    Some(v) if parts.next().is_none() => Ok(Some(v.to_string())),
                    _ => Err(format!("Invalid OpenStack-API-Version header: {}", text.trim())),
                };
            }
        }
    }
    if let Some(legacy) = range.legacy_header
        && let Some(v) = headers.get(legacy)
    {
        return v.to_str().map(|s| Some(s.trim().to_string())).map_err(|_| format!("Invalid {legacy} header"));
    }
    Ok(None)
}

/// Decide the version of one request.
pub fn negotiate(range: &VersionRange, headers: &HeaderMap) -> Result<Microversion, (StatusCode, String)> {
    let asked = requested(range, headers).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
    let Some(asked) = asked else {
        return Ok(range.min);
    };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(range.max);
    }
    let Some(v) = Microversion::parse(&asked) else {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("API Version String {asked} is of invalid format. Must be of format MajorNum.MinorNum."),
        ));
    };
    if v < range.min || v > range.max {
        return Err((
            StatusCode::NOT_ACCEPTABLE,
            format!("Version {v} is not supported by the API. Minimum is {} and maximum is {}.", range.min, range.max),
        ));
    }
    Ok(v)
}

fn echo(range: &VersionRange, v: Microversion, headers: &mut HeaderMap) {
    if let Ok(h) = HeaderValue::from_str(&format!("{} {v}", range.service)) {
        headers.insert(STANDARD, h);
    }
    headers.append(header::VARY, HeaderValue::from_static("OpenStack-API-Version"));
    if let Some(legacy) = range.legacy_header
        && let Ok(h) = HeaderValue::from_str(&v.to_string())
    {
        headers.insert(legacy, h);
        if let Ok(vary) = HeaderValue::from_str(legacy) {
            headers.append(header::VARY, vary);
        }
    }
}

/// The middleware: negotiate, store the version in the request, echo it on the response.
pub fn layer(
    range: VersionRange,
) -> axum::middleware::FromFnLayer<
    impl Fn(Request, Next) -> BoxFuture<'static, Response> + Clone + Send + Sync + 'static,
    (),
    (Request,),
> {
    axum::middleware::from_fn(move |mut req: Request, next: Next| {
        Box::pin(async move {
            let v = match negotiate(&range, req.headers()) {
                Ok(v) => v,
                Err((status, msg)) => {
                    let mut resp = ApiError::new(style_of(req.extensions()), status, msg).into_response();
                    echo(&range, range.min, resp.headers_mut());
                    return resp;
                }
            };
            req.extensions_mut().insert(v);
            let mut resp = next.run(req).await;
            echo(&range, v, resp.headers_mut());
            resp
        }) as BoxFuture<'static, Response>
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Microversion {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Microversion>().copied().ok_or_else(|| {
            crate::http::internal(style_of(&parts.extensions), &"microversion layer missing on this route")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOVA: VersionRange = VersionRange {
        service: "compute",
        min: Microversion(2, 1),
        max: Microversion(2, 96),
        legacy_header: Some("x-openstack-nova-api-version"),
    };

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")));
        }
        m
    }

    #[test]
    fn parse_and_order() {
        assert_eq!(Microversion::parse("2.10"), Some(Microversion(2, 10)));
        assert!(Microversion(2, 10) > Microversion(2, 9));
        for bad in ["2", "2.", ".1", "2.01", "a.b", "2.1.1", "-2.1", ""] {
            assert_eq!(Microversion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&NOVA, &h(&[])), Ok(Microversion(2, 1)));
        assert_eq!(negotiate(&NOVA, &h(&[("openstack-api-version", "compute 2.53")])), Ok(Microversion(2, 53)));
        assert_eq!(negotiate(&NOVA, &h(&[("x-openstack-nova-api-version", "2.20")])), Ok(Microversion(2, 20)));
        assert_eq!(negotiate(&NOVA, &h(&[("openstack-api-version", "compute latest")])), Ok(Microversion(2, 96)));
        // the standard header wins over the legacy one
        assert_eq!(
            negotiate(&NOVA, &h(&[("openstack-api-version", "compute 2.3"), ("x-openstack-nova-api-version", "2.20")])),
            Ok(Microversion(2, 3))
        );
        // another service's version is not ours
        assert_eq!(negotiate(&NOVA, &h(&[("openstack-api-version", "placement 1.9")])), Ok(Microversion(2, 1)));
        assert_eq!(
            negotiate(&NOVA, &h(&[("openstack-api-version", "placement 1.9, compute 2.7")])),
            Ok(Microversion(2, 7))
        );
        assert_eq!(
            negotiate(&NOVA, &h(&[("openstack-api-version", "compute 3.0")])).map_err(|e| e.0),
            Err(StatusCode::NOT_ACCEPTABLE)
        );
        assert_eq!(
            negotiate(&NOVA, &h(&[("openstack-api-version", "compute 2.0")])).map_err(|e| e.0),
            Err(StatusCode::NOT_ACCEPTABLE)
        );
        assert_eq!(
            negotiate(&NOVA, &h(&[("openstack-api-version", "compute 2.x")])).map_err(|e| e.0),
            Err(StatusCode::BAD_REQUEST)
        );
    }
}
