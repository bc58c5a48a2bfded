//! The `custody` binary: the SDK's main job, runnable by a person or by a
//! program in any language. The contract is `shared/CLI.md`: every command
//! writes exactly one JSON object to stdout, or one error object to stderr
//! with a stable kind and exit code. This crate only parses, calls the
//! library crates and prints.

mod args;
mod attestation;
mod backends;
mod commands;
mod error;
mod jose;
mod policy;
mod quorum;
mod sealing;
mod state;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                // Help and version are output, not errors.
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let message = e.to_string();
            let first = message.lines().next().unwrap_or("invalid arguments");
            let first = first.trim_start_matches("error: ").to_owned();
            return report(&error::CliError::bad_input(first));
        }
    };
    match commands::run(cli) {
        Ok(value) => {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{value}").and_then(|()| out.flush()).is_err() {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

fn report(e: &error::CliError) -> ExitCode {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", e.to_json());
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
}
