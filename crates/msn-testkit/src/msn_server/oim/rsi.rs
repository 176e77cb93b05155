//! `POST /rsi/rsi.asmx` (MSNP.md §15.1.2): `GetMetadata`, `GetMessage` and
//! `DeleteMessages` for the account whose ticket is in `PassportCookie`, as Escargot
//! answers them: ids looked up case-sensitively, an unknown id a bare HTTP 500 for
//! `GetMessage` and the "Schema validation error" fault (nothing deleted) for
//! `DeleteMessages`, an action element without children a bare 500.

use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::Response;

use msnp::xml::Element;

use super::super::state::{OimRecord, Shared};
use super::mail::{self, Listing};
use super::{Caller, RSI_NS, caller, crash, hotmail, markup_escape, xml_response};

/// RSI's answer to a missing session or an unknown id to delete.
fn validation_fault() -> Response {
    xml_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "<soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>Schema validation error</faultstring><detail/></soap:Fault></soap:Body>",
    )
}

fn rsi_ok(inner: &str) -> Response {
    xml_response(StatusCode::OK, &format!("<soap:Body>{inner}</soap:Body>"))
}

/// `POST /rsi/rsi.asmx` (§15.1.2).
pub(super) async fn rsi(AxumState(shared): AxumState<Arc<Shared>>, body: String) -> Response {
    let Ok(root) = Element::parse(&body) else {
        return crash();
    };
    let Some(first) = root
        .find("PassportCookie")
        .and_then(|c| c.children().first())
    else {
        return crash();
    };
    let Some(action) = root.find("Body").and_then(|b| b.children().first()) else {
        return crash();
    };
    // Escargot reads an action without children as text and fails (an empty
    // `<GetMetadata/>`).
    if action.children().is_empty() {
        return crash();
    }
    let token: String = first.text().chars().take(20).collect();
    let Some(caller) = caller(&shared.lock(), &token) else {
        return validation_fault();
    };
    match action.name.as_str() {
        "GetMetadata" => {
            let state = shared.lock();
            let records: Vec<&OimRecord> = state
                .oims
                .get(&caller.email)
                .map(|list| list.iter().collect())
                .unwrap_or_default();
            rsi_ok(&format!(
                "<GetMetadataResponse xmlns=\"{RSI_NS}\">{}</GetMetadataResponse>",
                mail::mail_data(&records, Listing::Metadata)
            ))
        }
        "GetMessage" => {
            let Some(id) = action.find("messageId").map(Element::text) else {
                return crash();
            };
            let state = shared.lock();
            let Some(record) = state
                .oims
                .get(&caller.email)
                .and_then(|list| list.iter().find(|r| r.oim.id == id))
            else {
                return crash();
            };
            rsi_ok(&format!(
                "<GetMessageResponse xmlns=\"{RSI_NS}\"><GetMessageResult>{}</GetMessageResult></GetMessageResponse>",
                markup_escape(&mail::message(record))
            ))
        }
        "DeleteMessages" => delete_messages(&shared, &caller, action),
        other => xml_response(
            StatusCode::OK,
            &format!(
                "<soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>Unsupported SOAP action</faultstring><faultactor>{}</faultactor></soap:Fault></soap:Body>",
                markup_escape(other)
            ),
        ),
    }
}

/// `DeleteMessages`: all ids known or nothing deleted; the deleting endpoint hears of it.
fn delete_messages(shared: &Shared, caller: &Caller, action: &Element) -> Response {
    let ids: Vec<&str> = action
        .find_all("messageIds")
        .into_iter()
        .flat_map(|ids| ids.children_named("messageId"))
        .map(Element::text)
        .collect();
    let mut state = shared.lock();
    let known = |id: &str| {
        state
            .oims
            .get(&caller.email)
            .is_some_and(|list| list.iter().any(|r| r.oim.id == id))
    };
    if ids.is_empty() || !ids.iter().all(|id| known(id)) || state.refuse_oim_deletes {
        return validation_fault();
    }
    if let Some(list) = state.oims.get_mut(&caller.email) {
        list.retain(|r| !ids.contains(&r.oim.id.as_str()));
    }
    // Only the endpoint that deleted is told (Escargot `msn_on_oim_deletion`).
    let endpoint = state.sessions.get(&caller.email).and_then(|session| {
        let endpoints = session.endpoints();
        caller
            .conn
            .and_then(|id| endpoints.iter().find(|(conn, _, _)| conn.id == id))
            .or_else(|| endpoints.first())
            .filter(|(_, version, changed)| *changed && *version >= 13)
            .map(|(conn, _, _)| conn.clone())
    });
    if let Some(conn) = endpoint {
        conn.send(hotmail(mail::deletion_body(ids.len())));
    }
    drop(state);
    rsi_ok(&format!("<DeleteMessagesResponse xmlns=\"{RSI_NS}\"/>"))
}
