//! Errors from parsing and rendering a template string, each with the byte
//! offset of the offending character, function name or field, so callers can
//! point a caret at it. Messages are written for template authors.

use std::fmt;

/// A parse or render failure at a byte offset in the template source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct InterpError {
    /// Byte offset in the source string the error is about.
    pub offset: usize,
    pub kind: InterpErrorKind,
}

impl InterpError {
    pub(crate) fn new(offset: usize, kind: InterpErrorKind) -> Self {
        InterpError { offset, kind }
    }
}

/// Renders an optional suggestion as ` (did you mean `x`?)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DidYouMean(pub Option<String>);

impl fmt::Display for DidYouMean {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(s) => write!(f, " (did you mean `{s}`?)"),
            None => Ok(()),
        }
    }
}

/// What went wrong. `Display` is the user-facing message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpErrorKind {
    // ---- syntax ----
    #[error("unterminated action: expected `}}}}`")]
    UnterminatedAction,
    #[error("unterminated comment: expected `*/}}}}`")]
    UnterminatedComment,
    #[error("a comment must end right before `}}}}`")]
    CommentNotAtEnd,
    #[error("unexpected character `{0}` in action")]
    UnexpectedChar(char),
    #[error("unterminated string literal")]
    UnterminatedString,
    #[error("unterminated character literal")]
    UnterminatedChar,
    #[error("invalid escape sequence `{0}` in literal")]
    InvalidEscape(String),
    #[error("invalid character literal")]
    InvalidCharLiteral,
    #[error("invalid number `{0}`")]
    InvalidNumber(String),
    #[error("number `{0}` is not an integer; kiln supports integers only")]
    FloatNotSupported(String),
    #[error("unexpected {found} {context}")]
    UnexpectedToken {
        found: String,
        context: &'static str,
    },
    #[error("missing value for {0}")]
    MissingValue(&'static str),
    #[error("`{0}` is not supported by kiln")]
    UnsupportedSyntax(&'static str),
    #[error("`{{{{{0}}}}}` without a matching `{{{{if}}}}` or `{{{{with}}}}`")]
    UnexpectedBlockKeyword(&'static str),
    #[error("`{{{{{0}}}}}` is missing its `{{{{end}}}}`")]
    UnclosedBlock(&'static str),
    #[error("nesting is too deep (more than {0} levels)")]
    NestingTooDeep(usize),
    #[error("{0} is not a function and cannot take arguments")]
    ArgsToNonFunction(String),

    // ---- functions ----
    #[error("unknown function `{name}`{suggestion}")]
    UnknownFunction {
        name: String,
        suggestion: DidYouMean,
    },
    #[error("function `{name}` is not supported by kiln{hint}")]
    UnsupportedFunction { name: String, hint: &'static str },
    #[error("`{function}` takes {expected}, but is given {found}")]
    WrongArgCount {
        function: String,
        expected: String,
        found: usize,
    },
    #[error("argument {position} of `{function}` must be {expected}, but is {found}")]
    WrongArgType {
        function: String,
        position: usize,
        expected: &'static str,
        found: &'static str,
    },

    // ---- evaluation ----
    #[error("variable `{name}` is not declared in `variables`{suggestion}")]
    UndeclaredVariable {
        name: String,
        suggestion: DidYouMean,
    },
    /// An error inside a user variable's build-time fields, where it is used.
    #[error("variable `{name}`: {inner}")]
    InVariable {
        name: String,
        inner: Box<InterpErrorKind>,
    },
    #[error("env can only be used in variable defaults")]
    EnvNotAllowed,
    #[error("`{0}` is not available here")]
    NotAvailable(&'static str),
    #[error("`build` values are only available in provisioners and post-processors")]
    NoBuildValues,
    #[error("unknown build value `{name}`{suggestion}")]
    UnknownBuildValue {
        name: String,
        suggestion: DidYouMean,
    },
    #[error("field `.{name}` is not available here{suggestion}")]
    UnknownField {
        name: String,
        suggestion: DidYouMean,
    },
    #[error("cannot read field `.{name}` of {found}")]
    FieldOfNonMap { name: String, found: &'static str },
    #[error("`split`: there is no element {index} when splitting by {separator:?} (found {count})")]
    SplitOutOfRange {
        index: i64,
        separator: String,
        count: usize,
    },
    #[error("index {index} is out of range (length {len})")]
    IndexOutOfRange { index: i64, len: usize },
    #[error("map has no key {0:?}")]
    MissingKey(String),
    #[error("cannot index {0}")]
    CannotIndex(&'static str),
    #[error("cannot take the length of {0}")]
    NoLength(&'static str),
    #[error("cannot compare {left} with {right}")]
    IncompatibleComparison {
        left: &'static str,
        right: &'static str,
    },
    #[error("{0} cannot be ordered")]
    NotOrdered(&'static str),
    #[error("the result would be longer than {0} bytes")]
    TooLarge(usize),
}

/// The closest candidate to `name`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> DidYouMean {
    let lower = name.to_lowercase();
    let limit = (name.chars().count() / 3).max(1);
    let best = candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d);
    DidYouMean(best.map(|(_, c)| c.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["lower", "upper", "user"];
        assert_eq!(
            did_you_mean("lowr", names).0.as_deref(),
            Some("lower"),
            "one letter missing"
        );
        assert_eq!(
            did_you_mean("HTTPIp", ["HTTPIP", "Name"]).0.as_deref(),
            Some("HTTPIP")
        );
        assert_eq!(did_you_mean("completely_else", names).0, None);
    }

    #[test]
    fn messages_read_well() {
        let e = InterpError::new(
            3,
            InterpErrorKind::UnknownFunction {
                name: "lowr".into(),
                suggestion: DidYouMean(Some("lower".into())),
            },
        );
        assert_eq!(
            e.to_string(),
            "unknown function `lowr` (did you mean `lower`?)"
        );
        assert_eq!(
            InterpErrorKind::UnterminatedAction.to_string(),
            "unterminated action: expected `}}`"
        );
        assert_eq!(
            InterpErrorKind::UnclosedBlock("if").to_string(),
            "`{{if}}` is missing its `{{end}}`"
        );
        assert_eq!(
            InterpErrorKind::UndeclaredVariable {
                name: "projet_id".into(),
                suggestion: DidYouMean(Some("project_id".into()))
            }
            .to_string(),
            "variable `projet_id` is not declared in `variables` (did you mean `project_id`?)"
        );
    }
}
