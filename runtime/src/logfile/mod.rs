//! The container log file: one record per line,
//! `<unix-nanos> <stdout|stderr> <F|P> <bytes>\n` where F marks a full line
//! (the original newline was stripped and is implied) and P a partial one.
//! The format is defined here ([`encode`], [`parse`]); [`LineEncoder`] turns
//! a stream's output into records, and [`reader`] reads the rotated files
//! the shim's writer leaves.
mod lines;
pub mod reader;

pub use lines::LineEncoder;

pub const LOG_FILE: &str = "container.log";
/// The shim's own diagnostics, beside the container's log.
pub const SHIM_LOG: &str = "shim.log";

/// Opens a log file for appending (created 0640).
pub fn open_append(p: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(p)
}

/// Name of the `n`th rotated log file (1 = the most recent):
/// `container.log.<n>`. The shim renames the live file to `.1` when it
/// reaches its size cap, after shifting `.1` to `.2` and so on.
pub fn rotated_name(n: u32) -> String {
    format!("{LOG_FILE}.{n}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub ts_ns: i64,
    pub stream: Stream,
    /// false = the line ended with a newline (re-add it when printing).
    pub partial: bool,
    pub data: &'a [u8],
}

/// Longest payload of one record; longer lines are split into partial records.
pub const MAX_RECORD: usize = 16 * 1024;

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Longest `<ts> <stream> ` prefix: an i64 (sign and 19 digits), a space,
/// six letters and a space.
const PREFIX_MAX: usize = 20 + 1 + 6 + 1;

/// The `<ts> <stream> ` start that records of one timestamp and stream
/// share, built on the stack (no allocation).
struct Prefix {
    buf: [u8; PREFIX_MAX],
    len: usize,
}

impl Prefix {
    fn new(ts_ns: i64, stream: Stream) -> Prefix {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = ts_ns.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if ts_ns < 0 {
            i -= 1;
            digits[i] = b'-';
        }
        let mut p = Prefix {
            buf: [0; PREFIX_MAX],
            len: 0,
        };
        for part in [&digits[i..], b" ", stream.as_str().as_bytes(), b" "] {
            p.buf[p.len..p.len + part.len()].copy_from_slice(part);
            p.len += part.len();
        }
        p
    }

    /// Appends one record with this prefix to `out`.
    fn record(&self, partial: bool, data: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf[..self.len]);
        out.extend_from_slice(if partial { b"P " } else { b"F " });
        out.extend_from_slice(data);
        out.push(b'\n');
    }
}

/// Appends the encoded record to `out`.
pub fn encode(rec: &Record<'_>, out: &mut Vec<u8>) {
    out.reserve(rec.data.len() + 32);
    Prefix::new(rec.ts_ns, rec.stream).record(rec.partial, rec.data, out);
}

/// Parses one line of the file (without its trailing newline).
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let sp = line.iter().position(|&b| b == b' ')?;
    let ts = std::str::from_utf8(&line[..sp]).ok()?;
    if ts.is_empty() || ts.starts_with('+') {
        return None;
    }
    let ts_ns: i64 = ts.parse().ok()?;
    let rest = &line[sp + 1..];
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b"stdout ") {
        (Stream::Stdout, r)
    } else if let Some(r) = rest.strip_prefix(b"stderr ") {
        (Stream::Stderr, r)
    } else {
        return None;
    };
    let (partial, data): (bool, &[u8]) = match rest {
        [b'F'] => (false, &[]),
        [b'P'] => (true, &[]),
        [b'F', b' ', data @ ..] => (false, data),
        [b'P', b' ', data @ ..] => (true, data),
        _ => return None,
    };
    Some(Record {
        ts_ns,
        stream,
        partial,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let payloads: Vec<Vec<u8>> = vec![
            b"hello world".to_vec(),
            Vec::new(),
            b"  leading and trailing spaces  ".to_vec(),
            (0u8..=255).filter(|&b| b != b'\n').collect(),
            b"F P stdout stderr 123".to_vec(),
            vec![b'x'; MAX_RECORD],
        ];
        for (i, data) in payloads.iter().enumerate() {
            for stream in [Stream::Stdout, Stream::Stderr] {
                for partial in [false, true] {
                    let rec = Record {
                        ts_ns: 1_700_000_000_123_456_789 + i as i64,
                        stream,
                        partial,
                        data,
                    };
                    let mut out = Vec::new();
                    encode(&rec, &mut out);
                    assert_eq!(*out.last().unwrap(), b'\n');
                    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
                    let line = &out[..out.len() - 1];
                    assert_eq!(parse(line), Some(rec.clone()));
                    // A trailing newline is tolerated as well.
                    assert_eq!(parse(&out), Some(rec));
                }
            }
        }
    }

    #[test]
    fn exact_format() {
        let mut out = Vec::new();
        encode(
            &Record {
                ts_ns: 42,
                stream: Stream::Stderr,
                partial: true,
                data: b"a b",
            },
            &mut out,
        );
        encode(
            &Record {
                ts_ns: -5,
                stream: Stream::Stdout,
                partial: false,
                data: b"",
            },
            &mut out,
        );
        assert_eq!(out, b"42 stderr P a b\n-5 stdout F \n");
        for (ts, text) in [
            (i64::MIN, "-9223372036854775808"),
            (i64::MAX, "9223372036854775807"),
            (0, "0"),
            (-1, "-1"),
            (1_700_000_000_123_456_789, "1700000000123456789"),
        ] {
            out.clear();
            encode(
                &Record {
                    ts_ns: ts,
                    stream: Stream::Stdout,
                    partial: false,
                    data: b"x",
                },
                &mut out,
            );
            assert_eq!(out, format!("{text} stdout F x\n").as_bytes());
            assert_eq!(parse(&out).unwrap().ts_ns, ts);
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b""[..],
            b"x stdout F a",
            b"1 stdin F a",
            b"1 stdout X a",
            b"1 stdout Fa",
            b"1stdout F a",
            b"+1 stdout F a",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(b"1 stdout F").unwrap().data, b"");
    }
}
