//! Detach keys (`--detach-keys`, the Docker API's `detachKeys`): the key
//! sequence that detaches a client from an attached terminal, written as
//! docker writes it, and the matcher that watches what is typed for it.

/// The bytes of a detach sequence (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

impl Default for DetachKeys {
    /// ctrl-p, ctrl-q (docker's).
    fn default() -> DetachKeys {
        DetachKeys(vec![0x10, 0x11])
    }
}

/// `ctrl-p,ctrl-q`, `ctrl-a,d`, `x`: comma-separated keys, each one
/// character or `ctrl-` and a letter or one of `@[\]^_`.
pub fn parse(s: &str) -> Result<DetachKeys, String> {
    let mut keys = Vec::new();
    for part in s.split(',') {
        let key = match part.strip_prefix("ctrl-") {
            Some(k) if k.len() == 1 => {
                let c = k.as_bytes()[0].to_ascii_lowercase();
                match c {
                    b'a'..=b'z' => c - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => return Err(format!("unknown detach key {part:?}")),
                }
            }
            None if part.len() == 1 && part.is_ascii() => part.as_bytes()[0],
            _ => {
                return Err(format!(
                    "unknown detach key {part:?}: one character or ctrl-<letter>, comma separated"
                ));
            }
        };
        keys.push(key);
    }
    Ok(DetachKeys(keys))
}

/// Watches typed input for the detach sequence: bytes that may start it
/// are held back until it is complete (detach) or broken (sent after all).
#[derive(Debug)]
pub struct Matcher {
    keys: DetachKeys,
    matched: usize,
}

/// What one chunk of input comes to.
#[derive(Debug, PartialEq, Eq)]
pub struct Fed {
    /// The bytes to send on.
    pub send: Vec<u8>,
    /// The sequence was typed: detach (nothing after it is sent).
    pub detach: bool,
}

impl Matcher {
    pub fn new(keys: DetachKeys) -> Matcher {
        Matcher { keys, matched: 0 }
    }

    pub fn feed(&mut self, input: &[u8]) -> Fed {
        let keys = &self.keys.0;
        let mut send = Vec::with_capacity(input.len());
        for &b in input {
            if b == keys[self.matched] {
                self.matched += 1;
                if self.matched == keys.len() {
                    return Fed { send, detach: true };
                }
                continue;
            }
            // Broken: what was held is ordinary input after all.
            send.extend_from_slice(&keys[..self.matched]);
            self.matched = 0;
            if b == keys[0] {
                self.matched = 1;
                if keys.len() == 1 {
                    return Fed { send, detach: true };
                }
            } else {
                send.push(b);
            }
        }
        Fed {
            send,
            detach: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_spellings() {
        assert_eq!(parse("ctrl-p,ctrl-q").unwrap(), DetachKeys::default());
        assert_eq!(parse("ctrl-a,d").unwrap().0, vec![1, b'd']);
        assert_eq!(parse("ctrl-@,ctrl-_").unwrap().0, vec![0, 31]);
        assert!(parse("ctrl-").is_err());
        assert!(parse("ctrl-1").is_err());
        assert!(parse("").is_err());
        assert!(parse("ab").is_err());
    }

    #[test]
    fn the_sequence_detaches_and_a_broken_one_is_sent() {
        let mut m = Matcher::new(DetachKeys::default());
        assert_eq!(
            m.feed(b"ls\x10"),
            Fed {
                send: b"ls".to_vec(),
                detach: false
            }
        );
        // Across chunks, then broken: the held key goes out first.
        assert_eq!(
            m.feed(b"x"),
            Fed {
                send: b"\x10x".to_vec(),
                detach: false
            }
        );
        assert_eq!(
            m.feed(b"\x10\x10\x11tail"),
            Fed {
                send: b"\x10".to_vec(),
                detach: true
            }
        );
    }
}
