//! Events from MSN on their way to Matrix (messages, nudges, notices of what the bridge
//! cannot show): written to the durable outbox before anything else is done with them,
//! then delivered by one task per Matrix user, in the order they came. A delivery that
//! fails because the homeserver is away or overloaded is retried with backoff for as long
//! as it takes (the `matrix_msn_outbox_retrying` gauge and `/health/ready` say so
//! meanwhile), so neither a homeserver restart nor a bridge restart loses one. Each event
//! is sent with the time it came (appservice `ts`) and a transaction ID made from its
//! outbox position, so a retry, even after a restart, never duplicates it.
//!
//! Must not import: Matrix or MSNP wire types (it uses the core's ports).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ruma::{OwnedUserId, UserId};

use serde::{Deserialize, Serialize};

use super::ids::MsnAddress;
use super::port::OutgoingText;
use super::registry::UserLogin;
use super::remote::{Chat, MsnConnector};
use super::{Bridge, MatrixPort, MessageKind};
use crate::store::{MessageMapping, OutboxEntry};

/// Outbox rows read at once.
const BATCH: i64 = 64;
/// The first and the longest wait before a failed delivery is tried again.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// How many times an event from MSN is written to the outbox before it is given up
/// (backing off from [`RETRY_FIRST`]: about two minutes in all).
const PUSH_TRIES: u32 = 8;

/// What an event from MSN becomes in its portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Shape {
    /// The contact's message (recorded in the message map).
    Text,
    /// An emote (a nudge).
    Emote,
    /// A notice (what the bridge cannot show).
    Notice,
    /// What the user wrote from their own Messenger, sent as the user (double
    /// puppeting); `from` is a contact of the conversation.
    Own,
    /// The contact's file ([`Outgoing::file`]), uploaded and posted as media; `body` is
    /// its name.
    File,
}

/// One event for a portal, as the outbox keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Outgoing {
    /// The portal's chat key.
    pub chat: String,
    /// The contact's MSN address: their puppet sends it.
    pub from: String,
    pub shape: Shape,
    pub body: String,
    pub html: Option<String>,
    /// When it was written, if not when it came (an offline message), ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_ms: Option<i64>,
    /// The offline message it is, deleted on MSN once delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_id: Option<String>,
    /// The local copy of a contact's file ([`Shape::File`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<super::files::LocalFile>,
    /// The progress notice of a file transfer this starts or ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<super::files::Progress>,
}

/// Why an event could not be delivered now.
pub(super) enum Failed {
    /// The homeserver may take it later.
    Transient(String),
    /// It never will (the room refuses the puppet, the event is malformed): dropped.
    Permanent(String),
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// Writes an event for `mxid`'s portal to the outbox and wakes its delivery. Awaited
    /// by the session's event loop, so one user's events are written in the order they
    /// came (and a database that is slow to take them holds the session's events back).
    /// A write that fails is tried again, [`PUSH_TRIES`] times in all; only a database
    /// that fails all of them loses the event, and that is logged.
    pub(super) async fn post_to_matrix(self: &Arc<Self>, mxid: &UserId, outgoing: Outgoing) {
        let sealed = serde_json::to_string(&outgoing)
            .map_err(|e| e.to_string())
            .and_then(|json| self.credentials.seal_text(&json).map_err(|e| e.to_string()));
        let stored = match sealed {
            Ok(sealed) => self.push_to_outbox(mxid, &sealed).await,
            Err(e) => Err(e),
        };
        match stored {
            Ok(_) => self.wake_outbox(mxid),
            Err(e) => {
                self.metrics.error("store");
                tracing::error!(error = %e, "cannot queue an event from MSN for Matrix; it is lost");
            }
        }
    }

    /// [`Store::outbox_push`], tried again after a failure (a pool timeout, a busy or
    /// restarting database) with backoff, [`PUSH_TRIES`] times in all.
    ///
    /// [`Store::outbox_push`]: crate::store::Store::outbox_push
    async fn push_to_outbox(&self, mxid: &UserId, sealed: &str) -> Result<i64, String> {
        let mut delay = RETRY_FIRST;
        let mut tries = 0;
        loop {
            tries += 1;
            match self.store.outbox_push(mxid, sealed).await {
                Ok(seq) => return Ok(seq),
                Err(e) if tries >= PUSH_TRIES => return Err(e.to_string()),
                Err(e) => {
                    tracing::warn!(error = %e, ?delay, "cannot write an event from MSN to the outbox; retrying");
                    if !self.pause(&mut delay).await {
                        return Err(e.to_string());
                    }
                }
            }
        }
    }

    /// Starts (or wakes) the delivery of `mxid`'s outbox.
    pub(super) fn wake_outbox(self: &Arc<Self>, mxid: &UserId) {
        let user = self.users.entry(mxid);
        let started = !user.outbox_started.swap(true, Ordering::AcqRel);
        if started {
            let span = tracing::info_span!("outbox", mxid = %mxid);
            tokio::spawn(tracing::Instrument::instrument(
                self.clone().deliver_outbox(mxid.to_owned(), user.clone()),
                span,
            ));
        }
        user.outbox.notify_one();
    }

    /// Resumes the outboxes an earlier run left events in.
    pub(super) async fn resume_outboxes(self: &Arc<Self>) {
        match self.store.outbox_receivers().await {
            Ok(receivers) => {
                for mxid in receivers {
                    self.wake_outbox(&mxid);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the outbox to resume it"),
        }
    }

    /// Delivers `mxid`'s outbox in order until shutdown, waiting for a wake when empty.
    async fn deliver_outbox(self: Arc<Self>, mxid: OwnedUserId, user: Arc<UserLogin<C::Session>>) {
        let mut after = 0;
        let mut delay = RETRY_FIRST;
        loop {
            let batch = match self.store.outbox_of(&mxid, after, BATCH).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(error = %e, ?delay, "cannot read the outbox; retrying");
                    if !self.pause(&mut delay).await {
                        return;
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    () = user.outbox.notified() => continue,
                }
            }
            // Removed a batch at a time: one statement for the batch, not one per event.
            // An event delivered but not yet removed when the bridge stops is found by
            // its mark after the restart, and not sent again.
            let mut delivered = Vec::with_capacity(batch.len());
            let mut stopping = false;
            for entry in batch {
                if !self.deliver_entry(&mxid, &entry).await {
                    stopping = true;
                    break;
                }
                after = entry.seq;
                delivered.push(entry.seq);
            }
            if let Err(e) = self.store.outbox_remove(&delivered).await {
                tracing::error!(error = %e, "cannot remove delivered events from the outbox");
            }
            if stopping {
                return;
            }
        }
    }

    /// Delivers one entry, retrying for as long as the homeserver may take it (an entry
    /// the homeserver will never take is dropped). `false` at shutdown (the entry stays
    /// for the restart).
    async fn deliver_entry(&self, mxid: &UserId, entry: &OutboxEntry) -> bool {
        let mut delay = RETRY_FIRST;
        let mut retrying = false;
        // Written by an earlier run, it may have been sent before that run stopped (a kill
        // between the send and the removal).
        let earlier = entry.created_at < self.started_ms;
        let outcome = loop {
            let again = retrying || earlier;
            let failed = match self.open_outgoing(&entry.payload) {
                Ok(outgoing) => match self.deliver(mxid, entry, &outgoing, again).await {
                    Ok(()) => break Ok(()),
                    Err(failed) => failed,
                },
                Err(e) => Failed::Permanent(format!("cannot read it back: {e}")),
            };
            match failed {
                Failed::Permanent(why) => break Err(why),
                Failed::Transient(why) => {
                    if !retrying {
                        retrying = true;
                        self.metrics.outbox_retrying.inc();
                    }
                    tracing::warn!(%why, ?delay, seq = entry.seq, "the homeserver does not take an event from MSN yet; retrying");
                    if !self.pause(&mut delay).await {
                        self.metrics.outbox_retrying.dec();
                        return false;
                    }
                }
            }
        };
        if retrying {
            self.metrics.outbox_retrying.dec();
        }
        if let Err(why) = outcome {
            self.metrics.error("to_matrix");
            tracing::error!(%why, seq = entry.seq, "an event from MSN cannot be bridged; dropped");
        }
        true
    }

    /// Waits `delay` (doubling it for next time, up to [`RETRY_MAX`]); `false` at shutdown.
    async fn pause(&self, delay: &mut Duration) -> bool {
        let wait = *delay;
        *delay = (*delay * 2).min(RETRY_MAX);
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    pub(super) fn open_outgoing(&self, payload: &str) -> Result<Outgoing, String> {
        let json = self
            .credentials
            .open_text(payload)
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&json).map_err(|e| e.to_string())
    }

    /// Sends one event into its portal (created if needed) as the contact's puppet. Sent
    /// `again`, it first looks whether the earlier attempt went through after all: a
    /// homeserver that restarts forgets the transaction IDs it saw, and an answer lost on
    /// the way back must not make the event appear twice.
    async fn deliver(
        &self,
        mxid: &UserId,
        entry: &OutboxEntry,
        outgoing: &Outgoing,
        again: bool,
    ) -> Result<(), Failed> {
        let chat = Chat::from_key(&outgoing.chat);
        // A portal that cannot be made now (the homeserver away) may be made later.
        let Some(room) = self.portal_room(mxid, &chat, true).await else {
            return Err(Failed::Transient("the portal cannot be made".into()));
        };
        let Some(puppet) = self.puppet_id(&MsnAddress::from_server(&outgoing.from)) else {
            return Err(Failed::Permanent(format!(
                "{} makes no valid Matrix user ID",
                outgoing.from
            )));
        };
        let kind = match outgoing.shape {
            Shape::Text | Shape::Own | Shape::File => MessageKind::Text,
            Shape::Emote => MessageKind::Emote,
            Shape::Notice => MessageKind::Notice,
        };
        let own = outgoing.shape == Shape::Own;
        let sender = if own { mxid.to_owned() } else { puppet.clone() };
        // A failure of an announced transfer edits its announcement instead.
        if self
            .concluded_in_place(mxid, &room, &puppet, entry, outgoing)
            .await?
        {
            return Ok(());
        }
        // An offline message is named by its id, not its outbox place: MSN hands it over
        // at every login until it is deleted, so it may be queued again, and may have been
        // sent before a crash kept it from being deleted.
        let (txn, again) = match &outgoing.offline_id {
            Some(id) => (offline_mark(id), true),
            None => (
                format!("msn-outbox-{}-{}", entry.seq, entry.created_at),
                again,
            ),
        };
        let text = OutgoingText {
            kind: &kind,
            body: &outgoing.body,
            html: outgoing.html.as_deref(),
            at_ms: Some(outgoing.written_ms.unwrap_or(entry.created_at)),
            mark: Some(&txn),
            as_real_user: own,
        };
        // (The user's own line cannot be looked up as the puppet: sent again.)
        let already = if again && !own {
            self.matrix
                .find_marked(&room, &puppet, &txn)
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        let sent = match already {
            Some(event_id) => {
                tracing::info!("an earlier attempt went through; not sent again");
                Ok(event_id)
            }
            None if outgoing.shape == Shape::File => {
                let at_ms = outgoing.written_ms.unwrap_or(entry.created_at);
                Ok(self
                    .post_file(&room, outgoing, &txn, at_ms, &sender)
                    .await?)
            }
            None => self.matrix.send_text(&room, text, &txn, &sender).await,
        };
        let event_id = match sent {
            Ok(event_id) => event_id,
            Err(e) if M::is_transient(&e) => return Err(Failed::Transient(e.to_string())),
            Err(e) if own => {
                // The homeserver refused the user's own line (not in the room yet, say):
                // it is shown as a notice instead, never lost.
                tracing::info!(error = %e, "the user's own line goes as a notice");
                let body = format!("you, from Messenger: {}", outgoing.body);
                let notice = OutgoingText {
                    kind: &MessageKind::Notice,
                    body: &body,
                    html: None,
                    at_ms: Some(entry.created_at),
                    mark: None,
                    as_real_user: false,
                };
                let txn = format!("{txn}-notice");
                match self.matrix.send_text(&room, notice, &txn, &puppet).await {
                    Ok(event_id) => event_id,
                    Err(e) if M::is_transient(&e) => {
                        return Err(Failed::Transient(e.to_string()));
                    }
                    Err(e) => return Err(Failed::Permanent(e.to_string())),
                }
            }
            Err(e) => return Err(Failed::Permanent(e.to_string())),
        };
        if matches!(outgoing.shape, Shape::Text | Shape::File) {
            Self::forget_file(outgoing).await;
            self.metrics.message("to_matrix");
            let mapping = MessageMapping {
                matrix_event_id: event_id.to_string(),
                part: 0,
                room_id: room.to_string(),
                receiver: mxid.to_string(),
                msn_message_id: txn,
                direction: "to_matrix".into(),
            };
            if let Err(e) = self.messages.record(mapping).await {
                tracing::error!(error = %e, "cannot store the message mapping");
            }
        }
        if let Some(id) = &outgoing.offline_id {
            self.delete_offline_message(mxid, id);
        }
        self.after_progress(mxid, &room, &puppet, entry, outgoing, &event_id)
            .await;
        Ok(())
    }
}

/// The mark (and message-map id) of an offline message bridged to Matrix.
pub(super) fn offline_mark(id: &str) -> String {
    format!("msn-oim-{id}")
}
