//! The arguments of one MSNP command line (MSNP.md §1.1) in one allocation-free value.
//!
//! Owns the storage of [`Frame::args`](super::Frame::args): the argument text as one
//! shared [`Bytes`] (for parsed lines, a zero-copy slice of the read buffer) plus the
//! byte range of each argument, kept inline for up to eight arguments. Text that is
//! not valid UTF-8 is replaced by an owned lossy copy (§1.1), so every argument reads as
//! `&str`. Must not know what any argument means; no I/O.

use std::fmt;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

/// Arguments stored without a heap allocation for the spans (every line the protocol
/// defines has at most eight arguments after the TrID, e.g. the client's `CVR`).
const INLINE: usize = 8;

/// The arguments of a command line, after the TrID and without a payload length.
///
/// Built by the frame parser from the line itself, or from strings with
/// [`FromIterator`] / [`From<Vec<String>>`]. Compares, hashes and prints as the list of
/// its arguments, whatever the storage.
#[derive(Clone, Default)]
pub struct Args {
    /// The text the spans point into; always valid UTF-8 at every span.
    text: Bytes,
    /// Byte range of each argument in `text`, in order.
    spans: Spans,
}

/// Argument byte ranges: inline (`u16` offsets) while they fit, else on the heap.
#[derive(Clone)]
enum Spans {
    Inline {
        len: u8,
        spans: [(u16, u16); INLINE],
    },
    Heap(Vec<Range<usize>>),
}

impl Default for Spans {
    fn default() -> Self {
        Spans::Inline {
            len: 0,
            spans: [(0, 0); INLINE],
        }
    }
}

impl Spans {
    /// The spans of the whitespace-separated tokens of `text` (§1.1: servers may add
    /// trailing spaces; Escargot splits on any whitespace).
    #[inline(always)]
    fn scan(text: &[u8]) -> Spans {
        let mut spans = Spans::default();
        let mut pos = 0;
        while let Some(rest) = text.get(pos..) {
            let Some(skip) = rest.iter().position(|b| !b.is_ascii_whitespace()) else {
                break;
            };
            let start = pos + skip;
            let end = start + find_space(rest.get(skip..).unwrap_or_default());
            spans.push(start..end);
            pos = end;
        }
        spans
    }

    #[inline]
    fn push(&mut self, range: Range<usize>) {
        if let Spans::Inline { len, spans } = self {
            let short = u16::try_from(range.start)
                .ok()
                .zip(u16::try_from(range.end).ok());
            if let (Some(slot), Some(short)) = (spans.get_mut(usize::from(*len)), short) {
                *slot = short;
                *len += 1;
                return;
            }
        }
        self.push_to_heap(range);
    }

    /// The rare case: more than `INLINE` spans or offsets beyond `u16`.
    #[cold]
    fn push_to_heap(&mut self, range: Range<usize>) {
        if let Spans::Inline { len, spans } = self {
            let heap = spans
                .iter()
                .take(usize::from(*len))
                .map(|&(s, e)| usize::from(s)..usize::from(e))
                .collect();
            *self = Spans::Heap(heap);
        }
        if let Spans::Heap(v) = self {
            v.push(range);
        }
    }

    fn len(&self) -> usize {
        match self {
            Spans::Inline { len, .. } => usize::from(*len),
            Spans::Heap(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> Option<Range<usize>> {
        match self {
            Spans::Inline { len, spans } => spans
                .get(..usize::from(*len))?
                .get(i)
                .map(|&(s, e)| usize::from(s)..usize::from(e)),
            Spans::Heap(v) => v.get(i).cloned(),
        }
    }
}

impl Args {
    /// Splits a command line's argument text at ASCII whitespace (§1.1: servers may add
    /// trailing spaces; Escargot splits on any whitespace). Zero-copy when `text` is
    /// UTF-8; otherwise each argument is decoded lossily into an owned copy.
    pub fn from_line(text: Bytes) -> Args {
        match std::str::from_utf8(&text) {
            Ok(_) => Args {
                spans: Spans::scan(&text),
                text,
            },
            Err(_) => Args::lossy(&text),
        }
    }

    /// An owned copy of `text` with invalid UTF-8 replaced (§1.1), split into arguments.
    /// ASCII whitespace never occurs inside a multi-byte UTF-8 sequence, so this gives
    /// the same arguments as decoding each one by itself.
    fn lossy(text: &[u8]) -> Args {
        let text = Bytes::from(String::from_utf8_lossy(text).into_owned());
        Args {
            spans: Spans::scan(&text),
            text,
        }
    }

    /// The frame parser's cut: the arguments in `buf[text]`, then the first `consumed`
    /// bytes (the whole line, `text.end <= consumed <= buf.len()`) leave `buf`. The text
    /// is split off `buf` without copying when it is UTF-8.
    #[inline(always)]
    pub(crate) fn split_off(buf: &mut BytesMut, text: Range<usize>, consumed: usize) -> Args {
        let bytes = buf.get(text.clone()).unwrap_or_default();
        // Lines are ASCII in practice (§1.1); `is_ascii` is the cheaper check.
        if !bytes.is_ascii() && std::str::from_utf8(bytes).is_err() {
            let args = Args::lossy(bytes);
            buf.advance(consumed);
            return args;
        }
        // The spans are found before the split: its atomic reference count update also
        // lets them be copied into the frame without a store-forwarding stall.
        let spans = Spans::scan(bytes);
        if spans.len() == 0 {
            buf.advance(consumed);
            return Args::default();
        }
        let mut line = buf.split_to(consumed);
        line.advance(text.start);
        line.truncate(text.len());
        Args {
            text: line.freeze(),
            spans,
        }
    }

    /// Argument `i`, if present.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.spans.get(i).map(|r| self.str_at(r))
    }

    /// The last argument, if any.
    pub fn last(&self) -> Option<&str> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// How many arguments there are.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The arguments in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            args: self,
            front: 0,
            back: self.len(),
        }
    }

    fn str_at(&self, r: Range<usize>) -> &str {
        // Construction guarantees UTF-8 at every span; the empty fallback is unreachable.
        self.text
            .get(r)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

/// Index of the first ASCII whitespace byte in `s`, or `s.len()`. Looks at eight bytes
/// at a time: arguments are mostly longer than a few bytes and this runs on every line.
fn find_space(s: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let (words, tail) = s.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let w = u64::from_le_bytes(*word);
        // High bit set in the lowest byte below 0x21 (bytes above it may be flagged
        // spuriously by the borrow, so only the lowest flag is trusted as a candidate).
        let below = w.wrapping_sub(ONES * 0x21) & !w & HIGH;
        if below != 0 {
            let first = (below.trailing_zeros() / 8) as usize;
            let rest = word.get(first..).unwrap_or_default();
            if let Some(j) = rest.iter().position(u8::is_ascii_whitespace) {
                return i * 8 + first + j;
            }
        }
    }
    let base = words.len() * 8;
    base + tail
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(tail.len())
}

/// Iterator over [`Args`], front to back (or back to front).
#[derive(Clone)]
pub struct Iter<'a> {
    args: &'a Args,
    front: usize,
    back: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.front >= self.back {
            return None;
        }
        let item = self.args.get(self.front);
        self.front += 1;
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back.saturating_sub(self.front);
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        self.args.get(self.back)
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Args {
    type Item = &'a str;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Builds arguments from strings, kept exactly as given (even empty ones or ones with
/// spaces, which [`Frame::encode`](super::Frame::encode) then rejects).
impl<S: AsRef<str>> FromIterator<S> for Args {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Args {
        let mut text = String::new();
        let mut spans = Spans::default();
        for arg in iter {
            let start = text.len();
            text.push_str(arg.as_ref());
            spans.push(start..text.len());
        }
        Args {
            text: Bytes::from(text),
            spans,
        }
    }
}

impl From<Vec<String>> for Args {
    fn from(args: Vec<String>) -> Args {
        args.into_iter().collect()
    }
}

impl PartialEq for Args {
    fn eq(&self, other: &Args) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Args {}

impl std::hash::Hash for Args {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for arg in self {
            arg.hash(state);
        }
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for Args {
    fn eq(&self, other: &[S]) -> bool {
        self.iter().eq(other.iter().map(AsRef::as_ref))
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for Args {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for Args {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_any_whitespace_and_ignores_runs() {
        let args = Args::from_line(Bytes::from_static(b"  N=x\tF=y  10 1 \x0c"));
        assert_eq!(args, ["N=x", "F=y", "10", "1"]);
        assert_eq!(args.len(), 4);
        assert_eq!(args.get(1), Some("F=y"));
        assert_eq!(args.get(4), None);
        assert_eq!(args.last(), Some("1"));
        assert_eq!(
            args.iter().rev().collect::<Vec<_>>(),
            ["1", "10", "F=y", "N=x"]
        );
        assert_eq!(args.iter().len(), 4);
    }

    #[test]
    fn empty_lines_have_no_arguments() {
        for line in [&b""[..], b"   ", b"\t"] {
            let args = Args::from_line(Bytes::copy_from_slice(line));
            assert!(args.is_empty(), "{line:?}");
            assert_eq!(args.last(), None);
            assert_eq!(args, Args::default());
        }
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily_per_argument() {
        let args = Args::from_line(Bytes::from_static(b"a\xff \xe2\x82 ok \xc3\xa9"));
        assert_eq!(args, ["a\u{FFFD}", "\u{FFFD}", "ok", "\u{e9}"]);
    }

    #[test]
    fn many_and_long_arguments_spill_to_the_heap() {
        let many: Vec<String> = (0..20).map(|i| format!("a{i}")).collect();
        let line = Bytes::from(many.join(" "));
        assert_eq!(Args::from_line(line), many);
        assert_eq!(Args::from(many.clone()), many);

        let long = "x".repeat(70_000);
        let args = Args::from_line(Bytes::from(format!("a {long} b")));
        assert_eq!(args, ["a", long.as_str(), "b"]);
    }

    #[test]
    fn built_arguments_are_kept_exactly() {
        let args: Args = ["MFN", "Matrix Bridge", ""].into_iter().collect();
        assert_eq!(args.len(), 3);
        assert_eq!(args.get(1), Some("Matrix Bridge"));
        assert_eq!(args.get(2), Some(""));
        assert_ne!(
            args,
            Args::from_line(Bytes::from_static(b"MFN Matrix Bridge"))
        );
    }

    #[test]
    fn find_space_agrees_with_a_byte_by_byte_search() {
        // Every byte value at every position of a word, after and before other bytes
        // (low control bytes and UTF-8 continuation bytes included).
        for len in 0..20 {
            for pos in 0..len {
                for b in 0..=255u8 {
                    for fill in [b'a', 0x01, 0x80, 0xff] {
                        let mut s = vec![fill; len];
                        if let Some(x) = s.get_mut(pos) {
                            *x = b;
                        }
                        let naive = s
                            .iter()
                            .position(u8::is_ascii_whitespace)
                            .unwrap_or(s.len());
                        assert_eq!(find_space(&s), naive, "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn debug_prints_a_list_of_strings() {
        let args: Args = ["a", "b c"].into_iter().collect();
        assert_eq!(format!("{args:?}"), r#"["a", "b c"]"#);
        assert_eq!(format!("{:?}", Args::default()), "[]");
    }
}
