//! Imaging use cases after ingest: the start-up sweep, study stability, query (QIDO-RS and
//! C-FIND through one `find`), instance and series metadata with its cache, counts.

use crate::*;
use huren_access::Outcome;
use ports::StoreError;

impl Archive {
    /// Start-up recovery: removes spool leftovers and blobs that no index row references in the
    /// partitions written since the last clean sweep (a crash between blob fsync and index
    /// commit). Returns the number of orphans removed.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        if let Ok(mut rd) = tokio::fs::read_dir(self.blobs.spool_dir()).await {
            while let Ok(Some(e)) = rd.next_entry().await {
                if tokio::fs::remove_file(e.path()).await.is_ok() {
                    removed += 1;
                }
            }
        }
        let today = ::time::OffsetDateTime::now_utc().date();
        let from = match self.index.sweep_watermark().await? {
            Some(p) => huren_types::day::parse_iso(&p).unwrap_or(today),
            // First start: sweep everything once.
            None => ::time::Date::MIN,
        };
        let partitions: Vec<String> = if from == ::time::Date::MIN {
            vec!["objects/".to_string()]
        } else {
            // The day before the watermark too: a crash just after midnight UTC.
            let mut v = Vec::new();
            let mut d = from.previous_day().unwrap_or(from);
            while d <= today {
                v.push(format!(
                    "objects/{:04}/{:02}/{:02}/",
                    d.year(),
                    u8::from(d.month()),
                    d.day()
                ));
                match d.next_day() {
                    Some(n) => d = n,
                    None => break,
                }
            }
            v
        };
        // Objects written since this instant may belong to an ingest still committing on
        // another node that shares the store.
        let settled_before = std::time::SystemTime::now() - self.blobs.orphan_grace();
        for prefix in partitions {
            let blobs = self.blobs.list(&prefix).await?;
            if blobs.is_empty() {
                continue;
            }
            let known: std::collections::HashSet<String> = self
                .index
                .blob_keys_with_prefix(&prefix)
                .await?
                .into_iter()
                .collect();
            for ports::Listed { key, modified } in blobs {
                if !known.contains(&key) && modified <= settled_before {
                    tracing::warn!(key, "removing orphan blob (written but never indexed)");
                    self.blobs.delete(&key).await?;
                    removed += 1;
                }
            }
        }
        self.index
            .set_sweep_watermark(&huren_types::day::iso(today))
            .await?;
        Ok(removed)
    }

    /// One pass of the stability check; the server calls it periodically.
    pub async fn mark_stable(&self) -> Result<Vec<i64>, StoreError> {
        self.index
            .mark_stable_studies(::time::OffsetDateTime::now_utc().unix_timestamp())
            .await
    }

    /// Query at any level (QIDO-RS, C-FIND). The page is bounded by the caller.
    pub async fn find(
        &self,
        grant: &huren_access::ReadGrant,
        q: &query::Query,
    ) -> Result<Vec<query::Match>, StoreError> {
        let reach = self.reach(grant).await?;
        let scoped;
        let q = match reach.keys() {
            None => q,
            Some(k) => {
                scoped = query::Query {
                    persons_in: Some(k),
                    institutions_or: reach.institution_ids(),
                    ..q.clone()
                };
                &scoped
            }
        };
        let found = match self.by_identity_number(q) {
            PersonQuery::Ordinary => self.index.find(q).await?,
            PersonQuery::Person(q) => self.index.find(&q).await?,
            // An invalid number belongs to nobody.
            PersonQuery::NoSuchNumber => Vec::new(),
        };
        self.note_reads(grant, &reach, study_reads(&found), Outcome::Success)
            .await;
        Ok(found)
    }

    /// The web viewer's study browser (issue #19): OHIF asks for "the patient's other studies"
    /// by PatientID alone (`/dicom-web/studies?PatientID=…`), and two hospitals may number
    /// different people with the same PatientID. The question is answered for the person the
    /// doctor opened (the persons of `opened`, most recent first, that hold a record with this
    /// PatientID and whose images the reader reaches): every study of that person the reader
    /// reaches, across institutions, under the query's other conditions — never another
    /// person's. `None` when no opened person holds such a record.
    pub async fn find_for_opened(
        &self,
        grant: &huren_access::ReadGrant,
        q: &query::Query,
        patient_id: &str,
        opened: &[String],
    ) -> Result<Option<Vec<query::Match>>, StoreError> {
        use query::Key;
        let reach = self.reach(grant).await?;
        for person in opened {
            if !reach.allows(person) || !reach.parts(person).0 {
                continue;
            }
            let Some(view) = self.index.person(person).await? else {
                continue;
            };
            if !view.records.iter().any(|r| r.patient_id == patient_id) {
                continue;
            }
            // The internal key the index scopes by. A reader who reaches everyone (a regional
            // service) has no list of keys: its query is answered as asked, by the caller.
            let key = match &reach {
                reach::Reach::Persons(p) => p.iter().find(|r| &r.id == person).map(|r| r.key),
                reach::Reach::Institution { persons, .. } => {
                    persons.iter().find(|(_, id)| id == person).map(|(k, _)| *k)
                }
                reach::Reach::All => None,
            };
            let Some(key) = key else {
                continue;
            };
            let mut scoped = q.clone();
            scoped
                .conditions
                .retain(|c| c.key != Key::PatientId && c.key != Key::IssuerOfPatientId);
            scoped.person = None;
            scoped.persons_in = Some(vec![key]);
            scoped.institutions_or = None;
            let found = self.index.find(&scoped).await?;
            self.note_reads(grant, &reach, study_reads(&found), Outcome::Success)
                .await;
            return Ok(Some(found));
        }
        Ok(None)
    }

    /// A study asked for by UID that the reader does not reach, or that does not exist (the
    /// answers are the same, 404): recorded as a refused read of that study.
    pub async fn note_study_not_found(&self, grant: &huren_access::ReadGrant, study_uid: &str) {
        let reach = match self.reach(grant).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reach not read for a refused read's audit event");
                return;
            }
        };
        let read = reach::Read {
            object: format!("study:{study_uid}"),
            patient: None,
            study_uid: Some(study_uid.to_owned()),
        };
        self.note_reads(grant, &reach, vec![read], Outcome::Failure)
            .await;
    }

    /// A person's data read (or refused): the audit event's object is the person.
    pub(crate) async fn note_person_read(
        &self,
        grant: &huren_access::ReadGrant,
        reach: &reach::Reach,
        person: &str,
        allowed: bool,
    ) {
        let read = reach::Read::person(person);
        let outcome = if allowed {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        self.note_reads(grant, reach, vec![read], outcome).await;
    }

    /// PatientID with an identity-number IssuerOfPatientID (a national system URI or one of
    /// the configured DICOM issuer names) asks for a *person*: every record, at every
    /// institution, linked to the holder of that number. Matches keep their own PatientID and
    /// issuer. The number is looked up by its blind index, never in the clear.
    pub(crate) fn by_identity_number(&self, q: &query::Query) -> PersonQuery {
        use query::{Key, Matcher};
        let Some(policy) = &self.config.identity else {
            return PersonQuery::Ordinary;
        };
        let single = |key: Key| {
            q.conditions
                .iter()
                .find_map(|c| match (&c.matcher, c.key == key) {
                    (Matcher::Single(v), true) => Some(v.clone()),
                    _ => None,
                })
        };
        let (Some(number), Some(issuer)) = (single(Key::PatientId), single(Key::IssuerOfPatientId))
        else {
            return PersonQuery::Ordinary;
        };
        if !policy.is_identity_system(&issuer) {
            return PersonQuery::Ordinary;
        }
        let Ok(key) = policy.person_key(&number, self.today()) else {
            return PersonQuery::NoSuchNumber;
        };
        let mut person_q = q.clone();
        person_q
            .conditions
            .retain(|c| c.key != Key::PatientId && c.key != Key::IssuerOfPatientId);
        person_q.person = Some(key);
        PersonQuery::Person(person_q)
    }

    /// Instances' DICOM JSON as built at ingest, with the current patient module overlaid
    /// (PS3.18 §10.4.1.2 metadata). Bulk data URIs stay relative (`bulk/…`); the adapter
    /// makes them absolute.
    pub async fn instance_metadata(
        &self,
        _grant: &huren_access::ReadGrant,
        instances: &[query::Match],
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
        let keys: Vec<i64> = instances.iter().filter_map(|m| m.instance_key).collect();
        let docs: std::collections::HashMap<i64, Vec<u8>> = self
            .index
            .instance_documents(&keys)
            .await?
            .into_iter()
            .collect();
        let mut out = Vec::with_capacity(instances.len());
        for m in instances {
            let Some(raw) = m.instance_key.and_then(|k| docs.get(&k)) else {
                continue;
            };
            let mut doc = match huren_dicom::json::inflate(raw) {
                Ok(serde_json::Value::Object(o)) => o,
                _ => {
                    return Err(StoreError::broken(format!(
                        "stored metadata of {:?} is unreadable",
                        m.sop_instance_uid
                    )));
                }
            };
            query::overlay_patient(&mut doc, m);
            out.push(doc);
        }
        Ok(out)
    }

    /// The current ETag of a series' metadata, when the (study, series) UIDs name exactly one
    /// series (the same UIDs from two institutions are served uncached).
    pub async fn series_etag(
        &self,
        grant: &huren_access::ReadGrant,
        study_uid: &huren_types::Uid,
        series_uid: &huren_types::Uid,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let (study_uid, series_uid) = (study_uid.as_str(), series_uid.as_str());
        // The cached path does not look at persons: a reader limited by relationship takes the
        // uncached one, which goes through `find` (and its person filter). A system takes it
        // for its own institutions' series.
        let reach = self.reach(grant).await?;
        let own = match &reach {
            reach::Reach::All => None,
            reach::Reach::Institution { .. } => reach.institution_ids(),
            reach::Reach::Persons(_) => return Ok(None),
        };
        let mut rows = self.index.series_etag(study_uid, series_uid).await?;
        let (Some(tag), true) = (rows.pop(), rows.is_empty()) else {
            return Ok(None);
        };
        if own.is_some_and(|own| !own.contains(&tag.institution_id)) {
            return Ok(None);
        }
        let read = reach::Read {
            object: format!("study:{study_uid}"),
            patient: Some(tag.patient),
            study_uid: Some(study_uid.to_owned()),
        };
        self.note_reads(grant, &reach, vec![read], Outcome::Success)
            .await;
        Ok(Some((tag.key, tag.etag)))
    }

    /// Series metadata as JSON text, assembled once per ETag from the per-instance JSON and
    /// cached; BulkDataURIs are host-relative (`/dicom-web/studies/…`), so one cached document
    /// serves every host name the archive is reached by.
    pub async fn series_metadata(
        &self,
        grant: &huren_access::ReadGrant,
        key: i64,
        etag: &str,
        study_uid: &huren_types::Uid,
        series_uid: &huren_types::Uid,
    ) -> Result<Vec<u8>, StoreError> {
        let (study_uid, series_uid) = (study_uid.as_str(), series_uid.as_str());
        if let Some(cached) = self.index.cached_series_metadata(key, etag).await?
            && let Ok(text) = huren_dicom::json::inflate_bytes(&cached)
        {
            return Ok(text);
        }
        let q = query::Query {
            level: query::Level::Instance,
            conditions: vec![
                query::Condition {
                    key: query::Key::StudyInstanceUid,
                    matcher: query::Matcher::Single(study_uid.to_owned()),
                },
                query::Condition {
                    key: query::Key::SeriesInstanceUid,
                    matcher: query::Matcher::Single(series_uid.to_owned()),
                },
            ],
            limit: 100_000,
            offset: 0,
            after_key: None,
            person: None,
            persons_in: None,
            institutions_or: None,
        };
        let found = self.find(grant, &q).await?;
        let docs = self.instance_metadata(grant, &found).await?;
        let mut out = Vec::with_capacity(docs.len());
        for (m, doc) in found.iter().zip(docs) {
            let prefix = format!(
                "/dicom-web/studies/{}/series/{}/instances/{}/",
                m.study_instance_uid,
                m.series_instance_uid.as_deref().unwrap_or(""),
                m.sop_instance_uid.as_deref().unwrap_or("")
            );
            let mut v = serde_json::Value::Object(doc);
            prefix_bulk_uris(&mut v, &prefix);
            out.push(v);
        }
        let text = serde_json::to_vec(&serde_json::Value::Array(out))
            .map_err(|e| StoreError::backend("series metadata", e))?;
        self.index
            .store_series_metadata(key, etag, &huren_dicom::json::deflate_bytes(&text))
            .await?;
        Ok(text)
    }

    /// Registers the grant-free read of counts for `/metrics` and the demo banner.
    pub async fn counts(&self) -> Result<ArchiveCounts, StoreError> {
        self.index.counts().await
    }
}
