//! The MSN object descriptor `<msnobj …/>` (MSNP.md §8): parse, build, SHA1D/SHA1C and
//! the percent-encoded form used as a `CHG`/`ILN`/`NLN` argument (§8.4, §5.4).
//!
//! Parsing is lenient about attribute order, quoting style and unknown attributes
//! (§8.1) and strict about length and the attributes the transfer needs. A wrong SHA1C
//! is never an error (§8.3: many real objects do not verify); pictures are identified
//! by SHA1D.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

use crate::escape;
use crate::xml::XmlError;

/// Longest msnobj text accepted. WLM objects with `stamp`/`avatarid` run to ~1 KB.
pub const MAX_MSNOBJ_LEN: usize = 4096;

/// Object type of a custom emoticon (§8.2).
pub const TYPE_EMOTICON: u32 = 2;
/// Object type of a static display picture (§8.2).
pub const TYPE_DISPLAY_PICTURE: u32 = 3;

/// Why an msnobj text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsnObjectError {
    /// Longer than [`MAX_MSNOBJ_LEN`].
    #[error("msnobj is {len} bytes, more than {max}")]
    TooLong {
        /// Length of the text.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Does not start with `<msnobj`.
    #[error("not an msnobj element")]
    NotMsnObj,
    /// Attribute syntax is broken at this byte offset (missing `=`, quote, or `/>`).
    #[error("malformed msnobj attribute at byte {position}")]
    Malformed {
        /// Byte offset in the text.
        position: usize,
    },
    /// The same attribute twice.
    #[error("msnobj attribute {name} repeated")]
    Duplicate {
        /// The attribute name.
        name: String,
    },
    /// A required attribute is absent.
    #[error("msnobj attribute {0} missing")]
    Missing(&'static str),
    /// A numeric attribute is not a decimal number.
    #[error("msnobj attribute {name} is not a number: {raw:?}")]
    BadNumber {
        /// `Size` or `Type`.
        name: &'static str,
        /// The raw value.
        raw: String,
    },
    /// The percent-encoded form has a bad escape or is not UTF-8.
    #[error("bad percent-encoding in msnobj: {0}")]
    Encoding(#[from] escape::DecodeError),
    /// A base64 `Context` (§10.2) could not be decoded to text.
    #[error("msnobj context is not base64 UTF-8 text")]
    BadContext,
}

/// A parsed or built MSN object (§8.1). Values are stored unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsnObject {
    /// Account of the owner (`Creator`).
    pub creator: String,
    /// Size of the data in bytes (`Size`).
    pub size: u64,
    /// Object type (`Type`, §8.2).
    pub kind: u32,
    /// Opaque cache file name (`Location`), `0` for WLM 8+.
    pub location: String,
    /// base64 of a NUL-terminated UTF-16LE string (`Friendly`), kept as sent.
    pub friendly: String,
    /// base64(SHA-1(data)) (`SHA1D`), the identity of the data.
    pub sha1d: String,
    /// Descriptor checksum (`SHA1C`), absent in some objects.
    pub sha1c: Option<String>,
}

/// base64(SHA-1(data)), the `SHA1D` value (§8.3).
pub fn sha1_base64(data: &[u8]) -> String {
    STANDARD.encode(Sha1::digest(data))
}

/// base64 of `text` as UTF-16LE including a terminating NUL (the `Friendly` value).
pub fn encode_friendly(text: &str) -> String {
    let mut raw = Vec::with_capacity(text.len() * 2 + 2);
    for unit in text.encode_utf16() {
        raw.extend_from_slice(&unit.to_le_bytes());
    }
    raw.extend_from_slice(&[0, 0]);
    STANDARD.encode(raw)
}

impl MsnObject {
    /// Builds the descriptor for `data` with SHA1D and SHA1C computed (§8.3).
    pub fn for_data(
        creator: &str,
        kind: u32,
        location: &str,
        friendly: &str,
        data: &[u8],
    ) -> MsnObject {
        let mut obj = MsnObject {
            creator: creator.to_owned(),
            size: data.len() as u64,
            kind,
            location: location.to_owned(),
            friendly: encode_friendly(friendly),
            sha1d: sha1_base64(data),
            sha1c: None,
        };
        obj.sha1c = Some(obj.compute_sha1c());
        obj
    }

    /// The SHA1C this descriptor should carry (§8.3): names and raw values concatenated.
    pub fn compute_sha1c(&self) -> String {
        let text = format!(
            "Creator{}Size{}Type{}Location{}Friendly{}SHA1D{}",
            self.creator, self.size, self.kind, self.location, self.friendly, self.sha1d
        );
        sha1_base64(text.as_bytes())
    }

    /// Whether SHA1C is present and correct. Informational only (§8.3).
    pub fn sha1c_valid(&self) -> bool {
        self.sha1c.as_deref() == Some(self.compute_sha1c().as_str())
    }

    /// Whether `data` has this object's size and SHA1D.
    pub fn matches_data(&self, data: &[u8]) -> bool {
        data.len() as u64 == self.size && sha1_base64(data) == self.sha1d
    }

    /// The `Friendly` text decoded from base64 UTF-16LE, without its NUL; `None` if
    /// it does not decode.
    pub fn friendly_text(&self) -> Option<String> {
        let raw = STANDARD.decode(self.friendly.as_bytes()).ok()?;
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|p| {
                u16::from_le_bytes([
                    p.first().copied().unwrap_or(0),
                    p.get(1).copied().unwrap_or(0),
                ])
            })
            .collect();
        let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
        String::from_utf16(units.get(..end)?).ok()
    }

    /// The XML text, attributes in the §8.1 order.
    pub fn to_xml(&self) -> String {
        let mut out = format!(
            "<msnobj Creator=\"{}\" Size=\"{}\" Type=\"{}\" Location=\"{}\" Friendly=\"{}\" SHA1D=\"{}\"",
            crate::xml::escape_lossy(&self.creator),
            self.size,
            self.kind,
            crate::xml::escape_lossy(&self.location),
            crate::xml::escape_lossy(&self.friendly),
            crate::xml::escape_lossy(&self.sha1d)
        );
        if let Some(c) = &self.sha1c {
            out.push_str(&format!(" SHA1C=\"{}\"", crate::xml::escape_lossy(c)));
        }
        out.push_str("/>");
        out
    }

    /// The percent-encoded XML used as a `CHG` argument (§8.4).
    pub fn to_url_encoded(&self) -> String {
        crate::escape::encode_unreserved(&self.to_xml())
    }

    /// Parses a percent-encoded msnobj argument (`CHG`/`ILN`/`NLN`).
    pub fn parse_url_encoded(arg: &str) -> Result<MsnObject, MsnObjectError> {
        if arg.len() > MAX_MSNOBJ_LEN * 3 {
            return Err(MsnObjectError::TooLong {
                len: arg.len(),
                max: MAX_MSNOBJ_LEN * 3,
            });
        }
        MsnObject::parse(&escape::decode(arg)?)
    }

    /// Parses a base64 MSNSLP `Context` (§10.2), with or without a trailing NUL (§13).
    /// Returns the decoded text too, trailing NUL and whitespace removed.
    pub fn parse_context(context: &str) -> Result<(MsnObject, String), MsnObjectError> {
        if context.len() > MAX_MSNOBJ_LEN * 2 {
            return Err(MsnObjectError::TooLong {
                len: context.len(),
                max: MAX_MSNOBJ_LEN * 2,
            });
        }
        let cleaned: String = context.chars().filter(|c| !c.is_whitespace()).collect();
        let raw = STANDARD
            .decode(cleaned.as_bytes())
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(cleaned.trim_end_matches('='))
            })
            .map_err(|_| MsnObjectError::BadContext)?;
        let text = String::from_utf8(raw).map_err(|_| MsnObjectError::BadContext)?;
        let text = text
            .trim_end_matches(|c: char| c == '\0' || c.is_whitespace())
            .to_owned();
        let obj = MsnObject::parse(&text)?;
        Ok((obj, text))
    }

    /// Parses the XML text of an msnobj (§8.1) with quick-xml, leniently: any attribute order, single
    /// or double quotes, unknown attributes ignored, `/>` or `>` as the end.
    pub fn parse(text: &str) -> Result<MsnObject, MsnObjectError> {
        if text.len() > MAX_MSNOBJ_LEN {
            return Err(MsnObjectError::TooLong {
                len: text.len(),
                max: MAX_MSNOBJ_LEN,
            });
        }
        let element = crate::xml::Element::start_tag(text).map_err(|e| match e {
            XmlError::DuplicateAttribute { name } => MsnObjectError::Duplicate { name },
            XmlError::Malformed { position, .. } => MsnObjectError::Malformed {
                position: usize::try_from(position).unwrap_or(usize::MAX),
            },
            _ => MsnObjectError::NotMsnObj,
        })?;
        if element.name != "msnobj" {
            return Err(MsnObjectError::NotMsnObj);
        }
        let mut attrs: Vec<(String, String)> = element.attrs().to_vec();
        let mut take = |name: &'static str| -> Option<String> {
            let pos = attrs.iter().position(|(n, _)| *n == name)?;
            Some(attrs.swap_remove(pos).1)
        };
        let creator = take("Creator").ok_or(MsnObjectError::Missing("Creator"))?;
        let size_raw = take("Size").ok_or(MsnObjectError::Missing("Size"))?;
        let kind_raw = take("Type").ok_or(MsnObjectError::Missing("Type"))?;
        let location = take("Location").unwrap_or_else(|| "0".to_owned());
        let friendly = take("Friendly").unwrap_or_else(|| "AAA=".to_owned());
        let sha1d = take("SHA1D").ok_or(MsnObjectError::Missing("SHA1D"))?;
        let sha1c = take("SHA1C");
        let size = number(&size_raw).ok_or(MsnObjectError::BadNumber {
            name: "Size",
            raw: size_raw,
        })?;
        let kind = number(&kind_raw)
            .and_then(|k| u32::try_from(k).ok())
            .ok_or(MsnObjectError::BadNumber {
                name: "Type",
                raw: kind_raw,
            })?;
        Ok(MsnObject {
            creator,
            size,
            kind,
            location,
            friendly,
            sha1d,
            sha1c,
        })
    }
}

fn number(raw: &str) -> Option<u64> {
    if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    const XML: &str = "<msnobj Creator=\"alice@example.com\" Size=\"16\" Type=\"3\" Location=\"0\" Friendly=\"AAA=\" SHA1D=\"VheLhqV/rCKJmplkGFwsyW59pYk=\" SHA1C=\"SwlepNXV449EJPyznv0LuakEUh0=\"/>";
    const CHG: &str = "%3Cmsnobj%20Creator%3D%22alice%40example.com%22%20Size%3D%2216%22%20Type%3D%223%22%20Location%3D%220%22%20Friendly%3D%22AAA%3D%22%20SHA1D%3D%22VheLhqV%2FrCKJmplkGFwsyW59pYk%3D%22%20SHA1C%3D%22SwlepNXV449EJPyznv0LuakEUh0%3D%22%2F%3E";

    #[test]
    fn section_8_4_vector() {
        let obj = MsnObject::for_data("alice@example.com", 3, "0", "", &DATA);
        assert_eq!(obj.sha1d, "VheLhqV/rCKJmplkGFwsyW59pYk=");
        assert_eq!(obj.sha1c.as_deref(), Some("SwlepNXV449EJPyznv0LuakEUh0="));
        assert_eq!(obj.to_xml(), XML);
        assert_eq!(obj.to_url_encoded(), CHG);
        assert_eq!(MsnObject::parse(XML), Ok(obj.clone()));
        assert_eq!(MsnObject::parse_url_encoded(CHG), Ok(obj.clone()));
        assert!(obj.sha1c_valid());
        assert!(obj.matches_data(&DATA));
        assert!(!obj.matches_data(&DATA[1..]));
        assert_eq!(obj.friendly_text().as_deref(), Some(""));
    }

    #[test]
    fn nina_sha1c_vector() {
        let obj = MsnObject {
            creator: "buddy1@hotmail.com".into(),
            size: 24539,
            kind: 3,
            location: "TFR2C.tmp".into(),
            friendly: "AAA=".into(),
            sha1d: "trC8SlFx2sWQxZMIBAWSEnXc8oQ=".into(),
            sha1c: None,
        };
        assert_eq!(obj.compute_sha1c(), "U32o6bosZzluJq82eAtMpx5dIEI=");
    }

    #[test]
    fn friendly_round_trip() {
        assert_eq!(encode_friendly("Pic"), "UABpAGMAAAA=");
        let obj = MsnObject::for_data("a@b.c", 3, "0", "Pic ✓", b"x");
        assert_eq!(obj.friendly_text().as_deref(), Some("Pic ✓"));
    }

    #[test]
    fn lenient_parse() {
        let text = "<msnobj SHA1D='abc=' Type=\"2\" Creator=\"a&amp;b@x.y\" Size=\"3\" stamp=\"zz\" contenttype=\"D\"></msnobj>";
        let obj = MsnObject::parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(obj.creator, "a&b@x.y");
        assert_eq!(obj.kind, 2);
        assert_eq!(obj.location, "0");
        assert_eq!(obj.sha1c, None);
        assert!(!obj.sha1c_valid());
    }

    #[test]
    fn context_with_and_without_nul() {
        let with = STANDARD.encode(format!("{XML}\0"));
        let without = STANDARD.encode(XML);
        for ctx in [with, without] {
            let (obj, text) = MsnObject::parse_context(&ctx).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(text, XML);
            assert_eq!(obj.sha1d, "VheLhqV/rCKJmplkGFwsyW59pYk=");
        }
        assert_eq!(
            MsnObject::parse_context("!!!"),
            Err(MsnObjectError::BadContext)
        );
    }

    #[test]
    fn typed_errors() {
        assert_eq!(MsnObject::parse("<foo/>"), Err(MsnObjectError::NotMsnObj));
        assert_eq!(
            MsnObject::parse("<msnobjx/>"),
            Err(MsnObjectError::NotMsnObj)
        );
        assert_eq!(
            MsnObject::parse("<msnobj Creator=\"a\" Size=\"1\" Type=\"3\"/>"),
            Err(MsnObjectError::Missing("SHA1D"))
        );
        assert!(matches!(
            MsnObject::parse("<msnobj Creator=\"a\" Size=\"-1\" Type=\"3\" SHA1D=\"x\"/>"),
            Err(MsnObjectError::BadNumber { name: "Size", .. })
        ));
        assert!(matches!(
            MsnObject::parse("<msnobj Creator=\"a\" Creator=\"b\"/>"),
            Err(MsnObjectError::Duplicate { .. })
        ));
        assert!(matches!(
            MsnObject::parse("<msnobj Creator=\"a"),
            Err(MsnObjectError::Malformed { .. })
        ));
        let long = format!("<msnobj Creator=\"{}\"/>", "a".repeat(MAX_MSNOBJ_LEN));
        assert!(matches!(
            MsnObject::parse(&long),
            Err(MsnObjectError::TooLong { .. })
        ));
        assert!(matches!(
            MsnObject::parse_url_encoded("%3Cmsnobj%ZZ"),
            Err(MsnObjectError::Encoding(_))
        ));
    }

    #[test]
    fn truncations_and_mutations_never_panic() {
        for end in 0..=XML.len() {
            if let Some(prefix) = XML.get(..end) {
                let _ = MsnObject::parse(prefix);
            }
        }
        let mut seed = 0x1234_5678_u32;
        for _ in 0..2000 {
            let mut bytes = XML.as_bytes().to_vec();
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let pos = (seed as usize >> 4) % bytes.len();
            if let Some(b) = bytes.get_mut(pos) {
                *b = (seed >> 20) as u8;
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = MsnObject::parse(&text);
            let _ = MsnObject::parse_context(&STANDARD.encode(&bytes));
        }
    }
}
