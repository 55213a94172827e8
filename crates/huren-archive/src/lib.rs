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
mod attribution;
pub mod breakglass;
pub mod callers;
pub mod catalog;
pub mod consent;
pub mod film;
pub mod imports;
pub mod ingest;
pub mod institutions_file;
pub mod judged_cache;
pub mod lab;
pub mod model;
pub mod numbering;
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
/// Units → UCUM live with the lab model (`huren_labs::units`).
pub use huren_labs::units;

use huren_access::{AdminGrant, AuditAction, AuditEvent, Outcome};
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

fn required_reason(reason: &str) -> Result<&str, AdminError> {
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
fn study_reads(found: &[query::Match]) -> Vec<reach::Read> {
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
}

impl AdminError {
    pub(crate) fn refused(rule: refusal::Rule, message: impl Into<String>) -> Self {
        AdminError::Refused(rule, message.into())
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

    /// One `configuration_changed` audit event (DICOM "Security Alert", 110113).
    async fn audit_config(&self, grant: &AdminGrant, object: String, detail: serde_json::Value) {
        // Every configuration change passes here: attribution answers and the HL7 sender list
        // may have changed.
        self.attribution.clear();
        self.hl7_senders.clear();
        self.audit_admin(
            AuditAction::ConfigurationChanged,
            &grant.principal().label(),
            object,
            detail,
        )
        .await;
    }

    /// One successful administrative action on one object (ARCHITECTURE.md, "What one audit
    /// event is").
    async fn audit_admin(
        &self,
        action: AuditAction,
        actor: &str,
        object: String,
        detail: serde_json::Value,
    ) {
        let ev = AuditEvent {
            action,
            outcome: Outcome::Success,
            actor: actor.to_owned(),
            institution: None,
            patient: None,
            study_uid: None,
            object: Some(object),
            source_address: None,
            detail,
        };
        if let Err(e) = self.index.record_audit(ev).await {
            tracing::error!(error = %e, "could not record audit event");
        }
    }

    pub async fn add_institution(
        &self,
        grant: &AdminGrant,
        inst: NewInstitution,
    ) -> Result<i64, AdminError> {
        let code = inst.code.to_string();
        let mut inst = inst;
        if let Some(org) = &inst.organization {
            self.require_organization(org).await?;
        }
        if let Some(d) = inst.division.take() {
            inst.division = Some(
                InstitutionAttribute::Division
                    .normalize(&d)
                    .map_err(|e| AdminError::Invalid(e.to_string()))?,
            );
        }
        if let Some(system) = &inst.identifier_system {
            self.require_free_numbering(system, None).await?;
        }
        let detail = serde_json::to_value(&inst).unwrap_or_default();
        let id = self
            .index
            .add_institution(inst)
            .await
            .map_err(|e| match e {
                // The code (in any case) is held already; the store names the spelling.
                StoreError::Conflict(m) => {
                    AdminError::refused(refusal::Rule::InstitutionCodeTaken, m)
                }
                e => e.into(),
            })?;
        self.audit_config(grant, format!("institution:{code}"), detail)
            .await;
        Ok(id)
    }

    /// An identifier system given to an institution must not be another's numbering (its
    /// identifier system, or an issuer it claimed): one numbering, one institution
    /// (crate::numbering).
    async fn require_free_numbering(
        &self,
        system: &str,
        code: Option<&str>,
    ) -> Result<(), AdminError> {
        let mine = match code {
            Some(c) => self
                .index
                .institution_as_of(c, self.today())
                .await?
                .map(|v| v.id),
            None => None,
        };
        match self.numbering(system).await? {
            numbering::Numbering::Institution(owner) if Some(owner) != mine => {
                Err(AdminError::refused(
                    refusal::Rule::NumberingTaken,
                    format!("{system} is already another institution's patient numbering"),
                ))
            }
            numbering::Numbering::Person => Err(AdminError::refused(
                refusal::Rule::NumberingTaken,
                format!("{system} is an identity-number system, not a hospital's numbering"),
            )),
            _ => Ok(()),
        }
    }

    pub async fn change_institution(
        &self,
        grant: &AdminGrant,
        code: &str,
        mut change: AttributeChange,
    ) -> Result<(), AdminError> {
        change.value = change
            .attribute
            .normalize(&change.value)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        if change.attribute == InstitutionAttribute::Organization {
            self.require_organization(&change.value).await?;
        }
        if change.attribute == InstitutionAttribute::IdentifierSystem {
            self.require_free_numbering(&change.value, Some(code))
                .await?;
        }
        let detail = serde_json::to_value(&change).unwrap_or_default();
        let attribute = change.attribute;
        self.index.set_institution_attribute(code, change).await?;
        // Prices follow the price region and grade (level) on each decision day.
        if matches!(
            attribute,
            InstitutionAttribute::Level | InstitutionAttribute::Region
        ) {
            self.index
                .reprice_recognition_units(None, Some(code))
                .await?;
        }
        self.audit_config(grant, format!("institution:{code}"), detail)
            .await;
        Ok(())
    }

    /// A campus names its organization by the organization's own institution code.
    async fn require_organization(&self, code: &str) -> Result<(), AdminError> {
        match self.index.institution_as_of(code, self.today()).await? {
            Some(_) => Ok(()),
            None => Err(AdminError::Invalid(format!(
                "organization {code} is not a registered institution"
            ))),
        }
    }

    pub async fn institution_as_of(
        &self,
        _grant: &AdminGrant,
        code: &str,
        date: ::time::Date,
    ) -> Result<Option<InstitutionView>, AdminError> {
        Ok(self.index.institution_as_of(code, date).await?)
    }

    pub async fn list_institutions(
        &self,
        _grant: &AdminGrant,
        date: ::time::Date,
    ) -> Result<Vec<InstitutionView>, AdminError> {
        Ok(self.index.list_institutions(date).await?)
    }

    pub async fn add_membership(
        &self,
        grant: &AdminGrant,
        m: NewMembership,
    ) -> Result<(), AdminError> {
        let detail = serde_json::to_value(&m).unwrap_or_default();
        let object = format!("institution:{}", m.institution_code);
        self.index.add_consortium_membership(m).await?;
        self.audit_config(grant, object, detail).await;
        Ok(())
    }

    pub async fn add_ae(&self, grant: &AdminGrant, ae: NewAe) -> Result<i64, AdminError> {
        if let Some(cs) = &ae.assumed_charset
            && huren_dicom::charset::encoding_for_label(cs).is_none()
        {
            return Err(AdminError::Invalid(format!("unknown character set {cs:?}")));
        }
        let detail = serde_json::to_value(&ae).unwrap_or_default();
        let object = format!("ae:{}", ae.ae_title);
        let id = self.index.add_ae(ae).await?;
        self.audit_config(grant, object, detail).await;
        Ok(id)
    }

    pub async fn list_aes(&self, _grant: &AdminGrant) -> Result<Vec<Peer>, AdminError> {
        Ok(self.index.list_aes().await?)
    }

    /// Allows `sender` to send for `performer`; with `institution_name`, objects from the
    /// sender whose InstitutionName (0008,0080) equals it are attributed to `performer`.
    pub async fn add_send_for(
        &self,
        grant: &AdminGrant,
        sender: &str,
        performer: &str,
        institution_name: Option<&str>,
    ) -> Result<(), AdminError> {
        self.index
            .add_send_for(sender, performer, institution_name)
            .await?;
        self.audit_config(
            grant,
            format!("institution:{sender}"),
            serde_json::json!({ "send_for": performer, "institution_name": institution_name }),
        )
        .await;
        Ok(())
    }

    /// Creates a bearer token; returns the secret (shown once) — only its hash is stored.
    pub async fn create_token(
        &self,
        grant: &AdminGrant,
        scope: TokenScope,
        expires_in_days: Option<u32>,
    ) -> Result<IssuedToken, AdminError> {
        let secret = format!(
            "hr_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let hash = huren_access::hash_token(&secret);
        let expires_at = expires_in_days
            .map(|d| ::time::OffsetDateTime::now_utc().unix_timestamp() + i64::from(d) * 86_400);
        let id = self
            .index
            .create_token(&hash, scope.clone(), expires_at)
            .await?;
        self.audit_config(
            grant,
            format!("token:{id}"),
            serde_json::json!({ "scope": scope, "expires_at": expires_at }),
        )
        .await;
        Ok(IssuedToken {
            id,
            secret,
            expires_at,
        })
    }

    /// Revokes a token at once (its requests get 401 from now on).
    /// An institution's attributes with every version (attribute, value, from, until); `None`
    /// for an unknown code.
    pub async fn institution_history(
        &self,
        _grant: &AdminGrant,
        code: &str,
    ) -> Result<Option<Vec<(String, String, String, Option<String>)>>, AdminError> {
        Ok(self.index.institution_history(code).await?)
    }

    /// Every token, newest first: whose, what it may do, when it was made, expires or was
    /// revoked (never a secret or its hash).
    pub async fn list_tokens(
        &self,
        _grant: &AdminGrant,
    ) -> Result<Vec<model::TokenView>, AdminError> {
        Ok(self.index.list_tokens().await?)
    }

    pub async fn revoke_token(&self, grant: &AdminGrant, id: i64) -> Result<(), AdminError> {
        if !self.index.revoke_token(id).await? {
            return Err(AdminError::Invalid(format!("no live token {id}")));
        }
        self.audit_config(
            grant,
            format!("token:{id}"),
            serde_json::json!({ "revoked": true }),
        )
        .await;
        Ok(())
    }

    /// Rejects or deletes a study (audited). Deleted instances keep a tombstone row; their
    /// blobs are removed after the index change is durable.
    pub async fn set_study_lifecycle(
        &self,
        grant: &AdminGrant,
        study_uid: &str,
        institution: Option<&str>,
        to: huren_types::Lifecycle,
        reason: &str,
    ) -> Result<StudyLifecycleChange, AdminError> {
        if !matches!(
            to,
            huren_types::Lifecycle::Rejected | huren_types::Lifecycle::Deleted
        ) {
            return Err(AdminError::Invalid(
                "a study can only be rejected or deleted".into(),
            ));
        }
        if reason.trim().is_empty() {
            return Err(AdminError::refused(
                refusal::Rule::ReasonRequired,
                "a reason is required",
            ));
        }
        let change = self
            .index
            .set_study_lifecycle(study_uid, institution, to)
            .await?;
        for key in &change.blob_keys {
            if let Err(e) = self.blobs.delete(key).await {
                tracing::warn!(error = %e, key, "blob of deleted instance not removed");
            }
        }
        let ev = AuditEvent {
            action: AuditAction::StudyLifecycleChanged,
            outcome: Outcome::Success,
            actor: grant.principal().label(),
            institution: institution.map(str::to_owned),
            patient: None,
            study_uid: Some(study_uid.to_owned()),
            object: Some(format!("study:{study_uid}")),
            source_address: None,
            detail: serde_json::json!({ "to": to.as_str(), "reason": reason, "instances": change.instances }),
        };
        self.index.record_audit(ev).await?;
        Ok(change)
    }

    /// Today's date in the region's zone (identity numbers' birth dates are checked against it).
    pub fn today(&self) -> ::time::Date {
        use time_tz::OffsetDateTimeExt;
        ::time::OffsetDateTime::now_utc()
            .to_timezone(self.config.zone)
            .date()
    }

    /// Whether an identifier `system` names identity numbers on this server (the patient API
    /// and FHIR look those up by blind index, other systems as a record's own number).
    pub fn is_identity_system(&self, system: &str) -> bool {
        self.config
            .identity
            .as_ref()
            .is_some_and(|p| p.is_identity_system(system))
    }

    /// The lookup an identifier `system|value` means: an identity number (by blind index) when
    /// the system names identity numbers, else a record's own number under its authority.
    pub fn lookup_by<'a>(&self, system: &'a str, value: &'a str) -> PatientLookup<'a> {
        if self.is_identity_system(system) {
            PatientLookup::Identifier { system, value }
        } else {
            PatientLookup::Record {
                issuer: system,
                patient_id: value,
            }
        }
    }

    /// Persons matching a lookup, each with their records at every institution.
    pub async fn find_persons(
        &self,
        grant: &huren_access::ReadGrant,
        lookup: PatientLookup<'_>,
    ) -> Result<Vec<model::PersonHit>, AdminError> {
        let search = self.person_search(lookup)?;
        let (hits, reach) = self.persons_in_reach(grant, &search).await?;
        self.note_search(grant, &reach, &search, &hits).await;
        Ok(hits)
    }

    /// Persons matching a search, narrowed by the reader's reach; not audited as a search
    /// (for use cases that audit what they then read, such as the reminder).
    pub(crate) async fn find_persons_by(
        &self,
        grant: &huren_access::ReadGrant,
        search: model::PersonSearch,
    ) -> Result<Vec<model::PersonHit>, AdminError> {
        Ok(self.persons_in_reach(grant, &search).await?.0)
    }

    async fn persons_in_reach(
        &self,
        grant: &huren_access::ReadGrant,
        search: &model::PersonSearch,
    ) -> Result<(Vec<model::PersonHit>, reach::Reach), AdminError> {
        const LIMIT: u32 = 50;
        let reach = self.reach(grant).await?;
        let mut hits = self.index.find_persons(search, LIMIT).await?;
        match &reach {
            // A system sees a person it has no encounter with only through its institutions'
            // own records (those it has data of), and only those records.
            reach::Reach::Institution { institutions, .. } => {
                let keys: Vec<i64> = hits
                    .iter()
                    .filter(|h| !reach.allows(&h.person))
                    .flat_map(|h| h.records.iter().map(|r| r.patient_key))
                    .collect();
                let own: Vec<i64> = institutions.iter().map(|(id, _)| *id).collect();
                let mine = self.index.records_with_data_at(&keys, &own).await?;
                hits.retain_mut(|h| {
                    if !reach.allows(&h.person) {
                        h.records.retain(|r| mine.contains(&r.patient_key));
                    }
                    !h.records.is_empty()
                });
            }
            _ => hits.retain(|h| reach.allows(&h.person)),
        }
        Ok((hits, reach))
    }

    /// A patient search answered (patient API, FHIR Patient search, PIXm, a reminder's lookup):
    /// one `patient_data_accessed` event per search, naming the persons shown, since the
    /// answer carries names, birth dates and record numbers. What was searched for is named
    /// by kind only (an identity number or a name is never written to the trail).
    async fn note_search(
        &self,
        grant: &huren_access::ReadGrant,
        reach: &reach::Reach,
        search: &model::PersonSearch,
        hits: &[model::PersonHit],
    ) {
        let (by, system) = match search {
            model::PersonSearch::Identifier(k) => ("identity_number", Some(k.system.clone())),
            model::PersonSearch::Record { issuer, .. } => ("record_number", Some(issuer.clone())),
            model::PersonSearch::NamePrefix { .. } => ("name", None),
        };
        let persons: Vec<&str> = hits.iter().map(|h| h.person.as_str()).collect();
        let ev = huren_access::AuditEvent {
            action: huren_access::AuditAction::PatientDataAccessed,
            outcome: Outcome::Success,
            actor: grant.principal().label(),
            institution: match grant.principal() {
                huren_access::Principal::User(u) => Some(u.institution_code.to_string()),
                huren_access::Principal::System(s) => Some(s.institution_code.to_string()),
                _ => None,
            },
            patient: match persons.as_slice() {
                [one] => Some(format!("person:{one}")),
                _ => None,
            },
            study_uid: None,
            object: Some("patient-search".into()),
            source_address: None,
            detail: serde_json::json!({
                "purpose": reach.purpose(),
                "by": by,
                "system": system,
                "results": persons.len(),
                "persons": persons,
            }),
        };
        if let Err(e) = self.index.record_audit(ev).await {
            tracing::error!(error = %e, "could not record a patient search");
        }
    }

    /// A lookup as the index searches it (identity numbers by blind index).
    pub(crate) fn person_search(
        &self,
        lookup: PatientLookup<'_>,
    ) -> Result<model::PersonSearch, AdminError> {
        Ok(match lookup {
            PatientLookup::Identifier { system, value } => {
                let Some(policy) = &self.config.identity else {
                    return Err(AdminError::Invalid(
                        "identity numbers are not configured on this server (mpi keys)".into(),
                    ));
                };
                if !policy.is_identity_system(system) {
                    return Err(AdminError::Invalid(format!(
                        "unknown identifier system {system}"
                    )));
                }
                let key = policy
                    .person_key(value, self.today())
                    .map_err(|e| AdminError::Invalid(format!("identity number: {e}")))?;
                model::PersonSearch::Identifier(key)
            }
            PatientLookup::Record { issuer, patient_id } => model::PersonSearch::Record {
                issuer: issuer.to_owned(),
                patient_id: patient_id.to_owned(),
            },
            PatientLookup::Name(prefix) => {
                let prefix = prefix.trim();
                if prefix.is_empty() {
                    return Err(AdminError::Invalid("name is empty".into()));
                }
                model::PersonSearch::NamePrefix {
                    prefix: prefix.to_owned(),
                    sound_prefix: huren_mpi::name::PersonName::from_dicom(prefix).sound_key(),
                }
            }
        })
    }

    /// A person's imaging studies and lab results at every institution, each newest first
    /// (patient timeline).
    pub async fn timeline(
        &self,
        grant: &huren_access::ReadGrant,
        person: &str,
        limit: u32,
    ) -> Result<Option<model::Timeline>, AdminError> {
        self.timeline_as_of(grant, person, limit, None).await
    }

    /// The timeline as it stood at `as_of` (unix seconds): results and reports received by
    /// then, each as it was then (recognition re-checked as of a date, issue #17).
    pub(crate) async fn timeline_as_of(
        &self,
        grant: &huren_access::ReadGrant,
        person: &str,
        limit: u32,
        as_of: Option<i64>,
    ) -> Result<Option<model::Timeline>, AdminError> {
        let Some(parts) = self.admit_person(grant, person).await? else {
            return Ok(None);
        };
        let catalog = self.catalog_snapshot().await?;
        self.read_timeline(person, limit, as_of, parts, &catalog)
            .await
    }

    /// Whether the reader may read the person (audited either way): `Some((images, results))`,
    /// the parts they may read (a patient may have opened only one), or `None`.
    pub(crate) async fn admit_person(
        &self,
        grant: &huren_access::ReadGrant,
        person: &str,
    ) -> Result<Option<(bool, bool)>, AdminError> {
        let reach = self.reach(grant).await?;
        let allowed = reach.allows(person);
        self.note_person_read(grant, &reach, person, allowed).await;
        Ok(allowed.then(|| reach.parts(person)))
    }

    /// The timeline of an admitted person (see [`Archive::admit_person`]), each result mapped
    /// to its catalog item with `catalog`; `None` for an unknown person.
    pub(crate) async fn read_timeline(
        &self,
        person: &str,
        limit: u32,
        as_of: Option<i64>,
        (images, results): (bool, bool),
        catalog: &catalog::Snapshot,
    ) -> Result<Option<model::Timeline>, AdminError> {
        let limit = limit.clamp(1, 1000);
        let Some(mut studies) = self.index.person_studies(person, limit, as_of).await? else {
            return Ok(None);
        };
        // Which catalog item each result is: study rules for images, code mappings (or
        // LOINC) for lab results.
        for s in &mut studies {
            let facts = huren_catalog::StudyFacts {
                institution: s.performing_institution.clone(),
                modalities: s.modalities.split('\\').map(str::to_owned).collect(),
                body_parts: s
                    .body_parts
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
                description: s.description.clone(),
                procedure_code: None,
            };
            s.catalog_item =
                huren_catalog::match_study(&catalog.rules, &facts).map(|r| r.item_code.clone());
        }
        let mut lab_results = self.index.person_lab_results(person, limit, as_of).await?;
        for r in &mut lab_results {
            r.catalog_item =
                catalog.lab(&r.performing_institution, r.code_system.as_deref(), &r.code);
        }
        let reports = self.index.person_reports(person, limit, as_of).await?;
        Ok(Some(model::Timeline {
            studies: if images { studies } else { Vec::new() },
            lab_results: if results { lab_results } else { Vec::new() },
            reports: if results { reports } else { Vec::new() },
        }))
    }

    /// Registers an HL7 v2 sender of `institution` (audited).
    pub async fn add_hl7_sender(
        &self,
        grant: &AdminGrant,
        institution: &str,
        network: ipnet::IpNet,
        facility: Option<&str>,
        charset: Option<&str>,
    ) -> Result<i64, AdminError> {
        if let Some(c) = charset {
            huren_hl7::charset_of(c).map_err(|e| AdminError::Invalid(e.to_string()))?;
        }
        let id = self
            .index
            .add_hl7_sender(institution, network, facility, charset)
            .await?;
        self.audit_config(
            grant,
            format!("hl7_sender:{id}"),
            serde_json::json!({ "institution": institution, "network": network.to_string(), "facility": facility, "charset": charset }),
        )
        .await;
        Ok(id)
    }

    /// The data stewards' queue: record pairs the link rules would not decide alone.
    pub async fn link_reviews(
        &self,
        grant: &huren_access::StewardGrant,
        state: &str,
        limit: u32,
    ) -> Result<Vec<model::LinkReview>, AdminError> {
        if !matches!(state, "open" | "linked" | "rejected") {
            return Err(AdminError::Invalid(
                "state is open, linked or rejected".into(),
            ));
        }
        let mut list = self.index.link_reviews(state, limit.clamp(1, 1000)).await?;
        if grant.institution().is_some() {
            let mut kept = Vec::with_capacity(list.len());
            for r in list {
                if self.steward_owns(grant, &r.a.issuer).await?
                    || self.steward_owns(grant, &r.b.issuer).await?
                {
                    kept.push(r);
                }
            }
            list = kept;
        }
        // The queue shows names, birth dates and record numbers: a read of each person shown.
        let reads: Vec<reach::Read> = list
            .iter()
            .flat_map(|r| [&r.a.person, &r.b.person])
            .map(|p| reach::Read::person(p))
            .collect();
        self.note_steward_reads(grant, reads).await;
        Ok(list)
    }

    /// Whether a record under `issuer` is the steward's institution's: its numbering or that
    /// of an institution it sends for (crate::numbering). Every record is the console's.
    async fn steward_owns(
        &self,
        grant: &huren_access::StewardGrant,
        issuer: &str,
    ) -> Result<bool, AdminError> {
        let Some(inst) = grant.institution() else {
            return Ok(true);
        };
        Ok(match self.numbering(issuer).await? {
            numbering::Numbering::Institution(id) => self
                .attribution
                .own_institutions(self.index.as_ref(), inst)
                .await?
                .iter()
                .any(|(i, _)| *i == id),
            _ => false,
        })
    }

    /// A steward's reads of persons (the review queue, a person's records and history):
    /// audited like any read of patient data, with purpose `operations`.
    async fn note_steward_reads(
        &self,
        grant: &huren_access::StewardGrant,
        reads: Vec<reach::Read>,
    ) {
        let events: Vec<huren_access::AuditEvent> = reads
            .into_iter()
            .map(|r| huren_access::AuditEvent {
                action: AuditAction::PatientDataAccessed,
                outcome: Outcome::Success,
                actor: grant.principal().label(),
                institution: match grant.principal() {
                    huren_access::Principal::User(u) => Some(u.institution_code.to_string()),
                    _ => None,
                },
                patient: r.patient,
                study_uid: None,
                object: Some(r.object),
                source_address: None,
                detail: serde_json::json!({ "purpose": "operations", "as": "data steward" }),
            })
            .collect();
        for ev in events {
            if let Err(e) = self.index.record_audit(ev).await {
                tracing::error!(error = %e, "could not record a steward's read");
            }
        }
    }

    /// Refuses a steward's change unless one of the persons holds a record of their
    /// institution — the rule for review pairs too: a cross-institution match is decided by a
    /// steward of either side. A merged person is judged by the person it was merged into.
    async fn steward_may_touch(
        &self,
        grant: &huren_access::StewardGrant,
        persons: &[&str],
    ) -> Result<(), AdminError> {
        if grant.institution().is_none() {
            return Ok(());
        }
        for p in persons {
            let mut next = Some((*p).to_owned());
            // A merge chain is short; bounded all the same.
            for _ in 0..8 {
                let Some(id) = next.take() else { break };
                let Some(v) = self.index.person(&id).await? else {
                    break;
                };
                for r in &v.records {
                    if self.steward_owns(grant, &r.issuer).await? {
                        return Ok(());
                    }
                }
                next = v.merged_into;
            }
        }
        Err(AdminError::Forbidden(format!(
            "none of {} holds a record of this steward's institution",
            persons.join(", ")
        )))
    }

    /// A steward's decision on a review pair: link (the two records' persons become one) or
    /// reject. Audited; refused when it would join two different identity numbers.
    pub async fn decide_link_review(
        &self,
        grant: &huren_access::StewardGrant,
        id: i64,
        link: bool,
        reason: &str,
    ) -> Result<model::LinkReview, AdminError> {
        let reason = required_reason(reason)?;
        if grant.institution().is_some() {
            let ours = match self.index.link_review(id).await? {
                Some(r) => {
                    self.steward_owns(grant, &r.a.issuer).await?
                        || self.steward_owns(grant, &r.b.issuer).await?
                }
                None => false,
            };
            if !ours {
                return Err(AdminError::Invalid(format!(
                    "review {id} is not this steward's institution's"
                )));
            }
        }
        let actor = grant.principal().label();
        let review = self
            .index
            .decide_link_review(id, link, &actor, reason)
            .await?;
        self.audit_admin(
            AuditAction::PersonLinksChanged,
            &actor,
            format!("link_review:{id}"),
            serde_json::json!({ "decision": review.state, "reason": reason, "a": review.a.patient_key, "b": review.b.patient_key }),
        )
        .await;
        Ok(review)
    }

    /// Merges person `merged` into another, or undoes its merge (exactly the records that
    /// merge moved go back). History is kept either way; audited.
    pub async fn change_person(
        &self,
        grant: &huren_access::StewardGrant,
        merged: &str,
        change: PersonChange<'_>,
        reason: &str,
    ) -> Result<usize, AdminError> {
        let reason = required_reason(reason)?;
        match &change {
            PersonChange::MergeInto(survivor) => {
                self.steward_may_touch(grant, &[merged, survivor]).await?
            }
            PersonChange::Unmerge => self.steward_may_touch(grant, &[merged]).await?,
        }
        let actor = grant.principal().label();
        let (moved, detail) = match change {
            PersonChange::MergeInto(survivor) => {
                let n = self
                    .index
                    .merge_persons(survivor, merged, &actor, reason)
                    .await?;
                (
                    n,
                    serde_json::json!({ "merged_into": survivor, "records": n, "reason": reason }),
                )
            }
            PersonChange::Unmerge => {
                let n = self.index.unmerge_person(merged, &actor, reason).await?;
                (
                    n,
                    serde_json::json!({ "unmerged": true, "records": n, "reason": reason }),
                )
            }
        };
        self.audit_admin(
            AuditAction::PersonLinksChanged,
            &actor,
            format!("person:{merged}"),
            detail,
        )
        .await;
        Ok(moved)
    }

    pub async fn person(
        &self,
        grant: &huren_access::StewardGrant,
        public_id: &str,
    ) -> Result<Option<model::PersonView>, AdminError> {
        if self.steward_may_touch(grant, &[public_id]).await.is_err() {
            return Ok(None);
        }
        let view = self.index.person(public_id).await?;
        if view.is_some() {
            self.note_steward_reads(grant, vec![reach::Read::person(public_id)])
                .await;
        }
        Ok(view)
    }

    /// A person and their records, for reading (FHIR Patient); the link history is the
    /// stewards' business and is left out.
    pub async fn person_records(
        &self,
        grant: &huren_access::ReadGrant,
        public_id: &str,
    ) -> Result<Option<model::PersonView>, AdminError> {
        let reach = self.reach(grant).await?;
        let allowed = reach.allows(public_id);
        self.note_person_read(grant, &reach, public_id, allowed)
            .await;
        if !allowed {
            return Ok(None);
        }
        Ok(self.index.person(public_id).await?.map(|mut p| {
            p.history.clear();
            p
        }))
    }

    /// Start-up recovery: removes spool leftovers and blobs that no index row references in the
    /// partitions written since the last clean sweep (a crash between blob fsync and index
    /// commit). Returns the number of orphans removed.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        if let Ok(mut rd) = tokio::fs::read_dir(self.blobs.spool_dir()).await {
            while let Ok(Some(e)) = rd.next_entry().await {
                if tokio::fs::remove_file(e.path()).await.is_ok() {
                    removed += 1;
                }
            }
        }
        let today = ::time::OffsetDateTime::now_utc().date();
        let from = match self.index.sweep_watermark().await? {
            Some(p) => huren_types::day::parse_iso(&p).unwrap_or(today),
            // First start: sweep everything once.
            None => ::time::Date::MIN,
        };
        let partitions: Vec<String> = if from == ::time::Date::MIN {
            vec!["objects/".to_string()]
        } else {
            // The day before the watermark too: a crash just after midnight UTC.
            let mut v = Vec::new();
            let mut d = from.previous_day().unwrap_or(from);
            while d <= today {
                v.push(format!(
                    "objects/{:04}/{:02}/{:02}/",
                    d.year(),
                    u8::from(d.month()),
                    d.day()
                ));
                match d.next_day() {
                    Some(n) => d = n,
                    None => break,
                }
            }
            v
        };
        for prefix in partitions {
            let blobs = self.blobs.list(&prefix).await?;
            if blobs.is_empty() {
                continue;
            }
            let known: std::collections::HashSet<String> = self
                .index
                .blob_keys_with_prefix(&prefix)
                .await?
                .into_iter()
                .collect();
            for key in blobs {
                if !known.contains(&key) {
                    tracing::warn!(key, "removing orphan blob (written but never indexed)");
                    self.blobs.delete(&key).await?;
                    removed += 1;
                }
            }
        }
        self.index
            .set_sweep_watermark(&huren_types::day::iso(today))
            .await?;
        Ok(removed)
    }

    /// One pass of the stability check; the server calls it periodically.
    pub async fn mark_stable(&self) -> Result<Vec<i64>, StoreError> {
        self.index
            .mark_stable_studies(::time::OffsetDateTime::now_utc().unix_timestamp())
            .await
    }

    /// Query at any level (QIDO-RS, C-FIND). The page is bounded by the caller.
    pub async fn find(
        &self,
        grant: &huren_access::ReadGrant,
        q: &query::Query,
    ) -> Result<Vec<query::Match>, StoreError> {
        let reach = self.reach(grant).await?;
        let scoped;
        let q = match reach.keys() {
            None => q,
            Some(k) => {
                scoped = query::Query {
                    persons_in: Some(k),
                    institutions_or: reach.institution_ids(),
                    ..q.clone()
                };
                &scoped
            }
        };
        let found = match self.by_identity_number(q) {
            PersonQuery::Ordinary => self.index.find(q).await?,
            PersonQuery::Person(q) => self.index.find(&q).await?,
            // An invalid number belongs to nobody.
            PersonQuery::NoSuchNumber => Vec::new(),
        };
        self.note_reads(grant, &reach, study_reads(&found), Outcome::Success)
            .await;
        Ok(found)
    }

    /// The web viewer's study browser (issue #19): OHIF asks for "the patient's other studies"
    /// by PatientID alone (`/dicom-web/studies?PatientID=…`), and two hospitals may number
    /// different people with the same PatientID. The question is answered for the person the
    /// doctor opened (the persons of `opened`, most recent first, that hold a record with this
    /// PatientID and whose images the reader reaches): every study of that person the reader
    /// reaches, across institutions, under the query's other conditions — never another
    /// person's. `None` when no opened person holds such a record.
    pub async fn find_for_opened(
        &self,
        grant: &huren_access::ReadGrant,
        q: &query::Query,
        patient_id: &str,
        opened: &[String],
    ) -> Result<Option<Vec<query::Match>>, StoreError> {
        use query::Key;
        let reach = self.reach(grant).await?;
        for person in opened {
            if !reach.allows(person) || !reach.parts(person).0 {
                continue;
            }
            let Some(view) = self.index.person(person).await? else {
                continue;
            };
            if !view.records.iter().any(|r| r.patient_id == patient_id) {
                continue;
            }
            // The internal key the index scopes by. A reader who reaches everyone (a regional
            // service) has no list of keys: its query is answered as asked, by the caller.
            let key = match &reach {
                reach::Reach::Persons(p) => p.iter().find(|r| &r.id == person).map(|r| r.key),
                reach::Reach::Institution { persons, .. } => {
                    persons.iter().find(|(_, id)| id == person).map(|(k, _)| *k)
                }
                reach::Reach::All => None,
            };
            let Some(key) = key else {
                continue;
            };
            let mut scoped = q.clone();
            scoped
                .conditions
                .retain(|c| c.key != Key::PatientId && c.key != Key::IssuerOfPatientId);
            scoped.person = None;
            scoped.persons_in = Some(vec![key]);
            scoped.institutions_or = None;
            let found = self.index.find(&scoped).await?;
            self.note_reads(grant, &reach, study_reads(&found), Outcome::Success)
                .await;
            return Ok(Some(found));
        }
        Ok(None)
    }

    /// A study asked for by UID that the reader does not reach, or that does not exist (the
    /// answers are the same, 404): recorded as a refused read of that study.
    pub async fn note_study_not_found(&self, grant: &huren_access::ReadGrant, study_uid: &str) {
        let reach = match self.reach(grant).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reach not read for a refused read's audit event");
                return;
            }
        };
        let read = reach::Read {
            object: format!("study:{study_uid}"),
            patient: None,
            study_uid: Some(study_uid.to_owned()),
        };
        self.note_reads(grant, &reach, vec![read], Outcome::Failure)
            .await;
    }

    /// A person's data read (or refused): the audit event's object is the person.
    pub(crate) async fn note_person_read(
        &self,
        grant: &huren_access::ReadGrant,
        reach: &reach::Reach,
        person: &str,
        allowed: bool,
    ) {
        let read = reach::Read::person(person);
        let outcome = if allowed {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        self.note_reads(grant, reach, vec![read], outcome).await;
    }

    /// PatientID with an identity-number IssuerOfPatientID (a national system URI or one of
    /// the configured DICOM issuer names) asks for a *person*: every record, at every
    /// institution, linked to the holder of that number. Matches keep their own PatientID and
    /// issuer. The number is looked up by its blind index, never in the clear.
    fn by_identity_number(&self, q: &query::Query) -> PersonQuery {
        use query::{Key, Matcher};
        let Some(policy) = &self.config.identity else {
            return PersonQuery::Ordinary;
        };
        let single = |key: Key| {
            q.conditions
                .iter()
                .find_map(|c| match (&c.matcher, c.key == key) {
                    (Matcher::Single(v), true) => Some(v.clone()),
                    _ => None,
                })
        };
        let (Some(number), Some(issuer)) = (single(Key::PatientId), single(Key::IssuerOfPatientId))
        else {
            return PersonQuery::Ordinary;
        };
        if !policy.is_identity_system(&issuer) {
            return PersonQuery::Ordinary;
        }
        let Ok(key) = policy.person_key(&number, self.today()) else {
            return PersonQuery::NoSuchNumber;
        };
        let mut person_q = q.clone();
        person_q
            .conditions
            .retain(|c| c.key != Key::PatientId && c.key != Key::IssuerOfPatientId);
        person_q.person = Some(key);
        PersonQuery::Person(person_q)
    }

    /// Instances' DICOM JSON as built at ingest, with the current patient module overlaid
    /// (PS3.18 §10.4.1.2 metadata). Bulk data URIs stay relative (`bulk/…`); the adapter
    /// makes them absolute.
    pub async fn instance_metadata(
        &self,
        _grant: &huren_access::ReadGrant,
        instances: &[query::Match],
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
        let keys: Vec<i64> = instances.iter().filter_map(|m| m.instance_key).collect();
        let docs: std::collections::HashMap<i64, Vec<u8>> = self
            .index
            .instance_documents(&keys)
            .await?
            .into_iter()
            .collect();
        let mut out = Vec::with_capacity(instances.len());
        for m in instances {
            let Some(raw) = m.instance_key.and_then(|k| docs.get(&k)) else {
                continue;
            };
            let mut doc = match huren_dicom::json::inflate(raw) {
                Ok(serde_json::Value::Object(o)) => o,
                _ => {
                    return Err(StoreError::broken(format!(
                        "stored metadata of {:?} is unreadable",
                        m.sop_instance_uid
                    )));
                }
            };
            query::overlay_patient(&mut doc, m);
            out.push(doc);
        }
        Ok(out)
    }

    /// The current ETag of a series' metadata, when the (study, series) UIDs name exactly one
    /// series (the same UIDs from two institutions are served uncached).
    pub async fn series_etag(
        &self,
        grant: &huren_access::ReadGrant,
        study_uid: &huren_types::Uid,
        series_uid: &huren_types::Uid,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let (study_uid, series_uid) = (study_uid.as_str(), series_uid.as_str());
        // The cached path does not look at persons: a reader limited by relationship takes the
        // uncached one, which goes through `find` (and its person filter). A system takes it
        // for its own institutions' series.
        let reach = self.reach(grant).await?;
        let own = match &reach {
            reach::Reach::All => None,
            reach::Reach::Institution { .. } => reach.institution_ids(),
            reach::Reach::Persons(_) => return Ok(None),
        };
        let mut rows = self.index.series_etag(study_uid, series_uid).await?;
        let (Some(tag), true) = (rows.pop(), rows.is_empty()) else {
            return Ok(None);
        };
        if own.is_some_and(|own| !own.contains(&tag.institution_id)) {
            return Ok(None);
        }
        let read = reach::Read {
            object: format!("study:{study_uid}"),
            patient: Some(tag.patient),
            study_uid: Some(study_uid.to_owned()),
        };
        self.note_reads(grant, &reach, vec![read], Outcome::Success)
            .await;
        Ok(Some((tag.key, tag.etag)))
    }

    /// Series metadata as JSON text, assembled once per ETag from the per-instance JSON and
    /// cached; BulkDataURIs are host-relative (`/dicom-web/studies/…`), so one cached document
    /// serves every host name the archive is reached by.
    pub async fn series_metadata(
        &self,
        grant: &huren_access::ReadGrant,
        key: i64,
        etag: &str,
        study_uid: &huren_types::Uid,
        series_uid: &huren_types::Uid,
    ) -> Result<Vec<u8>, StoreError> {
        let (study_uid, series_uid) = (study_uid.as_str(), series_uid.as_str());
        if let Some(cached) = self.index.cached_series_metadata(key, etag).await?
            && let Ok(text) = huren_dicom::json::inflate_bytes(&cached)
        {
            return Ok(text);
        }
        let q = query::Query {
            level: query::Level::Instance,
            conditions: vec![
                query::Condition {
                    key: query::Key::StudyInstanceUid,
                    matcher: query::Matcher::Single(study_uid.to_owned()),
                },
                query::Condition {
                    key: query::Key::SeriesInstanceUid,
                    matcher: query::Matcher::Single(series_uid.to_owned()),
                },
            ],
            limit: 100_000,
            offset: 0,
            after_key: None,
            person: None,
            persons_in: None,
            institutions_or: None,
        };
        let found = self.find(grant, &q).await?;
        let docs = self.instance_metadata(grant, &found).await?;
        let mut out = Vec::with_capacity(docs.len());
        for (m, doc) in found.iter().zip(docs) {
            let prefix = format!(
                "/dicom-web/studies/{}/series/{}/instances/{}/",
                m.study_instance_uid,
                m.series_instance_uid.as_deref().unwrap_or(""),
                m.sop_instance_uid.as_deref().unwrap_or("")
            );
            let mut v = serde_json::Value::Object(doc);
            prefix_bulk_uris(&mut v, &prefix);
            out.push(v);
        }
        let text = serde_json::to_vec(&serde_json::Value::Array(out))
            .map_err(|e| StoreError::backend("series metadata", e))?;
        self.index
            .store_series_metadata(key, etag, &huren_dicom::json::deflate_bytes(&text))
            .await?;
        Ok(text)
    }

    /// Registers the grant-free read of counts for `/metrics` and the demo banner.
    pub async fn counts(&self) -> Result<ArchiveCounts, StoreError> {
        self.index.counts().await
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
