//! Passport 1.4 over plain HTTP (MSNP.md §2.4.2, R2M-style, §2.8): the nexus
//! `GET /rdr/pprdr.asp` answering `PassportURLs: DALogin=…`, and
//! `GET /login.srf` checking `Authorization: Passport1.4 …sign-in=…,pwd=…` and answering
//! `Authentication-Info: Passport1.4 da-status=success,from-PP='t=…&p=…'` or `401` with
//! `WWW-Authenticate: Passport1.4 da-status=failed`; and `POST /RST.srf` (§2.4.3,
//! R2M-style): a WS-Trust envelope whose `messenger.msn.com` request must carry exactly
//! the TWN policy this server's NS sends, answered by `BinarySecurityToken`s or a SOAP
//! fault (`wsse:FailedAuthentication`, `S:Client`), as Escargot's templates do, and for
//! a server speaking MSNP15+ the single sign-on tokens with the binary secret the NS
//! checks the MBI response against (§2.5.2); and
//! Escargot's `POST /NotRST.srf` (§2.4.3): `X-User`/`X-Password` request headers,
//! always `200`, with an `X-Token` header only when the password is right.
//!
//! Issues tickets into the shared state; the NS checks them verbatim at `USR … TWN S`.
//! Credentials and tickets are never logged.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use msnp::{escape, xml};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::state::{Shared, Ticket, random_token, random_u64};

/// The HTTP routes of the Passport side.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/rdr/pprdr.asp", get(nexus))
        .route("/login.srf", get(login))
        .route("/RST.srf", post(rst))
        .route("/NotRST.srf", post(not_rst))
        .with_state(shared)
}

/// Nexus: where to log in. Only `DALogin` is sent (as R2M does); a scheme is included
/// because this server speaks plain HTTP.
async fn nexus(State(shared): State<Arc<Shared>>) -> Response {
    let value = format!("DALogin=http://{}/login.srf", shared.http_addr);
    match HeaderValue::from_str(&value) {
        Ok(v) => (StatusCode::OK, [("PassportURLs", v)], "").into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Extracts `(sign-in, pwd)` from a Passport 1.4 `Authorization` value: split on `,`,
/// then percent-decode each value (what both revival servers do, §2.4.2).
fn credentials(value: &str) -> Option<(String, String)> {
    let rest = value
        .strip_prefix("Passport1.4 ")
        .or_else(|| value.strip_prefix("Passport1.4"))?;
    let mut email = None;
    let mut password = None;
    for part in rest.split(',') {
        let Some((key, val)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "sign-in" => email = Some(escape::decode_lossy(val)),
            "pwd" => password = Some(escape::decode_lossy(val)),
            _ => {}
        }
    }
    Some((email?.to_lowercase(), password?))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Passport1.4 da-status=failed"),
        )],
        "",
    )
        .into_response()
}

/// Checks the password and issues a ticket (`t=…&p=…`, what the NS accepts verbatim at
/// `USR … TWN S`). `None` (and a `LoginFailed` event) for a wrong account or password.
fn issue_ticket(shared: &Shared, email: String, password: &str) -> Option<String> {
    let ticket = format!("t={}&p={}", random_token(20), random_token(20));
    issue(shared, email, password, ticket, None)
}

/// Stores `ticket` for `email` if `password` is right (else `None` and `LoginFailed`).
fn issue(
    shared: &Shared,
    email: String,
    password: &str,
    ticket: String,
    binary_secret: Option<String>,
) -> Option<String> {
    let mut state = shared.lock();
    let ok = state
        .accounts
        .get(&email)
        .is_some_and(|a| a.password == password);
    if !ok {
        drop(state);
        shared.emit(super::ServerEvent::LoginFailed { email });
        return None;
    }
    let now = Instant::now();
    state.tickets.retain(|_, t| t.expires > now);
    state.tickets.insert(
        ticket.clone(),
        Ticket {
            email,
            expires: now + shared.config.ticket_lifetime,
            binary_secret,
        },
    );
    Some(ticket)
}

async fn login(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some((email, password)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(credentials)
    else {
        return unauthorized();
    };
    let Some(ticket) = issue_ticket(&shared, email, &password) else {
        return unauthorized();
    };
    // `from-PP` must be the last field: msnp11-sdk takes everything after it.
    let info = format!("Passport1.4 da-status=success,from-PP='{ticket}'");
    match HeaderValue::from_str(&info) {
        Ok(v) => (StatusCode::OK, [("Authentication-Info", v)], "").into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `POST /NotRST.srf` (§2.4.3, Escargot's `handle_not_rst`): the credentials come in
/// `X-User`/`X-Password`, taken as they are; the answer is `200` either way, with
/// `X-Token: <20-char token>` only for a right password.
async fn not_rst(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    // UTF-8 allowed, as aiohttp decodes it.
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
    };
    let token = match (text("X-User"), text("X-Password")) {
        (Some(user), Some(password)) => issue(
            &shared,
            user.trim().to_lowercase(),
            password,
            random_token(20),
            None,
        ),
        _ => None,
    };
    match token.map(|t| HeaderValue::from_str(&t)) {
        Some(Ok(v)) => (StatusCode::OK, [("X-Token", v)], "").into_response(),
        Some(Err(_)) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        None => StatusCode::OK.into_response(),
    }
}

/// What an RST request asks for: credentials and `(address, policy URI)` pairs.
#[derive(Debug, PartialEq, Eq)]
struct RstRequest {
    email: String,
    password: String,
    tokens: Vec<(String, Option<String>)>,
}

fn parse_rst_request(body: &str) -> Option<RstRequest> {
    let root = xml::Element::parse(body).ok()?;
    let email = root.find("Username")?.text().trim().to_lowercase();
    let password = root.find("Password")?.text().to_owned();
    let tokens = root
        .find_all("RequestSecurityToken")
        .into_iter()
        .filter_map(|rst| {
            let address = rst.find("Address")?.trimmed_text()?.to_owned();
            let policy = rst
                .find("PolicyReference")
                .and_then(|p| p.attr("URI"))
                .map(str::to_owned);
            Some((address, policy))
        })
        .collect::<Vec<_>>();
    (!tokens.is_empty()).then_some(RstRequest {
        email,
        password,
        tokens,
    })
}

fn soap_fault(status: StatusCode, code: &str, reason: &str) -> Response {
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault">
  <S:Fault>
    <faultcode>{code}</faultcode>
    <faultstring>{reason}</faultstring>
  </S:Fault>
</S:Envelope>"#
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `POST /RST.srf` (§2.4.3, §2.5.2). Served: `http://Passport.NET/tb`,
/// `messenger.msn.com` with the exact TWN policy (R2M rejects any other), and, when the
/// server speaks MSNP15+, `messengerclear.live.com` (policy `MBI_KEY_OLD`, with a
/// 24-byte binary secret, as Escargot) and `contacts.msn.com`. Anything else is an
/// `S:Client` fault. One ticket answers every address, as Escargot does.
async fn rst(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let invalid = || soap_fault(StatusCode::BAD_REQUEST, "S:Client", "Invalid Request");
    let Some(request) = parse_rst_request(&body) else {
        return invalid();
    };
    let twn_policy = format!("?{}", super::ns::TWN_POLICY.replace(',', "&"));
    let sso = shared.config.versions.end() >= &15;
    let mut secret = None;
    for (address, policy) in &request.tokens {
        let ok = match address.as_str() {
            "http://Passport.NET/tb" => true,
            "messenger.msn.com" => policy.as_deref() == Some(twn_policy.as_str()),
            "messengerclear.live.com" if sso => {
                let secret_bytes: Vec<u8> =
                    (0..3).flat_map(|_| random_u64().to_le_bytes()).collect();
                secret = Some(STANDARD.encode(secret_bytes));
                policy.as_deref() == Some("MBI_KEY_OLD")
            }
            "contacts.msn.com" if sso => true,
            _ => false,
        };
        if !ok {
            return invalid();
        }
    }
    let ticket = format!("t={}&p={}", random_token(20), random_token(20));
    let Some(ticket) = issue(
        &shared,
        request.email,
        &request.password,
        ticket,
        secret.clone(),
    ) else {
        return soap_fault(
            StatusCode::OK,
            "wsse:FailedAuthentication",
            "Authentication Failure",
        );
    };
    let Ok(token) = xml::escape(&ticket) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut out = String::from(
        r#"<?xml version="1.0" encoding="utf-8" ?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing"><S:Body><wst:RequestSecurityTokenResponseCollection>"#,
    );
    for (i, (address, _)) in request.tokens.iter().enumerate() {
        let Ok(escaped) = xml::escape(address) else {
            return invalid();
        };
        let proof = match (&secret, address.as_str()) {
            (Some(secret), "messengerclear.live.com") => format!(
                "<wst:RequestedProofToken><wst:BinarySecret>{secret}</wst:BinarySecret></wst:RequestedProofToken>"
            ),
            _ => String::new(),
        };
        out.push_str(&format!(
            "<wst:RequestSecurityTokenResponse><wst:TokenType>urn:passport:compact</wst:TokenType>\
             <wsp:AppliesTo><wsa:EndpointReference><wsa:Address>{escaped}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>\
             <wst:RequestedSecurityToken><wsse:BinarySecurityToken Id=\"Compact{i}\">{token}</wsse:BinarySecurityToken></wst:RequestedSecurityToken>\
             {proof}</wst:RequestSecurityTokenResponse>"
        ));
    }
    out.push_str("</wst:RequestSecurityTokenResponseCollection></S:Body></S:Envelope>");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{RstRequest, credentials, parse_rst_request};
    use msnp::auth::{Secret, rst_request};

    #[test]
    fn credentials_are_percent_decoded() {
        let v = "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,\
                 sign-in=Bob%40example.com,pwd=p%40ss%2Cword,ct=1,rver=1";
        assert_eq!(
            credentials(v),
            Some(("bob@example.com".to_owned(), "p@ss,word".to_owned()))
        );
        assert_eq!(credentials("Basic abc"), None);
        assert_eq!(credentials("Passport1.4 sign-in=a@b.c"), None);
    }

    #[test]
    fn rst_request_from_our_client_is_understood() {
        let req = rst_request(
            "h",
            "Bob@Example.com",
            &Secret::new("p&ss<w>"),
            super::super::ns::TWN_POLICY,
        )
        .map(|r| r.body.expose().to_owned());
        let parsed = req.as_deref().ok().and_then(parse_rst_request);
        assert_eq!(
            parsed,
            Some(RstRequest {
                email: "bob@example.com".to_owned(),
                password: "p&ss<w>".to_owned(),
                tokens: vec![
                    ("http://Passport.NET/tb".to_owned(), None),
                    (
                        "messenger.msn.com".to_owned(),
                        Some("?ct=1&rver=1&wp=FS_40SEC_0_COMPACT&lc=1&id=1".to_owned())
                    ),
                ],
            })
        );
    }
}
