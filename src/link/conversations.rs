//! One-to-one conversations over switchboards. MSN switchboards are short-lived: this keeps
//! at most one open per contact, opens one on demand (`XFR SB`, then `CAL`), answers the
//! contact's invitations (`RNG`), and forgets a switchboard when it closes, so the next
//! message transparently opens a fresh one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::convert::rich_text;
use crate::bridge::remote::RemoteEvent;
use crate::msnp::{MsgPayload, SbConfig, SbEvent, Secret};
use crate::net::{MsnSettings, NetError, NsClient, SbClient, SbEvents};

/// The open switchboards of one session, by contact address (lowercase).
#[derive(Clone)]
pub(super) struct Conversations {
    open: Arc<Mutex<HashMap<String, SbClient>>>,
    settings: MsnSettings,
    account: String,
    events: mpsc::Sender<RemoteEvent>,
}

impl Conversations {
    pub(super) fn new(
        settings: MsnSettings,
        account: String,
        events: mpsc::Sender<RemoteEvent>,
    ) -> Self {
        Self {
            open: Arc::new(Mutex::new(HashMap::new())),
            settings,
            account,
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SbClient>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open switchboard with `contact`, if any.
    pub(super) fn existing(&self, contact: &str) -> Option<SbClient> {
        let key = contact.to_lowercase();
        let mut open = self.lock();
        match open.get(&key) {
            Some(sb) if sb.is_open() => Some(sb.clone()),
            Some(_) => {
                open.remove(&key);
                None
            }
            None => None,
        }
    }

    /// The switchboard with `contact`, opening one through `ns` if there is none.
    pub(super) async fn get_or_open(
        &self,
        ns: &NsClient,
        contact: &str,
    ) -> Result<SbClient, NetError> {
        if let Some(sb) = self.existing(contact) {
            return Ok(sb);
        }
        let (address, auth) = ns.request_switchboard().await?;
        let config = SbConfig::new(self.account.clone(), ns.version());
        let (sb, events) =
            SbClient::open(&self.settings, config, &address, &auth, &[contact]).await?;
        self.adopt(contact, sb.clone(), events);
        Ok(sb)
    }

    /// Answers `inviter`'s invitation (`RNG`) and keeps the switchboard for them.
    pub(super) async fn answer(
        &self,
        version: u8,
        inviter: &str,
        address: &str,
        auth: &Secret,
        session_id: &str,
    ) -> Result<(), NetError> {
        let config = SbConfig::new(self.account.clone(), version);
        let (sb, events) =
            SbClient::answer(&self.settings, config, address, auth, session_id).await?;
        self.adopt(inviter, sb, events);
        Ok(())
    }

    /// Starts relaying a switchboard's events as the core's events.
    fn adopt(&self, contact: &str, sb: SbClient, mut events: SbEvents) {
        let key = contact.to_lowercase();
        if let Some(old) = self.lock().insert(key.clone(), sb.clone()) {
            // The contact invited us while we had one open: keep the newest, leave the old.
            tokio::spawn(async move { old.close().await });
        }
        let out = self.events.clone();
        let open = self.open.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    SbEvent::Message { from, payload, .. } => {
                        if let Some(remote) = message_event(from, payload)
                            && out.send(remote).await.is_err()
                        {
                            break;
                        }
                    }
                    SbEvent::BadMessage { from, error } => {
                        tracing::warn!(%from, %error, "unreadable message from a contact");
                        let _ = out
                            .send(RemoteEvent::Unsupported {
                                from,
                                what: "an unreadable message".into(),
                            })
                            .await;
                    }
                    SbEvent::Closed(reason) => {
                        tracing::debug!(?reason, contact = %key, "conversation closed");
                        break;
                    }
                    _ => {}
                }
            }
            let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
            if open.get(&key).is_some_and(|current| !current.is_open()) {
                open.remove(&key);
            }
        });
    }

    /// Closes every conversation (logout).
    pub(super) async fn close_all(&self) {
        let all: Vec<SbClient> = self.lock().drain().map(|(_, sb)| sb).collect();
        for sb in all {
            sb.close().await;
        }
    }
}

/// The core's event for a message payload, or `None` for what the bridge ignores.
fn message_event(from: String, payload: MsgPayload) -> Option<RemoteEvent> {
    Some(match payload {
        MsgPayload::Text { text, format, .. } => RemoteEvent::Message {
            text: rich_text(text, format.as_ref()),
            from,
        },
        MsgPayload::Typing { .. } => RemoteEvent::Typing { from },
        MsgPayload::Nudge => RemoteEvent::Nudge { from },
        // Display pictures and emoticon declarations travel here; the P2P layer is not
        // bridged yet, and they are no message for the user.
        MsgPayload::P2p { .. } | MsgPayload::Emoticons { .. } | MsgPayload::Recording { .. } => {
            return None;
        }
        MsgPayload::Datacast { id, .. } => RemoteEvent::Unsupported {
            from,
            what: format!("a datacast (ID {id})"),
        },
        MsgPayload::Invite { .. } => RemoteEvent::Unsupported {
            from,
            what: "a file or application invitation".into(),
        },
        MsgPayload::Unknown { content_type, .. } => RemoteEvent::Unsupported {
            from,
            what: content_type,
        },
        MsgPayload::Chunk(_)
        | MsgPayload::Profile { .. }
        | MsgPayload::SystemMessage { .. }
        | MsgPayload::MailNotification { .. } => {
            return None;
        }
    })
}
