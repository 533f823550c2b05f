//! The artifact type lives in `crate::artifact`; this path stays for the
//! code that names it here.

pub use crate::artifact::Artifact;
