//! The bridge core: the vocabulary (bridge user, management room, command, login, puppet,
//! portal) and the policy that acts on Matrix events taken from the durable queue and on
//! MSN events from each user's session.
//!
//! Owns: the worker that drains the event queue (`worker.rs`), the management room (joining on
//! invite, the greeting, commands and permissions), logins (`logins.rs`), puppets
//! (`puppets.rs`) and portals (`portals.rs`).
//! Must not import: HTTP routes or Matrix wire types (`crate::matrix`), MSNP wire types
//! (`msnp`, `crate::net`). It talks to the homeserver through [`MatrixPort`] and to
//! MSN through [`remote::MsnConnector`].

pub mod commands;
pub mod credentials;
pub mod event;
pub mod feed;
mod files;
pub mod formatting;
mod group_names;
pub mod ids;
mod logins;
pub mod media;
mod message_log;
mod offline;
mod outbox;
pub mod pictures;
pub mod port;
mod portals;
pub mod presence;
pub mod provision;
mod puppets;
mod readiness;
mod registry;
pub mod remote;
mod send_status;
mod spaces;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ruma::{EventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{Config, PermissionLevel};
use crate::store::Store;
use credentials::CredentialBox;
use registry::{PortalState, PuppetState, Registry, UserLogin};
use remote::MsnConnector;

pub use event::{MatrixEvent, Media, Membership, MessageKind, Unbridgeable};
pub use feed::{
    Accepted, EventFeed, EventIntake, Ingress, IngressError, QueuedMatrixEvent, event_feed,
    event_feed_with_capacity,
};
pub use logins::LoginStatus;
pub use port::MatrixPort;

/// MSN logins in progress at once, across users.
pub const LOGINS_AT_ONCE: usize = 4;

/// The refusal a user without permission gets, and nothing else.
pub const NOT_ALLOWED: &str = "Sorry, you are not allowed to use this bridge.";

/// What a core is made of.
pub struct Parts<M: MatrixPort, C: MsnConnector> {
    pub config: Arc<Config>,
    pub store: Store,
    pub matrix: Arc<M>,
    pub msn: Arc<C>,
    pub credentials: CredentialBox,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub shutdown: CancellationToken,
}

/// The bridge core. Shared as `Arc<Bridge>`: sessions' event loops hold a reference.
pub struct Bridge<M: MatrixPort, C: MsnConnector> {
    config: Arc<Config>,
    store: Store,
    matrix: Arc<M>,
    msn: Arc<C>,
    credentials: CredentialBox,
    metrics: Arc<crate::metrics::Metrics>,
    /// The message map, written with group commit.
    messages: message_log::MessageLog,
    handled: Arc<AtomicU64>,
    handled_messages: Arc<AtomicU64>,
    /// The bridge's Matrix users, each with their MSN login and what the core keeps
    /// about them.
    users: Registry<OwnedUserId, UserLogin<C::Session>>,
    /// MSN contacts' puppets, by address.
    puppets: Registry<ids::MsnAddress, PuppetState>,
    /// Portal rooms, by room ID.
    portals: Registry<OwnedRoomId, PortalState>,
    /// The presence last set on each puppet: sent again only on change, and refreshed
    /// before the homeserver lets it decay.
    presence: Mutex<registry::PuppetPresence>,
    /// When this core started (ms since the epoch): outbox events written before may
    /// have been sent by an earlier run.
    started_ms: i64,
    /// Portal rooms by their key: a read-through cache of the store.
    portal_rooms: Mutex<HashMap<ids::PortalKey, OwnedRoomId>>,
    /// Held while a portal room is created, so two events cannot create two rooms.
    creating_portal: tokio::sync::Mutex<()>,
    /// Bounds MSN logins in progress at once ([`LOGINS_AT_ONCE`]).
    login_permits: tokio::sync::Semaphore,
    /// Bounds picture fetches from MSN across users ([`pictures::PICTURE_FETCHES`]).
    picture_permits: tokio::sync::Semaphore,
    /// Bounds send statuses on their way to the homeserver
    /// ([`send_status::STATUSES_IN_FLIGHT`]).
    status_permits: Arc<tokio::sync::Semaphore>,
    /// Makes transaction IDs of messages from MSN, and login generations, unique within
    /// this run.
    sequence: AtomicU64,
    shutdown: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// A core over the given parts.
    pub fn new(parts: Parts<M, C>) -> Arc<Self> {
        let Parts {
            config,
            store,
            matrix,
            msn,
            credentials,
            metrics,
            shutdown,
        } = parts;
        Arc::new(Self {
            config,
            messages: message_log::MessageLog::start(store.clone()),
            store,
            matrix,
            msn,
            credentials,
            metrics,
            handled: Arc::new(AtomicU64::new(0)),
            handled_messages: Arc::new(AtomicU64::new(0)),
            users: Registry::new(),
            puppets: Registry::new(),
            portals: Registry::new(),
            presence: Mutex::new(HashMap::new()),
            started_ms: crate::store::now_ms(),
            portal_rooms: Mutex::new(HashMap::new()),
            creating_portal: tokio::sync::Mutex::new(()),
            login_permits: tokio::sync::Semaphore::new(LOGINS_AT_ONCE),
            picture_permits: tokio::sync::Semaphore::new(pictures::PICTURE_FETCHES),
            status_permits: Arc::new(tokio::sync::Semaphore::new(send_status::STATUSES_IN_FLIGHT)),
            sequence: AtomicU64::new(0),
            shutdown,
        })
    }

    /// How many queued events this core has handled since it started (shared counter).
    pub fn handled_counter(&self) -> Arc<AtomicU64> {
        self.handled.clone()
    }

    /// How many of those were room messages (ephemeral events and membership excluded).
    pub fn handled_messages_counter(&self) -> Arc<AtomicU64> {
        self.handled_messages.clone()
    }

    /// Logs back in every user who was logged in when the bridge stopped, one at a time.
    pub async fn restore_logins(self: &Arc<Self>) {
        logins::restore(self).await;
    }

    /// Signs every session out (bridge shutdown).
    pub async fn logout_all(&self) {
        let sessions: Vec<C::Session> = self
            .users
            .all()
            .into_iter()
            .filter_map(|(_, user)| user.take_login())
            .map(|login| login.session)
            .collect();
        for session in sessions {
            remote::MsnSessionPort::logout(&session).await;
        }
    }

    /// Acts on one event. Failures are logged here, where they are handled.
    pub async fn handle_event(self: &Arc<Self>, event: MatrixEvent) {
        match event {
            MatrixEvent::Membership {
                room_id,
                event_id,
                sender,
                target,
                membership: Membership::Invite,
                is_direct,
                ..
            } if target == self.matrix.bot() => {
                self.on_bot_invited(&room_id, &event_id, &sender, is_direct)
                    .await;
            }
            MatrixEvent::Message {
                room_id,
                event_id,
                sender,
                kind,
                body,
                html,
                media,
            } => {
                let content = portals::Content {
                    kind,
                    body: &body,
                    html: html.as_deref(),
                    media: media.as_ref(),
                };
                self.on_message(&room_id, &event_id, &sender, content).await
            }
            MatrixEvent::Membership {
                room_id,
                sender,
                target,
                membership: Membership::Leave,
                ..
            } if sender == target => {
                // The user left a portal of theirs: it leaves their space too.
                if let Some(portal) = self.portal_by_room(&room_id).await
                    && portal.receiver == sender
                {
                    self.place_in_space(&sender, &room_id, false).await;
                }
            }
            MatrixEvent::Membership {
                sender,
                target,
                membership: Membership::Join,
                displayname,
                avatar_url,
                ..
            } if sender == target => {
                if displayname.is_some() {
                    self.on_own_displayname(&sender).await;
                }
                self.on_own_avatar(&sender, avatar_url.as_deref()).await;
            }
            MatrixEvent::Typing { room_id, user_ids } => self.on_typing(&room_id, &user_ids).await,
            MatrixEvent::Receipt {
                room_id, user_id, ..
            } => self.on_receipt(&room_id, &user_id).await,
            MatrixEvent::Presence {
                user_id, presence, ..
            } => self.on_presence(&user_id, &presence).await,
            MatrixEvent::Unbridgeable {
                room_id,
                sender,
                what,
                ..
            } => self.on_unbridgeable(&room_id, &sender, what).await,
            MatrixEvent::RoomNamed {
                room_id,
                sender,
                name,
                ..
            } => self.on_room_named(&room_id, &sender, &name).await,
            other => tracing::trace!(kind = other.kind(), "no handler for this event"),
        }
    }

    async fn on_bot_invited(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        is_direct: bool,
    ) {
        let span = tracing::info_span!("management", room = %room_id, user = %sender);
        async {
            if self.config.permission_of(sender) == PermissionLevel::None {
                tracing::info!("invite from a user without permission; rejecting");
                if let Err(e) = self.matrix.leave(room_id, Some(NOT_ALLOWED), None).await {
                    tracing::warn!(error = %e, "cannot reject the invite");
                }
                return;
            }
            if let Err(e) = self.matrix.join(room_id, None).await {
                tracing::warn!(error = %e, "cannot join the room the bot was invited to");
                return;
            }
            let existing = match self.store.user(sender).await {
                Ok(user) => user.and_then(|u| u.management_room),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the user");
                    return;
                }
            };
            if !is_direct && existing.is_some() {
                tracing::info!("joined a non-direct room; the management room stays as it was");
                return;
            }
            if let Err(e) = self.store.set_management_room(sender, room_id).await {
                tracing::error!(error = %e, "cannot store the management room");
                return;
            }
            *lock(&self.users.entry(sender).management_room) = Some(room_id.to_owned());
            let (help_plain, help_html) = commands::help_text(
                &self.config.bridge.command_prefix,
                self.config.permission_of(sender),
            );
            let text = format!(
                "Hello! I bridge MSN Messenger to Matrix. This is your management room: send me commands here.\n{help_plain}"
            );
            let html = format!(
                "<p>Hello! I bridge MSN Messenger to Matrix. This is your management room: send me commands here.</p>{help_html}"
            );
            self.reply(room_id, &format!("greet-{event_id}"), &text, Some(&html))
                .await;
        }
        .instrument(span)
        .await;
    }

    async fn on_message(
        self: &Arc<Self>,
        room_id: &RoomId,
        event_id: &EventId,
        sender: &UserId,
        content: portals::Content<'_>,
    ) {
        let body = content.body;
        let prefix = &self.config.bridge.command_prefix;
        let level = self.config.permission_of(sender);
        let Ok(management_room) = self.management_room(sender).await else {
            return;
        };
        let in_management_room = management_room.as_deref() == Some(room_id);
        if level == PermissionLevel::None {
            // Not (or no longer) allowed by the config: nothing is bridged for them; a
            // message in their portal comes back as undelivered, a command is refused.
            if !in_management_room && self.refuse_in_portal(room_id, event_id, sender).await {
                return;
            }
            if commands::parse(body, prefix, in_management_room).is_some() {
                let txn = format!("reply-{event_id}");
                self.reply(room_id, &txn, NOT_ALLOWED, None).await;
            }
            return;
        }
        if in_management_room {
            if self
                .take_awaited_password(room_id, event_id, sender, body)
                .await
            {
                return;
            }
        } else if self.relay_to_msn(room_id, event_id, sender, &content).await {
            return;
        }
        if !matches!(content.kind, MessageKind::Text | MessageKind::Notice) {
            return;
        }
        let Some(invocation) = commands::parse(body, prefix, in_management_room) else {
            return;
        };
        let txn = format!("reply-{event_id}");
        let span = tracing::info_span!("command", name = %invocation.name, user = %sender);
        let context = commands::Context {
            room_id,
            event_id,
            sender,
            level,
        };
        let (text, html) = self
            .run_command(&invocation, &context)
            .instrument(span)
            .await;
        // Some commands report on their own (a login's progress); they return nothing here.
        if !text.is_empty() {
            self.reply(room_id, &txn, &text, html.as_deref()).await;
        }
    }

    /// The user's management room, read through a cache (it changes only here, when the
    /// bot joins a new direct chat with the user).
    async fn management_room(&self, mxid: &UserId) -> Result<Option<OwnedRoomId>, ()> {
        let user = self.users.entry(mxid);
        if let Some(room) = lock(&user.management_room).clone() {
            return Ok(Some(room));
        }
        match self.store.user(mxid).await {
            Ok(stored) => {
                let room = stored.and_then(|u| u.management_room);
                if let Some(room) = &room {
                    *lock(&user.management_room) = Some(room.clone());
                }
                Ok(room)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the user");
                Err(())
            }
        }
    }

    /// Runs a command and returns the reply (plain text and optional HTML).
    async fn run_command(
        self: &Arc<Self>,
        invocation: &commands::Invocation,
        cx: &commands::Context<'_>,
    ) -> (String, Option<String>) {
        let prefix = &self.config.bridge.command_prefix;
        let Some(spec) = commands::find(&invocation.name) else {
            let known = commands::COMMANDS
                .iter()
                .filter(|c| c.level <= cx.level)
                .map(|c| c.name);
            let hint = match commands::suggest(&invocation.name, known) {
                Some(s) => format!(" Did you mean `{s}`?"),
                None => String::new(),
            };
            // The word is not repeated: it may be a password sent where none was awaited.
            return (
                format!(
                    "That is not a command I know.{hint} Send `help` for the list of commands."
                ),
                None,
            );
        };
        if spec.level > cx.level {
            return (
                format!(
                    "`{}` needs the {:?} permission level.",
                    spec.name, spec.level
                )
                .to_lowercase(),
                None,
            );
        }
        let args: Vec<&str> = invocation.args.iter().map(String::as_str).collect();
        let plain = |s: String| (s, None);
        match spec.name {
            "help" => {
                let (plain, html) = commands::help_text(prefix, cx.level);
                (plain, Some(html))
            }
            "ping" => plain("Pong! The bridge is running.".to_owned()),
            "version" => plain(format!("matrix-msn {}", env!("CARGO_PKG_VERSION"))),
            "login" => plain(self.cmd_login(cx, &args).await),
            "logout" => plain(self.cmd_logout(cx.sender).await),
            "status" => plain(self.cmd_status(cx.sender).await),
            "reconnect" => plain(self.cmd_reconnect(cx).await),
            "contacts" => self.cmd_contacts(cx.sender).await,
            "start-chat" => plain(self.cmd_start_chat(cx.sender, &args).await),
            "nudge" => {
                plain("Send `nudge` with the prefix in a chat room to nudge that contact.".into())
            }
            "add" | "accept" | "remove" | "block" | "unblock" => {
                plain(self.cmd_contact_change(spec.name, cx.sender, &args).await)
            }
            other => plain(format!("`{other}` is not available yet.")),
        }
    }

    async fn reply(&self, room_id: &RoomId, txn_id: &str, text: &str, html: Option<&str>) {
        if let Err(e) = self
            .matrix
            .send_notice(room_id, text, html, txn_id, None)
            .await
        {
            tracing::warn!(error = %e, room = %room_id, "cannot send the bot's reply");
        }
    }

    /// A notice from the bot in a user's management room, if they have one.
    async fn tell_user(&self, mxid: &UserId, text: &str) {
        let room = match self.store.user(mxid).await {
            Ok(Some(user)) => user.management_room,
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the user");
                None
            }
        };
        if let Some(room) = room {
            let txn = self.next_txn("notice");
            self.reply(&room, &txn, text, None).await;
        }
    }

    /// A transaction ID unique to this run.
    fn next_txn(&self, what: &str) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("{what}-{}-{n}", crate::store::now_ms())
    }

    async fn redact_secret(&self, room_id: &RoomId, event_id: &EventId) {
        if let Err(e) = self
            .matrix
            .redact(room_id, event_id, "a password; the bridge removed it")
            .await
        {
            tracing::warn!(error = %e, "cannot redact a message holding a password");
        }
    }
}
