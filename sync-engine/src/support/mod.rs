//! Small pieces shared across the engine.
pub(crate) mod env;
pub(crate) mod fswatch;
pub(crate) mod ids;
pub(crate) mod layers;
pub(crate) mod lock;
pub(crate) mod signals;
pub(crate) mod trash;
