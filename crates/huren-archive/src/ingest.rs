//! Ingest: from a spooled object to a durable, indexed, audited instance. Shared by the DIMSE
//! C-STORE SCP and STOW-RS; the adapters only translate [`IngestStatus`] into their protocol's
//! terms (PS3.4 §B.2.3 statuses, PS3.18 §10.5 responses).

use crate::IdentityPolicy;
use crate::model::{CommitOutcome, NewInstance, SealedIdentifier};
use crate::ports::{BytesDurable, StoreError};
use crate::spool::{Body, Spooled};
use crate::{Archive, time as ztime};
use huren_access::{AuditAction, AuditEvent, IngestGrant, Outcome, SenderKind};
use huren_dicom::charset::{Assumed, encoding_for_label};
use huren_mpi::id::Sex;
use huren_types::Uid;
use std::net::IpAddr;

/// Objects up to this size are synced while their rows are written (the commit waits for
/// both); larger ones are synced before their rows join a group, so that a group's commit
/// never waits behind one large object's sync (issue 22, item 2). A 512 × 512 16-bit slice
/// (512 KiB) is below it; measured syncs of such objects take under a millisecond.
const OVERLAP_MAX_BYTES: u64 = 1 << 20;

/// What the transport already knows about the object, to be checked against its content.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// C-STORE Affected SOP Class UID (0000,0002).
    pub sop_class_uid: Option<String>,
    /// C-STORE Affected SOP Instance UID (0000,1000).
    pub sop_instance_uid: Option<String>,
    /// STOW-RS `/studies/{study}`.
    pub study_instance_uid: Option<String>,
}

/// Per-sender settings that shape how an object is read and attributed.
#[derive(Debug, Clone, Default)]
pub struct SenderSettings {
    pub assumed_charset: Option<String>,
    pub stable_after_secs: Option<i64>,
    pub default_performer_id: Option<i64>,
}

pub struct IngestRequest {
    pub spooled: Spooled,
    pub expected: Expected,
    pub source: Option<IpAddr>,
    pub settings: SenderSettings,
}

/// Warnings per PS3.4 Table B.2-1: the object is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// 0xB000 "Coercion of data elements": index values were read differently from the
    /// declaration (assumed character set applied). The stored bytes are never changed.
    Coerced(String),
    /// 0xB006 "Elements discarded": repeated or out-of-order elements; the index keeps the first.
    ElementsDiscarded(String),
    /// 0xB007 "Data set does not match SOP class": e.g. an image SOP class without pixel data.
    DoesNotMatchSopClass(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 0xC000 "Cannot understand" (malformed, truncated, missing UIDs).
    CannotUnderstand(String),
    /// 0xA900 "Data set does not match SOP class" (error variant).
    DoesNotMatchSopClass(String),
    /// 0xA700 "Out of resources".
    OutOfResources(String),
    /// STOW-RS: the instance belongs to another study than the URL names (PS3.18 §10.5.3).
    StudyMismatch(String),
    /// 0x0124 "Refused: Not Authorized" (PS3.7 Annex C): the object names a patient record in
    /// another institution's numbering (IssuerOfPatientID; crate::numbering).
    NotAuthorized(String),
    /// 0xA7xx/0x0110 "Processing failure": the archive itself failed.
    Internal(String),
}

impl Warning {
    /// The PS3.4 Table B.2-1 warning status (also STOW-RS WarningReason).
    pub fn status(&self) -> u16 {
        match self {
            Warning::Coerced(_) => 0xB000,
            Warning::ElementsDiscarded(_) => 0xB006,
            Warning::DoesNotMatchSopClass(_) => 0xB007,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Warning::Coerced(m)
            | Warning::ElementsDiscarded(m)
            | Warning::DoesNotMatchSopClass(m) => m,
        }
    }
}

impl Refusal {
    /// The failure status (C-STORE status, STOW-RS FailureReason).
    pub fn status(&self) -> u16 {
        match self {
            Refusal::CannotUnderstand(_) => 0xC000,
            Refusal::DoesNotMatchSopClass(_) => 0xA900,
            Refusal::OutOfResources(_) => 0xA700,
            // No PS3.4 status names this (only STOW-RS can name a study in its URL); 0xC409 is
            // the value dcm4chee and others use — in the 0xCxxx "cannot understand" range.
            Refusal::StudyMismatch(_) => 0xC409,
            Refusal::NotAuthorized(_) => 0x0124,
            // 0x0110 "Processing failure" (PS3.7 §C.4.1.1.3).
            Refusal::Internal(_) => 0x0110,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Refusal::CannotUnderstand(m)
            | Refusal::DoesNotMatchSopClass(m)
            | Refusal::OutOfResources(m)
            | Refusal::StudyMismatch(m)
            | Refusal::NotAuthorized(m)
            | Refusal::Internal(m) => m,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestStatus {
    Stored {
        warnings: Vec<Warning>,
        outcome: CommitOutcome,
        sop_class_uid: String,
        sop_instance_uid: String,
        study_instance_uid: String,
        series_instance_uid: String,
    },
    Refused {
        refusal: Refusal,
        sop_class_uid: Option<String>,
        sop_instance_uid: Option<String>,
    },
}

/// SOP classes whose IOD requires pixel data (PS3.4 Annex B.5): a dataset of such a class with
/// no (7FE0,0010) is stored with warning 0xB007.
fn is_image_storage(sop_class: &str) -> bool {
    const IMAGE: &[&str] = &[
        "1.2.840.10008.5.1.4.1.1.1",     // CR
        "1.2.840.10008.5.1.4.1.1.1.1",   // DX presentation
        "1.2.840.10008.5.1.4.1.1.1.1.1", // DX processing
        "1.2.840.10008.5.1.4.1.1.1.2",   // MG presentation
        "1.2.840.10008.5.1.4.1.1.1.2.1", // MG processing
        "1.2.840.10008.5.1.4.1.1.2",     // CT
        "1.2.840.10008.5.1.4.1.1.2.1",   // Enhanced CT
        "1.2.840.10008.5.1.4.1.1.3.1",   // US multi-frame
        "1.2.840.10008.5.1.4.1.1.4",     // MR
        "1.2.840.10008.5.1.4.1.1.4.1",   // Enhanced MR
        "1.2.840.10008.5.1.4.1.1.6.1",   // US
        "1.2.840.10008.5.1.4.1.1.7",     // SC
        "1.2.840.10008.5.1.4.1.1.12.1",  // XA
        "1.2.840.10008.5.1.4.1.1.12.2",  // RF
        "1.2.840.10008.5.1.4.1.1.20",    // NM
        "1.2.840.10008.5.1.4.1.1.128",   // PET
    ];
    IMAGE.contains(&sop_class)
}

impl Archive {
    /// Ingests one spooled Part 10 object sent under `grant`. Returns only after the object and
    /// its index row are durable, or after it was refused (nothing kept).
    pub async fn ingest(&self, grant: &IngestGrant, req: IngestRequest) -> IngestStatus {
        let sender = grant.sender().clone();
        let actor = grant.principal().label();
        let source = req.source.map(|a| a.to_string());
        let status = self.ingest_inner(grant, req).await;
        if let IngestStatus::Refused {
            refusal,
            sop_instance_uid,
            ..
        } = &status
        {
            let ev = AuditEvent {
                action: AuditAction::InstanceRefused,
                outcome: Outcome::Failure,
                actor,
                institution: Some(sender.institution_code.to_string()),
                patient: None,
                study_uid: None,
                object: sop_instance_uid.clone(),
                source_address: source,
                detail: serde_json::json!({ "reason": refusal.message() }),
            };
            if let Err(e) = self.index.record_audit(ev).await {
                tracing::error!(error = %e, "could not record refusal audit event");
            }
        }
        status
    }

    async fn ingest_inner(&self, grant: &IngestGrant, req: IngestRequest) -> IngestStatus {
        let refuse = |refusal: Refusal| IngestStatus::Refused {
            refusal,
            sop_class_uid: None,
            sop_instance_uid: None,
        };
        let assumed = match req
            .settings
            .assumed_charset
            .as_deref()
            .and_then(encoding_for_label)
        {
            Some(enc) => Assumed::Override(enc),
            None => Assumed::Declared,
        };
        // Scanning reads the whole header: off the async workers.
        let scan = match req.spooled.body() {
            Body::Memory(bytes) => {
                let bytes = bytes.clone();
                tokio::task::spawn_blocking(move || huren_dicom::scan_part10_bytes(&bytes, assumed))
            }
            Body::File(guard) => {
                let path = guard.path().to_path_buf();
                tokio::task::spawn_blocking(move || huren_dicom::scan_part10(&path, assumed))
            }
        };
        let mut scanned = match scan.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return refuse(Refusal::CannotUnderstand(e.to_string())),
            Err(e) => return refuse(Refusal::Internal(format!("scan task failed: {e}"))),
        };
        let a = &scanned.attrs;
        let sop_class_uid = a.sop_class_uid.clone();
        let sop_instance_uid = a.sop_instance_uid.clone();
        let refuse = |refusal: Refusal| IngestStatus::Refused {
            refusal,
            sop_class_uid: sop_class_uid.clone(),
            sop_instance_uid: sop_instance_uid.clone(),
        };

        // Identity checks (PS3.4 §B.2.3; PS3.10 §7.1: the meta group must agree with the dataset).
        let uid = |v: &Option<String>, name: &str| -> Result<String, Refusal> {
            let raw = v
                .as_deref()
                .ok_or_else(|| Refusal::CannotUnderstand(format!("{name} is missing")))?;
            Uid::parse_lenient(raw)
                .map(|u| u.as_str().to_owned())
                .map_err(|e| Refusal::CannotUnderstand(format!("{name}: {e}")))
        };
        let ids = (|| -> Result<(String, String, String, String), Refusal> {
            Ok((
                uid(&a.sop_class_uid, "SOPClassUID (0008,0016)")?,
                uid(&a.sop_instance_uid, "SOPInstanceUID (0008,0018)")?,
                uid(&a.study_instance_uid, "StudyInstanceUID (0020,000D)")?,
                uid(&a.series_instance_uid, "SeriesInstanceUID (0020,000E)")?,
            ))
        })();
        let (sop_class, sop_instance, study_uid, series_uid) = match ids {
            Ok(ids) => ids,
            Err(r) => return refuse(r),
        };
        if let Some(expected) = &req.expected.sop_class_uid
            && expected.trim_end_matches(['\0', ' ']) != sop_class
        {
            return refuse(Refusal::DoesNotMatchSopClass(format!(
                "dataset SOPClassUID {sop_class} differs from the request's {expected}"
            )));
        }
        if let Some(expected) = &req.expected.sop_instance_uid
            && expected.trim_end_matches(['\0', ' ']) != sop_instance
        {
            return refuse(Refusal::CannotUnderstand(format!(
                "dataset SOPInstanceUID {sop_instance} differs from the request's {expected}"
            )));
        }
        // PS3.10 §7.1: the File Meta must describe the data set it precedes. For DIMSE the
        // meta is built from the C-STORE-RQ, so this also checks the request's SOP class.
        if scanned.meta.media_storage_sop_class_uid != sop_class {
            return refuse(Refusal::DoesNotMatchSopClass(format!(
                "data set SOPClassUID {sop_class} differs from MediaStorageSOPClassUID {}",
                scanned.meta.media_storage_sop_class_uid
            )));
        }
        if scanned.meta.media_storage_sop_instance_uid != sop_instance {
            return refuse(Refusal::CannotUnderstand(format!(
                "MediaStorageSOPInstanceUID {} differs from SOPInstanceUID {sop_instance}",
                scanned.meta.media_storage_sop_instance_uid
            )));
        }
        if let Some(study) = &req.expected.study_instance_uid
            && *study != study_uid
        {
            return refuse(Refusal::StudyMismatch(format!(
                "instance belongs to study {study_uid}, not {study}"
            )));
        }

        // An image whose pixel bytes do not match its own header is not a good image: shown, it
        // would be missing rows or carry stray bytes. Refused, so the sender still holds the
        // object and sees why (docs/ingest.md, "Damaged pixel data").
        if let Some(damage) = &scanned.pixel_damage {
            return refuse(Refusal::CannotUnderstand(damage.clone()));
        }
        let mut warnings = Vec::new();
        if is_image_storage(&sop_class) && !scanned.has_pixel_data {
            warnings.push(Warning::DoesNotMatchSopClass(format!(
                "{sop_class} is an image SOP class but the dataset has no Pixel Data"
            )));
        }
        if scanned.misordered_elements {
            warnings.push(Warning::ElementsDiscarded(
                "repeated or out-of-order elements: only the first occurrence is indexed".into(),
            ));
        }
        if scanned.charset_overridden {
            warnings.push(Warning::Coerced(
                "text decoded with the sender's assumed character set, not the declared one".into(),
            ));
        } else if !scanned.unknown_charset_terms.is_empty() {
            warnings.push(Warning::Coerced(format!(
                "unknown Specific Character Set {:?}; text decoded as UTF-8/GB18030",
                scanned.unknown_charset_terms
            )));
        }

        // Attribution: the performer is resolved from InstitutionName (configured mapping for
        // this sender), else the sender's default performer, else the sender's institution.
        let sender = grant.sender();
        let mut performer = req
            .settings
            .default_performer_id
            .unwrap_or(sender.institution_id);
        if let Some(name) = a.institution_name.as_deref() {
            match self
                .attribution
                .performer(self.index.as_ref(), sender.institution_id, name)
                .await
            {
                Ok(Some(id)) => performer = id,
                Ok(None) => {}
                Err(e) => return refuse(store_refusal(e)),
            }
        }
        let patient_issuer = match a.issuer_of_patient_id.clone() {
            Some(i) => i,
            None => match self
                .attribution
                .default_issuer(self.index.as_ref(), performer, self.today())
                .await
            {
                Ok(i) => i,
                Err(e) => return refuse(store_refusal(e)),
            },
        };
        // IssuerOfPatientID is the sender's claim about whose record this is: written only in
        // its own numbering, that of an institution it sends for, or a person's identity number.
        if a.issuer_of_patient_id.is_some() {
            match self
                .check_numbering(
                    sender.institution_id,
                    performer,
                    &patient_issuer,
                    &grant.principal().label(),
                )
                .await
            {
                Ok(()) => {}
                Err(crate::numbering::NumberingError::NotOwn(n)) => {
                    return refuse(Refusal::NotAuthorized(n.to_string()));
                }
                Err(crate::numbering::NumberingError::Store(e)) => {
                    return refuse(store_refusal(e));
                }
            }
        }
        // An object without PatientID (anonymised, phantom) gets a patient of its own study
        // rather than joining every other anonymous object.
        let patient_id = a
            .patient_id
            .clone()
            .unwrap_or_else(|| format!("~{study_uid}"));
        let study_instant = a
            .study_date
            .as_deref()
            .and_then(|d| ztime::instant(d, a.study_time.as_deref(), self.config.zone));

        // Identity numbers: sealed for the person index, and removed from what the index keeps
        // in the clear (attributes, DICOM JSON). The stored object itself stays byte-exact.
        let identifiers = match &self.config.identity {
            Some(policy) => take_identity_numbers(policy, &mut scanned, self.today()),
            None => Vec::new(),
        };
        let now = time::OffsetDateTime::now_utc();
        let id = uuid::Uuid::now_v7();
        // One of 256 bucket directories a day, from the UUID's random tail: creating files
        // in a single directory serialises every association on that directory's lock while
        // ext4 searches for a free inode near it (measured: most of the ingest threads' time
        // went there with 4 associations). Old keys without a bucket stay readable as stored.
        let blob_key = format!(
            "objects/{:04}/{:02}/{:02}/{:02x}/{}.dcm",
            now.year(),
            u8::from(now.month()),
            now.day(),
            id.as_bytes()[15],
            id
        );
        let (sender_ae_id, sender_token_id) = match &sender.kind {
            SenderKind::Dimse { ae_id, .. } => (Some(*ae_id), None),
            SenderKind::Token { token_id } => (None, Some(*token_id)),
            // A browser upload: the person is the audit event's actor.
            SenderKind::Person { .. } => (None, None),
        };
        let rec = NewInstance {
            sop_instance_uid: sop_instance.clone(),
            sop_class_uid: sop_class.clone(),
            study_instance_uid: study_uid.clone(),
            series_instance_uid: series_uid.clone(),
            transfer_syntax_uid: scanned.transfer_syntax.uid.to_owned(),
            sender_institution_id: sender.institution_id,
            sender_ae_id,
            sender_token_id,
            performing_institution_id: performer,
            patient_issuer: patient_issuer.clone(),
            patient_id: patient_id.clone(),
            attrs: scanned.attrs.clone(),
            study_instant,
            blob_key: blob_key.clone(),
            size: req.spooled.size,
            sha256: req.spooled.sha256.clone(),
            pixel_layout: serde_json::to_string(&scanned.pixel).unwrap_or_else(|_| "{}".into()),
            dicom_json_deflated: huren_dicom::json::deflate(&scanned.json),
            received_unix: now.unix_timestamp(),
            stable_after_secs: req
                .settings
                .stable_after_secs
                .unwrap_or(self.config.stable_after_secs),
            new_person_public_id: uuid::Uuid::now_v7().to_string(),
            name_key: scanned
                .attrs
                .patient_name
                .as_ref()
                .map(|n| huren_mpi::name::PersonName::from_dicom(&n.raw).sound_key())
                .filter(|k| !k.is_empty()),
            identifiers,
        };

        let audit = AuditEvent {
            action: AuditAction::InstanceStored,
            outcome: if warnings.is_empty() {
                Outcome::Success
            } else {
                Outcome::Warning
            },
            actor: grant.principal().label(),
            institution: Some(sender.institution_code.to_string()),
            patient: Some(format!("{patient_id}@{patient_issuer}")),
            study_uid: Some(study_uid.clone()),
            object: Some(sop_instance.clone()),
            source_address: req.source.map(|a| a.to_string()),
            detail: serde_json::json!({ "sop_class": sop_class, "bytes": rec.size, "blob": blob_key }),
        };
        // Durability order: the object's bytes are durable before its row commits. A crash
        // before the commit leaves an orphan object that the start-up sweep removes; never a
        // row without bytes. A small object is synced while the writer writes its rows (the
        // commit waits for the sync); a large one is synced first, so that no other
        // association's commit waits behind its sync (ARCHITECTURE.md, ingest step 6).
        let committed = if req.spooled.size <= OVERLAP_MAX_BYTES {
            let (report, durable) = BytesDurable::pending();
            let persist = async {
                let r = self.blobs.persist(req.spooled.body(), &blob_key).await;
                let _ = report.send(match &r {
                    Ok(()) => Ok(()),
                    Err(_) => Err(StoreError::broken("persisting the object failed")),
                });
                r
            };
            let (persisted, committed) =
                tokio::join!(persist, self.index.commit_instance(rec, audit, durable));
            if let Err(e) = persisted {
                return refuse(store_refusal(e));
            }
            committed
        } else {
            if let Err(e) = self.blobs.persist(req.spooled.body(), &blob_key).await {
                return refuse(store_refusal(e));
            }
            self.index
                .commit_instance(rec, audit, BytesDurable::already())
                .await
        };
        req.spooled.disarm();
        let outcome = match committed {
            Ok(o) => o,
            Err(e) => {
                let _ = self.blobs.delete(&blob_key).await;
                return refuse(store_refusal(e));
            }
        };
        if let CommitOutcome::Duplicate { .. } = outcome
            && let Err(e) = self.blobs.delete(&blob_key).await
        {
            tracing::warn!(error = %e, key = %blob_key, "duplicate's blob not removed; the sweep will");
        }
        trace_commit(&outcome);
        if !matches!(outcome, CommitOutcome::Duplicate { .. }) {
            self.link_new_record(&patient_issuer, &patient_id).await;
        }
        IngestStatus::Stored {
            warnings,
            outcome,
            sop_class_uid: sop_class,
            sop_instance_uid: sop_instance,
            study_instance_uid: study_uid,
            series_instance_uid: series_uid,
        }
    }
}

/// Finds resident identity numbers in OtherPatientIDsSequence items whose issuer the policy
/// names, seals valid ones (with whether they agree with the record's birth date and sex), and
/// removes every such item from the attributes and DICOM JSON the index keeps. Invalid numbers
/// are dropped too (logged): a mistyped number must not link anything, nor sit in the clear.
fn take_identity_numbers(
    policy: &IdentityPolicy,
    scanned: &mut huren_dicom::Scanned,
    today: time::Date,
) -> Vec<SealedIdentifier> {
    let a = &mut scanned.attrs;
    let birth = a.patient_birth_date.as_deref().and_then(ztime::parse_da);
    let sex = a.patient_sex.as_deref().and_then(Sex::from_code);
    let mut out: Vec<SealedIdentifier> = Vec::new();
    // One number per document system; invalid ones are logged and dropped.
    let seal = |number: &str, out: &mut Vec<SealedIdentifier>| match policy
        .seal_number(number, today, birth, sex)
    {
        Ok(s) if !out.iter().any(|x| x.system == s.system) => out.push(s),
        Ok(_) => {}
        Err(e) => tracing::info!(error = %e, "identity number ignored"),
    };
    // A configured attribute of the sender's own: read, sealed, and removed from the JSON.
    if let Some(tag) = &policy.resident_id_tag
        && let Some(obj) = scanned.json.as_object_mut()
        && let Some(el) = obj.remove(tag)
        && let Some(number) = el
            .get("Value")
            .and_then(|v| v.get(0))
            .and_then(|v| v.as_str())
    {
        seal(number, &mut out);
    }
    let mut removed = false;
    a.other_patient_ids.retain(|o| {
        if !o
            .issuer
            .as_deref()
            .is_some_and(|i| policy.is_resident_issuer(i))
        {
            return true;
        }
        removed = true;
        seal(&o.patient_id, &mut out);
        false
    });
    if removed {
        // (0010,1002) Other Patient IDs Sequence; items carry (0010,0021) IssuerOfPatientID.
        if let Some(items) = scanned
            .json
            .get_mut("00101002")
            .and_then(|e| e.get_mut("Value"))
            .and_then(|v| v.as_array_mut())
        {
            items.retain(|item| {
                let issuer = item
                    .get("00100021")
                    .and_then(|e| e.get("Value"))
                    .and_then(|v| v.get(0))
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                !policy.is_resident_issuer(issuer)
            });
        }
    }
    out
}

fn trace_commit(outcome: &CommitOutcome) {
    let kind = match outcome {
        CommitOutcome::Stored { .. } => "stored",
        CommitOutcome::Duplicate { .. } => "duplicate",
        CommitOutcome::NewVersion { .. } => "new_version",
        CommitOutcome::UidConflict { .. } => "uid_conflict",
    };
    tracing::debug!(kind, "instance committed");
}

pub(crate) fn store_refusal(e: StoreError) -> Refusal {
    match e {
        StoreError::OutOfSpace(m) => Refusal::OutOfResources(m),
        other => Refusal::Internal(other.to_string()),
    }
}
