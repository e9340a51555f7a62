//! Reading a container's log files while the shim may rotate them (see
//! `shim/logwriter.rs` for the writer's side of the protocol): the rotated
//! files oldest first, then `container.log`, optionally only their tail,
//! and, for a reader that finished a file, the next newer one. Blocking and
//! std-only; every file comes with its [`FileId`], which tells a renamed
//! file from the new one that took its name.
use super::{LOG_FILE, rotated_name};
use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Rotated files are looked for up to this index.
const MAX_ROTATED: u32 = 1000;

/// Identity of a file: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// A log file that could not be opened, inspected or read.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct ReadError {
    context: String,
    source: std::io::Error,
}

fn err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ReadError {
    move |source| ReadError {
        context: context.into(),
        source,
    }
}

pub type Result<T> = std::result::Result<T, ReadError>;

/// Opens the file at `p` with its identity; None when it does not exist.
pub fn open(p: &Path) -> Result<Option<(File, FileId)>> {
    let f = match File::open(p) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(format!("open {}", p.display()))(e)),
    };
    let m = f.metadata().map_err(err("stat log"))?;
    Ok(Some((f, FileId::of(&m))))
}

fn stat_id(p: &Path) -> Result<Option<FileId>> {
    match std::fs::metadata(p) {
        Ok(m) => Ok(Some(FileId::of(&m))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(format!("stat {}", p.display()))(e)),
    }
}

/// Every log file of the directory, oldest first (the live one last when it
/// exists; before that, the newest rotated one). Opened newest first,
/// skipping a file seen twice, so a rotation in between never puts a file
/// out of order.
fn open_all(dir: &Path) -> Result<Vec<(File, FileId)>> {
    let mut out: Vec<(File, FileId)> = Vec::new();
    out.extend(open(&dir.join(LOG_FILE))?);
    let mut misses = 0;
    for k in 1..=MAX_ROTATED {
        match open(&dir.join(rotated_name(k)))? {
            Some(f) => {
                misses = 0;
                if !out.iter().any(|(_, id)| *id == f.1) {
                    out.push(f);
                }
            }
            // A name is missing only for a moment during a rotation.
            None => {
                misses += 1;
                if misses == 2 {
                    break;
                }
            }
        }
    }
    out.reverse();
    Ok(out)
}

/// The log files of `dir` to read, positioned for `tail` (the last records
/// across all files): the older ones, to be read through and left, and the
/// newest, which a follower keeps reading.
#[allow(clippy::type_complexity)]
pub fn open_from(
    dir: &Path,
    tail: Option<u64>,
) -> Result<(Vec<(File, FileId)>, Option<(File, FileId)>)> {
    let mut files = open_all(dir)?;
    if let Some(n) = tail {
        let mut left = n;
        let mut first = 0;
        for i in (0..files.len()).rev() {
            match tail_in(&mut files[i].0, left)? {
                Ok(off) => {
                    files[i]
                        .0
                        .seek(SeekFrom::Start(off))
                        .map_err(err("seek log"))?;
                    first = i;
                    break;
                }
                Err(seen) => {
                    left -= seen;
                    files[i].0.rewind().map_err(err("seek log"))?;
                }
            }
        }
        files.drain(..first);
    }
    let last = files.pop();
    Ok((files, last))
}

/// After the reader finished the file `id`: the next newer log file, if
/// `id` has been rotated away. None while `id` is still the live file (or
/// the new live file is not created yet; its creation wakes the reader).
pub fn successor(dir: &Path, id: FileId) -> Result<Option<(File, FileId)>> {
    let live = dir.join(LOG_FILE);
    // A rotation may run while we look: retry until the picture is stable.
    for _ in 0..16 {
        if stat_id(&live)? == Some(id) {
            return Ok(None);
        }
        let mut at = None;
        let mut oldest = None;
        let mut misses = 0;
        for k in 1..=MAX_ROTATED {
            match stat_id(&dir.join(rotated_name(k)))? {
                Some(x) if x == id => {
                    at = Some(k);
                    break;
                }
                Some(_) => {
                    misses = 0;
                    oldest = Some(k);
                }
                None => {
                    misses += 1;
                    if misses == 2 {
                        break;
                    }
                }
            }
        }
        let (next, check) = match (at, oldest) {
            (Some(1), _) => (live.clone(), Some(1)),
            (Some(k), _) => (dir.join(rotated_name(k - 1)), Some(k)),
            // Our file is gone (the reader fell behind, or rotation keeps
            // no old file): go on with the oldest one left.
            (None, Some(k)) => (dir.join(rotated_name(k)), None),
            (None, None) => (live.clone(), None),
        };
        let Some(f) = open(&next)? else {
            if next == live {
                return Ok(None);
            }
            continue;
        };
        // Still where we found it: nothing was renamed onto `next` meanwhile.
        match check {
            Some(k) if stat_id(&dir.join(rotated_name(k)))? != Some(id) => continue,
            _ => return Ok(Some(f)),
        }
    }
    Ok(None)
}

/// Where the last `n` records of the file begin: Ok(offset), or Err(count)
/// when the file holds only `count` < `n` records.
fn tail_in(f: &mut File, n: u64) -> Result<std::result::Result<u64, u64>> {
    let len = f.metadata().map_err(err("stat log"))?.len();
    if n == 0 {
        return Ok(Ok(len));
    }
    let mut pos = len;
    let mut seen = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while pos > 0 {
        let step = (buf.len() as u64).min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos)).map_err(err("seek log"))?;
        let chunk = &mut buf[..step as usize];
        f.read_exact(chunk).map_err(err("read log"))?;
        for i in (0..chunk.len()).rev() {
            // The file's last byte is the newline of the last record: skip it.
            if chunk[i] == b'\n' && pos + (i as u64) + 1 != len {
                seen += 1;
                if seen == n {
                    return Ok(Ok(pos + i as u64 + 1));
                }
            }
        }
    }
    // The first record has no newline before it.
    if len > 0 {
        seen += 1;
        if seen == n {
            return Ok(Ok(0));
        }
    }
    Ok(Err(seen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(p: &Path, data: &[u8]) {
        File::create(p).unwrap().write_all(data).unwrap();
    }

    #[test]
    fn tail_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        write(&p, b"a\nbb\nccc\n");
        let mut f = File::open(&p).unwrap();
        let mut t = |n| tail_in(&mut f, n).unwrap();
        assert_eq!(t(1), Ok(5));
        assert_eq!(t(2), Ok(2));
        assert_eq!(t(3), Ok(0));
        assert_eq!(t(10), Err(3));
        assert_eq!(t(0), Ok(9));
        let e = dir.path().join("empty");
        write(&e, b"");
        let mut f = File::open(&e).unwrap();
        assert_eq!(tail_in(&mut f, 2).unwrap(), Err(0));
    }

    fn read_all((mut f, _): (File, FileId)) -> String {
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn files_oldest_first_and_tail_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(&d.join(rotated_name(2)), b"1\n2\n");
        write(&d.join(rotated_name(1)), b"3\n4\n");
        write(&d.join(LOG_FILE), b"5\n");
        let texts = |tail| {
            let (older, last) = open_from(d, tail).unwrap();
            let mut v: Vec<String> = older.into_iter().map(read_all).collect();
            v.extend(last.map(read_all));
            v
        };
        assert_eq!(texts(None), ["1\n2\n", "3\n4\n", "5\n"]);
        assert_eq!(texts(Some(1)), ["5\n"]);
        assert_eq!(texts(Some(2)), ["4\n", "5\n"]);
        assert_eq!(texts(Some(4)), ["2\n", "3\n4\n", "5\n"]);
        assert_eq!(texts(Some(9)), ["1\n2\n", "3\n4\n", "5\n"]);
        assert_eq!(texts(Some(0)), [""]);
        // Before the live file exists, the newest rotated one is last.
        std::fs::remove_file(d.join(LOG_FILE)).unwrap();
        assert_eq!(texts(Some(3)), ["2\n", "3\n4\n"]);
    }

    #[test]
    fn successor_follows_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let id = |p: &Path| FileId::of(&std::fs::metadata(p).unwrap());
        write(&d.join(LOG_FILE), b"a\n");
        let a = id(&d.join(LOG_FILE));
        assert!(successor(d, a).unwrap().is_none(), "still live");
        // Rotated, new live file not there yet: wait for it.
        std::fs::rename(d.join(LOG_FILE), d.join(rotated_name(1))).unwrap();
        assert!(successor(d, a).unwrap().is_none());
        write(&d.join(LOG_FILE), b"b\n");
        let next = successor(d, a).unwrap().expect("the new live file");
        assert_eq!(next.1, id(&d.join(LOG_FILE)));
        assert_eq!(read_all(next), "b\n");
        // Two rotations behind: .2 -> .1 -> live.
        let b = id(&d.join(LOG_FILE));
        std::fs::rename(d.join(rotated_name(1)), d.join(rotated_name(2))).unwrap();
        std::fs::rename(d.join(LOG_FILE), d.join(rotated_name(1))).unwrap();
        write(&d.join(LOG_FILE), b"c\n");
        assert_eq!(read_all(successor(d, a).unwrap().unwrap()), "b\n");
        assert_eq!(read_all(successor(d, b).unwrap().unwrap()), "c\n");
        // `a` deleted: continue with the oldest file left.
        std::fs::remove_file(d.join(rotated_name(2))).unwrap();
        assert_eq!(read_all(successor(d, a).unwrap().unwrap()), "b\n");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open(&dir.path().join("none")).unwrap().is_none());
        // A missing directory holds no files.
        let (older, last) = open_from(&dir.path().join("none"), Some(1)).unwrap();
        assert!(older.is_empty() && last.is_none());
        let not_dir = dir.path().join("file");
        write(&not_dir, b"");
        let e = stat_id(&not_dir.join("child")).unwrap_err();
        assert!(e.to_string().starts_with("stat "), "{e}");
        assert!(e.to_string().contains("child"), "{e}");
        let e = open(&not_dir.join("child")).unwrap_err();
        assert!(e.to_string().starts_with("open "), "{e}");
    }
}
