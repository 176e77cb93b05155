//! The pacing and errors of P2P transfers (MSNP.md §9, §10) over a switchboard; the
//! transfers themselves run in the switchboard's driver (`sb_client`), which owns the
//! sans-IO [`msnp::p2p::P2pEndpoint`].

use std::time::Duration;

use super::error::NetError;
use msnp::p2p::{FetchError, Seed, StartError};

/// Most P2P `MSG`s sent and not yet acknowledged by the server. One, as `msnp11-sdk`
/// sends: its reader spins on a `MSG` command line split across two TCP reads, which
/// back-to-back 1.3 KB chunks provoke; one chunk per server round trip avoids that.
pub const P2P_WINDOW: usize = 1;

/// Least time between two P2P `MSG`s by default ([`MsnSettings::p2p_min_interval`]).
/// Over the internet the round trip of [`P2P_WINDOW`] already spaces them; on a fast
/// local server this keeps a peer that cannot take back-to-back chunks (`msnp11-sdk`,
/// see above) reading one `MSG` per read.
///
/// [`MsnSettings::p2p_min_interval`]: super::MsnSettings::p2p_min_interval
pub const P2P_MIN_INTERVAL: Duration = Duration::from_millis(5);

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
