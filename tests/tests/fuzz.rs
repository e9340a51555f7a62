//! Random and oversized requests to every RPC of every service (read from
//! the API's own descriptors): quiltd answers each with a status (never
//! INTERNAL or UNKNOWN for what the client got wrong), stays up, keeps its
//! memory bounded, and is left with nothing it should not have.

use std::time::Duration;

use prost::Message;
use quilt_tests::raw::{raw_server_streaming, raw_streaming, raw_unary};
use quilt_tests::{Daemon, connect_uds, health_check};
use tonic::Code;

/// A small deterministic generator (xorshift64*), seeded per run and printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Bytes that are sometimes valid protobuf (random fields with random
    /// wire types), sometimes noise.
    fn message(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.below(4) == 0 {
            for _ in 0..self.below(64) {
                out.push(self.next() as u8);
            }
            return out;
        }
        for _ in 0..self.below(8) {
            let field = 1 + self.below(20);
            match self.below(3) {
                0 => {
                    prost::encoding::encode_key(
                        field as u32,
                        prost::encoding::WireType::Varint,
                        &mut out,
                    );
                    prost::encoding::encode_varint(self.next() >> self.below(64), &mut out);
                }
                1 => {
                    prost::encoding::encode_key(
                        field as u32,
                        prost::encoding::WireType::LengthDelimited,
                        &mut out,
                    );
                    let len = [0, 1, 8, 64, 300, 5000][self.below(6) as usize];
                    prost::encoding::encode_varint(len, &mut out);
                    for _ in 0..len {
                        // Printable-ish text with path-like characters.
                        let c = b"ab./-_ \\0\\n%:x9/..\\xff"[self.below(20) as usize];
                        out.push(c);
                    }
                }
                _ => {
                    prost::encoding::encode_key(
                        field as u32,
                        prost::encoding::WireType::SixtyFourBit,
                        &mut out,
                    );
                    out.extend_from_slice(&self.next().to_le_bytes());
                }
            }
        }
        out
    }
}

/// (path, client streaming, server streaming) of every method quiltd serves.
fn methods() -> Vec<(String, bool, bool)> {
    let set = prost_types::FileDescriptorSet::decode(quilt_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut v = Vec::new();
    for f in set.file {
        let pkg = f.package().to_owned();
        for s in f.service {
            let name = s.name().to_owned();
            for m in s.method {
                v.push((
                    format!("/{pkg}.{name}/{}", m.name()),
                    m.client_streaming(),
                    m.server_streaming(),
                ));
            }
        }
    }
    assert!(v.len() >= 20, "only {} methods found", v.len());
    v
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn random_and_oversized_requests_to_every_rpc() {
    let d = Daemon::start();
    let pid = d.pid().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("fuzz seed {seed}");
    let mut rng = Rng(seed);
    let methods = methods();
    let limit = Duration::from_secs(3);
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let rss_before = rss_kib(pid);
    for round in 0..6 {
        for (path, client_streaming, server_streaming) in &methods {
            let oversized = round == 5;
            let body = if oversized {
                // Over the 4 MiB request limit.
                let mut b = Vec::new();
                prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut b);
                prost::encoding::encode_varint(6 << 20, &mut b);
                b.resize(b.len() + (6 << 20), b'z');
                b
            } else {
                rng.message()
            };
            let r = d.block_on(async {
                let ch = connect_uds(&d.socket).await.expect("connect");
                match (client_streaming, server_streaming) {
                    (false, false) => tokio::time::timeout(limit, raw_unary(ch, path, body))
                        .await
                        .map_or(Ok(()), |r| r.map(|_| ())),
                    (false, true) => raw_server_streaming(ch, path, body, limit)
                        .await
                        .map(|_| ()),
                    (true, _) => {
                        let mut bodies = vec![body];
                        for _ in 0..rng.below(4) {
                            bodies.push(rng.message());
                        }
                        raw_streaming(ch, path, bodies, limit).await.map(|_| ())
                    }
                }
            });
            let code = match &r {
                Ok(()) => Code::Ok,
                Err(s) => s.code(),
            };
            *seen.entry(format!("{code:?}")).or_default() += 1;
            if let Err(s) = &r {
                assert!(
                    !matches!(s.code(), Code::Internal | Code::Unknown),
                    "seed {seed}: {path} (round {round}) answered {s:?}\n{}",
                    d.log_tail(20)
                );
                assert!(
                    s.message().len() < 4096,
                    "{path}: a {}-byte message",
                    s.message().len()
                );
            }
        }
        assert!(
            d.block_on(health_check(&d.socket)).unwrap_or(false),
            "seed {seed}: quiltd is not serving after round {round}\n{}",
            d.log_tail(30)
        );
    }
    println!("statuses: {seen:?}");
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + 128 * 1024,
        "quiltd grew from {rss_before} KiB to {rss_after} KiB"
    );
    // Whatever random creates got through is removed like anything else.
    let all = d.list();
    let ids: Vec<String> = all.into_iter().map(|c| c.id).collect();
    if !ids.is_empty() {
        let mut args = vec!["rm".to_string(), "-f".into()];
        args.extend(ids);
        d.cli(&args).expect_code(0);
    }
    // And the volumes they made (a random CreateVolume may get through).
    let volumes = d.cli(["volume", "ls", "--json"]).json();
    let names: Vec<String> = volumes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect();
    if !names.is_empty() {
        let mut args = vec!["volume".to_string(), "rm".into()];
        args.extend(names);
        d.cli(&args).expect_code(0);
    }
    d.assert_no_leftovers();
}
