//! Domain-specific configuration (`/v3/domains/{id}/config`): the options of
//! the `identity` and `ldap` groups a domain may override, as Keystone allows
//! them. Sensitive options (the LDAP bind password) are stored but never shown.

use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use serde_json::{Map, Value, json};
use stratus_db::Db;

use crate::entity::domain_config;
use crate::error::{IdentityError, Result};

/// The group whose password rules any caller may read (default domain only).
pub const SECURITY_COMPLIANCE: &str = "security_compliance";

/// The domain whose security compliance settings can be read.
const DEFAULT_DOMAIN: &str = "default";

/// A default value of an option, as Keystone's configuration declares it.
#[derive(Clone, Copy)]
enum OptDefault {
    Unset,
    Str(&'static str),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(&'static [&'static str]),
}

impl OptDefault {
    fn value(self) -> Value {
        match self {
            OptDefault::Unset => Value::Null,
            OptDefault::Str(s) => json!(s),
            OptDefault::Int(i) => json!(i),
            OptDefault::Float(f) => json!(f),
            OptDefault::Bool(b) => json!(b),
            OptDefault::List(l) => json!(l),
        }
    }
}

use OptDefault::{Bool, Float, Int, List, Str, Unset};

/// Options of `[identity]` a domain may set, with their defaults.
const IDENTITY: &[(&str, OptDefault)] = &[("driver", Str("sql")), ("list_limit", Unset)];

/// Options of `[ldap]` a domain may set, with their defaults.
const LDAP: &[(&str, OptDefault)] = &[
    ("url", Str("ldap://localhost")),
    ("user", Unset),
    ("suffix", Str("cn=example,cn=com")),
    ("query_scope", Str("one")),
    ("page_size", Int(0)),
    ("alias_dereferencing", Str("default")),
    ("debug_level", Unset),
    ("chase_referrals", Unset),
    ("user_tree_dn", Unset),
    ("user_filter", Unset),
    ("user_objectclass", Str("inetOrgPerson")),
    ("user_id_attribute", Str("cn")),
    ("user_name_attribute", Str("sn")),
    ("user_mail_attribute", Str("mail")),
    ("user_description_attribute", Str("description")),
    ("user_pass_attribute", Str("userPassword")),
    ("user_enabled_attribute", Str("enabled")),
    ("user_enabled_invert", Bool(false)),
    ("user_enabled_mask", Int(0)),
    ("user_enabled_default", Str("True")),
    ("user_attribute_ignore", List(&["default_project_id"])),
    ("user_default_project_id_attribute", Unset),
    ("user_enabled_emulation", Bool(false)),
    ("user_enabled_emulation_dn", Unset),
    ("user_enabled_emulation_use_group_config", Bool(false)),
    ("user_additional_attribute_mapping", List(&[])),
    ("group_tree_dn", Unset),
    ("group_filter", Unset),
    ("group_objectclass", Str("groupOfNames")),
    ("group_id_attribute", Str("cn")),
    ("group_name_attribute", Str("ou")),
    ("group_members_are_ids", Bool(false)),
    ("group_member_attribute", Str("member")),
    ("group_desc_attribute", Str("description")),
    ("group_attribute_ignore", List(&[])),
    ("group_additional_attribute_mapping", List(&[])),
    ("tls_cacertfile", Unset),
    ("tls_cacertdir", Unset),
    ("use_tls", Bool(false)),
    ("tls_req_cert", Str("demand")),
    ("use_pool", Bool(true)),
    ("pool_size", Int(10)),
    ("pool_retry_max", Int(3)),
    ("pool_retry_delay", Float(0.1)),
    ("pool_connection_timeout", Int(-1)),
    ("pool_connection_lifetime", Int(600)),
    ("use_auth_pool", Bool(true)),
    ("auth_pool_size", Int(100)),
    ("auth_pool_connection_lifetime", Int(60)),
];

/// The groups a domain may configure, in the order defaults are listed.
const GROUPS: &[&str] = &["identity", "ldap"];

fn whitelisted(group: &str) -> &'static [(&'static str, OptDefault)] {
    match group {
        "identity" => IDENTITY,
        "ldap" => LDAP,
        _ => &[],
    }
}

fn sensitive_options(group: &str) -> &'static [&'static str] {
    match group {
        "ldap" => &["password"],
        _ => &[],
    }
}

fn is_whitelisted(group: &str, option: &str) -> bool {
    whitelisted(group).iter().any(|(o, _)| *o == option)
}

fn is_sensitive(group: &str, option: &str) -> bool {
    sensitive_options(group).contains(&option)
}

/// Keystone's InvalidDomainConfig is a 403.
fn invalid(reason: impl std::fmt::Display) -> IdentityError {
    IdentityError::Forbidden(format!("Invalid domain specific configuration: {reason}."))
}

fn not_found(domain_id: &str, what: &str) -> IdentityError {
    IdentityError::NotFoundMsg(format!("Could not find {what} in domain configuration for domain {domain_id}."))
}

fn what(group: Option<&str>, option: Option<&str>) -> String {
    match (group, option) {
        (Some(g), Some(o)) => format!("option {o} in group {g}"),
        (Some(g), None) => format!("group {g}"),
        _ => "any options".to_string(),
    }
}

/// The group and option named by a URL must be ones a domain may configure.
pub fn check_group_option(group: Option<&str>, option: Option<&str>) -> Result<()> {
    let Some(g) = group else {
        return Ok(());
    };
    if !GROUPS.contains(&g) {
        return Err(invalid(format!("Group {g} is not supported for domain specific configurations")));
    }
    if let Some(o) = option
        && !is_whitelisted(g, o)
        && !is_sensitive(g, o)
    {
        return Err(invalid(format!("Option {o} in group {g} is not supported for domain specific configurations")));
    }
    Ok(())
}

/// A request's config: `{group: {option: value}}`, non-empty, supported options only.
fn check_config(config: &Map<String, Value>) -> Result<()> {
    if config.is_empty() {
        return Err(invalid("No options specified"));
    }
    for (group, options) in config {
        let options = match options {
            Value::Object(o) if !o.is_empty() => o,
            _ => {
                return Err(invalid(format!(
                    "The value of group {group} specified in the config should be a dictionary of options"
                )));
            }
        };
        for option in options.keys() {
            check_group_option(Some(group), Some(option))?;
        }
    }
    Ok(())
}

/// Stored options of a domain, optionally of one group or one option.
async fn rows(
    db: &Db,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<Vec<domain_config::Model>> {
    let mut q = domain_config::Entity::find().filter(domain_config::Column::DomainId.eq(domain_id));
    if let Some(g) = group {
        q = q.filter(domain_config::Column::ConfigGroup.eq(g));
        if let Some(o) = option {
            q = q.filter(domain_config::Column::ConfigOption.eq(o));
        }
    }
    Ok(q.order_by_asc(domain_config::Column::ConfigGroup)
        .order_by_asc(domain_config::Column::ConfigOption)
        .all(&db.read)
        .await?)
}

fn stored_value(r: &domain_config::Model) -> Value {
    serde_json::from_str(&r.value).unwrap_or(Value::Null)
}

/// `{group: {option: value}}` of the rows.
fn to_config(rows: &[domain_config::Model]) -> Map<String, Value> {
    let mut out = Map::new();
    for r in rows {
        if let Value::Object(g) = out.entry(r.config_group.clone()).or_insert_with(|| Value::Object(Map::new())) {
            g.insert(r.config_option.clone(), stored_value(r));
        }
    }
    out
}

fn to_models(domain_id: &str, config: &Map<String, Value>) -> Vec<domain_config::ActiveModel> {
    let mut out = Vec::new();
    for (group, options) in config {
        let Value::Object(options) = options else {
            continue;
        };
        for (option, value) in options {
            out.push(domain_config::ActiveModel {
                domain_id: Set(domain_id.to_string()),
                config_group: Set(group.clone()),
                config_option: Set(option.clone()),
                value: Set(value.to_string()),
                sensitive: Set(is_sensitive(group, option)),
            });
        }
    }
    out
}

/// Whether the domain has any configuration, sensitive options included.
pub async fn exists(db: &Db, domain_id: &str) -> Result<bool> {
    Ok(!rows(db, domain_id, None, None).await?.is_empty())
}

/// Replace the domain's whole configuration. Returns the visible
/// configuration and whether one existed before (PUT: 200 rather than 201).
pub async fn create(db: &Db, domain_id: &str, config: &Map<String, Value>) -> Result<(Map<String, Value>, bool)> {
    check_config(config)?;
    let existed = exists(db, domain_id).await?;
    let txn = db.write.begin().await?;
    domain_config::Entity::delete_many().filter(domain_config::Column::DomainId.eq(domain_id)).exec(&txn).await?;
    let models = to_models(domain_id, config);
    if !models.is_empty() {
        domain_config::Entity::insert_many(models).exec_without_returning(&txn).await?;
    }
    txn.commit().await?;
    let visible: Vec<_> = rows(db, domain_id, None, None).await?.into_iter().filter(|r| !r.sensitive).collect();
    Ok((to_config(&visible), existed))
}

/// The visible configuration of a domain: all of it, one group
/// (`{group: {...}}`), or one option (`{option: value}`).
pub async fn get(db: &Db, domain_id: &str, group: Option<&str>, option: Option<&str>) -> Result<Map<String, Value>> {
    check_group_option(group, option)?;
    let visible: Vec<_> = rows(db, domain_id, group, option).await?.into_iter().filter(|r| !r.sensitive).collect();
    if visible.is_empty() {
        return Err(not_found(domain_id, &what(group, option)));
    }
    if option.is_some()
        && let Some(r) = visible.first()
    {
        let mut out = Map::new();
        out.insert(r.config_option.clone(), stored_value(r));
        return Ok(out);
    }
    Ok(to_config(&visible))
}

/// Merge options into the domain's configuration. With a group (and option)
/// in the URL the body may hold only that group (or option), which must
/// already be configured. Returns the whole visible configuration.
pub async fn update(
    db: &Db,
    domain_id: &str,
    config: &Map<String, Value>,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<Map<String, Value>> {
    let update = match (group, option) {
        // the body is `{option: value}`: the option under its group
        (Some(g), Some(_)) => {
            let mut m = Map::new();
            m.insert(g.to_string(), Value::Object(config.clone()));
            m
        }
        _ => config.clone(),
    };
    check_config(&update)?;
    check_group_option(group, option)?;
    if let Some(g) = group {
        let Some(Value::Object(options)) = update.get(g) else {
            let other = update.keys().next().cloned().unwrap_or_default();
            return Err(invalid(format!(
                "request to update group {g}, but config provided contains group {other} instead"
            )));
        };
        if update.len() != 1 {
            return Err(invalid(format!(
                "Trying to update group {g}, so that, and only that, group must be specified in the config"
            )));
        }
        if let Some(o) = option {
            if options.len() != 1 {
                return Err(invalid(format!(
                    "Trying to update option {o} in group {g}, so that, and only that, option must be specified in the config"
                )));
            }
            if !options.contains_key(o) {
                let other = options.keys().next().cloned().unwrap_or_default();
                return Err(invalid(format!(
                    "Trying to update option {o} in group {g}, but config provided contains option {other} instead"
                )));
            }
        }
        if rows(db, domain_id, group, option).await?.is_empty() {
            return Err(not_found(domain_id, &what(group, option)));
        }
    }
    let txn = db.write.begin().await?;
    for (g, options) in &update {
        let Value::Object(options) = options else {
            continue;
        };
        for o in options.keys() {
            domain_config::Entity::delete_many()
                .filter(domain_config::Column::DomainId.eq(domain_id))
                .filter(domain_config::Column::ConfigGroup.eq(g.as_str()))
                .filter(domain_config::Column::ConfigOption.eq(o.as_str()))
                .exec(&txn)
                .await?;
        }
    }
    let models = to_models(domain_id, &update);
    if !models.is_empty() {
        domain_config::Entity::insert_many(models).exec_without_returning(&txn).await?;
    }
    txn.commit().await?;
    get(db, domain_id, None, None).await
}

/// Delete the domain's configuration, one group of it, or one option. A
/// group or option must be configured (404 otherwise); the whole
/// configuration may be deleted when there is none.
pub async fn delete(db: &Db, domain_id: &str, group: Option<&str>, option: Option<&str>) -> Result<()> {
    check_group_option(group, option)?;
    if group.is_some() && rows(db, domain_id, group, option).await?.is_empty() {
        return Err(not_found(domain_id, &what(group, option)));
    }
    delete_rows(db, domain_id, group, option).await
}

async fn delete_rows(db: &Db, domain_id: &str, group: Option<&str>, option: Option<&str>) -> Result<()> {
    let mut q = domain_config::Entity::delete_many().filter(domain_config::Column::DomainId.eq(domain_id));
    if let Some(g) = group {
        q = q.filter(domain_config::Column::ConfigGroup.eq(g));
        if let Some(o) = option {
            q = q.filter(domain_config::Column::ConfigOption.eq(o));
        }
    }
    q.exec(&db.write).await?;
    Ok(())
}

/// Forget everything configured for a domain (when the domain goes away).
pub async fn delete_for_domain(db: &Db, domain_id: &str) -> Result<()> {
    delete_rows(db, domain_id, None, None).await
}

/// The defaults a domain's configuration overrides: of every option a domain
/// may set, of one group, or of one option (`{option: default}`).
pub fn defaults(group: Option<&str>, option: Option<&str>) -> Result<Map<String, Value>> {
    check_group_option(group, option)?;
    let mut out = Map::new();
    match (group, option) {
        (Some(g), Some(o)) => {
            let Some((_, d)) = whitelisted(g).iter().find(|(name, _)| *name == o) else {
                return Err(invalid(format!("Reading the default for option {o} in group {g} is not supported")));
            };
            out.insert(o.to_string(), d.value());
        }
        (Some(g), None) => {
            out.insert(g.to_string(), group_defaults(g));
        }
        _ => {
            for g in GROUPS {
                out.insert((*g).to_string(), group_defaults(g));
            }
        }
    }
    Ok(out)
}

fn group_defaults(group: &str) -> Value {
    Value::Object(whitelisted(group).iter().map(|(o, d)| ((*o).to_string(), d.value())).collect())
}

/// The password rules of `[security_compliance]` users may read; only the
/// default domain has them. Stratus enforces no password regex, so both are unset.
pub fn security_compliance(domain_id: &str, option: Option<&str>) -> Result<Map<String, Value>> {
    const READABLE: &[&str] = &["password_regex", "password_regex_description"];
    if domain_id != DEFAULT_DOMAIN {
        return Err(invalid(
            "Reading security compliance information for any domain other than the default domain is not allowed or supported",
        ));
    }
    let mut out = Map::new();
    match option {
        Some(o) if READABLE.contains(&o) => {
            out.insert(o.to_string(), Value::Null);
        }
        Some(_) => {
            return Err(invalid(
                "Reading security compliance values other than password_regex and password_regex_description is not allowed",
            ));
        }
        None => {
            let group: Map<String, Value> = READABLE.iter().map(|o| ((*o).to_string(), Value::Null)).collect();
            out.insert(SECURITY_COMPLIANCE.to_string(), Value::Object(group));
        }
    }
    Ok(out)
}
