//! A container's `/etc/hosts` and `/etc/resolv.conf`: written into its
//! directory at each start and bind mounted read-only by the shim. On a
//! bridge network resolv.conf names its network's resolver, which answers
//! the names of the network's containers, and /etc/hosts only the
//! container's own (as docker's user-defined networks do). A container
//! given `--dns` servers (or a resolv.conf) of its own does not ask that
//! resolver: its
//! /etc/hosts names every other container of the network instead, and is
//! rewritten in place (the same inode, so its mount sees it) when one
//! starts, is renamed or is removed. Only those few files are rewritten: every
//! container's listing every other one made each start on a network cost
//! time in the square of its size.
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, Network};
use quilt_network::files;
use quilt_runtime::mounts::{MountConfig, MountKind};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Held by whoever renders and writes a file that another task may
/// rewrite at the same time (the followers' files, and a renamed
/// container's own): one at a time, so the file written last holds the
/// latest rows, whole (two truncating writes at once could leave the
/// start of one followed by the end of the other). A task holding it
/// waits for no container's lifecycle lock.
static REWRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The container's address as its own names resolve to (its peer's when
/// it shares one).
async fn own_address(shared: &Arc<Shared>, c: &Container) -> Result<Option<Ipv4Addr>> {
    Ok(match c.network {
        Network::Bridge => c.net.address,
        Network::Container => shared
            .store()
            .get(&c.net.peer)
            .await?
            .and_then(|p| p.net.address),
        _ => None,
    })
}

/// The resolver of `c`'s bridge network (its gateway), or of the network
/// of the container whose namespace it shares.
async fn network_resolver(shared: &Arc<Shared>, c: &Container) -> Result<Option<Ipv4Addr>> {
    Ok(match c.network {
        Network::Bridge => c.net.gateway,
        Network::Container => shared
            .store()
            .get(&c.net.peer)
            .await?
            .filter(|p| p.network == Network::Bridge)
            .and_then(|p| p.net.gateway),
        _ => None,
    })
}

/// The other containers of `c`'s network, by name, on their addresses.
async fn siblings(shared: &Arc<Shared>, c: &Container) -> Result<Vec<files::HostEntry>> {
    let network = match c.network {
        Network::Bridge => c.net.network.clone(),
        Network::Container => match shared.store().get(&c.net.peer).await? {
            Some(p) if p.network == Network::Bridge => p.net.network,
            _ => return Ok(Vec::new()),
        },
        _ => return Ok(Vec::new()),
    };
    let own = if c.network == Network::Container {
        &c.net.peer
    } else {
        &c.id
    };
    Ok(shared
        .store()
        .network_members(&network)
        .await?
        .into_iter()
        .filter(|(id, _, _)| id != own)
        .map(|(_, name, ip)| files::HostEntry { name, ip })
        .collect())
}

/// Whether `c` asks name servers other than its network's resolver: its
/// own `--dns` servers, or a resolv.conf of its own mounted over the one
/// written for it (`hosts_followers` finds the same containers).
fn asks_other_servers(c: &Container) -> bool {
    !c.net.dns.is_empty() || c.mounts_at("/etc/resolv.conf")
}

async fn hosts_text(shared: &Arc<Shared>, c: &Container) -> Result<String> {
    let addr = own_address(shared, c).await?;
    // The network's resolver answers its names; a container that asks
    // other servers finds them here instead.
    let mut extra = match asks_other_servers(c) {
        false => Vec::new(),
        true => siblings(shared, c).await?,
    };
    extra.extend(c.net.extra_hosts.iter().cloned());
    Ok(files::hosts(&[&c.hostname, &c.name], addr, &extra))
}

/// Replaces the contents of `path` in place (never through a symlink).
fn rewrite(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc_o_nofollow())
        .open(path)?;
    f.write_all(text.as_bytes())
}

fn libc_o_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// A start's files, rendered (`render`), for `Files::write` to put in the
/// container's directory.
#[derive(Debug)]
pub(crate) struct Files {
    dir: PathBuf,
    /// None: the container mounts its own /etc/hosts.
    hosts: Option<String>,
    /// None: the container mounts its own /etc/resolv.conf.
    resolv: Option<Resolv>,
    /// Its hostname, as /etc/hostname says it (docker's habit); None: the
    /// container mounts its own.
    hostname: Option<String>,
}

/// What a start's resolv.conf is made from.
#[derive(Debug)]
struct Resolv {
    /// Its bridge network's resolver.
    resolver: Option<Ipv4Addr>,
    host_net: bool,
    dns: Vec<Ipv4Addr>,
}

impl Files {
    /// Writes the files (blocking: on the blocking pool, or the launch's
    /// own blocking thread); returns their mounts.
    pub fn write(self) -> Result<Vec<MountConfig>> {
        let io = |what: String| move |e: std::io::Error| EngineError::internal(&what, e);
        let dir = self.dir;
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        let dir =
            std::fs::canonicalize(&dir).map_err(io(format!("canonicalize {}", dir.display())))?;
        let mut mounts = Vec::new();
        let mut put = |file: &str, target: &str, text: String| -> Result<()> {
            let p = dir.join(file);
            match rewrite(&p, &text) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::write(&p, text).map_err(io(format!("write {}", p.display())))?
                }
                Err(e) => return Err(io(format!("write {}", p.display()))(e)),
            }
            mounts.push(MountConfig {
                target: target.into(),
                read_only: true,
                kind: MountKind::Bind {
                    source: p,
                    create: false,
                },
            });
            Ok(())
        };
        if let Some(text) = self.hosts {
            put("hosts", "/etc/hosts", text)?;
        }
        if let Some(r) = self.resolv {
            // `--dns` servers; else on a bridge network its resolver;
            // else the host's servers, loopback ones left out (a
            // container's loopback is its own).
            let text = match r.resolver {
                Some(gw) if r.dns.is_empty() => files::network_resolv_conf(gw),
                _ => {
                    let (servers, search) = if r.dns.is_empty() {
                        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                        files::host_nameservers(&host, r.host_net)
                    } else {
                        (r.dns.iter().map(|d| d.to_string()).collect(), Vec::new())
                    };
                    files::resolv_conf(&servers, &search)
                }
            };
            put("resolv.conf", "/etc/resolv.conf", text)?;
        }
        if let Some(name) = self.hostname {
            put("hostname", "/etc/hostname", format!("{name}\n"))?;
        }
        Ok(mounts)
    }
}

/// Renders the files of a start of `c` (see `Files`).
async fn render(shared: &Arc<Shared>, c: &Container) -> Result<Files> {
    let hosts = match c.mounts_at("/etc/hosts") {
        true => None,
        false => Some(hosts_text(shared, c).await?),
    };
    let resolv = match c.mounts_at("/etc/resolv.conf") {
        true => None,
        false => Some(Resolv {
            resolver: network_resolver(shared, c).await?,
            host_net: c.network == Network::Host,
            dns: c.net.dns.clone(),
        }),
    };
    Ok(Files {
        dir: shared.cfg().container_dir(&c.id),
        hosts,
        resolv,
        hostname: (!c.mounts_at("/etc/hostname")).then(|| c.hostname.clone()),
    })
}

/// The files of a start, rendered for the caller to write on the blocking
/// thread it goes to anyway (a cold start's launch, an adoption's
/// checks): one trip to the blocking pool less on the start's path.
/// Ok(Err) when they were written now instead, with their mounts: a
/// container that asks other name servers lists its siblings, whose
/// starts may rewrite its file meanwhile, so its file is written under the
/// lock now.
pub(crate) async fn for_launch(
    shared: &Arc<Shared>,
    c: &Container,
) -> Result<std::result::Result<Files, Vec<MountConfig>>> {
    match asks_other_servers(c) {
        true => write(shared, c).await.map(Err),
        false => render(shared, c).await.map(Ok),
    }
}

/// Writes the files for a start; returns their mounts (none where the
/// container mounts its own file there).
pub(crate) async fn write(shared: &Arc<Shared>, c: &Container) -> Result<Vec<MountConfig>> {
    // A follower's file may be rewritten by a sibling's start meanwhile.
    let _rewrites = match asks_other_servers(c) {
        true => Some(REWRITES.lock().await),
        false => None,
    };
    let files = render(shared, c).await?;
    tokio::task::spawn_blocking(move || files.write()).await?
}

/// Rewrites the /etc/hosts of the containers (but `except`) that list the
/// containers of `network` (see the module's comment). Failures are
/// logged: a stale entry is not worth failing a start or a removal for.
pub(crate) async fn refresh(shared: &Arc<Shared>, network: &str, except: &str) {
    let _rewrites = REWRITES.lock().await;
    refresh_locked(shared, network, except).await;
}

/// After a rename of `c` (the caller holds its lifecycle lock, so no start
/// of it writes its files meanwhile): its own /etc/hosts, which names it,
/// and on a bridge network the followers' files, which name it too.
pub(crate) async fn renamed(shared: &Arc<Shared>, c: &Container) {
    let _rewrites = REWRITES.lock().await;
    rewrite_hosts_of(shared, &c.id).await;
    if c.network == Network::Bridge {
        refresh_locked(shared, &c.net.network, &c.id).await;
    }
}

async fn refresh_locked(shared: &Arc<Shared>, network: &str, except: &str) {
    let ids = match shared.store().hosts_followers(network).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(network, error = %e, "cannot list the network's containers");
            return;
        }
    };
    for id in ids.iter().filter(|id| *id != except) {
        rewrite_hosts_of(shared, id).await;
    }
}

/// Renders container `id`'s /etc/hosts from its row as stored and writes
/// it over the file its mount shows; a container without one (never
/// started, or its own file mounted there) is left alone.
async fn rewrite_hosts_of(shared: &Arc<Shared>, id: &str) {
    let Ok(Some(c)) = shared.store().get(id).await else {
        return;
    };
    if c.mounts_at("/etc/hosts") {
        return;
    }
    let path = shared.cfg().container_dir(&c.id).join("hosts");
    let text = match hosts_text(shared, &c).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(container = %c.id, error = %e, "cannot render /etc/hosts");
            return;
        }
    };
    let r = tokio::task::spawn_blocking(move || match rewrite(&path, &text) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    })
    .await;
    if let Ok(Err(e)) = r {
        tracing::warn!(container = %id, error = %e, "cannot rewrite /etc/hosts");
    }
}
