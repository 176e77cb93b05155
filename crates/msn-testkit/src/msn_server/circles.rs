//! Circles (MSNP18 group chats, MSNP.md §15.4) on the test server, as Escargot keeps
//! them: a circle (`00000000-0000-0000-0009-<12 hex>`, numbered from a counter), its
//! display name, its members with their role and membership state, and the NS endpoints
//! that joined its conversation (its IM roster) with `PUT`. This file holds the model and
//! the roster changes with their notices (`NFY PUT` to everyone joined when someone
//! joins, `NFY DEL` when someone's last endpoint leaves or the member leaves the circle).
//!
//! Files: `circles/wire` (the routed payloads read and written, the circle ticket),
//! `circles/book` (the circles in `ABFindContactsPaged`), `ns/circles` (the NS commands:
//! `USR SHA`, the circle `ADL`, `PUT`, `SDG`).

pub(crate) mod book;
pub(crate) mod wire;

#[cfg(test)]
mod tests;

use bytes::Bytes;

use msnp::frame::Frame;
use msnp::verb::Verb;

use super::conn::ConnTx;
use super::state::State;

/// Every circle id starts with this (§15.4).
pub(crate) const ID_PREFIX: &str = "00000000-0000-0000-0009-";

/// A member's role in a circle (`CirclePersonalMembership/Role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Admin,
    Member,
}

impl Role {
    /// The name `CircleInverseInfo` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::Member => "Member",
        }
    }
}

/// A member's membership state (`CirclePersonalMembership/State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberState {
    Accepted,
    /// Invited, not yet answered.
    WaitingResponse,
}

impl MemberState {
    /// The name `CircleInverseInfo` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Accepted => "Accepted",
            MemberState::WaitingResponse => "WaitingResponse",
        }
    }
}

/// A member of a circle.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// Lower-case address.
    pub email: String,
    pub role: Role,
    pub state: MemberState,
}

/// An NS endpoint in a circle's conversation.
#[derive(Debug, Clone)]
pub(crate) struct Joined {
    /// Its account, lower-case.
    pub email: String,
    pub conn: ConnTx,
}

/// A circle.
#[derive(Debug, Clone)]
pub(crate) struct Circle {
    /// Lower-case id.
    pub id: String,
    /// Its display name (plain text).
    pub name: String,
    pub members: Vec<Member>,
    /// The endpoints in its conversation, in the order they joined.
    pub joined: Vec<Joined>,
}

impl Circle {
    /// The membership of `email`, if a member.
    pub fn member(&self, email: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.email == email)
    }

    /// Whether `email` is a member who accepted.
    pub fn accepted(&self, email: &str) -> bool {
        self.member(email)
            .is_some_and(|m| m.state == MemberState::Accepted)
    }

    /// Whether the endpoint on `conn_id` is in the conversation.
    pub fn has_endpoint(&self, conn_id: u64) -> bool {
        self.joined.iter().any(|j| j.conn.id == conn_id)
    }

    /// The accounts in the conversation, once each, in the order they joined.
    pub fn roster(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for j in &self.joined {
            if !out.contains(&j.email) {
                out.push(j.email.clone());
            }
        }
        out
    }

    /// Sends every endpoint in the conversation the roster (`NFY PUT`, §15.4 step 5).
    pub fn send_roster(&self) {
        let roster = self.roster();
        for j in &self.joined {
            j.conn.send(nfy(
                "PUT",
                wire::roster_payload(&j.email, &self.id, &roster),
            ));
        }
    }

    /// Tells the endpoints in the conversation that `who` left it (`NFY DEL`).
    fn send_left(&self, who: &str) {
        let via = msnp::circle::address(&self.id);
        for j in &self.joined {
            j.conn
                .send(nfy("DEL", wire::left_payload(&j.email, &self.id, who)));
            // Gone from the circle's view: offline by way of it (§15.4 step 4).
            j.conn.send(Frame::untracked(
                Verb::FLN,
                [format!("1:{who};via={via}"), "0:0".to_owned()],
            ));
        }
    }

    /// Takes the endpoints `leaving` picks out of the conversation; the accounts left
    /// without an endpoint in it are announced to those still there (`NFY DEL`).
    fn remove_endpoints(&mut self, leaving: impl Fn(&Joined) -> bool) -> Vec<Joined> {
        let (gone, stay): (Vec<Joined>, Vec<Joined>) =
            self.joined.drain(..).partition(|j| leaving(j));
        self.joined = stay;
        let mut announced: Vec<&str> = Vec::new();
        for j in &gone {
            let still_there = self.joined.iter().any(|k| k.email == j.email);
            if !still_there && !announced.contains(&j.email.as_str()) {
                announced.push(&j.email);
                self.send_left(&j.email);
            }
        }
        gone
    }
}

/// `NFY <kind> len` + payload.
fn nfy(kind: &str, payload: String) -> Frame {
    Frame::untracked(Verb::NFY, [kind]).with_payload(Bytes::from(payload))
}

/// The id of the `n`-th circle.
pub(crate) fn circle_id(n: u64) -> String {
    format!("{ID_PREFIX}{:012x}", n & 0xffff_ffff_ffff)
}

/// Creates a circle: `admin` its admin, `members` members, all accepted. Returns its id.
pub(crate) fn create(state: &mut State, name: &str, admin: &str, members: &[String]) -> String {
    state.circle_count += 1;
    let id = circle_id(state.circle_count);
    let mut list = vec![Member {
        email: admin.to_owned(),
        role: Role::Admin,
        state: MemberState::Accepted,
    }];
    for email in members {
        if list.iter().all(|m| m.email != *email) {
            list.push(Member {
                email: email.clone(),
                role: Role::Member,
                state: MemberState::Accepted,
            });
        }
    }
    state.circles.insert(
        id.clone(),
        Circle {
            id: id.clone(),
            name: name.to_owned(),
            members: list,
            joined: Vec::new(),
        },
    );
    id
}

/// Adds `email` to circle `id` as an invited member (`WaitingResponse`); a member
/// already there is left as is.
pub(crate) fn invite(state: &mut State, id: &str, email: &str) {
    if let Some(circle) = state.circles.get_mut(id)
        && circle.member(email).is_none()
    {
        circle.members.push(Member {
            email: email.to_owned(),
            role: Role::Member,
            state: MemberState::WaitingResponse,
        });
    }
}

/// Member `email` leaves circle `id`: no longer a member, out of the conversation. Those still
/// in it get `NFY DEL` for `email` (whether or not `email` was in it); `email`'s own
/// endpoints in it get one `NFY DEL` per account still there, as Escargot tells a
/// member whose membership ended.
pub(crate) fn leave(state: &mut State, id: &str, email: &str) {
    let Some(circle) = state.circles.get_mut(id) else {
        return;
    };
    if circle.member(email).is_none() {
        return;
    }
    circle.members.retain(|m| m.email != email);
    let gone = circle.remove_endpoints(|j| j.email == email);
    if gone.is_empty() {
        circle.send_left(email);
    }
    let rest = circle.roster();
    for j in &gone {
        for other in &rest {
            j.conn
                .send(nfy("DEL", wire::left_payload(&j.email, &circle.id, other)));
        }
    }
}

/// Takes the endpoint on `conn_id` out of every conversation (its NS connection closed,
/// or it removed the circle with `RML`): `NFY DEL` to those still there when it was its
/// account's last endpoint there.
pub(crate) fn drop_endpoint(state: &mut State, conn_id: u64) {
    for circle in state.circles.values_mut() {
        if circle.has_endpoint(conn_id) {
            circle.remove_endpoints(|j| j.conn.id == conn_id);
        }
    }
}

/// Takes the endpoint on `conn_id` out of circle `id`'s conversation.
pub(crate) fn drop_endpoint_from(state: &mut State, id: &str, conn_id: u64) {
    if let Some(circle) = state.circles.get_mut(id) {
        circle.remove_endpoints(|j| j.conn.id == conn_id);
    }
}
