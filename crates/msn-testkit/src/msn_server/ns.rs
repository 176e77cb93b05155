//! Notification-server connection handler (MSNP.md §2, §3, §4.2–§4.3, §5, §6.1–§6.2,
//! §11): version negotiation, TWN login against tickets from `passport`, the post-login
//! burst, `SYN`, presence (`CHG` → `ILN`/`NLN`/`FLN` fan-out), `UUX`/`UBX`,
//! `PRP`/`REA`, list and group commands per version, `XFR SB`, `CHL`/`QRY`,
//! `PNG`/`QNG`, `OUT OTH` on a second login, from MSNP13 the offline messages'
//! `Mail-Data` after an endpoint's first `CHG` (built by `oim`), and on MSNP18 the
//! circles' `USR SHA`, `ADL`, `PUT` and `SDG` (`ns/circles`).
//!
//! Behaves like R2M where the two revival servers differ (§2.8), with Escargot's
//! stricter checks where they catch client bugs (silently ignored `CHG` without caps,
//! closing on `PNG` before login). One task per connection; everything shared goes
//! through `state::Shared`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::net::TcpStream;

use msnp::challenge::{ALL_PRODUCTS, response};
use msnp::frame::Frame;
use msnp::verb::Verb;

mod address_list;
mod circles;
mod endpoints;
mod sso;

pub(crate) use address_list::change_lists;

use super::accounts::{ContactEntry, Group, Lists};
use super::conn::{self, ConnTx, Read, error};
use super::presence::{self, fan_out, refresh_one};
use super::state::{
    CookieKind, Endpoint, SbCookie, ServerEvent, ServerKind, Session, Shared, State, random_digits,
    random_token,
};

/// Whether the connection goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

const SHIELDS: &str = "<?xml version=\"1.0\" encoding=\"utf-8\" ?><config><shield><cli maj=\"7\" min=\"0\" minbld=\"0\" maxbld=\"9999\" deny=\" \" /></shield><block></block></config>";
pub(super) const TWN_POLICY: &str = "ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1";
const SYN_STAMP: &str = "2000-01-01T00:00:00.0-00:00";
const STATUSES: &[&str] = &["NLN", "BSY", "IDL", "BRB", "AWY", "PHN", "LUN", "HDN"];
/// Verbs of other MSNP generations: `502` (command disabled), as R2M answers.
const OTHER_GENERATION: &[&str] = &[
    "ADL", "RML", "FQY", "UUN", "UUM", "URL", "SDC", "IMS", "FND", "SND", "LST", "LSG",
];

/// Serves one NS connection until it closes.
pub(crate) async fn run(stream: TcpStream, shared: Arc<Shared>) {
    let peer = stream.peer_addr().ok();
    let (mut reader, conn) = conn::start(stream, &shared, &shared.shutdown);
    shared.lock().ns_conns.insert(conn.id, conn.clone());
    let mut ns = Ns {
        shared: shared.clone(),
        conn: conn.clone(),
        version: 0,
        email: None,
        logged_in: false,
        peer,
        last_challenge: Instant::now(),
        sso_nonce: None,
        circle: circles::CircleSession::default(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        let flow = tokio::select! {
            () = conn.cancel.cancelled() => break,
            _ = tick.tick() => ns.on_tick(),
            read = reader.next(ns.version) => match read {
                Read::Frame(frame) => ns.handle(frame),
                Read::Closed => break,
            },
        };
        if flow == Flow::Close {
            break;
        }
    }
    ns.cleanup();
    conn.close();
}

/// Sends `CHL 0 <challenge>` to a logged-in account; `false` when it is not online.
pub(crate) fn send_challenge(shared: &Shared, email: &str) -> bool {
    let mut state = shared.lock();
    let Some(session) = state.sessions.get_mut(email) else {
        return false;
    };
    let chl = random_digits(20);
    session.challenge = Some((
        chl.clone(),
        Instant::now() + shared.config.challenge_timeout,
    ));
    session.conn.send(Frame::command(Verb::CHL, 0, [chl]));
    true
}

struct Ns {
    shared: Arc<Shared>,
    conn: ConnTx,
    version: u8,
    /// Set by `USR TWN I`.
    email: Option<String>,
    logged_in: bool,
    peer: Option<std::net::SocketAddr>,
    last_challenge: Instant,
    /// The nonce of `USR … SSO S`, until the client answers it (MSNP15+).
    sso_nonce: Option<String>,
    /// What this connection did towards circles (MSNP18).
    circle: circles::CircleSession,
}

fn parse_list(token: Option<&str>) -> Option<Lists> {
    token.and_then(Lists::from_name)
}

impl Ns {
    fn send(&self, frame: Frame) {
        self.conn.send(frame);
    }

    fn err(&self, code: u16, trid: Option<u32>) -> Flow {
        self.send(error(code, trid));
        Flow::Continue
    }

    fn me(&self) -> String {
        self.email.clone().unwrap_or_default()
    }

    fn on_tick(&mut self) -> Flow {
        let Some(email) = self.email.clone().filter(|_| self.logged_in) else {
            return Flow::Continue;
        };
        let now = Instant::now();
        let (expired, may_challenge) = {
            let state = self.shared.lock();
            let Some(s) = state.sessions.get(&email) else {
                return Flow::Continue;
            };
            let expired = s.challenge.as_ref().is_some_and(|(_, d)| *d <= now);
            (expired, s.status.is_some() && s.challenge.is_none())
        };
        if expired {
            // No answer in time: official servers dropped the connection (§3.1).
            return Flow::Close;
        }
        if let Some(every) = self.shared.config.challenge_interval
            && may_challenge
            && now.duration_since(self.last_challenge) >= every
        {
            self.last_challenge = now;
            send_challenge(&self.shared, &email);
        }
        Flow::Continue
    }

    fn handle(&mut self, frame: Frame) -> Flow {
        self.shared
            .record(self.email.as_deref(), conn::redact(ServerKind::Ns, &frame));
        if let Some(email) = &self.email
            && self.shared.faults.is_silenced(email)
        {
            return Flow::Continue;
        }
        let trid = frame.trid;
        match frame.verb.as_str() {
            "VER" => self.ver(&frame),
            "CVR" => self.cvr(&frame),
            "USR" => self.usr(&frame),
            "OUT" => Flow::Close,
            // Escargot closes when PNG arrives before login (§11.1).
            "PNG" if !self.logged_in => Flow::Close,
            "PNG" => {
                let args: Vec<String> = if self.version >= 9 {
                    vec![self.shared.config.qng_seconds.to_string()]
                } else {
                    Vec::new()
                };
                self.send(Frame::untracked(Verb::QNG, args));
                Flow::Continue
            }
            _ if !self.logged_in => self.err(302, trid),
            // MSNP13+: the lists are in the address book; SYN and the ADC family are
            // gone (Escargot: 502, §4.5).
            "SYN" | "GTC" | "ADD" | "ADC" | "REM" | "ADG" | "RMG" | "REG" | "SBP"
                if self.version >= 13 =>
            {
                self.err(502, trid)
            }
            "ADL" | "RML" if self.version >= 13 => self.address_list(&frame),
            "UUN" if self.version >= 16 => self.uun(&frame),
            "PUT" if self.version >= 18 => self.put(&frame),
            "SDG" if self.version >= 18 => self.sdg(&frame),
            // Escargot closes on the circle verbs below MSNP18.
            "PUT" | "SDG" => Flow::Close,
            "FQY" if self.version >= 13 => {
                let payload = frame.payload.clone().unwrap_or_default();
                self.send(
                    Frame::command(Verb::FQY, trid.unwrap_or(0), Vec::<String>::new())
                        .with_payload(payload),
                );
                Flow::Continue
            }
            "SYN" => self.syn(&frame),
            "GCF" if self.version >= 10 => {
                self.send(
                    Frame::command(Verb::GCF, trid.unwrap_or(0), ["Shields.xml"])
                        .with_payload(Bytes::from_static(SHIELDS.as_bytes())),
                );
                Flow::Continue
            }
            "CHG" => self.chg(&frame),
            "UUX" if self.version >= 11 => self.uux(&frame),
            "PRP" if self.version >= 10 => self.prp(&frame),
            "REA" if self.version <= 9 => self.rea(&frame),
            "BLP" | "GTC" => self.privacy(&frame),
            "ADD" if self.version <= 9 => self.add(&frame),
            "ADC" if self.version >= 10 => self.adc(&frame),
            "REM" => self.rem(&frame),
            "ADG" => self.adg(&frame),
            "RMG" => self.rmg(&frame),
            "REG" => self.reg(&frame),
            "SBP" if self.version >= 10 => {
                let me = self.me();
                let known =
                    self.shared.lock().accounts.get(&me).is_some_and(|a| {
                        frame.arg(0).is_some_and(|g| a.contact_by_guid(g).is_some())
                    });
                if !known {
                    return self.err(208, trid);
                }
                self.send(Frame::command(Verb::SBP, trid.unwrap_or(0), &frame.args));
                Flow::Continue
            }
            "XFR" => self.xfr(&frame),
            "QRY" => self.qry(&frame),
            "GCF" | "UUX" | "PRP" | "REA" | "ADD" | "ADC" | "SBP" => self.err(502, trid),
            v if OTHER_GENERATION.contains(&v) => self.err(502, trid),
            _ => self.err(200, trid),
        }
    }

    fn ver(&mut self, f: &Frame) -> Flow {
        // Escargot closes when the TrID is not an integer (§1.2).
        let Some(trid) = f.trid else {
            return Flow::Close;
        };
        if self.version != 0 {
            return self.err(715, Some(trid));
        }
        // R2M: the first version in the client's list that the server knows (§2.2).
        let chosen = f.args.iter().find_map(|a| {
            let v = a.strip_prefix("MSNP")?.parse::<u8>().ok()?;
            self.shared.config.versions.contains(&v).then_some(v)
        });
        match chosen {
            Some(v) => {
                self.version = v;
                self.send(Frame::command(Verb::VER, trid, [format!("MSNP{v}")]));
                Flow::Continue
            }
            None => {
                self.send(Frame::command(Verb::VER, trid, ["0"]));
                Flow::Close
            }
        }
    }

    fn cvr(&mut self, f: &Frame) -> Flow {
        // Escargot needs at least 6 arguments and echoes the client version (§2.3).
        let (Some(trid), Some(version)) = (f.trid, f.arg(5)) else {
            return Flow::Close;
        };
        self.send(Frame::command(
            Verb::CVR,
            trid,
            [
                version,
                version,
                version,
                "http://127.0.0.1/download",
                "http://127.0.0.1/info",
            ],
        ));
        Flow::Continue
    }

    /// The lower-cased `email` if it has an account; else `911` (R2M disconnects
    /// then, §2.4.1) and `None`.
    fn known_account(&self, email: &str, trid: Option<u32>) -> Option<String> {
        let email = email.to_lowercase();
        let known = self.shared.lock().accounts.contains_key(&email);
        if !known {
            self.shared.emit(ServerEvent::LoginFailed { email });
            self.send(error(911, trid));
            return None;
        }
        Some(email)
    }

    fn usr(&mut self, f: &Frame) -> Flow {
        let trid = f.trid;
        if f.arg(0) == Some("SHA") {
            return self.usr_sha(f);
        }
        if self.logged_in {
            return self.err(207, trid);
        }
        // Escargot accepts TWN for MSNP8–14 and SSO for MSNP15+, and closes otherwise
        // (§2.4.1, §2.5.1).
        let scheme = if self.version >= 15 { "SSO" } else { "TWN" };
        if self.version < 8 || f.arg(0) != Some(scheme) {
            return Flow::Close;
        }
        if scheme == "SSO" {
            return self.usr_sso(f);
        }
        match (f.arg(1), f.arg(2)) {
            (Some("I"), Some(email)) => {
                let Some(email) = self.known_account(email, trid) else {
                    return Flow::Close;
                };
                self.email = Some(email);
                self.send(Frame::command(
                    Verb::USR,
                    trid.unwrap_or(0),
                    ["TWN", "S", TWN_POLICY],
                ));
                Flow::Continue
            }
            (Some("S"), Some(ticket)) => self.login(trid, ticket, None),
            _ => self.err(201, trid),
        }
    }

    fn login(&mut self, trid: Option<u32>, ticket: &str, machine_guid: Option<String>) -> Flow {
        let Some(email) = self.email.clone() else {
            self.send(error(911, trid));
            return Flow::Close;
        };
        let mut state = self.shared.lock();
        let now = Instant::now();
        let valid = state
            .tickets
            .get(ticket)
            .is_some_and(|t| t.email == email && t.expires > now);
        if !valid {
            drop(state);
            self.shared.emit(ServerEvent::LoginFailed { email });
            self.send(error(911, trid));
            return Flow::Close;
        }
        // The OIM services find this endpoint by the ticket it signed in with.
        state
            .login_tickets
            .insert(ticket.to_owned(), (email.clone(), self.conn.id));
        // A second login kicks the first (R2M always, §2.8 / §11.3), except that an
        // MSNP16+ login with a new machine GUID joins the account's MSNP16+ endpoints;
        // one reusing a GUID in use boots every endpoint (Escargot, §15.3.4).
        let beside = state.sessions.get(&email).is_some_and(|old| {
            old.version >= 16
                && machine_guid
                    .as_deref()
                    .is_some_and(|guid| self.version >= 16 && !old.has_guid(guid))
        });
        if beside {
            if let (Some(old), Some(guid)) = (state.sessions.get_mut(&email), machine_guid) {
                old.others.push(Endpoint {
                    conn: self.conn.clone(),
                    version: self.version,
                    guid,
                    changed: false,
                    name: None,
                });
            }
        } else {
            if let Some(old) = state.sessions.remove(&email) {
                let was_visible = old.visible_status().is_some();
                for (conn, _, _) in old.endpoints() {
                    conn.send(Frame::untracked(Verb::OUT, ["OTH"]));
                    conn.close();
                }
                fan_out(&state, &email, was_visible);
            }
            state.sessions.insert(
                email.clone(),
                Session {
                    conn: self.conn.clone(),
                    version: self.version,
                    status: None,
                    changed: false,
                    endpoint_name: None,
                    others: Vec::new(),
                    caps: "0".to_owned(),
                    msnobj: None,
                    challenge: None,
                    machine_guid,
                },
            );
        }
        let (name, member_id) = state
            .accounts
            .get(&email)
            .map(|a| (a.name_enc.clone(), a.member_id))
            .unwrap_or_else(|| (email.clone(), 0));
        drop(state);
        self.logged_in = true;
        let t = trid.unwrap_or(0);
        let ok = if self.version <= 9 {
            Frame::command(
                Verb::USR,
                t,
                ["OK", email.as_str(), name.as_str(), "1", "0"],
            )
        } else {
            Frame::command(Verb::USR, t, ["OK", email.as_str(), "1", "0"])
        };
        self.send(ok);
        if self.version >= 10 {
            self.send(Frame::command(Verb::SBS, 0, ["null"]));
        }
        self.send(
            Frame::untracked(Verb::MSG, ["Hotmail", "Hotmail"])
                .with_payload(self.profile(member_id)),
        );
        // MSNP16+: the account's (empty) personal message for its endpoints (§2.6).
        if self.version >= 16 {
            let ubx = presence::address_args(&email, self.version);
            self.send(Frame::untracked(Verb::UBX, ubx).with_payload(Bytes::new()));
        }
        self.shared.emit(ServerEvent::LoggedIn {
            email,
            version: self.version,
        });
        Flow::Continue
    }

    /// The `text/x-msmsgsprofile` message sent after `USR … OK` (§2.6).
    fn profile(&self, member_id: u64) -> Bytes {
        let login_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (ip, port) = self.peer.map_or(("127.0.0.1".to_owned(), 0), |p| {
            (p.ip().to_string(), p.port())
        });
        let mut p = String::from(
            "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsprofile; charset=UTF-8\r\n",
        );
        p.push_str(&format!("LoginTime: {login_time}\r\nEmailEnabled: 0\r\n"));
        p.push_str(&format!(
            "MemberIdHigh: {}\r\nMemberIdLow: {}\r\n",
            member_id >> 32,
            member_id & 0xffff_ffff
        ));
        p.push_str("lang_preference: 1033\r\npreferredEmail: \r\ncountry: \r\nPostalCode: \r\nGender: \r\nKid: 0\r\nAge: \r\nBirthday: \r\nWallet: \r\nsid: 507\r\nkv: 2\r\n");
        p.push_str(&format!(
            "MSPAuth: {}\r\nClientIP: {ip}\r\nClientPort: {port}\r\n",
            random_token(20)
        ));
        if self.version >= 10 {
            p.push_str("ABCHMigrated: 1\r\n");
        }
        p.push_str("\r\n");
        Bytes::from(p)
    }

    fn syn(&mut self, f: &Frame) -> Flow {
        let trid = f.trid.unwrap_or(0);
        let me = self.me();
        let state = self.shared.lock();
        let Some(account) = state.accounts.get(&me) else {
            return self.err(603, f.trid);
        };
        let contacts: Vec<&ContactEntry> = account
            .contacts
            .values()
            .filter(|c| !c.lists.is_empty())
            .collect();
        let blp = if account.allow_all { "AL" } else { "BL" };
        let v = self.version;
        if v <= 9 {
            self.send(Frame::command(
                Verb::SYN,
                trid,
                [
                    account.list_version.to_string(),
                    contacts.len().to_string(),
                    (account.groups.len() + 1).to_string(),
                ],
            ));
        } else {
            self.send(Frame::command(
                Verb::SYN,
                trid,
                [
                    SYN_STAMP.to_owned(),
                    SYN_STAMP.to_owned(),
                    contacts.len().to_string(),
                    account.groups.len().to_string(),
                ],
            ));
        }
        self.send(Frame::untracked(Verb::GTC, [account.gtc.as_str()]));
        self.send(Frame::untracked(Verb::BLP, [blp]));
        if v >= 10 {
            self.send(Frame::untracked(
                Verb::PRP,
                ["MFN", account.name_enc.as_str()],
            ));
            for g in &account.groups {
                self.send(Frame::untracked(
                    Verb::LSG,
                    [g.name_enc.as_str(), g.guid.as_str()],
                ));
            }
        } else {
            self.send(Frame::untracked(Verb::LSG, ["0", "Other%20Contacts", "0"]));
            for g in &account.groups {
                self.send(Frame::untracked(
                    Verb::LSG,
                    [g.id.to_string(), g.name_enc.clone(), "0".to_owned()],
                ));
            }
        }
        for c in contacts {
            // Pending is the address book's (MSNP13+); R2M's lists have no such bit.
            let bits = c.lists.without(Lists::PL).0.to_string();
            let in_fl = c.lists.contains(Lists::FL);
            let mut args: Vec<String> = if v >= 10 {
                let mut a = vec![format!("N={}", c.email), format!("F={}", c.name_enc)];
                if in_fl {
                    a.push(format!("C={}", c.guid));
                }
                a.push(bits);
                if v >= 12 {
                    a.push("1".to_owned());
                }
                a
            } else {
                vec![c.email.clone(), c.name_enc.clone(), bits]
            };
            if in_fl {
                let groups: Vec<String> = if v >= 10 {
                    c.groups
                        .iter()
                        .filter_map(|id| account.groups.iter().find(|g| g.id == *id))
                        .map(|g| g.guid.clone())
                        .collect()
                } else if c.groups.is_empty() {
                    vec!["0".to_owned()]
                } else {
                    c.groups.iter().map(u32::to_string).collect()
                };
                if !groups.is_empty() {
                    args.push(groups.join(","));
                }
                self.send(Frame::untracked(Verb::LST, args));
                self.send(Frame::untracked(Verb::BPR, ["MOB", "N"]));
            } else {
                // R2M leaves a trailing space when a contact has no groups (§1.1).
                self.conn.raw(format!("LST {} \r\n", args.join(" ")));
            }
        }
        Flow::Continue
    }

    fn chg(&mut self, f: &Frame) -> Flow {
        let (Some(trid), Some(status)) = (f.trid, f.arg(0)) else {
            return self.err(201, f.trid);
        };
        // Escargot silently ignores a CHG without capabilities (§5.2).
        let Some(caps) = f.arg(1) else {
            return Flow::Continue;
        };
        // MSNP16+: `caps:capsex` (§5.2).
        let caps_ok = match caps.split_once(':') {
            Some((c, x)) if self.version >= 16 => {
                c.parse::<u32>().is_ok() && x.parse::<u32>().is_ok()
            }
            Some(_) => false,
            None => caps.parse::<u32>().is_ok(),
        };
        if !STATUSES.contains(&status) || !caps_ok {
            return self.err(201, Some(trid));
        }
        // `0` is "no picture" on MSNP16+.
        let msnobj = if self.version >= 9 { f.arg(2) } else { None }.filter(|o| *o != "0");
        let me = self.me();
        let mut state = self.shared.lock();
        let Some(session) = state.sessions.get_mut(&me) else {
            return Flow::Close;
        };
        let first = !session.changed_on(self.conn.id);
        session.mark_changed(self.conn.id);
        let was_visible = session.visible_status().is_some();
        let same_status = session.status.as_deref() == Some(status);
        session.status = Some(status.to_owned());
        session.caps = caps.to_owned();
        session.msnobj = msnobj.map(str::to_owned);
        // Escargot echoes the arguments as they came (§2.7).
        let echo: Vec<String> = f.args.iter().map(str::to_owned).collect();
        self.send(Frame::command(Verb::CHG, trid, echo));
        if first {
            self.initial_presence(&state, &me, trid);
            // MSNP13+: the stored offline messages (§15.1.1).
            if self.version >= 13 {
                self.send(
                    Frame::untracked(Verb::MSG, ["Hotmail", "Hotmail"])
                        .with_payload(super::oim::login_body(&state, &me)),
                );
            }
            self.last_challenge = Instant::now();
        }
        // The account's other MSNP16+ endpoints see its status as a contact's (§15.3.2).
        let others: Vec<(ConnTx, u8)> = state
            .sessions
            .get(&me)
            .map(Session::live_endpoints)
            .unwrap_or_default()
            .into_iter()
            .filter(|(conn, version)| conn.id != self.conn.id && *version >= 16)
            .collect();
        for (conn, version) in others {
            for frame in presence::online_frames(&state, &me, version, None) {
                conn.send(frame);
            }
        }
        // Escargot tells contacts only about status changes (§2.8).
        if !(state.escargot_presence && same_status) {
            fan_out(&state, &me, was_visible);
        }
        drop(state);
        self.shared.emit(ServerEvent::StatusChanged {
            email: me,
            status: status.to_owned(),
        });
        Flow::Continue
    }

    /// `ILN` (with the TrID of the first `CHG`) for every visible FL contact (§5.2, §5.4).
    fn initial_presence(&self, state: &State, me: &str, trid: u32) {
        let Some(account) = state.accounts.get(me) else {
            return;
        };
        for contact in account.contacts.values() {
            if contact.lists.contains(Lists::FL) && state.visible_to(&contact.email, me).is_some() {
                for frame in
                    presence::online_frames(state, &contact.email, self.version, Some(trid))
                {
                    self.send(frame);
                }
            }
        }
    }

    fn uux(&mut self, f: &Frame) -> Flow {
        let trid = f.trid.unwrap_or(0);
        let me = self.me();
        let payload = f.payload.clone().unwrap_or_default();
        // MSNP16+ clients also describe their endpoint with UUX (§5.5): only a `<Data>`
        // document (or an empty one) is the personal message.
        let root = msnp::xml::Element::parse(&String::from_utf8_lossy(&payload));
        let is_psm = payload.is_empty() || root.as_ref().is_ok_and(|r| r.name == "Data");
        if !is_psm && root.is_err() {
            return self.err(201, f.trid);
        }
        self.send(Frame::command(Verb::UUX, trid, ["0"]));
        if !is_psm {
            // The endpoint's name, for the account's other endpoints (§15.3.1).
            let name = root
                .ok()
                .filter(|r| r.name == "PrivateEndpointData")
                .and_then(|r| r.find("EpName").map(|n| n.text().to_owned()));
            if let Some(name) = name {
                let mut state = self.shared.lock();
                if let Some(s) = state.sessions.get_mut(&me) {
                    if s.conn.id == self.conn.id {
                        s.endpoint_name = Some(name);
                    } else if let Some(e) = s.others.iter_mut().find(|e| e.conn.id == self.conn.id)
                    {
                        e.name = Some(name);
                    }
                }
            }
            return Flow::Continue;
        }
        let mut state = self.shared.lock();
        if let Some(a) = state.accounts.get_mut(&me) {
            a.psm = payload;
        }
        if state
            .sessions
            .get(&me)
            .and_then(Session::visible_status)
            .is_some()
        {
            for (_, conn, version) in state.watchers(&me) {
                if version >= 11 {
                    conn.send(presence::ubx(&state, &me, version));
                }
            }
        }
        Flow::Continue
    }

    fn set_name(&self, state: &mut State, name: &str) {
        let me = self.me();
        if let Some(a) = state.accounts.get_mut(&me) {
            a.name_enc = name.to_owned();
        }
        let visible = state
            .sessions
            .get(&me)
            .and_then(Session::visible_status)
            .is_some();
        if visible {
            fan_out(state, &me, true);
        }
    }

    fn prp(&mut self, f: &Frame) -> Flow {
        let trid = f.trid.unwrap_or(0);
        match (f.arg(0), f.arg(1)) {
            (Some("MFN"), Some(name)) => {
                if name.len() > 387 {
                    return self.err(209, f.trid);
                }
                let mut state = self.shared.lock();
                self.send(Frame::command(Verb::PRP, trid, ["MFN", name]));
                self.set_name(&mut state, name);
                Flow::Continue
            }
            (Some("MFN"), None) | (None, _) => self.err(201, f.trid),
            _ => {
                self.send(Frame::command(Verb::PRP, trid, &f.args));
                Flow::Continue
            }
        }
    }

    fn rea(&mut self, f: &Frame) -> Flow {
        let me = self.me();
        let (Some(email), Some(name)) = (f.arg(0), f.arg(1)) else {
            return self.err(201, f.trid);
        };
        if email.to_lowercase() != me {
            return self.err(201, f.trid);
        }
        if name.len() > 387 {
            return self.err(209, f.trid);
        }
        let mut state = self.shared.lock();
        let version = bump(&mut state, &me);
        self.send(Frame::command(
            Verb::REA,
            f.trid.unwrap_or(0),
            [version.to_string(), me.clone(), name.to_owned()],
        ));
        self.set_name(&mut state, name);
        Flow::Continue
    }

    fn privacy(&mut self, f: &Frame) -> Flow {
        let is_blp = f.verb == Verb::BLP;
        let value = f.arg(0).unwrap_or_default();
        let valid = if is_blp {
            matches!(value, "AL" | "BL")
        } else {
            matches!(value, "A" | "N")
        };
        if !valid {
            return self.err(201, f.trid);
        }
        let me = self.me();
        let mut state = self.shared.lock();
        let before = can_see_me(&state, &me);
        if let Some(a) = state.accounts.get_mut(&me) {
            if is_blp {
                a.allow_all = value == "AL";
            } else {
                a.gtc = value.to_owned();
            }
        }
        let mut args = Vec::new();
        if self.version <= 9 {
            args.push(bump(&mut state, &me).to_string());
        }
        args.push(value.to_owned());
        self.send(Frame::command(f.verb, f.trid.unwrap_or(0), args));
        privacy_changed(&state, &me, &before);
        Flow::Continue
    }

    /// MSNP8–9 `ADD trid LIST email friendly [group]` (§4.2).
    fn add(&mut self, f: &Frame) -> Flow {
        let trid = f.trid;
        let Some(list) =
            parse_list(f.arg(0)).filter(|l| [Lists::FL, Lists::AL, Lists::BL].contains(l))
        else {
            return self.err(201, trid);
        };
        let Some(email) = f.arg(1).map(str::to_lowercase) else {
            return self.err(201, trid);
        };
        let name = f.arg(2).unwrap_or(&email).to_owned();
        let group = f.arg(3).and_then(|g| g.parse::<u32>().ok()).unwrap_or(0);
        let me = self.me();
        let mut state = self.shared.lock();
        if !state.accounts.contains_key(&email) {
            return self.err(205, trid);
        }
        let Some(account) = state.accounts.get(&me) else {
            return self.err(603, trid);
        };
        if account.lists_of(&email).contains(list) {
            return self.err(215, trid);
        }
        if list == Lists::FL && group != 0 && !account.groups.iter().any(|g| g.id == group) {
            return self.err(224, trid);
        }
        let before = can_see_me(&state, &me);
        let guid = self.shared.guid();
        let entry = entry_mut(&mut state, &me, &email, &name, guid);
        entry.lists = answered(entry.lists | list);
        if list == Lists::FL && group != 0 && !entry.groups.contains(&group) {
            entry.groups.push(group);
        }
        let version = bump(&mut state, &me);
        let mut args = vec![
            f.arg(0).unwrap_or_default().to_owned(),
            version.to_string(),
            email.clone(),
            name,
        ];
        if list == Lists::FL {
            args.push(group.to_string());
        }
        self.send(Frame::command(Verb::ADD, trid.unwrap_or(0), args));
        self.after_add(&mut state, list, &email, &before);
        Flow::Continue
    }

    /// Side effects of adding `email` to `list`: RL bookkeeping and notification (§4.2,
    /// §4.3), presence of the new contact, visibility changes for AL/BL.
    fn after_add(&self, state: &mut State, list: Lists, email: &str, before: &[String]) {
        let me = self.me();
        if list == Lists::FL {
            let my_name = state.name_of(&me);
            let guid = self.shared.guid();
            let entry = entry_mut(state, email, &me, &my_name, guid);
            entry.lists = added_by(entry.lists);
            tell_reverse(state, email, &me, true);
            refresh_one(state, email, &me);
        } else {
            privacy_changed(state, &me, before);
        }
    }

    /// MSNP10+ `ADC` (§4.3).
    fn adc(&mut self, f: &Frame) -> Flow {
        let trid = f.trid;
        let Some(list) =
            parse_list(f.arg(0)).filter(|l| [Lists::FL, Lists::AL, Lists::BL].contains(l))
        else {
            return self.err(201, trid);
        };
        let rest = || f.args.iter().skip(1);
        let n = rest()
            .find_map(|a| a.strip_prefix("N="))
            .map(str::to_lowercase);
        let fname = rest().find_map(|a| a.strip_prefix("F="));
        let c = rest().find_map(|a| a.strip_prefix("C="));
        let group = rest().find(|a| !a.contains('='));
        let me = self.me();
        let mut state = self.shared.lock();
        if let (Some(guid), Some(group), true) = (c, group, list == Lists::FL) {
            // Put an FL contact into a group.
            let Some(account) = state.accounts.get_mut(&me) else {
                return self.err(603, trid);
            };
            let Some(gid) = account.group_by_token(group).map(|g| g.id) else {
                return self.err(224, trid);
            };
            let Some(entry) = account.contacts.values_mut().find(|e| e.guid == guid) else {
                return self.err(208, trid);
            };
            if entry.groups.contains(&gid) {
                return self.err(215, trid);
            }
            entry.groups.push(gid);
            self.send(Frame::command(Verb::ADC, trid.unwrap_or(0), &f.args));
            return Flow::Continue;
        }
        let Some(email) = n else {
            return self.err(201, trid);
        };
        if !state.accounts.contains_key(&email) {
            return self.err(208, trid);
        }
        let Some(account) = state.accounts.get(&me) else {
            return self.err(603, trid);
        };
        if account.lists_of(&email).contains(list) {
            return self.err(215, trid);
        }
        let gid = match group {
            Some(g) => match account.group_by_token(g) {
                Some(g) => Some(g.id),
                None => return self.err(224, trid),
            },
            None => None,
        };
        let before = can_see_me(&state, &me);
        let name = fname.unwrap_or(&email).to_owned();
        let guid = self.shared.guid();
        let entry = entry_mut(&mut state, &me, &email, &name, guid);
        entry.lists = answered(entry.lists | list);
        if let Some(gid) = gid.filter(|_| list == Lists::FL)
            && !entry.groups.contains(&gid)
        {
            entry.groups.push(gid);
        }
        let guid = entry.guid.clone();
        bump(&mut state, &me);
        let mut args = vec![
            f.arg(0).unwrap_or_default().to_owned(),
            format!("N={email}"),
        ];
        if list == Lists::FL {
            args.push(format!("F={name}"));
            args.push(format!("C={guid}"));
            if let Some(g) = group {
                args.push(g.to_owned());
            }
        }
        self.send(Frame::command(Verb::ADC, trid.unwrap_or(0), args));
        self.after_add(&mut state, list, &email, &before);
        Flow::Continue
    }

    fn rem(&mut self, f: &Frame) -> Flow {
        let trid = f.trid;
        let Some(list) =
            parse_list(f.arg(0)).filter(|l| [Lists::FL, Lists::AL, Lists::BL].contains(l))
        else {
            return self.err(201, trid);
        };
        let Some(target) = f.arg(1) else {
            return self.err(201, trid);
        };
        let group = f.arg(2);
        let me = self.me();
        let mut state = self.shared.lock();
        let Some(account) = state.accounts.get(&me) else {
            return self.err(603, trid);
        };
        // MSNP10+ removes FL entries by contact GUID, AL/BL by address (§4.3).
        let email = if self.version >= 10 && list == Lists::FL {
            match account.contact_by_guid(target) {
                Some(c) => c.email.clone(),
                None => return self.err(216, trid),
            }
        } else {
            target.trim_start_matches("N=").to_lowercase()
        };
        if !account.lists_of(&email).contains(list) {
            return self.err(216, trid);
        }
        let gid = match group {
            Some(g) if list == Lists::FL => match account.group_by_token(g) {
                Some(g) => Some(g.id),
                None if self.version <= 9 && g == "0" => Some(0),
                None => return self.err(224, trid),
            },
            _ => None,
        };
        let before = can_see_me(&state, &me);
        let Some(entry) = state
            .accounts
            .get_mut(&me)
            .and_then(|a| a.contacts.get_mut(&email))
        else {
            return self.err(216, trid);
        };
        if let Some(gid) = gid {
            let in_group = entry.groups.contains(&gid) || (gid == 0 && entry.groups.is_empty());
            if !in_group {
                return self.err(225, trid);
            }
            entry.groups.retain(|g| *g != gid);
        } else {
            entry.lists = entry.lists.without(list);
            if list == Lists::FL {
                entry.groups.clear();
            }
        }
        let version = bump(&mut state, &me);
        let mut args = vec![f.arg(0).unwrap_or_default().to_owned()];
        if self.version <= 9 {
            args.push(version.to_string());
        }
        args.extend(f.args.iter().skip(1).map(str::to_owned));
        self.send(Frame::command(Verb::REM, trid.unwrap_or(0), args));
        if list == Lists::FL && gid.is_none() {
            if let Some(e) = state
                .accounts
                .get_mut(&email)
                .and_then(|a| a.contacts.get_mut(&me))
            {
                e.lists = e.lists.without(Lists::RL | Lists::PL);
            }
            tell_reverse(&mut state, &email, &me, false);
            if let Some(a) = state.accounts.get_mut(&email) {
                a.prune();
            }
        } else if list != Lists::FL {
            privacy_changed(&state, &me, &before);
        }
        if let Some(a) = state.accounts.get_mut(&me) {
            a.prune();
        }
        Flow::Continue
    }

    fn adg(&mut self, f: &Frame) -> Flow {
        let trid = f.trid;
        let Some(name) = f.arg(0) else {
            return self.err(201, trid);
        };
        if name.len() > 61 {
            return self.err(229, trid);
        }
        let me = self.me();
        let guid = self.shared.guid();
        let mut state = self.shared.lock();
        let Some(account) = state.accounts.get_mut(&me) else {
            return self.err(603, trid);
        };
        if account.groups.iter().any(|g| g.name_enc == name) {
            return self.err(228, trid);
        }
        let id = account.groups.iter().map(|g| g.id).max().unwrap_or(0) + 1;
        account.groups.push(Group {
            id,
            guid: guid.clone(),
            name_enc: name.to_owned(),
        });
        let version = bump(&mut state, &me);
        let t = trid.unwrap_or(0);
        if self.version <= 9 {
            self.send(Frame::command(
                Verb::ADG,
                t,
                [
                    version.to_string(),
                    name.to_owned(),
                    id.to_string(),
                    "0".to_owned(),
                ],
            ));
        } else {
            // R2M form `ADG trid 1 name guid` (§4.3).
            self.send(Frame::command(Verb::ADG, t, ["1", name, guid.as_str()]));
        }
        Flow::Continue
    }

    fn rmg(&mut self, f: &Frame) -> Flow {
        let trid = f.trid;
        let Some(token) = f.arg(0) else {
            return self.err(201, trid);
        };
        if self.version <= 9 && token == "0" {
            return self.err(230, trid);
        }
        let me = self.me();
        let mut state = self.shared.lock();
        let Some(account) = state.accounts.get_mut(&me) else {
            return self.err(603, trid);
        };
        let Some(id) = account.group_by_token(token).map(|g| g.id) else {
            return self.err(224, trid);
        };
        account.groups.retain(|g| g.id != id);
        for c in account.contacts.values_mut() {
            c.groups.retain(|g| *g != id);
        }
        let version = bump(&mut state, &me);
        let first = if self.version <= 9 {
            version.to_string()
        } else {
            "1".to_owned()
        };
        self.send(Frame::command(
            Verb::RMG,
            trid.unwrap_or(0),
            [first, token.to_owned()],
        ));
        Flow::Continue
    }

    fn reg(&mut self, f: &Frame) -> Flow {
        let trid = f.trid;
        let (Some(token), Some(name)) = (f.arg(0), f.arg(1)) else {
            return self.err(201, trid);
        };
        if name.len() > 61 {
            return self.err(229, trid);
        }
        let me = self.me();
        let mut state = self.shared.lock();
        let Some(account) = state.accounts.get_mut(&me) else {
            return self.err(603, trid);
        };
        if account.groups.iter().any(|g| g.name_enc == name) {
            return self.err(228, trid);
        }
        let Some(group) = account
            .groups
            .iter_mut()
            .find(|g| g.guid == token || g.id.to_string() == token)
        else {
            return self.err(224, trid);
        };
        group.name_enc = name.to_owned();
        let (id, guid) = (group.id, group.guid.clone());
        let version = bump(&mut state, &me);
        let t = trid.unwrap_or(0);
        if self.version <= 9 {
            self.send(Frame::command(
                Verb::REG,
                t,
                [
                    version.to_string(),
                    id.to_string(),
                    name.to_owned(),
                    "0".to_owned(),
                ],
            ));
        } else {
            // Escargot form `REG trid 1 name guid 0` (§4.3).
            self.send(Frame::command(
                Verb::REG,
                t,
                ["1", name, guid.as_str(), "0"],
            ));
        }
        Flow::Continue
    }

    fn xfr(&mut self, f: &Frame) -> Flow {
        let trid = f.trid;
        if f.arg(0) != Some("SB") {
            return self.err(201, trid);
        }
        let me = self.me();
        let mut state = self.shared.lock();
        // 913 before this endpoint's first CHG and while hidden (§2.8, §5.2).
        let allowed = state
            .sessions
            .get(&me)
            .is_some_and(|s| s.changed_on(self.conn.id) && s.visible_status().is_some());
        if !allowed {
            return self.err(913, trid);
        }
        let cookie = format!("{}.{}", random_digits(10), random_digits(6));
        state.sb_cookies.insert(
            cookie.clone(),
            SbCookie {
                email: me,
                kind: CookieKind::Xfr,
                version: self.version,
                expires: Instant::now() + self.shared.config.sb_cookie_lifetime,
            },
        );
        self.send(Frame::command(
            Verb::XFR,
            trid.unwrap_or(0),
            [
                "SB".to_owned(),
                self.shared.sb_addr.to_string(),
                "CKI".to_owned(),
                cookie,
            ],
        ));
        Flow::Continue
    }

    fn qry(&mut self, f: &Frame) -> Flow {
        let me = self.me();
        let pending = self
            .shared
            .lock()
            .sessions
            .get_mut(&me)
            .and_then(|s| s.challenge.take());
        // Escargot parses a QRY without a challenge and answers nothing (§2.8).
        let Some((chl, _)) = pending else {
            return Flow::Continue;
        };
        let answer = f.payload.clone().unwrap_or_default();
        let correct = f
            .arg(0)
            .and_then(|id| ALL_PRODUCTS.iter().find(|p| p.id == id))
            .is_some_and(|p| response(self.version, &chl, *p).as_bytes() == answer.as_ref());
        self.shared
            .emit(ServerEvent::ChallengeAnswered { email: me, correct });
        if correct {
            self.send(Frame::command(
                Verb::QRY,
                f.trid.unwrap_or(0),
                Vec::<String>::new(),
            ));
            Flow::Continue
        } else {
            // 540 and disconnect (§3.1).
            self.send(error(540, f.trid));
            Flow::Close
        }
    }

    fn cleanup(&mut self) {
        let mut state = self.shared.lock();
        state.ns_conns.remove(&self.conn.id);
        super::circles::drop_endpoint(&mut state, self.conn.id);
        let Some(email) = self.email.clone().filter(|_| self.logged_in) else {
            return;
        };
        let Some(session) = state.sessions.get_mut(&email) else {
            return;
        };
        if session.conn.id != self.conn.id {
            // Another endpoint of the account goes; the account stays online.
            session.others.retain(|e| e.conn.id != self.conn.id);
            return;
        }
        if !session.others.is_empty() {
            // The next endpoint becomes the account's first.
            let next = session.others.remove(0);
            session.conn = next.conn;
            session.version = next.version;
            session.machine_guid = Some(next.guid);
            session.changed = next.changed;
            session.endpoint_name = next.name;
            session.challenge = None;
            return;
        }
        let was_visible = state
            .sessions
            .remove(&email)
            .is_some_and(|s| s.visible_status().is_some());
        fan_out(&state, &email, was_visible);
        drop(state);
        self.shared.emit(ServerEvent::Disconnected { email });
    }
}

/// Bumps and returns the MSNP8–9 list version of `email`.
fn bump(state: &mut State, email: &str) -> u32 {
    state.accounts.get_mut(email).map_or(0, |a| {
        a.list_version += 1;
        a.list_version
    })
}

/// An entry's `lists` once its contact added the owner: on the reverse list and, unless
/// already allowed or blocked, pending, as Escargot keeps it until answered (§2.8,
/// §15.5).
pub(super) fn added_by(lists: Lists) -> Lists {
    if lists.contains(Lists::AL) || lists.contains(Lists::BL) {
        lists | Lists::RL
    } else {
        lists | Lists::RL | Lists::PL
    }
}

/// `lists` after a list change: allowing or blocking someone answers their pending add.
fn answered(lists: Lists) -> Lists {
    if lists.contains(Lists::AL) || lists.contains(Lists::BL) {
        lists.without(Lists::PL)
    } else {
        lists
    }
}

/// Tells `owner`, if online, that `other` added (`added`) or removed them: the reverse
/// list change as the owner's version reads it (`ADD`/`ADC`/`REM 0 RL`, §4.2, §4.3;
/// `ADL`/`RML 0` with `l="8"`, §4.5).
fn tell_reverse(state: &mut State, owner: &str, other: &str, added: bool) {
    let list_version = bump(state, owner);
    let name = state.name_of(other);
    let Some(s) = state.sessions.get(owner) else {
        return;
    };
    for (conn, version, _) in s.endpoints() {
        conn.send(reverse_frame(version, other, &name, list_version, added));
    }
}

/// The reverse-list change as a `version` client reads it.
fn reverse_frame(version: u8, other: &str, name: &str, list_version: u32, added: bool) -> Frame {
    match (version, added) {
        (13.., _) => {
            let (local, domain) = other.split_once('@').unwrap_or((other, ""));
            let f = if added {
                format!(" f=\"{}\"", msnp::xml::escape_lossy(name))
            } else {
                String::new()
            };
            let ml = format!(
                "<ml><d n=\"{}\"><c n=\"{}\" l=\"8\" t=\"1\"{f}/></d></ml>",
                msnp::xml::escape_lossy(domain),
                msnp::xml::escape_lossy(local)
            );
            let verb = if added { Verb::ADL } else { Verb::RML };
            Frame::command(verb, 0, Vec::<String>::new()).with_payload(Bytes::from(ml))
        }
        (..=9, true) => Frame::command(
            Verb::ADD,
            0,
            [
                "RL".to_owned(),
                list_version.to_string(),
                other.to_owned(),
                name.to_owned(),
            ],
        ),
        (..=9, false) => Frame::command(
            Verb::REM,
            0,
            ["RL".to_owned(), list_version.to_string(), other.to_owned()],
        ),
        (_, true) => Frame::command(
            Verb::ADC,
            0,
            ["RL".to_owned(), format!("N={other}"), format!("F={name}")],
        ),
        (_, false) => Frame::command(Verb::REM, 0, ["RL".to_owned(), format!("N={other}")]),
    }
}

/// The entry for `contact` in `owner`'s list, created (with `name` and `guid`) if absent.
/// The caller guarantees that `owner` exists; a throwaway entry is returned otherwise.
fn entry_mut<'a>(
    state: &'a mut State,
    owner: &str,
    contact: &str,
    name: &str,
    guid: String,
) -> &'a mut ContactEntry {
    let account = state
        .accounts
        .entry(owner.to_owned())
        .or_insert_with(|| super::accounts::Account::new(owner, "", owner.to_owned(), 0));
    account
        .contacts
        .entry(contact.to_owned())
        .or_insert_with(|| ContactEntry {
            email: contact.to_owned(),
            name_enc: name.to_owned(),
            lists: Lists::NONE,
            guid,
            groups: Vec::new(),
        })
}

/// Logged-in users (past their first `CHG`) who have `me` on their FL and may see `me`.
fn can_see_me(state: &State, me: &str) -> Vec<String> {
    state.watchers(me).into_iter().map(|(e, _, _)| e).collect()
}

/// After an AL/BL/BLP change: tells watchers whose view of `me` changed (`FLN` to the
/// newly blocked, `NLN` to the newly allowed).
fn privacy_changed(state: &State, me: &str, before: &[String]) {
    let after = can_see_me(state, me);
    let visible = state
        .sessions
        .get(me)
        .and_then(Session::visible_status)
        .is_some();
    if !visible {
        return;
    }
    let mut newly_blocked: Vec<&String> = before.iter().filter(|v| !after.contains(v)).collect();
    newly_blocked.dedup();
    for viewer in newly_blocked {
        if let Some(s) = state.sessions.get(viewer) {
            for (conn, version) in s.live_endpoints() {
                conn.send(presence::fln(me, version));
            }
        }
    }
    let mut newly_allowed: Vec<&String> = after.iter().filter(|v| !before.contains(v)).collect();
    newly_allowed.dedup();
    for viewer in newly_allowed {
        refresh_one(state, me, viewer);
    }
}
