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
        // The one command with an exit status other than 0 and 1.
        Command::Fmt(a) => return fmt::run(&a, &out),
        Command::Hcl2Upgrade(a) => upgrade::run(&a, &out),
        Command::Build(a) => return exit_status(commands::build(&a, &options, &out)),
        Command::Cache(a) => commands::cache(a, &options, &out),
        Command::Version => {
            println!(
                "kiln {} (commit {}; reads Packer {} templates)",
                crate::VERSION,
                crate::GIT_COMMIT,
                crate::PACKER_COMPAT_VERSION
            );
            true
        }
    };
    exit_status(if finished {
        Ok(())
    } else {
        Err(Failure::Command)
    })
}

/// Why a command failed, once it has printed why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Bad input or a command that is not a build (validate, fix, …).
    Command,
    /// A build failed; its step said which kind of failure it was.
    Build(crate::run::runner::FailureClass),
}

/// The one place failures become exit statuses. Every class exits 1, as
/// Packer does (scripts test for non-zero); `fmt` keeps its own statuses.
/// A class that earns a status of its own gets it here, and the README
/// says so.
fn exit_status(finished: Result<(), Failure>) -> ExitCode {
    use crate::run::runner::FailureClass;
    match finished {
        Ok(()) => ExitCode::SUCCESS,
        Err(
            Failure::Command
            | Failure::Build(
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
            assert_eq!(exit_status(Err(Failure::Build(class))), ExitCode::FAILURE);
        }
        assert_eq!(exit_status(Err(Failure::Command)), ExitCode::FAILURE);
    }
}
