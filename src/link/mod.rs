//! The bridge core's MSN port ([`MsnConnector`], [`MsnSessionPort`]) implemented over the
//! async shell (`net`): a reconnecting session per account, conversations over
//! switchboards, and the translation of MSNP events into the core's [`RemoteEvent`]s.
//!
//! Must not import: the Matrix layer, the store.

mod circles;
mod conversations;
mod convert;
mod files;
mod offline;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tracing::Instrument;

use crate::channel::{EventSender, Events};

use crate::bridge::formatting::RichText;
use crate::bridge::ids::MsnAddress;
use crate::bridge::remote::{
    Chat, ContactInfo, DeliveryError, FileDelivery, LoginFailure, MsnConnector, MsnSessionPort,
    OutgoingFile, OwnProfile, OwnStatus, PictureRef, RemoteEvent, Sent, SessionEnd,
};
use crate::net::{
    Backoff, ContactEdit, EndReason, MsnSession, MsnSettings, NetError, OfflineSender,
    PassportError, SessionEvent, SessionEvents,
};
use circles::CircleSend;
use conversations::Conversations;
use convert::{availability, contact_info, own_status, picture_ref, text_format};
use msnp::p2p::MsnObject;
use msnp::{LoginError, MsgPayload, NsConfig, NsEvent, Secret};

/// Logs accounts in to one MSN service.
#[derive(Clone)]
pub struct MsnLink {
    /// Shared by every session, its connections and its conversations.
    settings: Arc<MsnSettings>,
    http: reqwest::Client,
    backoff: (Duration, Duration),
}

impl MsnLink {
    /// A link to the service in `settings`; reconnects back off from `initial` up to `max`.
    pub fn new(
        settings: MsnSettings,
        initial: Duration,
        max: Duration,
    ) -> Result<Self, PassportError> {
        let http =
            crate::net::http_client(settings.extra_ca_pem.as_deref(), settings.request_timeout)?;
        Ok(Self {
            settings: Arc::new(settings),
            http,
            backoff: (initial, max),
        })
    }
}

/// The msnobj `Type` of a display picture (MSNP.md §8.1).
const DISPLAY_PICTURE: u32 = 3;

/// The msnobj describing the user's display picture.
fn own_object(account: &str, data: &[u8]) -> MsnObject {
    MsnObject::for_data(account, DISPLAY_PICTURE, "0", "matrix", data)
}

/// A logged-in account.
#[derive(Clone)]
pub struct LinkSession {
    account: String,
    session: MsnSession,
    conversations: Conversations,
    contacts: Arc<Mutex<HashMap<String, ContactInfo>>>,
    /// The user's friendly name, for the offline messages they send.
    own_name: Arc<Mutex<Option<String>>>,
    offline: Arc<OfflineSender>,
}

fn login_failure(e: NetError) -> LoginFailure {
    match e {
        NetError::Passport(PassportError::WrongCredentials) => LoginFailure::WrongCredentials,
        NetError::Login(
            LoginError::AuthenticationFailed { .. } | LoginError::UnknownAccount { .. },
        ) => LoginFailure::WrongCredentials,
        NetError::Login(e @ LoginError::UnsupportedVersion { .. }) => {
            LoginFailure::UnsupportedVersion(e.to_string())
        }
        e @ (NetError::Connect { .. } | NetError::ConnectTimeout(_) | NetError::Io(_)) => {
            LoginFailure::Unreachable(e.to_string())
        }
        NetError::Passport(e @ PassportError::Http(_)) => LoginFailure::Unreachable(e.to_string()),
        other => LoginFailure::Other(other.to_string()),
    }
}

/// Tries at sending one text or nudge: on the chat's switchboard, and on a fresh one when
/// the first never sent it.
const SEND_ATTEMPTS: usize = 2;

/// Whether a failed send certainly never reached the server, so sending again cannot
/// duplicate it: it waited for a switchboard that was given up, or its driver was gone.
fn never_sent(e: &NetError) -> bool {
    matches!(
        e,
        NetError::NotDelivered(msnp::SendFailure::NotSent) | NetError::DriverGone
    )
}

/// Whether a failed send says the contact did not get it because they cannot be
/// reached: no one joined the conversation, the server refused to call them (217
/// offline), or it had nobody to give the message to (`NAK`: they left as it was sent).
fn unreachable(e: &NetError) -> bool {
    matches!(
        e,
        NetError::NotDelivered(msnp::SendFailure::NotSent | msnp::SendFailure::Nak)
            | NetError::Server { code: 217, .. }
    )
}

fn delivery(e: NetError) -> DeliveryError {
    if matches!(e, NetError::DriverGone | NetError::Closed(_)) {
        return DeliveryError::NotConnected;
    }
    DeliveryError::Failed(match e {
        NetError::NotDelivered(_) => {
            "the contact did not receive it (offline, or the conversation closed)".into()
        }
        NetError::Server { code, description } => {
            format!("the MSN server refused it (error {code}: {description})")
        }
        NetError::Timeout => "the MSN server did not answer in time".into(),
        other => other.to_string(),
    })
}

impl MsnConnector for MsnLink {
    type Session = LinkSession;

    async fn login(
        &self,
        account: &str,
        password: &str,
        profile: OwnProfile,
    ) -> Result<(LinkSession, Events<RemoteEvent>), LoginFailure> {
        let mut config = NsConfig::new(account);
        config.versions = self.settings.versions.clone();
        config.friendly_name = profile.friendly_name.clone();
        config.initial_status = own_status(profile.status);
        config.personal_message = profile.personal_message;
        config.machine_guid.clone_from(&profile.endpoint);
        let own_picture = profile
            .picture
            .map(|data| (own_object(account, &data), data));
        config.msn_object = own_picture.as_ref().map(|(object, _)| object.to_xml());
        let (session, events) = MsnSession::start(
            self.settings.clone(),
            self.http.clone(),
            config,
            Secret::new(password),
            Backoff::new(self.backoff.0, self.backoff.1),
        )
        .await
        .map_err(login_failure)?;
        let mut run = [0u8; 16];
        getrandom::fill(&mut run)
            .map_err(|_| LoginFailure::Other(NetError::NoRandomness.to_string()))?;
        let (out, out_rx) = crate::channel::channel(1024);
        let link = LinkSession {
            own_name: Arc::new(Mutex::new(profile.friendly_name.clone())),
            offline: Arc::new(OfflineSender::new(run)),
            account: account.to_owned(),
            session,
            conversations: Conversations::new(
                self.settings.clone(),
                account.to_owned(),
                profile.endpoint.clone(),
                out.clone(),
            ),
            contacts: Arc::new(Mutex::new(HashMap::new())),
        };
        link.conversations.set_own_picture(own_picture).await;
        let span = tracing::info_span!("msn_link", login = %account);
        tokio::spawn(link.clone().pump(events, out).instrument(span));
        Ok((link, out_rx))
    }

    fn server(&self) -> String {
        self.settings.server.clone()
    }
}

impl LinkSession {
    fn contacts_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ContactInfo>> {
        self.contacts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Translates the session's events into the core's, answering invitations on the way.
    /// Reading them is what keeps the session up ([`SessionEvents`]); once the core no
    /// longer reads its events, the session signs out.
    async fn pump(self, mut events: SessionEvents, out: EventSender<RemoteEvent>) {
        loop {
            let event = tokio::select! {
                event = events.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
                () = out.closed() => break,
                () = self.conversations.stale_picture_asked() => {
                    if let Err(e) = Box::pin(self.session.reannounce_msn_object()).await {
                        tracing::debug!(error = %e, "cannot announce the picture again");
                    }
                    continue;
                }
            };
            let remote = match event {
                SessionEvent::Connected { version } => Some(RemoteEvent::Connected {
                    protocol_version: version,
                }),
                SessionEvent::Reconnecting {
                    attempt,
                    delay,
                    reason,
                } => Some(RemoteEvent::Reconnecting {
                    attempt,
                    delay,
                    reason,
                }),
                SessionEvent::Ended(end) => {
                    Box::pin(self.conversations.close_all()).await;
                    Some(RemoteEvent::Ended(match end {
                        EndReason::LoginRefused(why) => SessionEnd::LoginRefused(why),
                        EndReason::SignedInElsewhere => SessionEnd::SignedInElsewhere,
                        EndReason::SignedOutRemotely => SessionEnd::SignedOutRemotely,
                        EndReason::LoggedOut => SessionEnd::LoggedOut,
                    }))
                }
                SessionEvent::Ns(NsEvent::NsMessage(MsgPayload::MailNotification {
                    content_type,
                    fields,
                })) => {
                    // Boxed, as the other rare paths here: fetching offline messages
                    // (SOAP) is a deep future an idle session's task should not carry.
                    if Box::pin(self.pass_on_offline_messages(&content_type, &fields, &out)).await {
                        continue;
                    }
                    break;
                }
                // Boxed: answering an invitation opens a switchboard (a deep future) that
                // an idle session's task should not carry the size of.
                SessionEvent::Ns(ns) => Box::pin(self.on_ns(ns)).await,
            };
            if let Some(remote) = remote
                && out.send(remote).await.is_err()
            {
                break;
            }
        }
        if out.is_closed() {
            // Nobody reads this session's events any more: sign out rather than keep the
            // account online with nobody to hear it.
            Box::pin(MsnSessionPort::logout(&self)).await;
        }
    }

    async fn on_ns(&self, event: NsEvent) -> Option<RemoteEvent> {
        match event {
            NsEvent::ContactList(list) => {
                let mut known = self.contacts_lock();
                for contact in list.contacts.values() {
                    let mut info = contact_info(contact);
                    if let Some(old) = known.get(info.address.as_str()) {
                        info.availability = old.availability;
                        info.personal_message = old.personal_message.clone();
                    }
                    known.insert(info.address.to_string(), info);
                }
                Some(RemoteEvent::Contacts(known.values().cloned().collect()))
            }
            NsEvent::PresenceChanged(p) => {
                let info = self.update(&p.contact, |c| {
                    c.availability = availability(p.status);
                    if !p.friendly_name.is_empty() {
                        c.name = p.friendly_name.clone();
                    }
                    c.picture = p.msn_object.as_deref().and_then(picture_ref);
                });
                Some(RemoteEvent::ContactChanged(info))
            }
            NsEvent::ContactOffline { contact } => {
                let info = self.update(&contact, |c| {
                    c.availability = crate::bridge::remote::Availability::Offline
                });
                Some(RemoteEvent::ContactChanged(info))
            }
            NsEvent::PersonalMessage { contact, psm, .. } => {
                let info = self.update(&contact, |c| {
                    c.personal_message = Some(psm.clone()).filter(|p| !p.is_empty())
                });
                Some(RemoteEvent::ContactChanged(info))
            }
            NsEvent::AddedBy {
                contact,
                friendly_name,
            } => Some(RemoteEvent::AddedBy {
                address: MsnAddress::from_server(&contact),
                name: friendly_name,
            }),
            NsEvent::SwitchboardInvite {
                session_id,
                address,
                auth,
                inviter,
                ..
            } => {
                let version = self.session.client().map(|c| c.version()).unwrap_or(0);
                if let Err(e) = self
                    .conversations
                    .answer(version, &inviter, &address, &auth, &session_id)
                    .await
                {
                    tracing::warn!(error = %e, %inviter, "cannot answer a conversation invitation");
                }
                None
            }
            NsEvent::Circle(event) => self.on_circle(event),
            // Not logged with its content: the profile event carries the session's auth token.
            _ => None,
        }
    }

    fn update(&self, address: &str, change: impl FnOnce(&mut ContactInfo)) -> ContactInfo {
        let address = MsnAddress::from_server(address);
        let mut known = self.contacts_lock();
        let entry = known
            .entry(address.to_string())
            .or_insert_with(|| ContactInfo {
                name: address.to_string(),
                address: address.clone(),
                availability: crate::bridge::remote::Availability::Offline,
                personal_message: None,
                is_friend: false,
                blocked: false,
                picture: None,
                network: None,
            });
        change(entry);
        entry.clone()
    }

    fn ns(&self) -> Result<crate::net::NsClient, DeliveryError> {
        self.session.client().ok_or(DeliveryError::NotConnected)
    }

    /// The open conversation for `chat`, opened now if there is none.
    async fn conversation(&self, chat: &Chat) -> Result<crate::net::SbClient, DeliveryError> {
        self.open_conversation(chat).await.map_err(delivery)
    }

    async fn open_conversation(&self, chat: &Chat) -> Result<crate::net::SbClient, NetError> {
        let ns = self.session.client().ok_or(NetError::DriverGone)?;
        self.conversations.get_or_open(&ns, chat).await
    }

    /// Runs `send` on the chat's switchboard; when that one was given up before anything
    /// went out (a step unanswered in time, MSNP.md §2.8; or it closed under us), once
    /// more on a fresh one. What may have reached the server is never sent twice.
    async fn on_switchboard<F, Fut, T>(&self, to: &Chat, send: F) -> Result<T, NetError>
    where
        F: Fn(crate::net::SbClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, NetError>>,
    {
        let mut last = NetError::Timeout;
        for _ in 0..SEND_ATTEMPTS {
            let sb = match self.open_conversation(to).await {
                Ok(sb) => sb,
                // `XFR SB` unanswered in time: ask for another switchboard.
                Err(e @ NetError::Timeout) => {
                    tracing::info!("no switchboard in time; asking again");
                    last = e;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match send(sb.clone()).await {
                Ok(sent) => return Ok(sent),
                Err(e) if never_sent(&e) => {
                    tracing::info!(error = %e, "the switchboard was given up before anything went out; opening a fresh one");
                    sb.close().await;
                    // A switchboard's driver gone while the session is up: the
                    // conversation closed (nobody joined), not the connection to MSN.
                    last = match e {
                        NetError::DriverGone if self.session.client().is_some() => {
                            NetError::NotDelivered(msnp::SendFailure::NotSent)
                        }
                        e => e,
                    };
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// A contact command, made the way the session's protocol version does it.
    async fn edit(&self, edit: ContactEdit) -> Result<(), DeliveryError> {
        self.ns()?.edit_contact(edit).await.map_err(delivery)
    }
}

impl MsnSessionPort for LinkSession {
    async fn send_text(&self, to: &Chat, text: RichText) -> Result<Sent, DeliveryError> {
        if let Some(circle) = circles::circle_of(to) {
            self.send_to_circle(circle, CircleSend::Text(text)).await?;
            return Ok(Sent::Delivered);
        }
        let format = text_format(&text.style);
        let sent = self
            .on_switchboard(to, |sb| {
                let (text, format) = (text.text.clone(), format.clone());
                async move { sb.send_text(text, format).await }
            })
            .await;
        match (sent, to) {
            (Ok(()), _) => Ok(Sent::Delivered),
            // The contact did not get it and cannot be reached: offline, or appearing
            // so (`CAL` → 217), or gone as it was sent (`NAK`). Asked first rather than read from the list,
            // which says offline for everyone until the presence after login is in.
            (Err(e), Chat::Contact(contact))
                if unreachable(&e) && self.takes_offline_messages() =>
            {
                tracing::info!(error = %e, "the contact cannot be reached; storing an offline message");
                self.store_offline(contact, &text.text).await
            }
            (Err(e), _) => Err(delivery(e)),
        }
    }

    async fn delete_offline_message(&self, id: &str) -> Result<(), DeliveryError> {
        self.delete_offline(id).await
    }

    fn recall_group(&self, group: &Chat, members: Vec<(MsnAddress, String)>) {
        if let Chat::Group(id) = group {
            let members = members
                .into_iter()
                .map(|(address, name)| (address.to_string(), name))
                .collect();
            self.conversations.recall_group(id, members);
        }
    }

    async fn send_typing(&self, to: &Chat) -> Result<(), DeliveryError> {
        if let Some(circle) = circles::circle_of(to) {
            return self.send_to_circle(circle, CircleSend::Typing).await;
        }
        let sb = self.conversation(to).await?;
        sb.send_typing().await.map_err(delivery)
    }

    /// A nudge has no acknowledgement: it waits for the contact to be in the
    /// conversation, so that one who cannot be reached (offline, a switchboard that
    /// hangs) is reported like a text.
    async fn send_nudge(&self, to: &Chat) -> Result<(), DeliveryError> {
        if let Some(circle) = circles::circle_of(to) {
            return self.send_to_circle(circle, CircleSend::Nudge).await;
        }
        self.on_switchboard(to, |sb| async move {
            sb.ready().await?;
            sb.send_nudge().await
        })
        .await
        .map_err(delivery)
    }

    async fn set_status(&self, status: OwnStatus) -> Result<(), DeliveryError> {
        self.session
            .set_status(own_status(status))
            .await
            .map_err(delivery)
    }

    async fn set_friendly_name(&self, name: &str) -> Result<(), DeliveryError> {
        *self.own_name.lock().unwrap_or_else(|e| e.into_inner()) = Some(name.to_owned());
        self.session
            .set_friendly_name(name.to_owned())
            .await
            .map_err(delivery)
    }

    async fn contacts(&self) -> Result<Vec<ContactInfo>, DeliveryError> {
        let mut all: Vec<ContactInfo> = self.contacts_lock().values().cloned().collect();
        all.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(all)
    }

    async fn add_contact(&self, address: &MsnAddress) -> Result<(), DeliveryError> {
        self.edit(ContactEdit::Add(address.to_string())).await?;
        self.update(address.as_str(), |c| c.is_friend = true);
        Ok(())
    }

    async fn remove_contact(&self, address: &MsnAddress) -> Result<(), DeliveryError> {
        self.edit(ContactEdit::Remove(address.to_string())).await?;
        self.update(address.as_str(), |c| c.is_friend = false);
        Ok(())
    }

    async fn block(&self, address: &MsnAddress) -> Result<(), DeliveryError> {
        self.edit(ContactEdit::Block(address.to_string())).await?;
        self.update(address.as_str(), |c| c.blocked = true);
        Ok(())
    }

    async fn unblock(&self, address: &MsnAddress) -> Result<(), DeliveryError> {
        self.edit(ContactEdit::Unblock(address.to_string())).await?;
        self.update(address.as_str(), |c| c.blocked = false);
        Ok(())
    }

    async fn invite(&self, to: &Chat, contact: &MsnAddress) -> Result<(), DeliveryError> {
        if circles::circle_of(to).is_some() {
            return Err(DeliveryError::Failed(
                "a circle's members are invited from Messenger, not into its conversation".into(),
            ));
        }
        let sb = self.conversation(to).await?;
        sb.invite(contact.to_string()).await.map_err(delivery)
    }

    async fn fetch_picture(
        &self,
        chat: &Chat,
        from: &MsnAddress,
        picture: &PictureRef,
    ) -> Result<Bytes, DeliveryError> {
        let contact = Chat::Contact(from.clone());
        let (sb, opened_here) = match self
            .conversations
            .existing(chat)
            .or_else(|| self.conversations.existing(&contact))
        {
            Some(sb) => (sb, false),
            None => (self.conversation(&contact).await?, true),
        };
        let fetched = sb.fetch(from.as_str(), &picture.locator).await;
        if opened_here {
            // Opened only for the picture: leave rather than hold it open until idle.
            sb.close().await;
        }
        let (_, data) = fetched
            .map_err(|e| DeliveryError::Failed(format!("the picture could not be fetched: {e}")))?;
        Ok(data)
    }

    async fn send_file(
        &self,
        to: &Chat,
        file: OutgoingFile,
    ) -> Result<FileDelivery, DeliveryError> {
        self.offer_file(to, file).await
    }

    async fn set_picture(&self, picture: Option<Bytes>) -> Result<(), DeliveryError> {
        let own = picture.map(|data| (own_object(&self.account, &data), data));
        let xml = own.as_ref().map(|(object, _)| object.to_xml());
        self.conversations.set_own_picture(own).await;
        self.session.set_msn_object(xml).await.map_err(delivery)
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.takes_offline_messages() {
            notes.push("Offline messages: on (MSN keeps what you write to offline contacts; what they wrote while you were away arrives at login).".to_owned());
        }
        notes.extend(self.circle_note());
        notes
    }

    fn protocol_version(&self) -> u8 {
        self.session.client().map(|c| c.version()).unwrap_or(0)
    }

    fn is_connected(&self) -> bool {
        self.session.client().is_some()
    }

    async fn logout(&self) {
        self.conversations.close_all().await;
        self.session.logout().await;
    }
}
