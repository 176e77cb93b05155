//! The interface the bridge core needs from the Matrix side. The core defines it; the
//! Matrix layer implements it (`matrix::port`), and tests may implement it too.

use std::future::Future;

/// Calls the core makes on the homeserver. User IDs are strings here: the core checks
/// nothing about their grammar, the implementation does.
pub trait MatrixPort: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The bridge bot's user ID.
    fn bot(&self) -> &str;

    /// Sends a notice as `as_user` (the bot when `None`); `txn_id` makes a retry idempotent.
    fn send_notice(
        &self,
        room_id: &str,
        text: &str,
        html: Option<&str>,
        txn_id: &str,
        as_user: Option<&str>,
    ) -> impl Future<Output = Result<String, Self::Error>> + Send;

    /// Joins a room (accepting an invite) as `as_user` (the bot when `None`).
    fn join(
        &self,
        room_id: &str,
        as_user: Option<&str>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Leaves a room or rejects an invite, with a reason shown to the others.
    fn leave(
        &self,
        room_id: &str,
        reason: Option<&str>,
        as_user: Option<&str>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}
