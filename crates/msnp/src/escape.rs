//! Percent-encoding of text arguments (MSNP.md §5.6): friendly names, group names,
//! `F=` tokens, msnobj arguments and the `FN=` font field of `X-MMS-IM-Format` (§7.1).
//!
//! Encoding keeps only `A–Z a–z 0–9 - _ . ~ @` and escapes every other byte (space,
//! `%`, CR/LF, punctuation, all bytes ≥ 0x80) as upper-case `%XX`. Decoding turns `%XX`
//! into bytes first and then checks UTF-8 (Escargot relays raw UTF-8, R2M relays the
//! sender's escapes; decoding handles both). `+` is never a space.

use std::fmt::Write as _;

/// Why a percent-encoded argument could not be decoded losslessly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A `%` not followed by two hex digits.
    #[error("bad percent escape at byte {position}")]
    BadEscape {
        /// Byte offset of the `%` in the encoded text.
        position: usize,
    },
    /// The decoded bytes are not UTF-8.
    #[error("decoded text is not UTF-8 (valid up to byte {valid_up_to})")]
    InvalidUtf8 {
        /// Length of the valid UTF-8 prefix of the decoded bytes.
        valid_up_to: usize,
    },
}

/// RFC 3986's unreserved characters.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes `text` with the §5.6 "safe rule" (the unreserved characters and `@`
/// stay). The result never contains spaces, CR, LF or non-ASCII bytes, so it is always
/// a valid single argument.
pub fn encode(text: &str) -> String {
    encode_keeping(text, |b| unreserved(b) || b == b'@')
}

/// Percent-encodes everything but RFC 3986's unreserved characters (`@` too): the
/// msnobj argument of `CHG` byte for byte as clients send it (§8.4), and Passport
/// credentials, where `,`, `%`, `=` and `@` would break the servers' comma-splitting
/// parsers (§2.4.2).
pub fn encode_unreserved(text: &str) -> String {
    encode_keeping(text, unreserved)
}

/// The one percent-encoder: bytes `keep` accepts stay, all others become upper-case `%XX`.
fn encode_keeping(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes into bytes. Strict: a malformed escape is an error.
pub fn decode_bytes(text: &str) -> Result<Vec<u8>, DecodeError> {
    let src = text.as_bytes();
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while let Some(&b) = src.get(i) {
        if b == b'%' {
            let hi = src.get(i + 1).copied().and_then(hex);
            let lo = src.get(i + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => return Err(DecodeError::BadEscape { position: i }),
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// Decodes a percent-encoded argument to a `String`, rejecting bad escapes and
/// non-UTF-8 results (lossless: the caller decides what to do with bad input).
pub fn decode(text: &str) -> Result<String, DecodeError> {
    let bytes = decode_bytes(text)?;
    String::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
        valid_up_to: e.utf8_error().valid_up_to(),
    })
}

/// Tolerant decoding as §5.6 recommends for display: malformed escapes stay literal and
/// invalid UTF-8 becomes U+FFFD. Never fails.
pub fn decode_lossy(text: &str) -> String {
    let src = text.as_bytes();
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while let Some(&b) = src.get(i) {
        let escaped = (b == b'%')
            .then(|| Some((hex(*src.get(i + 1)?)?, hex(*src.get(i + 2)?)?)))
            .flatten();
        match escaped {
            Some((hi, lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_per_safe_rule() {
        assert_eq!(encode("Matrix Bridge"), "Matrix%20Bridge");
        assert_eq!(encode("100%"), "100%25");
        assert_eq!(encode("Renée"), "Ren%C3%A9e");
        assert_eq!(encode("a+b\r\n"), "a%2Bb%0D%0A");
        assert_eq!(encode("alice@example.com"), "alice@example.com");
        assert_eq!(encode("<msnobj/>"), "%3Cmsnobj%2F%3E");
    }

    #[test]
    fn decodes_both_relay_styles() {
        assert_eq!(decode("Ren%C3%A9e").as_deref(), Ok("Renée"));
        assert_eq!(decode("Renée").as_deref(), Ok("Renée"));
        assert_eq!(decode("a+b").as_deref(), Ok("a+b"));
        assert_eq!(decode("%3cmsnobj%2f%3e").as_deref(), Ok("<msnobj/>"));
        assert_eq!(decode("50%"), Err(DecodeError::BadEscape { position: 2 }));
        assert_eq!(decode("%G0"), Err(DecodeError::BadEscape { position: 0 }));
        assert_eq!(
            decode("ok%FF"),
            Err(DecodeError::InvalidUtf8 { valid_up_to: 2 })
        );
        assert_eq!(decode_lossy("50%"), "50%");
        assert_eq!(decode_lossy("ok%FF%20x"), "ok\u{FFFD} x");
        assert_eq!(decode_lossy("%E"), "%E");
    }

    #[test]
    fn round_trips_arbitrary_text() {
        for s in [
            "",
            " ",
            "%%",
            "日本語 テキスト",
            "tab\there",
            "~-_.@",
            "\u{1F600}",
        ] {
            let e = encode(s);
            assert!(e.bytes().all(|b| b.is_ascii_graphic()), "{e}");
            assert_eq!(decode(&e).as_deref(), Ok(s));
        }
    }
}
