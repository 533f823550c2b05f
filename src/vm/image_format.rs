//! The format of a disk image.

use std::fmt;

/// Disk image formats kiln creates, converts to or finds in an artifact,
/// by the names qemu and qemu-img use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Qcow2,
    Raw,
    Vmdk,
    Vdi,
    Vhdx,
    /// VHD (qemu calls it `vpc`).
    Vpc,
}

impl ImageFormat {
    pub const ALL: [Self; 6] = [
        Self::Qcow2,
        Self::Raw,
        Self::Vmdk,
        Self::Vdi,
        Self::Vhdx,
        Self::Vpc,
    ];

    /// The qemu-img name; which of them a setting accepts is the
    /// setting's own rule (the qemu builder's `format` takes two).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The name qemu and qemu-img use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qcow2 => "qcow2",
            Self::Raw => "raw",
            Self::Vmdk => "vmdk",
            Self::Vdi => "vdi",
            Self::Vhdx => "vhdx",
            Self::Vpc => "vpc",
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_itself() {
        for f in ImageFormat::ALL {
            assert_eq!(ImageFormat::parse(f.as_str()), Some(f));
        }
        assert_eq!(ImageFormat::parse("vhd"), None);
        assert_eq!(ImageFormat::parse("ova"), None);
    }
}
