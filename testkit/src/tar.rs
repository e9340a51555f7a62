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

/// A tar archive built in memory.
pub struct TarBuf(::tar::Builder<Vec<u8>>);

impl std::fmt::Debug for TarBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TarBuf")
    }
}

impl Default for TarBuf {
    fn default() -> Self {
        TarBuf::new()
    }
}

impl TarBuf {
    pub fn new() -> Self {
        TarBuf(::tar::Builder::new(Vec::new()))
    }

    pub fn dir(mut self, path: &str) -> Self {
        let mut h = header(::tar::EntryType::Directory, 0o755, 0);
        self.0
            .append_data(&mut h, path, std::io::empty())
            .expect("tar dir");
        self
    }

    pub fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
        let mut h = header(::tar::EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut h, path, data).expect("tar file");
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(::tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).expect("tar link");
        self
    }

    /// `bin/` with the host's /bin/busybox and a link to it for each of
    /// `applets` (the tests' images have no other programs).
    pub fn busybox(self, applets: &[&str]) -> Self {
        let busybox = std::fs::read("/bin/busybox").expect("the tests need /bin/busybox");
        let mut t = self.dir("bin/").file("bin/busybox", 0o755, &busybox);
        for a in applets {
            t = t.symlink(&format!("bin/{a}"), "busybox");
        }
        t
    }

    pub fn bytes(self) -> Vec<u8> {
        self.0.into_inner().expect("finish tar")
    }
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
