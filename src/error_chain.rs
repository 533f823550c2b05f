//! An error and its causes as one text, for the places that print or log
//! a whole chain.

use std::error::Error;

/// Each cause below `first` (itself included), every one preceded by
/// `separator`: `"\n  caused by: "` for the summary, `": "` inline.
pub fn causes(first: Option<&(dyn Error + 'static)>, separator: &str) -> String {
    let mut out = String::new();
    let mut cause = first;
    while let Some(e) = cause {
        out.push_str(separator);
        out.push_str(&e.to_string());
        cause = e.source();
    }
    out
}

/// `e` followed by its causes, joined with `separator`.
pub fn error_chain(e: &(dyn Error + 'static), separator: &str) -> String {
    format!("{e}{}", causes(e.source(), separator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn joins_every_cause() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e, ": "), "outer: inner");
        assert_eq!(causes(None, ": "), "");
    }
}
