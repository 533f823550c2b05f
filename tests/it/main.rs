//! Integration tests: they run the real `kiln` binary.

mod cli;
mod support;
mod templates;
