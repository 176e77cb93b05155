//! XML for the documents MSNP carries (SOAP envelopes of Passport and the address book,
//! msnobj, UBX/UUX data), read with quick-xml into a small tree and written with
//! [`escape`].
//!
//! Owns: escaping text and attribute values for documents we build; reading a document
//! into [`Element`]s addressed by local name (namespace prefixes are ignored, as servers
//! vary them: `S:`, `soap:`, none), with entity and character references resolved and
//! CDATA kept as text. Comments, processing instructions and the doctype are skipped.
//! Reading is bounded: at most [`MAX_DEPTH`] levels and [`MAX_ELEMENTS`] elements, so
//! a hostile document costs linear work and bounded memory; the caller bounds its
//! length. A malformed document is an [`XmlError`], never a panic. No I/O.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, BytesStart, Event};

/// The deepest nesting [`Element::parse`] accepts (SOAP responses use about 12).
pub const MAX_DEPTH: usize = 64;
/// The most elements [`Element::parse`] accepts (an address book of thousands of
/// contacts has some tens of thousands).
pub const MAX_ELEMENTS: usize = 262_144;
/// The most attributes one element may have (an msnobj has nine).
pub const MAX_ATTRIBUTES: usize = 64;

/// Why a value cannot be written into XML, or a document cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// A character XML 1.0 cannot carry, even as a character reference (NUL, most C0
    /// controls, U+FFFE, U+FFFF).
    #[error("U+{code:04X} cannot be represented in XML 1.0")]
    InvalidChar {
        /// The code point.
        code: u32,
    },
    /// The document is not well-formed.
    #[error("malformed XML at byte {position}: {reason}")]
    Malformed {
        /// Byte offset where reading stopped.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// An attribute given twice in one tag.
    #[error("the attribute {name} is repeated")]
    DuplicateAttribute {
        /// Its name.
        name: String,
    },
    /// The document has no root element.
    #[error("the XML document has no element")]
    Empty,
    /// Deeper than [`MAX_DEPTH`] or more than [`MAX_ELEMENTS`] elements.
    #[error("the XML document is too large (over {limit} {what})")]
    TooLarge {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: usize,
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
    if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
        return Err(XmlError::InvalidChar { code: u32::from(c) });
    }
    let escaped = quick_xml::escape::escape(text);
    if !escaped.contains(['\r', '\n', '\t']) {
        return Ok(escaped.into_owned());
    }
    Ok(escaped
        .replace('\r', "&#13;")
        .replace('\n', "&#10;")
        .replace('\t', "&#9;"))
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

/// Replaces entity and character references in text taken from a document that was not
/// read as XML (a `from-PP` header, say). Text with a broken reference is kept as it is.
pub fn unescape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::unescape(text).unwrap_or(Cow::Borrowed(text))
}

/// An element of a document read by [`Element::parse`]: its local name, attributes
/// (local names, values unescaped), direct text (references resolved, CDATA included)
/// and child elements in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name (`Envelope` for `<S:Envelope>`).
    pub name: String,
    attrs: Vec<(String, String)>,
    text: String,
    /// The byte range of `text` without the white space written around it literally
    /// (white space from a character reference is content).
    trimmed: (usize, usize),
    children: Vec<Element>,
}

/// An element being read, with where its text came from: (end in `text`, written
/// literally).
struct Open {
    element: Element,
    segments: Vec<(usize, bool)>,
}

impl Open {
    fn push(&mut self, piece: &str, literal: bool) {
        self.element.text.push_str(piece);
        self.segments.push((self.element.text.len(), literal));
    }

    /// The element, its trimmed range computed.
    fn close(self) -> Element {
        let Open {
            mut element,
            segments,
        } = self;
        let text = &element.text;
        let mut starts = Vec::with_capacity(segments.len());
        let mut from = 0;
        for (end, literal) in &segments {
            starts.push((from, *end, *literal));
            from = *end;
        }
        let mut start = text.len();
        for (from, end, literal) in &starts {
            let piece = text.get(*from..*end).unwrap_or_default();
            let blank = piece.len() - piece.trim_start().len();
            if !literal || blank < piece.len() {
                start = from + if *literal { blank } else { 0 };
                break;
            }
        }
        let mut end = 0;
        for (from, to, literal) in starts.iter().rev() {
            let piece = text.get(*from..*to).unwrap_or_default();
            let blank = piece.len() - piece.trim_end().len();
            if !literal || blank < piece.len() {
                end = to - if *literal { blank } else { 0 };
                break;
            }
        }
        element.trimmed = if start < end { (start, end) } else { (0, 0) };
        element
    }
}

fn malformed(position: u64, reason: impl ToString) -> XmlError {
    XmlError::Malformed {
        position,
        reason: reason.to_string(),
    }
}

impl Element {
    /// Reads `doc` into its root element.
    pub fn parse(doc: &str) -> Result<Element, XmlError> {
        let mut reader = quick_xml::Reader::from_str(doc);
        // Open elements, innermost last; the root is the first one closed at depth 0.
        let mut open: Vec<Open> = Vec::new();
        let mut count = 0usize;
        loop {
            let position = reader.buffer_position();
            let event = reader.read_event().map_err(|e| malformed(position, e))?;
            match event {
                Event::Start(start) | Event::Empty(start) if open.len() >= MAX_DEPTH => {
                    let _ = start;
                    return Err(XmlError::TooLarge {
                        what: "levels",
                        limit: MAX_DEPTH,
                    });
                }
                Event::Start(start) => {
                    count = Self::counted(count)?;
                    open.push(Open {
                        element: Self::opened(&start, position)?,
                        segments: Vec::new(),
                    });
                }
                Event::Empty(start) => {
                    count = Self::counted(count)?;
                    let element = Self::opened(&start, position)?;
                    match open.last_mut() {
                        Some(parent) => parent.element.children.push(element),
                        None => return Ok(element),
                    }
                }
                Event::End(_) => {
                    let Some(closing) = open.pop() else {
                        return Err(malformed(position, "an end tag without a start"));
                    };
                    let element = closing.close();
                    match open.last_mut() {
                        Some(parent) => parent.element.children.push(element),
                        None => return Ok(element),
                    }
                }
                Event::Text(text) => {
                    if let Some(open) = open.last_mut() {
                        let text = text.xml10_content().map_err(|e| malformed(position, e))?;
                        open.push(&text, true);
                    }
                }
                Event::CData(data) => {
                    if let Some(open) = open.last_mut() {
                        let text = data.decode().map_err(|e| malformed(position, e))?;
                        open.push(&text, false);
                    }
                }
                Event::GeneralRef(reference) => {
                    if let Some(open) = open.last_mut() {
                        let c = Self::resolved(&reference, position)?;
                        open.push(c.encode_utf8(&mut [0; 4]), false);
                    }
                }
                Event::Eof if open.is_empty() => return Err(XmlError::Empty),
                Event::Eof => {
                    return Err(malformed(position, "the document ends inside an element"));
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
    }

    /// Reads only the first tag of `doc`: the element's name and attributes, without
    /// children or text, whether it ends with `/>` or `>` (an msnobj, §8.1).
    pub fn start_tag(doc: &str) -> Result<Element, XmlError> {
        let mut reader = quick_xml::Reader::from_str(doc);
        loop {
            let position = reader.buffer_position();
            match reader.read_event().map_err(|e| malformed(position, e))? {
                Event::Start(start) | Event::Empty(start) => {
                    return Self::opened(&start, position);
                }
                Event::Eof => return Err(XmlError::Empty),
                _ => {}
            }
        }
    }

    fn counted(count: usize) -> Result<usize, XmlError> {
        if count >= MAX_ELEMENTS {
            return Err(XmlError::TooLarge {
                what: "elements",
                limit: MAX_ELEMENTS,
            });
        }
        Ok(count + 1)
    }

    fn opened(start: &BytesStart<'_>, position: u64) -> Result<Element, XmlError> {
        let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
        let mut attrs: Vec<(String, String)> = Vec::new();
        for attr in start.attributes().with_checks(false) {
            let attr = attr.map_err(|e| malformed(position, e))?;
            if attrs.len() >= MAX_ATTRIBUTES {
                return Err(XmlError::TooLarge {
                    what: "attributes",
                    limit: MAX_ATTRIBUTES,
                });
            }
            let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
            if attrs.iter().any(|(name, _)| *name == key) {
                return Err(XmlError::DuplicateAttribute { name: key });
            }
            let value = attr
                .unescape_value()
                .map_err(|e| malformed(position, e))?
                .into_owned();
            attrs.push((key, value));
        }
        Ok(Element {
            name,
            attrs,
            ..Element::default()
        })
    }

    /// The character an entity or character reference stands for.
    fn resolved(reference: &BytesRef<'_>, position: u64) -> Result<char, XmlError> {
        if let Some(c) = reference
            .resolve_char_ref()
            .map_err(|e| malformed(position, e))?
        {
            return if is_xml_char(c) {
                Ok(c)
            } else {
                Err(XmlError::InvalidChar { code: u32::from(c) })
            };
        }
        let name = reference.decode().map_err(|e| malformed(position, e))?;
        quick_xml::escape::resolve_predefined_entity(&name)
            .and_then(|s| s.chars().next())
            .ok_or_else(|| malformed(position, format!("unknown entity &{name};")))
    }

    /// The value of the attribute with local name `local`.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(name, _)| name == local)
            .map(|(_, value)| value.as_str())
    }

    /// Every attribute (local name, value) in document order.
    pub fn attrs(&self) -> &[(String, String)] {
        &self.attrs
    }

    /// The element's own text (not its children's), untrimmed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The element's own text without the white space written around it (white space
    /// written as a character reference stays: it is content); `None` when empty.
    pub fn trimmed_text(&self) -> Option<&str> {
        self.text
            .get(self.trimmed.0..self.trimmed.1)
            .filter(|t| !t.is_empty())
    }

    /// The child elements in document order.
    pub fn children(&self) -> &[Element] {
        &self.children
    }

    /// The first child named `local`.
    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == local)
    }

    /// The children named `local`.
    pub fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == local)
    }

    /// The element reached from this one through children named `path`, in order.
    pub fn path(&self, path: &[&str]) -> Option<&Element> {
        path.iter()
            .try_fold(self, |element, local| element.child(local))
    }

    /// The first element named `local` among this one and its descendants, depth first
    /// in document order.
    pub fn find(&self, local: &str) -> Option<&Element> {
        if self.name == local {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(local))
    }

    /// Every element named `local` among this one and its descendants, in document
    /// order (one inside another is listed too).
    pub fn find_all<'a>(&'a self, local: &str) -> Vec<&'a Element> {
        let mut found = Vec::new();
        let mut stack = vec![self];
        while let Some(element) = stack.pop() {
            if element.name == local {
                found.push(element);
            }
            stack.extend(element.children.iter().rev());
        }
        found
    }
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
        assert_eq!(unescape(&escaped.clone().unwrap_or_default()), text);
        let doc = format!("<a v=\"{0}\">{0}</a>", escaped.unwrap_or_default());
        let a = Element::parse(&doc).expect("parses");
        assert_eq!(a.text(), text);
        assert_eq!(a.attr("v"), Some(text));
        assert_eq!(escape("a\0b"), Err(XmlError::InvalidChar { code: 0 }));
    }

    #[test]
    fn lossy_escape_leaves_out_what_xml_cannot_carry() {
        assert_eq!(escape_lossy("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
        assert_eq!(escape_lossy("a\u{0}b\u{1}c\u{FFFE}"), "abc");
    }

    #[test]
    fn unescape_keeps_broken_text() {
        assert_eq!(unescape("t=A&amp;p="), "t=A&p=");
        assert_eq!(unescape("&#x41;&#66;"), "AB");
        assert_eq!(unescape("a & b"), "a & b");
    }

    #[test]
    fn elements_are_found_by_local_name() {
        let xml = r#"<?xml version="1.0"?><!-- <a:X>no</a:X> --><S:Envelope xmlns:S="s">
            <a:X Id='1' b:URI="?x=1&amp;y=&quot;>&quot;">one &amp; &#x41;</a:X>
            <X><X>in</X></X><a:X/><![CDATA[<a:X>no</a:X>]]></S:Envelope>"#;
        let root = Element::parse(xml).expect("parses");
        assert_eq!(root.name, "Envelope");
        let xs = root.find_all("X");
        assert_eq!(xs.len(), 4);
        assert_eq!(xs[0].trimmed_text(), Some("one & A"));
        assert_eq!(xs[0].attr("URI"), Some("?x=1&y=\">\""));
        assert_eq!(xs[0].attr("Id"), Some("1"));
        assert_eq!(xs[1].trimmed_text(), None);
        assert_eq!(xs[2].text(), "in");
        assert_eq!(root.find("X").map(Element::text), Some("one & A"));
        let outer = root.children_named("X").nth(1);
        assert_eq!(
            outer.and_then(|x| x.path(&["X"])).map(Element::text),
            Some("in")
        );
        assert_eq!(root.path(&["X", "X"]), None);
        assert_eq!(root.trimmed_text(), Some("<a:X>no</a:X>"));
        // Written white space is layout; a character reference is content.
        let t = Element::parse("<t>\n  &#10;&amp;x \n</t>").expect("parses");
        assert_eq!(t.trimmed_text(), Some("\n&x"));
        let blank = Element::parse("<t> \n </t>").expect("parses");
        assert_eq!(blank.trimmed_text(), None);
        let many: String = (0..=MAX_ATTRIBUTES).map(|i| format!(" a{i}='1'")).collect();
        assert!(matches!(
            Element::parse(&format!("<a{many}/>")),
            Err(XmlError::TooLarge {
                what: "attributes",
                ..
            })
        ));
    }

    #[test]
    fn malformed_and_hostile_documents_are_errors() {
        for doc in ["", "<!-- only -->", "text"] {
            assert_eq!(Element::parse(doc), Err(XmlError::Empty), "{doc:?}");
        }
        assert_eq!(
            Element::parse("<a x='1' b:x='2'/>"),
            Err(XmlError::DuplicateAttribute { name: "x".into() })
        );
        for doc in [
            "<a><b>x</a>",
            "<a>",
            "<a x='1",
            "<a>&bogus;</a>",
            "<a>&#0;</a>",
        ] {
            assert!(Element::parse(doc).is_err(), "{doc:?}");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert_eq!(
            Element::parse(&deep),
            Err(XmlError::TooLarge {
                what: "levels",
                limit: MAX_DEPTH
            })
        );
        let wide = format!("<a>{}</a>", "<b/>".repeat(MAX_ELEMENTS));
        assert!(matches!(
            Element::parse(&wide),
            Err(XmlError::TooLarge {
                what: "elements",
                ..
            })
        ));
    }
}
