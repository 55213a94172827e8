//! Attribution lookups for ingest (performer by InstitutionName, the performer's patient
//! identifier system), cached for a short time.
//!
//! Every instance of a study asks the same two or three questions; answering them from the
//! index costs a round trip each, which on one association is a measurable share of an
//! instance's time. Entries live `TTL`; administrative changes through this process clear the
//! cache at once, changes made by another process (the CLI on the same data directory) are
//! seen within `TTL`.

use crate::model::InstitutionView;
use crate::ports::{Index, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(10);

/// (sender institution, InstitutionName) → performer, with the time it was looked up.
type PerformerMap = HashMap<(i64, String), (Instant, Option<i64>)>;

/// (id, code) of institutions.
type Institutions = Vec<(i64, String)>;
/// (institution code, day) → the institution as it was that day, with when it was looked up.
type AsOf = HashMap<(String, time::Date), (Instant, Option<InstitutionView>)>;

#[derive(Default)]
pub struct AttributionCache {
    performer: Mutex<PerformerMap>,
    issuer: Mutex<HashMap<i64, (Instant, String)>>,
    /// issuer → the institution whose numbering it is (crate::numbering).
    owner: Mutex<HashMap<String, (Instant, Option<i64>)>>,
    /// A system's institution and those it sends for: asked by every read of a system.
    own: Mutex<HashMap<i64, (Instant, Institutions)>>,
    /// Institutions as of a day: recognition asks for each result's performer on its date.
    as_of: Mutex<AsOf>,
}

impl AttributionCache {
    /// Forgets everything (after an administrative change).
    pub fn clear(&self) {
        if let Ok(mut m) = self.performer.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.issuer.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.own.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.as_of.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.owner.lock() {
            m.clear();
        }
    }

    /// Forgets one issuer's owner (after a claim).
    pub fn forget_issuer(&self, issuer: &str) {
        if let Ok(mut m) = self.owner.lock() {
            m.remove(issuer);
        }
    }

    /// The institution whose patient numbering `issuer` is, if any. Asked by every write that
    /// names a patient record (each instance of a study asks the same question).
    pub async fn issuer_owner(
        &self,
        index: &dyn Index,
        issuer: &str,
    ) -> Result<Option<i64>, StoreError> {
        if let Ok(m) = self.owner.lock()
            && let Some((at, v)) = m.get(issuer)
            && at.elapsed() < TTL
        {
            return Ok(*v);
        }
        let v = index.issuer_owner(issuer).await?;
        if let Ok(mut m) = self.owner.lock() {
            if m.len() > 50_000 {
                m.clear();
            }
            m.insert(issuer.to_owned(), (Instant::now(), v));
        }
        Ok(v)
    }

    /// An institution as it was on `day` (the registry's effective-dated attributes).
    pub async fn institution_as_of(
        &self,
        index: &dyn Index,
        code: &str,
        day: time::Date,
    ) -> Result<Option<InstitutionView>, StoreError> {
        // Past days' attributes change only by an operator's correction (which, through this
        // process, clears the cache): a minute is fresh enough, and a patient's 200 results
        // do not ask for 200 institutions every ten seconds.
        const AS_OF_TTL: Duration = Duration::from_secs(60);
        let key = (code.to_owned(), day);
        // Expired: this caller reads it again, the others keep the value meanwhile. A patient's
        // results expire together, and twenty HIS calls at once each asking again for every
        // performer-day was the reminder benchmark's slowest percentile.
        let stale = match self.as_of.lock() {
            Ok(mut m) => match m.get_mut(&key) {
                Some((at, v)) if at.elapsed() < AS_OF_TTL => return Ok(v.clone()),
                Some((at, v)) => {
                    *at = Instant::now();
                    Some(v.clone())
                }
                None => None,
            },
            Err(_) => None,
        };
        let v = match (index.institution_as_of(code, day).await, stale) {
            (Ok(v), _) => v,
            (Err(_), Some(stale)) => return Ok(stale),
            (Err(e), None) => return Err(e),
        };
        if let Ok(mut m) = self.as_of.lock() {
            // Bounded: a day's worth of lookups, then start again.
            if m.len() > 50_000 {
                m.clear();
            }
            m.insert(key, (Instant::now(), v.clone()));
        }
        Ok(v)
    }

    /// A sending institution and the performers it may send for, as (id, code).
    pub async fn own_institutions(
        &self,
        index: &dyn Index,
        institution: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        if let Ok(m) = self.own.lock()
            && let Some((at, v)) = m.get(&institution)
            && at.elapsed() < TTL
        {
            return Ok(v.clone());
        }
        let v = index.own_institutions(institution).await?;
        if let Ok(mut m) = self.own.lock() {
            m.insert(institution, (Instant::now(), v.clone()));
        }
        Ok(v)
    }

    /// The performing institution a sender's InstitutionName maps to, if configured.
    pub async fn performer(
        &self,
        index: &dyn Index,
        sender_institution: i64,
        name: &str,
    ) -> Result<Option<i64>, StoreError> {
        let key = (sender_institution, name.to_owned());
        if let Ok(m) = self.performer.lock()
            && let Some((at, v)) = m.get(&key)
            && at.elapsed() < TTL
        {
            return Ok(*v);
        }
        let v = index.map_performer(sender_institution, name).await?;
        if let Ok(mut m) = self.performer.lock() {
            m.insert(key, (Instant::now(), v));
        }
        Ok(v)
    }

    /// The issuer for PatientIDs without IssuerOfPatientID: the performer's identifier
    /// system, else `urn:huren:institution:CODE`.
    pub async fn default_issuer(
        &self,
        index: &dyn Index,
        performer: i64,
        today: time::Date,
    ) -> Result<String, StoreError> {
        if let Ok(m) = self.issuer.lock()
            && let Some((at, v)) = m.get(&performer)
            && at.elapsed() < TTL
        {
            return Ok(v.clone());
        }
        let on = huren_types::day::iso(today);
        let v = match index.institution_identifier_system(performer, &on).await? {
            Some(sys) => sys,
            None => format!(
                "urn:huren:institution:{}",
                index
                    .institution_code(performer)
                    .await?
                    .unwrap_or_else(|| performer.to_string())
            ),
        };
        if let Ok(mut m) = self.issuer.lock() {
            m.insert(performer, (Instant::now(), v.clone()));
        }
        Ok(v)
    }
}
