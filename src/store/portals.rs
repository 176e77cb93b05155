//! Table `portal`: the Matrix room of each MSN conversation, keyed by (MSN chat id,
//! receiving Matrix user), so a portal outlives the switchboard sessions behind it.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_ms};

/// A portal's stored state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Portal {
    /// The contact's address for a DM, a stable group id for a multi-party chat.
    pub msn_chat_id: String,
    /// The Matrix user whose MSN login sees this chat.
    pub receiver: ruma::OwnedUserId,
    pub room_id: Option<ruma::OwnedRoomId>,
    /// `dm` or `group`.
    pub kind: String,
    pub name: Option<String>,
}

impl Portal {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            msn_chat_id: row.try_get("msn_chat_id")?,
            receiver: super::id_column(row, "receiver")?,
            room_id: super::optional_id_column(row, "room_id")?,
            kind: row.try_get("kind")?,
            name: row.try_get("name")?,
        })
    }
}

const COLUMNS: &str = "msn_chat_id, receiver, room_id, kind, name";

impl Store {
    pub async fn portal(
        &self,
        msn_chat_id: &str,
        receiver: &ruma::UserId,
    ) -> Result<Option<Portal>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM portal WHERE msn_chat_id = $1 AND receiver = $2"
        ))
        .bind(msn_chat_id)
        .bind(receiver.as_str())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(Portal::from_row).transpose()?)
    }

    /// Every user's portal of one MSN chat (a contact's DMs, one per Matrix user).
    pub async fn portals_of_chat(&self, msn_chat_id: &str) -> Result<Vec<Portal>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM portal WHERE msn_chat_id = $1"
        ))
        .bind(msn_chat_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(Portal::from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn portal_by_room(
        &self,
        room_id: &ruma::RoomId,
    ) -> Result<Option<Portal>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM portal WHERE room_id = $1"))
            .bind(room_id.as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(Portal::from_row).transpose()?)
    }

    pub async fn upsert_portal(&self, p: &Portal) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO portal (msn_chat_id, receiver, room_id, kind, name, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (msn_chat_id, receiver) DO UPDATE SET room_id = excluded.room_id, \
             kind = excluded.kind, name = excluded.name",
        )
        .bind(&p.msn_chat_id)
        .bind(p.receiver.as_str())
        .bind(p.room_id.as_ref().map(|r| r.as_str()))
        .bind(&p.kind)
        .bind(&p.name)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
