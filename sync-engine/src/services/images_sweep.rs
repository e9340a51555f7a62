//! At start-up: the image directories nobody recorded are swept away.
use crate::engine::Shared;
use crate::error::Result;

/// At start-up: deletes stored image directories that no image row and no
/// container names (left by a daemon that died between unpacking an import
/// and recording it).
pub(crate) async fn remove_unrecorded(shared: &Shared) -> Result<()> {
    let known = shared.store().known_image_ids().await?;
    let store = shared.images().clone();
    tokio::task::spawn_blocking(move || {
        for id in store.stored_ids() {
            if !known.contains(&id) {
                match store.remove_stored(&id) {
                    Ok(()) => tracing::info!(image = %id, "removed an unrecorded image directory"),
                    Err(e) => tracing::warn!(image = %id, error = %e, "cannot remove an unrecorded image directory"),
                }
            }
        }
    })
    .await?;
    Ok(())
}
