//! What every SQL module shares: the sqlx error in the port's terms (keeping its cause), days
//! as the index writes them, and the clock. The bottom of the store: it imports no module of
//! its own crate.

use huren_archive::ports::StoreError;

pub(crate) fn db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return StoreError::Conflict(d.message().to_owned());
        }
        if d.message().contains("disk is full") || d.message().contains("SQLITE_FULL") {
            return StoreError::OutOfSpace(d.message().to_owned());
        }
        if d.is_foreign_key_violation() || d.is_check_violation() {
            return StoreError::Invalid(d.message().to_owned());
        }
    }
    StoreError::backend("index", e)
}

pub(crate) use huren_types::day::iso;

/// A SQLite statement being bound, as the modules that build statements pass it around.
pub(crate) type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
