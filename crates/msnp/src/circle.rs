//! Circles (MSNP18 group chats) on the notification server, as data (MSNP.md §15.4): the
//! `USR SHA A` nonce, the circle `ADL`, the `PUT` that joins a circle's conversation, the
//! `SDG` payloads of text, typing and nudges, and the reading of what the server routes
//! (`NFY PUT` rosters, `NFY DEL` departures, `SDG` messages).
//!
//! Owns: the routed payload form (header blocks split at empty lines, then a body of
//! `Content-Length` bytes), circle addresses (`9:<id>@live.com`) and sender addresses
//! (`1:<email>;epid={guid}`). No I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::message::{Headers, TextFormat};
use crate::xml::{self, Element};

/// The network id of circles.
pub const CIRCLE_NETWORK: u32 = 9;
/// Longest routed payload read (a message and its headers).
pub const MAX_ROUTED: usize = 16 * 1024;

/// Why a routed payload cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CircleError {
    #[error("the routed payload is malformed: {0}")]
    Malformed(&'static str),
    #[error("{0} cannot be written into a circle payload")]
    NotWritable(&'static str),
}

/// A circle's address on the NS: `9:<id>@live.com`.
pub fn address(id: &str) -> String {
    format!("{CIRCLE_NETWORK}:{id}@live.com")
}

/// The circle id in an address such as `9:<id>@live.com;path=IM`, if it is one.
pub fn id_of(address: &str) -> Option<&str> {
    let bare = address.split(';').next()?;
    bare.strip_prefix("9:")?.strip_suffix("@live.com")
}

/// The e-mail address in `1:<email>;epid={…}` (or a bare address), lower-cased.
pub fn sender_of(from: &str) -> String {
    let bare = from.split(';').next().unwrap_or_default().trim();
    let email = bare.split_once(':').map_or(bare, |(_, rest)| rest);
    email.to_ascii_lowercase()
}

/// The `USR SHA A` nonce: base64 of the circle ticket's text, as read from the address
/// book (XML-unescaped: [`crate::abch::circles::Circles::ticket`]).
pub fn sha_nonce(circle_ticket: &str) -> String {
    STANDARD.encode(circle_ticket.as_bytes())
}

/// The circle `ADL` payload (after the contacts' initial `ADL`).
pub fn adl(ids: &[&str]) -> Result<String, CircleError> {
    let mut out = String::from(r#"<ml l="1"><d n="live.com">"#);
    for id in ids {
        let id = xml::escape(id).map_err(|_| CircleError::NotWritable("the circle id"))?;
        out.push_str(&format!(r#"<c n="{id}" l="3" t="9"/>"#));
    }
    out.push_str("</d></ml>");
    Ok(out)
}

/// The routing block both `PUT` and `SDG` start with.
fn routing(to: &str, account: &str, endpoint: &str) -> String {
    format!(
        "Routing: 1.0\r\nTo: {to}\r\nFrom: 1:{account};epid={}\r\n\r\n",
        endpoint.to_ascii_lowercase()
    )
}

/// The `PUT` payload that joins the circle's conversation as `account` from `endpoint`.
pub fn join(id: &str, account: &str, endpoint: &str) -> Result<Vec<u8>, CircleError> {
    let me = xml::escape(account).map_err(|_| CircleError::NotWritable("the account"))?;
    let body = format!("<circle><roster><id>IM</id><user><id>1:{me}</id></user></roster></circle>");
    Ok(format!(
        "{}Reliability: 1.0\r\nStream: 0\r\nSegment: 0\r\n\r\nPublication: 1.0\r\nUri: /circle\r\nContent-Type: application/circles+xml\r\nContent-Length: {}\r\n\r\n{body}",
        routing(&address(id), account, endpoint),
        body.len()
    )
    .into_bytes())
}

/// What the user sends into a circle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing<'a> {
    Text {
        text: &'a str,
        format: &'a TextFormat,
    },
    Typing,
    Nudge,
}

/// The `SDG` payload of `what`, the `segment`-th of this session (MSP31 counts up).
pub fn send(
    id: &str,
    account: &str,
    endpoint: &str,
    segment: u32,
    what: &Outgoing<'_>,
) -> Result<Vec<u8>, CircleError> {
    if account.contains(['\r', '\n']) || endpoint.contains(['\r', '\n']) {
        return Err(CircleError::NotWritable("the account"));
    }
    let (headers, body) = match what {
        Outgoing::Text { text, format } => (
            format!(
                "Content-Type: Text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\nMessage-Type: Text\r\nMIME-Version: 1.0\r\nX-MMS-IM-Format: {}\r\n",
                format.to_header_value()
            ),
            (*text).to_owned(),
        ),
        Outgoing::Typing => (
            format!(
                "Content-Type: text/x-msmsgscontrol\r\nContent-Transfer-Encoding: 7bit\r\nMessage-Type: Control\r\nMessage-Subtype: Typing\r\nMIME-Version: 1.0\r\nTypingUser: {account}\r\n"
            ),
            "\r\n".to_owned(),
        ),
        Outgoing::Nudge => (
            "Content-Type: Text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\nMessage-Type: Nudge\r\nMIME-Version: 1.0\r\n".to_owned(),
            "\r\nID: 1\r\n\r\n".to_owned(),
        ),
    };
    Ok(format!(
        "{}Reliability: 1.0\r\nStream: 0\r\nSegment: {segment}\r\n\r\nMessaging: 1.0\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        routing(&format!("{};path=IM", address(id)), account, endpoint),
        body.len()
    )
    .into_bytes())
}

/// A routed payload read into its header blocks and body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Routed {
    blocks: Vec<Headers>,
    body: String,
}

impl Routed {
    /// The first value of `name` in any block.
    fn header(&self, name: &str) -> Option<&str> {
        self.blocks.iter().find_map(|block| block.get(name))
    }
}

/// Reads a routed payload: header blocks up to the one with `Content-Length`, then that
/// many bytes of body (fewer if the payload is shorter).
fn read_routed(payload: &[u8]) -> Result<Routed, CircleError> {
    if payload.len() > MAX_ROUTED {
        return Err(CircleError::Malformed("too large"));
    }
    let text = String::from_utf8_lossy(payload);
    let mut rest: &str = &text;
    let mut blocks = Vec::new();
    loop {
        let (block, after) = match rest.split_once("\r\n\r\n") {
            Some(split) => split,
            None => (rest, ""),
        };
        let mut headers = Headers::default();
        for line in block.split("\r\n").filter(|l| !l.is_empty()) {
            let (name, value) = line
                .split_once(':')
                .ok_or(CircleError::Malformed("a header line without a colon"))?;
            headers
                .0
                .push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let length = headers.get("Content-Length").map(str::to_owned);
        blocks.push(headers);
        rest = after;
        if let Some(length) = length {
            let length: usize = length
                .parse()
                .map_err(|_| CircleError::Malformed("Content-Length"))?;
            let mut end = length.min(rest.len());
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            let body = rest.get(..end).unwrap_or_default().to_owned();
            return Ok(Routed { blocks, body });
        }
        if rest.is_empty() || blocks.len() > 8 {
            return Ok(Routed {
                blocks,
                body: String::new(),
            });
        }
    }
}

/// What the server routed to the user from a circle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromCircle {
    /// Who is in the circle's conversation (an `NFY PUT` roster; partial: those joining).
    Roster {
        circle: String,
        members: Vec<String>,
    },
    /// A member left the conversation (`NFY DEL`).
    Left {
        circle: String,
        member: String,
    },
    /// A message (`SDG`).
    Text {
        circle: String,
        from: String,
        /// The sender's endpoint (`epid`), if named.
        endpoint: Option<String>,
        text: String,
        format: TextFormat,
    },
    Typing {
        circle: String,
        from: String,
    },
    Nudge {
        circle: String,
        from: String,
    },
    /// Something else from a circle (its properties, say).
    Other {
        circle: String,
    },
}

/// The `epid` of a `From` value, lower-cased and in braces as sent.
fn endpoint_of(from: &str) -> Option<String> {
    from.split(';')
        .find_map(|part| part.trim().strip_prefix("epid="))
        .map(str::to_ascii_lowercase)
}

/// Reads what an `NFY PUT`, `NFY DEL` (`notification` is `PUT` or `DEL`) or `SDG`
/// (`notification` `None`) routed from a circle. `None` when it does not come from a
/// circle (MSNP21's other uses of these verbs).
pub fn read(notification: Option<&str>, payload: &[u8]) -> Result<Option<FromCircle>, CircleError> {
    let routed = read_routed(payload)?;
    // From a circle: `NFY` is sent by the circle, `SDG` is addressed to it.
    let origin = match notification {
        Some(_) => routed.header("From"),
        None => routed.header("To"),
    };
    let Some(circle) = origin.and_then(id_of).map(str::to_owned) else {
        return Ok(None);
    };
    let event = match notification {
        Some(kind) if kind.eq_ignore_ascii_case("DEL") => {
            let member = routed
                .header("Uri")
                .and_then(|uri| uri.split("user(").nth(1))
                .and_then(|rest| rest.split(')').next())
                .map(sender_of);
            match member {
                Some(member) => FromCircle::Left { circle, member },
                None => FromCircle::Other { circle },
            }
        }
        Some(_) => match roster(&routed.body) {
            Some(members) => FromCircle::Roster { circle, members },
            None => FromCircle::Other { circle },
        },
        None => {
            let from_header = routed.header("From").unwrap_or_default();
            let from = sender_of(from_header);
            let kind = routed.header("Message-Type").unwrap_or_default();
            if kind.eq_ignore_ascii_case("Text") {
                FromCircle::Text {
                    circle,
                    endpoint: endpoint_of(from_header),
                    from,
                    text: routed.body.clone(),
                    format: routed
                        .header("X-MMS-IM-Format")
                        .map(TextFormat::parse)
                        .unwrap_or_default(),
                }
            } else if kind.eq_ignore_ascii_case("Control")
                && routed
                    .header("Message-Subtype")
                    .is_some_and(|s| s.eq_ignore_ascii_case("Typing"))
            {
                FromCircle::Typing { circle, from }
            } else if kind.eq_ignore_ascii_case("Nudge") {
                FromCircle::Nudge { circle, from }
            } else {
                FromCircle::Other { circle }
            }
        }
    };
    Ok(Some(event))
}

/// The members named by a `<circle><roster>…</roster></circle>` body.
fn roster(body: &str) -> Option<Vec<String>> {
    let root = Element::parse(body).ok()?;
    let roster = root.find("roster")?;
    Some(
        roster
            .children_named("user")
            .filter_map(|user| user.child("id").and_then(Element::trimmed_text))
            .map(sender_of)
            .collect(),
    )
}

#[cfg(test)]
mod tests;
