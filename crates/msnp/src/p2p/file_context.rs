//! The file-transfer context (MSNP.md §10.5): what a file INVITE's `Context` carries,
//! base64-decoded: a little-endian header (its own length, version, file size, whether a
//! preview follows, the name in UTF-16LE in 520 bytes) and, when announced, a preview
//! image to the end. Read by its stated header length (574 for version 2; WLM's version
//! 3 writes 637 or 638), never assuming 574; written as version 2, as MSN 7 and the SDK
//! do. No I/O.

/// The header length of version 2, which this module writes.
pub const V2_HEADER_LEN: usize = 574;
/// The name field: 260 UTF-16 units.
const NAME_BYTES: usize = 520;
const NAME_AT: usize = 20;
/// The `0xFFFFFFFF` marker at the end of the version-2 header.
const MARKER_AT: usize = 570;
/// The largest header length read (a version-3 header with room to spare).
const MAX_HEADER_LEN: usize = 4096;
/// The largest preview kept (a 96×96 PNG is a few KB).
pub const MAX_PREVIEW: usize = 64 * 1024;

/// Why a file context cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileContextError {
    #[error("the file context is shorter than its header ({0} bytes)")]
    TooShort(usize),
    #[error("the file context's header length {0} is not one a client writes")]
    BadHeaderLength(usize),
    #[error("the file context's preview is larger than {MAX_PREVIEW} bytes")]
    PreviewTooLarge,
    #[error("the file name is empty")]
    NoName,
}

/// A file on offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContext {
    /// The name as the sender gave it (no path), at most 259 UTF-16 units.
    pub name: String,
    /// Its size in bytes (64 bits on the wire: files past 4 GB are announced as such).
    pub size: u64,
    /// A preview image (PNG), when the sender attached one.
    pub preview: Option<Vec<u8>>,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let four: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(four))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let eight: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(eight))
}

impl FileContext {
    /// Reads a context (already base64-decoded).
    pub fn parse(bytes: &[u8]) -> Result<FileContext, FileContextError> {
        let header_len = u32_at(bytes, 0).ok_or(FileContextError::TooShort(bytes.len()))?;
        let header_len = usize::try_from(header_len).unwrap_or(usize::MAX);
        if !(MARKER_AT..=MAX_HEADER_LEN).contains(&header_len) {
            return Err(FileContextError::BadHeaderLength(header_len));
        }
        if bytes.len() < NAME_AT + NAME_BYTES || bytes.len() < header_len.min(MARKER_AT) {
            return Err(FileContextError::TooShort(bytes.len()));
        }
        let size = u64_at(bytes, 8).ok_or(FileContextError::TooShort(bytes.len()))?;
        let has_preview = u32_at(bytes, 16) == Some(0);
        let units: Vec<u16> = bytes
            .get(NAME_AT..NAME_AT + NAME_BYTES)
            .unwrap_or_default()
            .chunks_exact(2)
            .filter_map(|pair| <[u8; 2]>::try_from(pair).ok().map(u16::from_le_bytes))
            .take_while(|&unit| unit != 0)
            .collect();
        let name = String::from_utf16_lossy(&units);
        // A name is a name, not a path: whatever precedes the last separator goes.
        let name = name
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        if name.is_empty() {
            return Err(FileContextError::NoName);
        }
        let preview = if has_preview {
            let rest = bytes.get(header_len..).unwrap_or_default();
            if rest.len() > MAX_PREVIEW {
                return Err(FileContextError::PreviewTooLarge);
            }
            Some(rest.to_vec()).filter(|p| !p.is_empty())
        } else {
            None
        };
        Ok(FileContext {
            name,
            size,
            preview,
        })
    }

    /// Writes the context (version 2; a preview makes it type 0), name cut at 259
    /// UTF-16 units.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FileContextError> {
        if self.name.trim().is_empty() {
            return Err(FileContextError::NoName);
        }
        if self.preview.as_ref().is_some_and(|p| p.len() > MAX_PREVIEW) {
            return Err(FileContextError::PreviewTooLarge);
        }
        let mut out = Vec::with_capacity(V2_HEADER_LEN);
        out.extend_from_slice(&(V2_HEADER_LEN as u32).to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        let kind: u32 = if self.preview.is_some() { 0 } else { 1 };
        out.extend_from_slice(&kind.to_le_bytes());
        let mut name: Vec<u8> = self
            .name
            .encode_utf16()
            .take(NAME_BYTES / 2 - 1)
            .flat_map(u16::to_le_bytes)
            .collect();
        name.resize(NAME_BYTES, 0);
        out.extend_from_slice(&name);
        out.resize(MARKER_AT, 0);
        out.extend_from_slice(&u32::MAX.to_le_bytes());
        if let Some(preview) = &self.preview {
            out.extend_from_slice(preview);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn version_2_is_574_bytes_as_section_10_5_lays_out() {
        let context = FileContext {
            name: "a.txt".into(),
            size: 5_000_000,
            preview: None,
        };
        let bytes = context.to_bytes().expect("written");
        assert_eq!(bytes.len(), V2_HEADER_LEN);
        assert_eq!(&bytes[0..4], &574u32.to_le_bytes());
        assert_eq!(&bytes[4..8], &2u32.to_le_bytes());
        assert_eq!(&bytes[8..16], &5_000_000u64.to_le_bytes());
        assert_eq!(&bytes[16..20], &1u32.to_le_bytes(), "no preview");
        assert_eq!(
            &bytes[20..30],
            "a.txt"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>()
                .as_slice()
        );
        assert!(bytes[30..570].iter().all(|&b| b == 0));
        assert_eq!(&bytes[570..574], &[0xFF; 4]);
        assert_eq!(FileContext::parse(&bytes), Ok(context));
    }

    #[test]
    fn the_wlm_capture_of_version_3_is_read_by_its_own_length() {
        // §10.5: `fgIAAAMAAAAAAAAAAAAAAAEAAABhAC4AdAB4AHQA…/////w…` — length 0x27E,
        // version 3, size 0, type 1, name "a.txt".
        let mut bytes = vec![0u8; 0x27E];
        bytes[0..4].copy_from_slice(&0x27Eu32.to_le_bytes());
        bytes[4..8].copy_from_slice(&3u32.to_le_bytes());
        bytes[16..20].copy_from_slice(&1u32.to_le_bytes());
        let name: Vec<u8> = "a.txt".encode_utf16().flat_map(u16::to_le_bytes).collect();
        bytes[20..20 + name.len()].copy_from_slice(&name);
        bytes[570..574].copy_from_slice(&[0xFF; 4]);
        assert!(
            STANDARD
                .encode(&bytes)
                .starts_with("fgIAAAMAAAAAAAAAAAAAAAEAAABhAC4AdAB4AHQA")
        );
        let read = FileContext::parse(&bytes).expect("read");
        assert_eq!(
            (read.name.as_str(), read.size, read.preview),
            ("a.txt", 0, None)
        );
    }

    #[test]
    fn previews_large_sizes_and_odd_names() {
        let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
        let context = FileContext {
            name: "Grüße 📷.png".into(),
            size: 5 * 1024 * 1024 * 1024,
            preview: Some(png.clone()),
        };
        let bytes = context.to_bytes().expect("written");
        assert_eq!(&bytes[16..20], &0u32.to_le_bytes(), "a preview follows");
        let read = FileContext::parse(&bytes).expect("read");
        assert_eq!(read, context, "past 4 GB and non-ASCII names survive");
        // A path is cut to its name; a long name to 259 units.
        let path = FileContext {
            name: "C:\\Users\\x\\secret\\plan.doc".into(),
            size: 1,
            preview: None,
        };
        let read = FileContext::parse(&path.to_bytes().expect("written")).expect("read");
        assert_eq!(read.name, "plan.doc");
        let long = FileContext {
            name: "x".repeat(400),
            size: 1,
            preview: None,
        };
        let read = FileContext::parse(&long.to_bytes().expect("written")).expect("read");
        assert_eq!(read.name.len(), 259);
    }

    #[test]
    fn bad_contexts_are_errors_not_panics() {
        assert_eq!(FileContext::parse(&[]), Err(FileContextError::TooShort(0)));
        let mut short = vec![0u8; 100];
        short[0..4].copy_from_slice(&574u32.to_le_bytes());
        assert_eq!(
            FileContext::parse(&short),
            Err(FileContextError::TooShort(100))
        );
        let mut huge = vec![0u8; 600];
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            FileContext::parse(&huge),
            Err(FileContextError::BadHeaderLength(_))
        ));
        let mut nameless = FileContext {
            name: "x".into(),
            size: 1,
            preview: None,
        }
        .to_bytes()
        .expect("written");
        nameless[20..22].copy_from_slice(&[0, 0]);
        assert_eq!(FileContext::parse(&nameless), Err(FileContextError::NoName));
        let mut big_preview = FileContext {
            name: "x".into(),
            size: 1,
            preview: Some(vec![1]),
        }
        .to_bytes()
        .expect("written");
        big_preview.resize(V2_HEADER_LEN + MAX_PREVIEW + 1, 0);
        assert_eq!(
            FileContext::parse(&big_preview),
            Err(FileContextError::PreviewTooLarge)
        );
    }
}
