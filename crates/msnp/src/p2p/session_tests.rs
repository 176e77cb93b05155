use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::p2p::header::{Header, Packet, flags};
use crate::p2p::slp::tests::{BRANCH, BYE, CALL_ID, INVITE, MSNOBJ, OK};

const ALICE: &str = "alice@example.com";
const BRIDGE: &str = "bridge@example.com";
const DATA: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const SID: u32 = 2_345_678_901;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap_or_default())
        .collect()
}

/// A §10.4 step: 48 header bytes (hex from MSNP.md), data, big-endian footer.
fn step(header_hex: &str, data: &[u8], footer: u32) -> Bytes {
    let mut v = hex(header_hex);
    assert_eq!(v.len(), 48);
    v.extend_from_slice(data);
    v.extend_from_slice(&footer.to_be_bytes());
    Bytes::from(v)
}

const H1: &str = "00 00 00 00 C0 B2 A1 00 00 00 00 00 00 00 00 00 86 02 00 00 00 00 00 00
                  86 02 00 00 00 00 00 00 44 33 22 11 00 00 00 00 00 00 00 00 00 00 00 00";
const H2: &str = "00 00 00 00 EE FF C0 00 00 00 00 00 00 00 00 00 86 02 00 00 00 00 00 00
                  00 00 00 00 02 00 00 00 C0 B2 A1 00 44 33 22 11 86 02 00 00 00 00 00 00";
// Step 3 from the §10.4 table: sid 0, id S+1, 332/332, flags 0, AckSID 0x55667788.
const H3: &str = "00 00 00 00 EF FF C0 00 00 00 00 00 00 00 00 00 4C 01 00 00 00 00 00 00
                  4C 01 00 00 00 00 00 00 88 77 66 55 00 00 00 00 00 00 00 00 00 00 00 00";
const H4: &str = "00 00 00 00 C1 B2 A1 00 00 00 00 00 00 00 00 00 4C 01 00 00 00 00 00 00
                  00 00 00 00 02 00 00 00 EF FF C0 00 88 77 66 55 4C 01 00 00 00 00 00 00";
const H5: &str = "35 38 D0 8B F0 FF C0 00 00 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00
                  04 00 00 00 00 00 00 00 89 77 66 55 00 00 00 00 00 00 00 00 00 00 00 00";
const H6: &str = "35 38 D0 8B C2 B2 A1 00 00 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00
                  00 00 00 00 02 00 00 00 F0 FF C0 00 89 77 66 55 04 00 00 00 00 00 00 00";
const H7: &str = "35 38 D0 8B F1 FF C0 00 00 00 00 00 00 00 00 00 10 00 00 00 00 00 00 00
                  10 00 00 00 20 00 00 00 8A 77 66 55 00 00 00 00 00 00 00 00 00 00 00 00";
const H8: &str = "35 38 D0 8B C3 B2 A1 00 00 00 00 00 00 00 00 00 10 00 00 00 00 00 00 00
                  00 00 00 00 02 00 00 00 F1 FF C0 00 8A 77 66 55 10 00 00 00 00 00 00 00";
const H9: &str = "00 00 00 00 C4 B2 A1 00 00 00 00 00 00 00 00 00 4D 01 00 00 00 00 00 00
                  4D 01 00 00 00 00 00 00 45 33 22 11 00 00 00 00 00 00 00 00 00 00 00 00";
const H10: &str = "00 00 00 00 F2 FF C0 00 00 00 00 00 00 00 00 00 4D 01 00 00 00 00 00 00
                  00 00 00 00 02 00 00 00 C4 B2 A1 00 45 33 22 11 4D 01 00 00 00 00 00 00";

struct Steps {
    s: Vec<Bytes>,
}

impl Steps {
    fn new() -> Steps {
        Steps {
            s: vec![
                Bytes::new(),
                step(H1, INVITE.as_bytes(), 0),
                step(H2, &[], 0),
                step(H3, OK.as_bytes(), 0),
                step(H4, &[], 0),
                step(H5, &[0; 4], 1),
                step(H6, &[], 1),
                step(H7, &DATA, 1),
                step(H8, &[], 1),
                step(H9, BYE.as_bytes(), 0),
                step(H10, &[], 0),
            ],
        }
    }

    fn get(&self, n: usize) -> Bytes {
        self.s.get(n).cloned().unwrap_or_default()
    }
}

fn requester(now: Instant) -> P2pEndpoint {
    let _ = now;
    P2pEndpoint::new(
        P2pConfig::new(BRIDGE),
        Limits::default(),
        Seed {
            rng: 1,
            identifier_base: 0x00A1_B2C0,
            ack_base: 0x1122_3344,
        },
    )
}

fn sender() -> P2pEndpoint {
    let mut s = P2pEndpoint::new(
        P2pConfig::new(ALICE),
        Limits::default(),
        Seed {
            rng: 2,
            identifier_base: 0x00C0_FFEE,
            ack_base: 0x5566_7788,
        },
    );
    let obj = MsnObject::for_data(ALICE, 3, "0", "", &DATA);
    assert!(s.publish(obj, Bytes::from_static(&DATA)));
    s
}

fn feed(ep: &mut P2pEndpoint, now: Instant, from: &str, body: &Bytes) {
    if let Err(e) = ep.handle_p2p(now, from, body) {
        panic!("{e}");
    }
}

fn sent(ep: &mut P2pEndpoint) -> Vec<(String, Bytes)> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

fn events(ep: &mut P2pEndpoint) -> Vec<P2pEvent> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn to(dest: &str, bodies: &[Bytes]) -> Vec<(String, Bytes)> {
    bodies
        .iter()
        .map(|b| (dest.to_owned(), b.clone()))
        .collect()
}

#[test]
fn section_10_4_requester_byte_exact() {
    let st = Steps::new();
    let now = Instant::now();
    let mut r = requester(now);
    let ids = SessionIds {
        session_id: SID,
        branch: BRANCH,
        call_id: CALL_ID,
    };
    let id = r.fetch_with(now, ALICE, MSNOBJ, ids);
    assert_eq!(id, Ok(TransferId(1)));
    assert_eq!(sent(&mut r), to(ALICE, &[st.get(1)]));
    feed(&mut r, now, ALICE, &st.get(2));
    assert_eq!(sent(&mut r), vec![]);
    feed(&mut r, now, ALICE, &st.get(3));
    assert_eq!(sent(&mut r), to(ALICE, &[st.get(4)]));
    feed(&mut r, now, ALICE, &st.get(5));
    assert_eq!(sent(&mut r), to(ALICE, &[st.get(6)]));
    feed(&mut r, now, ALICE, &st.get(7));
    assert_eq!(sent(&mut r), to(ALICE, &[st.get(8), st.get(9)]));
    let ev = events(&mut r);
    assert!(
        matches!(ev.as_slice(), [P2pEvent::Received { id: TransferId(1), peer, data, object }]
            if peer == ALICE && data.as_ref() == DATA && object.kind == 3),
        "{ev:?}"
    );
    assert_eq!(r.transfer_count(), 1);
    feed(&mut r, now, ALICE, &st.get(10));
    assert_eq!(r.transfer_count(), 0);
    assert_eq!(sent(&mut r), vec![]);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn section_10_4_sender_byte_exact() {
    let st = Steps::new();
    let now = Instant::now();
    let mut s = sender();
    feed(&mut s, now, BRIDGE, &st.get(1));
    assert_eq!(sent(&mut s), to(BRIDGE, &[st.get(2), st.get(3)]));
    feed(&mut s, now, BRIDGE, &st.get(4));
    assert_eq!(sent(&mut s), to(BRIDGE, &[st.get(5)]));
    feed(&mut s, now, BRIDGE, &st.get(6));
    assert_eq!(sent(&mut s), to(BRIDGE, &[st.get(7)]));
    feed(&mut s, now, BRIDGE, &st.get(8));
    assert_eq!(sent(&mut s), vec![]);
    feed(&mut s, now, BRIDGE, &st.get(9));
    assert_eq!(sent(&mut s), to(BRIDGE, &[st.get(10)]));
    assert_eq!(
        events(&mut s),
        vec![P2pEvent::Served {
            id: TransferId(1),
            peer: BRIDGE.into(),
            complete: true
        }]
    );
    assert_eq!(s.transfer_count(), 0);
}

#[test]
fn context_without_nul_is_accepted() {
    use base64::Engine as _;
    let now = Instant::now();
    let mut s = sender();
    let plain = base64::engine::general_purpose::STANDARD.encode(MSNOBJ);
    let with_nul = base64::engine::general_purpose::STANDARD.encode(format!("{MSNOBJ}\0"));
    let mut inv = SlpMessage::parse(INVITE.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    for (k, v) in inv.body.iter_mut() {
        if k == "Context" {
            assert_eq!(*v, with_nul);
            *v = plain.clone();
        }
    }
    let h = Header {
        identifier: 5,
        total_size: inv.encode().len() as u64,
        length: inv.encode().len() as u32,
        ..Header::default()
    };
    feed(&mut s, now, BRIDGE, &Packet::encode(&h, &inv.encode(), 0));
    let out = sent(&mut s);
    assert_eq!(out.len(), 2);
    let ok = out
        .get(1)
        .and_then(|(_, b)| Packet::parse(b).ok())
        .and_then(|p| SlpMessage::parse(&p.data).ok());
    assert_eq!(ok.and_then(|m| m.status()), Some(200));
}

/// Moves every queued body between two endpoints until both are quiet.
fn pump(a: &mut P2pEndpoint, a_name: &str, b: &mut P2pEndpoint, b_name: &str, now: Instant) {
    loop {
        let mut moved = false;
        while let Some((dest, body)) = a.poll_transmit() {
            assert_eq!(dest, b_name);
            let len = body.len();
            assert!(len <= 48 + MAX_CHUNK + 4);
            feed(b, now, a_name, &body);
            moved = true;
        }
        while let Some((dest, body)) = b.poll_transmit() {
            assert_eq!(dest, a_name);
            feed(a, now, b_name, &body);
            moved = true;
        }
        if !moved {
            break;
        }
    }
}

#[test]
fn large_pictures_and_concurrent_transfers_end_to_end() {
    let now = Instant::now();
    let big: Vec<u8> = (0..150_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let small = b"tiny emoticon".to_vec();
    let big_obj = MsnObject::for_data(ALICE, 3, "0", "me", &big);
    let emo_obj = MsnObject::for_data(ALICE, 2, "0", "", &small);
    let mut s = P2pEndpoint::new(P2pConfig::new(ALICE), Limits::default(), Seed::from_u64(11));
    assert!(s.publish(big_obj.clone(), Bytes::from(big.clone())));
    assert!(s.publish(emo_obj.clone(), Bytes::from(small.clone())));
    let mut r = P2pEndpoint::new(
        P2pConfig::new(BRIDGE),
        Limits::default(),
        Seed::from_u64(12),
    );
    let a = r.fetch(now, ALICE, &big_obj.to_xml());
    let b = r.fetch(now, ALICE, &emo_obj.to_xml());
    assert!(a.is_ok() && b.is_ok() && a != b);
    pump(&mut r, BRIDGE, &mut s, ALICE, now);
    let mut got: Vec<(TransferId, usize)> = events(&mut r)
        .into_iter()
        .map(|e| match e {
            P2pEvent::Received {
                id, data, object, ..
            } => {
                assert!(object.matches_data(&data));
                (id, data.len())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![(TransferId(1), big.len()), (TransferId(2), small.len())]
    );
    let served = events(&mut s);
    assert_eq!(served.len(), 2);
    assert!(
        served
            .iter()
            .all(|e| matches!(e, P2pEvent::Served { complete: true, .. }))
    );
    assert_eq!((r.transfer_count(), s.transfer_count()), (0, 0));
    assert_eq!((r.pending_count(), s.pending_count()), (0, 0));
}

#[test]
fn unknown_object_is_declined() {
    let now = Instant::now();
    let mut s = sender();
    let mut r = P2pEndpoint::new(P2pConfig::new(BRIDGE), Limits::default(), Seed::from_u64(3));
    let other = MsnObject::for_data(ALICE, 3, "0", "", b"something else");
    assert!(r.fetch(now, ALICE, &other.to_xml()).is_ok());
    pump(&mut r, BRIDGE, &mut s, ALICE, now);
    assert!(matches!(
        events(&mut r).as_slice(),
        [P2pEvent::FetchFailed {
            error: FetchError::Declined { code: 603 },
            ..
        }]
    ));
    assert_eq!(
        events(&mut s),
        vec![P2pEvent::Declined {
            peer: BRIDGE.into(),
            reason: DeclineReason::UnknownObject
        }]
    );
    assert_eq!((r.transfer_count(), s.transfer_count()), (0, 0));
}

#[test]
fn silence_times_out_with_bye_and_nothing_left() {
    let now = Instant::now();
    let mut r = requester(now);
    assert!(r.fetch(now, ALICE, MSNOBJ).is_ok());
    assert_eq!(sent(&mut r).len(), 1);
    let deadline = r.poll_timeout().unwrap_or(now);
    assert_eq!(deadline, now + Duration::from_secs(60));
    r.handle_timeout(deadline - Duration::from_secs(1));
    assert_eq!(r.transfer_count(), 1);
    r.handle_timeout(deadline);
    let out = sent(&mut r);
    let bye = out
        .first()
        .and_then(|(_, b)| Packet::parse(b).ok())
        .and_then(|p| SlpMessage::parse(&p.data).ok());
    assert_eq!(bye.as_ref().and_then(|m| m.method()), Some("BYE"));
    assert!(matches!(
        events(&mut r).as_slice(),
        [P2pEvent::FetchFailed {
            error: FetchError::Timeout,
            ..
        }]
    ));
    assert_eq!(r.transfer_count(), 0);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn sender_goes_on_without_acks_and_close_cleans_up() {
    let st = Steps::new();
    let now = Instant::now();
    let mut s = sender();
    feed(&mut s, now, BRIDGE, &st.get(1));
    assert_eq!(sent(&mut s).len(), 2);
    s.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(sent(&mut s), to(BRIDGE, &[st.get(5)]));
    s.handle_timeout(now + Duration::from_secs(10));
    assert_eq!(sent(&mut s), to(BRIDGE, &[st.get(7)]));
    s.close();
    assert_eq!(
        events(&mut s),
        vec![P2pEvent::Served {
            id: TransferId(1),
            peer: BRIDGE.into(),
            complete: false
        }]
    );
    assert_eq!((s.transfer_count(), s.poll_timeout()), (0, None));

    let mut r = requester(now);
    assert!(r.fetch(now, ALICE, MSNOBJ).is_ok());
    r.close();
    assert!(matches!(
        events(&mut r).as_slice(),
        [P2pEvent::FetchFailed {
            error: FetchError::Closed,
            ..
        }]
    ));
    assert_eq!(sent(&mut r), vec![]);
}

fn accepted_requester(now: Instant) -> P2pEndpoint {
    let st = Steps::new();
    let mut r = requester(now);
    let ids = SessionIds {
        session_id: SID,
        branch: BRANCH,
        call_id: CALL_ID,
    };
    assert!(r.fetch_with(now, ALICE, MSNOBJ, ids).is_ok());
    feed(&mut r, now, ALICE, &st.get(3));
    let _ = sent(&mut r);
    r
}

fn data_header(offset: u64, total: u64, len: u32) -> Header {
    Header {
        session_id: SID,
        identifier: 77,
        offset,
        total_size: total,
        length: len,
        flags: flags::MSNOBJ_DATA,
        ack_session_id: 5,
        ..Header::default()
    }
}

#[test]
fn hostile_data_is_rejected_without_leftovers() {
    let now = Instant::now();
    // A total other than the msnobj Size (here: huge) fails the fetch, allocating nothing.
    let mut r = accepted_requester(now);
    let h = data_header(0, 1 << 40, 4);
    feed(&mut r, now, ALICE, &Packet::encode(&h, &[1; 4], 1));
    assert!(matches!(
        events(&mut r).as_slice(),
        [P2pEvent::FetchFailed {
            error: FetchError::SizeMismatch {
                got: 1_099_511_627_776,
                ..
            },
            ..
        }]
    ));
    assert_eq!(r.transfer_count(), 0);

    // Overlapping chunks.
    let mut r = accepted_requester(now);
    feed(
        &mut r,
        now,
        ALICE,
        &Packet::encode(&data_header(0, 16, 8), &[1; 8], 1),
    );
    let res = r.handle_p2p(
        now,
        ALICE,
        &Packet::encode(&data_header(4, 16, 8), &[1; 8], 1),
    );
    assert!(matches!(
        res,
        Err(P2pError::Reassembly(ReassemblyError::Overlap { .. }))
    ));
    assert!(matches!(
        events(&mut r).as_slice(),
        [P2pEvent::FetchFailed {
            error: FetchError::BadData(_),
            ..
        }]
    ));
    assert_eq!(r.transfer_count(), 0);

    // Offset past the total, zero sizes: rejected at parse, the transfer unaffected.
    let mut r = accepted_requester(now);
    for h in [
        data_header(16, 16, 4),
        data_header(0, 0, 0),
        data_header(u64::MAX, 16, 1),
    ] {
        let data = vec![0; h.length as usize];
        assert!(
            r.handle_p2p(now, ALICE, &Packet::encode(&h, &data, 1))
                .is_err()
        );
    }
    assert_eq!(r.transfer_count(), 1);

    // Wrong data: hash mismatch, BYE still sent.
    feed(
        &mut r,
        now,
        ALICE,
        &Packet::encode(&data_header(0, 16, 16), &[9; 16], 1),
    );
    assert!(matches!(
        events(&mut r).as_slice(),
        [P2pEvent::FetchFailed {
            error: FetchError::HashMismatch,
            ..
        }]
    ));
    assert_eq!(sent(&mut r).len(), 2);

    // Data for an unknown session is ignored and not buffered.
    let mut r = accepted_requester(now);
    let h = Header {
        session_id: 99,
        ..data_header(0, 1 << 30, 4)
    };
    feed(&mut r, now, ALICE, &Packet::encode(&h, &[0; 4], 1));
    assert_eq!((r.pending_count(), events(&mut r)), (0, vec![]));

    // Oversized or endless partial MSNSLP messages are capped and expire.
    let h = Header {
        identifier: 1,
        total_size: 1 << 20,
        length: 4,
        ..Header::default()
    };
    assert!(
        r.handle_p2p(now, ALICE, &Packet::encode(&h, b"INVI", 0))
            .is_err()
    );
    for i in 0..100 {
        let h = Header {
            identifier: 1000 + i,
            total_size: 2000,
            length: 4,
            ..Header::default()
        };
        feed(&mut r, now, ALICE, &Packet::encode(&h, b"INVI", 0));
    }
    assert_eq!(r.pending_count(), Limits::default().max_p2p_sessions);
    r.handle_timeout(now + Duration::from_secs(61));
    assert_eq!(r.pending_count(), 0);
}

#[test]
fn peer_abort_and_early_bye() {
    let now = Instant::now();
    let mut r = accepted_requester(now);
    let h = Header {
        flags: flags::CLOSE,
        ..data_header(0, 0, 0)
    };
    feed(&mut r, now, ALICE, &Packet::encode(&h, &[], 1));
    assert!(matches!(
        events(&mut r).as_slice(),
        [P2pEvent::FetchFailed {
            error: FetchError::Aborted { flags: 0x40 },
            ..
        }]
    ));
    assert_eq!(r.transfer_count(), 0);

    let mut r = accepted_requester(now);
    let bye = SlpMessage::bye(BRIDGE, ALICE, BRANCH, CALL_ID).encode();
    let h = Header {
        identifier: 42,
        total_size: bye.len() as u64,
        length: bye.len() as u32,
        ..Header::default()
    };
    feed(&mut r, now, ALICE, &Packet::encode(&h, &bye, 0));
    assert!(matches!(
        events(&mut r).as_slice(),
        [P2pEvent::FetchFailed {
            error: FetchError::PeerClosed,
            ..
        }]
    ));
    assert_eq!(r.transfer_count(), 0);
}

#[test]
fn session_cap_and_bad_objects() {
    let now = Instant::now();
    let limits = Limits {
        max_p2p_sessions: 2,
        max_p2p_total: 1000,
        ..Limits::default()
    };
    let mut r = P2pEndpoint::new(P2pConfig::new(BRIDGE), limits, Seed::from_u64(5));
    assert!(r.fetch(now, ALICE, MSNOBJ).is_ok());
    assert!(r.fetch(now, ALICE, MSNOBJ).is_ok());
    assert_eq!(
        r.fetch(now, ALICE, MSNOBJ),
        Err(StartError::TooManySessions)
    );
    let big = MSNOBJ.replace("Size=\"16\"", "Size=\"1001\"");
    let mut r2 = P2pEndpoint::new(
        P2pConfig::new(BRIDGE),
        Limits {
            max_p2p_total: 1000,
            ..Limits::default()
        },
        Seed::from_u64(5),
    );
    assert!(matches!(
        r2.fetch(now, ALICE, &big),
        Err(StartError::TooLarge { .. })
    ));
    assert!(matches!(
        r2.fetch(now, ALICE, "<bogus"),
        Err(StartError::MsnObject(_))
    ));
    let zero = MSNOBJ.replace("Size=\"16\"", "Size=\"0\"");
    assert_eq!(r2.fetch(now, ALICE, &zero), Err(StartError::Empty));
    assert!(!r2.publish(
        MsnObject::for_data(BRIDGE, 3, "0", "", b"abc"),
        Bytes::from_static(b"abd")
    ));
    assert!(r2.is_for_us(Some("Bridge@Example.com")));
    assert!(!r2.is_for_us(Some(
        "bridge@example.com;{00000000-0000-0000-0000-000000000000}"
    )));
    assert!(!r2.is_for_us(Some(ALICE)));
}

#[test]
fn mutated_exchange_never_panics() {
    let st = Steps::new();
    let now = Instant::now();
    let mut seed = 0xDEAD_BEEF_u32;
    for round in 0..400 {
        let mut r = accepted_requester(now);
        let mut s = sender();
        for n in 1..=10 {
            let mut body = st.get(n).to_vec();
            for _ in 0..(round % 3) {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let pos = (seed >> 8) as usize % body.len().max(1);
                if let Some(b) = body.get_mut(pos) {
                    *b = (seed >> 24) as u8;
                }
            }
            let cut = (seed as usize >> 3) % (body.len() + 1);
            let body = if round % 5 == 0 {
                body.get(..cut).unwrap_or_default().to_vec()
            } else {
                body
            };
            let body = Bytes::from(body);
            let _ = r.handle_p2p(now, ALICE, &body);
            let _ = s.handle_p2p(now, BRIDGE, &body);
        }
        r.handle_timeout(now + Duration::from_secs(3600));
        s.handle_timeout(now + Duration::from_secs(3600));
        s.handle_timeout(now + Duration::from_secs(7200));
        let _ = (sent(&mut r), sent(&mut s), events(&mut r), events(&mut s));
        assert!(r.transfer_count() <= 1 && s.transfer_count() <= 1);
    }
}
