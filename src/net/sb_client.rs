//! A switchboard connection: a driver task owning the socket and the [`SbSession`]
//! machine, and [`SbClient`], a cloneable handle. Sending text waits for the server's
//! ACK/NAK of every part; typing and nudges are fire-and-forget as the protocol makes them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::error::NetError;
use super::settings::MsnSettings;
use super::wire::Wire;
use crate::msnp::{
    MessageId, Participant, SbCloseReason, SbConfig, SbEvent, SbSession, Secret, SendError,
    TextFormat,
};

/// The stream of events from one switchboard session.
pub type SbEvents = mpsc::Receiver<SbEvent>;

type SendFn = Box<dyn FnOnce(&mut SbSession, Instant) -> Result<Vec<MessageId>, SendError> + Send>;

enum Request {
    Send {
        op: SendFn,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Participants {
        reply: oneshot::Sender<Vec<Participant>>,
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
        let version = config.version;
        let session =
            SbSession::outgoing(config, Instant::now(), auth, invitees).map_err(NetError::Send)?;
        Self::start(settings, address, session, version).await
    }

    /// Answers an invitation (`RNG`) to a switchboard.
    pub async fn answer(
        settings: &MsnSettings,
        config: SbConfig,
        address: &str,
        auth: &Secret,
        session_id: &str,
    ) -> Result<(SbClient, SbEvents), NetError> {
        let version = config.version;
        let session = SbSession::incoming(config, Instant::now(), auth, session_id)
            .map_err(NetError::Send)?;
        Self::start(settings, address, session, version).await
    }

    async fn start(
        settings: &MsnSettings,
        address: &str,
        session: SbSession,
        version: u8,
    ) -> Result<(SbClient, SbEvents), NetError> {
        let wire =
            Wire::connect(address, settings.connect_timeout, settings.limits.clone()).await?;
        let (tx, rx) = mpsc::channel(64);
        let (events_tx, events_rx) = mpsc::channel(256);
        let span = tracing::info_span!("sb", %address);
        tokio::spawn(drive(wire, session, version, rx, events_tx).instrument(span));
        Ok((
            SbClient {
                tx,
                timeout: settings.request_timeout + Duration::from_secs(5),
            },
            events_rx,
        ))
    }

    async fn send(
        &self,
        op: impl FnOnce(&mut SbSession, Instant) -> Result<Vec<MessageId>, SendError> + Send + 'static,
    ) -> Result<(), NetError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Send {
                op: Box::new(op),
                reply,
            })
            .await
            .map_err(|_| NetError::DriverGone)?;
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

    /// Invites another contact into this conversation (`CAL`).
    pub async fn invite(&self, contact: String) -> Result<(), NetError> {
        self.send(move |s, now| s.invite(now, &contact).map(|()| Vec::new()))
            .await
    }

    /// Who is in the conversation now.
    pub async fn participants(&self) -> Result<Vec<Participant>, NetError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Participants { reply })
            .await
            .map_err(|_| NetError::DriverGone)?;
        rx.await.map_err(|_| NetError::DriverGone)
    }

    /// Leaves the conversation (`OUT`).
    pub async fn close(&self) {
        let _ = self.tx.send(Request::Close).await;
    }

    /// Whether the driver still runs (the switchboard is open).
    pub fn is_open(&self) -> bool {
        !self.tx.is_closed()
    }
}

async fn drive(
    mut wire: Wire,
    mut session: SbSession,
    version: u8,
    mut rx: mpsc::Receiver<Request>,
    events: mpsc::Sender<SbEvent>,
) {
    let mut waiting = Outstanding::default();
    loop {
        let frames: Vec<_> = std::iter::from_fn(|| session.poll_transmit()).collect();
        if let Err(e) = wire.write_frames(&frames).await {
            tracing::warn!(error = %e, "write failed");
            session.handle_connection_lost(Instant::now());
        }
        while let Some(event) = session.poll_event() {
            match event {
                SbEvent::Delivered { id } => {
                    waiting.settle(id, Ok(()));
                }
                SbEvent::Failed { id, reason } => {
                    if !waiting.settle(id, Err(NetError::NotDelivered(reason.clone()))) {
                        // Nobody waits for it (a nudge): the consumer hears of it instead.
                        let _ = events.send(SbEvent::Failed { id, reason }).await;
                    }
                }
                SbEvent::Closed(reason) => {
                    tracing::debug!(?reason, "switchboard closed");
                    waiting.fail_all(&reason);
                    let _ = events.send(SbEvent::Closed(reason)).await;
                    return;
                }
                other => {
                    let _ = events.send(other).await;
                }
            }
        }
        let deadline = session
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            read = wire.read_frame(version) => match read {
                Ok(Some(frame)) => session.handle_frame(Instant::now(), frame),
                Ok(None) => session.handle_connection_lost(Instant::now()),
                Err(e) => {
                    tracing::warn!(error = %e, "switchboard connection lost");
                    session.handle_connection_lost(Instant::now());
                }
            },
            request = rx.recv() => match request {
                Some(Request::Send { op, reply }) => match op(&mut session, Instant::now()) {
                    Ok(ids) => waiting.wait(ids, reply),
                    Err(e) => { let _ = reply.send(Err(NetError::Send(e))); }
                },
                Some(Request::Participants { reply }) => { let _ = reply.send(session.participants().to_vec()); }
                Some(Request::Close) | None => session.close_session(Instant::now()),
            },
            () = tokio::time::sleep_until(deadline) => session.handle_timeout(Instant::now()),
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
            let _ = reply.send(Err(NetError::NotDelivered(
                crate::msnp::SendFailure::Closed,
            )));
        }
        self.parts.clear();
        tracing::trace!(?reason, "pending messages failed");
    }
}
