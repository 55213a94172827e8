//! `AuditIndex` on PostgreSQL: each node appends to its own chain (ARCHITECTURE.md, "Several
//! nodes on one index"). A node's connections take turns at its chain's head through a
//! transaction-scoped advisory lock named by the chain; other nodes' chains are never waited
//! on. The links are computed as the SQLite writer computes them (`crate::chain`).

use super::PgIndex;
use crate::audit::AuditEventRow;
use crate::chain::{AUDIT_COLUMNS, Chain, bind_audit};
use crate::sql::*;
use async_trait::async_trait;
use huren_access::AuditEvent;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;

#[async_trait]
impl AuditIndex for PgIndex {
    async fn record_audit(&self, ev: AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('huren.audit.' || $1))")
            .bind(&self.chain)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, mac FROM audit_event WHERE chain = $1 AND seq IS NOT NULL
              ORDER BY seq DESC LIMIT 1",
        )
        .bind(&self.chain)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let mut chain = Chain::resume(self.chain_key.clone(), &self.chain, head);
        let q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO audit_event ({AUDIT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )));
        bind_audit(q, &ev, &mut chain)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn audit_events(&self, f: &AuditFilter, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        // The filters of crate::audit::audit_events.
        let rows: Vec<AuditEventRow> = sqlx::query_as(
            "SELECT id, at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq
               FROM audit_event
              WHERE ($1::bigint IS NULL OR at >= $1) AND ($2::bigint IS NULL OR at < $2)
                AND ($3::bigint IS NULL OR id < $3)
                AND ($4::text IS NULL OR action = $4) AND ($5::text IS NULL OR institution = $5)
                AND ($6::text IS NULL OR patient = $6 OR patient = 'person:' || $6)
                AND ($7::text IS NULL OR strpos(actor, $7) > 0)
              ORDER BY id DESC LIMIT $8",
        )
        .bind(f.from)
        .bind(f.until)
        .bind(f.before)
        .bind(f.action.as_deref())
        .bind(f.institution.as_deref())
        .bind(f.patient.as_deref())
        .bind(f.actor.as_deref())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
