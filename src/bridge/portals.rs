//! Portals: the Matrix room of each (Matrix user, MSN contact) conversation, created on the
//! first message from either side and kept across switchboard sessions. Messages, typing,
//! nudges and presence cross here in both directions; a message that cannot be delivered
//! to MSN comes back as a visible notice.

use ruma::{EventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::formatting::{InlineImage, RichText, from_matrix, to_matrix};
use super::ids::MsnAddress;
use super::ids::PortalKey;
use super::outbox::{Outgoing, Shape};
use super::port::OutgoingText;
use super::presence::{MatrixPresence, own_status};
use super::remote::{Chat, DeliveryError, MsnConnector, MsnSessionPort, OwnStatus, Sent};
use super::{Bridge, MatrixPort, MessageKind, lock};
use crate::store::{MessageMapping, Portal};

/// An event from MSN for `chat`'s portal, sent by `from`'s puppet.
pub(super) fn outgoing(
    chat: &Chat,
    from: &MsnAddress,
    shape: Shape,
    body: String,
    html: Option<String>,
) -> Outgoing {
    Outgoing {
        chat: chat.key(),
        from: from.to_string(),
        shape,
        body,
        html,
        written_ms: None,
        offline_id: None,
        file: None,
        progress: None,
    }
}

/// A Matrix message's content as the core relays it.
pub(super) struct Content<'a> {
    pub kind: MessageKind,
    pub body: &'a str,
    pub html: Option<&'a str>,
    pub media: Option<&'a super::event::Media>,
}

/// How long a puppet shows as typing after MSN's `TypingUser` (MSN clients repeat it about
/// every 4 s while typing, so each one extends it).
const PUPPET_TYPING: Duration = Duration::from_secs(6);
/// How often a Matrix user's typing is repeated to MSN while it lasts.
const TYPING_REPEAT: Duration = Duration::from_millis(4500);

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    pub(super) fn session_of(&self, mxid: &UserId) -> Option<C::Session> {
        self.users.get(mxid).and_then(|user| user.session())
    }

    /// The portal room of `mxid`'s `chat`; created when `create` is set (a DM with the
    /// contact's puppet, or a group room the bot creates).
    pub(super) async fn portal_room(
        &self,
        mxid: &UserId,
        chat: &Chat,
        create: bool,
    ) -> Option<OwnedRoomId> {
        let key = chat.key();
        if let Some(room) = self.stored_portal_room(mxid, &key).await {
            return Some(room);
        }
        if !create {
            return None;
        }
        let _creating = self.creating_portal.lock().await;
        // Another event may have created it while we waited.
        if let Some(room) = self.stored_portal_room(mxid, &key).await {
            return Some(room);
        }
        let span = tracing::info_span!("portal", key = %format!("{key}|{mxid}"));
        self.create_portal(mxid, chat, &[], None)
            .instrument(span)
            .await
    }

    /// Creates and stores a portal. A DM is created by the contact's puppet; a group by the
    /// bot, with `members`' puppets invited and joined.
    async fn create_portal(
        &self,
        mxid: &UserId,
        chat: &Chat,
        members: &[(MsnAddress, String)],
        group_name: Option<&str>,
    ) -> Option<OwnedRoomId> {
        let key = chat.key();
        let (room, creator, name, kind) = match chat {
            Chat::Contact(contact) => {
                let puppet = self.ensure_puppet(contact, None).await?;
                let (name, avatar) = match self.store.puppet(contact.as_str()).await {
                    Ok(Some(p)) => (
                        p.display_name.unwrap_or_else(|| contact.to_string()),
                        p.avatar_mxc,
                    ),
                    _ => (contact.to_string(), None),
                };
                match self.matrix.create_dm(&puppet, mxid, &name).await {
                    Ok(room) => {
                        // The contact's picture, already known: the room's avatar too.
                        if let Some(mxc) = avatar
                            && let Err(e) = self.matrix.set_room_avatar(&room, &mxc, &puppet).await
                        {
                            tracing::warn!(error = %e, "cannot set the portal's avatar");
                        }
                        (room, puppet, name, "dm")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot create the portal room");
                        return None;
                    }
                }
            }
            Chat::Group(_) => {
                let names: Vec<&str> = members.iter().map(|(_, n)| n.as_str()).collect();
                let name = match group_name {
                    Some(name) => format!("{name} (MSN)"),
                    None => super::group_names::participants_name(&names),
                };
                let bot = self.matrix.bot().to_owned();
                match self
                    .matrix
                    .create_group(&bot, &[mxid.to_owned()], &name)
                    .await
                {
                    Ok(room) => (room, bot, name, "group"),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot create the group portal");
                        return None;
                    }
                }
            }
        };
        tracing::info!(%room, kind, "portal created");
        let info = super::port::BridgeInfo {
            bridgebot: self.matrix.bot().to_owned(),
            creator: creator.clone(),
            channel_id: key.clone(),
            channel_name: name.clone(),
        };
        if let Err(e) = self.matrix.mark_bridged(&room, &info, &creator).await {
            tracing::warn!(error = %e, "cannot set the m.bridge state");
        }
        let portal = Portal {
            msn_chat_id: key,
            receiver: mxid.to_owned(),
            room_id: Some(room.clone()),
            kind: kind.into(),
            name: Some(name),
        };
        if let Err(e) = self.store.upsert_portal(&portal).await {
            tracing::error!(error = %e, "cannot store the portal");
        }
        for (address, member_name) in members {
            self.puppet_joins(&room, address, member_name).await;
        }
        self.place_in_space(mxid, &room, true).await;
        Some(room)
    }

    /// A contact's puppet joins a (group) portal: invited by the bot, then joining.
    async fn puppet_joins(&self, room: &RoomId, address: &MsnAddress, name: &str) {
        let Some(puppet) = self.ensure_puppet(address, Some(name)).await else {
            return;
        };
        if let Err(e) = self.matrix.invite(room, &puppet, None).await {
            tracing::debug!(error = %e, "cannot invite the puppet (maybe already in)");
        }
        if let Err(e) = self.matrix.join(room, Some(&puppet)).await {
            tracing::warn!(error = %e, %puppet, "the puppet cannot join the portal");
        }
    }

    /// A group conversation started on MSN: its portal, with every member's puppet.
    pub(super) async fn on_group_members(
        &self,
        mxid: &UserId,
        chat: &Chat,
        members: &[(MsnAddress, String)],
        group_name: Option<&str>,
    ) {
        let key = chat.key();
        for (address, name) in members {
            self.remember_member(mxid, chat, address, Some(name)).await;
        }
        let existing = self.stored_portal_room(mxid, &key).await;
        match existing {
            Some(room) => {
                for (address, name) in members {
                    self.puppet_joins(&room, address, name).await;
                }
                self.rename_group(mxid, chat).await;
            }
            None => {
                let _creating = self.creating_portal.lock().await;
                let span = tracing::info_span!("portal", key = %format!("{key}|{mxid}"));
                self.create_portal(mxid, chat, members, group_name)
                    .instrument(span)
                    .await;
            }
        }
    }

    pub(super) async fn on_group_joined(
        &self,
        mxid: &UserId,
        chat: &Chat,
        address: &MsnAddress,
        name: &str,
    ) {
        self.remember_member(mxid, chat, address, Some(name)).await;
        if let Some(room) = self.portal_room(mxid, chat, true).await {
            self.puppet_joins(&room, address, name).await;
        }
        self.rename_group(mxid, chat).await;
    }

    pub(super) async fn on_group_left(&self, mxid: &UserId, chat: &Chat, address: &MsnAddress) {
        self.remember_member(mxid, chat, address, None).await;
        // Renamed before the puppet leaves: once it is gone, the name is settled.
        self.rename_group(mxid, chat).await;
        if let Some(room) = self.portal_room(mxid, chat, false).await {
            let Some(puppet) = self.puppet_id(address) else {
                return;
            };
            if let Err(e) = self
                .matrix
                .leave(&room, Some("left the MSN conversation"), Some(&puppet))
                .await
            {
                tracing::debug!(error = %e, "the puppet cannot leave the portal");
            }
        }
    }

    /// Keeps a group's membership in the store: `name` for a member who is in, `None` for
    /// one who left.
    async fn remember_member(
        &self,
        mxid: &UserId,
        chat: &Chat,
        address: &MsnAddress,
        name: Option<&str>,
    ) {
        let key = chat.key();
        let stored = match name {
            Some(name) => {
                self.store
                    .add_group_member(&key, mxid, address.as_str(), name)
                    .await
            }
            None => {
                self.store
                    .remove_group_member(&key, mxid, address.as_str())
                    .await
            }
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, "cannot store a group's members");
        }
    }

    /// Makes a group's stored members known to `session` (a new session, after a restart,
    /// has not seen the group).
    async fn recall_group(&self, session: &C::Session, mxid: &UserId, chat: &Chat) {
        if !matches!(chat, Chat::Group(_)) {
            return;
        }
        match self.store.group_members(&chat.key(), mxid).await {
            Ok(members) if !members.is_empty() => {
                let members = members
                    .into_iter()
                    .map(|(address, name)| (MsnAddress::from_server(&address), name))
                    .collect();
                session.recall_group(chat, members);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot read a group's members"),
        }
    }

    fn portal_key(mxid: &UserId, key: &str) -> PortalKey {
        PortalKey {
            receiver: mxid.to_owned(),
            chat: key.to_owned(),
        }
    }

    /// The portal room of `mxid`'s chat `key` if this run has met it (no store read).
    pub(super) fn cached_portal_room(&self, mxid: &UserId, key: &str) -> Option<OwnedRoomId> {
        lock(&self.portal_rooms)
            .get(&Self::portal_key(mxid, key))
            .cloned()
    }

    pub(super) async fn stored_portal_room(&self, mxid: &UserId, key: &str) -> Option<OwnedRoomId> {
        if let Some(room) = self.cached_portal_room(mxid, key) {
            return Some(room);
        }
        match self.store.portal(key, mxid).await {
            Ok(portal) => {
                let room = portal.and_then(|p| p.room_id)?;
                lock(&self.portal_rooms).insert(Self::portal_key(mxid, key), room.clone());
                Some(room)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the portal");
                None
            }
        }
    }

    /// A message from MSN into its portal, as the contact's puppet (through the outbox).
    pub(super) async fn relay_to_matrix(
        self: &Arc<Self>,
        mxid: &UserId,
        chat: &Chat,
        from: &MsnAddress,
        text: RichText,
        images: &[InlineImage],
    ) {
        let (body, html) = to_matrix(&text, images);
        self.end_puppet_typing(mxid, chat, from).await;
        self.post_to_matrix(mxid, outgoing(chat, from, Shape::Text, body, html))
            .await;
    }

    /// A contact's message ends the typing it announced. This happens in MSN's order, as
    /// the message is taken (not when the outbox gets to it): a typing notice the contact
    /// sends next must not be cleared by the message before it. Typing was only ever
    /// shown in a portal already known, so the cache answers.
    async fn end_puppet_typing(&self, mxid: &UserId, chat: &Chat, from: &MsnAddress) {
        let Some(room) = self.cached_portal_room(mxid, &chat.key()) else {
            return;
        };
        let Some(puppet) = self.puppet_id(from) else {
            return;
        };
        let shown = lock(&self.portals.entry(&room).puppets_typing).remove(&puppet);
        if shown && let Err(e) = self.matrix.set_typing(&room, &puppet, None).await {
            tracing::debug!(error = %e, "cannot end the typing");
        }
    }

    pub(super) async fn relay_typing(&self, mxid: &UserId, chat: &Chat, from: &MsnAddress) {
        let Some(room) = self.portal_room(mxid, chat, false).await else {
            return;
        };
        let Some(puppet) = self.puppet_id(from) else {
            return;
        };
        lock(&self.portals.entry(&room).puppets_typing).insert(puppet.clone());
        if let Err(e) = self
            .matrix
            .set_typing(&room, &puppet, Some(PUPPET_TYPING))
            .await
        {
            tracing::debug!(error = %e, "cannot show typing");
        }
    }

    pub(super) async fn relay_nudge(
        self: &Arc<Self>,
        mxid: &UserId,
        chat: &Chat,
        from: &MsnAddress,
    ) {
        let nudge = outgoing(chat, from, Shape::Emote, "sent you a nudge!".into(), None);
        self.post_to_matrix(mxid, nudge).await;
    }

    /// What the user wrote from their own Messenger: shown in the portal as theirs,
    /// never sent back to MSN. With double puppeting it is their own message (marked as
    /// the bridge's echo); without, a notice sent by a contact's puppet (the portal's
    /// bridge-controlled member).
    pub(super) async fn relay_own_message(
        self: &Arc<Self>,
        mxid: &UserId,
        chat: &Chat,
        via: &MsnAddress,
        text: RichText,
    ) {
        let (body, html) = to_matrix(&text, &[]);
        let own = if self.matrix.can_double_puppet(mxid) {
            outgoing(chat, via, Shape::Own, body, html)
        } else {
            let body = format!("you, from Messenger: {body}");
            let html = html.map(|h| format!("<em>you, from Messenger:</em> {h}"));
            outgoing(chat, via, Shape::Notice, body, html)
        };
        self.post_to_matrix(mxid, own).await;
    }

    pub(super) async fn relay_unsupported(
        self: &Arc<Self>,
        mxid: &UserId,
        chat: &Chat,
        from: &MsnAddress,
        what: &str,
    ) {
        let text = format!("sent something the bridge cannot show yet: {what}");
        self.post_to_matrix(mxid, outgoing(chat, from, Shape::Notice, text, None))
            .await;
    }

    /// A Matrix message in a portal, to MSN. Returns `false` when `room_id` is no portal.
    pub(super) async fn relay_to_msn(
        self: &Arc<Self>,
        room_id: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        content: &Content<'_>,
    ) -> bool {
        let Some(portal) = self.portal_by_room(room_id).await else {
            return false;
        };
        if portal.receiver != sender {
            return true;
        }
        let span = tracing::info_span!("portal", key = %format!("{}|{sender}", portal.msn_chat_id));
        self.deliver_to_msn(portal, event_id, sender, content)
            .instrument(span)
            .await;
        true
    }

    async fn deliver_to_msn(
        self: &Arc<Self>,
        portal: Portal,
        event_id: &EventId,
        sender: &UserId,
        content: &Content<'_>,
    ) {
        let (body, html) = (content.body, content.html);
        let Some(room_id) = portal.room_id.clone() else {
            return;
        };
        let room_id: &RoomId = &room_id;
        let chat = Chat::from_key(&portal.msn_chat_id);
        let notifier = self.notifier(&chat);
        // Once per Matrix event, even when the homeserver sends it again.
        let mapping = MessageMapping {
            matrix_event_id: event_id.to_string(),
            part: 0,
            room_id: room_id.to_string(),
            receiver: sender.to_string(),
            msn_message_id: String::new(),
            direction: "to_msn".into(),
        };
        match self.messages.record(mapping).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!("event already bridged");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record the message");
                let why = "the bridge could not record it in its database (try again)";
                self.report_undelivered(room_id, event_id, &notifier, why)
                    .await;
                return;
            }
        }
        if let (MessageKind::Other(msgtype), Some(media)) = (&content.kind, content.media)
            && super::files::is_file_message(msgtype)
        {
            self.send_file_to_msn((room_id, event_id), sender, &chat, (msgtype, media), body)
                .await;
            return;
        }
        // `!msn nudge` in a chat room sends a nudge instead of text.
        let prefix = &self.config.bridge.command_prefix;
        let nudge = matches!(content.kind, MessageKind::Text)
            && super::commands::parse(body, prefix, false).is_some_and(|c| c.name == "nudge");
        let text = match &content.kind {
            MessageKind::Text | MessageKind::Notice => from_matrix(body, html),
            MessageKind::Emote => {
                let mut t = from_matrix(body, html);
                t.text = format!("* {}", t.text);
                t
            }
            // A location, a sticker or another message type MSN has nothing for.
            MessageKind::Other(msgtype) => RichText {
                text: match content.media {
                    Some(media) => format!(
                        "[{}] {body}: {}",
                        msgtype.trim_start_matches("m."),
                        media.url
                    ),
                    None => format!("[{}] {body}", msgtype.trim_start_matches("m.")),
                },
                style: Default::default(),
            },
        };
        self.user_is_active(sender).await;
        let mut outcome = self.send_to_msn(sender, &chat, nudge, &text).await;
        if outcome == Err(DeliveryError::NotConnected) {
            // The connection dropped under it (nothing was sent): it waits for the session
            // as a message that came while it was away does, and goes once more.
            self.wait_for_session(sender).await;
            outcome = self.send_to_msn(sender, &chat, nudge, &text).await;
        }
        let outcome = match outcome {
            Ok(sent) => {
                self.metrics.message("to_msn");
                if sent == Sent::StoredOffline {
                    self.tell_stored_offline(room_id, &chat, &notifier).await;
                }
                Ok(())
            }
            Err(why) => Err(why.to_string()),
        };
        self.conclude(room_id, event_id, &notifier, outcome).await;
    }

    async fn send_to_msn(
        &self,
        sender: &UserId,
        chat: &Chat,
        nudge: bool,
        text: &RichText,
    ) -> Result<Sent, DeliveryError> {
        let Some(session) = self.session_of(sender) else {
            return Err(DeliveryError::Failed(
                "you are not logged in to MSN (send `login` in your management room)".into(),
            ));
        };
        self.recall_group(&session, sender, chat).await;
        if nudge {
            session.send_nudge(chat).await.map(|()| Sent::Delivered)
        } else {
            session.send_text(chat, text.clone()).await
        }
    }

    /// Who reports a failure in a portal: the contact's puppet in a DM (the bot need not
    /// be in it), the bot in a group.
    pub(super) fn notifier(&self, chat: &Chat) -> OwnedUserId {
        match chat {
            Chat::Contact(contact) => self.puppet_id(contact),
            Chat::Group(_) => None,
        }
        .unwrap_or_else(|| self.matrix.bot().to_owned())
    }

    /// A message from someone the config does not (or no longer) let use the bridge: when
    /// `room_id` is their portal they are told it was not delivered. Returns whether
    /// `room_id` is a portal.
    pub(super) async fn refuse_in_portal(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        sender: &UserId,
    ) -> bool {
        let Some(portal) = self.portal_by_room(room_id).await else {
            return false;
        };
        if portal.receiver == sender {
            let notifier = self.notifier(&Chat::from_key(&portal.msn_chat_id));
            let why = "you are not allowed to use this bridge";
            self.report_undelivered(room_id, event_id, &notifier, why)
                .await;
        }
        true
    }

    /// A redaction or reaction by the portal's user: MSN cannot carry it, and the portal
    /// says so once (per kind) rather than let it pass in silence.
    pub(super) async fn on_unbridgeable(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        what: super::event::Unbridgeable,
    ) {
        let Some(portal) = self.portal_by_room(room_id).await else {
            return;
        };
        if portal.receiver != sender {
            return;
        }
        let first = lock(&self.portals.entry(room_id).told_unbridgeable).insert(what);
        if !first {
            return;
        }
        let notifier = self.notifier(&Chat::from_key(&portal.msn_chat_id));
        let txn = self.next_txn("unbridgeable");
        let notice = OutgoingText {
            kind: &MessageKind::Notice,
            body: what.notice(),
            html: None,
            at_ms: None,
            mark: None,
            as_real_user: false,
        };
        if let Err(e) = self
            .matrix
            .send_text(room_id, notice, &txn, &notifier)
            .await
        {
            tracing::warn!(error = %e, "cannot say what MSN cannot carry");
        }
    }

    /// Tells the room, as `notifier`, that Matrix event `event_id` did not reach MSN.
    pub(super) async fn report_undelivered(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        notifier: &UserId,
        why: &str,
    ) {
        self.metrics.error("delivery");
        tracing::info!(%why, "message not delivered to MSN");
        let txn = format!("undelivered-{event_id}");
        let notice = format!("⚠ Your message was not delivered to MSN: {why}.");
        if let Err(e) = self
            .matrix
            .send_text(
                room_id,
                OutgoingText {
                    kind: &MessageKind::Notice,
                    body: &notice,
                    html: None,
                    at_ms: None,
                    mark: None,
                    as_real_user: false,
                },
                &txn,
                notifier,
            )
            .await
        {
            tracing::warn!(error = %e, "cannot report an undelivered message");
        }
    }

    /// The portal bridged by `room_id`, if it is one (read through a cache).
    pub(super) async fn portal_by_room(&self, room_id: &RoomId) -> Option<Portal> {
        // Looked up without making an entity: most rooms asked about are no portal.
        let known = self
            .portals
            .get(room_id)
            .and_then(|state| lock(&state.row).clone());
        if known.is_some() {
            return known;
        }
        match self.store.portal_by_room(room_id).await {
            Ok(Some(portal)) => {
                *lock(&self.portals.entry(room_id).row) = Some(portal.clone());
                Some(portal)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the portal");
                None
            }
        }
    }

    /// Matrix typing in a portal: repeated to MSN every few seconds while it lasts.
    pub(super) async fn on_typing(self: &Arc<Self>, room_id: &RoomId, user_ids: &[OwnedUserId]) {
        let Some(portal) = self.portal_by_room(room_id).await else {
            return;
        };
        let typing = user_ids.contains(&portal.receiver);
        if typing {
            self.user_is_active(&portal.receiver).await;
            if let Some(session) = self.session_of(&portal.receiver) {
                let chat = Chat::from_key(&portal.msn_chat_id);
                self.recall_group(&session, &portal.receiver, &chat).await;
            }
        }
        let portal_state = self.portals.entry(room_id);
        let mut task_slot = lock(&portal_state.typing);
        match (typing, task_slot.as_ref().is_some_and(|t| !t.is_finished())) {
            (true, false) => {
                let Some(session) = self.session_of(&portal.receiver) else {
                    return;
                };
                let chat = Chat::from_key(&portal.msn_chat_id);
                let task = tokio::spawn(async move {
                    loop {
                        if let Err(e) = session.send_typing(&chat).await {
                            tracing::debug!(error = %e, "cannot send typing to MSN");
                            return;
                        }
                        tokio::time::sleep(TYPING_REPEAT).await;
                    }
                });
                *task_slot = Some(task);
            }
            (false, _) => {
                if let Some(task) = task_slot.take() {
                    task.abort();
                }
            }
            (true, true) => {}
        }
    }

    /// The user read a portal: they are active.
    pub(super) async fn on_receipt(self: &Arc<Self>, room_id: &RoomId, user_id: &UserId) {
        if self
            .portal_by_room(room_id)
            .await
            .is_some_and(|p| p.receiver == user_id)
        {
            self.user_is_active(user_id).await;
        }
    }

    /// A logged-in user's new Matrix display name becomes their MSN friendly name.
    /// The user's own membership changed somewhere (a rename, a join). A member event
    /// may carry a name for that room only, so the global display name is read and used.
    pub(super) async fn on_own_displayname(&self, mxid: &UserId) {
        if !self.config.msn.sync_display_name {
            return;
        }
        let Some(session) = self.session_of(mxid) else {
            return;
        };
        let name = match self.matrix.displayname(mxid).await {
            Ok(Some(name)) if !name.trim().is_empty() => name,
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the user's display name");
                return;
            }
        };
        if let Err(e) = session.set_friendly_name(&name).await {
            tracing::debug!(error = %e, "cannot set the MSN friendly name");
        }
    }

    /// A logged-in user's Matrix presence becomes their MSN status.
    pub(super) async fn on_presence(self: &Arc<Self>, user_id: &UserId, presence: &str) {
        let Some(presence) = MatrixPresence::parse(presence) else {
            return;
        };
        self.set_own_status(
            user_id,
            own_status(presence, self.config.msn.offline_status),
        )
        .await;
    }

    /// The MSN status for the user's presence as the homeserver has it now (asked at
    /// login: after a restart nothing says it yet); online when it cannot say.
    pub(super) async fn current_own_status(&self, mxid: &UserId) -> OwnStatus {
        match self.matrix.presence(mxid).await {
            Ok(Some(presence)) => own_status(presence, self.config.msn.offline_status),
            Ok(None) => OwnStatus::Online,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the user's presence");
                OwnStatus::Online
            }
        }
    }

    async fn set_own_status(self: &Arc<Self>, mxid: &UserId, status: OwnStatus) {
        let Some(session) = self.session_of(mxid) else {
            return;
        };
        let was = lock(&self.users.entry(mxid).own_status).replace(status);
        if let Err(e) = session.set_status(status).await {
            tracing::debug!(error = %e, "cannot set the MSN status");
        }
        if was == Some(OwnStatus::Hidden) && status != OwnStatus::Hidden {
            self.avatars_after_hiding(mxid, &session).await;
        }
    }

    /// The user writes, types or reads in a portal: they are active, and a hidden user
    /// can open no conversation on MSN, so a hidden session goes online first.
    pub(super) async fn user_is_active(self: &Arc<Self>, mxid: &UserId) {
        let hidden = self
            .users
            .get(mxid)
            .is_some_and(|user| *lock(&user.own_status) == Some(OwnStatus::Hidden));
        if hidden {
            tracing::info!("the user is active: online instead of hidden");
            self.set_own_status(mxid, OwnStatus::Online).await;
        }
    }

    pub(super) async fn cmd_contacts(&self, mxid: &UserId) -> (String, Option<String>) {
        let Some(session) = self.session_of(mxid) else {
            return ("You are not logged in.".into(), None);
        };
        let contacts = match session.contacts().await {
            Ok(c) => c,
            Err(e) => return (format!("Cannot list your contacts: {e}."), None),
        };
        let friends: Vec<_> = contacts.iter().filter(|c| c.is_friend).collect();
        if friends.is_empty() {
            return (
                "Your MSN contact list is empty. Add someone with `add <email>`.".into(),
                None,
            );
        }
        let mut text = format!("Your MSN contacts ({}):", friends.len());
        for c in friends {
            let mut line = format!(
                "\n• {} ({}) — {}",
                c.name,
                c.address,
                c.availability.describe()
            );
            if let Some(psm) = c.personal_message.as_deref().filter(|p| !p.is_empty()) {
                line.push_str(&format!(": {psm}"));
            }
            if let Some(network) = &c.network {
                line.push_str(&format!(" [{network}]"));
            }
            if c.blocked {
                line.push_str(" [blocked]");
            }
            text.push_str(&line);
        }
        (text, None)
    }

    pub(super) async fn cmd_start_chat(&self, mxid: &UserId, args: &[&str]) -> String {
        let Some(typed) = args.first() else {
            return "Usage: `start-chat <email>`.".into();
        };
        let Some(contact) = MsnAddress::parse(typed) else {
            return format!("`{typed}` does not look like an MSN address (name@domain).");
        };
        if self.session_of(mxid).is_none() {
            return "You are not logged in.".into();
        }
        match self
            .portal_room(mxid, &Chat::Contact(contact.clone()), true)
            .await
        {
            Some(room) => {
                format!("Your chat with {contact} is room {room}: accept the invitation to start.")
            }
            None => format!("Cannot open a chat with {contact}; see the bridge's log."),
        }
    }

    pub(super) async fn cmd_contact_change(
        &self,
        what: &str,
        mxid: &UserId,
        args: &[&str],
    ) -> String {
        let Some(typed) = args.first() else {
            return format!("Usage: `{what} <email>`.");
        };
        let Some(contact) = MsnAddress::parse(typed) else {
            return format!("`{typed}` does not look like an MSN address (name@domain).");
        };
        let Some(session) = self.session_of(mxid) else {
            return "You are not logged in.".into();
        };
        let result = match what {
            "add" => session.add_contact(&contact).await,
            // Allowed to see the user and talk to them (AL), and added back (FL).
            "accept" => match session.unblock(&contact).await {
                Ok(()) => session.add_contact(&contact).await,
                Err(e) => Err(e),
            },
            "remove" => session.remove_contact(&contact).await,
            "block" => session.block(&contact).await,
            _ => session.unblock(&contact).await,
        };
        match result {
            Ok(()) => {
                if matches!(what, "add" | "accept") {
                    self.ensure_puppet(&contact, None).await;
                }
                let done = match what {
                    "add" | "accept" => "added to your contact list",
                    "remove" => "removed from your contact list",
                    "block" => "blocked",
                    _ => "unblocked",
                };
                format!("{contact} is {done}.")
            }
            Err(e) => format!("Cannot {what} {contact}: {e}."),
        }
    }
}
