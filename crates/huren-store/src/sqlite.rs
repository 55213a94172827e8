//! The index in SQLite (embedded default). WAL mode with `synchronous=FULL`: a commit is on
//! disk when it returns. Instance commits go through one writer task that batches whatever
//! arrived concurrently into a single transaction (group commit), so many associations share
//! one fsync; each instance runs inside its own savepoint so one failure fails only itself.

use crate::chain::Chain;
use crate::sql::db;
use crate::writer::{Job, writer};
use huren_archive::ports::StoreError;
use huren_seal::chain::ChainKey;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteIndex {
    pub(crate) pool: SqlitePool,
    pub(crate) writer: mpsc::Sender<Job>,
}
/// Read connections of the index (the writer has its own).
const POOL_CONNECTIONS: u32 = 8;

pub(crate) const OPTIMIZE: &str = "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;";

impl SqliteIndex {
    pub fn connect_options(path: &Path) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Statement journals (one per SAVEPOINT in the group commit) in memory, not in a
            // temporary file created and unlinked per instance.
            .pragma("temp_store", "memory")
            // A page of QIDO results (up to a few hundred rows) crosses from SQLite's thread
            // without the worker blocking on a full channel every 50 rows.
            .row_buffer_size(512)
    }

    /// Opens (creating and migrating) the index at `path` and starts the group-commit writer.
    /// Audit events are not chained (tools and tests); serving uses [`SqliteIndex::open_chained`].
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(Self::connect_options(path), None).await
    }

    /// Opens the index with the audit chain's key: every audit event this process stores is
    /// chained (docs/audit.md).
    pub async fn open_chained(path: &Path, key: Option<Arc<ChainKey>>) -> Result<Self, StoreError> {
        Self::open_with(Self::connect_options(path), key).await
    }

    /// Opens the index for building a throw-away data set quickly (`huren bench-fill`):
    /// `synchronous=OFF`, so commits do not wait for the disk. Never for serving.
    pub async fn open_bulk(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(
            Self::connect_options(path).synchronous(SqliteSynchronous::Off),
            None,
        )
        .await
    }

    async fn open_with(
        opts: SqliteConnectOptions,
        chain_key: Option<Arc<ChainKey>>,
    ) -> Result<Self, StoreError> {
        // The writer's connection first, alone: it creates the file, turns on WAL and
        // migrates, which several connections opening a new file at once would contend for
        // (SQLITE_BUSY on the journal mode change).
        let mut conn = SqliteConnection::connect_with(&opts).await.map_err(db)?;
        MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::backend("migrating the index", e))?;
        // Then every read connection, opened now and kept: each has a worker thread, which
        // inherits the CPU priority of the thread that opened it. A connection opened later
        // by a background task at low priority (quality scoring runs at nice 19) would serve
        // interactive reads at that priority.
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .min_connections(POOL_CONNECTIONS)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await
            .map_err(db)?;
        // Without statistics SQLite's planner guessed wrong for name wildcards (it scanned
        // studies in date order testing every patient's name: 30× slower at 20k studies).
        // `optimize` gathers them when missing or stale; `analysis_limit` keeps that to a
        // sample, so it is fast even on a large index (SQLite docs, PRAGMA optimize).
        sqlx::query(OPTIMIZE).execute(&pool).await.map_err(db)?;
        // Again every ten minutes: an index that started empty has no useful statistics
        // after its first hundred thousand studies otherwise.
        let maintenance = pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = sqlx::query(OPTIMIZE).execute(&maintenance).await {
                    tracing::warn!(error = %e, "PRAGMA optimize failed");
                }
            }
        });
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(writer(conn, rx, Chain::new(chain_key)));
        Ok(SqliteIndex { pool, writer: tx })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The institution a code names in any case: its key and its code as the operator wrote it.
    pub(crate) async fn find_institution(
        &self,
        code: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        sqlx::query_as("SELECT id, code FROM institution WHERE code = ? COLLATE NOCASE")
            .bind(code)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    pub(crate) async fn institution_id(&self, code: &str) -> Result<i64, StoreError> {
        self.find_institution(code)
            .await?
            .map(|(id, _)| id)
            .ok_or_else(|| StoreError::NotFound(format!("institution {code}")))
    }

    /// Hands a job to the group-commit writer and waits until its group has committed.
    pub(crate) async fn through_writer<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(job(tx))
            .await
            .map_err(|_| StoreError::broken("index writer stopped"))?;
        rx.await
            .map_err(|_| StoreError::broken("index writer dropped the commit"))?
    }
}
