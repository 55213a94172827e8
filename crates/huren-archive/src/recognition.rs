//! Recognition decisions for a person's prior results (issue #7): the facts the pure rules
//! (`huren-recognition`) need are gathered here — the catalog version in force, the performer as
//! it was on the result's date, qualification records and scope rules in force, the QC grade,
//! the lab status — and each outside result gets its decision for the receiving institution.
//!
//! Here too: the reminders at encounter and order time (recorded as shown, and as acted on when
//! a listed study is opened), the doctors' decisions (append-only, each superseding the last
//! for the same visit and item), and the statistics read from the roll-up the store keeps of
//! them (issues #7 and #17). The QC grade comes from image quality control (issue #8).

use crate::catalog::iso;
use crate::judged_cache::{self, JudgedTimeline};
pub use crate::model::StatsBy;
pub use crate::model::{PriorResult, RecognitionView};
use crate::model::{Timeline, TimelineLab, TimelineStudy};
use crate::recognition_config::Config;
use crate::time::parse_da;
use crate::{AdminError, Archive};
use huren_access::ReadGrant;
use huren_recognition as rec;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// A lab status as sent (HL7 OBX-11 or FHIR Observation.status) in the rules' terms; an unknown
/// or missing status is not taken as final.
fn lab_status(s: Option<&str>) -> rec::LabStatus {
    match s.map(str::trim) {
        Some("F" | "final") => rec::LabStatus::Final,
        Some("C" | "corrected" | "amended") => rec::LabStatus::Corrected,
        Some("X" | "D" | "W" | "cancelled" | "entered-in-error") => rec::LabStatus::Withdrawn,
        _ => rec::LabStatus::Preliminary,
    }
}

fn evaluated_by(e: huren_catalog::Evaluator) -> rec::EvaluatedBy {
    match e {
        huren_catalog::Evaluator::County => rec::EvaluatedBy::County,
        huren_catalog::Evaluator::City => rec::EvaluatedBy::City,
        huren_catalog::Evaluator::Province => rec::EvaluatedBy::Province,
        huren_catalog::Evaluator::National => rec::EvaluatedBy::National,
    }
}

/// When a recognition is judged (issue #17): now; as of a past day, with the facts and the
/// configuration as they stood at that day's end; or as a recorded decision was, with the
/// configuration versions it used and the facts of its moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    Now,
    AsOf(time::Date),
    Replay {
        /// The decision's moment (unix seconds).
        at: i64,
        catalog_version: Option<String>,
        qualification_set: Option<i64>,
        scope_set: Option<i64>,
        policy_set: Option<i64>,
    },
}

/// Which configuration sets a judgment reads.
enum Sets {
    /// Those in force at a moment (`None`: now).
    At(Option<i64>),
    /// These, by id (a recorded decision's); and the catalog version by label.
    Exact {
        catalog_version: Option<String>,
        qualification_set: Option<i64>,
        scope_set: Option<i64>,
        policy_set: Option<i64>,
    },
}

impl Archive {
    /// The day judged on and the moment the facts are taken at (`None`: now).
    fn judged_moment(&self, j: &Judged) -> (time::Date, Option<i64>) {
        use time_tz::PrimitiveDateTimeExt;
        match j {
            Judged::Now => (self.today(), None),
            Judged::AsOf(day) => {
                // The end of that day in the region's zone.
                let next = day.next_day().unwrap_or(*day);
                let end = time::PrimitiveDateTime::new(next, time::Time::MIDNIGHT)
                    .assume_timezone(self.config.zone)
                    .take_first()
                    .map_or(i64::MAX, |t| t.unix_timestamp() - 1);
                (*day, Some(end))
            }
            Judged::Replay { at, .. } => {
                use time_tz::OffsetDateTimeExt;
                let day = time::OffsetDateTime::from_unix_timestamp(*at)
                    .map(|t| t.to_timezone(self.config.zone).date())
                    .unwrap_or_else(|_| self.today());
                (day, Some(*at))
            }
        }
    }

    /// The configuration a judgment reads: the cached one now, else read for it.
    async fn judged_config(
        &self,
        j: &Judged,
        today: time::Date,
        at: Option<i64>,
    ) -> Result<std::sync::Arc<Config>, AdminError> {
        Ok(match j {
            Judged::Now => self.recognition_config(today).await?,
            Judged::AsOf(_) => {
                std::sync::Arc::new(self.read_recognition_config(today, Sets::At(at)).await?)
            }
            Judged::Replay {
                catalog_version,
                qualification_set,
                scope_set,
                policy_set,
                ..
            } => std::sync::Arc::new(
                self.read_recognition_config(
                    today,
                    Sets::Exact {
                        catalog_version: catalog_version.clone(),
                        qualification_set: *qualification_set,
                        scope_set: *scope_set,
                        policy_set: *policy_set,
                    },
                )
                .await?,
            ),
        })
    }

    async fn recognition_config(
        &self,
        today: time::Date,
    ) -> Result<std::sync::Arc<Config>, AdminError> {
        const TTL: std::time::Duration = std::time::Duration::from_secs(10);
        if let Ok(g) = self.catalog_cache.1.lock()
            && let Some((at, c)) = g.as_ref()
            && at.elapsed() < TTL
        {
            return Ok(c.clone());
        }
        let c = std::sync::Arc::new(self.read_recognition_config(today, Sets::At(None)).await?);
        if let Ok(mut g) = self.catalog_cache.1.lock() {
            *g = Some((std::time::Instant::now(), c.clone()));
        }
        Ok(c)
    }

    async fn read_recognition_config(
        &self,
        today: time::Date,
        sets: Sets,
    ) -> Result<Config, AdminError> {
        let day = iso(today);
        let versions = self.catalog.catalog_versions().await?;
        let version = match &sets {
            Sets::Exact {
                catalog_version: Some(label),
                ..
            } => versions.into_iter().find(|v| &v.label == label),
            _ => versions.into_iter().rev().find(|v| v.effective_from <= day),
        };
        // A set by id, or the one in force at the moment: (id) only, that is all the rest reads.
        let set = |kind: &'static str| {
            let sets = &sets;
            async move {
                Ok::<_, AdminError>(match sets {
                    Sets::At(at) => self
                        .catalog
                        .recognition_set_at(kind, *at)
                        .await?
                        .map(|s| s.id),
                    Sets::Exact {
                        qualification_set,
                        scope_set,
                        policy_set,
                        ..
                    } => match kind {
                        "qualifications" => *qualification_set,
                        "scopes" => *scope_set,
                        _ => *policy_set,
                    },
                })
            }
        };
        let items = match &version {
            Some(v) => self
                .catalog
                .catalog_items(v.id)
                .await?
                .into_iter()
                .map(|i| (i.code.clone(), i))
                .collect(),
            None => HashMap::new(),
        };
        let scope_set = set("scopes").await?;
        let scopes = match scope_set {
            Some(id) => self
                .catalog
                .scope_rules(id)
                .await?
                .into_iter()
                .map(|r| (r.label, r.covers))
                .collect(),
            None => HashMap::new(),
        };
        let qual_set = set("qualifications").await?;
        let qualifications = match qual_set {
            Some(id) => self
                .catalog
                .qualification_records(id)
                .await?
                .into_iter()
                .map(|q| rec::Qualification {
                    covers: scopes.get(&q.scope).cloned().unwrap_or_default(),
                    institution: q.institution,
                    item: q.item,
                    scope_label: q.scope,
                    evaluated_by: evaluated_by(q.evaluated_by),
                    valid_from: q.valid_from,
                    valid_until: q.valid_until,
                    record: q.record,
                })
                .collect(),
            None => Vec::new(),
        };
        let policy_set = set("policy").await?;
        let policy = match policy_set {
            Some(id) => match self.catalog.set_document(id).await? {
                Some(doc) => serde_json::from_str(&doc).map_err(|e| {
                    AdminError::Invalid(format!("policy set {id} does not read: {e}"))
                })?,
                None => rec::RegionPolicy::default(),
            },
            None => rec::RegionPolicy::default(),
        };
        let area_names = scopes
            .values()
            .flatten()
            .filter_map(|k| {
                let code = k.strip_prefix("division:")?;
                Some((k.clone(), huren_catalog::divisions::full_name(code)?))
            })
            .collect();
        Ok(Config {
            area_names,
            catalog_version: version.map(|v| v.label),
            items,
            scopes,
            qualifications,
            qualification_set: qual_set,
            scope_set,
            policy,
            policy_set,
        })
    }

    /// An institution as the rules see it on `day`: level, ownership and areas (its city and
    /// consortia as `city:…` / `consortium:…` keys).
    async fn institution_facts(
        &self,
        code: &str,
        day: time::Date,
    ) -> Result<Option<rec::Institution>, AdminError> {
        let index = self.index.as_ref();
        let Some(mut v) = self.attribution.institution_as_of(index, code, day).await? else {
            return Ok(None);
        };
        // Registered after the result's date: its state today stands in for the days before
        // huren knew it (a hospital's level is not unknown just because huren met it later).
        if v.level.is_none()
            && let Some(now) = self
                .attribution
                .institution_as_of(index, code, self.today())
                .await?
        {
            v = now;
        }
        // Its division and every one above it (a scope naming the province covers it), then the
        // older free-text city and its consortia.
        let lineage = v
            .division
            .as_deref()
            .map(huren_catalog::divisions::lineage)
            .unwrap_or_default();
        let mut areas: Vec<String> = lineage
            .iter()
            .map(|d| format!("division:{}", d.code))
            .collect();
        areas.extend(v.city.iter().map(|c| format!("city:{c}")));
        areas.extend(v.consortia.iter().map(|c| format!("consortium:{c}")));
        let place = v
            .division
            .as_deref()
            .and_then(huren_catalog::divisions::full_name);
        Ok(Some(rec::Institution {
            organization: v.organization.clone().unwrap_or_else(|| v.code.clone()),
            name: v.name.clone().unwrap_or_else(|| v.code.clone()),
            code: v.code,
            level: v
                .level
                .as_deref()
                .and_then(|l| huren_types::InstitutionLevel::parse(l).ok())
                .unwrap_or(huren_types::InstitutionLevel::Other),
            // Unknown ownership needs a qualification record, like a private institution.
            ownership: v
                .ownership
                .as_deref()
                .and_then(|o| huren_types::Ownership::parse(o).ok())
                .unwrap_or(huren_types::Ownership::Private),
            areas,
            place,
        }))
    }

    /// Every prior result of a person from another institution, judged for `receiver` (an
    /// institution code), and for `ordered_item` when the doctor is ordering one. Reading is
    /// authorized and audited like the timeline it starts from; `None`: no such person in reach.
    pub async fn recognition(
        &self,
        grant: &ReadGrant,
        person: &str,
        receiver: &str,
        ordered_item: Option<&str>,
    ) -> Result<Option<RecognitionView>, AdminError> {
        self.recognition_judged(grant, person, receiver, ordered_item, &Judged::Now)
            .await
    }

    /// [`Archive::recognition`], judged now, as of a day, or as a recorded decision was: the
    /// results received by then, each as it stood then (report dates, corrections, the QC
    /// grade), institutions as of their dates, and the configuration in force then (or the
    /// recorded versions). Validity is counted to the day judged on.
    pub async fn recognition_judged(
        &self,
        grant: &ReadGrant,
        person: &str,
        receiver: &str,
        ordered_item: Option<&str>,
        judged: &Judged,
    ) -> Result<Option<RecognitionView>, AdminError> {
        Ok(self
            .judged_with_timeline(grant, person, receiver, ordered_item, judged)
            .await?
            .map(|j| j.1.clone()))
    }

    /// The doctor's page of a person (issue #19): their timeline and each result judged now for
    /// the reader's institution, from one read of the timeline (or from the last page's, while
    /// nothing it was made from has changed: [`crate::judged_cache`]).
    pub async fn workstation_view(
        &self,
        grant: &ReadGrant,
        person: &str,
        receiver: &str,
    ) -> Result<Option<Arc<JudgedTimeline>>, AdminError> {
        self.judged_with_timeline(grant, person, receiver, None, &Judged::Now)
            .await
    }

    async fn judged_with_timeline(
        &self,
        grant: &ReadGrant,
        person: &str,
        receiver: &str,
        ordered_item: Option<&str>,
        judged: &Judged,
    ) -> Result<Option<Arc<JudgedTimeline>>, AdminError> {
        let (today, at) = self.judged_moment(judged);
        // Access first, every time, and audited: never from the cache.
        let Some(parts) = self.admit_person(grant, person).await? else {
            return Ok(None);
        };
        if *judged != Judged::Now {
            let catalog = self.catalog_snapshot().await?;
            let Some(timeline) = self.read_timeline(person, 200, at, parts, &catalog).await? else {
                return Ok(None);
            };
            let config = self.judged_config(judged, today, at).await?;
            let view = self
                .judge(
                    &timeline,
                    &config,
                    person,
                    receiver,
                    ordered_item,
                    (today, at),
                )
                .await?;
            return Ok(Some(Arc::new((timeline, view))));
        }
        // Judged now: the last judgement stands while nothing it was made from has changed.
        // The revision is read before the data (see judged_cache).
        let Some(revision) = self.index.person_revision(person).await? else {
            return Ok(None);
        };
        let stamp = judged_cache::Stamp {
            revision,
            today,
            catalog: self.catalog_snapshot().await?,
            config: self.recognition_config(today).await?,
        };
        let key = judged_cache::Key {
            person: person.to_owned(),
            receiver: receiver.to_owned(),
            ordered_item: ordered_item.map(str::to_owned),
            parts,
        };
        if let Some(hit) = self.judged_cache.get(&key, &stamp) {
            return Ok(Some(hit));
        }
        let Some(timeline) = self
            .read_timeline(person, 200, None, parts, &stamp.catalog)
            .await?
        else {
            return Ok(None);
        };
        let view = self
            .judge(
                &timeline,
                &stamp.config,
                person,
                receiver,
                ordered_item,
                (today, None),
            )
            .await?;
        let judged = Arc::new((timeline, view));
        self.judged_cache.put(key, stamp, judged.clone());
        Ok(Some(judged))
    }

    /// Each result of `timeline` judged for `receiver` (and `ordered_item`) on `today`, with
    /// the facts as they stood at `at` (`None`: now).
    async fn judge(
        &self,
        timeline: &Timeline,
        config: &Config,
        person: &str,
        receiver: &str,
        ordered_item: Option<&str>,
        (today, at): (time::Date, Option<i64>),
    ) -> Result<RecognitionView, AdminError> {
        let Timeline {
            studies,
            lab_results,
            reports,
        } = timeline;
        let receiver_facts = self
            .institution_facts(receiver, today)
            .await?
            .ok_or_else(|| {
                AdminError::refused(
                    crate::refusal::Rule::InstitutionNotFound,
                    format!("unknown institution {receiver}"),
                )
            })?;
        let ordered = match ordered_item {
            Some(code) => Some(config.item(code).ok_or_else(|| {
                AdminError::refused(
                    crate::refusal::Rule::ItemNotInCatalog,
                    format!("{code} is not an item of the catalog in force"),
                )
            })?),
            None => None,
        };
        let local_day = |instant: i64| {
            use time_tz::OffsetDateTimeExt;
            time::OffsetDateTime::from_unix_timestamp(instant)
                .ok()
                .map(|t| t.to_timezone(self.config.zone).date())
        };
        // A study's report date, when its report was received (the earliest final one).
        let mut reported: HashMap<&str, time::Date> = HashMap::new();
        for r in reports.iter() {
            if let (Some(uid), Some(day)) = (
                r.study_instance_uid.as_deref(),
                r.reported_instant.and_then(local_day),
            ) {
                let e = reported.entry(uid).or_insert(day);
                *e = (*e).min(day);
            }
        }
        // Lossy images (PS3.5 §8.2: a lossy transfer syntax, or LossyImageCompression 01 kept
        // from an earlier lossy step) are not recognized unless the policy allows it.
        let uids: Vec<String> = studies
            .iter()
            .map(|s| s.study_instance_uid.clone())
            .collect();
        let lossy: std::collections::HashSet<String> = self
            .index
            .study_encodings(&uids)
            .await?
            .into_iter()
            .filter(|(_, ts, flagged)| {
                *flagged || huren_dicom::ts::lookup(ts).is_some_and(|t| t.lossy)
            })
            .map(|(uid, _, _)| uid)
            .collect();
        // The QC port: each study's grade from image quality control (docs/quality.md); a study
        // not graded yet is absent, one graded by uncalibrated scorers is "uncalibrated", and
        // the policy decides what those get.
        let grades = self.qc_grades(&uids, at).await?;
        let mut performers: HashMap<(String, time::Date), Option<rec::Institution>> =
            HashMap::new();
        let mut results = Vec::new();
        let base = |performer: rec::Institution,
                    item: Option<rec::Item>,
                    evidence: rec::Evidence,
                    report_date: Option<time::Date>,
                    study_date: Option<time::Date>| rec::Facts {
            result_item: item,
            ordered_item: ordered.clone(),
            evidence,
            report_date,
            study_date,
            performer,
            qualifications: config.qualifications.clone(),
            receiver: receiver_facts.clone(),
            today,
            policy: config.policy.policy.clone(),
            area_names: config.area_names.clone(),
        };
        for s in studies.iter() {
            let TimelineStudy {
                study_instance_uid: uid,
                ..
            } = s;
            let study_date = s.study_date.as_deref().and_then(parse_da);
            let report_date = reported.get(uid.as_str()).copied();
            let day = report_date.or(study_date).unwrap_or(today);
            let key = (s.performing_institution.clone(), day);
            if !performers.contains_key(&key) {
                let facts = self
                    .institution_facts(&s.performing_institution, day)
                    .await?;
                performers.insert(key.clone(), facts);
            }
            let Some(Some(performer)) = performers.get(&key).cloned() else {
                continue;
            };
            let (qc, complete) = grades
                .get(&(uid.clone(), s.performing_institution.clone()))
                .copied()
                .unwrap_or((rec::Qc::Absent, None));
            let evidence = rec::Evidence::Imaging {
                qc,
                complete,
                lossy: lossy.contains(uid),
            };
            let item = s.catalog_item.as_deref().and_then(|c| config.item(c));
            let decision = rec::decide(&base(performer, item, evidence, report_date, study_date));
            results.push(PriorResult {
                kind: "imaging_study",
                id: uid.clone(),
                item: s.catalog_item.clone(),
                performing_institution: s.performing_institution.clone(),
                decision,
                qc: Some(qc),
                link: None,
            });
        }
        for l in lab_results.iter() {
            let TimelineLab {
                id,
                performing_institution,
                ..
            } = l;
            let report_date = l.reported_instant.and_then(local_day);
            let observed = l.observed_instant.and_then(local_day);
            let day = report_date.or(observed).unwrap_or(today);
            let key = (performing_institution.clone(), day);
            if !performers.contains_key(&key) {
                let facts = self.institution_facts(performing_institution, day).await?;
                performers.insert(key.clone(), facts);
            }
            let Some(Some(performer)) = performers.get(&key).cloned() else {
                continue;
            };
            let evidence = rec::Evidence::Lab {
                status: lab_status(l.status.as_deref()),
            };
            let item = l.catalog_item.as_deref().and_then(|c| config.item(c));
            let decision = rec::decide(&base(performer, item, evidence, report_date, observed));
            results.push(PriorResult {
                kind: "lab_result",
                id: id.to_string(),
                item: l.catalog_item.clone(),
                performing_institution: performing_institution.clone(),
                decision,
                qc: None,
                link: None,
            });
        }
        let view = RecognitionView {
            person: person.to_owned(),
            receiver: receiver.to_owned(),
            today: iso(today),
            catalog_version: config.catalog_version.clone(),
            qualification_set: config.qualification_set,
            scope_set: config.scope_set,
            policy_set: config.policy_set,
            results,
        };
        Ok(view)
    }
}

/// What the HIS asks at the two moments deployed systems use: when an encounter opens (every
/// outside result) or when an order is placed (results of the ordered item or an equivalent).
#[derive(Debug, Clone)]
pub struct ReminderRequest<'a> {
    /// The patient by the receiving institution's record number…
    pub patient_id: Option<&'a str>,
    /// …and its issuer (the institution's own by default; another institution's is refused)…
    pub issuer: Option<&'a str>,
    /// …or by identity number `(system, value)`: the first visit, before the HIS registered
    /// its record.
    pub identifier: Option<(&'a str, &'a str)>,
    /// The HIS order/charge code being ordered (mapped to a catalog item), or the item itself.
    pub order_code: Option<&'a str>,
    pub order_system: Option<&'a str>,
    pub item: Option<&'a str>,
    /// The visit it is for; the patient's open encounter at the institution when absent.
    pub visit_number: Option<&'a str>,
    /// Or the person by huren's own id, as the reader's pages carry it (the web workstation):
    /// the reader's reach is checked as for any read of the person.
    pub person: Option<&'a str>,
}

/// The reminder: the outside results worth showing, each with its decision; `message_zh` when
/// at least one is recognizable.
#[derive(Debug, Clone, Serialize)]
pub struct Reminder {
    /// `known`: the patient was found and is in the reader's reach; `unknown`: huren holds no
    /// record under the institution's own record number (register the patient, with the
    /// identity number, at this visit); `not_in_reach`: the reader has no relationship with
    /// the patient named (open an encounter). A patient named by identity number is never
    /// answered `unknown`, so the answer does not tell whether other hospitals hold data.
    pub patient: &'static str,
    pub person: Option<String>,
    pub moment: &'static str,
    pub item: Option<String>,
    pub message_zh: Option<String>,
    pub message_en: Option<String>,
    pub recognizable: usize,
    pub results: Vec<PriorResult>,
}

/// Whether a judged result belongs in a reminder at `moment`: not the receiver's own, not
/// another item's; at order time only catalogued ones.
fn worth_reminding(moment: &str, r: &PriorResult) -> bool {
    let codes = || r.decision.reasons.iter().map(|x| x.code);
    // At order time only results of the ordered item (or an equivalent) matter; a result
    // outside the catalog is none of them.
    !codes().any(|c| c == "same_institution" || c == "item_differs")
        && (moment == "encounter" || r.item.is_some())
}

impl Reminder {
    /// Lists the judged results worth reminding of, with the count and message.
    fn listed_from(&mut self, judged: impl Iterator<Item = PriorResult>) {
        let moment = self.moment;
        self.results = judged.filter(|r| worth_reminding(moment, r)).collect();
        self.recognizable = self
            .results
            .iter()
            .filter(|r| r.decision.verdict == rec::Verdict::Recognizable)
            .count();
        if self.recognizable > 0 {
            let (zh, en) = match moment {
                "order" => (
                    "您开立的项目有可互认的结果",
                    "the item you are ordering has a recognizable result",
                ),
                _ => (
                    "该患者有可互认的外院检查检验结果",
                    "this patient has recognizable results from other institutions",
                ),
            };
            self.message_zh = Some(zh.to_owned());
            self.message_en = Some(en.to_owned());
        }
    }
}

impl Archive {
    /// A reminder for the receiving institution `receiver` (see [`Archive::reminder_for`]),
    /// recorded as shown (issue #17): which results it listed, with the engine's verdicts, at
    /// which visit — what the statistics' coverage and ignore rate are made of.
    pub async fn reminder(
        &self,
        grant: &ReadGrant,
        receiver: (i64, &str),
        req: ReminderRequest<'_>,
    ) -> Result<Reminder, AdminError> {
        let visit = req.visit_number.map(str::to_owned);
        let r = self.reminder_for(grant, receiver, req).await?;
        if let Some(person) = &r.person {
            let listed: Vec<&PriorResult> = r.results.iter().collect();
            self.record_shown(
                grant,
                receiver,
                visit,
                (person, r.moment, r.item.as_deref()),
                &listed,
            )
            .await?;
        }
        Ok(r)
    }

    /// The encounter-time reminder of a person's page (the web workstation), made from the
    /// judged results the page already holds (`view`, judged now for `receiver`) and recorded
    /// as shown at the patient's open visit, as [`Archive::reminder`] does. Returns how many of
    /// the listed results are recognizable (the page's banner).
    pub async fn encounter_reminder(
        &self,
        grant: &ReadGrant,
        receiver: (i64, &str),
        view: &RecognitionView,
    ) -> Result<usize, AdminError> {
        let listed: Vec<&PriorResult> = view
            .results
            .iter()
            .filter(|r| worth_reminding("encounter", r))
            .collect();
        self.record_shown(
            grant,
            receiver,
            None,
            (&view.person, "encounter", None),
            &listed,
        )
        .await?;
        Ok(listed
            .iter()
            .filter(|r| r.decision.verdict == rec::Verdict::Recognizable)
            .count())
    }

    /// Records a reminder as shown (the statistics' coverage and ignore rate are made of these):
    /// `(person, moment, ordered item)` and the results it listed.
    async fn record_shown(
        &self,
        grant: &ReadGrant,
        receiver: (i64, &str),
        visit: Option<String>,
        (person, moment, item): (&str, &str, Option<&str>),
        results: &[&PriorResult],
    ) -> Result<(), AdminError> {
        if !results.is_empty() {
            let visit = match visit {
                Some(v) => Some(v),
                None => self.index.open_visit(receiver.0, person).await?,
            };
            let (user_id, department) = match grant.principal() {
                huren_access::Principal::User(u) => (Some(u.user_id), u.department.clone()),
                _ => (None, None),
            };
            let listed: Vec<crate::model::ReminderListing> = results
                .iter()
                .map(|x| crate::model::ReminderListing {
                    result_kind: x.kind.to_owned(),
                    result_ref: x.id.clone(),
                    item: x.item.clone(),
                    engine_verdict: serde_json::to_value(x.decision.verdict)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                })
                .collect();
            // The same reminder shown again (a HIS refreshing its page) is the same event: it
            // changes no figure, since a unit counts a reminder once, from the first time.
            let key = format!(
                "{}|{visit:?}|{person}|{moment}|{item:?}|{listed:?}",
                receiver.0
            );
            if !self.access_log.first_in_window(
                "reminder-shown",
                &key,
                std::time::Duration::from_secs(600),
            ) {
                return Ok(());
            }
            let now = crate::time::unix_now();
            self.index
                .record_reminder(&crate::model::NewReminder {
                    shown_at: now,
                    shown_on: iso(self.today()),
                    institution_id: receiver.0,
                    department,
                    user_id,
                    actor: grant.principal().label(),
                    person: person.to_owned(),
                    visit_number: visit,
                    moment: moment.to_owned(),
                    ordered_item: item.map(str::to_owned),
                    results: listed,
                })
                .await?;
        }
        Ok(())
    }

    /// A reminder for the receiving institution `receiver`: the patient named by its own record
    /// number, read with the reader's rights (a doctor, or the HIS acting for one, needs a
    /// relationship with the patient). Results of the receiving institution itself are left out.
    /// Not recorded (a decision looks its result up this way).
    async fn reminder_for(
        &self,
        grant: &ReadGrant,
        receiver: (i64, &str),
        req: ReminderRequest<'_>,
    ) -> Result<Reminder, AdminError> {
        let item = match (req.item, req.order_code) {
            (Some(i), _) => Some(i.to_owned()),
            (None, Some(code)) => Some(
                self.item_for_code(
                    &huren_access::grant_catalog(grant.principal()),
                    receiver.1,
                    huren_catalog::MapKind::Order,
                    req.order_system.unwrap_or(""),
                    code,
                )
                .await?
                .ok_or_else(|| {
                    AdminError::Invalid(format!(
                        "order code {code} of {} maps to no catalog item",
                        receiver.1
                    ))
                })?,
            ),
            (None, None) => None,
        };
        let moment = if item.is_some() { "order" } else { "encounter" };
        let mut reminder = Reminder {
            patient: "known",
            person: None,
            moment,
            item: item.clone(),
            message_zh: None,
            message_en: None,
            recognizable: 0,
            results: Vec::new(),
        };
        let person = match req.person {
            // huren's own id: reach is checked by the read below (no reach, no results).
            Some(p) => {
                if !self.reach(grant).await?.allows(p) {
                    reminder.patient = "not_in_reach";
                    return Ok(reminder);
                }
                p.to_owned()
            }
            None => match self.named_person(grant, receiver, &req).await? {
                Ok(p) => p,
                Err(patient) => {
                    reminder.patient = patient;
                    return Ok(reminder);
                }
            },
        };
        let view = self
            .recognition(grant, &person, receiver.1, item.as_deref())
            .await?;
        reminder.person = Some(person);
        let Some(view) = view else {
            return Ok(reminder);
        };
        reminder.listed_from(view.results.into_iter());
        Ok(reminder)
    }

    /// The person a reminder's patient fields name, in the reader's reach; else what to answer
    /// (`unknown`, `not_in_reach`).
    async fn named_person(
        &self,
        grant: &ReadGrant,
        receiver: (i64, &str),
        req: &ReminderRequest<'_>,
    ) -> Result<Result<String, &'static str>, AdminError> {
        let named = match (req.patient_id.map(str::trim), req.identifier) {
            (Some(pid), _) if !pid.is_empty() => {
                let issuer = self.issuer_or_own(receiver.0, req.issuer).await?;
                // The receiving institution's own record numbers only (crate::numbering).
                self.may_name(receiver.0, &issuer).await?;
                crate::model::PatientRef::Record {
                    issuer,
                    patient_id: pid.to_owned(),
                }
            }
            (_, Some((system, value))) => {
                crate::model::PatientRef::Identity(self.identity_key(system, value)?)
            }
            _ => {
                return Err(AdminError::Invalid(
                    "name the patient by the institution's record number (patient_id) or by \
                     identity number (identifier: system|value)"
                        .into(),
                ));
            }
        };
        let hits = self.find_persons_by(grant, named.search()).await?;
        if let Some(person) = hits.into_iter().next().map(|h| h.person) {
            return Ok(Ok(person));
        }
        // Whether the institution's own record exists is its own business; whether a person
        // named by identity number has data elsewhere is not.
        Ok(Err(match &named {
            crate::model::PatientRef::Record { .. }
                if self
                    .index
                    .find_persons(&named.search(), 1)
                    .await?
                    .is_empty() =>
            {
                "unknown"
            }
            _ => "not_in_reach",
        }))
    }
}

/// What the doctor decided about one prior result.
#[derive(Debug, Clone)]
pub struct DecisionRequest<'a> {
    /// The patient, and the order when deciding at order time (as for the reminder).
    pub about: ReminderRequest<'a>,
    /// `imaging_study` or `lab_result`, and its id (StudyInstanceUID, result id).
    pub result_kind: &'a str,
    pub result_id: &'a str,
    /// `recognize` or `re_examine`.
    pub decision: &'a str,
    /// The re-examination reason code (platform list); required to re-examine.
    pub reason: Option<&'a str>,
    /// Free text, at most 200 characters; required for reason 06 (other).
    pub note: Option<&'a str>,
    pub visit_number: Option<&'a str>,
}

/// A decision as recorded: the sentence for the medical record, and what the engine said.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedDecision {
    pub id: i64,
    /// Earlier decisions on the same result for the same visit that this one replaces.
    pub superseded: u64,
    pub decision: String,
    pub reason: Option<String>,
    /// Whether it counts in the statistics (re-examinations for reasons 98 and 99 do not).
    pub counted: bool,
    pub record_sentence: String,
    pub engine: rec::Decision,
}

impl Archive {
    /// Records a receiving doctor's decision on one prior result (append-only; a later one
    /// supersedes). The engine's decision at this moment and the configuration versions are
    /// kept with it. The doctor (or the HIS acting for them) must reach the patient.
    pub async fn record_decision(
        &self,
        grant: &huren_access::ClinicianGrant,
        req: DecisionRequest<'_>,
    ) -> Result<RecordedDecision, AdminError> {
        let invalid = |m: &str| AdminError::Invalid(m.to_owned());
        let note = req.note.map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > 200) {
            return Err(invalid("the note is at most 200 characters"));
        }
        let today = self.today();
        let config = self.recognition_config(today).await?;
        let reason = match (req.decision, req.reason) {
            ("recognize", None) => None,
            ("recognize", Some(_)) => return Err(invalid("a recognition takes no reason")),
            ("re_examine", None) => {
                return Err(invalid(
                    "re-examining needs a reason code (GET /api/recognition/reasons)",
                ));
            }
            ("re_examine", Some(code)) => Some(
                config
                    .policy
                    .reason(code)
                    .ok_or_else(|| invalid("unknown reason code"))?,
            ),
            _ => return Err(invalid("the decision is recognize or re_examine")),
        };
        if let Some(r) = reason
            && r.needs_note
            && note.is_none()
        {
            return Err(AdminError::Invalid(format!(
                "reason {} ({}) needs a note saying which",
                r.code, r.zh
            )));
        }
        let user = grant.user();
        let read = huren_access::grant_read(&huren_access::Principal::User(user.clone()))
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        let receiver = user.institution_code.to_string();
        let reminder = self
            .reminder_for(&read, (user.institution_id, &receiver), req.about.clone())
            .await?;
        let Some(person) = reminder.person.clone() else {
            return Err(match reminder.patient {
                "unknown" => invalid("no record of this patient: register the patient first"),
                _ => AdminError::Forbidden(
                    "no relationship with this patient (an open encounter, the patient's \
                     authorization or break-glass)"
                        .into(),
                ),
            });
        };
        let Some(found) = reminder
            .results
            .iter()
            .find(|r| r.kind == req.result_kind && r.id == req.result_id)
        else {
            return Err(invalid(
                "no such result from another institution for this patient (and item)",
            ));
        };
        let performer = self
            .institution_facts(&found.performing_institution, today)
            .await?
            .map_or_else(|| found.performing_institution.clone(), |i| i.name);
        let item_name = found
            .item
            .as_deref()
            .and_then(|c| config.item(c))
            .map_or_else(|| "检查检验".to_owned(), |i| i.name_zh);
        let recognized = req.decision == "recognize";
        let sentence = rec::record_sentence(
            recognized,
            &performer,
            &item_name,
            found.decision.reference_date,
            found.decision.scope_label.as_deref(),
            reason,
            note,
        );
        let engine_json = serde_json::to_string(&found.decision)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        let counted = reason.is_none_or(|r| r.counts);
        // The unit's price (the receiving institution's, for the ordered item or else the
        // result's, on the decision day) is looked up now, so statistics need no lookups.
        let unit_item = reminder.item.clone().or_else(|| found.item.clone());
        let price_fen = match &unit_item {
            Some(item) if recognized => self
                .price_in_force(&receiver, item, today)
                .await?
                .map(|p| p.price_fen),
            _ => None,
        };
        let d = crate::model::NewRecognitionDecision {
            decided_at: crate::time::unix_now(),
            decided_on: iso(today),
            institution_id: user.institution_id,
            department: user.department.clone(),
            user_id: Some(user.user_id),
            actor: huren_access::Principal::User(user.clone()).label(),
            person: person.clone(),
            // A decision without a visit is the open encounter's, so it meets that visit's
            // reminders in the statistics.
            visit_number: match req.visit_number {
                Some(v) => Some(v.to_owned()),
                None => self.index.open_visit(user.institution_id, &person).await?,
            },
            result_kind: found.kind.to_owned(),
            result_ref: found.id.clone(),
            performing_institution: found.performing_institution.clone(),
            item: found.item.clone(),
            ordered_item: reminder.item.clone(),
            engine_verdict: serde_json::to_value(found.decision.verdict)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            engine_decision: engine_json,
            catalog_version: config.catalog_version.clone(),
            qualification_set: config.qualification_set,
            scope_set: config.scope_set,
            policy_set: config.policy_set,
            decision: req.decision.to_owned(),
            reason: reason.map(|r| r.code.to_string()),
            note: note.map(str::to_owned),
            record_sentence: sentence.clone(),
            counted,
            price_fen,
        };
        let (id, superseded) = self.index.record_recognition_decision(&d).await?;
        self.index
            .record_audit(huren_access::AuditEvent {
                action: huren_access::AuditAction::RecognitionDecided,
                outcome: huren_access::Outcome::Success,
                actor: d.actor.clone(),
                institution: Some(receiver),
                patient: Some(format!("person:{person}")),
                study_uid: (found.kind == "imaging_study").then(|| found.id.clone()),
                object: Some(format!("recognition-decision:{id}")),
                source_address: None,
                detail: serde_json::json!({
                    "decision": d.decision, "reason": d.reason, "result": d.result_ref,
                    "engine": d.engine_verdict, "superseded": superseded,
                }),
            })
            .await?;
        Ok(RecordedDecision {
            id,
            superseded,
            decision: d.decision,
            reason: d.reason,
            counted,
            record_sentence: sentence,
            engine: found.decision.clone(),
        })
    }
}

/// A recorded decision and the same result judged again as it was then (issue #17).
#[derive(Debug, Clone, Serialize)]
pub struct DecisionReplay {
    pub decision: crate::model::StoredDecision,
    /// The engine's decision recorded with it.
    pub engine: serde_json::Value,
    /// The result judged again with the recorded configuration versions and the facts of the
    /// decision's moment; `None` when the result is no longer there to judge.
    pub replay: Option<rec::Decision>,
    /// The replay gives the recorded verdict and reasons.
    pub same: bool,
}

impl Archive {
    /// A recorded decision, re-checked. For the deciding institution's readers and regional
    /// services; the reader must reach the patient, as for any read (`None` otherwise, the same
    /// as for a decision that does not exist).
    pub async fn recorded_decision(
        &self,
        grant: &ReadGrant,
        id: i64,
    ) -> Result<Option<DecisionReplay>, AdminError> {
        let Some(stored) = self.index.recognition_decision(id).await? else {
            return Ok(None);
        };
        let d = &stored.recorded;
        let mine = match grant.principal() {
            huren_access::Principal::User(u) => u.institution_id == d.institution_id,
            huren_access::Principal::System(s) => {
                s.reads == huren_access::SystemReads::Region || s.institution_id == d.institution_id
            }
            _ => false,
        };
        if !mine {
            return Ok(None);
        }
        let judged = Judged::Replay {
            at: d.decided_at,
            catalog_version: d.catalog_version.clone(),
            qualification_set: d.qualification_set,
            scope_set: d.scope_set,
            policy_set: d.policy_set,
        };
        let Some(view) = self
            .recognition_judged(
                grant,
                &d.person,
                &stored.institution,
                d.ordered_item.as_deref(),
                &judged,
            )
            .await?
        else {
            return Ok(None);
        };
        let replay = view
            .results
            .into_iter()
            .find(|r| r.kind == d.result_kind && r.id == d.result_ref)
            .map(|r| r.decision);
        let engine: serde_json::Value =
            serde_json::from_str(&d.engine_decision).unwrap_or(serde_json::Value::Null);
        let codes = |v: &serde_json::Value| -> Vec<String> {
            v["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["code"].as_str().map(str::to_owned))
                .collect()
        };
        let same = replay.as_ref().is_some_and(|r| {
            let r = serde_json::to_value(r).unwrap_or_default();
            r["verdict"] == engine["verdict"] && codes(&r) == codes(&engine)
        });
        Ok(Some(DecisionReplay {
            decision: stored.clone(),
            engine,
            replay,
            same,
        }))
    }
}

/// One group's counts and rates (docs/recognition.md, "Statistics"). A unit is a receiving
/// institution's visit × catalog item: decided (recognized, re-examined for a reason that
/// counts, re-examined for one that does not), or only shown in a reminder (opened or ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsRow {
    pub key: String,
    pub units: u64,
    pub recognized: u64,
    pub reexamined: u64,
    pub not_counted: u64,
    /// Shown in a reminder, no decision, the study opened.
    pub opened: u64,
    /// Shown in a reminder, no decision, nothing opened.
    pub ignored: u64,
    /// Units whose result met every condition when it was decided on (or shown).
    pub eligible: u64,
    pub eligible_recognized: u64,
    pub eligible_not_counted: u64,
    /// Units a reminder at the visit showed (before the decision, for the decided ones).
    pub shown: u64,
    pub shown_decided: u64,
    /// Decisions on results outside the catalog: counted here, in no rate.
    pub uncatalogued: u64,
    pub uncatalogued_recognized: u64,
    /// The headline rate, by the region's definition (`Statistics::rate_definition`).
    pub rate: Option<f64>,
    /// eligible_recognized ÷ (eligible − eligible_not_counted).
    pub eligible_rate: Option<f64>,
    /// recognized ÷ (units − not_counted).
    pub overall_rate: Option<f64>,
    /// Decided units a reminder had shown ÷ decided units.
    pub coverage: Option<f64>,
    /// ignored ÷ shown.
    pub ignore_rate: Option<f64>,
    /// Recognized units × the receiving institution's effective price on the decision day.
    pub savings_fen: i64,
    pub savings_yuan: String,
    /// Recognized units with no price in force (not in the savings).
    pub unpriced: u64,
    /// Re-examinations by reason code: all of them (catalog items or not), and split by whether
    /// the result was eligible at the time.
    pub reasons: std::collections::BTreeMap<String, u64>,
    pub reasons_eligible: std::collections::BTreeMap<String, u64>,
    pub reasons_other: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Statistics {
    pub from: String,
    pub until: String,
    /// `eligible` or `overall`: which rate `rate` is (the region's policy in force).
    pub rate_definition: &'static str,
    pub policy_set: Option<i64>,
    pub rows: Vec<StatsRow>,
    pub total: StatsRow,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl StatsRow {
    /// One group's row from its cell (the index gives one cell per group).
    fn from_cell(c: crate::model::StatsCell) -> StatsRow {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        let positive = |m: std::collections::BTreeMap<String, i64>| -> std::collections::BTreeMap<String, u64> {
            m.into_iter().map(|(k, v)| (k, n(v))).collect()
        };
        let reasons_eligible = positive(c.reasons_eligible);
        let reasons_other = positive(c.reasons_other);
        let mut reasons = reasons_eligible.clone();
        for (code, v) in &reasons_other {
            *reasons.entry(code.clone()).or_default() += v;
        }
        StatsRow {
            key: c.key,
            units: n(c.units),
            recognized: n(c.recognized),
            reexamined: n(c.reexamined),
            not_counted: n(c.not_counted),
            opened: n(c.opened),
            ignored: n(c.ignored),
            eligible: n(c.eligible),
            eligible_recognized: n(c.eligible_recognized),
            eligible_not_counted: n(c.eligible_not_counted),
            shown: n(c.shown),
            shown_decided: n(c.shown_decided),
            uncatalogued: n(c.uncatalogued),
            uncatalogued_recognized: n(c.uncatalogued_recognized),
            savings_fen: c.savings_fen,
            unpriced: n(c.unpriced),
            reasons,
            reasons_eligible,
            reasons_other,
            ..Default::default()
        }
    }

    fn add(&mut self, c: &crate::model::StatsCell) {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        self.units += n(c.units);
        self.recognized += n(c.recognized);
        self.reexamined += n(c.reexamined);
        self.not_counted += n(c.not_counted);
        self.opened += n(c.opened);
        self.ignored += n(c.ignored);
        self.eligible += n(c.eligible);
        self.eligible_recognized += n(c.eligible_recognized);
        self.eligible_not_counted += n(c.eligible_not_counted);
        self.shown += n(c.shown);
        self.shown_decided += n(c.shown_decided);
        self.uncatalogued += n(c.uncatalogued);
        self.uncatalogued_recognized += n(c.uncatalogued_recognized);
        self.savings_fen += c.savings_fen;
        self.unpriced += n(c.unpriced);
        for (code, v) in &c.reasons_eligible {
            *self.reasons_eligible.entry(code.clone()).or_default() += n(*v);
            *self.reasons.entry(code.clone()).or_default() += n(*v);
        }
        for (code, v) in &c.reasons_other {
            *self.reasons_other.entry(code.clone()).or_default() += n(*v);
            *self.reasons.entry(code.clone()).or_default() += n(*v);
        }
    }

    fn finish(&mut self, definition: rec::RateDefinition) {
        self.eligible_rate = ratio(
            self.eligible_recognized,
            self.eligible.saturating_sub(self.eligible_not_counted),
        );
        self.overall_rate = ratio(self.recognized, self.units.saturating_sub(self.not_counted));
        self.rate = match definition {
            rec::RateDefinition::Eligible => self.eligible_rate,
            rec::RateDefinition::Overall => self.overall_rate,
        };
        self.coverage = ratio(
            self.shown_decided,
            self.recognized + self.reexamined + self.not_counted,
        );
        self.ignore_rate = ratio(self.ignored, self.shown);
        self.savings_yuan = crate::catalog::fen_to_yuan(self.savings_fen);
    }

    /// The group's counts are all zero (nothing to show).
    fn is_empty(&self) -> bool {
        self.units == 0 && self.uncatalogued == 0
    }
}

impl Archive {
    /// Recognition statistics for decision days `[from, until]`, grouped, reproducible from the
    /// stored decisions alone (plus the prices in force on each decision day). The store keeps
    /// the units as decisions arrive and rolls them up by month; units not yet priced (after a
    /// price import, say) are priced first.
    pub async fn recognition_statistics(
        &self,
        grant: &huren_access::StatsGrant,
        from: time::Date,
        until: time::Date,
        by: StatsBy,
    ) -> Result<Statistics, AdminError> {
        if until < from {
            return Err(AdminError::Invalid("until is before from".into()));
        }
        self.price_recognition_units().await?;
        let config = self.recognition_config(self.today()).await?;
        let definition = config.policy.rate;
        let cells = self
            .index
            .recognition_statistics(from, until, grant.institution(), by)
            .await?;
        let mut total = StatsRow {
            key: "total".into(),
            ..Default::default()
        };
        // The index gives one cell per group (a region by department is 20,000): each becomes
        // its row, its maps moved rather than copied.
        let mut rows: Vec<StatsRow> = Vec::with_capacity(cells.len());
        for c in cells
            .into_iter()
            .filter(|c| c.units != 0 || c.uncatalogued != 0)
        {
            total.add(&c);
            let row = StatsRow::from_cell(c);
            if !row.is_empty() {
                rows.push(row);
            }
        }
        rows.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        for r in &mut rows {
            r.finish(definition);
        }
        total.finish(definition);
        Ok(Statistics {
            from: iso(from),
            until: iso(until),
            rate_definition: definition.as_str(),
            policy_set: config.policy_set,
            rows,
            total,
        })
    }

    /// Looks up the price of every unit still unpriced (after a price import, say), each
    /// (institution, item, day) once.
    async fn price_recognition_units(&self) -> Result<(), AdminError> {
        let pending = self.index.unpriced_recognition_units().await?;
        if pending.is_empty() {
            return Ok(());
        }
        let prices = self.prices_for(pending).await?;
        for batch in prices.chunks(10_000) {
            self.index.price_recognition_units(batch).await?;
        }
        Ok(())
    }

    /// The effective price for each (institution code, item, day): each institution-day and
    /// each item's price list read once.
    async fn prices_for(
        &self,
        keys: Vec<(String, String, String)>,
    ) -> Result<Vec<(String, String, String, Option<i64>)>, AdminError> {
        let mut institutions: HashMap<(String, String), Option<crate::model::InstitutionView>> =
            HashMap::new();
        let mut lists: HashMap<String, Vec<huren_catalog::Price>> = HashMap::new();
        let mut out = Vec::with_capacity(keys.len());
        for (institution, item, day) in keys {
            let date = parse_iso(&day)?;
            let key = (institution.clone(), day.clone());
            if !institutions.contains_key(&key) {
                let v = self.index.institution_as_of(&institution, date).await?;
                institutions.insert(key.clone(), v);
            }
            if !lists.contains_key(&item) {
                lists.insert(item.clone(), self.catalog.item_prices(&item).await?);
            }
            let price = match (institutions.get(&key), lists.get(&item)) {
                (Some(Some(inst)), Some(list)) => huren_catalog::effective_price(
                    list,
                    &item,
                    inst.region.as_deref(),
                    inst.level.as_deref(),
                    date,
                )
                .map(|p| p.price_fen),
                _ => None,
            };
            out.push((institution, item, day, price));
        }
        Ok(out)
    }

    /// Rebuilds the statistics units from the stored decisions and prices them (after a restore
    /// or a bulk load of decisions). Returns how many units there are.
    pub async fn rebuild_recognition_statistics(
        &self,
        grant: &huren_access::AdminGrant,
    ) -> Result<u64, AdminError> {
        let keys = self.index.recognition_rebuild_price_keys().await?;
        let prices = self.prices_for(keys).await?;
        let n = self.index.rebuild_recognition_units(&prices).await?;
        self.audit_config(
            grant,
            "recognition:statistics".into(),
            serde_json::json!({ "units": n }),
        )
        .await;
        Ok(n)
    }

    /// The catalog items in force, code → (Chinese name, English name), from the cached
    /// configuration the rules use (pages name each result's item).
    pub async fn item_names(
        &self,
    ) -> Result<HashMap<String, (String, Option<String>)>, AdminError> {
        let config = self.recognition_config(self.today()).await?;
        Ok(config
            .items
            .values()
            .map(|i| (i.code.clone(), (i.name_zh.clone(), i.name_en.clone())))
            .collect())
    }

    /// The re-examination reasons a doctor may give: the platform's, then the region's (its
    /// policy in force).
    pub async fn recognition_reasons(&self) -> Result<Vec<rec::ReexamReason>, AdminError> {
        let config = self.recognition_config(self.today()).await?;
        Ok(config.policy.reasons().cloned().collect())
    }
}

fn parse_iso(day: &str) -> Result<time::Date, AdminError> {
    huren_types::day::parse_iso(day)
        .ok_or_else(|| AdminError::Invalid(format!("{day:?} is not a day; write YYYY-MM-DD")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_dates_map_conservatively() {
        assert_eq!(lab_status(Some("F")), rec::LabStatus::Final);
        assert_eq!(lab_status(Some("corrected")), rec::LabStatus::Corrected);
        assert_eq!(lab_status(Some("P")), rec::LabStatus::Preliminary);
        assert_eq!(lab_status(None), rec::LabStatus::Preliminary);
        assert_eq!(lab_status(Some("X")), rec::LabStatus::Withdrawn);
        assert_eq!(parse_da("20250301").map(iso).as_deref(), Some("2025-03-01"));
        assert_eq!(parse_da("2025"), None);
    }
}
