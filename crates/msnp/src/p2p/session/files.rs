//! File transfers of a [`P2pEndpoint`] (MSNP.md §10.5), over the switchboard.
//!
//! Incoming: an offer is reported ([`P2pEvent::FileOffered`]) and waits for the local
//! decision; once accepted, each data chunk is passed on in order as
//! [`P2pEvent::FileData`] and nothing of it is kept, so a file of any size costs one
//! chunk of memory here. Outgoing: the file is offered, and once the contact accepts,
//! the shell feeds it at most [`FILE_FEED_WINDOW`] bytes ahead of what has been sent
//! ([`P2pEndpoint::wanted_file_data`], [`P2pEndpoint::feed_file`]).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::{
    FetchError, FileContext, FileContextError, Kind, P2pEndpoint, P2pError, P2pEvent, Packet,
    SlpMessage, StartError, Transfer, TransferId,
};
use crate::p2p::header::{Header, ReassemblyError, app_id, flags};
use crate::p2p::slp::CT_SESSION_REQ;

/// Most bytes of an outgoing file queued in the endpoint, fed and not yet sent.
pub const FILE_FEED_WINDOW: usize = 64 * 1024;

/// Flags of file data chunks (§10.5 step 3): `0x01000030`.
const FILE_DATA: u32 = flags::WLM2009 | flags::MSNOBJ_DATA | flags::FILE;

#[derive(Debug)]
pub(super) enum IncomingState {
    /// Offered; the local decision is awaited. Holds the INVITE to answer.
    Offered(Box<SlpMessage>),
    /// Accepted; data is arriving.
    Receiving,
    /// Every byte arrived and was acknowledged; the sender's BYE is awaited.
    Done,
}

/// A file the contact sends us.
#[derive(Debug)]
pub(in crate::p2p) struct Incoming {
    state: IncomingState,
    size: u64,
    received: u64,
}

#[derive(Debug, Clone, Copy)]
enum OutgoingState {
    /// INVITE sent; the contact's answer is awaited.
    Offering,
    /// Accepted; chunks go out as they are fed.
    Sending,
    /// The last chunk is out; its ACK (with this Identifier) is awaited.
    AwaitDataAck(u32),
    /// Delivered; our BYE (this Identifier) awaits its ACK.
    Closing(u32),
}

/// A file we send the contact.
#[derive(Debug)]
pub(in crate::p2p) struct Outgoing {
    state: OutgoingState,
    size: u64,
    fed: u64,
    sent: u64,
    queue: VecDeque<Bytes>,
    queued: usize,
    /// Identifier and AckSessionID of the data message, taken at its first chunk.
    ids: Option<(u32, u32)>,
}

impl Outgoing {
    /// Whether a chunk can go out now.
    pub(super) fn can_send(&self) -> bool {
        matches!(self.state, OutgoingState::Sending) && !self.queue.is_empty()
    }

    /// Whether an ACK of `acked` moves this transfer on.
    pub(super) fn awaits_ack(&self, acked: u32) -> bool {
        matches!(self.state, OutgoingState::AwaitDataAck(id) | OutgoingState::Closing(id) if id == acked)
    }
}

impl P2pEndpoint {
    /// Offers `file` to `peer` (§10.5, sending): the INVITE goes out now; the contact's
    /// answer comes as [`P2pEvent::FileAccepted`] or [`P2pEvent::FileFailed`]. An
    /// offer not answered within `Limits::p2p_file_offer_timeout` is withdrawn.
    pub fn offer_file(
        &mut self,
        now: Instant,
        peer: &str,
        file: &FileContext,
    ) -> Result<TransferId, StartError> {
        if file.size == 0 {
            return Err(StartError::Empty);
        }
        if self.transfers.len() >= self.limits.max_p2p_sessions {
            return Err(StartError::TooManySessions);
        }
        let ids = self.draw_ids();
        let invite = SlpMessage::invite_file(
            peer,
            &self.config.local,
            ids.branch,
            ids.call_id,
            ids.session_id,
            file,
        )?;
        self.send_slp(peer, &invite);
        let id = self.next_id();
        self.transfers.push(Transfer {
            id,
            peer: peer.to_owned(),
            session_id: ids.session_id,
            branch: ids.branch,
            call_id: ids.call_id,
            deadline: now + self.limits.p2p_file_offer_timeout,
            kind: Kind::FileOut(Outgoing {
                state: OutgoingState::Offering,
                size: file.size,
                fed: 0,
                sent: 0,
                queue: VecDeque::new(),
                queued: 0,
                ids: None,
            }),
        });
        Ok(id)
    }

    /// The outgoing file that can take more data now, where its next byte lies, and how
    /// many bytes it takes at most (never more than [`FILE_FEED_WINDOW`] ahead).
    pub fn wanted_file_data(&self) -> Option<(TransferId, u64, usize)> {
        self.transfers.iter().find_map(|t| {
            let Kind::FileOut(out) = &t.kind else {
                return None;
            };
            let room = FILE_FEED_WINDOW.saturating_sub(out.queued);
            let left = out.size.saturating_sub(out.fed);
            let wants = matches!(out.state, OutgoingState::Offering | OutgoingState::Sending)
                && room > 0
                && left > 0;
            wants.then(|| {
                (
                    t.id,
                    out.fed,
                    room.min(usize::try_from(left).unwrap_or(room)),
                )
            })
        })
    }

    /// Appends the next bytes of an outgoing file (beyond its announced size they are
    /// dropped). False when the transfer is gone.
    pub fn feed_file(&mut self, now: Instant, id: TransferId, data: Bytes) -> bool {
        let progress = self.limits.p2p_progress_timeout;
        let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) else {
            return false;
        };
        let Kind::FileOut(out) = &mut t.kind else {
            return false;
        };
        let left = usize::try_from(out.size.saturating_sub(out.fed)).unwrap_or(usize::MAX);
        let data = data.slice(..data.len().min(left));
        if data.is_empty() {
            return true;
        }
        out.fed += data.len() as u64;
        out.queued += data.len();
        out.queue.push_back(data);
        if matches!(out.state, OutgoingState::Sending) {
            t.deadline = now + progress;
        }
        true
    }

    /// Accepts a file the contact offers ([`P2pEvent::FileOffered`]): `200 OK`, then
    /// its data comes as [`P2pEvent::FileData`]. False when the offer is gone.
    pub fn accept_file(&mut self, now: Instant, id: TransferId) -> bool {
        let progress = self.limits.p2p_progress_timeout;
        let linger = self.limits.p2p_linger;
        let Some(t) = self.transfers.iter_mut().find(|t| t.id == id) else {
            return false;
        };
        let Kind::FileIn(incoming) = &mut t.kind else {
            return false;
        };
        let IncomingState::Offered(invite) = &incoming.state else {
            return false;
        };
        let ok = SlpMessage::response(invite, 200, "OK", t.session_id);
        let (peer, empty) = (t.peer.clone(), incoming.size == 0);
        incoming.state = if empty {
            IncomingState::Done
        } else {
            IncomingState::Receiving
        };
        t.deadline = now + if empty { linger } else { progress };
        self.send_slp(&peer, &ok);
        if empty {
            self.events.push_back(P2pEvent::FileReceived { id, peer });
        }
        true
    }

    /// Declines a file the contact offers (`603 Decline`); nothing more is reported.
    pub fn decline_file(&mut self, id: TransferId) {
        let Some(pos) = self.transfers.iter().position(|t| {
            t.id == id
                && matches!(
                    &t.kind,
                    Kind::FileIn(Incoming {
                        state: IncomingState::Offered(_),
                        ..
                    })
                )
        }) else {
            return;
        };
        let t = self.transfers.remove(pos);
        self.end(t, None, true);
    }

    /// An INVITE offering a file (§10.5, receiving); it is ACKed already.
    pub(super) fn handle_file_offer(
        &mut self,
        now: Instant,
        from: &str,
        msg: &SlpMessage,
        offer: Result<FileContext, FileContextError>,
    ) {
        let session_id = msg.session_id().unwrap_or(0);
        let refusal = match &offer {
            Err(_) => Some(super::DeclineReason::BadFileContext),
            Ok(_) if session_id == 0 => Some(super::DeclineReason::BadFileContext),
            Ok(_) if self.transfers.len() >= self.limits.max_p2p_sessions => {
                Some(super::DeclineReason::TooManySessions)
            }
            Ok(_) => None,
        };
        let (Ok(file), None) = (offer, refusal) else {
            let decline = SlpMessage::response(msg, 603, "Decline", session_id);
            self.send_slp(from, &decline);
            self.events.push_back(P2pEvent::Declined {
                peer: from.to_owned(),
                reason: refusal.unwrap_or(super::DeclineReason::BadFileContext),
            });
            return;
        };
        let id = self.next_id();
        self.transfers.push(Transfer {
            id,
            peer: from.to_owned(),
            session_id,
            branch: msg.branch,
            call_id: msg.call_id,
            deadline: now + self.limits.p2p_progress_timeout,
            kind: Kind::FileIn(Incoming {
                state: IncomingState::Offered(Box::new(msg.clone())),
                size: file.size,
                received: 0,
            }),
        });
        self.events.push_back(P2pEvent::FileOffered {
            id,
            peer: from.to_owned(),
            file,
        });
    }

    /// A chunk of the session of incoming file `idx`.
    pub(super) fn file_chunk(
        &mut self,
        now: Instant,
        from: &str,
        idx: usize,
        p: &Packet,
    ) -> Result<(), P2pError> {
        let h = &p.header;
        let progress = self.limits.p2p_progress_timeout;
        let linger = self.limits.p2p_linger;
        let Some(t) = self.transfers.get_mut(idx) else {
            return Ok(());
        };
        let Kind::FileIn(incoming) = &mut t.kind else {
            return Ok(());
        };
        if !matches!(incoming.state, IncomingState::Receiving) || !h.is_data() {
            return Ok(());
        }
        let problem = if h.total_size != incoming.size {
            Some(FetchError::SizeMismatch {
                expected: incoming.size,
                got: h.total_size,
            })
        } else if h.offset < incoming.received {
            Some(FetchError::BadData(ReassemblyError::Overlap {
                offset: h.offset,
            }))
        } else if h.offset > incoming.received {
            // The switchboard keeps chunks in order; a gap means data was lost.
            Some(FetchError::BadData(ReassemblyError::TooFragmented))
        } else if incoming.received + p.data.len() as u64 > incoming.size {
            Some(FetchError::BadData(ReassemblyError::PastEnd))
        } else {
            None
        };
        if let Some(error) = problem {
            let t = self.transfers.remove(idx);
            self.end(t, Some(error.clone()), true);
            return match error {
                FetchError::BadData(e) => Err(e.into()),
                _ => Ok(()),
            };
        }
        let (id, offset) = (t.id, incoming.received);
        incoming.received += p.data.len() as u64;
        let complete = incoming.received == incoming.size;
        t.deadline = now + if complete { linger } else { progress };
        if complete {
            incoming.state = IncomingState::Done;
        }
        let peer = t.peer.clone();
        if !p.data.is_empty() {
            self.events.push_back(P2pEvent::FileData {
                id,
                offset,
                data: p.data.clone(),
            });
        }
        if complete {
            self.send_ack(from, h, p.footer);
            self.events.push_back(P2pEvent::FileReceived { id, peer });
        }
        Ok(())
    }

    /// The contact's answer to a file we offer.
    pub(super) fn file_answered(&mut self, now: Instant, pos: usize, code: u16, msg: &SlpMessage) {
        let progress = self.limits.p2p_progress_timeout;
        let Some(t) = self.transfers.get_mut(pos) else {
            return;
        };
        let Kind::FileOut(out) = &mut t.kind else {
            return;
        };
        if !matches!(out.state, OutgoingState::Offering)
            || !msg.content_type.eq_ignore_ascii_case(CT_SESSION_REQ)
        {
            return;
        }
        if code == 200 {
            out.state = OutgoingState::Sending;
            t.deadline = now + progress;
            let (id, peer) = (t.id, t.peer.clone());
            self.events.push_back(P2pEvent::FileAccepted { id, peer });
        } else {
            let t = self.transfers.remove(pos);
            self.end(t, Some(FetchError::Declined { code }), false);
        }
    }

    /// An ACK for outgoing file `idx` (checked by `awaits_ack`).
    pub(super) fn file_acked(&mut self, now: Instant, idx: usize) {
        let linger = self.limits.p2p_linger;
        let Some(t) = self.transfers.get(idx) else {
            return;
        };
        let Kind::FileOut(out) = &t.kind else {
            return;
        };
        if matches!(out.state, OutgoingState::Closing(_)) {
            self.transfers.remove(idx);
            return;
        }
        let (id, peer, branch, call_id) = (t.id, t.peer.clone(), t.branch, t.call_id);
        self.events.push_back(P2pEvent::FileSent {
            id,
            peer: peer.clone(),
        });
        let bye = SlpMessage::bye(&peer, &self.config.local, branch, call_id);
        let bye_id = self.send_slp(&peer, &bye);
        if let Some(t) = self.transfers.get_mut(idx)
            && let Kind::FileOut(out) = &mut t.kind
        {
            out.state = OutgoingState::Closing(bye_id);
            t.deadline = now + linger;
        }
    }

    /// The next data chunk of an outgoing file, if one is fed and accepted.
    pub(super) fn next_file_chunk(&mut self) -> Option<(String, Bytes)> {
        let max_chunk = self.config.max_chunk.max(1);
        let idx = self.transfers.iter().position(|t| match &t.kind {
            Kind::FileOut(out) => out.can_send(),
            _ => false,
        })?;
        let needs_ids = matches!(
            self.transfers.get(idx).map(|t| &t.kind),
            Some(Kind::FileOut(Outgoing { ids: None, .. }))
        );
        let fresh = needs_ids.then(|| (self.identifier(), self.ack_sid()));
        let t = self.transfers.get_mut(idx)?;
        let Kind::FileOut(out) = &mut t.kind else {
            return None;
        };
        let (identifier, ack_sid) = *out.ids.get_or_insert(fresh.unwrap_or_default());
        let front = out.queue.front_mut()?;
        let piece = front.split_to(front.len().min(max_chunk));
        if front.is_empty() {
            out.queue.pop_front();
        }
        out.queued -= piece.len();
        let h = Header {
            session_id: t.session_id,
            identifier,
            offset: out.sent,
            total_size: out.size,
            length: piece.len() as u32,
            flags: FILE_DATA,
            ack_session_id: ack_sid,
            ..Header::default()
        };
        out.sent += piece.len() as u64;
        if out.sent >= out.size {
            out.state = OutgoingState::AwaitDataAck(identifier);
        }
        Some((t.peer.clone(), Packet::encode(&h, &piece, app_id::FILE)))
    }

    /// Reports the end of a removed file transfer; `bye` withdraws it from the contact
    /// (a `603 Decline` for an offer we had not answered, else a `BYE`).
    pub(super) fn end_file(&mut self, t: Transfer, error: Option<FetchError>, bye: bool) {
        let live = match &t.kind {
            Kind::FileIn(Incoming {
                state: IncomingState::Offered(invite),
                ..
            }) => {
                if bye {
                    let decline = SlpMessage::response(invite, 603, "Decline", t.session_id);
                    self.send_slp(&t.peer, &decline);
                }
                true
            }
            Kind::FileIn(Incoming {
                state: IncomingState::Receiving,
                ..
            }) => true,
            Kind::FileOut(out) => !matches!(out.state, OutgoingState::Closing(_)),
            _ => false,
        };
        let offered_in = matches!(
            &t.kind,
            Kind::FileIn(Incoming {
                state: IncomingState::Offered(_),
                ..
            })
        );
        if live && bye && !offered_in {
            let msg = SlpMessage::bye(&t.peer, &self.config.local, t.branch, t.call_id);
            self.send_slp(&t.peer, &msg);
        }
        if let (true, Some(error)) = (live, error) {
            self.events.push_back(P2pEvent::FileFailed {
                id: t.id,
                peer: t.peer,
                error,
            });
        }
    }
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
