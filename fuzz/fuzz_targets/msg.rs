//! `MSG` payloads (MSNP.md §7) and circle payloads (§15.4): several payloads separated
//! by 0xFF bytes are each parsed;
//! MIME parsing round-trips through `encode`; text re-encoded with `encode_text` parses
//! back to the same text and format; `split_text` pieces concatenate to the input and
//! respect the size; chunk reassembly stays within its limits.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use msnp::message::{encode_text, split_text};
use msnp::{ChunkAssembler, Limits, MimeMessage, MsgPayload, classify, parse_msg};

fuzz_target!(|data: &[u8]| {
    let mut limits = Limits::default();
    limits.max_chunks = 4;
    limits.max_chunked_message = 256;
    limits.max_pending_chunked = 2;
    let mut assembler = ChunkAssembler::new(&limits);

    for part in data.split(|&b| b == 0xFF) {
        let payload = Bytes::copy_from_slice(part);

        // What a circle routes (NFY PUT/DEL, SDG): read or refused, never a panic.
        for kind in [None, Some("PUT"), Some("DEL")] {
            let _ = msnp::circle::read(kind, part);
        }

        if let Ok(mime) = MimeMessage::parse(&payload, &limits) {
            let encoded = mime.encode();
            let again = MimeMessage::parse(&encoded, &limits);
            assert_eq!(again.as_ref(), Ok(&mime), "re-parse of {encoded:?}");
        }

        match parse_msg(&payload, &limits) {
            Ok(MsgPayload::Text { text, format, .. }) => {
                let format = format.unwrap_or_default();
                let encoded = encode_text(&text, &format);
                match parse_msg(&encoded, &limits) {
                    Ok(MsgPayload::Text {
                        text: text2,
                        format: Some(format2),
                        ..
                    }) => {
                        assert_eq!(text2, text, "text changed through {encoded:?}");
                        assert_eq!(format2, format, "format changed through {encoded:?}");
                    }
                    other => panic!("encode_text output {encoded:?} parsed as {other:?}"),
                }
                for max in [1usize, 5, 17] {
                    let pieces = split_text(&text, max);
                    assert_eq!(pieces.concat(), text);
                    assert!(pieces.iter().all(|p| p.len() <= max.max(4)), "{pieces:?}");
                    assert!(
                        pieces
                            .windows(2)
                            .all(|w| !(w[0].ends_with('\r') && w[1].starts_with('\n'))),
                        "split inside CRLF: {pieces:?}"
                    );
                }
            }
            Ok(MsgPayload::Chunk(chunk)) => {
                if let Ok(Some(whole)) = assembler.push(chunk) {
                    assert!(whole.body.len() <= limits.max_chunked_message);
                    let _ = classify(&whole, &limits);
                }
                assert!(assembler.pending() <= limits.max_pending_chunked);
            }
            _ => {}
        }
    }
});
