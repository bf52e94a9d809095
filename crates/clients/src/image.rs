//! The image service (Glance v2) as compute uses it: look up an image with
//! the caller's token (so visibility rules apply to the caller) plus the
//! service token, create snapshot images, upload their data.

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

    /// `DELETE /v2/images/{id}` (gone already is fine).
    pub async fn delete(&self, id: &str, token: &str) -> anyhow::Result<()> {
        let r = self.req(reqwest::Method::DELETE, &format!("/v2/images/{id}"), token, None).send().await?;
        match r.status().as_u16() {
            204 | 404 => Ok(()),
            s => bail!("image delete answered {s}"),
        }
    }
}
