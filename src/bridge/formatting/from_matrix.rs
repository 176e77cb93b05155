//! Matrix to MSN: the HTML of a message (sanitised with ruma-html, reply fallbacks
//! removed) becomes readable plain text: paragraphs and line breaks as new lines, list
//! items with bullets, quotes with `> `, links as `text (url)`, mentions as the name
//! shown. A style (bold, italic, underline, strike, colour) is kept when it covers all of
//! the text, since MSN styles whole messages.

use ruma::html::{Html, NodeRef, SanitizerConfig};

use super::{RichText, Style};

/// The MSN form of a Matrix message with `body` and, if any, HTML `formatted_body`.
pub fn from_matrix(body: &str, html: Option<&str>) -> RichText {
    let Some(html) = html else {
        return RichText {
            text: strip_reply_fallback(body).to_owned(),
            style: Style::default(),
        };
    };
    let doc = Html::parse(html);
    doc.sanitize_with(
        &SanitizerConfig::compat()
            .remove_reply_fallback()
            .remove_elements(["script", "style", "head", "title"]),
    );
    let mut walker = Walker::default();
    for child in doc.children() {
        walker.node(&child, Active::default());
    }
    let text = walker.out.trim_matches('\n').to_owned();
    let styled = walker.styled_chars > 0 && walker.styled_chars == walker.total_chars;
    let style = match (styled, walker.common) {
        (true, Some(active)) => Style {
            bold: active.bold,
            italic: active.italic,
            underline: active.underline,
            strike: active.strike,
            color: active.color,
            font: None,
        },
        _ => Style::default(),
    };
    RichText { text, style }
}

/// Drops the `> <@user> quoted` lines (and the blank line after) that clients put at the
/// start of a plain-text reply.
fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> ") {
        return body;
    }
    let mut rest = body;
    while let Some(line_end) = rest.find('\n') {
        if !rest.starts_with("> ") {
            break;
        }
        rest = rest.get(line_end + 1..).unwrap_or("");
    }
    if rest.starts_with("> ") {
        return body; // all quote: not a fallback
    }
    rest.strip_prefix('\n').unwrap_or(rest)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Active {
    bold: bool,
    italic: bool,
    underline: bool,
    strike: bool,
    color: Option<(u8, u8, u8)>,
}

#[derive(Default)]
struct Walker {
    out: String,
    /// The style every styled text run shared so far.
    common: Option<Active>,
    styled_chars: usize,
    total_chars: usize,
    /// A prefix for the next line (quotes).
    quote_depth: usize,
}

impl Walker {
    fn newline(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn push_text(&mut self, text: &str, active: Active) {
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.out.push('\n');
            }
            if self.quote_depth > 0
                && (self.out.is_empty() || self.out.ends_with('\n'))
                && !line.is_empty()
            {
                self.out.push_str(&"> ".repeat(self.quote_depth));
            }
            self.out.push_str(line);
        }
        let counted = text.chars().filter(|c| !c.is_whitespace()).count();
        if counted == 0 {
            return;
        }
        self.total_chars += counted;
        if active != Active::default() {
            self.common = Some(match self.common {
                None => active,
                Some(c) => Active {
                    bold: c.bold && active.bold,
                    italic: c.italic && active.italic,
                    underline: c.underline && active.underline,
                    strike: c.strike && active.strike,
                    color: if c.color == active.color {
                        c.color
                    } else {
                        None
                    },
                },
            });
            self.styled_chars += counted;
        }
    }

    fn node(&mut self, node: &NodeRef, mut active: Active) {
        if let Some(text) = node.as_text() {
            let text = text.borrow().to_string();
            self.push_text(&text, active);
            return;
        }
        let Some(element) = node.as_element() else {
            for child in node.children() {
                self.node(&child, active);
            }
            return;
        };
        let name: &str = &element.name.local;
        let attr = |wanted: &str| {
            element
                .attrs
                .borrow()
                .iter()
                .find(|a| &*a.name.local == wanted)
                .map(|a| a.value.to_string())
        };
        match name {
            "br" => {
                self.out.push('\n');
                return;
            }
            "b" | "strong" => active.bold = true,
            "i" | "em" => active.italic = true,
            "u" => active.underline = true,
            "del" | "s" | "strike" => active.strike = true,
            "font" | "span" => {
                if let Some(color) = attr("data-mx-color")
                    .or_else(|| attr("color"))
                    .and_then(|c| parse_color(&c))
                {
                    active.color = Some(color);
                }
            }
            "p" | "div" | "pre" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol"
            | "table" | "tr" => {
                self.newline();
            }
            "li" => {
                self.newline();
                self.out.push_str("• ");
            }
            "blockquote" => {
                self.newline();
                self.quote_depth += 1;
                for child in node.children() {
                    self.node(&child, active);
                }
                self.quote_depth -= 1;
                self.newline();
                return;
            }
            "a" => {
                let href = attr("href").unwrap_or_default();
                let start = self.out.len();
                for child in node.children() {
                    self.node(&child, active);
                }
                let shown = self.out.get(start..).unwrap_or("").to_owned();
                // Mentions and permalinks read as their text; other links keep the URL.
                if !href.is_empty()
                    && !href.starts_with("https://matrix.to/")
                    && shown.trim() != href
                {
                    self.out.push_str(&format!(" ({href})"));
                }
                return;
            }
            _ => {}
        }
        for child in node.children() {
            self.node(&child, active);
        }
        if matches!(
            name,
            "p" | "div" | "pre" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "li" | "tr"
        ) {
            self.newline();
        }
    }
}

/// `#rrggbb` to `(r, g, b)`.
fn parse_color(value: &str) -> Option<(u8, u8, u8)> {
    let hex = value.trim().strip_prefix('#')?;
    if hex.len() != 6 || !hex.is_ascii() {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(html: &str) -> String {
        from_matrix("fallback", Some(html)).text
    }

    #[test]
    fn plain_body_is_kept_and_reply_fallback_dropped() {
        assert_eq!(from_matrix("hello", None).text, "hello");
        assert_eq!(
            from_matrix("> <@a:b> original\n> more\n\nmy answer", None).text,
            "my answer"
        );
        assert_eq!(from_matrix("> just a quote", None).text, "> just a quote");
    }

    #[test]
    fn whole_message_style_is_kept() {
        let r = from_matrix("x", Some("<strong><em>all of it</em></strong>"));
        assert_eq!(r.text, "all of it");
        assert!(r.style.bold && r.style.italic && !r.style.underline);
        let r = from_matrix(
            "x",
            Some("<font data-mx-color=\"#ff8000\"><u>hi</u></font>"),
        );
        assert_eq!(r.style.color, Some((255, 128, 0)));
        assert!(r.style.underline);
        let r = from_matrix("x", Some("some <b>bold</b> words"));
        assert_eq!(r.text, "some bold words");
        assert_eq!(
            r.style,
            Style::default(),
            "partial style is not applied to the whole"
        );
    }

    #[test]
    fn structure_becomes_readable_text() {
        assert_eq!(text("<p>one</p><p>two</p>"), "one\ntwo");
        assert_eq!(text("a<br>b"), "a\nb");
        assert_eq!(text("<ul><li>x</li><li>y</li></ul>"), "• x\n• y");
        assert_eq!(
            text("<blockquote>quoted</blockquote>reply"),
            "> quoted\nreply"
        );
        assert_eq!(
            text("see <a href=\"https://example.org\">this</a>"),
            "see this (https://example.org)"
        );
        assert_eq!(
            text("<a href=\"https://example.org\">https://example.org</a>"),
            "https://example.org"
        );
    }

    #[test]
    fn replies_and_mentions_are_reduced() {
        let html = "<mx-reply><blockquote><a href=\"https://matrix.to/#/!r/$e\">In reply to</a> <a href=\"https://matrix.to/#/@a:b\">@a:b</a><br>original</blockquote></mx-reply>hi <a href=\"https://matrix.to/#/@alice:localhost\">Alice</a>!";
        assert_eq!(text(html), "hi Alice!");
    }

    #[test]
    fn scripts_and_unknown_tags_do_not_leak() {
        assert_eq!(text("<script>alert(1)</script>safe"), "safe");
        assert_eq!(text("<marquee>moving</marquee>"), "moving");
        assert_eq!(text("1 &lt; 2 &amp;&amp; 3 &gt; 2"), "1 < 2 && 3 > 2");
    }
}
