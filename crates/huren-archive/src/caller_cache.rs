//! What every request asks before its query: the principal behind a bearer token, and the
//! persons with an open encounter at a hospital system's institution. Both were read from the
//! index on each request (two round trips, as long as a PatientID query itself); they are now
//! kept for at most [`CALLER_TTL`].
//!
//! Bounded staleness, stated in docs/security.md: a token revoked or an institution changed
//! through this process is forgotten at once (every configuration change clears the cache); an
//! encounter opened or closed through this process replaces its institution's entry at once.
//! What can lag by up to [`CALLER_TTL`]: a token that expires by its date, and changes made by
//! another process on the same index (a CLI command, a second node).

use crate::timed::TimedMap;
use huren_access::Principal;
use std::time::Duration;

/// How long an answer is reused.
pub const CALLER_TTL: Duration = Duration::from_secs(1);

/// Entries kept at most per map; when full, the map starts afresh (a burst of distinct
/// tokens, for example guessing, cannot grow it).
const MAX_ENTRIES: usize = 4096;

/// A person as an encounter names it: internal key, public id.
type PersonKey = (i64, String);

pub struct CallerCache {
    tokens: TimedMap<String, Principal>,
    encounters: TimedMap<i64, Vec<PersonKey>>,
}

impl Default for CallerCache {
    fn default() -> Self {
        CallerCache {
            tokens: TimedMap::new(MAX_ENTRIES),
            encounters: TimedMap::new(MAX_ENTRIES),
        }
    }
}

impl CallerCache {
    /// A live token's principal, when asked within the last [`CALLER_TTL`]. Unknown tokens
    /// are not kept: a token created a moment ago works at once.
    pub fn principal(&self, token_hash: &str) -> Option<Principal> {
        self.tokens.fresh(token_hash, CALLER_TTL)
    }

    pub fn keep_principal(&self, token_hash: &str, principal: Principal) {
        self.tokens.keep(token_hash.to_owned(), principal);
    }

    pub fn encounter_persons(&self, institution_id: i64) -> Option<Vec<(i64, String)>> {
        self.encounters.fresh(&institution_id, CALLER_TTL)
    }

    pub fn keep_encounter_persons(&self, institution_id: i64, persons: Vec<(i64, String)>) {
        self.encounters.keep(institution_id, persons);
    }

    /// An encounter of this institution opened or closed here: its persons are read again.
    pub fn forget_encounters(&self, institution_id: i64) {
        self.encounters.forget(&institution_id);
    }

    /// After any configuration change (a token revoked, an institution or account changed).
    pub fn clear(&self) {
        self.tokens.clear();
        self.encounters.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_reused_within_the_ttl_and_forgotten_on_change() {
        let c = CallerCache::default();
        assert!(c.principal("h").is_none());
        c.keep_principal("h", Principal::Console);
        assert!(matches!(c.principal("h"), Some(Principal::Console)));
        c.keep_encounter_persons(7, vec![(1, "p".into())]);
        assert_eq!(c.encounter_persons(7).map(|v| v.len()), Some(1));
        c.forget_encounters(7);
        assert!(c.encounter_persons(7).is_none());
        c.clear();
        assert!(c.principal("h").is_none());
    }

    #[test]
    fn the_maps_stay_bounded() {
        let c = CallerCache::default();
        for n in 0..(MAX_ENTRIES + 10) {
            c.keep_principal(&n.to_string(), Principal::Console);
        }
        assert!(c.tokens.len() <= MAX_ENTRIES);
    }
}
