//! Extra media a build gives its guest besides the installer ISO.

pub mod cd;
pub mod floppy;
pub mod sources;
