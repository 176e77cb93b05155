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

/// `JOI email name [caps]`: caps from MSNP12 on (§6.1).
fn joi(state: &State, email: &str, to_version: u8) -> Frame {
    let mut args = vec![email.to_owned(), state.name_of(email)];
    if to_version >= 12 {
        args.push(caps_of(state, email));
    }
    Frame::untracked(Verb::JOI, args)
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
        let email = email.to_lowercase();
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
                }],
                invited: Default::default(),
            },
        );
        if let Some(entry) = state.sb_conns.get_mut(&self.conn.id) {
            entry.0 = Some(email.clone());
        }
        let name = state.name_of(&email);
        drop(state);
        self.send(Frame::command(
            Verb::USR,
            trid,
            ["OK", email.as_str(), name.as_str()],
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
        let email = email.to_lowercase();
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
        let others: Vec<&Member> = members.iter().filter(|m| m.email != email).collect();
        let total = others.len();
        for (i, m) in others.iter().enumerate() {
            let mut args = vec![
                (i + 1).to_string(),
                total.to_string(),
                m.email.clone(),
                state.name_of(&m.email),
            ];
            if version >= 12 {
                args.push(caps_of(&state, &m.email));
            }
            self.send(Frame::command(Verb::IRO, trid, args));
        }
        self.send(Frame::command(Verb::ANS, trid, ["OK"]));
        for m in &members {
            m.conn.send(joi(&state, &email, m.version));
        }
        if let Some(sb) = state.switchboards.get_mut(&id) {
            sb.invited.remove(&email);
            sb.members.push(Member {
                email: email.clone(),
                conn: self.conn.clone(),
                version,
            });
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
        let code = {
            let sb = state.switchboards.get(&id);
            let present = sb.is_some_and(|sb| {
                sb.members.iter().any(|m| m.email == target) || sb.invited.contains(&target)
            });
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
        let cookie = format!("{}.{}", random_digits(10), random_digits(10));
        let Some(target_session) = state.sessions.get(&target) else {
            return Flow::Continue;
        };
        let target_conn = target_session.conn.clone();
        let target_version = target_session.version;
        state.sb_cookies.insert(
            cookie.clone(),
            SbCookie {
                email: target.clone(),
                kind: CookieKind::Ring { session: id },
                version: target_version,
                expires: Instant::now() + self.shared.config.sb_cookie_lifetime,
            },
        );
        if let Some(sb) = state.switchboards.get_mut(&id) {
            sb.invited.insert(target);
        }
        target_conn.send(Frame::untracked(
            Verb::RNG,
            [
                id.to_string(),
                self.shared.sb_addr.to_string(),
                "CKI".to_owned(),
                cookie,
                me.clone(),
                state.name_of(&me),
            ],
        ));
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
    let before = sb.members.len();
    sb.members.retain(|m| m.conn.id != conn_id);
    if sb.members.len() == before {
        return false;
    }
    if sb.members.is_empty() {
        state.switchboards.remove(&id);
        state
            .sb_cookies
            .retain(|_, c| !matches!(c.kind, CookieKind::Ring { session } if session == id));
        return true;
    }
    let mut args = vec![email.to_owned()];
    if by_server {
        args.push("1".to_owned());
    }
    for m in &sb.members {
        m.conn.send(Frame::untracked(Verb::BYE, args.clone()));
    }
    true
}
