//! A long-lived MSN session for one account: keeps the notification-server connection up
//! for days, reconnecting with exponential backoff and jitter after a lost connection, a
//! keepalive timeout or a server shutdown, and restoring the status, friendly name and
//! personal message last set. It stops for good on what a reconnect cannot fix: wrong
//! credentials, an unsupported version, a sign-in elsewhere (`OUT OTH`) or a logout.
//! It runs in whoever reads its events ([`SessionEvents`]), not in a task of its own;
//! once they are dropped, or every [`MsnSession`] handle is gone while they are read, it
//! signs out.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::backoff::{Backoff, os_random};
use super::error::NetError;
use super::ns_client::{NsClient, NsEvents};
use super::passport::PassportError;
use super::settings::MsnSettings;
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
    /// Logs in once (returning the login's error if that fails); the session then lives
    /// as its events are read ([`SessionEvents`]), the first being `Connected`.
    pub async fn start(
        settings: impl Into<Arc<MsnSettings>>,
        http: reqwest::Client,
        config: NsConfig,
        password: Secret,
        backoff: Backoff,
    ) -> Result<(MsnSession, SessionEvents), NetError> {
        let settings: Arc<MsnSettings> = settings.into();
        let (client, events) =
            NsClient::connect(settings.clone(), &http, config.clone(), password.clone()).await?;
        let version = client.version();
        let (client_tx, client_rx) = watch::channel(Some(client));
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
        let span = tracing::info_span!("msn_session", login = %config.login);
        let events = SessionEvents {
            state: State::Live(events),
            first_login: Some(version),
            settings,
            http,
            config,
            password,
            backoff,
            client: client_tx,
            inner: Arc::downgrade(&inner),
            cancel: inner.cancel.clone(),
            span,
        };
        Ok((MsnSession { inner }, events))
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

/// The events of a session, in order; reading them is what keeps the session going: a
/// lost connection is noticed, waited out and connected again as they are read. Every
/// step of [`recv`](Self::recv) may be abandoned and taken up again (it is cancel-safe),
/// so the reader can wait on it beside other things. The session itself has no task:
/// the reader's task is the only one it needs besides the connection's driver (README,
/// Performance: memory per idle login).
pub struct SessionEvents {
    state: State,
    /// The version of the login [`MsnSession::start`] made, until its `Connected` is read.
    first_login: Option<u8>,
    settings: Arc<MsnSettings>,
    http: reqwest::Client,
    config: NsConfig,
    password: Secret,
    backoff: Backoff,
    client: watch::Sender<Option<NsClient>>,
    inner: std::sync::Weak<Inner>,
    cancel: CancellationToken,
    span: tracing::Span,
}

/// Where the session is.
enum State {
    /// Connected: the driver's events are passed on.
    Live(NsEvents),
    /// Waiting out the backoff before the next attempt.
    Waiting(Pin<Box<tokio::time::Sleep>>),
    /// Logging in again (boxed: an idle session should not carry a login's future).
    Connecting(Login),
    /// Ended for good; the `Ended` event was given.
    Over,
}

/// A login under way.
type Login = Pin<Box<dyn Future<Output = Result<(NsClient, NsEvents), NetError>> + Send>>;

/// What a step of [`SessionEvents::recv`] leads to.
enum Step {
    Event(NsEvent),
    Lost(String),
    End(EndReason),
    /// Every [`MsnSession`] handle is gone: nobody wants this session any more.
    Abandoned,
    Connect,
    Connected(NsClient, NsEvents),
}

impl SessionEvents {
    /// The next event; `None` after [`SessionEvent::Ended`] (or when every handle went
    /// away while no connection was up).
    pub async fn recv(&mut self) -> Option<SessionEvent> {
        let span = self.span.clone();
        self.next().instrument(span).await
    }

    async fn next(&mut self) -> Option<SessionEvent> {
        if let Some(version) = self.first_login.take() {
            return Some(SessionEvent::Connected { version });
        }
        loop {
            let step = match &mut self.state {
                State::Over => return None,
                State::Live(events) => tokio::select! {
                    () = self.cancel.cancelled() => Step::End(EndReason::LoggedOut),
                    () = self.client.closed() => Step::Abandoned,
                    event = events.recv() => match event {
                        Some(NsEvent::Closed(reason)) => classify(&reason),
                        Some(event) => Step::Event(event),
                        None => Step::Lost("the connection's driver stopped".into()),
                    },
                },
                State::Waiting(delay) => tokio::select! {
                    () = self.cancel.cancelled() => Step::End(EndReason::LoggedOut),
                    () = self.client.closed() => Step::End(EndReason::LoggedOut),
                    () = delay.as_mut() => Step::Connect,
                },
                State::Connecting(login) => tokio::select! {
                    () = self.cancel.cancelled() => Step::End(EndReason::LoggedOut),
                    result = login.as_mut() => match result {
                        Ok((client, events)) => Step::Connected(client, events),
                        Err(e) => match permanent(&e) {
                            Some(end) => Step::End(end),
                            None => Step::Lost(e.to_string()),
                        },
                    },
                },
            };
            match step {
                Step::Event(event) => return Some(SessionEvent::Ns(event)),
                Step::Lost(reason) => {
                    self.client.send_replace(None);
                    let delay = self.backoff.next_delay(os_random());
                    let attempt = self.backoff.attempts();
                    tracing::info!(attempt, ?delay, %reason, "reconnecting");
                    self.state = State::Waiting(Box::pin(tokio::time::sleep(delay)));
                    return Some(SessionEvent::Reconnecting {
                        attempt,
                        delay,
                        reason,
                    });
                }
                Step::Abandoned => {
                    // Sign out rather than keep the account online forever.
                    let client = self.client.borrow().clone();
                    if let Some(client) = client {
                        Box::pin(client.logout()).await;
                    }
                    return self.end(EndReason::LoggedOut);
                }
                Step::End(reason) => return self.end(reason),
                Step::Connect => {
                    let Some(inner) = self.inner.upgrade() else {
                        // Every handle is gone: nobody wants this session any more.
                        self.state = State::Over;
                        return None;
                    };
                    let p = inner.profile.lock().await.clone();
                    let mut config = self.config.clone();
                    config.initial_status = p.status;
                    config.friendly_name = p.friendly_name;
                    config.personal_message = p.personal_message;
                    config.msn_object = p.msn_object;
                    let (settings, http, password) = (
                        self.settings.clone(),
                        self.http.clone(),
                        self.password.clone(),
                    );
                    self.state = State::Connecting(Box::pin(async move {
                        NsClient::connect(settings, &http, config, password).await
                    }));
                }
                Step::Connected(client, events) => {
                    self.backoff.reset();
                    let version = client.version();
                    self.client.send_replace(Some(client));
                    self.state = State::Live(events);
                    return Some(SessionEvent::Connected { version });
                }
            }
        }
    }

    fn end(&mut self, reason: EndReason) -> Option<SessionEvent> {
        self.client.send_replace(None);
        self.state = State::Over;
        Some(SessionEvent::Ended(reason))
    }
}

impl Drop for SessionEvents {
    /// Without its reader the session cannot go on: its connection is let go (the driver
    /// signs out once no handle uses it) and the handles see it gone.
    fn drop(&mut self) {
        self.client.send_replace(None);
    }
}

/// What a closed connection leads to.
fn classify(reason: &CloseReason) -> Step {
    match reason {
        CloseReason::SignedInElsewhere => Step::End(EndReason::SignedInElsewhere),
        CloseReason::SignedOutRemotely => Step::End(EndReason::SignedOutRemotely),
        CloseReason::LoggedOut => Step::End(EndReason::LoggedOut),
        CloseReason::LoginFailed(e) => Step::End(EndReason::LoginRefused(e.to_string())),
        other => Step::Lost(format!("{other:?}")),
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
