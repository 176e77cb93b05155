//! Numeric MSNP server errors (MSNP.md §1.4): the typed [`ServerError`] and the
//! description table. Owns nothing else; framing errors live in `frame.rs`.

use bytes::Bytes;

/// A numeric error line from the server, `NNN trid` (§1.4), optionally with the
/// payload some MSNP13+ errors carry (§1.3, [UNCERTAIN] in MSNP.md §13 item 8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server error {code} ({}) for TrID {trid:?}", description(*.code))]
pub struct ServerError {
    /// The three-digit code.
    pub code: u16,
    /// TrID of the failed command (absent only on malformed lines).
    pub trid: Option<u32>,
    /// Payload bytes, only for `NNN trid len` lines in MSNP13+.
    pub payload: Option<Bytes>,
}

impl ServerError {
    /// Human-readable meaning of this error's code.
    pub fn description(&self) -> &'static str {
        description(self.code)
    }
}

/// Meaning of an MSNP error code, for every code MSNP.md §1.4 lists; `"unknown error"`
/// otherwise. Texts follow the table's wording (what servers and clients use them for).
pub fn description(code: u16) -> &'static str {
    match code {
        200 => "syntax error",
        201 => "invalid parameter",
        204 => "invalid network id",
        205 => "invalid user / principal",
        206 => "domain name missing",
        207 => "already logged in",
        208 => "invalid username / principal",
        209 => "friendly name not allowed",
        210 => "list full",
        213 => "invalid rename request",
        215 => "already in list / already in switchboard",
        216 => "not on list / blocked",
        217 => "principal not online",
        218 => "already in that mode",
        219 => "principal is in the opposite list (AL vs BL)",
        223 => "too many groups",
        224 => "invalid group",
        225 => "principal not in group",
        227 => "group not empty",
        228 => "group name already exists",
        229 => "group name too long",
        230 => "cannot remove group 0",
        240 => "empty domain element in ADL/RML",
        241 => "invalid ADL/RML membership or payload",
        280 => "switchboard failed",
        281 => "transfer to switchboard failed",
        282 => "bad P2P data",
        300 => "required field missing",
        302 => "not logged in",
        402 | 403 => "error accessing contact list",
        420 => "invalid account permissions",
        500 => "internal server error",
        501 => "database server error",
        502 => "command disabled",
        509 => "UPS failure",
        510 => "file operation failed",
        511 => "banned",
        540 => "challenge response failed",
        600 => "server is busy",
        601 => "server is unavailable",
        602 => "peer notification server is down",
        603 => "database connection failed",
        604 => "server is going down",
        605 => "server unavailable",
        700 => "could not create connection",
        710 => "bad CVR parameters",
        711 => "write is blocking",
        712 => "session is overloaded",
        713 => "calling too rapidly",
        714 => "too many sessions",
        715 => "not expected",
        717 => "bad friend file",
        731 => "not expected CVR",
        800 => "changing too rapidly",
        910 | 921 => "server too busy",
        911 => "authentication failed",
        913 => "not allowed when offline or hidden",
        920 => "not accepting new users",
        923 => "kids passport without parental consent",
        924 => "passport account not yet verified",
        928 => "bad ticket",
        931 => "account not on this server",
        933 => "invalid circle membership",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_code_has_a_description() {
        let listed = [
            200, 201, 204, 205, 206, 207, 208, 209, 210, 213, 215, 216, 217, 218, 219, 223, 224,
            225, 227, 228, 229, 230, 240, 241, 280, 281, 282, 300, 302, 402, 403, 420, 500, 501,
            502, 509, 510, 511, 540, 600, 601, 602, 603, 604, 605, 700, 710, 711, 712, 713, 714,
            715, 717, 731, 800, 910, 911, 913, 920, 921, 923, 924, 928, 931, 933,
        ];
        for code in listed {
            assert_ne!(description(code), "unknown error", "{code}");
        }
        assert_eq!(description(999), "unknown error");
        let e = ServerError {
            code: 911,
            trid: Some(3),
            payload: None,
        };
        assert_eq!(
            e.to_string(),
            "server error 911 (authentication failed) for TrID Some(3)"
        );
    }
}
