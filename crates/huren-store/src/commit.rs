//! The writer's jobs, each run in its own savepoint inside the group's transaction: one
//! instance (the duplicate-UID policy, patient record and person, study and series rows, the QC
//! queue, its audit event) and one batch of results (an HL7 message or a FHIR submission: order,
//! results and report rows, the patient record and its person, its audit event).

use crate::chain::*;
use crate::linking::*;
use crate::sql::*;
use huren_access::AuditEvent;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use sqlx::{Row, SqliteConnection};
/// One instance inside the group transaction: duplicate policy, patient/study/series upserts,
/// counts, instance row, DICOM JSON, audit event.
pub(crate) async fn commit_one(
    conn: &mut SqliteConnection,
    r: &NewInstance,
    audit: &AuditEvent,
    chain: &mut Chain,
) -> Result<CommitOutcome, StoreError> {
    let existing = sqlx::query("SELECT id, sender_institution_id, sha256, version, series_id, study_id FROM instance WHERE sop_uid = ? AND lifecycle = 'active'")
        .bind(&r.sop_instance_uid)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let mut version = 1i64;
    let mut supersedes: Option<(i64, i64, i64)> = None;
    let mut conflict_with: Option<i64> = None;
    for row in &existing {
        let id: i64 = row.get("id");
        if row.get::<i64, _>("sender_institution_id") == r.sender_institution_id {
            if row.get::<String, _>("sha256") == r.sha256 {
                insert_audit(conn, audit, chain).await.map_err(db)?;
                return Ok(CommitOutcome::Duplicate { instance_id: id });
            }
            version = row.get::<i64, _>("version") + 1;
            supersedes = Some((id, row.get("series_id"), row.get("study_id")));
        } else if conflict_with.is_none() {
            conflict_with = Some(id);
        }
    }
    let a = &r.attrs;
    let ts = now();
    let name = a.patient_name.as_ref();
    let other_ids = serde_json::to_string(&a.other_patient_ids).unwrap_or_else(|_| "[]".into());
    // Everything else in one round trip to SQLite's thread: a multi-statement query whose `?`
    // parameters are bound in order across its statements. Rows are found by their natural
    // keys (unique indexes) instead of passing RETURNING ids back and forth; each round trip
    // is a pair of thread wake-ups, which dominated the commit when it took thirteen.
    let mut sql = String::from(
        "SAVEPOINT one;
         INSERT INTO patient (issuer, patient_id, name_raw, name_alphabetic, name_ideographic, name_phonetic, birth_date, sex, other_ids, updated_at, name_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (issuer, patient_id) DO UPDATE SET
           name_key = COALESCE(excluded.name_key, name_key),
           name_raw = COALESCE(excluded.name_raw, name_raw),
           name_alphabetic = COALESCE(excluded.name_alphabetic, name_alphabetic),
           name_ideographic = COALESCE(excluded.name_ideographic, name_ideographic),
           name_phonetic = COALESCE(excluded.name_phonetic, name_phonetic),
           birth_date = COALESCE(excluded.birth_date, birth_date),
           sex = COALESCE(excluded.sex, sex),
           other_ids = CASE WHEN excluded.other_ids = '[]' THEN other_ids ELSE excluded.other_ids END,
           updated_at = excluded.updated_at
         -- Only when the object brings something new: an UPDATE rewrites every index on the
         -- columns it sets (ten on patient), and nearly every instance repeats its record.
         WHERE (excluded.name_key IS NOT NULL AND excluded.name_key IS NOT name_key)
            OR (excluded.name_raw IS NOT NULL AND excluded.name_raw IS NOT name_raw)
            OR (excluded.name_alphabetic IS NOT NULL AND excluded.name_alphabetic IS NOT name_alphabetic)
            OR (excluded.name_ideographic IS NOT NULL AND excluded.name_ideographic IS NOT name_ideographic)
            OR (excluded.name_phonetic IS NOT NULL AND excluded.name_phonetic IS NOT name_phonetic)
            OR (excluded.birth_date IS NOT NULL AND excluded.birth_date IS NOT birth_date)
            OR (excluded.sex IS NOT NULL AND excluded.sex IS NOT sex)
            OR (excluded.other_ids != '[]' AND excluded.other_ids IS NOT other_ids);
",
    );
    sql.push_str(NEW_RECORD_PERSON);
    sql.push_str(
        "-- The study carries its record's name groups for newest-first name searches
         -- (migration 0044; its triggers follow later renames and moves).
         INSERT INTO study (study_uid, institution_id, study_date, study_time, study_instant, accession_number, study_id,
                            description, referring_physician, institution_name, last_instance_at, stable_after_secs,
                            patient_id, patient_name_alphabetic, patient_name_ideographic, patient_name_phonetic)
         SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, p.id, p.name_alphabetic, p.name_ideographic, p.name_phonetic
           FROM patient p WHERE p.issuer = ? AND p.patient_id = ?
         ON CONFLICT (study_uid, institution_id) DO UPDATE SET
           last_instance_at = excluded.last_instance_at, stable_at = NULL,
           stable_after_secs = excluded.stable_after_secs;
         -- What the first instance lacked, filled from a later one: a statement of its own, so
         -- the common case (nothing to fill) does not rewrite the date and accession indexes.
         UPDATE study SET
           study_date = COALESCE(study_date, v.d), study_time = COALESCE(study_time, v.t),
           study_instant = COALESCE(study_instant, v.i),
           accession_number = COALESCE(accession_number, v.a), description = COALESCE(description, v.de)
          FROM (SELECT ? AS d, ? AS t, ? AS i, ? AS a, ? AS de) AS v
          WHERE study_uid = ? AND institution_id = ?
            AND ((study_date IS NULL AND v.d IS NOT NULL) OR (study_time IS NULL AND v.t IS NOT NULL)
              OR (study_instant IS NULL AND v.i IS NOT NULL) OR (accession_number IS NULL AND v.a IS NOT NULL)
              OR (description IS NULL AND v.de IS NOT NULL));
         INSERT INTO series (study_id, series_uid, modality, series_number, description, body_part, series_date, series_time, station_name, manufacturer, model)
         VALUES ((SELECT id FROM study WHERE study_uid = ? AND institution_id = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (study_id, series_uid) DO UPDATE SET modality = COALESCE(modality, excluded.modality);",
    );
    if supersedes.is_some() {
        sql.push_str(
            "UPDATE instance SET lifecycle = 'superseded' WHERE id = ?;
             UPDATE series SET num_instances = num_instances - 1, version = version + 1 WHERE id = ?;
             UPDATE study SET num_instances = num_instances - 1 WHERE id = ?;",
        );
    }
    sql.push_str(
        "INSERT INTO instance (series_id, study_id, sop_uid, sop_class_uid, instance_number, transfer_syntax_uid, lifecycle, version, supersedes_id,
            sender_institution_id, sender_ae_id, sender_token_id, performing_institution_id, blob_key, size, sha256, received_at,
            number_of_frames, rows, columns, bits_allocated, photometric, lossy, image_type, content_date, content_time, pixel_layout, uid_conflict)
         SELECT se.id, st.id, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
           FROM study st JOIN series se ON se.study_id = st.id
          WHERE st.study_uid = ? AND st.institution_id = ? AND se.series_uid = ?;
         INSERT INTO instance_json (instance_id, json) VALUES (last_insert_rowid(), ?);
         UPDATE series SET num_instances = num_instances + 1, version = version + 1
          WHERE id = (SELECT series_id FROM instance WHERE id = last_insert_rowid());
         UPDATE study SET num_instances = num_instances + 1,
           num_series = (SELECT COUNT(*) FROM series WHERE study_id = study.id AND num_instances > 0),
           modalities = CASE WHEN (SELECT se.num_instances FROM instance i JOIN series se ON se.id = i.series_id WHERE i.id = last_insert_rowid()) = 1
             THEN (SELECT COALESCE(group_concat(m, '\'), '') FROM (SELECT DISTINCT modality AS m FROM series WHERE study_id = study.id AND num_instances > 0 AND modality IS NOT NULL ORDER BY modality))
             ELSE modalities END
          WHERE id = (SELECT study_id FROM instance WHERE id = last_insert_rowid());
         SELECT last_insert_rowid() AS id;",
    );
    if conflict_with.is_some() {
        sql.push_str(
            "UPDATE instance SET uid_conflict = 1 WHERE id = ?;
             INSERT INTO uid_conflict (sop_uid, instance_id, other_instance_id, detected_at)
             SELECT ?, id, ?, ? FROM instance WHERE sop_uid = ? AND sender_institution_id = ? AND lifecycle = 'active';",
        );
    }
    sql.push_str(
        "INSERT INTO audit_event (at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq, mac, chain)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);",
    );
    // Identity numbers link persons in a second round trip, inside the same savepoint.
    if r.identifiers.is_empty() {
        sql.push_str("RELEASE one;");
    }
    // Built only from the constant pieces above (four variants), never from values.
    let q = sqlx::query(sqlx::AssertSqlSafe(sql))
        // patient
        .bind(&r.patient_issuer)
        .bind(&r.patient_id)
        .bind(name.map(|n| n.raw.clone()))
        .bind(name.map(|n| n.alphabetic.clone()).filter(|s| !s.is_empty()))
        .bind(
            name.map(|n| n.ideographic.clone())
                .filter(|s| !s.is_empty()),
        )
        .bind(name.map(|n| n.phonetic.clone()).filter(|s| !s.is_empty()))
        .bind(&a.patient_birth_date)
        .bind(&a.patient_sex)
        .bind(&other_ids)
        .bind(ts)
        .bind(&r.name_key);
    let mut q = bind_new_record_person(
        q,
        (&r.patient_issuer, &r.patient_id),
        &r.new_person_public_id,
        "ingest",
        ts,
    )
    // study
    .bind(&r.study_instance_uid)
    .bind(r.performing_institution_id)
    .bind(&a.study_date)
    .bind(&a.study_time)
    .bind(r.study_instant)
    .bind(&a.accession_number)
    .bind(&a.study_id)
    .bind(&a.study_description)
    .bind(&a.referring_physician_name)
    .bind(&a.institution_name)
    .bind(r.received_unix)
    .bind(r.stable_after_secs)
    .bind(&r.patient_issuer)
    .bind(&r.patient_id)
    // study: what a later instance fills in
    .bind(&a.study_date)
    .bind(&a.study_time)
    .bind(r.study_instant)
    .bind(&a.accession_number)
    .bind(&a.study_description)
    .bind(&r.study_instance_uid)
    .bind(r.performing_institution_id)
    // series
    .bind(&r.study_instance_uid)
    .bind(r.performing_institution_id)
    .bind(&r.series_instance_uid)
    .bind(&a.modality)
    .bind(a.series_number)
    .bind(&a.series_description)
    .bind(&a.body_part_examined)
    .bind(&a.series_date)
    .bind(&a.series_time)
    .bind(&a.station_name)
    .bind(&a.manufacturer)
    .bind(&a.manufacturer_model_name);
    if let Some((old, old_series, old_study)) = supersedes {
        q = q.bind(old).bind(old_series).bind(old_study);
    }
    q = q
        // instance
        .bind(&r.sop_instance_uid)
        .bind(&r.sop_class_uid)
        .bind(a.instance_number)
        .bind(&r.transfer_syntax_uid)
        .bind(version)
        .bind(supersedes.map(|s| s.0))
        .bind(r.sender_institution_id)
        .bind(r.sender_ae_id)
        .bind(r.sender_token_id)
        .bind(r.performing_institution_id)
        .bind(&r.blob_key)
        .bind(r.size as i64)
        .bind(&r.sha256)
        .bind(r.received_unix)
        .bind(a.number_of_frames)
        .bind(a.rows)
        .bind(a.columns)
        .bind(a.bits_allocated)
        .bind(&a.photometric_interpretation)
        .bind(&a.lossy_image_compression)
        .bind(a.image_type.join("\\"))
        .bind(&a.content_date)
        .bind(&a.content_time)
        .bind(&r.pixel_layout)
        .bind(conflict_with.is_some())
        .bind(&r.study_instance_uid)
        .bind(r.performing_institution_id)
        .bind(&r.series_instance_uid)
        // instance_json
        .bind(&r.dicom_json_deflated);
    if let Some(other) = conflict_with {
        q = q
            .bind(other)
            .bind(&r.sop_instance_uid)
            .bind(other)
            .bind(ts)
            .bind(&r.sop_instance_uid)
            .bind(r.sender_institution_id);
    }
    let q = bind_audit(q, audit, chain);
    let rows = match q.fetch_all(&mut *conn).await {
        Ok(rows) => rows,
        Err(e) => {
            // Undo whatever ran before the failing statement; the caller's batch goes on.
            let _ = sqlx::query("ROLLBACK TO one; RELEASE one;")
                .execute(&mut *conn)
                .await;
            return Err(db(e));
        }
    };
    let instance_id: i64 = rows
        .first()
        .map(|row| row.get("id"))
        .ok_or_else(|| StoreError::broken("instance row not written"))?;
    if !r.identifiers.is_empty() {
        let linked = async {
            for ident in &r.identifiers {
                link_identifier(conn, (&r.patient_issuer, &r.patient_id), ident, ts).await?;
            }
            sqlx::query("RELEASE one").execute(&mut *conn).await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        if let Err(e) = linked {
            let _ = sqlx::query("ROLLBACK TO one; RELEASE one;")
                .execute(&mut *conn)
                .await;
            return Err(db(e));
        }
    }
    Ok(match (supersedes, conflict_with) {
        (Some((old, _, _)), _) => CommitOutcome::NewVersion {
            instance_id,
            superseded_id: old,
        },
        (None, Some(other)) => CommitOutcome::UidConflict {
            instance_id,
            other_id: other,
        },
        (None, None) => CommitOutcome::Stored { instance_id },
    })
}

/// One HL7 message inside the group transaction, in its own savepoint: the message (unique per
/// sender and MSH-10), the patient record and its person, identity numbers, all results in one
/// multi-row statement, supersession of earlier results, reports, the audit event.
pub(crate) async fn commit_oru_in(
    conn: &mut SqliteConnection,
    oru: &NewOru,
    audit: &AuditEvent,
    chain: &mut Chain,
) -> Result<OruOutcome, StoreError> {
    match oru_statements(conn, oru, audit, chain).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            let _ = sqlx::query("ROLLBACK TO one; RELEASE one;")
                .execute(&mut *conn)
                .await;
            Err(db(e))
        }
    }
}

/// Two round trips to SQLite's thread for a message without identity numbers (each trip is a
/// pair of thread wake-ups, which bounded throughput when there were seven): first the message
/// row (a duplicate ends here) or the FHIR `If-None-Exist` check, which also reads where the new
/// rows' ids start; then everything else as one multi-statement query whose `?` are bound in
/// order. New orders and results get explicit ids from those starting points (the writer is
/// the only one writing), so results point at their order and the caller learns the ids
/// without another trip. The patient row is found by its natural key in each statement.
pub(crate) async fn oru_statements(
    conn: &mut SqliteConnection,
    oru: &NewOru,
    audit: &AuditEvent,
    chain: &mut Chain,
) -> Result<OruOutcome, sqlx::Error> {
    let ts = now();
    const BASES: &str =
        "(SELECT COALESCE(max(id), 0) FROM report), (SELECT COALESCE(max(id), 0) FROM lab_result)";
    let (message, source, report_base, result_base): (Option<i64>, &str, i64, i64) = match &oru
        .source
    {
        ResultSource::Hl7 {
            sender_id,
            control_id,
            message_type,
            version,
            sha256,
        } => {
            let row: Option<(i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SAVEPOINT one;
                     INSERT INTO hl7_message (sender_id, control_id, message_type, version, received_at, sha256)
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sender_id, control_id) DO NOTHING
                     RETURNING id, {BASES}"
                )))
                .bind(sender_id)
                .bind(control_id)
                .bind(message_type)
                .bind(version)
                .bind(ts)
                .bind(sha256)
                .fetch_optional(&mut *conn)
                .await?;
            let Some((message, r, l)) = row else {
                sqlx::query("RELEASE one").execute(&mut *conn).await?;
                return Ok(OruOutcome::Duplicate);
            };
            (Some(message), "hl7v2", r, l)
        }
        ResultSource::Fhir { if_none_exist } => {
            let (table, system, value) = match if_none_exist {
                Some(c) => (
                    if c.on_report { "report" } else { "lab_result" },
                    c.system.as_deref(),
                    Some(c.value.as_str()),
                ),
                None => ("report", None, None),
            };
            // The newest current row with the identifier (a missing system matches any) that
            // the sender's own institutions performed.
            let performers = match if_none_exist {
                Some(c) if !c.performers.is_empty() => c
                    .performers
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                _ => "NULL".to_owned(),
            };
            // `performers` holds integers from the index, never request text.
            let (existing, r, l): (Option<i64>, i64, i64) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SAVEPOINT one;
                     SELECT (SELECT id FROM {table} WHERE identifier_value = ?
                               AND (? IS NULL OR identifier_system = ?)
                               AND performing_institution_id IN ({performers})
                              ORDER BY superseded_by IS NULL DESC, id DESC LIMIT 1), {BASES}"
                )))
                .bind(value)
                .bind(system)
                .bind(system)
                .fetch_one(&mut *conn)
                .await?;
            if let Some(id) = existing {
                sqlx::query("RELEASE one").execute(&mut *conn).await?;
                return Ok(OruOutcome::Exists { id });
            }
            (None, "fhir", r, l)
        }
        ResultSource::Registration => {
            let (r, l): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SAVEPOINT one; SELECT {BASES}"
            )))
            .fetch_one(&mut *conn)
            .await?;
            (None, "registration", r, l)
        }
    };
    const PATIENT: &str = "(SELECT id FROM patient WHERE issuer = ? AND patient_id = ?)";
    let mut sql = String::from(
        "INSERT INTO patient (issuer, patient_id, name_raw, name_alphabetic, name_ideographic, birth_date, sex, updated_at, name_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (issuer, patient_id) DO UPDATE SET
           name_raw = COALESCE(excluded.name_raw, name_raw),
           name_alphabetic = COALESCE(excluded.name_alphabetic, name_alphabetic),
           name_ideographic = COALESCE(excluded.name_ideographic, name_ideographic),
           birth_date = COALESCE(excluded.birth_date, birth_date),
           sex = COALESCE(excluded.sex, sex),
           name_key = COALESCE(excluded.name_key, name_key),
           updated_at = excluded.updated_at;
",
    );
    sql.push_str(NEW_RECORD_PERSON);
    for _ in &oru.orders {
        // The study (imaging): by UID (preferring the performer's), else by the performer's
        // AccessionNumber; unlinked when neither is found (the report is still kept). A later
        // order of the same category and study, order number or identifier replaces the
        // earlier one, which stays as history.
        sql.push_str(&format!(
            "INSERT INTO report (id, message_id, source, patient_id, performing_institution_id, category, study_id, study_uid,
               accession_number, placer_order, filler_order, identifier_system, identifier_value, procedure_code,
               procedure_code_system, procedure_text, text, status, specimen, effective_at, effective_instant,
               reported_at, reported_instant, created_at)
             VALUES (?, ?, ?, {PATIENT}, ?, ?, COALESCE(
               (SELECT id FROM study WHERE study_uid = ? ORDER BY (institution_id = ?) DESC, id DESC LIMIT 1),
               (SELECT id FROM study WHERE institution_id = ? AND accession_number = ? ORDER BY id DESC LIMIT 1)),
               ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);
             UPDATE report AS old SET superseded_by = n.id FROM report AS n
              WHERE n.id = ? AND old.patient_id = n.patient_id AND old.superseded_by IS NULL AND old.id < n.id
                AND old.category = n.category
                AND ((old.study_id IS NOT NULL AND old.study_id = n.study_id)
                  OR (old.filler_order IS NOT NULL AND old.filler_order = n.filler_order)
                  OR (n.filler_order IS NULL AND old.filler_order IS NULL AND old.placer_order = n.placer_order)
                  OR (old.identifier_value = n.identifier_value AND old.identifier_system IS n.identifier_system));"
        ));
    }
    let results: Vec<(Option<i64>, &NewLabResult)> = oru
        .orders
        .iter()
        .enumerate()
        .flat_map(|(k, o)| {
            o.results
                .iter()
                .map(move |r| (Some(report_base + 1 + k as i64), r))
        })
        .chain(oru.loose_results.iter().map(|r| (None, r)))
        .collect();
    if !results.is_empty() {
        // All results in one statement (33 values each).
        let row = format!(
            "(?, ?, ?, ?, {PATIENT}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        sql.push_str(&format!(
            "INSERT INTO lab_result (id, message_id, source, report_id, patient_id, performing_institution_id, performing_lab,
               placer_order, filler_order, order_code, order_text, set_id, identifier_system, identifier_value, value_type,
               code, code_text, code_system, value, value_num, comparator, unit, unit_ucum, reference_range,
               abnormal_flag, status, specimen, observed_at, observed_instant, reported_at, reported_instant, created_at)
             VALUES {};",
            vec![row.as_str(); results.len()].join(", ")
        ));
        // The newest result for the same record, order (filler, else placer) or identifier and
        // code is current — a final after a preliminary, a correction after a final; earlier
        // ones stay as history. New rows are those above the starting id.
        // `+n.code`: new rows are found by their id range (a handful), never through the code
        // index (every result with that code ever stored).
        const SAME: &str = "+n.code = old.code AND ((n.filler_order = old.filler_order)
                 OR (n.filler_order IS NULL AND old.filler_order IS NULL AND n.placer_order = old.placer_order)
                 OR (n.identifier_value = old.identifier_value AND n.identifier_system IS old.identifier_system))";
        sql.push_str(&format!(
            "UPDATE lab_result AS old SET superseded_by = (
               SELECT n.id FROM lab_result n WHERE n.id > ? AND {SAME} ORDER BY n.id DESC LIMIT 1)
             WHERE old.patient_id = {PATIENT} AND old.superseded_by IS NULL AND old.id <= ?
               AND EXISTS (SELECT 1 FROM lab_result n WHERE n.id > ? AND {SAME});"
        ));
    }
    sql.push_str(
        "INSERT INTO audit_event (at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq, mac, chain)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);",
    );
    if oru.identifiers.is_empty() {
        sql.push_str("RELEASE one;");
    }
    let (issuer, pid) = (&oru.patient_issuer, &oru.patient_id);
    let performer = oru.performing_institution_id;
    // Built only from the constant pieces above, never from values.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(issuer)
        .bind(pid)
        .bind(&oru.patient_name)
        .bind(&oru.name_alphabetic)
        .bind(&oru.name_ideographic)
        .bind(&oru.birth_date)
        .bind(&oru.sex)
        .bind(ts)
        .bind(&oru.name_key);
    let actor = match source {
        "hl7v2" => "hl7",
        other => other,
    };
    q = bind_new_record_person(q, (issuer, pid), &oru.new_person_public_id, actor, ts);
    for (k, o) in oru.orders.iter().enumerate() {
        let id = report_base + 1 + k as i64;
        let (isys, ival) = split_identifier(&o.identifier);
        q = q
            .bind(id)
            .bind(message)
            .bind(source)
            .bind(issuer)
            .bind(pid)
            .bind(performer)
            .bind(o.category.code())
            .bind(&o.study_uid)
            .bind(performer)
            .bind(performer)
            .bind(&o.accession_number)
            .bind(&o.study_uid)
            .bind(&o.accession_number)
            .bind(&o.placer_order)
            .bind(&o.filler_order)
            .bind(isys)
            .bind(ival)
            .bind(&o.procedure_code)
            .bind(&o.procedure_code_system)
            .bind(&o.procedure_text)
            .bind(&o.text)
            .bind(&o.status)
            .bind(&o.specimen)
            .bind(&o.effective_at)
            .bind(o.effective_instant)
            .bind(&o.reported_at)
            .bind(o.reported_instant)
            .bind(ts)
            .bind(id);
    }
    if !results.is_empty() {
        for (j, (report_id, r)) in results.iter().enumerate() {
            let (isys, ival) = split_identifier(&r.identifier);
            q = q
                .bind(result_base + 1 + j as i64)
                .bind(message)
                .bind(source)
                .bind(*report_id)
                .bind(issuer)
                .bind(pid)
                .bind(performer)
                .bind(&r.performing_lab)
                .bind(&r.placer_order)
                .bind(&r.filler_order)
                .bind(&r.order_code)
                .bind(&r.order_text)
                .bind(r.set_id)
                .bind(isys)
                .bind(ival)
                .bind(&r.value_type)
                .bind(&r.code)
                .bind(&r.code_text)
                .bind(&r.code_system)
                .bind(&r.value)
                .bind(r.value_num)
                .bind(&r.comparator)
                .bind(&r.unit)
                .bind(&r.unit_ucum)
                .bind(&r.reference_range)
                .bind(&r.abnormal_flag)
                .bind(&r.status)
                .bind(&r.specimen)
                .bind(&r.observed_at)
                .bind(r.observed_instant)
                .bind(&r.reported_at)
                .bind(r.reported_instant)
                .bind(ts);
        }
        q = q
            .bind(result_base)
            .bind(issuer)
            .bind(pid)
            .bind(result_base)
            .bind(result_base);
    }
    bind_audit(q, audit, chain).execute(&mut *conn).await?;
    if !oru.identifiers.is_empty() {
        for ident in &oru.identifiers {
            link_identifier(conn, (issuer, pid), ident, ts).await?;
        }
        sqlx::query("RELEASE one").execute(&mut *conn).await?;
    }
    Ok(OruOutcome::Stored {
        report_ids: (0..oru.orders.len() as i64)
            .map(|k| report_base + 1 + k)
            .collect(),
        result_ids: (0..results.len() as i64)
            .map(|j| result_base + 1 + j)
            .collect(),
    })
}
