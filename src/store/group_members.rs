//! Table `group_member`: who is in each group portal's MSN conversation, per Matrix user,
//! so that a group can be called together again after a restart.

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    /// The members of `receiver`'s group `chat_key`: (address, friendly name), by address.
    pub async fn group_members(
        &self,
        chat_key: &str,
        receiver: &ruma::UserId,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT address, name FROM group_member WHERE chat_key = $1 AND receiver = $2 \
             ORDER BY address",
        )
        .bind(chat_key)
        .bind(receiver.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("address")?, r.try_get("name")?)))
            .collect()
    }

    /// Adds a member to a group (or renames them).
    pub async fn add_group_member(
        &self,
        chat_key: &str,
        receiver: &ruma::UserId,
        address: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO group_member (chat_key, receiver, address, name) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (chat_key, receiver, address) DO UPDATE SET name = excluded.name",
        )
        .bind(chat_key)
        .bind(receiver.as_str())
        .bind(address)
        .bind(name)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes a member from a group.
    pub async fn remove_group_member(
        &self,
        chat_key: &str,
        receiver: &ruma::UserId,
        address: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM group_member WHERE chat_key = $1 AND receiver = $2 AND address = $3",
        )
        .bind(chat_key)
        .bind(receiver.as_str())
        .bind(address)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
