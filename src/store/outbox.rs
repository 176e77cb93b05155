//! Table `outbox`: events from MSN waiting for the homeserver, in the order they came, per
//! Matrix user. Payloads are opaque here (sealed by the core).

use sqlx::Row;

use super::{Store, StoreError, now_ms};

/// One event from MSN waiting for the homeserver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub seq: i64,
    pub payload: String,
    /// When it was written (milliseconds since the Unix epoch).
    pub created_at: i64,
}

impl Store {
    /// Appends an event for `receiver`; returns its position.
    pub async fn outbox_push(
        &self,
        receiver: &ruma::UserId,
        payload: &str,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO outbox (receiver, payload, created_at) VALUES ($1, $2, $3) RETURNING seq",
        )
        .bind(receiver.as_str())
        .bind(payload)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("seq")?)
    }

    /// Up to `limit` of `receiver`'s events after position `after`, oldest first.
    pub async fn outbox_of(
        &self,
        receiver: &ruma::UserId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, payload, created_at FROM outbox WHERE receiver = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(receiver.as_str())
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEntry {
                    seq: r.try_get("seq")?,
                    payload: r.try_get("payload")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The users with events waiting (after a restart: whose outbox to resume).
    pub async fn outbox_receivers(&self) -> Result<Vec<ruma::OwnedUserId>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT receiver FROM outbox")
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| super::id_column(r, "receiver"))
            .collect::<Result<_, _>>()?)
    }

    /// Removes delivered events.
    pub async fn outbox_remove(&self, seqs: &[i64]) -> Result<(), StoreError> {
        self.delete_seqs("outbox", seqs).await
    }
}
