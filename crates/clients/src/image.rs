//! The image service (Glance v2) as compute uses it: look up an image with
//! the caller's token (so visibility rules apply to the caller) plus the
//! service token, create snapshot images, upload their data, and, for Nova's
//! image proxy, list, patch and delete images.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

pub struct ImageClient {
    /// `http://host:9292`
    base: String,
    http: reqwest::Client,
}

/// Why an image lookup gave nothing.
#[derive(Debug, PartialEq)]
pub enum ImageLookup {
    Found(Value),
    NotFound,
}

/// What the image service said when it did not do what was asked.
#[derive(Debug)]
pub enum ImageError {
    /// It answered with this (non-success) status and message.
    Refused { status: u16, message: String },
    /// It could not be reached, or its answer could not be read.
    Failed(anyhow::Error),
}

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageError::Refused { status, message } => write!(f, "image service answered {status}: {message}"),
            ImageError::Failed(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for ImageError {}

impl From<reqwest::Error> for ImageError {
    fn from(e: reqwest::Error) -> Self {
        ImageError::Failed(anyhow::Error::new(e).context("image service unreachable"))
    }
}

/// The message of a Glance fault body (`{"message": ...}`), else the body itself.
fn fault_message(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    v.get("message")
        .or_else(|| v.get("error").and_then(|e| e.get("message")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| text.trim().to_string())
}

async fn refused(r: reqwest::Response) -> ImageError {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    ImageError::Refused { status, message: fault_message(&text) }
}

/// Glance's largest page.
const MAX_PAGE: usize = 1000;

impl ImageClient {
    pub fn new(base_url: &str) -> anyhow::Result<ImageClient> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(600)).build()?;
        Ok(ImageClient { base: base_url.trim_end_matches('/').to_string(), http })
    }

    fn req(&self, m: reqwest::Method, path: &str, token: &str, service_token: Option<&str>) -> reqwest::RequestBuilder {
        let mut r = self.http.request(m, format!("{}{path}", self.base)).header("x-auth-token", token);
        if let Some(s) = service_token {
            r = r.header("x-service-token", s);
        }
        r
    }

    /// `GET /v2/images/{id}` as the caller.
    pub async fn get(&self, id: &str, token: &str, service_token: Option<&str>) -> anyhow::Result<ImageLookup> {
        let r = self
            .req(reqwest::Method::GET, &format!("/v2/images/{id}"), token, service_token)
            .send()
            .await
            .context("image service unreachable")?;
        match r.status().as_u16() {
            200 => Ok(ImageLookup::Found(r.json().await?)),
            404 | 403 => Ok(ImageLookup::NotFound),
            s => bail!("image service answered {s} for image {id}"),
        }
    }

    /// `POST /v2/images`: a new (queued) image.
    pub async fn create(&self, body: &Value, token: &str, service_token: Option<&str>) -> anyhow::Result<Value> {
        let r = self
            .req(reqwest::Method::POST, "/v2/images", token, service_token)
            .json(body)
            .send()
            .await
            .context("image service unreachable")?;
        let status = r.status().as_u16();
        if status != 201 {
            let text = r.text().await.unwrap_or_default();
            bail!("image service refused the image ({status}): {text}");
        }
        Ok(r.json().await?)
    }

    /// `PUT /v2/images/{id}/file` from a local file, streamed.
    pub async fn upload(&self, id: &str, path: &std::path::Path, token: &str) -> anyhow::Result<()> {
        let file = tokio::fs::File::open(path).await?;
        let len = file.metadata().await?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let r = self
            .req(reqwest::Method::PUT, &format!("/v2/images/{id}/file"), token, None)
            .header("content-type", "application/octet-stream")
            .header("content-length", len)
            .body(body)
            .send()
            .await
            .context("image service unreachable")?;
        let status = r.status().as_u16();
        if status != 204 {
            let text = r.text().await.unwrap_or_default();
            bail!("image upload refused ({status}): {text}");
        }
        Ok(())
    }

    /// `GET /v2/images/{id}/file` into a local file, streamed; gives the bytes written.
    pub async fn download(
        &self,
        id: &str,
        dest: &std::path::Path,
        token: &str,
        service_token: Option<&str>,
    ) -> anyhow::Result<u64> {
        use tokio::io::AsyncWriteExt;
        let mut r = self
            .req(reqwest::Method::GET, &format!("/v2/images/{id}/file"), token, service_token)
            .send()
            .await
            .context("image service unreachable")?;
        let status = r.status().as_u16();
        if status != 200 {
            let text = r.text().await.unwrap_or_default();
            bail!("image download refused ({status}): {}", fault_message(&text));
        }
        let mut f = tokio::fs::File::create(dest).await?;
        let mut n = 0u64;
        while let Some(chunk) = r.chunk().await? {
            f.write_all(&chunk).await?;
            n += chunk.len() as u64;
        }
        f.flush().await?;
        f.sync_all().await?;
        Ok(n)
    }

    /// `DELETE /v2/images/{id}` (gone already is fine).
    pub async fn delete(&self, id: &str, token: &str) -> anyhow::Result<()> {
        let r = self.req(reqwest::Method::DELETE, &format!("/v2/images/{id}"), token, None).send().await?;
        match r.status().as_u16() {
            204 | 404 => Ok(()),
            s => bail!("image delete answered {s}"),
        }
    }

    /// `GET /v2/images?{query}`, following `next` links until `limit` images
    /// are in hand or the listing ends (the way glanceclient iterates).
    pub async fn list(
        &self,
        query: &[(String, String)],
        limit: usize,
        token: &str,
        service_token: Option<&str>,
    ) -> Result<Vec<Value>, ImageError> {
        let mut out: Vec<Value> = Vec::new();
        let mut params: Vec<(String, String)> = query.iter().filter(|(k, _)| k != "limit").cloned().collect();
        while out.len() < limit {
            let page = (limit - out.len()).min(MAX_PAGE);
            let mut q = params.clone();
            q.push(("limit".into(), page.to_string()));
            let qs = q.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
            let r = self.req(reqwest::Method::GET, &format!("/v2/images?{qs}"), token, service_token).send().await?;
            if r.status().as_u16() != 200 {
                return Err(refused(r).await);
            }
            let body: Value = r.json().await?;
            let images = body["images"].as_array().cloned().unwrap_or_default();
            let got = images.len();
            out.extend(images);
            // the next page: its marker, the same filters
            let Some(next) = body["next"].as_str() else { break };
            let Some(marker) = next_marker(next) else { break };
            if got == 0 {
                break;
            }
            params.retain(|(k, _)| k != "marker");
            params.push(("marker".into(), marker));
        }
        out.truncate(limit);
        Ok(out)
    }

    /// `GET /v2/images/{id}`, telling a refusal apart from an absence.
    pub async fn show(&self, id: &str, token: &str, service_token: Option<&str>) -> Result<Value, ImageError> {
        let r = self.req(reqwest::Method::GET, &format!("/v2/images/{id}"), token, service_token).send().await?;
        if r.status().as_u16() != 200 {
            return Err(refused(r).await);
        }
        Ok(r.json().await?)
    }

    /// `PATCH /v2/images/{id}` with a JSON patch (a list of operations).
    pub async fn update(
        &self,
        id: &str,
        patch: &Value,
        token: &str,
        service_token: Option<&str>,
    ) -> Result<Value, ImageError> {
        let r = self
            .req(reqwest::Method::PATCH, &format!("/v2/images/{id}"), token, service_token)
            .header("content-type", "application/openstack-images-v2.1-json-patch")
            .body(patch.to_string())
            .send()
            .await?;
        if r.status().as_u16() != 200 {
            return Err(refused(r).await);
        }
        Ok(r.json().await?)
    }

    /// `DELETE /v2/images/{id}`, reporting a 404 or 403 as such.
    pub async fn remove(&self, id: &str, token: &str, service_token: Option<&str>) -> Result<(), ImageError> {
        let r = self.req(reqwest::Method::DELETE, &format!("/v2/images/{id}"), token, service_token).send().await?;
        if r.status().as_u16() != 204 {
            return Err(refused(r).await);
        }
        Ok(())
    }
}

/// The `marker` of a Glance `next` link (`/v2/images?...&marker=ID...`).
fn next_marker(next: &str) -> Option<String> {
    let query = next.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "marker").then(|| percent_decode(v))
    })
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_give_their_marker() {
        assert_eq!(next_marker("/v2/images?name=a&marker=abc-1&limit=2").as_deref(), Some("abc-1"));
        assert_eq!(next_marker("/v2/images?marker=a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(next_marker("/v2/images?limit=2"), None);
        assert_eq!(next_marker("/v2/images"), None);
        assert_eq!(percent_decode(&encode("a b/c:d")), "a b/c:d");
    }

    #[test]
    fn fault_messages_are_read_from_glance_bodies() {
        assert_eq!(fault_message(r#"{"message": "No image found", "code": "404 Not Found"}"#), "No image found");
        assert_eq!(fault_message("plain words\n"), "plain words");
    }
}
