//! Helpers for tests and the load program that drive a real Synapse (`scripts/synapse-up.sh`).

use hmac::{Hmac, Mac};

/// The `registration_shared_secret` that `scripts/synapse-up.sh` configures.
pub const SHARED_SECRET: &str = "test_shared_secret";

/// The `mac` of a shared-secret registration (`POST /_synapse/admin/v1/register`):
/// hex HMAC-SHA1 over `nonce\0user\0password\0admin|notadmin`.
pub fn registration_mac(
    secret: &str,
    nonce: &str,
    user: &str,
    password: &str,
    admin: bool,
) -> String {
    // HMAC accepts a key of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC takes keys of any length")
    };
    let role = if admin { "admin" } else { "notadmin" };
    mac.update(format!("{nonce}\0{user}\0{password}\0{role}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_matches_openssl() {
        // printf 'n1\0bob\0pw\0notadmin' | openssl dgst -sha1 -hmac test_shared_secret
        assert_eq!(
            registration_mac(SHARED_SECRET, "n1", "bob", "pw", false),
            "5d08293b5e78054fa174bf9e009aeaed78d8592a"
        );
    }
}
