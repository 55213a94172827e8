//! The first visit (issue #16): a patient walks into a hospital huren has never seen them at,
//! with an identity card and an outside CT. The HIS registers its own record of the patient —
//! its record number, the identity number from the card, name, birth date and sex — by FHIR
//! (`POST`/`PUT /fhir/Patient`) or inside the encounter and launch calls, and the master patient
//! index links the record to the person at once by its usual rules (the same identity number,
//! consistent with birth date and sex, links; an inconsistent one goes to review). From then on
//! the encounter, the reminder and the doctor's decision work as for a known patient.
//!
//! Calls may also name the patient by identity number alone (an encounter, a launch, a
//! reminder): the number is turned into its blind index at once and never kept in the clear.

use crate::model::{OruOutcome, PatientRef, PersonSearch, ResultPatient, ResultSource};
use crate::numbering::NumberingError;
use crate::submit::SubmitError;
use crate::{AdminError, Archive, NumberError, time as ztime};
use huren_access::{AuditAction, AuditEvent, IngestGrant, Outcome};
use huren_mpi::id::Sex;

/// A patient record as the HIS registers it.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// The record's issuer; the sender institution's own numbering when absent.
    pub issuer: Option<String>,
    pub patient_id: String,
    /// Identity numbers read from the patient's documents, in the clear (system, value):
    /// sealed before anything is stored.
    pub identity_numbers: Vec<(String, String)>,
    /// `family^given`.
    pub name: Option<String>,
    /// `YYYYMMDD`.
    pub birth_date: Option<String>,
    /// M, F, O or U.
    pub sex: Option<String>,
}

/// What a registration did.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    /// The person the record belongs to now (public id).
    pub person: Option<String>,
    /// The record as stored (only the caller's own record: the person's others are not the
    /// registering hospital's to read).
    pub record: Option<crate::model::RecordView>,
    /// The record did not exist before.
    pub created: bool,
    pub issuer: String,
    pub patient_id: String,
}

/// How a call names its patient: its own record (optionally registering it with demographics
/// and identity numbers), or a person by identity number.
#[derive(Debug, Clone, Default)]
pub struct NamedPatient<'a> {
    pub patient_id: Option<&'a str>,
    pub issuer: Option<&'a str>,
    /// `(system, value)`: an identity number.
    pub identifier: Option<(&'a str, &'a str)>,
    pub name: Option<&'a str>,
    pub birth_date: Option<&'a str>,
    pub sex: Option<&'a str>,
}

impl NamedPatient<'_> {
    fn registers(&self) -> bool {
        self.name.is_some() || self.birth_date.is_some() || self.sex.is_some()
    }
}

/// A sex as DICOM/HL7 code it: M, F, O, U (also `male`/`female`/`other`/`unknown`, 男/女).
pub fn sex_code(raw: &str) -> Option<&'static str> {
    match raw.trim() {
        "M" | "m" | "male" | "男" => Some("M"),
        "F" | "f" | "female" | "女" => Some("F"),
        "O" | "o" | "other" => Some("O"),
        "U" | "u" | "unknown" => Some("U"),
        _ => None,
    }
}

/// A birth date as `YYYYMMDD` from `YYYY-MM-DD` or `YYYYMMDD`.
pub fn birth_date(raw: &str) -> Result<String, String> {
    let d: String = raw.chars().filter(char::is_ascii_digit).collect();
    if d.len() == 8 && ztime::parse_da(&d).is_some() {
        Ok(d)
    } else {
        Err(format!("birth date {raw:?} is not a date (YYYY-MM-DD)"))
    }
}

impl Archive {
    /// Identity numbers sealed for the index, checked against the record's birth date and sex
    /// (GB 11643): a number that disagrees is kept as inconsistent and never links by itself.
    pub(crate) fn seal_numbers(
        &self,
        numbers: &[(String, String)],
        birth_date: Option<&str>,
        sex: Option<&str>,
    ) -> Result<Vec<crate::model::SealedIdentifier>, SubmitError> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let Some(policy) = &self.config.identity else {
            return Err(SubmitError::Invalid(
                "identity numbers are not configured on this server (mpi keys)".into(),
            ));
        };
        let birth = birth_date.and_then(ztime::parse_da);
        let sex = sex.and_then(Sex::from_code);
        numbers
            .iter()
            .map(|(system, value)| {
                policy
                    .seal_number(value, self.today(), birth, sex)
                    .map_err(|e| match e {
                        NumberError::Invalid(e) => {
                            SubmitError::Invalid(format!("identifier {system}: {e}"))
                        }
                        NumberError::Seal(e) => SubmitError::Store(
                            crate::ports::StoreError::backend("sealing an identifier", e),
                        ),
                    })
            })
            .collect()
    }

    /// The HIS registers (or updates) its own record of a patient: the record in its numbering
    /// (or one it sends for), demographics, identity numbers; linked to the person at once.
    /// Audited as `patient_registered`.
    pub async fn register_patient(
        &self,
        grant: &IngestGrant,
        r: Registration,
        source_address: Option<String>,
    ) -> Result<Registered, SubmitError> {
        let sender = grant.sender();
        let issuer = self
            .issuer_or_own(sender.institution_id, r.issuer.as_deref())
            .await?;
        let patient_id = r.patient_id.trim().to_owned();
        if patient_id.is_empty() || patient_id.len() > 64 {
            return Err(SubmitError::Invalid(
                "a record number has 1–64 characters".into(),
            ));
        }
        if self.numbering(&issuer).await? == crate::numbering::Numbering::Person {
            return Err(SubmitError::Invalid(
                "a record is numbered by the hospital: name the record number under the \
                 hospital's issuer, and the identity number separately"
                    .into(),
            ));
        }
        self.check_numbering(
            sender.institution_id,
            sender.institution_id,
            &issuer,
            &grant.principal().label(),
        )
        .await?;
        if let Some(s) = &r.sex
            && !matches!(s.as_str(), "M" | "F" | "O" | "U")
        {
            return Err(SubmitError::Invalid(format!("sex {s:?} is M, F, O or U")));
        }
        let identifiers = self.seal_numbers(
            &r.identity_numbers,
            r.birth_date.as_deref(),
            r.sex.as_deref(),
        )?;
        let record = PersonSearch::Record {
            issuer: issuer.clone(),
            patient_id: patient_id.clone(),
        };
        let existed = !self.index.find_persons(&record, 1).await?.is_empty();
        let audit = AuditEvent {
            action: AuditAction::PatientRegistered,
            outcome: Outcome::Success,
            actor: grant.principal().label(),
            institution: Some(sender.institution_code.to_string()),
            patient: None,
            study_uid: None,
            object: Some("patient".into()),
            source_address,
            detail: serde_json::json!({
                "created": !existed,
                "identity_numbers": identifiers.len(),
            }),
        };
        let outcome = self
            .store_results(
                ResultSource::Registration,
                sender.institution_id,
                ResultPatient {
                    issuer: issuer.clone(),
                    patient_id: patient_id.clone(),
                    name: r.name,
                    birth_date: r.birth_date,
                    sex: r.sex,
                    identifiers,
                },
                Vec::new(),
                Vec::new(),
                audit,
            )
            .await?;
        debug_assert!(matches!(outcome, OruOutcome::Stored { .. }));
        let hit = self
            .index
            .find_persons(&record, 1)
            .await?
            .into_iter()
            .next();
        let person = hit.as_ref().map(|h| h.person.clone());
        let record = hit.and_then(|h| {
            h.records
                .into_iter()
                .find(|r| r.issuer == issuer && r.patient_id == patient_id)
        });
        Ok(Registered {
            person,
            record,
            created: !existed,
            issuer,
            patient_id,
        })
    }

    /// The caller's own record `(issuer, patient_id)` as registered, if it exists (a
    /// conditional create asks). Another institution's numbering is refused.
    pub async fn own_record(
        &self,
        grant: &IngestGrant,
        issuer: &str,
        patient_id: &str,
    ) -> Result<Option<Registered>, AdminError> {
        self.may_name(grant.sender().institution_id, issuer).await?;
        let search = PersonSearch::Record {
            issuer: issuer.to_owned(),
            patient_id: patient_id.to_owned(),
        };
        let hit = self
            .index
            .find_persons(&search, 1)
            .await?
            .into_iter()
            .next();
        Ok(hit.map(|h| Registered {
            record: h
                .records
                .into_iter()
                .find(|r| r.issuer == issuer && r.patient_id == patient_id),
            person: Some(h.person),
            created: false,
            issuer: issuer.to_owned(),
            patient_id: patient_id.to_owned(),
        }))
    }

    /// A patient as a call names them, checked and (when demographics come with a record
    /// number) registered: the caller's own record, or a person by identity number.
    pub async fn resolve_named(
        &self,
        grant: &IngestGrant,
        named: NamedPatient<'_>,
    ) -> Result<PatientRef, AdminError> {
        let sender = grant.sender();
        match (named.patient_id.map(str::trim), named.identifier) {
            (Some(pid), identity) if !pid.is_empty() => {
                let issuer = self
                    .issuer_or_own(sender.institution_id, named.issuer)
                    .await?;
                if named.registers() || identity.is_some() {
                    let birth = named.birth_date.map(birth_date).transpose();
                    let r = Registration {
                        issuer: Some(issuer.clone()),
                        patient_id: pid.to_owned(),
                        identity_numbers: identity
                            .map(|(s, v)| vec![(s.to_owned(), v.to_owned())])
                            .unwrap_or_default(),
                        name: named.name.map(str::to_owned),
                        birth_date: birth.map_err(AdminError::Invalid)?,
                        sex: named.sex.map(str::to_owned),
                    };
                    self.register_patient(grant, r, None)
                        .await
                        .map_err(|e| match e {
                            SubmitError::Invalid(m) => AdminError::Invalid(m),
                            SubmitError::Forbidden(m) => AdminError::Forbidden(m),
                            SubmitError::Store(s) => AdminError::Store(s),
                        })?;
                } else {
                    self.check_numbering(
                        sender.institution_id,
                        sender.institution_id,
                        &issuer,
                        &grant.principal().label(),
                    )
                    .await?;
                }
                Ok(PatientRef::Record {
                    issuer,
                    patient_id: pid.to_owned(),
                })
            }
            (_, Some((system, value))) => {
                if named.registers() {
                    return Err(AdminError::Invalid(
                        "name, birth date and sex register the hospital's own record: give its \
                         record number (patient_id) too"
                            .into(),
                    ));
                }
                Ok(PatientRef::Identity(self.identity_key(system, value)?))
            }
            _ => Err(AdminError::Invalid(
                "name the patient by the hospital's record number (patient_id) or by identity \
                 number (identifier: system|value)"
                    .into(),
            )),
        }
    }

    /// The institution's own record numbering (its default IssuerOfPatientID).
    pub async fn own_issuer(&self, institution: i64) -> Result<String, crate::ports::StoreError> {
        self.issuer_or_own(institution, None).await
    }

    /// The issuer a call names, or the institution's own numbering when it names none.
    pub(crate) async fn issuer_or_own(
        &self,
        institution: i64,
        issuer: Option<&str>,
    ) -> Result<String, crate::ports::StoreError> {
        match issuer.map(str::trim) {
            Some(i) if !i.is_empty() => Ok(i.to_owned()),
            _ => {
                self.attribution
                    .default_issuer(self.index.as_ref(), institution, self.today())
                    .await
            }
        }
    }

    /// An identity number as the index looks it up (system and blind index).
    pub fn identity_key(
        &self,
        system: &str,
        value: &str,
    ) -> Result<crate::query::PersonKey, AdminError> {
        match self.person_search(crate::PatientLookup::Identifier { system, value })? {
            PersonSearch::Identifier(key) => Ok(key),
            _ => Err(AdminError::Invalid(format!(
                "{system} is not an identity-number system"
            ))),
        }
    }

    /// A read-only check that `issuer` may be named by a caller of `institution`: its own
    /// numbering, one it sends for, or an identity-number system. Nothing is claimed.
    pub async fn may_name(&self, institution: i64, issuer: &str) -> Result<(), AdminError> {
        use crate::numbering::Numbering;
        match self.numbering(issuer).await? {
            Numbering::Person | Numbering::Unclaimed => Ok(()),
            Numbering::Institution(id) => {
                let own = self
                    .attribution
                    .own_institutions(self.index.as_ref(), institution)
                    .await?;
                if own.iter().any(|(i, _)| *i == id) {
                    Ok(())
                } else {
                    Err(NumberingError::NotOwn(crate::numbering::NotOwnNumbering {
                        issuer: issuer.trim().to_owned(),
                    })
                    .into())
                }
            }
        }
    }
}
