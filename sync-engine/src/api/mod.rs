//! The verbs the gRPC server calls, one file per resource: each checks its
//! input and the state machine, then acts through the store and the
//! services. Exec and logs have folders of their own (`exec/`, `logs/`).
pub(crate) mod attach;
pub(crate) mod containers;
pub(crate) mod copy;
pub(crate) mod exec;
pub(crate) mod image_io;
pub(crate) mod images;
pub(crate) mod lifetime;
pub(crate) mod logs;
pub(crate) mod networks;
pub(crate) mod pause;
pub(crate) mod pool;
pub(crate) mod prune;
pub(crate) mod pull;
pub(crate) mod stats;
pub(crate) mod system;
pub(crate) mod volumes;
