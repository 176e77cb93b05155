//! Presence notification lines per protocol version (MSNP.md §5.4, §5.5) and their
//! fan-out to watchers: `ILN` (initial dump after the first `CHG`), `NLN`, `FLN` and,
//! for MSNP11+, the `UBX` that follows every presence line (Escargot behaviour).
//!
//! Reads the shared state; sends through the watchers' connection handles.

use msnp::frame::Frame;
use msnp::verb::Verb;

use super::state::State;

/// `<msnobj/>`, percent-encoded as msnobj arguments are on the wire.
const EMPTY_MSNOBJ: &str = "%3Cmsnobj%2F%3E";

/// `ILN trid …` (when `trid` is set) or `NLN …` for `user`, plus `UBX` for MSNP11+.
/// Empty when `user` appears offline.
pub(crate) fn online_frames(
    state: &State,
    user: &str,
    version: u8,
    trid: Option<u32>,
) -> Vec<Frame> {
    let Some(session) = state.sessions.get(user) else {
        return Vec::new();
    };
    let Some(status) = session.visible_status() else {
        return Vec::new();
    };
    let mut args = vec![
        status.to_owned(),
        user.to_owned(),
        state.name_of(user),
        session.caps.clone(),
    ];
    // MSNP8 has no msnobj; 9–12 carry it when set (R2M omits it otherwise, Escargot
    // names an empty one, §2.8, §5.4).
    if version >= 9 {
        match &session.msnobj {
            Some(obj) => args.push(obj.clone()),
            None if state.escargot_presence => args.push(EMPTY_MSNOBJ.to_owned()),
            None => {}
        }
    }
    let presence = match trid {
        Some(trid) => Frame::command(Verb::ILN, trid, args),
        None => Frame::untracked(Verb::NLN, args),
    };
    let mut out = vec![presence];
    if version >= 11 {
        out.push(ubx(state, user));
    }
    out
}

/// `UBX email len` with the user's last personal-message document (MSNP11–12 form).
pub(crate) fn ubx(state: &State, user: &str) -> Frame {
    let psm = state
        .accounts
        .get(user)
        .map(|a| a.psm.clone())
        .unwrap_or_default();
    Frame::untracked(Verb::UBX, [user]).with_payload(psm)
}

/// `FLN email` (MSNP8–12).
pub(crate) fn fln(user: &str) -> Frame {
    Frame::untracked(Verb::FLN, [user])
}

/// Tells every watcher of `user` about its current state: `NLN` (+`UBX`) when visible,
/// `FLN` when it just stopped being visible (`was_visible`).
pub(crate) fn fan_out(state: &State, user: &str, was_visible: bool) {
    let visible = state
        .sessions
        .get(user)
        .and_then(|s| s.visible_status())
        .is_some();
    for (_, conn, version) in state.watchers(user) {
        if visible {
            for frame in online_frames(state, user, version, None) {
                conn.send(frame);
            }
        } else if was_visible {
            conn.send(fln(user));
        }
    }
}

/// Tells one logged-in `viewer` the state of `user` as `viewer` may now see it: used
/// after list changes (added to FL, blocked, unblocked).
pub(crate) fn refresh_one(state: &State, user: &str, viewer: &str) {
    let Some(viewer_session) = state.sessions.get(viewer) else {
        return;
    };
    if viewer_session.status.is_none() {
        return;
    }
    let on_fl = state
        .accounts
        .get(viewer)
        .is_some_and(|a| a.lists_of(user).contains(super::accounts::Lists::FL));
    if !on_fl {
        return;
    }
    if state.visible_to(user, viewer).is_some() {
        for frame in online_frames(state, user, viewer_session.version, None) {
            viewer_session.conn.send(frame);
        }
    } else {
        viewer_session.conn.send(fln(user));
    }
}
