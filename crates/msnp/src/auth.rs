//! Tweener (TWN) ticket acquisition as pure data (MSNP.md §2.4.2): building the nexus
//! and Passport 1.4 `DALogin` requests, and reading their responses into a ticket, a
//! redirect or a typed failure. The alternatives (§2.4.3) are the WS-Trust `RST.srf`
//! SOAP request for `messenger.msn.com` with the TWN policy, answered by a
//! `BinarySecurityToken` or a SOAP fault, and Escargot's `NotRST.srf`: the account and
//! password in `X-User`/`X-Password` request headers, the ticket in an `X-Token` answer
//! header.
//!
//! Owns: URL normalisation (a bare host and a full URL are both accepted; a scheme-less
//! `DALogin=` gets `https://`), the `Authorization: Passport1.4 …` header with
//! percent-encoded `sign-in`/`pwd`, and header parsing of `PassportURLs`,
//! `Authentication-Info` and `WWW-Authenticate`. The HTTP client lives in the async
//! shell. Passwords and tickets are wrapped in [`Secret`], which never prints its value.
//! No I/O, no clock, no randomness.

use std::fmt;

/// A credential (password, ticket, switchboard cookie) whose `Debug`/`Display` never
/// shows the value.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value; call only where it is written to the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// Why a TWN step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// An empty or unparsable host/URL was given or received.
    #[error("invalid URL {url:?}")]
    BadUrl {
        /// The rejected text.
        url: String,
    },
    /// The nexus response has no `PassportURLs` header or no `DALogin=` in it.
    #[error("nexus response has no PassportURLs DALogin= value")]
    NoDaLogin,
    /// The login server rejected the credentials (401 and/or `da-status=failed`, or a
    /// `NotRST.srf` answer without `X-Token`).
    #[error("Passport login rejected the credentials (HTTP {status})")]
    Rejected {
        /// The HTTP status.
        status: u16,
    },
    /// A success status without a `from-PP='…'` ticket, or a redirect without a target.
    #[error("unexpected Passport login response (HTTP {status})")]
    Unexpected {
        /// The HTTP status.
        status: u16,
    },
    /// The account, password or challenge contains a CR or LF (header injection).
    #[error("{field} contains a line break")]
    LineBreak {
        /// Which input.
        field: &'static str,
    },
    /// The account or password has a control character, which an HTTP header cannot
    /// carry (`NotRST.srf`).
    #[error("{field} contains a control character")]
    Control {
        /// Which input.
        field: &'static str,
    },
    /// The account, password or challenge has a character XML cannot carry (RST body).
    #[error("{field} contains a character that cannot be sent in XML")]
    NotXml {
        /// Which input.
        field: &'static str,
    },
    /// `RST.srf` answered with a SOAP fault (§2.5.2: checked before any token).
    #[error("RST.srf fault {code} (HTTP {status}): {reason}")]
    Fault {
        /// The HTTP status.
        status: u16,
        /// The fault code, typed.
        code: FaultCode,
        /// `faultstring` (or SOAP 1.2 `Reason/Text`), possibly empty.
        reason: String,
    },
    /// `RST.srf` answered without a usable token for `address` (missing, empty, or
    /// with whitespace or control characters that could not go into `USR … TWN S`).
    #[error("RST.srf response (HTTP {status}) has no usable token for {address}")]
    NoToken {
        /// The HTTP status.
        status: u16,
        /// The requested `wsa:Address`.
        address: String,
    },
}

impl AuthError {
    /// Whether the server refused the account or password (Passport 1.4 `401` /
    /// `da-status=failed`, or an RST `FailedAuthentication` fault).
    pub fn is_wrong_credentials(&self) -> bool {
        matches!(
            self,
            AuthError::Rejected { .. }
                | AuthError::Fault {
                    code: FaultCode::FailedAuthentication,
                    ..
                }
        )
    }
}

pub use crate::soap::FaultCode;

/// The method of an [`HttpRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET` (the nexus and the Passport 1.4 login).
    Get,
    /// `POST` without a body (`NotRST.srf`).
    Post,
}

impl HttpMethod {
    /// The method name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// A request without a body described as data; the shell performs it. Header values
/// may hold credentials, so they are [`Secret`]s.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: HttpMethod,
    /// Absolute URL (`https://host[:port]/path`).
    pub url: String,
    /// Extra request headers (the shell adds `Host`).
    pub headers: Vec<(String, Secret)>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method.as_str())
            .field("url", &self.url)
            .field("headers (values redacted)", &names)
            .finish()
    }
}

/// What a Passport 1.4 login response means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginResponse {
    /// The ticket to send verbatim in `USR trid TWN S <ticket>` (`t=` included).
    Ticket(Secret),
    /// Retry the same request at this absolute URL (official `302`, Y111).
    Redirect(String),
}

/// The path of the nexus endpoint on both revival servers (§2.4.2, §2.8).
pub const NEXUS_PATH: &str = "/rdr/pprdr.asp";

/// `OrgURL` as official clients send it (§2.4.2 example).
const ORG_URL: &str = "http%3A%2F%2Fmessenger%2Emsn%2Ecom";

/// Splits off `scheme://`; `None` if there is no scheme.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    (!scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some((scheme, rest))
}

/// Normalises `input` to an absolute URL. Without a scheme, `https://` is prefixed
/// (§2.4.2: R2M returns `DALogin=<host>/login.srf`). When the result has no path,
/// `default_path` is appended.
pub fn normalize_url(input: &str, default_path: &str) -> Result<String, AuthError> {
    let trimmed = input.trim();
    let bad = || AuthError::BadUrl {
        url: input.to_owned(),
    };
    if trimmed.is_empty() || trimmed.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(bad());
    }
    let (scheme, rest) = split_scheme(trimmed).unwrap_or(("https", trimmed));
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(bad());
    }
    let path = if path.is_empty() || path == "/" {
        default_path
    } else {
        path
    };
    Ok(format!("{}://{host}{path}", scheme.to_ascii_lowercase()))
}

/// Step 1: the nexus request. `nexus` may be a bare host (`nexus.example.com`,
/// `host:8443`) or a full URL; a URL without a path gets [`NEXUS_PATH`].
pub fn nexus_request(nexus: &str) -> Result<HttpRequest, AuthError> {
    Ok(HttpRequest {
        method: HttpMethod::Get,
        url: normalize_url(nexus, NEXUS_PATH)?,
        headers: Vec::new(),
    })
}

/// Value of the first header called `name` (case-insensitive, §2.4.2).
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Finds `key=value` in a comma-separated list (keys case-insensitive); the value runs
/// to the next `,`.
fn comma_field<'a>(list: &'a str, key: &str) -> Option<&'a str> {
    list.split(',').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// Reads the `DALogin` URL out of a `PassportURLs` header value and normalises it
/// (`https://` prefixed when missing, §2.4.2).
pub fn parse_passport_urls(value: &str) -> Result<String, AuthError> {
    let da = comma_field(value, "DALogin").ok_or(AuthError::NoDaLogin)?;
    normalize_url(da, "/")
}

/// Step 1 response: the `DALogin` URL from the nexus response headers.
pub fn parse_nexus_response(headers: &[(String, String)]) -> Result<String, AuthError> {
    parse_passport_urls(header(headers, "PassportURLs").ok_or(AuthError::NoDaLogin)?)
}

fn no_line_break(field: &'static str, value: &str) -> Result<(), AuthError> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(AuthError::LineBreak { field });
    }
    Ok(())
}

/// The `Authorization` header value for the `DALogin` request (§2.4.2):
/// `Passport1.4 OrgVerb=GET,OrgURL=…,sign-in=…,pwd=…,<challenge>` where `<challenge>`
/// is the `USR … TWN S` argument passed through unmodified (it carries `lc`, `id`,
/// `tw`, `fs`, `ru`, `ct`, `kpp`, `kv`, `ver`, `tpf` when the server sends them).
pub fn passport_authorization(
    account: &str,
    password: &Secret,
    tw_challenge: &str,
) -> Result<Secret, AuthError> {
    no_line_break("account", account)?;
    no_line_break("password", password.expose())?;
    no_line_break("challenge", tw_challenge)?;
    let mut value = format!(
        "Passport1.4 OrgVerb=GET,OrgURL={ORG_URL},sign-in={},pwd={}",
        crate::escape::encode_unreserved(account),
        crate::escape::encode_unreserved(password.expose())
    );
    let challenge = tw_challenge.trim().trim_start_matches(',');
    if !challenge.is_empty() {
        value.push(',');
        value.push_str(challenge);
    }
    Ok(Secret(value))
}

/// Step 2: the login request to `dalogin` (as returned by [`parse_nexus_response`], or a
/// bare host, or a redirect target).
pub fn login_request(
    dalogin: &str,
    account: &str,
    password: &Secret,
    tw_challenge: &str,
) -> Result<HttpRequest, AuthError> {
    Ok(HttpRequest {
        method: HttpMethod::Get,
        url: normalize_url(dalogin, "/login.srf")?,
        headers: vec![(
            "Authorization".to_owned(),
            passport_authorization(account, password, tw_challenge)?,
        )],
    })
}

/// The text between `from-PP='` and the next `'` (§2.4.2); also accepts `"` quotes.
fn from_pp(value: &str) -> Option<&str> {
    let start = value.find("from-PP=")? + "from-PP=".len();
    let rest = value.get(start..)?;
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = rest.get(1..)?;
    let end = body.find(quote)?;
    body.get(..end)
}

/// Step 2 response: a ticket, a redirect, or why it failed. `headers` are the raw
/// response headers (names case-insensitive).
pub fn parse_login_response(
    status: u16,
    headers: &[(String, String)],
) -> Result<LoginResponse, AuthError> {
    let info = header(headers, "Authentication-Info").unwrap_or_default();
    let www = header(headers, "WWW-Authenticate").unwrap_or_default();
    let da_status = comma_field(strip_scheme_word(info), "da-status")
        .or_else(|| comma_field(strip_scheme_word(www), "da-status"))
        .map(str::to_ascii_lowercase);
    if let Some(ticket) = from_pp(info).filter(|t| !t.is_empty())
        && (200..300).contains(&status)
    {
        return Ok(LoginResponse::Ticket(Secret(ticket.to_owned())));
    }
    if status == 401 || da_status.as_deref() == Some("failed") {
        return Err(AuthError::Rejected { status });
    }
    if (300..400).contains(&status) || da_status.as_deref() == Some("redir") {
        let target = header(headers, "Location")
            .or_else(|| comma_field(strip_scheme_word(info), "ru"))
            .ok_or(AuthError::Unexpected { status })?;
        return Ok(LoginResponse::Redirect(normalize_url(target, "/")?));
    }
    Err(AuthError::Unexpected { status })
}

/// Drops a leading `Passport1.4 ` scheme word from an auth header value.
fn strip_scheme_word(value: &str) -> &str {
    let v = value.trim();
    match v.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("Passport1.4") => rest,
        _ => v,
    }
}

/// A `POST` request described as data; the shell performs it. The body holds the
/// password, so it is a [`Secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct PostRequest {
    /// Absolute URL (`https://host[:port]/path`).
    pub url: String,
    /// Request headers (the shell adds `Host` and `Content-Length`).
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Secret,
}

impl fmt::Debug for PostRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostRequest")
            .field("method", &"POST")
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("body", &"<redacted>")
            .finish()
    }
}

/// A ticket goes verbatim into `USR trid TWN S <ticket>`: no spaces, no controls.
pub(crate) fn usable_ticket(ticket: &str) -> bool {
    !ticket.is_empty() && !ticket.chars().any(|c| c.is_whitespace() || c.is_control())
}

mod rst;
pub use rst::*;

// ----- NotRST.srf (MSNP.md §2.4.3, Escargot only) -------------------------------------

/// The path of Escargot's header-based ticket endpoint (§2.4.3).
pub const NOT_RST_PATH: &str = "/NotRST.srf";

/// A value for an HTTP request header: no CR/LF (header injection) and no other
/// control character (headers cannot carry them). Other bytes go as they are.
fn header_value(field: &'static str, value: &str) -> Result<Secret, AuthError> {
    no_line_break(field, value)?;
    if value.chars().any(|c| c.is_ascii_control() && c != '\t') {
        return Err(AuthError::Control { field });
    }
    Ok(Secret(value.to_owned()))
}

/// The `NotRST.srf` request for a TWN ticket (§2.4.3, Escargot's revival-only
/// endpoint): a bodiless `POST` with `X-User: <account>` and `X-Password: <password>`,
/// sent as they are (Escargot does not decode them). `not_rst_url` may be a bare host or
/// a full URL; without a path it gets [`NOT_RST_PATH`].
pub fn not_rst_request(
    not_rst_url: &str,
    account: &str,
    password: &Secret,
) -> Result<HttpRequest, AuthError> {
    Ok(HttpRequest {
        method: HttpMethod::Post,
        url: normalize_url(not_rst_url, NOT_RST_PATH)?,
        headers: vec![
            ("X-User".to_owned(), header_value("account", account)?),
            (
                "X-Password".to_owned(),
                header_value("password", password.expose())?,
            ),
        ],
    })
}

/// Reads a `NotRST.srf` response (§2.4.3): the `X-Token` header is the ticket for
/// `USR … TWN S`. Escargot answers `200` either way; no (or an empty) `X-Token` means
/// the account or password was wrong ([`AuthError::Rejected`]).
pub fn parse_not_rst_response(
    status: u16,
    headers: &[(String, String)],
) -> Result<Secret, AuthError> {
    if !(200..300).contains(&status) {
        return Err(AuthError::Unexpected { status });
    }
    match header(headers, "X-Token").map(str::trim) {
        None | Some("") => Err(AuthError::Rejected { status }),
        Some(token) if usable_ticket(token) => Ok(Secret(token.to_owned())),
        Some(_) => Err(AuthError::Unexpected { status }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_owned(), value.to_owned())]
    }

    #[test]
    fn nexus_bare_host_and_full_url() {
        assert_eq!(
            nexus_request("nexus.example.com").map(|r| r.url),
            Ok("https://nexus.example.com/rdr/pprdr.asp".to_owned())
        );
        assert_eq!(
            nexus_request("http://127.0.0.1:3000").map(|r| r.url),
            Ok("http://127.0.0.1:3000/rdr/pprdr.asp".to_owned())
        );
        assert_eq!(
            nexus_request("https://n.example/nexus-mock").map(|r| r.url),
            Ok("https://n.example/nexus-mock".to_owned())
        );
        assert!(nexus_request("").is_err());
        assert!(nexus_request("https:///x").is_err());
        assert!(nexus_request("a b").is_err());
    }

    #[test]
    fn passport_urls_with_and_without_scheme() {
        // §2.4.2 / §2.8: R2M sends no scheme, Escargot a full URL.
        let r2m = h(
            "passporturls",
            "DARealm=Passport.Net,DALogin=example.com/login.srf,ConfigVersion=15",
        );
        assert_eq!(
            parse_nexus_response(&r2m),
            Ok("https://example.com/login.srf".to_owned())
        );
        let esc = h("PassportURLs", "DALogin=https://login.example/login");
        assert_eq!(
            parse_nexus_response(&esc),
            Ok("https://login.example/login".to_owned())
        );
        assert_eq!(
            parse_nexus_response(&h("PassportURLs", "DARealm=x")),
            Err(AuthError::NoDaLogin)
        );
        assert_eq!(parse_nexus_response(&[]), Err(AuthError::NoDaLogin));
    }

    #[test]
    fn authorization_header_matches_section_2_4_2() {
        let req = login_request(
            "login.passport.com/login2.srf",
            "bridge@example.com",
            &Secret::new("p@ss,word"),
            "ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1",
        );
        let Ok(req) = req else {
            panic!("request failed: {req:?}");
        };
        assert_eq!(req.url, "https://login.passport.com/login2.srf");
        assert_eq!(req.headers.len(), 1);
        assert_eq!(req.headers[0].0, "Authorization");
        assert_eq!(
            req.headers[0].1.expose(),
            "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,\
             sign-in=bridge%40example.com,pwd=p%40ss%2Cword,ct=1,rver=1,\
             wp=FS_40SEC_0_COMPACT,lc=1,id=1"
        );
        // Secrets never show up in Debug output.
        let dbg = format!("{req:?}");
        assert!(
            !dbg.contains("p%40ss") && !dbg.contains("Passport1.4"),
            "{dbg}"
        );
        assert_eq!(format!("{:?}", Secret::new("x")), "Secret(<redacted>)");
    }

    #[test]
    fn official_style_challenge_passes_through() {
        let chl = "ct=1700000000,rver=5.5.4177.0,wp=FS_40SEC_0_COMPACT,lc=1033,id=507,\
                   ru=http:%2F%2Fmessenger.msn.com,tw=0,kpp=1,kv=4,ver=2.1.6000.1,rn=1lgjBfIL,\
                   tpf=b0735e3a873dfb5e75054465196398e0";
        let auth = passport_authorization("a@b.c", &Secret::new("pw"), chl);
        let Ok(auth) = auth else {
            panic!("{auth:?}");
        };
        assert!(auth.expose().ends_with(&format!("pwd=pw,{chl}")));
        assert_eq!(
            passport_authorization("a@b.c", &Secret::new("x\r\ny"), chl),
            Err(AuthError::LineBreak { field: "password" })
        );
    }

    #[test]
    fn login_response_outcomes() {
        let ok = h(
            "authentication-info",
            "Passport1.4 da-status=success,from-PP='t=Q2xhc3NpY0V4YW1wbGVUb2s='",
        );
        assert_eq!(
            parse_login_response(200, &ok),
            Ok(LoginResponse::Ticket(Secret::new(
                "t=Q2xhc3NpY0V4YW1wbGVUb2s="
            )))
        );
        let failed = h("WWW-Authenticate", "Passport1.4 da-status=failed");
        assert_eq!(
            parse_login_response(401, &failed),
            Err(AuthError::Rejected { status: 401 })
        );
        // R2M: bare 401.
        assert_eq!(
            parse_login_response(401, &[]),
            Err(AuthError::Rejected { status: 401 })
        );
        let redir = h("Location", "https://other.example/login2.srf");
        assert_eq!(
            parse_login_response(302, &redir),
            Ok(LoginResponse::Redirect(
                "https://other.example/login2.srf".to_owned()
            ))
        );
        assert_eq!(
            parse_login_response(302, &[]),
            Err(AuthError::Unexpected { status: 302 })
        );
        assert_eq!(
            parse_login_response(200, &[]),
            Err(AuthError::Unexpected { status: 200 })
        );
    }
    #[test]
    fn not_rst_request_matches_section_2_4_3() {
        let req = not_rst_request(
            "login.example",
            "bridge@example.com",
            &Secret::new("p@ss, wörd%"),
        );
        let Ok(req) = req else {
            panic!("request failed: {req:?}");
        };
        assert_eq!(req.method, HttpMethod::Post);
        assert_eq!(req.url, "https://login.example/NotRST.srf");
        // Sent as they are: Escargot reads the headers without decoding them.
        let headers: Vec<(&str, &str)> = req
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.expose()))
            .collect();
        assert_eq!(
            headers,
            [
                ("X-User", "bridge@example.com"),
                ("X-Password", "p@ss, wörd%")
            ]
        );
        let dbg = format!("{req:?}");
        assert!(dbg.contains("POST") && !dbg.contains("p@ss"), "{dbg}");
        assert_eq!(
            not_rst_request(
                "http://127.0.0.1:8080/x/NotRST.srf",
                "a@b.c",
                &Secret::new("pw")
            )
            .map(|r| r.url),
            Ok("http://127.0.0.1:8080/x/NotRST.srf".to_owned())
        );
        assert_eq!(
            not_rst_request("h", "a@b.c", &Secret::new("pw\r\nX-Evil: 1")),
            Err(AuthError::LineBreak { field: "password" })
        );
        assert_eq!(
            not_rst_request("h", "a\0@b.c", &Secret::new("pw")),
            Err(AuthError::Control { field: "account" })
        );
        assert!(not_rst_request("", "a@b.c", &Secret::new("pw")).is_err());
    }

    #[test]
    fn not_rst_response_token_or_wrong_credentials() {
        assert_eq!(
            parse_not_rst_response(200, &h("x-token", " ABCDEFGHIJ0123456789 ")),
            Ok(Secret::new("ABCDEFGHIJ0123456789"))
        );
        // 200 either way: no (or an empty) X-Token is a refused password.
        for headers in [Vec::new(), h("X-Token", ""), h("Content-Length", "0")] {
            let err = parse_not_rst_response(200, &headers);
            assert_eq!(err, Err(AuthError::Rejected { status: 200 }));
            assert!(err.is_err_and(|e| e.is_wrong_credentials()));
        }
        // A token that could not go into `USR … TWN S`, or a server error.
        assert_eq!(
            parse_not_rst_response(200, &h("X-Token", "a b")),
            Err(AuthError::Unexpected { status: 200 })
        );
        let err = parse_not_rst_response(500, &h("X-Token", "abc"));
        assert_eq!(err, Err(AuthError::Unexpected { status: 500 }));
        assert!(err.is_err_and(|e| !e.is_wrong_credentials()));
    }
}
