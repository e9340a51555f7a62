//! The daemon's nftables ruleset, rendered whole as `nft -j` JSON: a
//! `bridge` table (each container port bound to its MAC and address) and an
//! `inet` table (NAT, published ports, isolation between networks, no
//! access to the daemon's own addresses) of the same name. Applying it
//! deletes and re-adds both tables in one `nft` transaction, so the
//! ruleset is replaced atomically and no other table is touched.
//!
//! Egress: the `egress` chain (the first packet of every connection a
//! container opens out of its network) refuses the always-on deny set
//! (`egress.rs`); a container with a policy has a chain of its own, which
//! sees every packet it sends out (`policed`), and, when its policy names
//! domains, its TCP 80 and 443 redirected to the egress proxy, whose port
//! is open to it in `gateway_services` (what a container may reach on the
//! daemon's own addresses; a network's own DNS resolver on the gateway
//! goes there too).
use crate::cidr::Subnet;
use crate::egress::{ALWAYS_DENY, Dest, Rules};
use crate::nfnl::Family;
use serde_json::{Value, json};
use std::net::Ipv4Addr;

/// Set and map names, shared with the netlink element path.
pub const BIND4: &str = "bind4";
pub const PUB_ADDR_IP: &str = "pub_addr_ip";
pub const PUB_ADDR_PORT: &str = "pub_addr_port";
pub const PUB_ANY_IP: &str = "pub_any_ip";
pub const PUB_ANY_PORT: &str = "pub_any_port";

/// One network as the ruleset sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRules {
    pub bridge: String,
    pub subnet: Subnet,
    pub internal: bool,
}

/// A container with an egress policy, as the ruleset sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicedRules {
    /// Its address and the subnet of its network (traffic within the
    /// network is not egress).
    pub ip: Ipv4Addr,
    pub subnet: Subnet,
    pub rules: Rules,
}

/// Egress: the policed containers and the port of the egress proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressRules {
    pub proxy_port: Option<u16>,
    pub policed: Vec<PolicedRules>,
}

/// One element of a set or map, in `nft -j` form.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonElem {
    pub family: Family,
    pub set: &'static str,
    pub elem: Value,
}

fn fam(f: Family) -> &'static str {
    match f {
        Family::Inet => "inet",
        Family::Bridge => "bridge",
    }
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn payload(proto: &str, field: &str) -> Value {
    json!({"payload": {"protocol": proto, "field": field}})
}

fn matches(left: Value, op: &str, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn prefix(s: &Subnet) -> Value {
    json!({"prefix": {"addr": s.network().to_string(), "len": s.prefix()}})
}

/// Commands by kind, so that every chain exists before a rule jumps to it.
struct Render {
    cmds: Vec<Value>,
    chains: Vec<Value>,
    rules: Vec<Value>,
    table: String,
}

impl Render {
    fn add(&mut self, kind: &str, mut obj: Value) {
        obj["table"] = json!(self.table);
        let cmd = json!({"add": {kind: obj}});
        match kind {
            "chain" => self.chains.push(cmd),
            "rule" | "element" => self.rules.push(cmd),
            _ => self.cmds.push(cmd),
        }
    }

    fn chain(&mut self, family: &str, name: &str, hook: Option<(&str, &str, i32)>) {
        let mut c = json!({"family": family, "name": name});
        if let Some((kind, hook, prio)) = hook {
            c["type"] = json!(kind);
            c["hook"] = json!(hook);
            c["prio"] = json!(prio);
            c["policy"] = json!("accept");
        }
        self.add("chain", c);
    }

    fn rule(&mut self, family: &str, chain: &str, expr: Vec<Value>) {
        self.add(
            "rule",
            json!({"family": family, "chain": chain, "expr": expr}),
        );
    }
}

/// The JSON document that replaces both tables named `table` with the
/// ruleset for `networks` (their bridges), the container ports whose names
/// start with `veth_prefix`, and the elements given.
pub fn render(
    table: &str,
    veth_prefix: &str,
    networks: &[NetRules],
    elems: &[JsonElem],
    egress: &EgressRules,
) -> Value {
    let mut r = Render {
        cmds: Vec::new(),
        chains: Vec::new(),
        rules: Vec::new(),
        table: table.to_owned(),
    };
    for f in ["bridge", "inet"] {
        // add + delete + add: the table is replaced whether it existed or not.
        r.cmds
            .push(json!({"add": {"table": {"family": f, "name": table}}}));
        r.cmds
            .push(json!({"delete": {"table": {"family": f, "name": table}}}));
        r.cmds
            .push(json!({"add": {"table": {"family": f, "name": table}}}));
    }

    // --- bridge: a port may only send as its container (MAC and address).
    let b = "bridge";
    r.add(
        "set",
        json!({"family": b, "name": BIND4, "type": ["ifname", "ether_addr", "ipv4_addr"]}),
    );
    r.chain(b, "prerouting", Some(("filter", "prerouting", -300)));
    r.rule(
        b,
        "prerouting",
        vec![
            matches(meta("iifname"), "==", json!(format!("{veth_prefix}*"))),
            json!({"jump": {"target": "from_port"}}),
        ],
    );
    r.chain(b, "from_port", None);
    let port_key = |mac: Value, ip: Value| json!({"concat": [meta("iifname"), mac, ip]});
    r.rule(
        b,
        "from_port",
        vec![
            matches(
                port_key(payload("ether", "saddr"), payload("arp", "saddr ip")),
                "==",
                json!(format!("@{BIND4}")),
            ),
            matches(
                port_key(payload("arp", "saddr ether"), payload("arp", "saddr ip")),
                "==",
                json!(format!("@{BIND4}")),
            ),
            json!({"accept": null}),
        ],
    );
    r.rule(
        b,
        "from_port",
        vec![
            matches(
                port_key(payload("ether", "saddr"), payload("ip", "saddr")),
                "==",
                json!(format!("@{BIND4}")),
            ),
            json!({"accept": null}),
        ],
    );
    // Anything else (another address or MAC, IPv6, other protocols) is dropped.
    r.rule(b, "from_port", vec![json!({"drop": null})]);

    // --- inet.
    let i = "inet";
    let bridges: Vec<&str> = networks.iter().map(|n| n.bridge.as_str()).collect();
    let internal: Vec<&str> = networks
        .iter()
        .filter(|n| n.internal)
        .map(|n| n.bridge.as_str())
        .collect();
    let mut set = |name: &str, elems: &[&str]| {
        let mut s = json!({"family": i, "name": name, "type": "ifname"});
        if !elems.is_empty() {
            s["elem"] = json!(elems);
        }
        r.add("set", s);
    };
    set("bridges", &bridges);
    set("internal", &internal);
    for (name, key, data) in [
        (
            PUB_ADDR_IP,
            json!(["ipv4_addr", "inet_proto", "inet_service"]),
            "ipv4_addr",
        ),
        (
            PUB_ADDR_PORT,
            json!(["ipv4_addr", "inet_proto", "inet_service"]),
            "inet_service",
        ),
        (
            PUB_ANY_IP,
            json!(["inet_proto", "inet_service"]),
            "ipv4_addr",
        ),
        (
            PUB_ANY_PORT,
            json!(["inet_proto", "inet_service"]),
            "inet_service",
        ),
    ] {
        r.add(
            "map",
            json!({"family": i, "name": name, "type": key, "map": data}),
        );
    }

    // Published ports: DNAT of what arrives for a local address (from
    // outside, or from this namespace to one of its non-loopback addresses;
    // loopback is served by the proxy).
    r.chain(i, "prerouting", Some(("nat", "prerouting", -100)));
    r.chain(i, "output", Some(("nat", "output", -100)));
    r.chain(i, "publish", None);
    let local = json!({"fib": {"result": "type", "flags": ["daddr"]}});
    r.rule(
        i,
        "prerouting",
        vec![
            matches(meta("nfproto"), "==", json!("ipv4")),
            matches(local.clone(), "==", json!("local")),
            json!({"jump": {"target": "publish"}}),
        ],
    );
    r.rule(
        i,
        "output",
        vec![
            matches(meta("nfproto"), "==", json!("ipv4")),
            matches(
                payload("ip", "daddr"),
                "!=",
                json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
            ),
            matches(local, "==", json!("local")),
            json!({"jump": {"target": "publish"}}),
        ],
    );
    let with_addr =
        json!({"concat": [payload("ip", "daddr"), meta("l4proto"), payload("th", "dport")]});
    let any = json!({"concat": [meta("l4proto"), payload("th", "dport")]});
    for (key, ip, port) in [
        (with_addr, PUB_ADDR_IP, PUB_ADDR_PORT),
        (any, PUB_ANY_IP, PUB_ANY_PORT),
    ] {
        r.rule(
            i,
            "publish",
            vec![json!({"dnat": {
                "family": "ip",
                "addr": {"map": {"key": key.clone(), "data": format!("@{ip}")}},
                "port": {"map": {"key": key, "data": format!("@{port}")}},
            }})],
        );
    }

    // Egress: masquerade out of each network that is not internal; and
    // hairpin (a container reaching its own network's published port).
    r.chain(i, "postrouting", Some(("nat", "postrouting", 100)));
    for n in networks {
        r.rule(
            i,
            "postrouting",
            vec![
                matches(payload("ip", "saddr"), "==", prefix(&n.subnet)),
                matches(payload("ip", "daddr"), "==", prefix(&n.subnet)),
                matches(json!({"ct": {"key": "status"}}), "in", json!("dnat")),
                json!({"masquerade": null}),
            ],
        );
        if !n.internal {
            r.rule(
                i,
                "postrouting",
                vec![
                    matches(payload("ip", "saddr"), "==", prefix(&n.subnet)),
                    matches(payload("ip", "daddr"), "!=", prefix(&n.subnet)),
                    json!({"masquerade": null}),
                ],
            );
        }
    }

    // Forwarding: within a network yes; between networks no (a published
    // port reached through a host address excepted); out of an internal
    // network no; into a network only replies and published ports.
    r.chain(i, "forward", Some(("filter", "forward", 0)));
    r.rule(
        i,
        "forward",
        vec![
            matches(meta("iifname"), "==", json!("@bridges")),
            matches(meta("iifname"), "!=", json!("@internal")),
            matches(meta("oifname"), "!=", json!("@bridges")),
            json!({"jump": {"target": "policed"}}),
        ],
    );
    r.rule(
        i,
        "forward",
        vec![
            matches(meta("iifname"), "==", json!("@bridges")),
            json!({"jump": {"target": "from_container"}}),
        ],
    );
    r.rule(
        i,
        "forward",
        vec![
            matches(meta("oifname"), "==", json!("@bridges")),
            json!({"jump": {"target": "to_container"}}),
        ],
    );
    r.chain(i, "from_container", None);
    for n in networks {
        r.rule(
            i,
            "from_container",
            vec![
                matches(meta("iifname"), "==", json!(n.bridge)),
                matches(meta("oifname"), "==", json!(n.bridge)),
                json!({"accept": null}),
            ],
        );
    }
    let ct_state = json!({"ct": {"key": "state"}});
    let ct_status = json!({"ct": {"key": "status"}});
    r.rule(
        i,
        "from_container",
        vec![
            matches(meta("iifname"), "==", json!("@internal")),
            json!({"drop": null}),
        ],
    );
    r.rule(
        i,
        "from_container",
        vec![
            matches(ct_state.clone(), "in", json!(["established", "related"])),
            json!({"accept": null}),
        ],
    );
    r.rule(
        i,
        "from_container",
        vec![
            matches(meta("oifname"), "==", json!("@bridges")),
            matches(ct_status.clone(), "in", json!("dnat")),
            matches(meta("oifname"), "!=", json!("@internal")),
            json!({"accept": null}),
        ],
    );
    r.rule(
        i,
        "from_container",
        vec![
            matches(meta("oifname"), "==", json!("@bridges")),
            json!({"drop": null}),
        ],
    );
    r.rule(
        i,
        "from_container",
        vec![json!({"jump": {"target": "egress"}})],
    );
    r.chain(i, "egress", None);
    r.rule(
        i,
        "egress",
        vec![
            matches(payload("ip", "daddr"), "==", always_deny()),
            json!({"drop": null}),
        ],
    );
    r.chain(i, "to_container", None);
    r.rule(
        i,
        "to_container",
        vec![
            matches(meta("oifname"), "==", json!("@internal")),
            json!({"drop": null}),
        ],
    );
    r.rule(
        i,
        "to_container",
        vec![
            matches(ct_state.clone(), "in", json!(["established", "related"])),
            json!({"accept": null}),
        ],
    );
    r.rule(
        i,
        "to_container",
        vec![
            matches(ct_status, "in", json!("dnat")),
            json!({"accept": null}),
        ],
    );
    r.rule(i, "to_container", vec![json!({"drop": null})]);

    // The daemon's own addresses (its listeners, the gateways, any other
    // address of its namespace) are closed to containers.
    r.chain(i, "input", Some(("filter", "input", 0)));
    r.rule(
        i,
        "input",
        vec![
            matches(meta("iifname"), "==", json!("@bridges")),
            json!({"jump": {"target": "container_input"}}),
        ],
    );
    r.chain(i, "container_input", None);
    r.rule(
        i,
        "container_input",
        vec![
            matches(ct_state, "in", json!(["established", "related"])),
            json!({"accept": null}),
        ],
    );
    r.rule(
        i,
        "container_input",
        vec![json!({"jump": {"target": "gateway_services"}})],
    );
    r.chain(i, "gateway_services", None);
    policies(&mut r, egress);
    // Each network's resolver: DNS to its own gateway, from its own bridge.
    for n in networks {
        r.rule(
            i,
            "gateway_services",
            vec![
                matches(meta("iifname"), "==", json!(n.bridge)),
                matches(
                    payload("ip", "daddr"),
                    "==",
                    json!(n.subnet.gateway().to_string()),
                ),
                matches(meta("l4proto"), "==", json!({"set": ["udp", "tcp"]})),
                matches(payload("th", "dport"), "==", json!(crate::dns::DNS_PORT)),
                json!({"accept": null}),
            ],
        );
    }
    r.rule(
        i,
        "container_input",
        vec![json!({"reject": {"type": "icmpx", "expr": "admin-prohibited"}})],
    );

    for e in elems {
        r.add(
            "element",
            json!({"family": fam(e.family), "name": e.set, "elem": [e.elem.clone()]}),
        );
    }
    let mut cmds = r.cmds;
    cmds.extend(r.chains);
    cmds.extend(r.rules);
    json!({"nftables": cmds})
}

/// The always-on deny set as an anonymous set of prefixes.
fn always_deny() -> Value {
    let v: Vec<Value> = ALWAYS_DENY
        .iter()
        .map(|(a, p)| json!({"prefix": {"addr": a.to_string(), "len": p}}))
        .collect();
    json!({"set": v})
}

fn dest_match(s: &Subnet) -> Value {
    matches(payload("ip", "daddr"), "==", prefix(s))
}

/// Each policed container: a chain of its own in `policed` (every packet
/// it sends out of its network, not only the first of a connection, so
/// that a tightened policy cuts open flows), its TCP 80 and 443 redirected
/// to the egress proxy when its policy names domains, and the proxy's port
/// open to it on the gateway.
fn policies(r: &mut Render, egress: &EgressRules) {
    let i = "inet";
    r.chain(i, "policed", None);
    // The proxy's port is for containers only.
    if let Some(port) = egress.proxy_port {
        r.rule(
            i,
            "input",
            vec![
                matches(meta("iifname"), "!=", json!("@bridges")),
                matches(payload("tcp", "dport"), "==", json!(port)),
                json!({"drop": null}),
            ],
        );
    }
    let l4 = |proto: &[&str]| matches(meta("l4proto"), "==", json!({"set": proto}));
    let dport = |p: u16| matches(payload("th", "dport"), "==", json!(p));
    for (n, p) in egress.policed.iter().enumerate() {
        let chain = format!("eg{n}");
        let src = matches(payload("ip", "saddr"), "==", json!(p.ip.to_string()));
        r.rule(
            i,
            "policed",
            vec![src.clone(), json!({"jump": {"target": chain}})],
        );
        r.chain(i, &chain, None);
        let mut rule = |expr: Vec<Value>| r.rule(i, &chain, expr);
        // Replies of connections made to it (published ports) are not egress.
        rule(vec![
            matches(json!({"ct": {"key": "direction"}}), "==", json!("reply")),
            json!({"accept": null}),
        ]);
        // DNS only to the network's resolver (on the gateway: input, not here).
        rule(vec![l4(&["tcp", "udp"]), dport(53), json!({"drop": null})]);
        let proxied = p.rules.has_names() && egress.proxy_port.is_some();
        if p.rules.has_names() {
            // QUIC would carry names the proxy never sees.
            rule(vec![l4(&["udp"]), dport(443), json!({"drop": null})]);
            // TCP 80 and 443 go through the proxy: a flow here began before
            // the policy named domains.
            rule(vec![
                l4(&["tcp"]),
                matches(payload("th", "dport"), "==", json!({"set": [80, 443]})),
                json!({"drop": null}),
            ]);
        }
        for (list, verdict) in [(&p.rules.deny, "drop"), (&p.rules.allow, "accept")] {
            for e in list {
                let Dest::Net(s) = &e.dest else { continue };
                let mut expr = vec![dest_match(s)];
                if let Some(port) = e.port {
                    expr.push(l4(&["tcp", "udp"]));
                    expr.push(dport(port));
                }
                expr.push(json!({verdict: null}));
                rule(expr);
            }
        }
        rule(vec![
            matches(payload("ip", "daddr"), "==", always_deny()),
            json!({"drop": null}),
        ]);
        rule(vec![if p.rules.default_deny {
            json!({"drop": null})
        } else {
            json!({"accept": null})
        }]);

        if let (true, Some(port)) = (proxied, egress.proxy_port) {
            r.rule(
                i,
                "prerouting",
                vec![
                    matches(meta("iifname"), "==", json!("@bridges")),
                    src.clone(),
                    matches(payload("ip", "daddr"), "!=", prefix(&p.subnet)),
                    matches(
                        json!({"fib": {"result": "type", "flags": ["daddr"]}}),
                        "!=",
                        json!("local"),
                    ),
                    matches(payload("tcp", "dport"), "==", json!({"set": [80, 443]})),
                    json!({"redirect": {"port": port}}),
                ],
            );
            r.rule(
                i,
                "gateway_services",
                vec![
                    src,
                    matches(payload("tcp", "dport"), "==", json!(port)),
                    json!({"accept": null}),
                ],
            );
        }
    }
}

/// The JSON document that deletes both tables (nothing else).
pub fn render_delete(table: &str) -> Value {
    let mut cmds = Vec::new();
    for f in ["bridge", "inet"] {
        cmds.push(json!({"add": {"table": {"family": f, "name": table}}}));
        cmds.push(json!({"delete": {"table": {"family": f, "name": table}}}));
    }
    json!({"nftables": cmds})
}

/// A MAC address as nft writes it.
pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `bind4` in JSON.
pub fn bind_elem(ifname: &str, mac: [u8; 6], ip: Ipv4Addr) -> Value {
    json!({"concat": [ifname, mac_string(mac), ip.to_string()]})
}
