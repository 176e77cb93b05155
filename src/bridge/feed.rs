//! The hand-over of queued Matrix events from the Matrix layer to the core's worker.
//!
//! Once a transaction's events are committed to the durable queue, the Matrix layer hands
//! them to the worker in memory ([`EventFeed`] → [`EventIntake`]), so the worker does not
//! read back what was just written; the queue stays the record, read again only after a
//! restart. A transaction is queued and handed over during one turn at the feed, so events
//! reach the worker in queue order.
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

use super::MatrixEvent;

/// Most events committed and not yet handled before a transaction waits for room.
pub const UNHANDLED: usize = 10_000;

/// An event just written to the durable queue, at position `seq`.
#[derive(Debug)]
pub struct QueuedMatrixEvent {
    pub seq: i64,
    pub event: MatrixEvent,
    /// Whether it holds a place of the [`Room`] (to give back once handled).
    pub holds_room: bool,
}

/// The places for unhandled events, shared by the feed and the worker.
#[derive(Clone, Debug)]
pub struct Room(Arc<Semaphore>);

impl Room {
    /// Waits for one place (for an event read back from the queue).
    pub async fn take_one(&self) {
        // Never closed, so this waits for a place rather than failing.
        if let Ok(place) = self.0.acquire().await {
            place.forget();
        }
    }

    /// Gives back the place of an event once it is handled.
    pub fn give_back(&self, holds_room: bool) {
        if holds_room {
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
    room: Room,
    capacity: usize,
}

/// Places claimed for a transaction's events, given back if it is not handed over (a
/// replay, a failed commit, a homeserver that hung up while it waited).
pub struct RoomClaim {
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
    /// Waits until there is room for `events` more unhandled events (a transaction larger
    /// than the whole room waits for all of it, and its extra events hold no place).
    pub async fn room_for(&self, events: usize) -> RoomClaim {
        let places = events.min(self.capacity);
        let permit = match u32::try_from(places) {
            Ok(0) | Err(_) => None,
            Ok(n) => self.room.0.clone().acquire_many_owned(n).await.ok(),
        };
        RoomClaim { permit, places }
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
    pub fn hand_over(mut self, events: Vec<(i64, MatrixEvent)>, claim: RoomClaim) {
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
                holds_room: i < places,
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
    room: Room,
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
    pub fn room(&self) -> Room {
        self.room.clone()
    }

    /// The feed's turn: the worker notes there what it reads back from the queue, and
    /// takes it to remove handled events from the queue and from the set.
    pub fn turn(&self) -> Turn {
        self.turn.clone()
    }
}

/// A new feed with room for [`UNHANDLED`] events: the Matrix layer's end and the worker's.
pub fn event_feed() -> (EventFeed, EventIntake) {
    event_feed_with_room(UNHANDLED)
}

/// [`event_feed`] with room for `capacity` events (at least one).
pub fn event_feed_with_room(capacity: usize) -> (EventFeed, EventIntake) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::unbounded_channel();
    let room = Room(Arc::new(Semaphore::new(capacity)));
    let turn = Turn::default();
    let feed = EventFeed {
        tx,
        turn: turn.clone(),
        room: room.clone(),
        capacity,
    };
    (feed, EventIntake { rx, room, turn })
}
