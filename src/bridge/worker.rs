//! The worker that handles queued Matrix events. Events are handled in lanes: the events
//! of one room (presence: of one user) in the order the homeserver sent them, different
//! lanes side by side, at most [`LANES`] at a time. A slow room (a contact whose
//! conversation is being opened, a homeserver call being retried) so holds up only itself.
//!
//! At start the worker reads what the durable queue still holds (events accepted but not
//! handled before the last stop); after that, events come from the [`EventIntake`] as
//! their transaction is queued, without a read back. An event leaves the queue once
//! handled (removals are batched: one statement for all the events finished meanwhile).
//! At shutdown the lanes finish the event in hand, take no other, and the removals are
//! written before [`Bridge::run`] returns.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::feed::{Capacity, EventIntake, Turn};
use super::remote::MsnConnector;
use super::{Bridge, MatrixEvent, MatrixPort};

/// How many queued events the worker takes per database read.
const BATCH: i64 = 256;

/// The first and the longest wait before the backlog is read again after a failure.
const BACKLOG_RETRY_FIRST: Duration = Duration::from_secs(1);
const BACKLOG_RETRY_MAX: Duration = Duration::from_secs(30);

/// Most lanes handling an event at once.
pub const LANES: usize = 32;

/// An event for a lane.
struct Work {
    /// Its position in the durable queue.
    seq: i64,
    /// The event; `None`: it could not be decoded (it is only removed from the queue).
    event: Option<MatrixEvent>,
    /// Whether it holds a place of the feed's [`Capacity`].
    holds_place: bool,
}

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
    places: Capacity,
    /// Told when a lane has handled all it was given: the dispatcher then closes the
    /// lanes with nothing pending, so a quiet room holds no task.
    went_idle: Arc<Notify>,
}

/// The lanes open now, and the tasks that run them.
struct Lanes {
    open: HashMap<String, Lane>,
    tasks: JoinSet<()>,
    kit: LaneKit,
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// Handles queued events until shutdown: first the store's backlog, then `intake`.
    pub async fn run(self: &Arc<Self>, intake: EventIntake) {
        self.expect_restored_logins().await;
        self.sweep_files().await;
        self.resume_outboxes().await;
        let (finished, finished_rx) = mpsc::unbounded_channel();
        let finisher = tokio::spawn(self.clone().finish(finished_rx, intake.turn()));
        let mut lanes = Lanes {
            open: HashMap::new(),
            tasks: JoinSet::new(),
            kit: LaneKit {
                permits: Arc::new(Semaphore::new(LANES)),
                finished,
                places: intake.capacity(),
                went_idle: Arc::new(Notify::new()),
            },
        };
        self.dispatch(&mut lanes, intake).await;
        // Shutdown: lanes finish the event in hand, then the removals of everything
        // handled are written.
        let Lanes {
            open,
            mut tasks,
            kit,
        } = lanes;
        drop((open, kit));
        while tasks.join_next().await.is_some() {}
        let _ = finisher.await;
    }

    async fn dispatch(self: &Arc<Self>, lanes: &mut Lanes, mut intake: EventIntake) {
        // The backlog. Events queued while it is read may be read here and also come
        // through `intake`: those read here are skipped there. The set holds at most the
        // backlog, which is what was left unhandled at the last stop.
        let mut from_backlog = HashSet::new();
        let mut after = 0;
        let mut retry = BACKLOG_RETRY_FIRST;
        loop {
            let batch = match self.store.queued_events_after(after, BATCH).await {
                Ok(batch) => batch,
                // The store may be back in a moment: wait and read again rather than stop
                // handling events while the homeserver goes on sending them.
                Err(e) => {
                    tracing::error!(error = %e, ?retry, "cannot read the event queue; retrying");
                    self.metrics.error("store");
                    tokio::select! {
                        () = self.shutdown.cancelled() => return,
                        () = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(BACKLOG_RETRY_MAX);
                    continue;
                }
            };
            if batch.is_empty() {
                break;
            }
            for queued in batch {
                // Read back, it takes a place like a fresh event: a long backlog is read
                // as the lanes get through it, not all at once.
                tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    () = lanes.kit.places.take_one() => {}
                }
                after = after.max(queued.seq);
                from_backlog.insert(queued.seq);
                intake.turn().lock().await.insert(queued.seq);
                let event = match MatrixEvent::from_queue(&self.credentials, &queued.payload) {
                    Ok(event) => Some(event),
                    // A downgrade, another key or corruption: say so and move on rather
                    // than block later events.
                    Err(e) => {
                        tracing::error!(error = %e, seq = queued.seq, "queued event cannot be read; dropped");
                        None
                    }
                };
                let work = Work {
                    seq: queued.seq,
                    event,
                    holds_place: true,
                };
                if !self.assign(lanes, work) {
                    return;
                }
            }
        }
        let went_idle = lanes.kit.went_idle.clone();
        loop {
            let fresh = tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = went_idle.notified() => {
                    close_idle(lanes);
                    continue;
                }
                fresh = intake.recv() => match fresh {
                    Some(fresh) => fresh,
                    None => return,
                },
            };
            close_idle(lanes);
            for queued in fresh {
                if from_backlog.remove(&queued.seq) {
                    lanes.kit.places.give_back(queued.holds_place);
                    continue;
                }
                let work = Work {
                    seq: queued.seq,
                    event: Some(queued.event),
                    holds_place: queued.holds_place,
                };
                if !self.assign(lanes, work) {
                    return;
                }
            }
        }
    }

    /// Puts an event in its lane (opening it if needed). `false` at shutdown: the event
    /// then stays queued for the restart.
    fn assign(self: &Arc<Self>, lanes: &mut Lanes, work: Work) -> bool {
        if self.shutdown.is_cancelled() {
            return false;
        }
        let key = work
            .event
            .as_ref()
            .map(|e| e.lane().to_owned())
            .unwrap_or_default();
        let lane = match lanes.open.entry(key) {
            std::collections::hash_map::Entry::Occupied(lane) => lane.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(self.start_lane(lanes.kit.clone(), &mut lanes.tasks))
            }
        };
        lane.pending.fetch_add(1, Ordering::AcqRel);
        // An error: its task ended, which it does only at shutdown.
        lane.tx.send(work).is_ok()
    }

    fn start_lane(self: &Arc<Self>, kit: LaneKit, tasks: &mut JoinSet<()>) -> Lane {
        let (tx, mut rx) = mpsc::unbounded_channel::<Work>();
        let pending = Arc::new(AtomicUsize::new(0));
        let bridge = self.clone();
        let count = pending.clone();
        tasks.spawn(async move {
            while let Some(Work {
                seq,
                event,
                holds_place,
            }) = rx.recv().await
            {
                if bridge.shutdown.is_cancelled() {
                    return;
                }
                // A message whose MSN session is coming back waits here, holding no
                // permit (the lane's later events wait behind it).
                if let Some(event) = &event {
                    bridge.hold_until_ready(event).await;
                    if bridge.shutdown.is_cancelled() {
                        // Still queued: handled after the restart.
                        return;
                    }
                }
                let Ok(_permit) = kit.permits.acquire().await else {
                    return;
                };
                bridge.handle_queued(seq, event).await;
                let _ = kit.finished.send(seq);
                kit.places.give_back(holds_place);
                if count.fetch_sub(1, Ordering::AcqRel) == 1 {
                    kit.went_idle.notify_one();
                }
            }
        });
        Lane { tx, pending }
    }

    async fn handle_queued(self: &Arc<Self>, seq: i64, event: Option<MatrixEvent>) {
        if let Some(event) = event {
            let is_message = matches!(event, MatrixEvent::Message { .. });
            let span = tracing::info_span!("event", seq, kind = event.kind());
            self.handle_event(event).instrument(span).await;
            if is_message {
                self.handled_messages.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes handled events from the queue, all those finished meanwhile at once, until
    /// every lane is gone.
    /// During a turn at the feed, so that a replayed transaction looking for events never
    /// handed over sees each event either queued and known as handed, or gone.
    async fn finish(self: Arc<Self>, mut finished: mpsc::UnboundedReceiver<i64>, turn: Turn) {
        let mut seqs = Vec::new();
        while finished.recv_many(&mut seqs, BATCH as usize).await > 0 {
            let mut handed = turn.lock().await;
            match self.store.finish_events(&seqs).await {
                Ok(()) => {
                    for seq in &seqs {
                        handed.remove(seq);
                    }
                }
                // Handled but still queued (and still known as handed): handled again
                // after a restart, where the message map keeps a message from reaching
                // MSN twice.
                Err(e) => {
                    tracing::error!(error = %e, count = seqs.len(), "cannot remove handled events from the queue");
                    self.metrics.error("store");
                }
            }
            drop(handed);
            seqs.clear();
        }
    }
}

/// Ends the lanes with nothing pending (their task sees its queue close) and reaps the
/// tasks that ended. Only the dispatcher adds to a lane, so none can get work meanwhile.
fn close_idle(lanes: &mut Lanes) {
    lanes
        .open
        .retain(|_, lane| lane.pending.load(Ordering::Acquire) > 0);
    while lanes.tasks.try_join_next().is_some() {}
}
