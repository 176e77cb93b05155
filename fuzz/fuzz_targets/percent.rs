//! Percent-encoding (MSNP.md §5.6): encode output is a safe single argument that decodes
//! back exactly; strict and lossy decoding agree whenever strict decoding succeeds; a
//! reported bad escape points at a `%`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msnp::escape::{self, DecodeError};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    let encoded = escape::encode(&text);
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~@%".contains(&b)),
        "unsafe byte in {encoded:?}"
    );
    assert_eq!(escape::decode(&encoded).as_deref(), Ok(&*text));
    assert_eq!(escape::decode_lossy(&encoded), text);

    match escape::decode(&text) {
        Ok(decoded) => {
            assert_eq!(escape::decode_lossy(&text), decoded);
            assert_eq!(escape::decode(&escape::encode(&decoded)), Ok(decoded));
        }
        Err(DecodeError::BadEscape { position }) => {
            assert_eq!(text.as_bytes().get(position), Some(&b'%'));
            let _ = escape::decode_lossy(&text);
        }
        Err(DecodeError::InvalidUtf8 { valid_up_to }) => {
            let bytes = escape::decode_bytes(&text).expect("escapes were valid");
            assert!(valid_up_to < bytes.len());
            assert_eq!(escape::decode_lossy(&text), String::from_utf8_lossy(&bytes));
        }
    }
});
