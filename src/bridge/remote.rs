//! The interface the bridge core needs from the MSN side, in the core's own words: a
//! connector that logs an account in, a session handle to act with, and the events a
//! session produces. The MSN layer (`net::link`) implements it; the core never sees MSNP
//! wire types.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use tokio::sync::oneshot;

use super::formatting::RichText;
use super::ids::MsnAddress;
use crate::channel::Events;

/// A contact's availability as the bridge shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Availability {
    Online,
    Busy,
    Idle,
    BeRightBack,
    Away,
    OnThePhone,
    OutToLunch,
    Offline,
}

impl Availability {
    /// The words shown to people (status messages, `contacts`).
    pub fn describe(self) -> &'static str {
        match self {
            Self::Online => "Online",
            Self::Busy => "Busy",
            Self::Idle => "Idle",
            Self::BeRightBack => "Be right back",
            Self::Away => "Away",
            Self::OnThePhone => "On the phone",
            Self::OutToLunch => "Out to lunch",
            Self::Offline => "Offline",
        }
    }
}

/// The user's own status on MSN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OwnStatus {
    #[default]
    Online,
    Away,
    Hidden,
}

/// A contact on the user's MSN contact list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactInfo {
    pub address: MsnAddress,
    pub name: String,
    pub availability: Availability,
    pub personal_message: Option<String>,
    /// On the user's forward list (a friend), as opposed to only having added the user.
    pub is_friend: bool,
    pub blocked: bool,
    /// The display picture the contact last announced, if any.
    pub picture: Option<PictureRef>,
    /// The network of a contact who is not on MSN itself (e.g. `Yahoo!`), by name.
    pub network: Option<String>,
}

impl ContactInfo {
    /// Someone not on the user's list: named by their address, offline as far as known.
    pub fn unknown(address: MsnAddress) -> Self {
        Self {
            name: address.to_string(),
            address,
            availability: Availability::Offline,
            personal_message: None,
            is_friend: false,
            blocked: false,
            picture: None,
            network: None,
        }
    }
}

/// A picture on MSN (a display picture, a custom emoticon): its content hash, which
/// names it in the picture cache, and what the MSN side needs to fetch it (opaque here).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PictureRef {
    pub hash: String,
    pub locator: String,
}

/// A custom emoticon used in a message: the text it replaces and its picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emoticon {
    pub shortcut: String,
    pub picture: PictureRef,
}

/// What the user looks like on MSN, restored after every reconnect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnProfile {
    /// The status signed in with.
    pub status: OwnStatus,
    pub friendly_name: Option<String>,
    pub personal_message: Option<String>,
    /// The display picture's bytes (the user's Matrix avatar).
    pub picture: Option<Bytes>,
    /// This bridge's endpoint id on MSN (the machine GUID of MSNP16+, in braces), the
    /// same for every login of the user so that the bridge is one endpoint among theirs.
    pub endpoint: Option<String>,
}

/// Why a session ended for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    LoginRefused(String),
    SignedInElsewhere,
    /// The user signed this endpoint out from another place of theirs (MSNP16+).
    SignedOutRemotely,
    LoggedOut,
}

/// A conversation: one contact, or a group (a switchboard with several contacts).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Chat {
    Contact(MsnAddress),
    Group(String),
}

impl Chat {
    const GROUP: &'static str = "group:";

    /// The portal key: the contact's address, or `group:<id>`.
    pub fn key(&self) -> String {
        match self {
            Self::Contact(address) => address.to_string(),
            Self::Group(id) => format!("{}{id}", Self::GROUP),
        }
    }

    /// The chat a portal key names.
    pub fn from_key(key: &str) -> Self {
        match key.strip_prefix(Self::GROUP) {
            Some(id) => Self::Group(id.to_owned()),
            None => Self::Contact(MsnAddress::from_server(key)),
        }
    }
}

/// Something that happened on MSN for one logged-in user.
#[derive(Clone, Debug, PartialEq)]
pub enum RemoteEvent {
    Connected {
        protocol_version: u8,
    },
    Reconnecting {
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    Ended(SessionEnd),
    /// The whole contact list (after login).
    Contacts(Vec<ContactInfo>),
    /// A contact's presence, name or personal message changed.
    ContactChanged(ContactInfo),
    /// Someone added the user to their contact list.
    AddedBy {
        address: MsnAddress,
        name: String,
    },
    /// A message from `from` in `chat`, with the custom emoticons its text uses.
    Message {
        chat: Chat,
        from: MsnAddress,
        text: RichText,
        emoticons: Vec<Emoticon>,
    },
    /// A message `from` wrote while the user was away, kept by MSN (MSNP13+) and handed
    /// over now, in the order written. `id` names it for
    /// [`MsnSessionPort::delete_offline_message`], which the core calls once it is
    /// bridged; until then MSN hands it over at every login.
    OfflineMessage {
        id: String,
        from: MsnAddress,
        text: String,
        /// When it was written (ms since the epoch), if MSN said.
        written_ms: Option<i64>,
    },
    /// What the user wrote in a conversation from their own Messenger (another endpoint
    /// of their account, MSNP16+); `via` is a contact of the conversation.
    OwnMessage {
        chat: Chat,
        via: MsnAddress,
        text: RichText,
    },
    Typing {
        chat: Chat,
        from: MsnAddress,
    },
    Nudge {
        chat: Chat,
        from: MsnAddress,
    },
    /// A message of a kind the bridge cannot show (its MIME type).
    Unsupported {
        chat: Chat,
        from: MsnAddress,
        what: String,
    },
    /// A group conversation began with these contacts: (address, name). A group with a
    /// name of its own (a circle) has it in `name`.
    GroupMembers {
        chat: Chat,
        members: Vec<(MsnAddress, String)>,
        name: Option<String>,
    },
    /// A contact joined or left a group conversation.
    GroupJoined {
        chat: Chat,
        address: MsnAddress,
        name: String,
    },
    GroupLeft {
        chat: Chat,
        address: MsnAddress,
    },
    /// A file a contact sends: offered, then in, refused or failed.
    File {
        chat: Chat,
        from: MsnAddress,
        /// Names the transfer: its events share it (empty when it never started).
        key: String,
        /// The name the contact gave it.
        name: String,
        transfer: FileTransfer,
    },
}

/// Where a file from a contact stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileTransfer {
    /// Accepted; its bytes are coming.
    Receiving { size: u64 },
    /// Every byte is in `path` (a file of the bridge's, for the core to post and remove).
    Received { path: PathBuf, size: u64 },
    /// Declined: larger than the configured limit.
    TooLarge { size: u64, limit: u64 },
    /// Cancelled or failed on the way; nothing of it is kept.
    Failed { why: String },
}

/// How the MSN side names the files it receives in the file directory: the core sweeps
/// the ones an earlier run left unfinished.
pub const RECEIVED_FILE_PREFIX: &str = "from-msn-";

/// A file for a contact: a file of the bridge's at `path`, offered as `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingFile {
    pub name: String,
    pub size: u64,
    pub path: PathBuf,
    /// A small PNG shown with the offer (an image's thumbnail).
    pub preview: Option<Vec<u8>>,
}

/// Resolves once every contact of the chat has a file offered to them, or with why not
/// (declined, cancelled, timed out, offline).
pub type FileDelivery = oneshot::Receiver<Result<(), DeliveryError>>;

/// How a text reached MSN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The conversation took it.
    Delivered,
    /// The contact is offline: MSN keeps it for them until they sign in.
    StoredOffline,
}

/// Why something could not be delivered to MSN, in words for a notice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The session has no connection to MSN now (it is reconnecting): nothing was sent.
    #[error("not connected to MSN right now")]
    NotConnected,
    #[error("{0}")]
    Failed(String),
}

/// Why a login failed, in words for a notice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginFailure {
    #[error("MSN refused the e-mail address or password")]
    WrongCredentials,
    #[error("the MSN server does not speak a protocol version the bridge offers ({0})")]
    UnsupportedVersion(String),
    #[error("cannot reach the MSN server: {0}")]
    Unreachable(String),
    #[error("the MSN login failed: {0}")]
    Other(String),
}

/// Logs MSN accounts in.
pub trait MsnConnector: Send + Sync + 'static {
    type Session: MsnSessionPort;

    /// Logs `account` in and keeps the session up; events arrive on the receiver.
    fn login(
        &self,
        account: &str,
        password: &str,
        profile: OwnProfile,
    ) -> impl Future<Output = Result<(Self::Session, Events<RemoteEvent>), LoginFailure>> + Send;

    /// A short description of the server, for `status`.
    fn server(&self) -> String;
}

/// Acting in a logged-in MSN session.
pub trait MsnSessionPort: Clone + Send + Sync + 'static {
    /// Sends text to a chat, opening (or reopening) its conversation as needed; to a
    /// contact who is offline, as an offline message where MSN keeps them.
    fn send_text(
        &self,
        to: &Chat,
        text: RichText,
    ) -> impl Future<Output = Result<Sent, DeliveryError>> + Send;
    /// Deletes an offline message the core has bridged (see
    /// [`RemoteEvent::OfflineMessage`]).
    fn delete_offline_message(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
    fn send_typing(&self, to: &Chat) -> impl Future<Output = Result<(), DeliveryError>> + Send;
    fn send_nudge(&self, to: &Chat) -> impl Future<Output = Result<(), DeliveryError>> + Send;
    /// Makes a group's members known to the session (as remembered by the core), so that
    /// a session that has not seen the group (a new one, after a restart) can call them
    /// together again. Members the session already knows for it are kept.
    fn recall_group(&self, group: &Chat, members: Vec<(MsnAddress, String)>);
    /// Invites a contact into a chat: a one-to-one chat becomes a group.
    fn invite(
        &self,
        to: &Chat,
        contact: &MsnAddress,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
    fn set_status(
        &self,
        status: OwnStatus,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
    fn set_friendly_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
    fn contacts(&self) -> impl Future<Output = Result<Vec<ContactInfo>, DeliveryError>> + Send;
    fn add_contact(
        &self,
        address: &MsnAddress,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
    fn remove_contact(
        &self,
        address: &MsnAddress,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
    fn block(&self, address: &MsnAddress)
    -> impl Future<Output = Result<(), DeliveryError>> + Send;
    fn unblock(
        &self,
        address: &MsnAddress,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
    /// Fetches a picture `from` announced (a display picture, or an emoticon used in
    /// `chat`), over that chat's conversation or a new one with `from`.
    fn fetch_picture(
        &self,
        chat: &Chat,
        from: &MsnAddress,
        picture: &PictureRef,
    ) -> impl Future<Output = Result<Bytes, DeliveryError>> + Send;
    /// Offers `file` to the contact of `to` (each contact, in a group). Resolves once
    /// the offers are out; the [`FileDelivery`] says how they ended. The file at
    /// `file.path` must stay until then.
    fn send_file(
        &self,
        to: &Chat,
        file: OutgoingFile,
    ) -> impl Future<Output = Result<FileDelivery, DeliveryError>> + Send;
    /// Shows `picture` as the user's display picture (none: no picture), kept across
    /// reconnects and served to contacts who ask.
    fn set_picture(
        &self,
        picture: Option<Bytes>,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
    /// The negotiated protocol version, 0 while disconnected.
    fn protocol_version(&self) -> u8;
    /// What the session offers beyond chats (offline messages, circles), one sentence
    /// each, for `status`.
    fn notes(&self) -> Vec<String>;
    fn is_connected(&self) -> bool;
    fn logout(&self) -> impl Future<Output = ()> + Send;
}
