//! The `quilt` binary: everything is in the library (see `lib.rs`).
fn main() -> std::process::ExitCode {
    quilt_cli::run()
}
