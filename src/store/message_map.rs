//! Table `message_map`: which MSN message(s) a Matrix event became or came from, so an
//! event is bridged once even when the homeserver retries, and replies can be resolved.

use sqlx::Row;
use sqlx::any::AnyRow;

use std::collections::HashSet;

use super::{ROWS_PER_STATEMENT, Store, StoreError, now_ms, values_list};

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
        let inserted = self.insert_messages(std::slice::from_ref(m)).await?;
        Ok(inserted.first().copied().unwrap_or(false))
    }

    /// Records mappings with one commit for all (the message map's group commit). Returns,
    /// for each, whether it was new: `false` for an (event, part) recorded before, or
    /// earlier in `ms`.
    pub async fn insert_messages(&self, ms: &[MessageMapping]) -> Result<Vec<bool>, StoreError> {
        if ms.len() <= ROWS_PER_STATEMENT {
            return Ok(insert_rows(self.pool(), ms).await?);
        }
        let mut fresh = Vec::with_capacity(ms.len());
        let mut tx = self.pool().begin().await?;
        for part in ms.chunks(ROWS_PER_STATEMENT) {
            fresh.extend(insert_rows(&mut *tx, part).await?);
        }
        tx.commit().await?;
        Ok(fresh)
    }

    /// Whether the MSN message `msn_message_id` of `receiver` was bridged.
    pub async fn has_msn_message(
        &self,
        receiver: &str,
        msn_message_id: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS found FROM message_map WHERE receiver = $1 AND msn_message_id = $2 LIMIT 1",
        )
        .bind(receiver)
        .bind(msn_message_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// The Matrix event the MSN message `msn_message_id` of `receiver` became, if it
    /// was bridged.
    pub async fn event_of_msn_message(
        &self,
        receiver: &str,
        msn_message_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT matrix_event_id FROM message_map WHERE receiver = $1 AND msn_message_id = $2 LIMIT 1",
        )
        .bind(receiver)
        .bind(msn_message_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row
            .map(|row| row.try_get::<String, _>("matrix_event_id"))
            .transpose()?)
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

/// One multi-row insert of `ms` (at most [`ROWS_PER_STATEMENT`]); which rows were new.
async fn insert_rows<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    ms: &[MessageMapping],
) -> Result<Vec<bool>, sqlx::Error> {
    if ms.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "INSERT INTO message_map (matrix_event_id, part, room_id, receiver, msn_message_id, direction, created_at) \
         VALUES {} ON CONFLICT (matrix_event_id, part) DO NOTHING RETURNING matrix_event_id, part",
        values_list(ms.len(), 7)
    );
    let now = now_ms();
    // Only the one-row form is worth a place in the connection's statement cache: every
    // batch size is another statement.
    let mut query = sqlx::query(&sql).persistent(ms.len() == 1);
    for m in ms {
        query = query
            .bind(&m.matrix_event_id)
            .bind(m.part)
            .bind(&m.room_id)
            .bind(&m.receiver)
            .bind(&m.msn_message_id)
            .bind(&m.direction)
            .bind(now);
    }
    let mut inserted = query
        .fetch_all(db)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<String, _>("matrix_event_id")?,
                row.try_get::<i64, _>("part")?,
            ))
        })
        .collect::<Result<HashSet<_>, sqlx::Error>>()?;
    // A key twice in one statement is inserted once: its first row is the new one.
    Ok(ms
        .iter()
        .map(|m| inserted.remove(&(m.matrix_event_id.clone(), m.part)))
        .collect())
}
