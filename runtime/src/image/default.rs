//! The built-in `default` image: the host's static busybox, one symlink
//! per applet, and the few files in /etc that a shell and its tools expect.
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Component, Path};

/// Builds the busybox rootfs into `rootfs` (an empty directory) from the
/// static `busybox` binary.
pub(super) fn build(busybox: &Path, rootfs: &Path) -> std::io::Result<()> {
    let mkdir = |rel: &str, mode: u32| -> std::io::Result<()> {
        let p = rootfs.join(rel);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&p)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
    };
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "proc", "sys", "dev", "home", "var",
        "run",
    ] {
        mkdir(d, if d == "root" { 0o700 } else { 0o755 })?;
    }
    mkdir("tmp", 0o1777)?;
    mkdir("var/tmp", 0o1777)?;

    let bb = rootfs.join("bin/busybox");
    std::fs::copy(busybox, &bb)?;
    std::fs::set_permissions(&bb, std::fs::Permissions::from_mode(0o755))?;

    // One symlink per applet, at the path busybox itself suggests.
    let out = std::process::Command::new(busybox)
        .arg("--list-full")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{} --list-full failed: {}",
            busybox.display(),
            out.status
        )));
    }
    let list = String::from_utf8_lossy(&out.stdout);
    let mut applets = 0;
    for line in list.lines() {
        let rel = line.trim().trim_start_matches('/');
        let p = Path::new(rel);
        if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
            continue;
        }
        let link = rootfs.join(p);
        // Skip anything that would clash (bin/busybox itself, duplicates).
        if link.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(parent) = link.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)?;
        }
        symlink("/bin/busybox", &link)?;
        applets += 1;
    }
    if applets == 0 || rootfs.join("bin/sh").symlink_metadata().is_err() {
        return Err(std::io::Error::other(format!(
            "{} --list-full listed no usable applets (is it busybox?)",
            busybox.display()
        )));
    }

    // The files the engine binds over (/etc/hosts, /etc/resolv.conf) are
    // here: one the image lacks is made in the container's upper layer at
    // each start, and overlayfs copies /etc up first.
    let files: [(&str, &str, u32); 7] = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            0o644,
        ),
        (
            "etc/group",
            "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
            0o644,
        ),
        (
            "etc/shadow",
            "root:*:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n",
            0o600,
        ),
        ("etc/hostname", "quilt\n", 0o644),
        (
            "etc/hosts",
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            0o644,
        ),
        ("etc/nsswitch.conf", "hosts: files dns\n", 0o644),
        ("etc/resolv.conf", "", 0o644),
    ];
    for (rel, content, mode) in files {
        let p = rootfs.join(rel);
        std::fs::write(&p, content)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::names;
    use super::super::{HOST_BUSYBOX, ImageStore};
    use std::path::Path;

    #[test]
    fn default_image() {
        assert!(
            Path::new(HOST_BUSYBOX).is_file(),
            "{HOST_BUSYBOX} is missing (Debian package busybox-static)"
        );
        let data = tempfile::tempdir().unwrap();
        let store = ImageStore::new(data.path());
        store.validate("default").unwrap();
        assert!(!store.default_built(), "not built yet");
        let rootfs = store.prepare("default").unwrap();
        // Known to every clone of the store from now on, and to a store
        // opened anew once it has looked.
        assert!(store.clone().default_built());
        let again = ImageStore::new(data.path());
        assert!(!again.default_built());
        again.validate("default").unwrap();
        assert!(again.default_built());
        assert_eq!(rootfs, data.path().join("images/default/rootfs"));
        let st = std::process::Command::new(rootfs.join("bin/busybox"))
            .arg("true")
            .status()
            .unwrap();
        assert!(st.success());
        let out = std::process::Command::new(rootfs.join("bin/busybox"))
            .args(["sh", "-c", "echo ok"])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"ok\n");
        assert_eq!(
            std::fs::read_link(rootfs.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert!(rootfs.join("usr/bin/env").symlink_metadata().is_ok());
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
        assert!(passwd.starts_with("root:x:0:0:root:/root:/bin/sh\n"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(rootfs.join("tmp")).unwrap().mode() & 0o7777,
            0o1777
        );
        for d in ["proc", "sys", "dev", "home", "root"] {
            assert!(rootfs.join(d).is_dir(), "{d}");
        }
        // The targets of the network files' binds (nothing to make at start).
        for f in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
            assert!(rootfs.join(f).is_file(), "{f}");
        }
        assert_eq!(store.prepare("default").unwrap(), rootfs);
        assert_eq!(
            names(&data.path().join("images")),
            vec!["default".to_string()]
        );
    }
}
