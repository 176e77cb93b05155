//! Offline messages, sending side, as data (MSNP.md §15.2.1): the `Store2` SOAP request
//! and the reading of its answer, including the lock-key challenge a first try gets.
//!
//! Owns: the `From`/`To`/`Ticket`/`Sequence` headers (the friendly name as an RFC 2047
//! word of at most 48 characters), the `Content` MIME block with its base64 body wrapped
//! at 76 characters, and the typed refusals. No I/O.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::OimError;
use crate::auth::{PostRequest, Secret};
use crate::challenge::{self, Product};
use crate::soap;
use crate::xml::{self, Element};

/// The OIM store's path on Escargot's login host (official `ows.messenger.msn.com`).
pub const STORE_PATH: &str = "/OimWS/oim.asmx";
const STORE_ACTION: &str = "http://messenger.live.com/ws/2006/09/oim/Store2";
const OIM_NS: &str = "http://messenger.msn.com/ws/2004/09/oim/";
const RM_NS: &str = "http://schemas.xmlsoap.org/ws/2003/03/rm";
/// Longest friendly-name word (`=?utf-8?B?…?=`) the service takes.
const MAX_NAME_WORD: usize = 48;
/// Base64 line length of the body (PURPLE and .NET wrap at 76; the service refuses
/// lines over 77).
const LINE: usize = 76;
/// Largest text stored: what one MSN message may hold.
pub const MAX_STORED_TEXT: usize = 1664;

/// One offline message to store.
#[derive(Debug, Clone)]
pub struct StoreRequest<'a> {
    /// The user's own address (the ticket's account).
    pub from: &'a str,
    /// The user's friendly name, if any.
    pub friendly_name: Option<&'a str>,
    /// The recipient.
    pub to: &'a str,
    /// Any RST ticket of the session (`t=…&p=…`).
    pub ticket: &'a Secret,
    /// The product whose key answers the lock-key challenge.
    pub product: Product,
    /// The lock key: empty on the first try, then the challenge's answer.
    pub lock_key: &'a str,
    /// The sending session's run id (a GUID in braces).
    pub run_id: &'a str,
    /// This message's number in the run, from 1.
    pub sequence: u32,
    /// The plain text.
    pub text: &'a str,
}

/// Why the service did not store the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreRefusal {
    /// The lock key is missing or wrong: answer this challenge and try again.
    #[error("the offline-message service asks for the lock key")]
    LockKey(String),
    /// The ticket is no longer accepted (`AuthenticationFailed` without a challenge).
    #[error("the offline-message service no longer accepts the sign-in ticket")]
    TicketExpired,
    /// The recipient is unknown or does not accept messages from the user.
    #[error("the contact does not take offline messages from you")]
    Unreachable,
    /// Too many messages in a short time.
    #[error("too many offline messages in a short time")]
    Throttled,
    /// The message broke a content rule.
    #[error("the offline-message service refused the content")]
    InvalidContent,
    /// Something else.
    #[error(transparent)]
    Other(#[from] OimError),
}

/// The friendly name as the word the service takes: the longest prefix of the name
/// (whole characters) whose `=?utf-8?B?…?=` fits in 48 characters.
fn name_word(name: &str) -> String {
    // Base64 of n bytes is 4·⌈n/3⌉ characters; the word adds 12.
    let room = (MAX_NAME_WORD - 12) / 4 * 3;
    let mut end = name.len().min(room);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = name.get(..end).unwrap_or_default();
    format!("=?utf-8?B?{}?=", STANDARD.encode(prefix))
}

/// The `Content` block: the MIME headers the service checks, then the text in base64.
fn content(run_id: &str, sequence: u32, text: &str) -> String {
    let encoded = STANDARD.encode(text);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(LINE)
        .filter_map(|chunk| std::str::from_utf8(chunk).ok())
        .collect();
    format!(
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\nX-OIM-Message-Type: OfflineMessage\r\nX-OIM-Run-Id: {run_id}\r\nX-OIM-Sequence-Num: {sequence}\r\n\r\n{}",
        lines.join("\r\n")
    )
}

/// The `Store2` request for `message` at `base` (text longer than
/// [`MAX_STORED_TEXT`] is cut there).
pub fn store_message(base: &str, message: &StoreRequest<'_>) -> Result<PostRequest, OimError> {
    let url =
        soap::service_url(base, STORE_PATH).ok_or_else(|| OimError::BadUrl(base.to_owned()))?;
    let escape =
        |value: &str, what: &'static str| xml::escape(value).map_err(|_| OimError::NotXml(what));
    let mut end = message.text.len().min(MAX_STORED_TEXT);
    while !message.text.is_char_boundary(end) {
        end -= 1;
    }
    let text = message.text.get(..end).unwrap_or_default();
    let from = escape(message.from, "the sender")?;
    let to = escape(message.to, "the recipient")?;
    let name = match message.friendly_name.filter(|n| !n.is_empty()) {
        Some(name) => format!(
            r#" friendlyName="{}""#,
            escape(&name_word(name), "the name")?
        ),
        None => String::new(),
    };
    let ticket = escape(message.ticket.expose(), "the ticket")?;
    let appid = escape(message.product.id, "the product id")?;
    let lock_key = escape(message.lock_key, "the lock key")?;
    let body = escape(&content(message.run_id, message.sequence, text), "the text")?;
    let sequence = message.sequence;
    let envelope = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><From memberName="{from}"{name} xml:lang="en-US" proxy="MSNMSGR" msnpVer="MSNP18" buildVer="14.0.8117.0416" xmlns="{OIM_NS}"/><To memberName="{to}" xmlns="{OIM_NS}"/><Ticket passport="{ticket}" appid="{appid}" lockkey="{lock_key}" xmlns="{OIM_NS}"/><Sequence xmlns="{RM_NS}"><Identifier xmlns="http://schemas.xmlsoap.org/ws/2002/07/utility">http://messenger.msn.com</Identifier><MessageNumber>{sequence}</MessageNumber></Sequence></soap:Header><soap:Body><MessageType xmlns="{OIM_NS}">text</MessageType><Content xmlns="{OIM_NS}">{body}</Content></soap:Body></soap:Envelope>"#
    );
    Ok(PostRequest {
        url,
        headers: vec![
            (
                "Content-Type".to_owned(),
                "text/xml; charset=utf-8".to_owned(),
            ),
            ("SOAPAction".to_owned(), format!("\"{STORE_ACTION}\"")),
        ],
        body: Secret::new(envelope),
    })
}

/// The lock key for `challenge`: the MSNP11+ challenge answer (§3.3) with `product`.
pub fn lock_key(challenge: &str, product: Product) -> String {
    challenge::msnp11_response(challenge.trim(), product)
}

/// Reads `Store2`'s answer for message number `sequence`: stored, or why not. A
/// `SequenceAcknowledgment` that names another number is not a success.
pub fn parse_stored(status: u16, body: &str, sequence: u32) -> Result<(), StoreRefusal> {
    let root = Element::parse(body).map_err(|_| OimError::Unexpected { status })?;
    if let Some(fault) = root.find("Fault") {
        let code = fault
            .find("faultcode")
            .and_then(Element::trimmed_text)
            .unwrap_or_default();
        let local = code.rsplit_once(':').map_or(code, |(_, local)| local);
        return Err(match local {
            "AuthenticationFailed" => match fault
                .find("LockKeyChallenge")
                .and_then(Element::trimmed_text)
            {
                Some(challenge) if fault.find("RequiredAuthPolicy").is_none() => {
                    StoreRefusal::LockKey(challenge.to_owned())
                }
                _ => StoreRefusal::TicketExpired,
            },
            "SystemUnavailable" => StoreRefusal::Unreachable,
            "SenderThrottleLimitExceeded" => StoreRefusal::Throttled,
            "InvalidContent" => StoreRefusal::InvalidContent,
            _ => StoreRefusal::Other(OimError::Fault {
                status,
                reason: soap::fault(&root).map(|f| f.reason).unwrap_or_default(),
            }),
        });
    }
    if !(200..300).contains(&status) || root.find("StoreResponse").is_none() {
        return Err(OimError::Unexpected { status }.into());
    }
    let acknowledged = root.find("AcknowledgmentRange").map(|range| {
        let bound = |name| range.attr(name).and_then(|v| v.trim().parse::<u32>().ok());
        (bound("Lower"), bound("Upper"))
    });
    match acknowledged {
        None => Ok(()),
        Some((Some(lower), Some(upper))) if lower == sequence && upper == sequence => Ok(()),
        Some(_) => Err(OimError::Unexpected { status }.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::{PROD0119, PROD0120};

    #[test]
    fn the_lock_key_vectors_of_section_15_2_1() {
        assert_eq!(
            lock_key("1850937852", PROD0120),
            "4d7903fe4e44d395e9bad3b0f98879a6"
        );
        assert_eq!(
            lock_key("1850937852", PROD0119),
            "844559b18ac25f3affb9281fd729203c"
        );
    }

    fn request(text: &str, name: Option<&str>) -> String {
        let ticket = Secret::new("t=ABC&p=");
        let message = StoreRequest {
            from: "bridge@example.com",
            friendly_name: name,
            to: "carol@example.com",
            ticket: &ticket,
            product: PROD0119,
            lock_key: "",
            run_id: "{3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B}",
            sequence: 1,
            text,
        };
        let request = store_message("http://localhost:1", &message).expect("request");
        assert_eq!(request.url, "http://localhost:1/OimWS/oim.asmx");
        request.body.expose().to_owned()
    }

    #[test]
    fn the_store_request_holds_what_the_service_checks() {
        let body = request("See you tomorrow", Some("Matrix Bridge"));
        let root = Element::parse(&body).expect("xml");
        let from = root.find("From").expect("From");
        assert_eq!(from.attr("memberName"), Some("bridge@example.com"));
        assert_eq!(
            from.attr("friendlyName"),
            Some("=?utf-8?B?TWF0cml4IEJyaWRnZQ==?=")
        );
        assert_eq!(
            root.find("To").and_then(|t| t.attr("memberName")),
            Some("carol@example.com")
        );
        let ticket = root.find("Ticket").expect("Ticket");
        assert_eq!(ticket.attr("passport"), Some("t=ABC&p="));
        assert_eq!(ticket.attr("appid"), Some("PROD0119GSJUC$18"));
        assert_eq!(ticket.attr("lockkey"), Some(""));
        assert_eq!(root.find("MessageNumber").map(Element::text), Some("1"));
        let content = root.find("Content").map(Element::text).expect("Content");
        assert!(content.contains("X-OIM-Sequence-Num: 1\r\n"));
        assert!(content.contains("X-OIM-Run-Id: {3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B}\r\n"));
        assert!(content.ends_with("\r\n\r\nU2VlIHlvdSB0b21vcnJvdw=="));
    }

    #[test]
    fn long_texts_wrap_at_76_and_long_names_fit_48() {
        let body = request(&"x".repeat(300), Some(&"Ä".repeat(40)));
        let root = Element::parse(&body).expect("xml");
        let content = root.find("Content").map(Element::text).expect("Content");
        let (_, encoded) = content.split_once("\r\n\r\n").expect("body");
        assert!(encoded.lines().all(|l| l.trim_end().len() <= 76));
        assert!(encoded.lines().count() > 1);
        let word = root
            .find("From")
            .and_then(|f| f.attr("friendlyName"))
            .expect("name");
        assert!(word.len() <= 48, "{word}");
        // Cut on a character: it decodes to whole characters.
        let decoded = super::super::decode_word(word);
        assert!(decoded.chars().all(|c| c == 'Ä') && !decoded.is_empty());
    }

    #[test]
    fn answers_are_typed() {
        let ok = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><SequenceAcknowledgment xmlns="http://schemas.xmlsoap.org/ws/2003/03/rm"><Identifier>http://messenger.msn.com</Identifier><AcknowledgmentRange Upper="2" Lower="2"/></SequenceAcknowledgment></soap:Header><soap:Body><StoreResponse xmlns="http://messenger.msn.com/ws/2004/09/oim/"><PointsConsumed>0</PointsConsumed></StoreResponse></soap:Body></soap:Envelope>"#;
        assert_eq!(parse_stored(200, ok, 2), Ok(()));
        assert!(
            parse_stored(200, ok, 1).is_err(),
            "another number acknowledged"
        );
        let challenge = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode xmlns:q0="http://messenger.msn.com/ws/2004/09/oim/">q0:AuthenticationFailed</faultcode><faultstring>Exception of type 'System.Web.Services.Protocols.SoapException' was thrown.</faultstring><detail><TweenerChallenge xmlns="http://messenger.msn.com/ws/2004/09/oim/">ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1</TweenerChallenge><LockKeyChallenge xmlns="http://messenger.msn.com/ws/2004/09/oim/">1850937852</LockKeyChallenge></detail></soap:Fault></soap:Body></soap:Envelope>"#;
        assert_eq!(
            parse_stored(500, challenge, 1),
            Err(StoreRefusal::LockKey("1850937852".into()))
        );
        let expired = challenge.replace("<LockKeyChallenge xmlns=\"http://messenger.msn.com/ws/2004/09/oim/\">1850937852</LockKeyChallenge>", "");
        assert_eq!(
            parse_stored(500, &expired, 1),
            Err(StoreRefusal::TicketExpired)
        );
        let fault = |code: &str| {
            format!(
                r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode xmlns:q0="http://messenger.msn.com/ws/2004/09/oim/">q0:{code}</faultcode><faultstring>no</faultstring></soap:Fault></soap:Body></soap:Envelope>"#
            )
        };
        assert_eq!(
            parse_stored(500, &fault("SystemUnavailable"), 1),
            Err(StoreRefusal::Unreachable)
        );
        assert_eq!(
            parse_stored(500, &fault("SenderThrottleLimitExceeded"), 1),
            Err(StoreRefusal::Throttled)
        );
        assert_eq!(
            parse_stored(500, &fault("InvalidContent"), 1),
            Err(StoreRefusal::InvalidContent)
        );
        assert!(matches!(
            parse_stored(500, &fault("Odd"), 1),
            Err(StoreRefusal::Other(_))
        ));
        assert!(matches!(
            parse_stored(500, "<html>", 1),
            Err(StoreRefusal::Other(_))
        ));
    }
}
