//! Tar fixtures for tests.

/// Fixed modification time of [`header`] entries, so that archives built
/// twice are byte-identical.
pub const MTIME: u64 = 1_700_000_000;

/// A GNU tar header for an entry of `kind`, owned by root (uid and gid 0),
/// with `mode`, `size` and the fixed [`MTIME`]. The path, link name and
/// checksum are set by `tar::Builder` when the entry is appended.
pub fn header(kind: ::tar::EntryType, mode: u32, size: u64) -> ::tar::Header {
    let mut h = ::tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let h = header(::tar::EntryType::Symlink, 0o777, 0);
        assert_eq!(h.entry_type(), ::tar::EntryType::Symlink);
        assert_eq!(h.mode().unwrap(), 0o777);
        assert_eq!(h.size().unwrap(), 0);
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        assert_eq!(h.mtime().unwrap(), MTIME);
    }
}
