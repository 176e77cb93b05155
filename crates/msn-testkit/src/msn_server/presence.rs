//! Presence notification lines per protocol version (MSNP.md §5.4, §5.5) and their
//! fan-out to watchers: `ILN` (initial dump after the first `CHG`; `NLN` on MSNP18),
//! `NLN`, `FLN` and, for MSNP11+, the `UBX` that follows every presence line (Escargot
//! behaviour). From MSNP14 the address carries its network (an argument after it on
//! 14–17, a `1:` prefix on 18) and from MSNP16 the capabilities are `caps:capsex`.
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
    let mut args = vec![status.to_owned()];
    args.extend(address_args(user, version));
    args.push(state.name_of(user));
    args.push(caps_for(version, &session.caps));
    // MSNP8 has no msnobj; 9–13 carry it when set (R2M omits it otherwise, Escargot
    // names an empty one, §2.8, §5.4); from 14 the field is always there.
    if version >= 9 {
        match &session.msnobj {
            Some(obj) => args.push(obj.clone()),
            None if state.escargot_presence || version >= 14 => {
                args.push(EMPTY_MSNOBJ.to_owned());
            }
            None => {}
        }
    }
    let presence = match trid {
        // MSNP18 has no ILN: the initial dump is NLN lines too.
        Some(trid) if version < 18 => Frame::command(Verb::ILN, trid, args),
        _ => Frame::untracked(Verb::NLN, args),
    };
    let mut out = vec![presence];
    if version >= 11 {
        out.push(ubx(state, user, version));
    }
    out
}

/// `NLN` (+ `UBX`) for `user` as circle `via` (`9:<id>@live.com`) reports its members
/// to each other on MSNP18 (§15.4 step 4): the address is `1:<user>;via=<via>`.
pub(crate) fn circle_member_frames(state: &State, user: &str, via: &str) -> Vec<Frame> {
    let address = format!("1:{user}");
    online_frames(state, user, 18, None)
        .into_iter()
        .map(|frame| {
            let args: Vec<String> = frame
                .args
                .iter()
                .map(|arg| {
                    if arg == address {
                        format!("{address};via={via}")
                    } else {
                        arg.to_owned()
                    }
                })
                .collect();
            let renamed = Frame::untracked(frame.verb, args);
            match frame.payload {
                Some(payload) => renamed.with_payload(payload),
                None => renamed,
            }
        })
        .collect()
}

/// How `user` is named in presence lines for a `version` watcher (§5.4).
pub(crate) fn address_args(user: &str, version: u8) -> Vec<String> {
    match version {
        ..=13 => vec![user.to_owned()],
        14..=17 => vec![user.to_owned(), "1".to_owned()],
        _ => vec![format!("1:{user}")],
    }
}

/// `caps` as a `version` watcher reads it: `caps:capsex` from MSNP16, plain before.
fn caps_for(version: u8, caps: &str) -> String {
    let plain = caps.split(':').next().unwrap_or(caps);
    if version >= 16 {
        if caps.contains(':') {
            caps.to_owned()
        } else {
            format!("{plain}:0")
        }
    } else {
        plain.to_owned()
    }
}

/// `UBX` with the user's last personal-message document, addressed per `version`; for
/// MSNP16+ it lists one `<EndpointData id="{guid}">` per signed-in endpoint (§15.3.1).
pub(crate) fn ubx(state: &State, user: &str, version: u8) -> Frame {
    let psm = state
        .accounts
        .get(user)
        .map(|a| a.psm.clone())
        .unwrap_or_default();
    let endpoints: String = state
        .sessions
        .get(user)
        .filter(|_| version >= 16)
        .map(|s| {
            s.named_endpoints()
                .into_iter()
                .map(|(guid, _)| {
                    format!(
                        "<EndpointData id=\"{guid}\"><Capabilities>{}</Capabilities></EndpointData>",
                        caps_for(16, &s.caps)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if endpoints.is_empty() {
        return Frame::untracked(Verb::UBX, address_args(user, version)).with_payload(psm);
    }
    let doc = String::from_utf8_lossy(&psm).into_owned();
    let doc = match doc.rfind("</Data>") {
        Some(end) => format!("{}{endpoints}</Data>", doc.get(..end).unwrap_or_default()),
        None => format!("<Data><PSM></PSM><CurrentMedia></CurrentMedia>{endpoints}</Data>"),
    };
    Frame::untracked(Verb::UBX, address_args(user, version)).with_payload(doc.into_bytes())
}

/// `FLN` for `user` as a `version` watcher reads it (§5.4).
pub(crate) fn fln(user: &str, version: u8) -> Frame {
    let mut args = address_args(user, version);
    match version {
        ..=13 => {}
        14..=15 => args.push("0".to_owned()),
        _ => args.push("0:0".to_owned()),
    }
    Frame::untracked(Verb::FLN, args)
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
            conn.send(fln(user, version));
        }
    }
}

/// Tells one logged-in `viewer` the state of `user` as `viewer` may now see it: used
/// after list changes (added to FL, blocked, unblocked).
pub(crate) fn refresh_one(state: &State, user: &str, viewer: &str) {
    let Some(viewer_session) = state.sessions.get(viewer) else {
        return;
    };
    let endpoints = viewer_session.live_endpoints();
    if endpoints.is_empty() {
        return;
    }
    let on_fl = state
        .accounts
        .get(viewer)
        .is_some_and(|a| a.lists_of(user).contains(super::accounts::Lists::FL));
    if !on_fl {
        return;
    }
    let visible = state.visible_to(user, viewer).is_some();
    for (conn, version) in endpoints {
        if visible {
            for frame in online_frames(state, user, version, None) {
                conn.send(frame);
            }
        } else {
            conn.send(fln(user, version));
        }
    }
}
