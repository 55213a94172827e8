//! A bounded map of answers with the moment each was read: the one shape of every short-lived
//! cache in front of the index (`caller_cache`, `attribution`). Bounded because some keys come
//! from outside (a token, an InstitutionName a sender wrote): when full, it starts afresh, so no
//! stream of distinct keys can grow it. Lock poisoning is treated as a miss, never a panic.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct TimedMap<K, V> {
    map: Mutex<HashMap<K, (Instant, V)>>,
    max: usize,
}

impl<K: Hash + Eq, V: Clone> TimedMap<K, V> {
    pub(crate) fn new(max: usize) -> Self {
        TimedMap {
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// The value kept for `key` if it was read less than `ttl` ago.
    pub(crate) fn fresh<Q>(&self, key: &Q, ttl: Duration) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let m = self.map.lock().ok()?;
        match m.get(key) {
            Some((at, v)) if at.elapsed() < ttl => Some(v.clone()),
            _ => None,
        }
    }

    /// The value kept for `key` whatever its age, marked as read now: an expired entry that one
    /// caller refreshes while the others go on using it.
    pub(crate) fn renew<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut m = self.map.lock().ok()?;
        m.get_mut(key).map(|(at, v)| {
            *at = Instant::now();
            v.clone()
        })
    }

    pub(crate) fn keep(&self, key: K, value: V) {
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= self.max {
                m.clear();
            }
            m.insert(key, (Instant::now(), value));
        }
    }

    pub(crate) fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Ok(mut m) = self.map.lock() {
            m.remove(key);
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_and_the_map_never_outgrows_its_bound() {
        let m: TimedMap<String, u32> = TimedMap::new(3);
        m.keep("a".into(), 1);
        assert_eq!(m.fresh("a", Duration::from_secs(60)), Some(1));
        assert_eq!(m.fresh("a", Duration::ZERO), None, "expired");
        assert_eq!(m.renew("a"), Some(1));
        for (i, k) in ["b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
            m.keep((*k).into(), i as u32);
            assert!(m.len() <= 3);
        }
        m.forget("h");
        assert_eq!(m.fresh("h", Duration::from_secs(60)), None);
        m.clear();
        assert_eq!(m.len(), 0);
    }
}
