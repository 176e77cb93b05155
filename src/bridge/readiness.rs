//! Whether each user's MSN session can carry a message now, and holding a portal's
//! messages while it comes back.
//!
//! A session is *coming* while a login is restored after a bridge restart, while the user
//! logs in, and while a lost connection is being reconnected; *up* once logged in; *down*
//! when there is none (logged out, refused, or never logged in). A Matrix message for a
//! session that is coming waits (its lane waits, so later events of the portal never
//! overtake it) until the session is up or down, or [`MsnConfig::delivery_wait_seconds`]
//! has passed; then it is handled as usual, which reports it undelivered if there is
//! still no session. Waiting holds no worker permit: other rooms, and the management
//! room's commands, go on meanwhile. Once a message has waited the whole time in vain the
//! session is *late*: later messages of that outage go at once (and are reported if the
//! connection is still not back) rather than each waiting again, until the session is
//! up or down or a new login starts.
//!
//! [`MsnConfig::delivery_wait_seconds`]: crate::config::MsnConfig::delivery_wait_seconds

use ruma::UserId;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::remote::{MsnConnector, MsnSessionPort};
use super::{Bridge, MatrixEvent, MatrixPort};

/// Where a user's MSN session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Being logged in, restored or reconnected.
    Coming,
    /// Still coming, but a message waited the whole delivery wait for it in vain.
    Late,
    Up,
    /// No session, and none on its way.
    Down,
}

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// Records where `mxid`'s session is, waking the messages that wait for it.
    pub(super) fn set_phase(&self, mxid: &UserId, phase: Phase) {
        self.users.entry(mxid).phase.send_replace(phase);
    }

    /// A reconnect attempt of `mxid`'s session: coming, unless it is late already (the
    /// attempts of one outage do not make messages wait again).
    pub(super) fn set_reconnecting(&self, mxid: &UserId) {
        self.shift_phase(mxid, &[Phase::Up, Phase::Down], Phase::Coming);
    }

    /// A message waited the whole delivery wait for `mxid`'s session in vain.
    fn set_late(&self, mxid: &UserId) {
        self.shift_phase(mxid, &[Phase::Coming], Phase::Late);
    }

    /// Moves `mxid`'s session to `to` if it is in one of `from` (waking the messages
    /// waiting for it only then).
    fn shift_phase(&self, mxid: &UserId, from: &[Phase], to: Phase) {
        self.users.entry(mxid).phase.send_if_modified(|phase| {
            let shift = from.contains(phase);
            if shift {
                *phase = to;
            }
            shift
        });
    }

    fn watch_phase(&self, mxid: &UserId) -> watch::Receiver<Phase> {
        self.users.entry(mxid).phase.subscribe()
    }

    /// Marks every login that a restart will restore as coming, before any event is
    /// handled: the restore itself starts only once the homeserver answered.
    pub(super) async fn expect_restored_logins(&self) {
        match self.store.users().await {
            Ok(users) => {
                for user in users.iter().filter(|u| self.restorable(u)) {
                    // Unless the restore got there first: a login already up stays up.
                    self.shift_phase(&user.mxid, &[Phase::Down], Phase::Coming);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot list the logins to restore"),
        }
    }

    /// Waits, for a message from a portal's user, until their session can take it (or is
    /// gone, or the wait is over). Other events go at once.
    pub(super) async fn hold_until_ready(self: &Arc<Self>, event: &MatrixEvent) {
        let MatrixEvent::Message {
            room_id, sender, ..
        } = event
        else {
            return;
        };
        if self.is_ready_or_gone(sender) {
            return;
        }
        let Some(portal) = self.portal_by_room(room_id).await else {
            return;
        };
        if portal.receiver != *sender {
            return;
        }
        self.wait_for_session(sender).await;
    }

    /// Waits until `mxid`'s session can take a message, or is gone, or
    /// [`MsnConfig::delivery_wait_seconds`] passed.
    pub(super) async fn wait_for_session(&self, sender: &UserId) {
        if self.is_ready_or_gone(sender) {
            return;
        }
        let wait = Duration::from_secs(self.config.msn.delivery_wait_seconds);
        let mut phase = self.watch_phase(sender);
        self.metrics.portals_waiting.inc();
        let waited = tokio::time::timeout(wait, async {
            loop {
                if self.is_ready_or_gone(sender) {
                    return;
                }
                tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    changed = phase.changed() => if changed.is_err() { return },
                }
            }
        })
        .await;
        self.metrics.portals_waiting.dec();
        if waited.is_err() {
            tracing::info!(?wait, "the MSN session did not come back in time");
            self.set_late(sender);
        }
    }

    /// Whether a message of `mxid` can be handled now: their session is up and connected,
    /// or there is none and none is coming.
    fn is_ready_or_gone(&self, mxid: &UserId) -> bool {
        let phase = self.users.get(mxid).map(|user| *user.phase.borrow());
        match phase {
            None | Some(Phase::Down | Phase::Late) => true,
            Some(Phase::Coming) => false,
            // Up, but the connection may have dropped a moment ago: its reconnect is
            // announced (coming) by the session's events, which come next.
            Some(Phase::Up) => self.session_of(mxid).is_none_or(|s| s.is_connected()),
        }
    }
}
