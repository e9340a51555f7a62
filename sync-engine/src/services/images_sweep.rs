//! At start-up: the image and layer directories nobody recorded are swept
//! away.
use crate::engine::Shared;
use crate::error::Result;

/// At start-up: deletes stored image directories that no image row and no
/// container names (left by a daemon that died between unpacking an import
/// and recording it).
pub(crate) async fn remove_unrecorded(shared: &Shared) -> Result<()> {
    let known = shared.store().known_image_ids().await?;
    let layers = shared.store().layer_digests().await?;
    let store = shared.images().clone();
    tokio::task::spawn_blocking(move || {
        let unrecorded: Vec<String> = store
            .stored_layers()
            .into_iter()
            .filter(|d| !layers.contains(d))
            .collect();
        if !unrecorded.is_empty() {
            match store.remove_layers(&unrecorded) {
                Ok(()) => tracing::info!(layers = unrecorded.len(), "removed unrecorded layers"),
                Err(e) => tracing::warn!(error = %e, "cannot remove unrecorded layers"),
            }
        }
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
