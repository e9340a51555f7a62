//! `exit.json`: the exit status the shim leaves for the daemon, written
//! atomically. Its space is reserved when the container starts (a padded
//! `.exit.json.reserved` file), so the status can be written even once the
//! disk is full: the write lands in blocks that already exist, and the
//! rename needs none.
use crate::spec::ExitRecord;
use std::io::Write;
use std::path::Path;

pub const EXIT_FILE: &str = "exit.json";

/// Reads DIR/exit.json; Ok(None) when it does not exist.
pub fn read(dir: &Path) -> std::io::Result<Option<ExitRecord>> {
    let data = match std::fs::read(dir.join(EXIT_FILE)) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The reserved file: written over in place at exit, then renamed.
const RESERVED: &str = ".exit.json.reserved";
/// Bytes reserved: far more than a record takes.
const RESERVED_LEN: usize = 512;

/// Writes DIR/exit.json atomically: over the reserved file when there is
/// one (no new block needed), else a fresh temp file; then a rename.
pub fn write(dir: &Path, rec: &ExitRecord) -> std::io::Result<()> {
    let mut data = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
    data.push(b'\n');
    let reserved = dir.join(RESERVED);
    if data.len() <= RESERVED_LEN
        && let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&reserved)
    {
        // Trailing spaces keep the reserved length (JSON ignores them).
        data.resize(RESERVED_LEN, b' ');
        f.write_all(&data)?;
        drop(f);
        return std::fs::rename(&reserved, dir.join(EXIT_FILE));
    }
    let tmp = dir.join(format!(".{EXIT_FILE}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&data)?;
        drop(f);
        std::fs::rename(&tmp, dir.join(EXIT_FILE))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Before a start: removes DIR/exit.json if present and reserves the space
/// of the next one.
///
/// The reservation allocates its blocks with fallocate(2): they are the
/// file's from then on, on disk or not, so the exit's write over them needs
/// no free block. Nothing is synced: a reservation only has to outlive the
/// daemon, not the host (after a reboot the container is gone too), and an
/// fsync here cost about 0.7 ms of every cold start. Where the file system
/// has no fallocate, the reservation is written instead, which reserves the
/// blocks at write(2) time on Linux's local file systems.
///
/// Nothing is done when there is no exit.json and the reserved file is
/// there at its full length: a reservation made by an earlier call that no
/// exit used, as a warm pool's container's, or one whose write was cut
/// before its rename (every exit writes all of it again).
pub fn clear(dir: &Path) -> std::io::Result<()> {
    let exited = match std::fs::remove_file(dir.join(EXIT_FILE)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        r => r.map(|()| true)?,
    };
    if !exited
        && std::fs::symlink_metadata(dir.join(RESERVED))
            .is_ok_and(|m| m.is_file() && m.len() == RESERVED_LEN as u64)
    {
        return Ok(());
    }
    reserve(dir)
}

/// Reserves the space of DIR's next exit.json (see `clear`): also done
/// ahead, in a layer made before its container's start
/// (`crate::layer::Layer::make`), which `clear` then finds in place.
pub fn reserve(dir: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::create(dir.join(RESERVED))?;
    use rustix::fs::{FallocateFlags, fallocate};
    match fallocate(&f, FallocateFlags::empty(), 0, RESERVED_LEN as u64) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP => f.write_all(&[b' '; RESERVED_LEN]),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_clear() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let rec = ExitRecord {
            exit_code: 137,
            signal: 9,
            oom_killed: true,
            finished_at_ns: 123,
            killed_because: None,
        };
        write(dir.path(), &rec).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(rec.clone()));
        let rec2 = ExitRecord {
            exit_code: 0,
            signal: 0,
            oom_killed: false,
            finished_at_ns: 456,
            killed_because: None,
        };
        write(dir.path(), &rec2).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(rec2));
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(EXIT_FILE)]);
        clear(dir.path()).unwrap();
        clear(dir.path()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
    }

    /// A reservation at full length whose blocks are allocated.
    fn assert_reserved(p: &Path) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).unwrap();
        assert_eq!(m.len(), RESERVED_LEN as u64);
        // st_blocks counts 512-byte units.
        assert!(m.blocks() * 512 >= RESERVED_LEN as u64, "{m:?}");
    }

    #[test]
    fn an_unused_reservation_is_kept_as_it_is() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        clear(dir.path()).unwrap();
        let reserved = dir.path().join(RESERVED);
        let first = std::fs::metadata(&reserved).unwrap();
        // Marked, to see whether the next clear writes it again.
        std::fs::write(&reserved, [b'x'; RESERVED_LEN]).unwrap();
        clear(dir.path()).unwrap();
        let kept = std::fs::metadata(&reserved).unwrap();
        assert_eq!(kept.ino(), first.ino());
        assert_eq!(std::fs::read(&reserved).unwrap(), vec![b'x'; RESERVED_LEN]);
        // Short: made again at full length.
        std::fs::write(&reserved, b"short").unwrap();
        clear(dir.path()).unwrap();
        assert_reserved(&reserved);
        // After an exit: the status goes, the space is reserved again.
        write(
            dir.path(),
            &ExitRecord {
                exit_code: 1,
                signal: 0,
                oom_killed: false,
                finished_at_ns: 1,
                killed_because: None,
            },
        )
        .unwrap();
        assert!(!reserved.exists());
        clear(dir.path()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        assert_reserved(&reserved);
    }

    #[test]
    fn the_reserved_space_is_used_and_renamed() {
        let dir = tempfile::tempdir().unwrap();
        clear(dir.path()).unwrap();
        let rec = ExitRecord {
            exit_code: 3,
            signal: 0,
            oom_killed: false,
            finished_at_ns: 789,
            killed_because: None,
        };
        write(dir.path(), &rec).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(rec));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(EXIT_FILE)]);
        assert_eq!(
            std::fs::metadata(dir.path().join(EXIT_FILE)).unwrap().len() as usize,
            RESERVED_LEN
        );
    }

    #[test]
    fn corrupt_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(EXIT_FILE), b"{not json").unwrap();
        assert_eq!(
            read(dir.path()).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
    }
}
