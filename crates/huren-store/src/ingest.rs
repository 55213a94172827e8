//! Ingest in SQL: one instance's commit inside the writer's group (duplicate-UID policy,
//! patient record and person, study/series rows, QC queue, audit event), study lifecycle,
//! stability and the sweep's reads.

use crate::linking::*;
use crate::sqlite::*;
use crate::writer::*;
use async_trait::async_trait;
use huren_access::AuditEvent;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use huren_types::Lifecycle;
use sqlx::{Row, SqliteConnection};
use tokio::sync::oneshot;

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
           updated_at = excluded.updated_at;
",
    );
    sql.push_str(NEW_RECORD_PERSON);
    sql.push_str(
        "INSERT INTO study (patient_id, study_uid, institution_id, study_date, study_time, study_instant, accession_number, study_id,
                            description, referring_physician, institution_name, last_instance_at, stable_after_secs)
         VALUES ((SELECT id FROM patient WHERE issuer = ? AND patient_id = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (study_uid, institution_id) DO UPDATE SET
           last_instance_at = excluded.last_instance_at, stable_at = NULL,
           stable_after_secs = excluded.stable_after_secs,
           study_date = COALESCE(study_date, excluded.study_date),
           study_time = COALESCE(study_time, excluded.study_time),
           study_instant = COALESCE(study_instant, excluded.study_instant),
           accession_number = COALESCE(accession_number, excluded.accession_number),
           description = COALESCE(description, excluded.description);
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
            number_of_frames, rows, columns, bits_allocated, photometric, lossy, image_type, content_date, content_time, pixel_layout, uid_conflict, attributes)
         SELECT se.id, st.id, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
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
        "INSERT INTO audit_event (at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq, mac)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);",
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
    .bind(&r.patient_issuer)
    .bind(&r.patient_id)
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
        .bind(serde_json::to_string(a).unwrap_or_else(|_| "{}".into()))
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

#[async_trait]
impl IngestIndex for SqliteIndex {
    async fn commit_instance(
        &self,
        rec: NewInstance,
        audit: AuditEvent,
    ) -> Result<CommitOutcome, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Instance(Box::new(rec), audit, tx))
            .await
            .map_err(|_| StoreError::broken("index writer stopped"))?;
        rx.await
            .map_err(|_| StoreError::broken("index writer dropped the commit"))?
    }

    async fn set_study_lifecycle(
        &self,
        study_uid: &str,
        institution_code: Option<&str>,
        to: Lifecycle,
    ) -> Result<StudyLifecycleChange, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let study_ids: Vec<i64> = match institution_code {
            Some(code) => sqlx::query_scalar("SELECT s.id FROM study s JOIN institution i ON i.id = s.institution_id WHERE s.study_uid = ? AND i.code = ? COLLATE NOCASE")
                .bind(study_uid)
                .bind(code)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?,
            None => sqlx::query_scalar("SELECT id FROM study WHERE study_uid = ?").bind(study_uid).fetch_all(&mut *tx).await.map_err(db)?,
        };
        if study_ids.is_empty() {
            return Err(StoreError::NotFound(format!("study {study_uid}")));
        }
        let mut change = StudyLifecycleChange {
            studies: study_ids.len() as i64,
            instances: 0,
            blob_keys: Vec::new(),
        };
        for sid in study_ids {
            let keys: Vec<String> = sqlx::query_scalar("SELECT blob_key FROM instance WHERE study_id = ? AND lifecycle IN ('active','superseded','rejected')")
                .bind(sid)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            let n = sqlx::query("UPDATE instance SET lifecycle = ? WHERE study_id = ? AND lifecycle IN ('active','superseded','rejected') AND lifecycle != ?")
                .bind(to.as_str())
                .bind(sid)
                .bind(to.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            change.instances += n as i64;
            sqlx::query(
                "UPDATE series SET num_instances = 0, version = version + 1 WHERE study_id = ?",
            )
            .bind(sid)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query(
                "UPDATE study SET num_instances = 0, num_series = 0, modalities = '' WHERE id = ?",
            )
            .bind(sid)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if to == Lifecycle::Deleted {
                sqlx::query("DELETE FROM instance_json WHERE instance_id IN (SELECT id FROM instance WHERE study_id = ?)")
                    .bind(sid)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                change.blob_keys.extend(keys);
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(change)
    }

    async fn instances_by_sop_uid(&self, sop_uid: &str) -> Result<Vec<InstanceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.*, st.study_uid, p.issuer, p.patient_id AS pid, p.name_raw FROM instance i
             JOIN study st ON st.id = i.study_id JOIN patient p ON p.id = st.patient_id WHERE i.sop_uid = ? ORDER BY i.id",
        )
        .bind(sop_uid)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| InstanceRow {
                id: r.get("id"),
                sop_instance_uid: r.get("sop_uid"),
                study_instance_uid: r.get("study_uid"),
                lifecycle: r.get("lifecycle"),
                version: r.get("version"),
                sender_institution_id: r.get("sender_institution_id"),
                performing_institution_id: r.get("performing_institution_id"),
                blob_key: r.get("blob_key"),
                sha256: r.get("sha256"),
                size: r.get("size"),
                patient_issuer: r.get("issuer"),
                patient_id: r.get("pid"),
                patient_name: r.get("name_raw"),
                uid_conflict: r.get::<i64, _>("uid_conflict") != 0,
            })
            .collect())
    }

    async fn blob_keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT blob_key FROM instance WHERE blob_key >= ? AND blob_key < ?")
            .bind(prefix)
            .bind(format!("{prefix}\u{10FFFF}"))
            .fetch_all(&self.pool)
            .await
            .map_err(db)
    }

    async fn sweep_watermark(&self) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM setting WHERE key = 'sweep_watermark'")
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn set_sweep_watermark(&self, partition: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO setting (key, value) VALUES ('sweep_watermark', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(partition)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn mark_stable_studies(&self, now_unix: i64) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let ids: Vec<i64> = sqlx::query_scalar("UPDATE study SET stable_at = ? WHERE stable_at IS NULL AND last_instance_at + stable_after_secs <= ? RETURNING id")
            .bind(now_unix)
            .bind(now_unix)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        for id in &ids {
            sqlx::query(
                "INSERT INTO study_event (study_id, kind, at) VALUES (?, 'study_stable', ?)",
            )
            .bind(id)
            .bind(now_unix)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(ids)
    }

    async fn counts(&self) -> Result<ArchiveCounts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM institution) AS inst, (SELECT COUNT(*) FROM patient) AS pat,
                    (SELECT COUNT(*) FROM study WHERE num_instances > 0) AS st, (SELECT COUNT(*) FROM series WHERE num_instances > 0) AS se,
                    (SELECT COUNT(*) FROM instance WHERE lifecycle = 'active') AS ins",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(ArchiveCounts {
            institutions: row.get("inst"),
            patients: row.get("pat"),
            studies: row.get("st"),
            series: row.get("se"),
            instances: row.get("ins"),
        })
    }
}
