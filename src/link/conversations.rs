//! Conversations over switchboards. MSN switchboards are short-lived: this keeps at most one
//! open per chat, opens one on demand (`XFR SB`, then `CAL`), answers invitations (`RNG`),
//! and forgets a switchboard when it closes, so the next message transparently opens a fresh
//! one. A switchboard with two or more other participants is a group chat: it gets a group
//! ID, and its members are remembered so the group can be called together again.
//!
//! Every switchboard serves the user's display picture (MSNSLP), and the emoticons a
//! contact declares before a text are attached to that text.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::channel::EventSender;
use bytes::Bytes;

use super::convert::{rich_text, used_emoticons};
use crate::bridge::formatting::RichText;
use crate::bridge::ids::MsnAddress;
use crate::bridge::remote::{Chat, RemoteEvent};
use crate::net::{MsnSettings, NetError, NsClient, SbClient, SbEvents, SwitchboardEvent};
use msnp::message::EmoticonDecl;
use msnp::p2p::{DeclineReason, MsnObject, P2pEvent};
use msnp::{MsgPayload, SbConfig, SbEvent, Secret};

/// Members of a group: address to friendly name.
type Members = BTreeMap<String, String>;

#[derive(Default)]
struct State {
    /// Open switchboards by chat key (`Chat::key`).
    open: HashMap<String, SbClient>,
    /// Every group seen in this session, with its last known members.
    groups: HashMap<String, Members>,
    /// The user's display picture, served on every switchboard.
    own_picture: Option<(MsnObject, Bytes)>,
}

/// The conversations of one session.
#[derive(Clone)]
pub(super) struct Conversations {
    state: Arc<Mutex<State>>,
    settings: Arc<MsnSettings>,
    account: String,
    /// MSNP16+: our endpoint's machine GUID, for `USR`/`ANS` (§15.3.3).
    endpoint: Option<String>,
    events: EventSender<RemoteEvent>,
    next_group: Arc<AtomicU64>,
    /// Woken when a contact asks for a picture of ours we do not have: they missed the
    /// announcement of the current one.
    stale_picture: Arc<tokio::sync::Notify>,
}

impl Conversations {
    pub(super) fn new(
        settings: Arc<MsnSettings>,
        account: String,
        endpoint: Option<String>,
        events: EventSender<RemoteEvent>,
    ) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            settings,
            account,
            endpoint,
            events,
            next_group: Arc::new(AtomicU64::new(0)),
            stale_picture: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Resolves when a contact asked for a picture of ours that we do not have (an old
    /// one, or `<msnobj/>`): the server did not tell them about the current one.
    pub(super) async fn stale_picture_asked(&self) {
        self.stale_picture.notified().await;
    }

    /// The link's settings (file limits and directory).
    pub(super) fn settings(&self) -> &MsnSettings {
        &self.settings
    }

    /// Passes an event to the core; false once the session's events are no longer read.
    pub(super) async fn emit(&self, event: RemoteEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open switchboard of `chat`, if any.
    pub(super) fn existing(&self, chat: &Chat) -> Option<SbClient> {
        let key = chat.key();
        let mut state = self.lock();
        match state.open.get(&key) {
            Some(sb) if sb.is_open() => Some(sb.clone()),
            Some(_) => {
                state.open.remove(&key);
                None
            }
            None => None,
        }
    }

    /// The switchboard of `chat`, opening one through `ns` if there is none: the contact,
    /// or every remembered member of the group.
    pub(super) async fn get_or_open(
        &self,
        ns: &NsClient,
        chat: &Chat,
    ) -> Result<SbClient, NetError> {
        if let Some(sb) = self.existing(chat) {
            return Ok(sb);
        }
        let (invitees, group) = match chat {
            Chat::Contact(address) => (vec![address.to_string()], None),
            Chat::Group(id) => {
                let members = self.lock().groups.get(id).cloned().unwrap_or_default();
                if members.is_empty() {
                    return Err(NetError::NotDelivered(msnp::SendFailure::Closed));
                }
                (members.into_keys().collect(), Some(id.clone()))
            }
        };
        let step = self.settings.switchboard_step;
        let (address, auth) = tokio::time::timeout(step, ns.request_switchboard())
            .await
            .map_err(|_| NetError::Timeout)??;
        let config = self.sb_config(ns.version());
        let refs: Vec<&str> = invitees.iter().map(String::as_str).collect();
        let (sb, events) = SbClient::open(&self.settings, config, &address, &auth, &refs).await?;
        self.serve_own_picture(&sb).await;
        self.adopt(chat.key(), group, sb.clone(), events);
        Ok(sb)
    }

    /// Remembers group `id`'s members unless this session knows them already.
    pub(super) fn recall_group(&self, id: &str, members: Vec<(String, String)>) {
        self.lock()
            .groups
            .entry(id.to_owned())
            .or_insert_with(|| members.into_iter().collect());
    }

    /// Answers an invitation (`RNG`) from `inviter`.
    pub(super) async fn answer(
        &self,
        version: u8,
        inviter: &str,
        address: &str,
        auth: &Secret,
        session_id: &str,
    ) -> Result<(), NetError> {
        let config = self.sb_config(version);
        let (sb, events) =
            SbClient::answer(&self.settings, config, address, auth, session_id).await?;
        self.serve_own_picture(&sb).await;
        // A chat the user's own Messenger started is keyed by its session until the
        // contact joins (two such chats must not replace each other).
        let key = if inviter.eq_ignore_ascii_case(&self.account) {
            format!("{};{session_id}", self.account)
        } else {
            Chat::Contact(MsnAddress::from_server(inviter)).key()
        };
        self.adopt(key, None, sb, events);
        Ok(())
    }

    /// A switchboard's settings: each step (`USR`/`ANS`, `CAL` until the contact joins)
    /// gets [`MsnSettings::switchboard_step`], so a switchboard that hangs is given up
    /// quickly and its waiting messages fail as never sent.
    fn sb_config(&self, version: u8) -> SbConfig {
        let mut config = SbConfig::new(self.account.clone(), version);
        config.request_timeout = self.settings.switchboard_step;
        config.join_timeout = self.settings.switchboard_step;
        config.endpoint.clone_from(&self.endpoint);
        config
    }

    /// Makes `picture` the user's display picture on every switchboard, open or to come.
    pub(super) async fn set_own_picture(&self, picture: Option<(MsnObject, Bytes)>) {
        let open: Vec<SbClient> = {
            let mut state = self.lock();
            state.own_picture = picture;
            state.open.values().cloned().collect()
        };
        for sb in open {
            self.serve_own_picture(&sb).await;
        }
    }

    async fn serve_own_picture(&self, sb: &SbClient) {
        let Some((object, data)) = self.lock().own_picture.clone() else {
            return;
        };
        match sb.publish(object, data).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the display picture does not match its msnobj"),
            Err(e) => tracing::debug!(error = %e, "switchboard gone before the picture was served"),
        }
    }

    /// Starts relaying a switchboard's events as the core's events.
    fn adopt(&self, key: String, group: Option<String>, sb: SbClient, events: SbEvents) {
        if let Some(old) = self.lock().open.insert(key.clone(), sb.clone()) {
            // A second switchboard for the same chat (the contact invited us while we had
            // one): keep the newest, leave the old.
            tokio::spawn(async move { old.close().await });
        }
        let relay = Relay {
            conversations: self.clone(),
            sb,
            key,
            group,
            others: Members::new(),
            declared: HashMap::new(),
            early_own: Vec::new(),
        };
        tokio::spawn(relay.run(events));
    }

    /// Closes every conversation (logout).
    pub(super) async fn close_all(&self) {
        let all: Vec<SbClient> = self.lock().open.drain().map(|(_, sb)| sb).collect();
        for sb in all {
            sb.close().await;
        }
    }

    /// A group id unique across restarts: the start time in ms, then a counter.
    fn new_group_id(&self) -> String {
        let n = self.next_group.fetch_add(1, Ordering::Relaxed);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        format!("{now_ms}-{n}")
    }
}

/// Follows one switchboard: who is in it, whether it is a group, and its messages.
struct Relay {
    conversations: Conversations,
    /// The switchboard followed (to answer file offers on).
    sb: SbClient,
    /// The chat key it is stored under (changes when a one-to-one chat becomes a group).
    key: String,
    group: Option<String>,
    others: Members,
    /// Emoticons each participant declared for their next text.
    declared: HashMap<String, Vec<EmoticonDecl>>,
    /// What the user wrote from their own Messenger before a contact joined (a chat it
    /// started): shown once the contact is in. At most [`MAX_EARLY_OWN`].
    early_own: Vec<RichText>,
}

/// Lines of the user's own Messenger kept while its contact is still to join.
const MAX_EARLY_OWN: usize = 32;

impl Relay {
    fn chat(&self, from: &str) -> Chat {
        match &self.group {
            Some(id) => Chat::Group(id.clone()),
            None => Chat::Contact(MsnAddress::from_server(from)),
        }
    }

    /// Whether `from` is the user's own account (another endpoint of it, MSNP16+).
    fn is_own(&self, from: &str) -> bool {
        let account = from.split(';').next().unwrap_or(from);
        account.eq_ignore_ascii_case(&self.conversations.account)
    }

    /// What the user typed in their own Messenger in this conversation (§15.3.3): its
    /// text goes to the portal as theirs; their typing and the rest are not news to them.
    async fn on_own_message(&mut self, payload: MsgPayload) -> bool {
        let MsgPayload::Text { text, format, .. } = payload else {
            return true;
        };
        let text = rich_text(text, format.as_ref());
        if self.others.is_empty() {
            // No contact yet (the user's Messenger started the chat): kept for them.
            if self.early_own.len() < MAX_EARLY_OWN {
                self.early_own.push(text);
            } else {
                tracing::warn!("the user's early lines from their Messenger overflow; one dropped");
            }
            return true;
        }
        self.emit_own(text).await
    }

    /// The user's line from their own Messenger, to the portal of this conversation.
    async fn emit_own(&self, text: RichText) -> bool {
        // Someone in the conversation, whose puppet is in the portal.
        let Some(via) = self.others.keys().next() else {
            return true;
        };
        let via = MsnAddress::from_server(via);
        let chat = match &self.group {
            Some(id) => Chat::Group(id.clone()),
            None => Chat::Contact(via.clone()),
        };
        self.emit(RemoteEvent::OwnMessage { chat, via, text }).await
    }

    async fn emit(&self, event: RemoteEvent) -> bool {
        self.conversations.emit(event).await
    }

    async fn run(mut self, mut events: SbEvents) {
        while let Some(event) = events.recv().await {
            let event = match event {
                SwitchboardEvent::Session(event) => event,
                SwitchboardEvent::Transfer(P2pEvent::Declined {
                    peer,
                    reason: DeclineReason::UnknownObject,
                }) => {
                    tracing::info!(%peer, "a contact asked for a picture we do not have; announcing ours again");
                    self.conversations.stale_picture.notify_one();
                    continue;
                }
                SwitchboardEvent::Transfer(P2pEvent::FileOffered { id, peer, file }) => {
                    let chat = self.chat(&peer);
                    let from = MsnAddress::from_server(&peer);
                    super::files::on_offer(&self.conversations, &self.sb, chat, from, id, file)
                        .await;
                    continue;
                }
                SwitchboardEvent::Transfer(transfer) => {
                    tracing::debug!(?transfer, "picture transfer");
                    continue;
                }
            };
            let alive = match event {
                SbEvent::Joined { participant, .. } => {
                    let address = participant.email.to_lowercase();
                    self.others
                        .insert(address.clone(), participant.friendly_name.clone());
                    self.on_joined(address, participant.friendly_name).await
                }
                SbEvent::Left { contact, .. } => {
                    let address = contact.to_lowercase();
                    self.others.remove(&address);
                    match self.group.clone() {
                        Some(id) => {
                            self.emit(RemoteEvent::GroupLeft {
                                chat: Chat::Group(id),
                                address: MsnAddress::from_server(&address),
                            })
                            .await
                        }
                        None => true,
                    }
                }
                SbEvent::Message {
                    from,
                    payload: MsgPayload::Emoticons { items, .. },
                    ..
                } => {
                    self.declared.insert(from.to_lowercase(), items);
                    true
                }
                SbEvent::Message { from, payload, .. } if self.is_own(&from) => {
                    self.on_own_message(payload).await
                }
                SbEvent::Message {
                    from,
                    payload: MsgPayload::Ink { format, data },
                    ..
                } => {
                    let chat = self.chat(&from);
                    let from = MsnAddress::from_server(&from);
                    super::files::on_ink(&self.conversations, chat, from, format, data).await;
                    true
                }
                SbEvent::Message {
                    from,
                    payload:
                        MsgPayload::Datacast {
                            id: super::files::VOICE_CLIP,
                            data: Some(msnobj),
                        },
                    ..
                } => {
                    let chat = self.chat(&from);
                    super::files::on_voice_clip(&self.conversations, &self.sb, chat, from, msnobj);
                    true
                }
                SbEvent::Message { from, payload, .. } => {
                    let declared = match payload {
                        MsgPayload::Text { .. } => self.declared.remove(&from.to_lowercase()),
                        _ => None,
                    };
                    let chat = self.chat(&from);
                    let from = MsnAddress::from_server(&from);
                    match message_event(chat, from, payload, &declared.unwrap_or_default()) {
                        Some(remote) => self.emit(remote).await,
                        None => true,
                    }
                }
                SbEvent::BadMessage { from, error } => {
                    tracing::warn!(%from, %error, "unreadable message from a contact");
                    let chat = self.chat(&from);
                    self.emit(RemoteEvent::Unsupported {
                        chat,
                        from: MsnAddress::from_server(&from),
                        what: "an unreadable message".into(),
                    })
                    .await
                }
                SbEvent::Closed(reason) => {
                    tracing::debug!(?reason, chat = %self.key, "conversation closed");
                    false
                }
                _ => true,
            };
            if !alive {
                break;
            }
        }
        let mut state = self.conversations.lock();
        if state
            .open
            .get(&self.key)
            .is_some_and(|current| !current.is_open())
        {
            state.open.remove(&self.key);
        }
    }

    /// A participant joined: a second other participant turns the chat into a group.
    async fn on_joined(&mut self, address: String, name: String) -> bool {
        match self.group.clone() {
            Some(id) => {
                self.conversations
                    .lock()
                    .groups
                    .insert(id.clone(), self.others.clone());
                let chat = Chat::Group(id);
                if self.others.len() == 1 {
                    // A reopened group: its first member back.
                    return true;
                }
                self.emit(RemoteEvent::GroupJoined {
                    chat,
                    address: MsnAddress::from_server(&address),
                    name,
                })
                .await
            }
            // A conversation the user's own Messenger started (it rang us first): it is
            // the chat with the first contact who joins.
            None if self.others.len() == 1 && self.is_own(&self.key) => {
                let key = Chat::Contact(MsnAddress::from_server(&address)).key();
                {
                    let mut state = self.conversations.lock();
                    if let Some(sb) = state.open.remove(&self.key) {
                        // Keep the newest conversation with the contact, as `adopt` does.
                        if let Some(old) = state.open.insert(key.clone(), sb) {
                            tokio::spawn(async move { old.close().await });
                        }
                    }
                }
                self.key = key;
                for text in std::mem::take(&mut self.early_own) {
                    if !self.emit_own(text).await {
                        return false;
                    }
                }
                true
            }
            None if self.others.len() >= 2 => {
                let id = self.conversations.new_group_id();
                let key = Chat::Group(id.clone()).key();
                {
                    let mut state = self.conversations.lock();
                    if let Some(sb) = state.open.remove(&self.key) {
                        state.open.insert(key.clone(), sb);
                    }
                    state.groups.insert(id.clone(), self.others.clone());
                }
                self.key = key;
                self.group = Some(id.clone());
                let members = self
                    .others
                    .iter()
                    .map(|(a, n)| (MsnAddress::from_server(a), n.clone()))
                    .collect();
                self.emit(RemoteEvent::GroupMembers {
                    chat: Chat::Group(id),
                    members,
                    name: None,
                })
                .await
            }
            None => true,
        }
    }
}

/// The datacast `ID` of a wink (§7.3).
const WINK: u32 = 2;

/// The core's event for a message payload, or `None` for what the bridge ignores;
/// `declared` are the sender's emoticons for a text.
fn message_event(
    chat: Chat,
    from: MsnAddress,
    payload: MsgPayload,
    declared: &[EmoticonDecl],
) -> Option<RemoteEvent> {
    Some(match payload {
        MsgPayload::Text { text, format, .. } => RemoteEvent::Message {
            chat,
            emoticons: used_emoticons(declared, &text),
            text: rich_text(text, format.as_ref()),
            from,
        },
        MsgPayload::Typing { .. } => RemoteEvent::Typing { chat, from },
        MsgPayload::Nudge => RemoteEvent::Nudge { chat, from },
        // P2P traffic is the switchboard driver's; declarations go with the next text.
        MsgPayload::P2p { .. } | MsgPayload::Emoticons { .. } | MsgPayload::Recording { .. } => {
            return None;
        }
        MsgPayload::Datacast { id: WINK, data } => {
            let name = data
                .and_then(|msnobj| MsnObject::parse(&msnobj).ok())
                .and_then(|object| object.friendly_text())
                .filter(|name| !name.trim().is_empty())
                .map(|name| format!(" (\u{201c}{name}\u{201d})"))
                .unwrap_or_default();
            RemoteEvent::Unsupported {
                chat,
                from,
                what: format!("a wink{name}, an animation Matrix cannot play"),
            }
        }
        MsgPayload::Datacast { id, .. } => RemoteEvent::Unsupported {
            chat,
            from,
            what: format!("a datacast (ID {id})"),
        },
        // Handled before (a drawing is posted as a picture).
        MsgPayload::Ink { .. } => return None,
        MsgPayload::Invite { .. } => RemoteEvent::Unsupported {
            chat,
            from,
            what: "a file or application invitation".into(),
        },
        MsgPayload::Unknown { content_type, .. } => RemoteEvent::Unsupported {
            chat,
            from,
            what: content_type,
        },
        MsgPayload::Chunk(_)
        | MsgPayload::Profile { .. }
        | MsgPayload::SystemMessage { .. }
        | MsgPayload::MailNotification { .. } => return None,
    })
}
