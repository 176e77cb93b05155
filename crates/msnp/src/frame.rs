//! Line + payload framing of MSNP (MSNP.md §1): turns bytes into [`Frame`]s and back.
//!
//! Owns: splitting the byte stream into command lines, TrID extraction per verb and
//! direction (§1.2), deciding which lines announce a payload (§1.3, including numeric
//! errors with payloads in MSNP13+, §1.4), payload length checks against [`Limits`],
//! and encoding frames with argument validation (no CR/LF/space injection).
//! Must not know what any command *means*; that belongs to the NS/SB state machines.
//! No I/O, no clock, no randomness.

use std::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::args::Args;
use super::error::ServerError;
use super::limits::Limits;
use super::verb::Verb;

/// Which side sent the bytes being parsed: payload and TrID rules differ (§1.2, §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Lines received by a client (what the bridge parses).
    ServerToClient,
    /// Lines sent by a client (used by tests and mock servers).
    ClientToServer,
}

/// One MSNP command: verb, optional TrID, arguments and optional payload.
///
/// For payload commands the wire length token is *not* kept in `args`; it is derived
/// from `payload` when encoding. Payload commands always have `Some` payload (possibly
/// empty, e.g. `UBX email 0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command verb or numeric error.
    pub verb: Verb,
    /// The transaction ID, when this verb carries one in this direction (§1.2).
    pub trid: Option<u32>,
    /// Remaining arguments, still percent-encoded where the protocol encodes them
    /// (for parsed frames, borrowed from the read buffer without copying).
    pub args: Args,
    /// Raw payload bytes following the line (§1.3).
    pub payload: Option<Bytes>,
}

/// Why the byte stream could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A line longer than [`Limits::max_line`] (fatal: no resynchronisation point).
    #[error("command line of at least {len} bytes exceeds the {max}-byte limit")]
    LineTooLong {
        /// Bytes seen so far without a complete line (or the full line length).
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The first token is not a verb (§1.1). The line has been consumed; the stream
    /// can continue.
    #[error("line starts with {raw:?}, which is not a three-character verb")]
    BadVerb {
        /// The first token (lossily decoded, at most 32 bytes).
        raw: String,
    },
    /// A payload command whose line has no length argument (fatal).
    #[error("{verb} line announces a payload but has no length argument")]
    MissingLength {
        /// The verb.
        verb: Verb,
    },
    /// A payload length that is not a plain decimal number (fatal).
    #[error("{verb} payload length {raw:?} is not a decimal number")]
    BadLength {
        /// The verb.
        verb: Verb,
        /// The offending token (lossily decoded, at most 32 bytes).
        raw: String,
    },
    /// A payload length above the per-verb limit (fatal; nothing was allocated).
    #[error("{verb} payload of {len} bytes exceeds the {max}-byte limit")]
    PayloadTooLarge {
        /// The verb.
        verb: Verb,
        /// The announced length.
        len: u64,
        /// The configured limit for this verb class.
        max: usize,
    },
}

impl FrameError {
    /// Whether the connection must be dropped: after a fatal error the parser cannot
    /// know where the next frame starts, and the buffer is left as it was. After a
    /// non-fatal error the offending line was consumed and parsing may continue.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, FrameError::BadVerb { .. })
    }
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// An argument that is empty or contains ASCII whitespace (space, TAB, CR, LF, FF),
    /// which would split or terminate the command line (percent-encode text, §5.6).
    /// Other bytes are accepted so that anything [`parse`] produced re-encodes.
    #[error("{verb} argument {index} ({arg:?}) is empty or contains whitespace")]
    BadArgument {
        /// The verb.
        verb: Verb,
        /// Zero-based index into `args`.
        index: usize,
        /// The offending argument.
        arg: String,
    },
}

fn is_space(b: u8) -> bool {
    // §1.1: servers may add trailing spaces; Escargot splits on any whitespace.
    b.is_ascii_whitespace()
}

/// Parses a plain decimal number (no sign, no spaces); `None` on anything else or
/// on overflow.
fn parse_decimal(tok: &[u8]) -> Option<u64> {
    if tok.is_empty() || tok.len() > 20 || !tok.iter().all(u8::is_ascii_digit) {
        return None;
    }
    tok.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

fn lossy_prefix(tok: &[u8]) -> String {
    String::from_utf8_lossy(tok.get(..32).unwrap_or(tok)).into_owned()
}

/// The byte range of the first token of `s`, if any.
fn first_token(s: &[u8]) -> Option<Range<usize>> {
    let start = s.iter().position(|&b| !is_space(b))?;
    let rest = s.get(start..).unwrap_or_default();
    let len = rest.iter().position(|&b| is_space(b)).unwrap_or(rest.len());
    Some(start..start + len)
}

/// The byte range of the last token of `s`, if any (found from the end).
fn last_token(s: &[u8]) -> Option<Range<usize>> {
    let end = s.iter().rposition(|&b| !is_space(b))? + 1;
    let start = s
        .get(..end)
        .unwrap_or_default()
        .iter()
        .rposition(|&b| is_space(b))
        .map_or(0, |p| p + 1);
    Some(start..end)
}

/// The tokens of `s`, without allocating.
fn tokens(s: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    s.split(|&b| is_space(b)).filter(|t| !t.is_empty())
}

/// Whether a line announces a payload, per MSNP.md §1.3 ("Rule for the client parser").
/// `after_verb` is the line after the verb token.
fn announces_payload(verb: Verb, dir: Direction, version: u8, after_verb: &[u8]) -> bool {
    // At least three tokens (verb included), the last one numeric.
    let last_numeric = || {
        let mut toks = tokens(after_verb);
        toks.next_back().and_then(parse_decimal).is_some() && toks.next_back().is_some()
    };
    match verb {
        // `NNN trid len`: exactly three all-numeric tokens, MSNP13+ only (§1.3/§1.4).
        Verb::Error(_) => {
            dir == Direction::ServerToClient && version >= 13 && {
                let mut toks = tokens(after_verb);
                matches!(
                    (toks.next(), toks.next(), toks.next()),
                    (Some(a), Some(b), None)
                        if parse_decimal(a).is_some() && parse_decimal(b).is_some()
                )
            }
        }
        // Matched as bytes: this runs for every line.
        Verb::Command(code) => match (dir, &code) {
            // Circles on MSNP18–20 (§1.3, §15.4): `PUT trid len`, `SDG trid len`, and from
            // the server `PUT trid OK 0` (an empty payload), `NFY PUT len`, `SDG 0 len`.
            (_, b"NFY" | b"PUT" | b"SDG") if (18..21).contains(&version) => last_numeric(),
            // MSNP21 payload verbs (§1.3 "not needed below MSNP21").
            (_, b"NFY" | b"PUT" | b"DEL" | b"SDG" | b"SDC" | b"VAS") => version >= 21,
            (
                Direction::ServerToClient,
                b"MSG" | b"NOT" | b"IPG" | b"UBX" | b"UBN" | b"GCF" | b"UBM",
            ) => true,
            // `ADL 0 66` has a payload, `ADL 6 OK` does not; server UUX/QRY never do.
            (Direction::ServerToClient, b"ADL" | b"RML" | b"FQY" | b"UUN" | b"UUM") => {
                last_numeric()
            }
            (
                Direction::ClientToServer,
                b"MSG" | b"QRY" | b"UUX" | b"ADL" | b"RML" | b"FQY" | b"UUN" | b"UUM",
            ) => true,
            _ => false,
        },
    }
}

/// Server commands that never carry a TrID (§1.2).
const UNTRACKED_FROM_SERVER: [Verb; 16] = [
    Verb::NLN,
    Verb::FLN,
    Verb::UBX,
    Verb::UBN,
    Verb::UBM,
    Verb::RNG,
    Verb::JOI,
    Verb::BYE,
    Verb::MSG,
    Verb::NOT,
    Verb::IPG,
    Verb::OUT,
    Verb::QNG,
    Verb::LSG,
    Verb::LST,
    Verb::BPR,
];

/// Client commands that never carry a TrID (§1.2).
const UNTRACKED_FROM_CLIENT: [Verb; 2] = [Verb::PNG, Verb::OUT];

/// Whether the token after the verb is a TrID for this verb and direction (§1.2).
/// Asynchronous server commands carry none; `GTC`/`BLP`/`PRP` inside a `SYN` burst
/// have none but their replies do, which the "is it numeric" check distinguishes.
/// Numeric errors (and `ERR`) always may.
fn may_have_trid(verb: Verb, dir: Direction) -> bool {
    let untracked: &[Verb] = match dir {
        Direction::ServerToClient => &UNTRACKED_FROM_SERVER,
        Direction::ClientToServer => &UNTRACKED_FROM_CLIENT,
    };
    !untracked.contains(&verb)
}

/// Parses one frame from the front of `buf` (MSNP.md §1).
///
/// * `Ok(Some(frame))`: the frame's bytes (and any blank lines before it) were removed.
/// * `Ok(None)`: more bytes are needed; `buf` is untouched.
/// * `Err(e)`: see [`FrameError::is_fatal`].
///
/// `version` is the negotiated MSNP version (0 before `VER` completes); it only matters
/// for numeric errors with payloads (13+) and MSNP21 verbs. Argument bytes are decoded
/// as UTF-8 lossily, as §1.1 recommends (servers percent-encode text, so lines are
/// ASCII in practice); payloads stay raw bytes.
///
/// Nothing is copied or allocated for a valid UTF-8 line: the arguments and the payload
/// are split off `buf` (so a kept frame keeps its part of the read buffer alive).
pub fn parse(
    buf: &mut BytesMut,
    limits: &Limits,
    dir: Direction,
    version: u8,
) -> Result<Option<Frame>, FrameError> {
    let mut start = 0;
    loop {
        let rest = buf.get(start..).unwrap_or_default();
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            // Allow one pending '\r' beyond the limit.
            if rest.len() > limits.max_line.saturating_add(1) {
                return Err(FrameError::LineTooLong {
                    len: rest.len(),
                    max: limits.max_line,
                });
            }
            return Ok(None);
        };
        let raw = rest.get(..nl).unwrap_or_default();
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.len() > limits.max_line {
            return Err(FrameError::LineTooLong {
                len: line.len(),
                max: limits.max_line,
            });
        }
        let line_end = start + nl + 1;
        let Some(first) = first_token(line) else {
            // Blank line: skip it, but only commit the skip together with a frame.
            start = line_end;
            continue;
        };
        let verb_tok = line.get(first.clone()).unwrap_or_default();
        let Some(verb) = Verb::parse(verb_tok) else {
            let raw = lossy_prefix(verb_tok);
            buf.advance(line_end);
            return Err(FrameError::BadVerb { raw });
        };

        // What follows the verb: `[trid] args [length]`, narrowed step by step.
        let mut tail = first.end..line.len();
        let mut payload_len = None;
        let after_verb = line.get(tail.clone()).unwrap_or_default();
        if announces_payload(verb, dir, version, after_verb) {
            let Some(len_range) = last_token(after_verb) else {
                return Err(FrameError::MissingLength { verb });
            };
            let len_tok = after_verb.get(len_range.clone()).unwrap_or_default();
            let len = parse_decimal(len_tok).ok_or_else(|| FrameError::BadLength {
                verb,
                raw: lossy_prefix(len_tok),
            })?;
            let max = limits.max_payload(verb);
            let len_usize = usize::try_from(len).ok().filter(|&l| l <= max);
            let Some(len_usize) = len_usize else {
                return Err(FrameError::PayloadTooLarge { verb, len, max });
            };
            if buf.len() < line_end.saturating_add(len_usize) {
                return Ok(None);
            }
            payload_len = Some(len_usize);
            tail.end = tail.start + len_range.start;
        }

        let mut trid = None;
        if may_have_trid(verb, dir) {
            let after_verb = line.get(tail.clone()).unwrap_or_default();
            if let Some(t) = first_token(after_verb)
                && let Some(n) = after_verb
                    .get(t.clone())
                    .and_then(parse_decimal)
                    .and_then(|n| u32::try_from(n).ok())
            {
                trid = Some(n);
                tail.start += t.end;
            }
        }

        // The argument text is cut out of the buffer without copying.
        let args = Args::split_off(buf, start + tail.start..start + tail.end, line_end);
        let payload = payload_len.map(|n| buf.split_to(n).freeze());
        return Ok(Some(Frame {
            verb,
            trid,
            args,
            payload,
        }));
    }
}

impl Frame {
    /// A command with a TrID, e.g. `Frame::command(Verb::VER, 1, ["MSNP12", "CVR0"])`.
    pub fn command<I, S>(verb: Verb, trid: u32, args: I) -> Frame
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Frame {
            verb,
            trid: Some(trid),
            args: args.into_iter().map(Into::into).collect(),
            payload: None,
        }
    }

    /// A command without a TrID (`PNG`, `OUT`, and server-initiated lines, §1.2).
    pub fn untracked<I, S>(verb: Verb, args: I) -> Frame
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Frame {
            verb,
            trid: None,
            args: args.into_iter().map(Into::into).collect(),
            payload: None,
        }
    }

    /// Attaches a payload; its length becomes the last token when encoding (§1.3).
    pub fn with_payload(mut self, payload: impl Into<Bytes>) -> Frame {
        self.payload = Some(payload.into());
        self
    }

    /// The TrID, used to match a reply to its request (§1.2).
    pub fn trid(&self) -> Option<u32> {
        self.trid
    }

    /// Argument `i` (after the TrID), if present.
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i)
    }

    /// The typed server error, when this frame is a numeric error line (§1.4).
    pub fn server_error(&self) -> Option<ServerError> {
        match self.verb {
            Verb::Error(code) => Some(ServerError {
                code,
                trid: self.trid,
                payload: self.payload.clone(),
            }),
            Verb::Command(_) => None,
        }
    }

    /// Whether this frame answers a request `verb` sent with `trid`: same TrID and either
    /// the same verb or a numeric error (§1.2).
    pub fn is_reply_to(&self, verb: Verb, trid: u32) -> bool {
        self.trid == Some(trid) && (self.verb == verb || self.verb.is_error())
    }

    /// Appends the wire form to `out`. Validates every argument first, so `out` is left
    /// unchanged on error (a friendly name with a space or CRLF must never reach the
    /// wire unescaped).
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        for (index, arg) in self.args.iter().enumerate() {
            if arg.is_empty() || arg.bytes().any(is_space) {
                return Err(EncodeError::BadArgument {
                    verb: self.verb,
                    index,
                    arg: arg.to_owned(),
                });
            }
        }
        let mut line = Vec::with_capacity(64);
        self.verb.write_to(&mut line);
        if let Some(trid) = self.trid {
            line.extend_from_slice(format!(" {trid}").as_bytes());
        }
        for arg in &self.args {
            line.push(b' ');
            line.extend_from_slice(arg.as_bytes());
        }
        if let Some(p) = &self.payload {
            line.extend_from_slice(format!(" {}", p.len()).as_bytes());
        }
        line.extend_from_slice(b"\r\n");
        out.reserve(line.len() + self.payload.as_ref().map_or(0, Bytes::len));
        out.put_slice(&line);
        if let Some(p) = &self.payload {
            out.put_slice(p);
        }
        Ok(())
    }

    /// Encodes into a fresh buffer (one complete command for a single `write_all`, §1.3).
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::new();
        self.encode(&mut out)?;
        Ok(out.freeze())
    }
}

#[cfg(test)]
pub(crate) mod tests;
