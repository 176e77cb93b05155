//! Fault injection switches shared by every connection of one test server: reply delay,
//! split writes, per-account "read but never answer", and switchboards that hang at their
//! first step (MSNP.md §2.8 observed behaviours: switchboards that never answer `USR`,
//! partial lines over TCP).
//!
//! Only flags and durations; the connection code in `conn`, `ns` and `sb` consults them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Fault switches; all default to "behave normally".
#[derive(Debug, Default)]
pub(crate) struct Faults {
    delay_micros: AtomicU64,
    split_writes: AtomicBool,
    silenced: Mutex<HashSet<String>>,
    /// How many of the next switchboard sessions hang: `USR`/`ANS` and everything after
    /// it go unanswered (R2M's race).
    hanging_switchboards: AtomicU64,
}

impl Faults {
    /// Delay applied before every outgoing frame.
    pub fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_micros.load(Ordering::Relaxed))
    }

    pub fn set_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.delay_micros.store(micros, Ordering::Relaxed);
    }

    /// Whether outgoing frames are written in small pieces with flushes in between.
    pub fn split_writes(&self) -> bool {
        self.split_writes.load(Ordering::Relaxed)
    }

    pub fn set_split_writes(&self, on: bool) {
        self.split_writes.store(on, Ordering::Relaxed);
    }

    /// Whether the server reads but never answers this account's commands.
    pub fn is_silenced(&self, email: &str) -> bool {
        self.silenced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(email)
    }

    /// Sets how many of the next switchboard sessions hang.
    pub fn set_hanging_switchboards(&self, count: u64) {
        self.hanging_switchboards.store(count, Ordering::Relaxed);
    }

    /// Whether the switchboard session starting now hangs (taking one of the count).
    pub fn take_hanging_switchboard(&self) -> bool {
        self.hanging_switchboards
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    pub fn set_silenced(&self, email: &str, on: bool) {
        let mut set = self.silenced.lock().unwrap_or_else(PoisonError::into_inner);
        if on {
            set.insert(email.to_owned());
        } else {
            set.remove(email);
        }
    }
}
