//! Device numbers as the host has them registered (/proc/devices).

use std::fs;

/// The major numbers of the registered character devices.
pub fn char_majors() -> Vec<u32> {
    let text = fs::read_to_string("/proc/devices").unwrap_or_default();
    text.lines()
        .skip_while(|l| !l.starts_with("Character devices"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Block devices"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// A character major of the "local/experimental use" ranges (60-63,
/// 120-127) that no driver has registered: a node with it reaches no
/// device (opening it gives ENXIO once access is allowed), so tests can
/// tell "allowed" from "refused" without touching real hardware.
pub fn unused_char_major() -> Option<u32> {
    let used = char_majors();
    (60..=63).chain(120..=127).find(|m| !used.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_and_unused() {
        // Every kernel has mem (1) and the tty layer (5).
        let majors = char_majors();
        assert!(majors.contains(&1) && majors.contains(&5), "{majors:?}");
        let free = unused_char_major().expect("a free experimental major");
        assert!(!majors.contains(&free));
    }
}
