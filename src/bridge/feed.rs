//! The core's ingress: a homeserver transaction's events, sealed and committed to the
//! durable queue, then handed to the worker.
//!
//! The Matrix layer checks the token, parses the transaction and makes one call,
//! [`Ingress::accept`]; everything after is here. Once a transaction's events are
//! committed to the durable queue they are handed to the worker in memory ([`EventFeed`]
//! → [`EventIntake`]), so the worker does not read back what was just written; the queue
//! stays the record, read again only after a restart. A transaction is queued and handed
//! over during one turn at the feed, so events reach the worker in queue order.
//!
//! The feed also knows which queued events the worker has been given and not yet removed
//! from the queue (its turn guards that set; the worker takes a turn to remove them). So a
//! transaction whose commit went through although it was reported failed (a connection
//! lost at `COMMIT`) is not stranded: the homeserver retries it, the retry is a replay,
//! and the replay hands over whatever of it is still queued and was never handed over.
//!
//! Backpressure: at most [`UNHANDLED`] events are between their commit and the end of
//! their handling. A transaction that finds no room waits for it before it is queued, and
//! the homeserver, waiting for its answer, sends no more meanwhile; the worker gives room
//! back as it finishes events. A flood (a homeserver catching up after the bridge was
//! down, a contact too slow to take messages) so cannot grow the bridge's memory without
//! bound.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::Instrument;

use super::MatrixEvent;
use super::credentials::{CredentialBox, CredentialsError};
use crate::store::{Store, StoreError};

/// Most events committed and not yet handled before a transaction waits for room.
pub const UNHANDLED: usize = 10_000;

/// An event just written to the durable queue, at position `seq`.
#[derive(Debug)]
pub struct QueuedMatrixEvent {
    pub seq: i64,
    pub event: MatrixEvent,
    /// Whether it holds a place of the [`Capacity`] (to give back once handled).
    pub holds_place: bool,
}

/// The places for unhandled events, shared by the feed and the worker.
#[derive(Clone, Debug)]
pub struct Capacity(Arc<Semaphore>);

impl Capacity {
    /// Waits for one place (for an event read back from the queue).
    pub async fn take_one(&self) {
        // Never closed, so this waits for a place rather than failing.
        if let Ok(place) = self.0.acquire().await {
            place.forget();
        }
    }

    /// Gives back the place of an event once it is handled.
    pub fn give_back(&self, holds_place: bool) {
        if holds_place {
            self.0.add_permits(1);
        }
    }

    /// Places left now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// The Matrix layer's end of the feed.
#[derive(Clone, Debug)]
pub struct EventFeed {
    tx: mpsc::UnboundedSender<Vec<QueuedMatrixEvent>>,
    turn: Turn,
    places: Capacity,
    capacity: usize,
}

/// Places claimed for a transaction's events, given back if it is not handed over (a
/// replay, a failed commit, a homeserver that hung up while it waited).
pub struct PlacesClaim {
    permit: Option<OwnedSemaphorePermit>,
    places: usize,
}

/// The feed's turn, guarding the queue positions handed to the worker and not yet removed
/// from the queue.
pub type Turn = Arc<tokio::sync::Mutex<HashSet<i64>>>;

/// A turn at the feed: while it is held no other transaction is queued and handed over,
/// and the worker removes nothing from the queue.
pub struct FeedTurn<'a> {
    tx: &'a mpsc::UnboundedSender<Vec<QueuedMatrixEvent>>,
    handed: tokio::sync::MutexGuard<'a, HashSet<i64>>,
}

impl EventFeed {
    /// Waits until there are places for `events` more unhandled events (a transaction
    /// larger than the whole capacity waits for all of it, and its extra events hold no
    /// place).
    pub async fn claim_places(&self, events: usize) -> PlacesClaim {
        let places = events.min(self.capacity);
        let permit = match u32::try_from(places) {
            Ok(0) | Err(_) => None,
            Ok(n) => self.places.0.clone().acquire_many_owned(n).await.ok(),
        };
        PlacesClaim { permit, places }
    }

    /// Waits for a turn: take it before queueing a transaction, hand over after.
    pub async fn turn(&self) -> FeedTurn<'_> {
        FeedTurn {
            tx: &self.tx,
            handed: self.turn.lock().await,
        }
    }
}

impl FeedTurn<'_> {
    /// Hands the worker events just queued, in order, with the places claimed for them.
    /// (Dropped when the worker has stopped: they wait in the queue for the next start.)
    pub fn hand_over(mut self, events: Vec<(i64, MatrixEvent)>, claim: PlacesClaim) {
        if let Some(permit) = claim.permit {
            permit.forget();
        }
        self.send(events, claim.places);
    }

    /// Hands over those of `events` (still queued) that the worker was never given: what
    /// a transaction reported failed although committed left behind. They hold no place.
    pub fn hand_over_unseen(mut self, events: Vec<(i64, MatrixEvent)>) -> usize {
        let unseen: Vec<_> = events
            .into_iter()
            .filter(|(seq, _)| !self.handed.contains(seq))
            .collect();
        let count = unseen.len();
        self.send(unseen, 0);
        count
    }

    /// Sends `events`, the first `places` of them holding a place, and notes them handed.
    fn send(&mut self, events: Vec<(i64, MatrixEvent)>, places: usize) {
        if events.is_empty() {
            return;
        }
        let queued: Vec<_> = events
            .into_iter()
            .enumerate()
            .map(|(i, (seq, event))| QueuedMatrixEvent {
                seq,
                event,
                holds_place: i < places,
            })
            .collect();
        self.handed.extend(queued.iter().map(|q| q.seq));
        // Fails only once the worker has stopped: the events wait for the next start.
        let _ = self.tx.send(queued);
    }
}

/// The worker's end of the feed.
#[derive(Debug)]
pub struct EventIntake {
    rx: mpsc::UnboundedReceiver<Vec<QueuedMatrixEvent>>,
    places: Capacity,
    turn: Turn,
}

impl EventIntake {
    /// The next events handed over, in queue order; `None` once every feed is gone.
    pub async fn recv(&mut self) -> Option<Vec<QueuedMatrixEvent>> {
        self.rx.recv().await
    }

    /// Events handed over already, without waiting.
    pub fn try_recv(&mut self) -> Option<Vec<QueuedMatrixEvent>> {
        self.rx.try_recv().ok()
    }

    /// Where handled events give their place back.
    pub fn capacity(&self) -> Capacity {
        self.places.clone()
    }

    /// The feed's turn: the worker notes there what it reads back from the queue, and
    /// takes it to remove handled events from the queue and from the set.
    pub fn turn(&self) -> Turn {
        self.turn.clone()
    }
}

/// A new feed with places for [`UNHANDLED`] events: the Matrix layer's end and the
/// worker's.
pub fn event_feed() -> (EventFeed, EventIntake) {
    event_feed_with_capacity(UNHANDLED)
}

/// [`event_feed`] with places for `capacity` events (at least one).
pub fn event_feed_with_capacity(capacity: usize) -> (EventFeed, EventIntake) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::unbounded_channel();
    let places = Capacity(Arc::new(Semaphore::new(capacity)));
    let turn = Turn::default();
    let feed = EventFeed {
        tx,
        turn: turn.clone(),
        places: places.clone(),
        capacity,
    };
    (feed, EventIntake { rx, places, turn })
}

/// Why a transaction could not be accepted (the homeserver is told to retry).
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("cannot encode an event for the queue: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("cannot seal an event for the queue: {0}")]
    Seal(#[source] CredentialsError),
    #[error("cannot queue the transaction: {0}")]
    Store(#[source] StoreError),
    #[error("the queueing task stopped: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// What became of an accepted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// New: its events are queued and handed to the worker.
    Fresh { queued: usize },
    /// Seen before; `recovered` of its events were still queued and never handed over
    /// (its first attempt was told the commit failed, although it went through).
    Replay { recovered: usize },
}

/// The core's intake of homeserver transactions: seals, queues and hands over.
#[derive(Clone, Debug)]
pub struct Ingress {
    store: Store,
    feed: EventFeed,
    seal: CredentialBox,
}

impl Ingress {
    /// An ingress queueing into `store` and handing over through `feed`; events are sealed
    /// with `seal` (a message may hold a password).
    pub fn new(store: Store, feed: EventFeed, seal: CredentialBox) -> Self {
        Self { store, feed, seal }
    }

    /// Accepts transaction `txn_id` (its content digest `content_key`): seals its events,
    /// waits for places among the unhandled events (holding the homeserver back), commits
    /// them with the transaction's dedupe row in one database transaction, and hands them
    /// to the worker. A replay queues nothing and hands over what its first attempt left.
    ///
    /// Cancel-safe: the commit and the hand-over run in their own task, so a homeserver
    /// that hangs up cannot leave committed events waiting for a restart.
    pub async fn accept(
        &self,
        txn_id: String,
        content_key: String,
        events: Vec<MatrixEvent>,
    ) -> Result<Accepted, IngressError> {
        let rows = events
            .iter()
            .map(|event| {
                let json = serde_json::to_string(event).map_err(IngressError::Encode)?;
                let payload = self.seal.seal_text(&json).map_err(IngressError::Seal)?;
                Ok((event.kind().to_owned(), payload))
            })
            .collect::<Result<Vec<_>, IngressError>>()?;
        // Waiting here holds the homeserver back (nothing is queued yet, so hanging up
        // loses nothing).
        let claim = self.feed.claim_places(rows.len()).await;
        let this = self.clone();
        let queueing = tokio::spawn(
            async move {
                this.queue_and_hand_over(&txn_id, &content_key, rows, events, claim)
                    .await
            }
            .in_current_span(),
        );
        queueing
            .await
            .map_err(IngressError::Task)?
            .map_err(IngressError::Store)
    }

    /// Queues a transaction's events (unless it is a replay) and hands them to the
    /// worker, in one turn at the feed.
    async fn queue_and_hand_over(
        &self,
        txn_id: &str,
        content_key: &str,
        rows: Vec<(String, String)>,
        events: Vec<MatrixEvent>,
        claim: PlacesClaim,
    ) -> Result<Accepted, StoreError> {
        let turn = self.feed.turn().await;
        let Some(seqs) = self
            .store
            .enqueue_transaction(txn_id, content_key, &rows)
            .await?
        else {
            // A replay. Its events are normally handled or in hand; any still queued and
            // never handed over are handed over now.
            let left = self.store.queued_events_of(txn_id).await?;
            let left = left
                .into_iter()
                .filter_map(|q| match MatrixEvent::from_queue(&self.seal, &q.payload) {
                    Ok(event) => Some((q.seq, event)),
                    Err(e) => {
                        tracing::error!(error = %e, seq = q.seq, "queued event cannot be read");
                        None
                    }
                })
                .collect();
            let recovered = turn.hand_over_unseen(left);
            return Ok(Accepted::Replay { recovered });
        };
        let queued = seqs.len();
        turn.hand_over(seqs.into_iter().zip(events).collect(), claim);
        Ok(Accepted::Fresh { queued })
    }
}
