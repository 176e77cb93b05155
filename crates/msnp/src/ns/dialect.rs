//! What differs between the MSNP versions the notification-server machine speaks
//! (MSNP.md §2, §4, §5, §12.1): one question per difference, so the machine asks "does
//! this dialect sign in with SSO" rather than comparing version numbers throughout.

use std::ops::RangeInclusive;

/// The versions the machine can speak.
pub const SUPPORTED_VERSIONS: RangeInclusive<u8> = 8..=18;

/// A negotiated protocol version, seen as the features it implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect(pub u8);

/// Where a presence line (`ILN`/`NLN`) puts the network id of the address (§5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkField {
    /// MSNP8–13: no network id.
    None,
    /// MSNP14–17: an argument after the address (`email 1 friendly …`).
    Argument,
    /// MSNP18: a prefix of the address (`1:email`).
    Prefix,
}

impl Dialect {
    /// Single sign-on (`USR SSO`, §2.5) rather than Tweener (`USR TWN`, §2.4).
    pub fn signs_in_with_sso(self) -> bool {
        self.0 >= 15
    }

    /// The lists live in the SOAP address book, sent with `ADL` (§4.5), not `SYN`.
    pub fn lists_from_address_book(self) -> bool {
        self.0 >= 13
    }

    /// Offline messages: the server keeps messages to offline people (RSI and `Store2`,
    /// §15.1–§15.2).
    pub fn has_offline_messages(self) -> bool {
        self.0 >= 13
    }

    /// Circles (group chats on the notification server, §15.4).
    pub fn has_circles(self) -> bool {
        self.0 >= 18
    }

    /// Several points of presence: a machine GUID in `USR SSO S`, `caps:capsex` in
    /// `CHG`, endpoint data in `UUX` (§2.5.1, §5.2, §15.3).
    pub fn has_endpoints(self) -> bool {
        self.0 >= 16
    }

    /// Where presence lines carry the network id.
    pub fn network_field(self) -> NetworkField {
        match self.0 {
            ..=13 => NetworkField::None,
            14..=17 => NetworkField::Argument,
            _ => NetworkField::Prefix,
        }
    }

    /// `USR … OK` carries the friendly name, and `SYN` a list version (MSNP8–9).
    pub fn has_list_versions(self) -> bool {
        self.0 < 10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_follow_the_version_table() {
        let sso: Vec<u8> = SUPPORTED_VERSIONS
            .filter(|&v| Dialect(v).signs_in_with_sso())
            .collect();
        assert_eq!(sso, [15, 16, 17, 18]);
        assert!(!Dialect(12).lists_from_address_book() && Dialect(13).lists_from_address_book());
        assert!(!Dialect(15).has_endpoints() && Dialect(16).has_endpoints());
        assert_eq!(Dialect(13).network_field(), NetworkField::None);
        assert_eq!(Dialect(17).network_field(), NetworkField::Argument);
        assert_eq!(Dialect(18).network_field(), NetworkField::Prefix);
        assert!(Dialect(9).has_list_versions() && !Dialect(10).has_list_versions());
    }
}
