//! The EC2-style tree (`/latest/meta-data/...`, `/latest/user-data`, and
//! the dated versions `/2009-04-04/...`), as Nova builds it in
//! `get_ec2_metadata` and prints it in `ec2_md_print`: a directory lists
//! its entries one a line (sub-directories with a `/`, or their `_name`),
//! a list its items, a value itself.
//!
//! EC2 ids: Nova numbers instances and images in mapping tables and shows
//! `i-%08x` / `ami-%08x`; Stratus has no such tables and shows the first
//! eight hex digits of the uuid in the same shape (stable, and as unique
//! as a label needs to be).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use stratus_core::Config;

use super::facts::Ec2Facts;
use super::{Answer, MetadataError};
use crate::store::instances::Instance;

/// The EC2 versions Nova serves, oldest first; `latest` is the newest.
pub const VERSIONS: &[&str] = &[
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
];

/// `/`: the EC2 versions and `latest`.
pub fn versions_listing() -> String {
    VERSIONS.iter().copied().chain(["latest"]).collect::<Vec<_>>().join("\n")
}

/// A node of the tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Entries by name; `name` is how the parent lists it (Nova's `_name`,
    /// e.g. `0=mykey`), else `<key>/`.
    Dir {
        name: Option<String>,
        entries: BTreeMap<String, Node>,
    },
    List(Vec<String>),
    Value(Vec<u8>),
}

fn value(s: impl Into<String>) -> Node {
    Node::Value(s.into().into_bytes())
}

fn dir(entries: impl IntoIterator<Item = (&'static str, Node)>) -> Node {
    Node::Dir { name: None, entries: entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
}

impl Node {
    /// The node as Nova prints it.
    pub fn print(&self) -> Answer {
        match self {
            Node::Dir { entries, .. } => Answer::Text(
                entries
                    .iter()
                    .map(|(k, v)| match v {
                        Node::Dir { name: Some(n), .. } => n.clone(),
                        Node::Dir { name: None, .. } => format!("{k}/"),
                        _ => k.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Node::List(items) => Answer::Text(items.join("\n")),
            Node::Value(v) => Answer::Data(v.clone()),
        }
    }

    /// The node at `path` below this one.
    pub fn find(&self, path: &[String]) -> Option<&Node> {
        let mut node = self;
        for token in path {
            match node {
                Node::Dir { entries, .. } => node = entries.get(token)?,
                _ => return None,
            }
        }
        Some(node)
    }
}

/// Whether `version` has what EC2 version `since` introduced.
fn has(version: &str, since: &str) -> bool {
    let at = |v: &str| VERSIONS.iter().position(|x| *x == v);
    matches!((at(version), at(since)), (Some(a), Some(b)) if a >= b)
}

/// `i-xxxxxxxx`, `ami-xxxxxxxx`: the kind and the first eight hex digits of the uuid.
pub fn ec2_id(kind: &str, uuid: &str) -> String {
    let hex: String = uuid.chars().filter(char::is_ascii_hexdigit).take(8).collect::<String>().to_ascii_lowercase();
    format!("{kind}-{hex:0>8}")
}

/// The tree of one EC2 version (`latest` is the newest), for `inst`.
pub fn tree(inst: &Instance, cfg: &Config, facts: &Ec2Facts, version: &str) -> Option<Node> {
    let version = if version == "latest" { VERSIONS.last().copied()? } else { version };
    VERSIONS.contains(&version).then_some(())?;
    let spec = crate::manager::guest_spec(inst, &cfg.compute.default_availability_zone);
    let hostname = inst.hostname.clone();
    let local_ipv4 = facts.fixed_ipv4.first().cloned().or_else(|| facts.remote_address.clone()).unwrap_or_default();
    let ami_id = if inst.image_ref.is_empty() { "None".to_string() } else { ec2_id("ami", &inst.image_ref) };
    let mut md: BTreeMap<String, Node> = BTreeMap::new();
    let mut put = |k: &str, n: Node| {
        md.insert(k.to_string(), n);
    };
    put("ami-id", value(ami_id));
    put("ami-launch-index", value(inst.launch_index.to_string()));
    put("ami-manifest-path", value("FIXME"));
    put("instance-id", value(ec2_id("i", &inst.uuid)));
    put("hostname", value(hostname.clone()));
    put("local-ipv4", value(local_ipv4));
    put("reservation-id", value(inst.reservation_id.clone()));
    put("security-groups", Node::List(facts.security_groups.clone()));
    if let (Some(name), Some(key)) = (inst.key_name.as_deref(), inst.key_data.as_deref()) {
        // `public-keys/` lists `0=<name>`; `public-keys/0/` lists `openssh-key`
        let zero = Node::Dir {
            name: Some(format!("0={name}")),
            entries: BTreeMap::from([("openssh-key".to_string(), value(key))]),
        };
        put("public-keys", Node::Dir { name: None, entries: BTreeMap::from([("0".to_string(), zero)]) });
    }
    if has(version, "2007-01-19") {
        put("local-hostname", value(hostname.clone()));
        put("public-hostname", value(hostname));
        put("public-ipv4", value(facts.floating_ips.first().cloned().unwrap_or_default()));
    }
    if has(version, "2007-08-29") {
        let flavor: Value = serde_json::from_str(&inst.flavor).unwrap_or(Value::Null);
        put("instance-type", value(flavor["name"].as_str().unwrap_or_default()));
    }
    if has(version, "2007-12-15") {
        put("block-device-mapping", block_device_mapping(&facts.volume_devices));
        let props: &Map<String, Value> = &spec.image_properties;
        if let Some(k) = props.get("kernel_id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            put("kernel-id", value(ec2_id("aki", k)));
        }
        if let Some(r) = props.get("ramdisk_id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            put("ramdisk-id", value(ec2_id("ari", r)));
        }
    }
    if has(version, "2008-02-01") {
        put("placement", dir([("availability-zone", value(spec.availability_zone.clone()))]));
    }
    if has(version, "2008-09-01") {
        put("instance-action", value("none"));
    }
    let mut top = BTreeMap::from([("meta-data".to_string(), Node::Dir { name: None, entries: md })]);
    if let Some(data) = stratus_virt::metadata::user_data(&spec) {
        top.insert("user-data".to_string(), Node::Value(data));
    }
    Some(Node::Dir { name: None, entries: top })
}

/// Nova's `instance_block_mapping`: the root disk (`/dev/vda`) and the
/// volumes as `ebs0`, `ebs1`, ... in device order.
fn block_device_mapping(volume_devices: &[String]) -> Node {
    let mut entries = BTreeMap::from([("ami".to_string(), value("vda")), ("root".to_string(), value("/dev/vda"))]);
    for (i, d) in volume_devices.iter().enumerate() {
        entries.insert(format!("ebs{i}"), value(d.clone()));
    }
    Node::Dir { name: None, entries }
}

/// What `tokens` (the path, `ec2` first or not, as Nova takes both) lead to for `inst`.
pub fn lookup(inst: &Instance, cfg: &Config, facts: &Ec2Facts, tokens: &[String]) -> Result<Answer, MetadataError> {
    let tokens = match tokens.split_first() {
        Some((first, rest)) if first == "ec2" => rest,
        _ => tokens,
    };
    let Some((version, rest)) = tokens.split_first() else {
        return Ok(Answer::Text(versions_listing()));
    };
    let tree = tree(inst, cfg, facts, version).ok_or_else(MetadataError::not_found)?;
    Ok(tree.find(rest).ok_or_else(MetadataError::not_found)?.print())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn facts() -> Ec2Facts {
        Ec2Facts {
            fixed_ipv4: vec!["10.0.0.5".into()],
            floating_ips: vec!["203.0.113.9".into()],
            security_groups: vec!["default".into(), "web".into()],
            volume_devices: vec!["/dev/vdb".into()],
            remote_address: Some("10.0.0.5".into()),
        }
    }

    fn at(inst: &Instance, f: &Ec2Facts, path: &str) -> Result<Answer, MetadataError> {
        let tokens: Vec<String> = super::super::normalize(path);
        lookup(inst, &Config::default(), f, &tokens)
    }

    fn text(a: Answer) -> String {
        match a {
            Answer::Text(t) => t,
            Answer::Data(d) => String::from_utf8(d).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn inst() -> Instance {
        super::super::openstack::tests::instance()
    }

    #[test]
    fn ec2_ids_have_nova_shape() {
        assert_eq!(ec2_id("i", "3f0c6b1e-8d2a-4c55-9a7e-2b4f1d6e9c01"), "i-3f0c6b1e");
        assert_eq!(ec2_id("ami", "A1B2-C3"), "ami-00a1b2c3");
    }

    #[test]
    fn meta_data_lists_and_values() {
        let (i, f) = (inst(), facts());
        let listing = text(at(&i, &f, "/latest/meta-data/").unwrap());
        let lines: Vec<&str> = listing.lines().collect();
        for want in [
            "ami-id",
            "block-device-mapping/",
            "hostname",
            "instance-id",
            "instance-type",
            "local-ipv4",
            "placement/",
            "public-ipv4",
            "public-keys/",
            "security-groups",
        ] {
            assert!(lines.contains(&want), "{want} not in {lines:?}");
        }
        assert_eq!(text(at(&i, &f, "/latest/meta-data/instance-id").unwrap()), "i-3f0c6b1e");
        assert_eq!(text(at(&i, &f, "/latest/meta-data/ami-id").unwrap()), "ami-a1b2c3d4");
        assert_eq!(text(at(&i, &f, "/latest/meta-data/local-ipv4").unwrap()), "10.0.0.5");
        assert_eq!(text(at(&i, &f, "/latest/meta-data/public-ipv4").unwrap()), "203.0.113.9");
        assert_eq!(text(at(&i, &f, "/latest/meta-data/instance-type").unwrap()), "m1.tiny");
        assert_eq!(text(at(&i, &f, "/latest/meta-data/security-groups").unwrap()), "default\nweb");
        assert_eq!(text(at(&i, &f, "/latest/meta-data/public-keys").unwrap()), "0=k");
        assert_eq!(text(at(&i, &f, "/latest/meta-data/public-keys/0/").unwrap()), "openssh-key");
        assert_eq!(text(at(&i, &f, "/latest/meta-data/public-keys/0/openssh-key").unwrap()), "ssh-ed25519 AAAA me");
        assert_eq!(text(at(&i, &f, "/latest/meta-data/placement/availability-zone").unwrap()), "nova");
        assert_eq!(text(at(&i, &f, "/latest/meta-data/block-device-mapping/ebs0").unwrap()), "/dev/vdb");
        assert_eq!(text(at(&i, &f, "/ec2/2009-04-04/meta-data/hostname").unwrap()), "web-1");
    }

    #[test]
    fn old_versions_have_less_and_unknown_paths_are_404() {
        let (mut i, f) = (inst(), facts());
        let listing = text(at(&i, &f, "/1.0/meta-data").unwrap());
        assert!(!listing.contains("public-ipv4") && !listing.contains("placement/"), "{listing}");
        for p in [
            "/latest/user-data",
            "/2010-01-01/meta-data",
            "/meta-data",
            "/latest/meta-data/nope",
            "/latest/meta-data/hostname/x",
        ] {
            assert_eq!(at(&i, &f, p).unwrap_err().status, 404, "{p}");
        }
        assert_eq!(text(at(&i, &f, "/latest").unwrap()), "meta-data/");
        i.user_data = Some("aGk=".into());
        assert_eq!(text(at(&i, &f, "/latest").unwrap()), "meta-data/\nuser-data");
        assert_eq!(at(&i, &f, "/latest/user-data").unwrap(), Answer::Data(b"hi".to_vec()));
        // no fixed IPv4: the address the proxy saw
        let f = Ec2Facts { fixed_ipv4: vec![], ..facts() };
        assert_eq!(text(at(&i, &f, "/latest/meta-data/local-ipv4").unwrap()), "10.0.0.5");
    }
}
