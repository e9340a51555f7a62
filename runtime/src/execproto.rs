//! The framed byte protocol between the daemon and `quilt-shim exec`.
//!
//! Both directions carry frames of `[kind: u8][len: u32 big endian][payload]`.
//! Daemon -> helper (on the helper's stdin): first `CONFIG` (the JSON
//! [`crate::spec::ExecConfig`]), then any number of `STDIN`, `CLOSE_STDIN`,
//! `RESIZE` and `SIGNAL`. End of file means "no more input" (as CLOSE_STDIN).
//! Helper -> daemon (on the helper's stdout): `PID` once the command is
//! forked, `STDOUT`/`STDERR` chunks and, last, `EXIT`.

/// Daemon -> helper.
pub const CONFIG: u8 = 1;
pub const STDIN: u8 = 2;
pub const CLOSE_STDIN: u8 = 3;
/// Payload: rows u16 BE, cols u16 BE.
pub const RESIZE: u8 = 4;
/// Payload: signal number i32 BE.
pub const SIGNAL: u8 = 5;

/// Helper -> daemon. Payload: host pid of the command, i32 BE.
pub const PID: u8 = 16;
pub const STDOUT: u8 = 17;
pub const STDERR: u8 = 18;
/// Payload: exit code i32 BE, signal i32 BE (0 when it exited normally).
pub const EXIT: u8 = 19;

/// Largest payload accepted (a CONFIG with a large environment fits).
pub const MAX_PAYLOAD: usize = 4 * 1024 * 1024;

pub const HEADER_LEN: usize = 5;

/// Appends one frame to `out`.
pub fn encode(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// One frame as a new buffer.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    encode(&mut v, kind, payload);
    v
}

/// Parses a header: (kind, payload length).
pub fn header(h: &[u8; HEADER_LEN]) -> (u8, usize) {
    (h[0], u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize)
}

/// Splits complete frames off the front of `buf`, leaving a partial one.
/// Err when a frame announces more than [`MAX_PAYLOAD`] bytes.
pub fn split(buf: &mut Vec<u8>) -> Result<Vec<(u8, Vec<u8>)>, String> {
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
        out.push((kind, buf[start..start + len].to_vec()));
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
        encode(&mut wire, STDIN, b"hello");
        encode(&mut wire, RESIZE, &resize_payload(24, 80));
        encode(&mut wire, CLOSE_STDIN, b"");
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for b in &wire {
            buf.push(*b);
            got.extend(split(&mut buf).unwrap());
        }
        assert!(buf.is_empty());
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (STDIN, b"hello".to_vec()));
        assert_eq!(read_resize(&got[1].1), Some((24, 80)));
        assert_eq!(got[2], (CLOSE_STDIN, vec![]));
        let e = exit_payload(137, 9);
        assert_eq!((read_i32(&e, 0), read_i32(&e, 4)), (Some(137), Some(9)));
        assert_eq!(read_i32(&e, 6), None);
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut buf = vec![STDIN, 0xff, 0xff, 0xff, 0xff];
        assert!(split(&mut buf).is_err());
    }
}
