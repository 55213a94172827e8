//! Recognition decisions and order-time reminders in SQL: each decision supersedes the
//! earlier ones on the same result and visit, and keeps the statistics roll-up's unit of that
//! result current (`refresh_unit`).

use sqlx::{Row, SqlitePool};

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
    // Every decision is some unit's: its item (or the ordered one), '' outside the catalog.
    let mut keys: Vec<(String, String)> = vec![(
        unit(id, &d.visit_number),
        d.ordered_item
            .clone()
            .or_else(|| d.item.clone())
            .unwrap_or_default(),
    )];
    for (old, visit, item) in &superseded {
        let k = (unit(*old, visit), item.clone().unwrap_or_default());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for (visit, item) in &keys {
        refresh_unit(
            &mut tx,
            d.institution_id,
            visit,
            item,
            Some(id),
            d.price_fen,
        )
        .await?;
    }
    tx.commit().await?;
    Ok((id, superseded.len() as u64))
}

/// A recorded decision.
pub async fn decision(
    pool: &SqlitePool,
    id: i64,
) -> Result<Option<huren_archive::model::StoredDecision>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT d.id, i.code, d.superseded_by, d.decided_at, d.decided_on, d.institution_id,
                d.department, d.user_id, d.actor, pe.public_id, d.visit_number, d.result_kind,
                d.result_ref, d.performing_institution, d.item, d.ordered_item, d.engine_verdict,
                d.engine_decision, d.catalog_version, d.qualification_set, d.scope_set,
                d.policy_set, d.decision, d.reason, d.note, d.record_sentence, d.counted
           FROM recognition_decision d JOIN institution i ON i.id = d.institution_id
           JOIN person pe ON pe.id = d.person_id
          WHERE d.id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| huren_archive::model::StoredDecision {
        id: r.get(0),
        institution: r.get(1),
        superseded_by: r.get(2),
        recorded: huren_archive::model::NewRecognitionDecision {
            decided_at: r.get(3),
            decided_on: r.get(4),
            institution_id: r.get(5),
            department: r.get(6),
            user_id: r.get(7),
            actor: r.get(8),
            person: r.get(9),
            visit_number: r.get(10),
            result_kind: r.get(11),
            result_ref: r.get(12),
            performing_institution: r.get(13),
            item: r.get(14),
            ordered_item: r.get(15),
            engine_verdict: r.get(16),
            engine_decision: r.get(17),
            catalog_version: r.get(18),
            qualification_set: r.get(19),
            scope_set: r.get(20),
            policy_set: r.get(21),
            decision: r.get(22),
            reason: r.get(23),
            note: r.get(24),
            record_sentence: r.get(25),
            counted: r.get(26),
            // Prices are the statistics' business (the units carry them).
            price_fen: None,
        },
    }))
}

/// A unit's state as stored: (decision id, reminder id, day, department, decision, reason,
/// counted, eligible, shown, opened).
type UnitState = (
    Option<i64>,
    Option<i64>,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
);

/// Makes a unit's row its current state again (docs/recognition.md, "Units"):
/// - the latest non-superseded decision at this visit on any result of the item (or ordered
///   as it): decided, eligible when the engine said recognizable then, shown when a reminder at
///   the visit listed the item before it;
/// - else, when reminders at the visit listed the item: "none", eligible when any listed result
///   was recognizable, opened when a person of the institution opened one of them since, on the
///   latest reminder's day;
/// - else no row.
///
/// Only the newest decision's price is known here; an older decision that becomes current again
/// is left to be priced (`priced` 0).
pub(crate) async fn refresh_unit(
    tx: &mut sqlx::SqliteConnection,
    institution: i64,
    visit: &str,
    item: &str,
    newest: Option<i64>,
    price_fen: Option<i64>,
) -> Result<(), sqlx::Error> {
    let by_decision = visit
        .strip_prefix("decision:")
        .and_then(|n| n.parse::<i64>().ok());
    #[allow(clippy::type_complexity)]
    let decided: Option<(
        i64,
        i64,
        String,
        Option<String>,
        String,
        Option<String>,
        i64,
        i64,
    )> = sqlx::query_as(
        "SELECT d.id, d.decided_at, d.decided_on, d.department, d.decision, d.reason, d.counted,
                    d.engine_verdict = 'recognizable'
               FROM recognition_decision d
              WHERE d.institution_id = ?1 AND d.superseded_by IS NULL
                AND COALESCE(d.ordered_item, d.item, '') = ?3
                AND ((?4 IS NULL AND d.visit_number = ?2) OR (d.id = ?4 AND d.visit_number IS NULL))
              ORDER BY d.decided_at DESC, d.id DESC LIMIT 1",
    )
    .bind(institution)
    .bind(visit)
    .bind(item)
    .bind(by_decision)
    .fetch_optional(&mut *tx)
    .await?;
    // The reminders at this visit that listed the item: the first time, the latest one (its
    // day and department), whether any listed result was eligible or was opened since.
    #[allow(clippy::type_complexity)]
    let shown: Option<(i64, i64, String, Option<String>, i64, i64)> = if item.is_empty() {
        None
    } else {
        sqlx::query_as(
            "SELECT MIN(r.shown_at), MAX(r.id), MAX(r.shown_on), NULL,
                    MAX(x.engine_verdict = 'recognizable'), MAX(x.opened_at IS NOT NULL)
               FROM recognition_reminder r
               JOIN recognition_reminder_result x ON x.reminder_id = r.id
              WHERE r.institution_id = ?1 AND r.visit = ?2
                AND COALESCE(r.ordered_item, x.item, '') = ?3
             HAVING COUNT(*) > 0",
        )
        .bind(institution)
        .bind(visit)
        .bind(item)
        .fetch_optional(&mut *tx)
        .await?
    };
    let state: Option<UnitState> = match (decided, shown) {
        (Some((id, at, day, department, decision, reason, counted, eligible)), shown) => Some((
            Some(id),
            None,
            day,
            department.unwrap_or_default(),
            decision,
            reason.unwrap_or_default(),
            counted,
            eligible,
            i64::from(shown.is_some_and(|s| s.0 <= at)),
            0,
        )),
        (None, Some((_, reminder, day, _, eligible, opened))) => {
            let department: Option<String> =
                sqlx::query_scalar("SELECT department FROM recognition_reminder WHERE id = ?")
                    .bind(reminder)
                    .fetch_one(&mut *tx)
                    .await?;
            Some((
                None,
                Some(reminder),
                day,
                department.unwrap_or_default(),
                "none".into(),
                String::new(),
                1,
                eligible,
                1,
                opened,
            ))
        }
        (None, None) => None,
    };
    let existing: Option<UnitState> = sqlx::query_as(
        "SELECT decision_id, reminder_id, decided_on, department, decision, reason, counted,
                eligible, shown, opened
           FROM recognition_unit WHERE institution_id = ? AND visit = ? AND item = ?",
    )
    .bind(institution)
    .bind(visit)
    .bind(item)
    .fetch_optional(&mut *tx)
    .await?;
    if existing == state {
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
    if let Some((
        decision_id,
        reminder_id,
        day,
        department,
        decision,
        reason,
        counted,
        eligible,
        shown,
        opened,
    )) = state
    {
        // A recognition's price is the receiving institution's on the decision day: known for
        // the decision just recorded, looked up later for any other.
        // (A result outside the catalog has no price: nothing to look up.)
        let known = decision != "recognize"
            || item.is_empty()
            || (decision_id.is_some() && decision_id == newest);
        sqlx::query(
            "INSERT INTO recognition_unit (institution_id, visit, item, decision_id, reminder_id,
                decided_on, month, department, decision, reason, counted, eligible, shown, opened,
                price_fen, priced)
             VALUES (?, ?, ?, ?, ?, ?, substr(?, 1, 7), ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(institution)
        .bind(visit)
        .bind(item)
        .bind(decision_id)
        .bind(reminder_id)
        .bind(&day)
        .bind(&day)
        .bind(department)
        .bind(&decision)
        .bind(reason)
        .bind(counted)
        .bind(eligible)
        .bind(shown)
        .bind(opened)
        // Only the newest decision's price is known, and only for a catalogued item: an older
        // decision made current again, or a result outside the catalog, never takes it (the
        // property test below found a superseded decision's unit taking the new one's price).
        .bind(
            if decision == "recognize"
                && !item.is_empty()
                && decision_id.is_some()
                && decision_id == newest
            {
                price_fen
            } else {
                None
            },
        )
        .bind(known as i64)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Records a reminder shown and what it listed; the units of the items it listed (when no
/// decision is theirs yet) follow. Returns its id.
pub async fn record_reminder(
    pool: &SqlitePool,
    r: &huren_archive::model::NewReminder,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let row: Option<(i64, String)> = sqlx::query_as(
        "INSERT INTO recognition_reminder (shown_at, shown_on, institution_id, department, user_id,
            actor, person_id, visit, moment, ordered_item)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, pe.id,
                COALESCE(?7, 'reminder:' || (SELECT COALESCE(MAX(id), 0) + 1 FROM recognition_reminder)),
                ?8, ?9
           FROM person pe WHERE pe.public_id = ?10
         RETURNING id, visit",
    )
    .bind(r.shown_at)
    .bind(&r.shown_on)
    .bind(r.institution_id)
    .bind(&r.department)
    .bind(r.user_id)
    .bind(&r.actor)
    .bind(&r.visit_number)
    .bind(&r.moment)
    .bind(&r.ordered_item)
    .bind(&r.person)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, visit)) = row else {
        return Ok(None);
    };
    let mut items: Vec<String> = Vec::new();
    for x in &r.results {
        sqlx::query(
            "INSERT OR IGNORE INTO recognition_reminder_result
                (reminder_id, result_kind, result_ref, item, engine_verdict)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(&x.result_kind)
        .bind(&x.result_ref)
        .bind(&x.item)
        .bind(&x.engine_verdict)
        .execute(&mut *tx)
        .await?;
        let key = r.ordered_item.clone().or_else(|| x.item.clone());
        if let Some(k) = key.filter(|k| !k.is_empty())
            && !items.contains(&k)
        {
            items.push(k);
        }
    }
    for item in &items {
        refresh_unit(&mut tx, r.institution_id, &visit, item, None, None).await?;
    }
    tx.commit().await?;
    Ok(Some(id))
}

/// A person of `institution` opened a study its reminders listed and no decision followed yet:
/// the listings are marked opened and their units follow. Returns how many listings.
pub async fn reminder_opened(
    pool: &SqlitePool,
    institution: i64,
    study_uid: &str,
    at: i64,
) -> Result<u64, sqlx::Error> {
    // Most reads open no reminded study: a read-only look first.
    let any: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM recognition_reminder_result x
                          JOIN recognition_reminder r ON r.id = x.reminder_id
                         WHERE x.result_ref = ?1 AND x.opened_at IS NULL
                           AND x.result_kind = 'imaging_study' AND r.institution_id = ?2
                           AND r.shown_at <= ?3)",
    )
    .bind(study_uid)
    .bind(institution)
    .bind(at)
    .fetch_one(pool)
    .await?;
    if !any {
        return Ok(0);
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    // (SQLite's RETURNING sees only the updated table: the keys are read first.)
    const LISTED: &str = "FROM recognition_reminder_result x
           JOIN recognition_reminder r ON r.id = x.reminder_id
          WHERE x.result_ref = ?1 AND x.opened_at IS NULL AND x.result_kind = 'imaging_study'
            AND r.institution_id = ?2 AND r.shown_at <= ?3";
    let keys: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.visit, COALESCE(r.ordered_item, x.item, '') {LISTED}"
    )))
    .bind(study_uid)
    .bind(institution)
    .bind(at)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE recognition_reminder_result SET opened_at = ?3
          WHERE (reminder_id, result_kind, result_ref) IN
                (SELECT x.reminder_id, x.result_kind, x.result_ref {LISTED})"
    )))
    .bind(study_uid)
    .bind(institution)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    let n = keys.len() as u64;
    let mut done: Vec<&(String, String)> = Vec::new();
    for k in &keys {
        if k.1.is_empty() || done.contains(&k) {
            continue;
        }
        done.push(k);
        refresh_unit(&mut tx, institution, &k.0, &k.1, None, None).await?;
    }
    tx.commit().await?;
    Ok(n)
}
