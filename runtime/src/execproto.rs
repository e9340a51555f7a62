//! The framed byte protocol between the daemon and `quilt-shim exec`.
//!
//! Both directions carry frames of `[kind: u8][len: u32 big endian][payload]`
//! (kind: a [`FrameKind`]).
//! Daemon -> helper (on the helper's stdin): first `Config` (the JSON
//! [`crate::spec::ExecConfig`]), then any number of `Stdin`, `CloseStdin`,
//! `Resize` and `Signal`. End of file means "no more input" (as CloseStdin).
//! Helper -> daemon (on the helper's stdout): `Pid` once the command is
//! forked, `Stdout`/`Stderr` chunks and, last, `Exit`.

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// Daemon -> helper: the JSON [`crate::spec::ExecConfig`], first.
    Config = 1,
    /// Daemon -> helper: bytes for the command's stdin.
    Stdin = 2,
    /// Daemon -> helper: no more stdin.
    CloseStdin = 3,
    /// Daemon -> helper. Payload: rows u16 BE, cols u16 BE.
    Resize = 4,
    /// Daemon -> helper. Payload: signal number i32 BE.
    Signal = 5,
    /// Helper -> daemon. Payload: host pid of the command, i32 BE.
    Pid = 16,
    /// Helper -> daemon: a chunk of the command's stdout (or terminal).
    Stdout = 17,
    /// Helper -> daemon: a chunk of the command's stderr.
    Stderr = 18,
    /// Helper -> daemon. Payload: exit code i32 BE, signal i32 BE (0 when
    /// it exited normally).
    Exit = 19,
}

/// A frame kind byte that no [`FrameKind`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown exec frame kind {0}")]
pub struct UnknownFrameKind(pub u8);

impl TryFrom<u8> for FrameKind {
    type Error = UnknownFrameKind;

    fn try_from(b: u8) -> Result<FrameKind, UnknownFrameKind> {
        Ok(match b {
            1 => FrameKind::Config,
            2 => FrameKind::Stdin,
            3 => FrameKind::CloseStdin,
            4 => FrameKind::Resize,
            5 => FrameKind::Signal,
            16 => FrameKind::Pid,
            17 => FrameKind::Stdout,
            18 => FrameKind::Stderr,
            19 => FrameKind::Exit,
            other => return Err(UnknownFrameKind(other)),
        })
    }
}

impl From<FrameKind> for u8 {
    fn from(k: FrameKind) -> u8 {
        k as u8
    }
}

/// Largest payload accepted (a CONFIG with a large environment fits).
pub const MAX_PAYLOAD: usize = 4 * 1024 * 1024;

pub const HEADER_LEN: usize = 5;

/// Appends one frame to `out`.
pub fn encode(out: &mut Vec<u8>, kind: FrameKind, payload: &[u8]) {
    out.push(kind.into());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// One frame as a new buffer.
pub fn frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    encode(&mut v, kind, payload);
    v
}

/// Parses a header: (kind, payload length).
pub fn header(h: &[u8; HEADER_LEN]) -> (u8, usize) {
    (h[0], u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize)
}

/// Splits complete frames off the front of `buf`, leaving a partial one.
/// Frames of a kind no [`FrameKind`] has are dropped (every reader ignores
/// them). Err when a frame announces more than [`MAX_PAYLOAD`] bytes.
pub fn split(buf: &mut Vec<u8>) -> Result<Vec<(FrameKind, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= HEADER_LEN {
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&buf[pos..pos + HEADER_LEN]);
        let (kind, len) = header(&h);
        if len > MAX_PAYLOAD {
            return Err(format!("exec frame of {len} bytes is too large"));
        }
        if buf.len() - pos - HEADER_LEN < len {
            break;
        }
        let start = pos + HEADER_LEN;
        if let Ok(kind) = FrameKind::try_from(kind) {
            out.push((kind, buf[start..start + len].to_vec()));
        }
        pos = start + len;
    }
    buf.drain(..pos);
    Ok(out)
}

pub fn i32_payload(v: i32) -> [u8; 4] {
    v.to_be_bytes()
}

pub fn read_i32(p: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?))
}

pub fn resize_payload(rows: u16, cols: u16) -> [u8; 4] {
    let r = rows.to_be_bytes();
    let c = cols.to_be_bytes();
    [r[0], r[1], c[0], c[1]]
}

pub fn read_resize(p: &[u8]) -> Option<(u16, u16)> {
    let p: [u8; 4] = p.get(..4)?.try_into().ok()?;
    Some((
        u16::from_be_bytes([p[0], p[1]]),
        u16::from_be_bytes([p[2], p[3]]),
    ))
}

pub fn exit_payload(code: i32, signal: i32) -> [u8; 8] {
    let mut p = [0u8; 8];
    p[..4].copy_from_slice(&code.to_be_bytes());
    p[4..].copy_from_slice(&signal.to_be_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_partial_reads() {
        let mut wire = Vec::new();
        encode(&mut wire, FrameKind::Stdin, b"hello");
        encode(&mut wire, FrameKind::Resize, &resize_payload(24, 80));
        encode(&mut wire, FrameKind::CloseStdin, b"");
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for b in &wire {
            buf.push(*b);
            got.extend(split(&mut buf).unwrap());
        }
        assert!(buf.is_empty());
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (FrameKind::Stdin, b"hello".to_vec()));
        assert_eq!(read_resize(&got[1].1), Some((24, 80)));
        assert_eq!(got[2], (FrameKind::CloseStdin, vec![]));
        let e = exit_payload(137, 9);
        assert_eq!((read_i32(&e, 0), read_i32(&e, 4)), (Some(137), Some(9)));
        assert_eq!(read_i32(&e, 6), None);
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut buf = vec![FrameKind::Stdin.into(), 0xff, 0xff, 0xff, 0xff];
        assert!(split(&mut buf).is_err());
    }

    #[test]
    fn kinds_keep_their_wire_values() {
        let wire = [
            (FrameKind::Config, 1u8),
            (FrameKind::Stdin, 2),
            (FrameKind::CloseStdin, 3),
            (FrameKind::Resize, 4),
            (FrameKind::Signal, 5),
            (FrameKind::Pid, 16),
            (FrameKind::Stdout, 17),
            (FrameKind::Stderr, 18),
            (FrameKind::Exit, 19),
        ];
        for (kind, byte) in wire {
            assert_eq!(u8::from(kind), byte);
            assert_eq!(FrameKind::try_from(byte), Ok(kind));
            assert_eq!(frame(kind, b"x")[0], byte);
        }
        let known: Vec<u8> = wire.iter().map(|(_, b)| *b).collect();
        for b in (0..=u8::MAX).filter(|b| !known.contains(b)) {
            assert_eq!(FrameKind::try_from(b), Err(UnknownFrameKind(b)));
        }
    }

    #[test]
    fn unknown_kinds_are_skipped() {
        let mut buf = frame(FrameKind::Stdout, b"a");
        buf.extend_from_slice(&[99, 0, 0, 0, 2, b'z', b'z']);
        encode(&mut buf, FrameKind::Exit, &exit_payload(0, 0));
        let got = split(&mut buf).unwrap();
        assert!(buf.is_empty());
        let kinds: Vec<FrameKind> = got.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [FrameKind::Stdout, FrameKind::Exit]);
    }
}
