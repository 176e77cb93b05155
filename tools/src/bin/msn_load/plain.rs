//! `--synapse`'s side-by-side baseline: what the same Synapse, in the same run, accepts
//! from plain clients when no bridge is involved. Each bridged user gets a plain peer
//! (`@pl<i>`, registered without a sync loop: it only sends) and a private room with it,
//! and the same numbers of messages go through those rooms in the two shapes the bridged
//! bursts have:
//!
//! * **as the bridge sends** (the MSN→Matrix shape): the peer sends into its room, each
//!   message once the previous one was accepted (the bridge keeps a portal's messages in
//!   order), every room at once; measured, as the bridged burst is, when the messages
//!   reach the bridged user's `/sync`;
//! * **as the Matrix users send** (the Matrix→MSN shape): a round of one message from
//!   every bridged user at once, then the next round, as in the bridged burst; measured
//!   when Synapse has accepted them all (there is no bridge to hand them to).
//!
//! The bursts run before the bridged ones, on a Synapse with less in it, so if anything
//! the comparison favours the plain clients. The same users' sync loops run during both.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Result;

use super::synapse::Synapse;
use super::{Burst, CpuMeter, Observer, delivered, lat};

/// A bridged user and the plain peer it shares a room with.
struct PlainPair {
    user: String,
    peer: String,
    room: String,
}

/// Creates one plain room per bridged user (`users[i]` with `@pl<i>:localhost`).
async fn rooms(synapse: &Synapse, users: &[String]) -> Result<Vec<PlainPair>> {
    let mut pairs = Vec::with_capacity(users.len());
    for (i, user) in users.iter().enumerate() {
        let peer = format!("@pl{i}:localhost");
        synapse.register(&peer, false).await?;
        let room = synapse.create_room(&peer, &[user], false).await?;
        // The user's sync loop joins invited rooms too; a second join is a no-op.
        synapse.join(&room, user).await?;
        pairs.push(PlainPair {
            user: user.clone(),
            peer,
            room,
        });
    }
    Ok(pairs)
}

/// Both plain bursts: (as the bridge sends, as the Matrix users send).
pub async fn bursts(
    synapse: &Arc<Synapse>,
    observer: &Observer,
    users: &[String],
    messages: usize,
    seq: &AtomicU64,
) -> Result<(Burst, Burst)> {
    let pairs = rooms(synapse, users).await?;
    let total = pairs.len() * messages;

    // As the bridge sends: each peer in order into its room, all rooms at once.
    let first = seq.fetch_add(total as u64, Ordering::Relaxed);
    let cpu = CpuMeter::start(synapse.pid());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, pair) in pairs.iter().enumerate() {
        let (synapse, room, peer) = (synapse.clone(), pair.room.clone(), pair.peer.clone());
        tasks.spawn(async move {
            let mut sent = Vec::with_capacity(messages);
            for m in 0..messages {
                let n = first + (i * messages + m) as u64;
                sent.push((n, Instant::now()));
                synapse.say(&room, &peer, &format!("m2x {n}")).await?;
            }
            anyhow::Ok(sent)
        });
    }
    let mut sent_at = HashMap::with_capacity(total);
    while let Some(done) = tasks.join_next().await {
        sent_at.extend(done??);
    }
    let range = first..first + total as u64;
    let as_bridge = delivered(observer, "a plain burst", range, started, &sent_at, cpu).await;

    // As the Matrix users send: rounds of one message from every user, each round once
    // Synapse accepted the previous one.
    let cpu = CpuMeter::start(synapse.pid());
    let started = Instant::now();
    let mut rounds = Vec::with_capacity(messages);
    for m in 0..messages {
        let round: Vec<_> = pairs
            .iter()
            .map(|pair| (pair.room.clone(), pair.user.clone(), format!("plain {m}")))
            .collect();
        let sent = Instant::now();
        synapse.say_all(&round).await?;
        rounds.push(sent.elapsed());
    }
    let elapsed = started.elapsed();
    let as_users = Burst {
        timed: "a round accepted",
        rate: total as f64 / elapsed.as_secs_f64().max(1e-9),
        arrived: total,
        total,
        elapsed,
        latency: lat(rounds),
        cpu: cpu.finish(),
    };
    Ok((as_bridge, as_users))
}
