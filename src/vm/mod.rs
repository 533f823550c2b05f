//! The vocabulary of a virtual machine that configuration, builders,
//! drivers and artifacts share: which accelerator ran it and which format
//! its disks are in. One type each, so a value parsed once in `config`
//! reaches the driver and the artifact without being mapped again.
//! Imports nothing of kiln.

mod accelerator;
mod image_format;

pub use accelerator::Accelerator;
pub use image_format::ImageFormat;
