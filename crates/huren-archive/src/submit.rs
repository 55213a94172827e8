//! Results submitted by FHIR (issue #5 item 6): a hospital system, with its institution's
//! token, sends a DiagnosticReport and its Observations (a transaction Bundle) or either alone.
//! The protocol adapter turns resources into orders and results; this use case finds or
//! creates the patient record, seals identity numbers, attributes the performer and stores
//! everything in one transaction — the same step as an HL7 v2 ORU.

use crate::Archive;
use crate::model::{IfNoneExist, NewLabResult, NewOrder, OruOutcome, ResultPatient, ResultSource};
use crate::ports::StoreError;
use huren_access::{AuditAction, AuditEvent, IngestGrant, Outcome};

/// The patient a submission names.
#[derive(Debug, Clone, Default)]
pub struct SubmittedPatient {
    /// The record's own number: (assigning authority — the sender's when absent, number).
    pub record: Option<(Option<String>, String)>,
    /// A huren person (`Patient/<id>`): their record at the sender's institution is used.
    pub person: Option<String>,
    /// Identity numbers in the clear (system, value); sealed before anything is stored.
    pub identity_numbers: Vec<(String, String)>,
    /// `family^given`.
    pub name: Option<String>,
    /// `YYYYMMDD`.
    pub birth_date: Option<String>,
    /// DICOM/HL7 code: M, F, O, U.
    pub sex: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Submission {
    pub patient: SubmittedPatient,
    /// The performing organization's name when another than the sender (send-for rules).
    pub performer: Option<String>,
    pub orders: Vec<NewOrder>,
    pub loose_results: Vec<NewLabResult>,
    pub if_none_exist: Option<IfNoneExist>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Invalid(String),
    /// Another institution's record named (crate::numbering).
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::numbering::NumberingError> for SubmitError {
    fn from(e: crate::numbering::NumberingError) -> Self {
        match e {
            crate::numbering::NumberingError::NotOwn(n) => {
                SubmitError::Forbidden(format!("{n}. {}", crate::numbering::HINT))
            }
            crate::numbering::NumberingError::Store(s) => SubmitError::Store(s),
        }
    }
}

impl Archive {
    pub async fn submit_results(
        &self,
        grant: &IngestGrant,
        s: Submission,
        source_address: Option<String>,
    ) -> Result<(OruOutcome, Option<String>), SubmitError> {
        let sender = grant.sender();
        let own_issuer = self
            .attribution
            .default_issuer(self.index.as_ref(), sender.institution_id, self.today())
            .await?;
        let mut p = s.patient;
        let (issuer, patient_id) = match (p.record.take(), p.person.take()) {
            (Some((issuer, id)), _) => (issuer.unwrap_or_else(|| own_issuer.clone()), id),
            (None, Some(person)) => {
                let view = self.index.person(&person).await?.ok_or_else(|| {
                    SubmitError::Invalid(format!("Patient/{person} is not known"))
                })?;
                let r = view
                    .records
                    .into_iter()
                    .find(|r| r.issuer == own_issuer)
                    .ok_or_else(|| {
                        SubmitError::Invalid(format!(
                            "Patient/{person} has no record at {}: identify the patient by the \
                             record number (subject.identifier)",
                            sender.institution_code
                        ))
                    })?;
                (r.issuer, r.patient_id)
            }
            (None, None) => {
                return Err(SubmitError::Invalid(
                    "the subject names no patient record".into(),
                ));
            }
        };
        let identifiers = self.seal_numbers(
            &p.identity_numbers,
            p.birth_date.as_deref(),
            p.sex.as_deref(),
        )?;
        let mut performer = sender.institution_id;
        if let Some(name) = &s.performer
            && let Some(p) = self
                .attribution
                .performer(self.index.as_ref(), sender.institution_id, name)
                .await?
        {
            performer = p;
        }
        self.check_numbering(
            sender.institution_id,
            performer,
            &issuer,
            &grant.principal().label(),
        )
        .await?;
        let audit = AuditEvent {
            action: AuditAction::ResultsStored,
            outcome: Outcome::Success,
            actor: grant.principal().label(),
            institution: Some(sender.institution_code.to_string()),
            patient: None,
            study_uid: None,
            object: Some("fhir".into()),
            source_address,
            detail: serde_json::Value::Null,
        };
        let record = crate::model::PersonSearch::Record {
            issuer: issuer.clone(),
            patient_id: patient_id.clone(),
        };
        let patient = ResultPatient {
            issuer,
            patient_id,
            name: p.name,
            birth_date: p.birth_date,
            sex: p.sex,
            identifiers,
        };
        // A conditional create matches only what the sender's own institutions performed.
        let mut if_none_exist = s.if_none_exist;
        if let Some(c) = if_none_exist.as_mut() {
            c.performers = self
                .attribution
                .own_institutions(self.index.as_ref(), sender.institution_id)
                .await?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
        }
        let outcome = self
            .store_results(
                ResultSource::Fhir { if_none_exist },
                performer,
                patient,
                s.orders,
                s.loose_results,
                audit,
            )
            .await?;
        // The person the results landed on (for the transaction response's Patient entry).
        let person = self
            .index
            .find_persons(&record, 1)
            .await?
            .into_iter()
            .next()
            .map(|h| h.person);
        Ok((outcome, person))
    }
}
