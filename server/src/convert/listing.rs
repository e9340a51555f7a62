//! ListContainers: the request as an engine `ListQuery`, the page as a
//! response no larger than a client's default message limit, and the page
//! tokens. A token is opaque to clients: the hex of a version byte, a
//! digest of the filters it was issued for, the last container's creation
//! time and id, and a check sum; anything else, or a token used with other
//! filters, is INVALID_ARGUMENT.
use super::containers::state_from;
use super::non_empty;
use super::rows::{ListWire, RowCache};
use quilt_proto::v1 as pb;
use quilt_sync_engine::{ListCursor, ListFilter, ListPage, ListQuery, ListView};
use sha2::{Digest, Sha256};
use tonic::Status;

/// The most bytes a page's containers may take on the wire: with the rest
/// of the response, well under a client's default 4 MiB message limit.
pub const PAGE_BYTES: usize = 3 * 1024 * 1024 + 512 * 1024;
/// Longest page token accepted (a container id is 64 hex digits).
const MAX_TOKEN: usize = 512;
const TOKEN_VERSION: u8 = 1;

/// What a page token is bound to: the listing's filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterDigest([u8; 8]);

impl FilterDigest {
    fn of(f: &ListFilter) -> FilterDigest {
        let mut h = Sha256::new();
        h.update(b"quilt list filter\0");
        let mut states: Vec<&str> = f.states.iter().map(|s| s.as_str()).collect();
        states.sort_unstable();
        states.dedup();
        for s in states {
            h.update(s.as_bytes());
            h.update(b"\0");
        }
        h.update(b"\x01");
        if let Some(n) = &f.name_contains {
            field(&mut h, n.as_bytes());
        }
        h.update(b"\x01");
        for (k, v) in &f.labels {
            field(&mut h, k.as_bytes());
            field(&mut h, v.as_bytes());
        }
        let d = h.finalize();
        let mut out = [0u8; 8];
        out.copy_from_slice(&d[..8]);
        FilterDigest(out)
    }
}

/// A length-prefixed field of a digest.
fn field(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_be_bytes());
    h.update(b);
}

/// The check sum that ends a token.
fn check(body: &[u8]) -> [u8; 8] {
    let d = Sha256::new()
        .chain_update(b"quilt page token\0")
        .chain_update(body)
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

pub fn page_token(after: &ListCursor, digest: FilterDigest) -> String {
    let mut body = vec![TOKEN_VERSION];
    body.extend_from_slice(&digest.0);
    body.extend_from_slice(&after.created_at_ns.to_be_bytes());
    body.extend_from_slice(after.id.as_bytes());
    let sum = check(&body);
    body.extend_from_slice(&sum);
    hex::encode(body)
}

fn parse_token(token: &str, digest: FilterDigest) -> Result<ListCursor, Status> {
    let invalid = || {
        Status::invalid_argument(format!(
            "invalid page_token {}: pass the next_page_token of the previous page",
            quilt_sync_engine::echo(token)
        ))
    };
    if token.len() > MAX_TOKEN {
        return Err(invalid());
    }
    let raw = hex::decode(token).map_err(|_| invalid())?;
    if raw.len() < 1 + 8 + 8 + 8 || raw[0] != TOKEN_VERSION {
        return Err(invalid());
    }
    let (body, sum) = raw.split_at(raw.len() - 8);
    if check(body) != sum {
        return Err(invalid());
    }
    if body[1..9] != digest.0 {
        return Err(Status::invalid_argument(
            "page_token was issued for other filters: list again from the first page",
        ));
    }
    let created_at_ns = i64::from_be_bytes(body[9..17].try_into().map_err(|_| invalid())?);
    let id = String::from_utf8(body[17..].to_vec()).map_err(|_| invalid())?;
    Ok(ListCursor { created_at_ns, id })
}

/// The request as a query, and the digest its page tokens carry.
pub fn list_query(r: pb::ListContainersRequest) -> Result<(ListQuery, FilterDigest), Status> {
    let mut states = Vec::new();
    for s in r.states {
        let s = pb::ContainerState::try_from(s)
            .map_err(|_| Status::invalid_argument(format!("unknown state {s}")))?;
        if let Some(s) = state_from(s) {
            states.push(s);
        }
    }
    let view = match pb::ContainerView::try_from(r.view) {
        Ok(pb::ContainerView::Unspecified | pb::ContainerView::Full) => ListView::Full,
        Ok(pb::ContainerView::Summary) => ListView::Summary,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown container view {}",
                r.view
            )));
        }
    };
    let filter = ListFilter {
        states,
        name_contains: non_empty(r.name),
        labels: r.labels.into_iter().collect(),
        node: None,
    };
    let digest = FilterDigest::of(&filter);
    let after = match non_empty(r.page_token) {
        Some(t) => Some(parse_token(&t, digest)?),
        None => None,
    };
    let query = ListQuery {
        filter,
        view,
        after,
        limit: match r.page_size {
            0 => usize::MAX,
            n => n as usize,
        },
        max_bytes: PAGE_BYTES,
    };
    Ok((query, digest))
}

/// The page as it is sent: its rows' cached encodings while they fit in
/// PAGE_BYTES (the first one always), and a token when more may follow.
pub fn list_response(
    page: ListPage,
    view: ListView,
    digest: FilterDigest,
    rows: &RowCache,
) -> ListWire {
    let mut bytes = 0usize;
    let (containers, cut) = rows.encode(&page.containers, view, |len| {
        // The field's tag and length prefix, at most 6 bytes.
        bytes += len + 6;
        bytes <= PAGE_BYTES
    });
    let next_page_token = match containers.len().checked_sub(1).map(|i| &page.containers[i]) {
        Some(c) if cut || page.more => page_token(&ListCursor::of(c), digest),
        _ => String::new(),
    };
    ListWire {
        containers,
        next_page_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(token: &str) -> pb::ListContainersRequest {
        pb::ListContainersRequest {
            name: "web".into(),
            page_token: token.into(),
            ..Default::default()
        }
    }

    #[test]
    fn tokens_round_trip_and_bind_their_filters() {
        let (_, digest) = list_query(request("")).unwrap();
        let at = ListCursor {
            created_at_ns: -5,
            id: "ab12".into(),
        };
        let token = page_token(&at, digest);
        let (q, _) = list_query(request(&token)).unwrap();
        assert_eq!(q.after, Some(at));
        // The same token with other filters.
        let mut other = request(&token);
        other.name = "db".into();
        let err = list_query(other).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("other filters"), "{}", err.message());
    }

    #[test]
    fn tokens_not_ours_are_invalid() {
        let (_, digest) = list_query(request("")).unwrap();
        let good = page_token(
            &ListCursor {
                created_at_ns: 1,
                id: "x".into(),
            },
            digest,
        );
        let mut flipped = good.clone().into_bytes();
        let i = flipped.len() / 2;
        flipped[i] = if flipped[i] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in ["zz", "00", "abc", flipped.as_str(), &"0".repeat(600)] {
            let err = list_query(request(bad)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}");
            assert!(
                err.message().starts_with("invalid page_token"),
                "{}",
                err.message()
            );
        }
    }

    #[test]
    fn the_filter_digest_ignores_order_and_repeats() {
        use quilt_sync_engine::State;
        let f = |states: Vec<State>| ListFilter {
            states,
            ..Default::default()
        };
        assert_eq!(
            FilterDigest::of(&f(vec![State::Running, State::Created, State::Running])),
            FilterDigest::of(&f(vec![State::Created, State::Running]))
        );
        assert_ne!(
            FilterDigest::of(&f(vec![State::Created])),
            FilterDigest::of(&f(vec![]))
        );
    }
}
