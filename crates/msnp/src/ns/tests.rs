//! Tests for `ns.rs`: the MSNP.md §2.7 MSNP12 transcript and an MSNP8 login byte for
//! byte, redirects, login failures, challenges (§3.4 vector), keepalive timing,
//! presence/PSM parsing for MSNP8 and MSNP10–12, list commands and replies.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::*;
use crate::frame::{Direction, parse};

fn feed(s: &mut NsSession, now: Instant, wire: &str) {
    let mut buf = BytesMut::from(wire.as_bytes());
    loop {
        match parse(
            &mut buf,
            &Limits::default(),
            Direction::ServerToClient,
            s.version(),
        ) {
            Ok(Some(f)) => s.handle_frame(now, f),
            Ok(None) => break,
            Err(e) => panic!("bad test input: {e}"),
        }
    }
    assert!(buf.is_empty(), "unparsed test input left");
}

fn sent(s: &mut NsSession) -> String {
    let mut out = Vec::new();
    while let Some(f) = s.poll_transmit() {
        out.extend_from_slice(&f.to_bytes().unwrap_or_default());
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The session's events, without the `Replied` acknowledgements (checked on their own in
/// `replies_are_reported_after_their_events`).
fn events(s: &mut NsSession) -> Vec<NsEvent> {
    std::iter::from_fn(|| s.poll_event())
        .filter(|e| !matches!(e, NsEvent::Replied { .. }))
        .collect()
}

fn config() -> NsConfig {
    let mut c = NsConfig::new("bridge@example.com");
    c.friendly_name = Some("Matrix Bridge".into());
    c.personal_message = Some("Bridged from Matrix".into());
    c
}

/// Drives a session through VER/CVR/USR I up to `NeedTicket` for `version`.
fn to_ticket(now: Instant, version: u8) -> NsSession {
    let mut s = NsSession::new(config(), now);
    sent(&mut s);
    feed(&mut s, now, &format!("VER 1 MSNP{version}\r\n"));
    feed(
        &mut s,
        now,
        "CVR 2 7.5.0324 7.5.0324 7.5.0324 https://example.invalid https://example.invalid\r\n",
    );
    feed(
        &mut s,
        now,
        "USR 3 TWN S ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1\r\n",
    );
    sent(&mut s);
    events(&mut s);
    s
}

const PROFILE: &str = "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsprofile\r\n\r\n";

/// `line len\r\npayload` with the length computed.
fn pl(line: &str, payload: &str) -> String {
    format!("{line} {}\r\n{payload}", payload.len())
}

fn msnp12_burst() -> String {
    format!(
        "USR 4 OK bridge@example.com 1 0\r\nSBS 0 null\r\n{}",
        pl("MSG Hotmail Hotmail", PROFILE)
    )
}

const MSNP12_SYNC: &str = "SYN 5 2000-01-01T00:00:00.0-00:00 2000-01-01T00:00:00.0-00:00 2 1\r\n\
GTC A\r\n\
BLP AL\r\n\
PRP MFN Matrix%20Bridge\r\n\
LSG Friends 8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80\r\n\
LST N=alice@example.com F=Alice C=1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5 11 1 8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80\r\n\
LST N=carol@example.com F=Carol 10 1\r\n";

fn online12(now: Instant) -> NsSession {
    let mut s = to_ticket(now, 12);
    assert_eq!(
        s.handle_ticket(now, &Secret::new("t=Q2xhc3NpY0V4YW1wbGVUb2s=")),
        Ok(())
    );
    feed(&mut s, now, &msnp12_burst());
    feed(&mut s, now, MSNP12_SYNC);
    sent(&mut s);
    events(&mut s);
    assert!(s.is_online());
    s
}

#[test]
fn msnp12_transcript_section_2_7() {
    let now = Instant::now();
    let mut s = NsSession::new(config(), now);
    assert_eq!(
        sent(&mut s),
        "VER 1 MSNP12 MSNP11 MSNP10 MSNP9 MSNP8 CVR0\r\n"
    );
    feed(&mut s, now, "VER 1 MSNP12\r\n");
    assert_eq!(
        sent(&mut s),
        "CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 7.5.0324 msmsgs bridge@example.com\r\n"
    );
    feed(
        &mut s,
        now,
        "CVR 2 7.5.0324 7.5.0324 7.5.0324 https://example.invalid https://example.invalid\r\n",
    );
    assert_eq!(sent(&mut s), "USR 3 TWN I bridge@example.com\r\n");
    feed(
        &mut s,
        now,
        "USR 3 TWN S ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1\r\n",
    );
    assert_eq!(
        events(&mut s),
        vec![NsEvent::NeedTicket {
            tw_challenge: "ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1".into()
        }]
    );
    assert_eq!(sent(&mut s), "");
    assert_eq!(
        s.handle_ticket(now, &Secret::new("t=Q2xhc3NpY0V4YW1wbGVUb2s=")),
        Ok(())
    );
    assert!(!format!("{s:?}").contains("Q2xh"), "ticket leaked in Debug");
    assert_eq!(sent(&mut s), "USR 4 TWN S t=Q2xhc3NpY0V4YW1wbGVUb2s=\r\n");
    feed(&mut s, now, &msnp12_burst());
    assert_eq!(sent(&mut s), "SYN 5 0 0\r\n");
    let ev = events(&mut s);
    assert!(matches!(ev.as_slice(), [NsEvent::Profile(_)]), "{ev:?}");
    feed(&mut s, now, MSNP12_SYNC);
    // Friendly name already matches PRP MFN: no PRP; GCF, first CHG, then UUX.
    let uux = "<Data><PSM>Bridged from Matrix</PSM><CurrentMedia></CurrentMedia></Data>";
    assert_eq!(uux.len(), 72);
    assert_eq!(
        sent(&mut s),
        format!("GCF 6 Shields.xml\r\nCHG 7 NLN 1342177280\r\nUUX 8 72\r\n{uux}")
    );
    let ev = events(&mut s);
    assert_eq!(
        ev.first(),
        Some(&NsEvent::LoggedIn {
            version: 12,
            account: "bridge@example.com".into()
        })
    );
    let Some(NsEvent::ContactList(list)) = ev.get(1) else {
        panic!("no contact list: {ev:?}");
    };
    assert_eq!(list.own_friendly_name.as_deref(), Some("Matrix Bridge"));
    assert_eq!(list.privacy.as_deref(), Some("AL"));
    assert_eq!(list.gtc.as_deref(), Some("A"));
    assert_eq!(
        list.groups,
        vec![Group {
            id: "8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80".into(),
            name: "Friends".into()
        }]
    );
    let alice = &list.contacts["alice@example.com"];
    assert_eq!(
        alice.guid.as_deref(),
        Some("1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5")
    );
    assert_eq!(alice.lists, 11);
    assert!(alice.on(List::Forward) && alice.on(List::Reverse) && !alice.on(List::Block));
    assert_eq!(alice.network, Some(1));
    assert_eq!(alice.groups, vec!["8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80"]);
    let carol = &list.contacts["carol@example.com"];
    assert_eq!((carol.lists, carol.guid.clone()), (10, None));
    assert_eq!(carol.network, Some(1));
    assert!(carol.groups.is_empty());

    feed(
        &mut s,
        now,
        &format!(
            "{}CHG 7 NLN 1342177280\r\n\
             ILN 7 NLN alice@example.com Alice 1342177312 %3Cmsnobj%2F%3E\r\n\
             UBX alice@example.com 60\r\n<Data><PSM>at work</PSM><CurrentMedia></CurrentMedia></Data>\
             UUX 8 0\r\n",
            pl("GCF 6 Shields.xml", "<config/>")
        ),
    );
    assert_eq!(
        events(&mut s),
        vec![
            NsEvent::OwnStatus {
                status: Status::Online
            },
            NsEvent::PresenceChanged(Presence {
                contact: "alice@example.com".into(),
                status: Status::Online,
                friendly_name: "Alice".into(),
                caps: 1_342_177_312,
                msn_object: None,
                initial: true,
            }),
            NsEvent::PersonalMessage {
                contact: "alice@example.com".into(),
                psm: "at work".into(),
                current_media: String::new(),
            },
        ]
    );
    // Keepalive: first PNG after the default 50 s, then QNG's interval.
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(50)));
    let t1 = now + Duration::from_secs(50);
    s.handle_timeout(t1);
    assert_eq!(sent(&mut s), "PNG\r\n");
    feed(&mut s, t1, "QNG 60\r\n");
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(60)));
    assert!(s.pending.is_empty());
}

#[test]
fn msnp8_login_email_lists() {
    let now = Instant::now();
    let mut s = to_ticket(now, 8);
    assert_eq!(s.version(), 8);
    assert_eq!(s.handle_ticket(now, &Secret::new("t=abc")), Ok(()));
    assert_eq!(sent(&mut s), "USR 4 TWN S t=abc\r\n");
    feed(
        &mut s,
        now,
        &format!(
            "USR 4 OK bridge@example.com Old%20Name 1 0\r\n{}",
            pl("MSG Hotmail Hotmail", PROFILE)
        ),
    );
    assert_eq!(sent(&mut s), "SYN 5 0\r\n");
    feed(
        &mut s,
        now,
        "SYN 5 41 2 2\r\nGTC A\r\nBLP AL\r\nLSG 0 Other%20Contacts 0\r\nLSG 1 Friends 0\r\n\
         LST alice@example.com Alice 11 1\r\nBPR PHH 555%20123\r\nLST carol@example.com Carol 10 \r\n",
    );
    // Name differs from USR OK: REA (MSNP8), CHG without msnobj, no GCF/UUX below 11.
    assert_eq!(
        sent(&mut s),
        "REA 6 bridge@example.com Matrix%20Bridge\r\nCHG 7 NLN 1342177280\r\n"
    );
    let list = s.contact_list();
    assert_eq!(list.list_version, Some(41));
    assert_eq!(list.groups.len(), 2);
    assert_eq!(list.groups[0].name, "Other Contacts");
    assert_eq!(list.contacts["alice@example.com"].groups, vec!["1"]);
    assert_eq!(
        list.contacts["alice@example.com"].phones,
        vec![("PHH".to_owned(), "555 123".to_owned())]
    );
    assert_eq!(list.contacts["carol@example.com"].lists, 10);
    events(&mut s);
    feed(
        &mut s,
        now,
        "REA 6 42 bridge@example.com Matrix%20Bridge\r\n\
         ILN 7 AWY alice@example.com Alice%20A 268435492\r\n\
         NLN BSY carol@example.com Carol 0\r\nFLN alice@example.com\r\n",
    );
    assert_eq!(
        events(&mut s),
        vec![
            NsEvent::OwnFriendlyName {
                name: "Matrix Bridge".into()
            },
            NsEvent::PresenceChanged(Presence {
                contact: "alice@example.com".into(),
                status: Status::Away,
                friendly_name: "Alice A".into(),
                caps: 268_435_492,
                msn_object: None,
                initial: true,
            }),
            NsEvent::PresenceChanged(Presence {
                contact: "carol@example.com".into(),
                status: Status::Busy,
                friendly_name: "Carol".into(),
                caps: 0,
                msn_object: None,
                initial: false,
            }),
            NsEvent::ContactOffline {
                contact: "alice@example.com".into()
            },
        ]
    );
    // MSNP8 list commands use ADD/REM with e-mails and list versions.
    assert_eq!(
        s.add_contact(now, List::Forward, "dave@example.com", None, Some("1")),
        Ok(8)
    );
    assert_eq!(
        s.set_personal_message(now, "x", ""),
        Err(CommandError::Unsupported {
            command: "UUX",
            version: 8
        })
    );
    assert_eq!(
        sent(&mut s),
        "ADD 8 FL dave@example.com dave@example.com 1\r\n"
    );
    feed(
        &mut s,
        now,
        "ADD 8 FL 42 dave@example.com dave@example.com 1\r\nADD 0 RL 51 erin@example.com Erin\r\n",
    );
    assert_eq!(
        events(&mut s),
        vec![
            NsEvent::ListChanged(ListChange::ContactAdded {
                list: List::Forward,
                contact: "dave@example.com".into(),
                guid: None,
                group: Some("1".into()),
            }),
            NsEvent::AddedBy {
                contact: "erin@example.com".into(),
                friendly_name: "Erin".into()
            },
        ]
    );
    assert_eq!(s.contact_list().list_version, Some(51));
    assert_eq!(s.block(now, "dave@example.com"), Ok(9));
    assert_eq!(
        sent(&mut s),
        "ADD 9 BL dave@example.com dave@example.com\r\n"
    );
    assert_eq!(s.add_group(now, "Work"), Ok(10));
    assert_eq!(sent(&mut s), "ADG 10 Work 0\r\n");
    feed(&mut s, now, "ADG 10 45 Work 2 0\r\n");
    assert_eq!(
        events(&mut s),
        vec![NsEvent::ListChanged(ListChange::GroupAdded {
            id: "2".into(),
            name: "Work".into()
        })]
    );
}

#[test]
fn redirect_closes_with_address() {
    let now = Instant::now();
    let mut s = NsSession::new(config(), now);
    feed(&mut s, now, "VER 1 MSNP12\r\nCVR 2 x x x a b\r\n");
    sent(&mut s);
    feed(&mut s, now, "XFR 3 NS 192.0.2.7:1863 0 192.0.2.1:1863\r\n");
    assert_eq!(
        events(&mut s),
        vec![NsEvent::Closed(CloseReason::Redirect {
            address: "192.0.2.7:1863".into()
        })]
    );
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn wrong_password_unknown_account_busy() {
    let now = Instant::now();
    let mut s = to_ticket(now, 12);
    assert_eq!(s.handle_ticket(now, &Secret::new("t=bad")), Ok(()));
    feed(&mut s, now, "911 4\r\n");
    assert_eq!(
        events(&mut s),
        vec![NsEvent::Closed(CloseReason::LoginFailed(
            LoginError::AuthenticationFailed { code: 911 }
        ))]
    );

    let mut s = NsSession::new(config(), now);
    feed(&mut s, now, "VER 1 MSNP11\r\nCVR 2 a a a b c\r\n911 3\r\n");
    assert_eq!(
        events(&mut s),
        vec![NsEvent::Closed(CloseReason::LoginFailed(
            LoginError::UnknownAccount { code: 911 }
        ))]
    );

    let mut s = NsSession::new(config(), now);
    feed(&mut s, now, "VER 1 MSNP11\r\n603 2\r\n");
    assert_eq!(
        events(&mut s),
        vec![NsEvent::Closed(CloseReason::LoginFailed(
            LoginError::ServerUnavailable { code: 603 }
        ))]
    );
    // A ticket with whitespace is refused locally; outside the ticket phase too.
    let mut s = to_ticket(now, 12);
    assert!(s.handle_ticket(now, &Secret::new("t=a b")).is_err());
    assert_eq!(
        NsSession::new(config(), now).handle_ticket(now, &Secret::new("t")),
        Err(CommandError::NotOnline)
    );
}

#[test]
fn cvr_error_is_not_fatal() {
    let now = Instant::now();
    let mut s = NsSession::new(config(), now);
    feed(&mut s, now, "VER 1 MSNP12\r\n731 2\r\n");
    assert!(sent(&mut s).ends_with("USR 3 TWN I bridge@example.com\r\n"));
    assert!(events(&mut s).is_empty());
}

#[test]
fn unsupported_version() {
    let now = Instant::now();
    for answer in ["VER 1 0\r\n", "VER 1 MSNP18\r\n", "VER 1\r\n"] {
        let mut s = NsSession::new(config(), now);
        feed(&mut s, now, answer);
        let ev = events(&mut s);
        assert!(
            matches!(
                ev.as_slice(),
                [NsEvent::Closed(CloseReason::LoginFailed(
                    LoginError::UnsupportedVersion { .. }
                ))]
            ),
            "{answer}: {ev:?}"
        );
    }
}

#[test]
fn challenge_answered_with_section_3_4_vector() {
    let now = Instant::now();
    let mut s = online12(now);
    feed(&mut s, now, "CHL 0 13038318816579321232\r\n");
    assert_eq!(
        sent(&mut s),
        "QRY 9 PROD0090YUAUV{2B 32\r\nb01c13020e374d4fa20abfad6981b7a9"
    );
    feed(&mut s, now, "QRY 9\r\n");
    assert!(events(&mut s).is_empty());
}

#[test]
fn keepalive_timeout_and_traffic() {
    let now = Instant::now();
    let mut s = online12(now);
    let ping = now + Duration::from_secs(50);
    // Pending GCF/CHG/UUX time out first (no replies were fed).
    s.handle_timeout(now + Duration::from_secs(30));
    let ev = events(&mut s);
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert!(
        ev.iter()
            .all(|e| matches!(e, NsEvent::RequestTimedOut { .. }))
    );
    assert_eq!(s.poll_timeout(), Some(ping));
    s.handle_timeout(ping - Duration::from_millis(1));
    assert_eq!(sent(&mut s), "");
    s.handle_timeout(ping);
    assert_eq!(sent(&mut s), "PNG\r\n");
    // Traffic without QNG keeps it alive; the next PNG follows.
    feed(&mut s, ping + Duration::from_secs(5), "SBS 0 null\r\n");
    s.handle_timeout(ping + Duration::from_secs(30));
    assert!(!s.is_closed());
    assert_eq!(
        s.poll_timeout(),
        Some(ping + Duration::from_secs(80)),
        "next ping after the interval"
    );
    // QNG with an absurd value is clamped to 120 s (§11.1).
    let p2 = ping + Duration::from_secs(80);
    s.handle_timeout(p2);
    assert_eq!(sent(&mut s), "PNG\r\n");
    feed(&mut s, p2, "QNG 100000\r\n");
    assert_eq!(s.poll_timeout(), Some(p2 + Duration::from_secs(120)));
    let p3 = p2 + Duration::from_secs(120);
    s.handle_timeout(p3);
    assert_eq!(sent(&mut s), "PNG\r\n");
    s.handle_timeout(p3 + Duration::from_secs(30));
    assert_eq!(
        events(&mut s),
        vec![NsEvent::Closed(CloseReason::PingTimeout)]
    );
}

#[test]
fn login_step_timeout() {
    let now = Instant::now();
    let mut s = NsSession::new(config(), now);
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(30)));
    s.handle_timeout(now + Duration::from_secs(30));
    assert_eq!(
        events(&mut s),
        vec![NsEvent::Closed(CloseReason::LoginFailed(
            LoginError::Timeout {
                command: "VER".into()
            }
        ))]
    );
}

#[test]
fn msnp12_presence_psm_and_rng() {
    let now = Instant::now();
    let mut s = online12(now);
    feed(
        &mut s,
        now,
        &format!(
            "NLN IDL carol@example.com Ren%C3%A9e 1342177312 %3Cmsnobj%20Creator%3D%22carol%22%2F%3E\r\n\
             {}UBX carol@example.com 0\r\n\
             RNG 11752014 192.0.2.1:1864 CKI 1938475.2938475 alice@example.com Alice\r\n\
             OUT OTH\r\n",
            pl(
                "UBX carol@example.com",
                "<Data><PSM>a &amp; b &#x263A;</PSM><CurrentMedia>\\0Music\\01\\0{0}\\0Song\\0\\0</CurrentMedia></Data>"
            )
        ),
    );
    let ev = events(&mut s);
    assert_eq!(
        ev[0],
        NsEvent::PresenceChanged(Presence {
            contact: "carol@example.com".into(),
            status: Status::Idle,
            friendly_name: "Renée".into(),
            caps: 1_342_177_312,
            msn_object: Some("<msnobj Creator=\"carol\"/>".into()),
            initial: false,
        })
    );
    assert_eq!(
        ev[1],
        NsEvent::PersonalMessage {
            contact: "carol@example.com".into(),
            psm: "a & b \u{263A}".into(),
            current_media: "\\0Music\\01\\0{0}\\0Song\\0\\0".into(),
        }
    );
    assert_eq!(
        ev[2],
        NsEvent::PersonalMessage {
            contact: "carol@example.com".into(),
            psm: String::new(),
            current_media: String::new(),
        }
    );
    let NsEvent::SwitchboardInvite {
        session_id,
        address,
        auth,
        inviter,
        inviter_name,
    } = &ev[3]
    else {
        panic!("{ev:?}");
    };
    assert_eq!(
        (session_id.as_str(), address.as_str(), auth.expose()),
        ("11752014", "192.0.2.1:1864", "1938475.2938475")
    );
    assert_eq!(
        (inviter.as_str(), inviter_name.as_str()),
        ("alice@example.com", "Alice")
    );
    assert!(!format!("{:?}", ev[3]).contains("1938475.2938475"));
    assert_eq!(ev[4], NsEvent::Closed(CloseReason::SignedInElsewhere));
    assert_eq!(ev.len(), 5);
}

#[test]
fn msnp12_list_commands_and_switchboard() {
    let now = Instant::now();
    let mut s = online12(now);
    let dave_guid = "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9";
    let group = "8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80";
    assert_eq!(
        s.add_contact(now, List::Forward, "dave@example.com", None, None),
        Ok(9)
    );
    feed(
        &mut s,
        now,
        &format!("ADC 9 FL N=dave@example.com F=dave@example.com C={dave_guid}\r\n"),
    );
    assert_eq!(s.add_to_group(now, "dave@example.com", group), Ok(10));
    feed(&mut s, now, &format!("ADC 10 FL C={dave_guid} {group}\r\n"));
    assert_eq!(
        s.remove_contact(now, List::Forward, "dave@example.com", Some(group)),
        Ok(11)
    );
    assert_eq!(s.block(now, "alice@example.com"), Ok(13));
    assert_eq!(
        sent(&mut s),
        format!(
            "ADC 9 FL N=dave@example.com F=dave@example.com\r\n\
             ADC 10 FL C={dave_guid} {group}\r\n\
             REM 11 FL {dave_guid} {group}\r\n\
             REM 12 AL alice@example.com\r\n\
             ADC 13 BL N=alice@example.com\r\n"
        )
    );
    feed(
        &mut s,
        now,
        &format!(
            "REM 11 FL {dave_guid} {group}\r\nREM 12 AL alice@example.com\r\nADC 13 BL N=alice@example.com\r\n"
        ),
    );
    let ev = events(&mut s);
    assert_eq!(
        ev[0],
        NsEvent::ListChanged(ListChange::ContactAdded {
            list: List::Forward,
            contact: "dave@example.com".into(),
            guid: Some(dave_guid.into()),
            group: None,
        })
    );
    assert_eq!(ev.len(), 5, "{ev:?}");
    let list = s.contact_list();
    assert!(list.contacts["dave@example.com"].groups.is_empty());
    let alice = &list.contacts["alice@example.com"];
    assert!(alice.on(List::Block) && !alice.on(List::Allow));
    // Async RL add/remove (R2M with N=, Escargot without).
    feed(
        &mut s,
        now,
        "ADC 0 RL N=erin@example.com F=Erin\r\nREM 0 RL erin@example.com\r\nREM 0 RL N=erin@example.com\r\n",
    );
    assert_eq!(
        events(&mut s),
        vec![
            NsEvent::AddedBy {
                contact: "erin@example.com".into(),
                friendly_name: "Erin".into()
            },
            NsEvent::RemovedBy {
                contact: "erin@example.com".into()
            },
            NsEvent::RemovedBy {
                contact: "erin@example.com".into()
            },
        ]
    );
    // Groups: ADG reply forms of both servers.
    assert_eq!(s.add_group(now, "Work"), Ok(14));
    assert_eq!(s.add_group(now, "Play"), Ok(15));
    assert_eq!(sent(&mut s), "ADG 14 Work\r\nADG 15 Play\r\n");
    let g1 = "5c1e0000-0000-4000-8000-000000000001";
    let g2 = "5c1e0000-0000-4000-8000-000000000002";
    feed(
        &mut s,
        now,
        &format!("ADG 14 Work {g1} 0\r\nADG 15 1 Play {g2}\r\n"),
    );
    assert_eq!(s.rename_group(now, g1, "Projects"), Ok(16));
    assert_eq!(s.remove_group(now, g2), Ok(17));
    assert_eq!(
        sent(&mut s),
        format!("REG 16 {g1} Projects\r\nRMG 17 {g2}\r\n")
    );
    feed(
        &mut s,
        now,
        &format!("REG 16 1 Projects {g1} 0\r\nRMG 17 1 {g2}\r\n"),
    );
    let ev = events(&mut s);
    assert_eq!(ev.len(), 4, "{ev:?}");
    assert_eq!(
        s.contact_list()
            .groups
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>(),
        vec!["Friends", "Projects"]
    );
    // Switchboard request, success and 913.
    assert_eq!(s.request_switchboard(now), Ok(SbRequestId(18)));
    assert_eq!(s.request_switchboard(now), Ok(SbRequestId(19)));
    assert_eq!(sent(&mut s), "XFR 18 SB\r\nXFR 19 SB\r\n");
    feed(
        &mut s,
        now,
        "XFR 18 SB 192.0.2.1:1864 CKI 8327461923.1849.2847\r\n913 19\r\n",
    );
    let ev = events(&mut s);
    let NsEvent::SwitchboardReady {
        request,
        address,
        auth,
    } = &ev[0]
    else {
        panic!("{ev:?}");
    };
    assert_eq!(
        (*request, address.as_str(), auth.expose()),
        (SbRequestId(18), "192.0.2.1:1864", "8327461923.1849.2847")
    );
    assert_eq!(
        ev[1],
        NsEvent::SwitchboardFailed {
            request: SbRequestId(19),
            code: Some(913)
        }
    );
    // Unknown contact and server-managed lists are refused locally.
    assert_eq!(
        s.remove_contact(now, List::Forward, "nobody@example.com", None),
        Err(CommandError::UnknownContact)
    );
    assert!(
        s.add_contact(now, List::Reverse, "x@example.com", None, None)
            .is_err()
    );
    assert!(s.set_status(now, Status::Offline, 0, None).is_err());
    // Status with msnobj, error reply, logout.
    assert_eq!(
        s.set_status(now, Status::Away, 0x5000_0000, Some("<msnobj/>")),
        Ok(20)
    );
    assert_eq!(sent(&mut s), "CHG 20 AWY 1342177280 %3Cmsnobj%2F%3E\r\n");
    feed(&mut s, now, "800 20\r\n");
    assert_eq!(
        events(&mut s),
        vec![NsEvent::ServerError {
            trid: Some(20),
            code: 800,
            command: Some(Verb::CHG)
        }]
    );
    assert_eq!(s.set_privacy(now, false), Ok(21));
    assert_eq!(sent(&mut s), "BLP 21 BL\r\n");
    feed(&mut s, now, "BLP 21 BL\r\n");
    assert_eq!(s.contact_list().privacy.as_deref(), Some("BL"));
    s.logout(now);
    assert_eq!(sent(&mut s), "OUT\r\n");
    assert_eq!(
        events(&mut s),
        vec![NsEvent::Closed(CloseReason::LoggedOut)]
    );
    assert!(s.set_friendly_name(now, "x").is_err());
}

#[test]
fn commands_refused_before_login() {
    let now = Instant::now();
    let mut s = NsSession::new(config(), now);
    assert_eq!(s.request_switchboard(now), Err(CommandError::NotOnline));
    assert_eq!(
        s.set_status(now, Status::Online, 0, None),
        Err(CommandError::NotOnline)
    );
}

#[test]
fn sync_without_counts_and_out_reasons() {
    let now = Instant::now();
    let mut s = to_ticket(now, 9);
    assert_eq!(s.handle_ticket(now, &Secret::new("t=x")), Ok(()));
    feed(
        &mut s,
        now,
        "USR 4 OK bridge@example.com Matrix%20Bridge 1 0\r\nSYN 5 41\r\n",
    );
    // Cached list current (official servers): sync is complete at once.
    assert!(s.is_online());
    assert_eq!(
        sent(&mut s),
        "USR 4 TWN S t=x\r\nSYN 5 0\r\nCHG 6 NLN 1342177280\r\n"
    );
    feed(&mut s, now, "OUT SSD\r\n");
    assert!(
        events(&mut s)
            .iter()
            .any(|e| *e == NsEvent::Closed(CloseReason::ServerShutdown))
    );
}

#[test]
fn xml_helpers() {
    let texts = |psm: &str, media: &str| (psm.to_owned(), media.to_owned());
    assert_eq!(ubx_texts("<Data><PSM/></Data>"), texts("", ""));
    assert_eq!(
        ubx_texts("<Data><PSM>a &amp; b</PSM><CurrentMedia>\\0Music</CurrentMedia></Data>"),
        texts("a & b", "\\0Music")
    );
    // Not well-formed: the texts are scraped, with what references can be decoded.
    assert_eq!(
        ubx_texts("<Data><PSM>&bogus; &amp &#xZZ; &lt;</PSM></Data>"),
        texts("&bogus; &amp &#xZZ; &lt;", "")
    );
    assert_eq!(scraped_element("<Data></Data>", "PSM"), None);
    assert_eq!(strip_network("1:a@b.c;{x}"), "a@b.c");
    assert!(is_guid("8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80"));
    assert!(!is_guid("8f5b2a44x13c7-4d0e-9a61-0c2e5e6f7a80"));
}

#[test]
fn msnp10_lst_without_network_field_and_prp_rename() {
    let now = Instant::now();
    let mut s = to_ticket(now, 10);
    assert_eq!(s.handle_ticket(now, &Secret::new("t=x")), Ok(()));
    let g = "8f5b2a44-13c7-4d0e-9a61-0c2e5e6f7a80";
    feed(
        &mut s,
        now,
        &format!(
            "USR 4 OK bridge@example.com 1 0\r\nSYN 5 0 0 1 1\r\nPRP MFN Other\r\n\
             LSG Friends {g}\r\nLST N=alice@example.com F=Alice%20A C=1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5 11 {g}\r\n"
        ),
    );
    // MSNP10: no GCF (11+), PRP rename, CHG, no UUX (11+).
    assert_eq!(
        sent(&mut s),
        "USR 4 TWN S t=x\r\nSYN 5 0 0\r\nPRP 6 MFN Matrix%20Bridge\r\nCHG 7 NLN 1342177280\r\n"
    );
    let alice = &s.contact_list().contacts["alice@example.com"];
    assert_eq!(alice.friendly_name, "Alice A");
    assert_eq!(alice.network, None);
    assert_eq!(alice.groups, vec![g]);
    feed(&mut s, now, "PRP 6 MFN Matrix%20Bridge\r\n");
    assert!(events(&mut s).contains(&NsEvent::OwnFriendlyName {
        name: "Matrix Bridge".into()
    }));
}

#[test]
fn replies_are_reported_after_their_events() {
    let now = Instant::now();
    let mut s = online12(now);
    let trid = s
        .add_contact(now, List::Forward, "dave@example.com", None, None)
        .expect("command");
    let _ = sent(&mut s);
    feed(
        &mut s,
        now,
        &format!(
            "ADC {trid} FL N=dave@example.com F=dave@example.com C=0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9\r\n"
        ),
    );
    let all: Vec<NsEvent> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        matches!(all.first(), Some(NsEvent::ListChanged(_))),
        "{all:?}"
    );
    assert_eq!(all.last(), Some(&NsEvent::Replied { trid }));
    // A frame with a TrID nobody asked for is no reply.
    feed(
        &mut s,
        now,
        "ADC 999 FL N=x@example.com F=x C=0a1b2c3d-4e5f-4061-8273-94a5b6c7d8ea\r\n",
    );
    assert!(std::iter::from_fn(|| s.poll_event()).all(|e| !matches!(e, NsEvent::Replied { .. })));
}

/// The MSNP.md §2.7 MSNP18 transcript: `USR SSO` with the §2.5.4 MBI vector and the
/// machine GUID, the address book handed in, `BLP`, the initial `ADL`, the endpoint's
/// `UUX` and `CHG caps:0 0`; then the MSNP18 presence forms.
#[test]
fn msnp18_sso_login_matches_section_2_7() {
    let now = Instant::now();
    let mut c = config();
    c.versions = vec![18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8];
    c.machine_guid = Some("{6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9}".into());
    c.personal_message = None;
    let mut s = NsSession::new(c, now);
    assert_eq!(
        sent(&mut s),
        "VER 1 MSNP18 MSNP17 MSNP16 MSNP15 MSNP14 MSNP13 MSNP12 MSNP11 MSNP10 MSNP9 MSNP8 CVR0\r\n"
    );
    feed(&mut s, now, "VER 1 MSNP18\r\n");
    assert!(sent(&mut s).starts_with("CVR 2 "));
    feed(
        &mut s,
        now,
        "CVR 2 14.0.8117.0416 14.0.8117.0416 14.0.8117.0416 https://example.invalid https://example.invalid\r\n",
    );
    assert_eq!(sent(&mut s), "USR 3 SSO I bridge@example.com\r\n");
    // Escargot's unsolicited shields come first (§2.5.1).
    let shields = "<?xml version=\"1.0\" encoding=\"utf-8\" ?><config></config>";
    feed(&mut s, now, &pl("GCF 0", shields));
    let nonce = "8CLhG/xfgYZ7TyRQ/jIAWyDmd/w4R4GF2yKLS6tYrnjzi4cFag/Nr+hxsfg5zlCf";
    feed(&mut s, now, &format!("USR 3 SSO S MBI_KEY_OLD {nonce}\r\n"));
    assert_eq!(
        events(&mut s),
        [NsEvent::NeedSsoTicket {
            policy: "MBI_KEY_OLD".into()
        }]
    );
    assert_eq!(
        s.handle_sso_ticket(
            now,
            &Secret::new("t=ticket&p="),
            &Secret::new("not base64!"),
            [1, 2, 3, 4, 5, 6, 7, 8]
        ),
        Err(CommandError::InvalidArgument {
            what: "binary secret"
        })
    );
    s.handle_sso_ticket(
        now,
        &Secret::new("t=ticket&p="),
        &Secret::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"),
        [1, 2, 3, 4, 5, 6, 7, 8],
    )
    .expect("the ticket is taken");
    let blob = "HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAAAECAwQFBgcID1yG3ouDEzCxJn07RBHEbAUjU3WlV5p9F2FTlOrflG0B30EUM3h2JvX151lR9oZptsoLWpT0olpXaLh/su4d9rCe/T2lsHnJB/A2oSVepW/akm5ZjNwdfKEujZo=";
    assert_eq!(
        sent(&mut s),
        format!("USR 4 SSO S t=ticket&p= {blob} {{6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9}}\r\n")
    );
    feed(
        &mut s,
        now,
        "USR 4 OK bridge@example.com 1 0\r\nSBS 0 null\r\n",
    );
    feed(&mut s, now, &pl("MSG Hotmail Hotmail", PROFILE));
    feed(&mut s, now, "UBX 1:bridge@example.com 0\r\n");
    assert!(
        events(&mut s).contains(&NsEvent::NeedAddressBook),
        "the address book is asked for"
    );
    // No SYN on MSNP13+ (Escargot answers 502).
    assert_eq!(sent(&mut s), "");
    assert!(!s.is_online());

    let mut book = ContactList::default();
    for (email, lists) in [("bob@example.com", 3), ("carol@example.com", 1)] {
        book.contacts.insert(
            email.into(),
            Contact {
                email: email.into(),
                friendly_name: email.into(),
                lists,
                network: Some(1),
                ..Contact::default()
            },
        );
    }
    book.privacy = Some("AL".into());
    s.handle_address_book(now, book)
        .expect("in the address-book phase");
    let out = sent(&mut s);
    let adl = r#"<ml l="1"><d n="example.com"><c n="bob" l="3" t="1"/><c n="carol" l="1" t="1"/></d></ml>"#;
    // §15.3.1: capabilities, the endpoint's name, then the first CHG.
    let caps = "<EndpointData><Capabilities>1342177280:0</Capabilities></EndpointData>";
    let endpoint = "<PrivateEndpointData><EpName>Matrix</EpName><Idle>false</Idle><ClientType>1</ClientType><State>NLN</State></PrivateEndpointData>";
    assert_eq!(
        out,
        format!(
            "BLP 5 AL\r\nADL 6 {}\r\n{adl}GCF 7 Shields.xml\r\nPRP 8 MFN Matrix%20Bridge\r\nUUX 9 {}\r\n{caps}UUX 10 {}\r\n{endpoint}CHG 11 NLN 1342177280:0 0\r\n",
            adl.len(),
            caps.len(),
            endpoint.len()
        )
    );
    assert!(s.is_online());
    let evs = events(&mut s);
    assert!(matches!(
        evs.first(),
        Some(NsEvent::LoggedIn { version: 18, .. })
    ));
    feed(
        &mut s,
        now,
        "BLP 5 AL\r\nADL 6 OK\r\nCHG 11 NLN 1342177280:0 0\r\n",
    );
    feed(
        &mut s,
        now,
        "NLN NLN 1:bob@example.com Bob 2789003324:48 %3Cmsnobj%2F%3E\r\nFLN 1:carol@example.com 0:0\r\n",
    );
    let evs = events(&mut s);
    assert!(evs.contains(&NsEvent::PresenceChanged(Presence {
        contact: "bob@example.com".into(),
        status: Status::Online,
        friendly_name: "Bob".into(),
        caps: 2789003324,
        msn_object: None,
        initial: false,
    })));
    assert!(evs.contains(&NsEvent::ContactOffline {
        contact: "carol@example.com".into()
    }));
    // Someone adds the user: the server's ADL with the reverse/pending bits (§4.5).
    feed(
        &mut s,
        now,
        &pl(
            "ADL 0",
            r#"<ml><d n="example.com"><c n="dave" l="8" t="1" f="Dave%20D"/></d></ml>"#,
        ),
    );
    assert_eq!(
        events(&mut s),
        [NsEvent::AddedBy {
            contact: "dave@example.com".into(),
            friendly_name: "Dave D".into()
        }]
    );
    // The user's own Messenger (another endpoint) sets Busy: that is our account's
    // status, not a contact's; its UBX is not a contact's personal message.
    feed(
        &mut s,
        now,
        "NLN BSY 1:bridge@example.com Me 2789003324:48 0\r\n",
    );
    feed(
        &mut s,
        now,
        &pl("UBX 1:bridge@example.com", "<Data><PSM>mine</PSM></Data>"),
    );
    assert_eq!(
        events(&mut s),
        [NsEvent::OwnStatus {
            status: Status::Busy
        }]
    );
    // A sign-out we sent (our own GUID as the sender) does not sign us out.
    feed(
        &mut s,
        now,
        &pl(
            "UBN bridge@example.com;{6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9} 4",
            "goawyplzthxbye",
        ),
    );
    assert!(!s.is_closed());
    // The ADC family is gone from MSNP13.
    assert_eq!(
        s.add_contact(now, List::Forward, "x@y.z", None, None),
        Err(CommandError::Unsupported {
            command: "ADC",
            version: 18
        })
    );
}

#[test]
fn msnp16_needs_a_machine_guid_and_msnp15_sends_none() {
    let now = Instant::now();
    let sso = |version: u8, guid: Option<&str>| {
        let mut c = config();
        c.versions = vec![version];
        c.machine_guid = guid.map(str::to_owned);
        let mut s = NsSession::new(c, now);
        feed(&mut s, now, &format!("VER 1 MSNP{version}\r\n"));
        feed(&mut s, now, "CVR 2 1 1 1 a b\r\n");
        feed(&mut s, now, "USR 3 SSO S MBI_KEY_OLD bm9uY2U=\r\n");
        sent(&mut s);
        let taken = s.handle_sso_ticket(
            now,
            &Secret::new("t=x&p="),
            &Secret::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"),
            [0; 8],
        );
        (taken, sent(&mut s))
    };
    let (taken, out) = sso(15, None);
    assert_eq!(taken, Ok(()));
    assert_eq!(out.trim_end().split(' ').count(), 6, "no GUID: {out}");
    let (taken, _) = sso(16, None);
    assert_eq!(
        taken,
        Err(CommandError::InvalidArgument {
            what: "machine GUID"
        })
    );
    // MSNP13–14 still sign in with TWN.
    let mut c = config();
    c.versions = vec![14];
    let mut s = NsSession::new(c, now);
    feed(&mut s, now, "VER 1 MSNP14\r\n");
    sent(&mut s);
    feed(&mut s, now, "CVR 2 1 1 1 a b\r\n");
    assert_eq!(sent(&mut s), "USR 3 TWN I bridge@example.com\r\n");
}

#[test]
fn msnp14_to_17_presence_has_the_network_after_the_address() {
    let now = Instant::now();
    let mut c = config();
    c.versions = vec![16];
    let mut s = NsSession::new(c, now);
    feed(&mut s, now, "VER 1 MSNP16\r\n");
    events(&mut s);
    // Presence lines are read whatever the phase; the form is the dialect's.
    feed(
        &mut s,
        now,
        "NLN AWY alice@example.com 1 Alice%20A 2789003324:48 %3Cmsnobj%20Creator%3D%22x%22%2F%3E\r\n",
    );
    assert_eq!(
        events(&mut s),
        [NsEvent::PresenceChanged(Presence {
            contact: "alice@example.com".into(),
            status: Status::Away,
            friendly_name: "Alice A".into(),
            caps: 2789003324,
            msn_object: Some("<msnobj Creator=\"x\"/>".into()),
            initial: false,
        })]
    );
}

#[test]
fn a_sign_out_from_another_endpoint_ends_the_session_for_good() {
    let now = Instant::now();
    let ours = "{6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}";
    let mut s = msnp18_online(now, ours);
    // A request we sent ourselves (our GUID as the sender) is not for us.
    feed(
        &mut s,
        now,
        &pl(
            "UBN bridge@example.com;{6F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9} 4",
            "goawyplzthxbye",
        ),
    );
    assert!(!s.is_closed());
    // The server hands the target `UBN account;{sender-guid}` (§15.3.5).
    feed(
        &mut s,
        now,
        &pl(
            "UBN bridge@example.com;{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5} 4",
            "goawyplzthxbye",
        ),
    );
    assert_eq!(sent(&mut s), "OUT\r\n");
    assert_eq!(
        events(&mut s),
        [NsEvent::Closed(CloseReason::SignedOutRemotely)]
    );
}

/// An MSNP18 session up to `USR OK` (SSO with the §2.5.4 secret), waiting for its
/// address book.
fn msnp18_logged_in(now: Instant, guid: &str) -> NsSession {
    let mut c = config();
    c.versions = vec![18];
    c.machine_guid = Some(guid.into());
    c.personal_message = None;
    c.friendly_name = None;
    let mut s = NsSession::new(c, now);
    feed(
        &mut s,
        now,
        "VER 1 MSNP18\r\nCVR 2 1 1 1 a b\r\nUSR 3 SSO S MBI_KEY_OLD bm9uY2U=\r\n",
    );
    s.handle_sso_ticket(
        now,
        &Secret::new("t=x&p="),
        &Secret::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"),
        [0; 8],
    )
    .expect("ticket");
    feed(&mut s, now, "USR 4 OK bridge@example.com 1 0\r\n");
    s
}

/// An MSNP18 session signed in with an empty address book, its login frames taken.
fn msnp18_online(now: Instant, guid: &str) -> NsSession {
    let mut s = msnp18_logged_in(now, guid);
    s.handle_address_book(now, ContactList::default())
        .expect("address book");
    sent(&mut s);
    events(&mut s);
    s
}

/// §15.3.2: the user's own Messenger is Busy when the bridge signs in beside it: its
/// status is kept (not reset by the bridge's login) until the bridge chooses one.
#[test]
fn the_status_of_the_users_own_messenger_is_kept_at_login() {
    let now = Instant::now();
    let ours = "{6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}";
    let mut s = msnp18_logged_in(now, ours);
    // Before the bridge's first CHG, the account's UBX shows the laptop Busy.
    let ubx = format!(
        "<Data><PSM></PSM><PrivateEndpointData id=\"{{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}}\"><EpName>LAPTOP</EpName><State>BSY</State></PrivateEndpointData><PrivateEndpointData id=\"{ours}\"><EpName>Matrix</EpName><State>NLN</State></PrivateEndpointData></Data>"
    );
    feed(&mut s, now, &pl("UBX 1:bridge@example.com", &ubx));
    sent(&mut s);
    s.handle_address_book(now, ContactList::default())
        .expect("address book");
    let out = sent(&mut s);
    assert!(out.contains(" BSY 1342177280:0 0\r\n"), "{out}");
    // No BLP: the address book did not say what the privacy setting is.
    assert!(!out.contains("BLP"), "{out}");
    // Once online, a UBX does not change the status: the account's own NLN does.
    feed(
        &mut s,
        now,
        &pl("UBX 1:bridge@example.com", &ubx.replace("BSY", "AWY")),
    );
    assert_eq!(sent(&mut s), "");
}

/// §15.4: joining circles once online, sending into one, and what the server routes.
#[test]
fn circles_are_joined_written_to_and_read_on_msnp18() {
    use crate::circle::{FromCircle, Outgoing};
    let now = Instant::now();
    let ours = "{6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}";
    let id = "00000000-0000-0000-0009-5c1e2d3f4a5b";
    let mut s = msnp18_online(now, ours);
    let last = s
        .join_circles(now, "<SignedTicket/>", &[id])
        .expect("joined");
    let wire = sent(&mut s);
    let nonce = crate::circle::sha_nonce("<SignedTicket/>");
    let usr = format!("USR 10 SHA A {nonce}\r\n");
    assert!(wire.starts_with(&usr), "{wire}");
    assert!(
        wire.contains("ADL 11 92\r\n<ml l=\"1\"><d n=\"live.com\">"),
        "{wire}"
    );
    assert!(wire.contains("PUT 12 364\r\nRouting: 1.0\r\n"), "{wire}");
    assert_eq!(last, 10..=12);
    feed(
        &mut s,
        now,
        "USR 10 OK bridge@example.com 0 0\r\nADL 11 OK\r\nPUT 12 OK 0\r\n",
    );
    let replied: Vec<u32> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            NsEvent::Replied { trid } => Some(trid),
            _ => None,
        })
        .collect();
    assert_eq!(replied, [10, 11, 12]);

    let roster = "Routing: 1.0\r\nTo: 1:bridge@example.com\r\nFrom: 9:00000000-0000-0000-0009-5c1e2d3f4a5b@live.com\r\n\r\nReliability: 1.0\r\nStream: 0\r\n\r\nPublication: 1.0\r\nUri: /circle\r\nNotifType: Partial\r\nContent-Type: application/circles+xml\r\nContent-Length: 128\r\n\r\n<circle><roster><id>IM</id><user><id>1:alice@example.com</id></user><user><id>1:bridge@example.com</id></user></roster></circle>";
    feed(&mut s, now, &pl("NFY PUT", roster));
    assert_eq!(
        events(&mut s),
        [NsEvent::Circle(FromCircle::Roster {
            circle: id.into(),
            members: vec!["alice@example.com".into(), "bridge@example.com".into()],
        })]
    );

    let format = crate::message::TextFormat::default();
    let trid = s
        .send_to_circle(
            now,
            id,
            &Outgoing::Text {
                text: "hello",
                format: &format,
            },
        )
        .expect("sent");
    let wire = sent(&mut s);
    assert!(wire.starts_with(&format!("SDG {trid} ")), "{wire}");
    assert!(
        wire.contains("Segment: 1\r\n") && wire.ends_with("\r\n\r\nhello"),
        "{wire}"
    );
    // No answer comes for an SDG: it counts as answered once queued.
    assert!(std::iter::from_fn(|| s.poll_event()).any(|e| e == NsEvent::Replied { trid }));
    // The next one is the next segment.
    s.send_to_circle(now, id, &Outgoing::Typing)
        .expect("typing");
    assert!(sent(&mut s).contains("Segment: 2\r\n"));
}

/// §15.4 step 4: presence that comes by way of a circle (`;via=`) is taken for members
/// who are not contacts, and ignored for the user's own account (its extra `NLN` with
/// caps `0:0` must not change the bridge's status) and for contacts, whose own lines say.
#[test]
fn circle_presence_is_second_hand_for_the_account_and_contacts() {
    let now = Instant::now();
    let mut s = msnp18_logged_in(now, "{6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}");
    let mut list = ContactList::default();
    list.contacts.insert(
        "alice@example.com".into(),
        Contact {
            email: "alice@example.com".into(),
            lists: List::Forward.bit() | List::Allow.bit(),
            ..Contact::default()
        },
    );
    s.handle_address_book(now, list).expect("address book");
    sent(&mut s);
    events(&mut s);
    let via = ";via=9:00000000-0000-0000-0009-5c1e2d3f4a5b@live.com";
    feed(
        &mut s,
        now,
        &format!(
            "NLN NLN 1:bridge@example.com{via} Me 0:0 0\r\nNLN BSY 1:alice@example.com{via} Alice 0:0 0\r\nFLN 1:alice@example.com{via} 0:0\r\nNLN AWY 1:dave@example.com{via} Dave 0:0 0\r\nFLN 1:dave@example.com{via} 0:0\r\n"
        ),
    );
    let seen: Vec<String> = events(&mut s)
        .into_iter()
        .map(|e| match e {
            NsEvent::PresenceChanged(p) => format!("{} {:?}", p.contact, p.status),
            NsEvent::ContactOffline { contact } => format!("{contact} offline"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(seen, ["dave@example.com Away", "dave@example.com offline"]);
}
