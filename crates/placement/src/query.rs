//! Query strings as placement reads them: `resources=VCPU:2,MEMORY_MB:512`,
//! `required=HW_CPU_X86_AVX2,!CUSTOM_SLOW` or `required=in:A,B`,
//! `member_of=in:<agg>,<agg>` or `member_of=!<agg>`, `in_tree=<uuid>`, and
//! the numbered (or, from 1.33, named) request groups of
//! `GET /allocation_candidates`.

use serde_json::{Map, Value};
use stratus_core::Microversion;

use crate::error::{PlacementError, Result, bad, bad_code, codes};
use crate::model::{CandidateRequest, GroupPolicy, RequestGroup, RequestWide};
use crate::schema::{Pattern, Schema, is_suffix_1_33, is_suffix_numeric, is_uuid_like};

/// The raw pairs, in order, repeats kept.
pub type Pairs = [(String, String)];

pub fn all<'a>(q: &'a Pairs, key: &str) -> Vec<&'a str> {
    q.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

pub fn last<'a>(q: &'a Pairs, key: &str) -> Option<&'a str> {
    q.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Validate a query string against a schema, the way placement does it:
/// on `dict(req.GET)` (the last value of each key).
pub fn validate(q: &Pairs, schema: &Schema) -> Result<()> {
    let mut m = Map::new();
    for (k, v) in q {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    schema.validate(&Value::Object(m)).map_err(|e| bad(format!("Invalid query string parameters: {e}")))
}

/// `VCPU:2,MEMORY_MB:1024` -> [(VCPU, 2), (MEMORY_MB, 1024)] (a repeated class: the last amount).
pub fn resources(qs: &str) -> Result<Vec<(String, i64)>> {
    let form = "Badly formed resources parameter. Expected resources query string parameter in form: \
                ?resources=VCPU:2,MEMORY_MB:1024.";
    if qs.trim().is_empty() {
        return Err(bad(format!("{form} Got: empty string.")));
    }
    let mut out: Vec<(String, i64)> = Vec::new();
    for item in qs.split(',') {
        let mut parts = item.split(':');
        let (Some(rc), Some(amount), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(format!("{form} Got: {item}.")));
        };
        let t = amount.trim();
        let amount: i64 =
            t.strip_prefix('+').unwrap_or(t).parse().map_err(|_| {
                bad(format!("Requested resource {rc} expected positive integer amount. Got: {amount}."))
            })?;
        if amount < 1 {
            return Err(bad(format!("Requested resource {rc} requires amount >= 1. Got: {amount}.")));
        }
        match out.iter_mut().find(|(c, _)| c == rc) {
            Some(e) => e.1 = amount,
            None => out.push((rc.to_string(), amount)),
        }
    }
    Ok(out)
}

/// One `required` value: (AND of ORs of required traits, forbidden traits).
pub fn traits(val: &str, allow_forbidden: bool, allow_any: bool) -> Result<(Vec<Vec<String>>, Vec<String>)> {
    if let Some(rest) = val.strip_prefix("in:") {
        if !allow_any {
            return Err(bad(format!(
                "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since microversion 1.39. Got: {val}"
            )));
        }
        let mut any: Vec<String> = rest.split(',').map(|s| s.trim().to_string()).collect();
        if any.iter().any(String::is_empty) {
            return Err(bad(format!(
                "Invalid query string parameters: Expected 'required' parameter value of the form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: {val}"
            )));
        }
        if any.iter().any(|t| t.starts_with('!')) {
            return Err(bad(format!(
                "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not support forbidden traits. Got: {val}"
            )));
        }
        any.sort();
        any.dedup();
        return Ok((vec![any], Vec::new()));
    }
    let all: Vec<&str> = val.split(',').map(str::trim).collect();
    let forbidden: Vec<String> =
        all.iter().filter(|t| t.starts_with('!')).map(|t| t.trim_start_matches('!').to_string()).collect();
    if all.iter().any(|t| t.is_empty()) || forbidden.iter().any(String::is_empty) {
        let form = if allow_forbidden { "HW_CPU_X86_VMX,!CUSTOM_MAGIC" } else { "HW_CPU_X86_VMX,CUSTOM_MAGIC" };
        return Err(bad(format!(
            "Invalid query string parameters: Expected 'required' parameter value of the form: {form}. Got an empty trait in: {val}"
        )));
    }
    if !forbidden.is_empty() && !allow_forbidden {
        return Err(bad(format!(
            "Invalid query string parameters: Expected 'required' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {val}"
        )));
    }
    let mut required: Vec<Vec<String>> = Vec::new();
    for t in all.iter().filter(|t| !t.starts_with('!')) {
        let one = vec![t.to_string()];
        if !required.contains(&one) {
            required.push(one);
        }
    }
    let mut forbidden = forbidden;
    forbidden.sort();
    forbidden.dedup();
    Ok((required, forbidden))
}

/// Every `required<suffix>` of the request (only the last before 1.39).
pub fn traits_params(q: &Pairs, key: &str, mv: Microversion) -> Result<(Vec<Vec<String>>, Vec<String>)> {
    let allow_forbidden = mv.at_least(1, 22);
    let allow_any = mv.at_least(1, 39);
    let mut values = all(q, key);
    if !allow_any && values.len() > 1 {
        values = values.split_off(values.len() - 1);
    }
    let mut required: Vec<Vec<String>> = Vec::new();
    let mut forbidden: Vec<String> = Vec::new();
    for v in values {
        let (r, f) = traits(v, allow_forbidden, allow_any)?;
        for any in r {
            if !required.contains(&any) {
                required.push(any);
            }
        }
        for t in f {
            if !forbidden.contains(&t) {
                forbidden.push(t);
            }
        }
    }
    forbidden.sort();
    Ok((required, forbidden))
}

/// One `member_of` value: (required aggregates, any of them; forbidden ones).
pub fn member_of(value: &str) -> Result<(Vec<String>, Vec<String>)> {
    if value.contains(',') && !(value.starts_with("in:") || value.starts_with("!in:")) {
        return Err(bad(format!(
            "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword using the valid microversion. Got: {value}"
        )));
    }
    let split = |s: &str| -> Vec<String> { s.split(',').map(str::to_string).collect() };
    let (required, forbidden) = if let Some(rest) = value.strip_prefix("!in:") {
        (Vec::new(), split(rest))
    } else if let Some(rest) = value.strip_prefix('!') {
        (Vec::new(), vec![rest.to_string()])
    } else if let Some(rest) = value.strip_prefix("in:") {
        (split(rest), Vec::new())
    } else {
        (vec![value.to_string()], Vec::new())
    };
    for agg in required.iter().chain(&forbidden) {
        if !is_uuid_like(agg) {
            return Err(bad(format!(
                "Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: {agg}"
            )));
        }
    }
    let mut required = required;
    required.sort();
    required.dedup();
    Ok((required, forbidden))
}

/// Every `member_of<suffix>`: (AND of ORs, forbidden).
pub fn member_of_params(q: &Pairs, suffix: &str, mv: Microversion) -> Result<(Vec<Vec<String>>, Vec<String>)> {
    let key = format!("member_of{suffix}");
    let values = all(q, &key);
    if !mv.at_least(1, 24) && values.len() > 1 {
        return Err(bad(format!("Multiple member_of{suffix} parameters are not supported")));
    }
    let mut required = Vec::new();
    let mut forbidden: Vec<String> = Vec::new();
    for v in values {
        let (r, f) = member_of(v)?;
        if !r.is_empty() {
            required.push(r);
        }
        if !f.is_empty() {
            if !mv.at_least(1, 32) {
                return Err(bad(format!(
                    "Forbidden member_of{suffix} parameters are not supported in the specified microversion"
                )));
            }
            for a in f {
                if !forbidden.contains(&a) {
                    forbidden.push(a);
                }
            }
        }
    }
    Ok((required, forbidden))
}

pub fn in_tree(value: &str) -> Result<String> {
    let v = value.trim();
    if !is_uuid_like(v) {
        return Err(bad(format!(
            "Invalid query string parameters: Expected 'in_tree' parameter to be a format of uuid. Got: {value}"
        )));
    }
    Ok(normalize_uuid(v))
}

/// A uuid in its canonical dashed lower-case form.
pub fn normalize_uuid(s: &str) -> String {
    uuid::Uuid::parse_str(s).map(|u| u.to_string()).unwrap_or_else(|_| s.to_string())
}

macro_rules! group_key {
    ($name:ident, $name33:ident, $prefix:literal) => {
        fn $name(k: &str) -> bool {
            k.strip_prefix($prefix).is_some_and(|s| s.is_empty() || is_suffix_numeric(s))
        }
        fn $name33(k: &str) -> bool {
            k.strip_prefix($prefix).is_some_and(|s| s.is_empty() || is_suffix_1_33(s))
        }
    };
}
group_key!(k_resources, k_resources33, "resources");
group_key!(k_required, k_required33, "required");
group_key!(k_member_of, k_member_of33, "member_of");
group_key!(k_in_tree, k_in_tree33, "in_tree");

fn limit_pattern(s: &str) -> bool {
    is_suffix_numeric(s)
}

/// A group key's pattern before and from 1.33: (text, test, text, test).
type KeyPattern = (&'static str, fn(&str) -> bool, &'static str, fn(&str) -> bool);

const LIMIT: Pattern = Pattern { text: "^[1-9][0-9]*$", test: limit_pattern };

/// The query schema of `GET /allocation_candidates` at a microversion.
pub fn candidates_schema(mv: Microversion) -> Schema {
    let s = Schema::string();
    let mut schema = Schema::object().prop("resources", s.clone()).required(&["resources"]).closed();
    if mv.at_least(1, 16) {
        schema = schema.prop("limit", Schema::string().matching(LIMIT).min_len(1));
    }
    if mv.at_least(1, 17) {
        schema = schema.prop("required", s.clone());
    }
    if mv.at_least(1, 21) {
        schema = schema.prop("member_of", s.clone());
    }
    if mv.at_least(1, 25) {
        schema = schema.without("resources").without("required").without("member_of");
        schema = schema.prop("group_policy", Schema::string().one_of_strings(&["none", "isolate"]));
        let pats: &[KeyPattern] = &[
            ("^resources([1-9][0-9]*)?$", k_resources, "^resources([a-zA-Z0-9_-]{1,64})?$", k_resources33),
            ("^required([1-9][0-9]*)?$", k_required, "^required([a-zA-Z0-9_-]{1,64})?$", k_required33),
            ("^member_of([1-9][0-9]*)?$", k_member_of, "^member_of([a-zA-Z0-9_-]{1,64})?$", k_member_of33),
            ("^in_tree([1-9][0-9]*)?$", k_in_tree, "^in_tree([a-zA-Z0-9_-]{1,64})?$", k_in_tree33),
        ];
        for (i, (text, test, text33, test33)) in pats.iter().enumerate() {
            if i == 3 && !mv.at_least(1, 31) {
                continue;
            }
            let p = if mv.at_least(1, 33) {
                Pattern { text: text33, test: *test33 }
            } else {
                Pattern { text, test: *test }
            };
            schema = schema.pattern_prop(p, s.clone());
        }
    }
    if mv.at_least(1, 35) {
        schema = schema.prop("root_required", s.clone());
    }
    if mv.at_least(1, 36) {
        schema = schema.prop("same_subtree", s);
    }
    schema
}

/// The request-group key: (prefix, suffix) of `resources1`, `required_NET`, ...
fn group_key(k: &str, verbose: bool) -> Option<(&'static str, &str)> {
    for prefix in ["resources", "required", "member_of", "in_tree"] {
        if let Some(suffix) = k.strip_prefix(prefix) {
            let ok = suffix.is_empty() || if verbose { is_suffix_1_33(suffix) } else { is_suffix_numeric(suffix) };
            if ok {
                return Some((prefix, suffix));
            }
        }
    }
    None
}

/// Parse (and check) a whole `GET /allocation_candidates` query.
pub fn candidate_request(q: &Pairs, mv: Microversion) -> Result<CandidateRequest> {
    validate(q, &candidates_schema(mv))?;
    let wide = request_wide(q)?;

    // groups, in order of first appearance of their suffix
    let verbose = mv.at_least(1, 33);
    let mut groups: Vec<RequestGroup> = Vec::new();
    for (k, v) in q {
        let Some((prefix, suffix)) = group_key(k, verbose) else { continue };
        let i = match groups.iter().position(|g| g.suffix == suffix) {
            Some(i) => i,
            None => {
                groups.push(RequestGroup {
                    suffix: suffix.to_string(),
                    use_same_provider: !suffix.is_empty(),
                    ..Default::default()
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        match prefix {
            "resources" => g.resources = resources(v)?,
            "required" => {
                let (r, f) = traits_params(q, k, mv)?;
                g.required_traits = r;
                g.forbidden_traits = f;
            }
            "member_of" => {
                let (r, f) = member_of_params(q, suffix, mv)?;
                g.member_of = r;
                g.forbidden_aggs = f;
            }
            _ => g.in_tree = Some(in_tree(v)?),
        }
    }

    if mv.at_least(1, 36) {
        let resourceless: Vec<&str> =
            groups.iter().filter(|g| g.resources.is_empty()).map(|g| g.suffix.as_str()).collect();
        if resourceless.len() == groups.len() {
            return Err(bad_code(
                "There must be at least one resources or resources[$S] parameter.",
                codes::QUERYPARAM_MISSING_VALUE,
            ));
        }
        let in_subtree: Vec<&String> = wide.same_subtrees.iter().flatten().collect();
        let bad_groups: Vec<String> =
            resourceless.iter().filter(|s| !in_subtree.iter().any(|x| x == s)).map(|s| format!("'{s}'")).collect();
        if !bad_groups.is_empty() {
            return Err(bad_code(
                format!(
                    "Resourceless suffixed group request should be specified in `same_subtree` query param: bad group(s) - [{}].",
                    bad_groups.join(", ")
                ),
                codes::QUERYPARAM_BAD_VALUE,
            ));
        }
        let unknown: Vec<String> =
            in_subtree.iter().filter(|s| !groups.iter().any(|g| &g.suffix == **s)).map(|s| format!("'{s}'")).collect();
        if !unknown.is_empty() {
            let all: Vec<String> = groups.iter().map(|g| format!("'{}'", g.suffix)).collect();
            return Err(bad_code(
                format!(
                    "Real suffixes should be specified in `same_subtree`: [{}] not found in [{}].",
                    unknown.join(", "),
                    all.join(", ")
                ),
                codes::QUERYPARAM_BAD_VALUE,
            ));
        }
    } else {
        let orphans: Vec<String> = groups
            .iter()
            .filter(|g| !g.required_traits.is_empty() && g.resources.is_empty())
            .map(|g| format!("required{}", g.suffix))
            .collect();
        if !orphans.is_empty() {
            return Err(bad(format!(
                "All traits parameters must be associated with resources.  Found the following orphaned traits keys: {}",
                orphans.join(", ")
            )));
        }
        let orphans: Vec<String> = groups
            .iter()
            .filter(|g| g.resources.is_empty() && (!g.member_of.is_empty() || !g.forbidden_aggs.is_empty()))
            .map(|g| format!("member_of{}", g.suffix))
            .collect();
        if !orphans.is_empty() {
            return Err(bad(format!(
                "All member_of parameters must be associated with resources. Found the following orphaned member_of keys: {}",
                orphans.join(", ")
            )));
        }
        if !groups.iter().all(|g| !g.resources.is_empty()) {
            return Err(bad("All request groups must specify resources."));
        }
        if groups.is_empty() {
            return Err(bad("At least one request group (`resources` or `resources{$S}`) is required."));
        }
    }
    if mv.at_least(1, 22) {
        let mut conflicts = Vec::new();
        for g in &groups {
            for any in &g.required_traits {
                if any.iter().all(|t| g.forbidden_traits.contains(t)) {
                    let mut names = any.clone();
                    names.sort();
                    conflicts.push(format!("required{}: ({})", g.suffix, names.join(", ")));
                }
            }
        }
        if !conflicts.is_empty() {
            conflicts.sort();
            return Err(bad(format!(
                "Conflicting required and forbidden traits found in the following traits keys: {}",
                conflicts.join(", ")
            )));
        }
    }
    if wide.group_policy.is_none() && groups.iter().filter(|g| g.use_same_provider).count() > 1 {
        return Err(bad(
            "The \"group_policy\" parameter is required when specifying more than one \"resources{N}\" parameter.",
        ));
    }
    Ok(CandidateRequest { groups, wide, nested_aware: mv.at_least(1, 29) })
}

fn request_wide(q: &Pairs) -> Result<RequestWide> {
    let mut wide = RequestWide::default();
    if let Some(l) = all(q, "limit").first() {
        wide.limit =
            Some(l.parse().map_err(|_| bad(format!("Invalid query string parameters: '{l}' is not a valid limit")))?);
    }
    wide.group_policy =
        all(q, "group_policy").first().map(|p| if *p == "isolate" { GroupPolicy::Isolate } else { GroupPolicy::None });
    let root = all(q, "root_required");
    if root.len() > 1 {
        return Err(bad_code(
            "Query parameter 'root_required' may be specified only once.",
            codes::ILLEGAL_DUPLICATE_QUERYPARAM,
        ));
    }
    if let Some(v) = root.first() {
        let (required, forbidden) = traits(v, true, false)?;
        let required: Vec<String> = required.into_iter().flatten().collect();
        let conflicts: Vec<&String> = forbidden.iter().filter(|f| required.contains(f)).collect();
        if !conflicts.is_empty() {
            return Err(bad_code(
                format!(
                    "Conflicting required and forbidden traits found in root_required: {}",
                    conflicts.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
                codes::QUERYPARAM_BAD_VALUE,
            ));
        }
        wide.root_required = required;
        wide.root_forbidden = forbidden;
    }
    for v in all(q, "same_subtree") {
        let mut set: Vec<String> = Vec::new();
        for s in v.split(',').map(str::trim) {
            if s.is_empty() {
                return Err(bad_code(
                    "Empty string (unsuffixed group) can not be specified in `same_subtree` ",
                    codes::QUERYPARAM_BAD_VALUE,
                ));
            }
            if !set.iter().any(|x| x == s) {
                set.push(s.to_string());
            }
        }
        wide.same_subtrees.push(set);
    }
    Ok(wide)
}

/// `GET /resource_providers` filters, parsed.
#[derive(Default, Debug, Clone)]
pub struct ProviderFilter {
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub in_tree: Option<String>,
    pub member_of: Vec<Vec<String>>,
    pub forbidden_aggs: Vec<String>,
    pub required_traits: Vec<Vec<String>>,
    pub forbidden_traits: Vec<String>,
    pub resources: Vec<(String, i64)>,
}

pub fn providers_schema(mv: Microversion) -> Schema {
    let mut s = Schema::object().prop("name", Schema::string()).prop("uuid", Schema::uuid()).closed();
    if mv.at_least(1, 3) {
        s = s.prop("member_of", Schema::string());
    }
    if mv.at_least(1, 4) {
        s = s.prop("resources", Schema::string());
    }
    if mv.at_least(1, 14) {
        s = s.prop("in_tree", Schema::uuid());
    }
    if mv.at_least(1, 18) {
        s = s.prop("required", Schema::string());
    }
    s
}

pub fn provider_filter(q: &Pairs, mv: Microversion) -> Result<ProviderFilter> {
    validate(q, &providers_schema(mv))?;
    let mut f = ProviderFilter::default();
    if q.iter().any(|(k, _)| k == "member_of") {
        let (r, forbidden) = member_of_params(q, "", mv)?;
        f.member_of = r;
        f.forbidden_aggs = forbidden;
    }
    if q.iter().any(|(k, _)| k == "required") {
        let (r, forbidden) = traits_params(q, "required", mv)?;
        f.required_traits = r;
        f.forbidden_traits = forbidden;
    }
    f.name = last(q, "name").map(str::to_string);
    f.uuid = last(q, "uuid").map(normalize_uuid);
    f.in_tree = last(q, "in_tree").map(normalize_uuid);
    if let Some(r) = last(q, "resources") {
        f.resources = resources(r)?;
    }
    Ok(f)
}

/// Turn a `TraitNotFound`/`ResourceClassNotFound` of a search into the 400 of the API.
pub fn search_error(e: PlacementError) -> PlacementError {
    match e {
        PlacementError::ResourceClassNotFound(_) => bad(format!("Invalid resource class in resources parameter: {e}")),
        PlacementError::TraitNotFound(_) => bad(e.to_string()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        s.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn resources_param() {
        assert_eq!(resources("VCPU:2,MEMORY_MB:512").unwrap(), vec![("VCPU".into(), 2), ("MEMORY_MB".into(), 512)]);
        assert!(resources("").unwrap_err().to_string().contains("Got: empty string."));
        assert!(resources("VCPU").unwrap_err().to_string().contains("Badly formed"));
        assert!(resources("VCPU:x").unwrap_err().to_string().contains("expected positive integer"));
        assert!(resources("VCPU:0").unwrap_err().to_string().contains("requires amount >= 1"));
    }

    #[test]
    fn traits_param() {
        let (r, f) = traits("A,!B,C", true, false).unwrap();
        assert_eq!(r, vec![vec!["A".to_string()], vec!["C".to_string()]]);
        assert_eq!(f, vec!["B".to_string()]);
        assert!(traits("A,!B", false, false).is_err());
        assert!(traits("in:A,B", true, false).is_err());
        let (r, _) = traits("in:B,A", true, true).unwrap();
        assert_eq!(r, vec![vec!["A".to_string(), "B".to_string()]]);
        assert!(traits("A,,B", true, true).is_err());
        assert!(traits("in:A,!B", true, true).is_err());
    }

    #[test]
    fn member_of_param() {
        let u = "5f0e4cbd-4d7e-4c0e-9a3c-3c1c1b6c5d11";
        assert_eq!(member_of(u).unwrap().0, vec![u.to_string()]);
        assert_eq!(member_of(&format!("!{u}")).unwrap().1, vec![u.to_string()]);
        assert!(member_of(&format!("{u},{u}")).is_err());
        assert!(member_of("in:nope").is_err());
    }

    #[test]
    fn candidate_requests() {
        let mv = Microversion(1, 39);
        let r = candidate_request(&q("resources=VCPU:1&resources1=SRIOV_NET_VF:1&resources2=SRIOV_NET_VF:1&group_policy=isolate&required1=CUSTOM_A&limit=5"), mv).unwrap();
        assert_eq!(r.groups.len(), 3);
        assert_eq!(r.groups[1].suffix, "1");
        assert!(r.groups[1].use_same_provider);
        assert_eq!(r.wide.limit, Some(5));
        assert_eq!(r.wide.group_policy, Some(GroupPolicy::Isolate));
        let e = candidate_request(&q("resources1=VCPU:1&resources2=VCPU:1"), mv).unwrap_err();
        assert!(e.to_string().contains("group_policy"), "{e}");
        let e = candidate_request(&q("resources=VCPU:1&bogus=1"), mv).unwrap_err();
        assert!(e.to_string().contains("'bogus' does not match any of the regexes"), "{e}");
        let e = candidate_request(&q("resources=VCPU:1&bogus=1"), Microversion(1, 10)).unwrap_err();
        assert!(e.to_string().contains("Additional properties are not allowed ('bogus' was unexpected)"), "{e}");
        let e = candidate_request(&q("limit=0&resources=VCPU:1"), mv).unwrap_err();
        assert!(e.to_string().contains("Failed validating 'pattern'"), "{e}");
        let e = candidate_request(&q("resources=VCPU:1&required=A,!A"), mv).unwrap_err();
        assert!(e.to_string().contains("Conflicting required and forbidden"), "{e}");
        let e = candidate_request(&q("required=A"), Microversion(1, 30)).unwrap_err();
        assert!(e.to_string().contains("orphaned traits keys: required"), "{e}");
        let e = candidate_request(&q("resources_x=VCPU:1"), Microversion(1, 30)).unwrap_err();
        assert!(e.to_string().contains("does not match any of the regexes"), "{e}");
        assert!(candidate_request(&q("resources_x=VCPU:1"), Microversion(1, 33)).is_ok());
        let e = candidate_request(&q("resources=VCPU:1&required1=A"), Microversion(1, 36)).unwrap_err();
        assert!(e.to_string().contains("same_subtree"), "{e}");
        assert!(
            candidate_request(
                &q("resources=VCPU:1&required1=A&resources2=VCPU:1&same_subtree=1,2&group_policy=none"),
                Microversion(1, 36)
            )
            .is_ok()
        );
        let e = candidate_request(&q("resources=VCPU:1&root_required=A&root_required=B"), mv).unwrap_err();
        assert!(e.to_string().contains("only once"), "{e}");
        let e = candidate_request(&q("resources=VCPU:1&required=in:A,B"), Microversion(1, 38)).unwrap_err();
        assert!(e.to_string().contains("1.39"), "{e}");
    }
}
