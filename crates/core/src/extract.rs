//! Extractors that turn malformed input into a 400 fault naming the field,
//! in the style of the service that received it (never axum's 422).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::fault::{ApiError, FaultStyle};
use crate::http::RequestId;

/// The fault style of the service handling this request (set by [`crate::http::service`]).
pub fn style_of(ext: &axum::http::Extensions) -> FaultStyle {
    ext.get::<FaultStyle>().copied().unwrap_or(FaultStyle::Identity)
}

/// The request id of this request (set by [`crate::http::service`]).
pub fn request_id_of(ext: &axum::http::Extensions) -> String {
    ext.get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default()
}

/// Describe a deserialization failure by its JSON path, in words a client understands.
pub fn describe_json_error(path: &str, err: &serde_json::Error) -> String {
    let inner = err.to_string();
    // serde's messages carry "at line X column Y"; the field path says more.
    let inner = inner.split(" at line ").next().unwrap_or(&inner).to_string();
    if path.is_empty() || path == "." {
        format!("Invalid input: {inner}")
    } else {
        format!("Invalid input for field '{path}': {inner}")
    }
}

/// Parse a JSON body; errors become 400 faults that name the offending field.
pub fn parse_json<T: DeserializeOwned>(style: FaultStyle, body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request(style, "The request body is empty; a JSON object is required."));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(style, describe_json_error(&path, e.inner()))
    })
}

/// `Json<T>` that answers malformed bodies with a 400 fault in the service's style.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let style = style_of(req.extensions());
        let bytes =
            Bytes::from_request(req, state).await.map_err(|e| ApiError::new(style, e.status(), e.body_text()))?;
        parse_json(style, &bytes).map(Json)
    }
}

/// `Query<T>` that answers bad query strings with a 400 fault naming the parameter.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let style = style_of(&parts.extensions);
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded_de(q);
        de.map(Query).map_err(|m| ApiError::bad_request(style, m))
    }
}

fn serde_urlencoded_de<T: DeserializeOwned>(q: &str) -> Result<T, String> {
    // axum re-exports serde_urlencoded's behaviour through its Query extractor;
    // go through it and keep its message, which names the parameter.
    let uri: axum::http::Uri = format!("/?{q}").parse().map_err(|_| "Invalid query string".to_string())?;
    axum::extract::Query::<T>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|e| format!("Invalid query string: {}", e.body_text()))
}

/// All query parameters as ordered (key, value) pairs, repeated keys kept.
pub struct RawQuery(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for RawQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let style = style_of(&parts.extensions);
        let q = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded_de(q).map_err(|m| ApiError::bad_request(style, m))?;
        Ok(RawQuery(pairs))
    }
}

impl RawQuery {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
    /// A boolean flag the way OpenStack reads it: present and not a false word.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).map(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Outer {
        user: Inner,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        enabled: Option<bool>,
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<Outer>(FaultStyle::Identity, br#"{"user": {"name": "a", "enabled": "yes"}}"#).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("user.enabled"), "{}", e.message);
        let e = parse_json::<Outer>(FaultStyle::Identity, br#"{"user": {}}"#).unwrap_err();
        assert!(e.message.contains("name"), "{}", e.message);
        let e = parse_json::<Outer>(FaultStyle::Identity, b"{not json").unwrap_err();
        assert_eq!(e.status, 400);
        let e = parse_json::<Outer>(FaultStyle::Identity, b"").unwrap_err();
        assert_eq!(e.status, 400);
    }
}
