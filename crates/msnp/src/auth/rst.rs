//! The WS-Trust `RST.srf` exchange as data (MSNP.md §2.4.3 for a TWN ticket, §2.5.2 for
//! single sign-on): the request body asking for several tokens, and the response read
//! into the tokens issued per address, each with its binary secret when one came.
//!
//! Owns: the envelope (built with escaped fields; `http://Passport.NET/tb` always asked
//! first, as Escargot's older code drops the first address blindly), fault detection
//! (checked before any token), and matching responses by `wsa:Address` text, not by
//! position. The XML is read with [`crate::xml::Element`]. No I/O.

use super::{AuthError, PostRequest, Secret, normalize_url, usable_ticket};
use crate::soap;
use crate::xml::{self, Element};

/// The path of the WS-Trust endpoint on both revival servers (§2.5.2, §2.8).
pub const RST_PATH: &str = "/RST.srf";

/// The address whose token is the TWN ticket (§2.4.3).
pub const TWN_RST_ADDRESS: &str = "messenger.msn.com";

/// The address every RST request asks for first (§2.5.2).
pub const PASSPORT_TB_ADDRESS: &str = "http://Passport.NET/tb";

/// The address whose token (and binary secret) answers `USR … SSO S` (§2.5.1).
pub const MESSENGER_CLEAR_ADDRESS: &str = "messengerclear.live.com";

/// The address whose token goes into the address-book SOAP headers (§4.5).
pub const CONTACTS_ADDRESS: &str = "contacts.msn.com";

/// The policy the address book's token is asked with (§2.5.2).
pub const CONTACTS_POLICY: &str = "MBI";

/// One token asked for: the `wsa:Address` and its `PolicyReference` URI (not yet
/// escaped; `None` sends no policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRequest<'a> {
    /// The service address.
    pub address: &'a str,
    /// The policy reference URI.
    pub policy: Option<&'a str>,
}

/// A token the server issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The `wsa:Address` it applies to.
    pub address: String,
    /// The `BinarySecurityToken` text, XML-unescaped (`t=…&p=…`).
    pub ticket: Secret,
    /// The base64 `BinarySecret` of the proof token, if one came (Escargot gives one for
    /// `messengerclear.live.com`).
    pub binary_secret: Option<Secret>,
}

/// The TWN policy reference for `messenger.msn.com` (§2.4.3): the `USR … TWN S`
/// challenge with commas turned into `&`, prefixed by `?` (not yet XML-escaped). R2M
/// rejects any other policy for that address.
pub fn rst_twn_policy(tw_challenge: &str) -> String {
    format!("?{}", tw_challenge.trim().replace(',', "&"))
}

fn xml_field(field: &'static str, value: &str) -> Result<String, AuthError> {
    xml::escape(value).map_err(|_| AuthError::NotXml { field })
}

/// The `RST.srf` request for a TWN ticket (§2.4.3): `http://Passport.NET/tb`, then
/// `messenger.msn.com` with the TWN policy. `rst_url` may be a bare host or a full URL;
/// without a path it gets [`RST_PATH`].
pub fn rst_request(
    rst_url: &str,
    account: &str,
    password: &Secret,
    tw_challenge: &str,
) -> Result<PostRequest, AuthError> {
    let policy = rst_twn_policy(tw_challenge);
    tokens_request(
        rst_url,
        account,
        password,
        &[TokenRequest {
            address: TWN_RST_ADDRESS,
            policy: Some(&policy),
        }],
    )
}

/// The `RST.srf` request of a single sign-on (§2.5.2): `messengerclear.live.com` with
/// the policy `USR … SSO S` named (normally `MBI_KEY_OLD`), and `contacts.msn.com` for
/// the address book.
pub fn sso_rst_request(
    rst_url: &str,
    account: &str,
    password: &Secret,
    policy: &str,
) -> Result<PostRequest, AuthError> {
    tokens_request(
        rst_url,
        account,
        password,
        &[
            TokenRequest {
                address: MESSENGER_CLEAR_ADDRESS,
                policy: Some(policy),
            },
            TokenRequest {
                address: CONTACTS_ADDRESS,
                policy: Some(CONTACTS_POLICY),
            },
        ],
    )
}

/// An `RST.srf` request for `tokens`, after `http://Passport.NET/tb` (§2.5.2).
pub fn tokens_request(
    rst_url: &str,
    account: &str,
    password: &Secret,
    tokens: &[TokenRequest<'_>],
) -> Result<PostRequest, AuthError> {
    let url = normalize_url(rst_url, RST_PATH)?;
    let account = xml_field("account", account)?;
    let password = xml_field("password", password.expose())?;
    let mut requests = String::new();
    let all = std::iter::once(TokenRequest {
        address: PASSPORT_TB_ADDRESS,
        policy: None,
    })
    .chain(tokens.iter().copied());
    for (i, token) in all.enumerate() {
        let address = xml_field("address", token.address)?;
        let policy = match token.policy {
            Some(policy) => format!(
                "\n    <wsse:PolicyReference URI=\"{}\"></wsse:PolicyReference>",
                xml_field("challenge", policy)?
            ),
            None => String::new(),
        };
        requests.push_str(&format!(
            r#"
   <wst:RequestSecurityToken Id="RST{i}">
    <wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType>
    <wsp:AppliesTo><wsa:EndpointReference><wsa:Address>{address}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>{policy}
   </wst:RequestSecurityToken>"#
        ));
    }
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing" xmlns:wssc="http://schemas.xmlsoap.org/ws/2004/04/sc" xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust">
 <Header>
  <ps:AuthInfo xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="PPAuthInfo">
   <ps:HostingApp>{{7108E71A-9926-4FCB-BCC9-9A9D3F32E423}}</ps:HostingApp>
   <ps:BinaryVersion>4</ps:BinaryVersion>
   <ps:UIVersion>1</ps:UIVersion>
   <ps:Cookies></ps:Cookies>
   <ps:RequestParams>AQAAAAIAAABsYwQAAAAxMDMz</ps:RequestParams>
  </ps:AuthInfo>
  <wsse:Security>
   <wsse:UsernameToken Id="user">
    <wsse:Username>{account}</wsse:Username>
    <wsse:Password>{password}</wsse:Password>
   </wsse:UsernameToken>
  </wsse:Security>
 </Header>
 <Body>
  <ps:RequestMultipleSecurityTokens xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="RSTS">{requests}
  </ps:RequestMultipleSecurityTokens>
 </Body>
</Envelope>
"#
    );
    Ok(PostRequest {
        url,
        headers: vec![(
            "Content-Type".to_owned(),
            "text/xml; charset=utf-8".to_owned(),
        )],
        body: Secret(body),
    })
}

/// Reads an `RST.srf` response into every usable token it issued (§2.5.2): a SOAP fault
/// is checked first; a token whose text is empty or could break the `USR` line (white
/// space, controls) is left out.
pub fn parse_rst_tokens(status: u16, body: &str) -> Result<Vec<IssuedToken>, AuthError> {
    let root = Element::parse(body);
    if let Some(fault) = root.as_ref().ok().and_then(soap::fault) {
        return Err(AuthError::Fault {
            status,
            code: fault.code,
            reason: fault.reason,
        });
    }
    if !(200..300).contains(&status) {
        return Err(AuthError::Unexpected { status });
    }
    let root = root.map_err(|_| AuthError::Unexpected { status })?;
    Ok(root
        .find_all("RequestSecurityTokenResponse")
        .into_iter()
        .filter_map(|response| {
            let address = response.find("Address")?.trimmed_text()?;
            let ticket = response.find("BinarySecurityToken")?.trimmed_text()?;
            if !usable_ticket(ticket) {
                return None;
            }
            let binary_secret = response
                .find("BinarySecret")
                .and_then(Element::trimmed_text)
                .map(Secret::new);
            Some(IssuedToken {
                address: address.to_owned(),
                ticket: Secret::new(ticket),
                binary_secret,
            })
        })
        .collect())
}

/// The token issued for `address` (matched without regard to case), or
/// [`AuthError::NoToken`].
pub fn token_for<'a>(
    tokens: &'a [IssuedToken],
    status: u16,
    address: &str,
) -> Result<&'a IssuedToken, AuthError> {
    tokens
        .iter()
        .find(|t| t.address.eq_ignore_ascii_case(address))
        .ok_or_else(|| AuthError::NoToken {
            status,
            address: address.to_owned(),
        })
}

/// Reads an `RST.srf` response into the ticket issued for `address` (for TWN,
/// [`TWN_RST_ADDRESS`]: the ticket for `USR … TWN S`).
pub fn parse_rst_response(status: u16, body: &str, address: &str) -> Result<Secret, AuthError> {
    let tokens = parse_rst_tokens(status, body)?;
    Ok(token_for(&tokens, status, address)?.ticket.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::FaultCode;

    const TWN_CHALLENGE: &str = "ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1";

    #[test]
    fn rst_request_matches_section_2_4_3() {
        let req = rst_request(
            "login.example",
            "bridge@example.com",
            &Secret::new("p@ss,word&<x>"),
            TWN_CHALLENGE,
        );
        let Ok(req) = req else {
            panic!("{req:?}");
        };
        assert_eq!(req.url, "https://login.example/RST.srf");
        assert_eq!(
            req.headers,
            vec![(
                "Content-Type".to_owned(),
                "text/xml; charset=utf-8".to_owned()
            )]
        );
        let body = req.body.expose();
        assert!(body.contains("<wsse:Username>bridge@example.com</wsse:Username>"));
        assert!(body.contains("<wsse:Password>p@ss,word&amp;&lt;x&gt;</wsse:Password>"));
        // §2.4.3: the challenge, commas → `&` (XML-escaped), prefixed by `?`.
        assert!(body.contains(
            r#"<wsse:PolicyReference URI="?ct=1&amp;rver=1&amp;wp=FS_40SEC_0_COMPACT&amp;lc=1&amp;id=1"></wsse:PolicyReference>"#
        ));
        // RST0 (Passport.NET/tb) comes first, then messenger.msn.com (§2.5.2).
        let tb = body.find("<wsa:Address>http://Passport.NET/tb</wsa:Address>");
        let msgr = body.find("<wsa:Address>messenger.msn.com</wsa:Address>");
        assert!(tb.is_some() && msgr.is_some() && tb < msgr, "{body}");
        // The body parses back with the XML reader.
        let root = Element::parse(body).expect("the body is XML");
        let pw = root.find("Password").map(Element::text);
        assert_eq!(pw, Some("p@ss,word&<x>"));
        let policy = root.find("PolicyReference").and_then(|e| e.attr("URI"));
        assert_eq!(policy, Some(rst_twn_policy(TWN_CHALLENGE).as_str()));
        // The password never shows in Debug.
        assert!(!format!("{req:?}").contains("p@ss"));
        assert_eq!(
            rst_request(
                "https://h.example:8443/custom/RST.srf",
                "a@b.c",
                &Secret::new("x"),
                ""
            )
            .map(|r| r.url),
            Ok("https://h.example:8443/custom/RST.srf".to_owned())
        );
        assert_eq!(
            rst_request("h", "a@b.c", &Secret::new("x\0"), TWN_CHALLENGE).map(|r| r.url),
            Err(AuthError::NotXml { field: "password" })
        );
    }

    /// A success response shaped like §2.5.2 / Escargot's `RST.token.xml`.
    fn rst_success(tokens: &[(&str, &str)]) -> String {
        let with: Vec<(&str, &str, Option<&str>)> =
            tokens.iter().map(|(a, t)| (*a, *t, None)).collect();
        rst_success_with(&with)
    }

    fn rst_success_with(tokens: &[(&str, &str, Option<&str>)]) -> String {
        let mut body = String::from(
            r#"<?xml version="1.0" encoding="utf-8" ?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><wst:RequestSecurityTokenResponseCollection>"#,
        );
        for (i, (address, token, secret)) in tokens.iter().enumerate() {
            let proof = secret
                .map(|s| format!("<wst:RequestedProofToken><wst:BinarySecret>{s}</wst:BinarySecret></wst:RequestedProofToken>"))
                .unwrap_or_default();
            body.push_str(&format!(
                "\n<wst:RequestSecurityTokenResponse>\n<wst:TokenType>urn:passport:compact</wst:TokenType>\n\
                 <wsp:AppliesTo xmlns:wsa=\"http://schemas.xmlsoap.org/ws/2004/03/addressing\"><wsa:EndpointReference>\n\
                 <wsa:Address>{address}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>\n\
                 <wst:LifeTime><wsu:Created>2026-01-01T00:00:00Z</wsu:Created><wsu:Expires>2026-01-02T00:00:00Z</wsu:Expires></wst:LifeTime>\n\
                 <wst:RequestedSecurityToken>\n<wsse:BinarySecurityToken Id=\"Compact{i}\">{token}</wsse:BinarySecurityToken>\n</wst:RequestedSecurityToken>\n\
                 <wst:RequestedTokenReference><wsse:KeyIdentifier ValueType=\"urn:passport:compact\"></wsse:KeyIdentifier><wsse:Reference URI=\"#Compact{i}\"></wsse:Reference></wst:RequestedTokenReference>\n\
                 {proof}</wst:RequestSecurityTokenResponse>"
            ));
        }
        body.push_str("</wst:RequestSecurityTokenResponseCollection></S:Body></S:Envelope>");
        body
    }

    #[test]
    fn rst_response_ticket_is_matched_by_address_and_unescaped() {
        // The messenger.msn.com response comes second: matched by address, not position.
        let body = rst_success(&[
            ("http://Passport.NET/tb", "t=TBTOKEN&amp;p="),
            ("messenger.msn.com", "t=ABCDEFGHIJKLMNOPQRST+/Y6==&amp;p="),
        ]);
        assert_eq!(
            parse_rst_response(200, &body, TWN_RST_ADDRESS),
            Ok(Secret::new("t=ABCDEFGHIJKLMNOPQRST+/Y6==&p="))
        );
        assert_eq!(
            parse_rst_response(200, &body, "contacts.msn.com"),
            Err(AuthError::NoToken {
                status: 200,
                address: "contacts.msn.com".to_owned()
            })
        );
        // A token that could inject into `USR … TWN S` is refused.
        let bad = rst_success(&[("messenger.msn.com", "t=a&#13;&#10;OUT")]);
        assert!(matches!(
            parse_rst_response(200, &bad, TWN_RST_ADDRESS),
            Err(AuthError::NoToken { .. })
        ));
        let empty = rst_success(&[("messenger.msn.com", " ")]);
        assert!(matches!(
            parse_rst_response(200, &empty, TWN_RST_ADDRESS),
            Err(AuthError::NoToken { .. })
        ));
        assert_eq!(
            parse_rst_response(502, "<html>bad gateway</html>", TWN_RST_ADDRESS),
            Err(AuthError::Unexpected { status: 502 })
        );
    }

    #[test]
    fn rst_faults_are_typed() {
        // Escargot `RST.authfailed.xml` (trimmed), §2.5.2.
        let authfailed = r#"<?xml version="1.0" encoding="utf-8"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault">
  <S:Header><psf:pp><psf:serverVersion>1</psf:serverVersion><psf:authstate>0x80048800</psf:authstate><psf:reqstatus>0x80048823</psf:reqstatus><psf:cookies/><psf:response/></psf:pp></S:Header>
  <S:Fault>
    <faultcode>wsse:FailedAuthentication</faultcode>
    <faultstring>Authentication Failure</faultstring>
  </S:Fault>
</S:Envelope>"#;
        let err = parse_rst_response(200, authfailed, TWN_RST_ADDRESS);
        assert_eq!(
            err,
            Err(AuthError::Fault {
                status: 200,
                code: FaultCode::FailedAuthentication,
                reason: "Authentication Failure".to_owned()
            })
        );
        assert!(err.is_err_and(|e| e.is_wrong_credentials()));
        // Escargot `RST.error.xml`.
        let error = r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Fault><faultcode>S:Client</faultcode><faultstring>Invalid Request</faultstring></S:Fault></S:Envelope>"#;
        assert!(matches!(
            parse_rst_response(500, error, TWN_RST_ADDRESS),
            Err(AuthError::Fault {
                status: 500,
                code: FaultCode::InvalidRequest,
                ..
            })
        ));
        // SOAP 1.2 shape: the subcode is the most specific.
        let soap12 = r#"<s:Envelope><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>wst:FailedAuthentication</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">bad &amp; wrong</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(
            parse_rst_response(403, soap12, TWN_RST_ADDRESS),
            Err(AuthError::Fault {
                status: 403,
                code: FaultCode::FailedAuthentication,
                reason: "bad & wrong".to_owned()
            })
        );
        assert_eq!(
            FaultCode::parse("psf:Weird"),
            FaultCode::Other("psf:Weird".to_owned())
        );
        assert!(AuthError::Rejected { status: 401 }.is_wrong_credentials());
    }

    #[test]
    fn sso_request_asks_for_the_messenger_and_address_book_tokens() {
        let req = sso_rst_request(
            "http://127.0.0.1:1/",
            "bridge@example.com",
            &Secret::new("pw"),
            "MBI_KEY_OLD",
        )
        .expect("a request");
        assert_eq!(req.url, "http://127.0.0.1:1/RST.srf");
        let root = Element::parse(req.body.expose()).expect("the body is XML");
        let asked: Vec<(&str, Option<&str>)> = root
            .find_all("RequestSecurityToken")
            .into_iter()
            .map(|r| {
                let address = r.find("Address").map(Element::text).unwrap_or_default();
                (
                    address,
                    r.find("PolicyReference").and_then(|p| p.attr("URI")),
                )
            })
            .collect();
        assert_eq!(
            asked,
            [
                (PASSPORT_TB_ADDRESS, None),
                (MESSENGER_CLEAR_ADDRESS, Some("MBI_KEY_OLD")),
                (CONTACTS_ADDRESS, Some("MBI")),
            ]
        );
    }

    #[test]
    fn sso_tokens_come_with_their_binary_secret() {
        let body = rst_success_with(&[
            ("http://Passport.NET/tb", "t=TB&amp;p=", None),
            (
                "messengerclear.live.com",
                "t=CLEAR&amp;p=",
                Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"),
            ),
            ("contacts.msn.com", "t=AB&amp;p=", None),
        ]);
        let tokens = parse_rst_tokens(200, &body).expect("tokens");
        let clear = token_for(&tokens, 200, MESSENGER_CLEAR_ADDRESS).expect("messenger");
        assert_eq!(clear.ticket.expose(), "t=CLEAR&p=");
        assert_eq!(
            clear.binary_secret.as_ref().map(Secret::expose),
            Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYX")
        );
        let contacts = token_for(&tokens, 200, CONTACTS_ADDRESS).expect("contacts");
        assert_eq!(contacts.ticket.expose(), "t=AB&p=");
        assert_eq!(contacts.binary_secret, None);
        // Malformed XML with a success status is unexpected, not a panic.
        assert_eq!(
            parse_rst_tokens(200, "<S:Envelope><unclosed>"),
            Err(AuthError::Unexpected { status: 200 })
        );
    }
}
