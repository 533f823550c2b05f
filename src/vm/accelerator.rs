//! The accelerator a QEMU guest runs with.

use std::fmt;

/// An accelerator by its QEMU name. `accelerator: auto` is not one of
/// them: configuration keeps it as "none requested" and the driver's probe
/// settles on one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Accelerator {
    Kvm,
    Tcg,
    Hvf,
    Whpx,
    Xen,
    Hax,
    /// `accelerator: none`: no `accel=` at all (QEMU's own default, TCG).
    None,
}

impl Accelerator {
    /// Every spelling the `accelerator` setting takes, besides `auto`.
    pub const ALL: [Self; 7] = [
        Self::Kvm,
        Self::Tcg,
        Self::Hvf,
        Self::Whpx,
        Self::Xen,
        Self::Hax,
        Self::None,
    ];

    /// The configuration's (and QEMU's) spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
            Self::Hvf => "hvf",
            Self::Whpx => "whpx",
            Self::Xen => "xen",
            Self::Hax => "hax",
            Self::None => "none",
        }
    }

    /// The guest was emulated in software rather than run on hardware
    /// virtualisation: a box must say so (libvirt's `driver = "qemu"`),
    /// since a host without KVM cannot start a `kvm` domain.
    pub fn is_emulated(self) -> bool {
        matches!(self, Self::Tcg | Self::None)
    }
}

impl fmt::Display for Accelerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_back_to_itself() {
        for a in Accelerator::ALL {
            assert_eq!(Accelerator::parse(a.as_str()), Some(a));
        }
        assert_eq!(Accelerator::parse("auto"), None);
        assert_eq!(Accelerator::parse("KVM"), None);
    }

    #[test]
    fn only_tcg_and_none_are_emulated() {
        let emulated: Vec<_> = Accelerator::ALL
            .into_iter()
            .filter(|a| a.is_emulated())
            .collect();
        assert_eq!(emulated, [Accelerator::Tcg, Accelerator::None]);
    }
}
