//! When a create may adopt a pooled container: the two containers differ
//! only in what is applied on adoption. Every other field, present or
//! added later, must be equal: nothing is inherited by mistake.
use crate::model::Container;

/// `c` with what adoption applies cleared: its identity (id, name, labels,
/// creation time), the workload's command, environment, working directory,
/// hostname and user, the cgroup's limits, and what happens around the
/// run (when it starts, removal, restart policy, lifetime).
fn shape(c: &Container) -> Container {
    let mut s = c.clone();
    s.id.clear();
    s.name.clear();
    s.labels.clear();
    s.created_at_ns = 0;
    s.command.clear();
    s.env.clear();
    s.working_dir.clear();
    s.hostname.clear();
    s.security.user = None;
    s.memory_mb = 0;
    s.cpus = 0.0;
    s.pids_limit = 0;
    s.auto_remove = false;
    s.autostart = false;
    s.restart = Default::default();
    s.lifetime = Default::default();
    // Where it was placed is decided before a claim (on this node).
    s.node_labels.clear();
    s
}

/// Whether a container created as `c` may adopt one prepared as `pooled`.
pub(crate) fn same(pooled: &Container, c: &Container) -> bool {
    shape(pooled) == shape(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CreateSpec, Network};

    fn container(image: &str) -> Container {
        let mut spec = CreateSpec::new(image);
        spec.command = vec!["true".into()];
        spec.start = true;
        Container::new(crate::support::ids::new_id(), spec, image.into(), vec![], 1)
    }

    #[test]
    fn what_adoption_applies_may_differ() {
        let pooled = container("img");
        let mut c = container("img");
        c.command = vec!["python3".into()];
        c.env = vec!["A=1".into()];
        c.working_dir = "/w".into();
        c.hostname = "h".into();
        c.security.user = Some("1000".into());
        c.memory_mb = 64;
        c.labels.insert("k".into(), "v".into());
        assert!(same(&pooled, &c));
    }

    #[test]
    fn everything_else_must_match() {
        let pooled = container("img");
        let changes: [fn(&mut Container); 8] = [
            |c| c.image = "other".into(),
            |c| c.network = Network::Host,
            |c| c.init = true,
            |c| c.security.read_only = true,
            |c| c.security.cap_add = vec!["NET_ADMIN".into()],
            |c| c.stdio.tty = true,
            |c| c.disk_bytes = 1,
            |c| c.net.dns = vec![std::net::Ipv4Addr::LOCALHOST],
        ];
        for change in changes {
            let mut c = container("img");
            change(&mut c);
            assert!(!same(&pooled, &c), "{c:?}");
        }
    }
}
