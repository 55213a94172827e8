//! SQL for reading results back (FHIR Observation / DiagnosticReport searches). Statements are
//! assembled from constant pieces; every value is bound. Newest first by (time, id) with a
//! keyset cursor, so each page walks an index from where the last one stopped: by code
//! `lab_result_code`, by person `lab_result_patient`, by date alone `lab_result_observed`.

use crate::sql::*;
use crate::sqlite::*;
use crate::writer::*;
use async_trait::async_trait;
use huren_access::AuditEvent;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use huren_archive::results::{Cursor, ObservationRow, OrderRow, ResultQuery};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row, SqlitePool};

enum Val {
    I(i64),
    S(String),
}

struct Where {
    sql: String,
    vals: Vec<Val>,
}

impl Where {
    fn new() -> Self {
        Where {
            sql: String::new(),
            vals: Vec::new(),
        }
    }

    fn push(&mut self, clause: &str, vals: impl IntoIterator<Item = Val>) {
        self.sql.push_str(" AND ");
        self.sql.push_str(clause);
        self.vals.extend(vals);
    }

    fn args(self) -> Result<SqliteArguments, sqlx::Error> {
        let mut a = SqliteArguments::default();
        for v in self.vals {
            match v {
                Val::I(i) => a.add(i),
                Val::S(s) => a.add(s),
            }
            .map_err(sqlx::Error::Encode)?;
        }
        Ok(a)
    }
}

fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The filters both searches share; `t` is the row's time column, `code`/`system` its code.
fn filters(q: &ResultQuery, t: &str, code: &str, system: &str) -> Where {
    let mut w = Where::new();
    if let Some(persons) = &q.persons {
        w.push(
            &format!(
                "r.patient_id IN (SELECT p2.id FROM patient p2 JOIN person pe2 ON pe2.id = p2.person_id
                   WHERE pe2.public_id IN ({}))",
                marks(persons.len())
            ),
            persons.iter().map(|p| Val::S(p.clone())),
        );
    }
    if let Some((persons, own)) = &q.reach_or {
        // A hospital system: its institutions' rows, and its encounters' persons.
        w.push(
            &format!(
                "(r.patient_id IN (SELECT p2.id FROM patient p2 JOIN person pe2 ON pe2.id = p2.person_id
                   WHERE pe2.public_id IN ({})) OR r.performing_institution_id IN ({}))",
                marks(persons.len()),
                marks(own.len())
            ),
            persons
                .iter()
                .map(|p| Val::S(p.clone()))
                .chain(own.iter().map(|i| Val::I(*i))),
        );
    }
    if !q.codes.is_empty() {
        // With a person, walk that person's results (hundreds) rather than every result with
        // the code (tens of thousands): the unary `+` keeps the planner off the code index.
        let code = if q.persons.is_some() {
            format!("+{code}")
        } else {
            code.to_owned()
        };
        let code = code.as_str();
        let mut any = Vec::new();
        let mut vals = Vec::new();
        for c in &q.codes {
            let mut one = format!("{code} = ?");
            vals.push(Val::S(c.code.clone()));
            if !c.systems.is_empty() {
                one.push_str(&format!(" AND {system} IN ({})", marks(c.systems.len())));
                vals.extend(c.systems.iter().map(|s| Val::S(s.clone())));
            }
            if let Some(inst) = &c.institution {
                one.push_str(
                    " AND r.performing_institution_id = (SELECT id FROM institution WHERE code = ? COLLATE NOCASE)",
                );
                vals.push(Val::S(inst.clone()));
            }
            any.push(format!("({one})"));
        }
        w.push(&format!("({})", any.join(" OR ")), vals);
    }
    if let Some((system, value)) = &q.identifier {
        match system {
            Some(sys) => w.push(
                "r.identifier_value = ? AND r.identifier_system = ?",
                [Val::S(value.clone()), Val::S(sys.clone())],
            ),
            None => w.push("r.identifier_value = ?", [Val::S(value.clone())]),
        }
    }
    if let Some(from) = q.from {
        w.push(&format!("{t} >= ?"), [Val::I(from)]);
    }
    if let Some(until) = q.until {
        w.push(&format!("{t} < ?"), [Val::I(until)]);
    }
    if let Some(statuses) = &q.statuses {
        w.push(
            &format!("r.status IN ({})", marks(statuses.len())),
            statuses.iter().map(|s| Val::S(s.clone())),
        );
    }
    match q.after {
        // DESC puts rows without a time last.
        Some(Cursor {
            instant: Some(at),
            id,
        }) => w.push(
            &format!("({t} < ? OR ({t} = ? AND r.id < ?) OR {t} IS NULL)"),
            [Val::I(at), Val::I(at), Val::I(id)],
        ),
        Some(Cursor { instant: None, id }) => {
            w.push(&format!("({t} IS NULL AND r.id < ?)"), [Val::I(id)])
        }
        None => {}
    }
    w
}

const OBSERVATION: &str = "SELECT r.id, pe.public_id, p.issuer, p.patient_id, i.code, r.performing_lab, r.report_id,
        r.identifier_system, r.identifier_value, r.value_type, r.code, r.code_text, r.code_system, r.value,
        r.value_num, r.comparator, r.unit, r.unit_ucum, r.reference_range, r.abnormal_flag, r.status, r.specimen,
        r.observed_at, r.observed_instant, r.reported_at, r.reported_instant, r.superseded_by
   FROM lab_result r JOIN patient p ON p.id = r.patient_id JOIN person pe ON pe.id = p.person_id
   JOIN institution i ON i.id = r.performing_institution_id";

fn pair(r: &SqliteRow, a: usize) -> Option<(String, String)> {
    match (
        r.get::<Option<String>, _>(a),
        r.get::<Option<String>, _>(a + 1),
    ) {
        (Some(s), Some(v)) => Some((s, v)),
        (None, Some(v)) => Some((String::new(), v)),
        _ => None,
    }
}

fn observation_row(r: &SqliteRow) -> ObservationRow {
    ObservationRow {
        id: r.get(0),
        person: r.get(1),
        issuer: r.get(2),
        patient_id: r.get(3),
        institution: r.get(4),
        performing_lab: r.get(5),
        report_id: r.get(6),
        identifier: pair(r, 7),
        value_type: r.get(9),
        code: r.get(10),
        code_text: r.get(11),
        code_system: r.get(12),
        value: r.get(13),
        value_num: r.get(14),
        comparator: r.get(15),
        unit: r.get(16),
        unit_ucum: r.get(17),
        reference_range: r.get(18),
        abnormal_flag: r.get(19),
        status: r.get(20),
        specimen: r.get(21),
        observed_at: r.get(22),
        observed_instant: r.get(23),
        reported_at: r.get(24),
        reported_instant: r.get(25),
        superseded_by: r.get(26),
        catalog_item: None,
    }
}

pub async fn search_observations(
    pool: &SqlitePool,
    q: &ResultQuery,
) -> Result<Vec<ObservationRow>, sqlx::Error> {
    // Lab results only: every Observation huren holds is category `laboratory`.
    if q.category
        .is_some_and(|c| c != huren_archive::model::ReportCategory::Lab)
    {
        return Ok(Vec::new());
    }
    let mut w = filters(q, "r.observed_instant", "r.code", "r.code_system");
    w.vals.push(Val::I(i64::from(q.limit)));
    let sql = format!(
        "{OBSERVATION} WHERE r.superseded_by IS NULL{}
         ORDER BY r.observed_instant DESC, r.id DESC LIMIT ?",
        w.sql
    );
    let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), w.args()?)
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(observation_row).collect())
}

pub async fn observation(
    pool: &SqlitePool,
    id: i64,
) -> Result<Option<ObservationRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{OBSERVATION} WHERE r.id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(observation_row))
}

const ORDER: &str = "SELECT r.id, pe.public_id, p.issuer, p.patient_id, i.code, r.category,
        COALESCE(s.study_uid, r.study_uid), r.accession_number, r.placer_order, r.filler_order,
        r.identifier_system, r.identifier_value, r.procedure_code, r.procedure_code_system, r.procedure_text,
        r.text, r.status, r.specimen, r.effective_at, r.effective_instant, r.reported_at, r.reported_instant,
        r.superseded_by
   FROM report r JOIN patient p ON p.id = r.patient_id JOIN person pe ON pe.id = p.person_id
   JOIN institution i ON i.id = r.performing_institution_id LEFT JOIN study s ON s.id = r.study_id";

fn order_row(r: &SqliteRow) -> OrderRow {
    OrderRow {
        id: r.get(0),
        person: r.get(1),
        issuer: r.get(2),
        patient_id: r.get(3),
        institution: r.get(4),
        category: r.get(5),
        study_uid: r.get(6),
        accession_number: r.get(7),
        placer_order: r.get(8),
        filler_order: r.get(9),
        identifier: pair(r, 10),
        procedure_code: r.get(12),
        procedure_code_system: r.get(13),
        procedure_text: r.get(14),
        text: r.get(15),
        status: r.get(16),
        specimen: r.get(17),
        effective_at: r.get(18),
        effective_instant: r.get(19),
        reported_at: r.get(20),
        reported_instant: r.get(21),
        superseded_by: r.get(22),
        results: Vec::new(),
    }
}

async fn with_results(
    pool: &SqlitePool,
    mut orders: Vec<OrderRow>,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    if orders.is_empty() {
        return Ok(orders);
    }
    let sql = format!(
        "SELECT report_id, id FROM lab_result WHERE report_id IN ({}) ORDER BY id",
        marks(orders.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for o in &orders {
        q = q.bind(o.id);
    }
    for r in q.fetch_all(pool).await? {
        let (report, id): (i64, i64) = (r.get(0), r.get(1));
        if let Some(o) = orders.iter_mut().find(|o| o.id == report) {
            o.results.push(id);
        }
    }
    Ok(orders)
}

pub async fn search_orders(
    pool: &SqlitePool,
    q: &ResultQuery,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let mut w = filters(
        q,
        "r.effective_instant",
        "r.procedure_code",
        "r.procedure_code_system",
    );
    if let Some(c) = q.category {
        w.push("r.category = ?", [Val::S(c.code().to_owned())]);
    }
    w.vals.push(Val::I(i64::from(q.limit)));
    let sql = format!(
        "{ORDER} WHERE r.superseded_by IS NULL{}
         ORDER BY r.effective_instant DESC, r.id DESC LIMIT ?",
        w.sql
    );
    let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), w.args()?)
        .fetch_all(pool)
        .await?;
    with_results(pool, rows.iter().map(order_row).collect()).await
}

pub async fn order(pool: &SqlitePool, id: i64) -> Result<Option<OrderRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{ORDER} WHERE r.id = ?")))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(
        with_results(pool, row.as_ref().map(order_row).into_iter().collect())
            .await?
            .pop(),
    )
}

#[async_trait]
impl ResultIndex for SqliteIndex {
    async fn commit_oru(&self, oru: NewOru, audit: AuditEvent) -> Result<OruOutcome, StoreError> {
        self.through_writer(|done| Job::Oru(Box::new(oru), audit, done))
            .await
    }

    async fn search_observations(
        &self,
        q: &huren_archive::results::ResultQuery,
    ) -> Result<Vec<huren_archive::results::ObservationRow>, StoreError> {
        search_observations(&self.pool, q).await.map_err(db)
    }

    async fn observation(
        &self,
        id: i64,
    ) -> Result<Option<huren_archive::results::ObservationRow>, StoreError> {
        observation(&self.pool, id).await.map_err(db)
    }

    async fn search_orders(
        &self,
        q: &huren_archive::results::ResultQuery,
    ) -> Result<Vec<huren_archive::results::OrderRow>, StoreError> {
        search_orders(&self.pool, q).await.map_err(db)
    }

    async fn order(&self, id: i64) -> Result<Option<huren_archive::results::OrderRow>, StoreError> {
        order(&self.pool, id).await.map_err(db)
    }

    async fn person_lab_results(
        &self,
        public_id: &str,
        limit: u32,
        as_of: Option<i64>,
    ) -> Result<Vec<TimelineLab>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.code, r.code_text, r.code_system, r.value, r.unit, r.reference_range, r.abnormal_flag,
                    r.status, r.observed_at, r.observed_instant, r.order_text, i.code, r.performing_lab,
                    p.patient_id, p.issuer, r.reported_at, r.reported_instant
               FROM lab_result r JOIN patient p ON p.id = r.patient_id
               JOIN person pe ON pe.id = p.person_id JOIN institution i ON i.id = r.performing_institution_id
              WHERE pe.public_id = ?1
                AND (CASE WHEN ?3 IS NULL THEN r.superseded_by IS NULL
                          ELSE r.created_at <= ?3 AND (r.superseded_by IS NULL
                               OR (SELECT n.created_at FROM lab_result n WHERE n.id = r.superseded_by) > ?3) END)
              ORDER BY r.observed_instant DESC NULLS LAST, r.id DESC LIMIT ?2",
        )
        .bind(public_id)
        .bind(i64::from(limit))
        .bind(as_of)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| TimelineLab {
                id: r.get(0),
                code: r.get(1),
                code_text: r.get(2),
                code_system: r.get(3),
                value: r.get(4),
                unit: r.get(5),
                reference_range: r.get(6),
                abnormal_flag: r.get(7),
                status: r.get(8),
                observed_at: r.get(9),
                observed_instant: r.get(10),
                order_text: r.get(11),
                performing_institution: r.get(12),
                performing_lab: r.get(13),
                patient_id: r.get(14),
                issuer: r.get(15),
                reported_at: r.get(16),
                reported_instant: r.get(17),
                catalog_item: None,
            })
            .collect())
    }

    async fn person_reports(
        &self,
        public_id: &str,
        limit: u32,
        as_of: Option<i64>,
    ) -> Result<Vec<TimelineReport>, StoreError> {
        // As of a moment: received by then, and not yet replaced by a row received by then.
        let rows = sqlx::query(
            "SELECT r.id, COALESCE(s.study_uid, r.study_uid), r.accession_number, r.procedure_text, COALESCE(r.text, ''), r.status,
                    r.reported_at, r.reported_instant, i.code
               FROM report r JOIN patient p ON p.id = r.patient_id JOIN person pe ON pe.id = p.person_id
               JOIN institution i ON i.id = r.performing_institution_id LEFT JOIN study s ON s.id = r.study_id
              WHERE pe.public_id = ?1 AND r.category = 'RAD'
                AND (CASE WHEN ?3 IS NULL THEN r.superseded_by IS NULL
                          ELSE r.created_at <= ?3 AND (r.superseded_by IS NULL
                               OR (SELECT n.created_at FROM report n WHERE n.id = r.superseded_by) > ?3) END)
              ORDER BY r.reported_instant DESC NULLS LAST, r.id DESC LIMIT ?2",
        )
        .bind(public_id)
        .bind(i64::from(limit))
        .bind(as_of)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| TimelineReport {
                id: r.get(0),
                study_instance_uid: r.get(1),
                accession_number: r.get(2),
                procedure_text: r.get(3),
                text: r.get(4),
                status: r.get(5),
                reported_at: r.get(6),
                reported_instant: r.get(7),
                performing_institution: r.get(8),
            })
            .collect())
    }
}
