//! A switchboard connection that also carries P2P msnobj transfers (MSNP.md §7.7, §10.4):
//! one driver task owns the socket, the [`SbSession`] and a [`P2pEndpoint`];
//! [`P2pSwitchboard`] is the cloneable handle. Fetching a contact's display picture or
//! emoticon resolves with the verified bytes or a typed error; objects we publish are
//! served to whoever asks on this switchboard.
//!
//! P2P bodies leave as `MSG … D` with `P2P-Dest` (§7.7), at most [`P2P_WINDOW`]
//! unacknowledged at a time so a large picture never floods the server. Incoming P2P
//! messages addressed to someone else, or in P2P v2, are ignored. Every other
//! switchboard event is passed through.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::error::NetError;
use super::settings::MsnSettings;
use super::wire::Wire;
use crate::msnp::message::encode_p2p;
use crate::msnp::p2p::{
    FetchError, MsnObject, P2pConfig, P2pEndpoint, P2pEvent, Seed, StartError, TransferId,
};
use crate::msnp::{AckMode, MessageId, MsgPayload, SbConfig, SbEvent, SbSession, Secret};

/// Most P2P `MSG`s sent and not yet acknowledged by the server. One, as `msnp11-sdk`
/// sends: its reader spins on a `MSG` command line split across two TCP reads, which
/// back-to-back 1.3 KB chunks provoke; one chunk per server round trip avoids that.
pub const P2P_WINDOW: usize = 1;

/// Least time between two P2P `MSG`s. Over the internet the round trip of
/// [`P2P_WINDOW`] already spaces them; on a fast local server this keeps a peer that
/// cannot take back-to-back chunks (`msnp11-sdk`, see above) reading one `MSG` per read.
pub const P2P_MIN_INTERVAL: Duration = Duration::from_millis(5);

/// What a [`P2pSwitchboard`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum P2pSbEvent {
    /// A switchboard event other than P2P traffic.
    Switchboard(SbEvent),
    /// A transfer event nobody awaits (served objects, declined invitations, …).
    Transfer(P2pEvent),
}

/// The stream of events from one [`P2pSwitchboard`].
pub type P2pSbEvents = mpsc::Receiver<P2pSbEvent>;

/// Why a fetch through the shell failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The switchboard or its driver failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The fetch could not start (bad or oversized msnobj, too many transfers).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The transfer failed (declined, timed out, bad data, switchboard closed).
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

type FetchReply = oneshot::Sender<Result<(MsnObject, Bytes), TransferError>>;

enum Request {
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
    Close,
}

/// A handle on one P2P-capable switchboard session.
#[derive(Clone, Debug)]
pub struct P2pSwitchboard {
    tx: mpsc::Sender<Request>,
}

/// A seed for [`P2pEndpoint`] identifiers from the operating system's generator.
pub fn random_seed() -> Seed {
    let mut b = [0u8; 8];
    // A failed generator leaves zeros: identifiers stay valid, only predictable.
    let _ = getrandom::fill(&mut b);
    Seed::from_u64(u64::from_le_bytes(b))
}

impl P2pSwitchboard {
    /// Opens a switchboard we asked for (`XFR SB`) and calls `invitees`.
    pub async fn open(
        settings: &MsnSettings,
        config: SbConfig,
        p2p: P2pConfig,
        seed: Seed,
        address: &str,
        auth: &Secret,
        invitees: &[&str],
    ) -> Result<(P2pSwitchboard, P2pSbEvents), NetError> {
        let version = config.version;
        let session =
            SbSession::outgoing(config, Instant::now(), auth, invitees).map_err(NetError::Send)?;
        Self::start(settings, address, session, version, p2p, seed).await
    }

    /// Answers an invitation (`RNG`) to a switchboard.
    pub async fn answer(
        settings: &MsnSettings,
        config: SbConfig,
        p2p: P2pConfig,
        seed: Seed,
        address: &str,
        auth: &Secret,
        session_id: &str,
    ) -> Result<(P2pSwitchboard, P2pSbEvents), NetError> {
        let version = config.version;
        let session = SbSession::incoming(config, Instant::now(), auth, session_id)
            .map_err(NetError::Send)?;
        Self::start(settings, address, session, version, p2p, seed).await
    }

    async fn start(
        settings: &MsnSettings,
        address: &str,
        session: SbSession,
        version: u8,
        p2p: P2pConfig,
        seed: Seed,
    ) -> Result<(P2pSwitchboard, P2pSbEvents), NetError> {
        let wire =
            Wire::connect(address, settings.connect_timeout, settings.limits.clone()).await?;
        let endpoint = P2pEndpoint::new(p2p, settings.limits.clone(), seed);
        let (tx, rx) = mpsc::channel(16);
        let (events_tx, events_rx) = mpsc::channel(256);
        let span = tracing::info_span!("sb", %address);
        let driver = Driver {
            wire,
            session,
            endpoint,
            version,
            events: events_tx,
            waiting: HashMap::new(),
            in_flight: HashSet::new(),
            next_send: Instant::now(),
        };
        tokio::spawn(driver.run(rx).instrument(span));
        Ok((P2pSwitchboard { tx }, events_rx))
    }

    /// Fetches the object `msnobj` (the XML text exactly as `contact` advertised it)
    /// from `contact`, who must be in this switchboard. Resolves with the bytes once
    /// their SHA1D is checked, or with a typed error (the endpoint's progress timeout
    /// bounds the wait).
    pub async fn fetch(
        &self,
        contact: &str,
        msnobj: &str,
    ) -> Result<(MsnObject, Bytes), TransferError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Fetch {
                contact: contact.to_owned(),
                msnobj: msnobj.to_owned(),
                reply,
            })
            .await
            .map_err(|_| NetError::DriverGone)?;
        rx.await.map_err(|_| NetError::DriverGone)?
    }

    /// Serves `data` to contacts whose INVITE names `object`; false if the data does
    /// not match the object's Size and SHA1D.
    pub async fn publish(&self, object: MsnObject, data: Bytes) -> Result<bool, NetError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Publish {
                object: Box::new(object),
                data,
                reply,
            })
            .await
            .map_err(|_| NetError::DriverGone)?;
        rx.await.map_err(|_| NetError::DriverGone)
    }

    /// Leaves the conversation (`OUT`); running transfers fail with
    /// [`FetchError::Closed`].
    pub async fn close(&self) {
        let _ = self.tx.send(Request::Close).await;
    }

    /// Whether the driver still runs.
    pub fn is_open(&self) -> bool {
        !self.tx.is_closed()
    }
}

struct Driver {
    wire: Wire,
    session: SbSession,
    endpoint: P2pEndpoint,
    version: u8,
    events: mpsc::Sender<P2pSbEvent>,
    waiting: HashMap<TransferId, FetchReply>,
    in_flight: HashSet<MessageId>,
    /// Earliest time for the next P2P `MSG` ([`P2P_MIN_INTERVAL`]).
    next_send: Instant,
}

impl Driver {
    /// Moves P2P bodies into the switchboard while the window allows.
    fn pump_p2p(&mut self, now: Instant) {
        while self.in_flight.len() < P2P_WINDOW && now >= self.next_send {
            let Some((dest, body)) = self.endpoint.poll_transmit() else {
                break;
            };
            let sent = encode_p2p(&dest, &body)
                .map_err(|e| e.to_string())
                .and_then(|payload| {
                    self.session
                        .send(now, payload, AckMode::Data)
                        .map_err(|e| e.to_string())
                });
            match sent {
                Ok(id) => {
                    self.in_flight.insert(id);
                    self.next_send = now + P2P_MIN_INTERVAL;
                }
                // The transfer times out; nothing else to do with a refused body.
                Err(error) => tracing::debug!(%error, "P2P message not sent"),
            }
        }
    }

    /// Settles awaited fetches and forwards the rest.
    async fn drain_p2p_events(&mut self) {
        while let Some(event) = self.endpoint.poll_event() {
            let id = match &event {
                P2pEvent::Received { id, .. } | P2pEvent::FetchFailed { id, .. } => Some(*id),
                _ => None,
            };
            if let Some(reply) = id.and_then(|id| self.waiting.remove(&id)) {
                let _ = reply.send(match event {
                    P2pEvent::Received { object, data, .. } => Ok((object, data)),
                    P2pEvent::FetchFailed { error, .. } => Err(error.into()),
                    _ => continue,
                });
                continue;
            }
            let _ = self.events.send(P2pSbEvent::Transfer(event)).await;
        }
    }

    /// Handles session events; returns false once the switchboard is closed.
    async fn drain_sb_events(&mut self, now: Instant) -> bool {
        while let Some(event) = self.session.poll_event() {
            match event {
                SbEvent::Delivered { id } => {
                    if !self.in_flight.remove(&id) {
                        let _ = self
                            .events
                            .send(P2pSbEvent::Switchboard(SbEvent::Delivered { id }))
                            .await;
                    }
                }
                SbEvent::Failed { id, reason } => {
                    if self.in_flight.remove(&id) {
                        tracing::debug!(?reason, "P2P message not delivered");
                    } else {
                        let _ = self
                            .events
                            .send(P2pSbEvent::Switchboard(SbEvent::Failed { id, reason }))
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
                    self.endpoint.close();
                    self.drain_p2p_events().await;
                    let _ = self
                        .events
                        .send(P2pSbEvent::Switchboard(SbEvent::Closed(reason)))
                        .await;
                    return false;
                }
                other => {
                    let _ = self.events.send(P2pSbEvent::Switchboard(other)).await;
                }
            }
        }
        true
    }

    fn request(&mut self, now: Instant, request: Request) {
        match request {
            Request::Fetch {
                contact,
                msnobj,
                reply,
            } => match self.endpoint.fetch(now, &contact, &msnobj) {
                Ok(id) => {
                    self.waiting.insert(id, reply);
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
            Request::Close => self.session.close_session(now),
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut requests_open = true;
        loop {
            let now = Instant::now();
            self.pump_p2p(now);
            let frames: Vec<_> = std::iter::from_fn(|| self.session.poll_transmit()).collect();
            if let Err(e) = self.wire.write_frames(&frames).await {
                tracing::warn!(error = %e, "write failed");
                self.session.handle_connection_lost(Instant::now());
            }
            if !self.drain_sb_events(now).await {
                return;
            }
            self.drain_p2p_events().await;
            // Input just handled may have queued replies: send them before waiting.
            let can_send = self.endpoint.has_transmit() && self.in_flight.len() < P2P_WINDOW;
            if can_send && Instant::now() >= self.next_send {
                continue;
            }
            let pace = can_send.then_some(self.next_send);
            let deadline = [
                self.session.poll_timeout(),
                self.endpoint.poll_timeout(),
                pace,
            ]
            .into_iter()
            .flatten()
            .min()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
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
