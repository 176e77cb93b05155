//! What the bridge needs to log a user in again after a restart, encrypted at rest with
//! the key from the config (`bridge.credentials_key`): ChaCha20-Poly1305, a fresh random
//! nonce per record, stored as `nonce || ciphertext`. Plaintext never reaches the store or
//! a log line (`Debug` is redacted). The same box seals the events waiting in the durable
//! queue (a `login <email> <password>` command is one of them), as text:
//! [`SEALED_TEXT`] and the record in base64.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

const NONCE_LEN: usize = 12;

/// How a sealed text starts; text without it was stored before queued events were sealed.
pub const SEALED_TEXT: &str = "sealed:v1:";

/// Why credentials could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("the credentials key must be 64 hex digits (32 bytes)")]
    BadKey,
    #[error("no randomness available for a nonce")]
    Random,
    #[error("stored credentials cannot be decrypted (wrong key or damaged record)")]
    Undecryptable,
}

/// Seals and opens credential records.
#[derive(Clone)]
pub struct CredentialBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for CredentialBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialBox(<key redacted>)")
    }
}

/// An MSN login's secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl CredentialBox {
    /// From the config's 64-hex-digit key.
    pub fn from_hex(key: &str) -> Result<Self, CredentialsError> {
        let key = key.trim();
        if key.len() != 64 || !key.is_ascii() {
            return Err(CredentialsError::BadKey);
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            let pair = key.get(i * 2..i * 2 + 2).ok_or(CredentialsError::BadKey)?;
            *b = u8::from_str_radix(pair, 16).map_err(|_| CredentialsError::BadKey)?;
        }
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    pub fn seal(&self, password: &Password) -> Result<Vec<u8>, CredentialsError> {
        self.seal_bytes(password.expose().as_bytes())
    }

    pub fn open(&self, record: &[u8]) -> Result<Password, CredentialsError> {
        self.open_utf8(record).map(Password)
    }

    /// Seals `text` (a queued event) into text to store.
    pub fn seal_text(&self, text: &str) -> Result<String, CredentialsError> {
        use base64::Engine as _;
        let record = self.seal_bytes(text.as_bytes())?;
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(record);
        Ok(format!("{SEALED_TEXT}{encoded}"))
    }

    /// Opens what [`CredentialBox::seal_text`] stored. Text without the [`SEALED_TEXT`]
    /// mark was stored before queued events were sealed, and is returned as it is.
    pub fn open_text(&self, stored: &str) -> Result<String, CredentialsError> {
        use base64::Engine as _;
        let Some(encoded) = stored.strip_prefix(SEALED_TEXT) else {
            return Ok(stored.to_owned());
        };
        let record = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| CredentialsError::Undecryptable)?;
        self.open_utf8(&record)
    }

    fn seal_bytes(&self, plain: &[u8]) -> Result<Vec<u8>, CredentialsError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| CredentialsError::Random)?;
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .map_err(|_| CredentialsError::Undecryptable)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open_utf8(&self, record: &[u8]) -> Result<String, CredentialsError> {
        if record.len() < NONCE_LEN {
            return Err(CredentialsError::Undecryptable);
        }
        let (nonce, sealed) = record.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| CredentialsError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| CredentialsError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn seal_open_round_trip_without_plaintext() {
        let b = CredentialBox::from_hex(KEY).expect("key");
        let sealed = b.seal(&Password::new("hunter2-secret")).expect("seal");
        assert!(
            !sealed.windows(6).any(|w| w == b"hunter"),
            "no plaintext in the record"
        );
        assert_eq!(b.open(&sealed).expect("open").expose(), "hunter2-secret");
        assert_ne!(
            sealed,
            b.seal(&Password::new("hunter2-secret")).expect("seal"),
            "fresh nonce"
        );
    }

    #[test]
    fn wrong_key_or_damage_is_an_error() {
        let b = CredentialBox::from_hex(KEY).expect("key");
        let other = CredentialBox::from_hex(&KEY.replace("00", "ff")).expect("key");
        let mut sealed = b.seal(&Password::new("pw")).expect("seal");
        assert!(other.open(&sealed).is_err());
        if let Some(last) = sealed.last_mut() {
            *last ^= 1;
        }
        assert!(b.open(&sealed).is_err());
        assert!(b.open(&[1, 2, 3]).is_err());
    }

    #[test]
    fn keys_are_checked_and_redacted() {
        assert!(CredentialBox::from_hex("abc").is_err());
        assert!(CredentialBox::from_hex(&"zz".repeat(32)).is_err());
        let b = CredentialBox::from_hex(KEY).expect("key");
        assert!(!format!("{b:?}").contains("0102"));
        assert_eq!(format!("{:?}", Password::new("pw")), "Password(<redacted>)");
    }

    #[test]
    fn sealed_text_round_trips_and_old_plain_text_still_opens() {
        let b = CredentialBox::from_hex(KEY).expect("key");
        let event = r#"{"type":"message","body":"login bob@example.com hunter2-secret"}"#;
        let sealed = b.seal_text(event).expect("seal");
        assert!(sealed.starts_with(SEALED_TEXT));
        assert!(!sealed.contains("hunter2"), "{sealed}");
        assert_eq!(b.open_text(&sealed).expect("open"), event);
        assert_eq!(b.open_text(event).expect("plain"), event);
        let other = CredentialBox::from_hex(&"ab".repeat(32)).expect("key");
        assert!(other.open_text(&sealed).is_err());
        assert!(b.open_text(&format!("{SEALED_TEXT}not base64!")).is_err());
    }
}
