//! SQL for the recognition configuration: qualification records and scope rules, each import a
//! set, the newest set of a kind in force.

use crate::catalog::parse_date;
use crate::sqlite::iso;
use huren_archive::catalog::RecognitionSet;
use huren_catalog::{Evaluator, QualificationRecord, ScopeRule};
use sqlx::{Row, SqlitePool};

fn evaluator_str(e: Evaluator) -> &'static str {
    match e {
        Evaluator::County => "county",
        Evaluator::City => "city",
        Evaluator::Province => "province",
        Evaluator::National => "national",
    }
}

async fn new_set(
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
    let mut tx = pool.begin().await?;
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
    let mut tx = pool.begin().await?;
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

/// The newest set of a kind.
pub async fn current_set(
    pool: &SqlitePool,
    kind: &str,
) -> Result<Option<RecognitionSet>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, kind, source_sha256, rows, imported_at, imported_by FROM recognition_set
          WHERE kind = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(kind)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| RecognitionSet {
        id: r.get(0),
        kind: r.get(1),
        source_sha256: r.get(2),
        rows: r.get(3),
        imported_at: r.get(4),
        imported_by: r.get(5),
    }))
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

/// Appends a decision and supersedes the institution's earlier ones on the same result for the
/// same visit, in one transaction.
pub async fn record_decision(
    pool: &SqlitePool,
    d: &huren_archive::model::NewRecognitionDecision,
) -> Result<(i64, u64), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO recognition_decision (decided_at, decided_on, institution_id, department, user_id, actor,
            person_id, visit_number, result_kind, result_ref, performing_institution, item, ordered_item,
            engine_verdict, engine_decision, catalog_version, qualification_set, scope_set, decision, reason,
            note, record_sentence)
         SELECT ?, ?, ?, ?, ?, ?, pe.id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
           FROM person pe WHERE pe.public_id = ?
         RETURNING id",
    )
    .bind(d.decided_at)
    .bind(&d.decided_on)
    .bind(d.institution_id)
    .bind(&d.department)
    .bind(d.user_id)
    .bind(&d.actor)
    .bind(&d.visit_number)
    .bind(&d.result_kind)
    .bind(&d.result_ref)
    .bind(&d.performing_institution)
    .bind(&d.item)
    .bind(&d.ordered_item)
    .bind(&d.engine_verdict)
    .bind(&d.engine_decision)
    .bind(&d.catalog_version)
    .bind(d.qualification_set)
    .bind(d.scope_set)
    .bind(&d.decision)
    .bind(&d.reason)
    .bind(&d.note)
    .bind(&d.record_sentence)
    .bind(&d.person)
    .fetch_one(&mut *tx)
    .await?;
    let superseded = sqlx::query(
        "UPDATE recognition_decision SET superseded_by = ?1
          WHERE id <> ?1 AND superseded_by IS NULL AND institution_id = ?2 AND result_kind = ?3
            AND result_ref = ?4 AND visit_number IS ?5
            AND person_id = (SELECT person_id FROM recognition_decision WHERE id = ?1)",
    )
    .bind(id)
    .bind(d.institution_id)
    .bind(&d.result_kind)
    .bind(&d.result_ref)
    .bind(&d.visit_number)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok((id, superseded))
}

/// Statistics units (docs/recognition.md): one per (receiving institution, visit — or the
/// decision itself when no visit was named —, item), from the current decisions on results the
/// engine judged recognizable; the latest decision when several.
pub async fn units(
    pool: &SqlitePool,
    from: &str,
    until: &str,
    institution: Option<i64>,
) -> Result<Vec<huren_archive::model::RecognitionUnit>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH unit AS (
           SELECT d.institution_id, d.department, COALESCE(d.ordered_item, d.item) AS item, d.decided_on,
                  d.decision, d.reason,
                  ROW_NUMBER() OVER (PARTITION BY d.institution_id,
                                       COALESCE(d.visit_number, 'decision:' || d.id),
                                       COALESCE(d.ordered_item, d.item)
                                     ORDER BY d.decided_at DESC, d.id DESC) AS rn
             FROM recognition_decision d
            WHERE d.superseded_by IS NULL AND d.engine_verdict = 'recognizable'
              AND d.decided_on >= ?1 AND d.decided_on <= ?2
              AND (?3 IS NULL OR d.institution_id = ?3)
              AND COALESCE(d.ordered_item, d.item) IS NOT NULL)
         SELECT i.code, u.department, u.item, u.decided_on, u.decision, u.reason
           FROM unit u JOIN institution i ON i.id = u.institution_id
          WHERE u.rn = 1",
    )
    .bind(from)
    .bind(until)
    .bind(institution)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| huren_archive::model::RecognitionUnit {
            institution: r.get(0),
            department: r.get(1),
            item: r.get(2),
            decided_on: r.get(3),
            decision: r.get(4),
            reason: r.get(5),
        })
        .collect())
}
