//! Tests for `frame.rs`: MSNP.md §2.7 / §6 transcripts, split feeds, round trips,
//! mutation never-panics loop, limits.

use bytes::{Bytes, BytesMut};

use super::*;

/// The 371-byte profile payload of MSNP.md §2.6.
pub(crate) fn profile_payload() -> Vec<u8> {
    let lines = [
        "MIME-Version: 1.0",
        "Content-Type: text/x-msmsgsprofile; charset=UTF-8",
        "LoginTime: 1700000000",
        "EmailEnabled: 0",
        "MemberIdHigh: 12345",
        "MemberIdLow: 67890",
        "lang_preference: 1033",
        "preferredEmail: ",
        "country: ",
        "PostalCode: ",
        "Gender: ",
        "Kid: 0",
        "Age: ",
        "Birthday: ",
        "Wallet: ",
        "sid: 507",
        "kv: 2",
        "MSPAuth: 0123456789abcdefghij",
        "ClientIP: 192.0.2.10",
        "ClientPort: 5621",
        "ABCHMigrated: 1",
        "",
    ];
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

const SHIELDS: &str = r#"<?xml version="1.0" encoding="utf-8" ?><config><shield><cli maj="7" min="0" minbld="0" maxbld="9999" deny=" " /></shield><block></block></config>"#;
const UBX_ALICE: &str = "<Data><PSM>at work</PSM><CurrentMedia></CurrentMedia></Data>";
const UUX_BRIDGE: &str = "<Data><PSM>Bridged from Matrix</PSM><CurrentMedia></CurrentMedia></Data>";

/// Server side of the MSNP12 TWN transcript (MSNP.md §2.7).
pub(crate) fn msnp12_server() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(b"VER 1 MSNP12\r\n");
    s.extend_from_slice(
        b"CVR 2 7.5.0324 7.5.0324 7.5.0324 https://example.invalid https://example.invalid\r\n",
    );
    s.extend_from_slice(b"USR 3 TWN S ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1\r\n");
    s.extend_from_slice(b"USR 4 OK bridge@example.com 1 0\r\n");
    s.extend_from_slice(b"SBS 0 null\r\n");
    s.extend_from_slice(b"MSG Hotmail Hotmail 371\r\n");
    s.extend_from_slice(&profile_payload());
    s.extend_from_slice(b"SYN 5 2000-01-01T00:00:00.0-00:00 2000-01-01T00:00:00.0-00:00 2 1\r\n");
    s.extend_from_slice(b"GTC A\r\n");
    s.extend_from_slice(b"BLP AL\r\n");
    s.extend_from_slice(b"PRP MFN Matrix%20Bridge\r\n");
    s.extend_from_slice(b"LSG Friends 8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80\r\n");
    s.extend_from_slice(b"LST N=alice@example.com F=Alice C=1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5 11 1 8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80\r\n");
    s.extend_from_slice(b"LST N=carol@example.com F=Carol 10 1 \r\n");
    s.extend_from_slice(b"GCF 6 Shields.xml 145\r\n");
    s.extend_from_slice(SHIELDS.as_bytes());
    s.extend_from_slice(b"CHG 7 NLN 1342177280\r\n");
    s.extend_from_slice(b"ILN 7 NLN alice@example.com Alice 1342177312 %3Cmsnobj%2F%3E\r\n");
    s.extend_from_slice(b"UBX alice@example.com 60\r\n");
    s.extend_from_slice(UBX_ALICE.as_bytes());
    s.extend_from_slice(b"UUX 8 0\r\n");
    s.extend_from_slice(b"QNG 60\r\n");
    s.extend_from_slice(b"CHL 0 13038318816579321232\r\n");
    s.extend_from_slice(b"QRY 10\r\n");
    s.extend_from_slice(b"NLN AWY alice@example.com Alice 1342177312\r\n");
    s.extend_from_slice(b"FLN alice@example.com\r\n");
    s.extend_from_slice(
        b"RNG 11752014 192.0.2.1:1864 CKI 1938475.2938475 alice@example.com Alice\r\n",
    );
    s.extend_from_slice(b"XFR 20 SB 192.0.2.1:1864 CKI 8327461923.1849.2847\r\n");
    s.extend_from_slice(b"913 21\r\n");
    s.extend_from_slice(b"OUT OTH\r\n");
    s
}

/// Client side of the MSNP12 TWN transcript (MSNP.md §2.7).
pub(crate) fn msnp12_client() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(b"VER 1 MSNP12 MSNP11 MSNP10 MSNP9 MSNP8 CVR0\r\n");
    s.extend_from_slice(
        b"CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 7.5.0324 msmsgs bridge@example.com\r\n",
    );
    s.extend_from_slice(b"USR 3 TWN I bridge@example.com\r\n");
    s.extend_from_slice(b"USR 4 TWN S t=Q2xhc3NpY0V4YW1wbGVUb2s=\r\n");
    s.extend_from_slice(b"SYN 5 0 0\r\n");
    s.extend_from_slice(b"GCF 6 Shields.xml\r\n");
    s.extend_from_slice(b"CHG 7 NLN 1342177280\r\n");
    s.extend_from_slice(b"UUX 8 72\r\n");
    s.extend_from_slice(UUX_BRIDGE.as_bytes());
    s.extend_from_slice(b"PNG\r\n");
    s.extend_from_slice(b"QRY 10 PROD0090YUAUV{2B 32\r\nb01c13020e374d4fa20abfad6981b7a9");
    s.extend_from_slice(b"OUT\r\n");
    s
}

/// Server side of the MSNP18 SSO transcript (§2.7) plus MSNP13+ payload forms (§1.3, §4.5).
pub(crate) fn msnp18_server() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(b"VER 1 MSNP18\r\n");
    s.extend_from_slice(format!("GCF 0 {}\r\n{SHIELDS}", SHIELDS.len()).as_bytes());
    s.extend_from_slice(b"USR 3 SSO S MBI_KEY_OLD 8CLhG/xfgYZ7TyRQ/jIAWyDmd/w4R4GF2yKLS6tYrnjzi4cFag/Nr+hxsfg5zlCf\r\n");
    s.extend_from_slice(b"USR 4 OK bridge@example.com 1 0\r\n");
    s.extend_from_slice(b"SBS 0 null\r\n");
    s.extend_from_slice(b"UBX 1:bridge@example.com 0\r\n");
    s.extend_from_slice(b"BLP 5 AL\r\n");
    s.extend_from_slice(b"ADL 6 OK\r\n");
    s.extend_from_slice(b"PRP 7 MFN Matrix%20Bridge\r\n");
    s.extend_from_slice(b"UUX 8 0\r\n");
    s.extend_from_slice(b"CHG 9 NLN 2684354560:0 0\r\n");
    s.extend_from_slice(b"NLN NLN 1:bob@example.com Bob 2789003324:48 %3Cmsnobj%2F%3E\r\n");
    s.extend_from_slice(b"UBX 1:bob@example.com 60\r\n");
    s.extend_from_slice(UBX_ALICE.as_bytes());
    let adl = r#"<ml><d n="example.com"><c n="dave" l="8" t="1" f="Dave"/></d></ml>"#;
    s.extend_from_slice(format!("ADL 0 {}\r\n{adl}", adl.len()).as_bytes());
    s.extend_from_slice(b"241 12 5\r\nhello");
    s.extend_from_slice(b"NOT 178\r\n");
    s.extend_from_slice(br#"<NOTIFICATION ver="2" id="1" siteid="0" siteurl="http://example.com"><TO pid="0x0:0x0" name="bridge@example.com"/><MSG id="0"><BODY><TEXT>hello</TEXT></BODY></MSG></NOTIFICATION>"#);
    s.extend_from_slice(b"UBX 1:carol@example.com 0\r\n");
    s
}

/// Switchboard server side (§6.1, §6.2, §6.4).
pub(crate) fn sb_server() -> Vec<u8> {
    let text = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Segoe%20UI; EF=B; CO=ff; CS=1; PF=0\r\n\r\nhello \u{e9}";
    let typing = "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: alice@example.com\r\n\r\n\r\n";
    let mut s = Vec::new();
    s.extend_from_slice(b"USR 1 OK bridge@example.com Matrix%20Bridge\r\n");
    s.extend_from_slice(b"CAL 2 RINGING 11752013\r\n");
    s.extend_from_slice(b"JOI alice@example.com Alice 1342177312\r\n");
    s.extend_from_slice(b"ACK 3\r\n");
    s.extend_from_slice(b"IRO 1 1 1 alice@example.com Alice 1342177312\r\n");
    s.extend_from_slice(b"ANS 1 OK\r\n");
    s.extend_from_slice(format!("MSG alice@example.com Alice {}\r\n{text}", text.len()).as_bytes());
    s.extend_from_slice(
        format!("MSG alice@example.com Alice {}\r\n{typing}", typing.len()).as_bytes(),
    );
    s.extend_from_slice(b"NAK 4\r\n");
    s.extend_from_slice(b"217 5\r\n");
    s.extend_from_slice(b"BYE alice@example.com 1\r\n");
    s
}

fn parse_all(bytes: &[u8], dir: Direction, version: u8) -> Vec<Frame> {
    let limits = Limits::default();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        match parse(&mut buf, &limits, dir, version) {
            Ok(Some(f)) => out.push(f),
            Ok(None) => break,
            Err(e) => panic!("unexpected {e} after {} frames", out.len()),
        }
    }
    assert!(
        buf.is_empty(),
        "left over: {:?}",
        String::from_utf8_lossy(&buf)
    );
    out
}

fn f(verb: Verb, trid: Option<u32>, args: &[&str]) -> Frame {
    Frame {
        verb,
        trid,
        args: args.iter().map(|s| s.to_string()).collect(),
        payload: None,
    }
}

fn with(frame: Frame, payload: &[u8]) -> Frame {
    frame.with_payload(Bytes::copy_from_slice(payload))
}

#[test]
fn profile_payload_is_371_bytes() {
    assert_eq!(profile_payload().len(), 371);
    assert_eq!(SHIELDS.len(), 145);
    assert_eq!(UBX_ALICE.len(), 60);
    assert_eq!(UUX_BRIDGE.len(), 72);
}

#[test]
fn msnp12_transcript_server_side() {
    let frames = parse_all(&msnp12_server(), Direction::ServerToClient, 12);
    let want = vec![
        f(Verb::VER, Some(1), &["MSNP12"]),
        f(
            Verb::CVR,
            Some(2),
            &[
                "7.5.0324",
                "7.5.0324",
                "7.5.0324",
                "https://example.invalid",
                "https://example.invalid",
            ],
        ),
        f(
            Verb::USR,
            Some(3),
            &["TWN", "S", "ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1"],
        ),
        f(Verb::USR, Some(4), &["OK", "bridge@example.com", "1", "0"]),
        f(Verb::SBS, Some(0), &["null"]),
        with(
            f(Verb::MSG, None, &["Hotmail", "Hotmail"]),
            &profile_payload(),
        ),
        f(
            Verb::SYN,
            Some(5),
            &[
                "2000-01-01T00:00:00.0-00:00",
                "2000-01-01T00:00:00.0-00:00",
                "2",
                "1",
            ],
        ),
        f(Verb::GTC, None, &["A"]),
        f(Verb::BLP, None, &["AL"]),
        f(Verb::PRP, None, &["MFN", "Matrix%20Bridge"]),
        f(
            Verb::LSG,
            None,
            &["Friends", "8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80"],
        ),
        f(
            Verb::LST,
            None,
            &[
                "N=alice@example.com",
                "F=Alice",
                "C=1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5",
                "11",
                "1",
                "8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80",
            ],
        ),
        f(
            Verb::LST,
            None,
            &["N=carol@example.com", "F=Carol", "10", "1"],
        ),
        with(f(Verb::GCF, Some(6), &["Shields.xml"]), SHIELDS.as_bytes()),
        f(Verb::CHG, Some(7), &["NLN", "1342177280"]),
        f(
            Verb::ILN,
            Some(7),
            &[
                "NLN",
                "alice@example.com",
                "Alice",
                "1342177312",
                "%3Cmsnobj%2F%3E",
            ],
        ),
        with(
            f(Verb::UBX, None, &["alice@example.com"]),
            UBX_ALICE.as_bytes(),
        ),
        f(Verb::UUX, Some(8), &["0"]),
        f(Verb::QNG, None, &["60"]),
        f(Verb::CHL, Some(0), &["13038318816579321232"]),
        f(Verb::QRY, Some(10), &[]),
        f(
            Verb::NLN,
            None,
            &["AWY", "alice@example.com", "Alice", "1342177312"],
        ),
        f(Verb::FLN, None, &["alice@example.com"]),
        f(
            Verb::RNG,
            None,
            &[
                "11752014",
                "192.0.2.1:1864",
                "CKI",
                "1938475.2938475",
                "alice@example.com",
                "Alice",
            ],
        ),
        f(
            Verb::XFR,
            Some(20),
            &["SB", "192.0.2.1:1864", "CKI", "8327461923.1849.2847"],
        ),
        f(Verb::Error(913), Some(21), &[]),
        f(Verb::OUT, None, &["OTH"]),
    ];
    assert_eq!(frames, want);
    let err = frames.get(25).and_then(Frame::server_error);
    assert_eq!(err.map(|e| (e.code, e.trid)), Some((913, Some(21))));
    assert!(
        frames
            .get(25)
            .is_some_and(|fr| fr.is_reply_to(Verb::XFR, 21))
    );
    assert!(
        frames
            .get(14)
            .is_some_and(|fr| fr.is_reply_to(Verb::CHG, 7))
    );
    assert!(
        !frames
            .get(15)
            .is_some_and(|fr| fr.is_reply_to(Verb::CHG, 7)),
        "ILN is not the CHG reply"
    );
}

#[test]
fn msnp12_transcript_client_side() {
    let frames = parse_all(&msnp12_client(), Direction::ClientToServer, 12);
    let want = vec![
        f(
            Verb::VER,
            Some(1),
            &["MSNP12", "MSNP11", "MSNP10", "MSNP9", "MSNP8", "CVR0"],
        ),
        f(
            Verb::CVR,
            Some(2),
            &[
                "0x0409",
                "winnt",
                "5.1",
                "i386",
                "MSNMSGR",
                "7.5.0324",
                "msmsgs",
                "bridge@example.com",
            ],
        ),
        f(Verb::USR, Some(3), &["TWN", "I", "bridge@example.com"]),
        f(
            Verb::USR,
            Some(4),
            &["TWN", "S", "t=Q2xhc3NpY0V4YW1wbGVUb2s="],
        ),
        f(Verb::SYN, Some(5), &["0", "0"]),
        f(Verb::GCF, Some(6), &["Shields.xml"]),
        f(Verb::CHG, Some(7), &["NLN", "1342177280"]),
        with(f(Verb::UUX, Some(8), &[]), UUX_BRIDGE.as_bytes()),
        f(Verb::PNG, None, &[]),
        with(
            f(Verb::QRY, Some(10), &["PROD0090YUAUV{2B"]),
            b"b01c13020e374d4fa20abfad6981b7a9",
        ),
        f(Verb::OUT, None, &[]),
    ];
    assert_eq!(frames, want);
    // Our builders produce exactly the transcript bytes.
    let mut out = BytesMut::new();
    for fr in &want {
        assert_eq!(fr.encode(&mut out), Ok(()));
    }
    assert_eq!(&out[..], &msnp12_client()[..]);
}

#[test]
fn msnp18_transcript_and_payload_errors() {
    let frames = parse_all(&msnp18_server(), Direction::ServerToClient, 18);
    assert_eq!(frames.len(), 17);
    assert_eq!(
        frames
            .get(1)
            .and_then(|f| f.payload.as_ref())
            .map(|p| p.len()),
        Some(145)
    );
    assert_eq!(frames.get(1).and_then(Frame::trid), Some(0));
    assert_eq!(
        frames.get(5),
        Some(&with(f(Verb::UBX, None, &["1:bridge@example.com"]), b""))
    );
    assert_eq!(frames.get(7), Some(&f(Verb::ADL, Some(6), &["OK"])));
    assert_eq!(
        frames.get(8),
        Some(&f(Verb::PRP, Some(7), &["MFN", "Matrix%20Bridge"]))
    );
    assert_eq!(frames.get(11).map(|f| f.trid), Some(None));
    assert_eq!(
        frames
            .get(13)
            .map(|f| (f.verb, f.trid, f.payload.as_ref().map(Bytes::len))),
        Some((Verb::ADL, Some(0), Some(66)))
    );
    let e = frames.get(14).and_then(Frame::server_error);
    assert_eq!(e.as_ref().map(|e| (e.code, e.trid)), Some((241, Some(12))));
    assert_eq!(
        e.and_then(|e| e.payload),
        Some(Bytes::from_static(b"hello"))
    );
    assert_eq!(
        frames
            .get(15)
            .and_then(|f| f.payload.as_ref())
            .map(|p| p.len()),
        Some(178)
    );
}

#[test]
fn circle_verbs_carry_payloads_from_msnp18() {
    // §15.4: the server's `PUT trid OK 0` (empty payload), `NFY PUT len`, `SDG 0 len`.
    let server = b"PUT 13 OK 0\r\nNFY PUT 5\r\nhelloSDG 0 3\r\nabcCHL 0 1\r\n";
    let frames = parse_all(server, Direction::ServerToClient, 18);
    assert_eq!(
        frames,
        vec![
            with(f(Verb::PUT, Some(13), &["OK"]), b""),
            with(f(Verb::NFY, None, &["PUT"]), b"hello"),
            with(f(Verb::SDG, Some(0), &[]), b"abc"),
            f(Verb::CHL, Some(0), &["1"]),
        ]
    );
    // The client's `PUT trid len` and `SDG trid len`.
    let client = parse_all(
        b"PUT 13 2\r\nabSDG 14 1\r\nz",
        Direction::ClientToServer,
        18,
    );
    assert_eq!(
        client,
        vec![
            with(f(Verb::PUT, Some(13), &[]), b"ab"),
            with(f(Verb::SDG, Some(14), &[]), b"z"),
        ]
    );
    // Below MSNP18 they are plain lines.
    let old = parse_all(b"SDG 0 3\r\n", Direction::ServerToClient, 15);
    assert_eq!(old, vec![f(Verb::SDG, Some(0), &["3"])]);
}

#[test]
fn error_payloads_only_from_msnp13() {
    // In MSNP12 `241 12 5` is a plain error line with an extra argument.
    let frames = parse_all(b"241 12 5\r\n", Direction::ServerToClient, 12);
    assert_eq!(frames, vec![f(Verb::Error(241), Some(12), &["5"])]);
    let frames = parse_all(b"911 3\r\n", Direction::ServerToClient, 18);
    assert_eq!(frames, vec![f(Verb::Error(911), Some(3), &[])]);
}

#[test]
fn switchboard_transcript() {
    let frames = parse_all(&sb_server(), Direction::ServerToClient, 12);
    assert_eq!(frames.len(), 11);
    assert_eq!(
        frames.get(2),
        Some(&f(
            Verb::JOI,
            None,
            &["alice@example.com", "Alice", "1342177312"]
        ))
    );
    assert_eq!(
        frames.get(4),
        Some(&f(
            Verb::IRO,
            Some(1),
            &["1", "1", "alice@example.com", "Alice", "1342177312"]
        ))
    );
    assert_eq!(
        frames
            .get(6)
            .and_then(|f| f.payload.as_ref())
            .map(Bytes::len),
        Some(127)
    );
    assert_eq!(
        frames.get(10),
        Some(&f(Verb::BYE, None, &["alice@example.com", "1"]))
    );
}

fn all_transcripts() -> Vec<(Vec<u8>, Direction, u8)> {
    vec![
        (msnp12_server(), Direction::ServerToClient, 12),
        (msnp12_client(), Direction::ClientToServer, 12),
        (msnp18_server(), Direction::ServerToClient, 18),
        (sb_server(), Direction::ServerToClient, 12),
    ]
}

#[test]
fn split_at_every_offset_gives_identical_frames() {
    let limits = Limits::default();
    for (bytes, dir, ver) in all_transcripts() {
        let whole = parse_all(&bytes, dir, ver);
        for cut in 0..=bytes.len() {
            let mut buf = BytesMut::from(bytes.get(..cut).unwrap_or_default());
            let mut got = Vec::new();
            loop {
                let before = buf.clone();
                match parse(&mut buf, &limits, dir, ver) {
                    Ok(Some(fr)) => got.push(fr),
                    Ok(None) => {
                        assert_eq!(buf, before, "Ok(None) must leave the buffer untouched");
                        break;
                    }
                    Err(e) => panic!("cut {cut}: {e}"),
                }
            }
            buf.extend_from_slice(bytes.get(cut..).unwrap_or_default());
            while let Ok(Some(fr)) = parse(&mut buf, &limits, dir, ver) {
                got.push(fr);
            }
            assert!(buf.is_empty());
            assert_eq!(got, whole, "cut at {cut}");
        }
    }
}

#[test]
fn byte_by_byte_feed() {
    let limits = Limits::default();
    for (bytes, dir, ver) in all_transcripts() {
        let whole = parse_all(&bytes, dir, ver);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in &bytes {
            buf.extend_from_slice(&[b]);
            while let Ok(Some(fr)) = parse(&mut buf, &limits, dir, ver) {
                got.push(fr);
            }
        }
        assert_eq!(got, whole);
    }
}

#[test]
fn encode_then_parse_round_trips() {
    for (bytes, dir, ver) in all_transcripts() {
        for frame in parse_all(&bytes, dir, ver) {
            let wire = frame.to_bytes().unwrap_or_default();
            let again = parse_all(&wire, dir, ver);
            assert_eq!(again, vec![frame]);
        }
    }
    // Builders: payload length appended automatically.
    let uux = Frame::command(Verb::UUX, 8, Vec::<String>::new()).with_payload(UUX_BRIDGE);
    assert_eq!(
        uux.to_bytes().map(|b| b.starts_with(b"UUX 8 72\r\n<Data>")),
        Ok(true)
    );
    let png = Frame::untracked(Verb::PNG, Vec::<String>::new());
    assert_eq!(png.to_bytes(), Ok(Bytes::from_static(b"PNG\r\n")));
    assert_eq!(
        f(Verb::Error(7), Some(1), &[]).to_bytes(),
        Ok(Bytes::from_static(b"007 1\r\n"))
    );
}

#[test]
fn encode_rejects_injection() {
    let mut out = BytesMut::new();
    for bad in ["Matrix Bridge", "a\r\nOUT", "", "tab\there", "ff\x0c"] {
        let fr = Frame::command(Verb::PRP, 3, ["MFN", bad]);
        assert!(
            matches!(
                fr.encode(&mut out),
                Err(EncodeError::BadArgument { index: 1, .. })
            ),
            "{bad:?}"
        );
    }
    assert!(out.is_empty(), "nothing written on error");
}

#[test]
fn tolerates_trailing_space_blank_lines_and_bare_lf() {
    let frames = parse_all(
        b"\r\n\r\nLST N=x F=y 10 1 \r\nQNG 60\n  \nOUT\r\n",
        Direction::ServerToClient,
        12,
    );
    assert_eq!(
        frames,
        vec![
            f(Verb::LST, None, &["N=x", "F=y", "10", "1"]),
            f(Verb::QNG, None, &["60"]),
            f(Verb::OUT, None, &[])
        ]
    );
}

#[test]
fn unknown_verbs_are_data() {
    let frames = parse_all(b"ZZZ 5 foo\r\nXYZ hello\r\n", Direction::ServerToClient, 12);
    assert_eq!(
        frames,
        vec![
            f(Verb::Command(*b"ZZZ"), Some(5), &["foo"]),
            f(Verb::Command(*b"XYZ"), None, &["hello"])
        ]
    );
}

#[test]
fn bad_verb_is_recoverable_and_consumes_the_line() {
    let limits = Limits::default();
    let mut buf = BytesMut::from(&b"HELLO world\r\nOUT\r\n"[..]);
    let err = parse(&mut buf, &limits, Direction::ServerToClient, 12);
    assert!(matches!(&err, Err(e @ FrameError::BadVerb { .. }) if !e.is_fatal()));
    assert_eq!(
        parse(&mut buf, &limits, Direction::ServerToClient, 12),
        Ok(Some(f(Verb::OUT, None, &[])))
    );
}

#[test]
fn non_utf8_arguments_are_decoded_lossily() {
    let frames = parse_all(
        b"NLN NLN bob@example.com B\xffb 1\r\n",
        Direction::ServerToClient,
        12,
    );
    assert_eq!(frames.first().and_then(|f| f.arg(2)), Some("B\u{FFFD}b"));
}

#[test]
fn oversize_payload_fails_without_allocating() {
    let limits = Limits::default();
    for line in [
        &b"MSG a b 99999999999\r\n"[..],
        b"MSG a b 65537\r\n",
        b"NOT 18446744073709551615\r\n",
        b"UBX e 262145\r\n",
    ] {
        let mut buf = BytesMut::from(line);
        let cap = buf.capacity();
        let err = parse(&mut buf, &limits, Direction::ServerToClient, 12);
        assert!(
            matches!(&err, Err(e @ FrameError::PayloadTooLarge { .. }) if e.is_fatal()),
            "{err:?}"
        );
        assert_eq!(buf.capacity(), cap);
        assert_eq!(&buf[..], line, "fatal errors leave the buffer as it was");
    }
    // Exactly at the limit is fine (and waits for the bytes).
    let mut buf = BytesMut::from(&b"MSG a b 65536\r\n"[..]);
    assert_eq!(
        parse(&mut buf, &limits, Direction::ServerToClient, 12),
        Ok(None)
    );
}

#[test]
fn bad_and_missing_lengths_are_errors() {
    let limits = Limits::default();
    for (line, want_missing) in [
        (&b"MSG a b abc\r\n"[..], false),
        (b"MSG a b +5\r\n", false),
        (b"MSG a b -1\r\n", false),
        (b"NOT 123456789012345678901234\r\n", false),
        (b"UBX e 0x10\r\n", false),
        (b"NOT\r\n", true),
    ] {
        let mut buf = BytesMut::from(line);
        let err = parse(&mut buf, &limits, Direction::ServerToClient, 12);
        match err {
            Err(FrameError::MissingLength { .. }) => assert!(want_missing),
            Err(FrameError::BadLength { .. }) => assert!(!want_missing),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(line)),
        }
    }
}

#[test]
fn oversize_lines_are_errors() {
    let limits = Limits {
        max_line: 64,
        ..Limits::default()
    };
    let mut buf = BytesMut::from(&[b'A'; 66][..]);
    assert!(matches!(
        parse(&mut buf, &limits, Direction::ServerToClient, 12),
        Err(FrameError::LineTooLong { .. })
    ));
    // 64 bytes plus a pending CR is still "need more".
    let mut line = vec![b'A'; 64];
    line.push(b'\r');
    let mut buf = BytesMut::from(&line[..]);
    assert_eq!(
        parse(&mut buf, &limits, Direction::ServerToClient, 12),
        Ok(None)
    );
    let mut long = b"NLN ".to_vec();
    long.extend_from_slice(&[b'x'; 70]);
    long.extend_from_slice(b"\r\n");
    let mut buf = BytesMut::from(&long[..]);
    assert!(matches!(
        parse(&mut buf, &limits, Direction::ServerToClient, 12),
        Err(FrameError::LineTooLong { len: 74, max: 64 })
    ));
}

/// Tiny deterministic PRNG (xorshift64*), so mutation tests need no `rand`.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Applies 1–4 random mutations: byte flips, truncation, insertions of interesting
/// bytes, deletions, and duplicated ranges.
pub(crate) fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    const INTERESTING: &[u8] = b" \r\n0123456789%:\t\xff\xc3";
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let pos = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if pos < v.len() => v[pos] ^= 1 << rng.below(8),
            1 => v.truncate(pos),
            2 => v.insert(pos, INTERESTING[rng.below(INTERESTING.len())]),
            3 if pos < v.len() => {
                v.remove(pos);
            }
            4 => {
                let len = rng.below(32).min(v.len() - pos);
                let chunk: Vec<u8> = v[pos..pos + len].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            _ => {
                let digits = b"99999999999";
                v.splice(
                    pos..pos,
                    digits[..1 + rng.below(digits.len())].iter().copied(),
                );
            }
        }
    }
    v
}

#[test]
fn mutated_transcripts_never_panic_and_always_progress() {
    let limits = Limits {
        max_line: 256,
        max_msg_payload: 4096,
        ..Limits::default()
    };
    let transcripts = all_transcripts();
    let mut rng = Rng::new(0x5eed);
    for i in 0..3000 {
        let (bytes, dir, ver) = &transcripts[i % transcripts.len()];
        let input = mutate(&mut rng, bytes);
        let mut buf = BytesMut::from(&input[..]);
        loop {
            let before = buf.len();
            match parse(&mut buf, &limits, *dir, *ver) {
                Ok(Some(frame)) => {
                    assert!(buf.len() < before, "a frame consumes bytes");
                    // Whatever parsed must re-encode and re-parse identically, unless
                    // an argument became unencodable (impossible: args never hold
                    // whitespace) -- so encoding must succeed.
                    let wire = frame.to_bytes();
                    assert!(wire.is_ok(), "{frame:?}");
                    let mut again = BytesMut::from(&wire.unwrap_or_default()[..]);
                    let reparsed = parse(&mut again, &limits, *dir, *ver);
                    assert_eq!(reparsed, Ok(Some(frame.clone())), "parse(encode(x)) == x");
                    assert!(again.is_empty());
                    if let Some(p) = &frame.payload {
                        let _ = crate::message::parse_msg(p, &limits);
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_fatal() => {
                    assert_eq!(buf.len(), before, "fatal errors leave the buffer");
                    break;
                }
                Err(_) => assert!(buf.len() < before, "recoverable errors consume the line"),
            }
        }
    }
}
