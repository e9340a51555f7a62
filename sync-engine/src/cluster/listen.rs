//! What the other nodes tell this one. Starts placed on this node: a
//! notification on the start channel names the node; this node then takes
//! its queued starts from the table (after a lost connection, when
//! notifications may have been missed, it listens again and then takes
//! them; and at each lease renewal, in case a notification went astray). Events of the
//! other nodes' containers: published here as this node's own are.
use crate::engine::Shared;
use crate::store::{EVENT_CHANNEL, START_CHANNEL};
use std::sync::Arc;
use std::time::Duration;

/// Waiting before listening again after an error (the database is down).
const RETRY: Duration = Duration::from_secs(1);

pub(super) async fn run(shared: Arc<Shared>) {
    let Some(me) = shared.node().map(str::to_owned) else {
        return;
    };
    while !shared.is_closing() {
        let mut n = match shared.store().listen(&[START_CHANNEL, EVENT_CHANNEL]).await {
            Ok(Some(n)) => n,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for starts placed on this node");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        take(&shared).await;
        loop {
            match n.next().await {
                Ok(Some((channel, payload))) if channel == EVENT_CHANNEL => {
                    super::events::receive(&shared, &me, &payload);
                }
                Ok(Some((_, node))) if node == me => {
                    // A burst of starts placed here is taken once: the
                    // notifications already received are read first.
                    while let Some((channel, payload)) = n.buffered() {
                        if channel == EVENT_CHANNEL {
                            super::events::receive(&shared, &me, &payload);
                        }
                    }
                    take(&shared).await
                }
                Ok(Some(_)) => {}
                // The connection was lost: listen afresh, then read from the
                // table what was missed.
                Ok(None) => break,
                Err(e) => {
                    if shared.is_closing() {
                        return;
                    }
                    tracing::warn!(error = %e, "lost the notifications of other nodes");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}

async fn take(shared: &Arc<Shared>) {
    match super::take_queued(shared).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!(n, "took starts placed on this node"),
        Err(e) => tracing::warn!(error = %e, "cannot take the starts placed on this node"),
    }
}
