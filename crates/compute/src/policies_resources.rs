//! Nova's default policy rules for the resources beside servers: flavors,
//! keypairs, aggregates, availability zones, hypervisors, services, quotas,
//! limits, server groups, usage.

#[rustfmt::skip]
pub const RESOURCE_RULES: &[(&str, &str)] = &[];
