//! Passport responses (MSNP.md §2.4.2–2.4.3, §2.5.2): nexus and login header parsing,
//! the `RST.srf` SOAP response, the XML helpers and the RST request builder. Invariants:
//! URLs come out normalised (normalising again changes nothing); a ticket is never empty
//! and never holds whitespace or controls (it goes verbatim into `USR … TWN S`); any
//! usable token embedded in a success response is found exactly, whatever decoys come
//! first; XML escaping round-trips; the RST request carries the account, password and
//! policy so that they parse back unchanged; a `NotRST.srf` answer gives a ticket only
//! with a success status, and its request's headers carry account and password verbatim
//! (or the request is refused).
#![no_main]

use libfuzzer_sys::fuzz_target;
use msnp::auth::{
    self, LoginResponse, Secret, TWN_RST_ADDRESS, normalize_url, not_rst_request,
    parse_login_response, parse_not_rst_response, parse_passport_urls, parse_rst_response,
    parse_rst_tokens,
    rst_request, rst_twn_policy,
};
use msnp::xml;

fn check_url(url: &str) {
    assert!(url.contains("://"), "{url:?}");
    assert!(!url.bytes().any(|b| b.is_ascii_whitespace()), "{url:?}");
    assert_eq!(
        normalize_url(url, "/").as_deref(),
        Ok(url),
        "not normalised"
    );
}

fn check_ticket(ticket: &Secret) {
    let t = ticket.expose();
    assert!(!t.is_empty());
    assert!(
        !t.chars().any(|c| c.is_whitespace() || c.is_control()),
        "{t:?}"
    );
}

fn success_body(decoy: &str, token: &str) -> String {
    format!(
        "<S:Envelope><S:Body><wst:RequestSecurityTokenResponseCollection>\
         <wst:RequestSecurityTokenResponse><wsa:Address>http://Passport.NET/tb</wsa:Address>\
         <wsse:BinarySecurityToken Id=\"Compact0\">{decoy}</wsse:BinarySecurityToken>\
         </wst:RequestSecurityTokenResponse>\
         <wst:RequestSecurityTokenResponse><wsa:Address> {TWN_RST_ADDRESS}\n</wsa:Address>\
         <wsse:BinarySecurityToken Id=\"Compact1\">\n  {token}\n</wsse:BinarySecurityToken>\
         </wst:RequestSecurityTokenResponse></wst:RequestSecurityTokenResponseCollection>\
         </S:Body></S:Envelope>"
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let status = [200u16, 302, 401, 403, 500][usize::from(mode >> 4) % 5];
    match mode % 6 {
        0 => {
            if let Ok(url) = parse_passport_urls(&text) {
                check_url(&url);
            }
            if let Ok(url) = normalize_url(&text, "/login.srf") {
                check_url(&url);
            }
        }
        1 => {
            let headers: Vec<(String, String)> = text
                .split('\n')
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
                .collect();
            match parse_login_response(status, &headers) {
                Ok(LoginResponse::Ticket(t)) => {
                    assert!(!t.expose().is_empty());
                    assert!((200..300).contains(&status));
                }
                Ok(LoginResponse::Redirect(url)) => check_url(&url),
                Err(_) => {}
            }
            let _ = auth::parse_nexus_response(&headers);
            if let Ok(ticket) = parse_not_rst_response(status, &headers) {
                check_ticket(&ticket);
                assert!((200..300).contains(&status));
            }
            // The NotRST request: the fields go into headers as they are, or not at all.
            let (account, password) = text.split_once('\u{1}').unwrap_or((&text, ""));
            if let Ok(req) = not_rst_request("h.example", account, &Secret::new(password)) {
                let get = |name: &str| {
                    req.headers
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.expose().to_owned())
                };
                assert_eq!(get("X-User").as_deref(), Some(account));
                assert_eq!(get("X-Password").as_deref(), Some(password));
                assert!(!account.contains(['\r', '\n']) && !password.contains(['\r', '\n']));
            }
        }
        2 => {
            // Arbitrary response bodies.
            if let Ok(ticket) = parse_rst_response(status, &text, TWN_RST_ADDRESS) {
                check_ticket(&ticket);
                assert!((200..300).contains(&status));
            }
        }
        3 => {
            // A usable token is found exactly, after an arbitrary decoy.
            let (decoy, token) = text.split_once('\u{1}').unwrap_or(("", &text));
            let (Ok(decoy), Ok(escaped)) = (xml::escape(decoy), xml::escape(token)) else {
                return;
            };
            let body = success_body(&decoy, &escaped);
            let parsed = parse_rst_response(200, &body, TWN_RST_ADDRESS);
            // Literal whitespace around the text is layout; escaped whitespace is not.
            let expected = xml::unescape(escaped.trim());
            let usable = !expected.is_empty()
                && !expected
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control());
            if usable {
                assert_eq!(parsed, Ok(Secret::new(expected)), "{body}");
            } else {
                assert!(parsed.is_err(), "{body}");
            }
        }
        4 => {
            // XML escaping round-trips, and escaped text is inert markup-wise.
            if let Ok(escaped) = xml::escape(&text) {
                assert!(!escaped.contains(['<', '>', '"', '\'']));
                assert_eq!(xml::unescape(&escaped), text);
            }
            // Any document reads into a tree or an error, never a panic.
            if let Ok(root) = xml::Element::parse(&text) {
                for e in root.find_all("a") {
                    let _ = (e.text(), e.trimmed_text(), e.attr("b"));
                }
            }
            let _ = parse_rst_tokens(status, &text);
        }
        _ => {
            // The RST request carries account, password and policy intact.
            let mut fields = text.splitn(3, '\u{1}');
            let account = fields.next().unwrap_or_default();
            let password = fields.next().unwrap_or_default();
            let challenge = fields.next().unwrap_or_default();
            let Ok(req) = rst_request("h.example", account, &Secret::new(password), challenge)
            else {
                return;
            };
            let body = req.body.expose();
            let root = xml::Element::parse(body).expect("the request is XML");
            let get = |name: &str| root.find(name).map(xml::Element::text);
            assert_eq!(get("Username"), Some(account));
            assert_eq!(get("Password"), Some(password));
            let policies = root.find_all("PolicyReference");
            assert_eq!(policies.len(), 1, "{body}");
            assert_eq!(
                policies[0].attr("URI"),
                Some(rst_twn_policy(challenge).as_str())
            );
            assert_eq!(root.find_all("RequestSecurityToken").len(), 2, "{body}");
        }
    }
});
