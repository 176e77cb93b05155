//! Offline messages in the link (MSNP13+): the ones MSN lists at login or while online
//! are fetched and passed on to the core in the order written; one the core has bridged
//! is deleted; a text to a contact who is offline is stored for them. Whether the
//! session has them at all is the negotiated dialect's to say.

use crate::channel::EventSender;

use super::{LinkSession, delivery};
use crate::bridge::ids::MsnAddress;
use crate::bridge::remote::{DeliveryError, RemoteEvent, Sent};
use crate::net::{NetError, OfflineError, OfflineText};
use msnp::Headers;
use msnp::ns::Dialect;
use msnp::oim::store::StoreRefusal;

/// The notifications whose `Mail-Data` lists offline messages (MSNP.md §7.6).
const LISTING: [&str; 2] = [
    "text/x-msmsgsinitialmdatanotification",
    "text/x-msmsgsoimnotification",
];

/// A refusal of the offline-message service, in words for the notice.
fn refused(e: OfflineError) -> DeliveryError {
    DeliveryError::Failed(match e {
        OfflineError::Refused(StoreRefusal::Unreachable) => {
            "the contact is offline and does not take offline messages from you".into()
        }
        OfflineError::Refused(StoreRefusal::Throttled) => {
            "the contact is offline, and MSN refused to keep more messages so quickly (try again in a minute)".into()
        }
        OfflineError::Refused(StoreRefusal::InvalidContent) => {
            "the contact is offline, and MSN refused to keep this message".into()
        }
        other => format!("the contact is offline, and MSN could not keep the message ({other})"),
    })
}

impl LinkSession {
    /// Whether the negotiated version has offline messages.
    pub(super) fn takes_offline_messages(&self) -> bool {
        let version = self.session.client().map(|c| c.version()).unwrap_or(0);
        Dialect(version).has_offline_messages()
    }

    /// Stores `text` for `contact` as an offline message.
    pub(super) async fn store_offline(
        &self,
        contact: &MsnAddress,
        text: &str,
    ) -> Result<Sent, DeliveryError> {
        let ns = self.ns()?;
        let Some((book, http)) = ns.address_book().await.map_err(delivery)? else {
            return Err(delivery(NetError::DriverGone));
        };
        let name = self
            .own_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let product = msnp::challenge::recommended_product(ns.version());
        let message = OfflineText {
            from: &self.account,
            friendly_name: name.as_deref(),
            to: contact.as_str(),
            text,
        };
        self.offline
            .store(&book, &http, product, message)
            .await
            .map_err(refused)?;
        Ok(Sent::StoredOffline)
    }

    /// Deletes the offline message `id` from the server.
    pub(super) async fn delete_offline(&self, id: &str) -> Result<(), DeliveryError> {
        let Some((book, http)) = self.ns()?.address_book().await.map_err(delivery)? else {
            return Err(DeliveryError::NotConnected);
        };
        book.delete_offline_message(&http, id)
            .await
            .map_err(|e| DeliveryError::Failed(e.to_string()))
    }

    /// Passes on the offline messages a mail notification lists, fetched and in the
    /// order written. Any other notification is let be. `false` when the core has gone.
    pub(super) async fn pass_on_offline_messages(
        &self,
        content_type: &str,
        fields: &Headers,
        out: &EventSender<RemoteEvent>,
    ) -> bool {
        if !LISTING.contains(&content_type) || !self.takes_offline_messages() {
            return true;
        }
        let listed = match fields.get("Mail-Data").map(msnp::oim::read_mail_data) {
            Some(Ok(listed)) => listed,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the offline messages' list");
                return true;
            }
            None => return true,
        };
        if matches!(&listed, msnp::oim::MailData::Listed(items) if items.is_empty()) {
            return true;
        }
        let Ok(ns) = self.ns() else {
            return true;
        };
        let fetched = match ns.address_book().await {
            Ok(Some((book, http))) => book.offline_messages(&http, listed).await,
            _ => return true,
        };
        let messages = match fetched {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the offline messages");
                return true;
            }
        };
        tracing::info!(count = messages.len(), "offline messages fetched");
        for fetched in messages {
            let sender = fetched
                .message
                .sender
                .clone()
                .unwrap_or_else(|| fetched.listed.sender.clone());
            let event = RemoteEvent::OfflineMessage {
                id: fetched.listed.id,
                from: MsnAddress::from_server(&sender),
                text: fetched.message.text,
                written_ms: fetched.stored_ms,
            };
            if out.send(event).await.is_err() {
                return false;
            }
        }
        true
    }
}
