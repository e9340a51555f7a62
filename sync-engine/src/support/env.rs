//! The container's environment: a clean base plus the user's entries.
use crate::model::Container;

use quilt_runtime::spec::DEFAULT_PATH;

/// PATH, HOME, HOSTNAME and TERM, then `extra` layers (later entries win per key).
pub fn build(c: &Container, extra: &[String]) -> Vec<String> {
    let mut env: Vec<String> = vec![
        format!("PATH={DEFAULT_PATH}"),
        "HOME=/root".into(),
        format!("HOSTNAME={}", c.hostname),
        "TERM=xterm".into(),
    ];
    for e in c.env.iter().chain(extra) {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        match env
            .iter_mut()
            .find(|x| x.split_once('=').map(|(k, _)| k) == Some(key))
        {
            Some(slot) => *slot = e.clone(),
            None => env.push(e.clone()),
        }
    }
    env
}
