//! The notification-server machine's part in circles (MSNP18 group chats, MSNP.md
//! §15.4): joining them once logged in (`USR SHA A`, the circle `ADL`, a `PUT` per
//! circle), sending into them (`SDG`, which has no answer: it counts as answered once
//! queued), and turning the `NFY`/`SDG` the server routes into events.

use std::ops::RangeInclusive;
use std::time::Instant;

use super::{CommandError, NsEvent, NsSession, PendingKind, SUPPORTED_VERSIONS};
use crate::circle::{self, Outgoing};
use crate::frame::Frame;
use crate::verb::Verb;

impl NsSession {
    /// Joins the user's circles `ids` with the circle ticket from the address book:
    /// `USR SHA A`, the circle `ADL`, then a `PUT` into each circle's conversation. Call
    /// once logged in (the contacts' `ADL` must have gone first). Returns the TrIDs used,
    /// `USR` to the last `PUT`: the server answers in order, so the last answer settles
    /// them all, and an error for any of them refuses the join.
    pub fn join_circles(
        &mut self,
        now: Instant,
        ticket: &str,
        ids: &[&str],
    ) -> Result<RangeInclusive<u32>, CommandError> {
        self.require_online()?;
        self.require_version("PUT", 18, *SUPPORTED_VERSIONS.end())?;
        let endpoint = self
            .config
            .machine_guid
            .clone()
            .ok_or(CommandError::InvalidArgument {
                what: "machine GUID",
            })?;
        if ids.is_empty() {
            return Err(CommandError::InvalidArgument { what: "circles" });
        }
        let adl = circle::adl(ids).map_err(|_| CommandError::InvalidArgument { what: "circle" })?;
        let mut puts = Vec::with_capacity(ids.len());
        for id in ids {
            puts.push(
                circle::join(id, &self.config.login, &endpoint)
                    .map_err(|_| CommandError::InvalidArgument { what: "circle" })?,
            );
        }
        let nonce = circle::sha_nonce(ticket);
        let first = self.send(
            now,
            Verb::USR,
            vec!["SHA".into(), "A".into(), nonce],
            PendingKind::Plain,
        );
        self.send_payload(
            now,
            Verb::ADL,
            Vec::new(),
            adl.into_bytes(),
            PendingKind::Plain,
        );
        let mut last = 0;
        for put in puts {
            last = self.send_payload(now, Verb::PUT, Vec::new(), put, PendingKind::Plain);
        }
        Ok(first..=last)
    }

    /// Sends text, typing or a nudge into circle `id` (`SDG`). The server answers only
    /// failures, so it counts as answered at once; a refusal arrives as a server error.
    pub fn send_to_circle(
        &mut self,
        _now: Instant,
        id: &str,
        what: &Outgoing<'_>,
    ) -> Result<u32, CommandError> {
        self.require_online()?;
        self.require_version("SDG", 18, *SUPPORTED_VERSIONS.end())?;
        let endpoint =
            self.config
                .machine_guid
                .as_deref()
                .ok_or(CommandError::InvalidArgument {
                    what: "machine GUID",
                })?;
        let payload = circle::send(id, &self.config.login, endpoint, self.circle_segment, what)
            .map_err(|_| CommandError::InvalidArgument { what: "message" })?;
        self.circle_segment = self.circle_segment.wrapping_add(1);
        let trid = self.alloc_trid();
        self.transmit.push_back(
            Frame::command(Verb::SDG, trid, Vec::<String>::new())
                .with_payload(bytes::Bytes::from(payload)),
        );
        self.events.push_back(NsEvent::Replied { trid });
        Ok(trid)
    }

    /// `NFY PUT`/`NFY DEL` (`notification`) or `SDG` (`None`) from the server.
    pub(super) fn on_routed(&mut self, notification: Option<&str>, frame: &Frame) {
        let Some(payload) = &frame.payload else {
            return;
        };
        match circle::read(notification, payload) {
            Ok(Some(event)) => self.events.push_back(NsEvent::Circle(event)),
            Ok(None) => {}
            // Not ours to fail the session over: one unreadable notification is dropped.
            Err(_) => {}
        }
    }
}
