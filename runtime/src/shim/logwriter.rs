//! Writes `container.log` for the supervisor and rotates it at its size cap:
//! `container.log.<N-2>` -> `.<N-1>` ... `.1` -> `.2`, `container.log` ->
//! `.1`, then a fresh `container.log`. Rotation happens only between
//! records, so every file holds whole records and a reader that still has a
//! renamed file open finishes it before moving on to the next one (the
//! reader's side: `crate::logfile::reader`).
use crate::logfile::{LOG_FILE, open_append, rotated_name};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub(crate) struct LogWriter {
    dir: PathBuf,
    file: Option<File>,
    /// Bytes in the live file.
    size: u64,
    /// 0 = no cap.
    max_bytes: u64,
    /// Files kept, the live one included (at least 1).
    max_files: u32,
}

/// A rename or removal that finds nothing to act on is not an error.
fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl LogWriter {
    /// Opens (appending to) `dir/container.log`.
    pub(crate) fn open(
        dir: &Path,
        max_bytes: Option<u64>,
        max_files: Option<u32>,
    ) -> io::Result<LogWriter> {
        let file = open_append(&dir.join(LOG_FILE))?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            file: Some(file),
            size,
            max_bytes: max_bytes.unwrap_or(0),
            max_files: max_files.unwrap_or(1).max(1),
        })
    }

    /// Appends `data`, which holds whole records, rotating between records
    /// whenever the next one would take the live file past its cap. A
    /// single record larger than the cap gets a file of its own.
    pub(crate) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let room = self.max_bytes.saturating_sub(self.size);
            if self.max_bytes == 0 || data.len() as u64 <= room {
                return self.append(data);
            }
            let fits = data[..room as usize]
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|i| i + 1);
            match fits {
                Some(n) => {
                    self.append(&data[..n])?;
                    data = &data[n..];
                }
                None if self.size == 0 => {
                    let n = memchr::memchr(b'\n', data).map_or(data.len(), |i| i + 1);
                    self.append(&data[..n])?;
                    data = &data[n..];
                }
                None => {}
            }
            if !data.is_empty() {
                self.rotate()?;
            }
        }
        Ok(())
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            // A rotation failed to open the new file: try again.
            let f = open_append(&self.dir.join(LOG_FILE))?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        let f = self.file.as_mut().expect("opened above");
        self.size += data.len() as u64;
        f.write_all(data)
    }

    /// Removes the rotated files numbered `first` and up (the numbers are
    /// contiguous: it stops at the second missing one).
    fn remove_rotated_from(&self, first: u32) -> io::Result<()> {
        let mut missing = 0;
        let mut i = first;
        while missing < 2 {
            match std::fs::remove_file(self.dir.join(rotated_name(i))) {
                Ok(()) => missing = 0,
                Err(e) if e.kind() == io::ErrorKind::NotFound => missing += 1,
                Err(e) => return Err(e),
            }
            i += 1;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        self.size = 0;
        let live = self.dir.join(LOG_FILE);
        // The oldest goes first (so no rename replaces a file: ext4 flushes
        // the data of a file renamed over another one), with any left over
        // from a larger --log-max-files.
        self.remove_rotated_from(self.max_files.max(2) - 1)?;
        if self.max_files <= 1 {
            ignore_missing(std::fs::remove_file(&live))?;
        } else {
            // Oldest first, so a reader never sees a name skip a file.
            for i in (1..self.max_files - 1).rev() {
                ignore_missing(std::fs::rename(
                    self.dir.join(rotated_name(i)),
                    self.dir.join(rotated_name(i + 1)),
                ))?;
            }
            ignore_missing(std::fs::rename(&live, self.dir.join(rotated_name(1))))?;
        }
        self.file = Some(open_append(&live)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logfile::{self, Record, Stream};

    fn record(i: u32, len: usize) -> Vec<u8> {
        let mut data = format!("{i:06} ").into_bytes();
        data.resize(len.max(data.len()), b'x');
        let mut out = Vec::new();
        logfile::encode(
            &Record {
                ts_ns: i as i64,
                stream: Stream::Stdout,
                partial: false,
                data: &data,
            },
            &mut out,
        );
        out
    }

    /// Every file, oldest first, as (name, contents).
    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for i in (1..100).rev() {
            if let Ok(b) = std::fs::read(dir.join(rotated_name(i))) {
                out.push((rotated_name(i), b));
            }
        }
        out.push((
            LOG_FILE.to_string(),
            std::fs::read(dir.join(LOG_FILE)).unwrap(),
        ));
        out
    }

    #[test]
    fn rotates_between_records_within_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path(), Some(1000), Some(3)).unwrap();
        // Batches of several records, like the supervisor's reads.
        let mut n = 0;
        for batch in 0..60 {
            let mut buf = Vec::new();
            for _ in 0..(batch % 7 + 1) {
                buf.extend(record(n, 40 + (n as usize * 13) % 90));
                n += 1;
            }
            w.write(&buf).unwrap();
        }
        let all = files(dir.path());
        assert_eq!(
            all.len(),
            3,
            "{:?}",
            all.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        let mut expect = None;
        for (name, bytes) in &all {
            assert!(bytes.len() <= 1000, "{name} has {} bytes", bytes.len());
            assert!(bytes.ends_with(b"\n"), "{name} ends mid-record");
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let rec = logfile::parse(line).unwrap();
                let i = rec.ts_ns as u32;
                if let Some(e) = expect {
                    assert_eq!(i, e, "records out of order in {name}");
                }
                expect = Some(i + 1);
            }
        }
        assert_eq!(expect, Some(n), "the newest record is the last written");
        // The rotated files are full enough: rotation only when needed.
        for (name, bytes) in &all[..2] {
            assert!(bytes.len() > 1000 - 160, "{name} rotated early");
        }
    }

    #[test]
    fn one_file_means_start_afresh_and_oversized_records_fit_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path(), Some(100), Some(1)).unwrap();
        w.write(&record(1, 50)).unwrap();
        w.write(&record(2, 50)).unwrap();
        let all = files(dir.path());
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1, record(2, 50));
        // Larger than the cap: written whole, in a file of its own.
        let mut two = record(3, 300);
        two.extend(record(4, 10));
        w.write(&two).unwrap();
        assert_eq!(files(dir.path())[0].1, record(4, 10));
    }

    #[test]
    fn no_cap_never_rotates_and_reopen_appends() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path(), None, Some(3)).unwrap();
        for i in 0..100 {
            w.write(&record(i, 100)).unwrap();
        }
        drop(w);
        let mut w = LogWriter::open(dir.path(), Some(200_000), Some(3)).unwrap();
        assert!(w.size > 10_000);
        w.write(&record(100, 10)).unwrap();
        assert_eq!(files(dir.path()).len(), 1);
    }

    #[test]
    fn shrinking_max_files_drops_the_extra_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path(), Some(100), Some(4)).unwrap();
        for i in 0..10 {
            w.write(&record(i, 60)).unwrap();
        }
        assert_eq!(files(dir.path()).len(), 4);
        drop(w);
        let mut w = LogWriter::open(dir.path(), Some(100), Some(3)).unwrap();
        w.write(&record(10, 60)).unwrap();
        w.write(&record(11, 60)).unwrap();
        assert_eq!(files(dir.path()).len(), 3);
    }

    #[test]
    fn shrinking_max_files_by_more_than_one_drops_every_extra_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::open(dir.path(), Some(100), Some(6)).unwrap();
        for i in 0..20 {
            w.write(&record(i, 60)).unwrap();
        }
        assert_eq!(files(dir.path()).len(), 6);
        drop(w);
        let mut w = LogWriter::open(dir.path(), Some(100), Some(2)).unwrap();
        w.write(&record(20, 60)).unwrap();
        w.write(&record(21, 60)).unwrap();
        let names: Vec<String> = files(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        drop(w);
        // Down to one file: no rotated file at all.
        let mut w = LogWriter::open(dir.path(), Some(100), Some(1)).unwrap();
        w.write(&record(22, 60)).unwrap();
        w.write(&record(23, 60)).unwrap();
        assert_eq!(files(dir.path()).len(), 1);
    }
}
