//! The ports the archive's use cases need. Implementations live in `huren-store` (SQLite +
//! local files today; PostgreSQL + S3 later) — use cases never name a database or a bucket.

use crate::model::*;
use async_trait::async_trait;
use huren_access::{AuditEvent, Principal};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The device or quota is full: DIMSE 0xA700, HTTP 507.
    #[error("storage is out of space: {0}")]
    OutOfSpace(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    /// The back end failed: `step` says what was being done, `source` keeps the driver's own
    /// error (sqlx, I/O, object store) as it was, so a caller can look into it (a PostgreSQL
    /// serialization failure is retried) and logs show it. Never shown to API callers.
    /// Display prints the cause after the step; it is not also offered as `Error::source`, so
    /// an error chain (`{:#}`) does not print it twice.
    #[error("storage back end failed: {step}{}", cause_text(source))]
    Backend { step: String, source: Option<Cause> },
}

/// An underlying error kept as the source of a [`StoreError`]: shared, because one failed group
/// commit answers every job of the group with the same cause.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

impl StoreError {
    pub fn from_io(e: std::io::Error) -> Self {
        // ENOSPC (28) and EDQUOT (122) on Linux.
        match e.raw_os_error() {
            Some(28) | Some(122) => StoreError::OutOfSpace(e.to_string()),
            _ => StoreError::backend("file system", e),
        }
    }
    /// The back end failed at `step`, because of `source`.
    pub fn backend(
        step: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            step: step.into(),
            source: Some(std::sync::Arc::new(source)),
        }
    }
    /// The back end failed at `step` with nothing underneath to keep (a stopped task).
    pub fn broken(step: impl Into<String>) -> Self {
        StoreError::Backend {
            step: step.into(),
            source: None,
        }
    }
    /// The underlying error, when the back end failed because of one.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            StoreError::Backend {
                source: Some(c), ..
            } => Some(c.as_ref()),
            _ => None,
        }
    }
}

/// `: cause: its cause…` after a back-end step, or nothing.
fn cause_text(source: &Option<Cause>) -> String {
    let mut out = String::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = source
        .as_deref()
        .map(|c| c as &(dyn std::error::Error + 'static));
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

/// Whether an instance's object has reached the disk, for the index writer: an instance's rows
/// may be written while its bytes are still being synced, but they commit only once this
/// resolves `Ok` (a row is never durable before its object; ARCHITECTURE.md, ingest step 6).
pub struct BytesDurable(Option<tokio::sync::oneshot::Receiver<Result<(), StoreError>>>);

impl BytesDurable {
    /// The object is durable already.
    pub fn already() -> Self {
        BytesDurable(None)
    }
    /// Durable once the sender reports `Ok`; an error or a dropped sender means it is not.
    pub fn pending() -> (tokio::sync::oneshot::Sender<Result<(), StoreError>>, Self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (tx, BytesDurable(Some(rx)))
    }
    /// Waits for the outcome; once `Ok`, later calls return at once.
    pub async fn wait(&mut self) -> Result<(), StoreError> {
        let Some(rx) = self.0.as_mut() else {
            return Ok(());
        };
        let r = rx
            .await
            .unwrap_or_else(|_| Err(StoreError::broken("persisting an object was abandoned")));
        if r.is_ok() {
            self.0 = None;
        }
        r
    }
}

/// One object found by [`BlobStore::list`].
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub modified: std::time::SystemTime,
}

/// Where object bytes live. Writes are two-phase: bytes are first spooled (in memory or to a
/// local file, hashed as they arrive), then made durable under their final key by
/// [`BlobStore::persist`].
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// A directory for spool files, on the same file system as the objects when local (so
    /// persisting is a rename).
    fn spool_dir(&self) -> &Path;
    /// Makes the spooled bytes durable under `key` (fsync'd, directory entry too). A spool file
    /// is moved, not copied; the caller disarms it afterwards. On error nothing is left under
    /// `key` that the caller must clean up (a crash may leave a partial file there, which the
    /// start-up sweep removes because no index row names it).
    async fn persist(&self, body: &crate::spool::Body, key: &str) -> Result<(), StoreError>;
    /// Reads a whole object (tests, small objects); large reads use ranges.
    async fn read(&self, key: &str) -> Result<bytes::Bytes, StoreError>;
    async fn read_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes, StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Objects under a prefix with their last-modified time (the start-up sweep).
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError>;
    /// How long an object that no index row names may still be another node's object in
    /// flight (persisted, its row not yet committed): the sweep leaves it alone until then.
    /// Zero for a store only this node writes (files under its data directory).
    fn orphan_grace(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// Local path of an object when the store is a file system (for scanning in place).
    fn local_path(&self, key: &str) -> Option<PathBuf>;
}

/// The index, composed of one port per feature (the way a backend handler is composed of
/// per-feature traits): each is implemented in its own module of `huren-store`, next to its
/// SQL, so a second backend can be built and tested feature by feature. Use cases hold an
/// `Arc<dyn Index>`; a trait object's methods include its supertraits', so calls need no
/// import. Code holding a concrete store (tests, tools) imports `ports::*`.
pub trait Index:
    InstitutionIndex
    + IngestIndex
    + AuditIndex
    + AccountIndex
    + ConsentIndex
    + PersonIndex
    + ResultIndex
    + RecognitionIndex
    + QualityIndex
    + QueryIndex
    + Send
    + Sync
    + 'static
{
}

impl<T> Index for T where
    T: InstitutionIndex
        + IngestIndex
        + AuditIndex
        + AccountIndex
        + ConsentIndex
        + PersonIndex
        + ResultIndex
        + RecognitionIndex
        + QualityIndex
        + QueryIndex
        + Send
        + Sync
        + 'static
{
}

/// Peers and institutions: DIMSE senders and their performers, institutions with effective-
/// dated attributes, consortia, bearer tokens, HL7 senders, and whose numbering an issuer is.
/// Implemented in `huren-store/src/institutions.rs`.
#[async_trait]
pub trait InstitutionIndex: Send + Sync {
    /// Finds the DIMSE peer registered for this calling AE title whose network contains `addr`.
    async fn find_peer(&self, calling_ae: &str, addr: IpAddr) -> Result<Option<Peer>, StoreError>;
    async fn principal_for_token(&self, token_hash: &str) -> Result<Option<Principal>, StoreError>;
    /// The institution that performed an instance sent by `sender_institution` (configured
    /// InstitutionName mapping), if any mapping applies.
    async fn map_performer(
        &self,
        sender_institution: i64,
        institution_name: &str,
    ) -> Result<Option<i64>, StoreError>;
    async fn institution_code(&self, id: i64) -> Result<Option<String>, StoreError>;
    /// The identifier system (issuer) an institution uses for its MRNs on `date` (YYYYMMDD).
    /// The institution's identifier system in force on `on` (YYYY-MM-DD, the region's day).
    async fn institution_identifier_system(
        &self,
        id: i64,
        on: &str,
    ) -> Result<Option<String>, StoreError>;
    /// The institution whose patient numbering `issuer` is: its `identifier_system` (now or
    /// ever), its `urn:huren:institution:<code>`, or a first-use claim (crate::numbering).
    async fn issuer_owner(&self, issuer: &str) -> Result<Option<i64>, StoreError>;
    /// Claims an unclaimed issuer for `institution`; returns the owner afterwards and whether
    /// this call made the claim (a concurrent claim by another institution wins if first).
    async fn claim_issuer(&self, issuer: &str, institution: i64)
    -> Result<(i64, bool), StoreError>;
    async fn add_institution(&self, inst: NewInstitution) -> Result<i64, StoreError>;
    async fn set_institution_attribute(
        &self,
        code: &str,
        change: AttributeChange,
    ) -> Result<(), StoreError>;
    async fn institution_as_of(
        &self,
        code: &str,
        date: time::Date,
    ) -> Result<Option<InstitutionView>, StoreError>;
    async fn list_institutions(&self, date: time::Date)
    -> Result<Vec<InstitutionView>, StoreError>;
    async fn add_consortium_membership(&self, m: NewMembership) -> Result<(), StoreError>;
    async fn add_ae(&self, ae: NewAe) -> Result<i64, StoreError>;
    async fn list_aes(&self) -> Result<Vec<Peer>, StoreError>;
    async fn add_send_for(
        &self,
        sender_code: &str,
        performer_code: &str,
        institution_name: Option<&str>,
    ) -> Result<(), StoreError>;
    /// An institution's effective-dated attributes, every version: (attribute, value,
    /// valid_from, valid_to), by attribute then start. `None`: no such institution.
    async fn institution_history(
        &self,
        code: &str,
    ) -> Result<Option<Vec<(String, String, String, Option<String>)>>, StoreError>;
    /// Every token (never its secret or hash), newest first.
    async fn list_tokens(&self) -> Result<Vec<crate::model::TokenView>, StoreError>;
    /// False when no live token has that id.
    async fn revoke_token(&self, id: i64) -> Result<bool, StoreError>;
    async fn create_token(
        &self,
        hash: &str,
        scope: TokenScope,
        expires_at: Option<i64>,
    ) -> Result<i64, StoreError>;
    async fn hl7_senders(&self) -> Result<Vec<Hl7Sender>, StoreError>;
    async fn add_hl7_sender(
        &self,
        institution_code: &str,
        network: ipnet::IpNet,
        sending_facility: Option<&str>,
        default_charset: Option<&str>,
    ) -> Result<i64, StoreError>;
    /// A sending institution and the performers it may send for, as (id, code).
    async fn own_institutions(&self, institution_id: i64)
    -> Result<Vec<(i64, String)>, StoreError>;
}

/// Ingest: committing instances through the group-commit writer, study lifecycle, stability,
/// and the start-up sweep's reads.
/// Implemented in `huren-store/src/ingest.rs`.
#[async_trait]
pub trait IngestIndex: Send + Sync {
    /// Commits one instance and its audit event atomically, applying the duplicate-UID policy
    /// inside the same serialized transaction (see ARCHITECTURE.md). May be batched with other
    /// concurrent commits (group commit); returns only once durable.
    ///
    /// `durable` gates the commit: the rows are written while the object's bytes are still
    /// being synced, and commit only once it resolves `Ok`; otherwise nothing of the
    /// instance is kept and its error is returned.
    async fn commit_instance(
        &self,
        rec: NewInstance,
        audit: AuditEvent,
        durable: BytesDurable,
    ) -> Result<CommitOutcome, StoreError>;
    async fn set_study_lifecycle(
        &self,
        study_uid: &str,
        institution_code: Option<&str>,
        to: huren_types::Lifecycle,
    ) -> Result<StudyLifecycleChange, StoreError>;
    async fn instances_by_sop_uid(&self, sop_uid: &str) -> Result<Vec<InstanceRow>, StoreError>;
    async fn blob_keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    async fn sweep_watermark(&self) -> Result<Option<String>, StoreError>;
    async fn set_sweep_watermark(&self, partition: &str) -> Result<(), StoreError>;
    /// Marks studies with no new instance for their sender's quiet period as stable; returns
    /// the study keys that just became stable (each gets one `study_stable` event row).
    async fn mark_stable_studies(&self, now_unix: i64) -> Result<Vec<i64>, StoreError>;
    async fn counts(&self) -> Result<ArchiveCounts, StoreError>;
}

/// The audit trail: one chained event per action (ARCHITECTURE.md, "What one audit event is").
/// Implemented in `huren-store/src/audit.rs`.
#[async_trait]
pub trait AuditIndex: Send + Sync {
    async fn record_audit(&self, ev: AuditEvent) -> Result<(), StoreError>;
    /// Audit events matching `filter`, newest first.
    async fn audit_events(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError>;
}

/// People's accounts and sessions, encounters and launch tickets from the HIS.
/// Implemented in `huren-store/src/accounts.rs`.
#[async_trait]
pub trait AccountIndex: Send + Sync {
    async fn add_user(&self, u: NewUser) -> Result<i64, StoreError>;
    async fn user_account(&self, username: &str) -> Result<Option<UserAccount>, StoreError>;
    /// Counts a failed sign-in; `lock_until` locks the account until then.
    async fn login_failed(&self, user_id: i64, lock_until: Option<i64>) -> Result<i64, StoreError>;
    async fn login_succeeded(&self, user_id: i64) -> Result<(), StoreError>;
    async fn create_session(&self, s: SessionRecord) -> Result<(), StoreError>;
    /// A live session (not ended) and its user, by the hash of its secret.
    async fn session(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(SessionRecord, UserAccount)>, StoreError>;
    async fn touch_session(&self, secret_hash: &str, at: i64) -> Result<(), StoreError>;
    async fn end_session(&self, secret_hash: &str, at: i64) -> Result<(), StoreError>;
    /// Opens, updates or closes an encounter; its id.
    async fn upsert_encounter(&self, e: EncounterUpsert) -> Result<i64, StoreError>;
    async fn create_launch_ticket(&self, t: NewLaunchTicket) -> Result<(), StoreError>;
    /// Marks a live ticket used and returns it; None when unknown, used or expired.
    async fn redeem_launch_ticket(
        &self,
        secret_hash: &str,
        now: i64,
    ) -> Result<Option<RedeemedTicket>, StoreError>;
    async fn user_account_by_id(&self, user_id: i64) -> Result<Option<UserAccount>, StoreError>;
    /// The persons with an open encounter at an institution (internal key, public id).
    async fn encounter_persons(
        &self,
        institution_id: i64,
    ) -> Result<Vec<(i64, String)>, StoreError>;
    /// The persons a user may read now (internal key, public id): those with a record in an
    /// open encounter at the user's institution, assigned to the user or to their department.
    /// (internal key, public id, by break-glass) of each person.
    /// The persons `user` reaches by relationship (see huren-store's `related_persons`);
    /// `department_reach`: a patient's authorization also reaches the asking doctor's
    /// department's doctors.
    async fn related_persons(
        &self,
        user: &huren_access::User,
        department_reach: bool,
    ) -> Result<Vec<(i64, String, bool, String)>, StoreError>;
    /// Of these patient records, those with a study, report or result performed by one of
    /// `institutions` (a system's own records).
    async fn records_with_data_at(
        &self,
        patient_keys: &[i64],
        institutions: &[i64],
    ) -> Result<Vec<i64>, StoreError>;
}

/// A patient's consent and emergencies: mobile-number changes, authorization by SMS code,
/// break-glass.
/// Implemented in `huren-store/src/consent.rs`.
#[async_trait]
pub trait ConsentIndex: Send + Sync {
    /// Records a change of a person's SMS number: one without a code takes effect in the same
    /// transaction; one with a code waits for [`ConsentIndex::confirm_contact_change`]. None: no such
    /// person.
    async fn record_contact_change(&self, c: NewContactChange) -> Result<Option<i64>, StoreError>;
    /// A pending change confirmed with its code (five attempts, until it expires, once);
    /// `Ok(None)` when refused.
    async fn confirm_contact_change(
        &self,
        id: i64,
        institution_id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<ContactChangeView>, StoreError>;
    /// Authorization requests made since `since`: (for this person from any institution, by
    /// this user).
    async fn authorization_requests_since(
        &self,
        person: &str,
        user_id: i64,
        since: i64,
    ) -> Result<(i64, i64), StoreError>;
    /// A person's sealed SMS number.
    async fn patient_contact(&self, person: &str) -> Result<Option<SealedContact>, StoreError>;
    async fn create_authorization(&self, a: NewAuthorization) -> Result<i64, StoreError>;
    /// Checks a code: `Ok(Some(granted))` when it matched (the authorization starts now),
    /// `Ok(None)` when it did not (one attempt used); refused after five attempts or expiry.
    async fn confirm_authorization(
        &self,
        id: i64,
        institution_id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<AuthorizationView>, StoreError>;
    async fn revoke_authorization(
        &self,
        id: i64,
        institution_id: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    async fn start_break_glass(
        &self,
        user: &huren_access::User,
        person: &str,
        reason: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<i64>, StoreError>;
    async fn break_glass_list(
        &self,
        institution_id: i64,
        open_only: bool,
    ) -> Result<Vec<BreakGlass>, StoreError>;
    async fn review_break_glass(
        &self,
        id: i64,
        reviewer: &huren_access::User,
        verdict: &str,
        note: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// The master patient index: persons, their records and identifiers, link reviews, merge and
/// unmerge.
/// Implemented in `huren-store/src/persons.rs`.
#[async_trait]
pub trait PersonIndex: Send + Sync {
    /// Review pairs in `state` (`open`, `linked`, `rejected`), oldest first.
    async fn link_reviews(&self, state: &str, limit: u32) -> Result<Vec<LinkReview>, StoreError>;
    async fn link_review(&self, id: i64) -> Result<Option<LinkReview>, StoreError>;
    /// Moves every record of person `merged` into `survivor` (public ids), recording one link
    /// event per record. `Conflict` when that would give one person two different identity
    /// numbers of one document; `NotFound` for unknown persons. Returns the records moved.
    async fn merge_persons(
        &self,
        survivor: &str,
        merged: &str,
        actor: &str,
        reason: &str,
    ) -> Result<usize, StoreError>;
    /// Moves back the records that the merge of `merged` moved (those still with the survivor).
    async fn unmerge_person(
        &self,
        merged: &str,
        actor: &str,
        reason: &str,
    ) -> Result<usize, StoreError>;
    /// Marks a review pair `linked` (after merging the two records' persons) or `rejected`.
    async fn decide_link_review(
        &self,
        id: i64,
        link: bool,
        actor: &str,
        reason: &str,
    ) -> Result<LinkReview, StoreError>;
    async fn person(&self, public_id: &str) -> Result<Option<PersonView>, StoreError>;
    /// The record `(issuer, patient_id)` and up to `limit` other records whose name sounds the
    /// same (`name_key`), with how many records carry that sound.
    async fn link_candidates(
        &self,
        issuer: &str,
        patient_id: &str,
        limit: u32,
    ) -> Result<Option<(RecordFacts, Vec<RecordFacts>, i64)>, StoreError>;
    /// Applies a score decision between two records: `link` merges their persons (rule
    /// `score`, refused silently into review when numbers conflict), otherwise a review pair.
    async fn apply_score_decision(
        &self,
        a: i64,
        b: i64,
        link: bool,
        score: f64,
    ) -> Result<(), StoreError>;
    /// Persons matching a search (at most `limit`), each with their records.
    async fn find_persons(
        &self,
        search: &PersonSearch,
        limit: u32,
    ) -> Result<Vec<PersonHit>, StoreError>;
    /// The person's lab results at every institution, newest first (unknown person: empty).
    /// Whether `system` is an assigning authority huren knows: some record's issuer or an
    /// institution's identifier system (IHE PIXm tells unknown domains from unknown patients).
    async fn identifier_domain_known(&self, system: &str) -> Result<bool, StoreError>;
    /// The person's revision: a number that changes, in the same transaction, with every
    /// change to their studies (and their instances' counts), QC grades, lab results, reports
    /// and record links (migration 0036's triggers). `None` for an unknown person; `Some(0)`
    /// for one never changed since the revision was introduced.
    async fn person_revision(&self, public_id: &str) -> Result<Option<i64>, StoreError>;
}

/// Lab results and reports: HL7 ORU commits and the keyset-paged reads of FHIR and the patient
/// page.
/// Implemented in `huren-store/src/results.rs`.
#[async_trait]
pub trait ResultIndex: Send + Sync {
    /// Stores an ORU message in one transaction (message, patient record and person,
    /// identifiers, results, audit event), or reports it a duplicate.
    async fn commit_oru(&self, oru: NewOru, audit: AuditEvent) -> Result<OruOutcome, StoreError>;
    /// Current results (not superseded) matching `q`, newest first, at most `q.limit`.
    async fn search_observations(
        &self,
        q: &crate::model::ResultQuery,
    ) -> Result<Vec<crate::model::ObservationRow>, StoreError>;
    async fn observation(
        &self,
        id: i64,
    ) -> Result<Option<crate::model::ObservationRow>, StoreError>;
    /// Current orders and reports matching `q`, newest first, at most `q.limit`.
    async fn search_orders(
        &self,
        q: &crate::model::ResultQuery,
    ) -> Result<Vec<crate::model::OrderRow>, StoreError>;
    async fn order(&self, id: i64) -> Result<Option<crate::model::OrderRow>, StoreError>;
    /// With `as_of`, as for [`ResultIndex::person_reports`].
    async fn person_lab_results(
        &self,
        public_id: &str,
        limit: u32,
        as_of: Option<i64>,
    ) -> Result<Vec<TimelineLab>, StoreError>;
    /// The person's imaging reports, newest first (unknown person: empty). With `as_of` (unix
    /// seconds), those received by then, each as it stood then (a later correction unseen).
    async fn person_reports(
        &self,
        public_id: &str,
        limit: u32,
        as_of: Option<i64>,
    ) -> Result<Vec<TimelineReport>, StoreError>;
}

/// Mutual recognition: a person's studies as recognition sees them, decisions, reminders,
/// visits, the statistics roll-up and its prices.
/// Implemented in `huren-store/src/recognition.rs`.
#[async_trait]
pub trait RecognitionIndex: Send + Sync {
    /// For each of these studies, the transfer syntaxes its active instances are stored in and
    /// whether any says LossyImageCompression 01: (study UID, transfer syntax, lossy flag).
    async fn study_encodings(
        &self,
        study_uids: &[String],
    ) -> Result<Vec<(String, String, bool)>, StoreError>;
    /// The person's active imaging studies at every institution, newest first; `None` for an
    /// unknown person. With `as_of`, those with an image received by then.
    async fn person_studies(
        &self,
        public_id: &str,
        limit: u32,
        as_of: Option<i64>,
    ) -> Result<Option<Vec<TimelineStudy>>, StoreError>;
    /// Statistics over the units decided in `[from, until]`, optionally of one receiving
    /// institution (docs/recognition.md): a unit is (institution, visit, item) with its current
    /// decision on a result the engine judged recognizable.
    async fn recognition_statistics(
        &self,
        from: time::Date,
        until: time::Date,
        institution: Option<i64>,
        by: crate::model::StatsBy,
    ) -> Result<Vec<crate::model::StatsCell>, StoreError>;
    /// Units whose price is still to be looked up: (institution code, item, decision day).
    async fn unpriced_recognition_units(&self)
    -> Result<Vec<(String, String, String)>, StoreError>;
    /// Prices (fen, or none in force) for the units of (institution code, item, day).
    async fn price_recognition_units(
        &self,
        prices: &[(String, String, String, Option<i64>)],
    ) -> Result<(), StoreError>;
    /// What rebuilding the statistics units would have to price: (institution code, item, day).
    async fn recognition_rebuild_price_keys(
        &self,
    ) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Rebuilds the statistics units from the stored decisions with these prices (restores,
    /// bulk loads).
    async fn rebuild_recognition_units(
        &self,
        prices: &[(String, String, String, Option<i64>)],
    ) -> Result<u64, StoreError>;
    /// Marks units to be priced again: of these items, or of this institution, or all.
    async fn reprice_recognition_units(
        &self,
        items: Option<&[String]>,
        institution: Option<&str>,
    ) -> Result<u64, StoreError>;
    async fn record_recognition_decision(
        &self,
        d: &crate::model::NewRecognitionDecision,
    ) -> Result<(i64, u64), StoreError>;
    /// Appends a doctor's recognition decision; earlier decisions by the institution on the same
    /// result for the same visit are marked superseded by it. (new id, how many superseded)
    /// A recorded decision.
    async fn recognition_decision(&self, id: i64) -> Result<Option<StoredDecision>, StoreError>;
    /// Records a reminder shown and what it listed (statistics units follow). None: no such
    /// person.
    async fn record_reminder(&self, r: &NewReminder) -> Result<Option<i64>, StoreError>;
    /// A person of `institution` opened a study its reminders listed (at `at`): the listings
    /// are marked opened. Returns how many.
    async fn reminder_opened(
        &self,
        institution: i64,
        study_uid: &str,
        at: i64,
    ) -> Result<u64, StoreError>;
    /// The visit number of the person's open encounter at the institution (the latest opened),
    /// for reminders and decisions that name none.
    async fn open_visit(
        &self,
        institution: i64,
        person: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Stores the hash of the patient's own revocation link for a granted authorization.
    async fn set_revoke_hash(&self, id: i64, revoke_hash: &str) -> Result<(), StoreError>;
    /// The patient's link: ends the live authorization it belongs to; (id, person public id,
    /// institution code) when there was one.
    async fn revoke_by_patient(
        &self,
        revoke_hash: &str,
        now: i64,
    ) -> Result<Option<(i64, String, String)>, StoreError>;
}

/// Image quality control: the scoring queue, study aggregation, the QC centre's roll-up, lists
/// and reviews.
/// Implemented in `huren-store/src/quality.rs`.
#[async_trait]
pub trait QualityIndex: Send + Sync {
    /// Claims up to `n` scoring jobs (queued, or running with a lapsed lease) until
    /// `lease_until`.
    async fn qc_claim(
        &self,
        worker: &str,
        n: i64,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<crate::model::QcJob>, StoreError>;
    /// Stores images' results, finishes their jobs and marks their studies, in one transaction.
    async fn qc_finish(
        &self,
        all: &[crate::model::QcImageOutcome],
        now: i64,
    ) -> Result<(), StoreError>;
    /// Requeues a failed job (failed for good after three attempts).
    async fn qc_fail(&self, instance_id: i64, error: &str, now: i64) -> Result<(), StoreError>;
    /// Marked studies that are stable with every image scored: (study id, marked at).
    async fn qc_ready_studies(&self, n: i64) -> Result<Vec<(i64, i64)>, StoreError>;
    /// A study's active images' results: (series UID, excluded, scores JSON).
    async fn qc_study_images(
        &self,
        study_id: i64,
    ) -> Result<Vec<(String, Option<String>, String)>, StoreError>;
    /// Stores a study's aggregate; it stays marked when an image was scored after `seen`.
    async fn qc_store_study(
        &self,
        o: &crate::model::QcStudyOutcome,
        seen: i64,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Study grades: (StudyInstanceUID, performing institution, grade, calibrated, complete);
    /// with `as_of`, the grade the study had then (its grading history).
    async fn qc_grades(
        &self,
        study_uids: &[String],
        as_of: Option<i64>,
    ) -> Result<Vec<crate::model::QcGradeRow>, StoreError>;
    /// Graded studies counted per group of `by` (the cell's `institution`, `modalities` or
    /// `month` holds the group; the others are empty): from the roll-up for whole months, else
    /// from the studies of the days asked; optionally of one institution.
    async fn qc_cells(
        &self,
        span: &crate::model::QcSpan,
        institution: Option<i64>,
        by: crate::model::QualityBy,
    ) -> Result<Vec<crate::model::QcCell>, StoreError>;
    /// The QC centre's list: studies matching the filter, one page in the filter's order, and
    /// how many match in all.
    async fn qc_list_studies(
        &self,
        filter: &crate::model::QcStudyFilter,
    ) -> Result<(i64, Vec<crate::model::QcListRow>), StoreError>;
    /// One study's QC state and its images' results, by StudyInstanceUID (each institution's
    /// study of that UID when several sent one), optionally only of one institution.
    async fn qc_study_images_by_uid(
        &self,
        study_uid: &str,
        institution: Option<i64>,
    ) -> Result<Vec<(crate::model::QcListRow, Vec<crate::model::QcImageRow>)>, StoreError>;
    /// What rendering one image for the QC centre needs (its object, transfer syntax, frame
    /// layout and header), shaped as a job: an active instance of a study of that UID, of
    /// `institution` when given.
    async fn qc_image_source(
        &self,
        study_uid: &str,
        sop_uid: &str,
        institution: Option<i64>,
    ) -> Result<Option<crate::model::QcJob>, StoreError>;
    /// Jobs waiting, and the oldest one's enqueue time.
    async fn qc_backlog(&self) -> Result<(i64, Option<i64>), StoreError>;
    /// Appends a QC review to the study `study_uid` performed at `institution` (code); `None`
    /// when there is no such study.
    async fn qc_add_review(
        &self,
        study_uid: &str,
        institution: &str,
        user_id: i64,
        actor: &str,
        comment: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError>;
    /// A study's QC reviews, oldest first.
    async fn qc_reviews(
        &self,
        study_uid: &str,
        institution: &str,
    ) -> Result<Vec<QcReview>, StoreError>;
}

/// Query and retrieve: matches at any level (QIDO-RS and C-FIND), series metadata and its
/// cache, instance documents.
/// Implemented in `huren-store/src/query.rs`.
#[async_trait]
pub trait QueryIndex: Send + Sync {
    /// Matches at the query's level, one statement whatever the level.
    async fn find(&self, q: &crate::query::Query) -> Result<Vec<crate::query::Match>, StoreError>;
    /// The series rows for a (study, series) UID pair with their current ETags (more than one
    /// only when the same UIDs arrived from two institutions).
    async fn series_etag(
        &self,
        study_uid: &str,
        series_uid: &str,
    ) -> Result<Vec<crate::model::SeriesTag>, StoreError>;
    /// Cached series metadata (deflated JSON), when cached for exactly this ETag.
    async fn cached_series_metadata(
        &self,
        series_key: i64,
        etag: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    async fn store_series_metadata(
        &self,
        series_key: i64,
        etag: &str,
        json: &[u8],
    ) -> Result<(), StoreError>;
    /// Deflated DICOM JSON of instances, by instance key.
    async fn instance_documents(
        &self,
        instance_keys: &[i64],
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError>;
}

/// Messages to patients (issue #6): the SMS gateway. Tests and demos use a file outbox.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send_sms(&self, to: &str, text: &str) -> Result<(), StoreError>;
}

/// No gateway configured: every message is refused.
pub struct NoNotifier;

#[async_trait]
impl Notifier for NoNotifier {
    async fn send_sms(&self, _to: &str, _text: &str) -> Result<(), StoreError> {
        Err(StoreError::Invalid("no SMS gateway is configured".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_back_end_failure_keeps_its_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "read-only volume");
        let e = StoreError::backend("persisting an object", io);
        assert_eq!(
            e.to_string(),
            "storage back end failed: persisting an object: read-only volume"
        );
        let cause = e.cause().and_then(|c| c.downcast_ref::<std::io::Error>());
        assert_eq!(
            cause.map(std::io::Error::kind),
            Some(std::io::ErrorKind::PermissionDenied)
        );
        assert_eq!(
            StoreError::broken("index writer stopped").to_string(),
            "storage back end failed: index writer stopped"
        );
        let full = std::io::Error::from_raw_os_error(28);
        assert!(matches!(
            StoreError::from_io(full),
            StoreError::OutOfSpace(_)
        ));
    }
}
