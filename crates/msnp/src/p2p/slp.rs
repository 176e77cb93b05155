//! MSNSLP, the SIP-like session layer carried in P2P messages with SessionID 0
//! (MSNP.md §10.1–§10.3): INVITE, 200 OK, 603 Decline, BYE.
//!
//! Encoding reproduces the official spacing (`Via: MSNSLP/1.0/TLP ;branch={…}`,
//! `CSeq: 0 `) and counts the trailing NUL in `Content-Length`. Parsing is lenient
//! about spacing and a missing NUL, strict about length and UTF-8.

use std::fmt;

use super::file_context::{FileContext, FileContextError};

/// EUF-GUID of msnobj transfers: display pictures, emoticons, winks (§10.2).
pub const EUF_GUID_MSNOBJ: &str = "{A4268EEC-FEC5-49E5-95C3-F126696BDBF6}";
/// EUF-GUID of file transfers (§10.2).
pub const EUF_GUID_FILE: &str = "{5D3E02AB-6190-11D3-BBBB-00C04F795683}";
/// Content type of a session INVITE and its responses.
pub const CT_SESSION_REQ: &str = "application/x-msnmsgr-sessionreqbody";
/// Content type of a BYE.
pub const CT_SESSION_CLOSE: &str = "application/x-msnmsgr-sessionclosebody";
/// Content type of a direct-connection proposal (§10.5 step 2).
pub const CT_TRANS_REQ: &str = "application/x-msnmsgr-transreqbody";
/// Content type of the answer to a direct-connection proposal.
pub const CT_TRANS_RESP: &str = "application/x-msnmsgr-transrespbody";
/// Longest MSNSLP message accepted (a file INVITE with a preview is the largest).
pub const MAX_SLP_LEN: usize = 64 * 1024;
/// Most header or body lines accepted.
const MAX_LINES: usize = 64;

/// A GUID as MSNSLP writes it: upper-case hex with braces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub u128);

impl Guid {
    /// Parses `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` (braces optional, any case).
    pub fn parse(text: &str) -> Option<Guid> {
        let t = text.trim();
        let t = t.strip_prefix('{').unwrap_or(t);
        let t = t.strip_suffix('}').unwrap_or(t);
        let groups: Vec<&str> = t.split('-').collect();
        if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
            return None;
        }
        let hex: String = groups.concat();
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(&hex, 16).ok().map(Guid)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = format!("{:032X}", self.0);
        let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or("");
        write!(
            f,
            "{{{}-{}-{}-{}-{}}}",
            part(0..8),
            part(8..12),
            part(12..16),
            part(16..20),
            part(20..32)
        )
    }
}

/// The first line of an MSNSLP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD MSNMSGR:<to> MSNSLP/1.0`.
    Request {
        /// `INVITE`, `BYE`, …
        method: String,
        /// The Request-URI address.
        uri: String,
    },
    /// `MSNSLP/1.0 <code> <reason>`.
    Response {
        /// 200, 603, 500, …
        code: u16,
        /// `OK`, `Decline`, …
        reason: String,
    },
}

/// Why an MSNSLP message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlpError {
    /// Larger than [`MAX_SLP_LEN`].
    #[error("MSNSLP message of {0} bytes is too large")]
    TooLong(usize),
    /// The header block is not UTF-8 or not terminated by a blank line.
    #[error("MSNSLP header block is malformed")]
    BadHeaders,
    /// The start line is neither a request nor a response.
    #[error("bad MSNSLP start line {0:?}")]
    BadStartLine(String),
    /// A required header is missing or unparsable.
    #[error("MSNSLP header {0} missing or malformed")]
    Missing(&'static str),
    /// Content-Length exceeds the bytes present.
    #[error("MSNSLP Content-Length {declared} but {actual} body bytes")]
    Truncated {
        /// Content-Length.
        declared: usize,
        /// Bytes present.
        actual: usize,
    },
    /// Too many lines.
    #[error("MSNSLP message has too many lines")]
    TooManyLines,
}

/// One MSNSLP message (§10.1). Body fields are `Key: value` lines; the trailing blank
/// line and NUL are implied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlpMessage {
    /// Request or response line.
    pub start: StartLine,
    /// Address in `To: <msnmsgr:…>`.
    pub to: String,
    /// Address in `From: <msnmsgr:…>`.
    pub from: String,
    /// `Via … ;branch=`.
    pub branch: Guid,
    /// `CSeq`.
    pub cseq: u32,
    /// `Call-ID`.
    pub call_id: Guid,
    /// `Content-Type`.
    pub content_type: String,
    /// Body `Key: value` fields in order.
    pub body: Vec<(String, String)>,
}

fn strip_addr(v: &str) -> String {
    let v = v.trim();
    let v = v.strip_prefix('<').unwrap_or(v);
    let v = v.strip_suffix('>').unwrap_or(v);
    let v = v
        .strip_prefix("msnmsgr:")
        .or_else(|| v.strip_prefix("MSNMSGR:"))
        .unwrap_or(v);
    v.to_owned()
}

impl SlpMessage {
    /// A body field by key (case-insensitive).
    pub fn field(&self, key: &str) -> Option<&str> {
        self.body
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The body `SessionID`, if present and numeric.
    pub fn session_id(&self) -> Option<u32> {
        self.field("SessionID")?.trim().parse().ok()
    }

    /// The body `AppID`, if present and numeric.
    pub fn app_id(&self) -> Option<u32> {
        self.field("AppID")?.trim().parse().ok()
    }

    /// The request method, if this is a request.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code, if this is a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The session INVITE for an msnobj (§10.4 step 1): `Context` is base64 of the
    /// msnobj text followed by a NUL (§10.2).
    pub fn invite_msnobj(
        to: &str,
        from: &str,
        branch: Guid,
        call_id: Guid,
        session_id: u32,
        app_id: u32,
        msnobj_text: &str,
    ) -> SlpMessage {
        let context = format!("{msnobj_text}\0");
        Self::invite(
            (to, from, branch, call_id),
            EUF_GUID_MSNOBJ,
            session_id,
            app_id,
            context.as_bytes(),
        )
    }

    /// The session INVITE offering a file (§10.5): EUF-GUID of files, AppID 2, the file
    /// context in `Context`.
    pub fn invite_file(
        to: &str,
        from: &str,
        branch: Guid,
        call_id: Guid,
        session_id: u32,
        file: &FileContext,
    ) -> Result<SlpMessage, FileContextError> {
        Ok(Self::invite(
            (to, from, branch, call_id),
            EUF_GUID_FILE,
            session_id,
            2,
            &file.to_bytes()?,
        ))
    }

    fn invite(
        (to, from, branch, call_id): (&str, &str, Guid, Guid),
        euf_guid: &str,
        session_id: u32,
        app_id: u32,
        context: &[u8],
    ) -> SlpMessage {
        use base64::Engine as _;
        let context = base64::engine::general_purpose::STANDARD.encode(context);
        SlpMessage {
            start: StartLine::Request {
                method: "INVITE".into(),
                uri: to.into(),
            },
            to: to.into(),
            from: from.into(),
            branch,
            cseq: 0,
            call_id,
            content_type: CT_SESSION_REQ.into(),
            body: vec![
                ("EUF-GUID".into(), euf_guid.into()),
                ("SessionID".into(), session_id.to_string()),
                ("AppID".into(), app_id.to_string()),
                ("Context".into(), context),
            ],
        }
    }

    /// The file this message offers, if it is a file INVITE (§10.5); an offer whose
    /// context cannot be read is an error (to be declined).
    pub fn file_offer(&self) -> Option<Result<FileContext, FileContextError>> {
        use base64::Engine as _;
        let euf = self.field("EUF-GUID")?;
        if self.method() != Some("INVITE") || !euf.trim().eq_ignore_ascii_case(EUF_GUID_FILE) {
            return None;
        }
        let context = self.field("Context").unwrap_or_default();
        let cleaned: String = context.chars().filter(|c| !c.is_whitespace()).collect();
        Some(
            base64::engine::general_purpose::STANDARD
                .decode(cleaned.as_bytes())
                .map_err(|_| FileContextError::TooShort(0))
                .and_then(|bytes| FileContext::parse(&bytes)),
        )
    }

    /// A response to `request` (same branch and Call-ID, CSeq 1, To/From swapped) with
    /// body `SessionID: n` (§10.4 step 3 / 603 Decline).
    pub fn response(request: &SlpMessage, code: u16, reason: &str, session_id: u32) -> SlpMessage {
        SlpMessage {
            start: StartLine::Response {
                code,
                reason: reason.into(),
            },
            to: request.from.clone(),
            from: request.to.clone(),
            branch: request.branch,
            cseq: 1,
            call_id: request.call_id,
            content_type: CT_SESSION_REQ.into(),
            body: vec![("SessionID".into(), session_id.to_string())],
        }
    }

    /// The answer to a direct-connection proposal that keeps the transfer on the
    /// switchboard (§10.5 step 2): `200 OK`, `Listening: false`, a zero nonce. The
    /// sender then streams the data through the switchboard.
    ///
    /// It also names an internal address and port, which mean nothing while
    /// `Listening` is false: `msnp11-sdk` (0.13, `event_matcher.rs`) takes a
    /// `transrespbody` as the answer only when it has both, treats one without them as
    /// the session's `200 OK` again, proposes again, and never sends a byte (checked by
    /// the e2e file tests). libpurple's answer lacks them; official clients read
    /// `Listening` first.
    pub fn not_listening(request: &SlpMessage) -> SlpMessage {
        SlpMessage {
            start: StartLine::Response {
                code: 200,
                reason: "OK".into(),
            },
            to: request.from.clone(),
            from: request.to.clone(),
            branch: request.branch,
            cseq: 1,
            call_id: request.call_id,
            content_type: CT_TRANS_RESP.into(),
            body: vec![
                ("Bridge".into(), "TCPv1".into()),
                ("Listening".into(), "false".into()),
                (
                    "Nonce".into(),
                    "{00000000-0000-0000-0000-000000000000}".into(),
                ),
                ("IPv4Internal-Addrs".into(), "0.0.0.0".into()),
                ("IPv4Internal-Port".into(), "0".into()),
            ],
        }
    }

    /// A BYE closing the session of `call_id`, body `\r\n\0` (§10.4 step 9).
    pub fn bye(to: &str, from: &str, branch: Guid, call_id: Guid) -> SlpMessage {
        SlpMessage {
            start: StartLine::Request {
                method: "BYE".into(),
                uri: to.into(),
            },
            to: to.into(),
            from: from.into(),
            branch,
            cseq: 0,
            call_id,
            content_type: CT_SESSION_CLOSE.into(),
            body: Vec::new(),
        }
    }

    /// The wire text, NUL included.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = String::new();
        for (k, v) in &self.body {
            body.push_str(&format!("{k}: {v}\r\n"));
        }
        body.push_str("\r\n\0");
        let start = match &self.start {
            StartLine::Request { method, uri } => format!("{method} MSNMSGR:{uri} MSNSLP/1.0"),
            StartLine::Response { code, reason } => format!("MSNSLP/1.0 {code} {reason}"),
        };
        let text = format!(
            "{start}\r\nTo: <msnmsgr:{}>\r\nFrom: <msnmsgr:{}>\r\nVia: MSNSLP/1.0/TLP ;branch={}\r\n\
             CSeq: {} \r\nCall-ID: {}\r\nMax-Forwards: 0\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n{body}",
            self.to,
            self.from,
            self.branch,
            self.cseq,
            self.call_id,
            self.content_type,
            body.len()
        );
        text.into_bytes()
    }

    /// Where the P2P chunk of this message's wire `text` that starts at `start` ends,
    /// for chunks of at most `max` bytes.
    ///
    /// Official clients cut at the full 1,202 bytes and reassemble by offset before
    /// parsing (MSNP.md §9.4: a WLM INVITE of 1,274 bytes went as 1,202 + 72), so any
    /// cut would do for them; but `msnp11-sdk` parses each chunk on its own and takes a
    /// file offer from the first one alone, base64-decoding however much of the
    /// `Context` it holds (a file INVITE is near 1,202 bytes without a preview, so
    /// long addresses make it span chunks, and several KB with one).
    /// So a cut inside a line's value falls after a whole number of 4-character groups
    /// of it (what arrived of the `Context` decodes), and a cut inside a line's name
    /// moves back to where the line starts.
    pub fn chunk_end(text: &[u8], start: usize, max: usize) -> usize {
        let limit = start.saturating_add(max.max(1)).min(text.len());
        let before = text.get(..limit).unwrap_or(text);
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        if limit == text.len() || line_start == limit {
            return limit;
        }
        let line = before.get(line_start..).unwrap_or_default();
        let value_start = line
            .windows(2)
            .position(|w| w == b": ")
            .map(|at| line_start + at + 2);
        let cut = match value_start {
            Some(value) => value + (limit - value) / 4 * 4,
            None => line_start,
        };
        if cut > start { cut } else { limit }
    }

    /// Parses a complete MSNSLP message (the reassembled P2P data).
    pub fn parse(data: &[u8]) -> Result<SlpMessage, SlpError> {
        if data.len() > MAX_SLP_LEN {
            return Err(SlpError::TooLong(data.len()));
        }
        let split = data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or(SlpError::BadHeaders)?;
        let head = data.get(..split).ok_or(SlpError::BadHeaders)?;
        let rest = data.get(split + 4..).unwrap_or_default();
        let head = std::str::from_utf8(head).map_err(|_| SlpError::BadHeaders)?;
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap_or_default().trim();
        let start = parse_start(first)
            .ok_or_else(|| SlpError::BadStartLine(first.chars().take(80).collect()))?;
        let mut to = None;
        let mut from = None;
        let mut branch = None;
        let mut cseq = None;
        let mut call_id = None;
        let mut content_type = None;
        let mut content_length = None;
        for (n, line) in lines.enumerate() {
            if n >= MAX_LINES {
                return Err(SlpError::TooManyLines);
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "to" => to = Some(strip_addr(v)),
                "from" => from = Some(strip_addr(v)),
                "via" => {
                    branch = v
                        .split(';')
                        .filter_map(|p| p.trim().strip_prefix("branch="))
                        .find_map(Guid::parse);
                }
                "cseq" => cseq = v.parse::<u32>().ok(),
                "call-id" => call_id = Guid::parse(v),
                "content-type" => content_type = Some(v.to_owned()),
                "content-length" => content_length = v.parse::<usize>().ok(),
                _ => {}
            }
        }
        let declared = content_length.ok_or(SlpError::Missing("Content-Length"))?;
        // Lenient: a sender that forgot the NUL is one byte short.
        if declared > rest.len() + 1 {
            return Err(SlpError::Truncated {
                declared,
                actual: rest.len(),
            });
        }
        let body_bytes = rest.get(..declared.min(rest.len())).unwrap_or_default();
        let body_text = std::str::from_utf8(body_bytes).map_err(|_| SlpError::BadHeaders)?;
        let body_text = body_text.trim_end_matches('\0');
        let mut body = Vec::new();
        for line in body_text.split("\r\n") {
            let line = line.trim_end_matches('\0');
            if let Some((k, v)) = line.split_once(':') {
                if body.len() >= MAX_LINES {
                    return Err(SlpError::TooManyLines);
                }
                // NULs and whitespace in any order at the end (`"1 \0"`), so the value
                // is what `encode` writes back.
                let v = v
                    .trim_start()
                    .trim_end_matches(|c: char| c == '\0' || c.is_whitespace());
                body.push((k.trim().to_owned(), v.to_owned()));
            }
        }
        Ok(SlpMessage {
            start,
            to: to.ok_or(SlpError::Missing("To"))?,
            from: from.ok_or(SlpError::Missing("From"))?,
            branch: branch.ok_or(SlpError::Missing("Via"))?,
            cseq: cseq.unwrap_or(0),
            call_id: call_id.ok_or(SlpError::Missing("Call-ID"))?,
            content_type: content_type.unwrap_or_default(),
            body,
        })
    }
}

fn parse_start(line: &str) -> Option<StartLine> {
    let mut parts = line.splitn(3, ' ');
    let a = parts.next()?;
    let b = parts.next()?;
    let c = parts.next().unwrap_or("");
    if a.eq_ignore_ascii_case("MSNSLP/1.0") {
        let code = b.parse().ok()?;
        return Some(StartLine::Response {
            code,
            reason: c.to_owned(),
        });
    }
    if !c.eq_ignore_ascii_case("MSNSLP/1.0") || !a.bytes().all(|x| x.is_ascii_uppercase()) {
        return None;
    }
    Some(StartLine::Request {
        method: a.to_owned(),
        uri: strip_addr(b),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const BRANCH: Guid = Guid(0x0D4F6E3A_1B2C_4D5E_8F90_A1B2C3D4E5F6);
    pub(crate) const CALL_ID: Guid = Guid(0x7E8F9A0B_1C2D_4E3F_9051_62738495A6B7);
    pub(crate) const MSNOBJ: &str = "<msnobj Creator=\"alice@example.com\" Size=\"16\" Type=\"3\" Location=\"0\" Friendly=\"AAA=\" SHA1D=\"VheLhqV/rCKJmplkGFwsyW59pYk=\" SHA1C=\"SwlepNXV449EJPyznv0LuakEUh0=\"/>";

    pub(crate) const INVITE: &str = "INVITE MSNMSGR:alice@example.com MSNSLP/1.0\r\n\
To: <msnmsgr:alice@example.com>\r\n\
From: <msnmsgr:bridge@example.com>\r\n\
Via: MSNSLP/1.0/TLP ;branch={0D4F6E3A-1B2C-4D5E-8F90-A1B2C3D4E5F6}\r\n\
CSeq: 0 \r\n\
Call-ID: {7E8F9A0B-1C2D-4E3F-9051-62738495A6B7}\r\n\
Max-Forwards: 0\r\n\
Content-Type: application/x-msnmsgr-sessionreqbody\r\n\
Content-Length: 313\r\n\
\r\n\
EUF-GUID: {A4268EEC-FEC5-49E5-95C3-F126696BDBF6}\r\n\
SessionID: 2345678901\r\n\
AppID: 1\r\n\
Context: PG1zbm9iaiBDcmVhdG9yPSJhbGljZUBleGFtcGxlLmNvbSIgU2l6ZT0iMTYiIFR5cGU9IjMiIExvY2F0aW9uPSIwIiBGcmllbmRseT0iQUFBPSIgU0hBMUQ9IlZoZUxocVYvckNLSm1wbGtHRndzeVc1OXBZaz0iIFNIQTFDPSJTd2xlcE5YVjQ0OUVKUHl6bnYwTHVha0VVaDA9Ii8+AA==\r\n\
\r\n\0";

    pub(crate) const OK: &str = "MSNSLP/1.0 200 OK\r\n\
To: <msnmsgr:bridge@example.com>\r\n\
From: <msnmsgr:alice@example.com>\r\n\
Via: MSNSLP/1.0/TLP ;branch={0D4F6E3A-1B2C-4D5E-8F90-A1B2C3D4E5F6}\r\n\
CSeq: 1 \r\n\
Call-ID: {7E8F9A0B-1C2D-4E3F-9051-62738495A6B7}\r\n\
Max-Forwards: 0\r\n\
Content-Type: application/x-msnmsgr-sessionreqbody\r\n\
Content-Length: 26\r\n\
\r\n\
SessionID: 2345678901\r\n\
\r\n\0";

    pub(crate) const BYE: &str = "BYE MSNMSGR:alice@example.com MSNSLP/1.0\r\n\
To: <msnmsgr:alice@example.com>\r\n\
From: <msnmsgr:bridge@example.com>\r\n\
Via: MSNSLP/1.0/TLP ;branch={0D4F6E3A-1B2C-4D5E-8F90-A1B2C3D4E5F6}\r\n\
CSeq: 0 \r\n\
Call-ID: {7E8F9A0B-1C2D-4E3F-9051-62738495A6B7}\r\n\
Max-Forwards: 0\r\n\
Content-Type: application/x-msnmsgr-sessionclosebody\r\n\
Content-Length: 3\r\n\
\r\n\
\r\n\0";

    fn invite() -> SlpMessage {
        SlpMessage::invite_msnobj(
            "alice@example.com",
            "bridge@example.com",
            BRANCH,
            CALL_ID,
            2_345_678_901,
            1,
            MSNOBJ,
        )
    }

    #[test]
    fn section_10_4_fixtures() {
        let inv = invite();
        assert_eq!(inv.encode(), INVITE.as_bytes());
        assert_eq!(INVITE.len(), 646);
        assert_eq!(SlpMessage::parse(INVITE.as_bytes()), Ok(inv.clone()));
        let ok = SlpMessage::response(&inv, 200, "OK", 2_345_678_901);
        assert_eq!(ok.encode(), OK.as_bytes());
        assert_eq!(OK.len(), 332);
        assert_eq!(SlpMessage::parse(OK.as_bytes()), Ok(ok.clone()));
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.session_id(), Some(2_345_678_901));
        let bye = SlpMessage::bye("alice@example.com", "bridge@example.com", BRANCH, CALL_ID);
        assert_eq!(bye.encode(), BYE.as_bytes());
        assert_eq!(BYE.len(), 333);
        assert_eq!(SlpMessage::parse(BYE.as_bytes()), Ok(bye));
        let decline = SlpMessage::response(&inv, 603, "Decline", 180_646_677);
        let text = decline.encode();
        assert!(text.ends_with(b"Content-Length: 25\r\n\r\nSessionID: 180646677\r\n\r\n\0"));
        assert_eq!(SlpMessage::parse(&text).map(|m| m.status()), Ok(Some(603)));
    }

    #[test]
    fn guid_format() {
        assert_eq!(BRANCH.to_string(), "{0D4F6E3A-1B2C-4D5E-8F90-A1B2C3D4E5F6}");
        assert_eq!(
            Guid::parse("0d4f6e3a-1b2c-4d5e-8f90-a1b2c3d4e5f6"),
            Some(BRANCH)
        );
        assert_eq!(Guid::parse("{0D4F6E3A-1B2C-4D5E-8F90}"), None);
        assert_eq!(Guid::parse("{0D4F6E3A-1B2C-4D5E-8F90-A1B2C3D4E5FG}"), None);
    }

    #[test]
    fn lenient_parse() {
        // No NUL, MSP31-style BYE body, tight spacing.
        let text = "BYE MSNMSGR:a@b.c MSNSLP/1.0\r\nTo: <msnmsgr:a@b.c>\r\nFrom: <msnmsgr:d@e.f>\r\n\
                    Via: MSNSLP/1.0/TLP;branch={0D4F6E3A-1B2C-4D5E-8F90-A1B2C3D4E5F6}\r\nCSeq: 0\r\n\
                    Call-ID: {7E8F9A0B-1C2D-4E3F-9051-62738495A6B7}\r\nContent-Type: null\r\n\
                    Content-Length: 25\r\n\r\nSessionID: 180646677\r\n\r\n";
        let m = SlpMessage::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.method(), Some("BYE"));
        assert_eq!(m.session_id(), Some(180_646_677));
        assert_eq!(m.branch, BRANCH);
    }

    #[test]
    fn rejects_and_never_panics() {
        assert_eq!(SlpMessage::parse(b"garbage"), Err(SlpError::BadHeaders));
        assert!(matches!(
            SlpMessage::parse(b"HELLO\r\n\r\n"),
            Err(SlpError::BadStartLine(_))
        ));
        let short = INVITE.replace("Content-Length: 313", "Content-Length: 999");
        assert!(matches!(
            SlpMessage::parse(short.as_bytes()),
            Err(SlpError::Truncated { .. })
        ));
        assert!(matches!(
            SlpMessage::parse(&vec![b'a'; MAX_SLP_LEN + 1]),
            Err(SlpError::TooLong(_))
        ));
        let bytes = INVITE.as_bytes();
        for cut in 0..bytes.len() {
            let _ = SlpMessage::parse(bytes.get(..cut).unwrap_or_default());
        }
        let mut seed = 7u32;
        for _ in 0..3000 {
            let mut m = bytes.to_vec();
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let pos = (seed >> 8) as usize % m.len();
            if let Some(b) = m.get_mut(pos) {
                *b = (seed >> 24) as u8;
            }
            let _ = SlpMessage::parse(&m);
        }
    }

    #[test]
    fn body_value_trims_whitespace_before_nul() {
        // Found by fuzz/slp: `"1 \r\0"` parsed to `"1 \r"`, which re-encoded and
        // re-parsed as `"1"`.
        let text = OK.replace("SessionID: 2345678901", "SessionID: 2345678901 \r\0");
        let declared = text.len() - text.find("\r\n\r\n").expect("blank line") - 4;
        let text = text.replace("Content-Length: 26", &format!("Content-Length: {declared}"));
        let msg = SlpMessage::parse(text.as_bytes()).expect("parse");
        assert_eq!(msg.field("SessionID"), Some("2345678901"));
        assert_eq!(SlpMessage::parse(&msg.encode()), Ok(msg));
    }

    #[test]
    fn a_file_offer_goes_through_the_wire_and_back() {
        let file = FileContext {
            name: "photo.png".into(),
            size: 5 * 1024 * 1024,
            preview: None,
        };
        let invite = SlpMessage::invite_file(
            "alice@example.com",
            "bridge@example.com",
            BRANCH,
            CALL_ID,
            42,
            &file,
        )
        .expect("invite");
        assert_eq!(invite.app_id(), Some(2));
        assert_eq!(invite.field("EUF-GUID"), Some(EUF_GUID_FILE));
        let read = SlpMessage::parse(&invite.encode()).expect("parse");
        assert_eq!(read.session_id(), Some(42));
        assert_eq!(read.file_offer(), Some(Ok(file)));
        // An msnobj INVITE is no file offer; a file INVITE with a broken context is an
        // error to decline.
        let picture = SlpMessage::invite_msnobj(
            "alice@example.com",
            "bridge@example.com",
            BRANCH,
            CALL_ID,
            7,
            12,
            MSNOBJ,
        );
        assert_eq!(picture.file_offer(), None);
        let mut broken = read.clone();
        broken.body.retain(|(k, _)| k != "Context");
        broken.body.push(("Context".into(), "AAAA".into()));
        assert!(matches!(broken.file_offer(), Some(Err(_))));
    }

    #[test]
    fn chunks_end_at_a_line_or_after_whole_base64_groups() {
        let text = INVITE.as_bytes();
        let value_at = INVITE
            .find("Context: ")
            .map_or(0, |at| at + "Context: ".len());
        // In the Context's value: back to a whole group of four.
        assert_eq!(SlpMessage::chunk_end(text, 0, value_at + 7), value_at + 4);
        assert_eq!(SlpMessage::chunk_end(text, 0, value_at + 8), value_at + 8);
        // In a line's name: back to the line's start.
        let line_at = INVITE.find("SessionID").unwrap_or(0);
        assert_eq!(SlpMessage::chunk_end(text, 0, line_at + 3), line_at);
        // At a line's start, at the end, or with no earlier place to go: where it falls.
        assert_eq!(SlpMessage::chunk_end(text, 0, line_at), line_at);
        assert_eq!(SlpMessage::chunk_end(text, 0, text.len() + 9), text.len());
        assert_eq!(SlpMessage::chunk_end(text, line_at, 3), line_at + 3);
        assert_eq!(SlpMessage::chunk_end(text, 5, 0), 6);
        // Every size of chunk covers the message in order, each chunk within its size.
        for max in 1..text.len() + 2 {
            let mut start = 0;
            while start < text.len() {
                let end = SlpMessage::chunk_end(text, start, max);
                assert!(
                    end > start && end - start <= max,
                    "{start}..{end} for {max}"
                );
                start = end;
            }
        }
    }
}
