//! Image quality control in SQL (`QualityIndex`, docs/quality.md): the job queue with leases,
//! per-image results and study aggregates here; the QC centre's reads in `reads`.

mod reads;

use crate::sql::*;
use crate::sqlite::*;
use async_trait::async_trait;
use huren_archive::model::*;
use huren_archive::model::{QcImageOutcome, QcJob, QcStudyOutcome};
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use reads::*;
use sqlx::{Row, SqlitePool};

/// lease has run out (their worker died). One statement, so two workers never claim the same.
/// One active instance of a study of that UID (optionally of one institution), as a job.
pub async fn image_source(
    pool: &SqlitePool,
    study_uid: &str,
    sop_uid: &str,
    institution: Option<i64>,
) -> Result<Option<QcJob>, sqlx::Error> {
    let r = sqlx::query(
        "SELECT i.id, i.study_id, i.series_id, se.series_uid, i.blob_key, i.transfer_syntax_uid,
                COALESCE(i.pixel_layout, ''), 0, ij.json
           FROM instance i JOIN series se ON se.id = i.series_id
           JOIN study st ON st.id = i.study_id
           LEFT JOIN instance_json ij ON ij.instance_id = i.id
          WHERE st.study_uid = ?1 AND i.sop_uid = ?2 AND i.lifecycle = 'active'
            AND (?3 IS NULL OR st.institution_id = ?3)
          LIMIT 1",
    )
    .bind(study_uid)
    .bind(sop_uid)
    .bind(institution)
    .fetch_optional(pool)
    .await?;
    Ok(r.as_ref().map(job))
}

/// A job from the columns both queries select, in their order.
fn job(r: &sqlx::sqlite::SqliteRow) -> QcJob {
    QcJob {
        instance_id: r.get(0),
        study_id: r.get(1),
        series_id: r.get(2),
        series_uid: r.get(3),
        blob_key: r.get(4),
        transfer_syntax: r.get(5),
        pixel_layout: r.get(6),
        attempts: r.get(7),
        document: r.get(8),
    }
}

/// The jobs to claim, found through the partial index of waiting jobs. SQLite uses a partial
/// index only when the query repeats its condition (`state IN ('queued', 'running')`) word
/// for word; without it, `ORDER BY instance_id LIMIT` made the planner walk the whole table in
/// rowid order past every finished job, inside the write transaction: 5 million VM steps a
/// claim at 1M instances, holding every ingest commit behind it (issue 22, item 5).
const CLAIM: &str =
    "UPDATE qc_job SET state = 'running', lease_until = ?1, worker = ?2, attempts = attempts + 1
      WHERE instance_id IN (
            SELECT instance_id FROM qc_job
             WHERE state IN ('queued', 'running') AND (state = 'queued' OR lease_until < ?3)
             ORDER BY instance_id LIMIT ?4)
      RETURNING instance_id";

pub async fn claim(
    pool: &SqlitePool,
    worker: &str,
    n: i64,
    now: i64,
    lease_until: i64,
) -> Result<Vec<QcJob>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let ids: Vec<i64> = sqlx::query_scalar(CLAIM)
        .bind(lease_until)
        .bind(worker)
        .bind(now)
        .bind(n)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; ids.len()].join(",");
    let sql = format!(
        "SELECT i.id, i.study_id, i.series_id, se.series_uid, i.blob_key, i.transfer_syntax_uid,
                i.pixel_layout, j.attempts, ij.json
           FROM instance i JOIN series se ON se.id = i.series_id
           JOIN qc_job j ON j.instance_id = i.id
           LEFT JOIN instance_json ij ON ij.instance_id = i.id
          WHERE i.id IN ({marks})"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in &ids {
        q = q.bind(id);
    }
    let rows = q.fetch_all(pool).await?;
    let mut jobs: Vec<QcJob> = rows.iter().map(job).collect();
    // An instance removed since it was queued (deleted study): its job is done, nothing to do.
    let found: std::collections::HashSet<i64> = jobs.iter().map(|j| j.instance_id).collect();
    for id in ids.iter().filter(|id| !found.contains(id)) {
        sqlx::query("UPDATE qc_job SET state = 'done', finished_at = ?, error = 'instance gone' WHERE instance_id = ?")
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?;
    }
    jobs.sort_by_key(|j| j.instance_id);
    Ok(jobs)
}

/// Stores images' results, finishes their jobs and marks their studies for aggregation, in one
/// transaction (one commit per batch, not per image); applying the same result twice leaves
/// the same rows.
pub async fn finish(
    pool: &SqlitePool,
    all: &[QcImageOutcome],
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for o in all {
        finish_one(&mut tx, o, now).await?;
    }
    tx.commit().await
}

async fn finish_one(
    tx: &mut sqlx::SqliteConnection,
    o: &QcImageOutcome,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO qc_image (instance_id, study_id, series_id, scored_at, excluded, score, grade,
             calibrated, scores)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (instance_id) DO UPDATE SET scored_at = excluded.scored_at,
             excluded = excluded.excluded, score = excluded.score, grade = excluded.grade,
             calibrated = excluded.calibrated, scores = excluded.scores",
    )
    .bind(o.instance_id)
    .bind(o.study_id)
    .bind(o.series_id)
    .bind(now)
    .bind(&o.excluded)
    .bind(o.score)
    .bind(&o.grade)
    .bind(o.calibrated)
    .bind(&o.scores)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE qc_job SET state = 'done', finished_at = ?, lease_until = NULL, error = NULL
          WHERE instance_id = ?",
    )
    .bind(now)
    .bind(o.instance_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO qc_study (study_id, dirty, changed_at) VALUES (?, 1, ?)
         ON CONFLICT (study_id) DO UPDATE SET dirty = 1, changed_at = excluded.changed_at",
    )
    .bind(o.study_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A job that failed: queued again until its third attempt, then failed for good (and its
/// image stays unscored).
pub async fn fail(
    pool: &SqlitePool,
    instance_id: i64,
    error: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE qc_job SET state = CASE WHEN attempts >= 3 THEN 'failed' ELSE 'queued' END,
                lease_until = NULL, error = ?, finished_at = CASE WHEN attempts >= 3 THEN ? END
          WHERE instance_id = ?",
    )
    .bind(error)
    .bind(now)
    .bind(instance_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Studies to aggregate: marked, stable, and with no image still waiting to be scored.
pub async fn ready_studies(pool: &SqlitePool, n: i64) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT q.study_id, q.changed_at FROM qc_study q JOIN study s ON s.id = q.study_id
          WHERE q.dirty = 1 AND s.stable_at IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM instance i JOIN qc_job j ON j.instance_id = i.id
                             WHERE i.study_id = q.study_id AND j.state IN ('queued', 'running'))
          ORDER BY q.changed_at LIMIT ?",
    )
    .bind(n)
    .fetch_all(pool)
    .await
}

/// The results of a study's active images: (series UID, excluded reason, scores JSON).
pub async fn study_images(
    pool: &SqlitePool,
    study_id: i64,
) -> Result<Vec<(String, Option<String>, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT se.series_uid, q.excluded, q.scores
           FROM qc_image q JOIN instance i ON i.id = q.instance_id AND i.lifecycle = 'active'
           JOIN series se ON se.id = q.series_id
          WHERE q.study_id = ? ORDER BY se.series_uid, i.instance_number, i.id",
    )
    .bind(study_id)
    .fetch_all(pool)
    .await
}

/// Stores a study's aggregate; it stays marked when an image was scored after `seen`.
pub async fn store_study(
    pool: &SqlitePool,
    o: &QcStudyOutcome,
    seen: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE qc_study SET dirty = CASE WHEN changed_at > ? THEN 1 ELSE 0 END, aggregated_at = ?,
                score = ?, grade = ?, calibrated = ?, not_assessable = ?, complete = ?, images = ?,
                excluded = ?, detail = ?
          WHERE study_id = ?",
    )
    .bind(seen)
    .bind(now)
    .bind(o.score)
    .bind(&o.grade)
    .bind(o.calibrated)
    .bind(o.not_assessable)
    .bind(o.complete)
    .bind(o.images)
    .bind(o.excluded)
    .bind(&o.detail)
    .bind(o.study_id)
    .execute(pool)
    .await?;
    // The grading history, so a recognition can be judged again as of any moment.
    sqlx::query(
        "INSERT OR REPLACE INTO qc_grade_history
                (study_id, graded_at, grade, calibrated, complete, not_assessable)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(o.study_id)
    .bind(now)
    .bind(&o.grade)
    .bind(o.calibrated)
    .bind(o.complete)
    .bind(o.not_assessable)
    .execute(pool)
    .await?;
    Ok(())
}

/// Jobs waiting and the oldest one's enqueue time (the backlog).
pub async fn backlog(pool: &SqlitePool) -> Result<(i64, Option<i64>), sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*), MIN(enqueued_at) FROM qc_job WHERE state IN ('queued', 'running')",
    )
    .fetch_one(pool)
    .await
}

#[async_trait]
impl QualityIndex for SqliteIndex {
    async fn qc_claim(
        &self,
        worker: &str,
        n: i64,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<huren_archive::model::QcJob>, StoreError> {
        claim(&self.pool, worker, n, now, lease_until)
            .await
            .map_err(db)
    }

    async fn qc_finish(
        &self,
        all: &[huren_archive::model::QcImageOutcome],
        now: i64,
    ) -> Result<(), StoreError> {
        finish(&self.pool, all, now).await.map_err(db)
    }

    async fn qc_fail(&self, instance_id: i64, error: &str, now: i64) -> Result<(), StoreError> {
        fail(&self.pool, instance_id, error, now).await.map_err(db)
    }

    async fn qc_ready_studies(&self, n: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        ready_studies(&self.pool, n).await.map_err(db)
    }

    async fn qc_study_images(
        &self,
        study_id: i64,
    ) -> Result<Vec<(String, Option<String>, String)>, StoreError> {
        study_images(&self.pool, study_id).await.map_err(db)
    }

    async fn qc_store_study(
        &self,
        o: &huren_archive::model::QcStudyOutcome,
        seen: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        store_study(&self.pool, o, seen, now).await.map_err(db)
    }

    async fn qc_grades(
        &self,
        study_uids: &[String],
        as_of: Option<i64>,
    ) -> Result<Vec<huren_archive::model::QcGradeRow>, StoreError> {
        grades(&self.pool, study_uids, as_of).await.map_err(db)
    }

    async fn qc_cells(
        &self,
        span: &QcSpan,
        institution: Option<i64>,
        by: huren_archive::quality::QualityBy,
    ) -> Result<Vec<QcCell>, StoreError> {
        cells(&self.pool, span, institution, by).await.map_err(db)
    }

    async fn qc_list_studies(
        &self,
        filter: &huren_archive::model::QcStudyFilter,
    ) -> Result<(i64, Vec<huren_archive::model::QcListRow>), StoreError> {
        list_studies(&self.pool, filter).await.map_err(db)
    }

    async fn qc_study_images_by_uid(
        &self,
        study_uid: &str,
        institution: Option<i64>,
    ) -> Result<
        Vec<(
            huren_archive::model::QcListRow,
            Vec<huren_archive::model::QcImageRow>,
        )>,
        StoreError,
    > {
        study_images_by_uid(&self.pool, study_uid, institution)
            .await
            .map_err(db)
    }

    async fn qc_image_source(
        &self,
        study_uid: &str,
        sop_uid: &str,
        institution: Option<i64>,
    ) -> Result<Option<QcJob>, StoreError> {
        image_source(&self.pool, study_uid, sop_uid, institution)
            .await
            .map_err(db)
    }

    async fn qc_backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        backlog(&self.pool).await.map_err(db)
    }

    async fn qc_add_review(
        &self,
        study_uid: &str,
        institution: &str,
        user_id: i64,
        actor: &str,
        comment: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO qc_review (study_id, reviewed_at, user_id, actor, comment)
             SELECT s.id, ?3, ?4, ?5, ?6 FROM study s JOIN institution i ON i.id = s.institution_id
              WHERE s.study_uid = ?1 AND i.code = ?2 COLLATE NOCASE
             RETURNING id",
        )
        .bind(study_uid)
        .bind(institution)
        .bind(now)
        .bind(user_id)
        .bind(actor)
        .bind(comment)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    async fn qc_reviews(
        &self,
        study_uid: &str,
        institution: &str,
    ) -> Result<Vec<QcReview>, StoreError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT r.reviewed_at, r.actor, r.comment FROM qc_review r
               JOIN study s ON s.id = r.study_id JOIN institution i ON i.id = s.institution_id
              WHERE s.study_uid = ? AND i.code = ? COLLATE NOCASE ORDER BY r.id",
        )
        .bind(study_uid)
        .bind(institution)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(reviewed_at, actor, comment)| QcReview {
                reviewed_at,
                actor,
                comment,
            })
            .collect())
    }
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    /// A large archive's queue is mostly finished jobs: the claim must reach the waiting ones
    /// through the partial index, not by walking the finished ones (issue 22, item 5).
    #[tokio::test]
    async fn the_claim_seeks_the_waiting_jobs_past_any_number_of_finished_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = SqliteIndex::open(&dir.path().join("index.sqlite"))
            .await
            .expect("index");
        let mut conn = index.pool.acquire().await.expect("connection");
        // The jobs alone: the rows they point at do not matter to the plan.
        sqlx::query(
            "PRAGMA foreign_keys = OFF;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO qc_job (instance_id, state, enqueued_at, finished_at) SELECT i, 'done', 0, 0 FROM n;
             INSERT INTO qc_job (instance_id, state, enqueued_at) VALUES (20003, 'queued', 0), (20001, 'queued', 0);
             INSERT INTO qc_job (instance_id, state, enqueued_at, lease_until) VALUES (20002, 'running', 0, 5), (20004, 'running', 0, 500);
             PRAGMA foreign_keys = ON;",
        )
        .execute(&mut *conn)
        .await
        .expect("jobs");
        sqlx::query(crate::sqlite::OPTIMIZE)
            .execute(&mut *conn)
            .await
            .expect("statistics");
        let plan: Vec<String> =
            sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {CLAIM}")))
                .bind(0i64)
                .bind("w")
                .bind(10i64)
                .bind(8i64)
                .fetch_all(&mut *conn)
                .await
                .expect("plan")
                .iter()
                .map(|r| r.get::<String, _>("detail"))
                .collect();
        assert!(
            plan.iter().any(|d| d.contains("qc_job_ready")),
            "the claim does not use the index of waiting jobs: {plan:?}"
        );
        assert!(
            !plan.iter().any(|d| d.starts_with("SCAN qc_job")),
            "the claim walks the whole queue: {plan:?}"
        );
        drop(conn);
        // And it claims what it should: the waiting jobs and the one whose lease ran out, in
        // order, not the one still leased.
        let ids: Vec<i64> = sqlx::query_scalar(CLAIM)
            .bind(100i64)
            .bind("w")
            .bind(10i64)
            .bind(8i64)
            .fetch_all(&index.pool)
            .await
            .expect("claim");
        let mut ids = ids;
        ids.sort();
        assert_eq!(ids, vec![20001, 20002, 20003]);
    }
}
