//! The worker that drains the durable event queue. Events are handled in lanes: the events
//! of one room (presence: of one user) in the order the homeserver sent them, different
//! lanes side by side, at most [`LANES`] at a time. A slow room (a contact whose
//! conversation is being opened, a homeserver call being retried) so holds up only itself.
//!
//! An event leaves the queue once handled; whatever was queued and not handled when the
//! bridge stopped is handled after the restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, mpsc};
use tracing::Instrument;

use super::remote::MsnConnector;
use super::{Bridge, MatrixEvent, MatrixPort};
use crate::store::{QueuedEvent, StoreError};

/// How many queued events the worker takes per database read.
const BATCH: i64 = 256;

/// Most lanes handling an event at once.
pub const LANES: usize = 32;

/// One lane: its queue, and how many events it holds that are not handled yet.
struct Lane {
    tx: mpsc::UnboundedSender<(QueuedEvent, Option<MatrixEvent>)>,
    pending: Arc<AtomicUsize>,
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// Drains the event queue until shutdown.
    pub async fn run(self: &Arc<Self>) -> Result<(), StoreError> {
        let permits = Arc::new(Semaphore::new(LANES));
        let mut lanes: HashMap<String, Lane> = HashMap::new();
        let mut after = 0;
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Idle lanes end: their task sees its queue close once empty.
            lanes.retain(|_, lane| lane.pending.load(Ordering::Acquire) > 0);
            let batch = self.store.queued_events_after(after, BATCH).await?;
            if batch.is_empty() {
                tokio::select! {
                    () = self.shutdown.cancelled() => return Ok(()),
                    () = &mut notified => continue,
                }
            }
            for queued in batch {
                after = after.max(queued.seq);
                let event = match serde_json::from_str::<MatrixEvent>(&queued.payload) {
                    Ok(event) => Some(event),
                    // Only this version writes the queue, so this means a downgrade or
                    // corruption: say so and move on rather than block later events.
                    Err(e) => {
                        tracing::error!(error = %e, seq = queued.seq, "queued event cannot be decoded; dropped");
                        None
                    }
                };
                let key = event
                    .as_ref()
                    .map(|e| e.lane().to_owned())
                    .unwrap_or_default();
                let lane = lanes
                    .entry(key)
                    .or_insert_with(|| self.start_lane(permits.clone()));
                lane.pending.fetch_add(1, Ordering::AcqRel);
                if lane.tx.send((queued, event)).is_err() {
                    // Its task ended only at shutdown; the event stays queued for the restart.
                    return Ok(());
                }
            }
        }
    }

    fn start_lane(self: &Arc<Self>, permits: Arc<Semaphore>) -> Lane {
        let (tx, mut rx) = mpsc::unbounded_channel::<(QueuedEvent, Option<MatrixEvent>)>();
        let pending = Arc::new(AtomicUsize::new(0));
        let bridge = self.clone();
        let count = pending.clone();
        tokio::spawn(async move {
            while let Some((queued, event)) = rx.recv().await {
                if bridge.shutdown.is_cancelled() {
                    return;
                }
                let Ok(_permit) = permits.acquire().await else {
                    return;
                };
                bridge.handle_queued(&queued, event).await;
                count.fetch_sub(1, Ordering::AcqRel);
            }
        });
        Lane { tx, pending }
    }

    async fn handle_queued(self: &Arc<Self>, queued: &QueuedEvent, event: Option<MatrixEvent>) {
        let span = tracing::info_span!("event", seq = queued.seq, kind = %queued.kind);
        if let Some(event) = event {
            self.handle_event(event).instrument(span.clone()).await;
        }
        if let Err(e) = self.store.finish_event(queued.seq).await {
            // Handled but still queued: it is handled again after a restart, where the
            // message map keeps a message from reaching MSN twice.
            let _enter = span.enter();
            tracing::error!(error = %e, "cannot remove a handled event from the queue");
            self.metrics.error("store");
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
        if queued.kind == "message" {
            self.handled_messages.fetch_add(1, Ordering::Relaxed);
        }
    }
}
