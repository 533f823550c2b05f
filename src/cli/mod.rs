//! Command-line front end: clap definitions and dispatch, no build logic.
//! Errors are printed here, once, and mapped to the exit status.

pub mod args;
mod commands;
mod fmt;
mod output;
pub mod packer_flags;
mod upgrade;

pub mod cache;

use std::process::ExitCode;

use clap::Parser;

use crate::ui::console::{ConsoleOptions, OutputMode};
use args::{Cli, Command};

pub fn main() -> ExitCode {
    let argv = packer_flags::normalize(std::env::args_os());
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and --version are successes; everything else is exit 1.
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    crate::iso::install_crypto_provider();
    let options = console_options(&cli.ui);
    // The one way to stderr for every command, so each is masked alike.
    let out = output::ErrorOutput::default();
    let finished = match cli.command {
        Command::Validate(a) => commands::validate(&a, &options, &out),
        Command::Inspect(a) => commands::inspect(&a, &options, &out),
        Command::Fix(a) => commands::fix(&a, &out),
        Command::Init(a) => commands::init(&a, &out),
        Command::Fmt(a) => fmt::run(&a, &out),
        Command::Hcl2Upgrade(a) => upgrade::run(&a, &out),
        Command::Build(a) => commands::build(&a, &options, &out),
        Command::Cache(a) => commands::cache(a, &options, &out),
        Command::Version => {
            println!(
                "kiln {} (commit {}; reads Packer {} templates)",
                crate::VERSION,
                crate::GIT_COMMIT,
                crate::PACKER_COMPAT_VERSION
            );
            Ok(())
        }
    };
    exit_status(finished)
}

/// Why a command failed, once it has printed why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommandError {
    /// The template, its variables or the arguments are wrong (validate,
    /// inspect, fix, init, fmt, hcl2_upgrade, a build that does not start).
    Input,
    /// Something on the host: the runtime, a file to read or write, the
    /// ISO cache, a download.
    Host,
    /// `fmt -check` found a file that is not formatted.
    NotFormatted,
    /// A build failed; its step said which kind of failure it was.
    Build(crate::run::runner::FailureClass),
}

/// `fmt -check`'s status for a file that is not formatted (Packer's,
/// after `terraform fmt`).
const EXIT_NOT_FORMATTED: u8 = 3;

/// The one place failures become exit statuses. Every class exits 1, as
/// Packer does (scripts test for non-zero), except `fmt -check`'s 3.
/// A class that earns a status of its own gets it here, and the README
/// says so.
fn exit_status(finished: Result<(), CommandError>) -> ExitCode {
    use crate::run::runner::FailureClass;
    match finished {
        Ok(()) => ExitCode::SUCCESS,
        Err(CommandError::NotFormatted) => ExitCode::from(EXIT_NOT_FORMATTED),
        Err(
            CommandError::Input
            | CommandError::Host
            | CommandError::Build(
                FailureClass::Interrupted
                | FailureClass::Guest
                | FailureClass::Host
                | FailureClass::Input,
            ),
        ) => ExitCode::FAILURE,
    }
}

fn console_options(ui: &args::UiArgs) -> ConsoleOptions {
    use std::io::IsTerminal;
    let color = ui.color.unwrap_or_else(|| {
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
    });
    ConsoleOptions {
        mode: if ui.machine_readable {
            OutputMode::MachineReadable
        } else {
            OutputMode::Human
        },
        color,
        timestamps: ui.timestamp_ui,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::runner::FailureClass;

    #[test]
    fn every_failure_exits_1_as_in_packer() {
        assert_eq!(exit_status(Ok(())), ExitCode::SUCCESS);
        for class in [
            FailureClass::Interrupted,
            FailureClass::Guest,
            FailureClass::Host,
            FailureClass::Input,
        ] {
            assert_eq!(
                exit_status(Err(CommandError::Build(class))),
                ExitCode::FAILURE
            );
        }
        for e in [CommandError::Input, CommandError::Host] {
            assert_eq!(exit_status(Err(e)), ExitCode::FAILURE);
        }
        assert_eq!(
            exit_status(Err(CommandError::NotFormatted)),
            ExitCode::from(3)
        );
    }
}
