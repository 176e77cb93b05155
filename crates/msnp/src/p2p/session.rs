//! The P2P v1 / MSNSLP msnobj transfer machine of one switchboard (MSNP.md §9, §10.4):
//! fetching contacts' display pictures and emoticons (requester side) and serving our
//! own published objects (sender side), several transfers at once up to
//! [`Limits::max_p2p_sessions`].
//!
//! Sans-IO: P2P bodies go in through [`P2pEndpoint::handle_p2p`], time through
//! `handle_timeout(now)`; bodies to send come out of [`P2pEndpoint::poll_transmit`] as
//! `(P2P-Dest, body)` for `MSG … D` (wrap with `message::encode_p2p`), results out of
//! [`P2pEndpoint::poll_event`]. Identifiers, SessionIDs, branches and Call-IDs come from
//! a seed passed in, so runs are reproducible.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::file_context::{FileContext, FileContextError};
use super::header::{
    self, Header, HeaderError, MAX_CHUNK, Packet, Reassembly, ReassemblyError, app_id, flags,
};
use super::msnobject::{MsnObject, MsnObjectError};
use super::slp::{
    CT_SESSION_REQ, CT_TRANS_REQ, EUF_GUID_MSNOBJ, Guid, MAX_SLP_LEN, SlpError, SlpMessage,
};

mod files;
use crate::limits::Limits;
pub use files::FILE_FEED_WINDOW;
use files::{Incoming, Outgoing};

/// Identity and chunk size of a [`P2pEndpoint`]; its timeouts are in [`Limits`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P2pConfig {
    /// Our account (`From` of our MSNSLP messages, the `P2P-Dest` we accept).
    pub local: String,
    /// Data bytes per chunk (§9.4). Default 1202.
    pub max_chunk: usize,
}

impl P2pConfig {
    /// Defaults for `local`.
    pub fn new(local: impl Into<String>) -> P2pConfig {
        P2pConfig {
            local: local.into(),
            max_chunk: MAX_CHUNK,
        }
    }
}

/// Randomness for one endpoint: the PRNG seed and the two counters' bases (§9.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    /// Seed for SessionIDs, branches and Call-IDs.
    pub rng: u64,
    /// First Identifier we use.
    pub identifier_base: u32,
    /// First AckSessionID we use; each non-ACK message takes the next one.
    pub ack_base: u32,
}

impl Seed {
    /// Derives all values from one random number (e.g. from `getrandom`).
    pub fn from_u64(seed: u64) -> Seed {
        let mut rng = Rng(seed);
        let identifier_base = 10_000 + (rng.next() as u32 % 0x7FFF_0000);
        let ack_base = 50_000 + (rng.next() as u32 % 0x7FFF_0000);
        Seed {
            rng: rng.next(),
            identifier_base,
            ack_base,
        }
    }
}

/// SplitMix64: tiny, deterministic, good enough for protocol identifiers.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn guid(&mut self) -> Guid {
        let v = (u128::from(self.next()) << 64) | u128::from(self.next());
        // Version 4, RFC 4122 variant, like the GUIDs official clients make.
        let v = (v & !(0xF << 76)) | (0x4 << 76);
        let v = (v & !(0x3 << 62)) | (0x2 << 62);
        Guid(v)
    }
}

/// Identifies one transfer of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub u64);

/// The session identifiers of a fetch (normally drawn from the seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionIds {
    /// Non-zero SessionID (§10.3).
    pub session_id: u32,
    /// `Via` branch.
    pub branch: Guid,
    /// `Call-ID`.
    pub call_id: Guid,
}

/// Why a fetch could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The msnobj text is malformed.
    #[error("bad msnobj: {0}")]
    MsnObject(#[from] MsnObjectError),
    /// The object is larger than `Limits::max_p2p_total`.
    #[error("msnobj of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// `Size`.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// `Size` is 0.
    #[error("msnobj has size 0")]
    Empty,
    /// `Limits::max_p2p_sessions` transfers are running.
    #[error("too many P2P transfers")]
    TooManySessions,
    /// The SessionID 0 is reserved for MSNSLP.
    #[error("SessionID 0 is reserved")]
    ZeroSessionId,
    /// The file cannot be described in a file context.
    #[error("cannot offer the file: {0}")]
    File(#[from] FileContextError),
}

/// Why a fetch or a file transfer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The peer answered the INVITE with an error status (603 Decline, 500, …): a
    /// file offer the contact declined.
    #[error("peer declined with status {code}")]
    Declined {
        /// The MSNSLP status.
        code: u16,
    },
    /// No progress within the progress timeout.
    #[error("transfer timed out")]
    Timeout,
    /// The peer sent BYE before the data was complete (a file transfer the contact
    /// cancelled).
    #[error("peer closed the session")]
    PeerClosed,
    /// The peer aborted with an error or close flag (§9.6).
    #[error("peer aborted the session (flags {flags:#x})")]
    Aborted {
        /// The header flags.
        flags: u32,
    },
    /// The data message announced a size other than the msnobj's.
    #[error("data of {got} bytes, msnobj says {expected}")]
    SizeMismatch {
        /// msnobj `Size`.
        expected: u64,
        /// TotalSize of the data message.
        got: u64,
    },
    /// A data chunk was invalid (overlap, past the end, …).
    #[error("bad data chunk: {0}")]
    BadData(#[from] ReassemblyError),
    /// The received data does not hash to SHA1D.
    #[error("data does not match SHA1D")]
    HashMismatch,
    /// The switchboard closed ([`P2pEndpoint::close`]).
    #[error("switchboard closed")]
    Closed,
    /// Cancelled locally.
    #[error("cancelled")]
    Cancelled,
}

/// Why an incoming INVITE was declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineReason {
    /// Not a session we take part in (activity, photo sharing, …).
    Unsupported,
    /// A file offer whose context cannot be read.
    BadFileContext,
    /// The Context does not name an object we publish.
    UnknownObject,
    /// Too many transfers running.
    TooManySessions,
}

/// What an endpoint reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum P2pEvent {
    /// A fetch finished; `data` matched the msnobj's SHA1D.
    Received {
        /// The transfer.
        id: TransferId,
        /// The contact.
        peer: String,
        /// The object requested (Type 3 picture, 2 emoticon, …).
        object: MsnObject,
        /// The verified bytes.
        data: Bytes,
    },
    /// A fetch failed; the session is gone.
    FetchFailed {
        /// The transfer.
        id: TransferId,
        /// The contact.
        peer: String,
        /// The object requested.
        object: MsnObject,
        /// Why.
        error: FetchError,
    },
    /// A transfer serving one of our objects ended.
    Served {
        /// The transfer.
        id: TransferId,
        /// The requester.
        peer: String,
        /// Whether all data was sent and acknowledged.
        complete: bool,
    },
    /// A contact offers a file; answer with [`P2pEndpoint::accept_file`] or
    /// [`P2pEndpoint::decline_file`] (the INVITE is ACKed already).
    FileOffered {
        /// The transfer.
        id: TransferId,
        /// The contact.
        peer: String,
        /// Name, size and preview as the contact announced them.
        file: FileContext,
    },
    /// A piece of an accepted incoming file, in order: `offset` is the number of bytes
    /// reported before it. Nothing is kept by the endpoint.
    FileData {
        /// The transfer.
        id: TransferId,
        /// Where this piece starts in the file.
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
    /// An incoming file is complete (every byte was reported) and acknowledged.
    FileReceived {
        /// The transfer.
        id: TransferId,
        /// The contact.
        peer: String,
    },
    /// The contact accepted a file we offer: feed it with [`P2pEndpoint::feed_file`].
    FileAccepted {
        /// The transfer.
        id: TransferId,
        /// The contact.
        peer: String,
    },
    /// The contact acknowledged the last byte of a file we sent.
    FileSent {
        /// The transfer.
        id: TransferId,
        /// The contact.
        peer: String,
    },
    /// A file transfer either way failed; the session is gone.
    FileFailed {
        /// The transfer.
        id: TransferId,
        /// The contact.
        peer: String,
        /// Why: declined, cancelled by the contact ([`FetchError::PeerClosed`]), timed
        /// out, switchboard closed, bad data.
        error: FetchError,
    },
    /// We declined an INVITE.
    Declined {
        /// The inviter.
        peer: String,
        /// Why.
        reason: DeclineReason,
    },
}

/// Malformed input to [`P2pEndpoint::handle_p2p`]; the endpoint is unchanged apart
/// from dropping any partial message the input belonged to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum P2pError {
    /// Bad binary framing.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A chunk that cannot join its message.
    #[error(transparent)]
    Reassembly(#[from] ReassemblyError),
    /// An unparsable MSNSLP message.
    #[error(transparent)]
    Slp(#[from] SlpError),
}

#[derive(Debug)]
enum FetchState {
    /// INVITE sent; waiting for 200 OK (data is accepted too).
    Inviting,
    /// 200 OK received; waiting for data.
    Accepted,
    /// BYE sent with this Identifier; waiting for its ACK.
    Closing(u32),
}

#[derive(Debug)]
enum ServeState {
    AwaitOkAck(u32),
    AwaitPrepAck(u32),
    Sending,
    AwaitDataAck(u32),
    AwaitBye,
}

#[derive(Debug)]
enum Kind {
    Fetch {
        object: MsnObject,
        state: FetchState,
        data: Option<Reassembly>,
    },
    Serve {
        state: ServeState,
        app_id: u32,
        data: Bytes,
        offset: usize,
        /// Identifier and AckSessionID of the data message, taken at its first chunk.
        ids: Option<(u32, u32)>,
    },
    /// A file the contact sends us.
    FileIn(Incoming),
    /// A file we send the contact.
    FileOut(Outgoing),
}

#[derive(Debug)]
struct Transfer {
    id: TransferId,
    peer: String,
    session_id: u32,
    branch: Guid,
    call_id: Guid,
    deadline: Instant,
    kind: Kind,
}

#[derive(Debug)]
struct PendingSlp {
    peer: String,
    identifier: u32,
    deadline: Instant,
    data: Reassembly,
}

/// One published object we serve.
#[derive(Debug, Clone)]
struct Published {
    object: MsnObject,
    data: Bytes,
}

/// The msnobj transfer machine of one switchboard (module docs).
#[derive(Debug)]
pub struct P2pEndpoint {
    config: P2pConfig,
    limits: Limits,
    rng: Rng,
    next_identifier: u32,
    next_ack_sid: u32,
    next_transfer: u64,
    published: Vec<Published>,
    transfers: Vec<Transfer>,
    pending: Vec<PendingSlp>,
    out: VecDeque<(String, Bytes)>,
    events: VecDeque<P2pEvent>,
}

/// Most objects served at once (display picture plus custom emoticons).
pub const MAX_PUBLISHED: usize = 64;

fn same_account(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl P2pEndpoint {
    /// A new endpoint with nothing published.
    pub fn new(config: P2pConfig, limits: Limits, seed: Seed) -> P2pEndpoint {
        P2pEndpoint {
            config,
            limits,
            rng: Rng(seed.rng),
            next_identifier: seed.identifier_base,
            next_ack_sid: seed.ack_base,
            next_transfer: 1,
            published: Vec::new(),
            transfers: Vec::new(),
            pending: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Serves `data` to requesters whose Context names `object` (matched by SHA1D).
    /// Replaces an object with the same SHA1D; at most [`MAX_PUBLISHED`] are kept
    /// (the oldest is dropped). Returns false, publishing nothing, if `data` does not
    /// match the object's Size and SHA1D.
    pub fn publish(&mut self, object: MsnObject, data: Bytes) -> bool {
        if data.is_empty() || !object.matches_data(&data) {
            return false;
        }
        self.published.retain(|p| p.object.sha1d != object.sha1d);
        if self.published.len() >= MAX_PUBLISHED {
            self.published.remove(0);
        }
        self.published.push(Published { object, data });
        true
    }

    /// Stops serving the object with this SHA1D (running transfers finish).
    pub fn unpublish(&mut self, sha1d: &str) {
        self.published.retain(|p| p.object.sha1d != sha1d);
    }

    /// Whether a `P2P-Dest` names us as a P2P v1 destination (§7.7): the local
    /// account, without an `;{epid}` (P2P v2). A missing header is accepted.
    pub fn is_for_us(&self, dest: Option<&str>) -> bool {
        dest.is_none_or(|d| same_account(d.trim(), &self.config.local))
    }

    /// Transfers running (including ones lingering for a final ACK or BYE).
    pub fn transfer_count(&self) -> usize {
        self.transfers.len()
    }

    /// Partially received MSNSLP messages held.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// The next `(P2P-Dest, P2P body)` to send in `MSG … D`.
    pub fn poll_transmit(&mut self) -> Option<(String, Bytes)> {
        if let Some(out) = self.out.pop_front() {
            return Some(out);
        }
        self.next_data_chunk().or_else(|| self.next_file_chunk())
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) has something to return.
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
            || self.transfers.iter().any(|t| match &t.kind {
                Kind::Serve { state, .. } => matches!(state, ServeState::Sending),
                Kind::FileOut(out) => out.can_send(),
                _ => false,
            })
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<P2pEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline to pass to `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t = self.transfers.iter().map(|t| t.deadline);
        let p = self.pending.iter().map(|p| p.deadline);
        t.chain(p).min()
    }

    fn identifier(&mut self) -> u32 {
        let id = self.next_identifier;
        self.next_identifier = self.next_identifier.wrapping_add(1);
        id
    }

    fn ack_sid(&mut self) -> u32 {
        let id = self.next_ack_sid;
        self.next_ack_sid = self.next_ack_sid.wrapping_add(1);
        id
    }

    fn send_ack(&mut self, peer: &str, acked: &Header, footer: u32) {
        let id = self.identifier();
        let ack = acked.ack(id);
        self.out
            .push_back((peer.to_owned(), Packet::encode(&ack, &[], footer)));
    }

    /// Queues an MSNSLP message (chunked if long) and returns its Identifier.
    fn send_slp(&mut self, peer: &str, msg: &SlpMessage) -> u32 {
        let identifier = self.identifier();
        let template = Header {
            identifier,
            ack_session_id: self.ack_sid(),
            ..Header::default()
        };
        let data = Bytes::from(msg.encode());
        let max = self.config.max_chunk;
        let cut = |start| SlpMessage::chunk_end(&data, start, max);
        for body in header::chunk_with(&template, &data, app_id::SLP, cut) {
            self.out.push_back((peer.to_owned(), body));
        }
        identifier
    }

    /// Starts fetching the object described by `msnobj_text` (as the contact
    /// advertised it; the exact text goes into the Context, §10.2) from `peer`.
    /// Identifiers are drawn from the seed.
    pub fn fetch(
        &mut self,
        now: Instant,
        peer: &str,
        msnobj_text: &str,
    ) -> Result<TransferId, StartError> {
        let ids = self.draw_ids();
        self.fetch_with(now, peer, msnobj_text, ids)
    }

    /// Fresh session identifiers from the seed.
    fn draw_ids(&mut self) -> SessionIds {
        let mut session_id = 0;
        while session_id == 0 {
            session_id = self.rng.next() as u32;
        }
        SessionIds {
            session_id,
            branch: self.rng.guid(),
            call_id: self.rng.guid(),
        }
    }

    /// The next transfer's id.
    fn next_id(&mut self) -> TransferId {
        let id = TransferId(self.next_transfer);
        self.next_transfer += 1;
        id
    }

    /// [`fetch`](Self::fetch) with explicit identifiers (tests, fixtures).
    pub fn fetch_with(
        &mut self,
        now: Instant,
        peer: &str,
        msnobj_text: &str,
        ids: SessionIds,
    ) -> Result<TransferId, StartError> {
        let object = MsnObject::parse(msnobj_text)?;
        if object.size == 0 {
            return Err(StartError::Empty);
        }
        if object.size > self.limits.max_p2p_total {
            return Err(StartError::TooLarge {
                size: object.size,
                max: self.limits.max_p2p_total,
            });
        }
        if self.transfers.len() >= self.limits.max_p2p_sessions {
            return Err(StartError::TooManySessions);
        }
        if ids.session_id == 0 {
            return Err(StartError::ZeroSessionId);
        }
        let invite = SlpMessage::invite_msnobj(
            peer,
            &self.config.local,
            ids.branch,
            ids.call_id,
            ids.session_id,
            app_id::MSNOBJ,
            msnobj_text,
        );
        self.send_slp(peer, &invite);
        let id = self.next_id();
        self.transfers.push(Transfer {
            id,
            peer: peer.to_owned(),
            session_id: ids.session_id,
            branch: ids.branch,
            call_id: ids.call_id,
            deadline: now + self.limits.p2p_progress_timeout,
            kind: Kind::Fetch {
                object,
                state: FetchState::Inviting,
                data: None,
            },
        });
        Ok(id)
    }

    /// Cancels a transfer: a fetch sends BYE and reports [`FetchError::Cancelled`].
    pub fn cancel(&mut self, id: TransferId) {
        if let Some(pos) = self.transfers.iter().position(|t| t.id == id) {
            let t = self.transfers.remove(pos);
            self.end(t, Some(FetchError::Cancelled), true);
        }
    }

    /// The switchboard closed: every transfer ends ([`FetchError::Closed`]), nothing is
    /// sent, nothing is kept.
    pub fn close(&mut self) {
        for t in std::mem::take(&mut self.transfers) {
            self.end(t, Some(FetchError::Closed), false);
        }
        self.pending.clear();
        self.out.clear();
    }

    /// Reports the end of a removed transfer. `error` applies to fetches; `bye` sends
    /// a BYE for a fetch.
    fn end(&mut self, t: Transfer, error: Option<FetchError>, bye: bool) {
        match t.kind {
            Kind::Fetch { object, state, .. } => {
                if bye && !matches!(state, FetchState::Closing(_)) {
                    let msg = SlpMessage::bye(&t.peer, &self.config.local, t.branch, t.call_id);
                    self.send_slp(&t.peer, &msg);
                }
                if let (Some(error), false) = (error, matches!(state, FetchState::Closing(_))) {
                    self.events.push_back(P2pEvent::FetchFailed {
                        id: t.id,
                        peer: t.peer,
                        object,
                        error,
                    });
                }
            }
            Kind::FileIn(_) | Kind::FileOut(_) => self.end_file(t, error, bye),
            Kind::Serve { state, .. } => {
                let complete = matches!(state, ServeState::AwaitBye);
                self.events.push_back(P2pEvent::Served {
                    id: t.id,
                    peer: t.peer,
                    complete,
                });
            }
        }
    }

    /// Advances deadlines: fails stalled fetches (sending BYE), moves senders on
    /// after an unanswered ACK wait, forgets finished transfers and stale partial
    /// MSNSLP messages.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.pending.retain(|p| p.deadline > now);
        let mut i = 0;
        while let Some(t) = self.transfers.get_mut(i) {
            if t.deadline > now {
                i += 1;
                continue;
            }
            if matches!(t.kind, Kind::FileIn(_) | Kind::FileOut(_)) {
                let t = self.transfers.remove(i);
                self.end(t, Some(FetchError::Timeout), true);
                continue;
            }
            let advance = match &mut t.kind {
                Kind::Serve { state, .. } => match state {
                    ServeState::AwaitOkAck(_) => Some(true),
                    ServeState::AwaitPrepAck(_) => {
                        *state = ServeState::Sending;
                        t.deadline = now + self.limits.p2p_progress_timeout;
                        Some(false)
                    }
                    ServeState::Sending => {
                        t.deadline = now + self.limits.p2p_progress_timeout;
                        Some(false)
                    }
                    _ => None,
                },
                Kind::Fetch { .. } | Kind::FileIn(_) | Kind::FileOut(_) => None,
            };
            match advance {
                Some(true) => {
                    self.send_prep(now, i);
                    i += 1;
                }
                Some(false) => i += 1,
                None => {
                    let t = self.transfers.remove(i);
                    self.end(t, Some(FetchError::Timeout), true);
                }
            }
        }
    }

    /// Sends the data-preparation message of serving transfer `index` (§10.4 sender 3).
    fn send_prep(&mut self, now: Instant, index: usize) {
        let identifier = self.identifier();
        let ack_sid = self.ack_sid();
        let wait = self.limits.p2p_ack_wait;
        let Some(t) = self.transfers.get_mut(index) else {
            return;
        };
        let Kind::Serve { state, app_id, .. } = &mut t.kind else {
            return;
        };
        let h = Header {
            session_id: t.session_id,
            identifier,
            total_size: 4,
            length: 4,
            ack_session_id: ack_sid,
            ..Header::default()
        };
        *state = ServeState::AwaitPrepAck(identifier);
        t.deadline = now + wait;
        let body = Packet::encode(&h, &[0; 4], *app_id);
        let peer = t.peer.clone();
        self.out.push_back((peer, body));
    }

    fn next_data_chunk(&mut self) -> Option<(String, Bytes)> {
        let max_chunk = self.config.max_chunk.max(1);
        let idx = self.transfers.iter().position(|t| {
            matches!(
                t.kind,
                Kind::Serve {
                    state: ServeState::Sending,
                    ..
                }
            )
        })?;
        let needs_ids = matches!(
            self.transfers.get(idx),
            Some(Transfer {
                kind: Kind::Serve { ids: None, .. },
                ..
            })
        );
        let fresh = needs_ids.then(|| (self.identifier(), self.ack_sid()));
        let t = self.transfers.get_mut(idx)?;
        let Kind::Serve {
            state,
            app_id,
            data,
            offset,
            ids,
        } = &mut t.kind
        else {
            return None;
        };
        let (identifier, ack_sid) = *ids.get_or_insert(fresh.unwrap_or_default());
        let end = (*offset + max_chunk).min(data.len());
        let piece = data.slice(*offset..end);
        let flags = if matches!(*app_id, app_id::EMOTICON | app_id::DISPLAY_PICTURE) {
            flags::MSNOBJ_DATA | flags::WLM2009
        } else {
            flags::MSNOBJ_DATA
        };
        let h = Header {
            session_id: t.session_id,
            identifier,
            offset: *offset as u64,
            total_size: data.len() as u64,
            length: piece.len() as u32,
            flags,
            ack_session_id: ack_sid,
            ..Header::default()
        };
        *offset = end;
        if end >= data.len() {
            *state = ServeState::AwaitDataAck(identifier);
        }
        Some((t.peer.clone(), Packet::encode(&h, &piece, *app_id)))
    }

    /// Handles one P2P v1 body from `from` (the caller has checked `P2P-Dest` with
    /// [`is_for_us`](Self::is_for_us)). Malformed input is an error and changes nothing
    /// else; transfer outcomes are events.
    pub fn handle_p2p(&mut self, now: Instant, from: &str, body: &Bytes) -> Result<(), P2pError> {
        let packet = Packet::parse(body)?;
        let h = packet.header;
        if h.is_ack() {
            self.handle_ack(now, from, &h);
            return Ok(());
        }
        if h.is_abort() {
            if h.session_id != 0
                && let Some(pos) = self
                    .transfers
                    .iter()
                    .position(|t| t.session_id == h.session_id && same_account(&t.peer, from))
            {
                let t = self.transfers.remove(pos);
                self.end(t, Some(FetchError::Aborted { flags: h.flags }), false);
            }
            return Ok(());
        }
        if h.session_id == 0 {
            return self.handle_slp_chunk(now, from, &packet);
        }
        self.handle_session_chunk(now, from, &packet)
    }

    fn handle_ack(&mut self, now: Instant, from: &str, h: &Header) {
        let acked = h.ack_session_id;
        let Some(idx) = self.transfers.iter().position(|t| {
            same_account(&t.peer, from)
                && match &t.kind {
                    Kind::Fetch {
                        state: FetchState::Closing(id),
                        ..
                    } => *id == acked,
                    Kind::Serve {
                        state:
                            ServeState::AwaitOkAck(id)
                            | ServeState::AwaitPrepAck(id)
                            | ServeState::AwaitDataAck(id),
                        ..
                    } => *id == acked,
                    Kind::FileOut(out) => out.awaits_ack(acked),
                    _ => false,
                }
        }) else {
            return;
        };
        if matches!(
            self.transfers.get(idx).map(|t| &t.kind),
            Some(Kind::FileOut(_))
        ) {
            self.file_acked(now, idx);
            return;
        }
        let progress = self.limits.p2p_progress_timeout;
        let linger = self.limits.p2p_linger;
        let Some(t) = self.transfers.get_mut(idx) else {
            return;
        };
        match &mut t.kind {
            Kind::Fetch { .. } | Kind::FileIn(_) | Kind::FileOut(_) => {
                // ACK of our BYE: the fetch is over.
                self.transfers.remove(idx);
            }
            Kind::Serve { state, .. } => match state {
                ServeState::AwaitOkAck(_) => self.send_prep(now, idx),
                ServeState::AwaitPrepAck(_) => {
                    *state = ServeState::Sending;
                    t.deadline = now + progress;
                }
                _ => {
                    *state = ServeState::AwaitBye;
                    t.deadline = now + linger;
                }
            },
        }
    }

    fn handle_slp_chunk(&mut self, now: Instant, from: &str, p: &Packet) -> Result<(), P2pError> {
        let h = &p.header;
        let complete: Bytes = if h.offset == 0 && u64::from(h.length) == h.total_size {
            if h.total_size > MAX_SLP_LEN as u64 {
                return Err(ReassemblyError::TooLarge {
                    total: h.total_size,
                    max: MAX_SLP_LEN as u64,
                }
                .into());
            }
            p.data.clone()
        } else {
            let pos = self
                .pending
                .iter()
                .position(|q| q.identifier == h.identifier && same_account(&q.peer, from));
            let pos = match pos {
                Some(pos) => pos,
                None => {
                    let data = Reassembly::new(h.total_size, MAX_SLP_LEN as u64)?;
                    if self.pending.len() >= self.limits.max_p2p_sessions.max(1) {
                        self.pending.remove(0);
                    }
                    self.pending.push(PendingSlp {
                        peer: from.to_owned(),
                        identifier: h.identifier,
                        deadline: now + self.limits.p2p_progress_timeout,
                        data,
                    });
                    self.pending.len() - 1
                }
            };
            let Some(q) = self.pending.get_mut(pos) else {
                return Ok(());
            };
            match q.data.add(h, &p.data) {
                Ok(false) => {
                    q.deadline = now + self.limits.p2p_progress_timeout;
                    return Ok(());
                }
                Ok(true) => {
                    let q = self.pending.remove(pos);
                    q.data.finish().unwrap_or_default()
                }
                Err(e) => {
                    self.pending.remove(pos);
                    return Err(e.into());
                }
            }
        };
        // ACK every complete message once (§9.6), even ones we cannot parse.
        self.send_ack(from, h, p.footer);
        let msg = SlpMessage::parse(&complete)?;
        self.handle_slp(now, from, msg);
        Ok(())
    }

    fn find_call(&self, from: &str, call_id: Guid) -> Option<usize> {
        self.transfers
            .iter()
            .position(|t| t.call_id == call_id && same_account(&t.peer, from))
    }

    fn handle_slp(&mut self, now: Instant, from: &str, msg: SlpMessage) {
        match (msg.method(), msg.status()) {
            (Some(m), _) if m.eq_ignore_ascii_case("INVITE") => self.handle_invite(now, from, &msg),
            (Some(m), _) if m.eq_ignore_ascii_case("BYE") => {
                if let Some(pos) = self.find_call(from, msg.call_id) {
                    let t = self.transfers.remove(pos);
                    self.end(t, Some(FetchError::PeerClosed), false);
                }
            }
            (None, Some(code)) => {
                let Some(pos) = self.find_call(from, msg.call_id) else {
                    return;
                };
                if matches!(
                    self.transfers.get(pos).map(|t| &t.kind),
                    Some(Kind::FileOut(_))
                ) {
                    self.file_answered(now, pos, code, &msg);
                    return;
                }
                let Some(t) = self.transfers.get_mut(pos) else {
                    return;
                };
                let Kind::Fetch { state, .. } = &mut t.kind else {
                    return;
                };
                if !matches!(state, FetchState::Inviting) {
                    return;
                }
                if code == 200 {
                    *state = FetchState::Accepted;
                    t.deadline = now + self.limits.p2p_progress_timeout;
                } else {
                    let t = self.transfers.remove(pos);
                    self.end(t, Some(FetchError::Declined { code }), false);
                }
            }
            _ => {}
        }
    }

    fn handle_invite(&mut self, now: Instant, from: &str, msg: &SlpMessage) {
        if msg.content_type.eq_ignore_ascii_case(CT_TRANS_REQ) {
            // A direct connection is proposed (same Call-ID as its session): keep the
            // data on the switchboard (§10.5 step 2).
            let answer = SlpMessage::not_listening(msg);
            self.send_slp(from, &answer);
            return;
        }
        if self.find_call(from, msg.call_id).is_some() {
            return; // a repeat; already ACKed
        }
        if let Some(offer) = msg.file_offer() {
            self.handle_file_offer(now, from, msg, offer);
            return;
        }
        let session_id = msg.session_id().unwrap_or(0);
        let reason = if !msg.content_type.eq_ignore_ascii_case(CT_SESSION_REQ)
            || !msg
                .field("EUF-GUID")
                .is_some_and(|g| g.eq_ignore_ascii_case(EUF_GUID_MSNOBJ))
            || session_id == 0
        {
            Some(DeclineReason::Unsupported)
        } else if self.transfers.len() >= self.limits.max_p2p_sessions {
            Some(DeclineReason::TooManySessions)
        } else {
            None
        };
        let published = match reason {
            Some(_) => None,
            None => msg
                .field("Context")
                .and_then(|c| MsnObject::parse_context(c).ok())
                .and_then(|(obj, _)| {
                    self.published
                        .iter()
                        .find(|p| {
                            p.object.sha1d == obj.sha1d
                                && same_account(&p.object.creator, &obj.creator)
                        })
                        .cloned()
                }),
        };
        let Some(published) = published else {
            let reason = reason.unwrap_or(DeclineReason::UnknownObject);
            let decline = SlpMessage::response(msg, 603, "Decline", session_id);
            self.send_slp(from, &decline);
            self.events.push_back(P2pEvent::Declined {
                peer: from.to_owned(),
                reason,
            });
            return;
        };
        let ok = SlpMessage::response(msg, 200, "OK", session_id);
        let ok_id = self.send_slp(from, &ok);
        let id = self.next_id();
        self.transfers.push(Transfer {
            id,
            peer: from.to_owned(),
            session_id,
            branch: msg.branch,
            call_id: msg.call_id,
            deadline: now + self.limits.p2p_ack_wait,
            kind: Kind::Serve {
                state: ServeState::AwaitOkAck(ok_id),
                app_id: msg.app_id().unwrap_or(app_id::MSNOBJ),
                data: published.data,
                offset: 0,
                ids: None,
            },
        });
    }

    fn handle_session_chunk(
        &mut self,
        now: Instant,
        from: &str,
        p: &Packet,
    ) -> Result<(), P2pError> {
        let h = &p.header;
        let Some(idx) = self
            .transfers
            .iter()
            .position(|t| t.session_id == h.session_id && same_account(&t.peer, from))
        else {
            return Ok(()); // not ours: no allocation for unknown sessions
        };
        if matches!(
            self.transfers.get(idx).map(|t| &t.kind),
            Some(Kind::FileIn(_))
        ) {
            return self.file_chunk(now, from, idx, p);
        }
        let progress = self.limits.p2p_progress_timeout;
        let linger = self.limits.p2p_linger;
        let Some(t) = self.transfers.get_mut(idx) else {
            return Ok(());
        };
        let Kind::Fetch {
            object,
            state,
            data,
        } = &mut t.kind
        else {
            return Ok(()); // we are the sender; the requester sends no session data
        };
        if matches!(state, FetchState::Closing(_)) {
            return Ok(());
        }
        if !h.is_data() {
            // The data-preparation message (§10.4 step 5): ACK it.
            if h.total_size == 4 && h.offset == 0 && h.length == 4 {
                t.deadline = now + progress;
                self.send_ack(from, h, p.footer);
            }
            return Ok(());
        }
        if h.total_size != object.size {
            let got = h.total_size;
            let expected = object.size;
            let t = self.transfers.remove(idx);
            self.end(t, Some(FetchError::SizeMismatch { expected, got }), true);
            return Ok(());
        }
        let buf = match data {
            Some(buf) => buf,
            None => match Reassembly::new(h.total_size, self.limits.max_p2p_total) {
                Ok(r) => data.insert(r),
                Err(e) => {
                    let t = self.transfers.remove(idx);
                    self.end(t, Some(FetchError::BadData(e)), true);
                    return Ok(());
                }
            },
        };
        match buf.add(h, &p.data) {
            Ok(false) => {
                t.deadline = now + progress;
                Ok(())
            }
            Ok(true) => {
                let bytes = data.take().and_then(Reassembly::finish).unwrap_or_default();
                let verified = object.matches_data(&bytes);
                let object = object.clone();
                let (peer, id, branch, call_id) = (t.peer.clone(), t.id, t.branch, t.call_id);
                self.send_ack(from, h, p.footer);
                let bye = SlpMessage::bye(&peer, &self.config.local, branch, call_id);
                let bye_id = self.send_slp(&peer, &bye);
                if let Some(Transfer {
                    kind: Kind::Fetch { state, .. },
                    deadline,
                    ..
                }) = self.transfers.get_mut(idx)
                {
                    *state = FetchState::Closing(bye_id);
                    *deadline = now + linger;
                }
                self.events.push_back(if verified {
                    P2pEvent::Received {
                        id,
                        peer,
                        object,
                        data: bytes,
                    }
                } else {
                    P2pEvent::FetchFailed {
                        id,
                        peer,
                        object,
                        error: FetchError::HashMismatch,
                    }
                });
                Ok(())
            }
            Err(e) => {
                let t = self.transfers.remove(idx);
                self.end(t, Some(FetchError::BadData(e.clone())), true);
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
