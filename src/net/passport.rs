//! The Passport 1.4 ("Tweener") ticket over HTTP(S) (MSNP.md §2.4.2): nexus, then the
//! DALogin URL, then the login with the `Authorization: Passport1.4 ...` header, following
//! redirects; or, as the alternative routes (§2.4.3), one `POST` of a WS-Trust envelope to
//! `RST.srf`, or one bodiless `POST` to Escargot's `NotRST.srf` with the credentials in
//! headers. From MSNP15 the single sign-on tokens come from `RST.srf` too (§2.5.2): the
//! messenger ticket with its binary secret, and the address book's ticket. The requests
//! and answers are built and read by `msnp::auth`; this module only performs them. The
//! password, tickets and secrets never reach a log line.

use std::time::Duration;

use msnp::auth::{self, AuthError, HttpMethod, HttpRequest, LoginResponse, Secret};

use super::settings::TicketRoute;
use super::soap_post::{self, PostError};

/// How many login redirects are followed before giving up.
const MAX_REDIRECTS: usize = 3;

/// Largest `RST.srf` response body read (a TWN answer is a few KB).
const MAX_RST_BODY: usize = 256 * 1024;

/// Why no ticket could be had.
#[derive(Debug, thiserror::Error)]
pub enum PassportError {
    #[error("the Passport server refused the account or password")]
    WrongCredentials,
    #[error("the Passport server's answer was not understood: {0}")]
    Protocol(#[source] AuthError),
    #[error("cannot reach the Passport server: {0}")]
    Http(#[source] reqwest::Error),
    #[error("the Passport server issued no {0} for single sign-on")]
    MissingToken(&'static str),
    #[error("the extra CA certificate is not valid PEM: {0}")]
    BadCa(#[source] reqwest::Error),
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("the Passport server's answer is larger than {max} bytes")]
    TooLarge { max: usize },
}

/// The HTTP client for Passport, trusting `extra_ca_pem` besides the system roots.
pub fn http_client(
    extra_ca_pem: Option<&[u8]>,
    timeout: Duration,
) -> Result<reqwest::Client, PassportError> {
    // Logins are rare once sessions are up: a couple of idle connections per host serve
    // the next ones; many logins at once (a restart) must not leave a socket and its
    // buffers pooled for each.
    crate::tls::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(2)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent("MSMSGS");
    if let Some(pem) = extra_ca_pem {
        let cert = reqwest::Certificate::from_pem(pem).map_err(PassportError::BadCa)?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(PassportError::Http)
}

async fn perform(
    http: &reqwest::Client,
    request: &HttpRequest,
) -> Result<(u16, Vec<(String, String)>), PassportError> {
    let mut builder = match request.method {
        HttpMethod::Get => http.get(&request.url),
        HttpMethod::Post => http.post(&request.url),
    };
    for (name, value) in &request.headers {
        // As bytes: a UTF-8 password is sent as it is (`msnp::auth` rejects controls).
        builder = builder.header(name.as_str(), value.expose().as_bytes());
    }
    let response = builder.send().await.map_err(PassportError::Http)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    Ok((status, headers))
}

/// The shell's error for a failed ticket step: refused credentials are one typed error
/// whatever the route.
fn ticket_error(e: AuthError) -> PassportError {
    if e.is_wrong_credentials() {
        PassportError::WrongCredentials
    } else {
        PassportError::Protocol(e)
    }
}

/// Gets a ticket for `account` answering the server's `tw_challenge` (the text after
/// `USR trid TWN S`). `dalogin_url` skips the nexus when set.
pub async fn fetch_ticket(
    http: &reqwest::Client,
    nexus_url: &str,
    dalogin_url: Option<&str>,
    account: &str,
    password: &Secret,
    tw_challenge: &str,
) -> Result<Secret, PassportError> {
    let mut login_url = match dalogin_url {
        Some(url) => url.to_owned(),
        None => {
            let request = auth::nexus_request(nexus_url).map_err(PassportError::Protocol)?;
            let (_, headers) = perform(http, &request).await?;
            auth::parse_nexus_response(&headers).map_err(PassportError::Protocol)?
        }
    };
    for _ in 0..=MAX_REDIRECTS {
        let request = auth::login_request(&login_url, account, password, tw_challenge)
            .map_err(PassportError::Protocol)?;
        let (status, headers) = perform(http, &request).await?;
        match auth::parse_login_response(status, &headers) {
            Ok(LoginResponse::Ticket(ticket)) => return Ok(ticket),
            Ok(LoginResponse::Redirect(url)) => {
                tracing::debug!(%url, "Passport login redirected");
                login_url = url;
            }
            Err(e) => return Err(ticket_error(e)),
        }
    }
    Err(PassportError::TooManyRedirects)
}

/// Gets a TWN ticket through `RST.srf` (§2.4.3): one `POST` asking for
/// `messenger.msn.com` with the policy made from `tw_challenge`. `rst_url` may be a bare
/// host or a full URL (default path `/RST.srf`).
pub async fn fetch_ticket_rst(
    http: &reqwest::Client,
    rst_url: &str,
    account: &str,
    password: &Secret,
    tw_challenge: &str,
) -> Result<Secret, PassportError> {
    let request = auth::rst_request(rst_url, account, password, tw_challenge)
        .map_err(PassportError::Protocol)?;
    let (status, body) = post_rst(http, &request).await?;
    auth::parse_rst_response(status, &body, auth::TWN_RST_ADDRESS).map_err(ticket_error)
}

async fn post_rst(
    http: &reqwest::Client,
    request: &msnp::PostRequest,
) -> Result<(u16, String), PassportError> {
    soap_post::post(http, request, MAX_RST_BODY)
        .await
        .map_err(|e| match e {
            PostError::Http(e) => PassportError::Http(e),
            PostError::TooLarge { max } => PassportError::TooLarge { max },
        })
}

/// What single sign-on needs from `RST.srf` (§2.5.2).
#[derive(Debug, Clone)]
pub struct SsoTokens {
    /// The `messengerclear.live.com` ticket for `USR … SSO S`.
    pub ticket: Secret,
    /// Its binary secret, the key of the MBI response (§2.5.3).
    pub binary_secret: Secret,
    /// The `contacts.msn.com` ticket for the address book, if one came.
    pub contacts: Option<Secret>,
}

/// Gets the single sign-on tokens from `rst_url` for the server's `policy`.
pub async fn fetch_sso_tokens(
    http: &reqwest::Client,
    rst_url: &str,
    account: &str,
    password: &Secret,
    policy: &str,
) -> Result<SsoTokens, PassportError> {
    let request = auth::sso_rst_request(rst_url, account, password, policy)
        .map_err(PassportError::Protocol)?;
    let (status, body) = post_rst(http, &request).await?;
    let tokens = auth::parse_rst_tokens(status, &body).map_err(ticket_error)?;
    let clear = auth::token_for(&tokens, status, auth::MESSENGER_CLEAR_ADDRESS)
        .map_err(PassportError::Protocol)?;
    let binary_secret = clear
        .binary_secret
        .clone()
        .ok_or(PassportError::MissingToken("binary secret"))?;
    let contacts = auth::token_for(&tokens, status, auth::CONTACTS_ADDRESS)
        .ok()
        .map(|t| t.ticket.clone());
    Ok(SsoTokens {
        ticket: clear.ticket.clone(),
        binary_secret,
        contacts,
    })
}

/// Gets a TWN ticket through Escargot's `NotRST.srf` (§2.4.3): one bodiless `POST` with
/// `X-User`/`X-Password`; the ticket is the `X-Token` answer header (none: wrong
/// credentials). `not_rst_url` may be a bare host or a full URL (default path
/// `/NotRST.srf`).
pub async fn fetch_ticket_not_rst(
    http: &reqwest::Client,
    not_rst_url: &str,
    account: &str,
    password: &Secret,
) -> Result<Secret, PassportError> {
    let request =
        auth::not_rst_request(not_rst_url, account, password).map_err(PassportError::Protocol)?;
    let (status, headers) = perform(http, &request).await?;
    auth::parse_not_rst_response(status, &headers).map_err(ticket_error)
}

/// Gets a TWN ticket by the configured route: Passport 1.4 through the nexus (or
/// `dalogin_url`), `RST.srf`, or `NotRST.srf` (which needs no challenge).
pub async fn fetch_ticket_by_route(
    http: &reqwest::Client,
    route: &TicketRoute,
    nexus_url: &str,
    dalogin_url: Option<&str>,
    account: &str,
    password: &Secret,
    tw_challenge: &str,
) -> Result<Secret, PassportError> {
    match route {
        TicketRoute::Nexus => {
            fetch_ticket(
                http,
                nexus_url,
                dalogin_url,
                account,
                password,
                tw_challenge,
            )
            .await
        }
        TicketRoute::Rst { url } => {
            fetch_ticket_rst(http, url, account, password, tw_challenge).await
        }
        TicketRoute::NotRst { url } => fetch_ticket_not_rst(http, url, account, password).await,
    }
}
