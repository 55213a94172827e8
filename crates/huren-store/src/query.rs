//! QIDO-RS / C-FIND queries as one SQL statement per request, whatever the level: lower-level
//! keys become EXISTS sub-queries, so round trips do not grow with the hierarchy.

use crate::sql::*;
use crate::sqlite::*;
use async_trait::async_trait;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use huren_archive::query::{Key, Level, Match, Matcher, Query};
use sqlx::Row as _;

fn column(key: Key) -> (&'static str, Level) {
    match key {
        Key::PatientName => ("p.name_raw", Level::Patient),
        Key::PatientId => ("p.patient_id", Level::Patient),
        Key::IssuerOfPatientId => ("p.issuer", Level::Patient),
        Key::PatientBirthDate => ("p.birth_date", Level::Patient),
        Key::PatientSex => ("p.sex", Level::Patient),
        Key::StudyInstanceUid => ("s.study_uid", Level::Study),
        Key::StudyDate => ("s.study_date", Level::Study),
        Key::StudyTime => ("s.study_time", Level::Study),
        Key::AccessionNumber => ("s.accession_number", Level::Study),
        Key::StudyId => ("s.study_id", Level::Study),
        Key::StudyDescription => ("s.description", Level::Study),
        Key::ReferringPhysicianName => ("s.referring_physician", Level::Study),
        Key::ModalitiesInStudy => ("se.modality", Level::Series),
        Key::SeriesInstanceUid => ("se.series_uid", Level::Series),
        Key::Modality => ("se.modality", Level::Series),
        Key::SeriesNumber => ("se.series_number", Level::Series),
        Key::SeriesDescription => ("se.description", Level::Series),
        Key::BodyPartExamined => ("se.body_part", Level::Series),
        Key::SopInstanceUid => ("i.sop_uid", Level::Instance),
        Key::SopClassUid => ("i.sop_class_uid", Level::Instance),
        Key::InstanceNumber => ("i.instance_number", Level::Instance),
    }
}

/// `*`/`?` wildcards to a LIKE pattern with `\` as escape.
fn like(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '*' => out.push('%'),
            '?' => out.push('_'),
            c => out.push(c),
        }
    }
    out
}

fn predicate(col: &str, m: &Matcher, nocase: bool, binds: &mut Vec<String>) -> String {
    let collate = if nocase { " COLLATE NOCASE" } else { "" };
    match m {
        Matcher::Single(v) => {
            binds.push(v.clone());
            format!("{col} = ?{collate}")
        }
        Matcher::Wildcard(v) => {
            binds.push(like(v));
            format!("{col} LIKE ? ESCAPE '\\'")
        }
        Matcher::Range(a, b) => {
            let mut parts = Vec::new();
            if let Some(a) = a {
                binds.push(a.clone());
                parts.push(format!("{col} >= ?"));
            }
            if let Some(b) = b {
                // An end date includes the whole day/time prefix: '20250301' ≤ '20250301…'.
                binds.push(format!("{b}\u{7f}"));
                parts.push(format!("{col} <= ?"));
            }
            format!("({})", parts.join(" AND "))
        }
        Matcher::List(vs) => {
            let marks = vec!["?"; vs.len()].join(", ");
            binds.extend(vs.iter().cloned());
            format!("{col} IN ({marks})")
        }
    }
}

/// `Wang^12*`: one trailing `*`, no `?`, no group separator.
fn prefix_within_group(m: &Matcher) -> bool {
    matches!(m, Matcher::Wildcard(v)
        if !v.contains('=') && !v.contains('?') && v.find('*') == Some(v.len() - 1))
}

/// The same test as [`person_name`] for a prefix within one group, on the name groups the
/// study carries (migration 0044), so that a newest-first scan reads its index alone.
fn study_patient_name(m: &Matcher, binds: &mut Vec<String>) -> String {
    any_column(
        &[
            "s.patient_name_alphabetic",
            "s.patient_name_ideographic",
            "s.patient_name_phonetic",
        ],
        m,
        binds,
    )
}

/// `m` on any of `cols` (names: case-insensitive).
fn any_column(cols: &[&str], m: &Matcher, binds: &mut Vec<String>) -> String {
    let parts: Vec<String> = cols.iter().map(|c| predicate(c, m, true, binds)).collect();
    format!("({})", parts.join(" OR "))
}

fn person_name(m: &Matcher, binds: &mut Vec<String>) -> String {
    // A name matches when any component group (or the whole value) matches: 徐* finds
    // 徐^明 in the ideographic group, Xu* finds it in the alphabetic one. A prefix pattern
    // without '=' can only match the whole value where it matches its first (alphabetic)
    // group, so the whole value is tested only for other patterns: one index range fewer.
    let cols: &[&str] = if prefix_within_group(m) {
        &["p.name_alphabetic", "p.name_ideographic", "p.name_phonetic"]
    } else {
        &[
            "p.name_raw",
            "p.name_alphabetic",
            "p.name_ideographic",
            "p.name_phonetic",
        ]
    };
    any_column(cols, m, binds)
}

/// How many patient records a name condition must match before a study query is driven by
/// date instead of by name (see [`Plan`]). Measured on the 1M-instance index: ranking costs
/// about 2 µs a matched study, reading studies newest first about 0.11 µs a study read; with
/// two studies a record, 1,000 records (2,000 studies) rank in ~4 ms, while a uniform newest-
/// first scan finds their first page of 101 within ~50,000 studies (~5.5 ms) — and common
/// names are found far sooner. Counting up to this many costs ~0.1 ms.
pub const MANY_NAMED: u32 = 1000;

/// Which way a study query reads the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// From the most selective condition (a name, an ID, a date range), ranking every match
    /// for the page: right when the conditions match few studies.
    ByConditions,
    /// Studies newest first (the `study_newest` index), each tested against the
    /// conditions, stopping at the page: right when they match many. A wildcard like `Wang^12*`
    /// matched 22,000 studies at 1M instances and ranking them all took 57 ms (p50).
    NewestFirst,
}

/// The patient records a name wildcard matches, counted up to [`MANY_NAMED`]: whether a study
/// query may be driven by date ([`Plan::NewestFirst`]). `None` when the query has no such
/// condition (another plan's question does not arise).
pub fn count_named(q: &Query, many: u32) -> Option<(String, Vec<String>)> {
    if !matches!(q.level, Level::Patient | Level::Study) || q.after_key.is_some() {
        return None;
    }
    // Only a prefix within one name group (`Wang^12*`, `王*`): the study carries its patient's
    // name groups (migration 0044), not the whole value other patterns may need.
    let c = q
        .conditions
        .iter()
        .find(|c| c.key == Key::PatientName && prefix_within_group(&c.matcher))?;
    let mut binds = Vec::new();
    let pred = person_name(&c.matcher, &mut binds);
    Some((
        format!("SELECT count(*) FROM (SELECT 1 FROM patient p WHERE {pred} LIMIT {many})"),
        binds,
    ))
}

pub fn build(q: &Query) -> (String, Vec<String>) {
    build_with(q, Plan::ByConditions)
}

pub fn build_with(q: &Query, plan: Plan) -> (String, Vec<String>) {
    let mut binds = Vec::new();
    let mut wheres: Vec<String> = Vec::new();
    let newest_first = plan == Plan::NewestFirst
        && matches!(q.level, Level::Patient | Level::Study)
        && q.after_key.is_none();
    // Order: newest studies first; series and instances by number.
    let (select, from, base, order): (_, _, _, &[(&str, bool)]) = match q.level {
        // CROSS JOIN keeps study the outer loop and INDEXED BY its date order, so the scan
        // stops at the page (SQLite query planner docs, "Manual Control Of Query Plans").
        Level::Patient | Level::Study if newest_first => (
            "s.id, NULL, NULL",
            "study s INDEXED BY study_newest CROSS JOIN patient p ON p.id = s.patient_id",
            "s.num_instances > 0",
            &[
                ("s.study_date", true),
                ("s.study_time", true),
                ("s.id", true),
            ],
        ),
        Level::Patient | Level::Study => (
            "s.id, NULL, NULL",
            "study s JOIN patient p ON p.id = s.patient_id",
            "s.num_instances > 0",
            &[
                ("s.study_date", true),
                ("s.study_time", true),
                ("s.id", true),
            ],
        ),
        Level::Series => (
            "s.id, se.id, NULL",
            "series se JOIN study s ON s.id = se.study_id JOIN patient p ON p.id = s.patient_id",
            "se.num_instances > 0",
            &[("se.series_number", false), ("se.id", false)],
        ),
        Level::Instance => (
            "s.id, se.id, i.id",
            "instance i JOIN series se ON se.id = i.series_id JOIN study s ON s.id = se.study_id JOIN patient p ON p.id = s.patient_id",
            "i.lifecycle = 'active'",
            &[("i.instance_number", false), ("i.id", false)],
        ),
    };
    wheres.push(base.to_owned());
    for c in &q.conditions {
        let (col, key_level) = column(c.key);
        let pred = if c.key == Key::PatientName && newest_first && prefix_within_group(&c.matcher) {
            study_patient_name(&c.matcher, &mut binds)
        } else if c.key == Key::PatientName {
            person_name(&c.matcher, &mut binds)
        } else {
            predicate(
                col,
                &c.matcher,
                c.key == Key::ReferringPhysicianName,
                &mut binds,
            )
        };
        let level_rank = |l: Level| match l {
            Level::Patient | Level::Study => 0,
            Level::Series => 1,
            Level::Instance => 2,
        };
        let depth = level_rank(q.level);
        let need = level_rank(key_level);
        let pred = if need <= depth {
            pred
        } else if key_level == Level::Series {
            format!(
                "EXISTS (SELECT 1 FROM series se WHERE se.study_id = s.id AND se.num_instances > 0 AND {pred})"
            )
        } else if depth == 1 {
            format!(
                "EXISTS (SELECT 1 FROM instance i WHERE i.series_id = se.id AND i.lifecycle = 'active' AND {pred})"
            )
        } else {
            format!(
                "EXISTS (SELECT 1 FROM instance i WHERE i.study_id = s.id AND i.lifecycle = 'active' AND {pred})"
            )
        };
        wheres.push(pred);
    }
    if let Some(person) = &q.person {
        // Records of the person(s) holding the number, where it agrees with the record.
        binds.push(person.system.clone());
        binds.push(person.blind.clone());
        wheres.push(
            "p.person_id IN (SELECT hp.person_id FROM patient_identifier hi JOIN patient hp ON hp.id = hi.patient_id
              WHERE hi.system = ? AND hi.blind = ? AND hi.consistent = 1)"
                .to_owned(),
        );
    }
    if let Some(persons) = &q.persons_in {
        // Integers from the index itself, never from a request: safe to write inline.
        let list = |keys: &[i64]| {
            keys.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let persons = list(persons);
        wheres.push(match &q.institutions_or {
            // A hospital system: its institutions' studies, and its encounters' persons. Both
            // terms filter rows the query's own keys found: the unary `+` keeps the planner from
            // driving the query by them (an institution's studies are most of the index; the
            // 1M-instance wildcard QIDO went from 107 to 356 ms p99 without it).
            Some(own) => format!(
                "(+p.person_id IN ({persons}) OR +s.institution_id IN ({}))",
                list(own)
            ),
            None => format!("p.person_id IN ({persons})"),
        });
    }
    let key_col = match q.level {
        Level::Patient | Level::Study => "s.id",
        Level::Series => "se.id",
        Level::Instance => "i.id",
    };
    // Keyset pages (C-FIND beyond one page) follow the key alone.
    let order: Vec<(&str, bool)> = if let Some(after) = q.after_key {
        wheres.push(format!("{key_col} > {after}"));
        vec![(key_col, false)]
    } else {
        order.to_vec()
    };
    let lower = match q.level {
        Level::Patient | Level::Study => "NULL, NULL, NULL, NULL, NULL, NULL",
        _ => {
            "se.series_uid, se.modality, se.series_number, se.description, se.body_part, se.num_instances"
        }
    };
    let inst = match q.level {
        Level::Instance => {
            "i.sop_uid, i.sop_class_uid, i.instance_number, i.rows, i.columns, i.number_of_frames, i.transfer_syntax_uid, i.blob_key, i.pixel_layout, i.size"
        }
        _ => "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
    };
    let inner_order = order
        .iter()
        .map(|(c, desc)| format!("{c}{}", if *desc { " DESC" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ");
    let order_cols = order
        .iter()
        .enumerate()
        .map(|(k, (c, _))| format!("{c} AS o{k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let outer_order = order
        .iter()
        .enumerate()
        .map(|(k, (_, desc))| format!("page.o{k}{}", if *desc { " DESC" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ");
    let page_join = match q.level {
        Level::Patient | Level::Study => {
            "study s ON s.id = page.k JOIN patient p ON p.id = s.patient_id"
        }
        Level::Series => {
            "series se ON se.id = page.k JOIN study s ON s.id = se.study_id JOIN patient p ON p.id = s.patient_id"
        }
        Level::Instance => {
            "instance i ON i.id = page.k JOIN series se ON se.id = i.series_id JOIN study s ON s.id = se.study_id JOIN patient p ON p.id = s.patient_id"
        }
    };
    // Two phases in one statement. The inner query picks the page from keys and sort columns
    // only, which indexes cover (study_patient_page, study_newest), so a condition that
    // matches many rows costs index entries, not table rows; the outer one reads the page's
    // rows. The page comes back as one JSON text (an array of row arrays, in `Row`'s field
    // order) instead of one sqlx row per match: copying each row's values out of SQLite was a
    // third of a QIDO request's CPU. `json_group_array(… ORDER BY …)` (SQLite ≥ 3.44) keeps the
    // page's order.
    let sql = format!(
        "SELECT json_group_array(json_array({select}, p.name_raw, p.patient_id, p.issuer, p.birth_date, p.sex,
                s.study_uid, s.study_date, s.study_time, s.accession_number, s.study_id, s.description, s.referring_physician,
                s.modalities, s.num_series, s.num_instances, {lower}, {inst}) ORDER BY {outer_order})
         FROM (SELECT {key_col} AS k, {order_cols} FROM {from} WHERE {} ORDER BY {inner_order} LIMIT {} OFFSET {}) AS page
         JOIN {page_join}",
        wheres.join(" AND "),
        q.limit,
        q.offset
    );
    (sql, binds)
}

/// One match as SQLite's `json_array` gives it (see [`build`]): serde reads a JSON array into
/// these fields in order.
#[derive(serde::Deserialize)]
pub struct Row {
    study_key: Option<i64>,
    series_key: Option<i64>,
    instance_key: Option<i64>,
    name_raw: Option<String>,
    patient_id: Option<String>,
    issuer: Option<String>,
    birth_date: Option<String>,
    sex: Option<String>,
    study_uid: Option<String>,
    study_date: Option<String>,
    study_time: Option<String>,
    accession_number: Option<String>,
    study_id: Option<String>,
    description: Option<String>,
    referring_physician: Option<String>,
    modalities: Option<String>,
    num_series: Option<i64>,
    num_instances: Option<i64>,
    series_uid: Option<String>,
    modality: Option<String>,
    series_number: Option<i64>,
    series_description: Option<String>,
    body_part: Option<String>,
    series_instances: Option<i64>,
    sop_uid: Option<String>,
    sop_class_uid: Option<String>,
    instance_number: Option<i64>,
    rows: Option<i64>,
    columns: Option<i64>,
    number_of_frames: Option<i64>,
    transfer_syntax_uid: Option<String>,
    blob_key: Option<String>,
    pixel_layout: Option<String>,
    size: Option<i64>,
}

pub fn to_match(r: Row, level: Level) -> Match {
    Match {
        patient_name: r.name_raw,
        patient_id: r.patient_id.unwrap_or_default(),
        issuer_of_patient_id: r.issuer.unwrap_or_default(),
        patient_birth_date: r.birth_date,
        patient_sex: r.sex,
        study_key: r.study_key.unwrap_or_default(),
        study_instance_uid: r.study_uid.unwrap_or_default(),
        study_date: r.study_date,
        study_time: r.study_time,
        accession_number: r.accession_number,
        study_id: r.study_id,
        study_description: r.description,
        referring_physician_name: r.referring_physician,
        modalities_in_study: r.modalities.unwrap_or_default(),
        study_related_series: r.num_series.unwrap_or_default(),
        study_related_instances: r.num_instances.unwrap_or_default(),
        series_key: if level == Level::Series || level == Level::Instance {
            r.series_key
        } else {
            None
        },
        series_instance_uid: r.series_uid,
        modality: r.modality,
        series_number: r.series_number,
        series_description: r.series_description,
        body_part_examined: r.body_part,
        series_related_instances: r.series_instances,
        instance_key: if level == Level::Instance {
            r.instance_key
        } else {
            None
        },
        sop_instance_uid: r.sop_uid,
        sop_class_uid: r.sop_class_uid,
        instance_number: r.instance_number,
        rows: r.rows,
        columns: r.columns,
        number_of_frames: r.number_of_frames,
        transfer_syntax_uid: r.transfer_syntax_uid,
        blob_key: r.blob_key,
        pixel_layout: r.pixel_layout,
        object_size: r.size,
    }
}

/// How much a newest-first scan may do before the query falls back to ranking its matches,
/// in thousands of SQLite virtual machine steps (about 50,000 index entries, ~5 ms of one
/// core; see [`MANY_NAMED`]). The 1M-instance `Wang^12*` page needs ~9,000 entries; the budget
/// bounds what a wrong guess costs (a reach or other conditions that make the matches rare
/// after all).
const NEWEST_FIRST_BUDGET: u32 = 1000;

/// What is left of a newest-first scan's budget, shared with the connection's progress
/// handler; unlimited again once dropped.
struct ScanBudget(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl ScanBudget {
    fn new(budget: u32) -> Self {
        ScanBudget(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(
            i64::from(budget),
        )))
    }
}

impl Drop for ScanBudget {
    fn drop(&mut self) {
        self.0.store(i64::MAX, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A statement this module built, with its values bound. Only fixed fragments are formatted
/// into the statement; every value is bound.
fn bound(sql: String, binds: &[String]) -> crate::sql::Query<'_> {
    binds
        .iter()
        .fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, b| q.bind(b))
}

/// The page as `build` returns it: one JSON text of row arrays.
fn page_rows(page: Option<String>, level: Level) -> Result<Vec<Match>, StoreError> {
    let rows: Vec<crate::query::Row> = serde_json::from_str(page.as_deref().unwrap_or("[]"))
        .map_err(|e| StoreError::backend("query page", e))?;
    Ok(rows.into_iter().map(|r| to_match(r, level)).collect())
}

impl SqliteIndex {
    /// [`QueryIndex::find`] with its plan's two bounds given (tests set them to reach
    /// both plans on a small index): name matches counted up to `many`, and the work a
    /// newest-first scan may do (thousands of SQLite VM steps).
    pub async fn find_planned(
        &self,
        q: &huren_archive::query::Query,
        many: u32,
        budget: u32,
    ) -> Result<Vec<huren_archive::query::Match>, StoreError> {
        // A name wildcard matching many records: read studies newest first instead of
        // ranking every match (a bounded count decides; query::Plan). Within a work budget:
        // when the reader's reach or other conditions make the matches rare after all, the
        // scan is interrupted and the query ranks its matches as usual.
        if let Some((sql, binds)) = count_named(q, many) {
            let mut conn = self.pool.acquire().await.map_err(db)?;
            let named: i64 = bound(sql, &binds)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?
                .get(0);
            if named >= i64::from(many) {
                // Counted in SQLite's virtual machine steps, not in time: under load a
                // request's wall time stretches with the queue for the CPU, and a time budget
                // sent every scan to the expensive fallback exactly when the server was busiest.
                // The handler stays with the pooled connection if this future is dropped
                // mid-query (a client gone): the guard then lifts its limit, so that it
                // never interrupts the connection's next user.
                let left = ScanBudget::new(budget);
                let handler = left.0.clone();
                conn.lock_handle()
                    .await
                    .map_err(db)?
                    .set_progress_handler(1000, move || {
                        handler.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) > 1
                    });
                let (sql, binds) = build_with(q, Plan::NewestFirst);
                let page = bound(sql, &binds).fetch_one(&mut *conn).await;
                conn.lock_handle()
                    .await
                    .map_err(db)?
                    .remove_progress_handler();
                match page {
                    Ok(row) => return page_rows(row.get(0), q.level),
                    // SQLITE_INTERRUPT: over budget.
                    Err(e)
                        if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("9") =>
                    {
                        tracing::debug!("newest-first scan over budget; ranking the matches");
                    }
                    Err(e) => return Err(db(e)),
                }
            }
        }
        let (sql, binds) = build(q);
        let page: Option<String> = bound(sql, &binds)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?
            .get(0);
        page_rows(page, q.level)
    }
}

#[async_trait]
impl QueryIndex for SqliteIndex {
    async fn find(
        &self,
        q: &huren_archive::query::Query,
    ) -> Result<Vec<huren_archive::query::Match>, StoreError> {
        self.find_planned(q, MANY_NAMED, NEWEST_FIRST_BUDGET).await
    }

    async fn series_etag(
        &self,
        study_uid: &str,
        series_uid: &str,
    ) -> Result<Vec<SeriesTag>, StoreError> {
        let rows = sqlx::query(
            "SELECT se.id, se.version, p.id AS pid, p.updated_at, s.institution_id, p.patient_id, p.issuer
               FROM series se JOIN study s ON s.id = se.study_id
             JOIN patient p ON p.id = s.patient_id WHERE s.study_uid = ? AND se.series_uid = ? AND se.num_instances > 0",
        )
        .bind(study_uid)
        .bind(series_uid)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: i64 = r.get("id");
                let etag = format!(
                    "\"s{id}-v{}-p{}-{}\"",
                    r.get::<i64, _>("version"),
                    r.get::<i64, _>("pid"),
                    r.get::<i64, _>("updated_at")
                );
                SeriesTag {
                    key: id,
                    etag,
                    institution_id: r.get("institution_id"),
                    patient: format!(
                        "{}@{}",
                        r.get::<String, _>("patient_id"),
                        r.get::<String, _>("issuer")
                    ),
                }
            })
            .collect())
    }

    async fn cached_series_metadata(
        &self,
        series_key: i64,
        etag: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT json FROM series_metadata WHERE series_id = ? AND etag = ?")
            .bind(series_key)
            .bind(etag)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn store_series_metadata(
        &self,
        series_key: i64,
        etag: &str,
        json: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO series_metadata (series_id, etag, json) VALUES (?, ?, ?)
             ON CONFLICT (series_id) DO UPDATE SET etag = excluded.etag, json = excluded.json",
        )
        .bind(series_key)
        .bind(etag)
        .bind(json)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn instance_documents(
        &self,
        instance_keys: &[i64],
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let mut out = Vec::with_capacity(instance_keys.len());
        // Bounded statements: SQLite allows 32 766 parameters; 900 keeps each small.
        for chunk in instance_keys.chunks(900) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT instance_id, json FROM instance_json WHERE instance_id IN ({marks})"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for k in chunk {
                query = query.bind(k);
            }
            for r in query.fetch_all(&self.pool).await.map_err(db)? {
                out.push((r.get::<i64, _>("instance_id"), r.get::<Vec<u8>, _>("json")));
            }
        }
        Ok(out)
    }
}
