//! Table `picture`: the picture cache. Each picture fetched from MSN is uploaded once and
//! known by its SHA1D afterwards, whoever shows it and wherever it appears.

use sqlx::Row;

use super::{Store, StoreError, now_ms};

impl Store {
    /// The `mxc://` URI of the picture with this SHA1D, if it was uploaded before.
    pub async fn picture_mxc(&self, sha1d: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT mxc FROM picture WHERE sha1d = $1")
            .bind(sha1d)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("mxc")).transpose()?)
    }

    /// Remembers where the picture with this SHA1D was uploaded.
    pub async fn put_picture(&self, sha1d: &str, mxc: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO picture (sha1d, mxc, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sha1d) DO UPDATE SET mxc = excluded.mxc",
        )
        .bind(sha1d)
        .bind(mxc)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
