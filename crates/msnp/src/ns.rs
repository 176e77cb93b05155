//! Notification-server state machine for MSNP8–18 (MSNP.md §2, §4, §5, §11), sans-IO in
//! the quinn style; what differs between versions is asked of [`Dialect`].
//!
//! Owns: the login sequence `VER → CVR → USR TWN|SSO I → (XFR NS) → USR TWN|SSO S →
//! USR OK` (TWN up to MSNP14, SSO with the MBI response from MSNP15, §2.4, §2.5), the
//! lists: the post-login `SYN` burst up to MSNP12 (complete by the announced counts,
//! §4.2/§4.3), from MSNP13 the address book the shell reads (`NeedAddressBook`), then
//! `BLP` and the initial `ADL` (§4.5); the first `CHG` (servers refuse `XFR SB` before
//! it, §2.8), presence/PSM/list notifications,
//! `CHL` answers (§3), the `PNG`/`QNG` keepalive (§11.1), request timeouts, and
//! version-gated commands from the bridge. TrIDs are allocated here, monotonically.
//!
//! Inputs: [`NsSession::handle_frame`], [`NsSession::handle_ticket`],
//! [`NsSession::handle_sso_ticket`], [`NsSession::handle_address_book`],
//! [`NsSession::handle_timeout`], [`NsSession::handle_connection_lost`] and the command
//! methods. Outputs: [`NsSession::poll_transmit`], [`NsSession::poll_event`],
//! [`NsSession::poll_timeout`]. Time is passed in; no sockets, clock or randomness.
//! The HTTPS ticket work (§2.4.2) is the shell's job, with `auth.rs`.
//! Frames from `poll_transmit` may contain the TWN ticket: never log them unredacted.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::args::Args;
use super::auth::Secret;
use super::challenge::{self, Product};
use super::escape;
use super::frame::Frame;
use super::limits::Limits;
use super::message::{Headers, MsgPayload, parse_msg};
use super::ml;
use super::verb::Verb;

mod circles;
mod dialect;
mod types;

pub use dialect::{Dialect, NetworkField, SUPPORTED_VERSIONS};
pub use types::{
    ClientInfo, CloseReason, CommandError, Contact, ContactList, Group, List, ListChange,
    LoginError, NsConfig, NsEvent, Presence, SbRequestId, Status,
};

/// Default keepalive interval when the server sends `QNG` without seconds (MSNP8) or
/// before the first `QNG` (§11.1).
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(50);
/// Largest TrID used before wrapping to 1 (§1.2).
const MAX_TRID: u32 = 0x7FFF_FFFF;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Ver,
    Cvr,
    UsrI,
    Ticket,
    UsrS,
    Sync(SyncState),
    /// MSNP13+: logged in, waiting for the shell's address book (§4.5).
    AddressBook,
    Online,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct SyncState {
    /// `None` until the `SYN` reply arrives.
    contacts: Option<usize>,
    groups: usize,
    seen_contacts: usize,
    seen_groups: usize,
}

#[derive(Debug, Clone)]
enum PendingKind {
    Login,
    Sync,
    Status(Status),
    FriendlyName(String),
    Plain,
    AddContact {
        list: List,
        email: String,
        friendly: String,
        group: Option<String>,
    },
    AddToGroup {
        email: String,
        group: String,
    },
    RemoveContact {
        email: String,
        group: Option<String>,
    },
    AddGroup(String),
    RenameGroup {
        id: String,
        name: String,
    },
    RemoveGroup(String),
    Switchboard,
    /// MSNP13+ `ADL`/`RML` of one contact (§4.5).
    Lists {
        email: String,
        lists: Vec<List>,
        add: bool,
        guid: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Pending {
    verb: Verb,
    kind: PendingKind,
    deadline: Instant,
}

/// One notification-server connection (MSNP.md §2–§5, §11). Create it right after the
/// TCP connection is up; it queues `VER` immediately. `Debug` omits queued frames
/// (they may hold the ticket).
pub struct NsSession {
    config: NsConfig,
    limits: Limits,
    phase: Phase,
    version: u8,
    next_trid: u32,
    transmit: VecDeque<Frame>,
    events: VecDeque<NsEvent>,
    pending: BTreeMap<u32, Pending>,
    list: ContactList,
    status: Status,
    last_contact: Option<String>,
    ping_interval: Duration,
    next_ping: Option<Instant>,
    ping_sent: Option<Instant>,
    last_rx: Option<Instant>,
    /// The `USR … SSO S` nonce, until the ticket comes (§2.5.1).
    sso_nonce: Option<String>,
    /// MSNP16+: the bridge has set a status since login (a Matrix-side change), so the
    /// account's status as the user's other endpoint has it is no longer adopted.
    status_chosen: bool,
    /// MSNP16+: the status of the user's other endpoint, seen in our own `UBX` before
    /// the first `CHG` could use it (§15.3.2).
    endpoint_status: Option<Status>,
    /// MSNP18: the `Segment` of the next `SDG` into a circle (§15.4).
    circle_segment: u32,
}

impl std::fmt::Debug for NsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NsSession")
            .field("login", &self.config.login)
            .field("phase", &self.phase)
            .field("version", &self.version)
            .field("pending", &self.pending.len())
            .field("queued_frames", &self.transmit.len())
            .field("queued_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl NsSession {
    /// Starts a session and queues `VER` (§2.2).
    pub fn new(config: NsConfig, now: Instant) -> NsSession {
        let mut s = NsSession {
            status: config.initial_status,
            config,
            limits: Limits::default(),
            phase: Phase::Ver,
            version: 0,
            next_trid: 1,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            pending: BTreeMap::new(),
            list: ContactList::default(),
            last_contact: None,
            ping_interval: DEFAULT_PING_INTERVAL,
            next_ping: None,
            ping_sent: None,
            last_rx: None,
            sso_nonce: None,
            status_chosen: false,
            endpoint_status: None,
            circle_segment: 1,
        };
        let mut args: Vec<String> = s
            .config
            .versions
            .iter()
            .map(|v| format!("MSNP{v}"))
            .collect();
        args.push("CVR0".to_owned());
        s.send(now, Verb::VER, args, PendingKind::Login);
        s
    }

    /// Replaces the default [`Limits`] (used for `MSG` parsing).
    pub fn with_limits(mut self, limits: Limits) -> NsSession {
        self.limits = limits;
        self
    }

    /// The negotiated protocol version, 0 before `VER` completes.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The features of the negotiated version.
    pub fn dialect(&self) -> Dialect {
        Dialect(self.version)
    }

    /// The contact list as currently known (complete once `LoggedIn` was emitted).
    pub fn contact_list(&self) -> &ContactList {
        &self.list
    }

    /// Whether login and the first `CHG` are done (commands are accepted).
    pub fn is_online(&self) -> bool {
        self.phase == Phase::Online
    }

    /// Whether the session has ended (a `Closed` event was emitted).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Next frame to write (one complete command per write, §1.3).
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        self.transmit.pop_front()
    }

    /// Next event for the bridge.
    pub fn poll_event(&mut self) -> Option<NsEvent> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`NsSession::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        let ping = match self.ping_sent {
            Some(sent) => Some(sent + self.config.ping_timeout),
            None => self.next_ping,
        };
        let pending = self.pending.values().map(|p| p.deadline).min();
        [ping, pending].into_iter().flatten().min()
    }

    // ----- helpers -------------------------------------------------------------------

    fn alloc_trid(&mut self) -> u32 {
        let t = self.next_trid;
        self.next_trid = if t >= MAX_TRID { 1 } else { t + 1 };
        t
    }

    fn send(&mut self, now: Instant, verb: Verb, args: Vec<String>, kind: PendingKind) -> u32 {
        let trid = self.alloc_trid();
        self.transmit.push_back(Frame::command(verb, trid, args));
        self.track(now, verb, trid, kind);
        trid
    }

    fn send_payload(
        &mut self,
        now: Instant,
        verb: Verb,
        args: Vec<String>,
        payload: Vec<u8>,
        kind: PendingKind,
    ) -> u32 {
        let trid = self.alloc_trid();
        self.transmit
            .push_back(Frame::command(verb, trid, args).with_payload(Bytes::from(payload)));
        self.track(now, verb, trid, kind);
        trid
    }

    fn track(&mut self, now: Instant, verb: Verb, trid: u32, kind: PendingKind) {
        let deadline = now + self.config.request_timeout;
        self.pending.insert(
            trid,
            Pending {
                verb,
                kind,
                deadline,
            },
        );
    }

    fn take_pending(&mut self, frame: &Frame) -> Option<Pending> {
        let trid = frame.trid.filter(|&t| t != 0)?;
        let p = self.pending.get(&trid)?;
        if p.verb == frame.verb || frame.verb.is_error() {
            self.pending.remove(&trid)
        } else {
            None
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.pending.clear();
        self.next_ping = None;
        self.ping_sent = None;
        self.events.push_back(NsEvent::Closed(reason));
    }

    fn fail_login(&mut self, err: LoginError) {
        self.close(CloseReason::LoginFailed(err));
    }

    fn product(&self) -> Product {
        self.config
            .product
            .unwrap_or_else(|| challenge::recommended_product(self.version))
    }

    fn require_online(&self) -> Result<(), CommandError> {
        if self.phase == Phase::Online {
            Ok(())
        } else {
            Err(CommandError::NotOnline)
        }
    }

    /// The `ADC`/`REM`/`ADG` family exists up to MSNP12; from MSNP13 the address book
    /// (SOAP) replaces it (§4.5).
    fn require_list_commands(&self) -> Result<(), CommandError> {
        self.require_version("ADC", 8, 12)
    }

    fn require_version(&self, command: &'static str, min: u8, max: u8) -> Result<(), CommandError> {
        if (min..=max).contains(&self.version) {
            Ok(())
        } else {
            Err(CommandError::Unsupported {
                command,
                version: self.version,
            })
        }
    }

    // ----- inputs --------------------------------------------------------------------

    /// The shell obtained the TWN ticket for the last `NeedTicket` (§2.4.2); queues
    /// `USR trid TWN S <ticket>` with the ticket verbatim.
    pub fn handle_ticket(&mut self, now: Instant, ticket: &Secret) -> Result<(), CommandError> {
        if self.phase != Phase::Ticket {
            return Err(CommandError::NotOnline);
        }
        let t = ticket.expose();
        if t.is_empty() || t.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(CommandError::InvalidArgument { what: "ticket" });
        }
        self.phase = Phase::UsrS;
        self.send(
            now,
            Verb::USR,
            vec!["TWN".into(), "S".into(), t.to_owned()],
            PendingKind::Login,
        );
        Ok(())
    }

    /// The shell obtained the single sign-on tokens for the last `NeedSsoTicket`
    /// (§2.5.2): queues `USR trid SSO S <ticket> <MBI blob> [{machine-guid}]`, the blob
    /// computed here from the binary secret, the server's nonce and `iv` (8 random bytes
    /// the shell draws, §2.5.3); the GUID from MSNP16 on.
    pub fn handle_sso_ticket(
        &mut self,
        now: Instant,
        ticket: &Secret,
        binary_secret: &Secret,
        iv: [u8; 8],
    ) -> Result<(), CommandError> {
        if self.phase != Phase::Ticket {
            return Err(CommandError::NotOnline);
        }
        let Some(nonce) = self.sso_nonce.clone() else {
            return Err(CommandError::NotOnline);
        };
        let t = ticket.expose();
        if t.is_empty() || t.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(CommandError::InvalidArgument { what: "ticket" });
        }
        let blob = super::mbi::response(binary_secret.expose(), &nonce, iv).map_err(|_| {
            CommandError::InvalidArgument {
                what: "binary secret",
            }
        })?;
        let mut args = vec!["SSO".into(), "S".into(), t.to_owned(), blob];
        if self.dialect().has_endpoints() {
            let Some(guid) = self.config.machine_guid.clone() else {
                return Err(CommandError::InvalidArgument {
                    what: "machine GUID",
                });
            };
            args.push(guid);
        }
        self.sso_nonce = None;
        self.phase = Phase::UsrS;
        self.send(now, Verb::USR, args, PendingKind::Login);
        Ok(())
    }

    /// MSNP13+: the shell read the address book (§4.5) for the last `NeedAddressBook`.
    /// Sends `BLP`, the initial `ADL` (split, §4.5) and then what follows every login
    /// (`LoggedIn`, the first `CHG`, …).
    pub fn handle_address_book(
        &mut self,
        now: Instant,
        book: ContactList,
    ) -> Result<(), CommandError> {
        if self.phase != Phase::AddressBook {
            return Err(CommandError::NotOnline);
        }
        self.list.contacts = book.contacts;
        // The user's own entry is not a contact.
        let me = self.config.login.to_ascii_lowercase();
        self.list.contacts.remove(&me);
        self.list.groups = book.groups;
        if book.privacy.is_some() {
            self.list.privacy = book.privacy;
        }
        if book.own_friendly_name.is_some() {
            self.list.own_friendly_name = book.own_friendly_name;
        }
        // Only a setting the address book gave: an unknown one is not overwritten.
        if let Some(privacy) = self.list.privacy.clone() {
            self.send(now, Verb::BLP, vec![privacy], PendingKind::Plain);
        }
        let entries: Vec<ml::MlEntry> = self
            .list
            .contacts
            .values()
            .map(|c| ml::MlEntry {
                address: c.email.clone(),
                lists: c.lists,
                network: c.network.unwrap_or(ml::NETWORK_PASSPORT),
                friendly: None,
            })
            .collect();
        // An address the server could not have given us is left out, not fatal.
        let sendable: Vec<ml::MlEntry> = entries
            .into_iter()
            .filter(|e| ml::build(std::slice::from_ref(e), true).is_ok())
            .collect();
        let payloads = ml::build(&sendable, true).unwrap_or_default();
        // §4.5: an empty initial list is still sent, so the server starts routing.
        let payloads = if payloads.is_empty() {
            vec!["<ml l=\"1\"></ml>".to_owned()]
        } else {
            payloads
        };
        for payload in payloads {
            self.send_payload(
                now,
                Verb::ADL,
                Vec::new(),
                payload.into_bytes(),
                PendingKind::Plain,
            );
        }
        self.come_online(now);
        Ok(())
    }

    /// The socket closed or failed without `OUT` (§11.3).
    pub fn handle_connection_lost(&mut self, _now: Instant) {
        self.close(CloseReason::ConnectionLost);
    }

    /// Timers: keepalive `PNG`, dead-connection detection, request timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        if let Some(sent) = self.ping_sent
            && now >= sent + self.config.ping_timeout
        {
            if self.last_rx.is_some_and(|rx| rx > sent) {
                // Traffic but no QNG: the link is alive; ping again later.
                self.ping_sent = None;
                self.next_ping = Some(now + self.ping_interval);
            } else {
                self.close(CloseReason::PingTimeout);
                return;
            }
        }
        if self.ping_sent.is_none()
            && let Some(at) = self.next_ping
            && now >= at
        {
            self.transmit
                .push_back(Frame::untracked(Verb::PNG, Vec::<String>::new()));
            self.ping_sent = Some(now);
            self.next_ping = None;
        }
        let expired: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for trid in expired {
            let Some(p) = self.pending.remove(&trid) else {
                continue;
            };
            match p.kind {
                PendingKind::Login | PendingKind::Sync => {
                    self.fail_login(LoginError::Timeout {
                        command: p.verb.to_string(),
                    });
                    return;
                }
                PendingKind::Switchboard => {
                    self.events.push_back(NsEvent::SwitchboardFailed {
                        request: SbRequestId(trid),
                        code: None,
                    });
                }
                _ => self.events.push_back(NsEvent::RequestTimedOut {
                    trid,
                    command: p.verb,
                }),
            }
        }
    }

    /// One frame parsed from the NS socket (with `Direction::ServerToClient` and
    /// [`NsSession::version`]).
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) {
        if self.phase == Phase::Closed {
            return;
        }
        self.last_rx = Some(now);
        let pending = self.take_pending(&frame);
        if let Verb::Error(code) = frame.verb {
            self.on_error(now, code, frame.trid, pending);
            return;
        }
        // A command the bridge issued got its answer: say so after the answer's own events.
        let replied = pending
            .as_ref()
            .filter(|p| !matches!(p.kind, PendingKind::Login | PendingKind::Sync))
            .and(frame.trid);
        self.dispatch(now, frame, pending);
        if let Some(trid) = replied {
            self.events.push_back(NsEvent::Replied { trid });
        }
    }

    fn dispatch(&mut self, now: Instant, frame: Frame, pending: Option<Pending>) {
        match frame.verb.as_str() {
            "VER" => self.on_ver(now, &frame),
            "CVR" if self.phase == Phase::Cvr => self.send_usr_i(now),
            "USR" => self.on_usr(now, &frame),
            "XFR" => self.on_xfr(&frame, pending),
            "SYN" => self.on_syn(&frame),
            "GTC" => {
                if let Some(v) = frame.args.last() {
                    self.list.gtc = Some(v.to_owned());
                }
            }
            "BLP" => {
                if let Some(v) = frame.args.last() {
                    self.list.privacy = Some(v.to_owned());
                }
            }
            "PRP" => self.on_prp(&frame, pending),
            "REA" => {
                if let (Some(PendingKind::FriendlyName(name)), Some(_)) =
                    (pending.map(|p| p.kind), frame.arg(0))
                {
                    self.list.own_friendly_name = Some(name.clone());
                    self.events.push_back(NsEvent::OwnFriendlyName { name });
                }
            }
            "LSG" => self.on_lsg(&frame),
            "LST" => self.on_lst(&frame),
            "BPR" => self.on_bpr(&frame),
            "ILN" => self.on_presence(&frame, true),
            "NLN" => self.on_presence(&frame, false),
            "FLN" => {
                // Our own account is never a contact (MSNP16+ reports it like one).
                if let Some(email) = frame
                    .arg(0)
                    .filter(|a| !self.is_second_hand(a))
                    .map(strip_network)
                    .filter(|e| !e.eq_ignore_ascii_case(&self.config.login))
                {
                    self.events.push_back(NsEvent::ContactOffline {
                        contact: email.to_owned(),
                    });
                }
            }
            "UBX" => self.on_ubx(&frame),
            "ADL" | "RML" => match pending.map(|p| p.kind) {
                Some(PendingKind::Lists {
                    email,
                    lists,
                    add,
                    guid,
                }) => {
                    self.on_lists_changed(email, lists, add, guid);
                }
                Some(_) => {}
                None => self.on_server_ml(&frame),
            },
            "CHG" => {
                if let Some(PendingKind::Status(status)) = pending.map(|p| p.kind) {
                    self.status = status;
                    self.events.push_back(NsEvent::OwnStatus { status });
                }
            }
            "ADD" | "ADC" => self.on_add(&frame, pending),
            "REM" => self.on_rem(&frame, pending),
            "ADG" => self.on_adg(&frame, pending),
            "RMG" => {
                if let Some(PendingKind::RemoveGroup(id)) = pending.map(|p| p.kind) {
                    self.list.groups.retain(|g| g.id != id);
                    for c in self.list.contacts.values_mut() {
                        c.groups.retain(|g| *g != id);
                    }
                    self.events
                        .push_back(NsEvent::ListChanged(ListChange::GroupRemoved { id }));
                }
            }
            "REG" => {
                if let Some(PendingKind::RenameGroup { id, name }) = pending.map(|p| p.kind) {
                    if let Some(g) = self.list.groups.iter_mut().find(|g| g.id == id) {
                        g.name = name.clone();
                    }
                    self.events
                        .push_back(NsEvent::ListChanged(ListChange::GroupRenamed { id, name }));
                }
            }
            "RNG" => self.on_rng(&frame),
            "CHL" => {
                if let Some(chl) = frame.arg(0) {
                    let trid = self.alloc_trid();
                    let qry = challenge::qry_frame(trid, self.version, chl, self.product());
                    self.transmit.push_back(qry);
                    self.track(now, Verb::QRY, trid, PendingKind::Plain);
                }
            }
            "QNG" => {
                let secs = frame
                    .arg(0)
                    .and_then(|s| s.parse::<u64>().ok())
                    .map_or(DEFAULT_PING_INTERVAL.as_secs(), |s| s.clamp(15, 120));
                self.ping_interval = Duration::from_secs(secs);
                self.ping_sent = None;
                if self.phase == Phase::Online {
                    self.next_ping = Some(now + self.ping_interval);
                }
            }
            "OUT" => {
                let reason = match frame.arg(0) {
                    Some("OTH") => CloseReason::SignedInElsewhere,
                    None => CloseReason::ServerClosed,
                    // §11.3: treat unknown reasons like SSD.
                    Some(_) => CloseReason::ServerShutdown,
                };
                self.close(reason);
            }
            "MSG" => self.on_msg(&frame),
            "UBN" => self.on_ubn(&frame),
            "NFY" => self.on_routed(frame.arg(0), &frame),
            "SDG" => self.on_routed(None, &frame),
            "NOT" | "IPG" => {
                if let Some(p) = &frame.payload {
                    self.events.push_back(NsEvent::Notification {
                        verb: frame.verb,
                        payload: p.clone(),
                    });
                }
            }
            // SBS, GCF, UUX, QRY replies, URL, unknown verbs: nothing to do (§11.5, §11.6).
            _ => {}
        }
        self.check_sync_complete(now);
    }

    fn on_error(&mut self, now: Instant, code: u16, trid: Option<u32>, pending: Option<Pending>) {
        let Some(p) = pending else {
            self.events.push_back(NsEvent::ServerError {
                trid,
                code,
                command: None,
            });
            return;
        };
        match p.kind {
            PendingKind::Login | PendingKind::Sync => {
                let err = match (code, self.phase.clone()) {
                    (911, Phase::UsrI) => LoginError::UnknownAccount { code },
                    (205 | 208 | 931, _) => LoginError::UnknownAccount { code },
                    (911 | 928, _) => LoginError::AuthenticationFailed { code },
                    (923 | 924 | 511 | 420, _) => LoginError::AccountNotAllowed { code },
                    (500 | 600..=605 | 910 | 920 | 921, _) => {
                        LoginError::ServerUnavailable { code }
                    }
                    // CVR errors (420, 710, 731) are not fatal on their own (§2.3).
                    (_, Phase::Cvr) => {
                        self.send_usr_i(now);
                        return;
                    }
                    _ => LoginError::Server { code },
                };
                self.fail_login(err);
            }
            PendingKind::Switchboard => self.events.push_back(NsEvent::SwitchboardFailed {
                request: SbRequestId(trid.unwrap_or_default()),
                code: Some(code),
            }),
            _ => self.events.push_back(NsEvent::ServerError {
                trid,
                code,
                command: Some(p.verb),
            }),
        }
    }

    fn on_ver(&mut self, now: Instant, frame: &Frame) {
        if self.phase != Phase::Ver {
            return;
        }
        let chosen = frame
            .arg(0)
            .and_then(|v| v.strip_prefix("MSNP"))
            .and_then(|v| v.parse::<u8>().ok())
            .filter(|v| self.config.versions.contains(v) && SUPPORTED_VERSIONS.contains(v));
        let Some(v) = chosen else {
            self.fail_login(LoginError::UnsupportedVersion {
                offered: frame.arg(0).map(str::to_owned),
            });
            return;
        };
        self.version = v;
        self.phase = Phase::Cvr;
        let c = &self.config.client_info;
        let args = vec![
            c.locale.clone(),
            c.os_type.clone(),
            c.os_version.clone(),
            c.arch.clone(),
            c.client_name.clone(),
            c.client_version.clone(),
            c.brand.clone(),
            self.config.login.clone(),
        ];
        self.send(now, Verb::CVR, args, PendingKind::Login);
    }

    /// `USR trid TWN|SSO I account` (§2.4.1, §2.5.1).
    fn send_usr_i(&mut self, now: Instant) {
        self.phase = Phase::UsrI;
        let scheme = if self.dialect().signs_in_with_sso() {
            "SSO"
        } else {
            "TWN"
        };
        let login = self.config.login.clone();
        self.send(
            now,
            Verb::USR,
            vec![scheme.into(), "I".into(), login],
            PendingKind::Login,
        );
    }

    fn on_usr(&mut self, now: Instant, frame: &Frame) {
        match (frame.arg(0), frame.arg(1)) {
            (Some("SSO"), Some("S")) if self.phase == Phase::UsrI => {
                // §2.5.1: `USR trid SSO S <policy> <nonce>`.
                let (Some(policy), Some(nonce)) = (frame.arg(2), frame.arg(3)) else {
                    self.fail_login(LoginError::Server { code: 0 });
                    return;
                };
                self.phase = Phase::Ticket;
                self.sso_nonce = Some(nonce.to_owned());
                self.events.push_back(NsEvent::NeedSsoTicket {
                    policy: policy.to_owned(),
                });
            }
            (Some("TWN"), Some("S")) if self.phase == Phase::UsrI => {
                self.phase = Phase::Ticket;
                self.events.push_back(NsEvent::NeedTicket {
                    tw_challenge: frame.arg(2).unwrap_or_default().to_owned(),
                });
            }
            (Some("OK"), Some(account)) if self.phase == Phase::UsrS => {
                let account = account.to_owned();
                // §2.4.1: MSNP8–9 include the friendly name before `verified kid`.
                let (name, verified) = if self.version < 10 {
                    (frame.arg(2).map(escape::decode_lossy), frame.arg(3))
                } else {
                    (None, frame.arg(2))
                };
                if name.is_some() {
                    self.list.own_friendly_name = name;
                }
                self.list.account = account;
                self.list.verified = verified.map(|v| v == "1");
                if self.dialect().lists_from_address_book() {
                    self.phase = Phase::AddressBook;
                    self.events.push_back(NsEvent::NeedAddressBook);
                    return;
                }
                self.phase = Phase::Sync(SyncState::default());
                let args = if self.version < 10 {
                    vec!["0".to_owned()]
                } else {
                    vec!["0".to_owned(), "0".to_owned()]
                };
                self.send(now, Verb::SYN, args, PendingKind::Sync);
            }
            _ => {}
        }
    }

    fn on_xfr(&mut self, frame: &Frame, pending: Option<Pending>) {
        match frame.arg(0) {
            Some("NS") if matches!(self.phase, Phase::UsrI | Phase::UsrS) => {
                let address = frame.arg(1).unwrap_or_default().to_owned();
                self.close(CloseReason::Redirect { address });
            }
            Some("SB") => {
                let (Some(address), Some(auth)) = (frame.arg(1), frame.arg(3)) else {
                    return;
                };
                if let Some(p) = pending
                    && matches!(p.kind, PendingKind::Switchboard)
                {
                    self.events.push_back(NsEvent::SwitchboardReady {
                        request: SbRequestId(frame.trid.unwrap_or_default()),
                        address: address.to_owned(),
                        auth: Secret::new(auth),
                    });
                }
            }
            _ => {}
        }
    }

    fn on_syn(&mut self, frame: &Frame) {
        let Phase::Sync(state) = &mut self.phase else {
            return;
        };
        // MSNP8–9: `SYN trid ver [contacts groups]`; MSNP10+: `SYN trid ts1 ts2 c g`.
        let skip = if self.version < 10 { 1 } else { 2 };
        if self.version < 10 {
            self.list.list_version = frame.arg(0).and_then(|v| v.parse().ok());
        }
        let num = |i: usize| frame.arg(skip + i).and_then(|v| v.parse::<usize>().ok());
        state.contacts = Some(num(0).unwrap_or(0));
        state.groups = num(1).unwrap_or(0);
    }

    fn check_sync_complete(&mut self, now: Instant) {
        let Phase::Sync(state) = &self.phase else {
            return;
        };
        let Some(contacts) = state.contacts else {
            return;
        };
        if state.seen_contacts < contacts || state.seen_groups < state.groups {
            return;
        }
        self.come_online(now);
    }

    /// The lists are known: tell the shell, then set our name, endpoint, status and
    /// personal message as every login does (§2.7).
    fn come_online(&mut self, now: Instant) {
        self.phase = Phase::Online;
        self.events.push_back(NsEvent::LoggedIn {
            version: self.version,
            account: self.list.account.clone(),
        });
        self.events
            .push_back(NsEvent::ContactList(self.list.clone()));
        if self.version >= 11 && self.config.send_gcf {
            self.send(
                now,
                Verb::GCF,
                vec!["Shields.xml".into()],
                PendingKind::Plain,
            );
        }
        if let Some(name) = self.config.friendly_name.clone()
            && self.list.own_friendly_name.as_deref() != Some(name.as_str())
        {
            let _ = self.set_friendly_name(now, &name);
        }
        let psm = self
            .config
            .personal_message
            .clone()
            .filter(|_| self.version >= 11);
        // The user's own Messenger's status, if it told us before now (§15.3.2).
        let status = self
            .endpoint_status
            .take()
            .unwrap_or(self.config.initial_status);
        let caps = self.config.capabilities;
        let obj = self.config.msn_object.clone();
        if self.dialect().has_endpoints() {
            // §15.3.1, MSP31's order: the endpoint's capabilities, its name for the
            // user's other endpoints, the personal message, then the first CHG.
            let docs = [
                format!("<EndpointData><Capabilities>{caps}:0</Capabilities></EndpointData>"),
                format!(
                    "<PrivateEndpointData><EpName>{}</EpName><Idle>false</Idle><ClientType>1</ClientType><State>{}</State></PrivateEndpointData>",
                    one_line_xml(&self.config.endpoint_name),
                    status.code()
                ),
            ];
            for doc in docs {
                self.send_payload(
                    now,
                    Verb::UUX,
                    Vec::new(),
                    doc.into_bytes(),
                    PendingKind::Plain,
                );
            }
            if let Some(psm) = &psm {
                let _ = self.set_personal_message(now, psm, "");
            }
            let _ = self.send_chg(now, status, caps, obj.as_deref());
        } else {
            let _ = self.send_chg(now, status, caps, obj.as_deref());
            if let Some(psm) = &psm {
                let _ = self.set_personal_message(now, psm, "");
            }
        }
        self.next_ping = Some(now + self.ping_interval);
    }

    fn on_prp(&mut self, frame: &Frame, pending: Option<Pending>) {
        if let Some(p) = pending {
            if let PendingKind::FriendlyName(name) = p.kind {
                self.list.own_friendly_name = Some(name.clone());
                self.events.push_back(NsEvent::OwnFriendlyName { name });
            }
            return;
        }
        if frame.arg(0) == Some("MFN")
            && let Some(name) = frame.arg(1)
        {
            self.list.own_friendly_name = Some(escape::decode_lossy(name));
        }
    }

    fn on_lsg(&mut self, frame: &Frame) {
        // MSNP8–9: `LSG id name 0`; MSNP10+: `LSG name guid` (§4.2, §4.3).
        let (id, name) = if self.version < 10 {
            (frame.arg(0), frame.arg(1))
        } else {
            (frame.arg(1), frame.arg(0))
        };
        if let (Some(id), Some(name)) = (id, name) {
            self.list.groups.push(Group {
                id: id.to_owned(),
                name: escape::decode_lossy(name),
            });
        }
        if let Phase::Sync(s) = &mut self.phase {
            s.seen_groups += 1;
        }
    }

    fn on_lst(&mut self, frame: &Frame) {
        if let Phase::Sync(s) = &mut self.phase {
            s.seen_contacts += 1;
        }
        let contact = if self.version < 10 {
            parse_lst_email(&frame.args)
        } else {
            parse_lst_tokens(&frame.args, self.version)
        };
        if let Some(c) = contact {
            let key = c.email.to_ascii_lowercase();
            self.last_contact = Some(key.clone());
            self.list.contacts.insert(key, c);
        }
    }

    fn on_bpr(&mut self, frame: &Frame) {
        let (Some(key), Some(name)) = (self.last_contact.as_ref(), frame.arg(0)) else {
            return;
        };
        if let Some(c) = self.list.contacts.get_mut(key) {
            let value = frame.arg(1).map(escape::decode_lossy).unwrap_or_default();
            c.phones.retain(|(n, _)| n != name);
            c.phones.push((name.to_owned(), value));
        }
    }

    /// Whether a presence line names someone as a circle reports them
    /// (`1:alice@example.com;via=9:…@live.com`, §15.4) while better word comes
    /// first-hand: the user's own account (its own lines say its status) and contacts on
    /// the forward list (their own presence lines do). Others' circle presence is taken.
    fn is_second_hand(&self, address: &str) -> bool {
        if !address.contains(";via=") {
            return false;
        }
        let email = strip_network(address).to_ascii_lowercase();
        email.eq_ignore_ascii_case(&self.config.login)
            || self
                .list
                .contacts
                .get(&email)
                .is_some_and(|c| c.on(List::Forward))
    }

    fn on_presence(&mut self, frame: &Frame, initial: bool) {
        // §5.4, MSNP8–13: `STATUS email friendly caps [msnobj]`.
        let (Some(status), Some(email)) = (frame.arg(0).and_then(Status::from_code), frame.arg(1))
        else {
            return;
        };
        if self.is_second_hand(email) {
            return;
        }
        let email = strip_network(email).to_owned();
        if email.eq_ignore_ascii_case(&self.config.login) {
            // MSNP16+: our account's status as another endpoint of it set it (§15.3.2);
            // the account is not a contact.
            self.status = status;
            self.events.push_back(NsEvent::OwnStatus { status });
            return;
        }
        // MSNP14–17 put the network id after the address (§5.4).
        let skip = usize::from(self.dialect().network_field() == NetworkField::Argument);
        let friendly_name = frame
            .arg(2 + skip)
            .map(escape::decode_lossy)
            .unwrap_or_default();
        let caps = frame
            .arg(3 + skip)
            .and_then(|c| c.split(':').next())
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let msn_object = frame
            .arg(4 + skip)
            .map(escape::decode_lossy)
            .filter(|o| !matches!(o.trim(), "" | "0" | "<msnobj/>"));
        if let Some(c) = self.list.contacts.get_mut(&email.to_ascii_lowercase()) {
            c.friendly_name.clone_from(&friendly_name);
        }
        self.events.push_back(NsEvent::PresenceChanged(Presence {
            contact: email,
            status,
            friendly_name,
            caps,
            msn_object,
            initial,
        }));
    }

    /// Our `ADL`/`RML` was accepted: the list as the server now has it.
    fn on_lists_changed(
        &mut self,
        email: String,
        lists: Vec<List>,
        add: bool,
        guid: Option<String>,
    ) {
        let key = email.to_ascii_lowercase();
        let contact = self.list.contacts.entry(key).or_insert_with(|| Contact {
            email: email.clone(),
            friendly_name: email.clone(),
            network: Some(ml::NETWORK_PASSPORT),
            ..Contact::default()
        });
        if guid.is_some() {
            contact.guid.clone_from(&guid);
        }
        for list in &lists {
            if add {
                contact.lists |= list.bit();
            } else {
                contact.lists &= !list.bit();
            }
        }
        for list in lists {
            self.events.push_back(NsEvent::ListChanged(if add {
                ListChange::ContactAdded {
                    list,
                    contact: email.clone(),
                    guid: None,
                    group: None,
                }
            } else {
                ListChange::ContactRemoved {
                    list,
                    contact: email.clone(),
                    group: None,
                }
            }));
        }
    }

    /// MSNP16+ `UBN account;{sender-guid} 4 len` + `goawyplzthxbye` (the server gives it
    /// only to the endpoint it was aimed at), or a bare `UBN account 4|8` (`gtfo`: every
    /// endpoint): another endpoint of the account asks us to sign out (§15.3.5). We go,
    /// and do not come back on our own. One we sent ourselves (our GUID) is not for us.
    fn on_ubn(&mut self, frame: &Frame) {
        let (Some(target), Some(kind)) = (frame.arg(0), frame.arg(1)) else {
            return;
        };
        let payload = frame.payload.as_deref().unwrap_or_default();
        let (account, guid) = match target.split_once(';') {
            Some((account, guid)) => (account, Some(guid)),
            None => (target, None),
        };
        if !strip_network(account).eq_ignore_ascii_case(&self.config.login) {
            return;
        }
        let ours = self.config.machine_guid.as_deref();
        let aimed_here = match guid {
            Some(sender) => !ours.is_some_and(|g| g.eq_ignore_ascii_case(sender)),
            None => true,
        };
        let asks_sign_out = match kind {
            "4" => payload.starts_with(b"goawyplzthxbye"),
            "8" => payload.starts_with(b"gtfo"),
            _ => false,
        };
        if aimed_here && asks_sign_out {
            self.transmit
                .push_back(Frame::untracked(Verb::OUT, Vec::<String>::new()));
            self.close(CloseReason::SignedOutRemotely);
        }
    }

    /// MSNP13+: `ADL 0 len` (someone added us) or `RML 0 len` (removed us), §4.5.
    fn on_server_ml(&mut self, frame: &Frame) {
        let Some(payload) = frame.payload.as_ref() else {
            return;
        };
        let Ok(entries) = ml::parse(&String::from_utf8_lossy(payload)) else {
            return;
        };
        let reverse = List::Reverse.bit() | List::Pending.bit();
        for entry in entries.into_iter().filter(|e| e.lists & reverse != 0) {
            let contact = entry.address.to_ascii_lowercase();
            self.events.push_back(if frame.verb == Verb::ADL {
                NsEvent::AddedBy {
                    friendly_name: entry
                        .friendly
                        .as_deref()
                        .map(escape::decode_lossy)
                        .unwrap_or_else(|| contact.clone()),
                    contact,
                }
            } else {
                NsEvent::RemovedBy { contact }
            });
        }
    }

    /// Our own `UBX` (MSNP16+): when the user's own Messenger is signed in with a status
    /// and the bridge has not chosen one since login, that status is the account's and
    /// is kept rather than reset by the bridge's login (§15.3.2).
    fn on_own_ubx(&mut self, frame: &Frame) {
        // Only before our first CHG: afterwards the account's status comes as our own
        // NLN, and an endpoint's State may be stale (§15.3.2).
        if self.status_chosen || !self.dialect().has_endpoints() || self.phase == Phase::Online {
            return;
        }
        let doc =
            String::from_utf8_lossy(frame.payload.as_deref().unwrap_or_default()).into_owned();
        let Ok(root) = crate::xml::Element::parse(&doc) else {
            return;
        };
        let ours = self.config.machine_guid.as_deref().unwrap_or_default();
        let theirs = root
            .find_all("PrivateEndpointData")
            .into_iter()
            .filter(|e| !e.attr("id").is_some_and(|id| id.eq_ignore_ascii_case(ours)))
            .find_map(|e| {
                e.find("State")
                    .and_then(|s| s.trimmed_text())
                    .and_then(Status::from_code)
            })
            .filter(|s| *s != Status::Offline);
        let Some(status) = theirs else {
            return;
        };
        self.endpoint_status = Some(status);
    }

    fn on_ubx(&mut self, frame: &Frame) {
        let Some(email) = frame.arg(0).filter(|a| !self.is_second_hand(a)) else {
            return;
        };
        if strip_network(email).eq_ignore_ascii_case(&self.config.login) {
            // Our own account's document (its endpoints, §15.3.1), not a contact's.
            self.on_own_ubx(frame);
            return;
        }
        let doc = frame
            .payload
            .as_ref()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let (psm, current_media) = ubx_texts(&doc);
        self.events.push_back(NsEvent::PersonalMessage {
            contact: strip_network(email).to_owned(),
            psm,
            current_media,
        });
    }

    fn on_add(&mut self, frame: &Frame, pending: Option<Pending>) {
        let Some(list) = frame.arg(0).and_then(List::from_code) else {
            return;
        };
        // MSNP8–9: `ADD trid LIST ver email friendly [gid]`; 10+: tokens (§4.2, §4.3).
        let (email, friendly, guid, group) = if frame.verb == Verb::ADD {
            (
                frame.arg(2).map(str::to_owned),
                frame.arg(3).map(escape::decode_lossy),
                None,
                frame.arg(4).map(str::to_owned),
            )
        } else {
            let t = Tokens::parse(frame.args.iter().skip(1));
            (t.n, t.f, t.c, t.rest.first().cloned())
        };
        if frame.verb == Verb::ADD
            && let Some(v) = frame.arg(1).and_then(|v| v.parse().ok())
        {
            self.list.list_version = Some(v);
        }
        match pending.map(|p| p.kind) {
            Some(PendingKind::AddContact {
                list,
                email: req_email,
                friendly: req_friendly,
                group: req_group,
            }) => {
                let email = email.unwrap_or(req_email);
                let friendly = friendly.unwrap_or(req_friendly);
                let group = group.or(req_group);
                self.apply_add(list, &email, &friendly, guid.clone(), group.clone());
                self.events
                    .push_back(NsEvent::ListChanged(ListChange::ContactAdded {
                        list,
                        contact: email,
                        guid,
                        group,
                    }));
            }
            Some(PendingKind::AddToGroup { email, group }) => {
                self.apply_add(List::Forward, &email, "", None, Some(group.clone()));
                self.events
                    .push_back(NsEvent::ListChanged(ListChange::ContactAdded {
                        list: List::Forward,
                        contact: email,
                        guid,
                        group: Some(group),
                    }));
            }
            _ if frame.trid == Some(0) => {
                // Asynchronous: someone added us (RL), or another client changed a list.
                let Some(email) = email else {
                    return;
                };
                let friendly = friendly.unwrap_or_else(|| email.clone());
                self.apply_add(list, &email, &friendly, guid, group);
                if list == List::Reverse {
                    self.events.push_back(NsEvent::AddedBy {
                        contact: email,
                        friendly_name: friendly,
                    });
                }
            }
            _ => {}
        }
    }

    fn apply_add(
        &mut self,
        list: List,
        email: &str,
        friendly: &str,
        guid: Option<String>,
        group: Option<String>,
    ) {
        let c = self
            .list
            .contacts
            .entry(email.to_ascii_lowercase())
            .or_insert_with(|| Contact {
                email: email.to_owned(),
                friendly_name: friendly.to_owned(),
                ..Contact::default()
            });
        c.lists |= list.bit();
        if guid.is_some() {
            c.guid = guid;
        }
        if let Some(g) = group
            && list == List::Forward
            && !c.groups.contains(&g)
        {
            c.groups.push(g);
        }
    }

    fn find_contact_key(&self, id: &str) -> Option<String> {
        let lower = strip_network(id.strip_prefix("N=").unwrap_or(id)).to_ascii_lowercase();
        if self.list.contacts.contains_key(&lower) {
            return Some(lower);
        }
        self.list
            .contacts
            .iter()
            .find(|(_, c)| {
                c.guid
                    .as_deref()
                    .is_some_and(|g| g.eq_ignore_ascii_case(id))
            })
            .map(|(k, _)| k.clone())
    }

    fn on_rem(&mut self, frame: &Frame, pending: Option<Pending>) {
        let Some(list) = frame.arg(0).and_then(List::from_code) else {
            return;
        };
        let (id, group) = if self.version < 10 {
            if let Some(v) = frame.arg(1).and_then(|v| v.parse().ok()) {
                self.list.list_version = Some(v);
            }
            (frame.arg(2), frame.arg(3))
        } else {
            (frame.arg(1), frame.arg(2))
        };
        let (email, group) = match pending.map(|p| p.kind) {
            Some(PendingKind::RemoveContact { email, group }) => (Some(email), group),
            _ if frame.trid == Some(0) => (
                id.and_then(|i| self.find_contact_key(i))
                    .or_else(|| id.map(|i| i.trim_start_matches("N=").to_owned())),
                group.map(str::to_owned),
            ),
            _ => return,
        };
        let Some(email) = email else {
            return;
        };
        if let Some(key) = self.find_contact_key(&email)
            && let Some(c) = self.list.contacts.get_mut(&key)
        {
            match &group {
                Some(g) if list == List::Forward => c.groups.retain(|x| x != g),
                _ => c.lists &= !list.bit(),
            }
        }
        if frame.trid == Some(0) && list == List::Reverse {
            self.events.push_back(NsEvent::RemovedBy { contact: email });
        } else {
            self.events
                .push_back(NsEvent::ListChanged(ListChange::ContactRemoved {
                    list,
                    contact: email,
                    group,
                }));
        }
    }

    fn on_adg(&mut self, frame: &Frame, pending: Option<Pending>) {
        let Some(PendingKind::AddGroup(name)) = pending.map(|p| p.kind) else {
            return;
        };
        // MSNP8–9: `ADG trid ver name gid 0`; 10+: the GUID-shaped token (§4.3: the
        // argument order differs between servers).
        let id = if self.version < 10 {
            frame.arg(2).map(str::to_owned)
        } else {
            frame.args.iter().find(|a| is_guid(a)).map(str::to_owned)
        };
        let Some(id) = id else {
            return;
        };
        self.list.groups.push(Group {
            id: id.clone(),
            name: name.clone(),
        });
        self.events
            .push_back(NsEvent::ListChanged(ListChange::GroupAdded { id, name }));
    }

    fn on_rng(&mut self, frame: &Frame) {
        // §6.2: `RNG sid host:port CKI cookie inviter friendly [U host [1]]`.
        let (Some(session_id), Some(address), Some(auth), Some(inviter)) =
            (frame.arg(0), frame.arg(1), frame.arg(3), frame.arg(4))
        else {
            return;
        };
        self.events.push_back(NsEvent::SwitchboardInvite {
            session_id: session_id.to_owned(),
            address: address.to_owned(),
            auth: Secret::new(auth),
            inviter: strip_network(inviter).to_owned(),
            inviter_name: frame.arg(5).map(escape::decode_lossy).unwrap_or_default(),
        });
    }

    fn on_msg(&mut self, frame: &Frame) {
        let Some(p) = &frame.payload else {
            return;
        };
        match parse_msg(p, &self.limits) {
            Ok(MsgPayload::Profile { headers }) => {
                self.events.push_back(NsEvent::Profile(headers));
            }
            Ok(payload) => self.events.push_back(NsEvent::NsMessage(payload)),
            Err(_) => self
                .events
                .push_back(NsEvent::NsMessage(MsgPayload::Unknown {
                    content_type: String::new(),
                    headers: Headers::default(),
                    body: p.clone(),
                })),
        }
    }

    // ----- commands ------------------------------------------------------------------

    /// Sets our presence (§5.2): `CHG trid STATUS caps [msnobj]` (msnobj from MSNP9,
    /// the raw XML, percent-encoded here). `Offline` is refused: use [`Self::logout`].
    pub fn set_status(
        &mut self,
        now: Instant,
        status: Status,
        caps: u32,
        msn_object: Option<&str>,
    ) -> Result<u32, CommandError> {
        self.status_chosen = true;
        self.send_chg(now, status, caps, msn_object)
    }

    /// `CHG` in the version's form (§5.2).
    fn send_chg(
        &mut self,
        now: Instant,
        status: Status,
        caps: u32,
        msn_object: Option<&str>,
    ) -> Result<u32, CommandError> {
        self.require_online()?;
        if status == Status::Offline {
            return Err(CommandError::InvalidArgument { what: "status FLN" });
        }
        let object = msn_object.filter(|o| !o.is_empty()).map(escape::encode);
        // §5.2: `caps:capsex` and `0` for no picture from MSNP16; no picture is left out
        // before (and MSNP8 has none).
        let args = if self.dialect().has_endpoints() {
            vec![
                status.code().to_owned(),
                format!("{caps}:0"),
                object.unwrap_or_else(|| "0".to_owned()),
            ]
        } else {
            let mut args = vec![status.code().to_owned(), caps.to_string()];
            if self.version >= 9
                && let Some(object) = object
            {
                args.push(object);
            }
            args
        };
        self.config.capabilities = caps;
        self.config.msn_object = msn_object.map(str::to_owned);
        Ok(self.send(now, Verb::CHG, args, PendingKind::Status(status)))
    }

    /// Renames ourselves (§5.6): `REA trid email name` (MSNP8–9) or `PRP trid MFN name`.
    pub fn set_friendly_name(&mut self, now: Instant, name: &str) -> Result<u32, CommandError> {
        self.require_online()?;
        if name.is_empty() {
            return Err(CommandError::InvalidArgument {
                what: "friendly name",
            });
        }
        let kind = PendingKind::FriendlyName(name.to_owned());
        Ok(if self.version < 10 {
            let login = self.config.login.clone();
            self.send(now, Verb::REA, vec![login, escape::encode(name)], kind)
        } else {
            self.send(
                now,
                Verb::PRP,
                vec!["MFN".into(), escape::encode(name)],
                kind,
            )
        })
    }

    /// Sets the personal message and "now playing" text with `UUX` (§5.5, MSNP11+).
    /// Line breaks are replaced by spaces (R2M keeps only the first payload line).
    pub fn set_personal_message(
        &mut self,
        now: Instant,
        psm: &str,
        current_media: &str,
    ) -> Result<u32, CommandError> {
        self.require_online()?;
        self.require_version("UUX", 11, *SUPPORTED_VERSIONS.end())?;
        let doc = format!(
            "<Data><PSM>{}</PSM><CurrentMedia>{}</CurrentMedia></Data>",
            one_line_xml(psm),
            one_line_xml(current_media)
        );
        Ok(self.send_payload(
            now,
            Verb::UUX,
            Vec::new(),
            doc.into_bytes(),
            PendingKind::Plain,
        ))
    }

    /// MSNP13+: puts `email` on (`add`) or takes it off `lists` (forward, allow, block)
    /// with a non-initial `ADL`/`RML` (§4.5). The address-book call that goes with it
    /// (adding the contact, the membership) is the shell's; `guid` is the address book's
    /// id of a contact it just added, kept for removing it later.
    pub fn change_lists(
        &mut self,
        now: Instant,
        email: &str,
        lists: &[List],
        add: bool,
        guid: Option<&str>,
    ) -> Result<u32, CommandError> {
        self.require_online()?;
        self.require_version("ADL", 13, *SUPPORTED_VERSIONS.end())?;
        let bits = lists.iter().fold(0u8, |bits, l| bits | l.bit());
        if bits & !ml::CLIENT_LIST_BITS != 0 || bits == 0 {
            return Err(CommandError::InvalidArgument { what: "list" });
        }
        let entry = ml::MlEntry {
            address: email.to_owned(),
            lists: bits,
            network: ml::NETWORK_PASSPORT,
            friendly: None,
        };
        let payload = ml::build(std::slice::from_ref(&entry), false)
            .ok()
            .and_then(|p| p.into_iter().next())
            .ok_or(CommandError::InvalidArgument { what: "email" })?;
        let verb = if add { Verb::ADL } else { Verb::RML };
        let kind = PendingKind::Lists {
            email: email.to_owned(),
            lists: lists.to_vec(),
            add,
            guid: guid.map(str::to_owned),
        };
        Ok(self.send_payload(now, verb, Vec::new(), payload.into_bytes(), kind))
    }

    /// Adds `email` to `list` (§4.2 `ADD`, §4.3 `ADC`). `group` (FL only) is a group id
    /// (MSNP8–9 number) — for MSNP10+ use [`Self::add_to_group`] after the add.
    /// Reverse and pending lists are server-managed and refused.
    pub fn add_contact(
        &mut self,
        now: Instant,
        list: List,
        email: &str,
        friendly_name: Option<&str>,
        group: Option<&str>,
    ) -> Result<u32, CommandError> {
        self.require_online()?;
        self.require_list_commands()?;
        if matches!(list, List::Reverse | List::Pending) {
            return Err(CommandError::InvalidArgument { what: "list" });
        }
        if email.is_empty() || email.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(CommandError::InvalidArgument { what: "email" });
        }
        let friendly = friendly_name.unwrap_or(email).to_owned();
        let kind = PendingKind::AddContact {
            list,
            email: email.to_owned(),
            friendly: friendly.clone(),
            group: group.map(str::to_owned),
        };
        let args = if self.version < 10 {
            let mut a = vec![list.code().into(), email.into(), escape::encode(&friendly)];
            if let (List::Forward, Some(g)) = (list, group) {
                a.push(g.to_owned());
            }
            return Ok(self.send(now, Verb::ADD, a, kind));
        } else if list == List::Forward {
            vec![
                "FL".into(),
                format!("N={email}"),
                format!("F={}", escape::encode(&friendly)),
            ]
        } else {
            vec![list.code().into(), format!("N={email}")]
        };
        Ok(self.send(now, Verb::ADC, args, kind))
    }

    /// Puts a forward-list contact into a group (MSNP10+: `ADC trid FL C=guid group`;
    /// MSNP8–9: `ADD trid FL email friendly gid`).
    pub fn add_to_group(
        &mut self,
        now: Instant,
        email: &str,
        group: &str,
    ) -> Result<u32, CommandError> {
        self.require_online()?;
        self.require_list_commands()?;
        let key = self
            .find_contact_key(email)
            .ok_or(CommandError::UnknownContact)?;
        let c = self
            .list
            .contacts
            .get(&key)
            .ok_or(CommandError::UnknownContact)?;
        let kind = PendingKind::AddToGroup {
            email: c.email.clone(),
            group: group.to_owned(),
        };
        if self.version < 10 {
            let args = vec![
                "FL".into(),
                c.email.clone(),
                escape::encode(&c.friendly_name),
                group.to_owned(),
            ];
            return Ok(self.send(now, Verb::ADD, args, kind));
        }
        let guid = c.guid.clone().ok_or(CommandError::UnknownContact)?;
        let args = vec!["FL".into(), format!("C={guid}"), group.to_owned()];
        Ok(self.send(now, Verb::ADC, args, kind))
    }

    /// Removes `email` from `list`, or only from `group` when given (FL only), §4.2/§4.3.
    /// MSNP10+ addresses FL entries by contact GUID, AL/BL by e-mail.
    pub fn remove_contact(
        &mut self,
        now: Instant,
        list: List,
        email: &str,
        group: Option<&str>,
    ) -> Result<u32, CommandError> {
        self.require_online()?;
        self.require_list_commands()?;
        if matches!(list, List::Reverse | List::Pending) {
            return Err(CommandError::InvalidArgument { what: "list" });
        }
        let mut id = email.to_owned();
        if self.version >= 10 && list == List::Forward {
            let key = self
                .find_contact_key(email)
                .ok_or(CommandError::UnknownContact)?;
            id = self
                .list
                .contacts
                .get(&key)
                .and_then(|c| c.guid.clone())
                .ok_or(CommandError::UnknownContact)?;
        }
        let mut args = vec![list.code().to_owned(), id];
        if let (List::Forward, Some(g)) = (list, group) {
            args.push(g.to_owned());
        }
        let kind = PendingKind::RemoveContact {
            email: email.to_owned(),
            group: group.map(str::to_owned),
        };
        Ok(self.send(now, Verb::REM, args, kind))
    }

    /// Blocks `email`: `REM AL` (when on AL, AL and BL are exclusive) then `ADD`/`ADC BL`.
    /// Returns the TrID of the BL add.
    pub fn block(&mut self, now: Instant, email: &str) -> Result<u32, CommandError> {
        self.move_between(now, email, List::Allow, List::Block)
    }

    /// Unblocks `email`: `REM BL` (when on BL) then `ADD`/`ADC AL`.
    pub fn unblock(&mut self, now: Instant, email: &str) -> Result<u32, CommandError> {
        self.move_between(now, email, List::Block, List::Allow)
    }

    fn move_between(
        &mut self,
        now: Instant,
        email: &str,
        from: List,
        to: List,
    ) -> Result<u32, CommandError> {
        self.require_online()?;
        let on_from = self
            .find_contact_key(email)
            .and_then(|k| self.list.contacts.get(&k))
            .is_some_and(|c| c.lists & from.bit() != 0);
        if on_from {
            self.remove_contact(now, from, email, None)?;
        }
        self.add_contact(now, to, email, None, None)
    }

    /// Sets who may contact us (`BLP trid AL|BL`, §4.1): `allow_all` = `AL` (everyone
    /// not blocked), otherwise `BL` (only the allow list).
    pub fn set_privacy(&mut self, now: Instant, allow_all: bool) -> Result<u32, CommandError> {
        self.require_online()?;
        let mode = if allow_all { "AL" } else { "BL" };
        Ok(self.send(now, Verb::BLP, vec![mode.to_owned()], PendingKind::Plain))
    }

    /// Creates a group (`ADG`, §4.2/§4.3); the id arrives with `ListChange::GroupAdded`.
    pub fn add_group(&mut self, now: Instant, name: &str) -> Result<u32, CommandError> {
        self.require_online()?;
        self.require_list_commands()?;
        let enc = escape::encode(name);
        if name.is_empty() || enc.len() > 61 {
            return Err(CommandError::InvalidArgument { what: "group name" });
        }
        let mut args = vec![enc];
        if self.version < 10 {
            args.push("0".into());
        }
        Ok(self.send(now, Verb::ADG, args, PendingKind::AddGroup(name.to_owned())))
    }

    /// Renames a group (`REG`): MSNP8–9 `REG trid id name 0`, MSNP10+ `REG trid guid name`.
    pub fn rename_group(
        &mut self,
        now: Instant,
        id: &str,
        name: &str,
    ) -> Result<u32, CommandError> {
        self.require_online()?;
        self.require_list_commands()?;
        let enc = escape::encode(name);
        if name.is_empty() || enc.len() > 61 || id.is_empty() {
            return Err(CommandError::InvalidArgument { what: "group name" });
        }
        let mut args = vec![id.to_owned(), enc];
        if self.version < 10 {
            args.push("0".into());
        }
        let kind = PendingKind::RenameGroup {
            id: id.to_owned(),
            name: name.to_owned(),
        };
        Ok(self.send(now, Verb::REG, args, kind))
    }

    /// Removes a group (`RMG trid id`).
    pub fn remove_group(&mut self, now: Instant, id: &str) -> Result<u32, CommandError> {
        self.require_online()?;
        self.require_list_commands()?;
        if id.is_empty() || id.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(CommandError::InvalidArgument { what: "group id" });
        }
        Ok(self.send(
            now,
            Verb::RMG,
            vec![id.to_owned()],
            PendingKind::RemoveGroup(id.to_owned()),
        ))
    }

    /// Asks for a switchboard (`XFR trid SB`, §6.1). The answer is
    /// `SwitchboardReady`/`SwitchboardFailed` with the returned id.
    pub fn request_switchboard(&mut self, now: Instant) -> Result<SbRequestId, CommandError> {
        self.require_online()?;
        if self.status == Status::Hidden {
            // §1.4 913: refused while HDN (MSNP<13).
            return Err(CommandError::InvalidArgument {
                what: "XFR SB while hidden",
            });
        }
        let trid = self.send(now, Verb::XFR, vec!["SB".into()], PendingKind::Switchboard);
        Ok(SbRequestId(trid))
    }

    /// Signs out: queues `OUT` (§6.4/§11.3) and ends the session.
    pub fn logout(&mut self, _now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        self.transmit
            .push_back(Frame::untracked(Verb::OUT, Vec::<String>::new()));
        self.close(CloseReason::LoggedOut);
    }
}

/// Strips an MSNP18-style `1:` network prefix and MSNP16+ `;{epid}` suffix.
pub(crate) fn strip_network(id: &str) -> &str {
    let id = id.split(';').next().unwrap_or(id);
    match id.split_once(':') {
        Some((n, rest)) if n.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => id,
    }
}

/// Text for a one-line UUX document (R2M keeps only the first line, §5.5).
fn one_line_xml(text: &str) -> String {
    crate::xml::escape_lossy(&text.replace(['\r', '\n'], " "))
}

/// Whether `s` looks like `8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80`.
fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// `N=`/`F=`/`C=` tokens of MSNP10+ list lines, plus the remaining tokens in order.
#[derive(Debug, Default)]
struct Tokens {
    n: Option<String>,
    f: Option<String>,
    c: Option<String>,
    rest: Vec<String>,
}

impl Tokens {
    fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Tokens {
        let mut t = Tokens::default();
        for a in args {
            if let Some(v) = a.strip_prefix("N=") {
                t.n = Some(v.to_owned());
            } else if let Some(v) = a.strip_prefix("F=") {
                t.f = Some(escape::decode_lossy(v));
            } else if let Some(v) = a.strip_prefix("C=") {
                t.c = Some(v.to_owned());
            } else {
                t.rest.push(a.to_owned());
            }
        }
        t
    }
}

/// MSNP8–9 `LST email friendly bits [gid,gid]` (§4.2).
fn parse_lst_email(args: &Args) -> Option<Contact> {
    let email = args.get(0)?;
    Some(Contact {
        email: email.to_owned(),
        friendly_name: args.get(1).map(escape::decode_lossy)?,
        guid: None,
        lists: args.get(2).and_then(|b| b.parse().ok()).unwrap_or(0),
        groups: split_groups(args.get(3)),
        network: None,
        phones: Vec::new(),
    })
}

/// MSNP10–12 `LST N= F= [C=] bits [network (12)] [groups]` (§4.3), by token prefix.
fn parse_lst_tokens(args: &Args, version: u8) -> Option<Contact> {
    let t = Tokens::parse(args);
    let email = t.n?;
    let mut rest = t.rest.iter().map(String::as_str);
    let lists = rest.next().and_then(|b| b.parse().ok()).unwrap_or(0);
    let mut next = rest.next();
    let mut network = None;
    if version >= 12
        && let Some(n) = next.and_then(|n| n.parse::<u32>().ok())
    {
        network = Some(n);
        next = rest.next();
    }
    Some(Contact {
        friendly_name: t.f.unwrap_or_else(|| email.clone()),
        email,
        guid: t.c,
        lists,
        groups: split_groups(next),
        network,
        phones: Vec::new(),
    })
}

fn split_groups(s: Option<&str>) -> Vec<String> {
    s.map(|g| {
        g.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// The personal message and current media of a `UBX` document (§5.5), read as XML;
/// a document that is not well-formed (a client that did not escape its text) still
/// gives its texts, scraped.
fn ubx_texts(doc: &str) -> (String, String) {
    match crate::xml::Element::parse(doc) {
        Ok(root) => {
            let text = |tag| {
                root.find(tag)
                    .map(|e| e.text().to_owned())
                    .unwrap_or_default()
            };
            (text("PSM"), text("CurrentMedia"))
        }
        Err(_) => (
            scraped_element(doc, "PSM").unwrap_or_default(),
            scraped_element(doc, "CurrentMedia").unwrap_or_default(),
        ),
    }
}

/// Text of the first `<tag>…</tag>` element (`<tag/>` → empty), references decoded
/// where they can be: the fallback for a malformed document.
fn scraped_element(doc: &str, tag: &str) -> Option<String> {
    if doc.contains(&format!("<{tag}/>")) {
        return Some(String::new());
    }
    let open = format!("<{tag}>");
    let start = doc.find(&open)? + open.len();
    let rest = doc.get(start..)?;
    let end = rest.find(&format!("</{tag}>"))?;
    Some(crate::xml::unescape(rest.get(..end)?).into_owned())
}

#[cfg(test)]
mod tests;
