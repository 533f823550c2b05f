//! The one disk conversion artifact code needs: a disk as a
//! streamOptimized VMDK (what OVF/OVA packages hold). A trait, so this
//! part knows no hypervisor: the qemu-img driver implements it, and tests
//! can hand in a fake.

use std::path::Path;

/// Why a conversion failed, as the converter's own error (its message and
/// causes are printed in the chain unchanged).
pub type ConvertError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Converts disk images for export.
pub trait VmdkConverter: Send + Sync {
    /// Writes `src` (any format the converter reads) to `dst` as one
    /// compressed streamOptimized VMDK, which copies without sparse-file
    /// support.
    fn to_stream_optimized_vmdk(&self, src: &Path, dst: &Path) -> Result<(), ConvertError>;
}
