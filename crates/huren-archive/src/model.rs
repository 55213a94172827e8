//! Records crossing the ports. Keys are internal integers, never DICOM UIDs (a UID is an
//! attribute that may collide across a region; see ARCHITECTURE.md, "Identity of objects").

pub use huren_labs::model::{NewLabResult, NewOrder, ReportCategory};
use huren_types::{AeTitle, InstitutionCode, InstitutionLevel, Ownership};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A registered DIMSE peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Peer {
    pub id: i64,
    pub institution_id: i64,
    pub institution_code: String,
    pub ae_title: AeTitle,
    /// The network the peer's associations come from (a host is a /32 or /128).
    pub network: IpNet,
    /// Set for C-MOVE destinations.
    pub port: Option<u16>,
    /// Charset to assume when the peer sends non-ASCII text with no or a wrong (0008,0005).
    pub assumed_charset: Option<String>,
    /// Seconds without a new instance after which a study from this peer is stable.
    pub stable_after_secs: Option<i64>,
    /// Performing institution for everything this peer sends, unless InstitutionName maps.
    pub default_performer_id: Option<i64>,
    /// Only DICOM TLS associations are accepted from this peer.
    #[serde(default)]
    pub require_tls: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewAe {
    pub institution_code: InstitutionCode,
    pub ae_title: AeTitle,
    pub network: IpNet,
    pub port: Option<u16>,
    pub assumed_charset: Option<String>,
    pub stable_after_secs: Option<i64>,
    pub default_performer_code: Option<InstitutionCode>,
    #[serde(default)]
    pub require_tls: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewInstitution {
    pub code: InstitutionCode,
    pub name: String,
    pub level: InstitutionLevel,
    pub ownership: Ownership,
    pub identifier_system: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    /// The legal organization's institution code when this is one campus of a hospital (院区):
    /// campuses of one organization are not "outside" each other for recognition.
    pub organization: Option<String>,
    /// Where it is: a GB/T 2260 division code (county level where known, e.g. 500103), which
    /// HR scopes are written in (issue #17).
    #[serde(default)]
    pub division: Option<String>,
    /// First day the attributes hold (defaults to the day of registration).
    pub valid_from: time::Date,
}

/// Effective-dated attributes of an institution (each with its own validity period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstitutionAttribute {
    Name,
    Level,
    Ownership,
    IdentifierSystem,
    Region,
    City,
    Organization,
    /// GB/T 2260 administrative division code.
    Division,
}

impl InstitutionAttribute {
    pub const ALL: [InstitutionAttribute; 8] = [
        Self::Name,
        Self::Level,
        Self::Ownership,
        Self::IdentifierSystem,
        Self::Region,
        Self::City,
        Self::Organization,
        Self::Division,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Level => "level",
            Self::Ownership => "ownership",
            Self::IdentifierSystem => "identifier_system",
            Self::Region => "region",
            Self::City => "city",
            Self::Organization => "organization",
            Self::Division => "division",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Validates a value for this attribute and returns its stored form (levels and
    /// ownership are stored as their English terms whatever language they were given in).
    pub fn normalize(self, value: &str) -> Result<String, huren_types::ParseError> {
        Ok(match self {
            Self::Level => InstitutionLevel::parse(value)?.as_str().to_owned(),
            Self::Ownership => Ownership::parse(value)?.as_str().to_owned(),
            // An unknown code would silently leave the institution outside every scope.
            Self::Division => huren_catalog::divisions::division(value)
                .map(|d| d.code.clone())
                .ok_or_else(|| huren_types::ParseError::Division(value.trim().to_owned()))?,
            _ => value.trim().to_owned(),
        })
    }
}

/// A new value for one attribute from `valid_from` on; the previous value's period is closed
/// the day before.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttributeChange {
    pub attribute: InstitutionAttribute,
    pub value: String,
    pub valid_from: time::Date,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewMembership {
    pub institution_code: InstitutionCode,
    pub consortium_code: String,
    pub consortium_name: String,
    /// 医联体 (medical alliance) or 医共体 (county medical community).
    pub consortium_kind: String,
    pub valid_from: time::Date,
    pub valid_to: Option<time::Date>,
}

/// An institution as it stood on a given date.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InstitutionView {
    pub id: i64,
    pub code: String,
    pub as_of: String,
    pub name: Option<String>,
    pub level: Option<String>,
    pub ownership: Option<String>,
    pub identifier_system: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub organization: Option<String>,
    /// GB/T 2260 division code.
    pub division: Option<String>,
    pub consortia: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TokenScope {
    Admin,
    /// A hospital system's token: it sends as the institution and reads as `reads` says.
    Institution(InstitutionCode, huren_access::SystemReads),
}

/// A token's `scope` as asked for (CLI `--scope`, API `scope`): none, `read:institution`, or
/// `read:region`.
pub fn system_reads(scope: Option<&str>) -> Result<huren_access::SystemReads, String> {
    match scope.map(str::trim) {
        None | Some("read:institution") => Ok(huren_access::SystemReads::Institution),
        Some("read:region") => Ok(huren_access::SystemReads::Region),
        Some(other) => Err(format!(
            "unknown scope {other:?}: read:institution (default) or read:region"
        )),
    }
}

/// A series row as the metadata cache knows it: its key, its current ETag, and whose it is
/// (for the reader's reach and the read audit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesTag {
    pub key: i64,
    pub etag: String,
    /// The study's (performing) institution.
    pub institution_id: i64,
    /// `PatientID@issuer` of the study's record.
    pub patient: String,
}

/// Everything the index keeps about one received instance.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub transfer_syntax_uid: String,
    pub sender_institution_id: i64,
    pub sender_ae_id: Option<i64>,
    pub sender_token_id: Option<i64>,
    pub performing_institution_id: i64,
    /// Issuer scoping the PatientID (IssuerOfPatientID, else the performer's identifier system).
    pub patient_issuer: String,
    pub patient_id: String,
    pub attrs: huren_dicom::attrs::IndexAttributes,
    /// Study date/time as an instant (unix seconds) in the region's zone, when parseable.
    pub study_instant: Option<i64>,
    pub blob_key: String,
    pub size: u64,
    pub sha256: String,
    pub pixel_layout: String,
    /// DICOM JSON of the instance, deflate-compressed.
    pub dicom_json_deflated: Vec<u8>,
    pub received_unix: i64,
    pub stable_after_secs: i64,
    /// Public id for the person this record gets if it has none yet (a new record).
    pub new_person_public_id: String,
    /// The name's sound key for link candidates (huren_mpi::name::PersonName::sound_key).
    pub name_key: Option<String>,
    /// Sensitive identifiers found in the object (identity numbers), sealed.
    pub identifiers: Vec<SealedIdentifier>,
}

/// A sensitive identifier of a patient record as the index keeps it: no clear value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedIdentifier {
    pub system: String,
    /// HMAC-SM3 blind index, for finding equal values.
    pub blind: String,
    /// SM4-GCM `nonce ‖ ciphertext ‖ tag`.
    pub sealed: Vec<u8>,
    pub key_id: String,
    /// The number agrees with the record's birth date and sex (GB 11643).
    pub consistent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Stored {
        instance_id: i64,
    },
    /// Same owner sent identical bytes again: nothing changed; the new blob is not needed.
    Duplicate {
        instance_id: i64,
    },
    /// Same owner, new content: stored as a new version, the previous one superseded.
    NewVersion {
        instance_id: i64,
        superseded_id: i64,
    },
    /// Another institution already holds this SOP Instance UID: stored separately, flagged.
    UidConflict {
        instance_id: i64,
        other_id: i64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRow {
    pub id: i64,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub lifecycle: String,
    pub version: i64,
    pub sender_institution_id: i64,
    pub performing_institution_id: i64,
    pub blob_key: String,
    pub sha256: String,
    pub size: i64,
    pub patient_issuer: String,
    pub patient_id: String,
    pub patient_name: Option<String>,
    pub uid_conflict: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudyLifecycleChange {
    pub studies: i64,
    pub instances: i64,
    /// Blob keys to delete (for a deletion), removed after the index change commits.
    pub blob_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ArchiveCounts {
    pub institutions: i64,
    pub patients: i64,
    pub studies: i64,
    pub series: i64,
    pub instances: i64,
}

/// The registered peer for a calling AE title arriving from `addr`: same title, network
/// containing the address; the most specific network wins (a /32 beats a NAT'd /24).
pub fn match_peer<'a>(
    peers: &'a [Peer],
    calling_ae: &str,
    addr: std::net::IpAddr,
) -> Option<&'a Peer> {
    let addr = match addr {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(std::net::IpAddr::V4)
            .unwrap_or(addr),
        v4 => v4,
    };
    peers
        .iter()
        .filter(|p| p.ae_title.as_str() == calling_ae.trim() && p.network.contains(&addr))
        .max_by_key(|p| p.network.prefix_len())
}

/// One patient record as the master patient index shows it to a data steward.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordView {
    pub patient_key: i64,
    pub issuer: String,
    pub patient_id: String,
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
    /// The person's public id.
    pub person: String,
}

/// A pair of records waiting for (or decided by) a data steward.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkReview {
    pub id: i64,
    /// `national_id_inconsistent`, `possible_match` or `conflicting_numbers`.
    pub reason: String,
    pub score: Option<f64>,
    /// `open`, `linked` or `rejected`.
    pub state: String,
    pub created_at: i64,
    pub a: RecordView,
    pub b: RecordView,
}

/// One entry of a record's link history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkEvent {
    pub at: i64,
    pub patient_key: i64,
    pub from_person: Option<String>,
    pub to_person: String,
    pub rule: String,
    pub actor: String,
    pub reason: Option<String>,
}

/// A person: their records now and the history of every record that was ever theirs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonView {
    pub public_id: String,
    pub merged_into: Option<String>,
    pub records: Vec<RecordView>,
    pub history: Vec<LinkEvent>,
}

/// What the link rules need about one patient record (no identity number in the clear: only
/// its system, blind index and whether it agrees with the record).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFacts {
    pub patient_key: i64,
    pub person_id: i64,
    /// Records the person has (1: not linked to anyone yet).
    pub person_records: i64,
    pub name_raw: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
    pub identifiers: Vec<(String, String, bool)>,
}

/// How to find persons: by an identity number's blind index, by a record's own
/// `(issuer, PatientID)`, or by the start of a name (any group, or its sound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonSearch {
    Identifier(crate::query::PersonKey),
    Record {
        issuer: String,
        patient_id: String,
    },
    NamePrefix {
        prefix: String,
        sound_prefix: String,
    },
}

/// A person found by a search, with their records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonHit {
    pub person: String,
    pub records: Vec<RecordView>,
}

/// One imaging study of a person's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineStudy {
    pub study_instance_uid: String,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    /// Unix seconds in the region's zone (sorting key), when the date is known.
    pub study_instant: Option<i64>,
    pub modalities: String,
    pub description: Option<String>,
    pub accession_number: Option<String>,
    pub instances: i64,
    pub performing_institution: String,
    pub performing_institution_name: Option<String>,
    pub patient_id: String,
    pub issuer: String,
    /// Its series' BodyPartExamined values, comma-separated.
    pub body_parts: String,
    /// The catalog item the study rules map it to.
    pub catalog_item: Option<String>,
}

/// A registered HL7 v2 sender (lab or report system).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hl7Sender {
    pub id: i64,
    pub institution_id: i64,
    pub institution_code: String,
    pub network: IpNet,
    pub sending_facility: Option<String>,
    pub default_charset: Option<String>,
}

/// The most specific registered network containing `addr` whose facility (when set) is
/// `facility`.
pub fn match_hl7_sender<'a>(
    senders: &'a [Hl7Sender],
    addr: std::net::IpAddr,
    facility: Option<&str>,
) -> Option<&'a Hl7Sender> {
    let addr = match addr {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(std::net::IpAddr::V4)
            .unwrap_or(addr),
        v4 => v4,
    };
    senders
        .iter()
        .filter(|s| {
            s.network.contains(&addr)
                && s.sending_facility
                    .as_deref()
                    .is_none_or(|f| Some(f) == facility)
        })
        .max_by_key(|s| (s.sending_facility.is_some(), s.network.prefix_len()))
}

/// Where a batch of results came from: an HL7 v2 message (idempotent per sender and MSH-10)
/// or a FHIR create/transaction (idempotent by `If-None-Exist` on a report's identifier).
#[derive(Debug, Clone)]
pub enum ResultSource {
    Hl7 {
        sender_id: i64,
        control_id: String,
        message_type: String,
        version: String,
        sha256: String,
    },
    Fhir {
        /// Store nothing when a report (or result) with this identifier exists.
        if_none_exist: Option<IfNoneExist>,
    },
    /// The HIS registering (or updating) its own record at a visit: the patient record, its
    /// identity numbers and person, no orders (issue #16, the first visit).
    Registration,
}

/// FHIR conditional create (R4 §3.1.0.8.1) by business identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfNoneExist {
    /// A DiagnosticReport's identifier, else an Observation's.
    pub on_report: bool,
    pub system: Option<String>,
    pub value: String,
    /// Matched only among rows these institutions performed (the sender's own and those it
    /// sends for): another hospital's report with the same identifier is not "this one".
    pub performers: Vec<i64>,
}

/// Orders and results from one message or FHIR transaction, ready for one transaction.
#[derive(Debug, Clone)]
pub struct NewOru {
    pub source: ResultSource,
    pub performing_institution_id: i64,
    pub patient_issuer: String,
    pub patient_id: String,
    /// PN-style `family^given`, and the same in the alphabetic or ideographic column (by
    /// whether it is written in Han characters).
    pub patient_name: Option<String>,
    pub name_alphabetic: Option<String>,
    pub name_ideographic: Option<String>,
    pub name_key: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
    pub new_person_public_id: String,
    pub identifiers: Vec<SealedIdentifier>,
    pub orders: Vec<NewOrder>,
    /// Results outside any order (a FHIR Observation created on its own).
    pub loose_results: Vec<NewLabResult>,
}

impl NewOru {
    pub fn result_count(&self) -> usize {
        self.loose_results.len() + self.orders.iter().map(|o| o.results.len()).sum::<usize>()
    }
}

/// The patient record a batch of results belongs to, as the sender identifies it.
#[derive(Debug, Clone)]
pub struct ResultPatient {
    pub issuer: String,
    pub patient_id: String,
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
    pub identifiers: Vec<SealedIdentifier>,
}

/// A report in a person's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineReport {
    pub id: i64,
    pub study_instance_uid: Option<String>,
    pub accession_number: Option<String>,
    pub procedure_text: Option<String>,
    pub text: String,
    pub status: Option<String>,
    pub reported_at: Option<String>,
    pub reported_instant: Option<i64>,
    pub performing_institution: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OruOutcome {
    /// Stored: the ids of the new orders (`report` rows) and results, in the order given
    /// (orders first to last; results order by order, then the loose ones).
    Stored {
        report_ids: Vec<i64>,
        result_ids: Vec<i64>,
    },
    /// The same MSH-10 from the same sender was stored before: nothing changes.
    Duplicate,
    /// `If-None-Exist` matched this report (or result): nothing stored.
    Exists { id: i64 },
}

/// A token as operators see it: whose, what it may do, its life; never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenView {
    pub id: i64,
    /// `admin` or `institution`.
    pub scope: String,
    pub institution: Option<String>,
    /// `institution` or `region` (what a system token reads).
    pub reads: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// One lab result of a person's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineLab {
    pub id: i64,
    pub code: String,
    pub code_text: Option<String>,
    pub code_system: Option<String>,
    pub value: Option<String>,
    pub unit: Option<String>,
    pub reference_range: Option<String>,
    pub abnormal_flag: Option<String>,
    pub status: Option<String>,
    pub observed_at: Option<String>,
    pub observed_instant: Option<i64>,
    pub order_text: Option<String>,
    pub performing_institution: String,
    pub performing_lab: Option<String>,
    pub patient_id: String,
    pub issuer: String,
    /// When the result was reported (as sent, and as an instant): the recognition reference.
    pub reported_at: Option<String>,
    pub reported_instant: Option<i64>,
    /// The catalog item the performer's code (or its LOINC) maps to.
    pub catalog_item: Option<String>,
}

/// A person's imaging studies, lab results and imaging reports, each newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub studies: Vec<TimelineStudy>,
    pub lab_results: Vec<TimelineLab>,
    pub reports: Vec<TimelineReport>,
}

/// A person's account as stored (the password only as an argon2id PHC string).
#[derive(Debug, Clone)]
pub struct UserAccount {
    pub user: huren_access::User,
    pub display_name: String,
    pub password_hash: String,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
    pub disabled: bool,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: huren_access::Role,
    pub institution_code: String,
    pub department: Option<String>,
    pub password_hash: String,
}

/// A session as stored: by the hash of its secret.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub secret_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub source_address: Option<String>,
}

/// An encounter as the HIS registers it.
#[derive(Debug, Clone)]
pub struct EncounterUpsert {
    pub institution_id: i64,
    pub visit_number: String,
    pub patient: PatientRef,
    pub doctor_user_id: Option<i64>,
    pub department: Option<String>,
    pub open: bool,
}

/// A launch ticket to store (by the hash of its secret).
#[derive(Debug, Clone)]
pub struct NewLaunchTicket {
    pub secret_hash: String,
    pub issued_by: String,
    pub user_id: i64,
    pub encounter_id: Option<i64>,
    pub patient: PatientRef,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// What a redeemed ticket names.
#[derive(Debug, Clone)]
pub struct RedeemedTicket {
    pub user_id: i64,
    pub encounter_id: Option<i64>,
    pub patient: PatientRef,
}

/// How a call names a patient (issue #16): the caller institution's own record, or a person by
/// identity number — kept as its system and blind index, never in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientRef {
    Record { issuer: String, patient_id: String },
    Identity(crate::query::PersonKey),
}

impl PatientRef {
    /// The search that finds the person(s) it names.
    pub fn search(&self) -> PersonSearch {
        match self {
            PatientRef::Record { issuer, patient_id } => PersonSearch::Record {
                issuer: issuer.clone(),
                patient_id: patient_id.clone(),
            },
            PatientRef::Identity(key) => PersonSearch::Identifier(key.clone()),
        }
    }

    /// For audit events: `PatientID@issuer`, or the identity number's system only.
    pub fn label(&self) -> String {
        match self {
            PatientRef::Record { issuer, patient_id } => format!("{patient_id}@{issuer}"),
            PatientRef::Identity(key) => format!("identity@{}", key.system),
        }
    }

    /// The columns the index keeps: (patient_issuer, patient_id, id_blind).
    pub fn columns(&self) -> (&str, Option<&str>, Option<&str>) {
        match self {
            PatientRef::Record { issuer, patient_id } => (issuer, Some(patient_id), None),
            PatientRef::Identity(key) => (&key.system, None, Some(&key.blind)),
        }
    }

    /// Back from the index's columns.
    pub fn from_columns(issuer: String, patient_id: Option<String>, blind: Option<String>) -> Self {
        match (patient_id, blind) {
            (Some(patient_id), _) => PatientRef::Record { issuer, patient_id },
            (None, blind) => PatientRef::Identity(crate::query::PersonKey {
                system: issuer,
                blind: blind.unwrap_or_default(),
            }),
        }
    }
}

/// A break-glass access as the institution admin reviews it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakGlass {
    pub id: i64,
    pub doctor: String,
    pub person: String,
    pub reason: String,
    pub started_at: i64,
    pub expires_at: i64,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    pub verdict: Option<String>,
    pub review_note: Option<String>,
}

/// One stored audit event, for reading the trail back (FHIR AuditEvent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub action: String,
    pub outcome: String,
    pub actor: String,
    pub institution: Option<String>,
    pub patient: Option<String>,
    pub study_uid: Option<String>,
    pub object: Option<String>,
    pub source_address: Option<String>,
    pub detail: String,
    pub seq: Option<i64>,
}

/// Which audit events an auditor asks for; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// `[from, until)`, unix seconds.
    pub from: Option<i64>,
    pub until: Option<i64>,
    /// Ids below this one (the next page).
    pub before: Option<i64>,
    /// The event's action (`patient_data_accessed`, …).
    pub action: Option<String>,
    /// The institution code the event is attributed to.
    pub institution: Option<String>,
    /// The patient: a person's public id, or one record as `PatientID@issuer`.
    pub patient: Option<String>,
    /// Part of the actor's label (`user:li#` names one person's account).
    pub actor: Option<String>,
}

/// A patient's phone number as stored: sealed, with the key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedContact {
    pub sealed: Vec<u8>,
    pub key_id: String,
}

/// A change of a person's SMS number (issue #16): effective at once (`first`: there was none;
/// `in_person`: the patient was seen at the registering hospital by `verified_by`), or pending
/// the code sent to the old number (`old_number`, with `code_hash`).
#[derive(Debug, Clone)]
pub struct NewContactChange {
    pub person: String,
    pub institution_id: i64,
    pub requested_by: String,
    pub contact: SealedContact,
    pub how: &'static str,
    pub verified_by: Option<i64>,
    pub code_hash: Option<String>,
    pub code_expires_at: Option<i64>,
    pub now: i64,
}

/// A pending change confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactChangeView {
    pub id: i64,
    pub person: String,
}

#[derive(Debug, Clone)]
pub struct NewAuthorization {
    pub person: String,
    pub institution_id: i64,
    pub requested_by: i64,
    /// `all`, `imaging` (studies only) or `lab` (results and reports only).
    pub scope: String,
    pub code_hash: String,
    pub code_expires_at: i64,
    pub days: i64,
    pub now: i64,
}

/// The statistics units of one group: how many, how they were decided, what the recognized
/// ones saved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsCell {
    pub key: String,
    /// Units of catalog items (docs/recognition.md, "Units"): decided, or only shown.
    pub units: i64,
    pub recognized: i64,
    /// Re-examinations whose reason counts as a non-recognition.
    pub reexamined: i64,
    /// Re-examinations whose reason does not count (98, 99, a region's `counts = false`).
    pub not_counted: i64,
    /// Shown in a reminder, no decision; the study opened since.
    pub opened: i64,
    /// Shown in a reminder, no decision, nothing opened.
    pub ignored: i64,
    /// Units whose result met every condition when decided (or shown).
    pub eligible: i64,
    pub eligible_recognized: i64,
    pub eligible_not_counted: i64,
    /// Units a reminder at the visit showed (before the decision, for decided ones).
    pub shown: i64,
    pub shown_decided: i64,
    /// Decisions on results outside the catalog (in no rate).
    pub uncatalogued: i64,
    pub uncatalogued_recognized: i64,
    pub savings_fen: i64,
    /// Recognized units with no price in force.
    pub unpriced: i64,
    /// Re-examinations by reason code, of eligible results and of the others.
    pub reasons_eligible: std::collections::BTreeMap<String, i64>,
    pub reasons_other: std::collections::BTreeMap<String, i64>,
}

impl StatsCell {
    /// Adds counts in the roll-up's column order (units … unpriced).
    pub fn add_counts(&mut self, n: &[i64; 15]) {
        let slots = [
            &mut self.units,
            &mut self.recognized,
            &mut self.reexamined,
            &mut self.not_counted,
            &mut self.opened,
            &mut self.ignored,
            &mut self.eligible,
            &mut self.eligible_recognized,
            &mut self.eligible_not_counted,
            &mut self.shown,
            &mut self.shown_decided,
            &mut self.uncatalogued,
            &mut self.uncatalogued_recognized,
            &mut self.savings_fen,
            &mut self.unpriced,
        ];
        for (slot, v) in slots.into_iter().zip(n) {
            *slot += v;
        }
    }
}

/// A recorded decision as stored, for re-checking it (issue #17): the row as it was recorded,
/// its institution by code, and what superseded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredDecision {
    pub id: i64,
    pub institution: String,
    pub superseded_by: Option<i64>,
    #[serde(flatten)]
    pub recorded: NewRecognitionDecision,
}

/// A reminder shown (issue #17): who asked, at which visit, and every outside result it listed
/// with the engine's verdict then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReminder {
    pub shown_at: i64,
    /// YYYY-MM-DD in the region's zone.
    pub shown_on: String,
    pub institution_id: i64,
    pub department: Option<String>,
    pub user_id: Option<i64>,
    pub actor: String,
    /// The person's public id.
    pub person: String,
    /// The visit; `None`: the reminder is a unit of its own.
    pub visit_number: Option<String>,
    /// `encounter` or `order`.
    pub moment: String,
    pub ordered_item: Option<String>,
    pub results: Vec<ReminderListing>,
}

/// One result a reminder listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderListing {
    pub result_kind: String,
    pub result_ref: String,
    pub item: Option<String>,
    pub engine_verdict: String,
}

/// A receiving doctor's decision on a prior result, as stored (append-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewRecognitionDecision {
    pub decided_at: i64,
    /// YYYY-MM-DD in the region's zone.
    pub decided_on: String,
    pub institution_id: i64,
    pub department: Option<String>,
    pub user_id: Option<i64>,
    pub actor: String,
    /// The person's public id.
    pub person: String,
    pub visit_number: Option<String>,
    pub result_kind: String,
    pub result_ref: String,
    pub performing_institution: String,
    pub item: Option<String>,
    pub ordered_item: Option<String>,
    pub engine_verdict: String,
    /// The engine's whole decision, JSON.
    pub engine_decision: String,
    pub catalog_version: Option<String>,
    pub qualification_set: Option<i64>,
    pub scope_set: Option<i64>,
    pub policy_set: Option<i64>,
    /// `recognize` or `re_examine`.
    pub decision: String,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub record_sentence: String,
    /// A recognition, or a re-examination whose reason counts under the reason list in force.
    pub counted: bool,
    /// The receiving institution's effective price of the unit's item on the decision day.
    pub price_fen: Option<i64>,
}

/// A patient authorization as granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizationView {
    pub id: i64,
    pub person: String,
    pub scope: String,
    pub granted_at: i64,
    pub expires_at: i64,
}

/// An image to score, as claimed by a quality-control worker.
#[derive(Debug, Clone)]
pub struct QcJob {
    pub instance_id: i64,
    pub study_id: i64,
    pub series_id: i64,
    pub series_uid: String,
    pub blob_key: String,
    pub transfer_syntax: String,
    /// `huren_dicom::pixel::PixelLayout` as JSON.
    pub pixel_layout: String,
    /// This claim's attempt (1 the first time).
    pub attempts: i64,
    /// The instance's header (deflated DICOM JSON), when kept.
    pub document: Option<Vec<u8>>,
}

/// What scoring one image gave.
#[derive(Debug, Clone)]
pub struct QcImageOutcome {
    pub instance_id: i64,
    pub study_id: i64,
    pub series_id: i64,
    /// Why it was not scored (a localizer, no pixels…), as a reason code.
    pub excluded: Option<String>,
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub calibrated: bool,
    /// The scorers' results, JSON.
    pub scores: String,
}

/// A study's aggregate.
#[derive(Debug, Clone)]
pub struct QcStudyOutcome {
    pub study_id: i64,
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub calibrated: bool,
    /// Images were scored and none could be judged (docs/quality.md).
    pub not_assessable: bool,
    pub complete: Option<bool>,
    pub images: i64,
    pub excluded: i64,
    /// The series' results and reasons, JSON.
    pub detail: String,
}

/// A study's grade as recognition reads it: (StudyInstanceUID, performing institution, grade,
/// calibrated, complete, not assessable).
pub type QcGradeRow = (String, String, Option<String>, bool, Option<bool>, bool);

/// Where a study stands in quality control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QcStatus {
    /// Graded 甲/乙/丙/废片.
    Graded,
    /// Scored, but no image could be judged.
    NotAssessable,
    /// Not graded yet: images waiting to be scored, or the study not yet stable.
    Pending,
    /// Nothing in it to score (localizers, reports, modalities no scorer covers).
    NothingToScore,
}

/// The QC centre's list: which studies, in which order, which page.
#[derive(Debug, Clone)]
pub struct QcStudyFilter {
    /// Study dates `[from, until]` as YYYYMMDD; studies without a StudyDate by the day their
    /// first image arrived, `[arrived_from, arrived_until)` unix seconds (the same days in the
    /// region's zone).
    pub from: String,
    pub until: String,
    pub arrived_from: i64,
    pub arrived_until: i64,
    pub institution: Option<i64>,
    pub modality: Option<String>,
    /// A grade code (A, B, C, reject).
    pub grade: Option<String>,
    pub status: Option<QcStatus>,
    pub order: QcOrder,
    pub limit: i64,
    pub offset: i64,
    /// The same period as whole months (YYYYMM), when it is one: the number of graded studies
    /// is then read from the statistics' roll-up.
    pub months: Option<(String, String)>,
}

/// The list's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QcOrder {
    /// Lowest score first (ungraded last), the QC centre's worklist.
    ScoreAscending,
    ScoreDescending,
    /// Newest first, by study date (or arrival).
    Newest,
}

/// A study in the QC centre's list (no patient data).
#[derive(Debug, Clone)]
pub struct QcListRow {
    pub study_uid: String,
    pub institution: String,
    pub modalities: String,
    /// YYYYMMDD, when the study has one.
    pub study_date: Option<String>,
    /// When its first image arrived (unix seconds).
    pub arrived_at: i64,
    pub aggregated_at: Option<i64>,
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub calibrated: bool,
    pub not_assessable: bool,
    pub complete: Option<bool>,
    pub images: i64,
    pub excluded: i64,
    /// Images stored, and images whose scoring is done.
    pub stored: i64,
    pub scored: i64,
    pub detail: Option<String>,
    /// The QC centre's reviews of it (comments to the hospital).
    pub reviews: i64,
}

/// One image's QC result as stored.
#[derive(Debug, Clone)]
pub struct QcImageRow {
    pub series_uid: String,
    pub sop_instance_uid: String,
    pub instance_number: Option<i64>,
    /// Why it was left out, or its result (huren-quality ImageResult, JSON); neither while it
    /// waits to be scored.
    pub excluded: Option<String>,
    pub result: Option<String>,
}

/// A QC centre's review of a study: its comment to the hospital.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QcReview {
    pub reviewed_at: i64,
    pub actor: String,
    pub comment: String,
}

/// Which graded studies the QC statistics count, by StudyDate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QcSpan {
    /// Whole months `[from, until]`, YYYYMM: read from the roll-up.
    Months { from: String, until: String },
    /// Days `[from, until]`, YYYYMMDD: counted from the studies.
    Days { from: String, until: String },
}

/// Graded studies of one month (of StudyDate), institution and modalities: the grades, the
/// scores' count and sum, and their histogram in 5-point bins (bin 20 is a score of 100).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QcCell {
    /// YYYYMM.
    pub month: String,
    pub institution: String,
    pub modalities: String,
    pub studies: u64,
    pub a: u64,
    pub b: u64,
    pub c: u64,
    pub reject: u64,
    pub uncalibrated: u64,
    pub incomplete: u64,
    pub scored: u64,
    pub score_sum: f64,
    pub histogram: [u64; 21],
}

/// What quality feedback is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityBy {
    Institution,
    Modality,
    Month,
    /// Month, institution and modalities together (the roll-up's own cells).
    Cell,
}

impl QualityBy {
    pub fn parse(s: &str) -> Option<QualityBy> {
        Some(match s {
            "institution" => QualityBy::Institution,
            "modality" => QualityBy::Modality,
            "month" => QualityBy::Month,
            _ => return None,
        })
    }
}

/// What statistics are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsBy {
    Item,
    Institution,
    Department,
    Month,
}

impl StatsBy {
    pub fn parse(s: &str) -> Option<StatsBy> {
        Some(match s {
            "item" => StatsBy::Item,
            "institution" => StatsBy::Institution,
            "department" => StatsBy::Department,
            "month" => StatsBy::Month,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultQuery {
    /// Persons (public ids); `Some(empty)` matches nothing.
    pub persons: Option<Vec<String>>,
    pub codes: Vec<CodeFilter>,
    /// `[from, until)` in unix seconds.
    pub from: Option<i64>,
    pub until: Option<i64>,
    /// Status codes as stored (HL7 OBX-11 / OBR-25: F, P, C, …).
    pub statuses: Option<Vec<String>>,
    pub category: Option<ReportCategory>,
    /// A business identifier: (system, value); no system matches any.
    pub identifier: Option<(Option<String>, String)>,
    pub after: Option<Cursor>,
    pub limit: u32,
    /// A hospital system's reach: only rows of these persons (public ids) or performed by
    /// these institutions. Set by the use case from the grant, never by adapters.
    pub reach_or: Option<(Vec<String>, Vec<i64>)>,
}

/// One stored result with what FHIR needs to show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservationRow {
    pub id: i64,
    pub person: String,
    pub issuer: String,
    pub patient_id: String,
    pub institution: String,
    pub performing_lab: Option<String>,
    pub report_id: Option<i64>,
    pub identifier: Option<(String, String)>,
    pub value_type: Option<String>,
    pub code: String,
    pub code_text: Option<String>,
    pub code_system: Option<String>,
    pub value: Option<String>,
    pub value_num: Option<f64>,
    pub comparator: Option<String>,
    pub unit: Option<String>,
    pub unit_ucum: Option<String>,
    pub reference_range: Option<String>,
    pub abnormal_flag: Option<String>,
    pub status: Option<String>,
    pub specimen: Option<String>,
    pub observed_at: Option<String>,
    pub observed_instant: Option<i64>,
    pub reported_at: Option<String>,
    pub reported_instant: Option<i64>,
    pub superseded_by: Option<i64>,
    /// The catalog item its code maps to (filled by the archive, not the store).
    pub catalog_item: Option<String>,
}

/// One order (lab) or imaging report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderRow {
    pub id: i64,
    pub person: String,
    pub issuer: String,
    pub patient_id: String,
    pub institution: String,
    pub category: String,
    pub study_uid: Option<String>,
    pub accession_number: Option<String>,
    pub placer_order: Option<String>,
    pub filler_order: Option<String>,
    pub identifier: Option<(String, String)>,
    pub procedure_code: Option<String>,
    pub procedure_code_system: Option<String>,
    pub procedure_text: Option<String>,
    pub text: Option<String>,
    pub status: Option<String>,
    pub specimen: Option<String>,
    pub effective_at: Option<String>,
    pub effective_instant: Option<i64>,
    pub reported_at: Option<String>,
    pub reported_instant: Option<i64>,
    pub superseded_by: Option<i64>,
    /// Its results' ids, in the order they were sent.
    pub results: Vec<i64>,
}

/// Where the next page starts: just after this (instant, id) in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub instant: Option<i64>,
    pub id: i64,
}

impl Cursor {
    /// `instant.id`, `-.id` when the last row had no time: opaque to clients.
    pub fn encode(&self) -> String {
        match self.instant {
            Some(t) => format!("{t}.{}", self.id),
            None => format!("-.{}", self.id),
        }
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (t, id) = s.split_once('.')?;
        Some(Cursor {
            instant: if t == "-" {
                None
            } else {
                Some(t.parse().ok()?)
            },
            id: id.parse().ok()?,
        })
    }
}

/// A code to match: `code` within any of `systems` (as stored: HL7 coding-system names such as
/// `LN`, or URIs), or in any system when `systems` is empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodeFilter {
    pub systems: Vec<String>,
    pub code: String,
    /// For an institution's local code system: only that institution's results.
    pub institution: Option<String>,
}

/// One prior result and what the rules say of it.
#[derive(Debug, Clone, Serialize)]
pub struct PriorResult {
    /// `imaging_study` or `lab_result`.
    pub kind: &'static str,
    /// The StudyInstanceUID, or the lab result's id.
    pub id: String,
    pub item: Option<String>,
    pub performing_institution: String,
    pub decision: huren_recognition::Decision,
    /// An imaging study's image quality as the rules saw it (absent for lab results).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qc: Option<huren_recognition::Qc>,
    /// Where to open it (a reminder's answer: the DICOMweb study or the FHIR Observation, on
    /// the origin the caller used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// A person's prior results judged for one receiving institution, with the configuration
/// versions used (so the decisions can be explained again later).
#[derive(Debug, Clone, Serialize)]
pub struct RecognitionView {
    pub person: String,
    pub receiver: String,
    /// The day judged on (region zone).
    pub today: String,
    pub catalog_version: Option<String>,
    pub qualification_set: Option<i64>,
    pub scope_set: Option<i64>,
    pub policy_set: Option<i64>,
    pub results: Vec<PriorResult>,
}
