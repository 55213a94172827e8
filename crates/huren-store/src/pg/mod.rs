//! The index on PostgreSQL (issue 23), for a region whose archive outgrows one machine and for
//! several huren nodes sharing one index. This is its beginning: the schema (migrations in
//! `migrations/postgres`, the same meaning as SQLite's, checked column by column by the test
//! `pg_schema`) and the connection pool. The feature ports are implemented one module at a
//! time (`institutions`, `consent`, `accounts`, `persons` and `audit` so far), each beside its SQLite twin's shared row mapping; until all
//! ten are, `index.url` cannot select PostgreSQL and the server runs on SQLite.

mod accounts;
mod audit;
mod consent;
mod institutions;
mod persons;

use crate::sql::db;
use huren_archive::ports::StoreError;
use huren_seal::chain::ChainKey;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgIndex {
    pub(crate) pool: PgPool,
    /// The audit chain this node appends to (ARCHITECTURE.md: one chain per node) and its key
    /// (none: events are stored unchained).
    pub(crate) chain: String,
    pub(crate) chain_key: Option<Arc<ChainKey>>,
}

impl PgIndex {
    /// Connects to `url` (`postgres://user@host:port/db`) and brings the schema up to date.
    /// Several nodes may start at once: sqlx takes an advisory lock around the migrations, so
    /// one migrates and the others wait for it.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("index.url: {e}")))?
            .application_name("huren");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(db)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::backend("migrating the PostgreSQL index", e))?;
        Ok(PgIndex {
            pool,
            chain: crate::chain::MAIN_CHAIN.to_owned(),
            chain_key: None,
        })
    }

    /// Audit events from this index are chained with `key`, in the chain named `chain` (each
    /// node its own; `main` for a node alone).
    pub fn with_audit_chain(mut self, chain: &str, key: Option<Arc<ChainKey>>) -> Self {
        self.chain = chain.to_owned();
        self.chain_key = key;
        self
    }

    /// The pool, for the adapter tests that compare the two schemas.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// An institution by its code in any case, with the code as the operator wrote it.
    pub(crate) async fn find_institution(
        &self,
        code: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        sqlx::query_as("SELECT id, code FROM institution WHERE lower(code) = lower($1)")
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
}
