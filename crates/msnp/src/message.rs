//! `MSG` payloads (MSNP.md §7): the MIME-like header block, typed payloads
//! ([`MsgPayload`]), `X-MMS-IM-Format` text formatting, builders for what the bridge
//! sends, splitting long text under the 1664-byte switchboard limit, and reassembly of
//! chunked messages ([`ChunkAssembler`], §7.8).
//!
//! Payload bytes stay [`Bytes`] until a typed parser claims them; text is decoded with
//! UTF-8 checks and errors say where it failed. Must not know about switchboard state
//! or Matrix formatting.

use std::collections::VecDeque;
use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};

use super::escape;
use super::limits::Limits;

/// Why a `MSG` payload could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The payload has no empty line ending its header block (§7).
    #[error("MSG payload of {len} bytes has no blank line ending the headers")]
    NoHeaderEnd {
        /// Payload length.
        len: usize,
    },
    /// More header lines than [`Limits::max_mime_headers`].
    #[error("MSG payload has more than {max} header lines")]
    TooManyHeaders {
        /// The configured limit.
        max: usize,
    },
    /// A header line that is not UTF-8.
    #[error("header line {line} is not UTF-8 (valid up to byte {valid_up_to})")]
    HeaderNotUtf8 {
        /// Zero-based line index in the header block.
        line: usize,
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// A header line without a `:` separator.
    #[error("header line {line} ({text:?}) has no ':'")]
    BadHeaderLine {
        /// Zero-based line index.
        line: usize,
        /// The line (at most 64 bytes).
        text: String,
    },
    /// A body that must be text is not UTF-8.
    #[error("{content_type} body is not UTF-8 (valid up to byte {valid_up_to})")]
    BodyNotUtf8 {
        /// The media type.
        content_type: String,
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// `Chunks`/`Chunk` is not a decimal number (§7.8).
    #[error("chunk header {name}: {value:?} is not a number")]
    BadChunkHeader {
        /// Header name.
        name: &'static str,
        /// Header value.
        value: String,
    },
    /// A chunked message announcing zero parts or more than [`Limits::max_chunks`].
    #[error("chunked message {message_id} announces {chunks} parts (allowed 1..={max})")]
    BadChunkCount {
        /// `Message-ID` value.
        message_id: String,
        /// Announced part count.
        chunks: u32,
        /// The configured limit.
        max: u32,
    },
    /// A continuation part for a message that is not being reassembled.
    #[error("chunk {index} of unknown chunked message {message_id}")]
    UnknownChunkedMessage {
        /// `Message-ID` value.
        message_id: String,
        /// `Chunk` value.
        index: u32,
    },
    /// A part arrived out of order; the partial message was dropped.
    #[error("chunked message {message_id}: expected part {expected}, got {got}")]
    ChunkOutOfOrder {
        /// `Message-ID` value.
        message_id: String,
        /// The next index expected.
        expected: u32,
        /// The index received.
        got: u32,
    },
    /// The reassembled body would exceed [`Limits::max_chunked_message`]; dropped.
    #[error("chunked message {message_id} exceeds {max} bytes")]
    ChunkedTooLarge {
        /// `Message-ID` value.
        message_id: String,
        /// The configured limit.
        max: usize,
    },
    /// A value we were asked to send contains CR, LF (or TAB where it separates fields).
    #[error("{field} value {value:?} contains a line break or separator")]
    BadValue {
        /// Which field.
        field: &'static str,
        /// The rejected value.
        value: String,
    },
    /// The headers alone leave no room for text under the payload limit.
    #[error("text headers of {header_len} bytes leave no room under the {max}-byte payload limit")]
    HeadersTooLarge {
        /// Encoded header length.
        header_len: usize,
        /// The payload limit.
        max: usize,
    },
}

/// MIME header lines in wire order; lookups ignore ASCII case (§7: "accept any case").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// First value of `name`, case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Removes every header called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parses `Name: value` lines. With `require_end`, a blank line must end the block and
/// the returned offset points past it; otherwise the block may end at the end of input.
fn parse_header_lines(
    bytes: &[u8],
    max: usize,
    require_end: bool,
) -> Result<(Headers, usize), MessageError> {
    let mut headers = Vec::new();
    let mut pos = 0;
    let mut index = 0;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        let (raw, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => (rest.get(..nl).unwrap_or_default(), pos + nl + 1),
            None if require_end => return Err(MessageError::NoHeaderEnd { len: bytes.len() }),
            None if rest.is_empty() => return Ok((Headers(headers), pos)),
            None => (rest, bytes.len()),
        };
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            return Ok((Headers(headers), next));
        }
        if headers.len() >= max {
            return Err(MessageError::TooManyHeaders { max });
        }
        let text = std::str::from_utf8(line).map_err(|e| MessageError::HeaderNotUtf8 {
            line: index,
            valid_up_to: e.valid_up_to(),
        })?;
        let Some((name, value)) = text.split_once(':') else {
            let text = text.chars().take(64).collect();
            return Err(MessageError::BadHeaderLine { line: index, text });
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
        pos = next;
        index += 1;
    }
}

/// A `MSG` payload split into its header block and raw body (§7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimeMessage {
    /// Header lines in order.
    pub headers: Headers,
    /// Everything after the blank line, unmodified.
    pub body: Bytes,
}

impl MimeMessage {
    /// Splits a payload; the body shares memory with `payload`.
    pub fn parse(payload: &Bytes, limits: &Limits) -> Result<MimeMessage, MessageError> {
        let (headers, end) = parse_header_lines(payload, limits.max_mime_headers, true)?;
        Ok(MimeMessage {
            headers,
            body: payload.slice(end.min(payload.len())..),
        })
    }

    /// The media type of `Content-Type`, lower-cased, without parameters (`""` if
    /// absent).
    pub fn media_type(&self) -> String {
        let ct = self.headers.get("Content-Type").unwrap_or_default();
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// Encodes headers (CRLF after each, then a blank line) followed by the body.
    pub fn encode(&self) -> Bytes {
        let mut out = String::new();
        for (name, value) in &self.headers.0 {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.push_str("\r\n");
        let mut buf = BytesMut::with_capacity(out.len() + self.body.len());
        buf.extend_from_slice(out.as_bytes());
        buf.extend_from_slice(&self.body);
        buf.freeze()
    }
}

/// An RGB colour (the wire carries BGR hex, §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
}

/// Text effects from `EF=` (§7.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Effects {
    /// `B`.
    pub bold: bool,
    /// `I`.
    pub italic: bool,
    /// `U`.
    pub underline: bool,
    /// `S`.
    pub strikethrough: bool,
}

/// The `X-MMS-IM-Format` header (§7.1). Every field is optional when receiving.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextFormat {
    /// `FN`, decoded font name.
    pub font: Option<String>,
    /// `EF`.
    pub effects: Effects,
    /// `CO`, converted from BGR.
    pub color: Option<Rgb>,
    /// `CS`, kept raw: hex per captures, decimal per MSP31 ([UNCERTAIN], §13 item 6).
    pub charset: Option<String>,
    /// `PF`, pitch and family, kept raw.
    pub pitch_family: Option<String>,
    /// `RL=1`.
    pub right_to_left: bool,
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl TextFormat {
    /// Parses a header value leniently: unknown fields and bad values are ignored.
    pub fn parse(value: &str) -> TextFormat {
        let mut f = TextFormat::default();
        for field in value.split(';') {
            let Some((key, val)) = field.split_once('=') else {
                continue;
            };
            let val = val.trim();
            match key.trim().to_ascii_uppercase().as_str() {
                "FN" => f.font = Some(escape::decode_lossy(val)).filter(|s| !s.is_empty()),
                "EF" => {
                    for c in val.chars() {
                        match c.to_ascii_uppercase() {
                            'B' => f.effects.bold = true,
                            'I' => f.effects.italic = true,
                            'U' => f.effects.underline = true,
                            'S' => f.effects.strikethrough = true,
                            _ => {}
                        }
                    }
                }
                "CO" => {
                    // BGR, leading zeros may be dropped: left-pad to 6 digits (§7.1).
                    f.color = (val.len() <= 6 && !val.is_empty())
                        .then(|| u32::from_str_radix(val, 16).ok())
                        .flatten()
                        .map(|v| {
                            let [r, g, b, _] = v.to_le_bytes();
                            Rgb { r, g, b }
                        });
                }
                "CS" => f.charset = Some(val.to_owned()).filter(|s| is_token(s)),
                "PF" => f.pitch_family = Some(val.to_owned()).filter(|s| is_token(s)),
                "RL" => f.right_to_left = val == "1",
                _ => {}
            }
        }
        f
    }

    /// The header value, fields in the official order `FN; EF; CO; CS; PF; RL`.
    /// `EF` is always present (empty = no effects) so the value is never empty.
    pub fn to_header_value(&self) -> String {
        let mut parts = Vec::new();
        if let Some(font) = self.font.as_deref().filter(|f| !f.is_empty()) {
            parts.push(format!("FN={}", escape::encode(font)));
        }
        let e = self.effects;
        let ef: String = [
            (e.bold, 'B'),
            (e.italic, 'I'),
            (e.underline, 'U'),
            (e.strikethrough, 'S'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect();
        parts.push(format!("EF={ef}"));
        if let Some(Rgb { r, g, b }) = self.color {
            parts.push(format!("CO={:x}", u32::from_le_bytes([r, g, b, 0])));
        }
        if let Some(cs) = self.charset.as_deref().filter(|s| is_token(s)) {
            parts.push(format!("CS={cs}"));
        }
        if let Some(pf) = self.pitch_family.as_deref().filter(|s| is_token(s)) {
            parts.push(format!("PF={pf}"));
        }
        if self.right_to_left {
            parts.push("RL=1".to_owned());
        }
        parts.join("; ")
    }
}

/// One custom emoticon declaration (§7.4): shortcut and msnobj XML (not
/// percent-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmoticonDecl {
    /// Text the receiver replaces, e.g. `(pic)`.
    pub shortcut: String,
    /// The msnobj element, fetched via P2P (§10).
    pub msnobj: String,
}

/// One part of a chunked message (§7.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPart {
    /// The `Message-ID` shared by all parts.
    pub message_id: String,
    /// 0 for the first part, else the `Chunk` value.
    pub index: u32,
    /// `Chunks` (only on the first part).
    pub total: Option<u32>,
    /// All headers of this part.
    pub headers: Headers,
    /// This part's body bytes (may end inside a UTF-8 character).
    pub body: Bytes,
}

/// A typed `MSG` payload (§7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgPayload {
    /// `text/plain` (§7.1); CRLF line breaks converted to `\n`.
    Text {
        /// The message text.
        text: String,
        /// `X-MMS-IM-Format`, if present.
        format: Option<TextFormat>,
        /// `P4-Context`: nickname to show instead of the sender's friendly name.
        p4_context: Option<String>,
    },
    /// `text/x-msmsgscontrol` with `TypingUser` (§7.2).
    Typing {
        /// The account typing.
        user: String,
    },
    /// `text/x-msmsgscontrol` with `RecordingUser` (voice clip being recorded, §7.2).
    Recording {
        /// The account recording.
        user: String,
    },
    /// Datacast `ID: 1` (§7.3).
    Nudge,
    /// Any other datacast: 2 wink, 3 voice clip, 4 action message (§7.3).
    Datacast {
        /// The `ID` value.
        id: u32,
        /// The `Data` value, if present.
        data: Option<String>,
    },
    /// A handwritten message: `image/gif` (a GIF) or `application/x-ms-ink` (ISF),
    /// each with the body `base64:<data>` (libpurple `msn_handwritten_msg`: the form
    /// group chats use; WLM sends one-to-one inks inside P2P instead).
    Ink {
        /// The drawing's format.
        format: InkFormat,
        /// The decoded drawing.
        data: Bytes,
    },
    /// `text/x-mms-emoticon` / `text/x-mms-animemoticon` (§7.4).
    Emoticons {
        /// Whether the animated variant.
        animated: bool,
        /// The declarations in order.
        items: Vec<EmoticonDecl>,
    },
    /// `application/x-msnmsgrp2p` (§7.7): binary body kept raw.
    P2p {
        /// `P2P-Dest` (an `;{epid}` suffix means P2P v2).
        dest: Option<String>,
        /// `P2P-Src` (MSNP18 clients).
        src: Option<String>,
        /// 48-byte header, data, 4-byte footer.
        body: Bytes,
    },
    /// One part of a chunked message; feed it to a [`ChunkAssembler`] (§7.8).
    Chunk(ChunkPart),
    /// `text/x-msmsgsinvite` legacy invitation (§7.5); body fields.
    Invite {
        /// Body header lines (`Invitation-Command`, `Invitation-Cookie`, …).
        fields: Headers,
    },
    /// `text/x-msmsgsprofile` from the NS after login (§2.6, §7.6).
    Profile {
        /// The profile fields (they are MIME headers).
        headers: Headers,
    },
    /// `application/x-msmsgssystemmessage` maintenance warning (§7.6).
    SystemMessage {
        /// `Type` (1 = shutdown warning).
        kind: Option<u32>,
        /// `Arg1` (minutes until shutdown for type 1).
        arg1: Option<String>,
    },
    /// NS mail / OIM notifications (§7.6): e-mail, active-mail, initial mail data, OIM.
    MailNotification {
        /// The media type, e.g. `text/x-msmsgsinitialmdatanotification`.
        content_type: String,
        /// Body fields (`Inbox-Unread`, `Mail-Data`, …).
        fields: Headers,
    },
    /// Anything else; must be ignored, never fatal (§7).
    Unknown {
        /// The media type (lower-cased).
        content_type: String,
        /// All headers.
        headers: Headers,
        /// The raw body.
        body: Bytes,
    },
}

fn body_text(content_type: &str, body: &Bytes) -> Result<String, MessageError> {
    std::str::from_utf8(body)
        .map(str::to_owned)
        .map_err(|e| MessageError::BodyNotUtf8 {
            content_type: content_type.to_owned(),
            valid_up_to: e.valid_up_to(),
        })
}

fn parse_chunk_number(name: &'static str, value: &str) -> Result<u32, MessageError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MessageError::BadChunkHeader {
            name,
            value: value.to_owned(),
        });
    }
    value.parse().map_err(|_| MessageError::BadChunkHeader {
        name,
        value: value.to_owned(),
    })
}

/// Parses a `MSG` payload into its typed form (§7). Chunk parts come back as
/// [`MsgPayload::Chunk`]; pass them to a [`ChunkAssembler`] and run [`classify`] on
/// the result.
pub fn parse_msg(payload: &Bytes, limits: &Limits) -> Result<MsgPayload, MessageError> {
    let mime = MimeMessage::parse(payload, limits)?;
    if let Some(id) = mime.headers.get("Message-ID") {
        let total = mime
            .headers
            .get("Chunks")
            .map(|v| parse_chunk_number("Chunks", v))
            .transpose()?;
        let index = mime
            .headers
            .get("Chunk")
            .map(|v| parse_chunk_number("Chunk", v))
            .transpose()?;
        if total.is_some() || index.is_some() {
            return Ok(MsgPayload::Chunk(ChunkPart {
                message_id: id.to_owned(),
                index: index.unwrap_or(0),
                total,
                headers: mime.headers.clone(),
                body: mime.body,
            }));
        }
    }
    classify(&mime, limits)
}

/// Types a complete (non-chunked or reassembled) message by its `Content-Type` (§7).
pub fn classify(mime: &MimeMessage, limits: &Limits) -> Result<MsgPayload, MessageError> {
    let ct = mime.media_type();
    let fields = || parse_header_lines(&mime.body, limits.max_mime_headers, false).map(|(h, _)| h);
    Ok(match ct.as_str() {
        "text/plain" => MsgPayload::Text {
            text: body_text(&ct, &mime.body)?.replace("\r\n", "\n"),
            format: mime.headers.get("X-MMS-IM-Format").map(TextFormat::parse),
            p4_context: mime.headers.get("P4-Context").map(str::to_owned),
        },
        "text/x-msmsgscontrol" => {
            if let Some(user) = mime.headers.get("TypingUser") {
                MsgPayload::Typing {
                    user: user.to_owned(),
                }
            } else if let Some(user) = mime.headers.get("RecordingUser") {
                MsgPayload::Recording {
                    user: user.to_owned(),
                }
            } else {
                unknown(ct, mime)
            }
        }
        "text/x-msnmsgr-datacast" => {
            let f = fields()?;
            let id = f.get("ID").and_then(|v| v.parse::<u32>().ok());
            match id {
                Some(1) => MsgPayload::Nudge,
                Some(id) => MsgPayload::Datacast {
                    id,
                    data: f.get("Data").map(str::to_owned),
                },
                None => unknown(ct, mime),
            }
        }
        "text/x-mms-emoticon" | "text/x-mms-animemoticon" => {
            let text = body_text(&ct, &mime.body)?;
            let mut parts = text.split('\t');
            let mut items = Vec::new();
            while let (Some(shortcut), Some(msnobj)) = (parts.next(), parts.next()) {
                if !shortcut.is_empty() {
                    items.push(EmoticonDecl {
                        shortcut: shortcut.to_owned(),
                        msnobj: msnobj.to_owned(),
                    });
                }
            }
            MsgPayload::Emoticons {
                animated: ct == "text/x-mms-animemoticon",
                items,
            }
        }
        "application/x-msnmsgrp2p" => MsgPayload::P2p {
            dest: mime.headers.get("P2P-Dest").map(str::to_owned),
            src: mime.headers.get("P2P-Src").map(str::to_owned),
            body: mime.body.clone(),
        },
        "text/x-msmsgsinvite" => MsgPayload::Invite { fields: fields()? },
        "image/gif" | "application/x-ms-ink" => {
            let format = if ct == "image/gif" {
                InkFormat::Gif
            } else {
                InkFormat::Isf
            };
            match ink_data(&mime.body) {
                Some(data) => MsgPayload::Ink { format, data },
                None => unknown(ct, mime),
            }
        }
        "text/x-msmsgsprofile" => MsgPayload::Profile {
            headers: mime.headers.clone(),
        },
        "application/x-msmsgssystemmessage" => {
            let f = fields()?;
            MsgPayload::SystemMessage {
                kind: f.get("Type").and_then(|v| v.parse().ok()),
                arg1: f.get("Arg1").map(str::to_owned),
            }
        }
        "text/x-msmsgsinitialemailnotification"
        | "text/x-msmsgsemailnotification"
        | "text/x-msmsgsactivemailnotification"
        | "text/x-msmsgsinitialmdatanotification"
        | "text/x-msmsgsoimnotification" => MsgPayload::MailNotification {
            content_type: ct,
            fields: fields()?,
        },
        _ => unknown(ct, mime),
    })
}

/// The format of a handwritten message ([`MsgPayload::Ink`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InkFormat {
    /// A GIF image (MSN 7's ink as pictures).
    Gif,
    /// Ink Serialized Format, which only Tablet PC ink libraries draw.
    Isf,
}

/// The drawing of an ink body, `base64:<data>` (whitespace ignored); `None` when it is
/// not in that form.
fn ink_data(body: &[u8]) -> Option<Bytes> {
    use base64::Engine as _;
    let text = std::str::from_utf8(body).ok()?;
    let encoded = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let encoded = encoded.strip_prefix("base64:")?;
    let cleaned: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
    let data = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .ok()?;
    (!data.is_empty()).then(|| Bytes::from(data))
}

fn unknown(content_type: String, mime: &MimeMessage) -> MsgPayload {
    MsgPayload::Unknown {
        content_type,
        headers: mime.headers.clone(),
        body: mime.body.clone(),
    }
}

fn check_value(field: &'static str, value: &str) -> Result<(), MessageError> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(MessageError::BadValue {
            field,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Converts line breaks to the CRLF the wire uses (§7.1).
fn to_wire_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn text_header(format: &TextFormat) -> String {
    format!(
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: {}\r\n\r\n",
        format.to_header_value()
    )
}

/// Builds one `text/plain` payload (§7.1). Line breaks become CRLF. The result may
/// exceed the 1664-byte switchboard limit; use [`encode_text_split`] to stay under it.
pub fn encode_text(text: &str, format: &TextFormat) -> Bytes {
    let mut out = text_header(format);
    out.push_str(&to_wire_newlines(text));
    Bytes::from(out)
}

/// Splits `text` (already using the line breaks to send) into pieces of at most
/// `max_bytes` bytes, at UTF-8 character boundaries, never between CR and LF, and
/// preferably after a space or line break in the second half of a piece (§7.8).
/// Concatenating the pieces gives back `text`. `max_bytes` below 4 is treated as 4.
pub fn split_text(text: &str, max_bytes: usize) -> Vec<&str> {
    let max = max_bytes.max(4);
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while cut > 0 && (!rest.is_char_boundary(cut) || rest.get(cut - 1..=cut) == Some("\r\n")) {
            cut -= 1;
        }
        if let Some(ws) = rest.get(..cut).and_then(|head| head.rfind([' ', '\n']))
            && ws + 1 > cut / 2
        {
            cut = ws + 1;
        }
        if cut == 0 {
            // Unreachable for max >= 4 (a char is at most 4 bytes; "\r\n" is 2).
            cut = rest.char_indices().nth(1).map_or(rest.len(), |(i, _)| i);
        }
        let (head, tail) = rest.split_at(cut);
        pieces.push(head);
        rest = tail;
    }
    pieces.push(rest);
    pieces
}

/// Builds one or more independent `text/plain` payloads, each at most `max_payload`
/// bytes (use [`Limits::max_sb_send_payload`], 1664 by default, §6.3). The bridge sends
/// independent messages rather than chunked ones, as §7.8 recommends.
pub fn encode_text_split(
    text: &str,
    format: &TextFormat,
    max_payload: usize,
) -> Result<Vec<Bytes>, MessageError> {
    let header = text_header(format);
    let budget = max_payload.saturating_sub(header.len());
    if budget < 16 {
        return Err(MessageError::HeadersTooLarge {
            header_len: header.len(),
            max: max_payload,
        });
    }
    let wire = to_wire_newlines(text);
    Ok(split_text(&wire, budget)
        .into_iter()
        .map(|piece| {
            let mut out = String::with_capacity(header.len() + piece.len());
            out.push_str(&header);
            out.push_str(piece);
            Bytes::from(out)
        })
        .collect())
}

/// Builds the typing notification (§7.2); send it with ack type `U`.
pub fn encode_typing(user: &str) -> Result<Bytes, MessageError> {
    check_value("TypingUser", user)?;
    Ok(Bytes::from(format!(
        "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: {user}\r\n\r\n\r\n"
    )))
}

/// Builds a datacast (§7.3) with an optional `Data` value.
pub fn encode_datacast(id: u32, data: Option<&str>) -> Result<Bytes, MessageError> {
    let mut out =
        format!("MIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: {id}\r\n");
    if let Some(data) = data {
        check_value("Data", data)?;
        let _ = write!(out, "Data: {data}\r\n");
    }
    out.push_str("\r\n");
    Ok(Bytes::from(out))
}

/// Builds a nudge (datacast `ID: 1`, §7.3).
pub fn encode_nudge() -> Bytes {
    Bytes::from_static(
        b"MIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: 1\r\n\r\n",
    )
}

/// Builds a custom-emoticon declaration (§7.4), sent just before the text using it.
pub fn encode_emoticons(items: &[EmoticonDecl], animated: bool) -> Result<Bytes, MessageError> {
    let ct = if animated {
        "text/x-mms-animemoticon"
    } else {
        "text/x-mms-emoticon"
    };
    let mut out = format!("MIME-Version: 1.0\r\nContent-Type: {ct}\r\n\r\n");
    for item in items {
        for (field, v) in [("shortcut", &item.shortcut), ("msnobj", &item.msnobj)] {
            if v.is_empty() || v.contains('\t') {
                return Err(MessageError::BadValue {
                    field,
                    value: v.clone(),
                });
            }
        }
        let _ = write!(out, "{}\t{}\t", item.shortcut, item.msnobj);
    }
    Ok(Bytes::from(out))
}

/// Builds the polite refusal of a legacy invitation (§7.5), echoing its cookie.
pub fn encode_invite_cancel(cookie: &str) -> Result<Bytes, MessageError> {
    check_value("Invitation-Cookie", cookie)?;
    Ok(Bytes::from(format!(
        "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\r\n\
         Invitation-Command: CANCEL\r\nInvitation-Cookie: {cookie}\r\nCancel-Code: REJECT_NOT_INSTALLED\r\n"
    )))
}

/// Wraps a P2P v1 body (header + data + footer, §9) for `MSG … D` (§7.7).
pub fn encode_p2p(dest: &str, body: &[u8]) -> Result<Bytes, MessageError> {
    check_value("P2P-Dest", dest)?;
    let head = format!(
        "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: {dest}\r\n\r\n"
    );
    let mut out = BytesMut::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    Ok(out.freeze())
}

struct Pending {
    message_id: String,
    headers: Headers,
    total: u32,
    next: u32,
    body: BytesMut,
}

/// Reassembles chunked messages (§7.8) by concatenating body bytes in order, with caps
/// on part count, total size and concurrently pending messages (oldest dropped first).
/// One per switchboard connection. No clock: stale partial messages are only dropped
/// by eviction.
#[derive(Default)]
pub struct ChunkAssembler {
    pending: VecDeque<Pending>,
    limits: Limits,
}

impl std::fmt::Debug for ChunkAssembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkAssembler")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl ChunkAssembler {
    /// A new assembler using `max_chunks`, `max_chunked_message` and
    /// `max_pending_chunked` from `limits`.
    pub fn new(limits: &Limits) -> ChunkAssembler {
        ChunkAssembler {
            pending: VecDeque::new(),
            limits: limits.clone(),
        }
    }

    /// Number of partially received messages.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Adds one part. Returns the complete message (first part's headers without
    /// `Message-ID`/`Chunks`, concatenated body) when the last part arrives; run
    /// [`classify`] on it.
    pub fn push(&mut self, part: ChunkPart) -> Result<Option<MimeMessage>, MessageError> {
        let max_bytes = self.limits.max_chunked_message;
        if let Some(total) = part.total {
            let max = self.limits.max_chunks;
            if total == 0 || total > max || part.index != 0 {
                return Err(MessageError::BadChunkCount {
                    message_id: part.message_id,
                    chunks: total,
                    max,
                });
            }
            self.pending.retain(|p| p.message_id != part.message_id);
            if part.body.len() > max_bytes {
                return Err(MessageError::ChunkedTooLarge {
                    message_id: part.message_id,
                    max: max_bytes,
                });
            }
            let mut headers = part.headers;
            headers.remove("Message-ID");
            headers.remove("Chunks");
            let p = Pending {
                message_id: part.message_id,
                headers,
                total,
                next: 1,
                body: BytesMut::from(&part.body[..]),
            };
            if total == 1 {
                return Ok(Some(MimeMessage {
                    headers: p.headers,
                    body: p.body.freeze(),
                }));
            }
            self.pending.push_back(p);
            while self.pending.len() > self.limits.max_pending_chunked.max(1) {
                self.pending.pop_front();
            }
            return Ok(None);
        }
        let Some(pos) = self
            .pending
            .iter()
            .position(|p| p.message_id == part.message_id)
        else {
            return Err(MessageError::UnknownChunkedMessage {
                message_id: part.message_id,
                index: part.index,
            });
        };
        let Some(p) = self.pending.get_mut(pos) else {
            return Ok(None);
        };
        if part.index != p.next {
            let expected = p.next;
            self.pending.remove(pos);
            return Err(MessageError::ChunkOutOfOrder {
                message_id: part.message_id,
                expected,
                got: part.index,
            });
        }
        if p.body.len().saturating_add(part.body.len()) > max_bytes {
            self.pending.remove(pos);
            return Err(MessageError::ChunkedTooLarge {
                message_id: part.message_id,
                max: max_bytes,
            });
        }
        p.body.extend_from_slice(&part.body);
        p.next += 1;
        if p.next < p.total {
            return Ok(None);
        }
        Ok(self.pending.remove(pos).map(|p| MimeMessage {
            headers: p.headers,
            body: p.body.freeze(),
        }))
    }
}

#[cfg(test)]
mod tests;
