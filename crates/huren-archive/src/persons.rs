//! Linking a new patient record to a person by the score rules (issue #5).
//!
//! Identity numbers are handled inside the ingest commit (deterministic, same transaction).
//! Records without a shared number are compared here, once per record and process, right
//! after the commit: candidates are the records whose name sounds the same; the best one at or
//! above the link threshold is linked, candidates between the thresholds go to the review
//! queue. A crash between the commit and this step leaves the record as its own person, which
//! is safe (never a wrong link) and is caught the next time the record is sent.

use crate::Archive;
use crate::model::RecordFacts;
use crate::time as ztime;
use huren_mpi::id::Sex;
use huren_mpi::link::{Decision, NameFrequencies, Record, Thresholds, decide};
use huren_mpi::name::PersonName;
use std::collections::HashSet;
use std::sync::Mutex;

/// Records already considered by this process (bounded; cleared when full).
#[derive(Default)]
pub(crate) struct Considered(Mutex<HashSet<(String, String)>>);

const CONSIDERED_MAX: usize = 200_000;
const CANDIDATES: u32 = 50;
const REVIEWS_PER_RECORD: usize = 5;

impl Considered {
    /// True the first time a record is seen.
    fn first_time(&self, issuer: &str, patient_id: &str) -> bool {
        let Ok(mut set) = self.0.lock() else {
            return false;
        };
        if set.len() >= CONSIDERED_MAX {
            set.clear();
        }
        set.insert((issuer.to_owned(), patient_id.to_owned()))
    }
}

fn record(f: &RecordFacts) -> Record {
    Record {
        name: PersonName::from_dicom(f.name_raw.as_deref().unwrap_or("")),
        birth_date: f.birth_date.as_deref().and_then(ztime::parse_da),
        sex: f.sex.as_deref().and_then(Sex::from_code),
        ..Record::default()
    }
}

/// Rule 1 and 2 over blind indexes: a shared system with different numbers that agree with
/// their records means never; the same number was already decided at commit.
fn numbers_decide(a: &RecordFacts, b: &RecordFacts) -> bool {
    a.identifiers.iter().any(|(sa, ba, ca)| {
        b.identifiers
            .iter()
            .any(|(sb, bb, cb)| sa == sb && (ba == bb || (*ca && *cb)))
    })
}

impl Archive {
    pub(crate) async fn link_new_record(&self, issuer: &str, patient_id: &str) {
        if !self.considered.first_time(issuer, patient_id) {
            return;
        }
        let found = match self
            .index
            .link_candidates(issuer, patient_id, CANDIDATES)
            .await
        {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "link candidates not read; the record stays its own person");
                return;
            }
        };
        let (me, others, count) = found;
        if me.person_records > 1 {
            return;
        }
        let mine = record(&me);
        let mut names = NameFrequencies::default();
        names.set_count(&mine.name, u32::try_from(count).unwrap_or(u32::MAX));
        let t = Thresholds::default();
        let mut best: Option<(f32, i64)> = None;
        let mut reviews: Vec<(f32, i64)> = Vec::new();
        for o in others.iter().filter(|o| o.person_id != me.person_id) {
            if numbers_decide(&me, o) {
                continue;
            }
            match decide(&mine, &record(o), &t, &names) {
                Decision::Link { score, .. } => {
                    if best.is_none_or(|(s, _)| score > s) {
                        best = Some((score, o.patient_key));
                    }
                }
                Decision::Review { score, .. } => reviews.push((score, o.patient_key)),
                Decision::NoLink { .. } => {}
            }
        }
        let result = match best {
            Some((score, other)) => {
                self.index
                    .apply_score_decision(me.patient_key, other, true, f64::from(score))
                    .await
            }
            None => {
                reviews.sort_by(|a, b| b.0.total_cmp(&a.0));
                let mut r = Ok(());
                for (score, other) in reviews.into_iter().take(REVIEWS_PER_RECORD) {
                    r = self
                        .index
                        .apply_score_decision(me.patient_key, other, false, f64::from(score))
                        .await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "score link not applied; the record stays its own person");
        }
    }
}
