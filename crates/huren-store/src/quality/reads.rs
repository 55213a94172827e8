//! The QC centre's reads in SQL: grades by study, the roll-up cells (migration 0040), the
//! lowest studies and the worklist (migration 0041), a study's images.

use sqlx::{Row, SqlitePool};

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

/// Graded studies performed on study dates `[from, until]` (YYYYMMDD), optionally of one
/// institution: for the QC centre's feedback; no patient data.
/// The QC statistics' cells: whole months from the roll-up (migration 0040, kept by its
/// triggers), or the days asked counted from the studies in the same shape.
pub async fn cells(
    pool: &SqlitePool,
    span: &huren_archive::model::QcSpan,
    institution: Option<i64>,
    by: huren_archive::quality::QualityBy,
) -> Result<Vec<huren_archive::model::QcCell>, sqlx::Error> {
    use huren_archive::model::QcSpan;
    use huren_archive::quality::QualityBy;
    // Summed here, one row per group: a region's year is some 50,000 cells, and reading each
    // into the process costs more than adding them up in SQLite.
    let (month_of, modalities_of) = match span {
        QcSpan::Months { .. } => ("r.month", "r.modalities"),
        QcSpan::Days { .. } => ("substr(s.study_date, 1, 6)", "s.modalities"),
    };
    let (month, code, modalities) = match by {
        QualityBy::Institution => ("''", "i.code", "''"),
        QualityBy::Modality => ("''", "''", modalities_of),
        QualityBy::Month => (month_of, "''", "''"),
        QualityBy::Cell => (month_of, "i.code", modalities_of),
    };
    let (sql, from, until) = match span {
        QcSpan::Months { from, until } => (
            "SELECT GROUP_MONTH, GROUP_CODE, GROUP_MODALITIES, SUM(r.studies), SUM(r.a), SUM(r.b),
                    SUM(r.c), SUM(r.reject), SUM(r.uncalibrated), SUM(r.incomplete), SUM(r.scored),
                    TOTAL(r.score_sum), HIST_COLS
               FROM qc_rollup r JOIN institution i ON i.id = r.institution_id
              WHERE r.month >= ?1 AND r.month <= ?2 AND r.studies > 0
                AND (?3 IS NULL OR r.institution_id = ?3)
              GROUP BY 1, 2, 3",
            from,
            until,
        ),
        QcSpan::Days { from, until } => (
            "SELECT GROUP_MONTH, GROUP_CODE, GROUP_MODALITIES, COUNT(*), SUM(q.grade IS 'A'),
                    SUM(q.grade IS 'B'), SUM(q.grade IS 'C'),
                    SUM(q.grade IS NOT NULL AND q.grade NOT IN ('A', 'B', 'C')),
                    SUM(q.grade IS NOT NULL AND q.calibrated = 0), SUM(q.complete IS 0),
                    SUM(q.score IS NOT NULL), TOTAL(q.score),
                    HIST_RAW
               FROM qc_study q JOIN study s ON s.id = q.study_id JOIN institution i ON i.id = s.institution_id
              WHERE q.aggregated_at IS NOT NULL AND s.study_date >= ?1 AND s.study_date <= ?2
                AND (?3 IS NULL OR s.institution_id = ?3)
              GROUP BY 1, 2, 3",
            from,
            until,
        ),
    };
    let sql = sql
        .replace("GROUP_MONTH", month)
        .replace("GROUP_CODE", code)
        .replace("GROUP_MODALITIES", modalities)
        .replace("HIST_COLS", HIST_COLS)
        .replace("HIST_RAW", HIST_RAW);
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(until)
        .bind(institution)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let n = |i: usize| r.get::<i64, _>(i).max(0) as u64;
            let mut histogram = [0u64; 21];
            for (k, h) in histogram.iter_mut().enumerate() {
                *h = n(12 + k);
            }
            huren_archive::model::QcCell {
                month: r.get(0),
                institution: r.get(1),
                modalities: r.get(2),
                studies: n(3),
                a: n(4),
                b: n(5),
                c: n(6),
                reject: n(7),
                uncalibrated: n(8),
                incomplete: n(9),
                scored: n(10),
                score_sum: r.get(11),
                histogram,
            }
        })
        .collect())
}

/// The roll-up's histogram columns, and the same bins counted from `q.score`.
pub(crate) const HIST_COLS: &str = "SUM(r.h0), SUM(r.h1), SUM(r.h2), SUM(r.h3), SUM(r.h4), SUM(r.h5), SUM(r.h6), SUM(r.h7), SUM(r.h8), SUM(r.h9), SUM(r.h10), SUM(r.h11), SUM(r.h12), SUM(r.h13), SUM(r.h14), SUM(r.h15), SUM(r.h16), SUM(r.h17), SUM(r.h18), SUM(r.h19), SUM(r.h20)";
pub(crate) const HIST_RAW: &str = "SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 0), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 1), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 2), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 3), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 4), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 5), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 6), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 7), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 8), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 9), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 10), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 11), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 12), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 13), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 14), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 15), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 16), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 17), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 18), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 19), SUM(q.score IS NOT NULL AND MIN(20, CAST(q.score / 5 AS INTEGER)) = 20)";

/// The columns of a study in the QC centre's list, after `s` (study), `i` (institution) and
/// `q` (its qc_study row, if any); `s.id` first, the total count (a window) last.
pub(crate) const LIST_COLUMNS: &str =
    "s.id, s.study_uid, i.code, s.modalities, NULLIF(s.study_date, ''),
       (SELECT MIN(x.received_at) FROM instance x WHERE x.study_id = s.id) AS arrived,
       q.aggregated_at, q.score, q.grade, COALESCE(q.calibrated, 0), COALESCE(q.not_assessable, 0),
       q.complete, COALESCE(q.images, 0), COALESCE(q.excluded, 0),
       (SELECT COUNT(*) FROM instance x WHERE x.study_id = s.id AND x.lifecycle = 'active'),
       (SELECT COUNT(*) FROM qc_image g WHERE g.study_id = s.id),
       q.detail, (SELECT COUNT(*) FROM qc_review r WHERE r.study_id = s.id), COUNT(*) OVER ()";

pub(crate) fn list_row(r: &sqlx::sqlite::SqliteRow) -> (i64, huren_archive::model::QcListRow, i64) {
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
    if f.status == Some(QcStatus::Graded) && f.order != QcOrder::Newest {
        return graded_by_score(pool, f).await;
    }
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
    let rows = bind_filter(sqlx::query(sqlx::AssertSqlSafe(sql)), f, status)
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

/// The QC centre's worklist — graded studies, lowest (or highest) score first — without
/// sorting the period's studies: graded dated studies are walked in score order through
/// `qc_study_graded_score` (migration 0041) until a page is found, and the few graded ones
/// without a StudyDate or without a score are added. The number matching comes from the
/// statistics' roll-up for whole months (plus the undated), else from counting.
pub(crate) async fn graded_by_score(
    pool: &SqlitePool,
    f: &huren_archive::model::QcStudyFilter,
) -> Result<(i64, Vec<huren_archive::model::QcListRow>), sqlx::Error> {
    use huren_archive::model::QcOrder;
    let dir = if f.order == QcOrder::ScoreDescending {
        "DESC"
    } else {
        "ASC"
    };
    // Conditions every arm shares, on `s` (study) and `q` (its qc_study row).
    const MATCH: &str = "s.num_instances > 0 AND q.grade IS NOT NULL
            AND (?5 IS NULL OR s.institution_id = ?5)
            AND (?6 IS NULL OR instr('\\' || s.modalities || '\\', '\\' || ?6 || '\\') > 0)
            AND (?7 IS NULL OR q.grade = ?7)";
    let sql = format!(
        "WITH page AS (
             SELECT id FROM (
                 SELECT s.id AS id FROM qc_study q CROSS JOIN study s ON s.id = q.study_id
                  WHERE q.score IS NOT NULL AND s.study_date >= ?1 AND s.study_date <= ?2 AND {MATCH}
                  ORDER BY q.score {dir}, q.study_id LIMIT ?9 + ?10)
             UNION ALL
             SELECT s.id FROM qc_study q JOIN study s ON s.id = q.study_id
              WHERE q.score IS NULL AND s.study_date >= ?1 AND s.study_date <= ?2 AND {MATCH}
             UNION ALL
             SELECT s.id FROM study s JOIN qc_study q ON q.study_id = s.id
              WHERE (s.study_date IS NULL OR s.study_date = '') AND {MATCH}
                AND (SELECT MIN(x.received_at) FROM instance x WHERE x.study_id = s.id) >= ?3
                AND (SELECT MIN(x.received_at) FROM instance x WHERE x.study_id = s.id) < ?4)
         SELECT {LIST_COLUMNS}
           FROM page JOIN study s ON s.id = page.id JOIN institution i ON i.id = s.institution_id
           LEFT JOIN qc_study q ON q.study_id = s.id
          ORDER BY q.score IS NULL, q.score {dir}, s.id
          LIMIT ?9 OFFSET ?10"
    );
    let rows = bind_filter(sqlx::query(sqlx::AssertSqlSafe(sql)), f, None)
        .fetch_all(pool)
        .await?;
    let out = rows.iter().map(|r| list_row(r).1).collect();
    // How many match: the roll-up's graded studies of those months, plus the undated ones.
    let undated = format!(
        "SELECT COUNT(*) FROM study s JOIN qc_study q ON q.study_id = s.id
          WHERE (s.study_date IS NULL OR s.study_date = '') AND {MATCH}
            AND (SELECT MIN(x.received_at) FROM instance x WHERE x.study_id = s.id) >= ?3
            AND (SELECT MIN(x.received_at) FROM instance x WHERE x.study_id = s.id) < ?4
            AND ?1 IS NOT NULL AND ?2 IS NOT NULL"
    );
    let counted = match &f.months {
        Some((from_month, until_month)) => {
            let grade = match f.grade.as_deref() {
                Some("A") => "a",
                Some("B") => "b",
                Some("C") => "c",
                Some(_) => "reject",
                None => "a + b + c + reject",
            };
            let sql = format!(
                "SELECT COALESCE(SUM({grade}), 0) FROM qc_rollup r
                  WHERE r.month >= ?1 AND r.month <= ?2
                    AND (?3 IS NULL OR r.institution_id = ?3)
                    AND (?4 IS NULL OR instr('\\' || r.modalities || '\\', '\\' || ?4 || '\\') > 0)"
            );
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .bind(from_month)
                .bind(until_month)
                .bind(f.institution)
                .bind(&f.modality)
                .fetch_one(pool)
                .await?
        }
        None => {
            let sql = format!(
                "SELECT COUNT(*) FROM qc_study q JOIN study s ON s.id = q.study_id
                  WHERE s.study_date >= ?1 AND s.study_date <= ?2 AND {MATCH}
                    AND ?3 IS NOT NULL AND ?4 IS NOT NULL"
            );
            count(pool, &sql, f).await?
        }
    };
    let undated = count(pool, &undated, f).await?;
    Ok((counted + undated, out))
}

/// The list's parameters, ?1 to ?10, in the order its queries number them.
pub(crate) fn bind_filter<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    f: &'q huren_archive::model::QcStudyFilter,
    status: Option<&'static str>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    q.bind(&f.from)
        .bind(&f.until)
        .bind(f.arrived_from)
        .bind(f.arrived_until)
        .bind(f.institution)
        .bind(&f.modality)
        .bind(&f.grade)
        .bind(status)
        .bind(f.limit)
        .bind(f.offset)
}

/// A count over the filter's parameters (?1–?7, as in the list).
pub(crate) async fn count(
    pool: &SqlitePool,
    sql: &str,
    f: &huren_archive::model::QcStudyFilter,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(&f.from)
        .bind(&f.until)
        .bind(f.arrived_from)
        .bind(f.arrived_until)
        .bind(f.institution)
        .bind(&f.modality)
        .bind(&f.grade)
        .fetch_one(pool)
        .await
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
