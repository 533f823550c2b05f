//! Integration tests: they run the real `kiln` binary.

mod cli;
mod qemu;
mod support;
mod templates;
