use super::*;

const ID: &str = "00000000-0000-0000-0009-5c1e2d3f4a5b";
const EPID: &str = "{6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}";

#[test]
fn the_join_and_adl_of_section_15_4_are_written_byte_for_byte() {
    let put = join(ID, "bridge@example.com", EPID).expect("join");
    assert_eq!(put.len(), 364, "{}", String::from_utf8_lossy(&put));
    assert!(put.starts_with(
        b"Routing: 1.0\r\nTo: 9:00000000-0000-0000-0009-5c1e2d3f4a5b@live.com\r\nFrom: 1:bridge@example.com;epid={6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}\r\n\r\n"
    ));
    let adl = adl(&[ID]).expect("adl");
    assert_eq!(adl.len(), 92);
    assert_eq!(
        adl,
        r#"<ml l="1"><d n="live.com"><c n="00000000-0000-0000-0009-5c1e2d3f4a5b" l="3" t="9"/></d></ml>"#
    );
}

#[test]
fn a_text_is_the_402_bytes_of_section_15_4() {
    let format = TextFormat::parse("FN=Segoe%20UI; EF=; CO=0; CS=1; PF=0");
    let sdg = send(
        ID,
        "bridge@example.com",
        EPID,
        1,
        &Outgoing::Text {
            text: "hello",
            format: &format,
        },
    )
    .expect("sdg");
    let text = String::from_utf8_lossy(&sdg);
    assert!(text.contains("To: 9:00000000-0000-0000-0009-5c1e2d3f4a5b@live.com;path=IM\r\n"));
    assert!(text.contains("Segment: 1\r\n"));
    assert!(text.ends_with("\r\n\r\nhello"), "{text}");
    assert_eq!(sdg.len(), 402, "{text}");
}

#[test]
fn what_the_server_routes_is_read() {
    let roster = b"Routing: 1.0\r\nTo: 1:bridge@example.com\r\nFrom: 9:00000000-0000-0000-0009-5c1e2d3f4a5b@live.com\r\n\r\nReliability: 1.0\r\nStream: 0\r\n\r\nPublication: 1.0\r\nUri: /circle\r\nNotifType: Partial\r\nContent-Type: application/circles+xml\r\nContent-Length: 128\r\n\r\n<circle><roster><id>IM</id><user><id>1:alice@example.com</id></user><user><id>1:bridge@example.com</id></user></roster></circle>";
    assert_eq!(roster.len(), 370, "the NFY PUT of §15.4");
    assert_eq!(
        read(Some("PUT"), roster),
        Ok(Some(FromCircle::Roster {
            circle: ID.into(),
            members: vec!["alice@example.com".into(), "bridge@example.com".into()],
        }))
    );
    let left = b"Routing: 1.0\r\nTo: 1:bridge@example.com\r\nFrom: 9:00000000-0000-0000-0009-5c1e2d3f4a5b@live.com\r\n\r\nReliability: 1.0\r\nStream: 0\r\n\r\nNotification: 1.0\r\nNotifNum: 2\r\nUri: /circle/roster(IM)/user(1:alice@example.com)\r\nNotifType: Partial\r\nContent-Type: application/circles+xml\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        read(Some("DEL"), left),
        Ok(Some(FromCircle::Left {
            circle: ID.into(),
            member: "alice@example.com".into(),
        }))
    );
    // Alice's text, as the server forwards it (her own client's bytes).
    let format = TextFormat::parse("FN=Segoe%20UI; EF=B; CO=ff; CS=1; PF=0");
    let from_alice = send(
        ID,
        "alice@example.com",
        "{0C1D2E3F-4A5B-4C6D-8E7F-A0B1C2D3E4F5}",
        3,
        &Outgoing::Text {
            text: "grüß euch",
            format: &format,
        },
    )
    .expect("sdg");
    match read(None, &from_alice) {
        Ok(Some(FromCircle::Text {
            circle,
            from,
            endpoint,
            text,
            format,
        })) => {
            assert_eq!(circle, ID);
            assert_eq!(from, "alice@example.com");
            assert_eq!(
                endpoint.as_deref(),
                Some("{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}")
            );
            assert_eq!(text, "grüß euch", "Content-Length counts bytes");
            assert_eq!(
                format.to_header_value(),
                TextFormat::parse("FN=Segoe%20UI; EF=B; CO=ff; CS=1; PF=0").to_header_value()
            );
        }
        other => panic!("{other:?}"),
    }
    let typing = send(ID, "alice@example.com", EPID, 4, &Outgoing::Typing).expect("typing");
    assert_eq!(
        read(None, &typing),
        Ok(Some(FromCircle::Typing {
            circle: ID.into(),
            from: "alice@example.com".into()
        }))
    );
    let nudge = send(ID, "alice@example.com", EPID, 5, &Outgoing::Nudge).expect("nudge");
    assert_eq!(
        read(None, &nudge),
        Ok(Some(FromCircle::Nudge {
            circle: ID.into(),
            from: "alice@example.com".into()
        }))
    );
}

#[test]
fn odd_payloads_are_errors_or_not_from_a_circle() {
    assert_eq!(read(None, b"Routing: 1.0\r\nTo: 1:x@y\r\n\r\n"), Ok(None));
    assert!(read(None, b"no colon here\r\n\r\n").is_err());
    assert!(read(None, &vec![b'a'; MAX_ROUTED + 1]).is_err());
    assert!(read(None, b"To: 9:a@live.com\r\nContent-Length: x\r\n\r\n").is_err());
    // A length past the end keeps what is there.
    let short = read(
        None,
        b"To: 9:a@live.com\r\nFrom: 1:b@c\r\nMessage-Type: Text\r\nContent-Length: 99\r\n\r\nhi",
    );
    assert!(matches!(short, Ok(Some(FromCircle::Text { text, .. })) if text == "hi"));
}

#[test]
fn the_sha_nonce_is_the_ticket_in_base64_and_addresses_are_read() {
    assert_eq!(sha_nonce("<a>&amp;"), STANDARD.encode("<a>&amp;"));
    assert_eq!(id_of("9:abc@live.com;path=IM"), Some("abc"));
    assert_eq!(id_of("1:abc@live.com"), None);
    assert_eq!(
        sender_of("1:Alice@Example.com;epid={X}"),
        "alice@example.com"
    );
}
