//! The TLS crypto of every HTTP client the bridge makes (the homeserver, Passport and
//! the address book): rustls with *ring*, installed once as the process default.
//!
//! reqwest is built without a provider of its own (`rustls-no-provider`): its default,
//! aws-lc-rs, is a C library several times the size of *ring*, and the pages of the
//! binary are most of the bridge's resident memory (README, Performance).

use std::sync::Once;

/// Makes *ring* the process's rustls provider, unless one is installed already (then that
/// one serves). Call before building an HTTP client.
pub fn install_crypto_provider() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // An `Err` means another provider was installed first: it is used instead.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
