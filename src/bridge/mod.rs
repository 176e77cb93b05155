//! The bridge core: the vocabulary (bridge user, management room, command, later login,
//! puppet and portal) and the policy that acts on Matrix events taken from the durable queue.
//!
//! Owns: the worker that drains the event queue in order, the management room (joining on
//! invite, the greeting, commands and permissions).
//! Must not import: HTTP routes or Matrix wire types (`crate::matrix`), MSNP wire types.
//! It talks to the homeserver only through [`MatrixPort`].

pub mod commands;
pub mod credentials;
pub mod event;
pub mod formatting;
pub mod ids;
pub mod port;
pub mod presence;
pub mod remote;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{Config, PermissionLevel};
use crate::store::{QueuedEvent, Store, StoreError};

pub use event::{MatrixEvent, Membership, MessageKind};
pub use port::MatrixPort;

/// How many queued events the worker takes per database read.
const BATCH: i64 = 64;

/// The refusal a user without permission gets, and nothing else.
pub const NOT_ALLOWED: &str = "Sorry, you are not allowed to use this bridge.";

/// The bridge core. Cheap to share: everything inside is reference-counted.
pub struct Bridge<M: MatrixPort> {
    config: Arc<Config>,
    store: Store,
    matrix: Arc<M>,
    wake: Arc<Notify>,
    handled: Arc<AtomicU64>,
}

impl<M: MatrixPort> Bridge<M> {
    /// A core over `store` and `matrix`; `wake` is notified whenever events are queued.
    pub fn new(config: Arc<Config>, store: Store, matrix: Arc<M>, wake: Arc<Notify>) -> Self {
        Self {
            config,
            store,
            matrix,
            wake,
            handled: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many queued events this core has handled since it started (shared counter).
    pub fn handled_counter(&self) -> Arc<AtomicU64> {
        self.handled.clone()
    }

    /// Drains the event queue until `shutdown` is cancelled. Events queued before a restart
    /// are handled after it; an event is removed from the queue once handled.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), StoreError> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch = self.store.queued_events(BATCH).await?;
            if batch.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = &mut notified => continue,
                }
            }
            for queued in batch {
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                let span = tracing::info_span!("event", seq = queued.seq, kind = %queued.kind);
                self.handle_queued(&queued).instrument(span).await;
                self.store.finish_event(queued.seq).await?;
                self.handled.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    async fn handle_queued(&self, queued: &QueuedEvent) {
        match serde_json::from_str::<MatrixEvent>(&queued.payload) {
            Ok(event) => self.handle_event(event).await,
            // Only this version writes the queue, so this means a downgrade or corruption:
            // say so and move on rather than block every later event.
            Err(e) => tracing::error!(error = %e, "queued event cannot be decoded; dropped"),
        }
    }

    /// Acts on one event. Failures are logged here, where they are handled.
    pub async fn handle_event(&self, event: MatrixEvent) {
        match event {
            MatrixEvent::Membership {
                room_id,
                event_id,
                sender,
                target,
                membership: Membership::Invite,
                is_direct,
            } if target == self.matrix.bot() => {
                self.on_bot_invited(&room_id, &event_id, &sender, is_direct)
                    .await;
            }
            MatrixEvent::Message {
                room_id,
                event_id,
                sender,
                kind: MessageKind::Text | MessageKind::Notice,
                body,
                ..
            } => self.on_message(&room_id, &event_id, &sender, &body).await,
            other => tracing::trace!(kind = other.kind(), "no handler for this event yet"),
        }
    }

    async fn on_bot_invited(&self, room_id: &str, event_id: &str, sender: &str, is_direct: bool) {
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
            let (help_plain, help_html) = commands::help_text(&self.config.bridge.command_prefix, self.config.permission_of(sender));
            let text = format!(
                "Hello! I bridge MSN Messenger to Matrix. This is your management room: send me commands here.\n{help_plain}"
            );
            let html = format!(
                "<p>Hello! I bridge MSN Messenger to Matrix. This is your management room: send me commands here.</p>{help_html}"
            );
            self.reply(room_id, &format!("greet-{event_id}"), &text, Some(&html)).await;
        }
        .instrument(span)
        .await;
    }

    async fn on_message(&self, room_id: &str, event_id: &str, sender: &str, body: &str) {
        let in_management_room = match self.store.user(sender).await {
            Ok(user) => user.and_then(|u| u.management_room).as_deref() == Some(room_id),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the user");
                return;
            }
        };
        let prefix = &self.config.bridge.command_prefix;
        let Some(invocation) = commands::parse(body, prefix, in_management_room) else {
            return;
        };
        let txn = format!("reply-{event_id}");
        let level = self.config.permission_of(sender);
        if level == PermissionLevel::None {
            self.reply(room_id, &txn, NOT_ALLOWED, None).await;
            return;
        }
        let span = tracing::info_span!("command", name = %invocation.name, user = %sender);
        let (text, html) = self.run_command(&invocation, level).instrument(span).await;
        self.reply(room_id, &txn, &text, html.as_deref()).await;
    }

    /// Runs a command and returns the reply (plain text and optional HTML).
    async fn run_command(
        &self,
        invocation: &commands::Invocation,
        level: PermissionLevel,
    ) -> (String, Option<String>) {
        let prefix = &self.config.bridge.command_prefix;
        let Some(spec) = commands::find(&invocation.name) else {
            let known = commands::COMMANDS
                .iter()
                .filter(|c| c.level <= level)
                .map(|c| c.name);
            let hint = match commands::suggest(&invocation.name, known) {
                Some(s) => format!(" Did you mean `{s}`?"),
                None => String::new(),
            };
            return (
                format!(
                    "Unknown command `{}`.{hint} Send `help` for the list of commands.",
                    invocation.name
                ),
                None,
            );
        };
        if spec.level > level {
            return (
                format!(
                    "`{}` needs the {:?} permission level.",
                    spec.name, spec.level
                )
                .to_lowercase(),
                None,
            );
        }
        match spec.name {
            "help" => {
                let (plain, html) = commands::help_text(prefix, level);
                (plain, Some(html))
            }
            "ping" => ("Pong! The bridge is running.".to_owned(), None),
            "version" => (format!("matrix-msn {}", env!("CARGO_PKG_VERSION")), None),
            other => (format!("`{other}` is not available yet."), None),
        }
    }

    async fn reply(&self, room_id: &str, txn_id: &str, text: &str, html: Option<&str>) {
        if let Err(e) = self
            .matrix
            .send_notice(room_id, text, html, txn_id, None)
            .await
        {
            tracing::warn!(error = %e, room = %room_id, "cannot send the bot's reply");
        }
    }
}
