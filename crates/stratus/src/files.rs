//! The client files a local cloud writes into its data dir: `clouds.yaml` and `openrc`.

use std::path::PathBuf;

use stratus_core::Config;

/// Write `clouds.yaml` and `openrc` when the admin password is known; returns
/// the clouds.yaml path if one exists afterwards.
pub fn write_client_files(cfg: &Config, password: Option<&str>) -> anyhow::Result<Option<PathBuf>> {
    let dir = std::path::absolute(&cfg.data_dir)?;
    let clouds = dir.join("clouds.yaml");
    let Some(password) = password else {
        return Ok(clouds.exists().then_some(clouds));
    };
    let auth_url = format!("{}/v3", cfg.identity_public_url());
    let region = &cfg.bootstrap.region;
    // YAML and shell quoting: single quotes, doubled inside
    let yq = password.replace('\'', "''");
    let text = format!(
        "# Written by `stratus up`. Use: export OS_CLIENT_CONFIG_FILE={path}; openstack --os-cloud stratus token issue\n\
clouds:\n  stratus:\n    auth:\n      auth_url: {auth_url}\n      username: admin\n      password: '{yq}'\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: {region}\n    interface: public\n    identity_api_version: 3\n",
        path = clouds.display()
    );
    write_private(&clouds, &text)?;
    let sq = password.replace('\'', "'\\''");
    let rc = format!(
        "# Written by `stratus up`. Use: . {path}\nexport OS_AUTH_URL={auth_url}\nexport OS_USERNAME=admin\nexport OS_PASSWORD='{sq}'\nexport OS_PROJECT_NAME=admin\nexport OS_USER_DOMAIN_NAME=Default\nexport OS_PROJECT_DOMAIN_NAME=Default\nexport OS_REGION_NAME={region}\nexport OS_IDENTITY_API_VERSION=3\n",
        path = dir.join("openrc").display()
    );
    write_private(&dir.join("openrc"), &rc)?;
    Ok(Some(clouds))
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
