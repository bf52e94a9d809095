//! Timestamps as OpenStack renders them.

use chrono::{DateTime, SecondsFormat, Utc};

/// `2015-08-27T09:49:58.000000Z`: Keystone's token and resource format.
pub fn iso_micro(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `2015-08-27T09:49:58Z`: seconds precision, as most other services render.
pub fn iso_seconds(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parse the timestamps clients send: RFC 3339 with or without zone, with or without fraction.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let t = parse("2015-08-27T09:49:58.123456Z").unwrap_or_default();
        assert_eq!(iso_micro(t), "2015-08-27T09:49:58.123456Z");
        assert_eq!(iso_seconds(t), "2015-08-27T09:49:58Z");
        assert!(parse("2015-08-27T09:49:58").is_some());
        assert!(parse("2015-08-27T09:49:58+02:00").is_some());
        assert!(parse("yesterday").is_none());
    }
}
