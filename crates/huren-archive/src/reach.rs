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

/// The persons (and, for a system, the institutions' rows) a reader reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    All,
    /// (internal key, public id, by break-glass) of each person.
    Persons(Vec<(i64, String, bool)>),
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
    /// Whether the reader sees this person as a whole (their timeline, their records at every
    /// institution).
    pub fn allows(&self, public_id: &str) -> bool {
        match self {
            Reach::All => true,
            Reach::Persons(p) => p.iter().any(|(_, id, _)| id == public_id),
            Reach::Institution { persons, .. } => persons.iter().any(|(_, id)| id == public_id),
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
            _ => self.allows(person),
        }
    }

    /// Internal keys of the persons reached whole, for index queries; `None` when
    /// unrestricted.
    pub fn keys(&self) -> Option<Vec<i64>> {
        match self {
            Reach::All => None,
            Reach::Persons(p) => Some(p.iter().map(|(k, _, _)| *k).collect()),
            Reach::Institution { persons, .. } => Some(persons.iter().map(|(k, _)| *k).collect()),
        }
    }

    /// Public ids of the persons reached whole; `None` when unrestricted.
    pub fn public_ids(&self) -> Option<Vec<String>> {
        match self {
            Reach::All => None,
            Reach::Persons(p) => Some(p.iter().map(|(_, id, _)| id.clone()).collect()),
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
    /// encounter or the patient's authorization).
    pub fn purpose(&self) -> &'static str {
        match self {
            Reach::All | Reach::Institution { .. } => "operations",
            Reach::Persons(p) if p.iter().any(|(_, _, e)| *e) => "emergency",
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
    fn first_in_window(&self, reader: &str, object: &str, window: std::time::Duration) -> bool {
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
            ReadScope::Related(user) => Ok(Reach::Persons(self.index.related_persons(user).await?)),
            ReadScope::Institution(id) => {
                let (institutions, persons) = self.index.system_reach(id).await?;
                Ok(Reach::Institution {
                    institutions,
                    persons,
                })
            }
            ReadScope::Nothing => Ok(Reach::Persons(Vec::new())),
        }
    }
}

impl Archive {
    /// A principal refused `what` (a 403): recorded as `access_denied` once per principal ×
    /// endpoint per read-audit window.
    pub async fn note_refusal(
        &self,
        principal: &huren_access::Principal,
        what: &str,
        source: Option<String>,
    ) {
        let actor = principal.label();
        if !self
            .access_log
            .first_in_window(&actor, what, self.config.read_audit_window)
        {
            return;
        }
        let ev = huren_access::AuditEvent {
            action: huren_access::AuditAction::AccessDenied,
            outcome: huren_access::Outcome::Failure,
            actor,
            institution: principal_institution(principal),
            patient: None,
            study_uid: None,
            object: Some(what.to_owned()),
            source_address: source,
            detail: serde_json::json!({}),
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
