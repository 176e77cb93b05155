//! Table `message_map`: which MSN message(s) a Matrix event became or came from, so an
//! event is bridged once even when the homeserver retries, and replies can be resolved.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_ms};

/// One part of a bridged message (a long Matrix message may become several MSN messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageMapping {
    pub matrix_event_id: String,
    pub part: i64,
    pub room_id: String,
    pub receiver: String,
    pub msn_message_id: String,
    /// `to_msn` or `to_matrix`.
    pub direction: String,
}

impl MessageMapping {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            matrix_event_id: row.try_get("matrix_event_id")?,
            part: row.try_get("part")?,
            room_id: row.try_get("room_id")?,
            receiver: row.try_get("receiver")?,
            msn_message_id: row.try_get("msn_message_id")?,
            direction: row.try_get("direction")?,
        })
    }
}

impl Store {
    /// Records a mapping; returns `false` if that (event, part) was already recorded.
    pub async fn insert_message(&self, m: &MessageMapping) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO message_map (matrix_event_id, part, room_id, receiver, msn_message_id, direction, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (matrix_event_id, part) DO NOTHING",
        )
        .bind(&m.matrix_event_id)
        .bind(m.part)
        .bind(&m.room_id)
        .bind(&m.receiver)
        .bind(&m.msn_message_id)
        .bind(&m.direction)
        .bind(now_ms())
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Every recorded part of a Matrix event, in order.
    pub async fn messages_of_event(
        &self,
        matrix_event_id: &str,
    ) -> Result<Vec<MessageMapping>, StoreError> {
        let rows = sqlx::query(
            "SELECT matrix_event_id, part, room_id, receiver, msn_message_id, direction \
             FROM message_map WHERE matrix_event_id = $1 ORDER BY part",
        )
        .bind(matrix_event_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(MessageMapping::from_row)
            .collect::<Result<_, _>>()?)
    }
}
