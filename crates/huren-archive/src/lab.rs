//! Lab results and reports over HL7 v2 (issue #5): an accepted ORU^R01 becomes one
//! transaction — the message (its MSH-10 per sender, for idempotent resends), the patient
//! record and its person, identity numbers (sealed), and one result per OBX — and is
//! acknowledged only after that commit. Refusals use HL7's terms (`huren_hl7::Refusal`).

use crate::model::{
    Hl7Sender, NewLabResult, NewOrder, NewOru, OruOutcome, ResultPatient, ResultSource,
    SealedIdentifier,
};
use crate::{Archive, NumberError, time as ztime};
use huren_access::{AuditAction, AuditEvent, Outcome};
use huren_hl7::{AckCode, Message, Refusal};
use huren_labs::hl7::comps;
use huren_mpi::id::Sex;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// The registered senders, read at most every ten seconds (every message needs them);
/// registrations through this process clear it at once, the CLI's are seen within ten seconds.
#[derive(Default)]
pub(crate) struct SenderCache(
    std::sync::Mutex<Option<(std::time::Instant, std::sync::Arc<Vec<Hl7Sender>>)>>,
);

impl SenderCache {
    const TTL: std::time::Duration = std::time::Duration::from_secs(10);

    fn get(&self) -> Option<std::sync::Arc<Vec<Hl7Sender>>> {
        let guard = self.0.lock().ok()?;
        guard
            .as_ref()
            .filter(|(at, _)| at.elapsed() < Self::TTL)
            .map(|(_, s)| s.clone())
    }

    fn put(&self, senders: std::sync::Arc<Vec<Hl7Sender>>) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some((std::time::Instant::now(), senders));
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut g) = self.0.lock() {
            *g = None;
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    Refusal::new(AckCode::AE, 207, format!("not stored: {e}"))
}

/// HL7 table 0203: MR medical record number, PI patient internal identifier.
fn is_mrn(kind: &str) -> bool {
    matches!(kind, "MR" | "PI")
}

impl Archive {
    /// The registered sender for a connection's address and the message's MSH-4.
    pub async fn hl7_sender(
        &self,
        addr: IpAddr,
        facility: Option<&str>,
    ) -> Result<Option<Hl7Sender>, crate::ports::StoreError> {
        let senders = match self.hl7_senders.get() {
            Some(s) => s,
            None => {
                let s = std::sync::Arc::new(self.index.hl7_senders().await?);
                self.hl7_senders.put(s.clone());
                s
            }
        };
        Ok(crate::model::match_hl7_sender(&senders, addr, facility).cloned())
    }

    /// Stores an ORU^R01 already checked by `huren_hl7::check_oru`. `Ok` only after the
    /// commit (or for a resend of a stored message).
    pub async fn ingest_oru(
        &self,
        sender: &Hl7Sender,
        m: &Message,
        raw: &[u8],
        source: IpAddr,
    ) -> Result<OruOutcome, Refusal> {
        let result = self.ingest_oru_inner(sender, m, raw, source).await;
        if let Err(r) = &result {
            let ev = AuditEvent {
                action: AuditAction::ResultsRefused,
                outcome: Outcome::Failure,
                actor: format!("hl7:{}", sender.id),
                institution: Some(sender.institution_code.clone()),
                patient: None,
                study_uid: None,
                object: m.get("MSH", 10, 1).map(|c| format!("hl7:{c}")),
                source_address: Some(source.to_string()),
                detail: serde_json::json!({ "code": r.code, "reason": r.text }),
            };
            if let Err(e) = self.index.record_audit(ev).await {
                tracing::error!(error = %e, "could not record refusal audit event");
            }
        }
        result
    }

    async fn ingest_oru_inner(
        &self,
        sender: &Hl7Sender,
        m: &Message,
        raw: &[u8],
        source_ip: IpAddr,
    ) -> Result<OruOutcome, Refusal> {
        let pid = m
            .segments("PID")
            .next()
            .ok_or_else(|| Refusal::new(AckCode::AE, 100, "no PID segment"))?;
        // PID-3: the record's own identifier (MR/PI, else the first that is not an identity
        // number) and identity numbers (type NI, or an authority named as such).
        let today = self.today();
        let birth_date = pid
            .get(7, 1)
            .map(|b| b.chars().take(8).collect::<String>())
            .filter(|b| b.len() == 8 && b.chars().all(|c| c.is_ascii_digit()));
        let sex = pid.get(8, 1).map(str::to_owned);
        let birth = birth_date.as_deref().and_then(ztime::parse_da);
        let mut record: Option<(String, Option<String>, String)> = None;
        let mut identifiers: Vec<SealedIdentifier> = Vec::new();
        for rep in pid.fields.get(2).map(Vec::as_slice).unwrap_or_default() {
            let part = |k: usize| {
                rep.get(k)
                    .and_then(|s| s.first())
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
            };
            let (Some(id), authority, kind) = (part(0), part(3), part(4).unwrap_or_default())
            else {
                continue;
            };
            let is_identity = kind == "NI"
                || self.config.identity.as_ref().is_some_and(|p| {
                    authority
                        .as_deref()
                        .is_some_and(|a| p.is_resident_issuer(a))
                });
            if is_identity {
                let Some(policy) = &self.config.identity else {
                    continue;
                };
                let sealed = policy
                    .seal_number(&id, today, birth, sex.as_deref().and_then(Sex::from_code))
                    .map_err(|e| match e {
                        NumberError::Invalid(e) => {
                            Refusal::new(AckCode::AE, 102, format!("PID-3 identity number: {e}"))
                                .at("PID", 1, 3)
                        }
                        NumberError::Seal(e) => internal(e),
                    })?;
                identifiers.push(sealed);
            } else if record
                .as_ref()
                .is_none_or(|r| !is_mrn(&r.2) && is_mrn(&kind))
            {
                // The first identifier, unless a later one is typed as the record number.
                record = Some((id, authority, kind));
            }
        }
        let (patient_id, authority, _) = record.ok_or_else(|| {
            Refusal::new(
                AckCode::AE,
                101,
                "PID-3 has no patient identifier other than an identity number",
            )
            .at("PID", 1, 3)
        })?;
        let patient_issuer = match authority {
            Some(a) => a,
            None => self
                .attribution
                .default_issuer(self.index.as_ref(), sender.institution_id, self.today())
                .await
                .map_err(internal)?,
        };
        let name_parts = comps(pid, 5);
        let name = {
            let family = name_parts.first().cloned().unwrap_or_default();
            let given = name_parts.get(1).cloned().unwrap_or_default();
            let n = if given.is_empty() {
                family
            } else {
                format!("{family}^{given}")
            };
            (!n.trim_matches('^').is_empty()).then_some(n)
        };
        // Orders and results: the one HL7 → model mapping (huren_labs::hl7).
        let orders = huren_labs::hl7::orders(m, self.config.zone)?;
        // The performing lab (OBX-23) maps to an institution like DICOM's InstitutionName.
        let mut performer = sender.institution_id;
        if let Some(lab) = orders
            .iter()
            .flat_map(|o| &o.results)
            .find_map(|r| r.performing_lab.clone())
            && let Ok(Some(p)) = self
                .attribution
                .performer(self.index.as_ref(), sender.institution_id, &lab)
                .await
        {
            performer = p;
        }
        // PID-3.4 is the sender's claim about whose record this is: only its own numbering (or
        // that of an institution it sends for) is written (crate::numbering).
        if let Err(e) = self
            .check_numbering(
                sender.institution_id,
                performer,
                &patient_issuer,
                &format!("hl7:{}", sender.id),
            )
            .await
        {
            return Err(match e {
                crate::numbering::NumberingError::NotOwn(n) => {
                    Refusal::new(AckCode::AR, 207, n.to_string()).at("PID", 1, 3)
                }
                crate::numbering::NumberingError::Store(e) => internal(e),
            });
        }
        let control_id = m.get("MSH", 10, 1).unwrap_or_default().to_owned();
        let source = ResultSource::Hl7 {
            sender_id: sender.id,
            control_id: control_id.clone(),
            message_type: "ORU^R01".into(),
            version: m.get("MSH", 12, 1).unwrap_or_default().to_owned(),
            sha256: hex::encode(Sha256::digest(raw)),
        };
        let patient = ResultPatient {
            issuer: patient_issuer,
            patient_id,
            name,
            birth_date,
            sex,
            identifiers,
        };
        let audit = AuditEvent {
            action: AuditAction::ResultsStored,
            outcome: Outcome::Success,
            actor: format!("hl7:{}", sender.id),
            institution: Some(sender.institution_code.clone()),
            patient: None,
            study_uid: None,
            object: Some(format!("hl7:{control_id}")),
            source_address: Some(source_ip.to_string()),
            detail: serde_json::Value::Null,
        };
        self.store_results(source, performer, patient, orders, Vec::new(), audit)
            .await
            .map_err(internal)
    }

    /// Stores one batch of orders and results for one patient record in one transaction —
    /// the step HL7 v2 and FHIR share. The audit event gets the patient and the counts.
    pub async fn store_results(
        &self,
        source: ResultSource,
        performer: i64,
        patient: ResultPatient,
        orders: Vec<NewOrder>,
        loose_results: Vec<NewLabResult>,
        mut audit: AuditEvent,
    ) -> Result<OruOutcome, crate::ports::StoreError> {
        let name = patient.name;
        let han = name
            .as_deref()
            .is_some_and(|n| n.chars().any(huren_mpi::name::is_han));
        let oru = NewOru {
            source,
            performing_institution_id: performer,
            patient_issuer: patient.issuer.clone(),
            patient_id: patient.patient_id.clone(),
            name_alphabetic: name.clone().filter(|_| !han),
            name_ideographic: name.clone().filter(|_| han),
            name_key: name
                .as_deref()
                .map(|n| huren_mpi::name::PersonName::from_dicom(n).sound_key())
                .filter(|k| !k.is_empty()),
            patient_name: name,
            birth_date: patient.birth_date,
            sex: patient.sex,
            new_person_public_id: uuid::Uuid::now_v7().to_string(),
            identifiers: patient.identifiers,
            orders,
            loose_results,
        };
        audit.patient = Some(format!("{}@{}", patient.patient_id, patient.issuer));
        if audit.detail.is_null() {
            audit.detail = serde_json::json!({
                "results": oru.result_count(),
                "orders": oru.orders.len(),
            });
        }
        let outcome = self.index.commit_oru(oru, audit).await?;
        if let OruOutcome::Stored { .. } = outcome {
            self.link_new_record(&patient.issuer, &patient.patient_id)
                .await;
        }
        Ok(outcome)
    }
}
