//! Integration tests: they run the real `kiln` binary.

mod cache;
mod cli;
mod http;
mod qemu;
mod support;
mod templates;
