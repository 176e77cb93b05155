//! The circle payloads of the NS as Escargot reads and writes them (MSNP.md §15.4): the
//! routed form of `PUT`, `NFY` and `SDG` (header blocks ended by empty lines, the last
//! one with `Content-Length`, then the body), circle and sender addresses
//! (`9:<id>@live.com;path=IM`, `1:<email>;epid={guid}`), the `NFY PUT` roster and
//! `NFY DEL` departure payloads, and the circle ticket with the `USR SHA A` nonce made
//! from it. Pure functions; no state, no I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

use msnp::xml::escape_lossy;

use super::ID_PREFIX;

/// The header blocks of a routed payload and what follows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Routed<'a> {
    /// (name, value) pairs per block, in order.
    pub blocks: Vec<Vec<(String, String)>>,
    /// Everything after the block that carries `Content-Length` (or after the last one).
    pub body: &'a [u8],
}

impl Routed<'_> {
    /// The first value of `name` (any case) in block `index`.
    pub fn header_in(&self, index: usize, name: &str) -> Option<&str> {
        self.blocks
            .get(index)?
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name` (any case) in any block.
    pub fn header(&self, name: &str) -> Option<&str> {
        (0..self.blocks.len()).find_map(|i| self.header_in(i, name))
    }

    /// The body as the last block's `Content-Length` announces it: `None` when that
    /// header is missing, not a number, or more than the bytes there are.
    pub fn content(&self) -> Option<&[u8]> {
        let length: usize = self
            .header_in(self.blocks.len().checked_sub(1)?, "Content-Length")?
            .parse()
            .ok()?;
        self.body.get(..length)
    }
}

/// The position of the first `\r\n\r\n` in `bytes`.
fn blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Reads a routed payload: header blocks until one has `Content-Length` (at most eight),
/// then the body. `None` for a header line without a colon or text that is not UTF-8.
pub(crate) fn read_routed(payload: &[u8]) -> Option<Routed<'_>> {
    let mut rest = payload;
    let mut blocks = Vec::new();
    loop {
        let (block, after) = match blank_line(rest) {
            Some(at) => (rest.get(..at)?, rest.get(at + 4..)?),
            None => (rest, &[][..]),
        };
        let text = std::str::from_utf8(block).ok()?;
        let mut headers = Vec::new();
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':')?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let last = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("Content-Length"));
        blocks.push(headers);
        rest = after;
        if last || rest.is_empty() || blocks.len() >= 8 {
            return Some(Routed { blocks, body: rest });
        }
    }
}

/// A network-qualified address split: (network id, address, the parameter after `;`).
/// `9:<id>@live.com;path=IM` is `("9", "<id>@live.com", Some("path=IM"))`.
pub(crate) fn split_address(value: &str) -> Option<(&str, &str, Option<&str>)> {
    let (bare, param) = match value.split_once(';') {
        Some((bare, param)) => (bare, Some(param.trim())),
        None => (value, None),
    };
    let (network, address) = bare.trim().split_once(':')?;
    Some((network, address, param))
}

/// Whether `id` is a circle id: the circle prefix and twelve hex digits (any case).
pub(crate) fn valid_id(id: &str) -> bool {
    id.len() == ID_PREFIX.len() + 12
        && id
            .get(..ID_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(ID_PREFIX))
        && id
            .get(ID_PREFIX.len()..)
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The lower-case circle id of `<id>@live.com`, if it is one.
pub(crate) fn circle_of(address: &str) -> Option<String> {
    let id = address.strip_suffix("@live.com")?;
    valid_id(id).then(|| id.to_ascii_lowercase())
}

/// An endpoint id as Escargot keeps it: braces off (`{…}` or bare both taken).
pub(crate) fn bare_guid(guid: &str) -> &str {
    let inner = guid.strip_prefix('{').unwrap_or(guid);
    inner.strip_suffix('}').unwrap_or(inner)
}

/// The blocks every payload from circle `id` to `to` starts with.
fn from_circle(to: &str, id: &str) -> String {
    format!(
        "Routing: 1.0\r\nTo: 1:{to}\r\nFrom: 9:{id}@live.com\r\n\r\nReliability: 1.0\r\nStream: 0\r\n\r\n"
    )
}

/// The `NFY PUT` payload telling `to` who is in circle `id`'s conversation (Escargot's
/// `PAYLOAD_MSG_5`, §15.4 step 5).
pub(crate) fn roster_payload(to: &str, id: &str, roster: &[String]) -> String {
    let users: String = roster
        .iter()
        .map(|email| format!("<user><id>1:{}</id></user>", escape_lossy(email)))
        .collect();
    let body = format!("<circle><roster><id>IM</id>{users}</roster></circle>");
    format!(
        "{}Publication: 1.0\r\nUri: /circle\r\nNotifType: Partial\r\nContent-Type: application/circles+xml\r\nContent-Length: {}\r\n\r\n{body}",
        from_circle(to, id),
        body.len()
    )
}

/// The `NFY DEL` payload telling `to` that `who` left circle `id`'s conversation
/// (Escargot's `PAYLOAD_MSG_9`).
pub(crate) fn left_payload(to: &str, id: &str, who: &str) -> String {
    format!(
        "{}Notification: 1.0\r\nNotifNum: 2\r\nUri: /circle/roster(IM)/user(1:{who})\r\nNotifType: Partial\r\nContent-Type: application/circles+xml\r\nContent-Length: 0\r\n\r\n",
        from_circle(to, id)
    )
}

/// The circle ticket of a user with customer id `cid` in the (accepted) circles `ids`,
/// as Escargot's `gen_signedticket_xml` writes it: a `SignedTicket` whose `Data` is the
/// base64 of the `Ticket` document (CRLF line ends) and whose `Sig` is, here, the base64
/// of a SHA-1 over it (Escargot signs with a per-session RSA key; nobody checks).
pub(crate) fn ticket(cid: u64, ids: &[&str]) -> String {
    let circles: String = ids
        .iter()
        .map(|id| format!("\r\n  <Circle Id=\"{id}\" HostedDomain=\"live.com\" />"))
        .collect();
    let data = format!(
        "<?xml version=\"1.0\" encoding=\"utf-16\"?>\r\n<Ticket xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">{circles}\r\n  <TS>0000-01-01T00:00:00</TS>\r\n  <CID>{cid}</CID>\r\n</Ticket>"
    );
    let sig = Sha1::digest(data.as_bytes());
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-16\"?><SignedTicket xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" ver=\"1\" keyVer=\"1\"><Data>{}</Data><Sig>{}</Sig></SignedTicket>",
        STANDARD.encode(data.as_bytes()),
        STANDARD.encode(sig)
    )
}

/// The `USR SHA A` nonce that presents `ticket` (the XML-unescaped text): the base64 of
/// its UTF-8 bytes (§15.4 step 2).
pub(crate) fn nonce(ticket: &str) -> String {
    STANDARD.encode(ticket.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "00000000-0000-0000-0009-5c1e2d3f4a5b";

    /// The 364-byte `PUT` of §15.4 step 5.
    const PUT: &str = "Routing: 1.0\r\nTo: 9:00000000-0000-0000-0009-5c1e2d3f4a5b@live.com\r\nFrom: 1:bridge@example.com;epid={6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}\r\n\r\nReliability: 1.0\r\nStream: 0\r\nSegment: 0\r\n\r\nPublication: 1.0\r\nUri: /circle\r\nContent-Type: application/circles+xml\r\nContent-Length: 87\r\n\r\n<circle><roster><id>IM</id><user><id>1:bridge@example.com</id></user></roster></circle>";

    /// The 402-byte `SDG` of §15.4 step 6.
    const SDG: &str = "Routing: 1.0\r\nTo: 9:00000000-0000-0000-0009-5c1e2d3f4a5b@live.com;path=IM\r\nFrom: 1:bridge@example.com;epid={6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}\r\n\r\nReliability: 1.0\r\nStream: 0\r\nSegment: 1\r\n\r\nMessaging: 1.0\r\nContent-Length: 5\r\nContent-Type: Text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\nMessage-Type: Text\r\nMIME-Version: 1.0\r\nX-MMS-IM-Format: FN=Segoe%20UI; EF=; CO=0; CS=1; PF=0\r\n\r\nhello";

    #[test]
    fn the_put_and_sdg_of_the_reference_are_read() {
        assert_eq!(PUT.len(), 364);
        let put = read_routed(PUT.as_bytes()).expect("routed");
        assert_eq!(put.blocks.len(), 3);
        assert_eq!(
            put.header_in(0, "To"),
            Some("9:00000000-0000-0000-0009-5c1e2d3f4a5b@live.com")
        );
        assert_eq!(
            put.header_in(2, "content-type"),
            Some("application/circles+xml")
        );
        assert_eq!(
            put.content(),
            Some(&b"<circle><roster><id>IM</id><user><id>1:bridge@example.com</id></user></roster></circle>"[..])
        );

        assert_eq!(SDG.len(), 402);
        let sdg = read_routed(SDG.as_bytes()).expect("routed");
        assert_eq!(sdg.content(), Some(&b"hello"[..]));
        let (network, address, param) = split_address(sdg.header("To").expect("To")).expect("To");
        assert_eq!((network, param), ("9", Some("path=IM")));
        assert_eq!(circle_of(address).as_deref(), Some(ID));
        let (network, address, param) =
            split_address(sdg.header("From").expect("From")).expect("From");
        assert_eq!((network, address), ("1", "bridge@example.com"));
        assert_eq!(
            param.and_then(|p| p.strip_prefix("epid=")).map(bare_guid),
            Some("6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")
        );

        // A body shorter than announced, or no length at all, has no content.
        let short = SDG.replace("Content-Length: 5", "Content-Length: 6");
        assert_eq!(
            read_routed(short.as_bytes()).expect("routed").content(),
            None
        );
        assert!(read_routed(b"Routing 1.0\r\n\r\n").is_none());
    }

    #[test]
    fn circle_ids_are_checked() {
        assert!(valid_id(ID));
        assert!(valid_id("00000000-0000-0000-0009-5C1E2D3F4A5B"));
        assert!(!valid_id("00000000-0000-0000-0009-5c1e2d3f4a5"));
        assert!(!valid_id("00000000-0000-0000-0008-5c1e2d3f4a5b"));
        assert!(!valid_id("00000000-0000-0000-0009-5c1e2d3f4a5g"));
        assert_eq!(circle_of(&format!("{ID}@example.com")), None);
    }

    #[test]
    fn the_roster_is_the_370_byte_nfy_of_the_reference() {
        let roster = [
            "alice@example.com".to_owned(),
            "bridge@example.com".to_owned(),
        ];
        let payload = roster_payload("bridge@example.com", ID, &roster);
        assert_eq!(
            payload,
            "Routing: 1.0\r\nTo: 1:bridge@example.com\r\nFrom: 9:00000000-0000-0000-0009-5c1e2d3f4a5b@live.com\r\n\r\nReliability: 1.0\r\nStream: 0\r\n\r\nPublication: 1.0\r\nUri: /circle\r\nNotifType: Partial\r\nContent-Type: application/circles+xml\r\nContent-Length: 128\r\n\r\n<circle><roster><id>IM</id><user><id>1:alice@example.com</id></user><user><id>1:bridge@example.com</id></user></roster></circle>"
        );
        assert_eq!(payload.len(), 370);
    }

    #[test]
    fn a_departure_ends_with_the_notification_block() {
        let payload = left_payload("bridge@example.com", ID, "alice@example.com");
        assert!(payload.starts_with(
            "Routing: 1.0\r\nTo: 1:bridge@example.com\r\nFrom: 9:00000000-0000-0000-0009-5c1e2d3f4a5b@live.com\r\n\r\n"
        ));
        assert!(payload.ends_with(
            "\r\n\r\nNotification: 1.0\r\nNotifNum: 2\r\nUri: /circle/roster(IM)/user(1:alice@example.com)\r\nNotifType: Partial\r\nContent-Type: application/circles+xml\r\nContent-Length: 0\r\n\r\n"
        ));
        let read = read_routed(payload.as_bytes()).expect("routed");
        assert_eq!(read.content(), Some(&b""[..]));
    }

    #[test]
    fn the_ticket_names_the_circles_and_the_nonce_is_its_base64() {
        let ticket = ticket(42, &[ID]);
        assert!(
            ticket
                .starts_with("<?xml version=\"1.0\" encoding=\"utf-16\"?><SignedTicket xmlns:xsi=")
        );
        let data = ticket
            .split("<Data>")
            .nth(1)
            .and_then(|d| d.split("</Data>").next())
            .expect("Data");
        let data = String::from_utf8(STANDARD.decode(data).expect("base64")).expect("UTF-8");
        assert!(data.contains(&format!(
            "\r\n  <Circle Id=\"{ID}\" HostedDomain=\"live.com\" />"
        )));
        assert!(data.contains("<CID>42</CID>"));
        // The same circles give the same ticket; the nonce is the ticket in base64.
        assert_eq!(super::ticket(42, &[ID]), ticket);
        assert_ne!(super::ticket(42, &[]), ticket);
        assert_eq!(
            STANDARD.decode(nonce(&ticket)).expect("base64"),
            ticket.as_bytes()
        );
    }
}
