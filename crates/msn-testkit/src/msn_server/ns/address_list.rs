//! `ADL`/`RML` of MSNP13+ on the test NS (MSNP.md §4.5), as Escargot answers them: the
//! initial list (`<ml l="1">`) only acknowledged (the server knows the lists); later ones
//! change the owner's forward, allow and block lists, with the same side effects as
//! `ADC`/`REM` (the other side's reverse list, presence, privacy). Reverse or pending
//! bits from a client are `241`, an empty domain `240`, both with a disconnect; an
//! unknown address is `208`. Pending entries stay pending: only the address book's
//! `DeleteMember` answers them. Circle entries (`t="9"`) go to `ns/circles`.

use msnp::frame::Frame;
use msnp::verb::Verb;
use msnp::xml::Element;

use super::super::accounts::Lists;
use super::{Flow, Ns, can_see_me, entry_mut, privacy_changed, tell_reverse};
use crate::msn_server::presence::refresh_one;
use crate::msn_server::state::Shared;

/// One `<c>` of a client's document.
struct Change {
    email: String,
    lists: Lists,
}

/// The changes in a client's `<ml>`, or the error code it earns.
fn changes(root: &Element) -> Result<Vec<Change>, u16> {
    let mut out = Vec::new();
    for domain in root.children_named("d") {
        let name = domain.attr("n").unwrap_or_default();
        if name.is_empty() || domain.children().is_empty() {
            return Err(240);
        }
        for contact in domain.children_named("c") {
            let local = contact.attr("n").unwrap_or_default();
            let bits: u8 = contact
                .attr("l")
                .and_then(|l| l.parse().ok())
                .ok_or(240_u16)?;
            if bits & !7 != 0 || bits == 0 {
                return Err(241);
            }
            out.push(Change {
                email: format!("{local}@{name}").to_lowercase(),
                lists: Lists(bits),
            });
        }
    }
    Ok(out)
}

impl Ns {
    /// `ADL trid len` / `RML trid len`.
    pub(super) fn address_list(&mut self, f: &Frame) -> Flow {
        let trid = f.trid.unwrap_or(0);
        let text = String::from_utf8_lossy(f.payload.as_deref().unwrap_or_default()).into_owned();
        let Some(root) = Element::parse(&text).ok().filter(|r| r.name == "ml") else {
            self.send(super::error(240, Some(trid)));
            return Flow::Close;
        };
        if let Some(flow) = self.circle_list(f, &root) {
            return flow;
        }
        let changes = match changes(&root) {
            Ok(changes) => changes,
            Err(code) => {
                self.send(super::error(code, Some(trid)));
                return Flow::Close;
            }
        };
        let adding = f.verb == Verb::ADL;
        if adding && root.attr("l") == Some("1") {
            self.circle.initial_adl_done();
        } else {
            let known = {
                let state = self.shared.lock();
                changes
                    .iter()
                    .all(|c| state.accounts.contains_key(&c.email))
            };
            if !known {
                return self.err(208, Some(trid));
            }
            for change in &changes {
                change_lists(
                    &self.shared,
                    &self.me(),
                    &change.email,
                    change.lists,
                    adding,
                );
            }
        }
        self.send(Frame::command(f.verb, trid, ["OK"]));
        Flow::Continue
    }
}

/// Adds `lists` to (`adding`) or takes them from `me`'s entry for `email`, with the side
/// effects of `ADC`/`REM` (the other side's reverse list and its notice, presence,
/// privacy); shared by `ADL`/`RML` and the address book's calls.
pub(crate) fn change_lists(shared: &Shared, me: &str, email: &str, lists: Lists, adding: bool) {
    let me = me.to_owned();
    let mut state = shared.lock();
    let before = can_see_me(&state, &me);
    let had = state
        .accounts
        .get(&me)
        .map(|a| a.lists_of(email))
        .unwrap_or_default();
    let name = state.name_of(email);
    let guid = shared.guid();
    let entry = entry_mut(&mut state, &me, email, &name, guid);
    entry.lists = if adding {
        entry.lists | lists
    } else {
        entry.lists.without(lists)
    };
    let fl_now = entry.lists.contains(Lists::FL);
    if had.contains(Lists::FL) != fl_now {
        let my_name = state.name_of(&me);
        let guid = shared.guid();
        let theirs = entry_mut(&mut state, email, &me, &my_name, guid);
        theirs.lists = if fl_now {
            super::added_by(theirs.lists)
        } else {
            theirs.lists.without(Lists::RL | Lists::PL)
        };
        tell_reverse(&mut state, email, &me, fl_now);
        if fl_now {
            refresh_one(&state, email, &me);
        }
    }
    privacy_changed(&state, &me, &before);
    for owner in [me.as_str(), email] {
        if let Some(a) = state.accounts.get_mut(owner) {
            a.prune();
        }
    }
}
