//! Break-glass (issue #6): a doctor without a relationship to a patient opens them anyway,
//! in an emergency, with a mandatory reason. The access is short (`auth.break_glass_mins`),
//! audited as DICOM "Emergency Override Started" (110127), and listed for the institution
//! admin's review, where it stays until judged justified or not.

use crate::model::BreakGlass;
use crate::{AdminError, Archive, PatientLookup};
use huren_access::{AuditAction, AuditEvent, BreakGlassGrant, Outcome, Principal, ReviewGrant};

/// An opened break-glass access.
#[derive(Debug, Clone)]
pub struct BreakGlassStart {
    pub id: i64,
    pub person: String,
    pub expires_at: i64,
}

use crate::time::unix_now as now;

fn reason_text(reason: &str) -> Result<&str, AdminError> {
    let r = reason.trim();
    let n = r.chars().count();
    if !(4..=500).contains(&n) {
        return Err(AdminError::refused(
            crate::refusal::Rule::ReasonRequired,
            "break-glass needs a reason (4–500 characters)",
        ));
    }
    Ok(r)
}

impl Archive {
    /// Opens the patient an identifier names (identity number or record number) for the doctor.
    pub async fn start_break_glass(
        &self,
        grant: &BreakGlassGrant,
        lookup: PatientLookup<'_>,
        reason: &str,
        source: Option<String>,
    ) -> Result<BreakGlassStart, AdminError> {
        let reason = reason_text(reason)?;
        // A record number only of the doctor's own hospital; any other patient by identity
        // number (crate::numbering).
        if let PatientLookup::Record { issuer, .. } = &lookup {
            self.may_name(grant.user().institution_id, issuer).await?;
        }
        let search = self.person_search(lookup)?;
        // The doctor cannot see the patient yet: the lookup is the index's, not a reader's.
        let hits = self.index.find_persons(&search, 2).await?;
        let person = match hits.as_slice() {
            [one] => one.person.clone(),
            [] => {
                return Err(AdminError::refused(
                    crate::refusal::Rule::PatientNotFound,
                    "no patient has that identifier",
                ));
            }
            _ => {
                return Err(AdminError::refused(
                    crate::refusal::Rule::PatientAmbiguous,
                    "that identifier names more than one patient; use a record number",
                ));
            }
        };
        let t = now();
        let expires_at = t + self.config.accounts.break_glass_secs;
        let user = grant.user();
        let id = self
            .index
            .start_break_glass(user, &person, reason, t, expires_at)
            .await?
            .ok_or_else(|| {
                AdminError::refused(
                    crate::refusal::Rule::PatientNotFound,
                    "the patient is no longer known",
                )
            })?;
        self.index
            .record_audit(AuditEvent {
                action: AuditAction::EmergencyOverride,
                outcome: Outcome::Success,
                actor: Principal::User(user.clone()).label(),
                institution: Some(user.institution_code.to_string()),
                patient: Some(format!("person:{person}")),
                study_uid: None,
                object: Some(format!("break-glass:{id}")),
                source_address: source,
                detail: serde_json::json!({ "reason": reason, "expires_at": expires_at }),
            })
            .await?;
        Ok(BreakGlassStart {
            id,
            person,
            expires_at,
        })
    }

    /// The institution's break-glass accesses (only those awaiting review when `open_only`).
    pub async fn break_glass_list(
        &self,
        grant: &ReviewGrant,
        open_only: bool,
    ) -> Result<Vec<BreakGlass>, AdminError> {
        Ok(self
            .index
            .break_glass_list(grant.user().institution_id, open_only)
            .await?)
    }

    /// The institution admin's verdict on one access: `justified` or `unjustified`, with a note.
    pub async fn review_break_glass(
        &self,
        grant: &ReviewGrant,
        id: i64,
        verdict: &str,
        note: &str,
    ) -> Result<(), AdminError> {
        if !matches!(verdict, "justified" | "unjustified") {
            return Err(AdminError::Invalid(
                "verdict is justified or unjustified".into(),
            ));
        }
        let user = grant.user();
        if !self
            .index
            .review_break_glass(id, user, verdict, note.trim(), now())
            .await?
        {
            return Err(AdminError::refused(
                crate::refusal::Rule::BreakGlassNotReviewable,
                format!("break-glass {id} is not this institution's or was reviewed before"),
            ));
        }
        self.index
            .record_audit(AuditEvent {
                action: AuditAction::EmergencyOverrideReviewed,
                outcome: Outcome::Success,
                actor: Principal::User(user.clone()).label(),
                institution: Some(user.institution_code.to_string()),
                patient: None,
                study_uid: None,
                object: Some(format!("break-glass:{id}")),
                source_address: None,
                detail: serde_json::json!({ "verdict": verdict, "note": note.trim() }),
            })
            .await?;
        Ok(())
    }
}

impl Archive {
    /// The audit trail, newest first, filtered (auditors).
    pub async fn audit_trail(
        &self,
        _grant: &huren_access::AuditGrant,
        filter: &crate::model::AuditFilter,
        limit: u32,
    ) -> Result<Vec<crate::model::AuditRow>, AdminError> {
        Ok(self.index.audit_events(filter, limit.clamp(1, 500)).await?)
    }
}
