//! Test certificates made with the openssl command: a CA (ca.pem, ca.key)
//! and certificates it signs, each with the X.509 extensions asked for
//! (NAME.pem, NAME.key), in a temp dir removed with the value.
use std::path::Path;
use std::process::Command;

#[derive(Debug)]
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA and one P-256 certificate per (name, extensions), where the
    /// extensions are openssl's extfile text (e.g.
    /// `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n`).
    pub fn new(certs: &[(&str, &str)]) -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("the TLS tests need openssl (scripts/deps.sh)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        const KEY: [&str; 5] = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(KEY);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=quilt test CA",
        ]);
        run(&ca);
        for (name, ext) in certs {
            std::fs::write(d.join(format!("{name}.ext")), ext).expect("write extensions");
            let (key, csr, pem, extfile, subj) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
                format!("/CN={name}"),
            );
            let mut req = vec!["req"];
            req.extend(KEY);
            req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            run(&req);
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &extfile,
            ]);
        }
        Pki { dir }
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The path of one of its files (e.g. "ca.pem"), as a string.
    pub fn path(&self, name: &str) -> String {
        self.dir
            .path()
            .join(name)
            .to_str()
            .expect("utf-8 path")
            .to_owned()
    }
}
