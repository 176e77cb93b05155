//! The pacing and errors of P2P transfers (MSNP.md §9, §10) over a switchboard; the
//! transfers themselves run in the switchboard's driver (`sb_client`), which owns the
//! sans-IO [`msnp::p2p::P2pEndpoint`].

use std::time::{Duration, Instant};

use super::error::NetError;
use msnp::p2p::{FetchError, Seed, StartError};

/// Most P2P `MSG`s sent and not yet acknowledged by the server. One, as `msnp11-sdk`
/// sends: its reader spins on a `MSG` command line split across two TCP reads, which
/// back-to-back 1.3 KB chunks provoke; one chunk per server round trip avoids that.
pub const P2P_WINDOW: usize = 1;

/// The pause given to the peer to read what was sent before more goes than one of its
/// reads holds, by default ([`MsnSettings::p2p_min_interval`], [`Pacer`]). Over the
/// internet the round trip of [`P2P_WINDOW`] already spaces chunks; on a fast local
/// server this keeps a peer that cannot take back-to-back chunks (`msnp11-sdk`, see
/// above) from finding a command line split across two reads.
///
/// [`MsnSettings::p2p_min_interval`]: super::MsnSettings::p2p_min_interval
pub const P2P_MIN_INTERVAL: Duration = Duration::from_millis(5);

/// How much `msnp11-sdk` reads at a time (its `receive_split`). A read that ends inside a
/// `MSG` command line makes it spin (see [`P2P_WINDOW`]); while everything that may still
/// be unread at the peer fits in one such read, no read can end inside a line.
pub const PEER_READ_BYTES: usize = 1664;

/// What the server's relayed command line adds to a payload at the peer
/// (`MSG <address> <friendly name> <length>\r\n`): room for an address and a
/// percent-encoded friendly name of some 200 bytes together. A longer name makes the
/// count short, which matters only if the peer is that slow reader.
const RELAYED_LINE_BYTES: usize = 256;

/// When the next P2P `MSG` may go: at once while everything sent since the peer was last
/// given [`MsnSettings::p2p_min_interval`] to read fits in one of its reads
/// ([`PEER_READ_BYTES`]); otherwise that interval after the previous `MSG`. So the
/// small control messages of a transfer (an `ACK`, the `200 OK`, the data preparation) go
/// back to back, and the interval is paid between data chunks only.
///
/// [`MsnSettings::p2p_min_interval`]: super::MsnSettings::p2p_min_interval
#[derive(Debug)]
pub(crate) struct Pacer {
    min_interval: Duration,
    last_sent: Option<Instant>,
    /// Bytes sent since the last pause of `min_interval` (what may still be unread).
    unread: usize,
}

impl Pacer {
    pub(crate) fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            last_sent: None,
            unread: 0,
        }
    }

    /// Whether the peer has had `min_interval` to read all that was sent.
    fn drained(&self, now: Instant) -> bool {
        self.last_sent
            .is_none_or(|last| now >= last + self.min_interval)
    }

    /// When a `MSG` with a payload of `payload_len` bytes may be sent (`now` or later).
    pub(crate) fn ready_at(&self, now: Instant, payload_len: usize) -> Instant {
        match self.last_sent {
            Some(last)
                if !self.drained(now)
                    && self.unread + payload_len + RELAYED_LINE_BYTES > PEER_READ_BYTES =>
            {
                last + self.min_interval
            }
            _ => now,
        }
    }

    /// A `MSG` with a payload of `payload_len` bytes was sent.
    pub(crate) fn sent(&mut self, now: Instant, payload_len: usize) {
        let before = if self.drained(now) { 0 } else { self.unread };
        self.unread = before + payload_len + RELAYED_LINE_BYTES;
        self.last_sent = Some(now);
    }
}

/// Why a fetch or a file transfer through the shell failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The switchboard or its driver failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The fetch could not start (bad or oversized msnobj, too many transfers).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The transfer failed (declined, timed out, bad data, switchboard closed).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The local file could not be read or written.
    #[error("the local file: {0}")]
    Io(#[from] std::io::Error),
}

/// A seed for P2P identifiers from the operating system's generator.
pub fn random_seed() -> Seed {
    let mut b = [0u8; 8];
    // A failed generator leaves zeros: identifiers stay valid, only predictable.
    let _ = getrandom::fill(&mut b);
    Seed::from_u64(u64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    /// A data chunk's payload: MIME headers, the 48-byte header, 1,202 bytes, the footer.
    const CHUNK: usize = 1_360;
    /// A control message's payload (an ACK, a `200 OK`, the data preparation).
    const CONTROL: usize = 400;

    #[test]
    fn small_messages_go_back_to_back_and_chunks_wait_for_the_interval() {
        let mut pacer = Pacer::new(5 * MS);
        let t0 = Instant::now();
        assert_eq!(pacer.ready_at(t0, CONTROL), t0, "the first goes at once");
        pacer.sent(t0, CONTROL);
        assert_eq!(pacer.ready_at(t0, CONTROL), t0, "two fit in one read");
        pacer.sent(t0, CONTROL);
        assert_eq!(
            pacer.ready_at(t0, CHUNK),
            t0 + 5 * MS,
            "a chunk would not fit"
        );
        let t1 = t0 + 5 * MS;
        assert_eq!(pacer.ready_at(t1, CHUNK), t1);
        pacer.sent(t1, CHUNK);
        assert_eq!(
            pacer.ready_at(t1 + MS, CHUNK),
            t1 + 5 * MS,
            "chunk after chunk"
        );
        assert_eq!(
            pacer.ready_at(t1 + MS, CONTROL),
            t1 + 5 * MS,
            "nothing fits after a chunk"
        );
        let t2 = t1 + 5 * MS;
        assert_eq!(pacer.ready_at(t2, CHUNK), t2);
    }

    #[test]
    fn without_an_interval_nothing_waits() {
        let mut pacer = Pacer::new(Duration::ZERO);
        let t0 = Instant::now();
        for _ in 0..4 {
            assert_eq!(pacer.ready_at(t0, CHUNK), t0);
            pacer.sent(t0, CHUNK);
        }
    }
}
