//! Container ids: 64 random hex digits; the first 12 are the short id.
pub const SHORT_LEN: usize = 12;

pub fn new_id() -> String {
    let mut b = [0u8; 32];
    // getrandom only fails when the kernel has no entropy source at all.
    getrandom::fill(&mut b).expect("kernel random source");
    hex::encode(b)
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(SHORT_LEN)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_hex_and_unique() {
        let a = super::new_id();
        let b = super::new_id();
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        assert_eq!(super::short(&a).len(), 12);
    }
}
