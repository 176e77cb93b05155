//! P2P display-picture throughput: prints bytes/s for reassembling a 200 KB object
//! from 1202-byte chunks (sans-IO), and the time to move a 200 KB picture between two
//! of our own clients over a loopback switchboard through the test server.
//!
//! Run: `cargo bench --bench p2p`. Figures go to stdout; nothing is asserted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test and benchmark code: a failure here should stop the run loudly"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msnp::p2p::header::chunk;
use msnp::p2p::{Header, MAX_CHUNK, MsnObject, Packet, Reassembly};
use tokio::time::timeout;

#[path = "support/loopback.rs"]
mod loopback;
use loopback::{ALICE, T, drain};

const SIZE: usize = 200 * 1024;

fn picture(len: usize, salt: u8) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend((0..len.saturating_sub(8)).map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt)));
    v
}

/// Parse every chunk's body and reassemble, as the receiving endpoint does.
fn reassembly() {
    let data = Bytes::from(picture(SIZE, 7));
    let template = Header {
        session_id: 42,
        identifier: 1000,
        flags: 0x20,
        ..Header::default()
    };
    let bodies = chunk(&template, &data, MAX_CHUNK, 1);
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        let mut r = Reassembly::new(SIZE as u64, 32 * 1024 * 1024).expect("new");
        for body in &bodies {
            let p = Packet::parse(black_box(body)).expect("parse");
            r.add(&p.header, &p.data).expect("add");
        }
        let out = r.finish().expect("complete");
        assert_eq!(out.len(), SIZE);
        black_box(out);
    }
    let secs = start.elapsed().as_secs_f64();
    let bytes = (SIZE * rounds) as f64;
    println!(
        "reassembly: {} chunks of <= {MAX_CHUNK} B, {:.0} bytes/s ({:.1} MB/s)",
        bodies.len(),
        bytes / secs,
        bytes / secs / 1e6
    );
}

async fn loopback() -> Duration {
    let pair = loopback::pair(|_| {}).await;
    let (alice_sb, bob_sb) = (pair.alice, pair.bob);
    drain(pair.alice_events);
    drain(pair.bob_events);
    let data = picture(SIZE, 3);
    let object = MsnObject::for_data(ALICE, 3, "0", "bench", &data);
    assert!(
        alice_sb
            .publish(object.clone(), Bytes::from(data.clone()))
            .await
            .expect("publish")
    );
    let start = Instant::now();
    let (_, got) = timeout(T * 4, bob_sb.fetch(ALICE, &object.to_xml()))
        .await
        .expect("fetch hangs")
        .expect("fetch");
    let took = start.elapsed();
    assert_eq!(got.as_ref(), data.as_slice());
    alice_sb.close().await;
    bob_sb.close().await;
    took
}

fn main() {
    reassembly();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let took = runtime.block_on(loopback());
    println!(
        "loopback switchboard: {SIZE} B picture in {:.3} s ({:.0} bytes/s)",
        took.as_secs_f64(),
        SIZE as f64 / took.as_secs_f64()
    );
}
