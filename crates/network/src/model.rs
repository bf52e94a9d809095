//! Rules of the network service that need no HTTP: attribute validation,
//! segment allocation (and, with the subnets work, IPAM).

use serde_json::Value;

use crate::error::{Result, invalid};

/// VXLAN network identifiers handed out to tenant networks.
pub const VNI_RANGE: (i64, i64) = (1, 65535);
/// VLAN ids.
pub const VLAN_RANGE: (i64, i64) = (1, 4094);

/// The lowest id of `range` not in `used`.
pub fn lowest_free(range: (i64, i64), used: &[i64]) -> Option<i64> {
    let mut used: Vec<i64> = used.iter().copied().filter(|v| *v >= range.0 && *v <= range.1).collect();
    used.sort_unstable();
    used.dedup();
    let mut next = range.0;
    for u in used {
        if u > next {
            break;
        }
        next = u + 1;
    }
    (next <= range.1).then_some(next)
}

/// A string attribute of at most `max` characters (Neutron's `type:string` validator).
pub fn string(attr: &str, v: &Value, max: usize) -> Result<String> {
    match v {
        Value::String(s) if s.chars().count() <= max => Ok(s.clone()),
        Value::String(s) => Err(invalid(attr, format!("'{s}' exceeds maximum length of {max}"))),
        other => Err(invalid(attr, format!("'{other}' is not a valid string"))),
    }
}

/// A boolean attribute (Neutron also takes "true"/"false" strings and 0/1).
pub fn boolean(attr: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on" | "t" | "y") => {
            Ok(true)
        }
        Value::String(s) if matches!(s.to_ascii_lowercase().as_str(), "false" | "0" | "no" | "off" | "f" | "n") => {
            Ok(false)
        }
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        other => Err(invalid(attr, format!("'{other}' cannot be converted to boolean"))),
    }
}

/// An integer attribute (numbers, or strings of digits as Neutron converts them).
pub fn integer(attr: &str, v: &Value) -> Result<i64> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| invalid(attr, format!("'{n}' is not an integer"))),
        Value::String(s) => s.trim().parse().map_err(|_| invalid(attr, format!("'{s}' is not an integer"))),
        other => Err(invalid(attr, format!("'{other}' is not an integer"))),
    }
}

/// A UUID attribute.
pub fn uuid(attr: &str, v: &Value) -> Result<String> {
    let s = v.as_str().ok_or_else(|| invalid(attr, format!("'{v}' is not a valid UUID")))?;
    uuid::Uuid::parse_str(s).map_err(|_| invalid(attr, format!("'{s}' is not a valid UUID")))?;
    Ok(s.to_string())
}

/// The body's single resource object (`{"network": {...}}`), 400 otherwise.
pub fn resource<'a>(body: &'a Value, name: &str) -> Result<&'a serde_json::Map<String, Value>> {
    body.get(name)
        .and_then(Value::as_object)
        .ok_or_else(|| crate::error::bad(format!("Resource body required: '{name}' is missing or not an object.")))
}

/// A create body of one resource (`{"port": {...}}`) or several
/// (`{"ports": [...]}`, Neutron's bulk create): the objects, and whether it was bulk.
pub fn one_or_bulk(body: &Value, one: &str, many: &str) -> Result<(Vec<serde_json::Map<String, Value>>, bool)> {
    match (body.get(one), body.get(many)) {
        (Some(_), None) => Ok((vec![resource(body, one)?.clone()], false)),
        (None, Some(Value::Array(a))) if !a.is_empty() => {
            let mut v = Vec::new();
            for o in a {
                v.push(
                    o.as_object()
                        .cloned()
                        .ok_or_else(|| crate::error::bad(format!("Each item of '{many}' must be an object")))?,
                );
            }
            Ok((v, true))
        }
        _ => Err(crate::error::bad(format!("Resource body required: '{one}' or a non-empty '{many}' list"))),
    }
}

/// 400 for attributes the resource does not have (Neutron refuses unknown attributes).
pub fn only(obj: &serde_json::Map<String, Value>, allowed: &[&str]) -> Result<()> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(crate::error::bad(format!("Unrecognized attribute(s) '{k}'")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lowest_free_fills_gaps() {
        assert_eq!(lowest_free((1, 5), &[]), Some(1));
        assert_eq!(lowest_free((1, 5), &[1, 2, 4]), Some(3));
        assert_eq!(lowest_free((1, 3), &[3, 1, 2]), None);
        assert_eq!(lowest_free((10, 12), &[1, 10]), Some(11));
    }

    #[test]
    fn validators() {
        assert!(boolean("a", &json!("True")).unwrap());
        assert!(boolean("a", &json!("maybe")).is_err());
        assert_eq!(integer("mtu", &json!("1400")).unwrap(), 1400);
        assert!(integer("mtu", &json!(1.5)).is_err());
        assert!(string("name", &json!("x".repeat(256)), 255).is_err());
        assert!(uuid("id", &json!("nope")).is_err());
    }
}
pub mod security_group_rules;
