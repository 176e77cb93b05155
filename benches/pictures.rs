//! Display pictures side by side, in one run on one in-repo MSN server (MSNP11): how long
//! an `msnp11-sdk` contact takes to fetch a picture served by another `msnp11-sdk` client,
//! and the same picture served by the bridge's own switchboard client (`SbClient::publish`,
//! how the bridge serves its user's Matrix avatar), at the bridge's default P2P pacing and
//! unpaced (`msnp11-sdk` spins on a large picture sent unpaced, which is why the bridge
//! paces). The clock runs from the contact's request to its `DisplayPicture` event, with
//! the switchboard already open; the servers take turns, round after round.
//!
//! Run: `cargo bench --bench pictures`. Figures go to stdout; nothing is asserted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test and benchmark code: a failure here should stop the run loudly"
)]

#[allow(
    dead_code,
    unused_imports,
    reason = "shared with the tests; not all used here"
)]
#[path = "../tests/it/p2p.rs"]
mod p2p;
#[allow(
    dead_code,
    unused_imports,
    reason = "shared with the tests; not all used here"
)]
#[path = "../tests/it/support.rs"]
mod support;
#[allow(
    dead_code,
    unused_imports,
    reason = "shared with the tests; not all used here"
)]
#[path = "../tests/it/testkit_msnp11_sdk.rs"]
mod testkit_msnp11_sdk;

use std::time::{Duration, Instant};

use bytes::Bytes;
use matrix_msn::net::{MsnSettings, NsClient, P2P_MIN_INTERVAL};
use msnp::p2p::MsnObject;
use msnp11_sdk::{Client, Event};

use testkit_msnp11_sdk::{Events, answered, collect_sb, login, online, picture, server, wait_for};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";
/// 1.8 KB and 3.3 KB: the pictures of the measurements.
const SIZES: [usize; 2] = [1_800, 3_300];
/// A large picture, which only the bridge serves here: between two `msnp11-sdk` clients
/// it never arrives (the receiving reader spins on the sender's back-to-back chunks, and
/// the spinning tasks starve the runtime).
const LARGE: usize = 100_000;
const ROUNDS: usize = 7;

/// Bob (`msnp11-sdk`) fetches the picture Carol (`msnp11-sdk`) serves.
async fn sdk_serves(carol: &Client, bob_events: &mut Events, msnobj: &str, pic: &[u8]) -> Duration {
    let carol_sb = carol
        .create_session(BOB)
        .await
        .expect("Carol's switchboard");
    let bob_sb = answered(bob_events).await;
    let took = fetch(&bob_sb, CAROL, msnobj, pic).await;
    let _ = carol_sb.disconnect().await;
    took
}

/// Bob (`msnp11-sdk`) fetches the picture Alice (the bridge's client) serves.
async fn bridge_serves(
    alice: &NsClient,
    settings: &MsnSettings,
    bob_events: &mut Events,
    pic: &[u8],
) -> Duration {
    let object = MsnObject::for_data(ALICE, 3, "0", "me", pic);
    let (sb, _events, bob_sb) = p2p::open_with_bob(alice, settings, bob_events).await;
    assert!(
        sb.publish(object.clone(), Bytes::from(pic.to_vec()))
            .await
            .expect("publish")
    );
    let took = fetch(&bob_sb, ALICE, &object.to_xml(), pic).await;
    sb.close().await;
    took
}

/// The time from Bob's request to the picture, checked byte for byte.
async fn fetch(bob_sb: &msnp11_sdk::Switchboard, from: &str, msnobj: &str, pic: &[u8]) -> Duration {
    let mut events = collect_sb(bob_sb);
    let start = Instant::now();
    bob_sb
        .request_contact_display_picture(from, msnobj)
        .await
        .expect("request");
    let got = wait_for(
        &mut events,
        "DisplayPicture",
        |e| matches!(e, Event::DisplayPicture { email, .. } if email == from),
    )
    .await;
    let took = start.elapsed();
    let Event::DisplayPicture { data, .. } = got else {
        unreachable!()
    };
    assert_eq!(data, pic, "the picture arrives whole");
    let _ = bob_sb.disconnect().await;
    took
}

/// Median and best, in milliseconds.
fn figures(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "median {:.1} ms, best {:.1} ms",
        ms(samples[samples.len() / 2]),
        ms(samples[0])
    )
}

async fn race() {
    let server = server().await;
    let (bob, mut bob_events) = login(&server, BOB).await;
    online(&bob).await;
    let (carol, _carol_events) = login(&server, CAROL).await;
    let (alice, _alice_events, settings) = p2p::connect(&server).await;
    let mut unpaced = settings.clone();
    unpaced.p2p_min_interval = Duration::ZERO;
    println!(
        "display picture fetched by an msnp11-sdk contact, same server and run, {ROUNDS} rounds each:"
    );
    for (n, len) in SIZES.into_iter().enumerate() {
        let pic = picture(len, n as u8);
        // Carol's msnobj as Bob sees it (the SDK's own form).
        let sha1d = carol
            .set_display_picture(pic.clone())
            .await
            .expect("set picture");
        online(&carol).await;
        let msnobj = loop {
            let event = wait_for(&mut bob_events, "Carol's msnobj", |e| {
                matches!(e, Event::PresenceUpdate { email, .. } | Event::InitialPresenceUpdate { email, .. } if email == CAROL)
            })
            .await;
            if let Event::PresenceUpdate { presence, .. }
            | Event::InitialPresenceUpdate { presence, .. } = event
                && let Some(object) = presence.msn_object_string.filter(|o| o.contains(&sha1d))
            {
                break object;
            }
        };
        let (mut sdk, mut paced, mut bare) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            sdk.push(sdk_serves(&carol, &mut bob_events, &msnobj, &pic).await);
            paced.push(bridge_serves(&alice, &settings, &mut bob_events, &pic).await);
            bare.push(bridge_serves(&alice, &unpaced, &mut bob_events, &pic).await);
        }
        println!("  {len} B: msnp11-sdk serving: {}", figures(sdk));
        println!(
            "  {len} B: the bridge serving, paced {} ms (default): {}",
            P2P_MIN_INTERVAL.as_millis(),
            figures(paced)
        );
        println!("  {len} B: the bridge serving, unpaced: {}", figures(bare));
    }
    let pic = picture(LARGE, 9);
    let mut paced = Vec::new();
    for _ in 0..3 {
        paced.push(bridge_serves(&alice, &settings, &mut bob_events, &pic).await);
    }
    println!(
        "  {LARGE} B: the bridge serving, paced {} ms (default): {} (msnp11-sdk cannot)",
        P2P_MIN_INTERVAL.as_millis(),
        figures(paced)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    race().await;
}
