//! Offline messages (OIM), receiving side, as data (MSNP.md §15.1): the `Mail-Data` the
//! notification server lists them in, the RSI SOAP requests that fetch and delete them,
//! and the fetched e-mail style message read into its sender, time and text.
//!
//! Owns: reading `Mail-Data` (`<MD>` XML or `too-large`) with quick-xml, RFC 2047
//! display names (`B` and `Q`, white space inside the encoded text tolerated as
//! Escargot writes it), the `PassportCookie` header (the ticket split into `t`/`p`),
//! and the message's headers and base64 or quoted-printable body. Message ids are kept
//! verbatim (Escargot looks them up case-sensitively). No I/O.

pub mod store;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::auth::{PostRequest, Secret};
use crate::soap;
use crate::xml::{self, Element};

/// The RSI service path on Escargot's login host (§15.1.2).
pub const RSI_PATH: &str = "/rsi/rsi.asmx";
const RSI_NS: &str = "http://www.hotmail.msn.com/ws/2004/09/oim/rsi";
/// Largest message text kept (an OIM is a few KB at most).
pub const MAX_OIM_TEXT: usize = 64 * 1024;

/// Why OIM data cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OimError {
    /// No `Mail-Data:` line.
    #[error("no Mail-Data in the notification")]
    NoMailData,
    /// The XML is not an `<MD>` document.
    #[error("the Mail-Data is not readable: {0}")]
    BadMailData(String),
    /// The service answered with a fault (an id consumed elsewhere, say).
    #[error("the offline-message service refused (HTTP {status}): {reason}")]
    Fault {
        /// The HTTP status.
        status: u16,
        /// The fault text.
        reason: String,
    },
    /// Neither a result nor a fault.
    #[error("unexpected offline-message answer (HTTP {status})")]
    Unexpected {
        /// The HTTP status.
        status: u16,
    },
    /// A value cannot be written into the request.
    #[error("{0} cannot be sent in an offline-message request")]
    NotXml(&'static str),
    /// The service URL is not usable.
    #[error("invalid offline-message URL {0:?}")]
    BadUrl(String),
}

/// One stored offline message, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OimRef {
    /// The id for `GetMessage`/`DeleteMessages`, verbatim.
    pub id: String,
    /// The sender's address, lower-cased.
    pub sender: String,
    /// The sender's friendly name, decoded (may be empty).
    pub friendly: String,
    /// When it was stored (`RT`, ISO 8601 UTC), when listed.
    pub received: Option<String>,
}

/// What a `Mail-Data` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailData {
    /// The offline messages it lists (possibly none).
    Listed(Vec<OimRef>),
    /// Too many to list inline: fetch the list with `GetMetadata`.
    TooLarge,
}

/// Reads the `Mail-Data:` of an NS `MSG` body (`text/x-msmsgsinitialmdatanotification`
/// or `text/x-msmsgsoimnotification`): a header line after the empty line.
pub fn parse_mail_data(body: &str) -> Result<MailData, OimError> {
    let value = body
        .lines()
        .find_map(|line| line.strip_prefix("Mail-Data:"))
        .ok_or(OimError::NoMailData)?;
    read_mail_data(value)
}

/// Reads the value of a `Mail-Data` header (an `<MD>` document, or `too-large`).
pub fn read_mail_data(value: &str) -> Result<MailData, OimError> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("too-large") {
        return Ok(MailData::TooLarge);
    }
    let root = Element::parse(value).map_err(|e| OimError::BadMailData(e.to_string()))?;
    Ok(MailData::Listed(listed(&root)))
}

/// The `M` entries of an `MD` document (Mail-Data, or `GetMetadataResponse`).
fn listed(root: &Element) -> Vec<OimRef> {
    let Some(md) = root.find("MD") else {
        return Vec::new();
    };
    md.children_named("M")
        .filter_map(|m| {
            let text = |name| m.child(name).and_then(Element::trimmed_text);
            Some(OimRef {
                id: text("I")?.to_owned(),
                sender: text("E")?.to_ascii_lowercase(),
                friendly: text("N").map(decode_word).unwrap_or_default(),
                received: text("RT").map(str::to_owned),
            })
        })
        .collect()
}

/// Decodes an RFC 2047 encoded word (`=?charset?B|Q?text?=`); other text is returned
/// as it is. White space inside the encoded text is dropped (Escargot writes a space
/// before `?=`). The charset is any the WHATWG Encoding Standard names (UTF-8,
/// ISO-8859-x, windows-125x, …); bytes it cannot map are replaced.
pub fn decode_word(word: &str) -> String {
    let trimmed = word.trim();
    let Some(inner) = trimmed
        .strip_prefix("=?")
        .and_then(|w| w.strip_suffix("?="))
    else {
        return trimmed.to_owned();
    };
    let mut parts = inner.splitn(3, '?');
    let (Some(charset), Some(encoding), Some(text)) = (parts.next(), parts.next(), parts.next())
    else {
        return trimmed.to_owned();
    };
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = match encoding {
        "B" | "b" => STANDARD.decode(text.as_bytes()).ok(),
        "Q" | "q" => Some(quoted_printable(&text.replace('_', " "))),
        _ => None,
    };
    match bytes {
        Some(bytes) => decode_charset(&bytes, charset),
        None => trimmed.to_owned(),
    }
}

/// `bytes` in `charset` (a label such as `utf-8` or `iso-8859-1`; unknown: UTF-8) as
/// text, invalid sequences replaced (as PURPLE repairs them).
fn decode_charset(bytes: &[u8], charset: &str) -> String {
    let encoding =
        encoding_rs::Encoding::for_label(charset.trim().as_bytes()).unwrap_or(encoding_rs::UTF_8);
    encoding.decode_without_bom_handling(bytes).0.into_owned()
}

/// Quoted-printable bytes (`=XX`, soft line breaks removed); a broken escape is kept.
fn quoted_printable(text: &str) -> Vec<u8> {
    let text = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'=', Some(value)) => {
                out.push(value);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The RSI request for `action` with `body` inside it, the ticket in `PassportCookie`.
fn rsi_request(
    base: &str,
    ticket: &Secret,
    action: &str,
    body: &str,
) -> Result<PostRequest, OimError> {
    let url = soap::service_url(base, RSI_PATH).ok_or_else(|| OimError::BadUrl(base.to_owned()))?;
    // `t=AAAA&p=BBBB` → `<t>AAAA</t><p>BBBB</p>` (§15.1.2).
    let raw = ticket.expose();
    let field = |name: &str| {
        raw.split('&')
            .find_map(|part| part.strip_prefix(name))
            .unwrap_or_default()
    };
    let t = xml::escape(field("t=")).map_err(|_| OimError::NotXml("the ticket"))?;
    let p = xml::escape(field("p=")).map_err(|_| OimError::NotXml("the ticket"))?;
    let envelope = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><PassportCookie xmlns="{RSI_NS}"><t>{t}</t><p>{p}</p></PassportCookie></soap:Header><soap:Body><{action} xmlns="{RSI_NS}">{body}</{action}></soap:Body></soap:Envelope>"#
    );
    Ok(PostRequest {
        url,
        headers: vec![
            (
                "Content-Type".to_owned(),
                "text/xml; charset=utf-8".to_owned(),
            ),
            ("SOAPAction".to_owned(), format!("\"{RSI_NS}/{action}\"")),
        ],
        body: Secret::new(envelope),
    })
}

/// `GetMessage` of `id` (not marked read: Escargot never reports the flag).
pub fn get_message(base: &str, ticket: &Secret, id: &str) -> Result<PostRequest, OimError> {
    let id = xml::escape(id).map_err(|_| OimError::NotXml("the message id"))?;
    rsi_request(
        base,
        ticket,
        "GetMessage",
        &format!("<messageId>{id}</messageId><alsoMarkAsRead>false</alsoMarkAsRead>"),
    )
}

/// `DeleteMessages` of one id (Escargot deletes nothing when one id of several is
/// unknown, §15.1.2).
pub fn delete_message(base: &str, ticket: &Secret, id: &str) -> Result<PostRequest, OimError> {
    let id = xml::escape(id).map_err(|_| OimError::NotXml("the message id"))?;
    rsi_request(
        base,
        ticket,
        "DeleteMessages",
        &format!("<messageIds><messageId>{id}</messageId></messageIds>"),
    )
}

/// `GetMetadata`: the list of stored offline messages, when the `Mail-Data` said
/// `too-large`. Escargot reads an empty `GetMetadata` element as text and fails (§15.1.2),
/// so it gets a child, which the service ignores.
pub fn get_metadata(base: &str, ticket: &Secret) -> Result<PostRequest, OimError> {
    rsi_request(
        base,
        ticket,
        "GetMetadata",
        "<alsoMarkAsRead>false</alsoMarkAsRead>",
    )
}

/// Reads `GetMetadataResponse`: the same `M` entries as a `Mail-Data`.
pub fn parse_metadata(status: u16, body: &str) -> Result<Vec<OimRef>, OimError> {
    answer(status, body).map(|root| listed(&root))
}

/// A listed `RT` (ISO 8601 UTC, fractional seconds allowed) in milliseconds since the
/// Unix epoch.
pub fn received_ms(rt: &str) -> Option<i64> {
    let at = time::OffsetDateTime::parse(rt.trim(), &time::format_description::well_known::Rfc3339)
        .ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Puts fetched offline messages in the order their sender wrote them (§15.1.2 step 5):
/// by the time they were stored, and within one sending session (`X-OIM-Run-Id`) by
/// sequence number, whatever their times say. `time` gives an item's stored time.
pub fn sort_as_written<T>(
    items: Vec<T>,
    time: impl Fn(&T) -> Option<i64>,
    message: impl Fn(&T) -> &OfflineMessage,
) -> Vec<T> {
    let mut by_time: Vec<usize> = (0..items.len()).collect();
    by_time.sort_by_key(|&i| items.get(i).and_then(&time).unwrap_or(i64::MAX));
    let run = |i: usize| items.get(i).and_then(|item| message(item).run_id.clone());
    let sequence = |i: usize| items.get(i).and_then(|item| message(item).sequence);
    // Each run keeps the places its messages have by time; they are dealt into those
    // places by number.
    let mut order = by_time.clone();
    for (place, &first) in by_time.iter().enumerate() {
        let Some(this_run) = run(first) else {
            continue;
        };
        let is_first = by_time
            .iter()
            .take(place)
            .all(|&i| run(i) != Some(this_run.clone()));
        if !is_first {
            continue;
        }
        let places: Vec<usize> = (0..by_time.len())
            .filter(|&p| {
                by_time
                    .get(p)
                    .is_some_and(|&i| run(i).as_ref() == Some(&this_run))
            })
            .collect();
        let mut members: Vec<usize> = places
            .iter()
            .filter_map(|&p| by_time.get(p).copied())
            .collect();
        members.sort_by_key(|&i| sequence(i));
        for (p, i) in places.into_iter().zip(members) {
            if let Some(slot) = order.get_mut(p) {
                *slot = i;
            }
        }
    }
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

/// The root of a successful answer, after fault and status checks.
fn answer(status: u16, body: &str) -> Result<Element, OimError> {
    soap::answer(status, body).map_err(|refusal| match refusal {
        soap::Refusal::Fault(fault) => OimError::Fault {
            status,
            reason: fault.reason,
        },
        soap::Refusal::Unexpected => OimError::Unexpected { status },
    })
}

/// Reads `DeleteMessages`' (empty) answer.
pub fn parse_deleted(status: u16, body: &str) -> Result<(), OimError> {
    answer(status, body).map(|_| ())
}

/// A fetched offline message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    /// The sender's address from `From:`, lower-cased, if it has one.
    pub sender: Option<String>,
    /// The text, decoded.
    pub text: String,
    /// `X-OIM-Run-Id`: the sending session.
    pub run_id: Option<String>,
    /// `X-OIM-Sequence-Num`: its order within the run.
    pub sequence: Option<u32>,
}

/// Reads `GetMessageResponse/GetMessageResult`: an e-mail style message (§15.1.2).
/// A fault is [`OimError::Fault`] (Escargot: the id was consumed elsewhere).
pub fn parse_message(status: u16, body: &str) -> Result<OfflineMessage, OimError> {
    let root = answer(status, body)?;
    let mail = root
        .find("GetMessageResult")
        .map(Element::text)
        .ok_or(OimError::Unexpected { status })?;
    let mail = mail.replace("\r\n", "\n");
    let (head, content) = mail.split_once("\n\n").unwrap_or((mail.as_str(), ""));
    // Unfold continuation lines, then read `Name: value` headers.
    let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
    let header = |name: &str| {
        unfolded.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let sender = header("From").and_then(|from| {
        let start = from.rfind('<')? + 1;
        let end = from.rfind('>')?;
        from.get(start..end).map(str::to_ascii_lowercase)
    });
    let encoding = header("Content-Transfer-Encoding").unwrap_or_default();
    let bytes = if encoding.eq_ignore_ascii_case("base64") {
        let cleaned: String = content.chars().filter(|c| !c.is_whitespace()).collect();
        STANDARD
            .decode(cleaned.as_bytes())
            .map_err(|_| OimError::Unexpected { status })?
    } else if encoding.eq_ignore_ascii_case("quoted-printable") {
        quoted_printable(content)
    } else {
        content.as_bytes().to_vec()
    };
    // `Content-Type: text/plain; charset=…` (default UTF-8).
    let charset = header("Content-Type")
        .and_then(|ct| {
            ct.split(';').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("charset")
                    .then(|| v.trim().trim_matches('"').to_owned())
            })
        })
        .unwrap_or_else(|| "utf-8".to_owned());
    let mut text = decode_charset(&bytes, &charset);
    if text.len() > MAX_OIM_TEXT {
        let mut end = MAX_OIM_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Ok(OfflineMessage {
        sender,
        text,
        run_id: header("X-OIM-Run-Id"),
        sequence: header("X-OIM-Sequence-Num").and_then(|n| n.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_are_read_as_utc() {
        assert_eq!(received_ms("2026-11-26T09:14:03Z"), Some(1_795_684_443_000));
        assert_eq!(
            received_ms("2026-11-26T09:14:03.25Z"),
            Some(1_795_684_443_250)
        );
        assert_eq!(received_ms("26 Nov 2026"), None);
    }

    #[test]
    fn messages_are_ordered_by_time_and_by_number_within_a_run() {
        let message = |run: Option<&str>, sequence| OfflineMessage {
            sender: None,
            text: String::new(),
            run_id: run.map(str::to_owned),
            sequence: Some(sequence),
        };
        // (label, stored time, message): run A's 2 was stored a second before its 1.
        let items = vec![
            ("b1", Some(5), message(Some("B"), 1)),
            ("a2", Some(1), message(Some("A"), 2)),
            ("x", Some(3), message(None, 1)),
            ("a1", Some(2), message(Some("A"), 1)),
            ("late", None, message(None, 1)),
            ("a3", Some(4), message(Some("A"), 3)),
        ];
        let sorted = sort_as_written(items, |i| i.1, |i| &i.2);
        let labels: Vec<&str> = sorted.iter().map(|i| i.0).collect();
        assert_eq!(labels, ["a1", "a2", "x", "a3", "b1", "late"]);
    }

    #[test]
    fn the_login_mail_data_of_section_15_1_1_is_read() {
        let body = "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinitialmdatanotification; charset=UTF-8\r\n\r\nMail-Data: <MD><E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q><M><T>11</T><S>6</S><RT>2026-11-26T09:14:03Z</RT><RS>0</RS><SZ>987</SZ><E>alice@example.com</E><I>6C3F0B2A-51D8-4C29-9E0B-7A1D2C3B4E5F</I><F>00000000-0000-0000-0000-000000000009</F><N>=?utf-8?B?QWxpY2U=?=</N></M></MD>\r\n";
        assert_eq!(
            parse_mail_data(body),
            Ok(MailData::Listed(vec![OimRef {
                id: "6C3F0B2A-51D8-4C29-9E0B-7A1D2C3B4E5F".into(),
                sender: "alice@example.com".into(),
                friendly: "Alice".into(),
                received: Some("2026-11-26T09:14:03Z".into()),
            }]))
        );
        // The live form: a space before `?=`, no RT.
        let live = "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsoimnotification; charset=UTF-8\r\n\r\nMail-Data: <MD><M><T>11</T><S>6</S><RS>0</RS><SZ>987</SZ><E>alice@example.com</E><I>6C3F0B2A-51D8-4C29-9E0B-7A1D2C3B4E5F</I><F>.!!OIM</F><N>=?utf-8?B?QWxpY2U= ?=</N></M><SU> </SU></MD>\r\n";
        let Ok(MailData::Listed(refs)) = parse_mail_data(live) else {
            panic!("listed");
        };
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].friendly, "Alice");
        assert_eq!(refs[0].received, None);
        // The mailbox counters' <I> is not a message.
        let empty = "\r\nMail-Data: <MD><E><I>3</I><IU>0</IU><O>0</O><OU>0</OU></E></MD>";
        assert_eq!(parse_mail_data(empty), Ok(MailData::Listed(vec![])));
        assert_eq!(
            parse_mail_data("\r\nMail-Data: too-large\r\n"),
            Ok(MailData::TooLarge)
        );
        assert_eq!(parse_mail_data("nothing"), Err(OimError::NoMailData));
        assert!(matches!(
            parse_mail_data("Mail-Data: <MD><M>"),
            Err(OimError::BadMailData(_))
        ));
    }

    #[test]
    fn encoded_words_are_decoded() {
        assert_eq!(decode_word("=?utf-8?B?QWxpY2Ug8J+Yig==?="), "Alice 😊");
        assert_eq!(decode_word("=?utf-8?Q?Ali=C3=A7e_D?="), "Aliçe D");
        assert_eq!(decode_word("plain"), "plain");
        assert_eq!(decode_word("=?utf-8?X?abc?="), "=?utf-8?X?abc?=");
        assert_eq!(decode_word("=?broken"), "=?broken");
    }

    #[test]
    fn requests_carry_the_split_ticket_and_the_id_verbatim() {
        let req = get_message(
            "https://login.example/rdr/pprdr.asp",
            &Secret::new("t=ABCDEFGHIJ&p=XYZ"),
            "6C3F0B2A-51D8-4C29-9E0B-7A1D2C3B4E5F",
        )
        .expect("a request");
        assert_eq!(req.url, "https://login.example/rsi/rsi.asmx");
        assert!(req.headers.contains(&(
            "SOAPAction".to_owned(),
            "\"http://www.hotmail.msn.com/ws/2004/09/oim/rsi/GetMessage\"".to_owned()
        )));
        let root = Element::parse(req.body.expose()).expect("XML");
        assert_eq!(root.find("t").map(Element::text), Some("ABCDEFGHIJ"));
        assert_eq!(root.find("p").map(Element::text), Some("XYZ"));
        assert_eq!(
            root.find("messageId").map(Element::text),
            Some("6C3F0B2A-51D8-4C29-9E0B-7A1D2C3B4E5F")
        );
        let del = delete_message("h", &Secret::new("t=A&p="), "id-1").expect("a request");
        let root = Element::parse(del.body.expose()).expect("XML");
        assert_eq!(root.find_all("messageId").len(), 1);
        assert!(
            !format!("{del:?}").contains("t=A"),
            "the ticket stays out of Debug"
        );
    }

    /// The message's text in the charset its `Content-Type` names: UTF-8, Latin-1 in
    /// quoted-printable, windows-1252 (the euro sign at 0x80), and bytes invalid in UTF-8
    /// repaired rather than refused.
    #[test]
    fn texts_are_decoded_in_their_charsets() {
        let answer = |headers: &str, body: &str| {
            let mail = format!("From: <a@b.c>\r\nMIME-Version: 1.0\r\n{headers}\r\n\r\n{body}");
            format!(
                "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><GetMessageResponse><GetMessageResult>{}</GetMessageResult></GetMessageResponse></soap:Body></soap:Envelope>",
                xml::escape(&mail).expect("escapable")
            )
        };
        let read =
            |headers: &str, body: &str| parse_message(200, &answer(headers, body)).map(|m| m.text);
        let b64 = |bytes: &[u8]| STANDARD.encode(bytes);
        assert_eq!(
            read(
                "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64",
                &b64("grüß dich".as_bytes())
            ),
            Ok("grüß dich".to_owned())
        );
        assert_eq!(
            read(
                "Content-Type: text/plain; charset=\"ISO-8859-1\"\r\nContent-Transfer-Encoding: quoted-printable",
                "gr=FC=DF dich"
            ),
            Ok("grüß dich".to_owned())
        );
        assert_eq!(
            read(
                "Content-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: base64",
                &b64(b"5 \x80")
            ),
            Ok("5 €".to_owned())
        );
        assert_eq!(
            read(
                "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64",
                &b64(b"ok \xff")
            ),
            Ok("ok \u{fffd}".to_owned())
        );
        assert_eq!(decode_word("=?iso-8859-1?Q?J=FCrgen?="), "Jürgen");
        assert_eq!(decode_word("=?windows-1252?B?gA==?="), "€");
    }

    #[test]
    fn a_fetched_message_is_read_into_sender_text_and_order() {
        let mail = "From: =?utf-8?B?QWxpY2U=?= <Alice@Example.com>\r\nTo: bridge@example.com\r\nSubject: \r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\nX-OIM-Message-Type: OfflineMessage\r\nX-OIM-Run-Id: {3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B}\r\nX-OIM-Sequence-Num: 2\r\nReceived: from a\r\n\tby b\r\n\r\nSGVsbG8gQnJpZGdlLCBhcmUg\r\neW91IHRoZXJlPw==";
        let body = format!(
            "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><GetMessageResponse xmlns=\"http://www.hotmail.msn.com/ws/2004/09/oim/rsi\"><GetMessageResult>{}</GetMessageResult></GetMessageResponse></soap:Body></soap:Envelope>",
            xml::escape(mail).expect("escapable")
        );
        let message = parse_message(200, &body).expect("a message");
        assert_eq!(message.sender.as_deref(), Some("alice@example.com"));
        assert_eq!(message.text, "Hello Bridge, are you there?");
        assert_eq!(
            message.run_id.as_deref(),
            Some("{3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B}")
        );
        assert_eq!(message.sequence, Some(2));
        // Consumed elsewhere: a fault.
        let fault = "<soap:Envelope><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>Schema validation error</faultstring></soap:Fault></soap:Body></soap:Envelope>";
        assert!(matches!(
            parse_message(500, fault),
            Err(OimError::Fault { status: 500, .. })
        ));
        assert_eq!(
            parse_message(500, "Internal Server Error"),
            Err(OimError::Unexpected { status: 500 })
        );
        assert_eq!(parse_deleted(200, "<soap:Envelope/>"), Ok(()));
    }
}
