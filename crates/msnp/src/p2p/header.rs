//! P2P v1 binary framing (MSNP.md §9): the 48-byte little-endian header, the data and
//! the 4-byte big-endian footer; ACK construction (§9.6); per-message reassembly with
//! a size cap and offset checks (§9.4).
//!
//! Every read is bounds-checked; a [`Reassembly`] never holds more than the total it
//! was created with, and that total is checked against a caller-supplied cap first.

use bytes::{BufMut, Bytes, BytesMut};

/// Length of the binary header (§9.1).
pub const HEADER_LEN: usize = 48;
/// Length of the footer (§9.3).
pub const FOOTER_LEN: usize = 4;
/// Most data bytes per chunk over a switchboard (§9.4).
pub const MAX_CHUNK: usize = 1202;

/// Flag values (§9.2).
pub mod flags {
    /// A normal message: MSNSLP text or the data-preparation message.
    pub const NORMAL: u32 = 0;
    /// Negative acknowledgement.
    pub const NAK: u32 = 0x1;
    /// Acknowledgement.
    pub const ACK: u32 = 0x2;
    /// Waiting for reply.
    pub const WAITING: u32 = 0x4;
    /// Binary error: abort the session.
    pub const ERROR: u32 = 0x8;
    /// File data (combined with others).
    pub const FILE: u32 = 0x10;
    /// msnobj data (display picture, emoticon, …).
    pub const MSNOBJ_DATA: u32 = 0x20;
    /// Close session (cancel).
    pub const CLOSE: u32 = 0x40;
    /// Transport-layer error.
    pub const TLP_ERROR: u32 = 0x80;
    /// Direct-connection handshake.
    pub const DIRECT_HANDSHAKE: u32 = 0x100;
    /// "WLM 2009 compatible" marker, combined with data flags.
    pub const WLM2009: u32 = 0x0100_0000;
}

/// Footer / AppID values (§9.3).
pub mod app_id {
    /// MSNSLP signalling and its ACKs.
    pub const SLP: u32 = 0;
    /// msnobj data, MSN 6/7 style (what we request with).
    pub const MSNOBJ: u32 = 1;
    /// File transfer data.
    pub const FILE: u32 = 2;
    /// Custom emoticon data (MSN 7.5+/WLM).
    pub const EMOTICON: u32 = 11;
    /// Display picture data (MSN 7.5+/WLM).
    pub const DISPLAY_PICTURE: u32 = 12;
}

/// The P2P v1 binary header (§9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// 0 for MSNSLP, else the negotiated SessionID.
    pub session_id: u32,
    /// Message identifier, shared by all chunks of one message.
    pub identifier: u32,
    /// Offset of this chunk in the whole message.
    pub offset: u64,
    /// Size of the whole message (for an ACK: the acked message's).
    pub total_size: u64,
    /// Data bytes in this chunk.
    pub length: u32,
    /// §9.2 flags.
    pub flags: u32,
    /// Random per-message id; for an ACK, the acked message's Identifier.
    pub ack_session_id: u32,
    /// For an ACK, the acked message's AckSessionID.
    pub ack_unique_id: u32,
    /// For an ACK, the acked message's TotalSize.
    pub ack_data_size: u64,
}

/// Why a P2P body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Shorter than header plus footer.
    #[error("P2P body of {len} bytes is shorter than header and footer")]
    TooShort {
        /// Body length.
        len: usize,
    },
    /// The data between header and footer does not match the header's Length.
    #[error("P2P Length {declared} but {actual} data bytes present")]
    LengthMismatch {
        /// Length field.
        declared: u32,
        /// Bytes present.
        actual: usize,
    },
    /// Offset + Length exceeds TotalSize (or overflows).
    #[error("P2P chunk at {offset}+{length} runs past total {total}")]
    PastEnd {
        /// Offset field.
        offset: u64,
        /// Length field.
        length: u32,
        /// TotalSize field.
        total: u64,
    },
    /// A non-ACK chunk without data.
    #[error("P2P chunk without data")]
    ZeroLength,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut out = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        out.copy_from_slice(s);
    }
    u32::from_le_bytes(out)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        out.copy_from_slice(s);
    }
    u64::from_le_bytes(out)
}

impl Header {
    /// Reads a header from the first 48 bytes of `b`; `None` if shorter.
    pub fn read(b: &[u8]) -> Option<Header> {
        let b = b.get(..HEADER_LEN)?;
        Some(Header {
            session_id: u32_at(b, 0),
            identifier: u32_at(b, 4),
            offset: u64_at(b, 8),
            total_size: u64_at(b, 16),
            length: u32_at(b, 24),
            flags: u32_at(b, 28),
            ack_session_id: u32_at(b, 32),
            ack_unique_id: u32_at(b, 36),
            ack_data_size: u64_at(b, 40),
        })
    }

    /// Appends the 48 little-endian bytes.
    pub fn write(&self, out: &mut BytesMut) {
        out.put_u32_le(self.session_id);
        out.put_u32_le(self.identifier);
        out.put_u64_le(self.offset);
        out.put_u64_le(self.total_size);
        out.put_u32_le(self.length);
        out.put_u32_le(self.flags);
        out.put_u32_le(self.ack_session_id);
        out.put_u32_le(self.ack_unique_id);
        out.put_u64_le(self.ack_data_size);
    }

    /// The 48 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = BytesMut::with_capacity(HEADER_LEN);
        self.write(&mut out);
        let mut arr = [0u8; HEADER_LEN];
        arr.copy_from_slice(&out);
        arr
    }

    /// Whether this is an ACK (§9.2).
    pub fn is_ack(&self) -> bool {
        self.flags & flags::ACK != 0
    }

    /// Whether this ends the session: binary error, close or transport error (§9.6).
    pub fn is_abort(&self) -> bool {
        self.flags & (flags::ERROR | flags::CLOSE | flags::TLP_ERROR | flags::NAK) != 0
    }

    /// Whether this carries msnobj or file data (§9.2 receiver rule).
    pub fn is_data(&self) -> bool {
        self.session_id != 0 && self.flags & (flags::MSNOBJ_DATA | flags::FILE) != 0
    }

    /// The ACK of a complete message whose (last) header is `self` (§9.6).
    pub fn ack(&self, identifier: u32) -> Header {
        Header {
            session_id: self.session_id,
            identifier,
            offset: 0,
            total_size: self.total_size,
            length: 0,
            flags: flags::ACK,
            ack_session_id: self.identifier,
            ack_unique_id: self.ack_session_id,
            ack_data_size: self.total_size,
        }
    }
}

/// One parsed P2P v1 body: header, this chunk's data, footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The binary header.
    pub header: Header,
    /// This chunk's data (`header.length` bytes).
    pub data: Bytes,
    /// The footer (AppID), big-endian on the wire.
    pub footer: u32,
}

impl Packet {
    /// Parses a `MSG` P2P body (§7.7) with bounds checks: Length must match the bytes
    /// present, Offset + Length must fit in TotalSize, and non-ACK chunks carry data.
    pub fn parse(body: &Bytes) -> Result<Packet, HeaderError> {
        let len = body.len();
        if len < HEADER_LEN + FOOTER_LEN {
            return Err(HeaderError::TooShort { len });
        }
        let header = Header::read(body).ok_or(HeaderError::TooShort { len })?;
        let data_len = len - HEADER_LEN - FOOTER_LEN;
        if u64::from(header.length) != data_len as u64 {
            return Err(HeaderError::LengthMismatch {
                declared: header.length,
                actual: data_len,
            });
        }
        let fits = header
            .offset
            .checked_add(u64::from(header.length))
            .is_some_and(|end| end <= header.total_size);
        if !fits {
            return Err(HeaderError::PastEnd {
                offset: header.offset,
                length: header.length,
                total: header.total_size,
            });
        }
        if header.length == 0 && !header.is_ack() && !header.is_abort() {
            return Err(HeaderError::ZeroLength);
        }
        let mut footer = [0u8; 4];
        if let Some(f) = body.get(len - FOOTER_LEN..) {
            footer.copy_from_slice(f);
        }
        Ok(Packet {
            header,
            data: body.slice(HEADER_LEN..len - FOOTER_LEN),
            footer: u32::from_be_bytes(footer),
        })
    }

    /// Encodes header, data and big-endian footer.
    pub fn encode(header: &Header, data: &[u8], footer: u32) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER_LEN + data.len() + FOOTER_LEN);
        header.write(&mut out);
        out.extend_from_slice(data);
        out.put_u32(footer);
        out.freeze()
    }
}

/// Why a chunk could not join a message being reassembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    /// TotalSize is zero.
    #[error("P2P message with total size 0")]
    ZeroSize,
    /// TotalSize exceeds the cap for this kind of message.
    #[error("P2P message of {total} bytes exceeds the limit of {max}")]
    TooLarge {
        /// TotalSize field.
        total: u64,
        /// The cap.
        max: u64,
    },
    /// A later chunk changed TotalSize.
    #[error("P2P TotalSize changed from {expected} to {got}")]
    TotalChanged {
        /// TotalSize of the first chunk.
        expected: u64,
        /// TotalSize of this chunk.
        got: u64,
    },
    /// The chunk overlaps data already received.
    #[error("P2P chunk at {offset} overlaps received data")]
    Overlap {
        /// Offset field.
        offset: u64,
    },
    /// The chunk lies outside the message.
    #[error("P2P chunk runs past the message end")]
    PastEnd,
    /// Too many disjoint pieces (hostile out-of-order chunking).
    #[error("P2P message too fragmented")]
    TooFragmented,
}

/// Most disjoint received ranges tracked per message before giving up.
pub const MAX_RANGES: usize = 256;

/// Reassembles one P2P message from its chunks by Offset (§9.4). Memory is bounded by
/// the total checked in [`Reassembly::new`]; the buffer grows only as far as data
/// arrives.
#[derive(Debug, Clone)]
pub struct Reassembly {
    total: u64,
    buf: Vec<u8>,
    /// Sorted, merged, disjoint `[start, end)` ranges received.
    ranges: Vec<(u64, u64)>,
}

impl Reassembly {
    /// Starts a message of `total` bytes, refused if zero or above `max`.
    pub fn new(total: u64, max: u64) -> Result<Reassembly, ReassemblyError> {
        if total == 0 {
            return Err(ReassemblyError::ZeroSize);
        }
        if total > max {
            return Err(ReassemblyError::TooLarge { total, max });
        }
        Ok(Reassembly {
            total,
            buf: Vec::new(),
            ranges: Vec::new(),
        })
    }

    /// The total size.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    /// Adds a chunk; `Ok(true)` once the message is complete.
    pub fn add(&mut self, header: &Header, data: &[u8]) -> Result<bool, ReassemblyError> {
        if header.total_size != self.total {
            return Err(ReassemblyError::TotalChanged {
                expected: self.total,
                got: header.total_size,
            });
        }
        let start = header.offset;
        let end = start
            .checked_add(data.len() as u64)
            .filter(|&e| e <= self.total)
            .ok_or(ReassemblyError::PastEnd)?;
        if start == end {
            return Err(ReassemblyError::PastEnd);
        }
        // Position of the first range ending after `start`.
        let idx = self.ranges.partition_point(|&(_, e)| e <= start);
        if self.ranges.get(idx).is_some_and(|&(s, _)| s < end) {
            return Err(ReassemblyError::Overlap { offset: start });
        }
        let merge_prev = idx > 0 && self.ranges.get(idx - 1).is_some_and(|&(_, e)| e == start);
        let merge_next = self.ranges.get(idx).is_some_and(|&(s, _)| s == end);
        if !merge_prev && !merge_next && self.ranges.len() >= MAX_RANGES {
            return Err(ReassemblyError::TooFragmented);
        }
        let (Ok(s), Ok(e)) = (usize::try_from(start), usize::try_from(end)) else {
            return Err(ReassemblyError::PastEnd);
        };
        if self.buf.len() < e {
            self.buf.resize(e, 0);
        }
        if let Some(dst) = self.buf.get_mut(s..e) {
            dst.copy_from_slice(data);
        }
        match (merge_prev, merge_next) {
            (true, true) => {
                let next_end = self.ranges.get(idx).map_or(end, |r| r.1);
                if let Some(prev) = self.ranges.get_mut(idx - 1) {
                    prev.1 = next_end;
                }
                self.ranges.remove(idx);
            }
            (true, false) => {
                if let Some(prev) = self.ranges.get_mut(idx - 1) {
                    prev.1 = end;
                }
            }
            (false, true) => {
                if let Some(next) = self.ranges.get_mut(idx) {
                    next.0 = start;
                }
            }
            (false, false) => self.ranges.insert(idx, (start, end)),
        }
        Ok(self.is_complete())
    }

    /// Whether every byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.ranges.as_slice() == [(0, self.total)]
    }

    /// The message, once complete.
    pub fn finish(self) -> Option<Bytes> {
        self.is_complete().then(|| Bytes::from(self.buf))
    }
}

/// Splits `data` into chunk headers and data slices of at most `max_chunk` bytes, all
/// sharing `template`'s SessionID, Identifier, Flags and AckSessionID (§9.4).
pub fn chunk(template: &Header, data: &Bytes, max_chunk: usize, footer: u32) -> Vec<Bytes> {
    let max_chunk = max_chunk.max(1);
    chunk_with(template, data, footer, |start| {
        (start + max_chunk).min(data.len())
    })
}

/// [`chunk`] with each chunk's end chosen by `end_of(start)`; an end that does not move
/// past `start` (or overshoots the data) is taken as the data's end.
pub fn chunk_with(
    template: &Header,
    data: &Bytes,
    footer: u32,
    end_of: impl Fn(usize) -> usize,
) -> Vec<Bytes> {
    let total = data.len() as u64;
    let mut out = Vec::new();
    let mut offset = 0usize;
    while offset < data.len() {
        let end = end_of(offset);
        let end = if end > offset && end <= data.len() {
            end
        } else {
            data.len()
        };
        let piece = data.slice(offset..end);
        let header = Header {
            offset: offset as u64,
            total_size: total,
            length: piece.len() as u32,
            ..*template
        };
        out.push(Packet::encode(&header, &piece, footer));
        offset = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap_or_default())
            .collect()
    }

    const ACK_OF_INVITE: &str = "00 00 00 00 EE FF C0 00 00 00 00 00 00 00 00 00
        86 02 00 00 00 00 00 00 00 00 00 00 02 00 00 00
        C0 B2 A1 00 44 33 22 11 86 02 00 00 00 00 00 00 00 00 00 00";

    #[test]
    fn section_10_4_ack_bytes() {
        let invite = Header {
            identifier: 0x00A1_B2C0,
            total_size: 646,
            length: 646,
            ack_session_id: 0x1122_3344,
            ..Header::default()
        };
        let ack = invite.ack(0x00C0_FFEE);
        let wire = Packet::encode(&ack, &[], 0);
        assert_eq!(wire.as_ref(), hex(ACK_OF_INVITE).as_slice());
        let parsed = Packet::parse(&wire).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.header, ack);
        assert!(parsed.header.is_ack());
        assert_eq!(parsed.footer, 0);
    }

    #[test]
    fn wlm_capture_decodes() {
        let h = Header::read(&hex(
            "00 00 00 00 47 74 C4 0A 00 00 00 00 00 00 00 00 FA 04 00 00 00 00 00 00
             B2 04 00 00 00 00 00 00 77 6E C5 0A 00 00 00 00 00 00 00 00 00 00 00 00",
        ));
        let h = h.unwrap_or_default();
        assert_eq!(
            (h.identifier, h.total_size, h.length),
            (0x0AC4_7447, 1274, 1202)
        );
        assert_eq!(h.ack_session_id, 0x0AC5_6E77);
    }

    #[test]
    fn round_trip_and_footer_is_big_endian() {
        let h = Header {
            session_id: 0x8BD0_3835,
            identifier: 7,
            offset: 1202,
            total_size: 3000,
            length: 3,
            flags: flags::MSNOBJ_DATA | flags::WLM2009,
            ack_session_id: 9,
            ack_unique_id: 10,
            ack_data_size: 11,
        };
        let wire = Packet::encode(&h, b"abc", 12);
        assert_eq!(wire.get(wire.len() - 4..), Some(&[0u8, 0, 0, 12][..]));
        let p = Packet::parse(&wire).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.header, p.data.as_ref(), p.footer), (h, &b"abc"[..], 12));
        assert!(p.header.is_data());
        assert_eq!(Header::read(&h.to_bytes()), Some(h));
    }

    #[test]
    fn hostile_headers_rejected() {
        let base = Header {
            session_id: 1,
            identifier: 1,
            total_size: 10,
            length: 4,
            flags: flags::MSNOBJ_DATA,
            ..Header::default()
        };
        let past = Header { offset: 8, ..base };
        assert!(matches!(
            Packet::parse(&Packet::encode(&past, b"abcd", 1)),
            Err(HeaderError::PastEnd { .. })
        ));
        let overflow = Header {
            offset: u64::MAX - 1,
            ..base
        };
        assert!(matches!(
            Packet::parse(&Packet::encode(&overflow, b"abcd", 1)),
            Err(HeaderError::PastEnd { .. })
        ));
        let lying = Header {
            length: 1000,
            ..base
        };
        assert!(matches!(
            Packet::parse(&Packet::encode(&lying, b"abcd", 1)),
            Err(HeaderError::LengthMismatch { .. })
        ));
        let zero = Header {
            length: 0,
            total_size: 0,
            ..base
        };
        assert_eq!(
            Packet::parse(&Packet::encode(&zero, b"", 1)),
            Err(HeaderError::ZeroLength)
        );
        assert_eq!(
            Packet::parse(&Bytes::from_static(&[0; 51])),
            Err(HeaderError::TooShort { len: 51 })
        );
        assert_eq!(
            Reassembly::new(0, 100).err(),
            Some(ReassemblyError::ZeroSize)
        );
        assert!(matches!(
            Reassembly::new(u64::MAX, 1 << 20),
            Err(ReassemblyError::TooLarge { .. })
        ));
    }

    #[test]
    fn reassembly_in_and_out_of_order_and_overlap() {
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let tpl = Header {
            session_id: 5,
            identifier: 9,
            flags: flags::MSNOBJ_DATA,
            ..Header::default()
        };
        let chunks = chunk(&tpl, &Bytes::from(data.clone()), MAX_CHUNK, 1);
        let spans: Vec<(u64, u32)> = chunks
            .iter()
            .filter_map(|c| Packet::parse(c).ok())
            .map(|p| (p.header.offset, p.header.length))
            .collect();
        assert_eq!(spans, vec![(0, 1202), (1202, 1202), (2404, 596)]);
        for order in [[0usize, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut r = Reassembly::new(3000, 3000).unwrap_or_else(|e| panic!("{e}"));
            let mut done = false;
            for i in order {
                let p = chunks.get(i).and_then(|c| Packet::parse(c).ok());
                let p = p.unwrap_or_else(|| panic!("chunk {i}"));
                done = r.add(&p.header, &p.data).unwrap_or_else(|e| panic!("{e}"));
                // A repeat is an overlap.
                assert!(matches!(
                    r.add(&p.header, &p.data),
                    Err(ReassemblyError::Overlap { .. })
                ));
            }
            assert!(done);
            assert_eq!(r.finish().as_deref(), Some(data.as_slice()));
        }
        let mut r = Reassembly::new(100, 100).unwrap_or_else(|e| panic!("{e}"));
        let h = Header {
            total_size: 100,
            offset: 10,
            ..tpl
        };
        assert_eq!(r.add(&h, &[0; 20]), Ok(false));
        let h2 = Header { offset: 25, ..h };
        assert!(matches!(
            r.add(&h2, &[0; 10]),
            Err(ReassemblyError::Overlap { .. })
        ));
        let h3 = Header { offset: 0, ..h };
        assert!(matches!(
            r.add(&h3, &[0; 11]),
            Err(ReassemblyError::Overlap { .. })
        ));
        let h4 = Header { offset: 95, ..h };
        assert_eq!(r.add(&h4, &[0; 6]), Err(ReassemblyError::PastEnd));
        let h5 = Header {
            total_size: 99,
            ..h
        };
        assert!(matches!(
            r.add(&h5, &[0; 1]),
            Err(ReassemblyError::TotalChanged { .. })
        ));
        assert_eq!(r.received(), 20);
    }

    #[test]
    fn fragmentation_is_capped() {
        let mut r = Reassembly::new(10_000, 10_000).unwrap_or_else(|e| panic!("{e}"));
        let tpl = Header {
            total_size: 10_000,
            ..Header::default()
        };
        let mut err = None;
        for i in 0..(MAX_RANGES as u64 + 5) {
            if let Err(e) = r.add(
                &Header {
                    offset: i * 2,
                    ..tpl
                },
                &[1],
            ) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(ReassemblyError::TooFragmented));
    }

    #[test]
    fn mutated_bodies_never_panic() {
        let h = Header {
            session_id: 3,
            identifier: 4,
            total_size: 8,
            length: 8,
            flags: flags::MSNOBJ_DATA,
            ..Header::default()
        };
        let wire = Packet::encode(&h, b"12345678", 1).to_vec();
        let mut seed = 99u32;
        for n in 0..5000 {
            let mut m = wire.clone();
            for _ in 0..(n % 4 + 1) {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let pos = (seed >> 8) as usize % m.len();
                if let Some(b) = m.get_mut(pos) {
                    *b = (seed >> 24) as u8;
                }
            }
            let cut = (seed as usize) % (m.len() + 1);
            for body in [
                Bytes::from(m.clone()),
                Bytes::from(m.get(..cut).unwrap_or_default().to_vec()),
            ] {
                if let Ok(p) = Packet::parse(&body)
                    && let Ok(mut r) = Reassembly::new(p.header.total_size, 64)
                {
                    let _ = r.add(&p.header, &p.data);
                }
            }
        }
    }
}
