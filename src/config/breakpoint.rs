//! The `breakpoint` provisioner's keys: `disable` and `note`, as Packer's.

use super::decode::Fields;

#[derive(Debug, Clone, Default)]
pub struct BreakpointConfig {
    /// Skip the pause (breakpoints toggled off without removing them).
    pub disable: bool,
    /// Shown when the build pauses, to tell breakpoints apart.
    pub note: String,
}

pub(crate) fn decode_breakpoint(f: &mut Fields<'_>) -> Option<BreakpointConfig> {
    Some(BreakpointConfig {
        disable: f.bool("disable").unwrap_or(false),
        note: f.string("note").unwrap_or_default(),
    })
}
