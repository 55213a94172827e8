//! Reading the audit chain back: its head (for checkpoints) and a full verification
//! (`huren audit verify`). The chain itself is written by the group-commit writer.

use crate::chain::{MAIN_CHAIN, audit_stored_fields};
use crate::sql::*;
use crate::sqlite::*;
use crate::writer::*;
use async_trait::async_trait;
use huren_access::AuditEvent;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_archive::ports::*;
use huren_seal::chain::{ChainKey, GENESIS};
use sqlx::{Row, SqlitePool};

/// A small read connection on the index for the audit chain (checkpoints, verification).
#[derive(Clone)]
pub struct AuditReader(SqlitePool);

impl AuditReader {
    pub async fn open(index: &std::path::Path) -> Result<AuditReader, StoreError> {
        let opts = crate::SqliteIndex::connect_options(index).create_if_missing(false);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::backend("opening the audit trail", e))?;
        Ok(AuditReader(pool))
    }

    pub async fn head(&self) -> Result<Option<Head>, StoreError> {
        head(&self.0)
            .await
            .map_err(|e| StoreError::backend("reading the chain head", e))
    }

    pub async fn verify(&self, key: &ChainKey) -> Result<Verification, StoreError> {
        verify(&self.0, key)
            .await
            .map_err(|e| StoreError::backend("verifying the chain", e))
    }

    pub async fn mac_at(&self, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        mac_at(&self.0, seq)
            .await
            .map_err(|e| StoreError::backend("reading a chain link", e))
    }
}

/// The newest event of the chain this node writes (`main`); checkpoints of other nodes' chains
/// come with several nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub mac: Vec<u8>,
}

async fn head(pool: &SqlitePool) -> Result<Option<Head>, sqlx::Error> {
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, mac FROM audit_event WHERE chain = ? AND seq IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .bind(MAIN_CHAIN)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(seq, mac)| Head { seq, mac }))
}

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    pub chained: i64,
    /// Events stored before the chain started (no key configured, or before the migration).
    pub before_chain: i64,
    pub problems: Vec<String>,
}

/// Walks every chain in sequence order, recomputing every MAC from the stored fields and the
/// stored previous MAC (so one altered event is reported as itself, not as everything after
/// it), and flags unchained rows stored after the chain began.
async fn verify(pool: &SqlitePool, key: &ChainKey) -> Result<Verification, sqlx::Error> {
    let mut v = Verification::default();
    let first: Option<i64> =
        sqlx::query_scalar("SELECT MIN(id) FROM audit_event WHERE seq IS NOT NULL")
            .fetch_one(pool)
            .await?;
    let unchained = sqlx::query("SELECT id FROM audit_event WHERE seq IS NULL ORDER BY id")
        .fetch_all(pool)
        .await?;
    for r in unchained {
        let id: i64 = r.get(0);
        match first {
            Some(f) if id > f => v.problems.push(format!(
                "event id {id} carries no chain link although the chain had begun: it was inserted outside huren"
            )),
            _ => v.before_chain += 1,
        }
    }
    // Each chain on its own (migration 0046: one per node), from its genesis.
    let chains: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT chain FROM audit_event WHERE seq IS NOT NULL ORDER BY chain",
    )
    .fetch_all(pool)
    .await?;
    for chain in chains {
        let named = |what: String| {
            if chain == MAIN_CHAIN {
                what
            } else {
                format!("chain {chain}: {what}")
            }
        };
        let rows = sqlx::query(
            "SELECT id, at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq, mac
               FROM audit_event WHERE chain = ? AND seq IS NOT NULL ORDER BY seq",
        )
        .bind(&chain)
        .fetch_all(pool)
        .await?;
        let mut prev = GENESIS.to_vec();
        let mut expected = 1i64;
        for r in &rows {
            let (id, seq, mac): (i64, i64, Vec<u8>) = (r.get(0), r.get(11), r.get(12));
            if seq != expected {
                v.problems.push(named(format!(
                    "sequence jumps from {} to {seq}: events were removed or renumbered",
                    expected - 1
                )));
            }
            let fields = audit_stored_fields(r);
            let want = key.link(
                &prev,
                seq,
                &fields.iter().map(Option::as_deref).collect::<Vec<_>>(),
            );
            if want.as_slice() != mac.as_slice() {
                v.problems.push(named(format!(
                    "event seq {seq} (id {id}) does not match its chain link: it was altered, moved, or the chain was recomputed without the key"
                )));
            }
            v.chained += 1;
            prev = mac;
            expected = seq + 1;
        }
    }
    Ok(v)
}

/// The stored MAC of event `seq`, if there is one.
async fn mac_at(pool: &SqlitePool, seq: i64) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT mac FROM audit_event WHERE chain = ? AND seq = ?")
        .bind(MAIN_CHAIN)
        .bind(seq)
        .fetch_optional(pool)
        .await
}

pub async fn audit_events(
    pool: &SqlitePool,
    f: &huren_archive::model::AuditFilter,
    limit: u32,
) -> Result<Vec<huren_archive::model::AuditRow>, sqlx::Error> {
    // A patient is named by person (`person:…` in the trail) or by one record (`PID@issuer`).
    let rows: Vec<AuditEventRow> = sqlx::query_as(
        "SELECT id, at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq
           FROM audit_event
          WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2) AND (?3 IS NULL OR id < ?3)
            AND (?4 IS NULL OR action = ?4) AND (?5 IS NULL OR institution = ?5)
            AND (?6 IS NULL OR patient = ?6 OR patient = 'person:' || ?6)
            AND (?7 IS NULL OR instr(actor, ?7) > 0)
          ORDER BY id DESC LIMIT ?8",
    )
    .bind(f.from)
    .bind(f.until)
    .bind(f.before)
    .bind(f.action.as_deref())
    .bind(f.institution.as_deref())
    .bind(f.patient.as_deref())
    .bind(f.actor.as_deref())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// An audit event as the auditors' reads return it, from either dialect.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditEventRow {
    id: i64,
    at: i64,
    action: String,
    outcome: String,
    actor: String,
    institution: Option<String>,
    patient: Option<String>,
    study_uid: Option<String>,
    object: Option<String>,
    source_address: Option<String>,
    detail: String,
    seq: Option<i64>,
}

impl From<AuditEventRow> for huren_archive::model::AuditRow {
    fn from(r: AuditEventRow) -> Self {
        huren_archive::model::AuditRow {
            id: r.id,
            at: r.at,
            action: r.action,
            outcome: r.outcome,
            actor: r.actor,
            institution: r.institution,
            patient: r.patient,
            study_uid: r.study_uid,
            object: r.object,
            source_address: r.source_address,
            detail: r.detail,
            seq: r.seq,
        }
    }
}

#[async_trait]
impl AuditIndex for SqliteIndex {
    async fn record_audit(&self, ev: AuditEvent) -> Result<(), StoreError> {
        self.through_writer(|done| Job::Audit(ev, done)).await
    }

    async fn audit_events(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        audit_events(&self.pool, filter, limit).await.map_err(db)
    }
}
