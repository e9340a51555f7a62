//! The container's environment: a clean base plus the user's entries.
use crate::model::Container;
use quilt_runtime::spec::DEFAULT_PATH;
use std::collections::HashMap;

/// PATH, HOSTNAME and TERM, then the container's entries, then `extra`
/// (later entries win per key, keeping the first one's place). Linear in
/// the number of entries. HOME is the user's, from the container's
/// /etc/passwd (the shim sets it), unless an entry sets it.
pub fn build(c: &Container, extra: &[String]) -> Vec<String> {
    let mut env: Vec<String> = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={}", c.hostname),
        "TERM=xterm".into(),
    ];
    let mut at: HashMap<String, usize> = env
        .iter()
        .enumerate()
        .map(|(i, e)| (key(e).to_owned(), i))
        .collect();
    for e in c.env.iter().chain(extra) {
        match at.get(key(e)) {
            Some(&i) => env[i] = e.clone(),
            None => {
                at.insert(key(e).to_owned(), env.len());
                env.push(e.clone());
            }
        }
    }
    env
}

/// The name of a "K=V" entry (the whole entry when it has no '=').
fn key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CreateSpec;

    fn container(env: &[&str]) -> Container {
        let mut spec = CreateSpec::new("default");
        spec.command = vec!["true".into()];
        spec.name = Some("c".into());
        spec.env = env.iter().map(|s| s.to_string()).collect();
        Container::new("0".repeat(64), spec, "default".into(), Vec::new(), 0)
    }

    #[test]
    fn later_entries_win_in_place() {
        let c = container(&["A=1", "PATH=/x", "B=2", "A=3"]);
        let env = build(&c, &["B=4".to_string(), "C=5".to_string()]);
        assert_eq!(
            env,
            ["PATH=/x", "HOSTNAME=c", "TERM=xterm", "A=3", "B=4", "C=5"]
        );
    }

    #[test]
    fn overriding_every_entry_keeps_one_each() {
        let many: Vec<String> = (0..10_000).map(|i| format!("K{i}={i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let again: Vec<String> = (0..10_000).map(|i| format!("K{i}=x")).collect();
        let env = build(&container(&refs), &again);
        assert_eq!(env.len(), 10_003);
        assert_eq!(env[3], "K0=x");
    }
}
