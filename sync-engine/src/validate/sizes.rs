//! Size budgets for API input, checked before anything else looks at it:
//! one hostile request must not cost the daemon (or every other client
//! listing containers) more than a bounded amount of memory and time.
use super::invalid;
use crate::error::Result;
use crate::model::CreateSpec;
use quilt_runtime::text::prefix;

/// The kernel refuses a single argv or env string longer than this
/// (MAX_ARG_STRLEN).
pub const MAX_STRING: usize = 128 * 1024;
/// argv and env together: well below the kernel's ARG_MAX (a quarter of an
/// 8 MiB stack), and small enough that a container row stays small.
pub const MAX_ARGS_BYTES: usize = 1024 * 1024;
/// Entries of argv, and of env.
pub const MAX_ENTRIES: usize = 8192;
/// Labels: how many, and their bytes (keys and values) together.
pub const MAX_LABELS: usize = 512;
pub const MAX_LABEL_BYTES: usize = 64 * 1024;
pub const MAX_LABEL_KEY: usize = 256;
/// Mounts of one container.
pub const MAX_MOUNTS: usize = 128;
/// Paths and references (image, working directory, mount paths).
pub const MAX_PATH: usize = 4096;
/// How much of a rejected value an error message repeats.
const ECHO: usize = 64;

/// A value as an error message may repeat it: quoted, and cut after a few
/// dozen characters (with its length said), so hostile input is never echoed
/// in full.
pub fn echo(s: &str) -> String {
    if s.len() <= ECHO {
        return format!("{s:?}");
    }
    format!("{:?}... ({} bytes)", prefix(s, ECHO), s.len())
}

/// The longest error message an API answers with: one that echoes a
/// hostile input (a name, a signal, a path, a parser's complaint) never
/// answers with all of it.
pub const MAX_MESSAGE: usize = 1024;

/// `m` cut to `MAX_MESSAGE` bytes (on a character boundary), saying so.
pub fn bounded_message(m: String) -> String {
    if m.len() <= MAX_MESSAGE {
        return m;
    }
    format!("{}... ({} bytes in all)", prefix(&m, MAX_MESSAGE), m.len())
}

/// The same without quotes, for references in "no such ..." messages.
pub fn cut(s: &str) -> String {
    if s.len() <= ECHO {
        return s.to_owned();
    }
    format!("{}... ({} bytes)", prefix(s, ECHO), s.len())
}

/// The budget of a command line and its environment.
pub fn args(what: &str, argv: &[String], env: &[String]) -> Result<()> {
    if argv.len() > MAX_ENTRIES {
        return Err(invalid(format!(
            "{what} has {} arguments: at most {MAX_ENTRIES} are allowed",
            argv.len()
        )));
    }
    if env.len() > MAX_ENTRIES {
        return Err(invalid(format!(
            "{what} has {} environment entries: at most {MAX_ENTRIES} are allowed",
            env.len()
        )));
    }
    let mut total = 0usize;
    for s in argv.iter().chain(env) {
        if s.len() > MAX_STRING {
            return Err(invalid(format!(
                "an argument or environment entry of {what} is {} bytes: at most {MAX_STRING} are allowed",
                s.len()
            )));
        }
        total += s.len() + 1;
    }
    if total > MAX_ARGS_BYTES {
        return Err(invalid(format!(
            "the arguments and environment of {what} are {total} bytes: at most {MAX_ARGS_BYTES} are allowed"
        )));
    }
    Ok(())
}

/// A path or reference.
pub fn path(what: &str, p: &str) -> Result<()> {
    if p.len() > MAX_PATH {
        return Err(invalid(format!(
            "the {what} is {} bytes long: at most {MAX_PATH} are allowed",
            p.len()
        )));
    }
    Ok(())
}

/// The budget of a set of labels (the container's, or those its node must
/// have): how many, each key's length, all their bytes.
fn label_set(what: &str, labels: &std::collections::BTreeMap<String, String>) -> Result<()> {
    if labels.len() > MAX_LABELS {
        return Err(invalid(format!(
            "{} {what}: at most {MAX_LABELS} are allowed",
            labels.len()
        )));
    }
    let mut bytes = 0usize;
    for (k, v) in labels {
        if k.len() > MAX_LABEL_KEY {
            return Err(invalid(format!(
                "{what}: key {} is too long: at most {MAX_LABEL_KEY} bytes",
                echo(k)
            )));
        }
        bytes += k.len() + v.len();
    }
    if bytes > MAX_LABEL_BYTES {
        return Err(invalid(format!(
            "the {what} are {bytes} bytes: at most {MAX_LABEL_BYTES} are allowed"
        )));
    }
    Ok(())
}

/// Every budget of a CreateContainer request.
pub fn create(spec: &CreateSpec) -> Result<()> {
    args("the command", &spec.command, &spec.env)?;
    path("image reference", &spec.image)?;
    if let Some(w) = &spec.working_dir {
        path("working directory", w)?;
    }
    label_set("labels", &spec.labels)?;
    label_set("node labels", &spec.node_labels)?;
    if spec.mounts.len() > MAX_MOUNTS {
        return Err(invalid(format!(
            "{} mounts: at most {MAX_MOUNTS} are allowed",
            spec.mounts.len()
        )));
    }
    for m in &spec.mounts {
        path("mount target", &m.target)?;
        if let crate::model::MountSource::Bind(s) | crate::model::MountSource::Volume(s) = &m.source
        {
            path("mount source", s)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_is_bounded() {
        assert_eq!(echo("abc"), "\"abc\"");
        let long = "é".repeat(1000);
        let e = echo(&long);
        assert!(e.len() < 100, "{e}");
        assert!(e.ends_with("(2000 bytes)"), "{e}");
    }

    #[test]
    fn argument_budgets() {
        let one = |n: usize| vec!["x".repeat(n)];
        assert!(args("c", &one(MAX_STRING), &[]).is_ok());
        assert!(args("c", &one(MAX_STRING + 1), &[]).is_err());
        let many: Vec<String> = (0..MAX_ENTRIES + 1).map(|i| format!("A{i}=1")).collect();
        assert!(args("c", &["sh".into()], &many).is_err());
        let big: Vec<String> = (0..9).map(|_| "y".repeat(MAX_STRING)).collect();
        assert!(args("c", &big, &[]).is_err(), "over 1 MiB in all");
        assert!(args("c", &big[..7], &[]).is_ok());
    }
}
