//! Table `bridge_user`: Matrix users of the bridge, their management room, MSN login and
//! its state, and the (encrypted) credentials needed to reconnect.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_ms};

/// A Matrix user known to the bridge.
#[derive(Clone, PartialEq, Eq)]
pub struct BridgeUser {
    pub mxid: ruma::OwnedUserId,
    pub management_room: Option<ruma::OwnedRoomId>,
    pub msn_login: Option<String>,
    pub login_state: String,
    /// Encrypted at rest by the caller; never logged.
    pub credentials: Option<Vec<u8>>,
}

impl std::fmt::Debug for BridgeUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeUser")
            .field("mxid", &self.mxid)
            .field("management_room", &self.management_room)
            .field("msn_login", &self.msn_login)
            .field("login_state", &self.login_state)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl BridgeUser {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            mxid: super::id_column(row, "mxid")?,
            management_room: super::optional_id_column(row, "management_room")?,
            msn_login: row.try_get("msn_login")?,
            login_state: row.try_get("login_state")?,
            credentials: row.try_get("credentials")?,
        })
    }
}

impl Store {
    pub async fn user(&self, mxid: &ruma::UserId) -> Result<Option<BridgeUser>, StoreError> {
        let row = sqlx::query(
            "SELECT mxid, management_room, msn_login, login_state, credentials \
             FROM bridge_user WHERE mxid = $1",
        )
        .bind(mxid.as_str())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(BridgeUser::from_row).transpose()?)
    }

    /// Every user with a room where the bot answers them, as the bridge may need after a restart.
    pub async fn users(&self) -> Result<Vec<BridgeUser>, StoreError> {
        let rows = sqlx::query(
            "SELECT mxid, management_room, msn_login, login_state, credentials \
             FROM bridge_user ORDER BY mxid",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(BridgeUser::from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Creates the user if needed and sets its management room.
    pub async fn set_management_room(
        &self,
        mxid: &ruma::UserId,
        room_id: &ruma::RoomId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bridge_user (mxid, management_room, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (mxid) DO UPDATE SET management_room = excluded.management_room",
        )
        .bind(mxid.as_str())
        .bind(room_id.as_str())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Stores the MSN login of a user, its state and its encrypted credentials.
    pub async fn set_login(
        &self,
        mxid: &ruma::UserId,
        msn_login: Option<&str>,
        login_state: &str,
        credentials: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bridge_user (mxid, msn_login, login_state, credentials, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (mxid) DO UPDATE SET msn_login = excluded.msn_login, \
             login_state = excluded.login_state, credentials = excluded.credentials",
        )
        .bind(mxid.as_str())
        .bind(msn_login)
        .bind(login_state)
        .bind(credentials)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The user's MSN endpoint id: the stored one, or `fresh` (then stored) when there is
    /// none yet. The same for every later login of the user, across restarts.
    /// The user's space, if one was made.
    pub async fn space(
        &self,
        mxid: &ruma::UserId,
    ) -> Result<Option<ruma::OwnedRoomId>, StoreError> {
        let row = sqlx::query("SELECT space_room_id FROM bridge_user WHERE mxid = $1")
            .bind(mxid.as_str())
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => Ok(super::optional_id_column(&row, "space_room_id")?),
            None => Ok(None),
        }
    }

    /// Records the user's space.
    pub async fn set_space(
        &self,
        mxid: &ruma::UserId,
        space: &ruma::RoomId,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bridge_user (mxid, space_room_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (mxid) DO UPDATE SET space_room_id = excluded.space_room_id",
        )
        .bind(mxid.as_str())
        .bind(space.as_str())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every portal of `receiver` that has a room.
    pub async fn portal_rooms_of(
        &self,
        receiver: &ruma::UserId,
    ) -> Result<Vec<ruma::OwnedRoomId>, StoreError> {
        let rows =
            sqlx::query("SELECT room_id FROM portal WHERE receiver = $1 AND room_id IS NOT NULL")
                .bind(receiver.as_str())
                .fetch_all(self.pool())
                .await?;
        let mut rooms = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(room) = super::optional_id_column(row, "room_id")? {
                rooms.push(room);
            }
        }
        Ok(rooms)
    }

    pub async fn machine_guid(
        &self,
        mxid: &ruma::UserId,
        fresh: &str,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO bridge_user (mxid, machine_guid, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (mxid) DO UPDATE \
             SET machine_guid = COALESCE(bridge_user.machine_guid, excluded.machine_guid)",
        )
        .bind(mxid.as_str())
        .bind(fresh)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        let row = sqlx::query("SELECT machine_guid FROM bridge_user WHERE mxid = $1")
            .bind(mxid.as_str())
            .fetch_one(self.pool())
            .await?;
        let stored: Option<String> = row.try_get("machine_guid")?;
        Ok(stored.unwrap_or_else(|| fresh.to_owned()))
    }

    /// Changes only the login state of a user.
    pub async fn set_login_state(
        &self,
        mxid: &ruma::UserId,
        login_state: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE bridge_user SET login_state = $1 WHERE mxid = $2")
            .bind(login_state)
            .bind(mxid.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
