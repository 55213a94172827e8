//! Who is acting, what they may do, and the record of what they did.
//!
//! This is the skeleton the access-control work builds on. A request or association is first
//! turned into a [`Principal`]; use cases then demand a *capability* ([`IngestGrant`],
//! [`AdminGrant`]) that only this crate can mint from a principal, so a handler that skipped
//! the check does not compile. Every capability carries the principal, so audit events always
//! name who acted. Pure: no I/O; token hashing only.
//!
//! ```
//! use huren_access::{Principal, Sender, grant_ingest};
//! let p = Principal::Admin { token_id: 1 };
//! assert!(grant_ingest(&p).is_err()); // admins configure; they do not send images
//! ```

use huren_types::{AeTitle, InstitutionCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Internal key of an institution row (never a DICOM or HL7 identifier).
pub type InstitutionId = i64;

/// A sending system as the archive knows it: the institution it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub institution_id: InstitutionId,
    pub institution_code: InstitutionCode,
    pub kind: SenderKind,
    /// Whose data the system reads (issue #6): by default its own institution's.
    #[serde(default)]
    pub reads: SystemReads,
}

/// What a hospital system reads without a person named (`X-Huren-On-Behalf-Of`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemReads {
    /// The results and images its institution performed (or sent for another), and the
    /// patients with an open encounter at its institution (a PACS fetching priors for the
    /// patient in front of the doctor).
    #[default]
    Institution,
    /// Every institution's data: a regional service granted `read:region` by an operator
    /// (audited as `operations`).
    Region,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SenderKind {
    /// A DIMSE peer, identified by AE title + source network (PS3.8 has no authentication).
    Dimse { ae_id: i64, ae_title: AeTitle },
    /// An HTTP client holding an institution-bound token.
    Token { token_id: i64 },
    /// A person uploading from the browser for their institution (a clinic with a modality
    /// and no PACS; [`grant_upload`]). Who it was is the audit event's actor.
    Person { user_id: i64 },
}

/// What a person does in the region (issue #6). A person has exactly one role per account; a
/// doctor who is also a data steward has two accounts, so every audit event names the hat
/// that was worn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Doctor,
    Technician,
    QcOfficer,
    DataSteward,
    InstitutionAdmin,
    RegionalOperator,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Doctor,
        Role::Technician,
        Role::QcOfficer,
        Role::DataSteward,
        Role::InstitutionAdmin,
        Role::RegionalOperator,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Doctor => "doctor",
            Role::Technician => "technician",
            Role::QcOfficer => "qc_officer",
            Role::DataSteward => "data_steward",
            Role::InstitutionAdmin => "institution_admin",
            Role::RegionalOperator => "regional_operator",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }
}

/// A signed-in person: their account, role, institution and department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub institution_id: InstitutionId,
    pub institution_code: InstitutionCode,
    pub department: Option<String>,
    /// The system acting for this person (the HIS calling on a doctor's behalf), by its label;
    /// `None` when the person is signed in themselves.
    #[serde(default)]
    pub via: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Principal {
    /// A regional operator token (configuration, not patient data).
    Admin { token_id: i64 },
    /// The bootstrap admin from `HUREN_BOOTSTRAP_ADMIN_TOKEN`.
    BootstrapAdmin,
    /// A hospital system sending or querying as its institution.
    System(Sender),
    /// The local command line (`huren institution add …`): the operator at the console.
    Console,
    /// A person signed in with a password (a session cookie).
    User(User),
    /// A patient reading their own data (the cloud film, 云胶片): signed in with a code sent
    /// to the mobile number their hospital registered, or someone holding a link the patient
    /// shared (`share`), which the web layer accepts for the one shared study only.
    Patient(PatientSelf),
}

/// The patient a [`Principal::Patient`] is: their person (internal key and public id), and the
/// share link used, if it is not the patient themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientSelf {
    pub person_key: i64,
    pub person: String,
    pub share: Option<i64>,
}

impl Principal {
    /// Stable, non-secret label for audit records and logs.
    pub fn label(&self) -> String {
        match self {
            Principal::Admin { token_id } => format!("admin-token:{token_id}"),
            Principal::BootstrapAdmin => "bootstrap-admin".into(),
            Principal::Console => "console".into(),
            Principal::System(s) => match &s.kind {
                SenderKind::Dimse { ae_title, ae_id } => {
                    format!("ae:{ae_title}#{ae_id}@{}", s.institution_code)
                }
                SenderKind::Token { token_id } => {
                    format!("token:{token_id}@{}", s.institution_code)
                }
                SenderKind::Person { user_id } => {
                    format!("upload:user#{user_id}@{}", s.institution_code)
                }
            },
            Principal::User(u) => {
                let who = format!(
                    "user:{}#{}@{}({})",
                    u.username,
                    u.user_id,
                    u.institution_code,
                    u.role.as_str()
                );
                match &u.via {
                    Some(system) => format!("{who} via {system}"),
                    None => who,
                }
            }
            Principal::Patient(p) => match p.share {
                Some(id) => format!("share:{id}"),
                None => format!("patient:{}", p.person),
            },
        }
    }

    /// Operators manage configuration: admin tokens, the console, regional operators.
    fn is_admin(&self) -> bool {
        matches!(
            self,
            Principal::Admin { .. } | Principal::BootstrapAdmin | Principal::Console
        ) || matches!(self, Principal::User(u) if u.role == Role::RegionalOperator)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("this action needs an institution's sending system")]
    NotASender,
    #[error("this action needs an administrator")]
    NotAdmin,
    #[error("the {0} role does not read patient data")]
    NoPatientData(&'static str),
    #[error("{0}")]
    Role(&'static str),
}

/// Permission to store objects as `sender`. Only [`grant_ingest`] makes one.
#[derive(Debug, Clone)]
pub struct IngestGrant {
    principal: Principal,
    sender: Sender,
}

impl IngestGrant {
    pub fn sender(&self) -> &Sender {
        &self.sender
    }
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

pub fn grant_ingest(p: &Principal) -> Result<IngestGrant, Denied> {
    match p {
        Principal::System(sender) => Ok(IngestGrant {
            principal: p.clone(),
            sender: sender.clone(),
        }),
        _ => Err(Denied::NotASender),
    }
}

/// Permission for a person to store objects for their own institution from the browser (the
/// clinic portal's upload, STOW-RS underneath): technicians and doctors, who produce images
/// at institutions without a PACS. Nothing else an [`IngestGrant`] allows is reachable this
/// way: the other handlers taking one ask [`grant_ingest`], which only systems pass.
pub fn grant_upload(p: &Principal) -> Result<IngestGrant, Denied> {
    match p {
        Principal::User(u)
            if u.via.is_none() && matches!(u.role, Role::Technician | Role::Doctor) =>
        {
            Ok(IngestGrant {
                principal: p.clone(),
                sender: Sender {
                    institution_id: u.institution_id,
                    institution_code: u.institution_code.clone(),
                    kind: SenderKind::Person { user_id: u.user_id },
                    reads: SystemReads::Institution,
                },
            })
        }
        Principal::User(_) => Err(Denied::Role(
            "only technicians and doctors upload images, signed in themselves",
        )),
        _ => Err(Denied::NotASender),
    }
}

/// Permission to change configuration and object lifecycle. Only [`grant_admin`] makes one.
#[derive(Debug, Clone)]
pub struct AdminGrant {
    principal: Principal,
}

impl AdminGrant {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

pub fn grant_admin(p: &Principal) -> Result<AdminGrant, Denied> {
    if p.is_admin() {
        Ok(AdminGrant {
            principal: p.clone(),
        })
    } else {
        Err(Denied::NotAdmin)
    }
}

/// Permission to read patient data: images and their index (QIDO/WADO, C-FIND/C-MOVE/C-GET),
/// records, timelines and results. Only [`grant_read`] makes one, and what it reaches is
/// narrowed by [`ReadGrant::scope`]: a person by relationship, a system to its institution.
#[derive(Debug, Clone)]
pub struct ReadGrant {
    principal: Principal,
    /// What read audit events are counted per (with the principal): a DIMSE association; by
    /// default the principal's reads within the audit window.
    session: Option<String>,
}

impl ReadGrant {
    /// The same grant, its reads audited per `session` (e.g. one DIMSE association).
    pub fn in_session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }

    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whose data this grant reaches. A person reads only the patients they have a
    /// relationship with (the archive resolves which); a system reads its institution's data
    /// unless an operator granted it the region.
    pub fn scope(&self) -> ReadScope<'_> {
        match &self.principal {
            Principal::User(u) => ReadScope::Related(u),
            Principal::System(s) if s.reads == SystemReads::Region => ReadScope::All,
            Principal::System(s) => ReadScope::Institution(s.institution_id),
            Principal::Patient(p) => ReadScope::Own(p),
            // `grant_read` makes no grant for operators; nothing to reach.
            _ => ReadScope::Nothing,
        }
    }
}

/// See [`ReadGrant::scope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadScope<'a> {
    All,
    Institution(InstitutionId),
    Related(&'a User),
    /// The patient themselves (or their share link): their own data, nobody else's.
    Own(&'a PatientSelf),
    Nothing,
}

pub fn grant_read(p: &Principal) -> Result<ReadGrant, Denied> {
    // Operators manage configuration, not patient data; auditors read the audit trail. (The
    // relationship rules — encounter, patient authorization, break-glass — narrow the rest.)
    match p {
        Principal::User(u) if matches!(u.role, Role::RegionalOperator | Role::Auditor) => {
            return Err(Denied::NoPatientData(u.role.as_str()));
        }
        Principal::Admin { .. } | Principal::BootstrapAdmin | Principal::Console => {
            return Err(Denied::NoPatientData("operator"));
        }
        _ => {}
    }
    Ok(ReadGrant {
        principal: p.clone(),
        session: None,
    })
}

/// Permission for a patient signed in themselves (not a share link) to manage their cloud film:
/// share a study, end a share or an authorization, read who read their data.
#[derive(Debug, Clone)]
pub struct FilmGrant {
    patient: PatientSelf,
}

impl FilmGrant {
    pub fn patient(&self) -> &PatientSelf {
        &self.patient
    }
}

pub fn grant_film(p: &Principal) -> Result<FilmGrant, Denied> {
    match p {
        Principal::Patient(s) if s.share.is_none() => Ok(FilmGrant { patient: s.clone() }),
        Principal::Patient(_) => Err(Denied::Role(
            "a shared link opens the shared study only; the patient manages the film",
        )),
        _ => Err(Denied::Role("only the patient manages their cloud film")),
    }
}

/// Permission to read the region's catalog, prices and code mappings: configuration the region
/// publishes, no patient data, so every authenticated principal has it.
#[derive(Debug, Clone)]
pub struct CatalogGrant {
    principal: Principal,
}

impl CatalogGrant {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

pub fn grant_catalog(p: &Principal) -> CatalogGrant {
    CatalogGrant {
        principal: p.clone(),
    }
}

/// Permission to open a patient without a relationship, in an emergency (break-glass): a
/// signed-in doctor. Only [`grant_break_glass`] makes one.
#[derive(Debug, Clone)]
pub struct BreakGlassGrant {
    user: User,
}

impl BreakGlassGrant {
    pub fn user(&self) -> &User {
        &self.user
    }
}

pub fn grant_break_glass(p: &Principal) -> Result<BreakGlassGrant, Denied> {
    match p {
        Principal::User(u) if u.role == Role::Doctor => Ok(BreakGlassGrant { user: u.clone() }),
        _ => Err(Denied::Role("break-glass is for signed-in doctors")),
    }
}

/// Permission to ask a patient for access and confirm their code: a signed-in doctor, for
/// their institution. Only [`grant_clinician`] makes one.
#[derive(Debug, Clone)]
pub struct ClinicianGrant {
    user: User,
}

impl ClinicianGrant {
    pub fn user(&self) -> &User {
        &self.user
    }
}

pub fn grant_clinician(p: &Principal) -> Result<ClinicianGrant, Denied> {
    match p {
        Principal::User(u) if u.role == Role::Doctor => Ok(ClinicianGrant { user: u.clone() }),
        _ => Err(Denied::Role(
            "patient authorizations are asked for by doctors",
        )),
    }
}

/// Permission to review an institution's break-glass accesses: its institution admin.
#[derive(Debug, Clone)]
pub struct ReviewGrant {
    user: User,
}

impl ReviewGrant {
    pub fn user(&self) -> &User {
        &self.user
    }
}

pub fn grant_review(p: &Principal) -> Result<ReviewGrant, Denied> {
    match p {
        Principal::User(u) if u.role == Role::InstitutionAdmin => {
            Ok(ReviewGrant { user: u.clone() })
        }
        _ => Err(Denied::Role("reviews are for the institution admin")),
    }
}

/// Permission to work the patient-matching review queue and merge or unmerge persons: data
/// stewards (their institution's records) and the console on the server (regional tooling,
/// with the data directory at hand anyway). Operators — their tokens, or signed in as people —
/// do not: the queue shows patient data, and operators read none (issue #16).
#[derive(Debug, Clone)]
pub struct StewardGrant {
    principal: Principal,
}

impl StewardGrant {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The institution whose records this steward handles; `None`: every institution.
    pub fn institution(&self) -> Option<InstitutionId> {
        match &self.principal {
            Principal::User(u) => Some(u.institution_id),
            _ => None,
        }
    }
}

pub fn grant_steward(p: &Principal) -> Result<StewardGrant, Denied> {
    let ok = match p {
        Principal::User(u) => u.role == Role::DataSteward,
        Principal::Console => true,
        Principal::Admin { .. }
        | Principal::BootstrapAdmin
        | Principal::System(_)
        | Principal::Patient(_) => false,
    };
    if ok {
        Ok(StewardGrant {
            principal: p.clone(),
        })
    } else {
        Err(Denied::Role("the review queue is for data stewards"))
    }
}

/// Permission to read recognition statistics (aggregates: no patient data): operators for the
/// whole region, an institution admin for their own institution.
#[derive(Debug, Clone)]
pub struct StatsGrant {
    principal: Principal,
    institution: Option<InstitutionId>,
}

impl StatsGrant {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The institution these statistics are limited to; `None`: the region.
    pub fn institution(&self) -> Option<InstitutionId> {
        self.institution
    }
}

pub fn grant_stats(p: &Principal) -> Result<StatsGrant, Denied> {
    let institution = match p {
        Principal::Admin { .. } | Principal::BootstrapAdmin | Principal::Console => None,
        Principal::User(u) if u.role == Role::RegionalOperator => None,
        Principal::User(u) if u.role == Role::InstitutionAdmin => Some(u.institution_id),
        _ => {
            return Err(Denied::Role(
                "statistics are for operators and institution admins",
            ));
        }
    };
    Ok(StatsGrant {
        principal: p.clone(),
        institution,
    })
}

/// Permission to read image quality feedback (docs/quality.md): score distributions, trends and
/// the lowest-scoring studies with their reasons — de-identified, with no patient data. The QC
/// centre's officers and operators read the region; an institution's admins and technicians
/// read their own institution.
#[derive(Debug, Clone)]
pub struct QualityGrant {
    principal: Principal,
    institution: Option<InstitutionId>,
}

impl QualityGrant {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The institution this feedback is limited to; `None`: the region.
    pub fn institution(&self) -> Option<InstitutionId> {
        self.institution
    }
}

pub fn grant_quality(p: &Principal) -> Result<QualityGrant, Denied> {
    let institution = match p {
        Principal::Admin { .. } | Principal::BootstrapAdmin | Principal::Console => None,
        Principal::User(u) if matches!(u.role, Role::RegionalOperator | Role::QcOfficer) => None,
        Principal::User(u) if matches!(u.role, Role::InstitutionAdmin | Role::Technician) => {
            Some(u.institution_id)
        }
        _ => {
            return Err(Denied::Role(
                "quality feedback is for QC officers, technicians, institution admins and operators",
            ));
        }
    };
    Ok(QualityGrant {
        principal: p.clone(),
        institution,
    })
}

/// Permission to mark a study's quality reviewed, with a comment the hospital reads: the QC
/// centre's officers (issue #20).
#[derive(Debug, Clone)]
pub struct QcReviewGrant {
    user: User,
}

impl QcReviewGrant {
    pub fn user(&self) -> &User {
        &self.user
    }
}

pub fn grant_qc_review(p: &Principal) -> Result<QcReviewGrant, Denied> {
    match p {
        Principal::User(u) if u.role == Role::QcOfficer && u.via.is_none() => {
            Ok(QcReviewGrant { user: u.clone() })
        }
        _ => Err(Denied::Role(
            "studies are reviewed by the QC centre's officers",
        )),
    }
}

/// Permission to read the audit trail: auditors, and operators' tokens for tooling (not
/// regional operators signed in as people: they configure, auditors audit).
#[derive(Debug, Clone)]
pub struct AuditGrant {
    principal: Principal,
}

impl AuditGrant {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

pub fn grant_audit(p: &Principal) -> Result<AuditGrant, Denied> {
    let ok = match p {
        Principal::User(u) => u.role == Role::Auditor,
        Principal::Admin { .. } | Principal::BootstrapAdmin | Principal::Console => true,
        Principal::System(_) | Principal::Patient(_) => false,
    };
    if ok {
        Ok(AuditGrant {
            principal: p.clone(),
        })
    } else {
        Err(Denied::Role("the audit trail is for auditors"))
    }
}

/// Tokens are stored only as SHA-256 digests: a database leak does not leak credentials.
/// (Tokens carry 244 random bits, so a fast hash is sufficient; passwords will use argon2.)
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What happened, in IHE ATNA terms where one exists (DICOM PS3.15 §A.5, event IDs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// DICOM "DICOM Instances Transferred" (110104), import direction.
    InstanceStored,
    /// An object was refused (status other than success/warning).
    InstanceRefused,
    /// A peer was refused at association (110114 "User Authentication" failure analogue).
    AssociationRejected,
    /// "Security Alert"/configuration change (110113).
    ConfigurationChanged,
    /// Study rejected or deleted by an operator ("DICOM Study Deleted", 110105).
    StudyLifecycleChanged,
    /// HTTP request refused for lack of credentials.
    AuthenticationFailed,
    /// Patient records moved into another person (a link or merge), or back (an unmerge):
    /// IHE ITI-8/ITI-30 "Patient Record" update analogue (110110).
    PersonLinksChanged,
    /// An HL7 v2 message's results stored ("Import", 110107).
    ResultsStored,
    /// An HL7 v2 message refused (AE/AR).
    ResultsRefused,
    /// A person signed in (DICOM "User Authentication", 110114, Login).
    UserLogin,
    /// A person signed out (110114, Logout).
    UserLogout,
    /// Patient data read: a study's images (DICOM "DICOM Instances Accessed", 110103) or a
    /// person's records and results ("Patient Record", 110110, read). One event per reader ×
    /// study or person per window (docs/audit.md); refusals too.
    PatientDataAccessed,
    /// Break-glass started: DICOM "Emergency Override Started" (110127).
    EmergencyOverride,
    /// An institution admin reviewed a break-glass access.
    EmergencyOverrideReviewed,
    /// A patient authorization was asked for, granted (the patient's code) or revoked.
    PatientAuthorization,
    /// The HIS opened, changed or closed an encounter (the relationship that lets a doctor
    /// read a patient's data).
    EncounterChanged,
    /// A receiving doctor recognized a prior result or chose to re-examine, with the reason
    /// (a clinical record entry; "Patient Record", 110110, create).
    RecognitionDecided,
    /// A hospital registered or updated its own record of a patient (demographics, identity
    /// numbers): IHE "Patient Record" (110110) create/update, as in ITI-8 feeds.
    PatientRegistered,
    /// A patient's mobile number was registered, a change asked for, confirmed or refused.
    PatientContactChanged,
    /// An authenticated principal was refused what its role or relationship does not allow
    /// (HTTP 403): DICOM "Security Alert" (110113), "Use of Restricted Function" (110132).
    AccessDenied,
    /// The QC centre marked a study reviewed, with its comment to the hospital.
    QualityReviewed,
    /// A patient shared a study by a time-limited link, or ended a share. (Each use of the
    /// link is a `patient_data_accessed` by `share:{id}`.)
    StudyShared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// Succeeded with a warning (DIMSE 0xBxxx, STOW 202 part).
    Warning,
    Failure,
}

/// One audit event: one principal's one action on one object (an instance, a study, a
/// configuration record), with its outcome. See ARCHITECTURE.md, "What one audit event is".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub action: AuditAction,
    pub outcome: Outcome,
    pub actor: String,
    pub institution: Option<String>,
    pub patient: Option<String>,
    pub study_uid: Option<String>,
    pub object: Option<String>,
    pub source_address: Option<String>,
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        Sender {
            institution_id: 1,
            institution_code: InstitutionCode::parse("cq-a").unwrap(),
            kind: SenderKind::Token { token_id: 9 },
            reads: SystemReads::Institution,
        }
    }

    #[test]
    fn only_senders_ingest_only_admins_administer() {
        let sys = Principal::System(sender());
        assert_eq!(grant_ingest(&sys).unwrap().sender().institution_id, 1);
        assert_eq!(grant_admin(&sys).unwrap_err(), Denied::NotAdmin);
        assert!(grant_admin(&Principal::BootstrapAdmin).is_ok());
        // Operators' tokens configure; they read no patient data.
        assert!(grant_read(&Principal::BootstrapAdmin).is_err());
        assert!(grant_read(&Principal::Admin { token_id: 2 }).is_err());
        // A system reads its institution's data unless granted the region.
        assert_eq!(grant_read(&sys).unwrap().scope(), ReadScope::Institution(1));
        let mut regional = sender();
        regional.reads = SystemReads::Region;
        let regional = Principal::System(regional);
        assert_eq!(grant_read(&regional).unwrap().scope(), ReadScope::All);
        assert_eq!(
            grant_ingest(&Principal::Console).unwrap_err(),
            Denied::NotASender
        );
    }

    fn user(role: Role) -> Principal {
        Principal::User(User {
            user_id: 3,
            username: "wang.li".into(),
            role,
            institution_id: 1,
            institution_code: InstitutionCode::parse("cq-a").unwrap(),
            department: Some("放射科".into()),
            via: None,
        })
    }

    #[test]
    fn roles_decide_what_a_person_may_do() {
        // Operators configure but do not read patient data; auditors neither.
        assert!(grant_admin(&user(Role::RegionalOperator)).is_ok());
        assert!(grant_read(&user(Role::RegionalOperator)).is_err());
        assert!(grant_read(&user(Role::Auditor)).is_err());
        assert!(grant_admin(&user(Role::Auditor)).is_err());
        // Doctors read (narrowed by relationship rules) but neither configure nor send.
        assert!(grant_read(&user(Role::Doctor)).is_ok());
        assert_eq!(
            grant_admin(&user(Role::Doctor)).unwrap_err(),
            Denied::NotAdmin
        );
        assert_eq!(
            grant_ingest(&user(Role::Doctor)).unwrap_err(),
            Denied::NotASender
        );
        assert_eq!(user(Role::Doctor).label(), "user:wang.li#3@cq-a(doctor)");
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn token_hash_is_stable_hex() {
        assert_eq!(hash_token("abc").len(), 64);
        assert_eq!(hash_token("abc"), hash_token("abc"));
        assert_ne!(hash_token("abc"), hash_token("abd"));
    }

    #[test]
    fn a_patient_reads_only_their_own_and_a_link_manages_nothing() {
        let me = PatientSelf {
            person_key: 7,
            person: "p-7".into(),
            share: None,
        };
        let p = Principal::Patient(me.clone());
        assert_eq!(p.label(), "patient:p-7");
        let g = grant_read(&p).unwrap();
        assert_eq!(g.scope(), ReadScope::Own(&me));
        assert!(grant_film(&p).is_ok());
        for refused in [
            grant_ingest(&p).is_err(),
            grant_upload(&p).is_err(),
            grant_admin(&p).is_err(),
            grant_clinician(&p).is_err(),
            grant_steward(&p).is_err(),
            grant_stats(&p).is_err(),
            grant_quality(&p).is_err(),
            grant_audit(&p).is_err(),
        ] {
            assert!(refused);
        }
        let link = Principal::Patient(PatientSelf {
            share: Some(3),
            ..me
        });
        assert_eq!(link.label(), "share:3");
        assert!(grant_read(&link).is_ok());
        assert!(grant_film(&link).is_err());
        assert!(grant_film(&Principal::Console).is_err());
    }
}
