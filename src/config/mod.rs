//! Typed configuration for every builder, provisioner and post-processor
//! kiln implements, with Packer's defaults and validation.

pub mod decode;
