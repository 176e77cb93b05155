//! Gives memory the process no longer uses back to the system.
//!
//! glibc's allocator keeps what is freed inside its heaps (it returns only the top of a
//! heap by itself), so a burst of logins, restored sessions or messages would leave the
//! resident memory at its peak for good: with 10,000 idle logins, about 11 KB per login
//! was freed but still resident (`msn-load`'s idle stages, README "Performance"). Every
//! [`TRIM_EVERY`] the trimmer releases the free pages with `malloc_trim(0)`, on a blocking
//! thread: with 10,000 logins a trim took 12 ms idle and up to 48 ms while logins went on,
//! too long to hold a runtime worker. With another C library (musl returns memory by
//! itself) or system, there is nothing to do.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often free memory is given back.
pub const TRIM_EVERY: Duration = Duration::from_secs(30);

/// Releases the allocator's free pages; `true` if any went back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() -> bool {
    // SAFETY: `malloc_trim` only returns free pages of glibc's own heaps to the system;
    // it takes the allocator's locks as `malloc` does and touches no memory in use.
    unsafe { libc::malloc_trim(0) != 0 }
}

/// Nothing to release here.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() -> bool {
    false
}

/// Trims every [`TRIM_EVERY`] until `shutdown`.
pub fn spawn_trimmer(shutdown: CancellationToken) {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    tokio::spawn(async move {
        let mut every = tokio::time::interval(TRIM_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let started = std::time::Instant::now();
            let Ok(released) = tokio::task::spawn_blocking(trim).await else {
                return; // The runtime is shutting down.
            };
            tracing::trace!(released, took = ?started.elapsed(), "free memory trimmed");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory freed in the middle of the heap goes back: after many small allocations of
    /// which every other one is freed, a trim releases pages (glibc only).
    #[test]
    fn freed_memory_in_the_middle_of_the_heap_goes_back() {
        let mut kept = Vec::new();
        let mut freed = Vec::new();
        for i in 0..2_000 {
            let block = vec![i as u8; 16 * 1024];
            if i % 2 == 0 {
                kept.push(block);
            } else {
                freed.push(block);
            }
        }
        drop(freed);
        let released = trim();
        assert_eq!(released, cfg!(all(target_os = "linux", target_env = "gnu")));
        assert_eq!(kept.len(), 1_000);
    }
}
