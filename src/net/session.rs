//! A long-lived MSN session for one account: keeps the notification-server connection up
//! for days, reconnecting with exponential backoff and jitter after a lost connection, a
//! keepalive timeout or a server shutdown, and restoring the status, friendly name and
//! personal message last set. It stops for good on what a reconnect cannot fix: wrong
//! credentials, an unsupported version, a sign-in elsewhere (`OUT OTH`) or a logout.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::backoff::{Backoff, os_random};
use super::error::NetError;
use super::ns_client::NsClient;
use super::passport::PassportError;
use super::settings::MsnSettings;
use crate::channel::{EventSender, Events};
use msnp::{CloseReason, NsConfig, NsEvent, Secret, Status};

/// What happens to the session, for the bridge.
#[derive(Debug)]
pub enum SessionEvent {
    /// Logged in (again); `version` is the negotiated MSNP version.
    Connected { version: u8 },
    /// An event of the live connection.
    Ns(NsEvent),
    /// The connection was lost; the next attempt comes after `delay`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    /// The session ended and will not reconnect.
    Ended(EndReason),
}

/// Why a session stopped for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The server refused the login (wrong password, unknown account, no common version).
    LoginRefused(String),
    /// The account signed in from another place (`OUT OTH`).
    SignedInElsewhere,
    /// Another endpoint of the account signed this one out (MSNP16+).
    SignedOutRemotely,
    /// The bridge logged out.
    LoggedOut,
}

/// The parts of the profile restored after a reconnect.
#[derive(Clone, Debug)]
struct Profile {
    status: Status,
    capabilities: u32,
    friendly_name: Option<String>,
    personal_message: Option<String>,
    msn_object: Option<String>,
    /// The msnobj last announced again with a status change ([`MsnSession::reannounce_msn_object`]).
    reannounced: Option<String>,
}

/// A handle on a reconnecting session. Cheap to clone.
#[derive(Clone)]
pub struct MsnSession {
    inner: Arc<Inner>,
}

struct Inner {
    client: watch::Receiver<Option<NsClient>>,
    profile: Mutex<Profile>,
    cancel: CancellationToken,
}

impl MsnSession {
    /// Logs in once (returning the login's error if that fails), then keeps the session up
    /// in the background. Events arrive on the returned channel.
    pub async fn start(
        settings: MsnSettings,
        http: reqwest::Client,
        config: NsConfig,
        password: Secret,
        backoff: Backoff,
    ) -> Result<(MsnSession, Events<SessionEvent>), NetError> {
        let (client, events) =
            NsClient::connect(&settings, &http, config.clone(), password.clone()).await?;
        let version = client.version();
        let (client_tx, client_rx) = watch::channel(Some(client));
        let (out, out_rx) = crate::channel::channel(1024);
        let profile = Profile {
            status: config.initial_status,
            capabilities: config.capabilities,
            friendly_name: config.friendly_name.clone(),
            personal_message: config.personal_message.clone(),
            msn_object: config.msn_object.clone(),
            reannounced: None,
        };
        let inner = Arc::new(Inner {
            client: client_rx,
            profile: Mutex::new(profile),
            cancel: CancellationToken::new(),
        });
        let _ = out.send(SessionEvent::Connected { version }).await;
        let supervisor = Supervisor {
            settings,
            http,
            config,
            password,
            backoff,
            client: client_tx,
            out,
            inner: Arc::downgrade(&inner),
            cancel: inner.cancel.clone(),
        };
        let span = tracing::info_span!("msn_session", login = %supervisor.config.login);
        tokio::spawn(supervisor.run(events).instrument(span));
        Ok((MsnSession { inner }, out_rx))
    }

    /// The live connection, if there is one now.
    pub fn client(&self) -> Option<NsClient> {
        self.inner.client.borrow().clone()
    }

    fn connected(&self) -> Result<NsClient, NetError> {
        self.client().ok_or(NetError::DriverGone)
    }

    /// Sets the status (kept for reconnects).
    pub async fn set_status(&self, status: Status) -> Result<(), NetError> {
        let (caps, msnobj) = {
            let mut p = self.inner.profile.lock().await;
            p.status = status;
            (p.capabilities, p.msn_object.clone())
        };
        self.connected()?
            .command(move |s, now| s.set_status(now, status, caps, msnobj.as_deref()))
            .await
    }

    /// Sets the msnobj of our display picture (none: no picture), announced with the
    /// current status (`CHG`) and kept for reconnects.
    pub async fn set_msn_object(&self, msn_object: Option<String>) -> Result<(), NetError> {
        let (status, caps) = {
            let mut p = self.inner.profile.lock().await;
            p.msn_object = msn_object.clone();
            (p.status, p.capabilities)
        };
        self.connected()?
            .command(move |s, now| s.set_status(now, status, caps, msn_object.as_deref()))
            .await
    }

    /// Announces the current msnobj again with a brief status change (a `CHG` to another
    /// status and one back, both carrying it), for servers that tell contacts only about
    /// status changes (Escargot, MSNP.md §2.8): a contact asking for an object we no
    /// longer have missed the same-status `CHG` that announced the new one. Once per
    /// msnobj, so a contact asking again cannot make the user's status flicker over and
    /// over; nothing while hidden or without a picture.
    pub async fn reannounce_msn_object(&self) -> Result<(), NetError> {
        let (status, caps, msnobj) = {
            let mut p = self.inner.profile.lock().await;
            let Some(msnobj) = p.msn_object.clone() else {
                return Ok(());
            };
            if p.status == Status::Hidden || p.reannounced.as_ref() == Some(&msnobj) {
                return Ok(());
            }
            p.reannounced = Some(msnobj.clone());
            (p.status, p.capabilities, msnobj)
        };
        let brief = if status == Status::Online {
            Status::Idle
        } else {
            Status::Online
        };
        let client = self.connected()?;
        let obj = msnobj.clone();
        client
            .command(move |s, now| s.set_status(now, brief, caps, Some(&obj)))
            .await?;
        client
            .command(move |s, now| s.set_status(now, status, caps, Some(&msnobj)))
            .await
    }

    /// Sets the friendly name (kept for reconnects).
    pub async fn set_friendly_name(&self, name: String) -> Result<(), NetError> {
        self.inner.profile.lock().await.friendly_name = Some(name.clone());
        self.connected()?
            .command(move |s, now| s.set_friendly_name(now, &name))
            .await
    }

    /// Sets the personal message (kept for reconnects).
    pub async fn set_personal_message(&self, psm: String) -> Result<(), NetError> {
        self.inner.profile.lock().await.personal_message = Some(psm.clone());
        self.connected()?
            .command(move |s, now| s.set_personal_message(now, &psm, ""))
            .await
    }

    /// Signs out and stops reconnecting.
    pub async fn logout(&self) {
        self.inner.cancel.cancel();
        if let Some(client) = self.client() {
            client.logout().await;
        }
    }
}

struct Supervisor {
    settings: MsnSettings,
    http: reqwest::Client,
    config: NsConfig,
    password: Secret,
    backoff: Backoff,
    client: watch::Sender<Option<NsClient>>,
    out: EventSender<SessionEvent>,
    inner: std::sync::Weak<Inner>,
    cancel: CancellationToken,
}

/// What to do after a connection ended.
enum After {
    Retry(String),
    End(EndReason),
}

impl Supervisor {
    async fn run(mut self, mut events: super::ns_client::NsEvents) {
        loop {
            let after = self.pump(&mut events).await;
            self.client.send_replace(None);
            let reason = match after {
                After::End(reason) => {
                    let _ = self.out.send(SessionEvent::Ended(reason)).await;
                    return;
                }
                After::Retry(reason) => reason,
            };
            // Boxed: an idle session's task should not carry a login's future.
            match Box::pin(self.reconnect(reason)).await {
                Some(next) => events = next,
                None => return,
            }
        }
    }

    /// Forwards events until the connection ends; says whether to retry.
    async fn pump(&mut self, events: &mut super::ns_client::NsEvents) -> After {
        loop {
            let event = tokio::select! {
                () = self.cancel.cancelled() => return After::End(EndReason::LoggedOut),
                () = self.client.closed() => {
                    // Every `MsnSession` handle is gone: nobody wants this session any
                    // more, so sign out rather than keep the account online forever.
                    let client = self.client.borrow().clone();
                    if let Some(client) = client {
                        Box::pin(client.logout()).await;
                    }
                    return After::End(EndReason::LoggedOut);
                }
                event = events.recv() => event,
            };
            match event {
                Some(NsEvent::Closed(reason)) => return classify(&reason),
                Some(event) => {
                    let _ = self.out.send(SessionEvent::Ns(event)).await;
                }
                None => return After::Retry("the connection's driver stopped".into()),
            }
        }
    }

    /// Reconnects with backoff until it works or cannot work; `None` when the session ended.
    async fn reconnect(&mut self, mut reason: String) -> Option<super::ns_client::NsEvents> {
        loop {
            let delay = self.backoff.next_delay(os_random());
            let attempt = self.backoff.attempts();
            tracing::info!(attempt, ?delay, %reason, "reconnecting");
            let _ = self
                .out
                .send(SessionEvent::Reconnecting {
                    attempt,
                    delay,
                    reason: reason.clone(),
                })
                .await;
            tokio::select! {
                () = self.cancel.cancelled() => {
                    let _ = self.out.send(SessionEvent::Ended(EndReason::LoggedOut)).await;
                    return None;
                }
                () = self.client.closed() => {
                    let _ = self.out.send(SessionEvent::Ended(EndReason::LoggedOut)).await;
                    return None;
                }
                () = tokio::time::sleep(delay) => {}
            }
            let mut config = self.config.clone();
            if let Some(inner) = self.inner.upgrade() {
                let p = inner.profile.lock().await.clone();
                config.initial_status = p.status;
                config.friendly_name = p.friendly_name;
                config.personal_message = p.personal_message;
                config.msn_object = p.msn_object;
            } else {
                // Every handle is gone: nobody wants this session any more.
                return None;
            }
            match NsClient::connect(&self.settings, &self.http, config, self.password.clone()).await
            {
                Ok((client, events)) => {
                    self.backoff.reset();
                    let version = client.version();
                    self.client.send_replace(Some(client));
                    let _ = self.out.send(SessionEvent::Connected { version }).await;
                    return Some(events);
                }
                Err(e) => match permanent(&e) {
                    Some(end) => {
                        let _ = self.out.send(SessionEvent::Ended(end)).await;
                        return None;
                    }
                    None => reason = e.to_string(),
                },
            }
        }
    }
}

fn classify(reason: &CloseReason) -> After {
    match reason {
        CloseReason::SignedInElsewhere => After::End(EndReason::SignedInElsewhere),
        CloseReason::SignedOutRemotely => After::End(EndReason::SignedOutRemotely),
        CloseReason::LoggedOut => After::End(EndReason::LoggedOut),
        CloseReason::LoginFailed(e) => After::End(EndReason::LoginRefused(e.to_string())),
        other => After::Retry(format!("{other:?}")),
    }
}

/// Errors a reconnect cannot fix.
fn permanent(error: &NetError) -> Option<EndReason> {
    match error {
        NetError::Passport(PassportError::WrongCredentials) => {
            Some(EndReason::LoginRefused("wrong account or password".into()))
        }
        NetError::Login(e) => match e {
            msnp::LoginError::ServerUnavailable { .. } => None,
            other => Some(EndReason::LoginRefused(other.to_string())),
        },
        NetError::Closed(CloseReason::SignedInElsewhere) => Some(EndReason::SignedInElsewhere),
        NetError::Closed(CloseReason::SignedOutRemotely) => Some(EndReason::SignedOutRemotely),
        _ => None,
    }
}
