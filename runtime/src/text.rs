//! Text cut to a length in bytes without splitting a character: for the
//! bounded copies of hostile or unbounded input (messages, names, command
//! lines) that the engine keeps or reports.

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary (`s` itself when it fits).
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::prefix;

    #[test]
    fn cuts_on_a_character_boundary() {
        assert_eq!(prefix("short", 10), "short");
        assert_eq!(prefix("abcdef", 3), "abc");
        // "é" is two bytes: a cut inside it goes back before it.
        assert_eq!(prefix("aé", 2), "a");
        assert_eq!(prefix("aé", 3), "aé");
        assert_eq!(prefix("€", 1), "");
        assert_eq!(prefix("", 0), "");
    }
}
