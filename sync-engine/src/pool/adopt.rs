//! A start that adopts the pooled container its create claimed (whose
//! namespace slot its change to `starting` recorded under its row): the
//! container's own network files are written into the pooled directory
//! (the same inodes its mounts show), and the config checked against the
//! pooled one (same shape) before the shim hands it to the waiting PID 1.
//! A create that starts readies all that while its row is inserted (see
//! `ready`; with names of its own, after the insert), and so does a start
//! while its row changes to `starting`. The config is handed over then
//! too, with its gate closed (`hand_over_gated`): PID 1 makes the
//! workload's last settings and waits before its execve until the write
//! has committed (`go`), as a cold start run ahead does. A write that
//! fails abandons it (`abandon`): the workload never runs, and the pooled
//! container is gone (a create refused so no longer gives it back to its
//! pool).
//!
//! The processes that will run the workload are the pooled ones, known
//! before the hand-over: the row is changed to `running` from the
//! hand-over (or, gated, from the gate's opening) to the shim's report
//! (the shim's checks and limits, then PID 1's last settings and execve,
//! or only the execve once gated: under a millisecond), as `runc start`
//! answers before its init has exec'd. The RUNNING event still waits for
//! the report that the workload was exec'd; a start that fails there
//! changes the row to `failed`, as any failed start does. Meanwhile kill
//! and exec wait for the start's end (see `Live::adopting`).
use super::Member;
use crate::engine::Shared;
use crate::error::Result as StoreResult;
use crate::model::{Container, now_ns};
use crate::services::starter::{Launched, launched};
use quilt_runtime::exitfile;
use quilt_runtime::spec::ContainerConfig;
use std::sync::Arc;

/// What a cold start leaves, or why the container did not start.
type Started = std::result::Result<Launched, (i32, String)>;

/// What came of an adoption: how the start ended and what the change of
/// its row to `running` answered (see `Store::set_running`); None: not
/// recorded yet (the caller records it from the report).
pub(crate) struct Adopted {
    pub started: Started,
    pub recorded: Option<StoreResult<bool>>,
}

/// An adoption readied for its hand-over: the config the pooled container
/// gets (its network files and image root added, checked against the
/// pooled shape, encoded), and the container.
pub(crate) struct Ready {
    member: Member,
    config: ContainerConfig,
    encoded: quilt_runtime::launch::Encoded,
}

/// Adopts `member` for `c` (`config`: what a cold start would run, before
/// its network). Ok: the config was handed over and this is how the start
/// ended (never to be tried again: the workload may have run). Err: why it
/// was not handed over; the pooled container is gone and the caller starts
/// `c` cold.
pub(crate) async fn adopt(
    shared: &Arc<Shared>,
    c: &Container,
    member: Member,
    config: ContainerConfig,
) -> Result<Adopted, String> {
    let ready = ready(shared, c, member, config, false).await?;
    hand_over(shared, c, ready).await
}

/// Readies the adoption of `member` for `c` (see `adopt`): its network
/// files (written again into the pooled container's directory when `c`
/// has names of its own), its image's root, the shape check, the exit
/// file cleared and the config encoded. Nothing reaches the pooled
/// container's processes; a create readies it while its row is inserted
/// (with the pooled container's own names only), and a start while its
/// row changes, `gated` for `hand_over_gated`. Err: why not; the pooled
/// container is gone.
pub(crate) async fn ready(
    shared: &Arc<Shared>,
    c: &Container,
    member: Member,
    mut config: ContainerConfig,
    gated: bool,
) -> Result<Ready, String> {
    config.gated = gated;
    let prepared = async {
        config.netns = shared.net().netns_path(&c.id);
        if config.netns.is_none() {
            return Err("its network namespace is gone".to_string());
        }
        // Its files say its name and hostname: written again only when the
        // creating call chose others than the pooled container's (its own
        // short id, as the defaults are); then on the blocking thread
        // below, with the rest (one trip to the blocking pool).
        if c.name == member.name && c.hostname == member.hostname {
            config.mounts.extend(member.net_files.iter().cloned());
            return Ok(None);
        }
        match crate::network::hosts_for_launch(shared, c).await {
            Ok(Ok(files)) => Ok(Some(files)),
            Ok(Err(written)) => {
                config.mounts.extend(written);
                Ok(None)
            }
            Err(e) => Err(e.to_string()),
        }
    }
    .await;
    let files = match prepared {
        Ok(files) => files,
        Err(e) => {
            // Its namespace stays the container's (the cold start reuses it).
            member.end().await;
            return Err(e);
        }
    };
    let images = shared.images().clone();
    let image = c.image.clone();
    tokio::task::spawn_blocking(move || {
        let discard = |member: Member, why: String| {
            member.prepared.discard();
            Err(why)
        };
        if let Some(files) = files {
            match files.write() {
                Ok(mounts) => config.mounts.extend(mounts),
                Err(e) => return discard(member, e.to_string()),
            }
        }
        config.image_rootfs = match images.prepare(&image) {
            Ok(p) => p,
            Err(e) => return discard(member, e.to_string()),
        };
        if !member.prepared.config.adoptable_by(&config) {
            return discard(member, "not of the pooled shape".into());
        }
        if let Err(e) = exitfile::clear(&config.dir) {
            return discard(member, e.to_string());
        }
        match quilt_runtime::launch::Encoded::new(&config) {
            Ok(encoded) => Ok(Ready {
                member,
                config,
                encoded,
            }),
            Err(e) => discard(member, e.to_string()),
        }
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Hands a readied adoption over to its pooled container and waits for the
/// start (see `adopt`).
pub(crate) async fn hand_over(
    shared: &Arc<Shared>,
    c: &Container,
    ready: Ready,
) -> Result<Adopted, String> {
    let Ready {
        member,
        config,
        encoded,
    } = ready;
    let (pid, shim_pid, shim_start_time) = (
        member.prepared.pid,
        member.prepared.shim_pid,
        member.prepared.shim_start_time,
    );
    let handed = member
        .prepared
        .send(Ok(encoded))
        .await
        .map_err(|e| e.to_string())?;
    // Handed over: from here on the start is never tried again.
    let waited = async { launched(handed.wait().await, config).await };
    Ok(recorded_while(shared, c, (pid, shim_pid, shim_start_time), waited).await)
}

/// The start `waited` reads the report of, with the row changed to
/// `running` meanwhile (`ids`: the pooled processes' pid, shim pid and
/// shim start time).
async fn recorded_while(
    shared: &Arc<Shared>,
    c: &Container,
    (pid, shim_pid, shim_start_time): (i32, i32, u64),
    waited: impl std::future::Future<Output = Started>,
) -> Adopted {
    // Without its start time (its read failed at preparation) the row
    // would not identify the supervisor: recorded from the report instead.
    let recorded = async {
        match shim_start_time {
            0 => None,
            _ => Some(
                shared
                    .store()
                    .set_running(&c.id, pid, shim_pid, shim_start_time, now_ns())
                    .await,
            ),
        }
    };
    let (started, recorded) = tokio::join!(waited, recorded);
    Adopted { started, recorded }
}

/// An adoption handed over with its gate closed (`hand_over_gated`): its
/// PID 1 waits before its execve until `go`, or `abandon`. Dropped
/// instead (only a panic does), it is abandoned on a thread of its own;
/// its namespace is then kept until the next daemon's start-up.
pub(crate) struct Handed {
    gated: quilt_runtime::launch::Gated,
    config: ContainerConfig,
    /// The container's id (its network namespace's key).
    id: String,
    ids: (i32, i32, u64),
}

/// Hands a readied adoption (`ready` with `gated`) over with its gate
/// closed, while its row is written. Err: not handed over; the pooled
/// container is gone and nothing of the adopter ran.
pub(crate) async fn hand_over_gated(ready: Ready) -> Result<Handed, String> {
    let Ready {
        member,
        config,
        encoded,
    } = ready;
    let p = &member.prepared;
    let ids = (p.pid, p.shim_pid, p.shim_start_time);
    let id = member.id.clone();
    let gated = member
        .prepared
        .send_gated(encoded, &config)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Handed {
        gated,
        config,
        id,
        ids,
    })
}

/// Lets a gated adoption's workload go (its row is in) and waits for the
/// start, with the row changed to `running` meanwhile, as `hand_over`.
pub(crate) async fn go(shared: &Arc<Shared>, c: &Container, handed: Handed) -> Adopted {
    let Handed {
        gated, config, ids, ..
    } = handed;
    let waited = async { launched(gated.go().await, config).await };
    recorded_while(shared, c, ids, waited).await
}

/// Abandons a gated adoption: its workload never runs; the pooled
/// container's processes, cgroup and directory are ended, and its network
/// namespace given back (tainted) when `release` (no row has it), then
/// the pool refilled.
pub(crate) async fn abandon(shared: &Arc<Shared>, handed: Handed, release: bool) {
    let net = shared.net().clone();
    let Handed { gated, id, .. } = handed;
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = gated.abandon() {
            tracing::warn!(container = %id, error = %e, "abandoning a pooled container's adoption");
        }
        if release && let Err(e) = net.release(&id, true) {
            tracing::warn!(container = %id, error = %e, "cannot release a pooled container's namespace");
        }
    })
    .await;
    drop(shared.pool().refill_after());
}
