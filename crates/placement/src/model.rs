//! Domain types shared by the API, the store and the candidate search.

use axum::http::StatusCode;

use crate::error::{PlacementError, status};
use stratus_core::Microversion;

/// placement's `MAX_INT`: the largest amount an inventory field may hold.
pub const MAX_INT: i64 = 0x7FFF_FFFF;
/// The largest allocation ratio (a single-precision float in placement's schema).
pub const MAX_RATIO: f64 = 3.40282e38;

/// One inventory record as a client sets it (defaults filled in).
#[derive(Clone, Debug, PartialEq)]
pub struct Inventory {
    pub resource_class: String,
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
}

impl Inventory {
    /// An inventory of `total` with placement's defaults for the rest.
    pub fn new(resource_class: impl Into<String>, total: i64) -> Inventory {
        Inventory {
            resource_class: resource_class.into(),
            total,
            reserved: 0,
            min_unit: 1,
            max_unit: MAX_INT,
            step_size: 1,
            allocation_ratio: 1.0,
        }
    }

    /// What may be allocated in all: `int((total - reserved) * allocation_ratio)`.
    pub fn capacity(&self) -> i64 {
        capacity(self.total, self.reserved, self.allocation_ratio)
    }

    /// Refuse an inventory with no room (reserved >= total; at 1.26 and
    /// later reserved may equal total).
    pub fn check_capacity(&self, mv: Microversion, provider_uuid: &str) -> Result<(), PlacementError> {
        let cap = self.capacity();
        let (bad, what) = if mv.at_least(1, 26) {
            (cap < 0, "greater than total")
        } else {
            (cap <= 0, "greater than or equal to total")
        };
        if bad {
            return Err(status(
                StatusCode::BAD_REQUEST,
                format!(
                    "Invalid inventory for '{}' on resource provider '{provider_uuid}'. The reserved value is {what}.",
                    self.resource_class
                ),
            ));
        }
        Ok(())
    }
}

pub fn capacity(total: i64, reserved: i64, ratio: f64) -> i64 {
    ((total - reserved) as f64 * ratio) as i64
}

/// How request groups with a suffix interact (`group_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupPolicy {
    None,
    Isolate,
}

/// One request group of `GET /allocation_candidates` (`resources`,
/// `required`, `member_of`, `in_tree`, each maybe with a suffix).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestGroup {
    /// `""` for the unsuffixed group.
    pub suffix: String,
    /// Suffixed groups must be satisfied by a single provider.
    pub use_same_provider: bool,
    /// (resource class, amount), in the order asked.
    pub resources: Vec<(String, i64)>,
    /// AND of ORs: `[{A}, {B, C}]` means A and (B or C).
    pub required_traits: Vec<Vec<String>>,
    pub forbidden_traits: Vec<String>,
    /// AND of ORs of aggregate uuids.
    pub member_of: Vec<Vec<String>>,
    pub forbidden_aggs: Vec<String>,
    pub in_tree: Option<String>,
}

/// The parameters of `GET /allocation_candidates` that apply to the whole request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestWide {
    pub limit: Option<usize>,
    pub group_policy: Option<GroupPolicy>,
    /// `root_required`: traits the root of every candidate must have ...
    pub root_required: Vec<String>,
    /// ... and must not have.
    pub root_forbidden: Vec<String>,
    /// `same_subtree`: sets of suffixes whose providers must share a subtree.
    pub same_subtrees: Vec<Vec<String>>,
}

/// A whole allocation candidates request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CandidateRequest {
    pub groups: Vec<RequestGroup>,
    pub wide: RequestWide,
    /// 1.29 and later: candidates may combine providers of one tree.
    pub nested_aware: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_rules() {
        let mut inv = Inventory::new("VCPU", 8);
        inv.allocation_ratio = 1.5;
        inv.reserved = 2;
        assert_eq!(inv.capacity(), 9);
        inv.reserved = 8;
        assert!(inv.check_capacity(Microversion(1, 25), "u").is_err());
        assert!(inv.check_capacity(Microversion(1, 26), "u").is_ok());
        inv.reserved = 9;
        assert!(inv.check_capacity(Microversion(1, 26), "u").is_err());
    }
}
