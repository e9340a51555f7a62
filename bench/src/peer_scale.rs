//! A peer OCI runtime (crun, runc) at the scale levels, beside Quilt: `n`
//! idle `sleep 3600` containers made with `create` + `start`, host memory
//! per container, the create + start of one more /bin/true container with
//! all of them running, `state` of one, `list` of all, and `delete -f` of
//! them all. Each idle container has a bundle of its own (the sleep
//! bundle's config with a cgroup of its own, on the peers' shared rootfs).
//! Blocking: run it off the async runtime.

use crate::density::{mem_available, mib};
use crate::peers::Runtime;
use crate::proc_timer::{Timed, first_line, record, run, run_detached};
use crate::report::PeerScaleLevel;
use crate::stats::{Samples, round};
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

pub struct PeerScaleOpts {
    /// name -> binary, e.g. crun -> /usr/bin/crun
    pub runtimes: Vec<(String, PathBuf)>,
    /// Holds <name>-true/ and <name>-sleep/ OCI bundles.
    pub bundles: PathBuf,
    /// State roots: <state_root>/<name>; the per-container bundles are
    /// made under it too.
    pub state_root: PathBuf,
    pub concurrency: usize,
    pub probes: usize,
    pub states: usize,
    /// Container ids are <prefix>-<runtime>-scale-<n>.
    pub id_prefix: String,
}

/// `rt` at `n` live containers; nothing of them is left after.
pub fn level(o: &PeerScaleOpts, rt: &Runtime, n: usize) -> Result<PeerScaleLevel> {
    let sleep_config = o
        .bundles
        .join(format!("{}-sleep", rt.name))
        .join("config.json");
    let template: Value = serde_json::from_slice(
        &std::fs::read(&sleep_config)
            .with_context(|| format!("read {}", sleep_config.display()))?,
    )
    .with_context(|| format!("parse {}", sleep_config.display()))?;
    let cgroup = template
        .pointer("/linux/cgroupsPath")
        .and_then(Value::as_str)
        .with_context(|| format!("{} has no linux.cgroupsPath", sleep_config.display()))?;
    // Siblings of the sleep bundle's cgroup, one per container.
    let cgroup_parent = cgroup.rsplit_once('/').map_or("", |(p, _)| p).to_string();
    let scratch = o.state_root.join(format!("{}-scale-bundles", rt.name));
    std::fs::create_dir_all(&scratch).with_context(|| format!("create {}", scratch.display()))?;
    let id = |i: usize| format!("{}-{}-scale-{i}", o.id_prefix, rt.name);
    let bundle = |i: usize| -> std::io::Result<String> {
        let dir = scratch.join(i.to_string());
        std::fs::create_dir_all(&dir)?;
        let mut config = template.clone();
        config["linux"]["cgroupsPath"] =
            Value::String(format!("{cgroup_parent}/{}-scale-{i}", rt.name));
        std::fs::write(dir.join("config.json"), config.to_string())?;
        Ok(dir.display().to_string())
    };

    // n idle containers, `concurrency` at a time.
    let avail0 = mem_available();
    let t0 = Instant::now();
    let errfiles = o.state_root.join(format!("{}-scale", rt.name));
    let (started, create_start) = each(&errfiles, o.concurrency, n, |i, errfile, s| {
        let dir = match bundle(i) {
            Ok(dir) => dir,
            Err(e) => {
                s.err("bundle", e.to_string());
                return false;
            }
        };
        let ok = create_and_start(rt, &dir, &id(i), errfile, s);
        if !ok {
            // Best effort: a half-made container must not outlive the run.
            run_detached(&rt.cmd(&["delete", "-f", &id(i)]), errfile);
        }
        ok
    });
    let start_all_s = t0.elapsed().as_secs_f64();
    let running = started.len();
    let avail1 = mem_available();
    let delta = avail0.saturating_sub(avail1);
    eprintln!(
        "scale: {} {running}/{n} containers running after {start_all_s:.1} s",
        rt.name
    );

    let mut state = Samples::default();
    for k in 0..o.states {
        let Some(&i) = started.get(k % running.max(1)) else {
            break;
        };
        record(&mut state, &run(&rt.cmd(&["state", &id(i)])), "state");
    }
    let mut list = Samples::default();
    for _ in 0..10 {
        let t = run(&rt.cmd(&["list", "-q"]));
        let listed = t.stdout.lines().filter(|l| !l.trim().is_empty()).count();
        match t.ok && listed < running {
            true => list.err("short", format!("{listed} of {running} listed")),
            false => record(&mut list, &t, "list"),
        }
    }

    // One more /bin/true container with all of them running.
    let true_bundle = o
        .bundles
        .join(format!("{}-true", rt.name))
        .display()
        .to_string();
    let mut one_more = Samples::default();
    for p in 0..o.probes {
        let more = format!("{}-{}-scale-more-{p}", o.id_prefix, rt.name);
        create_and_start(rt, &true_bundle, &more, &rt.errfile, &mut one_more);
        rt.delete(&more);
    }

    // Delete them all.
    let t1 = Instant::now();
    let (_, delete_all) = each(&errfiles, o.concurrency, running, |k, errfile, s| {
        let t = run_detached(&rt.cmd(&["delete", "-f", &id(started[k])]), errfile);
        record(s, &t, "delete -f");
        t.ok
    });
    let delete_all_s = t1.elapsed().as_secs_f64();
    let after = run(&rt.cmd(&["list", "-q"]));
    let left = after.ok.then(|| {
        after
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    });
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!(
        "scale: {} at {running} live: one more p50 {:.2} ms, {:.3} MiB/container, deleted in {delete_all_s:.1} s, {} left",
        rt.name,
        one_more.stats().p50_ms,
        per(delta, running),
        left.map_or_else(|| "?".to_string(), |l| l.to_string())
    );
    Ok(PeerScaleLevel {
        runtime: rt.name.clone(),
        requested: n,
        running,
        start_all_s: round(start_all_s, 2),
        create_start: create_start.report(),
        mem_available_delta_mib: mib(delta),
        per_container_mib_mem_available: per(delta, running),
        create_start_one_more: one_more.report(),
        state: state.report(),
        list: list.report(),
        delete_all: delete_all.report(),
        delete_all_s: round(delete_all_s, 2),
        deleted_per_s: match delete_all_s > 0.0 {
            true => round(delete_all.times.len() as f64 / delete_all_s, 1),
            false => 0.0,
        },
        left,
        ttr_quilt_over_peer_p50: None,
        memory_quilt_over_peer: None,
    })
}

/// `create` then `start`, timed together into `s`; false if either failed.
fn create_and_start(rt: &Runtime, bundle: &str, id: &str, errfile: &Path, s: &mut Samples) -> bool {
    let c = run_detached(&rt.cmd(&["create", "--bundle", bundle, id]), errfile);
    let failed = |s: &mut Samples, what: &str, t: &Timed| {
        s.err(
            "exit",
            format!("{} {what}: {}", rt.name, first_line(&t.stderr)),
        );
        false
    };
    if !c.ok {
        return failed(s, "create", &c);
    }
    let st = run_detached(&rt.cmd(&["start", id]), errfile);
    if !st.ok {
        return failed(s, "start", &st);
    }
    s.ok(c.elapsed + st.elapsed);
    true
}

/// Runs `f(i, errfile, samples)` for i in 0..n on `threads` threads (each
/// with a stderr file of its own, `<errfiles>-<thread>.stderr`); the i for
/// which it returned true, in order, and every thread's samples merged.
fn each<F>(errfiles: &Path, threads: usize, n: usize, f: F) -> (Vec<usize>, Samples)
where
    F: Fn(usize, &Path, &mut Samples) -> bool + Sync,
{
    let next = AtomicUsize::new(0);
    let mut done = Vec::new();
    let mut all = Samples::default();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|k| {
                let (next, f) = (&next, &f);
                scope.spawn(move || {
                    let errfile = PathBuf::from(format!("{}-{k}.stderr", errfiles.display()));
                    let mut ok = Vec::new();
                    let mut s = Samples::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= n {
                            break;
                        }
                        if f(i, &errfile, &mut s) {
                            ok.push(i);
                        }
                    }
                    let _ = std::fs::remove_file(&errfile);
                    (ok, s)
                })
            })
            .collect();
        for w in workers {
            let (ok, s) = w.join().expect("a peer-scale worker panicked");
            done.extend(ok);
            all.merge(s);
        }
    });
    done.sort_unstable();
    (done, all)
}

fn per(kb: u64, n: usize) -> f64 {
    match n {
        0 => 0.0,
        n => mib(kb / n as u64),
    }
}
