//! SQL for image quality control (docs/quality.md): the job queue with leases, per-image
//! results, and study aggregates.

use huren_archive::model::{QcImageOutcome, QcJob, QcStudyOutcome};
use sqlx::{Row, SqlitePool};

/// Claims up to `n` jobs for `worker` until `lease_until`: queued ones, and running ones whose
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

pub async fn claim(
    pool: &SqlitePool,
    worker: &str,
    n: i64,
    now: i64,
    lease_until: i64,
) -> Result<Vec<QcJob>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "UPDATE qc_job SET state = 'running', lease_until = ?1, worker = ?2, attempts = attempts + 1
          WHERE instance_id IN (
                SELECT instance_id FROM qc_job
                 WHERE state = 'queued' OR (state = 'running' AND lease_until < ?3)
                 ORDER BY instance_id LIMIT ?4)
          RETURNING instance_id",
    )
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

/// Study grades by StudyInstanceUID: (uid, performing institution code, grade, calibrated),
/// for those aggregated.
pub async fn grades(
    pool: &SqlitePool,
    study_uids: &[String],
    as_of: Option<i64>,
) -> Result<Vec<huren_archive::model::QcGradeRow>, sqlx::Error> {
    if study_uids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; study_uids.len()].join(",");
    // As of a moment: the last grading by then, from the grading history.
    let sql = match as_of {
        None => format!(
            "SELECT s.study_uid, i.code, q.grade, q.calibrated, q.complete, q.not_assessable
               FROM study s JOIN qc_study q ON q.study_id = s.id JOIN institution i ON i.id = s.institution_id
              WHERE s.study_uid IN ({marks}) AND q.aggregated_at IS NOT NULL"
        ),
        Some(_) => format!(
            "SELECT s.study_uid, i.code, h.grade, h.calibrated, h.complete, h.not_assessable
               FROM study s JOIN institution i ON i.id = s.institution_id
               JOIN qc_grade_history h ON h.study_id = s.id
                AND h.graded_at = (SELECT MAX(g.graded_at) FROM qc_grade_history g
                                    WHERE g.study_id = s.id AND g.graded_at <= ?)
              WHERE s.study_uid IN ({marks})"
        ),
    };
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    if let Some(at) = as_of {
        q = q.bind(at);
    }
    for u in study_uids {
        q = q.bind(u);
    }
    q.fetch_all(pool).await
}

/// Jobs waiting and the oldest one's enqueue time (the backlog).
pub async fn backlog(pool: &SqlitePool) -> Result<(i64, Option<i64>), sqlx::Error> {
    sqlx::query_as(
        "SELECT COUNT(*), MIN(enqueued_at) FROM qc_job WHERE state IN ('queued', 'running')",
    )
    .fetch_one(pool)
    .await
}

/// Graded studies performed on study dates `[from, until]` (YYYYMMDD), optionally of one
/// institution: for the QC centre's feedback; no patient data.
pub async fn graded_studies(
    pool: &SqlitePool,
    from: &str,
    until: &str,
    institution: Option<i64>,
) -> Result<Vec<huren_archive::model::QcStudyRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT s.study_uid, i.code, s.modalities, s.study_date, q.score, q.grade, q.calibrated,
                q.complete, q.images, q.detail
           FROM qc_study q JOIN study s ON s.id = q.study_id JOIN institution i ON i.id = s.institution_id
          WHERE q.aggregated_at IS NOT NULL AND s.study_date >= ?1 AND s.study_date <= ?2
            AND (?3 IS NULL OR s.institution_id = ?3)",
    )
    .bind(from)
    .bind(until)
    .bind(institution)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| huren_archive::model::QcStudyRow {
            study_uid: r.get(0),
            institution: r.get(1),
            modalities: r.get(2),
            study_date: r.get(3),
            score: r.get(4),
            grade: r.get(5),
            calibrated: r.get(6),
            complete: r.get(7),
            images: r.get(8),
            detail: r.get(9),
        })
        .collect())
}

/// The columns of a study in the QC centre's list, after `s` (study), `i` (institution) and
/// `q` (its qc_study row, if any); `s.id` first, the total count (a window) last.
const LIST_COLUMNS: &str = "s.id, s.study_uid, i.code, s.modalities, NULLIF(s.study_date, ''),
       (SELECT MIN(x.received_at) FROM instance x WHERE x.study_id = s.id) AS arrived,
       q.aggregated_at, q.score, q.grade, COALESCE(q.calibrated, 0), COALESCE(q.not_assessable, 0),
       q.complete, COALESCE(q.images, 0), COALESCE(q.excluded, 0),
       (SELECT COUNT(*) FROM instance x WHERE x.study_id = s.id AND x.lifecycle = 'active'),
       (SELECT COUNT(*) FROM qc_image g WHERE g.study_id = s.id),
       q.detail, (SELECT COUNT(*) FROM qc_review r WHERE r.study_id = s.id), COUNT(*) OVER ()";

fn list_row(r: &sqlx::sqlite::SqliteRow) -> (i64, huren_archive::model::QcListRow, i64) {
    (
        r.get(0),
        huren_archive::model::QcListRow {
            study_uid: r.get(1),
            institution: r.get(2),
            modalities: r.get(3),
            study_date: r.get(4),
            arrived_at: r.get::<Option<i64>, _>(5).unwrap_or_default(),
            aggregated_at: r.get(6),
            score: r.get(7),
            grade: r.get(8),
            calibrated: r.get(9),
            not_assessable: r.get(10),
            complete: r.get(11),
            images: r.get(12),
            excluded: r.get(13),
            stored: r.get(14),
            scored: r.get(15),
            detail: r.get(16),
            reviews: r.get(17),
        },
        r.get(18),
    )
}

/// The QC centre's list (docs/quality.md): studies performed on the days asked (by arrival when
/// they have no StudyDate), filtered, one page, and the number matching.
pub async fn list_studies(
    pool: &SqlitePool,
    f: &huren_archive::model::QcStudyFilter,
) -> Result<(i64, Vec<huren_archive::model::QcListRow>), sqlx::Error> {
    use huren_archive::model::{QcOrder, QcStatus};
    let order = match f.order {
        QcOrder::ScoreAscending => "q.score IS NULL, q.score ASC, s.id",
        QcOrder::ScoreDescending => "q.score IS NULL, q.score DESC, s.id",
        QcOrder::Newest => {
            "COALESCE(NULLIF(s.study_date, ''), strftime('%Y%m%d', arrived, 'unixepoch')) DESC, s.id DESC"
        }
    };
    let status = f.status.map(|s| match s {
        QcStatus::Graded => "graded",
        QcStatus::NotAssessable => "not_assessable",
        QcStatus::Pending => "pending",
        QcStatus::NothingToScore => "nothing_to_score",
    });
    // Dated studies through the study-date index; undated ones (few) by their first arrival.
    let sql = format!(
        "WITH cand AS (
             SELECT id FROM study WHERE study_date >= ?1 AND study_date <= ?2 AND num_instances > 0
             UNION ALL
             SELECT u.id FROM study u
              WHERE (u.study_date IS NULL OR u.study_date = '') AND u.num_instances > 0
                AND (SELECT MIN(x.received_at) FROM instance x WHERE x.study_id = u.id) >= ?3
                AND (SELECT MIN(x.received_at) FROM instance x WHERE x.study_id = u.id) < ?4)
         SELECT {LIST_COLUMNS}
           FROM cand JOIN study s ON s.id = cand.id JOIN institution i ON i.id = s.institution_id
           LEFT JOIN qc_study q ON q.study_id = s.id
          WHERE (?5 IS NULL OR s.institution_id = ?5)
            AND (?6 IS NULL OR instr('\\' || s.modalities || '\\', '\\' || ?6 || '\\') > 0)
            AND (?7 IS NULL OR q.grade = ?7)
            AND (?8 IS NULL OR ?8 = CASE WHEN q.grade IS NOT NULL THEN 'graded'
                                         WHEN COALESCE(q.not_assessable, 0) = 1 THEN 'not_assessable'
                                         WHEN q.aggregated_at IS NULL THEN 'pending'
                                         ELSE 'nothing_to_score' END)
          ORDER BY {order}
          LIMIT ?9 OFFSET ?10"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&f.from)
        .bind(&f.until)
        .bind(f.arrived_from)
        .bind(f.arrived_until)
        .bind(f.institution)
        .bind(&f.modality)
        .bind(&f.grade)
        .bind(status)
        .bind(f.limit)
        .bind(f.offset)
        .fetch_all(pool)
        .await?;
    let mut total = 0;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let (_, row, n) = list_row(r);
        total = n;
        out.push(row);
    }
    if rows.is_empty() && f.offset > 0 {
        // Past the end: the count alone.
        let again = huren_archive::model::QcStudyFilter {
            offset: 0,
            limit: 1,
            ..f.clone()
        };
        return Ok((Box::pin(list_studies(pool, &again)).await?.0, out));
    }
    Ok((total, out))
}

/// Every institution's study of this StudyInstanceUID (or one institution's), each with its
/// active images and their results.
pub async fn study_images_by_uid(
    pool: &SqlitePool,
    study_uid: &str,
    institution: Option<i64>,
) -> Result<
    Vec<(
        huren_archive::model::QcListRow,
        Vec<huren_archive::model::QcImageRow>,
    )>,
    sqlx::Error,
> {
    let sql = format!(
        "SELECT {LIST_COLUMNS}
           FROM study s JOIN institution i ON i.id = s.institution_id
           LEFT JOIN qc_study q ON q.study_id = s.id
          WHERE s.study_uid = ?1 AND (?2 IS NULL OR s.institution_id = ?2)
          ORDER BY i.code"
    );
    let studies = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(study_uid)
        .bind(institution)
        .fetch_all(pool)
        .await?;
    let mut out = Vec::with_capacity(studies.len());
    for r in &studies {
        let (id, row, _) = list_row(r);
        let images = sqlx::query(
            "SELECT se.series_uid, x.sop_uid, x.instance_number, g.excluded, g.scores
               FROM instance x JOIN series se ON se.id = x.series_id
               LEFT JOIN qc_image g ON g.instance_id = x.id
              WHERE x.study_id = ? AND x.lifecycle = 'active'
              ORDER BY se.series_number, se.series_uid, x.instance_number, x.id",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|m| {
            let excluded: Option<String> = m.get(3);
            let scores: Option<String> = m.get(4);
            huren_archive::model::QcImageRow {
                series_uid: m.get(0),
                sop_instance_uid: m.get(1),
                instance_number: m.get(2),
                result: scores.filter(|s| excluded.is_none() && s.as_str() != "{}"),
                excluded,
            }
        })
        .collect();
        out.push((row, images));
    }
    Ok(out)
}
