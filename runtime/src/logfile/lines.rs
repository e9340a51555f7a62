//! From a stream's output to log records: whole lines become full records
//! (cut into partial ones past [`MAX_RECORD`]); an incomplete last line waits
//! for the next chunk, and is flushed in partial pieces once it is longer
//! than a record. The hot path of log capture: no allocation per chunk.
use super::{MAX_RECORD, Prefix, Record, Stream, encode};

/// Encodes the output of one stream, chunk by chunk.
#[derive(Debug)]
pub struct LineEncoder {
    stream: Stream,
    /// The incomplete last line (at most `MAX_RECORD` bytes between chunks).
    pending: Vec<u8>,
}

impl LineEncoder {
    pub fn new(stream: Stream) -> LineEncoder {
        LineEncoder {
            stream,
            pending: Vec::with_capacity(MAX_RECORD),
        }
    }

    pub fn stream(&self) -> Stream {
        self.stream
    }

    /// The bytes of the incomplete last line, not encoded yet.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Turns one chunk read from the stream into records, appended to `out`.
    pub fn chunk(&mut self, chunk: &[u8], ts_ns: i64, out: &mut Vec<u8>) {
        let prefix = Prefix::new(ts_ns, self.stream);
        let line_out = |mut line: &[u8], out: &mut Vec<u8>| {
            while line.len() > MAX_RECORD {
                prefix.record(true, &line[..MAX_RECORD], out);
                line = &line[MAX_RECORD..];
            }
            prefix.record(false, line, out);
        };
        out.reserve(chunk.len() + chunk.len() / 8 + 64);
        let mut rest = chunk;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let line = &rest[..i];
            if self.pending.is_empty() {
                line_out(line, out);
            } else {
                self.pending.extend_from_slice(line);
                line_out(&self.pending, out);
                self.pending.clear();
            }
            rest = &rest[i + 1..];
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() > MAX_RECORD {
            let mut off = 0;
            while self.pending.len() - off > MAX_RECORD {
                prefix.record(true, &self.pending[off..off + MAX_RECORD], out);
                off += MAX_RECORD;
            }
            self.pending.drain(..off);
        }
    }

    /// At end of file: whatever is left is a partial record.
    pub fn eof(&mut self, ts_ns: i64, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            encode(
                &Record {
                    ts_ns,
                    stream: self.stream,
                    partial: true,
                    data: &self.pending,
                },
                out,
            );
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn records(out: &[u8]) -> Vec<(Stream, bool, Vec<u8>)> {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let r = parse(l).unwrap();
                (r.stream, r.partial, r.data.to_vec())
            })
            .collect()
    }

    #[test]
    fn chunks_to_records() {
        let mut enc = LineEncoder::new(Stream::Stdout);
        assert_eq!(enc.stream(), Stream::Stdout);
        let mut out = Vec::new();
        enc.chunk(b"a\nbc\nde", 7, &mut out);
        assert_eq!(out, b"7 stdout F a\n7 stdout F bc\n");
        assert_eq!(enc.pending(), b"de");
        out.clear();
        enc.chunk(b"f\n\ng", 8, &mut out);
        assert_eq!(out, b"8 stdout F def\n8 stdout F \n");
        out.clear();
        enc.eof(9, &mut out);
        assert_eq!(out, b"9 stdout P g\n");
        assert!(enc.pending().is_empty());
        out.clear();
        enc.eof(9, &mut out);
        assert!(out.is_empty());
        let mut enc = LineEncoder::new(Stream::Stderr);
        enc.chunk(b"x\n", -3, &mut out);
        assert_eq!(out, b"-3 stderr F x\n");
    }

    #[test]
    fn long_lines_split() {
        let mut enc = LineEncoder::new(Stream::Stderr);
        let mut out = Vec::new();
        let mut line = vec![b'x'; MAX_RECORD * 2 + 10];
        line.push(b'\n');
        enc.chunk(&line, 1, &mut out);
        let recs = records(&out);
        assert_eq!(recs.len(), 3);
        assert_eq!((recs[0].1, recs[0].2.len()), (true, MAX_RECORD));
        assert_eq!((recs[1].1, recs[1].2.len()), (true, MAX_RECORD));
        assert_eq!((recs[2].1, recs[2].2.len()), (false, 10));

        // Exactly MAX_RECORD bytes, arriving in pieces, is one full record.
        let mut enc = LineEncoder::new(Stream::Stdout);
        out.clear();
        enc.chunk(&vec![b'y'; MAX_RECORD - 1], 1, &mut out);
        assert!(out.is_empty());
        enc.chunk(b"y\n", 1, &mut out);
        let recs = records(&out);
        assert_eq!(recs.len(), 1);
        assert_eq!((recs[0].1, recs[0].2.len()), (false, MAX_RECORD));

        // A long line without a newline is flushed in partial pieces as it comes.
        out.clear();
        enc.chunk(&vec![b'z'; MAX_RECORD + 5], 1, &mut out);
        let recs = records(&out);
        assert_eq!(recs.len(), 1);
        assert_eq!((recs[0].1, recs[0].2.len()), (true, MAX_RECORD));
        assert_eq!(enc.pending().len(), 5);
    }

    #[test]
    fn binary_data_round_trips() {
        let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let mut enc = LineEncoder::new(Stream::Stdout);
        let mut out = Vec::new();
        for piece in data.chunks(777) {
            enc.chunk(piece, 3, &mut out);
        }
        enc.eof(3, &mut out);
        let mut back = Vec::new();
        for (_, partial, d) in records(&out) {
            back.extend_from_slice(&d);
            if !partial {
                back.push(b'\n');
            }
        }
        assert_eq!(back, data);
    }

    #[test]
    fn records_match_encode() {
        // The shared prefix gives byte for byte what `encode` writes.
        let mut enc = LineEncoder::new(Stream::Stderr);
        let mut out = Vec::new();
        enc.chunk(b"one\ntwo\nthr", 1_700_000_000_000_000_001, &mut out);
        enc.eof(-1, &mut out);
        let mut want = Vec::new();
        for (ts, partial, data) in [
            (1_700_000_000_000_000_001, false, &b"one"[..]),
            (1_700_000_000_000_000_001, false, b"two"),
            (-1, true, b"thr"),
        ] {
            encode(
                &Record {
                    ts_ns: ts,
                    stream: Stream::Stderr,
                    partial,
                    data,
                },
                &mut want,
            );
        }
        assert_eq!(out, want);
    }
}
