//! In-process tests of the storage adapter at its boundary: each feature port of
//! `huren_archive::ports` as `SqliteIndex` implements it, against a real SQLite file in a
//! temporary directory, and — port by port, as `PgIndex` gains them — against a scratch database
//! on the PostgreSQL cluster `HUREN_TEST_PG_URL` names (`pg_schema::ScratchDb`).

mod accounts;
mod audit;
mod consent;
mod durable_gate;
mod institutions;
mod persons;
mod pg_schema;
mod query_plan;

use huren_archive::model::NewInstitution;
use huren_archive::ports::InstitutionIndex;

/// Registers the county hospital (id 1) and writes `fixture` (SQL both dialects accept): what
/// the ports not yet on both dialects would have written.
pub async fn seed<'c, E: sqlx::Executor<'c>>(
    index: &impl InstitutionIndex,
    pool: E,
    fixture: &str,
) {
    index
        .add_institution(institution("county", None))
        .await
        .expect("institution");
    sqlx::raw_sql(sqlx::AssertSqlSafe(fixture.to_owned()))
        .execute(pool)
        .await
        .expect("fixture");
}

/// A module `$name` with two tests, `sqlite` and `postgres`: each opens a fresh index of its
/// dialect (PostgreSQL: a scratch database, skipped when no cluster is configured), seeds it
/// (`seed`) and runs `$check` on it.
macro_rules! on_both_dialects {
    ($name:ident, $fixture:expr, $check:path) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().expect("dir");
                let index = huren_store::SqliteIndex::open(&dir.path().join("index.sqlite"))
                    .await
                    .expect("index");
                crate::seed(&index, index.pool(), $fixture).await;
                $check(&index).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(scratch) = crate::pg_schema::ScratchDb::create(stringify!($name)).await
                else {
                    return;
                };
                let index = huren_store::pg::PgIndex::open(&scratch.url, 8)
                    .await
                    .expect("index");
                crate::seed(&index, index.pool(), $fixture).await;
                $check(&index).await;
                index.pool().close().await;
                scratch.drop().await;
            }
        }
    };
}
use huren_types::{InstitutionCode, InstitutionLevel, Ownership};
pub(crate) use on_both_dialects;

pub fn institution(code: &str, system: Option<&str>) -> NewInstitution {
    NewInstitution {
        code: InstitutionCode::parse(code).expect("code"),
        name: format!("{code} 医院"),
        level: InstitutionLevel::Secondary,
        ownership: Ownership::Public,
        identifier_system: system.map(str::to_owned),
        region: None,
        city: None,
        organization: None,
        division: None,
        valid_from: time::macros::date!(2024 - 01 - 01),
    }
}
