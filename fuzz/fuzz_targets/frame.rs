//! Frame parser (MSNP.md §1): the same bytes fed whole or split at arbitrary points give
//! the same frames and errors; `Ok(None)` never consumes; a non-fatal error always
//! consumes; every parsed frame re-encodes to bytes that parse back to the same frame.
#![no_main]

use std::mem::discriminant;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use msnp::{Direction, Frame, FrameError, Limits, parse};

#[derive(Debug, PartialEq)]
enum Item {
    Frame(Frame),
    /// Errors compare by kind: `LineTooLong { len }` legitimately reports how many bytes
    /// had arrived when it was detected.
    Error(std::mem::Discriminant<FrameError>),
}

/// Small limits so the length checks are reachable with small inputs.
fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_line = 200;
    l.max_msg_payload = 300;
    l.max_notification_payload = 300;
    l.max_other_payload = 100;
    l
}

/// Parses everything available; `true` when a fatal error ended the stream.
fn drain(
    buf: &mut BytesMut,
    limits: &Limits,
    dir: Direction,
    version: u8,
    out: &mut Vec<Item>,
) -> bool {
    loop {
        let before = buf.clone();
        match parse(buf, limits, dir, version) {
            Ok(Some(frame)) => {
                assert!(buf.len() < before.len(), "a frame consumed nothing");
                out.push(Item::Frame(frame));
            }
            Ok(None) => {
                assert_eq!(*buf, before, "Ok(None) changed the buffer");
                return false;
            }
            Err(e) => {
                out.push(Item::Error(discriminant(&e)));
                if e.is_fatal() {
                    return true;
                }
                assert!(buf.len() < before.len(), "non-fatal {e:?} consumed nothing");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, version, a, b, c], stream)) = data.split_first_chunk::<5>() else {
        return;
    };
    let dir = if flags & 1 == 0 {
        Direction::ServerToClient
    } else {
        Direction::ClientToServer
    };
    let version = version % 22;
    let limits = limits();

    // Whole buffer.
    let mut whole = BytesMut::from(stream);
    let mut whole_items = Vec::new();
    let whole_fatal = drain(&mut whole, &limits, dir, version, &mut whole_items);

    // Split at up to three arbitrary points, parsing after every chunk.
    let n = stream.len().max(1);
    let mut cuts = [
        usize::from(a) * n / 256,
        usize::from(b) * n / 256,
        usize::from(c) * n / 256,
    ];
    cuts.sort_unstable();
    let mut split = BytesMut::new();
    let mut split_items = Vec::new();
    let mut split_fatal = false;
    let mut start = 0;
    for end in cuts.into_iter().chain([stream.len()]) {
        let end = end.min(stream.len()).max(start);
        split.extend_from_slice(&stream[start..end]);
        start = end;
        if drain(&mut split, &limits, dir, version, &mut split_items) {
            split_fatal = true;
            break;
        }
    }
    assert_eq!(split_fatal, whole_fatal);
    assert_eq!(split_items, whole_items);
    if !whole_fatal {
        assert_eq!(split, whole, "different bytes left over");
    }

    // encode(parse(x)) parses back to the same frame, consuming exactly its bytes.
    // Arguments are decoded lossily (§1.1), so an invalid byte becomes U+FFFD (3 bytes)
    // and a re-encoded line can outgrow `max_line`: re-parse with room for it.
    for item in &whole_items {
        let Item::Frame(frame) = item else { continue };
        let mut encoded = BytesMut::new();
        if frame.encode(&mut encoded).is_err() {
            continue;
        }
        let wire = encoded.clone();
        let mut roomy = limits.clone();
        roomy.max_line = roomy.max_line.max(wire.len());
        let again = parse(&mut encoded, &roomy, dir, version);
        assert_eq!(again, Ok(Some(frame.clone())), "re-parse of {wire:?}");
        assert!(encoded.is_empty(), "re-parse left {encoded:?}");
    }
});
