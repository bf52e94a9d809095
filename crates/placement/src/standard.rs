//! The standard resource classes (os-resource-classes) and traits (os-traits)
//! every placement knows from the start. Custom ones start with `CUSTOM_`.

/// os-resource-classes 1.1.0, in its order: placement numbers them so, and
/// lists them first, in this order, before the custom classes.
pub const RESOURCE_CLASSES: &[&str] = &[
    "VCPU",
    "MEMORY_MB",
    "DISK_GB",
    "PCI_DEVICE",
    "SRIOV_NET_VF",
    "NUMA_SOCKET",
    "NUMA_CORE",
    "NUMA_THREAD",
    "NUMA_MEMORY_MB",
    "IPV4_ADDRESS",
    "VGPU",
    "VGPU_DISPLAY_HEAD",
    "NET_BW_EGR_KILOBIT_PER_SEC",
    "NET_BW_IGR_KILOBIT_PER_SEC",
    "PCPU",
    "MEM_ENCRYPTION_CONTEXT",
    "FPGA",
    "PGPU",
    "NET_PACKET_RATE_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
];

/// Custom resource classes are numbered from here (as placement does).
pub const FIRST_CUSTOM_RESOURCE_CLASS_ID: i64 = 10000;

/// The prefix of every custom resource class and trait.
pub const CUSTOM_PREFIX: &str = "CUSTOM_";

/// The trait that marks a provider sharing its inventory with the providers
/// of its aggregates.
pub const MISC_SHARES_VIA_AGGREGATE: &str = "MISC_SHARES_VIA_AGGREGATE";

/// The names of os-traits 3.9.0, one per line.
const TRAITS: &str = include_str!("standard_traits.txt");

/// The standard traits.
pub fn traits() -> impl Iterator<Item = &'static str> {
    TRAITS.lines().map(str::trim).filter(|l| !l.is_empty())
}

pub fn is_standard_resource_class(name: &str) -> bool {
    RESOURCE_CLASSES.contains(&name)
}

pub fn is_custom(name: &str) -> bool {
    name.starts_with(CUSTOM_PREFIX)
}

/// `^[A-Z0-9_]+$`: a resource class, trait or consumer type name.
pub fn is_rc_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `^CUSTOM_[A-Z0-9_]+$`.
pub fn is_custom_name(name: &str) -> bool {
    name.strip_prefix(CUSTOM_PREFIX).is_some_and(is_rc_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert!(traits().count() > 300);
        assert!(traits().any(|t| t == MISC_SHARES_VIA_AGGREGATE));
        assert!(traits().any(|t| t == "HW_CPU_X86_AVX2"));
        assert!(traits().all(is_rc_name));
        assert!(is_custom_name("CUSTOM_GOLD"));
        assert!(!is_custom_name("CUSTOM_"));
        assert!(!is_custom_name("CUSTOM_gold"));
        assert!(!is_rc_name(""));
    }
}
