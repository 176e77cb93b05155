//! Persistent state over sqlx: SQLite (embedded, the default) or PostgreSQL.
//!
//! Owns: the connection pool, the per-dialect migrations in `migrations/`, and one file
//! per table with that table's queries. Queries are portable SQL with `$n` parameters in
//! ascending order (both SQLite and PostgreSQL bind them by number); flags and timestamps
//! are integers (milliseconds since the Unix epoch).
//! Must not import: the Matrix HTTP layer, MSNP wire types.

mod group_members;
mod message_map;
mod outbox;
mod pictures;
mod portals;
mod puppets;
mod transactions;
mod users;

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

pub use message_map::MessageMapping;

/// A Matrix ID (room or user) read from column `column`: checked when read, so the rest of
/// the bridge holds only valid IDs; a row holding something else is a decode error.
fn id_column<T>(row: &sqlx::any::AnyRow, column: &str) -> Result<T, sqlx::Error>
where
    T: TryFrom<String, Error = ruma::IdParseError>,
{
    use sqlx::Row;
    let text: String = row.try_get(column)?;
    T::try_from(text).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

/// [`id_column`] for a column that may be NULL.
fn optional_id_column<T>(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<T>, sqlx::Error>
where
    T: TryFrom<String, Error = ruma::IdParseError>,
{
    use sqlx::Row;
    let text: Option<String> = row.try_get(column)?;
    text.map(T::try_from)
        .transpose()
        .map_err(|e| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(e),
        })
}
pub use outbox::OutboxEntry;
pub use portals::Portal;
pub use puppets::Puppet;
pub use transactions::QueuedEvent;
pub use users::BridgeUser;

/// Which SQL dialect a store speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Storage failures, with the database's own error kept as the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the database writer has stopped")]
    Closed,
}

/// A cheap, cloneable handle on the database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database at `uri`:
    /// `postgres://...`, `sqlite:PATH`, `sqlite::memory:` or a bare file path. SQLite
    /// commits survive a crash of the bridge, not a power cut (see [`Store::connect_with`]).
    pub async fn connect(uri: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with(uri, max_connections, false).await
    }

    /// [`Store::connect`], choosing SQLite's durability. In WAL mode `synchronous =
    /// NORMAL` (`power_safe` false) syncs the log at checkpoints only: a commit survives
    /// the bridge crashing but may be lost with the machine's power. `FULL` syncs every
    /// commit, so an acknowledged homeserver transaction survives a power cut too, at
    /// several times the cost of each write. PostgreSQL is unaffected.
    pub async fn connect_with(
        uri: &str,
        max_connections: u32,
        power_safe: bool,
    ) -> Result<Self, StoreError> {
        install_default_drivers();
        let (dialect, url) = normalise_uri(uri);
        let mut options = AnyPoolOptions::new().max_connections(max_connections.max(1));
        if dialect == Dialect::Sqlite {
            // A local file does not drop connections: checking one before each use only
            // adds a round trip to its thread to every query.
            options = options.test_before_acquire(false);
            if url.contains(":memory:") {
                // Every connection to :memory: is its own database: keep exactly one.
                options = options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
            let synchronous = if power_safe {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            options = options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the writer.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute(synchronous).await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await.map_err(StoreError::Connect)?;
        let migrator = match dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(StoreError::Migrate)?;
        Ok(Self { pool, dialect })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Answers whether the database can be reached (for the readiness endpoint).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Most rows one multi-row statement carries (3 or 7 parameters each: far under both
/// SQLite's and PostgreSQL's parameter limits).
pub(crate) const ROWS_PER_STATEMENT: usize = 256;

impl Store {
    /// Deletes the rows of `table` whose `seq` is one of `seqs`, one statement per
    /// [`ROWS_PER_STATEMENT`]. `table` is one of this module's own names, never input.
    pub(crate) async fn delete_seqs(&self, table: &str, seqs: &[i64]) -> Result<(), StoreError> {
        for part in seqs.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "DELETE FROM {table} WHERE seq IN {}",
                values_list(1, part.len())
            );
            // Only the one-row form is worth a place in the statement cache.
            let mut query = sqlx::query(&sql).persistent(part.len() == 1);
            for seq in part {
                query = query.bind(*seq);
            }
            query.execute(self.pool()).await?;
        }
        Ok(())
    }
}

/// `rows` parenthesised groups of `columns` numbered parameters, for a multi-row `VALUES`
/// (or, with one row, an `IN` list): `values_list(2, 3)` is `($1, $2, $3), ($4, $5, $6)`.
pub(crate) fn values_list(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * columns + column + 1));
        }
        sql.push(')');
    }
    sql
}

/// Maps the config's database URI to a dialect and a URL sqlx understands.
fn normalise_uri(uri: &str) -> (Dialect, String) {
    if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
        return (Dialect::Postgres, uri.to_owned());
    }
    let path = uri
        .strip_prefix("sqlite://")
        .or_else(|| uri.strip_prefix("sqlite:"))
        .unwrap_or(uri);
    if path == ":memory:" {
        return (Dialect::Sqlite, "sqlite::memory:".to_owned());
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut url = format!("sqlite://{path}?mode=rwc");
    if !query.is_empty() {
        url.push('&');
        url.push_str(query);
    }
    (Dialect::Sqlite, url)
}

/// Milliseconds since the Unix epoch, for `*_at` columns.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_normalised() {
        assert_eq!(
            normalise_uri("sqlite:data/msn.db"),
            (Dialect::Sqlite, "sqlite://data/msn.db?mode=rwc".into())
        );
        assert_eq!(
            normalise_uri("/var/lib/msn.db"),
            (Dialect::Sqlite, "sqlite:///var/lib/msn.db?mode=rwc".into())
        );
        assert_eq!(normalise_uri("sqlite::memory:").1, "sqlite::memory:");
        assert_eq!(normalise_uri("postgres://u:p@h/db").0, Dialect::Postgres);
    }

    #[test]
    fn values_lists_number_parameters_row_by_row() {
        assert_eq!(values_list(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values_list(1, 2), "($1, $2)");
        assert_eq!(values_list(0, 3), "");
    }
}
