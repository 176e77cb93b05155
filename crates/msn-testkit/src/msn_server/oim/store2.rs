//! `POST /OimWS/oim.asmx` (`Store2`, or the older `Store`; MSNP.md §15.2.1) with
//! Escargot's checks in Escargot's order: the lock-key fault without a `lockkey` or a
//! session for the ticket, `SystemUnavailable` for another sender or an unreachable
//! recipient, `InvalidContent` for a broken `Content` rule, a bare HTTP 500 where its
//! handler raises. A stored message reaches the recipient's online endpoints at once.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use msnp::xml::Element;

use super::super::state::{OimRecord, Shared, StoredOim};
use super::mime::{self, FirstWord};
use super::{
    OIM_2004, OIM_2006, SOAP_EXCEPTION, caller, crash, keep, new_id, session_token, xml_response,
};

/// `AuthenticationFailed` with the lock-key challenge (Escargot `Fault.authfailed.xml`).
fn auth_failed(ns: &str) -> Response {
    xml_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!(
            "<soap:Body><soap:Fault><faultcode xmlns:q0=\"{ns}\">q0:AuthenticationFailed</faultcode><faultstring>Exception of type System.Web.Services.Protocols.SoapException was thrown.</faultstring><faultactor>/OimWS/oim.asmx</faultactor><detail><TweenerChallenge xmlns=\"{OIM_2004}\">ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1</TweenerChallenge><LockKeyChallenge xmlns=\"{ns}\">1850937852</LockKeyChallenge></detail></soap:Fault></soap:Body>"
        ),
    )
}

/// A `q0:` fault of the OIM store (`SystemUnavailable`, `InvalidContent`).
fn store_fault(ns: &str, code: &str) -> Response {
    xml_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!(
            "<soap:Header><Machine xmlns=\"{ns}\" name=\"BAYM-OW15\" ver=\"12.30.1623.0\"/></soap:Header><soap:Body><soap:Fault><faultcode xmlns:q0=\"{ns}\">q0:{code}</faultcode><faultstring>{SOAP_EXCEPTION}</faultstring><detail/></soap:Fault></soap:Body>"
        ),
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `POST /OimWS/oim.asmx` (§15.2.1), checks in Escargot's order.
pub(super) async fn store2(
    AxumState(shared): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Ok(root) = Element::parse(&body) else {
        return crash();
    };
    let Some(ticket) = root.find("Ticket") else {
        return crash();
    };
    let Some(passport) = ticket.attr("passport") else {
        return crash();
    };
    let Some(action) = headers.get("SOAPAction").and_then(|v| v.to_str().ok()) else {
        return crash();
    };
    // The action only picks the fault namespace.
    let ns = if action.trim_matches('"').starts_with(OIM_2004) {
        OIM_2004
    } else {
        OIM_2006
    };
    let caller = caller(&shared.lock(), session_token(passport));
    let lock_key = ticket.attr("lockkey").unwrap_or_default();
    let Some(caller) = caller.filter(|_| !lock_key.is_empty()) else {
        return auth_failed(ns);
    };
    let (Some(from), Some(to)) = (root.find("From"), root.find("To")) else {
        return crash();
    };
    let recipient = to
        .attr("memberName")
        .map(|m| m.trim().to_lowercase())
        .unwrap_or_default();
    let reachable = {
        let state = shared.lock();
        state.accounts.contains_key(&recipient) && state.allows(&recipient, &caller.email)
    };
    if from.attr("memberName") != Some(caller.email.as_str()) || !reachable {
        return store_fault(ns, "SystemUnavailable");
    }
    let number = root
        .find("Sequence")
        .and_then(|s| s.child("MessageNumber"))
        .map_or("None", |n| n.text().trim());
    if number.is_empty() || !number.chars().all(char::is_numeric) {
        return store_fault(ns, "InvalidContent");
    }
    let (friendly_name, name_charset) = match from.attr("friendlyName") {
        None => (String::new(), None),
        Some(value) => match mime::first_word(value) {
            FirstWord::Broken => return store_fault(ns, "InvalidContent"),
            FirstWord::NotEncoded => return crash(),
            FirstWord::Decoded { bytes, charset } => {
                let charset = charset.unwrap_or_else(|| "utf-8".to_owned());
                let Some(name) = mime::decode_charset(&bytes, &charset) else {
                    return crash();
                };
                (name, Some(charset))
            }
        },
    };
    let content = root
        .find("Content")
        .map_or("None", Element::text)
        .replace("\r\n", "\n");
    let parsed = mime::headers(&content);
    let get = |name: &str| mime::header(&parsed, name).unwrap_or("None");
    let run_id = get("X-OIM-Run-Id");
    let content_ok = mime::starts_with_guid(run_id)
        && get("MIME-Version") == "1.0"
        && get("Content-Type").starts_with("text/plain")
        && get("Content-Transfer-Encoding") == "base64"
        && get("X-OIM-Message-Type") == "OfflineMessage"
        && get("X-OIM-Sequence-Num") == number;
    let text = content
        .split_once("\n\n")
        .map(|(_, body)| body)
        .filter(|body| body.split('\n').all(|line| line.chars().count() <= 77))
        .and_then(|body| mime::a2b_base64(body.trim()))
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let Some(text) = text.filter(|_| content_ok) else {
        return store_fault(ns, "InvalidContent");
    };
    // A dict of the headers: a repeated name keeps its first place and its last value.
    let mut kept: Vec<(String, String)> = Vec::new();
    for (name, value) in parsed.iter().cloned() {
        match kept.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => kept.push((name, value)),
        }
    }
    let now = now_ms();
    let record = OimRecord {
        oim: StoredOim {
            id: new_id(&shared),
            sender: caller.email.clone(),
            friendly_name,
            // Escargot keeps the time to the second.
            stored_ms: now - now.rem_euclid(1000),
            run_id: run_id.replace(['{', '}'], ""),
            sequence: number.parse().unwrap_or(u32::MAX),
            text,
        },
        to: recipient,
        name_charset,
        origin: "127.0.0.1".to_owned(),
        proxy: from.attr("proxy").map(str::to_owned),
        headers: kept,
    };
    keep(&shared, record);
    xml_response(
        StatusCode::OK,
        &format!(
            "<soap:Header><SequenceAcknowledgment xmlns=\"http://schemas.xmlsoap.org/ws/2003/03/rm\"><Identifier>http://messenger.msn.com</Identifier><AcknowledgmentRange Upper=\"{number}\" Lower=\"{number}\"/></SequenceAcknowledgment></soap:Header><soap:Body><StoreResponse xmlns=\"{OIM_2004}\"><PointsConsumed>0</PointsConsumed></StoreResponse></soap:Body>"
        ),
    )
}
