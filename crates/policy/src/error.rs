//! Errors raised while parsing check strings or loading policy files.

use std::path::PathBuf;

/// Name used in [`PolicyError::Parse`] when a check string is parsed on its
/// own, outside of any named rule (see [`crate::parse`]).
pub const INLINE_RULE: &str = "<inline>";

/// Everything that can go wrong while building an [`crate::Enforcer`].
///
/// Enforcement itself never fails: a rule that cannot be evaluated denies.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A check string is not valid oslo.policy syntax.
    #[error("invalid check string for policy rule `{rule}` at byte {position}: {reason} (in `{check}`)")]
    Parse {
        /// Name of the rule whose check string failed to parse
        /// ([`INLINE_RULE`] for [`crate::parse`]).
        rule: String,
        /// The offending check string.
        check: String,
        /// Byte offset into `check` where the problem was detected.
        position: usize,
        /// What is wrong.
        reason: String,
    },

    /// A policy file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A policy document is not valid YAML (or JSON).
    #[error("policy document {origin} is not valid YAML/JSON: {source}")]
    Syntax {
        /// Where the document came from (a path, or `<string>`).
        origin: String,
        /// The underlying YAML error.
        #[source]
        source: serde_yaml_ng::Error,
    },

    /// A policy document is well-formed YAML but not a mapping of rule names
    /// to check strings.
    #[error("policy document {origin}: {reason}")]
    Document {
        /// Where the document came from (a path, or `<string>`).
        origin: String,
        /// What is wrong.
        reason: String,
    },
}

impl PolicyError {
    pub(crate) fn parse(rule: &str, check: &str, position: usize, reason: impl Into<String>) -> Self {
        PolicyError::Parse { rule: rule.to_owned(), check: check.to_owned(), position, reason: reason.into() }
    }
}
