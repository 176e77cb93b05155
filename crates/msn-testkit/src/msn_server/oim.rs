//! Offline messages (OIM) for MSNP13+ as Escargot serves them (MSNP.md §15.1–§15.2):
//! `POST /OimWS/oim.asmx` (`Store2`/`Store`) and `POST /rsi/rsi.asmx` (`GetMetadata`,
//! `GetMessage`, `DeleteMessages`), the `Mail-Data` the NS sends after an endpoint's first
//! `CHG`, the live notice of an OIM stored while the recipient is online and the notice
//! of a deletion to the endpoint that deleted.
//!
//! Like Escargot: a request is accepted only with a ticket of an account whose NS
//! session is up (compared by Escargot's 20-character session token); `Store2` wants a
//! non-empty `lockkey` (never checked) and answers the lock-key challenge fault without
//! one, refuses a sender other than the ticket's account or a recipient who is unknown
//! or does not allow the sender (`SystemUnavailable`), checks every `Content` rule
//! (`InvalidContent`) and fails with a bare HTTP 500 where Escargot's handler raises (a
//! friendly name that is no RFC 2047 word, a missing element). RSI looks ids up
//! case-sensitively; an unknown id is a bare 500 for `GetMessage` and the "Schema
//! validation error" fault (nothing deleted) for `DeleteMessages`; an action element
//! without children is a bare 500. Stored OIMs are listed at every login until deleted.
//!
//! Here: the storage, the caller's ticket, the NS notices. Files: `store2` and `rsi`
//! (the HTTP services), `mime` (reading what senders send), `mail` (writing the
//! `Mail-Data` and the fetched message).

mod mail;
mod mime;
mod rsi;
mod store2;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;

use msnp::frame::Frame;
use msnp::verb::Verb;

use super::conn::ConnTx;
use super::state::{OimRecord, Shared, State, StoredOim};
use mail::Listing;

/// The OIM and RSI routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/OimWS/oim.asmx", post(store2::store2))
        .route("/rsi/rsi.asmx", post(rsi::rsi))
        .with_state(shared)
}

const OIM_2004: &str = "http://messenger.msn.com/ws/2004/09/oim/";
const OIM_2006: &str = "http://messenger.live.com/ws/2006/09/oim/";
const RSI_NS: &str = "http://www.hotmail.msn.com/ws/2004/09/oim/rsi";
const ENVELOPE: &str = r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">"#;
const SOAP_EXCEPTION: &str =
    "Exception of type 'System.Web.Services.Protocols.SoapException' was thrown.";

fn xml_response(status: StatusCode, inner: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        format!("{ENVELOPE}{inner}</soap:Envelope>"),
    )
        .into_response()
}

/// Where Escargot's handler raises: HTTP 500 and no body.
fn crash() -> Response {
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Text escaped as Escargot's templates escape it (markupsafe: line ends stay).
fn markup_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The session token Escargot keys a ticket by: the 20 characters after `t=`, or the
/// whole ticket.
fn session_token(ticket: &str) -> &str {
    match ticket.strip_prefix("t=") {
        Some(rest) => rest
            .char_indices()
            .nth(20)
            .and_then(|(end, _)| rest.get(..end))
            .unwrap_or(rest),
        None => ticket,
    }
}

/// The account a request's token belongs to, and the endpoint that signed in with it
/// when known.
struct Caller {
    email: String,
    conn: Option<u64>,
}

/// The caller whose ticket has session token `token`, if its account is signed in.
fn caller(state: &State, token: &str) -> Option<Caller> {
    if token.is_empty() {
        return None;
    }
    let online = |email: &str| state.sessions.contains_key(email);
    state
        .login_tickets
        .iter()
        .find(|(ticket, (email, _))| session_token(ticket) == token && online(email))
        .map(|(_, (email, conn))| Caller {
            email: email.clone(),
            conn: Some(*conn),
        })
        .or_else(|| {
            state
                .tickets
                .iter()
                .find(|(ticket, t)| session_token(ticket) == token && online(&t.email))
                .map(|(_, t)| Caller {
                    email: t.email.clone(),
                    conn: None,
                })
        })
}

/// The endpoints of `email` that hear of OIMs: MSNP13+, past their first `CHG`.
fn listening_endpoints(state: &State, email: &str) -> Vec<ConnTx> {
    state
        .sessions
        .get(email)
        .map(|s| s.live_endpoints())
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, version)| *version >= 13)
        .map(|(conn, _)| conn)
        .collect()
}

fn hotmail(body: Bytes) -> Frame {
    Frame::untracked(Verb::MSG, ["Hotmail", "Hotmail"]).with_payload(body)
}

/// The `text/x-msmsgsinitialmdatanotification` body for `email`'s first `CHG`.
pub(crate) fn login_body(state: &State, email: &str) -> Bytes {
    let records: Vec<&OimRecord> = state
        .oims
        .get(email)
        .map(|list| list.iter().collect())
        .unwrap_or_default();
    mail::ns_body(
        "text/x-msmsgsinitialmdatanotification",
        &mail::mail_data(&records, Listing::Login),
    )
}

/// Stores `record` and tells the recipient's listening endpoints at once.
fn keep(shared: &Shared, record: OimRecord) {
    let mut state = shared.lock();
    let notice = mail::ns_body(
        "text/x-msmsgsoimnotification",
        &mail::mail_data(&[&record], Listing::Live),
    );
    for conn in listening_endpoints(&state, &record.to) {
        conn.send(hotmail(notice.clone()));
    }
    state
        .oims
        .entry(record.to.clone())
        .or_default()
        .push(record);
}

/// A fresh message id: an upper-case GUID without braces.
fn new_id(shared: &Shared) -> String {
    shared.guid().to_uppercase()
}

/// Stores an OIM as if `from` had sent it with `Store2` from Escargot's own client
/// headers (the handle's injection).
pub(crate) fn inject(shared: &Shared, to: &str, message: StoredOim) {
    if !shared.lock().accounts.contains_key(to) {
        return;
    }
    let sequence = message.sequence;
    let run_id = message.run_id.replace(['{', '}'], "");
    let headers = [
        ("MIME-Version", "1.0".to_owned()),
        ("Content-Type", "text/plain; charset=UTF-8".to_owned()),
        ("Content-Transfer-Encoding", "base64".to_owned()),
        ("X-OIM-Message-Type", "OfflineMessage".to_owned()),
        ("X-OIM-Run-Id", format!("{{{run_id}}}")),
        ("X-OIM-Sequence-Num", sequence.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    let record = OimRecord {
        name_charset: (!message.friendly_name.is_empty()).then(|| "utf-8".to_owned()),
        oim: StoredOim {
            id: new_id(shared),
            sender: super::key(&message.sender),
            run_id,
            ..message
        },
        to: to.to_owned(),
        origin: "127.0.0.1".to_owned(),
        proxy: Some("MSNMSGR".to_owned()),
        headers,
    };
    keep(shared, record);
}
