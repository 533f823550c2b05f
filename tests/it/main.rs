//! Integration tests: they run the real `kiln` binary.

mod cli;
mod http;
mod support;
mod templates;
