//! Patient authorization (issue #6): a patient lets a clinic read their data by telling it a
//! one-time code that huren sent to the patient's own phone, the number their hospital
//! registered. The clinic's doctor asks (`request_authorization`), the patient reads the code
//! out, the doctor confirms it (`confirm_authorization`); the clinic's doctors then reach the
//! patient for the days asked (≤ 30), until it expires or is revoked. Phone numbers are sealed
//! like identity numbers; codes are kept only as a keyed hash (HMAC-SM3), live ten minutes and
//! allow five attempts.

use crate::model::{AuthorizationView, NewAuthorization, NewContactChange, SealedContact};
use crate::ports::StoreError;
use crate::refusal::Rule;
use crate::{AdminError, Archive, PatientLookup};
use huren_access::{AuditAction, AuditEvent, ClinicianGrant, IngestGrant, Outcome, Principal};

const CONTACT_SYSTEM: &str = "urn:huren:contact:sms";
const CODE_SYSTEM: &str = "urn:huren:authorization-code";
const CONTACT_CODE_SYSTEM: &str = "urn:huren:contact-change-code";
const CODE_TTL_SECS: i64 = 600;

use crate::time::unix_now as now;

/// A mainland mobile number (11 digits starting with 1), with or without +86.
fn normalize_phone(raw: &str) -> Option<String> {
    let d: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let d = d
        .strip_prefix("+86")
        .or_else(|| d.strip_prefix("0086"))
        .unwrap_or(&d);
    (d.len() == 11 && d.starts_with('1') && d.bytes().all(|b| b.is_ascii_digit()))
        .then(|| d.to_owned())
}

/// `138****5678`: enough for the clinic to tell the patient where the code went.
fn masked(phone: &str) -> String {
    format!("{}****{}", &phone[..3], &phone[phone.len() - 4..])
}

/// Six random digits.
pub(crate) fn one_time_code() -> String {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    format!(
        "{:06}",
        u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) % 1_000_000
    )
}

/// A number the HIS registers for one of its records.
#[derive(Debug, Clone, Copy)]
pub struct ContactRequest<'a> {
    pub patient_id: &'a str,
    pub issuer: Option<&'a str>,
    pub phone: &'a str,
    /// The member of staff (a user of the same institution) who saw the patient in person and
    /// checked the change.
    pub verified_in_person_by: Option<&'a str>,
}

/// What registering a number did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactOutcome {
    /// The person had no number: this one is registered.
    Registered,
    /// The same number as registered.
    Unchanged,
    /// Replaced, the patient having been seen in person.
    Changed,
    /// Waiting for the code sent to the old number.
    Pending {
        change: i64,
        code_sent_to: String,
        code_expires_at: i64,
    },
}

/// A request sent: where the code went, and until when it is good.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub id: i64,
    pub sent_to: String,
    pub code_expires_at: i64,
}

/// Why a consent step failed — a variant per step, each keeping what caused it.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// The request is malformed: a mobile number's shape, a duration, a scope.
    #[error("{0}")]
    Invalid(String),
    /// A rule refused it: no such patient, a wrong or used code, no live authorization…
    #[error("{1}")]
    Refused(Rule, String),
    /// Too many authorization requests (each sends the patient an SMS) today.
    #[error("{0}")]
    TooMany(String),
    /// The caller may not name this patient (another institution's numbering, not a
    /// colleague): HTTP 403, audited as a refusal.
    #[error("{0}")]
    Denied(String),
    /// Sealing or opening a mobile number failed (the keys, not the request).
    #[error("sealing a mobile number failed: {0}")]
    Sealing(#[source] huren_seal::SealError),
    /// The SMS gateway did not take a code or a notice.
    #[error("the SMS gateway failed: {0}")]
    Notify(#[source] StoreError),
    /// The index failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ConsentError {
    fn refused(rule: Rule, message: impl Into<String>) -> Self {
        ConsentError::Refused(rule, message.into())
    }

    /// huren failed (the index, the keys, the SMS gateway), not the request: answered as an
    /// internal error, its cause logged.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            ConsentError::Store(_) | ConsentError::Sealing(_) | ConsentError::Notify(_)
        )
    }
}

/// The steps consent shares with other use cases (numbering, colleagues, person lookup) keep
/// their meaning here.
impl From<AdminError> for ConsentError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(m) => ConsentError::Invalid(m),
            AdminError::Refused(r, m) => ConsentError::Refused(r, m),
            AdminError::TooMany(m) => ConsentError::TooMany(m),
            AdminError::Forbidden(m) => ConsentError::Denied(m),
            AdminError::Store(s) => ConsentError::Store(s),
            e @ AdminError::Failed { .. } => ConsentError::Store(StoreError::backend("consent", e)),
        }
    }
}

/// Consent composes into the other use cases that send codes (the cloud film's sign-in).
impl From<ConsentError> for AdminError {
    fn from(e: ConsentError) -> Self {
        match e {
            ConsentError::Denied(m) => AdminError::Forbidden(m),
            ConsentError::Invalid(m) => AdminError::Invalid(m),
            ConsentError::Refused(r, m) => AdminError::Refused(r, m),
            ConsentError::TooMany(m) => AdminError::TooMany(m),
            ConsentError::Store(s) | ConsentError::Notify(s) => AdminError::Store(s),
            ConsentError::Sealing(e) => AdminError::Store(StoreError::backend("sealing", e)),
        }
    }
}

impl Archive {
    pub(crate) fn sealer(&self) -> Result<&huren_seal::Sealer, ConsentError> {
        self.config
            .identity
            .as_ref()
            .map(|p| &p.sealer)
            .ok_or_else(|| {
                ConsentError::refused(
                    Rule::KeysNotConfigured,
                    "sealing keys are not configured (mpi keys)",
                )
            })
    }

    /// The HIS registers the mobile number of one of its patients (a record in its own
    /// numbering). A first number is registered at once; a different number replaces the one
    /// registered only when the patient confirms: with a code sent to the old number, or in
    /// person at this hospital, checked by the member of staff named in `verified_in_person_by`.
    /// Either way the old number is told. Audited as `patient_contact_changed`.
    pub async fn register_contact(
        &self,
        grant: &IngestGrant,
        req: ContactRequest<'_>,
    ) -> Result<ContactOutcome, ConsentError> {
        let sender = grant.sender();
        let phone = normalize_phone(req.phone).ok_or_else(|| {
            ConsentError::Invalid("a mobile number has 11 digits starting with 1".into())
        })?;
        let issuer = self
            .issuer_or_own(sender.institution_id, req.issuer)
            .await?;
        self.may_name(sender.institution_id, &issuer).await?;
        let verifier = match req.verified_in_person_by {
            Some(name) => Some(self.colleague(sender.institution_id, name).await?),
            None => None,
        };
        let person = self
            .index
            .find_persons(
                &crate::model::PersonSearch::Record {
                    issuer: issuer.clone(),
                    patient_id: req.patient_id.trim().to_owned(),
                },
                1,
            )
            .await?
            .into_iter()
            .next()
            .map(|h| h.person)
            .ok_or_else(|| {
                ConsentError::refused(
                    Rule::RecordNotRegistered,
                    format!(
                        "no record {}@{issuer}: register the patient first",
                        req.patient_id.trim()
                    ),
                )
            })?;
        let old = self.patient_phone(&person).await?;
        if old.as_deref() == Some(phone.as_str()) {
            return Ok(ContactOutcome::Unchanged);
        }
        let sealer = self.sealer()?;
        let sealed = sealer
            .seal(CONTACT_SYSTEM, &phone)
            .map_err(ConsentError::Sealing)?;
        let t = now();
        let hospital = self
            .institution_name(sender.institution_code.as_str())
            .await?;
        let mut change = NewContactChange {
            person: person.clone(),
            institution_id: sender.institution_id,
            requested_by: grant.principal().label(),
            contact: SealedContact {
                sealed: sealed.bytes,
                key_id: sealed.key_id,
            },
            how: "first",
            verified_by: None,
            code_hash: None,
            code_expires_at: None,
            now: t,
        };
        let outcome = match (&old, &verifier) {
            (None, _) => ContactOutcome::Registered,
            (Some(_), Some(v)) => {
                change.how = "in_person";
                change.verified_by = Some(v.user.user_id);
                ContactOutcome::Changed
            }
            (Some(old), None) => {
                let code = one_time_code();
                change.how = "old_number";
                change.code_hash = Some(sealer.blind_index(CONTACT_CODE_SYSTEM, &code));
                change.code_expires_at = Some(t + CODE_TTL_SECS);
                let id = self.record_change(change).await?;
                self.notifier
                    .send_sms(
                        old,
                        &format!(
                            "【互认】{hospital}申请将您登记的手机号更换为{}，验证码{code}，10分钟内有效。如非本人申请，请勿告知他人。",
                            masked(&phone)
                        ),
                    )
                    .await
            .map_err(ConsentError::Notify)?;
                self.audit_contact(grant, &person, id, "requested", Outcome::Success, None)
                    .await?;
                return Ok(ContactOutcome::Pending {
                    change: id,
                    code_sent_to: masked(old),
                    code_expires_at: t + CODE_TTL_SECS,
                });
            }
        };
        let how = change.how;
        let id = self.record_change(change).await?;
        if let Some(old) = &old {
            self.tell_old_number(old, &hospital, &phone, how).await?;
        }
        self.audit_contact(
            grant,
            &person,
            id,
            if old.is_none() {
                "registered"
            } else {
                "changed"
            },
            Outcome::Success,
            verifier.map(|v| v.user.username),
        )
        .await?;
        Ok(outcome)
    }

    /// The code the patient received at the old number, entered at the hospital that asked:
    /// right, in time, within five attempts → the new number is registered. Every refused
    /// attempt is audited.
    pub async fn confirm_contact_change(
        &self,
        grant: &IngestGrant,
        id: i64,
        code: &str,
    ) -> Result<(), ConsentError> {
        let sender = grant.sender();
        let hash = self.sealer()?.blind_index(CONTACT_CODE_SYSTEM, code.trim());
        let Some(view) = self
            .index
            .confirm_contact_change(id, sender.institution_id, &hash, now())
            .await?
        else {
            self.audit_contact(grant, "", id, "code_rejected", Outcome::Failure, None)
                .await?;
            return Err(ConsentError::refused(
                Rule::ConsentCodeRejected,
                "wrong, expired or used code (five attempts at most)",
            ));
        };
        let hospital = self
            .institution_name(sender.institution_code.as_str())
            .await?;
        // The number now in force is the new one; the old one was where the code went.
        self.audit_contact(grant, &view.person, id, "changed", Outcome::Success, None)
            .await?;
        if let Some(new) = self.patient_phone(&view.person).await? {
            self.notifier
                .send_sms(
                    &new,
                    &format!("【互认】您在互认平台登记的手机号已由{hospital}更换为本号码。"),
                )
                .await
                .map_err(ConsentError::Notify)?;
        }
        Ok(())
    }

    async fn record_change(&self, c: NewContactChange) -> Result<i64, ConsentError> {
        self.index
            .record_contact_change(c)
            .await?
            .ok_or_else(|| ConsentError::refused(Rule::PatientNotFound, "the patient is not known"))
    }

    async fn tell_old_number(
        &self,
        old: &str,
        hospital: &str,
        new: &str,
        how: &str,
    ) -> Result<(), ConsentError> {
        let why = if how == "in_person" {
            "（本人到院核验）"
        } else {
            ""
        };
        self.notifier
            .send_sms(
                old,
                &format!(
                    "【互认】您在互认平台登记的手机号已由{hospital}更换为{}{why}，本号码不再接收授权验证码。如非本人办理，请联系{hospital}。",
                    masked(new)
                ),
            )
            .await
            .map_err(ConsentError::Notify)?;
        Ok(())
    }

    async fn audit_contact(
        &self,
        grant: &IngestGrant,
        person: &str,
        id: i64,
        step: &str,
        outcome: Outcome,
        verified_by: Option<String>,
    ) -> Result<(), ConsentError> {
        self.index
            .record_audit(AuditEvent {
                action: AuditAction::PatientContactChanged,
                outcome,
                actor: grant.principal().label(),
                institution: Some(grant.sender().institution_code.to_string()),
                patient: (!person.is_empty()).then(|| format!("person:{person}")),
                study_uid: None,
                object: Some(format!("contact-change:{id}")),
                source_address: None,
                detail: serde_json::json!({ "step": step, "verified_in_person_by": verified_by }),
            })
            .await?;
        Ok(())
    }

    /// A clinic's doctor asks a patient (named by identity or record number) for access: a code
    /// goes to the patient's registered phone.
    pub async fn request_authorization(
        &self,
        grant: &ClinicianGrant,
        lookup: PatientLookup<'_>,
        days: i64,
        scope: &str,
    ) -> Result<AuthorizationRequest, ConsentError> {
        if !(1..=30).contains(&days) {
            return Err(ConsentError::Invalid(
                "an authorization lasts 1–30 days".into(),
            ));
        }
        // What the patient is asked to open, said in the message they confirm.
        let what = match scope {
            "all" => "检查检验结果",
            "imaging" => "影像检查结果（不含检验）",
            "lab" => "检验结果及报告（不含影像）",
            _ => {
                return Err(ConsentError::Invalid("scope is all, imaging or lab".into()));
            }
        };
        let user = grant.user();
        if let PatientLookup::Record { issuer, .. } = &lookup {
            self.may_name(user.institution_id, issuer).await?;
        }
        let search = self.person_search(lookup)?;
        let hits = self.index.find_persons(&search, 2).await?;
        let [hit] = hits.as_slice() else {
            return Err(ConsentError::refused(
                Rule::PatientAmbiguous,
                "that identifier does not name exactly one patient",
            ));
        };
        // Each request sends the patient an SMS: a few a day per patient (from any clinic) and
        // a bounded number per doctor, so neither a slip nor a script can flood a phone.
        let policy = self.config.accounts;
        let (for_patient, by_doctor) = self
            .index
            .authorization_requests_since(&hit.person, user.user_id, now() - 86_400)
            .await?;
        if for_patient >= policy.authorization_requests_per_patient_day
            || by_doctor >= policy.authorization_requests_per_doctor_day
        {
            self.audit_consent_outcome(
                grant,
                &hit.person,
                0,
                "request_refused",
                Outcome::Failure,
                serde_json::json!({
                    "reason": "daily limit",
                    "for_patient": for_patient,
                    "by_doctor": by_doctor,
                }),
            )
            .await?;
            return Err(ConsentError::TooMany(
                "too many authorization requests in the last day for this patient or by this doctor; each one sends the patient an SMS"
                    .into(),
            ));
        }
        let phone = self.patient_phone(&hit.person).await?.ok_or_else(|| {
            ConsentError::refused(
                Rule::NoRegisteredMobile,
                "the patient has no registered mobile number",
            )
        })?;
        let sealer = self.sealer()?;
        let code = one_time_code();
        let t = now();
        let id = self
            .index
            .create_authorization(NewAuthorization {
                person: hit.person.clone(),
                institution_id: user.institution_id,
                requested_by: user.user_id,
                scope: scope.to_owned(),
                code_hash: sealer.blind_index(CODE_SYSTEM, &code),
                code_expires_at: t + CODE_TTL_SECS,
                days,
                now: t,
            })
            .await?;
        let clinic = self.clinic_name(user).await?;
        self.notifier
            .send_sms(
                &phone,
                &format!(
                    "【互认】{clinic}申请查看您的{what}（{days}天），验证码{code}，10分钟内有效。如非本人就诊请勿告知他人。"
                ),
            )
            .await
            .map_err(ConsentError::Notify)?;
        self.audit_consent(
            grant,
            &hit.person,
            id,
            "requested",
            serde_json::json!({ "days": days, "scope": scope }),
        )
        .await?;
        Ok(AuthorizationRequest {
            id,
            sent_to: masked(&phone),
            code_expires_at: t + CODE_TTL_SECS,
        })
    }

    /// The code the patient read out: right, in time, within five attempts → granted. The
    /// patient then gets a second SMS with a link of their own to end it early
    /// (`{base_url}/patient/revoke?t=…`), so revoking does not depend on the clinic.
    pub async fn confirm_authorization(
        &self,
        grant: &ClinicianGrant,
        id: i64,
        code: &str,
        base_url: &str,
    ) -> Result<AuthorizationView, ConsentError> {
        let hash = self.sealer()?.blind_index(CODE_SYSTEM, code.trim());
        match self
            .index
            .confirm_authorization(id, grant.user().institution_id, &hash, now())
            .await?
        {
            Some(view) => {
                self.audit_consent(
                    grant,
                    &view.person,
                    id,
                    "granted",
                    serde_json::json!({ "expires_at": view.expires_at }),
                )
                .await?;
                self.send_revoke_link(grant, &view, base_url).await?;
                Ok(view)
            }
            None => {
                self.audit_consent_outcome(
                    grant,
                    "",
                    id,
                    "code_rejected",
                    Outcome::Failure,
                    serde_json::json!({}),
                )
                .await?;
                Err(ConsentError::refused(
                    Rule::ConsentCodeRejected,
                    "wrong, expired or used code (five attempts at most)",
                ))
            }
        }
    }

    /// Ends an authorization (the clinic no longer needs it, or the patient asked).
    pub async fn revoke_authorization(
        &self,
        grant: &ClinicianGrant,
        id: i64,
    ) -> Result<(), ConsentError> {
        if !self
            .index
            .revoke_authorization(id, grant.user().institution_id, now())
            .await?
        {
            return Err(ConsentError::refused(
                Rule::AuthorizationNotLive,
                format!("no live authorization {id} for this institution"),
            ));
        }
        self.audit_consent(grant, "", id, "revoked", serde_json::json!({}))
            .await
    }

    /// The patient's registered mobile number, opened from its seal.
    pub(crate) async fn patient_phone(&self, person: &str) -> Result<Option<String>, ConsentError> {
        let Some(contact) = self.index.patient_contact(person).await? else {
            return Ok(None);
        };
        let phone = self
            .sealer()?
            .open(
                CONTACT_SYSTEM,
                &huren_seal::Sealed {
                    key_id: contact.key_id,
                    bytes: contact.sealed,
                },
            )
            .map_err(ConsentError::Sealing)?;
        Ok(Some(phone))
    }

    /// The clinic's name as the patient knows it (else its code).
    async fn clinic_name(&self, user: &huren_access::User) -> Result<String, ConsentError> {
        self.institution_name(user.institution_code.as_str()).await
    }

    /// An institution's name as patients and doctors know it today (else its code).
    pub async fn institution_name(&self, code: &str) -> Result<String, ConsentError> {
        Ok(self
            .attribution
            .institution_as_of(self.index.as_ref(), code, self.today())
            .await?
            .and_then(|i| i.name)
            .unwrap_or_else(|| code.to_owned()))
    }

    async fn send_revoke_link(
        &self,
        grant: &ClinicianGrant,
        view: &AuthorizationView,
        base_url: &str,
    ) -> Result<(), ConsentError> {
        let Some(phone) = self.patient_phone(&view.person).await? else {
            return Ok(());
        };
        let secret = crate::accounts::random_secret();
        self.index
            .set_revoke_hash(view.id, &huren_access::hash_token(&secret))
            .await?;
        let clinic = self.clinic_name(grant.user()).await?;
        let days = (view.expires_at - view.granted_at + 86_399) / 86_400;
        self.notifier
            .send_sms(
                &phone,
                &format!(
                    "【互认】您已授权{clinic}查看您的结果，{days}天内有效。如需提前撤销，请打开 {base}/patient/revoke?t={secret} 。查看本人结果和访问记录：{base}/me",
                    base = base_url.trim_end_matches('/')
                ),
            )
            .await
            .map_err(ConsentError::Notify)?;
        Ok(())
    }

    /// The patient's own link: ends the authorization it was sent for, if still live.
    /// Returns whether one was ended; audited with the patient as the actor.
    pub async fn revoke_by_patient(&self, secret: &str, source: Option<String>) -> bool {
        let ended = match self
            .index
            .revoke_by_patient(&huren_access::hash_token(secret.trim()), now())
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "could not end an authorization");
                return false;
            }
        };
        let ev = AuditEvent {
            action: AuditAction::PatientAuthorization,
            outcome: if ended.is_some() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            actor: "patient".into(),
            institution: ended.as_ref().map(|(_, _, i)| i.clone()),
            patient: ended.as_ref().map(|(_, p, _)| format!("person:{p}")),
            study_uid: None,
            object: ended
                .as_ref()
                .map(|(id, _, _)| format!("authorization:{id}")),
            source_address: source,
            detail: serde_json::json!({ "step": "revoked_by_patient" }),
        };
        if let Err(e) = self.index.record_audit(ev).await {
            tracing::error!(error = %e, "could not record a patient's revocation");
        }
        ended.is_some()
    }

    async fn audit_consent(
        &self,
        grant: &ClinicianGrant,
        person: &str,
        id: i64,
        what: &str,
        detail: serde_json::Value,
    ) -> Result<(), ConsentError> {
        self.audit_consent_outcome(grant, person, id, what, Outcome::Success, detail)
            .await
    }

    async fn audit_consent_outcome(
        &self,
        grant: &ClinicianGrant,
        person: &str,
        id: i64,
        what: &str,
        outcome: Outcome,
        mut detail: serde_json::Value,
    ) -> Result<(), ConsentError> {
        let user = grant.user();
        detail["step"] = serde_json::json!(what);
        self.index
            .record_audit(AuditEvent {
                action: AuditAction::PatientAuthorization,
                outcome,
                actor: Principal::User(user.clone()).label(),
                institution: Some(user.institution_code.to_string()),
                patient: (!person.is_empty()).then(|| format!("person:{person}")),
                study_uid: None,
                object: (id > 0).then(|| format!("authorization:{id}")),
                source_address: None,
                detail,
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalized_and_masked() {
        assert_eq!(
            normalize_phone("+86 138-1234-5678").as_deref(),
            Some("13812345678")
        );
        assert_eq!(normalize_phone("023-6888888"), None);
        assert_eq!(masked("13812345678"), "138****5678");
    }
}
