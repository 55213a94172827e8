//! Whose data a reader reaches (issue #6): every read use case asks [`Archive::reach`] and
//! filters or refuses by it, so the rule lives in one place and an adapter cannot skip it (a
//! read use case without a `ReadGrant` does not compile; with one, it is filtered here).
//!
//! A person reads the patients they have a relationship with: an open encounter at their
//! institution (assigned to them or to their department), the patient's authorization, or
//! break-glass. A hospital system reads the rows its institution performed (or sent for
//! another) and the whole record of patients with an open encounter there; a system an
//! operator granted `read:region` reads everyone's. Operators read no patient data.

use crate::Archive;
use crate::ports::StoreError;
use huren_access::{ReadGrant, ReadScope};

/// One person a person reaches, and which of their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    /// Internal key.
    pub key: i64,
    /// Public id.
    pub id: String,
    /// Reached by break-glass.
    pub emergency: bool,
    /// Their images (studies).
    pub images: bool,
    /// Their results and reports.
    pub results: bool,
    /// The reader is the patient (or a link they shared).
    pub own: bool,
}

impl Related {
    /// The relationships found for a reader (one row per encounter, authorization or
    /// break-glass: (key, public id, break-glass, scope `all`/`imaging`/`lab`)), one entry per
    /// person with the union of what each relationship opens.
    pub fn merge(rows: Vec<(i64, String, bool, String)>) -> Vec<Related> {
        let mut out: Vec<Related> = Vec::new();
        for (key, id, emergency, scope) in rows {
            let (images, results) = match scope.as_str() {
                "imaging" => (true, false),
                "lab" => (false, true),
                _ => (true, true),
            };
            match out.iter_mut().find(|r| r.key == key) {
                Some(r) => {
                    r.emergency |= emergency;
                    r.images |= images;
                    r.results |= results;
                }
                None => out.push(Related {
                    key,
                    id,
                    emergency,
                    images,
                    results,
                    own: false,
                }),
            }
        }
        out
    }
}

/// The persons (and, for a system, the institutions' rows) a reader reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    All,
    /// Each person, with which of their data (a patient may authorize images or results only).
    Persons(Vec<Related>),
    /// A hospital system: every row performed by one of `institutions` (its own and those it
    /// sends for), and the whole record of `persons` (an open encounter at its institution).
    Institution {
        /// (id, code) of each institution whose rows it reads.
        institutions: Vec<(i64, String)>,
        /// (internal key, public id) of each person with an open encounter there.
        persons: Vec<(i64, String)>,
    },
}

impl Reach {
    /// Whether the reader sees this person at all (their records at every institution; their
    /// timeline, with the parts [`Reach::parts`] allows).
    pub fn allows(&self, public_id: &str) -> bool {
        match self {
            Reach::All => true,
            Reach::Persons(p) => p.iter().any(|r| r.id == public_id),
            Reach::Institution { persons, .. } => persons.iter().any(|(_, id)| id == public_id),
        }
    }

    /// Which of a reached person's data the reader sees: (images, results).
    pub fn parts(&self, public_id: &str) -> (bool, bool) {
        match self {
            Reach::Persons(p) => p
                .iter()
                .find(|r| r.id == public_id)
                .map_or((false, false), |r| (r.images, r.results)),
            _ => {
                let seen = self.allows(public_id);
                (seen, seen)
            }
        }
    }

    /// Whether the reader sees one row: a result or report of `person` performed by
    /// `institution` (its code).
    pub fn allows_row(&self, person: &str, institution: &str) -> bool {
        match self {
            Reach::Institution { institutions, .. }
                if institutions.iter().any(|(_, c)| c == institution) =>
            {
                true
            }
            _ => self.parts(person).1,
        }
    }

    /// Internal keys of the persons whose images are reached, for index queries; `None` when
    /// unrestricted.
    pub fn keys(&self) -> Option<Vec<i64>> {
        match self {
            Reach::All => None,
            Reach::Persons(p) => Some(p.iter().filter(|r| r.images).map(|r| r.key).collect()),
            Reach::Institution { persons, .. } => Some(persons.iter().map(|(k, _)| *k).collect()),
        }
    }

    /// Public ids of the persons whose results are reached; `None` when unrestricted.
    pub fn public_ids(&self) -> Option<Vec<String>> {
        match self {
            Reach::All => None,
            Reach::Persons(p) => Some(
                p.iter()
                    .filter(|r| r.results)
                    .map(|r| r.id.clone())
                    .collect(),
            ),
            Reach::Institution { persons, .. } => {
                Some(persons.iter().map(|(_, id)| id.clone()).collect())
            }
        }
    }

    /// The institutions whose rows are reached besides the persons (a system's); `None` for
    /// everyone else.
    pub fn institution_ids(&self) -> Option<Vec<i64>> {
        match self {
            Reach::Institution { institutions, .. } => {
                Some(institutions.iter().map(|(id, _)| *id).collect())
            }
            _ => None,
        }
    }

    /// Why the reader may see these data (the audit's purpose of use): `operations` for
    /// systems, `emergency` when any reached person is by break-glass, else `treatment` (an
    /// encounter or the patient's authorization); `patient` when the patient reads their own
    /// (HL7 v3 PurposeOfUse PATRQT, patient requested).
    pub fn purpose(&self) -> &'static str {
        match self {
            Reach::All | Reach::Institution { .. } => "operations",
            Reach::Persons(p) if p.iter().any(|r| r.own) => "patient",
            Reach::Persons(p) if p.iter().any(|r| r.emergency) => "emergency",
            Reach::Persons(_) => "treatment",
        }
    }
}

/// Read events already recorded in the current window, per (reader, object): OHIF's hundreds
/// of frame requests for one study are one event.
#[derive(Default)]
pub(crate) struct AccessLog(
    std::sync::Mutex<std::collections::HashMap<(String, String), std::time::Instant>>,
);

impl AccessLog {
    /// True when (reader, object) was not seen within `window` (and records it now).
    pub(crate) fn first_in_window(
        &self,
        reader: &str,
        object: &str,
        window: std::time::Duration,
    ) -> bool {
        let Ok(mut seen) = self.0.lock() else {
            return true;
        };
        let now = std::time::Instant::now();
        if seen.len() > 100_000 {
            seen.retain(|_, at| now.duration_since(*at) < window);
        }
        match seen.get(&(reader.to_owned(), object.to_owned())) {
            Some(at) if now.duration_since(*at) < window => false,
            _ => {
                seen.insert((reader.to_owned(), object.to_owned()), now);
                true
            }
        }
    }
}

/// The institution a principal acts for, for its audit events.
fn principal_institution(p: &huren_access::Principal) -> Option<String> {
    match p {
        huren_access::Principal::User(u) => Some(u.institution_code.to_string()),
        huren_access::Principal::System(s) => Some(s.institution_code.to_string()),
        _ => None,
    }
}

/// One object read: a study (images) or a person (records, results).
pub(crate) struct Read {
    pub object: String,
    pub patient: Option<String>,
    pub study_uid: Option<String>,
}

impl Read {
    /// A person's records or results.
    pub(crate) fn person(public_id: &str) -> Read {
        Read {
            object: format!("person:{public_id}"),
            patient: Some(format!("person:{public_id}")),
            study_uid: None,
        }
    }
}

impl Archive {
    /// Records reads not yet recorded in this window (one event per reader × object), with
    /// their purpose; a refused read is always recorded.
    pub(crate) async fn note_reads(
        &self,
        grant: &ReadGrant,
        reach: &Reach,
        reads: Vec<Read>,
        outcome: huren_access::Outcome,
    ) {
        let reader = grant.principal().label();
        // One event per reader × object per window, or per association × object for DIMSE.
        let counted_as = match grant.session() {
            Some(s) => format!("{reader} {s}"),
            None => reader.clone(),
        };
        let window = self.config.read_audit_window;
        let mut events = Vec::new();
        for r in reads {
            if outcome == huren_access::Outcome::Success
                && !self
                    .access_log
                    .first_in_window(&counted_as, &r.object, window)
            {
                continue;
            }
            events.push(huren_access::AuditEvent {
                action: huren_access::AuditAction::PatientDataAccessed,
                outcome,
                actor: reader.clone(),
                institution: principal_institution(grant.principal()),
                patient: r.patient,
                study_uid: r.study_uid,
                object: Some(r.object),
                source_address: None,
                detail: match grant.session() {
                    Some(s) => serde_json::json!({ "purpose": reach.purpose(), "association": s }),
                    None => serde_json::json!({ "purpose": reach.purpose() }),
                },
            });
        }
        // The writer commits them together.
        let results =
            futures::future::join_all(events.into_iter().map(|e| self.index.record_audit(e))).await;
        for r in results {
            if let Err(e) = r {
                tracing::error!(error = %e, "could not record a read audit event");
            }
        }
    }

    pub async fn reach(&self, grant: &ReadGrant) -> Result<Reach, StoreError> {
        match grant.scope() {
            ReadScope::All => Ok(Reach::All),
            ReadScope::Related(user) => Ok(Reach::Persons(Related::merge(
                self.index
                    .related_persons(user, self.config.accounts.authorization_reach_department)
                    .await?,
            ))),
            ReadScope::Institution(id) => {
                // Send-for configuration changes rarely (cached like attribution); encounters
                // open and close all day: reused for a second, and read again at once when
                // one opens or closes here (crate::caller_cache).
                let institutions = self
                    .attribution
                    .own_institutions(self.index.as_ref(), id)
                    .await?;
                let persons = match self.callers.encounter_persons(id) {
                    Some(p) => p,
                    None => {
                        let p = self.index.encounter_persons(id).await?;
                        self.callers.keep_encounter_persons(id, p.clone());
                        p
                    }
                };
                Ok(Reach::Institution {
                    institutions,
                    persons,
                })
            }
            // A patient's session names their person when it is opened (a merge since ends it).
            ReadScope::Own(me) => Ok(Reach::Persons(vec![Related {
                key: me.person_key,
                id: me.person.clone(),
                emergency: false,
                images: true,
                results: true,
                own: true,
            }])),
            ReadScope::Nothing => Ok(Reach::Persons(Vec::new())),
        }
    }
}

impl Archive {
    /// A study opened (its metadata, frames or rendering read through WADO) by a person: when
    /// reminders of their institution listed it, the reminder was acted on (issue #17). Looked
    /// at once a minute per institution × study, so a viewer's many requests cost one look.
    pub async fn note_study_opened(&self, grant: &ReadGrant, study_uid: &str) {
        let huren_access::Principal::User(u) = grant.principal() else {
            return;
        };
        let key = format!("reminder-opened {}", u.institution_id);
        if !self
            .access_log
            .first_in_window(&key, study_uid, std::time::Duration::from_secs(60))
        {
            return;
        }
        let at = crate::time::unix_now();
        if let Err(e) = self
            .index
            .reminder_opened(u.institution_id, study_uid, at)
            .await
        {
            tracing::warn!(error = %e, "a reminder's study opened was not recorded");
        }
    }
}

impl Archive {
    /// A request refused `what` (a 403), with why: recorded as `access_denied` once per
    /// principal × endpoint × reason per read-audit window (a client retrying the same refused
    /// call is one event; each different refusal is its own). `principal` is `None` when the
    /// refusal came before anyone was authenticated.
    pub async fn note_refusal(
        &self,
        principal: Option<&huren_access::Principal>,
        what: &str,
        source: Option<String>,
        reason: &str,
    ) {
        let actor = principal.map_or_else(|| "unauthenticated".to_owned(), |p| p.label());
        let key = format!("{what} {reason}");
        if !self
            .access_log
            .first_in_window(&actor, &key, self.config.read_audit_window)
        {
            return;
        }
        let ev = huren_access::AuditEvent {
            action: huren_access::AuditAction::AccessDenied,
            outcome: huren_access::Outcome::Failure,
            actor,
            institution: principal.and_then(principal_institution),
            patient: None,
            study_uid: None,
            object: Some(what.to_owned()),
            source_address: source,
            detail: serde_json::json!({ "reason": reason }),
        };
        if let Err(e) = self.index.record_audit(ev).await {
            tracing::error!(error = %e, "could not record a refusal");
        }
    }

    /// A request refused for a missing, unknown, expired or revoked credential: recorded as
    /// `authentication_failed` once per source address and reason per minute, so a flood of
    /// bad requests cannot flood the trail.
    pub async fn note_auth_failure(&self, source: Option<String>, reason: &str) {
        let key = source.clone().unwrap_or_default();
        if !self
            .access_log
            .first_in_window(&key, reason, std::time::Duration::from_secs(60))
        {
            return;
        }
        let ev = huren_access::AuditEvent {
            action: huren_access::AuditAction::AuthenticationFailed,
            outcome: huren_access::Outcome::Failure,
            actor: "unauthenticated".into(),
            institution: None,
            patient: None,
            study_uid: None,
            object: Some("http".into()),
            source_address: source,
            detail: serde_json::json!({ "reason": reason }),
        };
        if let Err(e) = self.index.record_audit(ev).await {
            tracing::error!(error = %e, "could not record an authentication failure");
        }
    }
}
