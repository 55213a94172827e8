//! The index in SQLite (embedded default). WAL mode with `synchronous=FULL`: a commit is on
//! disk when it returns. Instance commits go through one writer task that batches whatever
//! arrived concurrently into a single transaction (group commit), so many associations share
//! one fsync; each instance runs inside its own savepoint so one failure fails only itself.

use async_trait::async_trait;
use huren_access::{AuditEvent, Principal, Sender, SenderKind, SystemReads};
use huren_archive::model::*;
use huren_archive::ports::{Index, StoreError};
use huren_seal::chain::{ChainKey, GENESIS};
use huren_types::{AeTitle, InstitutionCode, Lifecycle};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// What the group-commit writer commits: an instance (DICOM ingest) or an HL7 message.
enum Job {
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
enum Done {
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

pub struct SqliteIndex {
    pool: SqlitePool,
    writer: mpsc::Sender<Job>,
}

pub(crate) fn db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return StoreError::Conflict(d.message().to_owned());
        }
        if d.message().contains("disk is full") || d.message().contains("SQLITE_FULL") {
            return StoreError::OutOfSpace(d.message().to_owned());
        }
        if d.is_foreign_key_violation() || d.is_check_violation() {
            return StoreError::Invalid(d.message().to_owned());
        }
    }
    StoreError::Backend(e.to_string())
}

pub(crate) fn iso(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

const OPTIMIZE: &str = "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;";

impl SqliteIndex {
    pub fn connect_options(path: &Path) -> SqliteConnectOptions {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Statement journals (one per SAVEPOINT in the group commit) in memory, not in a
            // temporary file created and unlinked per instance.
            .pragma("temp_store", "memory")
            // A page of QIDO results (up to a few hundred rows) crosses from SQLite's thread
            // without the worker blocking on a full channel every 50 rows.
            .row_buffer_size(512)
    }

    /// Opens (creating and migrating) the index at `path` and starts the group-commit writer.
    /// Audit events are not chained (tools and tests); serving uses [`SqliteIndex::open_chained`].
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(Self::connect_options(path), None).await
    }

    /// Opens the index with the audit chain's key: every audit event this process stores is
    /// chained (docs/audit.md).
    pub async fn open_chained(path: &Path, key: Option<Arc<ChainKey>>) -> Result<Self, StoreError> {
        Self::open_with(Self::connect_options(path), key).await
    }

    /// Opens the index for building a throw-away data set quickly (`huren bench-fill`):
    /// `synchronous=OFF`, so commits do not wait for the disk. Never for serving.
    pub async fn open_bulk(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(
            Self::connect_options(path).synchronous(SqliteSynchronous::Off),
            None,
        )
        .await
    }

    async fn open_with(
        opts: SqliteConnectOptions,
        chain_key: Option<Arc<ChainKey>>,
    ) -> Result<Self, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts.clone())
            .await
            .map_err(db)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        // Without statistics SQLite's planner guessed wrong for name wildcards (it scanned
        // studies in date order testing every patient's name: 30× slower at 20k studies).
        // `optimize` gathers them when missing or stale; `analysis_limit` keeps that to a
        // sample, so it is fast even on a large index (SQLite docs, PRAGMA optimize).
        sqlx::query(OPTIMIZE).execute(&pool).await.map_err(db)?;
        // Again every ten minutes: an index that started empty has no useful statistics
        // after its first hundred thousand studies otherwise.
        let maintenance = pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = sqlx::query(OPTIMIZE).execute(&maintenance).await {
                    tracing::warn!(error = %e, "PRAGMA optimize failed");
                }
            }
        });
        let conn = SqliteConnection::connect_with(&opts).await.map_err(db)?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(writer(conn, rx, Chain::new(chain_key)));
        Ok(SqliteIndex { pool, writer: tx })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn institution_id(&self, code: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT id FROM institution WHERE code = ? COLLATE NOCASE")
            .bind(code)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::NotFound(format!("institution {code}")))
    }
}

/// The group-commit loop: waits for one request, takes every other one already queued (up to
/// a bound), and commits them together.
async fn writer(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>, mut chain: Chain) {
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

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::OutOfSpace(m) => StoreError::OutOfSpace(m.clone()),
        StoreError::NotFound(m) => StoreError::NotFound(m.clone()),
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
        StoreError::Backend(m) => StoreError::Backend(m.clone()),
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// The audit chain's head as the writer sees it: read from the database at the start of every
/// group transaction (another process — the CLI — may have appended since), advanced per event,
/// and put back when a job's savepoint is rolled back.
pub(crate) struct Chain {
    key: Option<Arc<ChainKey>>,
    seq: i64,
    mac: Vec<u8>,
}

impl Chain {
    fn new(key: Option<Arc<ChainKey>>) -> Self {
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
fn bind_audit<'q>(q: Query<'q>, ev: &AuditEvent, chain: &mut Chain) -> Query<'q> {
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

async fn insert_audit(
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

/// One instance inside the group transaction: duplicate policy, patient/study/series upserts,
/// counts, instance row, DICOM JSON, audit event.
async fn commit_one(
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
        .ok_or_else(|| StoreError::Backend("instance row not written".into()))?;
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
async fn commit_oru_in(
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
async fn oru_statements(
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
        "INSERT INTO audit_event (at, action, outcome, actor, institution, patient, study_uid, object, source_address, detail, seq, mac)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);",
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

fn split_identifier(i: &Option<(String, String)>) -> (Option<&str>, Option<&str>) {
    match i {
        Some((s, v)) => (Some(s.as_str()), Some(v.as_str())),
        None => (None, None),
    }
}

/// Records an identity number of the record `r` names and applies the national-number rules
/// (ARCHITECTURE.md "Persons"): the same number, agreeing with both records' birth date and sex,
/// moves this record's person into the other's (the older person survives); a number that
/// disagrees with either record puts the pair in review; a merge that would give one person
/// two different numbers of one document is not made (review instead).
async fn link_identifier(
    conn: &mut SqliteConnection,
    record: (&str, &str),
    ident: &huren_archive::model::SealedIdentifier,
    ts: i64,
) -> Result<(), sqlx::Error> {
    let row = sqlx::query("SELECT id, person_id FROM patient WHERE issuer = ? AND patient_id = ?")
        .bind(record.0)
        .bind(record.1)
        .fetch_one(&mut *conn)
        .await?;
    let (me, mut my_person): (i64, i64) = (row.get("id"), row.get("person_id"));
    sqlx::query(
        "INSERT INTO patient_identifier (patient_id, system, blind, sealed, key_id, consistent)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (patient_id, system) DO UPDATE SET blind = excluded.blind, sealed = excluded.sealed,
           key_id = excluded.key_id, consistent = excluded.consistent",
    )
    .bind(me)
    .bind(&ident.system)
    .bind(&ident.blind)
    .bind(&ident.sealed)
    .bind(&ident.key_id)
    .bind(ident.consistent)
    .execute(&mut *conn)
    .await?;
    let others = sqlx::query(
        "SELECT pi.patient_id, p.person_id, pi.consistent FROM patient_identifier pi JOIN patient p ON p.id = pi.patient_id
         WHERE pi.system = ? AND pi.blind = ? AND pi.patient_id != ? ORDER BY p.person_id, pi.patient_id",
    )
    .bind(&ident.system)
    .bind(&ident.blind)
    .bind(me)
    .fetch_all(&mut *conn)
    .await?;
    for o in others {
        let (other, other_person, other_consistent): (i64, i64, bool) =
            (o.get("patient_id"), o.get("person_id"), o.get("consistent"));
        if other_person == my_person {
            continue;
        }
        let review = |reason: &'static str| {
            sqlx::query(
                "INSERT INTO link_review (created_at, patient_a, patient_b, reason) VALUES (?, ?, ?, ?)
                 ON CONFLICT (patient_a, patient_b) DO NOTHING",
            )
            .bind(ts)
            .bind(other.min(me))
            .bind(other.max(me))
            .bind(reason)
        };
        if !(ident.consistent && other_consistent) {
            review("national_id_inconsistent")
                .execute(&mut *conn)
                .await?;
            continue;
        }
        if conflicting_numbers(conn, my_person, other_person).await? {
            review("conflicting_numbers").execute(&mut *conn).await?;
            continue;
        }
        let (survivor, merged) = if other_person < my_person {
            (other_person, my_person)
        } else {
            (my_person, other_person)
        };
        move_person(
            conn,
            survivor,
            merged,
            ("same_national_id", "ingest", None, None),
            ts,
        )
        .await?;
        my_person = survivor;
    }
    Ok(())
}

/// A record created by the statements before this one gets a person of its own, with a
/// `created` link event; an existing record keeps its person. Binds: see
/// [`bind_new_record_person`].
const NEW_RECORD_PERSON: &str = "
         INSERT INTO person (public_id, created_at)
           SELECT ?, ? WHERE (SELECT person_id FROM patient WHERE issuer = ? AND patient_id = ?) IS NULL;
         UPDATE patient SET person_id = last_insert_rowid() WHERE issuer = ? AND patient_id = ? AND person_id IS NULL;
         INSERT INTO person_link_event (at, patient_id, from_person, to_person, rule, actor)
           SELECT ?, id, NULL, person_id, 'created', ? FROM patient
            WHERE issuer = ? AND patient_id = ? AND changes() > 0;
";

fn bind_new_record_person<'q>(
    q: Query<'q>,
    (issuer, patient_id): (&'q str, &'q str),
    public_id: &'q str,
    actor: &'static str,
    ts: i64,
) -> Query<'q> {
    q.bind(public_id)
        .bind(ts)
        .bind(issuer)
        .bind(patient_id)
        .bind(issuer)
        .bind(patient_id)
        .bind(ts)
        .bind(actor)
        .bind(issuer)
        .bind(patient_id)
}

/// Whether two persons hold different identity numbers of one document (only numbers that
/// agree with their records count as a person's own).
async fn conflicting_numbers(
    conn: &mut SqliteConnection,
    a: i64,
    b: i64,
) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM patient_identifier x JOIN patient px ON px.id = x.patient_id
           JOIN patient_identifier y ON y.system = x.system AND y.blind != x.blind AND y.consistent = 1
           JOIN patient py ON py.id = y.patient_id
         WHERE px.person_id = ? AND py.person_id = ? AND x.consistent = 1",
    )
    .bind(a)
    .bind(b)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// Moves every record of `merged` into `survivor` with one link event each; `how` is
/// (rule, actor, reason, score). Bumps the records' `updated_at` (metadata ETags, ARCHITECTURE.md).
async fn move_person(
    conn: &mut SqliteConnection,
    survivor: i64,
    merged: i64,
    how: (&str, &str, Option<&str>, Option<f64>),
    ts: i64,
) -> Result<u64, sqlx::Error> {
    let (rule, actor, reason, score) = how;
    sqlx::query(
        "INSERT INTO person_link_event (at, patient_id, from_person, to_person, rule, actor, reason, score)
           SELECT ?, id, person_id, ?, ?, ?, ?, ? FROM patient WHERE person_id = ?",
    )
    .bind(ts)
    .bind(survivor)
    .bind(rule)
    .bind(actor)
    .bind(reason)
    .bind(score)
    .bind(merged)
    .execute(&mut *conn)
    .await?;
    let moved = sqlx::query("UPDATE patient SET person_id = ?, updated_at = ? WHERE person_id = ?")
        .bind(survivor)
        .bind(ts)
        .bind(merged)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("UPDATE person SET merged_into = ? WHERE id = ?")
        .bind(survivor)
        .bind(merged)
        .execute(&mut *conn)
        .await?;
    Ok(moved)
}

async fn person_id(conn: &mut SqliteConnection, public_id: &str) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT id FROM person WHERE public_id = ?")
        .bind(public_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::NotFound(format!("person {public_id}")))
}

/// One record's facts for the link rules in one row: identifiers as a JSON array of
/// `[system, blind, consistent]`.
const FACTS: &str = "SELECT p.id, p.person_id, p.name_key, p.name_raw, p.birth_date, p.sex,
       (SELECT COUNT(*) FROM patient q WHERE q.person_id = p.person_id) AS person_records,
       (SELECT json_group_array(json_array(i.system, i.blind, i.consistent)) FROM patient_identifier i
         WHERE i.patient_id = p.id AND i.blind IS NOT NULL) AS identifiers
  FROM patient p";

fn facts(r: &sqlx::sqlite::SqliteRow) -> Result<RecordFacts, StoreError> {
    let ids: String = r.get("identifiers");
    let ids: Vec<(String, String, i64)> =
        serde_json::from_str(&ids).map_err(|e| StoreError::Backend(format!("identifiers: {e}")))?;
    Ok(RecordFacts {
        patient_key: r.get("id"),
        person_id: r.get("person_id"),
        person_records: r.get("person_records"),
        name_raw: r.get("name_raw"),
        birth_date: r.get("birth_date"),
        sex: r.get("sex"),
        identifiers: ids.into_iter().map(|(s, b, c)| (s, b, c != 0)).collect(),
    })
}

const RECORD_VIEW: &str =
    "SELECT p.id, p.issuer, p.patient_id, p.name_raw, p.birth_date, p.sex, pe.public_id
     FROM patient p JOIN person pe ON pe.id = p.person_id";

fn record_view(r: &sqlx::sqlite::SqliteRow) -> RecordView {
    RecordView {
        patient_key: r.get(0),
        issuer: r.get(1),
        patient_id: r.get(2),
        name: r.get(3),
        birth_date: r.get(4),
        sex: r.get(5),
        person: r.get(6),
    }
}

async fn person_records(
    conn: &mut SqliteConnection,
    person: i64,
) -> Result<Vec<RecordView>, StoreError> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "{RECORD_VIEW} WHERE p.person_id = ? ORDER BY p.id"
    )))
    .bind(person)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .iter()
    .map(record_view)
    .collect())
}

async fn load_record(conn: &mut SqliteConnection, key: i64) -> Result<RecordView, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{RECORD_VIEW} WHERE p.id = ?")))
        .bind(key)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    Ok(record_view(&row))
}

async fn load_review(conn: &mut SqliteConnection, id: i64) -> Result<LinkReview, StoreError> {
    let r = sqlx::query(
        "SELECT id, reason, score, state, created_at, patient_a, patient_b FROM link_review WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?
    .ok_or_else(|| StoreError::NotFound(format!("link review {id}")))?;
    let (a, b): (i64, i64) = (r.get("patient_a"), r.get("patient_b"));
    Ok(LinkReview {
        id: r.get("id"),
        reason: r.get("reason"),
        score: r.get("score"),
        state: r.get("state"),
        created_at: r.get("created_at"),
        a: load_record(conn, a).await?,
        b: load_record(conn, b).await?,
    })
}

const ATTR_AS_OF: &str = "SELECT value FROM institution_attribute WHERE institution_id = ? AND attribute = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to >= ?) ORDER BY valid_from DESC LIMIT 1";

#[async_trait]
impl Index for SqliteIndex {
    async fn find_peer(&self, calling_ae: &str, addr: IpAddr) -> Result<Option<Peer>, StoreError> {
        let rows = sqlx::query("SELECT ae.*, i.code FROM ae JOIN institution i ON i.id = ae.institution_id WHERE ae.ae_title = ?")
            .bind(calling_ae)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let peers = rows
            .iter()
            .map(peer_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match_peer(&peers, calling_ae, addr).cloned())
    }

    async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query("SELECT t.id, t.scope, t.institution_id, i.code, t.reads FROM token t LEFT JOIN institution i ON i.id = t.institution_id WHERE t.hash = ? AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > unixepoch())")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        let id: i64 = row.get("id");
        Ok(Some(match row.get::<String, _>("scope").as_str() {
            "admin" => Principal::Admin { token_id: id },
            _ => {
                let code: String = row.get("code");
                Principal::System(Sender {
                    institution_id: row.get("institution_id"),
                    institution_code: InstitutionCode::parse(&code)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                    kind: SenderKind::Token { token_id: id },
                    reads: if row.get::<String, _>("reads") == "region" {
                        SystemReads::Region
                    } else {
                        SystemReads::Institution
                    },
                })
            }
        }))
    }

    async fn map_performer(
        &self,
        sender_institution: i64,
        institution_name: &str,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar("SELECT performer_institution_id FROM send_for WHERE sender_institution_id = ? AND institution_name = ?")
            .bind(sender_institution)
            .bind(institution_name.trim())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn institution_code(&self, id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT code FROM institution WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn institution_identifier_system(
        &self,
        id: i64,
        on: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(ATTR_AS_OF)
            .bind(id)
            .bind("identifier_system")
            .bind(on)
            .bind(on)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn issuer_owner(&self, issuer: &str) -> Result<Option<i64>, StoreError> {
        crate::numbering::issuer_owner(&self.pool, issuer)
            .await
            .map_err(db)
    }

    async fn claim_issuer(
        &self,
        issuer: &str,
        institution: i64,
    ) -> Result<(i64, bool), StoreError> {
        crate::numbering::claim_issuer(&self.pool, issuer, institution, now())
            .await
            .map_err(db)
    }

    async fn commit_instance(
        &self,
        rec: NewInstance,
        audit: AuditEvent,
    ) -> Result<CommitOutcome, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Instance(Box::new(rec), audit, tx))
            .await
            .map_err(|_| StoreError::Backend("index writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("index writer dropped the commit".into()))?
    }

    async fn record_audit(&self, ev: AuditEvent) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Audit(ev, tx))
            .await
            .map_err(|_| StoreError::Backend("writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("writer stopped".into()))?
    }

    async fn add_institution(&self, inst: NewInstitution) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        // The code is unique without regard to case (migration 0043): name the spelling that
        // holds it, so `h500002` is told it is `H500002`, not a constraint name.
        let held: Option<String> =
            sqlx::query_scalar("SELECT code FROM institution WHERE code = ? COLLATE NOCASE")
                .bind(inst.code.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        if let Some(held) = held {
            return Err(StoreError::Conflict(format!(
                "institution {} is registered already as {held}",
                inst.code
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO institution (code, created_at) VALUES (?, ?) RETURNING id",
        )
        .bind(inst.code.as_str())
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let from = iso(inst.valid_from);
        let attrs: [(&str, Option<String>); 8] = [
            ("name", Some(inst.name.clone())),
            ("level", Some(inst.level.as_str().to_owned())),
            ("ownership", Some(inst.ownership.as_str().to_owned())),
            ("identifier_system", inst.identifier_system.clone()),
            ("region", inst.region.clone()),
            ("city", inst.city.clone()),
            ("organization", inst.organization.clone()),
            ("division", inst.division.clone()),
        ];
        for (k, v) in attrs {
            if let Some(v) = v {
                sqlx::query("INSERT INTO institution_attribute (institution_id, attribute, value, valid_from) VALUES (?, ?, ?, ?)")
                    .bind(id)
                    .bind(k)
                    .bind(v)
                    .bind(&from)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn set_institution_attribute(
        &self,
        code: &str,
        change: AttributeChange,
    ) -> Result<(), StoreError> {
        let id = self.institution_id(code).await?;
        let from = iso(change.valid_from);
        let day_before = iso(change
            .valid_from
            .previous_day()
            .unwrap_or(change.valid_from));
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        // Periods starting on or after the new one are replaced; the one in force is closed.
        sqlx::query("DELETE FROM institution_attribute WHERE institution_id = ? AND attribute = ? AND valid_from >= ?")
            .bind(id)
            .bind(change.attribute.as_str())
            .bind(&from)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("UPDATE institution_attribute SET valid_to = ? WHERE institution_id = ? AND attribute = ? AND (valid_to IS NULL OR valid_to >= ?)")
            .bind(&day_before)
            .bind(id)
            .bind(change.attribute.as_str())
            .bind(&from)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("INSERT INTO institution_attribute (institution_id, attribute, value, valid_from) VALUES (?, ?, ?, ?)")
            .bind(id)
            .bind(change.attribute.as_str())
            .bind(&change.value)
            .bind(&from)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn institution_as_of(
        &self,
        code: &str,
        date: time::Date,
    ) -> Result<Option<InstitutionView>, StoreError> {
        // The code as the operator wrote it, whatever spelling the caller used.
        let found: Option<(i64, String)> =
            sqlx::query_as("SELECT id, code FROM institution WHERE code = ? COLLATE NOCASE")
                .bind(code)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        let Some((id, code)) = found else {
            return Ok(None);
        };
        let d = iso(date);
        let mut view = InstitutionView {
            id,
            code,
            as_of: d.clone(),
            ..Default::default()
        };
        // Every attribute in force that day in one read (recognition asks for each result's
        // performer on the result's day): per attribute, the value from the latest start.
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT attribute, value FROM institution_attribute
              WHERE institution_id = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to >= ?)
              ORDER BY attribute, valid_from DESC",
        )
        .bind(id)
        .bind(&d)
        .bind(&d)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut seen = std::collections::HashSet::new();
        for (name, value) in rows {
            let Some(attr) = InstitutionAttribute::parse(&name) else {
                continue;
            };
            if !seen.insert(attr.as_str()) {
                continue;
            }
            let v = Some(value);
            match attr {
                InstitutionAttribute::Name => view.name = v,
                InstitutionAttribute::Level => view.level = v,
                InstitutionAttribute::Ownership => view.ownership = v,
                InstitutionAttribute::IdentifierSystem => view.identifier_system = v,
                InstitutionAttribute::Region => view.region = v,
                InstitutionAttribute::City => view.city = v,
                InstitutionAttribute::Organization => view.organization = v,
                InstitutionAttribute::Division => view.division = v,
            }
        }
        view.consortia = sqlx::query_scalar(
            "SELECT c.code FROM consortium_member m JOIN consortium c ON c.id = m.consortium_id
             WHERE m.institution_id = ? AND m.valid_from <= ? AND (m.valid_to IS NULL OR m.valid_to >= ?) ORDER BY c.code",
        )
        .bind(id)
        .bind(&d)
        .bind(&d)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(Some(view))
    }

    async fn list_institutions(
        &self,
        date: time::Date,
    ) -> Result<Vec<InstitutionView>, StoreError> {
        let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM institution ORDER BY code")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut out = Vec::with_capacity(codes.len());
        for c in codes {
            if let Some(v) = self.institution_as_of(&c, date).await? {
                out.push(v);
            }
        }
        Ok(out)
    }

    async fn add_consortium_membership(&self, m: NewMembership) -> Result<(), StoreError> {
        let id = self.institution_id(m.institution_code.as_str()).await?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let cid: i64 = sqlx::query_scalar(
            "INSERT INTO consortium (code, name, kind) VALUES (?, ?, ?) ON CONFLICT (code) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(&m.consortium_code)
        .bind(&m.consortium_name)
        .bind(&m.consortium_kind)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("INSERT INTO consortium_member (consortium_id, institution_id, valid_from, valid_to) VALUES (?, ?, ?, ?)")
            .bind(cid)
            .bind(id)
            .bind(iso(m.valid_from))
            .bind(m.valid_to.map(iso))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn add_ae(&self, ae: NewAe) -> Result<i64, StoreError> {
        let inst = self.institution_id(ae.institution_code.as_str()).await?;
        let performer = match &ae.default_performer_code {
            Some(c) => Some(self.institution_id(c.as_str()).await?),
            None => None,
        };
        sqlx::query_scalar(
            "INSERT INTO ae (institution_id, ae_title, network, port, assumed_charset, stable_after_secs, default_performer_id, created_at, require_tls)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(inst)
        .bind(ae.ae_title.as_str())
        .bind(ae.network.to_string())
        .bind(ae.port.map(i64::from))
        .bind(&ae.assumed_charset)
        .bind(ae.stable_after_secs)
        .bind(performer)
        .bind(now())
        .bind(ae.require_tls)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn list_aes(&self) -> Result<Vec<Peer>, StoreError> {
        let rows = sqlx::query("SELECT ae.*, i.code FROM ae JOIN institution i ON i.id = ae.institution_id ORDER BY ae.ae_title")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(peer_from_row).collect()
    }

    async fn add_send_for(
        &self,
        sender_code: &str,
        performer_code: &str,
        institution_name: Option<&str>,
    ) -> Result<(), StoreError> {
        let s = self.institution_id(sender_code).await?;
        let p = self.institution_id(performer_code).await?;
        sqlx::query("INSERT INTO send_for (sender_institution_id, performer_institution_id, institution_name) VALUES (?, ?, ?)")
            .bind(s)
            .bind(p)
            .bind(institution_name.map(str::trim))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn institution_history(
        &self,
        code: &str,
    ) -> Result<Option<Vec<(String, String, String, Option<String>)>>, StoreError> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM institution WHERE code = ? COLLATE NOCASE")
                .bind(code)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        let Some(id) = id else {
            return Ok(None);
        };
        sqlx::query_as(
            "SELECT attribute, value, valid_from, valid_to FROM institution_attribute
              WHERE institution_id = ? ORDER BY attribute, valid_from, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map(Some)
        .map_err(db)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenView>, StoreError> {
        let rows: Vec<(
            i64,
            String,
            Option<String>,
            String,
            i64,
            Option<i64>,
            Option<i64>,
        )> = sqlx::query_as(
            "SELECT t.id, t.scope, i.code, t.reads, t.created_at, t.expires_at, t.revoked_at
                   FROM token t LEFT JOIN institution i ON i.id = t.institution_id
                  ORDER BY t.id DESC LIMIT 1000",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, scope, institution, reads, created_at, expires_at, revoked_at)| TokenView {
                    id,
                    scope,
                    institution,
                    reads,
                    created_at,
                    expires_at,
                    revoked_at,
                },
            )
            .collect())
    }

    async fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE token SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(n == 1)
    }

    async fn create_token(
        &self,
        hash: &str,
        scope: TokenScope,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        let (kind, inst, reads) = match &scope {
            TokenScope::Admin => ("admin", None, "institution"),
            TokenScope::Institution(code, reads) => (
                "institution",
                Some(self.institution_id(code.as_str()).await?),
                match reads {
                    SystemReads::Institution => "institution",
                    SystemReads::Region => "region",
                },
            ),
        };
        sqlx::query_scalar("INSERT INTO token (hash, scope, institution_id, reads, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id")
            .bind(hash)
            .bind(kind)
            .bind(inst)
            .bind(reads)
            .bind(now())
            .bind(expires_at)
            .fetch_one(&self.pool)
            .await
            .map_err(db)
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

    async fn hl7_senders(&self) -> Result<Vec<Hl7Sender>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id, s.institution_id, i.code, s.network, s.sending_facility, s.default_charset
               FROM hl7_sender s JOIN institution i ON i.id = s.institution_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                let net: String = r.get(3);
                Ok(Hl7Sender {
                    id: r.get(0),
                    institution_id: r.get(1),
                    institution_code: r.get(2),
                    network: net
                        .parse()
                        .map_err(|_| StoreError::Invalid(format!("network {net}")))?,
                    sending_facility: r.get(4),
                    default_charset: r.get(5),
                })
            })
            .collect()
    }

    async fn add_hl7_sender(
        &self,
        institution_code: &str,
        network: ipnet::IpNet,
        sending_facility: Option<&str>,
        default_charset: Option<&str>,
    ) -> Result<i64, StoreError> {
        let institution = self.institution_id(institution_code).await?;
        sqlx::query_scalar(
            "INSERT INTO hl7_sender (institution_id, network, sending_facility, default_charset, created_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(institution)
        .bind(network.to_string())
        .bind(sending_facility)
        .bind(default_charset)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn commit_oru(&self, oru: NewOru, audit: AuditEvent) -> Result<OruOutcome, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Oru(Box::new(oru), audit, tx))
            .await
            .map_err(|_| StoreError::Backend("index writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("index writer dropped the commit".into()))?
    }

    async fn link_reviews(&self, state: &str, limit: u32) -> Result<Vec<LinkReview>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM link_review WHERE state = ? ORDER BY id LIMIT ?")
                .bind(state)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(load_review(&mut conn, id).await?);
        }
        Ok(out)
    }

    async fn link_review(&self, id: i64) -> Result<Option<LinkReview>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM link_review WHERE id = ?)")
                .bind(id)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
        if !exists {
            return Ok(None);
        }
        Ok(Some(load_review(&mut conn, id).await?))
    }

    async fn merge_persons(
        &self,
        survivor: &str,
        merged: &str,
        actor: &str,
        reason: &str,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let s = person_id(&mut tx, survivor).await?;
        let m = person_id(&mut tx, merged).await?;
        if s == m {
            return Err(StoreError::Invalid(
                "a person cannot be merged into itself".into(),
            ));
        }
        if conflicting_numbers(&mut tx, s, m).await.map_err(db)? {
            return Err(StoreError::Conflict(
                "the two persons hold different identity numbers of one document".into(),
            ));
        }
        let moved = move_person(
            &mut tx,
            s,
            m,
            ("steward_merge", actor, Some(reason), None),
            now(),
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(moved as usize)
    }

    async fn unmerge_person(
        &self,
        merged: &str,
        actor: &str,
        reason: &str,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let m = person_id(&mut tx, merged).await?;
        let survivor: Option<i64> =
            sqlx::query_scalar("SELECT merged_into FROM person WHERE id = ?")
                .bind(m)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let Some(s) = survivor else {
            return Err(StoreError::Invalid(format!(
                "person {merged} is not merged"
            )));
        };
        // Exactly the records whose latest move was from `merged` to the survivor.
        let ts = now();
        let moved = sqlx::query(
            "WITH back AS (
               SELECT p.id FROM patient p WHERE p.person_id = ?1 AND
                 (SELECT e.from_person FROM person_link_event e WHERE e.patient_id = p.id ORDER BY e.id DESC LIMIT 1) = ?2)
             INSERT INTO person_link_event (at, patient_id, from_person, to_person, rule, actor, reason)
               SELECT ?3, id, ?1, ?2, 'steward_unmerge', ?4, ?5 FROM back",
        )
        .bind(s)
        .bind(m)
        .bind(ts)
        .bind(actor)
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        if moved == 0 {
            return Err(StoreError::Conflict(
                "no record of that merge is still with the survivor (undo later merges first)"
                    .into(),
            ));
        }
        sqlx::query(
            "UPDATE patient SET person_id = ?2, updated_at = ?3 WHERE person_id = ?1 AND
               (SELECT e.rule FROM person_link_event e WHERE e.patient_id = patient.id ORDER BY e.id DESC LIMIT 1) = 'steward_unmerge';
             UPDATE person SET merged_into = NULL WHERE id = ?2;",
        )
        .bind(s)
        .bind(m)
        .bind(ts)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(moved as usize)
    }

    async fn decide_link_review(
        &self,
        id: i64,
        link: bool,
        actor: &str,
        reason: &str,
    ) -> Result<LinkReview, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let review = load_review(&mut tx, id).await?;
        if review.state != "open" {
            return Err(StoreError::Conflict(format!(
                "review {id} is already {}",
                review.state
            )));
        }
        let ts = now();
        if link {
            let a = person_id(&mut tx, &review.a.person).await?;
            let b = person_id(&mut tx, &review.b.person).await?;
            if a != b {
                if conflicting_numbers(&mut tx, a, b).await.map_err(db)? {
                    return Err(StoreError::Conflict(
                        "the two records' persons hold different identity numbers of one document"
                            .into(),
                    ));
                }
                let (s, m) = if a < b { (a, b) } else { (b, a) };
                move_person(
                    &mut tx,
                    s,
                    m,
                    ("steward_merge", actor, Some(reason), None),
                    ts,
                )
                .await
                .map_err(db)?;
            }
        }
        sqlx::query(
            "UPDATE link_review SET state = ?, decided_by = ?, decided_at = ? WHERE id = ?",
        )
        .bind(if link { "linked" } else { "rejected" })
        .bind(actor)
        .bind(ts)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let out = load_review(&mut tx, id).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn person(&self, public_id: &str) -> Result<Option<PersonView>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let Some(row) = sqlx::query(
            "SELECT pe.id, (SELECT s.public_id FROM person s WHERE s.id = pe.merged_into) FROM person pe WHERE pe.public_id = ?",
        )
        .bind(public_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        else {
            return Ok(None);
        };
        let id: i64 = row.get(0);
        let records = person_records(&mut conn, id).await?;
        let history = sqlx::query(
            "SELECT e.at, e.patient_id, f.public_id, t.public_id, e.rule, e.actor, e.reason
               FROM person_link_event e LEFT JOIN person f ON f.id = e.from_person JOIN person t ON t.id = e.to_person
              WHERE e.to_person = ?1 OR e.from_person = ?1 ORDER BY e.id",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(|r| LinkEvent {
            at: r.get(0),
            patient_key: r.get(1),
            from_person: r.get(2),
            to_person: r.get(3),
            rule: r.get(4),
            actor: r.get(5),
            reason: r.get(6),
        })
        .collect();
        Ok(Some(PersonView {
            public_id: public_id.to_owned(),
            merged_into: row.get(1),
            records,
            history,
        }))
    }

    async fn link_candidates(
        &self,
        issuer: &str,
        patient_id: &str,
        limit: u32,
    ) -> Result<Option<(RecordFacts, Vec<RecordFacts>, i64)>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let Some(me) = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{FACTS} WHERE p.issuer = ? AND p.patient_id = ? AND p.name_key IS NOT NULL"
        )))
        .bind(issuer)
        .bind(patient_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        else {
            return Ok(None);
        };
        let mine = facts(&me)?;
        let name_key: String = me.get("name_key");
        // Candidates: the same name sound, and a birth date that shares the year or the
        // month and day (typos), or none on either side.
        let others = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{FACTS} WHERE p.name_key = ?1 AND p.id != ?2 AND (p.birth_date IS NULL OR ?3 IS NULL
               OR substr(p.birth_date, 1, 4) = substr(?3, 1, 4) OR substr(p.birth_date, 5, 4) = substr(?3, 5, 4))
             ORDER BY p.id DESC LIMIT ?4"
        )))
        .bind(&name_key)
        .bind(mine.patient_key)
        .bind(&mine.birth_date)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?
        .iter()
        .map(facts)
        .collect::<Result<Vec<_>, _>>()?;
        // Only whether the sound is rare matters (≤ 3, ≤ 10, more): count no further.
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM patient WHERE name_key = ? LIMIT 11)",
        )
        .bind(&name_key)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
        Ok(Some((mine, others, count)))
    }

    async fn apply_score_decision(
        &self,
        a: i64,
        b: i64,
        link: bool,
        score: f64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let persons: Vec<i64> =
            sqlx::query_scalar("SELECT person_id FROM patient WHERE id IN (?, ?) ORDER BY id")
                .bind(a)
                .bind(b)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        let [pa, pb] = persons[..] else {
            return Err(StoreError::NotFound("patient record".into()));
        };
        let ts = now();
        if pa == pb {
            return Ok(());
        }
        let conflicting = conflicting_numbers(&mut tx, pa, pb).await.map_err(db)?;
        if link && !conflicting {
            let (s, m) = if pa < pb { (pa, pb) } else { (pb, pa) };
            move_person(&mut tx, s, m, ("score", "ingest", None, Some(score)), ts)
                .await
                .map_err(db)?;
        } else {
            sqlx::query(
                "INSERT INTO link_review (created_at, patient_a, patient_b, reason, score) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (patient_a, patient_b) DO NOTHING",
            )
            .bind(ts)
            .bind(a.min(b))
            .bind(a.max(b))
            .bind(if conflicting { "conflicting_numbers" } else { "possible_match" })
            .bind(score)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn find_persons(
        &self,
        search: &PersonSearch,
        limit: u32,
    ) -> Result<Vec<PersonHit>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let q = match search {
            PersonSearch::Identifier(key) => sqlx::query_scalar(
                "SELECT DISTINCT p.person_id FROM patient_identifier i JOIN patient p ON p.id = i.patient_id
                 WHERE i.system = ? AND i.blind = ? AND i.consistent = 1 LIMIT ?",
            )
            .bind(key.system.clone())
            .bind(key.blind.clone()),
            PersonSearch::Record { issuer, patient_id } => sqlx::query_scalar(
                "SELECT person_id FROM patient WHERE issuer = ? AND patient_id = ? LIMIT ?",
            )
            .bind(issuer.clone())
            .bind(patient_id.clone()),
            PersonSearch::NamePrefix {
                prefix,
                sound_prefix,
            } => {
                // LIKE with NOCASE indexes (patient_name_*_nocase) and the name sound.
                let esc = |s: &str| {
                    s.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                };
                let like = format!("{}%", esc(prefix));
                sqlx::query_scalar(
                    "SELECT DISTINCT person_id FROM patient
                     WHERE name_ideographic LIKE ?1 ESCAPE '\\' OR name_alphabetic LIKE ?1 ESCAPE '\\'
                        OR name_raw LIKE ?1 ESCAPE '\\' OR (?2 != '' AND name_key LIKE ?2 ESCAPE '\\')
                     LIMIT ?3",
                )
                .bind(like)
                .bind(if sound_prefix.is_empty() {
                    String::new()
                } else {
                    format!("{}%", esc(sound_prefix))
                })
            }
        };
        let persons: Vec<i64> = q
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        let mut out = Vec::with_capacity(persons.len());
        for id in persons {
            let records = person_records(&mut conn, id).await?;
            if let Some(first) = records.first() {
                out.push(PersonHit {
                    person: first.person.clone(),
                    records,
                });
            }
        }
        Ok(out)
    }

    async fn person_reports(
        &self,
        public_id: &str,
        limit: u32,
        as_of: Option<i64>,
    ) -> Result<Vec<TimelineReport>, StoreError> {
        // As of a moment: received by then, and not yet replaced by a row received by then.
        let rows = sqlx::query(
            "SELECT r.id, COALESCE(s.study_uid, r.study_uid), r.accession_number, r.procedure_text, COALESCE(r.text, ''), r.status,
                    r.reported_at, r.reported_instant, i.code
               FROM report r JOIN patient p ON p.id = r.patient_id JOIN person pe ON pe.id = p.person_id
               JOIN institution i ON i.id = r.performing_institution_id LEFT JOIN study s ON s.id = r.study_id
              WHERE pe.public_id = ?1 AND r.category = 'RAD'
                AND (CASE WHEN ?3 IS NULL THEN r.superseded_by IS NULL
                          ELSE r.created_at <= ?3 AND (r.superseded_by IS NULL
                               OR (SELECT n.created_at FROM report n WHERE n.id = r.superseded_by) > ?3) END)
              ORDER BY r.reported_instant DESC NULLS LAST, r.id DESC LIMIT ?2",
        )
        .bind(public_id)
        .bind(i64::from(limit))
        .bind(as_of)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| TimelineReport {
                id: r.get(0),
                study_instance_uid: r.get(1),
                accession_number: r.get(2),
                procedure_text: r.get(3),
                text: r.get(4),
                status: r.get(5),
                reported_at: r.get(6),
                reported_instant: r.get(7),
                performing_institution: r.get(8),
            })
            .collect())
    }

    async fn identifier_domain_known(&self, system: &str) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM patient WHERE issuer = ?1)
                 OR EXISTS (SELECT 1 FROM institution_attribute WHERE attribute = 'identifier_system' AND value = ?1)",
        )
        .bind(system)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn add_user(&self, u: NewUser) -> Result<i64, StoreError> {
        match crate::accounts::add_user(&self.pool, &u, now())
            .await
            .map_err(db)?
        {
            Ok(id) => Ok(id),
            Err(code) => Err(StoreError::NotFound(format!("institution {code}"))),
        }
    }

    async fn user_account(&self, username: &str) -> Result<Option<UserAccount>, StoreError> {
        crate::accounts::user_account(&self.pool, username)
            .await
            .map_err(db)
    }

    async fn login_failed(&self, user_id: i64, lock_until: Option<i64>) -> Result<i64, StoreError> {
        crate::accounts::login_failed(&self.pool, user_id, lock_until)
            .await
            .map_err(db)
    }

    async fn login_succeeded(&self, user_id: i64) -> Result<(), StoreError> {
        crate::accounts::login_succeeded(&self.pool, user_id)
            .await
            .map_err(db)
    }

    async fn create_session(&self, s: SessionRecord) -> Result<(), StoreError> {
        crate::accounts::create_session(&self.pool, &s)
            .await
            .map_err(db)
    }

    async fn session(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(SessionRecord, UserAccount)>, StoreError> {
        crate::accounts::session(&self.pool, secret_hash)
            .await
            .map_err(db)
    }

    async fn touch_session(&self, secret_hash: &str, at: i64) -> Result<(), StoreError> {
        crate::accounts::touch_session(&self.pool, secret_hash, at)
            .await
            .map_err(db)
    }

    async fn end_session(&self, secret_hash: &str, at: i64) -> Result<(), StoreError> {
        crate::accounts::end_session(&self.pool, secret_hash, at)
            .await
            .map_err(db)
    }

    async fn upsert_encounter(&self, e: EncounterUpsert) -> Result<i64, StoreError> {
        crate::accounts::upsert_encounter(&self.pool, &e, now())
            .await
            .map_err(db)
    }

    async fn create_launch_ticket(&self, t: NewLaunchTicket) -> Result<(), StoreError> {
        crate::accounts::create_launch_ticket(&self.pool, &t)
            .await
            .map_err(db)
    }

    async fn redeem_launch_ticket(
        &self,
        secret_hash: &str,
        now: i64,
    ) -> Result<Option<RedeemedTicket>, StoreError> {
        crate::accounts::redeem_launch_ticket(&self.pool, secret_hash, now)
            .await
            .map_err(db)
    }

    async fn user_account_by_id(&self, user_id: i64) -> Result<Option<UserAccount>, StoreError> {
        crate::accounts::user_account_by_id(&self.pool, user_id)
            .await
            .map_err(db)
    }

    async fn related_persons(
        &self,
        user: &huren_access::User,
        department_reach: bool,
    ) -> Result<Vec<(i64, String, bool, String)>, StoreError> {
        crate::accounts::related_persons(&self.pool, user, department_reach)
            .await
            .map_err(db)
    }

    async fn records_with_data_at(
        &self,
        patient_keys: &[i64],
        institutions: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        crate::accounts::records_with_data_at(&self.pool, patient_keys, institutions)
            .await
            .map_err(db)
    }

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

    async fn recognition_statistics(
        &self,
        from: time::Date,
        until: time::Date,
        institution: Option<i64>,
        by: huren_archive::recognition::StatsBy,
    ) -> Result<Vec<huren_archive::model::StatsCell>, StoreError> {
        crate::recognition::statistics(&self.pool, from, until, institution, by)
            .await
            .map_err(db)
    }

    async fn unpriced_recognition_units(
        &self,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        crate::recognition::unpriced_units(&self.pool)
            .await
            .map_err(db)
    }

    async fn price_recognition_units(
        &self,
        prices: &[(String, String, String, Option<i64>)],
    ) -> Result<(), StoreError> {
        crate::recognition::set_unit_prices(&self.pool, prices)
            .await
            .map_err(db)
    }

    async fn recognition_rebuild_price_keys(
        &self,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        crate::recognition::rebuild_price_keys(&self.pool)
            .await
            .map_err(db)
    }

    async fn rebuild_recognition_units(
        &self,
        prices: &[(String, String, String, Option<i64>)],
    ) -> Result<u64, StoreError> {
        crate::recognition::rebuild_units(&self.pool, prices)
            .await
            .map_err(db)
    }

    async fn qc_claim(
        &self,
        worker: &str,
        n: i64,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<huren_archive::model::QcJob>, StoreError> {
        crate::quality::claim(&self.pool, worker, n, now, lease_until)
            .await
            .map_err(db)
    }

    async fn qc_finish(
        &self,
        all: &[huren_archive::model::QcImageOutcome],
        now: i64,
    ) -> Result<(), StoreError> {
        crate::quality::finish(&self.pool, all, now)
            .await
            .map_err(db)
    }

    async fn qc_fail(&self, instance_id: i64, error: &str, now: i64) -> Result<(), StoreError> {
        crate::quality::fail(&self.pool, instance_id, error, now)
            .await
            .map_err(db)
    }

    async fn qc_ready_studies(&self, n: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        crate::quality::ready_studies(&self.pool, n)
            .await
            .map_err(db)
    }

    async fn qc_study_images(
        &self,
        study_id: i64,
    ) -> Result<Vec<(String, Option<String>, String)>, StoreError> {
        crate::quality::study_images(&self.pool, study_id)
            .await
            .map_err(db)
    }

    async fn qc_store_study(
        &self,
        o: &huren_archive::model::QcStudyOutcome,
        seen: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        crate::quality::store_study(&self.pool, o, seen, now)
            .await
            .map_err(db)
    }

    async fn qc_grades(
        &self,
        study_uids: &[String],
        as_of: Option<i64>,
    ) -> Result<Vec<huren_archive::model::QcGradeRow>, StoreError> {
        crate::quality::grades(&self.pool, study_uids, as_of)
            .await
            .map_err(db)
    }

    async fn qc_cells(
        &self,
        span: &QcSpan,
        institution: Option<i64>,
        by: huren_archive::quality::QualityBy,
    ) -> Result<Vec<QcCell>, StoreError> {
        crate::quality::cells(&self.pool, span, institution, by)
            .await
            .map_err(db)
    }

    async fn qc_image_source(
        &self,
        study_uid: &str,
        sop_uid: &str,
        institution: Option<i64>,
    ) -> Result<Option<QcJob>, StoreError> {
        crate::quality::image_source(&self.pool, study_uid, sop_uid, institution)
            .await
            .map_err(db)
    }

    async fn qc_backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        crate::quality::backlog(&self.pool).await.map_err(db)
    }

    async fn qc_list_studies(
        &self,
        filter: &huren_archive::model::QcStudyFilter,
    ) -> Result<(i64, Vec<huren_archive::model::QcListRow>), StoreError> {
        crate::quality::list_studies(&self.pool, filter)
            .await
            .map_err(db)
    }

    async fn qc_study_images_by_uid(
        &self,
        study_uid: &str,
        institution: Option<i64>,
    ) -> Result<
        Vec<(
            huren_archive::model::QcListRow,
            Vec<huren_archive::model::QcImageRow>,
        )>,
        StoreError,
    > {
        crate::quality::study_images_by_uid(&self.pool, study_uid, institution)
            .await
            .map_err(db)
    }

    async fn reprice_recognition_units(
        &self,
        items: Option<&[String]>,
        institution: Option<&str>,
    ) -> Result<u64, StoreError> {
        crate::recognition::reprice_units(&self.pool, items, institution)
            .await
            .map_err(db)
    }

    async fn record_recognition_decision(
        &self,
        d: &NewRecognitionDecision,
    ) -> Result<(i64, u64), StoreError> {
        crate::recognition::record_decision(&self.pool, d)
            .await
            .map_err(db)
    }

    async fn recognition_decision(&self, id: i64) -> Result<Option<StoredDecision>, StoreError> {
        crate::recognition::decision(&self.pool, id)
            .await
            .map_err(db)
    }

    async fn record_reminder(&self, r: &NewReminder) -> Result<Option<i64>, StoreError> {
        crate::recognition::record_reminder(&self.pool, r)
            .await
            .map_err(db)
    }

    async fn reminder_opened(
        &self,
        institution: i64,
        study_uid: &str,
        at: i64,
    ) -> Result<u64, StoreError> {
        crate::recognition::reminder_opened(&self.pool, institution, study_uid, at)
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

    async fn own_institutions(
        &self,
        institution_id: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        crate::accounts::own_institutions(&self.pool, institution_id)
            .await
            .map_err(db)
    }

    async fn encounter_persons(
        &self,
        institution_id: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        crate::accounts::encounter_persons(&self.pool, institution_id)
            .await
            .map_err(db)
    }

    async fn start_break_glass(
        &self,
        user: &huren_access::User,
        person: &str,
        reason: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<i64>, StoreError> {
        crate::accounts::start_break_glass(&self.pool, user, person, reason, now, expires_at)
            .await
            .map_err(db)
    }

    async fn break_glass_list(
        &self,
        institution_id: i64,
        open_only: bool,
    ) -> Result<Vec<BreakGlass>, StoreError> {
        crate::accounts::break_glass_list(&self.pool, institution_id, open_only)
            .await
            .map_err(db)
    }

    async fn review_break_glass(
        &self,
        id: i64,
        reviewer: &huren_access::User,
        verdict: &str,
        note: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        crate::accounts::review_break_glass(&self.pool, id, reviewer, verdict, note, now)
            .await
            .map_err(db)
    }

    async fn audit_events(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        crate::accounts::audit_events(&self.pool, filter, limit)
            .await
            .map_err(db)
    }

    async fn record_contact_change(&self, c: NewContactChange) -> Result<Option<i64>, StoreError> {
        crate::contacts::record_change(&self.pool, &c)
            .await
            .map_err(db)
    }

    async fn confirm_contact_change(
        &self,
        id: i64,
        institution_id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<ContactChangeView>, StoreError> {
        crate::contacts::confirm_change(&self.pool, id, institution_id, code_hash, now)
            .await
            .map_err(db)
    }

    async fn authorization_requests_since(
        &self,
        person: &str,
        user_id: i64,
        since: i64,
    ) -> Result<(i64, i64), StoreError> {
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM patient_authorization a JOIN person pe ON pe.id = a.person_id
                      WHERE pe.public_id = ? AND a.created_at >= ?),
                    (SELECT COUNT(*) FROM patient_authorization WHERE requested_by = ? AND created_at >= ?)",
        )
        .bind(person)
        .bind(since)
        .bind(user_id)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .map_err(db)
    }

    async fn patient_contact(&self, person: &str) -> Result<Option<SealedContact>, StoreError> {
        crate::accounts::patient_contact(&self.pool, person)
            .await
            .map_err(db)
    }

    async fn create_authorization(&self, a: NewAuthorization) -> Result<i64, StoreError> {
        crate::accounts::create_authorization(&self.pool, &a)
            .await
            .map_err(db)
    }

    async fn confirm_authorization(
        &self,
        id: i64,
        institution_id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<AuthorizationView>, StoreError> {
        crate::accounts::confirm_authorization(&self.pool, id, institution_id, code_hash, now)
            .await
            .map_err(db)
    }

    async fn revoke_authorization(
        &self,
        id: i64,
        institution_id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        crate::accounts::revoke_authorization(&self.pool, id, institution_id, now)
            .await
            .map_err(db)
    }

    async fn search_observations(
        &self,
        q: &huren_archive::results::ResultQuery,
    ) -> Result<Vec<huren_archive::results::ObservationRow>, StoreError> {
        crate::results::search_observations(&self.pool, q)
            .await
            .map_err(db)
    }

    async fn observation(
        &self,
        id: i64,
    ) -> Result<Option<huren_archive::results::ObservationRow>, StoreError> {
        crate::results::observation(&self.pool, id)
            .await
            .map_err(db)
    }

    async fn search_orders(
        &self,
        q: &huren_archive::results::ResultQuery,
    ) -> Result<Vec<huren_archive::results::OrderRow>, StoreError> {
        crate::results::search_orders(&self.pool, q)
            .await
            .map_err(db)
    }

    async fn order(&self, id: i64) -> Result<Option<huren_archive::results::OrderRow>, StoreError> {
        crate::results::order(&self.pool, id).await.map_err(db)
    }

    async fn person_lab_results(
        &self,
        public_id: &str,
        limit: u32,
        as_of: Option<i64>,
    ) -> Result<Vec<TimelineLab>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.code, r.code_text, r.code_system, r.value, r.unit, r.reference_range, r.abnormal_flag,
                    r.status, r.observed_at, r.observed_instant, r.order_text, i.code, r.performing_lab,
                    p.patient_id, p.issuer, r.reported_at, r.reported_instant
               FROM lab_result r JOIN patient p ON p.id = r.patient_id
               JOIN person pe ON pe.id = p.person_id JOIN institution i ON i.id = r.performing_institution_id
              WHERE pe.public_id = ?1
                AND (CASE WHEN ?3 IS NULL THEN r.superseded_by IS NULL
                          ELSE r.created_at <= ?3 AND (r.superseded_by IS NULL
                               OR (SELECT n.created_at FROM lab_result n WHERE n.id = r.superseded_by) > ?3) END)
              ORDER BY r.observed_instant DESC NULLS LAST, r.id DESC LIMIT ?2",
        )
        .bind(public_id)
        .bind(i64::from(limit))
        .bind(as_of)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| TimelineLab {
                id: r.get(0),
                code: r.get(1),
                code_text: r.get(2),
                code_system: r.get(3),
                value: r.get(4),
                unit: r.get(5),
                reference_range: r.get(6),
                abnormal_flag: r.get(7),
                status: r.get(8),
                observed_at: r.get(9),
                observed_instant: r.get(10),
                order_text: r.get(11),
                performing_institution: r.get(12),
                performing_lab: r.get(13),
                patient_id: r.get(14),
                issuer: r.get(15),
                reported_at: r.get(16),
                reported_instant: r.get(17),
                catalog_item: None,
            })
            .collect())
    }

    async fn qc_add_review(
        &self,
        study_uid: &str,
        institution: &str,
        user_id: i64,
        actor: &str,
        comment: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO qc_review (study_id, reviewed_at, user_id, actor, comment)
             SELECT s.id, ?3, ?4, ?5, ?6 FROM study s JOIN institution i ON i.id = s.institution_id
              WHERE s.study_uid = ?1 AND i.code = ?2 COLLATE NOCASE
             RETURNING id",
        )
        .bind(study_uid)
        .bind(institution)
        .bind(now)
        .bind(user_id)
        .bind(actor)
        .bind(comment)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    async fn qc_reviews(
        &self,
        study_uid: &str,
        institution: &str,
    ) -> Result<Vec<QcReview>, StoreError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT r.reviewed_at, r.actor, r.comment FROM qc_review r
               JOIN study s ON s.id = r.study_id JOIN institution i ON i.id = s.institution_id
              WHERE s.study_uid = ? AND i.code = ? COLLATE NOCASE ORDER BY r.id",
        )
        .bind(study_uid)
        .bind(institution)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(reviewed_at, actor, comment)| QcReview {
                reviewed_at,
                actor,
                comment,
            })
            .collect())
    }

    async fn person_revision(&self, public_id: &str) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT COALESCE(r.revision, 0) FROM person pe
               LEFT JOIN person_revision r ON r.person_id = pe.id WHERE pe.public_id = ?",
        )
        .bind(public_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
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

    async fn find(
        &self,
        q: &huren_archive::query::Query,
    ) -> Result<Vec<huren_archive::query::Match>, StoreError> {
        let (sql, binds) = crate::query::build(q);
        // Only fixed fragments are formatted into the statement; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &binds {
            query = query.bind(b);
        }
        let page: Option<String> = query.fetch_one(&self.pool).await.map_err(db)?.get(0);
        let rows: Vec<crate::query::Row> = serde_json::from_str(page.as_deref().unwrap_or("[]"))
            .map_err(|e| StoreError::Backend(format!("query page: {e}")))?;
        Ok(rows
            .into_iter()
            .map(|r| crate::query::to_match(r, q.level))
            .collect())
    }

    async fn series_etag(
        &self,
        study_uid: &str,
        series_uid: &str,
    ) -> Result<Vec<SeriesTag>, StoreError> {
        let rows = sqlx::query(
            "SELECT se.id, se.version, p.id AS pid, p.updated_at, s.institution_id, p.patient_id, p.issuer
               FROM series se JOIN study s ON s.id = se.study_id
             JOIN patient p ON p.id = s.patient_id WHERE s.study_uid = ? AND se.series_uid = ? AND se.num_instances > 0",
        )
        .bind(study_uid)
        .bind(series_uid)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: i64 = r.get("id");
                let etag = format!(
                    "\"s{id}-v{}-p{}-{}\"",
                    r.get::<i64, _>("version"),
                    r.get::<i64, _>("pid"),
                    r.get::<i64, _>("updated_at")
                );
                SeriesTag {
                    key: id,
                    etag,
                    institution_id: r.get("institution_id"),
                    patient: format!(
                        "{}@{}",
                        r.get::<String, _>("patient_id"),
                        r.get::<String, _>("issuer")
                    ),
                }
            })
            .collect())
    }

    async fn cached_series_metadata(
        &self,
        series_key: i64,
        etag: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query_scalar("SELECT json FROM series_metadata WHERE series_id = ? AND etag = ?")
            .bind(series_key)
            .bind(etag)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn store_series_metadata(
        &self,
        series_key: i64,
        etag: &str,
        json: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO series_metadata (series_id, etag, json) VALUES (?, ?, ?)
             ON CONFLICT (series_id) DO UPDATE SET etag = excluded.etag, json = excluded.json",
        )
        .bind(series_key)
        .bind(etag)
        .bind(json)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn instance_documents(
        &self,
        instance_keys: &[i64],
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let mut out = Vec::with_capacity(instance_keys.len());
        // Bounded statements: SQLite allows 32 766 parameters; 900 keeps each small.
        for chunk in instance_keys.chunks(900) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT instance_id, json FROM instance_json WHERE instance_id IN ({marks})"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for k in chunk {
                query = query.bind(k);
            }
            for r in query.fetch_all(&self.pool).await.map_err(db)? {
                out.push((r.get::<i64, _>("instance_id"), r.get::<Vec<u8>, _>("json")));
            }
        }
        Ok(out)
    }
}

fn peer_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Peer, StoreError> {
    let title: String = row.get("ae_title");
    let network: String = row.get("network");
    Ok(Peer {
        id: row.get("id"),
        institution_id: row.get("institution_id"),
        institution_code: row.get("code"),
        ae_title: AeTitle::parse(&title).map_err(|e| StoreError::Invalid(e.to_string()))?,
        network: ipnet::IpNet::from_str(&network)
            .map_err(|e| StoreError::Invalid(e.to_string()))?,
        port: row
            .get::<Option<i64>, _>("port")
            .and_then(|p| u16::try_from(p).ok()),
        assumed_charset: row.get("assumed_charset"),
        stable_after_secs: row.get("stable_after_secs"),
        default_performer_id: row.get("default_performer_id"),
        require_tls: row.get("require_tls"),
    })
}

#[async_trait]
impl huren_archive::catalog::CatalogStore for SqliteIndex {
    async fn import_qualifications(
        &self,
        set: &huren_archive::catalog::RecognitionSet,
        records: &[huren_catalog::QualificationRecord],
    ) -> Result<i64, StoreError> {
        crate::recognition::import_qualifications(
            &self.pool,
            &set.source_sha256,
            set.imported_at,
            &set.imported_by,
            records,
        )
        .await
        .map_err(db)
    }

    async fn import_scopes(
        &self,
        set: &huren_archive::catalog::RecognitionSet,
        rules: &[huren_catalog::ScopeRule],
    ) -> Result<i64, StoreError> {
        crate::recognition::import_scopes(
            &self.pool,
            &set.source_sha256,
            set.imported_at,
            &set.imported_by,
            rules,
        )
        .await
        .map_err(db)
    }

    async fn import_policy(
        &self,
        set: &huren_archive::catalog::RecognitionSet,
        document: &str,
    ) -> Result<i64, StoreError> {
        crate::recognition::import_policy(
            &self.pool,
            &set.source_sha256,
            set.imported_at,
            &set.imported_by,
            set.rows,
            document,
        )
        .await
        .map_err(db)
    }

    async fn set_document(&self, set_id: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT document FROM recognition_set WHERE id = ?")
            .bind(set_id)
            .fetch_optional(&self.pool)
            .await
            .map(Option::flatten)
            .map_err(db)
    }

    async fn recognition_sets(
        &self,
        limit: i64,
    ) -> Result<Vec<huren_archive::catalog::RecognitionSet>, StoreError> {
        crate::recognition::sets(&self.pool, limit)
            .await
            .map_err(db)
    }

    async fn recognition_set_at(
        &self,
        kind: &str,
        at: Option<i64>,
    ) -> Result<Option<huren_archive::catalog::RecognitionSet>, StoreError> {
        crate::recognition::set_at(&self.pool, kind, at)
            .await
            .map_err(db)
    }

    async fn qualification_records(
        &self,
        set_id: i64,
    ) -> Result<Vec<huren_catalog::QualificationRecord>, StoreError> {
        crate::recognition::qualifications(&self.pool, set_id)
            .await
            .map_err(db)
    }

    async fn scope_rules(&self, set_id: i64) -> Result<Vec<huren_catalog::ScopeRule>, StoreError> {
        crate::recognition::scopes(&self.pool, set_id)
            .await
            .map_err(db)
    }

    async fn import_catalog_version(
        &self,
        v: &huren_archive::catalog::CatalogVersion,
        items: &[huren_catalog::Item],
    ) -> Result<i64, StoreError> {
        crate::catalog::import_version(&self.pool, v, items)
            .await
            .map_err(db)
    }

    async fn catalog_versions(
        &self,
    ) -> Result<Vec<huren_archive::catalog::CatalogVersion>, StoreError> {
        crate::catalog::versions(&self.pool).await.map_err(db)
    }

    async fn catalog_items(&self, version_id: i64) -> Result<Vec<huren_catalog::Item>, StoreError> {
        crate::catalog::items(&self.pool, version_id)
            .await
            .map_err(db)
    }

    async fn unknown_item_codes(&self, codes: &[&str]) -> Result<Vec<String>, StoreError> {
        crate::catalog::unknown_item_codes(&self.pool, codes)
            .await
            .map_err(db)
    }

    async fn upsert_prices(&self, prices: &[huren_catalog::Price]) -> Result<(), StoreError> {
        crate::catalog::upsert_prices(&self.pool, prices)
            .await
            .map_err(db)
    }

    async fn item_prices(&self, item_code: &str) -> Result<Vec<huren_catalog::Price>, StoreError> {
        crate::catalog::prices(&self.pool, item_code)
            .await
            .map_err(db)
    }

    async fn upsert_code_mappings(
        &self,
        maps: &[huren_catalog::CodeMapping],
    ) -> Result<Result<(), String>, StoreError> {
        crate::catalog::upsert_mappings(&self.pool, maps, now())
            .await
            .map_err(db)
    }

    async fn code_mappings(&self) -> Result<Vec<huren_catalog::CodeMapping>, StoreError> {
        crate::catalog::all_mappings(&self.pool).await.map_err(db)
    }

    async fn replace_study_rules(
        &self,
        rules: &[huren_catalog::StudyRule],
    ) -> Result<(), StoreError> {
        crate::catalog::replace_rules(&self.pool, rules)
            .await
            .map_err(db)
    }

    async fn study_rules(&self) -> Result<Vec<huren_catalog::StudyRule>, StoreError> {
        crate::catalog::rules(&self.pool).await.map_err(db)
    }

    async fn study_groups(&self) -> Result<Vec<huren_archive::catalog::StudyGroup>, StoreError> {
        crate::catalog::study_groups(&self.pool).await.map_err(db)
    }
}

#[cfg(test)]
mod person_revision_tests {
    //! Migration 0036's triggers: each change a judged timeline is made of bumps the revision
    //! of every person it concerns, and the QC queue's bookkeeping does not.
    use super::*;

    pub(super) async fn exec(index: &SqliteIndex, sql: &str) {
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&index.pool)
            .await
        {
            panic!("{sql}: {e}");
        }
    }

    async fn revision(index: &SqliteIndex, person: &str) -> i64 {
        match index.person_revision(person).await {
            Ok(Some(r)) => r,
            other => panic!("{person}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_change_to_a_persons_results_bumps_their_revision() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = SqliteIndex::open(&dir.path().join("index.sqlite"))
            .await
            .expect("index");
        exec(
            &index,
            "INSERT INTO institution (id, code, created_at) VALUES (1, 'county', 0), (2, 'town', 0);
             INSERT INTO person (id, public_id, created_at) VALUES (1, 'a', 0), (2, 'b', 0), (3, 'c', 0);
             INSERT INTO patient (id, issuer, patient_id, updated_at, person_id)
                  VALUES (1, 'county', 'A1', 0, 1), (2, 'county', 'B1', 0, 2), (3, 'town', 'C1', 0, 3)",
        )
        .await;
        assert_eq!(revision(&index, "a").await, 0);
        assert_eq!(index.person_revision("nobody").await.ok(), Some(None));

        // Each step: (what changes, the revision a, b and c should have after it).
        let steps: [(&str, [i64; 3]); 11] = [
            (
                "INSERT INTO study (id, patient_id, study_uid, institution_id, last_instance_at, stable_after_secs)
                      VALUES (1, 1, '1.2.3', 1, 0, 60)",
                [1, 0, 0],
            ),
            // An instance stored: its study's counts change.
            ("UPDATE study SET num_instances = num_instances + 1 WHERE id = 1", [2, 0, 0]),
            // The same UID at another institution, for person c: both persons' results read
            // encodings and grades by UID.
            (
                "INSERT INTO study (id, patient_id, study_uid, institution_id, last_instance_at, stable_after_secs)
                      VALUES (2, 3, '1.2.3', 2, 0, 60)",
                [3, 0, 1],
            ),
            ("INSERT INTO qc_study (study_id, dirty, changed_at) VALUES (1, 1, 0)", [4, 0, 2]),
            // The queue's bookkeeping alone: no change.
            ("UPDATE qc_study SET dirty = 0, changed_at = 5 WHERE study_id = 1", [4, 0, 2]),
            ("UPDATE qc_study SET grade = 'A', aggregated_at = 9 WHERE study_id = 1", [5, 0, 3]),
            (
                "INSERT INTO lab_result (id, patient_id, performing_institution_id, code, created_at)
                      VALUES (1, 2, 1, '2345-7', 0)",
                [5, 1, 3],
            ),
            ("UPDATE lab_result SET superseded_by = 1 WHERE id = 1", [5, 2, 3]),
            (
                "INSERT INTO report (id, patient_id, performing_institution_id, created_at)
                      VALUES (1, 1, 1, 0)",
                [6, 2, 3],
            ),
            // B's record merged into A: both persons change.
            ("UPDATE patient SET person_id = 1 WHERE id = 2", [7, 3, 3]),
            ("DELETE FROM report WHERE id = 1", [8, 3, 3]),
        ];
        for (sql, want) in steps {
            exec(&index, sql).await;
            let got = [
                revision(&index, "a").await,
                revision(&index, "b").await,
                revision(&index, "c").await,
            ];
            assert_eq!(got, want, "after {sql}");
        }
    }
}

#[cfg(test)]
mod qc_rollup_tests {
    //! Migration 0040's triggers: after studies are graded, regraded, moved to another month,
    //! modality or institution, and removed, the roll-up answers what counting the studies
    //! answers.
    use super::person_revision_tests::exec;
    use super::*;

    async fn both(index: &SqliteIndex) -> (Vec<QcCell>, Vec<QcCell>) {
        let months = QcSpan::Months {
            from: "202501".into(),
            until: "202512".into(),
        };
        let days = QcSpan::Days {
            from: "20250101".into(),
            until: "20251231".into(),
        };
        let sorted = |mut v: Vec<QcCell>| {
            v.sort_by(|a, b| {
                (&a.month, &a.institution, &a.modalities).cmp(&(
                    &b.month,
                    &b.institution,
                    &b.modalities,
                ))
            });
            v
        };
        let by = huren_archive::quality::QualityBy::Cell;
        let a = index.qc_cells(&months, None, by).await.expect("months");
        let b = index.qc_cells(&days, None, by).await.expect("days");
        (sorted(a), sorted(b))
    }

    #[tokio::test]
    async fn the_rollup_counts_what_the_studies_count() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = SqliteIndex::open(&dir.path().join("index.sqlite"))
            .await
            .expect("index");
        exec(
            &index,
            "INSERT INTO institution (id, code, created_at) VALUES (1, 'county', 0), (2, 'town', 0);
             INSERT INTO patient (id, issuer, patient_id, updated_at) VALUES (1, 'county', 'A1', 0);
             INSERT INTO study (id, patient_id, study_uid, institution_id, study_date, modalities, last_instance_at, stable_after_secs)
                  VALUES (1, 1, '1.1', 1, '20250103', 'CT', 0, 60), (2, 1, '1.2', 1, '20250117', 'CT', 0, 60),
                         (3, 1, '1.3', 2, '20250205', 'DX', 0, 60), (4, 1, '1.4', 1, '20250211', 'CT', 0, 60),
                         (5, 1, '1.5', 1, '', 'CT', 0, 60);
             INSERT INTO qc_study (study_id, dirty, changed_at) VALUES (1, 1, 0), (2, 1, 0), (3, 1, 0), (4, 1, 0), (5, 1, 0)",
        )
        .await;
        let (rolled, counted) = both(&index).await;
        assert!(rolled.is_empty() && counted.is_empty());
        let steps = [
            // Graded as aggregation writes it.
            "UPDATE qc_study SET dirty = 0, aggregated_at = 10, score = 91.5, grade = 'A', calibrated = 1, complete = 1 WHERE study_id = 1",
            "UPDATE qc_study SET dirty = 0, aggregated_at = 10, score = 64.0, grade = 'C', calibrated = 0, complete = 0 WHERE study_id = 2",
            "UPDATE qc_study SET dirty = 0, aggregated_at = 10, score = 100, grade = 'A', calibrated = 1 WHERE study_id = 3",
            "UPDATE qc_study SET dirty = 0, aggregated_at = 10, score = NULL, grade = NULL WHERE study_id = 4",
            // No study date: not counted anywhere.
            "UPDATE qc_study SET dirty = 0, aggregated_at = 10, score = 50, grade = 'reject' WHERE study_id = 5",
            // Regraded after a late series.
            "UPDATE qc_study SET aggregated_at = 20, score = 58.2, grade = 'reject' WHERE study_id = 1",
            // The study gains a modality, changes month, changes institution.
            "UPDATE study SET modalities = 'CT\\SR' WHERE id = 2",
            "UPDATE study SET study_date = '20250301' WHERE id = 4",
            "UPDATE study SET institution_id = 1 WHERE id = 3",
            // Back to waiting (dirty, no grade yet), then removed.
            "UPDATE qc_study SET aggregated_at = NULL, score = NULL, grade = NULL WHERE study_id = 2",
            "DELETE FROM qc_study WHERE study_id = 3",
        ];
        for step in steps {
            exec(&index, step).await;
            let (rolled, counted) = both(&index).await;
            assert_eq!(rolled, counted, "after {step}");
        }
        let (rolled, _) = both(&index).await;
        let studies: u64 = rolled.iter().map(|c| c.studies).sum();
        assert_eq!(studies, 2, "{rolled:?}");
        assert!(rolled.iter().any(|c| c.reject == 1 && c.histogram[11] == 1));
    }
}
