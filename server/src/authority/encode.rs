//! Re-encoding a decoded header block for the server: every field a
//! literal that is not indexed (RFC 7541, 6.2.2; never-indexed for values
//! the client marked sensitive, 6.2.3), names of pseudo-headers from the
//! static table, strings without Huffman coding. Nothing enters the server's
//! dynamic table, so the encoder keeps no state; the first rewritten block
//! of a connection opens with a table size update to 0, which empties what
//! the client's own blocks left in the server's table.
use super::frame::{CONTINUATION, END_HEADERS, END_STREAM, HEADERS, Head, MAX_FRAME_SIZE};
use h2::frame::Headers;

/// What replaces an `:authority` that is not a valid URI authority.
pub const LOCAL_AUTHORITY: &str = "localhost";

/// Static table indices (RFC 7541, appendix A) of the pseudo-headers' names.
const AUTHORITY: usize = 1;
const METHOD: usize = 2;
const PATH: usize = 4;
const SCHEME: usize = 6;
const STATUS: usize = 8;

/// Whether h2 takes `a` as a request's `:authority` (the same parse it makes).
pub fn is_valid_authority(a: &[u8]) -> bool {
    http::uri::Authority::try_from(a).is_ok()
}

/// Appends `h` re-encoded (its `:authority` made valid) as a HEADERS frame
/// and as many CONTINUATION frames as the server's frame size needs.
pub fn block(h: Headers, stream: u32, end_stream: bool, empty_table: bool, out: &mut Vec<u8>) {
    let (pseudo, fields) = h.into_parts();
    let mut b = Vec::with_capacity(256);
    if empty_table {
        integer(&mut b, 0x20, 5, 0);
    }
    if let Some(m) = &pseudo.method {
        indexed_name(&mut b, METHOD, m.as_str().as_bytes());
    }
    if let Some(s) = &pseudo.scheme {
        indexed_name(&mut b, SCHEME, s.as_bytes());
    }
    if let Some(a) = &pseudo.authority {
        let a = a.as_bytes();
        let a = if is_valid_authority(a) {
            a
        } else {
            LOCAL_AUTHORITY.as_bytes()
        };
        indexed_name(&mut b, AUTHORITY, a);
    }
    if let Some(p) = &pseudo.path {
        indexed_name(&mut b, PATH, p.as_bytes());
    }
    if let Some(p) = &pseudo.protocol {
        literal(&mut b, b":protocol", p.as_str().as_bytes(), false);
    }
    if let Some(s) = &pseudo.status {
        indexed_name(&mut b, STATUS, s.as_str().as_bytes());
    }
    for (name, value) in &fields {
        literal(
            &mut b,
            name.as_str().as_bytes(),
            value.as_bytes(),
            value.is_sensitive(),
        );
    }
    frames(&b, stream, end_stream, out);
}

/// Splits a header block into HEADERS + CONTINUATION frames.
fn frames(block: &[u8], stream: u32, end_stream: bool, out: &mut Vec<u8>) {
    let max = MAX_FRAME_SIZE as usize;
    let n = block.len().div_ceil(max).max(1);
    for i in 0..n {
        let chunk = &block[(i * max).min(block.len())..((i + 1) * max).min(block.len())];
        let mut flags = if i + 1 == n { END_HEADERS } else { 0 };
        let kind = if i == 0 {
            if end_stream {
                flags |= END_STREAM;
            }
            HEADERS
        } else {
            CONTINUATION
        };
        Head {
            len: chunk.len(),
            kind,
            flags,
            stream,
        }
        .write(out);
        out.extend_from_slice(chunk);
    }
}

/// A literal without indexing whose name is a static table entry.
fn indexed_name(out: &mut Vec<u8>, index: usize, value: &[u8]) {
    integer(out, 0x00, 4, index);
    string(out, value);
}

/// A literal with a literal name: without indexing, or never indexed.
fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8], sensitive: bool) {
    out.push(if sensitive { 0x10 } else { 0x00 });
    string(out, name);
    string(out, value);
}

/// A string literal, not Huffman coded (RFC 7541, 5.2).
fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 0x00, 7, s.len());
    out.extend_from_slice(s);
}

/// An integer with an N-bit prefix after the representation's bits in
/// `first` (RFC 7541, 5.1).
fn integer(out: &mut Vec<u8>, first: u8, prefix_bits: u32, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_as_in_rfc_7541_appendix_c1() {
        let mut out = Vec::new();
        integer(&mut out, 0, 5, 10);
        assert_eq!(out, [0b0000_1010]);
        out.clear();
        integer(&mut out, 0, 5, 1337);
        assert_eq!(out, [0b0001_1111, 0b1001_1010, 0b0000_1010]);
        out.clear();
        integer(&mut out, 0, 8, 42);
        assert_eq!(out, [42]);
        out.clear();
        integer(&mut out, 0x20, 5, 0);
        assert_eq!(out, [0x20]);
    }

    #[test]
    fn authorities() {
        assert!(is_valid_authority(b"localhost"));
        assert!(is_valid_authority(b"[::1]:50051"));
        assert!(is_valid_authority(b"quilt.sock"));
        // What gRPC C-core and grpc-java send for a Unix socket.
        assert!(!is_valid_authority(b"tmp%2Fx%2Fquilt.sock"));
        assert!(!is_valid_authority(b"/run/quilt/quilt.sock"));
        assert!(!is_valid_authority(b""));
    }

    #[test]
    fn a_long_block_is_framed_within_the_frame_size() {
        let block = vec![7u8; MAX_FRAME_SIZE as usize * 2 + 5];
        let mut out = Vec::new();
        frames(&block, 3, true, &mut out);
        let mut at = 0;
        let mut heads = Vec::new();
        while at < out.len() {
            let h = Head::parse(out[at..at + 9].try_into().unwrap());
            heads.push((h.kind, h.flags, h.len));
            at += h.total();
        }
        let max = MAX_FRAME_SIZE as usize;
        assert_eq!(
            heads,
            [
                (HEADERS, END_STREAM, max),
                (CONTINUATION, 0, max),
                (CONTINUATION, END_HEADERS, 5)
            ]
        );
        out.clear();
        frames(&[], 1, false, &mut out);
        assert_eq!(out, [0, 0, 0, HEADERS, END_HEADERS, 0, 0, 0, 1]);
    }
}
