//! A named volume, as the API sees it.
use std::collections::BTreeMap;

/// A named volume and the containers that mount it.
#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub created_at_ns: i64,
    pub labels: BTreeMap<String, String>,
    pub used_by: Vec<String>,
}
