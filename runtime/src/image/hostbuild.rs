//! `image build --from-host`: an image made of host programs, the shared
//! libraries they need (found with `ldd`) and what their interpreters load
//! at run time (python's standard library, git's exec-path and templates),
//! on top of the busybox rootfs of the default image (so there is a shell).
//! Every file keeps its host path; symlink chains are recreated.
use super::import::install;
use super::progress::Reporter;
use super::tree::{self, TreeCopier, clean_rel, ensure_parents, remove_any};
use super::{ImageError, ImageStore, Imported, unique_suffix};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, ErrorKind, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use crate::spec::DEFAULT_PATH;
/// Directory names left out of interpreter trees (test suites, build files).
const SKIP_DIRS: [&str; 4] = ["test", "tests", "idle_test", "__phello__"];

fn not_found(program: &str, why: &str) -> ImageError {
    ImageError::NotFound("host-build".into(), format!("program {program:?}: {why}"))
}

fn is_elf(p: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

/// NAME looked up in PATH (the first ELF match wins over earlier scripts,
/// such as version-manager shims), or an absolute path.
fn resolve(name: &str) -> Result<PathBuf, ImageError> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        if !p.is_absolute() {
            return Err(ImageError::Invalid(
                name.into(),
                "a binary is a name looked up in PATH or an absolute path".into(),
            ));
        }
        if !is_executable(&p) {
            return Err(not_found(name, "not an executable file"));
        }
        return Ok(p);
    }
    if name.is_empty() {
        return Err(ImageError::Invalid(name.into(), "empty binary name".into()));
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
    let mut first = None;
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let p = Path::new(dir).join(name);
        if !is_executable(&p) {
            continue;
        }
        if is_elf(&p) {
            return Ok(p);
        }
        first.get_or_insert(p);
    }
    first.ok_or_else(|| not_found(name, "not found in PATH"))
}

/// Lexically normalized absolute path (".." pops a component).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The absolute paths of the shared libraries (and loader) `ldd` lists.
fn ldd(file: &Path) -> io::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(file)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        // Static executables and non-ELF files have no dependencies.
        return Ok(Vec::new());
    }
    parse_ldd(file, &String::from_utf8_lossy(&out.stdout))
}

/// The absolute paths in `ldd FILE` output; an unresolved library is an error.
fn parse_ldd(file: &Path, text: &str) -> io::Result<Vec<PathBuf>> {
    let mut deps = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((lib, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(io::Error::new(
                        ErrorKind::NotFound,
                        format!("{}: library {} not found", file.display(), lib.trim()),
                    ));
                }
                rest.split_whitespace().next().unwrap_or("")
            }
            None => line.split_whitespace().next().unwrap_or(""),
        };
        if path.starts_with('/') {
            deps.push(PathBuf::from(path));
        }
    }
    Ok(deps)
}

struct Builder<'r, 'a> {
    rootfs: PathBuf,
    copier: TreeCopier,
    seen: HashSet<PathBuf>,
    /// ELF files whose libraries are still to be added, by (dev, ino).
    elves: Vec<PathBuf>,
    elf_inodes: HashSet<(u64, u64)>,
    rep: &'r mut Reporter<'a>,
}

impl Builder<'_, '_> {
    /// Copies host path P to the same path in the rootfs, recreating its
    /// symlink chain; returns the host path of the final file.
    fn add_path(&mut self, p: &Path) -> io::Result<PathBuf> {
        self.add_path_or_dir(p, false)
    }

    /// `add_path`; with `dirs`, a path that ends at a directory has the
    /// directory's tree added (its symlink chain recreated too).
    fn add_path_or_dir(&mut self, p: &Path, dirs: bool) -> io::Result<PathBuf> {
        let mut cur = normalize(p);
        for _ in 0..40 {
            let m = std::fs::symlink_metadata(&cur)?;
            let rel = clean_rel(&cur).unwrap_or_default();
            if !self.seen.insert(cur.clone()) && !m.file_type().is_symlink() {
                return Ok(cur);
            }
            ensure_parents(&self.rootfs, &rel)?;
            let dst = self.rootfs.join(&rel);
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&cur)?;
                remove_any(&dst)?;
                std::os::unix::fs::symlink(&t, &dst)?;
                cur = if t.is_absolute() {
                    normalize(&t)
                } else {
                    normalize(&cur.parent().unwrap_or(Path::new("/")).join(&t))
                };
                continue;
            }
            if m.is_dir() && dirs {
                self.add_tree(&cur)?;
                return Ok(cur);
            }
            if m.is_dir() {
                return Err(io::Error::new(
                    ErrorKind::InvalidInput,
                    format!("{} is a directory", cur.display()),
                ));
            }
            remove_any(&dst)?;
            let rep = &mut *self.rep;
            self.copier
                .copy(&cur, &dst, &|_| false, &mut |n| rep.add(n))?;
            return Ok(cur);
        }
        Err(io::Error::other(format!(
            "{}: too many levels of symbolic links",
            p.display()
        )))
    }

    /// Queues an ELF file for `ldd`.
    fn queue_elf(&mut self, p: &Path) {
        if let Ok(m) = std::fs::metadata(p)
            && self.elf_inodes.insert((m.dev(), m.ino()))
            && is_elf(p)
        {
            self.elves.push(p.to_path_buf());
        }
    }

    /// Copies a host directory tree to the same path in the rootfs and
    /// queues its ELF files.
    fn add_tree(&mut self, dir: &Path) -> io::Result<()> {
        let dir = normalize(dir);
        let rel = clean_rel(&dir).unwrap_or_default();
        let dst = self.rootfs.join(&rel);
        ensure_parents(&self.rootfs, &rel.join("x"))?;
        if std::fs::symlink_metadata(&dst).is_ok_and(|m| !m.is_dir()) {
            remove_any(&dst)?;
        }
        let skip = |n: &OsStr| n.to_str().is_some_and(|n| SKIP_DIRS.contains(&n));
        let rep = &mut *self.rep;
        self.copier.copy(&dir, &dst, &skip, &mut |n| rep.add(n))?;
        let mut elves = Vec::new();
        tree::walk(&dst, &mut |r, m| {
            if (m.is_file() && m.mode() & 0o111 != 0) || r.extension() == Some(OsStr::new("so")) {
                elves.push(dir.join(r));
            }
            Ok(())
        })?;
        for e in elves {
            self.queue_elf(&e);
        }
        Ok(())
    }

    /// Adds a program and what it needs at run time; a program named on
    /// the command line (depth 0) is linked as /usr/local/bin/NAME.
    fn add_program(&mut self, name: &str, depth: usize) -> Result<(), ImageError> {
        let io = |e: io::Error| ImageError::Io(name.into(), e);
        let host = resolve(name)?;
        let real = self.add_path(&host).map_err(io)?;
        self.queue_elf(&real);
        if depth == 0 {
            self.link_in_path(&host).map_err(io)?;
        }
        if let Some(pkg) = node_package(&real) {
            // An npm package's script (npm, npx, ...): the whole package.
            self.add_tree(&pkg).map_err(io)?;
        }
        let base = real
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if base.starts_with("python") {
            self.add_python(&real).map_err(io)?;
        } else if base == "git" {
            self.add_git(&real).map_err(io)?;
        }
        if !is_elf(&real) && depth < 4 {
            // A script: add its interpreter (`#!/usr/bin/env X` adds X too).
            // X is looked for first beside the script (the prefix's bin of
            // an nvm, pyenv or conda tree, which the daemon's PATH lacks),
            // and then linked into /usr/local/bin for `env` to find.
            if let Some(interp) = shebang(&real) {
                for prog in interp {
                    let beside = (!prog.contains('/'))
                        .then(|| {
                            [host.parent(), real.parent()]
                                .into_iter()
                                .flatten()
                                .map(|d| d.join(&prog))
                                .find(|p| is_executable(p))
                        })
                        .flatten();
                    match beside {
                        Some(p) => {
                            let p = p.to_string_lossy().into_owned();
                            self.add_program(&p, depth + 1)?;
                            self.link_in_path(Path::new(&p)).map_err(io)?;
                        }
                        None => self.add_program(&prog, depth + 1)?,
                    }
                }
            }
        }
        Ok(())
    }

    fn add_python(&mut self, python: &Path) -> io::Result<()> {
        let out = Command::new(python)
            .args([
                "-c",
                "import sys; print(sys.prefix); print('%d.%d' % sys.version_info[:2])",
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let (Some(prefix), Some(ver)) = (lines.next(), lines.next()) else {
            return Err(io::Error::other(format!(
                "{} did not report its prefix and version",
                python.display()
            )));
        };
        // The interpreter's own prefix (pyenv's versions/X, a conda env, a
        // venv's base): its standard library, symlinks followed.
        let stdlib = Path::new(prefix.trim()).join(format!("lib/python{}", ver.trim()));
        if stdlib.is_dir() {
            self.add_path_or_dir(&stdlib, true)?;
        }
        Ok(())
    }

    /// /usr/local/bin/NAME -> the program's host path (unless that is
    /// where it is), so that it runs by name whatever prefix it came from.
    fn link_in_path(&mut self, host: &Path) -> io::Result<()> {
        let Some(name) = host.file_name() else {
            return Ok(());
        };
        let link = Path::new("/usr/local/bin").join(name);
        if normalize(host) == link {
            return Ok(());
        }
        let rel = clean_rel(&link).unwrap_or_default();
        ensure_parents(&self.rootfs, &rel)?;
        let dst = self.rootfs.join(&rel);
        remove_any(&dst)?;
        std::os::unix::fs::symlink(normalize(host), &dst)
    }

    /// The host's CA certificate bundle: /etc/ssl/certs (with the files
    /// its links point to) and the bundle files of the usual distributions.
    fn add_ca_certs(&mut self) -> io::Result<bool> {
        let mut found = false;
        for bundle in [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/ca-bundle.pem",
            "/etc/ssl/cert.pem",
        ] {
            if Path::new(bundle).is_file() {
                self.add_path(Path::new(bundle))?;
                found = true;
            }
        }
        let certs = Path::new("/etc/ssl/certs");
        if certs.is_dir() {
            for e in std::fs::read_dir(certs)?.flatten() {
                let p = e.path();
                if p.is_file() {
                    self.add_path(&p)?;
                    found = true;
                }
            }
        }
        Ok(found)
    }

    fn add_git(&mut self, git: &Path) -> io::Result<()> {
        let out = Command::new(git)
            .arg("--exec-path")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()?;
        let exec_path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if exec_path.is_absolute() && exec_path.is_dir() {
            self.add_tree(&exec_path)?;
            if let Some(prefix) = exec_path.parent().and_then(Path::parent) {
                let templates = prefix.join("share/git-core/templates");
                if templates.is_dir() {
                    self.add_tree(&templates)?;
                }
            }
        }
        Ok(())
    }

    /// Adds the libraries of every queued ELF file.
    fn add_libraries(&mut self) -> io::Result<()> {
        let mut done = HashSet::new();
        while let Some(elf) = self.elves.pop() {
            for dep in ldd(&elf)? {
                if done.insert(dep.clone()) {
                    self.add_path(&dep)?;
                }
            }
        }
        Ok(())
    }
}

/// The package directory of a file inside `.../lib/node_modules/PKG/`
/// (`@scope/PKG` for a scoped one), as nvm and npm lay them out.
fn node_package(real: &Path) -> Option<PathBuf> {
    let comps: Vec<Component> = real.components().collect();
    let at = comps
        .windows(2)
        .position(|w| w[0].as_os_str() == "lib" && w[1].as_os_str() == "node_modules")?;
    let mut end = at + 3;
    if comps
        .get(at + 2)?
        .as_os_str()
        .to_string_lossy()
        .starts_with('@')
    {
        end += 1;
    }
    if end >= comps.len() {
        return None;
    }
    Some(comps[..end].iter().collect())
}

/// The programs a script's `#!` line names.
fn shebang(p: &Path) -> Option<Vec<String>> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(p).ok()?.read(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    let line = text.strip_prefix("#!")?.lines().next()?.to_owned();
    let mut words = line.split_whitespace();
    let interp = words.next()?.to_owned();
    let mut progs = vec![interp.clone()];
    if interp.ends_with("/env")
        && let Some(next) = words.find(|w| !w.starts_with('-'))
    {
        progs.push(next.to_owned());
    }
    Some(progs)
}

pub(super) fn build(
    store: &ImageStore,
    binaries: &[String],
    ca_certs: bool,
    rep: &mut Reporter,
) -> Result<Imported, ImageError> {
    if binaries.is_empty() {
        return Err(ImageError::Invalid(
            "host-build".into(),
            "name at least one binary (--bin)".into(),
        ));
    }
    // Every program, and the busybox base, must exist before anything is copied.
    for name in binaries {
        resolve(name)?;
    }
    if !store.busybox.is_file() {
        return Err(store.no_busybox());
    }
    let io = |e: io::Error| ImageError::Io("host-build".into(), e);
    std::fs::create_dir_all(&store.root).map_err(io)?;
    let tmp = store.root.join(format!(".tmp-build-{}", unique_suffix()));
    let result = (|| {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(io)?;
        let rootfs = tmp.join("rootfs");
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&rootfs)
            .map_err(io)?;
        rep.phase("copying the busybox base", 0);
        super::default::build(&store.busybox, &rootfs).map_err(io)?;
        rep.phase("copying binaries", 0);
        let mut b = Builder {
            rootfs: rootfs.clone(),
            copier: TreeCopier::new(),
            seen: HashSet::new(),
            elves: Vec::new(),
            elf_inodes: HashSet::new(),
            rep,
        };
        for name in binaries {
            b.add_program(name, 0)?;
        }
        if ca_certs && !b.add_ca_certs().map_err(io)? {
            return Err(ImageError::NotFound(
                "host-build".into(),
                "--ca-certs: the host has no CA certificate bundle (apt-get install ca-certificates)"
                    .into(),
            ));
        }
        b.rep.phase("copying shared libraries", 0);
        b.add_libraries().map_err(io)?;
        b.rep.finish_phase();
        std::fs::set_permissions(&rootfs, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
        rep.phase("hashing", 0);
        let hex = tree::digest_tree(&rootfs).map_err(io)?;
        rep.finish_phase();
        let installed = install(store, &tmp, &hex).map_err(io)?;
        Ok(Imported {
            id: format!("sha256:{hex}"),
            source: "host-build",
            layers: Vec::new(),
            layer_sizes: Vec::new(),
            size_bytes: tree::tree_size(&installed).map_err(io)?,
            config: None,
        })
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(Path::new("/bin/x"), text).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libz.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        let err = parse_ldd(Path::new("/bin/x"), "\tlibq.so.9 => not found\n").unwrap_err();
        assert!(err.to_string().contains("libq.so.9 not found"), "{err}");
    }

    #[test]
    fn paths_and_shebangs() {
        assert_eq!(
            normalize(Path::new("/usr/bin/../lib/./x")),
            Path::new("/usr/lib/x")
        );
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/usr/bin/env -S python3 -u\nprint(1)\n").unwrap();
        assert_eq!(
            shebang(&script).unwrap(),
            ["/usr/bin/env".to_string(), "python3".to_string()]
        );
        std::fs::write(&script, "echo no shebang\n").unwrap();
        assert!(shebang(&script).is_none());
        assert!(matches!(
            resolve("no-such-program-q"),
            Err(ImageError::NotFound(..))
        ));
        assert!(matches!(resolve("rel/x"), Err(ImageError::Invalid(..))));
    }
}
