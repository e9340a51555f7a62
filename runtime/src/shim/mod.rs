//! The `quilt-shim` helper binary: `run` (start and supervise one container)
//! and `exec` (run a command inside a running container), and the fork server
//! that starts `run` shims for quiltd. Single-threaded.
mod attach;
mod common;
mod container;
mod cp;
mod devices;
mod disk;
mod exec;
mod exec_io;
pub(crate) mod fdpass;
mod forkserver;
mod gpu;
mod init;
mod logwriter;
mod mounts;
mod pool;
mod run;
mod terminal;
mod user;
mod userns;

/// Entry point of the `quilt-shim` binary.
#[doc(hidden)]
pub fn main() -> ! {
    let mut args = std::env::args_os().skip(1);
    let code = match args.next().as_deref().and_then(|a| a.to_str()) {
        Some("run")
            if std::env::var_os(crate::forkserver::SERVER_ENV).is_some_and(|v| v == "1") =>
        {
            forkserver::serve()
        }
        Some("run") => run::run(None),
        Some("exec") => exec::exec(args.next().is_some_and(|a| a == "--detached")),
        Some("cp-out") => cp::cp(crate::copy::CopyMode::Out),
        Some("cp-in") => cp::cp(crate::copy::CopyMode::In),
        Some("--version") | Some("-V") | Some("version") => {
            println!("quilt-shim {}", env!("CARGO_PKG_VERSION"));
            0
        }
        _ => {
            eprintln!(
                "usage: quilt-shim run|exec|--version\n  (started by quiltd; reads a JSON config on stdin)"
            );
            2
        }
    };
    std::process::exit(code)
}
