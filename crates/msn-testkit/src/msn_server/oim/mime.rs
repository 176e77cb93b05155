//! Reading what a `Store2` request carries the way Escargot's Python reads it (MSNP.md
//! §15.2.1): the `Content` MIME headers (`email.parser`, compat32), the friendly name's
//! RFC 2047 words (`email.header.decode_header`, first part only), the lenient base64
//! of `binascii.a2b_base64` and the run-id pattern. Only parsing; no policy.

/// The headers of a MIME block (everything up to the first empty line) in order, as
/// written: the value without the white space after the colon, continuation lines kept.
/// Reading stops at a line that is no header, as Python's parser does.
pub(crate) fn headers(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.split('\n') {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some((_, value)) => {
                    value.push('\n');
                    value.push_str(line);
                    continue;
                }
                None => break,
            }
        }
        let Some((name, value)) = line.split_once(':') else {
            break;
        };
        if name.is_empty() || !name.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            break;
        }
        out.push((
            name.to_owned(),
            value.trim_start_matches([' ', '\t']).to_owned(),
        ));
    }
    out
}

/// The first header named `name` (case-insensitive), as `Message.get` finds it.
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What `decode_header(value)[0]` gives.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FirstWord {
    /// No encoded word at all: Python hands back the text as `str`, and Escargot's
    /// `.decode` on it fails (a bare HTTP 500).
    NotEncoded,
    /// A `B` word that is no base64 (`HeaderParseError`).
    Broken,
    /// The first run of the decoded header: bytes and the charset (lower-cased; `None`
    /// for text outside any word).
    Decoded {
        bytes: Vec<u8>,
        charset: Option<String>,
    },
}

/// A piece of a header line: plain text, or an encoded word (text, encoding, charset).
enum Piece<'a> {
    Plain(&'a str),
    Word(&'a str, char, String),
}

/// The next `=?charset?B|Q?text?=` in `s`: (start, end, charset, encoding, text).
fn next_word(s: &str) -> Option<(usize, usize, &str, char, &str)> {
    let mut from = 0;
    while let Some(at) = s.get(from..).and_then(|rest| rest.find("=?")) {
        let start = from + at;
        let found = (|| {
            let rest = s.get(start + 2..)?;
            let q1 = rest.find('?')?;
            let charset = rest.get(..q1)?;
            let after = rest.get(q1 + 1..)?;
            let mut chars = after.chars();
            let encoding = chars.next().filter(|c| "qQbB".contains(*c))?;
            let after = chars.as_str().strip_prefix('?')?;
            let end_rel = after.find("?=")?;
            let text = after.get(..end_rel)?;
            if text.contains('\n') {
                return None;
            }
            let end = s.len() - after.len() + end_rel + 2;
            Some((start, end, charset, encoding, text))
        })();
        if found.is_some() {
            return found;
        }
        from = start + 2;
    }
    None
}

/// `decode_header(value)[0]` (Python 3 `email.header`).
pub(crate) fn first_word(value: &str) -> FirstWord {
    if next_word(value).is_none() {
        return FirstWord::NotEncoded;
    }
    let mut pieces: Vec<Piece<'_>> = Vec::new();
    for line in value.lines() {
        let mut rest = line;
        let mut first = true;
        loop {
            let found = next_word(rest);
            let plain_end = found.map_or(rest.len(), |(start, ..)| start);
            let mut plain = rest.get(..plain_end).unwrap_or_default();
            if first {
                plain = plain.trim_start();
                first = false;
            }
            if !plain.is_empty() {
                pieces.push(Piece::Plain(plain));
            }
            let Some((_, end, charset, encoding, text)) = found else {
                break;
            };
            pieces.push(Piece::Word(
                text,
                encoding.to_ascii_lowercase(),
                charset.to_lowercase(),
            ));
            rest = rest.get(end..).unwrap_or_default();
        }
    }
    // White space between two words goes.
    let is_word = |p: Option<&Piece<'_>>| matches!(p, Some(Piece::Word(..)));
    let mut keep = vec![true; pieces.len()];
    for n in 2..pieces.len() {
        let between_blank = matches!(pieces.get(n - 1), Some(Piece::Plain(t)) if t.chars().all(char::is_whitespace));
        if is_word(pieces.get(n))
            && is_word(pieces.get(n - 2))
            && between_blank
            && let Some(k) = keep.get_mut(n - 1)
        {
            *k = false;
        }
    }
    let mut decoded: Vec<(Vec<u8>, Option<String>)> = Vec::new();
    for (piece, keep) in pieces.into_iter().zip(keep) {
        if !keep {
            continue;
        }
        match piece {
            Piece::Plain(text) => decoded.push((raw_unicode_escape(text), None)),
            Piece::Word(text, 'q', charset) => {
                decoded.push((raw_unicode_escape(&q_decode(text)), Some(charset)));
            }
            Piece::Word(text, _, charset) => {
                let mut padded = text.to_owned();
                let missing = padded.len() % 4;
                if missing != 0 {
                    padded.push_str("===".get(..4 - missing).unwrap_or_default());
                }
                match a2b_base64(&padded) {
                    Some(bytes) => decoded.push((bytes, Some(charset))),
                    None => return FirstWord::Broken,
                }
            }
        }
    }
    // Runs of the same charset are joined (plain runs with a space); the first counts.
    let mut iter = decoded.into_iter();
    let Some((mut bytes, charset)) = iter.next() else {
        return FirstWord::NotEncoded;
    };
    for (next, next_charset) in iter {
        if next_charset != charset {
            break;
        }
        if charset.is_none() {
            bytes.push(b' ');
        }
        bytes.extend(next);
    }
    FirstWord::Decoded { bytes, charset }
}

/// Python's `raw-unicode-escape` encoding of `text`.
fn raw_unicode_escape(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u32::from(c) {
            code @ 0..=0xff => out.push(u8::try_from(code).unwrap_or(b'?')),
            code @ 0x100..=0xffff => out.extend(format!("\\u{code:04x}").bytes()),
            code => out.extend(format!("\\U{code:08x}").bytes()),
        }
    }
    out
}

/// `email.quoprimime.header_decode`: `_` is a space, `=XX` a byte (as a Latin-1
/// character).
fn q_decode(text: &str) -> String {
    let text = text.replace('_', " ");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find('=') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let after = rest.get(at + 1..).unwrap_or_default();
        let hex = after
            .get(..2)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(char::from(byte));
                rest = after.get(2..).unwrap_or_default();
            }
            None => {
                out.push('=');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `binascii.a2b_base64` (not strict): characters outside the alphabet are skipped and
/// a complete padding ends the data; a dangling group is an error (`None`).
pub(crate) fn a2b_base64(text: &str) -> Option<Vec<u8>> {
    let value = |b: u8| -> Option<u8> {
        match b {
            b'A'..=b'Z' => Some(b - b'A'),
            b'a'..=b'z' => Some(b - b'a' + 26),
            b'0'..=b'9' => Some(b - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut quad, mut left, mut pads) = (0u8, 0u8, 0u8);
    for b in text.bytes() {
        if b == b'=' {
            if quad >= 2 {
                pads += 1;
                if quad + pads >= 4 {
                    return Some(out);
                }
            }
            continue;
        }
        let Some(v) = value(b) else {
            continue;
        };
        pads = 0;
        match quad {
            0 => {
                quad = 1;
                left = v;
            }
            1 => {
                quad = 2;
                out.push((left << 2) | (v >> 4));
                left = v & 0x0f;
            }
            2 => {
                quad = 3;
                out.push((left << 4) | (v >> 2));
                left = v & 0x03;
            }
            _ => {
                quad = 0;
                out.push((left << 6) | v);
                left = 0;
            }
        }
    }
    (quad == 0).then_some(out)
}

/// Text from `bytes` in `charset` as Python's `bytes.decode` reads it, for the charsets
/// a friendly name comes in; `None` for bytes not valid in it or a charset this server
/// does not know (both an unhandled exception, HTTP 500, on Escargot).
pub(crate) fn decode_charset(bytes: &[u8], charset: &str) -> Option<String> {
    match normalized(charset).as_str() {
        "utf8" | "u8" => String::from_utf8(bytes.to_vec()).ok(),
        "usascii" | "ascii" => bytes
            .is_ascii()
            .then(|| String::from_utf8_lossy(bytes).into_owned()),
        "iso88591" | "latin1" | "l1" | "iso885911987" => {
            Some(bytes.iter().copied().map(char::from).collect())
        }
        _ => None,
    }
}

/// `text` in `charset` (as `str.encode`), for the charsets [`decode_charset`] knows.
pub(crate) fn encode_charset(text: &str, charset: &str) -> Vec<u8> {
    match normalized(charset).as_str() {
        "iso88591" | "latin1" | "l1" | "iso885911987" => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect(),
        _ => text.as_bytes().to_vec(),
    }
}

fn normalized(charset: &str) -> String {
    charset
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Escargot's run-id check: `^\{?` and a GUID (8-4-4-4-12 hex digits) at the start;
/// anything may follow.
pub(crate) fn starts_with_guid(value: &str) -> bool {
    let inner = value.strip_prefix('{').unwrap_or(value);
    let mut rest = inner.as_bytes();
    for (i, len) in [8usize, 4, 4, 4, 12].into_iter().enumerate() {
        let Some(group) = rest.get(..len) else {
            return false;
        };
        if !group.iter().all(u8::is_ascii_hexdigit) {
            return false;
        }
        rest = rest.get(len..).unwrap_or_default();
        if i < 4 {
            match rest.split_first() {
                Some((b'-', tail)) => rest = tail,
                _ => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_as_python_does() {
        let h = headers("MIME-Version: 1.0\nX-A:  two\n  folded\nbad line\nX-B: 3\n");
        assert_eq!(
            h,
            vec![
                ("MIME-Version".to_owned(), "1.0".to_owned()),
                ("X-A".to_owned(), "two\n  folded".to_owned()),
            ]
        );
        assert_eq!(header(&h, "mime-version"), Some("1.0"));
        assert_eq!(header(&h, "X-B"), None);
    }

    #[test]
    fn words_decode_like_decode_header() {
        let word = |bytes: &[u8], charset: Option<&str>| FirstWord::Decoded {
            bytes: bytes.to_vec(),
            charset: charset.map(str::to_owned),
        };
        assert_eq!(
            first_word("=?utf-8?B?TWF0cml4IEJyaWRnZQ==?="),
            word(b"Matrix Bridge", Some("utf-8"))
        );
        assert_eq!(first_word("=?UTF-8?b?QWxp?="), word(b"Ali", Some("utf-8")));
        // Missing padding is added.
        assert_eq!(
            first_word("=?utf-8?B?QWxpY2U?="),
            word(b"Alice", Some("utf-8"))
        );
        assert_eq!(
            first_word("=?utf-8?Q?A_b=C3=A4?="),
            word("A bä".as_bytes(), Some("utf-8"))
        );
        // Adjacent words of one charset join.
        assert_eq!(
            first_word("=?utf-8?B?QQ==?= =?utf-8?B?Qg==?="),
            word(b"AB", Some("utf-8"))
        );
        // Plain text before a word is the first part.
        assert_eq!(first_word("Hi =?utf-8?B?QQ==?="), word(b"Hi ", None));
        assert_eq!(first_word("Alice"), FirstWord::NotEncoded);
        assert_eq!(first_word(""), FirstWord::NotEncoded);
        assert_eq!(first_word("=?utf-8?B?Q?="), FirstWord::Broken);
    }

    #[test]
    fn base64_is_lenient_like_binascii() {
        assert_eq!(a2b_base64("U2Vl\nIHlv dQ=="), Some(b"See you".to_vec()));
        assert_eq!(a2b_base64("QQ==QkJC"), Some(b"A".to_vec()));
        assert_eq!(a2b_base64("QQ"), None);
        assert_eq!(a2b_base64("QUJDR"), None);
    }

    #[test]
    fn run_ids_and_charsets() {
        assert!(starts_with_guid("{3A5F1C2E-7B6D-4E8F-9A0B-1C2D3E4F5A6B}"));
        assert!(starts_with_guid("3a5f1c2e-7b6d-4e8f-9a0b-1c2d3e4f5a6b"));
        assert!(!starts_with_guid("3A5F1C2E-7B6D-4E8F-9A0B"));
        assert!(!starts_with_guid("None"));
        assert_eq!(decode_charset(&[0xc3, 0xa4], "UTF-8"), Some("ä".to_owned()));
        assert_eq!(decode_charset(&[0xc3], "utf-8"), None);
        assert_eq!(decode_charset(&[0xe4], "iso-8859-1"), Some("ä".to_owned()));
        assert_eq!(encode_charset("ä", "iso-8859-1"), vec![0xe4]);
        assert_eq!(decode_charset(b"x", "koi8-r"), None);
    }
}
