//! A recording homeserver behind the core's [`MatrixPort`]: rooms with members and
//! timelines, profiles, presence and media, in memory. It keeps the rules a homeserver
//! keeps where the core depends on them: only registered users in the appservice's
//! namespace act, a sender must be in the room, a join needs an invite, a transaction ID
//! sent again returns the first event, media over the size limit is refused. It can be
//! taken down (every call fails as a homeserver that cannot be reached does) and brought
//! back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use matrix_msn::bridge::MatrixPort;
use matrix_msn::bridge::port::{BridgeInfo, OutgoingMedia, OutgoingText, SendStatus};
use matrix_msn::bridge::presence::MatrixPresence;
use matrix_sdk::ruma::{EventId, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};

pub const DOMAIN: &str = "localhost";
pub const BOT: &str = "@msnbot:localhost";

static BOT_ID: std::sync::LazyLock<OwnedUserId> =
    std::sync::LazyLock::new(|| OwnedUserId::try_from(BOT).expect("a valid user ID"));

/// A refused or failed call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{errcode}: {message}")]
pub struct FakeError {
    pub errcode: &'static str,
    pub message: String,
    /// Whether retrying may work (the homeserver was away).
    pub transient: bool,
}

fn refused(errcode: &'static str, message: impl Into<String>) -> FakeError {
    FakeError {
        errcode,
        message: message.into(),
        transient: false,
    }
}

/// One event in a room's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_id: String,
    pub sender: String,
    /// `m.text`, `m.notice`, `m.emote`, … or `m.room.redaction`.
    pub msgtype: String,
    pub body: String,
    pub html: Option<String>,
    pub mark: Option<String>,
    /// The appservice timestamp it was sent with, if any.
    pub ts: Option<i64>,
    /// A media message's file.
    pub media: Option<Posted>,
    /// The event an edit replaces (`m.replace`).
    pub replaces: Option<String>,
}

/// The file of a media message: URI, media type and an image's size.
pub type Posted = (String, String, Option<(u32, u32)>);

/// A room as the fake holds it.
#[derive(Debug, Clone, Default)]
pub struct Room {
    pub name: Option<String>,
    /// `m.room.avatar`.
    pub avatar: Option<String>,
    pub is_direct: bool,
    pub joined: BTreeSet<String>,
    pub invited: BTreeSet<String>,
    pub timeline: Vec<Event>,
    pub bridged: Option<BridgeInfo>,
    /// Users shown typing now.
    pub typing: BTreeSet<String>,
    /// A space (`m.space` room type), and the rooms in it (`m.space.child`).
    pub is_space: bool,
    pub children: BTreeSet<String>,
    /// Message send statuses the bot reported: (event ID, status).
    pub statuses: Vec<(String, SendStatus)>,
}

#[derive(Debug, Default)]
struct State {
    down: bool,
    next: u64,
    registered: BTreeSet<String>,
    rooms: BTreeMap<String, Room>,
    /// (sender, txn_id) -> event ID: a transaction sent again is the same event.
    transactions: HashMap<(String, String), String>,
    displaynames: HashMap<String, String>,
    avatars: HashMap<String, String>,
    presence: HashMap<String, (MatrixPresence, Option<String>)>,
    media: HashMap<String, Vec<u8>>,
    redacted: Vec<(String, String)>,
    calls: u64,
}

/// The fake homeserver. Tests read it through [`FakeHomeserver::read`].
#[derive(Debug, Default)]
pub struct FakeHomeserver {
    state: Mutex<State>,
    /// Whether the bridge may act as real users (double puppeting is configured).
    double_puppet: std::sync::atomic::AtomicBool,
    /// While `true`, a sent message is in its room at once but its reply waits.
    replies_held: tokio::sync::watch::Sender<bool>,
}

impl FakeHomeserver {
    pub fn new() -> Self {
        let hs = Self::default();
        hs.lock().registered.insert(BOT.to_owned());
        hs
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the homeserver away (`true`) or brings it back.
    /// Forgets the transaction IDs seen, as Synapse does when it restarts.
    pub fn forget_transactions(&self) {
        self.lock().transactions.clear();
    }

    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Lets the bridge act as real users (double puppeting configured) or not.
    pub fn allow_double_puppet(&self, allowed: bool) {
        self.double_puppet
            .store(allowed, std::sync::atomic::Ordering::Relaxed);
    }

    /// Holds the replies to sent messages (`true`) or lets them go: the message is in its
    /// room (what others see) before its sender hears back, as when a reply is slow.
    pub fn hold_send_replies(&self, held: bool) {
        self.replies_held.send_replace(held);
    }

    /// A copy of a room, if it exists.
    pub fn room(&self, room_id: &str) -> Option<Room> {
        self.lock().rooms.get(room_id).cloned()
    }

    /// Every room ID with its room.
    pub fn rooms(&self) -> Vec<(String, Room)> {
        self.lock()
            .rooms
            .iter()
            .map(|(id, room)| (id.clone(), room.clone()))
            .collect()
    }

    pub fn displayname_of(&self, user_id: &str) -> Option<String> {
        self.lock().displaynames.get(user_id).cloned()
    }

    pub fn presence_of(&self, user_id: &str) -> Option<(MatrixPresence, Option<String>)> {
        self.lock().presence.get(user_id).cloned()
    }

    pub fn redactions(&self) -> Vec<(String, String)> {
        self.lock().redacted.clone()
    }

    pub fn is_registered(&self, user_id: &str) -> bool {
        self.lock().registered.contains(user_id)
    }

    /// How many calls the core made (answered or not).
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// A room a Matrix user made (through their own client), inviting `invitees`.
    pub fn user_creates_room(&self, creator: &str, invitees: &[&str], is_direct: bool) -> String {
        let mut state = self.lock();
        state.registered.insert(creator.to_owned());
        let room_id = state.new_id('!');
        let room = Room {
            is_direct,
            joined: [creator.to_owned()].into(),
            invited: invitees.iter().map(|i| (*i).to_owned()).collect(),
            ..Room::default()
        };
        state.rooms.insert(room_id.clone(), room);
        room_id
    }

    /// A Matrix user (through their own client) joins a room they are invited to.
    pub fn user_joins(&self, room_id: &str, user_id: &str) {
        let mut state = self.lock();
        if let Some(room) = state.rooms.get_mut(room_id) {
            room.invited.remove(user_id);
            room.joined.insert(user_id.to_owned());
        }
    }

    /// A Matrix user (through their own client) sends a text; returns its event ID.
    pub fn user_sends(&self, room_id: &str, user_id: &str, body: &str) -> String {
        let mut state = self.lock();
        let event_id = state.new_id('$');
        if let Some(room) = state.rooms.get_mut(room_id) {
            room.timeline.push(Event {
                event_id: event_id.clone(),
                sender: user_id.to_owned(),
                msgtype: "m.text".into(),
                body: body.to_owned(),
                html: None,
                mark: None,
                ts: None,
                media: None,
                replaces: None,
            });
        }
        event_id
    }

    /// The avatar the bridge gave `user_id`.
    pub fn avatar_of(&self, user_id: &str) -> Option<String> {
        self.lock().avatars.get(user_id).cloned()
    }

    /// A Matrix user names a room through their own client.
    pub fn user_names_room(&self, room_id: &str, name: &str) {
        if let Some(room) = self.lock().rooms.get_mut(room_id) {
            room.name = Some(name.to_owned());
        }
    }

    /// Puts `data` in the media repository as a Matrix client would; returns its URI.
    pub fn user_uploads(&self, data: Vec<u8>) -> String {
        let mut state = self.lock();
        state.next += 1;
        let mxc = format!("mxc://{DOMAIN}/media{}", state.next);
        state.media.insert(mxc.clone(), data);
        mxc
    }

    /// The bytes behind `mxc`.
    pub fn media(&self, mxc: &str) -> Option<Vec<u8>> {
        self.lock().media.get(mxc).cloned()
    }
}

impl State {
    fn new_id(&mut self, sigil: char) -> String {
        self.next += 1;
        format!("{sigil}fake{}:{DOMAIN}", self.next)
    }

    /// Counts the call; fails it when the homeserver is down.
    fn call(&mut self) -> Result<(), FakeError> {
        self.calls += 1;
        if self.down {
            return Err(FakeError {
                errcode: "M_UNREACHABLE",
                message: "connection refused".into(),
                transient: true,
            });
        }
        Ok(())
    }

    /// The user an appservice call acts as must be registered (the bot always is).
    fn acting(&self, user_id: &str) -> Result<(), FakeError> {
        if self.registered.contains(user_id) {
            Ok(())
        } else {
            Err(refused(
                "M_FORBIDDEN",
                format!("{user_id} is not registered by the appservice"),
            ))
        }
    }

    fn joined_room(&mut self, room_id: &str, user_id: &str) -> Result<&mut Room, FakeError> {
        self.acting(user_id)?;
        let room = self
            .rooms
            .get_mut(room_id)
            .ok_or_else(|| refused("M_NOT_FOUND", format!("no room {room_id}")))?;
        if !room.joined.contains(user_id) {
            return Err(refused(
                "M_FORBIDDEN",
                format!("{user_id} is not in {room_id}"),
            ));
        }
        Ok(room)
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        room_id: &str,
        sender: &str,
        txn_id: &str,
        msgtype: &str,
        body: &str,
        html: Option<&str>,
        mark: Option<&str>,
        ts: Option<i64>,
    ) -> Result<String, FakeError> {
        self.call()?;
        let key = (sender.to_owned(), txn_id.to_owned());
        if let Some(event_id) = self.transactions.get(&key) {
            return Ok(event_id.clone());
        }
        let event_id = self.new_id('$');
        let room = self.joined_room(room_id, sender)?;
        room.timeline.push(Event {
            event_id: event_id.clone(),
            sender: sender.to_owned(),
            msgtype: msgtype.to_owned(),
            body: body.to_owned(),
            html: html.map(str::to_owned),
            mark: mark.map(str::to_owned),
            ts,
            media: None,
            replaces: None,
        });
        self.transactions.insert(key, event_id.clone());
        Ok(event_id)
    }

    fn create_room(
        &mut self,
        creator: &str,
        invitees: &[String],
        name: &str,
        is_direct: bool,
    ) -> Result<String, FakeError> {
        self.call()?;
        self.acting(creator)?;
        let room_id = self.new_id('!');
        let room = Room {
            name: Some(name.to_owned()),
            is_direct,
            joined: [creator.to_owned()].into(),
            invited: invitees.iter().cloned().collect(),
            ..Room::default()
        };
        self.rooms.insert(room_id.clone(), room);
        Ok(room_id)
    }
}

fn event_id(id: String) -> OwnedEventId {
    OwnedEventId::try_from(id).expect("the fake makes valid event IDs")
}

fn room_id(id: String) -> OwnedRoomId {
    OwnedRoomId::try_from(id).expect("the fake makes valid room IDs")
}

impl MatrixPort for FakeHomeserver {
    type Error = FakeError;

    fn bot(&self) -> &UserId {
        &BOT_ID
    }

    fn can_double_puppet(&self, _user: &UserId) -> bool {
        self.double_puppet
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn send_notice(
        &self,
        room_id: &RoomId,
        text: &str,
        html: Option<&str>,
        txn_id: &str,
        as_user: Option<&UserId>,
    ) -> Result<OwnedEventId, FakeError> {
        let sender = as_user.map_or(BOT, UserId::as_str);
        self.lock()
            .send(
                room_id.as_str(),
                sender,
                txn_id,
                "m.notice",
                text,
                html,
                None,
                None,
            )
            .map(event_id)
    }

    async fn join(&self, room_id: &RoomId, as_user: Option<&UserId>) -> Result<(), FakeError> {
        let user = as_user.map_or(BOT, UserId::as_str);
        let mut state = self.lock();
        state.call()?;
        state.acting(user)?;
        let room = state
            .rooms
            .get_mut(room_id.as_str())
            .ok_or_else(|| refused("M_NOT_FOUND", format!("no room {room_id}")))?;
        if !room.invited.remove(user) && !room.joined.contains(user) {
            return Err(refused("M_FORBIDDEN", format!("{user} is not invited")));
        }
        room.joined.insert(user.to_owned());
        Ok(())
    }

    async fn leave(
        &self,
        room_id: &RoomId,
        _reason: Option<&str>,
        as_user: Option<&UserId>,
    ) -> Result<(), FakeError> {
        let user = as_user.map_or(BOT, UserId::as_str);
        let mut state = self.lock();
        state.call()?;
        if let Some(room) = state.rooms.get_mut(room_id.as_str()) {
            room.invited.remove(user);
            room.joined.remove(user);
        }
        Ok(())
    }

    async fn register(&self, localpart: &str) -> Result<(), FakeError> {
        let mut state = self.lock();
        state.call()?;
        state.registered.insert(format!("@{localpart}:{DOMAIN}"));
        Ok(())
    }

    async fn set_displayname(&self, user_id: &UserId, name: &str) -> Result<(), FakeError> {
        let mut state = self.lock();
        state.call()?;
        state.acting(user_id.as_str())?;
        state
            .displaynames
            .insert(user_id.to_string(), name.to_owned());
        Ok(())
    }

    async fn create_dm(
        &self,
        creator: &UserId,
        invitee: &UserId,
        name: &str,
    ) -> Result<OwnedRoomId, FakeError> {
        self.lock()
            .create_room(creator.as_str(), &[invitee.to_string()], name, true)
            .map(room_id)
    }

    async fn create_group(
        &self,
        creator: &UserId,
        invitees: &[OwnedUserId],
        name: &str,
    ) -> Result<OwnedRoomId, FakeError> {
        let invitees: Vec<String> = invitees.iter().map(ToString::to_string).collect();
        self.lock()
            .create_room(creator.as_str(), &invitees, name, false)
            .map(room_id)
    }

    async fn send_status(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        status: &SendStatus,
        as_user: &UserId,
    ) -> Result<(), FakeError> {
        let mut state = self.lock();
        state.call()?;
        state.acting(as_user.as_str())?;
        let room = state.joined_room(room_id.as_str(), as_user.as_str())?;
        room.statuses.push((event_id.to_string(), status.clone()));
        Ok(())
    }

    async fn create_space(&self, invitee: &UserId, name: &str) -> Result<OwnedRoomId, FakeError> {
        let mut state = self.lock();
        let id = state.create_room(BOT, &[invitee.to_string()], name, false)?;
        if let Some(room) = state.rooms.get_mut(&id) {
            room.is_space = true;
        }
        Ok(room_id(id))
    }

    async fn set_space_child(
        &self,
        space: &RoomId,
        child: &RoomId,
        present: bool,
    ) -> Result<(), FakeError> {
        let mut state = self.lock();
        state.call()?;
        let room = state.joined_room(space.as_str(), BOT)?;
        if !room.is_space {
            return Err(refused("M_BAD_STATE", "not a space"));
        }
        if present {
            room.children.insert(child.to_string());
        } else {
            room.children.remove(child.as_str());
        }
        Ok(())
    }

    async fn invite(
        &self,
        room_id: &RoomId,
        invitee: &UserId,
        as_user: Option<&UserId>,
    ) -> Result<(), FakeError> {
        let inviter = as_user.map_or(BOT, UserId::as_str);
        let mut state = self.lock();
        state.call()?;
        let room = state.joined_room(room_id.as_str(), inviter)?;
        if !room.joined.contains(invitee.as_str()) {
            room.invited.insert(invitee.to_string());
        }
        Ok(())
    }

    async fn send_text(
        &self,
        room_id: &RoomId,
        text: OutgoingText<'_>,
        txn_id: &str,
        as_user: &UserId,
    ) -> Result<OwnedEventId, FakeError> {
        let msgtype = text.kind.msgtype();
        let sent = self.lock().send(
            room_id.as_str(),
            as_user.as_str(),
            txn_id,
            msgtype,
            text.body,
            text.html,
            text.mark,
            text.at_ms,
        );
        let mut held = self.replies_held.subscribe();
        let _ = held.wait_for(|held| !held).await;
        sent.map(event_id)
    }

    async fn find_marked(
        &self,
        room_id: &RoomId,
        as_user: &UserId,
        mark: &str,
    ) -> Result<Option<OwnedEventId>, FakeError> {
        let mut state = self.lock();
        state.call()?;
        let room = state.joined_room(room_id.as_str(), as_user.as_str())?;
        Ok(room
            .timeline
            .iter()
            .rev()
            .find(|e| e.sender == as_user.as_str() && e.mark.as_deref() == Some(mark))
            .map(|e| event_id(e.event_id.clone())))
    }

    fn is_transient(error: &FakeError) -> bool {
        error.transient
    }

    async fn set_typing(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        timeout: Option<Duration>,
    ) -> Result<(), FakeError> {
        let mut state = self.lock();
        state.call()?;
        let room = state.joined_room(room_id.as_str(), user_id.as_str())?;
        if timeout.is_some() {
            room.typing.insert(user_id.to_string());
        } else {
            room.typing.remove(user_id.as_str());
        }
        Ok(())
    }

    async fn set_presence(
        &self,
        user_id: &UserId,
        presence: MatrixPresence,
        status_msg: Option<&str>,
    ) -> Result<(), FakeError> {
        let mut state = self.lock();
        state.call()?;
        state.acting(user_id.as_str())?;
        state.presence.insert(
            user_id.to_string(),
            (presence, status_msg.map(str::to_owned)),
        );
        Ok(())
    }

    async fn redact(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        _reason: &str,
    ) -> Result<(), FakeError> {
        let mut state = self.lock();
        state.call()?;
        let room = state.joined_room(room_id.as_str(), BOT)?;
        room.timeline.retain(|e| e.event_id != event_id.as_str());
        state
            .redacted
            .push((room_id.to_string(), event_id.to_string()));
        Ok(())
    }

    async fn presence(&self, user_id: &UserId) -> Result<Option<MatrixPresence>, FakeError> {
        let mut state = self.lock();
        state.call()?;
        Ok(Some(
            state
                .presence
                .get(user_id.as_str())
                .map_or(MatrixPresence::Online, |(p, _)| *p),
        ))
    }

    async fn displayname(&self, user_id: &UserId) -> Result<Option<String>, FakeError> {
        let mut state = self.lock();
        state.call()?;
        Ok(state.displaynames.get(user_id.as_str()).cloned())
    }

    async fn avatar_url(&self, user_id: &UserId) -> Result<Option<String>, FakeError> {
        let mut state = self.lock();
        state.call()?;
        Ok(state.avatars.get(user_id.as_str()).cloned())
    }

    async fn set_avatar(&self, user_id: &UserId, mxc: &str) -> Result<(), FakeError> {
        let mut state = self.lock();
        state.call()?;
        state.acting(user_id.as_str())?;
        state.avatars.insert(user_id.to_string(), mxc.to_owned());
        Ok(())
    }

    async fn upload(
        &self,
        data: Vec<u8>,
        _content_type: &str,
        _filename: &str,
    ) -> Result<String, FakeError> {
        let mut state = self.lock();
        state.call()?;
        state.next += 1;
        let mxc = format!("mxc://{DOMAIN}/media{}", state.next);
        state.media.insert(mxc.clone(), data);
        Ok(mxc)
    }

    async fn upload_file(
        &self,
        path: &std::path::Path,
        content_type: &str,
        filename: &str,
    ) -> Result<String, FakeError> {
        let data = tokio::fs::read(path)
            .await
            .map_err(|e| refused("M_UNKNOWN", format!("cannot read {}: {e}", path.display())))?;
        self.upload(data, content_type, filename).await
    }

    async fn download_to_file(
        &self,
        mxc: &str,
        path: &std::path::Path,
        max: u64,
    ) -> Result<u64, FakeError> {
        let data = self
            .download(mxc, None, usize::try_from(max).unwrap_or(usize::MAX))
            .await?;
        tokio::fs::write(path, &data)
            .await
            .map_err(|e| refused("M_UNKNOWN", format!("cannot write {}: {e}", path.display())))?;
        Ok(data.len() as u64)
    }

    async fn edit_notice(
        &self,
        room_id: &RoomId,
        target: &EventId,
        body: &str,
        txn_id: &str,
        as_user: &UserId,
    ) -> Result<OwnedEventId, FakeError> {
        let mut state = self.lock();
        let edited = format!("* {body}");
        let sent = state.send(
            room_id.as_str(),
            as_user.as_str(),
            txn_id,
            "m.notice",
            &edited,
            None,
            None,
            None,
        )?;
        if let Some(event) = state
            .rooms
            .get_mut(room_id.as_str())
            .and_then(|room| room.timeline.iter_mut().find(|e| e.event_id == sent))
        {
            event.replaces = Some(target.to_string());
        }
        Ok(event_id(sent))
    }

    async fn send_media(
        &self,
        room_id: &RoomId,
        media: OutgoingMedia<'_>,
        txn_id: &str,
        as_user: &UserId,
    ) -> Result<OwnedEventId, FakeError> {
        let mut state = self.lock();
        let sent = state.send(
            room_id.as_str(),
            as_user.as_str(),
            txn_id,
            media.msgtype,
            media.name,
            None,
            media.mark,
            media.at_ms,
        )?;
        if let Some(event) = state
            .rooms
            .get_mut(room_id.as_str())
            .and_then(|room| room.timeline.iter_mut().find(|e| e.event_id == sent))
        {
            event.media = Some((
                media.url.to_owned(),
                media.mimetype.to_owned(),
                media.dimensions,
            ));
        }
        Ok(event_id(sent))
    }

    async fn download(
        &self,
        mxc: &str,
        _thumbnail: Option<u32>,
        max: usize,
    ) -> Result<Vec<u8>, FakeError> {
        let mut state = self.lock();
        state.call()?;
        let data = state
            .media
            .get(mxc)
            .ok_or_else(|| refused("M_NOT_FOUND", format!("no media {mxc}")))?;
        if data.len() > max {
            return Err(refused("M_TOO_LARGE", "media larger than asked for"));
        }
        Ok(data.clone())
    }

    async fn set_room_avatar(
        &self,
        room_id: &RoomId,
        mxc: &str,
        as_user: &UserId,
    ) -> Result<(), FakeError> {
        let mut state = self.lock();
        state.call()?;
        let room = state.joined_room(room_id.as_str(), as_user.as_str())?;
        room.avatar = Some(mxc.to_owned());
        Ok(())
    }

    async fn set_room_name(
        &self,
        room_id: &RoomId,
        name: &str,
        as_user: &UserId,
    ) -> Result<(), FakeError> {
        let mut state = self.lock();
        state.call()?;
        let room = state.joined_room(room_id.as_str(), as_user.as_str())?;
        room.name = Some(name.to_owned());
        Ok(())
    }

    async fn mark_bridged(
        &self,
        room_id: &RoomId,
        info: &BridgeInfo,
        as_user: &UserId,
    ) -> Result<(), FakeError> {
        let mut state = self.lock();
        state.call()?;
        let room = state.joined_room(room_id.as_str(), as_user.as_str())?;
        room.bridged = Some(info.clone());
        Ok(())
    }
}
