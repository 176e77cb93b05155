//! The worker that drains the durable event queue. Events are handled in lanes: the events
//! of one room (presence: of one user) in the order the homeserver sent them, different
//! lanes side by side, at most [`LANES`] at a time. A slow room (a contact whose
//! conversation is being opened, a homeserver call being retried) so holds up only itself.
//!
//! An event leaves the queue once handled (removals are batched: one statement for all the
//! events finished meanwhile); whatever was queued and not handled when the bridge stopped
//! is handled after the restart. At shutdown the lanes finish the event in hand, take no
//! other, and the removals are written before [`Bridge::run`] returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::remote::MsnConnector;
use super::{Bridge, MatrixEvent, MatrixPort};
use crate::store::{QueuedEvent, StoreError};

/// How many queued events the worker takes per database read.
const BATCH: i64 = 256;

/// Most lanes handling an event at once.
pub const LANES: usize = 32;

type Work = (QueuedEvent, Option<MatrixEvent>);

/// One lane: its queue, and how many events it holds that are not handled yet.
struct Lane {
    tx: mpsc::UnboundedSender<Work>,
    pending: Arc<AtomicUsize>,
}

/// What the lanes share: the bound on concurrent events, and where handled events go to be
/// removed from the queue.
#[derive(Clone)]
struct LaneKit {
    permits: Arc<Semaphore>,
    finished: mpsc::UnboundedSender<i64>,
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// Drains the event queue until shutdown.
    pub async fn run(self: &Arc<Self>) -> Result<(), StoreError> {
        let (finished, finished_rx) = mpsc::unbounded_channel();
        let finisher = tokio::spawn(self.clone().finish(finished_rx));
        let kit = LaneKit {
            permits: Arc::new(Semaphore::new(LANES)),
            finished,
        };
        let mut tasks = JoinSet::new();
        let result = self.dispatch(&kit, &mut tasks).await;
        // Shutdown or a store failure: lanes finish the event in hand, then the removals
        // of everything handled are written.
        drop(kit);
        while tasks.join_next().await.is_some() {}
        let _ = finisher.await;
        result
    }

    async fn dispatch(
        self: &Arc<Self>,
        kit: &LaneKit,
        tasks: &mut JoinSet<()>,
    ) -> Result<(), StoreError> {
        let mut lanes: HashMap<String, Lane> = HashMap::new();
        let mut after = 0;
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Idle lanes end: their task sees its queue close once empty.
            lanes.retain(|_, lane| lane.pending.load(Ordering::Acquire) > 0);
            while tasks.try_join_next().is_some() {}
            let batch = self.store.queued_events_after(after, BATCH).await?;
            if batch.is_empty() {
                tokio::select! {
                    () = self.shutdown.cancelled() => return Ok(()),
                    () = &mut notified => continue,
                }
            }
            for queued in batch {
                if self.shutdown.is_cancelled() {
                    return Ok(());
                }
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
                    .or_insert_with(|| self.start_lane(kit.clone(), tasks));
                lane.pending.fetch_add(1, Ordering::AcqRel);
                if lane.tx.send((queued, event)).is_err() {
                    // Its task ended only at shutdown; the event stays queued for the restart.
                    return Ok(());
                }
            }
        }
    }

    fn start_lane(self: &Arc<Self>, kit: LaneKit, tasks: &mut JoinSet<()>) -> Lane {
        let (tx, mut rx) = mpsc::unbounded_channel::<Work>();
        let pending = Arc::new(AtomicUsize::new(0));
        let bridge = self.clone();
        let count = pending.clone();
        tasks.spawn(async move {
            while let Some((queued, event)) = rx.recv().await {
                if bridge.shutdown.is_cancelled() {
                    return;
                }
                let Ok(_permit) = kit.permits.acquire().await else {
                    return;
                };
                bridge.handle_queued(&queued, event).await;
                let _ = kit.finished.send(queued.seq);
                count.fetch_sub(1, Ordering::AcqRel);
            }
        });
        Lane { tx, pending }
    }

    async fn handle_queued(self: &Arc<Self>, queued: &QueuedEvent, event: Option<MatrixEvent>) {
        if let Some(event) = event {
            let span = tracing::info_span!("event", seq = queued.seq, kind = %queued.kind);
            self.handle_event(event).instrument(span).await;
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
        if queued.kind == "message" {
            self.handled_messages.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes handled events from the queue, all those finished meanwhile at once, until
    /// every lane is gone.
    async fn finish(self: Arc<Self>, mut finished: mpsc::UnboundedReceiver<i64>) {
        let mut seqs = Vec::new();
        while finished.recv_many(&mut seqs, BATCH as usize).await > 0 {
            if let Err(e) = self.store.finish_events(&seqs).await {
                // Handled but still queued: handled again after a restart, where the
                // message map keeps a message from reaching MSN twice.
                tracing::error!(error = %e, count = seqs.len(), "cannot remove handled events from the queue");
                self.metrics.error("store");
            }
            seqs.clear();
        }
    }
}
