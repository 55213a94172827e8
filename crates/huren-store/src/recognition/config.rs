//! The recognition configuration in SQL: qualification records and scope rules, each import a
//! set, the newest set of a kind in force (docs/recognition.md).

use crate::catalog::parse_date;
use crate::sqlite::iso;
use huren_archive::catalog::RecognitionSet;
use huren_catalog::{Evaluator, QualificationRecord, ScopeRule};
use sqlx::{Row, SqlitePool};

pub(crate) fn evaluator_str(e: Evaluator) -> &'static str {
    match e {
        Evaluator::County => "county",
        Evaluator::City => "city",
        Evaluator::Province => "province",
        Evaluator::National => "national",
    }
}

pub(crate) async fn new_set(
    tx: &mut sqlx::SqliteConnection,
    kind: &str,
    sha: &str,
    rows: usize,
    at: i64,
    by: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO recognition_set (kind, source_sha256, rows, imported_at, imported_by)
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(kind)
    .bind(sha)
    .bind(rows as i64)
    .bind(at)
    .bind(by)
    .fetch_one(&mut *tx)
    .await
}

pub async fn import_qualifications(
    pool: &SqlitePool,
    sha: &str,
    at: i64,
    by: &str,
    records: &[QualificationRecord],
) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id = new_set(&mut tx, "qualifications", sha, records.len(), at, by).await?;
    for q in records {
        sqlx::query(
            "INSERT INTO qualification_record (set_id, record, institution, item, scope, evaluated_by, valid_from, valid_until)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(&q.record)
        .bind(&q.institution)
        .bind(&q.item)
        .bind(&q.scope)
        .bind(evaluator_str(q.evaluated_by))
        .bind(iso(q.valid_from))
        .bind(iso(q.valid_until))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(id)
}

pub async fn import_scopes(
    pool: &SqlitePool,
    sha: &str,
    at: i64,
    by: &str,
    rules: &[ScopeRule],
) -> Result<i64, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id = new_set(&mut tx, "scopes", sha, rules.len(), at, by).await?;
    for r in rules {
        sqlx::query("INSERT INTO scope_rule (set_id, label, covers) VALUES (?, ?, ?)")
            .bind(id)
            .bind(&r.label)
            .bind(r.covers.join(";"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(id)
}

pub async fn import_policy(
    pool: &SqlitePool,
    sha: &str,
    at: i64,
    by: &str,
    rows: i64,
    document: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO recognition_set (kind, source_sha256, rows, imported_at, imported_by, document)
         VALUES ('policy', ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(sha)
    .bind(rows)
    .bind(at)
    .bind(by)
    .bind(document)
    .fetch_one(pool)
    .await
}

/// The newest set of a kind.
/// The set of `kind` in force at `at` (the newest imported by then; the newest when `None`).
/// Every set imported, newest first (at most `limit`): the configuration's history.
pub async fn sets(pool: &SqlitePool, limit: i64) -> Result<Vec<RecognitionSet>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, kind, source_sha256, rows, imported_at, imported_by FROM recognition_set
          ORDER BY id DESC LIMIT ?",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(set).collect())
}

pub(crate) fn set(r: &sqlx::sqlite::SqliteRow) -> RecognitionSet {
    RecognitionSet {
        id: r.get(0),
        kind: r.get(1),
        source_sha256: r.get(2),
        rows: r.get(3),
        imported_at: r.get(4),
        imported_by: r.get(5),
    }
}

pub async fn set_at(
    pool: &SqlitePool,
    kind: &str,
    at: Option<i64>,
) -> Result<Option<RecognitionSet>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, kind, source_sha256, rows, imported_at, imported_by FROM recognition_set
          WHERE kind = ?1 AND (?2 IS NULL OR imported_at <= ?2) ORDER BY id DESC LIMIT 1",
    )
    .bind(kind)
    .bind(at)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(set))
}

pub async fn qualifications(
    pool: &SqlitePool,
    set_id: i64,
) -> Result<Vec<QualificationRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT record, institution, item, scope, evaluated_by, valid_from, valid_until
           FROM qualification_record WHERE set_id = ? ORDER BY record",
    )
    .bind(set_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(QualificationRecord {
                record: r.get(0),
                institution: r.get(1),
                item: r.get(2),
                scope: r.get(3),
                evaluated_by: Evaluator::parse(r.get::<&str, _>(4))?,
                valid_from: parse_date(r.get::<&str, _>(5))?,
                valid_until: parse_date(r.get::<&str, _>(6))?,
            })
        })
        .collect())
}

pub async fn scopes(pool: &SqlitePool, set_id: i64) -> Result<Vec<ScopeRule>, sqlx::Error> {
    let rows = sqlx::query("SELECT label, covers FROM scope_rule WHERE set_id = ? ORDER BY label")
        .bind(set_id)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|r| ScopeRule {
            label: r.get(0),
            covers: r
                .get::<&str, _>(1)
                .split(';')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect(),
        })
        .collect())
}
