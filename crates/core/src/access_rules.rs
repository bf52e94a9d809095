//! Application-credential access rules, enforced as keystonemiddleware
//! enforces them: a token from a credential with access rules may call a
//! service only with a request whose method, service type and path match one
//! of its rules; anything else is answered 401. A request that also carries
//! a valid service token is part of a chain between services and passes.
//!
//! A rule's path may hold `*` or `{tag}` (one path segment) and `**` (any
//! number of characters, `/` included).

use serde::{Deserialize, Serialize};

/// One access rule as Keystone renders it in a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRule {
    pub service: String,
    pub path: String,
    pub method: String,
}

/// The name a service runs under (from [`crate::http::service`]); the auth
/// middleware reads it to know which rules apply.
#[derive(Clone, Copy, Debug)]
pub struct ServiceName(pub &'static str);

/// The path a request came with, before any service rewrote it (block
/// storage drops the project from its paths).
#[derive(Clone, Debug)]
pub struct RequestPath(pub String);

/// The catalog types a service answers to in access rules. Block storage is
/// listed under several (`block-storage` is the official type; `volumev3`
/// and `volume` are its aliases in the service-types authority).
pub fn service_types(name: &str) -> &'static [&'static str] {
    match name {
        "identity" => &["identity"],
        "compute" => &["compute"],
        "image" => &["image"],
        "network" => &["network"],
        "placement" => &["placement"],
        "volume" => &["block-storage", "volumev3", "volume", "volumev2", "block-store"],
        _ => &[],
    }
}

/// Does `rules` allow `method path` on the service `name`? Identity's token
/// validation (`GET /v3/auth/tokens`) is always allowed, as in
/// keystonemiddleware.
pub fn allows(rules: &[AccessRule], name: &str, method: &str, path: &str) -> bool {
    if name == "identity" && method == "GET" && path.ends_with("/v3/auth/tokens") {
        return true;
    }
    let types = service_types(name);
    rules.iter().any(|r| r.method == method && types.contains(&r.service.as_str()) && path_matches(path, &r.path))
}

enum Token {
    Literal(char),
    /// `*` or `{tag}`: one or more characters other than `/`
    Segment,
    /// `**`: anything
    Any,
}

fn tokens(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' if chars[i..].contains(&'}') => {
                out.push(Token::Segment);
                i += chars[i..].iter().position(|c| *c == '}').unwrap_or(0) + 1;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push(Token::Any);
                i += 2;
            }
            '*' => {
                out.push(Token::Segment);
                i += 1;
            }
            // a stray brace is no part of keystonemiddleware's pattern either
            '{' | '}' => i += 1,
            c => {
                out.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    out
}

fn matches_from(path: &[char], pat: &[Token]) -> bool {
    let Some((first, rest)) = pat.split_first() else {
        return path.is_empty();
    };
    match first {
        Token::Literal(c) => path.first() == Some(c) && matches_from(&path[1..], rest),
        Token::Segment => {
            let seg = path.iter().take_while(|c| **c != '/').count();
            (1..=seg).any(|n| matches_from(&path[n..], rest))
        }
        Token::Any => (0..=path.len()).any(|n| matches_from(&path[n..], rest)),
    }
}

/// Does the request path match the rule's path pattern (the whole of it)?
pub fn path_matches(path: &str, pattern: &str) -> bool {
    let path: Vec<char> = path.chars().collect();
    matches_from(&path, &tokens(pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(service: &str, path: &str, method: &str) -> AccessRule {
        AccessRule { service: service.into(), path: path.into(), method: method.into() }
    }

    #[test]
    fn wildcards() {
        assert!(path_matches("/v2.1/servers/abc/ips", "/v2.1/servers/*/ips"));
        assert!(!path_matches("/v2.1/servers/a/b/ips", "/v2.1/servers/*/ips"));
        assert!(!path_matches("/v2.1/servers//ips", "/v2.1/servers/*/ips"));
        assert!(path_matches("/v2.1/servers/a/b/ips", "/v2.1/servers/**"));
        assert!(path_matches("/v2.1/servers/", "/v2.1/servers/**"));
        assert!(!path_matches("/v2.1/servers", "/v2.1/servers/**"));
        assert!(path_matches("/v2.1/servers/x/ips", "/v2.1/servers/{server_id}/ips"));
        assert!(path_matches("/v2.1/servers", "/v2.1/servers"));
        assert!(!path_matches("/v2.1/servers/x", "/v2.1/servers"));
        assert!(path_matches("/v2/images/a", "/v2/images/*"));
    }

    #[test]
    fn service_method_and_path() {
        let rules = vec![rule("compute", "/v2.1/servers/*/ips", "GET"), rule("block-storage", "/v3/**", "GET")];
        assert!(allows(&rules, "compute", "GET", "/v2.1/servers/s1/ips"));
        assert!(!allows(&rules, "compute", "POST", "/v2.1/servers/s1/ips"));
        assert!(!allows(&rules, "compute", "GET", "/v2.1/servers"));
        assert!(!allows(&rules, "image", "GET", "/v2.1/servers/s1/ips"));
        assert!(allows(&rules, "volume", "GET", "/v3/p/volumes"));
        assert!(allows(&rules, "identity", "GET", "/v3/auth/tokens"));
        assert!(!allows(&rules, "identity", "GET", "/v3/users"));
    }
}
