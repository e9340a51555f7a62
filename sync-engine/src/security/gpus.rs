//! NVIDIA GPUs on the host and what a container needs to use them, found
//! the way nvidia-container-toolkit finds them: the GPUs in
//! /proc/driver/nvidia/gpus (PCI order, the index NVML and nvidia-smi
//! show), their nodes /dev/nvidia<minor> and the driver's control nodes,
//! the driver's user-space libraries from `ldconfig -p`, its tools, and the
//! firmware of the running driver version. Discovery takes a root directory
//! and the `ldconfig -p` text, so it runs against a fake tree in tests.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The driver's control nodes, given to every GPU container that has them.
const CONTROL_NODES: [&str; 4] = [
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
];
/// Library name prefixes of the driver (compute and utility: CUDA, NVML,
/// the JIT compilers, OpenCL, video codecs, OptiX).
const LIBRARY_PREFIXES: [&str; 5] = [
    "libcuda.so",
    "libcudadebugger.so",
    "libnvidia-",
    "libnvcuvid.so",
    "libnvoptix.so",
];
/// Libraries that match a prefix but are not the driver's.
const NOT_DRIVER: [&str; 1] = ["libnvidia-container"];
/// The driver's tools.
const TOOLS: [&str; 5] = [
    "nvidia-smi",
    "nvidia-debugdump",
    "nvidia-persistenced",
    "nvidia-cuda-mps-control",
    "nvidia-cuda-mps-server",
];
/// Where the tools are looked for first: directories on every container's
/// PATH. Then the daemon's own PATH, then a `bin` beside each library
/// directory (a driver kept in one tree, such as /usr/local/nvidia/{lib64,bin}).
pub const TOOL_DIRS: [&str; 5] = ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"];

/// What `--gpus` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    All,
    /// The first N GPUs.
    Count(u32),
    /// GPUs by index or UUID ("GPU-...").
    Devices(Vec<String>),
}

/// `all`, a count (`2`) or `device=0,1` / `device=GPU-<uuid>`.
pub fn parse_request(s: &str) -> Result<Request, String> {
    let bad = |why: &str| {
        format!(
            "invalid --gpus {}: {why} (use all, a count or device=0,1)",
            crate::validate::echo(s)
        )
    };
    if s == "all" {
        return Ok(Request::All);
    }
    if let Some(list) = s.strip_prefix("device=") {
        let ids: Vec<String> = list.split(',').map(str::to_owned).collect();
        if ids.iter().any(|i| i.is_empty()) {
            return Err(bad("an empty device"));
        }
        let valid = |i: &str| {
            i.bytes().all(|b| b.is_ascii_digit())
                || (i.starts_with("GPU-")
                    && i.len() <= 64
                    && i[4..].bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        };
        if let Some(i) = ids.iter().find(|i| !valid(i)) {
            return Err(bad(&format!(
                "{} is neither an index nor a GPU UUID",
                crate::validate::echo(i)
            )));
        }
        return Ok(Request::Devices(ids));
    }
    match s.parse::<u32>() {
        Ok(0) => Err(bad("a count of at least 1 is needed")),
        Ok(n) => Ok(Request::Count(n)),
        Err(_) => Err(bad("unknown form")),
    }
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// Position in PCI bus order (nvidia-smi's index).
    pub index: u32,
    /// Its node is /dev/nvidia<minor>.
    pub minor: u32,
    pub uuid: Option<String>,
}

/// The GPUs under `root`: from the driver's /proc/driver/nvidia/gpus (one
/// directory per PCI address, in bus order), or, without it, from the
/// /dev/nvidia<N> nodes in number order. Only GPUs whose node exists count.
pub fn gpus(root: &Path) -> Vec<Gpu> {
    let mut found: Vec<(u32, Option<String>)> = Vec::new();
    let proc_gpus = root.join("proc/driver/nvidia/gpus");
    if let Ok(entries) = std::fs::read_dir(&proc_gpus) {
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for d in dirs {
            let Ok(text) = std::fs::read_to_string(d.join("information")) else {
                continue;
            };
            let field = |name: &str| {
                text.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == name).then(|| v.trim().to_owned())
                })
            };
            if let Some(minor) = field("Device Minor").and_then(|m| m.parse().ok()) {
                found.push((minor, field("GPU UUID").filter(|u| !u.is_empty())));
            }
        }
    } else if let Ok(entries) = std::fs::read_dir(root.join("dev")) {
        let mut minors: Vec<u32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("nvidia")?.parse().ok())
            .collect();
        minors.sort_unstable();
        found = minors.into_iter().map(|m| (m, None)).collect();
    }
    found
        .into_iter()
        .filter(|(minor, _)| root.join(format!("dev/nvidia{minor}")).exists())
        .enumerate()
        .map(|(i, (minor, uuid))| Gpu {
            index: i as u32,
            minor,
            uuid,
        })
        .collect()
}

/// The GPUs `req` names among `all`.
pub fn select<'a>(all: &'a [Gpu], req: &Request) -> Result<Vec<&'a Gpu>, String> {
    match req {
        Request::All => Ok(all.iter().collect()),
        Request::Count(n) if *n as usize <= all.len() => Ok(all.iter().take(*n as usize).collect()),
        Request::Count(n) => Err(format!(
            "{n} GPUs requested but this host has {}",
            all.len()
        )),
        Request::Devices(ids) => {
            let mut out: Vec<&Gpu> = Vec::new();
            for id in ids {
                let gpu = all.iter().find(|g| match id.parse::<u32>() {
                    Ok(i) => g.index == i,
                    Err(_) => g.uuid.as_deref() == Some(id.as_str()),
                });
                match gpu {
                    Some(g) if !out.contains(&g) => out.push(g),
                    Some(_) => {}
                    None => {
                        return Err(format!(
                            "no GPU {} on this host (it has {}: indices 0 to {})",
                            crate::validate::echo(id),
                            all.len(),
                            all.len().saturating_sub(1)
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// The driver's version from /proc/driver/nvidia/version (the first
/// dotted number on its NVRM line).
pub fn driver_version(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("proc/driver/nvidia/version")).ok()?;
    let line = text.lines().find(|l| l.starts_with("NVRM"))?;
    line.split_whitespace()
        .find(|w| {
            w.contains('.')
                && w.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && w.bytes().next().is_some_and(|b| b.is_ascii_digit())
        })
        .map(str::to_owned)
}

/// A library file and the other names (sonames) it has in its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    /// Canonical host path.
    pub file: String,
    /// Names in the same directory that point at it (`libcuda.so.1`).
    pub links: Vec<String>,
}

/// The driver's files on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverFiles {
    pub version: Option<String>,
    pub libraries: Vec<Library>,
    /// Canonical host paths of the tools.
    pub tools: Vec<String>,
    /// /lib/firmware/nvidia/<version>, canonical, if there.
    pub firmware: Option<String>,
}

/// The driver's control nodes under `root` that exist (looked up at each
/// start: nvidia-uvm's appear once its module is loaded).
pub fn control_nodes(root: &Path) -> Vec<String> {
    CONTROL_NODES
        .iter()
        .filter(|n| root.join(n.trim_start_matches('/')).exists())
        .map(|n| n.to_string())
        .collect()
}

/// One line of `ldconfig -p`: name, flags and path.
fn ldconfig_entries(text: &str) -> Vec<(&str, &str, &str)> {
    text.lines()
        .filter_map(|l| {
            let (left, path) = l.split_once(" => ")?;
            let (name, flags) = left.trim().split_once(" (")?;
            let flags = flags.strip_suffix(')')?;
            Some((name.trim(), flags, path.trim()))
        })
        .collect()
}

/// Whether an ldconfig entry's flags are this machine's ABI (the 64-bit
/// libraries, not the 32-bit ones beside them).
fn native_abi(flags: &str) -> bool {
    if cfg!(target_arch = "x86_64") {
        flags.contains("x86-64")
    } else if cfg!(target_arch = "aarch64") {
        flags.contains("AArch64")
    } else {
        true
    }
}

/// `path` (a host path) resolved under `root`, as a host path again: None
/// when it does not exist or resolves out of `root`.
fn canonical_in(root: &Path, path: &str) -> Option<String> {
    let root = root.canonicalize().ok()?;
    let full = root
        .join(path.trim_start_matches('/'))
        .canonicalize()
        .ok()?;
    let rel = full.strip_prefix(&root).ok()?;
    Some(format!("/{}", rel.to_str()?))
}

/// The directories searched for the tools, in order (see `TOOL_DIRS`):
/// `path_env` is the daemon's PATH; only absolute entries count.
fn tool_dirs(path_env: Option<&str>, libraries: &[Library]) -> Vec<String> {
    let mut dirs: Vec<String> = TOOL_DIRS.iter().map(|d| d.to_string()).collect();
    let on_path = path_env
        .unwrap_or_default()
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| d.trim_end_matches('/').to_owned());
    let beside_libraries = libraries.iter().filter_map(|l| {
        let dir = l.file.rsplit_once('/')?.0;
        let parent = dir.rsplit_once('/')?.0;
        Some(format!("{parent}/bin"))
    });
    for d in on_path.chain(beside_libraries) {
        if !d.is_empty() && !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// Whether `path` is an ELF file: a tool the container can run. A wrapper
/// script (some hosts put one on PATH) would run the image's interpreter
/// on a path the container does not have.
fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).is_ok_and(|mut f| f.read_exact(&mut magic).is_ok())
        && magic == *b"\x7fELF"
}

/// The driver's files under `root`, given the `ldconfig -p` text of that
/// root and the daemon's PATH: libraries, tools and firmware.
pub fn driver_files(root: &Path, ldconfig: &str, path_env: Option<&str>) -> DriverFiles {
    let mut libs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, flags, path) in ldconfig_entries(ldconfig) {
        let wanted = LIBRARY_PREFIXES.iter().any(|p| name.starts_with(p))
            && !NOT_DRIVER.iter().any(|p| name.starts_with(p));
        if !wanted || !native_abi(flags) {
            continue;
        }
        let Some(file) = canonical_in(root, path) else {
            continue;
        };
        let links = libs.entry(file.clone()).or_default();
        let file_name = file.rsplit('/').next().unwrap_or_default();
        if name != file_name && !links.iter().any(|l| l == name) {
            links.push(name.to_owned());
        }
    }
    let libraries: Vec<Library> = libs
        .into_iter()
        .map(|(file, mut links)| {
            links.sort();
            Library { file, links }
        })
        .collect();
    let dirs = tool_dirs(path_env, &libraries);
    let mut tools: Vec<String> = Vec::new();
    for t in TOOLS {
        for d in &dirs {
            if let Some(p) = canonical_in(root, &format!("{d}/{t}"))
                && is_elf(&root.join(p.trim_start_matches('/')))
                && !tools.contains(&p)
            {
                tools.push(p);
                break;
            }
        }
    }
    let version = driver_version(root);
    let firmware = version
        .as_deref()
        .and_then(|v| canonical_in(root, &format!("/lib/firmware/nvidia/{v}")));
    DriverFiles {
        version,
        libraries,
        tools,
        firmware,
    }
}

/// The driver's files on this host, found once per driver version (the
/// `ldconfig -p` run is not repeated for every start). Blocking.
pub fn host_driver_files() -> Result<Arc<DriverFiles>, String> {
    static CACHE: Mutex<Option<(Option<String>, Arc<DriverFiles>)>> = Mutex::new(None);
    let root = Path::new("/");
    let version = driver_version(root);
    if let Some((v, files)) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
        && *v == version
    {
        return Ok(files.clone());
    }
    let text = ldconfig_cache()?;
    let path_env = std::env::var("PATH").ok();
    let files = Arc::new(driver_files(root, &text, path_env.as_deref()));
    *CACHE.lock().unwrap_or_else(|p| p.into_inner()) = Some((version, files.clone()));
    Ok(files)
}

/// The output of the host's `ldconfig -p` (the loader's cache).
fn ldconfig_cache() -> Result<String, String> {
    let mut last = String::from("ldconfig not found");
    for prog in [
        "/sbin/ldconfig",
        "/usr/sbin/ldconfig",
        "/sbin/ldconfig.real",
    ] {
        if !Path::new(prog).exists() {
            continue;
        }
        match std::process::Command::new(prog)
            .arg("-p")
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            Ok(out) => last = format!("{prog} -p: {}", out.status),
            Err(e) => last = format!("{prog} -p: {e}"),
        }
    }
    Err(format!(
        "cannot list the host's libraries to find the NVIDIA driver: {last}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn requests() {
        assert_eq!(parse_request("all"), Ok(Request::All));
        assert_eq!(parse_request("2"), Ok(Request::Count(2)));
        assert_eq!(
            parse_request("device=0,GPU-6f8a-01"),
            Ok(Request::Devices(vec!["0".into(), "GPU-6f8a-01".into()]))
        );
        for bad in [
            "",
            "0",
            "-1",
            "al",
            "device=",
            "device=0,",
            "device=x",
            "2,3",
        ] {
            let e = parse_request(bad).unwrap_err();
            assert!(e.starts_with("invalid --gpus"), "{bad:?}: {e}");
        }
    }

    /// The start of a tool's file (an ELF header).
    const ELF: &str = "\x7fELF\x02\x01\x01";

    /// A fake root with two GPUs (minors 3 and 1, listed in bus order) and
    /// a driver installed the Debian way (merged /usr, relative links).
    fn fake_host() -> (tempfile::TempDir, String) {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let w = |p: &str, s: &str| {
            let p = r.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        };
        w(
            "proc/driver/nvidia/version",
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n\
             GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n",
        );
        w(
            "proc/driver/nvidia/gpus/0000:3b:00.0/information",
            "Model: \t\t Tesla T4\nGPU UUID: \t GPU-aaaa-1111\nBus Location: \t 0000:3b:00.0\nDevice Minor: \t 3\n",
        );
        w(
            "proc/driver/nvidia/gpus/0000:00:1e.0/information",
            "Model: \t\t Tesla T4\nGPU UUID: \t GPU-bbbb-2222\nDevice Minor: \t 1\n",
        );
        for n in ["nvidia1", "nvidia3", "nvidiactl", "nvidia-uvm"] {
            w(&format!("dev/{n}"), "");
        }
        let lib = "usr/lib/x86_64-linux-gnu";
        for f in [
            "libcuda.so.535.104.05",
            "libnvidia-ml.so.535.104.05",
            "libnvidia-container.so.1.14.0",
            "libc.so.6",
        ] {
            w(&format!("{lib}/{f}"), "");
        }
        w("usr/lib/i386-linux-gnu/libcuda.so.535.104.05", "");
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("libcuda.so.535.104.05", r.join(lib).join("libcuda.so.1")).unwrap();
        symlink("libcuda.so.1", r.join(lib).join("libcuda.so")).unwrap();
        symlink(
            "libnvidia-ml.so.535.104.05",
            r.join(lib).join("libnvidia-ml.so.1"),
        )
        .unwrap();
        w("usr/bin/nvidia-smi", ELF);
        w("usr/lib/firmware/nvidia/535.104.05/gsp_tu10x.bin", "");
        let ldconfig = "\
12 libs found in cache `/etc/ld.so.cache'
\tlibnvidia-ml.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libnvidia-ml.so.1
\tlibnvidia-container.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libnvidia-container.so.1.14.0
\tlibcuda.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcuda.so.1
\tlibcuda.so.1 (libc6) => /lib/i386-linux-gnu/libcuda.so.535.104.05
\tlibcuda.so (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libcuda.so
\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6
\tlibnvoptix.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libnvoptix.so.1
Cache generated by: ldconfig (GNU libc) stable release version 2.36
"
        .to_string();
        (t, ldconfig)
    }

    #[test]
    fn gpus_in_bus_order_and_selection() {
        let (t, _) = fake_host();
        let all = gpus(t.path());
        assert_eq!(
            all,
            [
                Gpu {
                    index: 0,
                    minor: 1,
                    uuid: Some("GPU-bbbb-2222".into())
                },
                Gpu {
                    index: 1,
                    minor: 3,
                    uuid: Some("GPU-aaaa-1111".into())
                },
            ]
        );
        let minors = |r: &str| -> Result<Vec<u32>, String> {
            Ok(select(&all, &parse_request(r).unwrap())?
                .iter()
                .map(|g| g.minor)
                .collect())
        };
        assert_eq!(minors("all"), Ok(vec![1, 3]));
        assert_eq!(minors("1"), Ok(vec![1]));
        assert_eq!(minors("device=1"), Ok(vec![3]));
        assert_eq!(minors("device=GPU-aaaa-1111,0,1"), Ok(vec![3, 1]));
        assert_eq!(
            minors("3").unwrap_err(),
            "3 GPUs requested but this host has 2"
        );
        assert_eq!(
            minors("device=2").unwrap_err(),
            "no GPU \"2\" on this host (it has 2: indices 0 to 1)"
        );
        assert!(minors("device=GPU-cccc").is_err());

        // Without /proc/driver/nvidia/gpus: the nodes, in number order.
        fs::remove_dir_all(t.path().join("proc/driver/nvidia/gpus")).unwrap();
        let minors: Vec<u32> = gpus(t.path()).iter().map(|g| g.minor).collect();
        assert_eq!(minors, [1, 3]);
        // No GPU at all.
        let empty = tempfile::tempdir().unwrap();
        assert!(gpus(empty.path()).is_empty());
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn driver_files_from_ldconfig() {
        let (t, ldconfig) = fake_host();
        let f = driver_files(t.path(), &ldconfig, None);
        assert_eq!(f.version.as_deref(), Some("535.104.05"));
        let lib = "/usr/lib/x86_64-linux-gnu";
        assert_eq!(
            f.libraries,
            [
                Library {
                    file: format!("{lib}/libcuda.so.535.104.05"),
                    links: vec!["libcuda.so".into(), "libcuda.so.1".into()],
                },
                Library {
                    file: format!("{lib}/libnvidia-ml.so.535.104.05"),
                    links: vec!["libnvidia-ml.so.1".into()],
                },
            ],
            "no 32-bit library, no libc, not the toolkit's own library, nothing missing"
        );
        assert_eq!(f.tools, ["/usr/bin/nvidia-smi"]);
        assert_eq!(
            f.firmware.as_deref(),
            Some("/usr/lib/firmware/nvidia/535.104.05")
        );
        assert_eq!(
            control_nodes(t.path()),
            ["/dev/nvidiactl", "/dev/nvidia-uvm"]
        );

        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            driver_files(empty.path(), "", Some("/usr/bin")),
            DriverFiles::default()
        );
    }

    /// A driver kept in a tree of its own, as some GPU hosts have it: the
    /// libraries in /usr/local/nvidia/lib64 and the tools in its `bin`,
    /// where /usr/bin/nvidia-smi is a wrapper script that runs them.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn tools_beside_the_libraries_on_path_and_never_a_script() {
        let t = tempfile::tempdir().unwrap();
        let w = |p: &str, s: &str| {
            let p = t.path().join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        };
        w("usr/local/nvidia/lib64/libcuda.so.1", ELF);
        w("usr/local/nvidia/bin/nvidia-smi", ELF);
        w(
            "usr/bin/nvidia-smi",
            "#!/bin/sh\nexec /usr/local/nvidia/bin/nvidia-smi \"$@\"\n",
        );
        w("opt/tools/nvidia-debugdump", ELF);
        w("opt/tools/nvidia-persistenced", "");
        w("usr/local/nvidia/bin/nvidia-persistenced", ELF);
        let ldconfig = "\tlibcuda.so.1 (libc6,x86-64) => /usr/local/nvidia/lib64/libcuda.so.1\n";
        let f = driver_files(t.path(), ldconfig, Some("relative:/opt/tools/:/usr/bin"));
        assert_eq!(
            f.tools,
            [
                "/usr/local/nvidia/bin/nvidia-smi",
                "/opt/tools/nvidia-debugdump",
                "/usr/local/nvidia/bin/nvidia-persistenced",
            ],
            "PATH before the libraries' tree, an empty file and a script skipped"
        );
        // Without PATH: the tree beside the libraries still.
        let f = driver_files(t.path(), ldconfig, None);
        assert_eq!(
            f.tools,
            [
                "/usr/local/nvidia/bin/nvidia-smi",
                "/usr/local/nvidia/bin/nvidia-persistenced",
            ]
        );
    }

    #[test]
    fn open_kernel_module_version() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("proc/driver/nvidia");
        fs::create_dir_all(&p).unwrap();
        fs::write(
            p.join("version"),
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\n",
        )
        .unwrap();
        assert_eq!(driver_version(t.path()).as_deref(), Some("550.54.14"));
    }
}
