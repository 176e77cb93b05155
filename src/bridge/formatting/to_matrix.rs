//! MSN text to Matrix: `body` is the text as is; `formatted_body` exists only when the
//! message has a visible style, and every character from MSN is escaped in it, so nothing
//! an MSN contact sends is ever interpreted as HTML.

use super::RichText;
use crate::bridge::commands::escape_html;

/// `(body, formatted_body)` for a message from MSN.
pub fn to_matrix(message: &RichText) -> (String, Option<String>) {
    let body = message.text.clone();
    let style = &message.style;
    if !style.is_visible() {
        return (body, None);
    }
    let mut html = escape_html(&message.text).replace('\n', "<br>");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::formatting::Style;

    #[test]
    fn plain_text_has_no_html() {
        let (body, html) = to_matrix(&RichText {
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
        let (body, html) = to_matrix(&RichText {
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

    #[test]
    fn black_is_the_default_colour() {
        let style = Style {
            color: Some((0, 0, 0)),
            ..Style::default()
        };
        assert_eq!(
            to_matrix(&RichText {
                text: "x".into(),
                style
            })
            .1,
            None
        );
    }
}
