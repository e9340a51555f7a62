//! Raw, binary-safe output of container streams to our stdout and stderr.

use std::io::{self, Write};

use quilt_proto::v1::{LogEntry, LogStream};

use super::timefmt::{Fraction, rfc3339};

/// Which of our output streams a chunk goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Stdout,
    Stderr,
}

impl Target {
    /// Stderr for `LOG_STREAM_STDERR`, stdout otherwise.
    pub fn of_log_stream(stream: i32) -> Target {
        if stream == LogStream::Stderr as i32 {
            Target::Stderr
        } else {
            Target::Stdout
        }
    }

    fn index(self) -> usize {
        match self {
            Target::Stdout => 0,
            Target::Stderr => 1,
        }
    }
}

/// Writes chunks unchanged and flushes after each one. A closed pipe on
/// either side silently drops further output for that side, so a container
/// can be followed to its exit even after `| head` has gone away.
pub struct Sink<O: Write, E: Write> {
    out: O,
    err: E,
    closed: [bool; 2],
}

impl Sink<io::Stdout, io::Stderr> {
    /// A sink on the process' stdout and stderr.
    pub fn stdio() -> Self {
        Sink::new(io::stdout(), io::stderr())
    }
}

impl<O: Write, E: Write> Sink<O, E> {
    pub fn new(out: O, err: E) -> Self {
        Sink {
            out,
            err,
            closed: [false; 2],
        }
    }

    /// Writes `data` to `target` and flushes it.
    pub fn write(&mut self, target: Target, data: &[u8]) -> io::Result<()> {
        if self.closed[target.index()] || data.is_empty() {
            return Ok(());
        }
        let w: &mut dyn Write = match target {
            Target::Stdout => &mut self.out,
            Target::Stderr => &mut self.err,
        };
        match w.write_all(data).and_then(|()| w.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed[target.index()] = true;
                Ok(())
            }
            other => other,
        }
    }

    /// The underlying writers (for tests).
    #[cfg(test)]
    pub fn into_inner(self) -> (O, E) {
        (self.out, self.err)
    }
}

/// Writes `text` to stdout; a closed pipe counts as success.
pub fn print_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `print_stdout` for commands: a failed write is an engine error.
pub fn emit(text: &str) -> Result<(), crate::error::CliError> {
    print_stdout(text).map_err(|e| crate::error::CliError::engine(format!("writing output: {e}")))
}

/// Writes `text` to stderr, ignoring failures (there is nowhere left to
/// report them).
pub fn print_stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// Prints `quilt: <message>` on stderr.
pub fn print_error(message: &str) {
    print_stderr(&format!("quilt: {message}\n"));
}

/// Prints log entries, optionally prefixing every line with its timestamp.
pub struct LogPrinter<O: Write, E: Write> {
    sink: Sink<O, E>,
    timestamps: bool,
    /// Per target: the next entry starts a new line.
    at_line_start: [bool; 2],
}

impl<O: Write, E: Write> LogPrinter<O, E> {
    pub fn new(sink: Sink<O, E>, timestamps: bool) -> Self {
        LogPrinter {
            sink,
            timestamps,
            at_line_start: [true; 2],
        }
    }

    pub fn print(&mut self, entry: &LogEntry) -> io::Result<()> {
        let target = Target::of_log_stream(entry.stream);
        if self.timestamps && self.at_line_start[target.index()] {
            let prefix = match &entry.timestamp {
                Some(ts) => rfc3339(ts, Fraction::Nanos),
                None => "-".to_owned(),
            };
            self.sink.write(target, format!("{prefix} ").as_bytes())?;
        }
        self.at_line_start[target.index()] = !entry.partial;
        self.sink.write(target, &entry.data)
    }

    /// The underlying sink (for tests).
    #[cfg(test)]
    pub fn into_sink(self) -> Sink<O, E> {
        self.sink
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;

    fn entry(stream: LogStream, data: &[u8], partial: bool) -> LogEntry {
        LogEntry {
            timestamp: Some(Timestamp {
                seconds: 1_714_564_800,
                nanos: 1,
            }),
            stream: stream as i32,
            data: data.to_vec(),
            partial,
        }
    }

    #[test]
    fn routes_by_stream_and_is_binary_safe() {
        let mut p = LogPrinter::new(Sink::new(Vec::new(), Vec::new()), false);
        p.print(&entry(LogStream::Stdout, b"out\n", false)).unwrap();
        p.print(&entry(LogStream::Stderr, b"err\n", false)).unwrap();
        p.print(&entry(LogStream::Stdout, &[0, 255, 10], false))
            .unwrap();
        let (out, err) = p.into_sink().into_inner();
        assert_eq!(out, b"out\n\x00\xff\n");
        assert_eq!(err, b"err\n");
    }

    #[test]
    fn timestamps_prefix_whole_lines_only() {
        let mut p = LogPrinter::new(Sink::new(Vec::new(), Vec::new()), true);
        p.print(&entry(LogStream::Stdout, b"par", true)).unwrap();
        p.print(&entry(LogStream::Stderr, b"e\n", false)).unwrap();
        p.print(&entry(LogStream::Stdout, b"tial\n", false))
            .unwrap();
        p.print(&entry(LogStream::Stdout, b"next\n", false))
            .unwrap();
        let (out, err) = p.into_sink().into_inner();
        let ts = "2024-05-01T12:00:00.000000001Z";
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{ts} partial\n{ts} next\n")
        );
        assert_eq!(String::from_utf8(err).unwrap(), format!("{ts} e\n"));
    }

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn broken_pipe_drops_output_quietly() {
        let mut sink = Sink::new(Closed, Vec::new());
        sink.write(Target::Stdout, b"lost").unwrap();
        sink.write(Target::Stdout, b"lost").unwrap();
        sink.write(Target::Stderr, b"kept").unwrap();
        assert_eq!(sink.into_inner().1, b"kept");
    }
}
