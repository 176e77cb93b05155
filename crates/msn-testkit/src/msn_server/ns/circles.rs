//! Circles on the test NS (MSNP.md §15.4), as Escargot answers them on MSNP18:
//!
//! * `USR trid SHA A <nonce>`: the nonce must be the base64 of the circle ticket the
//!   address book last gave the account (`USR trid OK <email> 0 0`), else `911`.
//! * The circle `ADL` (`<d n="live.com">` with `t="9"` entries, nothing else mixed in:
//!   `241` and a disconnect): after a good `USR SHA A`, for circles the account accepted
//!   (else `933`); FL or AL makes the circle joinable with `PUT`, but only when the
//!   contacts' initial `ADL` came first (else `PUT` gets `201`). `RML` of a circle leaves
//!   its conversation.
//! * `PUT` with `Uri: /circle` and the user's own roster entry joins the conversation:
//!   `PUT trid OK 0`, then everyone in it (the joiner too) gets the roster in `NFY PUT`.
//!   `201` for a circle not added with `ADL`, a bad circle address or someone else's
//!   entry; a `PUT` not addressed to a circle, or not `application/circles+xml`, is not
//!   answered (Escargot drops it).
//! * `SDG` from an endpoint in the conversation (`From: 1:<email>;epid={its GUID in
//!   lower case}`, `To: 9:<id>@live.com;path=IM`, a messaging block with its
//!   `Content-Length`) reaches every other endpoint in it as `SDG 0 len`, bytes unchanged;
//!   no reply, `201` otherwise.

use std::collections::HashSet;

use bytes::Bytes;

use msnp::frame::Frame;
use msnp::verb::Verb;
use msnp::xml::Element;

use super::{Flow, Ns};
use crate::msn_server::accounts::Lists;
use crate::msn_server::circles::{self, Joined, wire};
use crate::msn_server::conn::error;
use crate::msn_server::presence;
use crate::msn_server::state::State;

/// What one NS connection did towards circles.
#[derive(Debug, Default)]
pub(crate) struct CircleSession {
    /// `USR SHA A` presented the right ticket.
    authenticated: bool,
    /// The contacts' initial `ADL` (`<ml l="1">`) was answered.
    initial_adl: bool,
    /// Circles added with FL or AL after the initial `ADL`: those `PUT` may join.
    added: HashSet<String>,
}

impl CircleSession {
    /// Notes that the contacts' initial `ADL` was answered.
    pub(crate) fn initial_adl_done(&mut self) {
        self.initial_adl = true;
    }
}

/// The machine GUID the endpoint on `conn_id` of `email` signed in with.
fn endpoint_guid(state: &State, email: &str, conn_id: u64) -> Option<String> {
    let session = state.sessions.get(email)?;
    if session.conn.id == conn_id {
        return session.machine_guid.clone();
    }
    session
        .others
        .iter()
        .find(|e| e.conn.id == conn_id)
        .map(|e| e.guid.clone())
}

/// The `epid` of a `From` parameter, braces off, case kept.
fn epid_of(param: Option<&str>) -> Option<&str> {
    param
        .and_then(|p| p.strip_prefix("epid="))
        .map(wire::bare_guid)
}

/// One `<c>` of a circle `ADL`/`RML`.
struct Entry {
    id: String,
    lists: Lists,
}

/// The circle entries of an `<ml>`, or the error it earns (and whether to disconnect).
/// `Ok(None)`: no circle in it.
fn circle_entries(root: &Element) -> Result<Option<Vec<Entry>>, (u16, bool)> {
    let is_circle = |c: &Element| c.attr("t") == Some("9");
    let domains: Vec<&Element> = root.children_named("d").collect();
    if !domains.iter().any(|d| d.children_named("c").any(is_circle)) {
        return Ok(None);
    }
    // Circles come alone, in one `<d>` (Escargot: 241 and a disconnect otherwise).
    let [domain] = domains.as_slice() else {
        return Err((241, true));
    };
    if domain.children_named("c").any(|c| !is_circle(c)) {
        return Err((241, true));
    }
    if domain.attr("n") != Some("live.com") {
        return Err((933, false));
    }
    let mut entries = Vec::new();
    for c in domain.children_named("c") {
        let bits: u8 = c
            .attr("l")
            .and_then(|l| l.parse().ok())
            .ok_or((241, true))?;
        if bits & !7 != 0 || bits == 0 {
            return Err((241, true));
        }
        let id = c
            .attr("n")
            .filter(|n| wire::valid_id(n))
            .ok_or((933, false))?;
        entries.push(Entry {
            id: id.to_ascii_lowercase(),
            lists: Lists(bits),
        });
    }
    Ok(Some(entries))
}

impl Ns {
    /// `USR trid SHA A <nonce>` (MSNP18, after login).
    pub(super) fn usr_sha(&mut self, f: &Frame) -> Flow {
        if self.version < 18 || !self.logged_in {
            return Flow::Close;
        }
        let trid = f.trid;
        let me = self.me();
        let expected = {
            let state = self.shared.lock();
            // Fault: a server whose circle service is down refuses every ticket.
            (!state.refuse_circle_tickets)
                .then(|| {
                    state
                        .circle_tickets
                        .get(&me)
                        .map(|ticket| wire::nonce(ticket))
                })
                .flatten()
        };
        let presented = f.arg(2).filter(|_| f.arg(1) == Some("A"));
        if presented.is_none() || presented != expected.as_deref() {
            self.circle.authenticated = false;
            return self.err(911, trid);
        }
        self.circle.authenticated = true;
        self.send(Frame::command(
            Verb::USR,
            trid.unwrap_or(0),
            ["OK", me.as_str(), "0", "0"],
        ));
        Flow::Continue
    }

    /// The circle `ADL`/`RML`; `None` when `root` names no circle (the contacts' lists
    /// then).
    pub(super) fn circle_list(&mut self, f: &Frame, root: &Element) -> Option<Flow> {
        let trid = f.trid;
        let entries = match circle_entries(root) {
            Ok(entries) => entries?,
            Err((code, close)) => {
                self.send(error(code, trid));
                return Some(if close { Flow::Close } else { Flow::Continue });
            }
        };
        let me = self.me();
        let mut state = self.shared.lock();
        if f.verb == Verb::ADL {
            let members = entries
                .iter()
                .all(|e| state.circles.get(&e.id).is_some_and(|c| c.accepted(&me)));
            if !(self.circle.authenticated && members) {
                return Some(self.err(933, trid));
            }
            for entry in &entries {
                if entry.lists.contains(Lists::BL) {
                    self.circle.added.remove(&entry.id);
                    circles::drop_endpoint_from(&mut state, &entry.id, self.conn.id);
                } else if self.circle.initial_adl {
                    // Before the contacts' initial ADL the answer is the same, but the
                    // circle cannot be joined (§15.4 step 3).
                    self.circle.added.insert(entry.id.clone());
                }
            }
        } else {
            for entry in &entries {
                self.circle.added.remove(&entry.id);
                circles::drop_endpoint_from(&mut state, &entry.id, self.conn.id);
            }
        }
        drop(state);
        self.send(Frame::command(f.verb, trid.unwrap_or(0), ["OK"]));
        Some(Flow::Continue)
    }

    /// `PUT trid len` (MSNP18): joining a circle's conversation.
    pub(super) fn put(&mut self, f: &Frame) -> Flow {
        let trid = f.trid;
        let payload = f.payload.clone().unwrap_or_default();
        let Some(routed) = wire::read_routed(&payload) else {
            return self.err(201, trid);
        };
        let Some((network, address, _)) = routed.header_in(0, "To").and_then(wire::split_address)
        else {
            return self.err(201, trid);
        };
        if network != "9" {
            // Escargot routes only circles and leaves anything else unanswered.
            return Flow::Continue;
        }
        let Some(id) = wire::circle_of(address) else {
            return self.err(201, trid);
        };
        let circles_xml = routed
            .header("Content-Type")
            .is_some_and(|t| t.eq_ignore_ascii_case("application/circles+xml"));
        if !circles_xml {
            return Flow::Continue;
        }
        if !self.circle.added.contains(&id) {
            return self.err(201, trid);
        }
        let body = routed.content().unwrap_or(routed.body);
        let Ok(root) = Element::parse(&String::from_utf8_lossy(body)) else {
            return self.err(201, trid);
        };
        let me = self.me();
        let entry = root
            .path(&["roster", "user", "id"])
            .map(|e| e.text().trim().to_owned());
        let joining = match entry {
            Some(entry) => {
                let own = entry
                    .strip_prefix("1:")
                    .is_some_and(|email| email.eq_ignore_ascii_case(&me));
                if !own {
                    return self.err(201, trid);
                }
                true
            }
            None => false,
        };
        let mut state = self.shared.lock();
        let Some(circle) = state.circles.get_mut(&id).filter(|c| c.accepted(&me)) else {
            return self.err(201, trid);
        };
        self.send(Frame::command(Verb::PUT, trid.unwrap_or(0), ["OK"]).with_payload(Bytes::new()));
        if joining {
            if !circle.has_endpoint(self.conn.id) {
                circle.joined.push(Joined {
                    email: me.clone(),
                    conn: self.conn.clone(),
                });
            }
            circle.send_roster();
            // The members' presence comes by way of the circle (§15.4 step 4): the
            // joiner hears of those in the conversation, and they of the joiner.
            let via = msnp::circle::address(&circle.id);
            let others: Vec<Joined> = circle
                .joined
                .iter()
                .filter(|j| j.conn.id != self.conn.id)
                .cloned()
                .collect();
            for other in &others {
                for frame in presence::circle_member_frames(&state, &other.email, &via) {
                    self.conn.send(frame);
                }
                for frame in presence::circle_member_frames(&state, &me, &via) {
                    other.conn.send(frame);
                }
            }
        }
        Flow::Continue
    }

    /// `SDG trid len` (MSNP18): a message into a circle's conversation.
    pub(super) fn sdg(&mut self, f: &Frame) -> Flow {
        let trid = f.trid;
        let payload = f.payload.clone().unwrap_or_default();
        let Some(routed) = wire::read_routed(&payload) else {
            return self.err(201, trid);
        };
        let me = self.me();
        let state = self.shared.lock();
        let guid = endpoint_guid(&state, &me, self.conn.id);
        let from_ok = routed
            .header_in(0, "From")
            .and_then(wire::split_address)
            .is_some_and(|(network, address, param)| {
                network == "1"
                    && address.eq_ignore_ascii_case(&me)
                    && epid_of(param)
                        == guid
                            .as_deref()
                            .map(|g| wire::bare_guid(g).to_ascii_lowercase())
                            .as_deref()
            });
        let to = routed
            .header_in(0, "To")
            .and_then(wire::split_address)
            .filter(|(network, _, param)| *network == "9" && *param == Some("path=IM"))
            .and_then(|(_, address, _)| wire::circle_of(address));
        let circle = to
            .as_ref()
            .and_then(|id| state.circles.get(id))
            .filter(|c| c.accepted(&me) && c.has_endpoint(self.conn.id));
        let (true, Some(circle), Some(_)) = (from_ok, circle, routed.content()) else {
            return self.err(201, trid);
        };
        for j in circle.joined.iter().filter(|j| j.conn.id != self.conn.id) {
            j.conn.send(
                Frame::command(Verb::SDG, 0, Vec::<String>::new()).with_payload(payload.clone()),
            );
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (id, list bits) per circle entry, `None` without any.
    type Found = Option<Vec<(String, u8)>>;

    /// The circle entries of `ml`.
    fn entries(ml: &str) -> Result<Found, (u16, bool)> {
        let root = Element::parse(ml).unwrap();
        circle_entries(&root)
            .map(|found| found.map(|v| v.into_iter().map(|e| (e.id, e.lists.0)).collect()))
    }

    #[test]
    fn circle_entries_come_alone_in_live_com() {
        assert_eq!(
            entries(r#"<ml l="1"><d n="example.com"><c n="bob" l="3" t="1"/></d></ml>"#),
            Ok(None)
        );
        assert_eq!(
            entries(
                r#"<ml l="1"><d n="live.com"><c n="00000000-0000-0000-0009-00000000000A" l="3" t="9"/></d></ml>"#
            ),
            Ok(Some(vec![(
                "00000000-0000-0000-0009-00000000000a".to_owned(),
                3
            )]))
        );
        // Mixed with a contact, beside another domain, or with RL: 241 and a disconnect.
        for ml in [
            r#"<ml l="1"><d n="live.com"><c n="00000000-0000-0000-0009-000000000001" l="3" t="9"/><c n="bob" l="3" t="1"/></d></ml>"#,
            r#"<ml l="1"><d n="live.com"><c n="00000000-0000-0000-0009-000000000001" l="3" t="9"/></d><d n="example.com"><c n="bob" l="3" t="1"/></d></ml>"#,
            r#"<ml l="1"><d n="live.com"><c n="00000000-0000-0000-0009-000000000001" l="8" t="9"/></d></ml>"#,
        ] {
            assert_eq!(entries(ml), Err((241, true)), "{ml}");
        }
        // Another domain, or an id that is not a circle's: 933.
        for ml in [
            r#"<ml l="1"><d n="example.com"><c n="00000000-0000-0000-0009-000000000001" l="3" t="9"/></d></ml>"#,
            r#"<ml l="1"><d n="live.com"><c n="bob" l="3" t="9"/></d></ml>"#,
        ] {
            assert_eq!(entries(ml), Err((933, false)), "{ml}");
        }
    }
}
