//! Message text between the two networks, in the core's own terms: [`RichText`] is plain
//! text with the whole-message style MSN can carry (MSN formats a message as a whole:
//! font, bold, italic, underline, strikethrough, one colour). `to_matrix` renders it as
//! Matrix `body` and HTML `formatted_body`, escaping everything; `from_matrix` reduces
//! Matrix HTML (sanitised by ruma-html) to readable text and the style it had throughout.

mod from_matrix;
mod to_matrix;

pub use from_matrix::from_matrix;
pub use to_matrix::{InlineImage, to_matrix};

/// Text with a whole-message style.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RichText {
    pub text: String,
    pub style: Style,
}

/// The style MSN can give a whole message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Style {
    pub bold: bool,
    pub italic: bool,
    pub underline: bool,
    pub strike: bool,
    /// `(red, green, blue)`.
    pub color: Option<(u8, u8, u8)>,
    pub font: Option<String>,
}

impl Style {
    /// Whether the style shows anything in Matrix HTML (fonts are not rendered there).
    pub fn is_visible(&self) -> bool {
        self.bold
            || self.italic
            || self.underline
            || self.strike
            || self.color.is_some_and(|c| c != (0, 0, 0))
    }
}
