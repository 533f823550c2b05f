//! Integration tests: they run the real `kiln` binary.

mod cli;
mod ssh;
mod support;
mod templates;
