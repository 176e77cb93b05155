//! The core's identifiers: an MSN address ([`MsnAddress`]), what names a portal
//! ([`PortalKey`]), and the Matrix IDs of the bridge's puppets: an MSN address becomes a
//! localpart by `=xx` escaping (the mautrix convention), so any address maps to a Matrix
//! user ID and back. `alice@hotmail.com` -> `@msn_alice=40hotmail.com:example.org`.

use std::fmt;

use ruma::OwnedUserId;

use crate::config::USERID_MARKER;

/// An MSN account's address (`name@domain`), lowercased: MSN compares addresses without
/// case, and so does every map of the bridge keyed by one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsnAddress(String);

impl MsnAddress {
    /// An address a user typed: `name@domain.tld`, no spaces; `None` otherwise.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let plausible = text.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !text.contains(char::is_whitespace)
        });
        plausible.then(|| Self(text.to_lowercase()))
    }

    /// An address as the MSN server names an account (lowercased, not otherwise checked:
    /// the server names its own accounts, and other networks' addresses vary).
    pub fn from_server(text: &str) -> Self {
        Self(text.to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MsnAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// [`MsnAddress::from_server`].
impl From<&str> for MsnAddress {
    fn from(text: &str) -> Self {
        Self::from_server(text)
    }
}

impl AsRef<str> for MsnAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for MsnAddress {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// What names a portal: the Matrix user whose MSN login sees the chat, and the chat's key
/// (the contact's address, or `group:<id>`, see `remote::Chat::key`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortalKey {
    pub receiver: OwnedUserId,
    pub chat: String,
}

/// Escapes `address` for a localpart: `a-z 0-9 . _ -` stay, everything else (including
/// `=`, `@` and uppercase, after lowercasing) becomes `=` and two hex digits per UTF-8 byte.
pub fn escape_address(address: &str) -> String {
    let mut out = String::with_capacity(address.len() + 8);
    for b in address.to_lowercase().bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => out.push(char::from(b)),
            other => out.push_str(&format!("={other:02x}")),
        }
    }
    out
}

/// The inverse of [`escape_address`]; `None` if `escaped` is not such an escape.
pub fn unescape_address(escaped: &str) -> Option<String> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'=' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The puppet's user ID for `address`, from the username template and the server name.
pub fn puppet_mxid(template: &str, domain: &str, address: &str) -> String {
    format!(
        "@{}:{domain}",
        template.replace(USERID_MARKER, &escape_address(address))
    )
}

/// The MSN address of a puppet user ID, if `mxid` is one made by `template` on `domain`.
pub fn address_of_puppet(template: &str, domain: &str, mxid: &str) -> Option<String> {
    let (prefix, suffix) = template.split_once(USERID_MARKER)?;
    let local = mxid
        .strip_prefix('@')?
        .strip_suffix(domain)?
        .strip_suffix(':')?;
    let escaped = local.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if escaped.is_empty() {
        return None;
    }
    unescape_address(escaped)
}

/// A machine GUID (MSNP.md §2.5.1) from 16 random bytes: `{8-4-4-4-12}` lower-case hex
/// (Escargot compares some forms of it case-sensitively, §15.3.1), marked as a random
/// (version 4) UUID.
pub fn machine_guid(mut random: [u8; 16]) -> String {
    random[6] = (random[6] & 0x0f) | 0x40;
    random[8] = (random[8] & 0x3f) | 0x80;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let part = |range: std::ops::Range<usize>| hex.get(range).unwrap_or_default();
    format!(
        "{{{}-{}-{}-{}-{}}}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lowercased_and_typed_ones_checked() {
        assert_eq!(
            MsnAddress::parse(" Bob@Hotmail.com ").map(|a| a.to_string()),
            Some("bob@hotmail.com".to_owned())
        );
        for bad in [
            "bob",
            "@hotmail.com",
            "bob@localhost",
            "bob smith@hotmail.com",
        ] {
            assert_eq!(MsnAddress::parse(bad), None, "{bad}");
        }
        assert_eq!(
            MsnAddress::from_server("Alice@Example.COM").as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn addresses_escape_and_round_trip() {
        assert_eq!(escape_address("Alice@Hotmail.com"), "alice=40hotmail.com");
        assert_eq!(escape_address("a=b+c@x.org"), "a=3db=2bc=40x.org");
        assert_eq!(escape_address("é@x"), "=c3=a9=40x");
        for a in [
            "alice@hotmail.com",
            "a=b+c@x.org",
            "é@x",
            "under_score-dash.dot@x",
        ] {
            assert_eq!(unescape_address(&escape_address(a)).as_deref(), Some(a));
        }
        assert_eq!(unescape_address("bad=zz"), None);
        assert_eq!(unescape_address("short=4"), None);
        assert_eq!(unescape_address("=ff=fe"), None, "not UTF-8");
    }

    #[test]
    fn puppet_ids_round_trip_through_the_template() {
        let id = puppet_mxid("msn_{userid}", "example.org", "Bob@MSN.com");
        assert_eq!(id, "@msn_bob=40msn.com:example.org");
        assert_eq!(
            address_of_puppet("msn_{userid}", "example.org", &id).as_deref(),
            Some("bob@msn.com")
        );
        assert_eq!(
            address_of_puppet("msn_{userid}", "example.org", "@msnbot:example.org"),
            None
        );
        assert_eq!(
            address_of_puppet("msn_{userid}", "example.org", "@msn_x:other.org"),
            None
        );
        assert_eq!(
            address_of_puppet("x{userid}_msn", "h", "@xbob=40a.b_msn:h").as_deref(),
            Some("bob@a.b")
        );
        assert_eq!(address_of_puppet("msn_{userid}", "h", "@msn_:h"), None);
    }

    #[test]
    fn machine_guids_have_the_form_servers_check() {
        let guid = machine_guid([0xab; 16]);
        assert_eq!(guid, "{abababab-abab-4bab-abab-abababababab}");
        let inner = guid.trim_start_matches('{').trim_end_matches('}');
        let lens: Vec<usize> = inner.split('-').map(str::len).collect();
        assert_eq!(lens, [8, 4, 4, 4, 12]);
    }
}
