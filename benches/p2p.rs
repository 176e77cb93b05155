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
use matrix_msn::net::{
    MsnSettings, NsClient, NsEvents, SbClient, SbEvents, SwitchboardEvent, http_client,
};
use msn_testkit::{MsnServer, MsnServerConfig, MsnServerHandle};
use msnp::p2p::header::chunk;
use msnp::p2p::{Header, MAX_CHUNK, MsnObject, Packet, Reassembly};
use msnp::{NsConfig, NsEvent, SbConfig, SbEvent, Secret};
use tokio::time::timeout;

const SIZE: usize = 200 * 1024;
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const T: Duration = Duration::from_secs(30);

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

async fn connect(settings: &MsnSettings, email: &str) -> (NsClient, NsEvents) {
    let http = http_client(None, Duration::from_secs(5)).expect("http client");
    let (client, mut events) = timeout(
        T,
        NsClient::connect(settings, &http, NsConfig::new(email), Secret::new("secret")),
    )
    .await
    .expect("login hangs")
    .expect("login");
    wait(&mut events, "own status", |e| {
        matches!(e, NsEvent::OwnStatus { .. })
    })
    .await;
    (client, events)
}

async fn wait<E, F: Fn(&E) -> bool>(
    rx: &mut tokio::sync::mpsc::Receiver<E>,
    what: &str,
    pred: F,
) -> E {
    let fut = async {
        while let Some(e) = rx.recv().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    };
    timeout(T, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("events ended waiting for {what}"))
}

/// Keeps a switchboard's event channel drained so its driver never blocks on it.
fn drain(mut rx: SbEvents) {
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
}

async fn loopback() -> Duration {
    let server: MsnServerHandle = MsnServer::start(MsnServerConfig::default())
        .await
        .expect("start test server");
    server.add_account(ALICE, "secret", "Alice");
    server.add_account(BOB, "secret", "Bob");
    server.make_friends(ALICE, BOB);
    let mut settings = MsnSettings::new(server.dispatch_addr().to_string(), server.nexus_url());
    settings.versions = vec![11];
    settings.connect_timeout = Duration::from_secs(5);
    settings.request_timeout = Duration::from_secs(5);
    let (alice, _alice_ev) = connect(&settings, ALICE).await;
    let (bob, mut bob_ev) = connect(&settings, BOB).await;

    let (address, auth) = timeout(T, alice.request_switchboard())
        .await
        .expect("XFR hangs")
        .expect("XFR");
    let (alice_sb, mut alice_sb_ev) = SbClient::open(
        &settings,
        SbConfig::new(ALICE, alice.version()),
        &address,
        &auth,
        &[BOB],
    )
    .await
    .expect("SB open");
    let NsEvent::SwitchboardInvite {
        session_id,
        address,
        auth,
        ..
    } = wait(&mut bob_ev, "RNG", |e| {
        matches!(e, NsEvent::SwitchboardInvite { .. })
    })
    .await
    else {
        unreachable!()
    };
    let (bob_sb, bob_sb_ev) = SbClient::answer(
        &settings,
        SbConfig::new(BOB, bob.version()),
        &address,
        &auth,
        &session_id,
    )
    .await
    .expect("ANS");
    drain(bob_sb_ev);
    wait(&mut alice_sb_ev, "bob joins", |e| {
        matches!(e, SwitchboardEvent::Session(SbEvent::Joined { .. }))
    })
    .await;
    drain(alice_sb_ev);

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
