//! Public data types of the notification-server machine (`ns.rs`): configuration,
//! statuses (MSNP.md §5.1), lists (§4.1), the contact list, events and errors.
//! Pure data, no behaviour beyond code conversions.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use super::super::auth::Secret;
use super::super::challenge::Product;
use super::super::message::{Headers, MsgPayload};
use super::super::verb::Verb;

/// A presence status (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `NLN`
    Online,
    /// `BSY`
    Busy,
    /// `IDL`
    Idle,
    /// `BRB`
    BeRightBack,
    /// `AWY`
    Away,
    /// `PHN`
    OnPhone,
    /// `LUN`
    OutToLunch,
    /// `HDN` (appear offline; own status only)
    Hidden,
    /// `FLN` (only ever sent by the server)
    Offline,
}

impl Status {
    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            Status::Online => "NLN",
            Status::Busy => "BSY",
            Status::Idle => "IDL",
            Status::BeRightBack => "BRB",
            Status::Away => "AWY",
            Status::OnPhone => "PHN",
            Status::OutToLunch => "LUN",
            Status::Hidden => "HDN",
            Status::Offline => "FLN",
        }
    }

    /// Parses a wire code; `None` for unknown codes.
    pub fn from_code(code: &str) -> Option<Status> {
        Some(match code {
            "NLN" => Status::Online,
            "BSY" => Status::Busy,
            "IDL" => Status::Idle,
            "BRB" => Status::BeRightBack,
            "AWY" => Status::Away,
            "PHN" => Status::OnPhone,
            "LUN" => Status::OutToLunch,
            "HDN" => Status::Hidden,
            "FLN" => Status::Offline,
            _ => return None,
        })
    }
}

/// A contact list (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    /// `FL`, bit 1: people we added.
    Forward,
    /// `AL`, bit 2: allowed.
    Allow,
    /// `BL`, bit 4: blocked.
    Block,
    /// `RL`, bit 8: people who added us (server-managed).
    Reverse,
    /// `PL`, bit 16: pending (server-managed).
    Pending,
}

impl List {
    /// The wire code (`FL`, …).
    pub fn code(self) -> &'static str {
        match self {
            List::Forward => "FL",
            List::Allow => "AL",
            List::Block => "BL",
            List::Reverse => "RL",
            List::Pending => "PL",
        }
    }

    /// The list bit in `LST` (§4.1).
    pub fn bit(self) -> u8 {
        match self {
            List::Forward => 1,
            List::Allow => 2,
            List::Block => 4,
            List::Reverse => 8,
            List::Pending => 16,
        }
    }

    /// Parses a wire code.
    pub fn from_code(code: &str) -> Option<List> {
        Some(match code {
            "FL" => List::Forward,
            "AL" => List::Allow,
            "BL" => List::Block,
            "RL" => List::Reverse,
            "PL" => List::Pending,
            _ => return None,
        })
    }
}

/// `CVR` arguments (§2.3); all eight are sent (Escargot needs at least six).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// Locale id, e.g. `0x0409`.
    pub locale: String,
    /// OS type, e.g. `winnt`.
    pub os_type: String,
    /// OS version, e.g. `5.1`.
    pub os_version: String,
    /// CPU architecture, e.g. `i386`.
    pub arch: String,
    /// Client name, e.g. `MSNMSGR`.
    pub client_name: String,
    /// Client version, e.g. `7.5.0324`.
    pub client_version: String,
    /// Brand, e.g. `msmsgs`.
    pub brand: String,
}

impl Default for ClientInfo {
    fn default() -> Self {
        ClientInfo {
            locale: "0x0409".into(),
            os_type: "winnt".into(),
            os_version: "5.1".into(),
            arch: "i386".into(),
            client_name: "MSNMSGR".into(),
            client_version: "7.5.0324".into(),
            brand: "msmsgs".into(),
        }
    }
}

/// Configuration of one NS session. The password is not here: the NS machine only
/// needs the ticket, which the shell obtains with `auth.rs`.
#[derive(Debug, Clone)]
pub struct NsConfig {
    /// Account e-mail.
    pub login: String,
    /// Versions offered in `VER`, most preferred first (§2.2). Only
    /// [`super::SUPPORTED_VERSIONS`] are accepted.
    pub versions: Vec<u8>,
    /// `CVR` arguments.
    pub client_info: ClientInfo,
    /// Challenge product; `None` = `challenge::recommended_product(version)` (§3.5).
    pub product: Option<Product>,
    /// Status sent with the first `CHG` (§5.2).
    pub initial_status: Status,
    /// Capabilities for `CHG` (§5.3); default `0x50000000`.
    pub capabilities: u32,
    /// Our msnobj XML (raw; encoded when sent), MSNP9+.
    pub msn_object: Option<String>,
    /// Friendly name to set after login if the server's differs.
    pub friendly_name: Option<String>,
    /// Personal message sent with `UUX` after login (MSNP11+).
    pub personal_message: Option<String>,
    /// Reply timeout for every tracked command (§11.4, ~30 s).
    pub request_timeout: Duration,
    /// How long to wait for `QNG` (or any traffic) after `PNG` (§11.1, ~30 s).
    pub ping_timeout: Duration,
    /// MSNP16+: this endpoint's machine GUID in braces (`{…}`), the same for every
    /// login of this bridge user, so that a reconnection is the same endpoint (§2.5.1).
    pub machine_guid: Option<String>,
    /// MSNP16+: the endpoint's name shown to the user's other endpoints (§5.5).
    pub endpoint_name: String,
    /// Send `GCF trid Shields.xml` after the sync (MSNP11+, §11.5), as the official
    /// client does; harmless, matches the §2.7 transcript.
    pub send_gcf: bool,
}

impl NsConfig {
    /// Defaults per MSNP.md §12.2 for `login`.
    pub fn new(login: impl Into<String>) -> NsConfig {
        NsConfig {
            login: login.into(),
            versions: vec![12, 11, 10, 9, 8],
            client_info: ClientInfo::default(),
            product: None,
            initial_status: Status::Online,
            capabilities: 0x5000_0000,
            msn_object: None,
            friendly_name: None,
            personal_message: None,
            request_timeout: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(30),
            machine_guid: None,
            endpoint_name: "Matrix".into(),
            send_gcf: true,
        }
    }
}

/// One entry of the contact list (§4.2, §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    /// E-mail address (the id in presence lines for MSNP8–12).
    pub email: String,
    /// Server-stored friendly name (decoded); presence carries the live one (§4.4).
    pub friendly_name: String,
    /// Contact GUID (`C=`, MSNP10+, FL members only).
    pub guid: Option<String>,
    /// OR of [`List::bit`] values.
    pub lists: u8,
    /// Group ids (numbers in MSNP8–9, GUIDs in 10+).
    pub groups: Vec<String>,
    /// MSNP12 network type field.
    pub network: Option<u32>,
    /// `BPR` values (`PHH`, `MOB`, …), decoded.
    pub phones: Vec<(String, String)>,
}

impl Contact {
    /// Whether the contact is on `list`.
    pub fn on(&self, list: List) -> bool {
        self.lists & list.bit() != 0
    }
}

/// A contact group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Number (MSNP8–9) or GUID (MSNP10+).
    pub id: String,
    /// Decoded name.
    pub name: String,
}

/// The synchronised lists (§4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactList {
    /// Our account as confirmed by `USR OK`.
    pub account: String,
    /// `USR OK` verified flag.
    pub verified: Option<bool>,
    /// Our friendly name (USR OK in 8–9, `PRP MFN` in 10+).
    pub own_friendly_name: Option<String>,
    /// Contacts keyed by lower-cased e-mail.
    pub contacts: BTreeMap<String, Contact>,
    /// Groups in server order.
    pub groups: Vec<Group>,
    /// `BLP` value (`AL`/`BL`).
    pub privacy: Option<String>,
    /// `GTC` value (`A`/`N`).
    pub gtc: Option<String>,
    /// MSNP8–9 list version.
    pub list_version: Option<u32>,
}

/// A presence line (`ILN`/`NLN`, §5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Contact e-mail.
    pub contact: String,
    /// New status.
    pub status: Status,
    /// Live friendly name (decoded).
    pub friendly_name: String,
    /// Capabilities (`caps`; `capsex` dropped).
    pub caps: u32,
    /// Decoded msnobj XML; `None` when absent, `0` or the empty `<msnobj/>`.
    pub msn_object: Option<String>,
    /// `true` for the initial dump (`ILN`) after the first `CHG`.
    pub initial: bool,
}

/// Id of an `XFR SB` request (its TrID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SbRequestId(pub u32);

/// A change to our lists confirmed by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListChange {
    /// Added to a list (or to a group when `group` is set).
    ContactAdded {
        /// The list.
        list: List,
        /// E-mail.
        contact: String,
        /// GUID assigned by the server (MSNP10+ FL).
        guid: Option<String>,
        /// Group id.
        group: Option<String>,
    },
    /// Removed from a list (or only from `group`).
    ContactRemoved {
        /// The list.
        list: List,
        /// E-mail.
        contact: String,
        /// Group id.
        group: Option<String>,
    },
    /// Group created.
    GroupAdded {
        /// Server-assigned id.
        id: String,
        /// Name.
        name: String,
    },
    /// Group renamed.
    GroupRenamed {
        /// Id.
        id: String,
        /// New name.
        name: String,
    },
    /// Group removed.
    GroupRemoved {
        /// Id.
        id: String,
    },
}

/// Why login failed (§1.4, §2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// `VER trid 0` or a version we did not offer (§2.2).
    #[error("server supports none of the offered protocol versions (answered {offered:?})")]
    UnsupportedVersion {
        /// The server's answer.
        offered: Option<String>,
    },
    /// Wrong password or bad ticket (911 at `USR S`, 928).
    #[error("authentication failed (error {code})")]
    AuthenticationFailed {
        /// The error code.
        code: u16,
    },
    /// Unknown account (R2M: 911 at `USR I`; 205/208/931).
    #[error("unknown account (error {code})")]
    UnknownAccount {
        /// The error code.
        code: u16,
    },
    /// Server busy/unavailable/going down/maintenance (500, 600–605, 910, 920, 921).
    #[error("server unavailable (error {code})")]
    ServerUnavailable {
        /// The error code.
        code: u16,
    },
    /// Banned, unverified or kid account (420, 511, 923, 924).
    #[error("account not allowed to sign in (error {code})")]
    AccountNotAllowed {
        /// The error code.
        code: u16,
    },
    /// Any other numeric error during login.
    #[error("server error {code} during login")]
    Server {
        /// The error code.
        code: u16,
    },
    /// No reply to a login command within the request timeout.
    #[error("no reply to {command} during login")]
    Timeout {
        /// The command.
        command: String,
    },
}

/// Why the session ended; the shell closes the socket after seeing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// `XFR trid NS host:port …` during login: connect there and start a new session.
    Redirect {
        /// `host:port`.
        address: String,
    },
    /// Login failed.
    LoginFailed(LoginError),
    /// `OUT OTH`: signed in elsewhere; do not reconnect in a loop (§11.3).
    SignedInElsewhere,
    /// MSNP16+: another endpoint of the account asked this one to sign out (`UBN` 4
    /// `goawyplzthxbye`, or 8 `gtfo` for every endpoint, §15.3.5); do not reconnect.
    SignedOutRemotely,
    /// `OUT SSD` or an unknown `OUT` reason: reconnect with backoff.
    ServerShutdown,
    /// Plain `OUT`.
    ServerClosed,
    /// No `QNG` or traffic after `PNG` (§11.1).
    PingTimeout,
    /// The shell reported EOF/reset.
    ConnectionLost,
    /// We sent `OUT`.
    LoggedOut,
}

/// Something the bridge should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsEvent {
    /// Get a TWN ticket for this challenge (§2.4.2), then call `handle_ticket`.
    NeedTicket {
        /// The `USR … TWN S` argument, to pass through unmodified.
        tw_challenge: String,
    },
    /// Get the single sign-on tokens (§2.5.2) with this policy for
    /// `messengerclear.live.com`, then call `handle_sso_ticket`.
    NeedSsoTicket {
        /// The `USR … SSO S` policy (normally `MBI_KEY_OLD`).
        policy: String,
    },
    /// MSNP13+: logged in; read the address book (§4.5), then call
    /// `handle_address_book`.
    NeedAddressBook,
    /// Login and list sync complete; the first `CHG` follows.
    LoggedIn {
        /// Negotiated version.
        version: u8,
        /// Account from `USR OK`.
        account: String,
    },
    /// The synchronised lists (right after `LoggedIn`).
    ContactList(ContactList),
    /// The profile `MSG` after `USR OK` (§2.6).
    Profile(Headers),
    /// Any other NS `MSG` (mail, system messages, §7.6).
    NsMessage(MsgPayload),
    /// MSNP18: something a circle routed to the user (§15.4): its roster, a member
    /// leaving, a message, typing or a nudge.
    Circle(crate::circle::FromCircle),
    /// `NOT`/`IPG` payloads (§11.6), raw.
    Notification {
        /// `NOT` or `IPG`.
        verb: Verb,
        /// Raw XML.
        payload: Bytes,
    },
    /// `ILN`/`NLN`.
    PresenceChanged(Presence),
    /// `FLN`.
    ContactOffline {
        /// E-mail.
        contact: String,
    },
    /// `UBX` (§5.5); empty strings when cleared.
    PersonalMessage {
        /// E-mail.
        contact: String,
        /// `<PSM>` text.
        psm: String,
        /// `<CurrentMedia>` raw field string.
        current_media: String,
    },
    /// Our `CHG` was confirmed.
    OwnStatus {
        /// The status.
        status: Status,
    },
    /// Our rename was confirmed.
    OwnFriendlyName {
        /// The name.
        name: String,
    },
    /// Someone added us (`ADD/ADC 0 RL`).
    AddedBy {
        /// E-mail.
        contact: String,
        /// Their friendly name.
        friendly_name: String,
    },
    /// Someone removed us (`REM 0 RL`).
    RemovedBy {
        /// E-mail.
        contact: String,
    },
    /// A list change we requested was confirmed.
    ListChanged(ListChange),
    /// `RNG`: invited to a switchboard (§6.2).
    SwitchboardInvite {
        /// Session id for `ANS`.
        session_id: String,
        /// `host:port`.
        address: String,
        /// Cookie for `ANS`.
        auth: Secret,
        /// Inviter e-mail.
        inviter: String,
        /// Inviter friendly name.
        inviter_name: String,
    },
    /// `XFR SB` answered (§6.1).
    SwitchboardReady {
        /// The request.
        request: SbRequestId,
        /// `host:port`.
        address: String,
        /// Cookie for SB `USR`.
        auth: Secret,
    },
    /// `XFR SB` refused (`Some(code)`, e.g. 913) or timed out (`None`).
    SwitchboardFailed {
        /// The request.
        request: SbRequestId,
        /// Error code.
        code: Option<u16>,
    },
    /// A numeric error not consumed otherwise.
    ServerError {
        /// TrID.
        trid: Option<u32>,
        /// Code (see `error::description`).
        code: u16,
        /// The command it answers, when known.
        command: Option<Verb>,
    },
    /// A command got no reply within the request timeout.
    /// The server answered command `trid` (one returned by a command method) successfully;
    /// any event describing the result came before this one.
    Replied { trid: u32 },
    RequestTimedOut {
        /// TrID.
        trid: u32,
        /// Verb.
        command: Verb,
    },
    /// The session is over.
    Closed(CloseReason),
}

/// Why a command from the bridge was refused locally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not (or no longer) logged in, or not waiting for a ticket.
    #[error("the NS session is not in a state that accepts this command")]
    NotOnline,
    /// Not available in the negotiated version (§12.1).
    #[error("{command} is not available in MSNP{version}")]
    Unsupported {
        /// Command.
        command: &'static str,
        /// Negotiated version.
        version: u8,
    },
    /// The contact (or its GUID) is not in the list.
    #[error("contact not in the contact list")]
    UnknownContact,
    /// A bad argument.
    #[error("invalid {what}")]
    InvalidArgument {
        /// What.
        what: &'static str,
    },
}
