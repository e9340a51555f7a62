//! What runs in the background: the starter takes queued starts, the
//! monitor records exits (woken by pidfds), cleanup removes, reconciliation
//! makes the recorded state true at start-up, the image sweep drops
//! unrecorded image directories, the restarter applies restart policies,
//! the lifetimes service TTLs and idle timeouts.
pub(crate) mod cleanup;
pub(crate) mod images_sweep;
pub(crate) mod lifetimes;
pub(crate) mod monitor;
pub(crate) mod reconcile;
pub(crate) mod restarter;
pub(crate) mod starter;
