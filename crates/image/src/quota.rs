//! Quotas from unified limits (Keystone `/v3/limits`), as Glance's
//! `use_keystone_limits`: `image_count_total`, `image_size_total` (MiB),
//! `image_stage_total` (MiB), `image_count_uploading`.

use futures::future::BoxFuture;

/// Where a project's limit for a resource comes from.
pub trait LimitSource: Send + Sync + 'static {
    /// The project's limit for `resource` (`None`: no limit registered).
    fn limit<'a>(&'a self, project_id: &'a str, resource: &'a str) -> BoxFuture<'a, anyhow::Result<Option<i64>>>;
}

/// No limits at all (tests, or a cloud without unified limits).
pub struct Unlimited;

impl LimitSource for Unlimited {
    fn limit<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, anyhow::Result<Option<i64>>> {
        Box::pin(async { Ok(None) })
    }
}
