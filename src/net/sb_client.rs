//! A switchboard connection: a driver task owning the socket, the [`SbSession`] machine
//! and a [`P2pEndpoint`] for msnobj transfers (MSNP.md §7.7, §10.4); [`SbClient`] is the
//! cloneable handle. Sending text waits for the server's ACK/NAK of every part; typing and
//! nudges are fire-and-forget as the protocol makes them. Fetching a contact's display
//! picture or emoticon resolves with the verified bytes or a typed error; objects we
//! publish are served to whoever asks on this switchboard. Files go both ways through
//! the same endpoint, streamed from and to the caller's reader and writer.
//!
//! P2P bodies leave as `MSG … D` with `P2P-Dest` (§7.7), paced by [`crate::net::p2p`].
//! Incoming P2P messages addressed to someone else, or in P2P v2, are ignored.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::error::NetError;
use super::p2p::{P2P_WINDOW, Pacer, TransferError, random_seed};
use super::settings::MsnSettings;
use super::wire::Wire;
pub use files::{FileSink, FileSource};
use files::{Inbound, Outbound};
use msnp::message::{EmoticonDecl, encode_p2p};
use msnp::p2p::{FileContext, MsnObject, P2pConfig, P2pEndpoint, P2pEvent, TransferId};

mod files;
use msnp::{
    AckMode, MessageId, MsgPayload, Participant, SbCloseReason, SbConfig, SbEvent, SbSession,
    Secret, SendError, SendFailure, TextFormat,
};

/// What a switchboard reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SwitchboardEvent {
    /// A conversation event (joins, messages, failures, closing); P2P traffic excluded.
    Session(SbEvent),
    /// A transfer event nobody awaits: an object of ours served, an invitation declined.
    Transfer(P2pEvent),
}

/// The stream of events from one switchboard session.
pub type SbEvents = crate::channel::Events<SwitchboardEvent>;

type SendFn = Box<dyn FnOnce(&mut SbSession, Instant) -> Result<Vec<MessageId>, SendError> + Send>;
type FetchReply = oneshot::Sender<Result<(MsnObject, Bytes), TransferError>>;

enum Request {
    Send {
        op: SendFn,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Participants {
        reply: oneshot::Sender<Vec<Participant>>,
    },
    /// Answered once the conversation is ready (someone joined); dropped if it closes
    /// first.
    WhenReady {
        reply: oneshot::Sender<()>,
    },
    Fetch {
        contact: String,
        msnobj: String,
        reply: FetchReply,
    },
    Publish {
        object: Box<MsnObject>,
        data: Bytes,
        reply: oneshot::Sender<bool>,
    },
    /// Offers a file; `started` says whether the offer went out.
    SendFile {
        contact: String,
        file: Box<FileContext>,
        source: FileSource,
        started: oneshot::Sender<Result<(), TransferError>>,
        done: files::SentReply,
    },
    /// Accepts an offered file into `sink`.
    ReceiveFile {
        id: TransferId,
        sink: FileSink,
        done: files::ReceivedReply,
    },
    DeclineFile {
        id: TransferId,
    },
    Close,
}

/// A handle on one switchboard session.
#[derive(Clone, Debug)]
pub struct SbClient {
    tx: mpsc::Sender<Request>,
    timeout: Duration,
}

/// Waiting senders: each message part's ID, and the reply owed once all parts are acked.
#[derive(Default)]
struct Outstanding {
    parts: HashMap<MessageId, usize>,
    replies: HashMap<usize, (usize, oneshot::Sender<Result<(), NetError>>)>,
    next: usize,
}

impl SbClient {
    /// Opens a switchboard we asked for (`XFR SB`) and calls `invitees`.
    pub async fn open(
        settings: &MsnSettings,
        config: SbConfig,
        address: &str,
        auth: &Secret,
        invitees: &[&str],
    ) -> Result<(SbClient, SbEvents), NetError> {
        let session = SbSession::outgoing(config.clone(), Instant::now(), auth, invitees)
            .map_err(NetError::Send)?;
        Self::start(settings, address, session, &config).await
    }

    /// Answers an invitation (`RNG`) to a switchboard.
    pub async fn answer(
        settings: &MsnSettings,
        config: SbConfig,
        address: &str,
        auth: &Secret,
        session_id: &str,
    ) -> Result<(SbClient, SbEvents), NetError> {
        let session = SbSession::incoming(config.clone(), Instant::now(), auth, session_id)
            .map_err(NetError::Send)?;
        Self::start(settings, address, session, &config).await
    }

    async fn start(
        settings: &MsnSettings,
        address: &str,
        session: SbSession,
        config: &SbConfig,
    ) -> Result<(SbClient, SbEvents), NetError> {
        let wire =
            Wire::connect(address, settings.connect_timeout, settings.limits.clone()).await?;
        let endpoint = P2pEndpoint::new(
            P2pConfig::new(config.account.clone()),
            config.limits.clone(),
            random_seed(),
        );
        let (tx, rx) = mpsc::channel(64);
        let (events_tx, events_rx) = crate::channel::channel(256);
        let span = tracing::info_span!("sb", %address);
        let driver = Driver {
            wire,
            session,
            endpoint,
            version: config.version,
            events: events_tx,
            outstanding: Outstanding::default(),
            fetches: HashMap::new(),
            outbound: HashMap::new(),
            inbound: HashMap::new(),
            p2p_in_flight: HashSet::new(),
            pacer: Pacer::new(settings.p2p_min_interval),
            held_p2p: None,
            ready_waiters: Vec::new(),
        };
        tokio::spawn(driver.run(rx).instrument(span));
        Ok((
            SbClient {
                tx,
                timeout: settings.request_timeout + Duration::from_secs(5),
            },
            events_rx,
        ))
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<oneshot::Receiver<T>, NetError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| NetError::DriverGone)?;
        Ok(rx)
    }

    async fn send(
        &self,
        op: impl FnOnce(&mut SbSession, Instant) -> Result<Vec<MessageId>, SendError> + Send + 'static,
    ) -> Result<(), NetError> {
        let rx = self
            .request(|reply| Request::Send {
                op: Box::new(op),
                reply,
            })
            .await?;
        tokio::time::timeout(self.timeout, rx)
            .await
            .map_err(|_| NetError::Timeout)?
            .map_err(|_| NetError::DriverGone)?
    }

    /// Sends text (split under the payload limit), resolved when every part is acknowledged.
    pub async fn send_text(&self, text: String, format: TextFormat) -> Result<(), NetError> {
        self.send(move |s, now| s.send_text(now, &text, &format))
            .await
    }

    /// Sends a typing notification (no acknowledgement exists for it).
    pub async fn send_typing(&self) -> Result<(), NetError> {
        self.send(|s, now| s.send_typing(now).map(|()| Vec::new()))
            .await
    }

    /// Sends a nudge. It goes with ack mode `N`, which has no `ACK`: waiting for one would
    /// take the whole ack timeout, so this resolves once the nudge is queued, and a later
    /// `NAK` arrives as an [`SbEvent::Failed`].
    pub async fn send_nudge(&self) -> Result<(), NetError> {
        self.send(|s, now| s.send_nudge(now).map(|_| Vec::new()))
            .await
    }

    /// Declares custom emoticons for the next text (ack mode `N`, like a nudge); their
    /// pictures are served to whoever asks once [`SbClient::publish`]ed.
    pub async fn send_emoticons(&self, items: Vec<EmoticonDecl>) -> Result<(), NetError> {
        self.send(move |s, now| s.send_emoticons(now, &items).map(|_| Vec::new()))
            .await
    }

    /// Invites another contact into this conversation (`CAL`).
    pub async fn invite(&self, contact: String) -> Result<(), NetError> {
        self.send(move |s, now| s.invite(now, &contact).map(|()| Vec::new()))
            .await
    }

    /// Resolves once the conversation is ready (the contact joined, or we joined theirs);
    /// a switchboard that closes first (nobody joined, a step unanswered) gives
    /// [`SendFailure::NotSent`]: whatever waited for it was never on the wire.
    pub async fn ready(&self) -> Result<(), NetError> {
        let rx = self.request(|reply| Request::WhenReady { reply }).await?;
        rx.await
            .map_err(|_| NetError::NotDelivered(SendFailure::NotSent))
    }

    /// Who is in the conversation now.
    pub async fn participants(&self) -> Result<Vec<Participant>, NetError> {
        let rx = self
            .request(|reply| Request::Participants { reply })
            .await?;
        rx.await.map_err(|_| NetError::DriverGone)
    }

    /// Fetches the object `msnobj` (the XML text exactly as `contact` advertised it)
    /// from `contact`, who must be in this switchboard. Resolves with the bytes once
    /// their SHA1D is checked, or with a typed error; the progress timeout in
    /// [`msnp::Limits`] bounds the wait.
    pub async fn fetch(
        &self,
        contact: &str,
        msnobj: &str,
    ) -> Result<(MsnObject, Bytes), TransferError> {
        let (contact, msnobj) = (contact.to_owned(), msnobj.to_owned());
        let rx = self
            .request(|reply| Request::Fetch {
                contact,
                msnobj,
                reply,
            })
            .await?;
        rx.await.map_err(|_| NetError::DriverGone)?
    }

    /// Serves `data` to contacts whose INVITE names `object`; false if the data does
    /// not match the object's Size and SHA1D.
    pub async fn publish(&self, object: MsnObject, data: Bytes) -> Result<bool, NetError> {
        let rx = self
            .request(|reply| Request::Publish {
                object: Box::new(object),
                data,
                reply,
            })
            .await?;
        rx.await.map_err(|_| NetError::DriverGone)
    }

    /// Offers `file` to `contact` (in this switchboard), its bytes read from `source` as
    /// the transfer goes (never all at once). Resolves once the offer is out; the
    /// receiver resolves when the contact has every byte, or with why not (declined,
    /// cancelled, timed out, switchboard closed).
    pub async fn send_file(
        &self,
        contact: &str,
        file: FileContext,
        source: FileSource,
    ) -> Result<oneshot::Receiver<Result<(), TransferError>>, TransferError> {
        let (started_tx, started) = oneshot::channel();
        let (done, outcome) = oneshot::channel();
        self.tx
            .send(Request::SendFile {
                contact: contact.to_owned(),
                file: Box::new(file),
                source,
                started: started_tx,
                done,
            })
            .await
            .map_err(|_| NetError::DriverGone)?;
        started.await.map_err(|_| NetError::DriverGone)??;
        Ok(outcome)
    }

    /// Accepts a file offered on this switchboard ([`P2pEvent::FileOffered`]), writing
    /// its bytes to `sink` as they come. The receiver resolves with the size once every
    /// byte is written and flushed, or with why not.
    pub async fn receive_file(
        &self,
        id: TransferId,
        sink: FileSink,
    ) -> Result<oneshot::Receiver<Result<u64, TransferError>>, NetError> {
        let (done, outcome) = oneshot::channel();
        self.tx
            .send(Request::ReceiveFile { id, sink, done })
            .await
            .map_err(|_| NetError::DriverGone)?;
        Ok(outcome)
    }

    /// Declines a file offered on this switchboard.
    pub async fn decline_file(&self, id: TransferId) {
        let _ = self.tx.send(Request::DeclineFile { id }).await;
    }

    /// Leaves the conversation (`OUT`); running transfers fail as closed.
    pub async fn close(&self) {
        let _ = self.tx.send(Request::Close).await;
    }

    /// Whether the driver still runs (the switchboard is open).
    pub fn is_open(&self) -> bool {
        !self.tx.is_closed()
    }
}

struct Driver {
    wire: Wire,
    session: SbSession,
    endpoint: P2pEndpoint,
    version: u8,
    events: crate::channel::EventSender<SwitchboardEvent>,
    /// Text, typing, nudge and invite senders awaiting their acknowledgement.
    outstanding: Outstanding,
    /// Fetches awaiting their object.
    fetches: HashMap<TransferId, FetchReply>,
    /// Files we send, with where their bytes come from.
    outbound: HashMap<TransferId, Outbound>,
    /// Files we receive, with where their bytes go.
    inbound: HashMap<TransferId, Inbound>,
    /// P2P `MSG`s sent and not yet acknowledged by the server.
    p2p_in_flight: HashSet<MessageId>,
    /// When the next P2P `MSG` may go ([`MsnSettings::p2p_min_interval`]).
    pacer: Pacer,
    /// The next P2P `MSG`'s payload, taken from the endpoint and waiting for the pacer.
    held_p2p: Option<Bytes>,
    /// Waiting for the conversation to be ready ([`SbClient::ready`]).
    ready_waiters: Vec<oneshot::Sender<()>>,
}

impl Driver {
    async fn emit(&self, event: SwitchboardEvent) {
        let _ = self.events.send(event).await;
    }

    /// Moves P2P bodies into the switchboard while the window allows.
    fn pump_p2p(&mut self, now: Instant) {
        while self.p2p_in_flight.len() < P2P_WINDOW {
            let payload = match self.held_p2p.take() {
                Some(payload) => payload,
                None => {
                    let Some((dest, body)) = self.endpoint.poll_transmit() else {
                        break;
                    };
                    match encode_p2p(&dest, &body) {
                        Ok(payload) => payload,
                        // The transfer times out; nothing else to do with a bad body.
                        Err(error) => {
                            tracing::debug!(%error, "P2P message not sent");
                            continue;
                        }
                    }
                }
            };
            let len = payload.len();
            if self.pacer.ready_at(now, len) > now {
                // Held at most the pacing interval. A transfer cancelled meanwhile still
                // sends this one message; the peer drops data of a closed session.
                self.held_p2p = Some(payload);
                break;
            }
            match self.session.send(now, payload, AckMode::Data) {
                Ok(id) => {
                    self.p2p_in_flight.insert(id);
                    self.pacer.sent(now, len);
                }
                Err(error) => tracing::debug!(%error, "P2P message not sent"),
            }
        }
    }

    /// When the next P2P `MSG` can go (`now` or later), if one waits and the window has
    /// room.
    fn next_p2p_send(&self, now: Instant) -> Option<Instant> {
        if self.p2p_in_flight.len() >= P2P_WINDOW {
            return None;
        }
        match &self.held_p2p {
            Some(payload) => Some(self.pacer.ready_at(now, payload.len())),
            None => self.endpoint.has_transmit().then_some(now),
        }
    }

    /// Settles awaited fetches and file transfers and forwards the rest.
    async fn drain_p2p_events(&mut self) {
        while let Some(event) = self.endpoint.poll_event() {
            let Some(event) = self.on_file_event(event).await else {
                continue;
            };
            let id = match &event {
                P2pEvent::Received { id, .. } | P2pEvent::FetchFailed { id, .. } => Some(*id),
                _ => None,
            };
            if let Some(reply) = id.and_then(|id| self.fetches.remove(&id)) {
                let _ = reply.send(match event {
                    P2pEvent::Received { object, data, .. } => Ok((object, data)),
                    P2pEvent::FetchFailed { error, .. } => Err(error.into()),
                    _ => continue,
                });
                continue;
            }
            self.emit(SwitchboardEvent::Transfer(event)).await;
        }
    }

    /// Handles session events; returns false once the switchboard is closed.
    async fn drain_sb_events(&mut self, now: Instant) -> bool {
        while let Some(event) = self.session.poll_event() {
            match event {
                SbEvent::Delivered { id } => {
                    if !self.p2p_in_flight.remove(&id) {
                        self.outstanding.settle(id, Ok(()));
                    }
                }
                SbEvent::Failed { id, reason } => {
                    if self.p2p_in_flight.remove(&id) {
                        tracing::debug!(?reason, "P2P message not delivered");
                    } else if !self
                        .outstanding
                        .settle(id, Err(NetError::NotDelivered(reason.clone())))
                    {
                        // Nobody waits for it (a nudge): the consumer hears of it instead.
                        self.emit(SwitchboardEvent::Session(SbEvent::Failed { id, reason }))
                            .await;
                    }
                }
                SbEvent::Message {
                    from,
                    payload: MsgPayload::P2p { dest, body, .. },
                    ..
                } => {
                    if self.endpoint.is_for_us(dest.as_deref())
                        && let Err(error) = self.endpoint.handle_p2p(now, &from, &body)
                    {
                        tracing::debug!(%error, %from, "bad P2P message ignored");
                    }
                }
                SbEvent::Closed(reason) => {
                    tracing::debug!(?reason, "switchboard closed");
                    self.outstanding.fail_all(&reason);
                    self.endpoint.close();
                    self.drain_p2p_events().await;
                    self.emit(SwitchboardEvent::Session(SbEvent::Closed(reason)))
                        .await;
                    return false;
                }
                other => {
                    if matches!(other, SbEvent::Ready { .. }) {
                        for waiter in self.ready_waiters.drain(..) {
                            let _ = waiter.send(());
                        }
                    }
                    self.emit(SwitchboardEvent::Session(other)).await
                }
            }
        }
        true
    }

    fn request(&mut self, now: Instant, request: Request) {
        match request {
            Request::Send { op, reply } => match op(&mut self.session, now) {
                Ok(ids) => self.outstanding.wait(ids, reply),
                Err(e) => {
                    let _ = reply.send(Err(NetError::Send(e)));
                }
            },
            Request::Participants { reply } => {
                let _ = reply.send(self.session.participants().to_vec());
            }
            Request::WhenReady { reply } if self.session.is_ready() => {
                let _ = reply.send(());
            }
            Request::WhenReady { reply } => self.ready_waiters.push(reply),
            Request::Fetch {
                contact,
                msnobj,
                reply,
            } => match self.endpoint.fetch(now, &contact, &msnobj) {
                Ok(id) => {
                    self.fetches.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            Request::Publish {
                object,
                data,
                reply,
            } => {
                let _ = reply.send(self.endpoint.publish(*object, data));
            }
            Request::SendFile {
                contact,
                file,
                source,
                started,
                done,
            } => {
                let _ = started.send(self.offer_file(now, &contact, &file, source, done));
            }
            Request::ReceiveFile { id, sink, done } => self.accept_file(now, id, sink, done),
            Request::DeclineFile { id } => self.endpoint.decline_file(id),
            Request::Close => self.session.close_session(now),
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut requests_open = true;
        loop {
            let now = Instant::now();
            self.feed_files(now).await;
            // Reading a file may have taken a while: the pacer needs the time of the send.
            self.pump_p2p(Instant::now());
            let frames: Vec<_> = std::iter::from_fn(|| self.session.poll_transmit()).collect();
            if let Err(e) = self.wire.write_frames(&frames).await {
                tracing::warn!(error = %e, "write failed");
                self.session.handle_connection_lost(Instant::now());
            }
            if !self.drain_sb_events(now).await {
                return;
            }
            self.drain_p2p_events().await;
            // Input just handled may have queued P2P replies: send them before waiting.
            let pace = self.next_p2p_send(Instant::now());
            if pace.is_some_and(|at| at <= Instant::now()) {
                continue;
            }
            // The pacing pause is a few milliseconds from now on tokio's clock (the same
            // as the wall clock, except under a test's paused clock, where a wall-clock
            // instant can lie far ahead of tokio's and the pause would not end).
            let pace = pace.map(|at| {
                tokio::time::Instant::now() + at.saturating_duration_since(Instant::now())
            });
            let deadline = [self.session.poll_timeout(), self.endpoint.poll_timeout()]
                .into_iter()
                .flatten()
                .map(tokio::time::Instant::from_std)
                .chain(pace)
                .min()
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                // Input first: a close (`BYE`, `OUT`, EOF) already received must be seen
                // before a new message is put on the wire, so that the message fails as
                // never sent (and goes on a fresh switchboard) instead of in flight.
                biased;
                read = self.wire.read_frame(self.version) => match read {
                    Ok(Some(frame)) => self.session.handle_frame(Instant::now(), frame),
                    Ok(None) => self.session.handle_connection_lost(Instant::now()),
                    Err(e) => {
                        tracing::warn!(error = %e, "switchboard connection lost");
                        self.session.handle_connection_lost(Instant::now());
                    }
                },
                request = rx.recv(), if requests_open => match request {
                    Some(request) => self.request(Instant::now(), request),
                    None => {
                        requests_open = false;
                        self.session.close_session(Instant::now());
                    }
                },
                () = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    self.session.handle_timeout(now);
                    self.endpoint.handle_timeout(now);
                }
            }
        }
    }
}

impl Outstanding {
    fn wait(&mut self, ids: Vec<MessageId>, reply: oneshot::Sender<Result<(), NetError>>) {
        if ids.is_empty() {
            let _ = reply.send(Ok(()));
            return;
        }
        let key = self.next;
        self.next += 1;
        for id in &ids {
            self.parts.insert(*id, key);
        }
        self.replies.insert(key, (ids.len(), reply));
    }

    /// Settles one part; `false` when no sender waits for `id`.
    fn settle(&mut self, id: MessageId, result: Result<(), NetError>) -> bool {
        let Some(key) = self.parts.remove(&id) else {
            return false;
        };
        let Some((left, _)) = self.replies.get_mut(&key) else {
            return false;
        };
        *left -= 1;
        if result.is_err() || *left == 0 {
            if let Some((_, reply)) = self.replies.remove(&key) {
                let _ = reply.send(result);
            }
            self.parts.retain(|_, k| *k != key);
        }
        true
    }

    fn fail_all(&mut self, reason: &SbCloseReason) {
        for (_, (_, reply)) in self.replies.drain() {
            let _ = reply.send(Err(NetError::NotDelivered(SendFailure::Closed)));
        }
        self.parts.clear();
        tracing::trace!(?reason, "pending messages failed");
    }
}
