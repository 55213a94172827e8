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
use crate::timed::TimedMap;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(10);
/// Entries per map at most. Some keys come from senders (an InstitutionName as written in the
/// objects), so every map is bounded: a day's worth of distinct lookups, then start again.
const MAX_ENTRIES: usize = 50_000;

/// (id, code) of institutions.
type Institutions = Vec<(i64, String)>;

pub struct AttributionCache {
    /// (sender institution, InstitutionName) → performer.
    performer: TimedMap<(i64, String), Option<i64>>,
    issuer: TimedMap<i64, String>,
    /// issuer → the institution whose numbering it is (crate::numbering).
    owner: TimedMap<String, Option<i64>>,
    /// A system's institution and those it sends for: asked by every read of a system.
    own: TimedMap<i64, Institutions>,
    /// Institutions as of a day: recognition asks for each result's performer on its date.
    as_of: TimedMap<(String, time::Date), Option<InstitutionView>>,
}

impl Default for AttributionCache {
    fn default() -> Self {
        AttributionCache {
            performer: TimedMap::new(MAX_ENTRIES),
            issuer: TimedMap::new(MAX_ENTRIES),
            owner: TimedMap::new(MAX_ENTRIES),
            own: TimedMap::new(MAX_ENTRIES),
            as_of: TimedMap::new(MAX_ENTRIES),
        }
    }
}

impl AttributionCache {
    /// Forgets everything (after an administrative change).
    pub fn clear(&self) {
        self.performer.clear();
        self.issuer.clear();
        self.own.clear();
        self.as_of.clear();
        self.owner.clear();
    }

    /// Forgets one issuer's owner (after a claim).
    pub fn forget_issuer(&self, issuer: &str) {
        self.owner.forget(issuer);
    }

    /// The institution whose patient numbering `issuer` is, if any. Asked by every write that
    /// names a patient record (each instance of a study asks the same question).
    pub async fn issuer_owner(
        &self,
        index: &dyn Index,
        issuer: &str,
    ) -> Result<Option<i64>, StoreError> {
        if let Some(v) = self.owner.fresh(issuer, TTL) {
            return Ok(v);
        }
        let v = index.issuer_owner(issuer).await?;
        self.owner.keep(issuer.to_owned(), v);
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
        if let Some(v) = self.as_of.fresh(&key, AS_OF_TTL) {
            return Ok(v);
        }
        // Expired: this caller reads it again, the others keep the value meanwhile. A patient's
        // results expire together, and twenty HIS calls at once each asking again for every
        // performer-day was the reminder benchmark's slowest percentile.
        let stale = self.as_of.renew(&key);
        let v = match (index.institution_as_of(code, day).await, stale) {
            (Ok(v), _) => v,
            (Err(_), Some(stale)) => return Ok(stale),
            (Err(e), None) => return Err(e),
        };
        self.as_of.keep(key, v.clone());
        Ok(v)
    }

    /// A sending institution and the performers it may send for, as (id, code).
    pub async fn own_institutions(
        &self,
        index: &dyn Index,
        institution: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        if let Some(v) = self.own.fresh(&institution, TTL) {
            return Ok(v);
        }
        let v = index.own_institutions(institution).await?;
        self.own.keep(institution, v.clone());
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
        if let Some(v) = self.performer.fresh(&key, TTL) {
            return Ok(v);
        }
        let v = index.map_performer(sender_institution, name).await?;
        self.performer.keep(key, v);
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
        if let Some(v) = self.issuer.fresh(&performer, TTL) {
            return Ok(v);
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
        self.issuer.keep(performer, v.clone());
        Ok(v)
    }
}
