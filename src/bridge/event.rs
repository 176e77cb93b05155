//! The Matrix events the bridge core understands, in the core's own words. The Matrix layer
//! turns wire JSON into these; they are what the durable event queue holds, and what it
//! hands the core's worker once queued ([`event_feed`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// What kind of text message a Matrix user sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    Emote,
    Notice,
    /// Images, files and anything else, by msgtype.
    Other(String),
}

/// A room membership state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    Invite,
    Join,
    Leave,
    Ban,
    Knock,
    Other(String),
}

/// One event from the homeserver that the core may act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MatrixEvent {
    /// A message in a room.
    Message {
        room_id: String,
        event_id: String,
        sender: String,
        kind: MessageKind,
        body: String,
        /// `formatted_body` when the format is `org.matrix.custom.html`.
        html: Option<String>,
        /// The `mxc://` URI of a media message.
        #[serde(default)]
        url: Option<String>,
    },
    /// A membership change of `target`, made by `sender`.
    Membership {
        room_id: String,
        event_id: String,
        sender: String,
        target: String,
        membership: Membership,
        is_direct: bool,
        /// The member's display name after the change, if the event carries one.
        #[serde(default)]
        displayname: Option<String>,
        /// The member's avatar (`mxc://`) after the change, if the event carries one.
        #[serde(default)]
        avatar_url: Option<String>,
    },
    /// The users now typing in a room (empty when everyone stopped).
    Typing {
        room_id: String,
        user_ids: Vec<String>,
    },
    /// A read receipt.
    Receipt {
        room_id: String,
        event_id: String,
        user_id: String,
    },
    /// A user's presence.
    Presence {
        user_id: String,
        presence: String,
        status_msg: Option<String>,
    },
}

impl MatrixEvent {
    /// The lane the event is handled in: events of one lane are handled in order, lanes
    /// side by side. A room's events share its lane; presence goes by user.
    pub fn lane(&self) -> &str {
        match self {
            Self::Message { room_id, .. }
            | Self::Membership { room_id, .. }
            | Self::Typing { room_id, .. }
            | Self::Receipt { room_id, .. } => room_id,
            Self::Presence { user_id, .. } => user_id,
        }
    }

    /// A short name for logs and the queue's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Message { .. } => "message",
            Self::Membership { .. } => "membership",
            Self::Typing { .. } => "typing",
            Self::Receipt { .. } => "receipt",
            Self::Presence { .. } => "presence",
        }
    }
}

/// An event just written to the durable queue, at position `seq`.
#[derive(Debug)]
pub struct QueuedMatrixEvent {
    pub seq: i64,
    pub event: MatrixEvent,
}

/// Where the Matrix layer hands over events once their transaction is queued: the worker
/// takes them from memory instead of reading back what was just written. The queue stays
/// the record: what is not handled when the bridge stops is read from it after a restart.
#[derive(Clone, Debug)]
pub struct EventFeed {
    tx: mpsc::UnboundedSender<Vec<QueuedMatrixEvent>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// A turn at the feed: while it is held no other transaction is queued and handed over,
/// so events reach the worker in queue order even when transactions arrive side by side.
pub struct FeedTurn<'a> {
    tx: &'a mpsc::UnboundedSender<Vec<QueuedMatrixEvent>>,
    _turn: tokio::sync::MutexGuard<'a, ()>,
}

impl EventFeed {
    /// Waits for a turn: take it before queueing a transaction, hand over after.
    pub async fn turn(&self) -> FeedTurn<'_> {
        FeedTurn {
            tx: &self.tx,
            _turn: self.turn.lock().await,
        }
    }
}

impl FeedTurn<'_> {
    /// Hands the worker events just queued (dropped when the worker has stopped: they
    /// wait in the queue for the next start).
    pub fn hand_over(self, events: Vec<QueuedMatrixEvent>) {
        if !events.is_empty() {
            let _ = self.tx.send(events);
        }
    }
}

/// The worker's end of an [`EventFeed`].
pub type EventIntake = mpsc::UnboundedReceiver<Vec<QueuedMatrixEvent>>;

/// A new feed: the Matrix layer's end and the worker's.
pub fn event_feed() -> (EventFeed, EventIntake) {
    let (tx, rx) = mpsc::unbounded_channel();
    let feed = EventFeed {
        tx,
        turn: Arc::new(tokio::sync::Mutex::new(())),
    };
    (feed, rx)
}
