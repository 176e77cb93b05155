//! Frame scanning and MSG encoding throughput: prints MB/s and frames/s.
//!
//! Run: `cargo bench --bench codec`. Figures go to stdout; nothing is asserted (targets are
//! met here, never in timed test asserts).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test and benchmark code: a failure here should stop the run loudly"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use msnp::message::encode_text;
use msnp::{Direction, Limits, TextFormat, parse};

/// A realistic mix from a notification server: presence, personal messages, MSGs.
fn mix() -> Vec<u8> {
    let psm = "<Data><PSM>Eating cake</PSM><CurrentMedia></CurrentMedia><MachineGuid></MachineGuid></Data>";
    let msg = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Segoe%20UI; EF=B; CO=0; CS=0; PF=22\r\n\r\nHello there, Bob!";
    format!(
        "NLN NLN alice@example.com Alice%20%C3%84 1342177280 %3Cmsnobj%20Creator%3D%22alice%40example.com%22%2F%3E\r\n\
         UBX alice@example.com {}\r\n{psm}\
         CHL 0 15570131571988941333\r\n\
         QNG 50\r\n\
         FLN carol@example.com\r\n\
         MSG alice@example.com Alice {}\r\n{msg}\
         ILN 9 AWY bob@example.com Bob 1342177280\r\n",
        psm.len(),
        msg.len()
    )
    .into_bytes()
}

/// Parses every frame in `b` (the read buffer as the connection would hold it).
fn frames_in(mut b: BytesMut, limits: &Limits) -> usize {
    let mut n = 0;
    while let Ok(Some(frame)) = parse(&mut b, limits, Direction::ServerToClient, 12) {
        black_box(&frame);
        n += 1;
    }
    n
}

fn main() {
    let limits = Limits::default();
    let mix = mix();
    let per_mix = frames_in(BytesMut::from(mix.as_slice()), &limits);
    assert_eq!(per_mix, 7, "the mix parses");
    let copies = 20_000;
    let big: Vec<u8> = mix
        .iter()
        .copied()
        .cycle()
        .take(mix.len() * copies)
        .collect();

    // Frame scanning: best of a few rounds, each over the whole buffer. The input is
    // copied into its read buffer before the clock starts: a connection's bytes are
    // already in its buffer when parsing begins.
    let mut best = Duration::MAX;
    let mut frames = 0;
    for _ in 0..7 {
        let buffer = BytesMut::from(big.as_slice());
        let start = Instant::now();
        frames = frames_in(buffer, &limits);
        best = best.min(start.elapsed());
    }
    let secs = best.as_secs_f64();
    println!(
        "frame parse: {:.0} MB/s, {:.2} M frames/s ({} frames, {} bytes, best of 7)",
        big.len() as f64 / secs / 1e6,
        frames as f64 / secs / 1e6,
        frames,
        big.len()
    );

    // MSG encoding: a formatted text message.
    let format = TextFormat::parse("FN=Segoe%20UI; EF=BI; CO=ff; CS=0; PF=22");
    let text = "Hello from Matrix! This is a message of typical length, with some ünïcödé.";
    let rounds = 200_000;
    let start = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..rounds {
        let encoded = encode_text(black_box(text), black_box(&format));
        bytes += encoded.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "MSG encode: {:.2} M messages/s, {:.0} MB/s ({rounds} messages)",
        rounds as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6
    );
}
