//! Person linking in SQL, shared by ingest, HL7 and the master patient index: identifiers of
//! a record, a new record's own person, moving records between persons.

use crate::sql::*;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use sqlx::{Row, SqliteConnection};

pub(crate) fn split_identifier(i: &Option<(String, String)>) -> (Option<&str>, Option<&str>) {
    match i {
        Some((s, v)) => (Some(s.as_str()), Some(v.as_str())),
        None => (None, None),
    }
}

/// Records an identity number of the record `r` names and applies the national-number rules
/// (ARCHITECTURE.md "Persons"): the same number, agreeing with both records' birth date and sex,
/// moves this record's person into the other's (the older person survives); a number that
/// disagrees with either record puts the pair in review; a merge that would give one person
/// two different numbers of one document is not made (review instead).
pub(crate) async fn link_identifier(
    conn: &mut SqliteConnection,
    record: (&str, &str),
    ident: &huren_archive::model::SealedIdentifier,
    ts: i64,
) -> Result<(), sqlx::Error> {
    let row = sqlx::query("SELECT id, person_id FROM patient WHERE issuer = ? AND patient_id = ?")
        .bind(record.0)
        .bind(record.1)
        .fetch_one(&mut *conn)
        .await?;
    let (me, mut my_person): (i64, i64) = (row.get("id"), row.get("person_id"));
    sqlx::query(
        "INSERT INTO patient_identifier (patient_id, system, blind, sealed, key_id, consistent)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (patient_id, system) DO UPDATE SET blind = excluded.blind, sealed = excluded.sealed,
           key_id = excluded.key_id, consistent = excluded.consistent",
    )
    .bind(me)
    .bind(&ident.system)
    .bind(&ident.blind)
    .bind(&ident.sealed)
    .bind(&ident.key_id)
    .bind(ident.consistent)
    .execute(&mut *conn)
    .await?;
    let others = sqlx::query(
        "SELECT pi.patient_id, p.person_id, pi.consistent FROM patient_identifier pi JOIN patient p ON p.id = pi.patient_id
         WHERE pi.system = ? AND pi.blind = ? AND pi.patient_id != ? ORDER BY p.person_id, pi.patient_id",
    )
    .bind(&ident.system)
    .bind(&ident.blind)
    .bind(me)
    .fetch_all(&mut *conn)
    .await?;
    for o in others {
        let (other, other_person, other_consistent): (i64, i64, bool) =
            (o.get("patient_id"), o.get("person_id"), o.get("consistent"));
        if other_person == my_person {
            continue;
        }
        let review = |reason: &'static str| {
            sqlx::query(
                "INSERT INTO link_review (created_at, patient_a, patient_b, reason) VALUES (?, ?, ?, ?)
                 ON CONFLICT (patient_a, patient_b) DO NOTHING",
            )
            .bind(ts)
            .bind(other.min(me))
            .bind(other.max(me))
            .bind(reason)
        };
        if !(ident.consistent && other_consistent) {
            review("national_id_inconsistent")
                .execute(&mut *conn)
                .await?;
            continue;
        }
        if conflicting_numbers::<sqlx::Sqlite>(conn, my_person, other_person).await? {
            review("conflicting_numbers").execute(&mut *conn).await?;
            continue;
        }
        let (survivor, merged) = if other_person < my_person {
            (other_person, my_person)
        } else {
            (my_person, other_person)
        };
        move_person::<sqlx::Sqlite>(
            conn,
            survivor,
            merged,
            ("same_national_id", "ingest", None, None),
            ts,
        )
        .await?;
        my_person = survivor;
    }
    Ok(())
}

/// A record created by the statements before this one gets a person of its own, with a
/// `created` link event; an existing record keeps its person. Binds: see
/// [`bind_new_record_person`].
pub(crate) const NEW_RECORD_PERSON: &str = "
         INSERT INTO person (public_id, created_at)
           SELECT ?, ? WHERE (SELECT person_id FROM patient WHERE issuer = ? AND patient_id = ?) IS NULL;
         UPDATE patient SET person_id = last_insert_rowid() WHERE issuer = ? AND patient_id = ? AND person_id IS NULL;
         INSERT INTO person_link_event (at, patient_id, from_person, to_person, rule, actor)
           SELECT ?, id, NULL, person_id, 'created', ? FROM patient
            WHERE issuer = ? AND patient_id = ? AND changes() > 0;
";

pub(crate) fn bind_new_record_person<'q>(
    q: Query<'q>,
    (issuer, patient_id): (&'q str, &'q str),
    public_id: &'q str,
    actor: &'static str,
    ts: i64,
) -> Query<'q> {
    q.bind(public_id)
        .bind(ts)
        .bind(issuer)
        .bind(patient_id)
        .bind(issuer)
        .bind(patient_id)
        .bind(ts)
        .bind(actor)
        .bind(issuer)
        .bind(patient_id)
}

/// Whether two persons hold different identity numbers of one document (only numbers that
/// agree with their records count as a person's own).
pub(crate) async fn conflicting_numbers<DB>(
    conn: &mut DB::Connection,
    a: i64,
    b: i64,
) -> Result<bool, sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB> + sqlx::Decode<'q, DB>,
    for<'r> (i64,): sqlx::FromRow<'r, DB::Row>,
{
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM patient_identifier x JOIN patient px ON px.id = x.patient_id
           JOIN patient_identifier y ON y.system = x.system AND y.blind != x.blind AND y.consistent = 1
           JOIN patient py ON py.id = y.patient_id
         WHERE px.person_id = $1 AND py.person_id = $2 AND x.consistent = 1",
    )
    .bind(a)
    .bind(b)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// Moves every record of `merged` into `survivor` with one link event each; `how` is
/// (rule, actor, reason, score). Bumps the records' `updated_at` (metadata ETags, ARCHITECTURE.md).
pub(crate) async fn move_person<DB>(
    conn: &mut DB::Connection,
    survivor: i64,
    merged: i64,
    how: (&str, &str, Option<&str>, Option<f64>),
    ts: i64,
) -> Result<u64, sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> (i64,): sqlx::FromRow<'r, DB::Row>,
{
    let (rule, actor, reason, score) = how;
    sqlx::query(
        "INSERT INTO person_link_event (at, patient_id, from_person, to_person, rule, actor, reason, score)
           SELECT $1, id, person_id, $2, $3, $4, $5, $6 FROM patient WHERE person_id = $7",
    )
    .bind(ts)
    .bind(survivor)
    .bind(rule)
    .bind(actor)
    .bind(reason)
    .bind(score)
    .bind(merged)
    .execute(&mut *conn)
    .await?;
    // RETURNING rather than the result's row count, which sqlx gives per dialect only.
    let moved: Vec<i64> = sqlx::query_scalar(
        "UPDATE patient SET person_id = $1, updated_at = $2 WHERE person_id = $3 RETURNING id",
    )
    .bind(survivor)
    .bind(ts)
    .bind(merged)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("UPDATE person SET merged_into = $1 WHERE id = $2")
        .bind(survivor)
        .bind(merged)
        .execute(&mut *conn)
        .await?;
    Ok(moved.len() as u64)
}

pub(crate) async fn person_id<DB>(
    conn: &mut DB::Connection,
    public_id: &str,
) -> Result<i64, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> (i64,): sqlx::FromRow<'r, DB::Row>,
{
    sqlx::query_scalar("SELECT id FROM person WHERE public_id = $1")
        .bind(public_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::NotFound(format!("person {public_id}")))
}

/// One record's facts for the link rules in one row: identifiers as a JSON array of
/// `[system, blind, consistent]`.
pub(crate) const FACTS: &str = "SELECT p.id, p.person_id, p.name_key, p.name_raw, p.birth_date, p.sex,
       (SELECT COUNT(*) FROM patient q WHERE q.person_id = p.person_id) AS person_records,
       (SELECT json_group_array(json_array(i.system, i.blind, i.consistent)) FROM patient_identifier i
         WHERE i.patient_id = p.id AND i.blind IS NOT NULL) AS identifiers
  FROM patient p";

/// A row of [`FACTS`] (SQLite's `json_group_array` or PostgreSQL's `json_agg`, as text).
#[derive(sqlx::FromRow)]
pub(crate) struct FactsRow {
    id: i64,
    person_id: i64,
    pub(crate) name_key: Option<String>,
    name_raw: Option<String>,
    birth_date: Option<String>,
    sex: Option<String>,
    person_records: i64,
    identifiers: String,
}

impl FactsRow {
    pub(crate) fn facts(&self) -> Result<RecordFacts, StoreError> {
        let ids: Vec<(String, String, serde_json::Value)> = serde_json::from_str(&self.identifiers)
            .map_err(|e| StoreError::backend("reading a record's identifiers", e))?;
        Ok(RecordFacts {
            patient_key: self.id,
            person_id: self.person_id,
            person_records: self.person_records,
            name_raw: self.name_raw.clone(),
            birth_date: self.birth_date.clone(),
            sex: self.sex.clone(),
            // `consistent` is 0/1 in both dialects' columns; JSON may carry it as a number or
            // (PostgreSQL booleans) true/false.
            identifiers: ids
                .into_iter()
                .map(|(s, b, c)| {
                    (
                        s,
                        b,
                        c.as_i64().map(|n| n != 0).or(c.as_bool()).unwrap_or(false),
                    )
                })
                .collect(),
        })
    }
}

/// `s` as the start of a LIKE pattern (with `ESCAPE` backslash): its wildcards matched literally.
pub(crate) fn like_prefix(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("{escaped}%")
}

pub(crate) const RECORD_VIEW: &str =
    "SELECT p.id, p.issuer, p.patient_id, p.name_raw, p.birth_date, p.sex, pe.public_id
     FROM patient p JOIN person pe ON pe.id = p.person_id";

/// A row of [`RECORD_VIEW`].
#[derive(sqlx::FromRow)]
pub(crate) struct RecordRow {
    id: i64,
    issuer: String,
    patient_id: String,
    name_raw: Option<String>,
    birth_date: Option<String>,
    sex: Option<String>,
    public_id: String,
}

impl From<RecordRow> for RecordView {
    fn from(r: RecordRow) -> Self {
        RecordView {
            patient_key: r.id,
            issuer: r.issuer,
            patient_id: r.patient_id,
            name: r.name_raw,
            birth_date: r.birth_date,
            sex: r.sex,
            person: r.public_id,
        }
    }
}

/// A link review's own columns; its two records are read with [`RECORD_VIEW`].
#[derive(sqlx::FromRow)]
pub(crate) struct ReviewRow {
    pub(crate) id: i64,
    pub(crate) reason: String,
    pub(crate) score: Option<f64>,
    pub(crate) state: String,
    pub(crate) created_at: i64,
    pub(crate) patient_a: i64,
    pub(crate) patient_b: i64,
}

pub(crate) const REVIEW: &str =
    "SELECT id, reason, score, state, created_at, patient_a, patient_b FROM link_review";

/// A person's link history: every move of a record into or out of them.
#[derive(sqlx::FromRow)]
pub(crate) struct LinkEventRow {
    at: i64,
    patient_id: i64,
    from_public: Option<String>,
    to_public: String,
    rule: String,
    actor: String,
    reason: Option<String>,
}

pub(crate) const LINK_HISTORY: &str = "SELECT e.at, e.patient_id, f.public_id AS from_public, t.public_id AS to_public, e.rule, e.actor, e.reason
   FROM person_link_event e LEFT JOIN person f ON f.id = e.from_person JOIN person t ON t.id = e.to_person";

impl From<LinkEventRow> for LinkEvent {
    fn from(r: LinkEventRow) -> Self {
        LinkEvent {
            at: r.at,
            patient_key: r.patient_id,
            from_person: r.from_public,
            to_person: r.to_public,
            rule: r.rule,
            actor: r.actor,
            reason: r.reason,
        }
    }
}

// The statements below read the same in both dialects (`$n` parameters, which sqlx binds by
// number on SQLite as on PostgreSQL), so one generic function serves each adapter's connection.

pub(crate) async fn person_records<DB>(
    conn: &mut DB::Connection,
    person: i64,
) -> Result<Vec<RecordView>, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'r> RecordRow: sqlx::FromRow<'r, DB::Row>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let rows: Vec<RecordRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RECORD_VIEW} WHERE p.person_id = $1 ORDER BY p.id"
    )))
    .bind(person)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub(crate) async fn load_record<DB>(
    conn: &mut DB::Connection,
    key: i64,
) -> Result<RecordView, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'r> RecordRow: sqlx::FromRow<'r, DB::Row>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let row: RecordRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{RECORD_VIEW} WHERE p.id = $1"
    )))
    .bind(key)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    Ok(row.into())
}

pub(crate) async fn load_review<DB>(
    conn: &mut DB::Connection,
    id: i64,
) -> Result<LinkReview, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'r> ReviewRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> RecordRow: sqlx::FromRow<'r, DB::Row>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let r: ReviewRow = sqlx::query_as(sqlx::AssertSqlSafe(format!("{REVIEW} WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::NotFound(format!("link review {id}")))?;
    Ok(LinkReview {
        id: r.id,
        reason: r.reason,
        score: r.score,
        state: r.state,
        created_at: r.created_at,
        a: load_record::<DB>(conn, r.patient_a).await?,
        b: load_record::<DB>(conn, r.patient_b).await?,
    })
}
