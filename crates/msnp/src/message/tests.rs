//! Tests for `message.rs`: §7 examples byte for byte, format round trips, splitting,
//! chunk reassembly and a never-panics loop over mutated payloads.

use bytes::Bytes;

use super::*;
use crate::frame::tests::{Rng, mutate};
use crate::limits::SB_MSG_SEND_LIMIT;

fn limits() -> Limits {
    Limits::default()
}

const TEXT_127: &str = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Segoe%20UI; EF=B; CO=ff; CS=1; PF=0\r\n\r\nhello \u{e9}";

fn segoe_bold_red() -> TextFormat {
    TextFormat {
        font: Some("Segoe UI".into()),
        effects: Effects {
            bold: true,
            ..Effects::default()
        },
        color: Some(Rgb { r: 255, g: 0, b: 0 }),
        charset: Some("1".into()),
        pitch_family: Some("0".into()),
        right_to_left: false,
    }
}

#[test]
fn section_7_1_text_example() {
    assert_eq!(TEXT_127.len(), 127);
    assert_eq!(
        encode_text("hello \u{e9}", &segoe_bold_red()),
        Bytes::from_static(TEXT_127.as_bytes())
    );
    let parsed = parse_msg(&Bytes::from_static(TEXT_127.as_bytes()), &limits());
    assert_eq!(
        parsed,
        Ok(MsgPayload::Text {
            text: "hello \u{e9}".into(),
            format: Some(segoe_bold_red()),
            p4_context: None
        })
    );
}

#[test]
fn text_line_breaks_and_utf8_checks() {
    let wire = encode_text("a\nb\r\nc", &TextFormat::default());
    assert!(wire.ends_with(b"\r\n\r\na\r\nb\r\nc"));
    assert!(
        matches!(parse_msg(&wire, &limits()), Ok(MsgPayload::Text { text, .. }) if text == "a\nb\nc")
    );
    let bad = Bytes::from_static(b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nok\xff");
    assert_eq!(
        parse_msg(&bad, &limits()),
        Err(MessageError::BodyNotUtf8 {
            content_type: "text/plain".into(),
            valid_up_to: 2
        })
    );
}

#[test]
fn format_parse_encode_round_trip() {
    let cases = [
        segoe_bold_red(),
        TextFormat::default(),
        TextFormat {
            font: Some("MS Sans Serif; 100%".into()),
            effects: Effects {
                bold: true,
                italic: true,
                underline: true,
                strikethrough: true,
            },
            color: Some(Rgb { r: 1, g: 2, b: 3 }),
            charset: Some("86".into()),
            pitch_family: Some("22".into()),
            right_to_left: true,
        },
        TextFormat {
            color: Some(Rgb { r: 0, g: 0, b: 0 }),
            ..TextFormat::default()
        },
    ];
    for f in cases {
        assert_eq!(TextFormat::parse(&f.to_header_value()), f);
    }
    // BGR with dropped leading zeros (§7.1).
    assert_eq!(
        TextFormat::parse("CO=ff00").color,
        Some(Rgb { r: 0, g: 255, b: 0 })
    );
    assert_eq!(
        TextFormat::parse("CO=ff0000").color,
        Some(Rgb { r: 0, g: 0, b: 255 })
    );
    assert_eq!(
        TextFormat::parse("CO=0").color,
        Some(Rgb { r: 0, g: 0, b: 0 })
    );
    assert_eq!(TextFormat::parse("CO=1234567").color, None);
    assert_eq!(TextFormat::parse("CO=zz").color, None);
    assert_eq!(
        TextFormat::parse("garbage;;=;EF=iu"),
        TextFormat {
            effects: Effects {
                italic: true,
                underline: true,
                ..Effects::default()
            },
            ..TextFormat::default()
        }
    );
}

#[test]
fn typing_and_nudge_match_the_reference_sizes() {
    let typing = encode_typing("bridge@example.com").unwrap_or_default();
    assert_eq!(typing.len(), 91);
    assert_eq!(
        parse_msg(&typing, &limits()),
        Ok(MsgPayload::Typing {
            user: "bridge@example.com".into()
        })
    );
    assert!(encode_typing("x\r\nEvil: 1").is_err());
    let nudge = encode_nudge();
    assert_eq!(nudge.len(), 69);
    assert_eq!(parse_msg(&nudge, &limits()), Ok(MsgPayload::Nudge));
    assert_eq!(encode_datacast(1, None), Ok(nudge));
    let action = encode_datacast(4, Some("waves")).unwrap_or_default();
    assert_eq!(
        parse_msg(&action, &limits()),
        Ok(MsgPayload::Datacast {
            id: 4,
            data: Some("waves".into())
        })
    );
    let rec = Bytes::from_static(b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nRecordingUser: a@b\r\n\r\n\r\n");
    assert_eq!(
        parse_msg(&rec, &limits()),
        Ok(MsgPayload::Recording { user: "a@b".into() })
    );
}

#[test]
fn emoticons_round_trip() {
    let items = vec![
        EmoticonDecl { shortcut: "(pic)".into(), msnobj: r#"<msnobj Creator="alice@example.com" Size="16" Type="2" Location="0" Friendly="AAA=" SHA1D="x" SHA1C="y"/>"#.into() },
        EmoticonDecl { shortcut: ":dance:".into(), msnobj: "<msnobj/>".into() },
    ];
    for animated in [false, true] {
        let wire = encode_emoticons(&items, animated).unwrap_or_default();
        assert_eq!(
            parse_msg(&wire, &limits()),
            Ok(MsgPayload::Emoticons {
                animated,
                items: items.clone()
            })
        );
    }
    assert!(
        encode_emoticons(
            &[EmoticonDecl {
                shortcut: "a\tb".into(),
                msnobj: "x".into()
            }],
            false
        )
        .is_err()
    );
}

#[test]
fn p2p_body_is_kept_raw() {
    let mut body = vec![0u8; 48];
    body.extend_from_slice(b"\r\n\r\n\0\xff");
    body.extend_from_slice(&[0, 0, 0, 1]);
    let wire = encode_p2p("alice@example.com", &body).unwrap_or_default();
    assert_eq!(
        wire.len() - body.len(),
        90,
        "§10.4: 90-byte MIME header for alice@example.com"
    );
    assert_eq!(
        parse_msg(&wire, &limits()),
        Ok(MsgPayload::P2p {
            dest: Some("alice@example.com".into()),
            src: None,
            body: Bytes::from(body)
        })
    );
}

#[test]
fn ns_messages() {
    let profile = Bytes::from(crate::frame::tests::profile_payload());
    match parse_msg(&profile, &limits()) {
        Ok(MsgPayload::Profile { headers }) => {
            assert_eq!(headers.get("mspauth"), Some("0123456789abcdefghij"));
            assert_eq!(headers.get("preferredEmail"), Some(""));
        }
        other => panic!("{other:?}"),
    }
    let sys = Bytes::from_static(b"MIME-Version: 1.0\r\nContent-Type: application/x-msmsgssystemmessage\r\n\r\nType: 1\r\nArg1: 5\r\n");
    assert_eq!(sys.len(), 88);
    assert_eq!(
        parse_msg(&sys, &limits()),
        Ok(MsgPayload::SystemMessage {
            kind: Some(1),
            arg1: Some("5".into())
        })
    );
    let mail = Bytes::from_static(b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinitialemailnotification; charset=UTF-8\r\n\r\nInbox-Unread: 3\r\nFolders-Unread: 0\r\n\r\n");
    match parse_msg(&mail, &limits()) {
        Ok(MsgPayload::MailNotification {
            content_type,
            fields,
        }) => {
            assert_eq!(content_type, "text/x-msmsgsinitialemailnotification");
            assert_eq!(fields.get("Inbox-Unread"), Some("3"));
        }
        other => panic!("{other:?}"),
    }
    let cancel = encode_invite_cancel("12345").unwrap_or_default();
    assert_eq!(cancel.len(), 160, "§7.5");
    assert!(
        matches!(parse_msg(&cancel, &limits()), Ok(MsgPayload::Invite { fields }) if fields.get("Invitation-Cookie") == Some("12345"))
    );
}

#[test]
fn unknown_and_malformed() {
    let caps = Bytes::from_static(
        b"MIME-Version: 1.0\r\nContent-Type: text/x-clientcaps\r\n\r\nClient-Name: X\r\n",
    );
    assert!(
        matches!(parse_msg(&caps, &limits()), Ok(MsgPayload::Unknown { content_type, .. }) if content_type == "text/x-clientcaps")
    );
    assert_eq!(
        parse_msg(&Bytes::from_static(b"MIME-Version: 1.0\r\n"), &limits()),
        Err(MessageError::NoHeaderEnd { len: 19 })
    );
    assert!(matches!(
        parse_msg(&Bytes::from_static(b"no colon\r\n\r\n"), &limits()),
        Err(MessageError::BadHeaderLine { line: 0, .. })
    ));
    assert!(matches!(
        parse_msg(&Bytes::from_static(b"A: \xff\r\n\r\n"), &limits()),
        Err(MessageError::HeaderNotUtf8 {
            line: 0,
            valid_up_to: 3
        })
    ));
    let many = "X: 1\r\n".repeat(65) + "\r\n";
    assert_eq!(
        parse_msg(&Bytes::from(many), &limits()),
        Err(MessageError::TooManyHeaders { max: 64 })
    );
    // Header names are case-insensitive, bare LF tolerated.
    let lf = Bytes::from_static(b"mime-version: 1.0\ncontent-type: TEXT/PLAIN\n\nhi");
    assert!(matches!(parse_msg(&lf, &limits()), Ok(MsgPayload::Text { text, .. }) if text == "hi"));
}

#[test]
fn split_long_text_under_1664() {
    let fmt = segoe_bold_red();
    let text: String = (0..800)
        .map(|i| {
            if i % 7 == 0 {
                "é \n".to_string()
            } else {
                format!("w{i}日")
            }
        })
        .collect();
    let parts = encode_text_split(&text, &fmt, SB_MSG_SEND_LIMIT);
    let Ok(parts) = parts else {
        panic!("{parts:?}")
    };
    assert!(parts.len() > 2);
    let mut joined = String::new();
    for p in &parts {
        assert!(p.len() <= SB_MSG_SEND_LIMIT, "{}", p.len());
        match parse_msg(p, &limits()) {
            Ok(MsgPayload::Text { text, format, .. }) => {
                assert_eq!(format.as_ref(), Some(&fmt));
                joined.push_str(&text);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(joined, text);
    // Short text: one part.
    assert_eq!(encode_text_split("hi", &fmt, 1664).map(|v| v.len()), Ok(1));
    assert!(encode_text_split("hi", &fmt, 100).is_err());
}

#[test]
fn split_text_boundaries() {
    // Never cuts inside a character or a CRLF; concatenation is lossless.
    let samples = [
        "aaaa\r\nbbbb\r\ncccc",
        "ééééééééé",
        "\u{1F600}\u{1F600}\u{1F600}",
        "word word word word",
        "x",
    ];
    for s in samples {
        for max in 0..12 {
            let pieces = split_text(s, max);
            assert_eq!(pieces.concat(), s);
            for p in &pieces {
                assert!(p.len() <= max.max(4), "{p:?} > {max}");
                assert!(!p.ends_with('\r') || !s.contains("\r\n"), "{p:?}");
            }
        }
    }
    assert_eq!(
        split_text("hello world again", 12),
        vec!["hello world ", "again"]
    );
}

fn chunk_pair() -> (Bytes, Bytes) {
    let first = Bytes::from_static(b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nMessage-ID: {5D8C1B2A-3E4F-4A5B-9C6D-7E8F90A1B2C3}\r\nChunks: 2\r\n\r\nfirst half ");
    let second = Bytes::from_static(
        b"Message-ID: {5D8C1B2A-3E4F-4A5B-9C6D-7E8F90A1B2C3}\r\nChunk: 1\r\n\r\nsecond half",
    );
    (first, second)
}

fn as_chunk(p: Result<MsgPayload, MessageError>) -> ChunkPart {
    match p {
        Ok(MsgPayload::Chunk(c)) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn section_7_8_chunk_example() {
    let (first, second) = chunk_pair();
    assert_eq!((first.len(), second.len()), (136, 75));
    let mut asm = ChunkAssembler::new(&limits());
    assert_eq!(asm.push(as_chunk(parse_msg(&first, &limits()))), Ok(None));
    assert_eq!(asm.pending(), 1);
    let done = asm.push(as_chunk(parse_msg(&second, &limits())));
    let Ok(Some(mime)) = done else {
        panic!("{done:?}")
    };
    assert_eq!(asm.pending(), 0);
    assert_eq!(mime.headers.get("Chunks"), None);
    assert_eq!(
        classify(&mime, &limits()),
        Ok(MsgPayload::Text {
            text: "first half second half".into(),
            format: None,
            p4_context: None
        })
    );
}

#[test]
fn chunks_split_inside_utf8_reassemble() {
    let body = "é".as_bytes();
    let first = [
        &b"Content-Type: text/plain\r\nMessage-ID: {A}\r\nChunks: 2\r\n\r\n"[..],
        &body[..1],
    ]
    .concat();
    let second = [&b"Message-ID: {A}\r\nChunk: 1\r\n\r\n"[..], &body[1..]].concat();
    let mut asm = ChunkAssembler::new(&limits());
    assert_eq!(
        asm.push(as_chunk(parse_msg(&Bytes::from(first), &limits()))),
        Ok(None)
    );
    let done = asm.push(as_chunk(parse_msg(&Bytes::from(second), &limits())));
    assert!(
        matches!(done.map(|m| m.map(|m| classify(&m, &limits()))), Ok(Some(Ok(MsgPayload::Text { text, .. }))) if text == "é")
    );
}

#[test]
fn chunk_limits() {
    let l = Limits {
        max_chunks: 3,
        max_chunked_message: 10,
        max_pending_chunked: 2,
        ..Limits::default()
    };
    let part = |id: &str, index: u32, total: Option<u32>, body: &'static [u8]| ChunkPart {
        message_id: id.into(),
        index,
        total,
        headers: Headers::default(),
        body: Bytes::from_static(body),
    };
    let mut asm = ChunkAssembler::new(&l);
    assert!(matches!(
        asm.push(part("a", 0, Some(4), b"")),
        Err(MessageError::BadChunkCount {
            chunks: 4,
            max: 3,
            ..
        })
    ));
    assert!(matches!(
        asm.push(part("a", 0, Some(0), b"")),
        Err(MessageError::BadChunkCount { .. })
    ));
    assert!(matches!(
        asm.push(part("zz", 1, None, b"")),
        Err(MessageError::UnknownChunkedMessage { .. })
    ));
    assert_eq!(asm.push(part("a", 0, Some(3), b"12345")), Ok(None));
    assert!(matches!(
        asm.push(part("a", 1, None, b"123456")),
        Err(MessageError::ChunkedTooLarge { max: 10, .. })
    ));
    assert_eq!(asm.pending(), 0, "oversize message dropped");
    assert_eq!(asm.push(part("b", 0, Some(3), b"1")), Ok(None));
    assert!(matches!(
        asm.push(part("b", 2, None, b"3")),
        Err(MessageError::ChunkOutOfOrder {
            expected: 1,
            got: 2,
            ..
        })
    ));
    for id in ["c", "d", "e"] {
        assert_eq!(asm.push(part(id, 0, Some(2), b"x")), Ok(None));
    }
    assert_eq!(asm.pending(), 2, "oldest evicted");
    assert!(asm.push(part("c", 1, None, b"y")).is_err());
    assert!(matches!(asm.push(part("e", 1, None, b"y")), Ok(Some(m)) if &m.body[..] == b"xy"));
    assert!(matches!(
        parse_msg(
            &Bytes::from_static(b"Message-ID: {x}\r\nChunks: lots\r\n\r\n"),
            &l
        ),
        Err(MessageError::BadChunkHeader { name: "Chunks", .. })
    ));
    // A single-part "chunked" message completes immediately.
    assert!(matches!(asm.push(part("f", 0, Some(1), b"z")), Ok(Some(_))));
}

#[test]
fn mutated_payloads_never_panic() {
    let l = limits();
    let (first, second) = chunk_pair();
    let seeds: Vec<Bytes> = vec![
        Bytes::from_static(TEXT_127.as_bytes()),
        encode_typing("bridge@example.com").unwrap_or_default(),
        encode_nudge(),
        encode_datacast(4, Some("hi")).unwrap_or_default(),
        encode_emoticons(
            &[EmoticonDecl {
                shortcut: "(a)".into(),
                msnobj: "<msnobj/>".into(),
            }],
            false,
        )
        .unwrap_or_default(),
        encode_p2p("alice@example.com", &[0u8; 52]).unwrap_or_default(),
        encode_invite_cancel("1").unwrap_or_default(),
        Bytes::from(crate::frame::tests::profile_payload()),
        first,
        second,
    ];
    let mut rng = Rng::new(7);
    let mut asm = ChunkAssembler::new(&Limits {
        max_chunked_message: 4096,
        ..l.clone()
    });
    for i in 0..5000 {
        let input = Bytes::from(mutate(&mut rng, &seeds[i % seeds.len()]));
        match parse_msg(&input, &l) {
            Ok(MsgPayload::Chunk(c)) => {
                if let Ok(Some(m)) = asm.push(c) {
                    let _ = classify(&m, &l);
                }
            }
            Ok(MsgPayload::Text {
                format: Some(f), ..
            }) => {
                // Any parsed format re-encodes to something that parses the same.
                assert_eq!(TextFormat::parse(&f.to_header_value()), f);
            }
            _ => {}
        }
        let _ = TextFormat::parse(&String::from_utf8_lossy(&input));
        assert!(asm.pending() <= l.max_pending_chunked);
    }
}

#[test]
fn inks_are_decoded_gif_or_isf_and_anything_else_stays_unknown() {
    let gif = Bytes::from_static(
        b"MIME-Version: 1.0\r\nContent-Type: image/gif\r\n\r\nbase64:R0lGODlhAQABAAAAACw=",
    );
    assert_eq!(
        parse_msg(&gif, &limits()),
        Ok(MsgPayload::Ink {
            format: InkFormat::Gif,
            data: Bytes::from_static(b"GIF89a\x01\x00\x01\x00\x00\x00\x00,"),
        })
    );
    let isf = Bytes::from_static(
        b"MIME-Version: 1.0\r\nContent-Type: application/x-ms-ink\r\n\r\nbase64:AAEC\r\n",
    );
    assert!(matches!(
        parse_msg(&isf, &limits()),
        Ok(MsgPayload::Ink { format: InkFormat::Isf, data }) if data.as_ref() == [0, 1, 2]
    ));
    // Not `base64:`, or not base64: kept as an unknown message, never an error.
    for body in [&b"R0lGODlh"[..], b"base64:***", b"base64:", b"\xff\xfe"] {
        let mut wire = b"MIME-Version: 1.0\r\nContent-Type: image/gif\r\n\r\n".to_vec();
        wire.extend_from_slice(body);
        assert!(
            matches!(
                parse_msg(&Bytes::from(wire), &limits()),
                Ok(MsgPayload::Unknown { .. })
            ),
            "{body:?}"
        );
    }
}
