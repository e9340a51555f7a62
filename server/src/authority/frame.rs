//! HTTP/2 frame heads (RFC 9113, 4.1): the nine bytes before every frame's
//! payload, the frame types and flags the normaliser looks at, and the
//! limits it shares with the server's HTTP/2 settings.

/// Bytes of a frame head: length (24 bits), type, flags, stream id (31 bits).
pub const HEAD_LEN: usize = 9;

/// SETTINGS_MAX_FRAME_SIZE the server advertises (the protocol's default);
/// a client frame larger than this is a connection error anyway.
pub const MAX_FRAME_SIZE: u32 = 16 * 1024;
/// SETTINGS_MAX_HEADER_LIST_SIZE the server advertises.
pub const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
/// The most bytes (frame heads, padding and all) one header block may span
/// on the wire before the connection is closed: a block that decodes within
/// MAX_HEADER_LIST_SIZE needs far less.
pub const MAX_BLOCK_BYTES: usize = 4 * MAX_HEADER_LIST_SIZE as usize + 64 * HEAD_LEN;

pub const HEADERS: u8 = 0x1;
pub const PUSH_PROMISE: u8 = 0x5;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// A parsed frame head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Payload length.
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    pub fn parse(b: &[u8; HEAD_LEN]) -> Head {
        Head {
            len: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    /// Appends the nine bytes of this head (`len` must fit in 24 bits).
    pub fn write(&self, out: &mut Vec<u8>) {
        debug_assert!(self.len < 1 << 24);
        let len = (self.len as u32).to_be_bytes();
        out.extend_from_slice(&len[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&(self.stream & 0x7fff_ffff).to_be_bytes());
    }

    /// The head and payload together.
    pub fn total(&self) -> usize {
        HEAD_LEN + self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip() {
        let h = Head {
            len: 0x01_02_03,
            kind: HEADERS,
            flags: END_HEADERS | END_STREAM,
            stream: 0x7fff_fffd,
        };
        let mut out = Vec::new();
        h.write(&mut out);
        assert_eq!(out, [1, 2, 3, 1, 5, 0x7f, 0xff, 0xff, 0xfd]);
        let b: [u8; HEAD_LEN] = out.try_into().unwrap();
        assert_eq!(Head::parse(&b), h);
        // The reserved bit is ignored.
        let mut b = b;
        b[5] |= 0x80;
        assert_eq!(Head::parse(&b).stream, 0x7fff_fffd);
    }
}
