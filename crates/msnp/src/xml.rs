//! Just enough XML for the Passport SOAP endpoints (MSNP.md §2.4.3, §2.5.2): escaping
//! text and attribute values, unescaping entity and character references, and finding
//! elements by local name (namespace prefixes ignored, as servers vary them: `S:`,
//! `soap:`, none).
//!
//! Not a validating parser: comments, processing instructions, `<!DOCTYPE …>` and CDATA
//! sections are skipped, attribute values may contain `>`, and a malformed document
//! yields fewer elements, never a panic. Every scan moves forward, so the work is linear
//! in the input for each lookup. No I/O, no allocation beyond the returned values.

use std::borrow::Cow;

/// Why a value cannot be written into an XML document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// A character XML 1.0 cannot carry, even as a character reference (NUL, most C0
    /// controls, U+FFFE, U+FFFF).
    #[error("U+{code:04X} cannot be represented in XML 1.0")]
    InvalidChar {
        /// The code point.
        code: u32,
    },
}

/// Whether XML 1.0 allows `c` in a document (production `Char`).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

/// Escapes text for element content or a double- or single-quoted attribute value.
/// `&`, `<`, `>`, `"`, `'` become entities; CR, LF and TAB become character references
/// so that XML line-end and attribute-value normalisation cannot change them.
pub fn escape(text: &str) -> Result<String, XmlError> {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if is_xml_char(c) => out.push(c),
            c => return Err(XmlError::InvalidChar { code: u32::from(c) }),
        }
    }
    Ok(out)
}

/// [`escape`] for text that may hold characters XML cannot carry (a user's status
/// message, a configured name): those characters are left out instead of refused.
pub fn escape_lossy(text: &str) -> String {
    if let Ok(escaped) = escape(text) {
        return escaped;
    }
    let carried: String = text.chars().filter(|&c| is_xml_char(c)).collect();
    escape(&carried).unwrap_or_default()
}

/// The character an entity or character reference (the text between `&` and `;`)
/// stands for; `None` for anything unknown or not an XML character.
fn reference(name: &str) -> Option<char> {
    let code = match name {
        "amp" => return Some('&'),
        "lt" => return Some('<'),
        "gt" => return Some('>'),
        "quot" => return Some('"'),
        "apos" => return Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let (digits, radix) = match num.strip_prefix('x') {
                Some(hex) => (hex, 16),
                None => (num, 10),
            };
            if digits.is_empty() || digits.len() > 8 {
                return None;
            }
            if !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            u32::from_str_radix(digits, radix).ok()?
        }
    };
    char::from_u32(code).filter(|&c| is_xml_char(c))
}

/// Replaces entity and character references. An `&` that does not start a known
/// reference is kept literally (lenient: servers are not always well-formed).
pub fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or_default());
        let after = rest.get(amp + 1..).unwrap_or_default();
        // References are short; do not scan far for a `;`.
        let decoded = after
            .char_indices()
            .take(12)
            .find(|&(_, c)| c == ';')
            .and_then(|(semi, _)| Some((reference(after.get(..semi)?)?, semi)));
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = after.get(semi + 1..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Open,
    Close,
    Empty,
}

/// One start, end or empty-element tag found in a document.
#[derive(Debug, Clone, Copy)]
struct Tag<'a> {
    /// The qualified name (`wsse:Password`).
    name: &'a str,
    /// Everything between the name and the closing `>` / `/>`.
    attrs: &'a str,
    kind: TagKind,
    /// Byte offset of `<`.
    start: usize,
    /// Byte offset just after `>`.
    end: usize,
}

/// The part of a qualified name after its prefix.
fn local_name(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

/// The next tag at or after byte `from`, skipping comments, PIs, declarations and
/// CDATA. `None` at the end or when a construct is left open.
fn next_tag(xml: &str, mut from: usize) -> Option<Tag<'_>> {
    loop {
        let lt = from + xml.get(from..)?.find('<')?;
        let rest = xml.get(lt..)?;
        let skip_to = |close: &str| rest.find(close).map(|i| lt + i + close.len());
        if rest.starts_with("<!--") {
            from = skip_to("-->")?;
            continue;
        }
        if rest.starts_with("<![CDATA[") {
            from = skip_to("]]>")?;
            continue;
        }
        if rest.starts_with("<?") {
            from = skip_to("?>")?;
            continue;
        }
        if rest.starts_with("<!") {
            from = skip_to(">")?;
            continue;
        }
        // Find the closing `>`, ignoring any inside quoted attribute values.
        let mut quote = None;
        let mut gt = None;
        for (i, c) in rest.char_indices().skip(1) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '>') => {
                    gt = Some(i);
                    break;
                }
                (None, '<') => break,
                _ => {}
            }
        }
        let Some(gt) = gt else {
            // A stray `<`: look for the next one.
            from = lt + 1;
            continue;
        };
        let inner = rest.get(1..gt)?;
        let (kind, inner) = if let Some(name) = inner.strip_prefix('/') {
            (TagKind::Close, name)
        } else if let Some(body) = inner.strip_suffix('/') {
            (TagKind::Empty, body)
        } else {
            (TagKind::Open, inner)
        };
        let name_len = inner
            .find(|c: char| c.is_ascii_whitespace() || c == '/')
            .unwrap_or(inner.len());
        let name = inner.get(..name_len)?;
        let end = lt + gt + 1;
        if name.is_empty() {
            from = end;
            continue;
        }
        return Some(Tag {
            name,
            attrs: inner.get(name_len..).unwrap_or_default(),
            kind,
            start: lt,
            end,
        });
    }
}

/// An element found by [`elements`]: its attribute text and raw content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    attrs: &'a str,
    /// The raw content between the start and end tags (still escaped, may contain
    /// child elements).
    pub inner: &'a str,
}

impl<'a> Element<'a> {
    /// The unescaped value of attribute `name` (matched by local name).
    pub fn attr(&self, name: &str) -> Option<Cow<'a, str>> {
        let mut rest = self.attrs;
        loop {
            let eq = rest.find('=')?;
            let key = rest.get(..eq)?.trim();
            let after = rest.get(eq + 1..)?.trim_start();
            let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            let body = after.get(1..)?;
            let close = body.find(quote)?;
            if local_name(key) == name {
                return Some(unescape(body.get(..close)?));
            }
            rest = body.get(close + 1..)?;
        }
    }

    /// The unescaped text content, untrimmed (a password may start with a space);
    /// `None` if the element has child elements or other markup.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        if self.inner.contains('<') {
            return None;
        }
        Some(unescape(self.inner))
    }

    /// [`Element::text`] without the literal whitespace around it (pretty-printed
    /// documents); whitespace written as character references is kept.
    pub fn trimmed_text(&self) -> Option<Cow<'a, str>> {
        if self.inner.contains('<') {
            return None;
        }
        Some(unescape(self.inner.trim()))
    }
}

/// Every element whose local name is `local`, in document order, not descending into
/// a match (a nested element of the same name belongs to its outer match). Search
/// stops at the first element left unclosed.
pub fn elements<'a>(xml: &'a str, local: &str) -> Vec<Element<'a>> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(tag) = next_tag(xml, pos) {
        pos = tag.end;
        if tag.kind == TagKind::Close || local_name(tag.name) != local {
            continue;
        }
        if tag.kind == TagKind::Empty {
            found.push(Element {
                attrs: tag.attrs,
                inner: "",
            });
            continue;
        }
        // Find the matching end tag (same qualified name, depth-counted).
        let mut depth = 1usize;
        let mut scan = tag.end;
        let close = loop {
            let Some(t) = next_tag(xml, scan) else {
                break None;
            };
            scan = t.end;
            if t.name != tag.name {
                continue;
            }
            match t.kind {
                TagKind::Open => depth += 1,
                TagKind::Close => {
                    depth -= 1;
                    if depth == 0 {
                        break Some(t);
                    }
                }
                TagKind::Empty => {}
            }
        };
        let Some(close) = close else {
            break;
        };
        found.push(Element {
            attrs: tag.attrs,
            inner: xml.get(tag.end..close.start).unwrap_or_default(),
        });
        pos = close.end;
    }
    found
}

/// The first element whose local name is `local`.
pub fn element<'a>(xml: &'a str, local: &str) -> Option<Element<'a>> {
    elements(xml, local).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips_and_rejects_nul() {
        let text = "p@ss,word&<x>\"y\"'z'\r\n\tÄ😀";
        let escaped = escape(text);
        assert_eq!(
            escaped.as_deref(),
            Ok("p@ss,word&amp;&lt;x&gt;&quot;y&quot;&apos;z&apos;&#13;&#10;&#9;Ä😀")
        );
        assert_eq!(unescape(&escaped.unwrap_or_default()), text);
        assert_eq!(escape("a\0b"), Err(XmlError::InvalidChar { code: 0 }));
    }

    #[test]
    fn lossy_escape_leaves_out_what_xml_cannot_carry() {
        assert_eq!(escape_lossy("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
        assert_eq!(escape_lossy("a\u{0}b\u{1}c\u{FFFE}"), "abc");
    }

    #[test]
    fn unescape_is_lenient() {
        assert_eq!(unescape("t=A&amp;p="), "t=A&p=");
        assert_eq!(unescape("&#x41;&#66;&unknown;&"), "AB&unknown;&");
        assert_eq!(
            unescape("&#0;&#xD800;&#99999999999;"),
            "&#0;&#xD800;&#99999999999;"
        );
    }

    #[test]
    fn finds_elements_by_local_name() {
        let xml = r#"<?xml version="1.0"?><!-- <a:X>no</a:X> --><S:Envelope>
            <a:X Id='1' b:URI="?x=1&amp;y=&quot;>&quot;">one</a:X>
            <X><X>in</X></X><a:X/><![CDATA[<a:X>no</a:X>]]></S:Envelope>"#;
        let xs = elements(xml, "X");
        assert_eq!(xs.len(), 3);
        assert_eq!(xs[0].text().as_deref(), Some("one"));
        assert_eq!(xs[0].attr("URI").as_deref(), Some("?x=1&y=\">\""));
        assert_eq!(xs[0].attr("Id").as_deref(), Some("1"));
        assert_eq!(xs[1].inner, "<X>in</X>");
        assert_eq!(xs[1].text(), None);
        assert_eq!(xs[2].inner, "");
        assert_eq!(elements("<a><b>x</b>", "a"), Vec::new());
        assert_eq!(element("<<b>y</b>", "b").map(|e| e.inner), Some("y"));
    }
}
