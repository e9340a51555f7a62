//! `exit.json`: the exit status the shim leaves for the daemon, written atomically.
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

/// Writes DIR/exit.json atomically (temp file + rename).
pub fn write(dir: &Path, rec: &ExitRecord) -> std::io::Result<()> {
    let mut data = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
    data.push(b'\n');
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

/// Removes DIR/exit.json if present (before a restart).
pub fn clear(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(EXIT_FILE)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
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
        };
        write(dir.path(), &rec).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(rec.clone()));
        let rec2 = ExitRecord {
            exit_code: 0,
            signal: 0,
            oom_killed: false,
            finished_at_ns: 456,
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
