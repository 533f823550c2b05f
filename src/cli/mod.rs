//! Command-line front end: clap definitions and dispatch, no logic.

use std::process::ExitCode;

pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
