//! Engine model <-> quilt.v1 wire types: every conversion in one place,
//! one file per service. The handlers in `services/` only decode, call the
//! engine and encode.
mod containers;
mod exec;
mod images;
mod listing;
mod networks;
mod pages;
mod pull;
mod requester;
mod rows;
mod stats;
mod volumes;

pub use containers::*;
pub use exec::*;
pub use images::*;
pub use listing::*;
pub use networks::{egress, egress_from, network};
pub use pages::{ListBody, MIN_KEPT, PageCache, PageKey};
pub use pull::*;
pub use requester::*;
pub use rows::RowCache;
pub use stats::*;
pub use volumes::*;

/// An optional string field: proto3 sends "" for unset.
pub fn non_empty<S: AsRef<str>>(s: S) -> Option<S> {
    (!s.as_ref().is_empty()).then_some(s)
}

pub fn ts(ns: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ns.div_euclid(1_000_000_000),
        nanos: ns.rem_euclid(1_000_000_000) as i32,
    }
}

/// A wire timestamp as unix nanoseconds (saturating far outside i64's range).
pub fn ts_ns(t: &prost_types::Timestamp) -> i64 {
    (t.seconds as i128 * 1_000_000_000 + t.nanos as i128).clamp(i64::MIN as i128, i64::MAX as i128)
        as i64
}
