//! The audit chain as the writer keeps it (ARCHITECTURE.md, "What one audit event is"): the
//! head read at the start of each group, every event's MAC over the previous one and its
//! fields, and the insert that binds them.

use crate::sql::now;
use huren_access::AuditEvent;
use huren_seal::chain::{ChainKey, GENESIS};
use sqlx::{Row, SqliteConnection};
use std::sync::Arc;

/// The audit chain's head as the writer sees it: read from the database at the start of every
/// group transaction (another process — the CLI — may have appended since), advanced per event,
/// and put back when a job's savepoint is rolled back.
pub(crate) struct Chain {
    key: Option<Arc<ChainKey>>,
    /// The chain's name (migration 0046): `main` for a node that has the index to itself.
    name: String,
    seq: i64,
    mac: Vec<u8>,
}

/// The chain a single node writes.
pub(crate) const MAIN_CHAIN: &str = "main";

impl Chain {
    pub(crate) fn new(key: Option<Arc<ChainKey>>) -> Self {
        Chain {
            key,
            name: MAIN_CHAIN.to_owned(),
            seq: 0,
            mac: GENESIS.to_vec(),
        }
    }

    pub(crate) async fn load(&mut self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        if self.key.is_none() {
            return Ok(());
        }
        let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, mac FROM audit_event WHERE chain = ? AND seq IS NOT NULL ORDER BY seq DESC LIMIT 1",
        )
        .bind(&self.name)
        .fetch_optional(&mut *conn)
        .await?;
        (self.seq, self.mac) = head.unwrap_or((0, GENESIS.to_vec()));
        Ok(())
    }

    /// A chain picked up at `head` (its newest event's seq and MAC; none: a new chain), for an
    /// adapter that reads the head itself.
    pub(crate) fn resume(
        key: Option<Arc<ChainKey>>,
        name: &str,
        head: Option<(i64, Vec<u8>)>,
    ) -> Self {
        let (seq, mac) = head.unwrap_or((0, GENESIS.to_vec()));
        Chain {
            key,
            name: name.to_owned(),
            seq,
            mac,
        }
    }

    pub(crate) fn mark(&self) -> (i64, Vec<u8>) {
        (self.seq, self.mac.clone())
    }

    pub(crate) fn reset(&mut self, mark: (i64, Vec<u8>)) {
        (self.seq, self.mac) = mark;
    }

    /// The next event's (seq, mac), or NULLs when no chain key is configured.
    pub(crate) fn link(&mut self, fields: &[Option<&str>]) -> (Option<i64>, Option<Vec<u8>>) {
        let Some(key) = &self.key else {
            return (None, None);
        };
        let mac = key.link(&self.mac, self.seq + 1, fields);
        self.seq += 1;
        self.mac = mac.to_vec();
        (Some(self.seq), Some(self.mac.clone()))
    }
}

/// An audit event's stored fields, in column order — also the order they are chained in
/// (`huren audit verify` reads them back in the same order).
pub(crate) fn audit_fields(ev: &AuditEvent, at: i64) -> [Option<String>; 10] {
    let text = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    [
        Some(at.to_string()),
        Some(text(serde_json::to_value(ev.action))),
        Some(text(serde_json::to_value(ev.outcome))),
        Some(ev.actor.clone()),
        ev.institution.clone(),
        ev.patient.clone(),
        ev.study_uid.clone(),
        ev.object.clone(),
        ev.source_address.clone(),
        Some(ev.detail.to_string()),
    ]
}

/// The chained fields of a stored row whose columns 1..=10 are `at, action, outcome, actor,
/// institution, patient, study_uid, object, source_address, detail` (as `audit::verify`
/// selects them).
pub(crate) fn audit_stored_fields(r: &sqlx::sqlite::SqliteRow) -> [Option<String>; 10] {
    [
        Some(r.get::<i64, _>(1).to_string()),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
        r.get(8),
        r.get(9),
        r.get(10),
    ]
}

/// The columns [`bind_audit`] binds, in its order.
pub(crate) const AUDIT_COLUMNS: &str = "at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq, mac, chain";

/// Binds the thirteen values of an `audit_event` row ([`AUDIT_COLUMNS`]), chaining it: for
/// either dialect's query (the SQLite writer's statements, PostgreSQL's per-chain append).
pub(crate) fn bind_audit<'q, DB>(
    q: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    ev: &AuditEvent,
    chain: &mut Chain,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<Vec<u8>>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let at = now();
    let f = audit_fields(ev, at);
    let (seq, mac) = chain.link(&f.iter().map(Option::as_deref).collect::<Vec<_>>());
    let [
        _,
        action,
        outcome,
        actor,
        institution,
        patient,
        study,
        object,
        source,
        detail,
    ] = f;
    q.bind(at)
        .bind(action)
        .bind(outcome)
        .bind(actor)
        .bind(institution)
        .bind(patient)
        .bind(study)
        .bind(object)
        .bind(source)
        .bind(detail)
        .bind(seq)
        .bind(mac)
        .bind(chain.name.clone())
}

pub(crate) async fn insert_audit(
    conn: &mut SqliteConnection,
    ev: &AuditEvent,
    chain: &mut Chain,
) -> Result<(), sqlx::Error> {
    let q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_event ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )));
    bind_audit(q, ev, chain).execute(&mut *conn).await?;
    Ok(())
}
