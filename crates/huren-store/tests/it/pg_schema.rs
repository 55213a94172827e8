//! The PostgreSQL schema means what the SQLite one does (issue 23): after both dialects'
//! migrations, the same tables with the same columns (name, type family, NOT NULL), the same
//! named indexes and the same triggers — except the triggers listed as pending, which come
//! with the ports that need them. A migration added to one dialect only fails here.
//!
//! Runs against the cluster `HUREN_TEST_PG_URL` names (scripts/test.sh starts one with
//! scripts/pg-cluster.sh and sets it, with `HUREN_REQUIRE_PG=1` so that a missing cluster is a
//! failure there), in a database of its own.

use huren_store::SqliteIndex;
use huren_store::pg::PgIndex;
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// SQLite triggers not yet on PostgreSQL (see the end of migrations/postgres/0001_schema.sql).
const PENDING_TRIGGERS: &[&str] = &[
    "qc_rollup_insert",
    "qc_rollup_update",
    "qc_rollup_delete",
    "qc_rollup_study_moved",
    "recognition_unit_added",
    "recognition_unit_removed",
    "recognition_unit_changed",
    // SQLite routes person revisions through an INSTEAD OF trigger on a view; PostgreSQL
    // calls the function person_touched() instead.
    "person_touched_bump",
];

/// A scratch database on the test cluster, dropped at the end.
pub struct ScratchDb {
    admin: String,
    name: String,
    pub url: String,
}

impl ScratchDb {
    /// `None` when no cluster is configured (and none is required).
    pub async fn create(tag: &str) -> Option<ScratchDb> {
        let Ok(admin) = std::env::var("HUREN_TEST_PG_URL") else {
            assert!(
                std::env::var("HUREN_REQUIRE_PG").is_err(),
                "HUREN_REQUIRE_PG is set but HUREN_TEST_PG_URL is not"
            );
            eprintln!("no PostgreSQL cluster (HUREN_TEST_PG_URL): skipped");
            return None;
        };
        let name = format!("t_{tag}_{}", uuid::Uuid::now_v7().simple());
        let pool = sqlx::PgPool::connect(&admin).await.expect("test cluster");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("create database");
        pool.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        let url = format!("{base}/{name}");
        Some(ScratchDb { admin, name, url })
    }

    pub async fn drop(self) {
        if let Ok(pool) = sqlx::PgPool::connect(&self.admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&pool)
            .await;
        }
    }
}

/// SQLite's declared types and PostgreSQL's, as one family each.
fn family(t: &str) -> &'static str {
    match t.to_ascii_lowercase().as_str() {
        "integer" | "bigint" | "boolean" => "integer",
        "text" => "text",
        "blob" | "bytea" => "bytes",
        "real" | "double precision" => "real",
        "timestamp" | "timestamp without time zone" => "timestamp",
        other => panic!("a column type neither dialect should have: {other}"),
    }
}

type Columns = BTreeMap<String, BTreeSet<(String, &'static str, bool)>>;

async fn sqlite_schema(index: &SqliteIndex) -> (Columns, BTreeSet<String>, BTreeSet<String>) {
    let pool = index.pool();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table'
          AND name NOT LIKE 'sqlite_%' AND name != '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut columns = Columns::new();
    for t in tables {
        let rows = sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)")
            .bind(&t)
            .fetch_all(pool)
            .await
            .expect("columns");
        let set = rows
            .iter()
            .map(|r| {
                let not_null = r.get::<i64, _>("notnull") == 1 || r.get::<i64, _>("pk") > 0;
                (
                    r.get::<String, _>("name"),
                    family(&r.get::<String, _>("type")),
                    not_null,
                )
            })
            .collect();
        columns.insert(t, set);
    }
    let indexes = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .expect("indexes")
    .into_iter()
    .collect();
    let triggers = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .fetch_all(pool)
        .await
        .expect("triggers")
        .into_iter()
        .collect();
    (columns, indexes, triggers)
}

async fn pg_schema(index: &PgIndex) -> (Columns, BTreeSet<String>, BTreeSet<String>) {
    let pool = index.pool();
    let rows = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS ty,
                is_nullable::text AS n
           FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name != '_sqlx_migrations'
            AND table_name IN (SELECT table_name FROM information_schema.tables
                                WHERE table_schema = 'public' AND table_type = 'BASE TABLE')",
    )
    .fetch_all(pool)
    .await
    .expect("columns");
    let mut columns = Columns::new();
    for r in rows {
        columns.entry(r.get("t")).or_default().insert((
            r.get("c"),
            family(&r.get::<String, _>("ty")),
            r.get::<String, _>("n") == "NO",
        ));
    }
    // Named indexes only: primary keys and UNIQUE constraints are columns' business above
    // (SQLite names those sqlite_autoindex_*, and they have no SQL of their own).
    let indexes = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'
            AND indexname NOT IN (SELECT conname FROM pg_constraint)",
    )
    .fetch_all(pool)
    .await
    .expect("indexes")
    .into_iter()
    .collect();
    let triggers = sqlx::query_scalar(
        "SELECT DISTINCT trigger_name::text FROM information_schema.triggers
          WHERE trigger_schema = 'public'",
    )
    .fetch_all(pool)
    .await
    .expect("triggers")
    .into_iter()
    .collect();
    (columns, indexes, triggers)
}

#[tokio::test]
async fn both_dialects_build_the_same_schema() {
    let Some(scratch) = ScratchDb::create("schema").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let lite = SqliteIndex::open(&dir.path().join("index.sqlite"))
        .await
        .expect("sqlite");
    let pg = PgIndex::open(&scratch.url, 4).await.expect("postgres");
    let (lite_columns, lite_indexes, lite_triggers) = sqlite_schema(&lite).await;
    let (pg_columns, pg_indexes, pg_triggers) = pg_schema(&pg).await;
    pg.pool().close().await;
    scratch.drop().await;

    let lite_tables: BTreeSet<_> = lite_columns.keys().collect();
    let pg_tables: BTreeSet<_> = pg_columns.keys().collect();
    assert_eq!(lite_tables, pg_tables, "tables differ");
    for (table, cols) in &lite_columns {
        assert_eq!(
            Some(cols),
            pg_columns.get(table),
            "columns of {table} differ (name, type family, NOT NULL)"
        );
    }
    assert_eq!(lite_indexes, pg_indexes, "named indexes differ");
    let expected: BTreeSet<String> = lite_triggers
        .iter()
        .filter(|t| !PENDING_TRIGGERS.contains(&t.as_str()))
        .cloned()
        .collect();
    assert_eq!(expected, pg_triggers, "triggers differ");
}

/// Every SQLite migration after 0045 has its PostgreSQL twin with the same number and name
/// (PostgreSQL's 0001 stands for SQLite's 0001–0045): a change that moves data rather than
/// schema, which the comparison above cannot see, is paired too.
#[test]
fn every_later_migration_comes_as_a_pair() {
    let names = |dialect: &str| -> BTreeSet<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        std::fs::read_dir(&dir)
            .expect("migrations")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect()
    };
    let number = |n: &String| n.split('_').next().and_then(|v| v.parse::<u32>().ok());
    let sqlite_later: BTreeSet<String> = names("sqlite")
        .into_iter()
        .filter(|n| number(n).is_some_and(|v| v > 45))
        .collect();
    let postgres_later: BTreeSet<String> = names("postgres")
        .into_iter()
        .filter(|n| number(n).is_some_and(|v| v > 1))
        .collect();
    assert!(!sqlite_later.is_empty(), "0046 exists in both dialects");
    assert_eq!(sqlite_later, postgres_later);
}
