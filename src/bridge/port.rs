//! The interface the bridge core needs from the Matrix side. The core defines it; the
//! Matrix layer implements it (`matrix::port`), and tests may implement it too. Room,
//! user and event IDs cross it as ruma's ID types, checked once where they enter the
//! bridge (a transaction, the store, the config), never parsed again per call.

use std::future::Future;

use ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};

/// Which network and chat a portal room bridges (MSC2346 `m.bridge` state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeInfo {
    /// The bot's user ID.
    pub bridgebot: OwnedUserId,
    /// Who created the room (the contact's puppet).
    pub creator: OwnedUserId,
    /// The remote chat: the contact's address, and the name shown for it.
    pub channel_id: String,
    pub channel_name: String,
}

/// Whether a Matrix message reached MSN, as its send status says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendStatus {
    /// MSN took it.
    Delivered,
    /// It did not reach MSN, and why (the notice's words).
    Failed(String),
}

/// A text, emote or notice to send.
#[derive(Clone, Copy, Debug)]
pub struct OutgoingText<'a> {
    pub kind: &'a super::MessageKind,
    pub body: &'a str,
    pub html: Option<&'a str>,
    /// When it was written (milliseconds since the Unix epoch), for an event that reaches
    /// the homeserver late (appservice timestamp massaging); `None`: now.
    pub at_ms: Option<i64>,
    /// A mark carried in the event's content, by which [`MatrixPort::find_marked`] can
    /// tell later whether it was sent.
    pub mark: Option<&'a str>,
    /// Sent as the real user (double puppeting), marked so that the bridge does not take
    /// it for something the user wrote in Matrix.
    pub as_real_user: bool,
}

/// A media message to send: a file uploaded to the media repository, with what Matrix
/// clients need to show it.
#[derive(Clone, Copy, Debug)]
pub struct OutgoingMedia<'a> {
    /// `m.image`, `m.video`, `m.audio` or `m.file`.
    pub msgtype: &'a str,
    /// The file's name (also the message body).
    pub name: &'a str,
    /// Its `mxc://` URI.
    pub url: &'a str,
    pub mimetype: &'a str,
    pub size: u64,
    /// Pixel size of an image, when known.
    pub dimensions: Option<(u32, u32)>,
    /// The origin time to send it with (appservice `ts`), ms since the epoch.
    pub at_ms: Option<i64>,
    /// A mark in the content, for [`MatrixPort::find_marked`].
    pub mark: Option<&'a str>,
}

/// Calls the core makes on the homeserver.
pub trait MatrixPort: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The bridge bot's user ID.
    fn bot(&self) -> &UserId;

    /// Whether the bridge may act as the real user `user` (double puppeting is configured
    /// for their homeserver).
    fn can_double_puppet(&self, user: &UserId) -> bool;

    /// Sends a notice as `as_user` (the bot when `None`); `txn_id` makes a retry idempotent.
    fn send_notice(
        &self,
        room_id: &RoomId,
        text: &str,
        html: Option<&str>,
        txn_id: &str,
        as_user: Option<&UserId>,
    ) -> impl Future<Output = Result<OwnedEventId, Self::Error>> + Send;

    /// Joins a room (accepting an invite) as `as_user` (the bot when `None`).
    fn join(
        &self,
        room_id: &RoomId,
        as_user: Option<&UserId>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Leaves a room or rejects an invite, with a reason shown to the others.
    fn leave(
        &self,
        room_id: &RoomId,
        reason: Option<&str>,
        as_user: Option<&UserId>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Makes sure a puppet exists (registering it in the appservice namespace).
    fn register(&self, localpart: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Sets a user's display name, as that user.
    fn set_displayname(
        &self,
        user_id: &UserId,
        name: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Creates a direct chat as `creator` inviting `invitee`; returns the room ID.
    fn create_dm(
        &self,
        creator: &UserId,
        invitee: &UserId,
        name: &str,
    ) -> impl Future<Output = Result<OwnedRoomId, Self::Error>> + Send;

    /// Creates a private group room as `creator` inviting `invitees`; returns the room ID.
    fn create_group(
        &self,
        creator: &UserId,
        invitees: &[OwnedUserId],
        name: &str,
    ) -> impl Future<Output = Result<OwnedRoomId, Self::Error>> + Send;

    /// Invites `invitee` into a room, as `as_user` (the bot when `None`).
    fn invite(
        &self,
        room_id: &RoomId,
        invitee: &UserId,
        as_user: Option<&UserId>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Sends a text, emote or notice with optional HTML as `as_user`; returns the event ID.
    fn send_text(
        &self,
        room_id: &RoomId,
        text: OutgoingText<'_>,
        txn_id: &str,
        as_user: &UserId,
    ) -> impl Future<Output = Result<OwnedEventId, Self::Error>> + Send;

    /// The event `as_user` sent into `room_id` with `mark` (see [`OutgoingText::mark`]),
    /// looking back over the room's latest events: after a send whose answer was lost
    /// (the homeserver restarted), whether it went through after all.
    fn find_marked(
        &self,
        room_id: &RoomId,
        as_user: &UserId,
        mark: &str,
    ) -> impl Future<Output = Result<Option<OwnedEventId>, Self::Error>> + Send;

    /// Whether a call that failed with `error` may work later (the homeserver away or
    /// overloaded), as opposed to a refusal that will not change.
    fn is_transient(error: &Self::Error) -> bool;

    /// Shows `user_id` typing in a room for `timeout`, or stops it (`None`).
    fn set_typing(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        timeout: Option<std::time::Duration>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Sets a user's presence and status message, as that user.
    fn set_presence(
        &self,
        user_id: &UserId,
        presence: super::presence::MatrixPresence,
        status_msg: Option<&str>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Redacts an event (a password someone typed), as the bot.
    fn redact(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        reason: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// A user's current presence; `None` when the homeserver names a state the core does
    /// not know.
    fn presence(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Option<super::presence::MatrixPresence>, Self::Error>> + Send;

    /// A user's display name, if they have one.
    fn displayname(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// A user's avatar (`mxc://` URI), if they have one.
    fn avatar_url(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// Sets a user's avatar, as that user.
    fn set_avatar(
        &self,
        user_id: &UserId,
        mxc: &str,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Uploads media as the bot; returns its `mxc://` URI.
    fn upload(
        &self,
        data: Vec<u8>,
        content_type: &str,
        filename: &str,
    ) -> impl Future<Output = Result<String, Self::Error>> + Send;

    /// Uploads the file at `path` to the media repository, streamed from disk; returns
    /// its `mxc://` URI.
    fn upload_file(
        &self,
        path: &std::path::Path,
        content_type: &str,
        filename: &str,
    ) -> impl Future<Output = Result<String, Self::Error>> + Send;

    /// Downloads `mxc` (authenticated media) into a new file at `path`, streamed to
    /// disk; fails, leaving no file, once it passes `max` bytes. Returns its size.
    fn download_to_file(
        &self,
        mxc: &str,
        path: &std::path::Path,
        max: u64,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// Replaces the text of `as_user`'s notice `target` with `body` (an `m.replace` edit,
    /// which clients show in place of the original).
    fn edit_notice(
        &self,
        room_id: &RoomId,
        target: &EventId,
        body: &str,
        txn_id: &str,
        as_user: &UserId,
    ) -> impl Future<Output = Result<OwnedEventId, Self::Error>> + Send;

    /// Sends a media message as `as_user` with transaction `txn_id`.
    fn send_media(
        &self,
        room_id: &RoomId,
        media: OutgoingMedia<'_>,
        txn_id: &str,
        as_user: &UserId,
    ) -> impl Future<Output = Result<OwnedEventId, Self::Error>> + Send;

    /// The bytes of an `mxc://` URI, or of its thumbnail scaled to fit `size`×`size`; at
    /// most `max` of them (larger media is an error).
    fn download(
        &self,
        mxc: &str,
        thumbnail: Option<u32>,
        max: usize,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send;

    /// Creates a private space as the bot, named `name`, inviting `invitee`.
    fn create_space(
        &self,
        invitee: &UserId,
        name: &str,
    ) -> impl Future<Output = Result<OwnedRoomId, Self::Error>> + Send;

    /// Puts `child` in `space` (or takes it out), as the bot.
    fn set_space_child(
        &self,
        space: &RoomId,
        child: &RoomId,
        present: bool,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Reports, as `as_user` (a member of the room: the contact's puppet in a DM),
    /// whether a Matrix message reached MSN (the message send status the mautrix bridges
    /// send, `com.beeper.message_send_status`).
    fn send_status(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        status: &SendStatus,
        as_user: &UserId,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Names a room (`m.room.name`), as `as_user`.
    /// Sets `room_id`'s avatar (`m.room.avatar`) to `mxc`, as `as_user`.
    fn set_room_avatar(
        &self,
        room_id: &RoomId,
        mxc: &str,
        as_user: &UserId,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    fn set_room_name(
        &self,
        room_id: &RoomId,
        name: &str,
        as_user: &UserId,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Marks a portal room as bridged (MSC2346), as `as_user`.
    fn mark_bridged(
        &self,
        room_id: &RoomId,
        info: &BridgeInfo,
        as_user: &UserId,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}
