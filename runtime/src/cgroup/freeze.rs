//! Freezing and thawing a container's cgroup (pause and unpause): the
//! `freezer` hierarchy's `freezer.state` on v1, `cgroup.freeze` on v2.
//! Both block: run them on a blocking thread.
use super::{CgroupError, io_err, read_file, rel_path, write_file};
use crate::spec::{CgroupLayout, CgroupSpec};
use std::io::{ErrorKind, Read, Seek};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a freeze may take before it is undone and reported.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// The control file: v1 `freezer.state`, v2 `cgroup.freeze`.
fn control(spec: &CgroupSpec) -> Result<PathBuf, CgroupError> {
    let rel = rel_path(spec)?;
    Ok(match &spec.layout {
        CgroupLayout::V1 { root } => root.join("freezer").join(rel).join("freezer.state"),
        CgroupLayout::V2 { root } => root
            .join(super::v2::placed(root, rel, spec))
            .join("cgroup.freeze"),
    })
}

fn missing(path: &Path, what: &str) -> CgroupError {
    io_err(
        path,
        std::io::Error::new(ErrorKind::NotFound, what.to_owned()),
    )
}

/// Freezes every process of the cgroup and returns once the kernel reports
/// the whole cgroup frozen. A freeze that does not complete within
/// `FREEZE_TIMEOUT` (a task stuck in an uninterruptible sleep) is undone.
pub fn freeze(spec: &CgroupSpec) -> Result<(), CgroupError> {
    let file = control(spec)?;
    if !file.exists() {
        return Err(missing(
            &file,
            "no freezer for this cgroup (v1: the freezer hierarchy is not mounted, \
             or the container was started before quilt joined it)",
        ));
    }
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let done = match &spec.layout {
        CgroupLayout::V1 { .. } => {
            write_file(&file, "FROZEN")?;
            wait_v1(&file, deadline)?
        }
        CgroupLayout::V2 { .. } => {
            write_file(&file, "1")?;
            wait_v2(&file.with_file_name("cgroup.events"), deadline)?
        }
    };
    if !done {
        let _ = thaw(spec);
        return Err(io_err(
            &file,
            std::io::Error::new(
                ErrorKind::TimedOut,
                "the cgroup did not freeze in time (a process in uninterruptible sleep?)",
            ),
        ));
    }
    Ok(())
}

/// Thaws the cgroup. Succeeds when it does not exist (nothing to thaw).
pub fn thaw(spec: &CgroupSpec) -> Result<(), CgroupError> {
    let file = control(spec)?;
    if !file.exists() {
        return Ok(());
    }
    match &spec.layout {
        CgroupLayout::V1 { .. } => write_file(&file, "THAWED"),
        CgroupLayout::V2 { .. } => write_file(&file, "0"),
    }
}

/// Whether the cgroup is frozen (or freezing); false when it does not exist.
pub fn is_frozen(spec: &CgroupSpec) -> Result<bool, CgroupError> {
    let file = control(spec)?;
    Ok(match read_file(&file)? {
        None => false,
        Some(s) => match &spec.layout {
            CgroupLayout::V1 { .. } => s.trim() != "THAWED",
            CgroupLayout::V2 { .. } => s.trim() == "1",
        },
    })
}

/// v1: the kernel offers no notification; `freezer.state` reads FREEZING
/// until every task is frozen. Re-read with a short, growing pause (a small
/// container is frozen by the time of the first read).
fn wait_v1(file: &Path, deadline: Instant) -> Result<bool, CgroupError> {
    let mut pause = Duration::from_micros(100);
    loop {
        match read_file(file)? {
            Some(s) if s.trim() == "FROZEN" => return Ok(true),
            Some(_) => {}
            None => return Err(missing(file, "the cgroup went away")),
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// v2: `cgroup.events` says `frozen 1` once the freeze is complete, and
/// the kernel wakes a poll(POLLPRI) on it when it changes. But it sends at
/// most one such notification per 10 ms for each file, deferring the rest:
/// a pause soon after an unpause (whose `frozen 0` was notified) heard of
/// its freeze up to 10 ms late. So each poll also ends after a short,
/// growing pause, and the file is read again then.
fn wait_v2(events: &Path, deadline: Instant) -> Result<bool, CgroupError> {
    use nix::poll::{PollFd, PollFlags, ppoll};
    use nix::sys::time::TimeSpec;
    let mut f = std::fs::File::open(events).map_err(|e| io_err(events, e))?;
    let mut pause = Duration::from_micros(100);
    loop {
        let mut s = String::new();
        f.rewind().map_err(|e| io_err(events, e))?;
        f.read_to_string(&mut s).map_err(|e| io_err(events, e))?;
        if super::keyed_value(&s, "frozen") == Some(1) {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
        match ppoll(&mut fds, Some(TimeSpec::from(pause.min(left))), None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io_err(events, e.into())),
        }
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{fake_v1, fake_v2, read, spec};
    use super::*;
    use crate::spec::Limits;
    use std::fs;

    #[test]
    fn v1_freeze_and_thaw_on_a_fake_tree() {
        let t = fake_v1(false);
        let s = spec(
            CgroupLayout::V1 {
                root: t.path().into(),
            },
            Limits::default(),
        );
        // No freezer hierarchy: a clear error, and thaw is a no-op.
        assert!(freeze(&s).is_err());
        thaw(&s).unwrap();
        assert!(!is_frozen(&s).unwrap());
        let dir = t.path().join("freezer/quilt/c1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("freezer.state"), "THAWED\n").unwrap();
        // A regular file reads back what was written: FROZEN at once.
        freeze(&s).unwrap();
        assert_eq!(read(dir.join("freezer.state")), "FROZEN");
        assert!(is_frozen(&s).unwrap());
        thaw(&s).unwrap();
        assert_eq!(read(dir.join("freezer.state")), "THAWED");
        assert!(!is_frozen(&s).unwrap());
    }

    #[test]
    fn v2_freeze_waits_for_the_events_file() {
        let t = fake_v2();
        let s = spec(
            CgroupLayout::V2 {
                root: t.path().into(),
            },
            Limits::default(),
        );
        let dir = t.path().join("quilt/c1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cgroup.freeze"), "0\n").unwrap();
        fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        freeze(&s).unwrap();
        assert_eq!(read(dir.join("cgroup.freeze")), "1");
        assert!(is_frozen(&s).unwrap());
        thaw(&s).unwrap();
        assert_eq!(read(dir.join("cgroup.freeze")), "0");
    }

    /// The host's cgroup2 mount point, if any.
    fn cgroup2_mount() -> Option<PathBuf> {
        let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
        info.lines().find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            (right.split(' ').next() == Some("cgroup2")).then(|| PathBuf::from(point))
        })
    }

    /// On the real kernel: a pause right after an unpause, over and over,
    /// each seen through to `frozen 1` (the kernel's notification of it
    /// deferred, see `wait_v2`), and each thaw letting the task run again.
    #[test]
    fn v2_freeze_and_thaw_of_a_real_cgroup_back_to_back() {
        let Some(mount) = cgroup2_mount() else {
            eprintln!("no cgroup2 mount: skipped");
            return;
        };
        let root = mount.join(format!("quilt-freeze-test-{}", std::process::id()));
        let dir = root.join("quilt/c1");
        if let Err(e) = fs::create_dir_all(&dir) {
            eprintln!(
                "cannot make a cgroup under {}: {e}: skipped",
                mount.display()
            );
            return;
        }
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let s = spec(CgroupLayout::V2 { root: root.clone() }, Limits::default());
        let result = std::panic::catch_unwind(|| {
            fs::write(dir.join("cgroup.procs"), child.id().to_string()).unwrap();
            for _ in 0..20 {
                freeze(&s).unwrap();
                assert!(is_frozen(&s).unwrap());
                let events = read(dir.join("cgroup.events"));
                assert_eq!(super::super::keyed_value(&events, "frozen"), Some(1));
                thaw(&s).unwrap();
                assert!(!is_frozen(&s).unwrap());
            }
        });
        let _ = child.kill();
        let _ = child.wait();
        for d in [dir.as_path(), &root.join("quilt"), &root] {
            // The cgroup empties once the killed task is reaped.
            for _ in 0..100 {
                if fs::remove_dir(d).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        assert!(!root.exists(), "test cgroup {} left behind", root.display());
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    }
}
