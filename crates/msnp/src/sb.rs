//! Switchboard state machine (MSNP.md §6), sans-IO in the quinn style.
//!
//! Owns one SB connection: outgoing (`USR` → `OK` → `CAL` each invitee → `JOI`, §6.1)
//! or incoming (`ANS` → `IRO`… → `ANS OK`, §6.2); the participant set (`JOI`/`IRO`/
//! `BYE`, §6.4); outgoing `MSG`s with ack modes `U`/`N`/`A`/`D` and `ACK`/`NAK`
//! matched by TrID to a [`MessageId`] (§6.3); messages queued until someone joined
//! (§6.1: never send into an empty session); incoming `MSG` typed via `message.rs`
//! with chunk reassembly (§7.8); idle and "last participant left" closing (§6.4).
//!
//! Inputs: [`SbSession::handle_frame`], [`SbSession::handle_timeout`],
//! [`SbSession::handle_connection_lost`] and the send methods. Outputs:
//! [`SbSession::poll_transmit`], [`SbSession::poll_event`],
//! [`SbSession::poll_timeout`]. No sockets, clock or randomness.
//! Frames from `poll_transmit` contain the SB cookie: never log them unredacted.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::auth::Secret;
use super::escape;
use super::frame::Frame;
use super::limits::Limits;
use super::message::{
    ChunkAssembler, EmoticonDecl, MessageError, MsgPayload, TextFormat, classify, encode_emoticons,
    encode_nudge, encode_text_split, encode_typing, parse_msg,
};
use super::verb::Verb;

/// Acknowledgement mode of an outgoing `MSG` (§6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckMode {
    /// `U`: no reply (typing, control).
    Unacknowledged,
    /// `N`: `NAK` only on failure.
    NegativeOnly,
    /// `A`: `ACK` or `NAK` (text).
    Acknowledged,
    /// `D`: like `A`, required for P2P by Escargot.
    Data,
}

impl AckMode {
    /// The wire letter.
    pub fn code(self) -> &'static str {
        match self {
            AckMode::Unacknowledged => "U",
            AckMode::NegativeOnly => "N",
            AckMode::Acknowledged => "A",
            AckMode::Data => "D",
        }
    }
}

/// Local id of a message given to [`SbSession::send`], reported in
/// `Delivered`/`Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// Switchboard configuration.
#[derive(Debug, Clone)]
pub struct SbConfig {
    /// Our account e-mail.
    pub account: String,
    /// The NS protocol version (caps in `JOI`/`IRO` from 12).
    pub version: u8,
    /// Size limits (send limit 1664, chunk reassembly, participants).
    pub limits: Limits,
    /// Reply timeout for `USR`/`ANS`/`CAL` (R2M sometimes never answers, §2.8).
    pub request_timeout: Duration,
    /// How long to wait for the first `JOI` after `USR OK` (§6.1: 30–60 s).
    pub join_timeout: Duration,
    /// How long to wait for `ACK`/`NAK` of `A`/`D` messages (§6.3: ~30 s). For `N`
    /// messages the absence of a `NAK` within this time counts as delivered.
    pub ack_timeout: Duration,
    /// Close after this long without messages in either direction (§6.4, 5–10 min).
    pub idle_timeout: Option<Duration>,
    /// MSNP16+: this endpoint's machine GUID; `USR`/`ANS` then name us
    /// `account;{guid}` (§15.3.3).
    pub endpoint: Option<String>,
}

impl SbConfig {
    /// Defaults from MSNP.md §6 and §11.4.
    pub fn new(account: impl Into<String>, version: u8) -> SbConfig {
        SbConfig {
            account: account.into(),
            version,
            limits: Limits::default(),
            request_timeout: Duration::from_secs(30),
            join_timeout: Duration::from_secs(60),
            ack_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(300)),
            endpoint: None,
        }
    }
}

/// Someone in the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// E-mail.
    pub email: String,
    /// Friendly name (decoded).
    pub friendly_name: String,
    /// Capabilities, when the server sends them (MSNP12+).
    pub caps: Option<u32>,
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// `NAK`.
    Nak,
    /// No `ACK` in time.
    Timeout,
    /// A numeric error for the `MSG` (e.g. 282).
    Error(u16),
    /// The switchboard closed after the message was sent, before it was acknowledged: it
    /// may have arrived.
    Closed,
    /// The switchboard closed before the message was sent (it was still waiting for the
    /// session to be ready): sending it on another switchboard cannot duplicate it.
    NotSent,
}

/// Why the switchboard ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SbCloseReason {
    /// `USR`/`ANS` refused (911: wrong or expired cookie).
    AuthFailed {
        /// Error code.
        code: u16,
    },
    /// `USR`/`ANS` unanswered.
    Timeout,
    /// Nobody joined (all `CAL`s failed or the join timeout passed).
    NobodyJoined,
    /// The last other participant left (§6.4).
    AllLeft,
    /// No traffic for the idle timeout.
    Idle,
    /// `OUT` from the server.
    ServerClosed,
    /// EOF/reset reported by the shell.
    ConnectionLost,
    /// [`SbSession::close_session`] was called.
    LocalClose,
}

/// Something the bridge should know about.
#[derive(Debug, Clone, PartialEq)]
pub enum SbEvent {
    /// Messages can flow (first `JOI` for outgoing, `ANS OK` for incoming).
    Ready {
        /// Session id from `CAL … RINGING` or the invitation.
        session_id: Option<String>,
    },
    /// A participant is present (`initial` for the `IRO` roster).
    Joined {
        /// Who.
        participant: Participant,
        /// From `IRO`.
        initial: bool,
    },
    /// `BYE email [1]` (`idle` = removed by the server for idleness).
    Left {
        /// Who.
        contact: String,
        /// Server-side idle removal.
        idle: bool,
    },
    /// An incoming message, typed (§7); chunked messages arrive reassembled.
    Message {
        /// Sender e-mail.
        from: String,
        /// Sender friendly name (decoded).
        friendly_name: String,
        /// The payload.
        payload: MsgPayload,
    },
    /// An incoming `MSG` that could not be parsed (never fatal, §7).
    BadMessage {
        /// Sender.
        from: String,
        /// Why.
        error: MessageError,
    },
    /// `ACK` for an `A`/`D` message (or no `NAK` in time for `N`).
    Delivered {
        /// The message.
        id: MessageId,
    },
    /// `NAK`, error, timeout or close.
    Failed {
        /// The message.
        id: MessageId,
        /// Why.
        reason: SendFailure,
    },
    /// A `CAL` failed (217 offline, 216 blocked, 215 already there, …) or timed out.
    CallFailed {
        /// Invitee.
        contact: String,
        /// Error code, `None` on timeout.
        code: Option<u16>,
    },
    /// A numeric error not tied to a tracked command.
    ServerError {
        /// TrID.
        trid: Option<u32>,
        /// Code.
        code: u16,
    },
    /// The session is over; the shell closes the socket.
    Closed(SbCloseReason),
}

/// Why a send was refused locally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The payload exceeds [`Limits::max_sb_send_payload`] (Escargot closes the SB).
    #[error("MSG payload of {len} bytes exceeds the {max}-byte switchboard limit")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The switchboard is closed.
    #[error("switchboard is closed")]
    Closed,
    /// Building the payload failed.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// An invitee address is empty or contains whitespace.
    #[error("invalid address {0:?}")]
    BadAddress(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Auth,
    Calling,
    Roster,
    Ready,
    Closed,
}

#[derive(Debug)]
enum Cmd {
    Auth,
    Call(String),
}

#[derive(Debug)]
struct InFlight {
    id: MessageId,
    mode: AckMode,
    deadline: Instant,
}

/// One switchboard connection (§6). `Debug` omits queued frames (they hold the cookie).
pub struct SbSession {
    config: SbConfig,
    phase: Phase,
    session_id: Option<String>,
    next_trid: u32,
    next_msg: u64,
    transmit: VecDeque<Frame>,
    events: VecDeque<SbEvent>,
    commands: BTreeMap<u32, (Cmd, Instant)>,
    in_flight: BTreeMap<u32, InFlight>,
    queue: VecDeque<(MessageId, Bytes, AckMode)>,
    invitees: Vec<String>,
    /// Called contacts (lowercase) that have neither joined nor failed yet: messages wait
    /// for every one of them, so that none of a group misses the first ones.
    awaiting: Vec<String>,
    participants: Vec<Participant>,
    assembler: ChunkAssembler,
    join_deadline: Option<Instant>,
    last_activity: Instant,
    /// Another endpoint of our own account is in the session (MSNP16+): it may have
    /// started it, and the contact is still to come (§15.3.3).
    own_endpoint_in: bool,
}

impl std::fmt::Debug for SbSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SbSession")
            .field("phase", &self.phase)
            .field("session_id", &self.session_id)
            .field("participants", &self.participants)
            .field("in_flight", &self.in_flight.len())
            .field("queued_messages", &self.queue.len())
            .field("queued_frames", &self.transmit.len())
            .finish_non_exhaustive()
    }
}

impl SbSession {
    fn base(config: SbConfig, now: Instant) -> SbSession {
        SbSession {
            assembler: ChunkAssembler::new(&config.limits),
            config,
            phase: Phase::Auth,
            session_id: None,
            next_trid: 1,
            next_msg: 1,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            commands: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            queue: VecDeque::new(),
            invitees: Vec::new(),
            awaiting: Vec::new(),
            participants: Vec::new(),
            join_deadline: None,
            last_activity: now,
            own_endpoint_in: false,
        }
    }

    /// An outgoing session after `XFR SB` (§6.1): queues `USR trid account cookie`;
    /// after `OK`, every invitee gets a `CAL`.
    pub fn outgoing(
        config: SbConfig,
        now: Instant,
        auth: &Secret,
        invitees: &[&str],
    ) -> Result<SbSession, SendError> {
        check_arg(auth.expose())?;
        for i in invitees {
            check_arg(i)?;
        }
        let mut s = SbSession::base(config, now);
        s.invitees = invitees.iter().map(|i| (*i).to_owned()).collect();
        let account = s.signed_as();
        s.command(
            now,
            Verb::USR,
            vec![account, auth.expose().to_owned()],
            Cmd::Auth,
        );
        Ok(s)
    }

    /// An incoming session after `RNG` (§6.2): queues
    /// `ANS trid account cookie session_id`.
    pub fn incoming(
        config: SbConfig,
        now: Instant,
        auth: &Secret,
        session_id: &str,
    ) -> Result<SbSession, SendError> {
        check_arg(auth.expose())?;
        check_arg(session_id)?;
        let mut s = SbSession::base(config, now);
        s.session_id = Some(session_id.to_owned());
        let account = s.signed_as();
        s.command(
            now,
            Verb::ANS,
            vec![account, auth.expose().to_owned(), session_id.to_owned()],
            Cmd::Auth,
        );
        Ok(s)
    }

    /// Participants other than us.
    pub fn participants(&self) -> &[Participant] {
        &self.participants
    }

    /// Whether messages are being sent right away (not queued).
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Next frame to write.
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        self.transmit.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<SbEvent> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`SbSession::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        let idle = match (self.phase == Phase::Ready, self.config.idle_timeout) {
            (true, Some(d)) => Some(self.last_activity + d),
            _ => None,
        };
        let join = self.join_deadline.filter(|_| self.phase == Phase::Calling);
        [
            self.commands.values().map(|(_, d)| *d).min(),
            self.in_flight.values().map(|m| m.deadline).min(),
            join,
            idle,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn alloc_trid(&mut self) -> u32 {
        let t = self.next_trid;
        self.next_trid = if t >= 0x7FFF_FFFF { 1 } else { t + 1 };
        t
    }

    fn command(&mut self, now: Instant, verb: Verb, args: Vec<String>, cmd: Cmd) {
        let trid = self.alloc_trid();
        self.transmit.push_back(Frame::command(verb, trid, args));
        self.commands
            .insert(trid, (cmd, now + self.config.request_timeout));
    }

    fn close(&mut self, reason: SbCloseReason, send_out: bool) {
        if self.phase == Phase::Closed {
            return;
        }
        if send_out {
            self.transmit
                .push_back(Frame::untracked(Verb::OUT, Vec::<String>::new()));
        }
        self.phase = Phase::Closed;
        self.commands.clear();
        let mut failed: Vec<(MessageId, SendFailure)> = self
            .in_flight
            .values()
            .map(|m| (m.id, SendFailure::Closed))
            .collect();
        failed.extend(
            self.queue
                .iter()
                .map(|(id, _, _)| (*id, SendFailure::NotSent)),
        );
        self.in_flight.clear();
        self.queue.clear();
        failed.sort_by_key(|(id, _)| *id);
        for (id, reason) in failed {
            self.events.push_back(SbEvent::Failed { id, reason });
        }
        self.events.push_back(SbEvent::Closed(reason));
    }

    fn become_ready(&mut self, now: Instant) {
        self.phase = Phase::Ready;
        self.last_activity = now;
        self.events.push_back(SbEvent::Ready {
            session_id: self.session_id.clone(),
        });
        while let Some((id, payload, mode)) = self.queue.pop_front() {
            self.transmit_msg(now, id, payload, mode);
        }
    }

    fn transmit_msg(&mut self, now: Instant, id: MessageId, payload: Bytes, mode: AckMode) {
        let trid = self.alloc_trid();
        self.transmit
            .push_back(Frame::command(Verb::MSG, trid, [mode.code()]).with_payload(payload));
        if mode != AckMode::Unacknowledged {
            self.in_flight.insert(
                trid,
                InFlight {
                    id,
                    mode,
                    deadline: now + self.config.ack_timeout,
                },
            );
        }
        self.last_activity = now;
    }

    /// How `USR`/`ANS` name us: the account, with the endpoint from MSNP16.
    fn signed_as(&self) -> String {
        match (&self.config.endpoint, self.config.version >= 16) {
            (Some(guid), true) => format!("{};{guid}", self.config.account),
            _ => self.config.account.clone(),
        }
    }

    /// Notes an `IRO`/`JOI` of another endpoint of our own account (`account;{guid}`
    /// with a GUID not ours, MSNP16+): the user's own Messenger is in the session.
    fn note_own_endpoint(&mut self, who: Option<&str>) {
        let Some((account, guid)) = who.and_then(|w| w.split_once(';')) else {
            return;
        };
        let ours = self.config.endpoint.as_deref().unwrap_or_default();
        if account.eq_ignore_ascii_case(&self.config.account) && !guid.eq_ignore_ascii_case(ours) {
            self.own_endpoint_in = true;
        }
    }

    fn add_participant(&mut self, p: Participant, initial: bool) {
        if p.email.eq_ignore_ascii_case(&self.config.account) {
            // Escargot lists the answering user in IRO (§2.8), and on MSNP16+ our own
            // other endpoints (§15.3.3): never a contact.
            return;
        }
        self.participants
            .retain(|x| !x.email.eq_ignore_ascii_case(&p.email));
        if self.participants.len() >= self.config.limits.max_sb_participants {
            return;
        }
        self.participants.push(p.clone());
        self.events.push_back(SbEvent::Joined {
            participant: p,
            initial,
        });
    }

    fn calls_pending(&self) -> bool {
        self.commands
            .values()
            .any(|(c, _)| matches!(c, Cmd::Call(_)))
    }

    fn check_nobody(&mut self) {
        // Rung by the user's own Messenger, we wait for its contact until the join
        // deadline, not for calls of our own.
        if self.phase == Phase::Calling && self.own_endpoint_in && self.invitees.is_empty() {
            return;
        }
        if self.phase == Phase::Calling
            && self.participants.is_empty()
            && !self.calls_pending()
            && self.awaiting.is_empty()
        {
            self.close(SbCloseReason::NobodyJoined, true);
        }
    }

    /// A called contact joined or failed: once none is awaited and someone is in, the
    /// queued messages go (to everyone who came).
    fn settle_call(&mut self, now: Instant, contact: &str) {
        self.awaiting.retain(|c| !c.eq_ignore_ascii_case(contact));
        if self.phase == Phase::Calling && !self.participants.is_empty() && self.awaiting.is_empty()
        {
            self.become_ready(now);
        }
    }

    // ----- inputs --------------------------------------------------------------------

    /// The socket closed without `OUT`.
    pub fn handle_connection_lost(&mut self, _now: Instant) {
        self.close(SbCloseReason::ConnectionLost, false);
    }

    /// Timers: command replies, join wait, message acks, idle close.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        let expired: Vec<u32> = self
            .commands
            .iter()
            .filter(|(_, (_, d))| *d <= now)
            .map(|(t, _)| *t)
            .collect();
        for trid in expired {
            match self.commands.remove(&trid) {
                Some((Cmd::Auth, _)) => {
                    self.close(SbCloseReason::Timeout, true);
                    return;
                }
                Some((Cmd::Call(contact), _)) => {
                    self.settle_call(now, &contact);
                    self.events.push_back(SbEvent::CallFailed {
                        contact,
                        code: None,
                    });
                }
                None => {}
            }
        }
        self.check_nobody();
        if self.phase == Phase::Calling && self.join_deadline.is_some_and(|d| d <= now) {
            if self.participants.is_empty() {
                self.close(SbCloseReason::NobodyJoined, true);
                return;
            }
            // Some came, the others are not coming: go with those who are in.
            self.awaiting.clear();
            self.become_ready(now);
        }
        let expired: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, m)| m.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for trid in expired {
            if let Some(m) = self.in_flight.remove(&trid) {
                self.events.push_back(if m.mode == AckMode::NegativeOnly {
                    SbEvent::Delivered { id: m.id }
                } else {
                    SbEvent::Failed {
                        id: m.id,
                        reason: SendFailure::Timeout,
                    }
                });
            }
        }
        if self.phase == Phase::Ready
            && let Some(idle) = self.config.idle_timeout
            && now >= self.last_activity + idle
        {
            self.close(SbCloseReason::Idle, true);
        }
    }

    /// One frame parsed from the SB socket (`Direction::ServerToClient`).
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) {
        if self.phase == Phase::Closed {
            return;
        }
        if let Verb::Error(code) = frame.verb {
            self.on_error(now, code, frame.trid);
            return;
        }
        match frame.verb.as_str() {
            "USR" if frame.arg(0) == Some("OK") && self.phase == Phase::Auth => {
                if let Some(t) = frame.trid {
                    self.commands.remove(&t);
                }
                self.phase = Phase::Calling;
                self.join_deadline = Some(now + self.config.join_timeout);
                self.awaiting = self.invitees.iter().map(|i| i.to_lowercase()).collect();
                for contact in std::mem::take(&mut self.invitees) {
                    self.command(now, Verb::CAL, vec![contact.clone()], Cmd::Call(contact));
                }
                self.check_nobody();
            }
            "CAL" => {
                if let Some(t) = frame.trid {
                    self.commands.remove(&t);
                }
                if frame.arg(0) == Some("RINGING")
                    && let Some(sid) = frame.arg(1)
                {
                    self.session_id = Some(sid.to_owned());
                }
            }
            "JOI" => {
                self.note_own_endpoint(frame.arg(0));
                if let Some(p) = parse_participant(frame.args.iter()) {
                    let email = p.email.clone();
                    self.add_participant(p, false);
                    self.settle_call(now, &email);
                }
            }
            "IRO" if self.phase == Phase::Auth || self.phase == Phase::Roster => {
                // `IRO trid index total email friendly [caps]`.
                self.phase = Phase::Roster;
                self.note_own_endpoint(frame.arg(2));
                if let Some(p) = parse_participant(frame.args.iter().skip(2)) {
                    self.add_participant(p, true);
                }
            }
            "ANS" if frame.arg(0) == Some("OK") => {
                if let Some(t) = frame.trid {
                    self.commands.remove(&t);
                }
                if !self.participants.is_empty() {
                    self.become_ready(now);
                } else if self.own_endpoint_in && self.config.version >= 16 {
                    // The user's own Messenger rang us (WLM calls its own address first
                    // when it opens a chat, §15.3.3): the contact it calls next joins.
                    self.phase = Phase::Calling;
                    self.join_deadline = Some(now + self.config.join_timeout);
                } else {
                    self.close(SbCloseReason::AllLeft, true);
                }
            }
            "ACK" | "NAK" => {
                if let Some(m) = frame.trid.and_then(|t| self.in_flight.remove(&t)) {
                    self.events.push_back(if frame.verb == Verb::ACK {
                        SbEvent::Delivered { id: m.id }
                    } else {
                        SbEvent::Failed {
                            id: m.id,
                            reason: SendFailure::Nak,
                        }
                    });
                }
            }
            "MSG" => {
                self.last_activity = now;
                self.on_msg(&frame);
            }
            "BYE" => {
                let Some(who) = frame.arg(0) else {
                    return;
                };
                // MSNP16+ `email;{epid}` per endpoint: only the bare form means gone.
                if who.contains(';') {
                    return;
                }
                let before = self.participants.len();
                self.participants
                    .retain(|p| !p.email.eq_ignore_ascii_case(who));
                if self.participants.len() == before {
                    return;
                }
                self.events.push_back(SbEvent::Left {
                    contact: who.to_owned(),
                    idle: frame.arg(1) == Some("1"),
                });
                if self.participants.is_empty() && self.phase == Phase::Ready {
                    self.close(SbCloseReason::AllLeft, true);
                }
            }
            "OUT" => self.close(SbCloseReason::ServerClosed, false),
            _ => {}
        }
    }

    fn on_error(&mut self, now: Instant, code: u16, trid: Option<u32>) {
        let Some(t) = trid else {
            self.events
                .push_back(SbEvent::ServerError { trid: None, code });
            return;
        };
        if let Some(m) = self.in_flight.remove(&t) {
            self.events.push_back(SbEvent::Failed {
                id: m.id,
                reason: SendFailure::Error(code),
            });
            return;
        }
        match self.commands.remove(&t) {
            Some((Cmd::Auth, _)) => self.close(SbCloseReason::AuthFailed { code }, false),
            Some((Cmd::Call(contact), _)) => {
                self.settle_call(now, &contact);
                self.events.push_back(SbEvent::CallFailed {
                    contact,
                    code: Some(code),
                });
                self.check_nobody();
            }
            None => self.events.push_back(SbEvent::ServerError { trid, code }),
        }
    }

    fn on_msg(&mut self, frame: &Frame) {
        let from = frame.arg(0).unwrap_or_default().to_owned();
        let friendly_name = frame.arg(1).map(escape::decode_lossy).unwrap_or_default();
        let Some(p) = &frame.payload else {
            return;
        };
        let parsed = match parse_msg(p, &self.config.limits) {
            Ok(MsgPayload::Chunk(part)) => match self.assembler.push(part) {
                Ok(Some(mime)) => classify(&mime, &self.config.limits).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            },
            other => other.map(Some),
        };
        match parsed {
            Ok(Some(payload)) => self.events.push_back(SbEvent::Message {
                from,
                friendly_name,
                payload,
            }),
            Ok(None) => {}
            Err(error) => self.events.push_back(SbEvent::BadMessage { from, error }),
        }
    }

    // ----- commands ------------------------------------------------------------------

    /// Sends a raw `MSG` payload with `mode`; queued until the session is ready.
    pub fn send(
        &mut self,
        now: Instant,
        payload: Bytes,
        mode: AckMode,
    ) -> Result<MessageId, SendError> {
        if self.phase == Phase::Closed {
            return Err(SendError::Closed);
        }
        let max = self.config.limits.max_sb_send_payload;
        if payload.len() > max {
            return Err(SendError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        let id = MessageId(self.next_msg);
        self.next_msg += 1;
        if self.phase == Phase::Ready {
            self.transmit_msg(now, id, payload, mode);
        } else {
            self.queue.push_back((id, payload, mode));
        }
        Ok(id)
    }

    /// Sends text with ack mode `A`, split into independent messages under the send
    /// limit (§7.8). One id per part.
    pub fn send_text(
        &mut self,
        now: Instant,
        text: &str,
        format: &TextFormat,
    ) -> Result<Vec<MessageId>, SendError> {
        if self.phase == Phase::Closed {
            return Err(SendError::Closed);
        }
        let parts = encode_text_split(text, format, self.config.limits.max_sb_send_payload)?;
        parts
            .into_iter()
            .map(|p| self.send(now, p, AckMode::Acknowledged))
            .collect()
    }

    /// Sends a typing notification (`U`, §7.2). Dropped (not queued) while not ready.
    pub fn send_typing(&mut self, now: Instant) -> Result<(), SendError> {
        let payload = encode_typing(&self.config.account)?;
        if self.phase == Phase::Ready {
            self.send(now, payload, AckMode::Unacknowledged)?;
        }
        Ok(())
    }

    /// Declares custom emoticons for the next text (`text/x-mms-emoticon`, §7.5) with
    /// ack mode `N`, as official clients send it just before the text.
    pub fn send_emoticons(
        &mut self,
        now: Instant,
        items: &[EmoticonDecl],
    ) -> Result<MessageId, SendError> {
        let payload = encode_emoticons(items, false)?;
        self.send(now, payload, AckMode::NegativeOnly)
    }

    /// Sends a nudge (datacast `ID: 1`, §7.3) with ack mode `N`.
    pub fn send_nudge(&mut self, now: Instant) -> Result<MessageId, SendError> {
        self.send(now, encode_nudge(), AckMode::NegativeOnly)
    }

    /// Invites another contact (`CAL`, §6.4 multi-party). Before `USR OK` it is
    /// remembered and called after authentication.
    pub fn invite(&mut self, now: Instant, contact: &str) -> Result<(), SendError> {
        check_arg(contact)?;
        match self.phase {
            Phase::Closed => Err(SendError::Closed),
            Phase::Auth => {
                self.invitees.push(contact.to_owned());
                Ok(())
            }
            _ => {
                self.command(
                    now,
                    Verb::CAL,
                    vec![contact.to_owned()],
                    Cmd::Call(contact.to_owned()),
                );
                Ok(())
            }
        }
    }

    /// Leaves: queues `OUT` and ends the session (§6.4).
    pub fn close_session(&mut self, _now: Instant) {
        self.close(SbCloseReason::LocalClose, true);
    }
}

fn check_arg(a: &str) -> Result<(), SendError> {
    if a.is_empty() || a.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(SendError::BadAddress(a.to_owned()));
    }
    Ok(())
}

/// Drops an MSNP16+ `;{epid}` suffix.
fn strip_endpoint(id: &str) -> &str {
    id.split(';').next().unwrap_or(id)
}

/// `email friendly [caps[:capsex]]` (JOI, and IRO after index/total).
fn parse_participant<'a>(mut args: impl Iterator<Item = &'a str>) -> Option<Participant> {
    let email = args.next()?;
    Some(Participant {
        email: strip_endpoint(email).to_owned(),
        friendly_name: args.next().map(escape::decode_lossy).unwrap_or_default(),
        caps: args
            .next()
            .and_then(|c| c.split(':').next())
            .and_then(|c| c.parse().ok()),
    })
}

#[cfg(test)]
mod tests;
