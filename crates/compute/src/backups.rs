//! Backup rotation (createBackup): a server keeps at most `rotation` backup
//! images of each `backup_type`; once a new one is uploaded the oldest
//! beyond that are deleted, the way Nova's compute manager rotates them.

use stratus_clients::ImageClient;

/// Of backups listed newest first, the ones beyond `rotation` (the oldest).
pub fn excess(newest_first: &[String], rotation: i64) -> &[String] {
    let keep = usize::try_from(rotation.max(0)).unwrap_or(usize::MAX);
    newest_first.get(keep..).unwrap_or(&[])
}

/// Delete the server's oldest backups of `backup_type` beyond `rotation`.
/// An image already gone is fine; one that cannot be deleted is logged and
/// skipped (Nova carries on with the next). Returns how many were deleted.
pub async fn rotate(
    images: &ImageClient,
    token: &str,
    instance_uuid: &str,
    backup_type: &str,
    rotation: i64,
) -> anyhow::Result<usize> {
    let query: Vec<(String, String)> = [
        ("image_type", "backup"),
        ("backup_type", backup_type),
        ("instance_uuid", instance_uuid),
        ("sort_key", "created_at"),
        ("sort_dir", "desc"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let found = images.list(&query, usize::MAX, token, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let ids: Vec<String> = found.iter().filter_map(|i| i["id"].as_str().map(str::to_string)).collect();
    let mut deleted = 0;
    for id in excess(&ids, rotation) {
        match images.delete(id, token).await {
            Ok(()) => deleted += 1,
            Err(e) => {
                tracing::info!(instance = %instance_uuid, image = %id, error = %format!("{e:#}"), "backup rotation could not delete an image");
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::excess;

    #[test]
    fn the_oldest_beyond_the_rotation_go() {
        let ids: Vec<String> = ["c", "b", "a"].iter().map(|s| s.to_string()).collect();
        assert_eq!(excess(&ids, 2), &ids[2..]);
        assert_eq!(excess(&ids, 3), &[] as &[String]);
        assert_eq!(excess(&ids, 5), &[] as &[String]);
        assert_eq!(excess(&ids, 0), &ids[..]);
    }
}
