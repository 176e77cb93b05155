//! Resource limits for the sans-IO MSNP core: one documented struct, no behaviour.
//!
//! Owns every number that bounds memory taken on behalf of the network (line length,
//! payload sizes per verb class, MIME header counts, chunk reassembly, P2P sizes).
//! Parsers compare each length read from the wire against these values *before*
//! allocating or waiting for bytes. Must not import anything outside `msnp`.

use std::time::Duration;

use super::verb::Verb;

/// The switchboard `MSG` payload limit for sending (headers + body), MSNP.md §6.3/§7.8:
/// Escargot closes the switchboard when a payload exceeds it.
pub const SB_MSG_SEND_LIMIT: usize = 1664;

/// Bounds applied by the frame parser, the MIME parser and the stateful assemblers.
///
/// Defaults are generous for what revival servers send (MSNP.md §2.8) while keeping any
/// single connection's buffered data in the low hundreds of KiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line accepted, excluding the line terminator. Default 16 KiB:
    /// the longest legitimate lines are `USR … SSO S <ticket> <172-char MBI blob> {guid}`
    /// (official compact tickets run to ~1–2 KB, §2.5.1) and presence lines with a
    /// fully percent-encoded WLM msnobj (up to 3× its ~1 KB text, §5.4/§8.1).
    pub max_line: usize,
    /// Largest incoming `MSG` payload. Default 64 KiB: the 1664-byte limit (§7.8) only
    /// binds what *we send*; NS `MSG`s such as `text/x-msmsgsinitialmdatanotification`
    /// carry an unbounded `Mail-Data` list (§7.6) and other clients may exceed 1664.
    pub max_msg_payload: usize,
    /// Largest XML-ish notification payload: `NOT`, `IPG`, `UBX`, `UBN`, `GCF`, `UUX`,
    /// `ADL`, `RML`, `FQY`, `UUN`, `UUM`, `UBM` (§1.3). Default 256 KiB: shields
    /// documents (§11.5) and ADL lists (split at ~7.3 KB by MSP31, §4.5) are far smaller.
    pub max_notification_payload: usize,
    /// Largest payload for every other payload-carrying line: numeric errors with a
    /// payload (MSNP13+, §1.3/§1.4), `QRY` (always 32 bytes, §3.1), MSNP21 verbs.
    /// Default 64 KiB.
    pub max_other_payload: usize,
    /// Largest `MSG` payload we produce for a switchboard, §6.3. Default 1664.
    pub max_sb_send_payload: usize,
    /// Most MIME header lines accepted in one `MSG` header block (§7). Default 64.
    pub max_mime_headers: usize,
    /// Most parts announced by `Chunks: n` for a chunked message (§7.8). Default 64
    /// (64 × 1664 ≈ 104 KiB, a very long text message).
    pub max_chunks: u32,
    /// Largest reassembled chunked message body (§7.8). Default 128 KiB.
    pub max_chunked_message: usize,
    /// Most chunked messages being reassembled at once per switchboard. Default 8;
    /// the oldest is dropped when a new one starts beyond this.
    pub max_pending_chunked: usize,
    /// Largest P2P message `TotalSize` accepted (§9.1), e.g. a display picture or a file
    /// received over the switchboard. Default 32 MiB (~25 000 `MSG`s at 1202 B, §9.4).
    pub max_p2p_total: u64,
    /// Most concurrent P2P sessions per switchboard (§10.3), counting both the objects
    /// we fetch and the ones we serve. Default 16.
    pub max_p2p_sessions: usize,
    /// A P2P transfer without progress for this long fails with a timeout and its memory
    /// is released (§9.6: official clients give up after about 60 s). Default 60 s.
    pub p2p_progress_timeout: Duration,
    /// How long the serving side waits for the ACK of its `200 OK` and of the data
    /// preparation before it goes on anyway (§10.4 sender steps 2-3). Default 5 s.
    pub p2p_ack_wait: Duration,
    /// How long a finished transfer waits for the ACK of its `BYE`, or for the
    /// requester's `BYE`, before it is forgotten. Default 10 s.
    pub p2p_linger: Duration,
    /// How long a file we offer waits for the contact to accept or decline it (a person
    /// clicks; §10.5) before it is withdrawn with a `BYE`. Default 10 min.
    pub p2p_file_offer_timeout: Duration,
    /// Most participants tracked in one switchboard (§6.4; MSNP.md gives no server
    /// limit). Default 32.
    pub max_sb_participants: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 16 * 1024,
            max_msg_payload: 64 * 1024,
            max_notification_payload: 256 * 1024,
            max_other_payload: 64 * 1024,
            max_sb_send_payload: SB_MSG_SEND_LIMIT,
            max_mime_headers: 64,
            max_chunks: 64,
            max_chunked_message: 128 * 1024,
            max_pending_chunked: 8,
            max_p2p_total: 32 * 1024 * 1024,
            max_p2p_sessions: 16,
            p2p_progress_timeout: Duration::from_secs(60),
            p2p_ack_wait: Duration::from_secs(5),
            p2p_linger: Duration::from_secs(10),
            p2p_file_offer_timeout: Duration::from_secs(600),
            max_sb_participants: 32,
        }
    }
}

impl Limits {
    /// The payload cap that applies to a payload announced by a line with this verb.
    pub fn max_payload(&self, verb: Verb) -> usize {
        match verb.as_str() {
            "MSG" => self.max_msg_payload,
            "NOT" | "IPG" | "UBX" | "UBN" | "GCF" | "UUX" | "ADL" | "RML" | "FQY" | "UUN"
            | "UUM" | "UBM" => self.max_notification_payload,
            _ => self.max_other_payload,
        }
    }
}
