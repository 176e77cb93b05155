//! The Matrix events the bridge core understands, in the core's own words. The Matrix layer
//! turns wire JSON into these; they are what the durable event queue holds, and what it
//! hands the core's worker once queued (through [`super::feed`]).

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use serde::{Deserialize, Serialize};

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

impl MessageKind {
    /// The kind a Matrix `msgtype` names.
    pub fn from_msgtype(msgtype: &str) -> Self {
        match msgtype {
            "m.text" => Self::Text,
            "m.emote" => Self::Emote,
            "m.notice" => Self::Notice,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Its Matrix `msgtype`.
    pub fn msgtype(&self) -> &str {
        match self {
            Self::Text => "m.text",
            Self::Emote => "m.emote",
            Self::Notice => "m.notice",
            Self::Other(other) => other,
        }
    }
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

/// The file a media message carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// Its `mxc://` URI.
    pub url: String,
    /// `filename`, when the client gave one apart from the caption in `body`.
    #[serde(default)]
    pub filename: Option<String>,
    /// `info.size`, when given.
    #[serde(default)]
    pub size: Option<u64>,
}

/// One event from the homeserver that the core may act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MatrixEvent {
    /// A message in a room.
    Message {
        room_id: OwnedRoomId,
        event_id: OwnedEventId,
        sender: OwnedUserId,
        kind: MessageKind,
        body: String,
        /// `formatted_body` when the format is `org.matrix.custom.html`.
        html: Option<String>,
        /// The file of a media message (`m.image`, `m.file`, …).
        #[serde(default)]
        media: Option<Media>,
    },
    /// A membership change of `target`, made by `sender`.
    Membership {
        room_id: OwnedRoomId,
        event_id: OwnedEventId,
        sender: OwnedUserId,
        target: OwnedUserId,
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
        room_id: OwnedRoomId,
        user_ids: Vec<OwnedUserId>,
    },
    /// A read receipt.
    Receipt {
        room_id: OwnedRoomId,
        event_id: OwnedEventId,
        user_id: OwnedUserId,
    },
    /// A user's presence.
    Presence {
        user_id: OwnedUserId,
        presence: String,
        status_msg: Option<String>,
    },
    /// Something a Matrix user did that MSN has no way to carry (a redaction, a
    /// reaction): the portal says so.
    Unbridgeable {
        room_id: OwnedRoomId,
        event_id: OwnedEventId,
        sender: OwnedUserId,
        what: Unbridgeable,
    },
    /// A Matrix user named a room (`m.room.name`; empty: took its name away).
    RoomNamed {
        room_id: OwnedRoomId,
        event_id: OwnedEventId,
        sender: OwnedUserId,
        name: String,
    },
}

/// What MSN cannot carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unbridgeable {
    Redaction,
    Reaction,
}

impl Unbridgeable {
    /// The notice a portal gets, once.
    pub fn notice(self) -> &'static str {
        match self {
            Self::Redaction => {
                "MSN cannot take back a message: the contact still sees what you removed."
            }
            Self::Reaction => "MSN has no reactions: yours was not sent to the contact.",
        }
    }
}

impl MatrixEvent {
    /// The lane the event is handled in: events of one lane are handled in order, lanes
    /// side by side. A room's events share its lane; presence goes by user.
    pub fn lane(&self) -> &str {
        match self {
            Self::Message { room_id, .. }
            | Self::Unbridgeable { room_id, .. }
            | Self::RoomNamed { room_id, .. }
            | Self::Membership { room_id, .. }
            | Self::Typing { room_id, .. }
            | Self::Receipt { room_id, .. } => room_id.as_str(),
            Self::Presence { user_id, .. } => user_id.as_str(),
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
            Self::Unbridgeable { .. } => "unbridgeable",
            Self::RoomNamed { .. } => "room_name",
        }
    }
}

/// Why an event from the durable queue cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum QueuedEventError {
    #[error("cannot open it: {0}")]
    Sealed(#[from] super::credentials::CredentialsError),
    #[error("cannot decode it: {0}")]
    Json(#[from] serde_json::Error),
}

impl MatrixEvent {
    /// An event as the durable queue holds it: sealed JSON (or plain JSON, from before
    /// queued events were sealed).
    pub fn from_queue(
        seal: &super::credentials::CredentialBox,
        payload: &str,
    ) -> Result<Self, QueuedEventError> {
        Ok(serde_json::from_str(&seal.open_text(payload)?)?)
    }
}
