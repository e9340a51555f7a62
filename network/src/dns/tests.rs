//! The resolvers over real sockets on 127.0.0.1: a network's names,
//! another network's names refused, forwarding to a second resolver
//! playing the upstream (UDP and TCP), the filter, internal networks.
use super::*;
use hickory_server::proto::op::Query;
use hickory_server::proto::op::{Message, ResponseCode};
use hickory_server::proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn member(net: &str, owner: &str, names: &[&str], ip: [u8; 4]) -> Member {
    Member {
        network: net.into(),
        owner: owner.into(),
        names: names.iter().map(|s| s.to_string()).collect(),
        ip: ip.into(),
    }
}

fn query(name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x1234;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m.to_vec().unwrap()
}

async fn ask_udp(at: SocketAddr, name: &str, t: RecordType) -> Message {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(&query(name, t), at).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.recv(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 0x1234);
    m
}

async fn ask_tcp(at: SocketAddr, name: &str, t: RecordType) -> Message {
    let q = query(name, t);
    let mut s = tokio::net::TcpStream::connect(at).await.unwrap();
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&q);
    s.write_all(&out).await.unwrap();
    let n = s.read_u16().await.unwrap() as usize;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn addrs(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

struct Deny;
impl QueryFilter for Deny {
    fn allows(&self, _: Ipv4Addr, name: &str) -> bool {
        name != "denied.test"
    }
}

#[tokio::test]
async fn names_forwarding_filter_and_internal_networks() {
    let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
    // The "upstream": a resolver with no upstream of its own.
    let upstream = Resolvers::new(Vec::new());
    let up = upstream.start("up", lo, false).await.unwrap();
    upstream.insert(member(
        "up",
        "u",
        &["www.example.test", "denied.test"],
        [10, 9, 8, 7],
    ));

    let r = Resolvers::new(vec![up]);
    let a = r.start("a", lo, false).await.unwrap();
    let b = r.start("b", lo, false).await.unwrap();
    let i = r.start("i", lo, true).await.unwrap();
    assert_eq!(r.start("a", lo, false).await.unwrap(), a, "idempotent");
    r.insert(member(
        "a",
        "c1",
        &["web", "alias1", "0123456789ab"],
        [10, 0, 0, 2],
    ));
    r.insert(member("b", "c2", &["other"], [10, 0, 1, 2]));
    r.insert(member("i", "c3", &["inner"], [10, 0, 2, 2]));

    // Names, case-insensitive, with or without the dot; UDP and TCP.
    for n in ["web", "WEB.", "alias1", "0123456789AB"] {
        let m = ask_udp(a, n, RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{n}");
        assert_eq!(addrs(&m), vec![Ipv4Addr::new(10, 0, 0, 2)], "{n}");
    }
    assert_eq!(
        addrs(&ask_tcp(a, "web", RecordType::A).await),
        vec![Ipv4Addr::new(10, 0, 0, 2)]
    );
    // AAAA of a known name: NOERROR, nothing.
    let m = ask_udp(a, "web", RecordType::AAAA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    // Another network's name is not this network's: forwarded, and the
    // upstream does not know it.
    let m = ask_udp(a, "other", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        addrs(&ask_udp(b, "other", RecordType::A).await),
        vec![Ipv4Addr::new(10, 0, 1, 2)]
    );

    // Forwarded names, over UDP and TCP.
    let m = ask_udp(a, "www.example.test", RecordType::A).await;
    assert_eq!(addrs(&m), vec![Ipv4Addr::new(10, 9, 8, 7)]);
    let m = ask_tcp(a, "WWW.example.test.", RecordType::A).await;
    assert_eq!(addrs(&m), vec![Ipv4Addr::new(10, 9, 8, 7)]);

    // The filter is consulted before forwarding.
    r.set_filter(Arc::new(Deny));
    assert_eq!(
        ask_udp(a, "denied.test", RecordType::A)
            .await
            .metadata
            .response_code,
        ResponseCode::Refused
    );
    assert_eq!(
        addrs(&ask_udp(a, "www.example.test", RecordType::A).await),
        vec![Ipv4Addr::new(10, 9, 8, 7)]
    );

    // Internal: its own names, nothing forwarded.
    assert_eq!(
        addrs(&ask_udp(i, "inner", RecordType::A).await),
        vec![Ipv4Addr::new(10, 0, 2, 2)]
    );
    assert_eq!(
        ask_udp(i, "www.example.test", RecordType::A)
            .await
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );

    // A removed name goes at once.
    r.remove("c1");
    assert_eq!(
        ask_udp(a, "web", RecordType::A)
            .await
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );

    // Upstream gone: SERVFAIL.
    upstream.stop("up").await;
    assert_eq!(
        ask_udp(a, "www.example.test", RecordType::A)
            .await
            .metadata
            .response_code,
        ResponseCode::ServFail
    );

    // Stopped: its port is free again.
    r.drop_network("a").await;
    assert!(r.address("a").is_none());
    tokio::net::UdpSocket::bind(a)
        .await
        .expect("the port was released");
}

#[test]
fn upstreams_parse() {
    assert_eq!(
        parse_upstream("10.0.0.1").unwrap(),
        "10.0.0.1:53".parse().unwrap()
    );
    assert_eq!(
        parse_upstream("127.0.0.1:5353").unwrap(),
        "127.0.0.1:5353".parse().unwrap()
    );
    assert_eq!(
        parse_upstream("[::1]:54").unwrap(),
        "[::1]:54".parse().unwrap()
    );
    assert_eq!(parse_upstream("::1").unwrap(), "[::1]:53".parse().unwrap());
    for bad in ["", "x", "10.0.0.1:", "10.0.0.1:99999", "host:53"] {
        assert!(parse_upstream(bad).is_err(), "{bad}");
    }
    let conf =
        "# c\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver 10.0.0.1\nsearch x\n";
    assert_eq!(
        upstreams_of(conf),
        vec![
            "127.0.0.53:53".parse().unwrap(),
            "10.0.0.1:53".parse().unwrap()
        ]
    );
}
