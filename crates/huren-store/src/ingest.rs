//! Ingest in SQL: one instance's commit inside the writer's group (duplicate-UID policy,
//! patient record and person, study/series rows, QC queue, audit event), study lifecycle,
//! stability and the sweep's reads.

use crate::sql::*;
use crate::sqlite::*;
use crate::writer::*;
use async_trait::async_trait;
use huren_access::AuditEvent;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use huren_types::Lifecycle;
use sqlx::Row;

/// An object the index names, as `huren migrate objects` copies it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredObject {
    pub id: i64,
    pub blob_key: String,
    pub size: i64,
    pub sha256: String,
}

impl SqliteIndex {
    /// The objects of every instance not deleted, by id after `after_id`, a page at a time.
    pub async fn stored_objects(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<StoredObject>, StoreError> {
        sqlx::query_as(
            "SELECT id, blob_key, size, sha256 FROM instance
              WHERE id > ? AND lifecycle != 'deleted' ORDER BY id LIMIT ?",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }
}

#[async_trait]
impl IngestIndex for SqliteIndex {
    async fn commit_instance(
        &self,
        rec: NewInstance,
        audit: AuditEvent,
        durable: BytesDurable,
    ) -> Result<CommitOutcome, StoreError> {
        self.through_writer(|done| Job::Instance(Box::new(rec), audit, durable, done))
            .await
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
        // In chunks, each its own short transaction: one statement over every quiet study
        // held the write lock for seconds on a large index (7 s at 1M studies after a bulk
        // load), and every ingest commit and QC update waited behind it (issue 22, item 5).
        const CHUNK: i64 = 500;
        let mut all = Vec::new();
        loop {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
            let ids: Vec<i64> = sqlx::query_scalar(
                "UPDATE study SET stable_at = ?
                  WHERE id IN (SELECT id FROM study WHERE stable_at IS NULL AND last_instance_at + stable_after_secs <= ?
                               ORDER BY last_instance_at LIMIT ?)
                 RETURNING id",
            )
            .bind(now_unix)
            .bind(now_unix)
            .bind(CHUNK)
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
            let done = (ids.len() as i64) < CHUNK;
            all.extend(ids);
            if done {
                return Ok(all);
            }
            // Let queued writers in between chunks.
            tokio::task::yield_now().await;
        }
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
