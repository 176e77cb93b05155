//! What every SOAP exchange of MSNP shares (Passport RST, the address book): the fault
//! a response may carry instead of a result (MSNP.md §2.5.2, §15.5), read from the
//! [`Element`] tree, and the typed fault code. No I/O.

use std::fmt;

use crate::xml::Element;

/// The `faultcode` of a SOAP fault, by local name (prefixes vary:
/// `wsse:`, `wst:`, `psf:`, `S:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultCode {
    /// `FailedAuthentication`: wrong account or password (R2M; Escargot's
    /// `RST.authfailed.xml`).
    FailedAuthentication,
    /// `InvalidSecurity` / `InvalidSecurityToken`: the security header was not accepted.
    InvalidSecurity,
    /// `InvalidRequest` / `BadRequest` / SOAP `Client` / `Sender`: the request was
    /// refused (Escargot's `RST.error.xml`: `S:Client` "Invalid Request"; R2M for a
    /// wrong TWN policy).
    InvalidRequest,
    /// `RequestFailed` / SOAP `Server` / `Receiver`: the server failed.
    ServerFailure,
    /// Anything else, as sent.
    Other(String),
}

impl FaultCode {
    /// Types a `faultcode` value such as `wsse:FailedAuthentication`.
    pub fn parse(code: &str) -> FaultCode {
        let local = code.trim().rsplit_once(':').map_or(code.trim(), |(_, l)| l);
        match local {
            "FailedAuthentication" => FaultCode::FailedAuthentication,
            "InvalidSecurity" | "InvalidSecurityToken" => FaultCode::InvalidSecurity,
            "InvalidRequest" | "BadRequest" | "Client" | "Sender" => FaultCode::InvalidRequest,
            "RequestFailed" | "Server" | "Receiver" => FaultCode::ServerFailure,
            _ => FaultCode::Other(code.trim().to_owned()),
        }
    }
}

impl fmt::Display for FaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultCode::FailedAuthentication => f.write_str("FailedAuthentication"),
            FaultCode::InvalidSecurity => f.write_str("InvalidSecurity"),
            FaultCode::InvalidRequest => f.write_str("InvalidRequest"),
            FaultCode::ServerFailure => f.write_str("ServerFailure"),
            FaultCode::Other(code) => f.write_str(code),
        }
    }
}

/// A SOAP fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The code, typed.
    pub code: FaultCode,
    /// `faultstring` (or SOAP 1.2 `Reason/Text`), at most 200 characters.
    pub reason: String,
}

/// The fault in a SOAP response, if it has one (`faultcode`/`faultstring`, or the
/// SOAP 1.2 `Code/Value` (most specific last) and `Reason/Text`).
pub fn fault(root: &Element) -> Option<Fault> {
    let fault = root.find("Fault")?;
    let code = fault
        .find("faultcode")
        .and_then(Element::trimmed_text)
        .or_else(|| {
            // `Value` and `Subcode/Value` in document order: the last is most specific.
            let values = fault.find("Code")?.find_all("Value");
            values.into_iter().rev().find_map(Element::trimmed_text)
        })
        .unwrap_or_default();
    let reason = fault
        .find("faultstring")
        .or_else(|| fault.find("Text"))
        .and_then(Element::trimmed_text)
        .unwrap_or_default();
    Some(Fault {
        code: FaultCode::parse(code),
        reason: reason.chars().take(200).collect(),
    })
}

/// Why a SOAP answer has no result to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A SOAP fault.
    Fault(Fault),
    /// Not XML, or a failure status without a fault.
    Unexpected,
}

/// The root of a successful SOAP answer: a fault is checked first, then the status.
pub fn answer(status: u16, body: &str) -> Result<Element, Refusal> {
    let root = Element::parse(body).map_err(|_| Refusal::Unexpected)?;
    if let Some(fault) = fault(&root) {
        return Err(Refusal::Fault(fault));
    }
    if !(200..300).contains(&status) {
        return Err(Refusal::Unexpected);
    }
    Ok(root)
}

/// `path` on the scheme and authority of `base` (a bare host gets `https://`), or
/// `None` when `base` is no usable URL.
pub fn service_url(base: &str, path: &str) -> Option<String> {
    let url = crate::auth::normalize_url(base, path).ok()?;
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    Some(format!("{scheme}://{authority}{path}"))
}
