//! Command-line front end: clap definitions and dispatch, no logic.

pub mod cache;

use std::process::ExitCode;

pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
