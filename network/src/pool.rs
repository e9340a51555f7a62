//! Network namespaces made ahead of time, off the start path. A slot is a
//! namespace bound under `DATA/netns/` with loopback up and, for bridge
//! networks, a veth pair (`eth0` inside, down, no address; the other end in
//! the daemon's namespace, down, on no bridge). One thread of its own makes
//! them (creating a namespace switches the *thread's* namespace, so this is
//! never done on a tokio worker and never by forking the daemon), keeps
//! each kind topped up to its target, and cleans returned slots for reuse.
use crate::error::{NetError, Result};
use crate::link;
use crate::names::{Names, random_hex};
use crate::rtnl::Rtnl;
use quilt_runtime::netns;
use std::collections::VecDeque;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// With or without a veth pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Loopback only (`--network none`).
    Plain,
    /// Loopback and `eth0` (bridge networks).
    Veth,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Plain => 'p',
            Kind::Veth => 'v',
        }
    }

    fn index(self) -> usize {
        match self {
            Kind::Plain => 0,
            Kind::Veth => 1,
        }
    }

    /// The kind of a slot's id (its first letter).
    pub fn of_id(id: &str) -> Option<Kind> {
        match id.as_bytes().first() {
            Some(b'p') => Some(Kind::Plain),
            Some(b'v') => Some(Kind::Veth),
            _ => None,
        }
    }
}

/// One namespace of the pool, or of a container.
#[derive(Debug)]
pub struct Slot {
    /// `p<hex>` or `v<hex>`: its file is `DATA/netns/<id>`.
    pub id: String,
    pub kind: Kind,
    pub path: PathBuf,
    /// An rtnetlink socket inside it (Veth only: `eth0` is configured when
    /// a container takes it and cleaned when it comes back; a plain slot
    /// needs none, and quiltd keeps no descriptor per such container).
    pub(crate) rt: Option<Rtnl>,
    /// `eth0`'s index inside it (Veth).
    pub(crate) eth0: u32,
    /// The daemon-side end of its veth pair (Veth).
    pub veth: Option<String>,
    /// The address given to `eth0` while a container has it.
    pub(crate) addr: Option<(Ipv4Addr, u8)>,
}

type Job = Box<dyn FnOnce(&Worker) + Send>;

/// What the pool's thread owns.
#[derive(Debug)]
pub(crate) struct Worker {
    dir: PathBuf,
    names: Names,
    daemon_ns: File,
}

#[derive(Debug)]
struct Shared {
    free: Mutex<[VecDeque<Slot>; 2]>,
    targets: [AtomicUsize; 2],
}

impl Shared {
    fn target(&self, kind: Kind) -> usize {
        self.targets[kind.index()].load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct Pool {
    tx: Mutex<mpsc::Sender<Job>>,
    shared: Arc<Shared>,
    dir: PathBuf,
}

impl Pool {
    /// Starts the pool's thread; `targets`: slots kept ready (Plain, Veth).
    pub fn start(dir: &Path, names: &Names, daemon_ns: File, targets: [usize; 2]) -> Result<Pool> {
        std::fs::create_dir_all(dir).map_err(NetError::io(format!("create {}", dir.display())))?;
        let shared = Arc::new(Shared {
            free: Mutex::new([VecDeque::new(), VecDeque::new()]),
            targets: targets.map(AtomicUsize::new),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let worker = Worker {
            dir: dir.to_path_buf(),
            names: names.clone(),
            daemon_ns,
        };
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("quilt-netns".into())
            .spawn(move || run(worker, rx, sh))
            .map_err(NetError::io("starting the network namespace thread"))?;
        Ok(Pool {
            tx: Mutex::new(tx),
            shared,
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` on the pool's thread and waits for it (blocking: call off
    /// the reactor).
    pub(crate) fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Worker) -> T + Send + 'static,
    ) -> Result<T> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |w| {
            let _ = rtx.send(f(w));
        });
        self.tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| NetError::Invalid("the network namespace thread has stopped".into()))?;
        rrx.recv()
            .map_err(|_| NetError::Invalid("the network namespace thread has stopped".into()))
    }

    /// Wakes the thread to top the pool up.
    fn poke(&self) {
        let _ = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Box::new(|_| {}));
    }

    /// A ready slot of `kind`: from the pool, or made now when it is empty.
    pub fn take(&self, kind: Kind) -> Result<Slot> {
        match self.try_take(kind) {
            Some(s) => Ok(s),
            None => self.call(move |w| w.create(kind))?,
        }
    }

    /// A ready slot of `kind` if the pool has one (None: `take` would make
    /// one). Never blocks; the pool is refilled either way.
    pub fn try_take(&self, kind: Kind) -> Option<Slot> {
        let ready =
            self.shared.free.lock().unwrap_or_else(|p| p.into_inner())[kind.index()].pop_front();
        self.poke();
        ready
    }

    /// Keeps `n` slots of `kind` ready from now on.
    pub fn set_target(&self, kind: Kind, n: usize) {
        self.shared.targets[kind.index()].store(n, Ordering::Relaxed);
        self.poke();
    }

    /// How many slots of `kind` are ready.
    pub fn ready(&self, kind: Kind) -> usize {
        self.shared.free.lock().unwrap_or_else(|p| p.into_inner())[kind.index()].len()
    }

    /// Takes back a slot a container no longer uses (its veth end already
    /// off its bridge): cleaned and kept, or destroyed when `tainted` (its
    /// container could change it: CAP_NET_ADMIN) or twice the target is
    /// ready (see `recycle`). In the background; never on anyone's start
    /// path.
    pub fn give_back(&self, slot: Slot, tainted: bool) {
        let sh = self.shared.clone();
        let job: Job = Box::new(move |w| w.recycle(&sh, slot, tainted));
        let _ = self.tx.lock().unwrap_or_else(|p| p.into_inner()).send(job);
    }

    /// Reopens a slot a container has (after a restart of the daemon).
    pub fn reopen(&self, id: &str) -> Result<Slot> {
        let id = id.to_owned();
        self.call(move |w| w.reopen(&id))?
    }

    /// The ids of the slot files present.
    pub fn on_disk(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| Kind::of_id(n).is_some())
            .collect()
    }

    /// Destroys the free slots and makes no more (shutdown). The free list
    /// is emptied on the pool's thread, after the slot it may be making
    /// has joined it: taken before, that slot was left behind.
    pub fn drain(&self) {
        for t in &self.shared.targets {
            t.store(0, Ordering::Relaxed);
        }
        let sh = self.shared.clone();
        let _ = self.call(move |w| {
            let all: Vec<Slot> = {
                let mut f = sh.free.lock().unwrap_or_else(|p| p.into_inner());
                f.iter_mut().flat_map(|q| q.drain(..)).collect()
            };
            for s in all {
                w.destroy(s);
            }
        });
    }
}

fn run(w: Worker, rx: mpsc::Receiver<Job>, sh: Arc<Shared>) {
    loop {
        match rx.try_recv() {
            Ok(job) => {
                job(&w);
                continue;
            }
            Err(mpsc::TryRecvError::Disconnected) => return,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        let short = {
            let f = sh.free.lock().unwrap_or_else(|p| p.into_inner());
            [Kind::Veth, Kind::Plain]
                .into_iter()
                .find(|k| f[k.index()].len() < sh.target(*k))
        };
        if let Some(kind) = short {
            match w.create(kind) {
                Ok(s) => {
                    sh.free.lock().unwrap_or_else(|p| p.into_inner())[kind.index()].push_back(s)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot make a network namespace for the pool");
                    // Try again on the next request rather than spinning.
                    match rx.recv() {
                        Ok(job) => job(&w),
                        Err(_) => return,
                    }
                }
            }
            continue;
        }
        match rx.recv() {
            Ok(job) => job(&w),
            Err(_) => return,
        }
    }
}

impl Worker {
    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// A new slot of `kind` (this thread moves into its namespace).
    pub(crate) fn create(&self, kind: Kind) -> Result<Slot> {
        // Six hex digits (the veth names are short): with thousands of
        // namespaces a drawn id is taken now and then, so another is drawn.
        let mut tries = 0;
        let (id, path) = loop {
            let id = format!("{}{}", kind.letter(), random_hex(6));
            let path = self.path(&id);
            match netns::create_bound(&path) {
                Ok(()) => break (id, path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 8 => {
                    tries += 1;
                }
                Err(e) => {
                    return Err(NetError::io(format!(
                        "new network namespace {}",
                        path.display()
                    ))(e));
                }
            }
        };
        match self.fill(kind, &id, &path) {
            Ok(s) => Ok(s),
            Err(e) => {
                if kind == Kind::Veth {
                    self.delete_veth(&self.names.veth(&id[1..]));
                }
                let _ = netns::remove_bound(&path);
                Err(e)
            }
        }
    }

    fn fill(&self, kind: Kind, id: &str, path: &Path) -> Result<Slot> {
        let mut rt = Rtnl::open()?;
        link::set_link(&mut rt, "lo", Some(true), None)?;
        let mut slot = Slot {
            id: id.to_owned(),
            kind,
            path: path.to_path_buf(),
            rt: None,
            eth0: 0,
            veth: None,
            addr: None,
        };
        if kind == Kind::Veth {
            let outer = self.names.veth(&id[1..]);
            link::create_veth(&mut rt, "eth0", &outer, self.daemon_ns.as_fd())?;
            slot.veth = Some(outer);
            slot.eth0 = link::index_of(&mut rt, "eth0")?
                .ok_or_else(|| NetError::Invalid("eth0 vanished from a new namespace".into()))?;
            slot.rt = Some(rt);
        }
        Ok(slot)
    }

    fn reopen(&self, id: &str) -> Result<Slot> {
        let kind =
            Kind::of_id(id).ok_or_else(|| NetError::Invalid(format!("bad slot id {id:?}")))?;
        let path = self.path(id);
        if !netns::is_bound(&path) {
            return Err(NetError::Invalid(format!(
                "{} is not a network namespace",
                path.display()
            )));
        }
        let (rt, eth0, veth) = if kind == Kind::Veth {
            let f = netns::open(&path).map_err(NetError::io(format!("open {}", path.display())))?;
            netns::enter(&f).map_err(NetError::io(format!("enter {}", path.display())))?;
            let mut rt = Rtnl::open()?;
            let eth0 = link::index_of(&mut rt, "eth0")?
                .ok_or_else(|| NetError::Invalid(format!("slot {id} has no eth0")))?;
            (Some(rt), eth0, Some(self.names.veth(&id[1..])))
        } else {
            (None, 0, None)
        };
        Ok(Slot {
            id: id.to_owned(),
            kind,
            path,
            rt,
            eth0,
            veth,
            addr: None,
        })
    }

    /// Keeps a returned slot while fewer than twice its kind's target are
    /// ready. The target is made up right after each take, so a pool kept
    /// at the target exactly would destroy every slot its container gives
    /// back and make a new one for every start: at a steady pace of starts
    /// and removals the slots now go round, and none is made or destroyed
    /// (each costs the kernel a namespace's set-up or teardown, which
    /// walks every namespace on the host).
    fn recycle(&self, sh: &Shared, slot: Slot, tainted: bool) {
        let keep = sh.target(slot.kind).saturating_mul(2);
        self.recycle_below(sh, slot, tainted, keep);
    }

    /// `recycle`, keeping the slot only while fewer than `keep` are ready.
    fn recycle_below(&self, sh: &Shared, mut slot: Slot, tainted: bool, keep: usize) {
        let full =
            sh.free.lock().unwrap_or_else(|p| p.into_inner())[slot.kind.index()].len() >= keep;
        if tainted || full {
            self.destroy(slot);
            return;
        }
        if slot.kind == Kind::Veth {
            let mut msgs = vec![(link::down_msg(slot.eth0), 0)];
            if let Some((a, p)) = slot.addr.take() {
                msgs.push(link::del_address_msg(slot.eth0, a, p));
            }
            let cleaned = match slot.rt.as_mut() {
                Some(rt) => rt.batch(msgs).map_err(|(_, e)| e.to_string()),
                None => Err("it has no netlink socket".to_owned()),
            };
            if let Err(e) = cleaned {
                tracing::warn!(slot = %slot.id, error = %e, "cannot clean a network namespace; it is destroyed");
                self.destroy(slot);
                return;
            }
        }
        sh.free.lock().unwrap_or_else(|p| p.into_inner())[slot.kind.index()].push_back(slot);
    }

    fn delete_veth(&self, name: &str) {
        let r = netns::enter(&self.daemon_ns)
            .map_err(NetError::io("enter the daemon's namespace"))
            .and_then(|()| Rtnl::open())
            .and_then(|mut rt| link::delete_link(&mut rt, name));
        if let Err(e) = r {
            tracing::warn!(link = %name, error = %e, "cannot delete a veth pair");
        }
    }

    /// Deletes a slot: its veth pair, then its namespace's file.
    pub(crate) fn destroy(&self, slot: Slot) {
        if let Some(v) = &slot.veth {
            self.delete_veth(v);
        }
        let path = slot.path.clone();
        drop(slot);
        if let Err(e) = netns::remove_bound(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a network namespace");
        }
    }

    /// Deletes a slot known only by its id (its file, its veth).
    pub(crate) fn destroy_id(&self, id: &str) {
        if Kind::of_id(id) == Some(Kind::Veth) {
            self.delete_veth(&self.names.veth(&id[1..]));
        }
        let path = self.path(id);
        if let Err(e) = netns::remove_bound(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a network namespace");
        }
    }
}

impl Pool {
    /// Start-up: slots on disk that no container has are cleaned and kept
    /// (up to the targets, not twice: whether a container could change one
    /// before a crash is not known) or destroyed.
    pub fn adopt_unused(&self, unused: Vec<String>) {
        let sh = self.shared.clone();
        let _ = self.call(move |w| {
            // Slots this thread made meanwhile are in the pool already
            // (jobs and making slots are serialised on this thread).
            let pooled: Vec<String> = {
                let f = sh.free.lock().unwrap_or_else(|p| p.into_inner());
                f.iter().flatten().map(|s| s.id.clone()).collect()
            };
            for id in unused.into_iter().filter(|id| !pooled.contains(id)) {
                match w.reopen(&id) {
                    Ok(mut s) => {
                        if let Some(v) = s.veth.clone() {
                            // Off any bridge, down: as a fresh slot's.
                            let ok = netns::enter(&w.daemon_ns)
                                .map_err(NetError::io("enter the daemon's namespace"))
                                .and_then(|()| Rtnl::open())
                                .and_then(|mut rt| link::set_link(&mut rt, &v, Some(false), Some(0)));
                            if ok.is_err() {
                                w.destroy(s);
                                continue;
                            }
                            // Whatever address it had goes with a flush.
                            let Some(rt) = s.rt.as_mut() else {
                                w.destroy(s);
                                continue;
                            };
                            let addrs = rt.dump(
                                netlink_packet_route::RouteNetlinkMessage::GetAddress(Default::default()),
                                "listing addresses",
                            );
                            let mut msgs = vec![(link::down_msg(s.eth0), 0)];
                            if let Ok(addrs) = addrs {
                                for m in addrs {
                                    if let netlink_packet_route::RouteNetlinkMessage::NewAddress(a) = m
                                        && a.header.index == s.eth0
                                    {
                                        msgs.push((netlink_packet_route::RouteNetlinkMessage::DelAddress(a), 0));
                                    }
                                }
                            }
                            if rt.batch(msgs).is_err() {
                                w.destroy(s);
                                continue;
                            }
                        }
                        let keep = sh.target(s.kind);
                        w.recycle_below(&sh, s, false, keep);
                    }
                    Err(e) => {
                        tracing::info!(slot = %id, error = %e, "removing a leftover network namespace");
                        w.destroy_id(&id);
                    }
                }
            }
        });
    }
}
