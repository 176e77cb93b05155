//! Tests for `sb.rs`: the MSNP.md §6.1 outgoing and §6.2 incoming transcripts byte for
//! byte, queueing until `JOI`, `ACK`/`NAK` matching, multi-party `JOI`/`BYE`, failed
//! calls, timeouts, chunked receive and long-text splitting.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::*;
use crate::frame::{Direction, parse};
use crate::message::encode_text;

const COOKIE: &str = "8327461923.1849.2847";

fn feed(s: &mut SbSession, now: Instant, wire: &str) {
    let mut buf = BytesMut::from(wire.as_bytes());
    loop {
        match parse(&mut buf, &Limits::default(), Direction::ServerToClient, 12) {
            Ok(Some(f)) => s.handle_frame(now, f),
            Ok(None) => break,
            Err(e) => panic!("bad test input: {e}"),
        }
    }
    assert!(buf.is_empty(), "unparsed test input left");
}

fn sent(s: &mut SbSession) -> String {
    let mut out = Vec::new();
    while let Some(f) = s.poll_transmit() {
        out.extend_from_slice(&f.to_bytes().unwrap_or_default());
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn events(s: &mut SbSession) -> Vec<SbEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn pl(line: &str, payload: &str) -> String {
    format!("{line} {}\r\n{payload}", payload.len())
}

fn outgoing(now: Instant, invitees: &[&str]) -> SbSession {
    let config = SbConfig::new("bridge@example.com", 12);
    match SbSession::outgoing(config, now, &Secret::new(COOKIE), invitees) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn alice() -> Participant {
    Participant {
        email: "alice@example.com".into(),
        friendly_name: "Alice".into(),
        caps: Some(1_342_177_312),
    }
}

#[test]
fn outgoing_transcript_section_6_1() {
    let now = Instant::now();
    let mut s = outgoing(now, &["alice@example.com"]);
    assert!(!format!("{s:?}").contains(COOKIE), "cookie leaked in Debug");
    assert_eq!(
        sent(&mut s),
        format!("USR 1 bridge@example.com {COOKIE}\r\n")
    );
    // Queued before anyone joined (§6.1).
    let fmt = TextFormat::default();
    let ids = s.send_text(now, "hello", &fmt);
    assert_eq!(ids, Ok(vec![MessageId(1)]));
    assert_eq!(s.send_typing(now), Ok(()), "typing is dropped, not queued");
    feed(
        &mut s,
        now,
        "USR 1 OK bridge@example.com Matrix%20Bridge\r\n",
    );
    assert_eq!(sent(&mut s), "CAL 2 alice@example.com\r\n");
    feed(&mut s, now, "CAL 2 RINGING 11752013\r\n");
    assert_eq!(sent(&mut s), "");
    assert!(!s.is_ready());
    feed(&mut s, now, "JOI alice@example.com Alice 1342177312\r\n");
    let text = encode_text("hello", &fmt);
    assert_eq!(
        sent(&mut s),
        format!(
            "MSG 3 A {}\r\n{}",
            text.len(),
            String::from_utf8_lossy(&text)
        )
    );
    assert_eq!(
        events(&mut s),
        vec![
            SbEvent::Joined {
                participant: alice(),
                initial: false
            },
            SbEvent::Ready {
                session_id: Some("11752013".into())
            },
        ]
    );
    feed(&mut s, now, "ACK 3\r\n");
    assert_eq!(
        events(&mut s),
        vec![SbEvent::Delivered { id: MessageId(1) }]
    );
    assert_eq!(s.participants(), &[alice()]);
    // Typing goes out with U and is not tracked.
    assert_eq!(s.send_typing(now), Ok(()));
    assert!(sent(&mut s).starts_with("MSG 4 U "));
    assert!(s.in_flight.is_empty());
}

#[test]
fn incoming_transcript_section_6_2() {
    let now = Instant::now();
    let config = SbConfig::new("bridge@example.com", 12);
    let s = SbSession::incoming(config, now, &Secret::new("1938475.2938475"), "11752014");
    let Ok(mut s) = s else {
        panic!("{s:?}");
    };
    assert_eq!(
        sent(&mut s),
        "ANS 1 bridge@example.com 1938475.2938475 11752014\r\n"
    );
    let body = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi there";
    feed(
        &mut s,
        now,
        &format!(
            "IRO 1 1 2 alice@example.com Alice 1342177312\r\n\
             IRO 1 2 2 bridge@example.com Matrix%20Bridge 1342177280\r\n\
             ANS 1 OK\r\n{}",
            pl("MSG alice@example.com Alice", body)
        ),
    );
    assert_eq!(
        events(&mut s),
        vec![
            SbEvent::Joined {
                participant: alice(),
                initial: true
            },
            SbEvent::Ready {
                session_id: Some("11752014".into())
            },
            SbEvent::Message {
                from: "alice@example.com".into(),
                friendly_name: "Alice".into(),
                payload: MsgPayload::Text {
                    text: "hi there".into(),
                    format: None,
                    p4_context: None
                },
            },
        ]
    );
    // Our own IRO entry (Escargot) is not a participant.
    assert_eq!(s.participants().len(), 1);
    // The last participant leaving closes the session with OUT.
    feed(&mut s, now, "BYE alice@example.com\r\n");
    assert_eq!(sent(&mut s), "OUT\r\n");
    assert_eq!(
        events(&mut s),
        vec![
            SbEvent::Left {
                contact: "alice@example.com".into(),
                idle: false
            },
            SbEvent::Closed(SbCloseReason::AllLeft),
        ]
    );
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(
        s.send(now, Bytes::from_static(b"x"), AckMode::Acknowledged),
        Err(SendError::Closed)
    );
}

#[test]
fn ack_nak_matching_and_timeouts() {
    let now = Instant::now();
    let mut s = outgoing(now, &["alice@example.com"]);
    feed(
        &mut s,
        now,
        "USR 1 OK bridge@example.com B\r\nCAL 2 RINGING 1\r\nJOI alice@example.com Alice\r\n",
    );
    sent(&mut s);
    events(&mut s);
    let p = Bytes::from_static(b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nx");
    let a = s.send(now, p.clone(), AckMode::Acknowledged);
    let b = s.send(now, p.clone(), AckMode::Acknowledged);
    let c = s.send(now, p.clone(), AckMode::Data);
    let n = s.send(now, p.clone(), AckMode::NegativeOnly);
    let late = s.send(now, p.clone(), AckMode::Acknowledged);
    assert_eq!(
        (a, b, c, n, late),
        (
            Ok(MessageId(1)),
            Ok(MessageId(2)),
            Ok(MessageId(3)),
            Ok(MessageId(4)),
            Ok(MessageId(5))
        )
    );
    let wire = sent(&mut s);
    assert!(wire.contains("MSG 3 A ") && wire.contains("MSG 5 D ") && wire.contains("MSG 6 N "));
    // Replies out of order, matched by TrID.
    feed(&mut s, now, "NAK 4\r\nACK 3\r\n282 5\r\n");
    assert_eq!(
        events(&mut s),
        vec![
            SbEvent::Failed {
                id: MessageId(2),
                reason: SendFailure::Nak
            },
            SbEvent::Delivered { id: MessageId(1) },
            SbEvent::Failed {
                id: MessageId(3),
                reason: SendFailure::Error(282)
            },
        ]
    );
    // No ACK for A → failed; no NAK for N → delivered.
    let t = now + Duration::from_secs(30);
    assert_eq!(s.poll_timeout(), Some(t));
    s.handle_timeout(t);
    assert_eq!(
        events(&mut s),
        vec![
            SbEvent::Delivered { id: MessageId(4) },
            SbEvent::Failed {
                id: MessageId(5),
                reason: SendFailure::Timeout
            },
        ]
    );
    // Too large payloads are refused locally.
    let big = Bytes::from(vec![b'x'; 1665]);
    assert_eq!(
        s.send(now, big, AckMode::Acknowledged),
        Err(SendError::TooLarge {
            len: 1665,
            max: 1664
        })
    );
    // Idle close after 5 minutes without messages.
    let idle = now + Duration::from_secs(300);
    assert_eq!(s.poll_timeout(), Some(idle));
    s.handle_timeout(idle);
    assert_eq!(sent(&mut s), "OUT\r\n");
    assert_eq!(events(&mut s), vec![SbEvent::Closed(SbCloseReason::Idle)]);
}

#[test]
fn multi_party_join_and_bye() {
    let now = Instant::now();
    let mut s = outgoing(now, &["alice@example.com", "carol@example.com"]);
    sent(&mut s);
    feed(&mut s, now, "USR 1 OK bridge@example.com B\r\n");
    assert_eq!(
        sent(&mut s),
        "CAL 2 alice@example.com\r\nCAL 3 carol@example.com\r\n"
    );
    feed(
        &mut s,
        now,
        "CAL 2 RINGING 9\r\nCAL 3 RINGING 9\r\nJOI alice@example.com Alice\r\nJOI carol@example.com Carol\r\n",
    );
    assert_eq!(s.participants().len(), 2);
    assert_eq!(s.invite(now, "dave@example.com"), Ok(()));
    assert_eq!(sent(&mut s), "CAL 4 dave@example.com\r\n");
    feed(&mut s, now, "217 4\r\nBYE carol@example.com 1\r\n");
    let ev = events(&mut s);
    assert_eq!(ev.len(), 5, "{ev:?}");
    assert_eq!(
        ev[3],
        SbEvent::CallFailed {
            contact: "dave@example.com".into(),
            code: Some(217)
        }
    );
    assert_eq!(
        ev[4],
        SbEvent::Left {
            contact: "carol@example.com".into(),
            idle: true
        }
    );
    assert!(!s.is_closed());
    // BYE of an unknown address or an endpoint-only BYE changes nothing.
    feed(
        &mut s,
        now,
        "BYE nobody@example.com\r\nBYE alice@example.com;{1234}\r\n",
    );
    assert!(events(&mut s).is_empty());
    feed(&mut s, now, "BYE alice@example.com\r\n");
    assert!(s.is_closed());
}

#[test]
fn failed_calls_and_auth() {
    let now = Instant::now();
    // Every CAL refused → nobody joined; queued messages fail.
    let mut s = outgoing(now, &["alice@example.com"]);
    let id = s.send_nudge(now);
    assert_eq!(id, Ok(MessageId(1)));
    feed(&mut s, now, "USR 1 OK bridge@example.com B\r\n217 2\r\n");
    assert!(sent(&mut s).ends_with("OUT\r\n"));
    assert_eq!(
        events(&mut s),
        vec![
            SbEvent::CallFailed {
                contact: "alice@example.com".into(),
                code: Some(217)
            },
            // Never sent: safe to send again on a fresh switchboard.
            SbEvent::Failed {
                id: MessageId(1),
                reason: SendFailure::NotSent
            },
            SbEvent::Closed(SbCloseReason::NobodyJoined),
        ]
    );
    // Expired cookie.
    let mut s = outgoing(now, &["alice@example.com"]);
    feed(&mut s, now, "911 1\r\n");
    assert_eq!(
        events(&mut s),
        vec![SbEvent::Closed(SbCloseReason::AuthFailed { code: 911 })]
    );
    // USR never answered (R2M, §2.8).
    let mut s = outgoing(now, &["alice@example.com"]);
    s.handle_timeout(now + Duration::from_secs(30));
    assert_eq!(
        events(&mut s),
        vec![SbEvent::Closed(SbCloseReason::Timeout)]
    );
    // RINGING but no JOI within the join timeout.
    let mut s = outgoing(now, &["alice@example.com"]);
    feed(
        &mut s,
        now,
        "USR 1 OK bridge@example.com B\r\nCAL 2 RINGING 5\r\n",
    );
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(60)));
    s.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(
        events(&mut s),
        vec![SbEvent::Closed(SbCloseReason::NobodyJoined)]
    );
    assert!(
        SbSession::outgoing(SbConfig::new("a@b.c", 12), now, &Secret::new("x y"), &[]).is_err()
    );
}

#[test]
fn long_text_is_split_and_chunks_reassembled() {
    let now = Instant::now();
    let mut s = outgoing(now, &["alice@example.com"]);
    feed(
        &mut s,
        now,
        "USR 1 OK bridge@example.com B\r\nJOI alice@example.com Alice\r\n",
    );
    sent(&mut s);
    events(&mut s);
    let text = "word ".repeat(800);
    let ids = s.send_text(now, &text, &TextFormat::default());
    let Ok(ids) = ids else {
        panic!("{ids:?}");
    };
    assert_eq!(ids.len(), 3);
    let mut n = 0;
    while let Some(f) = s.poll_transmit() {
        let len = f.payload.as_ref().map_or(0, Bytes::len);
        assert!(len <= 1664, "{len}");
        assert_eq!(f.arg(0), Some("A"));
        n += 1;
    }
    assert_eq!(n, 3);
    // Chunked incoming message (§7.8).
    let p1 = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nMessage-ID: {X}\r\nChunks: 2\r\n\r\nhel";
    let p2 = "Message-ID: {X}\r\nChunk: 1\r\n\r\nlo";
    feed(
        &mut s,
        now,
        &format!(
            "{}{}",
            pl("MSG alice@example.com Alice", p1),
            pl("MSG alice@example.com Alice", p2)
        ),
    );
    let ev = events(&mut s);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let SbEvent::Message {
        payload: MsgPayload::Text { text, .. },
        ..
    } = &ev[0]
    else {
        panic!("{ev:?}");
    };
    assert_eq!(text, "hello");
    // A malformed payload is reported, not fatal.
    feed(&mut s, now, &pl("MSG alice@example.com Alice", "garbage"));
    assert!(matches!(
        events(&mut s).as_slice(),
        [SbEvent::BadMessage { .. }]
    ));
    // Server OUT: the three unacknowledged text parts fail.
    feed(&mut s, now, "OUT\r\n");
    let ev = events(&mut s);
    assert_eq!(ev.len(), 4);
    assert_eq!(ev[3], SbEvent::Closed(SbCloseReason::ServerClosed));
    assert_eq!(
        ev[0],
        SbEvent::Failed {
            id: ids[0],
            reason: SendFailure::Closed
        }
    );
}

#[test]
fn an_unanswered_usr_or_join_fails_queued_messages_as_not_sent() {
    // R2M sometimes never answers `USR` (§2.8): after the step timeout the session is
    // given up, and the text waiting for it was never on the wire.
    let now = Instant::now();
    let step = Duration::from_secs(5);
    let mut config = SbConfig::new("bridge@example.com", 12);
    config.request_timeout = step;
    config.join_timeout = step;
    let mut s = match SbSession::outgoing(
        config.clone(),
        now,
        &Secret::new(COOKIE),
        &["alice@example.com"],
    ) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let ids = s.send_text(now, "hi", &TextFormat::default());
    let Ok(ids) = ids else { panic!("{ids:?}") };
    assert!(sent(&mut s).starts_with("USR 1 "));
    s.handle_timeout(now + step - Duration::from_millis(1));
    assert!(!s.is_closed());
    s.handle_timeout(now + step);
    assert!(s.is_closed());
    assert_eq!(
        events(&mut s),
        vec![
            SbEvent::Failed {
                id: ids[0],
                reason: SendFailure::NotSent
            },
            SbEvent::Closed(SbCloseReason::Timeout),
        ]
    );

    // `USR` answered, but the contact never joins: the same after the join wait.
    let mut s = match SbSession::outgoing(config, now, &Secret::new(COOKIE), &["alice@example.com"])
    {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let Ok(ids) = s.send_text(now, "hi", &TextFormat::default()) else {
        panic!("send_text")
    };
    feed(&mut s, now, "USR 1 OK bridge@example.com B\r\n");
    s.handle_timeout(now + step);
    let ev = events(&mut s);
    assert!(
        ev.contains(&SbEvent::Failed {
            id: ids[0],
            reason: SendFailure::NotSent
        }),
        "{ev:?}"
    );
    assert!(s.is_closed());
}

#[test]
fn a_group_call_waits_for_every_invitee_before_the_first_message() {
    // A group called together again: a message sent at once must reach every member,
    // not only the first to join (each JOI comes on its own).
    let now = Instant::now();
    let mut s = outgoing(now, &["alice@example.com", "carol@example.com"]);
    let Ok(ids) = s.send_text(now, "hi both", &TextFormat::default()) else {
        panic!("send_text")
    };
    feed(&mut s, now, "USR 1 OK bridge@example.com B\r\n");
    assert_eq!(
        sent(&mut s),
        "USR 1 bridge@example.com 8327461923.1849.2847\r\nCAL 2 alice@example.com\r\nCAL 3 carol@example.com\r\n"
    );
    feed(&mut s, now, "CAL 2 RINGING 1\r\nCAL 3 RINGING 1\r\n");
    feed(&mut s, now, "JOI alice@example.com Alice 0\r\n");
    assert!(!s.is_ready(), "carol is still coming");
    assert_eq!(sent(&mut s), "");
    feed(&mut s, now, "JOI carol@example.com Carol 0\r\n");
    assert!(s.is_ready());
    assert!(sent(&mut s).starts_with("MSG 4 A "));
    assert_eq!(ids.len(), 1);

    // One joins and the other is refused (offline): the message goes to the one in.
    let mut s = outgoing(now, &["alice@example.com", "carol@example.com"]);
    let _ = s.send_text(now, "hi", &TextFormat::default());
    feed(&mut s, now, "USR 1 OK bridge@example.com B\r\n");
    feed(
        &mut s,
        now,
        "CAL 2 RINGING 1\r\nJOI alice@example.com Alice 0\r\n",
    );
    assert!(!s.is_ready());
    feed(&mut s, now, "217 3\r\n");
    assert!(s.is_ready());

    // One joins, the other rings and never comes: the join wait lets the message go.
    let mut s = outgoing(now, &["alice@example.com", "carol@example.com"]);
    let _ = s.send_text(now, "hi", &TextFormat::default());
    feed(&mut s, now, "USR 1 OK bridge@example.com B\r\n");
    feed(
        &mut s,
        now,
        "CAL 2 RINGING 1\r\nCAL 3 RINGING 1\r\nJOI alice@example.com Alice 0\r\n",
    );
    assert!(!s.is_ready());
    s.handle_timeout(now + SbConfig::new("x", 12).join_timeout);
    assert!(s.is_ready() && !s.is_closed());
}

/// MSNP16+ (§15.3.3): `ANS` names this endpoint; the server's per-endpoint `IRO`/`JOI`
/// lines and the user's own other endpoints are not contacts; only a bare `BYE` means a
/// contact left.
#[test]
fn msnp18_endpoints_are_tracked_by_account() {
    let now = Instant::now();
    let mut config = SbConfig::new("bridge@example.com", 18);
    config.endpoint = Some("{6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}".into());
    let mut s =
        SbSession::incoming(config, now, &Secret::new(COOKIE), "11752013").expect("a session");
    assert_eq!(
        sent(&mut s),
        format!(
            "ANS 1 bridge@example.com;{{6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9}} {COOKIE} 11752013\r\n"
        )
    );
    feed(
        &mut s,
        now,
        "IRO 1 1 4 alice@example.com;{aaaaaaaa-0000-4000-8000-000000000001} Alice 2789003324:48\r\n\
         IRO 1 2 4 alice@example.com Alice 2789003324:48\r\n\
         IRO 1 3 4 bridge@example.com;{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5} Me 2789003324:48\r\n\
         IRO 1 4 4 bridge@example.com Me 2789003324:48\r\n\
         ANS 1 OK\r\n",
    );
    let emails: Vec<String> = s.participants().iter().map(|p| p.email.clone()).collect();
    assert_eq!(emails, ["alice@example.com"]);
    events(&mut s);
    // The user's Messenger leaves the window: not a contact leaving.
    feed(
        &mut s,
        now,
        "BYE bridge@example.com;{0c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5}\r\nBYE alice@example.com;{aaaaaaaa-0000-4000-8000-000000000001}\r\n",
    );
    assert_eq!(events(&mut s), []);
    feed(&mut s, now, "BYE alice@example.com\r\n");
    assert!(events(&mut s).contains(&SbEvent::Left {
        contact: "alice@example.com".into(),
        idle: false
    }));
}
