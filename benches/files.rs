//! File-transfer throughput over a loopback switchboard through the in-repo test server,
//! between two of the bridge's own clients (its `SbClient`, which streams files from
//! and to disk): MB/s each way at the default pacing (`msn.p2p_pacing_ms` = 5) and
//! unpaced, and the process's peak RSS while a 100 MB file goes through, against its
//! peak with a 20 MB file (memory must not grow with the file).
//!
//! Run: `cargo bench --bench files`. Figures go to stdout; nothing is asserted but the
//! bytes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark code: a failure here should stop the run loudly"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use matrix_msn::net::{SbClient, SbEvents, SwitchboardEvent};
use msnp::p2p::{FileContext, P2pEvent};
use tokio::time::timeout;

#[path = "support/loopback.rs"]
mod loopback;
use loopback::{ALICE, BOB, drain, wait};

const MB: u64 = 1024 * 1024;

/// Writes a file of `size` bytes (a repeating pattern) at `path`.
fn write_file(path: &Path, size: u64) {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let block: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).expect("write");
        left -= n as u64;
    }
    file.flush().expect("flush");
}

/// Peak resident set of this process so far (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Moves the file at `source` from `from` (its account `from_name`) to `to`, whose
/// events are `to_events`, into `target`; returns the time it took.
async fn transfer(
    (from, to): (&SbClient, &SbClient),
    to_events: &mut SbEvents,
    to_name: &str,
    source: &Path,
    target: &Path,
) -> Duration {
    let size = std::fs::metadata(source).expect("source").len();
    let context = FileContext {
        name: "bench.bin".into(),
        size,
        preview: None,
    };
    let start = Instant::now();
    let file = tokio::fs::File::open(source).await.expect("open");
    let sent = from
        .send_file(to_name, context, Box::new(file))
        .await
        .expect("offered");
    let SwitchboardEvent::Transfer(P2pEvent::FileOffered { id, .. }) =
        wait(to_events, "the offer", |e| {
            matches!(e, SwitchboardEvent::Transfer(P2pEvent::FileOffered { .. }))
        })
        .await
    else {
        unreachable!()
    };
    let sink = tokio::fs::File::create(target).await.expect("create");
    let received = to.receive_file(id, Box::new(sink)).await.expect("accepted");
    let long = Duration::from_secs(3600);
    let got = timeout(long, received)
        .await
        .expect("in time")
        .expect("reply")
        .expect("received");
    timeout(long, sent)
        .await
        .expect("in time")
        .expect("reply")
        .expect("sent");
    let took = start.elapsed();
    assert_eq!(got, size);
    took
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    std::fs::read(a).expect("a") == std::fs::read(b).expect("b")
}

async fn run(pacing: Duration, size: u64, dir: &Path) -> (f64, f64) {
    let pair = loopback::pair(|s| s.p2p_min_interval = pacing).await;
    let (alice, bob) = (pair.alice, pair.bob);
    let (mut alice_events, mut bob_events) = (pair.alice_events, pair.bob_events);
    let source = dir.join("source.bin");
    write_file(&source, size);
    let mut rates = [0.0; 2];
    for (i, rate) in rates.iter_mut().enumerate() {
        let target = dir.join(format!("target-{i}.bin"));
        let took = if i == 0 {
            transfer((&alice, &bob), &mut bob_events, BOB, &source, &target).await
        } else {
            transfer((&bob, &alice), &mut alice_events, ALICE, &source, &target).await
        };
        assert!(same_bytes(&source, &target), "identical bytes");
        std::fs::remove_file(&target).expect("remove");
        *rate = size as f64 / took.as_secs_f64() / 1e6;
    }
    drain(alice_events);
    drain(bob_events);
    (rates[0], rates[1])
}

/// Peak RSS (KiB) after moving a file of `size` bytes one way, unpaced.
async fn peak_after(size: u64, dir: &Path) -> u64 {
    let pair = loopback::pair(|s| s.p2p_min_interval = Duration::ZERO).await;
    let mut bob_events = pair.bob_events;
    let source = dir.join("big.bin");
    write_file(&source, size);
    let target = dir.join("big-target.bin");
    transfer(
        (&pair.alice, &pair.bob),
        &mut bob_events,
        BOB,
        &source,
        &target,
    )
    .await;
    std::fs::remove_file(&source).expect("remove");
    std::fs::remove_file(&target).expect("remove");
    drain(pair.alice_events);
    drain(bob_events);
    peak_rss_kib()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("matrix-msn-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    runtime.block_on(async {
        // The test server keeps its last 4,096–8,192 frames (up to ~10 MB of P2P
        // messages): past 20 MB that is full, so what grows beyond is the clients'.
        let small = peak_after(20 * MB, &dir).await;
        let large = peak_after(100 * MB, &dir).await;
        println!(
            "peak RSS of the process (test server and both clients, unpaced): {small} KiB after 20 MB, {large} KiB after 100 MB (+{} KiB)",
            large.saturating_sub(small)
        );
        let (there, back) = run(Duration::ZERO, 20 * MB, &dir).await;
        println!("unpaced (msn.p2p_pacing_ms: 0): 20 MB at {there:.2} MB/s Alice to Bob, {back:.2} MB/s Bob to Alice");
        let (there, back) = run(loopback::DEFAULT_PACING, 2 * MB, &dir).await;
        println!("default pacing (5 ms): 2 MB at {there:.2} MB/s Alice to Bob, {back:.2} MB/s Bob to Alice");
    });
    let _ = std::fs::remove_dir_all(&dir);
}
