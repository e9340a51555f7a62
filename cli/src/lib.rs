//! `quilt`: the command-line client of the Quilt container engine.
//!
//! Parses the command line, then runs one command against quiltd over its
//! Unix socket on a single-threaded runtime (start-up time matters).
//!
//! A library with a one-line binary (`main.rs`): `scripts/static-link.sh`
//! links the binary again statically without compiling all of this twice.
#![deny(unsafe_code)]

mod args;
mod client;
mod commands;
mod error;
mod output;
mod since;

use std::process::ExitCode;

use args::Cli;
use error::{EXIT_ENGINE, parse_outcome};
use output::stream::{print_error, print_stderr, print_stdout};

/// Runs the command line the process was given; its exit status.
pub fn run() -> ExitCode {
    let cli = match Cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => {
            let outcome = parse_outcome(&err);
            if outcome.to_stdout {
                let _ = print_stdout(&outcome.text);
            } else {
                print_stderr(&outcome.text);
            }
            return ExitCode::from(outcome.code);
        }
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            print_error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(EXIT_ENGINE);
        }
    };

    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if let Some(message) = &err.message {
                print_error(message);
            }
            ExitCode::from(err.code)
        }
    }
}
