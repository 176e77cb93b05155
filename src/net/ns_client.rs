//! The notification-server connection: a driver task owning the socket and the
//! [`NsSession`] machine, and [`NsClient`], a cheap cloneable handle whose requests are
//! answered by TrID. Login (VER, CVR, USR TWN with the Passport ticket or USR SSO with
//! the RST tokens and the MBI response, `XFR NS` redirects, and from MSNP13 the address
//! book) completes inside [`NsClient::connect`]; afterwards typed [`NsEvent`]s flow out.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::address_book::AddressBook;
use super::error::NetError;
use super::passport::{fetch_sso_tokens, fetch_ticket_by_route};
use super::settings::MsnSettings;
use super::wire::Wire;
use msnp::abch::circles::Circle;
use msnp::ns::Dialect;
use msnp::{
    CloseReason, CommandError, ContactList, NsConfig, NsEvent, NsSession, SbRequestId, Secret,
};

/// How many `XFR NS` redirects a login follows.
const MAX_REDIRECTS: usize = 3;
/// Events buffered for a slow consumer before the driver waits (and stops reading).
const EVENT_BUFFER: usize = 1024;

/// The stream of events from one notification-server session.
pub type NsEvents = crate::channel::Events<NsEvent>;

/// Where a switchboard request's answer goes: its address and cookie.
type SbReply = oneshot::Sender<Result<(String, Secret), NetError>>;

type CommandFn = Box<dyn FnOnce(&mut NsSession, Instant) -> Result<u32, CommandError> + Send>;

enum Request {
    Command {
        op: CommandFn,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Switchboard {
        reply: SbReply,
    },
    ContactList {
        reply: oneshot::Sender<ContactList>,
    },
    AddressBook {
        reply: oneshot::Sender<Option<(AddressBook, reqwest::Client)>>,
    },
    Logout {
        reply: oneshot::Sender<()>,
    },
}

/// Where the user's circles are (MSNP18), for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CircleState {
    /// Not in this protocol version.
    #[default]
    NotInVersion,
    /// The address book listed none (the server may not offer circles).
    NoneListed,
    /// Joining them (answers pending).
    Joining,
    /// Joined.
    Joined,
    /// The server refused to let the bridge join them (its error code).
    Refused(u16),
}

/// A handle on one logged-in notification-server session.
#[derive(Clone)]
pub struct NsClient {
    tx: mpsc::Sender<Request>,
    version: Arc<AtomicU8>,
    account: Arc<str>,
    timeout: Duration,
    /// The user's circles (MSNP18), as the address book listed them at login.
    circles: Arc<std::sync::Mutex<Vec<Circle>>>,
    circle_state: Arc<std::sync::Mutex<CircleState>>,
}

impl std::fmt::Debug for NsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NsClient")
            .field("account", &self.account)
            .field("version", &self.version())
            .finish()
    }
}

impl NsClient {
    /// Connects to `settings.server`, logs in as `config.login` with `password`, and returns
    /// once the contact list is in: the handle and the session's events (the first of which
    /// are `LoggedIn` and `ContactList`, after the server's `Profile` if it sent one).
    /// `settings.versions` (when not empty) and `settings.request_timeout` replace those
    /// of `config`.
    pub async fn connect(
        settings: impl Into<Arc<MsnSettings>>,
        http: &reqwest::Client,
        config: NsConfig,
        password: Secret,
    ) -> Result<(NsClient, NsEvents), NetError> {
        let settings: Arc<MsnSettings> = settings.into();
        let mut config = config;
        // The shell's settings decide what is offered and how long a request may take.
        if !settings.versions.is_empty() {
            config.versions = settings.versions.clone();
        }
        config.request_timeout = settings.request_timeout;
        let (tx, rx) = mpsc::channel(64);
        let (events_tx, events_rx) = crate::channel::channel(EVENT_BUFFER);
        let (logged_in_tx, logged_in_rx) = oneshot::channel();
        let version = Arc::new(AtomicU8::new(0));
        let account: Arc<str> = Arc::from(config.login.as_str());
        let circles = Arc::new(std::sync::Mutex::new(Vec::new()));
        let circle_state = Arc::new(std::sync::Mutex::new(CircleState::default()));
        let driver = Driver {
            circles: circles.clone(),
            circle_state: circle_state.clone(),
            circle_join: None,
            circle_ticket: None,
            settings: settings.clone(),
            http: http.clone(),
            config,
            password,
            rx,
            events: events_tx,
            logged_in: Some(logged_in_tx),
            version: version.clone(),
            commands: HashMap::new(),
            switchboards: HashMap::new(),
            address_book: None,
        };
        let span = tracing::info_span!("ns", login = %account);
        tokio::spawn(driver.run().instrument(span));
        let login_deadline = settings.request_timeout * 4;
        match tokio::time::timeout(login_deadline, logged_in_rx).await {
            Ok(Ok(Ok(()))) => Ok((
                NsClient {
                    tx,
                    version,
                    account,
                    timeout: settings.request_timeout + Duration::from_secs(5),
                    circles,
                    circle_state,
                },
                events_rx,
            )),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(NetError::DriverGone),
            // Dropping `tx` makes the driver log out and stop.
            Err(_) => Err(NetError::Timeout),
        }
    }

    /// The negotiated protocol version (8 to 12).
    pub fn version(&self) -> u8 {
        self.version.load(Ordering::Relaxed)
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// The user's circles (MSNP18) and whether the bridge is in them.
    pub fn circles(&self) -> (Vec<Circle>, CircleState) {
        let circles = self
            .circles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let state = self
            .circle_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (circles, state)
    }

    /// The circle `id` the user belongs to, if it is one of theirs.
    pub fn circle(&self, id: &str) -> Option<Circle> {
        self.circles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|c| c.id == id)
            .cloned()
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, NetError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| NetError::DriverGone)?;
        tokio::time::timeout(self.timeout, rx)
            .await
            .map_err(|_| NetError::Timeout)?
            .map_err(|_| NetError::DriverGone)
    }

    /// Runs a command of the machine and waits for the server's answer to its TrID.
    pub async fn command(
        &self,
        op: impl FnOnce(&mut NsSession, Instant) -> Result<u32, CommandError> + Send + 'static,
    ) -> Result<(), NetError> {
        self.request(|reply| Request::Command {
            op: Box::new(op),
            reply,
        })
        .await?
    }

    /// `XFR SB`: a switchboard address and cookie for a new conversation.
    pub async fn request_switchboard(&self) -> Result<(String, Secret), NetError> {
        self.request(|reply| Request::Switchboard { reply }).await?
    }

    /// The contact list as the session knows it now.
    pub async fn contact_list(&self) -> Result<ContactList, NetError> {
        self.request(|reply| Request::ContactList { reply }).await
    }

    /// The address book (MSNP13+) and the HTTP client to call it with; `None` before
    /// MSNP13.
    pub(crate) async fn address_book(
        &self,
    ) -> Result<Option<(AddressBook, reqwest::Client)>, NetError> {
        self.request(|reply| Request::AddressBook { reply }).await
    }

    /// Signs out (`OUT`) and stops the driver.
    pub async fn logout(&self) {
        let _ = self.request(|reply| Request::Logout { reply }).await;
    }
}

enum Flow {
    Continue,
    Reconnect(String),
    Stop,
}

struct Driver {
    settings: Arc<MsnSettings>,
    http: reqwest::Client,
    config: NsConfig,
    password: Secret,
    rx: mpsc::Receiver<Request>,
    events: crate::channel::EventSender<NsEvent>,
    logged_in: Option<oneshot::Sender<Result<(), NetError>>>,
    version: Arc<AtomicU8>,
    commands: HashMap<u32, oneshot::Sender<Result<(), NetError>>>,
    switchboards: HashMap<SbRequestId, SbReply>,
    /// The address book and its ticket (MSNP13+), once the login has one.
    address_book: Option<AddressBook>,
    /// The circles the address book listed (MSNP18), shared with the handles.
    circles: Arc<std::sync::Mutex<Vec<Circle>>>,
    /// The circle ticket that joins them, until they are joined after login.
    circle_ticket: Option<String>,
    circle_state: Arc<std::sync::Mutex<CircleState>>,
    /// The TrIDs of the join (`USR SHA` to the last `PUT`) while it is answered.
    circle_join: Option<std::ops::RangeInclusive<u32>>,
}

impl Driver {
    /// Joins the circles the address book listed (after the contacts' `ADL`, which the
    /// login sent). Without a ticket, or refused, the login goes on without them.
    fn join_circles(&mut self, session: &mut NsSession) {
        let Some(ticket) = self.circle_ticket.take() else {
            return;
        };
        let circles = self
            .circles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let ids: Vec<&str> = circles.iter().map(|c| c.id.as_str()).collect();
        if ids.is_empty() {
            return;
        }
        match session.join_circles(Instant::now(), &ticket, &ids) {
            Ok(trids) => {
                tracing::info!(count = ids.len(), "joining circles");
                self.circle_join = Some(trids);
                self.set_circle_state(CircleState::Joining);
            }
            Err(e) => tracing::warn!(error = %e, "cannot join the circles"),
        }
    }

    fn set_circle_state(&self, state: CircleState) {
        *self.circle_state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// Follows the answers to the circles' join: the last one settles it, an error in
    /// any refuses it (the session goes on without circles).
    fn follow_circle_join(&mut self, event: &NsEvent) {
        let Some(join) = self.circle_join.clone() else {
            return;
        };
        match event {
            NsEvent::Replied { trid } if trid == join.end() => {
                self.circle_join = None;
                self.set_circle_state(CircleState::Joined);
            }
            NsEvent::ServerError {
                trid: Some(trid),
                code,
                ..
            } if join.contains(trid) => {
                tracing::warn!(
                    code,
                    "the server refused the circles; going on without them"
                );
                self.circle_join = None;
                self.set_circle_state(CircleState::Refused(*code));
            }
            _ => {}
        }
    }

    async fn run(mut self) {
        let mut addr = self.settings.server.clone();
        for _ in 0..=MAX_REDIRECTS {
            match self.connection(&addr).await {
                Ok(Some(next)) => {
                    tracing::info!(to = %next, "redirected");
                    addr = next;
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "notification server connection failed");
                    self.fail_login(e);
                    return;
                }
            }
        }
        self.fail_login(NetError::TooManyRedirects(addr));
    }

    fn fail_login(&mut self, error: NetError) {
        if let Some(tx) = self.logged_in.take() {
            let _ = tx.send(Err(error));
        }
    }

    /// One TCP connection; `Ok(Some(addr))` when the server redirects before login.
    async fn connection(&mut self, addr: &str) -> Result<Option<String>, NetError> {
        let mut wire = Wire::connect(
            addr,
            self.settings.connect_timeout,
            self.settings.limits.clone(),
        )
        .await?;
        tracing::debug!(%addr, "connected");
        let mut session = NsSession::new(self.config.clone(), Instant::now())
            .with_limits(self.settings.limits.clone());
        loop {
            // Events first: handling one (a Passport ticket, a reply) may queue frames,
            // which must be written before waiting for the server again.
            while let Some(event) = session.poll_event() {
                match self.on_event(&mut session, event).await {
                    Flow::Continue => {}
                    Flow::Reconnect(next) => return Ok(Some(next)),
                    Flow::Stop => {
                        // What the machine queued last (an `OUT`) still goes: an unclean
                        // drop can cost the user's other endpoints their session (§15.3.4).
                        let frames: Vec<_> =
                            std::iter::from_fn(|| session.poll_transmit()).collect();
                        let _ = wire.write_frames(&frames).await;
                        return Ok(None);
                    }
                }
            }
            let frames: Vec<_> = std::iter::from_fn(|| session.poll_transmit()).collect();
            if let Err(e) = wire.write_frames(&frames).await {
                tracing::warn!(error = %e, "write failed");
                session.handle_connection_lost(Instant::now());
                continue;
            }
            let deadline = session
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                read = wire.read_frame(session.version()) => match read {
                    Ok(Some(frame)) => session.handle_frame(Instant::now(), frame),
                    Ok(None) => {
                        tracing::info!("server closed the connection");
                        session.handle_connection_lost(Instant::now());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "connection lost");
                        session.handle_connection_lost(Instant::now());
                    }
                },
                request = self.rx.recv() => match request {
                    Some(request) => self.on_request(&mut session, request),
                    None => {
                        // Every handle is gone: sign out politely.
                        session.logout(Instant::now());
                    }
                },
                () = tokio::time::sleep_until(deadline) => session.handle_timeout(Instant::now()),
            }
        }
    }

    fn on_request(&mut self, session: &mut NsSession, request: Request) {
        let now = Instant::now();
        match request {
            Request::Command { op, reply } => match op(session, now) {
                Ok(trid) => {
                    self.commands.insert(trid, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(NetError::Command(e)));
                }
            },
            Request::Switchboard { reply } => match session.request_switchboard(now) {
                Ok(id) => {
                    self.switchboards.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(NetError::Command(e)));
                }
            },
            Request::ContactList { reply } => {
                let _ = reply.send(session.contact_list().clone());
            }
            Request::AddressBook { reply } => {
                let book = session
                    .dialect()
                    .lists_from_address_book()
                    .then(|| self.address_book.clone())
                    .flatten();
                let _ = reply.send(book.map(|b| (b, self.http.clone())));
            }
            Request::Logout { reply } => {
                session.logout(now);
                let _ = reply.send(());
            }
        }
    }

    async fn on_event(&mut self, session: &mut NsSession, event: NsEvent) -> Flow {
        self.follow_circle_join(&event);
        match event {
            // The HTTP calls of a login are boxed: an idle connection's task should not
            // carry their futures' size.
            NsEvent::NeedTicket { tw_challenge } => {
                let ticket = Box::pin(fetch_ticket_by_route(
                    &self.http,
                    &self.settings.ticket_route,
                    &self.settings.nexus_url,
                    self.settings.dalogin_url.as_deref(),
                    &self.config.login,
                    &self.password,
                    &tw_challenge,
                ))
                .await;
                match ticket {
                    Ok(ticket) => {
                        // MSNP13–14: Escargot opens the address book with this ticket too.
                        self.address_book = Some(AddressBook {
                            base: self.settings.address_book_url(),
                            ticket: ticket.clone(),
                        });
                        if let Err(e) = session.handle_ticket(Instant::now(), &ticket) {
                            self.fail_login(NetError::Command(e));
                            return Flow::Stop;
                        }
                    }
                    Err(e) => {
                        self.fail_login(NetError::Passport(e));
                        return Flow::Stop;
                    }
                }
                Flow::Continue
            }
            NsEvent::NeedSsoTicket { policy } => {
                let tokens = Box::pin(fetch_sso_tokens(
                    &self.http,
                    &self.settings.sso_url(),
                    &self.config.login,
                    &self.password,
                    &policy,
                ))
                .await;
                let tokens = match tokens {
                    Ok(tokens) => tokens,
                    Err(e) => {
                        self.fail_login(NetError::Passport(e));
                        return Flow::Stop;
                    }
                };
                self.address_book = Some(AddressBook {
                    base: self.settings.address_book_url(),
                    ticket: tokens
                        .contacts
                        .clone()
                        .unwrap_or_else(|| tokens.ticket.clone()),
                });
                let mut iv = [0u8; 8];
                if getrandom::fill(&mut iv).is_err() {
                    self.fail_login(NetError::NoRandomness);
                    return Flow::Stop;
                }
                let taken = session.handle_sso_ticket(
                    Instant::now(),
                    &tokens.ticket,
                    &tokens.binary_secret,
                    iv,
                );
                if let Err(e) = taken {
                    self.fail_login(NetError::Command(e));
                    return Flow::Stop;
                }
                Flow::Continue
            }
            NsEvent::NeedAddressBook => {
                let Some(book) = self.address_book.clone() else {
                    self.fail_login(NetError::Command(CommandError::NotOnline));
                    return Flow::Stop;
                };
                let with_circles = Dialect(session.version()).has_circles();
                let list = match Box::pin(book.contact_list(&self.http, with_circles)).await {
                    Ok((list, circles)) => {
                        let joined: Vec<Circle> =
                            circles.circles.into_iter().filter(|c| c.accepted).collect();
                        if with_circles {
                            self.set_circle_state(CircleState::NoneListed);
                        }
                        *self.circles.lock().unwrap_or_else(|e| e.into_inner()) = joined;
                        self.circle_ticket = circles.ticket;
                        list
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the address book");
                        self.fail_login(NetError::AddressBook(e));
                        return Flow::Stop;
                    }
                };
                if let Err(e) = session.handle_address_book(Instant::now(), list) {
                    self.fail_login(NetError::Command(e));
                    return Flow::Stop;
                }
                Flow::Continue
            }
            NsEvent::LoggedIn { version, .. } => {
                self.version.store(version, Ordering::Relaxed);
                tracing::info!(version, "logged in");
                self.join_circles(session);
                self.forward(event).await;
                if let Some(tx) = self.logged_in.take() {
                    let _ = tx.send(Ok(()));
                }
                Flow::Continue
            }
            NsEvent::Replied { trid } => {
                if let Some(reply) = self.commands.remove(&trid) {
                    let _ = reply.send(Ok(()));
                }
                Flow::Continue
            }
            NsEvent::ServerError {
                trid: Some(trid),
                code,
                ..
            } if self.commands.contains_key(&trid) => {
                if let Some(reply) = self.commands.remove(&trid) {
                    let _ = reply.send(Err(NetError::server(code)));
                }
                Flow::Continue
            }
            NsEvent::RequestTimedOut { trid, .. } if self.commands.contains_key(&trid) => {
                if let Some(reply) = self.commands.remove(&trid) {
                    let _ = reply.send(Err(NetError::Timeout));
                }
                Flow::Continue
            }
            NsEvent::SwitchboardReady {
                request,
                address,
                auth,
            } => {
                if let Some(reply) = self.switchboards.remove(&request) {
                    let _ = reply.send(Ok((address, auth)));
                }
                Flow::Continue
            }
            NsEvent::SwitchboardFailed { request, code } => {
                if let Some(reply) = self.switchboards.remove(&request) {
                    let _ = reply.send(Err(match code {
                        Some(code) => NetError::server(code),
                        None => NetError::Timeout,
                    }));
                }
                Flow::Continue
            }
            NsEvent::Closed(CloseReason::Redirect { address }) if self.logged_in.is_some() => {
                Flow::Reconnect(address)
            }
            NsEvent::Closed(reason) => {
                tracing::info!(?reason, "session closed");
                if let CloseReason::LoginFailed(e) = &reason {
                    self.fail_login(NetError::Login(e.clone()));
                } else {
                    self.fail_login(NetError::Closed(reason.clone()));
                }
                for (_, reply) in self.commands.drain() {
                    let _ = reply.send(Err(NetError::Closed(reason.clone())));
                }
                for (_, reply) in self.switchboards.drain() {
                    let _ = reply.send(Err(NetError::Closed(reason.clone())));
                }
                self.forward(NsEvent::Closed(reason)).await;
                Flow::Stop
            }
            other => {
                self.forward(other).await;
                Flow::Continue
            }
        }
    }

    async fn forward(&self, event: NsEvent) {
        // Nobody listening is fine: the session goes on for the handles.
        let _ = self.events.send(event).await;
    }
}
