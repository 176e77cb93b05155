//! The start-up stage: the bridge stopped and started again on its database, holding every
//! login the run made (the user pairs and the idle accounts). Measures when `/health/ready`
//! answers and how the stored logins come back at `msn.restore_logins_per_second`: how
//! long until all are up, and the most restore failures within any one second.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Bridge, Figures, MsnChild, Tuning, start_bridge};

/// How often the restore's progress is sampled (the figures' resolution).
const SAMPLE: Duration = Duration::from_millis(50);

/// Stops `old` and starts the bridge again on `db` with `tuning` (restoring
/// `tuning.restore_per_second` logins a second); returns the new bridge once every login is back (or `limit` has passed).
pub(super) async fn restart(
    old: Bridge,
    msn: &MsnChild,
    db: &str,
    tuning: Tuning,
    limit: Duration,
    figures: &mut Figures,
) -> Result<Bridge> {
    let stored = u64::try_from(old.running.metrics.msn_sessions.get()).unwrap_or(0);
    if stored == 0 {
        bail!("no login is up to restore");
    }
    eprintln!("restarting the bridge with {stored} logins stored");
    old.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(120), old.running.wait())
        .await
        .context("the bridge did not stop within 120 s")??;
    drop(old.hs);

    let bridge = start_bridge(msn, db, None, tuning).await?;
    figures.row(
        &format!("restart with {stored} logins stored: ready"),
        format!(
            "{:.0} ms after the start was called",
            bridge.ready_after.as_secs_f64() * 1e3
        ),
    );
    let ready = reqwest::get(format!("http://{}/health/ready", bridge.running.local_addr))
        .await
        .context("asking /health/ready")?;
    if !ready.status().is_success() {
        bail!("/health/ready answered {} once ready", ready.status());
    }

    // The restore's progress, sampled: when each login count was reached, and the failures.
    let metrics = bridge.running.metrics.clone();
    let started = Instant::now();
    let mut failures: Vec<(Duration, u64)> = Vec::new();
    let mut half = None;
    let up = loop {
        let up = u64::try_from(metrics.msn_sessions.get()).unwrap_or(0);
        failures.push((started.elapsed(), metrics.errors_of("login_restore")));
        if half.is_none() && up * 2 >= stored {
            half = Some(started.elapsed());
        }
        if up >= stored || started.elapsed() > limit {
            break up;
        }
        tokio::time::sleep(SAMPLE).await;
    };
    let took = started.elapsed();
    // The bridge's metrics are its own, counted from this start; each window reaches
    // back to the last sample at least a second earlier (1 to 1.05 s).
    let worst_second = failures
        .iter()
        .map(|&(at, n)| {
            let before = failures
                .iter()
                .rev()
                .find(|&&(t, _)| t + Duration::from_secs(1) <= at)
                .map_or(0, |&(_, m)| m);
            n - before
        })
        .max()
        .unwrap_or(0);
    let total_failures = failures.last().map_or(0, |&(_, n)| n);
    let per_second = tuning.restore_per_second;
    let goal = stored as f64 / f64::from(per_second);
    figures.row(
        &format!("restart with {stored} logins stored: restored"),
        format!(
            "{up} in {:.1} s ({:.0}/s; pace {per_second}/s, so the goal is {goal:.1} s); half by {:.1} s",
            took.as_secs_f64(),
            up as f64 / took.as_secs_f64(),
            half.unwrap_or(took).as_secs_f64()
        ),
    );
    figures.row(
        &format!("restart with {stored} logins stored: failed attempts"),
        format!("{total_failures} in all, at most {worst_second} within one second"),
    );
    Ok(bridge)
}
