//! The domain's named refusals: a rule of the region or of huren refused a request, and the
//! caller can act on which one (ask the patient for a new code, register the patient first,
//! pick another institution code). Each has a stable code; the HTTP error table
//! (`huren-http::error`) gives each its status and FHIR issue type, so problem details and
//! OperationOutcome name the same rule. Messages stay human and may change; codes do not.

/// Which rule refused the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The SMS code is wrong, expired or used up (not told apart, so a guesser learns nothing).
    ConsentCodeRejected,
    /// No live authorization with that id for the caller's institution.
    AuthorizationNotLive,
    /// The patient has no registered mobile number to send a code to.
    NoRegisteredMobile,
    /// No patient (person or record) is known by what the request named.
    PatientNotFound,
    /// The identifier names more than one patient; a record number is needed.
    PatientAmbiguous,
    /// The caller's institution has no record of the patient yet.
    RecordNotRegistered,
    /// The institution code is held already (perhaps in another case).
    InstitutionCodeTaken,
    /// An identifier system is another institution's numbering, or nobody's.
    NumberingTaken,
    /// A reason is required and was not given.
    ReasonRequired,
    /// The break-glass access is not the caller's institution's, or was reviewed already.
    BreakGlassNotReviewable,
    /// Identity numbers or mobile numbers need sealing keys this server does not have.
    KeysNotConfigured,
    /// No study by that UID in what the request reaches (or of the institution it named).
    StudyNotFound,
    /// No institution by that code (as of today).
    InstitutionNotFound,
    /// The item code is not an item of the catalog in force.
    ItemNotInCatalog,
    /// No live patient share by that id of the caller's.
    ShareNotLive,
    /// No live API token by that id.
    TokenNotLive,
    /// The instance has no pixel data that can be shown (a report, a structured document).
    NoImage,
}

impl Rule {
    /// The stable code (snake_case), as clients see it.
    pub fn code(self) -> &'static str {
        match self {
            Rule::ConsentCodeRejected => "consent_code_rejected",
            Rule::AuthorizationNotLive => "authorization_not_live",
            Rule::NoRegisteredMobile => "no_registered_mobile",
            Rule::PatientNotFound => "patient_not_found",
            Rule::PatientAmbiguous => "patient_ambiguous",
            Rule::RecordNotRegistered => "record_not_registered",
            Rule::InstitutionCodeTaken => "institution_code_taken",
            Rule::NumberingTaken => "numbering_taken",
            Rule::ReasonRequired => "reason_required",
            Rule::BreakGlassNotReviewable => "break_glass_not_reviewable",
            Rule::KeysNotConfigured => "keys_not_configured",
            Rule::StudyNotFound => "study_not_found",
            Rule::InstitutionNotFound => "institution_not_found",
            Rule::ItemNotInCatalog => "item_not_in_catalog",
            Rule::ShareNotLive => "share_not_live",
            Rule::TokenNotLive => "token_not_live",
            Rule::NoImage => "no_image",
        }
    }

    /// Every rule, for the error table's completeness test.
    pub const ALL: [Rule; 17] = [
        Rule::ConsentCodeRejected,
        Rule::AuthorizationNotLive,
        Rule::NoRegisteredMobile,
        Rule::PatientNotFound,
        Rule::PatientAmbiguous,
        Rule::RecordNotRegistered,
        Rule::InstitutionCodeTaken,
        Rule::NumberingTaken,
        Rule::ReasonRequired,
        Rule::BreakGlassNotReviewable,
        Rule::KeysNotConfigured,
        Rule::StudyNotFound,
        Rule::InstitutionNotFound,
        Rule::ItemNotInCatalog,
        Rule::ShareNotLive,
        Rule::TokenNotLive,
        Rule::NoImage,
    ];
}
