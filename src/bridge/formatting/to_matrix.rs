//! MSN text to Matrix: `body` is the text as is; `formatted_body` exists only when the
//! message has a visible style, and every character from MSN is escaped in it, so nothing
//! an MSN contact sends is ever interpreted as HTML.

use super::RichText;
use crate::bridge::commands::escape_html;

/// A custom emoticon shown inline: the text it stands for and its `mxc://` picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineImage {
    pub text: String,
    pub mxc: String,
}

/// `(body, formatted_body)` for a message from MSN; every occurrence of an image's text
/// becomes that image (`data-mx-emoticon`, as custom emoji are sent in Matrix).
pub fn to_matrix(message: &RichText, images: &[InlineImage]) -> (String, Option<String>) {
    let body = message.text.clone();
    let style = &message.style;
    let (mut html, has_images) = escape_with_images(&message.text, images);
    if !style.is_visible() && !has_images {
        return (body, None);
    }
    for (on, tag) in [
        (style.strike, "del"),
        (style.underline, "u"),
        (style.italic, "em"),
        (style.bold, "strong"),
    ] {
        if on {
            html = format!("<{tag}>{html}</{tag}>");
        }
    }
    if let Some((r, g, b)) = style.color.filter(|c| *c != (0, 0, 0)) {
        html = format!("<font color=\"#{r:02x}{g:02x}{b:02x}\">{html}</font>");
    }
    (body, Some(html))
}

/// The text escaped as HTML with line breaks, images in place of their texts (the longest
/// text wins where two start at the same place); whether any image was placed.
fn escape_with_images(text: &str, images: &[InlineImage]) -> (String, bool) {
    let mut sorted: Vec<&InlineImage> = images.iter().filter(|i| !i.text.is_empty()).collect();
    sorted.sort_by_key(|i| std::cmp::Reverse(i.text.len()));
    let plain = |segment: &str| escape_html(segment).replace('\n', "<br>");
    let mut html = String::with_capacity(text.len() + 16);
    let mut placed = false;
    let mut rest = text;
    let mut scanned = 0;
    while scanned < rest.len() {
        let here = rest.get(scanned..).unwrap_or_default();
        let found = sorted
            .iter()
            .find_map(|i| here.strip_prefix(i.text.as_str()).map(|after| (i, after)));
        if let Some((image, after)) = found {
            html.push_str(&plain(rest.get(..scanned).unwrap_or_default()));
            let (alt, src) = (escape_html(&image.text), escape_html(&image.mxc));
            html.push_str(&format!(
                "<img data-mx-emoticon src=\"{src}\" alt=\"{alt}\" title=\"{alt}\" height=\"32\">"
            ));
            placed = true;
            rest = after;
            scanned = 0;
        } else {
            scanned += here.chars().next().map_or(1, char::len_utf8);
        }
    }
    html.push_str(&plain(rest));
    (html, placed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::formatting::Style;

    fn to_matrix_plain(message: &RichText) -> (String, Option<String>) {
        to_matrix(message, &[])
    }

    fn image(text: &str, mxc: &str) -> InlineImage {
        InlineImage {
            text: text.into(),
            mxc: mxc.into(),
        }
    }

    #[test]
    fn emoticons_become_inline_images_and_the_rest_stays_escaped() {
        let text = RichText {
            text: "hi (cat)<b> (ca) (cat)\nä".into(),
            style: Style::default(),
        };
        let images = [
            image("(ca", "mxc://x/short"),
            image("(cat)", "mxc://x/cat\""),
        ];
        let (body, html) = to_matrix(&text, &images);
        assert_eq!(body, text.text);
        let cat = "<img data-mx-emoticon src=\"mxc://x/cat&quot;\" alt=\"(cat)\" title=\"(cat)\" height=\"32\">";
        let short =
            "<img data-mx-emoticon src=\"mxc://x/short\" alt=\"(ca\" title=\"(ca\" height=\"32\">";
        assert_eq!(
            html.as_deref(),
            Some(format!("hi {cat}&lt;b&gt; {short}) {cat}<br>ä").as_str())
        );
    }

    #[test]
    fn unused_emoticons_add_no_html() {
        let text = RichText {
            text: "no pictures here".into(),
            style: Style::default(),
        };
        assert_eq!(to_matrix(&text, &[image("(cat)", "mxc://x/c")]).1, None);
        assert_eq!(to_matrix(&text, &[image("", "mxc://x/c")]).1, None);
    }

    #[test]
    fn plain_text_has_no_html() {
        let (body, html) = to_matrix_plain(&RichText {
            text: "hi <b>".into(),
            style: Style::default(),
        });
        assert_eq!(body, "hi <b>");
        assert_eq!(html, None);
    }

    #[test]
    fn styles_wrap_escaped_text() {
        let style = Style {
            bold: true,
            italic: true,
            underline: true,
            strike: true,
            color: Some((255, 0, 16)),
            font: Some("Arial".into()),
        };
        let (body, html) = to_matrix_plain(&RichText {
            text: "a<script>&\nb".into(),
            style,
        });
        assert_eq!(body, "a<script>&\nb");
        assert_eq!(
            html.as_deref(),
            Some(
                "<font color=\"#ff0010\"><strong><em><u><del>a&lt;script&gt;&amp;<br>b</del></u></em></strong></font>"
            )
        );
    }

    /// Whatever an MSN contact sends (text, or an emoticon's shortcut), the HTML holds no
    /// markup but the bridge's own: the style tags, line breaks and emoticon images, with
    /// everything from MSN escaped inside them. No markdown is rendered either: the text
    /// stays as it is in `body`.
    #[test]
    fn nothing_from_msn_becomes_markup() {
        let ours = regex::Regex::new(concat!(
            r##"</?(strong|em|u|del)>|<font color="#[0-9a-f]{6}">|</font>|<br>"##,
            r##"|<img data-mx-emoticon src="[^"<>]*" alt="[^"<>]*" title="[^"<>]*" height="32">"##,
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let hostile = [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "**bold** _it_ [link](javascript:alert(1)) `code` # title",
            "&lt;b&gt; &amp; &#60;i&#62;",
            "\"quoted\" 'single' </font></strong>",
            "<a href=\"https://evil.example\">click</a>",
            "(cat)<b onmouseover=x>(cat)\n<br>",
        ];
        let styles = [
            Style::default(),
            Style {
                bold: true,
                italic: true,
                color: Some((1, 2, 3)),
                ..Style::default()
            },
        ];
        let images = [
            image("(cat)", "mxc://x/c\"><script>"),
            image("<b", "mxc://x/b"),
        ];
        for text in hostile {
            for style in &styles {
                let message = RichText {
                    text: text.into(),
                    style: style.clone(),
                };
                let (body, html) = to_matrix(&message, &images);
                assert_eq!(body, text, "the body is the text as sent");
                let Some(html) = html else { continue };
                let rest = ours.replace_all(&html, "");
                assert!(
                    !rest.contains('<') && !rest.contains('>'),
                    "markup from MSN in {html:?}"
                );
            }
        }
    }

    #[test]
    fn black_is_the_default_colour() {
        let style = Style {
            color: Some((0, 0, 0)),
            ..Style::default()
        };
        assert_eq!(
            to_matrix_plain(&RichText {
                text: "x".into(),
                style
            })
            .1,
            None
        );
    }
}
