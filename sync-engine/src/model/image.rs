//! An image of the local store, as the API sees it.

/// An image row with its names and the number of containers using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// "sha256:<hex>".
    pub id: String,
    pub names: Vec<String>,
    pub size_bytes: u64,
    pub created_at_ns: i64,
    pub source: String,
    pub layers: Vec<String>,
    pub containers: u32,
}
