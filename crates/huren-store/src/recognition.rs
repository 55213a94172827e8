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
/// same visit, and brings the statistics units they belong to up to date, in one transaction.
/// `price_fen` is the effective price for the decision's own unit (looked up by the caller).
pub async fn record_decision(
    pool: &SqlitePool,
    d: &huren_archive::model::NewRecognitionDecision,
) -> Result<(i64, u64), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO recognition_decision (decided_at, decided_on, institution_id, department, user_id, actor,
            person_id, visit_number, result_kind, result_ref, performing_institution, item, ordered_item,
            engine_verdict, engine_decision, catalog_version, qualification_set, scope_set, policy_set,
            decision, reason, note, record_sentence, counted)
         SELECT ?, ?, ?, ?, ?, ?, pe.id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
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
    .bind(d.policy_set)
    .bind(&d.decision)
    .bind(&d.reason)
    .bind(&d.note)
    .bind(&d.record_sentence)
    .bind(d.counted)
    .bind(&d.person)
    .fetch_one(&mut *tx)
    .await?;
    let superseded: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
        "UPDATE recognition_decision SET superseded_by = ?1
          WHERE id <> ?1 AND superseded_by IS NULL AND institution_id = ?2 AND result_kind = ?3
            AND result_ref = ?4 AND visit_number IS ?5
            AND person_id = (SELECT person_id FROM recognition_decision WHERE id = ?1)
         RETURNING id, visit_number, COALESCE(ordered_item, item)",
    )
    .bind(id)
    .bind(d.institution_id)
    .bind(&d.result_kind)
    .bind(&d.result_ref)
    .bind(&d.visit_number)
    .fetch_all(&mut *tx)
    .await?;
    let unit = |decision: i64, visit: &Option<String>| {
        visit
            .clone()
            .unwrap_or_else(|| format!("decision:{decision}"))
    };
    let mut keys: Vec<(String, String)> = Vec::new();
    if let Some(item) = d.ordered_item.as_ref().or(d.item.as_ref()) {
        keys.push((unit(id, &d.visit_number), item.clone()));
    }
    for (old, visit, item) in &superseded {
        if let Some(item) = item {
            let k = (unit(*old, visit), item.clone());
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    for (visit, item) in &keys {
        refresh_unit(&mut tx, d.institution_id, visit, item, id, d.price_fen).await?;
    }
    tx.commit().await?;
    Ok((id, superseded.len() as u64))
}

/// A unit's current decision: id, day, department, decision, reason, counted.
type CurrentDecision = (i64, String, Option<String>, String, Option<String>, i64);

/// Makes a unit's row its current decision again: the latest non-superseded decision on a
/// recognizable result, or no row. Only the newest decision's price is known here; an older
/// decision that becomes current again is left to be priced (`priced` 0).
async fn refresh_unit(
    tx: &mut sqlx::SqliteConnection,
    institution: i64,
    visit: &str,
    item: &str,
    newest: i64,
    price_fen: Option<i64>,
) -> Result<(), sqlx::Error> {
    let by_decision = visit
        .strip_prefix("decision:")
        .and_then(|n| n.parse::<i64>().ok());
    let current: Option<CurrentDecision> = sqlx::query_as(
        "SELECT d.id, d.decided_on, d.department, d.decision, d.reason, d.counted
               FROM recognition_decision d
              WHERE d.institution_id = ?1 AND d.superseded_by IS NULL
                AND d.engine_verdict = 'recognizable' AND COALESCE(d.ordered_item, d.item) = ?3
                AND ((?4 IS NULL AND d.visit_number = ?2) OR (d.id = ?4 AND d.visit_number IS NULL))
              ORDER BY d.decided_at DESC, d.id DESC LIMIT 1",
    )
    .bind(institution)
    .bind(visit)
    .bind(item)
    .bind(by_decision)
    .fetch_optional(&mut *tx)
    .await?;
    let existing: Option<i64> = sqlx::query_scalar(
        "SELECT decision_id FROM recognition_unit WHERE institution_id = ? AND visit = ? AND item = ?",
    )
    .bind(institution)
    .bind(visit)
    .bind(item)
    .fetch_optional(&mut *tx)
    .await?;
    if existing.is_some() && existing == current.as_ref().map(|c| c.0) {
        return Ok(());
    }
    if existing.is_some() {
        sqlx::query(
            "DELETE FROM recognition_unit WHERE institution_id = ? AND visit = ? AND item = ?",
        )
        .bind(institution)
        .bind(visit)
        .bind(item)
        .execute(&mut *tx)
        .await?;
    }
    if let Some((decision_id, day, department, decision, reason, counted)) = current {
        let priced = decision_id == newest;
        sqlx::query(
            "INSERT INTO recognition_unit (institution_id, visit, item, decision_id, decided_on, month,
                department, decision, reason, counted, price_fen, priced)
             VALUES (?, ?, ?, ?, ?, substr(?, 1, 7), ?, ?, ?, ?, ?, ?)",
        )
        .bind(institution)
        .bind(visit)
        .bind(item)
        .bind(decision_id)
        .bind(&day)
        .bind(&day)
        .bind(department.unwrap_or_default())
        .bind(decision)
        .bind(reason.unwrap_or_default())
        .bind(counted)
        .bind(if priced { price_fen } else { None })
        .bind(priced as i64)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The current decisions that make the units (the definition in docs/recognition.md, as
/// migration 0025 first built them): per (institution, visit or decision, item), the latest
/// non-superseded decision on a result judged recognizable.
const CURRENT_UNITS: &str = "
    SELECT institution_id, visit, item_key AS item, id AS decision_id, decided_on,
           substr(decided_on, 1, 7) AS month, COALESCE(department, '') AS department, decision,
           COALESCE(reason, '') AS reason, counted
      FROM (SELECT d.*, COALESCE(d.visit_number, 'decision:' || d.id) AS visit,
                   COALESCE(d.ordered_item, d.item) AS item_key,
                   ROW_NUMBER() OVER (PARTITION BY d.institution_id,
                                        COALESCE(d.visit_number, 'decision:' || d.id),
                                        COALESCE(d.ordered_item, d.item)
                                      ORDER BY d.decided_at DESC, d.id DESC) AS rn
              FROM recognition_decision d
             WHERE d.superseded_by IS NULL AND d.engine_verdict = 'recognizable'
               AND COALESCE(d.ordered_item, d.item) IS NOT NULL) AS latest
     WHERE rn = 1";

/// What a rebuild has to price: (institution code, item, day) of every recognized unit.
pub async fn rebuild_price_keys(
    pool: &SqlitePool,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT i.code, u.item, u.decided_on FROM ({CURRENT_UNITS}) AS u
           JOIN institution i ON i.id = u.institution_id
          WHERE u.decision = 'recognize'"
    )))
    .fetch_all(pool)
    .await
}

/// Rebuilds every statistics unit from the stored decisions, with the prices given for
/// (institution code, item, day); the roll-up follows through its triggers. For restores and
/// bulk loads. Returns the units.
pub async fn rebuild_units(
    pool: &SqlitePool,
    prices: &[(String, String, String, Option<i64>)],
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for sql in [
        "DELETE FROM recognition_unit",
        "DELETE FROM recognition_rollup",
        "CREATE TEMP TABLE IF NOT EXISTS unit_price (code TEXT, item TEXT, day TEXT,
             price_fen INTEGER, PRIMARY KEY (code, item, day))",
        "DELETE FROM unit_price",
    ] {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    for (code, item, day, price) in prices {
        sqlx::query("INSERT OR REPLACE INTO unit_price VALUES (?, ?, ?, ?)")
            .bind(code)
            .bind(item)
            .bind(day)
            .bind(price)
            .execute(&mut *tx)
            .await?;
    }
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO recognition_unit (institution_id, visit, item, decision_id, decided_on, month,
             department, decision, reason, counted, price_fen, priced)
         SELECT u.institution_id, u.visit, u.item, u.decision_id, u.decided_on, u.month,
                u.department, u.decision, u.reason, u.counted,
                CASE WHEN u.decision = 'recognize' THEN p.price_fen END,
                u.decision <> 'recognize' OR p.code IS NOT NULL
           FROM ({CURRENT_UNITS}) AS u
           JOIN institution i ON i.id = u.institution_id
           LEFT JOIN unit_price p ON p.code = i.code AND p.item = u.item AND p.day = u.decided_on"
    )))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM unit_price")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n)
}

/// One piece of a statistics range: whole months or single days, added or taken away.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    grain: &'static str,
    /// Inclusive, as stored: YYYY-MM for months, YYYY-MM-DD for days.
    from: String,
    until: String,
    sign: i64,
}

/// `[from, until]` as roll-up pieces: months wholly inside are read by month. A month cut by
/// the range is read by day, unless the range covers more than half of it; then it is the month
/// less the days outside. No query reads more than about half a month of days at either end.
fn pieces(from: time::Date, until: time::Date) -> Vec<Piece> {
    let month = |d: time::Date| format!("{:04}-{:02}", d.year(), d.month() as u8);
    let days = |a: time::Date, b: time::Date, sign: i64| Piece {
        grain: "day",
        from: iso(a),
        until: iso(b),
        sign,
    };
    let mut months: Vec<Piece> = Vec::new();
    let mut out: Vec<Piece> = Vec::new();
    let mut first = from.replace_day(1).unwrap_or(from);
    while first <= until {
        let length = first.month().length(first.year());
        let last = first.replace_day(length).unwrap_or(first);
        let (a, b) = (from.max(first), until.min(last));
        let covered = (b - a).whole_days() + 1;
        if covered * 2 > i64::from(length) {
            // The month; months follow each other here, so it extends the previous run.
            let previous = month(first.previous_day().unwrap_or(first));
            match months.last_mut() {
                Some(p) if p.until == previous => p.until = month(first),
                _ => months.push(Piece {
                    grain: "month",
                    from: month(first),
                    until: month(first),
                    sign: 1,
                }),
            }
            if a > first {
                out.push(days(first, a.previous_day().unwrap_or(a), -1));
            }
            if b < last {
                out.push(days(b.next_day().unwrap_or(b), last, -1));
            }
        } else {
            out.push(days(a, b, 1));
        }
        first = match last.next_day() {
            Some(d) => d,
            None => break,
        };
    }
    months.extend(out);
    months
}

/// The platform's reason codes, each a column of the roll-up (`r01` …); a region's own are in
/// its `regional` JSON.
const REASON_COLUMNS: [&str; 8] = ["01", "02", "03", "04", "05", "06", "98", "99"];

/// Statistics for decision days `[from, until]`, optionally of one receiving institution, one
/// cell per group. Each piece of the range is summed by SQLite in the roll-up's own order; the
/// pieces are added up here.
pub async fn statistics(
    pool: &SqlitePool,
    from: time::Date,
    until: time::Date,
    institution: Option<i64>,
    by: huren_archive::recognition::StatsBy,
) -> Result<Vec<huren_archive::model::StatsCell>, sqlx::Error> {
    use huren_archive::recognition::StatsBy;
    use sqlx::Row;
    use std::collections::HashMap;
    let dim = match (by, institution) {
        (StatsBy::Item, None) => "item",
        (StatsBy::Item, Some(_)) => "institution_item",
        (StatsBy::Institution | StatsBy::Month, _) => "institution",
        (StatsBy::Department, _) => "department",
    };
    let only = if institution.is_some() {
        "AND institution_id = ?4"
    } else {
        "AND ?4 IS NULL"
    };
    // By month, each month is its own group; otherwise a group spans the months read.
    let (by_month, by_day) = if by == StatsBy::Month {
        (", period", ", substr(period, 1, 7)")
    } else {
        ("", "")
    };
    let sums: String = REASON_COLUMNS
        .iter()
        .map(|c| format!(", SUM(r{c})"))
        .collect();
    let codes: HashMap<i64, String> = sqlx::query_as("SELECT id, code FROM institution")
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect();
    let mut cells: HashMap<String, huren_archive::model::StatsCell> = HashMap::new();
    for p in pieces(from, until) {
        // Months: the table itself, in key order (no sort). Days: the partial index by day.
        let (source, grouped) = if p.grain == "month" {
            ("recognition_rollup NOT INDEXED", by_month)
        } else {
            (
                "recognition_rollup INDEXED BY recognition_rollup_day",
                by_day,
            )
        };
        let sql = format!(
            "SELECT institution_id, key, substr(MIN(period), 1, 7), SUM(units), SUM(recognized),
                    SUM(reexamined), SUM(not_counted), SUM(savings_fen), SUM(unpriced){sums},
                    json_group_array(json(regional)) FILTER (WHERE regional <> '{{}}')
               FROM {source}
              WHERE dim = ?1 AND grain = '{}' AND period >= ?2 AND period <= ?3 {only}
              GROUP BY institution_id, key{grouped}",
            p.grain
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dim)
            .bind(&p.from)
            .bind(&p.until)
            .bind(institution)
            .fetch_all(pool)
            .await?;
        for r in rows {
            let inst: i64 = r.try_get(0)?;
            let key: String = r.try_get(1)?;
            let code = || codes.get(&inst).cloned().unwrap_or_default();
            let shown = match by {
                StatsBy::Item => key,
                StatsBy::Institution => code(),
                StatsBy::Department => format!("{}/{key}", code()),
                StatsBy::Month => r.try_get(2)?,
            };
            let c = cells
                .entry(shown.clone())
                .or_insert_with(|| huren_archive::model::StatsCell {
                    key: shown,
                    ..Default::default()
                });
            let n = |i: usize| -> Result<i64, sqlx::Error> { Ok(p.sign * r.try_get::<i64, _>(i)?) };
            c.units += n(3)?;
            c.recognized += n(4)?;
            c.reexamined += n(5)?;
            c.not_counted += n(6)?;
            c.savings_fen += n(7)?;
            c.unpriced += n(8)?;
            for (k, code) in REASON_COLUMNS.iter().enumerate() {
                *c.reasons.entry((*code).to_owned()).or_default() += n(9 + k)?;
            }
            let regional: Option<String> = r.try_get(9 + REASON_COLUMNS.len())?;
            let maps: Vec<std::collections::BTreeMap<String, i64>> =
                serde_json::from_str(regional.as_deref().unwrap_or("[]"))
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            for (code, count) in maps.into_iter().flatten() {
                *c.reasons.entry(code).or_default() += p.sign * count;
            }
        }
    }
    Ok(cells
        .into_values()
        .map(|mut c| {
            c.reasons.retain(|_, n| *n != 0);
            c
        })
        .collect())
}

/// Units whose price is still to be looked up: (institution code, item, decision day).
pub async fn unpriced_units(
    pool: &SqlitePool,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT i.code, u.item, u.decided_on
           FROM recognition_unit u JOIN institution i ON i.id = u.institution_id
          WHERE u.priced = 0",
    )
    .fetch_all(pool)
    .await
}

/// Sets the price of the units of (institution code, item, decision day).
pub async fn set_unit_prices(
    pool: &SqlitePool,
    prices: &[(String, String, String, Option<i64>)],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for (institution, item, day, price) in prices {
        sqlx::query(
            "UPDATE recognition_unit
                SET price_fen = CASE WHEN decision = 'recognize' THEN ? END, priced = 1
              WHERE institution_id = (SELECT id FROM institution WHERE code = ?) AND item = ?
                AND decided_on = ? AND priced = 0",
        )
        .bind(price)
        .bind(institution)
        .bind(item)
        .bind(day)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Marks units to be priced again: those of these items (a price import), or of this
/// institution (its price region or grade changed), or all.
pub async fn reprice_units(
    pool: &SqlitePool,
    items: Option<&[String]>,
    institution: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let items_json = items.map(|i| serde_json::json!(i).to_string());
    Ok(sqlx::query(
        "UPDATE recognition_unit SET priced = 0
          WHERE priced = 1
            AND (?1 IS NULL OR item IN (SELECT value FROM json_each(?1)))
            AND (?2 IS NULL OR institution_id = (SELECT id FROM institution WHERE code = ?2))",
    )
    .bind(items_json)
    .bind(institution)
    .execute(pool)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    //! Statistics equal a recount of the stored decisions (issue #7 item 7): random sequences of
    //! decisions go through `record_decision`, and every grouping over random day ranges is
    //! compared with a recount written from the definition, supersession included, on the raw
    //! rows.
    use super::*;
    use huren_archive::model::NewRecognitionDecision;
    use huren_archive::recognition::StatsBy;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    struct Op {
        institution: usize,
        visit: Option<u8>,
        result: u8,
        item: u8,
        ordered: Option<u8>,
        recognizable: bool,
        recognize: bool,
        reason: usize,
        /// The decision day; decisions are recorded in day order.
        on: time::Date,
        /// Mark every unit to be priced again before this decision (a price import).
        reprice: bool,
    }

    const INSTITUTIONS: [&str; 2] = ["city", "county"];
    /// Platform reasons, and a region's own (07 not counted, 08 counted).
    const REASONS: [(&str, bool); 6] = [
        ("01", true),
        ("06", true),
        ("98", false),
        ("99", false),
        ("07", false),
        ("08", true),
    ];

    fn op() -> impl Strategy<Value = Op> {
        (
            (0..2usize, proptest::option::of(0..4u8), 0..5u8, 0..3u8),
            (proptest::option::of(0..3u8), prop::bool::weighted(0.8)),
            (
                any::<bool>(),
                0..6usize,
                (0..4u8, 0..6u8),
                prop::bool::weighted(0.05),
            ),
        )
            .prop_map(
                |(
                    (institution, visit, result, item),
                    (ordered, recognizable),
                    (recognize, reason, (month, which), reprice),
                )| Op {
                    institution,
                    visit,
                    result,
                    item,
                    ordered,
                    recognizable,
                    recognize,
                    reason,
                    on: edge_day(month, which),
                    reprice,
                },
            )
    }

    /// The price in force: some items at some institutions have none.
    fn price(institution: &str, item: &str, day: &str) -> Option<i64> {
        if institution == "county" && item == "I2" {
            return None;
        }
        let d: i64 = day[8..].parse().unwrap_or(0);
        Some(1000 * (item.as_bytes()[1] - b'0') as i64 + d)
    }

    /// A day at or next to a month's edge (1st, 2nd, second-to-last, last; or the 10th or 15th)
    /// of a month of 2025, where off-by-one mistakes in splitting a range by month would show.
    fn edge_day(month: u8, which: u8) -> time::Date {
        let m = time::Month::try_from(month % 12 + 1).unwrap_or(time::Month::January);
        let last = m.length(2025);
        let d = [1, 2, 15, last - 1, last, 10][usize::from(which % 6)];
        time::Date::from_calendar_date(2025, m, d).unwrap_or(time::macros::date!(2025 - 01 - 01))
    }

    async fn price_pending(pool: &SqlitePool) {
        loop {
            let pending = unpriced_units(pool).await.expect("unpriced");
            if pending.is_empty() {
                return;
            }
            let priced: Vec<_> = pending
                .into_iter()
                .map(|(i, it, d)| {
                    let p = price(&i, &it, &d);
                    (i, it, d, p)
                })
                .collect();
            set_unit_prices(pool, &priced).await.expect("price");
        }
    }

    /// Per group: units, recognized, re-examined, not counted, savings, unpriced, reasons.
    type Cells = BTreeMap<String, (i64, i64, i64, i64, i64, i64, BTreeMap<String, i64>)>;

    /// The statistics by definition, from every stored decision.
    async fn recount(pool: &SqlitePool, from: &str, until: &str, by: StatsBy) -> Cells {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(i64, i64, String, Option<String>, String, Option<String>, Option<String>, String, String, Option<String>, i64, String, Option<String>)> =
            sqlx::query_as(
                "SELECT d.id, d.decided_at, i.code, d.visit_number, d.result_ref, d.item, d.ordered_item,
                        d.engine_verdict, d.decision, d.reason, d.counted, d.decided_on, d.department
                   FROM recognition_decision d JOIN institution i ON i.id = d.institution_id
                  ORDER BY d.id",
            )
            .fetch_all(pool)
            .await
            .expect("decisions");
        let mut units: BTreeMap<(String, String, String), (i64, i64, usize)> = BTreeMap::new();
        for (n, r) in rows.iter().enumerate() {
            let superseded = rows[n + 1..]
                .iter()
                .any(|l| l.2 == r.2 && l.4 == r.4 && l.3 == r.3);
            let Some(item) = r.6.clone().or_else(|| r.5.clone()) else {
                continue;
            };
            if superseded || r.7 != "recognizable" {
                continue;
            }
            let visit = r.3.clone().unwrap_or_else(|| format!("decision:{}", r.0));
            let e = units
                .entry((r.2.clone(), visit, item))
                .or_insert((r.1, r.0, n));
            if (r.1, r.0) > (e.0, e.1) {
                *e = (r.1, r.0, n);
            }
        }
        // A unit counts once, on the day of its current decision.
        let mut cells = Cells::new();
        for ((institution, _, item), (_, _, n)) in units {
            let r = &rows[n];
            if r.11.as_str() < from || r.11.as_str() > until {
                continue;
            }
            let key = match by {
                StatsBy::Item => item.clone(),
                StatsBy::Institution => institution.clone(),
                StatsBy::Department => {
                    format!("{institution}/{}", r.12.clone().unwrap_or_default())
                }
                StatsBy::Month => r.11[..7].to_owned(),
            };
            let recognized = r.8 == "recognize";
            let p = price(&institution, &item, &r.11).filter(|_| recognized);
            let c = cells.entry(key).or_default();
            c.0 += 1;
            if recognized {
                c.1 += 1;
                c.4 += p.unwrap_or(0);
                c.5 += i64::from(p.is_none());
            } else {
                if r.10 != 0 {
                    c.2 += 1;
                } else {
                    c.3 += 1;
                }
                *c.6.entry(r.9.clone().unwrap_or_default()).or_default() += 1;
            }
        }
        cells
    }

    async fn run(mut ops: Vec<Op>, ranges: Vec<(time::Date, time::Date)>) {
        ops.sort_by_key(|o| o.on);
        let dir = tempfile::tempdir().expect("tempdir");
        let index = crate::SqliteIndex::open(&dir.path().join("index.sqlite"))
            .await
            .expect("open");
        let pool = index.pool();
        for code in INSTITUTIONS {
            sqlx::query("INSERT INTO institution (code, created_at) VALUES (?, 0)")
                .bind(code)
                .execute(pool)
                .await
                .expect("institution");
        }
        sqlx::query("INSERT INTO person (public_id, created_at) VALUES ('p1', 0)")
            .execute(pool)
            .await
            .expect("person");
        for (k, o) in ops.iter().enumerate() {
            if o.reprice {
                reprice_units(pool, None, None).await.expect("reprice");
            }
            let on = iso(o.on);
            let institution = INSTITUTIONS[o.institution];
            let item = format!("I{}", o.item);
            let ordered = o.ordered.map(|i| format!("I{i}"));
            let (reason, counts) = REASONS[o.reason];
            let unit_item = ordered.clone().unwrap_or_else(|| item.clone());
            let d = NewRecognitionDecision {
                decided_at: 1_700_000_000 + k as i64,
                decided_on: on.clone(),
                institution_id: o.institution as i64 + 1,
                department: Some(format!("dept{}", o.result % 2)),
                user_id: None,
                actor: "doctor".into(),
                person: "p1".into(),
                visit_number: o.visit.map(|v| format!("V{v}")),
                result_kind: "lab_result".into(),
                result_ref: format!("R{}", o.result),
                performing_institution: "other".into(),
                item: Some(item),
                ordered_item: ordered,
                engine_verdict: if o.recognizable {
                    "recognizable"
                } else {
                    "reference_only"
                }
                .into(),
                engine_decision: "{}".into(),
                catalog_version: None,
                qualification_set: None,
                scope_set: None,
                policy_set: None,
                decision: if o.recognize {
                    "recognize"
                } else {
                    "re_examine"
                }
                .into(),
                reason: (!o.recognize).then(|| reason.to_owned()),
                note: None,
                record_sentence: String::new(),
                counted: o.recognize || counts,
                price_fen: price(institution, &unit_item, &on).filter(|_| o.recognize),
            };
            record_decision(pool, &d).await.expect("record");
        }
        price_pending(pool).await;
        for (from, until) in ranges {
            for by in [
                StatsBy::Item,
                StatsBy::Institution,
                StatsBy::Department,
                StatsBy::Month,
            ] {
                let got: Cells = statistics(pool, from, until, None, by)
                    .await
                    .expect("statistics")
                    .into_iter()
                    .filter(|c| c.units != 0)
                    .map(|c| {
                        (
                            c.key,
                            (
                                c.units,
                                c.recognized,
                                c.reexamined,
                                c.not_counted,
                                c.savings_fen,
                                c.unpriced,
                                c.reasons,
                            ),
                        )
                    })
                    .collect();
                let want = recount(pool, &iso(from), &iso(until), by).await;
                assert_eq!(got, want, "{by:?} over {from}..={until}");
            }
        }
        // Rebuilding from the decisions gives the same derived rows as keeping them up to date.
        let derived = |pool: SqlitePool| async move {
            let units: Vec<(i64, String, String, i64, Option<i64>)> = sqlx::query_as(
                "SELECT institution_id, visit, item, decision_id, price_fen FROM recognition_unit
                  ORDER BY 1, 2, 3",
            )
            .fetch_all(&pool)
            .await
            .expect("units");
            #[allow(clippy::type_complexity)]
            let rollup: Vec<(String, String, String, i64, String, i64, i64, String)> =
                sqlx::query_as(
                    "SELECT dim, grain, period, institution_id, key, units, savings_fen,
                        recognized || '/' || reexamined || '/' || not_counted || '/' || unpriced
                        || '/' || r01 || r02 || r03 || r04 || r05 || r06 || r98 || r99
                        || (SELECT json_group_object(key, value)
                              FROM (SELECT key, value FROM json_each(regional) ORDER BY key))
                   FROM recognition_rollup WHERE units <> 0 ORDER BY 1, 2, 3, 4, 5",
                )
                .fetch_all(&pool)
                .await
                .expect("rollup");
            (units, rollup)
        };
        let kept = derived(pool.clone()).await;
        let keys = rebuild_price_keys(pool).await.expect("keys");
        let prices: Vec<_> = keys
            .into_iter()
            .map(|(i, it, d)| {
                let p = price(&i, &it, &d);
                (i, it, d, p)
            })
            .collect();
        rebuild_units(pool, &prices).await.expect("rebuild");
        assert_eq!(derived(pool.clone()).await, kept);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn statistics_equal_a_recount_of_stored_decisions(
            ops in prop::collection::vec(op(), 1..120),
            ranges in prop::collection::vec((0..5u8, 0..6u8, 0..5u8, 0..6u8), 1..6),
        ) {
            let ranges = ranges
                .into_iter()
                .map(|(m1, w1, m2, w2)| {
                    let (a, b) = (edge_day(m1, w1), edge_day(m2, w2));
                    (a.min(b), a.max(b))
                })
                .collect();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(run(ops, ranges));
        }
    }

    #[test]
    fn ranges_are_read_as_months_and_at_most_half_a_month_of_days_at_each_end() {
        use time::macros::date;
        let show = |a, b| {
            pieces(a, b)
                .into_iter()
                .map(|p| {
                    format!(
                        "{}{}..{}",
                        if p.sign < 0 { "-" } else { "+" },
                        p.from,
                        p.until
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            show(date!(2025 - 01 - 01), date!(2025 - 12 - 31)),
            ["+2025-01..2025-12"]
        );
        assert_eq!(
            show(date!(2025 - 01 - 02), date!(2025 - 12 - 30)),
            [
                "+2025-01..2025-12",
                "-2025-01-01..2025-01-01",
                "-2025-12-31..2025-12-31"
            ]
        );
        assert_eq!(
            show(date!(2025 - 01 - 20), date!(2025 - 03 - 10)),
            [
                "+2025-02..2025-02",
                "+2025-01-20..2025-01-31",
                "+2025-03-01..2025-03-10"
            ]
        );
        assert_eq!(
            show(date!(2025 - 01 - 15), date!(2025 - 01 - 15)),
            ["+2025-01-15..2025-01-15"]
        );
        assert_eq!(
            show(date!(2024 - 02 - 01), date!(2024 - 02 - 29)),
            ["+2024-02..2024-02"]
        );
        // Every day of the range is counted once, whatever the range.
        let mut d = date!(2024 - 12 - 20);
        while d < date!(2025 - 03 - 05) {
            let until = d + time::Duration::days(70);
            for p in pieces(d, until) {
                let span = if p.grain == "day" {
                    (p.from.clone(), p.until.clone())
                } else {
                    (format!("{}-01", p.from), format!("{}-31", p.until))
                };
                assert!(span.0 <= span.1, "{p:?}");
            }
            let mut day = d - time::Duration::days(40);
            while day < until + time::Duration::days(40) {
                let s = iso(day);
                let weight: i64 = pieces(d, until)
                    .iter()
                    .filter(|p| {
                        if p.grain == "day" {
                            p.from <= s && s <= p.until
                        } else {
                            p.from.as_str() <= &s[..7] && &s[..7] <= p.until.as_str()
                        }
                    })
                    .map(|p| p.sign)
                    .sum();
                assert_eq!(
                    weight,
                    i64::from(d <= day && day <= until),
                    "{d}..{until} at {s}"
                );
                day = day.next_day().unwrap_or(day);
            }
            d = d.next_day().unwrap_or(d);
        }
    }
}
