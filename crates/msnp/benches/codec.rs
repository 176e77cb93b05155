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

#[path = "support/msnp11_sdk_split.rs"]
mod msnp11_sdk_split;

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

/// Where each frame of `b` ends: its command line, and the whole frame with its payload.
fn frame_cuts(b: &[u8], limits: &Limits) -> Vec<(usize, usize)> {
    let mut buffer = BytesMut::from(b);
    let mut cuts = Vec::new();
    while let Ok(Some(frame)) = parse(&mut buffer, limits, Direction::ServerToClient, 12) {
        let end = b.len() - buffer.len();
        cuts.push((end - frame.payload.map_or(0, |p| p.len()), end));
    }
    cuts
}

/// Best of `rounds` timings of `run`, with its last result.
fn best_of<T>(rounds: usize, mut run: impl FnMut() -> (Instant, T)) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..rounds {
        let (start, result) = run();
        best = best.min(start.elapsed());
        last = Some(result);
    }
    (best, last.expect("at least one round"))
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
    let (best, frames) = best_of(7, || {
        let buffer = BytesMut::from(big.as_slice());
        let start = Instant::now();
        (start, frames_in(buffer, &limits))
    });
    let ours = big.len() as f64 / best.as_secs_f64() / 1e6;
    println!(
        "frame parse: {ours:.0} MB/s, {:.2} M frames/s ({frames} frames, {} bytes, best of 7)",
        frames as f64 / best.as_secs_f64() / 1e6,
        big.len()
    );

    // The same transcript through msnp11-sdk's splitter, in reads as the server's writes
    // would deliver them (whole frames, at most 1,664 bytes a read).
    let mix_ends = frame_cuts(&mix, &limits);
    let mix_len = mix.len();
    let ends: Vec<usize> = (0..copies)
        .flat_map(|k| mix_ends.iter().map(move |&(_, end)| end + k * mix_len))
        .collect();
    let (sdk_best, sdk_frames) = best_of(7, || {
        let mut reads = msnp11_sdk_split::FrameReads::new(&big, &ends);
        let start = Instant::now();
        let mut n = 0;
        while let Some(frames) = msnp11_sdk_split::receive_split(&mut reads) {
            n += frames.len();
            black_box(&frames);
        }
        (start, n)
    });
    assert_eq!(sdk_frames, frames, "both split the transcript alike");
    let sdk = big.len() as f64 / sdk_best.as_secs_f64() / 1e6;
    println!(
        "msnp11-sdk 0.13 splitter, same transcript: {sdk:.0} MB/s ({:.2} M frames/s); ours is {:.1}x",
        frames as f64 / sdk_best.as_secs_f64() / 1e6,
        ours / sdk
    );

    // The floor under a parser whose frames own their bytes, as ours do (the line and
    // the payload are shared slices of the read buffer): cutting each frame out, its
    // line and its payload, and dropping them, with nothing parsed.
    let cuts = frame_cuts(&big, &limits);
    let (cut_best, cut_frames) = best_of(7, || {
        let mut buffer = BytesMut::from(big.as_slice());
        let start = Instant::now();
        let mut at = 0;
        for &(line_end, end) in &cuts {
            let line = buffer.split_to(line_end - at).freeze();
            let payload = (end > line_end).then(|| buffer.split_to(end - line_end).freeze());
            black_box((line, payload));
            at = end;
        }
        (start, cuts.len())
    });
    assert_eq!(cut_frames, frames, "the cuts are the parser's frames");
    let cut = big.len() as f64 / cut_best.as_secs_f64() / 1e6;
    println!(
        "cutting the frames out as shared slices, nothing parsed: {cut:.0} MB/s ({:.1} ns a frame; ours {:.1} ns); the floor of frames that own their bytes is {:.1}x the SDK",
        cut_best.as_secs_f64() * 1e9 / frames as f64,
        best.as_secs_f64() * 1e9 / frames as f64,
        cut / sdk
    );

    // The floor under any parser of this input: reading each byte once, looking for the
    // line ends (memchr, vectorised), from memory the same size as the parser's.
    let (scan_best, lines) = best_of(7, || {
        let start = Instant::now();
        (start, memchr::memchr_iter(b'\n', black_box(&big)).count())
    });
    black_box(lines);
    let scan = big.len() as f64 / scan_best.as_secs_f64() / 1e6;
    println!(
        "reading every byte once (memchr of line ends): {scan:.0} MB/s; our parser runs at {:.0} % of it",
        100.0 * ours / scan
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
