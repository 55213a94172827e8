//! The group-commit writer: one task takes every commit queued (instances, HL7 messages,
//! audit events), runs each in its own savepoint inside one transaction, chains every audit
//! event (ARCHITECTURE.md, "What one audit event is") and answers each job after the group is
//! durable.

use crate::chain::{Chain, insert_audit};
use crate::commit::{commit_one, commit_oru_in};
use crate::sql::db;
use huren_access::AuditEvent;
use huren_archive::model::*;
use huren_archive::ports::StoreError;
use sqlx::{Connection, SqliteConnection};
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
