//! The CLI's error type and its mapping to process exit codes, for
//! command errors and for command-line parse errors.

use std::fmt;

use clap::error::ErrorKind;

/// Exit code for engine errors and usage errors.
pub const EXIT_ENGINE: u8 = 125;

/// An error to report as `quilt: <message>` before exiting with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub code: u8,
    /// `None` when the message was already printed.
    pub message: Option<String>,
}

impl CliError {
    /// An engine error (exit code 125).
    pub fn engine(message: impl Into<String>) -> Self {
        CliError {
            code: EXIT_ENGINE,
            message: Some(message.into()),
        }
    }

    /// Exit with `code` without printing anything more.
    pub fn silent(code: u8) -> Self {
        CliError {
            code,
            message: None,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        CliError::engine(status_message(&status))
    }
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        CliError::engine(err.to_string())
    }
}

impl From<serde_json::Error> for CliError {
    fn from(err: serde_json::Error) -> Self {
        CliError::engine(err.to_string())
    }
}

/// The text to show for a gRPC status: its message, or the code's
/// description when the server sent none.
pub fn status_message(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        status.code().description().to_owned()
    } else {
        status.message().to_owned()
    }
}

/// What to print, where, and the exit code for a clap "error" (which also
/// covers `--help` and `--version`).
#[derive(Debug, PartialEq, Eq)]
pub struct ParseOutcome {
    pub code: u8,
    pub text: String,
    pub to_stdout: bool,
}

/// `--help`/`--version` print to stdout and exit 0; every other parse
/// error is a usage error: `quilt: <message>` (plus usage) on stderr, 125.
pub fn parse_outcome(err: &clap::Error) -> ParseOutcome {
    let rendered = err.render().to_string();
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ParseOutcome {
            code: 0,
            text: rendered,
            to_stdout: true,
        },
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ParseOutcome {
            code: EXIT_ENGINE,
            text: rendered,
            to_stdout: false,
        },
        _ => ParseOutcome {
            code: EXIT_ENGINE,
            text: match rendered.strip_prefix("error: ") {
                Some(rest) => format!("quilt: {rest}"),
                None => rendered,
            },
            to_stdout: false,
        },
    }
}

/// Converts a container exit code to a process exit code (0..=255).
pub fn exit_code_byte(code: i32) -> u8 {
    // Truncation to the low byte is what a process exit status keeps anyway.
    u8::try_from(code.rem_euclid(256)).unwrap_or(EXIT_ENGINE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse;

    #[test]
    fn parse_errors_exit_125_but_help_and_version_exit_0() {
        let out = parse_outcome(&parse(&["run", "-e", "=FOO", "default", "true"]).unwrap_err());
        assert_eq!(out.code, 125);
        assert!(!out.to_stdout);
        assert!(
            out.text.starts_with("quilt: invalid value '=FOO'"),
            "{}",
            out.text
        );

        let out = parse_outcome(&parse(&["frobnicate"]).unwrap_err());
        assert_eq!(out.code, 125);
        assert!(out.text.starts_with("quilt: "), "{}", out.text);

        let out = parse_outcome(&parse(&["run", "--memory", "lots", "default", "x"]).unwrap_err());
        assert_eq!(out.code, 125);

        let out = parse_outcome(&parse(&[]).unwrap_err());
        assert_eq!(out.code, 125);
        assert!(out.text.contains("Usage:"));

        let out = parse_outcome(&parse(&["--help"]).unwrap_err());
        assert_eq!((out.code, out.to_stdout), (0, true));
        assert!(out.text.contains("Usage:"));
        let out = parse_outcome(&parse(&["run", "--help"]).unwrap_err());
        assert_eq!(out.code, 0);
        let out = parse_outcome(&parse(&["--version"]).unwrap_err());
        assert_eq!((out.code, out.to_stdout), (0, true));
        assert!(out.text.starts_with("quilt "));
    }

    #[test]
    fn status_maps_to_engine_error() {
        let err = CliError::from(tonic::Status::not_found("no such container: abc"));
        assert_eq!(err.code, 125);
        assert_eq!(err.message.as_deref(), Some("no such container: abc"));

        let err = CliError::from(tonic::Status::unavailable(""));
        assert_eq!(err.code, 125);
        assert!(!err.message.unwrap().is_empty());
    }

    #[test]
    fn exit_codes_wrap_like_wait_status() {
        assert_eq!(exit_code_byte(0), 0);
        assert_eq!(exit_code_byte(7), 7);
        assert_eq!(exit_code_byte(137), 137);
        assert_eq!(exit_code_byte(255), 255);
        assert_eq!(exit_code_byte(256), 0);
        assert_eq!(exit_code_byte(-1), 255);
    }
}
