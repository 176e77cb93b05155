//! What the durable steps on a message's path cost on the default SQLite store: each
//! statement the bridge makes per message, timed one at a time as a lone message makes
//! them, beside `SELECT 1` (a round trip to sqlx's connection thread that does no work:
//! the floor of any statement through it). The latency rows of issue #16 are read
//! against these figures.
//!
//! `cargo bench --bench store [-- ROUNDS]` (default 2,000 rounds of each step).
#![allow(
    clippy::expect_used,
    reason = "benchmark code: a failure here should stop the run loudly"
)]

use std::future::Future;
use std::time::{Duration, Instant};

use matrix_msn::store::{MessageMapping, Store};

/// The `q` quantile of `sorted`, in microseconds.
fn quantile_us(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or_default().as_secs_f64() * 1e6
}

/// p50 / p99 / mean of `samples` (sorted in place), in microseconds.
fn summary(samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / samples.len().max(1) as f64;
    format!(
        "p50 {:>6.1} µs  p99 {:>7.1} µs  mean {:>6.1} µs",
        quantile_us(samples, 0.5),
        quantile_us(samples, 0.99),
        mean
    )
}

fn report(step: &str, samples: &mut [Duration]) {
    println!("  {step:<52} {}", summary(samples));
}

/// Times `rounds` runs of `step(i)`, one after the other; returns the times and what
/// each run gave.
async fn time<T, F, Fut>(rounds: usize, mut step: F) -> (Vec<Duration>, Vec<T>)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = T>,
{
    let mut samples = Vec::with_capacity(rounds);
    let mut outputs = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let started = Instant::now();
        outputs.push(step(i).await);
        samples.push(started.elapsed());
    }
    (samples, outputs)
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(rounds));
}

async fn run(rounds: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let store = Store::connect(&format!("sqlite:{}", path.display()), 5)
        .await
        .expect("store");
    let receiver = ruma::user_id!("@bob:localhost");
    let payload = format!(
        r#"{{"type":"m.room.message","content":{{"msgtype":"m.text","body":"{}"}}}}"#,
        "hello ".repeat(10)
    );
    println!(
        "SQLite (WAL, synchronous = NORMAL), one statement or transaction at a time, {rounds} rounds:"
    );

    let (mut floor, _) = time(rounds, |_| async {
        assert!(store.ping().await);
    })
    .await;
    report("SELECT 1 (the round trip alone)", &mut floor);

    let (mut enqueue, seqs) = time(rounds, |i| {
        let (store, payload) = (&store, &payload);
        let txn = format!("txn-{i}");
        async move {
            let events = [("message".to_owned(), payload.clone())];
            let queued = store
                .enqueue_transaction(&txn, "key", &events)
                .await
                .expect("enqueue");
            queued
                .unwrap_or_default()
                .first()
                .copied()
                .unwrap_or_default()
        }
    })
    .await;
    report(
        "Matrix→MSN: the transaction and its event queued",
        &mut enqueue,
    );

    let (mut mapped, _) = time(rounds, |i| {
        let store = &store;
        async move {
            let mapping = MessageMapping {
                matrix_event_id: format!("$event-{i}"),
                part: 0,
                room_id: "!room:localhost".into(),
                receiver: receiver.to_string(),
                msn_message_id: format!("msn-{i}"),
                direction: "to_msn".into(),
            };
            assert!(store.insert_message(&mapping).await.expect("map"));
        }
    })
    .await;
    report(
        "Matrix→MSN: the message map's row, before the send",
        &mut mapped,
    );

    let (mut finished, _) = time(rounds, |i| {
        let (store, seq) = (&store, seqs.get(i).copied().unwrap_or_default());
        async move {
            store.finish_event(seq).await.expect("finish");
        }
    })
    .await;
    report(
        "Matrix→MSN: the event taken off the queue (after)",
        &mut finished,
    );

    let (mut pushed, pushed_seqs) = time(rounds, |_| {
        let (store, payload) = (&store, &payload);
        async move { store.outbox_push(receiver, payload).await.expect("push") }
    })
    .await;
    report("MSN→Matrix: the message written to the outbox", &mut pushed);

    let (mut removed, _) = time(rounds, |i| {
        let (store, seq) = (&store, pushed_seqs.get(i).copied().unwrap_or_default());
        async move {
            store.outbox_remove(&[seq]).await.expect("remove");
        }
    })
    .await;
    report("MSN→Matrix: the message taken off the outbox", &mut removed);

    // Queued before the homeserver hears `200`, mapped before the send; the removal
    // comes after the send, in batches, off the message's way.
    // Each was sorted by its report.
    let before_send = quantile_us(&enqueue, 0.5) + quantile_us(&mapped, 0.5);
    println!(
        "  before a Matrix message can reach MSN (queued, then mapped): {before_send:.0} µs at p50, \
         {:.1}× a bare round trip",
        before_send / quantile_us(&floor, 0.5).max(f64::MIN_POSITIVE)
    );
    store.close().await;
}
