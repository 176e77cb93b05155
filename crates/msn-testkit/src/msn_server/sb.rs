//! Switchboard connection handler (MSNP.md §6): `USR` with an `XFR` cookie opens a
//! session, `CAL` rings the invitee through its NS (`RNG`), `ANS` joins with `IRO`
//! roster lines, `MSG` is relayed to every other participant with `ACK`/`NAK` per ack
//! mode, leaving produces `BYE`, and the session ends with its last participant.
//!
//! Enforces what Escargot enforces (§6.3): a bad ack letter or a payload above 1664
//! bytes closes the connection; `USR`/`ANS` must come within the auth timeout.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;

use msnp::frame::Frame;
use msnp::limits::SB_MSG_SEND_LIMIT;
use msnp::verb::Verb;

use super::conn::{self, ConnTx, Read, error};
use super::ns::Flow;
use super::state::{
    CookieKind, Member, SbCookie, ServerEvent, ServerKind, Shared, State, Switchboard,
    random_digits,
};

/// Serves one switchboard connection until it closes.
pub(crate) async fn run(stream: TcpStream, shared: Arc<Shared>) {
    let (mut reader, conn) = conn::start(stream, &shared, &shared.shutdown);
    shared.lock().sb_conns.insert(conn.id, (None, conn.clone()));
    let mut sb = Sb {
        shared: shared.clone(),
        conn: conn.clone(),
        email: None,
        session: None,
        version: 12,
        hung: false,
    };
    let auth_deadline = tokio::time::sleep(shared.config.sb_auth_timeout);
    tokio::pin!(auth_deadline);
    loop {
        let flow = tokio::select! {
            () = conn.cancel.cancelled() => break,
            () = &mut auth_deadline, if sb.session.is_none() => break,
            read = reader.next(sb.version) => match read {
                Read::Frame(frame) => sb.handle(frame),
                Read::Closed => break,
            },
        };
        if flow == Flow::Close {
            break;
        }
    }
    sb.leave();
    conn.close();
}

struct Sb {
    shared: Arc<Shared>,
    conn: ConnTx,
    email: Option<String>,
    session: Option<u64>,
    /// The NS version of the user when the cookie was issued (JOI/IRO forms).
    version: u8,
    /// Reads on but answers nothing (the hanging-switchboards fault).
    hung: bool,
}

/// The caps of a user's NS session, `0` when unknown.
fn caps_of(state: &State, email: &str) -> String {
    state
        .sessions
        .get(email)
        .map_or_else(|| "0".to_owned(), |s| s.caps.clone())
}

/// `JOI who name [caps]`: caps from MSNP12 on (§6.1); `who` is `email` or, for MSNP16+,
/// `email;{guid}` (§15.3.3).
fn joi(state: &State, who: &str, email: &str, to_version: u8) -> Frame {
    let mut args = vec![who.to_owned(), state.name_of(email)];
    if to_version >= 12 {
        args.push(caps_of(state, email));
    }
    Frame::untracked(Verb::JOI, args)
}

/// `email` or `email;{guid}` of `USR`/`ANS`: the lower-cased account and the endpoint.
fn split_endpoint(who: &str) -> (String, Option<String>) {
    match who.split_once(';') {
        Some((email, guid)) => (email.to_lowercase(), Some(guid.to_lowercase())),
        None => (who.to_lowercase(), None),
    }
}

/// Tells every member but the joiner's connection that `joiner` came in: per endpoint to
/// MSNP16+ members, and the bare line when it is the first endpoint of its account
/// (§15.3.3).
fn announce_join(state: &State, members: &[Member], joiner: &Member) {
    let first_of_account = !members
        .iter()
        .any(|m| m.email == joiner.email && m.conn.id != joiner.conn.id);
    for m in members.iter().filter(|m| m.conn.id != joiner.conn.id) {
        if let Some(who) = joiner.endpoint_name(m.version) {
            m.conn.send(joi(state, &who, &joiner.email, m.version));
        }
        if first_of_account {
            m.conn
                .send(joi(state, &joiner.email, &joiner.email, m.version));
        }
    }
}

impl Sb {
    fn send(&self, frame: Frame) {
        self.conn.send(frame);
    }

    fn handle(&mut self, frame: Frame) -> Flow {
        self.shared
            .record(self.email.as_deref(), conn::redact(ServerKind::Sb, &frame));
        if let Some(email) = &self.email
            && self.shared.faults.is_silenced(email)
        {
            return Flow::Continue;
        }
        if self.session.is_none()
            && matches!(frame.verb.as_str(), "USR" | "ANS")
            && self.shared.faults.take_hanging_switchboard()
        {
            self.hung = true;
        }
        if self.hung {
            return Flow::Continue;
        }
        let trid = frame.trid;
        match (frame.verb.as_str(), self.session) {
            ("USR", None) => self.usr(&frame),
            ("ANS", None) => self.ans(&frame),
            ("OUT", _) => Flow::Close,
            // Anything before authentication: the servers just drop the connection.
            (_, None) => Flow::Close,
            ("USR" | "ANS", Some(_)) => {
                self.send(error(207, trid));
                Flow::Continue
            }
            ("CAL", Some(id)) => self.cal(&frame, id),
            ("MSG", Some(id)) => self.msg(&frame, id),
            _ => {
                self.send(error(200, trid));
                Flow::Continue
            }
        }
    }

    /// Takes a cookie if it is valid for `email` and the expected kind.
    fn take_cookie(&self, state: &mut State, cookie: &str, email: &str) -> Option<SbCookie> {
        let c = state.sb_cookies.remove(cookie)?;
        (c.email == email && c.expires > Instant::now()).then_some(c)
    }

    fn usr(&mut self, f: &Frame) -> Flow {
        let (Some(trid), Some(email), Some(cookie)) = (f.trid, f.arg(0), f.arg(1)) else {
            return Flow::Close;
        };
        let (email, guid) = split_endpoint(email);
        let mut state = self.shared.lock();
        let valid = self
            .take_cookie(&mut state, cookie, &email)
            .filter(|c| matches!(c.kind, CookieKind::Xfr));
        let Some(cookie) = valid else {
            drop(state);
            self.send(error(911, Some(trid)));
            return Flow::Close;
        };
        let id = 10_000_000 + self.shared.next_id();
        self.version = cookie.version;
        state.switchboards.insert(
            id,
            Switchboard {
                members: vec![Member {
                    email: email.clone(),
                    conn: self.conn.clone(),
                    version: cookie.version,
                    guid: guid.clone(),
                }],
                invited: Default::default(),
            },
        );
        if let Some(entry) = state.sb_conns.get_mut(&self.conn.id) {
            entry.0 = Some(email.clone());
        }
        let name = state.name_of(&email);
        drop(state);
        // Escargot echoes the endpoint form (§15.3.3).
        let echoed = guid
            .as_ref()
            .map_or_else(|| email.clone(), |g| format!("{email};{g}"));
        self.send(Frame::command(
            Verb::USR,
            trid,
            ["OK", echoed.as_str(), name.as_str()],
        ));
        self.email = Some(email.clone());
        self.session = Some(id);
        self.shared
            .emit(ServerEvent::SwitchboardJoined { session: id, email });
        Flow::Continue
    }

    fn ans(&mut self, f: &Frame) -> Flow {
        let (Some(trid), Some(email), Some(cookie), Some(sessid)) =
            (f.trid, f.arg(0), f.arg(1), f.arg(2))
        else {
            return Flow::Close;
        };
        let (email, guid) = split_endpoint(email);
        let mut state = self.shared.lock();
        let session = self
            .take_cookie(&mut state, cookie, &email)
            .and_then(|c| match c.kind {
                CookieKind::Ring { session } if session.to_string() == sessid => {
                    Some((session, c.version))
                }
                _ => None,
            })
            .filter(|(id, _)| state.switchboards.contains_key(id));
        let Some((id, version)) = session else {
            drop(state);
            self.send(error(911, Some(trid)));
            return Flow::Close;
        };
        self.version = version;
        let members: Vec<Member> = state
            .switchboards
            .get(&id)
            .map(|sb| sb.members.clone())
            .unwrap_or_default();
        // The roster: for MSNP16+ one line per endpoint and one bare per account (the
        // answering account's other endpoints included), else one per account (§15.3.3).
        let mut roster: Vec<(String, String)> = Vec::new();
        for m in members.iter().filter(|m| m.conn.id != self.conn.id) {
            if let Some(who) = m.endpoint_name(version) {
                roster.push((who, m.email.clone()));
            }
            if !roster.iter().any(|(who, _)| *who == m.email) {
                roster.push((m.email.clone(), m.email.clone()));
            }
        }
        // MSNP8–15 see only other accounts, as before endpoints existed.
        if version < 16 {
            roster.retain(|(_, account)| *account != email);
        }
        let total = roster.len();
        for (i, (who, account)) in roster.iter().enumerate() {
            let mut args = vec![
                (i + 1).to_string(),
                total.to_string(),
                who.clone(),
                state.name_of(account),
            ];
            if version >= 12 {
                args.push(caps_of(&state, account));
            }
            self.send(Frame::command(Verb::IRO, trid, args));
        }
        self.send(Frame::command(Verb::ANS, trid, ["OK"]));
        let joiner = Member {
            email: email.clone(),
            conn: self.conn.clone(),
            version,
            guid,
        };
        announce_join(&state, &members, &joiner);
        if let Some(sb) = state.switchboards.get_mut(&id) {
            sb.invited.remove(&email);
            sb.members.push(joiner);
        }
        if let Some(entry) = state.sb_conns.get_mut(&self.conn.id) {
            entry.0 = Some(email.clone());
        }
        drop(state);
        self.email = Some(email.clone());
        self.session = Some(id);
        self.shared
            .emit(ServerEvent::SwitchboardJoined { session: id, email });
        Flow::Continue
    }

    fn cal(&mut self, f: &Frame, id: u64) -> Flow {
        let trid = f.trid;
        let Some(target) = f.arg(0).map(str::to_lowercase) else {
            self.send(error(201, trid));
            return Flow::Continue;
        };
        let me = self.email.clone().unwrap_or_default();
        let mut state = self.shared.lock();
        // The caller's own address rings its other endpoints (WLM 2009 does it when it
        // opens a chat, §15.3.3); those already in are not rung again.
        let own = target == me;
        let in_session: Vec<u64> = state
            .switchboards
            .get(&id)
            .map(|sb| sb.members.iter().map(|m| m.conn.id).collect())
            .unwrap_or_default();
        let code = {
            let sb = state.switchboards.get(&id);
            let present = if own {
                state.sessions.get(&target).is_none_or(|s| {
                    s.endpoints()
                        .iter()
                        .all(|(conn, _, _)| in_session.contains(&conn.id))
                })
            } else {
                sb.is_some_and(|sb| {
                    sb.members.iter().any(|m| m.email == target) || sb.invited.contains(&target)
                })
            };
            if !target.contains('@') {
                Some(208)
            } else if present {
                Some(215)
            } else if state
                .sessions
                .get(&target)
                .and_then(|s| s.visible_status())
                .is_none()
            {
                // Offline, hidden or unknown (R2M, §6.5).
                Some(217)
            } else if !state.allows(&target, &me) {
                Some(216)
            } else {
                None
            }
        };
        if let Some(code) = code {
            drop(state);
            self.send(error(code, trid));
            return Flow::Continue;
        }
        // Every endpoint of the callee rings, each with its own cookie (§15.3.3).
        let Some(target_session) = state.sessions.get(&target) else {
            return Flow::Continue;
        };
        let endpoints: Vec<(ConnTx, u8)> = target_session
            .endpoints()
            .into_iter()
            .filter(|(conn, _, _)| !in_session.contains(&conn.id))
            .map(|(conn, version, _)| (conn, version))
            .collect();
        let caller_name = state.name_of(&me);
        for (conn, version) in endpoints {
            let cookie = format!("{}.{}", random_digits(10), random_digits(10));
            state.sb_cookies.insert(
                cookie.clone(),
                SbCookie {
                    email: target.clone(),
                    kind: CookieKind::Ring { session: id },
                    version,
                    expires: Instant::now() + self.shared.config.sb_cookie_lifetime,
                },
            );
            conn.send(Frame::untracked(
                Verb::RNG,
                [
                    id.to_string(),
                    self.shared.sb_addr.to_string(),
                    "CKI".to_owned(),
                    cookie,
                    me.clone(),
                    caller_name.clone(),
                ],
            ));
        }
        if let Some(sb) = state.switchboards.get_mut(&id) {
            sb.invited.insert(target);
        }
        drop(state);
        self.send(Frame::command(
            Verb::CAL,
            trid.unwrap_or(0),
            ["RINGING".to_owned(), id.to_string()],
        ));
        Flow::Continue
    }

    fn msg(&mut self, f: &Frame, id: u64) -> Flow {
        let mode = f.arg(0).unwrap_or_default();
        if !matches!(mode, "U" | "N" | "A" | "D") {
            return Flow::Close;
        }
        let payload = f.payload.clone().unwrap_or_default();
        if payload.len() > SB_MSG_SEND_LIMIT {
            return Flow::Close;
        }
        let me = self.email.clone().unwrap_or_default();
        let state = self.shared.lock();
        let name = state.name_of(&me);
        let mut recipients = 0;
        if let Some(sb) = state.switchboards.get(&id) {
            for m in sb.members.iter().filter(|m| m.conn.id != self.conn.id) {
                m.conn.send(
                    Frame::untracked(Verb::MSG, [me.as_str(), name.as_str()])
                        .with_payload(payload.clone()),
                );
                recipients += 1;
            }
        }
        drop(state);
        let trid = f.trid.unwrap_or(0);
        match (mode, recipients) {
            ("U", _) => {}
            ("N", 0) | ("A" | "D", 0) => {
                self.send(Frame::command(Verb::NAK, trid, Vec::<String>::new()))
            }
            ("A" | "D", _) => self.send(Frame::command(Verb::ACK, trid, Vec::<String>::new())),
            _ => {}
        }
        self.shared.emit(ServerEvent::MessageRelayed {
            session: id,
            from: me,
            recipients,
        });
        Flow::Continue
    }

    /// Leaves the session: `BYE email` to the others, session removed when empty.
    fn leave(&mut self) {
        let mut state = self.shared.lock();
        state.sb_conns.remove(&self.conn.id);
        let (Some(id), Some(email)) = (self.session, self.email.clone()) else {
            return;
        };
        let removed = remove_member(&mut state, id, self.conn.id, &email, false);
        drop(state);
        if removed {
            self.shared
                .emit(ServerEvent::SwitchboardLeft { session: id, email });
        }
    }
}

/// Removes the member on connection `conn_id` from session `id`, tells the others
/// (`BYE email`, or `BYE email 1` when the server removed it) and drops the session and
/// its pending invitations when nobody is left. Returns whether a member was removed.
pub(crate) fn remove_member(
    state: &mut State,
    id: u64,
    conn_id: u64,
    email: &str,
    by_server: bool,
) -> bool {
    let Some(sb) = state.switchboards.get_mut(&id) else {
        return false;
    };
    let Some(leaver) = sb.members.iter().find(|m| m.conn.id == conn_id).cloned() else {
        return false;
    };
    sb.members.retain(|m| m.conn.id != conn_id);
    if sb.members.is_empty() {
        state.switchboards.remove(&id);
        state
            .sb_cookies
            .retain(|_, c| !matches!(c.kind, CookieKind::Ring { session } if session == id));
        return true;
    }
    // Per endpoint to MSNP16+ members; the bare line once the account's last endpoint
    // left (§15.3.3).
    let last_of_account = !sb.members.iter().any(|m| m.email == email);
    let idle = by_server.then(|| "1".to_owned());
    for m in &sb.members {
        if let Some(who) = leaver.endpoint_name(m.version) {
            m.conn.send(Frame::untracked(
                Verb::BYE,
                std::iter::once(who).chain(idle.clone()),
            ));
        }
        if last_of_account {
            m.conn.send(Frame::untracked(
                Verb::BYE,
                std::iter::once(email.to_owned()).chain(idle.clone()),
            ));
        }
    }
    true
}
