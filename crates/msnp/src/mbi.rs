//! The MBI (`MBI_KEY_OLD`) response of the MSNP15+ single sign-on (MSNP.md §2.5.3): the
//! blob a client sends in `USR trid SSO S <ticket> <blob>`, proving it holds the binary
//! secret the RST response issued for `messengerclear.live.com`.
//!
//! Sans-IO: the 8-byte IV is the caller's randomness. Escargot recomputes the MAC and the
//! ciphertext with the secret it issued and refuses a blob that differs (mandatory from
//! MSNP16 on).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;
type TripleDesCbc = cbc::Encryptor<des::TdesEde3>;

/// The label of the key that signs the nonce.
const HASH_LABEL: &[u8] = b"WS-SecureConversationSESSION KEY HASH";
/// The label of the key that encrypts the nonce.
const ENCRYPTION_LABEL: &[u8] = b"WS-SecureConversationSESSION KEY ENCRYPTION";

/// The blob's header fields (u32 LE each): its size, the crypt mode, `CALG_3DES`,
/// `CALG_SHA1`, the IV length and the hash length; the ciphertext length follows.
const HEADER: [u32; 6] = [28, 1, 0x6603, 0x8004, 8, 20];

/// Longest nonce accepted (the servers send 64 characters).
pub const MAX_NONCE: usize = 1024;

/// Why no MBI response can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MbiError {
    /// The binary secret is not base64.
    #[error("the binary secret is not base64")]
    SecretNotBase64,
    /// The binary secret is empty.
    #[error("the binary secret is empty")]
    EmptySecret,
    /// The nonce is longer than [`MAX_NONCE`].
    #[error("the nonce has {len} bytes, more than {MAX_NONCE}")]
    NonceTooLong { len: usize },
    /// HMAC refused a key (it takes keys of any length, so this does not happen).
    #[error("HMAC-SHA1 refused the key")]
    Key,
}

/// HMAC-SHA1 of the concatenated `parts`, keyed with `key`.
fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Result<[u8; 20], MbiError> {
    let mut mac = <HmacSha1 as Mac>::new_from_slice(key).map_err(|_| MbiError::Key)?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().into())
}

/// `h2 ‖ h4[..4]` of MSNP.md §2.5.3 step 1: a 24-byte 3DES key from `key` and `label`.
fn derive(key: &[u8], label: &[u8]) -> Result<[u8; 24], MbiError> {
    let h1 = hmac_sha1(key, &[label])?;
    let h2 = hmac_sha1(key, &[&h1, label])?;
    let h3 = hmac_sha1(key, &[&h1])?;
    let h4 = hmac_sha1(key, &[&h3, label])?;
    let mut out = [0u8; 24];
    for (slot, byte) in out.iter_mut().zip(h2.iter().chain(h4.iter())) {
        *slot = *byte;
    }
    Ok(out)
}

/// The base64 MBI response for `nonce` (the text of `USR … SSO S <policy> <nonce>`, taken
/// as its bytes) with the RST response's base64 `binary_secret`, encrypted with `iv`.
pub fn response(binary_secret: &str, nonce: &str, iv: [u8; 8]) -> Result<String, MbiError> {
    let secret = STANDARD
        .decode(binary_secret.trim())
        .map_err(|_| MbiError::SecretNotBase64)?;
    if secret.is_empty() {
        return Err(MbiError::EmptySecret);
    }
    let nonce = nonce.as_bytes();
    if nonce.len() > MAX_NONCE {
        return Err(MbiError::NonceTooLong { len: nonce.len() });
    }
    let key2 = derive(&secret, HASH_LABEL)?;
    let key3 = derive(&secret, ENCRYPTION_LABEL)?;
    let mac = hmac_sha1(&key2, &[nonce])?;
    let ciphertext =
        TripleDesCbc::new(&key3.into(), &iv.into()).encrypt_padded_vec_mut::<Pkcs7>(nonce);
    let mut blob = Vec::with_capacity(28 + 8 + 20 + ciphertext.len());
    for field in HEADER {
        blob.extend_from_slice(&field.to_le_bytes());
    }
    let ciphertext_len = u32::try_from(ciphertext.len()).unwrap_or(u32::MAX);
    blob.extend_from_slice(&ciphertext_len.to_le_bytes());
    blob.extend_from_slice(&iv);
    blob.extend_from_slice(&mac);
    blob.extend_from_slice(&ciphertext);
    Ok(STANDARD.encode(blob))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
    const NONCE: &str = "8CLhG/xfgYZ7TyRQ/jIAWyDmd/w4R4GF2yKLS6tYrnjzi4cFag/Nr+hxsfg5zlCf";
    const IV: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// MSNP.md §2.5.4, computed there with Python and with the openssl CLI.
    #[test]
    fn the_worked_vector() {
        let secret = STANDARD.decode(SECRET).unwrap();
        assert_eq!(
            hex(&derive(&secret, HASH_LABEL).unwrap()),
            "06af2ac1f46df3fde6e65fef60a13bd21eabb69f09a542c0"
        );
        assert_eq!(
            hex(&derive(&secret, ENCRYPTION_LABEL).unwrap()),
            "2dd0114b936beb17cc1d7fa10191010bb4b7b487404c43e3"
        );
        let blob = response(SECRET, NONCE, IV).unwrap();
        assert_eq!(
            blob,
            "HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAAAECAwQFBgcID1yG3ouDEzCxJn07RBHE\
             bAUjU3WlV5p9F2FTlOrflG0B30EUM3h2JvX151lR9oZptsoLWpT0olpXaLh/su4d9rCe\
             /T2lsHnJB/A2oSVepW/akm5ZjNwdfKEujZo="
        );
        assert_eq!(blob.len(), 172);
        let raw = STANDARD.decode(&blob).unwrap();
        assert_eq!(
            hex(&raw[36..56]),
            "0f5c86de8b831330b1267d3b4411c46c05235375"
        );
        assert_eq!(
            hex(&raw[56..]),
            "a5579a7d17615394eadf946d01df411433787626f5f5e75951f68669b6ca0b5a\
             94f4a25a5768b87fb2ee1df6b09efd3da5b079c907f036a1255ea56fda926e59\
             8cdc1d7ca12e8d9a"
        );
    }

    #[test]
    fn padding_follows_the_nonce_length() {
        // PKCS#5: a nonce of 60 bytes gets 4 bytes of padding, 64 bytes a whole block.
        let short = STANDARD
            .decode(response(SECRET, &NONCE[..60], IV).unwrap())
            .unwrap();
        assert_eq!(short.len(), 28 + 8 + 20 + 64);
        assert_eq!(&short[24..28], &64u32.to_le_bytes());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            response("not base64!", NONCE, IV),
            Err(MbiError::SecretNotBase64)
        );
        assert_eq!(response("", NONCE, IV), Err(MbiError::EmptySecret));
        let long = "x".repeat(MAX_NONCE + 1);
        assert_eq!(
            response(SECRET, &long, IV),
            Err(MbiError::NonceTooLong { len: MAX_NONCE + 1 })
        );
    }
}
