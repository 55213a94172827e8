//! The group-commit writer: one task takes every commit queued (instances, HL7 messages,
//! audit events), runs each in its own savepoint inside one transaction, chains every audit
//! event (ARCHITECTURE.md, "What one audit event is") and answers each job after the group is
//! durable.

use crate::chain::{Chain, insert_audit};
use crate::commit::{commit_one, commit_oru_in};
use crate::sql::db;
use huren_access::AuditEvent;
use huren_archive::model::*;
use huren_archive::ports::{BytesDurable, StoreError};
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

/// What the group-commit writer commits: an instance (DICOM ingest) or an HL7 message.
pub(crate) enum Job {
    Instance(
        Box<NewInstance>,
        AuditEvent,
        BytesDurable,
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
enum Outcome {
    Instance(Result<CommitOutcome, StoreError>),
    Oru(Result<OruOutcome, StoreError>),
    Audit(Result<(), StoreError>),
}

impl Outcome {
    fn failed(&self) -> bool {
        match self {
            Outcome::Instance(r) => r.is_err(),
            Outcome::Oru(r) => r.is_err(),
            Outcome::Audit(r) => r.is_err(),
        }
    }
}

/// The group-commit loop: waits for one request, takes every other one already queued (up to
/// a bound), and commits them together.
///
/// An instance's bytes may still be on their way to the disk when its job arrives: its rows
/// are written meanwhile, and the group commits only once every instance in it reports its
/// object durable. If one does not (a write or sync failed), the whole transaction is rolled
/// back and the group runs again without it: a row is never durable before its object.
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
        // Per job: the object's durability, once known (`None`: not an instance, or not yet
        // awaited).
        let mut not_durable: Vec<Option<StoreError>> = batch.iter().map(|_| None).collect();
        let (failed, outcomes) = loop {
            let run = run_group(&mut conn, &mut batch, &not_durable, &mut chain).await;
            match run {
                Ok(Ok(outcomes)) => break (None, outcomes),
                // Some objects did not become durable: roll back (dropping the transaction)
                // and write the group again without them.
                Ok(Err(newly)) => {
                    for (slot, e) in not_durable.iter_mut().zip(newly) {
                        if slot.is_none() {
                            *slot = e;
                        }
                    }
                }
                Err(e) => break (Some(db(e)), Vec::new()),
            }
        };
        if let Some(err) = &failed {
            tracing::error!(error = %err, "group commit failed");
        }
        let mut outcomes = outcomes.into_iter();
        for (job, gate) in batch.into_iter().zip(not_durable) {
            let outcome = outcomes.next();
            match job {
                Job::Instance(_, _, _, reply) => {
                    let _ = reply.send(match (&failed, gate, outcome) {
                        (None, None, Some(Outcome::Instance(r))) => r,
                        (_, Some(e), _) => Err(e),
                        (Some(e), _, _) => Err(clone_err(e)),
                        _ => Err(StoreError::broken("index writer lost an outcome")),
                    });
                }
                Job::Oru(_, _, reply) => {
                    let _ = reply.send(match (&failed, outcome) {
                        (None, Some(Outcome::Oru(r))) => r,
                        (Some(e), _) => Err(clone_err(e)),
                        _ => Err(StoreError::broken("index writer lost an outcome")),
                    });
                }
                Job::Audit(_, reply) => {
                    let _ = reply.send(match (&failed, outcome) {
                        (None, Some(Outcome::Audit(r))) => r,
                        (Some(e), _) => Err(clone_err(e)),
                        _ => Err(StoreError::broken("index writer lost an outcome")),
                    });
                }
            }
        }
    }
}

/// One attempt at a group: every job whose object is not known to have failed, each in its
/// own savepoint, then — once every instance's object is durable — the commit. `Ok(Err(v))`
/// when objects failed to become durable (`v` names them; nothing was committed).
async fn run_group(
    conn: &mut SqliteConnection,
    batch: &mut [Job],
    not_durable: &[Option<StoreError>],
    chain: &mut Chain,
) -> Result<Result<Vec<Outcome>, Vec<Option<StoreError>>>, sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    chain.load(&mut tx).await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for (job, gate) in batch.iter().zip(not_durable) {
        // Each job runs inside its own savepoint: a refused one leaves no trace and the rest
        // of the group commits (its audit link is taken back too).
        let mark = chain.mark();
        let d = match job {
            Job::Instance(..) if gate.is_some() => {
                Outcome::Instance(Err(StoreError::broken("object not durable")))
            }
            Job::Instance(rec, audit, _, _) => {
                Outcome::Instance(commit_one(&mut tx, rec, audit, chain).await)
            }
            Job::Oru(oru, audit, _) => {
                Outcome::Oru(commit_oru_in(&mut tx, oru, audit, chain).await)
            }
            Job::Audit(ev, _) => Outcome::Audit(insert_audit(&mut tx, ev, chain).await.map_err(db)),
        };
        if d.failed() {
            chain.reset(mark);
        }
        outcomes.push(d);
    }
    // The rows are written; now wait for the objects (their syncs ran meanwhile).
    let mut newly: Vec<Option<StoreError>> = batch.iter().map(|_| None).collect();
    let mut any = false;
    for ((job, gate), slot) in batch.iter_mut().zip(not_durable).zip(newly.iter_mut()) {
        if let (Job::Instance(_, _, durable, _), None) = (job, gate)
            && let Err(e) = durable.wait().await
        {
            *slot = Some(e);
            any = true;
        }
    }
    if any {
        // Dropping the transaction rolls it back.
        return Ok(Err(newly));
    }
    tx.commit().await?;
    Ok(Ok(outcomes))
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
