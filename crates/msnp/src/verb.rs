//! The `Verb` of an MSNP command line (MSNP.md §1.1): three ASCII letters/digits, or a
//! three-digit error number (§1.4). Owns verb validation and the well-known constants.
//! Unknown three-letter verbs are ordinary values, never errors.

use std::fmt;

/// A command verb such as `MSG`, or a numeric error code such as `911`.
///
/// Stored inline (no allocation); unknown verbs are kept as data.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// A three-character command made of ASCII letters and digits, not all digits.
    Command([u8; 3]),
    /// A three-digit error number replacing the verb (§1.4).
    Error(u16),
}

macro_rules! verbs {
    ($($name:ident),* $(,)?) => {
        impl Verb {
            $(
                #[doc = concat!("The `", stringify!($name), "` command.")]
                #[allow(
                    clippy::indexing_slicing,
                    reason = "evaluated at compile time: a name shorter than three letters fails the build"
                )]
                pub const $name: Verb = Verb::Command({
                    let b = stringify!($name).as_bytes();
                    [b[0], b[1], b[2]]
                });
            )*
        }
    };
}

verbs!(
    ACK, ADC, ADD, ADG, ADL, ANS, BLP, BPR, BYE, CAL, CHG, CHL, CVR, FLN, FQY, GCF, GTC, ILN, IPG,
    IRO, JOI, LSG, LST, MSG, NAK, NFY, NLN, NOT, OUT, PNG, PRP, PUT, QNG, QRY, REA, REG, REM, RML,
    RMG, RNG, SBP, SBS, SDG, SYN, UBM, UBN, UBX, URL, USR, UUM, UUN, UUX, VER, XFR,
);

impl Verb {
    /// Parses a verb token: exactly three ASCII alphanumerics. All digits gives
    /// [`Verb::Error`]; letters keep their case (servers only send upper case, §1.1).
    /// Returns `None` for anything else.
    pub fn parse(token: &[u8]) -> Option<Verb> {
        let [a, b, c] = *<&[u8; 3]>::try_from(token).ok()?;
        if !(a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() && c.is_ascii_alphanumeric()) {
            return None;
        }
        if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() {
            let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            return Some(Verb::Error(code));
        }
        Some(Verb::Command([a, b, c]))
    }

    /// A numeric error verb; `None` unless `code` has exactly three digits (100..=999).
    pub fn error(code: u16) -> Option<Verb> {
        (100..=999).contains(&code).then_some(Verb::Error(code))
    }

    /// The command text, e.g. `"MSG"`; `"ERR"` for numeric errors (use [`fmt::Display`]
    /// for the number).
    pub fn as_str(&self) -> &str {
        match self {
            // Command bytes are checked ASCII alphanumerics, so this never fails.
            Verb::Command(b) => std::str::from_utf8(b).unwrap_or("???"),
            Verb::Error(_) => "ERR",
        }
    }

    /// Whether this is a numeric error (§1.4).
    pub fn is_error(&self) -> bool {
        matches!(self, Verb::Error(_))
    }

    /// Writes the wire form (`MSG`, `911`) into `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Verb::Command(b) => out.extend_from_slice(b),
            Verb::Error(code) => out.extend_from_slice(format!("{code:03}").as_bytes()),
        }
    }
}

impl TryFrom<&str> for Verb {
    type Error = InvalidVerb;
    fn try_from(s: &str) -> Result<Self, InvalidVerb> {
        Verb::parse(s.as_bytes()).ok_or_else(|| InvalidVerb { raw: s.to_owned() })
    }
}

/// A verb string that is not three ASCII letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("verb {raw:?} is not three ASCII letters or digits")]
pub struct InvalidVerb {
    /// The rejected text.
    pub raw: String,
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verb::Command(_) => f.write_str(self.as_str()),
            Verb::Error(code) => write!(f, "{code:03}"),
        }
    }
}

impl fmt::Debug for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verb({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_errors() {
        assert_eq!(Verb::parse(b"MSG"), Some(Verb::MSG));
        assert_eq!(Verb::parse(b"911"), Some(Verb::Error(911)));
        assert_eq!(Verb::parse(b"007"), Some(Verb::Error(7)));
        assert_eq!(Verb::parse(b"ZZ9"), Some(Verb::Command(*b"ZZ9")));
        assert_eq!(Verb::parse(b"MS"), None);
        assert_eq!(Verb::parse(b"MSGS"), None);
        assert_eq!(Verb::parse(b"M G"), None);
        assert_eq!(Verb::parse("Mé".as_bytes()), None);
        assert_eq!(Verb::MSG.to_string(), "MSG");
        assert_eq!(Verb::Error(7).to_string(), "007");
        assert_eq!(Verb::try_from("VER"), Ok(Verb::VER));
        assert!(Verb::try_from("VERB").is_err());
        assert_eq!(Verb::error(99), None);
        assert_eq!(Verb::error(911), Some(Verb::Error(911)));
    }
}
