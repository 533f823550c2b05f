//! The compatibility cases: templates Packer 1.6.6 runs although they are
//! probably mistakes (kiln runs them too, with a warning or silently), and
//! a few that Packer refuses but kiln accepts. `-strict` (or `KILN_STRICT=1`)
//! makes every one of them an error. This is the one list; the README's
//! "-strict" table is checked against it by a test.

/// One compatibility case. Its `id` is printed with the diagnostic
/// (`warning[undeclared-user-variable]: …`) so users can look it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compat {
    /// `{{user `x`}}` of a variable nothing declares or sets renders "".
    UndeclaredUserVariable,
    /// A `-var` or var-file key that the template does not declare and
    /// nothing uses (Packer sets it anyway, to no effect).
    UnusedVariableSetting,
    /// A `-var` or var-file key that the template does not declare, used
    /// through `{{user}}` (Packer merges every key into the variables).
    UndeclaredVariableSetting,
    /// The top-level `push` key (Atlas, gone) is ignored.
    PushIgnored,
    /// A root-level `_comment` that is not a string (Packer refuses it).
    RootCommentNotString,
    /// A `_comment` key inside a builder, provisioner or post-processor
    /// (Packer refuses it).
    CommentInSection,
    /// A key Packer renamed or removed, read under its old name.
    DeprecatedKey,
    /// A key given twice in one object: the last one is used.
    DuplicateKey,
    /// `min_packer_version` newer than 1.6.6 (Packer refuses the template).
    NewerMinPackerVersion,
}

/// Every case, in the order the README lists them.
pub const ALL: &[Compat] = &[
    Compat::UndeclaredUserVariable,
    Compat::UnusedVariableSetting,
    Compat::UndeclaredVariableSetting,
    Compat::PushIgnored,
    Compat::RootCommentNotString,
    Compat::CommentInSection,
    Compat::DeprecatedKey,
    Compat::DuplicateKey,
    Compat::NewerMinPackerVersion,
];

impl Compat {
    pub fn id(self) -> &'static str {
        match self {
            Compat::UndeclaredUserVariable => "undeclared-user-variable",
            Compat::UnusedVariableSetting => "unused-variable-setting",
            Compat::UndeclaredVariableSetting => "undeclared-variable-setting",
            Compat::PushIgnored => "push-ignored",
            Compat::RootCommentNotString => "root-comment-not-string",
            Compat::CommentInSection => "comment-in-section",
            Compat::DeprecatedKey => "deprecated-key",
            Compat::DuplicateKey => "duplicate-key",
            Compat::NewerMinPackerVersion => "newer-min-packer-version",
        }
    }

    /// Whether kiln says anything without `-strict`. The silent cases are
    /// ones Packer users rely on (or that kiln merely tolerates) where a
    /// warning on every run would only be noise.
    pub fn warns_by_default(self) -> bool {
        !matches!(
            self,
            Compat::UndeclaredVariableSetting
                | Compat::RootCommentNotString
                | Compat::CommentInSection
        )
    }
}

/// Reads `KILN_STRICT`: set and not empty, `0` or `false` means strict.
pub fn strict_from_env(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && !matches!(v, "0" | "false" | "FALSE" | "False"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(ALL[i + 1..].iter().all(|b| a.id() != b.id()), "{}", a.id());
        }
    }

    /// A new case must be added to `ALL` (the README test reads `ALL`): the
    /// match below stops compiling until it has an arm, and its position
    /// must then exist in `ALL`.
    #[test]
    fn all_holds_every_case() {
        let position = |c: Compat| match c {
            Compat::UndeclaredUserVariable => 0,
            Compat::UnusedVariableSetting => 1,
            Compat::UndeclaredVariableSetting => 2,
            Compat::PushIgnored => 3,
            Compat::RootCommentNotString => 4,
            Compat::CommentInSection => 5,
            Compat::DeprecatedKey => 6,
            Compat::DuplicateKey => 7,
            Compat::NewerMinPackerVersion => 8,
        };
        for (i, c) in ALL.iter().enumerate() {
            assert_eq!(position(*c), i, "{}", c.id());
        }
        assert_eq!(ALL.len(), 9);
    }

    #[test]
    fn env_values() {
        assert!(strict_from_env(Some("1")));
        assert!(strict_from_env(Some("true")));
        assert!(!strict_from_env(Some("0")));
        assert!(!strict_from_env(Some("")));
        assert!(!strict_from_env(None));
    }
}
