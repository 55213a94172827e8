//! The regional archive's use cases: imaging (ingest from C-STORE and STOW-RS alike, query,
//! retrieval, object lifecycle, start-up recovery, study stability), institutions and their
//! senders, patients (persons, registration at the first visit, numbering), people's accounts
//! and sessions, consent and break-glass, lab results (HL7 v2 and FHIR through one
//! `store_results`), the recognition catalog and decisions, image quality control and the
//! patient's cloud film.
//!
//! Owns the ports it needs ([`ports::Index`] — composed of one port per feature —,
//! [`ports::BlobStore`], [`catalog::CatalogStore`], [`film::FilmStore`], [`ports::Notifier`]);
//! adapters (`huren-dimse`, `huren-http`, `huren-web`, `huren-mllp`) call it, storage
//! (`huren-store`) implements it, and `Archive`'s handles on those ports are private. It knows
//! nothing of sockets, SQL or HTTP. Every entry point takes a capability from `huren-access`
//! (`IngestGrant`, `AdminGrant`, `ReadGrant`, …), so an unauthorized call does not compile;
//! the few questions asked before a caller is known (whose token, which DIMSE peer) are in
//! [`callers`].
//!
//! ```ignore
//! let status = archive.ingest(&grant, IngestRequest { spooled, expected, source, settings }).await;
//! ```

pub mod accounts;
mod administration;
mod attribution;
pub mod breakglass;
pub mod caller_cache;
pub mod callers;
pub mod catalog;
pub mod consent;
pub mod film;
mod imaging;
pub mod imports;
pub mod ingest;
pub mod institutions_file;
pub mod judged_cache;
pub mod lab;
pub mod model;
pub mod numbering;
mod patients;
pub mod peers_file;
mod persons;
pub mod ports;
pub mod quality;
pub mod query;
pub mod reach;
pub mod recognition;
mod recognition_config;
pub mod refusal;
pub mod registration;
pub mod results;
pub mod retrieve;
pub mod spool;
pub mod submit;
pub mod time;
mod timed;
/// Units → UCUM live with the lab model (`huren_labs::units`).
pub use huren_labs::units;

pub use ingest::{Expected, IngestRequest, IngestStatus, Refusal, SenderSettings, Warning};
use model::*;
use ports::{BlobStore, Index, StoreError};
pub use spool::{Body, Spool, SpoolError, Spooled};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    /// The region's zone for DICOM dates/times (DA/TM carry none).
    pub zone: &'static time_tz::Tz,
    /// Default quiet period after which a study is stable (senders may override).
    pub stable_after_secs: i64,
    /// Largest object accepted (C-STORE and each STOW part).
    pub max_object_bytes: u64,
    /// Objects up to this size are spooled in memory (see [`spool`]).
    pub spool_memory_bytes: u64,
    /// How identity numbers are recognised and protected; `None`: keys not configured, numbers
    /// neither stored nor used for linking.
    pub identity: Option<Arc<IdentityPolicy>>,
    /// Sessions and sign-in (issue #6).
    pub accounts: accounts::AccountPolicy,
    /// Reads of one object by one reader within this window are one audit event.
    pub read_audit_window: std::time::Duration,
}

/// What a steward does to a person (see [`Archive::change_person`]).
pub enum PersonChange<'a> {
    /// Move every record into the person with this public id.
    MergeInto(&'a str),
    /// Undo this person's merge.
    Unmerge,
}

pub(crate) fn required_reason(reason: &str) -> Result<&str, AdminError> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > 500 {
        return Err(AdminError::refused(
            refusal::Rule::ReasonRequired,
            "a reason (1–500 characters) is required",
        ));
    }
    Ok(r)
}

/// How a doctor or a system looks a patient up (patient API).
pub enum PatientLookup<'a> {
    /// An identity number under its system URI or a configured issuer name (`身份证`).
    Identifier { system: &'a str, value: &'a str },
    /// One institution's record: `(issuer, PatientID)`.
    Record {
        issuer: &'a str,
        patient_id: &'a str,
    },
    /// The start of a name, in characters or pinyin.
    Name(&'a str),
}

/// One read event per study found (the audit keeps one per reader and window).
pub(crate) fn study_reads(found: &[query::Match]) -> Vec<reach::Read> {
    let mut studies: Vec<reach::Read> = Vec::new();
    for m in found {
        let object = format!("study:{}", m.study_instance_uid);
        if !studies.iter().any(|r| r.object == object) {
            studies.push(reach::Read {
                object,
                patient: Some(format!("{}@{}", m.patient_id, m.issuer_of_patient_id)),
                study_uid: Some(m.study_instance_uid.clone()),
            });
        }
    }
    studies
}

enum PersonQuery {
    Ordinary,
    Person(query::Query),
    NoSuchNumber,
}

/// Identity numbers in DICOM objects (issue #5): which OtherPatientIDsSequence issuers mark a
/// resident identity number, and the keys that seal them.
pub struct IdentityPolicy {
    pub sealer: huren_seal::Sealer,
    /// Compared case-insensitively with IssuerOfPatientID in OtherPatientIDsSequence items.
    pub resident_id_issuers: Vec<String>,
    /// A top-level attribute (DICOM JSON key `GGGGEEEE`) holding a resident identity number.
    pub resident_id_tag: Option<String>,
}

/// Why an identity number was not kept: the sender's mistake, or ours.
#[derive(Debug, thiserror::Error)]
pub enum NumberError {
    #[error("{0}")]
    Invalid(huren_mpi::id::IdError),
    #[error("could not seal: {0}")]
    Seal(huren_seal::SealError),
}

impl std::fmt::Debug for IdentityPolicy {
    // Never the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityPolicy")
            .field("resident_id_issuers", &self.resident_id_issuers)
            .finish_non_exhaustive()
    }
}

impl IdentityPolicy {
    pub fn is_resident_issuer(&self, issuer: &str) -> bool {
        let issuer = issuer.trim();
        self.resident_id_issuers
            .iter()
            .any(|i| i.eq_ignore_ascii_case(issuer))
    }

    /// Whether `system` names identity numbers: a national system URI or a configured issuer
    /// name such as `身份证`.
    pub fn is_identity_system(&self, system: &str) -> bool {
        huren_mpi::id::NATIONAL_SYSTEMS.contains(&system.trim()) || self.is_resident_issuer(system)
    }

    /// How the index finds the holder of `number`: its system and blind index (the number is
    /// checked against GB 11643 as of `today`, never stored or compared in the clear).
    pub fn person_key(
        &self,
        number: &str,
        today: ::time::Date,
    ) -> Result<query::PersonKey, huren_mpi::id::IdError> {
        let id = huren_mpi::id::NationalId::parse(number, today)?;
        Ok(query::PersonKey {
            system: id.system().to_owned(),
            blind: self.sealer.blind_index(id.system(), id.as_str()),
        })
    }

    /// A record's identity number as the index keeps it: sealed, with its blind index and
    /// whether it agrees with the record's birth date and sex.
    pub fn seal_number(
        &self,
        number: &str,
        today: ::time::Date,
        birth: Option<::time::Date>,
        sex: Option<huren_mpi::id::Sex>,
    ) -> Result<model::SealedIdentifier, NumberError> {
        let id = huren_mpi::id::NationalId::parse(number, today).map_err(NumberError::Invalid)?;
        let sealed = self
            .sealer
            .seal(id.system(), id.as_str())
            .map_err(NumberError::Seal)?;
        Ok(model::SealedIdentifier {
            system: id.system().to_owned(),
            blind: self.sealer.blind_index(id.system(), id.as_str()),
            sealed: sealed.bytes,
            key_id: sealed.key_id,
            consistent: id.consistency(birth, sex) == huren_mpi::id::Consistency::Consistent,
        })
    }
}

#[derive(Clone)]
pub struct Archive {
    // Private: adapters reach data only through use cases that take a grant (or, before a
    // caller is known, through `callers`).
    index: Arc<dyn Index>,
    blobs: Arc<dyn BlobStore>,
    catalog: Arc<dyn catalog::CatalogStore>,
    film: Arc<dyn film::FilmStore>,
    pub config: ArchiveConfig,
    attribution: Arc<attribution::AttributionCache>,
    considered: Arc<persons::Considered>,
    hl7_senders: Arc<lab::SenderCache>,
    catalog_cache: Arc<catalog::CatalogCache>,
    judged_cache: Arc<judged_cache::JudgedCache>,
    access_log: Arc<reach::AccessLog>,
    callers: Arc<caller_cache::CallerCache>,
    notifier: Arc<dyn ports::Notifier>,
}

/// A new token: the secret is shown once, only its hash is kept.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub id: i64,
    pub secret: String,
    pub expires_at: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The caller is authenticated but may not do this (HTTP 403): another institution's
    /// patient named, a relationship it does not have.
    #[error("{0}")]
    Forbidden(String),
    /// Too many of something the caller may do only a few times (HTTP 429): authorization
    /// requests that each send the patient an SMS.
    #[error("{0}")]
    TooMany(String),
    /// A named rule refused it (`refusal::Rule`): the caller gets the rule's stable code.
    #[error("{1}")]
    Refused(refusal::Rule, String),
    /// A step of huren's own failed, not the request (hashing a password, a rendering task):
    /// answered as an internal error, its cause logged.
    #[error("{step} failed")]
    Failed {
        step: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl AdminError {
    pub(crate) fn refused(rule: refusal::Rule, message: impl Into<String>) -> Self {
        AdminError::Refused(rule, message.into())
    }

    pub(crate) fn failed(
        step: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        AdminError::Failed {
            step,
            source: source.into(),
        }
    }
}

impl Archive {
    pub fn new(
        index: Arc<dyn Index>,
        blobs: Arc<dyn BlobStore>,
        catalog: Arc<dyn catalog::CatalogStore>,
        film: Arc<dyn film::FilmStore>,
        config: ArchiveConfig,
    ) -> Self {
        Archive {
            index,
            blobs,
            catalog,
            film,
            config,
            attribution: Arc::default(),
            considered: Arc::default(),
            hl7_senders: Arc::default(),
            catalog_cache: Arc::default(),
            judged_cache: Arc::default(),
            access_log: Arc::default(),
            callers: Arc::default(),
            notifier: Arc::new(ports::NoNotifier),
        }
    }

    /// The SMS gateway for patient authorization codes.
    pub fn with_notifier(mut self, notifier: Arc<dyn ports::Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    pub async fn spool(&self) -> std::io::Result<Spool> {
        Ok(Spool::new(
            self.blobs.spool_dir(),
            self.config.max_object_bytes,
            self.config.spool_memory_bytes,
        ))
    }

    /// Today's date in the region's zone (identity numbers' birth dates are checked against it).
    pub fn today(&self) -> ::time::Date {
        use time_tz::OffsetDateTimeExt;
        ::time::OffsetDateTime::now_utc()
            .to_timezone(self.config.zone)
            .date()
    }
}

/// Stored BulkDataURIs are relative to their instance (`bulk/{offset}-{length}`).
pub fn prefix_bulk_uris(v: &mut serde_json::Value, prefix: &str) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "BulkDataURI" {
                    if let serde_json::Value::String(s) = child
                        && !s.contains("://")
                        && !s.starts_with('/')
                    {
                        *s = format!("{prefix}{s}");
                    }
                } else {
                    prefix_bulk_uris(child, prefix);
                }
            }
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(|i| prefix_bulk_uris(i, prefix))
        }
        _ => {}
    }
}
