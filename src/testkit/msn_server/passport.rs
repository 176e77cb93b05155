//! Passport 1.4 over plain HTTP (MSNP.md §2.4.2, R2M-style, §2.8): the nexus
//! `GET /rdr/pprdr.asp` answering `PassportURLs: DALogin=…`, and
//! `GET /login.srf` checking `Authorization: Passport1.4 …sign-in=…,pwd=…` and answering
//! `Authentication-Info: Passport1.4 da-status=success,from-PP='t=…&p=…'` or `401` with
//! `WWW-Authenticate: Passport1.4 da-status=failed`.
//!
//! Issues tickets into the shared state; the NS checks them verbatim at `USR … TWN S`.
//! Credentials and tickets are never logged.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::msnp::escape;

use super::state::{Shared, Ticket, random_token};

/// The HTTP routes of the Passport side.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/rdr/pprdr.asp", get(nexus))
        .route("/login.srf", get(login))
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

async fn login(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some((email, password)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(credentials)
    else {
        return unauthorized();
    };
    let ticket = format!("t={}&p={}", random_token(20), random_token(20));
    {
        let mut state = shared.lock();
        let ok = state
            .accounts
            .get(&email)
            .is_some_and(|a| a.password == password);
        if !ok {
            drop(state);
            shared.emit(super::ServerEvent::LoginFailed { email });
            return unauthorized();
        }
        let now = Instant::now();
        state.tickets.retain(|_, t| t.expires > now);
        state.tickets.insert(
            ticket.clone(),
            Ticket {
                email,
                expires: now + shared.config.ticket_lifetime,
            },
        );
    }
    // `from-PP` must be the last field: msnp11-sdk takes everything after it.
    let info = format!("Passport1.4 da-status=success,from-PP='{ticket}'");
    match HeaderValue::from_str(&info) {
        Ok(v) => (StatusCode::OK, [("Authentication-Info", v)], "").into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::credentials;

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
}
