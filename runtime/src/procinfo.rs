//! What /proc says about a container's processes, for `top` and `stats`:
//! a process's ids (host and container view), state, CPU time, resident
//! memory and command line, and the interface counters of the network
//! namespace a process is in. Reads block: run them on a blocking thread.
//! Everything read is untrusted text written by the kernel about processes
//! the container controls (their names and arguments): it is parsed, never
//! interpreted.

/// One process, as `top` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The pid on the host, and in the innermost pid namespace.
    pub pid: i32,
    pub ns_pid: i32,
    pub ppid: i32,
    /// The real uid on the host, and mapped into the process's user namespace.
    pub uid: u32,
    pub ns_uid: u32,
    /// One-letter state (R, S, D, T, Z, ...).
    pub state: String,
    /// User plus system CPU time, in nanoseconds.
    pub cpu_ns: u64,
    pub rss_bytes: u64,
    /// The command line, words joined by spaces; `[name]` when empty (a
    /// kernel thread or a zombie).
    pub command: String,
}

/// The longest command line kept (the rest is cut).
const MAX_COMMAND: usize = 4096;

/// Reads what /proc says about `pid`; None when it is gone.
pub fn process(pid: i32) -> Option<ProcessInfo> {
    if pid <= 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (name, fields) = split_stat(&stat)?;
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let ticks = clock_ticks();
    let cpu_ns = (field(14).unwrap_or(0) + field(15).unwrap_or(0)).saturating_mul(1_000_000_000)
        / ticks.max(1);
    let rss_bytes = field(24).unwrap_or(0).saturating_mul(page_size());
    let uid = status_field(&status, "Uid:")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let ns_pid = status_field(&status, "NSpid:")
        .and_then(|v| v.split_whitespace().last()?.parse().ok())
        .unwrap_or(pid);
    let ns_uid = std::fs::read_to_string(format!("/proc/{pid}/uid_map"))
        .ok()
        .and_then(|m| map_uid(&m, uid))
        .unwrap_or(uid);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    Some(ProcessInfo {
        pid,
        ns_pid,
        ppid: fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(0),
        uid,
        ns_uid,
        state: fields.first().cloned().unwrap_or_default(),
        cpu_ns,
        rss_bytes,
        command: command_line(&cmdline, name),
    })
}

/// Splits /proc/PID/stat into the command name and the fields after it
/// (field 3 onwards). The name may hold spaces and parentheses: it ends
/// at the last `)`.
fn split_stat(stat: &str) -> Option<(&str, Vec<String>)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let rest = stat.get(close + 1..)?;
    Some((name, rest.split_whitespace().map(str::to_owned).collect()))
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(key))
}

/// A host uid seen from inside a user namespace, by its uid_map (as read
/// from the host: `inside outside count` lines). None when unmapped.
fn map_uid(map: &str, uid: u32) -> Option<u32> {
    map.lines().find_map(|l| {
        let mut it = l.split_whitespace().map(|v| v.parse::<u64>().ok());
        let (inside, outside, count) = (it.next()??, it.next()??, it.next()??);
        let uid = u64::from(uid);
        (uid >= outside && uid - outside < count)
            .then(|| u32::try_from(inside + (uid - outside)).ok())?
    })
}

/// The NUL-separated argv as one line (control characters shown as `?`),
/// at most MAX_COMMAND bytes; `[name]` when empty.
fn command_line(raw: &[u8], name: &str) -> String {
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| {
            String::from_utf8_lossy(w)
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect()
        })
        .collect();
    let mut line = if words.is_empty() {
        format!("[{name}]")
    } else {
        words.join(" ")
    };
    let end = crate::text::prefix(&line, MAX_COMMAND).len();
    line.truncate(end);
    line
}

fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second()
}

fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// Bytes received and sent on the interfaces of `pid`'s network namespace,
/// loopback left out; None when the process is gone.
pub fn net_bytes(pid: i32) -> Option<(u64, u64)> {
    if pid <= 0 {
        return None;
    }
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    Some(parse_net_dev(&dev))
}

/// /proc/net/dev: two header lines, then `iface: rx_bytes ... (8 rx
/// fields) tx_bytes ...`.
fn parse_net_dev(dev: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0u64, 0u64);
    for line in dev.lines().skip(2) {
        let Some((iface, counters)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let v: Vec<u64> = counters
            .split_whitespace()
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        if v.len() >= 9 {
            rx = rx.saturating_add(v[0]);
            tx = tx.saturating_add(v[8]);
        }
    }
    (rx, tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process() {
        let me = std::process::id() as i32;
        let p = process(me).unwrap();
        assert_eq!(p.pid, me);
        assert_eq!(p.ns_pid, me);
        assert_eq!(p.uid, nix::unistd::getuid().as_raw());
        assert_eq!(p.ns_uid, p.uid);
        assert!(p.rss_bytes > 0);
        assert!(!p.command.is_empty());
        assert!(process(0).is_none());
        assert!(net_bytes(me).is_some());
    }

    #[test]
    fn parsing() {
        let (name, f) = split_stat("12 (a) b (c)) S 1 12 12 0").unwrap();
        assert_eq!(name, "a) b (c)");
        assert_eq!(f[0], "S");
        assert_eq!(f[1], "1");
        assert_eq!(map_uid("0 100000 65536\n", 100_005), Some(5));
        assert_eq!(map_uid("0 100000 65536\n", 5), None);
        assert_eq!(map_uid("0 0 4294967295\n", 1000), Some(1000));
        assert_eq!(
            command_line(b"sh\0-c\0echo\x1b hi\0", "sh"),
            "sh -c echo? hi"
        );
        assert_eq!(command_line(b"", "kworker"), "[kworker]");
        assert_eq!(command_line(&[b'a'; 5000], "x").len(), MAX_COMMAND);
        let dev = "Inter-|   Receive\n face |bytes\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(dev), (5, 7));
    }
}
