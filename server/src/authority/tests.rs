//! The normaliser against hand-made client byte streams: what the server
//! reads must be a valid HTTP/2 stream carrying the same requests, with the
//! authority fixed, and anything malformed must close the connection.
use super::decode::BlockDecoder;
use super::frame::*;
use super::*;
use tokio::io::AsyncReadExt;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const DATA: u8 = 0x0;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// A reader handing out its bytes `step` at a time.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self
            .step
            .min(self.data.len() - self.pos)
            .min(buf.remaining());
        let from = self.pos;
        buf.put_slice(&self.data[from..from + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// What the server reads when the client sends `client` (after the preface).
async fn through(client: &[u8], step: usize) -> io::Result<Vec<u8>> {
    let t = Trickle {
        data: client.to_vec(),
        pos: 0,
        step,
    };
    let mut n = Normalised::after_preface(t, PREFACE);
    let mut got = Vec::new();
    n.read_to_end(&mut got).await?;
    assert_eq!(&got[..PREFACE.len()], PREFACE);
    Ok(got.split_off(PREFACE.len()))
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Head {
        len: payload.len(),
        kind,
        flags,
        stream,
    }
    .write(&mut out);
    out.extend_from_slice(payload);
    out
}

fn int(out: &mut Vec<u8>, first: u8, prefix: u32, v: usize) {
    let max = (1usize << prefix) - 1;
    if v < max {
        out.push(first | v as u8);
    } else {
        out.push(first | max as u8);
        let mut r = v - max;
        while r >= 128 {
            out.push((r % 128) as u8 | 0x80);
            r /= 128;
        }
        out.push(r as u8);
    }
}

fn lit(out: &mut Vec<u8>, s: &str) {
    int(out, 0, 7, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Literal with incremental indexing, name from the static table.
fn indexing(out: &mut Vec<u8>, name_index: usize, value: &str) {
    int(out, 0x40, 6, name_index);
    lit(out, value);
}

/// Literal with incremental indexing, literal name.
fn indexing_new(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x40);
    lit(out, name);
    lit(out, value);
}

fn indexed(out: &mut Vec<u8>, index: usize) {
    int(out, 0x80, 7, index);
}

/// A gRPC request's first header block as a C-core client encodes it:
/// everything entered into the dynamic table.
fn first_request(authority: &str) -> Vec<u8> {
    let mut b = Vec::new();
    indexed(&mut b, 3); // :method POST
    indexed(&mut b, 6); // :scheme http
    indexing(&mut b, 4, "/quilt.v1.ContainerService/GetContainer");
    indexing(&mut b, 1, authority);
    indexing_new(&mut b, "content-type", "application/grpc");
    indexing_new(&mut b, "te", "trailers");
    indexing_new(&mut b, "user-agent", "grpc-python/1.70");
    b
}

/// The next request on the connection: all from the dynamic table
/// (62 = newest: user-agent, 63 te, 64 content-type, 65 authority, 66 path).
fn second_request() -> Vec<u8> {
    let mut b = Vec::new();
    indexed(&mut b, 3);
    indexed(&mut b, 6);
    for i in [66, 65, 64, 63, 62] {
        indexed(&mut b, i);
    }
    b
}

/// A decoded header list, pseudo-headers first.
type Fields = Vec<(String, String)>;

/// Every header block of a server-bound stream, decoded in order, as
/// (stream, end of stream, fields); other frames as (kind, stream, payload).
#[derive(Debug, Default)]
struct Seen {
    blocks: Vec<(u32, bool, Fields)>,
    others: Vec<(u8, u32, Vec<u8>)>,
}

fn parse(server: &[u8]) -> Seen {
    let mut dec = BlockDecoder::default();
    let mut seen = Seen::default();
    let mut at = 0;
    let mut block = Vec::new();
    let mut open: Option<(u32, bool)> = None;
    while at < server.len() {
        let h = Head::parse(server[at..at + HEAD_LEN].try_into().unwrap());
        let whole = &server[at..at + h.total()];
        assert!(h.len <= MAX_FRAME_SIZE as usize);
        at += h.total();
        match h.kind {
            HEADERS | CONTINUATION => {
                if h.kind == HEADERS {
                    assert!(open.is_none());
                    open = Some((h.stream, h.flags & END_STREAM != 0));
                }
                block.extend_from_slice(whole);
                if h.flags & END_HEADERS != 0 {
                    let (stream, end) = open.take().unwrap();
                    let (pseudo, fields) = dec.decode(&block).unwrap().into_parts();
                    block.clear();
                    let mut list = Vec::new();
                    let mut push = |k: &str, v: &str| list.push((k.to_owned(), v.to_owned()));
                    if let Some(m) = &pseudo.method {
                        push(":method", m.as_str());
                    }
                    if let Some(s) = &pseudo.scheme {
                        push(":scheme", s);
                    }
                    if let Some(a) = &pseudo.authority {
                        push(":authority", a);
                    }
                    if let Some(p) = &pseudo.path {
                        push(":path", p);
                    }
                    for (k, v) in &fields {
                        push(k.as_str(), v.to_str().unwrap());
                    }
                    seen.blocks.push((stream, end, list));
                }
            }
            _ => seen
                .others
                .push((h.kind, h.stream, whole[HEAD_LEN..].to_vec())),
        }
    }
    assert!(open.is_none(), "a header block left open");
    seen
}

fn request(authority: &str, path: &str) -> Fields {
    [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", authority),
        (":path", path),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("user-agent", "grpc-python/1.70"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn conversation(authority: &str) -> Vec<u8> {
    let mut c = frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
    c.extend(frame(HEADERS, END_HEADERS, 1, &first_request(authority)));
    c.extend(frame(DATA, END_STREAM, 1, b"\0\0\0\0\x02\x0a\x00"));
    c.extend(frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &second_request(),
    ));
    c
}

#[tokio::test]
async fn valid_authorities_pass_untouched() {
    let c = conversation("localhost:50051");
    for step in [1, 7, 4096] {
        assert_eq!(through(&c, step).await.unwrap(), c, "step {step}");
    }
}

#[tokio::test]
async fn a_socket_path_authority_becomes_localhost_on_every_request() {
    let path = "/quilt.v1.ContainerService/GetContainer";
    for authority in ["tmp%2Fx%2Fquilt.sock", "/tmp/x/quilt.sock"] {
        let c = conversation(authority);
        let mut whole = None;
        for step in [1, 5, 4096] {
            let server = through(&c, step).await.unwrap();
            let seen = parse(&server);
            assert_eq!(
                seen.blocks,
                [
                    (1, false, request("localhost", path)),
                    (3, true, request("localhost", path))
                ]
            );
            // Everything else is passed on as it came, in order.
            assert_eq!(
                seen.others,
                [
                    (SETTINGS, 0, vec![0, 3, 0, 0, 0, 100]),
                    (DATA, 1, b"\0\0\0\0\x02\x0a\x00".to_vec())
                ]
            );
            // The same bytes however the client's bytes arrive.
            assert_eq!(*whole.get_or_insert_with(|| server.clone()), server);
        }
    }
}

#[tokio::test]
async fn once_rewriting_later_valid_blocks_are_re_encoded_too() {
    // Request 1 puts a valid authority into the table and passes untouched;
    // request 3 has a bad one; request 5 refers to request 1's entries,
    // which the server's table no longer has after the rewrite.
    let path = "/quilt.v1.ContainerService/GetContainer";
    let mut c = frame(HEADERS, END_HEADERS | END_STREAM, 1, &first_request("ok"));
    let mut bad = Vec::new();
    indexed(&mut bad, 3);
    indexed(&mut bad, 6);
    indexed(&mut bad, 66); // the path, from request 1
    indexing(&mut bad, 1, "tmp%2Fquilt.sock");
    indexed(&mut bad, 65); // content-type (the new entry shifted it)
    indexed(&mut bad, 64);
    indexed(&mut bad, 63);
    c.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &bad));
    let mut again = Vec::new();
    indexed(&mut again, 3);
    indexed(&mut again, 6);
    indexed(&mut again, 67); // the path
    indexed(&mut again, 66); // authority "ok"
    for i in [65, 64, 63] {
        indexed(&mut again, i);
    }
    c.extend(frame(HEADERS, END_HEADERS | END_STREAM, 5, &again));
    let seen = parse(&through(&c, 4096).await.unwrap());
    assert_eq!(
        seen.blocks,
        [
            (1, true, request("ok", path)),
            (3, true, request("localhost", path)),
            (5, true, request("ok", path)),
        ]
    );
}

#[tokio::test]
async fn padding_priority_and_continuations_are_understood() {
    let block = first_request("tmp%2Fquilt.sock");
    let (a, b) = block.split_at(10);
    let (b, d) = b.split_at(20);
    // HEADERS with padding and a priority, then two CONTINUATIONs.
    let mut payload = vec![3u8];
    payload.extend_from_slice(&[0, 0, 0, 0, 15]);
    payload.extend_from_slice(a);
    payload.extend_from_slice(&[0, 0, 0]);
    let mut c = frame(HEADERS, PADDED | PRIORITY | END_STREAM, 1, &payload);
    c.extend(frame(CONTINUATION, 0, 1, b));
    c.extend(frame(CONTINUATION, END_HEADERS, 1, d));
    let seen = parse(&through(&c, 3).await.unwrap());
    assert_eq!(
        seen.blocks,
        [(
            1,
            true,
            request("localhost", "/quilt.v1.ContainerService/GetContainer")
        )]
    );
}

#[tokio::test]
async fn large_data_frames_pass_whole() {
    let payload: Vec<u8> = (0..MAX_FRAME_SIZE).map(|i| i as u8).collect();
    let mut c = frame(HEADERS, END_HEADERS, 1, &first_request("tmp%2Fs"));
    for _ in 0..3 {
        c.extend(frame(DATA, 0, 1, &payload));
    }
    c.extend(frame(DATA, END_STREAM, 1, b""));
    let seen = parse(&through(&c, 9000).await.unwrap());
    assert_eq!(seen.others.len(), 4);
    assert!(seen.others[..3].iter().all(|(_, _, p)| *p == payload));
}

/// The error that closed the connection.
async fn refused(client: Vec<u8>) -> String {
    let err = through(&client, 4096).await.expect_err("accepted");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    err.to_string()
}

#[tokio::test]
async fn malformed_input_closes_the_connection() {
    let ok = first_request("tmp%2Fs");
    // A frame over the frame size.
    let mut head = Vec::new();
    Head {
        len: MAX_FRAME_SIZE as usize + 1,
        kind: DATA,
        flags: 0,
        stream: 1,
    }
    .write(&mut head);
    assert!(refused(head).await.contains("a frame of 16385 bytes"));
    // CONTINUATION without HEADERS; HEADERS on stream 0; a block interrupted
    // by another frame, or by a CONTINUATION of another stream.
    let lone = frame(CONTINUATION, END_HEADERS, 1, &ok);
    assert!(refused(lone).await.contains("out of sequence"));
    let zero = frame(HEADERS, END_HEADERS, 0, &ok);
    assert!(refused(zero).await.contains("out of sequence"));
    let mut cut = frame(HEADERS, 0, 1, &ok[..5]);
    cut.extend(frame(DATA, 0, 1, b"x"));
    assert!(refused(cut).await.contains("interrupted"));
    let mut other = frame(HEADERS, 0, 1, &ok[..5]);
    other.extend(frame(CONTINUATION, END_HEADERS, 3, &ok[5..]));
    assert!(refused(other).await.contains("out of sequence"));
    // A CONTINUATION flood.
    let mut flood = frame(HEADERS, 0, 1, &ok[..5]);
    for _ in 0..=MAX_BLOCK_BYTES / 1000 {
        flood.extend(frame(CONTINUATION, 0, 1, &[0u8; 1000]));
    }
    assert!(refused(flood).await.contains("over the size limit"));
    // HPACK that does not decode: an index past both tables, a string
    // longer than the block, a table size update over the limit.
    for bad in [
        vec![0x80 | 0x7f, 0x10],
        vec![0x40, 0x7f, 0xff, 0x7f],
        vec![0x3f, 0xe1, 0x7f],
    ] {
        let msg = refused(frame(HEADERS, END_HEADERS, 1, &bad)).await;
        assert!(msg.contains("header block"), "{msg}");
    }
    // PUSH_PROMISE is for servers.
    assert!(
        refused(frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2]))
            .await
            .contains("PUSH_PROMISE")
    );
}

#[tokio::test]
async fn a_header_list_over_the_limit_is_passed_on_or_refused() {
    let mut big = first_request("fine");
    indexing_new(
        &mut big,
        "x-big",
        &"v".repeat(MAX_HEADER_LIST_SIZE as usize),
    );
    // Valid authority: the server answers it as it would (431).
    let mut blocks = Vec::new();
    for (i, chunk) in big.chunks(MAX_FRAME_SIZE as usize).enumerate() {
        let kind = if i == 0 { HEADERS } else { CONTINUATION };
        let last = (i + 1) * MAX_FRAME_SIZE as usize >= big.len();
        blocks.extend(frame(kind, if last { END_HEADERS } else { 0 }, 1, chunk));
    }
    assert_eq!(through(&blocks, 4096).await.unwrap(), blocks);
    let mut big = first_request("tmp%2Fs");
    indexing_new(
        &mut big,
        "x-big",
        &"v".repeat(MAX_HEADER_LIST_SIZE as usize),
    );
    let mut blocks = Vec::new();
    for (i, chunk) in big.chunks(MAX_FRAME_SIZE as usize).enumerate() {
        let kind = if i == 0 { HEADERS } else { CONTINUATION };
        let last = (i + 1) * MAX_FRAME_SIZE as usize >= big.len();
        blocks.extend(frame(kind, if last { END_HEADERS } else { 0 }, 1, chunk));
    }
    assert!(
        refused(blocks)
            .await
            .contains("header list over the size limit")
    );
}

#[tokio::test]
async fn an_end_mid_frame_is_an_end() {
    let c = conversation("tmp%2Fs");
    for cut in [3, 20, c.len() - 2] {
        let got = through(&c[..cut], 4096).await.unwrap();
        assert!(got.len() <= c.len() + 64);
    }
}
