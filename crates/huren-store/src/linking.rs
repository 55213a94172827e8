//! Person linking in SQL, shared by ingest, HL7 and the master patient index: identifiers of
//! a record, a new record's own person, moving records between persons.

use crate::chain::*;
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
        if conflicting_numbers(conn, my_person, other_person).await? {
            review("conflicting_numbers").execute(&mut *conn).await?;
            continue;
        }
        let (survivor, merged) = if other_person < my_person {
            (other_person, my_person)
        } else {
            (my_person, other_person)
        };
        move_person(
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
pub(crate) async fn conflicting_numbers(
    conn: &mut SqliteConnection,
    a: i64,
    b: i64,
) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM patient_identifier x JOIN patient px ON px.id = x.patient_id
           JOIN patient_identifier y ON y.system = x.system AND y.blind != x.blind AND y.consistent = 1
           JOIN patient py ON py.id = y.patient_id
         WHERE px.person_id = ? AND py.person_id = ? AND x.consistent = 1",
    )
    .bind(a)
    .bind(b)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// Moves every record of `merged` into `survivor` with one link event each; `how` is
/// (rule, actor, reason, score). Bumps the records' `updated_at` (metadata ETags, ARCHITECTURE.md).
pub(crate) async fn move_person(
    conn: &mut SqliteConnection,
    survivor: i64,
    merged: i64,
    how: (&str, &str, Option<&str>, Option<f64>),
    ts: i64,
) -> Result<u64, sqlx::Error> {
    let (rule, actor, reason, score) = how;
    sqlx::query(
        "INSERT INTO person_link_event (at, patient_id, from_person, to_person, rule, actor, reason, score)
           SELECT ?, id, person_id, ?, ?, ?, ?, ? FROM patient WHERE person_id = ?",
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
    let moved = sqlx::query("UPDATE patient SET person_id = ?, updated_at = ? WHERE person_id = ?")
        .bind(survivor)
        .bind(ts)
        .bind(merged)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("UPDATE person SET merged_into = ? WHERE id = ?")
        .bind(survivor)
        .bind(merged)
        .execute(&mut *conn)
        .await?;
    Ok(moved)
}

pub(crate) async fn person_id(
    conn: &mut SqliteConnection,
    public_id: &str,
) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT id FROM person WHERE public_id = ?")
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

pub(crate) fn facts(r: &sqlx::sqlite::SqliteRow) -> Result<RecordFacts, StoreError> {
    let ids: String = r.get("identifiers");
    let ids: Vec<(String, String, i64)> = serde_json::from_str(&ids)
        .map_err(|e| StoreError::backend("reading a record's identifiers", e))?;
    Ok(RecordFacts {
        patient_key: r.get("id"),
        person_id: r.get("person_id"),
        person_records: r.get("person_records"),
        name_raw: r.get("name_raw"),
        birth_date: r.get("birth_date"),
        sex: r.get("sex"),
        identifiers: ids.into_iter().map(|(s, b, c)| (s, b, c != 0)).collect(),
    })
}

pub(crate) const RECORD_VIEW: &str =
    "SELECT p.id, p.issuer, p.patient_id, p.name_raw, p.birth_date, p.sex, pe.public_id
     FROM patient p JOIN person pe ON pe.id = p.person_id";

pub(crate) fn record_view(r: &sqlx::sqlite::SqliteRow) -> RecordView {
    RecordView {
        patient_key: r.get(0),
        issuer: r.get(1),
        patient_id: r.get(2),
        name: r.get(3),
        birth_date: r.get(4),
        sex: r.get(5),
        person: r.get(6),
    }
}

pub(crate) async fn person_records(
    conn: &mut SqliteConnection,
    person: i64,
) -> Result<Vec<RecordView>, StoreError> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "{RECORD_VIEW} WHERE p.person_id = ? ORDER BY p.id"
    )))
    .bind(person)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .iter()
    .map(record_view)
    .collect())
}

pub(crate) async fn load_record(
    conn: &mut SqliteConnection,
    key: i64,
) -> Result<RecordView, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{RECORD_VIEW} WHERE p.id = ?")))
        .bind(key)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    Ok(record_view(&row))
}

pub(crate) async fn load_review(
    conn: &mut SqliteConnection,
    id: i64,
) -> Result<LinkReview, StoreError> {
    let r = sqlx::query(
        "SELECT id, reason, score, state, created_at, patient_a, patient_b FROM link_review WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?
    .ok_or_else(|| StoreError::NotFound(format!("link review {id}")))?;
    let (a, b): (i64, i64) = (r.get("patient_a"), r.get("patient_b"));
    Ok(LinkReview {
        id: r.get("id"),
        reason: r.get("reason"),
        score: r.get("score"),
        state: r.get("state"),
        created_at: r.get("created_at"),
        a: load_record(conn, a).await?,
        b: load_record(conn, b).await?,
    })
}
