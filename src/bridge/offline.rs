//! Offline messages in the core: the ones MSN kept while the user was away are bridged
//! into their senders' portals with the time they were written, and deleted on MSN only
//! once the homeserver has them (the outbox calls back); one seen again after a crash
//! between the two is recognised by the message map and only deleted. A Matrix message
//! MSN keeps for an offline contact is announced once in the portal.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ruma::{RoomId, UserId};

use super::ids::MsnAddress;
use super::outbox::{Shape, offline_mark};
use super::port::OutgoingText;
use super::portals::outgoing;
use super::remote::{Chat, MsnConnector, MsnSessionPort};
use super::{Bridge, MatrixPort, MessageKind, lock};

/// An offline message as the core takes it.
pub(super) struct Offline {
    pub id: String,
    pub from: MsnAddress,
    pub text: String,
    pub written_ms: Option<i64>,
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// Queues an offline message for its sender's portal, unless it was bridged before
    /// (then it is only deleted on MSN).
    pub(super) async fn relay_offline_message(self: &Arc<Self>, mxid: &UserId, message: Offline) {
        let mark = offline_mark(&message.id);
        match self.store.has_msn_message(mxid.as_str(), &mark).await {
            Ok(true) => {
                tracing::info!("an offline message bridged before; deleting it on MSN");
                self.delete_offline_message(mxid, &message.id);
                return;
            }
            Ok(false) => {}
            // Queued anyway: the outbox looks for it in the room before sending.
            Err(e) => tracing::warn!(error = %e, "cannot look up an offline message"),
        }
        let chat = Chat::Contact(message.from.clone());
        let mut queued = outgoing(&chat, &message.from, Shape::Text, message.text, None);
        queued.written_ms = message.written_ms;
        queued.offline_id = Some(message.id);
        self.post_to_matrix(mxid, queued).await;
    }

    /// Deletes a bridged offline message on MSN, in the background. Without a session
    /// now it stays there, and the next login's listing finds it bridged.
    pub(super) fn delete_offline_message(&self, mxid: &UserId, id: &str) {
        let Some(session) = self.session_of(mxid) else {
            tracing::info!("not logged in; the offline message is deleted at the next login");
            return;
        };
        let id = id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = session.delete_offline_message(&id).await {
                tracing::warn!(error = %e, "cannot delete a bridged offline message on MSN");
            }
        });
    }

    /// The contact is online: a message MSN keeps for them later is announced again.
    pub(super) fn contact_seen_online(&self, mxid: &UserId, contact: &MsnAddress) {
        let key = Chat::Contact(contact.clone()).key();
        if let Some(room) = self.cached_portal_room(mxid, &key) {
            self.portals
                .entry(&room)
                .told_stored_offline
                .store(false, Ordering::Release);
        }
    }

    /// Says once in the portal that MSN keeps the user's messages for the offline
    /// contact (again after the contact has been online).
    pub(super) async fn tell_stored_offline(
        &self,
        room_id: &RoomId,
        chat: &Chat,
        notifier: &UserId,
    ) {
        let portal = self.portals.entry(room_id);
        if portal.told_stored_offline.swap(true, Ordering::AcqRel) {
            return;
        }
        let Chat::Contact(contact) = chat else {
            return;
        };
        let name = lock(&self.puppets.entry(contact).name)
            .as_ref()
            .map_or_else(|| contact.to_string(), |n| n.shown.clone());
        let body =
            format!("{name} is offline; your messages will be delivered when they sign in to MSN.");
        let notice = OutgoingText {
            kind: &MessageKind::Notice,
            body: &body,
            html: None,
            at_ms: None,
            mark: None,
            as_real_user: false,
        };
        let txn = self.next_txn("stored-offline");
        if let Err(e) = self.matrix.send_text(room_id, notice, &txn, notifier).await {
            tracing::warn!(error = %e, "cannot say that the message waits for the contact");
        }
    }
}
