//! Table `puppet`: the Matrix ghost of each MSN contact and what was last set on its profile,
//! so unchanged names and pictures are never sent twice.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// A puppet's stored state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Puppet {
    pub msn_address: String,
    pub mxid: ruma::OwnedUserId,
    pub display_name: Option<String>,
    pub avatar_mxc: Option<String>,
    pub avatar_sha1d: Option<String>,
    pub registered: bool,
}

impl Puppet {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            msn_address: row.try_get("msn_address")?,
            mxid: super::id_column(row, "mxid")?,
            display_name: row.try_get("display_name")?,
            avatar_mxc: row.try_get("avatar_mxc")?,
            avatar_sha1d: row.try_get("avatar_sha1d")?,
            registered: row.try_get::<i64, _>("registered")? != 0,
        })
    }
}

impl Store {
    pub async fn puppet(&self, msn_address: &str) -> Result<Option<Puppet>, StoreError> {
        let row = sqlx::query(
            "SELECT msn_address, mxid, display_name, avatar_mxc, avatar_sha1d, registered \
             FROM puppet WHERE msn_address = $1",
        )
        .bind(msn_address)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(Puppet::from_row).transpose()?)
    }

    pub async fn puppet_by_mxid(&self, mxid: &ruma::UserId) -> Result<Option<Puppet>, StoreError> {
        let row = sqlx::query(
            "SELECT msn_address, mxid, display_name, avatar_mxc, avatar_sha1d, registered \
             FROM puppet WHERE mxid = $1",
        )
        .bind(mxid.as_str())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(Puppet::from_row).transpose()?)
    }

    /// Stores a puppet; on an existing one the avatar is left alone (it changes only
    /// through [`Store::set_puppet_avatar`], from a picture fetch running beside).
    pub async fn upsert_puppet(&self, p: &Puppet) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO puppet (msn_address, mxid, display_name, avatar_mxc, avatar_sha1d, registered) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (msn_address) DO UPDATE SET mxid = excluded.mxid, \
             display_name = excluded.display_name, registered = excluded.registered",
        )
        .bind(&p.msn_address)
        .bind(p.mxid.as_str())
        .bind(&p.display_name)
        .bind(&p.avatar_mxc)
        .bind(&p.avatar_sha1d)
        .bind(i64::from(p.registered))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records the avatar a puppet now shows: the picture's SHA1D and its `mxc://` URI.
    pub async fn set_puppet_avatar(
        &self,
        msn_address: &str,
        sha1d: &str,
        mxc: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE puppet SET avatar_sha1d = $1, avatar_mxc = $2 WHERE msn_address = $3")
            .bind(sha1d)
            .bind(mxc)
            .bind(msn_address)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
