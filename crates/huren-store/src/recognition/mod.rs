//! Mutual recognition in SQL (`RecognitionIndex`): a person's studies as recognition sees
//! them, decisions and reminders (`decisions`), the statistics roll-up and its prices
//! (`rollup`). The recognition configuration sets are the catalog store's (`crate::catalog`).

pub(crate) mod decisions;
pub(crate) mod rollup;
#[cfg(test)]
mod tests;

use crate::sql::*;
use crate::sqlite::*;
use async_trait::async_trait;
pub(crate) use decisions::*;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
pub(crate) use rollup::*;
use sqlx::Row;

#[async_trait]
impl RecognitionIndex for SqliteIndex {
    async fn study_encodings(
        &self,
        study_uids: &[String],
    ) -> Result<Vec<(String, String, bool)>, StoreError> {
        if study_uids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; study_uids.len()].join(",");
        let sql = format!(
            "SELECT s.study_uid, i.transfer_syntax_uid, MAX(COALESCE(i.lossy, '') = '01')
               FROM study s JOIN instance i ON i.study_id = s.id AND i.lifecycle = 'active'
              WHERE s.study_uid IN ({marks}) GROUP BY s.study_uid, i.transfer_syntax_uid"
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for u in study_uids {
            q = q.bind(u);
        }
        q.fetch_all(&self.pool).await.map_err(db)
    }

    async fn person_studies(
        &self,
        public_id: &str,
        limit: u32,
        as_of: Option<i64>,
    ) -> Result<Option<Vec<TimelineStudy>>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let Some(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM person WHERE public_id = ?")
            .bind(public_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT s.study_uid, s.study_date, s.study_time, s.study_instant, s.modalities, s.description,
                    s.accession_number, s.num_instances, i.code,
                    (SELECT a.value FROM institution_attribute a WHERE a.institution_id = i.id AND a.attribute = 'name'
                       ORDER BY a.valid_from DESC LIMIT 1),
                    p.patient_id, p.issuer,
                    (SELECT COALESCE(group_concat(DISTINCT upper(se.body_part)), '') FROM series se
                      WHERE se.study_id = s.id AND se.body_part IS NOT NULL AND se.body_part != '')
               FROM study s JOIN patient p ON p.id = s.patient_id JOIN institution i ON i.id = s.institution_id
              WHERE p.person_id = ?1 AND s.num_instances > 0
                AND (?3 IS NULL OR EXISTS (SELECT 1 FROM instance x WHERE x.study_id = s.id AND x.received_at <= ?3))
              ORDER BY s.study_instant DESC NULLS LAST, s.id DESC LIMIT ?2",
        )
        .bind(id)
        .bind(i64::from(limit))
        .bind(as_of)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        Ok(Some(
            rows.iter()
                .map(|r| TimelineStudy {
                    study_instance_uid: r.get(0),
                    study_date: r.get(1),
                    study_time: r.get(2),
                    study_instant: r.get(3),
                    modalities: r.get::<Option<String>, _>(4).unwrap_or_default(),
                    description: r.get(5),
                    accession_number: r.get(6),
                    instances: r.get(7),
                    performing_institution: r.get(8),
                    performing_institution_name: r.get(9),
                    patient_id: r.get(10),
                    issuer: r.get(11),
                    body_parts: r.get(12),
                    catalog_item: None,
                })
                .collect(),
        ))
    }

    async fn recognition_statistics(
        &self,
        from: time::Date,
        until: time::Date,
        institution: Option<i64>,
        by: huren_archive::recognition::StatsBy,
    ) -> Result<Vec<huren_archive::model::StatsCell>, StoreError> {
        statistics(&self.pool, from, until, institution, by)
            .await
            .map_err(db)
    }

    async fn unpriced_recognition_units(
        &self,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        unpriced_units(&self.pool).await.map_err(db)
    }

    async fn price_recognition_units(
        &self,
        prices: &[(String, String, String, Option<i64>)],
    ) -> Result<(), StoreError> {
        set_unit_prices(&self.pool, prices).await.map_err(db)
    }

    async fn recognition_rebuild_price_keys(
        &self,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        rebuild_price_keys(&self.pool).await.map_err(db)
    }

    async fn rebuild_recognition_units(
        &self,
        prices: &[(String, String, String, Option<i64>)],
    ) -> Result<u64, StoreError> {
        rebuild_units(&self.pool, prices).await.map_err(db)
    }

    async fn reprice_recognition_units(
        &self,
        items: Option<&[String]>,
        institution: Option<&str>,
    ) -> Result<u64, StoreError> {
        reprice_units(&self.pool, items, institution)
            .await
            .map_err(db)
    }

    async fn record_recognition_decision(
        &self,
        d: &NewRecognitionDecision,
    ) -> Result<(i64, u64), StoreError> {
        record_decision(&self.pool, d).await.map_err(db)
    }

    async fn recognition_decision(&self, id: i64) -> Result<Option<StoredDecision>, StoreError> {
        decision(&self.pool, id).await.map_err(db)
    }

    async fn record_reminder(&self, r: &NewReminder) -> Result<Option<i64>, StoreError> {
        record_reminder(&self.pool, r).await.map_err(db)
    }

    async fn reminder_opened(
        &self,
        institution: i64,
        study_uid: &str,
        at: i64,
    ) -> Result<u64, StoreError> {
        reminder_opened(&self.pool, institution, study_uid, at)
            .await
            .map_err(db)
    }

    async fn open_visit(
        &self,
        institution: i64,
        person: &str,
    ) -> Result<Option<String>, StoreError> {
        crate::accounts::open_visit(&self.pool, institution, person)
            .await
            .map_err(db)
    }

    async fn set_revoke_hash(&self, id: i64, revoke_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE patient_authorization SET revoke_hash = ? WHERE id = ?")
            .bind(revoke_hash)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn revoke_by_patient(
        &self,
        revoke_hash: &str,
        now: i64,
    ) -> Result<Option<(i64, String, String)>, StoreError> {
        sqlx::query_as(
            "UPDATE patient_authorization SET revoked_at = ?1
              WHERE revoke_hash = ?2 AND revoked_at IS NULL AND expires_at > ?1
             RETURNING id, (SELECT public_id FROM person WHERE id = person_id),
                       (SELECT code FROM institution WHERE id = institution_id)",
        )
        .bind(now)
        .bind(revoke_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }
}
