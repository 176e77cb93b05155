//! What a file is, for Matrix: its media type and message type, and an image's size in
//! pixels, from its name and its first bytes (never the whole file).

use std::path::Path;

use tokio::io::AsyncReadExt as _;

/// Bytes read from a file's start to tell an image's format and size.
const SNIFF: usize = 64 * 1024;

/// How a file is shown in Matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaKind {
    /// `m.image`, `m.video`, `m.audio` or `m.file`.
    pub msgtype: &'static str,
    pub mimetype: String,
    /// Width and height of an image.
    pub dimensions: Option<(u32, u32)>,
}

/// Reads what the file at `path`, named `name` by its sender, is. An image is told by
/// its bytes (a picture named `.txt` is still a picture, and `image/png` named without
/// an extension too); anything else by its name's extension.
pub async fn identify(path: &Path, name: &str) -> std::io::Result<MediaKind> {
    let mut head = Vec::with_capacity(SNIFF);
    tokio::fs::File::open(path)
        .await?
        .take(SNIFF as u64)
        .read_to_end(&mut head)
        .await?;
    Ok(classify(&head, name))
}

/// [`identify`] on the first bytes of a file.
pub fn classify(head: &[u8], name: &str) -> MediaKind {
    let by_name = mime_guess::from_path(name).first_or_octet_stream();
    if let Ok(format) = imagesize::image_type(head)
        && let Some(mimetype) = image_mimetype(format)
    {
        let dimensions = imagesize::blob_size(head)
            .ok()
            .and_then(|d| Some((u32::try_from(d.width).ok()?, u32::try_from(d.height).ok()?)));
        return MediaKind {
            msgtype: "m.image",
            mimetype: mimetype.to_owned(),
            dimensions,
        };
    }
    let msgtype = match by_name.type_().as_str() {
        "video" => "m.video",
        "audio" => "m.audio",
        // An image type by name whose bytes are no image a client can show.
        _ => "m.file",
    };
    MediaKind {
        msgtype,
        mimetype: by_name.essence_str().to_owned(),
        dimensions: None,
    }
}

/// The media type of an image format Matrix clients show inline.
fn image_mimetype(format: imagesize::ImageType) -> Option<&'static str> {
    use imagesize::ImageType;
    Some(match format {
        ImageType::Png => "image/png",
        ImageType::Jpeg => "image/jpeg",
        ImageType::Gif => "image/gif",
        ImageType::Webp => "image/webp",
        ImageType::Bmp => "image/bmp",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 PNG's signature and IHDR (width 3, height 2).
    const PNG_HEAD: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0,
        0, 3, 0, 0, 0, 2, 8, 6, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn images_are_told_by_their_bytes_and_the_rest_by_name() {
        let png = classify(PNG_HEAD, "holiday");
        assert_eq!(png.msgtype, "m.image");
        assert_eq!(png.mimetype, "image/png");
        assert_eq!(png.dimensions, Some((3, 2)));
        let gif = classify(b"GIF89a\x05\x00\x04\x00\x00\x00\x00", "ink.isf");
        assert_eq!((gif.msgtype, gif.dimensions), ("m.image", Some((5, 4))));
        assert_eq!(classify(b"not a picture", "fake.png").msgtype, "m.file");
        let song = classify(b"ID3", "song.mp3");
        assert_eq!(
            (song.msgtype, song.mimetype.as_str()),
            ("m.audio", "audio/mpeg")
        );
        assert_eq!(classify(b"", "clip.avi").msgtype, "m.video");
        let doc = classify(b"%PDF", "report.pdf");
        assert_eq!(
            (doc.msgtype, doc.mimetype.as_str()),
            ("m.file", "application/pdf")
        );
        let odd = classify(b"", "README");
        assert_eq!(odd.mimetype, "application/octet-stream");
    }
}
