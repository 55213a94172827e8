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

use huren_access::Principal;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an answer is reused.
pub const CALLER_TTL: Duration = Duration::from_secs(1);

/// Entries kept at most per map; when full, the map starts afresh (a burst of distinct
/// tokens, for example guessing, cannot grow it).
const MAX_ENTRIES: usize = 4096;

/// Answers by key, each with the moment it was read.
type Timed<K, V> = Mutex<HashMap<K, (Instant, V)>>;

/// A person as an encounter names it: internal key, public id.
type PersonKey = (i64, String);

#[derive(Default)]
pub struct CallerCache {
    tokens: Timed<String, Principal>,
    encounters: Timed<i64, Vec<PersonKey>>,
}

fn fresh<K, Q, V>(map: &Timed<K, V>, key: &Q) -> Option<V>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
    V: Clone,
{
    let m = map.lock().ok()?;
    match m.get(key) {
        Some((at, v)) if at.elapsed() < CALLER_TTL => Some(v.clone()),
        _ => None,
    }
}

fn keep<K: std::hash::Hash + Eq, V>(map: &Timed<K, V>, key: K, value: V) {
    if let Ok(mut m) = map.lock() {
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(key, (Instant::now(), value));
    }
}

impl CallerCache {
    /// A live token's principal, when asked within the last [`CALLER_TTL`]. Unknown tokens
    /// are not kept: a token created a moment ago works at once.
    pub fn principal(&self, token_hash: &str) -> Option<Principal> {
        fresh(&self.tokens, token_hash)
    }

    pub fn keep_principal(&self, token_hash: &str, principal: Principal) {
        keep(&self.tokens, token_hash.to_owned(), principal);
    }

    pub fn encounter_persons(&self, institution_id: i64) -> Option<Vec<(i64, String)>> {
        fresh(&self.encounters, &institution_id)
    }

    pub fn keep_encounter_persons(&self, institution_id: i64, persons: Vec<(i64, String)>) {
        keep(&self.encounters, institution_id, persons);
    }

    /// An encounter of this institution opened or closed here: its persons are read again.
    pub fn forget_encounters(&self, institution_id: i64) {
        if let Ok(mut m) = self.encounters.lock() {
            m.remove(&institution_id);
        }
    }

    /// After any configuration change (a token revoked, an institution or account changed).
    pub fn clear(&self) {
        if let Ok(mut m) = self.tokens.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.encounters.lock() {
            m.clear();
        }
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
    fn an_answer_older_than_the_ttl_is_not_used() {
        let c = CallerCache::default();
        if let Ok(mut m) = c.tokens.lock() {
            let old = Instant::now()
                .checked_sub(CALLER_TTL + Duration::from_millis(1))
                .unwrap_or_else(Instant::now);
            m.insert("h".into(), (old, Principal::Console));
        }
        assert!(c.principal("h").is_none());
    }

    #[test]
    fn the_maps_stay_bounded() {
        let c = CallerCache::default();
        for n in 0..(MAX_ENTRIES + 10) {
            c.keep_principal(&n.to_string(), Principal::Console);
        }
        assert!(c.tokens.lock().map(|m| m.len()).unwrap_or(0) <= MAX_ENTRIES);
    }
}
