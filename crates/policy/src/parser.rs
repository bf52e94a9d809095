//! Parser for the oslo.policy check-string language.
//!
//! Tokenisation follows oslo.policy: the string is split on whitespace, and
//! each piece may carry leading `(` and trailing `)` characters which become
//! parenthesis tokens (a substitution such as `%(project_id)s` therefore keeps
//! its own parentheses). Pieces spelling `and`, `or` or `not` (in any case)
//! are operators; everything else is a check.
//!
//! Grammar, loosest binding first:
//!
//! ```text
//! expr    := and_expr ( "or" and_expr )*
//! and_expr:= unary ( "and" unary )*
//! unary   := "not" unary | "(" expr ")" | check
//! check   := "@" | "!" | kind ":" match
//! ```
//!
//! Unlike oslo.policy, which logs malformed rules and treats them as `!`,
//! this parser reports an error naming the rule and the byte position.

use crate::error::PolicyError;
use crate::rule::{Check, Operand, Part, Rule, Template};

/// Deepest nesting of parentheses / `not` accepted, so that hostile or
/// broken policy files cannot exhaust the stack.
const MAX_NESTING: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind<'a> {
    Open,
    Close,
    And,
    Or,
    Not,
    Check(&'a str),
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: TokenKind<'a>,
    pos: usize,
}

/// Parses a check string that does not belong to a named rule.
pub fn parse(check: &str) -> Result<Rule, PolicyError> {
    parse_rule(crate::error::INLINE_RULE, check)
}

/// Parses the check string of the rule called `name` (the name is only used
/// in error messages).
pub fn parse_rule(name: &str, check: &str) -> Result<Rule, PolicyError> {
    if check.is_empty() {
        return Ok(Rule::Allow);
    }
    let tokens = tokenize(check);
    if tokens.is_empty() {
        return Err(PolicyError::parse(name, check, 0, "check string is only whitespace"));
    }
    let mut parser = Parser { name, check, tokens, next: 0 };
    let rule = parser.expr(0)?;
    if let Some(token) = parser.peek() {
        let reason = match token.kind {
            TokenKind::Close => "unbalanced `)`",
            _ => "expected `and`, `or` or end of check string",
        };
        return Err(parser.error_at(token.pos, reason));
    }
    Ok(rule)
}

fn tokenize(check: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut rest = check;
    let mut offset = 0;
    loop {
        let trimmed = rest.trim_start();
        offset += rest.len() - trimmed.len();
        rest = trimmed;
        if rest.is_empty() {
            break;
        }
        let piece_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let piece = &rest[..piece_len];
        push_piece(&mut tokens, piece, offset);
        offset += piece_len;
        rest = &rest[piece_len..];
    }
    tokens
}

fn push_piece<'a>(tokens: &mut Vec<Token<'a>>, piece: &'a str, offset: usize) {
    let body = piece.trim_start_matches('(');
    let opens = piece.len() - body.len();
    for i in 0..opens {
        tokens.push(Token { kind: TokenKind::Open, pos: offset + i });
    }
    let core = body.trim_end_matches(')');
    let core_pos = offset + opens;
    if !core.is_empty() {
        let kind = if core.eq_ignore_ascii_case("and") {
            TokenKind::And
        } else if core.eq_ignore_ascii_case("or") {
            TokenKind::Or
        } else if core.eq_ignore_ascii_case("not") {
            TokenKind::Not
        } else {
            TokenKind::Check(core)
        };
        tokens.push(Token { kind, pos: core_pos });
    }
    for i in 0..body.len() - core.len() {
        tokens.push(Token { kind: TokenKind::Close, pos: core_pos + core.len() + i });
    }
}

struct Parser<'a> {
    name: &'a str,
    check: &'a str,
    tokens: Vec<Token<'a>>,
    next: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.next).copied()
    }

    fn bump(&mut self) -> Option<Token<'a>> {
        let token = self.peek();
        if token.is_some() {
            self.next += 1;
        }
        token
    }

    fn error_at(&self, pos: usize, reason: impl Into<String>) -> PolicyError {
        PolicyError::parse(self.name, self.check, pos, reason)
    }

    fn end_pos(&self) -> usize {
        self.check.len()
    }

    fn expr(&mut self, depth: usize) -> Result<Rule, PolicyError> {
        let mut members = vec![self.and_expr(depth)?];
        while let Some(Token { kind: TokenKind::Or, .. }) = self.peek() {
            self.bump();
            members.push(self.and_expr(depth)?);
        }
        Ok(collapse(members, Rule::Or))
    }

    fn and_expr(&mut self, depth: usize) -> Result<Rule, PolicyError> {
        let mut members = vec![self.unary(depth)?];
        while let Some(Token { kind: TokenKind::And, .. }) = self.peek() {
            self.bump();
            members.push(self.unary(depth)?);
        }
        Ok(collapse(members, Rule::And))
    }

    fn unary(&mut self, depth: usize) -> Result<Rule, PolicyError> {
        let Some(token) = self.bump() else {
            return Err(self.error_at(self.end_pos(), "check string ends where a check was expected"));
        };
        if depth >= MAX_NESTING {
            return Err(self.error_at(token.pos, format!("nested more than {MAX_NESTING} levels deep")));
        }
        match token.kind {
            TokenKind::Not => Ok(Rule::Not(Box::new(self.unary(depth + 1)?))),
            TokenKind::Open => {
                let inner = self.expr(depth + 1)?;
                match self.bump() {
                    Some(Token { kind: TokenKind::Close, .. }) => Ok(inner),
                    Some(other) => Err(self.error_at(other.pos, "expected `)`")),
                    None => Err(self.error_at(token.pos, "unbalanced `(`: no matching `)`")),
                }
            }
            TokenKind::Check(text) => self.check(text, token.pos),
            TokenKind::Close => Err(self.error_at(token.pos, "unexpected `)` where a check was expected")),
            TokenKind::And | TokenKind::Or => Err(self.error_at(token.pos, "operator where a check was expected")),
        }
    }

    fn check(&self, text: &str, pos: usize) -> Result<Rule, PolicyError> {
        match text {
            "@" => return Ok(Rule::Allow),
            "!" => return Ok(Rule::Deny),
            _ => {}
        }
        let Some((kind, value)) = text.split_once(':') else {
            let reason = if is_quoted(text) {
                "a quoted string is not a check on its own".to_owned()
            } else {
                format!("`{text}` is not a check (expected `kind:value`, `@` or `!`)")
            };
            return Err(self.error_at(pos, reason));
        };
        if kind.is_empty() {
            return Err(self.error_at(pos, "missing check kind before `:`"));
        }
        let value_pos = pos + kind.len() + 1;
        if value.is_empty() {
            return Err(self.error_at(value_pos, format!("missing value after `{kind}:`")));
        }
        let check = match kind {
            "rule" => Check::Rule(value.to_owned()),
            "role" => Check::Role(self.template(value, value_pos)?),
            "http" | "https" => Check::Remote { scheme: kind.to_owned(), url: value.to_owned() },
            _ => Check::Generic { left: operand(kind), right: self.template(value, value_pos)? },
        };
        Ok(Rule::Check(check))
    }

    /// Parses the right-hand side of a check: a quoted literal, or text with
    /// `%(name)s` substitutions (`%%` is a literal `%`).
    fn template(&self, text: &str, pos: usize) -> Result<Template, PolicyError> {
        if is_quoted(text) {
            let inner = &text[1..text.len() - 1];
            return Ok(Template::new(text.to_owned(), vec![Part::Text(inner.to_owned())]));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(idx) = rest.find('%') {
            literal.push_str(&rest[..idx]);
            let here = pos + (text.len() - rest.len()) + idx;
            let after = &rest[idx + 1..];
            if let Some(tail) = after.strip_prefix('%') {
                literal.push('%');
                rest = tail;
            } else if let Some(tail) = after.strip_prefix('(') {
                let Some(close) = tail.find(')') else {
                    return Err(self.error_at(here, "unterminated `%(` substitution"));
                };
                let key = &tail[..close];
                if key.is_empty() {
                    return Err(self.error_at(here, "empty `%()s` substitution"));
                }
                let Some(tail) = tail[close + 1..].strip_prefix('s') else {
                    return Err(self.error_at(here, format!("substitution `%({key})` must end in `s`")));
                };
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                parts.push(Part::Target(key.to_owned()));
                rest = tail;
            } else {
                return Err(self.error_at(here, "`%` must start `%(name)s` or be doubled as `%%`"));
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template::new(text.to_owned(), parts))
    }
}

fn collapse(mut members: Vec<Rule>, build: fn(Vec<Rule>) -> Rule) -> Rule {
    if members.len() == 1
        && let Some(only) = members.pop()
    {
        return only;
    }
    build(members)
}

fn is_quoted(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 2 && (bytes[0] == b'\'' || bytes[0] == b'"') && bytes[bytes.len() - 1] == bytes[0]
}

/// Classifies the left-hand side of a generic check: a Python literal (as
/// oslo.policy's `ast.literal_eval` would accept) or a credentials key.
fn operand(kind: &str) -> Operand {
    let literal = |value: String| Operand::Literal { source: kind.to_owned(), value };
    if is_quoted(kind) {
        return literal(kind[1..kind.len() - 1].to_owned());
    }
    match kind {
        "True" | "False" | "None" => return literal(kind.to_owned()),
        _ => {}
    }
    if let Some(number) = python_number(kind) {
        return literal(number);
    }
    Operand::Creds(kind.to_owned())
}

/// `str()` of a decimal Python number literal (`1`, `-2`, `1.50`), if `text`
/// is one.
fn python_number(text: &str) -> Option<String> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int_part) || !frac_part.is_none_or(digits) {
        return None;
    }
    match frac_part {
        None => {
            if int_part.is_empty() {
                return None;
            }
            text.parse::<i128>().ok().map(|n| n.to_string())
        }
        Some(frac) => {
            if int_part.is_empty() && frac.is_empty() {
                return None;
            }
            text.parse::<f64>().ok().map(|n| format!("{n:?}"))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn generic(left: Operand, right: &str) -> Rule {
        let parts = if right.contains('%') {
            vec![Part::Target(right[2..right.len() - 2].to_owned())]
        } else {
            vec![Part::Text(right.to_owned())]
        };
        Rule::Check(Check::Generic { left, right: Template::new(right.to_owned(), parts) })
    }

    fn role(name: &str) -> Rule {
        Rule::Check(Check::Role(Template::new(name.to_owned(), vec![Part::Text(name.to_owned())])))
    }

    fn rule_ref(name: &str) -> Rule {
        Rule::Check(Check::Rule(name.to_owned()))
    }

    fn parse_err(check: &str) -> (usize, String) {
        match parse(check) {
            Err(PolicyError::Parse { position, reason, .. }) => (position, reason),
            other => panic!("expected a parse error for {check:?}, got {other:?}"),
        }
    }

    #[test]
    fn constants() {
        assert_eq!(parse("").unwrap(), Rule::Allow);
        assert_eq!(parse("@").unwrap(), Rule::Allow);
        assert_eq!(parse("!").unwrap(), Rule::Deny);
        assert_eq!(parse("(@)").unwrap(), Rule::Allow);
        assert_eq!(parse("  !  ").unwrap(), Rule::Deny);
    }

    #[test]
    fn check_kinds() {
        assert_eq!(parse("role:admin").unwrap(), role("admin"));
        assert_eq!(parse("rule:admin_required").unwrap(), rule_ref("admin_required"));
        assert_eq!(
            parse("project_id:%(project_id)s").unwrap(),
            generic(Operand::Creds("project_id".into()), "%(project_id)s")
        );
        assert_eq!(
            parse("http://example.com/check").unwrap(),
            Rule::Check(Check::Remote { scheme: "http".into(), url: "//example.com/check".into() })
        );
        // Only the first colon separates kind from value.
        assert_eq!(
            parse("role:compute:admin").unwrap(),
            Rule::Check(Check::Role(Template::new("compute:admin".into(), vec![Part::Text("compute:admin".into())])))
        );
    }

    #[test]
    fn literal_operands() {
        let lit = |source: &str, value: &str| Operand::Literal { source: source.into(), value: value.into() };
        assert_eq!(operand("'member'"), lit("'member'", "member"));
        assert_eq!(operand("\"member\""), lit("\"member\"", "member"));
        assert_eq!(operand("True"), lit("True", "True"));
        assert_eq!(operand("False"), lit("False", "False"));
        assert_eq!(operand("None"), lit("None", "None"));
        assert_eq!(operand("1"), lit("1", "1"));
        assert_eq!(operand("-7"), lit("-7", "-7"));
        assert_eq!(operand("+7"), lit("+7", "7"));
        assert_eq!(operand("1.50"), lit("1.50", "1.5"));
        assert_eq!(operand("2."), lit("2.", "2.0"));
        assert_eq!(operand("true"), Operand::Creds("true".into()));
        assert_eq!(operand("is_admin"), Operand::Creds("is_admin".into()));
        assert_eq!(operand("token.project.id"), Operand::Creds("token.project.id".into()));
        assert_eq!(operand("1.2.3"), Operand::Creds("1.2.3".into()));
        assert_eq!(operand("."), Operand::Creds(".".into()));
        assert_eq!(operand("-"), Operand::Creds("-".into()));
        assert_eq!(operand("'"), Operand::Creds("'".into()));
    }

    #[test]
    fn templates() {
        let rule = parse("x:a%(b)s-%(c.d)s%%e").unwrap();
        let Rule::Check(Check::Generic { right, .. }) = rule else {
            panic!("not a generic check");
        };
        assert_eq!(
            right.parts,
            vec![
                Part::Text("a".into()),
                Part::Target("b".into()),
                Part::Text("-".into()),
                Part::Target("c.d".into()),
                Part::Text("%e".into()),
            ]
        );
        assert_eq!(right.as_str(), "a%(b)s-%(c.d)s%%e");
        assert_eq!(right.target_keys().collect::<Vec<_>>(), ["b", "c.d"]);

        let quoted = parse("x:'%(not_substituted)s'").unwrap();
        let Rule::Check(Check::Generic { right, .. }) = quoted else {
            panic!("not a generic check");
        };
        assert_eq!(right.parts, vec![Part::Text("%(not_substituted)s".into())]);
    }

    #[test]
    fn precedence_not_and_or() {
        let (a, b, c, d) = (role("a"), role("b"), role("c"), role("d"));
        assert_eq!(
            parse("role:a or role:b and role:c").unwrap(),
            Rule::Or(vec![a.clone(), Rule::And(vec![b.clone(), c.clone()])])
        );
        assert_eq!(
            parse("role:a and role:b or role:c and role:d").unwrap(),
            Rule::Or(vec![Rule::And(vec![a.clone(), b.clone()]), Rule::And(vec![c.clone(), d.clone()])])
        );
        assert_eq!(parse("not role:a and role:b").unwrap(), Rule::And(vec![Rule::Not(Box::new(a.clone())), b.clone()]));
        assert_eq!(
            parse("not (role:a and role:b)").unwrap(),
            Rule::Not(Box::new(Rule::And(vec![a.clone(), b.clone()])))
        );
        assert_eq!(
            parse("(role:a or role:b) and role:c").unwrap(),
            Rule::And(vec![Rule::Or(vec![a.clone(), b.clone()]), c.clone()])
        );
        assert_eq!(parse("role:a or role:b or role:c").unwrap(), Rule::Or(vec![a.clone(), b.clone(), c.clone()]));
        assert_eq!(parse("not not role:a").unwrap(), Rule::Not(Box::new(Rule::Not(Box::new(a.clone())))));
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(
            parse("role:a AND role:b Or NOT role:c").unwrap(),
            parse("role:a and role:b or not role:c").unwrap()
        );
    }

    #[test]
    fn parentheses_glued_to_checks() {
        // `))and(` is one whitespace-separated piece, as in oslo.policy, so
        // it is not read as `) and (`.
        assert!(parse("((role:a or role:b))and(role:c)").is_err());
        assert_eq!(
            parse("((role:a or role:b)) and (role:c)").unwrap(),
            Rule::And(vec![Rule::Or(vec![role("a"), role("b")]), role("c")])
        );
        // A substitution keeps its parentheses even at the end of a group.
        assert_eq!(parse("(user_id:%(user_id)s)").unwrap(), generic(Operand::Creds("user_id".into()), "%(user_id)s"));
    }

    #[test]
    fn errors_name_rule_and_position() {
        assert_eq!(parse_err("role:"), (5, "missing value after `role:`".to_owned()));
        assert_eq!(parse_err(":admin").0, 0);
        assert_eq!(parse_err("role:a and").0, 10);
        assert_eq!(parse_err("(role:a").0, 0);
        assert!(parse_err("(role:a").1.contains("unbalanced `(`"));
        assert_eq!(parse_err("role:a)").0, 6);
        assert!(parse_err("role:a)").1.contains("unbalanced `)`"));
        assert_eq!(parse_err("role:a role:b").0, 7);
        assert_eq!(parse_err("admin").0, 0);
        assert_eq!(parse_err("and role:a").0, 0);
        assert_eq!(parse_err("role:a or or role:b").0, 10);
        assert_eq!(parse_err("()").0, 1);
        assert_eq!(parse_err("not").0, 3);
        assert_eq!(parse_err("   ").0, 0);
        assert!(parse_err("'quoted'").1.contains("quoted string"));
        assert_eq!(parse_err("x:%(unterminated").0, 2);
        assert_eq!(parse_err("x:ab%(k)d").0, 4);
        assert_eq!(parse_err("x:%()s").0, 2);
        assert_eq!(parse_err("x:50%").0, 4);

        let err = parse_rule("identity:get_user", "role:admin or (").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("identity:get_user"), "{text}");
        assert!(text.contains("byte 15"), "{text}");
        assert!(text.contains("role:admin or ("), "{text}");
    }

    #[test]
    fn nesting_limit() {
        let deep = format!("{}role:a{}", "(".repeat(MAX_NESTING + 5), ")".repeat(MAX_NESTING + 5));
        assert!(parse_err(&deep).1.contains("nested"));
        let nots = format!("{}role:a", "not ".repeat(MAX_NESTING + 5));
        assert!(parse_err(&nots).1.contains("nested"));
        let ok = format!("{}role:a{}", "(".repeat(50), ")".repeat(50));
        assert_eq!(parse(&ok).unwrap(), role("a"));
    }

    #[test]
    fn display_round_trips() {
        for check in [
            "role:a or role:b and not role:c",
            "(rule:x or (role:reader and system_scope:all)) and 'member':%(target.role.name)s",
            "not None:%(target.project.domain_id)s",
            "@",
            "!",
            "http:https://example.com/%(x)s",
        ] {
            let rule = parse(check).unwrap();
            let shown = rule.to_string();
            assert_eq!(parse(&shown).unwrap(), rule, "{check} -> {shown}");
        }
        assert_eq!(
            parse("role:a or role:b and not role:c").unwrap().to_string(),
            "(role:a or (role:b and not role:c))"
        );
    }
}
