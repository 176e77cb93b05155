//! How a Matrix message ended, told to the room: a notice when it did not reach MSN, and
//! its send status either way (`com.beeper.message_send_status`, as the mautrix bridges
//! report it, for the clients that show it; off with `bridge.message_status_events`).
//!
//! The status goes out beside the room's lane, not in it: the next message of the room
//! need not wait for the homeserver to take the previous one's status. At most
//! [`STATUSES_IN_FLIGHT`] are on their way at once; past that the lane waits for one to
//! land. A status is a report, not the message: one that cannot be sent (or is still on
//! its way when the bridge stops) is logged and not tried again.

use ruma::{EventId, RoomId, UserId};
use tracing::Instrument;

use super::port::SendStatus;
use super::remote::MsnConnector;
use super::{Bridge, MatrixPort};

/// Send statuses on their way to the homeserver at once.
pub(super) const STATUSES_IN_FLIGHT: usize = 64;

impl<M: MatrixPort, C: MsnConnector> Bridge<M, C> {
    /// Reports how a Matrix message ended: a notice when it did not reach MSN (before the
    /// lane goes on), and its send status either way (beside the lane) unless
    /// `bridge.message_status_events` is off.
    pub(super) async fn conclude(
        &self,
        room_id: &RoomId,
        event_id: &EventId,
        notifier: &UserId,
        outcome: Result<(), String>,
    ) {
        let status = match outcome {
            Ok(()) => SendStatus::Delivered,
            Err(why) => {
                self.report_undelivered(room_id, event_id, notifier, &why)
                    .await;
                SendStatus::Failed(why)
            }
        };
        if !self.config.bridge.message_status_events {
            return;
        }
        let Ok(permit) = self.status_permits.clone().acquire_owned().await else {
            return; // Closed: never, the semaphore lives as long as the core.
        };
        let matrix = self.matrix.clone();
        let (room_id, event_id, notifier) =
            (room_id.to_owned(), event_id.to_owned(), notifier.to_owned());
        tokio::spawn(
            async move {
                if let Err(e) = matrix
                    .send_status(&room_id, &event_id, &status, &notifier)
                    .await
                {
                    tracing::debug!(error = %e, "cannot report the message's send status");
                }
                drop(permit);
            }
            .in_current_span(),
        );
    }
}
