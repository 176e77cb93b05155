//! Table `appservice_txn` and `event_queue`: durable deduplication of the homeserver's
//! transactions and the queue of their events, processed in order after acknowledgement.

use sqlx::Row;

use super::{ROWS_PER_STATEMENT, Store, StoreError, now_ms, values_list};

/// One event waiting to be handled: its queue position, kind and raw JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedEvent {
    pub seq: i64,
    pub kind: String,
    pub payload: String,
}

impl Store {
    /// Records transaction `txn_id` (with `content_key`, a digest of what it carries) and
    /// queues its events, atomically. Returns the queue positions of `events`, in order, or
    /// `None` (queueing nothing) when that transaction was seen before: a replay is a no-op.
    pub async fn enqueue_transaction(
        &self,
        txn_id: &str,
        content_key: &str,
        events: &[(String, String)],
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO appservice_txn (txn_id, content_key, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (txn_id, content_key) DO NOTHING",
        )
        .bind(txn_id)
        .bind(content_key)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut seqs = Vec::with_capacity(events.len());
        for part in events.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO event_queue (txn_id, kind, payload) VALUES {} RETURNING seq",
                values_list(part.len(), 3)
            );
            // Only the one-row form is worth a place in the statement cache.
            let mut query = sqlx::query(&sql).persistent(part.len() == 1);
            for (kind, payload) in part {
                query = query.bind(txn_id).bind(kind).bind(payload);
            }
            let mut part_seqs = query
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| row.try_get::<i64, _>("seq"))
                .collect::<Result<Vec<_>, _>>()?;
            // One statement's rows take ascending positions in the order of its VALUES;
            // RETURNING itself promises no order.
            part_seqs.sort_unstable();
            seqs.extend(part_seqs);
        }
        tx.commit().await?;
        Ok(Some(seqs))
    }

    /// The oldest queued events, at most `limit`, in arrival order.
    pub async fn queued_events(&self, limit: i64) -> Result<Vec<QueuedEvent>, StoreError> {
        self.queued_events_after(0, limit).await
    }

    /// The oldest queued events after sequence number `after`, at most `limit`, in
    /// arrival order.
    pub async fn queued_events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, payload FROM event_queue WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(queued_event).collect()
    }

    /// The events of transaction `txn_id` still queued, in arrival order.
    pub async fn queued_events_of(&self, txn_id: &str) -> Result<Vec<QueuedEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, payload FROM event_queue WHERE txn_id = $1 ORDER BY seq",
        )
        .bind(txn_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(queued_event).collect()
    }

    /// Removes a handled event from the queue.
    pub async fn finish_event(&self, seq: i64) -> Result<(), StoreError> {
        self.finish_events(&[seq]).await
    }

    /// Removes handled events from the queue, in one statement per 256.
    pub async fn finish_events(&self, seqs: &[i64]) -> Result<(), StoreError> {
        self.delete_seqs("event_queue", seqs).await
    }

    /// Whether any transaction with ID `txn_id` was accepted, whatever it carried.
    pub async fn transaction_id_seen(&self, txn_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM appservice_txn WHERE txn_id = $1")
            .bind(txn_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }
}

fn queued_event(row: &sqlx::any::AnyRow) -> Result<QueuedEvent, StoreError> {
    Ok(QueuedEvent {
        seq: row.try_get("seq")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
    })
}
