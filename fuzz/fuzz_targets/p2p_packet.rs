//! P2P v1 binary framing (MSNP.md §9.1, §9.4): every body `Packet::parse` accepts
//! re-encodes to the same bytes and parses back to the same packet; `Reassembly` fed
//! hostile chunks never panics, never reports more than its total (itself under the
//! cap), and when complete returns exactly the bytes a reference model saw.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use msnp::p2p::{Header, Packet, Reassembly, ReassemblyError};

fuzz_target!(|data: &[u8]| {
    let Some((&[mode, t0, t1, c0], rest)) = data.split_first_chunk::<4>() else {
        return;
    };

    // 1. Packet parse → encode → parse.
    if mode & 1 == 0 {
        let body = Bytes::copy_from_slice(rest);
        if let Ok(p) = Packet::parse(&body) {
            assert_eq!(p.data.len(), p.header.length as usize);
            let wire = Packet::encode(&p.header, &p.data, p.footer);
            assert_eq!(wire, body, "re-encoding changed the bytes");
            assert_eq!(Packet::parse(&wire), Ok(p));
        }
        if let Some(h) = Header::read(rest) {
            assert_eq!(Header::read(&h.to_bytes()), Some(h));
        }
        return;
    }

    // 2. Reassembly with hostile chunks: [offset u16][len u8] then `len` bytes each.
    let total = u64::from(u16::from_le_bytes([t0, t1]));
    let cap = u64::from(c0) * 64;
    let mut r = match Reassembly::new(total, cap) {
        Ok(r) => r,
        Err(e) => {
            assert!(
                total == 0 || total > cap,
                "refused {total} under cap {cap}: {e:?}"
            );
            return;
        }
    };
    assert!(total <= cap);
    let mut model: Vec<Option<u8>> = vec![None; usize::from(u16::MAX) + 1];
    let mut input = rest;
    let mut done = false;
    while let Some((&[o0, o1, len, flip], tail)) = input.split_first_chunk::<4>() {
        let n = usize::from(len).min(tail.len());
        let (chunk, tail) = tail.split_at(n);
        input = tail;
        let header = Header {
            offset: u64::from(u16::from_le_bytes([o0, o1])),
            // Occasionally lie about the total.
            total_size: if flip == 0xFF { total + 1 } else { total },
            length: n as u32,
            ..Header::default()
        };
        let before = r.received();
        match r.add(&header, chunk) {
            Ok(complete) => {
                assert!(!done, "accepted a chunk after completion");
                let start = header.offset as usize;
                for (i, b) in chunk.iter().enumerate() {
                    assert!(model[start + i].is_none(), "accepted overlapping byte");
                    model[start + i] = Some(*b);
                }
                assert_eq!(r.received(), before + n as u64);
                assert_eq!(complete, r.received() == total);
                done = complete;
            }
            Err(e) => {
                assert_eq!(r.received(), before, "a refused chunk changed state: {e:?}");
                if let ReassemblyError::TotalChanged { .. } = e {
                    assert_eq!(flip, 0xFF);
                }
            }
        }
        assert!(r.received() <= r.total() && r.total() <= cap);
        assert_eq!(r.is_complete(), r.received() == total);
    }
    if let Some(out) = r.finish() {
        assert!(done);
        assert_eq!(out.len() as u64, total);
        for (i, b) in out.iter().enumerate() {
            assert_eq!(model[i], Some(*b));
        }
    } else {
        assert!(!done);
    }
});
