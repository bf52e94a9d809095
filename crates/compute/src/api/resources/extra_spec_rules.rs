//! The extra specs Nova knows (validated from 2.86): a key in a namespace
//! Nova owns must be one it knows, with a value of the right kind. Keys
//! outside those namespaces, and keys without a namespace, pass as they are.
//!
//! Not covered: Nova checks `resources:` and `trait:` names against the
//! os-resource-classes and os-traits catalogues; here any upper-case name is
//! accepted, and `capabilities:` accepts any key.

use std::sync::LazyLock;

use regex::Regex;

use crate::error::{ComputeError, Result, bad};

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int { min: Option<i64>, max: Option<i64> },
    Str,
    Enum(&'static [&'static str]),
    Pattern(&'static str),
}

const CPU_MASK: &str = r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*";
const REALTIME_MASK: &str = r"(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*";
const SHARES: &[&str] = &["custom", "high", "normal", "low"];
const GROUP: &str = r"([a-zA-Z0-9_-]{1,64})?";

fn int(min: Option<i64>, max: Option<i64>) -> Kind {
    Kind::Int { min, max }
}

/// (name pattern, value kind) of every extra spec Nova validates.
fn table() -> Vec<(String, Kind)> {
    let mut t: Vec<(String, Kind)> = vec![
        ("accel:device_profile".into(), Kind::Str),
        ("aggregate_instance_extra_specs:.+".into(), Kind::Str),
        (r"capabilities:.+".into(), Kind::Str),
        ("hw:cpu_realtime".into(), Kind::Bool),
        ("hw:cpu_realtime_mask".into(), Kind::Pattern(REALTIME_MASK)),
        ("hw:hide_hypervisor_id".into(), Kind::Bool),
        ("hw:cpu_policy".into(), Kind::Enum(&["dedicated", "shared", "mixed"])),
        ("hw:cpu_thread_policy".into(), Kind::Enum(&["prefer", "isolate", "require"])),
        ("hw:emulator_threads_policy".into(), Kind::Enum(&["isolate", "share"])),
        ("hw:cpu_dedicated_mask".into(), Kind::Pattern(CPU_MASK)),
        ("hw:mem_page_size".into(), Kind::Pattern(r"(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)")),
        ("hw:locked_memory".into(), Kind::Bool),
        ("hw:numa_nodes".into(), int(Some(1), None)),
        (r"hw:numa_cpus\.\d+".into(), Kind::Pattern(CPU_MASK)),
        (r"hw:numa_mem\.\d+".into(), int(Some(1), None)),
        ("hw:pci_numa_affinity_policy".into(), Kind::Enum(&["required", "preferred", "legacy", "socket"])),
        ("hw:boot_menu".into(), Kind::Bool),
        ("hw:vif_multiqueue_enabled".into(), Kind::Bool),
        ("hw:mem_encryption".into(), Kind::Bool),
        ("hw:mem_encryption_model".into(), Kind::Enum(&["amd-sev", "amd-sev-es", "amd-sev-snp"])),
        ("hw:pmem".into(), Kind::Pattern(r"([a-zA-Z0-9_]+(,)?)+")),
        ("hw:pmu".into(), Kind::Bool),
        ("hw:serial_port_count".into(), int(Some(0), None)),
        ("hw:tpm_model".into(), Kind::Enum(&["tpm-tis", "tpm-crb"])),
        ("hw:tpm_version".into(), Kind::Enum(&["1.2", "2.0"])),
        ("hw:tpm_secret_security".into(), Kind::Enum(&["user", "host", "deployment"])),
        ("hw:watchdog_action".into(), Kind::Enum(&["none", "pause", "poweroff", "reset", "disabled"])),
        ("hw:viommu_model".into(), Kind::Enum(&["intel", "smmuv3", "virtio", "auto"])),
        ("hw:virtio_packed_ring".into(), Kind::Bool),
        ("hw:sound_model".into(), Kind::Enum(&["sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "virtio"])),
        ("hw:usb_model".into(), Kind::Enum(&["none", "nec-xhci", "qemu-xhci"])),
        ("hw:redirected_usb_ports".into(), int(Some(0), Some(15))),
        ("hw:ephemeral_encryption".into(), Kind::Bool),
        ("hw:ephemeral_encryption_format".into(), Kind::Enum(&["plain", "luks", "luksv2"])),
        ("hw_rng:allowed".into(), Kind::Bool),
        ("hw_rng:rate_bytes".into(), int(Some(0), None)),
        ("hw_rng:rate_period".into(), int(Some(0), None)),
        ("hw_video:ram_max_mb".into(), int(Some(0), None)),
        ("hide_hypervisor_id".into(), Kind::Bool),
        ("group_policy".into(), Kind::Enum(&["isolate", "none"])),
        ("os:secure_boot".into(), Kind::Enum(&["disabled", "required"])),
        ("pci_passthrough:alias".into(), Kind::Pattern(r"[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*")),
        ("vmware:hw_version".into(), Kind::Str),
        ("vmware:storage_policy".into(), Kind::Str),
        (format!("resources{GROUP}:[A-Z0-9_]+"), int(None, None)),
        (format!("trait{GROUP}:[A-Z0-9_]+"), Kind::Enum(&["required", "forbidden"])),
    ];
    for n in ["cpu_sockets", "cpu_cores", "cpu_threads", "cpu_max_sockets", "cpu_max_cores", "cpu_max_threads"] {
        t.push((format!("hw:{n}"), int(Some(1), None)));
    }
    for r in ["cpu", "memory", "disk_io", "vif"] {
        t.push((format!("quota:{r}_limit"), int(Some(0), None)));
        t.push((format!("quota:{r}_reservation"), int(None, None)));
        t.push((format!("quota:{r}_shares_level"), Kind::Enum(SHARES)));
        t.push((format!("quota:{r}_shares_share"), int(Some(0), None)));
    }
    for n in [
        "cpu_shares",
        "cpu_period",
        "disk_read_bytes_sec",
        "disk_read_iops_sec",
        "disk_write_bytes_sec",
        "disk_write_iops_sec",
        "disk_total_bytes_sec",
        "disk_total_iops_sec",
        "vif_inbound_average",
        "vif_inbound_peak",
        "vif_inbound_burst",
        "vif_outbound_average",
        "vif_outbound_peak",
        "vif_outbound_burst",
    ] {
        t.push((format!("quota:{n}"), int(Some(0), None)));
    }
    t.push(("quota:cpu_quota".into(), int(None, None)));
    t
}

struct Compiled {
    rules: Vec<(Regex, Kind)>,
    namespaces: Regex,
}

static RULES: LazyLock<Option<Compiled>> = LazyLock::new(|| {
    let rules = table()
        .into_iter()
        .map(|(name, kind)| Regex::new(&format!("^(?:{name})$")).map(|r| (r, kind)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .ok()?;
    let namespaces = Regex::new(&format!(
        "^(?:accel|aggregate_instance_extra_specs|capabilities|hw|hw_rng|hw_video|os|pci_passthrough|quota|vmware|resources{GROUP}|trait{GROUP})$"
    ))
    .ok()?;
    Some(Compiled { rules, namespaces })
});

fn fail(msg: String) -> ComputeError {
    bad(msg)
}

fn check(kind: Kind, value: &str) -> Result<()> {
    match kind {
        Kind::Str => Ok(()),
        Kind::Bool => {
            if super::common::bool_word(value).is_some() {
                Ok(())
            } else {
                Err(fail(format!("Validation failed; '{value}' is not a valid boolean-like value.")))
            }
        }
        Kind::Int { min, max } => {
            let Ok(n) = value.trim().parse::<i64>() else {
                return Err(fail(format!("Validation failed; '{value}' is not a valid integer value.")));
            };
            if let Some(max) = max
                && n > max
            {
                return Err(fail(format!("Validation failed; '{value}' is greater than the max value of '{max}'.")));
            }
            if let Some(min) = min
                && n < min
            {
                return Err(fail(format!("Validation failed; '{value}' is less than the min value of '{min}'.")));
            }
            Ok(())
        }
        Kind::Enum(values) => {
            if values.contains(&value) {
                Ok(())
            } else {
                Err(fail(format!("Validation failed; '{value}' is not one of: {}.", values.join(", "))))
            }
        }
        Kind::Pattern(p) => match Regex::new(&format!("^(?:{p})$")) {
            Ok(re) if re.is_match(value) => Ok(()),
            _ => Err(fail(format!("Validation failed; '{value}' is not of the format '{p}'."))),
        },
    }
}

/// Validate one extra spec as Nova does from 2.86.
pub fn validate(name: &str, value: &str) -> Result<()> {
    let Some(c) = RULES.as_ref() else {
        return Ok(());
    };
    if let Some((_, kind)) = c.rules.iter().find(|(re, _)| re.is_match(name)) {
        return check(*kind, value);
    }
    let Some((ns, _)) = name.split_once(':') else {
        return Ok(());
    };
    if c.namespaces.is_match(ns) {
        return Err(fail(format!("Validation failed; extra spec '{name}' does not appear to be a valid extra spec.")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_namespaces_are_checked() {
        assert!(RULES.is_some());
        assert!(validate("hw:cpu_policy", "dedicated").is_ok());
        assert!(validate("hw:cpu_policy", "fast").is_err());
        assert!(validate("hw:numa_nodes", "0").is_err());
        assert!(validate("hw:numa_cpus.0", "0-3,^2").is_ok());
        assert!(validate("hw:mem_page_size", "2MiB").is_ok());
        assert!(validate("hw:no_such_thing", "1").is_err());
        assert!(validate("resources:VCPU", "2").is_ok());
        assert!(validate("resources1:CUSTOM_GPU", "x").is_err());
        assert!(validate("trait:HW_CPU_X86_AVX", "required").is_ok());
        assert!(validate("trait:HW_CPU_X86_AVX", "maybe").is_err());
        assert!(validate("quota:cpu_quota", "-1").is_ok());
        assert!(validate("hw_rng:allowed", "yes").is_ok());
        assert!(validate("mine:anything", "x").is_ok());
        assert!(validate("plain", "x").is_ok());
        assert!(validate("group_policy", "isolate").is_ok());
        assert!(validate("hw:redirected_usb_ports", "16").is_err());
    }
}
