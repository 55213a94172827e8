//! Whose numbering a patient record is in (issue #16): a hospital names only its own patients.
//!
//! A patient record is `(issuer, PatientID)` (ARCHITECTURE.md, "Identifiers and their scope").
//! The issuer a request carries — DICOM IssuerOfPatientID (0010,0021), HL7 PID-3.4, a FHIR
//! identifier's `system`, the `issuer` of a JSON call — is a *claim*. Before anything is written
//! under it, or a relationship opened through it, the claim is checked here against the
//! caller's own numbering. One rule for every interface:
//!
//! - an issuer that is an identity-number system (`urn:huren:id:…`, or an issuer configured as
//!   marking resident identity numbers) names a *person*, not one hospital's record: anyone may
//!   name a person by identity number;
//! - every other issuer belongs to exactly one institution: the one whose `identifier_system`
//!   it is or was, the one whose `urn:huren:institution:<code>` it is, or the one that used it
//!   first (a free-text IssuerOfPatientID such as `HIS` is claimed by its first user, recorded
//!   and audited);
//! - a caller writes under an issuer only when that institution is its own or one it sends for
//!   (`huren send-for`). Anything else is refused in the protocol's terms (403 problem+json,
//!   OperationOutcome `forbidden`, HL7 AR, DIMSE 0x0124) and audited.

use crate::Archive;
use crate::ports::StoreError;

/// Why a caller may not write under an issuer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Said first what matters, so a DIMSE ErrorComment (LO, 64 characters) or an HL7 MSA-3 (80)
// cut short still says why.
#[error("another institution's patient numbering: {issuer}")]
pub struct NotOwnNumbering {
    pub issuer: String,
}

/// Who an issuer's numbering belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// An identity-number system: it names a person.
    Person,
    /// One institution's record numbers.
    Institution(i64),
    /// Nobody's yet.
    Unclaimed,
}

impl Archive {
    /// Whose numbering `issuer` is (see the module documentation).
    pub async fn numbering(&self, issuer: &str) -> Result<Numbering, StoreError> {
        let issuer = issuer.trim();
        if issuer.starts_with("urn:huren:id:") || self.is_identity_system(issuer) {
            return Ok(Numbering::Person);
        }
        Ok(
            match self
                .attribution
                .issuer_owner(self.index.as_ref(), issuer)
                .await?
            {
                Some(id) => Numbering::Institution(id),
                None => Numbering::Unclaimed,
            },
        )
    }

    /// Checks that the sender `institution` may write records, or open relationships, under
    /// `issuer`. An unclaimed issuer is claimed for `claim_for` (the performer a send-for rule
    /// resolved, else the sender itself) and the claim audited as `actor`'s.
    pub async fn check_numbering(
        &self,
        institution: i64,
        claim_for: i64,
        issuer: &str,
        actor: &str,
    ) -> Result<(), NumberingError> {
        let own = self
            .attribution
            .own_institutions(self.index.as_ref(), institution)
            .await?;
        let mine = |id: i64| own.iter().any(|(i, _)| *i == id);
        match self.numbering(issuer).await? {
            Numbering::Person => Ok(()),
            Numbering::Institution(id) if mine(id) => Ok(()),
            Numbering::Institution(_) => Err(NumberingError::NotOwn(NotOwnNumbering {
                issuer: issuer.trim().to_owned(),
            })),
            Numbering::Unclaimed => {
                let claim_for = if mine(claim_for) {
                    claim_for
                } else {
                    institution
                };
                let (owner, claimed) = self.index.claim_issuer(issuer.trim(), claim_for).await?;
                self.attribution.forget_issuer(issuer.trim());
                if claimed {
                    let code = own
                        .iter()
                        .find(|(i, _)| *i == owner)
                        .map(|(_, c)| c.clone());
                    let ev = huren_access::AuditEvent {
                        action: huren_access::AuditAction::ConfigurationChanged,
                        outcome: huren_access::Outcome::Success,
                        actor: actor.to_owned(),
                        institution: code.clone(),
                        patient: None,
                        study_uid: None,
                        object: Some(format!("issuer:{}", issuer.trim())),
                        source_address: None,
                        detail: serde_json::json!({ "claimed_for": code, "how": "first use" }),
                    };
                    self.index.record_audit(ev).await?;
                }
                if mine(owner) {
                    Ok(())
                } else {
                    // Another institution claimed it in the same instant.
                    Err(NumberingError::NotOwn(NotOwnNumbering {
                        issuer: issuer.trim().to_owned(),
                    }))
                }
            }
        }
    }
}

/// What an HTTP caller is told besides the refusal.
pub const HINT: &str = "A hospital names only its own patients: its own record numbers, those of \
     institutions it sends for, or a person's identity number";

#[derive(Debug, thiserror::Error)]
pub enum NumberingError {
    #[error(transparent)]
    NotOwn(#[from] NotOwnNumbering),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<NumberingError> for crate::AdminError {
    fn from(e: NumberingError) -> Self {
        match e {
            NumberingError::NotOwn(n) => crate::AdminError::Forbidden(format!("{n}. {HINT}")),
            NumberingError::Store(s) => crate::AdminError::Store(s),
        }
    }
}
