//! Shared routing state of one test server: accounts, logged-in NS sessions, Passport
//! tickets, switchboard cookies and sessions, circles, the frame log and the event
//! broadcast.
//!
//! One `std::sync::Mutex` guards [`State`]; it is never held across an `.await` (all
//! socket writes go through the connections' channels), which keeps fan-out atomic:
//! a presence change and the notifications it causes are decided under one lock.
//! Knows the visibility rules (§4.1 AL/BL/BLP) but no wire formats.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::MsnServerConfig;
use super::accounts::Account;
use super::circles::Circle;
use super::conn::{ConnTx, LoggedFrame};
use super::faults::Faults;

/// Frames kept per account in the log ([`super::MsnServerHandle::frames`]): the last
/// this many at least, at most twice as many.
pub const MAX_LOGGED_FRAMES: usize = 4096;

/// Which listener a frame or event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// The dispatch server (answers `XFR NS`).
    Dispatch,
    /// The notification server.
    Ns,
    /// The switchboard server.
    Sb,
}

/// Something observable that happened inside the test server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A client frame was received (secrets redacted). `email` is `None` before `USR`.
    Frame {
        email: Option<String>,
        frame: LoggedFrame,
    },
    /// `USR … OK` was sent.
    LoggedIn { email: String, version: u8 },
    /// A login was refused (bad ticket, unknown account).
    LoginFailed { email: String },
    /// The NS connection of a logged-in account ended.
    Disconnected { email: String },
    /// A `CHG` was accepted.
    StatusChanged { email: String, status: String },
    /// A `QRY` answer was checked.
    ChallengeAnswered { email: String, correct: bool },
    /// A participant joined switchboard session `session`.
    SwitchboardJoined { session: u64, email: String },
    /// A participant left switchboard session `session`.
    SwitchboardLeft { session: u64, email: String },
    /// A switchboard `MSG` was relayed to `recipients` other participants.
    MessageRelayed {
        session: u64,
        from: String,
        recipients: usize,
    },
}

/// A logged-in account: its first NS connection (endpoint) and, from MSNP16, the other
/// endpoints signed in beside it (MPOP, §15.3). Status, caps and msnobj belong to the
/// account (Escargot, §15.3.2).
#[derive(Debug)]
pub(crate) struct Session {
    pub conn: ConnTx,
    pub version: u8,
    /// `None` until an endpoint's first `CHG` (§5.2): invisible, `XFR SB` refused.
    pub status: Option<String>,
    /// The first endpoint sent its first `CHG`.
    pub changed: bool,
    /// The first endpoint's `EpName` (MSNP16+).
    pub endpoint_name: Option<String>,
    /// The other endpoints (MSNP16+).
    pub others: Vec<Endpoint>,
    pub caps: String,
    pub msnobj: Option<String>,
    /// Outstanding `CHL` and the time by which the `QRY` must arrive.
    pub challenge: Option<(String, Instant)>,
    /// MSNP16+: the endpoint's machine GUID from `USR SSO S`.
    pub machine_guid: Option<String>,
}

/// An endpoint of an account signed in beside its first one (MSNP16+, §15.3).
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub conn: ConnTx,
    pub version: u8,
    pub guid: String,
    /// It sent its first `CHG` (presence flows to it, `XFR SB` allowed).
    pub changed: bool,
    /// Its `EpName`.
    pub name: Option<String>,
}

impl Session {
    /// The status others see, or `None` when the user appears offline.
    pub fn visible_status(&self) -> Option<&str> {
        self.status.as_deref().filter(|s| *s != "HDN")
    }

    /// Every endpoint: (connection, version, first `CHG` sent), the first one first.
    pub fn endpoints(&self) -> Vec<(ConnTx, u8, bool)> {
        std::iter::once((self.conn.clone(), self.version, self.changed))
            .chain(
                self.others
                    .iter()
                    .map(|e| (e.conn.clone(), e.version, e.changed)),
            )
            .collect()
    }

    /// The endpoints that sent their first `CHG`: (connection, version).
    pub fn live_endpoints(&self) -> Vec<(ConnTx, u8)> {
        self.endpoints()
            .into_iter()
            .filter(|(_, _, changed)| *changed)
            .map(|(conn, version, _)| (conn, version))
            .collect()
    }

    /// Whether the endpoint on `conn_id` sent its first `CHG`.
    pub fn changed_on(&self, conn_id: u64) -> bool {
        if self.conn.id == conn_id {
            return self.changed;
        }
        self.others
            .iter()
            .any(|e| e.conn.id == conn_id && e.changed)
    }

    /// Marks the endpoint on `conn_id` as having sent its first `CHG`.
    pub fn mark_changed(&mut self, conn_id: u64) {
        if self.conn.id == conn_id {
            self.changed = true;
        }
        for e in self.others.iter_mut().filter(|e| e.conn.id == conn_id) {
            e.changed = true;
        }
    }

    /// Whether an endpoint signed in with `guid` (compared without regard to case).
    pub fn has_guid(&self, guid: &str) -> bool {
        self.machine_guid
            .as_deref()
            .is_some_and(|g| g.eq_ignore_ascii_case(guid))
            || self
                .others
                .iter()
                .any(|e| e.guid.eq_ignore_ascii_case(guid))
    }

    /// (machine GUID, name) of every endpoint that has a GUID.
    pub fn named_endpoints(&self) -> Vec<(String, Option<String>)> {
        self.machine_guid
            .iter()
            .map(|g| (g.clone(), self.endpoint_name.clone()))
            .chain(self.others.iter().map(|e| (e.guid.clone(), e.name.clone())))
            .collect()
    }
}

/// A Passport ticket issued by `/login.srf`.
#[derive(Debug)]
pub(crate) struct Ticket {
    pub email: String,
    pub expires: Instant,
    /// The base64 binary secret issued with a `messengerclear.live.com` ticket (§2.5.2),
    /// against which the MBI response is checked.
    pub binary_secret: Option<String>,
}

/// What a switchboard cookie authorises.
#[derive(Debug, Clone)]
pub(crate) enum CookieKind {
    /// From `XFR SB`: open a new session with `USR`.
    Xfr,
    /// From `RNG`: join session `session` with `ANS`.
    Ring { session: u64 },
}

#[derive(Debug, Clone)]
pub(crate) struct SbCookie {
    pub email: String,
    pub kind: CookieKind,
    pub version: u8,
    pub expires: Instant,
}

/// A participant of a switchboard session.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub email: String,
    pub conn: ConnTx,
    pub version: u8,
    /// The endpoint's machine GUID, when it joined as `email;{guid}` (MSNP16+).
    pub guid: Option<String>,
}

impl Member {
    /// How this member is named to `viewer_version`: `email;{guid}` for MSNP16+ viewers
    /// when it joined as an endpoint, else the bare address (§15.3.3).
    pub fn endpoint_name(&self, viewer_version: u8) -> Option<String> {
        let guid = self.guid.as_ref().filter(|_| viewer_version >= 16)?;
        Some(format!("{};{guid}", self.email))
    }
}

/// A switchboard session.
#[derive(Debug, Default)]
pub(crate) struct Switchboard {
    pub members: Vec<Member>,
    /// Addresses rung but not yet answered.
    pub invited: HashSet<String>,
}

/// An offline message stored for an account (MSNP13+, MSNP.md §15.1), as
/// [`MsnServerHandle::offline_messages`](super::MsnServerHandle::offline_messages) lists it
/// (and [`MsnServerHandle::store_offline_message`](super::MsnServerHandle::store_offline_message)
/// takes it, its `id` left to the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredOim {
    /// The id `GetMessage`/`DeleteMessages` take: an upper-case GUID without braces.
    pub id: String,
    /// The sender's address.
    pub sender: String,
    /// The sender's friendly name, decoded (empty when none was given).
    pub friendly_name: String,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub stored_ms: i64,
    /// The sending session's `X-OIM-Run-Id`, without braces (taken with or without).
    pub run_id: String,
    /// Its `X-OIM-Sequence-Num` within the run.
    pub sequence: u32,
    /// The text.
    pub text: String,
}

/// A stored offline message with what the server needs to list and serve it.
#[derive(Debug, Clone)]
pub(crate) struct OimRecord {
    pub oim: StoredOim,
    /// The recipient's address.
    pub to: String,
    /// The charset of the sender's friendly name; `None` when no name was given.
    pub name_charset: Option<String>,
    /// `X-OIM-originatingSource`.
    pub origin: String,
    /// `X-OIMProxy`, when the sender named one.
    pub proxy: Option<String>,
    /// The MIME headers of the stored `Content`, as the sender wrote them.
    pub headers: Vec<(String, String)>,
}

/// Everything guarded by the state lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub accounts: HashMap<String, Account>,
    pub sessions: HashMap<String, Session>,
    pub tickets: HashMap<String, Ticket>,
    pub sb_cookies: HashMap<String, SbCookie>,
    pub switchboards: HashMap<u64, Switchboard>,
    pub frames: HashMap<String, Vec<LoggedFrame>>,
    /// Every live NS connection (logged in or not), for `OUT SSD` on shutdown.
    pub ns_conns: HashMap<u64, ConnTx>,
    /// Every live switchboard connection, keyed by connection id.
    pub sb_conns: HashMap<u64, (Option<String>, ConnTx)>,
    /// Presence as Escargot 2025 does it (MSNP.md §2.8): a `CHG` that keeps the status is
    /// not relayed, and a user without a picture is reported with the literal
    /// `<msnobj/>`. Off: as R2M, which relays every visible `CHG` and omits the msnobj.
    pub escargot_presence: bool,
    /// Offline messages by recipient, oldest first (MSNP13+).
    pub oims: HashMap<String, Vec<OimRecord>>,
    /// Fault: `DeleteMessages` fails (as a server that is away would), deleting nothing.
    pub refuse_oim_deletes: bool,
    /// Fault: `USR SHA A` is refused (`911`) whatever the ticket.
    pub refuse_circle_tickets: bool,
    /// Fault: no `ABFindContactsPaged` (an address book without circles).
    pub no_circle_service: bool,
    /// The ticket each NS endpoint signed in with: (account, connection id). The OIM
    /// services find the calling endpoint by it, as Escargot finds the session by token.
    pub login_tickets: HashMap<String, (String, u64)>,
    /// Circles (MSNP18 group chats, §15.4) by lower-case id.
    pub circles: BTreeMap<String, Circle>,
    /// How many circles were created: the next id's number.
    pub circle_count: u64,
    /// The circle ticket each account was last given by `ABFindContactsPaged`
    /// (XML-unescaped), which `USR SHA A` must present.
    pub circle_tickets: HashMap<String, String>,
}

impl State {
    /// The friendly name of an account, percent-encoded (the address if unknown).
    pub fn name_of(&self, email: &str) -> String {
        self.accounts
            .get(email)
            .map_or_else(|| email.to_owned(), |a| a.name_enc.clone())
    }

    /// Whether `owner`'s privacy settings let `viewer` see and contact them.
    pub fn allows(&self, owner: &str, viewer: &str) -> bool {
        self.accounts.get(owner).is_some_and(|a| a.allows(viewer))
    }

    /// The session of `email` if it appears online to `viewer`.
    pub fn visible_to(&self, email: &str, viewer: &str) -> Option<&Session> {
        let session = self.sessions.get(email)?;
        session.visible_status()?;
        self.allows(email, viewer).then_some(session)
    }

    /// Logged-in users that should receive presence updates about `user`: they have
    /// `user` on their FL, `user` allows them, and they have sent their first `CHG`.
    /// One entry per endpoint of theirs that sent its first `CHG` (MSNP16+ MPOP).
    pub fn watchers(&self, user: &str) -> Vec<(String, ConnTx, u8)> {
        self.sessions
            .iter()
            .filter(|(email, _)| {
                email.as_str() != user
                    && self
                        .accounts
                        .get(email.as_str())
                        .is_some_and(|a| a.lists_of(user).contains(super::accounts::Lists::FL))
                    && self.allows(user, email)
            })
            .flat_map(|(email, s)| {
                s.live_endpoints()
                    .into_iter()
                    .map(move |(conn, version)| (email.clone(), conn, version))
            })
            .collect()
    }
}

/// State plus configuration, shared by every task of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: MsnServerConfig,
    pub faults: Faults,
    pub events: broadcast::Sender<ServerEvent>,
    pub shutdown: CancellationToken,
    pub dispatch_addr: SocketAddr,
    pub ns_addr: SocketAddr,
    pub sb_addr: SocketAddr,
    pub http_addr: SocketAddr,
    state: Mutex<State>,
    ids: AtomicU64,
    /// Every frame received from a client, on any server.
    pub received: Arc<AtomicU64>,
}

impl Shared {
    pub fn new(
        config: MsnServerConfig,
        dispatch_addr: SocketAddr,
        ns_addr: SocketAddr,
        sb_addr: SocketAddr,
        http_addr: SocketAddr,
    ) -> Shared {
        let (events, _) = broadcast::channel(4096);
        Shared {
            config,
            faults: Faults::default(),
            events,
            shutdown: CancellationToken::new(),
            dispatch_addr,
            ns_addr,
            sb_addr,
            http_addr,
            state: Mutex::new(State::default()),
            ids: AtomicU64::new(1),
            received: Arc::default(),
        }
    }

    /// Locks the state (a panicking test thread must not wedge the server).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh id for connections, sessions and GUIDs.
    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Publishes an event; nobody listening is fine.
    pub fn emit(&self, event: ServerEvent) {
        let _ = self.events.send(event);
    }

    /// Records a received frame in the per-account log (its last
    /// [`MAX_LOGGED_FRAMES`] or more) and publishes it.
    pub fn record(&self, email: Option<&str>, frame: LoggedFrame) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if let Some(email) = email {
            let mut state = self.lock();
            let log = state.frames.entry(email.to_owned()).or_default();
            if log.len() >= 2 * MAX_LOGGED_FRAMES {
                // A long file transfer must not grow the server without bound.
                log.drain(..MAX_LOGGED_FRAMES);
            }
            log.push(frame.clone());
        }
        self.emit(ServerEvent::Frame {
            email: email.map(str::to_owned),
            frame,
        });
    }

    /// A deterministic-looking GUID, unique within this server.
    pub fn guid(&self) -> String {
        let n = self.next_id();
        let r = random_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (r >> 32) as u32,
            (r >> 16) as u16,
            (r & 0xfff) as u16,
            (n >> 48) as u16 & 0xfff,
            n & 0xffff_ffff_ffff
        )
    }
}

/// Random bits from the OS; falls back to a time-derived value if unavailable (test
/// server only: uniqueness matters, unpredictability does not).
pub(crate) fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_ok() {
        return u64::from_le_bytes(buf);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (nanos as u64).rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15
}

/// A random token of `len` ASCII alphanumerics.
pub(crate) fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut r = random_u64();
        for _ in 0..8 {
            if out.len() == len {
                break;
            }
            let idx = (r % ALPHABET.len() as u64) as usize;
            out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'x')));
            r /= ALPHABET.len() as u64;
        }
    }
    out
}

/// A random string of `len` decimal digits (challenges, session ids).
pub(crate) fn random_digits(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut r = random_u64();
        for _ in 0..16 {
            if out.len() == len {
                break;
            }
            out.push(char::from(b'0' + (r % 10) as u8));
            r /= 10;
        }
    }
    out
}
