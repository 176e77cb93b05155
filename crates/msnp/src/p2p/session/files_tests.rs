//! The file-transfer machine both ways between two endpoints (§10.5), and its failures.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::FILE_DATA;
use crate::limits::Limits;
use crate::p2p::header::{Packet, app_id};
use crate::p2p::slp::{CT_TRANS_REQ, CT_TRANS_RESP, Guid, SlpMessage, StartLine};
use crate::p2p::{
    FILE_FEED_WINDOW, FetchError, FileContext, P2pConfig, P2pEndpoint, P2pEvent, Seed, StartError,
    TransferId,
};

const ALICE: &str = "alice@example.com";
const BRIDGE: &str = "bridge@example.com";

fn endpoint(local: &str, seed: u64) -> P2pEndpoint {
    P2pEndpoint::new(
        P2pConfig::new(local),
        Limits::default(),
        Seed::from_u64(seed),
    )
}

fn file(name: &str, size: u64) -> FileContext {
    FileContext {
        name: name.into(),
        size,
        preview: None,
    }
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn events(ep: &mut P2pEndpoint) -> Vec<P2pEvent> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// Delivers one side's queued bodies to the other; returns how many moved.
fn deliver(from: &mut P2pEndpoint, from_name: &str, to: &mut P2pEndpoint, now: Instant) -> usize {
    let mut n = 0;
    while let Some((_, body)) = from.poll_transmit() {
        to.handle_p2p(now, from_name, &body)
            .unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    n
}

/// Feeds `data` to the sender as it asks and moves bodies until both sides are quiet;
/// every received piece is appended to `got`. Checks the sender never holds more than
/// the window.
fn run(
    tx: &mut P2pEndpoint,
    rx: &mut P2pEndpoint,
    data: &[u8],
    got: &mut Vec<u8>,
    now: Instant,
) -> (Vec<P2pEvent>, Vec<P2pEvent>) {
    let (mut tx_events, mut rx_events) = (Vec::new(), Vec::new());
    loop {
        let mut moved = 0;
        while let Some((id, offset, max)) = tx.wanted_file_data() {
            assert!(max <= FILE_FEED_WINDOW);
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let end = (start + max.min(10_000)).min(data.len());
            assert!(tx.feed_file(now, id, Bytes::copy_from_slice(&data[start..end])));
            moved += 1;
        }
        // One chunk at a time, as the shell sends them.
        if let Some((_, body)) = tx.poll_transmit() {
            rx.handle_p2p(now, BRIDGE, &body)
                .unwrap_or_else(|e| panic!("{e}"));
            moved += 1;
        }
        moved += deliver(rx, ALICE, tx, now);
        for e in events(rx) {
            match e {
                P2pEvent::FileData { offset, data, .. } => {
                    assert_eq!(offset, got.len() as u64);
                    got.extend_from_slice(&data);
                }
                e => rx_events.push(e),
            }
        }
        tx_events.extend(events(tx));
        if moved == 0 {
            return (tx_events, rx_events);
        }
    }
}

/// Offers `f` from `tx` to `rx` and delivers the INVITE; `accept` answers it and
/// delivers the answer. Returns the sender's and the receiver's transfer ids.
fn offer(
    tx: &mut P2pEndpoint,
    rx: &mut P2pEndpoint,
    f: &FileContext,
    accept: bool,
    now: Instant,
) -> (TransferId, TransferId) {
    let sent = match tx.offer_file(now, ALICE, f) {
        Ok(id) => id,
        Err(e) => panic!("{e}"),
    };
    deliver(tx, BRIDGE, rx, now);
    let (id, announced) = offered(rx);
    assert_eq!(&announced, f);
    if accept {
        assert!(rx.accept_file(now, id));
        deliver(rx, ALICE, tx, now);
    }
    (sent, id)
}

fn offered(rx: &mut P2pEndpoint) -> (TransferId, FileContext) {
    match events(rx).as_slice() {
        [P2pEvent::FileOffered { id, peer, file }] => {
            assert_eq!(peer, BRIDGE);
            (*id, file.clone())
        }
        other => panic!("expected one offer, got {other:?}"),
    }
}

#[test]
fn a_file_goes_through_with_identical_bytes_and_both_sessions_end() {
    let now = Instant::now();
    let (mut tx, mut rx) = (endpoint(BRIDGE, 1), endpoint(ALICE, 2));
    let data = content(200_000);
    let offer = tx.offer_file(now, ALICE, &file("photo.png", 200_000));
    let Ok(sent_id) = offer else {
        panic!("{offer:?}")
    };
    assert_eq!(deliver(&mut tx, BRIDGE, &mut rx, now), 1);
    let (id, announced) = offered(&mut rx);
    assert_eq!(
        (announced.name.as_str(), announced.size),
        ("photo.png", 200_000)
    );
    assert!(rx.accept_file(now, id));
    let mut got = Vec::new();
    let (tx_events, rx_events) = run(&mut tx, &mut rx, &data, &mut got, now);
    assert!(got == data, "{} bytes of {}", got.len(), data.len());
    assert!(tx_events.contains(&P2pEvent::FileAccepted {
        id: sent_id,
        peer: ALICE.into()
    }));
    assert!(tx_events.contains(&P2pEvent::FileSent {
        id: sent_id,
        peer: ALICE.into()
    }));
    assert_eq!(
        rx_events,
        vec![P2pEvent::FileReceived {
            id,
            peer: BRIDGE.into()
        }]
    );
    // The sender's BYE was ACKed: nothing is left on either side.
    assert_eq!((tx.transfer_count(), rx.transfer_count()), (0, 0));
}

#[test]
fn data_chunks_carry_the_file_flags_footer_and_64_bit_offsets() {
    let now = Instant::now();
    let (mut tx, mut rx) = (endpoint(BRIDGE, 3), endpoint(ALICE, 4));
    let _ = offer(&mut tx, &mut rx, &file("a.bin", 3000), true, now);
    events(&mut tx);
    let ack_of_ok = tx.poll_transmit();
    assert!(ack_of_ok.is_some());
    assert!(tx.feed_file(now, sent_id(&tx), Bytes::from(content(3000))));
    let mut offsets = Vec::new();
    while let Some((dest, body)) = tx.poll_transmit() {
        assert_eq!(dest, ALICE);
        let Ok(p) = Packet::parse(&body) else {
            panic!("bad packet")
        };
        assert_eq!(p.header.flags, FILE_DATA);
        assert_eq!(p.header.flags, 0x0100_0030);
        assert_eq!(p.footer, app_id::FILE);
        assert_eq!(p.header.total_size, 3000);
        offsets.push(p.header.offset);
    }
    assert_eq!(offsets, vec![0, 1202, 2404]);
}

/// What a receiver that parses only the first chunk of an INVITE, as `msnp11-sdk` does,
/// makes of the offer: the `Context` line as far as that chunk goes, base64-decoded
/// strictly (padded with `=` as the SDK pads it); then, as the SDK reads it, the size
/// at byte 8 and the UTF-16 name from byte 20 to its first NUL. Returns (name, size).
fn offer_from_first_chunk(body: &Bytes) -> Result<(String, u64), String> {
    use base64::Engine as _;
    let p = Packet::parse(body).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&p.data);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Context: "))
        .ok_or("no Context in the first chunk")?;
    let mut value = line.trim_matches('\0').to_owned();
    while value.len() % 4 != 0 {
        value.push('=');
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&value)
        .map_err(|e| format!("{} Context characters: {e}", line.len()))?;
    let size = bytes
        .get(8..16)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or("no size")?;
    let units: Vec<u16> = bytes
        .get(20..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    Ok((String::from_utf16_lossy(&units), size))
}

#[test]
fn the_first_chunk_of_a_file_offer_alone_names_the_file() {
    let now = Instant::now();
    let with_preview = FileContext {
        preview: Some(content(3_000)),
        ..file("cat.png", 41_000)
    };
    // Without a preview an offer fits one chunk unless the addresses are long.
    let far = "someone.with.a.rather.long.address.indeed@mail.example.com";
    // Seeds give SessionIDs of 8 to 10 digits, so the Context starts at different places.
    for seed in 0..64 {
        for (peer, f) in [(ALICE, &with_preview), (far, &file("report.pdf", 7))] {
            let mut tx = endpoint(BRIDGE, seed);
            if let Err(e) = tx.offer_file(now, peer, f) {
                panic!("{e}")
            }
            let Some((_, first)) = tx.poll_transmit() else {
                panic!("no INVITE")
            };
            let seen = offer_from_first_chunk(&first)
                .unwrap_or_else(|e| panic!("seed {seed}, {}: {e}", f.name));
            assert_eq!(seen, (f.name.clone(), f.size));
            assert!(tx.poll_transmit().is_some(), "the INVITE spans chunks");
        }
    }
}

fn sent_id(tx: &P2pEndpoint) -> TransferId {
    match tx.wanted_file_data() {
        Some((id, _, _)) => id,
        None => panic!("the sender wants no data"),
    }
}

#[test]
fn a_declined_offer_fails_with_603_and_leaves_nothing() {
    let now = Instant::now();
    let (mut tx, mut rx) = (endpoint(BRIDGE, 5), endpoint(ALICE, 6));
    let (sent, id) = offer(
        &mut tx,
        &mut rx,
        &file("big.iso", 5_000_000_000),
        false,
        now,
    );
    // `offer` checked that the size past 4 GB came through the context unchanged.
    rx.decline_file(id);
    deliver(&mut rx, ALICE, &mut tx, now);
    assert_eq!(
        events(&mut tx),
        vec![P2pEvent::FileFailed {
            id: sent,
            peer: ALICE.into(),
            error: FetchError::Declined { code: 603 }
        }]
    );
    assert!(events(&mut rx).is_empty());
    assert_eq!((tx.transfer_count(), rx.transfer_count()), (0, 0));
}

#[test]
fn a_cancel_mid_way_reaches_the_other_side_either_way() {
    for receiver_cancels in [true, false] {
        let now = Instant::now();
        let (mut tx, mut rx) = (endpoint(BRIDGE, 7), endpoint(ALICE, 8));
        let Ok(sent) = tx.offer_file(now, ALICE, &file("movie.avi", 100_000)) else {
            panic!("offer")
        };
        deliver(&mut tx, BRIDGE, &mut rx, now);
        let (id, _) = offered(&mut rx);
        rx.accept_file(now, id);
        deliver(&mut rx, ALICE, &mut tx, now);
        events(&mut tx);
        tx.feed_file(now, sent, Bytes::from(content(10_000)));
        deliver(&mut tx, BRIDGE, &mut rx, now);
        let got: usize = events(&mut rx)
            .iter()
            .map(|e| match e {
                P2pEvent::FileData { data, .. } => data.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(got, 10_000);
        let (canceller, other, cancelled_id, other_id) = if receiver_cancels {
            (&mut rx, &mut tx, id, sent)
        } else {
            (&mut tx, &mut rx, sent, id)
        };
        canceller.cancel(cancelled_id);
        let names = if receiver_cancels {
            (ALICE, BRIDGE)
        } else {
            (BRIDGE, ALICE)
        };
        assert!(deliver(canceller, names.0, other, now) >= 1);
        deliver(other, names.1, canceller, now);
        assert_eq!(
            events(canceller),
            vec![P2pEvent::FileFailed {
                id: cancelled_id,
                peer: names.1.into(),
                error: FetchError::Cancelled
            }]
        );
        assert_eq!(
            events(other),
            vec![P2pEvent::FileFailed {
                id: other_id,
                peer: names.0.into(),
                error: FetchError::PeerClosed
            }]
        );
        assert_eq!(tx.wanted_file_data(), None);
        assert_eq!((tx.transfer_count(), rx.transfer_count()), (0, 0));
    }
}

#[test]
fn silence_times_out_an_offer_and_a_stalled_transfer() {
    let now = Instant::now();
    let limits = Limits::default();
    let (mut tx, mut rx) = (endpoint(BRIDGE, 9), endpoint(ALICE, 10));
    let (sent, id) = offer(&mut tx, &mut rx, &file("a.txt", 10), false, now);
    // The person never answers: the offer is withdrawn with a BYE at the offer timeout.
    let later = now + limits.p2p_file_offer_timeout + Duration::from_millis(1);
    assert!(tx.poll_timeout().is_some_and(|t| t <= later));
    tx.handle_timeout(later);
    assert_eq!(
        events(&mut tx),
        vec![P2pEvent::FileFailed {
            id: sent,
            peer: ALICE.into(),
            error: FetchError::Timeout
        }]
    );
    deliver(&mut tx, BRIDGE, &mut rx, later);
    assert_eq!(
        events(&mut rx),
        vec![P2pEvent::FileFailed {
            id,
            peer: BRIDGE.into(),
            error: FetchError::PeerClosed
        }]
    );

    // Accepted, then the sender goes quiet: the receiver gives up at the progress timeout.
    let (mut tx, mut rx) = (endpoint(BRIDGE, 11), endpoint(ALICE, 12));
    let (_, id) = offer(&mut tx, &mut rx, &file("a.txt", 10), false, now);
    rx.accept_file(now, id);
    rx.handle_timeout(now + limits.p2p_progress_timeout + Duration::from_millis(1));
    assert_eq!(
        events(&mut rx),
        vec![P2pEvent::FileFailed {
            id,
            peer: BRIDGE.into(),
            error: FetchError::Timeout
        }]
    );
    assert_eq!(rx.transfer_count(), 0);
}

#[test]
fn the_switchboard_closing_fails_every_file_and_sends_nothing() {
    let now = Instant::now();
    let (mut tx, mut rx) = (endpoint(BRIDGE, 13), endpoint(ALICE, 14));
    let (sent, id) = offer(&mut tx, &mut rx, &file("a.txt", 10), false, now);
    rx.accept_file(now, id);
    tx.close();
    rx.close();
    assert!(tx.poll_transmit().is_none() && rx.poll_transmit().is_none());
    for (ep, id, peer) in [(&mut tx, sent, ALICE), (&mut rx, id, BRIDGE)] {
        assert_eq!(
            events(ep),
            vec![P2pEvent::FileFailed {
                id,
                peer: peer.into(),
                error: FetchError::Closed
            }]
        );
    }
}

#[test]
fn a_direct_connection_proposal_is_answered_not_listening() {
    let now = Instant::now();
    let (mut tx, mut rx) = (endpoint(ALICE, 15), endpoint(BRIDGE, 16));
    // msnp11-sdk proposes a direct connection after the 200 OK and sends nothing until
    // it has the answer.
    let proposal = SlpMessage {
        start: StartLine::Request {
            method: "INVITE".into(),
            uri: BRIDGE.into(),
        },
        to: BRIDGE.into(),
        from: ALICE.into(),
        branch: Guid(7),
        cseq: 0,
        call_id: Guid(8),
        content_type: CT_TRANS_REQ.into(),
        body: vec![
            ("Bridges".into(), "TCPv1".into()),
            ("NetID".into(), "0".into()),
            ("Conn-Type".into(), "Unknown-Connect".into()),
        ],
    };
    let template = crate::p2p::Header {
        identifier: 5,
        ack_session_id: 9,
        ..Default::default()
    };
    let data = Bytes::from(proposal.encode());
    for body in crate::p2p::header::chunk(&template, &data, 1202, 0) {
        rx.handle_p2p(now, ALICE, &body)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // The ACK of the proposal, then the answer.
    let answers: Vec<_> = std::iter::from_fn(|| rx.poll_transmit()).collect();
    assert_eq!(answers.len(), 2);
    let Some((_, answer)) = answers.get(1) else {
        panic!("no answer")
    };
    let Ok(p) = Packet::parse(answer) else {
        panic!("bad packet")
    };
    let Ok(msg) = SlpMessage::parse(&p.data) else {
        panic!("bad MSNSLP")
    };
    assert_eq!(msg.status(), Some(200));
    assert_eq!(msg.content_type, CT_TRANS_RESP);
    assert_eq!(msg.field("Listening"), Some("false"));
    // msnp11-sdk reads the answer only when it names an address and a port.
    assert!(msg.field("IPv4Internal-Addrs").is_some());
    assert_eq!(msg.field("IPv4Internal-Port"), Some("0"));
    assert_eq!(msg.call_id, Guid(8));
    assert!(events(&mut rx).is_empty());
    let _ = tx.poll_transmit();
}

#[test]
fn bad_offers_and_bad_data_are_refused_without_leftovers() {
    let now = Instant::now();
    let (mut tx, mut rx) = (endpoint(BRIDGE, 17), endpoint(ALICE, 18));
    assert_eq!(
        tx.offer_file(now, ALICE, &file("empty", 0)),
        Err(StartError::Empty)
    );
    // A chunk that skips ahead (lost data) ends the transfer with a BYE.
    let (sent, _) = offer(&mut tx, &mut rx, &file("a.bin", 5000), true, now);
    let ack_of_ok = tx.poll_transmit();
    assert!(ack_of_ok.is_some());
    tx.feed_file(now, sent, Bytes::from(content(5000)));
    let first = tx.poll_transmit();
    let Some((_, second)) = tx.poll_transmit() else {
        panic!("no second chunk")
    };
    drop(first);
    events(&mut rx);
    assert!(rx.handle_p2p(now, BRIDGE, &second).is_err());
    assert!(matches!(
        events(&mut rx).as_slice(),
        [P2pEvent::FileFailed {
            error: FetchError::BadData(_),
            ..
        }]
    ));
    assert_eq!(rx.transfer_count(), 0);
    // The BYE reaches the sender, which stops.
    deliver(&mut rx, ALICE, &mut tx, now);
    assert!(events(&mut tx).iter().any(|e| matches!(
        e,
        P2pEvent::FileFailed {
            error: FetchError::PeerClosed,
            ..
        }
    )));
}

#[test]
fn a_large_file_streams_through_a_bounded_window() {
    // 8 MB through both machines; the sender never asks for more than the window ahead
    // and the receiver keeps nothing (each piece is an event).
    let now = Instant::now();
    let (mut tx, mut rx) = (endpoint(BRIDGE, 19), endpoint(ALICE, 20));
    let data = content(8 * 1024 * 1024);
    let (_, id) = offer(
        &mut tx,
        &mut rx,
        &file("big.bin", data.len() as u64),
        false,
        now,
    );
    rx.accept_file(now, id);
    let mut got = Vec::new();
    let (_, rx_events) = run(&mut tx, &mut rx, &data, &mut got, now);
    assert!(got == data);
    assert!(matches!(
        rx_events.as_slice(),
        [P2pEvent::FileReceived { .. }]
    ));
}

#[test]
fn a_mutated_file_exchange_never_panics_and_leaves_nothing() {
    // A real exchange, recorded: every body each side sent, in order.
    let now = Instant::now();
    let (mut tx, mut rx) = (endpoint(BRIDGE, 21), endpoint(ALICE, 22));
    let data = content(5_000);
    let (mut to_rx, mut to_tx) = (Vec::new(), Vec::new());
    let Ok(sent) = tx.offer_file(now, ALICE, &file("a.bin", 5_000)) else {
        panic!("offer")
    };
    let mut accepted = false;
    for _ in 0..64 {
        if let Some((_, body)) = tx.poll_transmit() {
            to_rx.push(body.clone());
            let _ = rx.handle_p2p(now, BRIDGE, &body);
        }
        for e in events(&mut rx) {
            if let P2pEvent::FileOffered { id, .. } = e {
                accepted = rx.accept_file(now, id);
            }
        }
        while let Some((_, body)) = rx.poll_transmit() {
            to_tx.push(body.clone());
            let _ = tx.handle_p2p(now, ALICE, &body);
        }
        if tx.wanted_file_data().is_some() {
            tx.feed_file(now, sent, Bytes::from(data.clone()));
        }
    }
    assert!(accepted && to_rx.len() > 4 && !to_tx.is_empty());

    let mut seed = 0x5EED_u32;
    for round in 0..300 {
        let (mut tx, mut rx) = (endpoint(BRIDGE, 21), endpoint(ALICE, 22));
        let _ = tx.offer_file(now, ALICE, &file("a.bin", 5_000));
        let mutate = |body: &Bytes, seed: &mut u32| {
            let mut body = body.to_vec();
            for _ in 0..(round % 4) {
                *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let pos = (*seed >> 8) as usize % body.len().max(1);
                if let Some(b) = body.get_mut(pos) {
                    *b = (*seed >> 24) as u8;
                }
            }
            Bytes::from(body)
        };
        for body in &to_rx {
            let _ = rx.handle_p2p(now, BRIDGE, &mutate(body, &mut seed));
            for e in events(&mut rx) {
                if let P2pEvent::FileOffered { id, .. } = e {
                    rx.accept_file(now, id);
                }
            }
        }
        for body in &to_tx {
            let _ = tx.handle_p2p(now, ALICE, &mutate(body, &mut seed));
        }
        while let Some((id, _, max)) = tx.wanted_file_data() {
            tx.feed_file(now, id, Bytes::from(vec![1; max.min(2_000)]));
        }
        let _ = (
            std::iter::from_fn(|| tx.poll_transmit()).count(),
            std::iter::from_fn(|| rx.poll_transmit()).count(),
        );
        for ep in [&mut tx, &mut rx] {
            ep.handle_timeout(now + Duration::from_secs(3_600));
            ep.handle_timeout(now + Duration::from_secs(7_200));
            let _ = events(ep);
            assert_eq!(ep.transfer_count(), 0, "round {round}");
        }
    }
}
