//! Patients as persons (the master patient index's use cases): finding a person by identity
//! number, record or name within the reader's reach, the imaging timeline, the data steward's
//! link reviews and merge/unmerge.

use crate::*;
use huren_access::{AuditAction, Outcome};

impl Archive {
    /// Whether an identifier `system` names identity numbers on this server (the patient API
    /// and FHIR look those up by blind index, other systems as a record's own number).
    pub fn is_identity_system(&self, system: &str) -> bool {
        self.config
            .identity
            .as_ref()
            .is_some_and(|p| p.is_identity_system(system))
    }

    /// The lookup an identifier `system|value` means: an identity number (by blind index) when
    /// the system names identity numbers, else a record's own number under its authority.
    pub fn lookup_by<'a>(&self, system: &'a str, value: &'a str) -> PatientLookup<'a> {
        if self.is_identity_system(system) {
            PatientLookup::Identifier { system, value }
        } else {
            PatientLookup::Record {
                issuer: system,
                patient_id: value,
            }
        }
    }

    /// Persons matching a lookup, each with their records at every institution.
    pub async fn find_persons(
        &self,
        grant: &huren_access::ReadGrant,
        lookup: PatientLookup<'_>,
    ) -> Result<Vec<model::PersonHit>, AdminError> {
        let search = self.person_search(lookup)?;
        let (hits, reach) = self.persons_in_reach(grant, &search).await?;
        self.note_search(grant, &reach, &search, &hits).await;
        Ok(hits)
    }

    /// Persons matching a search, narrowed by the reader's reach; not audited as a search
    /// (for use cases that audit what they then read, such as the reminder).
    pub(crate) async fn find_persons_by(
        &self,
        grant: &huren_access::ReadGrant,
        search: model::PersonSearch,
    ) -> Result<Vec<model::PersonHit>, AdminError> {
        Ok(self.persons_in_reach(grant, &search).await?.0)
    }

    pub(crate) async fn persons_in_reach(
        &self,
        grant: &huren_access::ReadGrant,
        search: &model::PersonSearch,
    ) -> Result<(Vec<model::PersonHit>, reach::Reach), AdminError> {
        const LIMIT: u32 = 50;
        let reach = self.reach(grant).await?;
        let mut hits = self.index.find_persons(search, LIMIT).await?;
        match &reach {
            // A system sees a person it has no encounter with only through its institutions'
            // own records (those it has data of), and only those records.
            reach::Reach::Institution { institutions, .. } => {
                let keys: Vec<i64> = hits
                    .iter()
                    .filter(|h| !reach.allows(&h.person))
                    .flat_map(|h| h.records.iter().map(|r| r.patient_key))
                    .collect();
                let own: Vec<i64> = institutions.iter().map(|(id, _)| *id).collect();
                let mine = self.index.records_with_data_at(&keys, &own).await?;
                hits.retain_mut(|h| {
                    if !reach.allows(&h.person) {
                        h.records.retain(|r| mine.contains(&r.patient_key));
                    }
                    !h.records.is_empty()
                });
            }
            _ => hits.retain(|h| reach.allows(&h.person)),
        }
        Ok((hits, reach))
    }

    /// A patient search answered (patient API, FHIR Patient search, PIXm, a reminder's lookup):
    /// one `patient_data_accessed` event per search, naming the persons shown, since the
    /// answer carries names, birth dates and record numbers. What was searched for is named
    /// by kind only (an identity number or a name is never written to the trail).
    pub(crate) async fn note_search(
        &self,
        grant: &huren_access::ReadGrant,
        reach: &reach::Reach,
        search: &model::PersonSearch,
        hits: &[model::PersonHit],
    ) {
        let (by, system) = match search {
            model::PersonSearch::Identifier(k) => ("identity_number", Some(k.system.clone())),
            model::PersonSearch::Record { issuer, .. } => ("record_number", Some(issuer.clone())),
            model::PersonSearch::NamePrefix { .. } => ("name", None),
        };
        let persons: Vec<&str> = hits.iter().map(|h| h.person.as_str()).collect();
        let ev = huren_access::AuditEvent {
            action: huren_access::AuditAction::PatientDataAccessed,
            outcome: Outcome::Success,
            actor: grant.principal().label(),
            institution: match grant.principal() {
                huren_access::Principal::User(u) => Some(u.institution_code.to_string()),
                huren_access::Principal::System(s) => Some(s.institution_code.to_string()),
                _ => None,
            },
            patient: match persons.as_slice() {
                [one] => Some(format!("person:{one}")),
                _ => None,
            },
            study_uid: None,
            object: Some("patient-search".into()),
            source_address: None,
            detail: serde_json::json!({
                "purpose": reach.purpose(),
                "by": by,
                "system": system,
                "results": persons.len(),
                "persons": persons,
            }),
        };
        if let Err(e) = self.index.record_audit(ev).await {
            tracing::error!(error = %e, "could not record a patient search");
        }
    }

    /// A lookup as the index searches it (identity numbers by blind index).
    pub(crate) fn person_search(
        &self,
        lookup: PatientLookup<'_>,
    ) -> Result<model::PersonSearch, AdminError> {
        Ok(match lookup {
            PatientLookup::Identifier { system, value } => {
                let Some(policy) = &self.config.identity else {
                    return Err(AdminError::Invalid(
                        "identity numbers are not configured on this server (mpi keys)".into(),
                    ));
                };
                if !policy.is_identity_system(system) {
                    return Err(AdminError::Invalid(format!(
                        "unknown identifier system {system}"
                    )));
                }
                let key = policy
                    .person_key(value, self.today())
                    .map_err(|e| AdminError::Invalid(format!("identity number: {e}")))?;
                model::PersonSearch::Identifier(key)
            }
            PatientLookup::Record { issuer, patient_id } => model::PersonSearch::Record {
                issuer: issuer.to_owned(),
                patient_id: patient_id.to_owned(),
            },
            PatientLookup::Name(prefix) => {
                let prefix = prefix.trim();
                if prefix.is_empty() {
                    return Err(AdminError::Invalid("name is empty".into()));
                }
                model::PersonSearch::NamePrefix {
                    prefix: prefix.to_owned(),
                    sound_prefix: huren_mpi::name::PersonName::from_dicom(prefix).sound_key(),
                }
            }
        })
    }

    /// A person's imaging studies and lab results at every institution, each newest first
    /// (patient timeline).
    pub async fn timeline(
        &self,
        grant: &huren_access::ReadGrant,
        person: &str,
        limit: u32,
    ) -> Result<Option<model::Timeline>, AdminError> {
        self.timeline_as_of(grant, person, limit, None).await
    }

    /// The timeline as it stood at `as_of` (unix seconds): results and reports received by
    /// then, each as it was then (recognition re-checked as of a date, issue #17).
    pub(crate) async fn timeline_as_of(
        &self,
        grant: &huren_access::ReadGrant,
        person: &str,
        limit: u32,
        as_of: Option<i64>,
    ) -> Result<Option<model::Timeline>, AdminError> {
        let Some(parts) = self.admit_person(grant, person).await? else {
            return Ok(None);
        };
        let catalog = self.catalog_snapshot().await?;
        self.read_timeline(person, limit, as_of, parts, &catalog)
            .await
    }

    /// Whether the reader may read the person (audited either way): `Some((images, results))`,
    /// the parts they may read (a patient may have opened only one), or `None`.
    pub(crate) async fn admit_person(
        &self,
        grant: &huren_access::ReadGrant,
        person: &str,
    ) -> Result<Option<(bool, bool)>, AdminError> {
        let reach = self.reach(grant).await?;
        let allowed = reach.allows(person);
        self.note_person_read(grant, &reach, person, allowed).await;
        Ok(allowed.then(|| reach.parts(person)))
    }

    /// The timeline of an admitted person (see [`Archive::admit_person`]), each result mapped
    /// to its catalog item with `catalog`; `None` for an unknown person.
    pub(crate) async fn read_timeline(
        &self,
        person: &str,
        limit: u32,
        as_of: Option<i64>,
        (images, results): (bool, bool),
        catalog: &catalog::Snapshot,
    ) -> Result<Option<model::Timeline>, AdminError> {
        let limit = limit.clamp(1, 1000);
        let Some(mut studies) = self.index.person_studies(person, limit, as_of).await? else {
            return Ok(None);
        };
        // Which catalog item each result is: study rules for images, code mappings (or
        // LOINC) for lab results.
        for s in &mut studies {
            let facts = huren_catalog::StudyFacts {
                institution: s.performing_institution.clone(),
                modalities: s.modalities.split('\\').map(str::to_owned).collect(),
                body_parts: s
                    .body_parts
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
                description: s.description.clone(),
                procedure_code: None,
            };
            s.catalog_item =
                huren_catalog::match_study(&catalog.rules, &facts).map(|r| r.item_code.clone());
        }
        let mut lab_results = self.index.person_lab_results(person, limit, as_of).await?;
        for r in &mut lab_results {
            r.catalog_item =
                catalog.lab(&r.performing_institution, r.code_system.as_deref(), &r.code);
        }
        let reports = self.index.person_reports(person, limit, as_of).await?;
        Ok(Some(model::Timeline {
            studies: if images { studies } else { Vec::new() },
            lab_results: if results { lab_results } else { Vec::new() },
            reports: if results { reports } else { Vec::new() },
        }))
    }

    /// The data stewards' queue: record pairs the link rules would not decide alone.
    pub async fn link_reviews(
        &self,
        grant: &huren_access::StewardGrant,
        state: &str,
        limit: u32,
    ) -> Result<Vec<model::LinkReview>, AdminError> {
        if !matches!(state, "open" | "linked" | "rejected") {
            return Err(AdminError::Invalid(
                "state is open, linked or rejected".into(),
            ));
        }
        let mut list = self.index.link_reviews(state, limit.clamp(1, 1000)).await?;
        if grant.institution().is_some() {
            let mut kept = Vec::with_capacity(list.len());
            for r in list {
                if self.steward_owns(grant, &r.a.issuer).await?
                    || self.steward_owns(grant, &r.b.issuer).await?
                {
                    kept.push(r);
                }
            }
            list = kept;
        }
        // The queue shows names, birth dates and record numbers: a read of each person shown.
        let reads: Vec<reach::Read> = list
            .iter()
            .flat_map(|r| [&r.a.person, &r.b.person])
            .map(|p| reach::Read::person(p))
            .collect();
        self.note_steward_reads(grant, reads).await;
        Ok(list)
    }

    /// Whether a record under `issuer` is the steward's institution's: its numbering or that
    /// of an institution it sends for (crate::numbering). Every record is the console's.
    pub(crate) async fn steward_owns(
        &self,
        grant: &huren_access::StewardGrant,
        issuer: &str,
    ) -> Result<bool, AdminError> {
        let Some(inst) = grant.institution() else {
            return Ok(true);
        };
        Ok(match self.numbering(issuer).await? {
            numbering::Numbering::Institution(id) => self
                .attribution
                .own_institutions(self.index.as_ref(), inst)
                .await?
                .iter()
                .any(|(i, _)| *i == id),
            _ => false,
        })
    }

    /// A steward's reads of persons (the review queue, a person's records and history):
    /// audited like any read of patient data, with purpose `operations`.
    pub(crate) async fn note_steward_reads(
        &self,
        grant: &huren_access::StewardGrant,
        reads: Vec<reach::Read>,
    ) {
        let events: Vec<huren_access::AuditEvent> = reads
            .into_iter()
            .map(|r| huren_access::AuditEvent {
                action: AuditAction::PatientDataAccessed,
                outcome: Outcome::Success,
                actor: grant.principal().label(),
                institution: match grant.principal() {
                    huren_access::Principal::User(u) => Some(u.institution_code.to_string()),
                    _ => None,
                },
                patient: r.patient,
                study_uid: None,
                object: Some(r.object),
                source_address: None,
                detail: serde_json::json!({ "purpose": "operations", "as": "data steward" }),
            })
            .collect();
        for ev in events {
            if let Err(e) = self.index.record_audit(ev).await {
                tracing::error!(error = %e, "could not record a steward's read");
            }
        }
    }

    /// Refuses a steward's change unless one of the persons holds a record of their
    /// institution — the rule for review pairs too: a cross-institution match is decided by a
    /// steward of either side. A merged person is judged by the person it was merged into.
    pub(crate) async fn steward_may_touch(
        &self,
        grant: &huren_access::StewardGrant,
        persons: &[&str],
    ) -> Result<(), AdminError> {
        if grant.institution().is_none() {
            return Ok(());
        }
        for p in persons {
            let mut next = Some((*p).to_owned());
            // A merge chain is short; bounded all the same.
            for _ in 0..8 {
                let Some(id) = next.take() else { break };
                let Some(v) = self.index.person(&id).await? else {
                    break;
                };
                for r in &v.records {
                    if self.steward_owns(grant, &r.issuer).await? {
                        return Ok(());
                    }
                }
                next = v.merged_into;
            }
        }
        Err(AdminError::Forbidden(format!(
            "none of {} holds a record of this steward's institution",
            persons.join(", ")
        )))
    }

    /// A steward's decision on a review pair: link (the two records' persons become one) or
    /// reject. Audited; refused when it would join two different identity numbers.
    pub async fn decide_link_review(
        &self,
        grant: &huren_access::StewardGrant,
        id: i64,
        link: bool,
        reason: &str,
    ) -> Result<model::LinkReview, AdminError> {
        let reason = required_reason(reason)?;
        if grant.institution().is_some() {
            let ours = match self.index.link_review(id).await? {
                Some(r) => {
                    self.steward_owns(grant, &r.a.issuer).await?
                        || self.steward_owns(grant, &r.b.issuer).await?
                }
                None => false,
            };
            if !ours {
                return Err(AdminError::Invalid(format!(
                    "review {id} is not this steward's institution's"
                )));
            }
        }
        let actor = grant.principal().label();
        let review = self
            .index
            .decide_link_review(id, link, &actor, reason)
            .await?;
        self.audit_admin(
            AuditAction::PersonLinksChanged,
            &actor,
            format!("link_review:{id}"),
            serde_json::json!({ "decision": review.state, "reason": reason, "a": review.a.patient_key, "b": review.b.patient_key }),
        )
        .await;
        Ok(review)
    }

    /// Merges person `merged` into another, or undoes its merge (exactly the records that
    /// merge moved go back). History is kept either way; audited.
    pub async fn change_person(
        &self,
        grant: &huren_access::StewardGrant,
        merged: &str,
        change: PersonChange<'_>,
        reason: &str,
    ) -> Result<usize, AdminError> {
        let reason = required_reason(reason)?;
        match &change {
            PersonChange::MergeInto(survivor) => {
                self.steward_may_touch(grant, &[merged, survivor]).await?
            }
            PersonChange::Unmerge => self.steward_may_touch(grant, &[merged]).await?,
        }
        let actor = grant.principal().label();
        let (moved, detail) = match change {
            PersonChange::MergeInto(survivor) => {
                let n = self
                    .index
                    .merge_persons(survivor, merged, &actor, reason)
                    .await?;
                (
                    n,
                    serde_json::json!({ "merged_into": survivor, "records": n, "reason": reason }),
                )
            }
            PersonChange::Unmerge => {
                let n = self.index.unmerge_person(merged, &actor, reason).await?;
                (
                    n,
                    serde_json::json!({ "unmerged": true, "records": n, "reason": reason }),
                )
            }
        };
        self.audit_admin(
            AuditAction::PersonLinksChanged,
            &actor,
            format!("person:{merged}"),
            detail,
        )
        .await;
        Ok(moved)
    }

    pub async fn person(
        &self,
        grant: &huren_access::StewardGrant,
        public_id: &str,
    ) -> Result<Option<model::PersonView>, AdminError> {
        if self.steward_may_touch(grant, &[public_id]).await.is_err() {
            return Ok(None);
        }
        let view = self.index.person(public_id).await?;
        if view.is_some() {
            self.note_steward_reads(grant, vec![reach::Read::person(public_id)])
                .await;
        }
        Ok(view)
    }

    /// A person and their records, for reading (FHIR Patient); the link history is the
    /// stewards' business and is left out.
    pub async fn person_records(
        &self,
        grant: &huren_access::ReadGrant,
        public_id: &str,
    ) -> Result<Option<model::PersonView>, AdminError> {
        let reach = self.reach(grant).await?;
        let allowed = reach.allows(public_id);
        self.note_person_read(grant, &reach, public_id, allowed)
            .await;
        if !allowed {
            return Ok(None);
        }
        Ok(self.index.person(public_id).await?.map(|mut p| {
            p.history.clear();
            p
        }))
    }
}
