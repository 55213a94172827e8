//! The group-commit writer: one task takes every commit queued (instances, HL7 messages,
//! audit events), runs each in its own savepoint inside one transaction, chains every audit
//! event (ARCHITECTURE.md, "What one audit event is") and answers each job after the group is
//! durable.

use crate::ingest::commit_one;
use crate::oru::commit_oru_in;
use crate::sqlite::*;
use huren_access::AuditEvent;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use huren_seal::chain::{ChainKey, GENESIS};
use sqlx::{Connection, Row, SqliteConnection};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What the group-commit writer commits: an instance (DICOM ingest) or an HL7 message.
pub(crate) enum Job {
    Instance(
        Box<NewInstance>,
        AuditEvent,
        oneshot::Sender<Result<CommitOutcome, StoreError>>,
    ),
    Oru(
        Box<NewOru>,
        AuditEvent,
        oneshot::Sender<Result<OruOutcome, StoreError>>,
    ),
    /// An audit event on its own (refusals, configuration changes, reads): through the writer
    /// like every other, so the chain has one head.
    Audit(AuditEvent, oneshot::Sender<Result<(), StoreError>>),
}

/// A job's result, held until its group commits.
pub(crate) enum Done {
    Instance(
        oneshot::Sender<Result<CommitOutcome, StoreError>>,
        Result<CommitOutcome, StoreError>,
    ),
    Oru(
        oneshot::Sender<Result<OruOutcome, StoreError>>,
        Result<OruOutcome, StoreError>,
    ),
    Audit(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
}

impl Done {
    fn failed(&self) -> bool {
        match self {
            Done::Instance(_, r) => r.is_err(),
            Done::Oru(_, r) => r.is_err(),
            Done::Audit(_, r) => r.is_err(),
        }
    }
}

/// The group-commit loop: waits for one request, takes every other one already queued (up to
/// a bound), and commits them together.
pub(crate) async fn writer(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Job>,
    mut chain: Chain,
) {
    const MAX_BATCH: usize = 256;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut done: Vec<Done> = Vec::with_capacity(batch.len());
        let tx_result: Result<(), sqlx::Error> = async {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            chain.load(&mut tx).await?;
            for job in batch {
                // Each job runs inside its own savepoint: a refused one leaves no trace and
                // the rest of the group commits (its audit link is taken back too).
                let mark = chain.mark();
                let d = match job {
                    Job::Instance(rec, audit, reply) => {
                        let r = commit_one(&mut tx, &rec, &audit, &mut chain).await;
                        Done::Instance(reply, r)
                    }
                    Job::Oru(oru, audit, reply) => {
                        let r = commit_oru_in(&mut tx, &oru, &audit, &mut chain).await;
                        Done::Oru(reply, r)
                    }
                    Job::Audit(ev, reply) => {
                        let r = insert_audit(&mut tx, &ev, &mut chain).await.map_err(db);
                        Done::Audit(reply, r)
                    }
                };
                if d.failed() {
                    chain.reset(mark);
                }
                done.push(d);
            }
            tx.commit().await
        }
        .await;
        let failed = tx_result.err().map(db);
        if let Some(err) = &failed {
            tracing::error!(error = %err, "group commit failed");
        }
        for d in done {
            match d {
                Done::Instance(reply, r) => {
                    let _ = reply.send(match &failed {
                        Some(e) => Err(clone_err(e)),
                        None => r,
                    });
                }
                Done::Oru(reply, r) => {
                    let _ = reply.send(match &failed {
                        Some(e) => Err(clone_err(e)),
                        None => r,
                    });
                }
                Done::Audit(reply, r) => {
                    let _ = reply.send(match &failed {
                        Some(e) => Err(clone_err(e)),
                        None => r,
                    });
                }
            }
        }
    }
}

pub(crate) fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::OutOfSpace(m) => StoreError::OutOfSpace(m.clone()),
        StoreError::NotFound(m) => StoreError::NotFound(m.clone()),
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
        StoreError::Backend { step, source } => StoreError::Backend {
            step: step.clone(),
            source: source.clone(),
        },
    }
}

pub(crate) type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// The audit chain's head as the writer sees it: read from the database at the start of every
/// group transaction (another process — the CLI — may have appended since), advanced per event,
/// and put back when a job's savepoint is rolled back.
pub(crate) struct Chain {
    key: Option<Arc<ChainKey>>,
    seq: i64,
    mac: Vec<u8>,
}

impl Chain {
    pub(crate) fn new(key: Option<Arc<ChainKey>>) -> Self {
        Chain {
            key,
            seq: 0,
            mac: GENESIS.to_vec(),
        }
    }

    async fn load(&mut self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        if self.key.is_none() {
            return Ok(());
        }
        let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, mac FROM audit_event WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?;
        (self.seq, self.mac) = head.unwrap_or((0, GENESIS.to_vec()));
        Ok(())
    }

    fn mark(&self) -> (i64, Vec<u8>) {
        (self.seq, self.mac.clone())
    }

    fn reset(&mut self, mark: (i64, Vec<u8>)) {
        (self.seq, self.mac) = mark;
    }

    /// The next event's (seq, mac), or NULLs when no chain key is configured.
    fn link(&mut self, fields: &[Option<&str>]) -> (Option<i64>, Option<Vec<u8>>) {
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

/// Binds the twelve values of an `audit_event` row, in column order, chaining it.
pub(crate) fn bind_audit<'q>(q: Query<'q>, ev: &AuditEvent, chain: &mut Chain) -> Query<'q> {
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
}

pub(crate) async fn insert_audit(
    conn: &mut SqliteConnection,
    ev: &AuditEvent,
    chain: &mut Chain,
) -> Result<(), sqlx::Error> {
    let q = sqlx::query(
        "INSERT INTO audit_event (at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq, mac)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    bind_audit(q, ev, chain).execute(&mut *conn).await?;
    Ok(())
}
