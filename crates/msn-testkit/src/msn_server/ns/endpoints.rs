//! Signing endpoints out (MSNP16+, MSNP.md §15.3.5), as Escargot relays it: `UUN trid
//! account;{guid} 4 len` + `goawyplzthxbye` reaches that endpoint as `UBN
//! account;{sender-guid} 4 len` + the payload; type 8 on the bare address reaches every
//! endpoint of the account, the sender's included. The server disconnects nobody: the
//! receiver is expected to leave. Anything else is acknowledged and dropped.

use msnp::frame::Frame;
use msnp::verb::Verb;

use super::{Flow, Ns};

impl Ns {
    /// `UUN trid target type len` + payload.
    pub(super) fn uun(&mut self, f: &Frame) -> Flow {
        let trid = f.trid.unwrap_or(0);
        let (Some(target), Some(kind)) = (f.arg(0), f.arg(1)) else {
            return self.err(201, f.trid);
        };
        let payload = f.payload.clone().unwrap_or_default();
        let me = self.me();
        let (account, guid) = match target.split_once(';') {
            Some((account, guid)) => (account.to_lowercase(), Some(guid.to_owned())),
            None => (target.to_lowercase(), None),
        };
        self.send(Frame::command(Verb::UUN, trid, ["OK"]));
        if account != me || !matches!(kind, "4" | "8") {
            return Flow::Continue;
        }
        let state = self.shared.lock();
        let Some(session) = state.sessions.get(&me) else {
            return Flow::Continue;
        };
        // (connection, machine GUID) of every endpoint of the account.
        let all: Vec<_> = std::iter::once((session.conn.clone(), session.machine_guid.clone()))
            .chain(
                session
                    .others
                    .iter()
                    .map(|e| (e.conn.clone(), Some(e.guid.clone()))),
            )
            .collect();
        let sender_guid = all
            .iter()
            .find(|(conn, _)| conn.id == self.conn.id)
            .and_then(|(_, g)| g.clone());
        let from = match &sender_guid {
            Some(g) => format!("{me};{g}"),
            None => me.clone(),
        };
        let targets: Vec<_> = all
            .into_iter()
            .filter(|(_, g)| match (&guid, g) {
                (Some(wanted), Some(g)) => g.eq_ignore_ascii_case(wanted),
                (Some(_), None) => false,
                (None, _) => true,
            })
            .map(|(conn, _)| conn)
            .collect();
        for conn in targets {
            conn.send(
                Frame::untracked(Verb::UBN, [from.as_str(), kind]).with_payload(payload.clone()),
            );
        }
        Flow::Continue
    }
}
